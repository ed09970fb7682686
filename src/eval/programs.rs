//! `run(cmd, args..., input:, timeout:, cwd:, env:, binary:)` and `sh(line, ...)`:
//! the language's words for `tasks::subprocess`. The result is a map with
//! `code`, `out` and `err`.

use super::call::ArgValues;
use super::{Ctrl, Interp, R};
use crate::resolve::ir::Builtin;
use crate::runtime::error::{ErrorValue, Kind, io_error, type_error};
use crate::runtime::format;
use crate::runtime::value::{Key, Value};
use crate::sync::board::{Op, What};
use crate::syntax::Span;
use crate::tasks::subprocess::{self, Failure, Request};

/// The named arguments of `run` and `sh`.
#[derive(Default)]
pub(crate) struct Options {
    input: Option<Value>,
    timeout: Option<Value>,
    cwd: Option<Value>,
    env: Option<Value>,
    binary: Option<Value>,
}

impl Options {
    pub(crate) fn take(args: &mut ArgValues) -> Options {
        Options {
            input: args.take_named("input"),
            timeout: args.take_named("timeout"),
            cwd: args.take_named("cwd"),
            env: args.take_named("env"),
            binary: args.take_named("binary"),
        }
    }
}

impl Interp<'_> {
    pub(crate) fn run_program(&mut self, builtin: Builtin, given: &[Value], options: Options, span: Span) -> R<Value> {
        let name = builtin.name();
        let Options { input, timeout, cwd, env, binary } = options;
        let binary = binary.is_some_and(|b| b.truthy());
        let words = given.iter().map(|v| word(v, name)).collect::<Result<Vec<_>, _>>()?;
        let (program, args) = match builtin {
            Builtin::Sh => ("/bin/sh".to_string(), vec!["-c".to_string(), words[0].clone()]),
            _ => (words[0].clone(), words[1..].to_vec()),
        };
        let shown = if builtin == Builtin::Sh { words[0].clone() } else { program.clone() };
        let timeout = match timeout {
            None | Some(Value::Nil) => None,
            Some(seconds) => Some(super::sync_ops::seconds(&seconds, "timeout")?),
        };
        let input = match input {
            None | Some(Value::Nil) => None,
            Some(Value::Str(text)) => Some(text.as_bytes().to_vec()),
            Some(Value::Bytes(bytes)) => Some(bytes.to_vec()),
            Some(other) => {
                return Err(type_error(format!("input: takes a string or bytes, not {}", other.type_name())).into());
            }
        };
        let cwd = match cwd {
            None | Some(Value::Nil) => None,
            Some(Value::Str(dir)) => Some(dir.to_string()),
            Some(other) => {
                return Err(type_error(format!("cwd: takes a folder's path, not {}", other.type_name())).into());
            }
        };
        let env = match env {
            None | Some(Value::Nil) => Vec::new(),
            Some(Value::Map(vars)) => vars
                .lock()
                .iter()
                .map(|(k, v)| Ok((format::display(&k.to_value()), word(v, "env")?)))
                .collect::<Result<Vec<_>, Box<ErrorValue>>>()?,
            Some(other) => return Err(type_error(format!("env: takes a map, not {}", other.type_name())).into()),
        };
        let request = Request { program, args, input, timeout, cwd: cwd.clone(), env };
        let what = What { op: Op::Other, target: 0, span: (span.start, span.end) };
        match subprocess::run(request, &self.cancel, &self.proc.gate, what) {
            Ok(done) => {
                // Output larger than memory can hold is an error, not an abort.
                let text = |bytes: Vec<u8>| match binary {
                    true => Ok(Value::bytes(bytes)),
                    false => crate::runtime::Str::copied(&String::from_utf8_lossy(&bytes)).map(Value::Str),
                };
                let mut result = crate::runtime::value::table(3);
                result.insert(Key::Str("code".into()), Value::Int(done.code));
                result.insert(Key::Str("out".into()), text(done.out)?);
                result.insert(Key::Str("err".into()), text(done.err)?);
                Ok(Value::map(result))
            }
            Err(Failure::Cancelled) => Err(Ctrl::Cancelled),
            Err(Failure::Timeout) => {
                let limit = timeout.map_or(0.0, |t| t.as_secs_f64());
                let message = format!("`{shown}` did not finish within {limit} s, and was killed");
                Err(ErrorValue::new(Kind::Timeout, message).into())
            }
            Err(Failure::Start(e)) => {
                let what = match (&cwd, e.kind()) {
                    (Some(dir), _) if !std::path::Path::new(dir).is_dir() => format!("cannot run `{shown}` in {dir}"),
                    (_, std::io::ErrorKind::NotFound) => {
                        let error = ErrorValue::new(Kind::Io, format!("no program `{shown}` found"))
                            .with_help("run takes a program and its arguments; sh(\"...\") runs a shell line");
                        return Err(error.into());
                    }
                    _ => format!("cannot run `{shown}`"),
                };
                Err(io_error(&what, e).into())
            }
        }
    }
}

/// An argument as the program gets it: strings as they are, numbers
/// written out.
fn word(value: &Value, callee: &str) -> Result<String, Box<ErrorValue>> {
    match value {
        Value::Str(s) => Ok(s.to_string()),
        Value::Int(_) | Value::Float(_) => Ok(format::display(value)),
        other => Err(type_error(format!("`{callee}` takes strings and numbers, not {}", other.type_name()))),
    }
}
