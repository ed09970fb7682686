//! Pools across machines: each test starts its own `redis-server` on a
//! free loopback port (no persistence, killed at the end) and its own
//! `concsh worker` processes. When `redis-server` is missing it is
//! installed (Debian's package); when that fails, the tests fail.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod support;

/// A worker's heartbeat lapses this fast here, so a dead worker's tasks
/// move on quickly.
const LAPSE_MS: &str = "1000";

/// `redis-server`, installed if it is missing.
fn redis_server() -> &'static str {
    static FOUND: OnceLock<()> = OnceLock::new();
    FOUND.get_or_init(|| {
        let present = || Command::new("redis-server").arg("--version").output().is_ok_and(|o| o.status.success());
        if present() {
            return;
        }
        for step in [&["apt-get", "update"][..], &["apt-get", "install", "-y", "redis-server"][..]] {
            let _ = Command::new(step[0]).args(&step[1..]).env("DEBIAN_FRONTEND", "noninteractive").status();
        }
        assert!(present(), "the cluster tests need redis-server, and `apt-get install -y redis-server` failed");
    });
    "redis-server"
}

/// A Redis of this test's own.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start() -> Server {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port();
        let child = Command::new(redis_server())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let url = format!("redis://127.0.0.1:{port}");
        let server = Server { child, url };
        let until = Instant::now() + Duration::from_secs(20);
        while server.connection().is_none() {
            assert!(Instant::now() < until, "redis-server did not answer on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn connection(&self) -> Option<redis::Connection> {
        let mut connection = redis::Client::open(self.url.as_str()).ok()?.get_connection().ok()?;
        redis::cmd("PING").query::<String>(&mut connection).ok()?;
        Some(connection)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `concsh worker` with one executor.
struct Worker(Child);

impl Worker {
    fn start(url: &str, name: &str) -> Worker {
        let mut child = support::concsh()
            .args(["worker", url, "--jobs", "1", "--name", name])
            .env("CONCSH_CLUSTER_LAPSE_MS", LAPSE_MS)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("a worker starts");
        // It says so once it is connected.
        let mut line = String::new();
        let mut stderr = std::io::BufReader::new(child.stderr.take().expect("piped"));
        stderr.read_line(&mut line).expect("the worker's first line");
        assert!(line.contains("executors on"), "the worker did not start: {line}");
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Worker(child)
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.0.id() as i32)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = kill(self.pid(), Signal::SIGTERM);
        if !support::ends_within(self.pid(), Duration::from_secs(10)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn workers(server: &Server, count: usize) -> Vec<Worker> {
    (0..count).map(|i| Worker::start(&server.url, &format!("w{i}"))).collect()
}

fn run_on(server: &Server, script: &Path) -> support::Run {
    let args = vec!["--cluster".to_string(), server.url.clone(), script.display().to_string()];
    support::run_concsh(&args, b"", Path::new(env!("CARGO_MANIFEST_DIR"))).expect("concsh runs")
}

/// Runs `script` on the cluster in a thread of its own.
fn run_in_background(server: &Server, script: &Path) -> std::thread::JoinHandle<support::Run> {
    let args = vec!["--cluster".to_string(), server.url.clone(), script.display().to_string()];
    std::thread::spawn(move || support::run_concsh(&args, b"", Path::new(".")).expect("concsh runs"))
}

/// Writes a script into `scratch`; its path.
fn script(scratch: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let file = scratch.join(name);
    std::fs::write(&file, text).expect("the script");
    file
}

/// Waits (60 s at most) until `ready` says yes.
fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < Duration::from_secs(60), "{what} did not happen");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Golden scripts give on a cluster of 1, 2 and 4 workers exactly what
/// they give on a local pool (their `.out` and status).
#[test]
fn cluster_maps_return_what_local_pools_return() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scripts =
        ["scripts/cluster/maps", "scripts/pools/map_forms", "scripts/pools/failing_item", "scripts/pools/dead_worker"];
    let server = Server::start();
    for count in [1, 2, 4] {
        let _workers = workers(&server, count);
        for script in scripts {
            let run = run_on(&server, &root.join(format!("{script}.conc")));
            let expected = std::fs::read_to_string(root.join(format!("{script}.out"))).expect("the expected output");
            assert_eq!(run.stdout, expected, "{script} on {count} worker(s); stderr: {}", run.stderr);
            assert_eq!(run.code, 0, "{script} on {count} worker(s): {}", run.stderr);
        }
    }
}

/// SIGKILL of one of 4 workers in the middle of a map: the map completes
/// with every result exactly once, and the killed worker's item ran again.
#[test]
fn a_killed_worker_s_items_run_again() {
    let server = Server::start();
    let workers = workers(&server, 4);
    let scratch = support::Scratch::new("cluster-killed");
    let log = scratch.join("ran.txt");
    let text = format!(
        "fn slow(x) {{\n    append_file({log:?}, \"start {{x}} {{pid()}}\\n\")\n    sleep(0.3)\n\
         \x20   append_file({log:?}, \"end {{x}} {{pid()}}\\n\")\n    return x * x\n}}\n\
         let squares = pool 4 map slow over range(24)\nprint(squares == [x * x for x in range(24)], len(squares))\n",
        log = log.display().to_string()
    );
    let main = run_in_background(&server, &script(&scratch, "killed.conc", &text));
    // An executor in the middle of an item: its worker is killed.
    let running = || -> Option<(String, i32)> {
        let ran = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<Vec<&str>> = ran.lines().map(|l| l.split(' ').collect()).collect();
        lines.iter().filter(|l| l[0] == "start").find_map(|l| {
            let ended = lines.iter().any(|e| e[0] == "end" && e[1] == l[1]);
            (!ended).then(|| (l[1].to_string(), l[2].parse().unwrap_or(0)))
        })
    };
    wait_until("an item in the middle of its run", || running().is_some());
    let (item, executor) = running().expect("an item running");
    let stat = std::fs::read_to_string(format!("/proc/{executor}/stat")).unwrap_or_default();
    let parent: i32 =
        stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0);
    let worker = workers.iter().find(|w| w.pid().as_raw() == parent).expect("the executor's worker is ours");
    kill(worker.pid(), Signal::SIGKILL).expect("kill a worker");
    let killed_at = Instant::now();
    let run = main.join().expect("the script's thread");
    println!("the map ended {:?} after the kill", killed_at.elapsed());
    assert_eq!(run.stdout, "true 24\n", "every result exactly once: {}", run.stderr);
    let ran = std::fs::read_to_string(&log).expect("the log");
    let starts = |x: &str| ran.lines().filter(|l| l.split(' ').take(2).eq(["start", x])).count();
    assert!((0..24).all(|x| starts(&x.to_string()) >= 1), "every item ran: {ran}");
    assert_eq!(starts(&item), 2, "the killed worker's item ran again: {ran}");
}

/// A task that always kills its worker fails the map after exactly 3
/// attempts, with an error naming the item.
#[test]
fn a_task_that_kills_its_worker_fails_after_three_attempts() {
    let server = Server::start();
    let _workers = workers(&server, 2);
    let scratch = support::Scratch::new("cluster-deadly");
    let log = scratch.join("attempts.txt");
    let text = format!(
        "fn deadly(x) {{\n    if x == 2 {{\n        append_file({log:?}, \"attempt\\n\")\n        run(\"kill\", \"-9\", str(pid()))\n    }}\n    return x\n}}\n\
         try {{ pool 2 map deadly over range(4) }} catch e {{ print(e.kind, \"|\", e.message) }}\n",
        log = log.display().to_string()
    );
    let run = run_on(&server, &script(&scratch, "deadly.conc", &text));
    assert_eq!(
        run.stdout,
        "TaskFailed | pool task failed on item 2 (2): TaskFailed: its worker died 3 times running it (on the cluster); it is not tried again\n",
        "{}",
        run.stderr
    );
    let attempts = std::fs::read_to_string(&log).expect("the log").lines().count();
    assert_eq!(attempts, 3, "run exactly three times");
}

/// A lock cannot travel (a clear TypeError); a server stopped in the
/// middle of a map is an IOError, never a hang.
#[test]
fn a_lock_cannot_travel_and_a_stopped_server_is_an_error() {
    let mut server = Server::start();
    let _workers = workers(&server, 1);
    let scratch = support::Scratch::new("cluster-errors");
    let text = "let m = lock()\nfn use(l) => l.locked\n\
                try { pool 1 map use over [m] } catch e { print(e.cause.kind, \"|\", e.cause.message) }\n";
    let run = run_on(&server, &script(&scratch, "lock.conc", text));
    assert_eq!(
        run.stdout, "TypeError | a lock cannot be sent to a cluster worker (it lives in this machine's memory)\n",
        "{}",
        run.stderr
    );
    let marker = scratch.join("started.txt");
    let text = format!(
        "fn slow(x) {{\n    write_file({marker:?}, \"x\")\n    sleep(1)\n    return x\n}}\n\
         try {{ pool 1 map slow over range(20) }} catch e {{ print(e.kind, e.cause.kind, \"|\", e.cause.message) }}\n",
        marker = marker.display().to_string()
    );
    let main = run_in_background(&server, &script(&scratch, "stopped.conc", &text));
    wait_until("the map's start", || marker.exists());
    server.stop();
    let run = main.join().expect("the script's thread");
    assert!(
        run.stdout.starts_with("TaskFailed IOError | the cluster at redis://127.0.0.1:"),
        "{} / {}",
        run.stdout,
        run.stderr
    );
    assert!(run.stdout.contains("cannot be reached"), "{}", run.stdout);
}

/// After a run, Redis holds no task; every key a run made expires (a
/// result sent after the run ended, by a worker still on a cancelled
/// item, expires too).
#[test]
fn nothing_is_left_behind_in_redis() {
    let server = Server::start();
    let _workers = workers(&server, 2);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = run_on(&server, &root.join("scripts/cluster/maps.conc"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut connection = server.connection().expect("the server");
    let queued: u64 = redis::cmd("XLEN").arg("concsh:tasks").query(&mut connection).expect("XLEN");
    assert_eq!(queued, 0, "no task is left in the stream");
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut connection).expect("KEYS");
    for key in keys.iter().filter(|k| *k != "concsh:tasks") {
        let ttl: i64 = redis::cmd("TTL").arg(key).query(&mut connection).expect("TTL");
        assert!(ttl > 0, "{key} never expires");
    }
}

/// Ctrl-C on the script drops its tasks not yet run: the workers skip
/// them, and the task stream empties.
#[test]
fn ctrl_c_drops_the_script_s_tasks_on_the_cluster() {
    let server = Server::start();
    let _workers = workers(&server, 1);
    let scratch = support::Scratch::new("cluster-ctrl-c");
    let log = scratch.join("ran.txt");
    let text = format!(
        "fn slow(x) {{\n    append_file({log:?}, \"{{x}}\\n\")\n    sleep(0.5)\n    return x\n}}\nprint(pool 1 map slow over range(40))\n",
        log = log.display().to_string()
    );
    let file = script(&scratch, "long.conc", &text);
    let (mut main, _stdout) = support::start(&["--cluster", &server.url, &file.display().to_string()]);
    wait_until("the map's start", || log.exists());
    kill(Pid::from_raw(main.id() as i32), Signal::SIGINT).expect("Ctrl-C");
    assert_eq!(main.wait().expect("the script ends").code(), Some(130));
    let mut connection = server.connection().expect("the server");
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let queued: u64 = redis::cmd("XLEN").arg("concsh:tasks").query(&mut connection).expect("XLEN");
        if queued == 0 {
            break;
        }
        assert!(Instant::now() < until, "{queued} tasks are still queued 30 s after Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ran = std::fs::read_to_string(&log).expect("the log").lines().count();
    assert!(ran < 40, "the worker ran every item after Ctrl-C ({ran})");
}

/// Two concsh runs not related by fork, a producer and two consumers,
/// move 100,000 items through a queue on the server: none is lost, none
/// is got twice, and `for v in q` ends when the producer closes it.
#[test]
fn a_queue_on_the_server_moves_items_between_unrelated_runs() {
    let server = Server::start();
    let scratch = support::Scratch::new("cluster-queue");
    let url = format!("{}/items", server.url);
    let producer = script(
        &scratch,
        "producer.conc",
        &format!("let q = queue({url:?}, 1000)\nfor i in range(100000) {{ put i into q }}\nclose q\nprint(\"sent\")\n"),
    );
    let consumer = script(
        &scratch,
        "consumer.conc",
        &format!(
            "let q = queue({url:?})\nlet n = 0\nlet total = 0\nfor v in q {{\n    n += 1\n    total += v\n}}\nprint(n, total)\n"
        ),
    );
    let run = |file: std::path::PathBuf| {
        std::thread::spawn(move || {
            support::run_concsh(&[file.display().to_string()], b"", Path::new(".")).expect("concsh runs")
        })
    };
    let consumers = [run(consumer.clone()), run(consumer)];
    let sent = run(producer).join().expect("the producer");
    assert_eq!(sent.stdout, "sent\n", "{}", sent.stderr);
    let (mut count, mut total) = (0u64, 0u64);
    for consumer in consumers {
        let got = consumer.join().expect("a consumer");
        let words: Vec<u64> = got.stdout.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        assert_eq!(words.len(), 2, "{} / {}", got.stdout, got.stderr);
        count += words[0];
        total += words[1];
    }
    assert_eq!(count, 100_000, "every item got once");
    assert_eq!(total, (0..100_000u64).sum::<u64>(), "each item got exactly once");
}

/// A queue on the server speaks as a local one: capacity, `nowait`,
/// `timeout`, `close`, `for v in q`, and the same errors.
#[test]
fn a_queue_on_the_server_behaves_as_a_local_queue() {
    let server = Server::start();
    let scratch = support::Scratch::new("cluster-queue-words");
    let text = format!(
        "let q = queue({url:?}, 2)\nprint(len(q))\nput 1 into q\nput [2, \"two\"] into q\n\
         print(q.size, q.full, q.capacity, q.closed)\n\
         try {{ put 3 into q nowait }} catch e {{ print(e.kind, e.message) }}\n\
         try {{ put 3 into q timeout 0.2 }} catch e {{ print(e.kind, e.message) }}\n\
         print(get q, get q)\ntry {{ get q nowait }} catch e {{ print(e.kind, e.message) }}\n\
         try {{ get q timeout 0.3 }} catch e {{ print(e.kind, e.message) }}\n\
         let p = spawn {{\n    for i in range(5) {{ put i into q }}\n    close q\n}}\n\
         let got = []\nfor v in q {{ got.push(v) }}\njoin p\nprint(got)\n\
         try {{ put 9 into q }} catch e {{ print(e.kind, e.message) }}\n\
         try {{ get q }} catch e {{ print(e.kind, e.message) }}\n\
         try {{ put lock() into q }} catch e {{ print(e.kind) }}\n",
        url = format!("{}/words", server.url)
    );
    let file = script(&scratch, "words.conc", &text);
    let run = support::run_concsh(&[file.display().to_string()], b"", Path::new(".")).expect("concsh runs");
    assert_eq!(
        run.stdout,
        "0\n2 true 2 false\nQueueFull the queue is full (capacity 2)\nQueueFull the queue is full (capacity 2), after waiting 0.2 s\n\
         1 [2, \"two\"]\nQueueEmpty the queue is empty\nQueueEmpty the queue is empty, after waiting 0.3 s\n\
         [0, 1, 2, 3, 4]\nQueueClosed put into a closed queue\nQueueClosed the queue is closed and empty\nTypeError\n",
        "{}",
        run.stderr
    );
}

/// A cluster map on a terminal shows the progress bar of a local one.
#[test]
fn a_cluster_map_shows_its_progress_bar() {
    use expectrl::{Eof, Expect, Session};
    let server = Server::start();
    let _workers = workers(&server, 2);
    let scratch = support::Scratch::new("cluster-progress");
    let text = format!(
        "fn work(i) {{\n    sleep(0.03)\n    return i\n}}\nlet pl = pool(2, progress: \"copying\", cluster: {url:?})\n\
         let r = pool pl map work over range(60)\nprint(\"done {{len(r)}}\")\nclose pl\njoin pl\n",
        url = server.url
    );
    let file = script(&scratch, "bar.conc", &text);
    let mut command = Command::new(env!("CARGO_BIN_EXE_concsh"));
    command.arg(&file).env("NO_COLOR", "1");
    let mut session = Session::spawn(command).expect("concsh starts on a pseudo-terminal");
    session.set_expect_timeout(Some(Duration::from_secs(60)));
    let seen = session.expect(Eof).expect("the script ends");
    let seen = String::from_utf8_lossy(seen.as_bytes());
    assert!(seen.contains("copying ") && seen.contains("/s"), "the bar was drawn: {seen:?}");
    assert!(seen.contains("done 60"), "{seen:?}");
}
