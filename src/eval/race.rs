//! What the evaluator tells the race detector (`--race`): the datum each
//! read and write touches. Nothing here runs without `--race`: every
//! caller checks `Interp::racing` first, and the dispatch loop leaves its
//! fast paths for the ones that call here.

use std::sync::Arc;

use super::Interp;
use crate::observe::race::{self, Access, Place};
use crate::runtime::handle::HandleKind;
use crate::runtime::value::{Key, Value, VarCell};
use crate::syntax::Span;

impl Interp<'_> {
    /// A global's, or a captured variable's, cell.
    #[cold]
    pub(crate) fn race_cell(&self, global: Option<u32>, cell: &Arc<VarCell>, access: Access, span: Span) {
        let place = match global {
            Some(i) => Place::Global(i, cell),
            None => Place::Captured(cell),
        };
        race::access(self.proc, place, access, span);
    }

    /// `base[index]`: a list's item, a map's key, a shared list's cell.
    #[cold]
    pub(crate) fn race_item(&self, base: &Value, index: &Value, access: Access, span: Span) {
        match (base, index) {
            (Value::List(list), Value::Int(i)) => {
                let len = list.lock().len() as i64;
                let i = if *i < 0 { i + len } else { *i };
                race::access(self.proc, Place::Item(list, i), access, span);
            }
            (Value::Map(map), key) => {
                if let Some(key) = Key::from_value(key) {
                    race::access(self.proc, Place::Key(map, key), access, span);
                }
            }
            (Value::Handle(h), _) if h.kind() == HandleKind::Array => {
                if let Ok(i) = self.shared_index(h.handle(), index) {
                    race::access(self.proc, Place::Shared(h.off(), i), access, span);
                }
            }
            _ => {}
        }
    }

    /// `base.name`: a map's key, a shared value's `value`.
    #[cold]
    pub(crate) fn race_field(&self, base: &Value, name: &str, access: Access, span: Span) {
        match base {
            Value::Map(map) => race::access(self.proc, Place::Key(map, Key::Str(name.into())), access, span),
            Value::Handle(h) if h.kind() == HandleKind::Cell && name == "value" => {
                race::access(self.proc, Place::Shared(h.off(), 0), access, span);
            }
            _ => {}
        }
    }

    /// A list method: those that change the list write its length, the
    /// rest read it.
    #[cold]
    pub(crate) fn race_method(&self, recv: &Value, name: &str, span: Span) {
        if let Value::List(list) = recv {
            let changes = matches!(name, "push" | "pop" | "insert" | "remove" | "extend" | "clear");
            let access = if changes { Access::Write } else { Access::Read };
            race::access(self.proc, Place::Length(list), access, span);
        }
    }
}
