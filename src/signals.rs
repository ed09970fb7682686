//! Ctrl-C and `terminate`. The handlers only record the signal (through
//! signal-hook's self-pipe); a small listener thread then cancels every
//! task of the process (which wakes any sleeping or blocked one) and asks
//! child processes to end. SIGINT ends a run with status 130; SIGTERM
//! (what `terminate` sends a process) ends it as if killed by SIGTERM.
//! SIGQUIT (Ctrl-\) prints a task dump and the run goes on: the first
//! process prints it, every process passes the question to its children.
//! SIGCHLD reaps a child that died, whatever the rest of the process is
//! doing (a SIGKILLed child must not stay a zombie on the task board); it
//! is blocked in every thread and read from a signalfd, so no handler runs
//! for it (see [`route_children_signals`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use signal_hook::consts::{SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::backend::{Handle, SignalDelivery};
use signal_hook::iterator::exfiltrator::SignalOnly;

use crate::eval::Process;
use crate::tasks::task::GRACE;

/// Set once Ctrl-C (SIGINT) arrived.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Set once SIGTERM arrived.
static TERMINATED: AtomicBool = AtomicBool::new(false);

/// What Ctrl-C ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The whole run (a script).
    Everything,
    /// The statement the REPL is running.
    Statement,
    /// A child process: it ends as a whole, and leaves task dumps to the
    /// run's first process.
    Child,
}

/// Listens for SIGINT and SIGTERM until dropped.
pub struct Listener {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Cancels every task of `process` when a signal comes.
    pub fn start(process: Arc<Process>) -> Option<Listener> {
        Listener::listen(process, Scope::Everything)
    }

    /// At the REPL's prompt Ctrl-C stops only the statement running (the
    /// main task); background tasks go on. SIGTERM still ends everything.
    pub fn start_repl(process: Arc<Process>) -> Option<Listener> {
        Listener::listen(process, Scope::Statement)
    }

    fn listen(process: Arc<Process>, interrupt: Scope) -> Option<Listener> {
        let (read, write) = UnixStream::pair().ok()?;
        let pipe = read.as_raw_fd();
        let mut signals = SignalDelivery::with_pipe(read, write, SignalOnly, [SIGINT, SIGTERM, SIGQUIT]).ok()?;
        let handle = signals.handle();
        let closed = handle.clone();
        let children =
            SignalFd::with_flags(&children_signals(), SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).ok()?;
        let thread =
            crate::sync::gate::start_helper(std::thread::Builder::new().name("concsh-signals".into()), move || {
                // SAFETY: the pipe's read end lives in `signals`, owned by
                // this thread until it returns.
                let pipe = unsafe { BorrowedFd::borrow_raw(pipe) };
                // When the `finally` blocks of a cancelled run are cut short.
                let mut grace_ends: Option<Instant> = None;
                loop {
                    let mut ready =
                        [PollFd::new(pipe, PollFlags::POLLIN), PollFd::new(children.as_fd(), PollFlags::POLLIN)];
                    let timeout = match grace_ends {
                        Some(end) => {
                            let left = end.saturating_duration_since(Instant::now()).as_millis();
                            PollTimeout::try_from(left.min(60_000) as i32).unwrap_or(PollTimeout::ZERO)
                        }
                        None => PollTimeout::NONE,
                    };
                    if let Err(e) = poll(&mut ready, timeout)
                        && e != nix::errno::Errno::EINTR
                    {
                        return;
                    }
                    if grace_ends.is_some_and(|end| Instant::now() >= end) {
                        grace_ends = None;
                        // Unless a `catch Interrupted` (or `Terminated`) handled it.
                        if interrupted() || terminated() {
                            cut_short(&process);
                        }
                    }
                    if ready[1].revents().is_some_and(|r| !r.is_empty()) {
                        while let Ok(Some(_)) = children.read_signal() {}
                        // Inside the fork gate: the registry is an interpreter lock.
                        process.gate.enter();
                        crate::eval::reap_exited(&process);
                        process.gate.leave();
                    }
                    for signal in signals.pending() {
                        if answer(&process, signal, interrupt) {
                            grace_ends = grace_ends.or(Some(Instant::now() + GRACE));
                        }
                    }
                    if closed.is_closed() {
                        return;
                    }
                }
            })
            .ok()?;
        Some(Listener { handle, thread: Some(thread) })
    }

