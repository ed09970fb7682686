//! Resolved IR to [`Code`]: a function body becomes register operations.
//!
//! The everyday statements and expressions (variables, arithmetic,
//! comparisons, calls, methods, fields, items, `if`, `while`, `for`,
//! `return`) compile to ops. The rest (`try`, `lock`, `spawn`, `join`,
//! queues, pools, interpolation, ...) is handed whole to the tree
//! evaluator through an `Eval` or `Exec` op, which works on the same frame:
//! the VM and the tree evaluator share frame layout, so a body may mix the
//! two freely and every guarantee of those constructs holds unchanged.

use super::code::{Code, Held, HeldCall, HeldPlace, NO_LOOP, Op, Piece, Reg, Target, holds_on};
use crate::resolve::ir::*;
use crate::runtime::{Str, Value};
use crate::syntax::Span;

/// Compiles a function body whose resolved frame has `slots` slots; `None`
/// if the code came out ill-formed (a bug of this compiler, stopped here
/// rather than met at run time as a read past a frame).
pub fn compile(body: Block, slots: u32) -> Option<Code> {
    let mut c = Compiler { code: Code::empty(), slots, temps: 0, most: 0, loops: Vec::new() };
    for stmt in body {
        c.stmt(stmt);
    }
    c.emit(Op::ReturnNil { used: 0 }, Span::default());
    c.code.frame = slots + c.most;
    c.code.settle_returns(slots);
    c.code.well_formed().then_some(c.code)
}

/// A loop being compiled: the jumps its `break`s and `continue`s made,
/// patched when the loop's end and its test are placed.
#[derive(Default)]
struct Loop {
    breaks: Vec<usize>,
    continues: Vec<usize>,
}

struct Compiler {
    code: Code,
    slots: u32,
    /// Temporaries in use above the slots, and the most ever in use.
    temps: u32,
    most: u32,
    loops: Vec<Loop>,
}

/// An expression that runs no code of the script's: reading it first or
/// last is all one.
fn plain(expr: &Expr) -> bool {
    matches!(expr.kind, ExprKind::Local(_) | ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Str(_))
}

/// A small int constant that fits an immediate operand.
fn small_int(expr: &Expr) -> Option<i32> {
    match expr.kind {
        ExprKind::Int(n) => i32::try_from(n).ok(),
        _ => None,
    }
}

/// A set-once global or a captured variable, which an op can read where
/// it is instead of cloning it into a register.
fn held_place(expr: &Expr) -> Option<HeldPlace> {
    let held = match expr.kind {
        ExprKind::Fixed(index) => Held::Global(index),
        ExprKind::Upvalue(index) => Held::Up(index),
        _ => return None,
    };
    Some(HeldPlace { held, span: expr.span })
}

impl Compiler {
    fn emit(&mut self, op: Op, span: Span) -> usize {
        self.code.ops.push(op);
        self.code.spans.push(span);
        self.code.ops.len() - 1
    }

    fn here(&self) -> u32 {
        self.code.ops.len() as u32
    }

    /// Points the jump at `at` to `to`.
    fn patch(&mut self, at: usize, to: u32) {
        match &mut self.code.ops[at] {
            Op::Jump { to: t }
            | Op::JumpIfFalse { to: t, .. }
            | Op::JumpIfTrue { to: t, .. }
            | Op::Test { to: t, .. }
            | Op::TestInt { to: t, .. }
            | Op::ForNext { to: t, .. } => *t = to,
            _ => unreachable!("only jumps are patched"),
        }
    }

    fn temp(&mut self) -> Reg {
        let reg = self.slots + self.temps;
        self.temps += 1;
        self.most = self.most.max(self.temps);
        reg
    }

    /// An op that only writes its result: into `dst` if given, else a
    /// new temporary; gives the register.
    fn load(&mut self, dst: Option<Reg>, span: Span, op: impl FnOnce(Reg) -> Op) -> Reg {
        let dst = dst.unwrap_or_else(|| self.temp());
        self.emit(op(dst), span);
        dst
    }

