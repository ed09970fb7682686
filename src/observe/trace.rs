//! `--trace FILE` and `--timeline`: the history each process recorded
//! (`sync::history`) becomes Chrome trace events (loadable in Perfetto and
//! chrome://tracing): one track per task (pid = the OS process, tid = the
//! task's thread), a span for its life, a span for each wait and sleep
//! named by the code waiting, instants for put, set, release and notify,
//! and a span per pool item.
//!
//! Each child process writes its own events into a file of its own when it
//! ends; the run's first process merges them with its own once every task
//! has ended, however the run ended (an error, a deadlock, Ctrl-C).

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Value as Json, json};

use crate::eval::Process;
use crate::report::Source;
use crate::sync::board::Op;
use crate::sync::history::{self, Event, Record};

/// Where each process leaves its events: made before the first fork.
static PARTS: OnceLock<PathBuf> = OnceLock::new();

/// What the run was asked to show.
pub struct Recording {
    pub trace: Option<PathBuf>,
    pub timeline: bool,
}

impl Recording {
    /// Starts recording, before the run's first task; `None` when nothing
    /// was asked for (or the parts directory cannot be made: said once).
    pub fn start(trace: Option<PathBuf>, timeline: bool) -> Option<Recording> {
        if trace.is_none() && !timeline {
            return None;
        }
        let dir = std::env::temp_dir().join(format!("concsh-trace-{}", std::process::id()));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            crate::runtime::output::report(&format!("concsh: cannot record the run: {}: {e}\n", dir.display()));
            return None;
        }
        let _ = PARTS.set(dir);
        history::start();
        Some(Recording { trace, timeline })
    }

    /// After the run: every process's events, merged into the trace file
    /// and drawn as a timeline. Gives false if the trace could not be written.
    pub fn finish(self, proc: &Process) -> bool {
        let Some(dir) = PARTS.get() else { return true };
        // This process's own events need no trip through a file.
        let mut events = own_events(proc);
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let part = std::fs::read(entry.path()).ok();
                if let Some(Json::Array(part)) = part.and_then(|bytes| serde_json::from_slice(&bytes).ok()) {
                    events.extend(part);
                }
            }
        }
        let _ = std::fs::remove_dir_all(dir);
        // Metadata first, then by time: readers need no order, people do.
        events.sort_by_key(|e| (e["ph"] != "M", e["ts"].as_u64().unwrap_or(0)));
        let mut written = true;
        if let Some(path) = &self.trace {
            let document = json!({ "traceEvents": events, "displayTimeUnit": "ms" });
            if let Err(e) = std::fs::write(path, document.to_string()) {
                crate::runtime::output::report(&format!("concsh: cannot write the trace {}: {e}\n", path.display()));
                written = false;
            }
        }
        if self.timeline {
            crate::runtime::output::report(&super::timeline::draw(&events, history::elapsed()));
        }
        written
    }
}

/// Writes this process's events to its part file (a child, as it ends).
pub fn write_part(proc: &Process) {
    let Some(dir) = PARTS.get() else { return };
    if !history::on() {
        return;
    }
    let path = dir.join(format!("{}.json", nix::unistd::getpid()));
    let _ = std::fs::write(path, Json::Array(own_events(proc)).to_string());
}

/// What this process recorded, as Chrome trace events.
fn own_events(proc: &Process) -> Vec<Json> {
    let source = proc.source.read().clone();
    to_chrome(&history::take(), &source)
}

/// Chrome trace events for one process's records.
fn to_chrome(records: &[Record], source: &Source) -> Vec<Json> {
    let mut events = Vec::with_capacity(records.len() + 8);
    for record in records {
        let (pid, tid, ts) = (record.pid, record.tid, record.at);
        let event = match &record.event {
            Event::TaskBegins { name, process } => {
                let kind = if *process { "process" } else { "thread" };
                events.push(json!({ "ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                    "args": { "name": format!("{kind} {name}") } }));
                if *process {
                    events.push(json!({ "ph": "M", "name": "process_name", "pid": pid,
                        "args": { "name": format!("{name} (pid {pid})") } }));
                }
                json!({ "ph": "B", "cat": "task", "name": format!("{kind} {name}"), "pid": pid, "tid": tid, "ts": ts })
            }
            Event::TaskEnds | Event::WaitEnds | Event::ItemEnds => {
                json!({ "ph": "E", "pid": pid, "tid": tid, "ts": ts })
            }
            Event::WaitBegins(what) => {
                let cat = if what.op == Op::Sleep { "sleep" } else { "wait" };
                let (name, line) = named(what.op, what.span, source);
                json!({ "ph": "B", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts,
                    "args": { "line": line } })
            }
            Event::Mark { what, span } => {
                let (_, line) = named(Op::Other, *span, source);
                json!({ "ph": "i", "s": "t", "cat": "mark", "name": what, "pid": pid, "tid": tid, "ts": ts,
                    "args": { "line": line } })
            }
            Event::ItemBegins { label } => {
                json!({ "ph": "B", "cat": "item", "name": label, "pid": pid, "tid": tid, "ts": ts })
            }
        };
        events.push(event);
    }
    events
}

/// A wait's name (the code waiting: `get q`, `join t`) and its line.
fn named(op: Op, (start, end): (u32, u32), source: &Source) -> (String, Json) {
    let text = source.text.get(start as usize..end as usize).filter(|t| !t.is_empty());
    let line = match text {
        Some(_) => json!(source.line(start)),
        None => Json::Null,
    };
    let name = match (text, op) {
        (Some(text), _) => text.split_whitespace().collect::<Vec<_>>().join(" "),
        (None, Op::JoinThread | Op::JoinProcess) => "join (end of script)".into(),
        (None, Op::PoolIdle) => "wait for work".into(),
        (None, Op::PoolResult) => "wait for results".into(),
        (_, Op::Turn) => "its turn".into(),
        (None, _) => "wait".into(),
    };
    (name, line)
}
