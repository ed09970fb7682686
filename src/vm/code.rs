//! The bytecode of one function: operations on the registers of its frame.
//!
//! A frame is a run of the task's value stack: the function's slots first
//! (parameters, then locals, as the resolver numbered them), then the
//! temporaries the compiler allocated. An operation names registers by
//! their index in the frame. Everything an operation needs beyond a few
//! numbers (constants, names, argument lists, the rare expressions and
//! statements handed to the tree evaluator) sits in a side table of the
//! [`Code`], so an [`Op`] stays 16 bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::resolve::ir::{BinOp, Builtin, Expr, FnDef, FormatSpec, Pattern, Stmt, UnOp};
use crate::runtime::Str;
use crate::runtime::Value;
use crate::runtime::value::{StrKey, Table};
use crate::syntax::Span;

/// A register: an index into the running frame.
pub type Reg = u32;

/// No loop encloses this point (an `Exec` op's `brk`/`cont`).
pub const NO_LOOP: u32 = u32::MAX;

/// A compiled function body. Its last op is `ReturnNil`, so running it
/// never steps past its end (`well_formed` checks it; no body is empty).
#[derive(Debug)]
pub struct Code {
    pub ops: Vec<Op>,
    /// The span each op reports an error at.
    pub spans: Vec<Span>,
    pub consts: Vec<Value>,
    /// Field and method names, as the program's one copy of each
    /// (`runtime::text::Interner`).
    pub names: Vec<Str>,
    /// Where each name was last found in a map, beside `names`.
    pub hints: Vec<NameHint>,
    /// Argument lists: `args` of a call op is the first of `argc` entries.
    pub args: Vec<Reg>,
    /// Expressions and statements the tree evaluator runs for the VM.
    pub exprs: Vec<Expr>,
    pub stmts: Vec<Stmt>,
    pub patterns: Vec<Pattern>,
    /// Functions whose closures this body makes (`fn(x) => ...`).
    pub defs: Vec<Arc<FnDef>>,
    /// The pieces of interpolated strings.
    pub formats: Vec<Vec<Piece>>,
    /// What each `MethodHeld` calls.
    pub held_calls: Vec<HeldCall>,
    /// The objects of `acquire` and `release` read where they are.
    pub held_places: Vec<HeldPlace>,
    /// Frame size: the function's slots, then its temporaries.
    pub frame: u32,
}

/// `obj.name(...)` where `obj` is a variable held outside the frame
/// (`Op::MethodHeld`).
#[derive(Debug, Clone, Copy)]
pub struct HeldCall {
    pub recv: HeldPlace,
    /// Index into `names`.
    pub name: u32,
}

/// A variable held outside the frame, which an op reads where it is
/// rather than as a clone (cloning an object or a lock is a write to its
/// count, which every thread using it shares).
#[derive(Debug, Clone, Copy)]
pub struct HeldPlace {
    pub held: Held,
    /// Its span, for an error reading it.
    pub span: Span,
}

/// Where a held variable is.
#[derive(Debug, Clone, Copy)]
pub enum Held {
    /// A set-once global.
    Global(u32),
    /// A captured variable (`up[i]`): read in place when nothing assigns it.
    Up(u32),
}

/// The object of `acquire` or `release`.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Reg(Reg),
    /// `held_places[i]`.
    Held(u32),
}

/// Where a name (`acc.total`, `acc.add(i)`) was found in the last map
/// looked in: maps made by one constructor keep their keys in one order,
/// so the next map usually has it at the same position, and checking that
/// one key skips hashing the name. A hint is shared by every thread
/// running the code; it is only ever a guess, checked before use.
#[derive(Debug)]
pub struct NameHint(AtomicU32);

impl Default for NameHint {
    fn default() -> NameHint {
        NameHint(AtomicU32::new(u32::MAX))
    }
}

