//! How values print: `print` and `str` show a string as its text, inside
//! containers strings are quoted; floats take the shortest form that reads
//! back, keeping `.0` on whole numbers (`2.0`, `0.1`, `1e+20`, as Python).

use std::fmt::Write;
use std::sync::Arc;

use crate::syntax::ast::{Align, FormatSpec};

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

/// The text of a value inside a container (strings quoted).
pub fn repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, value, &mut Vec::new());
    out
}

/// `seen` holds the containers being written, so a list that contains
/// itself prints `[...]` instead of recursing forever.
fn write_repr(out: &mut String, value: &Value, seen: &mut Vec<usize>) {
    match value {
        Value::Nil | Value::Unset => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Float(f) => out.push_str(&float(*f)),
        Value::Str(s) => quote(out, s),
        Value::List(list) => {
            let id = Arc::as_ptr(list) as usize;
            if seen.contains(&id) {
                return out.push_str("[...]");
            }
            let items = list.lock().clone();
            seen.push(id);
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item, seen);
            }
            out.push(']');
            seen.pop();
        }
        Value::Map(map) => {
            let id = Arc::as_ptr(map) as usize;
            if seen.contains(&id) {
                return out.push_str("{...}");
            }
            let entries = map.lock().clone();
            seen.push(id);
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, &k.to_value(), seen);
                out.push_str(": ");
                write_repr(out, v, seen);
            }
            out.push('}');
            seen.pop();
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
            write_repr(out, &inner, seen);
        }
        Value::Task(task) => out.push_str(&task_text(task)),
        Value::Handle(handle) => out.push_str(&handle_text(*handle)),
        Value::ThreadLocal(_) => out.push_str("<threadlocal>"),
        Value::Pool(pool) => {
            let kind = if pool.threads { "threads" } else { "processes" };
            let state = if pool.is_closed() { " closed" } else { "" };
            let _ = write!(out, "<pool {} {kind}{state}>", pool.size);
        }
        Value::Future(f) => out.push_str(if f.is_ready() { "<future ready>" } else { "<future pending>" }),
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
