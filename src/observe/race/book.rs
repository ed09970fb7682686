//! The race detector's shared book: what every process of a run must see
//! alike, kept in the shared region.
//!
//! - the next task number, and how many races were reported;
//! - records by key: the clock of each primitive (what its releases
//!   published), the final clock of each ended task (for `join`), each
//!   task's name, pid and start, the shadow of each shared value's cell,
//!   and the pairs of places already reported.
//!
//! Records are byte strings in region blocks, found through an
//! open-addressing table of `(key, block)` entries that doubles as it
//! fills; one mutex guards it all. Its users are the detector alone, so
//! the mutex never orders anything a script does.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::sync::mutex::RawMutex;
use crate::sync::shm::{Off, Region, Shared, region};

#[repr(C)]
struct Header {
    mutex: RawMutex,
    found: AtomicU32,
    next_tid: AtomicU32,
    /// Table entries: a power of two.
    cap: AtomicU32,
    /// Entries in use, removed ones included (until the table is rebuilt).
    used: AtomicU32,
    _pad: u32,
    table: AtomicU64,
}

// SAFETY: made only of atomics and a `RawMutex` (an atomic).
unsafe impl Shared for Header {}

#[repr(C)]
struct Entry {
    /// 0: never used; `GONE`: removed.
    k0: AtomicU64,
    k1: AtomicU64,
    block: AtomicU64,
}

// SAFETY: made only of atomics.
unsafe impl Shared for Entry {}

const ENTRY: u64 = std::mem::size_of::<Entry>() as u64;
const GONE: u64 = u64::MAX;
const FIRST_CAP: u32 = 1024;

/// What a record is of: the top byte of its key's first word.
#[derive(Clone, Copy)]
pub enum Tag {
    /// A primitive's clock, by its offset.
    Sync = 1,
    /// An ended task's clock, by task number.
    End = 2,
    /// A task's name, pid and start, by task number.
    Task = 3,
    /// A shared value's cell: offset, then index.
    Data = 4,
    /// A pair of places already reported.
    Seen = 5,
    /// The ended tasks whose slots may be reused.
    Free = 6,
    /// The first counts of a slot's tasks, by slot.
    Slot = 7,
}

pub type Key = (u64, u64);

pub fn key(tag: Tag, id: u64, sub: u64) -> Key {
    ((tag as u64) << 56 | (id & ((1 << 56) - 1)), sub)
}

/// The book of this run.
#[derive(Clone, Copy)]
pub struct Book {
    region: &'static Region,
    header: &'static Header,
}

impl Book {
    /// A new book (once per run, before any fork).
    pub fn new() -> Option<Book> {
        let region = region()?;
        let off = region.alloc(std::mem::size_of::<Header>())?;
        let table = region.alloc((FIRST_CAP as u64 * ENTRY) as usize)?;
        let header = region.get::<Header>(off);
        header.next_tid.store(1, Ordering::Relaxed);
        header.cap.store(FIRST_CAP, Ordering::Relaxed);
        header.table.store(table, Ordering::Relaxed);
        Some(Book { region, header })
    }

    /// A new task number.
    pub fn next_tid(&self) -> u32 {
        self.header.next_tid.fetch_add(1, Ordering::SeqCst)
    }

    /// Counts a reported race.
    pub fn found_one(&self) {
        self.header.found.fetch_add(1, Ordering::SeqCst);
    }

    pub fn found(&self) -> u32 {
        self.header.found.load(Ordering::SeqCst)
    }

    /// Runs `f` on the records, holding the book's mutex.
    pub fn with<T>(&self, f: impl FnOnce(&mut Records) -> T) -> T {
        self.header.mutex.with(|| f(&mut Records { region: self.region, header: self.header }))
    }
}

/// A record's words (its blocks are 8-aligned), while the book's mutex
/// is held: a clock is joined in place, with no copy.
pub struct Words {
    region: &'static Region,
    at: Off,
    bytes: usize,
}

impl Words {
    /// Whole words only.
    pub fn len(&self) -> usize {
        self.bytes / 4
    }

    pub fn word(&self, i: usize) -> &AtomicU32 {
        self.region.get::<AtomicU32>(self.at + 4 * i as u64)
    }
}

/// The records, while the book's mutex is held.
pub struct Records {
    region: &'static Region,
    header: &'static Header,
}

fn mix(key: Key) -> u64 {
    let mut h = key.0 ^ key.1.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
    h ^= h >> 31;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ h >> 29
}

