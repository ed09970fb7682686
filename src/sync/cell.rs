//! Shared values: a cell, or a fixed-length array of cells, in the shared
//! region, visible to every thread and process.
//!
//! ```text
//! [lock offset u64][guard mutex u32][len u32][len slots (see slot.rs)]
//! ```
//!
//! A single cell is an array of length 1. Each read or write of an element
//! is atomic on its own (the guard is held while its slot is copied); the
//! lock is the script's (`lock n { n.value += 1 }`), separate from the guard.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::lock::Lock;
use super::mutex::RawMutex;
use super::shm::{Off, Shared};
use super::slot::{self, SLOT};
use super::{SyncError, region};

#[repr(C)]
struct Header {
    lock: AtomicU64,
    guard: RawMutex,
    len: AtomicU32,
}

// SAFETY: made only of atomics and other `Shared` types.
unsafe impl Shared for Header {}

const SLOTS_AT: u64 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedCells(pub Off);

impl SharedCells {
    /// Cells holding `values` (already serialised), with a new lock.
    pub fn new(values: &[Vec<u8>]) -> Result<SharedCells, SyncError> {
        let region = region()?;
        let len = u32::try_from(values.len()).map_err(|_| SyncError::NoSpace)?;
        let lock = Lock::new()?;
        let off = region.alloc(SLOTS_AT as usize + values.len() * SLOT).ok_or(SyncError::NoSpace)?;
        let header = region.get::<Header>(off);
        header.lock.store(lock.0, Ordering::SeqCst);
        header.len.store(len, Ordering::SeqCst);
        for (i, value) in values.iter().enumerate() {
            region.write(off + SLOTS_AT + (i * SLOT) as u64, &slot::pack(region, value)?);
        }
        Ok(SharedCells(off))
    }

    fn header(&self) -> Result<&'static Header, SyncError> {
        Ok(region()?.get::<Header>(self.0))
    }

    pub fn lock(&self) -> Result<Lock, SyncError> {
        Ok(Lock(self.header()?.lock.load(Ordering::SeqCst)))
    }

    pub fn len(&self) -> usize {
        self.header().map_or(0, |h| h.len.load(Ordering::SeqCst) as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, index: usize) -> Result<Off, SyncError> {
        match index < self.len() {
            true => Ok(self.0 + SLOTS_AT + (index * SLOT) as u64),
            false => Err(SyncError::OutOfRange),
        }
    }

    /// The serialised value of element `index`.
    pub fn load(&self, index: usize) -> Result<slot::Taken, SyncError> {
        let region = region()?;
        let at = self.slot(index)?;
        let header = self.header()?;
        header.guard.with_intact(|| slot::copy(region, &slot::read(region, at)))
    }

    /// Replaces element `index` with a serialised value.
    pub fn store(&self, index: usize, bytes: &[u8]) -> Result<(), SyncError> {
        let region = region()?;
        let at = self.slot(index)?;
        let raw = slot::pack(region, bytes)?;
        let header = self.header()?;
        let old = header.guard.with_intact(|| {
            let old = slot::read(region, at);
            region.write(at, &raw);
            old
        });
        let old = match old {
            Ok(old) => old,
            Err(broken) => {
                slot::discard(region, &raw);
                return Err(broken);
            }
        };
        slot::discard(region, &old);
        Ok(())
    }

    /// Frees cells no one references: their lock goes to `work` with the
    /// handles their values name (see `refs.rs`).
    pub(super) fn take_apart(&self, work: &mut Vec<super::handle::Handle>) {
        let Ok(region) = region() else { return };
        for at in (0..self.len()).filter_map(|index| self.slot(index).ok()) {
            slot::discard_into(region, &slot::read(region, at), work);
        }
        if let Ok(lock) = self.lock() {
            work.push(super::handle::Handle::new(super::handle::HandleKind::Lock, lock.0));
        }
        region.free(self.0);
    }
}
