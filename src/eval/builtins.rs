//! The predefined functions, one arm each. Argument counts were checked
//! before the script ran where the call names the builtin directly; they
//! are checked again here for calls through a variable.

use std::cmp::Ordering;

use super::call::ArgValues;
use super::ops::{self, MAX_LEN, too_large};
use super::{Ctrl, Interp, R, sync_ops};
use crate::resolve::arity_message;
use crate::resolve::ir::{BinOp, Builtin};
use crate::runtime::error::{
    ErrorValue, Fault, Kind, io_error, overflow, past_limit, room_for, type_error, value_error,
};
use crate::runtime::format;
use crate::runtime::handle::HandleKind;
use crate::runtime::output::{self, Stream, Written};
use crate::runtime::progress::Bar;
use crate::runtime::stdin;
use crate::runtime::value::{Range, Value};
use crate::runtime::{files, json};
use crate::sync::board::{Op, What};
use crate::sync::cell::Headed;
use crate::syntax::Span;

impl<'p> Interp<'p> {
    #[inline(never)]
    pub(crate) fn builtin(&mut self, builtin: Builtin, mut args: ArgValues, span: Span) -> R<Value> {
        let (min, max) = builtin.arity();
        let given = args.positional.len();
        if given < min || given > max {
            return Err(type_error(arity_message(builtin.name(), min, max, given)).into());
        }
        let name = builtin.name();
        let Named { sep, end, key, reverse, duplex, threads, progress, cluster, indent, program } =
            Named::take(builtin, &mut args);
        args.no_more_named(name)?;
        let a = args.positional;
        let arg = |i: usize| a.get(i).cloned().unwrap_or(Value::Nil);
        Ok(match builtin {
            Builtin::Print | Builtin::Eprint => {
                let sep = text_or(sep, " ", "sep")?;
                let end = text_or(end, "\n", "end")?;
                let mut line = String::new();
                for (i, value) in a.iter().enumerate() {
                    if i > 0 {
                        line.push_str(&sep);
                    }
                    line.push_str(&self.text_of(value)?);
                    if line.len() > MAX_LEN {
                        return Err(too_large("printed line").into());
                    }
                }
                line.push_str(&end);
                let stream = if builtin == Builtin::Print { Stream::Stdout } else { Stream::Stderr };
                self.point(span);
                match output::write_line(stream, &line) {
                    // Nobody reads any more (`| head`): end quietly.
                    Written::Closed if stream == Stream::Stdout => return Err(Ctrl::Exit(0)),
                    Written::Failed(e) => {
                        let name = if stream == Stream::Stdout { "standard output" } else { "standard error" };
                        return Err(io_error(&format!("cannot write to {name}"), std::io::Error::from(e)).into());
                    }
                    Written::Ok | Written::Closed => Value::Nil,
                }
            }
            Builtin::Str => match a.first() {
                Some(value) => Value::Str(self.text_of(value)?.into()),
                None => Value::str(""),
            },
            Builtin::Int => to_int(&arg(0))?,
            Builtin::Float => to_float(&arg(0))?,
            Builtin::Bool => Value::Bool(arg(0).truthy()),
            Builtin::List => Value::list(match a.first() {
                Some(v) => items(v, name)?,
                None => Vec::new(),
            }),
            Builtin::Type => Value::str(arg(0).type_name()),
            Builtin::Len => {
                if self.racing {
                    self.race_size(&arg(0), span);
                }
                length(&arg(0))?
            }
            Builtin::Range => range(&a)?,
            Builtin::Run | Builtin::Sh => self.run_program(builtin, &a, program.unwrap_or_default(), span)?,
            Builtin::JsonEncode => {
                let indent = match indent {
                    None | Some(Value::Nil) => None,
                    Some(Value::Int(n)) if (0..=16).contains(&n) => Some(n as usize),
                    Some(other) => {
                        let message = format!("indent: takes 0 to 16 spaces, not {}", format::repr(&other));
                        return Err(value_error(message).into());
                    }
                };
                Value::Str(crate::runtime::Str::copied(&json::encode(&arg(0), indent)?)?)
            }
            Builtin::JsonDecode => json::decode(text_arg(&arg(0), name)?)?,
            Builtin::PathJoin => files::join(&a.iter().map(|p| text_arg(p, name)).collect::<Result<Vec<_>, _>>()?),
            Builtin::Basename => files::basename(text_arg(&a[0], name)?),
            Builtin::Dirname => files::dirname(text_arg(&a[0], name)?),
            Builtin::Ext => files::ext(text_arg(&a[0], name)?),
            Builtin::AbsPath => files::absolute(text_arg(&a[0], name)?)?,
            Builtin::FileSize => files::size(text_arg(&a[0], name)?)?,
            Builtin::IsFile => files::is_file(text_arg(&a[0], name)?),
            Builtin::IsDir => files::is_dir(text_arg(&a[0], name)?),
            Builtin::Walk => files::walk(text_arg(&a[0], name)?)?,
            Builtin::Rename => files::rename(text_arg(&a[0], name)?, text_arg(&a[1], name)?)?,
            Builtin::CopyFile => files::copy(text_arg(&a[0], name)?, text_arg(&a[1], name)?)?,
            Builtin::RemoveTree => files::remove_tree(text_arg(&a[0], name)?)?,
            Builtin::Abs => match arg(0) {
                Value::Int(n) => Value::Int(n.checked_abs().ok_or_else(overflow)?),
                Value::Float(f) => Value::Float(f.abs()),
                other => return Err(type_error(format!("abs of {}", other.type_name())).into()),
            },
            Builtin::Min | Builtin::Max => {
                let candidates = if a.len() == 1 { items(&a[0], name)? } else { a.clone() };
                let want = if builtin == Builtin::Min { Ordering::Less } else { Ordering::Greater };
                let keys = self.sort_keys(&candidates, key.as_ref(), span)?;
                let mut best: Option<usize> = None;
                for i in 0..candidates.len() {
                    let better = match best {
                        None => true,
                        Some(b) => ops::compare(&keys[i], &keys[b], BinOp::Lt)? == want,
                    };
                    if better {
                        best = Some(i);
                    }
                }
                match best {
                    Some(i) => candidates[i].clone(),
                    None => return Err(value_error(format!("`{name}` of an empty list")).into()),
                }
            }
            Builtin::Sum => {
                let (total, rest) = match &arg(0) {
                    Value::List(list) => sum_ints(&list.lock()),
                    other => (0, items(other, name)?),
                };
                let mut total = Value::Int(total);
                for item in rest {
                    total = ops::binary(BinOp::Add, &total, &item)?;
                }
                total
            }
            Builtin::Round => round(&arg(0), a.get(1))?,
            Builtin::Sorted => {
                let mut values = items(&arg(0), name)?;
                let reverse = reverse.is_some_and(|r| r.truthy());
                if key.is_none() && sort_alike(&mut values, reverse) {
                    return Ok(Value::list(values));
                }
                let keys = self.sort_keys(&values, key.as_ref(), span)?;
                let mut order: Vec<usize> = (0..values.len()).collect();
                let mut failure: Option<Fault> = None;
                order.sort_by(|&i, &j| {
                    ops::compare(&keys[i], &keys[j], BinOp::Lt).unwrap_or_else(|e| {
                        failure.get_or_insert(e);
                        Ordering::Equal
                    })
                });
                if let Some(e) = failure {
                    return Err(e.into());
                }
                if reverse {
                    // Reversing a stable ascending sort would reorder equal
                    // items; sort descending instead, as Python does.
                    order.sort_by(|&i, &j| ops::compare(&keys[j], &keys[i], BinOp::Lt).unwrap_or(Ordering::Equal));
                }
                let mut taken: Vec<Option<Value>> = values.drain(..).map(Some).collect();
                Value::list(order.into_iter().filter_map(|i| taken[i].take()).collect())
            }
            Builtin::Reversed => {
                let mut values = items(&arg(0), name)?;
                values.reverse();
                Value::list(values)
            }
            Builtin::Enumerate => Value::list(
                items(&arg(0), name)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| Value::list(vec![Value::Int(i as i64), v]))
                    .collect(),
            ),
            Builtin::Zip => {
                let lists = a.iter().map(|v| items(v, name)).collect::<Result<Vec<_>, _>>()?;
                let len = lists.iter().map(Vec::len).min().unwrap_or(0);
                Value::list((0..len).map(|i| Value::list(lists.iter().map(|l| l[i].clone()).collect())).collect())
            }
            Builtin::Keys | Builtin::Values => match &arg(0) {
                Value::Map(m) => {
                    let m = m.lock();
                    Value::list(match builtin {
                        Builtin::Keys => m.key_values().collect(),
                        _ => m.values().cloned().collect(),
                    })
                }
                other => {
                    return Err(type_error(format!("`{name}` takes a map, not {}", other.type_name())).into());
                }
            },
            Builtin::Error => {
                let (kind, message) = match (&a[..], a.len()) {
                    (_, 1) => ("Error".to_string(), format::display(&a[0])),
                    _ => (format::display(&a[0]), format::display(&a[1])),
                };
                if kind.is_empty() || !kind.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    return Err(value_error(format!("error kind must be a word, not {kind:?}")).into());
                }
                Value::Error(ErrorValue::custom(&kind, message).into())
            }
            Builtin::Assert => {
                if !arg(0).truthy() {
                    let message = match a.get(1) {
                        Some(m) => format!("assertion failed: {}", format::display(m)),
                        None => "assertion failed".to_string(),
                    };
                    return Err(ErrorValue::new(Kind::Error, message).into());
                }
                Value::Nil
            }
            Builtin::Sleep => {
                let seconds = sync_ops::seconds(&arg(0), name)?;
                let what = What { op: Op::Sleep, target: 0, span: (span.start, span.end) };
                self.cancel.sleep(seconds, Some(&self.proc.gate), what).map_err(|_| Ctrl::Cancelled)?;
                Value::Nil
            }
            Builtin::Time => {
                if let Some(virtual_now) = crate::observe::explore::time() {
                    return Ok(Value::Float(virtual_now));
                }
                let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
                    .map_err(|e| io_error("clock", e.into()))?;
                Value::Float(now.tv_sec() as f64 + now.tv_nsec() as f64 / 1e9)
            }
            Builtin::Now => Value::Str(chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string().into()),
            Builtin::Random => Value::Float(rng().f64()),
            Builtin::Randint => match (&a[0], &a[1]) {
                (Value::Int(lo), Value::Int(hi)) if lo <= hi => Value::Int(rng().i64(*lo..=*hi)),
                (Value::Int(_), Value::Int(_)) => {
                    return Err(value_error("randint needs a <= b").into());
                }
                _ => return Err(type_error("randint takes two ints").into()),
            },
            Builtin::Input => {
                if let Some(prompt) = a.first() {
                    output::write_line(Stream::Stdout, &format::display(prompt));
                }
                match stdin::read_line(&self.cancel, &self.proc.gate).map_err(|_| Ctrl::Cancelled)? {
                    stdin::Line::Text(line) => Value::Str(crate::runtime::Str::copied(&line)?),
                    stdin::Line::End => Value::Nil,
                }
            }
            Builtin::Args => Value::list(self.proc.args.iter().map(|s| Value::str(s)).collect()),
            Builtin::Env => {
                let name = text_arg(&a[0], name)?;
                match std::env::var(name) {
                    Ok(v) => Value::str(&v),
                    Err(_) => arg(1),
                }
            }
            Builtin::Exit => match a.first() {
                None | Some(Value::Nil) => return Err(Ctrl::Exit(0)),
                Some(Value::Int(code)) => return Err(Ctrl::Exit(*code as i32)),
                Some(Value::Bool(ok)) => return Err(Ctrl::Exit(i32::from(!ok))),
                Some(message) => {
                    output::write_line(Stream::Stderr, &(format::display(message) + "\n"));
                    return Err(Ctrl::Exit(1));
                }
            },
            Builtin::Pid => Value::Int(nix::unistd::getpid().as_raw() as i64),
            Builtin::Ppid => Value::Int(nix::unistd::getppid().as_raw() as i64),
            Builtin::CpuCount => Value::Int(std::thread::available_parallelism().map_or(1, |n| n.get()) as i64),
            Builtin::ReadFile => {
                let path = text_arg(&a[0], name)?;
                let bytes = files::read_at_most(path, crate::runtime::text::LONGEST, crate::runtime::text::too_long)?;
                match String::from_utf8(bytes) {
                    Ok(text) => Value::Str(crate::runtime::Str::copied(&text)?),
                    Err(_) => {
                        let error = ErrorValue::new(Kind::Io, format!("{path}: not UTF-8 text"))
                            .with_help("read_bytes(path) reads any file, as bytes");
                        return Err(error.into());
                    }
                }
            }
            Builtin::WriteFile | Builtin::AppendFile => {
                let path = text_arg(&a[0], name)?;
                write_out(path, format::display(&a[1]).as_bytes(), builtin == Builtin::AppendFile)?;
                Value::Nil
            }
            Builtin::ReadBytes => {
                let path = text_arg(&a[0], name)?;
                let past = || past_limit("bytes value", ops::MAX_BYTES);
                Value::bytes(files::read_at_most(path, ops::MAX_BYTES, past)?)
            }
            Builtin::WriteBytes | Builtin::AppendBytes => {
                let path = text_arg(&a[0], name)?;
                let Value::Bytes(bytes) = &a[1] else {
                    let message = format!("`{name}` writes bytes, not {}", a[1].type_name());
                    return Err(type_error(message).with_help("`s.encode()` makes bytes of text").into());
                };
                write_out(path, bytes, builtin == Builtin::AppendBytes)?;
                Value::Nil
            }
            Builtin::Bytes => make_bytes(a.first())?,
            Builtin::ListDir => {
                let path = match a.first() {
                    Some(p) => text_arg(p, name)?,
                    None => ".",
                };
                let entries = std::fs::read_dir(path).map_err(|e| io_error(path, e))?;
                let mut names: Vec<String> =
                    entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
                names.sort();
                Value::list(names.iter().map(|n| Value::str(n)).collect())
            }
            Builtin::Mkdir => {
                let path = text_arg(&a[0], name)?;
                std::fs::create_dir_all(path).map_err(|e| io_error(path, e))?;
                Value::Nil
            }
            Builtin::Exists => Value::Bool(std::path::Path::new(text_arg(&a[0], name)?).exists()),
            Builtin::Queue => sync_ops::make(HandleKind::Queue, &a)?,
            Builtin::Lock => sync_ops::make(HandleKind::Lock, &a)?,
            Builtin::Semaphore => sync_ops::make(HandleKind::Semaphore, &a)?,
            Builtin::Condition => sync_ops::make(HandleKind::Condition, &a)?,
            Builtin::Event => sync_ops::make(HandleKind::Event, &a)?,
            Builtin::Pool => {
                let threads = threads.is_some_and(|t| t.truthy());
                let bar = match progress {
                    None | Some(Value::Bool(true)) => Bar::Plain,
                    Some(Value::Bool(false)) => Bar::Off,
                    Some(Value::Str(label)) => Bar::Labelled(label.as_ref().into()),
                    Some(other) => {
                        let message = format!("progress: takes a label or true/false, not {}", other.type_name());
                        return Err(type_error(message).into());
                    }
                };
                let cluster = match cluster {
                    Some(Value::Str(url)) => Some(url.to_string()),
                    None | Some(Value::Nil) => (!threads).then(crate::cluster::bridge::default_cluster).flatten(),
                    Some(Value::Bool(false)) => None,
                    Some(other) => {
                        let message = format!("cluster: takes a redis:// URL, not {}", other.type_name());
                        return Err(type_error(message).into());
                    }
                };
                Value::Pool(self.make_pool(a.first(), threads, bar, cluster, span)?)
            }
            Builtin::Pipe => sync_ops::make(HandleKind::Pipe, &duplex.into_iter().collect::<Vec<_>>())?,
            Builtin::Shared => sync_ops::make(HandleKind::Cell, &a)?,
            Builtin::ThreadLocal => Value::ThreadLocal(Default::default()),
            Builtin::Current => Value::Task(self.task.clone()),
            Builtin::Active => self.active(),
            Builtin::Remove => {
                let path = text_arg(&a[0], name)?;
                let result = match std::fs::symlink_metadata(path) {
                    Ok(meta) if meta.is_dir() => std::fs::remove_dir(path),
                    _ => std::fs::remove_file(path),
                };
                result.map_err(|e| io_error(path, e))?;
                Value::Nil
            }
        })
    }

    /// The sort key of each value: the value itself, or `key(value)`.
    fn sort_keys(&mut self, values: &[Value], key: Option<&Value>, span: Span) -> R<Vec<Value>> {
        match key {
            None | Some(Value::Nil) => Ok(values.to_vec()),
            Some(key) => {
                values.iter().map(|v| self.call_value(key, ArgValues::positional(vec![v.clone()]), span)).collect()
            }
        }
    }
}

