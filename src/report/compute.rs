//! Summaries → [`Report`]: the cohort, the funnel, time to completion,
//! groups, experiments and red flags (REPORT.md §2–§7).
//! The one implementation of every figure: every format and the
//! dashboard render the [`Report`] made here.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use chrono_tz::Tz;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::export::Filter;
use super::fold::{Header, HeaderDecision, Step, Summary};
use super::model::{
    CampaignReport, Comparison, Decision, ExperimentReport, RedFlag, Report, VariantRate,
};
use super::tally::{ratio, Tally};
use super::{groups, stats, words};

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

impl Options {
    /// The enrollments the report counts, as the export and the store's
    /// summaries select them: `--campaign`, enrolled in [`--since`,
    /// `--until`).
    pub fn filter(&self) -> Filter {
        Filter {
            campaign: self.campaign.clone(),
            since: self.since,
            until: self.until,
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
    let campaigns = cohorts(headers, summaries, options)
        .into_iter()
        .map(|(name, cohort)| campaign(name, headers.get(name), &cohort, options))
        .collect();
    Report { campaigns }
}

/// The cohort `options` selects (REPORT.md §2), per campaign in name
/// order: every campaign [`Options::filter`] keeps that has a header,
/// even with no enrollment, and each enrollment it keeps. The report and
/// its charts ([`super::charts`]) count the same enrollments.
pub(crate) fn cohorts<'h, 's: 'h>(
    headers: &'h BTreeMap<String, Header>,
    summaries: impl IntoIterator<Item = &'s Summary>,
    options: &Options,
) -> BTreeMap<&'h str, Vec<&'s Summary>> {
    let filter = options.filter();
    let mut cohorts: BTreeMap<&str, Vec<&Summary>> = headers
        .keys()
        .filter(|name| filter.keeps_campaign(name))
        .map(|name| (name.as_str(), Vec::new()))
        .collect();
    for s in summaries {
        if filter.keeps(&s.campaign, s.enrolled_at) {
            cohorts.entry(&s.campaign).or_default().push(s);
        }
    }
    cohorts
}

/// The zone an enrollment's instants are read in (REPORT.md §5, for
/// `--by weekday`, `--by hour` and the charts' heatmaps): its own IANA
/// `timezone`, UTC without one or with one chrono-tz does not know. Each
/// name is parsed once.
#[derive(Default)]
pub(crate) struct Zones<'s>(HashMap<&'s str, Tz>);

impl<'s> Zones<'s> {
    /// The zone of this enrollment.
    pub(crate) fn of(&mut self, s: &'s Summary) -> Tz {
        match s.timezone.as_deref() {
            Some(name) => *self
                .0
                .entry(name)
                .or_insert_with(|| name.parse().unwrap_or(Tz::UTC)),
            None => Tz::UTC,
        }
    }

    /// The weekday (0 = Monday) and hour of `at` (epoch ms) in the zone
    /// of enrollment `s`: the buckets of the weekday and hour groupings
    /// and of the heatmaps.
    pub(crate) fn weekday_hour(&mut self, s: &'s Summary, at: i64) -> Option<(usize, usize)> {
        let local = DateTime::<Utc>::from_timestamp_millis(at)?.with_timezone(&self.of(s));
        Some((
            local.weekday().num_days_from_monday() as usize,
            local.hour() as usize,
        ))
    }
}

