//! What a cluster engine must do for concsh: keep programs, carry tasks
//! to workers with at-least-once delivery, carry results back, and say
//! when a run was cancelled. Redis (`redis.rs`) implements it; another
//! engine (NATS JetStream, say) would implement the same.

use std::time::Duration;

/// A task as a worker receives it.
pub struct Delivery {
    /// The engine's id for it, to finish it or keep it alive.
    pub id: String,
    pub run: String,
    /// The program's hash (see `program.rs`).
    pub program: String,
    /// The pool task's bytes (`tasks::pool`'s task format).
    pub task: Vec<u8>,
    /// How often it was delivered, this time included.
    pub attempts: u64,
}

pub type Result<T> = std::result::Result<T, String>;

pub trait Backend: Send {
    /// Keeps a program's bytes under its hash (for a day, or as long as
    /// runs use it).
    fn store_program(&mut self, hash: &str, blob: &[u8]) -> Result<()>;

    fn program(&mut self, hash: &str) -> Result<Option<Vec<u8>>>;

    /// Keeps what a run's workers are given of the script's globals.
    fn store_globals(&mut self, run: &str, snapshot: &[u8]) -> Result<()>;

    fn globals(&mut self, run: &str) -> Result<Option<Vec<u8>>>;

    /// Queues a task of `run` for any worker.
    fn send_task(&mut self, run: &str, program: &str, task: &[u8]) -> Result<()>;

    /// The next task for `worker`: first one whose worker's heartbeat
    /// lapsed, else a new one, waiting up to `block`.
    fn take_task(&mut self, worker: &str, block: Duration) -> Result<Option<Delivery>>;

    /// The heartbeat of a task `worker` is running.
    fn still_working(&mut self, worker: &str, id: &str) -> Result<()>;

    /// A task done (its result sent), or dropped: no one runs it again.
    fn finish_task(&mut self, id: &str) -> Result<()>;

    fn send_result(&mut self, run: &str, result: &[u8]) -> Result<()>;

    /// Results of `run` after `after` (updated), waiting up to `block`.
    fn results(&mut self, run: &str, after: &mut String, block: Duration) -> Result<Vec<Vec<u8>>>;

    /// The script was interrupted: its tasks not yet run are dropped.
    fn cancel_run(&mut self, run: &str) -> Result<()>;

    fn is_cancelled(&mut self, run: &str) -> Result<bool>;

    /// The run is over: what it left in the engine goes.
    fn end_run(&mut self, run: &str) -> Result<()>;
}
