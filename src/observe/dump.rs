//! Task dumps: every live task of the run, what it does now and where,
//! in words (SIGQUIT, Ctrl-\, and `:tasks` at the prompt). The deadlock
//! report describes its tasks with the same words.

use std::time::{Duration, Instant};

use crate::eval::Process;
use crate::report::Source;
use crate::runtime::handle::{Handle, HandleKind};
use crate::sync::board::{self, Entry, Op, Owner, State};
use crate::sync::condition::Condition;
use crate::sync::event::Event;
use crate::sync::lock::Lock;
use crate::sync::queue::Queue;
use crate::sync::semaphore::Semaphore;

/// How long running tasks get to say which statement they are at. Most
/// answer within a millisecond; one descheduled on a busy machine, or a
/// child process just starting, may take longer. The dump waits for the
/// last answer, up to this long (a task inside a long builtin call cannot
/// answer, and shows as `running` with no line).
const ANSWER: Duration = Duration::from_secs(1);
/// How often the dump looks for the answers.
const ANSWER_POLL: Duration = Duration::from_millis(2);

/// Asks this process's running tasks where they are (each answers at its
/// next statement); child processes are asked by their own listeners.
/// The caller is inside the fork gate.
pub fn ask_where(proc: &Process) {
    for task in proc.all_tasks() {
        task.cancel.ask_where();
    }
}

/// The dump: one line per live task, in the order they started (but the
/// task `hide`: the prompt's own).
pub fn dump(proc: &Process, hide: Option<u64>) -> String {
    proc.gate.enter();
    ask_where(proc);
    proc.gate.leave();
    let asked = Instant::now();
    while asked.elapsed() < ANSWER && unanswered(hide) {
        std::thread::sleep(ANSWER_POLL);
    }
    let Some(entries) = board::scan() else {
        return "concsh: no task dump (more tasks than the board holds)\n".into();
    };
    let source = proc.source.read().clone();
    let tasks: Vec<&Entry> = entries.iter().filter(|e| e.owner != Owner::Helper && Some(e.id) != hide).collect();
    if tasks.is_empty() {
        return "no tasks running\n".into();
    }
    let mut text = format!("concsh: {} live task{}\n", tasks.len(), if tasks.len() == 1 { "" } else { "s" });
    for task in tasks {
        text.push_str(&format!("  {:<36} {}\n", who(task), doing(task, &entries, &source)));
    }
    text
}

/// Whether a running task (but `hide`) has not yet said where it is.
fn unanswered(hide: Option<u64>) -> bool {
    let Some(entries) = board::scan() else { return false };
    entries
        .iter()
        .any(|e| e.owner != Owner::Helper && Some(e.id) != hide && e.state == State::Running && e.what.op != Op::At)
}

/// `running, line 4`, `sleeping, line 9`, `waits to get from ...`.
fn doing(task: &Entry, entries: &[Entry], source: &Source) -> String {
    let line = at_line(task, source);
    match (task.state, task.what.op) {
        (State::Running, Op::At) => format!("running{line}"),
        (State::Running, _) => "running".into(),
        (_, Op::Sleep) => format!("sleeping{line}"),
        (State::Timed, _) => format!("{} (with a timeout){line}", describe(task, entries)),
        _ => format!("{}{line}", describe(task, entries)),
    }
}

/// `thread Thread-1 (pid 42)`.
pub(super) fn who(entry: &Entry) -> String {
    let kind = match entry.owner {
        Owner::Process => "process",
        _ => "thread",
    };
    crate::runtime::task::named(&format!("{kind} {}", entry.name), entry.pid)
}

/// `, line 4` for the statement an entry is at or waits in; nothing when
/// it has no place in the source.
pub(super) fn at_line(entry: &Entry, source: &Source) -> String {
    let (start, end) = entry.what.span;
    match end > start {
        true => format!(", {}", source.place(start)),
        false => String::new(),
    }
}

/// What an entry waits for, with the state of the primitive.
pub(super) fn describe(entry: &Entry, entries: &[Entry]) -> String {
    let target = entry.what.target;
    let name_of = |found: Option<&Entry>| found.map_or("a task that ended".to_string(), |e| e.name.clone());
    match entry.what.op {
        Op::JoinThread => format!("waits to join thread {}", name_of(entries.iter().find(|e| e.id == target))),
        Op::JoinProcess => {
            let found = entries.iter().find(|e| e.pid as u64 == target && e.owner == Owner::Process);
            format!("waits to join process {}", name_of(found))
        }
        Op::PoolResult => "waits for results from a pool".into(),
        Op::PoolIdle => "waits for work from its pool".into(),
        Op::Turn => "waits for its turn".into(),
        Op::Put if target == 0 => "waits to hand a task to a pool whose queue is full".into(),
        op => match Handle::from_bits(target) {
            Some(handle) => primitive(op, handle, entries),
            None => "waits".into(),
        },
    }
}

fn primitive(op: Op, handle: Handle, entries: &[Entry]) -> String {
    let off = handle.off();
    let holder = |owner: u64| match entries.iter().find(|e| e.id == owner) {
        Some(e) => format!(" held by {}", e.name),
        None if owner != 0 => " held by a task that ended without releasing it".into(),
        None => String::new(),
    };
    match (op, handle.kind()) {
        (Op::Get, HandleKind::Queue) => {
            let q = Queue(off);
            format!("waits to get from a queue holding {} items{}", q.len(), capacity(q))
        }
        (Op::Put, HandleKind::Queue) => format!("waits to put into a full queue{}", capacity(Queue(off))),
        (Op::Get, HandleKind::Pipe) => "waits to receive from a pipe no one sends to".into(),
        (Op::Iterate, HandleKind::Queue) => "waits in a `for` for the next item of a queue no task closes".into(),
        (Op::Iterate, _) => "waits in a `for` for the next item of a pipe no task closes".into(),
        (Op::Put, HandleKind::Pipe) => "waits to send into a full pipe".into(),
        (Op::Acquire, HandleKind::Lock) => format!("waits to acquire a lock{}", holder(Lock(off).owner())),
        (Op::Acquire, HandleKind::Semaphore) => format!("waits to acquire a semaphore at {}", Semaphore(off).value()),
        (Op::Acquire, HandleKind::Condition) => {
            let owner = Condition(off).lock().map(|l| l.owner()).unwrap_or(0);
            format!("waits to acquire a condition's lock{}", holder(owner))
        }
        (Op::Acquire, _) => "waits to acquire a shared value's lock".into(),
        (Op::Wait, HandleKind::Event) => match Event(off).is_set() {
            true => "waits for an event".into(),
            false => "waits for an event no task sets".into(),
        },
        (Op::Wait, _) => "waits for a condition no task notifies".into(),
        _ => "waits".into(),
    }
}

fn capacity(q: Queue) -> String {
    q.capacity().map_or(String::new(), |c| format!(" (capacity {c})"))
}
