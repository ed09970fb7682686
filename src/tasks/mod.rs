//! Tasks: what every task of one OS process shares ([`process`]), threads
//! and their lifecycle ([`task`]), forked processes and their reaping
//! ([`spawn`]), and pools of either ([`pool`]).

pub mod pool;
pub mod process;
pub mod spawn;
pub mod task;
