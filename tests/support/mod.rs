//! Shared by the integration tests: running the real binary (never
//! in-process: scripts fork, and forking inside the multi-threaded test
//! runner is unsafe) with a time limit, and showing differences.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// Runs `concsh ARGS` in `dir` with `stdin`, killing it past [`LIMIT`].
pub fn run_concsh(args: &[String], stdin: &[u8], dir: &Path) -> Result<Run, String> {
    let mut child = concsh()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start concsh: {e}"))?;
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin);
    }
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("concsh {args:?} did not finish within {LIMIT:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for concsh: {e}")),
        }
    }
    let output = child.wait_with_output().map_err(|e| format!("reading concsh output: {e}"))?;
    Ok(Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        code: output.status.code().unwrap_or(-1),
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
