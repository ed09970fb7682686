//! Operators, indexing and fields, with Python's arithmetic: `/` gives a
//! float, `//` floors, `%` takes the sign of the divisor, int overflow is an
//! error, and comparing unrelated types with `<` is a TypeError.

use std::cmp::Ordering;

use crate::resolve::ir::{BinOp, UnOp};
use crate::runtime::Str;
use crate::runtime::error::{
    ErrorValue, Fault, Kind, out_of_memory, overflow, past_limit, room_for, text_room, type_error, value_error,
};
use crate::runtime::format;
use crate::runtime::value::{Key, StrKey, Value};

pub use crate::runtime::error::{MAX_LEN, too_large};

#[inline]
pub fn binary(op: BinOp, a: &Value, b: &Value) -> Result<Value, Fault> {
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        if let Some(value) = int_binary(op, *x, *y) {
            return Ok(value);
        }
        return match op {
            BinOp::Add | BinOp::Sub | BinOp::Mul => Err(overflow()),
            BinOp::Div | BinOp::FloorDiv | BinOp::Mod | BinOp::Pow => int_op(op, *x, *y),
            // `in` and the rest: the general path says what is wrong.
            _ => general(op, a, b),
        };
    }
    general(op, a, b)
}

/// `x op y` for ints, for the operators whose int case cannot fail but by
/// overflowing (`None`: [`binary`] decides, and reports). The VM's
/// dispatch loop runs it inline: out of line, each result came back
/// through memory and stalled the next op's read of it.
#[inline(always)]
pub fn int_binary(op: BinOp, x: i64, y: i64) -> Option<Value> {
    Some(match op {
        BinOp::Add => Value::Int(x.checked_add(y)?),
        BinOp::Sub => Value::Int(x.checked_sub(y)?),
        BinOp::Mul => Value::Int(x.checked_mul(y)?),
        // Python's sign rule, for the usual positive divisor.
        BinOp::Mod if y > 0 => Value::Int(x.rem_euclid(y)),
        BinOp::Lt => Value::Bool(x < y),
        BinOp::Le => Value::Bool(x <= y),
        BinOp::Gt => Value::Bool(x > y),
        BinOp::Ge => Value::Bool(x >= y),
        BinOp::Eq => Value::Bool(x == y),
        BinOp::Ne => Value::Bool(x != y),
        _ => return None,
    })
}

/// `current op= rhs`, in place: `s += t` appends to a string nothing else
/// holds, so a loop of appends takes linear time, not quadratic.
#[inline]
pub fn update(op: BinOp, current: &mut Value, rhs: &Value) -> Result<(), Fault> {
    match (op, &mut *current, rhs) {
        (BinOp::Add, Value::Int(x), Value::Int(y)) => {
            *x = x.checked_add(*y).ok_or_else(overflow)?;
            return Ok(());
        }
        (BinOp::Add, Value::Str(s), Value::Str(tail)) => return s.append(tail),
        _ => {}
    }
    *current = binary(op, current, rhs)?;
    Ok(())
}

fn general(op: BinOp, a: &Value, b: &Value) -> Result<Value, Fault> {
    match op {
        BinOp::Eq => Ok(Value::Bool(a.equals(b))),
        BinOp::Ne => Ok(Value::Bool(!a.equals(b))),
        BinOp::Lt => Ok(Value::Bool(compare(a, b, op)? == Ordering::Less)),
        BinOp::Le => Ok(Value::Bool(compare(a, b, op)? != Ordering::Greater)),
        BinOp::Gt => Ok(Value::Bool(compare(a, b, op)? == Ordering::Greater)),
        BinOp::Ge => Ok(Value::Bool(compare(a, b, op)? != Ordering::Less)),
        BinOp::In => Ok(Value::Bool(contains(b, a)?)),
        BinOp::NotIn => Ok(Value::Bool(!contains(b, a)?)),
        _ => arithmetic(op, a, b),
    }
}

