//! The references to primitives one process holds, listed in a table in the
//! shared region, so that whoever reaps the process gives them back,
//! however it ended (a SIGKILL included).
//!
//! ```text
//! root:  [table offset u64][capacity u64]
//! table: capacity entries, each a handle's bits or 0 when free
//! ```
//!
//! Only the owning process writes its table; its parent reads it once the
//! process is dead. An entry is added after the reference is taken and
//! cleared before it is given back, and a grown table is filled before it
//! is published, so a process killed at any point leaves at worst one
//! reference unreleased, never one released twice.
//!
//! A fork copies the table: the child holds everything the parent held
//! (its memory is a copy of the parent's values), so each entry gets one
//! more reference, taken in the parent before the fork.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::handle::Handle;
use super::refs;
use super::shm::{Off, Region, Shared};
use super::{SyncError, region};

#[repr(C)]
struct Root {
    table: AtomicU64,
    capacity: AtomicU64,
}

// SAFETY: made only of atomics.
unsafe impl Shared for Root {}

/// This process's side of its table.
struct Local {
    /// 0 until the first entry.
    root: Off,
    free: Vec<u32>,
    /// Entries below this have been used.
    next: u32,
}

/// A std mutex, not parking_lot's: the fork holds it across, and its
/// unlock in the child touches only its own word, never a table of parked
/// threads that exist only in the parent.
static LOCAL: Mutex<Local> = Mutex::new(Local { root: 0, free: Vec::new(), next: 0 });

fn local() -> MutexGuard<'static, Local> {
    // Its holders do not panic; were one to, the table is still whole.
    LOCAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The entry of a reference that could not be listed (the region is full):
/// it is given back normally, but not by a reaper.
pub const UNLISTED: u32 = u32::MAX;

const FIRST_CAPACITY: u64 = 64;

/// Lists a reference this process now holds; returns its entry.
pub fn list(handle: Handle) -> u32 {
    let Ok(region) = region() else { return UNLISTED };
    let mut local = local();
    if local.root == 0 {
        match new_root(region, 0) {
            Ok(root) => local.root = root,
            Err(_) => return UNLISTED,
        }
    }
    let root = region.get::<Root>(local.root);
    let index = match local.free.pop() {
        Some(index) => index,
        None => {
            if u64::from(local.next) == root.capacity.load(Ordering::SeqCst) && grow(region, root).is_err() {
                return UNLISTED;
            }
            local.next += 1;
            local.next - 1
        }
    };
    entry(region, root, index).store(handle.to_bits(), Ordering::SeqCst);
    index
}

/// Strikes an entry from the list (before its reference is given back).
pub fn unlist(index: u32) {
    let Ok(region) = region() else { return };
    if index == UNLISTED {
        return;
    }
    let mut local = local();
    let root = region.get::<Root>(local.root);
    entry(region, root, index).store(0, Ordering::SeqCst);
    local.free.push(index);
}

/// Entry `index` (below the capacity, see `list`).
fn entry(region: &'static Region, root: &Root, index: u32) -> &'static AtomicU64 {
    region.get::<AtomicU64>(root.table.load(Ordering::SeqCst) + u64::from(index) * 8)
}

/// A root with a table of `capacity` free entries.
fn new_root(region: &Region, capacity: u64) -> Result<Off, SyncError> {
    let capacity = capacity.max(FIRST_CAPACITY);
    let bytes = usize::try_from(capacity * 8).map_err(|_| SyncError::NoSpace)?;
    let table = region.alloc(bytes).ok_or(SyncError::NoSpace)?;
    let Some(off) = region.alloc(std::mem::size_of::<Root>()) else {
        region.free(table);
        return Err(SyncError::NoSpace);
    };
    let root = region.get::<Root>(off);
    root.table.store(table, Ordering::SeqCst);
    root.capacity.store(capacity, Ordering::SeqCst);
    Ok(off)
}

/// Doubles a full table: filled first, then published (table, then
/// capacity, which a reaper reads first).
fn grow(region: &Region, root: &Root) -> Result<(), SyncError> {
    let (old, capacity) = (root.table.load(Ordering::SeqCst), root.capacity.load(Ordering::SeqCst));
    let bytes = usize::try_from(capacity * 16).map_err(|_| SyncError::NoSpace)?;
    let table = region.alloc(bytes).ok_or(SyncError::NoSpace)?;
    region.write(table, &region.read(old, capacity as usize * 8));
    root.table.store(table, Ordering::SeqCst);
    root.capacity.store(capacity * 2, Ordering::SeqCst);
    region.free(old);
    Ok(())
}

/// The handles a table lists.
fn listed(region: &'static Region, root: Off) -> Vec<Handle> {
    let root = region.get::<Root>(root);
    // Capacity first: a table grown meanwhile is published before it.
    let capacity = u32::try_from(root.capacity.load(Ordering::SeqCst)).unwrap_or(u32::MAX);
    (0..capacity).filter_map(|i| Handle::from_bits(entry(region, root, i).load(Ordering::SeqCst))).collect()
}

/// A copy of this process's table for a child about to be forked. This
/// process's table stays locked until [`Heir::born`] or [`Heir::unborn`].
pub struct Heir {
    local: MutexGuard<'static, Local>,
    root: Off,
}

/// Copies the table for a child, taking one more reference to everything
/// it lists. Called with every task of the process at a safepoint.
pub fn for_child() -> Result<Heir, SyncError> {
    let region = region()?;
    let local = local();
    let capacity = match local.root {
        0 => 0,
        root => region.get::<Root>(root).capacity.load(Ordering::SeqCst),
    };
    let root = new_root(region, capacity)?;
    if local.root != 0 {
        let (from, to) = (region.get::<Root>(local.root), region.get::<Root>(root));
        let table = from.table.load(Ordering::SeqCst);
        region.write(to.table.load(Ordering::SeqCst), &region.read(table, capacity as usize * 8));
        listed(region, root).into_iter().for_each(refs::retain);
    }
    Ok(Heir { local, root })
}

impl Heir {
    /// In the child: the copy becomes this process's table.
    pub fn adopt(mut self) {
        self.local.root = self.root;
    }

    /// In the parent, after the fork: the child's root, for its reaper.
    pub fn born(self) -> Off {
        self.root
    }

    /// In the parent, when the fork failed: the copy is given back.
    pub fn unborn(self) {
        let root = self.root;
        drop(self);
        release_all(root);
    }
}

/// Gives back every reference a dead process listed, and its table.
pub fn release_all(root: Off) {
    let Ok(region) = region() else { return };
    if root == 0 {
        return;
    }
    let held = listed(region, root);
    region.free(region.get::<Root>(root).table.load(Ordering::SeqCst));
    region.free(root);
    refs::release_all(held);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::event::Event;
    use crate::sync::handle::HandleKind;

    /// A child's copy of the table holds one more reference to each
    /// primitive listed, until its reaper gives them back.
    #[test]
    fn a_childs_copy_holds_a_reference_until_it_is_released() {
        let region = region().expect("the region");
        let event = Event::new().expect("an event");
        let handle = Handle::new(HandleKind::Event, event.0);
        let count = || region.refs(event.0).load(Ordering::SeqCst);
        let entry = list(handle);
        let child = for_child().expect("a copy").born();
        assert_eq!(count(), 2, "the child's reference");
        release_all(child);
        assert_eq!(count(), 1, "given back when the child is reaped");
        unlist(entry);
        refs::release(handle);
    }
}
