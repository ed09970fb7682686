//! The REPL, driven through a pseudo-terminal as a person would use it.

use std::process::Command;
use std::time::Duration;

use expectrl::{Eof, Expect, Regex, Session};

/// A REPL with a history of its own: no hints from other tests' lines.
fn repl() -> Repl {
    let state = scratch_dir();
    Repl { session: repl_with_state(state.path()), _state: state }
}

/// A session and the state directory it keeps its history in. Fields drop
/// in order: the session ends before its directory is removed, even when
/// the test fails.
struct Repl {
    session: expectrl::session::OsSession,
    _state: tempfile::TempDir,
}

impl std::ops::Deref for Repl {
    type Target = expectrl::session::OsSession;
    fn deref(&self) -> &Self::Target {
        &self.session
    }
}

impl std::ops::DerefMut for Repl {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.session
    }
}

/// A directory of its own for one test (a session's history, files to
/// load), removed when dropped.
fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("concsh-repl-").tempdir().expect("a temporary directory")
}

fn repl_with_state(state: &std::path::Path) -> expectrl::session::OsSession {
    let mut command = Command::new(env!("CARGO_BIN_EXE_concsh"));
    command.env("NO_COLOR", "1").env("XDG_STATE_HOME", state);
    let mut session = Session::spawn(command).expect("the REPL starts on a pseudo-terminal");
    // Generous: a loaded machine may be slow; nothing here waits on time.
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    session.expect("concsh> ").expect("first prompt");
    session
}

#[test]
fn a_function_over_several_lines_is_defined_called_and_echoed() {
    let mut s = repl();
    // Were the first line taken alone, it would be a syntax error and
    // `twice` would stay undefined: the echo below shows it was not.
    for line in ["fn twice(x) {", "  return x * 2"] {
        s.send_line(line).unwrap();
        s.expect(line).unwrap();
        s.expect("    ... ").expect("an unfinished block continues on the `...` prompt");
    }
    s.send_line("}").unwrap();
    s.expect("concsh> ").unwrap();
    s.send_line("twice(21)").unwrap();
    s.expect(Regex("\r?\n42\r?\n")).expect("the value is echoed");
    s.expect("concsh> ").unwrap();
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
}

/// Enters one line and waits for the next prompt; gives what came between.
fn enter(s: &mut expectrl::session::OsSession, line: &str) -> String {
    s.send_line(line).unwrap();
    let seen = s.expect("concsh> ").unwrap_or_else(|e| panic!("no prompt after {line:?}: {e}"));
    String::from_utf8_lossy(seen.before()).into_owned()
}

#[test]
fn an_error_does_not_end_the_session_and_state_stays() {
    let mut s = repl();
    enter(&mut s, "let n = 5");
    let seen = enter(&mut s, "[1, 2][n]");
    assert!(seen.contains("IndexError"), "the error is reported: {seen:?}");
    let seen = enter(&mut s, "print(n + 1)");
    assert!(seen.contains("\n6\r\n"), "earlier state is kept: {seen:?}");
    let seen = enter(&mut s, "nil");
    assert!(!seen.contains("\nnil"), "nil is not echoed: {seen:?}");
    let seen = enter(&mut s, "\"do\" + \"ne\"");
    assert!(seen.contains("\n\"done\"\r\n"), "a string is echoed quoted: {seen:?}");
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
}

#[test]
fn ctrl_c_stops_a_sleep_and_gives_the_prompt_back() {
    let mut s = repl();
    s.send_line("print(\"sleeping\"); sleep(100)").unwrap();
    // Once the statement prints, the terminal is back in its normal mode
    // and Ctrl-C becomes a signal to the running statement.
    s.expect(Regex("\r?\nsleeping\r?\n")).unwrap();
    let pressed = std::time::Instant::now();
    s.send(expectrl::ControlCode::EndOfText).unwrap();
    s.expect("interrupted").expect("the statement is interrupted");
    s.expect("concsh> ").expect("the prompt comes back");
    // The promise is "within a second" (it takes milliseconds).
    assert!(pressed.elapsed() < Duration::from_secs(1), "took {:?}", pressed.elapsed());
    let seen = enter(&mut s, "print(\"alive\")");
    assert!(seen.contains("\nalive\r\n"), "the session goes on: {seen:?}");
    s.send(expectrl::ControlCode::EndOfTransmission).unwrap();
    s.expect(Eof).expect("Ctrl-D ends the REPL");
}

