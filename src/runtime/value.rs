//! The values a script computes with.
//!
//! A [`Value`] is 16 bytes and `Send + Sync`: threads of one process share
//! every variable, so lists and maps are shared, mutable containers behind
//! an `Arc` and a lock (which the thread that made one skips until another
//! thread uses it: `bias`), and reading a variable copies only a pointer.
//! Each container operation takes its lock once and never holds two locks
//! at a time (comparisons and printing work on snapshots), so two threads
//! can never deadlock inside the interpreter.

use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::resolve::ir::{Builtin, FnDef};

use super::bias::{Biased, BiasedGuard};
use super::error::ErrorValue;
use super::future::FutureCell;
use super::handle::HandleRef;
use super::pool::Pool;
use super::task::Task;
use super::teardown::{Entries, Items, defer};
use super::text::Str;
use super::threadlocal::ThreadLocal;

/// A list: its items behind a lock its maker skips (see `bias`).
pub type ListRef = Arc<Biased<Items>>;
pub use super::table::Table;

/// An empty map table with room for `capacity` entries.
pub fn table(capacity: usize) -> Table {
    Table::with_capacity(capacity)
}
pub type MapRef = Arc<MapCell>;

/// A map: its entries behind a lock, and a count of the changes made to
/// them, which a method cache reads without the lock (`vm::methods`): a
/// cached entry is the map's while the count is the one it was taken at.
/// The thread that made the map skips the lock until another thread uses
/// the map too (see `bias`).
pub struct MapCell {
    changes: AtomicU64,
    entries: Biased<Entries>,
}

impl MapCell {
    pub fn new(entries: Table) -> MapCell {
        MapCell { changes: AtomicU64::new(0), entries: Biased::new(Entries(entries)) }
    }

    #[inline]
    pub fn lock(&self) -> MapGuard<'_> {
        MapGuard { changes: &self.changes, entries: self.entries.lock() }
    }

    /// How many times the entries were open for writing. Counted before the
    /// write, so a reader that sees the count it cached sees no write begun
    /// since.
    #[inline(always)]
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }
}

/// A map's entries, held by this thread alone: reading is free; every
/// write access counts as a change, but for an update of a scalar in place
/// (`scalar_at_mut`).
pub struct MapGuard<'a> {
    changes: &'a AtomicU64,
    entries: BiasedGuard<'a, Entries>,
}

impl MapGuard<'_> {
    /// The value at `position` to update in place, when it is a number,
    /// string or the like: an update leaves one (`ops::update_scalar`), so
    /// no function entry changes and the change is not counted (an
    /// object's counter, updated by its own method, keeps that method's
    /// cache).
    #[inline(always)]
    pub fn scalar_at_mut(&mut self, position: usize) -> Option<&mut Value> {
        self.entries.0.value_at_mut(position).filter(|v| v.is_scalar())
    }
}

impl Deref for MapGuard<'_> {
    type Target = Entries;
    #[inline(always)]
    fn deref(&self) -> &Entries {
        &self.entries
    }
}

impl DerefMut for MapGuard<'_> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Entries {
        // Only the guard's holder writes the count: a load and a store.
        self.changes.store(self.changes.load(Ordering::Relaxed) + 1, Ordering::Release);
        &mut self.entries
    }
}

#[derive(Default)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Str),
    /// Raw bytes (a binary file, a program's output): immutable, as
    /// Python's `bytes`.
    Bytes(Arc<Vec<u8>>),
    List(ListRef),
    Map(MapRef),
    Range(Arc<Range>),
    Func(Arc<Closure>),
    Builtin(Builtin),
    Error(Arc<ErrorValue>),
    /// A thread or process.
    Task(Arc<Task>),
    /// A queue, lock, semaphore, condition, event or shared value.
    Handle(HandleRef),
    ThreadLocal(Arc<ThreadLocal>),
    Pool(Arc<Pool>),
    /// The result of a `submit`, when it comes.
    Future(Arc<FutureCell>),
    /// A queue on a Redis server, shared by tasks on any machine.
    RemoteQueue(Arc<crate::cluster::queue::RemoteQueue>),
    /// Internal: a frame slot holding a variable that a closure captured.
    /// Scripts never see one; the evaluator reads and writes through it.
    Cell(Arc<VarCell>),
    /// Internal: a global whose `let` has not run yet.
    Unset,
}

