//! Small blocks for strings: a size-class allocator. A string's block of
//! up to [`LARGEST`] bytes comes from its thread's free list, or is cut
//! from a 64 KiB slab, and goes back to the free list of the thread that
//! drops it: a pop and a push, where glibc's `malloc` and `free` took
//! about 200 and 130 instructions for each of w18's 400,000 strings (a
//! third of its work). Larger blocks go to the global allocator.
//!
//! Only strings use it. A faster global allocator was measured and
//! dropped: mimalloc and jemalloc each slowed startup, every fork, or
//! other workloads.
//!
//! - **Threads.** A block dropped on another thread joins that thread's
//!   list. A list past its budget ([`KEPT`] bytes) hands a batch to a
//!   shared depot, where a thread with an empty list looks before it cuts
//!   a new block: a producer thread and a consumer thread recycle one set
//!   of blocks instead of growing without end. A thread that ends hands
//!   its lists to the depot.
//! - **Memory.** Slabs stay with the process, as CPython's small-object
//!   arenas mostly do: the allocator holds at most the peak of live small
//!   strings, plus each thread's budget.
//! - **Fork.** The depot's lock is a flag held for a few instructions; a
//!   child forked while another thread held it starts with it clear
//!   ([`forget_in_child`]).

use std::alloc::{Layout, alloc};
use std::cell::UnsafeCell;
use std::ptr::{NonNull, null_mut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The sizes are multiples of this.
pub const GRAIN: usize = 16;
const CLASSES: usize = 8;
/// The largest block the allocator serves.
pub const LARGEST: usize = GRAIN * CLASSES;
const SLAB: usize = 64 * 1024;
/// Bytes of each size a thread keeps before it hands a batch on.
const KEPT: usize = 16 * 1024;

/// The size of the block that serves `size` bytes (at most [`LARGEST`]).
#[inline]
pub fn rounded(size: usize) -> usize {
    (class_of(size) + 1) * GRAIN
}

#[inline]
fn class_of(size: usize) -> usize {
    // A shift, where `div_ceil` tests the remainder.
    size.saturating_sub(1) / GRAIN
}

/// A free block: the next one in its list, and (the first block of a
/// batch in the depot) the next batch.
#[repr(C)]
struct Free {
    next: *mut Free,
    next_batch: *mut Free,
}

/// A thread's lists and the rest of its current slab.
struct Cache {
    free: [*mut Free; CLASSES],
    count: [usize; CLASSES],
    cut: *mut u8,
    end: *mut u8,
}

impl Cache {
    const fn new() -> Cache {
        Cache { free: [null_mut(); CLASSES], count: [0; CLASSES], cut: null_mut(), end: null_mut() }
    }

    #[inline]
    fn take(&mut self, class: usize) -> Option<NonNull<u8>> {
        let head = self.free[class];
        if !head.is_null() {
            // SAFETY: a block on a free list is this list's, and holds a `Free`.
            self.free[class] = unsafe { (*head).next };
            self.count[class] -= 1;
            return NonNull::new(head.cast());
        }
        let size = (class + 1) * GRAIN;
        if (self.end as usize) - (self.cut as usize) >= size {
            let block = self.cut;
            // SAFETY: at least `size` bytes are left before `end`.
            self.cut = unsafe { block.add(size) };
            return NonNull::new(block);
        }
        self.refill(class)
    }

    /// A block when the list is empty and the slab used up: a batch from
    /// the depot, else a new slab.
    #[cold]
    fn refill(&mut self, class: usize) -> Option<NonNull<u8>> {
        if let Some((batch, count)) = DEPOT.take(class) {
            self.free[class] = batch;
            self.count[class] = count;
            return self.take(class);
        }
        // What is left of the old slab (less than one block of this size)
        // stays unused.
        // SAFETY: the layout's size is not zero.
        let slab = unsafe { alloc(Layout::from_size_align(SLAB, GRAIN).ok()?) };
        if slab.is_null() {
            return None;
        }
        self.cut = slab;
        // SAFETY: the slab is `SLAB` bytes.
        self.end = unsafe { slab.add(SLAB) };
        self.take(class)
    }

    #[inline]
    fn give(&mut self, block: NonNull<u8>, class: usize) {
        let block = block.as_ptr().cast::<Free>();
        // SAFETY: the block is ours now, at least 16 bytes, aligned to 16.
        unsafe { (*block).next = self.free[class] };
        self.free[class] = block;
        self.count[class] += 1;
        if self.count[class] * (class + 1) * GRAIN > KEPT {
            self.hand_on(class);
        }
    }

    /// Hands half the list to the depot.
    #[cold]
    fn hand_on(&mut self, class: usize) {
        let half = self.count[class] / 2;
        let batch = self.free[class];
        let mut last = batch;
        for _ in 1..half {
            // SAFETY: the list holds `count` blocks, more than `half`.
            last = unsafe { (*last).next };
        }
        // SAFETY: `last` is the list's `half`-th block.
        unsafe {
            self.free[class] = (*last).next;
            (*last).next = null_mut();
        }
        self.count[class] -= half;
        DEPOT.give(class, batch);
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        for class in 0..CLASSES {
            if self.count[class] > 0 {
                DEPOT.give(class, self.free[class]);
                self.free[class] = null_mut();
                self.count[class] = 0;
            }
        }
    }
}

thread_local! {
    static CACHE: UnsafeCell<Cache> = const { UnsafeCell::new(Cache::new()) };
}

/// Batches of free blocks any thread may take: per size, a stack of
/// them, each batch's first block pointing at the next batch.
struct Depot {
    locked: AtomicBool,
    batches: UnsafeCell<[*mut Free; CLASSES]>,
    /// Batches in the depot, read without the lock to skip an empty one.
    held: AtomicUsize,
}

// SAFETY: `batches` is only touched with `locked` held.
unsafe impl Sync for Depot {}

static DEPOT: Depot = Depot {
    locked: AtomicBool::new(false),
    batches: UnsafeCell::new([null_mut(); CLASSES]),
    held: AtomicUsize::new(0),
};

impl Depot {
    fn with<T>(&self, f: impl FnOnce(&mut [*mut Free; CLASSES]) -> T) -> T {
        let mut spins = 0u32;
        while self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        // SAFETY: the flag is ours until the store below.
        let out = f(unsafe { &mut *self.batches.get() });
        self.locked.store(false, Ordering::Release);
        out
    }

    /// Takes a batch of `class`, with its count.
    fn take(&self, class: usize) -> Option<(*mut Free, usize)> {
        if self.held.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let batch = self.with(|batches| {
            let top = batches[class];
            if !top.is_null() {
                // SAFETY: a batch's first block holds the next batch.
                batches[class] = unsafe { (*top).next_batch };
                self.held.fetch_sub(1, Ordering::Relaxed);
            }
            top
        });
        if batch.is_null() {
            return None;
        }
        // Counted outside the lock: a step per block the batch serves.
        let (mut count, mut at) = (0, batch);
        while !at.is_null() {
            count += 1;
            // SAFETY: the batch is ours now, a list of free blocks.
            at = unsafe { (*at).next };
        }
        Some((batch, count))
    }

    fn give(&self, class: usize, batch: *mut Free) {
        self.with(|batches| {
            // SAFETY: the batch is ours; its first block keeps the one below.
            unsafe { (*batch).next_batch = batches[class] };
            batches[class] = batch;
            self.held.fetch_add(1, Ordering::Relaxed);
        })
    }
}

/// A block of `size` bytes (1 to [`LARGEST`]), aligned to [`GRAIN`],
/// whose usable size is [`rounded`]`(size)`; `None` when memory is out.
#[inline]
pub fn take(size: usize) -> Option<NonNull<u8>> {
    debug_assert!(size <= LARGEST);
    let class = class_of(size);
    CACHE
        .try_with(|cache| {
            // SAFETY: the cache is this thread's, and no call below reenters it.
            unsafe { (*cache.get()).take(class) }
        })
        .unwrap_or_else(|_| {
            // This thread's cache is gone (a string made in a thread's
            // last destructors): a block of its own, which joins a list
            // once freed.
            // SAFETY: the layout's size is not zero.
            NonNull::new(unsafe { alloc(Layout::from_size_align(rounded(size), GRAIN).ok()?) })
        })
}

/// Gives back a block that [`take`] gave for `size` bytes.
///
/// # Safety
/// `block` came from [`take`] with a `size` of the same [`rounded`]
/// size, and is not used after.
#[inline]
pub unsafe fn give(block: NonNull<u8>, size: usize) {
    let class = class_of(size);
    let kept = CACHE.try_with(|cache| {
        // SAFETY: the cache is this thread's, and no call below reenters it.
        unsafe { (*cache.get()).give(block, class) }
    });
    if kept.is_err() {
        let block = block.as_ptr().cast::<Free>();
        // SAFETY: the block is ours: a batch of one.
        unsafe { (*block).next = null_mut() };
        DEPOT.give(class, block);
    }
}

/// In a child just forked: the thread that held the depot's lock (if one
/// did) does not exist here. Its batches are left as they were: a take
/// or a give is two writes, and either half-done leaves a list whole.
pub fn forget_in_child() {
    DEPOT.locked.store(false, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_their_class() {
        assert_eq!((rounded(1), rounded(16), rounded(17), rounded(LARGEST)), (16, 16, 32, LARGEST));
        assert_eq!((class_of(1), class_of(16), class_of(17), class_of(LARGEST)), (0, 0, 1, CLASSES - 1));
    }

    /// A block given back is the next one taken of its size.
    #[test]
    fn a_freed_block_is_reused() {
        let a = take(40).unwrap();
        // SAFETY: `a` came from `take(40)`.
        unsafe { give(a, 48) };
        assert_eq!(take(33), Some(a));
        // SAFETY: as above.
        unsafe { give(a, 40) };
    }

    /// Blocks one thread takes and another drops come back to the first
    /// through the depot: many rounds take no more memory than one.
    #[test]
    fn blocks_freed_on_another_thread_are_reused() {
        let rounds = 50;
        let per_round = 4 * KEPT / 64;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..rounds {
            let blocks: Vec<usize> = (0..per_round).map(|_| take(64).unwrap().as_ptr() as usize).collect();
            seen.extend(blocks.iter().copied());
            std::thread::spawn(move || {
                for b in blocks {
                    // SAFETY: each came from `take(64)` and is given back once.
                    unsafe { give(NonNull::new(b as *mut u8).unwrap(), 64) };
                }
            })
            .join()
            .unwrap();
        }
        assert!(seen.len() < 3 * per_round, "{} distinct blocks for {rounds} rounds of {per_round}", seen.len());
    }
}
