//! Pools: workers made once and reused for every task.
//!
//! Tasks go to the workers through a bounded queue in the shared region
//! and results come back through another: the same path for process and
//! thread workers, so both copy items and results (functions travel by id
//! with copies of what they captured, so lambdas and closures work). A
//! task is a chunk of items, sized so a large input costs few messages;
//! a feeder thread sends chunks as room appears, so a million-item map
//! never has a million messages in flight. A collector thread routes each
//! result to the `map` or future waiting for it. For process pools, a
//! watcher thread waits on the workers' pidfds: a worker that dies fails
//! the task it held (found in its slot) and is replaced.
//!
//! ```text
//! task:   [id, function, 0 (map), [items], first index]  |  [id, function, 1 (call), [args, named], 0]
//! result: [id, first index, [values of the items that succeeded], the error that stopped the chunk, or nil]
//! ```

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::process::Process;
use super::spawn::{Job, fork_task, settle};
use super::task::start_thread_job;
use crate::eval::call::ArgValues;
use crate::eval::{Ctrl, Interp, R, Up, fault_at};
use crate::observe::race;
use crate::resolve::ir::{Block, Pattern};
use crate::runtime::error::{ErrorValue, Fault, Kind, type_error, value_error};
use crate::runtime::format;
use crate::runtime::future::{Batch, FutureCell, ItemResult};
use crate::runtime::pool::{Pool, Sink};
use crate::runtime::progress::{Bar, Progress};
use crate::runtime::task::{Outcome, Task, named};
use crate::runtime::value::{Key, Range, Value};
use crate::runtime::wire;
use crate::sync::SyncError;
use crate::sync::board::{self, Op, What};
use crate::sync::cancel::CancelToken;
use crate::sync::cell::SharedCells;
use crate::sync::gate::start_helper;
use crate::sync::history;
use crate::sync::queue::Queue;
use crate::sync::wait::Wait;
use crate::syntax::Span;

const MAP: i64 = 0;
const CALL: i64 = 1;

/// The items of a `map`: a range stays lazy, anything else is a list.
#[derive(Clone)]
enum Items {
    Range(Range),
    List(Arc<Vec<Value>>),
}

impl Items {
    fn len(&self) -> usize {
        match self {
            Items::Range(r) => r.len(),
            Items::List(l) => l.len(),
        }
    }

    fn get(&self, i: usize) -> Value {
        match self {
            Items::Range(r) => Value::Int(r.get(i)),
            Items::List(l) => l[i].clone(),
        }
    }
}

/// Where a `map` sends each result.
pub(crate) enum Consumer<'a> {
    /// In input order, as a list.
    Ordered,
    /// In completion order, as a list.
    Unordered,
    /// In completion order, through a `for` body.
    Loop(&'a Pattern, &'a Block, Up<'a>),
}

fn closed_error() -> Fault {
    value_error("the pool is closed").with_help("make a new pool, or submit before `close`")
}

fn pool_failure(error: SyncError) -> Fault {
    match error {
        SyncError::Closed => closed_error(),
        _ => ErrorValue::new(Kind::Resource, "the shared memory region is full"),
    }
}

