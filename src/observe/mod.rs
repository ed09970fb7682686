//! Watching a run rather than running it: the deadlock watch and the
//! recovery of primitives a dead process held, task dumps (SIGQUIT, `:tasks`),
//! the `--trace` and `--timeline` records of what every task did, the
//! race detector (`--race`) and schedule exploration (`--explore`).

pub(crate) mod abandoned;
pub mod deadlock;
pub mod dump;
pub mod explore;
pub mod race;
pub mod timeline;
pub mod trace;