/// The named arguments builtins take; any other is an error.
struct Named {
    sep: Option<Value>,
    end: Option<Value>,
    key: Option<Value>,
    reverse: Option<Value>,
    duplex: Option<Value>,
    threads: Option<Value>,
    progress: Option<Value>,
    /// `pool(n, cluster: "redis://...")`.
    cluster: Option<Value>,
    indent: Option<Value>,
    /// `run` and `sh`'s.
    program: Option<super::programs::Options>,
}

impl Named {
    fn take(builtin: Builtin, args: &mut ArgValues) -> Named {
        let mut named = Named {
            sep: None,
            end: None,
            key: None,
            reverse: None,
            duplex: None,
            threads: None,
            progress: None,
            cluster: None,
            indent: None,
            program: None,
        };
        match builtin {
            Builtin::Print | Builtin::Eprint => {
                named.sep = args.take_named("sep");
                named.end = args.take_named("end");
            }
            Builtin::Sorted | Builtin::Min | Builtin::Max => {
                named.key = args.take_named("key");
                named.reverse = args.take_named("reverse");
            }
            Builtin::Pipe => named.duplex = args.take_named("duplex"),
            Builtin::JsonEncode => named.indent = args.take_named("indent"),
            Builtin::Run | Builtin::Sh => named.program = Some(super::programs::Options::take(args)),
            Builtin::Pool => {
                named.threads = args.take_named("threads");
                named.progress = args.take_named("progress");
                named.cluster = args.take_named("cluster");
            }
            _ => {}
        }
        named
    }
}

