//! Summaries → [`Report`]: the cohort, the funnel, time to completion,
//! groups, experiments and red flags (REPORT.md §2–§7).
//! The one implementation of every figure: every format and the
//! dashboard render the [`Report`] made here.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, Timelike, Utc};
use chrono_tz::Tz;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::fold::{Header, HeaderDecision, Step, Summary};
use super::model::{
    CampaignReport, Comparison, Decision, ExperimentReport, FunnelStep, Group, Outcomes, RedFlag,
    Report, TimeToCompletion, VariantRate,
};
use super::{stats, words};

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

/// The red flags' thresholds (REPORT.md §7), `[report]` in `nudge.toml`:
/// each flag is raised when its rate passes the threshold over at least
/// its base of enrollments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// `low_open_rate`: raised when fewer than this fraction of those
    /// first invited by email opened it (default 0.2).
    pub low_open_rate: f64,
    /// ... over at least this many first invited by email (default 50).
    pub low_open_rate_base: u64,
    /// `high_start_low_completion`: raised when fewer than this fraction
    /// of those who started completed (default 0.5).
    pub high_start_low_completion: f64,
    /// ... over at least this many who started (default 30).
    pub high_start_low_completion_base: u64,
    /// `high_bounce_rate`: raised for a channel when more than this
    /// fraction of those sent to on it bounced (default 0.05).
    pub high_bounce_rate: f64,
    /// ... over at least this many sent to on the channel (default 50).
    pub high_bounce_rate_base: u64,
    /// `high_opt_out_rate`: raised when more than this fraction of those
    /// enrolled opted out (default 0.02).
    pub high_opt_out_rate: f64,
    /// ... over at least this many enrolled (default 100).
    pub high_opt_out_rate_base: u64,
    /// `high_failure_rate`: raised when more than this fraction of those
    /// invited had a send fail (default 0.05).
    pub high_failure_rate: f64,
    /// ... over at least this many invited (default 50).
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
    let wanted = |campaign: &str| options.campaign.as_deref().is_none_or(|c| c == campaign);
    let mut cohorts: BTreeMap<&str, Vec<&Summary>> = headers
        .keys()
        .filter(|name| wanted(name))
        .map(|name| (name.as_str(), Vec::new()))
        .collect();
    for s in summaries {
        let in_range = options.since.is_none_or(|t| s.enrolled_at >= t)
            && options.until.is_none_or(|t| s.enrolled_at < t);
        if in_range && wanted(&s.campaign) {
            cohorts.entry(s.campaign.as_str()).or_default().push(s);
        }
    }
    let campaigns = cohorts
        .into_iter()
        .map(|(name, cohort)| campaign(name, headers.get(name), &cohort, options))
        .collect();
    Report { campaigns }
}

/// One campaign's report over its cohort.
fn campaign(
    name: &str,
    header: Option<&Header>,
    cohort: &[&Summary],
    options: &Options,
) -> CampaignReport {
    let experiments: &[(String, Vec<String>)] = header.map_or(&[], |h| &h.experiments);
    let mut groups = IndexMap::new();
    for by in dedup(&options.by) {
        match by {
            By::Variant => {
                for (experiment, variants) in experiments {
                    let keyed = keyed(cohort, |s| s.variants.get(experiment).cloned());
                    groups.insert(
                        format!("variant:{experiment}"),
                        variant_groups(variants, keyed),
                    );
                }
            }
            By::Channel => {
                let keyed = keyed(cohort, |s| {
                    Some(s.first_sent.as_ref().map_or("none", |(_, c)| c).to_string())
                });
                groups.insert("channel".into(), by_size(keyed));
            }
            By::Source => {
                let keyed = keyed(cohort, |s| {
                    Some(s.source.clone().unwrap_or_else(|| "unknown".into()))
                });
                groups.insert("source".into(), by_size(keyed));
            }
            By::Device => {
                let keyed = keyed(cohort, |s| {
                    Some(s.device.clone().unwrap_or_else(|| "unknown".into()))
                });
                groups.insert("device".into(), by_size(keyed));
            }
            By::Weekday => {
                let keyed = keyed(cohort, |s| Some(local_sent(s, |t| WEEKDAYS[weekday(t)])));
                groups.insert("weekday".into(), fixed_then_none(&WEEKDAYS, keyed));
            }
            By::Hour => {
                let keyed = keyed(cohort, |s| {
                    Some(local_sent(s, |t| HOURS[t.hour() as usize]))
                });
                groups.insert("hour".into(), fixed_then_none(&HOURS, keyed));
            }
        }
    }
    let experiments = experiments
        .iter()
        .map(|(experiment, variants)| {
            let decision =
                header.and_then(|h| h.decisions.iter().find(|d| d.experiment == *experiment));
            experiment_of(experiment, variants, cohort, decision, options.plan)
        })
        .collect();
    CampaignReport {
        campaign: name.to_string(),
        title: header.and_then(|h| h.title.clone()),
        goal: header.map_or_else(|| "completed".into(), |h| h.goal.clone()),
        funnel: funnel(cohort),
        outcomes: outcomes(cohort),
        time_to_completion: time_to_completion(cohort),
        groups,
        experiments,
        red_flags: red_flags(cohort, &options.thresholds),
    }
}