impl NameHint {
    /// The position of the string key `name` in `table`.
    #[inline(always)]
    pub fn find(&self, table: &Table, name: &Str) -> Option<usize> {
        let guess = self.0.load(Ordering::Relaxed) as usize;
        // A key made from the program's text is the name's own copy: one
        // pointer compare. Other keys (read from JSON, sent by a process)
        // are compared as text.
        if let Some(key) = table.str_key_at(guess)
            && (Str::ptr_eq(key, name) || key.as_str() == name.as_str())
        {
            return Some(guess);
        }
        let found = table.get_index_of(&StrKey(name.as_str()))?;
        // Written only when it changes: the line stays shared between
        // threads that read it.
        self.0.store(found as u32, Ordering::Relaxed);
        Some(found)
    }
}

impl Code {
    /// The registers of the argument list `args`, `argc` long, of one of
    /// this code's ops.
    #[inline(always)]
    pub fn arg_regs(&self, args: u32, argc: u32) -> &[Reg] {
        let range = args as usize..args as usize + argc as usize;
        debug_assert!(self.args.get(range.clone()).is_some(), "an argument list past the table");
        // SAFETY: `well_formed` (which `compile` asserts of every body)
        // checked that each op's argument list lies in `args`.
        unsafe { self.args.get_unchecked(range) }
    }

    /// Where `names[name]` is in `table`, guessed first from its hint.
    #[inline(always)]
    pub fn find_name(&self, name: u32, table: &Table) -> Option<usize> {
        self.hints[name as usize].find(table, &self.names[name as usize])
    }
}

/// A piece of an interpolated string (`"item {i}: {x:>4}"`).
#[derive(Debug)]
pub enum Piece {
    Text(Arc<str>),
    Value(Reg, Option<FormatSpec>),
}

