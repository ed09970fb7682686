//! Shared lists and maps as values: their methods (`push`, `pop`, `keys`,
//! ...), items (`m["k"]`), `in`, `len` and loops. Each operation is one
//! atomic step of `sync::cell` or `sync::dict`, across threads and
//! processes, as with Python's `Manager().list()` and `.dict()`.

use super::Interp;
use super::methods::want;
use super::ops::{self, MAX_LEN, too_large};
use crate::runtime::error::{ErrorValue, Fault, Kind, type_error, value_error};
use crate::runtime::format;
use crate::runtime::value::{Key, Value};
use crate::runtime::wire::{self, FnTable};
use crate::sync::cell::Headed;
use crate::sync::cell::SharedCells;
use crate::sync::dict::SharedMap;
use crate::sync::handle::{Handle, HandleKind};

/// The methods of a shared list, and of a shared map.
pub const LIST_METHODS: &[&str] = &["push", "pop", "insert", "remove", "extend", "clear", "index"];
pub const MAP_METHODS: &[&str] = &["get", "remove", "keys", "values", "items", "clear"];

/// A key's bytes in a shared map: its canonical serialisation.
pub fn key_bytes(key: &Value) -> Result<Vec<u8>, Fault> {
    let key = Key::from_value(key).ok_or_else(|| ops::unhashable(key))?;
    wire::encode(&key.to_value())
}

/// A map's entries as the bytes of each key and value.
pub fn map_pairs(map: &crate::runtime::value::MapRef) -> Result<crate::sync::dict::Pairs, Fault> {
    let entries = map.lock().clone();
    entries.iter().map(|(k, v)| Ok((wire::encode(&k.to_value())?, wire::encode(v)?))).collect()
}

