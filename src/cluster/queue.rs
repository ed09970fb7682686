//! `queue("redis://host:6379/jobs")`: a queue that tasks on different
//! machines share, with a local queue's words and meaning: `put` (waiting
//! while a bounded queue is full), `get` (waiting while it is empty),
//! `timeout`, `nowait`, `close`, `for v in q`.
//!
//! ```text
//! concsh:queue:NAME          a list: put pushes on the left, get pops on the right
//! concsh:queue:NAME:closed   set by `close`
//! ```
//!
//! Each item goes to exactly one getter (`BRPOP` is atomic). A put checks
//! the capacity and the close mark and pushes in one step (a Lua script).
//! A blocked `get` waits on the server in short slices, so a cancel
//! (Ctrl-C, `terminate`) or a `close` is seen within one. Connections
//! belong to one process: a forked child opens its own.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::runtime::error::{ErrorValue, Fault, Kind, type_error};
use crate::runtime::value::Value;
use crate::sync::cancel::CancelToken;

/// How long one blocking pop waits on the server before the getter looks
/// at its cancel token and the close mark again.
const SLICE: Duration = Duration::from_millis(100);

/// How long a put into a full queue waits before it looks again.
const FULL_NAP: Duration = Duration::from_millis(2);

/// Pushes unless the queue is closed (-1) or full (0).
const PUT: &str = "if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end \
                   local cap = tonumber(ARGV[1]) \
                   if cap > 0 and redis.call('LLEN', KEYS[1]) >= cap then return 0 end \
                   redis.call('LPUSH', KEYS[1], ARGV[2]) return 1";

pub struct RemoteQueue {
    /// The server, as given (`redis://host:6379`).
    pub server: String,
    pub name: String,
    /// 0: unbounded.
    pub capacity: u64,
    /// Idle connections, with the process that opened them.
    idle: Mutex<Vec<(i32, redis::Connection)>>,
}

/// Why a queue operation did not happen.
pub enum Refused {
    Full,
    Empty,
    Closed,
    Cancelled,
    Io(String),
}

impl std::fmt::Debug for RemoteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteQueue({})", self.url())
    }
}

impl RemoteQueue {
    /// The queue named by `url` (`redis://host:port/NAME`), checked to be
    /// reachable: what `queue(url)` makes.
    pub fn open(url: &str, capacity: Option<u64>) -> Result<RemoteQueue, String> {
        let queue = RemoteQueue::named(url, capacity)?;
        // Unreachable now rather than at the first put.
        let connection = queue.connection()?;
        queue.give_back(connection);
        Ok(queue)
    }

    /// The queue named by `url`, without asking the server: a queue value
    /// that travelled (it connects when first used).
    pub fn named(url: &str, capacity: Option<u64>) -> Result<RemoteQueue, String> {
        let rest = url.strip_prefix("redis://").ok_or_else(|| format!("`{url}` is not a redis:// URL"))?;
        let (server, name) = match rest.split_once('/') {
            Some((server, name)) if !name.is_empty() && !name.contains('/') => (server, name),
            _ => return Err(format!("`{url}` names no queue: write redis://host:port/NAME")),
        };
        let queue = RemoteQueue {
            server: format!("redis://{server}"),
            name: name.to_string(),
            capacity: capacity.unwrap_or(0),
            idle: Mutex::new(Vec::new()),
        };
        super::check_url(&queue.server, super::bridge::allows_insecure())?;
        Ok(queue)
    }

