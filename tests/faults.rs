//! Runs that the OS or the script makes hard: signals at awkward moments,
//! killed and stopped children, resource limits. Each must end within a
//! bounded time with a clear status, and leave nothing behind.

use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod support;

/// Reads lines from `lines` until one starts with `prefix`; gives the rest.
fn read_tagged(lines: &mut impl BufRead, prefix: &str) -> String {
    loop {
        let mut line = String::new();
        assert!(lines.read_line(&mut line).expect("a line") > 0, "concsh ended before printing `{prefix}`");
        if let Some(rest) = line.trim_end().strip_prefix(prefix) {
            return rest.to_string();
        }
    }
}

/// SIGTERM to the main process ends the run, whatever its children do: a
/// stopped child and a busy child are ended too (SIGKILL after the grace
/// period at the latest), and the run exits 143.
#[test]
fn sigterm_ends_a_run_with_a_stopped_or_busy_child() {
    let script = "let p = spawn fn() { while true { } }()\nprint(\"pid\", p.pid)\njoin p\n";
    for stop_it in [true, false] {
        let (mut main, mut lines) = support::start(&["-c", script]);
        let child = Pid::from_raw(read_tagged(&mut lines, "pid ").parse().expect("a pid"));
        if stop_it {
            kill(child, Signal::SIGSTOP).expect("stop the child");
        }
        kill(Pid::from_raw(main.id() as i32), Signal::SIGTERM).expect("signal");
        let began = Instant::now();
        assert!(support::ends_within(Pid::from_raw(main.id() as i32), Duration::from_secs(20)), "SIGTERM hung");
        let status = main.wait().expect("reaped");
        assert_eq!(status.code(), Some(143), "stopped child: {stop_it}");
        assert!(support::ends_within(child, Duration::from_secs(5)), "the child outlived its parent");
        eprintln!("stopped child: {stop_it}: ended in {:?}", began.elapsed());
    }
}

/// A child killed with SIGKILL while its parent is blocked is reaped at
/// once: it is no zombie, and the parent, left waiting on a queue only the
/// child could fill, gets a deadlock report instead of hanging.
#[test]
fn a_killed_child_is_reaped_while_its_parent_is_blocked() {
    let script = "let q = queue()\nlet p = spawn fn() { print(\"pid\", pid()); while true { sleep(1) } }()\nget q\n";
    let (main, mut lines) = support::start(&["-c", script]);
    let child = Pid::from_raw(read_tagged(&mut lines, "pid ").parse().expect("a pid"));
    kill(child, Signal::SIGKILL).expect("kill the child");
    let main_pid = Pid::from_raw(main.id() as i32);
    assert!(support::ends_within(main_pid, Duration::from_secs(30)), "the parent hung after its child was killed");
    let output = main.wait_with_output().expect("reaped");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Deadlock") && stderr.contains("waits to get from a queue"), "{stderr}");
}

/// A dead child is reaped even while its parent is busy computing: it does
/// not linger as a zombie.
#[test]
fn a_killed_child_leaves_no_zombie_while_its_parent_runs() {
    let script = "let p = spawn fn() { print(\"pid\", pid()); while true { sleep(1) } }()\n\
                  let stop = event()\nlet n = 0\nwhile not stop.is_set { n += 1 }\n";
    let (mut main, mut lines) = support::start(&["-c", script]);
    let child = Pid::from_raw(read_tagged(&mut lines, "pid ").parse().expect("a pid"));
    kill(child, Signal::SIGKILL).expect("kill the child");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut gone = false;
    while !gone && Instant::now() < deadline {
        gone = !std::path::Path::new(&format!("/proc/{child}")).exists();
        std::thread::sleep(Duration::from_millis(20));
    }
    // Ended before the verdict, so a failure leaves no process behind.
    let _ = main.kill();
    let _ = main.wait();
    assert!(gone, "the killed child stayed a zombie");
}

/// Runs `concsh -` on `script` with the address space limited to `limit`
/// bytes (`ulimit -v`).
fn run_limited(script: &str, limit: u64) -> support::Run {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let mut command = support::concsh();
    command.arg("-c").arg(script).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches no memory of ours.
    unsafe {
        command.pre_exec(move || {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_AS, limit, limit)
                .map_err(std::io::Error::from)
        });
    }
    let output = command.output().expect("concsh runs");
    support::Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        code: output.status.code().unwrap_or(-1),
    }
}

