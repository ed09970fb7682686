//! Tasks: `thread`, `join`, `terminate`, `current()`, `active()`, and the
//! end of a run. A thread runs its own [`Interp`] on an OS thread with a
//! large stack, sharing the process's globals; no lock is held while it
//! runs, so threads run truly in parallel.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::eval::call::ArgValues;
use crate::eval::{Ctrl, Interp, R, Up, fault_at};
use crate::observe::{explore, race};
use crate::report::Report;
use crate::resolve::ir::{Expr, TaskTarget};
use crate::runtime::error::{ErrorValue, Kind, type_error};
use crate::runtime::task::{Outcome, Task, TaskKind, named};
use crate::runtime::{Value, format, output};
use crate::sync::board::{self, Op, What};
use crate::sync::cancel::CancelToken;
use crate::sync::history;
use crate::sync::wait::Wait;
use crate::syntax::Span;

use super::process::Process;
use super::spawn::{end_processes, settle};

impl<'p> Interp<'p> {
    /// `thread` / `spawn [daemon] target [as name]`: evaluates the target's
    /// function and arguments here, then starts the task.
    pub(crate) fn start_task(
        &mut self,
        process: bool,
        daemon: bool,
        target: &TaskTarget,
        name: Option<&Expr>,
        up: Up,
        span: Span,
    ) -> R<Value> {
        let (callee, args) = match target {
            TaskTarget::Call(callee, args) => (self.eval(callee, up)?, self.eval_args(args, up)?),
            TaskTarget::Block(def) => (self.closure(def, up), ArgValues::default()),
        };
        if !matches!(callee, Value::Func(_) | Value::Builtin(_)) {
            return Err(fault_at(type_error(format!("{} is not a function", callee.type_name())), span));
        }
        let proc = self.proc;
        let name = match (name, process) {
            (Some(name), _) => format::display(&self.eval(name, up)?),
            (None, true) => proc.next_process_name(),
            (None, false) => proc.next_thread_name(),
        };
        prune(proc);
        if process {
            return self.start_process(callee, args, daemon, name, span);
        }
        self.reserve_task(span)?;
        let job = move |interp: &mut Interp| interp.call_value(&callee, args, span);
        match start_thread_job(proc, name, daemon, span, job) {
            Ok(task) => {
                // The new thread may run first.
                self.point(span);
                Ok(Value::Task(task))
            }
            Err(message) => {
                proc.live().fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                Err(fault_at(ErrorValue::new(Kind::Resource, message), span))
            }
        }
    }

    /// Counts a new live task against `--max-tasks`.
    pub(crate) fn reserve_task(&self, span: Span) -> R<()> {
        use std::sync::atomic::Ordering;
        let proc = self.proc;
        if proc.live().fetch_add(1, Ordering::SeqCst) >= proc.max_tasks as u64 {
            proc.live().fetch_sub(1, Ordering::SeqCst);
            let error =
                ErrorValue::new(Kind::Resource, format!("too many live tasks: the limit is {}", proc.max_tasks))
                    .with_help("join tasks before starting more, or raise the limit with --max-tasks N");
            return Err(fault_at(error, span));
        }
        Ok(())
    }

    /// `join t` / `join t timeout s`.
    pub(crate) fn join(&mut self, target: &Value, timeout: Option<Duration>, span: Span) -> R<Value> {
        let Value::Task(task) = target else {
            return Err(fault_at(type_error(format!("cannot join {}", target.type_name())), span));
        };
        if Arc::ptr_eq(task, &self.task) {
            let error = ErrorValue::new(Kind::Value, "a task cannot join itself").with_help("it would wait forever");
            return Err(fault_at(error, span));
        }
        let outcome = match task.kind {
            TaskKind::Process => match self.join_process(task, timeout, span)? {
                Some(outcome) => outcome,
                None => return Ok(Value::Nil),
            },
            TaskKind::Thread => {
                let wait = self.wait_in(timeout, Op::JoinThread, task.id, span);
                if !task.wait(wait).map_err(|_| Ctrl::Cancelled)? {
                    return Ok(Value::Nil);
                }
                task.reap();
                task.outcome()
            }
        };
        race::joined(task.race_id.load(Ordering::Relaxed));
        // The joined task may have ended because this one was cancelled
        // too (Ctrl-C, a deadlock report): this task must not go on.
        if self.cancel.is_cancelled() {
            return Err(Ctrl::Cancelled);
        }
        match outcome {
            Outcome::Returned(value) => Ok(value),
            Outcome::Failed(error) => {
                let mut failed = ErrorValue::new(
                    Kind::TaskFailed,
                    format!("{} {} failed: {}: {}", task.kind.name(), task.name, error.kind, error.message),
                );
                failed.cause = Some(error);
                Err(fault_at(failed, span))
            }
            _ => Ok(Value::Nil),
        }
    }

