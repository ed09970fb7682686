//! Line input from standard input that a cancel interrupts: the reader
//! polls stdin beside the task's cancel pipe instead of blocking in
//! `read`, so Ctrl-C ends an `input()` at once.

use std::os::fd::BorrowedFd;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use parking_lot::Mutex;

use crate::sync::cancel::{CancelToken, Cancelled};
use crate::sync::gate::Gate;

/// Bytes read past the last line returned, shared by every task.
static PENDING: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// What reading a line gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Text(String),
    /// End of input: nothing more will come.
    End,
}

/// Reads one line (without its `\n` or `\r\n`). Invalid UTF-8 is replaced.
pub fn read_line(cancel: &CancelToken, gate: &Gate) -> Result<Line, Cancelled> {
    let mut pending = PENDING.lock();
    loop {
        if let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = pending.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Line::Text(String::from_utf8_lossy(&line).into_owned()));
        }
        if cancel.is_cancelled() {
            return Err(Cancelled);
        }
        // SAFETY: descriptor 0 stays open for the life of the process; the
        // borrow ends with this iteration.
        let stdin = unsafe { BorrowedFd::borrow_raw(0) };
        let mut fds = vec![PollFd::new(stdin, PollFlags::POLLIN)];
        if let Some(wake) = cancel.wake_fd() {
            fds.push(PollFd::new(wake, PollFlags::POLLIN));
        }
        // Waiting for input, the task holds no interpreter lock.
        gate.leave();
        let polled = poll(&mut fds, PollTimeout::NONE);
        gate.enter();
        match polled {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return Ok(Line::End),
        }
        let readable = |fd: Option<&PollFd>| fd.and_then(PollFd::revents).is_some_and(|r| !r.is_empty());
        if readable(fds.get(1)) {
            cancel.take_wake()?;
        }
        // Only a ready stdin is read: a blocking `read` could not be
        // woken by a cancel, and would hold the gate against a fork.
        if !readable(fds.first()) {
            continue;
        }
        let mut chunk = [0u8; 4096];
        match nix::unistd::read(stdin, &mut chunk) {
            Ok(0) | Err(nix::errno::Errno::EBADF) if pending.is_empty() => return Ok(Line::End),
            Ok(0) | Err(nix::errno::Errno::EBADF) => {
                let rest: Vec<u8> = pending.drain(..).collect();
                return Ok(Line::Text(String::from_utf8_lossy(&rest).into_owned()));
            }
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            Err(_) => return Ok(Line::End),
        }
    }
}
