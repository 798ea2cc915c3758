//! `nudge simulate FILE --candidates LIST.csv`: the same engine over a
//! whole candidate list, with nobody responding, summarised for a
//! recruiter: who is enrolled, when first messages go out, how many
//! messages each gets, the outcome mix, and who would get nothing and why.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::output::local;
use super::{rfc3339, run_decided, Line, Scenario, ScenarioError};
use crate::engine::{Candidate, Channel, Happening, Instant, Machine, Record};
use crate::explain::facts;

/// A candidate list that cannot be read.
#[derive(Debug)]
pub enum ListError {
    Open {
        path: String,
        error: std::io::Error,
    },
    Csv {
        path: String,
        line: u64,
        error: String,
    },
    BadInstant {
        path: String,
        line: u64,
        column: String,
        value: String,
    },
    Empty {
        path: String,
    },
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListError::Open { path, error } => write!(f, "cannot read `{path}`: {error}"),
            ListError::Csv { path, line, error } => write!(f, "{path}:{line}: {error}"),
            ListError::BadInstant {
                path,
                line,
                column,
                value,
            } => write!(
                f,
                "{path}:{line}: column `{column}` holds `{value}`, which is not an RFC 3339 instant such as `2026-12-01T09:00:00Z`"
            ),
            ListError::Empty { path } => write!(f, "`{path}` has a header but no candidates"),
        }
    }
}

impl std::error::Error for ListError {}

/// One row of the list: the candidate, and when they applied if the list
/// says so (column `applied_at`), else `--start`.
#[derive(Debug, Clone)]
pub struct Row {
    pub candidate: Candidate,
    pub applied_at: Option<Instant>,
}

/// Reads a CSV list: a header row names the fields; one row a candidate.
/// A row without an `id` gets `row-N` (N its line number).
pub fn read_list(path: &Path) -> Result<Vec<Row>, ListError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|error| ListError::Open {
        path: name.clone(),
        error,
    })?;
    read_rows(&name, file)
}

/// Reads a CSV list from any reader (see [`read_list`]).
pub fn read_rows(name: &str, reader: impl std::io::Read) -> Result<Vec<Row>, ListError> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(reader);
    let csv_error = |e: csv::Error| ListError::Csv {
        path: name.to_string(),
        line: e.position().map_or(1, csv::Position::line),
        error: e.to_string(),
    };
    let headers: Vec<String> = csv
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    let mut rows = Vec::new();
    for record in csv.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, csv::Position::line);
        let candidate = Candidate::from_pairs(
            headers.iter().map(String::as_str).zip(record.iter()),
            &format!("row-{line}"),
        );
        let applied_at = match candidate.field("applied_at") {
            Some(v) => Some(
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| ListError::BadInstant {
                        path: name.to_string(),
                        line,
                        column: "applied_at".into(),
                        value: v.to_string(),
                    })?,
            ),
            None => None,
        };
        rows.push(Row {
            candidate,
            applied_at,
        });
    }
    if rows.is_empty() {
        return Err(ListError::Empty {
            path: name.to_string(),
        });
    }
    Ok(rows)
}

/// What happened to one candidate of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub id: String,
    pub name: Option<String>,
    pub zone: Tz,
    pub enrolled: bool,
    pub first_send: Option<(Instant, Channel)>,
    /// Messages sent, by channel.
    pub sent: BTreeMap<Channel, u32>,
    /// How the candidate left, or `None` if still in the campaign.
    pub outcome: Option<String>,
    /// The state at the end of the run.
    pub state: Option<String>,
    /// Why the candidate gets nothing (when they do not).
    pub why_nothing: Option<String>,
    /// Messages that were due but could not go out: (template, why).
    pub dropped: Vec<(String, String)>,
}

impl Outcome {
    pub fn messages(&self) -> u32 {
        self.sent.values().sum()
    }

    /// One JSON line for `--json`.
    pub fn json(&self) -> Value {
        let sent: serde_json::Map<String, Value> = self
            .sent
            .iter()
            .map(|(c, n)| (c.name().to_string(), Value::from(*n)))
            .collect();
        json!({
            "id": self.id,
            "enrolled": self.enrolled,
            "zone": self.zone.name(),
            "first_send": self.first_send.map(|(t, _)| rfc3339(t)),
            "first_send_local": self.first_send.map(|(t, _)| local(t, self.zone)),
            "first_channel": self.first_send.map(|(_, c)| c.name()),
            "messages": self.messages(),
            "sent": sent,
            "outcome": self.outcome,
            "state": self.state,
            "why_nothing": self.why_nothing,
            "dropped": self.dropped.iter().map(|(t, why)| json!({"template": t, "reason": why})).collect::<Vec<_>>(),
        })
    }
}

