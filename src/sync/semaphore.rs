//! A bounded semaphore in the shared region: `value` permits out of
//! `limit`; acquiring takes one (waiting while none is left), releasing
//! gives one back, and giving back more than were taken is an error.
//!
//! ```text
//! [value u32][limit u32][wait point]
//! ```

use std::sync::atomic::{AtomicU32, Ordering};

use super::shm::{Off, Shared};
use super::wait::{Interrupted, Wait, WaitPoint};
use super::{SyncError, new_object, region};

#[repr(C)]
struct State {
    value: AtomicU32,
    limit: AtomicU32,
    point: WaitPoint,
}

// SAFETY: made only of atomics and other `Shared` types.
unsafe impl Shared for State {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Semaphore(pub Off);

impl Semaphore {
    /// `permits` to start with, never more than `limit` (at least `permits`).
    pub fn new(permits: u32, limit: u32) -> Result<Semaphore, SyncError> {
        let (off, state) = new_object::<State>()?;
        state.value.store(permits, Ordering::SeqCst);
        state.limit.store(limit.max(permits), Ordering::SeqCst);
        Ok(Semaphore(off))
    }

    fn state(&self) -> Result<&'static State, SyncError> {
        Ok(region()?.get::<State>(self.0))
    }

    pub fn acquire(&self, wait: Wait<'_>) -> Result<(), SyncError> {
        let sem = self.state()?;
        let taken = sem.point.block_on(wait, || {
            sem.value.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1)).ok().map(|_| ())
        });
        taken.map_err(|why| match why {
            Interrupted::Timeout => SyncError::Timeout,
            Interrupted::Cancelled => SyncError::Cancelled,
        })
    }

    pub fn release(&self) -> Result<(), SyncError> {
        let sem = self.state()?;
        let limit = sem.limit.load(Ordering::SeqCst);
        sem.value
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| (v < limit).then_some(v + 1))
            .map_err(|_| SyncError::OverReleased)?;
        sem.point.notify(false);
        Ok(())
    }

    /// Permits left now.
    pub fn value(&self) -> u32 {
        self.state().map_or(0, |s| s.value.load(Ordering::SeqCst))
    }

    pub fn limit(&self) -> u32 {
        self.state().map_or(0, |s| s.limit.load(Ordering::SeqCst))
    }
}
