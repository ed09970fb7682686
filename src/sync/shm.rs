//! The shared region: one anonymous `MAP_SHARED` mapping made when the
//! interpreter starts, before any task exists. A `fork` keeps it at the
//! same address in the child, so everything placed here (every queue,
//! lock, event, semaphore, condition and shared cell, and the items in
//! queues) is the same object in every process of a run.
//!
//! Memory is handed out by a small allocator that lives in the region
//! itself (its lock and free lists at offset 0): power-of-two size classes,
//! each block led by an 8-byte header naming its class and holding a
//! reference count (used by primitives, see `refs.rs`), freed blocks kept
//! on per-class lists for reuse. The mapping is `MAP_NORESERVE`: pages cost
//! memory only once touched.
//!
//! Objects are addressed by [`Off`], a byte offset from the start of the
//! region. Structures of atomics are read in place ([`Region::get`]); other
//! bytes are copied in and out ([`Region::write`], [`Region::read`]) by
//! callers holding the lock that guards them.

use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};

use super::mutex::RawMutex;

/// A byte offset into the region; 0 is never a valid object.
pub type Off = u64;

/// Size classes: class `k` blocks are `2^k` bytes, header included.
const MIN_CLASS: u32 = 5;
const CLASSES: usize = 40;
const BLOCK_HEADER: u64 = 8;

/// The allocator's own state, at offset 0.
#[repr(C)]
struct Header {
    lock: RawMutex,
    _pad: u32,
    /// The next never-used byte.
    top: AtomicU64,
    /// Bytes in blocks handed out and not freed.
    in_use: AtomicU64,
    free: [AtomicU64; CLASSES],
}

/// The runtime's own locks whose holder died inside them (`mutex.rs`),
/// by address, with the pid of the dead holder (for the error's words).
#[repr(C)]
struct Broken {
    count: AtomicU32,
    _pad: u32,
    entries: [BrokenEntry; BROKEN],
}

#[repr(C)]
struct BrokenEntry {
    word: AtomicU64,
    pid: AtomicU32,
    _pad: u32,
}

const BROKEN: usize = 64;
/// Where [`Broken`] sits: past the allocator's header, inside the first page.
const BROKEN_AT: Off = 2048;

// SAFETY: atomics only.
unsafe impl Shared for Broken {}

// Both tables fit in the first page, apart (objects start at 4096).
const _: () = assert!(
    std::mem::size_of::<Header>() as u64 <= BROKEN_AT && BROKEN_AT + std::mem::size_of::<Broken>() as u64 <= 4096
);

pub struct Region {
    base: NonNull<u8>,
    len: u64,
}

// SAFETY: the region is plain shared memory; all access goes through
// atomics or through copies made under the locks that guard the bytes.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

static REGION: OnceLock<Option<Region>> = OnceLock::new();

/// Sizes tried, largest first: the first the kernel grants is used.
const SIZES: [u64; 5] = [8 << 30, 2 << 30, 512 << 20, 128 << 20, 32 << 20];

/// The region, mapped on first use. `None` only if the kernel refused
/// every size; primitives then report a `ResourceError`.
pub fn region() -> Option<&'static Region> {
    REGION.get_or_init(map).as_ref()
}

fn map() -> Option<Region> {
    // Under an address-space limit the region takes at most a quarter of it.
    let most = crate::runtime::stack::address_limit().map_or(u64::MAX, |limit| limit / 4);
    for size in SIZES.into_iter().filter(|&size| size <= most || size == SIZES[SIZES.len() - 1]) {
        let Some(len) = NonZeroUsize::new(size as usize) else { continue };
        // SAFETY: a fresh anonymous mapping aliases no Rust object.
        let mapped = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED | MapFlags::MAP_NORESERVE,
            )
        };
        if let Ok(ptr) = mapped {
            let region = Region { base: ptr.cast(), len: size };
            // The header fits in the first page; objects start after it.
            region.header().top.store(4096, Ordering::Relaxed);
            return Some(region);
        }
    }
    None
}

impl Region {
    fn header(&self) -> &Header {
        self.get::<Header>(0)
    }