/// One operation. `dst` is written after every operand is read, so a
/// destination may also be an operand.
///
/// A jump backwards (a loop's) and a call answer a cancel, a fork's pause
/// or a where-are-you: every long run passes through one of them.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// `dst = consts[index]`.
    Const {
        dst: Reg,
        index: u32,
    },
    Move {
        dst: Reg,
        src: Reg,
    },
    /// `dst = src op value` for a small int constant (`n - 1`, `i * 7919`,
    /// `x % 2`): no register and no op to load the constant.
    BinaryInt {
        op: BinOp,
        dst: Reg,
        src: Reg,
        value: i32,
    },
    /// Reads and writes of variables that do not live in a register.
    LoadCell {
        dst: Reg,
        slot: Reg,
    },
    StoreCell {
        slot: Reg,
        src: Reg,
    },
    /// A fresh cell in `slot` holding `src` (a `let` a closure captures).
    NewCell {
        slot: Reg,
        src: Reg,
        /// Never assigned after (`Binding::FixedCell`).
        fixed: bool,
    },
    LoadUp {
        dst: Reg,
        index: u32,
    },
    StoreUp {
        index: u32,
        src: Reg,
    },
    LoadGlobal {
        dst: Reg,
        index: u32,
    },
    StoreGlobal {
        index: u32,
        src: Reg,
    },
    LoadFixed {
        dst: Reg,
        index: u32,
    },
    SetFixed {
        index: u32,
        src: Reg,
    },
    LoadFunc {
        dst: Reg,
        index: u32,
    },
    LoadBuiltin {
        dst: Reg,
        builtin: Builtin,
    },
    Binary {
        op: BinOp,
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Unary {
        op: UnOp,
        dst: Reg,
        src: Reg,
    },
    /// `dst op= src` on a register, in place (`s += t` appends).
    Update {
        op: BinOp,
        dst: Reg,
        src: Reg,
    },
    /// `dst op= value` on a register, `op` being `+` or `-`, for a small
    /// int constant.
    UpdateInt {
        op: BinOp,
        dst: Reg,
        value: i32,
    },
    UpdateCell {
        op: BinOp,
        slot: Reg,
        src: Reg,
    },
    UpdateUp {
        op: BinOp,
        index: u32,
        src: Reg,
    },
    UpdateGlobal {
        op: BinOp,
        index: u32,
        src: Reg,
    },
    UpdateItem {
        op: BinOp,
        base: Reg,
        index: Reg,
        src: Reg,
    },
    UpdateField {
        op: BinOp,
        base: Reg,
        name: u32,
        src: Reg,
    },
    Index {
        dst: Reg,
        base: Reg,
        index: Reg,
    },
    SetIndex {
        base: Reg,
        index: Reg,
        src: Reg,
    },
    Field {
        dst: Reg,
        base: Reg,
        name: u32,
    },
    SetField {
        base: Reg,
        name: u32,
        src: Reg,
    },
    /// `Field` and `UpdateField` on a captured variable (`acc.total` in
    /// the object idiom): a fixed cell's map is read where it is, not
    /// copied out (a write to its count) first.
    FieldUp {
        dst: Reg,
        index: u32,
        name: u32,
    },
    UpdateFieldUp {
        op: BinOp,
        index: u32,
        name: u32,
        src: Reg,
    },
    Jump {
        to: u32,
    },
    JumpIfFalse {
        cond: Reg,
        to: u32,
    },
    JumpIfTrue {
        cond: Reg,
        to: u32,
    },
    /// Jumps to `to` when the comparison `a op b` comes out as `when`.
    /// For two ints, `jump_on` answers without looking at `op`: bit 0, 1
    /// or 2 says whether to jump when `a` is less than, equal to or
    /// greater than `b` (no second dispatch on the operator).
    Test {
        op: BinOp,
        when: bool,
        jump_on: u8,
        a: Reg,
        b: Reg,
        to: u32,
    },
    /// `Test` against a small int constant (`n < 2`).
    TestInt {
        op: BinOp,
        when: bool,
        jump_on: u8,
        a: Reg,
        value: i32,
        to: u32,
    },
    /// A call of a top-level function, known before the script runs.
    CallFunc {
        dst: Reg,
        func: u32,
        args: u32,
        argc: u32,
    },
    CallValue {
        dst: Reg,
        callee: Reg,
        args: u32,
        argc: u32,
    },
    CallBuiltin {
        dst: Reg,
        builtin: Builtin,
        args: u32,
        argc: u32,
    },
    /// `recv.names[name](args)`: `args` is `argc` entries, the receiver first.
    Method {
        dst: Reg,
        name: u32,
        args: u32,
        argc: u32,
    },
    /// `obj.name(args)` on a set-once global or a captured variable
    /// (`held_calls[call]`): a map's function is called with the map read
    /// where it is, not cloned (each clone is a write to its count, which
    /// every thread calling the object shares); any other receiver is
    /// loaded into the first of `args` and called as by `Method`.
    MethodHeld {
        dst: Reg,
        call: u32,
        args: u32,
        argc: u32,
    },
    /// `dst = acquire target`, with no timeout (true once held).
    Acquire {
        dst: Reg,
        target: Target,
    },
    /// `release target`.
    Release {
        target: Target,
    },
    MakeList {
        dst: Reg,
        args: u32,
        argc: u32,
    },
    /// `dst = "..."` built from `formats[pieces]`.
    Format {
        dst: Reg,
        pieces: u32,
    },
    Closure {
        dst: Reg,
        def: u32,
    },
    /// `used` in each return is how many of the frame's first registers
    /// an op before it may have written (`Code::settle_returns`): the
    /// return clears those, and the registers above still hold `nil`
    /// (a leaf of `fib` clears its parameter, not its whole frame).
    Return {
        src: Reg,
        used: u32,
    },
    /// `return a op b`: the result goes straight to the caller, with no
    /// register of its own and no `Return` op to dispatch.
    ReturnBinary {
        op: BinOp,
        a: Reg,
        b: Reg,
        used: u32,
    },
    ReturnNil {
        used: u32,
    },
    Throw {
        src: Reg,
    },
    /// Readies `iter` (holding the iterable) for `ForNext`; `iter + 1`
    /// holds the position: a range's next member, any other iterable's
    /// index.
    ForPrep {
        iter: Reg,
    },
    /// The next item into `dst` and a jump back to the loop's body at
    /// `to`; on to the next op when there is none.
    ForNext {
        iter: Reg,
        dst: Reg,
        to: u32,
    },
    /// Binds a list pattern (`let [a, b] = ...`).
    Unpack {
        pattern: u32,
        src: Reg,
    },
    /// The tree evaluator computes `exprs[expr]` into `dst`.
    Eval {
        dst: Reg,
        expr: u32,
    },
    /// The tree evaluator runs `stmts[stmt]`; a `break` or `continue`
    /// inside it jumps to `brk` or `cont` (those of the enclosing loop).
    Exec {
        stmt: u32,
        brk: u32,
        cont: u32,
    },
}

