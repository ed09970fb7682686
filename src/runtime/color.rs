//! Whether reports and timelines on stderr are in colour: `--color
//! always|never`, or by default (`auto`) the usual conventions, in this
//! order: `CLICOLOR_FORCE` (set and not `0`) forces colour, `NO_COLOR`
//! (set and not empty) turns it off, and otherwise stderr must be a
//! terminal.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    Auto,
    Always,
    Never,
}

static CHOICE: AtomicU8 = AtomicU8::new(Choice::Auto as u8);

/// Records `--color` (once, before any task starts).
pub fn choose(choice: Choice) {
    CHOICE.store(choice as u8, Ordering::Relaxed);
}

/// Whether stderr gets colour.
pub fn on_stderr() -> bool {
    match CHOICE.load(Ordering::Relaxed) {
        c if c == Choice::Always as u8 => true,
        c if c == Choice::Never as u8 => false,
        _ => auto(std::io::stderr().is_terminal()),
    }
}

/// Whether the prompt (always on a terminal) colours what is typed.
pub fn at_prompt() -> bool {
    match CHOICE.load(Ordering::Relaxed) {
        c if c == Choice::Always as u8 => true,
        c if c == Choice::Never as u8 => false,
        _ => auto(true),
    }
}

fn auto(terminal: bool) -> bool {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if set("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
        return true;
    }
    set("NO_COLOR").is_none() && terminal
}
