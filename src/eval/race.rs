//! What the evaluator tells the race detector (`--race`) and a controlled
//! run (`--explore`): the datum each read and write touches. Nothing here
//! runs without one of them: every caller checks `Interp::racing` first,
//! and the dispatch loop leaves its fast paths for the ones that call here.

use std::sync::Arc;

use super::Interp;
use crate::observe::race::{self, Access, Place};
use crate::runtime::handle::HandleKind;
use crate::runtime::value::{Key, Value, VarCell};
use crate::sync::cell::Headed;
use crate::sync::cell::SharedCells;
use crate::syntax::Span;

impl Interp<'_> {
    /// An access to shared data: a scheduling point of a controlled run
    /// (`--explore`), then the detector's check.
    fn touch(&self, place: Place, access: Access, span: Span) {
        self.point(span);
        race::access(self.proc, place, access, span);
    }

    /// A global's, or a captured variable's, cell.
    #[cold]
    pub(crate) fn race_cell(&self, global: Option<u32>, cell: &Arc<VarCell>, access: Access, span: Span) {
        let place = match global {
            Some(i) => Place::Global(i, cell),
            None => Place::Captured(cell),
        };
        self.touch(place, access, span);
    }

    /// `base[index]`: a list's item, a map's key (and its set of keys,
    /// when a write adds one), a shared list's cell.
    #[cold]
    pub(crate) fn race_item(&self, base: &Value, index: &Value, access: Access, span: Span) {
        match (base, index) {
            (Value::List(list), Value::Int(i)) => {
                let len = list.lock().len() as i64;
                // An index past the end is an error, not an access.
                let i = if *i < 0 { i + len } else { *i };
                if (0..len).contains(&i) {
                    self.touch(Place::Item(list, i as usize), access, span);
                }
            }
            (Value::Map(map), key) => {
                if let Some(key) = Key::from_value(key) {
                    if access == Access::Write && !map.lock().contains_key(&key) {
                        self.touch(Place::Keys(map), Access::Write, span);
                    }
                    self.touch(Place::Key(map, key), access, span);
                }
            }
            (Value::Handle(h), _) if h.kind() == HandleKind::Array => {
                if let Ok(i) = self.shared_index(h.handle(), index) {
                    self.touch(Place::Shared(h.off(), i), access, span);
                }
            }
            // A shared map's key: its place is named by the key's hash
            // (each operation is atomic; a read then a write is not).
            (Value::Handle(h), key) if h.kind() == HandleKind::Map => {
                if let Ok(bytes) = super::shared::key_bytes(key) {
                    let place = crate::sync::dict::key_hash(&bytes) as usize;
                    self.touch(Place::Shared(h.off(), place), access, span);
                }
            }
            _ => {}
        }
    }

    /// `base.name`: a map's key, a shared value's `value` (each cell of a
    /// shared list).
    #[cold]
    pub(crate) fn race_field(&self, base: &Value, name: &str, access: Access, span: Span) {
        match base {
            Value::Map(_) => self.race_item(base, &Value::str(name), access, span),
            Value::Handle(h) if h.kind() == HandleKind::Cell && name == "value" => {
                self.touch(Place::Shared(h.off(), 0), access, span);
            }
            Value::Handle(h) if h.kind() == HandleKind::Array && name == "value" => {
                for i in 0..SharedCells(h.off()).len() {
                    self.touch(Place::Shared(h.off(), i), access, span);
                }
            }
            _ => {}
        }
    }

    /// A method of a list or map (`first` is its first argument): those
    /// that change a list write its length, the rest read it; a map's
    /// read or remove the key they name, and read or write its keys.
    #[cold]
    pub(crate) fn race_method(&self, recv: &Value, name: &str, first: Option<&Value>, span: Span) {
        match recv {
            Value::List(list) => {
                let changes = matches!(name, "push" | "pop" | "insert" | "remove" | "extend" | "clear");
                let access = if changes { Access::Write } else { Access::Read };
                self.touch(Place::Length(list), access, span);
            }
            Value::Map(map) => match (name, first.and_then(Key::from_value)) {
                ("get", Some(key)) => self.touch(Place::Key(map, key), Access::Read, span),
                ("remove", Some(key)) => {
                    self.touch(Place::Keys(map), Access::Write, span);
                    self.touch(Place::Key(map, key.clone()), Access::Write, span);
                    race::removing(map, &key);
                }
                ("keys", _) => self.touch(Place::Keys(map), Access::Read, span),
                ("values" | "items", _) => {
                    self.touch(Place::Keys(map), Access::Read, span);
                    let keys: Vec<Key> = map.lock().keys().collect();
                    for key in keys {
                        self.touch(Place::Key(map, key), Access::Read, span);
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// `xs[a:b]` reads the list's length and each item it takes.
    #[cold]
    pub(crate) fn race_slice(&self, base: &Value, [start, stop, step]: &[Value; 3], span: Span) {
        self.race_size(base, span);
        if let Value::List(list) = base {
            let len = list.lock().len();
            if let Ok(positions) = super::ops::slice_positions(len, [start, stop, step]) {
                for i in positions {
                    self.touch(Place::Item(list, i), Access::Read, span);
                }
            }
        }
    }

    /// `len(v)` and walking a map read a list's length or a map's keys.
    #[cold]
    pub(crate) fn race_size(&self, value: &Value, span: Span) {
        match value {
            Value::List(list) => self.touch(Place::Length(list), Access::Read, span),
            Value::Map(map) => self.touch(Place::Keys(map), Access::Read, span),
            _ => {}
        }
    }
}
