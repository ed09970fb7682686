//! Shared values: a cell, or a list of cells that grows and shrinks, in
//! the shared region, visible to every thread and process.
//!
//! ```text
//! [lock u64][guard u32][len u32][cap u32][pad u32][slots u64][cap slots (see slot.rs)]
//! ```
//!
//! A single cell is a list of length 1. The slots start inline after the
//! header; a list that outgrows them moves them to a block twice the size
//! (and frees the old block unless it was the inline one). Every operation
//! (a read or write of an item, a push, a pop, an insert ...) holds the
//! guard throughout, so each is atomic on its own; the lock is the
//! script's (`lock n { n.value += 1 }`), separate from the guard.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::lock::Lock;
use super::mutex::RawMutex;
use super::shm::{Off, Region, Shared};
use super::slot::{self, SLOT};
use super::{SyncError, region};

/// What shared lists and maps both start with: the script's lock (its
/// handle's offset), the guard every operation holds, the item count.
#[repr(C)]
pub(super) struct Head {
    pub lock: AtomicU64,
    pub guard: RawMutex,
    pub len: AtomicU32,
}

// SAFETY: made only of atomics and other `Shared` types.
unsafe impl Shared for Head {}

/// A shared list or map: what both answer from their [`Head`].
pub trait Headed {
    /// Where the list or map starts in the region.
    fn off(&self) -> Off;

    /// The script's lock of it (`lock m { ... }`).
    fn lock(&self) -> Result<Lock, SyncError> {
        Ok(Lock(region()?.get::<Head>(self.off()).lock.load(Ordering::SeqCst)))
    }

