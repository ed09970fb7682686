//! Processes: `spawn` forks the interpreter. The child sees a copy of the
//! whole program state at that moment; handles (queues, locks, ...) live
//! in the shared region and stay the same objects.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked ends, so a child
//! forked by a short-lived script thread would die with it: script threads
//! ask a long-lived forker thread to fork for them; the process's first
//! thread, which lives as long as the process, forks itself. Either forks
//! only at a safepoint (`sync::gate`): every task of the process is paused
//! between statements or asleep in a wait, so no interpreter lock is held.
//! In the child, the forking thread (the only one there) runs the spawned
//! task, then leaves with `_exit`, never running the parent's exit
//! handlers. It dies with its parent.
//!
//! The child leaves its outcome (return value or error, serialised) in a
//! slot in the shared region; the parent waits on a pidfd, reaps the
//! child with `waitpid`, and reads the slot.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, Pid};

use super::process::Process;
use super::task::finish_tasks;
use crate::eval::call::ArgValues;
use crate::eval::{Ctrl, Interp, R, fault_at};
use crate::observe::race;
use crate::report::Report;
use crate::runtime::child::Child;
use crate::runtime::error::{ErrorValue, Kind};
use crate::runtime::pool::Pool;
use crate::runtime::task::{Outcome, Task, TaskKind, named};
use crate::runtime::{Value, output, wire};
use crate::sync::board::{self, Op};
use crate::sync::cell::SharedCells;
use crate::sync::shm::Off;
use crate::sync::{history, holdings};
use crate::syntax::Span;

/// The forker of a process: its request channel and thread.
pub struct Forker {
    requests: Sender<ForkRequest>,
    _thread: JoinHandle<()>,
}

/// What a new process runs.
pub(crate) enum Job {
    /// `spawn f(args)`.
    Call(Value, ArgValues),
    /// Worker `index` of a process pool.
    Worker(Arc<Pool>, usize),
}

struct ForkRequest {
    task: Arc<Task>,
    job: Job,
    span: Span,
    slot: SharedCells,
    /// What the race detector hands the child (`--race`).
    race: Option<race::Start>,
    /// The child's ticket in a controlled run (`--explore`).
    schedule: Option<crate::observe::explore::Ticket>,
    /// Where the forker thread answers (none when a task forks itself).
    reply: Option<Sender<nix::Result<Forked>>>,
}

/// Outcome tags in a child's slot.
const RETURNED: i64 = 0;
const FAILED: i64 = 1;

impl<'p> Interp<'p> {
    /// `spawn [daemon] target [as name]`, once the target is evaluated.
    pub(crate) fn start_process(
        &mut self,
        callee: Value,
        args: ArgValues,
        daemon: bool,
        name: String,
        span: Span,
    ) -> R<Value> {
        self.reserve_task(span)?;
        let proc = self.proc;
        let direct = Arc::ptr_eq(&self.task, &proc.main_task());
        // The forker waits for every task to be at a safepoint: this one
        // steps out of the gate meanwhile.
        proc.gate.leave();
        let forked = fork_task(proc, Job::Call(callee, args), name, daemon, span, direct);
        proc.gate.enter();
        match forked {
            Ok(task) => {
                // The new process may run first.
                self.point(span);
                Ok(Value::Task(task))
            }
            Err(message) => {
                proc.live().fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                Err(fault_at(ErrorValue::new(Kind::Resource, message), span))
            }
        }
    }

    /// `join p` for a process: waits for it to exit (cancellable, with a
    /// timeout), reaps it, and gives what it returned.
    pub(crate) fn join_process(
        &mut self,
        task: &Arc<Task>,
        timeout: Option<Duration>,
        span: Span,
    ) -> R<Option<Outcome>> {
        let Some(child) = task.child.get() else { return Ok(Some(task.outcome())) };
        // A controlled run waits however far the real exit has come: the
        // join is a scheduling point in every schedule alike.
        if task.is_alive() || crate::observe::explore::on() {
            let wait = self.wait_in(timeout, Op::JoinProcess, task.pid() as u64, span);
            let exited = child.wait_exit(wait).map_err(|_| Ctrl::Cancelled)?;
            if !exited {
                return Ok(None);
            }
            settle(self.proc, task);
        }
        Ok(Some(task.outcome()))
    }
}

