//! Methods: `xs.push(v)`, `s.split(",")`, `m.get(k, d)`. A map whose
//! entry holds a function can be called like an object: `m.greet("x")`.

use super::call::ArgValues;
use super::ops::{self, MAX_LEN, too_large};
use super::{Interp, R};
use crate::runtime::Str;
use crate::runtime::error::{ErrorValue, Fault, Kind, type_error, value_error};
use crate::runtime::format;
use crate::runtime::value::{Key, ListRef, MapRef, StrKey, Value};
use crate::syntax::Span;

impl<'p> Interp<'p> {
    #[inline(never)]
    pub(crate) fn method(&mut self, recv: &Value, name: &str, args: ArgValues, span: Span) -> R<Value> {
        if let Value::Map(map) = recv {
            let stored = map.lock().get(&StrKey(name)).cloned();
            if let Some(callee @ (Value::Func(_) | Value::Builtin(_))) = stored {
                if self.racing {
                    self.race_field(recv, name, crate::observe::race::Access::Read, span);
                }
                return self.call_value(&callee, args, span);
            }
        }
        if self.racing {
            self.race_method(recv, name, args.positional.first(), span);
        }
        args.no_more_named(name)?;
        let args = args.positional;
        Ok(match recv {
            Value::List(list) => list_method(list, name, args)?,
            Value::Str(s) => string_method(s, name, args)?,
            Value::Bytes(b) => bytes_method(b, name, args)?,
            Value::Map(map) => map_method(map, name, args)?,
            Value::Handle(h) => match self.shared_method(h.handle(), name, args) {
                Some(result) => result?,
                None => return Err(no_method(recv, name).into()),
            },
            other => return Err(no_method(other, name).into()),
        })
    }
}

const LIST_METHODS: &[&str] = &["push", "pop", "insert", "remove", "index", "extend", "clear", "copy"];
const STRING_METHODS: &[&str] =
    &["upper", "lower", "strip", "split", "join", "replace", "starts_with", "ends_with", "find", "encode"];
const BYTES_METHODS: &[&str] = &["decode", "hex"];
const MAP_METHODS: &[&str] = &["get", "remove", "keys", "values", "items"];
const ERROR_FIELDS: &[&str] = &["kind", "message", "value", "cause", "line", "file", "trace"];

/// `s` cut at each `byte`, an ASCII character (so each cut falls between
/// two characters).
fn split_at_byte(s: &str, byte: u8) -> Vec<Value> {
    let mut parts = Vec::new();
    let mut start = 0;
    for at in memchr::memchr_iter(byte, s.as_bytes()) {
        parts.push(Value::str(&s[start..at]));
        start = at + 1;
    }
    parts.push(Value::str(&s[start..]));
    parts
}

/// What may follow `value.`: its fields and methods (a map's string keys
/// too). Completion at the prompt offers these.
pub fn members(value: &Value) -> Vec<String> {
    let names: &[&str] = match value {
        Value::List(_) => LIST_METHODS,
        Value::Str(_) => STRING_METHODS,
        Value::Bytes(_) => BYTES_METHODS,
        Value::Map(map) => {
            let mut names: Vec<String> = map
                .lock()
                .keys()
                .filter_map(|k| match k.to_value() {
                    Value::Str(s) => Some(s.to_string()),
                    _ => None,
                })
                .collect();
            names.extend(MAP_METHODS.iter().map(|m| m.to_string()));
            return names;
        }
        Value::Error(_) => ERROR_FIELDS,
        Value::Task(_) => crate::runtime::task::TASK_FIELDS,
        Value::Handle(h) => {
            let methods = match h.kind() {
                crate::sync::handle::HandleKind::Array => super::shared::LIST_METHODS,
                crate::sync::handle::HandleKind::Map => super::shared::MAP_METHODS,
                _ => &[],
            };
            return h.kind().fields().iter().chain(methods).map(|m| m.to_string()).collect();
        }
        Value::Pool(_) => &["size", "closed"],
        Value::Future(_) => &["ready"],
        Value::Cell(cell) => return members(&cell.lock()),
        _ => &[],
    };
    names.iter().map(|n| n.to_string()).collect()
}

fn no_method(recv: &Value, name: &str) -> Fault {
    let error = type_error(format!("{} has no method `{name}`", recv.type_name()));
    match super::suggest::help_for(recv, name, true) {
        Some(help) => error.with_help(help),
        None => error,
    }
}

/// Checks the argument count of a method.
pub(super) fn want(name: &str, args: &[Value], min: usize, max: usize) -> Result<(), Fault> {
    if args.len() < min || args.len() > max {
        return Err(type_error(crate::resolve::arity_message(name, min, max, args.len())));
    }
    Ok(())
}

