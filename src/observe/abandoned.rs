//! Primitives left held by a process that died (SIGKILL in the middle of
//! `lock m { ... }`, say). The deadlock watch calls [`recover`] on every
//! scan: a task waiting on a lock, a condition's lock or a semaphore whose
//! holder's process is gone gets that primitive back, free, and every
//! waiter is told with `Abandoned` instead of waiting forever.

use crate::runtime::handle::{Handle, HandleKind};
use crate::sync::board::{Entry, Op, State};
use crate::sync::cell::Headed;
use crate::sync::cell::SharedCells;
use crate::sync::condition::Condition;
use crate::sync::lock::Lock;
use crate::sync::mutex::process_gone;
use crate::sync::semaphore::Semaphore;

/// Frees what dead processes left held under the waiters on the board;
/// true if anything was freed (the waiters will move).
pub fn recover(entries: &[Entry]) -> bool {
    let mut freed = false;
    for entry in entries {
        let waiting = matches!(entry.state, State::Blocked | State::Timed);
        if !waiting || !matches!(entry.what.op, Op::Acquire | Op::Wait) {
            continue;
        }
        let Some(handle) = Handle::from_bits(entry.what.target) else { continue };
        let lock = match handle.kind() {
            HandleKind::Lock => Some(Lock(handle.off())),
            HandleKind::Condition => Condition(handle.off()).lock().ok(),
            HandleKind::Cell | HandleKind::Array => SharedCells(handle.off()).lock().ok(),
            HandleKind::Map => crate::sync::dict::SharedMap(handle.off()).lock().ok(),
            HandleKind::Semaphore => {
                let semaphore = Semaphore(handle.off());
                for pid in semaphore.holders() {
                    if process_gone(pid) {
                        freed |= semaphore.abandon(pid);
                    }
                }
                None
            }
            _ => None,
        };
        if let Some(lock) = lock {
            let holder = lock.owner();
            if holder != 0 && process_gone((holder >> 32) as i32) {
                freed |= lock.abandon(holder);
            }
        }
    }
    freed
}
