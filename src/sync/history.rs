//! What each task did, and when: recorded only under `--trace` or
//! `--timeline`. Each process keeps its own list (no process waits on
//! another to record), its threads append under a lock that only
//! recording takes, and the list is written out when the process ends.
//! When nothing records, every hook is one relaxed load.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use parking_lot::Mutex;

use super::board::What;

static ON: AtomicBool = AtomicBool::new(false);
/// The run's start, in microseconds of the system-wide monotonic clock
/// (the same in every process).
static START: AtomicU64 = AtomicU64::new(0);
/// This process's list; replaced (never freed) in a forked child, where
/// its lock may have been held by a thread that does not exist there.
static LIST: AtomicPtr<Mutex<Vec<Record>>> = AtomicPtr::new(std::ptr::null_mut());

/// One thing that happened, on one OS thread (one task).
#[derive(Clone, Debug)]
pub struct Record {
    /// Microseconds since the run started.
    pub at: u64,
    pub pid: i32,
    pub tid: i32,
    pub event: Event,
}

#[derive(Clone, Debug)]
pub enum Event {
    /// A task starts on this thread.
    TaskBegins {
        name: String,
        process: bool,
    },
    TaskEnds,
    /// The task goes to sleep in a wait (or in `sleep`).
    WaitBegins(What),
    WaitEnds,
    /// `put`, `set`, `release`, `notify`: `what` names the operation.
    Mark {
        what: &'static str,
        span: (u32, u32),
    },
    /// A pool worker runs one item.
    ItemBegins {
        label: String,
    },
    ItemEnds,
}

#[inline]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Starts recording, before the run's first task starts.
pub fn start() {
    START.store(now_us(), Ordering::SeqCst);
    fresh_list();
    ON.store(true, Ordering::SeqCst);
}

fn fresh_list() {
    let list = Box::into_raw(Box::new(Mutex::new(Vec::new())));
    LIST.store(list, Ordering::SeqCst);
}

/// In a forked child: a list of its own.
pub fn forget_in_child() {
    if on() {
        fresh_list();
    }
}

fn now_us() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000,
        Err(_) => 0,
    }
}

/// Records `event` on the calling thread (when recording).
pub fn record(event: Event) {
    if !on() {
        return;
    }
    let list = LIST.load(Ordering::SeqCst);
    if list.is_null() {
        return;
    }
    let record =
        Record { at: elapsed(), pid: nix::unistd::getpid().as_raw(), tid: nix::unistd::gettid().as_raw(), event };
    // SAFETY: lists are leaked, never freed: the pointer stays valid.
    unsafe { &*list }.lock().push(record);
}

/// Everything this process recorded so far (taken out of the list).
pub fn take() -> Vec<Record> {
    let list = LIST.load(Ordering::SeqCst);
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: as in `record`.
    std::mem::take(&mut *unsafe { &*list }.lock())
}

/// Microseconds since the run started.
pub fn elapsed() -> u64 {
    now_us().saturating_sub(START.load(Ordering::Relaxed))
}
