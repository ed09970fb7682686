//! Diagnostics: every error the user sees (syntax, resolve, runtime) is a
//! miette report against the script's text, with the error's span, a one
//! line message and help where a fix is known. Without colour (see
//! `runtime::color`: a pipe, `NO_COLOR`, `--color never`), reports are plain text and never wrap
//! (a title naming a pid would otherwise wrap differently from run to run),
//! so golden `.err` files stay stable.

use std::sync::Arc;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

use crate::resolve::ResolveError;
use crate::runtime::error::ErrorValue;
use crate::syntax::{Span, SyntaxError};

/// A program's text: a script alone, or a script and the modules it
/// imports, or a prompt session's inputs, one after another.
#[derive(Clone, Debug)]
pub struct Source {
    /// The script's name as given on the command line.
    pub name: Arc<str>,
    pub text: Arc<str>,
    /// Where each file (or prompt input) starts in `text`, and its name: a
    /// report is shown against the part it is about, its lines counted
    /// from that part's first. Empty for a script that imports nothing.
    pub parts: Arc<[Part]>,
    /// The file the script was read from (`None` for `-c`, standard input
    /// and the prompt): its imports are found from its folder.
    pub file: Option<Arc<std::path::Path>>,
}

/// One file of a program, or one input at the prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub start: u32,
    pub name: Arc<str>,
}

impl Source {
    pub fn new(name: &str, text: &str) -> Source {
        Source { name: name.into(), text: text.into(), parts: Arc::new([]), file: None }
    }

    /// A script read from `path`.
    pub fn read_from(path: &str, text: &str) -> Source {
        Source { file: Some(std::path::Path::new(path).into()), ..Source::new(path, text) }
    }

    /// A prompt session's inputs (and the modules they imported).
    pub fn session(text: &str, parts: Vec<Part>) -> Source {
        Source::new("<repl>", "").parted(text, parts)
    }

    /// A program made of several parts (see [`Source::parts`]).
    pub fn parted(&self, text: &str, parts: Vec<Part>) -> Source {
        Source { text: text.into(), parts: parts.into(), ..self.clone() }
    }

    /// The script's own text, without the modules it imports.
    pub fn script_text(&self) -> &str {
        let end = self.parts.get(1).map_or(self.text.len(), |p| p.start as usize);
        self.text.get(..end).unwrap_or(&self.text)
    }

    /// The part holding byte `offset`: its start, end and name.
    fn part_of(&self, offset: u32) -> (u32, u32, &str) {
        let len = self.text.len() as u32;
        match self.parts.partition_point(|p| p.start <= offset).checked_sub(1) {
            Some(k) => {
                let end = self.parts.get(k + 1).map_or(len, |p| p.start);
                (self.parts[k].start, end, &self.parts[k].name)
            }
            None => (0, len, &self.name),
        }
    }

