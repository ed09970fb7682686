//! AST to IR: every name becomes a slot, an upvalue, a global or a
//! builtin, and the mistakes that need no running (an undefined name, an
//! assignment to an undeclared variable, `break` outside a loop, a call with
//! the wrong arguments) are all reported together before anything runs.
//!
//! Scoping: top-level `let` and `fn` names are globals; a `let` inside any
//! block is local to that block; functions see globals and capture the
//! locals of enclosing functions by reference. Top-level functions exist
//! before the first statement runs, so they may be called from above their
//! definition; globals may not be read above their `let` at the top level.
//!
//! Modules: each file's top-level names are globals named with the
//! module's prefix (`lib.count`), `lib.name` in an importing file is read
//! straight from that global, and each module's top level becomes a
//! function the script's top level calls first, dependencies first.

pub mod builtin;
mod error;
pub mod ir;
pub mod modules;
mod scope;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub use error::ResolveError;
pub use scope::Globals;

use crate::runtime::text::Interner;
use crate::syntax::Span;
use crate::syntax::ast::{self, ExprKind as A, StmtKind as S};
use ir::*;
pub use modules::Unit;
use modules::{Bound, Known};
use scope::{FnCtx, Local};

/// Resolves a script that imports nothing, with a fresh set of globals.
pub fn resolve(program: ast::Program) -> Result<Program, Vec<ResolveError>> {
    let unit = Unit {
        ast: program,
        prefix: "".into(),
        name: "<script>".into(),
        path: None,
        imported_at: Span::default(),
        imports: Vec::new(),
    };
    resolve_with(&[unit], &mut Globals::default())
}

/// Resolves a script and its modules (`units`, in the order
/// `modules::load` gives them) against `globals` (the REPL keeps them
/// between inputs), adding the globals they declare. On error `globals`
/// is unchanged.
pub fn resolve_with(units: &[Unit], globals: &mut Globals) -> Result<Program, Vec<ResolveError>> {
    // Pass one finds which locals closures capture and which globals are
    // ever assigned; pass two knows them, and stores exactly those locals
    // in cells and reads the other globals without a lock.
    let mut first = Resolver::new(globals.clone(), HashSet::new(), HashSet::new());
    first.program(units);
    let (fixed, top_slots) = match globals.fixed_allowed() {
        true => {
            let fixed = first
                .declarations
                .iter()
                .filter(|(g, n)| **n == 1 && !first.assigned.contains(g))
                .map(|(g, _)| *g)
                .collect();
            // A global no function reads or assigns is the top level's own:
            // a slot of its frame, with no lock and every fast path.
            let top_slots = first.declarations.keys().filter(|g| !first.used_inside.contains(g)).copied().collect();
            (fixed, top_slots)
        }
        false => (HashSet::new(), HashSet::new()),
    };
    let mut second = Resolver::new(globals.clone(), first.found_captures, fixed);
    second.reassigned = first.found_reassigned;
    second.top_slots = top_slots;
    let main = second.program(units);
    if !second.errors.is_empty() {
        second.errors.sort_by_key(|e| e.span.start);
        return Err(second.errors);
    }
    *globals = second.globals;
    Ok(Program { main, globals: globals.names(), functions: second.functions, all_functions: second.all_functions })
}

struct Resolver {
    fns: Vec<FnCtx>,
    globals: Globals,
    /// Declarations (by the offset of their name) that a closure captures.
    captured: HashSet<u32>,
    found_captures: HashSet<u32>,
    /// Local declarations assigned after their binding (or a local `fn`,
    /// bound after its cell is made): their cells cannot be fixed.
    reassigned: HashSet<u32>,
    found_reassigned: HashSet<u32>,
    /// Globals set once and never assigned (from pass one).
    fixed: HashSet<u32>,
    /// How often each global is declared, and which are assigned.
    declarations: HashMap<u32, u32>,
    assigned: HashSet<u32>,
    /// Globals that a function, lambda or task block uses (pass one).
    used_inside: HashSet<u32>,
    /// Globals kept in a slot of the top level's frame (from pass one), and
    /// each one's slot once declared.
    top_slots: HashSet<u32>,
    slot_of: HashMap<u32, u32>,
    functions: Vec<(u32, Arc<FnDef>)>,
    all_functions: Vec<Arc<FnDef>>,
    errors: Vec<ResolveError>,
    /// The file being resolved: its globals' prefix (empty for the
    /// script) and the modules its imports bind.
    prefix: Arc<str>,
    aliases: Vec<Bound>,
    /// The program's one copy of each literal and field name.
    strings: Interner,
}

