//! Watching a run rather than running it: the deadlock watch and the
//! recovery of primitives a dead process held, task dumps (SIGQUIT, `:tasks`),
//! the `--trace` and `--timeline` records of what every task did, and the
//! race detector (`--race`).

pub(crate) mod abandoned;
pub mod deadlock;
pub mod dump;
pub mod race;
pub mod timeline;
pub mod trace;
