//! The language's words for primitives (`put`, `get`, `lock ... { }`,
//! `acquire`, `release`, `wait`, `notify`, `set`, `clear`, `close`), their
//! constructors (`queue()`, `lock()`, ...) and properties (`q.size`,
//! `e.is_set`, `n.value`), turned into calls on `crate::sync`.

use std::sync::Arc;
use std::time::Duration;

use super::{Ctrl, Interp, R, Up, fault_at};
use crate::cluster::queue::{Refused, RemoteQueue};
use crate::observe::race;
use crate::resolve::ir::{Block, Expr, Limit};
use crate::runtime::error::{ErrorValue, Fault, Kind, type_error, value_error};
use crate::runtime::format;
use crate::runtime::handle::{Handle, HandleKind, HandleRef};
use crate::runtime::value::Value;
use crate::runtime::wire;
use crate::sync::SyncError;
use crate::sync::board::Op;
use crate::sync::cell::Headed;
use crate::sync::cell::SharedCells;
use crate::sync::condition::Condition;
use crate::sync::event::Event;
use crate::sync::history;
use crate::sync::lock::Lock;
use crate::sync::pipe::PipeEnd;
use crate::sync::queue::Queue;
use crate::sync::semaphore::Semaphore;
use crate::syntax::Span;

/// A primitive failure in the language's words (never `Cancelled`: a
/// cancel is not an error, see [`failure`]).
pub(super) fn sync_fault(error: SyncError) -> Fault {
    match error {
        SyncError::Timeout => ErrorValue::new(Kind::Timeout, "timed out"),
        SyncError::Closed => ErrorValue::new(Kind::QueueClosed, "the queue is closed"),
        SyncError::NotLocked => value_error("release of a lock that is not locked"),
        SyncError::OverReleased => {
            value_error("semaphore released more times than it was acquired").with_help("each release needs an acquire")
        }
        SyncError::NotOwner => value_error("this task does not hold the condition's lock")
            .with_help("wait and notify inside `lock c { ... }`"),
        SyncError::OutOfRange => ErrorValue::new(Kind::Index, "shared list index out of range"),
        SyncError::NoSpace => ErrorValue::new(Kind::Resource, "the shared memory region is full")
            .with_help("queues and shared values hold too much; get items out or make fewer primitives"),
        SyncError::Cancelled => ErrorValue::new(Kind::Terminated, "the task was cancelled"),
        SyncError::Abandoned { holder } => {
            let pid = (holder >> 32) as i32;
            let name = crate::sync::board::buried(pid).unwrap_or_else(|| "process".into());
            ErrorValue::new(Kind::Abandoned, format!("its holder, {name} (pid {pid}), died holding it"))
                .with_help("the primitive is free again; what the holder was doing under it may be half done")
        }
    }
}

/// Why an operation on a queue on a server did not happen, as a local
/// queue would say it.
fn refused(why: Refused, q: &RemoteQueue, timeout: Option<Duration>, closed: &str, span: Span) -> Ctrl {
    let error = match why {
        Refused::Cancelled => return Ctrl::Cancelled,
        Refused::Full => {
            ErrorValue::new(Kind::QueueFull, format!("the queue is full (capacity {}){}", q.capacity, waited(timeout)))
        }
        Refused::Empty => ErrorValue::new(Kind::QueueEmpty, format!("the queue is empty{}", waited(timeout))),
        Refused::Closed => ErrorValue::new(Kind::QueueClosed, closed),
        Refused::Io(message) => ErrorValue::new(Kind::Io, message),
    };
    fault_at(error, span)
}

/// How a failed wait leaves the evaluator: a cancel unwinds the task,
/// anything else is an error at `span`.
fn failure(error: SyncError, span: Span) -> Ctrl {
    match error {
        SyncError::Cancelled => Ctrl::Cancelled,
        other => fault_at(sync_fault(other), span),
    }
}

