//! Summaries → [`Report`]: the cohort, the funnel, time to completion,
//! groups, experiments and red flags (REPORT.md §2–§7).
//! CONTRACT (lead): signatures fixed; bodies by the report-core helper.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fold::{Header, Summary};
use super::model::{ExperimentReport, Report};

/// What to report on (`nudge report`'s flags).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub campaign: Option<String>,
    /// Enrollments enrolled in [since, until), epoch ms.
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub by: Vec<By>,
    /// N* of the always-valid interval (`--plan`).
    pub plan: u64,
    pub thresholds: Thresholds,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            campaign: None,
            since: None,
            until: None,
            by: Vec::new(),
            plan: super::stats::DEFAULT_PLAN,
            thresholds: Thresholds::default(),
        }
    }
}

/// A `--by` grouping (REPORT.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum By {
    Variant,
    Channel,
    Source,
    Device,
    Weekday,
    Hour,
}

/// The red flags' thresholds (REPORT.md §7), `[report]` in `nudge.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    pub low_open_rate: f64,
    pub low_open_rate_base: u64,
    pub high_start_low_completion: f64,
    pub high_start_low_completion_base: u64,
    pub high_bounce_rate: f64,
    pub high_bounce_rate_base: u64,
    pub high_opt_out_rate: f64,
    pub high_opt_out_rate_base: u64,
    pub high_failure_rate: f64,
    pub high_failure_rate_base: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            low_open_rate: 0.20,
            low_open_rate_base: 50,
            high_start_low_completion: 0.50,
            high_start_low_completion_base: 30,
            high_bounce_rate: 0.05,
            high_bounce_rate_base: 50,
            high_opt_out_rate: 0.02,
            high_opt_out_rate_base: 100,
            high_failure_rate: 0.05,
            high_failure_rate_base: 50,
        }
    }
}

/// The report over these campaigns and enrollments. Campaigns come in
/// name order; a campaign with a header and no enrollment in the cohort
/// is reported with zero counts.
pub fn report<'s>(
    headers: &BTreeMap<String, Header>,
    summaries: impl IntoIterator<Item = &'s Summary>,
    options: &Options,
) -> Report {
    let _ = (headers, summaries.into_iter(), options);
    todo!("report-core")
}

/// One experiment's table from (variant, completed, enrolled) in the
/// order written, the first being the control: rates, comparisons with
/// verdicts and their words, chi-square, sample needed. Used by
/// [`report`] and by `until decided` in the daemon.
pub fn experiment(name: &str, variants: &[(String, u64, u64)], plan: u64) -> ExperimentReport {
    let _ = (name, variants, plan);
    todo!("report-core")
}
