//! Schedule exploration (`--explore`, `--seed`, `--replay`): a controlled
//! run in which exactly one task of the whole run runs at a time, chosen
//! by a seeded strategy at every scheduling point, so that any
//! interleaving can be tried on purpose and replayed exactly.
//!
//! The scheduling points are the places the race detector watches (every
//! access to a global, a captured variable, a list item or length, a map
//! key, a shared value), every operation on a primitive (each blocking
//! one through [`block_on`]), thread start, spawn, join, `print`, `sleep`
//! and the start and end of each pool item. A task that touches nothing
//! shared runs on without switching. Blocking is modelled: a task that
//! cannot go on waits in the [`baton`] table, not on its futex, and time
//! is virtual (`sleep(10)` takes no real time). `random()` draws from the
//! schedule's seed. Pools' feeder and collector threads are helpers the
//! baton does not hold back: the baton waits for them when only they can
//! move the run on, so a pool's results may arrive in another order from
//! run to run.
//!
//! [`runner`] runs many schedules (`--explore`), each in a forked process
//! of its own, and writes a failing one to a file ([`record`]).

pub mod baton;
pub mod record;
pub mod runner;
pub mod strategy;

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use baton::{NONE, Stop, Table, Verdict, Woke, end_key};
use strategy::Plan;

use crate::report::{Report, Source};
use crate::runtime::output;
use crate::sync::board;
use crate::sync::gate::Gate;
use crate::sync::wait::{Interrupted, Wait};
use crate::syntax::Span;

/// The default most scheduling points of one run.
pub const STEP_LIMIT: u64 = 1_000_000;

/// One controlled run, set up before its first task and inherited by
/// every process it forks.
struct Run {
    table: &'static Table,
    plan: Plan,
    limit: u64,
    source: Source,
}

static ON: AtomicBool = AtomicBool::new(false);
static RUN: OnceLock<Run> = OnceLock::new();

thread_local! {
    /// The slot of the task this thread runs (`NONE` for helpers).
    static ME: Cell<u32> = const { Cell::new(NONE) };
}

/// Whether this run is controlled.
#[inline(always)]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Makes this process's run a controlled one, on `table` (mapped before
/// the first task), following `plan`, for at most `limit` points.
pub fn install(table: &'static Table, plan: Plan, limit: u64, source: Source) -> bool {
    plan.strategy.prepare(table);
    let installed = RUN.set(Run { table, plan, limit, source }).is_ok();
    ON.store(installed, Ordering::SeqCst);
    installed
}

fn run() -> Option<&'static Run> {
    if on() { RUN.get() } else { None }
}

/// The run's table, when it is controlled.
pub fn table() -> Option<&'static Table> {
    run().map(|run| run.table)
}

fn me() -> Option<u32> {
    ME.try_with(Cell::get).ok().filter(|&slot| slot != NONE)
}

/// A task the baton schedules: its slot and its number (packed for a
/// `Task` to keep).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    slot: u32,
    seq: u32,
}

impl Ticket {
    pub fn to_bits(self) -> u64 {
        u64::from(self.slot) << 32 | u64::from(self.seq)
    }

    pub fn from_bits(bits: u64) -> Option<Ticket> {
        (bits != 0).then_some(Ticket { slot: (bits >> 32) as u32, seq: bits as u32 })
    }
}

/// A new task, able to run from now on (it waits for its turn in
/// [`begin`]): its ticket, `None` in a run that is not controlled, `Err`
/// when the table is full.
pub fn register(name: &str, pid: i32) -> Result<Option<Ticket>, String> {
    let Some(run) = run() else { return Ok(None) };
    match run.table.register(name, pid, |table| run.plan.strategy.initial_priority(table)) {
        Some(slot) => Ok(Some(Ticket { slot, seq: run.table.seq(slot) })),
        None => Err(format!("a controlled run holds at most {} tasks at once", baton::MAX_TASKS)),
    }
}

/// The forked process of `ticket` is `pid` (a death is noticed by pid).
pub fn set_pid(ticket: Option<Ticket>, pid: i32) {
    if let (Some(run), Some(ticket)) = (run(), ticket) {
        run.table.set_pid(ticket.slot, pid);
    }
}

