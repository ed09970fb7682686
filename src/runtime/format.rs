//! How values print: `print` and `str` show a string as its text, inside
//! containers strings are quoted; floats take the shortest form that reads
//! back, keeping `.0` on whole numbers (`2.0`, `0.1`, `1e+20`, as Python).

use std::collections::HashSet;
use std::fmt::Write;
use std::sync::Arc;

use crate::sync::cell::Headed;
use crate::syntax::ast::{Align, FormatSpec};

use super::error::MAX_LEN;
use super::handle::{Handle, HandleKind};
use super::task::{Outcome, Task, TaskKind};
use super::value::Value;
use super::wire::{FnTable, decode};
use crate::sync::cell::SharedCells;
use crate::sync::event::Event;
use crate::sync::lock::Lock;
use crate::sync::pipe::PipeEnd;
use crate::sync::queue::Queue;
use crate::sync::semaphore::Semaphore;

/// The text `print` and `str` give.
pub fn display(value: &Value) -> String {
    match value {
        Value::Str(s) => s.to_string(),
        other => repr(other),
    }
}

/// The text of a value inside a container (strings quoted). For reports:
/// never interrupted, and cut short (ending in `...`) past [`MAX_LEN`].
pub fn repr(value: &Value) -> String {
    let mut writer = Writer::new(&|| false);
    match writer.run(value) {
        Ok(()) => writer.out,
        Err(_) => {
            writer.out.push_str("...");
            writer.out
        }
    }
}

/// Why a value's text was not made.
#[derive(Debug, PartialEq, Eq)]
pub enum Unprintable {
    /// It would pass [`MAX_LEN`] bytes.
    TooLarge,
    /// `stop` said so (the task was cancelled).
    Stopped,
}

/// [`display`] for `print`, `str` and interpolation: a value nested any
/// depth is written without recursion in time linear in its size, gives up
/// past [`MAX_LEN`] bytes, and asks `stop` now and then whether to go on.
pub fn display_checked(value: &Value, stop: &dyn Fn() -> bool) -> Result<String, Unprintable> {
    if let Value::Str(s) = value {
        return Ok(s.to_string());
    }
    let mut writer = Writer::new(stop);
    writer.run(value)?;
    Ok(writer.out)
}

/// A container being written: a snapshot of its items (and of a map's
/// keys, one per item), and how far it got.
struct Open {
    id: usize,
    close: char,
    keys: Vec<Value>,
    items: Vec<Value>,
    next: usize,
}

/// The iterative writer behind [`repr`] and [`display_checked`].
struct Writer<'s> {
    out: String,
    /// The containers being written, so a list that contains itself
    /// prints `[...]` instead of recursing forever.
    open: HashSet<usize>,
    stop: &'s dyn Fn() -> bool,
}

/// How many values are written between checks of the size and of `stop`.
const CHECK_EVERY: usize = 4096;

