//! Modules: the files a script `import`s, found, read and parsed before
//! anything is resolved.
//!
//! Each file's text is added to the program's one text as a part of its
//! [`Source`] (so a report names the file and counts lines from its first)
//! and parsed there, so spans stay unique across files. The files come out
//! in the order they run: each module after the ones it imports, the
//! importing script last. A module the session already loaded (an earlier
//! input at the prompt) is bound again, not loaded again: a module runs
//! once per process.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Globals, ResolveError};
use crate::report::{Part, Report, Source};
use crate::syntax::ast::{self, StmtKind};
use crate::syntax::{Span, SyntaxError};

/// The largest module read (as for a script: far past any real one).
const MAX_MODULE: u64 = 64 << 20;

/// How deep imports may nest (a module importing a module ...).
const MAX_DEPTH: usize = 64;

/// One file of the program, parsed.
pub struct Unit {
    pub ast: ast::Program,
    /// What the file's own globals are called among the program's:
    /// `lib.` for a module, empty for the script itself.
    pub prefix: Arc<str>,
    /// The file as the reports name it (`tools/lib.conc`).
    pub name: Arc<str>,
    /// Its canonical path (`None` for the script given as text).
    pub path: Option<PathBuf>,
    /// The `import` that first loaded it (a module runs there).
    pub imported_at: Span,
    /// The names its `import`s bind.
    pub imports: Vec<Bound>,
}

/// A name an `import` binds in its file.
#[derive(Clone, Debug)]
pub struct Bound {
    pub alias: String,
    pub span: Span,
    pub prefix: Arc<str>,
    /// The module's file, for messages.
    pub module: Arc<str>,
}

/// A module loaded earlier in a session.
#[derive(Clone, Debug)]
pub struct Known {
    pub path: PathBuf,
    pub prefix: Arc<str>,
    pub name: Arc<str>,
}

/// A mistake found while loading: in a file's syntax or in an `import`.
pub enum LoadError {
    Syntax(SyntaxError),
    Import(ResolveError),
}

impl LoadError {
    pub fn report(&self, source: &Source) -> Report {
        match self {
            LoadError::Syntax(e) => Report::syntax(source, e),
            LoadError::Import(e) => Report::resolve(source, e),
        }
    }
}

/// The program's text as files are added to it: each file is a part.
pub struct Text {
    pub text: String,
    pub parts: Vec<Part>,
}

impl Text {
    /// Appends a file and parses it in place.
    fn add(&mut self, name: &str, content: &str) -> Result<ast::Program, Vec<SyntaxError>> {
        // The text before is blanked byte for byte (newlines kept), so the
        // file's spans are its offsets in the whole program.
        let blank: String = self.text.bytes().map(|b| if b == b'\n' { '\n' } else { ' ' }).collect();
        self.parts.push(Part { start: self.text.len() as u32, name: name.into() });
        self.text.push_str(content);
        if !content.ends_with('\n') {
            self.text.push('\n');
        }
        crate::syntax::parse(&format!("{blank}{content}\n"))
    }
}

/// Loads every module `main` imports, directly or not. `dir` is where
/// its paths start from (the script's folder); `main_path` is the script's
/// own file, so a module importing it back is a cycle.
pub fn load(
    main: ast::Program,
    dir: &Path,
    main_path: Option<PathBuf>,
    main_name: &str,
    text: &mut Text,
    globals: &Globals,
) -> Result<Vec<Unit>, Vec<LoadError>> {
    let mut loader = Loader { text, globals, units: Vec::new(), loaded: HashMap::new(), errors: Vec::new() };
    let mut stack = vec![(main_path.clone(), Arc::<str>::from(main_name))];
    let imports = loader.imports(&main, dir, &mut stack);
    if !loader.errors.is_empty() {
        return Err(loader.errors);
    }
    let mut units = loader.units;
    units.push(Unit {
        ast: main,
        prefix: "".into(),
        name: main_name.into(),
        path: main_path,
        imported_at: Span::default(),
        imports,
    });
    Ok(units)
}

struct Loader<'a> {
    text: &'a mut Text,
    globals: &'a Globals,
    units: Vec<Unit>,
    /// Modules loaded by this call: canonical path to unit index.
    loaded: HashMap<PathBuf, usize>,
    errors: Vec<LoadError>,
}