    /// An op with operands to compute first (a call's arguments, a list's
    /// items): its result register is taken first, so the operands'
    /// temporaries are free again once the op is emitted. A fresh result
    /// register is handed on as a spare, to hold an operand: an op reads
    /// its operands before it writes its result, and a frame with one
    /// register fewer is one fewer to clear when it returns (`fib(n - 1)`
    /// computes `n - 1` where the call's result goes).
    fn with_operands(
        &mut self,
        dst: Option<Reg>,
        span: Span,
        op: impl FnOnce(&mut Compiler, Reg, Option<Reg>) -> Op,
    ) -> Reg {
        let (dst, spare) = match dst {
            Some(dst) => (dst, None),
            None => {
                let dst = self.temp();
                (dst, Some(dst))
            }
        };
        let mark = self.temps;
        let op = op(self, dst, spare);
        self.temps = mark;
        self.emit(op, span);
        dst
    }

    fn load_const(&mut self, value: Value, dst: Option<Reg>, span: Span) -> Reg {
        let index = self.code.consts.len() as u32;
        self.code.consts.push(value);
        self.load(dst, span, |dst| Op::Const { dst, index })
    }

    fn name(&mut self, name: Str) -> u32 {
        match self.code.names.iter().position(|n| *n == name) {
            Some(i) => i as u32,
            None => {
                self.code.names.push(name);
                self.code.hints.push(Default::default());
                (self.code.names.len() - 1) as u32
            }
        }
    }

    fn block(&mut self, block: Block) {
        for stmt in block {
            self.stmt(stmt);
        }
    }

    /// Hands a statement to the tree evaluator.
    fn exec(&mut self, stmt: Stmt) {
        let span = stmt.span;
        let index = self.code.stmts.len() as u32;
        self.code.stmts.push(stmt);
        let at = self.emit(Op::Exec { stmt: index, brk: NO_LOOP, cont: NO_LOOP }, span);
        if let Some(inner) = self.loops.last_mut() {
            // A `break` or `continue` inside goes where the loop's own do,
            // known when the loop is closed.
            inner.breaks.push(at);
            inner.continues.push(at);
        }
    }

