//! Chaos: while a script moves items through queues between processes and
//! threads, under a lock and with a pool at work, a random process of its
//! tree gets SIGKILL, SIGTERM or SIGSTOP (then SIGCONT) every 100 ms. Every
//! run must end within a bounded time with a status and, when it failed, a
//! report; no process of the tree may outlive it; and every item the
//! surviving consumer acknowledged must have been produced, once.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod support;

/// Two producer processes, a consumer process and a consumer thread (the
/// survivor: it prints what it acknowledges), a lock and a shared count, an
/// event, and a pool mapping meanwhile.
const SCRIPT: &str = r#"
let q = queue(8)
let m = lock()
let taken = shared(0)
let started = event()
fn produce(id) {
    set started
    for i in range(100000) { put id * 1000000 + i into q }
}
fn consume(say) {
    for item in q {
        lock m { taken.value += 1 }
        if say { print("ack", item) }
    }
}
let producers = [spawn produce(1), spawn produce(2)]
let helper = spawn consume(false)
let survivor = thread consume(true)
wait started
let pl = pool(2)
let squares = pool pl map fn(x) => x * x over range(3000)
print("squares", len(squares))
close pl
for p in producers { join p }
close q
join survivor
join helper
print("done", taken.value)
"#;

/// The processes below `root` now (its children, theirs, ...).
fn descendants(root: i32) -> Vec<i32> {
    let mut parents: HashMap<i32, Vec<i32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // After the command name in brackets: state, then the parent's pid.
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            parents.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut next = vec![root];
    while let Some(pid) = next.pop() {
        for &child in parents.get(&pid).into_iter().flatten() {
            found.push(child);
            next.push(child);
        }
    }
    found
}

/// Whether `pid` is still there in any form (a zombie included).
fn present(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// One run under chaos, seeded; panics with the seed on a broken promise.
fn run_under_chaos(seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut child = support::concsh()
        .args(["-c", SCRIPT])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("concsh starts");
    let main = child.id() as i32;
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read_all(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = read_all(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let began = Instant::now();
    let mut seen: HashSet<i32> = HashSet::new();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        assert!(began.elapsed() < Duration::from_secs(60), "seed {seed}: the run did not end within 60 s");
        std::thread::sleep(Duration::from_millis(100));
        let mut tree = descendants(main);
        seen.extend(&tree);
        // The main process is a target too, now and then.
        if rng.u32(..10) == 0 {
            tree.push(main);
        }
        if tree.is_empty() {
            continue;
        }
        let victim = Pid::from_raw(tree[rng.usize(..tree.len())]);
        match rng.u32(..3) {
            0 => {
                let _ = kill(victim, Signal::SIGKILL);
            }
            1 => {
                let _ = kill(victim, Signal::SIGTERM);
            }
            _ => {
                let _ = kill(victim, Signal::SIGSTOP);
                std::thread::sleep(Duration::from_millis(50));
                let _ = kill(victim, Signal::SIGCONT);
            }
        }
    };
    let stdout = stdout.join().expect("stdout");
    let stderr = stderr.join().expect("stderr");
    let code = status.code();
    // Ended cleanly, or with a status and a word saying why (SIGKILL of
    // the main process alone leaves no word).
    let killed = code.is_none();
    assert!(
        code == Some(0) || killed || code == Some(143) || !stderr.trim().is_empty(),
        "seed {seed}: exit {code:?} with nothing said"
    );
    // Nothing of the tree outlives the run.
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.iter().any(|&pid| present(pid)) {
        let left: Vec<&i32> = seen.iter().filter(|&&pid| present(pid)).collect();
        assert!(Instant::now() < deadline, "seed {seed}: processes {left:?} outlived the run");
        std::thread::sleep(Duration::from_millis(20));
    }
    // What the survivor acknowledged was produced, and only once.
    let mut acked = HashSet::new();
    for line in stdout.lines() {
        let Some(item) = line.strip_prefix("ack ") else { continue };
        let item: i64 = item.parse().expect("an item");
        assert!(matches!(item / 1000000, 1 | 2) && item % 1000000 < 100000, "seed {seed}: {item} was never produced");
        assert!(acked.insert(item), "seed {seed}: {item} was acknowledged twice");
    }
    if code == Some(0) {
        assert!(stdout.contains("squares 3000\n"), "seed {seed}: {stdout}");
    }
    eprintln!("seed {seed}: exit {code:?} after {:?}, {} items acknowledged", began.elapsed(), acked.len());
}

#[test]
fn random_kills_stops_and_terms_never_hang_leak_or_lose_items() {
    for seed in 1..=25 {
        run_under_chaos(seed);
    }
}
