//! Runtime errors as values: what `catch e` binds, what a task's failure
//! carries, what the report shows. Wording of each kind lives here.

use std::sync::Arc;

use crate::syntax::Span;

/// The error kinds of the language (docs/language.md 4.8). Scripts may make
/// their own with `error("Kind", "message")`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Syntax,
    Name,
    Type,
    Value,
    Index,
    Key,
    ZeroDivision,
    Overflow,
    QueueFull,
    QueueEmpty,
    QueueClosed,
    TaskFailed,
    Timeout,
    Deadlock,
    Terminated,
    Interrupted,
    Io,
    Resource,
    Abandoned,
    Error,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Syntax => "SyntaxError",
            Kind::Name => "NameError",
            Kind::Type => "TypeError",
            Kind::Value => "ValueError",
            Kind::Index => "IndexError",
            Kind::Key => "KeyError",
            Kind::ZeroDivision => "ZeroDivisionError",
            Kind::Overflow => "OverflowError",
            Kind::QueueFull => "QueueFull",
            Kind::QueueEmpty => "QueueEmpty",
            Kind::QueueClosed => "QueueClosed",
            Kind::TaskFailed => "TaskFailed",
            Kind::Timeout => "Timeout",
            Kind::Deadlock => "Deadlock",
            Kind::Terminated => "Terminated",
            Kind::Interrupted => "Interrupted",
            Kind::Io => "IOError",
            Kind::Resource => "ResourceError",
            Kind::Abandoned => "Abandoned",
            Kind::Error => "Error",
        }
    }
}

/// One call the error passed through: the function and where it was called.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceEntry {
    pub function: Arc<str>,
    pub call: Span,
}

#[derive(Clone, Debug)]
pub struct ErrorValue {
    pub kind: Arc<str>,
    pub message: String,
    /// Where it was raised; set by the evaluator if the raiser had no span.
    pub span: Option<Span>,
    pub help: Option<String>,
    /// Calls it unwound through, innermost first.
    pub trace: Vec<TraceEntry>,
    /// The value given to `throw`, when it was not an error value itself.
    pub payload: Option<crate::runtime::value::Value>,
    /// The task it happened in, when not the main one ("thread Thread-1").
    pub task: Option<String>,
    /// For `TaskFailed`: the error the task failed with.
    pub cause: Option<Arc<ErrorValue>>,
}

/// An error travelling up the evaluator.
pub type Fault = Box<ErrorValue>;

impl ErrorValue {
    pub fn new(kind: Kind, message: impl Into<String>) -> Fault {
        ErrorValue::custom(kind.name(), message)
    }

    pub fn custom(kind: &str, message: impl Into<String>) -> Fault {
        Box::new(ErrorValue {
            kind: kind.into(),
            message: message.into(),
            span: None,
            help: None,
            trace: Vec::new(),
            payload: None,
            task: None,
            cause: None,
        })
    }

    pub fn with_help(mut self: Fault, help: impl Into<String>) -> Fault {
        self.help = Some(help.into());
        self
    }

    pub fn is(&self, kind: Kind) -> bool {
        *self.kind == *kind.name()
    }
}

/// The most bytes (or items) a string, list or text may hold: past it an
/// operation raises `ResourceError` before allocating.
pub const MAX_LEN: usize = 1 << 28;

pub fn too_large(what: &str) -> Fault {
    past_limit(what, MAX_LEN)
}

/// A `ResourceError`: `what` would pass its `limit` of bytes or items.
pub fn past_limit(what: &str, limit: usize) -> Fault {
    ErrorValue::new(Kind::Resource, format!("{what} would be too large (limit {limit})"))
}

/// An empty vector with room for `n` items, or a `ResourceError` when the
/// memory cannot be had (under `ulimit -v`, say) instead of an abort.
pub fn room_for<T>(n: usize, what: &str) -> Result<Vec<T>, Fault> {
    let mut items = Vec::new();
    items.try_reserve_exact(n).map_err(|_| out_of_memory(what))?;
    Ok(items)
}

/// An empty string with room for `n` bytes; see [`room_for`].
pub fn text_room(n: usize) -> Result<String, Fault> {
    let mut text = String::new();
    text.try_reserve_exact(n).map_err(|_| out_of_memory("string"))?;
    Ok(text)
}

pub fn out_of_memory(what: &str) -> Fault {
    ErrorValue::new(Kind::Resource, format!("out of memory: no room for the {what}"))
        .with_help("the machine or the address-space limit (ulimit -v) has no room left")
}

pub fn type_error(message: impl Into<String>) -> Fault {
    ErrorValue::new(Kind::Type, message)
}

pub fn value_error(message: impl Into<String>) -> Fault {
    ErrorValue::new(Kind::Value, message)
}

pub fn overflow() -> Fault {
    ErrorValue::new(Kind::Overflow, "integer overflow").with_help("integers are 64-bit; use floats for larger numbers")
}

pub fn io_error(what: &str, error: std::io::Error) -> Fault {
    ErrorValue::new(Kind::Io, format!("{what}: {}", io_message(&error)))
}

/// The OS error text without Rust's "(os error N)" suffix.
fn io_message(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
