//! A task handle: what `thread` (and later `spawn`) gives, what `join`,
//! `terminate`, `current()` and `active()` work with.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use parking_lot::Mutex;

use super::child::Child;
use super::error::ErrorValue;
use super::value::Value;
use crate::sync::cancel::CancelToken;
use crate::sync::wait::{Interrupted, Wait, WaitPoint};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    Thread,
    Process,
}

impl TaskKind {
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Thread => "thread",
            TaskKind::Process => "process",
        }
    }
}

/// How a task ended, or that it has not.
#[derive(Clone, Debug)]
pub enum Outcome {
    Running,
    Returned(Value),
    Failed(Arc<ErrorValue>),
    /// Ended by `exit(n)`.
    Exited(i32),
    /// Ended by `terminate` (or, for a process, by signal N: `Signalled(N)`).
    Terminated,
    Signalled(i32),
}

/// The fields `t.name` reads on a task.
pub const TASK_FIELDS: &[&str] = &["name", "pid", "alive", "daemon", "kind", "exitcode"];

/// A task as reports name it: `thread Thread-1 (pid 42)`. A controlled
/// run (`--explore`, `--seed`) leaves the pid out, so that one seed gives
/// the same report on every run.
pub fn named(name: &str, pid: i32) -> String {
    match crate::observe::explore::on() {
        true => name.to_string(),
        false => format!("{name} (pid {pid})"),
    }
}

/// The exit code `terminate` gives a thread, as if ended by SIGTERM.
pub const TERMINATED: i64 = -15;

pub struct Task {
    /// Unique in the run: who holds a lock, who waits on a condition.
    pub id: u64,
    pub name: String,
    pub kind: TaskKind,
    pub daemon: bool,
    pid: AtomicI32,
    pub cancel: Arc<CancelToken>,
    /// For a process: its pid, pidfd and outcome slot, once forked.
    pub child: OnceLock<Child>,
    outcome: Mutex<Outcome>,
    finished: AtomicU32,
    done: WaitPoint,
    /// The OS thread running it, joined once the task has finished.
    pub os_thread: Mutex<Option<JoinHandle<()>>>,
    /// The race detector's name for it (`--race`; 0 without).
    pub race_id: AtomicU64,
    /// Its ticket in a controlled run (`--explore`; 0 without).
    pub schedule: AtomicU64,
}

impl Task {
    pub fn new(id: u64, name: String, kind: TaskKind, daemon: bool) -> Task {
        Task {
            id,
            name,
            kind,
            daemon,
            pid: AtomicI32::new(nix::unistd::getpid().as_raw()),
            cancel: Arc::new(CancelToken::default()),
            child: OnceLock::new(),
            outcome: Mutex::new(Outcome::Running),
            finished: AtomicU32::new(0),
            done: WaitPoint::default(),
            os_thread: Mutex::new(None),
            race_id: AtomicU64::new(0),
            schedule: AtomicU64::new(0),
        }
    }

    /// Its ticket in a controlled run.
    pub fn ticket(&self) -> Option<crate::observe::explore::Ticket> {
        crate::observe::explore::Ticket::from_bits(self.schedule.load(Ordering::SeqCst))
    }

    /// The OS process it runs in.
    pub fn pid(&self) -> i32 {
        self.pid.load(Ordering::SeqCst)
    }

    /// A process task's pid, known once forked.
    pub fn set_pid(&self, pid: i32) {
        self.pid.store(pid, Ordering::SeqCst);
    }

    /// Records how the task ended and wakes everyone joining it.
    pub fn finish(&self, outcome: Outcome) {
        *self.outcome.lock() = outcome;
        self.finished.store(1, Ordering::SeqCst);
        self.done.notify(true);
    }

    /// Whether the task runs, as the script sees it. In a controlled run
    /// (`--explore`) a process ends at its last step: its exit, and its
    /// parent noticing it, follow in real time, at no fixed point.
    pub fn running(&self) -> bool {
        match crate::observe::explore::ended(self.ticket()) {
            Some(ended) if self.child.get().is_some() => !ended,
            _ => self.is_alive(),
        }
    }

    pub fn is_alive(&self) -> bool {
        self.finished.load(Ordering::SeqCst) == 0
    }

    pub fn outcome(&self) -> Outcome {
        self.outcome.lock().clone()
    }

    /// `nil` while running, 0 success, 1 uncaught error, n after
    /// `exit(n)`, -N when ended by signal N (`terminate` counts as SIGTERM).
    pub fn exitcode(&self) -> Option<i64> {
        match &*self.outcome.lock() {
            Outcome::Running => None,
            Outcome::Returned(_) => Some(0),
            Outcome::Failed(_) => Some(1),
            Outcome::Exited(n) => Some(*n as i64),
            Outcome::Terminated => Some(TERMINATED),
            Outcome::Signalled(n) => Some(-(*n as i64)),
        }
    }

    /// Waits until the task has finished (false if the deadline passed).
    pub fn wait(&self, wait: Wait<'_>) -> Result<bool, Interrupted> {
        match self.done.block_on(wait, || (!self.is_alive()).then_some(())) {
            Ok(()) => Ok(true),
            Err(Interrupted::Timeout) => Ok(false),
            Err(Interrupted::Cancelled) => Err(Interrupted::Cancelled),
        }
    }

    /// Joins the OS thread of a finished task (it is then at its very end).
    pub fn reap(&self) {
        if !self.is_alive()
            && let Some(thread) = self.os_thread.lock().take()
        {
            let _ = thread.join();
        }
    }
}