/// The sum of a list's leading ints, read in place under its lock, and
/// copies of the items from the first other one on (added outside the
/// lock: an error message may show a list, this one included).
fn sum_ints(items: &[Value]) -> (i64, Vec<Value>) {
    let mut total: i64 = 0;
    for (at, item) in items.iter().enumerate() {
        match item {
            Value::Int(n) if let Some(sum) = total.checked_add(*n) => total = sum,
            _ => return (total, items[at..].to_vec()),
        }
    }
    (total, Vec::new())
}

/// Sorts a list of only ints or only strings in place, comparing them
/// directly (the general sort goes through an order of indices and a
/// comparison that checks types). Equal ints or strings cannot be told
/// apart, so stability and reversing after sorting do not matter here.
/// `false`: the list is of other values, left as it was.
fn sort_alike(values: &mut [Value], reverse: bool) -> bool {
    if values.iter().all(|v| matches!(v, Value::Int(_))) {
        sort_ints(values);
    } else if values.iter().all(|v| matches!(v, Value::Str(_))) {
        values.sort_unstable_by(|a, b| match (a, b) {
            (Value::Str(x), Value::Str(y)) => x.as_str().cmp(y.as_str()),
            _ => Ordering::Equal,
        });
    } else {
        return false;
    }
    if reverse {
        values.reverse();
    }
    true
}