fn int_op(op: BinOp, x: i64, y: i64) -> Result<Value, Fault> {
    let zero = || ErrorValue::new(Kind::ZeroDivision, "division by zero");
    Ok(match op {
        BinOp::Div => {
            if y == 0 {
                return Err(zero());
            }
            Value::Float(x as f64 / y as f64)
        }
        BinOp::FloorDiv => {
            if y == 0 {
                return Err(zero());
            }
            let q = x.checked_div(y).ok_or_else(overflow)?;
            Value::Int(if x % y != 0 && ((x < 0) != (y < 0)) { q - 1 } else { q })
        }
        BinOp::Mod => {
            if y == 0 {
                return Err(zero());
            }
            let r = x.checked_rem(y).unwrap_or(0);
            Value::Int(if r != 0 && ((r < 0) != (y < 0)) { r + y } else { r })
        }
        BinOp::Pow => match u32::try_from(y) {
            Ok(e) => Value::Int(x.checked_pow(e).ok_or_else(overflow)?),
            Err(_) if y < 0 && x == 0 => {
                return Err(ErrorValue::new(Kind::ZeroDivision, "0 cannot be raised to a negative power"));
            }
            Err(_) if y < 0 => Value::Float((x as f64).powf(y as f64)),
            Err(_) => match x {
                0 | 1 => Value::Int(x),
                -1 => Value::Int(if y % 2 == 0 { 1 } else { -1 }),
                _ => return Err(overflow()),
            },
        },
        _ => return Err(type_error(format!("`{}` is not an arithmetic operator", op.symbol()))),
    })
}

fn arithmetic(op: BinOp, a: &Value, b: &Value) -> Result<Value, Fault> {
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return float_op(op, x, y);
    }
    match (op, a, b) {
        (BinOp::Add, Value::Str(x), Value::Str(y)) => {
            if x.len() + y.len() > MAX_LEN {
                return Err(too_large("string"));
            }
            // Straight into the new string's block: built as a `String`,
            // it would be copied again into one.
            let mut s = Str::with_room(x, y.len())?;
            s.append(y)?;
            Ok(Value::Str(s))
        }
        (BinOp::Add, Value::Bytes(x), Value::Bytes(y)) => {
            let len = x.len().saturating_add(y.len());
            let mut bytes = byte_room(len)?;
            bytes.extend_from_slice(x);
            bytes.extend_from_slice(y);
            Ok(Value::bytes(bytes))
        }
        (BinOp::Mul, Value::Bytes(b), Value::Int(n)) | (BinOp::Mul, Value::Int(n), Value::Bytes(b)) => {
            let n = (*n).max(0) as usize;
            let mut bytes = byte_room(b.len().saturating_mul(n))?;
            for _ in 0..n {
                bytes.extend_from_slice(b);
            }
            Ok(Value::bytes(bytes))
        }
        (BinOp::Add, Value::List(x), Value::List(y)) => {
            let x = x.lock().clone();
            let y = y.lock().clone();
            if x.len() + y.len() > MAX_LEN {
                return Err(too_large("list"));
            }
            let mut items = room_for(x.len() + y.len(), "list")?;
            items.extend(x);
            items.extend(y);
            Ok(Value::list(items))
        }
        (BinOp::Mul, Value::Str(s), Value::Int(n)) | (BinOp::Mul, Value::Int(n), Value::Str(s)) => {
            let n = (*n).max(0) as usize;
            if s.len().saturating_mul(n) > MAX_LEN {
                return Err(too_large("string"));
            }
            if s.is_empty() {
                // However many times: no need to count them out.
                return Ok(Value::str(""));
            }
            let mut text = text_room(s.len() * n)?;
            text.extend(std::iter::repeat_n(&**s, n));
            Ok(Value::Str(text.into()))
        }
        (BinOp::Mul, Value::List(l), Value::Int(n)) | (BinOp::Mul, Value::Int(n), Value::List(l)) => {
            let n = (*n).max(0) as usize;
            let items = l.lock().clone();
            if items.len().saturating_mul(n) > MAX_LEN {
                return Err(too_large("list"));
            }
            if items.is_empty() {
                return Ok(Value::list(Vec::new()));
            }
            let mut repeated = room_for(items.len() * n, "list")?;
            for _ in 0..n {
                repeated.extend(items.iter().cloned());
            }
            Ok(Value::list(repeated))
        }
        _ => {
            let mut error = type_error(format!(
                "unsupported operand types for {}: {} and {}",
                op.symbol(),
                a.type_name(),
                b.type_name()
            ));
            if op == BinOp::Add && (matches!(a, Value::Str(_)) || matches!(b, Value::Str(_))) {
                error = error.with_help("convert with str(x), or interpolate: \"{x}\"");
            }
            Err(error)
        }
    }
}

