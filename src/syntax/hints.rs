//! What a failed parse most likely means, for the slips people make
//! most: a `}` missing before `else`, a string left open, a `{` in a
//! string meant literally, Python's `def` and `:`, a bracket left open. Each hint
//! names the real cause, labels the token that opened the trouble, and
//! says how to fix it; the grammar's own error stands when none applies.

use super::lower::word_before;
use super::{Span, SyntaxError, nesting};

/// A hint for the parse that failed at `at` (the furthest point reached),
/// if one of the common slips explains it.
pub fn for_failure(source: &str, at: usize) -> Option<SyntaxError> {
    python_def(source, at)
        .or_else(|| python_colon(source, at))
        .or_else(|| else_inside_block(source, at))
        .or_else(|| brace_in_string(source, at))
        .or_else(|| open_string(source, at))
        .or_else(|| open_bracket(source, at))
}

/// The word ending just before `at` (spaces skipped), with its start,
/// when it is the first word of its line.
fn first_word_before(source: &str, at: usize) -> Option<(usize, &str)> {
    let (start, word) = word_before(source, at)?;
    let line_start = source[..start].trim_end_matches([' ', '\t']);
    (line_start.is_empty() || line_start.ends_with('\n')).then_some((start, word))
}

/// `def f(x):`: Python's way of making a function.
fn python_def(source: &str, at: usize) -> Option<SyntaxError> {
    let (start, _) = first_word_before(source, at).filter(|(_, w)| *w == "def")?;
    let rest = &source[at..];
    let name: String = rest.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    let name = if name.is_empty() { "name".to_string() } else { name };
    Some(
        SyntaxError::new(Span::new(start, start + 3), "concsh makes functions with `fn`, not `def`", "Python's `def`")
            .with_help(format!("write `fn {name}(...) {{ ... }}`: the body goes in braces, with no `:`")),
    )
}

/// `if x > 0:` or `while busy:`: Python's colon where a block's `{` goes.
fn python_colon(source: &str, at: usize) -> Option<SyntaxError> {
    let rest = source.get(at..)?.strip_prefix(':')?;
    if !rest.split('\n').next().is_some_and(|line| line.trim().is_empty() || line.trim_start().starts_with('#')) {
        return None;
    }
    let head = source[..at].rsplit('\n').next().unwrap_or("").trim();
    Some(
        SyntaxError::new(Span::new(at, at + 1), "a block goes in braces, not after `:`", "Python's `:`")
            .with_help(format!("write `{head} {{ ... }}`: the block's lines go inside the braces")),
    )
}

/// `else` on a line of its own inside the `if` block: its `}` is missing.
fn else_inside_block(source: &str, at: usize) -> Option<SyntaxError> {
    let (start, _) = first_word_before(source, at).filter(|(_, w)| *w == "else")?;
    let (open, '{') = nesting::unclosed(&source[..start])? else { return None };
    let mut error =
        SyntaxError::new(Span::new(start, start + 4), "`else` is inside the block before it", "this `else`");
    error.others.push((Span::new(open, open + 1), "this block is never closed before the `else`".into()));
    Some(error.with_help("close the block first: `} else {`"))
}

/// Where a string's text or interpolation is, while scanning.
enum Open {
    /// A string's text, from its opening quote.
    Text(usize),
    /// An interpolation, from its `{`.
    Interpolation(usize),
    /// A bracket inside an interpolation's expression.
    Brace,
}

/// What is open at `at`: the strings and interpolations around it.
fn open_at(source: &str, at: usize) -> Vec<Open> {
    let mut open: Vec<Open> = Vec::new();
    let mut chars = source[..at.min(source.len())].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (open.last(), c) {
            (Some(Open::Text(_)), '\\') => {
                chars.next();
            }
            (Some(Open::Text(_)), '"') => {
                open.pop();
            }
            (Some(Open::Text(_)), '{') if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                chars.next();
            }
            (Some(Open::Text(_)), '{') => open.push(Open::Interpolation(i)),
            (Some(Open::Text(_)), _) => {}
            (_, '"') => open.push(Open::Text(i)),
            (Some(Open::Interpolation(_) | Open::Brace), '{' | '(' | '[') => open.push(Open::Brace),
            (Some(Open::Interpolation(_) | Open::Brace), '}' | ')' | ']') => {
                open.pop();
            }
            (None, '#') => {
                // A comment, to the end of its line.
                while chars.peek().is_some_and(|&(_, n)| n != '\n') {
                    chars.next();
                }
            }
            _ => {}
        }
    }
    open
}

/// `print("{}")` or `"{\"a\": 1}"`: a `{` in a string starts an
/// interpolation, and what follows is no expression.
fn brace_in_string(source: &str, at: usize) -> Option<SyntaxError> {
    let brace = open_at(source, at).iter().rev().find_map(|o| match o {
        Open::Interpolation(i) => Some(*i),
        _ => None,
    })?;
    // Only what looks meant literally: `{}`, or quotes and escapes (JSON).
    let inside = source[brace + 1..at].trim();
    let literal = inside.is_empty() || inside.starts_with('\\') || source[at..].starts_with(['"', '\\']);
    if !literal {
        return None;
    }
    let mut error = SyntaxError::new(
        Span::new(brace, brace + 1),
        "`{` in a string starts an interpolation",
        "an interpolation starts here",
    );
    let end = (at + 1).min(source.len());
    if at > brace + 1 && source.is_char_boundary(at) && source.is_char_boundary(end) {
        error.others.push((Span::new(at, end), "this is not an expression".into()));
    }
    let example = if inside.is_empty() { "\"{{}}\"" } else { "\"{{\\\"a\\\": 1}}\"" };
    Some(error.with_help(format!("for a literal brace write `{{{{` (and `}}}}`): {example}")))
}

/// A string still open at the end of the text.
fn open_string(source: &str, at: usize) -> Option<SyntaxError> {
    if at < source.len() {
        return None;
    }
    let Some(Open::Text(quote)) = open_at(source, source.len()).into_iter().next() else { return None };
    let mut error = SyntaxError::new(Span::new(quote, quote + 1), "this string is never closed", "opened here");
    error.incomplete = true;
    Some(error.with_help("close it with `\"`; a quote inside a string is written `\\\"`"))
}

/// A `[` or `(` left open on an earlier line: the next line is read as
/// more of the list or call.
fn open_bracket(source: &str, at: usize) -> Option<SyntaxError> {
    if at >= source.len() {
        return None;
    }
    let (open, bracket) = nesting::unclosed(&source[..at]).filter(|(_, b)| *b != '{')?;
    // The list or call went on to the next line, which starts anew.
    let line_start = source[..at].trim_end_matches([' ', '\t']);
    if !source[open..at].contains('\n') || !line_start.ends_with('\n') {
        return None;
    }
    let close = if bracket == '[' { ']' } else { ')' };
    let found = source[at..].chars().next().map_or(0, char::len_utf8);
    let mut error = SyntaxError::new(Span::new(open, open + 1), format!("`{bracket}` is never closed"), "opened here");
    error.others.push((Span::new(at, at + found), format!("expected `,` or `{close}` before this")));
    Some(error.with_help(format!("add the matching `{close}`")))
}