/// Sorts values that are all ints: as bare `i64`s when there is memory
/// for a copy (half the bytes to move, and a primitive compare), else in
/// place.
fn sort_ints(values: &mut [Value]) {
    let int = |v: &Value| match v {
        Value::Int(n) => *n,
        _ => 0,
    };
    let mut ints: Vec<i64> = Vec::new();
    if ints.try_reserve_exact(values.len()).is_err() {
        values.sort_unstable_by_key(int);
        return;
    }
    ints.extend(values.iter().map(int));
    ints.sort_unstable();
    for (value, n) in values.iter_mut().zip(ints) {
        *value = Value::Int(n);
    }
}

fn text_or(value: Option<Value>, default: &str, what: &str) -> Result<String, Fault> {
    match value {
        None | Some(Value::Nil) => Ok(default.to_string()),
        Some(Value::Str(s)) => Ok(s.to_string()),
        Some(other) => Err(type_error(format!("`{what}` must be a string, not {}", other.type_name()))),
    }
}

fn text_arg<'a>(value: &'a Value, builtin: &str) -> Result<&'a str, Fault> {
    match value {
        Value::Str(s) => Ok(s),
        other => Err(type_error(format!("`{builtin}` takes a string, not {}", other.type_name()))),
    }
}

/// The items of anything `for` can walk, as a list.
fn items(value: &Value, builtin: &str) -> Result<Vec<Value>, Fault> {
    Ok(match value {
        Value::List(l) => l.lock().to_vec(),
        Value::Map(m) => m.lock().key_values().collect(),
        Value::Str(s) => s.chars().map(|c| Value::Str(c.to_string().into())).collect(),
        Value::Range(r) => {
            if r.len() > MAX_LEN {
                return Err(too_large("list"));
            }
            let mut items = room_for(r.len(), "list")?;
            items.extend((0..r.len()).map(|i| Value::Int(r.get(i))));
            items
        }
        other => {
            return Err(type_error(format!("`{builtin}` needs a list, not {}", other.type_name())));
        }
    })
}

