//! The task board: one slot per task of the whole run (every thread of
//! every process), in the shared region, telling what the task does now:
//! running, or asleep on which futex word, for which operation, at which
//! place in the source. The deadlock watch and the task dumps read it.
//!
//! A task writes only its own slot, and only on the slow path of a wait
//! (just before it sleeps, just after it wakes), so the board costs a
//! running task nothing. Every such change, and every wake-up a task
//! gives a sleeper, moves a counter in the task's own slot (no cache line
//! is shared between tasks): a reader that finds every slot the same in
//! scans some time apart knows nothing happened in between.

use std::cell::Cell;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::history;
use super::shm::{Shared, region};

/// Slots on the board; a task that finds none runs unlisted, and the
/// board then never reports a deadlock (it cannot see everyone).
const NAME_LEN: usize = 40;

/// What a slot's task is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum State {
    Free = 0,
    Running = 1,
    /// Asleep with no deadline.
    Blocked = 2,
    /// Asleep until a deadline (a wait with a timeout, a `sleep`).
    Timed = 3,
}

/// Who the slot belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Owner {
    Thread = 0,
    Process = 1,
    /// A helper thread of the interpreter (a pool's collector, say):
    /// counted, never listed.
    Helper = 2,
}

/// The operation a task waits in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u32)]
pub enum Op {
    /// A wait the board does not judge (a fork gate, say): never stuck.
    #[default]
    Other = 0,
    Get = 1,
    Put = 2,
    Acquire = 3,
    Wait = 4,
    /// `join` of a thread: `target` is its task id.
    JoinThread = 5,
    /// `join` of a process: `target` is its pid.
    JoinProcess = 6,
    /// Waiting for a pool's results (`map`, a future).
    PoolResult = 7,
    /// A pool worker waiting for work.
    PoolIdle = 8,
    /// A helper waiting for the tasks it serves.
    HelperIdle = 9,
    Sleep = 10,
    /// Not a wait: a running task's span is the statement it is at.
    At = 11,
    /// A `for` over a queue or pipe, waiting for its next item.
    Iterate = 12,
    /// In a controlled run (`--explore`): able to run, waiting for the
    /// scheduler to pick it (in traces only).
    Turn = 13,
}

impl Op {
    fn from_u32(n: u32) -> Op {
        match n {
            1 => Op::Get,
            2 => Op::Put,
            3 => Op::Acquire,
            4 => Op::Wait,
            5 => Op::JoinThread,
            6 => Op::JoinProcess,
            7 => Op::PoolResult,
            8 => Op::PoolIdle,
            9 => Op::HelperIdle,
            10 => Op::Sleep,
            11 => Op::At,
            12 => Op::Iterate,
            13 => Op::Turn,
            _ => Op::Other,
        }
    }
}

/// What a wait is for, as told to the board when the task sleeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct What {
    pub op: Op,
    /// A handle's bits, a task id or a pid (see [`Op`]).
    pub target: u64,
    /// The source span of the operation (byte offsets).
    pub span: (u32, u32),
}

#[repr(C)]
struct Slot {
    /// 0 when free; else the task's id.
    id: AtomicU64,
    state: AtomicU32,
    pid: AtomicI32,
    owner: AtomicU32,
    op: AtomicU32,
    /// The address of the futex word slept on: the region is at the same
    /// address in every process, so a word in it can be read by any.
    word: AtomicU64,
    seen: AtomicU32,
    span_start: AtomicU32,
    span_end: AtomicU32,
    target: AtomicU64,
    /// Moved by the slot's own task at every change and every wake-up it gives.
    changes: AtomicU32,
    name: [AtomicU8; NAME_LEN],
}

/// The board's header; its slots follow it in the region.
#[repr(C)]
struct Board {
    /// One past the highest slot ever used: scans stop there.
    high: AtomicU32,
    /// Set once a task found no slot.
    overflowed: AtomicU32,
    /// The next grave to write.
    next_grave: AtomicU32,
    /// The names of the latest processes that ended, so that a report
    /// can still name a process that died holding a lock.
    graves: [Grave; GRAVES],
}

const GRAVES: usize = 64;

