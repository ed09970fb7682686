//! What every task of one OS process shares: the globals, the top-level
//! functions, the script's arguments and the cancel token.

use std::sync::Arc;

use crate::resolve::ir::Program;
use crate::runtime::Value;
use crate::sync::cancel::CancelToken;
use crate::runtime::value::{Closure, VarCell};

pub struct Process {
    pub globals: Vec<VarCell>,
    pub global_names: Vec<Arc<str>>,
    /// Top-level functions, indexed like the globals that name them.
    pub funcs: Vec<Option<Arc<Closure>>>,
    pub args: Vec<String>,
    pub cancel: Arc<CancelToken>,
}

impl Process {
    pub fn new(program: &Program, args: Vec<String>, cancel: Arc<CancelToken>) -> Process {
        let mut funcs: Vec<Option<Arc<Closure>>> = vec![None; program.globals.len()];
        let globals: Vec<VarCell> = (0..program.globals.len()).map(|_| VarCell::new(Value::Unset)).collect();
        for (global, def) in &program.functions {
            let closure = Arc::new(Closure { def: def.clone(), upvalues: Box::new([]) });
            *globals[*global as usize].lock() = Value::Func(closure.clone());
            funcs[*global as usize] = Some(closure);
        }
        Process { globals, global_names: program.globals.clone(), funcs, args, cancel }
    }
}