/// The handle in `value`, if it is one of `kinds`.
fn handle(value: &Value, kinds: &[HandleKind], word: &str) -> Result<Handle, Fault> {
    match value {
        Value::Handle(h) if kinds.contains(&h.kind()) => Ok(h.handle()),
        other => {
            let mut wanted: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
            wanted.dedup();
            let wanted = match wanted.split_last() {
                Some((last, [])) => article(last),
                Some((last, rest)) => format!("{} or {last}", article(&rest.join(", "))),
                None => String::new(),
            };
            Err(type_error(format!("`{word}` needs {wanted}, not {}", article(other.type_name()))))
        }
    }
}

/// How long a wait that timed out lasted, for its message: nothing for
/// `nowait`.
fn waited(timeout: Option<Duration>) -> String {
    match timeout {
        Some(t) if !t.is_zero() => format!(", after waiting {} s", t.as_secs_f64()),
        _ => String::new(),
    }
}

/// "a queue", "an event".
fn article(noun: &str) -> String {
    match noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        true => format!("an {noun}"),
        false => format!("a {noun}"),
    }
}

/// Seconds as a timeout: a number of 0 or more.
pub fn seconds(value: &Value, word: &str) -> Result<Duration, Fault> {
    let secs = match value {
        Value::Int(n) => *n as f64,
        Value::Float(f) => *f,
        other => return Err(type_error(format!("`{word}` takes seconds as a number, not {}", other.type_name()))),
    };
    if secs.is_nan() || secs < 0.0 {
        return Err(value_error(format!("`{word}` needs a time of 0 or more seconds")));
    }
    // Anything past a century is forever for our purposes.
    Ok(Duration::from_secs_f64(secs.min(3.15e9)))
}

/// The lock behind a value usable with `lock x { }`, `acquire`, `release`.
#[derive(Clone, Copy)]
enum Lockable {
    Lock(Lock),
    Semaphore(Semaphore),
}

impl Lockable {
    /// Where the race detector keeps what its releases published.
    fn off(self) -> u64 {
        match self {
            Lockable::Lock(lock) => lock.0,
            Lockable::Semaphore(sem) => sem.0,
        }
    }
}

impl<'p> Interp<'p> {
    /// How long a `timeout`/`nowait` allows: `None` is forever.
    pub(crate) fn limit(&mut self, limit: &Limit, up: Up) -> R<Option<Duration>> {
        Ok(match limit {
            Limit::Forever => None,
            Limit::NoWait => Some(Duration::ZERO),
            Limit::Timeout(seconds_expr) => {
                let value = self.eval(seconds_expr, up)?;
                Some(seconds(&value, "timeout").map_err(|e| fault_at(e, seconds_expr.span))?)
            }
        })
    }

    /// The queue `put` writes to: a queue, or a pipe end's outbox.
    fn put_queue(&self, target: &Value, span: Span) -> R<Queue> {
        let h = handle(target, &[HandleKind::Queue, HandleKind::Pipe], "put").map_err(|e| fault_at(e, span))?;
        match h.kind() {
            HandleKind::Pipe => PipeEnd(h.off()).outbox().ok_or_else(|| {
                fault_at(value_error("this end of the pipe only reads").with_help("put into the other end"), span)
            }),
            _ => Ok(Queue(h.off())),
        }
    }

    /// The queue `get` reads from: a queue, or a pipe end's inbox.
    pub(crate) fn get_queue(&self, source: &Value, span: Span) -> R<Queue> {
        let h = handle(source, &[HandleKind::Queue, HandleKind::Pipe], "get").map_err(|e| fault_at(e, span))?;
        match h.kind() {
            HandleKind::Pipe => PipeEnd(h.off()).inbox().ok_or_else(|| {
                fault_at(value_error("this end of the pipe only writes").with_help("get from the other end"), span)
            }),
            _ => Ok(Queue(h.off())),
        }
    }