impl<'p> Interp<'p> {
    /// `pool(n)` / `pool(n, threads: true, progress: ...)`, and the pool of
    /// `pool n map`.
    pub(crate) fn make_pool(
        &mut self,
        size: Option<&Value>,
        threads: bool,
        bar: Bar,
        cluster: Option<String>,
        span: Span,
    ) -> R<Arc<Pool>> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let size = match size {
            None | Some(Value::Nil) => cores,
            Some(Value::Int(n)) if *n >= 1 && (*n as usize) <= self.proc.max_tasks => *n as usize,
            Some(Value::Int(n)) => {
                let limit = self.proc.max_tasks;
                return Err(fault_at(value_error(format!("a pool needs 1 to {limit} workers, not {n}")), span));
            }
            Some(other) => {
                return Err(fault_at(type_error(format!("a pool's size is an int, not {}", other.type_name())), span));
            }
        };
        let made = (|| {
            let tasks = Queue::new(Some(size as u32 * 2))?;
            let results = Queue::new(None)?;
            let nil = wire::encode(&Value::Nil).unwrap_or_default();
            let slots = SharedCells::new(&vec![nil; size])?;
            Ok::<_, SyncError>(Pool::new(size, threads, bar, tasks, results, slots))
        })();
        let pool = Arc::new(made.map_err(|e| fault_at(pool_failure(e), span))?);
        if let Some(url) = cluster {
            return self.bridge_pool(pool, &url, threads, span);
        }
        for index in 0..size {
            self.reserve_task(span)?;
            let worker = match threads {
                true => start_thread_job(self.proc, worker_name(index), true, span, {
                    let pool = pool.clone();
                    move |interp: &mut Interp| interp.work_for_pool(&pool, index).map(|_| Value::Nil)
                }),
                false => {
                    let direct = Arc::ptr_eq(&self.task, &self.proc.main_task());
                    self.proc.gate.leave();
                    let job = Job::Worker(pool.clone(), index);
                    let forked = fork_task(self.proc, job, worker_name(index), true, span, direct);
                    self.proc.gate.enter();
                    forked
                }
            };
            match worker {
                Ok(task) => pool.workers.lock().push(task),
                Err(message) => {
                    self.proc.live().fetch_sub(1, Ordering::SeqCst);
                    self.outside_gate(|proc| end_pool(proc, &pool, true));
                    return Err(fault_at(ErrorValue::new(Kind::Resource, message), span));
                }
            }
        }
        let mut helpers = Vec::new();
        let (proc, for_collector) = (self.proc.clone(), pool.clone());
        helpers.push(start_helper(std::thread::Builder::new().name("concsh-pool-results".into()), move || {
            collect(&proc, &for_collector)
        }));
        if !threads {
            let (proc, for_watcher) = (self.proc.clone(), pool.clone());
            helpers.push(start_helper(std::thread::Builder::new().name("concsh-pool-watch".into()), move || {
                watch(&proc, &for_watcher)
            }));
        }
        for helper in helpers {
            match helper {
                Ok(handle) => pool.helpers.lock().push(handle),
                Err(e) => {
                    self.outside_gate(|proc| end_pool(proc, &pool, true));
                    return Err(fault_at(
                        ErrorValue::new(Kind::Resource, format!("cannot start a pool thread: {e}")),
                        span,
                    ));
                }
            }
        }
        self.proc.pools.lock().push(Arc::downgrade(&pool));
        Ok(pool)
    }

    /// A pool whose workers are the cluster's at `url`.
    fn bridge_pool(&mut self, pool: Arc<Pool>, url: &str, threads: bool, span: Span) -> R<Arc<Pool>> {
        let refuse = |message: &str| Err(fault_at(value_error(message.to_string()), span));
        if threads {
            return refuse("a thread pool runs in this process: `cluster:` goes with a process pool");
        }
        if race::on() || crate::observe::explore::on() {
            return refuse("--race and --explore watch this machine's tasks: run cluster pools without them");
        }
        pool.on_cluster.store(true, Ordering::SeqCst);
        match crate::cluster::bridge::start(self.proc, &pool, url) {
            Ok(helpers) => pool.helpers.lock().extend(helpers),
            Err(message) => {
                self.outside_gate(|proc| end_pool(proc, &pool, true));
                return Err(fault_at(ErrorValue::new(Kind::Io, message), span));
            }
        }
        let (proc, for_collector) = (self.proc.clone(), pool.clone());
        let collector = start_helper(std::thread::Builder::new().name("concsh-pool-results".into()), move || {
            collect(&proc, &for_collector)
        });
        match collector {
            Ok(handle) => pool.helpers.lock().push(handle),
            Err(e) => {
                self.outside_gate(|proc| end_pool(proc, &pool, true));
                let error = ErrorValue::new(Kind::Resource, format!("cannot start a pool thread: {e}"));
                return Err(fault_at(error, span));
            }
        }
        self.proc.pools.lock().push(Arc::downgrade(&pool));
        Ok(pool)
    }

    /// The pool a value is, usable by this process.
    fn usable_pool(&self, value: &Value, span: Span) -> R<Arc<Pool>> {
        match value {
            Value::Pool(pool) if pool.owner != nix::unistd::getpid().as_raw() => Err(fault_at(
                value_error("a pool can be used only by the process that made it")
                    .with_help("make the pool in the process that uses it"),
                span,
            )),
            Value::Pool(pool) if pool.is_closed() => Err(fault_at(closed_error(), span)),
            Value::Pool(pool) => Ok(pool.clone()),
            other => Err(fault_at(type_error(format!("expected a pool, not {}", other.type_name())), span)),
        }
    }

    /// A worker's life: take a task, run it, send its result, until the
    /// task queue is closed.
    pub(crate) fn work_for_pool(&mut self, pool: &Pool, index: usize) -> R<()> {
        loop {
            let bytes = match pool.tasks.get(self.wait_in(None, Op::PoolIdle, 0, Span::default())) {
                Ok(bytes) => bytes,
                Err(SyncError::Cancelled) => return Err(Ctrl::Cancelled),
                Err(_) => return Ok(()),
            };
            let mut begins = |id: i64, first: i64| {
                let held = wire::encode(&Value::list(vec![Value::Int(id), Value::Int(first)]));
                if let Ok(held) = held {
                    let _ = pool.slots.store(index, &held);
                }
            };
            let Some(mut reply) =
                self.run_pool_task(race::unstamp(&bytes), &mut begins, &mut |i| pool.set_progress(index, i))?
            else {
                return Ok(());
            };
            race::stamp(&mut reply);
            match pool.results.put(&reply, self.wait(None)) {
                Ok(()) => {}
                Err(SyncError::Cancelled) => return Err(Ctrl::Cancelled),
                Err(_) => return Ok(()),
            }
            let _ = pool.slots.store(index, &wire::encode(&Value::Nil)?);
        }
    }

    /// Runs one pool task (a chunk of a map, or a submitted call): its
    /// reply, `None` if the bytes are not a task. `begins` is told the
    /// task's id and first item, `item` each item as it starts (a local
    /// worker records them, so its death fails the right item).
    pub(crate) fn run_pool_task(
        &mut self,
        bytes: &[u8],
        begins: &mut dyn FnMut(i64, i64),
        item: &mut dyn FnMut(usize),
    ) -> R<Option<Vec<u8>>> {
        let parts = match wire::decode(bytes, &self.tables.functions)? {
            Value::List(parts) => parts.lock().clone(),
            _ => return Ok(None),
        };
        let [Value::Int(id), func, Value::Int(kind), payload, Value::Int(first)] = &parts[..] else {
            return Ok(None);
        };
        begins(*id, *first);
        let calls: Vec<ArgValues> = match (kind, payload) {
            (&MAP, Value::List(items)) => {
                items.lock().iter().map(|item| ArgValues::positional(vec![item.clone()])).collect()
            }
            (&CALL, Value::List(call)) => {
                let call = call.lock().clone();
                let positional = match call.first() {
                    Some(Value::List(args)) => args.lock().to_vec(),
                    _ => Vec::new(),
                };
                let named = match call.get(1) {
                    Some(Value::Map(named)) => {
                        named.lock().iter().map(|(k, v)| (format::display(&k.to_value()).into(), v.clone())).collect()
                    }
                    _ => Vec::new(),
                };
                vec![ArgValues { positional, named }]
            }
            _ => Vec::new(),
        };
        // A chunk runs until an item fails: its values, then that error.
        let mut values = Vec::with_capacity(calls.len());
        let mut failure = Value::Nil;
        for (i, args) in calls.into_iter().enumerate() {
            // The item this worker holds now: if it dies, this one failed.
            item(i);
            let recorded = history::on();
            if recorded {
                let label = format!("{}({})", function_name(func), list_text(&args.positional));
                history::record(history::Event::ItemBegins { label });
            }
            self.point(Span::default());
            let result = self.call_value(func, args, Span::default());
            if recorded {
                history::record(history::Event::ItemEnds);
            }
            self.point(Span::default());
            match result {
                Ok(value) => values.push(value),
                Err(Ctrl::Error(mut error)) => {
                    // The caller's report names the worker and shows this line.
                    let task = &self.task;
                    error.task = Some(named(&format!("{} {}", task.kind.name(), task.name), task.pid()));
                    failure = Value::Error(Arc::new(*error));
                    break;
                }
                Err(other) => return Err(other),
            }
        }
        let reply = Value::list(vec![Value::Int(*id), Value::Int(*first), Value::list(values), failure]);
        let reply = match wire::encode(&reply) {
            Ok(reply) => reply,
            // A result that cannot travel fails its item.
            Err(error) => wire::encode(&Value::list(vec![
                Value::Int(*id),
                Value::Int(*first),
                Value::list(Vec::new()),
                Value::Error(Arc::new(*error)),
            ]))?,
        };
        Ok(Some(reply))
    }

    /// `pool ... map f over items`.
    pub(crate) fn pool_map(
        &mut self,
        size: Option<Value>,
        threads: bool,
        func: Value,
        items: Value,
        consumer: Consumer<'_>,
        span: Span,
    ) -> R<Value> {
        if !matches!(func, Value::Func(_) | Value::Builtin(_)) {
            return Err(fault_at(type_error(format!("{} is not a function", func.type_name())), span));
        }
        let items = match &items {
            Value::Range(r) => Items::Range(**r),
            Value::List(l) => Items::List(Arc::new(l.lock().to_vec())),
            Value::Map(m) => Items::List(Arc::new(m.lock().key_values().collect())),
            Value::Str(s) => Items::List(Arc::new(s.chars().map(|c| Value::Str(c.to_string().into())).collect())),
            other => return Err(fault_at(type_error(format!("cannot map over {}", other.type_name())), span)),
        };
        let (pool, owned) = match &size {
            Some(Value::Pool(_)) => (self.usable_pool(size.as_ref().unwrap_or(&Value::Nil), span)?, false),
            _ => {
                let cluster = (!threads).then(crate::cluster::bridge::default_cluster).flatten();
                (self.make_pool(size.as_ref(), threads, Bar::Plain, cluster, span)?, true)
            }
        };
        let func_bytes = wire::encode(&func).map_err(|e| fault_at(e, span));
        let result = match func_bytes {
            Ok(func_bytes) => self.run_map(&pool, func_bytes, items, consumer, span),
            Err(e) => Err(e),
        };
        if owned {
            let interrupted = matches!(result, Err(Ctrl::Cancelled));
            self.outside_gate(|proc| end_pool(proc, &pool, interrupted || result.is_err()));
        }
        result
    }

    fn run_map(
        &mut self,
        pool: &Arc<Pool>,
        func: Vec<u8>,
        items: Items,
        consumer: Consumer<'_>,
        span: Span,
    ) -> R<Value> {
        let total = items.len();
        let chunk = (total / (pool.size * 4)).clamp(1, 2048);
        let batch = Arc::new(Batch::default());
        let feeder_stop = Arc::new(CancelToken::default());
        // Listed before it starts: items on their way to the workers are progress.
        let (helper_id, pid) = (self.proc.next_task_id(), nix::unistd::getpid().as_raw());
        let listing = board::claim(helper_id, pid, board::Owner::Helper, "pool feeder");
        // What the caller did before the map happens before every item's run.
        let clock = race::clock_now().unwrap_or_default();
        let feeder = {
            let (proc, pool, batch, stop, items) =
                (self.proc.clone(), pool.clone(), batch.clone(), feeder_stop.clone(), items.clone());
            start_helper(std::thread::Builder::new().name("concsh-pool-feed".into()), move || {
                let _listed = listing.map(|claim| claim.adopt(helper_id, pid));
                feed(&proc, &pool, &batch, &stop, (&func, &clock), &items, chunk)
            })
        };
        let feeder = feeder
            .map_err(|e| fault_at(ErrorValue::new(Kind::Resource, format!("cannot start a pool thread: {e}")), span))?;
        let mut ordered: Vec<Value> = Vec::new();
        let mut unordered: Vec<Value> = Vec::new();
        let mut received = 0;
        let mut progress = Progress::new(total, &pool.bar);
        let outcome = 'collect: loop {
            if received == total {
                break Ok(());
            }
            let arrived = match batch.next(self.wait_in(None, Op::PoolResult, 0, span)) {
                Ok(arrived) => arrived,
                Err(_) => break Err(Ctrl::Cancelled),
            };
            batch.consumed(arrived.len());
            if race::on() {
                race::absorb(&std::mem::take(&mut *batch.clock.lock()));
            }
            progress.advance(arrived.len());
            for (index, result) in arrived {
                received += 1;
                let value = match result {
                    Ok(value) => value,
                    // Ended meanwhile (Ctrl-C, a deadlock): a worker stopped
                    // by that end is no failure of the item.
                    Err(_) if self.cancel.is_cancelled() => break 'collect Err(Ctrl::Cancelled),
                    Err(error) => break 'collect Err(item_failed(error, index, &items.get(index), span)),
                };
                match &consumer {
                    Consumer::Ordered => {
                        if ordered.len() < total {
                            ordered.resize(total, Value::Nil);
                        }
                        ordered[index] = value;
                    }
                    Consumer::Unordered => unordered.push(value),
                    Consumer::Loop(pattern, body, up) => match self.loop_pass(pattern, value, body, up) {
                        Ok(true) => {}
                        Ok(false) => break 'collect Ok(()),
                        Err(other) => break 'collect Err(other),
                    },
                }
            }
        };
        drop(progress);
        // Stop sending the rest if the map ends early.
        batch.cancelled.store(true, Ordering::SeqCst);
        feeder_stop.cancel();
        self.outside_gate(|_| feeder.join()).ok();
        outcome?;
        Ok(match consumer {
            Consumer::Ordered => Value::list(ordered),
            Consumer::Unordered => Value::list(unordered),
            Consumer::Loop(..) => Value::Nil,
        })
    }

    /// `submit f(args) to pool`: a future.
    pub(crate) fn submit(&mut self, callee: Value, args: ArgValues, pool: &Value, span: Span) -> R<Value> {
        let pool = self.usable_pool(pool, span)?;
        let future = Arc::new(FutureCell::default());
        let id = pool.expect(Sink::Future(future.clone()));
        let mut named = crate::runtime::value::table(args.named.len());
        for (name, value) in args.named {
            named.insert(Key::Str(name.into()), value);
        }
        let call = Value::list(vec![Value::list(args.positional), Value::map(named)]);
        let message = Value::list(vec![Value::Int(id as i64), callee, Value::Int(CALL), call, Value::Int(0)]);
        let mut bytes = match wire::encode(&message) {
            Ok(bytes) => bytes,
            Err(e) => {
                pool.pending.lock().remove(&id);
                return Err(fault_at(e, span));
            }
        };
        race::stamp(&mut bytes);
        match pool.tasks.put(&bytes, self.wait_in(None, Op::Put, 0, span)) {
            Ok(()) => Ok(Value::Future(future)),
            Err(SyncError::Cancelled) => Err(Ctrl::Cancelled),
            Err(e) => {
                pool.pending.lock().remove(&id);
                Err(fault_at(pool_failure(e), span))
            }
        }
    }

    /// `join f` / `join f timeout s` of a future.
    pub(crate) fn join_future(&mut self, future: &FutureCell, timeout: Option<Duration>, span: Span) -> R<Value> {
        let result = future.wait(self.wait_in(timeout, Op::PoolResult, 0, span));
        if let Ok(Some(_)) = result
            && race::on()
        {
            race::absorb(&future.clock.lock());
        }
        match result {
            Err(_) => Err(Ctrl::Cancelled),
            Ok(None) => Ok(Value::Nil),
            Ok(Some(Ok(value))) => Ok(value),
            // As in a map: the end of the task, not a failure of the future.
            Ok(Some(Err(_))) if self.cancel.is_cancelled() => Err(Ctrl::Cancelled),
            Ok(Some(Err(error))) => {
                let mut failed =
                    ErrorValue::new(Kind::TaskFailed, format!("pool task failed: {}: {}", error.kind, error.message));
                failed.cause = Some(error);
                Err(fault_at(failed, span))
            }
        }
    }

    /// `close pl`: no more tasks; the workers finish what was sent.
    pub(crate) fn close_pool(&mut self, pool: &Pool) {
        pool.closed.store(true, Ordering::SeqCst);
        let _ = pool.tasks.close();
    }

    /// `join pl`: waits until a closed pool's workers have finished.
    pub(crate) fn join_pool(&mut self, pool: &Arc<Pool>, span: Span) -> R<Value> {
        if !pool.is_closed() {
            return Err(fault_at(
                value_error("join of a pool that is still open").with_help("close it first: `close pl; join pl`"),
                span,
            ));
        }
        // A cluster's workers are not ours to join: the pool's tasks are
        // done when every result came back.
        while pool.on_cluster.load(Ordering::SeqCst) && !pool.pending.lock().is_empty() {
            if self.cancel.is_cancelled() {
                return Err(Ctrl::Cancelled);
            }
            self.outside_gate(|_| std::thread::sleep(Duration::from_millis(5)));
        }
        let workers: Vec<Arc<Task>> = pool.workers.lock().clone();
        for worker in workers {
            match worker.child.get() {
                Some(child) => {
                    let wait = self.wait_in(None, Op::JoinProcess, child.pid.as_raw() as u64, span);
                    child.wait_exit(wait).map_err(|_| Ctrl::Cancelled)?;
                    settle(self.proc, &worker);
                }
                None => {
                    worker.wait(self.wait_in(None, Op::JoinThread, worker.id, span)).map_err(|_| Ctrl::Cancelled)?;
                    worker.reap();
                }
            }
        }
        self.outside_gate(|proc| end_pool(proc, pool, false));
        Ok(Value::Nil)
    }

    /// `terminate pl`: workers are ended at once; pending results fail.
    pub(crate) fn terminate_pool(&mut self, pool: &Arc<Pool>) {
        self.outside_gate(|proc| end_pool(proc, pool, true));
    }

    /// Runs `wait` (which blocks without the gate's knowledge: joining
    /// threads, waiting for processes) with this task's pass given back,
    /// so a fork elsewhere in the process is never held up by it.
    fn outside_gate<T>(&self, wait: impl FnOnce(&Arc<Process>) -> T) -> T {
        self.proc.gate.leave();
        let result = wait(self.proc);
        self.proc.gate.enter();
        result
    }

    /// One pass of a `for` body over a streamed result; false to stop.
    fn loop_pass(&mut self, pattern: &Pattern, value: Value, body: &Block, up: Up) -> R<bool> {
        self.bind(pattern, value)?;
        match self.exec_block(body, up) {
            Ok(()) | Err(Ctrl::Continue) => Ok(true),
            Err(Ctrl::Break) => Ok(false),
            Err(other) => Err(other),
        }
    }
}

