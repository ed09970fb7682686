//! A pipe: two connected ends. Each end is a small record in the shared
//! region naming the queue it reads from (its inbox) and the queue it
//! writes to (the other end's inbox):
//!
//! ```text
//! end: [inbox offset u64][outbox offset u64][can_get u32][can_put u32]
//! ```
//!
//! A duplex pipe has two queues, one each way; a one-way pipe has one, and
//! a reading end and a writing end. Being queues in the shared region,
//! pipes carry any amount between threads and processes without the
//! deadlocks of an OS pipe's fixed buffer.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::handle::{Handle, HandleKind};
use super::queue::Queue;
use super::shm::{Off, Shared};
use super::{SyncError, new_object, region};

#[repr(C)]
struct End {
    inbox: AtomicU64,
    outbox: AtomicU64,
    can_get: AtomicU32,
    can_put: AtomicU32,
}

// SAFETY: made only of atomics.
unsafe impl Shared for End {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipeEnd(pub Off);

/// Makes a pipe: `(a, b)` both ways when `duplex`, else `(reader, writer)`.
/// Each end holds a reference to each of its queues.
pub fn pipe(duplex: bool) -> Result<(PipeEnd, PipeEnd), SyncError> {
    let forward = Queue::new(None)?;
    let backward = if duplex { Some(Queue::new(None)?) } else { None };
    for queue in std::iter::once(forward).chain(backward) {
        super::refs::retain(Handle::new(HandleKind::Queue, queue.0));
    }
    let a = PipeEnd::new(Some(forward), backward)?;
    let b = PipeEnd::new(backward, Some(forward))?;
    Ok((a, b))
}

impl PipeEnd {
    fn new(inbox: Option<Queue>, outbox: Option<Queue>) -> Result<PipeEnd, SyncError> {
        let (off, end) = new_object::<End>()?;
        end.inbox.store(inbox.map_or(0, |q| q.0), Ordering::SeqCst);
        end.outbox.store(outbox.map_or(0, |q| q.0), Ordering::SeqCst);
        end.can_get.store(u32::from(inbox.is_some()), Ordering::SeqCst);
        end.can_put.store(u32::from(outbox.is_some()), Ordering::SeqCst);
        Ok(PipeEnd(off))
    }

    fn end(&self) -> Result<&'static End, SyncError> {
        Ok(region()?.get::<End>(self.0))
    }

    /// The queue this end reads, if it reads.
    pub fn inbox(&self) -> Option<Queue> {
        let end = self.end().ok()?;
        (end.can_get.load(Ordering::SeqCst) != 0).then(|| Queue(end.inbox.load(Ordering::SeqCst)))
    }

    /// The queue this end writes, if it writes.
    pub fn outbox(&self) -> Option<Queue> {
        let end = self.end().ok()?;
        (end.can_put.load(Ordering::SeqCst) != 0).then(|| Queue(end.outbox.load(Ordering::SeqCst)))
    }

    /// Frees an end no one references; its queues go to `work`.
    pub(super) fn take_apart(&self, work: &mut Vec<Handle>) {
        let Ok(end) = self.end() else { return };
        for queue in [end.inbox.load(Ordering::SeqCst), end.outbox.load(Ordering::SeqCst)] {
            if queue != 0 {
                work.push(Handle::new(HandleKind::Queue, queue));
            }
        }
        if let Ok(region) = region() {
            region.free(self.0);
        }
    }

    /// Closing an end closes both directions through it: the other end's
    /// gets drain what was sent, then see `Closed`; its puts see `Closed`.
    pub fn close(&self) -> Result<(), SyncError> {
        for queue in [self.inbox(), self.outbox()].into_iter().flatten() {
            queue.close()?;
        }
        Ok(())
    }
}
