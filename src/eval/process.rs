//! What every task of one OS process shares: the globals, the top-level
//! functions, the script's arguments, the source (for reports), and the
//! registry of tasks it started.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::report::Source;
use crate::resolve::ir::Program;
use crate::runtime::Value;
use crate::runtime::task::{Task, TaskKind};
use crate::runtime::value::{Closure, VarCell};
use crate::runtime::wire::FnTable;

/// The default limit on live tasks (`--max-tasks`).
pub const DEFAULT_MAX_TASKS: usize = 500;

pub struct Process {
    pub globals: Vec<VarCell>,
    /// Globals set once by their `let` (the resolver's `Fixed`).
    pub fixed: Vec<OnceLock<Value>>,
    pub global_names: Vec<Arc<str>>,
    /// Top-level functions, indexed like the globals that name them.
    pub funcs: Vec<Option<Arc<Closure>>>,
    /// Every function of the program, by id, for values that travel.
    pub functions: FnTable,
    pub args: Vec<String>,
    pub source: Source,
    /// The task running the script's top level.
    pub main_task: Arc<Task>,
    /// Tasks started here and not yet reaped.
    pub tasks: Mutex<Vec<Arc<Task>>>,
    /// How many tasks are alive, and how many may be.
    pub live: AtomicUsize,
    pub max_tasks: usize,
    next_thread: AtomicU32,
    next_task_id: AtomicU64,
    /// `exit(n)` called in a thread: the process ends with `n`.
    pub exit_request: Mutex<Option<i32>>,
}

impl Process {
    pub fn new(program: &Program, source: Source, args: Vec<String>, max_tasks: usize) -> Arc<Process> {
        let mut funcs: Vec<Option<Arc<Closure>>> = vec![None; program.globals.len()];
        let globals: Vec<VarCell> = (0..program.globals.len()).map(|_| VarCell::new(Value::Unset)).collect();
        for (global, def) in &program.functions {
            let closure = Arc::new(Closure { def: def.clone(), upvalues: Box::new([]) });
            *globals[*global as usize].lock() = Value::Func(closure.clone());
            funcs[*global as usize] = Some(closure);
        }
        let functions = program.all_functions.iter().map(|def| (def.id, def.clone())).collect();
        let pid = nix::unistd::getpid().as_raw() as u64;
        Arc::new(Process {
            globals,
            fixed: (0..program.globals.len()).map(|_| OnceLock::new()).collect(),
            global_names: program.globals.clone(),
            funcs,
            functions,
            args,
            source,
            main_task: Arc::new(Task::new(pid << 32, "MainProcess".into(), TaskKind::Process, false)),
            tasks: Mutex::new(Vec::new()),
            live: AtomicUsize::new(1),
            max_tasks,
            next_thread: AtomicU32::new(1),
            next_task_id: AtomicU64::new(1),
            exit_request: Mutex::new(None),
        })
    }

    /// `Thread-1`, `Thread-2`, ...
    pub fn next_thread_name(&self) -> String {
        format!("Thread-{}", self.next_thread.fetch_add(1, Ordering::Relaxed))
    }

    /// A task id unique in the run: this process's pid, then a counter.
    pub fn next_task_id(&self) -> u64 {
        ((nix::unistd::getpid().as_raw() as u64) << 32) | self.next_task_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Cancels every task of this process, the main one included (Ctrl-C,
    /// or `exit(n)` in a thread).
    pub fn cancel_all(&self) {
        self.main_task.cancel.cancel();
        for task in self.tasks.lock().iter() {
            task.cancel.cancel();
        }
    }
}
