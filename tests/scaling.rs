//! How costs grow and what sharing does to results: shapes, never raw
//! times (a timing bound on a shared 2-core machine would be flaky).

mod support;

use std::path::Path;

fn run(script: &str) -> String {
    let run = support::run_concsh(&["-c".to_string(), script.to_string()], b"", Path::new("."))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    run.stdout
}

/// Seconds the script's loop of `n` appends took, the best of three runs
/// (noise on a loaded machine only ever adds time).
fn appending(n: u64) -> f64 {
    let script = format!(
        "let s = \"\"\nlet started = time()\nfor i in range({n}) {{ s += \"ab\" }}\n\
         let took = time() - started\nassert(len(s) == {}, \"length\")\nprint(took)",
        2 * n
    );
    (0..3).map(|_| run(&script).trim().parse::<f64>().expect("seconds")).fold(f64::INFINITY, f64::min)
}

/// Four times the appends take about four times as long (a copy on every
/// append would take sixteen times, and a million appends would not end
/// within the run limit).
#[test]
fn appending_to_a_string_takes_linear_time() {
    let (small, large) = (appending(250_000), appending(1_000_000));
    assert!(large < 8.0 * small.max(0.001), "250k appends: {small:.3}s, 1M appends: {large:.3}s");
}

/// Two threads calling one shared object's method, which updates its
/// fields, lose no update.
#[test]
fn two_threads_calling_a_shared_method_lose_no_update() {
    let script = r#"
let acc = {"total": 0, "calls": 0, "items": [0, 0]}
acc.add = fn(i) {
    acc.total += i
    acc["calls"] += 1
    acc.items[i % 2] += 1
}
fn work(lo, hi) { for i in range(lo, hi) { acc.add(i) } }
let a = thread work(0, 100000)
let b = thread work(100000, 200000)
join a
join b
print(acc.total, acc.calls, acc.items)
"#;
    assert_eq!(run(script).trim(), "19999900000 200000 [100000, 100000]");
}

/// Two threads calling a shared object's method while a third replaces it
/// over and over: every call runs one whole function, old or new (a
/// replaced function stays alive while a call runs it), and none is lost.
#[test]
fn a_method_replaced_while_two_threads_call_it_loses_no_call() {
    let script = r#"
let obj = {"hits": 0, "made": 0}
fn make() {
    obj.made += 1
    let big = [1, 2, 3]
    return fn() { obj.hits += len(big) - 2 }
}
obj.f = make()
fn work(n) { for i in range(n) { obj.f() } }
fn swap(n) { for i in range(n) { obj.f = make() } }
let a = thread work(50000)
let b = thread work(50000)
let c = thread swap(20000)
join a
join b
join c
print(obj.hits, obj.made)
"#;
    assert_eq!(run(script).trim(), "100000 20001");
}

/// A map or a list is used without its lock by the thread that made it
/// until another thread uses it. Here a thread takes up each of 3,000 maps
/// and lists while their maker is in the middle of updating them: each
/// revocation waits out the maker's use under way, so no update and no
/// item is lost. (A revocation that did not wait loses some 1,200 of the
/// 60,000 updates.)
#[test]
fn containers_taken_up_while_their_maker_updates_them_lose_nothing() {
    let script = r#"
let slot = {"m": {"n": 0}, "xs": []}
let all = [slot.m]
let lists = [slot.xs]
let done = {"flag": false}
fn helper() {
    let count = 0
    while not done.flag {
        let m = slot.m
        m.n += 1
        slot.xs.push(count)
        count += 1
    }
    return count
}
let h = thread helper()
for j in range(3000) {
    let m = {"n": 0}
    let xs = []
    all.push(m)
    lists.push(xs)
    slot.m = m
    slot.xs = xs
    for i in range(20) {
        m.n += 1
        xs.push(i)
    }
}
done.flag = true
let helped = join h
let total = 0
let items = 0
for m in all { total += m.n }
for xs in lists { items += len(xs) }
print(total - helped, items - helped)
"#;
    assert_eq!(run(script).trim(), "60000 60000");
}

/// A map made by a finished thread, used by a process forked after: the
/// child takes the map from a thread that does not exist in it.
#[test]
fn a_process_uses_a_map_a_finished_thread_made() {
    let script = r#"
let old = join (thread (fn() => {"n": 5, "xs": [1]})())
fn bump(k) {
    for i in range(k) {
        old.n += 1
        old.xs.push(i)
    }
    return [old.n, len(old.xs)]
}
let p = spawn bump(1000)
print(join p, old.n, len(old.xs))
"#;
    assert_eq!(run(script).trim(), "[1005, 1001] 5 1");
}

/// Strings a thread makes and another drops, round after round: the
/// dropped ones' memory serves the next round's new thread (a thread
/// keeps the memory of the short strings it drops for reuse, and hands
/// what passes its budget on), so six times the rounds take nearly the
/// same peak.
#[test]
fn strings_made_in_one_thread_and_dropped_in_another_run_in_bounded_memory() {
    let rounds = |n: u64| {
        format!(
            r#"fn make(n) {{
    let made = []
    for i in range(n) {{ made.push("string number {{i}}, some fifty bytes in all, to keep") }}
    return made
}}
for round in range({n}) {{
    let strings = join thread make(50000)
    assert(len(strings) == 50000)
}}"#
        )
    };
    let few = support::peak_rss_kib(&rounds(2));
    let many = support::peak_rss_kib(&rounds(12));
    // Kept rather than reused, ten more rounds would take 40 MB more.
    assert!(many < few + 10_000, "peak RSS grew from {few} KiB to {many} KiB");
}