impl<'s> Writer<'s> {
    fn new(stop: &'s dyn Fn() -> bool) -> Writer<'s> {
        Writer { out: String::new(), open: HashSet::new(), stop }
    }

    fn run(&mut self, value: &Value) -> Result<(), Unprintable> {
        let mut stack: Vec<Open> = Vec::new();
        self.value(value, &mut stack);
        let mut steps = 0usize;
        while let Some(top) = stack.last_mut() {
            steps += 1;
            if steps.is_multiple_of(CHECK_EVERY) {
                self.check()?;
            }
            let Some(item) = top.items.get_mut(top.next).map(std::mem::take) else {
                self.out.push(top.close);
                self.open.remove(&top.id);
                stack.pop();
                continue;
            };
            if top.next > 0 {
                self.out.push_str(", ");
            }
            if let Some(key) = top.keys.get(top.next) {
                // Keys are scalars: they open nothing.
                self.value(key, &mut Vec::new());
                self.out.push_str(": ");
            }
            top.next += 1;
            self.value(&item, &mut stack);
        }
        self.check()
    }

    fn check(&self) -> Result<(), Unprintable> {
        if self.out.len() > MAX_LEN {
            return Err(Unprintable::TooLarge);
        }
        if (self.stop)() {
            return Err(Unprintable::Stopped);
        }
        Ok(())
    }

    /// Writes a scalar; a container is opened (pushed on `stack`).
    fn value(&mut self, value: &Value, stack: &mut Vec<Open>) {
        let out = &mut self.out;
        match value {
            Value::Nil | Value::Unset => out.push_str("nil"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Float(f) => out.push_str(&float(*f)),
            Value::Str(s) => quote(out, s),
            Value::Bytes(b) => bytes_literal(out, b),
            Value::List(list) => {
                let id = Arc::as_ptr(list) as usize;
                if !self.open.insert(id) {
                    return out.push_str("[...]");
                }
                out.push('[');
                stack.push(Open { id, close: ']', keys: Vec::new(), items: list.lock().to_vec(), next: 0 });
            }
            Value::Map(map) => {
                let id = Arc::as_ptr(map) as usize;
                if !self.open.insert(id) {
                    return out.push_str("{...}");
                }
                out.push('{');
                let (keys, items) = map.lock().iter().map(|(k, v)| (k.to_value(), v.clone())).unzip();
                stack.push(Open { id, close: '}', keys, items, next: 0 });
            }
            Value::Range(r) => match r.step {
                1 => {
                    let _ = write!(out, "range({}, {})", r.start, r.stop);
                }
                step => {
                    let _ = write!(out, "range({}, {}, {step})", r.start, r.stop);
                }
            },
            Value::Func(f) => {
                let _ = write!(out, "<fn {}>", f.def.name);
            }
            Value::Builtin(b) => {
                let _ = write!(out, "<builtin {}>", b.name());
            }
            Value::Error(e) => {
                let _ = write!(out, "<error {}: {}>", e.kind, e.message);
            }
            Value::Cell(c) => {
                let inner = c.lock().clone();
                self.value(&inner, stack);
            }
            Value::Task(task) => out.push_str(&task_text(task)),
            Value::Handle(handle) => out.push_str(&handle_text(handle.handle())),
            Value::ThreadLocal(_) => out.push_str("<threadlocal>"),
            Value::RemoteQueue(q) => {
                let _ = write!(out, "<queue {}>", q.url());
            }
            Value::Pool(pool) => {
                let kind = if pool.threads { "threads" } else { "processes" };
                let state = if pool.is_closed() { " closed" } else { "" };
                let _ = write!(out, "<pool {} {kind}{state}>", pool.size);
            }
            Value::Future(f) => out.push_str(if f.is_ready() { "<future ready>" } else { "<future pending>" }),
        }
    }
}

/// `<thread Thread-1 running>`, `<process Process-1 pid 4242 done>`.
fn task_text(task: &Task) -> String {
    let state = match task.outcome() {
        Outcome::Running => "running".to_string(),
        Outcome::Returned(_) => "done".to_string(),
        Outcome::Failed(_) => "failed".to_string(),
        Outcome::Exited(n) => format!("exited {n}"),
        Outcome::Terminated => "terminated".to_string(),
        Outcome::Signalled(n) => format!("killed by signal {n}"),
    };
    match task.kind {
        TaskKind::Thread => format!("<thread {} {state}>", task.name),
        TaskKind::Process => format!("<process {} pid {} {state}>", task.name, task.pid()),
    }
}

/// `<queue 2/3>`, `<lock locked>`, `<event set>`, `<shared 5>`.
fn handle_text(handle: Handle) -> String {
    let off = handle.off();
    match handle.kind() {
        HandleKind::Queue => {
            let q = Queue(off);
            let size = match q.capacity() {
                Some(cap) => format!("{}/{cap}", q.len()),
                None => q.len().to_string(),
            };
            let closed = if q.is_closed() { " closed" } else { "" };
            format!("<queue {size}{closed}>")
        }
        HandleKind::Lock => match Lock(off).is_locked() {
            true => "<lock locked>".to_string(),
            false => "<lock unlocked>".to_string(),
        },
        HandleKind::Semaphore => {
            let s = Semaphore(off);
            format!("<semaphore {}/{}>", s.value(), s.limit())
        }
        HandleKind::Condition => "<condition>".to_string(),
        HandleKind::Pipe => {
            let end = PipeEnd(off);
            match (end.inbox().is_some(), end.outbox().is_some()) {
                (true, true) => "<pipe end>".to_string(),
                (true, false) => "<pipe reader>".to_string(),
                _ => "<pipe writer>".to_string(),
            }
        }
        HandleKind::Event => match Event(off).is_set() {
            true => "<event set>".to_string(),
            false => "<event clear>".to_string(),
        },
        HandleKind::Cell | HandleKind::Array => {
            let cells = SharedCells(off);
            let no_functions = FnTable::new();
            let values: Vec<String> = (0..cells.len())
                .map(|i| match cells.load(i).ok().and_then(|b| decode(&b, &no_functions).ok()) {
                    Some(v) => repr(&v),
                    None => "?".to_string(),
                })
                .collect();
            match handle.kind() {
                HandleKind::Cell => format!("<shared {}>", values.join("")),
                _ => format!("<shared [{}]>", values.join(", ")),
            }
        }
        HandleKind::Map => {
            let no_functions = FnTable::new();
            let text = |b: &[u8]| decode(b, &no_functions).map_or("?".to_string(), |v| repr(&v));
            let entries = crate::sync::dict::SharedMap(off).entries().unwrap_or_default();
            let entries: Vec<String> = entries.iter().map(|(k, v)| format!("{}: {}", text(k), text(v))).collect();
            format!("<shared {{{}}}>", entries.join(", "))
        }
    }
}

fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr` of a float: shortest round-trip digits, scientific
/// notation below 1e-4 and from 1e16 on.
pub fn float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // `{:e}` gives the shortest digits that read back, e.g. "1.5e-7".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let text = format!("{f}");
        if text.contains('.') { text } else { text + ".0" }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// `{value:spec}` in an interpolated string.
pub fn with_spec(value: &Value, spec: &FormatSpec) -> String {
    let body = match (value, spec.precision) {
        // `nan` and `inf` read the same with or without a precision.
        (Value::Float(f), Some(_)) if !f.is_finite() => float(*f),
        (Value::Float(f), Some(p)) => format!("{f:.p$}"),
        (Value::Int(n), Some(p)) => format!("{:.p$}", *n as f64),
        _ => display(value),
    };
    let len = body.chars().count();
    if len >= spec.width {
        return body;
    }
    let pad = spec.width - len;
    let numeric = matches!(value, Value::Int(_) | Value::Float(_));
    if spec.zero && spec.align.is_none() && numeric {
        let (sign, digits) = match body.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", body.as_str()),
        };
        return format!("{sign}{}{digits}", "0".repeat(pad));
    }
    let fill = spec.fill.unwrap_or(' ').to_string();
    let align = spec.align.unwrap_or(if numeric { Align::Right } else { Align::Left });
    match align {
        Align::Left => body + &fill.repeat(pad),
        Align::Right => fill.repeat(pad) + &body,
        Align::Center => fill.repeat(pad / 2) + &body + &fill.repeat(pad - pad / 2),
    }
}

/// `a, b and c`: names listed in a help line.
pub fn english_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `b'a\x00\n'`, as Python writes bytes: printable ASCII as it is, the
/// rest escaped. Past [`MAX_LEN`] the writer cuts the text short anyway.
fn bytes_literal(out: &mut String, bytes: &[u8]) {
    out.push_str("b'");
    for &byte in bytes.iter().take(MAX_LEN) {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(byte as char),
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    out.push('\'');
}
