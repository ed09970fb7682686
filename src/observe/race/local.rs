//! Shadows of a process's own data: variables, list items and lengths,
//! map keys. A fork copies them with the data they describe.
//!
//! They are found by the address of the variable's cell or the
//! container, which the table pins with a weak reference (so no new object
//! takes that address while its shadows are kept); the shadows of objects
//! no one holds any more are dropped as the table grows, so a loop making
//! short-lived lists runs in constant memory.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::clock::Clock;
use super::shadow::{Access, Conflict, Mark, Shadow};
use crate::runtime::teardown::{Entries, Items};
use crate::runtime::value::{Key, VarCell};

/// What a task reads or writes.
pub enum Place<'a> {
    /// A global, by index.
    Global(u32, &'a Arc<VarCell>),
    /// A variable a closure captured.
    Captured(&'a Arc<VarCell>),
    /// A list's item.
    Item(&'a Arc<Mutex<Items>>, i64),
    /// A list's length (`push`, `pop`, `len`...).
    Length(&'a Arc<Mutex<Items>>),
    /// A map's key (`m["k"]`, `m.k`).
    Key(&'a Arc<Mutex<Entries>>, Key),
    /// A shared value's cell: its offset, and the index in a shared list.
    Shared(u64, usize),
}

#[derive(PartialEq, Eq, Hash)]
enum Sub {
    Whole,
    Length,
    Index(i64),
    Key(Key),
}

enum Pin {
    Cell(Weak<VarCell>),
    List(Weak<Mutex<Items>>),
    Map(Weak<Mutex<Entries>>),
}

impl Pin {
    fn alive(&self) -> bool {
        match self {
            Pin::Cell(w) => w.strong_count() > 0,
            Pin::List(w) => w.strong_count() > 0,
            Pin::Map(w) => w.strong_count() > 0,
        }
    }
}

#[derive(Default)]
struct Table {
    shadows: HashMap<(usize, Sub), Shadow>,
    pins: HashMap<usize, Pin>,
    /// Pins after the last sweep.
    swept: usize,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

/// Objects pinned before the first sweep.
const FIRST_SWEEP: usize = 4096;

fn address_of(place: &Place) -> Option<(usize, Sub)> {
    Some(match place {
        Place::Global(_, cell) | Place::Captured(cell) => (Arc::as_ptr(cell) as usize, Sub::Whole),
        Place::Item(list, i) => (Arc::as_ptr(list) as usize, Sub::Index(*i)),
        Place::Length(list) => (Arc::as_ptr(list) as usize, Sub::Length),
        Place::Key(map, k) => (Arc::as_ptr(map) as usize, Sub::Key(k.clone())),
        Place::Shared(..) => return None,
    })
}

/// A weak reference to the object `place` is in (made once per object:
/// each is a write to its reference counts).
fn pin_of(place: &Place) -> Option<Pin> {
    Some(match place {
        Place::Global(_, cell) | Place::Captured(cell) => Pin::Cell(Arc::downgrade(cell)),
        Place::Item(list, _) | Place::Length(list) => Pin::List(Arc::downgrade(list)),
        Place::Key(map, _) => Pin::Map(Arc::downgrade(map)),
        Place::Shared(..) => return None,
    })
}

/// Records an access to a datum of this process, giving the earlier
/// access it races with.
pub fn access(place: &Place, access: Access, me: Mark, now: &Clock) -> Option<Conflict> {
    let (address, sub) = address_of(place)?;
    let mut table = TABLE.lock();
    let table = table.get_or_insert_with(Table::default);
    if let Entry::Vacant(slot) = table.pins.entry(address) {
        slot.insert(pin_of(place)?);
    }
    let conflict = table.shadows.entry((address, sub)).or_default().access(access, me, now);
    if table.pins.len() >= (table.swept * 2).max(FIRST_SWEEP) {
        sweep(table);
    }
    conflict
}

/// Drops the shadows of objects no one holds.
fn sweep(table: &mut Table) {
    table.pins.retain(|_, pin| pin.alive());
    let pins = &table.pins;
    table.shadows.retain(|(address, _), _| pins.contains_key(address));
    table.swept = table.pins.len();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Value;

    #[test]
    fn shadows_of_dropped_lists_are_swept() {
        let mark = Mark { tid: 1, clock: 1, site: (0, 1) };
        let mut now = Clock::default();
        now.tick(1);
        let kept = match Value::list(vec![Value::Int(1)]) {
            Value::List(list) => list,
            _ => unreachable!(),
        };
        access(&Place::Item(&kept, 0), Access::Write, mark, &now);
        for _ in 0..3 * FIRST_SWEEP {
            if let Value::List(list) = Value::list(Vec::new()) {
                access(&Place::Length(&list), Access::Write, mark, &now);
            }
        }
        let table = TABLE.lock();
        let table = table.as_ref().map_or(0, |t| t.shadows.len());
        assert!(table < 2 * FIRST_SWEEP + 10, "{table} shadows kept");
    }
}
