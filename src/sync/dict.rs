//! Shared maps: `shared({})`, a map in the shared region that every thread
//! and process reads and changes, keys kept in insertion order.
//!
//! ```text
//! header: [lock u64][guard u32][len u32][used u32][cap u32][entries u64][index u64]
//! entries: cap × [hash u64][key slot][value slot]      (in insertion order)
//! index:   2·cap × u32: 0 empty, TOMBSTONE, else entry number + 1
//! ```
//!
//! As in CPython's dict: entries are appended, a removed one is marked (its
//! hash set to 0) and its index bucket becomes a tombstone; when the entries
//! are full they are copied, live ones only, into blocks twice the size
//! needed, and the index is rebuilt. The index has twice as many buckets as
//! there are entries, so a probe always finds an empty bucket. Keys are
//! compared by their serialised bytes (a key's serialisation is canonical).
//! Every operation holds the guard throughout, so each is atomic.

use std::hash::Hasher;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::cell::{Head, Headed};
use super::lock::Lock;
use super::shm::{Off, Region, Shared};
use super::slot::{self, SLOT};
use super::{SyncError, region};

#[repr(C)]
struct Header {
    /// The lock, the guard, and the number of live entries.
    head: Head,
    /// Entries written, removed ones included.
    used: AtomicU32,
    cap: AtomicU32,
    entries: AtomicU64,
    index: AtomicU64,
}

// SAFETY: made only of atomics and other `Shared` types.
unsafe impl Shared for Header {}

const ENTRY: usize = 8 + 2 * SLOT;
const TOMBSTONE: u32 = u32::MAX;
const FIRST_CAP: usize = 8;
/// The most entries a shared map holds.
const MAX_ENTRIES: usize = 1 << 27;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedMap(pub Off);

/// Entries as they go in: each key's and value's serialised bytes.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// A key's hash (of its serialised bytes): never 0 (0 marks a removed
/// entry), the same in every process (SipHash with fixed keys).
pub fn key_hash(key: &[u8]) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(key);
    hasher.finish() | 1
}

impl Headed for SharedMap {
    fn off(&self) -> Off {
        self.0
    }
}

impl SharedMap {
    /// A map holding `pairs` (serialised keys and values), with a new lock.
    pub fn new(pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<SharedMap, SyncError> {
        let region = region()?;
        let lock = Lock::new()?;
        let off = region.alloc(std::mem::size_of::<Header>()).ok_or(SyncError::NoSpace)?;
        let header = region.get::<Header>(off);
        header.head.lock.store(lock.0, Ordering::SeqCst);
        let map = SharedMap(off);
        let made = map.guarded(|m| {
            m.rebuild(pairs.len())?;
            pairs.iter().try_for_each(|(k, v)| m.set(k, v).map(drop))
        });
        if let Err(e) = made {
            let mut work = Vec::new();
            map.take_apart(&mut work);
            super::refs::release_all(work);
            return Err(e);
        }
        Ok(map)
    }

    fn header(&self) -> Result<&'static Header, SyncError> {
        Ok(region()?.get::<Header>(self.0))
    }

    fn guarded<T>(&self, f: impl FnOnce(&Entries) -> Result<T, SyncError>) -> Result<T, SyncError> {
        let region = region()?;
        let header = self.header()?;
        header.head.guard.with_intact(|| f(&Entries { region, header }))?
    }

    /// The value under `key`, if any.
    pub fn get(&self, key: &[u8]) -> Result<Option<slot::Taken>, SyncError> {
        self.guarded(|m| Ok(m.find(key).map(|(_, e)| slot::copy(m.region, &m.value(e)))))
    }

    pub fn contains(&self, key: &[u8]) -> Result<bool, SyncError> {
        self.guarded(|m| Ok(m.find(key).is_some()))
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: &[u8], value: &[u8]) -> Result<(), SyncError> {
        let region = region()?;
        let old = self.guarded(|m| m.set(key, value))?;
        if let Some(old) = old {
            slot::discard(region, &old);
        }
        Ok(())
    }

    /// Takes `key`'s value out, if it is there.
    pub fn remove(&self, key: &[u8]) -> Result<Option<slot::Taken>, SyncError> {
        let region = region()?;
        let taken = self.guarded(|m| {
            let Some((bucket, e)) = m.find(key) else { return Ok(None) };
            let raws = (m.key(e), m.value(e));
            m.region.write(m.entry(e), &0u64.to_le_bytes());
            m.region.write(m.bucket(bucket), &TOMBSTONE.to_le_bytes());
            m.header.head.len.fetch_sub(1, Ordering::SeqCst);
            Ok(Some(raws))
        })?;
        Ok(taken.map(|(key, value)| {
            slot::discard(region, &key);
            slot::take(region, &value)
        }))
    }

