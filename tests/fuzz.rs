//! The parser and resolver never panic: every script in `scripts/` is fed
//! to them truncated at many points and with random edits (a fixed seed,
//! so a failure repeats), and each variation must give a program or
//! errors, never a panic nor an internal error.

use std::path::Path;

mod support;

/// Variations tried per script, besides truncations.
const EDITS: usize = 100;

/// Pieces of syntax spliced in by the random edits.
const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "\\",
    "{x}",
    "{{",
    "}}",
    ":",
    ",",
    ";",
    "\n",
    "=",
    "==",
    "+",
    "-",
    "**",
    "//",
    ".",
    "=>",
    "fn",
    "let",
    "if",
    "else",
    "for",
    "in",
    "not",
    "and",
    "break",
    "return",
    "try",
    "catch",
    "9223372036854775808",
    "-9223372036854775808",
    "1e999",
    "0.",
    "\\u{110000}",
    "\\q",
    "#",
    "学",
    "é",
    "\t",
];

/// Parses and resolves `text`; the report of an internal error among the
/// errors, if any (a bug of the compiler's, never of the script's).
fn parse_and_resolve(text: &str) -> Option<String> {
    let program = concsh::syntax::parse(text).ok()?;
    let errors = concsh::resolve::resolve(program).err()?;
    errors.iter().map(|e| format!("{e:?}")).find(|e| e.contains("internal error"))
}

/// Truncations at char boundaries, and random edits with a fixed seed.
fn variations(text: &str, rng: &mut fastrand::Rng) -> Vec<String> {
    let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
    let stride = (bounds.len() / 60).max(1);
    let mut out: Vec<String> = bounds.iter().step_by(stride).map(|&b| text[..b].to_string()).collect();
    for _ in 0..EDITS {
        let mut edited = text.to_string();
        for _ in 0..rng.usize(1..4) {
            let bounds: Vec<usize> = edited.char_indices().map(|(i, _)| i).chain([edited.len()]).collect();
            let at = bounds[rng.usize(..bounds.len())];
            match rng.u8(..3) {
                0 => edited.insert_str(at, FRAGMENTS[rng.usize(..FRAGMENTS.len())]),
                1 => {
                    if let Some(c) = edited[at..].chars().next() {
                        edited.replace_range(at..at + c.len_utf8(), "");
                    }
                }
                _ => {
                    let end = bounds.iter().copied().find(|&b| b > at).unwrap_or(at);
                    edited.replace_range(at..end, FRAGMENTS[rng.usize(..FRAGMENTS.len())]);
                }
            }
        }
        out.push(edited);
    }
    out
}

#[test]
fn parser_never_panics_on_variations_of_every_script() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scripts = Vec::new();
    support::collect(&root.join("scripts"), "conc", &mut scripts);
    scripts.sort();
    assert!(scripts.len() > 20, "the scripts folder should hold the golden suite");
    // The interpreter parses on a large stack (cli.rs); so does this test.
    let worker = std::thread::Builder::new().stack_size(256 << 20).spawn(move || {
        let mut rng = fastrand::Rng::with_seed(0xC0C5);
        let mut tried = 0;
        for script in &scripts {
            let text = std::fs::read_to_string(script).expect("scripts are UTF-8");
            for variation in variations(&text, &mut rng) {
                let caught = std::panic::catch_unwind(|| parse_and_resolve(&variation));
                let Ok(internal) = caught else {
                    panic!("parser panicked on a variation of {}:\n{variation}", script.display())
                };
                if let Some(report) = internal {
                    panic!("an internal error on a variation of {}:\n{variation}\n{report}", script.display());
                }
                tried += 1;
            }
        }
        tried
    });
    let tried = worker.expect("thread starts").join().expect("no panic escaped");
    assert!(tried > 1000, "only {tried} variations were tried");
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    for depth in [150, 250, 5000, 100_000] {
        let text = format!("let x = {}1{}\n", "(".repeat(depth), ")".repeat(depth));
        let worker = std::thread::Builder::new().stack_size(256 << 20).spawn(move || parse_and_resolve(&text));
        worker.expect("thread starts").join().expect("no panic");
    }
}

/// Builtins without side effects outside the run (no files, no sleeping).
const BUILTINS: &[&str] = &[
    "str",
    "int",
    "float",
    "bool",
    "list",
    "type",
    "len",
    "range",
    "abs",
    "min",
    "max",
    "sum",
    "round",
    "sorted",
    "reversed",
    "enumerate",
    "keys",
    "values",
    "error",
    "assert",
    "queue",
    "semaphore",
    "condition",
    "shared",
];

/// Every operator over every pair of kinds of value gives a value or a
/// catchable error: never a panic of the evaluator.
#[test]
fn every_operator_on_every_kind_of_value_is_an_answer_or_an_error() {
    let values = [
        "0",
        "-3",
        "9223372036854775807",
        "2.5",
        "0.0",
        "\"ab\"",
        "\"\"",
        "true",
        "nil",
        "[1, [2]]",
        "[]",
        "{\"k\": 1}",
        "{}",
        "range(3)",
        "print",
        "fn(x) => x",
        "error(\"E\", \"m\")",
        "queue()",
        "lock()",
    ];
    let binary = ["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "and", "or"];
    let mut script = String::from("let answers = 0\nlet errors = 0\n");
    for a in values {
        script.push_str(&format!("try {{ let v = -({a}) ; answers += 1 }} catch {{ errors += 1 }}\n"));
        script.push_str(&format!("try {{ let v = not ({a}) ; answers += 1 }} catch {{ errors += 1 }}\n"));
        for b in values {
            for op in binary {
                script
                    .push_str(&format!("try {{ let v = ({a}) {op} ({b}) ; answers += 1 }} catch {{ errors += 1 }}\n"));
            }
            script.push_str(&format!("try {{ let v = ({a})[{b}] ; answers += 1 }} catch {{ errors += 1 }}\n"));
        }
        for builtin in BUILTINS {
            script.push_str(&format!("try {{ let v = {builtin}({a}) ; answers += 1 }} catch {{ errors += 1 }}\n"));
        }
    }
    let combinations = values.len() * (2 + BUILTINS.len()) + values.len() * values.len() * (binary.len() + 1);
    script.push_str(&format!("assert(answers + errors == {combinations})\nprint(\"all answered\")\n"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = support::run_concsh(&["-".into()], script.as_bytes(), root).expect("runs");
    assert_eq!(run.stdout, "all answered\n", "{}", run.stderr);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
