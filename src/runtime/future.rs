//! Where a pool task's result arrives: a future (`submit`), or one
//! `map`'s batch. Filled by the pool's collector thread (or a worker
//! thread), waited on by the task that wants the result.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::error::ErrorValue;
use super::value::Value;
use crate::sync::wait::{Interrupted, SharedPoint, Wait};

/// One item's result: its value, or the error its call raised.
pub type ItemResult = Result<Value, Arc<ErrorValue>>;

/// The result of one `submit`.
#[derive(Default)]
pub struct FutureCell {
    result: Mutex<Option<ItemResult>>,
    /// The worker's clock when it sent the result (`--race`).
    pub clock: Mutex<Vec<u8>>,
    done: AtomicU32,
    point: SharedPoint,
}

impl FutureCell {
    pub fn fill(&self, result: ItemResult) {
        *self.result.lock() = Some(result);
        self.done.store(1, Ordering::SeqCst);
        self.point.notify(true);
    }

    pub fn is_ready(&self) -> bool {
        self.done.load(Ordering::SeqCst) != 0
    }

    /// Waits for the result: `Ok(None)` when the deadline passed first.
    pub fn wait(&self, wait: Wait<'_>) -> Result<Option<ItemResult>, Interrupted> {
        match self.point.block_on(wait, || self.is_ready().then_some(())) {
            Ok(()) => Ok(self.result.lock().clone()),
            Err(Interrupted::Timeout) => Ok(None),
            Err(why) => Err(why),
        }
    }
}

/// The results of one `map`, as they arrive: `(item index, result)`.
#[derive(Default)]
pub struct Batch {
    arrived: Mutex<VecDeque<(usize, ItemResult)>>,
    point: SharedPoint,
    /// Set when the map gives up (an item failed, or its task was
    /// cancelled): no more of its items are sent to the workers.
    pub cancelled: AtomicBool,
    /// The clocks of the workers that sent results not yet taken (`--race`).
    pub clock: Mutex<Vec<u8>>,
    /// Items the map has taken from `arrived`: the feeder stays a bounded
    /// number of items ahead, so results never pile up.
    consumed: AtomicUsize,
    room: SharedPoint,
}

impl Batch {
    pub fn deliver(&self, results: Vec<(usize, ItemResult)>) {
        self.arrived.lock().extend(results);
        self.point.notify(true);
    }

    /// Counts items taken by the map, making room for the feeder.
    pub fn consumed(&self, items: usize) {
        self.consumed.fetch_add(items, Ordering::SeqCst);
        self.room.notify(false);
    }

    /// Waits until items up to `next` may be sent: no more than `window`
    /// ahead of what the map has taken.
    pub fn wait_for_room(&self, next: usize, window: usize, wait: Wait<'_>) -> Result<(), Interrupted> {
        self.room.block_on(wait, || (next <= self.consumed.load(Ordering::SeqCst) + window).then_some(()))
    }

    /// Waits for the next results (all that have arrived).
    pub fn next(&self, wait: Wait<'_>) -> Result<Vec<(usize, ItemResult)>, Interrupted> {
        self.point.block_on(wait, || {
            let mut arrived = self.arrived.lock();
            (!arrived.is_empty()).then(|| arrived.drain(..).collect())
        })
    }
}
