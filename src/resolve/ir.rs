//! The resolved program: the AST with every name replaced by where its
//! value lives, so the evaluator never looks a name up by text.
//!
//! - `Local(slot)`: a slot of the running function's frame.
//! - `LocalCell(slot)`: a frame slot holding a shared cell, because a
//!   closure (or a thread block) captured the variable by reference.
//! - `Upvalue(i)`: the i-th cell captured by the running closure.
//! - `Global(i)`: a top-level `let` (shared by every thread of a process).
//! - `Fixed(i)`: a top-level `let` that nothing ever assigns again: set
//!   once, then read by every thread without a lock.
//! - `Func(i)`: a top-level `fn`, fixed before the script runs.
//! - `Builtin(b)`: a predefined function.

use std::sync::Arc;

pub use super::builtin::Builtin;
use crate::runtime::Str;
use crate::syntax::Span;
pub use crate::syntax::ast::{BinOp, FormatSpec, UnOp};
pub use crate::syntax::ast::{Catch, Catches};

/// A whole resolved script.
#[derive(Debug)]
pub struct Program {
    /// The top-level statements, run as the body of a function of no
    /// parameters (its slots hold the top level's block-scoped locals).
    pub main: Arc<FnDef>,
    /// Names of the globals, by index.
    pub globals: Vec<Arc<str>>,
    /// Top-level functions, by index, with the global each one names.
    pub functions: Vec<(u32, Arc<FnDef>)>,
    /// Every function of the program (lambdas and thread blocks included),
    /// so a function sent through a queue can be found again by its id.
    pub all_functions: Vec<Arc<FnDef>>,
}

#[derive(Debug)]
pub struct FnDef {
    /// Unique in the run (REPL inputs included): how a function value
    /// travels between tasks.
    pub id: u32,
    /// The declared name, or `<lambda>`, or `<main>` for the top level.
    pub name: Arc<str>,
    pub params: Vec<Param>,
    /// Parameters first, then every local of the body (the frame holds the
    /// code's temporaries after them: `code.frame` in all).
    pub slots: u32,
    /// Parameters a closure captures, moved into cells on entry, each
    /// with whether its cell is fixed.
    pub cell_params: Vec<(u32, bool)>,
    /// The body, compiled.
    pub code: crate::vm::Code,
    /// Where each upvalue of a new closure comes from, in the creating frame.
    pub captures: Vec<Capture>,
    pub span: Span,
}

impl FnDef {
    /// The index of the parameter called `name`.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| &*p.name == name)
    }

    /// How many arguments a call must give at least.
    pub fn required(&self) -> usize {
        self.params.iter().take_while(|p| p.default.is_none()).count()
    }
}

#[derive(Debug)]
pub struct Param {
    pub name: Arc<str>,
    pub default: Option<Expr>,
    /// The parameter's slot holds a cell (a closure captures it), and
    /// whether the body never assigns it (a fixed cell).
    pub cell: bool,
    pub fixed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capture {
    /// A cell in a slot of the creating frame.
    Local(u32),
    /// An upvalue of the creating closure.
    Upvalue(u32),
}

pub type Block = Vec<Stmt>;

#[derive(Debug)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

/// `repr(u8)` gives an explicit one-byte tag: dispatch on it is one load,
/// where the default layout would decode a niche on every match.
#[derive(Debug)]
#[repr(u8)]
pub enum StmtKind {
    Expr(Expr),
    Let(Pattern, Expr),
    /// A local `fn` declaration: makes a closure and binds it.
    Fn(Binding, Arc<FnDef>),
    Assign(Place, Expr),
    OpAssign(Place, BinOp, Expr),
    If(Vec<(Expr, Block)>, Option<Block>),
    While(Expr, Block),
    For(Pattern, Expr, Block),
    Return(Option<Expr>),
    Break,
    Continue,
    Try {
        body: Block,
        catch: Option<Catch<Binding, Block>>,
        finally: Option<Block>,
    },
    Throw(Expr),
    Put(Expr, Expr, Limit),
    LockBlock(Expr, Block),
    Release(Expr),
    Close(Expr),
    Terminate(Expr),
    Set(Expr),
    Clear(Expr),
    /// `notify c` / `notify all c` (true).
    Notify(Expr, bool),
}

/// How long a blocking operation may wait.
#[derive(Debug)]
pub enum Limit {
    Forever,
    Timeout(Box<Expr>),
    NoWait,
}

/// What a new task runs.
#[derive(Debug)]
pub enum TaskTarget {
    /// `callee(args)`, evaluated by the starting task.
    Call(Box<Expr>, Args),
    /// A block, run as a closure of no parameters.
    Block(Arc<FnDef>),
}

/// Where a declaration stores its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    Local(u32),
    /// A fresh cell in this slot: every execution of the declaration makes
    /// a new one, so closures made in a loop each keep their own variable.
    Cell(u32),
    /// A fresh cell, as `Cell`, of a variable nothing assigns after this
    /// binding: read without a lock (`VarCell::fixed`).
    FixedCell(u32),
    Global(u32),
    /// A global set once (see `ExprKind::Fixed`).
    Fixed(u32),
}

#[derive(Debug)]
pub enum Pattern {
    Bind(Binding),
    List(Vec<Pattern>, Span),
}

/// The target of an assignment.
#[derive(Debug)]
pub enum Place {
    Local(u32),
    LocalCell(u32),
    Upvalue(u32),
    Global(u32),
    Index(Box<Expr>, Box<Expr>),
    Field(Box<Expr>, Str),
}

#[derive(Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// `repr(u8)`: see [`StmtKind`].
#[derive(Debug)]
#[repr(u8)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Str(crate::runtime::Str),
    Bool(bool),
    Nil,
    Interp(Vec<InterpPart>),
    Local(u32),
    LocalCell(u32),
    Upvalue(u32),
    Global(u32),
    Fixed(u32),
    Func(u32),
    Builtin(Builtin),
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Lambda(Arc<FnDef>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Index(Box<Expr>, Box<Expr>),
    /// `base[start:stop:step]`, each part optional.
    Slice(Box<Expr>, Box<[Option<Expr>; 3]>),
    Field(Box<Expr>, Str),
    /// A call of any value.
    Call(Box<Expr>, Args),
    /// A call of a top-level function, known before the script runs.
    CallFunc(u32, Args),
    CallBuiltin(Builtin, Args),
    /// `recv.name(args)`.
    Method(Box<Expr>, Str, Args),
    /// `thread` or (`process`) `spawn`.
    Task {
        process: bool,
        daemon: bool,
        target: TaskTarget,
        name: Option<Box<Expr>>,
    },
    /// `pool [size|pool] [threads] map [unordered] f over items`.
    PoolMap {
        size: Option<Box<Expr>>,
        threads: bool,
        unordered: bool,
        func: Box<Expr>,
        items: Box<Expr>,
    },
    /// `submit f(args) to pool`.
    Submit {
        callee: Box<Expr>,
        args: Args,
        pool: Box<Expr>,
    },
    Join(Box<Expr>, Option<Box<Expr>>),
    Get(Box<Expr>, Limit),
    Acquire(Box<Expr>, Limit),
    Wait(Box<Expr>, Option<Box<Expr>>),
}

#[derive(Debug, Default)]
pub struct Args {
    pub positional: Vec<Expr>,
    pub named: Vec<(Arc<str>, Expr)>,
}

#[derive(Debug)]
pub enum InterpPart {
    Text(Arc<str>),
    Expr(Expr, Option<FormatSpec>),
}