    fn stmt(&mut self, stmt: Stmt) {
        let mark = self.temps;
        let span = stmt.span;
        match stmt.kind {
            StmtKind::Expr(e) => {
                self.expr(e, None);
            }
            StmtKind::Let(Pattern::Bind(binding), value) => match binding {
                Binding::Local(slot) => {
                    self.expr(value, Some(slot));
                }
                binding => {
                    let src = self.expr(value, None);
                    self.bind(binding, src, span);
                }
            },
            StmtKind::Let(pattern, value) => {
                let src = self.expr(value, None);
                let index = self.code.patterns.len() as u32;
                self.code.patterns.push(pattern);
                self.emit(Op::Unpack { pattern: index, src }, span);
            }
            StmtKind::Assign(place, value) => self.assign(place, value, span),
            StmtKind::OpAssign(place, op, value) => self.op_assign(place, op, value, span),
            StmtKind::If(branches, otherwise) => {
                let mut ends = Vec::new();
                for (cond, body) in branches {
                    let skip = self.condition(cond, false);
                    self.block(body);
                    ends.push(self.emit(Op::Jump { to: 0 }, span));
                    let next = self.here();
                    self.patch(skip, next);
                }
                if let Some(body) = otherwise {
                    self.block(body);
                }
                let end = self.here();
                for at in ends {
                    self.patch(at, end);
                }
            }
            // The test sits after the body, so a pass is one jump, the
            // test's own, backwards.
            StmtKind::While(cond, body) => {
                let enter = self.emit(Op::Jump { to: 0 }, span);
                let head = self.here();
                self.loops.push(Loop::default());
                self.block(body);
                let test = self.here();
                self.patch(enter, test);
                let back = self.condition(cond, true);
                self.patch(back, head);
                self.end_loop(test);
            }
            StmtKind::For(pattern, iterable, body)
                if !matches!(&iterable.kind, ExprKind::PoolMap { unordered: true, .. }) =>
            {
                let iter_span = iterable.span;
                // The iterable and its position: two registers kept for the loop.
                let iter = self.temp();
                self.temp();
                self.expr(iterable, Some(iter));
                self.emit(Op::ForPrep { iter }, iter_span);
                let (dst, bind) = match pattern {
                    Pattern::Bind(Binding::Local(slot)) => (slot, None),
                    other => (self.temp(), Some(other)),
                };
                let enter = self.emit(Op::Jump { to: 0 }, span);
                let head = self.here();
                match bind {
                    Some(Pattern::Bind(binding)) => self.bind(binding, dst, span),
                    Some(pattern) => {
                        let index = self.code.patterns.len() as u32;
                        self.code.patterns.push(pattern);
                        self.emit(Op::Unpack { pattern: index, src: dst }, span);
                    }
                    None => {}
                }
                self.loops.push(Loop::default());
                self.block(body);
                let next = self.here();
                self.patch(enter, next);
                self.emit(Op::ForNext { iter, dst, to: head }, iter_span);
                self.end_loop(next);
            }
            StmtKind::Return(value) => match value {
                Some(Expr { kind: ExprKind::Binary(op, a, b), span })
                    if !matches!(op, BinOp::And | BinOp::Or) && small_int(&b).is_none() =>
                {
                    let a = self.expr(*a, None);
                    let b = self.expr(*b, None);
                    self.emit(Op::ReturnBinary { op, a, b, used: 0 }, span);
                }
                Some(value) => {
                    let src = self.expr(value, None);
                    self.emit(Op::Return { src, used: 0 }, span);
                }
                None => {
                    self.emit(Op::ReturnNil { used: 0 }, span);
                }
            },
            StmtKind::Break if !self.loops.is_empty() => {
                let at = self.emit(Op::Jump { to: 0 }, span);
                self.loops.last_mut().expect("checked above").breaks.push(at);
            }
            StmtKind::Continue if !self.loops.is_empty() => {
                let at = self.emit(Op::Jump { to: 0 }, span);
                self.loops.last_mut().expect("checked above").continues.push(at);
            }
            StmtKind::Throw(value) => {
                let src = self.expr(value, None);
                self.emit(Op::Throw { src }, span);
            }
            StmtKind::Release(target) => {
                let target = self.target(target);
                self.emit(Op::Release { target }, span);
            }
            kind => self.exec(Stmt { kind, span }),
        }
        self.temps = mark;
    }

    /// Closes the innermost loop, which ends here: its `break`s jump
    /// here, its `continue`s to its test at `test`.
    fn end_loop(&mut self, test: u32) {
        let end = self.here();
        let done = self.loops.pop().expect("a loop is open");
        for at in done.breaks {
            match &mut self.code.ops[at] {
                Op::Exec { brk, .. } => *brk = end,
                _ => self.patch(at, end),
            }
        }
        for at in done.continues {
            match &mut self.code.ops[at] {
                Op::Exec { cont, .. } => *cont = test,
                _ => self.patch(at, test),
            }
        }
    }

    /// Stores register `src` where `binding` says.
    fn bind(&mut self, binding: Binding, src: Reg, span: Span) {
        let op = match binding {
            Binding::Local(slot) => Op::Move { dst: slot, src },
            Binding::Cell(slot) => Op::NewCell { slot, src, fixed: false },
            Binding::FixedCell(slot) => Op::NewCell { slot, src, fixed: true },
            Binding::Global(index) => Op::StoreGlobal { index, src },
            Binding::Fixed(index) => Op::SetFixed { index, src },
        };
        self.emit(op, span);
    }

