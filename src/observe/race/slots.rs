//! Task numbers, and what the book keeps of each task.
//!
//! A task's number is a slot in every vector clock. A slot is reused once
//! its task has ended and the task starting a new one has joined it (its
//! clock covers the old task's last step): the new task counts on from
//! there, so every clock that has seen it has seen all of the old task,
//! which is true. Clocks then stay as long as the run's tasks at once,
//! not all its tasks ever, and a run starting thousands of tasks one after
//! another keeps a few hundred bytes for each.
//!
//! Each task of a slot (an incarnation) is known by the slot and its first
//! count: its name, pid and start, and, once it ended, its final clock.

use super::book::{Book, Records, Tag, key};
use super::clock::{Clock, Tid};
use super::shadow::Site;

/// A task as joins name it: its slot and first count.
pub type TaskId = u64;

pub fn task_id(tid: Tid, first: u32) -> TaskId {
    (tid as u64) << 32 | first as u64
}

/// Ended tasks whose slots may be reused, at most: an older one is kept
/// out (its slot is never reused, which costs a clock entry, nothing else).
const MAX_FREE: usize = 256;
/// The incarnations of a slot a report can still name.
const NAMED: usize = 32;

fn words(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks_exact(4).map(|w| super::word(w, 0)).collect()
}

fn bytes_of(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The ended tasks whose slots may be reused: (slot, last count) pairs.
fn free_list(records: &Records) -> Vec<u32> {
    words(&records.get(key(Tag::Free, 0, 0)).unwrap_or_default())
}

/// A slot for a task started by one whose clock is `starter`: a reused
/// one its starter has seen end, else a new one. Gives the slot and the
/// new task's first count.
pub fn take(book: Book, starter: &Clock) -> (Tid, u32) {
    let reused = book.with(|records| {
        let mut free = free_list(records);
        let i = free.chunks_exact(2).position(|pair| starter.get(pair[0]) >= pair[1])?;
        let (tid, last) = (free[2 * i], free[2 * i + 1]);
        free.drain(2 * i..2 * i + 2);
        records.put(key(Tag::Free, 0, 0), &bytes_of(&free));
        Some((tid, last.saturating_add(1)))
    });
    reused.unwrap_or_else(|| (book.next_tid(), 1))
}

/// A task's name, pid and start (none for the main task), for reports.
pub fn record(book: Book, tid: Tid, first: u32, name: &str, pid: i32, site: Option<Site>) {
    let mut record = Vec::with_capacity(8 + name.len());
    for word in [pid as u32, site.map_or(0, |s| s.saturating_add(1))] {
        record.extend_from_slice(&word.to_le_bytes());
    }
    record.extend_from_slice(name.as_bytes());
    book.with(|records| {
        records.put(key(Tag::Task, tid as u64, first as u64), &record);
        let at = key(Tag::Slot, tid as u64, 0);
        let mut firsts = words(&records.get(at).unwrap_or_default());
        firsts.push(first);
        if firsts.len() > NAMED {
            let gone = firsts.remove(0);
            forget(records, tid, gone);
        }
        records.put(at, &bytes_of(&firsts));
    });
}

/// What the book keeps of an incarnation no report can name any more.
fn forget(records: &mut Records, tid: Tid, first: u32) {
    records.remove(key(Tag::Task, tid as u64, first as u64));
    records.remove(key(Tag::End, tid as u64, first as u64));
}

/// The task in slot `tid` ends with `clock`: kept for whoever joins it,
/// and its slot offered to the next start that has seen this end.
pub fn ended(book: Book, tid: Tid, first: u32, clock: &Clock) {
    book.with(|records| {
        records.put(key(Tag::End, tid as u64, first as u64), &clock.to_bytes());
        let mut free = free_list(records);
        if free.len() >= 2 * MAX_FREE {
            free.drain(..2);
        }
        free.extend([tid, clock.get(tid)]);
        records.put(key(Tag::Free, 0, 0), &bytes_of(&free));
    });
}

/// The final clock of the task `id`, once it ended.
pub fn end_clock(book: Book, id: TaskId) -> Option<Vec<u8>> {
    book.with(|records| records.get(key(Tag::End, id >> 32, id & 0xffff_ffff)))
}

/// A task as a report names it.
pub struct TaskInfo {
    pub name: String,
    pub start: Started,
}

pub enum Started {
    /// The main task of the run.
    Main,
    At(Site),
    /// The book no longer names the task.
    Unknown,
}

/// The task of slot `tid` that took the step `count`.
pub fn info(book: Book, tid: Tid, count: u32) -> TaskInfo {
    let record = book.with(|records| {
        let firsts = words(&records.get(key(Tag::Slot, tid as u64, 0)).unwrap_or_default());
        let first = firsts.into_iter().filter(|&f| f <= count).max()?;
        records.get(key(Tag::Task, tid as u64, first as u64))
    });
    let Some(record) = record else {
        return TaskInfo { name: "a task that ended long ago".into(), start: Started::Unknown };
    };
    let word = |at: usize| super::word(&record, at);
    let name = String::from_utf8_lossy(record.get(8..).unwrap_or_default()).into_owned();
    let name = match word(0) {
        0 => name,
        pid => crate::runtime::task::named(&name, pid as i32),
    };
    let start = word(4).checked_sub(1).map_or(Started::Main, Started::At);
    TaskInfo { name, start }
}
