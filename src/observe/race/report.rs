//! A race, told once per pair of places: what raced, the two accesses
//! (kind, task, line), and where each task was started.

use super::book::{Book, Tag, key};
use super::clock::Tid;
use super::local::Place;
use super::shadow::{Access, Conflict, Mark, Site};
use super::slots::{self, Started};
use crate::report::Report;
use crate::runtime::format;
use crate::runtime::output;
use crate::syntax::Span;
use crate::tasks::process::Process;

/// Reports the race between the running task's access and `earlier`,
/// unless this pair of places was reported before.
pub(super) fn race(proc: &Process, book: Book, place: &Place, now: Mark, access: Access, earlier: Conflict) {
    let Mark { tid, clock: step, site } = now;
    // Told the same way whichever access came first: by place, then task.
    let mut accesses = [(site, tid, access), (earlier.earlier.site, earlier.earlier.tid, earlier.access)];
    accesses.sort_by_key(|&(site, tid, _)| (site, tid));
    let seen = key(Tag::Seen, accesses[0].0 as u64, accesses[1].0 as u64);
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
    let text = |s: Site| {
        let span = label(&source.text, s);
        source.text.get(span.start as usize..span.end as usize).unwrap_or("")
    };
    let what = describe(proc, place, [text(site), text(earlier.earlier.site)]);
    let count = |t: Tid| if t == tid { step } else { earlier.earlier.clock };
    let mut tasks = [
        (tid, slots::info(book, tid, count(tid))),
        (earlier.earlier.tid, slots::info(book, earlier.earlier.tid, count(earlier.earlier.tid))),
    ];
    tasks.sort_by_key(|(tid, _)| *tid);
    let name = |tid: Tid| tasks.iter().find(|(t, _)| *t == tid).map_or("", |(_, info)| info.name.as_str());
    let at = |site: Site| label(&source.text, site);
    let labels = match accesses {
        // One place, one kind: one label naming both tasks.
        [(a, x, kind), (b, y, other)] if a == b && kind == other => {
            vec![(at(a), format!("{} by {} and by {}", kind.word(), name(x), name(y)))]
        }
        // One place (`n.value += 1` reads and writes there): one label.
        [(a, x, kind), (b, y, other)] if a == b => {
            vec![(at(a), format!("{} by {}, {} by {}", kind.word(), name(x), other.word(), name(y)))]
        }
        _ => accesses
            .iter()
            .map(|&(site, tid, access)| (at(site), format!("{} by {}", access.word(), name(tid))))
            .collect(),
    };
    let started: Vec<String> = tasks
        .iter()
        .map(|(_, t)| match t.start {
            Started::Main => format!("{} is the main task", t.name),
            Started::At(s) => {
                format!("{} was started at {}", t.name, source.place(s))
            }
            Started::Unknown => format!("{} was started long before", t.name),
        })
        .collect();
    let help = format!(
        "{}\nnothing orders the two accesses: do both under one lock, or hand the data over with a queue, an event or a join",
        started.join("; ")
    );
    let report = Report::labelled(&source, format!("Data race on {what}"), labels, help);
    output::report(&report.render());
}

/// Where the expression of an access at `site` ends: a name, then any
/// `.name`, `[...]` and `(...)` after it (`counts["hits"]`, `n.value`,
/// `log.push("a")`, `len(xs)`); the target alone of an assignment.
fn label(text: &str, site: Site) -> Span {
    let bytes = text.as_bytes();
    let word = |mut at: usize| {
        while bytes.get(at).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b >= 0x80) {
            at += 1;
        }
        at
    };
    let mut start = site as usize;
    while bytes.get(start) == Some(&b' ') {
        start += 1;
    }
    let mut at = word(start);
    // An operator's read (`+=` of `n.value += 1`): the operator.
    while at == start && bytes.get(at).is_some_and(|b| b"+-*/%=<>!".contains(b)) {
        at += 1;
    }
    loop {
        match bytes.get(at) {
            Some(b'.') if word(at + 1) > at + 1 => at = word(at + 1),
            Some(b'[' | b'(') => match closing(bytes, at) {
                Some(end) => at = end + 1,
                None => break,
            },
            _ => break,
        }
    }
    let end = at.max(start + 1).min(text.len());
    Span { start: start.min(end) as u32, end: end as u32 }
}

/// The bracket closing the one at `open` (strings skipped); bounded by
/// the line, as an access's expression is.
fn closing(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quoted = false;
    let mut at = open;
    while let Some(&b) = bytes.get(at) {
        match b {
            b'\n' => return None,
            b'\\' if quoted => at += 1,
            b'"' => quoted = !quoted,
            b'[' | b'(' | b'{' if !quoted => depth += 1,
            b']' | b')' | b'}' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    return Some(at);
                }
            }
            _ => {}
        }
        at += 1;
    }
    None
}

/// What raced, in the script's words: `global counter`, `list xs[3]`,
/// `map m["k"]`, `shared n.value`, from the text of the two accesses.
fn describe(proc: &Process, place: &Place, texts: [&str; 2]) -> String {
    let base = texts.iter().find_map(|text| base_name(text)).unwrap_or("");
    match place {
        Place::Global(i, _) => {
            let name = proc.global_names.read().get(*i as usize).map(|n| n.to_string()).unwrap_or_default();
            format!("global `{name}`")
        }
        Place::Captured(_) => {
            format!("variable `{}`", texts[0].split(['=', ' ', '+', '-']).next().unwrap_or(texts[0]))
        }
        Place::Item(_, i) => format!("list {base}[{i}]"),
        Place::Length(_) => format!("the length of list {base}"),
        Place::Key(_, k) => format!("map {base}[{}]", format::repr(&k.to_value())),
        Place::Keys(_) => format!("the keys of map {base}"),
        // A shared map's key is named by its hash: the access's own words.
        Place::Shared(_, i) if *i > u32::MAX as usize => match texts.iter().find(|t| t.contains('[')) {
            Some(text) => format!("shared {}", text.trim()),
            None => format!("shared map {base}"),
        },
        Place::Shared(_, i) if texts.iter().any(|t| t.contains('[')) => format!("shared {base}[{i}]"),
        Place::Shared(..) => format!("shared {base}.value"),
    }
}

/// The name an access used for its list, map or shared value: `xs` of
/// `xs[i] = 1`, `m.keys()` or `len(xs)`.
fn base_name(text: &str) -> Option<&str> {
    let text = text.strip_prefix("len(").unwrap_or(text);
    let base = text.split(['[', '.', ')']).next().unwrap_or("").trim();
    (!base.is_empty() && base.chars().all(|c| c.is_alphanumeric() || c == '_')).then_some(base)
}
