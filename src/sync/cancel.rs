//! Cancellation of one task: a flag the evaluator checks between
//! statements, and a way to wake the task wherever it blocks. A blocked
//! task publishes the futex word it sleeps on ([`CancelToken::publish`]);
//! [`CancelToken::cancel`] sets the flag, bumps that word and wakes it.
//! `terminate` and Ctrl-C both come here, so no blocking call outlives a
//! cancel, and none polls.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

use nix::fcntl::OFlag;
use parking_lot::Mutex;

use super::board::What;
use super::futex;
use super::gate::Gate;
use super::wait::{Interrupted, Wait, WaitPoint};

/// Bits of the attention word.
const CANCELLED: u8 = 1;
/// A fork is coming: stop at the next statement (see `gate.rs`).
const PAUSE: u8 = 2;
/// A task dump is coming: tell the board where you are.
const WHERE: u8 = 4;
/// The cancel is a `terminate` of this task.
const TERMINATE: u8 = 8;
/// A signal came to a child with no listener yet (see `signals`).
const SIGNAL: u8 = 16;

/// Set by a second Ctrl-C, or when the grace period after the first is
/// over: `finally` blocks are no longer shielded from the cancel.
static HURRY: AtomicBool = AtomicBool::new(false);

/// No more `finally` blocks: the process ends now (cancel its tasks again
/// after this, so that shielded ones stop too).
pub fn hurry() {
    HURRY.store(true, Ordering::SeqCst);
}

#[derive(Default)]
pub struct CancelToken {
    /// `CANCELLED` and `PAUSE` bits: the evaluator loads this one word
    /// before every statement.
    flag: AtomicU8,
    /// The futex word the task sleeps on now, if any. The lock keeps the
    /// word alive while a canceller uses it: the sleeper clears it (under
    /// the lock) before it returns.
    sleeping_on: Mutex<Option<WordRef>>,
    /// Where `sleep` waits.
    nap: WaitPoint,
    /// A pipe made on first use by a task that waits on a file descriptor
    /// (`input()`): cancel writes a byte, which wakes its `poll`.
    pipe: OnceLock<Option<(OwnedFd, OwnedFd)>>,
}

/// A published futex word.
struct WordRef(*const AtomicU32);

// SAFETY: the pointer is only dereferenced under `sleeping_on`'s lock,
// while the sleeper (who owns the word's lifetime) cannot return.
unsafe impl Send for WordRef {}

/// The sleep or wait was cut short by a cancel.
#[derive(Debug, PartialEq, Eq)]
pub struct Cancelled;

