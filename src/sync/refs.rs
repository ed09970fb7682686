//! Reference counts of the primitives in the shared region, and what
//! happens when the last reference goes: the primitive is taken apart and
//! its memory reused, so a loop that makes and drops queues runs in
//! constant space.
//!
//! A primitive's count sits in its block's header (`shm.rs`); a new block
//! starts at 1, its maker's reference. References are held by:
//!
//! - a process, one per script value naming the primitive (listed in the
//!   process's table, `holdings.rs`, so that whoever reaps a dead process
//!   releases what it held);
//! - a slot whose bytes name it (an item in a queue, a shared value): the
//!   slot takes a reference when it is filled and gives it back when it is
//!   emptied (`slot.rs`);
//! - another primitive: a pipe end holds its queues, a condition its lock,
//!   shared cells theirs.
//!
//! Taking a primitive apart releases what it holds in turn. That work goes
//! through a list, not recursion, so a chain of a million queues each
//! holding the next ends in constant stack. A primitive that holds itself
//! (a queue put into itself) is never freed, as with any reference count.

use std::sync::OnceLock;
use std::sync::atomic::{Ordering, fence};

use super::cell::SharedCells;
use super::condition::Condition;
use super::handle::{Handle, HandleKind};
use super::pipe::PipeEnd;
use super::queue::Queue;
use super::region;

/// Finds the handles named in a serialised value; installed by whoever
/// owns the format (`runtime::wire`). Until then bytes name none.
pub type Scanner = fn(&[u8], &mut dyn FnMut(Handle));

static SCANNER: OnceLock<Scanner> = OnceLock::new();

/// Installs the scanner for serialised values (once per run).
pub fn set_scanner(scanner: Scanner) {
    let _ = SCANNER.set(scanner);
}

/// The handles `bytes` name, appended to `found`.
pub(super) fn scan(bytes: &[u8], found: &mut Vec<Handle>) {
    if let Some(scanner) = SCANNER.get() {
        scanner(bytes, &mut |handle| found.push(handle));
    }
}

/// One more reference to a primitive that something keeps alive meanwhile.
pub fn retain(handle: Handle) {
    if let Ok(region) = region() {
        region.refs(handle.off()).fetch_add(1, Ordering::Relaxed);
    }
}

/// Gives back one reference; the last one takes the primitive apart.
pub fn release(handle: Handle) {
    release_all(vec![handle]);
}

/// Takes a reference for each handle `bytes` name (they are being stored).
pub(super) fn retain_in(bytes: &[u8]) {
    let mut named = Vec::new();
    scan(bytes, &mut named);
    named.into_iter().for_each(retain);
}

/// Gives back the references of the handles `bytes` name.
pub(super) fn release_in(bytes: &[u8]) {
    let mut named = Vec::new();
    scan(bytes, &mut named);
    if !named.is_empty() {
        release_all(named);
    }
}

/// Gives back one reference for each of `work`, and for what each
/// primitive taken apart held in turn.
pub(super) fn release_all(mut work: Vec<Handle>) {
    let Ok(region) = region() else { return };
    while let Some(handle) = work.pop() {
        let count = region.refs(handle.off());
        let before = count.fetch_sub(1, Ordering::Release);
        if before == 0 {
            // Released more often than retained: a bug in concsh. Keep
            // the object rather than free it twice.
            count.fetch_add(1, Ordering::Relaxed);
            debug_assert!(false, "a primitive released past zero");
            continue;
        }
        if before == 1 {
            // Everything done through other references happens before this.
            fence(Ordering::Acquire);
            take_apart(handle, &mut work);
        }
    }
}

/// Frees a primitive no one references, adding what it held to `work`.
fn take_apart(handle: Handle, work: &mut Vec<Handle>) {
    let off = handle.off();
    match handle.kind() {
        HandleKind::Queue => Queue(off).take_apart(work),
        HandleKind::Pipe => PipeEnd(off).take_apart(work),
        HandleKind::Condition => Condition(off).take_apart(work),
        HandleKind::Cell | HandleKind::Array => SharedCells(off).take_apart(work),
        HandleKind::Map => crate::sync::dict::SharedMap(off).take_apart(work),
        HandleKind::Lock | HandleKind::Semaphore | HandleKind::Event => {
            if let Ok(region) = region() {
                region.free(off);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::lock::Lock;
    use crate::sync::shm;

    /// The last reference to a condition takes it apart, and with it the
    /// reference it held to its lock; the lock lives on for its other holder.
    #[test]
    fn the_last_release_takes_apart_and_releases_what_was_held() {
        let region = shm::region().expect("the region");
        let lock = Lock::new().expect("a lock");
        let count = || region.refs(lock.0).load(Ordering::SeqCst);
        let condition = Condition::new(Some(lock)).expect("a condition");
        assert_eq!(count(), 2, "the maker's and the condition's");
        let held = Handle::new(HandleKind::Condition, condition.0);
        retain(held);
        release(held);
        assert_eq!(count(), 2, "the condition is still referenced");
        release(held);
        assert_eq!(count(), 1, "the condition gave its reference back");
        release(Handle::new(HandleKind::Lock, lock.0));
    }
}
