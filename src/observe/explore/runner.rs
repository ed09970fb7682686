//! The explorer (`--explore N`): runs the script under up to N schedules,
//! each in a forked process of its own with its output kept aside, and
//! stops at the first that fails (an uncaught error, a failed assert, a
//! deadlock, a livelock, a non-zero exit, a race under `--race`). The
//! failing schedule is written to a file that `--replay` runs again, with
//! a Chrome trace of it; its own output and report are shown.
//!
//! Schedule `i` has its own seed, drawn from the base seed (`--seed`, or
//! a fresh one), and, by default, a strategy from the portfolio (random,
//! `pct:2`, `pct:3` in turn).

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::io::{IsTerminal, Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

use super::baton::{Table, Verdict};
use super::record::{Schedule, hash};
use super::strategy::{Plan, Strategy};
use crate::cli::{EXIT_ERROR, EXIT_INTERRUPTED, Options, compile, run_program};
use crate::report::Source;
use crate::resolve::ir::Program;

/// Schedules `--explore` runs when not told how many.
pub const SCHEDULES: u64 = 1000;

/// What `--explore` was asked.
pub struct Exploring {
    pub schedules: u64,
    /// The base seed; a fresh one when `None`.
    pub seed: Option<u64>,
    /// One strategy for every schedule, or the portfolio.
    pub strategy: Option<Strategy>,
    pub limit: u64,
    /// Where failing schedules are written.
    pub failures: PathBuf,
}

/// A controlled run's script and how it runs.
pub struct Script<'a> {
    pub program: &'a Program,
    pub source: &'a Source,
    pub args: Vec<String>,
    pub options: &'a Options,
}

/// Runs the script in this process, controlled by `plan` from `seed`:
/// `--seed` and `--replay`, and each schedule of `--explore` in its child.
pub fn run_controlled(table: &'static Table, script: &Script, seed: u64, plan: Plan, limit: u64) -> i32 {
    table.seed(seed);
    if !super::install(table, plan, limit, script.source.clone()) {
        say("concsh: a controlled run is already set up in this process\n");
        return EXIT_ERROR;
    }
    run_program(script.program, script.source, script.args.clone(), script.options)
}

/// The seed of schedule `i` of a run whose base seed is `base`.
fn schedule_seed(base: u64, i: u64) -> u64 {
    fastrand::Rng::with_seed(base ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).u64(..)
}

/// Where a schedule's standard output and error are kept.
struct Kept {
    out: std::fs::File,
    err: std::fs::File,
}

impl Kept {
    fn new() -> std::io::Result<Kept> {
        let memfd = |name: &str| -> std::io::Result<std::fs::File> {
            let fd: OwnedFd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
            Ok(std::fs::File::from(fd))
        };
        Ok(Kept { out: memfd("concsh-stdout")?, err: memfd("concsh-stderr")? })
    }

    fn clear(&mut self) {
        for file in [&mut self.out, &mut self.err] {
            let _ = file.set_len(0);
            let _ = file.rewind();
        }
    }

    fn take(file: &mut std::fs::File) -> Vec<u8> {
        let mut bytes = Vec::new();
        let _ = file.rewind();
        let _ = file.read_to_end(&mut bytes);
        bytes
    }
}

/// The explorer's standard input, when it is not a terminal: read once,
/// and given whole to every schedule, so that each reads the same lines.
static STDIN: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();

/// The most of standard input kept for the schedules.
const MAX_STDIN: u64 = 64 << 20;

fn keep_stdin() {
    STDIN.get_or_init(|| {
        if std::io::stdin().is_terminal() {
            return None;
        }
        let fd = nix::sys::memfd::memfd_create("concsh-stdin", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).ok()?;
        let mut kept = std::fs::File::from(fd);
        std::io::copy(&mut std::io::stdin().take(MAX_STDIN), &mut kept).ok()?;
        Some(kept)
    });
}

/// In a schedule's process: its standard input from the start of what the
/// explorer kept (opened anew, so at its own offset).
fn replay_stdin() {
    if let Some(Some(kept)) = STDIN.get()
        && let Ok(fresh) = std::fs::File::open(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(kept)))
    {
        let _ = nix::unistd::dup2_stdin(&fresh);
    }
}

