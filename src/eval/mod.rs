//! A task's evaluator, [`Interp`]: each task (the main script, each
//! thread) runs one. Function bodies run as bytecode (`crate::vm`); this
//! module holds what the VM and the rest share (frames, calls, operators,
//! builtins, methods, fields and items) and the tree walk of the
//! statements and expressions the VM hands over whole (`try`, `lock`,
//! tasks, queues, pools).
//!
//! Frames live on one value stack: a call pushes the arguments, grows the
//! stack by the callee's frame size and addresses registers as `base +
//! index`, so a call allocates nothing. The running closure's upvalues
//! travel as a slice, which keeps reference counts of shared objects out
//! of the hot path (two threads calling one function never contend on it).
//! The tree walk checks the cancel flag before every statement.

mod builtins;
pub(crate) mod call;
mod control;
mod iter;
mod methods;
pub(crate) mod ops;
mod programs;
mod race;
mod shared;
mod suggest;
mod sync_ops;

use std::sync::Arc;

pub use crate::observe::deadlock::{Ends, Watch, deadlocked, take_deadlocked};
pub use crate::observe::dump::{ask_where, dump};
pub use crate::observe::trace::{Recording, write_part};
pub use crate::tasks::process::{DEFAULT_MAX_TASKS, Process, Tables};
pub use crate::tasks::task::{finish_tasks, reap_exited};
pub use control::{Ctrl, R};
pub use methods::members;

use crate::observe::race::Access;
use crate::resolve::ir::*;
use crate::runtime::error::{ErrorValue, Fault, Kind, MAX_LEN, TraceEntry, too_large};
use crate::runtime::format;
use crate::runtime::task::Task;
use crate::runtime::value::{Closure, Key, VarCell};
use crate::runtime::{Str, Value};
use crate::sync::board::{Op, What};
use crate::sync::cancel::CancelToken;
use crate::sync::wait::Wait;
use crate::syntax::Span;

/// Deeper than any sensible recursion, far shallower than the native stack
/// the evaluator runs on (see `cli.rs`).
pub const MAX_DEPTH: usize = 10_000;

/// A value read for a moment (see [`Interp::subject`]).
pub(crate) enum Subject<'p> {
    Borrowed(&'p Value),
    Owned(Value),
}

impl std::ops::Deref for Subject<'_> {
    type Target = Value;

    fn deref(&self) -> &Value {
        match self {
            Subject::Borrowed(value) => value,
            Subject::Owned(value) => value,
        }
    }
}

/// One task's evaluator.
pub struct Interp<'p> {
    pub proc: &'p Arc<Process>,
    /// The process's tables as they were when this evaluator started.
    pub(crate) tables: &'p Tables,
    /// The task this evaluator runs.
    pub(crate) task: Arc<Task>,
    /// The task's cancel token (Ctrl-C, `terminate`).
    pub(crate) cancel: Arc<CancelToken>,
    pub(crate) stack: crate::vm::values::ValueStack,
    pub(crate) base: usize,
    pub(crate) depth: usize,
    /// How low this thread's native stack may go (`runtime::stack`).
    stack_floor: usize,
    /// `--race` is on: every read and write is told to the detector.
    pub(crate) racing: bool,
    /// Maps' functions this task called as methods.
    pub(crate) methods: crate::vm::methods::MethodCache,
    /// The dispatch loop's stack of frames, kept for its next run.
    pub(crate) spare_frames: crate::vm::SpareFrames,
}

pub(crate) type Up<'a> = &'a [Arc<VarCell>];

