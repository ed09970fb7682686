//! A guard run before the grammar: the parser, the resolver and the
//! evaluator are recursive, so text nested thousands of levels deep is
//! refused here with a clear error instead of exhausting a stack.
//!
//! Nesting comes from brackets, and also from operators and keywords that
//! take an operand without brackets: prefix `-` and `not`, `**` (right
//! associative), `fn(...) =>`, and `join`, `get`, `spawn` and the other
//! keywords whose operand is an expression. Each of those is counted until
//! its statement or list item ends (`,`, `;`, a closing bracket, or the
//! end of a line that ends in a whole operand), which over-counts a little
//! and never under-counts.

use super::{Span, SyntaxError};

/// Deeper nesting than any readable script needs.
pub const MAX_NESTING: usize = 200;

/// Keywords whose operand is an expression, nesting one level deeper.
const OPENING_WORDS: &[&str] =
    &["join", "get", "wait", "acquire", "thread", "spawn", "submit", "pool", "put", "lock", "throw", "return"];

/// Refuses nesting deeper than [`MAX_NESTING`] (roughly: the grammar is
/// the real judge; this only needs to bound recursion).
pub fn check(source: &str) -> Result<(), SyntaxError> {
    // Per open bracket (the statement level first): the operand-taking
    // operators not yet ended at that level.
    let mut pending: Vec<usize> = vec![0];
    let mut depth = 0usize;
    // The last significant character, and whether it ended an operand.
    let mut last = ' ';
    let mut too_deep: Option<usize> = None;
    let mut previous = ' ';
    let mut deeper = |depth: &mut usize, at: usize| {
        *depth += 1;
        if *depth > MAX_NESTING && too_deep.is_none() {
            too_deep = Some(at);
        }
    };
    scan(source, |at, c, next| {
        let word_starts = is_word_char(c) && !is_word_char(previous);
        previous = c;
        if word_starts {
            let word = word_at(source, at);
            let prefix_not = word == "not" && !source[at..].trim_start().starts_with("in");
            if prefix_not || OPENING_WORDS.contains(&word) {
                if let Some(open) = pending.last_mut() {
                    *open += 1;
                }
                deeper(&mut depth, at);
            }
        }
        match c {
            '(' | '[' | '{' => {
                pending.push(0);
                deeper(&mut depth, at);
            }
            ')' | ']' | '}' if pending.len() > 1 => depth -= 1 + pending.pop().unwrap_or(0),
            ',' | ';' | '\n' if c != '\n' || ends_operand(last) => {
                if let Some(open) = pending.last_mut() {
                    depth -= std::mem::take(open);
                }
            }
            '-' if next != Some('=') && !ends_operand(last) => {
                if let Some(open) = pending.last_mut() {
                    *open += 1;
                }
                deeper(&mut depth, at);
            }
            '>' if last == '=' => {
                if let Some(open) = pending.last_mut() {
                    *open += 1;
                }
                deeper(&mut depth, at);
            }
            '*' if next == Some('*') => {
                if let Some(open) = pending.last_mut() {
                    *open += 1;
                }
                deeper(&mut depth, at);
            }
            _ => {}
        }
        if !c.is_whitespace() || c == '\n' {
            last = c;
        }
    });
    match too_deep {
        None => Ok(()),
        Some(at) => Err(SyntaxError::new(
            Span::new(at, at + 1),
            format!("expressions nested more than {MAX_NESTING} levels deep"),
            "too deep",
        )
        .with_help("split the expression into smaller pieces with `let`")),
    }
}

/// Whether a character ends an operand (a name, a number, a string or a
/// closing bracket): after one, `-` is binary and a newline ends the line.
fn ends_operand(c: char) -> bool {
    is_word_char(c) || matches!(c, ')' | ']' | '}' | '"')
}

/// The word that starts at `at`.
fn word_at(source: &str, at: usize) -> &str {
    let rest = &source[at..];
    let end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
    &rest[..end]
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The innermost bracket still open at the end of `source`, if any.
pub fn unclosed(source: &str) -> Option<(usize, char)> {
    let mut open: Vec<(usize, char)> = Vec::new();
    scan(source, |at, c, _| match c {
        '(' | '[' | '{' => open.push((at, c)),
        ')' | ']' | '}' => {
            open.pop();
        }
        _ => {}
    });
    open.pop()
}

/// Calls `visit` with each character outside comments and string text
/// (a string's closing quote and a comment's ending newline included),
/// and the character after it.
fn scan(source: &str, mut visit: impl FnMut(usize, char, Option<char>)) {
    let mut in_comment = false;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = source.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let next = chars.peek().map(|&(_, c)| c);
        if in_comment {
            in_comment = c != '\n';
            if c == '\n' {
                visit(at, c, next);
            }
            continue;
        }
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    in_string = false;
                    visit(at, c, next);
                }
                _ => {}
            }
            continue;
        }
        match c {
            '#' => in_comment = true,
            '"' => in_string = true,
            _ => visit(at, c, next),
        }
    }
}