    /// `terminate t`: a thread is cancelled at its next statement or
    /// blocking call.
    pub(crate) fn terminate(&mut self, target: &Value, span: Span) -> R<()> {
        match target {
            Value::Task(task) if Arc::ptr_eq(task, &self.proc.main_task()) => {
                let error = ErrorValue::new(Kind::Value, "the main task cannot be terminated")
                    .with_help("use exit(code) to end the script");
                Err(fault_at(error, span))
            }
            Value::Task(task) => {
                match task.child.get() {
                    Some(child) if task.is_alive() => child.signal(nix::sys::signal::Signal::SIGTERM),
                    _ => task.cancel.terminate(),
                }
                Ok(())
            }
            other => Err(fault_at(type_error(format!("cannot terminate {}", other.type_name())), span)),
        }
    }

    /// `t.name`, `t.alive`, ...
    pub(crate) fn task_field(&self, task: &Task, name: &str) -> Result<Value, Box<ErrorValue>> {
        refresh(self.proc, task);
        Ok(match name {
            "name" => Value::str(&task.name),
            "pid" => Value::Int(task.pid() as i64),
            "alive" => Value::Bool(task.running()),
            "daemon" => Value::Bool(task.daemon),
            "kind" => Value::str(task.kind.name()),
            "exitcode" => task.exitcode().map_or(Value::Nil, Value::Int),
            _ => {
                return Err(type_error(format!("a {} has no field `{name}`", task.kind.name())).with_help(format!(
                    "tasks have {}",
                    crate::runtime::format::english_list(crate::runtime::task::TASK_FIELDS)
                )));
            }
        })
    }

    /// `active()`: the live tasks this process started.
    pub(crate) fn active(&self) -> Value {
        prune(self.proc);
        let tasks = self.proc.tasks.lock();
        Value::list(tasks.iter().filter(|t| t.running()).map(|t| Value::Task(t.clone())).collect())
    }
}

/// A process that has exited is reaped at once, so its state is current.
pub(crate) fn refresh(proc: &Process, task: &Task) {
    if task.is_alive()
        && let Some(child) = task.child.get()
        && child.has_exited()
    {
        settle(proc, task);
    }
}

/// Reaps every child process of this process that has died, however it
/// died (SIGCHLD): its joiners wake, and its tasks leave the task board at
/// once, so the deadlock watch judges the ones left waiting for it.
pub fn reap_exited(proc: &Process) {
    let tasks: Vec<Arc<Task>> = proc.tasks.lock().clone();
    for task in &tasks {
        refresh(proc, task);
    }
}

/// Forgets tasks that have ended (joining finished threads' OS threads and
/// reaping exited processes), so the registry does not grow without end.
fn prune(proc: &Process) {
    let tasks: Vec<Arc<Task>> = proc.tasks.lock().clone();
    for task in &tasks {
        refresh(proc, task);
        task.reap();
    }
    let mut ended = Vec::new();
    proc.tasks.lock().retain(|t| {
        let kept = t.is_alive() || t.os_thread.lock().is_some();
        if !kept && !t.daemon && race::on() {
            ended.push(t.race_id.load(Ordering::Relaxed));
        }
        kept
    });
    proc.race_ended.lock().extend(ended);
}

/// Starts a thread task running `job` (a call, or a pool worker's loop).
/// The caller has counted the task against `--max-tasks`.
pub(crate) fn start_thread_job(
    proc: &Arc<Process>,
    name: String,
    daemon: bool,
    span: Span,
    job: impl FnOnce(&mut Interp) -> R<Value> + Send + 'static,
) -> Result<Arc<Task>, String> {
    // A child's first thread: its signal listener comes first.
    crate::signals::listen_now();
    // Before anything is made: a full table leaves nothing to undo.
    let pid = nix::unistd::getpid().as_raw();
    let ticket = explore::register(&name, pid)?;
    let task = Arc::new(Task::new(proc.next_task_id(), name, TaskKind::Thread, daemon));
    let race = race::start(span);
    if let Some(start) = &race {
        task.race_id.store(start.id(), Ordering::Relaxed);
    }
    task.schedule.store(ticket.map_or(0, explore::Ticket::to_bits), Ordering::SeqCst);
    proc.tasks.lock().push(task.clone());
    let (proc_for_thread, task_for_thread) = (proc.clone(), task.clone());
    // The new thread holds a pass through the fork gate from its start,
    // handed over by this one (which holds one); if a fork is pending, it
    // pauses at its first statement.
    if proc.gate.hand_over() {
        task.cancel.pause();
    }
    // Listed before it starts: the board never misses a running task.
    let listing = board::claim(task.id, pid, board::Owner::Thread, &task.name);
    let started = std::thread::Builder::new()
        .name(task.name.clone())
        .stack_size(crate::runtime::stack::thread_size())
        .spawn(move || {
            let _listed = listing.map(|claim| claim.adopt(task_for_thread.id, pid));
            history::record(history::Event::TaskBegins { name: task_for_thread.name.clone(), process: false });
            race::begin(race, &format!("thread {}", task_for_thread.name));
            explore::begin(ticket, Some(&proc_for_thread.gate));
            run_thread(proc_for_thread, task_for_thread, job);
            history::record(history::Event::TaskEnds);
            crate::sync::gate::ending();
        });
    match started {
        Ok(handle) => {
            *task.os_thread.lock() = Some(handle);
            Ok(task)
        }
        Err(e) => {
            proc.gate.leave();
            explore::abandon(ticket);
            task.finish(Outcome::Terminated);
            Err(format!("cannot start a thread: {e}"))
        }
    }
}

