//! What every task of one OS process shares: the globals, the top-level
//! functions, the script's arguments, the source (for reports), the tasks
//! it started, and the fork gate.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::{Mutex, RwLock};

use crate::report::Source;
use crate::resolve::ir::Program;
use crate::runtime::Value;
use crate::runtime::pool::Pool;
use crate::runtime::task::{Task, TaskKind};
use crate::runtime::value::{Closure, VarCell};
use crate::runtime::wire::FnTable;
use crate::sync::gate::Gate;
use crate::sync::shm::{self, Off};

use super::spawn::Forker;

/// A snapshot of a process's tables, taken when an evaluator starts and
/// borrowed by it for its whole life (so reading a global or calling a
/// top-level function touches no lock and no reference count).
pub struct Tables {
    pub globals: Arc<[Arc<VarCell>]>,
    pub funcs: Arc<[Option<Arc<Closure>>]>,
    pub functions: Arc<FnTable>,
}

/// The default limit on live tasks (`--max-tasks`).
pub const DEFAULT_MAX_TASKS: usize = 500;

pub struct Process {
    /// The globals, by index. A REPL session adds globals as inputs come:
    /// each evaluator works from the table as it was when it started (its
    /// code cannot name a newer global), so reading needs no lock here.
    pub globals: RwLock<Arc<[Arc<VarCell>]>>,
    /// Globals set once by their `let` (the resolver's `Fixed`; never in
    /// a REPL session, whose inputs may assign any global later).
    pub fixed: Vec<OnceLock<Value>>,
    pub global_names: RwLock<Vec<Arc<str>>>,
    /// Top-level functions, indexed like the globals that name them.
    pub funcs: RwLock<Arc<[Option<Arc<Closure>>]>>,
    /// Every function of the program, by id, for values that travel.
    pub functions: RwLock<Arc<FnTable>>,
    pub args: Vec<String>,
    /// The text spans point into (a REPL session's grows with each input).
    pub source: RwLock<Source>,
    /// The task running this process's first code: the script's top level
    /// (`MainProcess`), or in a child the task it was spawned for.
    pub main_task: RwLock<Arc<Task>>,
    /// Tasks started here and not yet reaped.
    pub tasks: Mutex<Vec<Arc<Task>>>,
    /// With `--race`: the non-daemon tasks that ended and left `tasks`
    /// unjoined; the process's end joins them (it waits for them all).
    pub race_ended: Mutex<Vec<u64>>,
    /// Live tasks of the whole run (all processes), in the shared region.
    live: Off,
    pub max_tasks: usize,
    next_thread: AtomicU32,
    next_process: AtomicU32,
    next_task_id: AtomicU64,
    /// `exit(n)` was called in some task: the process ends with `n`.
    pub exit_request: Mutex<Option<i32>>,
    /// Forks happen only when every task is at a safepoint (`sync::gate`).
    pub gate: Gate,
    /// The thread that forks for this process, started on first `spawn`.
    pub forker: Mutex<Option<Forker>>,
    /// Held for the whole of a fork (the main task and the forker may both fork).
    pub fork_lock: Mutex<()>,
    /// Pools made here, ended at the end of the run if still open.
    pub pools: Mutex<Vec<Weak<Pool>>>,
    /// This process is a pool's worker (for clearer errors).
    pub pool_worker: AtomicBool,
}

impl Process {
    pub fn new(program: &Program, source: Source, args: Vec<String>, max_tasks: usize) -> Arc<Process> {
        let live = shm::region().and_then(|r| r.alloc(8)).unwrap_or(0);
        // Before any fork: every process of the run shares this board.
        crate::sync::board::init(max_tasks);
        crate::runtime::output::init();
        // Queue items and shared values hold references to the primitives they name.
        crate::sync::refs::set_scanner(crate::runtime::wire::handles_in);
        let pid = nix::unistd::getpid().as_raw() as u64;
        let process = Arc::new(Process {
            globals: RwLock::new(Arc::from(Vec::new())),
            fixed: (0..program.globals.len()).map(|_| OnceLock::new()).collect(),
            global_names: RwLock::new(Vec::new()),
            funcs: RwLock::new(Arc::from(Vec::new())),
            functions: RwLock::new(Arc::default()),
            args,
            source: RwLock::new(source),
            main_task: RwLock::new(Arc::new(Task::new(pid << 32, "MainProcess".into(), TaskKind::Process, false))),
            tasks: Mutex::new(Vec::new()),
            race_ended: Mutex::new(Vec::new()),
            live,
            max_tasks,
            next_thread: AtomicU32::new(1),
            next_process: AtomicU32::new(1),
            next_task_id: AtomicU64::new(1),
            exit_request: Mutex::new(None),
            gate: Gate::default(),
            forker: Mutex::new(None),
            fork_lock: Mutex::new(()),
            pools: Mutex::new(Vec::new()),
            pool_worker: AtomicBool::new(false),
        });
        process.live().store(1, Ordering::SeqCst);
        process.extend(program);
        process
    }

    /// Takes in a program's globals and functions: the new ones are added,
    /// and top-level functions it defines replace any of the same name.
    pub fn extend(&self, program: &Program) {
        let mut globals: Vec<Arc<VarCell>> = self.globals.read().to_vec();
        while globals.len() < program.globals.len() {
            globals.push(Arc::new(VarCell::new(Value::Unset)));
        }
        let mut funcs: Vec<Option<Arc<Closure>>> = self.funcs.read().to_vec();
        funcs.resize(program.globals.len().max(funcs.len()), None);
        for (global, def) in &program.functions {
            let closure = Arc::new(Closure { def: def.clone(), upvalues: Box::new([]) });
            *globals[*global as usize].lock() = Value::Func(closure.clone());
            funcs[*global as usize] = Some(closure);
        }
        let mut functions: FnTable = (**self.functions.read()).clone();
        functions.extend(program.all_functions.iter().map(|def| (def.id, def.clone())));
        *self.globals.write() = globals.into();
        *self.funcs.write() = funcs.into();
        *self.functions.write() = Arc::new(functions);
        *self.global_names.write() = program.globals.clone();
    }

