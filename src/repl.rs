//! The interactive prompt: `concsh` with a terminal on stdin.
//!
//! A session is one growing program. Each input is parsed against the
//! session's text so far (earlier inputs blanked out, so spans and line
//! numbers count from the session's start), resolved against the session's
//! globals, and run by a fresh main task of one long-lived process. Tasks
//! started by an input keep running in the background.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::validate::Validator;
use rustyline::{Context, Editor, ExternalPrinter, Helper};

use crate::eval::{
    Ctrl, DEFAULT_MAX_TASKS, Ends, Interp, Process, Watch, dump, finish_tasks, members, take_deadlocked,
};
use crate::observe::race;
use crate::report::{Part, Report, Source};
use crate::resolve::Globals;
use crate::resolve::builtin::Builtin;
use crate::resolve::modules;
use crate::runtime::task::{Task, TaskKind};
use crate::runtime::{Value, output};
use crate::sync::board;
use crate::syntax;
use crate::syntax::ast::{Ident, Pattern, Stmt, StmtKind};
use crate::{resolve, signals};

/// The global an echoed expression's value is kept in (as Python's `_`).
const LAST: &str = "_";

/// The prompt's commands, as Tab completes them.
const COMMANDS: &[&str] = &[":help", ":vars", ":tasks", ":load", ":race", ":reset", ":quit"];

/// What `:help` shows, around its examples.
const HELP_TOP: &str = "concsh: type a statement and press Enter; an unfinished block continues on `...`.\n";
const HELP_END: &str = "\
Commands: :help  :vars  :tasks  :load FILE  :race on|off  :reset  :quit (or Ctrl-D).
Ctrl-C stops the statement that is running; tasks go on in the background.
The language reference is docs/language.md.
";

/// The examples of `:help`, three to a row. Together, in order, they are a
/// program: a unit test parses and resolves it, so they cannot go stale.
const EXAMPLES: &[&str] = &[
    "let x = 1",
    "fn f(a) { return a * 2 }",
    "f(x)",
    "let t = thread f(1)",
    "let p = spawn f(2)",
    "join t",
    "pool 2 map f over [1, 2]",
    "let pl = pool(2)",
    "let r = submit f(3) to pl",
    "let q = queue()",
    "put 1 into q",
    "get q",
    "let m = lock()",
    "lock m { print(x) }",
    "close q",
];

fn help_text() -> String {
    let mut text = String::from(HELP_TOP);
    for row in EXAMPLES.chunks(3) {
        let cells: Vec<String> = row.iter().map(|e| format!("{e:<28}")).collect();
        text.push_str(&format!("  {}\n", cells.concat().trim_end()));
    }
    text.push_str(HELP_END);
    text
}

/// The prompt, and the prompt of a line that continues an unfinished one
/// (as wide, so the code lines up).
const PROMPT: &str = "concsh> ";
const MORE: &str = "    ... ";

/// Runs the REPL until `:quit` or end of input (with the race detector
/// on from the start with `race`); gives the exit status.
pub fn run(race: bool) -> i32 {
    // Tab completes what all candidates share; a second Tab lists them.
    let config = rustyline::Config::builder().completion_type(rustyline::CompletionType::List).build();
    let mut editor = match Editor::<Prompt, rustyline::history::DefaultHistory>::with_config(config) {
        Ok(editor) => editor,
        Err(e) => {
            output::report(&format!("concsh: cannot open the terminal: {e}\n"));
            return crate::cli::EXIT_USAGE;
        }
    };
    let mut session = Session::default();
    let color = crate::runtime::color::at_prompt();
    let files = FilenameCompleter::new();
    editor.set_helper(Some(Prompt { values: Vec::new(), hinter: HistoryHinter::new(), files, color }));
    let printer = Printer::start(&mut editor);
    let history = history_file();
    if let Some(path) = &history {
        // No history yet is the usual first run, not an error.
        let _ = editor.load_history(path);
    }
    say(&format!("concsh {}: :help for help, :quit (or Ctrl-D) to leave\n", env!("CARGO_PKG_VERSION")));
    if race {
        race_command("on");
    }
    // Whether the last input was a Ctrl-D that found tasks running.
    let mut warned = false;
    loop {
        // What the last input printed is on the screen before the prompt.
        printer.flush();
        if let Some(helper) = editor.helper_mut() {
            helper.values = session.named_values();
        }
        let entry = match read_entry(&mut editor) {
            Entry::Text(entry) => entry,
            Entry::Dropped => continue,
            // As a shell with jobs: the first Ctrl-D says what it would end.
            Entry::End => match session.running() {
                running if running > 0 && !std::mem::replace(&mut warned, true) => {
                    say(&format!(
                        "concsh: {running} task(s) still running (:tasks lists them); Ctrl-D again or :quit ends them\n"
                    ));
                    continue;
                }
                _ => break,
            },
        };
        warned = false;
        let input = entry.trim();
        if input.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(entry.as_str());
        if let Some(path) = &history {
            // Saved as it grows: a session ended by a signal keeps it.
            let _ = editor.save_history(path);
        }
        match input {
            ":quit" | ":q" | ":exit" => break,
            ":help" | ":h" => say(&help_text()),
            ":vars" => session.show_vars(),
            ":tasks" => session.show_tasks(),
            ":reset" => {
                std::mem::take(&mut session).end();
                say("concsh: session reset\n");
            }
            _ if input.starts_with(":load ") => session.load(input[":load ".len()..].trim()),
            _ if input.starts_with(":race") => race_command(input[":race".len()..].trim()),
            _ if input.starts_with(':') => output::report(&format!("concsh: unknown command {input} (try :help)\n")),
            // Python's and a shell's words, unless the session named something so.
            "quit" | "exit" | "help" if !session.named_values().iter().any(|(name, _)| name == input) => {
                say(&format!("concsh: the command is :{}\n", if input == "help" { "help" } else { "quit" }))
            }
            _ => session.eval(&entry, Path::new(".")),
        }
    }
    let code = session.end();
    printer.flush();
    code
}