// Cloning a number is a copy, inline; only values that hold a reference
// count take the call (the derived `clone` was a call for every value).
impl Clone for Value {
    #[inline(always)]
    fn clone(&self) -> Value {
        match self {
            Value::Nil => Value::Nil,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(n) => Value::Int(*n),
            Value::Float(f) => Value::Float(*f),
            _ => self.clone_counted(),
        }
    }
}

impl Value {
    #[inline(never)]
    fn clone_counted(&self) -> Value {
        match self {
            Value::Nil => Value::Nil,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(n) => Value::Int(*n),
            Value::Float(f) => Value::Float(*f),
            Value::Str(s) => Value::Str(s.clone()),
            Value::Bytes(b) => Value::Bytes(b.clone()),
            Value::List(l) => Value::List(l.clone()),
            Value::Map(m) => Value::Map(m.clone()),
            Value::Range(r) => Value::Range(r.clone()),
            Value::Func(f) => Value::Func(f.clone()),
            Value::Builtin(b) => Value::Builtin(*b),
            Value::Error(e) => Value::Error(e.clone()),
            Value::Task(t) => Value::Task(t.clone()),
            Value::Handle(h) => Value::Handle(h.clone()),
            Value::ThreadLocal(t) => Value::ThreadLocal(t.clone()),
            Value::Pool(p) => Value::Pool(p.clone()),
            Value::Future(f) => Value::Future(f.clone()),
            Value::RemoteQueue(q) => Value::RemoteQueue(q.clone()),
            Value::Cell(c) => Value::Cell(c.clone()),
            Value::Unset => Value::Unset,
        }
    }

    /// Stores `value` here. The old value is dropped through a call only
    /// if it holds a reference count: overwriting a number is a plain write.
    #[inline(always)]
    pub fn set(&mut self, value: Value) {
        // The old value's kind is tested where it is: replaced first, it
        // is copied out to be tested.
        if self.is_scalar_copy() {
            // SAFETY: the old value needs no drop.
            unsafe { std::ptr::write(self, value) }
        } else {
            drop(std::mem::replace(self, value));
        }
    }

    /// Stores the int `n` here: two plain writes when the old value holds
    /// nothing to release (a `Value` built first and copied whole is
    /// written piece by piece, padding included).
    #[inline(always)]
    pub fn set_int(&mut self, n: i64) {
        if self.is_scalar_copy() {
            // SAFETY: the old value needs no drop, so overwriting it
            // without one loses nothing.
            unsafe { std::ptr::write(self, Value::Int(n)) }
        } else {
            *self = Value::Int(n);
        }
    }

    /// Holds nothing to release (no reference count, no string).
    #[inline(always)]
    pub fn is_scalar_copy(&self) -> bool {
        matches!(self, Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Unset)
    }
}

// Threads share values: this fails to compile if a variant stops being
// `Send + Sync`.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<Value>();
};

// A list of a million ints is 16 MB of values: this fails to compile if a
// variant makes `Value` wider.
const _: () = assert!(std::mem::size_of::<Value>() == 16);

/// A variable shared by reference: a global, or a local a closure captured.
#[derive(Default)]
pub struct VarCell {
    var: Mutex<Value>,
    /// The value of a captured variable that nothing assigns after its
    /// binding (the resolver proves it; `Binding::FixedCell`): read with
    /// no lock, so a closure reading it writes no line other threads read.
    /// `var` holds it too, for whatever reads through the lock.
    fixed: Option<Value>,
}

impl VarCell {
    pub fn new(value: Value) -> VarCell {
        VarCell { var: Mutex::new(value), fixed: None }
    }

    /// A cell never assigned after this.
    pub fn fixed(value: Value) -> VarCell {
        VarCell { var: Mutex::new(value.clone()), fixed: Some(value) }
    }

    /// The cell a binding makes: fixed when nothing assigns it after.
    pub fn bound(value: Value, fixed: bool) -> VarCell {
        match fixed {
            true => VarCell::fixed(value),
            false => VarCell::new(value),
        }
    }

