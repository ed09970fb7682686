//! The race detector (`--race`): reports two accesses to the same datum
//! by different tasks, at least one a write, that nothing orders.
//!
//! Every task (thread or process) carries a vector clock ([`clock`]),
//! indexed by task slots that are reused once joined ([`slots`]). The
//! script's own synchronisation moves knowledge between clocks: a release
//! (unlock, semaphore release, `set`, `notify`, `close`) publishes the
//! releaser's clock on the primitive, and an acquire (lock, semaphore
//! acquire, a `wait` that returns true, a `get` that sees the close) takes
//! it in; a queue or pipe item carries its putter's clock to its getter
//! (per item, appended to its bytes); a start hands the starter's clock to
//! the new task; an ended task's clock goes to whoever joins it. The
//! runtime's own locks are not these calls, so they order nothing.
//!
//! Each datum a task reads or writes (globals and captured variables, list
//! items and lengths, map keys, shared values' cells) has a [`shadow`]: its
//! last write and the reads since, checked against the clock of the task
//! accessing it. Shadows of a process's own data live in [`local`]; those
//! of shared values, the primitives' clocks and every task's name live in
//! the shared region's [`book`], seen alike by every process.
//!
//! A race is reported once per pair of places ([`report`]) when the second
//! access happens, and the run goes on; at its end the count decides the
//! exit status (66, as Go's detector).

mod book;
pub mod clock;
mod local;
mod report;
pub mod shadow;
mod slots;

use std::cell::RefCell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

pub use local::Place;
pub use shadow::Access;

use book::{Book, Tag, key};
use clock::{Clock, Tid};
use shadow::{Mark, Shadow, Site};
pub use slots::TaskId;

use crate::runtime::value::{Key, MapRef};
use crate::syntax::Span;
use crate::tasks::process::Process;

/// The exit status of a run that found a race (and did not fail otherwise).
pub const EXIT_RACE: i32 = 66;

static ON: AtomicBool = AtomicBool::new(false);
/// Whether accesses are checked (`:race off` at the prompt stops that,
/// while the clocks keep following the script's synchronisation: turned
/// back on, the detector then knows every order made in between).
static CHECKING: AtomicBool = AtomicBool::new(false);
static BOOK: OnceLock<Book> = OnceLock::new();

/// The task this thread runs, as the detector knows it.
struct Me {
    tid: Tid,
    /// Its first count in its slot (see [`slots`]).
    first: u32,
    clock: Clock,
}

thread_local! {
    // Helper threads (the forker, a pool's feeder and collector) have none:
    // they run no script code, and what they pass on is stamped for them.
    static ME: RefCell<Option<Me>> = const { RefCell::new(None) };
}

/// Whether `--race` is on for this run.
#[inline(always)]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Whether accesses are checked: what the evaluator's hooks ask.
#[inline(always)]
pub fn checking() -> bool {
    CHECKING.load(Ordering::Relaxed)
}

/// Turns the detector on; false when the shared region has no room for
/// its book. Tasks started before (at the prompt) are not watched.
pub fn enable() -> bool {
    let Some(book) = BOOK.get().copied().or_else(Book::new) else { return false };
    let _ = BOOK.set(book);
    ON.store(true, Ordering::SeqCst);
    CHECKING.store(true, Ordering::SeqCst);
    true
}

/// `:race off` at the prompt: accesses are no longer checked.
pub fn pause() {
    CHECKING.store(false, Ordering::SeqCst);
}

/// Whether the running thread is a task the detector follows.
pub fn follows_me() -> bool {
    ME.try_with(|me| me.borrow().is_some()).unwrap_or(false)
}

fn book() -> Option<Book> {
    if on() { BOOK.get().copied() } else { None }
}

fn with_me<T>(f: impl FnOnce(&mut Me) -> T) -> Option<T> {
    ME.try_with(|me| me.borrow_mut().as_mut().map(f)).ok().flatten()
}

/// What a starting task hands the task it starts.
#[derive(Debug)]
pub struct Start {
    tid: Tid,
    first: u32,
    clock: Clock,
    /// Where it was started.
    site: Site,
}

impl Start {
    /// The new task, as those who will join it name it.
    pub fn id(&self) -> TaskId {
        slots::task_id(self.tid, self.first)
    }
}

/// The running task starts another at `span`: everything this task did
/// so far happens before anything the new one does.
pub fn start(span: Span) -> Option<Start> {
    let book = book()?;
    let clock = with_me(|me| {
        let clock = me.clock.clone();
        me.clock.tick(me.tid);
        clock
    })
    .unwrap_or_default();
    let (tid, first) = slots::take(book, &clock);
    Some(Start { tid, first, clock, site: span.start })
}

/// This thread now runs the task `start` made (or, with none, the main
/// task of the run, named `name`).
pub fn begin(start: Option<Start>, name: &str) {
    let Some(book) = book() else { return };
    let pid = nix::unistd::getpid().as_raw();
    let (tid, first, mut clock, site) = match start {
        Some(start) => (start.tid, start.first, start.clock, Some(start.site)),
        None => (book.next_tid(), 1, Clock::default(), None),
    };
    slots::record(book, tid, first, name, pid, site);
    // The slot's earlier tasks all happen before this one's first step.
    clock.raise(tid, first);
    let _ = ME.try_with(|me| *me.borrow_mut() = Some(Me { tid, first, clock }));
}