/// `:race on|off`: the race detector, for the inputs that follow.
fn race_command(word: &str) {
    let text = match word {
        "on" if race::enable() => {
            // The prompt's thread is one task for the detector across inputs.
            if !race::follows_me() {
                race::begin(None, "process MainProcess");
            }
            "concsh: race detection on (tasks started from now on are watched)\n"
        }
        "on" => "concsh: no room in the shared memory region for the race detector\n",
        "off" => {
            race::pause();
            "concsh: race detection off\n"
        }
        "" if race::checking() => "concsh: race detection is on (:race off to stop it)\n",
        "" => "concsh: race detection is off (:race on to start it)\n",
        _ => return output::report(&format!("concsh: :race takes on or off, not `{word}`\n")),
    };
    say(text);
}

/// One input: a command, or lines of code the parser finds complete.
enum Entry {
    Text(String),
    /// Ctrl-C (or Ctrl-D) on an unfinished input drops it.
    Dropped,
    End,
}

/// Reads lines until the parser says the input is complete: an unfinished
/// block, bracket or string continues on the `...` prompt.
fn read_entry(editor: &mut Editor<Prompt, rustyline::history::DefaultHistory>) -> Entry {
    let mut entry = String::new();
    loop {
        let prompt = if entry.is_empty() { PROMPT } else { MORE };
        match editor.readline(prompt) {
            Ok(line) => {
                entry.push_str(&line);
                if entry.trim_start().starts_with(':') || !unfinished(&entry) {
                    return Entry::Text(entry);
                }
                entry.push('\n');
            }
            Err(ReadlineError::Interrupted) => return Entry::Dropped,
            Err(ReadlineError::Eof) if !entry.is_empty() => return Entry::Dropped,
            Err(ReadlineError::Eof) => return Entry::End,
            Err(e) => {
                output::report(&format!("concsh: cannot read input: {e}\n"));
                return Entry::End;
            }
        }
    }
}

/// True when the parser stops at the end of `text` wanting more.
fn unfinished(text: &str) -> bool {
    matches!(syntax::parse(text), Err(errors) if errors.iter().any(|e| e.incomplete))
}

/// Draws every line of output above the line being typed, through the
/// line editor's external printer, from a thread of its own: a task that
/// prints never waits for the terminal.
struct Printer {
    to_terminal: Option<Sender<ToTerminal>>,
}

enum ToTerminal {
    Text(String),
    /// Answered once everything sent before it is drawn.
    Drawn(Sender<()>),
}

impl Printer {
    /// When the terminal has no external printer (stdout is not a
    /// terminal, say), output is written as in a script.
    fn start(editor: &mut Editor<Prompt, rustyline::history::DefaultHistory>) -> Printer {
        let Ok(mut external) = editor.create_external_printer() else { return Printer { to_terminal: None } };
        let (to_terminal, lines) = crossbeam_channel::unbounded();
        let drawing =
            crate::sync::gate::start_helper(std::thread::Builder::new().name("concsh-printer".into()), move || {
                for line in lines {
                    match line {
                        ToTerminal::Text(text) => {
                            let _ = external.print(text);
                        }
                        ToTerminal::Drawn(answer) => {
                            let _ = answer.send(());
                        }
                    }
                }
            });
        let sink = to_terminal.clone();
        let diverted = output::divert(Box::new(move |text| {
            let _ = sink.send(ToTerminal::Text(text));
        }));
        match (drawing, diverted) {
            (Ok(_), Ok(())) => Printer { to_terminal: Some(to_terminal) },
            _ => Printer { to_terminal: None },
        }
    }