impl CancelToken {
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst) & CANCELLED != 0
    }

    /// Cancelled or asked to pause: the evaluator's one check per statement.
    #[inline(always)]
    pub fn needs_attention(&self) -> bool {
        self.flag.load(Ordering::Relaxed) != 0
    }

    pub fn is_paused(&self) -> bool {
        self.flag.load(Ordering::SeqCst) & PAUSE != 0
    }

    pub fn pause(&self) {
        self.flag.fetch_or(PAUSE, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.flag.fetch_and(!PAUSE, Ordering::SeqCst);
    }

    /// Asks the task to publish the statement it is at (for a task dump).
    pub fn ask_where(&self) {
        self.flag.fetch_or(WHERE, Ordering::SeqCst);
    }

    /// Whether a task dump asked where the task is (and the question is
    /// now answered).
    pub fn take_where(&self) -> bool {
        self.flag.load(Ordering::Relaxed) & WHERE != 0 && self.flag.fetch_and(!WHERE, Ordering::SeqCst) & WHERE != 0
    }

    /// Flags a signal for the task to pass on (async-signal-safe: one
    /// atomic update).
    pub fn note_signal(&self) {
        self.flag.fetch_or(SIGNAL, Ordering::SeqCst);
    }

    /// Whether a signal was flagged (and the flag is now cleared).
    pub fn take_signal(&self) -> bool {
        self.flag.load(Ordering::Relaxed) & SIGNAL != 0 && self.flag.fetch_and(!SIGNAL, Ordering::SeqCst) & SIGNAL != 0
    }

    pub fn cancel(&self) {
        self.flag.fetch_or(CANCELLED, Ordering::SeqCst);
        if let Some(word) = &*self.sleeping_on.lock() {
            // SAFETY: published by the sleeper, which clears it under this
            // lock before the word can go away.
            let word = unsafe { &*word.0 };
            word.fetch_add(1, Ordering::SeqCst);
            futex::wake(word, u32::MAX);
            crate::observe::explore::poke(word);
        }
        self.nap.notify(true);
        if let Some(Some((_, write))) = self.pipe.get() {
            let _ = nix::unistd::write(write, b"!");
        }
    }

    /// A `finally` block is about to run after this task was cancelled:
    /// it runs as usual (its waits too) until [`CancelToken::unshield`],
    /// unless the run is in a hurry (a second Ctrl-C, or the grace period
    /// over). False when not shielded.
    pub fn shield(&self) -> bool {
        if HURRY.load(Ordering::SeqCst) || !self.is_cancelled() {
            return false;
        }
        self.flag.fetch_and(!CANCELLED, Ordering::SeqCst);
        // A hurry that came meanwhile wins.
        if HURRY.load(Ordering::SeqCst) {
            self.cancel();
        }
        true
    }

    /// `terminate` of this task (a thread): a cancel `catch Terminated`
    /// may stop.
    pub fn terminate(&self) {
        self.flag.fetch_or(TERMINATE, Ordering::SeqCst);
        self.cancel();
    }

    pub fn is_terminated(&self) -> bool {
        self.flag.load(Ordering::SeqCst) & TERMINATE != 0
    }

    /// A `catch Interrupted` or `catch Terminated` caught the cancel: the
    /// task goes on, and `finally` blocks are shielded again.
    pub fn recover(&self) {
        self.flag.fetch_and(!(CANCELLED | TERMINATE), Ordering::SeqCst);
        HURRY.store(false, Ordering::SeqCst);
    }

    /// The `finally` block is over: the task goes on being cancelled.
    pub fn unshield(&self) {
        self.flag.fetch_or(CANCELLED, Ordering::SeqCst);
    }

    /// Records the futex word the task is about to sleep on (or none).
    pub fn publish(&self, word: Option<&AtomicU32>) {
        *self.sleeping_on.lock() = word.map(|w| WordRef(w as *const AtomicU32));
    }

    /// Sleeps for `duration`, or less if cancelled; outside `gate` while
    /// asleep; `what` tells the task board where.
    pub fn sleep(&self, duration: Duration, gate: Option<&Gate>, what: What) -> Result<(), Cancelled> {
        let wait = Wait { gate, what, ..Wait::new(self, Some(duration)) };
        match self.nap.block_on(wait, || None::<()>) {
            Err(Interrupted::Timeout) => Ok(()),
            _ => Err(Cancelled),
        }
    }

    /// The pipe of [`CancelToken::wake_fd`] woke a `poll`: a cancel, or the
    /// byte of one the task recovered from (`catch Interrupted`), spent
    /// here so that the next `poll` waits again. A cancel that comes after
    /// the check is seen at the caller's next one.
    pub fn take_wake(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            return Err(Cancelled);
        }
        if let Some(Some((read, _))) = self.pipe.get() {
            let mut spent = [0u8; 64];
            while matches!(nix::unistd::read(read, &mut spent), Ok(n) if n > 0) {}
        }
        Ok(())
    }

    /// A descriptor that becomes readable when the token is cancelled, for
    /// waits in `poll` beside another descriptor.
    pub fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        crate::signals::listen_now();
        // Non-blocking: a cancel never waits to write, nor a drain to read.
        let pipe = self.pipe.get_or_init(|| nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).ok());
        let (read, write) = pipe.as_ref()?;
        // A cancel that came before the pipe existed still wakes the poll.
        if self.is_cancelled() {
            let _ = nix::unistd::write(write, b"!");
        }
        Some(read.as_fd())
    }
}
