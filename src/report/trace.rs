//! What a report needs of one enrollment, kept without knowing its
//! campaign: the first instant of each kind of event it owns, its first
//! send and channels, its device, how it ended. The campaign's goal and
//! zone turn a trace into a [`Summary`] when a report is made, so the
//! store can keep traces up to date in its own commits (it does not know
//! the campaigns) and a campaign edit that changes its goal reports the
//! history again under the new goal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fold::{Step, Summary};
use super::line::Line;
use super::text::{Interner, Text};

/// What a trace reads of one line of a candidate's history, borrowed: the
/// store makes one from each history entry it writes
/// ([`crate::report::export::fact_of`]) without building a [`Line`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Fact<'a> {
    pub kind: &'a str,
    /// Epoch ms.
    pub at: Option<i64>,
    pub campaign: Option<&'a str>,
    pub variants: Option<&'a BTreeMap<String, String>>,
    pub source: Option<&'a str>,
    pub timezone: Option<&'a str>,
    pub language: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub template: Option<&'a str>,
    pub state: Option<&'a str>,
    pub converted: Option<bool>,
    pub device: Option<&'a str>,
}

impl Line {
    /// The line as a trace reads it.
    pub fn fact(&self) -> Fact<'_> {
        Fact {
            kind: &self.kind,
            at: self.at,
            campaign: self.campaign.as_deref(),
            variants: self.variants.as_ref(),
            source: self.source.as_deref(),
            timezone: self.timezone.as_deref(),
            language: self.language.as_deref(),
            channel: self.channel.as_deref(),
            template: self.template.as_deref(),
            state: self.state.as_deref(),
            converted: self.converted,
            device: self.device.as_deref(),
        }
    }
}

/// A name in a trace (a campaign, variant, channel, kind, zone...): kept
/// in place up to 24 bytes, so decoding a dossier's traces, which every
/// commit that logs a line does, allocates nothing for them. Encoded as a
/// string, the same bytes as before.
pub type Name = compact_str::CompactString;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    pub campaign: Name,
    /// Epoch ms of its `enrolled` line.
    pub enrolled_at: i64,
    pub variants: BTreeMap<Name, Name>,
    pub source: Option<Name>,
    /// The `enrolled` line's zone (in the store: the candidate's own
    /// `timezone` field, read under the campaign's zone rule later).
    pub timezone: Option<Name>,
    pub language: Option<Name>,
    /// The first `sent`: epoch ms and channel.
    pub first_sent: Option<(i64, Name)>,
    /// Channels it owns a `sent` on, in name order.
    pub sent_on: Vec<Name>,
    /// Every other kind of line it owns, with the earliest instant.
    pub firsts: Vec<(Name, i64)>,
    /// `device` of the first `clicked` that has one.
    pub device: Option<Name>,
    /// Channels it owns a `bounced` on, in name order.
    pub bounced_on: Vec<Name>,
    /// The final state of the last `exited`.
    pub exited: Option<Name>,
}

impl Trace {
    /// A new enrollment from its `enrolled` line (`None` when the line
    /// lacks `at` or `campaign`).
    pub fn enrolled(line: &Fact) -> Option<Trace> {
        Some(Trace {
            campaign: line.campaign?.into(),
            enrolled_at: line.at?,
            variants: line
                .variants
                .into_iter()
                .flatten()
                .map(|(e, v)| (e.into(), v.into()))
                .collect(),
            source: line.source.map(Name::from),
            timezone: line.timezone.map(Name::from),
            language: line.language.map(Name::from),
            first_sent: None,
            sent_on: Vec::new(),
            firsts: Vec::new(),
            device: None,
            bounced_on: Vec::new(),
            exited: None,
        })
    }

    /// Adds a line this enrollment owns (not an `enrolled` or `campaign`
    /// line).
    pub fn absorb(&mut self, line: &Fact) {
        let at = line.at.unwrap_or(i64::MIN);
        match line.kind {
            "sent" => {
                let channel = Name::from(line.channel.unwrap_or_default());
                if self
                    .first_sent
                    .as_ref()
                    .is_none_or(|(first, _)| at < *first)
                {
                    self.first_sent = Some((at, channel.clone()));
                }
                insert_sorted(&mut self.sent_on, channel);
                return;
            }
            "exited" => {
                self.exited = line.state.map(Name::from);
                return;
            }
            "clicked" if self.device.is_none() => self.device = line.device.map(Name::from),
            "bounced" => {
                if let Some(channel) = line.channel {
                    insert_sorted(&mut self.bounced_on, channel.into());
                }
            }
            _ => {}
        }
        match self.firsts.iter_mut().find(|(kind, _)| *kind == line.kind) {
            Some((_, first)) => *first = (*first).min(at),
            None => self.firsts.push((line.kind.into(), at)),
        }
    }