    /// Waits until everything printed so far is on the screen. Bounded:
    /// a line that reached the editor just as it stopped reading is drawn
    /// by the next prompt instead.
    fn flush(&self) {
        output::pass_on_children();
        let Some(to_terminal) = &self.to_terminal else { return };
        let (answer, drawn) = crossbeam_channel::bounded(1);
        if to_terminal.send(ToTerminal::Drawn(answer)).is_ok() {
            let _ = drawn.recv_timeout(Duration::from_millis(500));
        }
    }
}

/// `$XDG_STATE_HOME/concsh/history`, else `~/.local/state/concsh/history`;
/// `None` when neither can be made (the session then keeps no history).
fn history_file() -> Option<PathBuf> {
    let state = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".local/state"),
    };
    let dir = state.join("concsh");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history"))
}

/// What lives from one input to the next.
struct Session {
    globals: Globals,
    /// Every input so far, and every module imported, one after another.
    text: String,
    /// Where each of them starts in `text`.
    parts: Vec<Part>,
    /// How many inputs were taken.
    inputs: u32,
    process: Option<Arc<Process>>,
    listener: Option<signals::Listener>,
    watch: Option<Watch>,
    /// The prompt's thread on the task board.
    listed: Option<board::Mine>,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            globals: Globals::for_session(),
            text: String::new(),
            parts: Vec::new(),
            inputs: 0,
            process: None,
            listener: None,
            watch: None,
            listed: None,
        }
    }
}

impl Session {
    /// Runs one input; its imports are found from `dir`.
    fn eval(&mut self, input: &str, dir: &Path) {
        // Earlier inputs are blanked byte for byte: spans count from the
        // session's start, and the parser skips the blank quickly.
        let blank: String = self.text.bytes().map(|b| if b == b'\n' { '\n' } else { ' ' }).collect();
        let mut text = modules::Text { text: self.text.clone(), parts: self.parts.clone() };
        let name = format!("<input {}>", self.inputs + 1);
        text.parts.push(Part { start: self.text.len() as u32, name: name.as_str().into() });
        text.text.push_str(input);
        text.text.push('\n');
        let mut ast = match syntax::parse(&format!("{blank}{input}\n")) {
            Ok(ast) => ast,
            Err(errors) => {
                let source = Source::session(&text.text, text.parts);
                return report_all(errors.iter().map(|e| Report::syntax(&source, e)));
            }
        };
        // A final expression statement is echoed: its value goes to `_`.
        let echo = matches!(ast.stmts.last().map(|s| &s.kind), Some(StmtKind::Expr(_)));
        if echo
            && let Some(stmt) = ast.stmts.pop()
            && let StmtKind::Expr(expr) = stmt.kind
        {
            let name = Ident { name: LAST.into(), span: stmt.span };
            ast.stmts.push(Stmt { kind: StmtKind::Let(Pattern::Name(name), expr), span: stmt.span });
        }
        let loaded = modules::load(ast, dir, None, &name, &mut text, &self.globals);
        let source = Source::session(&text.text, text.parts.clone());
        let units = match loaded {
            Ok(units) => units,
            Err(errors) => return report_all(errors.iter().map(|e| e.report(&source))),
        };
        let program = match resolve::resolve_with(&units, &mut self.globals) {
            Ok(program) => program,
            Err(errors) => return report_all(errors.iter().map(|e| Report::resolve(&source, e))),
        };
        drop(units);
        self.text = text.text;
        self.parts = text.parts;
        self.inputs += 1;
        let process = match &self.process {
            Some(process) => {
                process.extend(&program);
                *process.source.write() = source.clone();
                process.clone()
            }
            None => {
                let process = Process::new(&program, source.clone(), Vec::new(), DEFAULT_MAX_TASKS);
                self.listener = signals::Listener::start_repl(process.clone());
                self.listed = board::list_me(process.main_task().id, board::Owner::Process, "MainProcess");
                // A deadlock at the prompt ends the statement, not the session.
                self.watch = Watch::start(process.clone(), Ends::Statement);
                self.process = Some(process.clone());
                process
            }
        };
        // A fresh main task per input: Ctrl-C cancels this one only (and
        // an earlier input's Ctrl-C is forgotten).
        signals::handled(false);
        let pid = nix::unistd::getpid().as_raw() as u64;
        *process.main_task.write() = Arc::new(Task::new(pid << 32, "MainProcess".into(), TaskKind::Process, false));
        process.gate.enter();
        let tables = process.tables();
        let result = Interp::new(&process, &tables).run_main(&program.main);
        process.gate.leave();
        match result {
            Ok(_) if echo => self.echo(&process),
            Ok(_) => {}
            Err(Ctrl::Error(error)) => output::report(&Report::runtime(&source, &error).render()),
            Err(Ctrl::Exit(code)) => {
                output::report(&format!("concsh: exit({code}) ignored at the prompt (use :quit)\n"))
            }
            // The deadlock report said why.
            Err(_) if take_deadlocked() => {}
            Err(_) => output::report("interrupted\n"),
        }
    }

