//! The concurrency primitives: queues, pipes, locks, semaphores,
//! conditions, events, shared cells and lists (`cell.rs`) and shared maps
//! (`dict.rs`). They know nothing of the syntax tree or of
//! values: items and cell contents are byte strings (`runtime::wire`
//! turns values into them).
//!
//! # Memory layout
//!
//! Every primitive lives in the shared region (`shm.rs`), an anonymous
//! `MAP_SHARED` mapping made before the first task starts. A handle is the
//! primitive's byte offset in the region, so it means the same object in
//! every thread and, after `fork`, in every process, and it can be copied
//! through a queue like any number. Each primitive's module draws its
//! layout. Items in queues and values in shared cells sit in 32-byte slots
//! (`slot.rs`), inline up to 24 bytes, otherwise in a block from the
//! region's allocator. The region's memory is reused as items come and go,
//! and a primitive's once nothing references it any more: every primitive
//! has a reference count (`refs.rs`), and every process lists the
//! references it holds (`holdings.rs`) so that they are given back however
//! it ends.
//!
//! # Wake-up protocol
//!
//! Short critical sections use [`mutex::RawMutex`], a futex lock that
//! spins, then sleeps, is never held across a wait, and is taken over
//! from a holder whose process died (the object it guards is then marked
//! broken, unless it is whole after every store, as the allocator is). Every blocking
//! operation waits on a [`wait::WaitPoint`]: a futex sequence word, a
//! count of sleepers and a count of wake-ups on their way. The waiter
//! retries its operation, spins for a few microseconds (a hand-off between
//! two running cores costs well under a microsecond; a sleep and wake
//! through the kernel about 20 us), then sleeps on the futex. The waker
//! changes the state, bumps the sequence and calls `futex_wake` only if a
//! sleeper has no wake-up on its way already. A timeout is a futex
//! deadline. A cancel ([`cancel::CancelToken`]: `terminate`, Ctrl-C) bumps
//! the word its task published and wakes it: none outlives a cancel. A
//! sleeper looks again every few seconds all the same, a backstop against
//! a lost wake-up (`wait::BACKSTOP`).
//!
//! ```
//! use concsh::sync::{cancel::CancelToken, queue::Queue, wait::Wait};
//! let never = CancelToken::default();
//! let q = Queue::new(Some(3)).unwrap();
//! q.put(b"msg", Wait::new(&never, None)).unwrap();
//! assert_eq!(q.get(Wait::new(&never, None)).unwrap(), b"msg");
//! ```

pub mod board;
pub mod cancel;
pub mod cell;
pub mod condition;
pub mod dict;
pub mod event;
pub(crate) mod futex;
pub mod gate;
pub mod handle;
pub mod history;
pub mod holdings;
pub mod lock;
pub mod mutex;
pub mod pipe;
pub mod queue;
pub mod refs;
pub mod robust;
pub mod semaphore;
pub mod shm;
pub mod slot;
pub mod wait;

/// Why a primitive operation did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncError {
    /// The deadline passed first.
    Timeout,
    /// The task was cancelled while it waited.
    Cancelled,
    /// The queue is closed.
    Closed,
    /// A release of a lock no one holds.
    NotLocked,
    /// A semaphore released more times than it was acquired.
    OverReleased,
    /// A condition used without holding its lock.
    NotOwner,
    /// An index past the end of a shared array.
    OutOfRange,
    /// The shared region is full (or could not be mapped).
    NoSpace,
    /// The primitive was held by a process that died: `holder` is the
    /// task id of the dead holder (its pid in the high 32 bits).
    Abandoned { holder: u64 },
}

/// The shared region, or `NoSpace` if the kernel refused to map one.
fn region() -> Result<&'static shm::Region, SyncError> {
    shm::region().ok_or(SyncError::NoSpace)
}

/// A new zeroed `T` in the shared region: its offset, and the object.
fn new_object<T: shm::Shared>() -> Result<(shm::Off, &'static T), SyncError> {
    let region = region()?;
    let off = region.alloc(std::mem::size_of::<T>()).ok_or(SyncError::NoSpace)?;
    Ok((off, region.get::<T>(off)))
}
