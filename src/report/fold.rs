//! From event-log lines to one [`Summary`] per enrollment (REPORT.md §1,
//! §3): which enrollment owns which line, and what of it a report needs.
//! A summary is small and final: the report never looks at a line again,
//! so a store can keep summaries up to date in its own commits
//! ([`Summary::absorb`] on each line it writes) instead of re-reading
//! history.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::line::Line;
pub use super::model::Step;
use super::text::{Interner, Names, Text, Variants};
use super::trace::Traces;

/// A campaign as its `campaign` line describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub campaign: String,
    pub title: Option<String>,
    /// The goal event (`completed` when the campaign has no `goal`).
    pub goal: String,
    /// Experiment name → its variants in the order written.
    pub experiments: Vec<(String, Vec<String>)>,
    /// Decisions of `until decided` experiments (the `campaign` line's
    /// `decided` key): the experiment's table counts only enrollments
    /// enrolled before `at`; those after it were given the winner.
    pub decisions: Vec<HeaderDecision>,
}

/// An `until decided` experiment's decision as the log carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderDecision {
    pub experiment: String,
    pub winner: String,
    /// Epoch ms.
    pub at: i64,
    /// Why, in words, with the numbers.
    pub because: String,
}

impl Header {
    pub fn of(line: &Line) -> Option<Header> {
        Some(Header {
            campaign: line.campaign.clone()?,
            title: line.title.clone(),
            goal: line.goal.clone()?,
            experiments: line
                .experiments
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            decisions: line
                .decided
                .iter()
                .flatten()
                .map(|(experiment, d)| HeaderDecision {
                    experiment: experiment.clone(),
                    winner: d.winner.clone(),
                    at: d.at,
                    because: d.because.clone(),
                })
                .collect(),
        })
    }
}

/// What a report needs of one enrollment: everything it owns, added up.
/// Its text is shared with the other summaries made with it ([`Text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub campaign: Text,
    /// Epoch ms of the `enrolled` line.
    pub enrolled_at: i64,
    pub variants: Variants,
    pub source: Option<Text>,
    pub timezone: Option<Text>,
    pub language: Option<Text>,
    /// The furthest funnel step it owns an event for.
    pub furthest: Step,
    /// The first `sent`: epoch ms and channel.
    pub first_sent: Option<(i64, Text)>,
    /// The first goal event (epoch ms).
    pub first_goal: Option<i64>,
    /// `device` of the first `clicked` that has one.
    pub device: Option<Text>,
    pub opted_out: bool,
    pub bounced: bool,
    pub failed: bool,
    /// The final state of the last `exited`.
    pub exited: Option<Text>,
    /// Channels it owns a `sent` on, in name order.
    pub sent_on: Names,
    /// Channels it owns a `bounced` on, in name order.
    pub bounced_on: Names,
}

/// Reads lines in log order and keeps each enrollment's trace; the
/// campaigns' headers turn them into summaries at the end.
#[derive(Debug, Default)]
pub struct Fold {
    headers: BTreeMap<String, Header>,
    traces: HashMap<String, Traces>,
    /// (candidate, index in their traces), in the order enrolled.
    order: Vec<(String, usize)>,
}

impl Fold {
    pub fn new() -> Fold {
        Fold::default()
    }

    /// Declares a campaign as its `campaign` line would.
    pub fn declare(&mut self, header: Header) {
        self.headers.insert(header.campaign.clone(), header);
    }

    /// Takes the next line of the log. Lines of a candidate with no
    /// enrollment yet are ignored (REPORT.md §1).
    pub fn push(&mut self, line: &Line) {
        if line.kind == "campaign" {
            if let Some(header) = Header::of(line) {
                self.declare(header);
            }
            return;
        }
        let Some(candidate) = &line.candidate else {
            return;
        };
        if line.kind == "enrolled" {
            if line.campaign.is_none() || line.at.is_none() {
                return;
            }
            let traces = self.traces.entry(candidate.clone()).or_default();
            self.order.push((candidate.clone(), traces.0.len()));
            traces.push(line);
        } else if let Some(traces) = self.traces.get_mut(candidate) {
            traces.push(line);
        }
    }

    /// The campaigns' headers by name, and every enrollment's summary in
    /// the order enrolled.
    pub fn finish(self) -> (BTreeMap<String, Header>, Vec<Summary>) {
        let mut text = Interner::new();
        let summaries = self
            .order
            .iter()
            .filter_map(|(candidate, i)| {
                let trace = self.traces.get(candidate)?.0.get(*i)?;
                let goal = goal_of(&self.headers, &trace.campaign);
                let zone = trace.timezone.as_deref().map(|z| text.text(z));
                Some(trace.as_ref().summary(goal, zone, &mut text))
            })
            .collect();
        (self.headers, summaries)
    }
}

/// A campaign's goal event: its header's, else `completed`.
pub fn goal_of<'h>(headers: &'h BTreeMap<String, Header>, campaign: &str) -> &'h str {
    headers
        .get(campaign)
        .map(|h| h.goal.as_str())
        .unwrap_or("completed")
}
