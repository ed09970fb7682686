//! A pool as a value: its workers, the two shared queues that connect
//! them (tasks in, results out), and where each pending result goes. The
//! logic that runs a pool lives in `eval::pool`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;

use super::future::{Batch, FutureCell};
use super::progress::Bar;
use super::task::Task;
use crate::sync::cancel::CancelToken;
use crate::sync::cell::SharedCells;
use crate::sync::queue::Queue;
use crate::sync::shm::{Off, region};

/// Where a task's result goes.
#[derive(Clone)]
pub enum Sink {
    Batch(Arc<Batch>),
    Future(Arc<FutureCell>),
}

pub struct Pool {
    pub size: usize,
    /// Worker threads instead of processes.
    pub threads: bool,
    /// What its maps' progress bar shows.
    pub bar: Bar,
    /// The process that made it: only it can use it.
    pub owner: i32,
    /// Tasks waiting for a worker (bounded, so inputs stream).
    pub tasks: Queue,
    /// Results on their way back.
    pub results: Queue,
    /// What each worker is working on (a task id, or nil): how the task of
    /// a worker that dies is found.
    pub slots: SharedCells,
    /// For each worker, how many items of its chunk it has finished (in
    /// the shared region; 0 if the region had no room): which item a
    /// worker that dies was running.
    progress: Off,
    pub workers: Mutex<Vec<Arc<Task>>>,
    pub pending: Mutex<HashMap<u64, Sink>>,
    next_id: AtomicU64,
    pub closed: AtomicBool,
    /// The collector and watcher threads.
    pub helpers: Mutex<Vec<JoinHandle<()>>>,
    /// Cancelled to stop the helper threads.
    pub stop: CancelToken,
    /// Its workers are a cluster's (see `cluster::bridge`): no local ones.
    pub on_cluster: AtomicBool,
}

impl Pool {
    pub fn new(size: usize, threads: bool, bar: Bar, tasks: Queue, results: Queue, slots: SharedCells) -> Pool {
        let progress = region().and_then(|r| r.alloc(size * 4)).unwrap_or(0);
        Pool {
            progress,
            size,
            threads,
            bar,
            owner: nix::unistd::getpid().as_raw(),
            tasks,
            results,
            slots,
            workers: Mutex::new(Vec::new()),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            helpers: Mutex::new(Vec::new()),
            stop: CancelToken::default(),
            on_cluster: AtomicBool::new(false),
        }
    }

    /// Every result still awaited fails with `error`.
    pub fn fail_pending(&self, error: Arc<crate::runtime::error::ErrorValue>) {
        let pending: Vec<Sink> = self.pending.lock().drain().map(|(_, sink)| sink).collect();
        for sink in pending {
            match sink {
                Sink::Batch(batch) => batch.deliver(vec![(0, Err(error.clone()))]),
                Sink::Future(future) => future.fill(Err(error.clone())),
            }
        }
    }

    /// A new task id, its result bound for `sink`.
    pub fn expect(&self, sink: Sink) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.pending.lock().insert(id, sink);
        id
    }

    /// Worker `index` runs item `done` of its chunk (counting from 0).
    pub fn set_progress(&self, index: usize, done: usize) {
        if let Some(counter) = self.counter(index) {
            counter.store(done as u32, Ordering::SeqCst);
        }
    }

    /// Which item of its chunk worker `index` runs (counting from 0).
    pub fn progress(&self, index: usize) -> usize {
        self.counter(index).map_or(0, |c| c.load(Ordering::SeqCst) as usize)
    }

    fn counter(&self, index: usize) -> Option<&'static AtomicU32> {
        let at = self.progress.checked_add(index as u64 * 4)?;
        (self.progress != 0 && index < self.size).then(|| region().map(|r| r.get::<AtomicU32>(at)))?
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}
