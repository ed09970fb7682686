//! concsh: a small language about concurrency, run on real OS processes
//! and threads.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//! source text ──syntax::parse──▶ AST ──resolve──▶ IR (slots) ──vm::compile──▶ bytecode ──vm (on eval::Interp)──▶ effects
//!   grammar/concsh.pest            names → slots,                register ops;   the rare constructs go to
//!   syntax::lower (pest → AST)     errors before run             rare ones kept   eval's tree walk, same frame
//! ```
//!
//! - [`syntax`]: text to AST; runs nothing. The only place that sees pest.
//! - [`resolve`]: AST to IR; every name becomes a frame slot, a captured
//!   cell, a global or a builtin; finds mistakes before anything runs;
//!   loads the modules a script imports.
//! - [`vm`]: function bodies compiled to register bytecode, and the loop
//!   that runs them.
//! - [`eval`]: a task's evaluator: its frames, calls, operators,
//!   builtins, methods, and the tree walk of what the VM hands it.
//! - [`tasks`]: threads, forked processes and pools, and what the tasks of
//!   one process share.
//! - [`observe`]: the deadlock watch, task dumps, traces and timelines.
//! - [`sync`]: the primitives, in memory shared across processes.
//! - [`runtime`]: values, errors, printing, output, cancellation; knows
//!   nothing of the syntax tree.
//! - [`report`]: miette diagnostics for every phase.
//! - [`cli`]: the command line; [`repl`]: the interactive prompt;
//!   [`signals`]: Ctrl-C.

pub mod cli;
pub mod cluster;
pub mod eval;
pub mod observe;
pub mod repl;
pub mod report;
pub mod resolve;
pub mod runtime;
pub mod signals;
pub mod sync;
pub mod syntax;
pub mod tasks;
pub mod vm;
