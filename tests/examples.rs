//! The programs of `examples/` run and do what their comments say.

mod support;

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str], stdin: &str) -> support::Run {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let done = support::run_concsh(&args, stdin.as_bytes(), root()).expect("concsh runs");
    assert_eq!(done.code, 0, "{args:?}: {}", done.stderr);
    done
}

/// A scratch folder of this test's own.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("concsh-examples-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

#[test]
fn word_count_merges_the_counts_of_every_file() {
    let dir = scratch("word_count");
    std::fs::write(dir.join("a.txt"), "the cat sat on the mat\nthe dog\n").unwrap();
    std::fs::write(dir.join("b.txt"), "a cat and a dog\nThe end\n").unwrap();
    let (a, b) = (dir.join("a.txt"), dir.join("b.txt"));
    let done = run(&["examples/word_count.conc", a.to_str().unwrap(), b.to_str().unwrap()], "");
    let top: Vec<&str> = done.stdout.lines().take(4).map(str::trim).collect();
    assert_eq!(top, ["4 the", "2 a", "2 cat", "2 dog"]);
    assert_eq!(done.stdout.lines().count(), 9);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn copy_folder_copies_every_file() {
    let dir = scratch("copy_folder");
    let (source, dest) = (dir.join("from"), dir.join("to"));
    std::fs::create_dir_all(&source).unwrap();
    let mut names = Vec::new();
    for i in 0..20 {
        let name = if i % 2 == 0 { format!("f{i}.txt") } else { format!("sub/deeper/f{i}.bin") };
        let path = source.join(&name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Odd files are binary: every byte value, not UTF-8.
        let bytes: Vec<u8> = match i % 2 {
            0 => format!("file {i}\n").repeat(i + 1).into_bytes(),
            _ => (0..=255u8).cycle().take(1000 * i).collect(),
        };
        std::fs::write(&path, bytes).unwrap();
        names.push(name);
    }
    let done = run(&["examples/copy_folder.conc", source.to_str().unwrap(), dest.to_str().unwrap()], "");
    assert!(done.stdout.starts_with("copied 20 files"), "{}{}", done.stdout, done.stderr);
    for name in &names {
        assert_eq!(std::fs::read(source.join(name)).unwrap(), std::fs::read(dest.join(name)).unwrap(), "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pipeline_keeps_the_order_of_its_input() {
    let input: String = (0..200).map(|i| format!("line {i}\n")).collect();
    let done = run(&["examples/pipeline.conc"], &input);
    assert_eq!(done.stdout, input.to_uppercase());
}

#[test]
fn bank_keeps_its_money_and_has_no_race() {
    let done = run(&["examples/bank.conc"], "");
    assert_eq!(done.stdout, "total money: 400 (it was 400)\n");
    let raced = run(&["--race", "examples/bank.conc"], "");
    assert_eq!(raced.stderr, "", "no race is reported");
}

#[test]
fn primes_counts_in_parallel() {
    let done = run(&["examples/primes.conc", "10000"], "");
    assert_eq!(done.stdout, "1229 primes below 10000\n");
}
