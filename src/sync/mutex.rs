//! The interpreter's own lock for the short critical sections inside
//! primitives (a queue's ring, the allocator's lists). It lives in shared
//! memory, so it works between processes; it is never held across a
//! blocking wait, so it needs no cancellation.
//!
//! States: 0 free, 1 held, 2 held with sleepers. A locker spins briefly,
//! then marks the lock contended and sleeps on its futex; the unlocker
//! wakes one sleeper only if the lock was marked contended.

use std::sync::atomic::{AtomicU32, Ordering};

use super::futex;
use super::shm::Shared;

#[repr(C)]
#[derive(Default)]
pub struct RawMutex {
    state: AtomicU32,
}

// SAFETY: a single atomic.
unsafe impl Shared for RawMutex {}

const SPINS: u32 = 100;

impl RawMutex {
    pub fn lock(&self) {
        if self.state.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return;
        }
        for _ in 0..SPINS {
            std::hint::spin_loop();
            if self.state.load(Ordering::Relaxed) == 0
                && self.state.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok()
            {
                return;
            }
        }
        while self.state.swap(2, Ordering::Acquire) != 0 {
            futex::wait(&self.state, 2, None);
        }
    }

    pub fn unlock(&self) {
        if self.state.swap(0, Ordering::Release) == 2 {
            futex::wake(&self.state, 1);
        }
    }

    /// Runs `f` with the lock held.
    pub fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        self.lock();
        let result = f();
        self.unlock();
        result
    }
}
