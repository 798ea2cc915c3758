//! One line of the event log (REPORT.md §1): a flat object whose `kind`
//! says which keys it must have. Kept flat rather than as an enum so that
//! unknown kinds (custom events) and unknown keys pass through.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A line of the event log. `at` is epoch milliseconds, written as RFC
/// 3339 (UTC, `Z`, milliseconds when they are not zero) and read from
/// RFC 3339 with any offset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub kind: String,
    #[serde(default, with = "rfc3339", skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    // `campaign` lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// Experiment name → its variants in the order written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiments: Option<indexmap::IndexMap<String, Vec<String>>>,
    /// Experiment name → its decision, for `until decided` experiments
    /// that have been decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided: Option<indexmap::IndexMap<String, LineDecision>>,
    // `enrolled` lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    // `sent` lines and events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// `sent`: the state that sent; `exited`: the final state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// `at` as RFC 3339 text on the wire, epoch milliseconds in memory.
mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match at.and_then(DateTime::<Utc>::from_timestamp_millis) {
            Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|t| t.timestamp_millis())
                .map_err(|e| serde::de::Error::custom(format!("`at` {t:?} is not RFC 3339: {e}")))
        })
        .transpose()
    }
}

/// A decision on a `campaign` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineDecision {
    pub winner: String,
    #[serde(with = "rfc3339_required")]
    pub at: i64,
    #[serde(default)]
    pub because: String,
}

mod rfc3339_required {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &i64, s: S) -> Result<S::Ok, S::Error> {
        super::rfc3339::serialize(&Some(*at), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        super::rfc3339::deserialize(d)?
            .ok_or_else(|| serde::de::Error::custom("a decision needs `at`"))
    }
}

/// Why a line of an event log was refused (REPORT.md §1). Reading stops
/// at the first: a report over a log with a bad line is not made.
#[derive(Debug)]
pub enum LogError {
    /// The log could not be read.
    Read { line: usize, error: std::io::Error },
    /// The line is not a JSON object.
    NotJson { line: usize, error: String },
    /// A key has the wrong shape (a number where text belongs, an `at`
    /// that is not RFC 3339, ...).
    Invalid { line: usize, error: String },
    /// The line lacks a key its kind requires.
    Missing {
        line: usize,
        kind: String,
        key: &'static str,
    },
}

impl LogError {
    /// The 1-based number of the line at fault.
    pub fn line(&self) -> usize {
        match self {
            LogError::Read { line, .. }
            | LogError::NotJson { line, .. }
            | LogError::Invalid { line, .. }
            | LogError::Missing { line, .. } => *line,
        }
    }
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::Read { line, error } => write!(f, "line {line}: cannot be read: {error}"),
            LogError::NotJson { line, error } => write!(f, "line {line}: is not JSON: {error}"),
            LogError::Invalid { line, error } => write!(f, "line {line}: {error}"),
            LogError::Missing { line, kind, key } => write!(
                f,
                "line {line}: a `{kind}` line needs `{key}`, and this one has none"
            ),
        }
    }
}

impl std::error::Error for LogError {}

impl Line {
    /// The keys REPORT.md §1 requires of a line of this kind.
    pub fn required(kind: &str) -> &'static [&'static str] {
        match kind {
            "campaign" => &["campaign", "goal", "experiments"],
            "enrolled" => &["at", "campaign", "candidate"],
            "sent" => &["at", "campaign", "candidate", "channel"],
            "exited" => &["at", "campaign", "candidate", "state"],
            _ => &["at", "candidate"],
        }
    }

    /// The first required key this line lacks.
    fn missing(&self) -> Option<&'static str> {
        Line::required(&self.kind)
            .iter()
            .copied()
            .find(|key| match *key {
                "at" => self.at.is_none(),
                "campaign" => self.campaign.is_none(),
                "candidate" => self.candidate.is_none(),
                "goal" => self.goal.is_none(),
                "experiments" => self.experiments.is_none(),
                "channel" => self.channel.is_none(),
                "state" => self.state.is_none(),
                _ => false,
            })
    }

    /// Parses one line of the log; `number` is its 1-based line number.
    pub fn parse(text: &str, number: usize) -> Result<Line, LogError> {
        let line: Line = serde_json::from_str(text).map_err(|e| {
            let error = e.to_string();
            if e.is_syntax() || e.is_eof() {
                LogError::NotJson {
                    line: number,
                    error,
                }
            } else {
                LogError::Invalid {
                    line: number,
                    error,
                }
            }
        })?;
        match line.missing() {
            Some(key) => Err(LogError::Missing {
                line: number,
                kind: line.kind,
                key,
            }),
            None => Ok(line),
        }
    }
}

/// The lines of a log, parsed one at a time (so a long log need not be
/// held in memory); blank lines are skipped.
pub struct Lines<R> {
    reader: R,
    number: usize,
    buffer: String,
}

impl<R: std::io::BufRead> Lines<R> {
    pub fn new(reader: R) -> Lines<R> {
        Lines {
            reader,
            number: 0,
            buffer: String::new(),
        }
    }
}

impl<R: std::io::BufRead> Iterator for Lines<R> {
    type Item = Result<Line, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buffer.clear();
            self.number += 1;
            match self.reader.read_line(&mut self.buffer) {
                Ok(0) => return None,
                Ok(_) if self.buffer.trim().is_empty() => continue,
                Ok(_) => return Some(Line::parse(&self.buffer, self.number)),
                Err(error) => {
                    return Some(Err(LogError::Read {
                        line: self.number,
                        error,
                    }))
                }
            }
        }
    }
}

/// Every line of a log, or the first error.
pub fn read_lines(reader: impl std::io::BufRead) -> Result<Vec<Line>, LogError> {
    Lines::new(reader).collect()
}