    fn len(&self) -> usize {
        region().map_or(0, |r| r.get::<Head>(self.off()).len.load(Ordering::SeqCst) as usize)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Headed for SharedCells {
    fn off(&self) -> Off {
        self.0
    }
}

#[repr(C)]
struct Header {
    head: Head,
    cap: AtomicU32,
    _pad: AtomicU32,
    slots: AtomicU64,
}

// SAFETY: made only of atomics and other `Shared` types.
unsafe impl Shared for Header {}

const SLOTS_AT: u64 = std::mem::size_of::<Header>() as u64;

/// The most items a shared list holds (a slot's offset fits a u32 index).
const MAX_ITEMS: usize = 1 << 28;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedCells(pub Off);

impl SharedCells {
    /// Cells holding `values` (already serialised), with a new lock.
    pub fn new(values: &[Vec<u8>]) -> Result<SharedCells, SyncError> {
        let region = region()?;
        if values.len() > MAX_ITEMS {
            return Err(SyncError::NoSpace);
        }
        let len = values.len() as u32;
        let lock = Lock::new()?;
        let off = region.alloc(SLOTS_AT as usize + values.len() * SLOT).ok_or(SyncError::NoSpace)?;
        let header = region.get::<Header>(off);
        header.head.lock.store(lock.0, Ordering::SeqCst);
        header.head.len.store(len, Ordering::SeqCst);
        header.cap.store(len, Ordering::SeqCst);
        header.slots.store(off + SLOTS_AT, Ordering::SeqCst);
        for (i, value) in values.iter().enumerate() {
            region.write(off + SLOTS_AT + (i * SLOT) as u64, &slot::pack(region, value)?);
        }
        Ok(SharedCells(off))
    }

    fn header(&self) -> Result<&'static Header, SyncError> {
        Ok(region()?.get::<Header>(self.0))
    }

    /// Runs `f` on the items with the guard held.
    fn guarded<T>(&self, f: impl FnOnce(&Items) -> Result<T, SyncError>) -> Result<T, SyncError> {
        let region = region()?;
        let header = self.header()?;
        header.head.guard.with_intact(|| f(&Items { region, header, inline: self.0 + SLOTS_AT }))?
    }

    /// The serialised value of item `index`.
    pub fn load(&self, index: usize) -> Result<slot::Taken, SyncError> {
        self.guarded(|items| Ok(slot::copy(items.region, &items.raw(items.at(index)?))))
    }

    /// Item `index`, or `None` past the end (for iteration while others
    /// change the list).
    pub fn load_if_there(&self, index: usize) -> Result<Option<slot::Taken>, SyncError> {
        self.guarded(|items| Ok(items.at(index).ok().map(|at| slot::copy(items.region, &items.raw(at)))))
    }

    /// Every item at one instant.
    pub fn load_all(&self) -> Result<Vec<slot::Taken>, SyncError> {
        self.guarded(|items| {
            Ok((0..items.len()).map(|i| slot::copy(items.region, &items.raw(items.slot(i)))).collect())
        })
    }

    /// Replaces item `index` with a serialised value.
    pub fn store(&self, index: usize, bytes: &[u8]) -> Result<(), SyncError> {
        let region = region()?;
        let raw = slot::pack(region, bytes)?;
        let old = self.guarded(|items| {
            let at = items.at(index)?;
            let old = items.raw(at);
            region.write(at, &raw);
            Ok(old)
        });
        match old {
            Ok(old) => {
                slot::discard(region, &old);
                Ok(())
            }
            Err(e) => {
                slot::discard(region, &raw);
                Err(e)
            }
        }
    }

    /// Inserts serialised values before item `at` (`None`: at the end; a
    /// negative `at` counts from the end; past either end is clamped, as
    /// Python's `insert` does), all in one step.
    pub fn insert(&self, at: Option<i64>, values: &[Vec<u8>]) -> Result<(), SyncError> {
        let region = region()?;
        let raws = pack_all(region, values)?;
        let done = self.guarded(|items| {
            let len = items.len();
            let index = match at {
                None => len,
                Some(i) if i < 0 => (i + len as i64).max(0) as usize,
                Some(i) => (i as u64).min(len as u64) as usize,
            };
            items.reserve(len + raws.len())?;
            items.shift(index, len, index + raws.len());
            for (k, raw) in raws.iter().enumerate() {
                region.write(items.slot(index + k), raw);
            }
            items.header.head.len.store((len + raws.len()) as u32, Ordering::SeqCst);
            Ok(())
        });
        if done.is_err() {
            raws.iter().for_each(|raw| slot::discard(region, raw));
        }
        done
    }

    /// Takes item `at` out (`None`: the last; a negative `at` counts from
    /// the end), closing the gap.
    pub fn remove(&self, at: Option<i64>) -> Result<slot::Taken, SyncError> {
        let region = region()?;
        let raw = self.guarded(|items| {
            let len = items.len() as i64;
            let index = match at {
                None => len - 1,
                Some(i) if i < 0 => i + len,
                Some(i) => i,
            };
            let index = usize::try_from(index).map_err(|_| SyncError::OutOfRange)?;
            let len = len as usize;
            let raw = items.raw(items.at(index)?);
            items.shift(index + 1, len, index);
            items.header.head.len.store((len - 1) as u32, Ordering::SeqCst);
            Ok(raw)
        })?;
        Ok(slot::take(region, &raw))
    }

    /// Takes out the first item `matches` says yes to, in one step.
    pub fn remove_first(&self, matches: impl Fn(&[u8]) -> bool) -> Result<Option<slot::Taken>, SyncError> {
        let region = region()?;
        let raw = self.guarded(|items| {
            let len = items.len();
            let found = (0..len).find(|&i| matches(&slot::copy(region, &items.raw(items.slot(i)))));
            Ok(found.map(|index| {
                let raw = items.raw(items.slot(index));
                items.shift(index + 1, len, index);
                items.header.head.len.store((len - 1) as u32, Ordering::SeqCst);
                raw
            }))
        })?;
        Ok(raw.map(|raw| slot::take(region, &raw)))
    }

    /// Replaces every item with `values` (none: empties the list), in one step.
    pub fn replace(&self, values: &[Vec<u8>]) -> Result<(), SyncError> {
        let region = region()?;
        let raws = pack_all(region, values)?;
        let old = self.guarded(|items| {
            items.reserve(raws.len())?;
            let old: Vec<_> = (0..items.len()).map(|i| items.raw(items.slot(i))).collect();
            for (i, raw) in raws.iter().enumerate() {
                region.write(items.slot(i), raw);
            }
            items.header.head.len.store(raws.len() as u32, Ordering::SeqCst);
            Ok(old)
        });
        match old {
            Ok(old) => {
                old.iter().for_each(|raw| slot::discard(region, raw));
                Ok(())
            }
            Err(e) => {
                raws.iter().for_each(|raw| slot::discard(region, raw));
                Err(e)
            }
        }
    }

    /// Frees cells no one references: their lock goes to `work` with the
    /// handles their values name (see `refs.rs`).
    pub(super) fn take_apart(&self, work: &mut Vec<super::handle::Handle>) {
        let (Ok(region), Ok(header)) = (region(), self.header()) else { return };
        let items = Items { region, header, inline: self.0 + SLOTS_AT };
        for i in 0..items.len() {
            slot::discard_into(region, &items.raw(items.slot(i)), work);
        }
        let slots = header.slots.load(Ordering::SeqCst);
        if slots != items.inline {
            region.free(slots);
        }
        if let Ok(lock) = self.lock() {
            work.push(super::handle::Handle::new(super::handle::HandleKind::Lock, lock.0));
        }
        region.free(self.0);
    }
}

/// Slots for `values`; none are left filled if one fails.
fn pack_all(region: &Region, values: &[Vec<u8>]) -> Result<Vec<slot::Raw>, SyncError> {
    let mut raws = Vec::with_capacity(values.len());
    for value in values {
        match slot::pack(region, value) {
            Ok(raw) => raws.push(raw),
            Err(e) => {
                raws.iter().for_each(|raw| slot::discard(region, raw));
                return Err(e);
            }
        }
    }
    Ok(raws)
}

/// A list's items, reached with its guard held.
struct Items {
    region: &'static Region,
    header: &'static Header,
    /// Where the slots start when they have never moved.
    inline: Off,
}

impl Items {
    fn len(&self) -> usize {
        self.header.head.len.load(Ordering::SeqCst) as usize
    }