    fn echo(&self, process: &Process) {
        let Some(slot) = self.globals.lookup(LAST) else { return };
        let value = process.globals.read()[slot as usize].lock().clone();
        if !matches!(value, Value::Nil | Value::Unset) {
            say(&format!("{}\n", crate::runtime::format::repr(&value)));
        }
    }

    /// Each name the session has given a value.
    fn named_values(&self) -> Vec<(String, Value)> {
        let Some(process) = &self.process else { return Vec::new() };
        let globals = process.globals.read().clone();
        let names = self.globals.names();
        let values = names.iter().zip(globals.iter()).map(|(name, cell)| (name.to_string(), cell.lock().clone()));
        values.filter(|(_, value)| !matches!(value, Value::Unset)).collect()
    }

    fn show_vars(&self) {
        for (name, value) in self.named_values() {
            if name != LAST {
                say(&format!("{name} = {}\n", crate::runtime::format::repr(&value)));
            }
        }
    }

    /// Each task started in the session and still alive: what it does
    /// and the line it is at or waits on.
    fn show_tasks(&self) {
        match &self.process {
            // Each input's main task has the same id: the prompt's own.
            Some(process) => say(&dump(process, Some(process.main_task().id))),
            None => say("no tasks running\n"),
        }
    }

    /// Runs a file into the session: its functions and globals stay.
    fn load(&mut self, path: &str) {
        match std::fs::read_to_string(path) {
            Ok(text) => self.eval(&text, Path::new(path).parent().unwrap_or(Path::new("."))),
            Err(e) => output::report(&format!("concsh: cannot load {path}: {e}\n")),
        }
    }

    /// The tasks started at the prompt and still alive.
    fn running(&self) -> usize {
        self.process.as_ref().map_or(0, |p| p.tasks.lock().iter().filter(|t| t.is_alive()).count())
    }

    /// Ends the tasks still running, saying how many.
    fn end(mut self) -> i32 {
        let running = self.running();
        let Some(process) = self.process.take() else { return 0 };
        if running > 0 {
            output::report(&format!("concsh: ending {running} task(s) still running\n"));
        }
        // Leaving the prompt ends the session's tasks rather than waiting.
        process.gate.enter();
        process.cancel_all();
        process.gate.leave();
        finish_tasks(&process, true);
        drop(self.watch.take());
        drop(self.listener.take());
        drop(self.listed.take());
        0
    }
}

fn report_all(reports: impl Iterator<Item = Report>) {
    let text: String = reports.map(|r| r.render()).collect();
    output::report(&text);
}

/// The editor's helper: asks the parser whether an input is complete,
/// completes names, colours the line and hints from history.
#[derive(Helper)]
struct Prompt {
    /// The session's names and values, for completion.
    values: Vec<(String, Value)>,
    /// The rest of the latest history line that starts like the input.
    hinter: HistoryHinter,
    /// File names, for `:load`.
    files: FilenameCompleter,
    /// Colours and hints are off when `NO_COLOR` is set.
    color: bool,
}

impl Hinter for Prompt {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<String> {
        if self.color { self.hinter.hint(line, pos, ctx) } else { None }
    }
}

impl Highlighter for Prompt {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.color { Cow::Borrowed(line) } else { Cow::Owned(colorize(line)) }
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if !self.color { Cow::Borrowed(hint) } else { Cow::Owned(format!("\x1b[2m{hint}\x1b[0m")) }
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.color
    }
}

