//! `for` loops over lists, maps, strings, ranges, queues (until closed)
//! and shared lists.
//!
//! A list is walked by position, taking its lock for one item at a time,
//! so the body may change the list (as in Python) and other threads are
//! never locked out for the length of a loop.

use super::{Ctrl, Interp, R, Up, fault_at};
use crate::resolve::ir::{Pattern, Stmt};
use crate::runtime::Value;
use crate::runtime::error::{Kind, type_error};
use crate::runtime::handle::HandleKind;
use crate::syntax::Span;

impl<'p> Interp<'p> {
    pub(crate) fn for_loop(&mut self, pattern: &Pattern, iterable: Value, body: &[Stmt], up: Up, span: Span) -> R<()> {
        match &iterable {
            Value::Range(range) => {
                let range = **range;
                for i in 0..range.len() {
                    if !self.iteration(pattern, Value::Int(range.get(i)), body, up)? {
                        break;
                    }
                }
            }
            Value::List(list) => {
                let mut i = 0;
                loop {
                    let item = match list.lock().get(i) {
                        Some(item) => item.clone(),
                        None => break,
                    };
                    if !self.iteration(pattern, item, body, up)? {
                        break;
                    }
                    i += 1;
                }
            }
            Value::Map(map) => {
                let keys: Vec<Value> = map.lock().key_values().collect();
                for key in keys {
                    if !self.iteration(pattern, key, body, up)? {
                        break;
                    }
                }
            }
            Value::Str(s) => {
                for c in s.chars() {
                    if !self.iteration(pattern, Value::Str(c.to_string().into()), body, up)? {
                        break;
                    }
                }
            }
            Value::Bytes(b) => {
                for &byte in b.iter() {
                    if !self.iteration(pattern, Value::Int(i64::from(byte)), body, up)? {
                        break;
                    }
                }
            }
            _ if drains(&iterable) => {
                // Until the queue is closed and drained.
                loop {
                    let item = match self.next_from(&iterable, span) {
                        Ok(item) => item,
                        Err(Ctrl::Error(e)) if e.is(Kind::QueueClosed) => break,
                        Err(other) => return Err(other),
                    };
                    if !self.iteration(pattern, item, body, up)? {
                        break;
                    }
                }
            }
            Value::Handle(h) if h.kind() == HandleKind::Array => {
                let mut i = 0;
                while let Some(item) = self.shared_list_item(h.handle(), i).map_err(|e| fault_at(e, span))? {
                    if !self.iteration(pattern, item, body, up)? {
                        break;
                    }
                    i += 1;
                }
            }
            Value::Handle(h) if h.kind() == HandleKind::Map => {
                let keys = self.shared_map_keys(h.handle()).map_err(|e| fault_at(e, span))?;
                let Value::List(keys) = keys else { return Ok(()) };
                let keys = keys.lock().clone();
                for key in keys {
                    if !self.iteration(pattern, key, body, up)? {
                        break;
                    }
                }
            }
            other => {
                let error = type_error(format!("cannot loop over {}", other.type_name()))
                    .with_help("`for` takes a list, map, string, bytes, range or queue");
                return Err(fault_at(error, span));
            }
        }
        Ok(())
    }

    /// One pass of a loop body; false when the loop should stop.
    fn iteration(&mut self, pattern: &Pattern, item: Value, body: &[Stmt], up: Up) -> R<bool> {
        // An empty body has no statement to stop at (see `while`).
        if body.is_empty() && self.cancel.needs_attention() {
            self.attend(Span::default())?;
        }
        self.bind(pattern, item)?;
        match self.exec_block(body, up) {
            Ok(()) | Err(Ctrl::Continue) => Ok(true),
            Err(Ctrl::Break) => Ok(false),
            Err(other) => Err(other),
        }
    }
}

/// Whether `for` takes items from `value` until it is closed and empty: a
/// queue (here or on a server) or a pipe end.
fn drains(value: &Value) -> bool {
    match value {
        Value::RemoteQueue(_) => true,
        Value::Handle(h) => matches!(h.kind(), HandleKind::Queue | HandleKind::Pipe),
        _ => false,
    }
}
