//! The help line for a method or field that does not exist: the concsh
//! form of a habit from Python (`q.put(x)` is `put x into q`, `xs.append`
//! is `xs.push`), else the nearest real name.

use super::methods::members;
use crate::runtime::Value;
use crate::runtime::handle::HandleKind;

/// Help for `recv.name(...)` (`call`) or `recv.name`, which do not exist.
pub fn help_for(recv: &Value, name: &str, call: bool) -> Option<String> {
    if let Some(form) = habit(recv, name) {
        return Some(form.to_string());
    }
    let members = members(recv);
    if call && members.iter().any(|m| m == name) {
        return Some(format!("`{name}` is a field, not a method: write `.{name}` without `()`"));
    }
    nearest(name, &members).map(|near| format!("did you mean `{near}`?"))
}

/// The concsh form of a method other languages have.
fn habit(recv: &Value, name: &str) -> Option<&'static str> {
    let kind = match recv {
        Value::Handle(h) => Some(h.kind()),
        _ => None,
    };
    Some(match (recv, kind, name) {
        (Value::List(_), _, "append") => "a list grows with `xs.push(x)`",
        (Value::List(_), _, "sort") => "`sorted(xs)` gives a sorted copy",
        (Value::List(_), _, "reverse") => "`reversed(xs)` gives a reversed copy",
        (Value::List(_) | Value::Str(_) | Value::Map(_), _, "len" | "__len__") => "the length is `len(x)`",
        (Value::Str(_), _, "startswith") => "did you mean `starts_with`?",
        (Value::Str(_), _, "endswith") => "did you mean `ends_with`?",
        (Value::Str(_), _, "format") => "interpolate instead: \"{x} and {y:.2}\"",
        (Value::Map(_), _, "has_key" | "contains" | "__contains__") => "test a key with `key in m`",
        (_, Some(HandleKind::Queue | HandleKind::Pipe), "put" | "put_nowait" | "send") => {
            "sending is a statement: `put x into q` (`nowait` and `timeout 2` go after it)"
        }
        (_, Some(HandleKind::Queue | HandleKind::Pipe), "get" | "get_nowait" | "recv") => {
            "receiving is an expression: `get q` (`get q timeout 2`, `get q nowait`)"
        }
        (_, Some(HandleKind::Queue | HandleKind::Pipe), "close") => "closing is a statement: `close q`",
        (_, Some(HandleKind::Queue), "qsize") => "the size is the field `q.size`",
        (_, Some(HandleKind::Queue), "empty" | "full") => "`q.empty` and `q.full` are fields: no `()`",
        (_, Some(HandleKind::Lock | HandleKind::Semaphore | HandleKind::Condition), "acquire") => {
            "taking it is a statement: `acquire m`, or `lock m { ... }` to release it however the block ends"
        }
        (_, Some(HandleKind::Lock | HandleKind::Semaphore | HandleKind::Condition), "release") => {
            "giving it back is a statement: `release m`"
        }
        (_, Some(HandleKind::Event), "set") => "setting is a statement: `set e`",
        (_, Some(HandleKind::Event), "clear") => "clearing is a statement: `clear e`",
        (_, Some(HandleKind::Event | HandleKind::Condition), "wait") => {
            "waiting is an expression: `wait e` (`wait e timeout 2` is true if it came)"
        }
        (_, Some(HandleKind::Condition), "notify") => "notifying is a statement: `notify c`",
        (_, Some(HandleKind::Condition), "notify_all" | "notifyAll") => "notifying all is a statement: `notify all c`",
        (Value::Task(_) | Value::Pool(_), _, "join") => "joining is an expression: `join t` (`join t timeout 2`)",
        (Value::Task(_) | Value::Pool(_), _, "terminate" | "kill") => "ending it is a statement: `terminate t`",
        (Value::Task(_), _, "start" | "run") => "a task starts when it is made: `let t = thread f(x)`",
        (Value::Task(_), _, "is_alive") => "`t.alive` is a field: no `()`",
        (Value::Pool(_), _, "close") => "closing is a statement: `close pl`",
        (Value::Pool(_), _, "map" | "imap" | "starmap" | "map_async") => {
            "mapping is an expression: `pool pl map f over xs`"
        }
        (Value::Pool(_), _, "apply_async" | "submit" | "apply") => "a task for a pool is `submit f(x) to pl`, a future",
        (Value::Future(_), _, "get" | "result" | "wait") => "a future's value is `join f` (`join f timeout 2`)",
        _ => return None,
    })
}

/// The member closest to `name`, if one is close enough to be a typo.
fn nearest<'a>(name: &str, members: &'a [String]) -> Option<&'a str> {
    members
        .iter()
        .map(|m| (strsim::damerau_levenshtein(name, m), m))
        .filter(|(distance, m)| *distance <= (m.len() / 3).clamp(1, 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, m)| m.as_str())
}
