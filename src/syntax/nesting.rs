//! A guard run before the grammar: the parser is recursive, so text nested
//! thousands of brackets deep is refused here with a clear error instead of
//! exhausting the stack.

use super::{Span, SyntaxError};

/// Deeper nesting than any readable script needs.
pub const MAX_NESTING: usize = 200;

/// Counts bracket depth, skipping comments and string contents (roughly:
/// the grammar is the real judge; this only needs to bound recursion).
pub fn check(source: &str) -> Result<(), SyntaxError> {
    let mut depth = 0usize;
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
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(SyntaxError::new(
                        Span::new(at, at + 1),
                        format!("brackets nested more than {MAX_NESTING} levels deep"),
                        "too deep",
                    )
                    .with_help("split the expression into smaller pieces with `let`"));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}