/// Ints and floats are numbers; bools are not (`true + 1` is a TypeError).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(n) => Some(*n as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn float_op(op: BinOp, x: f64, y: f64) -> Result<Value, Fault> {
    let zero = || ErrorValue::new(Kind::ZeroDivision, "division by zero");
    Ok(Value::Float(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => {
            if y == 0.0 {
                return Err(zero());
            }
            x / y
        }
        BinOp::FloorDiv => {
            if y == 0.0 {
                return Err(zero());
            }
            (x / y).floor()
        }
        BinOp::Mod => {
            if y == 0.0 {
                return Err(zero());
            }
            let r = x % y;
            if r != 0.0 && ((r < 0.0) != (y < 0.0)) { r + y } else { r }
        }
        BinOp::Pow => {
            if x == 0.0 && y < 0.0 {
                return Err(ErrorValue::new(Kind::ZeroDivision, "0.0 cannot be raised to a negative power"));
            }
            x.powf(y)
        }
        _ => return Err(type_error(format!("`{}` is not an arithmetic operator", op.symbol()))),
    }))
}

pub fn unary(op: UnOp, v: &Value) -> Result<Value, Fault> {
    match (op, v) {
        (UnOp::Not, v) => Ok(Value::Bool(!v.truthy())),
        (UnOp::Neg, Value::Int(n)) => Ok(Value::Int(n.checked_neg().ok_or_else(overflow)?)),
        (UnOp::Neg, Value::Float(f)) => Ok(Value::Float(-f)),
        (UnOp::Neg, other) => Err(type_error(format!("cannot negate {}", other.type_name()))),
    }
}

/// Order for `<` and sorting: numbers with numbers, strings with strings,
/// lists item by item; anything else is a TypeError.
pub fn compare(a: &Value, b: &Value, op: BinOp) -> Result<Ordering, Fault> {
    compare_within(a, b, op, MAX_ORDER_DEPTH)
}

/// How deep lists may nest for `<` to order them (a list that contains
/// itself reaches it too).
const MAX_ORDER_DEPTH: usize = 1000;

fn compare_within(a: &Value, b: &Value, op: BinOp, depth: usize) -> Result<Ordering, Fault> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Bytes(x), Value::Bytes(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        (Value::List(x), Value::List(y)) => {
            let Some(depth) = depth.checked_sub(1) else {
                return Err(ErrorValue::new(
                    Kind::Resource,
                    format!("lists nested more than {MAX_ORDER_DEPTH} deep cannot be ordered"),
                ));
            };
            let x = x.lock().clone();
            let y = y.lock().clone();
            for (p, q) in x.iter().zip(&y) {
                match compare_within(p, q, op, depth)? {
                    Ordering::Equal => continue,
                    other => return Ok(other),
                }
            }
            Ok(x.len().cmp(&y.len()))
        }
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => x.partial_cmp(&y).ok_or_else(|| type_error("cannot order nan")),
            _ => Err(type_error(format!(
                "`{}` is not supported between {} and {}",
                op.symbol(),
                a.type_name(),
                b.type_name()
            ))),
        },
    }
}

/// `needle in haystack`.
pub fn contains(haystack: &Value, needle: &Value) -> Result<bool, Fault> {
    match haystack {
        Value::List(list) => {
            let items = list.lock().clone();
            Ok(items.iter().any(|item| item.equals(needle)))
        }
        Value::Map(map) => match Key::from_value(needle) {
            Some(key) => Ok(map.lock().contains_key(&key)),
            None => Ok(false),
        },
        Value::Str(s) => match needle {
            Value::Str(sub) => Ok(s.contains(&**sub)),
            other => Err(type_error(format!("`in` a string needs a string, not {}", other.type_name()))),
        },
        Value::Bytes(b) => match needle {
            Value::Bytes(sub) if sub.is_empty() => Ok(true),
            Value::Bytes(sub) => Ok(b.windows(sub.len()).any(|w| w == &sub[..])),
            Value::Int(n) => Ok(u8::try_from(*n).is_ok_and(|n| b.contains(&n))),
            other => Err(type_error(format!("`in` bytes needs bytes or an int, not {}", other.type_name()))),
        },
        Value::Range(r) => Ok(match needle {
            Value::Int(n) => r.contains(*n),
            Value::Float(f) if f.fract() == 0.0 => r.contains(*f as i64),
            _ => false,
        }),
        Value::Handle(h) if let Some(found) = super::shared::contains(h.handle(), needle) => found,
        other => Err(type_error(format!("`in` needs a list, map, string or range, not {}", other.type_name()))),
    }
}