/// `--by` as given, each grouping once.
fn dedup(by: &[By]) -> Vec<By> {
    let mut seen = Vec::new();
    for b in by {
        if !seen.contains(b) {
            seen.push(*b);
        }
    }
    seen
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const HOURS: [&str; 24] = [
    "00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15",
    "16", "17", "18", "19", "20", "21", "22", "23",
];

fn weekday(t: &NaiveDateTime) -> usize {
    t.weekday().num_days_from_monday() as usize
}

/// The key of the first `sent`'s local time (in the enrollment's zone, UTC
/// without one or with a zone chrono-tz does not know), `none` without a
/// `sent`.
fn local_sent(s: &Summary, key: impl Fn(&NaiveDateTime) -> &'static str) -> String {
    let Some((at, _)) = &s.first_sent else {
        return "none".into();
    };
    let Some(utc) = DateTime::<Utc>::from_timestamp_millis(*at) else {
        return "none".into();
    };
    let zone: Tz = s
        .timezone
        .as_deref()
        .and_then(|z| z.parse().ok())
        .unwrap_or(Tz::UTC);
    key(&utc.with_timezone(&zone).naive_local()).to_string()
}

/// The cohort split by a key; enrollments without one are left out.
fn keyed<'a>(
    cohort: &[&'a Summary],
    key: impl Fn(&Summary) -> Option<String>,
) -> BTreeMap<String, Vec<&'a Summary>> {
    let mut groups: BTreeMap<String, Vec<&Summary>> = BTreeMap::new();
    for s in cohort {
        if let Some(k) = key(s) {
            groups.entry(k).or_default().push(s);
        }
    }
    groups
}

/// Variants as written, each listed even when empty; a variant the
/// campaign line does not name (the experiment was edited) after them,
/// by name.
fn variant_groups(written: &[String], mut keyed: BTreeMap<String, Vec<&Summary>>) -> Vec<Group> {
    let mut groups: Vec<Group> = written
        .iter()
        .map(|v| group(v, &keyed.remove(v).unwrap_or_default()))
        .collect();
    groups.extend(keyed.iter().map(|(k, members)| group(k, members)));
    groups
}

/// Groups by enrolled count descending, then key.
fn by_size(keyed: BTreeMap<String, Vec<&Summary>>) -> Vec<Group> {
    let mut pairs: Vec<_> = keyed.into_iter().collect();
    pairs.sort_by(|(ka, a), (kb, b)| b.len().cmp(&a.len()).then_with(|| ka.cmp(kb)));
    pairs.iter().map(|(k, members)| group(k, members)).collect()
}

/// Every key of `fixed` in order (empty ones with zero counts), then
/// `none` when some enrollment has no key.
fn fixed_then_none(fixed: &[&str], mut keyed: BTreeMap<String, Vec<&Summary>>) -> Vec<Group> {
    let mut groups: Vec<Group> = fixed
        .iter()
        .map(|k| group(k, &keyed.remove(*k).unwrap_or_default()))
        .collect();
    if let Some(none) = keyed.remove("none") {
        groups.push(group("none", &none));
    }
    groups
}

