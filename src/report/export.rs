//! The store's history as the event log of REPORT.md §1 (`nudge export`).
//!
//! Each candidate's history is turned into lines ([`lines_of`]); the lines
//! of every candidate are then put in time order (ties: the order they
//! happened, then the candidates' order in the store) by an external merge
//! sort: runs of [`RUN_LINES`] lines are sorted in memory and spilled to
//! temporary files, which are merged at the end, so a store of a million
//! candidates is exported in bounded memory.

use std::collections::{BTreeMap, BinaryHeap};
use std::io::{BufRead, BufReader, BufWriter, Write};

use super::fold::HeaderDecision;
use super::line::{Line, LineDecision};
use super::trace::Fact;
use crate::runtime::campaigns::{Campaign, Campaigns};
use crate::store::{Dossier, LogEntry, LogKind, Store, StoreError};

/// Lines sorted in memory before a run is spilled to disk.
pub const RUN_LINES: usize = 200_000;

/// Which enrollments to export: one campaign, those enrolled in
/// [since, until) (epoch ms). Every line an exported enrollment owns is
/// written, whenever it happened, so a report over the file gives the same
/// cohort as a report over the store with the same dates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub campaign: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl Filter {
    pub fn keeps_campaign(&self, campaign: &str) -> bool {
        self.campaign.as_deref().is_none_or(|c| c == campaign)
    }

    pub fn keeps(&self, campaign: &str, enrolled_at: i64) -> bool {
        self.keeps_campaign(campaign)
            && self.since.is_none_or(|s| enrolled_at >= s)
            && self.until.is_none_or(|u| enrolled_at < u)
    }
}

/// Why an export stopped.
#[derive(Debug)]
pub enum ExportError {
    Store(StoreError),
    Io(std::io::Error),
}

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportError::Store(e) => write!(f, "{e}"),
            ExportError::Io(e) => write!(f, "cannot write the export: {e}"),
        }
    }
}

impl std::error::Error for ExportError {}

impl From<StoreError> for ExportError {
    fn from(e: StoreError) -> Self {
        ExportError::Store(e)
    }
}