    /// `put value into queue` (or into a pipe end).
    pub(crate) fn put(&mut self, value: Value, target: &Value, timeout: Option<Duration>, span: Span) -> R<()> {
        if let Value::RemoteQueue(q) = target {
            let bytes = wire::encode(&value).map_err(|e| fault_at(e, span))?;
            if let Some(message) = wire::cannot_leave(&bytes, "through a queue on a server") {
                return Err(fault_at(type_error(message), span));
            }
            return q
                .put(&bytes, timeout, &self.cancel)
                .map_err(|why| refused(why, q, timeout, "put into a closed queue", span));
        }
        let q = self.put_queue(target, span)?;
        let mut bytes = wire::encode(&value).map_err(|e| fault_at(e, span))?;
        race::stamp(&mut bytes);
        let put = q.put(&bytes, self.wait_in(timeout, Op::Put, bits(target), span));
        mark("put", put.is_ok(), span);
        put.map_err(|e| match e {
            SyncError::Timeout => {
                let capacity = q.capacity().unwrap_or(0);
                let message = format!("the queue is full (capacity {capacity}){}", waited(timeout));
                fault_at(ErrorValue::new(Kind::QueueFull, message), span)
            }
            SyncError::Closed => fault_at(ErrorValue::new(Kind::QueueClosed, "put into a closed queue"), span),
            other => failure(other, span),
        })
    }

    /// `get queue` (or a pipe end).
    pub(crate) fn get(&mut self, source: &Value, timeout: Option<Duration>, span: Span) -> R<Value> {
        self.receive(source, timeout, Op::Get, span)
    }

    /// The next item of `for v in q`: a `get` the task board tells apart
    /// (a deadlock there wants `close q`, not a timeout).
    pub(crate) fn next_from(&mut self, source: &Value, span: Span) -> R<Value> {
        self.receive(source, None, Op::Iterate, span)
    }

    fn receive(&mut self, source: &Value, timeout: Option<Duration>, op: Op, span: Span) -> R<Value> {
        if let Value::RemoteQueue(q) = source {
            let closed = "the queue is closed and empty";
            let bytes = q.get(timeout, &self.cancel).map_err(|why| refused(why, q, timeout, closed, span))?;
            return wire::decode(&bytes, &self.tables.functions).map_err(|e| fault_at(e, span));
        }
        let q = self.get_queue(source, span)?;
        let bytes = q.get(self.wait_in(timeout, op, bits(source), span)).map_err(|e| match e {
            SyncError::Closed => {
                // What was done before the close happens before this.
                race::acquire(q.0);
                fault_at(ErrorValue::new(Kind::QueueClosed, "the queue is closed and empty"), span)
            }
            SyncError::Timeout => {
                fault_at(ErrorValue::new(Kind::QueueEmpty, format!("the queue is empty{}", waited(timeout))), span)
            }
            other => failure(other, span),
        })?;
        wire::decode(race::unstamp(&bytes), &self.tables.functions).map_err(|e| fault_at(e, span))
    }

    fn lockable(&self, value: &Value, word: &str, span: Span) -> R<Lockable> {
        let kinds = [
            HandleKind::Lock,
            HandleKind::Semaphore,
            HandleKind::Condition,
            HandleKind::Cell,
            HandleKind::Array,
            HandleKind::Map,
        ];
        let h = handle(value, &kinds, word).map_err(|e| fault_at(e, span))?;
        let lock = match h.kind() {
            HandleKind::Semaphore => return Ok(Lockable::Semaphore(Semaphore(h.off()))),
            HandleKind::Condition => Condition(h.off()).lock(),
            HandleKind::Cell | HandleKind::Array => SharedCells(h.off()).lock(),
            HandleKind::Map => crate::sync::dict::SharedMap(h.off()).lock(),
            _ => Ok(Lock(h.off())),
        };
        Ok(Lockable::Lock(lock.map_err(|e| failure(e, span))?))
    }

    /// `acquire x`: true, or false when the timeout passed first.
    pub(crate) fn acquire(&mut self, target: &Value, timeout: Option<Duration>, span: Span) -> R<bool> {
        let lockable = self.lockable(target, "acquire", span)?;
        let result = match lockable {
            Lockable::Lock(lock) => lock.acquire(self.task.id, self.wait_in(timeout, Op::Acquire, bits(target), span)),
            Lockable::Semaphore(sem) => sem.acquire(self.wait_in(timeout, Op::Acquire, bits(target), span)),
        };
        match result {
            Ok(()) => {
                race::acquire(lockable.off());
                Ok(true)
            }
            Err(SyncError::Timeout) => Ok(false),
            Err(other) => Err(failure(other, span)),
        }
    }