/// Forks a process for `job` and registers its task. The process's first
/// thread forks itself (`direct`); any other asks the forker thread. The
/// caller holds no pass through the gate and has counted the task.
pub(crate) fn fork_task(
    proc: &Arc<Process>,
    job: Job,
    name: String,
    daemon: bool,
    span: Span,
    direct: bool,
) -> Result<Arc<Task>, String> {
    // Before anything is made: a full table leaves nothing to undo.
    let schedule = crate::observe::explore::register(&name, 0)?;
    let Ok(slot) = SharedCells::new(&[wire::encode(&Value::Nil).unwrap_or_default()]) else {
        crate::observe::explore::abandon(schedule);
        return Err("the shared memory region is full".to_string());
    };
    let task = Arc::new(Task::new(proc.next_task_id(), name, TaskKind::Process, daemon));
    let race = race::start(span);
    if let Some(start) = &race {
        task.race_id.store(start.id(), std::sync::atomic::Ordering::Relaxed);
    }
    task.schedule.store(schedule.map_or(0, crate::observe::explore::Ticket::to_bits), Ordering::SeqCst);
    let request = ForkRequest { task: task.clone(), job, span, slot, race, schedule, reply: None };
    let forked = if direct {
        Some(fork_at_safepoint(proc, request))
    } else {
        match forker(proc) {
            Ok(requests) => {
                let (reply, answer) = crossbeam_channel::bounded(1);
                let request = ForkRequest { reply: Some(reply), ..request };
                if requests.send(request).is_ok() { answer.recv().ok() } else { None }
            }
            Err(_) => None,
        }
    };
    let Forked { pid, holdings } = match forked {
        Some(Ok(forked)) => forked,
        failed => {
            crate::observe::explore::abandon(schedule);
            return Err(match failed {
                Some(Err(e)) => format!("cannot fork: {}", e.desc()),
                _ => "the forker thread is gone".into(),
            });
        }
    };
    crate::observe::explore::set_pid(schedule, pid.as_raw());
    task.set_pid(pid.as_raw());
    match Child::new(pid, slot, holdings, schedule) {
        Ok(child) => {
            let _ = task.child.set(child);
        }
        Err(e) => {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
            holdings::release_all(holdings);
            return Err(format!("cannot watch the new process: {e}"));
        }
    }
    proc.tasks.lock().push(task.clone());
    // A child that died before it was registered had its SIGCHLD passed over.
    super::task::refresh(proc, &task);
    Ok(task)
}

/// The forker's request channel, starting the forker on first use.
fn forker(proc: &Arc<Process>) -> std::io::Result<Sender<ForkRequest>> {
    let mut forker = proc.forker.lock();
    if let Some(f) = &*forker {
        return Ok(f.requests.clone());
    }
    let (requests, incoming) = crossbeam_channel::unbounded();
    let proc_for_forker = proc.clone();
    // In a child it runs the spawned task.
    let builder =
        std::thread::Builder::new().name("concsh-forker".into()).stack_size(crate::runtime::stack::thread_size());
    let thread = crate::sync::gate::start_helper(builder, move || serve_forks(proc_for_forker, incoming))?;
    *forker = Some(Forker { requests: requests.clone(), _thread: thread });
    Ok(requests)
}

/// The forker's loop: one fork per request, each at a safepoint.
fn serve_forks(proc: Arc<Process>, incoming: Receiver<ForkRequest>) {
    for mut request in incoming {
        let reply = request.reply.take();
        let pid = fork_at_safepoint(&proc, request);
        if let Some(reply) = reply {
            let _ = reply.send(pid);
        }
    }
}

/// A new child, as its parent knows it.
struct Forked {
    pid: Pid,
    /// The child's table of the references it holds (see `sync::holdings`).
    holdings: Off,
}