impl Records {
    fn entry(&self, table: Off, i: u64) -> &'static Entry {
        self.region.get::<Entry>(table + i * ENTRY)
    }

    /// The entry holding `key`, or the free one it would go in.
    fn find(&self, key: Key) -> (&'static Entry, bool) {
        let cap = self.header.cap.load(Ordering::Relaxed) as u64;
        let table = self.header.table.load(Ordering::Relaxed);
        let mut i = mix(key) & (cap - 1);
        let mut free = None;
        loop {
            let entry = self.entry(table, i);
            match entry.k0.load(Ordering::Relaxed) {
                0 => return (free.unwrap_or(entry), false),
                GONE => free = free.or(Some(entry)),
                k0 if k0 == key.0 && entry.k1.load(Ordering::Relaxed) == key.1 => return (entry, true),
                _ => {}
            }
            i = (i + 1) & (cap - 1);
        }
    }

    pub fn get(&self, key: Key) -> Option<Vec<u8>> {
        self.words(key).map(|words| self.region.read(words.at, words.bytes))
    }

    /// `key`'s record, read and written in place as 4-byte words.
    pub fn words(&self, key: Key) -> Option<Words> {
        let (entry, true) = self.find(key) else { return None };
        let block = entry.block.load(Ordering::Relaxed);
        let bytes = self.region.get::<AtomicU32>(block).load(Ordering::Relaxed) as usize;
        Some(Words { region: self.region, at: block + 8, bytes })
    }

    /// Stores `bytes` as `key`'s record; false when the region is full.
    pub fn put(&mut self, key: Key, bytes: &[u8]) -> bool {
        let (entry, found) = self.find(key);
        if found {
            let block = entry.block.load(Ordering::Relaxed);
            let room = self.region.get::<AtomicU32>(block + 4).load(Ordering::Relaxed) as usize;
            if bytes.len() <= room {
                self.fill(block, bytes);
                return true;
            }
            self.region.free(block);
            let Some(block) = self.block_for(bytes) else {
                entry.k0.store(GONE, Ordering::Relaxed);
                return false;
            };
            entry.block.store(block, Ordering::Relaxed);
            return true;
        }
        let fresh = entry.k0.load(Ordering::Relaxed) == 0;
        // A lookup ends at a never-used entry: one must always be left
        // (the table cannot grow once the region is full).
        if fresh && self.header.used.load(Ordering::Relaxed) + 1 >= self.header.cap.load(Ordering::Relaxed) {
            return false;
        }
        let Some(block) = self.block_for(bytes) else { return false };
        if fresh {
            self.header.used.fetch_add(1, Ordering::Relaxed);
        }
        entry.k1.store(key.1, Ordering::Relaxed);
        entry.block.store(block, Ordering::Relaxed);
        entry.k0.store(key.0, Ordering::Relaxed);
        if self.header.used.load(Ordering::Relaxed) * 4 > self.header.cap.load(Ordering::Relaxed) * 3 {
            self.rebuild();
        }
        true
    }

    pub fn remove(&mut self, key: Key) {
        if let (entry, true) = self.find(key) {
            self.region.free(entry.block.load(Ordering::Relaxed));
            entry.k0.store(GONE, Ordering::Relaxed);
        }
    }

    fn block_for(&self, bytes: &[u8]) -> Option<Off> {
        let room = bytes.len().max(24).next_power_of_two();
        let block = self.region.alloc(8 + room)?;
        self.region.get::<AtomicU32>(block + 4).store(room as u32, Ordering::Relaxed);
        self.fill(block, bytes);
        Some(block)
    }

    fn fill(&self, block: Off, bytes: &[u8]) {
        self.region.get::<AtomicU32>(block).store(bytes.len() as u32, Ordering::Relaxed);
        self.region.write(block + 8, bytes);
    }

    /// Moves the live entries to a table with room to spare (twice as
    /// large when more than half are live), dropping removed ones.
    fn rebuild(&mut self) {
        let (old, old_cap) = (self.header.table.load(Ordering::Relaxed), self.header.cap.load(Ordering::Relaxed));
        let live: Vec<(Key, Off)> = (0..old_cap as u64)
            .map(|i| self.entry(old, i))
            .filter(|e| !matches!(e.k0.load(Ordering::Relaxed), 0 | GONE))
            .map(|e| ((e.k0.load(Ordering::Relaxed), e.k1.load(Ordering::Relaxed)), e.block.load(Ordering::Relaxed)))
            .collect();
        let cap = if live.len() * 2 > old_cap as usize { old_cap.saturating_mul(2) } else { old_cap };
        let Some(table) = self.region.alloc((cap as u64 * ENTRY) as usize) else { return };
        self.header.table.store(table, Ordering::Relaxed);
        self.header.cap.store(cap, Ordering::Relaxed);
        self.header.used.store(live.len() as u32, Ordering::Relaxed);
        for (key, block) in live {
            let (entry, _) = self.find(key);
            entry.k1.store(key.1, Ordering::Relaxed);
            entry.block.store(block, Ordering::Relaxed);
            entry.k0.store(key.0, Ordering::Relaxed);
        }
        self.region.free(old);
    }
}
