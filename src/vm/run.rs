//! The dispatch loop: runs a function's [`Code`] on its frame.
//!
//! One loop steps through ops: no recursion per expression, no result
//! returned through memory per node, operands read in place. A call from
//! VM code to VM code pushes a frame on the loop's own frame stack rather
//! than making a Rust call (so its depth is the language's limit alone,
//! checked per call); a call from anywhere else (the tree evaluator, a
//! builtin calling back) enters through `Interp::enter`, which starts a
//! loop of its own. An error leaving a frame adds that frame to its trace,
//! as `enter` does.

use std::sync::Arc;

use super::code::{Code, Held, HeldPlace, NO_LOOP, Op, Piece, Reg, Target};
use crate::eval::call::ArgValues;
use crate::eval::{Ctrl, Interp, MAX_DEPTH, R, Subject, Up, fault_at, internal, ops, thrown, traced, unset_global};
use crate::observe::race::Access;
use crate::resolve::ir::{BinOp, Binding, FnDef};
use crate::runtime::error::{Fault, Kind, MAX_LEN, overflow, too_large, type_error};
use crate::runtime::handle::HandleKind;
use crate::runtime::text::Builder;
use crate::runtime::value::{Closure, Key, VarCell};
use crate::runtime::{Str, Value, format};
use crate::syntax::Span;
use crate::tasks::process::Process;

/// Whether `jump_on` (see `Op::Test`) says to jump for ints `x` and `y`.
#[inline(always)]
fn ordered(jump_on: u8, x: i64, y: i64) -> bool {
    let bit = (x > y) as u8 * 2 + (x == y) as u8;
    jump_on >> bit & 1 != 0
}

/// `a op b` for ints, `op` being `+` or `-`.
#[inline(always)]
fn add_sub(op: BinOp, a: i64, b: i64) -> Option<i64> {
    match op {
        BinOp::Add => a.checked_add(b),
        _ => a.checked_sub(b),
    }
}

/// A held place's value where it is: a set-once global once its `let`
/// ran, or a captured variable nothing assigns (but under `--race`, whose
/// detector is told of the variable's read).
#[inline(always)]
fn held_value<'a>(proc: &'a Process, up: Up<'a>, held: Held, racing: bool) -> Option<&'a Value> {
    match held {
        Held::Global(g) => proc.fixed.get(g as usize)?.get(),
        Held::Up(i) if !racing => up.get(i as usize)?.fixed_value(),
        Held::Up(_) => None,
    }
}

/// A map's function found by `map_method`.
enum Found {
    /// In the method cache's slot.
    Cached(u32),
    Owned(Arc<Closure>),
}

/// A VM frame's record, kept on the loop's stack of frames: the running
/// frame's on top, its callers' below it.
///
/// `def` and `up` point into a closure that outlives the frame: a
/// top-level function's, held by the evaluator's tables for its whole life;
/// one called as a value, held by the caller's register the call reads;
/// or a map's method, which the method cache's slot `pin` holds until the
/// frame ends, or else `owner` (the call may change the map). (References
/// cannot say this: a frame would borrow from itself.)
///
/// The dispatch loop keeps the running frame's `def`, `up`, `base` and
/// `ip` in locals: a call writes the caller's `ip` and pushes the callee's
/// record, a return pops it and reads the caller's back. Nothing is copied
/// out and back.
pub(crate) struct Frame {
    def: *const FnDef,
    up: *const [Arc<VarCell>],
    // Held, never read: it keeps `def` and `up` alive.
    #[allow(dead_code)]
    owner: Option<Arc<Closure>>,
    /// The next op to run, in its `def`'s code, written when the frame
    /// calls another (the op before it is the call, whose span an error's
    /// trace names); stale while the frame runs.
    ip: *const Op,
    /// The method cache's slot this frame's function is pinned in, plus
    /// one (0: none).
    pin: u32,
    /// The caller's register this frame's result goes to.
    dst: Reg,
    base: usize,
}

/// The allocation of a stack of frames, kept between runs of the loop so
/// that a call into the VM from outside it (a builtin calling back, the
/// tree evaluator) does not allocate one each time.
#[derive(Default)]
pub(crate) struct SpareFrames(Vec<Frame>);

/// Field `names[name]` of `base` when it is a map that has it (not under
/// `--race`, which sees every access through the slow path).
#[inline(always)]
fn map_field(code: &Code, name: u32, base: Option<&Value>, racing: bool) -> Option<Value> {
    let Some(Value::Map(map)) = base else { return None };
    if racing {
        return None;
    }
    let entries = map.lock();
    entries.value_at(code.find_name(name, &entries)?).cloned()
}

/// `base.name op= rhs` in place, when `base` is a map whose field and
/// `rhs` are numbers (see `ops::update_scalar`).
#[inline(always)]
fn update_map_field(
    code: &Code,
    how: BinOp,
    name: u32,
    base: Option<&Value>,
    rhs: &Value,
    racing: bool,
) -> Option<Result<(), Fault>> {
    let Some(Value::Map(map)) = base else { return None };
    if racing || !rhs.is_scalar() {
        return None;
    }
    let mut entries = map.lock();
    let at = code.find_name(name, &entries)?;
    let field = entries.scalar_at_mut(at)?;
    // A counter (`self.total += n`) in place, without the call.
    if let (Value::Int(x), Value::Int(y)) = (&mut *field, rhs)
        && matches!(how, BinOp::Add | BinOp::Sub)
    {
        return Some(add_sub(how, *x, *y).map(|n| *x = n).ok_or_else(overflow));
    }
    ops::update_scalar(how, field, rhs)
}

/// The index in `code` of the op `ip` points at.
#[inline(always)]
fn op_index(code: &Code, ip: *const Op) -> usize {
    (ip as usize - code.ops.as_ptr() as usize) / std::mem::size_of::<Op>()
}

