//! The interpreter's own lock for the short critical sections inside
//! primitives (a queue's ring, a shared cell's slot, the allocator's
//! lists). It lives in shared memory, so it works between processes; it is
//! never held across a blocking wait, so it needs no cancellation.
//!
//! The state word is 0 when free, otherwise the holder's pid, with
//! `CONTENDED` set once someone sleeps on it. A locker spins briefly, then
//! marks the lock contended and sleeps on its futex; the unlocker wakes one
//! sleeper only if the lock was marked contended.
//!
//! A process can die holding it (SIGKILL in the middle of a `put`). A
//! sleeper wakes every [`PATIENCE`] to check that the holder still lives;
//! if not, it takes the lock over and is told so ([`Held::Recovered`]). The
//! allocator's lists are consistent after any of its single stores, so it
//! simply goes on; a queue or shared cell whose bytes may be half written
//! is marked broken, and every later use of it fails with `Abandoned`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::SyncError;
use super::futex;
use super::shm::Shared;

#[repr(C)]
#[derive(Default)]
pub struct RawMutex {
    state: AtomicU32,
    /// The pid of a holder that died holding it, once it is broken.
    broken: AtomicU32,
}

// SAFETY: two atomics.
unsafe impl Shared for RawMutex {}

const SPINS: u32 = 100;
const CONTENDED: u32 = 1 << 31;
/// How long a sleeper waits before it checks that the holder lives.
const PATIENCE: Duration = Duration::from_millis(100);

/// How the lock was taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Held {
    Clean,
    /// From process `pid`, which died holding it.
    Recovered(i32),
}

/// This process's pid, kept so that locking makes no system call.
static PID: AtomicU32 = AtomicU32::new(0);

fn me() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => {
            let pid = nix::unistd::getpid().as_raw() as u32;
            PID.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

/// In a new child: its pid is its own.
pub fn forget_in_child() {
    PID.store(0, Ordering::Relaxed);
}

impl RawMutex {
    pub fn lock(&self) -> Held {
        let me = me();
        if self.state.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return Held::Clean;
        }
        for _ in 0..SPINS {
            std::hint::spin_loop();
            if self.state.load(Ordering::Relaxed) == 0
                && self.state.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed).is_ok()
            {
                return Held::Clean;
            }
        }
        loop {
            let seen = self.state.load(Ordering::Relaxed);
            if seen == 0 {
                if self.state.compare_exchange(0, me | CONTENDED, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    return Held::Clean;
                }
                continue;
            }
            let marked = seen | CONTENDED;
            if seen != marked
                && self.state.compare_exchange(seen, marked, Ordering::Relaxed, Ordering::Relaxed).is_err()
            {
                continue;
            }
            if futex::wait(&self.state, marked, Some(Instant::now() + PATIENCE)) {
                continue;
            }
            let holder = (seen & !CONTENDED) as i32;
            if process_gone(holder)
                && self.state.compare_exchange(marked, me | CONTENDED, Ordering::Acquire, Ordering::Relaxed).is_ok()
            {
                return Held::Recovered(holder);
            }
        }
    }

    pub fn unlock(&self) {
        if self.state.swap(0, Ordering::Release) & CONTENDED != 0 {
            futex::wake(&self.state, 1);
        }
    }

    /// Whether a holder died inside its section (see [`RawMutex::with_intact`]).
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst) != 0
    }

    /// Runs `f` with the lock held, whoever held it before.
    pub fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        let _ = self.lock();
        let result = f();
        self.unlock();
        result
    }

    /// Runs `f` with the lock held, unless a holder died in the middle of
    /// its own section (now or before): then the data it guards cannot be
    /// trusted, and every use is `Abandoned`.
    pub fn with_intact<T>(&self, f: impl FnOnce() -> T) -> Result<T, SyncError> {
        if let Held::Recovered(pid) = self.lock() {
            self.broken.store(pid as u32, Ordering::SeqCst);
        }
        let result = match self.broken.load(Ordering::SeqCst) {
            0 => Ok(f()),
            pid => Err(SyncError::Abandoned { holder: u64::from(pid) << 32 }),
        };
        self.unlock();
        result
    }
}

/// Whether process `pid` has ended (a zombie counts: it runs no more).
pub fn process_gone(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Err(nix::errno::Errno::ESRCH) => true,
        Err(_) => false,
        Ok(()) => zombie(pid),
    }
}

/// Whether `pid` is a zombie: dead, waiting to be reaped.
fn zombie(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // The state follows the command name, which is in brackets.
    stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}