/// One campaign's report over its cohort.
fn campaign(
    name: &str,
    header: Option<&Header>,
    cohort: &[&Summary],
    options: &Options,
) -> CampaignReport {
    let experiments: &[(String, Vec<String>)] = header.map_or(&[], |h| &h.experiments);
    let mut tally = Tally::default();
    for s in cohort {
        tally.add(s);
    }
    let mut grouped = IndexMap::new();
    for by in dedup(&options.by) {
        match by {
            By::Variant => {
                for (experiment, variants) in experiments {
                    grouped.insert(
                        format!("variant:{experiment}"),
                        groups::variants(cohort, experiment, variants),
                    );
                }
            }
            By::Channel => {
                grouped.insert("channel".into(), groups::by_size(cohort, groups::channel));
            }
            By::Source => {
                grouped.insert("source".into(), groups::by_size(cohort, groups::source));
            }
            By::Device => {
                grouped.insert("device".into(), groups::by_size(cohort, groups::device));
            }
            By::Weekday => {
                grouped.insert("weekday".into(), groups::local_time(cohort, false));
            }
            By::Hour => {
                grouped.insert("hour".into(), groups::local_time(cohort, true));
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
        funnel: tally.funnel(),
        outcomes: tally.outcomes(),
        time_to_completion: tally.time_to_completion(),
        groups: grouped,
        experiments,
        red_flags: red_flags(cohort, &tally, &options.thresholds),
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

/// An experiment's table over the cohort; a decided experiment counts
/// only those enrolled before its decision.
fn experiment_of(
    name: &str,
    variants: &[String],
    cohort: &[&Summary],
    decision: Option<&HeaderDecision>,
    plan: u64,
) -> ExperimentReport {
    let mut counts: HashMap<&str, (u64, u64)> = HashMap::new();
    for s in cohort {
        if decision.is_some_and(|d| s.enrolled_at >= d.at) {
            continue;
        }
        if let Some(v) = s.variants.get(name) {
            let (completed, n) = counts.entry(&**v).or_default();
            *n += 1;
            *completed += u64::from(s.furthest == Step::Completed);
        }
    }
    let table: Vec<(String, u64, u64)> = variants
        .iter()
        .map(|v| {
            let (completed, n) = counts.get(v.as_str()).copied().unwrap_or_default();
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
fn red_flags(cohort: &[&Summary], tally: &Tally, t: &Thresholds) -> Vec<RedFlag> {
    let (mut by_email, mut by_email_opened) = (0, 0);
    // Channel → (enrollments sent to on it, those bounced on it).
    let mut channels: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for s in cohort {
        if s.first_sent.as_ref().is_some_and(|(_, c)| c == "email") {
            by_email += 1;
            by_email_opened += u64::from(s.furthest >= Step::Opened);
        }
        for c in s.sent_on.iter() {
            channels.entry(c).or_default().0 += 1;
        }
        for c in s.bounced_on.iter() {
            channels.entry(c).or_default().1 += 1;
        }
    }
    let mut flags = Vec::new();
    let mut check = |kind: &str, channel: Option<&str>, (count, base): (u64, u64), rule: Rule| {
        let Some(value) = ratio(count, base) else {
            return;
        };
        let passed = match rule {
            Rule::Below(threshold, _) => value < threshold,
            Rule::Above(threshold, _) => value > threshold,
        };
        let (Rule::Below(threshold, min_base) | Rule::Above(threshold, min_base)) = rule;
        if passed && base >= min_base {
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
    check(
        "low_open_rate",
        Some("email"),
        (by_email_opened, by_email),
        Rule::Below(t.low_open_rate, t.low_open_rate_base),
    );
    check(
        "high_start_low_completion",
        None,
        (tally.reached(Step::Completed), tally.reached(Step::Started)),
        Rule::Below(
            t.high_start_low_completion,
            t.high_start_low_completion_base,
        ),
    );
    for (channel, (sent, bounced)) in channels {
        check(
            "high_bounce_rate",
            Some(channel),
            (bounced, sent),
            Rule::Above(t.high_bounce_rate, t.high_bounce_rate_base),
        );
    }
    check(
        "high_opt_out_rate",
        None,
        (tally.opted_out(), tally.reached(Step::Enrolled)),
        Rule::Above(t.high_opt_out_rate, t.high_opt_out_rate_base),
    );
    check(
        "high_failure_rate",
        None,
        (tally.failed(), tally.reached(Step::Invited)),
        Rule::Above(t.high_failure_rate, t.high_failure_rate_base),
    );
    flags
}

/// When a flag is raised: its rate below or above the threshold, over at
/// least a base of enrollments.
#[derive(Clone, Copy)]
enum Rule {
    Below(f64, u64),
    Above(f64, u64),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fold::Fold;
    use crate::report::line::read_lines;
    use crate::report::model::Verdict;

    fn fold(log: &str) -> (BTreeMap<String, Header>, Vec<Summary>) {
        let mut fold = Fold::new();
        for line in read_lines(log.as_bytes()).unwrap() {
            fold.push(&line);
        }
        fold.finish()
    }

    fn enrolled(candidate: &str, at: &str, variant: &str) -> String {
        format!(
            "{{\"kind\":\"enrolled\",\"at\":\"{at}\",\"campaign\":\"c\",\"candidate\":\"{candidate}\",\"variants\":{{\"copy\":\"{variant}\"}}}}\n"
        )
    }

    #[test]
    fn a_decided_experiment_counts_those_enrolled_before_its_decision() {
        let mut log = "{\"kind\":\"campaign\",\"campaign\":\"c\",\"goal\":\"completed\",\
                       \"experiments\":{\"copy\":[\"short\",\"warm\"]},\
                       \"decided\":{\"copy\":{\"winner\":\"warm\",\"at\":\"2026-10-28T00:00:00Z\",\
                       \"because\":\"warm completes more\"}}}\n"
            .to_string();
        for (c, at, v) in [
            ("a", "2026-10-26T00:00:00Z", "short"),
            ("b", "2026-10-26T00:00:00Z", "warm"),
            ("d", "2026-10-27T23:59:59Z", "warm"),
            ("e", "2026-10-28T00:00:00Z", "warm"),
            ("f", "2026-10-29T00:00:00Z", "warm"),
        ] {
            log.push_str(&enrolled(c, at, v));
        }
        let (headers, summaries) = fold(&log);
        let options = Options {
            by: vec![By::Variant],
            ..Options::default()
        };
        let r = report(&headers, &summaries, &options);
        let e = &r.campaigns[0].experiments[0];
        let ns: Vec<u64> = e.variants.iter().map(|v| v.n).collect();
        assert_eq!(ns, [1, 2]);
        let decided = e.decided.as_ref().unwrap();
        assert_eq!(decided.winner, "warm");
        assert_eq!(decided.at, "2026-10-28T00:00:00Z");
        assert_eq!(decided.because, "warm completes more");
        let groups = &r.campaigns[0].groups["variant:copy"];
        let counts: Vec<u64> = groups.iter().map(|g| g.funnel[0].count).collect();
        assert_eq!(counts, [1, 4]);
    }

    #[test]
    fn verdicts_in_words() {
        let table = |x0, n0, xi, ni| {
            let e = experiment(
                "copy",
                &[("short".into(), x0, n0), ("warm".into(), xi, ni)],
                1000,
            );
            let c = e.comparisons[0].clone();
            (c.verdict, c.text)
        };
        let (verdict, text) = table(100, 1000, 200, 1000);
        assert_eq!(verdict, Verdict::Better);
        assert!(
            text.starts_with("`warm` completes more: +10.0 points, always-valid 95% interval +"),
            "{text}"
        );
        let (verdict, text) = table(200, 1000, 100, 1000);
        assert_eq!(verdict, Verdict::Worse);
        assert!(
            text.starts_with("`warm` completes less: -10.0 points, always-valid 95% interval -"),
            "{text}"
        );
        let (verdict, text) = table(2000, 10_000, 2010, 10_000);
        assert_eq!(verdict, Verdict::NoDifference);
        assert!(
            text.starts_with("no difference of 5 points or more from `short`: +0.1 points"),
            "{text}"
        );
        let (verdict, text) = table(0, 0, 3, 10);
        assert_eq!(verdict, Verdict::NotEnoughData);
        assert_eq!(
            text,
            "not enough data yet: no enrollment in `short` (the control)"
        );
        let (_, text) = table(1, 10, 0, 0);
        let needed = stats::sample_needed(0.1);
        assert_eq!(
            text,
            format!("not enough data yet: about {needed} more per variant")
        );
    }

    #[test]
    fn three_variants_get_a_chi_square() {
        let e = experiment(
            "subject",
            &[
                ("plain".into(), 40, 434),
                ("question".into(), 52, 398),
                ("name".into(), 48, 430),
            ],
            1000,
        );
        assert_eq!(e.comparisons.len(), 2);
        assert_eq!(e.comparisons[1].variant, "name");
        assert_eq!(e.comparisons[1].versus, "plain");
        let chi = e.chi_square.unwrap();
        assert_eq!(chi.df, 2);
        assert!((chi.statistic - 3.121229408516578).abs() < 1e-9);
    }
}