    /// The same trace, borrowed.
    pub fn as_ref(&self) -> TraceRef<'_> {
        TraceRef {
            campaign: &self.campaign,
            enrolled_at: self.enrolled_at,
            variants: self
                .variants
                .iter()
                .map(|(e, v)| (e.as_str(), v.as_str()))
                .collect(),
            source: self.source.as_deref(),
            timezone: self.timezone.as_deref(),
            language: self.language.as_deref(),
            first_sent: self.first_sent.as_ref().map(|(at, c)| (*at, c.as_str())),
            sent_on: self.sent_on.iter().map(Name::as_str).collect(),
            firsts: self
                .firsts
                .iter()
                .map(|(k, at)| (k.as_str(), *at))
                .collect(),
            device: self.device.as_deref(),
            bounced_on: self.bounced_on.iter().map(Name::as_str).collect(),
            exited: self.exited.as_deref(),
        }
    }
}

/// A [`Trace`] read in place from its encoding: the same fields in the
/// same order, borrowing its text from the bytes (a report reads a million
/// of them and keeps none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRef<'a> {
    pub campaign: &'a str,
    pub enrolled_at: i64,
    /// (experiment, variant) in experiment order (a map on the wire).
    pub variants: Vec<(&'a str, &'a str)>,
    pub source: Option<&'a str>,
    pub timezone: Option<&'a str>,
    pub language: Option<&'a str>,
    pub first_sent: Option<(i64, &'a str)>,
    pub sent_on: Vec<&'a str>,
    pub firsts: Vec<(&'a str, i64)>,
    pub device: Option<&'a str>,
    pub bounced_on: Vec<&'a str>,
    pub exited: Option<&'a str>,
}

impl TraceRef<'_> {
    /// The earliest instant of a kind of line it owns.
    pub fn first(&self, kind: &str) -> Option<i64> {
        self.firsts
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, at)| *at)
    }

    /// The summary under a campaign whose goal event is `goal`, its zone
    /// being `timezone`, its text shared through `text`.
    pub fn summary(&self, goal: &str, timezone: Option<Text>, text: &mut Interner) -> Summary {
        let mut furthest = if self.first_sent.is_some() {
            Step::Invited
        } else {
            Step::Enrolled
        };
        for (kind, _) in &self.firsts {
            let step = if *kind == goal {
                Step::Completed
            } else {
                match *kind {
                    "delivered" => Step::Delivered,
                    "opened" => Step::Opened,
                    "clicked" => Step::Clicked,
                    "started" => Step::Started,
                    _ => continue,
                }
            };
            furthest = furthest.max(step);
        }
        let mut shared = |s: Option<&str>| s.map(|s| text.text(s));
        Summary {
            first_goal: self.first(goal),
            opted_out: self.first("opted_out").is_some(),
            bounced: self.first("bounced").is_some(),
            failed: self.first("failed").is_some(),
            source: shared(self.source),
            language: shared(self.language),
            device: shared(self.device),
            exited: shared(self.exited),
            first_sent: self.first_sent.map(|(at, c)| (at, text.text(c))),
            campaign: text.text(self.campaign),
            enrolled_at: self.enrolled_at,
            variants: text.variants(self.variants.iter().copied()),
            timezone,
            furthest,
            sent_on: text.names(self.sent_on.iter().copied()),
            bounced_on: text.names(self.bounced_on.iter().copied()),
        }
    }
}

fn insert_sorted(set: &mut Vec<Name>, item: Name) {
    if let Err(at) = set.binary_search(&item) {
        set.insert(at, item);
    }
}

/// One candidate's traces, in the order enrolled: what the store keeps
/// per candidate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traces(pub Vec<Trace>);

impl Traces {
    /// Every trace, borrowed.
    pub fn refs(&self) -> Vec<TraceRef<'_>> {
        self.0.iter().map(Trace::as_ref).collect()
    }

    /// Takes the candidate's next line (REPORT.md §1): an `enrolled` line
    /// opens an enrollment (the pair's earlier one stops owning lines); any
    /// other goes to the open enrollment of its campaign, or to every open
    /// one without a campaign.
    pub fn push(&mut self, line: &Line) {
        self.take(&line.fact());
    }

    /// [`Traces::push`] of a line as a trace reads it.
    pub fn take(&mut self, line: &Fact) {
        if line.kind == "enrolled" {
            self.0.extend(Trace::enrolled(line));
            return;
        }
        if line.kind == "campaign" {
            return;
        }
        // The open enrollment of a campaign is its last (a candidate has
        // few: looked for without allocating, as every commit does this).
        for i in (0..self.0.len()).rev() {
            let campaign = &self.0[i].campaign;
            let open = !self.0[i + 1..].iter().any(|t| t.campaign == *campaign)
                && line.campaign.is_none_or(|c| c == campaign.as_str());
            if open {
                self.0[i].absorb(line);
            }
        }
    }
}
