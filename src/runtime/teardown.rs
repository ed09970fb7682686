//! Freeing values nested any depth without recursion.
//!
//! Dropping a list that holds a list that holds a list... would recurse
//! once per level, and a script can nest a million levels (`x = [x]` in a
//! loop), far more than a thread's stack holds. So the containers' item
//! vectors ([`Items`], [`Entries`]) and closures hand what they held to
//! [`defer`] instead of dropping it in place: the outermost drop on a
//! thread empties a work list in a loop, and the drops it causes only add
//! to that list.

use std::cell::{Cell, RefCell};
use std::ops::{Deref, DerefMut};

use super::value::{Key, Table, Value};

thread_local! {
    /// Set while this thread empties its work list.
    static DRAINING: Cell<bool> = const { Cell::new(false) };
    static PENDING: RefCell<Vec<Value>> = const { RefCell::new(Vec::new()) };
}

/// Whether dropping `value` may drop further values in turn.
fn nests(value: &Value) -> bool {
    matches!(value, Value::List(_) | Value::Map(_) | Value::Func(_) | Value::Cell(_) | Value::Error(_))
}

/// Drops `values` without growing the stack by more than one level.
pub fn defer(values: impl IntoIterator<Item = Value>) {
    let outermost = DRAINING.try_with(|draining| !draining.replace(true));
    match outermost {
        // Inside the loop below: it will drop these.
        // (At a thread's end its work list may be gone first: the values
        // are then dropped in place.)
        Ok(false) => {
            let _ = PENDING.try_with(|pending| pending.borrow_mut().extend(values.into_iter().filter(nests)));
        }
        Ok(true) => {
            let mut work: Vec<Value> = values.into_iter().filter(nests).collect();
            while !work.is_empty() {
                work.clear();
                let _ = PENDING.try_with(|pending| std::mem::swap(&mut work, &mut pending.borrow_mut()));
            }
            let _ = DRAINING.try_with(|draining| draining.set(false));
        }
        // The thread is ending and its locals are gone: drop in place.
        Err(_) => drop(values.into_iter().collect::<Vec<_>>()),
    }
}

/// A list's items.
#[derive(Clone, Default)]
pub struct Items(pub Vec<Value>);

impl Deref for Items {
    type Target = Vec<Value>;
    fn deref(&self) -> &Vec<Value> {
        &self.0
    }
}

impl DerefMut for Items {
    fn deref_mut(&mut self) -> &mut Vec<Value> {
        &mut self.0
    }
}

impl Drop for Items {
    fn drop(&mut self) {
        let mut counted = false;
        for item in &self.0 {
            if nests(item) {
                defer(std::mem::take(&mut self.0));
                return;
            }
            counted |= !item.is_scalar_copy();
        }
        if !counted {
            // A list of numbers: the one pass above is its whole release,
            // not a second one calling a drop per item.
            // SAFETY: no item holds anything to release, so forgetting
            // them loses nothing.
            unsafe { self.0.set_len(0) }
        }
    }
}

/// A map's entries, in insertion order.
#[derive(Clone, Default)]
pub struct Entries(pub Table);

impl Deref for Entries {
    type Target = Table;
    fn deref(&self) -> &Table {
        &self.0
    }
}

impl DerefMut for Entries {
    fn deref_mut(&mut self) -> &mut Table {
        &mut self.0
    }
}

impl Drop for Entries {
    fn drop(&mut self) {
        if self.0.values().any(nests) {
            defer(std::mem::take(&mut self.0).into_values());
        }
    }
}

impl Items {
    pub fn into_vec(mut self) -> Vec<Value> {
        std::mem::take(&mut self.0)
    }
}

impl IntoIterator for Items {
    type Item = Value;
    type IntoIter = std::vec::IntoIter<Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a Items {
    type Item = &'a Value;
    type IntoIter = std::slice::Iter<'a, Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Entries {
    pub fn into_map(mut self) -> Table {
        std::mem::take(&mut self.0)
    }
}

impl IntoIterator for Entries {
    type Item = (Key, Value);
    type IntoIter = <Table as IntoIterator>::IntoIter;
    fn into_iter(self) -> Self::IntoIter {
        self.into_map().into_iter()
    }
}

impl<'a> IntoIterator for &'a Entries {
    type Item = (Key, &'a Value);
    type IntoIter = Box<dyn Iterator<Item = (Key, &'a Value)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.0.iter())
    }
}