/// Starts `job` in a forked child whose stdout and stderr go to `kept`.
fn start_child(kept: &Kept, job: impl FnOnce() -> i32) -> Option<nix::unistd::Pid> {
    // SAFETY: the explorer's thread is the only one doing anything (the
    // process's first thread waits for it in `join`), so the child's
    // copy holds no lock another thread had.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // A schedule takes Ctrl-C as any run does.
            let _ = ending_signals().thread_unblock();
            replay_stdin();
            let _ = nix::unistd::dup2_stdout(&kept.out);
            let _ = nix::unistd::dup2_stderr(&kept.err);
            let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
            let code = job();
            // SAFETY: `_exit` ends the process at once; its output is written.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => Some(child),
        Err(e) => {
            say(&format!("concsh: cannot fork a schedule: {}\n", e.desc()));
            None
        }
    }
}

/// Ctrl-C and SIGTERM as the explorer receives them: blocked in its
/// thread (and so in its schedules until they unblock them) and read from
/// a signalfd, so that the explorer lives to report and reap.
static SIGNALS: std::sync::OnceLock<Option<SignalFd>> = std::sync::OnceLock::new();
/// Set once Ctrl-C or SIGTERM came to the explorer.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Blocks Ctrl-C and SIGTERM and opens their signalfd: called by the
/// process's first thread before it starts any other, so that no thread
/// is left for the kernel to deliver them to.
pub fn take_ending_signals() {
    signals();
}

fn signals() -> Option<&'static SignalFd> {
    SIGNALS
        .get_or_init(|| {
            let wanted = ending_signals();
            wanted.thread_block().ok()?;
            SignalFd::with_flags(&wanted, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).ok()
        })
        .as_ref()
}

fn ending_signals() -> nix::sys::signal::SigSet {
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGINT);
    set.add(nix::sys::signal::Signal::SIGTERM);
    set
}

/// Waits for a child: its exit status (128 + N when killed by signal N).
/// A signal sent to the explorer (`kill -INT`) is passed on to it; one
/// from the terminal reached it already, with its whole process group.
fn wait_child(child: nix::unistd::Pid) -> i32 {
    if let (Some(signals), Ok(pidfd)) = (signals(), crate::runtime::child::open_pidfd(child)) {
        loop {
            let mut fds =
                [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN), PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::NONE).is_err() {
                continue;
            }
            while let Ok(Some(signal)) = signals.read_signal() {
                INTERRUPTED.store(true, Ordering::SeqCst);
                if signal.ssi_pid != 0 {
                    let _ =
                        nix::sys::signal::kill(child, nix::sys::signal::Signal::try_from(signal.ssi_signo as i32).ok());
                }
            }
            if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                break;
            }
        }
    }
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, signal, _)) => return 128 + signal as i32,
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => return EXIT_ERROR,
        }
    }
}

/// Runs `job` in a forked child (see [`start_child`]) and waits for it.
fn in_child(kept: &Kept, job: impl FnOnce() -> i32) -> i32 {
    start_child(kept, job).map_or(EXIT_ERROR, wait_child)
}

