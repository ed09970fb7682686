//! The race detector reports every race in every run, and nothing else:
//! each script of `scripts/race/` runs 50 times under `--race`, and every
//! run must give exactly its golden output and status (a racy script's
//! report included, in runs whose printed total happened to be right).

mod support;

use std::path::Path;

const RUNS: usize = 50;

fn every_run_matches(script: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = format!("scripts/race/{script}.conc");
    let golden =
        |ext: &str| std::fs::read_to_string(root.join(format!("scripts/race/{script}.{ext}"))).unwrap_or_default();
    let (out, err) = (golden("out"), golden("err"));
    let code: i32 = golden("code").trim().parse().unwrap_or(0);
    for run in 0..RUNS {
        let done = support::run_concsh(&["--race".into(), path.clone()], b"", root).expect("concsh runs");
        let stderr = support::mask_pids(&done.stderr);
        assert_eq!(
            (done.code, done.stdout.as_str(), stderr.as_str()),
            (code, out.as_str(), err.as_str()),
            "{script}, run {run} of {RUNS}"
        );
    }
}

#[test]
fn racy_scripts_are_reported_in_every_run() {
    for script in
        ["global_counter", "shared_counter", "list_item", "map_key", "queue_item_edge", "sizes", "slice_items"]
    {
        every_run_matches(script);
    }
}

#[test]
fn ordered_scripts_are_never_reported() {
    for script in ["ordered_threads", "ordered_processes", "never_reported"] {
        every_run_matches(script);
    }
}
