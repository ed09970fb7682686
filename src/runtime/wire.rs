//! Values as bytes, for queues, pipes and shared cells: what goes in is
//! copied, so a list put into a queue is never shared with the getter.
//!
//! One tag byte, then the payload, little-endian:
//!
//! ```text
//! nil 0 | false 1 | true 2 | int 3 i64 | float 4 f64 | string 5 len bytes
//! list 6 n items | map 7 n (key value)* | range 8 start stop step
//! handle 9 bits | builtin 10 index | error 11 ... | function 12 id name n upvalues
//! bytes 13 len bytes | remote queue 14 url capacity
//! ```
//!
//! A function travels by its id (every task of a run has the same program)
//! with copies of the values it captured. Task handles and thread-locals
//! belong to one process and are refused, as is a list that contains itself.

use std::collections::HashMap;
use std::sync::Arc;

use super::error::{ErrorValue, Fault, Kind, TraceEntry, type_error};
use super::handle::{Handle, HandleRef};
use super::value::{Closure, Key, Range, Value, VarCell};
use crate::resolve::ir::{Builtin, FnDef};
use crate::syntax::Span;

/// The functions of the run, by id.
pub type FnTable = HashMap<u32, Arc<FnDef>>;

/// Nesting deeper than this is refused rather than recursed into.
const MAX_DEPTH: usize = 500;

/// The bytes of a list whose items are already encoded.
pub fn encode_list(items: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![6];
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for item in items {
        out.extend_from_slice(item);
    }
    out
}

/// The first and last items of a list whose first and last items are
/// ints, read without decoding what lies between (a pool task's id and
/// first item, where its function cannot be decoded).
pub fn first_and_last_ints(bytes: &[u8]) -> Option<(i64, i64)> {
    let int_at = |at: usize| -> Option<i64> {
        (bytes.get(at) == Some(&3)).then_some(())?;
        Some(i64::from_le_bytes(bytes.get(at + 1..at + 9)?.try_into().ok()?))
    };
    (bytes.first() == Some(&6)).then_some(())?;
    Some((int_at(5)?, int_at(bytes.len().checked_sub(9)?)?))
}

/// The kind of the first primitive `bytes` name, if any: what cannot
/// leave this machine (a lock, a queue in the shared region ...).
pub fn primitive_in(bytes: &[u8]) -> Option<crate::sync::handle::HandleKind> {
    let mut kind = None;
    handles_in(bytes, &mut |handle| {
        kind.get_or_insert(handle.kind());
    });
    kind
}

/// Why `bytes` cannot be sent `whither` ("to a cluster worker"): the
/// primitive it names lives in this machine's memory.
pub fn cannot_leave(bytes: &[u8], whither: &str) -> Option<String> {
    primitive_in(bytes)
        .map(|kind| format!("{} cannot be sent {whither} (it lives in this machine's memory)", kind.a_name()))
}

/// The bytes of `value`.
pub fn encode(value: &Value) -> Result<Vec<u8>, Fault> {
    let mut out = Vec::with_capacity(16);
    Encoder { seen: Vec::new() }.value(&mut out, value, 0)?;
    Ok(out)
}

struct Encoder {
    /// Containers being written, to refuse one that contains itself.
    seen: Vec<usize>,
}

fn cannot_send(what: &str) -> Fault {
    type_error(format!("{what} cannot be sent to another task"))
        .with_help("send the data it holds instead, or pass it as an argument to a thread")
}