impl Resolver {
    fn new(globals: Globals, captured: HashSet<u32>, fixed: HashSet<u32>) -> Resolver {
        Resolver {
            fns: Vec::new(),
            globals,
            captured,
            found_captures: HashSet::new(),
            reassigned: HashSet::new(),
            found_reassigned: HashSet::new(),
            fixed,
            declarations: HashMap::new(),
            assigned: HashSet::new(),
            used_inside: HashSet::new(),
            top_slots: HashSet::new(),
            slot_of: HashMap::new(),
            functions: Vec::new(),
            all_functions: Vec::new(),
            errors: Vec::new(),
            prefix: "".into(),
            aliases: Vec::new(),
            strings: Interner::default(),
        }
    }

    /// What `name`, a top-level name of the file being resolved, is
    /// called among the program's globals.
    fn global_name<'n>(&self, name: &'n str) -> std::borrow::Cow<'n, str> {
        match self.prefix.is_empty() {
            true => name.into(),
            false => format!("{}{name}", self.prefix).into(),
        }
    }

    fn error(&mut self, error: ResolveError) {
        self.errors.push(error);
    }

    /// The program's main function: each module's top level (in the
    /// order they must run), then the script's.
    fn program(&mut self, units: &[Unit]) -> Arc<FnDef> {
        let mut inits = Vec::new();
        let Some((main, modules)) = units.split_last() else {
            return self.file(&[], "<main>", Vec::new());
        };
        for unit in modules {
            self.prefix = unit.prefix.clone();
            self.aliases = unit.imports.clone();
            self.check_imports(&unit.ast.stmts, &unit.imports);
            let init = self.file(&unit.ast.stmts, &format!("<module {}>", unit.name), Vec::new());
            if let Some(path) = &unit.path {
                let known = Known { path: path.clone(), prefix: unit.prefix.clone(), name: unit.name.clone() };
                self.globals.add_module(known);
            }
            let span = unit.imported_at;
            let callee = Expr { kind: ExprKind::Lambda(init), span };
            let call = ExprKind::Call(Box::new(callee), Args::default());
            inits.push(Stmt { kind: StmtKind::Expr(Expr { kind: call, span }), span });
        }
        self.prefix = main.prefix.clone();
        // At the prompt, earlier inputs' imports stay bound.
        self.globals.bind_aliases(&main.imports);
        self.aliases = self.globals.aliases().to_vec();
        self.check_imports(&main.ast.stmts, &main.imports);
        // The modules run first: a call each, ahead of the script's code.
        self.file(&main.ast.stmts, "<main>", inits)
    }

    /// A name an import binds may not be a top-level name of its file too
    /// (nor, at the prompt, a variable of an earlier input).
    fn check_imports(&mut self, stmts: &[ast::Stmt], imports: &[Bound]) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for bound in imports {
            if let Some(first) = seen.insert(&bound.alias, bound.span) {
                let error =
                    ResolveError::name(bound.span, format!("`{}` is imported twice", bound.alias), "again here")
                        .with_label(first, "first here")
                        .with_help("import the second one `as` another name");
                self.error(error);
            } else if self.globals.lookup(&self.global_name(&bound.alias)).is_some() {
                let error = ResolveError::name(bound.span, format!("`{}` is already a variable", bound.alias), "here")
                    .with_help("import the module `as` another name");
                self.error(error);
            }
        }
        for stmt in stmts {
            let names: Vec<&ast::Ident> = match &stmt.kind {
                S::Fn(def) => def.name.iter().collect(),
                S::Let(pattern, _) => pattern_names(pattern),
                _ => continue,
            };
            for name in names {
                if let Some(bound) = self.aliases.iter().find(|b| b.alias == name.name) {
                    let error = ResolveError::name(
                        name.span,
                        format!("`{}` is already the module {}", name.name, bound.module),
                        "declared again here",
                    )
                    .with_label(bound.span, "imported here")
                    .with_help("choose another name, or import the module `as` another name");
                    self.error(error);
                }
            }
        }
    }

    /// One file's top level, as a function: `before` runs first.
    fn file(&mut self, stmts: &[ast::Stmt], name: &str, before: Vec<Stmt>) -> Arc<FnDef> {
        // Top-level functions are declared first so that any code may call them.
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for stmt in stmts {
            if let S::Fn(def) = &stmt.kind
                && let Some(name) = &def.name
            {
                if let Some(first) = seen.insert(&name.name, name.span) {
                    self.error(
                        ResolveError::name(
                            name.span,
                            format!("function `{}` is defined twice", name.name),
                            "again here",
                        )
                        .with_label(first, "first here"),
                    );
                }
                let params = def.params.iter().map(|p| (p.name.name.clone(), p.default.is_some())).collect();
                let global = self.global_name(&name.name);
                let index = self.globals.declare_fn(&global, name.span, params);
                self.module_global(index);
            }
        }
        // Top-level `let` names are known everywhere too, so a function may
        // use a global declared below it (top-level code may not, above the `let`).
        for stmt in stmts {
            if let S::Let(pattern, _) = &stmt.kind {
                self.reserve_globals(pattern);
            }
        }
        self.fns.push(FnCtx::new());
        let mut body = before;
        body.extend(self.block_in_scope(stmts));
        let ctx = self.fns.pop().unwrap_or_else(FnCtx::new);
        let def = Arc::new(FnDef {
            id: next_function_id(),
            name: name.into(),
            params: Vec::new(),
            slots: ctx.slots,
            cell_params: Vec::new(),
            code: self.compile(body, ctx.slots, Span::default()),
            captures: Vec::new(),
            span: Span::default(),
        });
        if !self.prefix.is_empty() {
            self.all_functions.push(def.clone());
        }
        def
    }

    /// A module's global lives in the program's globals, never in a slot
    /// of the top level's frame: other files read it.
    fn module_global(&mut self, index: u32) {
        if !self.prefix.is_empty() {
            self.used_inside.insert(index);
        }
    }

    /// A body's bytecode; an internal error (reported before anything
    /// runs) if the compiler made it ill-formed. After an error nothing
    /// runs, and the placeholder a failed name leaves (`Place::Local(0)`,
    /// in a function that may have no slot 0) may make ill-formed code:
    /// that is no bug of the compiler's, and is not reported.
    fn compile(&mut self, body: Block, slots: u32, span: Span) -> crate::vm::Code {
        crate::vm::compile(body, slots).unwrap_or_else(|| {
            if !self.errors.is_empty() {
                return crate::vm::Code::nothing();
            }
            self.error(
                ResolveError::syntax(span, "internal error: this function compiled to ill-formed code", "here")
                    .with_help("this is a bug in concsh; please report it with the script"),
            );
            crate::vm::Code::nothing()
        })
    }

    fn reserve_globals(&mut self, pattern: &ast::Pattern) {
        match pattern {
            ast::Pattern::Name(name) => {
                let global = self.global_name(&name.name);
                self.globals.reserve(&global);
            }
            ast::Pattern::List(items, _) => items.iter().for_each(|p| self.reserve_globals(p)),
        }
    }

    fn ctx(&mut self) -> &mut FnCtx {
        self.fns.last_mut().expect("a function context is always open")
    }

    /// The top level of the script, where `let` makes globals.
    fn at_top_level(&self) -> bool {
        self.fns.len() == 1 && self.fns[0].scopes.len() == 1
    }

    fn block_in_scope(&mut self, stmts: &[ast::Stmt]) -> Block {
        stmts.iter().filter_map(|s| self.stmt(s)).collect()
    }

    fn block(&mut self, stmts: &[ast::Stmt]) -> Block {
        self.ctx().scopes.push(Vec::new());
        let block = self.block_in_scope(stmts);
        self.ctx().scopes.pop();
        block
    }

    fn stmt(&mut self, stmt: &ast::Stmt) -> Option<Stmt> {
        let kind = match &stmt.kind {
            // The loader bound the import; its module runs before the file.
            S::Import { .. } if self.at_top_level() => return None,
            S::Import { .. } => {
                self.error(
                    ResolveError::syntax(stmt.span, "`import` inside a block", "not at the top level")
                        .with_help("imports belong at the top level of a file, where they run before its code"),
                );
                return None;
            }
            S::Let(pattern, value) => {
                let value = self.expr(value);
                StmtKind::Let(self.declare_pattern(pattern), value)
            }
            S::Fn(def) => {
                let name = def.name.as_ref().expect("a declared fn has a name");
                if self.at_top_level() {
                    let func = self.function(def, &name.name);
                    if let Some(global) = self.globals.lookup(&self.global_name(&name.name)) {
                        self.functions.push((global, func));
                    }
                    return None;
                }
                // Declared before its body is resolved, so it can call itself.
                self.found_reassigned.insert(name.span.start);
                let binding = self.declare(name);
                let func = self.function(def, &name.name);
                StmtKind::Fn(binding, func)
            }
            S::If { branches, otherwise } => StmtKind::If(
                branches.iter().map(|(c, b)| (self.expr(c), self.block(b))).collect(),
                otherwise.as_ref().map(|b| self.block(b)),
            ),
            S::While(cond, body) => {
                let cond = self.expr(cond);
                StmtKind::While(cond, self.loop_body(body))
            }
            S::For(pattern, iter, body) => {
                let iter = self.expr(iter);
                self.ctx().scopes.push(Vec::new());
                let pattern = self.declare_pattern(pattern);
                let body = self.loop_body(body);
                self.ctx().scopes.pop();
                StmtKind::For(pattern, iter, body)
            }
            S::Return(value) => {
                if self.fns.len() == 1 {
                    self.error(ResolveError::syntax(stmt.span, "`return` outside a function", "not in a function"));
                }
                StmtKind::Return(value.as_ref().map(|v| self.expr(v)))
            }
            S::Break | S::Continue => {
                if self.ctx().loops == 0 {
                    let word = if matches!(stmt.kind, S::Break) { "break" } else { "continue" };
                    self.error(ResolveError::syntax(stmt.span, format!("`{word}` outside a loop"), "not in a loop"));
                }
                match stmt.kind {
                    S::Break => StmtKind::Break,
                    _ => StmtKind::Continue,
                }
            }
            S::Try { body, catch, finally } => StmtKind::Try {
                body: self.block(body),
                catch: catch.as_ref().map(|catch| {
                    self.ctx().scopes.push(Vec::new());
                    let name = catch.name.as_ref().map(|n| self.declare(n));
                    let block = self.block(&catch.block);
                    self.ctx().scopes.pop();
                    Catch { catches: catch.catches, name, block }
                }),
                finally: finally.as_ref().map(|b| self.block(b)),
            },
            S::Throw(value) => StmtKind::Throw(self.expr(value)),
            S::Assign { target, op, value } => {
                let value = self.expr(value);
                let place = self.place(target);
                match op {
                    Some(op) => StmtKind::OpAssign(place, *op, value),
                    None => StmtKind::Assign(place, value),
                }
            }
            S::Expr(e) => StmtKind::Expr(self.expr(e)),
            S::Put(value, queue, limit) => StmtKind::Put(self.expr(value), self.expr(queue), self.limit(limit)),
            S::LockBlock(target, body) => StmtKind::LockBlock(self.expr(target), self.block(body)),
            S::Release(e) => StmtKind::Release(self.expr(e)),
            S::Close(e) => StmtKind::Close(self.expr(e)),
            S::Terminate(e) => StmtKind::Terminate(self.expr(e)),
            S::Set(e) => StmtKind::Set(self.expr(e)),
            S::Clear(e) => StmtKind::Clear(self.expr(e)),
            S::Notify(e, all) => StmtKind::Notify(self.expr(e), *all),
        };
        Some(Stmt { kind, span: stmt.span })
    }

    fn loop_body(&mut self, body: &[ast::Stmt]) -> Block {
        self.ctx().loops += 1;
        let body = self.block(body);
        self.ctx().loops -= 1;
        body
    }

    fn declare_pattern(&mut self, pattern: &ast::Pattern) -> Pattern {
        match pattern {
            ast::Pattern::Name(name) => Pattern::Bind(self.declare(name)),
            ast::Pattern::List(items, span) => {
                Pattern::List(items.iter().map(|p| self.declare_pattern(p)).collect(), *span)
            }
        }
    }

    /// Declares `name` in the innermost scope and says where it lives.
    fn declare(&mut self, name: &ast::Ident) -> Binding {
        if self.at_top_level() {
            let global = self.global_name(&name.name);
            return match self.globals.declare(&global) {
                Ok(index) => {
                    *self.declarations.entry(index).or_default() += 1;
                    self.module_global(index);
                    if self.top_slots.contains(&index) {
                        return Binding::Local(self.top_slot(index));
                    }
                    match self.fixed.contains(&index) {
                        true => Binding::Fixed(index),
                        false => Binding::Global(index),
                    }
                }
                Err(existing) => {
                    self.error(
                        ResolveError::name(
                            name.span,
                            format!("`{}` is already a function", name.name),
                            "declared again here",
                        )
                        .with_label(existing, "the function")
                        .with_help("choose another name"),
                    );
                    Binding::Global(0)
                }
            };
        }
        let cell = self.captured.contains(&name.span.start);
        let fixed = cell && !self.reassigned.contains(&name.span.start);
        let ctx = self.ctx();
        let slot = ctx.slots;
        ctx.slots += 1;
        let local = Local { slot, cell, decl: name.span.start };
        ctx.scopes.last_mut().expect("a scope is open").push((name.name.clone(), local));
        match (cell, fixed) {
            (true, true) => Binding::FixedCell(slot),
            (true, false) => Binding::Cell(slot),
            (false, _) => Binding::Local(slot),
        }
    }

    /// The top-level frame slot of `global`, made at its first `let` (a
    /// second `let` of the same name reuses it, as a global would).
    fn top_slot(&mut self, global: u32) -> u32 {
        if let Some(&slot) = self.slot_of.get(&global) {
            return slot;
        }
        let ctx = &mut self.fns[0];
        let slot = ctx.slots;
        ctx.slots += 1;
        self.slot_of.insert(global, slot);
        slot
    }

    fn function(&mut self, def: &ast::FnDef, name: &str) -> Arc<FnDef> {
        self.fns.push(FnCtx::new());
        let mut params: Vec<Param> = Vec::new();
        for param in &def.params {
            if params.iter().any(|p| *p.name == *param.name.name) {
                self.error(ResolveError::syntax(
                    param.name.span,
                    format!("parameter `{}` appears twice", param.name.name),
                    "again here",
                ));
            }
            // Defaults are evaluated at each call, seeing the parameters before them.
            let default = param.default.as_ref().map(|d| self.expr(d));
            let binding = self.declare(&param.name);
            params.push(Param {
                name: param.name.name.as_str().into(),
                default,
                cell: matches!(binding, Binding::Cell(_) | Binding::FixedCell(_)),
                fixed: matches!(binding, Binding::FixedCell(_)),
            });
        }
        let body = match &def.body {
            ast::FnBody::Block(stmts) => self.block_in_scope(stmts),
            ast::FnBody::Arrow(expr) => {
                let value = self.expr(expr);
                vec![Stmt { span: value.span, kind: StmtKind::Return(Some(value)) }]
            }
        };
        let ctx = self.fns.pop().expect("pushed above");
        let cell_params = params.iter().enumerate().filter(|(_, p)| p.cell).map(|(i, p)| (i as u32, p.fixed)).collect();
        let def = Arc::new(FnDef {
            id: next_function_id(),
            name: name.into(),
            params,
            slots: ctx.slots,
            cell_params,
            code: self.compile(body, ctx.slots, def.span),
            captures: ctx.upvalues.iter().map(|(_, c)| *c).collect(),
            span: def.span,
        });
        self.all_functions.push(def.clone());
        def
    }

    /// What a name means where it is read.
    fn lookup(&mut self, name: &str, span: Span) -> Option<ExprKind> {
        let depth = self.fns.len() - 1;
        if let Some(local) = self.fns[depth].find(name) {
            return Some(match local.cell {
                true => ExprKind::LocalCell(local.slot),
                false => ExprKind::Local(local.slot),
            });
        }
        for owner in (0..depth).rev() {
            if let Some(local) = self.fns[owner].find(name) {
                self.found_captures.insert(local.decl);
                return Some(ExprKind::Upvalue(self.upvalue(owner, local, depth)));
            }
        }
        if let Some(bound) = self.aliases.iter().find(|b| b.alias == name) {
            let error = ResolveError::name(span, format!("`{name}` is a module, not a value"), "a module")
                .with_help(format!("use what it defines: `{name}.something` (from {})", bound.module));
            self.error(error);
            return Some(ExprKind::Nil);
        }
        if let Some(global) = self.globals.lookup(&self.global_name(name)) {
            if self.fns.len() == 1 && !self.globals.is_declared(global) {
                self.error(
                    ResolveError::name(span, format!("`{name}` is used before its `let`"), "not declared yet")
                        .with_help("move the `let` above this line"),
                );
            }
            if self.fns.len() > 1 {
                self.used_inside.insert(global);
            }
            if let Some(&slot) = self.slot_of.get(&global) {
                return Some(ExprKind::Local(slot));
            }
            return Some(self.read_global(global));
        }
        Builtin::from_name(name).map(ExprKind::Builtin)
    }

    /// `lib` in `lib.name`, when it names a module this file imports (and
    /// no local variable of that name hides it).
    fn module_of(&self, base: &ast::Expr) -> Option<Bound> {
        let A::Name(name) = &base.kind else { return None };
        if self.fns.iter().any(|f| f.find(name).is_some()) {
            return None;
        }
        self.aliases.iter().find(|b| b.alias == *name).cloned()
    }

    /// `lib.name`: the module's global, or an error naming what it has.
    fn member(&mut self, module: &Bound, name: &ast::Ident) -> Option<u32> {
        if let Some(global) = self.globals.lookup(&format!("{}{}", module.prefix, name.name)) {
            if self.fns.len() > 1 {
                self.used_inside.insert(global);
            }
            return Some(global);
        }
        let has: Vec<String> = self
            .globals
            .names()
            .iter()
            .filter_map(|n| n.strip_prefix(&*module.prefix).map(str::to_string))
            .filter(|n| !n.starts_with('<'))
            .collect();
        let mut error = ResolveError::name(
            name.span,
            format!("module `{}` ({}) has no `{}`", module.alias, module.module, name.name),
            "not defined there",
        );
        if let Some(near) = closest(&name.name, &has) {
            error = error.with_help(format!("did you mean `{}.{near}`?", module.alias));
        }
        self.error(error);
        None
    }

    /// What `lib.name` reads.
    fn member_expr(&mut self, module: &Bound, name: &ast::Ident) -> ExprKind {
        let Some(global) = self.member(module, name) else { return ExprKind::Nil };
        self.read_global(global)
    }

    /// How a global is read: a top-level function, a global set once (no
    /// lock), or any other.
    fn read_global(&self, global: u32) -> ExprKind {
        match self.globals.function_index(global) {
            Some(_) => ExprKind::Func(global),
            None if self.fixed.contains(&global) => ExprKind::Fixed(global),
            None => ExprKind::Global(global),
        }
    }

    /// The upvalue index in function `user` for `local` of function `owner`,
    /// threading it through every function in between.
    fn upvalue(&mut self, owner: usize, local: Local, user: usize) -> u32 {
        let mut capture = Capture::Local(local.slot);
        let mut index = 0;
        for level in owner + 1..=user {
            let ups = &mut self.fns[level].upvalues;
            index = match ups.iter().position(|(decl, _)| *decl == local.decl) {
                Some(i) => i as u32,
                None => {
                    ups.push((local.decl, capture));
                    (ups.len() - 1) as u32
                }
            };
            capture = Capture::Upvalue(index);
        }
        index
    }

    fn undefined(&mut self, name: &str, span: Span) {
        let mut candidates: Vec<String> = self.fns.iter().flat_map(|f| f.names()).collect();
        // The file's own globals: unprefixed in the script, `lib.` in a module.
        let own = |n: &Arc<str>| match self.prefix.is_empty() {
            true => (!n.contains('.')).then(|| n.to_string()),
            false => n.strip_prefix(&*self.prefix).map(str::to_string),
        };
        candidates.extend(self.globals.names().iter().filter_map(own));
        candidates.extend(self.aliases.iter().map(|b| b.alias.clone()));
        candidates.extend(Builtin::ALL.iter().map(|b| b.name().to_string()));
        let mut error = ResolveError::name(span, format!("`{name}` is not defined"), "not defined");
        if let Some(near) = closest(name, &candidates) {
            error = error.with_help(format!("did you mean `{near}`?"));
        }
        self.error(error);
    }

    /// Notes that the local `name` (of this function or an enclosing one)
    /// is assigned, so its cell cannot be fixed.
    fn assigned_local(&mut self, name: &str) -> &mut Self {
        if let Some(local) = self.fns.iter().rev().find_map(|f| f.find(name)) {
            self.found_reassigned.insert(local.decl);
        }
        self
    }

    fn place(&mut self, target: &ast::Expr) -> Place {
        match &target.kind {
            A::Name(name) => match self.assigned_local(name).lookup(name, target.span) {
                Some(ExprKind::Local(slot)) => Place::Local(slot),
                Some(ExprKind::LocalCell(slot)) => Place::LocalCell(slot),
                Some(ExprKind::Upvalue(i)) => Place::Upvalue(i),
                Some(ExprKind::Global(i)) => {
                    self.assigned.insert(i);
                    Place::Global(i)
                }
                found => {
                    let (message, help) = match found {
                        Some(ExprKind::Func(_)) => (
                            format!("cannot assign to function `{name}`"),
                            "declare a variable with another name".to_string(),
                        ),
                        Some(_) => (
                            format!("cannot assign to builtin `{name}`"),
                            format!("declare your own with `let {name} = ...`"),
                        ),
                        None => (
                            format!("cannot assign to undeclared `{name}`"),
                            format!("declare it first: `let {name} = ...`"),
                        ),
                    };
                    self.error(ResolveError::name(target.span, message, "assigned here").with_help(help));
                    Place::Local(0)
                }
            },
            A::Index(base, index) => Place::Index(Box::new(self.expr(base)), Box::new(self.expr(index))),
            A::Field(base, field) => match self.module_of(base) {
                Some(module) => match self.member(&module, field) {
                    Some(global) if self.globals.function_index(global).is_some() => {
                        let message = format!("cannot assign to function `{}.{}`", module.alias, field.name);
                        self.error(ResolveError::name(target.span, message, "assigned here"));
                        Place::Local(0)
                    }
                    Some(global) => {
                        self.assigned.insert(global);
                        Place::Global(global)
                    }
                    None => Place::Local(0),
                },
                None => Place::Field(Box::new(self.expr(base)), self.strings.get(&field.name)),
            },
            _ => unreachable!("the parser accepts only names, items and fields as targets"),
        }
    }

    fn exprs(&mut self, exprs: &[ast::Expr]) -> Vec<Expr> {
        exprs.iter().map(|e| self.expr(e)).collect()
    }

    fn expr(&mut self, expr: &ast::Expr) -> Expr {
        let span = expr.span;
        let kind = match &expr.kind {
            A::Int(n) => ExprKind::Int(*n),
            A::Float(f) => ExprKind::Float(*f),
            A::Str(s) => ExprKind::Str(self.strings.get(s)),
            A::Bool(b) => ExprKind::Bool(*b),
            A::Nil => ExprKind::Nil,
            A::Interp(parts) => ExprKind::Interp(
                parts
                    .iter()
                    .map(|part| match part {
                        ast::InterpPart::Text(t) => InterpPart::Text(t.as_str().into()),
                        ast::InterpPart::Expr(e, spec) => InterpPart::Expr(self.expr(e), spec.clone()),
                    })
                    .collect(),
            ),
            A::Name(name) => match self.lookup(name, span) {
                Some(kind) => kind,
                None => {
                    self.undefined(name, span);
                    ExprKind::Nil
                }
            },
            A::List(items) => ExprKind::List(self.exprs(items)),
            A::Map(entries) => ExprKind::Map(entries.iter().map(|(k, v)| (self.expr(k), self.expr(v))).collect()),
            // A comprehension is a lambda named for what it is (see `syntax::lower`).
            A::Lambda(def) => {
                let name = def.name.as_ref().map_or("<lambda>", |n| n.name.as_str());
                ExprKind::Lambda(self.function(def, name))
            }
            A::Unary(op, operand) => ExprKind::Unary(*op, Box::new(self.expr(operand))),
            A::Binary(op, lhs, rhs) => {
                let (lhs, rhs) = (Box::new(self.expr(lhs)), Box::new(self.expr(rhs)));
                match op {
                    ast::BinOp::And => ExprKind::And(lhs, rhs),
                    ast::BinOp::Or => ExprKind::Or(lhs, rhs),
                    _ => ExprKind::Binary(*op, lhs, rhs),
                }
            }
            A::Index(base, index) => ExprKind::Index(Box::new(self.expr(base)), Box::new(self.expr(index))),
            A::Slice(base, parts) => {
                let base = Box::new(self.expr(base));
                let [start, stop, step] = &**parts;
                let mut part = |p: &Option<ast::Expr>| p.as_ref().map(|e| self.expr(e));
                ExprKind::Slice(base, Box::new([part(start), part(stop), part(step)]))
            }
            A::Field(base, name) => match self.module_of(base) {
                Some(module) => self.member_expr(&module, name),
                None => ExprKind::Field(Box::new(self.expr(base)), self.strings.get(&name.name)),
            },
            A::Call(callee, args) => return self.call(callee, args, span),
            A::Task { process, daemon, target, name } => {
                let target = match target {
                    ast::TaskTarget::Call(callee, args) => {
                        let callee = Box::new(self.expr(callee));
                        TaskTarget::Call(callee, self.args(args))
                    }
                    ast::TaskTarget::Block(def) => {
                        TaskTarget::Block(self.function(def, if *process { "<spawn block>" } else { "<thread block>" }))
                    }
                };
                let name = name.as_ref().map(|n| Box::new(self.expr(n)));
                ExprKind::Task { process: *process, daemon: *daemon, target, name }
            }
            A::PoolMap { size, threads, unordered, func, items } => ExprKind::PoolMap {
                size: size.as_ref().map(|s| Box::new(self.expr(s))),
                threads: *threads,
                unordered: *unordered,
                func: Box::new(self.expr(func)),
                items: Box::new(self.expr(items)),
            },
            A::Submit { callee, args, pool } => {
                let callee = Box::new(self.expr(callee));
                let args = self.args(args);
                ExprKind::Submit { callee, args, pool: Box::new(self.expr(pool)) }
            }
            A::Join(target, timeout) => {
                ExprKind::Join(Box::new(self.expr(target)), timeout.as_ref().map(|t| Box::new(self.expr(t))))
            }
            A::Wait(target, timeout) => {
                ExprKind::Wait(Box::new(self.expr(target)), timeout.as_ref().map(|t| Box::new(self.expr(t))))
            }
            A::Get(target, limit) => ExprKind::Get(Box::new(self.expr(target)), self.limit(limit)),
            A::Acquire(target, limit) => ExprKind::Acquire(Box::new(self.expr(target)), self.limit(limit)),
        };
        Expr { kind, span }
    }

    fn limit(&mut self, limit: &ast::Limit) -> Limit {
        match limit {
            ast::Limit::Forever => Limit::Forever,
            ast::Limit::NoWait => Limit::NoWait,
            ast::Limit::Timeout(t) => Limit::Timeout(Box::new(self.expr(t))),
        }
    }

    fn args(&mut self, args: &[ast::Arg]) -> Args {
        Args {
            positional: args.iter().filter(|a| a.name.is_none()).map(|a| self.expr(&a.value)).collect(),
            named: args
                .iter()
                .filter_map(|a| a.name.as_ref().map(|n| (n.name.as_str().into(), self.expr(&a.value))))
                .collect(),
        }
    }

    fn call(&mut self, callee: &ast::Expr, args: &[ast::Arg], span: Span) -> Expr {
        let resolved = self.args(args);
        let kind = match &callee.kind {
            A::Field(recv, method) => match self.module_of(recv) {
                Some(module) => match self.member_expr(&module, method) {
                    ExprKind::Func(global) => {
                        self.check_call(&format!("{}.{}", module.alias, method.name), global, args, span);
                        ExprKind::CallFunc(global, resolved)
                    }
                    ExprKind::Nil => ExprKind::Nil,
                    kind => ExprKind::Call(Box::new(Expr { kind, span: callee.span }), resolved),
                },
                None => ExprKind::Method(Box::new(self.expr(recv)), self.strings.get(&method.name), resolved),
            },
            A::Name(name) => match self.lookup(name, callee.span) {
                Some(ExprKind::Func(global)) => {
                    self.check_call(name, global, args, span);
                    ExprKind::CallFunc(global, resolved)
                }
                Some(ExprKind::Builtin(b)) => {
                    let (min, max) = b.arity();
                    let given = resolved.positional.len();
                    if given < min || given > max {
                        self.error(ResolveError::typ(span, arity_message(name, min, max, given), "called here"));
                    }
                    ExprKind::CallBuiltin(b, resolved)
                }
                Some(kind) => ExprKind::Call(Box::new(Expr { kind, span: callee.span }), resolved),
                None => {
                    self.undefined(name, callee.span);
                    ExprKind::Nil
                }
            },
            _ => ExprKind::Call(Box::new(self.expr(callee)), resolved),
        };
        Expr { kind, span }
    }

    /// Checks a call of a top-level function against its parameters.
    fn check_call(&mut self, name: &str, global: u32, args: &[ast::Arg], span: Span) {
        let Some(params) = self.globals.params(global).map(<[_]>::to_vec) else {
            return;
        };
        let positional = args.iter().filter(|a| a.name.is_none()).count();
        let required = params.iter().take_while(|(_, has_default)| !has_default).count();
        if positional > params.len() {
            let message = arity_message(name, required, params.len(), positional);
            self.error(ResolveError::typ(span, message, "called here"));
            return;
        }
        let mut given: HashMap<&str, ()> = params[..positional].iter().map(|(p, _)| (p.as_str(), ())).collect();
        for arg in args {
            let Some(arg_name) = &arg.name else { continue };
            if !params.iter().any(|(p, _)| *p == arg_name.name) {
                let message = format!("`{name}` has no parameter `{}`", arg_name.name);
                self.error(ResolveError::typ(arg_name.span, message, "unknown name"));
            } else if given.insert(arg_name.name.as_str(), ()).is_some() {
                let message = format!("argument `{}` given twice", arg_name.name);
                self.error(ResolveError::typ(arg_name.span, message, "again here"));
            }
        }
        let missing: Vec<&str> = params
            .iter()
            .filter(|(p, has_default)| !has_default && !given.contains_key(p.as_str()))
            .map(|(p, _)| p.as_str())
            .collect();
        if !missing.is_empty() {
            let message = format!("`{name}` is missing argument `{}`", missing.join("`, `"));
            self.error(ResolveError::typ(span, message, "called here"));
        }
    }
}

