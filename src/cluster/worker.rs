//! `concsh worker redis://HOST:PORT [--jobs K] [--name W]`: a long-running
//! worker of a cluster.
//!
//! The worker forks K executors and watches them: one that dies is
//! started again; Ctrl-C or SIGTERM asks each to finish its task and leave
//! (a second one ends them at once). An executor takes one task at a time:
//! the script's program, fetched and resolved once (see `program.rs`), its
//! task run as a local pool worker runs one, the result sent, the task
//! finished. While a task runs, a heartbeat thread keeps it claimed; an
//! executor that dies leaves its task to another once the heartbeat lapses.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use super::backend::{Backend, Delivery};
use super::redis::Redis;
use super::{MAX_ATTEMPTS, check_url, program};
use crate::eval::{Ctrl, Interp, Process, Tables};
use crate::report::Source;
use crate::resolve::ir::Program;
use crate::runtime::error::{ErrorValue, Kind};
use crate::runtime::output;
use crate::runtime::task::{Task, TaskKind};
use crate::runtime::value::Value;
use crate::runtime::wire;

/// Set in an executor: the process runs a cluster's tasks.
static ON_WORKER: AtomicBool = AtomicBool::new(false);

/// Whether this process is a cluster worker's executor.
pub fn on_worker() -> bool {
    ON_WORKER.load(Ordering::Relaxed)
}

/// `concsh worker`'s options.
pub struct Options {
    pub url: String,
    pub jobs: usize,
    pub name: String,
    pub insecure: bool,
}

/// Runs a worker until Ctrl-C or SIGTERM: the exit status.
pub fn run(options: &Options) -> i32 {
    if let Err(message) = check_url(&options.url, options.insecure) {
        output::report(&format!("concsh worker: {message}\n(--insecure runs it all the same)\n"));
        return 2;
    }
    // Found unreachable now rather than by every executor.
    if let Err(message) = Redis::connect(&options.url) {
        output::report(&format!("concsh worker: {message}\n"));
        return 1;
    }
    // Signals are taken by `sigwait` below, in this thread only.
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGCHLD] {
        signals.add(signal);
    }
    if signals.thread_block().is_err() {
        output::report("concsh worker: cannot block signals\n");
        return 1;
    }
    output::report(&format!("concsh worker {}: {} executors on {}\n", options.name, options.jobs, options.url));
    let mut executors: HashMap<Pid, usize> = HashMap::new();
    for k in 0..options.jobs {
        if let Some(pid) = start_executor(options, k, &signals) {
            executors.insert(pid, k);
        }
    }
    let mut stopping = 0;
    while !executors.is_empty() {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => {
                while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    let Some(pid) = status.pid() else { break };
                    let Some(k) = executors.remove(&pid) else { continue };
                    if stopping == 0 {
                        if let WaitStatus::Signaled(_, signal, _) = status {
                            output::report(&format!(
                                "concsh worker: executor {k} was killed by {signal}; starting another\n"
                            ));
                        }
                        if let Some(pid) = start_executor(options, k, &signals) {
                            executors.insert(pid, k);
                        }
                    }
                }
            }
            Ok(_) => {
                stopping += 1;
                // The first asks for a clean end, the second forces it.
                let signal = if stopping == 1 { Signal::SIGTERM } else { Signal::SIGKILL };
                for pid in executors.keys() {
                    let _ = kill(*pid, signal);
                }
            }
            Err(_) => {}
        }
    }
    0
}

