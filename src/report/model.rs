//! The shape of a report (REPORT.md §8): what `--format json` prints, and
//! what the table, CSV and HTML formats and the dashboard show. Absent
//! values are `None` and print as `null`.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub campaigns: Vec<CampaignReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignReport {
    pub campaign: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The goal event (`completed` when the campaign has none).
    pub goal: String,
    pub funnel: Vec<FunnelStep>,
    pub outcomes: Outcomes,
    pub time_to_completion: TimeToCompletion,
    /// Grouping name (`variant:copy`, `channel`, ...) → its groups, in the
    /// order of `--by` and of REPORT.md §5.
    pub groups: IndexMap<String, Vec<Group>>,
    pub experiments: Vec<ExperimentReport>,
    pub red_flags: Vec<RedFlag>,
}

/// The funnel's steps, in order (REPORT.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Enrolled,
    Invited,
    Delivered,
    Opened,
    Clicked,
    Started,
    Completed,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::Enrolled,
        Step::Invited,
        Step::Delivered,
        Step::Opened,
        Step::Clicked,
        Step::Started,
        Step::Completed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Enrolled => "enrolled",
            Step::Invited => "invited",
            Step::Delivered => "delivered",
            Step::Opened => "opened",
            Step::Clicked => "clicked",
            Step::Started => "started",
            Step::Completed => "completed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelStep {
    pub step: Step,
    pub count: u64,
    pub rate_from_previous: Option<f64>,
    pub rate_from_enrolled: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    pub opted_out: u64,
    pub bounced: u64,
    pub failed: u64,
    /// Final state → enrollments whose last `exited` names it, by name.
    pub exited: std::collections::BTreeMap<String, u64>,
    pub running: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeToCompletion {
    pub count: u64,
    pub median_s: Option<f64>,
    pub p90_s: Option<f64>,
    pub within_24h: Option<f64>,
    pub within_48h: Option<f64>,
    pub within_72h: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub key: String,
    pub funnel: Vec<FunnelStep>,
    pub outcomes: Outcomes,
    pub time_to_completion: TimeToCompletion,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentReport {
    pub name: String,
    pub variants: Vec<VariantRate>,
    /// Each variant after the first against the first (the control).
    pub comparisons: Vec<Comparison>,
    pub chi_square: Option<ChiSquare>,
    pub sample_needed: Option<u64>,
    /// Set once an `until decided` experiment has been decided (stored by
    /// the daemon; never computed by a report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided: Option<Decision>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantRate {
    pub name: String,
    pub n: u64,
    pub completed: u64,
    pub rate: Option<f64>,
    /// Wilson 95% interval of the rate.
    pub interval: Option<[f64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub variant: String,
    pub versus: String,
    pub difference: Option<f64>,
    pub interval: Option<[f64; 2]>,
    pub p_value: Option<f64>,
    pub always_valid_interval: Option<[f64; 2]>,
    pub verdict: Verdict,
    /// The verdict in words for people (not part of the contract).
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Better,
    Worse,
    NoDifference,
    NotEnoughData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChiSquare {
    pub statistic: f64,
    pub df: u64,
    pub p_value: f64,
}

/// An `until decided` experiment's decision, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The variant new enrollments get from now on.
    pub winner: String,
    /// RFC 3339.
    pub at: String,
    /// Why, in words, with the numbers it was decided on.
    pub because: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedFlag {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub value: f64,
    pub threshold: f64,
    pub base: u64,
    /// What to check, in words (not part of the contract).
    pub advice: String,
}