/// Under a 1 GB address-space limit, a script with several threads and a
/// process still runs: stacks and the shared region shrink to fit.
#[test]
fn scripts_with_threads_run_under_a_one_gigabyte_address_limit() {
    let script = "let ts = []\nfor i in range(8) { ts.push(thread fn() { return i * 2 }()) }\n\
                  let total = 0\nfor t in ts { total += join t }\nlet p = spawn { return 5 }\nprint(total, join p)\n";
    let run = run_limited(script, 1_000_000 * 1024);
    assert_eq!((run.stdout.as_str(), run.code), ("56 5\n", 0), "{}", run.stderr);
}

/// Recursion that would overflow a thread's stack, even a small one, is a
/// `ResourceError` that names the function, never an abort.
#[test]
fn deep_recursion_in_a_thread_is_an_error_under_any_stack() {
    let nested = format!("{}f(n - 1){}", "(".repeat(120), ")".repeat(120));
    let script = format!(
        "fn f(n) {{\n    if n == 0 {{ return 0 }}\n    return {nested}\n}}\n\
         let t = thread fn() {{ return f(9990) }}()\ntry {{ print(join t) }} catch e {{ print(e.cause.kind) }}\n"
    );
    for limit in [None, Some(1_000_000 * 1024), Some(300_000 * 1024)] {
        let run = match limit {
            None => support::run_concsh(&["-c".into(), script.clone()], b"", std::path::Path::new(".")).expect("runs"),
            Some(limit) => run_limited(&script, limit),
        };
        assert!(run.stdout == "0\n" || run.stdout == "ResourceError\n", "{limit:?}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.code, 0, "{limit:?}: {}", run.stderr);
    }
}

/// Operators and keywords chained a million deep (with no brackets) are a
/// syntax error, at the top level and inside a thread, never an abort.
#[test]
fn expressions_chained_a_million_deep_are_a_syntax_error() {
    let chains = [
        format!("print({}1)", "-".repeat(1_000_000)),
        format!("print({}true)", "not ".repeat(1_000_000)),
        format!("let f = {}1", "fn() => ".repeat(1_000_000)),
        format!("let t = thread {{ print({}1) }}\njoin t", "-".repeat(300_000)),
        format!("let x = 2{}", " ** 2".repeat(100_000)),
        format!("let q = 1\nprint({}q)", "join ".repeat(100_000)),
    ];
    for script in chains {
        let run = support::run_concsh(&["-".into()], script.as_bytes(), std::path::Path::new(".")).expect("runs");
        assert_eq!(run.code, 2, "{}", &script[..40]);
        assert!(run.stderr.contains("nested more than 200 levels deep"), "{}", run.stderr);
    }
}

/// An error far along a very long line (generated code, a data literal)
/// is reported by line and column, never an abort of the report's layout.
#[test]
fn an_error_on_a_line_too_long_to_show_names_its_line_and_column() {
    let padding = " ".repeat(70_000);
    let cases = [
        (format!("print(1)\nlet x = [{padding}1 2]"), 2, "line 2, column 70012: expected"),
        (format!("print(\"{padding}\", 1 / 0)"), 1, "line 1, column 70011: here"),
    ];
    for (script, code, place) in cases {
        let run = support::run_concsh(&["-".into()], script.as_bytes(), Path::new(".")).expect("runs");
        assert_eq!(run.code, code, "{}", run.stderr);
        assert!(run.stderr.contains(place), "{}", run.stderr);
        assert!(run.stderr.contains("(the line is too long to show)"), "{}", run.stderr);
        assert!(!run.stderr.contains("internal error"), "{}", run.stderr);
    }
}

/// Generated code may call with tens of thousands of arguments: such a
/// call is read in linear time (it took 17 s to read 65,536 in a debug
/// build, a search for a named argument at each positional one) and runs.
#[test]
fn a_call_of_sixty_thousand_arguments_runs() {
    let ones = vec!["1"; 65_536].join(",");
    let script = format!(
        "let m = max\nprint(m({ones}))\nlet o = {{\"g\": fn(a) => a}}\ntry {{ o.g({ones}) }} catch e {{ print(e.message) }}\n"
    );
    let run = support::run_concsh(&["-".into()], script.as_bytes(), Path::new(".")).expect("runs");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "1\n`<lambda>` takes 1 argument but 65536 were given\n");
}

