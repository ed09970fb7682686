//! Pools across machines: a process pool whose workers are `concsh worker`
//! processes on any machine, reached through Redis.
//!
//! The script's side (`bridge.rs`) is a local pool with its workers
//! replaced by two threads: one sends each task to the cluster's task
//! stream, the other brings results back into the pool's result queue,
//! so `map`, `map unordered`, `submit`, futures and the progress bar work
//! unchanged. A worker (`worker.rs`) runs tasks in forked executors, each
//! with the script's program resolved from the texts it was sent
//! (`program.rs`), so functions travel by id with their captured values,
//! as to a local worker. The engine sits behind [`backend::Backend`];
//! `redis.rs` is the one there is.
//!
//! Delivery: a task runs at least once (a worker that dies leaves it to
//! another once its heartbeat lapses; after [`MAX_ATTEMPTS`] deliveries
//! it fails), and the first result for a task is the one that counts.

pub mod backend;
pub mod bridge;
pub mod program;
pub mod queue;
pub mod redis;
pub mod worker;

use std::time::Duration;

/// How often a task is delivered before its map fails: each delivery
/// after the first follows a worker's death.
pub const MAX_ATTEMPTS: u64 = 3;

/// How long a task may go without its worker's heartbeat before another
/// worker takes it (`CONCSH_CLUSTER_LAPSE_MS` sets it, for tests).
pub fn lapse() -> Duration {
    let ms = std::env::var("CONCSH_CLUSTER_LAPSE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000u64);
    Duration::from_millis(ms.max(100))
}

/// Whether a Redis URL may be used: a server beyond this machine needs a
/// password (anyone who can write to it can run code on the workers),
/// unless the user says `--insecure`.
pub fn check_url(url: &str, insecure: bool) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("redis://") else {
        return Err(format!("`{url}` is not a Redis URL (redis://host:port)"));
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((auth, host)) => (Some(auth), host),
        None => (None, rest),
    };
    let host = host.split(['/', '?']).next().unwrap_or("");
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    let loopback = name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let password = auth.is_some_and(|a| a.split_once(':').is_some_and(|(_, p)| !p.is_empty()));
    if !loopback && !password && !insecure {
        return Err(format!(
            "{url} is not on this machine and has no password: anyone who can write to it could run code on the workers"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn a_remote_server_needs_a_password_or_insecure() {
        assert!(check_url("redis://127.0.0.1:6379", false).is_ok());
        assert!(check_url("redis://localhost", false).is_ok());
        assert!(check_url("redis://[::1]:6379", false).is_ok());
        assert!(check_url("redis://10.0.0.5:6379", false).is_err());
        assert!(check_url("redis://:secret@10.0.0.5:6379", false).is_ok());
        assert!(check_url("redis://10.0.0.5:6379", true).is_ok());
        assert!(check_url("http://127.0.0.1", false).is_err());
    }
}
