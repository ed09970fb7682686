//! A race, told once per pair of places: what raced, the two accesses
//! (kind, task, line), and where each task was started.

use super::book::{Book, Tag, key};
use super::clock::Tid;
use super::local::Place;
use super::shadow::{Access, Conflict, Site};
use crate::report::Report;
use crate::runtime::format;
use crate::runtime::output;
use crate::syntax::Span;
use crate::tasks::process::Process;

/// Reports the race between the running task's access and `earlier`,
/// unless this pair of places was reported before.
pub(super) fn race(proc: &Process, book: Book, place: &Place, now: (Access, Tid, Site), earlier: Conflict) {
    let (access, tid, site) = now;
    // Told the same way whichever access came first: by place, then task.
    let mut accesses = [(site, tid, access), (earlier.earlier.site, earlier.earlier.tid, earlier.access)];
    accesses.sort_by_key(|&(site, tid, _)| (site, tid));
    let pack = |s: Site| (s.0 as u64) << 32 | s.1 as u64;
    let seen = key(Tag::Seen, pack(accesses[0].0), pack(accesses[1].0));
    let first = book.with(|records| {
        let first = records.get(seen).is_none();
        if first {
            records.put(seen, &[]);
        }
        first
    });
    if !first {
        return;
    }
    book.found_one();
    let source = proc.source.read().clone();
    let what = describe(proc, place, source.text.get(site.0 as usize..site.1 as usize).unwrap_or(""));
    let mut tasks = [(tid, task(book, tid)), (earlier.earlier.tid, task(book, earlier.earlier.tid))];
    tasks.sort_by_key(|(tid, _)| *tid);
    let name = |tid: Tid| tasks.iter().find(|(t, _)| *t == tid).map_or("", |(_, info)| info.name.as_str());
    let at = |site: Site, access: Access| {
        let site = if access == Access::Read { site } else { target(&source.text, site) };
        Span { start: site.0, end: site.1 }
    };
    let labels = match accesses {
        // One place, one kind: one label naming both tasks.
        [(a, x, kind), (b, y, other)] if a == b && kind == other => {
            vec![(at(a, kind), format!("{} by {} and by {}", kind.word(), name(x), name(y)))]
        }
        _ => accesses
            .iter()
            .map(|&(site, tid, access)| (at(site, access), format!("{} by {}", access.word(), name(tid))))
            .collect(),
    };
    let started: Vec<String> = tasks
        .iter()
        .map(|(_, t)| match t.start {
            (0, 0) => format!("{} is the main task", t.name),
            s => format!("{} was started at line {}", t.name, crate::observe::dump::line_of(&source.text, s.0)),
        })
        .collect();
    let help = format!(
        "{}\nnothing orders the two accesses: do both under one lock, or hand the data over with a queue, an event or a join",
        started.join("; ")
    );
    let report = Report::labelled(&source, format!("Data race on {what}"), labels, help);
    output::report(&report.render());
}

struct TaskInfo {
    name: String,
    start: Site,
}

fn task(book: Book, tid: Tid) -> TaskInfo {
    let record = book.with(|records| records.get(key(Tag::Task, tid as u64, 0))).unwrap_or_default();
    let word = |at: usize| super::word(&record, at);
    let name = String::from_utf8_lossy(record.get(12..).unwrap_or_default()).into_owned();
    let name = match word(0) {
        0 => name,
        pid => format!("{name} (pid {pid})"),
    };
    TaskInfo { name, start: (word(4), word(8)) }
}

/// The target of an assignment at `site` (`counter` of `counter = counter + 1`),
/// so that its label does not cover the reads on its right.
fn target(text: &str, site: Site) -> Site {
    let Some(statement) = text.get(site.0 as usize..site.1 as usize) else { return site };
    let ends = ["+=", "-=", "*=", "/=", "%=", " ="];
    match ends.iter().filter_map(|e| statement.find(e)).min() {
        Some(at) if !statement[..at].trim().is_empty() => (site.0, site.0 + statement[..at].trim_end().len() as u32),
        _ => site,
    }
}

/// What raced, in the script's words: `global counter`, `list xs[3]`,
/// `map m["k"]`, `shared n.value`.
fn describe(proc: &Process, place: &Place, text: &str) -> String {
    // The name the access used for its list or map: `xs` of `xs[i] = 1`.
    let base = text.split(['[', '.']).next().unwrap_or("").trim();
    let base = match base.chars().all(|c| c.is_alphanumeric() || c == '_') && !base.is_empty() {
        true => base,
        false => "",
    };
    match place {
        Place::Global(i, _) => {
            let name = proc.global_names.read().get(*i as usize).map(|n| n.to_string()).unwrap_or_default();
            format!("global `{name}`")
        }
        Place::Captured(_) => format!("variable `{}`", text.split(['=', ' ', '+', '-']).next().unwrap_or(text)),
        Place::Item(_, i) => format!("list {base}[{i}]"),
        Place::Length(_) => format!("the length of list {base}"),
        Place::Key(_, k) => format!("map {base}[{}]", format::repr(&k.to_value())),
        Place::Shared(_, i) if text.contains('[') => format!("shared {base}[{i}]"),
        Place::Shared(..) => format!("shared {base}.value"),
    }
}