#[test]
fn history_survives_a_restart() {
    let state = scratch_dir();
    let mut s = repl_with_state(state.path());
    enter(&mut s, "let remembered = 40 + 2");
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
    assert!(state.path().join("concsh/history").exists(), "the history file is written");

    let mut s = repl_with_state(state.path());
    // Up arrow walks back through the earlier session: `:quit`, then the `let`.
    s.send("\x1b[A").unwrap();
    s.expect(":quit").expect("the last line comes back from history");
    s.send("\x1b[A").unwrap();
    s.expect("let remembered = 40 + 2").expect("the line comes back from history");
    enter(&mut s, "");
    let seen = enter(&mut s, "remembered");
    assert!(seen.contains("\n42\r\n"), "the recalled line ran: {seen:?}");
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
}

#[test]
fn tasks_lists_a_running_process_and_load_and_reset_work() {
    let mut s = repl();
    enter(&mut s, "let e = event()");
    enter(&mut s, "let p = spawn { wait e }");
    let seen = enter(&mut s, ":tasks");
    assert!(
        seen.lines().any(|l| l.contains("process Process-1 (pid ")
            && l.contains("waits for an event no task sets, line 1 of <input 2>")),
        "the process is listed with what it waits on and where: {seen:?}"
    );
    assert!(!seen.contains("MainProcess"), "the prompt itself is not listed: {seen:?}");
    enter(&mut s, "set e");
    enter(&mut s, "join p");
    let seen = enter(&mut s, ":tasks");
    assert!(seen.contains("no tasks running"), "a joined process is gone: {seen:?}");

    let folder = scratch_dir();
    let file = folder.path().join("load.conc");
    std::fs::write(&file, "fn sq(x) { return x * x }\n").unwrap();
    enter(&mut s, &format!(":load {}", file.display()));
    let seen = enter(&mut s, "sq(9)");
    assert!(seen.contains("\n81\r\n"), "a loaded function can be called: {seen:?}");

    enter(&mut s, ":reset");
    let seen = enter(&mut s, "sq(9)");
    assert!(seen.contains("NameError"), "a reset session forgets: {seen:?}");
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
}

#[test]
fn ctrl_d_twice_ends_the_tasks_still_running_and_says_how_many() {
    let mut s = repl();
    enter(&mut s, "let e = event()");
    enter(&mut s, "let p = spawn { wait e }");
    enter(&mut s, "let t = thread { wait e }");
    s.send(expectrl::ControlCode::EndOfTransmission).unwrap();
    s.expect("2 task(s) still running (:tasks lists them); Ctrl-D again or :quit ends them")
        .expect("the first Ctrl-D says what it would end");
    s.expect("concsh> ").expect("and the session goes on");
    s.send(expectrl::ControlCode::EndOfTransmission).unwrap();
    s.expect("ending 2 task(s) still running").expect("the count is told");
    s.expect(Eof).expect("the REPL ends without waiting for them");
}

#[test]
fn no_color_keeps_the_line_plain() {
    // (The colouring itself is unit-tested in `repl::tests`.)
    let mut s = repl();
    s.send("let").unwrap();
    s.expect("let").unwrap();
    s.send_line(" x = 1").unwrap();
    let seen = s.expect("concsh> ").unwrap();
    assert!(!String::from_utf8_lossy(seen.before()).contains("\x1b[1;34m"), "NO_COLOR turns colours off");
    s.send(expectrl::ControlCode::EndOfTransmission).unwrap();
    s.expect(Eof).unwrap();
}

