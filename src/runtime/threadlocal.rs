//! `threadlocal()`: an object whose fields each task sees on its own
//! (`tl.name = "x"` in one thread is invisible to the others).

use std::collections::HashMap;

use indexmap::IndexMap;
use parking_lot::Mutex;

use super::value::Value;

#[derive(Default)]
pub struct ThreadLocal {
    fields: Mutex<HashMap<u64, IndexMap<String, Value>>>,
}

impl ThreadLocal {
    /// Task `task`'s field `name`, if it set one.
    pub fn get(&self, task: u64, name: &str) -> Option<Value> {
        self.fields.lock().get(&task).and_then(|f| f.get(name).cloned())
    }

    pub fn set(&self, task: u64, name: &str, value: Value) {
        self.fields.lock().entry(task).or_default().insert(name.to_string(), value);
    }

    /// Forgets what a finished task stored.
    pub fn forget(&self, task: u64) {
        self.fields.lock().remove(&task);
    }
}
