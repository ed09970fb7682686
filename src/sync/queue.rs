//! A FIFO queue of byte strings in the shared region: one queue type for
//! threads, processes and pool workers alike.
//!
//! ```text
//! header: mutex | closed | not_empty | not_full | capacity | count | head | ring_cap | ring
//! ring:   ring_cap slots (see `slot.rs`)
//! ```
//!
//! An item of up to 24 bytes (an int, a short string) lives in its slot;
//! a longer one in a block of its own, allocated and filled before the
//! queue's mutex is taken and read after it is released, so the mutex is
//! held only to move slot contents. An unbounded queue's ring doubles when
//! full. Getters sleep on `not_empty`, putters on `not_full`; each put
//! wakes one getter and each get one putter, and only when someone sleeps.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::mutex::RawMutex;
use super::shm::{Off, Region, Shared};
use super::slot::{self, SLOT};
use super::wait::{Interrupted, Wait, WaitPoint};
use super::{SyncError, new_object, region};

#[repr(C)]
struct Header {
    mutex: RawMutex,
    closed: AtomicU32,
    not_empty: WaitPoint,
    not_full: WaitPoint,
    /// `UNBOUNDED` or the most items the queue holds.
    capacity: AtomicU32,
    count: AtomicU32,
    head: AtomicU32,
    ring_cap: AtomicU32,
    ring: AtomicU64,
}

// SAFETY: made only of atomics and other `Shared` types.
unsafe impl Shared for Header {}

const UNBOUNDED: u32 = u32::MAX;
const FIRST_RING: u32 = 16;

/// A handle to a queue: its header's offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queue(pub Off);

impl Queue {
    /// A new queue holding at most `capacity` items (`None`: unbounded).
    pub fn new(capacity: Option<u32>) -> Result<Queue, SyncError> {
        let region = region()?;
        let (off, header) = new_object::<Header>()?;
        let ring_cap = match capacity {
            Some(c) => c.clamp(1, FIRST_RING),
            None => FIRST_RING,
        };
        let ring = region.alloc(ring_cap as usize * SLOT).ok_or(SyncError::NoSpace)?;
        header.capacity.store(capacity.unwrap_or(UNBOUNDED), Ordering::Relaxed);
        header.ring_cap.store(ring_cap, Ordering::Relaxed);
        header.ring.store(ring, Ordering::Relaxed);
        Ok(Queue(off))
    }

