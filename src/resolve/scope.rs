//! What the resolver knows while it walks: the globals of the script (kept
//! between REPL inputs) and, per function being resolved, its block scopes,
//! frame slots and captured variables.

use std::collections::HashMap;
use std::sync::Arc;

use crate::syntax::Span;

/// A parameter's name and whether it has a default.
pub type ParamSig = (String, bool);

/// The globals of a script or REPL session, by name.
#[derive(Clone, Debug, Default)]
pub struct Globals {
    names: Vec<Arc<str>>,
    index: HashMap<String, u32>,
    /// A global may be read by top-level code only after its `let` ran.
    declared: Vec<bool>,
    /// Top-level functions: where they were declared and their parameters.
    functions: HashMap<u32, (Span, Vec<ParamSig>)>,
    /// A session whose inputs come one by one (the REPL) may assign a
    /// global later: none is ever treated as set once.
    session: bool,
    /// The modules loaded so far (their globals are named with a prefix).
    modules: Vec<super::modules::Known>,
    /// The names earlier inputs' imports bound (at the prompt).
    aliases: Vec<super::modules::Bound>,
}

impl Globals {
    /// Globals for a session of many inputs (the REPL).
    pub fn for_session() -> Globals {
        Globals { session: true, ..Globals::default() }
    }

    /// Whether a global assigned nowhere may be read without a lock.
    pub fn fixed_allowed(&self) -> bool {
        !self.session
    }

    /// The module loaded earlier from `path`.
    pub fn module(&self, path: &std::path::Path) -> Option<&super::modules::Known> {
        self.modules.iter().find(|m| m.path == path)
    }

    pub fn module_prefix_taken(&self, prefix: &str) -> bool {
        self.modules.iter().any(|m| &*m.prefix == prefix)
    }

    pub fn add_module(&mut self, known: super::modules::Known) {
        self.modules.push(known);
    }

    /// The names the script's imports bound so far.
    pub fn aliases(&self) -> &[super::modules::Bound] {
        &self.aliases
    }

    /// Binds the script's imports, a later one replacing an earlier one
    /// of the same name.
    pub fn bind_aliases(&mut self, bound: &[super::modules::Bound]) {
        self.aliases.retain(|old| !bound.iter().any(|b| b.alias == old.alias));
        self.aliases.extend(bound.iter().cloned());
    }

    pub fn names(&self) -> Vec<Arc<str>> {
        self.names.clone()
    }

    pub fn lookup(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    fn slot(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.into());
        self.index.insert(name.to_string(), i);
        self.declared.push(false);
        i
    }

    /// Makes room for a top-level `let` found ahead of time; it counts as
    /// declared only when the resolver reaches it.
    pub fn reserve(&mut self, name: &str) {
        self.slot(name);
    }

    /// A top-level `let`; fails with the function's span if `name` is one.
    pub fn declare(&mut self, name: &str) -> Result<u32, Span> {
        let i = self.slot(name);
        if let Some((span, _)) = self.functions.get(&i) {
            return Err(*span);
        }
        self.declared[i as usize] = true;
        Ok(i)
    }

    /// A top-level `fn`, declared before any statement runs.
    pub fn declare_fn(&mut self, name: &str, span: Span, params: Vec<ParamSig>) -> u32 {
        let i = self.slot(name);
        self.declared[i as usize] = true;
        self.functions.insert(i, (span, params));
        i
    }

    pub fn is_declared(&self, global: u32) -> bool {
        self.declared.get(global as usize).copied().unwrap_or(false)
    }

    pub fn function_index(&self, global: u32) -> Option<u32> {
        self.functions.contains_key(&global).then_some(global)
    }

    pub fn params(&self, global: u32) -> Option<&[ParamSig]> {
        self.functions.get(&global).map(|(_, p)| p.as_slice())
    }
}

/// A local variable: its frame slot, whether it lives in a cell, and the
/// offset of its declaration (its identity across the two passes).
#[derive(Clone, Copy, Debug)]
pub struct Local {
    pub slot: u32,
    pub cell: bool,
    pub decl: u32,
}

/// A function being resolved.
pub struct FnCtx {
    /// Block scopes, innermost last; a name declared twice in one scope
    /// shadows the first.
    pub scopes: Vec<Vec<(String, Local)>>,
    pub slots: u32,
    /// Captured variables (by declaration) and where each comes from.
    pub upvalues: Vec<(u32, super::ir::Capture)>,
    /// How many loops enclose the current statement.
    pub loops: u32,
}

impl FnCtx {
    pub fn new() -> FnCtx {
        FnCtx { scopes: vec![Vec::new()], slots: 0, upvalues: Vec::new(), loops: 0 }
    }

    pub fn find(&self, name: &str) -> Option<Local> {
        self.scopes.iter().rev().find_map(|scope| scope.iter().rev().find(|(n, _)| n == name).map(|(_, l)| *l))
    }

    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.scopes.iter().flatten().map(|(n, _)| n.clone())
    }
}
