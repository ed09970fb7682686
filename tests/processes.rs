//! Processes end with their parent, however it ends, and the primitives
//! hold up between processes and threads. Waiting for processes to end
//! uses pidfds (no sleeping).

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod support;

/// A script whose main task, a child, and that child's child all print
/// their pids and then wait forever; one more child computes forever
/// (with no signal listener of its own started).
const FAMILY: &str = r#"
let forever = event()
let spinner = spawn { print("pid", pid()); let n = 0; while true { n += 1 } }
let child = spawn {
    let grandchild = spawn { print("pid", pid()); wait forever }
    print("pid", pid())
    wait forever
}
let worker = spawn { print("pid", pid()); wait forever }
let thread_spawned = thread { let p = spawn { print("pid", pid()); wait forever }; join p }
join child
"#;

/// Starts FAMILY and reads the pids of the five processes it spawned.
fn start_family() -> (support::Running, Vec<Pid>) {
    let (main, mut lines) = support::start(&["-c", FAMILY]);
    let mut pids = Vec::new();
    while pids.len() < 5 {
        let mut line = String::new();
        assert!(lines.read_line(&mut line).expect("a line") > 0, "concsh ended early");
        let pid: i32 = line.trim().strip_prefix("pid ").and_then(|p| p.parse().ok()).expect("a pid line");
        pids.push(Pid::from_raw(pid));
    }
    (main, pids)
}

#[test]
fn killing_the_main_process_ends_every_child() {
    let (mut main, pids) = start_family();
    kill(Pid::from_raw(main.id() as i32), Signal::SIGKILL).expect("kill");
    main.wait().expect("reaped");
    for pid in pids {
        assert!(support::ends_within(pid, Duration::from_secs(10)), "process {pid} outlived a killed parent");
    }
}

#[test]
fn ctrl_c_ends_every_child_with_status_130() {
    let (mut main, pids) = start_family();
    kill(Pid::from_raw(main.id() as i32), Signal::SIGINT).expect("signal");
    let status = main.wait().expect("ends");
    assert_eq!(status.code(), Some(130));
    for pid in pids {
        assert!(support::ends_within(pid, Duration::from_secs(10)), "process {pid} outlived Ctrl-C");
    }
}

#[test]
fn producers_and_consumers_of_both_kinds_lose_nothing() {
    let script = r#"
let q = queue(16)
let results = queue()
fn produce(id) { for i in range(2000) { put id * 100000 + i into q } }
fn consume() {
    let got = []
    for item in q { got.push(item) }
    put got into results
}
let producers = []
for id in range(1, 5) { producers.push(spawn produce(id)) }
let consumers = [spawn consume(), spawn consume(), spawn consume(), thread consume(), thread consume()]
for p in producers { join p }
close q
for c in consumers { join c }
let all = []
for i in range(5) { all = all + get results }
let expected = []
for id in range(1, 5) { for i in range(2000) { expected.push(id * 100000 + i) } }
print(len(all), sorted(all) == expected)
"#;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for round in 0..3 {
        let run = support::run_concsh(&["-".into()], script.as_bytes(), root).expect("runs");
        assert_eq!(run.stdout, "8000 true\n", "round {round}: {}", run.stderr);
        assert_eq!(run.code, 0);
    }
}

#[test]
fn forking_while_threads_mutate_shared_lists_never_hangs() {
    let script = r#"
let xs = []
let m = {}
let stop = event()
fn churn(tag) {
    let i = 0
    while not stop.is_set {
        xs.push(i)
        m["{tag}"] = i
        if len(xs) > 100 { xs.pop(0) }  # three threads: at most 103 at once
        i += 1
    }
}
let workers = [thread churn("a"), thread churn("b"), thread churn("c")]
let sizes = []
for i in range(200) {
    let p = spawn { return len(xs) <= 103 and len(keys(m)) <= 3 }
    sizes.push(join p)
}
set stop
for w in workers { join w }
print(len(sizes), all_true(sizes))
fn all_true(values) { for v in values { if not v { return false } }; return true }
"#;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = support::run_concsh(&["-".into()], script.as_bytes(), root).expect("runs without hanging");
    assert_eq!(run.stdout, "200 true\n", "{}", run.stderr);
}

#[test]
fn runaway_spawning_meets_the_task_limit() {
    let script = "fn bomb() { let a = spawn bomb(); let b = spawn bomb(); join a; join b }\nbomb()";
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run =
        support::run_concsh(&["--max-tasks".into(), "40".into(), "-".into()], script.as_bytes(), root).expect("runs");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("too many live tasks: the limit is 40"), "{}", run.stderr);
}