/// This thread runs the task of `ticket`: it waits for its first turn.
pub fn begin(ticket: Option<Ticket>, gate: Option<&Gate>) {
    let (Some(run), Some(ticket)) = (run(), ticket) else { return };
    let _ = ME.try_with(|me| me.set(ticket.slot));
    if let Err(stop) = run.table.park(ticket.slot, &run.plan, gate) {
        halt(stop);
    }
}

/// The running task has ended: the baton goes on.
pub fn end() {
    let Some(run) = run() else { return };
    let Some(me) = me() else { return };
    let _ = ME.try_with(|slot| slot.set(NONE));
    if let Err(stop) = run.table.end(me, &run.plan) {
        halt(stop);
    }
}

/// A registered task that never started (its thread or fork failed).
pub fn abandon(ticket: Option<Ticket>) {
    if let (Some(run), Some(ticket)) = (run(), ticket) {
        let _ = run.table.end(ticket.slot, &run.plan);
    }
}

/// A scheduling point of the running task at `span`.
#[inline]
pub fn point(span: Span, gate: Option<&Gate>) {
    if on() {
        point_slow(span, gate);
    }
}

#[cold]
fn point_slow(span: Span, gate: Option<&Gate>) {
    let (Some(run), Some(me)) = (run(), me()) else { return };
    if let Err(stop) = run.table.point(me, (span.start, span.end), &run.plan, run.limit, gate) {
        halt(stop);
    }
}

/// A blocking operation in a controlled run: a scheduling point, then
/// `attempt` until it succeeds, the task blocked in the table between
/// tries. `None` when the run is not (or no longer) controlled: the
/// caller waits for real.
pub fn block_on<T>(
    word: &AtomicU32,
    wait: &Wait<'_>,
    attempt: &mut impl FnMut() -> Option<T>,
) -> Option<Result<T, Interrupted>> {
    block_on_key(word as *const AtomicU32 as u64, word, wait, attempt)
}

/// [`block_on`], blocked on `key` in the table (`word` is what the task
/// board is told).
fn block_on_key<T>(
    key: u64,
    word: &AtomicU32,
    wait: &Wait<'_>,
    attempt: &mut impl FnMut() -> Option<T>,
) -> Option<Result<T, Interrupted>> {
    let (run, me) = (run()?, me()?);
    if run.table.verdict() != Verdict::Running {
        return None;
    }
    if let Err(stop) = run.table.point(me, wait.what.span, &run.plan, run.limit, wait.gate) {
        halt(stop);
        return None;
    }
    let deadline = wait.timeout.map(|t| run.table.now().saturating_add(t.as_nanos().min(u64::MAX as u128) as u64));
    loop {
        let pokes = run.table.pokes();
        if let Some(done) = attempt() {
            return Some(Ok(done));
        }
        if wait.cancel.is_cancelled() {
            return Some(Err(Interrupted::Cancelled));
        }
        if deadline.is_some_and(|d| d <= run.table.now()) {
            return Some(Err(Interrupted::Timeout));
        }
        board::asleep(word, word.load(Ordering::SeqCst), deadline.is_some(), wait.what);
        wait.cancel.publish(Some(word));
        let woke = run.table.block(me, key, deadline, pokes, || !wait.cancel.is_cancelled(), &run.plan, wait.gate);
        wait.cancel.publish(None);
        board::awake();
        match woke {
            Ok(Woke::Poked) => {}
            Ok(Woke::Deadline) => {
                return Some(match attempt() {
                    Some(done) => Ok(done),
                    None if wait.cancel.is_cancelled() => Err(Interrupted::Cancelled),
                    None => Err(Interrupted::Timeout),
                });
            }
            Ok(Woke::Released) => return None,
            Err(stop) => {
                halt(stop);
                return None;
            }
        }
    }
}