    /// Every key and value, in insertion order, at one instant.
    pub fn entries(&self) -> Result<Vec<(slot::Taken, slot::Taken)>, SyncError> {
        self.guarded(|m| {
            Ok(m.live().map(|e| (slot::copy(m.region, &m.key(e)), slot::copy(m.region, &m.value(e)))).collect())
        })
    }

    /// Replaces every entry with `pairs`, at once.
    pub fn replace(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<(), SyncError> {
        let region = region()?;
        let old = self.guarded(|m| {
            let old: Vec<_> = m.live().flat_map(|e| [m.key(e), m.value(e)]).collect();
            m.header.used.store(0, Ordering::SeqCst);
            m.header.head.len.store(0, Ordering::SeqCst);
            m.rebuild(pairs.len())?;
            for (k, v) in pairs {
                m.set(k, v)?;
            }
            Ok(old)
        })?;
        old.iter().for_each(|raw| slot::discard(region, raw));
        Ok(())
    }

    /// Frees a map no one references: its lock goes to `work` with the
    /// handles its keys and values name (see `refs.rs`).
    pub(super) fn take_apart(&self, work: &mut Vec<super::handle::Handle>) {
        let (Ok(region), Ok(header)) = (region(), self.header()) else { return };
        let m = Entries { region, header };
        for e in m.live().collect::<Vec<_>>() {
            slot::discard_into(region, &m.key(e), work);
            slot::discard_into(region, &m.value(e), work);
        }
        for block in [header.entries.load(Ordering::SeqCst), header.index.load(Ordering::SeqCst)] {
            if block != 0 {
                region.free(block);
            }
        }
        if let Ok(lock) = self.lock() {
            work.push(super::handle::Handle::new(super::handle::HandleKind::Lock, lock.0));
        }
        region.free(self.0);
    }
}

/// A map's entries and index, reached with its guard held.
struct Entries {
    region: &'static Region,
    header: &'static Header,
}

impl Entries {
    fn cap(&self) -> usize {
        self.header.cap.load(Ordering::SeqCst) as usize
    }

    fn used(&self) -> usize {
        self.header.used.load(Ordering::SeqCst) as usize
    }

    fn entry(&self, e: usize) -> Off {
        self.header.entries.load(Ordering::SeqCst) + (e * ENTRY) as u64
    }