fn start_executor(options: &Options, k: usize, signals: &SigSet) -> Option<Pid> {
    // SAFETY: the worker's process has one thread here (it starts none),
    // so the child may run anything.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { child }) => Some(child),
        Ok(ForkResult::Child) => {
            // Ended with the worker, however it ends.
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            let _ = signals.thread_unblock();
            // Ctrl-C in the terminal reaches the whole group: the worker
            // decides for its executors.
            // SAFETY: ignoring a signal installs no handler code.
            let _ = unsafe { nix::sys::signal::signal(Signal::SIGINT, nix::sys::signal::SigHandler::SigIgn) };
            let stop = Arc::new(AtomicBool::new(false));
            let _ = signal_hook::flag::register(libc::SIGTERM, stop.clone());
            ON_WORKER.store(true, Ordering::Relaxed);
            let code = execute(options, &format!("{}-{k}", options.name), &stop);
            std::process::exit(code)
        }
        Err(e) => {
            output::report(&format!("concsh worker: cannot start an executor: {e}\n"));
            None
        }
    }
}

/// A run ready for its tasks: the program's process, with the script's
/// globals as they were when the run's pool was made.
struct Loaded {
    process: Arc<Process>,
    tables: Tables,
}

/// Programs (by hash) and runs an executor keeps ready; a few runs only,
/// since each holds a copy of its script's globals.
#[derive(Default)]
struct Ready {
    programs: HashMap<String, Result<Arc<(Program, Source)>, String>>,
    runs: Vec<(String, Result<Loaded, String>)>,
}

const RUNS_KEPT: usize = 4;
const PROGRAMS_KEPT: usize = 16;

impl Ready {
    /// The run `delivery` belongs to, loaded if it is new.
    fn run(&mut self, backend: &mut Redis, delivery: &Delivery, me: &str) -> Result<&Result<Loaded, String>, String> {
        if let Some(k) = self.runs.iter().position(|(run, _)| *run == delivery.run) {
            return Ok(&self.runs[k].1);
        }
        if !self.programs.contains_key(&delivery.program) {
            // A worker serving many scripts keeps a few programs only.
            if self.programs.len() >= PROGRAMS_KEPT {
                self.programs.clear();
            }
            let program = match backend.program(&delivery.program)? {
                Some(blob) => program::load(&blob).map(Arc::new),
                None => Err("the script's program is no longer on the cluster".to_string()),
            };
            self.programs.insert(delivery.program.clone(), program);
        }
        let loaded = match &self.programs[&delivery.program] {
            Ok(program) => {
                let (program, source) = &**program;
                let process = Process::new(program, source.clone(), Vec::new(), crate::eval::DEFAULT_MAX_TASKS);
                // Its errors name the worker, as a local pool's name theirs.
                let pid = nix::unistd::getpid().as_raw();
                let task = Task::new((pid as u64) << 32, format!("worker {me}"), TaskKind::Process, false);
                *process.main_task.write() = Arc::new(task);
                process.pool_worker.store(true, Ordering::Relaxed);
                match backend.globals(&delivery.run)? {
                    Some(snapshot) => process.take_globals(&snapshot).map_err(|e| e.message.clone()),
                    None => Ok(()),
                }
                .map(|_| Loaded { tables: process.tables(), process })
            }
            Err(message) => Err(message.clone()),
        };
        if self.runs.len() >= RUNS_KEPT {
            drop(self.runs.remove(0));
        }
        self.runs.push((delivery.run.clone(), loaded));
        Ok(&self.runs[self.runs.len() - 1].1)
    }
}