fn worker_name(index: usize) -> String {
    format!("PoolWorker-{}", index + 1)
}

/// `TaskFailed` for the item a map failed on, naming its index and value.
fn item_failed(error: Arc<ErrorValue>, index: usize, item: &Value, span: Span) -> Ctrl {
    let mut shown = format::repr(item);
    if shown.chars().count() > 60 {
        shown = shown.chars().take(57).collect::<String>() + "...";
    }
    let message = format!("pool task failed on item {index} ({shown}): {}: {}", error.kind, error.message);
    let mut failed = ErrorValue::new(Kind::TaskFailed, message).with_help("the rest of the map was cancelled");
    failed.cause = Some(error);
    fault_at(failed, span)
}

/// How a pool's helper threads wait: for the tasks they serve.
const IDLE: What = What { op: Op::HelperIdle, target: 0, span: (0, 0) };

/// The feeder: sends a map's items in chunks while the task queue has room.
fn feed(
    proc: &Arc<Process>,
    pool: &Arc<Pool>,
    batch: &Arc<Batch>,
    stop: &CancelToken,
    (func, clock): (&[u8], &[u8]),
    items: &Items,
    chunk: usize,
) {
    // Encoding reads lists, which are interpreter state: hold a pass
    // through the fork gate (given back while waiting for room).
    let _pass = proc.gate.pass();
    let kind = wire::encode(&Value::Int(MAP)).unwrap_or_default();
    let mut first = 0;
    // At most this many items are out (queued, running, or waiting to be
    // taken by the map): memory stays bounded however long the input.
    let window = chunk * pool.size * 4;
    while first < items.len() && !batch.cancelled.load(Ordering::SeqCst) {
        let end = (first + chunk).min(items.len());
        if batch.wait_for_room(end, window, Wait::new(stop, None).in_gate(&proc.gate).doing(IDLE)).is_err() {
            break;
        }
        let id = pool.expect(Sink::Batch(batch.clone()));
        let chunk_bytes = match wire::encode(&Value::list((first..end).map(|i| items.get(i)).collect())) {
            Ok(bytes) => bytes,
            Err(error) => {
                pool.pending.lock().remove(&id);
                batch.deliver(vec![(first, Err(Arc::new(*error)))]);
                break;
            }
        };
        let head = [
            wire::encode(&Value::Int(id as i64)).unwrap_or_default(),
            wire::encode(&Value::Int(first as i64)).unwrap_or_default(),
        ];
        let mut message = wire::encode_list(&[&head[0], func, &kind, &chunk_bytes, &head[1]]);
        race::stamp_with(&mut message, clock);
        if pool.tasks.put(&message, Wait::new(stop, None).in_gate(&proc.gate).doing(IDLE)).is_err() {
            pool.pending.lock().remove(&id);
            if !stop.is_cancelled() {
                batch.deliver(vec![(first, Err(Arc::new(*closed_error())))]);
            }
            break;
        }
        first = end;
    }
}

