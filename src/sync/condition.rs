//! A condition variable in the shared region, tied to a [`Lock`].
//!
//! ```text
//! [lock offset u64][waiters u32][signals u32][wait point]
//! ```
//!
//! A waiter (holding the lock) counts itself in `waiters`, releases the
//! lock, and sleeps until it can take one of the `signals` that `notify`
//! hands out (one per notify, or one per waiter for `notify all`), then
//! takes the lock again. Counting signals, rather than waking on any
//! change, means `notify` wakes exactly one waiter, as in Python.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::handle::{Handle, HandleKind};
use super::lock::Lock;
use super::shm::{Off, Shared};
use super::wait::{Interrupted, Wait, WaitPoint};
use super::{SyncError, new_object, region};

#[repr(C)]
struct State {
    lock: AtomicU64,
    waiters: AtomicU32,
    signals: AtomicU32,
    point: WaitPoint,
}

// SAFETY: made only of atomics and other `Shared` types.
unsafe impl Shared for State {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Condition(pub Off);

impl Condition {
    /// A condition on `lock` (which it then holds a reference to), or on
    /// a new lock of its own.
    pub fn new(lock: Option<Lock>) -> Result<Condition, SyncError> {
        let lock = match lock {
            Some(lock) => {
                super::refs::retain(Handle::new(HandleKind::Lock, lock.0));
                lock
            }
            None => Lock::new()?,
        };
        let (off, state) = new_object::<State>()?;
        state.lock.store(lock.0, Ordering::SeqCst);
        Ok(Condition(off))
    }

    /// Frees a condition no one references; its lock goes to `work`.
    pub(super) fn take_apart(&self, work: &mut Vec<Handle>) {
        if let Ok(lock) = self.lock() {
            work.push(Handle::new(HandleKind::Lock, lock.0));
        }
        if let Ok(region) = region() {
            region.free(self.0);
        }
    }

    fn state(&self) -> Result<&'static State, SyncError> {
        Ok(region()?.get::<State>(self.0))
    }

    pub fn lock(&self) -> Result<Lock, SyncError> {
        Ok(Lock(self.state()?.lock.load(Ordering::SeqCst)))
    }

    /// Waits for a notify: `Ok(true)`, or `Ok(false)` when the deadline
    /// passed. Task `me` must hold the lock; it holds it again on return.
    pub fn wait(&self, me: u64, wait: Wait<'_>) -> Result<bool, SyncError> {
        let cond = self.state()?;
        let lock = self.lock()?;
        if !lock.is_locked() || lock.owner() != me {
            return Err(SyncError::NotOwner);
        }
        cond.waiters.fetch_add(1, Ordering::SeqCst);
        lock.release()?;
        let signalled = cond.point.block_on(wait, || {
            cond.signals.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| s.checked_sub(1)).ok().map(|_| ())
        });
        cond.waiters.fetch_sub(1, Ordering::SeqCst);
        // The lock comes back even after a timeout; only a cancel stops that.
        let relock = Wait { deadline: None, timeout: None, ..wait };
        lock.acquire(me, relock)?;
        match signalled {
            Ok(()) => Ok(true),
            Err(Interrupted::Timeout) => {
                // A signal sent while we gave up would otherwise be left over.
                let waiting = cond.waiters.load(Ordering::SeqCst);
                let _ =
                    cond.signals.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| (s > waiting).then_some(waiting));
                Ok(false)
            }
            Err(Interrupted::Cancelled) => Err(SyncError::Cancelled),
        }
    }

    /// Wakes one waiter (or all). Task `me` must hold the lock.
    pub fn notify(&self, me: u64, all: bool) -> Result<(), SyncError> {
        let cond = self.state()?;
        let lock = self.lock()?;
        if !lock.is_locked() || lock.owner() != me {
            return Err(SyncError::NotOwner);
        }
        let waiting = cond.waiters.load(Ordering::SeqCst);
        let _ = cond.signals.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| match all {
            true => Some(waiting),
            false => (s < waiting).then_some(s + 1),
        });
        cond.point.notify(all);
        Ok(())
    }
}