impl<'p> Interp<'p> {
    /// The evaluator of the process's main task.
    pub fn new(proc: &'p Arc<Process>, tables: &'p Tables) -> Interp<'p> {
        Interp::for_task(proc, tables, proc.main_task())
    }

    /// The evaluator of `task`, a task of `proc`, with `tables` taken from it.
    pub fn for_task(proc: &'p Arc<Process>, tables: &'p Tables, task: Arc<Task>) -> Interp<'p> {
        let cancel = task.cancel.clone();
        let stack_floor = crate::runtime::stack::floor();
        // A controlled run schedules at the accesses the detector watches.
        let racing = crate::observe::race::checking() || crate::observe::explore::on();
        Interp {
            proc,
            tables,
            task,
            cancel,
            stack: crate::vm::values::ValueStack::default(),
            base: 0,
            depth: 0,
            stack_floor,
            racing,
            methods: Default::default(),
            spare_frames: Default::default(),
        }
    }

    /// The task was cancelled, or asked to pause for a fork: a pause steps
    /// out of the fork gate and back in (waiting while the fork happens).
    #[cold]
    pub(crate) fn attend(&mut self, span: crate::syntax::Span) -> R<()> {
        if self.cancel.is_cancelled() {
            return Err(Ctrl::Cancelled);
        }
        if self.cancel.take_where() {
            crate::sync::board::at((span.start, span.end));
        }
        if self.cancel.take_signal() {
            crate::signals::listen_now();
        }
        if self.cancel.is_paused() {
            // Cleared before stepping out: a fork that starts later sets it again.
            self.cancel.resume();
            self.proc.gate.leave();
            self.proc.gate.enter();
        }
        Ok(())
    }

    /// The text `print`, `str` and interpolation give `value`: given up
    /// past the size limit, and when this task is cancelled.
    pub(crate) fn text_of(&self, value: &Value) -> R<String> {
        format::display_checked(value, &|| self.cancel.is_cancelled()).map_err(|why| match why {
            format::Unprintable::TooLarge => Ctrl::Error(too_large("text")),
            format::Unprintable::Stopped => Ctrl::Cancelled,
        })
    }

    /// A wait limited by `timeout`, this task's cancel token and the gate.
    pub(crate) fn wait(&self, timeout: Option<std::time::Duration>) -> Wait<'_> {
        Wait::new(&self.cancel, timeout).in_gate(&self.proc.gate)
    }

    /// A scheduling point of a controlled run (`--explore`) at `span`.
    #[inline]
    pub(crate) fn point(&self, span: crate::syntax::Span) {
        crate::observe::explore::point(span, Some(&self.proc.gate));
    }

    /// A wait in operation `op` on `target` at `span`, as the task board
    /// tells it (deadlock reports, task dumps).
    pub(crate) fn wait_in(
        &self,
        timeout: Option<std::time::Duration>,
        op: Op,
        target: u64,
        span: crate::syntax::Span,
    ) -> Wait<'_> {
        self.wait(timeout).doing(What { op, target, span: (span.start, span.end) })
    }

    /// Runs a function of no arguments (the script's top level) to its end.
    pub fn run_main(&mut self, main: &FnDef) -> R<Value> {
        let base = self.stack.len();
        self.enter(main, &[], base, main.span, false)
    }

    pub(crate) fn exec_block(&mut self, block: &[Stmt], up: Up) -> R<()> {
        for stmt in block {
            self.exec(stmt, up)?;
        }
        Ok(())
    }

    pub(crate) fn exec(&mut self, stmt: &Stmt, up: Up) -> R<()> {
        if self.cancel.needs_attention() {
            self.attend(stmt.span)?;
        }
        match &stmt.kind {
            StmtKind::Expr(e) => {
                self.eval(e, up)?;
            }
            StmtKind::Let(pattern, value) => {
                let value = self.eval(value, up)?;
                self.bind(pattern, value)?;
            }
            StmtKind::Fn(binding, def) => {
                // A local function may call itself: its cell exists before
                // the closure that captures it.
                if let Binding::Cell(slot) | Binding::FixedCell(slot) = binding {
                    self.stack[self.base + *slot as usize] = Value::Cell(Arc::default());
                    let closure = self.closure(def, up);
                    self.assign_local_cell(*slot, closure, stmt.span);
                } else {
                    let closure = self.closure(def, up);
                    self.bind_one(*binding, closure);
                }
            }
            StmtKind::Assign(place, value) => {
                let value = self.eval(value, up)?;
                self.assign(place, value, up, stmt.span)?;
            }
            StmtKind::OpAssign(place, op, value) => self.op_assign(place, *op, value, up, stmt.span)?,
            StmtKind::If(branches, otherwise) => {
                for (cond, body) in branches {
                    if self.condition(cond, up)? {
                        return self.exec_block(body, up);
                    }
                }
                if let Some(body) = otherwise {
                    return self.exec_block(body, up);
                }
            }
            StmtKind::While(cond, body) => {
                while self.condition(cond, up)? {
                    // An empty body has no statement to stop at: `while true { }`
                    // must still answer Ctrl-C, `terminate` and a fork.
                    if body.is_empty() && self.cancel.needs_attention() {
                        self.attend(stmt.span)?;
                    }
                    match self.exec_block(body, up) {
                        Ok(()) | Err(Ctrl::Continue) => {}
                        Err(Ctrl::Break) => break,
                        Err(other) => return Err(other),
                    }
                }
            }
            // `for v in pool ... map unordered f over xs`: results stream in.
            StmtKind::For(pattern, iterable, body)
                if matches!(&iterable.kind, ExprKind::PoolMap { unordered: true, .. }) =>
            {
                let ExprKind::PoolMap { size, threads, func, items, .. } = &iterable.kind else { unreachable!() };
                let size = match size {
                    Some(size) => Some(self.eval(size, up)?),
                    None => None,
                };
                let func = self.eval(func, up)?;
                let items = self.eval(items, up)?;
                let consumer = crate::tasks::pool::Consumer::Loop(pattern, body, up);
                self.pool_map(size, *threads, func, items, consumer, iterable.span)?;
            }
            StmtKind::For(pattern, iterable, body) => {
                let value = self.eval(iterable, up)?;
                self.for_loop(pattern, value, body, up, iterable.span)?;
            }
            StmtKind::Return(value) => {
                let value = match value {
                    Some(v) => self.eval(v, up)?,
                    None => Value::Nil,
                };
                return Err(Ctrl::Return(value));
            }
            StmtKind::Break => return Err(Ctrl::Break),
            StmtKind::Continue => return Err(Ctrl::Continue),
            StmtKind::Try { body, catch, finally } => return self.exec_try(body, catch, finally, up),
            StmtKind::Throw(value) => {
                let value = self.eval(value, up)?;
                return Err(Ctrl::Error(thrown(value, stmt.span)));
            }
            StmtKind::Put(value, queue, limit) => {
                let value = self.eval(value, up)?;
                let queue = self.subject(queue, up)?;
                let timeout = self.limit(limit, up)?;
                self.put(value, &queue, timeout, stmt.span)?;
            }
            StmtKind::LockBlock(target, body) => self.lock_block(target, body, up)?,
            StmtKind::Release(target) => {
                let target = self.subject(target, up)?;
                self.release(&target, stmt.span)?;
            }
            StmtKind::Close(target) => match self.eval(target, up)? {
                Value::Pool(pool) => self.close_pool(&pool),
                target => self.close(&target, stmt.span)?,
            },
            StmtKind::Terminate(target) => match self.eval(target, up)? {
                Value::Pool(pool) => self.terminate_pool(&pool),
                target => self.terminate(&target, stmt.span)?,
            },
            StmtKind::Set(target) | StmtKind::Clear(target) => {
                let event = self.subject(target, up)?;
                self.set_event(&event, matches!(stmt.kind, StmtKind::Set(_)), stmt.span)?;
            }
            StmtKind::Notify(target, all) => {
                let target = self.subject(target, up)?;
                self.notify(&target, *all, stmt.span)?;
            }
        }
        Ok(())
    }

    fn exec_try(
        &mut self,
        body: &[Stmt],
        catch: &Option<Catch<Binding, Block>>,
        finally: &Option<Block>,
        up: Up,
    ) -> R<()> {
        let result = match (self.exec_block(body, up), catch) {
            (Err(Ctrl::Error(error)), Some(catch)) if catch.catches == Catches::Errors => {
                self.handle(catch, *error, up)
            }
            (Err(Ctrl::Cancelled), Some(catch)) if self.cancelled_by(catch.catches) => {
                let terminate = catch.catches == Catches::Terminated;
                // The cancel ends here: this task goes on, and the run
                // ends as if the signal had not come.
                self.cancel.recover();
                crate::signals::handled(terminate);
                let error = match terminate {
                    true => ErrorValue::new(Kind::Terminated, "the task was terminated"),
                    false => ErrorValue::new(Kind::Interrupted, "interrupted by Ctrl-C"),
                };
                self.handle(catch, *error, up)
            }
            (other, _) => other,
        };
        if let Some(finally) = finally {
            // After Ctrl-C or `terminate` too, within the grace period.
            let shielded = matches!(result, Err(Ctrl::Cancelled)) && self.cancel.shield();
            let ran = self.exec_block(finally, up);
            if shielded {
                self.cancel.unshield();
            }
            // A `return`, `break` or error inside `finally` wins.
            ran?;
        }
        result
    }

    /// Whether this task's cancel is what `catches` names: a Ctrl-C, or a
    /// `terminate` (of this thread, or SIGTERM to this process).
    fn cancelled_by(&self, catches: Catches) -> bool {
        match catches {
            Catches::Errors => false,
            Catches::Interrupted => crate::signals::interrupted(),
            Catches::Terminated => self.cancel.is_terminated() || crate::signals::terminated(),
        }
    }

    /// Runs a `catch` block with `error` bound to its name.
    fn handle(&mut self, catch: &Catch<Binding, Block>, error: ErrorValue, up: Up) -> R<()> {
        if let Some(binding) = catch.name {
            self.bind_one(binding, Value::Error(Arc::new(error)));
        }
        self.exec_block(&catch.block, up)
    }

    /// Binds a `let`/`for` pattern.
    pub(crate) fn bind(&mut self, pattern: &Pattern, value: Value) -> R<()> {
        match pattern {
            Pattern::Bind(binding) => {
                self.bind_one(*binding, value);
                Ok(())
            }
            Pattern::List(patterns, span) => {
                let items = match &value {
                    Value::List(list) => list.lock().clone(),
                    other => {
                        let message = format!("cannot unpack {} into {} names", other.type_name(), patterns.len());
                        return Err(fault_at(ErrorValue::new(Kind::Type, message), *span));
                    }
                };
                if items.len() != patterns.len() {
                    let message =
                        format!("cannot unpack a list of {} items into {} names", items.len(), patterns.len());
                    return Err(fault_at(ErrorValue::new(Kind::Value, message), *span));
                }
                for (pattern, item) in patterns.iter().zip(items) {
                    self.bind(pattern, item)?;
                }
                Ok(())
            }
        }
    }

    pub(crate) fn bind_one(&mut self, binding: Binding, value: Value) {
        match binding {
            Binding::Local(slot) => self.stack[self.base + slot as usize] = value,
            Binding::Cell(slot) | Binding::FixedCell(slot) => {
                let cell = VarCell::bound(value, matches!(binding, Binding::FixedCell(_)));
                self.stack[self.base + slot as usize] = Value::Cell(Arc::new(cell));
            }
            Binding::Global(i) => *self.tables.globals[i as usize].lock() = value,
            // A top-level `let` runs once; there is nothing to overwrite.
            Binding::Fixed(i) => {
                let _ = self.proc.fixed[i as usize].set(value);
            }
        }
    }

    pub(crate) fn assign_local_cell(&mut self, slot: u32, value: Value, span: crate::syntax::Span) {
        match &self.stack[self.base + slot as usize] {
            Value::Cell(cell) => {
                if self.racing {
                    self.race_cell(None, cell, Access::Write, span);
                }
                *cell.lock() = value
            }
            _ => self.stack[self.base + slot as usize] = value,
        }
    }

    /// The cell a captured local of this frame lives in.
    fn local_cell_of(&self, slot: u32, span: crate::syntax::Span) -> R<&Arc<VarCell>> {
        match &self.stack[self.base + slot as usize] {
            Value::Cell(cell) => Ok(cell),
            _ => Err(internal("a captured variable without its cell", span)),
        }
    }

    /// The value of a captured local of this frame.
    pub(crate) fn local_cell(&self, slot: u32, span: crate::syntax::Span) -> R<Value> {
        let cell = self.local_cell_of(slot, span)?;
        if self.racing {
            self.race_cell(None, cell, Access::Read, span);
        }
        Ok(cell.read())
    }

    /// A global's value, once its `let` has run.
    pub(crate) fn global(&self, i: u32, span: crate::syntax::Span) -> R<Value> {
        if self.racing {
            self.race_cell(Some(i), &self.tables.globals[i as usize], Access::Read, span);
        }
        let value = self.tables.globals[i as usize].lock().clone();
        if matches!(value, Value::Unset) {
            return Err(unset_global(self.proc, i, span));
        }
        Ok(value)
    }

    /// Where an error happened: `e.line` (nil without one), `e.file` (the
    /// script), `e.trace` (the calls it unwound through, innermost last,
    /// each `{"function": name, "line": n}` at its call).
    fn error_place(&self, e: &ErrorValue, name: &str) -> Value {
        let source = self.proc.source.read();
        let line = |at: u32| Value::Int(source.line(at) as i64);
        match name {
            "line" => e.span.map_or(Value::Nil, |span| line(span.start)),
            "file" => Value::str(e.span.map_or(&*source.name, |span| source.file(span.start))),
            _ => Value::list(
                e.trace
                    .iter()
                    .rev()
                    .map(|entry| {
                        let mut call = crate::runtime::value::table(2);
                        call.insert(Key::Str("function".into()), Value::str(&entry.function));
                        call.insert(Key::Str("line".into()), line(entry.call.start));
                        Value::map(call)
                    })
                    .collect(),
            ),
        }
    }

    /// The object of a field access or a sync statement. A set-once
    /// global is borrowed, not cloned: cloning a primitive or a map bumps a
    /// reference count that every thread using it writes to.
    pub(crate) fn subject(&mut self, expr: &Expr, up: Up) -> R<Subject<'p>> {
        if let ExprKind::Fixed(i) = expr.kind
            && let Some(value) = self.proc.fixed[i as usize].get()
        {
            return Ok(Subject::Borrowed(value));
        }
        self.eval(expr, up).map(Subject::Owned)
    }

    /// A global set once, once its `let` has run.
    pub(crate) fn fixed(&self, i: u32, span: crate::syntax::Span) -> R<Value> {
        match self.proc.fixed[i as usize].get() {
            Some(value) => Ok(value.clone()),
            None => Err(unset_global(self.proc, i, span)),
        }
    }

    /// A top-level function as a value.
    pub(crate) fn func(&self, i: u32, span: crate::syntax::Span) -> R<Value> {
        match &self.tables.funcs[i as usize] {
            Some(closure) => Ok(Value::Func(closure.clone())),
            None => Err(unset_global(self.proc, i, span)),
        }
    }

    /// `x op= rhs` on a captured local of this frame, under its cell's lock.
    pub(crate) fn update_local_cell(&self, slot: u32, op: BinOp, rhs: &Value, span: crate::syntax::Span) -> R<()> {
        let cell = self.local_cell_of(slot, span)?;
        if self.racing {
            self.race_cell(None, cell, Access::Update, span);
        }
        ops::update(op, &mut cell.lock(), rhs).map_err(|e| fault_at(e, span))
    }

    /// `x op= rhs` on a global, under its lock, once its `let` has run.
    pub(crate) fn update_global(&self, i: u32, op: BinOp, rhs: &Value, span: crate::syntax::Span) -> R<()> {
        if self.racing {
            self.race_cell(Some(i), &self.tables.globals[i as usize], Access::Update, span);
        }
        let mut current = self.tables.globals[i as usize].lock();
        if matches!(*current, Value::Unset) {
            drop(current);
            return Err(unset_global(self.proc, i, span));
        }
        ops::update(op, &mut current, rhs).map_err(|e| fault_at(e, span))
    }

    /// `x = value` on a global.
    pub(crate) fn assign_global(&self, i: u32, value: Value, span: crate::syntax::Span) {
        if self.racing {
            self.race_cell(Some(i), &self.tables.globals[i as usize], Access::Write, span);
        }
        *self.tables.globals[i as usize].lock() = value;
    }

    fn assign(&mut self, place: &Place, value: Value, up: Up, span: crate::syntax::Span) -> R<()> {
        match place {
            Place::Local(slot) => self.stack[self.base + *slot as usize] = value,
            Place::LocalCell(slot) => self.assign_local_cell(*slot, value, span),
            Place::Upvalue(i) => {
                if self.racing {
                    self.race_cell(None, &up[*i as usize], Access::Write, span);
                }
                *up[*i as usize].lock() = value
            }
            Place::Global(i) => self.assign_global(*i, value, span),
            Place::Index(base, index) => {
                let base = self.eval(base, up)?;
                let index = self.eval(index, up)?;
                self.set_index(&base, &index, value, span).map_err(|e| fault_at(e, span))?;
            }
            Place::Field(base, name) => {
                let base = self.subject(base, up)?;
                self.set_field(&base, name, value, span).map_err(|e| fault_at(e, span))?;
            }
        }
        Ok(())
    }

    /// `place op= value`: the place is evaluated once (`xs[f()] += 1`
    /// calls `f` once) and, for a shared cell, updated under its lock.
    fn op_assign(&mut self, place: &Place, op: BinOp, value: &Expr, up: Up, span: crate::syntax::Span) -> R<()> {
        let at = |e| fault_at(e, span);
        match place {
            Place::Local(slot) => {
                let i = self.base + *slot as usize;
                if let (Some(y), Value::Int(x), BinOp::Add | BinOp::Sub) = (self.int_leaf(value), &self.stack[i], op) {
                    let result = if op == BinOp::Add { x.checked_add(y) } else { x.checked_sub(y) };
                    self.stack[i] = Value::Int(result.ok_or_else(|| at(crate::runtime::error::overflow()))?);
                    return Ok(());
                }
                let rhs = self.operand(value, up)?;
                // `i += 1` on an int updates the slot in place.
                if let (Value::Int(x), Value::Int(y), BinOp::Add | BinOp::Sub) = (&mut self.stack[i], &rhs, op) {
                    let sum = if op == BinOp::Add { x.checked_add(*y) } else { x.checked_sub(*y) };
                    *x = sum.ok_or_else(|| at(crate::runtime::error::overflow()))?;
                    return Ok(());
                }
                ops::update(op, &mut self.stack[i], &rhs).map_err(at)?;
            }
            Place::LocalCell(slot) => {
                let rhs = self.eval(value, up)?;
                self.update_local_cell(*slot, op, &rhs, span)?;
            }
            Place::Upvalue(i) => {
                let rhs = self.eval(value, up)?;
                if self.racing {
                    self.race_cell(None, &up[*i as usize], Access::Update, span);
                }
                let mut current = up[*i as usize].lock();
                ops::update(op, &mut current, &rhs).map_err(at)?;
            }
            Place::Global(i) => {
                let rhs = self.eval(value, up)?;
                self.update_global(*i, op, &rhs, span)?;
            }
            Place::Index(base, index) => {
                let base = self.eval(base, up)?;
                let index = self.eval(index, up)?;
                let rhs = self.eval(value, up)?;
                self.update_item(&base, &index, op, &rhs, span).map_err(at)?;
            }
            Place::Field(base, name) => {
                let base = self.subject(base, up)?;
                let rhs = self.eval(value, up)?;
                self.update_field(&base, name, op, &rhs, span).map_err(at)?;
            }
        }
        Ok(())
    }

    /// `base[index] op= rhs`: in one step under the container's lock for
    /// scalars, else read, compute and write back.
    pub(crate) fn update_item(
        &self,
        base: &Value,
        index: &Value,
        op: BinOp,
        rhs: &Value,
        span: Span,
    ) -> Result<(), Fault> {
        if self.racing && !matches!(base, Value::Handle(_)) {
            self.race_item(base, index, Access::Update, span);
        }
        if let Some(done) = ops::update_in(base, ops::Slot::Index(index), op, rhs) {
            return done;
        }
        let current = self.index(base, index, span)?;
        let new = ops::binary(op, &current, rhs)?;
        self.set_index(base, index, new, span)
    }

    /// `base.name op= rhs`, as [`Interp::update_item`].
    pub(crate) fn update_field(
        &self,
        base: &Value,
        name: &Str,
        op: BinOp,
        rhs: &Value,
        span: Span,
    ) -> Result<(), Fault> {
        if self.racing && !matches!(base, Value::Handle(_)) {
            self.race_field(base, name, Access::Update, span);
        }
        if let Some(done) = ops::update_in(base, ops::Slot::Field(name), op, rhs) {
            return done;
        }
        let current = self.field(base, name, span)?;
        let new = ops::binary(op, &current, rhs)?;
        self.set_field(base, name, new, span)
    }

    /// Evaluates an operand, handling the commonest leaves (a local, a
    /// constant) here without a recursive call.
    #[inline(always)]
    fn operand(&mut self, expr: &Expr, up: Up) -> R<Value> {
        match &expr.kind {
            ExprKind::Local(slot) => Ok(self.stack[self.base + *slot as usize].clone()),
            ExprKind::Int(n) => Ok(Value::Int(*n)),
            // `n - 1`, `i + j`: int arithmetic on two leaves, inline.
            ExprKind::Binary(op @ (BinOp::Add | BinOp::Sub), lhs, rhs) => {
                if let (Some(a), Some(b)) = (self.int_leaf(lhs), self.int_leaf(rhs)) {
                    let result = if *op == BinOp::Add { a.checked_add(b) } else { a.checked_sub(b) };
                    if let Some(n) = result {
                        return Ok(Value::Int(n));
                    }
                }
                self.eval(expr, up)
            }
            _ => self.eval(expr, up),
        }
    }

    /// An operand that may be a call of a top-level function (`f(n - 1) +
    /// f(n - 2)`), which goes straight to the call.
    #[inline(always)]
    fn operand_or_call(&mut self, expr: &Expr, up: Up) -> R<Value> {
        match &expr.kind {
            ExprKind::CallFunc(global, args) => self.call_func(*global, args, up, expr.span),
            _ => self.operand(expr, up),
        }
    }

    fn call_func(&mut self, global: u32, args: &Args, up: Up, span: crate::syntax::Span) -> R<Value> {
        let tables = self.tables;
        let Some(closure) = &tables.funcs[global as usize] else {
            return Err(unset_global(self.proc, global, span));
        };
        self.call_args(&closure.def, &closure.upvalues, args, up, span)
    }

    /// The int a leaf operand holds, read in place (no clone, no drop).
    #[inline(always)]
    fn int_leaf(&self, expr: &Expr) -> Option<i64> {
        match &expr.kind {
            ExprKind::Int(n) => Some(*n),
            ExprKind::Local(slot) => match self.stack[self.base + *slot as usize] {
                Value::Int(n) => Some(n),
                _ => None,
            },
            _ => None,
        }
    }

    /// Evaluates a condition. Comparisons of two int leaves, the usual loop
    /// and `if` test, are answered inline without building a bool value.
    #[inline(always)]
    fn condition(&mut self, expr: &Expr, up: Up) -> R<bool> {
        if let ExprKind::Binary(op, lhs, rhs) = &expr.kind
            && let (Some(a), Some(b)) = (self.int_leaf(lhs), self.int_leaf(rhs))
        {
            match op {
                BinOp::Lt => return Ok(a < b),
                BinOp::Le => return Ok(a <= b),
                BinOp::Gt => return Ok(a > b),
                BinOp::Ge => return Ok(a >= b),
                BinOp::Eq => return Ok(a == b),
                BinOp::Ne => return Ok(a != b),
                _ => {}
            }
        }
        self.condition_value(expr, up)
    }

    #[inline(never)]
    fn condition_value(&mut self, expr: &Expr, up: Up) -> R<bool> {
        Ok(self.eval(expr, up)?.truthy())
    }

    pub fn eval(&mut self, expr: &Expr, up: Up) -> R<Value> {
        Ok(match &expr.kind {
            ExprKind::Local(slot) => self.stack[self.base + *slot as usize].clone(),
            ExprKind::Int(n) => Value::Int(*n),
            ExprKind::Binary(op, lhs, rhs) => {
                let lhs = self.operand_or_call(lhs, up)?;
                let rhs = self.operand_or_call(rhs, up)?;
                return ops::binary(*op, &lhs, &rhs).map_err(|e| fault_at(e, expr.span));
            }
            ExprKind::CallFunc(global, args) => return self.call_func(*global, args, up, expr.span),
            ExprKind::LocalCell(slot) => self.local_cell(*slot, expr.span)?,
            ExprKind::Upvalue(i) => {
                if self.racing {
                    self.race_cell(None, &up[*i as usize], Access::Read, expr.span);
                }
                up[*i as usize].read()
            }
            ExprKind::Float(f) => Value::Float(*f),
            ExprKind::Str(s) => Value::Str(s.clone()),
            ExprKind::Bool(b) => Value::Bool(*b),
            ExprKind::Nil => Value::Nil,
            ExprKind::Fixed(i) => self.fixed(*i, expr.span)?,
            ExprKind::Global(i) => self.global(*i, expr.span)?,
            ExprKind::And(lhs, rhs) => {
                let lhs = self.eval(lhs, up)?;
                if !lhs.truthy() {
                    return Ok(lhs);
                }
                return self.eval(rhs, up);
            }
            ExprKind::Or(lhs, rhs) => {
                let lhs = self.eval(lhs, up)?;
                if lhs.truthy() {
                    return Ok(lhs);
                }
                return self.eval(rhs, up);
            }
            ExprKind::Index(base, index) => {
                let base = self.eval(base, up)?;
                let index = self.eval(index, up)?;
                return self.index(&base, &index, expr.span).map_err(|e| fault_at(e, expr.span));
            }
            ExprKind::Field(base, name) => {
                let base = self.subject(base, up)?;
                return self.field(&base, name, expr.span).map_err(|e| fault_at(e, expr.span));
            }
            ExprKind::Call(callee, args) => {
                let callee = self.eval(callee, up)?;
                return self.call_value_args(&callee, args, up, expr.span);
            }
            _ => return self.eval_rare(expr, up),
        })
    }

    /// The less frequent expressions, kept out of [`Interp::eval`] so that
    /// its stack frame (paid on every call) stays small.
    #[inline(never)]
    fn eval_rare(&mut self, expr: &Expr, up: Up) -> R<Value> {
        Ok(match &expr.kind {
            ExprKind::Func(i) => self.func(*i, expr.span)?,
            ExprKind::Slice(base, parts) => {
                let base = self.eval(base, up)?;
                let mut bounds = [Value::Nil, Value::Nil, Value::Nil];
                for (bound, part) in bounds.iter_mut().zip(parts.iter()) {
                    if let Some(part) = part {
                        *bound = self.eval(part, up)?;
                    }
                }
                if self.racing {
                    self.race_slice(&base, &bounds, expr.span);
                }
                let [start, stop, step] = &bounds;
                ops::slice(&base, start, stop, step).map_err(|e| fault_at(e, expr.span))?
            }
            ExprKind::Builtin(b) => Value::Builtin(*b),
            ExprKind::Interp(parts) => {
                let mut text = String::new();
                for part in parts {
                    match part {
                        InterpPart::Text(t) => text.push_str(t),
                        InterpPart::Expr(e, spec) => {
                            let value = self.eval(e, up)?;
                            match spec {
                                Some(spec) if spec.width > MAX_LEN => return Err(too_large("string").into()),
                                Some(spec) => text.push_str(&format::with_spec(&value, spec)),
                                None => text.push_str(&self.text_of(&value)?),
                            }
                        }
                    }
                    if text.len() > MAX_LEN {
                        return Err(too_large("string").into());
                    }
                }
                Value::Str(text.into())
            }
            ExprKind::List(items) => {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    list.push(self.eval(item, up)?);
                }
                Value::list(list)
            }
            ExprKind::Map(entries) => {
                let mut map = crate::runtime::value::table(entries.len());
                for (k, v) in entries {
                    let key = self.eval(k, up)?;
                    let key = Key::from_value(&key).ok_or_else(|| fault_at(ops::unhashable(&key), k.span))?;
                    map.insert(key, self.eval(v, up)?);
                }
                Value::map(map)
            }
            ExprKind::Lambda(def) => self.closure(def, up),
            ExprKind::Unary(op, operand) => {
                let value = self.eval(operand, up)?;
                return ops::unary(*op, &value).map_err(|e| fault_at(e, expr.span));
            }
            ExprKind::CallBuiltin(builtin, args) => {
                let args = self.eval_args(args, up)?;
                return self.builtin(*builtin, args, expr.span).map_err(|c| c.at(expr.span));
            }
            ExprKind::Method(recv, name, args) => {
                let recv = self.eval(recv, up)?;
                let args = self.eval_args(args, up)?;
                return self.method(&recv, name, args, expr.span).map_err(|c| c.at(expr.span));
            }
            ExprKind::Task { process, daemon, target, name } => {
                return self.start_task(*process, *daemon, target, name.as_deref(), up, expr.span);
            }
            ExprKind::Join(target, timeout) => {
                let target = self.eval(target, up)?;
                let timeout = self.optional_timeout(timeout.as_deref(), up)?;
                return match &target {
                    Value::Future(future) => self.join_future(future, timeout, expr.span),
                    Value::Pool(pool) => self.join_pool(pool, expr.span),
                    _ => self.join(&target, timeout, expr.span),
                };
            }
            ExprKind::PoolMap { size, threads, unordered, func, items } => {
                let size = match size {
                    Some(size) => Some(self.eval(size, up)?),
                    None => None,
                };
                let func = self.eval(func, up)?;
                let items = self.eval(items, up)?;
                let consumer = if *unordered {
                    crate::tasks::pool::Consumer::Unordered
                } else {
                    crate::tasks::pool::Consumer::Ordered
                };
                return self.pool_map(size, *threads, func, items, consumer, expr.span);
            }
            ExprKind::Submit { callee, args, pool } => {
                let callee = self.eval(callee, up)?;
                let args = self.eval_args(args, up)?;
                let pool = self.eval(pool, up)?;
                return self.submit(callee, args, &pool, expr.span);
            }
            ExprKind::Wait(target, timeout) => {
                let target = self.subject(target, up)?;
                let timeout = self.optional_timeout(timeout.as_deref(), up)?;
                Value::Bool(self.wait_on(&target, timeout, expr.span)?)
            }
            ExprKind::Get(target, limit) => {
                let target = self.subject(target, up)?;
                let timeout = self.limit(limit, up)?;
                return self.get(&target, timeout, expr.span);
            }
            ExprKind::Acquire(target, limit) => {
                let target = self.subject(target, up)?;
                let timeout = self.limit(limit, up)?;
                Value::Bool(self.acquire(&target, timeout, expr.span)?)
            }
            _ => unreachable!("eval handles the common expressions"),
        })
    }

    /// `timeout s` after `join` or `wait`, if given.
    fn optional_timeout(&mut self, seconds: Option<&Expr>, up: Up) -> R<Option<std::time::Duration>> {
        match seconds {
            None => Ok(None),
            Some(e) => {
                let value = self.eval(e, up)?;
                sync_ops::seconds(&value, "timeout").map(Some).map_err(|err| fault_at(err, e.span))
            }
        }
    }

    /// `base[index]`, shared lists included.
    pub(crate) fn index(&self, base: &Value, index: &Value, span: Span) -> Result<Value, Box<ErrorValue>> {
        if self.racing {
            self.race_item(base, index, Access::Read, span);
        }
        match base {
            Value::Handle(h) if h.kind() == crate::sync::handle::HandleKind::Map => {
                self.shared_map_get(h.handle(), index)
            }
            Value::Handle(h) => self.shared_load(h.handle(), self.shared_index(h.handle(), index)?),
            _ => ops::index(base, index),
        }
    }

    pub(crate) fn set_index(
        &self,
        base: &Value,
        index: &Value,
        value: Value,
        span: Span,
    ) -> Result<(), Box<ErrorValue>> {
        if self.racing {
            self.race_item(base, index, Access::Write, span);
        }
        match base {
            Value::Handle(h) if h.kind() == crate::sync::handle::HandleKind::Map => {
                self.shared_map_set(h.handle(), index, &value)
            }
            Value::Handle(h) => self.shared_store(h.handle(), self.shared_index(h.handle(), index)?, &value),
            _ => ops::set_index(base, index, value),
        }
    }

    /// `base.name`: map keys, error fields, and the properties of tasks,
    /// primitives and thread-locals.
    pub(crate) fn field(&self, base: &Value, name: &str, span: Span) -> Result<Value, Box<ErrorValue>> {
        if self.racing {
            self.race_field(base, name, Access::Read, span);
        }
        match base {
            Value::Task(task) => self.task_field(task, name),
            Value::Handle(h) => self.handle_field(h.handle(), name),
            Value::Future(future) if name == "ready" => Ok(Value::Bool(future.is_ready())),
            Value::Error(e) if matches!(name, "line" | "file" | "trace") => Ok(self.error_place(e, name)),
            Value::RemoteQueue(q) => q.field(name),
            Value::Pool(pool) if name == "size" => Ok(Value::Int(pool.size as i64)),
            Value::Pool(pool) if name == "closed" => Ok(Value::Bool(pool.is_closed())),
            Value::ThreadLocal(tl) => tl.get(self.task.id, name).ok_or_else(|| {
                ErrorValue::new(Kind::Key, format!("this task has not set `{name}`"))
                    .with_help("each task sees only the fields it set itself")
            }),
            _ => ops::field(base, name),
        }
    }

    pub(crate) fn set_field(&self, base: &Value, name: &Str, value: Value, span: Span) -> Result<(), Box<ErrorValue>> {
        if self.racing {
            self.race_field(base, name, Access::Write, span);
        }
        match base {
            Value::Handle(h) => self.set_handle_field(h.handle(), name, value),
            Value::ThreadLocal(tl) => {
                tl.set(self.task.id, name, value);
                Ok(())
            }
            _ => ops::set_field(base, name, value),
        }
    }

    /// A new closure of `def`, capturing from the current frame.
    pub(crate) fn closure(&self, def: &Arc<FnDef>, up: Up) -> Value {
        let upvalues = def
            .captures
            .iter()
            .map(|capture| match capture {
                Capture::Local(slot) => match &self.stack[self.base + *slot as usize] {
                    Value::Cell(cell) => cell.clone(),
                    // Unreachable by construction: captured locals are cells.
                    other => Arc::new(VarCell::new(other.clone())),
                },
                Capture::Upvalue(i) => up[*i as usize].clone(),
            })
            .collect();
        Value::Func(Arc::new(Closure { def: def.clone(), upvalues }))
    }
}