fn say(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// A schedule under way in a child process.
struct Running {
    index: u64,
    seed: u64,
    strategy: Strategy,
    table: &'static Table,
    child: nix::unistd::Pid,
    /// Which of the explorer's output keepers it writes to.
    lane: usize,
}

/// `--explore`: its exit status is the failing schedule's, or 0.
///
/// Schedules run side by side, one per core, and are judged in order, so
/// the failure reported is the first, whatever finished first. The first
/// schedule runs alone: how many choices it made is where PCT's change
/// points fall in every later one (the same for every run of one seed).
pub fn explore(script: &Script, how: &Exploring) -> i32 {
    let base = how.seed.unwrap_or_else(|| fastrand::u64(..));
    // Only the failing schedule gets a trace (at `--trace FILE`, if given).
    let untraced = Options { trace: None, timeline: false, ..script.options.clone() };
    let runs = Script { options: &untraced, args: script.args.clone(), ..*script };
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get()).min(how.schedules.max(1) as usize);
    let mut lanes = Vec::new();
    for _ in 0..jobs {
        match Kept::new() {
            Ok(kept) => lanes.push(kept),
            Err(e) => {
                say(&format!("concsh: --explore: cannot keep a schedule's output: {e}\n"));
                return EXIT_ERROR;
            }
        }
    }
    let on_terminal = std::io::stderr().is_terminal();
    signals();
    keep_stdin();
    let started = Instant::now();
    let mut shown = Instant::now();
    let mut distinct = HashSet::new();
    let mut first_choices = None;
    let mut free: Vec<usize> = (0..jobs).rev().collect();
    let mut under_way: std::collections::VecDeque<Running> = std::collections::VecDeque::new();
    let mut next = 0;
    let mut judged = 0;
    while judged < how.schedules {
        // The first schedule alone; then one per core.
        let room = if first_choices.is_some() { jobs } else { 1 };
        while under_way.len() < room && next < how.schedules {
            let Some(lane) = free.pop() else { break };
            let seed = schedule_seed(base, next);
            let strategy =
                how.strategy.clone().unwrap_or_else(|| Strategy::portfolio(next, first_choices.unwrap_or(1)));
            let Some(table) = Table::map() else {
                say("concsh: --explore: the kernel refused the scheduler's shared memory\n");
                return give_up(under_way, EXIT_ERROR);
            };
            lanes[lane].clear();
            let plan = Plan { strategy: strategy.clone(), replay: None };
            let Some(child) = start_child(&lanes[lane], || run_controlled(table, &runs, seed, plan, how.limit)) else {
                table.unmap();
                return give_up(under_way, EXIT_ERROR);
            };
            under_way.push_back(Running { index: next, seed, strategy, table, child, lane });
            next += 1;
        }
        let Some(oldest) = under_way.pop_front() else { break };
        let code = wait_child(oldest.child);
        judged += 1;
        let choices = oldest.table.choices_made();
        first_choices.get_or_insert(oldest.table.choices.load(std::sync::atomic::Ordering::SeqCst).max(1));
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        choices.hash(&mut hasher);
        distinct.insert(hasher.finish());
        if on_terminal && shown.elapsed() >= Duration::from_millis(100) {
            shown = Instant::now();
            let rate = judged as f64 / started.elapsed().as_secs_f64().max(1e-9);
            say(&format!("\r\x1b[2Kconcsh: exploring: {judged} of {} schedules, {rate:.0}/s", how.schedules));
        }
        if code == EXIT_INTERRUPTED || interrupted() {
            oldest.table.unmap();
            if on_terminal {
                say("\r\x1b[2K");
            }
            say(&format!("concsh: interrupted after {}, no failure\n", counted(judged, "schedule")));
            return give_up(under_way, EXIT_INTERRUPTED);
        }
        if code != 0 {
            let code = give_up(under_way, code);
            if on_terminal {
                say("\r\x1b[2K");
            }
            let Running { index, seed, strategy, table, lane, .. } = oldest;
            let failure = Failure { index, seed, strategy, code, choices, table };
            return failure.show(script, how, &mut lanes[lane]);
        }
        oldest.table.unmap();
        free.push(oldest.lane);
    }
    if on_terminal {
        say("\r\x1b[2K");
    }
    let strategy = how.strategy.as_ref().map_or("portfolio".into(), Strategy::label);
    say(&format!(
        "concsh: {}, no failure (strategy {strategy}, {})\n",
        counted(how.schedules, "schedule"),
        counted(distinct.len() as u64, "distinct interleaving")
    ));
    0
}

