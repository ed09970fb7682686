//! Programs a script runs (`run`, `sh`): started without a shell (or
//! through `/bin/sh -c` for `sh`), in a process group of their own, their
//! output kept apart from concsh's. The task waits for them like any
//! blocking call: outside the fork gate, on the task board as able to go
//! on, cut short by its cancel (`terminate`, Ctrl-C) or a timeout, which
//! kill the whole group; the program is always reaped.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::runtime::child::{open_pidfd, wait_pidfd};
use crate::sync::board::What;
use crate::sync::cancel::CancelToken;
use crate::sync::gate::{Gate, start_helper};
use crate::sync::wait::Wait;

/// What to run.
pub struct Request {
    pub program: String,
    pub args: Vec<String>,
    /// Fed to the program's standard input (which is empty otherwise).
    pub input: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
    pub cwd: Option<String>,
    /// Variables set on top of concsh's own environment.
    pub env: Vec<(String, String)>,
}

/// How a program ended: its exit code (minus the signal that killed it)
/// and what it wrote.
pub struct Finished {
    pub code: i64,
    pub out: Vec<u8>,
    pub err: Vec<u8>,
}

pub enum Failure {
    /// It could not be started (a missing program, a missing folder).
    Start(std::io::Error),
    /// The timeout passed first: the program was killed.
    Timeout,
    /// The task was cancelled: the program was killed.
    Cancelled,
}

/// Runs `request` to its end, or until `cancel` or the timeout.
pub fn run(request: Request, cancel: &CancelToken, gate: &Gate, what: What) -> Result<Finished, Failure> {
    let mut command = Command::new(&request.program);
    command.args(&request.args).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    command.stdin(if request.input.is_some() { Stdio::piped() } else { Stdio::null() });
    if let Some(cwd) = &request.cwd {
        command.current_dir(cwd);
    }
    command.envs(request.env.iter().map(|(k, v)| (k, v)));
    let mut child = command.spawn().map_err(Failure::Start)?;
    let pid = child.id() as i32;
    // Read and written by helper threads, so that a program filling one
    // pipe never waits on a reader busy with the other.
    let out = child.stdout.take().map(reader);
    let err = child.stderr.take().map(reader);
    let feeder = match (child.stdin.take(), request.input) {
        (Some(mut stdin), Some(input)) => {
            let builder = std::thread::Builder::new().name("concsh-run-input".into());
            start_helper(builder, move || {
                // A program that stops reading ends the feed: not an error.
                let _ = stdin.write_all(&input);
            })
            .ok()
        }
        _ => None,
    };
    let ended = wait(pid, request.timeout, cancel, gate, what);
    // Whatever it left running in its group ends with it: no orphan
    // outlives the call, and none holds its pipes open.
    kill_group(pid);
    let status = loop {
        match child.wait() {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    let out = out.map(collect).unwrap_or_default();
    let err = err.map(collect).unwrap_or_default();
    ended?;
    let status = status.map_err(Failure::Start)?;
    let code = status.code().map_or_else(|| -i64::from(status.signal().unwrap_or(0)), i64::from);
    Ok(Finished { code, out, err })
}

/// Reads a pipe to its end on a helper thread.
fn reader(mut pipe: impl Read + Send + 'static) -> Option<JoinHandle<Vec<u8>>> {
    let builder = std::thread::Builder::new().name("concsh-run-output".into());
    start_helper(builder, move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
    .ok()
}

fn collect(reader: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    reader.and_then(|r| r.join().ok()).unwrap_or_default()
}

/// Waits (outside the fork gate) until `pid` exits: `Err` when the
/// deadline passes or the task is cancelled first.
fn wait(pid: i32, timeout: Option<Duration>, cancel: &CancelToken, gate: &Gate, what: What) -> Result<(), Failure> {
    // No pidfd (an old kernel): the caller's wait reaps it all the same.
    let Ok(pidfd) = open_pidfd(nix::unistd::Pid::from_raw(pid)) else { return Ok(()) };
    match wait_pidfd(pidfd.as_fd(), Wait::new(cancel, timeout).in_gate(gate).doing(what)) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Failure::Timeout),
        Err(_) => Err(Failure::Cancelled),
    }
}

/// Kills the program and everything it started in its group (the group
/// lives while any member does, the program's zombie included).
fn kill_group(pid: i32) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
}