fn int_arg(value: &Value) -> Result<i64, Fault> {
    match value {
        Value::Int(n) => Ok(*n),
        other => Err(type_error(format!("range takes ints, not {}", other.type_name()))),
    }
}

fn range(args: &[Value]) -> Result<Value, Fault> {
    let (start, stop, step) = match args {
        [stop] => (0, int_arg(stop)?, 1),
        [start, stop] => (int_arg(start)?, int_arg(stop)?, 1),
        [start, stop, step] => (int_arg(start)?, int_arg(stop)?, int_arg(step)?),
        _ => return Err(type_error("range takes 1 to 3 ints")),
    };
    if step == 0 {
        return Err(value_error("range step must not be zero"));
    }
    Ok(Value::Range(Range { start, stop, step }.into()))
}

fn to_int(value: &Value) -> Result<Value, Fault> {
    Ok(Value::Int(match value {
        Value::Int(n) => *n,
        Value::Bool(b) => i64::from(*b),
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(value_error(format!("cannot convert {} to int", format::float(*f))));
            }
            if f.abs() >= 9.223372036854776e18 {
                return Err(overflow());
            }
            f.trunc() as i64
        }
        Value::Str(s) => {
            let text = s.trim().replace('_', "");
            text.parse::<i64>().map_err(|e| match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => overflow(),
                _ => value_error(format!("invalid int: {}", format::repr(value))),
            })?
        }
        other => {
            return Err(type_error(format!("cannot convert {} to int", other.type_name())));
        }
    }))
}