    pub(crate) fn release(&mut self, target: &Value, span: Span) -> R<()> {
        let lockable = self.lockable(target, "release", span)?;
        self.point(span);
        // Published before the release: the next holder must find it.
        race::release(lockable.off());
        let result = match lockable {
            Lockable::Lock(lock) => lock.release(),
            Lockable::Semaphore(sem) => sem.release(),
        };
        mark("release", result.is_ok(), span);
        result.map_err(|e| failure(e, span))
    }

    /// `lock x { body }`: released however the body ends.
    pub(crate) fn lock_block(&mut self, target: &Expr, body: &Block, up: Up) -> R<()> {
        let value = self.subject(target, up)?;
        self.acquire(&value, None, target.span)?;
        let result = self.exec_block(body, up);
        let released = self.release(&value, target.span);
        result.and(released)
    }

    pub(crate) fn close(&mut self, target: &Value, span: Span) -> R<()> {
        if let Value::RemoteQueue(q) = target {
            return q.close().map_err(|why| refused(why, q, None, "", span));
        }
        let h = handle(target, &[HandleKind::Queue, HandleKind::Pipe], "close").map_err(|e| fault_at(e, span))?;
        self.point(span);
        let closed = match h.kind() {
            HandleKind::Pipe => {
                let end = PipeEnd(h.off());
                for q in [end.outbox(), end.inbox()].into_iter().flatten() {
                    race::release(q.0);
                }
                end.close()
            }
            _ => {
                race::release(h.off());
                Queue(h.off()).close()
            }
        };
        closed.map_err(|e| failure(e, span))
    }

    /// `set e` (true) or `clear e` (false).
    pub(crate) fn set_event(&mut self, target: &Value, raise: bool, span: Span) -> R<()> {
        let word = if raise { "set" } else { "clear" };
        let event = Event(handle(target, &[HandleKind::Event], word).map_err(|e| fault_at(e, span))?.off());
        self.point(span);
        if raise {
            race::release(event.0);
        }
        let result = if raise { event.set() } else { event.clear() };
        mark(word, result.is_ok(), span);
        result.map_err(|e| failure(e, span))
    }

    /// `wait e` / `wait c`: true, or false when the timeout passed first.
    pub(crate) fn wait_on(&mut self, target: &Value, timeout: Option<Duration>, span: Span) -> R<bool> {
        let h = handle(target, &[HandleKind::Event, HandleKind::Condition], "wait").map_err(|e| fault_at(e, span))?;
        let result = match h.kind() {
            HandleKind::Event => Event(h.off()).wait(self.wait_in(timeout, Op::Wait, h.to_bits(), span)),
            _ => {
                // The wait gives the condition's lock up and takes it again.
                let lock = if race::on() { Condition(h.off()).lock().ok() } else { None };
                if let Some(lock) = lock {
                    race::release(lock.0);
                }
                let woken = Condition(h.off()).wait(self.task.id, self.wait_in(timeout, Op::Wait, h.to_bits(), span));
                if let Some(lock) = lock {
                    race::acquire(lock.0);
                }
                woken
            }
        };
        // A notify happens under the condition's lock, so the lock's
        // hand-off above carries it to the woken wait.
        if h.kind() == HandleKind::Event && result == Ok(true) {
            race::acquire(h.off());
        }
        result.map_err(|e| failure(e, span))
    }

    pub(crate) fn notify(&mut self, target: &Value, all: bool, span: Span) -> R<()> {
        let cond = Condition(handle(target, &[HandleKind::Condition], "notify").map_err(|e| fault_at(e, span))?.off());
        self.point(span);
        let notified = cond.notify(self.task.id, all);
        mark(if all { "notify all" } else { "notify" }, notified.is_ok(), span);
        notified.map_err(|e| failure(e, span))
    }

