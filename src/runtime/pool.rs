//! A pool as a value: its workers, the two shared queues that connect
//! them (tasks in, results out), and where each pending result goes. The
//! logic that runs a pool lives in `eval::pool`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;

use super::future::{Batch, FutureCell};
use super::task::Task;
use crate::sync::cancel::CancelToken;
use crate::sync::cell::SharedCells;
use crate::sync::queue::Queue;

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
    /// The process that made it: only it can use it.
    pub owner: i32,
    /// Tasks waiting for a worker (bounded, so inputs stream).
    pub tasks: Queue,
    /// Results on their way back.
    pub results: Queue,
    /// What each worker is working on (a task id, or nil): how the task of
    /// a worker that dies is found.
    pub slots: SharedCells,
    pub workers: Mutex<Vec<Arc<Task>>>,
    pub pending: Mutex<HashMap<u64, Sink>>,
    next_id: AtomicU64,
    pub closed: AtomicBool,
    /// The collector and watcher threads.
    pub helpers: Mutex<Vec<JoinHandle<()>>>,
    /// Cancelled to stop the helper threads.
    pub stop: CancelToken,
}

impl Pool {
    pub fn new(size: usize, threads: bool, tasks: Queue, results: Queue, slots: SharedCells) -> Pool {
        Pool {
            size,
            threads,
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
        }
    }

    /// A new task id, its result bound for `sink`.
    pub fn expect(&self, sink: Sink) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.pending.lock().insert(id, sink);
        id
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}