#[test]
fn a_thread_prints_while_the_prompt_is_shown_and_the_typed_line_survives() {
    let mut s = repl();
    enter(&mut s, "let stop = event()");
    // Ticks until stopped: some tick lands while the line below is half typed.
    enter(&mut s, "fn ticks() { while not stop.is_set { print(\"tick\"); sleep(0.1) } }");
    enter(&mut s, "let t = thread ticks()");
    s.send("let abc").unwrap();
    s.expect("let abc").unwrap();
    s.expect("tick").expect("the thread's output appears while the prompt is shown");
    s.expect("concsh> let abc").expect("the half-typed line is drawn again below the output");
    s.send_line(" = 5").unwrap();
    s.send_line("set stop").unwrap();
    s.send_line("join t").unwrap();
    s.send_line("print(abc * 2)").unwrap();
    s.expect(Regex("\r?\n10\r?\n")).expect("the line typed around the output was read whole");
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
}

#[test]
fn a_process_prints_while_the_prompt_is_shown() {
    let mut s = repl();
    enter(&mut s, "let go = event()");
    enter(&mut s, "let p = spawn { wait go; print(\"from the child\") }");
    s.send_line("set go").unwrap();
    // The child's line comes before the next prompt or is drawn above it;
    // either way on a line of its own, never inside a typed line.
    s.expect("from the child\r\n").expect("the child's output is drawn on a line of its own");
    s.expect("concsh> ").expect("a prompt is drawn below it");
    enter(&mut s, "join p");
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
}

#[test]
fn tab_offers_the_fields_of_a_handle() {
    let mut s = repl();
    enter(&mut s, "let q = queue(3)");
    s.send("q.\t\t").unwrap();
    for field in ["size", "full", "empty", "capacity"] {
        s.expect(field).unwrap_or_else(|e| panic!("`q.` offers {field}: {e}"));
    }
    // A unique start completes in place.
    s.send("ca\t").unwrap();
    s.expect("q.capacity").unwrap();
    let seen = enter(&mut s, "");
    assert!(seen.contains("\n3\r\n"), "the completed field was read: {seen:?}");
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
}

#[test]
fn ctrl_r_finds_an_earlier_line() {
    let mut s = repl();
    enter(&mut s, "let needle = \"found\"");
    enter(&mut s, "let other = 1");
    enter(&mut s, "let needle = needle + \"!\"");
    s.send("\x12").unwrap();
    s.send("needle").unwrap();
    s.expect("needle + ").expect("reverse search shows the latest match");
    // A second Ctrl-R goes further back.
    s.send("\x12").unwrap();
    s.expect("\"found\"").expect("an older match");
    s.send_line("").unwrap();
    // Had the newer line run again, it would print `found!!`.
    s.send_line("print(needle)").unwrap();
    s.expect(Regex("\r?\nfound\r?\n")).expect("the older line ran again");
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
}

#[test]
fn lines_typed_ahead_all_run() {
    let mut s = repl();
    // Sent at once, as when typing on during a long statement: none is lost.
    s.send("let a = 1\nsleep(0.2)\nprint(a + 1)\nprint(a + 2)\n").unwrap();
    s.expect(Regex("\r?\n2\r?\n")).expect("the third line ran");
    s.expect(Regex("\r?\n3\r?\n")).expect("the fourth line ran");
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
}

#[test]
fn dash_reads_a_program_from_the_terminal_until_ctrl_d() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_concsh"));
    command.arg("-").env("NO_COLOR", "1");
    let mut s = Session::spawn(command).expect("concsh starts on a pseudo-terminal");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    // As on a person's terminal (the test terminal starts without echo).
    expectrl::process::Termios::set_echo(&mut s, true).unwrap();
    s.send_line("let x = 20").unwrap();
    s.send_line("print(x + 1)").unwrap();
    // The terminal's own echo: the lines are in before Ctrl-D ends them.
    s.expect("print(x + 1)").unwrap();
    s.send(expectrl::ControlCode::EndOfTransmission).unwrap();
    s.expect(Regex("\r?\n21\r?\n")).expect("the program runs once its input ends");
    s.expect(Eof).unwrap();
}

