//! concsh: a small language about concurrency, run on real OS processes
//! and threads.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//! source text ──syntax::parse──▶ AST ──resolve──▶ IR (slots) ──eval::Interp──▶ effects
//!   grammar/concsh.pest            names → slots,     tree-walking evaluator
//!   syntax::lower (pest → AST)     errors before run   over runtime values
//! ```
//!
//! - [`syntax`]: text to AST; runs nothing. The only place that sees pest.
//! - [`resolve`]: AST to IR; every name becomes a frame slot, a captured
//!   cell, a global or a builtin; finds mistakes before anything runs.
//! - [`vm`]: function bodies compiled to register bytecode, and the loop
//!   that runs them.
//! - [`eval`]: runs what the VM hands it (the rarer statements and
//!   expressions), and calls, operators, builtins.
//! - [`runtime`]: values, errors, printing, output, cancellation; knows
//!   nothing of the syntax tree.
//! - [`report`]: miette diagnostics for every phase.
//! - [`cli`]: the command line; [`repl`]: the interactive prompt;
//!   [`signals`]: Ctrl-C.

pub mod cli;
pub mod eval;
pub mod repl;
pub mod report;
pub mod resolve;
pub mod runtime;
pub mod signals;
pub mod sync;
pub mod syntax;
pub mod vm;
