//! Native stacks: how large each interpreter thread's is, and the check
//! that turns recursion about to overflow one into a `ResourceError`.
//!
//! Stacks are reserved address space, touched only as deep as they are
//! used. Without an address-space limit they are large (room for the
//! language's recursion limit). Under `ulimit -v` they shrink with the
//! limit, so that a script with several threads still starts; the check
//! below then stops a deep recursion before the smaller stack runs out.

use std::sync::OnceLock;

/// The script's main thread, without an address-space limit.
const MAIN_MAX: usize = 1 << 30;
/// Every other thread that runs script code.
const THREAD_MAX: usize = 256 << 20;
/// The smallest stack worth starting with.
const FLOOR: usize = 8 << 20;

/// Stack left unused below the check: room for the deepest native
/// recursion between two checks (an expression nested as deep as the
/// parser allows, a builtin, a report being rendered).
const RED_ZONE: usize = 2 << 20;

/// The address-space limit (`ulimit -v`) in bytes, if any.
pub fn address_limit() -> Option<u64> {
    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_AS).ok()?;
        (soft != nix::sys::resource::RLIM_INFINITY).then_some(soft)
    })
}

/// The main thread's stack: an eighth of an address-space limit.
pub fn main_size() -> usize {
    sized(MAIN_MAX, 8)
}

/// A script thread's (and a forked child's) stack: a thirty-second of an
/// address-space limit.
pub fn thread_size() -> usize {
    sized(THREAD_MAX, 32)
}

fn sized(max: usize, share: u64) -> usize {
    match address_limit() {
        None => max,
        Some(limit) => ((limit / share) as usize).clamp(FLOOR, max),
    }
}

/// The lowest address this thread's stack may grow down to before deeper
/// recursion must stop with an error (0: unknown, never stop). Taken once
/// per evaluator, so the check on each call is one comparison.
pub fn floor() -> usize {
    match stacker::remaining_stack() {
        Some(left) => here().saturating_sub(left).saturating_add(RED_ZONE),
        None => 0,
    }
}

/// Whether the stack has grown below `floor`.
#[inline(always)]
pub fn below(floor: usize) -> bool {
    here() < floor
}

/// An address in the caller's stack frame.
#[inline(always)]
fn here() -> usize {
    let marker = 0u8;
    std::hint::black_box(&raw const marker) as usize
}