/// Runs every row through the campaign from its application instant to
/// `horizon` after it, with no events. Rows are spread over `threads`.
pub fn simulate_list(
    machine: &Machine,
    rows: &[Row],
    start: Instant,
    horizon: chrono::Duration,
    threads: usize,
) -> Result<Vec<Outcome>, ScenarioError> {
    simulate_list_decided(machine, rows, start, horizon, threads, &[])
}

/// [`simulate_list`] with `until decided` experiments decided at given
/// instants (`--decided`): a row applying at or after a decision gets its
/// winner.
pub fn simulate_list_decided(
    machine: &Machine,
    rows: &[Row],
    start: Instant,
    horizon: chrono::Duration,
    threads: usize,
    decided: &[super::DecidedAt],
) -> Result<Vec<Outcome>, ScenarioError> {
    let threads = threads.clamp(1, 64);
    let chunk = rows.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = rows
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|r| simulate_row(machine, r, start, horizon, decided))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(rows.len());
        for worker in workers {
            match worker.join() {
                Ok(part) => all.extend(part?),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(all)
    })
}

fn simulate_row(
    machine: &Machine,
    row: &Row,
    start: Instant,
    horizon: chrono::Duration,
    decided: &[super::DecidedAt],
) -> Result<Outcome, ScenarioError> {
    let start = row.applied_at.unwrap_or(start);
    let scenario = Scenario {
        start,
        candidate: row.candidate.clone(),
        events: Vec::new(),
        variants: Vec::new(),
        until: start + horizon,
    };
    let timeline = run_decided(machine, &scenario, decided)?;
    let mut out = Outcome {
        id: row.candidate.id.clone(),
        name: row.candidate.field("name").map(str::to_string),
        zone: timeline.zone,
        enrolled: true,
        first_send: None,
        sent: BTreeMap::new(),
        outcome: None,
        state: None,
        why_nothing: None,
        dropped: Vec::new(),
    };
    let mut skipped = None;
    let mut suppressed = false;
    for line in &timeline.lines {
        match line {
            Line::NotEnrolled { .. } => {
                out.enrolled = false;
                out.why_nothing = Some("filtered out by the campaign's `where`".into());
            }
            Line::Pending { state, .. } => out.state = Some(machine.states[*state].name.clone()),
            Line::Record(Record { at, what }) => match what {
                Happening::Sent { channel, .. } => {
                    out.first_send.get_or_insert((*at, *channel));
                    *out.sent.entry(*channel).or_insert(0) += 1;
                }
                Happening::Skipped {
                    channel, template, ..
                } => {
                    let why = facts::skip(machine, *channel).to_string();
                    skipped.get_or_insert_with(|| why.clone());
                    out.dropped.push((template.clone(), why));
                }
                Happening::Late { template, why, .. } => {
                    let why = facts::late(why).to_string();
                    skipped.get_or_insert_with(|| why.clone());
                    out.dropped.push((template.clone(), why));
                }
                Happening::Suppressed {
                    template, limit, ..
                } => {
                    suppressed = true;
                    out.dropped
                        .push((template.clone(), format!("over `limit {limit} total`")));
                }
                Happening::Exited { outcome, .. } => out.outcome = Some(outcome.clone()),
                _ => {}
            },
        }
    }
    if out.enrolled && out.first_send.is_none() {
        out.why_nothing = Some(match (skipped, suppressed) {
            (Some(why), _) => why,
            (None, true) => "every message is over the campaign's total limit".into(),
            (None, false) if out.outcome.is_some() => {
                "the campaign ends before any message is due".into()
            }
            (None, false) => "no message falls due within the simulated period".into(),
        });
    }
    Ok(out)
}