    fn assign(&mut self, place: Place, value: Expr, span: Span) {
        match place {
            Place::Local(slot) if !matches!(value.kind, ExprKind::And(..) | ExprKind::Or(..)) => {
                self.expr(value, Some(slot));
            }
            Place::Local(slot) => {
                let src = self.expr(value, None);
                self.emit(Op::Move { dst: slot, src }, span);
            }
            Place::LocalCell(slot) => {
                let src = self.expr(value, None);
                self.emit(Op::StoreCell { slot, src }, span);
            }
            Place::Upvalue(index) => {
                let src = self.expr(value, None);
                self.emit(Op::StoreUp { index, src }, span);
            }
            Place::Global(index) => {
                let src = self.expr(value, None);
                self.emit(Op::StoreGlobal { index, src }, span);
            }
            // The value first, then the place, as the tree evaluator does.
            Place::Index(base, index) => {
                let src = self.expr(value, None);
                let base = self.expr(*base, None);
                let index = self.expr(*index, None);
                self.emit(Op::SetIndex { base, index, src }, span);
            }
            Place::Field(base, name) => {
                let src = self.expr(value, None);
                let base = self.expr(*base, None);
                let name = self.name(name);
                self.emit(Op::SetField { base, name, src }, span);
            }
        }
    }

    fn op_assign(&mut self, place: Place, op: BinOp, value: Expr, span: Span) {
        match place {
            Place::Local(dst) => match small_int(&value) {
                Some(value) if matches!(op, BinOp::Add | BinOp::Sub) => {
                    self.emit(Op::UpdateInt { op, dst, value }, span);
                }
                _ => {
                    let src = self.expr(value, None);
                    self.emit(Op::Update { op, dst, src }, span);
                }
            },
            Place::LocalCell(slot) => {
                let src = self.expr(value, None);
                self.emit(Op::UpdateCell { op, slot, src }, span);
            }
            Place::Upvalue(index) => {
                let src = self.expr(value, None);
                self.emit(Op::UpdateUp { op, index, src }, span);
            }
            Place::Global(index) => {
                let src = self.expr(value, None);
                self.emit(Op::UpdateGlobal { op, index, src }, span);
            }
            // The place once, then the value, as the tree evaluator does.
            Place::Index(base, index) => {
                let base = self.expr(*base, None);
                let index = self.expr(*index, None);
                let src = self.expr(value, None);
                self.emit(Op::UpdateItem { op, base, index, src }, span);
            }
            Place::Field(base, name) => {
                // Fused only when the value cannot run code that changes
                // the variable: the variable is read after the value here.
                if let ExprKind::Upvalue(index) = base.kind
                    && plain(&value)
                {
                    let src = self.expr(value, None);
                    let name = self.name(name);
                    self.emit(Op::UpdateFieldUp { op, index, name, src }, span);
                    return;
                }
                let base = self.expr(*base, None);
                let src = self.expr(value, None);
                let name = self.name(name);
                self.emit(Op::UpdateField { op, base, name, src }, span);
            }
        }
    }

    /// Compiles a condition; gives the jump (to patch) taken when the
    /// condition comes out as `when`.
    fn condition(&mut self, cond: Expr, when: bool) -> usize {
        let span = cond.span;
        let mark = self.temps;
        let jump_on = |op| match when {
            true => holds_on(op),
            false => !holds_on(op) & 0b111,
        };
        let at = match cond.kind {
            ExprKind::Binary(op @ (BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne), a, b)
                if small_int(&b).is_some() =>
            {
                let value = small_int(&b).unwrap_or(0);
                let a = self.expr(*a, None);
                self.emit(Op::TestInt { op, when, jump_on: jump_on(op), a, value, to: 0 }, span)
            }
            ExprKind::Binary(op @ (BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne), a, b) => {
                let a = self.expr(*a, None);
                let b = self.expr(*b, None);
                self.emit(Op::Test { op, when, jump_on: jump_on(op), a, b, to: 0 }, span)
            }
            ExprKind::Unary(UnOp::Not, inner) => {
                let cond = self.expr(*inner, None);
                match when {
                    true => self.emit(Op::JumpIfFalse { cond, to: 0 }, span),
                    false => self.emit(Op::JumpIfTrue { cond, to: 0 }, span),
                }
            }
            kind => {
                let cond = self.expr(Expr { kind, span }, None);
                match when {
                    true => self.emit(Op::JumpIfTrue { cond, to: 0 }, span),
                    false => self.emit(Op::JumpIfFalse { cond, to: 0 }, span),
                }
            }
        };
        self.temps = mark;
        at
    }

