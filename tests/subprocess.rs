//! Programs run by scripts (`run`, `sh`): many of them over a pool leave
//! no zombie, and neither `terminate` nor Ctrl-C leaves one running.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod support;

/// Every process whose command line is exactly `words`.
fn running(words: &[&str]) -> Vec<i32> {
    let wanted: Vec<u8> = words.iter().flat_map(|w| w.bytes().chain([0])).collect();
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted))
        .collect()
}

/// (pid, parent, state) of every process.
fn processes() -> Vec<(i32, i32, char)> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (_, rest) = stat.rsplit_once(')')?;
            let mut fields = rest.split_whitespace();
            let state = fields.next()?.chars().next()?;
            let parent = fields.next()?.parse().ok()?;
            Some((pid, parent, state))
        })
        .collect()
}

/// Zombies among the descendants of `root`.
fn zombies_under(root: i32) -> Vec<i32> {
    let all = processes();
    let mut tree = vec![root];
    let mut at = 0;
    while at < tree.len() {
        let parent = tree[at];
        tree.extend(all.iter().filter(|(_, p, _)| *p == parent).map(|(pid, _, _)| *pid));
        at += 1;
    }
    all.iter().filter(|(pid, _, state)| *state == 'Z' && tree[1..].contains(pid)).map(|(pid, _, _)| *pid).collect()
}

/// A script in a scratch folder (removed when the folder is dropped).
fn scratch_script(name: &str, text: &str) -> (support::Scratch, String) {
    let dir = support::Scratch::new(&format!("subprocess-{name}"));
    let path = dir.join(format!("{name}.conc"));
    std::fs::write(&path, text).expect("the script");
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}

/// 200 `run("true")` over a pool of 4 processes: every one reaped.
#[test]
fn many_programs_over_a_pool_leave_no_zombie() {
    let (_dir, script) = scratch_script(
        "pool",
        "fn call(i) { return run(\"true\").code }\nlet codes = pool 4 map call over range(200)\n\
         print(sum(codes), len(codes))\nprint(\"ready\")\ninput()\n",
    );
    let mut child = support::concsh()
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("concsh starts");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("0 200"));
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
    // The pool's workers are still alive here: their children must be gone.
    let zombies = zombies_under(child.id() as i32);
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = writeln!(stdin, "done");
    drop(stdin);
    let status = child.wait().expect("concsh ends");
    assert!(zombies.is_empty(), "zombies left: {zombies:?}");
    assert!(status.success());
}

/// `terminate` of a task waiting in `sh("sleep ...")` returns at once and
/// kills the program.
#[test]
fn terminate_kills_the_program_at_once() {
    let (_dir, script) = scratch_script(
        "terminate",
        "let t = thread { sh(\"sleep 4321\") }\nsleep(0.3)\nterminate t\nlet started = time()\njoin t\n\
         print(\"joined within 2 s:\", time() - started < 2)\n",
    );
    let run = support::run_concsh(&[script], b"", Path::new("/")).expect("concsh runs");
    assert_eq!(run.stdout, "joined within 2 s: true\n", "{}", run.stderr);
    assert!(running(&["sleep", "4321"]).is_empty(), "the sleep outlived its task");
}

/// Ctrl-C while a program runs: status 130, and the program is gone.
#[test]
fn ctrl_c_during_run_leaves_no_child() {
    let (_dir, script) =
        scratch_script("interrupt", "print(\"started\")\nrun(\"sleep\", 4322)\nprint(\"not reached\")\n");
    let mut child =
        support::concsh().arg(&script).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("starts");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("started"));
    let started = Instant::now();
    while running(&["sleep", "4322"]).is_empty() {
        assert!(started.elapsed() < support::LIMIT, "the program never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
    assert!(support::ends_within(pid, support::LIMIT), "concsh did not end after Ctrl-C");
    let status = child.wait().expect("concsh ends");
    assert_eq!(status.code(), Some(130));
    assert!(running(&["sleep", "4322"]).is_empty(), "the sleep outlived Ctrl-C");
}
