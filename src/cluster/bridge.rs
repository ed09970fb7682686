//! The script's side of a cluster pool: a local pool whose workers are
//! two threads. The sender takes each task from the pool's task queue and
//! sends it to the cluster; the receiver brings the run's results into the
//! pool's result queue, where the collector hands them out as for local
//! workers (a task's second result finds no one waiting: the first one
//! counts). When the pool ends, the run's tasks not yet run are dropped
//! and its keys go.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::thread::JoinHandle;
use std::time::Duration;

use super::backend::Backend;
use super::program;
use super::redis::Redis;
use crate::runtime::error::{ErrorValue, Kind};
use crate::runtime::pool::Pool;
use crate::runtime::value::Value;
use crate::runtime::wire;
use crate::sync::board::{self, Op, What};
use crate::sync::gate::start_helper;
use crate::sync::wait::Wait;
use crate::tasks::process::Process;

/// The default cluster of the run's process pools (`--cluster`,
/// `CONCSH_CLUSTER`), and whether a remote one without a password is
/// allowed (`--insecure`).
static DEFAULT: std::sync::OnceLock<(String, bool)> = std::sync::OnceLock::new();

pub fn set_default(url: String, insecure: bool) {
    let _ = DEFAULT.set((url, insecure));
}

pub fn default_cluster() -> Option<String> {
    DEFAULT.get().map(|(url, _)| url.clone())
}

/// Whether `--insecure` was given.
pub fn allows_insecure() -> bool {
    DEFAULT.get().is_some_and(|(_, insecure)| *insecure)
}

/// How long the receiver waits for results before it looks whether the
/// pool ended (a result wakes it at once): short, since a pool's end
/// waits for it.
const POLL: Duration = Duration::from_millis(10);

/// Connects `pool` to the cluster at `url`: its two threads, started.
pub fn start(proc: &Arc<Process>, pool: &Arc<Pool>, url: &str) -> Result<Vec<JoinHandle<()>>, String> {
    super::check_url(url, allows_insecure())?;
    let shipped = program::current().ok_or("a cluster pool runs a script's functions: not available at the prompt")?;
    let mut sender = Redis::connect(url)?;
    let receiver = Redis::connect(url)?;
    sender.store_program(&shipped.hash, &shipped.blob)?;
    let run = format!("{:016x}{:08x}", fastrand::u64(..), std::process::id());
    // The workers see the script's globals as they are now, as a local
    // pool's forked workers do.
    sender.store_globals(&run, &proc.globals_snapshot())?;
    let mut threads = Vec::new();
    let (for_sender, hash, run_id) = (pool.clone(), shipped.hash.clone(), run.clone());
    let spawned = start_helper(std::thread::Builder::new().name("concsh-cluster-send".into()), move || {
        send(sender, &for_sender, &run_id, &hash)
    });
    threads.push(spawned.map_err(|e| format!("cannot start a cluster thread: {e}"))?);
    let (for_receiver, proc, url) = (pool.clone(), proc.clone(), url.to_string());
    let spawned = start_helper(std::thread::Builder::new().name("concsh-cluster-receive".into()), move || {
        receive(receiver, &url, &proc, &for_receiver, &run)
    });
    threads.push(spawned.map_err(|e| format!("cannot start a cluster thread: {e}"))?);
    Ok(threads)
}

/// Every task of the pool, to the cluster, until the pool closes.
fn send(mut backend: Redis, pool: &Pool, run: &str, program: &str) {
    while let Ok(task) = pool.tasks.get(Wait::new(&pool.stop, None)) {
        let task = crate::observe::race::unstamp(&task);
        if let Some(message) = wire::cannot_leave(task, "to a cluster worker") {
            refuse(pool, task, &message);
            continue;
        }
        if let Err(message) = backend.send_task(run, program, task) {
            fail_pending(pool, &message);
        }
    }
}

/// Fails one task at once, here: its result is an error.
fn refuse(pool: &Pool, task: &[u8], message: &str) {
    let Some((id, first)) = wire::first_and_last_ints(task) else { return };
    let error = Value::Error(Arc::new(*crate::runtime::error::type_error(message)));
    let reply = Value::list(vec![Value::Int(id), Value::Int(first), Value::list(Vec::new()), error]);
    if let Ok(reply) = wire::encode(&reply) {
        let _ = pool.results.put(&reply, Wait::new(&pool.stop, None));
    }
}

/// The run's results, into the pool, until it ends; then the run's
/// leftovers go.
fn receive(mut backend: Redis, url: &str, proc: &Process, pool: &Pool, run: &str) {
    // On the task board: while results are awaited, work on the cluster
    // is progress; with none awaited, the thread is idle (a script stuck
    // on its own is still a deadlock).
    let _listed = board::list_me(proc.next_task_id(), board::Owner::Helper, "cluster results");
    static NO_WAKE: AtomicU32 = AtomicU32::new(0);
    let idle = What { op: Op::HelperIdle, target: 0, span: (0, 0) };
    let mut marked_idle = false;
    let mut after = "0-0".to_string();
    while !pool.stop.is_cancelled() {
        let nothing_awaited = pool.pending.lock().is_empty();
        match (nothing_awaited, marked_idle) {
            (true, false) => board::asleep(&NO_WAKE, 0, false, idle),
            (false, true) => board::awake(),
            _ => {}
        }
        marked_idle = nothing_awaited;
        match backend.results(run, &mut after, POLL) {
            Ok(results) => {
                for result in results {
                    if pool.results.put(&result, Wait::new(&pool.stop, None)).is_err() {
                        break;
                    }
                }
            }
            Err(message) => {
                fail_pending(pool, &message);
                // Tried again shortly, on a new connection: the server
                // may come back for the pool's later tasks.
                std::thread::sleep(POLL);
                if let Ok(again) = Redis::connect(url) {
                    backend = again;
                }
            }
        }
    }
    if marked_idle {
        board::awake();
    }
    let _ = backend.cancel_run(run);
    let _ = backend.end_run(run);
}

/// Every result still awaited fails: the cluster cannot be reached.
fn fail_pending(pool: &Pool, message: &str) {
    pool.fail_pending(Arc::new(*ErrorValue::new(Kind::Io, message)));
}