    /// The object of `acquire` or `release`: a set-once global or a
    /// captured variable is read where it is, as the tree evaluator's
    /// `subject` does; anything else is computed into a register.
    fn target(&mut self, expr: Expr) -> Target {
        match held_place(&expr) {
            Some(place) => {
                self.code.held_places.push(place);
                Target::Held(self.code.held_places.len() as u32 - 1)
            }
            None => Target::Reg(self.expr(expr, None)),
        }
    }

    /// The registers of `args`, in a run of the argument table; the first
    /// argument that is computed (not a variable's own slot) goes to
    /// `spare` if given (see `with_operands`).
    fn arg_list(&mut self, args: Vec<Expr>, first: Option<Reg>, mut spare: Option<Reg>) -> (u32, u32) {
        let mut computed = |c: &mut Compiler, arg: Expr| {
            let into = if matches!(arg.kind, ExprKind::Local(_)) { None } else { spare.take() };
            c.expr(arg, into)
        };
        let regs: Vec<Reg> = first.into_iter().chain(args.into_iter().map(|a| computed(self, a))).collect();
        let start = self.code.args.len() as u32;
        let count = regs.len() as u32;
        self.code.args.extend(regs);
        (start, count)
    }

    /// Compiles `expr`, its value ending in `dst` if given, else in a
    /// register of the compiler's choice (a local's own slot, when it is
    /// one), which it returns.
    fn expr(&mut self, expr: Expr, dst: Option<Reg>) -> Reg {
        let span = expr.span;
        let is_and = matches!(expr.kind, ExprKind::And(..));
        match expr.kind {
            ExprKind::Local(slot) => match dst {
                Some(dst) if dst != slot => {
                    self.emit(Op::Move { dst, src: slot }, span);
                    dst
                }
                _ => slot,
            },
            ExprKind::Int(n) => self.load_const(Value::Int(n), dst, span),
            ExprKind::Float(f) => self.load_const(Value::Float(f), dst, span),
            ExprKind::Str(s) => self.load_const(Value::Str(s), dst, span),
            ExprKind::Bool(b) => self.load_const(Value::Bool(b), dst, span),
            ExprKind::Nil => self.load_const(Value::Nil, dst, span),
            ExprKind::LocalCell(slot) => self.load(dst, span, |dst| Op::LoadCell { dst, slot }),
            ExprKind::Upvalue(index) => self.load(dst, span, |dst| Op::LoadUp { dst, index }),
            ExprKind::Global(index) => self.load(dst, span, |dst| Op::LoadGlobal { dst, index }),
            ExprKind::Fixed(index) => self.load(dst, span, |dst| Op::LoadFixed { dst, index }),
            ExprKind::Func(index) => self.load(dst, span, |dst| Op::LoadFunc { dst, index }),
            ExprKind::Builtin(builtin) => self.load(dst, span, |dst| Op::LoadBuiltin { dst, builtin }),
            // The constant is read as `binary` would read its register.
            ExprKind::Binary(op, a, b)
                if !matches!(op, BinOp::And | BinOp::Or)
                    && let Some(value) = small_int(&b) =>
            {
                let src = self.expr(*a, None);
                self.load(dst, span, |dst| Op::BinaryInt { op, dst, src, value })
            }
            ExprKind::Binary(op, a, b) => self.binary(op, *a, *b, dst, span),
            ExprKind::Unary(op, inner) => {
                let src = self.expr(*inner, None);
                self.load(dst, span, |dst| Op::Unary { op, dst, src })
            }
            ExprKind::And(a, b) | ExprKind::Or(a, b) => {
                // Both operands land in one fresh register: `dst` may be an
                // operand (`x = y or x`), so it is written only at the end.
                let result = self.temp();
                self.expr(*a, Some(result));
                let skip = match is_and {
                    true => self.emit(Op::JumpIfFalse { cond: result, to: 0 }, span),
                    false => self.emit(Op::JumpIfTrue { cond: result, to: 0 }, span),
                };
                self.expr(*b, Some(result));
                let end = self.here();
                self.patch(skip, end);
                match dst {
                    Some(dst) => {
                        self.emit(Op::Move { dst, src: result }, span);
                        dst
                    }
                    None => result,
                }
            }
            ExprKind::Index(base, index) => {
                let base = self.expr(*base, None);
                let index = self.expr(*index, None);
                self.load(dst, span, |dst| Op::Index { dst, base, index })
            }
            ExprKind::Field(base, name) if let ExprKind::Upvalue(index) = base.kind => {
                let name = self.name(name);
                self.load(dst, span, |dst| Op::FieldUp { dst, index, name })
            }
            ExprKind::Field(base, name) => {
                let base = self.expr(*base, None);
                let name = self.name(name);
                self.load(dst, span, |dst| Op::Field { dst, base, name })
            }
            ExprKind::CallFunc(func, args) if args.named.is_empty() => {
                self.with_operands(dst, span, |c, dst, spare| {
                    let (args, argc) = c.arg_list(args.positional, None, spare);
                    Op::CallFunc { dst, func, args, argc }
                })
            }
            ExprKind::Call(callee, args) if args.named.is_empty() => self.with_operands(dst, span, |c, dst, spare| {
                let callee = c.expr(*callee, None);
                let (args, argc) = c.arg_list(args.positional, None, spare);
                Op::CallValue { dst, callee, args, argc }
            }),
            ExprKind::CallBuiltin(builtin, args) if args.named.is_empty() => {
                self.with_operands(dst, span, |c, dst, spare| {
                    let (args, argc) = c.arg_list(args.positional, None, spare);
                    Op::CallBuiltin { dst, builtin, args, argc }
                })
            }
            // The method of a set-once global or a captured variable: the
            // receiver is read where it is.
            ExprKind::Method(recv, name, args)
                if args.named.is_empty()
                    && let Some(place) = held_place(&recv) =>
            {
                self.with_operands(dst, span, |c, dst, spare| {
                    let recv = c.temp();
                    let (args, argc) = c.arg_list(args.positional, Some(recv), spare);
                    let name = c.name(name);
                    let call = c.code.held_calls.len() as u32;
                    c.code.held_calls.push(HeldCall { recv: place, name });
                    Op::MethodHeld { dst, call, args, argc }
                })
            }
            ExprKind::Method(recv, name, args) if args.named.is_empty() => {
                self.with_operands(dst, span, |c, dst, spare| {
                    let recv = c.expr(*recv, None);
                    let (args, argc) = c.arg_list(args.positional, Some(recv), spare);
                    let name = c.name(name);
                    Op::Method { dst, name, args, argc }
                })
            }
            ExprKind::Acquire(target, Limit::Forever) => self.with_operands(dst, span, |c, dst, _| {
                let target = c.target(*target);
                Op::Acquire { dst, target }
            }),
            ExprKind::List(items) => self.with_operands(dst, span, |c, dst, spare| {
                let (args, argc) = c.arg_list(items, None, spare);
                Op::MakeList { dst, args, argc }
            }),
            ExprKind::Interp(parts) => self.with_operands(dst, span, |c, dst, _| {
                let pieces = parts
                    .into_iter()
                    .map(|part| match part {
                        InterpPart::Text(text) => Piece::Text(text),
                        InterpPart::Expr(e, spec) => Piece::Value(c.expr(e, None), spec),
                    })
                    .collect();
                let index = c.code.formats.len() as u32;
                c.code.formats.push(pieces);
                Op::Format { dst, pieces: index }
            }),
            ExprKind::Lambda(def) => {
                let index = self.code.defs.len() as u32;
                self.code.defs.push(def);
                self.load(dst, span, |dst| Op::Closure { dst, def: index })
            }
            kind => {
                let index = self.code.exprs.len() as u32;
                self.code.exprs.push(Expr { kind, span });
                self.load(dst, span, |dst| Op::Eval { dst, expr: index })
            }
        }
    }