fn to_float(value: &Value) -> Result<Value, Fault> {
    Ok(Value::Float(match value {
        Value::Int(n) => *n as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => {
            s.trim().parse::<f64>().map_err(|_| value_error(format!("invalid float: {}", format::repr(value))))?
        }
        other => {
            return Err(type_error(format!("cannot convert {} to float", other.type_name())));
        }
    }))
}

/// Python's `round`: halves go to the even neighbour; with `digits`, a float.
fn round(value: &Value, digits: Option<&Value>) -> Result<Value, Fault> {
    let x = match value {
        Value::Int(n) => return Ok(Value::Int(*n)),
        Value::Float(f) => *f,
        other => return Err(type_error(format!("cannot round {}", other.type_name()))),
    };
    match digits {
        None | Some(Value::Nil) => {
            let r = x.round_ties_even();
            if !r.is_finite() || r.abs() >= 9.223372036854776e18 {
                return Err(overflow());
            }
            Ok(Value::Int(r as i64))
        }
        Some(Value::Int(d)) if (0..=15).contains(d) => {
            // Formatting rounds the exact binary value, as Python does.
            let text = format!("{x:.prec$}", prec = *d as usize);
            Ok(Value::Float(text.parse().unwrap_or(x)))
        }
        Some(Value::Int(d)) if *d < 0 => {
            let scale = 10f64.powi((-d).min(300) as i32);
            Ok(Value::Float((x / scale).round_ties_even() * scale))
        }
        Some(Value::Int(_)) => Ok(Value::Float(x)),
        Some(other) => Err(type_error(format!("round digits must be an int, not {}", other.type_name()))),
    }
}

