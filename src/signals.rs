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
//!
//! # A child starts without a listener
//!
//! Starting the thread cost a third of a `spawn` plus `join`. A child
//! process, which has one task and no child of its own at first, instead
//! has a handler of its own that only notes the signal and flags its main
//! task ([`defer_for_child`]); the listener starts ([`listen_now`]) when a
//! flagged task reaches its next statement, and before the child first
//! blocks, starts a thread or starts a process: then it takes the
//! signals noted so far, and everything goes on as in any process. A
//! child that only computes never starts it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, pthread_sigmask, sigaction};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use parking_lot::Mutex;
use signal_hook::consts::{SIGQUIT, SIGTERM};
use signal_hook::iterator::backend::{Handle, SignalDelivery};
use signal_hook::iterator::exfiltrator::SignalOnly;

use crate::eval::Process;
use crate::sync::cancel::CancelToken;
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
        let mut signals =
            SignalDelivery::with_pipe(read, write, SignalOnly, ANSWERED.map(|signal| signal as i32)).ok()?;
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
}

/// The three signals a listener answers.
const ANSWERED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGQUIT];

/// [`ANSWERED`], as a set to block.
pub fn answered_set() -> SigSet {
    let mut set = SigSet::empty();
    ANSWERED.iter().for_each(|&signal| set.add(signal));
    set
}

/// In a child whose listener has not started: true, and the signals that
/// came meanwhile (a bit per signal number).
static DEFERRING: AtomicBool = AtomicBool::new(false);
static NOTED: AtomicU32 = AtomicU32::new(0);
/// The cancel token of the child's main task, which the handler flags.
static MAIN_TOKEN: AtomicPtr<CancelToken> = AtomicPtr::new(std::ptr::null_mut());

/// What the listener, once started, needs: the process, and the actions
/// (signal-hook's, inherited from the parent) the handler stands in for.
struct Deferred {
    process: Arc<Process>,
    replaced: Vec<(Signal, SigAction)>,
}

static DEFERRED: Mutex<Option<Deferred>> = Mutex::new(None);
/// The child's listener, once started.
static CHILD_LISTENER: Mutex<Option<Listener>> = Mutex::new(None);

/// In a new child, before it unblocks signals: forget what the parent
/// received, and note signals rather than start a listener thread. `main`
/// (the child's main task's token) must live until [`end_child`].
pub fn defer_for_child(process: Arc<Process>, main: &Arc<CancelToken>) {
    INTERRUPTED.store(false, Ordering::SeqCst);
    TERMINATED.store(false, Ordering::SeqCst);
    NOTED.store(0, Ordering::SeqCst);
    // A listener inherited from the parent (itself a child) is the
    // parent's: its thread does not exist here.
    std::mem::forget(CHILD_LISTENER.lock().take());
    MAIN_TOKEN.store(Arc::as_ptr(main).cast_mut(), Ordering::SeqCst);
    // Restarted system calls: nothing blocks before the listener starts,
    // and code that does not expect an interruption never sees one.
    let noting = SigAction::new(SigHandler::Handler(note), SaFlags::SA_RESTART, SigSet::empty());
    let mut replaced = Vec::new();
    for signal in ANSWERED {
        // SAFETY: `note` is async-signal-safe (atomic updates only).
        if let Ok(old) = unsafe { sigaction(signal, &noting) } {
            replaced.push((signal, old));
        }
    }
    *DEFERRED.lock() = Some(Deferred { process, replaced });
    DEFERRING.store(true, Ordering::SeqCst);
}

/// The child's handler while it has no listener: notes the signal and
/// flags the main task, which starts the listener at its next statement.
/// A SIGQUIT (a task dump) also asks the main task where it is at once:
/// its answer must not wait for a listener thread to start, since the
/// dump gives answers only a moment.
extern "C" fn note(signal: libc::c_int) {
    if (0..32).contains(&signal) {
        NOTED.fetch_or(1 << signal, Ordering::SeqCst);
    }
    // SAFETY: the token lives until `end_child` clears the pointer.
    if let Some(token) = unsafe { MAIN_TOKEN.load(Ordering::SeqCst).as_ref() } {
        if signal == libc::SIGQUIT {
            token.ask_where();
        }
        token.note_signal();
    }
}

/// Starts this child's listener if it is still deferred: before the child
/// blocks, starts a thread or a process, or once a signal came. Cheap
/// otherwise (one load).
#[inline]
pub fn listen_now() {
    if DEFERRING.load(Ordering::Relaxed) {
        start_deferred();
    }
}

#[cold]
fn start_deferred() {
    let Some(Deferred { process, replaced }) = DEFERRED.lock().take() else { return };
    DEFERRING.store(false, Ordering::SeqCst);
    // Held back while the actions change hands, then answered by the
    // listener: none is lost, none is answered twice.
    let mut before = SigSet::empty();
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&answered_set()), Some(&mut before));
    *CHILD_LISTENER.lock() = Listener::listen(process, Scope::Child);
    for (signal, action) in replaced {
        // SAFETY: puts back signal-hook's own handler, which its registry
        // (inherited, and just given this child's listener) expects.
        let _ = unsafe { sigaction(signal, &action) };
    }
    let noted = NOTED.swap(0, Ordering::SeqCst);
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&before), None);
    for signal in ANSWERED {
        if noted & (1 << signal as i32) != 0 {
            let _ = nix::sys::signal::raise(signal);
        }
    }
}

/// At a child's end: stops its listener if one started. True when the
/// child was terminated: a SIGTERM the listener answered (and no `catch
/// Terminated` handled), or one noted too late for a listener.
pub fn end_child() -> bool {
    DEFERRING.store(false, Ordering::SeqCst);
    MAIN_TOKEN.store(std::ptr::null_mut(), Ordering::SeqCst);
    // Joined first: the listener answers every signal it was given
    // before it stops.
    drop(CHILD_LISTENER.lock().take());
    terminated() || NOTED.load(Ordering::SeqCst) & (1 << libc::SIGTERM) != 0
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