impl Encoder {
    fn value(&mut self, out: &mut Vec<u8>, value: &Value, depth: usize) -> Result<(), Fault> {
        if depth > MAX_DEPTH {
            return Err(ErrorValue::new(Kind::Resource, "value nested too deeply to send"));
        }
        match value {
            Value::Nil | Value::Unset => out.push(0),
            Value::Bool(false) => out.push(1),
            Value::Bool(true) => out.push(2),
            Value::Int(n) => {
                out.push(3);
                out.extend_from_slice(&n.to_le_bytes());
            }
            Value::Float(f) => {
                out.push(4);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Value::Str(s) => {
                out.push(5);
                text(out, s);
            }
            // A queue on a server travels as its name: any task can reach it.
            Value::RemoteQueue(q) => {
                out.push(14);
                text(out, &q.url());
                out.extend_from_slice(&q.capacity.to_le_bytes());
            }
            Value::Bytes(b) => {
                let len = u32::try_from(b.len())
                    .map_err(|_| ErrorValue::new(Kind::Resource, "bytes of 4 GiB or more cannot be sent"))?;
                out.push(13);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(b);
            }
            Value::List(list) => {
                let id = Arc::as_ptr(list) as usize;
                if self.seen.contains(&id) {
                    return Err(cannot_send("a list that contains itself"));
                }
                let items = list.lock().clone();
                self.seen.push(id);
                out.push(6);
                out.extend_from_slice(&(items.len() as u32).to_le_bytes());
                for item in &items {
                    self.value(out, item, depth + 1)?;
                }
                self.seen.pop();
            }
            Value::Map(map) => {
                let id = Arc::as_ptr(map) as usize;
                if self.seen.contains(&id) {
                    return Err(cannot_send("a map that contains itself"));
                }
                let entries = map.lock().clone();
                self.seen.push(id);
                out.push(7);
                out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
                for (k, v) in &entries {
                    self.value(out, &k.to_value(), depth + 1)?;
                    self.value(out, v, depth + 1)?;
                }
                self.seen.pop();
            }
            Value::Range(r) => {
                out.push(8);
                for n in [r.start, r.stop, r.step] {
                    out.extend_from_slice(&n.to_le_bytes());
                }
            }
            Value::Handle(h) => {
                out.push(9);
                out.extend_from_slice(&h.to_bits().to_le_bytes());
            }
            Value::Builtin(b) => {
                out.push(10);
                let index = Builtin::ALL.iter().position(|x| x == b).unwrap_or(0);
                out.extend_from_slice(&(index as u16).to_le_bytes());
            }
            Value::Error(e) => {
                out.push(11);
                self.error(out, e, depth)?;
            }
            Value::Func(closure) => {
                out.push(12);
                out.extend_from_slice(&closure.def.id.to_le_bytes());
                text(out, &closure.def.name);
                out.extend_from_slice(&(closure.upvalues.len() as u32).to_le_bytes());
                for cell in closure.upvalues.iter() {
                    let captured = cell.lock().clone();
                    self.value(out, &captured, depth + 1)?;
                }
            }
            Value::Cell(cell) => {
                let inner = cell.lock().clone();
                self.value(out, &inner, depth)?;
            }
            Value::Task(task) => return Err(cannot_send(&format!("the {} handle {}", task.kind.name(), task.name))),
            Value::ThreadLocal(_) => return Err(cannot_send("a threadlocal")),
            Value::Pool(_) => return Err(cannot_send("a pool")),
            Value::Future(_) => return Err(cannot_send("a future")),
        }
        Ok(())
    }

    fn error(&mut self, out: &mut Vec<u8>, e: &ErrorValue, depth: usize) -> Result<(), Fault> {
        text(out, &e.kind);
        text(out, &e.message);
        optional_span(out, e.span);
        text(out, e.help.as_deref().unwrap_or(""));
        out.extend_from_slice(&(e.trace.len() as u32).to_le_bytes());
        for entry in &e.trace {
            text(out, &entry.function);
            optional_span(out, Some(entry.call));
        }
        text(out, e.task.as_deref().unwrap_or(""));
        match &e.payload {
            Some(payload) => {
                out.push(1);
                self.value(out, payload, depth + 1)?;
            }
            None => out.push(0),
        }
        match &e.cause {
            Some(cause) => {
                out.push(1);
                self.error(out, cause, depth + 1)?;
            }
            None => out.push(0),
        }
        Ok(())
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn optional_span(out: &mut Vec<u8>, span: Option<Span>) {
    let (start, end) = span.map_or((u32::MAX, 0), |s| (s.start, s.end));
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&end.to_le_bytes());
}

/// The value `bytes` encode. Functions are looked up in `functions`.
pub fn decode(bytes: &[u8], functions: &FnTable) -> Result<Value, Fault> {
    let mut reader = Reader { bytes, at: 0, functions };
    let value = reader.value(0)?;
    match reader.at == bytes.len() {
        true => Ok(value),
        false => Err(corrupt()),
    }
}

/// Calls `found` with each primitive `bytes` name: the scanner behind the
/// reference counts of queue items and shared values (`sync::refs`). It
/// reads what `decode` reads, building nothing; damaged bytes end the scan.
pub fn handles_in(bytes: &[u8], found: &mut dyn FnMut(Handle)) {
    // Most values name no primitive: only a handle, or a list, map, error
    // or function holding one can, and only with a handle tag inside.
    if !matches!(bytes.first(), Some(6 | 7 | 9 | 11 | 12)) || !bytes.contains(&9) {
        return;
    }
    let mut scan = Scan { bytes, at: 0 };
    let _ = scan.value(0, found);
}

struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Scan<'_> {
    fn skip(&mut self, n: usize) -> Option<()> {
        self.at = self.at.checked_add(n).filter(|e| *e <= self.bytes.len())?;
        Some(())
    }

    fn u32(&mut self) -> Option<u32> {
        let word = self.bytes.get(self.at..self.at.checked_add(4)?)?;
        self.at += 4;
        Some(u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
    }

    fn text(&mut self) -> Option<()> {
        let len = self.u32()? as usize;
        self.skip(len)
    }

    fn value(&mut self, depth: usize, found: &mut dyn FnMut(Handle)) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let tag = *self.bytes.get(self.at)?;
        self.at += 1;
        match tag {
            0..=2 => Some(()),
            3 | 4 => self.skip(8),
            5 | 13 => self.text(),
            14 => self.text().and_then(|_| self.skip(8)),
            6 => (0..self.u32()?).try_for_each(|_| self.value(depth + 1, found)),
            7 => (0..self.u32()? as u64 * 2).try_for_each(|_| self.value(depth + 1, found)),
            8 => self.skip(24),
            9 => {
                let word = self.bytes.get(self.at..self.at + 8)?;
                self.at += 8;
                let bits = u64::from_le_bytes(word.try_into().ok()?);
                found(Handle::from_bits(bits)?);
                Some(())
            }
            10 => self.skip(2),
            11 => self.error(depth, found),
            12 => {
                self.skip(4)?;
                self.text()?;
                (0..self.u32()?).try_for_each(|_| self.value(depth + 1, found))
            }
            _ => None,
        }
    }

    fn error(&mut self, depth: usize, found: &mut dyn FnMut(Handle)) -> Option<()> {
        self.text()?;
        self.text()?;
        self.skip(8)?;
        self.text()?;
        for _ in 0..self.u32()? {
            self.text()?;
            self.skip(8)?;
        }
        self.text()?;
        if self.flag()? {
            self.value(depth + 1, found)?;
        }
        match self.flag()? {
            true => self.error(depth + 1, found),
            false => Some(()),
        }
    }

    fn flag(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte != 0)
    }
}