    /// Notes that the lock word at `word` (an address in the region) was
    /// held by process `pid` when it died. Past the table's size, the
    /// oldest notes give way.
    pub(super) fn mark_broken(&self, word: u64, pid: i32) {
        let table = self.get::<Broken>(BROKEN_AT);
        let entry = &table.entries[table.count.load(Ordering::SeqCst) as usize % BROKEN];
        entry.pid.store(pid as u32, Ordering::SeqCst);
        entry.word.store(word, Ordering::SeqCst);
        table.count.fetch_add(1, Ordering::SeqCst);
    }

    /// Drops the notes on lock words in `start..end`, a block being freed:
    /// a primitive made there later starts whole.
    fn forget_broken(&self, start: Off, end: Off) {
        let table = self.get::<Broken>(BROKEN_AT);
        if table.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        let base = self.base.as_ptr() as u64;
        for entry in &table.entries {
            let word = entry.word.load(Ordering::SeqCst);
            if word >= base + start && word < base + end {
                entry.word.store(0, Ordering::SeqCst);
            }
        }
    }

    /// The pid of the process that died holding the lock word at `word`.
    pub(super) fn broken_by(&self, word: u64) -> Option<i32> {
        let table = self.get::<Broken>(BROKEN_AT);
        let entry = table.entries.iter().find(|e| e.word.load(Ordering::SeqCst) == word)?;
        Some(entry.pid.load(Ordering::SeqCst) as i32)
    }

    /// The structure of atomics at `off`.
    ///
    /// Panics if `off` is out of bounds or misaligned for `T`: offsets come
    /// only from [`Region::alloc`], so that is a bug in concsh.
    pub fn get<T: Shared>(&self, off: Off) -> &T {
        let end = off.checked_add(std::mem::size_of::<T>() as u64);
        assert!(end.is_some_and(|e| e <= self.len), "shared offset {off} out of bounds");
        assert!((self.base.as_ptr() as u64 + off).is_multiple_of(std::mem::align_of::<T>() as u64), "misaligned");
        // SAFETY: in bounds and aligned (checked above); the memory is
        // zero-initialised or was initialised as a `T`, and `T: Shared` is
        // made only of atomics, valid for any bit pattern and shareable.
        unsafe { &*(self.base.as_ptr().add(off as usize) as *const T) }
    }

    /// Whether `addr` is the address of a 4-byte word inside the region.
    pub fn contains(&self, addr: u64) -> bool {
        let base = self.base.as_ptr() as u64;
        addr >= base && addr.saturating_add(4) <= base + self.len && addr.is_multiple_of(4)
    }

    /// Copies `bytes` to `off`. The caller holds whatever guards them.
    pub fn write(&self, off: Off, bytes: &[u8]) {
        let end = off.checked_add(bytes.len() as u64);
        assert!(end.is_some_and(|e| e <= self.len), "shared write out of bounds");
        // SAFETY: in bounds (checked); the destination is region memory no
        // Rust reference covers, and the caller's lock excludes writers.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.as_ptr().add(off as usize), bytes.len()) }
    }

    /// Copies `len` bytes from `off`.
    pub fn read(&self, off: Off, len: usize) -> Vec<u8> {
        let end = off.checked_add(len as u64);
        assert!(end.is_some_and(|e| e <= self.len), "shared read out of bounds");
        let mut out = vec![0u8; len];
        // SAFETY: in bounds (checked); `out` is a fresh buffer of `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(self.base.as_ptr().add(off as usize), out.as_mut_ptr(), len) }
        out
    }