    fn slot(&self, index: usize) -> Off {
        self.header.slots.load(Ordering::SeqCst) + (index * SLOT) as u64
    }

    fn at(&self, index: usize) -> Result<Off, SyncError> {
        match index < self.len() {
            true => Ok(self.slot(index)),
            false => Err(SyncError::OutOfRange),
        }
    }

    fn raw(&self, at: Off) -> slot::Raw {
        slot::read(self.region, at)
    }

    /// Makes room for `need` items, moving the slots to a larger block.
    fn reserve(&self, need: usize) -> Result<(), SyncError> {
        let cap = self.header.cap.load(Ordering::SeqCst) as usize;
        if need <= cap {
            return Ok(());
        }
        if need > MAX_ITEMS {
            return Err(SyncError::NoSpace);
        }
        let grown = need.max(cap * 2).clamp(4, MAX_ITEMS);
        let block = self.region.alloc(grown * SLOT).ok_or(SyncError::NoSpace)?;
        let old = self.header.slots.load(Ordering::SeqCst);
        self.region.write(block, &self.region.read(old, self.len() * SLOT));
        self.header.slots.store(block, Ordering::SeqCst);
        self.header.cap.store(grown as u32, Ordering::SeqCst);
        if old != self.inline {
            self.region.free(old);
        }
        Ok(())
    }

    /// Moves the slots `from..to` so they start at `dest`.
    fn shift(&self, from: usize, to: usize, dest: usize) {
        if from < to && from != dest {
            let bytes = self.region.read(self.slot(from), (to - from) * SLOT);
            self.region.write(self.slot(dest), &bytes);
        }
    }
}
