//! An event in the shared region: a flag that tasks wait for.
//!
//! ```text
//! [flag u32][wait point]
//! ```
//!
//! `set` raises the flag and wakes every waiter; `clear` lowers it.

use std::sync::atomic::{AtomicU32, Ordering};

use super::shm::{Off, Shared};
use super::wait::{Interrupted, Wait, WaitPoint};
use super::{SyncError, new_object, region};

#[repr(C)]
struct State {
    flag: AtomicU32,
    point: WaitPoint,
}

// SAFETY: made only of atomics and other `Shared` types.
unsafe impl Shared for State {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event(pub Off);

impl Event {
    pub fn new() -> Result<Event, SyncError> {
        let (off, _) = new_object::<State>()?;
        Ok(Event(off))
    }

    fn state(&self) -> Result<&'static State, SyncError> {
        Ok(region()?.get::<State>(self.0))
    }

    pub fn set(&self) -> Result<(), SyncError> {
        let event = self.state()?;
        event.flag.store(1, Ordering::SeqCst);
        event.point.notify(true);
        Ok(())
    }

    pub fn clear(&self) -> Result<(), SyncError> {
        self.state()?.flag.store(0, Ordering::SeqCst);
        Ok(())
    }

    pub fn is_set(&self) -> bool {
        self.state().is_ok_and(|e| e.flag.load(Ordering::SeqCst) != 0)
    }

    /// Waits until the flag is up: `Ok(true)`, or `Ok(false)` on timeout.
    pub fn wait(&self, wait: Wait<'_>) -> Result<bool, SyncError> {
        let event = self.state()?;
        match event.point.block_on(wait, || (event.flag.load(Ordering::SeqCst) != 0).then_some(())) {
            Ok(()) => Ok(true),
            Err(Interrupted::Timeout) => Ok(false),
            Err(Interrupted::Cancelled) => Err(SyncError::Cancelled),
        }
    }
}
