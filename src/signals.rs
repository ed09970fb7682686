//! Ctrl-C. The handler itself only records the signal (signal-hook's
//! self-pipe); a small listener thread then cancels every task, which
//! wakes any sleeping or blocked one and ends the script with status 130.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use signal_hook::consts::SIGINT;
use signal_hook::iterator::{Handle, Signals};

/// Set once Ctrl-C arrived.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Listens for SIGINT until dropped.
pub struct Listener {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    pub fn start(on_interrupt: impl Fn() + Send + 'static) -> Option<Listener> {
        let mut signals = Signals::new([SIGINT]).ok()?;
        let handle = signals.handle();
        let thread = std::thread::Builder::new()
            .name("concsh-signals".into())
            .spawn(move || {
                for _ in signals.forever() {
                    INTERRUPTED.store(true, Ordering::SeqCst);
                    on_interrupt();
                }
            })
            .ok()?;
        Some(Listener { handle, thread: Some(thread) })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