/// A write error on stdout other than a vanished reader is an `IOError` in
/// the script: it can be caught, and uncaught it ends the run with 1.
#[test]
fn a_full_disk_on_stdout_is_an_io_error() {
    let script = "try { print(1) } catch e { eprint(\"caught\", e.kind) }\nprint(2)\neprint(\"not reached\")\n";
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let output = support::concsh()
        .args(["-c", script])
        .stdout(full)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("concsh runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("caught IOError\n"), "{stderr}");
    assert!(stderr.contains("cannot write to standard output: No space left on device"), "{stderr}");
    assert!(!stderr.lines().any(|line| line == "not reached"), "{stderr}");
}

/// An endless script (`/dev/zero`) stops at the size limit; a list too
/// large for the address space is a `ResourceError`, not an abort.
#[test]
fn endless_input_and_huge_values_meet_a_limit() {
    let output = support::concsh().arg("/dev/zero").output().expect("concsh runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/dev/zero is too large to be a script"));
    let run = run_limited("let x = list(range(200000000))\nprint(len(x))\n", 4_000_000 * 1024);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("ResourceError: out of memory: no room for the list"), "{}", run.stderr);
}

/// A file past the longest string (4 GiB) read whole is a
/// `ResourceError` before a byte is read, under an address limit far below
/// its size: never an abort, never an attempt to hold it.
#[test]
fn a_file_past_the_longest_string_is_refused_before_it_is_read() {
    let dir = std::env::temp_dir().join(format!("concsh-huge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join("huge.txt");
    // Sparse: it takes no disk.
    std::fs::File::create(&path).and_then(|f| f.set_len(5 << 30)).expect("a sparse file");
    let script =
        format!("try {{ read_file({:?}) }} catch e {{ print(e.kind, e.message) }}\n", path.display().to_string());
    let run = run_limited(&script, 2_000_000 * 1024);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "ResourceError string would be too large (limit 4294967283)\n", "{}", run.stderr);
}

/// Once a deadlock is reported, no further statement runs: the main task's
/// `print(join p)` never prints, though the joined child ends as the run
/// is torn down. Repeated, because the window was narrow.
#[test]
fn nothing_runs_after_a_deadlock_report() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for round in 0..30 {
        let run = support::run_concsh(&["scripts/deadlock/future_in_a_child.conc".into()], b"", root).expect("runs");
        assert_eq!(run.code, 1, "round {round}: {}", run.stderr);
        assert_eq!(run.stdout, "", "round {round}: a statement ran after the report");
    }
}

/// More than a thousand live tasks leave the deadlock watch on: the board
/// has a slot for every task `--max-tasks` allows.
#[test]
fn the_deadlock_watch_sees_past_a_thousand_tasks() {
    let script = "let go = event()\nlet ready = queue()\nlet ts = []\n\
                  for i in range(1100) { ts.push(thread fn() { put 1 into ready; wait go }()) }\n\
                  for i in range(1100) { get ready }\nprint(\"all waiting\")\nlet q = queue()\nget q\n";
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let args = ["--max-tasks".to_string(), "2000".into(), "-c".into(), script.into()];
    let run = support::run_concsh(&args, b"", root).expect("runs");
    assert_eq!(run.stdout, "all waiting\n");
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("Deadlock: every task is waiting"), "{}", &run.stderr[..run.stderr.len().min(500)]);
}

/// A process killed with SIGKILL in the middle of a critical section
/// leaves no waiter hanging: for each primitive, the waiter (a thread of
/// the main process) gets `Abandoned`, and the primitive works again.
#[test]
fn a_holder_killed_with_sigkill_leaves_its_primitives_to_the_waiters() {
    // The holder sleeps (the deadlock watch stays quiet) until it is killed.
    for (make, take) in [
        ("lock()", "lock target { set held; print(\"pid\", pid()); sleep(100) }"),
        ("condition()", "lock target { set held; print(\"pid\", pid()); sleep(100) }"),
        ("shared(0)", "lock target { target.value = 1; set held; print(\"pid\", pid()); sleep(100) }"),
        ("semaphore(1)", "acquire target; set held; print(\"pid\", pid()); sleep(100)"),
    ] {
        let script = format!(
            "let target = {make}\nlet held = event()\nlet p = spawn fn() {{ {take} }}()\n\
             let waiter = thread fn() {{\n    wait held\n    try {{ acquire target }} catch e {{ return e.kind }}\n    return \"acquired\"\n}}()\n\
             print(\"got\", join waiter)\nacquire target\nrelease target\nprint(\"works again\")\n"
        );
        let (mut main, mut lines) = support::start(&["-c", &script]);
        let holder = Pid::from_raw(read_tagged(&mut lines, "pid ").parse().expect("a pid"));
        kill(holder, Signal::SIGKILL).expect("kill the holder");
        let main_pid = Pid::from_raw(main.id() as i32);
        assert!(support::ends_within(main_pid, Duration::from_secs(30)), "{make}: the waiter hung");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut lines, &mut rest).expect("the rest");
        assert_eq!(rest, "got Abandoned\nworks again\n", "{make}");
        assert_eq!(main.wait().expect("reaped").code(), Some(0), "{make}");
    }
}