/// Forks once every task of the process is at a safepoint; returns the
/// child in the parent, and never returns in the child. The calling
/// thread holds no pass through the gate.
fn fork_at_safepoint(proc: &Arc<Process>, request: ForkRequest) -> nix::Result<Forked> {
    // One fork at a time: a second would find the gate reopened by the first.
    let one_at_a_time = proc.fork_lock.lock();
    let parent = nix::unistd::getpid();
    // A signal sent to the child before it can handle one (say, a
    // `terminate` right after `spawn`, or a task dump's SIGQUIT) must
    // wait, not be lost (or run the parent's handler, which would pass it
    // to the parent's listener): the child is born with these blocked and
    // unblocks them once it answers them itself.
    let mut before = SigSet::empty();
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&crate::signals::answered_set()), Some(&mut before));
    proc.gate.close();
    let paused = proc.all_tasks();
    for task in &paused {
        task.cancel.pause();
    }
    proc.gate.wait_until_empty();
    // No helper thread is starting either (see `gate::start_helper`).
    let no_starts = crate::sync::gate::no_starts();
    // No task runs now, so none holds the registry (or any other
    // interpreter lock); the child gets this guard and its contents.
    let registry = proc.tasks.lock();
    // The child holds everything this process holds.
    let Ok(heir) = holdings::for_child() else {
        drop(registry);
        drop(no_starts);
        resume_after_fork(proc, &paused, before);
        return Err(nix::errno::Errno::ENOMEM);
    };
    // The child is on the board from the moment it exists.
    let listing = board::claim(request.task.id, parent.as_raw(), board::Owner::Process, &request.task.name);
    // SAFETY: every other thread of this process is parked at a safepoint
    // holding no interpreter lock (see `sync::gate`); the child runs only
    // this thread, which owns everything it touches.
    let forked = unsafe { nix::unistd::fork() };
    let forked = match forked {
        Ok(ForkResult::Child) => {
            heir.adopt();
            child_main(proc, request, parent, registry, before, (one_at_a_time, no_starts), listing)
        }
        Ok(ForkResult::Parent { child }) => {
            if let Some(listing) = listing {
                listing.hand_to(child.as_raw());
            }
            Ok(Forked { pid: child, holdings: heir.born() })
        }
        Err(e) => {
            heir.unborn();
            Err(e)
        }
    };
    drop(registry);
    drop(no_starts);
    resume_after_fork(proc, &paused, before);
    forked
}

/// Lets the tasks paused for a fork run again, with this thread's signal mask back.
fn resume_after_fork(proc: &Process, paused: &[Arc<Task>], mask: SigSet) {
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&mask), None);
    // Every task, those started while the fork was pending included.
    for task in paused.iter().chain(proc.all_tasks().iter()) {
        task.cancel.resume();
    }
    proc.gate.open();
}

/// The life of a child process, on the forker's thread: never returns.
fn child_main(
    proc: &Arc<Process>,
    request: ForkRequest,
    parent: Pid,
    mut registry: parking_lot::MutexGuard<'_, Vec<Arc<Task>>>,
    signal_mask: SigSet,
    fork_locks: (parking_lot::MutexGuard<'_, ()>, crate::sync::gate::NoStarts),
    listing: Option<board::Claim>,
) -> ! {
    // Held by this thread through the fork: free them for this process's
    // own forks and helper threads.
    drop(fork_locks);
    // Die with the parent (whose forker thread lives as long as it does).
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        leave_now(1);
    }
    // The parent's other threads do not exist here: forget their handles
    // without touching them, and start this process's registry afresh.
    std::mem::forget(std::mem::take(&mut *registry));
    drop(registry);
    std::mem::forget(proc.forker.lock().take());
    proc.gate.reset();
    crate::runtime::progress::forget_in_child();
    output::forget_in_child();
    history::forget_in_child();
    crate::sync::wait::forget_in_child();
    crate::sync::mutex::forget_in_child();
    crate::runtime::blocks::forget_in_child();
    fastrand::seed(u64::from(nix::unistd::getpid().as_raw().unsigned_abs()) ^ fastrand::u64(..));
    let pid = nix::unistd::getpid();
    let task = Arc::new(Task::new(
        (pid.as_raw() as u64) << 32,
        request.task.name.clone(),
        TaskKind::Process,
        request.task.daemon,
    ));
    proc.become_child(task.clone());
    // The slot this thread had (if it forked itself) is the parent's.
    board::forget_mine();
    let _listed = listing.map(|claim| claim.adopt(task.id, pid.as_raw()));
    history::record(history::Event::TaskBegins { name: task.name.clone(), process: true });
    crate::signals::defer_for_child(proc.clone(), &task.cancel);
    // A controlled run's scheduler blocks in ways of its own: listen now.
    if request.schedule.is_some() {
        crate::signals::listen_now();
    }
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&signal_mask), None);

    proc.gate.enter();
    let tables = proc.tables();
    race::begin(request.race, &format!("process {}", task.name));
    crate::observe::explore::begin(request.schedule, Some(&proc.gate));
    let mut interp = Interp::for_task(proc, &tables, task.clone());
    let result = match request.job {
        Job::Call(callee, args) => interp.call_value(&callee, args, request.span),
        Job::Worker(pool, index) => {
            proc.pool_worker.store(true, std::sync::atomic::Ordering::Relaxed);
            interp.work_for_pool(&pool, index).map(|_| Value::Nil)
        }
    };
    drop(interp);
    let (record, mut code) = match result {
        Ok(value) => (Value::list(vec![Value::Int(RETURNED), value]), 0),
        Err(Ctrl::Error(mut error)) => {
            error.task = Some(named(&format!("process {}", task.name), pid.as_raw()));
            output::report(&Report::runtime(&proc.source.read(), &error).render());
            (Value::list(vec![Value::Int(FAILED), Value::Error(Arc::new(*error))]), 1)
        }
        Err(Ctrl::Exit(code)) => {
            proc.request_exit(code);
            (Value::Nil, code)
        }
        Err(_) => (Value::Nil, crate::cli::EXIT_INTERRUPTED),
    };
    proc.gate.leave();
    finish_tasks(proc, proc.ending());
    if let Some(exit) = *proc.exit_request.lock() {
        code = exit;
    }
    // What cannot travel back (a thread handle, say) fails the task instead.
    let bytes = wire::encode(&record).unwrap_or_else(|e| {
        let failure = Value::list(vec![Value::Int(FAILED), Value::Error(Arc::new(*e))]);
        code = 1;
        wire::encode(&failure).unwrap_or_default()
    });
    history::record(history::Event::TaskEnds);
    crate::observe::trace::write_part(proc);
    race::end();
    let _ = request.slot.store(0, &bytes);
    board::release_process(pid.as_raw());
    // Its last step: whoever joins it may go on.
    crate::observe::explore::end();
    let terminated = crate::signals::end_child();
    if terminated {
        // Ended by `terminate`: leave as if by SIGTERM, so the parent sees -15.
        // SAFETY: restoring the default action of a signal is async-signal-safe
        // and affects only this process, which is about to end.
        unsafe {
            let _ = nix::sys::signal::signal(Signal::SIGTERM, nix::sys::signal::SigHandler::SigDfl);
        }
        let _ = nix::sys::signal::raise(Signal::SIGTERM);
    }
    leave_now(code)
}