impl From<std::io::Error> for ExportError {
    fn from(e: std::io::Error) -> Self {
        ExportError::Io(e)
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Exported {
    pub campaigns: usize,
    pub enrollments: usize,
    pub lines: usize,
}

/// The `campaign` line of a loaded campaign.
pub fn header_line(campaign: &Campaign, decisions: &[HeaderDecision]) -> Line {
    let machine = &campaign.machine;
    let decided: indexmap::IndexMap<String, LineDecision> = decisions
        .iter()
        .map(|d| {
            (
                d.experiment.clone(),
                LineDecision {
                    winner: d.winner.clone(),
                    at: d.at,
                    because: d.because.clone(),
                },
            )
        })
        .collect();
    Line {
        kind: "campaign".into(),
        campaign: Some(machine.name.clone()),
        title: machine.title.clone(),
        goal: Some(machine.goal.clone().unwrap_or_else(|| "completed".into())),
        experiments: Some(
            machine
                .experiments
                .iter()
                .map(|e| {
                    let names = e.variants.iter().map(|(v, _)| v.clone()).collect();
                    (e.name.clone(), names)
                })
                .collect(),
        ),
        decided: (!decided.is_empty()).then_some(decided),
        ..Line::default()
    }
}

/// The `campaign` line of a campaign that is in the history but no longer
/// loaded: its goal and experiments are not known any more, so the goal is
/// `completed` and the experiments are those its enrollments name.
pub fn orphan_header_line(name: &str, experiments: &BTreeMap<String, Vec<String>>) -> Line {
    Line {
        kind: "campaign".into(),
        campaign: Some(name.to_string()),
        goal: Some("completed".into()),
        experiments: Some(
            experiments
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        ..Line::default()
    }
}

/// The lines of one candidate's history, in the order it was written,
/// with the zone each enrollment's times are read in (the candidate's
/// own valid `timezone` where the campaign allows it, else the campaign's
/// zone; the bare field when the campaign is gone).
pub fn lines_of(dossier: &Dossier, campaigns: &Campaigns) -> Result<Vec<Line>, StoreError> {
    let candidate = &dossier.candidate;
    let history = dossier
        .history
        .items()
        .map_err(|e| StoreError::damaged_dossier(&candidate.id, e))?;
    let engine_candidate = crate::engine::Candidate {
        id: candidate.id.clone(),
        fields: candidate.fields.clone(),
    };
    let mut out = Vec::with_capacity(history.len());
    for entry in &history {
        if let Some(line) = line_of(entry, &candidate.id, |campaign| {
            let zone = match campaigns.get(campaign) {
                Some(c) => Some(engine_candidate.zone(&c.machine.zone).name().to_string()),
                None => candidate.fields.get("timezone").cloned(),
            };
            (
                zone,
                candidate.fields.get("source").cloned(),
                candidate.fields.get("language").cloned(),
            )
        }) {
            out.push(line);
        }
    }
    Ok(out)
}

/// The line of one history entry, if it is one a report reads. `about`
/// gives an enrollment's zone, source and language by campaign.
pub fn line_of(
    entry: &LogEntry,
    candidate: &str,
    about: impl Fn(&str) -> (Option<String>, Option<String>, Option<String>),
) -> Option<Line> {
    let fact = fact_of(entry)?;
    let owned = |s: Option<&str>| s.map(str::to_string);
    let mut line = Line {
        kind: fact.kind.to_string(),
        at: fact.at,
        campaign: owned(fact.campaign),
        candidate: Some(candidate.to_string()),
        variants: fact.variants.cloned(),
        channel: owned(fact.channel),
        template: owned(fact.template),
        state: owned(fact.state),
        converted: fact.converted,
        device: owned(fact.device),
        ..Line::default()
    };
    if matches!(entry.kind, LogKind::Enrolled { .. }) {
        (line.timezone, line.source, line.language) = about(&entry.campaign);
    }
    Some(line)
}

/// What one history entry tells a report, borrowed from it, if it is one
/// a report reads; an `enrolled` entry's zone, source and language are
/// left for the caller, who knows the candidate.
pub fn fact_of(entry: &LogEntry) -> Option<Fact<'_>> {
    let base = Fact {
        at: Some(entry.at.timestamp_millis()),
        campaign: (!entry.campaign.is_empty()).then_some(entry.campaign.as_str()),
        ..Fact::default()
    };
    let fact = match &entry.kind {
        LogKind::Enrolled { variants, .. } => Fact {
            kind: "enrolled",
            variants: Some(variants),
            ..base
        },
        LogKind::Sent {
            state,
            template,
            channel,
            ..
        } => Fact {
            kind: "sent",
            channel: Some(channel),
            template: Some(template),
            state: Some(state),
            ..base
        },
        LogKind::Delivered { channel, .. } => Fact {
            kind: "delivered",
            channel: Some(channel),
            ..base
        },
        LogKind::DeliveryFailed { channel, .. } | LogKind::LegacyDeliveryFailed { channel, .. } => {
            Fact {
                kind: "failed",
                channel: Some(channel),
                ..base
            }
        }
        LogKind::Exited { outcome, converted } => Fact {
            kind: "exited",
            state: Some(outcome),
            converted: Some(*converted),
            ..base
        },
        LogKind::Received { event, fields } => Fact {
            kind: event,
            channel: fields.get("channel").map(String::as_str),
            device: fields.get("device").map(String::as_str),
            ..base
        },
        _ => return None,
    };
    Some(fact)
}

/// Keeps the lines of the enrollments `filter` selects, following the
/// ownership rules of REPORT.md §1 within one candidate's lines: a line is
/// kept when an exported enrollment owns it.
pub fn select(lines: Vec<Line>, filter: &Filter) -> (Vec<Line>, usize) {
    if *filter == Filter::default() {
        let enrolled = lines.iter().filter(|l| l.kind == "enrolled").count();
        return (lines, enrolled);
    }
    // Campaign → whether its open enrollment is exported.
    let mut open: Vec<(String, bool)> = Vec::new();
    let mut kept = Vec::new();
    let mut enrolled = 0;
    for line in lines {
        if line.kind == "enrolled" {
            let campaign = line.campaign.clone().unwrap_or_default();
            let keep = filter.keeps(&campaign, line.at.unwrap_or(i64::MIN));
            match open.iter_mut().find(|(c, _)| *c == campaign) {
                Some(slot) => slot.1 = keep,
                None => open.push((campaign, keep)),
            }
            if keep {
                enrolled += 1;
                kept.push(line);
            }
            continue;
        }
        let owned = open
            .iter()
            .any(|(c, keep)| *keep && line.campaign.as_ref().is_none_or(|lc| lc == c));
        if owned {
            kept.push(line);
        }
    }
    (kept, enrolled)
}

/// Writes the store's history as the event log: the `campaign` lines
/// first (campaigns in name order), then every selected line in time
/// order. `decisions` gives each campaign's decided experiments.
pub fn export<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    decisions: &BTreeMap<String, Vec<HeaderDecision>>,
    filter: &Filter,
    out: impl Write,
) -> Result<Exported, ExportError> {
    let mut out = BufWriter::new(out);
    let mut sorter = Sorter::new();
    let mut exported = Exported::default();
    // Campaigns the history names that are not loaded, with the variants
    // their enrollments name.
    let mut orphans: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for dossier in store.dossiers() {
        let dossier = dossier?;
        let (lines, enrolled) = select(lines_of(&dossier, campaigns)?, filter);
        exported.enrollments += enrolled;
        for line in lines {
            if line.kind == "enrolled" {
                let name = line.campaign.clone().unwrap_or_default();
                if campaigns.get(&name).is_none() {
                    let experiments = orphans.entry(name).or_default();
                    for (e, v) in line.variants.iter().flatten() {
                        let seen = experiments.entry(e.clone()).or_default();
                        if !seen.contains(v) {
                            seen.push(v.clone());
                        }
                    }
                }
            }
            sorter.push(line)?;
        }
    }
    let mut headers: BTreeMap<String, Line> = BTreeMap::new();
    for (name, campaign) in campaigns.iter() {
        if filter.keeps_campaign(name) {
            let decided = decisions.get(name).map(Vec::as_slice).unwrap_or(&[]);
            headers.insert(name.clone(), header_line(campaign, decided));
        }
    }
    for (name, experiments) in &orphans {
        headers.insert(name.clone(), orphan_header_line(name, experiments));
    }
    for line in headers.values() {
        write_line(&mut out, line)?;
    }
    exported.campaigns = headers.len();
    exported.lines = headers.len() + sorter.finish(&mut out)?;
    out.flush()?;
    Ok(exported)
}

fn write_line(out: &mut impl Write, line: &Line) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")
}