/// The most shared memory a run used, from `--stats` on its stderr.
fn shared_peak_kib(stderr: &str) -> u64 {
    let line = stderr.lines().find(|l| l.starts_with("concsh: shared memory:")).unwrap_or_else(|| panic!("{stderr}"));
    let most = line.split(", ").nth(1).and_then(|part| part.split(' ').next());
    most.and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

/// Runs `script` with `--stats`; gives the peak of shared memory in KiB.
fn shared_peak_of(script: &str) -> u64 {
    let run =
        support::run_concsh(&["--stats".into(), "-c".into(), script.into()], b"", Path::new(".")).expect("concsh runs");
    assert_eq!(run.code, 0, "{}", run.stderr);
    shared_peak_kib(&run.stderr)
}

/// Primitives nothing can reach any more are freed, however they were
/// used: sent through queues and pipes, stored in shared values, tied to
/// conditions. Ten times the iterations use no more shared memory.
#[test]
fn dropped_primitives_are_freed() {
    let script = |n: u32| {
        format!(
            "for i in range({n}) {{\n    let q = queue()\n    put i into q\n    let l = lock()\n    let e = event()\n\
             \x20   let ends = pipe()\n    put [q, l, semaphore(2)] into ends[0]\n    let c = condition(l)\n\
             \x20   let s = shared([1, e, q])\n    if i % 2 == 0 {{ put c into q }}\n}}\nprint(\"done\")\n"
        )
    };
    let small = shared_peak_of(&script(5_000));
    let large = shared_peak_of(&script(50_000));
    assert!(large < small + 256, "shared memory grew from {small} KiB to {large} KiB");
}

/// Shared lists and maps that grew (their slots moved to larger blocks,
/// their entries rebuilt, spilled keys and values in blocks of their own)
/// give every block back when nothing reaches them.
#[test]
fn grown_shared_lists_and_maps_are_freed() {
    let script = |n: u32| {
        format!(
            "for round in range({n}) {{\n    let m = shared({{\"q\": queue()}})\n    let xs = shared([])\n\
             \x20   for i in range(40) {{\n        m[\"a key long enough to spill {{i}}\"] = \"a value long enough to spill {{i}}\"\n\
             \x20       xs.push(\"an item long enough to spill {{i}}\")\n    }}\n\
             \x20   for i in range(0, 40, 2) {{ m.remove(\"a key long enough to spill {{i}}\"); xs.pop(0) }}\n}}\nprint(\"done\")\n"
        )
    };
    let small = shared_peak_of(&script(20));
    let large = shared_peak_of(&script(2_000));
    assert!(large < small + 256, "shared memory grew from {small} KiB to {large} KiB");
}

/// What a process held is given back when it ends, whether it returned or
/// was killed with SIGKILL: each round's child makes 2,000 queues, and
/// twenty rounds use no more shared memory than two.
#[test]
fn what_a_dead_process_held_is_freed() {
    let peak = |rounds: u32| {
        let script = format!(
            "for round in range({rounds}) {{\n    let p = spawn fn() {{\n        let qs = []\n\
             \x20       for i in range(2000) {{ qs.push(queue()) }}\n        if round % 2 == 1 {{ return len(qs) }}\n\
             \x20       print(\"pid\", pid())\n        while true {{ sleep(1) }}\n    }}()\n    join p\n}}\nprint(\"done\")\n"
        );
        let (main, mut lines) = support::start(&["--stats", "-c", &script]);
        for _ in 0..rounds.div_ceil(2) {
            let child = Pid::from_raw(read_tagged(&mut lines, "pid ").parse().expect("a pid"));
            kill(child, Signal::SIGKILL).expect("kill the child");
        }
        let main_pid = Pid::from_raw(main.id() as i32);
        assert!(support::ends_within(main_pid, Duration::from_secs(60)), "the run hung");
        let output = main.wait_with_output().expect("reaped");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        shared_peak_kib(&stderr)
    };
    let (two, twenty) = (peak(2), peak(20));
    assert!(twenty < two * 2, "shared memory grew from {two} KiB to {twenty} KiB");
}
