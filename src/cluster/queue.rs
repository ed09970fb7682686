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
    /// The queue named by `url` (`redis://host:port/NAME`).
    pub fn open(url: &str, capacity: Option<u64>) -> Result<RemoteQueue, String> {
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
        // Unreachable now rather than at the first put.
        let connection = queue.connection()?;
        queue.give_back(connection);
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
        let client = redis::Client::open(self.server.as_str()).map_err(|e| self.failed(e))?;
        let connection = client.get_connection_with_timeout(Duration::from_secs(5)).map_err(|e| self.failed(e))?;
        connection.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| self.failed(e))?;
        Ok(connection)
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
    fn with<T>(&self, f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>) -> Result<T, Refused> {
        let mut connection = self.connection().map_err(Refused::Io)?;
        match f(&mut connection) {
            Ok(value) => {
                self.give_back(connection);
                Ok(value)
            }
            Err(e) => Err(Refused::Io(self.failed(e))),
        }
    }

    /// `put`: waits while the queue is full, up to `timeout`.
    pub fn put(&self, item: &[u8], timeout: Option<Duration>, cancel: &CancelToken) -> Result<(), Refused> {
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
            match self.with(|c| script.query::<i64>(c))? {
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
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let wait = left.map_or(SLICE, |left| left.min(SLICE));
            let popped: Option<(String, Vec<u8>)> = match wait.is_zero() {
                true => self
                    .with(|c| redis::cmd("RPOP").arg(self.key()).query::<Option<Vec<u8>>>(c))?
                    .map(|v| (String::new(), v)),
                false => self.with(|c| redis::cmd("BRPOP").arg(self.key()).arg(wait.as_secs_f64()).query(c))?,
            };
            if let Some((_, item)) = popped {
                return Ok(item);
            }
            if self.with(|c| redis::cmd("EXISTS").arg(self.closed_key()).query::<bool>(c))? {
                // An item put just before the close is still got.
                let last: Option<Vec<u8>> = self.with(|c| redis::cmd("RPOP").arg(self.key()).query(c))?;
                return last.ok_or(Refused::Closed);
            }
            if cancel.is_cancelled() {
                return Err(Refused::Cancelled);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Refused::Empty);
            }
        }
    }

    /// `close q`: no more puts; getters drain what is left. The mark
    /// lasts an hour: then the name can be used for a new queue.
    pub fn close(&self) -> Result<(), Refused> {
        self.with(|c| redis::cmd("SET").arg(self.closed_key()).arg(1).arg("EX").arg(3600).query::<()>(c))
    }

    /// `q.size`, `q.empty`, `q.full`, `q.capacity`, `q.closed`, as for a
    /// local queue (each asks the server).
    pub fn field(&self, name: &str) -> Result<Value, Fault> {
        let asked = |answer: Result<Value, Refused>| match answer {
            Ok(value) => Ok(value),
            Err(Refused::Io(message)) => Err(ErrorValue::new(Kind::Io, message)),
            Err(_) => Err(ErrorValue::new(Kind::Io, format!("the queue {} did not answer", self.url()))),
        };
        let size = || self.count().map(|n| n as u64);
        match name {
            "size" => asked(size().map(|n| Value::Int(n as i64))),
            "empty" => asked(size().map(|n| Value::Bool(n == 0))),
            "full" => asked(size().map(|n| Value::Bool(self.capacity > 0 && n >= self.capacity))),
            "capacity" => Ok(if self.capacity == 0 { Value::Nil } else { Value::Int(self.capacity as i64) }),
            "closed" => {
                asked(self.with(|c| redis::cmd("EXISTS").arg(self.closed_key()).query::<bool>(c)).map(Value::Bool))
            }
            _ => Err(type_error(format!("a queue has no field `{name}`"))
                .with_help("a queue has size, empty, full, capacity and closed")),
        }
    }

    /// The items waiting (a `Result`: the server may not answer).
    pub fn count(&self) -> Result<usize, Refused> {
        self.with(|c| redis::cmd("LLEN").arg(self.key()).query(c))
    }
}