    /// The URL the queue was made from.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    fn key(&self) -> String {
        format!("concsh:queue:{}", self.name)
    }

    fn closed_key(&self) -> String {
        format!("concsh:queue:{}:closed", self.name)
    }

    fn failed(&self, e: redis::RedisError) -> String {
        format!("the queue {} cannot be reached: {e}", self.url())
    }

    fn connection(&self) -> Result<redis::Connection, String> {
        let me = nix::unistd::getpid().as_raw();
        let mut idle = self.idle.lock();
        if let Some(k) = idle.iter().rposition(|(pid, _)| *pid == me) {
            return Ok(idle.swap_remove(k).1);
        }
        drop(idle);
        super::redis::open_connection(&self.server).map_err(|e| self.failed(e))
    }

    fn give_back(&self, connection: redis::Connection) {
        let mut idle = self.idle.lock();
        // A parent's connections are not a child's to use.
        let me = nix::unistd::getpid().as_raw();
        idle.retain(|(pid, _)| *pid == me);
        idle.push((me, connection));
    }

    /// Runs `f` on a connection of this process's; a connection that
    /// failed is not kept.
    fn with<T>(&self, f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>) -> Result<T, String> {
        let mut connection = self.connection()?;
        match f(&mut connection) {
            Ok(value) => {
                self.give_back(connection);
                Ok(value)
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// `put`: waits while the queue is full, up to `timeout`.
    pub fn put(&self, item: &[u8], timeout: Option<Duration>, cancel: &CancelToken) -> Result<(), Refused> {
        // A child about to block first starts its signal listener.
        crate::signals::listen_now();
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let script = redis::cmd("EVAL")
                .arg(PUT)
                .arg(2)
                .arg(self.key())
                .arg(self.closed_key())
                .arg(self.capacity)
                .arg(item)
                .to_owned();
            match self.with(|c| script.query::<i64>(c)).map_err(Refused::Io)? {
                1 => return Ok(()),
                -1 => return Err(Refused::Closed),
                _ => {}
            }
            if cancel.is_cancelled() {
                return Err(Refused::Cancelled);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Refused::Full);
            }
            std::thread::sleep(FULL_NAP);
        }
    }

    /// `get`: waits while the queue is empty, up to `timeout`; a closed
    /// queue gives what it still holds, then `Closed`.
    pub fn get(&self, timeout: Option<Duration>, cancel: &CancelToken) -> Result<Vec<u8>, Refused> {
        // A child about to block first starts its signal listener.
        crate::signals::listen_now();
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let wait = left.map_or(SLICE, |left| left.min(SLICE));
            if let Some(item) = self.pop(wait).map_err(Refused::Io)? {
                return Ok(item);
            }
            if self.is_closed().map_err(Refused::Io)? {
                // An item put just before the close is still got.
                return self.pop(Duration::ZERO).map_err(Refused::Io)?.ok_or(Refused::Closed);
            }
            if cancel.is_cancelled() {
                return Err(Refused::Cancelled);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Refused::Empty);
            }
        }
    }

    /// The oldest item, waiting up to `wait` on the server for one.
    fn pop(&self, wait: Duration) -> Result<Option<Vec<u8>>, String> {
        match wait.is_zero() {
            true => self.with(|c| redis::cmd("RPOP").arg(self.key()).query(c)),
            false => {
                let popped: Option<(String, Vec<u8>)> =
                    self.with(|c| redis::cmd("BRPOP").arg(self.key()).arg(wait.as_secs_f64()).query(c))?;
                Ok(popped.map(|(_, item)| item))
            }
        }
    }

    fn is_closed(&self) -> Result<bool, String> {
        self.with(|c| redis::cmd("EXISTS").arg(self.closed_key()).query(c))
    }

    /// `close q`: no more puts; getters drain what is left. The mark
    /// lasts an hour: then the name can be used for a new queue.
    pub fn close(&self) -> Result<(), Refused> {
        self.with(|c| redis::cmd("SET").arg(self.closed_key()).arg(1).arg("EX").arg(3600).query::<()>(c))
            .map_err(Refused::Io)
    }

    /// `q.size`, `q.empty`, `q.full`, `q.capacity`, `q.closed`, as for a
    /// local queue (each asks the server).
    pub fn field(&self, name: &str) -> Result<Value, Fault> {
        let size = || self.size().map(|n| n as u64);
        match name {
            "size" => size().map(|n| Value::Int(n as i64)),
            "empty" => size().map(|n| Value::Bool(n == 0)),
            "full" => size().map(|n| Value::Bool(self.capacity > 0 && n >= self.capacity)),
            "capacity" => Ok(if self.capacity == 0 { Value::Nil } else { Value::Int(self.capacity as i64) }),
            "closed" => self.is_closed().map(Value::Bool).map_err(io),
            _ => Err(type_error(format!("a queue has no field `{name}`"))
                .with_help("a queue has size, empty, full, capacity and closed")),
        }
    }

    /// The items waiting (`len(q)`, `q.size`).
    pub fn size(&self) -> Result<usize, Fault> {
        self.with(|c| redis::cmd("LLEN").arg(self.key()).query(c)).map_err(io)
    }
}

/// A server that did not answer, as the script's `IOError`.
fn io(message: String) -> Fault {
    ErrorValue::new(Kind::Io, message)
}
