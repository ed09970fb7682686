//! A guard run before the grammar: the parser is recursive, so text nested
//! thousands of brackets deep is refused here with a clear error instead of
//! exhausting the stack.

use super::{Span, SyntaxError};

/// Deeper nesting than any readable script needs.
pub const MAX_NESTING: usize = 200;

/// Refuses nesting deeper than [`MAX_NESTING`] (roughly: the grammar is
/// the real judge; this only needs to bound recursion).
pub fn check(source: &str) -> Result<(), SyntaxError> {
    let mut depth = 0usize;
    let mut too_deep: Option<usize> = None;
    scan(source, |at, c| match c {
        '(' | '[' | '{' => {
            depth += 1;
            if depth > MAX_NESTING && too_deep.is_none() {
                too_deep = Some(at);
            }
        }
        _ => depth = depth.saturating_sub(1),
    });
    match too_deep {
        None => Ok(()),
        Some(at) => Err(SyntaxError::new(
            Span::new(at, at + 1),
            format!("brackets nested more than {MAX_NESTING} levels deep"),
            "too deep",
        )
        .with_help("split the expression into smaller pieces with `let`")),
    }
}

/// The innermost bracket still open at the end of `source`, if any.
pub fn unclosed(source: &str) -> Option<(usize, char)> {
    let mut open: Vec<(usize, char)> = Vec::new();
    scan(source, |at, c| match c {
        '(' | '[' | '{' => open.push((at, c)),
        _ => {
            open.pop();
        }
    });
    open.pop()
}

/// Calls `visit` with each bracket outside comments and string text.
fn scan(source: &str, mut visit: impl FnMut(usize, char)) {
    let mut in_comment = false;
    let mut in_string = false;
    let mut escaped = false;
    for (at, c) in source.char_indices() {
        if in_comment {
            in_comment = c != '\n';
            continue;
        }
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '#' => in_comment = true,
            '"' => in_string = true,
            '(' | '[' | '{' | ')' | ']' | '}' => visit(at, c),
            _ => {}
        }
    }
}