#[repr(C)]
struct Grave {
    pid: AtomicI32,
    name: [AtomicU8; NAME_LEN],
}

/// The board and its slots, as placed in the region.
struct Placed {
    board: &'static Board,
    slots: &'static [Slot],
}

impl std::ops::Deref for Placed {
    type Target = Board;
    fn deref(&self) -> &Board {
        self.board
    }
}

// SAFETY: atomics only.
unsafe impl Shared for Board {}

/// The board, once placed (inherited by forked children with the region).
static BOARD: AtomicPtr<Board> = AtomicPtr::new(std::ptr::null_mut());
/// How many slots follow it.
static SLOTS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's slot, if it has one.
    static MINE: Cell<Option<u32>> = const { Cell::new(None) };
    /// The wait this thread sleeps in went into the history.
    static RECORDED: Cell<bool> = const { Cell::new(false) };
}

/// Places the board in the region, with a slot for every task that can be
/// alive at once (`max_tasks` scripts' tasks, and up to three helper
/// threads for each of them, as every pool has a worker); the run's first
/// process calls this before any fork, so every process finds it at the
/// same address. Slots cost memory only once used.
pub fn init(max_tasks: usize) {
    if !BOARD.load(Ordering::SeqCst).is_null() {
        return;
    }
    let Some(region) = region() else { return };
    let count = max_tasks.saturating_mul(4).saturating_add(64);
    let header = std::mem::size_of::<Board>().next_multiple_of(std::mem::align_of::<Slot>());
    let Some(bytes) = count.checked_mul(std::mem::size_of::<Slot>()).and_then(|b| b.checked_add(header)) else {
        return;
    };
    // Fresh pages of an anonymous mapping are zero: every slot free.
    let Some(off) = region.alloc(bytes) else { return };
    let board: &'static Board = region.get::<Board>(off);
    SLOTS.store(count, Ordering::SeqCst);
    BOARD.store(board as *const Board as *mut Board, Ordering::SeqCst);
}

fn board() -> Option<Placed> {
    let board = BOARD.load(Ordering::Acquire);
    if board.is_null() {
        return None;
    }
    let count = SLOTS.load(Ordering::Acquire);
    let header = std::mem::size_of::<Board>().next_multiple_of(std::mem::align_of::<Slot>());
    // SAFETY: `init` placed the header and `count` zeroed slots after it in
    // one block of the region, which stays mapped for the life of the
    // process; slots are atomics only, so shared references are sound.
    unsafe {
        let slots = (board as *const u8).add(header) as *const Slot;
        Some(Placed { board: &*board, slots: std::slice::from_raw_parts(slots, count) })
    }
}

/// Slot `index`, if the board exists.
fn slot(index: u32) -> Option<&'static Slot> {
    board()?.slots.get(index as usize)
}

/// This thread's slot, if it has one.
fn my_slot() -> Option<&'static Slot> {
    slot(MINE.with(Cell::get)?)
}

/// A claimed slot; freed when dropped.
pub struct Claim(u32);

impl Claim {
    fn keep(self) -> u32 {
        let index = self.0;
        std::mem::forget(self);
        index
    }

    /// In the parent of a fork: the slot is the child's, `pid`. The child
    /// frees it as it ends, and the parent again once it has reaped it
    /// (however it died).
    pub fn hand_to(self, pid: i32) {
        if let Some(slot) = slot(self.keep()) {
            slot.pid.store(pid, Ordering::SeqCst);
        }
    }

    /// Makes the slot this thread's, for task `id` in process `pid`; freed
    /// when the guard is dropped (at the end of the thread's task).
    pub fn adopt(self, id: u64, pid: i32) -> Mine {
        adopt(self.keep(), id, pid);
        Mine(())
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        release(self.0);
    }
}

/// This thread's slot, freed when dropped.
pub struct Mine(());

impl Drop for Mine {
    fn drop(&mut self) {
        release_mine();
    }
}

/// Claims and adopts a slot for the calling thread.
pub fn list_me(id: u64, owner: Owner, name: &str) -> Option<Mine> {
    let pid = nix::unistd::getpid().as_raw();
    claim(id, pid, owner, name).map(|claim| claim.adopt(id, pid))
}

