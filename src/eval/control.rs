//! How evaluation leaves a statement early: an error, `return`, `break`,
//! `continue`, `exit(n)`, or a cancel (Ctrl-C, `terminate`).

use crate::runtime::Value;
use crate::runtime::error::Fault;
use crate::syntax::Span;

#[derive(Debug)]
pub enum Ctrl {
    Error(Fault),
    Return(Value),
    Break,
    Continue,
    /// `exit(n)`: ends the process; `finally` blocks run on the way out.
    Exit(i32),
    /// The task was cancelled; not catchable.
    Cancelled,
}

pub type R<T> = Result<T, Ctrl>;

impl From<Fault> for Ctrl {
    fn from(error: Fault) -> Ctrl {
        Ctrl::Error(error)
    }
}

impl Ctrl {
    /// Gives an error without a location the span of the expression that
    /// raised it (builtins raise errors without knowing where they are).
    pub fn at(self, span: Span) -> Ctrl {
        match self {
            Ctrl::Error(mut e) => {
                e.span.get_or_insert(span);
                Ctrl::Error(e)
            }
            other => other,
        }
    }
}
