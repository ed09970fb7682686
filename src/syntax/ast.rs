//! The abstract syntax tree: what a script says, with names still as text.
//!
//! `syntax::lower` builds it from pest's pairs; `resolve` turns it into the
//! slot-addressed IR the evaluator runs. Nothing here evaluates anything.

use super::span::Span;

/// A parsed script.
#[derive(Debug)]
pub struct Program {
    pub stmts: Block,
}

pub type Block = Vec<Stmt>;

/// A name with the place it was written.
#[derive(Clone, Debug)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug)]
pub enum StmtKind {
    /// `import "path" as name`: the path as written, where it is, and the
    /// name (`None`: the file's stem).
    Import {
        path: String,
        at: Span,
        alias: Option<Ident>,
    },
    Let(Pattern, Expr),
    Fn(FnDef),
    If {
        branches: Vec<(Expr, Block)>,
        otherwise: Option<Block>,
    },
    While(Expr, Block),
    For(Pattern, Expr, Block),
    Return(Option<Expr>),
    Break,
    Continue,
    Try {
        body: Block,
        catch: Option<Catch<Ident, Block>>,
        finally: Option<Block>,
    },
    Throw(Expr),
    /// `put value into queue`.
    Put(Expr, Expr, Limit),
    /// `lock m { ... }`.
    LockBlock(Expr, Block),
    Release(Expr),
    Close(Expr),
    Terminate(Expr),
    Set(Expr),
    Clear(Expr),
    /// `notify c` (false) or `notify all c` (true).
    Notify(Expr, bool),
    /// `target = value`, or `target op= value` when `op` is set.
    Assign {
        target: Expr,
        op: Option<BinOp>,
        value: Expr,
    },
    Expr(Expr),
}

/// What `let` and `for` bind.
#[derive(Debug)]
pub enum Pattern {
    Name(Ident),
    List(Vec<Pattern>, Span),
}

/// A function: declared with a name, or anonymous (`fn(x) => ...`).
#[derive(Debug)]
pub struct FnDef {
    pub name: Option<Ident>,
    pub params: Vec<Param>,
    pub body: FnBody,
    pub span: Span,
}

#[derive(Debug)]
pub struct Param {
    pub name: Ident,
    pub default: Option<Expr>,
}

#[derive(Debug)]
pub enum FnBody {
    Block(Block),
    Arrow(Box<Expr>),
}

#[derive(Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Str(String),
    Interp(Vec<InterpPart>),
    Bool(bool),
    Nil,
    Name(String),
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Lambda(Box<FnDef>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call(Box<Expr>, Vec<Arg>),
    Index(Box<Expr>, Box<Expr>),
    /// `base[start:stop:step]`, each part optional.
    Slice(Box<Expr>, Box<[Option<Expr>; 3]>),
    Field(Box<Expr>, Ident),
    /// `thread f(x)` / `spawn { ... }` (`process`), with `daemon` and `as name`.
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
        args: Vec<Arg>,
        pool: Box<Expr>,
    },
    /// `join t`, `join t timeout s`.
    Join(Box<Expr>, Option<Box<Expr>>),
    /// `get q`, with a limit.
    Get(Box<Expr>, Limit),
    /// `acquire m`, with a limit.
    Acquire(Box<Expr>, Limit),
    /// `wait e`, `wait c timeout s`.
    Wait(Box<Expr>, Option<Box<Expr>>),
}

/// What a new task runs.
#[derive(Debug)]
pub enum TaskTarget {
    /// A call, whose callee and arguments the starting task evaluates.
    Call(Box<Expr>, Vec<Arg>),
    /// A block, run as a closure of no parameters.
    Block(Box<FnDef>),
}

/// How long a blocking operation may wait.
#[derive(Debug)]
pub enum Limit {
    Forever,
    Timeout(Box<Expr>),
    NoWait,
}

/// One argument of a call: positional, or named (`name: value`).
#[derive(Debug)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

/// A piece of an interpolated string.
#[derive(Debug)]
pub enum InterpPart {
    Text(String),
    Expr(Expr, Option<FormatSpec>),
}

/// `{x:>8.2}`: fill, alignment, width and decimals, as in Python's
/// format mini-language (a subset: no sign or grouping options).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FormatSpec {
    pub fill: Option<char>,
    pub align: Option<Align>,
    pub zero: bool,
    pub width: usize,
    pub precision: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Align {
    Left,
    Right,
    Center,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    And,
    Or,
}

impl BinOp {
    /// The operator as written, for messages.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::FloorDiv => "//",
            BinOp::Mod => "%",
            BinOp::Pow => "**",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::NotIn => "not in",
            BinOp::And => "and",
            BinOp::Or => "or",
        }
    }
}

/// A `catch` clause: what it catches, the name it binds, its block (in
/// the AST, and again once resolved).
#[derive(Clone, Debug, PartialEq)]
pub struct Catch<Name, Body> {
    pub catches: Catches,
    pub name: Option<Name>,
    pub block: Body,
}

/// What a `catch` clause catches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Catches {
    /// Errors (`catch e`): never a cancel.
    Errors,
    /// Ctrl-C, by name only (`catch Interrupted e`).
    Interrupted,
    /// `terminate`, by name only (`catch Terminated e`).
    Terminated,
}
