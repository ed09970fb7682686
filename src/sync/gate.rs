//! The fork gate: a process forks only at a safepoint, where no other
//! thread of it holds an interpreter lock (a list's, a global's, the task
//! registry's), so the child never inherits a lock held by a thread that
//! does not exist in it.
//!
//! Every thread that runs interpreter code holds a pass (`enter`) and gives
//! it back while it sleeps in a blocking wait or when it pauses between
//! statements (`leave`). The forker raises `pending`, asks every task to
//! pause (their cancel words), and waits until no pass is out; then it
//! forks, and opens the gate again. A thread that wants a pass while the
//! gate is closing waits for it to open.

use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

use super::futex;

/// Held while a helper thread starts and while a process forks. A thread
/// that is starting or ending holds a lock of the Rust runtime's own (the
/// stack guard's bookkeeping); a fork at that moment would leave it held
/// in the child, whose first new thread would then wait for it forever.
static STARTS: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Threads of this process that finished their work and are ending.
static ENDING: parking_lot::Mutex<Vec<i32>> = parking_lot::Mutex::new(Vec::new());

/// Starts a helper thread (one that runs no script code, so holds no pass
/// through the gate) and returns once it runs.
pub fn start_helper<T: Send + 'static>(
    builder: std::thread::Builder,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<JoinHandle<T>> {
    // A child's first thread: its signal listener comes first.
    crate::signals::listen_now();
    let _no_fork = STARTS.lock();
    let (running, started) = crossbeam_channel::bounded(1);
    let handle = builder.spawn(move || {
        let _ = running.send(());
        let result = f();
        ending();
        result
    })?;
    let _ = started.recv();
    Ok(handle)
}

/// The last call of every thread concsh starts: a fork waits until it is
/// gone.
pub fn ending() {
    let mut ending = ENDING.lock();
    // In a process that never forks, forget threads already gone.
    if ending.len() >= 64 {
        ending.retain(|&tid| alive(tid));
    }
    ending.push(nix::unistd::gettid().as_raw());
}

/// Whether thread `tid` of this process still exists.
fn alive(tid: i32) -> bool {
    std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
}

/// Held for the whole of a fork: no thread is starting or ending meanwhile
/// (threads that said they are ending have gone).
pub struct NoStarts {
    _starts: parking_lot::MutexGuard<'static, ()>,
    _ending: parking_lot::MutexGuard<'static, Vec<i32>>,
}

pub fn no_starts() -> NoStarts {
    let starts = STARTS.lock();
    loop {
        let mut ending = ENDING.lock();
        ending.retain(|&tid| alive(tid));
        if ending.is_empty() {
            return NoStarts { _starts: starts, _ending: ending };
        }
        drop(ending);
        std::thread::yield_now();
    }
}

#[derive(Default)]
pub struct Gate {
    running: AtomicU32,
    pending: AtomicU32,
}

impl Gate {
    /// Takes a pass, waiting while a fork is under way.
    pub fn enter(&self) {
        loop {
            while self.pending.load(Ordering::SeqCst) != 0 {
                futex::wait(&self.pending, 1, None);
            }
            self.running.fetch_add(1, Ordering::SeqCst);
            if self.pending.load(Ordering::SeqCst) == 0 {
                return;
            }
            // A fork began meanwhile: step back out and wait for it.
            self.leave();
        }
    }

    /// Takes a pass, given back when the guard is dropped (however the
    /// holder ends, a panic included).
    pub fn pass(&self) -> Pass<'_> {
        self.enter();
        Pass(self)
    }

    /// A pass for a new thread, handed over by one that holds a pass (so
    /// it must not wait: the fork may be waiting for that very pass).
    /// True when a fork is pending: the new thread should pause.
    pub fn hand_over(&self) -> bool {
        self.running.fetch_add(1, Ordering::SeqCst);
        self.pending.load(Ordering::SeqCst) != 0
    }

    /// Gives the pass back.
    pub fn leave(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
        if self.pending.load(Ordering::SeqCst) != 0 {
            futex::wake(&self.running, 1);
        }
    }

    /// Marks a fork as coming: no new pass is given out from now on.
    pub fn close(&self) {
        self.pending.store(1, Ordering::SeqCst);
    }

    /// Waits until every pass is back (after [`Gate::close`]).
    pub fn wait_until_empty(&self) {
        loop {
            let running = self.running.load(Ordering::SeqCst);
            if running == 0 {
                return;
            }
            futex::wait(&self.running, running, None);
        }
    }

    pub fn open(&self) {
        self.pending.store(0, Ordering::SeqCst);
        futex::wake(&self.pending, u32::MAX);
    }

    /// In a new child: one thread, holding no pass, nothing pending.
    pub fn reset(&self) {
        self.running.store(0, Ordering::SeqCst);
        self.pending.store(0, Ordering::SeqCst);
    }
}

/// A pass through the gate, given back on drop.
pub struct Pass<'a>(&'a Gate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}
