//! Mistakes found before running: undefined names, misplaced `break`,
//! calls that do not fit the function.

use crate::syntax::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct ResolveError {
    /// The error kind a script would see: `NameError`, `SyntaxError`, `TypeError`.
    pub kind: &'static str,
    pub message: String,
    pub span: Span,
    pub label: String,
    /// Other places worth pointing at (the first definition, say).
    pub others: Vec<(Span, String)>,
    pub help: Option<String>,
}

impl ResolveError {
    fn new(kind: &'static str, span: Span, message: impl Into<String>, label: impl Into<String>) -> ResolveError {
        ResolveError { kind, message: message.into(), span, label: label.into(), others: Vec::new(), help: None }
    }

    pub fn name(span: Span, message: impl Into<String>, label: impl Into<String>) -> ResolveError {
        ResolveError::new("NameError", span, message, label)
    }

    pub fn syntax(span: Span, message: impl Into<String>, label: impl Into<String>) -> ResolveError {
        ResolveError::new("SyntaxError", span, message, label)
    }

    pub fn import(span: Span, message: impl Into<String>, label: impl Into<String>) -> ResolveError {
        ResolveError::new("ImportError", span, message, label)
    }

    pub fn typ(span: Span, message: impl Into<String>, label: impl Into<String>) -> ResolveError {
        ResolveError::new("TypeError", span, message, label)
    }

    pub fn with_help(mut self, help: impl Into<String>) -> ResolveError {
        self.help = Some(help.into());
        self
    }

    pub fn with_label(mut self, span: Span, label: impl Into<String>) -> ResolveError {
        self.others.push((span, label.into()));
        self
    }
}