/// Keywords bold blue, strings green, numbers yellow, comments dim: a
/// light scan, not the parser, since it runs on every key.
fn colorize(line: &str) -> String {
    let mut out = String::with_capacity(line.len() * 2);
    let mut chars = line.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let mut end = start + c.len_utf8();
        let style = if c == '"' {
            let mut escaped = false;
            for (i, c) in chars.by_ref() {
                end = i + c.len_utf8();
                if !escaped && c == '"' {
                    break;
                }
                escaped = !escaped && c == '\\';
            }
            Some("32")
        } else if c == '#' {
            end = line.len();
            chars.by_ref().for_each(drop);
            Some("2")
        } else if c.is_ascii_digit() || c.is_alphabetic() || c == '_' {
            while let Some(&(i, c)) = chars.peek() {
                if !(c.is_alphanumeric() || c == '_' || c == '.' && line[start..i].bytes().all(|b| b.is_ascii_digit()))
                {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            let word = &line[start..end];
            if c.is_ascii_digit() {
                Some("33")
            } else if syntax::KEYWORDS.contains(&word) {
                Some("1;34")
            } else {
                None
            }
        } else {
            None
        };
        match style {
            Some(style) => out.push_str(&format!("\x1b[{style}m{}\x1b[0m", &line[start..end])),
            None => out.push_str(&line[start..end]),
        }
    }
    out
}

/// Completeness is decided line by line in `read_entry`, so that each
/// continuation line gets the `...` prompt (rustyline draws none inside one
/// buffer). A recalled multi-line entry is taken whole.
impl Validator for Prompt {}

impl Completer for Prompt {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let pair = |w: &str| Pair { display: w.to_string(), replacement: w.to_string() };
        // A command: its name, then a file for `:load`, `on`/`off` for `:race`.
        if before.trim_start().starts_with(':') {
            let offered = |words: &[&str], start: usize| {
                let word = &before[start..];
                (start, words.iter().filter(|w| w.starts_with(word)).map(|w| pair(w)).collect())
            };
            return Ok(match before.trim_start().split_once(' ') {
                None => offered(COMMANDS, before.len() - before.trim_start().len()),
                Some((":load", _)) => self.files.complete_path(line, pos)?,
                Some((":race", _)) => offered(&["on", "off"], word_start(before)),
                Some(_) => (pos, Vec::new()),
            });
        }
        let start = word_start(before);
        let word = &before[start..];
        // `q.` offers what a queue has; `q.s` narrows it.
        if let Some(owner) = before[..start].strip_suffix('.') {
            let owner = &owner[word_start(owner)..];
            let members = self.values.iter().find(|(name, _)| name == owner).map(|(_, value)| members(value));
            let found = members.unwrap_or_default().into_iter().filter(|m| m.starts_with(word));
            return Ok((start, found.map(|m| pair(&m)).collect()));
        }
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let builtins = Builtin::ALL.iter().map(|b| b.name());
        let names = self.values.iter().map(|(name, _)| name.as_str());
        let words = syntax::KEYWORDS.iter().copied().chain(builtins).chain(names);
        let mut found: Vec<&str> = words.filter(|w| w.starts_with(word) && *w != LAST).collect();
        found.sort_unstable();
        found.dedup();
        Ok((start, found.into_iter().map(pair).collect()))
    }
}

/// Where the name ending `text` starts.
fn word_start(text: &str) -> usize {
    text.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1)
}

fn say(text: &str) {
    output::write_line(output::Stream::Stdout, text);
}

#[cfg(test)]
mod tests {
    use super::{EXAMPLES, colorize};

    #[test]
    fn the_help_examples_are_a_program_that_parses_and_resolves() {
        let program = EXAMPLES.join("\n");
        let ast = crate::syntax::parse(&program).unwrap_or_else(|e| panic!("{program}\n{e:?}"));
        if let Err(e) = crate::resolve::resolve(ast) {
            panic!("{program}\n{e:?}");
        }
    }

    #[test]
    fn keywords_strings_numbers_and_comments_are_coloured() {
        let line = colorize(r#"let s = "a\"b" + 1.5 # note"#);
        assert!(line.contains("\x1b[1;34mlet\x1b[0m"), "{line:?}");
        assert!(line.contains("\x1b[32m\"a\\\"b\"\x1b[0m"), "{line:?}");
        assert!(line.contains("\x1b[33m1.5\x1b[0m"), "{line:?}");
        assert!(line.contains("\x1b[2m# note\x1b[0m"), "{line:?}");
        assert!(line.contains(" s "), "plain names stay plain: {line:?}");
    }

    #[test]
    fn unfinished_strings_and_wide_characters_are_kept_whole() {
        let line = colorize("print(\"héllo");
        assert!(line.ends_with("\x1b[32m\"héllo\x1b[0m"), "{line:?}");
    }
}