/// The span of the op before `ip` in `code`: the op running, `ip` having
/// moved past it. Out of line: read mostly when an op fails or stops, and
/// each copy inlined in the dispatch loop would cost its registers.
#[cold]
#[inline(never)]
fn span_before(code: &Code, ip: *const Op) -> Span {
    op_span(code, ip)
}

/// `span_before` in line, for an op that always reads its span (`acquire`
/// tells it to the deadlock board and the trace).
#[inline(always)]
fn op_span(code: &Code, ip: *const Op) -> Span {
    code.spans[op_index(code, ip) - 1]
}

// `save` writes each field of a `Frame` by name: this fails to compile
// when one is added, so that it is written there too.
const _: () = assert!(std::mem::size_of::<Frame>() == 56);

/// Pushes a suspended frame, each field written straight into the stack
/// of frames. (`frames.push(Frame { .. })` builds the frame on the native
/// stack and copies it in 16-byte pieces, each a load of two 8-byte
/// stores still in flight, which the CPU cannot forward: a tenth of a
/// call.)
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn save(
    frames: &mut Vec<Frame>,
    def: *const FnDef,
    up: *const [Arc<VarCell>],
    owner: Option<Arc<Closure>>,
    ip: *const Op,
    pin: u32,
    dst: Reg,
    base: usize,
) {
    frames.reserve(1);
    let len = frames.len();
    // SAFETY: `reserve` made room for one more frame at `len`; each of its
    // fields is written once before `set_len` counts it.
    unsafe {
        let slot = frames.as_mut_ptr().add(len);
        std::ptr::addr_of_mut!((*slot).def).write(def);
        std::ptr::addr_of_mut!((*slot).up).write(up);
        std::ptr::addr_of_mut!((*slot).owner).write(owner);
        std::ptr::addr_of_mut!((*slot).ip).write(ip);
        std::ptr::addr_of_mut!((*slot).pin).write(pin);
        std::ptr::addr_of_mut!((*slot).dst).write(dst);
        std::ptr::addr_of_mut!((*slot).base).write(base);
        frames.set_len(len + 1);
    }
}

/// Writes a returned value to the caller's register `slot`. An int is
/// written as an int, and `nil` as its tag: a value built in memory just
/// before, read back as one 16-byte piece, stalls the load.
#[inline(always)]
fn give_to(slot: &mut Value, value: Value) {
    match value {
        Value::Int(n) => {
            slot.set_int(n);
            // Nothing to drop: this spares a call to the drop glue.
            std::mem::forget(value);
        }
        Value::Nil => slot.set(Value::Nil),
        value => slot.set(value),
    }
}

/// Writes a copy of the value at `from` over the `nil` at `to`: a number
/// as bits (a clone dispatches on every kind of value).
///
/// # Safety
/// `from` is a value; `to` is a slot holding `nil` (which needs no drop).
#[inline(always)]
unsafe fn copy_arg(from: *const Value, to: *mut Value) {
    // SAFETY: as the caller promises; a scalar needs no clone.
    unsafe {
        if (*from).is_scalar_copy() {
            std::ptr::copy_nonoverlapping(from, to, 1);
        } else {
            to.write((*from).clone());
        }
    }
}

impl<'p> Interp<'p> {
    /// Runs `def`'s code on the frame at `self.base` (set up by `enter`),
    /// and every VM function it calls, on frames of its own: a call from
    /// the VM to the VM is a jump, not a Rust call. Gives the value `def`
    /// returns.
    pub(crate) fn run_code(&mut self, def: &FnDef, up: Up) -> R<Value> {
        if self.cancel.needs_attention() {
            self.attend(def.span)?;
        }
        // A run inside this one (a builtin calling back) finds no spare
        // and makes its own, which the next one then reuses.
        let mut frames = std::mem::take(&mut self.spare_frames.0);
        save(&mut frames, def, up, None, def.code.ops.as_ptr(), 0, 0, self.base);
        let result = match self.run_frames(&mut frames) {
            Ok(value) => Ok(value),
            Err(error) => Err(self.unwind(error, &mut frames)),
        };
        // Only the first frame is left: `enter` ends it.
        frames.clear();
        self.spare_frames.0 = frames;
        result
    }

    /// Ends the frames an error leaves (the first one excepted: `enter`
    /// ends it), adding each to the error's trace, as `enter` does.
    #[cold]
    #[inline(never)]
    fn unwind(&mut self, mut error: Ctrl, frames: &mut Vec<Frame>) -> Ctrl {
        while frames.len() > 1 {
            let Some(done) = frames.pop() else { break };
            let Some(caller) = frames.last() else { break };
            // SAFETY: a frame's `def` outlives it (see `Frame`).
            let (def, by) = unsafe { (&*done.def, &*caller.def) };
            error = traced(error, &def.name, span_before(&by.code, caller.ip));
            self.base = caller.base;
            self.stack.truncate(done.base);
            self.unpin(done.pin);
            self.depth -= 1;
        }
        error
    }

    /// Whether `def` may start a frame, called from the op before `ip` in
    /// `code` with `argc` values: the depth limit, a cancel or pause pending.
    #[inline(always)]
    fn may_call(&mut self, code: &Code, def: &FnDef, argc: usize, ip: *const Op) -> R<()> {
        if self.depth >= MAX_DEPTH {
            return Err(self.too_deep(def, self.stack.len(), span_before(code, ip)));
        }
        if self.cancel.needs_attention() {
            self.attend(span_before(code, ip))?;
        }
        if argc > def.code.frame as usize {
            return Err(internal("a call passes more values than its frame holds", span_before(code, ip)));
        }
        Ok(())
    }