/// The `jump_on` bits of a comparison: which of less, equal and greater
/// make `a op b` hold.
pub fn holds_on(op: BinOp) -> u8 {
    match op {
        BinOp::Lt => 0b001,
        BinOp::Le => 0b011,
        BinOp::Eq => 0b010,
        BinOp::Ne => 0b101,
        BinOp::Gt => 0b100,
        BinOp::Ge => 0b110,
        _ => 0,
    }
}

// Dispatch reads one op per step: keep them small.
const _: () = assert!(std::mem::size_of::<Op>() <= 20);

impl Code {
    /// Whether `target` is a register of the frame or a place in `held_places`.
    fn reaches(&self, target: Target) -> bool {
        match target {
            Target::Reg(r) => r < self.frame,
            Target::Held(i) => (i as usize) < self.held_places.len(),
        }
    }

    /// A body that does nothing: what a function whose body failed to
    /// compile holds (the script is refused, but the function exists).
    pub fn nothing() -> Code {
        let mut code = Code::empty();
        code.ops.push(Op::ReturnNil { used: 0 });
        code.spans.push(Span::default());
        code
    }

    /// A body with no ops yet, for the compiler to fill (ill-formed until
    /// it ends in `ReturnNil`).
    pub(super) fn empty() -> Code {
        Code {
            ops: Vec::new(),
            spans: Vec::new(),
            consts: Vec::new(),
            names: Vec::new(),
            hints: Vec::new(),
            args: Vec::new(),
            exprs: Vec::new(),
            stmts: Vec::new(),
            patterns: Vec::new(),
            defs: Vec::new(),
            formats: Vec::new(),
            held_calls: Vec::new(),
            held_places: Vec::new(),
            frame: 0,
        }
    }

    /// Every register an op names lies inside the frame, every jump lands
    /// on an op, and the last op returns: what the dispatch loop relies on
    /// to address registers without a bounds check and never to step past
    /// the last op. `compile` asserts it.
    pub fn well_formed(&self) -> bool {
        self.spans.len() == self.ops.len()
            && matches!(self.ops.last(), Some(Op::ReturnNil { .. }))
            && self.ops_well_formed()
    }

    fn ops_well_formed(&self) -> bool {
        let frame = self.frame;
        let lands = |to: u32| (to as usize) < self.ops.len();
        self.ops.iter().all(|op| {
            let mut inside = true;
            let listed = self.regs_of(op, |r| inside &= r < frame).is_some();
            inside
                && listed
                && jumps_of(op).into_iter().flatten().all(lands)
                && match *op {
                    Op::Acquire { target, .. } | Op::Release { target } => self.reaches(target),
                    Op::MethodHeld { call, argc, .. } => {
                        argc > 0
                            && self
                                .held_calls
                                .get(call as usize)
                                .is_some_and(|call| (call.name as usize) < self.names.len())
                    }
                    Op::Return { used, .. } | Op::ReturnBinary { used, .. } | Op::ReturnNil { used } => used <= frame,
                    _ => true,
                }
        })
    }