/// Waits in the table until the task of `ticket` has ended: `Some(true)`,
/// `Some(false)` on timeout; `None` when the run is not controlled.
pub fn await_end(ticket: Option<Ticket>, wait: &Wait<'_>) -> Option<Result<bool, Interrupted>> {
    let ticket = ticket?;
    let run = run()?;
    // Its end pokes its own key; the board is told of a word no one moves.
    let unmoved = AtomicU32::new(0);
    let ended = block_on_key(end_key(ticket.seq), &unmoved, wait, &mut || {
        run.table.ended(ticket.slot, ticket.seq).then_some(())
    });
    match ended? {
        Ok(()) => Some(Ok(true)),
        Err(Interrupted::Timeout) => Some(Ok(false)),
        Err(why) => Some(Err(why)),
    }
}

/// Whether the task of `ticket` has taken its last step; `None` when the
/// run is not controlled.
pub fn ended(ticket: Option<Ticket>) -> Option<bool> {
    let (run, ticket) = (run()?, ticket?);
    Some(run.table.ended(ticket.slot, ticket.seq))
}

/// A change at the wait point whose futex word is `word`: the tasks
/// blocked on it may go on.
#[inline]
pub fn poke(word: &AtomicU32) {
    if on()
        && let Some(run) = RUN.get()
    {
        run.table.poke(word as *const AtomicU32 as u64);
    }
}

/// `time()` in a controlled run: virtual seconds, moved on a microsecond
/// by each call (a loop that waits for the clock gets there).
pub fn time() -> Option<f64> {
    let run = run()?;
    run.table.tick(1_000);
    Some(run.table.now() as f64 / 1e9)
}

/// A random number from the schedule's seed.
pub fn random() -> Option<u64> {
    run().map(|run| run.table.random())
}

/// The run must stop: its report, then every task runs freely and the
/// run's first process ends it (see [`watch`]).
fn halt(stop: Stop) {
    let Some(run) = RUN.get() else { return };
    let verdict = match &stop {
        Stop::Deadlock(_) => Verdict::Deadlock,
        Stop::Livelock => Verdict::Livelock,
        Stop::Diverged(_) => Verdict::Diverged,
    };
    // Only the first stop is reported, before any task runs freely.
    if !run.table.judge(verdict) {
        return;
    }
    let text = match stop {
        Stop::Deadlock(entries) => crate::observe::deadlock::report(&run.source, &entries).render(),
        Stop::Livelock => livelock(run).render(),
        Stop::Diverged(why) => format!("concsh: {why}\n"),
    };
    output::report(&text);
    run.table.release(verdict);
}

fn livelock(run: &Run) -> Report {
    let tasks = run.table.where_tasks_are();
    let mut labels: Vec<(Span, String)> = Vec::new();
    let mut help = String::from("tasks still running, at their last scheduling point:");
    for (_, name, (start, end)) in &tasks {
        let span = Span { start: *start, end: *end };
        help.push_str(&format!("\n  {name} at {}", run.source.place(*start)));
        if span.is_empty() {
            continue;
        }
        match labels.iter_mut().find(|(s, _)| *s == span) {
            Some((_, text)) => text.push_str(&format!(", {name}")),
            None => labels.push((span, name.clone())),
        }
    }
    help.push_str("\na task that waits for a change by spinning (`while not done {}`) should wait on an event;");
    // A long run that does end (heavy contention, many items) is told
    // apart only by its author: both ways out are named.
    help.push_str(&format!(
        "\na run that needs more than {} scheduling points can have them with `--max-steps`",
        run.limit
    ));
    let message = format!("Livelock: {} scheduling points, and the run has not ended", run.limit);
    Report::labelled(&run.source, message, labels, help)
}

/// In the run's first process: waits for a verdict and ends the run by
/// it, as the deadlock watch would (exit status 1). `stopped` ends the wait.
pub fn watch(stopped: &crate::sync::cancel::CancelToken, end_run: impl FnOnce()) {
    let Some(run) = run() else { return };
    while !stopped.is_cancelled() {
        match run.table.await_verdict(Duration::from_millis(100)) {
            Verdict::Running => {}
            Verdict::Released => return,
            _ => {
                end_run();
                return;
            }
        }
    }
}

/// The run is over: [`watch`] stops waiting.
pub fn wake_watch() {
    if let Some(run) = run() {
        run.table.wake_watch();
    }
}

/// Ctrl-C: the run is no longer controlled, so it can end at once.
pub fn let_go() {
    if let Some(run) = run() {
        run.table.release(Verdict::Released);
    }
}
