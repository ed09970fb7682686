//! Output from concurrent tasks: every `print` is written whole, so lines
//! from different threads never mix within a line, whether stdout is a pipe
//! or a file.

use std::path::Path;

mod support;

/// 8 threads each print 300 lines of 1,000 copies of their own letter.
const SCRIPT: &str = r#"
fn shout(letter) {
    let line = letter * 1000
    for i in range(300) { print(line) }
}
let ts = []
for letter in ["a", "b", "c", "d", "e", "f", "g", "h"] { ts.push(thread shout(letter)) }
for t in ts { join t }
"#;

fn check_lines(stdout: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 8 * 300, "every line arrives");
    for (n, line) in lines.iter().enumerate() {
        let first = line.chars().next().expect("non-empty line");
        assert!(
            line.len() == 1000 && line.chars().all(|c| c == first),
            "line {n} mixes output of several threads: {}...",
            &line[..line.len().min(80)]
        );
    }
}

#[test]
fn lines_from_threads_never_mix_in_a_pipe() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = support::run_concsh(&["-".into()], SCRIPT.as_bytes(), root).expect("runs");
    assert_eq!(run.code, 0, "{}", run.stderr);
    check_lines(&run.stdout);
}

#[test]
fn lines_from_threads_never_mix_in_a_file() {
    let path = std::env::temp_dir().join(format!("concsh-output-{}.txt", std::process::id()));
    let file = std::fs::File::create(&path).expect("temp file");
    let status = support::concsh().args(["-c", SCRIPT]).stdout(file).status().expect("runs");
    let text = std::fs::read_to_string(&path).expect("output file");
    let _ = std::fs::remove_file(&path);
    assert!(status.success());
    check_lines(&text);
}

/// Printed before five spawns, then by each child: nothing is repeated.
const BEFORE_SPAWN: &str = r#"
print("before any spawn")
for i in range(5) { join spawn { print("child {i}") } }
print("after")
"#;

fn check_spawn_output(stdout: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.iter().filter(|l| **l == "before any spawn").count(), 1, "{stdout}");
    assert_eq!(lines.len(), 7, "{stdout}");
    assert_eq!(lines.last(), Some(&"after"));
}

#[test]
fn nothing_printed_before_a_spawn_is_printed_twice() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = support::run_concsh(&["-".into()], BEFORE_SPAWN.as_bytes(), root).expect("runs");
    check_spawn_output(&run.stdout);

    let path = std::env::temp_dir().join(format!("concsh-spawn-output-{}.txt", std::process::id()));
    let file = std::fs::File::create(&path).expect("temp file");
    let status = support::concsh().args(["-c", BEFORE_SPAWN]).stdout(file).status().expect("runs");
    let text = std::fs::read_to_string(&path).expect("output file");
    let _ = std::fs::remove_file(&path);
    assert!(status.success());
    check_spawn_output(&text);
}

/// Lines longer than a pipe takes in one atomic write (`PIPE_BUF`, 4 KiB)
/// stay whole too, between threads and between processes.
#[test]
fn long_lines_never_mix_in_a_pipe() {
    let script = r#"
fn shout(letter) {
    let line = letter * 5000
    for i in range(250) { print(line) }
}
let tasks = [thread shout("a"), thread shout("b"), spawn shout("c"), spawn shout("d")]
for t in tasks { join t }
"#;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = support::run_concsh(&["-".into()], script.as_bytes(), root).expect("runs");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4 * 250, "every line arrives");
    let whole = |line: &str| line.len() == 5000 && line.chars().all(|c| line.starts_with(c));
    let mixed = lines.iter().filter(|line| !whole(line)).count();
    assert_eq!(mixed, 0, "{mixed} of 1000 long lines mixed output of several tasks");
}