/// The running task ends: its clock is kept for whoever joins it.
pub fn end() {
    let Some(book) = book() else { return };
    let Some(me) = ME.try_with(|me| me.borrow_mut().take()).ok().flatten() else { return };
    slots::ended(book, me.tid, me.first, &me.clock);
}

/// The running task joined the task `id` (see [`Start::id`]): all it did
/// happens before now.
pub fn joined(id: TaskId) {
    let Some(book) = book() else { return };
    let Some(bytes) = slots::end_clock(book, id) else { return };
    with_me(|me| me.clock.join_bytes(&bytes));
}

/// A release of the primitive at `off` (unlock, `set`, `notify`, `close`,
/// a semaphore's release): what this task did so far is published there.
pub fn release(off: u64) {
    let Some(book) = book() else { return };
    with_me(|me| {
        book.with(|records| {
            let at = key(Tag::Sync, off, 0);
            // Most releases follow an acquire of the same clock: a join in
            // place, without a copy.
            if records.words(at).is_some_and(|words| me.clock.join_into(&words)) {
                return;
            }
            let mut published = records.get(at).map(|b| Clock::from_bytes(&b)).unwrap_or_default();
            published.join(&me.clock);
            records.put(at, &published.to_bytes());
        });
        me.clock.tick(me.tid);
    });
}

/// An acquire of the primitive at `off`: what was published there happens
/// before what this task does next.
pub fn acquire(off: u64) {
    let Some(book) = book() else { return };
    with_me(|me| {
        book.with(|records| {
            if let Some(words) = records.words(key(Tag::Sync, off, 0)) {
                me.clock.join_words(&words);
            }
        });
    });
}

/// A primitive made at `off`, with `cells` cells if it is a shared value:
/// whatever the book knew of an earlier object there is forgotten.
pub fn fresh(off: u64, cells: usize) {
    let Some(book) = book() else { return };
    book.with(|records| {
        records.remove(key(Tag::Sync, off, 0));
        for i in 0..cells {
            records.remove(key(Tag::Data, off, i as u64));
        }
    });
}

/// Marks that end a stamped item: the clock's length and this word.
const STAMPED: u32 = 0x5243_4c4b;

/// The running task's clock as bytes, for an item about to be sent (a
/// queue or pipe item, a pool task or result); what the task does after
/// is a new step of its own, as after a release.
pub fn clock_now() -> Option<Vec<u8>> {
    book()?;
    with_me(|me| {
        let bytes = me.clock.to_bytes();
        me.clock.tick(me.tid);
        bytes
    })
}

/// Appends the running task's clock to an item's bytes: its getter will
/// know what this task did before the put.
pub fn stamp(bytes: &mut Vec<u8>) {
    if on() {
        stamp_with(bytes, clock_now().as_deref().unwrap_or(&[]));
    }
}

/// Appends `clock` (from [`clock_now`]) to an item's bytes.
pub fn stamp_with(bytes: &mut Vec<u8>, clock: &[u8]) {
    if on() {
        bytes.extend_from_slice(clock);
        bytes.extend_from_slice(&(clock.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&STAMPED.to_le_bytes());
    }
}

/// Splits a stamped item's bytes into the item and the clock it carries.
pub fn split(bytes: &[u8]) -> (&[u8], &[u8]) {
    if !on() || bytes.len() < 8 {
        return (bytes, &[]);
    }
    let end = bytes.len();
    if word(bytes, end - 4) != STAMPED {
        return (bytes, &[]);
    }
    let len = word(bytes, end - 8) as usize;
    match (end - 8).checked_sub(len) {
        Some(at) => (&bytes[..at], &bytes[at..end - 8]),
        None => (bytes, &[]),
    }
}

/// The item of a stamped item's bytes; the running task takes in the
/// clock it carries.
pub fn unstamp(bytes: &[u8]) -> &[u8] {
    let (item, clock) = split(bytes);
    absorb(clock);
    item
}

/// The running task takes in a clock from [`clock_now`].
pub fn absorb(clock: &[u8]) {
    if on() && !clock.is_empty() {
        with_me(|me| me.clock.join_bytes(clock));
    }
}

/// The little-endian word at `at`, or 0 past the end.
fn word(bytes: &[u8], at: usize) -> u32 {
    bytes.get(at..at + 4).map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
}

/// The running task reads or writes `place` at `span`: a race with an
/// earlier access is reported now.
pub fn access(proc: &Process, place: Place, access: Access, span: Span) {
    let Some(book) = book().filter(|_| checking()) else { return };
    let site = span.start;
    let found = with_me(|me| {
        let mark = Mark { tid: me.tid, clock: me.clock.get(me.tid), site };
        let conflict = match &place {
            Place::Shared(off, index) => book.with(|records| {
                let at = key(Tag::Data, *off, *index as u64);
                let (mut shadow, mut more) = records.get(at).map(|b| Shadow::from_bytes(&b)).unwrap_or_default();
                let conflict = shadow.access(access, mark, &me.clock, &mut more);
                records.put(at, &shadow.to_bytes(&more));
                conflict
            }),
            _ => local::access(&place, access, mark, &me.clock),
        };
        conflict.map(|c| (c, mark))
    })
    .flatten();
    if let Some((conflict, mark)) = found {
        report::race(proc, book, &place, mark, access, conflict);
    }
}

/// `m.remove(key)` is about to remove `key` from the map `map`.
pub fn removing(map: &MapRef, key: &Key) {
    if checking() {
        local::removing(map, key);
    }
}

/// The races reported so far in the whole run.
pub fn found() -> u32 {
    book().map_or(0, |book| book.found())
}
