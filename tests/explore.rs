//! Schedule exploration (`--explore`, `--seed`, `--replay`): the classic
//! concurrency bugs are found within their budget from almost any base
//! seed, one seed always gives the same run, a written schedule replays
//! its failure every time and notices an edited script, and a process
//! that dies holding the baton does not hang the run.

use std::path::Path;
use std::time::{Duration, Instant};

mod support;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn script(name: &str) -> String {
    root().join("scripts/explore").join(format!("{name}.conc")).to_string_lossy().into_owned()
}

/// A fresh folder for failure files and scripts, removed at the end.
fn scratch(name: &str) -> support::Scratch {
    support::Scratch::new(&format!("explore-{name}"))
}

fn concsh(args: &[&str]) -> support::Run {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    support::run_concsh(&args, b"", root()).expect("concsh runs")
}

/// Each bug is found within its budget from at least 99 of 100 base seeds,
/// and is reported as what it is.
#[test]
fn bugs_are_found_within_their_budget() {
    let failures = scratch("budget");
    let failures = failures.to_string_lossy();
    let bugs = [
        ("lost_update", 10, "exit status 1"),
        ("shared_counter", 10, "exit status 1"),
        ("opposite_locks", 50, "deadlock"),
        ("lost_wakeup", 200, "deadlock"),
        ("check_then_act", 200, "exit status 1"),
    ];
    for (name, budget, kind) in bugs {
        let path = script(name);
        let budget = budget.to_string();
        let mut found = 0;
        for base in 1..=100 {
            let seed = base.to_string();
            let run = concsh(&["--explore", &budget, "--seed", &seed, "--failures", &failures, &path]);
            if run.code != 0 {
                assert!(run.stderr.contains(&format!("failed: {kind} (seed")), "{name}, seed {base}:\n{}", run.stderr);
                found += 1;
            }
        }
        assert!(found >= 99, "{name}: found from {found} of 100 base seeds within {budget} schedules");
    }
}

/// One seed, one run: byte for byte, with threads and with processes.
#[test]
fn one_seed_gives_the_same_output_every_time() {
    for name in ["one_seed", "lost_update", "shared_counter", "opposite_locks", "virtual_time"] {
        let path = script(name);
        for seed in ["1", "7", "0x5eed"] {
            let first = concsh(&["--seed", seed, &path]);
            for _ in 0..3 {
                let again = concsh(&["--seed", seed, &path]);
                assert_eq!(again.stdout, first.stdout, "{name}, seed {seed}: stdout");
                assert_eq!(again.stderr, first.stderr, "{name}, seed {seed}: stderr");
                assert_eq!(again.code, first.code, "{name}, seed {seed}: exit status");
            }
        }
    }
}

/// Different seeds try different orders: the lost update's total varies.
#[test]
fn different_seeds_give_different_orders() {
    let path = script("lost_update");
    let totals: std::collections::HashSet<String> =
        (1..=20).map(|seed| concsh(&["--seed", &seed.to_string(), &path]).stdout).collect();
    assert!(totals.len() > 1, "every seed gave {totals:?}");
}

/// The file a failure is written to, as the explorer names it.
fn failure_file(stderr: &str) -> String {
    let line = stderr.lines().find(|l| l.contains("--replay")).expect("a replay line");
    line.rsplit(' ').next().expect("a path").to_string()
}

/// A written schedule replays its failure, 100 times in 100.
#[test]
fn a_replay_reproduces_the_failure_every_time() {
    let failures = scratch("replay");
    let failures = failures.to_string_lossy();
    for name in ["lost_update", "shared_counter", "opposite_locks"] {
        let found = concsh(&["--explore", "50", "--seed", "3", "--failures", &failures, &script(name)]);
        assert_ne!(found.code, 0, "{name}: no failure found\n{}", found.stderr);
        let file = failure_file(&found.stderr);
        let schedule = std::fs::read_to_string(&file).expect("the schedule file");
        assert!(schedule.contains("\"choices\""), "{schedule}");
        assert!(Path::new(&file.replace(".json", ".trace.json")).exists(), "no trace beside {file}");
        let first = concsh(&["--replay", &file]);
        assert_ne!(first.code, 0, "{name}: the replay passed");
        for _ in 0..100 {
            let again = concsh(&["--replay", &file]);
            assert_eq!((again.code, &again.stdout, &again.stderr), (first.code, &first.stdout, &first.stderr));
        }
    }
}