    #[inline]
    pub fn lock(&self) -> parking_lot::MutexGuard<'_, Value> {
        self.var.lock()
    }

    /// The value, the cell gone. (A fixed cell's second reference goes
    /// first, so the value's last one is the one handed back.)
    pub fn into_inner(self) -> Value {
        drop(self.fixed);
        self.var.into_inner()
    }

    /// The value of a fixed cell, where it is.
    #[inline(always)]
    pub fn fixed_value(&self) -> Option<&Value> {
        self.fixed.as_ref()
    }

    /// The variable's value: without the lock when it is fixed.
    #[inline(always)]
    pub fn read(&self) -> Value {
        match &self.fixed {
            Some(value) => value.clone(),
            None => self.var.lock().clone(),
        }
    }
}

/// `range(start, stop, step)`: lazy, so `range(10000000)` costs nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub start: i64,
    pub stop: i64,
    pub step: i64,
}

impl Range {
    pub fn len(&self) -> usize {
        let (start, stop, step) = (self.start as i128, self.stop as i128, self.step as i128);
        let n = if step > 0 { (stop - start + step - 1) / step } else { (start - stop - step - 1) / -step };
        n.max(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Member `i` (below `len()`). The member fits in an int but
    /// `step * i` may not: arithmetic modulo 2^64 gives it exactly.
    pub fn get(&self, i: usize) -> i64 {
        self.start.wrapping_add(self.step.wrapping_mul(i as i64))
    }

    /// Whether `n`, reached from the start by steps, is still a member:
    /// the bound test alone.
    #[inline(always)]
    pub fn holds_next(&self, n: i64) -> bool {
        if self.step > 0 { n < self.stop } else { n > self.stop }
    }

    pub fn contains(&self, n: i64) -> bool {
        let in_bounds = if self.step > 0 { n >= self.start && n < self.stop } else { n <= self.start && n > self.stop };
        in_bounds && (n as i128 - self.start as i128) % self.step as i128 == 0
    }
}

/// A function value: its code and the variables it captured.
pub struct Closure {
    pub def: Arc<FnDef>,
    pub upvalues: Box<[Arc<VarCell>]>,
}

impl Drop for Closure {
    fn drop(&mut self) {
        // A chain of closures each capturing the last frees without recursion.
        let captured = std::mem::take(&mut self.upvalues).into_vec();
        defer(captured.into_iter().filter_map(|cell| Arc::into_inner(cell).map(VarCell::into_inner)));
    }
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(s.into())
    }

    pub fn bytes(bytes: Vec<u8>) -> Value {
        Value::Bytes(Arc::new(bytes))
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Arc::new(Biased::new(Items(items))))
    }

    pub fn map(entries: Table) -> Value {
        Value::Map(Arc::new(MapCell::new(entries)))
    }