    /// Calls `each` with every register `op` reads or writes; `None` when
    /// an argument list or the pieces it names are missing.
    fn regs_of(&self, op: &Op, mut each: impl FnMut(Reg)) -> Option<()> {
        let list = |args: u32, argc: u32| self.args.get(args as usize..args as usize + argc as usize);
        // An argument list and an interpolation's pieces are visited in
        // their arms; each arm gives the op's own registers.
        let regs: &[Reg] = match *op {
            Op::CallFunc { dst, args, argc, .. }
            | Op::CallBuiltin { dst, args, argc, .. }
            | Op::Method { dst, args, argc, .. }
            | Op::MethodHeld { dst, args, argc, .. }
            | Op::MakeList { dst, args, argc } => {
                list(args, argc)?.iter().for_each(|r| each(*r));
                &[dst]
            }
            Op::CallValue { dst, callee, args, argc } => {
                list(args, argc)?.iter().for_each(|r| each(*r));
                &[dst, callee]
            }
            Op::Format { dst, pieces } => {
                for piece in self.formats.get(pieces as usize)? {
                    if let Piece::Value(r, _) = piece {
                        each(*r);
                    }
                }
                &[dst]
            }
            Op::Const { dst, .. }
            | Op::LoadUp { dst, .. }
            | Op::FieldUp { dst, .. }
            | Op::LoadGlobal { dst, .. }
            | Op::LoadFixed { dst, .. }
            | Op::LoadFunc { dst, .. }
            | Op::LoadBuiltin { dst, .. }
            | Op::UpdateInt { dst, .. }
            | Op::Closure { dst, .. }
            | Op::Eval { dst, .. }
            | Op::Acquire { dst, target: Target::Held(_) } => &[dst],
            Op::Acquire { dst, target: Target::Reg(r) } => &[dst, r],
            Op::StoreUp { src, .. }
            | Op::StoreGlobal { src, .. }
            | Op::SetFixed { src, .. }
            | Op::UpdateUp { src, .. }
            | Op::UpdateFieldUp { src, .. }
            | Op::UpdateGlobal { src, .. }
            | Op::Return { src, .. }
            | Op::Throw { src }
            | Op::Unpack { src, .. } => &[src],
            Op::Move { dst, src } | Op::BinaryInt { dst, src, .. } | Op::Unary { dst, src, .. } => &[dst, src],
            Op::Update { dst, src, .. } => &[dst, src],
            Op::LoadCell { dst, slot } => &[dst, slot],
            Op::StoreCell { slot, src } | Op::NewCell { slot, src, .. } | Op::UpdateCell { slot, src, .. } => {
                &[slot, src]
            }
            Op::Binary { dst, a, b, .. } => &[dst, a, b],
            Op::ReturnBinary { a, b, .. } => &[a, b],
            Op::UpdateItem { base, index, src, .. } | Op::SetIndex { base, index, src } => &[base, index, src],
            Op::UpdateField { base, src, .. } | Op::SetField { base, src, .. } => &[base, src],
            Op::Index { dst, base, index } => &[dst, base, index],
            Op::Field { dst, base, .. } => &[dst, base],
            Op::JumpIfFalse { cond, .. } | Op::JumpIfTrue { cond, .. } => &[cond],
            Op::Test { a, b, .. } => &[a, b],
            Op::TestInt { a, .. } => &[a],
            Op::Release { target: Target::Reg(r) } => &[r],
            // `iter + 1` holds the position (see `ForPrep`).
            Op::ForPrep { iter } => &[iter, iter.saturating_add(1)],
            Op::ForNext { iter, dst, .. } => &[iter, iter.saturating_add(1), dst],
            Op::Jump { .. } | Op::ReturnNil { .. } | Op::Exec { .. } | Op::Release { .. } => &[],
        };
        regs.iter().for_each(|r| each(*r));
        Some(())
    }