    /// `x.name` on a primitive.
    pub(crate) fn handle_field(&self, h: Handle, name: &str) -> Result<Value, Fault> {
        let off = h.off();
        let count = |n: usize| Value::Int(n as i64);
        let value = match (h.kind(), name) {
            (HandleKind::Queue, "size") => count(Queue(off).len()),
            (HandleKind::Queue, "full") => Value::Bool(Queue(off).is_full()),
            (HandleKind::Queue, "empty") => Value::Bool(Queue(off).is_empty()),
            (HandleKind::Queue, "capacity") => Queue(off).capacity().map_or(Value::Nil, count),
            (HandleKind::Queue, "closed") => Value::Bool(Queue(off).is_closed()),
            (HandleKind::Lock, "locked") => Value::Bool(Lock(off).is_locked()),
            (HandleKind::Semaphore, "value") => count(Semaphore(off).value() as usize),
            (HandleKind::Event, "is_set") => {
                let set = Event(off).is_set();
                if set {
                    race::acquire(off);
                }
                Value::Bool(set)
            }
            (HandleKind::Cell, "value") => self.shared_load(h, 0)?,
            (HandleKind::Array, "value") => self.shared_list_value(h)?,
            (HandleKind::Map, "value") => self.shared_map_value(h)?,
            (kind, _) => {
                let fields = match kind.fields() {
                    [] => "no fields".to_string(),
                    fields => crate::runtime::format::english_list(fields),
                };
                return Err(type_error(format!("a {} has no field `{name}`", kind.name()))
                    .with_help(format!("a {} has {fields}", kind.name())));
            }
        };
        Ok(value)
    }

    /// `n.value = v`.
    pub(crate) fn set_handle_field(&self, h: Handle, name: &str, value: Value) -> Result<(), Fault> {
        match (h.kind(), name) {
            (HandleKind::Cell, "value") => self.shared_store(h, 0, &value),
            (HandleKind::Array, "value") => self.shared_list_replace(h, &value),
            (HandleKind::Map, "value") => self.shared_map_replace(h, &value),
            (kind, _) => Err(type_error(format!("cannot set `{name}` on a {}", kind.name()))
                .with_help(format!("what `x.{name}` shows of a {} is read-only", kind.name()))),
        }
    }

    /// Element `index` of a shared value.
    pub(crate) fn shared_load(&self, h: Handle, index: usize) -> Result<Value, Fault> {
        let bytes = SharedCells(h.off()).load(index).map_err(sync_fault)?;
        wire::decode(&bytes, &self.tables.functions)
    }

    pub(crate) fn shared_store(&self, h: Handle, index: usize, value: &Value) -> Result<(), Fault> {
        let bytes = wire::encode(value)?;
        SharedCells(h.off()).store(index, &bytes).map_err(sync_fault)
    }

    /// `arr[i]` for a shared list, with negative indices.
    pub(crate) fn shared_index(&self, h: Handle, index: &Value) -> Result<usize, Fault> {
        // One shared value (a map, a number) is reached through `.value`.
        if h.kind() != HandleKind::Array {
            let error = type_error("a shared value cannot be indexed: it is not a shared list or map")
                .with_help("read what it holds with `.value` (`n.value[k]`), or change it under `lock n { ... }`");
            return Err(error);
        }
        let len = SharedCells(h.off()).len() as i64;
        let i = match index {
            Value::Int(i) => *i,
            other => return Err(type_error(format!("shared list indices must be ints, not {}", other.type_name()))),
        };
        let at = if i < 0 { i + len } else { i };
        if at < 0 || at >= len {
            return Err(ErrorValue::new(Kind::Index, format!("shared list index {i} out of range for length {len}")));
        }
        Ok(at as usize)
    }
}