    /// Starts a VM frame for `def` with the values of `regs` (as many as
    /// its parameters) of the running frame, at `base` in `code`: that
    /// frame is suspended to go on at `ip` (just after the call, whose span
    /// an error reports), and the result goes to its register `dst`. Gives
    /// the new frame's base; a frame that cannot start releases its `pin`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn push_frame(
        &mut self,
        frames: &mut Vec<Frame>,
        code: &Code,
        base: usize,
        def: &FnDef,
        up: Up,
        owner: Option<Arc<Closure>>,
        pin: u32,
        regs: &[Reg],
        ip: *const Op,
        dst: Reg,
    ) -> R<usize> {
        if let Err(error) = self.may_call(code, def, regs.len(), ip) {
            self.unpin(pin);
            return Err(error);
        }
        let new = self.stack.len();
        let size = def.code.frame as usize;
        self.stack.reserve(size);
        // SAFETY: `reserve` made room for `size` slots from `new`, each
        // holding `nil` (which needs no drop): the arguments are written
        // over them. They are registers of the running frame, which lies
        // below `new` (`compile` keeps them inside it).
        unsafe {
            let stack = self.stack.as_mut_ptr();
            let (from, to) = (stack.add(base), stack.add(new));
            // One argument, the commonest call, without the loop's setup.
            match regs {
                [r] => copy_arg(from.add(*r as usize), to),
                _ => {
                    for (i, r) in regs.iter().enumerate() {
                        copy_arg(from.add(*r as usize), to.add(i));
                    }
                }
            }
            self.stack.set_top(new + size);
        }
        if !def.cell_params.is_empty() {
            self.cell_params(def, new);
        }
        let len = frames.len();
        debug_assert!(len > 0, "a call with no running frame");
        // SAFETY: the running frame's record is on top (`run_frames` runs
        // with one, and a return pops only a record above another).
        unsafe { frames.get_unchecked_mut(len - 1).ip = ip };
        // Its `ip` is written when it calls: the loop keeps it meanwhile.
        save(frames, def, up, owner, std::ptr::null(), pin, dst, new);
        self.base = new;
        self.depth += 1;
        Ok(new)
    }

    /// Ends the running frame with `value`, written to its caller's
    /// register; gives the caller, to resume, or the value back when this
    /// is the first frame (its value is `run_code`'s). Only the frame's
    /// first `used` registers may hold anything but `nil`.
    #[inline(always)]
    fn pop_frame<'f>(&mut self, frames: &'f mut Vec<Frame>, value: Value, used: u32) -> Result<&'f Frame, Value> {
        let len = frames.len();
        if len < 2 {
            return Err(value);
        }
        // The record is read in place, not moved out whole: a move copies
        // it to the native stack and back.
        // SAFETY: `len - 1` is a record; its `owner` is moved out before
        // `set_len` forgets it, and nothing else of it needs a drop.
        let (owner, done_base, pin, dst) = unsafe {
            let done = &*frames.as_ptr().add(len - 1);
            let owner = std::ptr::read(&done.owner);
            frames.set_len(len - 1);
            (owner, done.base, done.pin, done.dst)
        };
        // SAFETY: `len` is at least 2.
        let caller = unsafe { frames.get_unchecked(len - 2) };
        // The result is written first: kept until after the frame's
        // registers are released, it would wait in memory across them.
        // SAFETY: `dst` is a register of the caller (`compile` keeps a
        // call's result inside its frame), whose frame lies below the top.
        give_to(unsafe { self.stack.get_unchecked_mut(caller.base + dst as usize) }, value);
        // SAFETY: the frame is the top one (`base + code.frame` is the
        // stack's top), and a return op's `used`, at most its frame, counts
        // every register an op of the frame may have written
        // (`Code::settle_returns`); nothing else writes a frame's registers
        // above its slots.
        unsafe { self.stack.truncate_used(done_base, used as usize) };
        self.unpin(pin);
        drop(owner);
        self.depth -= 1;
        self.base = caller.base;
        Ok(caller)
    }

    /// Lets go of a frame's pin (`0`: none) on its method's cache slot.
    #[inline(always)]
    fn unpin(&mut self, pin: u32) {
        if pin != 0 {
            self.methods.unpin(pin - 1);
        }
    }

    fn run_frames(&mut self, frames: &mut Vec<Frame>) -> R<Value> {
        // The running frame: its record is `frames`' top.
        let Some(first) = frames.last() else { return Ok(Value::Nil) };
        let (mut def_at, mut up_at) = (first.def, first.up);
        let (mut base, mut ip) = (first.base, first.ip);
        // The first frame is checked to lie below the top; the loop pushes
        // every frame after it.
        // SAFETY: a frame's `def` outlives it (see `Frame`).
        self.stack.frame(base, unsafe { &*def_at }.code.frame as usize);
        'frames: loop {
            // SAFETY: a frame's `def` and `up` outlive it (see `Frame`).
            let (def, up): (&FnDef, Up) = unsafe { (&*def_at, &*up_at) };
            let code = &def.code;
            // The frame's registers, addressed without a bounds check or a
            // reload of the stack's address per operand (a fifth of a call).
            // Valid while the stack is not reallocated: `fresh!` takes the
            // address again after anything that may run script code.
            // SAFETY: the frame is below the top: `run_code`'s first frame
            // (checked before the loop), one just pushed, or a caller
            // resumed when the frame above it ended.
            let mut regs = unsafe { self.stack.frame_unchecked(base, code.frame as usize) };
            macro_rules! fresh {
                () => {
                    // SAFETY: what ran in between (a builtin, a call from
                    // outside the loop, the tree evaluator) left the stack's
                    // top where it found it, above this frame.
                    regs = unsafe { self.stack.frame_unchecked(base, code.frame as usize) }
                };
            }
            macro_rules! reg {
                ($r:expr) => {
                    // SAFETY: `regs` is this frame's first register and the
                    // stack holds the whole frame (see where `regs` is taken;
                    // `fresh!` renews it after the stack may have moved);
                    // `compile` gives every op registers below `code.frame`.
                    (*unsafe { &mut *regs.add($r as usize) })
                };
            }
            // Errors raised by an op carry the op's span.
            macro_rules! at {
                ($result:expr) => {
                    match $result {
                        Ok(value) => value,
                        Err(error) => return Err(fault_at(error, span_before(code, ip))),
                    }
                };
            }
            // A jump; one backwards (a loop's next pass) answers a cancel,
            // a fork's pause and a where-are-you first.
            macro_rules! jump {
                ($to:expr) => {{
                    // SAFETY: `well_formed` checked that a jump lands on an op.
                    let to = unsafe { code.ops.as_ptr().add($to as usize) };
                    if to < ip && self.cancel.needs_attention() {
                        self.attend(span_before(code, ip))?;
                    }
                    ip = to;
                }};
            }
            // `$x op $y` for two ints, handed to `$then` as `$v` when the
            // int case applies (`$then` leaves the op); `+` and `-` first
            // (`n - 1`, `i + 1`, `a + b`), before the jump `int_binary`
            // makes on the operator.
            macro_rules! int_fast {
                ($op:expr, $x:expr, $y:expr, |$v:ident| $then:expr) => {
                    if matches!($op, BinOp::Add | BinOp::Sub) {
                        if let Some(sum) = add_sub($op, $x, $y) {
                            let $v = Value::Int(sum);
                            $then;
                        }
                    } else if let Some($v) = ops::int_binary($op, $x, $y) {
                        $then;
                    }
                };
            }
            // An op the loop leaves to `rare_op` (wholly, or when its fast
            // case does not apply), which may move the stack.
            macro_rules! slow {
                ($op:expr) => {{
                    self.rare_op($op, code, up, base, ip)?;
                    fresh!();
                }};
            }
            // The function returns `$value`: to the suspended caller, or
            // out. Only its first `$used` registers may hold anything.
            macro_rules! give {
                ($value:expr, $used:expr) => {{
                    match self.pop_frame(frames, $value, $used) {
                        Ok(caller) => {
                            (def_at, up_at, base, ip) = (caller.def, caller.up, caller.base, caller.ip);
                            continue 'frames;
                        }
                        Err(value) => return Ok(value),
                    }
                }};
            }
            // Calls `$def` with the values of registers `$args`, its result
            // going to register `$dst`: the loop goes on in the new frame.
            macro_rules! call {
                ($def:expr, $up:expr, $owner:expr, $pin:expr, $args:expr, $dst:expr) => {{
                    let (callee, callee_up): (&FnDef, Up) = ($def, $up);
                    base = self.push_frame(frames, code, base, callee, callee_up, $owner, $pin, $args, ip, $dst)?;
                    (def_at, up_at, ip) = (callee, callee_up, callee.code.ops.as_ptr());
                    continue 'frames;
                }};
            }
            // `recv.name(args)` when `recv` is a map holding a function
            // (the object idiom): the call, from the method cache or the
            // map; falls through for any other receiver.
            macro_rules! method {
                ($dst:expr, $name:expr, $args:expr, $recv:expr) => {
                    match $recv.and_then(|recv| self.map_method(code, $name, recv, ip)) {
                        Some(Found::Cached(at)) if let Some(closure) = self.methods.pin(at) => {
                            // SAFETY: pinned: the slot keeps the closure until `unpin`,
                            // which the frame's end (or the call below) does.
                            let closure = unsafe { &*closure };
                            if $args.len() - 1 == closure.def.params.len() {
                                call!(&closure.def, &closure.upvalues, None, at + 1, &$args[1..], $dst);
                            }
                            let value =
                                self.call_regs(&closure.def, &closure.upvalues, &$args[1..], span_before(code, ip));
                            self.methods.unpin(at);
                            let value = value?;
                            fresh!();
                            reg!($dst).set(value);
                            continue;
                        }
                        Some(Found::Owned(closure)) => {
                            if $args.len() - 1 == closure.def.params.len() {
                                let (def, upvals) = (&*closure.def as *const FnDef, &*closure.upvalues as *const _);
                                // SAFETY: `closure` moves into the frame as its owner and keeps both alive.
                                let (def, upvals) = unsafe { (&*def, &*upvals) };
                                call!(def, upvals, Some(closure), 0, &$args[1..], $dst);
                            }
                            let value =
                                self.call_regs(&closure.def, &closure.upvalues, &$args[1..], span_before(code, ip))?;
                            fresh!();
                            reg!($dst).set(value);
                            continue;
                        }
                        _ => {}
                    }
                };
            }
            loop {
                // Matched in place: a copy of the op to the stack, then a
                // load of its tag back, stalled every dispatch.
                // SAFETY: `ip` points at an op of `code`: it starts at the
                // first, moves on from an op that is not the last (the last
                // returns) or lands where `well_formed` checked a jump lands.
                let op = unsafe { &*ip };
                // SAFETY: `ip` is an op of `code`, so one past it is at most
                // the end of `code.ops`.
                ip = unsafe { ip.add(1) };
                match *op {
                    Op::Const { dst, index } => reg!(dst).set(code.consts[index as usize].clone()),
                    Op::Move { dst, src } => {
                        let value = reg!(src).clone();
                        reg!(dst).set(value);
                    }
                    Op::BinaryInt { op, dst, src, value } => {
                        if let Value::Int(n) = reg!(src) {
                            int_fast!(op, n, value as i64, |v| {
                                reg!(dst).set(v);
                                continue;
                            });
                        }
                        let result = at!(ops::binary(op, &reg!(src), &Value::Int(value as i64)));
                        reg!(dst).set(result);
                    }
                    Op::Binary { op, dst, a, b } => {
                        if let (&Value::Int(x), &Value::Int(y)) = (&reg!(a), &reg!(b)) {
                            int_fast!(op, x, y, |v| {
                                reg!(dst).set(v);
                                continue;
                            });
                        }
                        let value = at!(ops::binary(op, &reg!(a), &reg!(b)));
                        reg!(dst).set(value);
                    }
                    Op::Update { op, dst, src } => {
                        if let (Value::Int(x), Value::Int(y)) = (&reg!(dst), &reg!(src))
                            && matches!(op, BinOp::Add | BinOp::Sub)
                        {
                            let sum = add_sub(op, *x, *y);
                            let sum = at!(sum.ok_or_else(overflow));
                            reg!(dst).set(Value::Int(sum));
                            continue;
                        }
                        let rhs = reg!(src).clone();
                        at!(ops::update(op, &mut reg!(dst), &rhs));
                    }
                    Op::UpdateInt { op, dst, value } => {
                        if let Value::Int(x) = reg!(dst) {
                            let sum = at!(add_sub(op, x, value as i64).ok_or_else(overflow));
                            reg!(dst).set(Value::Int(sum));
                            continue;
                        }
                        at!(ops::update(op, &mut reg!(dst), &Value::Int(value as i64)));
                    }
                    Op::Jump { to } => jump!(to),
                    Op::JumpIfFalse { cond, to } => {
                        if !reg!(cond).truthy() {
                            jump!(to);
                        }
                    }
                    Op::JumpIfTrue { cond, to } => {
                        if reg!(cond).truthy() {
                            jump!(to);
                        }
                    }
                    Op::Test { op, when, jump_on, a, b, to } => {
                        let go = match (&reg!(a), &reg!(b)) {
                            (Value::Int(x), Value::Int(y)) => ordered(jump_on, *x, *y),
                            (x, y) => at!(ops::binary(op, x, y)).truthy() == when,
                        };
                        if go {
                            jump!(to);
                        }
                    }
                    Op::TestInt { op, when, jump_on, a, value, to } => {
                        let go = match &reg!(a) {
                            Value::Int(x) => ordered(jump_on, *x, value as i64),
                            x => at!(ops::binary(op, x, &Value::Int(value as i64))).truthy() == when,
                        };
                        if go {
                            jump!(to);
                        }
                    }
                    Op::CallFunc { dst, func, args, argc } => {
                        let tables = self.tables;
                        let Some(closure) = &tables.funcs[func as usize] else {
                            return Err(unset_global(self.proc, func, span_before(code, ip)));
                        };
                        let args = code.arg_regs(args, argc);
                        if args.len() == closure.def.params.len() {
                            call!(&closure.def, &closure.upvalues, None, 0, args, dst);
                        }
                        let value = self.call_regs(&closure.def, &closure.upvalues, args, span_before(code, ip))?;
                        fresh!();
                        reg!(dst).set(value);
                    }
                    Op::CallValue { dst, callee, args, argc } => {
                        let args = code.arg_regs(args, argc);
                        if let Value::Func(closure) = &reg!(callee)
                            && args.len() == closure.def.params.len()
                        {
                            let (def, upvals) = (&*closure.def as *const FnDef, &*closure.upvalues as *const _);
                            // SAFETY: the callee's register holds the closure
                            // (a reference of its own: a variable that can
                            // change under the call is read into a temporary
                            // first) until the call returns, since only this
                            // frame writes its registers. Borrowing it spares
                            // two atomic writes to the closure's count.
                            let (def, upvals) = unsafe { (&*def, &*upvals) };
                            call!(def, upvals, None, 0, args, dst);
                        }
                        let span = span_before(code, ip);
                        let value = match reg!(callee).clone() {
                            Value::Func(closure) => self.call_regs(&closure.def, &closure.upvalues, args, span)?,
                            other => {
                                let values = self.arg_values(args, 0);
                                self.call_value(&other, values, span)?
                            }
                        };
                        fresh!();
                        reg!(dst).set(value);
                    }
                    Op::Method { dst, name, args, argc } => {
                        let args = code.arg_regs(args, argc);
                        // SAFETY: `compile` gives a method call its receiver's register first.
                        let recv = args.first().map(|r| unsafe { &*regs.add(*r as usize) });
                        method!(dst, name, args, recv);
                        let called = self.method_regs(code, name, args, span_before(code, ip))?;
                        fresh!();
                        reg!(dst).set(called);
                    }
                    Op::MethodHeld { dst, call, args, argc } => {
                        let args = code.arg_regs(args, argc);
                        let call = code.held_calls[call as usize];
                        let held = held_value(self.proc, up, call.recv.held, self.racing);
                        let recv = match held {
                            Some(recv) => recv,
                            None => {
                                reg!(args[0]) = self.load_held(call.recv, up)?;
                                // SAFETY: the receiver's register, just written.
                                unsafe { &*regs.add(args[0] as usize) }
                            }
                        };
                        method!(dst, call.name, args, Some(recv));
                        if let Some(recv) = held {
                            reg!(args[0]) = recv.clone();
                        }
                        let called = self.method_regs(code, call.name, args, span_before(code, ip))?;
                        fresh!();
                        reg!(dst).set(called);
                    }
                    // The object is read where it is, as `Interp::subject` does.
                    Op::Acquire { dst, target } => {
                        let target = self.target(code, target, up, regs)?;
                        let held = self.acquire(&target, None, op_span(code, ip))?;
                        fresh!();
                        reg!(dst).set(Value::Bool(held));
                    }
                    Op::Release { target } => {
                        let target = self.target(code, target, up, regs)?;
                        self.release(&target, op_span(code, ip))?;
                        fresh!();
                    }
                    // A number is copied field by field (see `ForNext`).
                    Op::Return { src, used } => give!(
                        match reg!(src) {
                            Value::Int(n) => Value::Int(n),
                            _ => std::mem::take(&mut reg!(src)),
                        },
                        used
                    ),
                    Op::ReturnBinary { op, a, b, used } => {
                        if let (&Value::Int(x), &Value::Int(y)) = (&reg!(a), &reg!(b)) {
                            int_fast!(op, x, y, |v| give!(v, used));
                        }
                        let value = at!(ops::binary(op, &reg!(a), &reg!(b)));
                        give!(value, used);
                    }
                    Op::ReturnNil { used } => give!(Value::Nil, used),
                    // A closure's captured variable, and a map's field: hot in
                    // closures and in the object idiom.
                    Op::LoadUp { dst, index } => {
                        let value = self.upvalue(up, index, || span_before(code, ip));
                        reg!(dst).set(value);
                    }
                    // A map's field, read and updated in place (`obj.count
                    // += 1` on a number); the rest through `rare_op`.
                    Op::Field { dst, base: b, name } => match map_field(code, name, Some(&reg!(b)), self.racing) {
                        Some(field) => reg!(dst).set(field),
                        None => slow!(*op),
                    },
                    Op::FieldUp { dst, index, name } => {
                        match map_field(code, name, up[index as usize].fixed_value(), self.racing) {
                            Some(field) => reg!(dst).set(field),
                            None => slow!(*op),
                        }
                    }
                    Op::UpdateField { op: how, base: b, name, src } => {
                        match update_map_field(code, how, name, Some(&reg!(b)), &reg!(src), self.racing) {
                            Some(done) => at!(done),
                            None => slow!(*op),
                        }
                    }
                    Op::UpdateFieldUp { op: how, index, name, src } => {
                        let base = up[index as usize].fixed_value();
                        match update_map_field(code, how, name, base, &reg!(src), self.racing) {
                            Some(done) => at!(done),
                            None => slow!(*op),
                        }
                    }
                    // Items of lists and int-keyed maps, the common case, here;
                    // the rest (and every error) through `rare_op`.
                    Op::Index { dst, base: b, index } => {
                        let item = match (&reg!(b), &reg!(index)) {
                            _ if self.racing => None,
                            (Value::List(list), Value::Int(i)) => {
                                usize::try_from(*i).ok().and_then(|i| list.lock().get(i).cloned())
                            }
                            (Value::Map(map), Value::Int(i)) => map.lock().get(&Key::Int(*i)).cloned(),
                            _ => None,
                        };
                        match item {
                            Some(item) => reg!(dst).set(item),
                            None => slow!(*op),
                        }
                    }
                    Op::SetIndex { base: b, index, src } => {
                        let value = reg!(src).clone();
                        let stored = match (&reg!(b), &reg!(index)) {
                            _ if self.racing => false,
                            (Value::Map(map), Value::Int(i)) => {
                                map.lock().insert(Key::Int(*i), value);
                                true
                            }
                            (Value::List(list), Value::Int(i)) => {
                                let mut items = list.lock();
                                match usize::try_from(*i).ok().and_then(|i| items.get_mut(i)) {
                                    Some(slot) => {
                                        *slot = value;
                                        true
                                    }
                                    None => false,
                                }
                            }
                            _ => false,
                        };
                        if !stored {
                            slow!(*op);
                        }
                    }
                    Op::ForNext { iter, dst, to } => {
                        let Value::Int(i) = reg!(iter + 1) else { continue };
                        // A range's int is written as an int: built as a
                        // `Value` in memory and copied whole, it is a store
                        // the CPU cannot forward to the load right after.
                        if let Value::Range(range) = &reg!(iter) {
                            // `i` is the next member. Past the int range the
                            // sum stops at its end, which the next pass's
                            // test then refuses.
                            if range.holds_next(i) {
                                reg!(iter + 1).set(Value::Int(i.saturating_add(range.step)));
                                reg!(dst).set(Value::Int(i));
                                jump!(to);
                            }
                            continue;
                        }
                        let item = match &reg!(iter) {
                            Value::List(list) if !self.racing => list.lock().get(i as usize).cloned(),
                            _ => {
                                let iterable = reg!(iter).clone();
                                let item = self.next_item(&iterable, i as usize, span_before(code, ip))?;
                                fresh!();
                                item
                            }
                        };
                        if let Some(item) = item {
                            reg!(iter + 1).set(Value::Int(i + 1));
                            reg!(dst).set(item);
                            jump!(to);
                        }
                    }
                    Op::Exec { stmt, brk, cont } => match self.exec(&code.stmts[stmt as usize], up) {
                        Ok(()) => fresh!(),
                        Err(Ctrl::Return(value)) => give!(value, code.frame),
                        Err(Ctrl::Break) if brk != NO_LOOP => {
                            fresh!();
                            // Forward, so with no cancel check: `jump!` here
                            // moved the loop's registers and cost fib 1.2M
                            // and the loop 10M instructions.
                            // SAFETY: as for a jump.
                            ip = unsafe { code.ops.as_ptr().add(brk as usize) };
                        }
                        Err(Ctrl::Continue) if cont != NO_LOOP => {
                            fresh!();
                            jump!(cont);
                        }
                        Err(other) => return Err(other),
                    },
                    other => slow!(other),
                }
            }
        }
    }

    /// The ops that neither call, jump nor return, and are not on the
    /// hottest paths: kept out of the dispatch loop so that its frame (paid
    /// on every entry) stays small.
    #[inline(never)]
    fn rare_op(&mut self, op: Op, code: &Code, up: Up, base: usize, ip: *const Op) -> R<()> {
        macro_rules! reg {
            ($r:expr) => {
                self.stack[base + $r as usize]
            };
        }
        let span = op_span(code, ip);
        let at = |error| fault_at(error, span);
        match op {
            Op::LoadCell { dst, slot } => reg!(dst) = self.local_cell(slot, span)?,
            Op::StoreCell { slot, src } => {
                let value = reg!(src).clone();
                self.assign_local_cell(slot, value, span);
            }
            Op::NewCell { slot, src, fixed } => {
                let binding = if fixed { Binding::FixedCell(slot) } else { Binding::Cell(slot) };
                self.bind_one(binding, reg!(src).clone());
            }
            Op::StoreUp { index, src } => {
                if self.racing {
                    self.race_cell(None, &up[index as usize], Access::Write, span);
                }
                *up[index as usize].lock() = reg!(src).clone()
            }
            Op::LoadGlobal { dst, index } => reg!(dst) = self.global(index, span)?,
            Op::StoreGlobal { index, src } => self.assign_global(index, reg!(src).clone(), span),
            Op::LoadFixed { dst, index } => reg!(dst) = self.fixed(index, span)?,
            Op::SetFixed { index, src } => self.bind_one(Binding::Fixed(index), reg!(src).clone()),
            Op::LoadFunc { dst, index } => reg!(dst) = self.func(index, span)?,
            Op::LoadBuiltin { dst, builtin } => reg!(dst) = Value::Builtin(builtin),
            Op::Unary { op, dst, src } => {
                let value = ops::unary(op, &reg!(src)).map_err(at)?;
                reg!(dst) = value;
            }
            Op::UpdateCell { op, slot, src } => self.update_local_cell(slot, op, &reg!(src), span)?,
            Op::UpdateUp { op, index, src } => {
                if self.racing {
                    self.race_cell(None, &up[index as usize], Access::Update, span);
                }
                ops::update(op, &mut up[index as usize].lock(), &reg!(src)).map_err(at)?;
            }
            Op::UpdateGlobal { op, index, src } => self.update_global(index, op, &reg!(src), span)?,
            Op::UpdateItem { op, base: b, index, src } => {
                let (target, index, rhs) = (reg!(b).clone(), reg!(index).clone(), reg!(src).clone());
                self.update_item(&target, &index, op, &rhs, span).map_err(at)?;
            }
            Op::UpdateField { op, base: b, name, src } => {
                let (target, rhs) = (reg!(b).clone(), reg!(src).clone());
                self.update_field(&target, &code.names[name as usize], op, &rhs, span).map_err(at)?;
            }
            Op::Index { dst, base: b, index } => {
                let value = self.index(&reg!(b), &reg!(index), span).map_err(at)?;
                reg!(dst) = value;
            }
            Op::SetIndex { base: b, index, src } => {
                let value = reg!(src).clone();
                self.set_index(&reg!(b), &reg!(index), value, span).map_err(at)?;
            }
            Op::Field { dst, base: b, name } => {
                let value = self.field(&reg!(b), &code.names[name as usize], span).map_err(at)?;
                reg!(dst) = value;
            }
            Op::FieldUp { dst, index, name } => {
                let target = self.upvalue(up, index, || span);
                let value = self.field(&target, &code.names[name as usize], span).map_err(at)?;
                reg!(dst) = value;
            }
            Op::UpdateFieldUp { op, index, name, src } => {
                let (target, rhs) = (self.upvalue(up, index, || span), reg!(src).clone());
                self.update_field(&target, &code.names[name as usize], op, &rhs, span).map_err(at)?;
            }
            Op::SetField { base: b, name, src } => {
                let value = reg!(src).clone();
                self.set_field(&reg!(b), &code.names[name as usize], value, span).map_err(at)?;
            }
            Op::CallBuiltin { dst, builtin, args, argc } => {
                let values = self.arg_values(code.arg_regs(args, argc), 0);
                let value = self.builtin(builtin, values, span).map_err(|c| c.at(span))?;
                reg!(dst) = value;
            }
            Op::MakeList { dst, args, argc } => {
                let items = self.arg_values(code.arg_regs(args, argc), 0);
                reg!(dst) = Value::list(items.positional);
            }
            Op::Closure { dst, def } => reg!(dst) = self.closure(&code.defs[def as usize], up),
            Op::Format { dst, pieces } => {
                let text = self.format(&code.formats[pieces as usize], base)?;
                reg!(dst) = Value::Str(text);
            }
            Op::Throw { src } => {
                let value = std::mem::take(&mut reg!(src));
                return Err(Ctrl::Error(thrown(value, span)));
            }
            Op::ForPrep { iter } => {
                let iterable = std::mem::take(&mut reg!(iter));
                if self.racing {
                    self.race_size(&iterable, span);
                }
                let iterable = self.loop_over(iterable).map_err(at)?;
                // A range is walked by its members, an addition per pass;
                // the rest by index.
                reg!(iter + 1) = Value::Int(if let Value::Range(range) = &iterable { range.start } else { 0 });
                reg!(iter) = iterable;
            }
            Op::Unpack { pattern, src } => {
                let value = reg!(src).clone();
                self.bind(&code.patterns[pattern as usize], value)?;
            }
            Op::Eval { dst, expr } => {
                let value = self.eval(&code.exprs[expr as usize], up)?;
                reg!(dst) = value;
            }
            other => return Err(internal(&format!("the dispatch loop runs {other:?}"), span)),
        }
        Ok(())
    }

    /// The value of captured variable `index`, told to the race detector
    /// (with the span `at` gives: only worked out then).
    #[inline(always)]
    fn upvalue(&self, up: Up, index: u32, at: impl FnOnce() -> Span) -> Value {
        if self.racing {
            self.race_cell(None, &up[index as usize], Access::Read, at());
        }
        up[index as usize].read()
    }

    /// An interpolated string: text, strings and ints written straight into
    /// one buffer; other values as `print` shows them.
    fn format(&self, pieces: &[Piece], base: usize) -> R<Str> {
        let mut text = Builder::new();
        for piece in pieces {
            match piece {
                Piece::Text(t) => text.push(t)?,
                Piece::Value(r, spec) => match (&self.stack[base + *r as usize], spec) {
                    (_, Some(spec)) if spec.width > MAX_LEN => return Err(too_large("string").into()),
                    (value, Some(spec)) => text.push(&format::with_spec(value, spec))?,
                    (Value::Str(s), None) => text.push(s)?,
                    (Value::Int(n), None) => text.push(itoa::Buffer::new().format(*n))?,
                    (value, None) => text.push(&self.text_of(value)?)?,
                },
            }
        }
        Ok(text.finish()?)
    }

    /// The values of registers `regs[skip..]`, as call arguments.
    fn arg_values(&self, regs: &[Reg], skip: usize) -> ArgValues {
        ArgValues::positional(regs[skip..].iter().map(|r| self.stack[self.base + *r as usize].clone()).collect())
    }

    /// Calls `def` with the values of `regs`: straight into the new frame
    /// when they fit its parameters exactly, else through the binding of
    /// defaults and the arity checks.
    fn call_regs(&mut self, def: &FnDef, upvals: Up, regs: &[Reg], span: Span) -> R<Value> {
        if regs.len() == def.params.len() {
            let base = self.stack.len();
            for r in regs {
                let value = self.stack[self.base + *r as usize].clone();
                self.stack.push(value);
            }
            return self.enter(def, upvals, base, span, false);
        }
        let values = self.arg_values(regs, 0);
        self.call_def(def, upvals, values, span)
    }

    /// A held place's value, as a clone: a global before its `let` ran (an
    /// error), a variable something assigns, or any under `--race`.
    fn load_held(&self, place: HeldPlace, up: Up) -> R<Value> {
        match place.held {
            Held::Global(g) => self.fixed(g, place.span),
            Held::Up(i) => Ok(self.upvalue(up, i, || place.span)),
        }
    }

    /// The object of `acquire` or `release`: borrowed where it is when it
    /// can be (cloning a lock is a write to its count, which every thread
    /// using it shares).
    fn target<'a>(&self, code: &Code, target: Target, up: Up<'a>, regs: *mut Value) -> R<Subject<'a>>
    where
        'p: 'a,
    {
        Ok(match target {
            // SAFETY: `compile` gives the op a register of the frame, which
            // the sync operation reads and nothing writes meanwhile (it runs
            // no script code).
            Target::Reg(r) => Subject::Borrowed(unsafe { &*regs.add(r as usize) }),
            Target::Held(i) => {
                let place = code.held_places[i as usize];
                match held_value(self.proc, up, place.held, self.racing) {
                    Some(value) => Subject::Borrowed(value),
                    None => Subject::Owned(self.load_held(place, up)?),
                }
            }
        })
    }

    /// The function entry `recv.name` of a map, to be called with the
    /// arguments after the receiver: from the method cache when the map
    /// has not changed since, else read under the map's lock (and cached).
    /// The receiver is read where it is, not cloned: a clone is a write to
    /// its reference count, a cache line every thread calling a method of
    /// the same object would fight over.
    #[inline(always)]
    fn map_method(&mut self, code: &Code, index: u32, recv: &Value, ip: *const Op) -> Option<Found> {
        let Value::Map(map) = recv else { return None };
        let name = &code.names[index as usize];
        // Under `--race` the detector sees every access, through the map.
        if !self.racing
            && let Some(at) = self.methods.find(map, name)
        {
            return Some(Found::Cached(at));
        }
        let (closure, changes) = {
            let entries = map.lock();
            match entries.value_at(code.find_name(index, &entries)?) {
                Some(Value::Func(closure)) => (closure.clone(), map.changes()),
                _ => return None,
            }
        };
        if self.racing {
            self.race_field(recv, name, Access::Read, span_before(code, ip));
            return Some(Found::Owned(closure));
        }
        Some(match self.methods.fill(map, name, changes, closure) {
            Ok(at) => Found::Cached(at),
            Err(closure) => Found::Owned(closure),
        })
    }

    /// `recv.name(args)`, the receiver in `regs[0]`, for every receiver
    /// but a map's function entry (`map_method`); `push` appends without
    /// building an argument list.
    fn method_regs(&mut self, code: &Code, index: u32, regs: &[Reg], span: Span) -> R<Value> {
        let name = &*code.names[index as usize];
        let recv = &self.stack[self.base + regs[0] as usize];
        if let Value::List(list) = recv
            && name == "push"
            && regs.len() == 2
            && !self.racing
        {
            let item = self.stack[self.base + regs[1] as usize].clone();
            let mut items = list.lock();
            if items.len() >= MAX_LEN {
                return Err(fault_at(too_large("list"), span));
            }
            items.push(item);
            return Ok(Value::Nil);
        }
        let recv = recv.clone();
        let args = self.arg_values(regs, 1);
        self.method(&recv, name, args, span).map_err(|c| c.at(span))
    }

    /// What a `for` walks: a map's keys and a string's characters are
    /// taken when the loop starts; lists, ranges, queues and shared lists
    /// are walked as they are.
    fn loop_over(&self, iterable: Value) -> Result<Value, Fault> {
        Ok(match iterable {
            Value::Map(map) => Value::list(map.lock().key_values().collect()),
            Value::Str(s) => Value::list(s.chars().map(|c| Value::Str(c.into())).collect()),
            Value::Bytes(b) => Value::list(b.iter().map(|&byte| Value::Int(i64::from(byte))).collect()),
            Value::Range(_) | Value::List(_) => iterable,
            Value::Handle(ref h) if matches!(h.kind(), HandleKind::Queue | HandleKind::Pipe | HandleKind::Array) => {
                iterable
            }
            Value::RemoteQueue(_) => iterable,
            Value::Handle(ref h) if h.kind() == HandleKind::Map => self.shared_map_keys(h.handle())?,
            other => {
                return Err(type_error(format!("cannot loop over {}", other.type_name()))
                    .with_help("`for` takes a list, map, string, bytes, range or queue"));
            }
        })
    }

    /// The next item of a queue or pipe (until it is closed and drained)
    /// or of a shared list, at position `i`.
    fn next_item(&mut self, iterable: &Value, i: usize, span: Span) -> R<Option<Value>> {
        match iterable {
            Value::Handle(h) if h.kind() == HandleKind::Array => {
                let item = self.shared_list_item(h.handle(), i).map_err(|e| fault_at(e, span))?;
                if self.racing && item.is_some() {
                    self.race_item(iterable, &Value::Int(i as i64), Access::Read, span);
                }
                Ok(item)
            }
            // Walked here only under `--race`: the dispatch loop takes the rest.
            Value::List(list) => {
                let item = list.lock().get(i).cloned();
                if item.is_some() {
                    self.race_item(iterable, &Value::Int(i as i64), Access::Read, span);
                }
                Ok(item)
            }
            _ => match self.next_from(iterable, span) {
                Ok(item) => Ok(Some(item)),
                Err(Ctrl::Error(e)) if e.is(Kind::QueueClosed) => Ok(None),
                Err(other) => Err(other),
            },
        }
    }
}