    /// In a new child: forget what the parent received, then listen.
    pub fn start_for_child(process: Arc<Process>) -> Option<Listener> {
        INTERRUPTED.store(false, Ordering::SeqCst);
        TERMINATED.store(false, Ordering::SeqCst);
        Listener::listen(process, Scope::Child)
    }
}

/// What a signal does: SIGQUIT dumps the tasks; SIGINT and SIGTERM cancel
/// the run, or at the prompt SIGINT the statement running. True when the
/// `finally` blocks of the cancelled run now have [`GRACE`] to end.
fn answer(process: &Process, signal: i32, interrupt: Scope) -> bool {
    if signal == SIGQUIT {
        dump(process, interrupt != Scope::Child);
        return false;
    }
    let (everything, again) = match (signal, interrupt) {
        (SIGTERM, _) => (true, TERMINATED.swap(true, Ordering::SeqCst)),
        (_, Scope::Everything | Scope::Child) => (true, INTERRUPTED.swap(true, Ordering::SeqCst)),
        // At the prompt too, so that `catch Interrupted` sees it.
        (_, Scope::Statement) => {
            INTERRUPTED.store(true, Ordering::SeqCst);
            (false, false)
        }
    };
    // A second signal ends the `finally` blocks still running at once.
    if again {
        cut_short(process);
        return false;
    }
    // Ctrl-C ends a controlled run (`--explore`) as it is: every task
    // runs freely to its `finally` blocks.
    if signal != SIGTERM {
        crate::observe::explore::let_go();
    }
    // Inside the fork gate: the task registry is an interpreter lock like
    // any other.
    process.gate.enter();
    if everything {
        process.cancel_all();
    } else {
        process.main_task().cancel.cancel();
    }
    process.gate.leave();
    everything
}

/// The `finally` blocks still running after a cancel are cancelled too
/// (a second signal, or the grace period over): the run ends now.
fn cut_short(process: &Process) {
    crate::sync::cancel::hurry();
    process.gate.enter();
    process.cancel_all();
    process.gate.leave();
}

/// SIGCHLD, which no thread takes: the listener reads it from a signalfd.
fn children_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    set
}

/// Blocks SIGCHLD in the calling thread and every thread it starts later
/// (call it first thing, before any thread exists). It then never runs a
/// handler: a handler running in one thread while another forks would
/// leave signal-hook's registry marked busy in the child, which then spins
/// forever registering its own listener. Programs started with `exec`
/// inherit the mask and must unblock it.
pub fn route_children_signals() {
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&children_signals()), None);
}

/// Answers SIGQUIT: tasks say where they are, children are asked too,
/// and the first process prints the dump.
fn dump(process: &Process, print: bool) {
    // Inside the fork gate: the task registry is an interpreter lock.
    process.gate.enter();
    if !print {
        crate::eval::ask_where(process);
    }
    for task in process.tasks.lock().iter() {
        if let Some(child) = task.child.get() {
            child.signal(nix::sys::signal::Signal::SIGQUIT);
        }
    }
    process.gate.leave();
    if print {
        crate::runtime::output::report(&crate::eval::dump(process, None));
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A `catch Interrupted` (or `catch Terminated`) handled the signal: the
/// run goes on, and ends as if it never came.
pub fn handled(terminate: bool) {
    let flag = if terminate { &TERMINATED } else { &INTERRUPTED };
    flag.store(false, Ordering::SeqCst);
}

pub fn terminated() -> bool {
    TERMINATED.load(Ordering::SeqCst)
}
