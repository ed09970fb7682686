//! `json_encode` and `json_decode`: values to JSON text and back.
//!
//! Maps become objects (their keys must be strings, or ints, bools and
//! nil written as strings, as Python's `json` does), lists arrays, `nil`
//! `null`. Objects come back as maps in their order. Whole numbers come
//! back as ints when they fit, else as floats. What JSON cannot hold (a
//! task, a lock, a function, NaN) is a `TypeError` or `ValueError` naming
//! it; nesting is bounded, so a list holding itself is an error, not a
//! crash.

use serde_json::Value as Json;

use super::error::{ErrorValue, Fault, Kind, type_error, value_error};
use super::format;
use super::value::{Key, Value};

/// The deepest nesting encoded or decoded.
pub const MAX_DEPTH: usize = 512;

/// `json_encode(v)` on one line, with Python's spacing (`{"a": 1, "b":
/// 2}`), or with `indent` spaces per level.
pub fn encode(value: &Value, indent: Option<usize>) -> Result<String, Fault> {
    let json = to_json(value, 0)?;
    let mut out = Vec::new();
    let written = match indent {
        None => serde::Serialize::serialize(&json, &mut serde_json::Serializer::with_formatter(&mut out, Spaced)),
        Some(width) => {
            let indent = vec![b' '; width];
            let formatter = serde_json::ser::PrettyFormatter::with_indent(&indent);
            serde::Serialize::serialize(&json, &mut serde_json::Serializer::with_formatter(&mut out, formatter))
        }
    };
    written.map_err(|e| value_error(format!("cannot write JSON: {e}")))?;
    String::from_utf8(out).map_err(|e| value_error(format!("cannot write JSON: {e}")))
}

/// One line, a space after each `,` and `:`, as Python's `json.dumps`.
struct Spaced;

impl serde_json::ser::Formatter for Spaced {
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, out: &mut W, first: bool) -> std::io::Result<()> {
        if first { Ok(()) } else { out.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, out: &mut W, first: bool) -> std::io::Result<()> {
        if first { Ok(()) } else { out.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        out.write_all(b": ")
    }
}

fn to_json(value: &Value, depth: usize) -> Result<Json, Fault> {
    if depth > MAX_DEPTH {
        return Err(value_error(format!("JSON nested more than {MAX_DEPTH} levels deep (or a list holding itself)")));
    }
    Ok(match value {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(n) => Json::from(*n),
        Value::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(number) => Json::Number(number),
            None => return Err(value_error(format!("JSON has no {}", format::repr(value)))),
        },
        Value::Str(s) => Json::String(s.to_string()),
        Value::Bytes(_) => {
            return Err(type_error("JSON cannot hold bytes").with_help("decode them to text first: `b.decode()`"));
        }
        Value::List(list) => {
            let items = list.lock().clone();
            Json::Array(items.iter().map(|item| to_json(item, depth + 1)).collect::<Result<_, _>>()?)
        }
        Value::Map(map) => {
            let entries: Vec<(Key, Value)> = map.lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let mut object = serde_json::Map::with_capacity(entries.len());
            for (key, item) in entries {
                object.insert(key_text(&key)?, to_json(&item, depth + 1)?);
            }
            Json::Object(object)
        }
        other => {
            let help = "JSON holds nil, bools, numbers, strings, lists and maps";
            return Err(type_error(format!("{} cannot be written as JSON", other.type_name())).with_help(help));
        }
    })
}

/// An object's key: strings as they are; ints, bools and nil as Python
/// writes them.
fn key_text(key: &Key) -> Result<String, Fault> {
    Ok(match key {
        Key::Str(s) => s.to_string(),
        Key::Int(n) => n.to_string(),
        Key::Bool(b) => b.to_string(),
        Key::Nil => "null".to_string(),
        Key::Float(_) => {
            let shown = format::repr(&key.to_value());
            return Err(type_error(format!("a JSON object's key is a string, not the float {shown}")));
        }
    })
}

/// `json_decode(text)`: a bad text is a `ValueError` giving its line and
/// column.
pub fn decode(text: &str) -> Result<Value, Fault> {
    let json: Json = serde_json::from_str(text).map_err(|e| {
        let at = format!("line {}, column {}", e.line(), e.column());
        let what = e.to_string();
        let what = what.split(" at line ").next().unwrap_or(&what).to_string();
        ErrorValue::new(Kind::Value, format!("invalid JSON at {at}: {what}"))
    })?;
    Ok(from_json(json))
}

fn from_json(json: Json) -> Value {
    match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::str(&s),
        Json::Array(items) => Value::list(items.into_iter().map(from_json).collect()),
        Json::Object(object) => {
            let entries = object.into_iter().map(|(k, v)| (Key::Str(k.as_str().into()), from_json(v)));
            Value::map(entries.collect())
        }
    }
}