    #[inline]
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil | Value::Unset => false,
            Value::Bool(b) => *b,
            Value::Int(n) => *n != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::List(l) => !l.lock().is_empty(),
            Value::Map(m) => !m.lock().is_empty(),
            Value::Range(r) => !r.is_empty(),
            _ => true,
        }
    }

    /// Holds no container: operators on it take no lock.
    #[inline]
    pub fn is_scalar(&self) -> bool {
        matches!(self, Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Str(_) | Value::Bytes(_))
    }

    /// The name `type()` gives.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil | Value::Unset => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Range(_) => "range",
            Value::Func(_) | Value::Builtin(_) => "function",
            Value::Error(_) => "error",
            Value::Task(t) => t.kind.name(),
            Value::Handle(h) => h.kind().name(),
            Value::ThreadLocal(_) => "threadlocal",
            Value::Pool(_) => "pool",
            Value::Future(_) => "future",
            Value::RemoteQueue(_) => "queue",
            Value::Cell(c) => c.lock().type_name(),
        }
    }

    /// Deep equality, as `==`: `1 == 1.0`, lists and maps by content, at
    /// any depth, without recursion. Containers already being compared are
    /// taken as equal when met again, so structures that contain
    /// themselves compare by shape instead of looping.
    pub fn equals(&self, other: &Value) -> bool {
        let mut todo: Vec<(Value, Value)> = Vec::new();
        let mut met: HashSet<(usize, usize)> = HashSet::new();
        if !self.equals_shallow(other, &mut todo, &mut met) {
            return false;
        }
        while let Some((a, b)) = todo.pop() {
            if !a.equals_shallow(&b, &mut todo, &mut met) {
                return false;
            }
        }
        true
    }

    /// Compares scalars; for two containers, compares their sizes and
    /// queues their items' pairs on `todo`.
    fn equals_shallow(&self, other: &Value, todo: &mut Vec<(Value, Value)>, met: &mut HashSet<(usize, usize)>) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Int(a), Value::Float(b)) | (Value::Float(b), Value::Int(a)) => (*a as f64) == *b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::List(a), Value::List(b)) => {
                if Arc::ptr_eq(a, b) || !met.insert((Arc::as_ptr(a) as usize, Arc::as_ptr(b) as usize)) {
                    return true;
                }
                let a = a.lock().clone();
                let b = b.lock().clone();
                if a.len() != b.len() {
                    return false;
                }
                todo.extend(a.into_iter().zip(b));
                true
            }
            (Value::Map(a), Value::Map(b)) => {
                if Arc::ptr_eq(a, b) || !met.insert((Arc::as_ptr(a) as usize, Arc::as_ptr(b) as usize)) {
                    return true;
                }
                let a = a.lock().clone();
                let b = b.lock().clone();
                if a.len() != b.len() {
                    return false;
                }
                for (k, v) in a {
                    match b.get(&k) {
                        Some(w) => todo.push((v, w.clone())),
                        None => return false,
                    }
                }
                true
            }
            (Value::Range(a), Value::Range(b)) => a == b,
            (Value::Func(a), Value::Func(b)) => Arc::ptr_eq(a, b),
            (Value::Builtin(a), Value::Builtin(b)) => a == b,
            (Value::Error(a), Value::Error(b)) => Arc::ptr_eq(a, b),
            (Value::Task(a), Value::Task(b)) => Arc::ptr_eq(a, b),
            (Value::Handle(a), Value::Handle(b)) => a == b,
            (Value::ThreadLocal(a), Value::ThreadLocal(b)) => Arc::ptr_eq(a, b),
            (Value::Pool(a), Value::Pool(b)) => Arc::ptr_eq(a, b),
            (Value::Future(a), Value::Future(b)) => Arc::ptr_eq(a, b),
            (Value::RemoteQueue(a), Value::RemoteQueue(b)) => a.url() == b.url(),
            _ => false,
        }
    }
}

/// A map key: the hashable values. A float with a whole value is the same
/// key as the int (`m[1]` and `m[1.0]` agree, since `1 == 1.0`).
#[derive(Clone, Debug)]
pub enum Key {
    Nil,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(Str),
}

impl Key {
    /// The key for a value, or `None` for an unhashable one (a list, a map).
    pub fn from_value(value: &Value) -> Option<Key> {
        Some(match value {
            Value::Nil => Key::Nil,
            Value::Bool(b) => Key::Bool(*b),
            Value::Int(n) => Key::Int(*n),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Key::Int(*f as i64),
            Value::Float(f) => Key::Float(f.to_bits()),
            Value::Str(s) => Key::Str(s.clone()),
            _ => return None,
        })
    }

    pub fn to_value(&self) -> Value {
        match self {
            Key::Nil => Value::Nil,
            Key::Bool(b) => Value::Bool(*b),
            Key::Int(n) => Value::Int(*n),
            Key::Float(bits) => Value::Float(f64::from_bits(*bits)),
            Key::Str(s) => Value::Str(s.clone()),
        }
    }
}

/// A string key, borrowed: finds a `Key::Str` without building one (no
/// allocation, no reference count touched), as `m.name` does.
#[derive(Hash)]
pub struct StrKey<'a>(pub &'a str);

impl indexmap::Equivalent<Key> for StrKey<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        matches!(key, Key::Str(s) if s.as_str() == self.0)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        match (self, other) {
            (Key::Nil, Key::Nil) => true,
            (Key::Bool(a), Key::Bool(b)) => a == b,
            (Key::Int(a), Key::Int(b)) => a == b,
            (Key::Float(a), Key::Float(b)) => a == b,
            (Key::Str(a), Key::Str(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Key::Nil => 0u8.hash(state),
            Key::Bool(b) => b.hash(state),
            Key::Int(n) => n.hash(state),
            Key::Float(bits) => bits.hash(state),
            // As `str` hashes, so a `StrKey` finds it.
            Key::Str(s) => s.as_str().hash(state),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::format::repr(self))
    }
}
