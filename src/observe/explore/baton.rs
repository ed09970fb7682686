//! The baton: in a controlled run exactly one task of the whole run (every
//! thread of every process) runs at a time. The table of tasks, the
//! baton, the virtual clock and the record of every choice live in one
//! anonymous shared mapping made before the run's first task, so a forked
//! child sees the same table at the same address.
//!
//! A task holding the baton runs freely until its next scheduling point.
//! There it asks the strategy which task goes next (itself, often), hands
//! the baton over by writing `current` and waking that task's own futex
//! word, and sleeps on its own word until the baton comes back. A task
//! whose operation cannot proceed is marked blocked on a key (the address
//! of the wait point it would sleep on) and becomes runnable again when
//! another task's operation pokes that key. When no task can run, the
//! virtual clock jumps to the earliest deadline; with none, the run is
//! deadlocked, unless a helper thread of the runtime (a pool's feeder,
//! say), which the baton does not hold back, is still busy: then the
//! baton waits for its poke. As the deadlock watch does, it calls the run
//! deadlocked only once the board has stayed the same for [`STILL_FOR`]:
//! a helper just woken still shows as asleep.
//!
//! A parked task looks every [`PATIENCE`] at whether the baton's holder
//! still lives: a process killed while holding it (SIGKILL, a crash) has
//! its tasks struck off, and the baton goes on.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crate::sync::board::{Entry, Op, What};
use crate::sync::futex;
use crate::sync::gate::Gate;
use crate::sync::history;
use crate::sync::mutex::{RawMutex, process_gone};

/// Tasks alive at once in a controlled run (ended tasks' slots are reused).
pub const MAX_TASKS: usize = 1024;
/// Tasks whose names the record keeps (by their number, from 1).
const NAMED: usize = 1 << 16;
const NAME_LEN: usize = 32;
/// The record of choices, in 32-bit words: a choice among n tasks takes n + 2.
const LOG_WORDS: usize = 4 << 20;
/// No task.
pub const NONE: u32 = u32::MAX;
/// How long a parked task sleeps before it checks the baton's holder lives.
const PATIENCE: Duration = Duration::from_millis(100);
/// How long a parked task spins before it sleeps: a hand-off to a task
/// spinning on another core costs no system call.
const SPIN: Duration = Duration::from_micros(5);
/// How long the baton waits for a busy helper's poke before it looks again.
const HELPER_NAP: Duration = Duration::from_millis(2);
/// How long a board with every task waiting must stay the same before a
/// controlled run calls it a deadlock (a helper thread, which the baton
/// does not hold back, may have been woken and not yet have run).
const STILL_FOR: Duration = Duration::from_millis(50);

const FREE: u32 = 0;
const RUNNABLE: u32 = 1;
const BLOCKED: u32 = 2;

/// How a controlled run ended early; 0 while it goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Verdict {
    Running = 0,
    Deadlock = 1,
    Livelock = 2,
    Diverged = 3,
    /// Left to run freely (Ctrl-C): nothing is scheduled any more.
    Released = 4,
}

#[repr(C)]
struct Slot {
    /// The task's futex word, moved when it is given the baton.
    go: AtomicU32,
    /// Set while it sleeps on `go` (a task still spinning needs no wake-up).
    asleep: AtomicU32,
    state: AtomicU32,
    pid: AtomicI32,
    /// The task's number in the run, from 1 (never reused).
    seq: AtomicU32,
    /// The wait point's address it is blocked on.
    key: AtomicU64,
    /// Its virtual deadline in nanoseconds (`u64::MAX`: none).
    deadline: AtomicU64,
    /// Its priority under `pct`.
    priority: AtomicU64,
    /// Set when the deadline, not a poke, made it runnable.
    timed_out: AtomicU32,
    /// The source span it is at (start << 32 | end).
    span: AtomicU64,
}

