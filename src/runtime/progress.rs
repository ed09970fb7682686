//! The progress bar of a long `map`: drawn on stderr once the map has run
//! for half a second, and only when stderr is a terminal; cleared when the
//! map ends. While a bar is shown, lines printed by this process are
//! written with the bar lifted (`output::write_line`), so neither garbles
//! the other.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot::Mutex;

/// How long a map runs before its bar appears.
const DELAY: Duration = Duration::from_millis(500);

/// The bar on screen now, if any (one at a time).
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);
static ANY_SHOWN: AtomicBool = AtomicBool::new(false);

pub struct Progress {
    total: u64,
    done: u64,
    started: Instant,
    enabled: bool,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        let enabled = total > 0 && std::io::stderr().is_terminal();
        Progress { total: total as u64, done: 0, started: Instant::now(), enabled, bar: None }
    }

    /// `items` more are done.
    pub fn advance(&mut self, items: usize) {
        self.done += items as u64;
        if self.bar.is_none() && self.enabled && self.started.elapsed() >= DELAY {
            self.show();
        }
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
        }
    }

    fn show(&mut self) {
        let mut shown = SHOWN.lock();
        if shown.is_some() {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(self.total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{bar:40} {pos}/{len}  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        *shown = Some(bar.clone());
        ANY_SHOWN.store(true, Ordering::SeqCst);
        self.bar = Some(bar);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            ANY_SHOWN.store(false, Ordering::SeqCst);
            SHOWN.lock().take();
            bar.finish_and_clear();
        }
    }
}

/// In a new child: the parent's bar (and its drawing thread) is not ours.
pub fn forget_in_child() {
    ANY_SHOWN.store(false, Ordering::SeqCst);
    // The lock may be held by a thread that does not exist here: with
    // `ANY_SHOWN` false it is never taken again, and the bar is leaked.
    std::mem::forget(SHOWN.try_lock().and_then(|mut s| s.take()));
}

/// Runs `write` with the bar (if one is shown) lifted off the screen.
pub fn around_output<T>(write: impl FnOnce() -> T) -> T {
    if !ANY_SHOWN.load(Ordering::Relaxed) {
        return write();
    }
    let shown = SHOWN.lock();
    match &*shown {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}