impl Interp<'_> {
    fn decode(&self, bytes: &[u8]) -> Result<Value, Fault> {
        wire::decode(bytes, &self.tables.functions)
    }

    /// `m[key]` of a shared map.
    pub(crate) fn shared_map_get(&self, h: Handle, key: &Value) -> Result<Value, Fault> {
        match SharedMap(h.off()).get(&key_bytes(key)?).map_err(super::sync_ops::sync_fault)? {
            Some(bytes) => self.decode(&bytes),
            None => Err(ops::missing_key(key)),
        }
    }

    /// `m[key] = value` of a shared map.
    pub(crate) fn shared_map_set(&self, h: Handle, key: &Value, value: &Value) -> Result<(), Fault> {
        let (key, value) = (key_bytes(key)?, wire::encode(value)?);
        SharedMap(h.off()).set(&key, &value).map_err(super::sync_ops::sync_fault)
    }

    /// A shared map's entries as a map, at one instant.
    pub(crate) fn shared_map_value(&self, h: Handle) -> Result<Value, Fault> {
        let entries = SharedMap(h.off()).entries().map_err(super::sync_ops::sync_fault)?;
        let mut table = crate::runtime::value::table(entries.len());
        for (k, v) in entries {
            let key = self.decode(&k)?;
            let key = Key::from_value(&key).ok_or_else(|| ops::unhashable(&key))?;
            table.insert(key, self.decode(&v)?);
        }
        Ok(Value::map(table))
    }

    /// `m.value = {...}`: every entry replaced at once.
    pub(crate) fn shared_map_replace(&self, h: Handle, value: &Value) -> Result<(), Fault> {
        let Value::Map(map) = value else {
            return Err(type_error(format!("a shared map's value is a map, not {}", value.type_name())));
        };
        SharedMap(h.off()).replace(&map_pairs(map)?).map_err(super::sync_ops::sync_fault)
    }

    /// `arr.value = [...]`: every item replaced at once.
    pub(crate) fn shared_list_replace(&self, h: Handle, value: &Value) -> Result<(), Fault> {
        let Value::List(list) = value else {
            return Err(type_error(format!("a shared list's value is a list, not {}", value.type_name())));
        };
        let items = list.lock().clone();
        let encoded = items.iter().map(wire::encode).collect::<Result<Vec<_>, _>>()?;
        SharedCells(h.off()).replace(&encoded).map_err(super::sync_ops::sync_fault)
    }

    /// Every item of a shared list, at one instant.
    pub(crate) fn shared_list_value(&self, h: Handle) -> Result<Value, Fault> {
        let items = SharedCells(h.off()).load_all().map_err(super::sync_ops::sync_fault)?;
        Ok(Value::list(items.iter().map(|b| self.decode(b)).collect::<Result<_, _>>()?))
    }

    /// What a `for` walks over a shared map: its keys when the loop starts.
    pub(crate) fn shared_map_keys(&self, h: Handle) -> Result<Value, Fault> {
        self.shared_map_list(h, "keys")
    }

    /// `m.keys()`, `m.values()` or `m.items()` of a shared map, at one instant.
    fn shared_map_list(&self, h: Handle, what: &str) -> Result<Value, Fault> {
        let entries = SharedMap(h.off()).entries().map_err(super::sync_ops::sync_fault)?;
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in &entries {
            out.push(match what {
                "keys" => self.decode(k)?,
                "values" => self.decode(v)?,
                _ => Value::list(vec![self.decode(k)?, self.decode(v)?]),
            });
        }
        Ok(Value::list(out))
    }

    /// Item `i` of a shared list, `None` once past its end (it may shrink
    /// while a loop walks it).
    pub(crate) fn shared_list_item(&self, h: Handle, i: usize) -> Result<Option<Value>, Fault> {
        match SharedCells(h.off()).load_if_there(i).map_err(super::sync_ops::sync_fault)? {
            Some(bytes) => self.decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// A method of a shared list or map, if `h` is one and `name` is one.
    pub(crate) fn shared_method(&self, h: Handle, name: &str, mut args: Vec<Value>) -> Option<Result<Value, Fault>> {
        let fault = super::sync_ops::sync_fault;
        Some(match h.kind() {
            HandleKind::Array if LIST_METHODS.contains(&name) => {
                let cells = SharedCells(h.off());
                let position = |v: &Value| -> Result<i64, Fault> {
                    match v {
                        Value::Int(i) => Ok(*i),
                        v => Err(type_error(format!("`{name}` needs an int position, not {}", v.type_name()))),
                    }
                };
                (|| match name {
                    "push" => {
                        want(name, &args, 1, 1)?;
                        if cells.len() >= MAX_LEN {
                            return Err(too_large("list"));
                        }
                        cells.insert(None, &[wire::encode(&args[0])?]).map_err(fault).map(|_| Value::Nil)
                    }
                    "extend" => {
                        want(name, &args, 1, 1)?;
                        let more = match &args[0] {
                            Value::List(list) => list.lock().clone(),
                            Value::Handle(other) if other.kind() == HandleKind::Array => {
                                let Value::List(list) = self.shared_list_value(other.handle())? else {
                                    return Ok(Value::Nil);
                                };
                                list.lock().clone()
                            }
                            other => {
                                return Err(type_error(format!("`extend` takes a list, not {}", other.type_name())));
                            }
                        };
                        if cells.len().saturating_add(more.len()) > MAX_LEN {
                            return Err(too_large("list"));
                        }
                        let encoded = more.iter().map(wire::encode).collect::<Result<Vec<_>, _>>()?;
                        // One step: no other task's push lands in the middle.
                        cells.insert(None, &encoded).map_err(fault).map(|_| Value::Nil)
                    }
                    "pop" => {
                        want(name, &args, 0, 1)?;
                        let at = args.first().map(position).transpose()?;
                        match cells.remove(at) {
                            Ok(bytes) => self.decode(&bytes),
                            Err(crate::sync::SyncError::OutOfRange) if at.is_none() => {
                                Err(ErrorValue::new(Kind::Index, "pop from an empty shared list"))
                            }
                            Err(crate::sync::SyncError::OutOfRange) => {
                                Err(ErrorValue::new(Kind::Index, "shared list index out of range"))
                            }
                            Err(e) => Err(fault(e)),
                        }
                    }
                    "insert" => {
                        want(name, &args, 2, 2)?;
                        let at = position(&args[0])?;
                        if cells.len() >= MAX_LEN {
                            return Err(too_large("list"));
                        }
                        let value = wire::encode(&args.remove(1))?;
                        cells.insert(Some(at), &[value]).map_err(fault).map(|_| Value::Nil)
                    }
                    "remove" | "index" => {
                        want(name, &args, 1, 1)?;
                        let not_in = || value_error(format!("{} is not in the list", format::repr(&args[0])));
                        if name == "remove" {
                            let equal = |bytes: &[u8]| self.decode(bytes).is_ok_and(|v| v.equals(&args[0]));
                            return match cells.remove_first(equal).map_err(fault)? {
                                Some(_) => Ok(Value::Nil),
                                None => Err(not_in()),
                            };
                        }
                        let Value::List(items) = self.shared_list_value(h)? else { return Ok(Value::Nil) };
                        let found = items.lock().iter().position(|v| v.equals(&args[0]));
                        found.map(|at| Value::Int(at as i64)).ok_or_else(not_in)
                    }
                    _ => {
                        want(name, &args, 0, 0)?;
                        cells.replace(&[]).map(|_| Value::Nil).map_err(fault)
                    }
                })()
            }
            HandleKind::Map if MAP_METHODS.contains(&name) => {
                let map = SharedMap(h.off());
                (|| match name {
                    "get" => {
                        want(name, &args, 1, 2)?;
                        match map.get(&key_bytes(&args[0])?).map_err(fault)? {
                            Some(bytes) => self.decode(&bytes),
                            None => Ok(args.get(1).cloned().unwrap_or(Value::Nil)),
                        }
                    }
                    "remove" => {
                        want(name, &args, 1, 1)?;
                        match map.remove(&key_bytes(&args[0])?).map_err(fault)? {
                            Some(bytes) => self.decode(&bytes),
                            None => Err(ops::missing_key(&args[0])),
                        }
                    }
                    "clear" => {
                        want(name, &args, 0, 0)?;
                        map.replace(&[]).map(|_| Value::Nil).map_err(fault)
                    }
                    _ => {
                        want(name, &args, 0, 0)?;
                        self.shared_map_list(h, name)
                    }
                })()
            }
            _ => return None,
        })
    }
}

/// `needle in` a shared list or map (`None`: not one of them).
pub fn contains(h: Handle, needle: &Value) -> Option<Result<bool, Fault>> {
    let fault = super::sync_ops::sync_fault;
    Some(match h.kind() {
        HandleKind::Map => match Key::from_value(needle) {
            Some(_) => key_bytes(needle).and_then(|k| SharedMap(h.off()).contains(&k).map_err(fault)),
            None => Ok(false),
        },
        HandleKind::Array => SharedCells(h.off()).load_all().map_err(fault).map(|items| {
            // Compared as values: `1.0 in shared([1])` is true.
            let no_functions = FnTable::new();
            items.iter().any(|b| wire::decode(b, &no_functions).is_ok_and(|v| v.equals(needle)))
        }),
        _ => return None,
    })
}