/// The collector: routes each result to where it is awaited.
fn collect(proc: &Arc<Process>, pool: &Arc<Pool>) {
    // Counted on the task board: a result on its way is progress.
    let _listed = board::list_me(proc.next_task_id(), board::Owner::Helper, "pool results");
    let wait = Wait::new(&pool.stop, None).doing(IDLE);
    while let Ok(bytes) = pool.results.get(wait) {
        let (bytes, clock) = race::split(&bytes);
        let Ok(Value::List(parts)) = wire::decode(bytes, &proc.functions.read()) else { continue };
        let parts = parts.lock().clone();
        let [Value::Int(id), Value::Int(first), Value::List(values), failure] = &parts[..] else { continue };
        let first = *first as usize;
        let values = values.lock().clone();
        let failed_at = first + values.len();
        let mut results: Vec<(usize, ItemResult)> =
            values.into_iter().enumerate().map(|(i, value)| (first + i, Ok(value))).collect();
        if let Value::Error(error) = failure {
            results.push((failed_at, Err(error.clone())));
        }
        deliver(pool, *id as u64, results, clock);
    }
}

fn deliver(pool: &Pool, id: u64, results: Vec<(usize, ItemResult)>, clock: &[u8]) {
    let sink = pool.pending.lock().remove(&id);
    match sink {
        Some(Sink::Batch(batch)) => {
            // Before the results: whoever takes them finds the clock.
            if !clock.is_empty() {
                batch.clock.lock().extend_from_slice(clock);
            }
            batch.deliver(results)
        }
        Some(Sink::Future(future)) => {
            if !clock.is_empty() {
                future.clock.lock().extend_from_slice(clock);
            }
            if let Some((_, result)) = results.into_iter().next() {
                future.fill(result);
            }
        }
        None => {}
    }
}

