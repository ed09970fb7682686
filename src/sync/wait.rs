//! How every primitive blocks: a [`WaitPoint`] (a futex sequence word and
//! a count of sleepers) beside the state it guards.
//!
//! A waiter first tries its operation; then spins for a few microseconds,
//! retrying whenever the sequence moves; then counts itself a sleeper,
//! publishes the word in its cancel token and sleeps on the futex until the
//! sequence moves, its deadline passes, or it is cancelled. A waker changes
//! the state, bumps the sequence and makes a `futex_wake` system call only
//! when a sleeper has no wake-up on its way yet. All of these steps are
//! `SeqCst`, so either the waker sees the sleeper or the sleeper sees the
//! new sequence: no wake-up is lost. A cancel bumps the word the task
//! published and wakes it.
//!
//! # Wake tokens
//!
//! Sleepers and wake-ups on their way are counted in the same 64-bit word
//! as the sequence (the futex is its low half), so a change and the token
//! it issues are one step: a sleeper that counted itself in before it has
//! a sequence to sleep on that the change moved, and cannot sleep through
//! it. A waker issues a wake-up (a token) only while there are fewer
//! tokens than sleepers; a sleeper that returns from the futex takes one
//! back.
//! On a busy machine a woken sleeper may wait a while for a core: puts
//! made meanwhile see its token and make no system call, where they would
//! each have made one for nobody (a storm of useless `futex_wake`s).
//! Every sleeper takes a token back as it leaves, woken or not (its
//! operation succeeded first, a timeout, a cancel): a token whose
//! `futex_wake` found no one asleep belongs to a sleeper that will leave
//! without sleeping, and must go with it. A sleeper killed asleep keeps
//! its count and, at most, one token: the two cancel out, and the others
//! are woken as before. A sleeper also looks again every [`BACKSTOP`]
//! seconds, however it was (not) woken.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::board::{self, What};
use super::cancel::CancelToken;
use super::futex;
use super::gate::Gate;
use super::shm::{Off, Region, Shared, region};

#[repr(C)]
#[derive(Default)]
pub struct WaitPoint {
    /// The sequence (bits 0-31, the futex word), the sleepers (32-47) and
    /// the tokens: wake-ups on their way (48-63).
    word: AtomicU64,
}

// The futex word is the low half of `word`: its first four bytes.
#[cfg(not(target_endian = "little"))]
compile_error!("the wait word's layout assumes a little-endian machine");

const ONE_SLEEPER: u64 = 1 << 32;
const MOST_SLEEPERS: u64 = 0xffff;

/// (sequence, sleepers, tokens).
fn split(word: u64) -> (u32, u64, u64) {
    (word as u32, (word >> 32) & MOST_SLEEPERS, word >> 48)
}

fn join(seq: u32, sleepers: u64, tokens: u64) -> u64 {
    u64::from(seq) | sleepers << 32 | tokens << 48
}

// SAFETY: one atomic.
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

/// The most pauses between two looks while spinning; the gap doubles
/// from one up to this. A spinner that looks at once after every change
/// takes a contended lock on every release, and the lock's line then
/// moves between the cores on every pass (two threads incrementing one
/// counter ran four times slower than one); looking more and more
/// rarely lets the releaser go on for a while, and costs a hand-off at
/// most this many pauses.
const MAX_PAUSE: u32 = 64;

/// How long a sleeper past the count's limit (65,535 on one wait point)
/// sleeps before it looks again, since no token can be issued for it.
const UNCOUNTED_NAP: Duration = Duration::from_millis(1);

/// The longest a counted sleeper sleeps before it looks again: a backstop,
/// so that a wake-up lost however it was (a token left standing that no
/// sleeper will take back) costs a few seconds, never a hang. Its return
/// takes a token back, which mends the count.
const BACKSTOP: Duration = Duration::from_secs(5);

/// A blocking call's limits: its deadline and its task's cancel token,
/// and the fork gate its task leaves while it sleeps.
#[derive(Clone, Copy)]
pub struct Wait<'a> {
    pub deadline: Option<Instant>,
    /// The timeout the deadline was made from (a controlled run keeps
    /// its own, virtual, clock).
    pub timeout: Option<Duration>,
    pub cancel: &'a CancelToken,
    pub gate: Option<&'a Gate>,
    /// What the wait is for, told to the task board while asleep.
    pub what: What,
}