#[test]
fn a_deadlock_at_the_prompt_ends_the_statement_not_the_session() {
    let mut s = repl();
    enter(&mut s, "let q = queue(2)");
    s.send_line("get q").unwrap();
    s.expect("Deadlock").expect("waiting on a queue no task can fill is reported");
    s.expect("waits to get from a queue holding 0 items (capacity 2)").unwrap();
    let seen = s.expect("concsh> ").expect("the prompt comes back");
    let after = String::from_utf8_lossy(seen.before()).into_owned();
    assert!(!after.contains("interrupted"), "the report says why; nothing more: {after:?}");
    let seen = enter(&mut s, "print(q.size)");
    assert!(seen.contains("\n0\r\n"), "the session goes on: {seen:?}");
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
}

/// The prompt opens with a banner naming the version and the way to help;
/// `quit`, `exit` and `help` typed bare point to the commands, unless the
/// session has a value of that name.
#[test]
fn a_banner_and_bare_words_point_to_the_commands() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_concsh"));
    let state = scratch_dir();
    command.env("NO_COLOR", "1").env("XDG_STATE_HOME", state.path());
    let mut s = Session::spawn(command).expect("the REPL starts on a pseudo-terminal");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    let banner = s.expect("concsh> ").expect("first prompt");
    let banner = String::from_utf8_lossy(banner.before()).into_owned();
    assert!(banner.contains(concat!("concsh ", env!("CARGO_PKG_VERSION"))) && banner.contains(":help"), "{banner}");
    assert!(enter(&mut s, "quit").contains("the command is :quit"));
    assert!(enter(&mut s, "exit").contains("the command is :quit"));
    assert!(enter(&mut s, "help").contains("the command is :help"));
    enter(&mut s, "let help = 7");
    assert!(enter(&mut s, "help").contains('7'), "a value named help is echoed");
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
}

/// `:race on` watches the tasks started after it; `:race off` stops the
/// reports; `:race` alone says which holds.
#[test]
fn race_on_reports_a_race_and_race_off_stops_reporting() {
    let mut s = repl();
    assert!(enter(&mut s, ":race").contains("race detection is off"));
    assert!(enter(&mut s, ":race on").contains("race detection on"));
    enter(&mut s, "let n = 0");
    enter(&mut s, "fn bump() { for i in range(100) { n = n + 1 } }");
    let seen = enter(&mut s, "let ts = [thread bump(), thread bump()]; for t in ts { join t }");
    assert!(seen.contains("Data race on global `n`"), "the race is reported: {seen:?}");
    assert!(enter(&mut s, ":race").contains("race detection is on"));
    assert!(enter(&mut s, ":race off").contains("race detection off"));
    let seen = enter(&mut s, "let us = [thread bump(), thread bump()]; for t in us { join t }");
    assert!(!seen.contains("Data race"), "nothing is reported once off: {seen:?}");
    assert!(enter(&mut s, ":race maybe").contains(":race takes on or off"));
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
}

/// Tab completes a command's name (`:lo` is `:load`, not `:lock`), a file
/// name after `:load`, and `on`/`off` after `:race`.
#[test]
fn tab_completes_commands_and_the_file_to_load() {
    let mut s = repl();
    s.send(":lo\t").unwrap();
    s.expect(":load").expect("`:lo` completes to `:load`");
    s.send(" examples/word_c\t").unwrap();
    s.expect("examples/word_count.conc").expect("a file name completes after `:load`");
    // Loading the example defines its functions (its main part stops at the usage line).
    let seen = enter(&mut s, "");
    assert!(seen.contains("usage: concsh examples/word_count.conc"), "the file was loaded: {seen:?}");
    s.send(":ra\t o\t\t").unwrap();
    s.expect("on").unwrap();
    s.expect("off").expect("`:race` offers on and off");
    s.send("\u{15}").unwrap();
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
}

