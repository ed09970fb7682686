//! `--timeline`: one row per task across the terminal's width, drawn on
//! stderr when the run ends, from the run's trace events: running,
//! waiting and sleeping in distinct characters (and colours, as
//! `runtime::color` says), over a time axis.

use serde_json::Value as Json;

const RUNNING: char = '█';
const WAITING: char = '░';
const SLEEPING: char = '·';

#[derive(Clone, Copy, PartialEq, Eq)]
enum Doing {
    Running,
    Waiting,
    Sleeping,
}

/// One task's row: its life and what it did within it.
struct Row {
    key: (i64, i64),
    name: String,
    born: u64,
    ended: Option<u64>,
    /// Waits and sleeps: start, end (none while still open), which.
    spans: Vec<(u64, Option<u64>, Doing)>,
    /// Open spans, innermost last: `None` for ones drawn as running.
    open: Vec<Option<usize>>,
}

/// The timeline of `events` (sorted by time), `total` microseconds long.
pub fn draw(events: &[Json], total: u64) -> String {
    let mut rows: Vec<Row> = Vec::new();
    for event in events {
        let key = (event["pid"].as_i64().unwrap_or(0), event["tid"].as_i64().unwrap_or(0));
        let ts = event["ts"].as_u64().unwrap_or(0);
        let row = rows.iter_mut().position(|r| r.key == key);
        match (event["ph"].as_str(), event["cat"].as_str(), row) {
            (Some("B"), Some("task"), None) => rows.push(Row {
                key,
                name: event["name"].as_str().unwrap_or("task").to_string(),
                born: ts,
                ended: None,
                spans: Vec::new(),
                open: Vec::new(),
            }),
            (Some("B"), cat, Some(i)) => {
                let doing = match cat {
                    Some("wait") => Some(Doing::Waiting),
                    Some("sleep") => Some(Doing::Sleeping),
                    _ => None,
                };
                let row = &mut rows[i];
                let span = doing.map(|doing| {
                    row.spans.push((ts, None, doing));
                    row.spans.len() - 1
                });
                row.open.push(span);
            }
            (Some("E"), _, Some(i)) => {
                let row = &mut rows[i];
                match row.open.pop() {
                    Some(Some(span)) => row.spans[span].1 = Some(ts),
                    Some(None) => {}
                    None => row.ended = Some(ts),
                }
            }
            _ => {}
        }
    }
    let total = total.max(rows.iter().filter_map(|r| r.ended).max().unwrap_or(0)).max(1);
    let width = terminal_width();
    let label = rows.iter().map(|r| r.name.chars().count()).max().unwrap_or(4).clamp(4, 28) + 1;
    let cells = width.saturating_sub(label + 2).max(10);
    // Tasks born within one cell of each other (a pool's workers) are
    // listed by name, so the order does not change from run to run.
    rows.sort_by_cached_key(|r| (r.born * cells as u64 / total, natural(&r.name)));
    let color = crate::runtime::color::on_stderr();
    let mut out = String::new();
    for row in &rows {
        let name: String = row.name.chars().take(label - 1).collect();
        out.push_str(&format!("{name:<label$}│"));
        for cell in 0..cells {
            let from = total * cell as u64 / cells as u64;
            let to = (total * (cell as u64 + 1) / cells as u64).max(from + 1);
            out.push_str(&paint(row.in_cell(from, to, total), color));
        }
        out.push_str("│\n");
    }
    let end = match total {
        t if t < 1_000_000 => format!("{}ms", t / 1000),
        t => format!("{:.2}s", t as f64 / 1e6),
    };
    // The axis under the cells: `0s` at the left, the run's length at the right.
    let margin = label + 1;
    out.push_str(&format!("{:margin$}0s{end:>rest$}\n", "", rest = cells.saturating_sub(2)));
    out.push_str(&format!(
        "{:margin$}{} running  {} waiting  {} sleeping\n",
        "",
        paint(Some(Doing::Running), color),
        paint(Some(Doing::Waiting), color),
        paint(Some(Doing::Sleeping), color)
    ));
    out
}

impl Row {
    /// What the task did most between `from` and `to`; `None` when it
    /// was not alive then.
    fn in_cell(&self, from: u64, to: u64, total: u64) -> Option<Doing> {
        let ended = self.ended.unwrap_or(total);
        let alive = overlap(self.born, ended, from, to);
        if alive == 0 {
            return None;
        }
        let mut waiting = 0;
        let mut sleeping = 0;
        for &(start, end, doing) in &self.spans {
            let time = overlap(start, end.unwrap_or(ended), from, to);
            match doing {
                Doing::Sleeping => sleeping += time,
                _ => waiting += time,
            }
        }
        let running = alive.saturating_sub(waiting + sleeping);
        Some(match (running, waiting, sleeping) {
            (r, w, s) if r >= w && r >= s => Doing::Running,
            (_, w, s) if w >= s => Doing::Waiting,
            _ => Doing::Sleeping,
        })
    }
}

/// `Worker-10` after `Worker-9`: digits compare as numbers.
fn natural(name: &str) -> (String, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, number) = name.split_at(name.len() - digits);
    (stem.to_string(), number.parse().unwrap_or(0))
}

fn overlap(a: u64, b: u64, from: u64, to: u64) -> u64 {
    b.min(to).saturating_sub(a.max(from))
}

fn paint(doing: Option<Doing>, color: bool) -> String {
    let (c, code) = match doing {
        None => return " ".into(),
        Some(Doing::Running) => (RUNNING, "32"),
        Some(Doing::Waiting) => (WAITING, "31"),
        Some(Doing::Sleeping) => (SLEEPING, "34"),
    };
    match color {
        true => format!("\x1b[{code}m{c}\x1b[0m"),
        false => c.to_string(),
    }
}

/// The terminal's width (stderr's), else `COLUMNS`, else 100.
fn terminal_width() -> usize {
    if let Some((_, columns)) = console::Term::stderr().size_checked() {
        return columns as usize;
    }
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).filter(|&c: &usize| c >= 20).unwrap_or(100)
}