/// The body of a thread: runs its job, reports an uncaught error naming
/// the thread, records the outcome. It holds a pass through the fork gate
/// (taken by its starter) until its very end.
fn run_thread(proc: Arc<Process>, task: Arc<Task>, job: impl FnOnce(&mut Interp) -> R<Value>) {
    let tables = proc.tables();
    // A panic is a bug in concsh: it is reported as one, and the thread
    // still gives back its pass through the fork gate.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        job(&mut Interp::for_task(&proc, &tables, task.clone()))
    }))
    .unwrap_or_else(|_| {
        let error = ErrorValue::new(Kind::Error, "internal error in concsh (a panic)")
            .with_help("this is a bug in concsh; please report it with the script");
        Err(Ctrl::Error(error))
    });
    let outcome = match result {
        Ok(value) => Outcome::Returned(value),
        Err(Ctrl::Error(mut error)) => {
            error.task = Some(named(&format!("{} {}", task.kind.name(), task.name), task.pid()));
            output::report(&Report::runtime(&proc.source.read(), &error).render());
            Outcome::Failed(Arc::new(*error))
        }
        Err(Ctrl::Exit(code)) => {
            // `exit(n)` ends the whole process, from any thread.
            proc.request_exit(code);
            Outcome::Exited(code)
        }
        Err(Ctrl::Cancelled) => Outcome::Terminated,
        Err(_) => Outcome::Returned(Value::Nil),
    };
    proc.live().fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    // Kept before the task is seen to end: a joiner reads it at once.
    race::end();
    task.finish(outcome);
    proc.gate.leave();
    explore::end();
}

/// How long a child process gets between SIGTERM and SIGKILL, and the
/// `finally` blocks of a cancelled run before they are cut short.
pub const GRACE: Duration = Duration::from_secs(2);

/// The end of a run (or of a child process): every non-daemon task is
/// waited for (they may start more, so until none is left); daemon tasks
/// are then ended; every OS thread is joined and every child reaped. After
/// Ctrl-C (`hurry`), child processes get SIGTERM, then SIGKILL.
pub fn finish_tasks(proc: &Process, hurry: bool) {
    super::pool::end_pools(proc);
    let patient = CancelToken::default();
    loop {
        let pending: Vec<Arc<Task>> = proc.tasks.lock().iter().filter(|t| !t.daemon && t.running()).cloned().collect();
        if pending.is_empty() {
            break;
        }
        let (processes, threads): (Vec<_>, Vec<_>) = pending.into_iter().partition(|t| t.child.get().is_some());
        if hurry {
            end_processes(proc, &processes, GRACE);
        }
        // Joins at the end of the script: the deadlock watch judges them.
        let join = |op, target| Wait::new(&patient, None).doing(What { op, target, span: (0, 0) });
        for task in processes {
            if let Some(child) = task.child.get() {
                let _ = child.wait_exit(join(Op::JoinProcess, child.pid.as_raw() as u64));
            }
            settle(proc, &task);
        }
        for task in threads {
            let _ = task.wait(join(Op::JoinThread, task.id));
        }
    }
    let all: Vec<Arc<Task>> = proc.tasks.lock().drain(..).collect();
    // Every non-daemon task has ended, and was waited for: joined for the
    // race detector too, so a forked task's end covers all its threads
    // (those that ended early and left the registry included).
    if race::on() {
        let ended = all.iter().filter(|t| !t.daemon && !t.is_alive()).map(|t| t.race_id.load(Ordering::Relaxed));
        let ended: Vec<u64> = proc.race_ended.lock().drain(..).chain(ended).collect();
        for id in ended {
            race::joined(id);
        }
    }
    for task in &all {
        task.cancel.cancel();
    }
    end_processes(proc, &all, GRACE);
    for task in &all {
        let _ = task.wait(Wait::new(&patient, None));
        task.reap();
    }
}
