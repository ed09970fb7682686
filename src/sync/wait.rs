//! How every primitive blocks: a [`WaitPoint`] (a futex sequence word and
//! a count of sleepers) beside the state it guards.
//!
//! A waiter first tries its operation; then spins for a few microseconds,
//! retrying whenever the sequence moves; then counts itself a sleeper,
//! publishes the word in its cancel token and sleeps on the futex until the
//! sequence moves, its deadline passes, or it is cancelled. A waker changes
//! the state, bumps the sequence and makes a `futex_wake` system call only
//! when someone sleeps. All of these steps are `SeqCst`, so either the
//! waker sees the sleeper or the sleeper sees the new sequence: no wake-up
//! is lost. A cancel bumps the word the task published and wakes it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::board::{self, What};
use super::cancel::CancelToken;
use super::futex;
use super::gate::Gate;
use super::shm::{Off, Region, Shared, region};

#[repr(C)]
#[derive(Default)]
pub struct WaitPoint {
    seq: AtomicU32,
    sleepers: AtomicU32,
}

// SAFETY: two atomics.
unsafe impl Shared for WaitPoint {}

/// How one sleep ended.
enum Slept<T> {
    Done(T),
    Interrupted(Interrupted),
    /// Woken (or spuriously returned) without success: spin, then sleep again.
    Woken,
}

/// Why a wait ended without its operation succeeding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupted {
    Timeout,
    Cancelled,
}

/// How long spinning lasts before sleeping: longer than a hand-off between
/// two running cores (well under 1 us), far shorter than a sleep/wake
/// round trip through the kernel (about 20-25 us here).
const SPIN_FOR: Duration = Duration::from_micros(8);

/// A blocking call's limits: its deadline and its task's cancel token,
/// and the fork gate its task leaves while it sleeps.
#[derive(Clone, Copy)]
pub struct Wait<'a> {
    pub deadline: Option<Instant>,
    pub cancel: &'a CancelToken,
    pub gate: Option<&'a Gate>,
    /// What the wait is for, told to the task board while asleep.
    pub what: What,
}

