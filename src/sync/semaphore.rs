//! A bounded semaphore in the shared region: `value` permits out of
//! `limit`; acquiring takes one (waiting while none is left), releasing
//! gives one back, and giving back more than were taken is an error.
//!
//! ```text
//! [value u32][limit u32][era u32][_][abandoned by u64]
//! [holders: HOLDERS x (pid i32, permits u32)][wait point]
//! ```
//!
//! The holders table counts the permits each process holds (a release
//! counts against the releasing process first, else against any holder),
//! so that the permits of a process that died can be given back: the
//! deadlock watch does so when it sees tasks waiting, and those tasks get
//! `Abandoned` naming the dead process. Processes past the table's size
//! are not counted, and their permits are not recovered.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use super::shm::{Off, Shared};
use super::wait::{Interrupted, Wait, WaitPoint};
use super::{SyncError, new_object, region};

/// Processes whose permits are counted.
const HOLDERS: usize = 8;

#[repr(C)]
struct Holder {
    pid: AtomicI32,
    permits: AtomicU32,
}

#[repr(C)]
struct State {
    value: AtomicU32,
    limit: AtomicU32,
    /// Moves on each time permits are recovered from a dead process.
    era: AtomicU32,
    _pad: u32,
    abandoned_by: AtomicU64,
    holders: [Holder; HOLDERS],
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
        let era = sem.era.load(Ordering::SeqCst);
        let taken = sem.point.block_on(wait, || {
            if sem.era.load(Ordering::SeqCst) != era {
                return Some(Err(sem.abandoned_by.load(Ordering::SeqCst)));
            }
            sem.value.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1)).ok().map(|_| Ok(()))
        });
        match taken {
            Ok(Ok(())) => {
                sem.count(nix::unistd::getpid().as_raw());
                Ok(())
            }
            Ok(Err(holder)) => Err(SyncError::Abandoned { holder }),
            Err(Interrupted::Timeout) => Err(SyncError::Timeout),
            Err(Interrupted::Cancelled) => Err(SyncError::Cancelled),
        }
    }

    pub fn release(&self) -> Result<(), SyncError> {
        let sem = self.state()?;
        let limit = sem.limit.load(Ordering::SeqCst);
        sem.value
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| (v < limit).then_some(v + 1))
            .map_err(|_| SyncError::OverReleased)?;
        sem.uncount(nix::unistd::getpid().as_raw());
        sem.point.notify(false);
        Ok(())
    }

    /// The processes holding permits now, by pid.
    pub fn holders(&self) -> Vec<i32> {
        let Ok(sem) = self.state() else { return Vec::new() };
        let held = sem.holders.iter().filter(|h| h.permits.load(Ordering::SeqCst) > 0);
        held.map(|h| h.pid.load(Ordering::SeqCst)).collect()
    }

    /// Gives back the permits of process `pid`, which died; every task
    /// waiting for a permit then gets `Abandoned`.
    pub fn abandon(&self, pid: i32) -> bool {
        let Ok(sem) = self.state() else { return false };
        let own = sem.holders.iter().filter(|h| h.pid.load(Ordering::SeqCst) == pid);
        let permits: u32 = own.map(|h| h.permits.swap(0, Ordering::SeqCst)).sum();
        if permits == 0 {
            return false;
        }
        let limit = sem.limit.load(Ordering::SeqCst);
        let _ = sem.value.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| Some((v + permits).min(limit)));
        sem.abandoned_by.store((pid as u64) << 32, Ordering::SeqCst);
        sem.era.fetch_add(1, Ordering::SeqCst);
        sem.point.notify(true);
        true
    }

    /// Permits left now.
    pub fn value(&self) -> u32 {
        self.state().map_or(0, |s| s.value.load(Ordering::SeqCst))
    }

    pub fn limit(&self) -> u32 {
        self.state().map_or(0, |s| s.limit.load(Ordering::SeqCst))
    }
}

impl State {
    /// Counts a permit taken by process `pid`, if the table has room.
    fn count(&self, pid: i32) {
        if let Some(own) = self.holders.iter().find(|h| h.pid.load(Ordering::SeqCst) == pid) {
            own.permits.fetch_add(1, Ordering::SeqCst);
            return;
        }
        for holder in &self.holders {
            let owner = holder.pid.load(Ordering::SeqCst);
            if holder.permits.load(Ordering::SeqCst) == 0
                && holder.pid.compare_exchange(owner, pid, Ordering::SeqCst, Ordering::SeqCst).is_ok()
            {
                holder.permits.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }

    /// Counts a permit given back by process `pid`: against its own
    /// permits, else against any holder's.
    fn uncount(&self, pid: i32) {
        let take = |holder: &Holder| {
            holder.permits.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
        };
        let own = self.holders.iter().filter(|h| h.pid.load(Ordering::SeqCst) == pid);
        if !own.into_iter().any(take) {
            let _ = self.holders.iter().any(take);
        }
    }
}
