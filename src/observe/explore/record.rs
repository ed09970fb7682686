//! Schedule files: a failing schedule as `--explore` writes it and
//! `--replay` reads it (JSON: the format's version, concsh's, the script's
//! path, a hash of its text and the text itself (for `-c` code, or a
//! script since moved), its arguments, the strategy, the seed, the tasks'
//! names and every choice made, as the chosen task's number and the
//! numbers of the tasks that could run).

use serde_json::{Value, json};

/// The version of the file's layout.
pub const FORMAT: u64 = 1;

#[derive(Debug, PartialEq)]
pub struct Schedule {
    pub script: String,
    pub script_hash: String,
    /// The script's text when the schedule was recorded.
    pub text: String,
    pub args: Vec<String>,
    pub strategy: String,
    pub seed: u64,
    /// How the run failed, in a few words.
    pub failure: String,
    /// Task names by number (the first is task 1).
    pub tasks: Vec<String>,
    pub choices: Vec<(u32, Vec<u32>)>,
}

/// The hash a schedule keeps of its script's text (FNV-1a, 64 bits): a
/// replay of an edited script says so.
pub fn hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl Schedule {
    /// The file's text: one choice per line, the rest as usual.
    pub fn to_json(&self) -> String {
        let value = json!({
            "format": FORMAT,
            "concsh": env!("CARGO_PKG_VERSION"),
            "script": self.script,
            "script_hash": self.script_hash,
            "text": self.text,
            "args": self.args,
            "strategy": self.strategy,
            "seed": format!("{:#x}", self.seed),
            "failure": self.failure,
            "tasks": self.tasks,
            "choices": [],
        });
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        let choices: Vec<String> =
            self.choices.iter().map(|(chosen, runnable)| json!([chosen, runnable]).to_string()).collect();
        let list = match choices.is_empty() {
            true => "[]".to_string(),
            false => format!("[\n    {}\n  ]", choices.join(",\n    ")),
        };
        format!("{}\n", text.replacen("\"choices\": []", &format!("\"choices\": {list}"), 1))
    }

    pub fn parse(text: &str) -> Result<Schedule, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not a schedule file: {e}"))?;
        let format = value["format"].as_u64().ok_or("not a schedule file: it has no `format`")?;
        if format != FORMAT {
            return Err(format!("a schedule of format {format}; this concsh reads format {FORMAT}"));
        }
        let text_of = |key: &str| value[key].as_str().map(str::to_string).ok_or(format!("the schedule has no `{key}`"));
        let strings = |key: &str| -> Result<Vec<String>, String> {
            let list = value[key].as_array().ok_or(format!("the schedule has no `{key}` list"))?;
            Ok(list.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect())
        };
        let seed = text_of("seed")?;
        let seed = parse_seed(&seed).ok_or(format!("the schedule's seed `{seed}` is not a number"))?;
        let mut choices = Vec::new();
        for choice in value["choices"].as_array().ok_or("the schedule has no `choices`")? {
            let bad = || "a choice in the schedule is not [chosen, [tasks...]]".to_string();
            let chosen = choice[0].as_u64().ok_or_else(bad)? as u32;
            let runnable = choice[1].as_array().ok_or_else(bad)?;
            let runnable = runnable.iter().map(|t| t.as_u64().map(|t| t as u32).ok_or_else(bad));
            choices.push((chosen, runnable.collect::<Result<Vec<_>, _>>()?));
        }
        Ok(Schedule {
            script: text_of("script")?,
            script_hash: text_of("script_hash")?,
            text: text_of("text")?,
            args: strings("args")?,
            strategy: text_of("strategy")?,
            seed,
            failure: text_of("failure").unwrap_or_default(),
            tasks: strings("tasks").unwrap_or_default(),
            choices,
        })
    }
}

/// A seed as written: decimal, or hexadecimal after `0x`.
pub fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim().replace('_', "");
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_reads_back_as_written() {
        let schedule = Schedule {
            script: "a.conc".into(),
            script_hash: hash("print(1)"),
            text: "print(1)".into(),
            args: vec!["x".into()],
            strategy: "pct:2:40".into(),
            seed: 0x5eed,
            failure: "exit status 1".into(),
            tasks: vec!["MainProcess".into(), "t1".into()],
            choices: vec![(2, vec![1, 2]), (1, vec![1])],
        };
        assert_eq!(Schedule::parse(&schedule.to_json()), Ok(schedule));
    }

    #[test]
    fn seeds_read_in_decimal_and_hex() {
        assert_eq!(parse_seed("0x5eed"), Some(0x5eed));
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed("0xzz"), None);
    }
}