/// An external merge sort of lines by (at, arrival).
struct Sorter {
    /// (at, arrival, the line as JSON).
    run: Vec<(i64, u64, String)>,
    spilled: Vec<tempfile::NamedTempFile>,
    arrived: u64,
}

impl Sorter {
    fn new() -> Sorter {
        Sorter {
            run: Vec::new(),
            spilled: Vec::new(),
            arrived: 0,
        }
    }

    fn push(&mut self, line: Line) -> std::io::Result<()> {
        let json = serde_json::to_string(&line)?;
        self.run
            .push((line.at.unwrap_or(i64::MIN), self.arrived, json));
        self.arrived += 1;
        if self.run.len() >= RUN_LINES {
            self.spill()?;
        }
        Ok(())
    }

    /// Writes the sorted run to a temporary file: one line each, the sort
    /// key first (`at arrival json`).
    fn spill(&mut self) -> std::io::Result<()> {
        self.run.sort_by_key(|(at, n, _)| (*at, *n));
        let mut file = tempfile::NamedTempFile::new()?;
        {
            let mut w = BufWriter::new(file.as_file_mut());
            for (at, n, json) in self.run.drain(..) {
                writeln!(w, "{at} {n} {json}")?;
            }
            w.flush()?;
        }
        self.spilled.push(file);
        Ok(())
    }

    /// Writes every line in order; returns how many.
    fn finish(mut self, out: &mut impl Write) -> std::io::Result<usize> {
        if self.spilled.is_empty() {
            self.run.sort_by_key(|(at, n, _)| (*at, *n));
            for (_, _, json) in &self.run {
                out.write_all(json.as_bytes())?;
                out.write_all(b"\n")?;
            }
            return Ok(self.run.len());
        }
        if !self.run.is_empty() {
            self.spill()?;
        }
        let mut readers = Vec::new();
        for file in &self.spilled {
            readers.push(BufReader::new(file.reopen()?).lines());
        }
        let mut heap = BinaryHeap::new();
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some(next) = r.next() {
                heap.push(std::cmp::Reverse(Spilled::parse(next?, i)?));
            }
        }
        let mut written = 0;
        while let Some(std::cmp::Reverse(top)) = heap.pop() {
            out.write_all(top.json().as_bytes())?;
            out.write_all(b"\n")?;
            written += 1;
            if let Some(next) = readers[top.run].next() {
                heap.push(std::cmp::Reverse(Spilled::parse(next?, top.run)?));
            }
        }
        Ok(written)
    }
}

/// A line read back from a spilled run.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Spilled {
    at: i64,
    arrived: u64,
    run: usize,
    text: String,
}

impl Spilled {
    fn parse(text: String, run: usize) -> std::io::Result<Spilled> {
        let bad = || std::io::Error::other("a spilled export run is damaged");
        let mut parts = text.splitn(3, ' ');
        let at = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let arrived = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        parts.next().ok_or_else(bad)?;
        Ok(Spilled {
            at,
            arrived,
            run,
            text,
        })
    }

    fn json(&self) -> &str {
        self.text.splitn(3, ' ').nth(2).unwrap_or_default()
    }
}