/// An executor's life: tasks, one at a time, until asked to stop.
fn execute(options: &Options, me: &str, stop: &AtomicBool) -> i32 {
    let mut backend = match Redis::connect(&options.url) {
        Ok(backend) => backend,
        Err(message) => {
            output::report(&format!("concsh worker: {message}\n"));
            return 1;
        }
    };
    let current: Arc<Mutex<Option<String>>> = Arc::default();
    start_heartbeat(&options.url, me, current.clone());
    let mut ready = Ready::default();
    while !stop.load(Ordering::SeqCst) {
        let delivery = match backend.take_task(me, Duration::from_secs(1)) {
            Ok(Some(delivery)) => delivery,
            Ok(None) => continue,
            Err(message) => {
                output::report(&format!("concsh worker: {message}\n"));
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if let Ok(mut held) = current.lock() {
            *held = Some(delivery.id.clone());
        }
        let outcome = run_delivery(me, &mut backend, &mut ready, &delivery);
        if let Ok(mut held) = current.lock() {
            *held = None;
        }
        match outcome.and_then(|ends| backend.finish_task(&delivery.id).map(|_| ends)) {
            // The task called `exit`: this executor ends, as a local
            // worker would (the worker starts another).
            Ok(Some(code)) => return code,
            Ok(None) => {}
            Err(message) => output::report(&format!("concsh worker: {message}\n")),
        }
    }
    0
}

/// Keeps the task this executor runs claimed, on a connection of its own.
fn start_heartbeat(url: &str, me: &str, current: Arc<Mutex<Option<String>>>) {
    let (url, me) = (url.to_string(), me.to_string());
    let beat = super::lapse() / 3;
    let _ = std::thread::Builder::new().name("concsh-heartbeat".into()).spawn(move || {
        let Ok(mut backend) = Redis::connect(&url) else { return };
        loop {
            std::thread::sleep(beat);
            let held = current.lock().ok().and_then(|held| held.clone());
            if let Some(id) = held {
                let _ = backend.still_working(&me, &id);
            }
        }
    });
}

/// Runs one task and sends its result (or drops it: its run was
/// cancelled); `Some(code)` when the task called `exit(code)`.
fn run_delivery(me: &str, backend: &mut Redis, ready: &mut Ready, delivery: &Delivery) -> Result<Option<i32>, String> {
    if backend.is_cancelled(&delivery.run)? {
        return Ok(None);
    }
    let mut exit = None;
    let reply = match ready.run(backend, delivery, me)? {
        _ if delivery.attempts > MAX_ATTEMPTS => gave_up(&delivery.task, delivery.attempts - 1),
        Ok(loaded) => {
            // Running script code: inside the process's fork gate, as a
            // local task runs (a `spawn` in the task leaves it to fork).
            loaded.process.gate.enter();
            let mut interp = Interp::new(&loaded.process, &loaded.tables);
            let ran = interp.run_pool_task(&delivery.task, &mut |_, _| {}, &mut |_| {});
            drop(interp);
            loaded.process.gate.leave();
            match ran {
                Ok(Some(reply)) => Some(reply),
                Ok(None) => refused(&delivery.task, "the task does not read on this worker"),
                Err(Ctrl::Exit(code)) => {
                    exit = Some(code);
                    let message = format!("its worker, {me}, exited with code {code} while running this task");
                    reply_failing(&delivery.task, &ErrorValue::new(Kind::TaskFailed, message))
                }
                Err(_) => refused(&delivery.task, "the task was cancelled on its worker"),
            }
        }
        Err(message) => refused(&delivery.task, message),
    };
    // A run that ended meanwhile wants no more results.
    if let Some(reply) = reply.filter(|_| !backend.is_cancelled(&delivery.run).unwrap_or(false)) {
        backend.send_result(&delivery.run, &reply)?;
    }
    Ok(exit)
}

/// The reply of a task whose workers died `times` times running it.
fn gave_up(task: &[u8], times: u64) -> Option<Vec<u8>> {
    let message = format!("its worker died {times} times running it (on the cluster); it is not tried again");
    reply_failing(task, &ErrorValue::new(Kind::TaskFailed, message))
}

/// The reply of a task this worker cannot run at all.
fn refused(task: &[u8], message: &str) -> Option<Vec<u8>> {
    reply_failing(task, &ErrorValue::new(Kind::TaskFailed, message))
}

/// A reply failing the task's first item with `error`.
fn reply_failing(task: &[u8], error: &ErrorValue) -> Option<Vec<u8>> {
    let (id, first) = wire::first_and_last_ints(task)?;
    let reply = Value::list(vec![
        Value::Int(id),
        Value::Int(first),
        Value::list(Vec::new()),
        Value::Error(Arc::new(error.clone())),
    ]);
    wire::encode(&reply).ok()
}
