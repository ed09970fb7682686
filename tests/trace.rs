//! `--trace` and `--timeline`, run on the real binary.

use std::collections::HashMap;
use std::io::BufRead;

use serde_json::Value;

mod support;

const TWO_THREADS_TWO_PROCESSES: &str = r#"let q = queue(2)
let done = event()
fn produce(n) {
    for i in range(n) {
        put i into q
        sleep(0.02)
    }
}
fn consume(n) {
    let total = 0
    for i in range(n) {
        total = total + get q
    }
    return total
}
let t1 = thread produce(5)
let t2 = thread consume(5)
let p1 = spawn { sleep(0.1); set done }
let p2 = spawn { wait done; return "seen" }
print(join t2)
join t1
print(join p2)
join p1
"#;

fn trace_file(test: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("concsh-trace-test-{}-{test}.json", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn events(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("the trace file is written");
    let document: Value = serde_json::from_str(&text).expect("the trace is valid JSON");
    document["traceEvents"].as_array().expect("a traceEvents array").clone()
}

/// Every event has what Chrome's format needs, and begins and ends pair
/// up on every track.
fn check_structure(events: &[Value]) {
    let mut depth: HashMap<(i64, i64), i64> = HashMap::new();
    for event in events {
        let ph = event["ph"].as_str().expect("ph");
        assert!(event["pid"].is_i64(), "{event}");
        if ph != "M" {
            assert!(event["tid"].is_i64() && event["ts"].is_u64(), "{event}");
        }
        let track = (event["pid"].as_i64().unwrap_or(0), event["tid"].as_i64().unwrap_or(0));
        match ph {
            "B" => *depth.entry(track).or_default() += 1,
            "E" => {
                let d = depth.entry(track).or_default();
                *d -= 1;
                assert!(*d >= 0, "an end with no begin on {track:?}");
            }
            "i" | "M" => {}
            other => panic!("unexpected phase {other}"),
        }
    }
    assert!(depth.values().all(|&d| d == 0), "every span ends: {depth:?}");
}

/// The name of each track (`thread_name` metadata), by (pid, tid).
fn tracks(events: &[Value]) -> HashMap<(i64, i64), String> {
    events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| {
            let track = (e["pid"].as_i64().unwrap_or(0), e["tid"].as_i64().unwrap_or(0));
            (track, e["args"]["name"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

#[test]
fn a_trace_has_a_track_per_task_and_spans_for_waits() {
    let path = trace_file("tracks");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let args = vec!["--trace".to_string(), path.display().to_string(), "-c".into(), TWO_THREADS_TWO_PROCESSES.into()];
    let run = support::run_concsh(&args, b"", root).expect("concsh runs");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "10\nseen\n");
    let events = events(&path);
    check_structure(&events);
    let tracks = tracks(&events);
    let pid_of = |name: &str| {
        let found = tracks.iter().find(|(_, n)| *n == name).unwrap_or_else(|| panic!("no track {name}: {tracks:?}"));
        found.0.0
    };
    let main = pid_of("process MainProcess");
    assert_eq!(pid_of("thread Thread-1"), main, "threads run in the main process");
    assert_eq!(pid_of("thread Thread-2"), main);
    let (p1, p2) = (pid_of("process Process-1"), pid_of("process Process-2"));
    assert!(p1 != main && p2 != main && p1 != p2, "each process is an OS process of its own");
    let named = |cat: &str, name: &str| events.iter().any(|e| e["cat"] == cat && e["name"] == name);
    assert!(named("wait", "get q"), "a blocked get is a span named by its code");
    assert!(named("wait", "join t2"), "a join is a span");
    assert!(named("wait", "wait done"), "an event wait is a span");
    assert!(named("sleep", "sleep(0.02)"), "a sleep is a span");
    assert!(named("mark", "put") && named("mark", "set"), "put and set are instants");
    let wait = events.iter().find(|e| e["name"] == "get q").expect("get span");
    assert_eq!(wait["args"]["line"], 12, "a wait names its source line");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn pool_items_are_labelled_in_the_trace() {
    let path = trace_file("pool");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let code = "fn double(x) { return x * 2 }\nprint(pool 2 map double over [1, 2, 3])";
    let args = vec!["--trace".to_string(), path.display().to_string(), "-c".into(), code.into()];
    let run = support::run_concsh(&args, b"", root).expect("concsh runs");
    assert_eq!(run.stdout, "[2, 4, 6]\n", "{}", run.stderr);
    let events = events(&path);
    check_structure(&events);
    for label in ["double(1)", "double(2)", "double(3)"] {
        assert!(events.iter().any(|e| e["cat"] == "item" && e["name"] == label), "no item {label}");
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn the_trace_of_a_run_ended_by_ctrl_c_is_valid() {
    let path = trace_file("interrupted");
    let code = "let q = queue()\nlet t = thread { get q }\nlet p = spawn { sleep(100) }\nprint(\"ready\")\njoin t";
    let trace = path.display().to_string();
    let (mut child, mut stdout) = support::start(&["--trace", &trace, "-c", code]);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("ready");
    assert_eq!(line, "ready\n");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("signal sent");
    let status = child.wait().expect("concsh ends");
    assert_eq!(status.code(), Some(130));
    let events = events(&path);
    check_structure(&events);
    let tracks = tracks(&events);
    for name in ["process MainProcess", "thread Thread-1", "process Process-1"] {
        assert!(tracks.values().any(|n| n == name), "no track {name}: {tracks:?}");
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn the_timeline_draws_a_row_per_task_across_the_width() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let code =
        "let e = event()\nlet t = thread { wait e }\nlet p = spawn { sleep(0.2); return 1 }\njoin p\nset e\njoin t";
    let mut command = support::concsh();
    command.env("COLUMNS", "60").args(["--timeline", "-c", code]).current_dir(root);
    let output = command.output().expect("concsh runs");
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let rows: Vec<&str> = stderr.lines().filter(|l| l.contains('│')).collect();
    assert_eq!(rows.len(), 3, "one row per task: {stderr}");
    let row = |name: &str| *rows.iter().find(|r| r.starts_with(name)).unwrap_or_else(|| panic!("no row {name}"));
    for name in ["process MainProcess", "thread Thread-1", "process Process-1"] {
        assert_eq!(row(name).chars().count(), 60, "the row spans the width: {}", row(name));
    }
    assert!(rows[0].starts_with("process MainProcess"), "the first task comes first: {stderr}");
    assert!(row("thread Thread-1").contains('░'), "the thread waits: {stderr}");
    assert!(row("process Process-1").contains('·'), "the process sleeps: {stderr}");
    assert!(stderr.contains("0s") && stderr.contains("█ running  ░ waiting  · sleeping"), "{stderr}");
}

/// A trace that cannot be written is reported before the script runs.
#[test]
fn an_unwritable_trace_is_refused_before_the_run() {
    let args = ["--trace", "/no/such/directory/t.json", "-c", "print(\"ran\")"].map(String::from);
    let run = support::run_concsh(&args, b"", std::path::Path::new(".")).expect("concsh runs");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stdout, "", "nothing ran");
    assert!(run.stderr.contains("cannot write the trace /no/such/directory/t.json"), "{}", run.stderr);
}
