//! The Redis engine: tasks in one stream read by a consumer group, so a
//! task a dead worker held stays pending and is claimed by another
//! (`XAUTOCLAIM`) once its idle time passes the heartbeat lapse; a worker
//! keeps the task it runs fresh by claiming it again (`XCLAIM ... JUSTID`,
//! which does not count as a delivery). Results go to a stream per run;
//! programs and cancel marks are keys that expire.
//!
//! ```text
//! concsh:tasks                  stream, group `workers`: run, program, task
//! concsh:program:HASH           the program's bytes (a day)
//! concsh:run:RUN:results        stream of result bytes (an hour, deleted at the end)
//! concsh:run:RUN:globals        the script's globals when the pool was made (the same)
//! concsh:run:RUN:cancelled      set when the script was interrupted
//! ```

use std::time::Duration;

use redis::streams::{StreamAutoClaimReply, StreamPendingCountReply, StreamReadReply};

use super::backend::{Backend, Delivery, Result};

const TASKS: &str = "concsh:tasks";
const GROUP: &str = "workers";
const PROGRAM_SECONDS: u64 = 24 * 3600;
const RUN_SECONDS: u64 = 3600;

pub struct Redis {
    url: String,
    connection: redis::Connection,
}

fn failed(url: &str, e: redis::RedisError) -> String {
    match e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        true => format!("the cluster at {url} cannot be reached: {e}"),
        false => format!("the cluster at {url} refused a request: {e}"),
    }
}

/// A connection to the server at `url`: 5 s to connect, and a server
/// that stops answering is an error after 30 s, never a hang.
pub fn open_connection(url: &str) -> redis::RedisResult<redis::Connection> {
    let connection = redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(5))?;
    connection.set_read_timeout(Some(Duration::from_secs(30)))?;
    connection.set_write_timeout(Some(Duration::from_secs(30)))?;
    Ok(connection)
}

fn results_key(run: &str) -> String {
    format!("concsh:run:{run}:results")
}

fn globals_key(run: &str) -> String {
    format!("concsh:run:{run}:globals")
}

fn cancelled_key(run: &str) -> String {
    format!("concsh:run:{run}:cancelled")
}

impl Redis {
    /// A connection to `url`, with the task stream and its group made if
    /// they are not there yet.
    pub fn connect(url: &str) -> Result<Redis> {
        let connection = open_connection(url).map_err(|e| match e.kind() {
            redis::ErrorKind::InvalidClientConfig => format!("`{url}` is not a Redis URL: {e}"),
            _ => failed(url, e),
        })?;
        let mut redis = Redis { url: url.to_string(), connection };
        let made: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(TASKS)
            .arg(GROUP)
            .arg("$")
            .arg("MKSTREAM")
            .query(&mut redis.connection);
        match made {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(failed(url, e)),
        }
        Ok(redis)
    }

    fn run<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T> {
        cmd.query(&mut self.connection).map_err(|e| failed(&self.url, e))
    }

    fn delivery(&mut self, entry: &redis::streams::StreamId, attempts: u64) -> Delivery {
        Delivery {
            id: entry.id.clone(),
            run: entry.get("run").unwrap_or_default(),
            program: entry.get("program").unwrap_or_default(),
            task: entry.get("task").unwrap_or_default(),
            attempts,
        }
    }

    /// How often the task `id` was delivered.
    fn attempts(&mut self, id: &str) -> Result<u64> {
        let reply: StreamPendingCountReply =
            self.run(redis::cmd("XPENDING").arg(TASKS).arg(GROUP).arg(id).arg(id).arg(1))?;
        Ok(reply.ids.first().map_or(1, |p| p.times_delivered as u64))
    }
}

impl Backend for Redis {
    fn store_program(&mut self, hash: &str, blob: &[u8]) -> Result<()> {
        let key = format!("concsh:program:{hash}");
        self.run(redis::cmd("SET").arg(&key).arg(blob).arg("EX").arg(PROGRAM_SECONDS))
    }

    fn program(&mut self, hash: &str) -> Result<Option<Vec<u8>>> {
        self.run(redis::cmd("GET").arg(format!("concsh:program:{hash}")))
    }

    fn store_globals(&mut self, run: &str, snapshot: &[u8]) -> Result<()> {
        self.run(redis::cmd("SET").arg(globals_key(run)).arg(snapshot).arg("EX").arg(RUN_SECONDS))
    }