#[repr(C)]
pub struct Table {
    lock: RawMutex,
    /// The slot holding the baton.
    current: AtomicU32,
    /// A [`Verdict`]; a futex word the run's first process waits on.
    verdict: AtomicU32,
    /// Moved by every poke: the baton waits on it for helpers, and a task
    /// about to block sees whether a helper changed something since it
    /// last tried its operation.
    pokes: AtomicU32,
    next_seq: AtomicU32,
    /// Slots in use are below this.
    used: AtomicU32,
    /// The task that ran before the last choice (for counting preemptions).
    last: AtomicU32,
    pub(super) steps: AtomicU64,
    pub(super) choices: AtomicU64,
    pub(super) preemptions: AtomicU64,
    /// Virtual time, in nanoseconds since the run began.
    vnow: AtomicU64,
    /// The run's random state (choices and the script's `random()`).
    rng: AtomicU64,
    /// The choices at which `pct` lowers the running task's priority.
    change: [AtomicU64; 8],
    log_len: AtomicU64,
    log_full: AtomicU32,
    /// The choice at which a replay diverged.
    pub(super) diverged_at: AtomicU64,
    slots: [Slot; MAX_TASKS],
    names: [[AtomicU8; NAME_LEN]; NAMED],
    log: [AtomicU32; LOG_WORDS],
}

/// Who a choice is made for, and how (see `strategy`).
pub trait Chooser {
    /// The slot to run among `runnable` (slots, in task-number order),
    /// at choice `index`, `me` being the task at the point (if it is
    /// runnable). `Err` is a replay's divergence, described.
    fn choose(&self, table: &Table, me: Option<u32>, runnable: &[u32], index: u64) -> Result<u32, String>;
}

/// How a blocked task came to run again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woke {
    Poked,
    Deadline,
    /// The run is no longer controlled: wait for real.
    Released,
}

/// What a handing-on found when no task could run.
enum Nobody {
    /// No task is left: the run is over.
    Over,
    /// Every task waits on another, and no helper is busy: the board as it was.
    Stuck(Vec<Entry>),
}

/// Why a controlled run must stop.
pub enum Stop {
    /// Every task waits on another: the task board at that moment.
    Deadlock(Vec<Entry>),
    /// The step limit was reached.
    Livelock,
    /// A replay found another set of tasks able to run than its recording.
    Diverged(String),
}

