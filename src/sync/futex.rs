//! Linux futexes on words that may live in memory shared between
//! processes (so never the `_PRIVATE` variants).

use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

/// Sleeps while `*word == expected`, until woken or until `deadline`
/// (monotonic). Returns false if the deadline passed. Spurious returns
/// happen; callers re-check their condition.
pub fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> bool {
    wait_for(word, expected, deadline.map(|d| d.saturating_duration_since(Instant::now())))
}

/// [`wait`] for at most `timeout` (`None`: no limit).
pub fn wait_for(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
    let timeout = timeout.map(|left| libc::timespec {
        tv_sec: left.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: left.subsec_nanos() as _,
    });
    if timeout.is_some_and(|t| t.tv_sec == 0 && t.tv_nsec == 0) {
        return false;
    }
    let timeout_ptr = timeout.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call;
    // FUTEX_WAIT only reads it and the optional relative timeout.
    let result = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, timeout_ptr) };
    !(result == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT))
}

/// Wakes at most `count` sleepers on `word`.
pub fn wake(word: &AtomicU32, count: u32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE does not access
    // memory beyond it.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, count.min(i32::MAX as u32));
    }
}
