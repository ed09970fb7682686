//! The interpreter's own lock for the short critical sections inside
//! primitives (a queue's ring, a shared cell's slot, the allocator's
//! lists). It lives in shared memory, so it works between processes; it is
//! never held across a blocking wait, so it needs no cancellation.
//!
//! The state word holds the holder's pid (0 when free), with `CONTENDED`
//! set once someone sleeps on it, and `BROKEN` once a holder died inside. A locker spins briefly, then
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
use std::time::Duration;

use super::SyncError;
use super::futex;
use super::shm::{Shared, region};

#[repr(C)]
#[derive(Default)]
pub struct RawMutex {
    state: AtomicU32,
}

// SAFETY: one atomic.
unsafe impl Shared for RawMutex {}

const SPINS: u32 = 100;
/// Someone sleeps on the lock: the unlocker must wake one.
const CONTENDED: u32 = 1 << 31;
/// A holder died inside the section: what the lock guards may be half
/// written. Kept for good, held or free.
const BROKEN: u32 = 1 << 30;
/// The holder's pid.
const PID: u32 = BROKEN - 1;
/// How long a sleeper waits before it checks that the holder lives.
const PATIENCE: Duration = Duration::from_millis(100);

/// How the lock was taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Held {
    Clean,
    /// From process `pid`, which died holding it.
    Recovered(i32),
    /// It was marked broken before (see [`RawMutex::with_intact`]).
    Broken,
}

/// This process's pid, kept so that locking makes no system call.
static MY_PID: AtomicU32 = AtomicU32::new(0);

fn me() -> u32 {
    match MY_PID.load(Ordering::Relaxed) {
        0 => {
            let pid = nix::unistd::getpid().as_raw() as u32;
            MY_PID.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

/// In a new child: its pid is its own.
pub fn forget_in_child() {
    MY_PID.store(0, Ordering::Relaxed);
}

impl RawMutex {
    #[inline]
    pub fn lock(&self) -> Held {
        let me = me();
        if self.state.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return Held::Clean;
        }
        self.lock_slow(me)
    }

    #[cold]
    fn lock_slow(&self, me: u32) -> Held {
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
            let holder = seen & PID;
            if holder == 0 {
                let broken = seen & BROKEN;
                let mine = me | CONTENDED | broken;
                if self.state.compare_exchange(seen, mine, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    return if broken != 0 { Held::Broken } else { Held::Clean };
                }
                continue;
            }
            let marked = seen | CONTENDED;
            if seen != marked
                && self.state.compare_exchange(seen, marked, Ordering::Relaxed, Ordering::Relaxed).is_err()
            {
                continue;
            }
            if futex::wait_for(&self.state, marked, Some(PATIENCE)) {
                continue;
            }
            let mine = me | CONTENDED | (seen & BROKEN);
            if process_gone(holder as i32)
                && self.state.compare_exchange(marked, mine, Ordering::Acquire, Ordering::Relaxed).is_ok()
            {
                return Held::Recovered(holder as i32);
            }
        }
    }

    pub fn unlock(&self) {
        if self.state.fetch_and(BROKEN, Ordering::Release) & CONTENDED != 0 {
            futex::wake(&self.state, 1);
        }
    }

    /// Whether a holder died inside its section (see [`RawMutex::with_intact`]).
    #[inline]
    pub fn is_broken(&self) -> bool {
        self.state.load(Ordering::Relaxed) & BROKEN != 0
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
    /// trusted, and every use is `Abandoned`, naming the dead process (kept
    /// in a table in the region, so the lock stays one word).
    #[inline]
    pub fn with_intact<T>(&self, f: impl FnOnce() -> T) -> Result<T, SyncError> {
        let dead = match self.lock() {
            Held::Clean => {
                let result = f();
                self.unlock();
                return Ok(result);
            }
            Held::Recovered(pid) => {
                self.state.fetch_or(BROKEN, Ordering::SeqCst);
                if let Some(region) = region() {
                    region.mark_broken(self.word(), pid);
                }
                pid
            }
            Held::Broken => region().and_then(|r| r.broken_by(self.word())).unwrap_or(0),
        };
        self.unlock();
        Err(SyncError::Abandoned { holder: (dead as u64) << 32 })
    }

    /// This lock's address, as the region's table of broken locks knows it.
    fn word(&self) -> u64 {
        &self.state as *const AtomicU32 as u64
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
