//! Cancellation: a flag the evaluator checks between statements, and an
//! interruptible sleep. `terminate` of a task and Ctrl-C set the flag and
//! wake the sleeper, so no blocking call outlives a cancel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

#[derive(Default)]
pub struct CancelToken {
    flag: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
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
