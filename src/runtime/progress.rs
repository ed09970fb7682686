//! The progress bar of a long `map`: drawn on stderr once the map has run
//! for half a second, and only when stderr is a terminal; cleared when the
//! map ends. Each frame is written whole under the run's output lock.
//! While a bar is shown, lines printed by this process are written with
//! the bar lifted, and lines printed by other processes (a pool's workers)
//! take the bar's place on the screen, the bar drawn again below them: no
//! stale bar is left in the scrollback.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};
use parking_lot::Mutex;

/// How long a map runs before its bar appears.
const DELAY: Duration = Duration::from_millis(500);

/// The bar on screen now, if any (one at a time).
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);
static ANY_SHOWN: AtomicBool = AtomicBool::new(false);
/// In the shared region: the pid of the process whose bar is on the
/// terminal (0: none), so that the others' lines take its place.
static SHOWN_BY: OnceLock<Option<&'static AtomicU32>> = OnceLock::new();

/// Makes the shared word: call before any task starts.
pub fn init() {
    SHOWN_BY.get_or_init(|| {
        let region = crate::sync::shm::region()?;
        Some(region.get::<AtomicU32>(region.alloc(4)?))
    });
}

fn shown_by() -> Option<&'static AtomicU32> {
    SHOWN_BY.get().copied().flatten()
}

/// Whether another process's bar is on the terminal now.
pub fn shown_elsewhere() -> bool {
    shown_by().is_some_and(|by| {
        let pid = by.load(Ordering::Relaxed);
        pid != 0 && pid != std::process::id()
    })
}

/// What a map's bar shows, as its pool says (`pool(n, progress: ...)`).
#[derive(Clone, Debug, Default)]
pub enum Bar {
    /// The bar, on a terminal, after half a second.
    #[default]
    Plain,
    /// The bar, led by this label.
    Labelled(std::sync::Arc<str>),
    /// No bar.
    Off,
}

pub struct Progress {
    total: u64,
    done: u64,
    started: Instant,
    enabled: bool,
    label: Option<std::sync::Arc<str>>,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new(total: usize, look: &Bar) -> Progress {
        let enabled = total > 0 && !matches!(look, Bar::Off) && std::io::stderr().is_terminal();
        let label = match look {
            Bar::Labelled(label) => Some(label.clone()),
            _ => None,
        };
        Progress { total: total as u64, done: 0, started: Instant::now(), enabled, label, bar: None }
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
        // Drawn only once it is whole: label, style and position set.
        let bar = ProgressBar::with_draw_target(Some(self.total), ProgressDrawTarget::hidden());
        // Rate and time left over the whole map so far, from its start (not
        // from when the bar appeared), in figures a person reads at a glance.
        let started = self.started;
        let rate = move |state: &ProgressState| state.pos() as f64 / started.elapsed().as_secs_f64().max(1e-3);
        let style = ProgressStyle::with_template("{prefix}{bar:40} {pos}/{len}  {rate}  eta {left}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("rate", move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = match rate(state) {
                    r if r >= 100.0 => write!(w, "{r:.0}/s"),
                    r if r >= 10.0 => write!(w, "{r:.1}/s"),
                    r => write!(w, "{r:.2}/s"),
                };
            })
            .with_key("left", move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let rate = rate(state);
                if rate <= 0.0 {
                    let _ = w.write_str("?");
                    return;
                }
                let left = state.len().unwrap_or(0).saturating_sub(state.pos()) as f64 / rate;
                let left = left.min(359_999.0) as u64;
                let _ = match left {
                    s if s >= 3600 => write!(w, "{}h{:02}m", s / 3600, s % 3600 / 60),
                    s if s >= 60 => write!(w, "{}m{:02}s", s / 60, s % 60),
                    s => write!(w, "{s}s"),
                };
            });
        bar.set_style(style);
        if let Some(label) = &self.label {
            bar.set_prefix(format!("{label} "));
        }
        bar.set_position(self.done);
        bar.set_draw_target(ProgressDrawTarget::term_like(Box::new(Frames::default())));
        bar.enable_steady_tick(Duration::from_millis(200));
        *shown = Some(bar.clone());
        ANY_SHOWN.store(true, Ordering::SeqCst);
        if let Some(by) = shown_by() {
            by.store(std::process::id(), Ordering::SeqCst);
        }
        self.bar = Some(bar);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            ANY_SHOWN.store(false, Ordering::SeqCst);
            SHOWN.lock().take();
            bar.finish_and_clear();
            if let Some(by) = shown_by() {
                by.store(0, Ordering::SeqCst);
            }
        }
    }
}

/// The terminal as the bar draws on it: each frame is gathered and
/// written whole under the run's output lock, so no line of another task
/// or process lands inside one.
#[derive(Debug, Default)]
struct Frames {
    pending: Mutex<String>,
}

impl Frames {
    fn add(&self, text: &str) -> std::io::Result<()> {
        self.pending.lock().push_str(text);
        Ok(())
    }

    fn cursor(&self, n: usize, direction: char) -> std::io::Result<()> {
        if n > 0 {
            let _ = write!(self.pending.lock(), "\x1b[{n}{direction}");
        }
        Ok(())
    }
}

impl TermLike for Frames {
    fn width(&self) -> u16 {
        console::Term::stderr().size().1
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'D')
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.add(s)?;
        self.add("\n")
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.add(s)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        self.add("\r\x1b[2K")
    }

    fn flush(&self) -> std::io::Result<()> {
        let frame = std::mem::take(&mut *self.pending.lock());
        if !frame.is_empty() {
            super::output::write_frame(&frame);
        }
        Ok(())
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