    fn binary(&mut self, op: BinOp, a: Expr, b: Expr, dst: Option<Reg>, span: Span) -> Reg {
        let a = self.expr(a, None);
        let b = self.expr(b, None);
        self.load(dst, span, |dst| Op::Binary { op, dst, a, b })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops_of(source: &str, function: &str) -> Vec<Op> {
        code_of(source, function).0
    }

    /// Every function of every script in the suite compiles to code whose
    /// registers fit its frame and whose jumps land on ops (`compile`
    /// asserts it; this walks them all).
    #[test]
    fn every_script_compiles_to_well_formed_code() {
        let mut scripts = Vec::new();
        collect(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts")), &mut scripts);
        collect(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples")), &mut scripts);
        collect(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/bench")), &mut scripts);
        assert!(scripts.len() > 100, "found {} scripts", scripts.len());
        let mut functions = 0;
        for script in scripts {
            let source = std::fs::read_to_string(&script).expect("readable");
            let Ok(ast) = crate::syntax::parse(&source) else { continue };
            let program = match crate::resolve::resolve(ast) {
                Ok(program) => program,
                Err(errors) => {
                    // Scripts that show resolve errors; none may be ours.
                    let ours = errors.iter().find(|e| format!("{e:?}").contains("ill-formed"));
                    assert!(ours.is_none(), "{}: {ours:?}", script.display());
                    continue;
                }
            };
            for def in program.all_functions.iter().chain([&program.main]) {
                assert!(def.code.well_formed(), "{}: `{}`", script.display(), def.name);
                functions += 1;
            }
        }
        assert!(functions > 300, "checked {functions} functions");
    }

    fn collect(dir: &std::path::Path, into: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                collect(&path, into);
            } else if path.extension().is_some_and(|e| e == "conc") {
                into.push(path);
            }
        }
    }

    #[test]
    fn fib_compiles_to_register_ops_with_no_tree_fallback() {
        let ops = ops_of("fn fib(n) { if n < 2 { return n }\n return fib(n - 1) + fib(n - 2) }", "fib");
        let names: Vec<String> =
            ops.iter().map(|op| format!("{op:?}").split([' ', '{']).next().unwrap_or("").to_string()).collect();
        assert_eq!(
            names,
            [
                "TestInt",
                "Return",
                "Jump",
                "BinaryInt",
                "CallFunc",
                "BinaryInt",
                "CallFunc",
                "ReturnBinary",
                "ReturnNil"
            ],
            "{ops:?}"
        );
    }

    fn code_of(source: &str, function: &str) -> (Vec<Op>, u32) {
        let ast = crate::syntax::parse(source).expect("parses");
        let program = crate::resolve::resolve(ast).expect("resolves");
        let def = program.all_functions.iter().find(|d| &*d.name == function).expect("the function");
        (def.code.ops.clone(), def.code.frame)
    }

    fn used_by_returns(ops: &[Op]) -> Vec<u32> {
        ops.iter()
            .filter_map(|op| match *op {
                Op::Return { used, .. } | Op::ReturnBinary { used, .. } | Op::ReturnNil { used } => Some(used),
                _ => None,
            })
            .collect()
    }

    /// `n - 1` is computed where the call's result goes (three registers,
    /// not four), and the leaf's return clears only the parameter: no op
    /// before it wrote anything else.
    #[test]
    fn a_return_clears_only_the_registers_written_before_it() {
        let (ops, frame) = code_of("fn fib(n) { if n < 2 { return n }\n return fib(n - 1) + fib(n - 2) }", "fib");
        assert_eq!(frame, 3, "{ops:?}");
        // The last `ReturnNil` is never reached: nothing runs before it.
        assert_eq!(used_by_returns(&ops), [1, 3, 1], "{ops:?}");
    }

    /// A return early in a loop's body may run after the body's later
    /// ops went round: it clears what they wrote too.
    #[test]
    fn a_return_in_a_loop_clears_what_the_loop_wrote_after_it() {
        let source = "fn g(x) { return x }\nfn f(n) {\n let i = 0\n while true {\n  if i > n { return i }\n  i = i + g(i * 2) + g(i + 3)\n }\n}";
        let (ops, frame) = code_of(source, "f");
        assert!(frame > 2, "temporaries above the two slots: {ops:?}");
        assert_eq!(used_by_returns(&ops), [frame, frame], "{ops:?}");
        // The same return before any loop clears the slots alone.
        let (ops, frame) = code_of(
            "fn g(x) { return x }\nfn f(n) {\n let i = 0\n if i > n { return i }\n return g(i * 2) + g(i + 3)\n}",
            "f",
        );
        assert_eq!(used_by_returns(&ops), [2, frame, 2], "{ops:?}");
    }

    /// A map literal's key and the name `acc.total` looks up are one
    /// string, so a name's hint is confirmed by comparing pointers.
    #[test]
    fn a_literal_key_and_a_field_name_are_one_copy() {
        let source = "fn f() {\n let acc = {\"total\": 0}\n acc.total += 1\n return acc.total\n}";
        let ast = crate::syntax::parse(source).expect("parses");
        let program = crate::resolve::resolve(ast).expect("resolves");
        let def = program.all_functions.iter().find(|d| &*d.name == "f").expect("the function");
        let code = &def.code;
        assert_eq!(code.names.len(), 1, "{:?}", code.names);
        let key = code
            .exprs
            .iter()
            .find_map(|e| match &e.kind {
                ExprKind::Map(entries) => entries.first().and_then(|(k, _)| match &k.kind {
                    ExprKind::Str(s) => Some(s.clone()),
                    _ => None,
                }),
                _ => None,
            })
            .expect("the literal's key");
        assert!(Str::ptr_eq(&key, &code.names[0]));
    }

    /// A captured variable nothing assigns after its binding gets a fixed
    /// cell (read without a lock); one assigned anywhere does not.
    #[test]
    fn only_a_captured_variable_never_assigned_is_fixed() {
        let source = "fn adder(k) { return fn(x) => x + k }\n\
                      fn bumped(k) { let f = fn() => k\n k += 1\n return f }\n\
                      fn kept() { let n = 1\n return fn() => n }\n\
                      fn changed() { let n = 1\n let f = fn() { n = 2 }\n return f }";
        let ast = crate::syntax::parse(source).expect("parses");
        let program = crate::resolve::resolve(ast).expect("resolves");
        let def = |name: &str| program.all_functions.iter().find(|d| &*d.name == name).expect("the function").clone();
        assert_eq!(def("adder").cell_params, [(0, true)]);
        assert_eq!(def("bumped").cell_params, [(0, false)]);
        let new_cell = |name: &str| {
            def(name).code.ops.iter().find_map(|op| match op {
                Op::NewCell { fixed, .. } => Some(*fixed),
                _ => None,
            })
        };
        assert_eq!(new_cell("kept"), Some(true));
        assert_eq!(new_cell("changed"), Some(false));
    }
}
