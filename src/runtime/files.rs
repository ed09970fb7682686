//! Paths and folders: `path_join`, `basename`, `dirname`, `ext`,
//! `abs_path` (text only, as Python's `os.path`), and `file_size`,
//! `is_file`, `is_dir`, `walk`, `rename`, `copy_file`, `remove_tree`, and
//! the whole-file read under a size limit of `read_file`/`read_bytes`.
//! Their arguments come checked as strings (`eval::builtins`).

use std::path::{Component, Path, PathBuf};

use super::error::{ErrorValue, Fault, Kind, io_error, value_error};
use super::value::Value;

fn path_value(path: &Path) -> Value {
    Value::str(&path.to_string_lossy())
}

/// `path_join(a, b, ...)`: a later absolute part starts over, as Python's.
pub fn join(parts: &[&str]) -> Value {
    path_value(&parts.iter().collect::<PathBuf>())
}

/// Python's `os.path.basename`: what follows the last `/`.
pub fn basename(path: &str) -> Value {
    Value::str(path.rsplit('/').next().unwrap_or(path))
}

/// Python's `os.path.dirname`: what comes before the last `/`.
pub fn dirname(path: &str) -> Value {
    Value::str(match path.rfind('/') {
        Some(0) => "/",
        Some(at) => path[..at].trim_end_matches('/'),
        None => "",
    })
}

/// Python's `os.path.splitext(p)[1]`: `.gz` of `a.tar.gz`; nothing for
/// `.bashrc`.
pub fn ext(path: &str) -> Value {
    let name = path.rsplit('/').next().unwrap_or("");
    let stem = name.trim_start_matches('.');
    Value::str(match stem.rfind('.') {
        Some(at) => &stem[at..],
        None => "",
    })
}

/// Python's `os.path.abspath`: against the working folder, `.` and `..`
/// folded, links not followed.
pub fn absolute(path: &str) -> Result<Value, Fault> {
    let joined = std::env::current_dir().map_err(|e| io_error(".", e))?.join(path);
    let mut folded = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                folded.pop();
            }
            Component::CurDir => {}
            other => folded.push(other.as_os_str()),
        }
    }
    Ok(path_value(&folded))
}

/// The whole file at `path`, or the error `past` gives, before a byte is
/// read, when it is longer than `limit` bytes (never an attempt to hold
/// more than the value it becomes may).
pub fn read_at_most(path: &str, limit: usize, past: impl FnOnce() -> Fault) -> Result<Vec<u8>, Fault> {
    let size = std::fs::metadata(path).map_err(|e| io_error(path, e))?.len();
    if size > limit as u64 {
        return Err(past());
    }
    std::fs::read(path).map_err(|e| io_error(path, e))
}

pub fn size(path: &str) -> Result<Value, Fault> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    Ok(Value::Int(meta.len() as i64))
}

pub fn is_file(path: &str) -> Value {
    Value::Bool(Path::new(path).is_file())
}

pub fn is_dir(path: &str) -> Value {
    Value::Bool(Path::new(path).is_dir())
}

/// `walk(dir)`: every file under `dir`, at any depth, as a path relative
/// to it, sorted. Links are listed, never followed (no loops).
pub fn walk(dir: &str) -> Result<Value, Fault> {
    let root = PathBuf::from(dir);
    let mut found: Vec<String> = Vec::new();
    // A stack of folders still to read: no recursion, however deep.
    let mut folders = vec![PathBuf::new()];
    while let Some(folder) = folders.pop() {
        // The root as given: `walk("file")` names no `file/` in its error.
        let here = if folder.as_os_str().is_empty() { root.clone() } else { root.join(&folder) };
        let entries = std::fs::read_dir(&here).map_err(|e| io_error(&here.to_string_lossy(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&here.to_string_lossy(), e))?;
            let relative = folder.join(entry.file_name());
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => folders.push(relative),
                _ => found.push(relative.to_string_lossy().into_owned()),
            }
        }
    }
    found.sort();
    Ok(Value::list(found.iter().map(|p| Value::str(p)).collect()))
}

pub fn rename(from: &str, to: &str) -> Result<Value, Fault> {
    std::fs::rename(from, to).map_err(|e| io_error(&format!("{from} -> {to}"), e))?;
    Ok(Value::Nil)
}

/// `copy_file(src, dst)`: the kernel copies (copy_file_range), as `cp`
/// does; gives the bytes copied.
pub fn copy(from: &str, to: &str) -> Result<Value, Fault> {
    if Path::new(from).is_dir() {
        let error = ErrorValue::new(Kind::Io, format!("{from}: is a folder, not a file"));
        return Err(error.with_help("copy a folder's files one by one: `for f in walk(dir) { ... }`"));
    }
    let copied = std::fs::copy(from, to).map_err(|e| io_error(&format!("{from} -> {to}"), e))?;
    Ok(Value::Int(copied as i64))
}

/// `remove_tree(path)`: a folder and all it holds (links removed, never
/// followed, so nothing outside it goes), or a file.
pub fn remove_tree(path: &str) -> Result<Value, Fault> {
    let absolute = absolute(path)?;
    if path.trim().is_empty() || matches!(&absolute, Value::Str(a) if &**a == "/") {
        return Err(value_error(format!("remove_tree refuses to remove {path:?}")));
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| io_error(path, e))?;
    let removed = if meta.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    removed.map_err(|e| io_error(path, e))?;
    Ok(Value::Nil)
}