/// The watcher of a process pool: a worker that dies fails the task it
/// held and is replaced.
fn watch(proc: &Arc<Process>, pool: &Arc<Pool>) {
    loop {
        let workers: Vec<Arc<Task>> = pool.workers.lock().clone();
        let mut fds: Vec<PollFd> =
            workers.iter().filter_map(|w| w.child.get()).map(|c| PollFd::new(c.pidfd(), PollFlags::POLLIN)).collect();
        let Some(wake) = pool.stop.wake_fd() else { return };
        fds.push(PollFd::new(wake, PollFlags::POLLIN));
        let _ = poll(&mut fds, PollTimeout::NONE);
        if pool.stop.is_cancelled() {
            return;
        }
        let dead: Vec<usize> =
            (0..workers.len()).filter(|&i| fds[i].revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        for index in dead {
            let worker = &workers[index];
            settle(proc, worker);
            let how = match worker.outcome() {
                Outcome::Signalled(n) => format!("was killed by signal {n}"),
                Outcome::Exited(n) => format!("exited with code {n}"),
                Outcome::Failed(e) => format!("failed: {}: {}", e.kind, e.message),
                _ => "ended".to_string(),
            };
            let held = pool.slots.load(index).ok().and_then(|b| wire::decode(&b, &proc.functions.read()).ok());
            if let Some(Value::List(held)) = held {
                let held = held.lock().clone();
                if let [Value::Int(id), Value::Int(first)] = &held[..] {
                    let failed_at = *first as usize + pool.progress(index);
                    let error = ErrorValue::new(
                        Kind::TaskFailed,
                        format!("pool worker {} {how} while running this task", worker.name),
                    );
                    deliver(pool, *id as u64, vec![(failed_at, Err(Arc::new(*error)))], &[]);
                }
                let _ = pool.slots.store(index, &wire::encode(&Value::Nil).unwrap_or_default());
            }
            if pool.is_closed() {
                continue;
            }
            proc.live().fetch_add(1, Ordering::SeqCst);
            match fork_task(proc, Job::Worker(pool.clone(), index), worker_name(index), true, Span::default(), false) {
                Ok(replacement) => pool.workers.lock()[index] = replacement,
                Err(_) => {
                    proc.live().fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }
}

/// Ends a pool: no more tasks; workers end (at once when `now`); pending
/// results fail; the helper threads stop and are joined.
pub(crate) fn end_pool(proc: &Process, pool: &Pool, now: bool) {
    pool.closed.store(true, Ordering::SeqCst);
    let _ = pool.tasks.close();
    let workers: Vec<Arc<Task>> = pool.workers.lock().clone();
    for worker in &workers {
        if now {
            match worker.child.get() {
                Some(child) if worker.is_alive() => child.signal(nix::sys::signal::Signal::SIGTERM),
                _ => worker.cancel.cancel(),
            }
        }
    }
    let patient = CancelToken::default();
    // With the task queue closed an idle worker leaves at once; one that
    // does not within the grace is killed rather than left to hang the run.
    let grace = if now { Duration::from_secs(2) } else { Duration::from_secs(10) };
    for worker in &workers {
        match worker.child.get() {
            Some(child) => {
                if !child.wait_exit(Wait::new(&patient, Some(grace))).unwrap_or(false) {
                    child.signal(nix::sys::signal::Signal::SIGKILL);
                    let _ = child.wait_exit(Wait::new(&patient, None));
                }
                settle(proc, worker);
            }
            None => {
                let _ = worker.wait(Wait::new(&patient, None));
                worker.reap();
            }
        }
    }
    pool.stop.cancel();
    let _ = pool.results.close();
    for helper in pool.helpers.lock().drain(..) {
        let _ = helper.join();
    }
    pool.fail_pending(Arc::new(*ErrorValue::new(Kind::TaskFailed, "the pool was ended before this task ran")));
}

/// At the end of a run: every pool still open is ended.
pub fn end_pools(proc: &Process) {
    let pools: Vec<_> = proc.pools.lock().drain(..).filter_map(|p| p.upgrade()).collect();
    for pool in pools {
        end_pool(proc, &pool, true);
    }
}

/// `f` for a named function, `fn` for an anonymous one.
fn function_name(func: &Value) -> String {
    match func {
        Value::Func(closure) => closure.def.name.to_string(),
        _ => "fn".into(),
    }
}

/// `1, "a"`: arguments as a pool item's label shows them.
fn list_text(args: &[Value]) -> String {
    args.iter().map(format::repr).collect::<Vec<_>>().join(", ")
}