/// The value of a `throw`: an error value is thrown as it is; a string
/// becomes an `Error` with that message; anything else rides as payload.
pub(crate) fn thrown(value: Value, span: crate::syntax::Span) -> Box<ErrorValue> {
    let mut error = match value {
        Value::Error(e) => Box::new((*e).clone()),
        Value::Str(s) => ErrorValue::new(Kind::Error, s.to_string()),
        other => {
            let mut e = ErrorValue::new(Kind::Error, format::display(&other));
            e.payload = Some(other);
            e
        }
    };
    error.span.get_or_insert(span);
    error
}

/// Gives an error the span where it happened, unless it has one already.
pub fn fault_at(mut error: Box<ErrorValue>, span: crate::syntax::Span) -> Ctrl {
    error.span.get_or_insert(span);
    Ctrl::Error(error)
}

pub(crate) fn internal(what: &str, span: crate::syntax::Span) -> Ctrl {
    let message = format!("internal error: {what}");
    fault_at(
        ErrorValue::new(Kind::Error, message).with_help("this is a bug in concsh; please report it with the script"),
        span,
    )
}

pub(crate) fn unset_global(proc: &Process, global: u32, span: crate::syntax::Span) -> Ctrl {
    let names = proc.global_names.read();
    let name = names.get(global as usize).map_or("?", |n| &**n);
    let error = match proc.pool_worker.load(std::sync::atomic::Ordering::Relaxed) {
        // A cluster's worker has the program's functions, never its globals.
        true if crate::cluster::worker::on_worker() => ErrorValue::new(
            Kind::Name,
            format!("`{name}` was not set when this task's pool was made, or holds a primitive, which cannot travel"),
        )
        .with_help(format!(
            "cluster workers see the script's globals as they were when the pool was made: pass `{name}` as an argument"
        )),
        // A worker is a copy of the program made when its pool was made.
        true => ErrorValue::new(Kind::Name, format!("`{name}` was declared after this task's pool was made"))
            .with_help(format!(
                "pool workers see globals as they were when the pool was made: pass `{name}` as an argument"
            )),
        false => ErrorValue::new(Kind::Name, format!("`{name}` is used before its `let` ran"))
            .with_help("a function used a global before the line that declares it was reached"),
    };
    fault_at(error, span)
}

/// Adds a call to an error's trace as it unwinds out of `function`.
pub(crate) fn traced(ctrl: Ctrl, function: &Arc<str>, call: crate::syntax::Span) -> Ctrl {
    match ctrl {
        Ctrl::Error(mut e) => {
            e.trace.push(TraceEntry { function: function.clone(), call });
            Ctrl::Error(e)
        }
        other => other,
    }
}
