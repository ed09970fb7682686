//! Who runs next at a choice: uniformly at random, by PCT (Burckhardt et
//! al., ASPLOS 2010: random priorities, the highest runnable runs, and at
//! D-1 random choices the running task drops below every other), or as a
//! recording says (a replay, which stops at the first choice whose set of
//! runnable tasks is not the recorded one).

use std::sync::atomic::Ordering::SeqCst;

use super::baton::{Chooser, Table};

/// How choices are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    Random,
    /// Depth D, with its change points among the first `choices` choices.
    Pct {
        depth: u32,
        choices: u64,
    },
}

/// PCT's change points when the run's length is not known yet.
const PCT_CHOICES: u64 = 50;

impl Strategy {
    /// `random`, `pct:D` or `pct:D:K` (K: how many choices the change
    /// points fall among).
    pub fn parse(text: &str) -> Result<Strategy, String> {
        let mut parts = text.split(':');
        let bad = || format!("unknown strategy `{text}` (use random, pct:D or pct:D:K)");
        match parts.next() {
            Some("random") if parts.next().is_none() => Ok(Strategy::Random),
            Some("pct") => {
                let depth: u32 =
                    parts.next().and_then(|d| d.parse().ok()).filter(|d| (1..=8).contains(d)).ok_or_else(bad)?;
                let choices = match parts.next() {
                    Some(k) => k.parse().ok().filter(|&k| k >= 1).ok_or_else(bad)?,
                    None => PCT_CHOICES,
                };
                match parts.next() {
                    Some(_) => Err(bad()),
                    None => Ok(Strategy::Pct { depth, choices }),
                }
            }
            _ => Err(bad()),
        }
    }

    /// Schedule `i` of the default portfolio: random, `pct:2`, `pct:3` in
    /// turn, PCT's change points spread over `choices` (the most choices
    /// a schedule of this script made so far).
    pub fn portfolio(i: u64, choices: u64) -> Strategy {
        let choices = choices.max(1);
        match i % 3 {
            0 => Strategy::Random,
            1 => Strategy::Pct { depth: 2, choices },
            _ => Strategy::Pct { depth: 3, choices },
        }
    }

    /// As written on the command line (and in schedule files).
    pub fn label(&self) -> String {
        match self {
            Strategy::Random => "random".into(),
            Strategy::Pct { depth, choices } => format!("pct:{depth}:{choices}"),
        }
    }

    /// Draws what the strategy needs before the run's first choice.
    pub fn prepare(&self, table: &Table) {
        if let Strategy::Pct { depth, choices } = self {
            for point in table.change_points().iter().take(*depth as usize - 1) {
                point.store(table.random() % choices + 1, SeqCst);
            }
        }
    }

    /// A new task's priority (with the table locked).
    pub fn initial_priority(&self, table: &Table) -> u64 {
        match self {
            Strategy::Random => 0,
            // Above every priority a change point gives (1..D).
            Strategy::Pct { depth, .. } => u64::from(*depth) + (table.next_random() >> 24),
        }
    }
}

/// The choices of one run: a strategy, or a recording to follow.
pub struct Plan {
    pub strategy: Strategy,
    /// (chosen, runnable) by task number, for a replay.
    pub replay: Option<Vec<(u32, Vec<u32>)>>,
}

impl Chooser for Plan {
    fn choose(&self, table: &Table, me: Option<u32>, runnable: &[u32], index: u64) -> Result<u32, String> {
        if let Some(recorded) = &self.replay {
            return follow(table, recorded, runnable, index);
        }
        match &self.strategy {
            Strategy::Random => Ok(runnable[(table.next_random() % runnable.len() as u64) as usize]),
            Strategy::Pct { .. } => {
                if let Some(me) = me {
                    let change = table.change_points().iter().position(|p| p.load(SeqCst) == index + 1);
                    if let Some(j) = change {
                        table.set_priority(me, j as u64 + 1);
                    }
                }
                // Ties (none in practice) go to the lower task number.
                let best = runnable.iter().copied().rev().max_by_key(|&slot| table.priority(slot));
                Ok(best.unwrap_or(runnable[0]))
            }
        }
    }
}

/// The recorded choice `index`, if the same tasks are able to run now.
fn follow(table: &Table, recorded: &[(u32, Vec<u32>)], runnable: &[u32], index: u64) -> Result<u32, String> {
    let now: Vec<u32> = runnable.iter().map(|&slot| table.seq(slot)).collect();
    let names = |seqs: &[u32]| seqs.iter().map(|&s| table.name(s)).collect::<Vec<_>>().join(", ");
    let Some((chosen, then)) = recorded.get(index as usize) else {
        return Err(format!(
            "replay diverged at step {}: the recording ends there, and now {} can run",
            index + 1,
            names(&now)
        ));
    };
    if *then != now {
        return Err(format!(
            "replay diverged at step {}: the recording had {} able to run, this run has {}",
            index + 1,
            names(then),
            names(&now)
        ));
    }
    let at = now.iter().position(|s| s == chosen).unwrap_or(0);
    Ok(runnable[at])
}
