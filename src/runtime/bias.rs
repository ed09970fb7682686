//! Which thread may use a container without taking its lock.
//!
//! Most lists and maps are only ever used by the thread that made them (an
//! object's fields, a function's table of results), yet each use took
//! their lock: two atomic read-modify-writes per use (a loop of a million
//! map inserts and lookups runs a fifth faster without them). So a new
//! container is *biased* to its maker's thread: the maker
//! marks itself busy with a plain store, checks that the container is
//! still its own, and uses it; no atomic read-modify-write at all.
//!
//! Another thread that wants the container *revokes* the bias, once: it
//! marks the container as being revoked, makes every thread of the
//! process pass a memory barrier (`membarrier`, the kernel's asymmetric
//! fence), waits for the maker to leave its use, and from then on the
//! container is shared and everyone takes its lock. The barrier pairs
//! with the maker's compiler fence between marking itself busy and
//! checking the owner (see `membarrier(2)`): either the maker sees the
//! revocation, or the revoker sees the maker busy.
//!
//! Without `membarrier` (an old kernel, a sandbox that refuses it),
//! containers are made shared and always take their lock.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, compiler_fence};

use parking_lot::{Mutex, MutexGuard};

/// A container every thread reaches through its lock.
const SHARED: u64 = 0;
/// A container whose bias a thread is revoking: wait for `SHARED`.
const REVOKING: u64 = u64::MAX;

/// The next thread's token. Tokens are never reused within a process, so
/// a dead thread's containers can never be taken for another's.
static NEXT: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static TOKEN: Cell<u64> = const { Cell::new(SHARED) };
}

const MEMBARRIER_CMD_QUERY: libc::c_int = 0;
const MEMBARRIER_CMD_GLOBAL: libc::c_int = 1;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 8;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 16;

fn membarrier(cmd: libc::c_int) -> libc::c_long {
    // SAFETY: `membarrier` takes two integers and touches no memory of ours.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0 as libc::c_int) }
}

/// Whether this process can revoke a bias: `membarrier` offers its fast
/// private barrier and this process is registered for it (and the slow
/// global one is there as a fallback). Asked once, by `prepare` at start.
fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        let commands = membarrier(MEMBARRIER_CMD_QUERY);
        let offered = |cmd: libc::c_int| commands >= 0 && commands & libc::c_long::from(cmd) != 0;
        offered(MEMBARRIER_CMD_GLOBAL)
            && offered(MEMBARRIER_CMD_PRIVATE_EXPEDITED)
            && membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0
    })
}

/// Asks the kernel for the barrier while the process has one thread
/// (registering later waits for every CPU to pass a grace period).
pub fn prepare() {
    enabled();
}

/// This thread's token.
#[inline(always)]
fn token() -> u64 {
    TOKEN.with(|token| match token.get() {
        SHARED => {
            let fresh = NEXT.fetch_add(1, Ordering::Relaxed);
            token.set(fresh);
            fresh
        }
        mine => mine,
    })
}

/// Makes every thread of this process pass a full memory barrier. The fast
/// private barrier needs the process registered, which a forked child is
/// (its registration comes with the copied address space); should a
/// kernel not carry it over, the child registers and tries again, and
/// else takes the global barrier, slow but never refused once `enabled`
/// said yes.
#[cold]
fn barrier_everywhere() {
    if membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0 {
        return;
    }
    if membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 && membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0 {
        return;
    }
    membarrier(MEMBARRIER_CMD_GLOBAL);
}

/// A container's contents behind a lock that the thread that made it
/// skips while no other thread has used it.
pub struct Biased<T> {
    bias: Bias,
    data: Mutex<T>,
}

impl<T> Biased<T> {
    pub fn new(data: T) -> Biased<T> {
        Biased { bias: Bias::mine(), data: Mutex::new(data) }
    }

    /// The contents, for this thread alone until the guard's drop.
    #[inline]
    pub fn lock(&self) -> BiasedGuard<'_, T> {
        let locked = match self.bias.enter() {
            true => None,
            false => Some(self.data.lock()),
        };
        BiasedGuard { cell: self, locked }
    }
}

/// A container's contents, held by this thread alone: through its bias,
/// or through its lock.
pub struct BiasedGuard<'a, T> {
    cell: &'a Biased<T>,
    /// The lock, unless the container's bias is this thread's.
    locked: Option<MutexGuard<'a, T>>,
}

impl<T> Deref for BiasedGuard<'_, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the contents for this thread alone (its
        // bias or its lock), for as long as the borrow of the guard.
        unsafe { &*self.cell.data.data_ptr() }
    }
}

impl<T> DerefMut for BiasedGuard<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, the borrow being unique.
        unsafe { &mut *self.cell.data.data_ptr() }
    }
}

impl<T> Drop for BiasedGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        // (A lock is released by its own guard, dropped after this.)
        if self.locked.is_none() {
            self.cell.bias.leave();
        }
    }
}

