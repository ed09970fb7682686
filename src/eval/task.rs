//! Tasks: `thread`, `join`, `terminate`, `current()`, `active()`, and the
//! end of a run. A thread runs its own [`Interp`] on an OS thread with a
//! large stack, sharing the process's globals; no lock is held while it
//! runs, so threads run truly in parallel.

use std::sync::Arc;
use std::time::Duration;

use super::call::ArgValues;
use super::{Ctrl, Interp, R, Up, fault_at};
use crate::report::Report;
use crate::resolve::ir::{Expr, TaskTarget};
use crate::runtime::error::{ErrorValue, Kind, type_error};
use crate::runtime::task::{Outcome, Task, TaskKind};
use crate::runtime::{Value, format, output};
use crate::sync::cancel::CancelToken;
use crate::sync::wait::Wait;
use crate::syntax::Span;

use super::process::Process;

/// Each thread's native stack: room for the language's recursion limit.
const THREAD_STACK: usize = 256 << 20;

impl<'p> Interp<'p> {
    /// `thread [daemon] target [as name]`: evaluates the target's function
    /// and arguments here, then starts the thread.
    pub(super) fn start_thread(
        &mut self,
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
        let name = match name {
            Some(name) => format::display(&self.eval(name, up)?),
            None => proc.next_thread_name(),
        };
        self.reserve_task(span)?;
        let task = Arc::new(Task::new(proc.next_task_id(), name, TaskKind::Thread, daemon));
        {
            let mut tasks = proc.tasks.lock();
            // Finished tasks leave the registry as new ones arrive.
            tasks.retain(|t| {
                t.reap();
                t.is_alive() || t.os_thread.lock().is_some()
            });
            tasks.push(task.clone());
        }
        let (proc_for_thread, task_for_thread) = (proc.clone(), task.clone());
        let started = std::thread::Builder::new()
            .name(task.name.clone())
            .stack_size(THREAD_STACK)
            .spawn(move || run_thread(proc_for_thread, task_for_thread, callee, args, span));
        match started {
            Ok(handle) => *task.os_thread.lock() = Some(handle),
            Err(e) => {
                proc.live.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                task.finish(Outcome::Terminated);
                let error = ErrorValue::new(Kind::Resource, format!("cannot start a thread: {e}"));
                return Err(fault_at(error, span));
            }
        }
        Ok(Value::Task(task))
    }

    /// Counts a new live task against `--max-tasks`.
    pub(super) fn reserve_task(&self, span: Span) -> R<()> {
        use std::sync::atomic::Ordering;
        let proc = self.proc;
        if proc.live.fetch_add(1, Ordering::SeqCst) >= proc.max_tasks {
            proc.live.fetch_sub(1, Ordering::SeqCst);
            let error =
                ErrorValue::new(Kind::Resource, format!("too many live tasks: the limit is {}", proc.max_tasks))
                    .with_help("join tasks before starting more, or raise the limit with --max-tasks N");
            return Err(fault_at(error, span));
        }
        Ok(())
    }

    /// `join t` / `join t timeout s`.
    pub(super) fn join(&mut self, target: &Value, timeout: Option<Duration>, span: Span) -> R<Value> {
        let Value::Task(task) = target else {
            return Err(fault_at(type_error(format!("cannot join {}", target.type_name())), span));
        };
        if Arc::ptr_eq(task, &self.task) {
            let error = ErrorValue::new(Kind::Value, "a task cannot join itself").with_help("it would wait forever");
            return Err(fault_at(error, span));
        }
        let finished = task.wait(Wait::new(&self.cancel, timeout)).map_err(|_| Ctrl::Cancelled)?;
        if !finished {
            return Ok(Value::Nil);
        }
        task.reap();
        match task.outcome() {
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
    pub(super) fn terminate(&mut self, target: &Value, span: Span) -> R<()> {
        match target {
            Value::Task(task) if Arc::ptr_eq(task, &self.proc.main_task) => {
                let error = ErrorValue::new(Kind::Value, "the main task cannot be terminated")
                    .with_help("use exit(code) to end the script");
                Err(fault_at(error, span))
            }
            Value::Task(task) => {
                task.cancel.cancel();
                Ok(())
            }
            other => Err(fault_at(type_error(format!("cannot terminate {}", other.type_name())), span)),
        }
    }

    /// `t.name`, `t.alive`, ...
    pub(super) fn task_field(&self, task: &Task, name: &str) -> Result<Value, Box<ErrorValue>> {
        Ok(match name {
            "name" => Value::str(&task.name),
            "pid" => Value::Int(task.pid as i64),
            "alive" => Value::Bool(task.is_alive()),
            "daemon" => Value::Bool(task.daemon),
            "kind" => Value::str(task.kind.name()),
            "exitcode" => task.exitcode().map_or(Value::Nil, Value::Int),
            _ => {
                return Err(type_error(format!("a {} has no field `{name}`", task.kind.name()))
                    .with_help("tasks have name, pid, alive, daemon, kind and exitcode"));
            }
        })
    }

    /// `active()`: the live tasks this process started.
    pub(super) fn active(&self) -> Value {
        let tasks = self.proc.tasks.lock();
        Value::list(tasks.iter().filter(|t| t.is_alive()).map(|t| Value::Task(t.clone())).collect())
    }
}

/// The body of a thread: runs the call, reports an uncaught error naming
/// the thread, records the outcome.
fn run_thread(proc: Arc<Process>, task: Arc<Task>, callee: Value, args: ArgValues, span: Span) {
    let result = Interp::for_task(&proc, task.clone()).call_value(&callee, args, span);
    let outcome = match result {
        Ok(value) => Outcome::Returned(value),
        Err(Ctrl::Error(mut error)) => {
            error.task = Some(format!("{} {} (pid {})", task.kind.name(), task.name, task.pid));
            output::report(&Report::runtime(&proc.source, &error).render());
            Outcome::Failed(Arc::new(*error))
        }
        Err(Ctrl::Exit(code)) => {
            // `exit(n)` ends the whole process, from any thread.
            proc.exit_request.lock().get_or_insert(code);
            proc.cancel_all();
            Outcome::Exited(code)
        }
        Err(Ctrl::Cancelled) => Outcome::Terminated,
        Err(_) => Outcome::Returned(Value::Nil),
    };
    proc.live.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    task.finish(outcome);
}

/// The end of a run: every non-daemon task is waited for (they may start
/// more, so until none is left); daemon tasks are then cancelled; every OS
/// thread is joined.
pub fn finish_tasks(proc: &Process) {
    let patient = CancelToken::default();
    loop {
        let pending: Vec<Arc<Task>> = proc.tasks.lock().iter().filter(|t| !t.daemon && t.is_alive()).cloned().collect();
        if pending.is_empty() {
            break;
        }
        for task in pending {
            let _ = task.wait(Wait::new(&patient, None));
        }
    }
    let all: Vec<Arc<Task>> = proc.tasks.lock().drain(..).collect();
    for task in &all {
        task.cancel.cancel();
    }
    for task in &all {
        let _ = task.wait(Wait::new(&patient, None));
        task.reap();
    }
}