/// "1 schedule", "2 schedules".
fn counted(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// Ends the schedules still under way (their own children die with
/// them), and gives `code` back.
fn give_up(under_way: std::collections::VecDeque<Running>, code: i32) -> i32 {
    for running in under_way {
        let _ = nix::sys::signal::kill(running.child, nix::sys::signal::Signal::SIGKILL);
        wait_child(running.child);
        running.table.unmap();
    }
    code
}

/// Whether Ctrl-C or SIGTERM came to the explorer itself.
fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A failing schedule.
struct Failure {
    index: u64,
    seed: u64,
    strategy: Strategy,
    code: i32,
    choices: Option<Vec<(u32, Vec<u32>)>>,
    table: &'static Table,
}

impl Failure {
    /// What went wrong, in a few words.
    fn what(&self) -> String {
        match (self.table.verdict(), self.code) {
            (Verdict::Deadlock, _) => "deadlock".into(),
            (Verdict::Livelock, _) => "livelock".into(),
            (_, crate::observe::race::EXIT_RACE) => "data race".into(),
            (_, code) if code > 128 => format!("killed by signal {}", code - 128),
            (_, code) => format!("exit status {code}"),
        }
    }

    /// Prints the failure, writes its schedule and trace; the exit status.
    fn show(self, script: &Script, how: &Exploring, kept: &mut Kept) -> i32 {
        let source = script.source;
        use std::sync::atomic::Ordering::SeqCst;
        let preemptions = counted(self.table.preemptions.load(SeqCst), "preemption");
        say(&format!(
            "concsh: schedule {} of {} failed: {} (seed {:#x}, {}, {preemptions})\n",
            self.index + 1,
            how.schedules,
            self.what(),
            self.seed,
            self.strategy.label()
        ));
        let _ = std::io::stdout().write_all(&Kept::take(&mut kept.out));
        let _ = std::io::stdout().flush();
        say(&String::from_utf8_lossy(&Kept::take(&mut kept.err)));
        let tasks = (1..=self.table.tasks()).map(|seq| self.table.name(seq)).collect();
        let what = self.what();
        self.table.unmap();
        let Some(choices) = self.choices else {
            say("concsh: the schedule made too many choices to be written down\n");
            return self.code;
        };
        let stem = match &*source.name {
            "-c" => "code".to_string(),
            "<stdin>" => "stdin".to_string(),
            name => Path::new(name).file_stem().map_or("script".into(), |s| s.to_string_lossy().into_owned()),
        };
        let file = how.failures.join(format!("{stem}-{:016x}.json", self.seed));
        // A replay from another folder finds the script all the same.
        let script_path =
            std::fs::canonicalize(&*source.name).map_or(source.name.to_string(), |p| p.display().to_string());
        let schedule = Schedule {
            script: script_path,
            script_hash: hash(source.script_text()),
            text: source.script_text().to_string(),
            args: script.args.clone(),
            strategy: self.strategy.label(),
            seed: self.seed,
            failure: what,
            tasks,
            choices,
        };
        let written = std::fs::create_dir_all(&how.failures).and_then(|_| std::fs::write(&file, schedule.to_json()));
        if let Err(e) = written {
            say(&format!("concsh: cannot write the schedule to {}: {e}\n", file.display()));
            return self.code;
        }
        let trace = script.options.trace.clone().unwrap_or_else(|| file.with_extension("trace.json"));
        let traced = trace_of(&schedule, &trace, script, how.limit, kept);
        say(&format!("concsh: replay it with: concsh --replay {}\n", file.display()));
        if traced {
            say(&format!("concsh: its trace (Perfetto, chrome://tracing): {}\n", trace.display()));
        }
        self.code
    }
}

/// Replays `schedule` with a Chrome trace written to `path`.
fn trace_of(schedule: &Schedule, path: &Path, script: &Script, limit: u64, kept: &mut Kept) -> bool {
    let Some(table) = Table::map() else { return false };
    let Ok(strategy) = Strategy::parse(&schedule.strategy) else { return false };
    let plan = Plan { strategy, replay: Some(schedule.choices.clone()) };
    let options = Options { trace: Some(path.to_path_buf()), ..script.options.clone() };
    let traced = Script { options: &options, args: schedule.args.clone(), ..*script };
    kept.clear();
    in_child(kept, || run_controlled(table, &traced, schedule.seed, plan, limit));
    table.unmap();
    kept.clear();
    path.exists()
}

/// `--replay FILE`: the recorded schedule, run again in this process.
pub fn replay(file: &Path, options: &Options, limit: u64) -> i32 {
    let schedule = match std::fs::read_to_string(file).map_err(|e| e.to_string()).and_then(|t| Schedule::parse(&t)) {
        Ok(schedule) => schedule,
        Err(e) => {
            say(&format!("concsh: --replay {}: {e}\n", file.display()));
            return crate::cli::EXIT_USAGE;
        }
    };
    let strategy = match Strategy::parse(&schedule.strategy) {
        Ok(strategy) => strategy,
        Err(e) => {
            say(&format!("concsh: --replay {}: {e}\n", file.display()));
            return crate::cli::EXIT_USAGE;
        }
    };
    // The script as it is now (an edit shows as a divergence), or as it
    // was recorded when it is not a file (`-c`) or no longer there.
    let on_disk = Path::new(&schedule.script).is_file().then(|| crate::cli::read_script(&schedule.script));
    let source = match on_disk {
        Some(Ok(source)) => source,
        Some(Err(e)) => {
            say(&format!("concsh: --replay: {e}\n"));
            return crate::cli::EXIT_USAGE;
        }
        None => Source::new(&schedule.script, &schedule.text),
    };
    if hash(&source.text) != schedule.script_hash {
        say(&format!("concsh: note: {} has changed since this schedule was recorded\n", schedule.script));
    }
    let Some(table) = Table::map() else {
        say("concsh: --replay: the kernel refused the scheduler's shared memory\n");
        return EXIT_ERROR;
    };
    let (program, source) = match compile(&source) {
        Ok(compiled) => compiled,
        Err(code) => return code,
    };
    let plan = Plan { strategy, replay: Some(schedule.choices) };
    let script = Script { program: &program, source: &source, args: schedule.args, options };
    run_controlled(table, &script, schedule.seed, plan, limit)
}
