//! The documentation's examples run: every ```conc block of README.md and
//! docs/language.md passes `concsh --check`, and a block followed by an
//! ```output block prints exactly that.

use std::path::Path;

mod support;

struct Example {
    file: &'static str,
    line: usize,
    code: String,
    output: Option<String>,
}

fn examples(file: &'static str) -> Vec<Example> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).expect("doc exists");
    let mut examples: Vec<Example> = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let fence = line.trim();
        if fence != "```conc" && fence != "```output" {
            continue;
        }
        let body: Vec<&str> = lines.by_ref().map(|(_, l)| l).take_while(|l| l.trim() != "```").collect();
        let body = body.join("\n") + "\n";
        if fence == "```conc" {
            examples.push(Example { file, line: n + 1, code: body, output: None });
        } else if let Some(last) = examples.last_mut() {
            last.output = Some(body);
        }
    }
    examples
}

#[test]
fn documentation_examples_run_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let all: Vec<Example> = ["README.md", "docs/language.md"].into_iter().flat_map(examples).collect();
    assert!(all.len() >= 4, "expected the docs to hold examples, found {}", all.len());
    for example in all {
        let place = format!("{}:{}", example.file, example.line);
        let check = support::run_concsh(&["--check".into(), "-".into()], example.code.as_bytes(), root).expect("runs");
        assert_eq!(check.code, 0, "{place} does not check:\n{}", check.stderr);
        if let Some(expected) = example.output {
            let run = support::run_concsh(&["-".into()], example.code.as_bytes(), root).expect("runs");
            assert_eq!(run.stdout, expected, "{place} prints something else");
            assert_eq!(run.code, 0, "{place} failed:\n{}", run.stderr);
        }
    }
}

/// The reference's contents list every numbered section, in order, each
/// linked to the anchor its heading gets.
#[test]
fn the_contents_of_the_reference_match_its_sections() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/language.md")).expect("doc exists");
    let anchor = |title: &str| -> String {
        let kept: String =
            title.to_lowercase().chars().filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-').collect();
        kept.replace(' ', "-")
    };
    let sections: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("### ").or_else(|| l.strip_prefix("## ")))
        .filter(|title| title.starts_with(|c: char| c.is_ascii_digit()))
        .map(|title| format!("](#{})", anchor(title)))
        .collect();
    let contents = &text[..text.find("## 1.").expect("a first section")];
    let linked: Vec<String> = contents
        .match_indices("](#")
        .map(|(at, _)| contents[at..].split(')').next().unwrap_or("").to_string() + ")")
        .collect();
    assert_eq!(linked, sections, "the contents and the section headings differ");
}