fn group(key: &str, members: &[&Summary]) -> Group {
    Group {
        key: key.to_string(),
        funnel: funnel(members),
        outcomes: outcomes(members),
        time_to_completion: time_to_completion(members),
    }
}

fn ratio(count: u64, base: u64) -> Option<f64> {
    (base > 0).then(|| count as f64 / base as f64)
}

fn reached(cohort: &[&Summary], step: Step) -> u64 {
    cohort.iter().filter(|s| s.furthest >= step).count() as u64
}

/// REPORT.md §3: each step counts the enrollments that reached it or
/// went further.
fn funnel(cohort: &[&Summary]) -> Vec<FunnelStep> {
    let enrolled = cohort.len() as u64;
    let mut previous: Option<u64> = None;
    Step::ALL
        .iter()
        .map(|&step| {
            let count = reached(cohort, step);
            let row = FunnelStep {
                step,
                count,
                rate_from_previous: previous.and_then(|p| ratio(count, p)),
                rate_from_enrolled: ratio(count, enrolled),
            };
            previous = Some(count);
            row
        })
        .collect()
}

fn outcomes(cohort: &[&Summary]) -> Outcomes {
    let count = |f: fn(&Summary) -> bool| cohort.iter().filter(|s| f(s)).count() as u64;
    let mut exited = BTreeMap::new();
    for state in cohort.iter().filter_map(|s| s.exited.as_ref()) {
        *exited.entry(state.clone()).or_insert(0) += 1;
    }
    Outcomes {
        opted_out: count(|s| s.opted_out),
        bounced: count(|s| s.bounced),
        failed: count(|s| s.failed),
        exited,
        running: count(|s| s.exited.is_none()),
    }
}