    /// The globals that are set, as `[[index, value], ...]` bytes; a value
    /// that cannot travel (a primitive, a task) is left out. What a
    /// cluster's worker is given of the script's top level.
    pub fn globals_snapshot(&self) -> Vec<u8> {
        let cells = self.globals.read().clone();
        let funcs = self.funcs.read().clone();
        let mut items: Vec<Vec<u8>> = Vec::new();
        for (i, cell) in cells.iter().enumerate() {
            // A top-level function is bound on every worker already.
            if funcs.get(i).is_some_and(Option::is_some) {
                continue;
            }
            let value = match self.fixed.get(i).and_then(OnceLock::get) {
                Some(value) => value.clone(),
                None => cell.lock().clone(),
            };
            if matches!(value, Value::Unset) {
                continue;
            }
            let Ok(bytes) = crate::runtime::wire::encode(&value) else { continue };
            if crate::runtime::wire::primitive_in(&bytes).is_some() {
                continue;
            }
            let index = crate::runtime::wire::encode(&Value::Int(i as i64)).unwrap_or_default();
            items.push(crate::runtime::wire::encode_list(&[&index, &bytes]));
        }
        let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
        crate::runtime::wire::encode_list(&refs)
    }

    /// Sets the globals a snapshot holds (see [`Process::globals_snapshot`]).
    pub fn take_globals(&self, snapshot: &[u8]) -> Result<(), crate::runtime::error::Fault> {
        let functions = self.functions.read().clone();
        let Value::List(items) = crate::runtime::wire::decode(snapshot, &functions)? else { return Ok(()) };
        let cells = self.globals.read().clone();
        for item in items.lock().iter() {
            let Value::List(pair) = item else { continue };
            let pair = pair.lock();
            let (Some(Value::Int(i)), Some(value)) = (pair.first(), pair.get(1)) else { continue };
            let i = *i as usize;
            if let Some(fixed) = self.fixed.get(i) {
                let _ = fixed.set(value.clone());
            }
            if let Some(cell) = cells.get(i) {
                *cell.lock() = value.clone();
            }
        }
        Ok(())
    }

    /// The tables as they are now.
    pub fn tables(&self) -> Tables {
        Tables {
            globals: self.globals.read().clone(),
            funcs: self.funcs.read().clone(),
            functions: self.functions.read().clone(),
        }
    }

    pub fn main_task(&self) -> Arc<Task> {
        self.main_task.read().clone()
    }

    /// The run's count of live tasks (every process shares it).
    pub fn live(&self) -> &AtomicU64 {
        static FALLBACK: AtomicU64 = AtomicU64::new(0);
        match (shm::region(), self.live) {
            (Some(region), off) if off != 0 => region.get::<AtomicU64>(off),
            _ => &FALLBACK,
        }
    }

    /// `Thread-1`, `Thread-2`, ...
    pub fn next_thread_name(&self) -> String {
        format!("Thread-{}", self.next_thread.fetch_add(1, Ordering::Relaxed))
    }

    /// `Process-1`, `Process-2`, ...
    pub fn next_process_name(&self) -> String {
        format!("Process-{}", self.next_process.fetch_add(1, Ordering::Relaxed))
    }

    /// A task id unique in the run: this process's pid, then a counter.
    pub fn next_task_id(&self) -> u64 {
        ((nix::unistd::getpid().as_raw() as u64) << 32) | self.next_task_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Cancels every task of this process, the main one included (Ctrl-C,
    /// or `exit(n)` in a thread), and asks child processes to end.
    pub fn cancel_all(&self) {
        self.main_task().cancel.cancel();
        for task in self.tasks.lock().iter() {
            task.cancel.cancel();
            if let Some(child) = task.child.get() {
                child.signal(nix::sys::signal::Signal::SIGTERM);
            }
        }
    }

    /// `exit(code)` from any task: the process ends with `code` (the first
    /// exit wins) as soon as its tasks have run their `finally` blocks.
    pub fn request_exit(&self, code: i32) {
        self.exit_request.lock().get_or_insert(code);
        self.cancel_all();
    }

    /// The run is ending early (`exit`, Ctrl-C, SIGTERM, a deadlock): tasks
    /// still running are not waited for, and children get SIGTERM then
    /// SIGKILL.
    pub fn ending(&self) -> bool {
        crate::signals::interrupted()
            || crate::signals::terminated()
            || crate::observe::deadlock::deadlocked()
            || self.exit_request.lock().is_some()
    }

    /// Every task of this process (the main one included).
    pub fn all_tasks(&self) -> Vec<Arc<Task>> {
        let mut all = vec![self.main_task()];
        all.extend(self.tasks.lock().iter().filter(|t| t.kind == TaskKind::Thread).cloned());
        all
    }

    /// In a new child: it starts afresh with `task` as its first task.
    pub fn become_child(&self, task: Arc<Task>) {
        *self.main_task.write() = task;
        self.next_thread.store(1, Ordering::Relaxed);
        self.next_process.store(1, Ordering::Relaxed);
        self.next_task_id.store(1, Ordering::Relaxed);
        *self.exit_request.lock() = None;
        // The parent's pools are its own: their threads do not exist here.
        std::mem::forget(std::mem::take(&mut *self.pools.lock()));
    }
}
