//! A map's table: insertion-ordered key/value pairs, hashed as `keyhash`
//! says, with an array part.
//!
//! A map whose keys are exactly `0, 1, 2, ...`, added in that order (the
//! commonest int-keyed map: `m[i] = ...` in a loop from 0), keeps only its
//! values, in a plain vector: a lookup is an index, an insert a push, and
//! an entry takes 16 bytes where a hashed one takes 40 plus its slot in
//! the index (Lua's and PHP's tables do the same). The first key that
//! breaks the pattern moves the values into the hashed part, for good.
//! Both parts keep insertion order, so which one holds a map never shows.

use std::hash::Hash;

use indexmap::{Equivalent, IndexMap};

use super::keyhash::KeyHashing;
use super::text::Str;
use super::value::{Key, StrKey, Value};

type Hashed = IndexMap<Key, Value, KeyHashing>;

#[derive(Clone, Default)]
pub struct Table {
    /// The values of keys `0..len`, while `hashed` is empty.
    array: Vec<Value>,
    hashed: Hashed,
}

/// What a table can be searched by: a [`Key`], or a borrowed string.
pub trait Lookup: Hash + Equivalent<Key> {
    /// The array part's index this key would have.
    fn position(&self) -> Option<usize>;
}

impl Lookup for Key {
    #[inline]
    fn position(&self) -> Option<usize> {
        match self {
            Key::Int(n) => usize::try_from(*n).ok(),
            _ => None,
        }
    }
}

impl Lookup for StrKey<'_> {
    #[inline]
    fn position(&self) -> Option<usize> {
        None
    }
}

impl Table {
    pub fn with_capacity(capacity: usize) -> Table {
        Table { array: Vec::new(), hashed: Hashed::with_capacity_and_hasher(capacity, Default::default()) }
    }

    /// Whether the array part holds the entries (an empty table counts).
    #[inline]
    fn is_array(&self) -> bool {
        self.hashed.is_empty()
    }

    pub fn len(&self) -> usize {
        self.array.len() + self.hashed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn get<Q: Lookup + ?Sized>(&self, key: &Q) -> Option<&Value> {
        if self.is_array() {
            return key.position().and_then(|at| self.array.get(at));
        }
        self.hashed.get(key)
    }

    #[inline]
    pub fn get_mut<Q: Lookup + ?Sized>(&mut self, key: &Q) -> Option<&mut Value> {
        if self.is_array() {
            return key.position().and_then(|at| self.array.get_mut(at));
        }
        self.hashed.get_mut(key)
    }

    pub fn contains_key<Q: Lookup + ?Sized>(&self, key: &Q) -> bool {
        self.get(key).is_some()
    }

    /// The position of `key` in insertion order.
    pub fn get_index_of<Q: Lookup + ?Sized>(&self, key: &Q) -> Option<usize> {
        if self.is_array() {
            return key.position().filter(|at| *at < self.array.len());
        }
        self.hashed.get_index_of(key)
    }

    /// The string key at `position`, if that entry has one.
    #[inline]
    pub fn str_key_at(&self, position: usize) -> Option<&Str> {
        match self.hashed.get_index(position) {
            Some((Key::Str(key), _)) => Some(key),
            _ => None,
        }
    }

    /// The value at `position` in insertion order.
    #[inline]
    pub fn value_at(&self, position: usize) -> Option<&Value> {
        if self.is_array() {
            return self.array.get(position);
        }
        self.hashed.get_index(position).map(|(_, value)| value)
    }

    #[inline]
    pub fn value_at_mut(&mut self, position: usize) -> Option<&mut Value> {
        if self.is_array() {
            return self.array.get_mut(position);
        }
        self.hashed.get_index_mut(position).map(|(_, value)| value)
    }

    /// Sets `key` to `value`, giving back the value it replaces.
    #[inline]
    pub fn insert(&mut self, key: Key, value: Value) -> Option<Value> {
        if self.is_array() {
            match key.position() {
                Some(at) if at < self.array.len() => return Some(std::mem::replace(&mut self.array[at], value)),
                Some(at) if at == self.array.len() => {
                    self.array.push(value);
                    return None;
                }
                _ => self.move_to_hashed(),
            }
        }
        self.hashed.insert(key, value)
    }

    /// Moves the array part's entries into the hashed part.
    #[cold]
    fn move_to_hashed(&mut self) {
        let array = std::mem::take(&mut self.array);
        self.hashed.reserve(array.len() + 1);
        for (at, value) in array.into_iter().enumerate() {
            self.hashed.insert(Key::Int(at as i64), value);
        }
    }

    /// Removes `key`, keeping the others in order.
    pub fn shift_remove<Q: Lookup + ?Sized>(&mut self, key: &Q) -> Option<Value> {
        if self.is_array() {
            let at = key.position().filter(|at| *at < self.array.len())?;
            if at + 1 == self.array.len() {
                return self.array.pop();
            }
            self.move_to_hashed();
        }
        self.hashed.shift_remove(key)
    }

    pub fn clear(&mut self) {
        self.array.clear();
        self.hashed.clear();
    }

    pub fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        (0..self.array.len()).map(|at| Key::Int(at as i64)).chain(self.hashed.keys().cloned())
    }

