//! Pools under duress: a worker killed mid-task, a million items, Ctrl-C.

use std::io::BufRead;
use std::path::Path;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod support;

/// Runs `script` until it prints `victim PID`, kills that pool worker with
/// SIGKILL, and gives what the script printed after, and how it ended.
fn kill_the_victim(script: &str) -> (String, std::process::ExitStatus) {
    let (mut child, mut lines) = support::start(&["-c", script]);
    let mut line = String::new();
    lines.read_line(&mut line).expect("victim line");
    let victim: i32 = line.trim().strip_prefix("victim ").and_then(|p| p.parse().ok()).expect("a pid");
    kill(Pid::from_raw(victim), Signal::SIGKILL).expect("kill the worker");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut lines, &mut rest).expect("the rest");
    (rest, child.wait().expect("ends"))
}

#[test]
fn a_worker_killed_mid_task_fails_that_task_and_the_pool_finishes_the_rest() {
    // Each task prints its worker's pid and waits; the test kills the worker
    // holding item 0 with SIGKILL, then lets the rest go.
    let script = r#"
let go = event()
let started = queue()
fn task(x, go, started) {
    put [x, pid()] into started
    if x == 0 { wait go }
    return x * 10
}
let pl = pool(2)
let f0 = submit task(0, go, started) to pl
let first = get started
print("victim", first[1])
let rest = []
for i in range(1, 6) { rest.push(submit task(i, go, started) to pl) }
try { join f0 } catch e { print(e.kind, e.message.ends_with("was killed by signal 9 while running this task")) }
let results = []
for f in rest { results.push(join f) }
print(results)
close pl
join pl
"#;
    let (rest, status) = kill_the_victim(script);
    assert_eq!(rest, "TaskFailed true\n[10, 20, 30, 40, 50]\n");
    assert!(status.success());
}

#[test]
fn a_million_item_map_runs_in_bounded_memory() {
    let streamed = |n: u64| {
        format!(
            "let total = 0\nfor v in pool 4 map unordered fn(x) => x % 7 over range({n}) {{ total += v }}\nassert(total > 0)"
        )
    };
    let small = support::peak_rss_kib(&streamed(100_000));
    let large = support::peak_rss_kib(&streamed(1_000_000));
    // Ten times the input, nearly the same peak: nothing grows with it.
    assert!(large < small + 20_000, "peak RSS grew from {small} KiB to {large} KiB");
    // An ordered map keeps only its result list (16 bytes an item).
    let ordered =
        support::peak_rss_kib("let r = pool 4 map fn(x) => x % 7 over range(1000000)\nassert(len(r) == 1000000)");
    assert!(ordered < small + 60_000, "an ordered million-item map peaked at {ordered} KiB");
}

#[test]
fn ctrl_c_during_a_map_stops_every_worker_with_one_line() {
    // The workers exist once `pool(2)` returns, before "ready" is printed.
    let script =
        "let pl = pool(2)\nprint(\"ready\")\nlet r = pool pl map fn(x) { sleep(100); return x } over range(10)";
    let (child, mut lines) = support::start(&["-c", script]);
    let mut line = String::new();
    lines.read_line(&mut line).expect("ready");
    let me = child.id();
    kill(Pid::from_raw(me as i32), Signal::SIGINT).expect("signal");
    let output = child.wait_with_output().expect("ends");
    assert_eq!(output.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr, "concsh: interrupted\n");
}

#[test]
fn a_long_map_draws_no_progress_bar_when_stderr_is_not_a_terminal() {
    // Longer than the half second after which a terminal would show a bar.
    let script = "let r = pool 2 map fn(x) { sleep(0.1); return x } over range(16)\nprint(len(r))";
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = support::run_concsh(&["-".into()], script.as_bytes(), root).expect("runs");
    assert_eq!(run.stdout, "16\n");
    assert_eq!(run.stderr, "", "nothing may be drawn on a non-terminal stderr");
}

/// A worker killed in the middle of a chunk of map items: the error names
/// the item it was running, not the first of its chunk.
#[test]
fn a_worker_killed_mid_chunk_names_the_item_it_was_running() {
    let script = r#"
let go = event()
fn task(x) {
    if x == 5 {
        print("victim", pid())
        wait go
    }
    return x
}
try { print(pool 1 map task over range(8)) } catch e { print(e.kind, e.message) }
"#;
    let (rest, _) = kill_the_victim(script);
    assert!(rest.starts_with("TaskFailed "), "{rest}");
    assert!(rest.contains("item 5") && rest.contains("killed by signal 9"), "{rest}");
}
