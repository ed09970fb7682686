//! A lock in the shared region that survives the death of its holder: a
//! process-shared, robust pthread mutex. When a process dies holding it
//! (SIGKILL in the middle of a line), the kernel marks it and the next
//! locker is told ([`Taken::Recovered`]) instead of waiting forever.
//!
//! It is for the interpreter's own short critical sections that one thread
//! both takes and gives back (the output lock); script locks, which any
//! task may release, are `sync::lock`.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering};

use super::shm::{Off, Shared};
use super::{SyncError, new_object, region};

#[repr(C)]
pub(super) struct RobustState {
    /// Set once the mutex is initialised.
    ready: AtomicU32,
    mutex: UnsafeCell<libc::pthread_mutex_t>,
}

// SAFETY: the mutex is a process-shared pthread mutex, made to be used in
// place from several processes; the flag is an atomic.
unsafe impl Shared for RobustState {}
// SAFETY: as above: pthread mutexes are shared between threads by design.
unsafe impl Sync for RobustState {}

/// How a lock was taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    Clean,
    /// Its last holder died holding it; it is consistent again now.
    Recovered,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RobustMutex(pub Off);

impl RobustMutex {
    pub fn new() -> Result<RobustMutex, SyncError> {
        let (off, _) = new_object::<RobustState>()?;
        let state = region()?.get::<RobustState>(off);
        // SAFETY: the attribute and the mutex are initialised before use, the
        // mutex exactly once, before any other thread or process can see it.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            libc::pthread_mutex_init(state.mutex.get(), &attr);
            libc::pthread_mutexattr_destroy(&mut attr);
        }
        state.ready.store(1, Ordering::Release);
        Ok(RobustMutex(off))
    }

    fn state(&self) -> Option<&'static RobustState> {
        let state = region().ok()?.get::<RobustState>(self.0);
        (state.ready.load(Ordering::Acquire) == 1).then_some(state)
    }

    /// Takes the lock; `None` if it cannot be had (never made, or broken).
    pub fn lock(&self) -> Option<Taken> {
        let state = self.state()?;
        // SAFETY: an initialised process-shared mutex in mapped memory.
        match unsafe { libc::pthread_mutex_lock(state.mutex.get()) } {
            0 => Some(Taken::Clean),
            libc::EOWNERDEAD => {
                // SAFETY: this thread holds the mutex (EOWNERDEAD hands it over).
                unsafe { libc::pthread_mutex_consistent(state.mutex.get()) };
                Some(Taken::Recovered)
            }
            _ => None,
        }
    }

    pub fn unlock(&self) {
        if let Some(state) = self.state() {
            // SAFETY: called only by the thread that took the lock.
            unsafe { libc::pthread_mutex_unlock(state.mutex.get()) };
        }
    }
}