    /// The keys, as values (`m.keys()`).
    pub fn key_values(&self) -> impl Iterator<Item = Value> + '_ {
        self.keys().map(|key| key.to_value())
    }

    pub fn values(&self) -> impl Iterator<Item = &Value> + '_ {
        self.array.iter().chain(self.hashed.values())
    }

    pub fn iter(&self) -> impl Iterator<Item = (Key, &Value)> + '_ {
        let array = self.array.iter().enumerate().map(|(at, value)| (Key::Int(at as i64), value));
        array.chain(self.hashed.iter().map(|(key, value)| (key.clone(), value)))
    }

    pub fn into_values(self) -> impl Iterator<Item = Value> {
        self.array.into_iter().chain(self.hashed.into_values())
    }
}

impl IntoIterator for Table {
    type Item = (Key, Value);
    type IntoIter = Box<dyn Iterator<Item = (Key, Value)>>;

    fn into_iter(self) -> Self::IntoIter {
        let array = self.array.into_iter().enumerate().map(|(at, value)| (Key::Int(at as i64), value));
        Box::new(array.chain(self.hashed))
    }
}

impl FromIterator<(Key, Value)> for Table {
    fn from_iter<I: IntoIterator<Item = (Key, Value)>>(entries: I) -> Table {
        let mut table = Table::default();
        table.extend(entries);
        table
    }
}

impl Extend<(Key, Value)> for Table {
    fn extend<I: IntoIterator<Item = (Key, Value)>>(&mut self, entries: I) {
        for (key, value) in entries {
            self.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int_keys(table: &Table) -> Vec<i64> {
        table
            .keys()
            .map(|key| match key {
                Key::Int(n) => n,
                _ => -1,
            })
            .collect()
    }

    #[test]
    fn keys_from_zero_in_order_stay_in_the_array() {
        let mut table = Table::default();
        for i in 0..100 {
            assert!(table.insert(Key::Int(i), Value::Int(i * 2)).is_none());
        }
        assert!(table.is_array());
        assert_eq!(table.len(), 100);
        assert!(matches!(table.get(&Key::Int(7)), Some(Value::Int(14))));
        assert!(table.get(&Key::Int(100)).is_none());
        assert!(table.get(&Key::Int(-1)).is_none());
        assert!(table.get(&StrKey("7")).is_none());
        assert!(matches!(table.insert(Key::Int(7), Value::Nil), Some(Value::Int(14))));
        assert!(table.is_array());
        assert!(matches!(table.shift_remove(&Key::Int(99)), Some(Value::Int(198))));
        assert!(table.is_array(), "the last key goes without a move");
    }

    #[test]
    fn any_other_key_moves_the_entries_keeping_their_order() {
        for breaking in [Key::Int(5), Key::Int(-1), Key::Str("x".into()), Key::Float(0.5f64.to_bits())] {
            let mut table: Table = (0..3).map(|i| (Key::Int(i), Value::Int(i))).collect();
            table.insert(breaking.clone(), Value::Nil);
            assert!(!table.is_array());
            assert_eq!(int_keys(&table)[..3], [0, 1, 2]);
            assert_eq!(table.keys().nth(3), Some(breaking));
            assert!(matches!(table.get(&Key::Int(2)), Some(Value::Int(2))));
        }
        let mut table: Table = (0..3).map(|i| (Key::Int(i), Value::Int(i))).collect();
        table.shift_remove(&Key::Int(0));
        assert_eq!(int_keys(&table), [1, 2]);
        table.insert(Key::Int(0), Value::Nil);
        assert_eq!(int_keys(&table), [1, 2, 0]);
    }

    #[test]
    fn a_float_key_with_a_whole_value_is_the_int() {
        let mut table = Table::default();
        table.insert(Key::from_value(&Value::Float(0.0)).unwrap_or(Key::Nil), Value::Int(1));
        assert!(table.is_array());
        assert!(matches!(table.get(&Key::Int(0)), Some(Value::Int(1))));
    }
}
