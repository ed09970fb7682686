//! Syntax errors: what is wrong with the text of a script.

use super::span::Span;

/// One syntax error, in words a person understands.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    /// One line: what is wrong ("unexpected `)`").
    pub message: String,
    pub span: Span,
    /// What was expected there, shown under the span.
    pub label: String,
    pub help: Option<String>,
    /// More places to show, each with its label (the bracket that opened
    /// what went wrong, say).
    pub others: Vec<(Span, String)>,
    /// The text stopped before the construct was finished: the REPL asks
    /// for another line instead of reporting it.
    pub incomplete: bool,
}

impl SyntaxError {
    pub fn new(span: Span, message: impl Into<String>, label: impl Into<String>) -> SyntaxError {
        SyntaxError {
            message: message.into(),
            span,
            label: label.into(),
            help: None,
            others: Vec::new(),
            incomplete: false,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> SyntaxError {
        self.help = Some(help.into());
        self
    }
}
