//! Tasks: what every task of one OS process shares ([`process`]), threads
//! and their lifecycle ([`task`]), forked processes and their reaping
//! ([`spawn`]), pools of either ([`pool`]), and programs run with `run`
//! and `sh` ([`subprocess`]).

pub mod pool;
pub mod process;
pub mod spawn;
pub mod subprocess;
pub mod task;
