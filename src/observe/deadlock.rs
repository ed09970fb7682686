//! Deadlock detection. A watch thread in the run's first process reads
//! the task board ([`crate::sync::board`]) five times a second. The run is
//! deadlocked when every task of every process sleeps with no deadline in
//! an operation only another task could complete, no wake-up is on its way
//! to any of them (each futex word still holds what its sleeper saw, each
//! joined task is still there), and the board has not moved across three
//! scans. Then the watch reports every task, what it waits on and where,
//! and ends the run (at the prompt: the statement running).
//!
//! A task in `sleep`, in a wait with a timeout, reading input, or running
//! keeps the watch quiet, and so does any wait the board does not judge.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::dump::{at_line, describe, who};
use crate::eval::Process;
use crate::report::{Report, Source};
use crate::runtime::output;
use crate::sync::board::{self, Entry, Op, Owner, State};
use crate::sync::cancel::CancelToken;
use crate::syntax::Span;

/// How often the board is read.
const TICK: Duration = Duration::from_millis(200);
/// Scans in a row that must find the same stuck board.
const CONFIRMATIONS: u32 = 3;

/// Set once a deadlock ended the run (its exit status is 1), or the
/// statement running at the prompt (taken back by the prompt).
static DEADLOCKED: AtomicBool = AtomicBool::new(false);

pub fn deadlocked() -> bool {
    DEADLOCKED.load(Ordering::SeqCst)
}

/// At the prompt: whether the statement just ended was ended by a
/// deadlock report (and the answer is now taken).
pub fn take_deadlocked() -> bool {
    DEADLOCKED.swap(false, Ordering::SeqCst)
}

/// What a deadlock ends.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Ends {
    /// The whole run (a script).
    Run,
    /// The statement running at the prompt.
    Statement,
}

/// The watch thread; stopped when dropped.
pub struct Watch {
    stop: Arc<CancelToken>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    pub fn start(proc: Arc<Process>, ends: Ends) -> Option<Watch> {
        let stop = Arc::new(CancelToken::default());
        let stopped = stop.clone();
        let thread = crate::sync::gate::start_helper(
            std::thread::Builder::new().name("concsh-deadlock-watch".into()),
            move || watch(&proc, &stopped, ends),
        )
        .ok()?;
        Some(Watch { stop, thread: Some(thread) })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.cancel();
        super::explore::wake_watch();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn watch(proc: &Process, stop: &CancelToken, ends: Ends) {
    // A controlled run finds its deadlocks itself: this ends the run by
    // the verdict of its scheduler.
    if super::explore::on() {
        super::explore::watch(stop, || {
            proc.gate.enter();
            DEADLOCKED.store(true, Ordering::SeqCst);
            proc.cancel_all();
            proc.gate.leave();
        });
        return;
    }
    let mut last: Option<Vec<Entry>> = None;
    let mut seen = 0;
    while stop.sleep(TICK, None, Default::default()).is_ok() {
        let Some(entries) = board::scan() else { continue };
        // A primitive freed from a dead holder lets its waiters go on.
        if super::abandoned::recover(&entries) {
            last = None;
            seen = 0;
            continue;
        }
        // A board that shows a task able to go on starts the count again;
        // so does any change since the last scan (every slot counts its
        // changes), a wake-up given included.
        if !stuck(&entries) {
            last = None;
            seen = 0;
            continue;
        }
        seen = match &last {
            Some(previous) if *previous == entries => seen + 1,
            _ => 1,
        };
        if seen < CONFIRMATIONS {
            last = Some(entries);
            continue;
        }
        last = None;
        seen = 0;
        let source = proc.source.read().clone();
        output::report(&report(&source, &entries).render());
        proc.gate.enter();
        DEADLOCKED.store(true, Ordering::SeqCst);
        match ends {
            Ends::Run => proc.cancel_all(),
            Ends::Statement => proc.main_task().cancel.cancel(),
        }
        proc.gate.leave();
        if ends == Ends::Run {
            return;
        }
    }
}

/// Whether no task on the board can go on, nor be woken by one that can.
pub fn stuck(entries: &[Entry]) -> bool {
    let mut tasks = 0;
    for entry in entries {
        if entry.owner != Owner::Helper {
            tasks += 1;
        }
        if entry.state != State::Blocked || entry.unwoken == Some(false) {
            return false;
        }
        let waiting_on_a_live_task = match entry.what.op {
            Op::Other | Op::Sleep | Op::Turn => return false,
            Op::JoinThread => entries.iter().any(|e| e.id == entry.what.target),
            Op::JoinProcess => entries.iter().any(|e| e.pid as u64 == entry.what.target),
            _ => true,
        };
        // The joined task has ended: its joiner is about to wake.
        if !waiting_on_a_live_task {
            return false;
        }
    }
    tasks > 0
}

/// The `Deadlock` report: a label per task at the line it waits on, and
/// every task listed in the help.
pub fn report(source: &Source, entries: &[Entry]) -> Report {
    let mut tasks: Vec<&Entry> = entries.iter().filter(|e| e.owner != Owner::Helper).collect();
    // In source order; tasks with no line of their own (idle pool workers) last.
    tasks.sort_by_key(|t| (t.what.span.1 <= t.what.span.0, t.what.span, t.name.clone()));
    let mut labels: Vec<(Span, String)> = Vec::new();
    let mut list = String::from("every task waits with no timeout, and only another of them could wake it:");
    for task in &tasks {
        let who = who(task);
        let what = describe(task, entries);
        let span = Span { start: task.what.span.0, end: task.what.span.1 };
        let at = match (span.is_empty(), task.what.op) {
            (true, Op::JoinThread | Op::JoinProcess) => " at the end of the script".into(),
            _ => at_line(task, source),
        };
        list.push_str(&format!("\n  {who} {what}{at}"));
        if span.is_empty() {
            continue;
        }
        match labels.iter_mut().find(|(s, _)| *s == span) {
            Some((_, text)) => text.push_str(&format!("; {who} too")),
            None => labels.push((span, format!("{who} {what}"))),
        }
    }
    list.push_str(match tasks.iter().any(|t| t.what.op == Op::Iterate) {
        true => "\na `for` over a queue ends once the queue is closed and drained: `close q` after the last `put`",
        false => "\na timeout (`get q timeout 5`, `join t timeout 5`) turns a wait into an error you can handle",
    });
    Report::deadlock(source, labels, list)
}
