//! The command line (docs/language.md section 5): ways to give a program, and
//! the exit statuses.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

mod support;

use support::{concsh, run_concsh};

fn run(args: &[&str], stdin: &str) -> support::Run {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    run_concsh(&args, stdin.as_bytes(), dir).expect("concsh runs")
}

#[test]
fn inline_code_with_arguments() {
    let r = run(&["-c", "print(args(), 1 + 1)", "a", "--b"], "");
    assert_eq!(r.stdout, "[\"a\", \"--b\"] 2\n");
    assert_eq!(r.code, 0);
}

/// After `-c CODE`, as after a script's path, every word is the script's:
/// `--help` too.
#[test]
fn words_after_inline_code_are_the_scripts() {
    let r = run(&["-c", "print(args())", "--help", "x"], "");
    assert_eq!((r.stdout.as_str(), r.code), ("[\"--help\", \"x\"]\n", 0), "{}", r.stderr);
    let r = run(&["--stats", "-c", "print(args())", "--check"], "");
    assert_eq!(r.stdout, "[\"--check\"]\n", "{}", r.stderr);
    assert!(r.stderr.contains("shared memory"), "concsh's own options still count: {}", r.stderr);
    let r = run(&["scripts/builtins/env_and_args.conc", "--help"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// `--color always|never` decides; by default `CLICOLOR_FORCE` forces
/// colour and otherwise a pipe (or `NO_COLOR`) gets plain text.
#[test]
fn color_follows_the_option_then_the_environment() {
    let coloured = |args: &[&str], force: bool| {
        let mut command = concsh();
        command.args(args).args(["-c", "print(1 / 0)"]).stdin(Stdio::null());
        if force {
            command.env("CLICOLOR_FORCE", "1");
        }
        let output = command.output().expect("concsh runs");
        String::from_utf8_lossy(&output.stderr).contains('\x1b')
    };
    assert!(!coloured(&[], false), "a pipe with NO_COLOR is plain");
    assert!(coloured(&[], true), "CLICOLOR_FORCE forces colour");
    assert!(coloured(&["--color", "always"], false));
    assert!(!coloured(&["--color", "never"], true), "the option beats the environment");
}

#[test]
fn dash_reads_the_script_from_stdin() {
    let r = run(&["-", "x"], "print(\"from stdin\", args())\n");
    assert_eq!(r.stdout, "from stdin [\"x\"]\n");
    assert_eq!(r.code, 0);
}

#[test]
fn no_script_and_piped_stdin_runs_stdin() {
    let r = run(&[], "let n = 6\nprint(n * 7)\n");
    assert_eq!(r.stdout, "42\n");
}

#[test]
fn script_file_arguments() {
    let r = run(&["scripts/builtins/env_and_args.conc", "one", "two"], "");
    assert!(r.stdout.starts_with("[\"one\", \"two\"]\n2\n"), "{}", r.stdout);
}

#[test]
fn check_reports_errors_and_runs_nothing() {
    let ok = run(&["--check", "-c", "print(\"ran\")"], "");
    assert_eq!((ok.stdout.as_str(), ok.code), ("", 0));
    let bad = run(&["--check", "-c", "print(\"ran\")\nprint(nope)\nx = 1"], "");
    assert_eq!(bad.stdout, "");
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("`nope` is not defined"), "{}", bad.stderr);
    assert!(bad.stderr.contains("undeclared `x`"), "{}", bad.stderr);
    assert!(bad.stderr.contains("2 errors found"), "{}", bad.stderr);
}

/// A mistyped option where the script goes is an unknown option, with
/// the near one suggested, as clap reports its own; not a missing file.
#[test]
fn an_unknown_option_is_reported_as_one() {
    let r = run(&["--timelin", "scripts/hello.conc"], "");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unexpected argument '--timelin'"), "{}", r.stderr);
    assert!(r.stderr.contains("a similar argument exists: '--timeline'"), "{}", r.stderr);
    let r = run(&["--frobnicate", "scripts/hello.conc"], "");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unexpected argument '--frobnicate'") && !r.stderr.contains("tip"), "{}", r.stderr);
    // After the script, every word is the script's.
    let r = run(&["scripts/builtins/env_and_args.conc", "--timelin"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// `--check` checks every script given and reports each one's errors.
#[test]
fn check_takes_several_scripts() {
    let r = run(&["--check", "scripts/hello.conc", "scripts/errors/syntax_unexpected.conc", "scripts/hello.conc"], "");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("syntax_unexpected.conc"), "{}", r.stderr);
    assert_eq!(r.stdout, "", "nothing ran");
    let r = run(&["--check", "scripts/hello.conc", "scripts/statements/loops_and_try.conc"], "");
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
}

#[test]
fn exit_statuses() {
    assert_eq!(run(&["-c", "print(1)"], "").code, 0);
    assert_eq!(run(&["-c", "[][1]"], "").code, 1);
    assert_eq!(run(&["-c", "let = 1"], "").code, 2);
    assert_eq!(run(&["-c", "exit(7)"], "").code, 7);
    assert_eq!(run(&["-c", "exit()"], "").code, 0);
    assert_eq!(run(&["--no-such-flag"], "").code, 2);
}

#[test]
fn unreadable_scripts_are_usage_errors() {
    let missing = run(&["scripts/does/not/exist.conc"], "");
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("cannot read scripts/does/not/exist.conc"), "{}", missing.stderr);

    let path = std::env::temp_dir().join(format!("concsh-latin1-{}.conc", std::process::id()));
    std::fs::write(&path, b"print(\"caf\xe9\")\n").expect("temp file");
    let latin1 = run(&[path.to_str().expect("utf-8 temp path")], "");
    let _ = std::fs::remove_file(&path);
    assert_eq!(latin1.code, 2);
    assert!(latin1.stderr.contains("is not UTF-8"), "{}", latin1.stderr);
}

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let mut child = concsh()
        .args(["-c", "while true { print(\"line\") }"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("concsh starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).expect("one line");
    // The reader is dropped here: the next writes meet a closed pipe.
    let output = child.wait_with_output().expect("concsh ends");
    assert_eq!(first, "line\n");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

/// Starts `concsh -c CODE`, waits for its first line (`ready`), sends
/// SIGINT and gives the exit status and whatever else it printed.
fn interrupt_after_ready(code: &str) -> (Option<i32>, String) {
    // stdin is kept open and silent: an `input()` waits on it.
    let (mut child, mut stdout) = support::start(&["-c", code]);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("ready line");
    assert_eq!(line, "ready\n");
    let started = Instant::now();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("signal sent");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("concsh ignored Ctrl-C running {code:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("rest of stdout");
    (status.code(), rest)
}

#[test]
fn ctrl_c_interrupts_a_sleep_with_status_130() {
    let (code, rest) = interrupt_after_ready("print(\"ready\")\nsleep(100)\nprint(\"not reached\")");
    assert_eq!(code, Some(130));
    assert_eq!(rest, "");
}

#[test]
fn ctrl_c_interrupts_input() {
    let (code, rest) = interrupt_after_ready("print(\"ready\")\nlet line = input()\nprint(\"not reached\")");
    assert_eq!(code, Some(130));
    assert_eq!(rest, "");
}

/// Waits until the interpreting thread of `pid` sleeps in the system call
/// of an `input()`: a `read` of stdin, or a `poll`.
fn wait_until_waiting_for_input(pid: u32) {
    let started = Instant::now();
    let task_dir = format!("/proc/{pid}/task");
    loop {
        let waiting = std::fs::read_dir(&task_dir).into_iter().flatten().flatten().any(|task| {
            let read = |name: &str| std::fs::read_to_string(task.path().join(name)).unwrap_or_default();
            let call = read("syscall");
            let mut words = call.split_whitespace();
            read("comm").trim() == "concsh-main"
                && match words.next() {
                    Some("0") => words.next() == Some("0x0"),
                    Some("7" | "271") => true,
                    _ => false,
                }
        });
        if waiting {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "concsh never waited for input");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A Ctrl-C caught around an `input()` leaves its wake-up behind: the next
/// `input()` still waits where a second Ctrl-C reaches it, and still reads
/// the next line.
#[test]
fn input_after_a_caught_ctrl_c_waits_and_can_be_interrupted() {
    let code = "print(\"ready\")\ntry { input() } catch Interrupted { print(\"caught\") }\nprint(input())\nprint(\"again\")\nlet line = input()\nprint(\"not reached\")";
    let (mut child, mut stdout) = support::start(&["-c", code]);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("ready line");
    assert_eq!(line, "ready\n");
    wait_until_waiting_for_input(child.id());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("signal sent");
    line.clear();
    stdout.read_line(&mut line).expect("caught line");
    assert_eq!(line, "caught\n");
    wait_until_waiting_for_input(child.id());
    let mut stdin = child.stdin.take().expect("piped stdin");
    std::io::Write::write_all(&mut stdin, b"typed\n").expect("a line typed");
    line.clear();
    stdout.read_line(&mut line).expect("the typed line");
    assert_eq!(line, "typed\n");
    line.clear();
    stdout.read_line(&mut line).expect("again line");
    assert_eq!(line, "again\n");
    wait_until_waiting_for_input(child.id());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("signal sent");
    assert!(support::ends_within(pid, Duration::from_secs(10)), "a second Ctrl-C did not end the input");
    assert_eq!(child.wait().expect("ends").code(), Some(130));
    drop(stdin);
}

/// A `join` after a caught Ctrl-C sleeps until the process ends: it does
/// not spin on the wake-up the caught cancel left behind.
#[test]
fn join_after_a_caught_ctrl_c_sleeps() {
    let code = "print(\"ready\")\ntry { input() } catch Interrupted { print(\"caught\") }\njoin spawn { sleep(2) }\nprint(\"joined\")\ninput()";
    let (mut child, mut stdout) = support::start(&["-c", code]);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("ready line");
    wait_until_waiting_for_input(child.id());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT)
        .expect("signal sent");
    for expected in ["caught\n", "joined\n"] {
        line.clear();
        stdout.read_line(&mut line).expect("a line");
        assert_eq!(line, expected);
    }
    // The CPU time of all its threads so far, in clock ticks (a spin
    // through the join takes a second or more).
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).expect("its stat");
    let after_name = &stat[stat.rfind(')').expect("a name") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let used = ticks as f64 / per_second;
    assert!(used < 0.5, "a two-second join used {used:.2} s of CPU");
    drop(child.stdin.take());
    assert_eq!(child.wait().expect("ends").code(), Some(0));
}

#[test]
fn ctrl_c_interrupts_a_busy_loop() {
    let (code, rest) = interrupt_after_ready("print(\"ready\")\nlet n = 0\nwhile true { n += 1 }");
    assert_eq!(code, Some(130));
    assert_eq!(rest, "");
}

#[test]
fn loops_with_empty_bodies_stop_for_a_fork_and_for_ctrl_c() {
    // Each empty loop still reaches the checks a fork and Ctrl-C wait for.
    let code = "let t = thread { while true { } }\nlet u = thread { for i in range(1000000000000) { } }\nprint(join spawn { return \"forked\" })\nprint(\"ready\")\nwhile true { }";
    let (mut child, mut stdout) = support::start(&["-c", code]);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("the child's result");
    assert_eq!(line, "forked\n", "a fork went ahead beside two busy empty loops");
    drop(child.stdin.take());
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    line.clear();
    stdout.read_line(&mut line).expect("ready line");
    assert_eq!(line, "ready\n");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("signal sent");
    assert_eq!(child.wait().expect("ends").code(), Some(130));
}

#[test]
fn ctrl_c_ends_every_blocked_thread() {
    let code = "let q = queue()\nlet ts = []\nfor i in range(4) { ts.push(thread { get q }) }\nprint(\"ready\")\nfor t in ts { join t }";
    let (status, rest) = interrupt_after_ready(code);
    assert_eq!(status, Some(130));
    assert_eq!(rest, "");
}

#[test]
fn max_tasks_limits_live_threads() {
    let code = "let go = event()\nfor i in range(5) { thread daemon { wait go } }";
    let limited = run(&["--max-tasks", "3", "-c", code], "");
    assert_eq!(limited.code, 1);
    assert!(limited.stderr.contains("too many live tasks: the limit is 3"), "{}", limited.stderr);
    let roomy = run(&["--max-tasks", "10", "-c", code], "");
    assert_eq!(roomy.code, 0, "{}", roomy.stderr);
    assert_eq!(run(&["--max-tasks", "0", "-c", "print(1)"], "").code, 2);
}

/// `concsh completions SHELL` and `concsh man` come from the options'
/// own definition; a script named like them runs as `./completions`.
#[test]
fn completions_and_man_page_come_from_the_options() {
    let bash = run(&["completions", "bash"], "");
    assert_eq!(bash.code, 0, "{}", bash.stderr);
    assert!(bash.stdout.contains("_concsh") && bash.stdout.contains("--race"), "{}", bash.stdout);
    let checked = std::process::Command::new("bash").args(["-n", "-c", &bash.stdout]).status().map(|s| s.success());
    assert!(!matches!(checked, Ok(false)), "bash finds the completion script malformed");
    for shell in ["zsh", "fish"] {
        let r = run(&["completions", shell], "");
        assert!(r.code == 0 && r.stdout.contains("max-tasks"), "{shell}: {}", r.stderr);
    }
    let wrong = run(&["completions", "tcsh"], "");
    assert_eq!(wrong.code, 2);
    assert!(wrong.stderr.contains("concsh completions SHELL"), "{}", wrong.stderr);
    let man = run(&["man"], "");
    assert_eq!(man.code, 0, "{}", man.stderr);
    assert!(man.stdout.contains(".TH concsh 1") && man.stdout.contains("\\-\\-race"), "{}", man.stdout);
    let dir = std::env::temp_dir().join(format!("concsh-cli-completions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("completions"), "print(\"a script\")\n").unwrap();
    let script = run_concsh(&["./completions".into()], b"", &dir).expect("concsh runs");
    assert_eq!(script.stdout, "a script\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ctrl-C runs `finally` blocks (and so frees what `lock m { }` held),
/// in every task, as Python's KeyboardInterrupt does.
#[test]
fn ctrl_c_runs_finally_blocks_and_frees_locks() {
    let code = r#"
let m = lock()
let held = event()
fn holder() {
    lock m {
        # Set inside the try: a cancel from then on meets the finally.
        try {
            set held
            sleep(100)
        } finally {
            print("thread cleanup")
        }
    }
}
let t = thread holder()
wait held
try {
    print("ready")
    sleep(100)
} finally {
    join t
    print("locked: {m.locked}")
}
print("not reached")
"#;
    let (status, rest) = interrupt_after_ready(code);
    assert_eq!(status, Some(130));
    assert_eq!(rest, "thread cleanup\nlocked: false\n");
}

/// A `finally` block that does not end is cut short by a second Ctrl-C at
/// once, or else when the grace period is over.
#[test]
fn a_second_ctrl_c_or_the_grace_period_cuts_finally_short() {
    let code = "try {\n  print(\"ready\")\n  sleep(100)\n} finally {\n  print(\"cleanup starts\")\n  sleep(100)\n  print(\"never\")\n}";
    for second in [true, false] {
        let (mut child, mut stdout) = support::start(&["-c", code]);
        let mut line = String::new();
        stdout.read_line(&mut line).expect("ready line");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("signal sent");
        line.clear();
        stdout.read_line(&mut line).expect("the finally block starts");
        assert_eq!(line, "cleanup starts\n");
        let cut = Instant::now();
        if second {
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("signal sent");
        }
        let status = child.wait().expect("ends");
        assert_eq!(status.code(), Some(130));
        // Generous: the grace period is 2 s, and the machine may be loaded.
        assert!(cut.elapsed() < Duration::from_secs(30), "the finally block was cut short");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).expect("rest of stdout");
        assert_eq!(rest, "", "second Ctrl-C: {second}");
    }
}

/// Ctrl-C is caught only by a `catch` that names it; the run then goes on
/// and ends as if it had not come. A plain `catch e` never sees it.
#[test]
fn only_catch_interrupted_catches_ctrl_c() {
    let named = "try {\n  print(\"ready\")\n  sleep(100)\n} catch Interrupted e {\n  print(e.kind, e.message)\n}\nprint(\"after\")";
    let (status, rest) = interrupt_after_ready(named);
    assert_eq!(status, Some(0));
    assert_eq!(rest, "Interrupted interrupted by Ctrl-C\nafter\n");
    let plain = "try {\n  print(\"ready\")\n  sleep(100)\n} catch e {\n  print(\"caught\")\n}\nprint(\"after\")";
    let (status, rest) = interrupt_after_ready(plain);
    assert_eq!(status, Some(130));
    assert_eq!(rest, "");
}