/// Claims a slot for a new task, running, in process `pid`.
pub fn claim(id: u64, pid: i32, owner: Owner, name: &str) -> Option<Claim> {
    let board = board()?;
    for (index, slot) in board.slots.iter().enumerate() {
        if slot.id.load(Ordering::Relaxed) != 0
            || slot.id.compare_exchange(0, id, Ordering::SeqCst, Ordering::Relaxed).is_err()
        {
            continue;
        }
        slot.pid.store(pid, Ordering::SeqCst);
        slot.owner.store(owner as u32, Ordering::SeqCst);
        slot.op.store(Op::Other as u32, Ordering::SeqCst);
        write_name(&slot.name, name);
        slot.state.store(State::Running as u32, Ordering::SeqCst);
        board.high.fetch_max(index as u32 + 1, Ordering::SeqCst);
        return Some(Claim(index as u32));
    }
    board.overflowed.store(1, Ordering::SeqCst);
    None
}

/// Makes `index` this thread's slot (the thread of the task it was
/// claimed for), with `id` and `pid` now known.
fn adopt(index: u32, id: u64, pid: i32) {
    if let Some(slot) = slot(index) {
        slot.id.store(id, Ordering::SeqCst);
        slot.pid.store(pid, Ordering::SeqCst);
    }
    MINE.with(|mine| mine.set(Some(index)));
}

/// Frees this thread's slot, at the end of its task.
fn release_mine() {
    if let Some(index) = MINE.with(|mine| mine.take()) {
        release(index);
    }
}

/// Forgets this thread's slot without freeing it (a forked child's first
/// thread: the slot belongs to the parent's task).
pub fn forget_mine() {
    MINE.with(|mine| mine.set(None));
}

fn release(index: u32) {
    if let Some(slot) = slot(index) {
        slot.state.store(State::Free as u32, Ordering::SeqCst);
        slot.id.store(0, Ordering::SeqCst);
    }
}

/// Frees every slot of process `pid`, which has ended (however it died).
pub fn release_process(pid: i32) {
    let Some(board) = board() else { return };
    let high = board.high.load(Ordering::SeqCst) as usize;
    for (index, slot) in board.slots.iter().enumerate().take(high) {
        if slot.id.load(Ordering::SeqCst) != 0 && slot.pid.load(Ordering::SeqCst) == pid {
            release(index as u32);
        }
    }
}

/// Records the name of process `pid`, which is ending.
pub fn bury(pid: i32, name: &str) {
    let Some(board) = board() else { return };
    let grave = &board.graves[board.next_grave.fetch_add(1, Ordering::SeqCst) as usize % GRAVES];
    grave.pid.store(0, Ordering::SeqCst);
    write_name(&grave.name, name);
    grave.pid.store(pid, Ordering::SeqCst);
}

/// The name of process `pid`, if it ended lately.
pub fn buried(pid: i32) -> Option<String> {
    let board = board()?;
    let grave = board.graves.iter().find(|g| pid != 0 && g.pid.load(Ordering::SeqCst) == pid)?;
    Some(read_name(&grave.name))
}

fn write_name(to: &[AtomicU8; NAME_LEN], name: &str) {
    for (i, byte) in to.iter().enumerate() {
        byte.store(name.as_bytes().get(i).copied().unwrap_or(0), Ordering::Relaxed);
    }
}

fn read_name(from: &[AtomicU8; NAME_LEN]) -> String {
    let name: Vec<u8> = from.iter().map(|b| b.load(Ordering::Relaxed)).take_while(|&b| b != 0).collect();
    String::from_utf8_lossy(&name).into_owned()
}