fn string_arg<'a>(name: &str, value: &'a Value) -> Result<&'a str, Fault> {
    match value {
        Value::Str(s) => Ok(s),
        other => Err(type_error(format!("`{name}` takes a string, not {}", other.type_name()))),
    }
}

/// `sep.join(items)` when every item is a string; `None` otherwise.
fn join_strings(items: &[Value], sep: &str) -> Option<Result<Str, Fault>> {
    let mut len = sep.len().saturating_mul(items.len().saturating_sub(1));
    for item in items {
        match item {
            Value::Str(s) => len = len.saturating_add(s.len()),
            _ => return None,
        }
    }
    let parts = items.iter().map(|item| if let Value::Str(s) = item { s.as_str() } else { "" });
    Some(Str::joined(len, sep, parts))
}

fn list_method(list: &ListRef, name: &str, mut args: Vec<Value>) -> Result<Value, Fault> {
    // Every name here is in `LIST_METHODS`.
    let arity = match name {
        "push" | "remove" | "index" | "extend" => (1, 1),
        "pop" => (0, 1),
        "insert" => (2, 2),
        "clear" | "copy" => (0, 0),
        _ => return Err(no_method(&Value::List(list.clone()), name)),
    };
    want(name, &args, arity.0, arity.1)?;
    // `extend` may be given the list itself: copy it before locking.
    if name == "extend" {
        let more = match &args[0] {
            Value::List(other) => other.lock().clone(),
            other => {
                return Err(type_error(format!("`extend` takes a list, not {}", other.type_name())));
            }
        };
        let mut items = list.lock();
        if items.len() + more.len() > MAX_LEN {
            return Err(too_large("list"));
        }
        items.extend(more);
        return Ok(Value::Nil);
    }
    let mut items = list.lock();
    match name {
        "push" => {
            if items.len() >= MAX_LEN {
                return Err(too_large("list"));
            }
            items.push(args.remove(0));
            Ok(Value::Nil)
        }
        "pop" => {
            if items.is_empty() {
                return Err(ErrorValue::new(Kind::Index, "pop from an empty list"));
            }
            let at = match args.first() {
                Some(i) => list_position(i, items.len())?,
                None => items.len() - 1,
            };
            Ok(items.remove(at))
        }
        "insert" => {
            let len = items.len() as i64;
            let at = match &args[0] {
                Value::Int(i) if *i < 0 => (i + len).max(0),
                Value::Int(i) => (*i).min(len),
                other => {
                    return Err(type_error(format!("`insert` needs an int position, not {}", other.type_name())));
                }
            };
            items.insert(at as usize, args.remove(1));
            Ok(Value::Nil)
        }
        "remove" => match items.iter().position(|v| v.equals(&args[0])) {
            Some(at) => {
                items.remove(at);
                Ok(Value::Nil)
            }
            None => Err(value_error(format!("{} is not in the list", format::repr(&args[0])))),
        },
        "index" => match items.iter().position(|v| v.equals(&args[0])) {
            Some(at) => Ok(Value::Int(at as i64)),
            None => Err(value_error(format!("{} is not in the list", format::repr(&args[0])))),
        },
        "clear" => {
            items.clear();
            Ok(Value::Nil)
        }
        _ => Ok(Value::list(items.to_vec())),
    }
}

fn list_position(index: &Value, len: usize) -> Result<usize, Fault> {
    match index {
        Value::Int(i) => {
            let at = if *i < 0 { i + len as i64 } else { *i };
            if at < 0 || at >= len as i64 {
                return Err(ErrorValue::new(Kind::Index, format!("pop index {i} out of range for length {len}")));
            }
            Ok(at as usize)
        }
        other => Err(type_error(format!("list indices must be ints, not {}", other.type_name()))),
    }
}

/// `b.decode()` (UTF-8, strictly) and `b.hex()`.
fn bytes_method(b: &[u8], name: &str, args: Vec<Value>) -> Result<Value, Fault> {
    want(name, &args, 0, 0)?;
    match name {
        "decode" => match std::str::from_utf8(b) {
            // Bytes may pass the longest string by a few: an error, not an abort.
            Ok(text) => Ok(Value::Str(crate::runtime::Str::copied(text)?)),
            Err(e) => {
                Err(value_error(format!("the bytes are not UTF-8 text (invalid byte at offset {})", e.valid_up_to())))
            }
        },
        "hex" => Ok(Value::str(&b.iter().map(|byte| format!("{byte:02x}")).collect::<String>())),
        _ => Err(no_method(&Value::bytes(Vec::new()), name)),
    }
}

