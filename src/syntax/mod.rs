//! Text to AST. Runs nothing: `parse` checks the text against the grammar
//! (`grammar/concsh.pest`) and lowers pest's pairs to the [`ast`].

pub mod ast;
mod error;
mod grammar;
mod hints;
mod lower;
mod nesting;
pub mod span;

pub use error::SyntaxError;
pub use span::Span;

/// The reserved words (the grammar's `keyword` rule).
pub const KEYWORDS: &[&str] = &[
    "let",
    "fn",
    "return",
    "if",
    "else",
    "while",
    "for",
    "in",
    "break",
    "continue",
    "try",
    "catch",
    "finally",
    "throw",
    "spawn",
    "thread",
    "join",
    "put",
    "get",
    "lock",
    "acquire",
    "release",
    "set",
    "clear",
    "wait",
    "notify",
    "close",
    "terminate",
    "pool",
    "submit",
    "true",
    "false",
    "nil",
    "and",
    "or",
    "not",
];

/// Parses a whole script. All syntax errors found are returned together.
pub fn parse(source: &str) -> Result<ast::Program, Vec<SyntaxError>> {
    nesting::check(source).map_err(|e| vec![e])?;
    lower::program(source)
}