/// Constructors: `queue(n)`, `lock()`, `semaphore(n)`, `condition(m)`,
/// `event()`, `shared(v)`.
pub fn make(kind: HandleKind, args: &[Value]) -> Result<Value, Fault> {
    let made = match kind {
        // `queue("redis://host:6379/jobs")`, `queue("redis://...", 100)`.
        HandleKind::Queue if matches!(args.first(), Some(Value::Str(url)) if url.starts_with("redis://")) => {
            let capacity = queue_capacity(args.get(1))?;
            let url = format::display(&args[0]);
            let queue = RemoteQueue::open(&url, capacity).map_err(|message| ErrorValue::new(Kind::Io, message))?;
            return Ok(Value::RemoteQueue(Arc::new(queue)));
        }
        HandleKind::Queue if args.len() > 1 => {
            return Err(type_error("`queue` takes 0 or 1 arguments but 2 were given")
                .with_help("a queue on a server takes two: queue(\"redis://host:6379/NAME\", capacity)"));
        }
        HandleKind::Queue => {
            let capacity = queue_capacity(args.first())?;
            Queue::new(capacity.map(|n| u32::try_from(n).unwrap_or(u32::MAX - 1))).map(|q| q.0)
        }
        HandleKind::Lock => Lock::new().map(|l| l.0),
        HandleKind::Semaphore => {
            // `semaphore(n)`: n permits, never more; `semaphore(0, 3)` starts
            // empty with room for 3 releases.
            let count = |value: Option<&Value>, default: u32| match value {
                None => Ok(default),
                Some(Value::Int(n)) if *n >= 0 => Ok(u32::try_from(*n).unwrap_or(u32::MAX)),
                Some(Value::Int(n)) => Err(value_error(format!("a semaphore cannot count {n}"))),
                Some(other) => Err(type_error(format!("semaphore takes ints, not {}", other.type_name()))),
            };
            let permits = count(args.first(), 1)?;
            let limit = count(args.get(1), permits.max(1))?;
            if limit < permits {
                return Err(value_error(format!("a semaphore of {permits} cannot be limited to {limit}")));
            }
            Semaphore::new(permits, limit).map(|s| s.0)
        }
        HandleKind::Condition => {
            let lock = match args.first() {
                None => None,
                Some(Value::Handle(h)) if h.kind() == HandleKind::Lock => Some(Lock(h.off())),
                Some(other) => return Err(type_error(format!("condition takes a lock, not {}", other.type_name()))),
            };
            Condition::new(lock).map(|c| c.0)
        }
        HandleKind::Event => Event::new().map(|e| e.0),
        HandleKind::Pipe => {
            let duplex = args.first().is_none_or(Value::truthy);
            let (a, b) = crate::sync::pipe::pipe(duplex).map_err(sync_fault)?;
            let end = |e: PipeEnd| Value::Handle(HandleRef::adopt(Handle::new(HandleKind::Pipe, e.0)));
            return Ok(Value::list(vec![end(a), end(b)]));
        }
        HandleKind::Cell | HandleKind::Array | HandleKind::Map => {
            let value = args.first().cloned().unwrap_or(Value::Nil);
            if let Value::Map(map) = &value {
                let made = crate::sync::dict::SharedMap::new(&super::shared::map_pairs(map)?).map_err(sync_fault)?;
                race::fresh(made.0, 0);
                return Ok(Value::Handle(HandleRef::adopt(Handle::new(HandleKind::Map, made.0))));
            }
            if let Value::List(list) = &value {
                let items = list.lock().clone();
                let encoded = items.iter().map(wire::encode).collect::<Result<Vec<_>, _>>()?;
                let cells = SharedCells::new(&encoded).map_err(sync_fault)?;
                race::fresh(cells.0, encoded.len());
                return Ok(Value::Handle(HandleRef::adopt(Handle::new(HandleKind::Array, cells.0))));
            }
            SharedCells::new(&[wire::encode(&value)?]).map(|c| c.0)
        }
    };
    let off = made.map_err(sync_fault)?;
    race::fresh(off, usize::from(kind == HandleKind::Cell));
    Ok(Value::Handle(HandleRef::adopt(Handle::new(kind, off))))
}

/// A queue's capacity argument: `None` (unbounded), or at least 1.
fn queue_capacity(arg: Option<&Value>) -> Result<Option<u64>, Fault> {
    match arg {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Int(n)) if *n >= 1 => Ok(Some(*n as u64)),
        Some(Value::Int(n)) => Err(value_error(format!("a queue holds at least 1 item, not {n}"))
            .with_help("queue() with no argument is unbounded")),
        Some(other) => Err(type_error(format!("queue capacity must be an int, not {}", other.type_name()))),
    }
}

/// A primitive's handle bits, for the task board (0 for anything else).
fn bits(value: &Value) -> u64 {
    match value {
        Value::Handle(h) => h.to_bits(),
        _ => 0,
    }
}

/// An instant in the run's history (under `--trace`/`--timeline`).
#[inline]
fn mark(what: &'static str, done: bool, span: Span) {
    if done && history::on() {
        history::record(history::Event::Mark { what, span: (span.start, span.end) });
    }
}
