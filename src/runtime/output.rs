//! The one output path: every `print` is a single `write(2)` of a whole
//! line, straight to the file descriptor. Nothing is buffered in the
//! process, so lines from concurrent threads and processes never mix,
//! output appears in the order it happened, and a `fork` has nothing to
//! print twice.

use std::os::fd::BorrowedFd;

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
}

/// Writes `text` (which should end in a newline) in one system call where
/// the kernel allows, retrying only the rest of a partial write.
pub fn write_line(stream: Stream, text: &str) -> Written {
    super::progress::around_output(|| write_whole(stream, text))
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
            // Any other failure (a closed descriptor, a full disk) loses the
            // line, as `print` in every shell does; it is not a script error.
            Err(_) => return Written::Closed,
        }
    }
    Written::Ok
}

/// For reports written by the interpreter itself: written like any line
/// (no lock a fork could leave held in a child).
pub fn report(text: &str) {
    write_line(Stream::Stderr, text);
}