    /// Allocates `size` zeroed bytes, 8-aligned; `None` when the region is full.
    pub fn alloc(&self, size: usize) -> Option<Off> {
        let need = (size as u64).checked_add(BLOCK_HEADER)?;
        let class = (u64::BITS - (need - 1).leading_zeros()).max(MIN_CLASS);
        if class as usize >= CLASSES {
            return None;
        }
        let header = self.header();
        // The lists are whole after each single store: a holder that died
        // in the middle leaves at most a block unused, so it is not broken.
        let _ = header.lock.lock();
        let free = &header.free[class as usize];
        // Memory never handed out is zero already (fresh pages of an
        // anonymous mapping): only a reused block is cleared, so a large
        // block costs no page until it is used.
        let (block, reused) = match free.load(Ordering::Relaxed) {
            0 => {
                let top = header.top.load(Ordering::Relaxed);
                let block = top.next_multiple_of(16);
                match block.checked_add(1 << class).filter(|end| *end <= self.len) {
                    Some(end) => {
                        header.top.store(end, Ordering::Relaxed);
                        (Some(block), false)
                    }
                    None => (None, false),
                }
            }
            block => {
                // A free block keeps the next free block's offset after its header.
                let next = self.get::<AtomicU64>(block + BLOCK_HEADER).load(Ordering::Relaxed);
                free.store(next, Ordering::Relaxed);
                (Some(block), true)
            }
        };
        header.lock.unlock();
        let block = block?;
        header.in_use.fetch_add(1 << class, Ordering::Relaxed);
        self.get::<AtomicU32>(block).store(class, Ordering::Relaxed);
        // One reference: its maker's.
        self.get::<AtomicU32>(block + 4).store(1, Ordering::Release);
        let off = block + BLOCK_HEADER;
        if reused {
            self.zero(off, (1usize << class) - BLOCK_HEADER as usize);
        }
        Some(off)
    }

    fn zero(&self, off: Off, len: usize) {
        // SAFETY: `off..off+len` lies inside a block just taken from the
        // allocator, which no one else can reach yet.
        unsafe { std::ptr::write_bytes(self.base.as_ptr().add(off as usize), 0, len) }
    }

    /// Bytes of the region in use now, and the most ever in use (the
    /// region's memory is reused, never given back to the system).
    pub fn usage(&self) -> (u64, u64) {
        let header = self.header();
        (header.in_use.load(Ordering::Relaxed), header.top.load(Ordering::Relaxed))
    }

    /// The reference count of the block at `off` (from [`Region::alloc`]).
    pub fn refs(&self, off: Off) -> &AtomicU32 {
        self.get::<AtomicU32>(off - BLOCK_HEADER + 4)
    }

    /// Returns a block from [`Region::alloc`] for reuse.
    pub fn free(&self, off: Off) {
        let block = off - BLOCK_HEADER;
        let class = self.get::<AtomicU32>(block).load(Ordering::Relaxed);
        self.forget_broken(block, block + (1 << class));
        let header = self.header();
        header.in_use.fetch_sub(1 << class, Ordering::Relaxed);
        let _ = header.lock.lock();
        let free = &header.free[class as usize];
        self.get::<AtomicU64>(off).store(free.load(Ordering::Relaxed), Ordering::Relaxed);
        free.store(block, Ordering::Relaxed);
        header.lock.unlock();
    }
}

/// Types that may be placed in the region and read in place: `repr(C)`
/// structures made only of atomics (and of other `Shared` types).
///
/// # Safety
/// Every bit pattern, all zeroes included, must be a valid value, and the
/// type must be safe to share between threads and processes.
pub unsafe trait Shared: Sync {}

// SAFETY: atomics are valid for any bit pattern and shareable.
unsafe impl Shared for AtomicU32 {}
// SAFETY: as above.
unsafe impl Shared for AtomicU64 {}
// SAFETY: made only of atomics.
unsafe impl Shared for Header {}

#[cfg(test)]
mod tests {
    use nix::sys::signal::{Signal, raise};
    use nix::sys::wait::waitpid;
    use nix::unistd::ForkResult;

    use super::*;

    /// A process killed while holding the allocator's lock does not stop
    /// the others allocating: its lists are whole after every store.
    #[test]
    fn a_holder_killed_inside_the_allocator_is_recovered_from() {
        let region = region().expect("the region");
        let first = region.alloc(64).expect("a block");
        // SAFETY: the child only takes a lock (atomics and a futex) and
        // kills itself; it touches nothing another thread could hold.
        let child = match unsafe { nix::unistd::fork() }.expect("fork") {
            ForkResult::Child => {
                crate::sync::mutex::forget_in_child();
                let _ = region.header().lock.lock();
                let _ = raise(Signal::SIGKILL);
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(1) }
            }
            ForkResult::Parent { child } => child,
        };
        waitpid(child, None).expect("the child is reaped");
        region.free(first);
        assert!(region.alloc(64).is_some(), "the allocator works after its holder died");
    }
}