/// A report's lines count from the input it is about, named `<input N>`,
/// not from the start of the session.
#[test]
fn error_lines_count_from_the_input_that_failed() {
    let mut s = repl();
    enter(&mut s, "let a = 1");
    for line in ["fn inv(x) {", "  return 10 / x"] {
        s.send_line(line).unwrap();
        s.expect("    ... ").unwrap();
    }
    enter(&mut s, "}");
    let seen = enter(&mut s, "[1, 2][5]");
    assert!(seen.contains("<input 3>:1:1") && seen.contains(" 1 │ [1, 2][5]"), "{seen:?}");
    let seen = enter(&mut s, "inv(0)");
    assert!(seen.contains("<input 2>:2:") && seen.contains(" 2 │   return 10 / x"), "{seen:?}");
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
}

/// At the prompt too, Ctrl-C is caught by a `catch` that names it, and
/// runs `finally` blocks.
#[test]
fn ctrl_c_at_the_prompt_runs_finally_and_meets_catch_interrupted() {
    let mut s = repl();
    s.send_line("try { print(\"sleeping\"); sleep(100) } catch Interrupted e { print(\"caught\", e.kind) }").unwrap();
    s.expect(Regex("\r?\nsleeping\r?\n")).unwrap();
    s.send(expectrl::ControlCode::EndOfText).unwrap();
    s.expect("caught Interrupted").expect("the named catch caught it");
    s.expect("concsh> ").unwrap();
    s.send_line("try { print(\"sleeping\"); sleep(100) } finally { print(\"cleanup ran\") }").unwrap();
    s.expect(Regex("\r?\nsleeping\r?\n")).unwrap();
    s.send(expectrl::ControlCode::EndOfText).unwrap();
    s.expect("cleanup ran").expect("finally ran");
    s.expect("interrupted").expect("the statement is interrupted");
    s.expect("concsh> ").unwrap();
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
}

#[test]
fn import_at_the_prompt_runs_a_module_once_and_load_finds_imports_beside_the_file() {
    let folder = scratch_dir();
    let dir = folder.path();
    std::fs::write(
        dir.join("lib.conc"),
        "print(\"lib runs\")\nlet hits = 0\nfn hit() {\n  hits += 1\n  return hits\n}\n",
    )
    .unwrap();
    // `main.conc` imports `lib.conc` beside it, not in the prompt's folder.
    std::fs::write(dir.join("main.conc"), "import \"lib.conc\" as l\nprint(\"main sees\", l.hit())\n").unwrap();
    let mut s = repl();
    let lib = dir.join("lib.conc");
    let seen = enter(&mut s, &format!("import \"{}\"", lib.display()));
    assert!(seen.contains("lib runs"), "the module ran: {seen:?}");
    let seen = enter(&mut s, "lib.hit()");
    assert!(seen.contains("\n1\r\n"), "its function is reached by the file's stem: {seen:?}");
    // The name stays bound in later inputs; importing again runs nothing.
    let seen = enter(&mut s, &format!("import \"{}\" as again", lib.display()));
    assert!(!seen.contains("lib runs"), "a module runs once per session: {seen:?}");
    let seen = enter(&mut s, "again.hit() + lib.hit()");
    assert!(seen.contains("\n5\r\n"), "both names reach the same globals (2 + 3): {seen:?}");
    let seen = enter(&mut s, &format!(":load {}", dir.join("main.conc").display()));
    assert!(seen.contains("main sees 4") && !seen.contains("lib runs"), "`:load` imports beside the file: {seen:?}");
    let seen = enter(&mut s, "lib.nope");
    assert!(seen.contains("has no `nope`") && seen.contains("<input 6>"), "a missing name is reported: {seen:?}");
    s.send_line(":quit").unwrap();
    s.expect(Eof).unwrap();
}
