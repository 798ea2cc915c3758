//! The compiled state machine of one campaign: names resolved to indexes,
//! durations to seconds, zones to `chrono_tz::Tz`. Built by `dsl::compile`
//! from a checked campaign; read by `engine::step`.

use std::fmt;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::candidate::{Candidate, Fields};
use super::filter::Filter;
use super::window::{RateLimit, Window};

/// Index of a state in [`Machine::states`].
pub type StateId = usize;

/// A channel kind a message can go out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Whatsapp,
    Webhook,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Email,
        Channel::Sms,
        Channel::Whatsapp,
        Channel::Webhook,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
            Channel::Webhook => "webhook",
        }
    }

    pub fn from_name(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One campaign, ready to run.
#[derive(Debug, Clone)]
pub struct Machine {
    pub name: String,
    pub title: Option<String>,
    pub enroll: Option<EnrollRule>,
    /// Order of preference for sends without `via`.
    pub channels: Vec<Channel>,
    pub zone: ZoneRule,
    pub window: Option<Window>,
    pub rate_limits: Vec<RateLimit>,
    pub total_limit: Option<u32>,
    pub deadline: Option<DeadlineRule>,
    pub goal: Option<String>,
    pub exits: Vec<String>,
    pub link: Option<String>,
    pub experiments: Vec<Experiment>,
    /// The first state is where enrollment lands.
    pub states: Vec<State>,
}

/// `enroll on EVENT where FILTER`
#[derive(Debug, Clone)]
pub struct EnrollRule {
    pub event: String,
    pub filter: Option<Filter>,
}

/// Which zone a candidate's window is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneRule {
    /// Use the candidate's own `timezone` field when it names a valid zone.
    pub candidate: bool,
    /// The fixed zone, or the fallback (UTC when none is written).
    pub fallback: Tz,
}

/// `deadline D` / `deadline D after enrollment`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineRule {
    pub secs: i64,
    pub from_enrollment: bool,
}

/// `experiment NAME { v1 w1, v2 w2 }` (`until decided`)
#[derive(Debug, Clone)]
pub struct Experiment {
    pub name: String,
    pub variants: Vec<(String, u64)>,
    /// `until decided`: once the daemon decides a winner, new enrollments
    /// get it instead of their stable assignment.
    pub until_decided: bool,
}

#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    pub window: Option<Window>,
    pub sends: Vec<Send>,
    pub ons: Vec<OnRule>,
    /// `at deadline` and `before deadline` transitions, in the order written.
    pub deadline_rules: Vec<DeadlineTransition>,
    pub afters: Vec<After>,
    pub split: Option<Split>,
    pub is_final: bool,
}

/// `send "invite-{copy}" via email`
#[derive(Debug, Clone)]
pub struct Send {
    pub template: TemplateName,
    pub via: Option<Channel>,
}

/// A template name with `{experiment}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateName {
    pub parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    Text(String),
    /// Index of an experiment; replaced by the candidate's variant.
    Variant(usize),
}

impl TemplateName {
    /// The name with each placeholder replaced by the candidate's variant.
    pub fn resolve(&self, machine: &Machine, variants: &[usize]) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Text(t) => out.push_str(t),
                TemplatePart::Variant(e) => {
                    let name = variants
                        .get(*e)
                        .and_then(|v| machine.experiments.get(*e)?.variants.get(*v))
                        .map_or("", |(n, _)| n.as_str());
                    out.push_str(name);
                }
            }
        }
        out
    }
}

/// `on EVENT where FILTER -> TARGET`
#[derive(Debug, Clone)]
pub struct OnRule {
    pub event: String,
    pub filter: Option<Filter>,
    pub target: StateId,
}

/// `at deadline -> T` (`before_secs` is `None`) or `before deadline D -> T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineTransition {
    pub before_secs: Option<i64>,
    pub target: StateId,
}

/// `after D -> T`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct After {
    pub secs: i64,
    pub target: StateId,
}

/// `split EXPERIMENT { variant -> state, ... }`: one target per variant,
/// in the experiment's variant order.
#[derive(Debug, Clone)]
pub struct Split {
    pub experiment: usize,
    pub targets: Vec<StateId>,
}

impl Machine {
    pub fn state_index(&self, name: &str) -> Option<StateId> {
        self.states.iter().position(|s| s.name == name)
    }

    pub fn experiment_index(&self, name: &str) -> Option<usize> {
        self.experiments.iter().position(|e| e.name == name)
    }

    /// Whether the campaign has a `where` filter at all (when not, every
    /// candidate is taken and none need be built to ask).
    pub fn has_filter(&self) -> bool {
        self.enroll.as_ref().is_some_and(|e| e.filter.is_some())
    }

    /// Whether the campaign's `where` filter (if any) takes the candidate.
    pub fn accepts(&self, candidate: &Candidate) -> bool {
        self.enroll
            .as_ref()
            .and_then(|e| e.filter.as_ref())
            .is_none_or(|f| f.matches(candidate, &Fields::new()))
    }
}
