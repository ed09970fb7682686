//! Runs that the OS or the script makes hard: signals at awkward moments,
//! killed and stopped children, resource limits. Each must end within a
//! bounded time with a clear status, and leave nothing behind.

use std::io::BufRead;
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
    while std::path::Path::new(&format!("/proc/{child}")).exists() {
        assert!(Instant::now() < deadline, "the killed child stayed a zombie");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = main.kill();
    let _ = main.wait();
}
