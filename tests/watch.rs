//! Watching a run: the deadlock watch never reports falsely (the reports
//! themselves are golden tests: `scripts/deadlock/`), and SIGQUIT prints
//! a task dump without ending the run.

use std::io::{BufRead, Write};
use std::time::Duration;

mod support;

/// Heavy contention between threads and processes (a lock, a one-item
/// queue, an event ping-pong) keeps every task asleep most of the time,
/// yet it is never taken for a deadlock. Repeated, since a false report
/// would come from an unlucky interleaving.
#[test]
fn heavy_contention_is_never_reported() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("scripts/deadlock/heavy_contention.conc").display().to_string();
    for round in 0..5 {
        let run = support::run_concsh(std::slice::from_ref(&script), b"", root).expect("concsh runs");
        assert_eq!(run.code, 0, "round {round}: {}", run.stderr);
        assert!(!run.stderr.contains("Deadlock"), "round {round}: {}", run.stderr);
        assert!(run.stdout.contains("counter: 240000"), "round {round}: {}", run.stdout);
    }
}

/// A task reading standard input can go on (when a line comes), so a
/// thread stuck meanwhile is no deadlock.
#[test]
fn reading_input_is_not_stuck() {
    let code =
        "let e = event()\nlet t = thread { wait e }\nprint(\"ready\")\nlet line = input()\nset e\njoin t\nprint(line)";
    let (mut child, mut stdout) = support::start(&["-c", code]);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("ready");
    assert_eq!(line, "ready\n");
    // Long enough for the watch to have judged the board several times
    // (it reports within about a second).
    std::thread::sleep(Duration::from_secs(2));
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(b"typed late\n").expect("the run is still waiting for input");
    drop(stdin);
    let output = child.wait_with_output().expect("concsh ends");
    let rest = String::from_utf8_lossy(&output.stdout);
    let mut all = String::new();
    stdout.read_line(&mut all).ok();
    all.push_str(&rest);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("Deadlock"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(all.contains("typed late"), "{all}");
}

/// Ctrl-\\ (SIGQUIT) lists every live task of every process, with what
/// it does and where; the run goes on. (Process-3 only computes, so it
/// answers with no signal listener of its own started yet.)
#[test]
fn sigquit_prints_a_task_dump_and_the_run_goes_on() {
    // The busy tasks say they have started before "ready": a dump sent
    // at once finds them in their loop, not on the way to it.
    let code = "let q = queue(3)\nlet e = event()\nfn busy(started) {\n  set started\n  while true { }\n}\n\
                let t1 = thread { get q }\nlet ready1 = event()\nlet t2 = thread busy(ready1)\n\
                let p = spawn { wait e }\nlet s = spawn { sleep(100) }\nlet ready2 = event()\n\
                let c = spawn busy(ready2)\nwait ready1\nwait ready2\nprint(\"ready\")\njoin t1";
    let (mut child, mut stdout) = support::start(&["-c", code]);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("ready");
    assert_eq!(line, "ready\n");
    let stderr = child.stderr.take().expect("piped stderr");
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT).expect("signal sent");
    let mut dump = Vec::new();
    while dump.len() < 7 {
        match seen.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => dump.push(line),
            Err(_) => panic!("no task dump after SIGQUIT: {dump:?}"),
        }
    }
    let has = |words: &[&str]| dump.iter().any(|l| words.iter().all(|w| l.contains(w)));
    assert!(has(&["concsh: 6 live tasks"]), "{dump:?}");
    assert!(has(&["process MainProcess", "waits to join thread Thread-1, line 17"]), "{dump:?}");
    assert!(has(&["thread Thread-1", "waits to get from a queue holding 0 items (capacity 3), line 7"]), "{dump:?}");
    assert!(has(&["thread Thread-2", "running, line 5"]), "{dump:?}");
    assert!(has(&["process Process-1", "waits for an event no task sets, line 10"]), "{dump:?}");
    assert!(has(&["process Process-2", "sleeping, line 11"]), "{dump:?}");
    assert!(has(&["process Process-3", "running, line 5"]), "{dump:?}");
    assert_eq!(child.try_wait().expect("status"), None, "the run goes on after a dump");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("signal sent");
    assert_eq!(child.wait().expect("ends").code(), Some(130));
}

/// A dump asked for just after a `spawn` reaches the new process however
/// young it is: a SIGQUIT that arrives before the child answers signals
/// itself waits for it (rather than running the parent's handler, which
/// passed it to the parent's listener and left the child unasked).
/// Repeated, since it takes a signal in the first moments of a child.
#[test]
fn a_dump_right_after_a_spawn_reaches_the_new_process() {
    let code = "fn busy() {\n  while true { }\n}\nlet c = spawn busy()\nprint(\"ready\")\njoin c";
    for round in 0..20 {
        let (mut child, mut stdout) = support::start(&["-c", code]);
        let mut line = String::new();
        stdout.read_line(&mut line).expect("ready");
        assert_eq!(line, "ready\n");
        let mut stderr = std::io::BufReader::new(child.stderr.take().expect("piped stderr"));
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT).expect("signal sent");
        let mut dump = Vec::new();
        while dump.len() < 3 {
            let mut line = String::new();
            if stderr.read_line(&mut line).expect("stderr") == 0 {
                break;
            }
            dump.push(line);
        }
        let process = dump.iter().find(|l| l.contains("process Process-1 ("));
        // Entering `busy` (line 1) or in its loop (line 2).
        let answered = process.is_some_and(|l| l.contains("running, line 1") || l.contains("running, line 2"));
        assert!(answered, "round {round}: {dump:?}");
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("signal sent");
        assert_eq!(child.wait().expect("ends").code(), Some(130));
    }
}