/// Ends a child at once: no destructor or exit handler of the parent's
/// runs again here (its output is unbuffered, so nothing is lost).
fn leave_now(code: i32) -> ! {
    // SAFETY: `_exit` ends the process immediately and touches no memory.
    unsafe { libc::_exit(code) }
}

/// Reaps a process that has exited and records its outcome (once).
pub(crate) fn settle(proc: &Process, task: &Task) {
    let Some(child) = task.child.get() else { return };
    child.reap_once(&task.name, |status| {
        let outcome = match status {
            WaitStatus::Signaled(_, signal, _) => Outcome::Signalled(signal as i32),
            WaitStatus::Exited(_, code) => {
                let record = child.slot.load(0).ok().and_then(|b| wire::decode(&b, &proc.functions.read()).ok());
                let parts = match &record {
                    Some(Value::List(parts)) => parts.lock().to_vec(),
                    _ => Vec::new(),
                };
                match (parts.first(), parts.get(1)) {
                    (Some(Value::Int(RETURNED)), Some(value)) if code == 0 => Outcome::Returned(value.clone()),
                    (Some(Value::Int(FAILED)), Some(Value::Error(e))) => Outcome::Failed(e.clone()),
                    _ => Outcome::Exited(code),
                }
            }
            _ => Outcome::Exited(1),
        };
        // What it held is given back, however it ended.
        holdings::release_all(child.holdings);
        proc.live().fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        // However it ended, nothing of it is left running.
        board::release_process(child.pid.as_raw());
        task.finish(outcome);
    });
}

/// Ends the child processes still running at the end of a run: each gets
/// SIGTERM, then SIGKILL if it has not ended within `grace`.
pub(crate) fn end_processes(proc: &Process, tasks: &[Arc<Task>], grace: Duration) {
    let running: Vec<&Arc<Task>> = tasks.iter().filter(|t| t.child.get().is_some() && t.running()).collect();
    for task in &running {
        if let Some(child) = task.child.get() {
            child.signal(Signal::SIGTERM);
            // A stopped child (SIGSTOP, Ctrl-Z) could not act on SIGTERM.
            child.signal(Signal::SIGCONT);
        }
    }
    let patient = crate::sync::cancel::CancelToken::default();
    for task in running {
        if let Some(child) = task.child.get() {
            let wait = crate::sync::wait::Wait::new(&patient, Some(grace));
            if !child.wait_exit(wait).unwrap_or(false) {
                child.signal(Signal::SIGKILL);
            }
        }
        settle(proc, task);
    }
    // Those past their last step are on their way out: reaped as they go.
    for task in tasks.iter().filter(|t| t.child.get().is_some()) {
        settle(proc, task);
    }
}
