//! A lock in the shared region, usable between threads and processes.
//!
//! ```text
//! [state u32: 0 free, 1 held][owner u64: the holder's task id][wait point]
//! ```
//!
//! As in Python, any task may release a lock another task acquired; the
//! owner is recorded for conditions (which must be waited on by the task
//! holding their lock) and for reports. Acquirers spin, then sleep on the
//! wait point; a release wakes one sleeper.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::shm::{Off, Shared};
use super::wait::{Interrupted, Wait, WaitPoint};
use super::{SyncError, new_object, region};

#[repr(C)]
pub(super) struct LockState {
    state: AtomicU32,
    _pad: u32,
    owner: AtomicU64,
    point: WaitPoint,
}

// SAFETY: made only of atomics and other `Shared` types.
unsafe impl Shared for LockState {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lock(pub Off);

impl Lock {
    pub fn new() -> Result<Lock, SyncError> {
        let (off, _) = new_object::<LockState>()?;
        Ok(Lock(off))
    }

    fn state(&self) -> Result<&'static LockState, SyncError> {
        Ok(region()?.get::<LockState>(self.0))
    }

    /// Takes the lock for task `me`, waiting as `wait` allows.
    pub fn acquire(&self, me: u64, wait: Wait<'_>) -> Result<(), SyncError> {
        let lock = self.state()?;
        let taken = lock
            .point
            .block_on(wait, || lock.state.compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed).ok().map(|_| ()));
        match taken {
            Ok(()) => {
                lock.owner.store(me, Ordering::SeqCst);
                Ok(())
            }
            Err(Interrupted::Timeout) => Err(SyncError::Timeout),
            Err(Interrupted::Cancelled) => Err(SyncError::Cancelled),
        }
    }

    pub fn release(&self) -> Result<(), SyncError> {
        let lock = self.state()?;
        lock.owner.store(0, Ordering::SeqCst);
        if lock.state.swap(0, Ordering::SeqCst) == 0 {
            return Err(SyncError::NotLocked);
        }
        lock.point.notify(false);
        Ok(())
    }

    pub fn is_locked(&self) -> bool {
        self.state().is_ok_and(|l| l.state.load(Ordering::SeqCst) != 0)
    }

    /// The task holding the lock (0: none).
    pub fn owner(&self) -> u64 {
        self.state().map_or(0, |l| l.owner.load(Ordering::SeqCst))
    }
}