    fn header(&self, region: &'static Region) -> &'static Header {
        region.get::<Header>(self.0)
    }

    pub fn len(&self) -> usize {
        region().map_or(0, |r| self.header(r).count.load(Ordering::SeqCst) as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most items it holds; `None` when unbounded.
    pub fn capacity(&self) -> Option<usize> {
        let capacity = region().map_or(UNBOUNDED, |r| self.header(r).capacity.load(Ordering::Relaxed));
        (capacity != UNBOUNDED).then_some(capacity as usize)
    }

    pub fn is_full(&self) -> bool {
        self.capacity().is_some_and(|c| self.len() >= c)
    }

    pub fn is_closed(&self) -> bool {
        region().is_ok_and(|r| self.header(r).closed.load(Ordering::SeqCst) != 0)
    }

    /// Adds `bytes` at the back, waiting while the queue is full.
    pub fn put(&self, bytes: &[u8], wait: Wait<'_>) -> Result<(), SyncError> {
        let region = region()?;
        let header = self.header(region);
        let raw = slot::pack(region, bytes)?;
        let outcome = header.not_full.block_on(wait, || {
            let pushed = header.mutex.with_intact(|| {
                if header.closed.load(Ordering::Relaxed) != 0 {
                    Some(Err(SyncError::Closed))
                } else if header.count.load(Ordering::Relaxed) < header.capacity.load(Ordering::Relaxed) {
                    Some(self.push(region, header, &raw))
                } else {
                    None
                }
            });
            pushed.unwrap_or_else(|broken| Some(Err(broken)))
        });
        let outcome = match outcome {
            Ok(result) => result,
            Err(Interrupted::Timeout) => Err(SyncError::Timeout),
            Err(Interrupted::Cancelled) => Err(SyncError::Cancelled),
        };
        match outcome {
            Ok(()) => header.not_empty.notify(false),
            // The item never went in: give its block back.
            Err(_) => slot::discard(region, &raw),
        }
        outcome
    }

    /// Stores an item at the back; the mutex is held.
    fn push(&self, region: &Region, header: &Header, raw: &slot::Raw) -> Result<(), SyncError> {
        let count = header.count.load(Ordering::Relaxed);
        if count == header.ring_cap.load(Ordering::Relaxed) {
            self.grow(region, header)?;
        }
        let ring_cap = header.ring_cap.load(Ordering::Relaxed);
        let at = (header.head.load(Ordering::Relaxed) + count) % ring_cap;
        region.write(header.ring.load(Ordering::Relaxed) + (at as usize * SLOT) as u64, raw);
        header.count.store(count + 1, Ordering::SeqCst);
        Ok(())
    }

    /// Doubles a full ring, keeping the items in order; the mutex is held.
    fn grow(&self, region: &Region, header: &Header) -> Result<(), SyncError> {
        let old_cap = header.ring_cap.load(Ordering::Relaxed);
        let new_cap = old_cap.checked_mul(2).ok_or(SyncError::NoSpace)?;
        let new_ring = region.alloc(new_cap as usize * SLOT).ok_or(SyncError::NoSpace)?;
        let old_ring = header.ring.load(Ordering::Relaxed);
        let head = header.head.load(Ordering::Relaxed);
        for i in 0..old_cap {
            let from = old_ring + (((head + i) % old_cap) as usize * SLOT) as u64;
            region.write(new_ring + (i as usize * SLOT) as u64, &slot::read(region, from));
        }
        header.ring.store(new_ring, Ordering::Relaxed);
        header.ring_cap.store(new_cap, Ordering::Relaxed);
        header.head.store(0, Ordering::Relaxed);
        region.free(old_ring);
        Ok(())
    }

    /// Takes the item at the front, waiting while the queue is empty. A
    /// closed queue gives what it still holds, then `Closed`.
    pub fn get(&self, wait: Wait<'_>) -> Result<slot::Taken, SyncError> {
        let region = region()?;
        let header = self.header(region);
        let outcome = header.not_empty.block_on(wait, || {
            let empty = header.count.load(Ordering::SeqCst) == 0 && header.closed.load(Ordering::SeqCst) == 0;
            if empty && !header.mutex.is_broken() {
                return None;
            }
            let popped = header.mutex.with_intact(|| {
                if header.count.load(Ordering::Relaxed) > 0 {
                    Some(Ok(self.pop(region, header)))
                } else if header.closed.load(Ordering::Relaxed) != 0 {
                    Some(Err(SyncError::Closed))
                } else {
                    None
                }
            });
            popped.unwrap_or_else(|broken| Some(Err(broken)))
        });
        let raw = match outcome {
            Ok(Ok(raw)) => raw,
            Ok(Err(e)) => return Err(e),
            Err(Interrupted::Timeout) => return Err(SyncError::Timeout),
            Err(Interrupted::Cancelled) => return Err(SyncError::Cancelled),
        };
        header.not_full.notify(false);
        Ok(slot::take(region, &raw))
    }

    /// Removes the front slot's raw contents; the mutex is held.
    fn pop(&self, region: &Region, header: &Header) -> slot::Raw {
        let head = header.head.load(Ordering::Relaxed);
        let ring_cap = header.ring_cap.load(Ordering::Relaxed);
        let raw = slot::read(region, header.ring.load(Ordering::Relaxed) + (head as usize * SLOT) as u64);
        header.head.store((head + 1) % ring_cap, Ordering::Relaxed);
        header.count.fetch_sub(1, Ordering::SeqCst);
        raw
    }

    /// Frees a queue no one references; the handles its items name go to
    /// `work` (see `refs.rs`).
    pub(super) fn take_apart(&self, work: &mut Vec<super::handle::Handle>) {
        let Ok(region) = region() else { return };
        let header = self.header(region);
        let (ring, ring_cap) = (header.ring.load(Ordering::SeqCst), header.ring_cap.load(Ordering::SeqCst));
        let head = header.head.load(Ordering::SeqCst);
        for i in 0..header.count.load(Ordering::SeqCst) {
            let at = ring + (((head + i) % ring_cap) as usize * SLOT) as u64;
            slot::discard_into(region, &slot::read(region, at), work);
        }
        region.free(ring);
        region.free(self.0);
    }

    /// No more puts; getters drain what is left, then see `Closed`.
    pub fn close(&self) -> Result<(), SyncError> {
        let region = region()?;
        let header = self.header(region);
        header.mutex.with_intact(|| header.closed.store(1, Ordering::SeqCst))?;
        header.not_empty.notify(true);
        header.not_full.notify(true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use nix::sys::signal::{Signal, raise};
    use nix::sys::wait::waitpid;
    use nix::unistd::ForkResult;

    use super::*;
    use crate::sync::cancel::CancelToken;

    /// A process killed while holding a queue's own mutex (in the middle
    /// of a put, say) leaves the queue broken, never stuck: every later
    /// use fails with `Abandoned` naming the dead process.
    #[test]
    fn a_holder_killed_inside_a_queue_leaves_it_broken_not_stuck() {
        let queue = Queue::new(Some(4)).expect("a queue");
        let header = queue.header(region().expect("the region"));
        // SAFETY: the child only takes a lock (atomics and a futex) and
        // kills itself; it touches nothing another thread could hold.
        let child = match unsafe { nix::unistd::fork() }.expect("fork") {
            ForkResult::Child => {
                crate::sync::mutex::forget_in_child();
                let _ = header.mutex.lock();
                let _ = raise(Signal::SIGKILL);
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(1) }
            }
            ForkResult::Parent { child } => child,
        };
        waitpid(child, None).expect("the child is reaped");
        let never = CancelToken::default();
        let abandoned = Err(SyncError::Abandoned { holder: (child.as_raw() as u64) << 32 });
        assert_eq!(queue.put(b"item", Wait::new(&never, None)), abandoned);
        assert_eq!(queue.get(Wait::new(&never, None)).map(|_| ()), abandoned);
        assert_eq!(queue.close(), abandoned);
    }
}