fn length(value: &Value) -> Result<Value, Fault> {
    Ok(Value::Int(match value {
        Value::Handle(h) if h.kind() == HandleKind::Queue => crate::sync::queue::Queue(h.off()).len(),
        Value::RemoteQueue(q) => q.size()?,
        Value::Handle(h) if h.kind() == HandleKind::Array => crate::sync::cell::SharedCells(h.off()).len(),
        Value::Handle(h) if h.kind() == HandleKind::Map => crate::sync::dict::SharedMap(h.off()).len(),
        Value::Str(s) => s.chars().count(),
        Value::Bytes(b) => b.len(),
        Value::List(l) => l.lock().len(),
        Value::Map(m) => m.lock().len(),
        // A range's length can pass the largest int.
        Value::Range(r) => return Ok(Value::Int(i64::try_from(r.len()).map_err(|_| overflow())?)),
        other => return Err(type_error(format!("{} has no length", other.type_name()))),
    } as i64))
}

/// Where `random()` draws from: the schedule's seed in a controlled run
/// (`--explore`, `--seed`), else this thread's generator.
fn rng() -> fastrand::Rng {
    match crate::observe::explore::random() {
        Some(seed) => fastrand::Rng::with_seed(seed),
        None => fastrand::Rng::new(),
    }
}

/// Writes `bytes` to the file at `path`, replacing it or (`append`) at its end.
fn write_out(path: &str, bytes: &[u8], append: bool) -> Result<(), Fault> {
    use std::io::Write;
    let result = match append {
        false => std::fs::write(path, bytes),
        true => std::fs::OpenOptions::new().append(true).create(true).open(path).and_then(|mut f| f.write_all(bytes)),
    };
    result.map_err(|e| io_error(path, e))
}

/// `bytes()`, `bytes("text")` (its UTF-8), `bytes([104, 105])`, `bytes(n)`
/// (n zero bytes), `bytes(b)`.
fn make_bytes(from: Option<&Value>) -> Result<Value, Fault> {
    Ok(match from {
        None => Value::bytes(Vec::new()),
        Some(Value::Str(s)) => Value::bytes(s.as_bytes().to_vec()),
        Some(Value::Bytes(b)) => Value::Bytes(b.clone()),
        Some(Value::Int(n)) => {
            let n = usize::try_from(*n).map_err(|_| value_error(format!("bytes({n}): a length cannot be negative")))?;
            let mut bytes = ops::byte_room(n)?;
            bytes.resize(n, 0);
            Value::bytes(bytes)
        }
        Some(Value::List(list)) => {
            let items = list.lock().clone();
            let mut bytes = ops::byte_room(items.len())?;
            for item in &items {
                match item {
                    Value::Int(n) => {
                        bytes.push(u8::try_from(*n).map_err(|_| value_error(format!("a byte is 0 to 255, not {n}")))?)
                    }
                    other => return Err(type_error(format!("bytes are made of ints, not {}", other.type_name()))),
                }
            }
            Value::bytes(bytes)
        }
        Some(other) => {
            return Err(type_error(format!(
                "bytes() takes a string, a list of ints or a length, not {}",
                other.type_name()
            )));
        }
    })
}
