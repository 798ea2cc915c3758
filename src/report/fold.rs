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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub campaign: String,
    pub candidate: String,
    /// Epoch ms of the `enrolled` line.
    pub enrolled_at: i64,
    pub variants: BTreeMap<String, String>,
    pub source: Option<String>,
    pub timezone: Option<String>,
    pub language: Option<String>,
    /// The furthest funnel step it owns an event for.
    pub furthest: Step,
    /// The first `sent`: epoch ms and channel.
    pub first_sent: Option<(i64, String)>,
    /// The first goal event (epoch ms).
    pub first_goal: Option<i64>,
    /// `device` of the first `clicked` that has one.
    pub device: Option<String>,
    pub opted_out: bool,
    pub bounced: bool,
    pub failed: bool,
    /// The final state of the last `exited`.
    pub exited: Option<String>,
    /// Channels it owns a `sent` on, in name order.
    pub sent_on: Vec<String>,
    /// Channels it owns a `bounced` on, in name order.
    pub bounced_on: Vec<String>,
}

impl Summary {
    /// A new enrollment from its `enrolled` line (`None` when the line
    /// lacks `at`, `campaign` or `candidate`).
    pub fn enrolled(line: &Line) -> Option<Summary> {
        Some(Summary {
            campaign: line.campaign.clone()?,
            candidate: line.candidate.clone()?,
            enrolled_at: line.at?,
            variants: line.variants.clone().unwrap_or_default(),
            source: line.source.clone(),
            timezone: line.timezone.clone(),
            language: line.language.clone(),
            furthest: Step::Enrolled,
            first_sent: None,
            first_goal: None,
            device: None,
            opted_out: false,
            bounced: false,
            failed: false,
            exited: None,
            sent_on: Vec::new(),
            bounced_on: Vec::new(),
        })
    }

    /// Adds a line this enrollment owns; `goal` is its campaign's goal event.
    pub fn absorb(&mut self, line: &Line, goal: &str) {
        let at = line.at.unwrap_or(i64::MIN);
        let step = if line.kind == goal {
            if self.first_goal.is_none() {
                self.first_goal = Some(at);
            }
            Some(Step::Completed)
        } else {
            match line.kind.as_str() {
                "sent" => {
                    let channel = line.channel.clone().unwrap_or_default();
                    if self.first_sent.is_none() {
                        self.first_sent = Some((at, channel.clone()));
                    }
                    insert_sorted(&mut self.sent_on, channel);
                    Some(Step::Invited)
                }
                "delivered" => Some(Step::Delivered),
                "opened" => Some(Step::Opened),
                "clicked" => {
                    if self.device.is_none() {
                        self.device = line.device.clone();
                    }
                    Some(Step::Clicked)
                }
                "started" => Some(Step::Started),
                "opted_out" => {
                    self.opted_out = true;
                    None
                }
                "bounced" => {
                    self.bounced = true;
                    if let Some(channel) = &line.channel {
                        insert_sorted(&mut self.bounced_on, channel.clone());
                    }
                    None
                }
                "failed" => {
                    self.failed = true;
                    None
                }
                "exited" => {
                    self.exited = line.state.clone();
                    None
                }
                _ => None,
            }
        };
        if let Some(step) = step {
            self.furthest = self.furthest.max(step);
        }
    }
}

fn insert_sorted(set: &mut Vec<String>, item: String) {
    if let Err(at) = set.binary_search(&item) {
        set.insert(at, item);
    }
}

/// Reads lines in log order and keeps each enrollment's summary.
#[derive(Debug, Default)]
pub struct Fold {
    headers: BTreeMap<String, Header>,
    summaries: Vec<Summary>,
    /// Candidate → (campaign → index in `summaries`) of the enrollments
    /// that own their lines now.
    open: HashMap<String, Vec<(String, usize)>>,
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
        match line.kind.as_str() {
            "campaign" => {
                if let Some(header) = Header::of(line) {
                    self.headers.insert(header.campaign.clone(), header);
                }
            }
            "enrolled" => {
                let Some(summary) = Summary::enrolled(line) else {
                    return;
                };
                let index = self.summaries.len();
                let open = self.open.entry(summary.candidate.clone()).or_default();
                match open.iter_mut().find(|(c, _)| *c == summary.campaign) {
                    Some(slot) => slot.1 = index,
                    None => open.push((summary.campaign.clone(), index)),
                }
                self.summaries.push(summary);
            }
            _ => {
                let Some(candidate) = &line.candidate else {
                    return;
                };
                let Some(open) = self.open.get(candidate) else {
                    return;
                };
                for (campaign, index) in open {
                    if line.campaign.as_ref().is_some_and(|c| c != campaign) {
                        continue;
                    }
                    let goal = self
                        .headers
                        .get(campaign)
                        .map(|h| h.goal.as_str())
                        .unwrap_or("completed");
                    self.summaries[*index].absorb(line, goal);
                }
            }
        }
    }

    /// The campaigns' headers by name, and every enrollment's summary in
    /// the order enrolled.
    pub fn finish(self) -> (BTreeMap<String, Header>, Vec<Summary>) {
        (self.headers, self.summaries)
    }
}