/// The recruiter's summary of a list run.
pub fn summary(machine: &Machine, outcomes: &[Outcome], list_name: &str, days: i64) -> String {
    let total = outcomes.len();
    let enrolled = outcomes.iter().filter(|o| o.enrolled).count();
    let pct = |n: usize| 100.0 * n as f64 / total.max(1) as f64;
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "campaign `{}` over {total} candidates from {list_name}, nobody responding, {days} days",
        machine.name
    ));
    line(String::new());
    line(format!(
        "enrolled       {enrolled:>7}  ({:.1}%)",
        pct(enrolled)
    ));
    let filter = machine
        .enroll
        .as_ref()
        .and_then(|e| e.filter.as_ref())
        .map_or_else(String::new, |f| format!(": {}", f.text()));
    line(format!(
        "not enrolled   {:>7}  ({:.1}%)  rejected by the `where` filter{filter}",
        total - enrolled,
        pct(total - enrolled)
    ));

    // First messages by the candidate's local day and hour.
    let mut first: BTreeMap<(String, u32), (Instant, usize)> = BTreeMap::new();
    for o in outcomes {
        if let Some((at, _)) = o.first_send {
            let local_t = at.with_timezone(&o.zone);
            let key = (local_t.format("%Y-%m-%d %a").to_string(), local_t.hour());
            let entry = first.entry(key).or_insert((at, 0));
            entry.1 += 1;
        }
    }
    if !first.is_empty() {
        line(String::new());
        line("first message, by the candidate's local day and hour".into());
        let widest = first.values().map(|(_, n)| *n).max().unwrap_or(1);
        for ((day, hour), (_, n)) in &first {
            let bar = "#".repeat((n * 40).div_ceil(widest));
            line(format!("  {day} {hour:02}:00-{hour:02}:59 {n:>7}  {bar}"));
        }
    }

    let mut per_count: BTreeMap<u32, usize> = BTreeMap::new();
    let mut per_channel: BTreeMap<Channel, u64> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| o.enrolled) {
        *per_count.entry(o.messages()).or_default() += 1;
        for (c, n) in &o.sent {
            *per_channel.entry(*c).or_default() += u64::from(*n);
        }
    }
    if enrolled > 0 {
        line(String::new());
        line("messages per enrolled candidate".into());
        for (count, n) in &per_count {
            line(format!(
                "  {count:>3} message{} {n:>7}",
                if *count == 1 { " " } else { "s" }
            ));
        }
        let channels: Vec<String> = per_channel
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        line(format!(
            "  by channel: {}",
            if channels.is_empty() {
                "none".into()
            } else {
                channels.join(", ")
            }
        ));

        let mut mix: BTreeMap<String, usize> = BTreeMap::new();
        for o in outcomes.iter().filter(|o| o.enrolled) {
            let key = match (&o.outcome, &o.state) {
                (Some(outcome), _) => format!("exited: {outcome}"),
                (None, Some(state)) => format!("still in {state}"),
                (None, None) => "still enrolled".into(),
            };
            *mix.entry(key).or_default() += 1;
        }
        let mut dropped: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for o in outcomes {
            for (template, why) in &o.dropped {
                *dropped
                    .entry((template.as_str(), why.as_str()))
                    .or_default() += 1;
            }
        }
        if !dropped.is_empty() {
            line(String::new());
            line("messages that cannot go out".into());
            for ((template, why), n) in &dropped {
                line(format!("  {n:>7}  {template}: {why}"));
            }
        }

        line(String::new());
        line("outcome if nobody responds".into());
        for (key, n) in &mix {
            line(format!(
                "  {key:<28} {n:>7}  ({:.1}%)",
                100.0 * *n as f64 / enrolled as f64
            ));
        }
    }

    let nothing: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.why_nothing.is_some())
        .collect();
    line(String::new());
    if nothing.is_empty() {
        line("every candidate gets at least one message".into());
    } else {
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for o in &nothing {
            *reasons
                .entry(o.why_nothing.as_deref().unwrap_or(""))
                .or_default() += 1;
        }
        line(format!("who gets nothing: {} candidates", nothing.len()));
        for (why, n) in &reasons {
            line(format!("  {n:>7}  {why}"));
        }
        const SHOWN: usize = 20;
        for o in nothing.iter().take(SHOWN) {
            line(format!(
                "  {:<12} {:<24} {}",
                o.id,
                o.name.as_deref().unwrap_or("-"),
                o.why_nothing.as_deref().unwrap_or("")
            ));
        }
        if nothing.len() > SHOWN {
            line(format!(
                "  ... and {} more (`--json` lists every candidate)",
                nothing.len() - SHOWN
            ));
        }
    }
    out
}
