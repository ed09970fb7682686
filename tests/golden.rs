//! Golden tests: runs the built `concsh` on every `scripts/**/*.conc` and
//! compares stdout with `NAME.out`, stderr with `NAME.err` and the exit
//! status with `NAME.code` (a missing file means empty output and status
//! 0). `NAME.args` gives arguments, one per line; `NAME.flags` gives
//! concsh's own options (before the script), one per line; `NAME.stdin` is
//! fed to standard input. A file in a `lib` folder is a module the
//! scripts beside it import, not a script. `CONCSH_BLESS=1 cargo test`
//! rewrites the expectations.

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};

mod support;

fn main() {
    let args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scripts = Vec::new();
    support::collect(&root.join("scripts"), "conc", &mut scripts);
    scripts.retain(|script| !script.components().any(|c| c.as_os_str() == "lib"));
    scripts.sort();
    let trials = scripts
        .into_iter()
        .map(|script| {
            let name = script.strip_prefix(root).unwrap_or(&script).with_extension("").to_string_lossy().into_owned();
            Trial::test(name, move || check(&script))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn check(script: &Path) -> Result<(), Failed> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let relative = script.strip_prefix(root).unwrap_or(script);
    let sibling = |ext: &str| -> PathBuf { script.with_extension(ext) };
    let lines = |ext: &str| -> Vec<String> {
        std::fs::read_to_string(sibling(ext)).map(|text| text.lines().map(str::to_string).collect()).unwrap_or_default()
    };
    let args = lines("args");
    let stdin = std::fs::read(sibling("stdin")).unwrap_or_default();
    // The race detector's scripts run under it.
    let mut command_args: Vec<String> = match relative.starts_with("scripts/race") {
        true => vec!["--race".into()],
        false => Vec::new(),
    };
    command_args.extend(lines("flags"));
    command_args.push(relative.to_string_lossy().into_owned());
    command_args.extend(args);
    let mut run = support::run_concsh(&command_args, &stdin, root)?;
    // Process ids differ from run to run.
    run.stderr = support::mask_pids(&run.stderr);

    let bless = std::env::var_os("CONCSH_BLESS").is_some();
    let expected_code =
        std::fs::read_to_string(sibling("code")).ok().and_then(|c| c.trim().parse::<i32>().ok()).unwrap_or(0);
    if bless {
        write_or_remove(&sibling("out"), &run.stdout, true)?;
        write_or_remove(&sibling("err"), &run.stderr, false)?;
        let code = if run.code == 0 { String::new() } else { format!("{}\n", run.code) };
        write_or_remove(&sibling("code"), &code, false)?;
        return Ok(());
    }
    let mut problems = Vec::new();
    let expected_out = std::fs::read_to_string(sibling("out")).unwrap_or_default();
    if run.stdout != expected_out {
        problems.push(support::diff("stdout", &expected_out, &run.stdout));
    }
    let expected_err = std::fs::read_to_string(sibling("err")).unwrap_or_default();
    if run.stderr != expected_err {
        problems.push(support::diff("stderr", &expected_err, &run.stderr));
    }
    if run.code != expected_code {
        problems.push(format!("exit status: expected {expected_code}, got {}", run.code));
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems.join("\n").into()),
    }
}

/// Writes an expectation; an empty one is removed (`.out` is always kept).
fn write_or_remove(path: &Path, text: &str, keep_empty: bool) -> Result<(), Failed> {
    if text.is_empty() && !keep_empty {
        let _ = std::fs::remove_file(path);
        return Ok(());
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}
