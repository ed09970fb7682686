//! Deadlock detection: never a false report. (The reports themselves are
//! golden tests: `scripts/deadlock/`.)

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