    fn hash_of(&self, e: usize) -> u64 {
        let bytes = self.region.read(self.entry(e), 8);
        u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]))
    }

    fn key(&self, e: usize) -> slot::Raw {
        slot::read(self.region, self.entry(e) + 8)
    }

    fn value(&self, e: usize) -> slot::Raw {
        slot::read(self.region, self.entry(e) + 8 + SLOT as u64)
    }

    fn bucket(&self, b: usize) -> Off {
        self.header.index.load(Ordering::SeqCst) + (b * 4) as u64
    }

    fn bucket_value(&self, b: usize) -> u32 {
        let bytes = self.region.read(self.bucket(b), 4);
        u32::from_le_bytes(bytes.try_into().unwrap_or([0; 4]))
    }

    fn buckets(&self) -> usize {
        self.cap() * 2
    }

    /// Live entries, in insertion order.
    fn live(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.used()).filter(|&e| self.hash_of(e) != 0)
    }

    /// The bucket and entry holding `key`.
    fn find(&self, key: &[u8]) -> Option<(usize, usize)> {
        let h = key_hash(key);
        let mask = self.buckets().checked_sub(1)?;
        let mut b = h as usize & mask;
        loop {
            match self.bucket_value(b) {
                0 => return None,
                TOMBSTONE => {}
                n => {
                    let e = n as usize - 1;
                    if self.hash_of(e) == h && slot::holds(self.region, &self.key(e), key) {
                        return Some((b, e));
                    }
                }
            }
            b = (b + 1) & mask;
        }
    }

    /// The first empty or tombstone bucket on `h`'s probe.
    fn free_bucket(&self, h: u64) -> usize {
        let mask = self.buckets() - 1;
        let mut b = h as usize & mask;
        while !matches!(self.bucket_value(b), 0 | TOMBSTONE) {
            b = (b + 1) & mask;
        }
        b
    }

    /// Sets `key`: the replaced value's slot, if the key was there.
    fn set(&self, key: &[u8], value: &[u8]) -> Result<Option<slot::Raw>, SyncError> {
        let value_raw = slot::pack(self.region, value)?;
        if let Some((_, e)) = self.find(key) {
            let old = self.value(e);
            self.region.write(self.entry(e) + 8 + SLOT as u64, &value_raw);
            return Ok(Some(old));
        }
        if self.used() == self.cap()
            && let Err(e) = self.rebuild(self.header.head.len.load(Ordering::SeqCst) as usize + 1)
        {
            slot::discard(self.region, &value_raw);
            return Err(e);
        }
        let key_raw = match slot::pack(self.region, key) {
            Ok(raw) => raw,
            Err(e) => {
                slot::discard(self.region, &value_raw);
                return Err(e);
            }
        };
        let h = key_hash(key);
        let e = self.used();
        let mut bytes = Vec::with_capacity(ENTRY);
        bytes.extend_from_slice(&h.to_le_bytes());
        bytes.extend_from_slice(&key_raw);
        bytes.extend_from_slice(&value_raw);
        self.region.write(self.entry(e), &bytes);
        self.region.write(self.bucket(self.free_bucket(h)), &(e as u32 + 1).to_le_bytes());
        self.header.used.store(e as u32 + 1, Ordering::SeqCst);
        self.header.head.len.fetch_add(1, Ordering::SeqCst);
        Ok(None)
    }

    /// Moves the live entries into blocks with room for twice `need`, and
    /// indexes them afresh.
    fn rebuild(&self, need: usize) -> Result<(), SyncError> {
        if need > MAX_ENTRIES {
            return Err(SyncError::NoSpace);
        }
        let cap = (need * 2).next_power_of_two().max(FIRST_CAP);
        let entries = self.region.alloc(cap * ENTRY).ok_or(SyncError::NoSpace)?;
        let Some(index) = self.region.alloc(cap * 2 * 4) else {
            self.region.free(entries);
            return Err(SyncError::NoSpace);
        };
        let live: Vec<usize> = self.live().collect();
        for (to, &from) in live.iter().enumerate() {
            self.region.write(entries + (to * ENTRY) as u64, &self.region.read(self.entry(from), ENTRY));
        }
        for block in [self.header.entries.load(Ordering::SeqCst), self.header.index.load(Ordering::SeqCst)] {
            if block != 0 {
                self.region.free(block);
            }
        }
        self.header.entries.store(entries, Ordering::SeqCst);
        self.header.index.store(index, Ordering::SeqCst);
        self.header.cap.store(cap as u32, Ordering::SeqCst);
        self.header.used.store(live.len() as u32, Ordering::SeqCst);
        for e in 0..live.len() {
            let b = self.free_bucket(self.hash_of(e));
            self.region.write(self.bucket(b), &(e as u32 + 1).to_le_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A long run of sets and removes (through several rebuilds, with
    /// tombstones) agrees with an insertion-ordered map at every step.
    #[test]
    fn sets_and_removes_agree_with_an_ordered_map() {
        let map = SharedMap::new(&[]).expect("a map");
        let mut model: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut seed = 7u64;
        for step in 0..20_000u64 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Some keys spill out of their slot into a block of their own.
            let key = format!("key {} {}", seed >> 58, "x".repeat((seed >> 40) as usize % 40)).into_bytes();
            let value = step.to_le_bytes().to_vec();
            match (seed >> 20) % 3 {
                0 => {
                    let removed = map.remove(&key).expect("remove");
                    let at = model.iter().position(|(k, _)| *k == key);
                    assert_eq!(removed.map(|t| t.to_vec()), at.map(|i| model.remove(i).1));
                }
                _ => {
                    map.set(&key, &value).expect("set");
                    match model.iter_mut().find(|(k, _)| *k == key) {
                        Some(entry) => entry.1 = value,
                        None => model.push((key, value)),
                    }
                }
            }
            assert_eq!(map.len(), model.len());
        }
        let entries: Vec<(Vec<u8>, Vec<u8>)> =
            map.entries().expect("entries").into_iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        assert_eq!(entries, model, "the same entries, in insertion order");
        let mut work = Vec::new();
        map.take_apart(&mut work);
        crate::sync::refs::release_all(work);
    }
}
