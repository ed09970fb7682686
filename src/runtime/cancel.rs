//! Cancellation: a flag the evaluator checks between statements, and an
//! interruptible sleep. `terminate` of a task and Ctrl-C set the flag and
//! wake the sleeper, so no blocking call outlives a cancel.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

#[derive(Default)]
pub struct CancelToken {
    flag: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
    /// A pipe made on first use by a task that waits on a file descriptor
    /// (`input()`): cancel writes a byte, which wakes its `poll`.
    pipe: OnceLock<Option<(OwnedFd, OwnedFd)>>,
}

/// The sleep or wait was cut short by a cancel.
#[derive(Debug, PartialEq, Eq)]
pub struct Cancelled;

impl CancelToken {
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _guard = self.lock.lock();
        self.wake.notify_all();
        if let Some(Some((_, write))) = self.pipe.get() {
            let _ = nix::unistd::write(write, b"!");
        }
    }

    /// A descriptor that becomes readable when the token is cancelled, for
    /// waits in `poll` beside another descriptor.
    pub fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        let pipe = self.pipe.get_or_init(|| nix::unistd::pipe().ok());
        let (read, write) = pipe.as_ref()?;
        // A cancel that came before the pipe existed still wakes the poll.
        if self.is_cancelled() {
            let _ = nix::unistd::write(write, b"!");
        }
        Some(read.as_fd())
    }

    /// Sleeps for `duration`, or less if cancelled.
    pub fn sleep(&self, duration: Duration) -> Result<(), Cancelled> {
        let deadline = Instant::now().checked_add(duration);
        let mut guard = self.lock.lock();
        loop {
            if self.is_cancelled() {
                return Err(Cancelled);
            }
            match deadline {
                Some(deadline) => {
                    if self.wake.wait_until(&mut guard, deadline).timed_out() {
                        return match self.is_cancelled() {
                            true => Err(Cancelled),
                            false => Ok(()),
                        };
                    }
                }
                None => self.wake.wait(&mut guard),
            }
        }
    }
}