pub fn unhashable(key: &Value) -> Fault {
    type_error(format!("a {} cannot be a map key", key.type_name()))
        .with_help("keys are strings, numbers, bools or nil")
}

/// Resolves a possibly negative index against a length.
fn position(index: &Value, len: usize, what: &str) -> Result<usize, Fault> {
    let i = match index {
        Value::Int(i) => *i,
        other => {
            return Err(type_error(format!("{what} indices must be ints, not {}", other.type_name())));
        }
    };
    let at = if i < 0 { i + len as i64 } else { i };
    if at < 0 || at >= len as i64 {
        return Err(ErrorValue::new(Kind::Index, format!("{what} index {i} out of range for length {len}")));
    }
    Ok(at as usize)
}

/// `base[start:stop:step]` of a list or string, as Python slices: bounds
/// may be negative (from the end) or past either end (clamped), `nil` is
/// left out, a negative step walks backwards.
pub fn slice(base: &Value, start: &Value, stop: &Value, step: &Value) -> Result<Value, Fault> {
    let bounds = [start, stop, step];
    Ok(match base {
        Value::List(list) => {
            let items = list.lock();
            Value::list(slice_positions(items.len(), bounds)?.map(|i| items[i].clone()).collect())
        }
        Value::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            let text: String = slice_positions(chars.len(), bounds)?.map(|i| chars[i]).collect();
            Value::Str(text.into())
        }
        Value::Bytes(b) => Value::bytes(slice_positions(b.len(), bounds)?.map(|i| b[i]).collect()),
        other => {
            let help = "lists, strings and bytes can be sliced; `list(...)` first makes a list of a range";
            return Err(type_error(format!("{} cannot be sliced", other.type_name())).with_help(help));
        }
    })
}

/// The positions the slice `[start:stop:step]` takes from `len` items
/// (Python's `slice.indices`).
pub(crate) fn slice_positions(
    len: usize,
    [start, stop, step]: [&Value; 3],
) -> Result<impl Iterator<Item = usize>, Fault> {
    let bound = |value: &Value, what: &str| match value {
        Value::Nil => Ok(None),
        Value::Int(n) => Ok(Some(*n)),
        other => Err(type_error(format!("a slice's {what} is an int, not {}", other.type_name()))),
    };
    let step = match bound(step, "step")? {
        None => 1,
        Some(0) => return Err(value_error("a slice's step cannot be zero")),
        Some(step) => step,
    };
    let (start, stop) = (bound(start, "start")?, bound(stop, "stop")?);
    let len = len as i64;
    let (low, high) = if step > 0 { (0, len) } else { (-1, len - 1) };
    let place = |at: i64| if at < 0 { (at + len).max(low) } else { at.min(high) };
    let start = start.map_or(if step > 0 { low } else { high }, place);
    let stop = stop.map_or(if step > 0 { high } else { low }, place);
    let mut at = start;
    Ok(std::iter::from_fn(move || {
        let more = if step > 0 { at < stop } else { at > stop };
        let here = at;
        at = at.saturating_add(step);
        more.then_some(here as usize)
    }))
}

pub fn index(base: &Value, index: &Value) -> Result<Value, Fault> {
    match base {
        Value::List(list) => {
            let list = list.lock();
            let at = position(index, list.len(), "list")?;
            Ok(list[at].clone())
        }
        Value::Map(map) => {
            let key = Key::from_value(index).ok_or_else(|| unhashable(index))?;
            map.lock().get(&key).cloned().ok_or_else(|| missing_key(index))
        }
        Value::Str(s) => {
            let count = s.chars().count();
            let at = position(index, count, "string")?;
            let c = s.chars().nth(at).map(String::from).unwrap_or_default();
            Ok(Value::Str(c.into()))
        }
        Value::Range(r) => {
            let at = position(index, r.len(), "range")?;
            Ok(Value::Int(r.get(at)))
        }
        Value::Bytes(b) => Ok(Value::Int(i64::from(b[position(index, b.len(), "bytes")?]))),
        other => Err(type_error(format!("{} cannot be indexed", other.type_name()))),
    }
}

