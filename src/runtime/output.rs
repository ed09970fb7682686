//! The one output path: every `print` writes a whole line straight to the
//! file descriptor, holding the run's output lock (in the shared region,
//! so it spans processes). A pipe takes only up to `PIPE_BUF` bytes in one
//! atomic write; the lock keeps a longer line whole too. Nothing is
//! buffered in the process, so lines from concurrent threads and
//! processes never mix, output appears in the order it happened, and a
//! `fork` has nothing to print twice. The lock is robust: a process killed
//! in the middle of a line leaves it to the next writer, never held.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use parking_lot::Mutex;

use crate::sync::robust::RobustMutex;

/// Where a line goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What became of a write.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Ok,
    /// The reader went away (`concsh script | head -1`): a normal end.
    Closed,
    /// Any other failure (a full disk, a closed descriptor): the line is
    /// lost, and the script is told.
    Failed(nix::errno::Errno),
}

/// Writes `text` (which should end in a newline) in one system call where
/// the kernel allows, retrying only the rest of a partial write.
pub fn write_line(stream: Stream, text: &str) -> Written {
    if DIVERTED.load(Ordering::Acquire) {
        let mut diverted = DIVERT.lock();
        if let Some(diverted) = diverted.as_mut() {
            // What children wrote before this line was written first.
            diverted.pass_on_children(false);
            (diverted.sink)(text.to_string());
            return Written::Ok;
        }
    }
    super::progress::around_output(|| {
        locked(|| {
            // Another process's bar is on the terminal: this line takes
            // its place (the bar is drawn again below it).
            if super::progress::shown_elsewhere() && on_terminal(stream) {
                let _ = write_whole(stream, CLEAR_LINE);
            }
            write_whole(stream, text)
        })
    })
}

/// Back to the line's start, and the line cleared.
const CLEAR_LINE: &str = "\r\x1b[2K";

/// Runs `write` holding the run's output lock (when it could be made).
fn locked<T>(write: impl FnOnce() -> T) -> T {
    let lock = OUTPUT.get().copied().flatten();
    let taken = lock.and_then(|lock| lock.lock());
    let written = write();
    if let (Some(lock), Some(_)) = (lock, taken) {
        lock.unlock();
    }
    written
}

/// Writes a progress bar's frame to stderr whole, between lines.
pub fn write_frame(frame: &str) -> Written {
    locked(|| write_whole(Stream::Stderr, frame))
}

/// Whether `stream` is a terminal (asked once per process).
fn on_terminal(stream: Stream) -> bool {
    use std::io::IsTerminal;
    static TERMINALS: OnceLock<(bool, bool)> = OnceLock::new();
    let (stdout, stderr) =
        *TERMINALS.get_or_init(|| (std::io::stdout().is_terminal(), std::io::stderr().is_terminal()));
    match stream {
        Stream::Stdout => stdout,
        Stream::Stderr => stderr,
    }
}

/// The run's output lock, made before the first fork (every process of
/// the run shares it); `None` if the shared region could not hold it.
static OUTPUT: OnceLock<Option<RobustMutex>> = OnceLock::new();

/// Makes the output lock: call before any task starts.
pub fn init() {
    OUTPUT.get_or_init(|| RobustMutex::new().ok());
    super::progress::init();
}

/// At the prompt, a line typed by the user must not be torn by a
/// background task's output: every line is handed to `sink` (the line
/// editor draws it above the prompt). Forked children cannot reach the
/// sink, so their stdout and stderr become a pipe this process reads.
struct Diverted {
    sink: Box<dyn Fn(String) + Send>,
    children: OwnedFd,
    /// A child's line not yet ended by its newline.
    partial: Vec<u8>,
}

static DIVERTED: AtomicBool = AtomicBool::new(false);
static DIVERT: Mutex<Option<Diverted>> = Mutex::new(None);
/// The pipe's write end, which children take as stdout and stderr.
static CHILDREN_WRITE: AtomicI32 = AtomicI32::new(-1);

/// Sends every later line of this process and its children to `sink`.
pub fn divert(sink: Box<dyn Fn(String) + Send>) -> std::io::Result<()> {
    use nix::fcntl::OFlag;
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    nix::fcntl::fcntl(&read, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    let read_fd = read.as_raw_fd();
    *DIVERT.lock() = Some(Diverted { sink, children: read, partial: Vec::new() });
    // Kept open for the life of the process: every child gets a copy.
    CHILDREN_WRITE.store(std::os::fd::IntoRawFd::into_raw_fd(write), Ordering::SeqCst);
    DIVERTED.store(true, Ordering::Release);
    crate::sync::gate::start_helper(std::thread::Builder::new().name("concsh-children-output".into()), move || {
        loop {
            // SAFETY: the read end lives in `DIVERT` for the life of the process.
            let fd = unsafe { BorrowedFd::borrow_raw(read_fd) };
            let mut ready = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
            match nix::poll::poll(&mut ready, nix::poll::PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return,
            }
            if let Some(diverted) = DIVERT.lock().as_mut() {
                diverted.pass_on_children(false);
            }
        }
    })?;
    Ok(())
}

/// Hands on everything children have written so far, an unended last
/// line included: the prompt is about to be drawn.
pub fn pass_on_children() {
    if DIVERTED.load(Ordering::Acquire)
        && let Some(diverted) = DIVERT.lock().as_mut()
    {
        diverted.pass_on_children(true);
    }
}

impl Diverted {
    fn pass_on_children(&mut self, partial_too: bool) {
        let mut buffer = [0u8; 8192];
        while let Ok(n @ 1..) = nix::unistd::read(&self.children, &mut buffer) {
            self.partial.extend_from_slice(&buffer[..n]);
        }
        let whole = match self.partial.iter().rposition(|&b| b == b'\n') {
            _ if partial_too => self.partial.len(),
            Some(last) => last + 1,
            None => 0,
        };
        if whole > 0 {
            let lines: Vec<u8> = self.partial.drain(..whole).collect();
            (self.sink)(String::from_utf8_lossy(&lines).into_owned());
        }
    }
}

/// In a forked child: write to the parent's pipe, not to a sink that
/// lives in the parent. The parent's lock is never touched here (a thread
/// that does not exist in the child may have held it).
pub fn forget_in_child() {
    if DIVERTED.swap(false, Ordering::AcqRel) {
        // SAFETY: the write end stays open for the life of the process.
        let write = unsafe { BorrowedFd::borrow_raw(CHILDREN_WRITE.load(Ordering::SeqCst)) };
        let _ = nix::unistd::dup2_stdout(write);
        let _ = nix::unistd::dup2_stderr(write);
    }
}

fn write_whole(stream: Stream, text: &str) -> Written {
    let fd = match stream {
        Stream::Stdout => 1,
        Stream::Stderr => 2,
    };
    // SAFETY: descriptors 1 and 2 stay open for the life of the process;
    // the borrow lasts only for this call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        match nix::unistd::write(fd, rest) {
            Ok(0) => return Written::Closed,
            Ok(n) => rest = &rest[n..],
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(nix::errno::Errno::EPIPE) => return Written::Closed,
            Err(e) => return Written::Failed(e),
        }
    }
    Written::Ok
}

/// For reports written by the interpreter itself: written like any line
/// (no lock a fork could leave held in a child).
pub fn report(text: &str) {
    write_line(Stream::Stderr, text);
}