impl Table {
    /// A fresh table in a new shared mapping; `None` if the kernel refused.
    pub fn map() -> Option<&'static Table> {
        let len = NonZeroUsize::new(std::mem::size_of::<Table>())?;
        // SAFETY: a fresh anonymous mapping aliases no Rust object.
        let mapped = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                len,
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_SHARED | nix::sys::mman::MapFlags::MAP_NORESERVE,
            )
        }
        .ok()?;
        // SAFETY: the mapping is zeroed, aligned to a page and as large as
        // a `Table`, whose fields are all atomics (valid when zero); it is
        // never unmapped while the table is in use (see `unmap`).
        let table = unsafe { &*(mapped.as_ptr() as *const Table) };
        table.current.store(NONE, SeqCst);
        table.last.store(NONE, SeqCst);
        Some(table)
    }

    /// Gives the mapping back. The caller (the explorer, between
    /// schedules) makes sure no process of the schedule is left.
    pub fn unmap(&'static self) {
        let ptr = std::ptr::NonNull::from(self).cast::<std::ffi::c_void>();
        // SAFETY: the mapping was made by `map` with this size, and
        // nothing uses it any more.
        let _ = unsafe { nix::sys::mman::munmap(ptr, std::mem::size_of::<Table>()) };
    }

    pub fn seed(&self, seed: u64) {
        self.rng.store(seed, SeqCst);
    }

    /// A random number from the run's state: the same run, the same numbers.
    pub fn random(&self) -> u64 {
        let _ = self.lock.lock();
        let n = self.next_random();
        self.lock.unlock();
        n
    }

    /// The next random number (with the lock held).
    pub(super) fn next_random(&self) -> u64 {
        let mut rng = fastrand::Rng::with_seed(self.rng.load(SeqCst));
        let n = rng.u64(..);
        self.rng.store(rng.get_seed(), SeqCst);
        n
    }

    pub fn verdict(&self) -> Verdict {
        match self.verdict.load(SeqCst) {
            0 => Verdict::Running,
            1 => Verdict::Deadlock,
            2 => Verdict::Livelock,
            3 => Verdict::Diverged,
            _ => Verdict::Released,
        }
    }

    /// Gives the run its verdict, unless it has one: true for the caller
    /// that gave it (see [`Table::release`]).
    pub fn judge(&self, verdict: Verdict) -> bool {
        self.verdict.compare_exchange(0, verdict as u32, SeqCst, SeqCst).is_ok()
    }

    /// Ends the controlled run: every parked task runs freely from now on.
    /// The first verdict stays.
    pub fn release(&self, verdict: Verdict) {
        self.judge(verdict);
        for slot in self.slots() {
            slot.go.fetch_add(1, SeqCst);
            futex::wake(&slot.go, u32::MAX);
        }
        futex::wake(&self.verdict, u32::MAX);
        futex::wake(&self.pokes, u32::MAX);
    }

    /// Wakes whoever waits for a verdict (the run is over).
    pub fn wake_watch(&self) {
        futex::wake(&self.verdict, u32::MAX);
    }

    /// Waits until the run has a verdict, or `patience` has passed.
    pub fn await_verdict(&self, patience: Duration) -> Verdict {
        if self.verdict.load(SeqCst) == 0 {
            futex::wait_for(&self.verdict, 0, Some(patience));
        }
        self.verdict()
    }

    fn slots(&self) -> &[Slot] {
        &self.slots[..(self.used.load(SeqCst) as usize).min(MAX_TASKS)]
    }

    fn slot(&self, i: u32) -> &Slot {
        &self.slots[i as usize % MAX_TASKS]
    }

    /// The virtual time, in nanoseconds.
    pub fn now(&self) -> u64 {
        self.vnow.load(SeqCst)
    }

    /// Moves the virtual clock on by `ns` (a `time()` call: a loop that
    /// waits for the clock to move gets there).
    pub fn tick(&self, ns: u64) {
        self.vnow.fetch_add(ns, SeqCst);
    }

    /// A new runnable task named `name` in process `pid` (0 while not yet
    /// known): its slot, or `None` past [`MAX_TASKS`].
    pub fn register(&self, name: &str, pid: i32, priority: impl FnOnce(&Table) -> u64) -> Option<u32> {
        let _ = self.lock.lock();
        let used = self.used.load(SeqCst) as usize;
        let found =
            (0..used).find(|&i| self.slots[i].state.load(SeqCst) == FREE).or((used < MAX_TASKS).then_some(used));
        let Some(i) = found else {
            self.lock.unlock();
            return None;
        };
        if i == used {
            self.used.store(used as u32 + 1, SeqCst);
        }
        let seq = self.next_seq.fetch_add(1, SeqCst) + 1;
        let slot = &self.slots[i];
        slot.seq.store(seq, SeqCst);
        slot.pid.store(pid, SeqCst);
        slot.key.store(0, SeqCst);
        slot.deadline.store(u64::MAX, SeqCst);
        slot.timed_out.store(0, SeqCst);
        slot.span.store(0, SeqCst);
        slot.priority.store(priority(self), SeqCst);
        if let Some(stored) = self.names.get(seq as usize) {
            for (at, byte) in stored.iter().zip(name.bytes().chain(std::iter::repeat(0))) {
                at.store(byte, SeqCst);
            }
        }
        slot.state.store(RUNNABLE, SeqCst);
        if self.current.load(SeqCst) == NONE {
            // The run's first task holds the baton from its start.
            self.current.store(i as u32, SeqCst);
        }
        self.lock.unlock();
        Some(i as u32)
    }

    pub fn set_pid(&self, slot: u32, pid: i32) {
        self.slot(slot).pid.store(pid, SeqCst);
    }

    /// How many tasks the run has had.
    pub fn tasks(&self) -> u32 {
        self.next_seq.load(SeqCst)
    }

    /// The task number of `slot`.
    pub fn seq(&self, slot: u32) -> u32 {
        self.slot(slot).seq.load(SeqCst)
    }

    /// Whether the task numbered `seq` in `slot` has ended.
    pub fn ended(&self, slot: u32, seq: u32) -> bool {
        let slot = self.slot(slot);
        slot.seq.load(SeqCst) != seq || slot.state.load(SeqCst) == FREE
    }

    /// The name of task number `seq`.
    pub fn name(&self, seq: u32) -> String {
        let Some(stored) = self.names.get(seq as usize) else { return format!("task {seq}") };
        let bytes: Vec<u8> = stored.iter().map(|b| b.load(SeqCst)).take_while(|&b| b != 0).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Where each live task is: (task number, name, span).
    pub fn where_tasks_are(&self) -> Vec<(u32, String, (u32, u32))> {
        let mut tasks: Vec<_> = self
            .slots()
            .iter()
            .filter(|s| s.state.load(SeqCst) != FREE)
            .map(|s| {
                let seq = s.seq.load(SeqCst);
                let span = s.span.load(SeqCst);
                (seq, self.name(seq), ((span >> 32) as u32, span as u32))
            })
            .collect();
        tasks.sort();
        tasks
    }

    pub fn priority(&self, slot: u32) -> u64 {
        self.slot(slot).priority.load(SeqCst)
    }

    pub fn set_priority(&self, slot: u32, priority: u64) {
        self.slot(slot).priority.store(priority, SeqCst);
    }

    pub fn change_points(&self) -> &[AtomicU64; 8] {
        &self.change
    }

    /// Runnable slots, in task-number order.
    fn runnable(&self) -> Vec<u32> {
        let mut runnable: Vec<(u32, u32)> = (0..self.slots().len() as u32)
            .filter(|&i| self.slot(i).state.load(SeqCst) == RUNNABLE)
            .map(|i| (self.seq(i), i))
            .collect();
        runnable.sort_unstable();
        runnable.into_iter().map(|(_, i)| i).collect()
    }

    /// A scheduling point of `me`, at `span`: the strategy picks who runs
    /// next; if another, the baton goes to it and `me` waits its turn.
    /// `Err` when the step limit was reached or a replay diverged: the
    /// run is released, and the message says why.
    pub fn point(
        &self,
        me: u32,
        span: (u32, u32),
        chooser: &dyn Chooser,
        limit: u64,
        gate: Option<&Gate>,
    ) -> Result<(), Stop> {
        let _ = self.lock.lock();
        self.slot(me).span.store(u64::from(span.0) << 32 | u64::from(span.1), SeqCst);
        if self.verdict.load(SeqCst) != 0 {
            self.lock.unlock();
            return Ok(());
        }
        if self.steps.fetch_add(1, SeqCst) >= limit {
            self.lock.unlock();
            return Err(Stop::Livelock);
        }
        let runnable = self.runnable();
        if runnable.len() <= 1 {
            self.lock.unlock();
            return Ok(());
        }
        let next = match self.decide(Some(me), &runnable, chooser) {
            Ok(next) => next,
            Err(stop) => {
                self.lock.unlock();
                return Err(stop);
            }
        };
        if next != me {
            self.hand_to(next);
        }
        self.lock.unlock();
        self.park(me, chooser, gate)
    }

    /// One choice among `runnable`, counted and recorded.
    fn decide(&self, me: Option<u32>, runnable: &[u32], chooser: &dyn Chooser) -> Result<u32, Stop> {
        let index = self.choices.fetch_add(1, SeqCst);
        let next = chooser.choose(self, me, runnable, index).map_err(Stop::Diverged)?;
        let last = self.last.load(SeqCst);
        if last != NONE && last != next && runnable.contains(&last) {
            self.preemptions.fetch_add(1, SeqCst);
        }
        self.last.store(next, SeqCst);
        self.record(next, runnable);
        Ok(next)
    }

    /// Appends a choice to the record: [n, chosen, runnable...] by task number.
    fn record(&self, next: u32, runnable: &[u32]) {
        let at = self.log_len.load(SeqCst) as usize;
        let words = runnable.len() + 2;
        if at + words > LOG_WORDS {
            self.log_full.store(1, SeqCst);
            return;
        }
        self.log[at].store(runnable.len() as u32, SeqCst);
        self.log[at + 1].store(self.seq(next), SeqCst);
        for (k, &slot) in runnable.iter().enumerate() {
            self.log[at + 2 + k].store(self.seq(slot), SeqCst);
        }
        self.log_len.store((at + words) as u64, SeqCst);
    }

    /// The record: every choice as (chosen, runnable), by task number;
    /// `None` if it outgrew its room.
    pub fn choices_made(&self) -> Option<Vec<(u32, Vec<u32>)>> {
        if self.log_full.load(SeqCst) != 0 {
            return None;
        }
        let len = self.log_len.load(SeqCst) as usize;
        let mut out = Vec::new();
        let mut at = 0;
        while at + 2 <= len {
            let n = self.log[at].load(SeqCst) as usize;
            let chosen = self.log[at + 1].load(SeqCst);
            let runnable = (0..n).map(|k| self.log[at + 2 + k].load(SeqCst)).collect();
            out.push((chosen, runnable));
            at += n + 2;
        }
        Some(out)
    }

    /// Gives the baton to `next` (with the lock held).
    fn hand_to(&self, next: u32) {
        self.current.store(next, SeqCst);
        let slot = self.slot(next);
        slot.go.fetch_add(1, SeqCst);
        if slot.asleep.load(SeqCst) != 0 {
            futex::wake(&slot.go, 1);
        }
    }

    /// Waits until `me` holds the baton (or the run is released), outside
    /// the fork gate meanwhile.
    pub fn park(&self, me: u32, chooser: &dyn Chooser, gate: Option<&Gate>) -> Result<(), Stop> {
        if self.current.load(SeqCst) == me {
            return Ok(());
        }
        if let Some(gate) = gate {
            gate.leave();
        }
        let slot = self.slot(me);
        // A trace shows the time a task waits for the baton.
        let traced = history::on();
        if traced {
            let span = slot.span.load(SeqCst);
            let what = What { op: Op::Turn, target: 0, span: ((span >> 32) as u32, span as u32) };
            history::record(history::Event::WaitBegins(what));
        }
        let mut rescued = Ok(());
        let spin_until = std::time::Instant::now() + SPIN;
        let mut spins = 0u32;
        while self.current.load(SeqCst) != me && self.verdict.load(SeqCst) == 0 {
            std::hint::spin_loop();
            spins += 1;
            if spins.is_multiple_of(64) && std::time::Instant::now() >= spin_until {
                break;
            }
        }
        loop {
            let go = slot.go.load(SeqCst);
            if self.current.load(SeqCst) == me || self.verdict.load(SeqCst) != 0 {
                break;
            }
            slot.asleep.store(1, SeqCst);
            // Seen after `asleep` is up: a hand-off now moved `go` already.
            let slept = self.current.load(SeqCst) == me || futex::wait_for(&slot.go, go, Some(PATIENCE));
            slot.asleep.store(0, SeqCst);
            if !slept {
                rescued = self.rescue_baton(chooser);
                if rescued.is_err() {
                    break;
                }
            }
        }
        if traced {
            history::record(history::Event::WaitEnds);
        }
        if let Some(gate) = gate {
            gate.enter();
        }
        rescued
    }

    /// The poke count, read before an operation is tried (see [`Table::block`]).
    pub fn pokes(&self) -> u32 {
        self.pokes.load(SeqCst)
    }

    /// `me` blocks on `key` until poked or, with a virtual `deadline`,
    /// until the clock reaches it. It does not block if anything was
    /// poked since `pokes` was read (a helper thread, which the baton does
    /// not hold back, may have changed what `me` tried), nor if
    /// `still_blocked`, asked with the table locked, says no.
    #[allow(clippy::too_many_arguments)]
    pub fn block(
        &self,
        me: u32,
        key: u64,
        deadline: Option<u64>,
        pokes: u32,
        still_blocked: impl FnOnce() -> bool,
        chooser: &dyn Chooser,
        gate: Option<&Gate>,
    ) -> Result<Woke, Stop> {
        let _ = self.lock.lock();
        if self.verdict.load(SeqCst) != 0 {
            self.lock.unlock();
            return Ok(Woke::Released);
        }
        if self.pokes.load(SeqCst) != pokes || !still_blocked() {
            self.lock.unlock();
            return Ok(Woke::Poked);
        }
        let slot = self.slot(me);
        slot.key.store(key, SeqCst);
        slot.deadline.store(deadline.unwrap_or(u64::MAX), SeqCst);
        slot.timed_out.store(0, SeqCst);
        slot.state.store(BLOCKED, SeqCst);
        let handed = self.hand_on(Some(me), chooser);
        self.lock.unlock();
        handed?;
        self.park(me, chooser, gate)?;
        if self.verdict.load(SeqCst) != 0 && self.current.load(SeqCst) != me {
            return Ok(Woke::Released);
        }
        Ok(if slot.timed_out.swap(0, SeqCst) != 0 { Woke::Deadline } else { Woke::Poked })
    }

    /// Makes every task blocked on `key` runnable.
    pub fn poke(&self, key: u64) {
        let _ = self.lock.lock();
        self.pokes.fetch_add(1, SeqCst);
        let mut woke = false;
        for slot in self.slots() {
            if slot.state.load(SeqCst) == BLOCKED && slot.key.load(SeqCst) == key {
                slot.state.store(RUNNABLE, SeqCst);
                woke = true;
            }
        }
        self.lock.unlock();
        if woke {
            futex::wake(&self.pokes, u32::MAX);
        }
    }

    /// The task in `me` has ended: whoever waits for its end may go on,
    /// and the baton goes on.
    pub fn end(&self, me: u32, chooser: &dyn Chooser) -> Result<(), Stop> {
        let _ = self.lock.lock();
        let seq = self.seq(me);
        self.slot(me).state.store(FREE, SeqCst);
        let released = self.verdict.load(SeqCst) != 0;
        self.lock.unlock();
        self.poke(end_key(seq));
        if released {
            return Ok(());
        }
        let _ = self.lock.lock();
        let handed = self.hand_on(None, chooser);
        self.lock.unlock();
        handed
    }

    /// Gives the baton to a runnable task, with the lock held (`me`, the
    /// task giving it, is blocked or gone). With none runnable the clock
    /// jumps to the earliest deadline; with no deadline either, the baton
    /// waits while a helper is busy, and the run is deadlocked when none is.
    fn hand_on(&self, me: Option<u32>, chooser: &dyn Chooser) -> Result<(), Stop> {
        // A stuck board, and since when it has looked so.
        let mut stuck_since: Option<(Vec<Entry>, Instant)> = None;
        loop {
            let runnable = self.runnable();
            if let Some(&only) = runnable.first() {
                let next = if runnable.len() == 1 { only } else { self.decide(me, &runnable, chooser)? };
                self.hand_to(next);
                return Ok(());
            }
            if self.advance_clock() {
                continue;
            }
            let pokes = self.pokes.load(SeqCst);
            match self.nobody() {
                Some(Nobody::Over) => {
                    self.current.store(NONE, SeqCst);
                    return Ok(());
                }
                // A helper woken but not yet running still shows as
                // asleep: as the deadlock watch does, the run is stuck
                // only once the board has stayed the same a while.
                Some(Nobody::Stuck(entries)) => match &stuck_since {
                    Some((seen, since)) if *seen == entries && since.elapsed() >= STILL_FOR => {
                        self.current.store(NONE, SeqCst);
                        return Err(Stop::Deadlock(entries));
                    }
                    Some((seen, _)) if *seen == entries => {}
                    _ => stuck_since = Some((entries, Instant::now())),
                },
                None => stuck_since = None,
            }
            // A helper (or a task the board sees running) may still poke,
            // or the board still change: wait with the lock given up.
            self.lock.unlock();
            futex::wait_for(&self.pokes, pokes, Some(HELPER_NAP));
            let _ = self.lock.lock();
            if self.verdict.load(SeqCst) != 0 {
                return Ok(());
            }
        }
    }

    /// Moves the clock to the earliest deadline and wakes the tasks it
    /// reaches; false when no task has a deadline.
    fn advance_clock(&self) -> bool {
        let earliest = self
            .slots()
            .iter()
            .filter(|s| s.state.load(SeqCst) == BLOCKED)
            .map(|s| s.deadline.load(SeqCst))
            .min()
            .filter(|&d| d != u64::MAX);
        let Some(earliest) = earliest else { return false };
        self.vnow.fetch_max(earliest, SeqCst);
        for slot in self.slots() {
            if slot.state.load(SeqCst) == BLOCKED && slot.deadline.load(SeqCst) <= earliest {
                slot.timed_out.store(1, SeqCst);
                slot.state.store(RUNNABLE, SeqCst);
            }
        }
        true
    }

    /// Why no task can run: the run is over, or stuck; `None` while the
    /// task board shows something able to go on (a helper at work).
    fn nobody(&self) -> Option<Nobody> {
        self.strike_off_dead();
        if self.slots().iter().all(|s| s.state.load(SeqCst) == FREE) {
            return Some(Nobody::Over);
        }
        match crate::sync::board::scan() {
            Some(entries) if crate::observe::deadlock::stuck(&entries) => Some(Nobody::Stuck(entries)),
            _ => None,
        }
    }

    /// Tasks of processes that died are ended; their joiners may go on.
    fn strike_off_dead(&self) {
        for slot in self.slots() {
            let pid = slot.pid.load(SeqCst);
            if slot.state.load(SeqCst) != FREE && pid > 0 && process_gone(pid) {
                slot.state.store(FREE, SeqCst);
                let key = end_key(slot.seq.load(SeqCst));
                for other in self.slots() {
                    if other.state.load(SeqCst) == BLOCKED && other.key.load(SeqCst) == key {
                        other.state.store(RUNNABLE, SeqCst);
                    }
                }
            }
        }
    }

    /// A parked task found the baton's holder silent: if its process died,
    /// its tasks are struck off and the baton goes on.
    fn rescue_baton(&self, chooser: &dyn Chooser) -> Result<(), Stop> {
        let holder = self.current.load(SeqCst);
        if holder == NONE {
            return Ok(());
        }
        let pid = self.slot(holder).pid.load(SeqCst);
        if pid <= 0 || !process_gone(pid) {
            return Ok(());
        }
        let _ = self.lock.lock();
        let mut handed = Ok(());
        if self.current.load(SeqCst) == holder && self.verdict.load(SeqCst) == 0 {
            self.strike_off_dead();
            handed = self.hand_on(None, chooser);
        }
        self.lock.unlock();
        handed
    }
}

/// The key a task's end pokes: its number, in a range no address takes.
pub fn end_key(seq: u32) -> u64 {
    1 << 63 | u64::from(seq)
}
