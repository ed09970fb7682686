//! A lock in the shared region, usable between threads and processes.
//!
//! ```text
//! [state u32: 0 free, 1 held][abandoned by u32: the last dead holder's pid]
//! [owner u64: the holder's task id][wait point]
//! ```
//!
//! As in Python, any task may release a lock another task acquired; the
//! owner is recorded for conditions (which must be waited on by the task
//! holding their lock), for reports, and to find a holder that died.
//! Acquirers spin, then sleep on the wait point; a release wakes one
//! sleeper.
//!
//! A lock whose holder's process died is *abandoned* (by the deadlock
//! watch, which sees its waiters stuck): it is freed, the dead pid is
//! noted, and every task that was waiting for it gets `Abandoned` naming the
//! dead holder, as a robust pthread mutex answers `EOWNERDEAD`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::shm::{Off, Shared};
use super::wait::{Interrupted, Wait, WaitPoint};
use super::{SyncError, new_object, region};

#[repr(C)]
pub(super) struct LockState {
    state: AtomicU32,
    /// The pid of the last process that died holding the lock: it changes
    /// each time the lock is abandoned, which is how waiters notice.
    abandoned_by: AtomicU32,
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
        let abandoned = lock.abandoned_by.load(Ordering::SeqCst);
        let taken = lock.point.block_on(wait, || {
            let now = lock.abandoned_by.load(Ordering::SeqCst);
            if now != abandoned {
                return Some(Err(u64::from(now) << 32));
            }
            lock.state.compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed).ok().map(|_| Ok(()))
        });
        match taken {
            Ok(Ok(())) => {
                lock.owner.store(me, Ordering::SeqCst);
                Ok(())
            }
            Ok(Err(holder)) => Err(SyncError::Abandoned { holder }),
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

    /// Frees the lock if task `holder` (whose process died) still holds
    /// it; every task waiting for it then gets `Abandoned`.
    pub fn abandon(&self, holder: u64) -> bool {
        let Ok(lock) = self.state() else { return false };
        if holder == 0 || lock.owner.compare_exchange(holder, 0, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return false;
        }
        lock.abandoned_by.store((holder >> 32) as u32, Ordering::SeqCst);
        lock.state.store(0, Ordering::SeqCst);
        lock.point.notify(true);
        true
    }

    /// The task holding the lock (0: none).
    pub fn owner(&self) -> u64 {
        self.state().map_or(0, |l| l.owner.load(Ordering::SeqCst))
    }
}