    fn globals(&mut self, run: &str) -> Result<Option<Vec<u8>>> {
        self.run(redis::cmd("GET").arg(globals_key(run)))
    }

    fn send_task(&mut self, run: &str, program: &str, task: &[u8]) -> Result<()> {
        let cmd = redis::cmd("XADD")
            .arg(TASKS)
            .arg("*")
            .arg("run")
            .arg(run)
            .arg("program")
            .arg(program)
            .arg("task")
            .arg(task)
            .to_owned();
        self.run::<String>(&cmd).map(drop)
    }

    fn take_task(&mut self, worker: &str, block: Duration) -> Result<Option<Delivery>> {
        let lapse = super::lapse().as_millis() as u64;
        let claimed: StreamAutoClaimReply = self.run(
            redis::cmd("XAUTOCLAIM").arg(TASKS).arg(GROUP).arg(worker).arg(lapse).arg("0-0").arg("COUNT").arg(1),
        )?;
        if let Some(entry) = claimed.claimed.first() {
            let attempts = self.attempts(&entry.id)?;
            return Ok(Some(self.delivery(entry, attempts)));
        }
        let read: Option<StreamReadReply> = self.run(
            redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg(worker)
                .arg("COUNT")
                .arg(1)
                .arg("BLOCK")
                .arg(block.as_millis() as u64)
                .arg("STREAMS")
                .arg(TASKS)
                .arg(">"),
        )?;
        let entry = read.and_then(|r| r.keys.into_iter().next()).and_then(|k| k.ids.into_iter().next());
        Ok(entry.map(|entry| self.delivery(&entry, 1)))
    }

    fn still_working(&mut self, worker: &str, id: &str) -> Result<()> {
        self.run::<redis::Value>(redis::cmd("XCLAIM").arg(TASKS).arg(GROUP).arg(worker).arg(0).arg(id).arg("JUSTID"))
            .map(drop)
    }

    fn finish_task(&mut self, id: &str) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.cmd("XACK").arg(TASKS).arg(GROUP).arg(id).ignore();
        pipe.cmd("XDEL").arg(TASKS).arg(id).ignore();
        pipe.query::<()>(&mut self.connection).map_err(|e| failed(&self.url, e))
    }

    fn send_result(&mut self, run: &str, result: &[u8]) -> Result<()> {
        let key = results_key(run);
        let mut pipe = redis::pipe();
        pipe.cmd("XADD").arg(&key).arg("*").arg("result").arg(result).ignore();
        pipe.cmd("EXPIRE").arg(&key).arg(RUN_SECONDS).ignore();
        pipe.query::<()>(&mut self.connection).map_err(|e| failed(&self.url, e))
    }

    fn results(&mut self, run: &str, after: &mut String, block: Duration) -> Result<Vec<Vec<u8>>> {
        let read: Option<StreamReadReply> = self.run(
            redis::cmd("XREAD")
                .arg("COUNT")
                .arg(256)
                .arg("BLOCK")
                .arg(block.as_millis() as u64)
                .arg("STREAMS")
                .arg(results_key(run))
                .arg(after.as_str()),
        )?;
        let mut out = Vec::new();
        for key in read.map(|r| r.keys).unwrap_or_default() {
            for entry in key.ids {
                *after = entry.id.clone();
                out.push(entry.get("result").unwrap_or_default());
            }
        }
        Ok(out)
    }

    fn cancel_run(&mut self, run: &str) -> Result<()> {
        self.run(redis::cmd("SET").arg(cancelled_key(run)).arg(1).arg("EX").arg(RUN_SECONDS))
    }

    fn is_cancelled(&mut self, run: &str) -> Result<bool> {
        self.run(redis::cmd("EXISTS").arg(cancelled_key(run)))
    }

    fn end_run(&mut self, run: &str) -> Result<()> {
        // Tasks of the run still queued (the script ended early) are
        // dropped by the workers that find them; the mark expires.
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(results_key(run)).arg(globals_key(run)).ignore();
        pipe.cmd("SET").arg(cancelled_key(run)).arg(1).arg("EX").arg(RUN_SECONDS).ignore();
        pipe.query::<()>(&mut self.connection).map_err(|e| failed(&self.url, e))
    }
}