impl<'a> Wait<'a> {
    pub fn new(cancel: &'a CancelToken, timeout: Option<Duration>) -> Wait<'a> {
        // A child about to block first starts its signal listener.
        crate::signals::listen_now();
        let deadline = timeout.map(|t| Instant::now().checked_add(t).unwrap_or_else(far_future));
        Wait { deadline, timeout, cancel, gate: None, what: What::default() }
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
        if self.issue(all) {
            board::woken();
            futex::wake(self.seq(), if all { u32::MAX } else { 1 });
        }
        crate::observe::explore::poke(self.seq());
    }

    /// Moves the sequence, and in the same step gives a token to one more
    /// sleeper (every sleeper for `all`) if one has none on its way: true
    /// when the caller must then wake the futex.
    fn issue(&self, all: bool) -> bool {
        let mut issued = false;
        let _ = self.word.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |word| {
            let (seq, sleepers, tokens) = split(word);
            issued = tokens < sleepers;
            let tokens = match (issued, all) {
                (false, _) => tokens,
                (true, true) => sleepers,
                (true, false) => tokens + 1,
            };
            Some(join(seq.wrapping_add(1), sleepers, tokens))
        });
        issued
    }

    /// Counts a sleeper in, with the sequence as it was then, in one step:
    /// the sequence to sleep on, and whether it was counted (past the
    /// count's limit it is not).
    fn count_in(&self) -> (u32, bool) {
        match self.word.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |word| {
            (split(word).1 < MOST_SLEEPERS).then_some(word + ONE_SLEEPER)
        }) {
            Ok(word) => (word as u32, true),
            Err(word) => (word as u32, false),
        }
    }

    /// The sequence: the futex word, the low half of `word`.
    fn seq(&self) -> &AtomicU32 {
        // SAFETY: the low four bytes of an aligned u64 on a little-endian
        // machine (checked above) are an aligned u32; the kernel's futex
        // and the cancel token's bump use it as one, and every other
        // access goes through `word`.
        unsafe { &*(self.word.as_ptr() as *const AtomicU32) }
    }

    /// Counts a sleeper out, and takes a token back, however it leaves.
    ///
    /// A sleeper that leaves without the futex waking it (its operation
    /// succeeded first, a timeout, a cancel) may have been the one a token
    /// was issued for, while the `futex_wake` that came with it found no
    /// one asleep. Keeping that token would leave as many tokens as
    /// sleepers with a later sleeper really asleep: every later notify
    /// would then believe a wake-up was on its way and send none. Taking
    /// one back too many only costs a later notify one system call.
    fn count_out(&self) {
        let _ = self.word.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |word| {
            let (seq, sleepers, tokens) = split(word);
            let sleepers = sleepers.saturating_sub(1);
            Some(join(seq, sleepers, tokens.saturating_sub(1).min(sleepers)))
        });
    }

    /// The futex word, for cancel tokens.
    pub fn word(&self) -> &AtomicU32 {
        self.seq()
    }

    /// Blocks until `attempt` gives a result, the deadline passes, or the
    /// task is cancelled. `attempt` runs first, then after every change of
    /// the sequence. After each wake-up the waiter spins again before it
    /// sleeps again: while it spins it counts as no sleeper, so wakers make
    /// no system call (a woken waiter that lost the race to a running
    /// thread would otherwise cost one on every later notify).
    pub fn block_on<T>(&self, wait: Wait<'_>, mut attempt: impl FnMut() -> Option<T>) -> Result<T, Interrupted> {
        // A controlled run (`--explore`) blocks in its scheduler instead.
        if crate::observe::explore::on()
            && let Some(result) = crate::observe::explore::block_on(self.seq(), &wait, &mut attempt)
        {
            return result;
        }
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

    /// Spins for up to [`SPIN_FOR`], retrying whenever the sequence moved,
    /// looking at it after gaps that double up to [`MAX_PAUSE`] pauses.
    fn spin<T>(&self, attempt: &mut impl FnMut() -> Option<T>) -> Option<T> {
        let mut seen = self.seq().load(Ordering::SeqCst);
        let spin_until = Instant::now() + SPIN_FOR;
        let mut spins = 0u32;
        let mut pause = 1u32;
        loop {
            for _ in 0..pause {
                std::hint::spin_loop();
            }
            pause = (pause * 2).min(MAX_PAUSE);
            let now = self.seq().load(Ordering::SeqCst);
            if now != seen {
                seen = now;
                if let Some(done) = attempt() {
                    return Some(done);
                }
            }
            spins += 1;
            if (pause == MAX_PAUSE || spins.is_multiple_of(64)) && Instant::now() >= spin_until {
                return None;
            }
        }
    }

    /// One sleep on the futex, between counting in and out as a sleeper.
    fn sleep_once<T>(&self, wait: Wait<'_>, attempt: &mut impl FnMut() -> Option<T>) -> Slept<T> {
        // Past the count's limit a sleeper is not counted and naps instead.
        let (seen, counted) = self.count_in();
        wait.cancel.publish(Some(self.seq()));
        board::asleep(self.seq(), seen, wait.deadline.is_some(), wait.what);
        let nap = Some(Instant::now() + if counted { BACKSTOP } else { UNCOUNTED_NAP });
        let until = match (wait.deadline, nap) {
            (Some(deadline), Some(nap)) => Some(deadline.min(nap)),
            (deadline, nap) => deadline.or(nap),
        };
        let outcome = if let Some(done) = attempt() {
            Slept::Done(done)
        } else if wait.cancel.is_cancelled() {
            Slept::Interrupted(Interrupted::Cancelled)
        } else if futex::wait(self.seq(), seen, until) || wait.deadline.is_none_or(|d| Instant::now() < d) {
            Slept::Woken
        } else {
            Slept::Interrupted(Interrupted::Timeout)
        };
        board::awake();
        wait.cancel.publish(None);
        if counted {
            self.count_out();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(point: &WaitPoint) -> (u64, u64) {
        let (_, sleepers, tokens) = split(point.word.load(Ordering::SeqCst));
        (sleepers, tokens)
    }

    /// Puts made while a woken sleeper waits for a core issue no more
    /// wake-ups: one is on its way.
    #[test]
    fn one_token_per_sleeper() {
        let point = WaitPoint::default();
        point.count_in();
        for _ in 0..1000 {
            point.notify(false);
        }
        assert_eq!(counts(&point), (1, 1));
        point.count_in();
        point.notify(false);
        assert_eq!(counts(&point), (2, 2), "a second sleeper gets its own");
        point.count_out();
        point.count_out();
        assert_eq!(counts(&point), (0, 0));
    }

    /// A token and the change it is for are one step: a sleeper counted in
    /// before the token always has a sequence the change moved, so its
    /// futex cannot sleep through it (when they were two steps, a waker
    /// descheduled between them could issue a token for a change the
    /// sleeper had already seen, and later changes then woke no one).
    #[test]
    fn a_token_comes_with_a_move_of_the_sequence() {
        let point = WaitPoint::default();
        let (seen, _) = point.count_in();
        point.notify(false);
        assert_eq!(counts(&point), (1, 1));
        assert_ne!(point.seq().load(Ordering::SeqCst), seen, "the sleeper's futex would not sleep");
    }

    /// A sleeper whose operation succeeded before the futex woke it leaves
    /// no token behind for the next sleeper to miss its wake-up by.
    #[test]
    fn a_sleeper_that_was_not_woken_leaves_no_token() {
        let point = WaitPoint::default();
        point.count_in();
        point.notify(false);
        point.count_out();
        assert_eq!(counts(&point), (0, 0));
        point.count_in();
        point.notify(false);
        assert_eq!(counts(&point), (1, 1), "the next sleeper is woken");
    }

    /// The lost wake-up once seen in the stress tests: X counts in; a
    /// change issues X a token, but its `futex_wake` finds no one asleep;
    /// Y counts in and sleeps; X's operation succeeds and X leaves. When X
    /// left its token behind, tokens equalled sleepers with Y asleep, and
    /// no later change woke Y.
    #[test]
    fn a_sleeper_that_leaves_unwoken_takes_its_token_with_it() {
        let point = WaitPoint::default();
        point.count_in(); // X
        point.notify(false);
        point.count_in(); // Y, asleep on the new sequence
        point.count_out(); // X, whose operation succeeded
        assert_eq!(counts(&point), (1, 0), "no wake-up is on its way to Y");
        point.notify(false);
        assert_eq!(counts(&point), (1, 1), "the next change wakes Y");
    }

    /// A sleeper killed asleep keeps its count and a token; the others are
    /// still woken, each with a token of its own.
    #[test]
    fn a_dead_sleeper_does_not_stop_the_others_being_woken() {
        let point = WaitPoint::default();
        point.count_in(); // dies asleep
        point.notify(false);
        point.count_in();
        point.notify(false);
        assert_eq!(counts(&point), (2, 2));
        point.count_out();
        point.count_in();
        point.notify(false);
        assert_eq!(counts(&point), (2, 2));
        point.notify(true);
        assert_eq!(counts(&point), (2, 2));
    }

    /// Every interleaving of three consumers and three producers of one
    /// item each, run on the protocol's own steps (the futex is modelled:
    /// who sleeps on it, which wake-ups are on their way): none ends with
    /// a consumer asleep and an item waiting. The version that let a
    /// sleeper leaving unwoken keep its token fails here.
    #[test]
    fn no_interleaving_loses_a_wake_up() {
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        enum Consumer {
            Try,
            CountIn,
            TryCounted(u32),
            Sleep(u32),
            Asleep,
            Up,
            Done,
        }
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        enum Producer {
            Put,
            Notify,
            Wake,
            Done,
        }
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        struct State {
            word: u64,
            items: u32,
            consumers: [Consumer; 3],
            producers: [Producer; 3],
        }
        // One step of the protocol on the state's word: the new word, and
        // what the step said.
        fn step<T>(word: u64, act: impl FnOnce(&WaitPoint) -> T) -> (u64, T) {
            let point = WaitPoint { word: AtomicU64::new(word) };
            let said = act(&point);
            (point.word.load(Ordering::SeqCst), said)
        }
        let start = State { word: 0, items: 0, consumers: [Consumer::Try; 3], producers: [Producer::Put; 3] };
        let mut seen = std::collections::HashSet::from([start]);
        let mut todo = vec![start];
        while let Some(state) = todo.pop() {
            let mut next = Vec::new();
            for (i, consumer) in state.consumers.iter().enumerate() {
                let mut s = state;
                s.consumers[i] = match *consumer {
                    Consumer::Try if s.items > 0 => {
                        s.items -= 1;
                        Consumer::Done
                    }
                    Consumer::Try => Consumer::CountIn,
                    Consumer::CountIn => {
                        let (word, (sequence, _)) = step(s.word, WaitPoint::count_in);
                        s.word = word;
                        Consumer::TryCounted(sequence)
                    }
                    Consumer::TryCounted(_) if s.items > 0 => {
                        s.items -= 1;
                        s.word = step(s.word, WaitPoint::count_out).0;
                        Consumer::Done
                    }
                    Consumer::TryCounted(sequence) => Consumer::Sleep(sequence),
                    // The futex sleeps only while the word is as seen.
                    Consumer::Sleep(sequence) if split(s.word).0 != sequence => Consumer::Up,
                    Consumer::Sleep(_) => Consumer::Asleep,
                    Consumer::Up => {
                        s.word = step(s.word, WaitPoint::count_out).0;
                        Consumer::Try
                    }
                    Consumer::Asleep | Consumer::Done => continue,
                };
                next.push(s);
            }
            for (i, producer) in state.producers.iter().enumerate() {
                let mut s = state;
                match *producer {
                    Producer::Put => {
                        s.items += 1;
                        s.producers[i] = Producer::Notify;
                    }
                    Producer::Notify => {
                        let (word, issued) = step(s.word, |p| p.issue(false));
                        s.word = word;
                        s.producers[i] = if issued { Producer::Wake } else { Producer::Done };
                    }
                    Producer::Wake => {
                        // `futex_wake(1)` wakes any one sleeper, or none.
                        s.producers[i] = Producer::Done;
                        let asleep: Vec<usize> = (0..3).filter(|&c| state.consumers[c] == Consumer::Asleep).collect();
                        for c in asleep {
                            let mut woken = s;
                            woken.consumers[c] = Consumer::Up;
                            next.push(woken);
                        }
                        if state.consumers.contains(&Consumer::Asleep) {
                            continue;
                        }
                    }
                    Producer::Done => continue,
                }
                next.push(s);
            }
            if next.is_empty() {
                assert!(
                    state.consumers.iter().all(|c| *c == Consumer::Done),
                    "a consumer sleeps with {} item(s) waiting",
                    state.items
                );
            }
            for s in next {
                if seen.insert(s) {
                    todo.push(s);
                }
            }
        }
        assert!(seen.len() > 10_000, "only {} states", seen.len());
    }
}