impl<'a> Wait<'a> {
    pub fn new(cancel: &'a CancelToken, timeout: Option<Duration>) -> Wait<'a> {
        let deadline = timeout.map(|t| Instant::now().checked_add(t).unwrap_or_else(far_future));
        Wait { deadline, cancel, gate: None, what: What::default() }
    }

    pub fn in_gate(self, gate: &'a Gate) -> Wait<'a> {
        Wait { gate: Some(gate), ..self }
    }

    pub fn doing(self, what: What) -> Wait<'a> {
        Wait { what, ..self }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

impl WaitPoint {
    /// Wakes one sleeper (or all), after the caller changed the state.
    pub fn notify(&self, all: bool) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            board::woken();
            futex::wake(&self.seq, if all { u32::MAX } else { 1 });
        }
    }

    /// The futex word, for cancel tokens.
    pub fn word(&self) -> &AtomicU32 {
        &self.seq
    }

    /// Blocks until `attempt` gives a result, the deadline passes, or the
    /// task is cancelled. `attempt` runs first, then after every change of
    /// the sequence. After each wake-up the waiter spins again before it
    /// sleeps again: while it spins it counts as no sleeper, so wakers make
    /// no system call (a woken waiter that lost the race to a running
    /// thread would otherwise cost one on every later notify).
    pub fn block_on<T>(&self, wait: Wait<'_>, mut attempt: impl FnMut() -> Option<T>) -> Result<T, Interrupted> {
        if let Some(done) = attempt() {
            return Ok(done);
        }
        loop {
            if wait.cancel.is_cancelled() {
                return Err(Interrupted::Cancelled);
            }
            if wait.deadline.is_some_and(|d| d <= Instant::now()) {
                return Err(Interrupted::Timeout);
            }
            if let Some(done) = self.spin(&mut attempt) {
                return Ok(done);
            }
            // Asleep, the task holds no interpreter lock: a fork may go ahead.
            if let Some(gate) = wait.gate {
                gate.leave();
            }
            let slept = self.sleep_once(wait, &mut attempt);
            if let Some(gate) = wait.gate {
                gate.enter();
            }
            match slept {
                Slept::Done(done) => return Ok(done),
                Slept::Interrupted(why) => return Err(why),
                Slept::Woken => {}
            }
        }
    }

    /// Spins for up to [`SPIN_FOR`], retrying whenever the sequence moves.
    fn spin<T>(&self, attempt: &mut impl FnMut() -> Option<T>) -> Option<T> {
        let mut seen = self.seq.load(Ordering::SeqCst);
        let spin_until = Instant::now() + SPIN_FOR;
        let mut spins = 0u32;
        loop {
            std::hint::spin_loop();
            let now = self.seq.load(Ordering::SeqCst);
            if now != seen {
                seen = now;
                if let Some(done) = attempt() {
                    return Some(done);
                }
            }
            spins += 1;
            if spins.is_multiple_of(64) && Instant::now() >= spin_until {
                return None;
            }
        }
    }

    /// One sleep on the futex, between counting in and out as a sleeper.
    fn sleep_once<T>(&self, wait: Wait<'_>, attempt: &mut impl FnMut() -> Option<T>) -> Slept<T> {
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        wait.cancel.publish(Some(&self.seq));
        let seen = self.seq.load(Ordering::SeqCst);
        board::asleep(&self.seq, seen, wait.deadline.is_some(), wait.what);
        let outcome = if let Some(done) = attempt() {
            Slept::Done(done)
        } else if wait.cancel.is_cancelled() {
            Slept::Interrupted(Interrupted::Cancelled)
        } else if !futex::wait(&self.seq, seen, wait.deadline) {
            Slept::Interrupted(Interrupted::Timeout)
        } else {
            Slept::Woken
        };
        board::awake();
        wait.cancel.publish(None);
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        match outcome {
            Slept::Interrupted(why) => {
                // The last chance: the state may have changed just now.
                if let Some(done) = attempt() {
                    return Slept::Done(done);
                }
                // A wake-up meant for one sleeper may have come to us:
                // pass it on rather than lose it.
                self.notify(false);
                Slept::Interrupted(why)
            }
            Slept::Woken => match attempt() {
                Some(done) => Slept::Done(done),
                None if wait.cancel.is_cancelled() => {
                    self.notify(false);
                    Slept::Interrupted(Interrupted::Cancelled)
                }
                None => Slept::Woken,
            },
            done => done,
        }
    }
}

/// A wait point for an object of one process (a pool's future, say),
/// placed in the shared region all the same: the task board can then
/// read its word from any process, and tell a wake-up on its way from a
/// deadlock. In process memory only if the region is full.
pub enum SharedPoint {
    Region(&'static Region, Off),
    Local(Box<WaitPoint>),
}

/// Points given back, kept for reuse by the same thread: the region's
/// allocator lock is shared by every process, and a pool makes a future
/// per task.
const SPARE_POINTS: usize = 64;

thread_local! {
    static SPARE: std::cell::RefCell<Vec<Off>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// In a forked child: the points this thread kept are its parent's.
pub fn forget_in_child() {
    SPARE.with(|spare| spare.borrow_mut().clear());
}

impl Default for SharedPoint {
    fn default() -> Self {
        let Some(region) = region() else { return SharedPoint::Local(Box::default()) };
        let spare = SPARE.with(|spare| spare.borrow_mut().pop());
        match spare.or_else(|| region.alloc(std::mem::size_of::<WaitPoint>())) {
            Some(off) => SharedPoint::Region(region, off),
            None => SharedPoint::Local(Box::default()),
        }
    }
}

impl std::ops::Deref for SharedPoint {
    type Target = WaitPoint;

    fn deref(&self) -> &WaitPoint {
        match self {
            SharedPoint::Region(region, off) => region.get(*off),
            SharedPoint::Local(point) => point,
        }
    }
}

impl Drop for SharedPoint {
    fn drop(&mut self) {
        if let SharedPoint::Region(region, off) = self {
            // No one sleeps on a point whose owner is dropped: reusable as is.
            let kept = SPARE.with(|spare| {
                let mut spare = spare.borrow_mut();
                (spare.len() < SPARE_POINTS).then(|| spare.push(*off)).is_some()
            });
            if !kept {
                region.free(*off);
            }
        }
    }
}
