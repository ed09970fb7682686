//! The bytecode VM: what a function body compiles to ([`code`]), the
//! compiler from the resolved IR ([`compile`]), and the dispatch loop that
//! runs it on a task's evaluator ([`run`]), with its cache of
//! objects' methods ([`methods`]) and the stack of frames' registers
//! ([`values`]). Constructs the VM has no op
//! for are run by the tree evaluator (`eval`) on the same frame.

pub mod code;
pub mod compile;
pub(crate) mod methods;
mod run;
pub(crate) mod values;

pub use code::Code;
pub use compile::compile;
pub(crate) use run::SpareFrames;