/// The bias of one container: its owner's token (or `SHARED`) and
/// whether the owner is using it now.
struct Bias {
    owner: AtomicU64,
    busy: AtomicBool,
}

impl Bias {
    /// Biased to the calling thread, when this process can revoke.
    fn mine() -> Bias {
        let owner = if enabled() { token() } else { SHARED };
        Bias { owner: AtomicU64::new(owner), busy: AtomicBool::new(false) }
    }

    /// Starts a use without the lock, when the container is this thread's:
    /// true then, and `leave` must follow. False: take the lock (any bias
    /// another thread had is revoked first).
    #[inline(always)]
    fn enter(&self) -> bool {
        let owner = self.owner.load(Ordering::Relaxed);
        if owner != SHARED && owner == token() {
            self.busy.store(true, Ordering::Relaxed);
            // Pairs with the revoker's `membarrier`: the busy mark is not
            // reordered after the owner's second look.
            compiler_fence(Ordering::SeqCst);
            if self.owner.load(Ordering::Relaxed) == owner {
                // No other thread has used the container (a bias is never
                // handed on), so there is nothing to acquire; this use's
                // writes are published by `leave` for a revoker.
                return true;
            }
            self.busy.store(false, Ordering::Release);
        }
        if owner != SHARED {
            self.revoke();
        }
        false
    }

    /// Ends a use that `enter` started.
    #[inline(always)]
    fn leave(&self) {
        self.busy.store(false, Ordering::Release);
    }

    /// Makes the container shared, waiting out its owner's use.
    #[cold]
    #[inline(never)]
    fn revoke(&self) {
        let mut owner = self.owner.load(Ordering::Acquire);
        let mut spins = 0u32;
        loop {
            match owner {
                SHARED => return,
                REVOKING => {}
                _ => match self.owner.compare_exchange(owner, REVOKING, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break,
                    Err(now) => {
                        owner = now;
                        continue;
                    }
                },
            }
            // Another thread revokes it: wait for the container to be shared.
            pause(&mut spins);
            owner = self.owner.load(Ordering::Acquire);
        }
        barrier_everywhere();
        let mut spins = 0u32;
        while self.busy.load(Ordering::Acquire) {
            pause(&mut spins);
        }
        self.owner.store(SHARED, Ordering::Release);
    }

    /// Whether the container is still biased to some thread.
    #[cfg(test)]
    fn biased(&self) -> bool {
        self.owner.load(Ordering::Relaxed) != SHARED
    }
}

/// A short spin, then yielding: an owner's use is a few operations, but
/// its thread may be descheduled in the middle.
fn pause(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_maker_enters_without_the_lock_until_another_thread_revokes() {
        let bias = Arc::new(Bias::mine());
        if !enabled() {
            assert!(!bias.enter(), "no barrier: shared from the start");
            return;
        }
        assert!(bias.enter());
        bias.leave();
        let other = bias.clone();
        let entered = std::thread::spawn(move || other.enter()).join().unwrap_or(true);
        assert!(!entered, "another thread takes the lock");
        assert!(!bias.biased(), "and the bias is gone");
        assert!(!bias.enter(), "the maker too takes the lock from then on");
    }

    /// The maker inside a use holds a revoker off until it leaves.
    #[test]
    fn a_revoker_waits_for_the_makers_use_to_end() {
        let bias = Arc::new(Bias::mine());
        if !bias.enter() {
            return;
        }
        let other = bias.clone();
        let revoker = std::thread::spawn(move || other.enter());
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!revoker.is_finished(), "the revoker waits while the maker is busy");
        bias.leave();
        assert_eq!(revoker.join().ok(), Some(false));
    }

    /// A thread takes up each of many containers while their maker is
    /// inside a use of it (the use widened by a spin): every revocation
    /// waits the use out, so no increment is lost. (Without the wait, a
    /// few in a thousand are.)
    #[test]
    fn many_revocations_during_uses_lose_no_update() {
        const MADE: u64 = 50_000;
        let slot = Arc::new(Mutex::new(Arc::new(Biased::new(0u64))));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (taken, stop) = (slot.clone(), done.clone());
        let helper = std::thread::spawn(move || {
            let mut count = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let counter = taken.lock().clone();
                *counter.lock() += 1;
                count += 1;
            }
            count
        });
        let mut all = vec![slot.lock().clone()];
        for _ in 0..MADE {
            let counter = Arc::new(Biased::new(0u64));
            all.push(counter.clone());
            *slot.lock() = counter.clone();
            for _ in 0..20 {
                let mut held = counter.lock();
                let before = *held;
                for _ in 0..20 {
                    std::hint::spin_loop();
                }
                *held = before + 1;
            }
        }
        done.store(true, Ordering::Relaxed);
        let helped = helper.join().unwrap_or(0);
        let total: u64 = all.iter().map(|counter| *counter.lock()).sum();
        assert_eq!(total, MADE * 20 + helped);
    }
}