    /// The line (from 1) of byte `offset`, counted in its own file.
    pub fn line(&self, offset: u32) -> usize {
        let (start, _, _) = self.part_of(offset);
        let text = self.text.as_bytes();
        let end = (offset as usize).min(text.len());
        text[(start as usize).min(end)..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    /// The name of the file (or `<input N>`) byte `offset` is in.
    pub fn file(&self, offset: u32) -> &str {
        self.part_of(offset).2
    }

    /// `line 4` in a script alone; `line 4 of lib.conc` in a program of
    /// several files (or prompt inputs).
    pub fn place(&self, offset: u32) -> String {
        let line = self.line(offset);
        match self.parts.is_empty() {
            true => format!("line {line}"),
            false => format!("line {line} of {}", self.file(offset)),
        }
    }
}

/// The longest source line a report shows under its message (miette cannot
/// lay out a line of more than 65,535 columns; one of thousands is
/// unreadable anyway): a label on a longer one is given as a line and
/// column.
const LONGEST_SHOWN_LINE: usize = 4096;

/// One renderable report. It has no diagnostic code: the first line names
/// the error's kind (`TypeError: ...`), which is what scripts catch.
#[derive(Debug)]
pub struct Report {
    message: String,
    labels: Vec<(Span, String)>,
    help: Option<String>,
    source: NamedSource<Arc<str>>,
    /// The whole program, when it has several parts (see [`Source::parts`]).
    parted: Option<Source>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl Diagnostic for Report {
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let clamp = |span: Span| {
            let len = self.source.inner().len() as u32;
            Span { start: span.start.min(len), end: span.end.min(len) }
        };
        Some(Box::new(self.labels.iter().enumerate().map(move |(i, (span, text))| {
            let text = (!text.is_empty()).then(|| text.clone());
            let span = clamp(*span);
            match i {
                0 => LabeledSpan::new_primary_with_span(text, span),
                _ => LabeledSpan::new_with_span(text, span),
            }
        })))
    }
}

impl Report {
    fn new(source: &Source, message: String) -> Report {
        let named = NamedSource::new(&*source.name, source.text.clone());
        let parted = (!source.parts.is_empty()).then(|| source.clone());
        Report { message, labels: Vec::new(), help: None, source: named, parted }
    }

    pub fn syntax(source: &Source, error: &SyntaxError) -> Report {
        let mut report = Report::new(source, format!("SyntaxError: {}", error.message));
        report.labels.push((error.span, error.label.clone()));
        report.labels.extend(error.others.iter().cloned());
        report.help = error.help.clone();
        report
    }

    pub fn resolve(source: &Source, error: &ResolveError) -> Report {
        let mut report = Report::new(source, format!("{}: {}", error.kind, error.message));
        report.labels.push((error.span, error.label.clone()));
        report.labels.extend(error.others.iter().cloned());
        report.help = error.help.clone();
        report
    }

    /// An uncaught runtime error, with the calls it unwound through.
    pub fn runtime(source: &Source, error: &ErrorValue) -> Report {
        let title = match &error.task {
            Some(task) => format!("{} in {task}: {}", error.kind, error.message),
            None => format!("{}: {}", error.kind, error.message),
        };
        let mut report = Report::new(source, title);
        if let Some(span) = error.span {
            report.labels.push((span, "here".into()));
        }
        report.labels.extend(call_labels(error));
        // A task's failure shows the line it failed at, inside the task.
        if let Some(cause) = &error.cause
            && let Some(span) = cause.span.filter(|s| !s.is_empty() && Some(*s) != error.span)
        {
            let whose = cause.task.as_deref().map(|task| format!(" in {task}")).unwrap_or_default();
            report.labels.push((span, format!("{}{whose}: {}", cause.kind, cause.message)));
            report.labels.extend(call_labels(cause));
        }
        report.help = error.help.clone();
        if error.trace.len() > 2 {
            let chain = call_chain(error);
            report.help = Some(match report.help.take() {
                Some(help) => format!("{help}\ncalls: {chain}"),
                None => format!("calls: {chain}"),
            });
        }
        report
    }

    /// Every task of the run waits on another: a label per task.
    pub fn deadlock(source: &Source, labels: Vec<(Span, String)>, help: String) -> Report {
        let message = "Deadlock: every task is waiting, and none can go on".to_string();
        Report::labelled(source, message, labels, help)
    }

    /// A report of several places (a deadlock's waits, a race's accesses).
    pub fn labelled(source: &Source, message: String, labels: Vec<(Span, String)>, help: String) -> Report {
        let mut report = Report::new(source, message);
        report.labels = labels;
        report.help = Some(help);
        report
    }

    /// For a program of several parts: the report against the part its
    /// first label is in (a module's file, an `<input N>`); a label in
    /// another part becomes a line of help naming its file and line.
    fn focused(&self) -> Option<Report> {
        let (primary, _) = self.labels.first()?;
        let whole = self.parted.as_ref()?;
        let (start, end, name) = whole.part_of(primary.start);
        let within = |span: &Span| span.start >= start && span.end <= end;
        let labels = self
            .labels
            .iter()
            .filter(|(span, _)| within(span))
            .map(|(span, label)| (Span { start: span.start - start, end: span.end - start }, label.clone()))
            .collect();
        let elsewhere: Vec<String> = self
            .labels
            .iter()
            .filter(|(span, label)| !within(span) && !label.is_empty())
            .map(|(span, label)| format!("{label}: {}, line {}", whole.file(span.start), whole.line(span.start)))
            .collect();
        let help = match (self.help.clone(), elsewhere.is_empty()) {
            (help, true) => help,
            (Some(help), false) => Some(format!("{}\n{help}", elsewhere.join("\n"))),
            (None, false) => Some(elsewhere.join("\n")),
        };
        let text: Arc<str> = whole.text.get(start as usize..end as usize)?.into();
        let source = NamedSource::new(name, text);
        Some(Report { message: self.message.clone(), labels, help, source, parted: None })
    }

    /// The report with each label as a line of help (`line 4, column 9:
    /// ...`) instead of under its source line, when one of those lines is
    /// too long to show; `None` when all can be shown.
    fn without_long_lines(&self) -> Option<Report> {
        // Bytes, not `str` slices: a span's ends need not be on a character.
        let text = self.source.inner().as_bytes();
        let at = |offset: u32| (offset as usize).min(text.len());
        let line_start = |offset: usize| text[..offset].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line_end =
            |offset: usize| text[offset..].iter().position(|&b| b == b'\n').map_or(text.len(), |i| offset + i);
        let too_long = |span: &Span| {
            let (start, end) = (line_start(at(span.start)), line_end(at(span.end)));
            text[start..end].split(|&b| b == b'\n').any(|line| line.len() > LONGEST_SHOWN_LINE)
        };
        if !self.labels.iter().any(|(span, _)| too_long(span)) {
            return None;
        }
        let places = self.labels.iter().map(|(span, label)| {
            let offset = at(span.start);
            let start = line_start(offset);
            let line = text[..start].iter().filter(|&&b| b == b'\n').count() + 1;
            // Characters, not bytes: each byte but a UTF-8 continuation.
            let column = text[start..offset].iter().filter(|&&b| b & 0xC0 != 0x80).count() + 1;
            let what = if label.is_empty() { "here" } else { label };
            format!("line {line}, column {column}: {what}")
        });
        let mut help: Vec<String> = places.collect();
        help.push("(the line is too long to show)".to_string());
        help.extend(self.help.clone());
        Some(Report {
            message: self.message.clone(),
            labels: Vec::new(),
            help: Some(help.join("\n")),
            source: NamedSource::new(self.source.name(), self.source.inner().clone()),
            parted: None,
        })
    }

    /// The report as text, in colour as `runtime::color` says.
    pub fn render(&self) -> String {
        if let Some(focused) = self.focused() {
            return focused.render();
        }
        if let Some(listed) = self.without_long_lines() {
            return listed.render();
        }
        let fancy = crate::runtime::color::on_stderr();
        let handler = match fancy {
            true => GraphicalReportHandler::new_themed(GraphicalTheme::unicode()),
            false => GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(400),
        };
        let mut out = String::new();
        if handler.render_report(&mut out, self).is_err() {
            out = format!("{}\n", self.message);
        }
        out
    }
}

/// A label at each call the error passed through, innermost first; a long
/// recursion shows its first three calls and the outermost one.
fn call_labels(error: &ErrorValue) -> Vec<(Span, String)> {
    let trace: Vec<_> = error.trace.iter().filter(|e| &*e.function != "<main>").collect();
    let mut labels: Vec<(Span, String)> = Vec::new();
    for (i, entry) in trace.iter().enumerate() {
        if i >= 3 && i + 1 < trace.len() {
            continue;
        }
        let taken = error.span == Some(entry.call) || labels.iter().any(|(s, _)| *s == entry.call);
        if entry.call.is_empty() || taken {
            continue;
        }
        let text = match (i + 1 == trace.len(), &error.task) {
            _ if entry.function.starts_with("<module ") => "the module runs from this import".to_string(),
            (true, Some(_)) => format!("`{}` started as a task here", entry.function),
            _ => format!("in `{}`, called here", entry.function),
        };
        labels.push((entry.call, text));
    }
    labels
}

/// `f ← g ← <main>`, outermost last, with repeats folded: `fib (×9998)`.
fn call_chain(error: &ErrorValue) -> String {
    let mut parts: Vec<(String, usize)> = Vec::new();
    for entry in error.trace.iter().filter(|e| &*e.function != "<main>") {
        match parts.last_mut() {
            Some((name, count)) if **name == *entry.function => *count += 1,
            _ => parts.push((entry.function.to_string(), 1)),
        }
    }
    let names: Vec<String> = parts
        .into_iter()
        .map(|(name, count)| match count {
            1 => format!("`{name}`"),
            n => format!("`{name}` (×{n})"),
        })
        .collect();
    format!("{} ← top level", names.join(" ← "))
}
