//! Shared by the integration tests: running the real binary (never
//! in-process: scripts fork, and forking inside the multi-threaded test
//! runner is unsafe) with a time limit, and showing differences.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// No script in the suite comes near this; a hang fails instead of blocking CI.
pub const LIMIT: Duration = Duration::from_secs(60);

pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

pub fn concsh() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_concsh"));
    command.env("NO_COLOR", "1").env_remove("CONCSH_BLESS");
    command
}

/// Starts `concsh ARGS` with its standard streams piped, stdout ready to
/// be read line by line (the child's stdin is kept open, unwritten).
pub fn start(args: &[&str]) -> (Running, std::io::BufReader<std::process::ChildStdout>) {
    let mut child = concsh()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("concsh starts");
    let stdout = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    (Running(Some(child)), stdout)
}

/// A concsh started by [`start`], killed when dropped: a test that fails
/// before it ends the run leaves no script running (its processes end
/// with it, as children of a killed concsh do).
pub struct Running(Option<std::process::Child>);

impl Running {
    /// [`std::process::Child::wait_with_output`]: the run is waited for,
    /// so nothing is left to kill.
    pub fn wait_with_output(mut self) -> std::io::Result<std::process::Output> {
        self.0.take().expect("a running concsh").wait_with_output()
    }
}

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        self.0.as_ref().expect("a running concsh")
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("a running concsh")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            // Both are no-ops for a run that was already waited for.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `concsh ARGS` in `dir` with `stdin`, killing it past [`LIMIT`].
/// Output is read while the child runs, so a large one cannot block it.
pub fn run_concsh(args: &[String], stdin: &[u8], dir: &Path) -> Result<Run, String> {
    let mut child = concsh()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start concsh: {e}"))?;
    let feed = child.stdin.take().map(|mut input| {
        let bytes = stdin.to_vec();
        std::thread::spawn(move || {
            let _ = input.write_all(&bytes);
        })
    });
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait());
    });
    let status = match finished.recv_timeout(LIMIT) {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Err(format!("waiting for concsh: {e}")),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = finished.recv();
            return Err(format!("concsh {args:?} did not finish within {LIMIT:?}"));
        }
    };
    if let Some(feed) = feed {
        let _ = feed.join();
    }
    let stdout = stdout.join().map_err(|_| "reading stdout failed".to_string())?;
    let stderr = stderr.join().map_err(|_| "reading stderr failed".to_string())?;
    Ok(Run {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        code: status.code().unwrap_or(-1),
    })
}

/// `pid 4242` becomes `pid N`, so reports naming a process compare equal.
pub fn mask_pids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("pid ") {
        out.push_str(&rest[..at + 4]);
        rest = &rest[at + 4..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push('N');
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

/// Every file under `dir` ending in `.ext`.
pub fn collect(dir: &Path, ext: &str, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, ext, into);
        } else if path.extension().is_some_and(|e| e == ext) {
            into.push(path);
        }
    }
}

/// A line-by-line account of how `actual` differs from `expected`.
pub fn diff(what: &str, expected: &str, actual: &str) -> String {
    let mut out = format!("{what} differs (- expected, + actual):\n");
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    for i in 0..e.len().max(a.len()) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => out.push_str(&format!("  {x}\n")),
            (x, y) => {
                if let Some(x) = x {
                    out.push_str(&format!("- {x}\n"));
                }
                if let Some(y) = y {
                    out.push_str(&format!("+ {y}\n"));
                }
            }
        }
    }
    if expected.ends_with('\n') != actual.ends_with('\n') {
        out.push_str("(the final newline differs)\n");
    }
    out
}

/// Waits (on a pidfd) for `pid` to end; false if it is still running
/// after `limit`.
pub fn ends_within(pid: nix::unistd::Pid, limit: Duration) -> bool {
    // SAFETY: pidfd_open takes plain integers and returns a descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return true; // already gone
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let pidfd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    let mut fds = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&pidfd), nix::poll::PollFlags::POLLIN)];
    let timeout = nix::poll::PollTimeout::try_from(limit.as_millis() as i32).expect("timeout");
    matches!(nix::poll::poll(&mut fds, timeout), Ok(n) if n > 0)
}

/// A fresh folder for one test's files, removed (with all it holds) when
/// dropped, however the test ends.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("concsh-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Peak memory (VmHWM) of a run, in KiB, read from its own /proc entry.
pub fn peak_rss_kib(script: &str) -> u64 {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let probe = format!("{script}\nprint(read_file(\"/proc/self/status\"))");
    let run = run_concsh(&["-".into()], probe.as_bytes(), root).expect("runs");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let line = run.stdout.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM line");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number")
}
