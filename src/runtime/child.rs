//! A child process as its parent sees it: its pid, a pidfd that becomes
//! readable when it exits (so waiting for it is a `poll`, cancellable and
//! with a deadline, never a polling loop), and the slot in the shared
//! region where it leaves its outcome.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use parking_lot::Mutex;

use crate::observe::explore::Ticket;
use crate::sync::board;
use crate::sync::cancel::Cancelled;
use crate::sync::cell::SharedCells;
use crate::sync::handle::{Handle, HandleKind};
use crate::sync::shm::Off;
use crate::sync::wait::Wait;

pub struct Child {
    pub pid: Pid,
    pidfd: OwnedFd,
    /// Where the child writes how it ended (see `eval::spawn`).
    pub slot: SharedCells,
    /// Its table of the references it holds (`sync::holdings`), given back
    /// when it is reaped.
    pub holdings: Off,
    /// Set once the exit status was collected: a pid is reaped only once.
    reaped: Mutex<bool>,
    /// Its ticket in a controlled run (`--explore`).
    schedule: Option<Ticket>,
}

impl Child {
    pub fn new(pid: Pid, slot: SharedCells, holdings: Off, schedule: Option<Ticket>) -> std::io::Result<Child> {
        let pidfd = open_pidfd(pid)?;
        Ok(Child { pid, pidfd, slot, holdings, reaped: Mutex::new(false), schedule })
    }

    /// Waits until the process has exited: `Ok(true)`, or `Ok(false)` when
    /// the deadline passed. The task is outside the fork gate meanwhile.
    pub fn wait_exit(&self, mut wait: Wait<'_>) -> Result<bool, Cancelled> {
        // A controlled run waits in its scheduler for the child's last
        // step; the exit itself follows at once.
        match crate::observe::explore::await_end(self.schedule, &wait) {
            Some(Ok(true)) => wait.deadline = None,
            Some(Ok(false)) => return Ok(false),
            Some(Err(_)) => return Err(Cancelled),
            None => {}
        }
        wait_pidfd(self.pidfd.as_fd(), wait)
    }

    /// Readable once the process has exited.
    pub fn pidfd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Whether the process has exited (without waiting).
    pub fn has_exited(&self) -> bool {
        let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
    }

    /// Reaps a process that has exited and runs `settle` with its exit
    /// status, the first time only. Later callers wait until `settle` has
    /// run, so none of them sees the process gone but its outcome unset.
    /// The task board keeps the process's `name` (for reports of what it
    /// left held) from before its pid is gone.
    pub fn reap_once(&self, name: &str, settle: impl FnOnce(WaitStatus)) {
        let mut reaped = self.reaped.lock();
        if *reaped {
            return;
        }
        board::bury(self.pid.as_raw(), name);
        let status = self.reap();
        *reaped = true;
        if let Some(status) = status {
            settle(status);
        }
    }

    fn reap(&self) -> Option<WaitStatus> {
        loop {
            match waitpid(self.pid, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                Ok(status) => return Some(status),
                Err(_) => return None,
            }
        }
    }

    pub fn signal(&self, signal: Signal) {
        let _ = kill(self.pid, signal);
    }
}

/// A descriptor that becomes readable once process `pid` has exited.
pub fn open_pidfd(pid: Pid) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new
    // descriptor or -1; it touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until the process behind `pidfd` has exited: `Ok(true)`, or
/// `Ok(false)` when the deadline passed; outside the fork gate meanwhile.
pub fn wait_pidfd(pidfd: BorrowedFd<'_>, wait: Wait<'_>) -> Result<bool, Cancelled> {
    loop {
        if wait.cancel.is_cancelled() {
            return Err(Cancelled);
        }
        let timeout = match wait.deadline {
            None => PollTimeout::NONE,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now()).as_millis();
                PollTimeout::try_from(left.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = vec![PollFd::new(pidfd, PollFlags::POLLIN)];
        if let Some(wake) = wait.cancel.wake_fd() {
            fds.push(PollFd::new(wake, PollFlags::POLLIN));
        }
        if let Some(gate) = wait.gate {
            gate.leave();
        }
        board::waiting(wait.deadline.is_some(), wait.what);
        let polled = poll(&mut fds, timeout);
        board::awake();
        if let Some(gate) = wait.gate {
            gate.enter();
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            return Ok(true);
        }
        if fds.get(1).and_then(PollFd::revents).is_some_and(|r| !r.is_empty()) {
            wait.cancel.take_wake()?;
        }
        if matches!(polled, Ok(0)) && wait.deadline.is_some_and(|d| d <= Instant::now()) {
            return Ok(false);
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Its outcome was read when it was reaped; a process never reaped
        // may still write there, so its slot is left alone.
        if *self.reaped.get_mut() {
            crate::sync::refs::release(Handle::new(HandleKind::Cell, self.slot.0));
        }
    }
}