/// A replay of an edited script says where it diverged, instead of
/// running something else.
#[test]
fn a_replay_of_an_edited_script_reports_the_divergence() {
    let dir = scratch("edited");
    let copy = dir.join("lost_update.conc");
    std::fs::copy(script("lost_update"), &copy).expect("a copy of the script");
    let failures = dir.join("failures");
    let copy_path = copy.to_string_lossy();
    let found = concsh(&["--explore", "10", "--seed", "1", "--failures", &failures.to_string_lossy(), &copy_path]);
    let file = failure_file(&found.stderr);
    let text = std::fs::read_to_string(&copy).expect("the copy");
    let locked = text
        .replace("let counter = 0", "let counter = 0\nlet m = lock()")
        .replace("counter = counter + 1", "lock m { counter = counter + 1 }");
    std::fs::write(&copy, locked).expect("the edit");
    let replay = concsh(&["--replay", &file]);
    assert!(replay.stderr.contains("has changed since this schedule was recorded"), "{}", replay.stderr);
    assert!(replay.stderr.contains("replay diverged at step"), "{}", replay.stderr);
    assert_eq!(replay.code, 1);
}

/// Virtual time: ten seconds of sleeps take no real time.
#[test]
fn sleeps_take_no_real_time() {
    let started = Instant::now();
    let run = concsh(&["--seed", "1", &script("virtual_time")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
}

/// A process killed while it holds the baton: the baton goes on, and the
/// join sees the process killed.
#[test]
fn a_process_killed_holding_the_baton_does_not_hang_the_run() {
    let dir = scratch("killed");
    let path = dir.join("busy.conc");
    std::fs::write(
        &path,
        "let n = shared(0)\nfn busy() {\n    while n.value == 0 { }\n}\nlet p = spawn busy()\n\
         join p\nprint(\"joined, exit code {p.exitcode}\")\n",
    )
    .expect("the script");
    // The busy process is the only one able to run: it holds the baton.
    let (child, busy) = start_with_child(&["--seed", "1", "--max-steps", "1000000000", &path.to_string_lossy()]);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(busy), nix::sys::signal::Signal::SIGKILL);
    let output = output_within_limit(child, "the run hung after its busy process was killed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "joined, exit code -9\n", "{stderr}");
    assert_eq!(output.status.code(), Some(0));
}

/// Starts `concsh ARGS` and waits until it has forked a child, which then
/// runs a while: the concsh process and the child's pid.
fn start_with_child(args: &[&str]) -> (std::process::Child, i32) {
    let child = support::concsh()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("concsh starts");
    let started = Instant::now();
    let forked = loop {
        if let Some(pid) = first_child(child.id()) {
            break pid;
        }
        assert!(started.elapsed() < support::LIMIT, "concsh {args:?} forked nothing");
        std::thread::sleep(Duration::from_millis(10));
    };
    std::thread::sleep(Duration::from_millis(200));
    (child, forked)
}

/// The output of `child` once it ended; `hung` if it has not within the limit.
fn output_within_limit(mut child: std::process::Child, hung: &str) -> std::process::Output {
    if !support::ends_within(nix::unistd::Pid::from_raw(child.id() as i32), support::LIMIT) {
        let _ = child.kill();
        panic!("{hung}");
    }
    child.wait_with_output().expect("its output")
}

/// A child process of `pid` (forked by any of its threads).
fn first_child(pid: u32) -> Option<i32> {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    threads.flatten().find_map(|thread| {
        let children = std::fs::read_to_string(thread.path().join("children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    })
}

/// Pools run under exploration too (their feeder and collector are not
/// scheduled, and the baton waits for them): no schedule hangs.
#[test]
fn pools_explore_without_hanging() {
    let dir = scratch("pools");
    let path = dir.join("pools.conc");
    std::fs::write(
        &path,
        "fn sq(x) { return x * x }\nlet p = pool(2)\nprint(pool p map sq over range(6))\n\
         let t = pool(2, threads: true)\nprint(pool t map sq over range(6))\nprint(join submit sq(7) to p)\n",
    )
    .expect("the script");
    let run = concsh(&["--explore", "200", "--seed", "1", &path.to_string_lossy()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("200 schedules, no failure"), "{}", run.stderr);
}

/// Ctrl-C (or `kill -INT`) to the explorer ends the schedule under way
/// and the exploration, with a line saying so and nothing left running.
#[test]
fn an_interrupted_exploration_ends_cleanly() {
    let livelock = script("livelock");
    let (child, schedule) =
        start_with_child(&["--explore", "50", "--seed", "1", "--max-steps", "1000000000", &livelock]);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT);
    let output = output_within_limit(child, "the explorer did not end after Ctrl-C");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("concsh: interrupted after"), "{stderr}");
    let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(schedule), None).is_err();
    assert!(gone, "the schedule {schedule} outlived the explorer");
}

/// Every schedule reads the same standard input: the explorer keeps it.
#[test]
fn every_schedule_reads_the_same_input() {
    let code = "let first = input()\nlet t = thread { print(first) }\njoin t\n\
                assert(first == \"a\" and input() == \"b\", \"a schedule read other input\")";
    let args: Vec<String> = ["--explore", "30", "--seed", "1", "-c", code].iter().map(|a| a.to_string()).collect();
    let run = support::run_concsh(&args, b"a\nb\n", root()).expect("concsh runs");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("30 schedules, no failure"), "{}", run.stderr);
}
