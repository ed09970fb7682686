//! Shadows of a process's own data: variables, list items and lengths,
//! map keys. A fork copies them with the data they describe.
//!
//! They are kept per object (a variable's cell, a list, a map), found by
//! its address, which the table pins with a weak reference (so no new
//! object takes that address while its shadows are kept). A list's item
//! shadows sit in a vector by index, a map's by the key's place in the
//! map (with a fingerprint of the key, so a shadow is never taken for
//! another key's): a tracked datum costs its 24-byte shadow and little
//! more. The shadows of objects no one holds any more are dropped as the
//! table grows, so a loop making short-lived lists runs in constant
//! memory.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::clock::Clock;
use super::shadow::{Access, Conflict, Mark, Shadow};
use crate::runtime::bias::Biased;
use crate::runtime::teardown::Items;
use crate::runtime::value::{Key, ListRef, MapCell, MapRef, VarCell};

/// What a task reads or writes.
pub enum Place<'a> {
    /// A global, by index.
    Global(u32, &'a Arc<VarCell>),
    /// A variable a closure captured.
    Captured(&'a Arc<VarCell>),
    /// A list's item (an index inside the list).
    Item(&'a ListRef, usize),
    /// A list's length (`push`, `pop`, `len`...).
    Length(&'a ListRef),
    /// A map's key (`m["k"]`, `m.k`).
    Key(&'a MapRef, Key),
    /// A map's set of keys: a new key or a removal writes it; `len`,
    /// `keys()` and walking the map read it.
    Keys(&'a MapRef),
    /// A shared value's cell: its offset, and the index in a shared list.
    Shared(u64, usize),
}

/// Keys are addresses and hashes: a fast hash, as maps use.
type Fast = foldhash::fast::RandomState;

/// The shadows of one object.
enum Shadows {
    Cell(Shadow),
    List {
        length: Shadow,
        items: Vec<Shadow>,
    },
    /// By the key's index in the map, each with its key's fingerprint.
    Map {
        keys: Shadow,
        values: Vec<(u32, Shadow)>,
    },
}

struct Object {
    pin: Pin,
    shadows: Shadows,
}

enum Pin {
    Cell(Weak<VarCell>),
    List(Weak<Biased<Items>>),
    Map(Weak<MapCell>),
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

/// Which datum of an object: 0 its cell, 1 its length or keys, then an
/// item's index or a key's hash (top bit set).
type Sub = u64;

#[derive(Default)]
struct Table {
    objects: HashMap<usize, Object, Fast>,
    /// The reads kept aside of shadows that have them (see
    /// [`Shadow::has_more`]).
    more: HashMap<(usize, Sub), Vec<Mark>, Fast>,
    /// How map keys are hashed: one seed for the process.
    keys: foldhash::fast::FixedState,
    /// Objects after the last sweep.
    swept: usize,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

/// Objects tracked before the first sweep.
const FIRST_SWEEP: usize = 4096;

/// The address of the object `place` is in.
fn address_of(place: &Place) -> Option<usize> {
    Some(match place {
        Place::Global(_, cell) | Place::Captured(cell) => Arc::as_ptr(cell) as usize,
        Place::Item(list, _) | Place::Length(list) => Arc::as_ptr(list) as usize,
        Place::Key(map, _) | Place::Keys(map) => Arc::as_ptr(map) as usize,
        Place::Shared(..) => return None,
    })
}

/// The empty shadows of the object `place` is in, pinned by a weak
/// reference (made once per object: each is a write to its counts).
fn new_object(place: &Place) -> Object {
    let (pin, shadows) = match place {
        Place::Item(list, _) | Place::Length(list) => {
            (Pin::List(Arc::downgrade(list)), Shadows::List { length: Shadow::default(), items: Vec::new() })
        }
        Place::Key(map, _) | Place::Keys(map) => {
            (Pin::Map(Arc::downgrade(map)), Shadows::Map { keys: Shadow::default(), values: Vec::new() })
        }
        Place::Global(_, cell) | Place::Captured(cell) => {
            (Pin::Cell(Arc::downgrade(cell)), Shadows::Cell(Shadow::default()))
        }
        // Kept in the book, never here (it has no address).
        Place::Shared(..) => (Pin::Cell(Weak::new()), Shadows::Cell(Shadow::default())),
    };
    Object { pin, shadows }
}

/// Records an access to a datum of this process, giving the earlier
/// access it races with.
pub fn access(place: &Place, access: Access, me: Mark, now: &Clock) -> Option<Conflict> {
    let address = address_of(place)?;
    let mut table = TABLE.lock();
    let Table { objects, more, keys: hasher, swept } = table.get_or_insert_with(Table::default);
    let object = match objects.entry(address) {
        Entry::Occupied(object) => object.into_mut(),
        Entry::Vacant(slot) => slot.insert(new_object(place)),
    };
    let (shadow, sub) = match (&mut object.shadows, place) {
        (Shadows::Cell(shadow), _) => (shadow, 0),
        (Shadows::List { length, .. }, Place::Length(_)) | (Shadows::Map { keys: length, .. }, Place::Keys(_)) => {
            (length, 1)
        }
        (Shadows::List { items, .. }, Place::Item(list, i)) => {
            if *i >= items.len() {
                // Sized to the list, not doubled: a shadow per item at most.
                let len = list.lock().len().max(i + 1);
                grow(items, len, Shadow::default);
            }
            (&mut items[*i], 2 + *i as u64)
        }
        (Shadows::Map { values, .. }, Place::Key(map, key)) => {
            let hash = hasher.hash_one(key);
            let fingerprint = hash as u32;
            // A new key is about to be added at the end.
            let (i, len) = {
                let map = map.lock();
                (map.get_index_of(key).unwrap_or(map.len()), map.len().max(1))
            };
            if i >= values.len() {
                grow(values, len.max(i + 1), || (fingerprint, Shadow::default()));
            }
            let (print, shadow) = &mut values[i];
            if *print != fingerprint {
                // The key moved (a removal before it): its history is lost,
                // never lent to another key.
                *print = fingerprint;
                *shadow = Shadow::default();
                more.remove(&(address, hash | 1 << 63));
            }
            (shadow, hash | 1 << 63)
        }
        // An address reused by an object of another kind: not while pinned.
        _ => return None,
    };
    let mut aside = if shadow.has_more() { more.remove(&(address, sub)).unwrap_or_default() } else { Vec::new() };
    let conflict = shadow.access(access, me, now, &mut aside);
    if !aside.is_empty() {
        more.insert((address, sub), aside);
    }
    if objects.len() >= (*swept * 2).max(FIRST_SWEEP) {
        objects.retain(|_, object| object.pin.alive());
        more.retain(|(address, _), _| objects.contains_key(address));
        *swept = objects.len();
    }
    conflict
}

/// Grows `shadows` to `len`, reserving no more than that.
fn grow<T>(shadows: &mut Vec<T>, len: usize, empty: impl FnMut() -> T) {
    shadows.reserve_exact(len.saturating_sub(shadows.len()));
    shadows.resize_with(len, empty);
}

/// `m.remove(key)` is about to remove `key`: the shadows after it move
/// down with their keys.
pub fn removing(map: &MapRef, key: &Key) {
    let Some(i) = map.lock().get_index_of(key) else { return };
    let mut table = TABLE.lock();
    let Some(table) = table.as_mut() else { return };
    if let Some(Object { shadows: Shadows::Map { values, .. }, .. }) =
        table.objects.get_mut(&(Arc::as_ptr(map) as usize))
        && i < values.len()
    {
        values.remove(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Value;

    fn list(items: Vec<Value>) -> ListRef {
        match Value::list(items) {
            Value::List(list) => list,
            _ => unreachable!(),
        }
    }

    #[test]
    fn shadows_of_dropped_lists_are_swept() {
        let mark = Mark { tid: 1, clock: 1, site: 0 };
        let mut now = Clock::default();
        now.tick(1);
        let kept = list(vec![Value::Int(1)]);
        access(&Place::Item(&kept, 0), Access::Write, mark, &now);
        for _ in 0..3 * FIRST_SWEEP {
            access(&Place::Length(&list(Vec::new())), Access::Write, mark, &now);
        }
        let table = TABLE.lock();
        let objects = table.as_ref().map_or(0, |t| t.objects.len());
        assert!(objects < 2 * FIRST_SWEEP + 10, "{objects} objects kept");
    }
}