/// Function ids are unique in the whole run, across REPL inputs.
static NEXT_FUNCTION: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

fn next_function_id() -> u32 {
    NEXT_FUNCTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The id the next function resolved will get. A program shipped to a
/// cluster worker is resolved there from the same id on (see
/// [`function_ids_from`]), so functions travel by id as between local
/// processes.
pub fn next_function_ids() -> u32 {
    NEXT_FUNCTION.load(std::sync::atomic::Ordering::Relaxed)
}

/// Makes the next program resolved number its functions from `first`.
pub fn function_ids_from(first: u32) {
    NEXT_FUNCTION.store(first, std::sync::atomic::Ordering::Relaxed);
}

/// "f takes 2 arguments but 3 were given", in the same words everywhere.
pub fn arity_message(name: &str, min: usize, max: usize, given: usize) -> String {
    let takes = match (min, max) {
        (a, b) if a == b => format!("{a}"),
        (a, usize::MAX) => format!("at least {a}"),
        (a, b) if given < a => format!("at least {a} (at most {b})"),
        (_, b) => format!("at most {b}"),
    };
    let noun = if takes == "1" { "argument" } else { "arguments" };
    let were = if given == 1 { "was" } else { "were" };
    format!("`{name}` takes {takes} {noun} but {given} {were} given")
}

/// The candidate nearest to `name` by edit distance, if near enough.
fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .filter(|c| c.as_str() != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.chars().count() / 4) && *d < name.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The names a `let` pattern declares.
fn pattern_names(pattern: &ast::Pattern) -> Vec<&ast::Ident> {
    match pattern {
        ast::Pattern::Name(name) => vec![name],
        ast::Pattern::List(items, _) => items.iter().flat_map(pattern_names).collect(),
    }
}
