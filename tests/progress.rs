//! The progress bar of a long map, seen through a pseudo-terminal as a
//! person would see it: the screen it leaves holds every line printed and
//! no stale bar, and its rate is plausible and plainly rounded.

use std::process::Command;
use std::time::Duration;

use expectrl::{Eof, Expect, Session};

/// 60 items of 0.03 s each on 2 workers that print now and then: at most
/// 2 / 0.03 = 67 items a second, however loaded the machine.
const SCRIPT: &str = r#"
fn work(i) {
    sleep(0.03)
    if i % 10 == 0 { print("worker says {i}") }
    return i
}
let pl = pool(2, progress: "copying")
let r = pool pl map work over range(60)
print("done {len(r)}")
close pl
join pl
"#;

fn run_on_a_terminal(test: &str, script: &str) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("concsh-progress-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bar.conc");
    std::fs::write(&path, script).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_concsh"));
    command.arg(&path).env("NO_COLOR", "1");
    let mut session = Session::spawn(command).expect("concsh starts on a pseudo-terminal");
    session.set_expect_timeout(Some(Duration::from_secs(60)));
    let seen = session.expect(Eof).expect("the script ends");
    let _ = std::fs::remove_dir_all(&dir);
    seen.as_bytes().to_vec()
}

#[test]
fn the_bar_leaves_no_trace_and_its_rate_is_plausible() {
    let raw = run_on_a_terminal("trace", SCRIPT);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("copying "), "the bar was drawn, with its label: {text:?}");
    // Every rate shown: at most 67 items a second, at most two decimals.
    let pieces: Vec<&str> = text.split("/s").collect();
    let rates: Vec<&str> = pieces[..pieces.len() - 1].iter().filter_map(|before| before.rsplit(' ').next()).collect();
    assert!(!rates.is_empty(), "a rate was shown: {text:?}");
    for rate in &rates {
        let value: f64 = rate.parse().unwrap_or_else(|_| panic!("a rate is a number: {rate:?}"));
        assert!(value <= 70.0, "rate {rate} is past what 2 workers can do");
        assert!(rate.split('.').nth(1).is_none_or(|d| d.len() <= 2), "rate {rate} has too many decimals");
    }
    // The screen as a terminal draws it: the lines printed, nothing else.
    let size = |n| std::num::NonZeroU16::new(n).expect("a size");
    let mut screen = vt100::Parser::new(size(100), size(80), 0);
    screen.process(&raw);
    let lines: Vec<String> = screen.screen().contents().lines().map(|l| l.trim_end().to_string()).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).filter(|l| !l.is_empty()).collect();
    let mut expected: Vec<String> = (0..6).map(|i| format!("worker says {}", i * 10)).collect();
    expected.push("done 60".into());
    assert_eq!(lines, expected, "no stale bar is left on the screen");
}

#[test]
fn a_pool_made_with_progress_false_draws_no_bar() {
    let raw = run_on_a_terminal("off", &SCRIPT.replace("progress: \"copying\"", "progress: false"));
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains("/s"), "no bar: {text:?}");
    assert!(text.contains("done 60"), "{text:?}");
}