impl Loader<'_> {
    /// Loads what `file` imports; the names its imports bind.
    fn imports(&mut self, file: &ast::Program, dir: &Path, stack: &mut Vec<(Option<PathBuf>, Arc<str>)>) -> Vec<Bound> {
        let mut bound = Vec::new();
        for stmt in &file.stmts {
            let StmtKind::Import { path, at, alias } = &stmt.kind else { continue };
            if let Some(b) = self.import(path, *at, alias.as_ref(), stmt.span, dir, stack) {
                bound.push(b);
            }
        }
        bound
    }

    fn fail(&mut self, error: ResolveError) -> Option<Bound> {
        self.errors.push(LoadError::Import(error));
        None
    }

    fn import(
        &mut self,
        written: &str,
        at: Span,
        alias: Option<&ast::Ident>,
        stmt: Span,
        dir: &Path,
        stack: &mut Vec<(Option<PathBuf>, Arc<str>)>,
    ) -> Option<Bound> {
        let joined = tidy(&dir.join(written));
        let name: Arc<str> = joined.to_string_lossy().into();
        let (alias, alias_span) = match alias {
            Some(ident) => (ident.name.clone(), ident.span),
            None => match stem(&joined) {
                Some(stem) => (stem, at),
                None => {
                    return self.fail(
                        ResolveError::import(at, format!("`{written}` is not a name to import as"), "this file")
                            .with_help(format!("name it: `import \"{written}\" as name`")),
                    );
                }
            },
        };
        let found = std::fs::canonicalize(&joined);
        let path = match found {
            Ok(path) if path.is_dir() => {
                return self.fail(ResolveError::import(
                    at,
                    format!("cannot import `{written}`: {name} is a folder"),
                    "a folder",
                ));
            }
            Ok(path) => path,
            Err(e) => {
                let why = plain(&e);
                return self.fail(
                    ResolveError::import(at, format!("cannot import `{written}`: {name}: {why}"), "no such module")
                        .with_help("a module's path is relative to the file that imports it"),
                );
            }
        };
        if let Some(k) = stack.iter().position(|(p, _)| p.as_ref() == Some(&path)) {
            let mut chain: Vec<&str> = stack[k..].iter().map(|(_, n)| &**n).collect();
            chain.push(&name);
            return self.fail(
                ResolveError::import(at, format!("import cycle: {}", chain.join(" → ")), "imports back")
                    .with_help("move what both files need into a third module that imports neither"),
            );
        }
        let bind = |prefix: Arc<str>| Bound { alias, span: alias_span, prefix, module: name.clone() };
        if let Some(known) = self.globals.module(&path) {
            return Some(bind(known.prefix.clone()));
        }
        if let Some(&k) = self.loaded.get(&path) {
            return Some(bind(self.units[k].prefix.clone()));
        }
        if stack.len() > MAX_DEPTH {
            return self.fail(ResolveError::import(at, format!("imports nest more than {MAX_DEPTH} deep"), "here"));
        }
        let content = match read(&path) {
            Ok(content) => content,
            Err(why) => {
                return self.fail(ResolveError::import(at, format!("cannot import `{written}`: {why}"), "here"));
            }
        };
        let ast = match self.text.add(&name, &content) {
            Ok(ast) => ast,
            Err(errors) => {
                self.errors.extend(errors.into_iter().map(LoadError::Syntax));
                return None;
            }
        };
        stack.push((Some(path.clone()), name.clone()));
        // Its own imports start from its folder, as the user wrote it.
        let here = match joined.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let imports = self.imports(&ast, &here, stack);
        stack.pop();
        let prefix = self.prefix_for(&stem(&joined).unwrap_or_else(|| "module".into()));
        self.loaded.insert(path.clone(), self.units.len());
        self.units.push(Unit {
            ast,
            prefix: prefix.clone(),
            name: name.clone(),
            path: Some(path),
            imported_at: stmt,
            imports,
        });
        Some(bind(prefix))
    }

    /// `lib.`, or `lib#2.` when another module is already called `lib`.
    fn prefix_for(&self, stem: &str) -> Arc<str> {
        let taken = |p: &str| self.globals.module_prefix_taken(p) || self.units.iter().any(|u| &*u.prefix == p);
        let mut prefix = format!("{stem}.");
        let mut n = 2;
        while taken(&prefix) {
            prefix = format!("{stem}#{n}.");
            n += 1;
        }
        prefix.into()
    }
}

/// `a/./b/../c` as `a/c`: the path as reports name it (`..` after a
/// name goes back over it; leading ones stay).
fn tidy(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    match out.is_empty() {
        true => PathBuf::from("."),
        false => out.iter().collect(),
    }
}

/// A file's stem when it is a name (`lib` for `tools/lib.conc`).
fn stem(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    let mut chars = stem.chars();
    let first = chars.next()?;
    let is_name = (first.is_alphabetic() || first == '_') && chars.all(|c| c.is_alphanumeric() || c == '_');
    is_name.then(|| stem.to_string())
}

fn read(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| plain(&e))?;
    let mut bytes = Vec::new();
    file.take(MAX_MODULE + 1).read_to_end(&mut bytes).map_err(|e| plain(&e))?;
    if bytes.len() as u64 > MAX_MODULE {
        return Err(format!("more than {} MiB", MAX_MODULE >> 20));
    }
    String::from_utf8(bytes)
        .map_err(|e| format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()))
}

/// An OS error without its number: `No such file or directory`.
fn plain(error: &std::io::Error) -> String {
    let text = error.to_string();
    text.split(" (os error").next().unwrap_or(&text).to_string()
}