/// This thread goes to sleep on `word`, which read `seen`.
pub fn asleep(word: &AtomicU32, seen: u32, timed: bool, what: What) {
    let Some(slot) = my_slot() else { return };
    slot.word.store(word as *const AtomicU32 as u64, Ordering::Relaxed);
    slot.seen.store(seen, Ordering::Relaxed);
    slot.op.store(what.op as u32, Ordering::Relaxed);
    slot.target.store(what.target, Ordering::Relaxed);
    slot.span_start.store(what.span.0, Ordering::Relaxed);
    slot.span_end.store(what.span.1, Ordering::Relaxed);
    let state = if timed { State::Timed } else { State::Blocked };
    moved(slot);
    slot.state.store(state as u32, Ordering::Release);
    if history::on() && !matches!(what.op, Op::Other | Op::HelperIdle) {
        history::record(history::Event::WaitBegins(what));
        RECORDED.with(|r| r.set(true));
    }
}

/// This thread waits outside a futex (on a descriptor): no word to check.
pub fn waiting(timed: bool, what: What) {
    static NEVER_MOVES: AtomicU32 = AtomicU32::new(0);
    asleep(&NEVER_MOVES, 0, timed, what);
}

/// This thread is running again.
pub fn awake() {
    let Some(slot) = my_slot() else { return };
    slot.op.store(Op::Other as u32, Ordering::Relaxed);
    moved(slot);
    slot.state.store(State::Running as u32, Ordering::Release);
    if RECORDED.with(|r| r.replace(false)) {
        history::record(history::Event::WaitEnds);
    }
}

/// This thread runs the statement at `span` (asked by a task dump).
pub fn at(span: (u32, u32)) {
    let Some(slot) = my_slot() else { return };
    slot.span_start.store(span.0, Ordering::Relaxed);
    slot.span_end.store(span.1, Ordering::Relaxed);
    slot.op.store(Op::At as u32, Ordering::Relaxed);
}

/// This thread wakes a sleeper: the picture is changing.
#[inline]
pub fn woken() {
    if let Some(slot) = my_slot() {
        moved(slot);
    }
}

/// Only the slot's own thread writes `changes`: no read-modify-write needed.
fn moved(slot: &Slot) {
    slot.changes.store(slot.changes.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
}

/// One slot as read by a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    pub pid: i32,
    pub owner: Owner,
    pub state: State,
    pub what: What,
    pub name: String,
    pub changes: u32,
    /// The word slept on still holds what the sleeper saw (no wake-up is
    /// on its way); `None` when it cannot be read from here.
    pub unwoken: Option<bool>,
}

/// Everything on the board; `None` when the board is missing or a task
/// runs unlisted.
pub fn scan() -> Option<Vec<Entry>> {
    let board = board()?;
    if board.overflowed.load(Ordering::SeqCst) != 0 {
        return None;
    }
    let high = board.high.load(Ordering::SeqCst) as usize;
    let mut entries = Vec::new();
    for slot in board.slots.iter().take(high) {
        let id = slot.id.load(Ordering::SeqCst);
        let state = match slot.state.load(Ordering::SeqCst) {
            1 => State::Running,
            2 => State::Blocked,
            3 => State::Timed,
            _ => continue,
        };
        if id == 0 {
            continue;
        }
        let pid = slot.pid.load(Ordering::SeqCst);
        let word = slot.word.load(Ordering::SeqCst);
        let seen = slot.seen.load(Ordering::SeqCst);
        // Only a word in the region can be read safely: a word in a
        // process's own memory may be gone once its sleeper woke.
        let unwoken = match region() {
            Some(region) if region.contains(word) => {
                // SAFETY: a word inside the region, which is mapped for the
                // life of the process; read atomically.
                Some(unsafe { &*(word as *const AtomicU32) }.load(Ordering::SeqCst) == seen)
            }
            _ => None,
        };
        entries.push(Entry {
            id,
            pid,
            owner: match slot.owner.load(Ordering::SeqCst) {
                1 => Owner::Process,
                2 => Owner::Helper,
                _ => Owner::Thread,
            },
            state,
            what: What {
                op: Op::from_u32(slot.op.load(Ordering::SeqCst)),
                target: slot.target.load(Ordering::SeqCst),
                span: (slot.span_start.load(Ordering::SeqCst), slot.span_end.load(Ordering::SeqCst)),
            },
            name: read_name(&slot.name),
            changes: slot.changes.load(Ordering::SeqCst),
            unwoken,
        });
    }
    Some(entries)
}