/// REPORT.md §4: first `sent` to first goal, nearest-rank percentiles.
fn time_to_completion(cohort: &[&Summary]) -> TimeToCompletion {
    let mut times: Vec<f64> = cohort
        .iter()
        .filter_map(|s| {
            let (sent, _) = s.first_sent.as_ref()?;
            let goal = s.first_goal?;
            (goal >= *sent).then(|| (goal - sent) as f64 / 1000.0)
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let n = times.len();
    // ⌈q n⌉ in integers: ⌈n / 2⌉ and ⌈9 n / 10⌉, 1-based ranks.
    let rank = |r: usize| (n > 0).then(|| times[r - 1]);
    let invited = reached(cohort, Step::Invited);
    let within = |secs: f64| ratio(times.iter().filter(|&&d| d <= secs).count() as u64, invited);
    TimeToCompletion {
        count: n as u64,
        median_s: rank(n.div_ceil(2)),
        p90_s: rank((9 * n).div_ceil(10)),
        within_24h: within(86_400.0),
        within_48h: within(172_800.0),
        within_72h: within(259_200.0),
    }
}

/// An experiment's table over the cohort; a decided experiment counts
/// only those enrolled before its decision.
fn experiment_of(
    name: &str,
    variants: &[String],
    cohort: &[&Summary],
    decision: Option<&HeaderDecision>,
    plan: u64,
) -> ExperimentReport {
    let counted: Vec<&Summary> = cohort
        .iter()
        .copied()
        .filter(|s| decision.is_none_or(|d| s.enrolled_at < d.at))
        .collect();
    let table: Vec<(String, u64, u64)> = variants
        .iter()
        .map(|v| {
            let members = counted.iter().filter(|s| s.variants.get(name) == Some(v));
            let (mut completed, mut n) = (0, 0);
            for s in members {
                n += 1;
                completed += u64::from(s.furthest == Step::Completed);
            }
            (v.clone(), completed, n)
        })
        .collect();
    let mut report = experiment(name, &table, plan);
    report.decided = decision.map(|d| Decision {
        winner: d.winner.clone(),
        at: DateTime::<Utc>::from_timestamp_millis(d.at)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            .unwrap_or_default(),
        because: d.because.clone(),
    });
    report
}

/// One experiment's table from (variant, completed, enrolled) in the
/// order written, the first being the control: rates, comparisons with
/// verdicts and their words, chi-square, sample needed. Used by
/// [`report`] and by `until decided` in the daemon.
pub fn experiment(name: &str, variants: &[(String, u64, u64)], plan: u64) -> ExperimentReport {
    let rates: Vec<VariantRate> = variants
        .iter()
        .map(|(v, x, n)| VariantRate {
            name: v.clone(),
            n: *n,
            completed: *x,
            rate: ratio(*x, *n),
            interval: stats::wilson(*x, *n),
        })
        .collect();
    let control = variants.first();
    let needed = control
        .filter(|(_, _, n0)| *n0 > 0)
        .map(|(_, x0, n0)| stats::sample_needed(*x0 as f64 / *n0 as f64));
    let comparisons = match control {
        Some((control, x0, n0)) => variants[1..]
            .iter()
            .map(|(v, xi, ni)| {
                let compared = stats::compare(*x0, *n0, *xi, *ni, plan);
                let verdict = stats::verdict(compared.as_ref(), *n0, *ni, needed);
                Comparison {
                    variant: v.clone(),
                    versus: control.clone(),
                    difference: compared.map(|c| c.difference),
                    interval: compared.map(|c| c.interval),
                    p_value: compared.map(|c| c.p_value),
                    always_valid_interval: compared.map(|c| c.always_valid),
                    verdict,
                    text: words::verdict(v, control, compared.as_ref(), verdict, *n0, *ni, needed),
                }
            })
            .collect(),
        None => Vec::new(),
    };
    let table: Vec<(u64, u64)> = variants.iter().map(|(_, x, n)| (*x, *n)).collect();
    ExperimentReport {
        name: name.to_string(),
        variants: rates,
        comparisons,
        chi_square: stats::chi_square(&table),
        sample_needed: needed,
        decided: None,
    }
}

/// REPORT.md §7, in the table's order, per channel in name order.
fn red_flags(cohort: &[&Summary], t: &Thresholds) -> Vec<RedFlag> {
    let mut flags = Vec::new();
    let mut check = |kind: &str,
                     channel: Option<&str>,
                     count: u64,
                     base: u64,
                     low: bool,
                     threshold: f64,
                     min_base: u64| {
        let Some(value) = ratio(count, base) else {
            return;
        };
        let raised = if low {
            value < threshold
        } else {
            value > threshold
        };
        if raised && base >= min_base {
            flags.push(RedFlag {
                kind: kind.to_string(),
                channel: channel.map(str::to_string),
                value,
                threshold,
                base,
                advice: words::advice(kind, channel),
            });
        }
    };
    let by_email: Vec<&Summary> = cohort
        .iter()
        .copied()
        .filter(|s| s.first_sent.as_ref().is_some_and(|(_, c)| c == "email"))
        .collect();
    check(
        "low_open_rate",
        Some("email"),
        reached(&by_email, Step::Opened),
        by_email.len() as u64,
        true,
        t.low_open_rate,
        t.low_open_rate_base,
    );
    check(
        "high_start_low_completion",
        None,
        reached(cohort, Step::Completed),
        reached(cohort, Step::Started),
        true,
        t.high_start_low_completion,
        t.high_start_low_completion_base,
    );
    let channels: BTreeSet<&str> = cohort
        .iter()
        .flat_map(|s| s.sent_on.iter().map(String::as_str))
        .collect();
    for channel in channels {
        let sent = cohort
            .iter()
            .filter(|s| s.sent_on.iter().any(|c| c == channel))
            .count();
        let bounced = cohort
            .iter()
            .filter(|s| s.bounced_on.iter().any(|c| c == channel))
            .count();
        check(
            "high_bounce_rate",
            Some(channel),
            bounced as u64,
            sent as u64,
            false,
            t.high_bounce_rate,
            t.high_bounce_rate_base,
        );
    }
    let count = |f: fn(&Summary) -> bool| cohort.iter().filter(|s| f(s)).count() as u64;
    check(
        "high_opt_out_rate",
        None,
        count(|s| s.opted_out),
        cohort.len() as u64,
        false,
        t.high_opt_out_rate,
        t.high_opt_out_rate_base,
    );
    check(
        "high_failure_rate",
        None,
        count(|s| s.failed),
        reached(cohort, Step::Invited),
        false,
        t.high_failure_rate,
        t.high_failure_rate_base,
    );
    flags
}