/// Where `update_in` finds the value to update.
pub enum Slot<'a> {
    Index(&'a Value),
    Field(&'a str),
}

/// `base[index] op= rhs` or `base.name op= rhs` under the container's one
/// lock, so two threads' `m.n += 1` never lose an update. Only when both
/// sides are scalars: then the operator takes no other lock (the
/// interpreter never holds two). `None`: not such a case; the caller
/// reads, computes and writes back instead.
pub fn update_in(base: &Value, slot: Slot, op: BinOp, rhs: &Value) -> Option<Result<(), Fault>> {
    if !rhs.is_scalar() {
        return None;
    }
    let apply = |current: &mut Value| update_scalar(op, current, rhs);
    match (base, slot) {
        (Value::Map(map), Slot::Field(name)) => apply(map.lock().get_mut(&StrKey(name))?),
        (Value::Map(map), Slot::Index(index)) => {
            let key = Key::from_value(index)?;
            apply(map.lock().get_mut(&key)?)
        }
        (Value::List(list), Slot::Index(index)) => {
            let mut list = list.lock();
            let at = position(index, list.len(), "list").ok()?;
            apply(&mut list[at])
        }
        _ => None,
    }
}

/// `current op= rhs` in place when `current` is a number, string or the
/// like (`None`: a list or map, which the caller updates its own way).
#[inline]
pub fn update_scalar(op: BinOp, current: &mut Value, rhs: &Value) -> Option<Result<(), Fault>> {
    current.is_scalar().then(|| update(op, current, rhs))
}

pub(crate) fn missing_key(key: &Value) -> Fault {
    ErrorValue::new(Kind::Key, format!("key {} not found", format::repr(key)))
}

pub fn set_index(base: &Value, index: &Value, value: Value) -> Result<(), Fault> {
    match base {
        Value::List(list) => {
            let mut list = list.lock();
            let at = position(index, list.len(), "list")?;
            list[at] = value;
            Ok(())
        }
        Value::Map(map) => {
            let key = Key::from_value(index).ok_or_else(|| unhashable(index))?;
            map.lock().insert(key, value);
            Ok(())
        }
        Value::Str(_) => Err(type_error("strings cannot be changed in place").with_help("build a new string")),
        other => Err(type_error(format!("{} does not support item assignment", other.type_name()))),
    }
}

/// `base.name`: a map's key, or a property of an error.
pub fn field(base: &Value, name: &str) -> Result<Value, Fault> {
    match base {
        Value::Map(map) => map.lock().get(&StrKey(name)).cloned().ok_or_else(|| missing_key(&Value::str(name))),
        Value::Error(e) => match name {
            "kind" => Ok(Value::Str(Str::from(&e.kind))),
            "message" => Ok(Value::Str(e.message.as_str().into())),
            "value" => Ok(e.payload.clone().unwrap_or(Value::Nil)),
            "cause" => Ok(e.cause.clone().map_or(Value::Nil, Value::Error)),
            _ => Err(no_field(base, name)
                .with_help("an error has `kind`, `message`, `value`, `cause`, `line`, `file` and `trace`")),
        },
        _ => Err(no_field(base, name)),
    }
}

fn no_field(base: &Value, name: &str) -> Fault {
    let error = type_error(format!("{} has no field `{name}`", base.type_name()));
    match super::suggest::help_for(base, name, false) {
        Some(help) => error.with_help(help),
        None => error,
    }
}

/// `base.name = value`; a new key is `name` itself, the program's copy
/// (see `runtime::text::Interner`).
pub fn set_field(base: &Value, name: &Str, value: Value) -> Result<(), Fault> {
    match base {
        Value::Map(map) => {
            let mut map = map.lock();
            match map.get_mut(&StrKey(name)) {
                Some(slot) => *slot = value,
                None => {
                    map.insert(Key::Str(name.clone()), value);
                }
            }
            Ok(())
        }
        other => Err(type_error(format!("cannot set field `{name}` on {}", other.type_name()))),
    }
}

/// Room for `len` bytes, or a `ResourceError` past the largest value.
pub(crate) fn byte_room(len: usize) -> Result<Vec<u8>, Fault> {
    if len > MAX_BYTES {
        return Err(past_limit("bytes value", MAX_BYTES));
    }
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(len).map_err(|_| out_of_memory("bytes value"))?;
    Ok(bytes)
}

/// The largest bytes value: what can be sent through a queue (4 GiB less one).
pub(crate) const MAX_BYTES: usize = u32::MAX as usize;