fn corrupt() -> Fault {
    ErrorValue::new(Kind::Error, "internal error: a value arrived damaged")
        .with_help("this is a bug in concsh; please report it with the script")
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    functions: &'a FnTable,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Fault> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or_else(corrupt)?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, Fault> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, Fault> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, Fault> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn text(&mut self) -> Result<String, Fault> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| corrupt())
    }

    fn span(&mut self) -> Result<Option<Span>, Fault> {
        let (start, end) = (self.u32()?, self.u32()?);
        Ok((start != u32::MAX).then_some(Span { start, end }))
    }

    /// A count of items, each at least one byte: bounded by what is left.
    fn count(&mut self) -> Result<usize, Fault> {
        let n = self.u32()? as usize;
        match n <= self.bytes.len() - self.at {
            true => Ok(n),
            false => Err(corrupt()),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, Fault> {
        if depth > MAX_DEPTH {
            return Err(corrupt());
        }
        Ok(match self.byte()? {
            0 => Value::Nil,
            1 => Value::Bool(false),
            2 => Value::Bool(true),
            3 => Value::Int(self.u64()? as i64),
            4 => Value::Float(f64::from_bits(self.u64()?)),
            5 => Value::Str(self.text()?.into()),
            13 => {
                let len = self.u32()? as usize;
                Value::bytes(self.take(len)?.to_vec())
            }
            14 => {
                let url = self.text()?;
                let capacity = self.u64()?;
                let queue = crate::cluster::queue::RemoteQueue::named(&url, Some(capacity))
                    .map_err(|message| ErrorValue::new(Kind::Io, message))?;
                Value::RemoteQueue(Arc::new(queue))
            }
            6 => {
                let n = self.count()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::list(items)
            }
            7 => {
                let n = self.count()?;
                let mut map = super::value::table(n);
                for _ in 0..n {
                    let key = self.value(depth + 1)?;
                    let key = Key::from_value(&key).ok_or_else(corrupt)?;
                    map.insert(key, self.value(depth + 1)?);
                }
                Value::map(map)
            }
            8 => {
                let (start, stop, step) = (self.u64()? as i64, self.u64()? as i64, self.u64()? as i64);
                Value::Range(Range { start, stop, step }.into())
            }
            9 => Value::Handle(HandleRef::retain(Handle::from_bits(self.u64()?).ok_or_else(corrupt)?)),
            10 => {
                let mut b = [0u8; 2];
                b.copy_from_slice(self.take(2)?);
                let builtin = Builtin::ALL.get(u16::from_le_bytes(b) as usize).ok_or_else(corrupt)?;
                Value::Builtin(*builtin)
            }
            11 => Value::Error(Arc::new(self.error(depth)?)),
            12 => {
                let id = self.u32()?;
                let name = self.text()?;
                let n = self.count()?;
                let mut upvalues = Vec::with_capacity(n);
                for _ in 0..n {
                    upvalues.push(Arc::new(VarCell::new(self.value(depth + 1)?)));
                }
                let def = self.functions.get(&id).cloned().ok_or_else(|| {
                    ErrorValue::new(Kind::Name, format!("function `{name}` is unknown to this task"))
                        .with_help("a task knows the functions that existed when it (or its pool) was started")
                })?;
                Value::Func(Arc::new(Closure { def, upvalues: upvalues.into() }))
            }
            _ => return Err(corrupt()),
        })
    }

    fn error(&mut self, depth: usize) -> Result<ErrorValue, Fault> {
        let kind = self.text()?;
        let message = self.text()?;
        let span = self.span()?;
        let help = Some(self.text()?).filter(|h| !h.is_empty());
        let mut trace = Vec::new();
        for _ in 0..self.count()? {
            let function = self.text()?;
            let call = self.span()?.unwrap_or_default();
            trace.push(TraceEntry { function: function.into(), call });
        }
        let task = Some(self.text()?).filter(|t| !t.is_empty());
        let payload = match self.byte()? {
            0 => None,
            _ => Some(self.value(depth + 1)?),
        };
        let cause = match self.byte()? {
            0 => None,
            _ => Some(Arc::new(self.error(depth + 1)?)),
        };
        Ok(ErrorValue { kind: kind.into(), message, span, help, trace, payload, task, cause })
    }
}