fn string_method(s: &str, name: &str, args: Vec<Value>) -> Result<Value, Fault> {
    let text = |t: String| Ok(Value::Str(t.into()));
    match name {
        "encode" => {
            want(name, &args, 0, 0)?;
            Ok(Value::bytes(s.as_bytes().to_vec()))
        }
        "upper" | "lower" | "strip" => {
            want(name, &args, 0, 0)?;
            match name {
                "upper" => text(s.to_uppercase()),
                "lower" => text(s.to_lowercase()),
                _ => text(s.trim().to_string()),
            }
        }
        "split" => {
            want(name, &args, 0, 1)?;
            let parts: Vec<Value> = match args.first() {
                None => s.split_whitespace().map(Value::str).collect(),
                Some(sep) => {
                    let sep = string_arg(name, sep)?;
                    if sep.is_empty() {
                        return Err(value_error("empty separator"));
                    }
                    // One ASCII character (the usual `,` or `\n`): found
                    // with the `memchr` crate's vector search, several
                    // times faster than a string search or `str::split`'s.
                    match sep.as_bytes() {
                        &[byte] => split_at_byte(s, byte),
                        _ => s.split(sep).map(Value::str).collect(),
                    }
                }
            };
            Ok(Value::list(parts))
        }
        "join" => {
            want(name, &args, 1, 1)?;
            let items = match &args[0] {
                Value::List(list) => {
                    let items = list.lock();
                    // Strings only: joined under the list's lock, with no
                    // copy of the list (no other lock is taken meanwhile).
                    if let Some(joined) = join_strings(&items, s) {
                        return joined.map(Value::Str);
                    }
                    items.clone()
                }
                other => {
                    return Err(type_error(format!("`join` takes a list, not {}", other.type_name())));
                }
            };
            let mut joined = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    joined.push_str(s);
                }
                // A string item is copied in place, not through a copy of its own.
                let shown;
                let part = match item {
                    Value::Str(text) => text.as_str(),
                    other => {
                        shown = format::display_checked(other, &|| false).map_err(|_| too_large("string"))?;
                        shown.as_str()
                    }
                };
                if joined.len() + part.len() > MAX_LEN {
                    return Err(too_large("string"));
                }
                joined.push_str(part);
            }
            text(joined)
        }
        "replace" => {
            want(name, &args, 2, 2)?;
            let (from, to) = (string_arg(name, &args[0])?, string_arg(name, &args[1])?);
            if from.is_empty() {
                return Err(value_error("cannot replace an empty string"));
            }
            let count = s.matches(from).count();
            // What is removed counts too: the result may be shorter than `s`.
            if (s.len() - count * from.len()).saturating_add(count.saturating_mul(to.len())) > MAX_LEN {
                return Err(too_large("string"));
            }
            text(s.replace(from, to))
        }
        "starts_with" | "ends_with" | "find" => {
            want(name, &args, 1, 1)?;
            let arg = string_arg(name, &args[0])?;
            Ok(match name {
                "starts_with" => Value::Bool(s.starts_with(arg)),
                "ends_with" => Value::Bool(s.ends_with(arg)),
                _ => Value::Int(s.find(arg).map_or(-1, |byte| s[..byte].chars().count() as i64)),
            })
        }
        _ => Err(no_method(&Value::str(s), name)),
    }
}

fn map_method(map: &MapRef, name: &str, args: Vec<Value>) -> Result<Value, Fault> {
    match name {
        "get" => {
            want(name, &args, 1, 2)?;
            let key = Key::from_value(&args[0]).ok_or_else(|| ops::unhashable(&args[0]))?;
            let found = map.lock().get(&key).cloned();
            Ok(found.unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::Nil)))
        }
        "remove" => {
            want(name, &args, 1, 1)?;
            let key = Key::from_value(&args[0]).ok_or_else(|| ops::unhashable(&args[0]))?;
            let removed = map.lock().shift_remove(&key);
            removed.ok_or_else(|| ops::missing_key(&args[0]))
        }
        "keys" | "values" | "items" => {
            want(name, &args, 0, 0)?;
            let map = map.lock();
            Ok(Value::list(match name {
                "keys" => map.key_values().collect(),
                "values" => map.values().cloned().collect(),
                _ => map.iter().map(|(k, v)| Value::list(vec![k.to_value(), v.clone()])).collect(),
            }))
        }
        _ => {
            let error = no_method(&Value::Map(map.clone()), name);
            Err(match error.help {
                Some(_) => error,
                None => error.with_help(format!("`m.{name}` reads the key \"{name}\"; it is not a function here")),
            })
        }
    }
}
