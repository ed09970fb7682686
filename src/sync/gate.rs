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

use super::futex;

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