    /// Writes into each return op how many of the frame's first registers
    /// an op that may run before it names: every register an op may have
    /// written by then lies below (anything the tree evaluator runs writes
    /// only the function's slots, which are counted whole). Worked out
    /// forwards over the jumps until nothing grows; a body whose loops
    /// take too many rounds keeps its whole frame cleared.
    pub(super) fn settle_returns(&mut self, slots: u32) {
        let n = self.ops.len();
        let mut named = Vec::with_capacity(n);
        for op in &self.ops {
            let mut most = slots;
            self.regs_of(op, |r| most = most.max(r.saturating_add(1)));
            named.push(most);
        }
        // `before[i]`: the most any op that may run before op `i` names.
        let mut before = vec![slots; n];
        let mut settled = false;
        for _ in 0..ROUNDS {
            let mut grew = false;
            for i in 0..n {
                let out = before[i].max(named[i]);
                let next = (i + 1 < n && falls_through(&self.ops[i])).then_some(i as u32 + 1);
                for to in jumps_of(&self.ops[i]).into_iter().chain([next]).flatten() {
                    if let Some(slot) = before.get_mut(to as usize)
                        && *slot < out
                    {
                        *slot = out;
                        grew = true;
                    }
                }
            }
            if !grew {
                settled = true;
                break;
            }
        }
        let frame = self.frame;
        for (i, op) in self.ops.iter_mut().enumerate() {
            let used = if settled { before[i].max(named[i]).min(frame) } else { frame };
            match op {
                Op::Return { used: u, .. } | Op::ReturnBinary { used: u, .. } | Op::ReturnNil { used: u } => *u = used,
                _ => {}
            }
        }
    }
}

/// Passes of `settle_returns` before it gives up: each pass carries what
/// loops write back to their start, so a body needs about one per level
/// of nesting.
const ROUNDS: usize = 64;

/// Where `op` may jump, besides the next op.
fn jumps_of(op: &Op) -> [Option<u32>; 2] {
    match *op {
        Op::Jump { to }
        | Op::JumpIfFalse { to, .. }
        | Op::JumpIfTrue { to, .. }
        | Op::Test { to, .. }
        | Op::TestInt { to, .. }
        | Op::ForNext { to, .. } => [Some(to), None],
        Op::Exec { brk, cont, .. } => [brk, cont].map(|to| (to != NO_LOOP).then_some(to)),
        _ => [None, None],
    }
}

/// Whether the op after `op` may run next.
fn falls_through(op: &Op) -> bool {
    !matches!(
        op,
        Op::Jump { .. } | Op::Return { .. } | Op::ReturnBinary { .. } | Op::ReturnNil { .. } | Op::Throw { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::value::Key;

    fn table(keys: &[Str]) -> Table {
        keys.iter().map(|k| (Key::Str(k.clone()), Value::Nil)).collect()
    }

    /// The hint is only a guess: found through the program's own copy, an
    /// equal string of another origin, or a hash when the guess is wrong.
    #[test]
    fn a_hint_finds_a_name_whatever_made_the_key() {
        let name = Str::from("total");
        let hint = NameHint::default();
        let own = table(&[Str::from("a"), name.clone()]);
        assert_eq!(hint.find(&own, &name), Some(1));
        assert_eq!(hint.find(&own, &name), Some(1), "a confirmed guess");
        let other = table(&[Str::from("b"), Str::from("total")]);
        assert_eq!(hint.find(&other, &name), Some(1), "an equal key made elsewhere");
        let moved = table(&[Str::from("total"), Str::from("c")]);
        assert_eq!(hint.find(&moved, &name), Some(0), "a wrong guess");
        let none = table(&[Str::from("c"), Str::from("totals")]);
        assert_eq!(hint.find(&none, &name), None);
    }
}
