//! What the charts of the HTML report (and the dashboard) need beyond a
//! [`Report`](super::model::Report): completion over time per variant and
//! when candidates are invited and complete (weekday × hour). Computed from
//! the same summaries and the same cohort as the report (REPORT.md §2), so
//! a chart never disagrees with the report's tables: a variant's last
//! cumulative point is its completed / enrolled over the whole cohort.
//!
//! Days are UTC dates of the `enrolled` line; weekday and hour are read
//! in the enrollment's zone by [`Zones`], the rule `--by weekday` and
//! `--by hour` follow (REPORT.md §5), and the cohort is
//! [`cohorts`], the report's own.
//! Like the `variant:` grouping, completion over time counts every
//! enrollment of a decided experiment, those after the decision too.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::compute::{cohorts, Options, Zones};
use super::fold::{Header, Summary};
use super::model::Step;

/// The charts of every campaign in the cohort, in name order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Charts {
    pub campaigns: Vec<CampaignCharts>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignCharts {
    pub campaign: String,
    /// One chart per experiment, in the order written; one chart named
    /// `None` with a single series `everyone` when the campaign has none.
    pub completion: Vec<CompletionChart>,
    /// First sends and first goal events by weekday and hour.
    pub heatmap: Heatmap,
}

/// Completion over time: for each day from the cohort's first enrollment
/// day to its last, per variant, how many were enrolled that day and how
/// many of them completed, and the cumulative rate up to that day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionChart {
    /// The experiment, or `None` for the whole campaign.
    pub experiment: Option<String>,
    /// The days of the x axis, `YYYY-MM-DD` (UTC), with no gaps.
    pub days: Vec<String>,
    /// One series per variant, in the order written.
    pub series: Vec<Series>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    /// One point per day of [`CompletionChart::days`].
    pub points: Vec<DayPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayPoint {
    /// Enrolled that day.
    pub enrolled: u64,
    /// Of those, how many completed (furthest step `completed`).
    pub completed: u64,
    /// Completed / enrolled of every enrollment up to and including that
    /// day; `None` before the variant's first enrollment.
    pub cumulative_rate: Option<f64>,
}

/// Counts by weekday (`mon` first) × hour (`00` first) in the enrollment's
/// zone: `invites[weekday][hour]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heatmap {
    /// First `sent` of each enrollment.
    pub invites: Vec<Vec<u64>>,
    /// First goal event of each enrollment.
    pub completions: Vec<Vec<u64>>,
}

pub use super::groups::WEEKDAYS;

impl Heatmap {
    fn empty() -> Heatmap {
        Heatmap {
            invites: vec![vec![0; 24]; 7],
            completions: vec![vec![0; 24]; 7],
        }
    }
}

/// The charts over the cohort `options` selects (campaign, since, until).
/// Campaigns are those with a header or an enrollment in the cohort.
pub fn charts<'s>(
    headers: &BTreeMap<String, Header>,
    summaries: impl IntoIterator<Item = &'s Summary>,
    options: &Options,
) -> Charts {
    let campaigns = cohorts(headers, summaries, options)
        .into_iter()
        .map(|(name, cohort)| campaign(name, headers.get(name), &cohort))
        .collect();
    Charts { campaigns }
}

fn campaign(name: &str, header: Option<&Header>, cohort: &[&Summary]) -> CampaignCharts {
    let days = days(cohort);
    let experiments = header.map(|h| h.experiments.as_slice()).unwrap_or(&[]);
    let completion = if experiments.is_empty() {
        vec![completion(
            None,
            &["everyone".to_string()],
            &days,
            cohort,
            |_| Some(0),
        )]
    } else {
        experiments
            .iter()
            .map(|(experiment, variants)| {
                completion(Some(experiment), variants, &days, cohort, |s| {
                    let variant = s.variants.get(experiment.as_str())?;
                    variants.iter().position(|v| variant == v)
                })
            })
            .collect()
    };
    let mut heatmap = Heatmap::empty();
    let mut zones = Zones::default();
    for summary in cohort {
        if let Some((at, _)) = &summary.first_sent {
            if let Some((d, h)) = zones.weekday_hour(summary, *at) {
                heatmap.invites[d][h] += 1;
            }
        }
        if let Some(at) = summary.first_goal {
            if let Some((d, h)) = zones.weekday_hour(summary, at) {
                heatmap.completions[d][h] += 1;
            }
        }
    }
    CampaignCharts {
        campaign: name.to_string(),
        completion,
        heatmap,
    }
}

/// Every UTC day from the cohort's first enrollment to its last.
fn days(cohort: &[&Summary]) -> Vec<NaiveDate> {
    let mut dates = cohort.iter().filter_map(|s| day(s.enrolled_at));
    let Some(first) = dates.next() else {
        return Vec::new();
    };
    let (first, last) = dates.fold((first, first), |(lo, hi), d| (lo.min(d), hi.max(d)));
    first.iter_days().take_while(|d| *d <= last).collect()
}

fn day(at: i64) -> Option<NaiveDate> {
    DateTime::<Utc>::from_timestamp_millis(at).map(|t| t.date_naive())
}

fn completion(
    experiment: Option<&String>,
    variants: &[String],
    days: &[NaiveDate],
    cohort: &[&Summary],
    variant_of: impl Fn(&Summary) -> Option<usize>,
) -> CompletionChart {
    // counts[variant][day] = (enrolled, completed)
    let mut counts = vec![vec![(0u64, 0u64); days.len()]; variants.len()];
    let first = days.first().copied();
    for summary in cohort {
        let (Some(v), Some(d), Some(first)) =
            (variant_of(summary), day(summary.enrolled_at), first)
        else {
            continue;
        };
        let Ok(index) = usize::try_from((d - first).num_days()) else {
            continue;
        };
        let cell = &mut counts[v][index];
        cell.0 += 1;
        if summary.furthest == Step::Completed {
            cell.1 += 1;
        }
    }
    let series = variants
        .iter()
        .zip(counts)
        .map(|(name, days)| {
            let (mut enrolled, mut completed) = (0u64, 0u64);
            let points = days
                .into_iter()
                .map(|(e, c)| {
                    enrolled += e;
                    completed += c;
                    DayPoint {
                        enrolled: e,
                        completed: c,
                        cumulative_rate: (enrolled > 0).then(|| completed as f64 / enrolled as f64),
                    }
                })
                .collect();
            Series {
                name: name.clone(),
                points,
            }
        })
        .collect();
    CompletionChart {
        experiment: experiment.cloned(),
        days: days
            .iter()
            .map(|d| d.format("%Y-%m-%d").to_string())
            .collect(),
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fold::Fold;
    use crate::report::line::Line;

    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    fn line(kind: &str, when: &str, candidate: &str) -> Line {
        Line {
            kind: kind.into(),
            at: Some(at(when)),
            campaign: Some("c".into()),
            candidate: Some(candidate.into()),
            ..Line::default()
        }
    }

    fn enrolled(when: &str, candidate: &str, variant: &str, zone: Option<&str>) -> Line {
        Line {
            variants: Some([("copy".to_string(), variant.to_string())].into()),
            timezone: zone.map(str::to_string),
            ..line("enrolled", when, candidate)
        }
    }

    fn sent(when: &str, candidate: &str) -> Line {
        Line {
            channel: Some("email".into()),
            ..line("sent", when, candidate)
        }
    }

    fn fold(lines: &[Line]) -> (BTreeMap<String, Header>, Vec<Summary>) {
        let mut fold = Fold::new();
        fold.push(&Line {
            kind: "campaign".into(),
            campaign: Some("c".into()),
            goal: Some("completed".into()),
            experiments: Some(
                [(
                    "copy".to_string(),
                    vec!["short".to_string(), "warm".to_string()],
                )]
                .into_iter()
                .collect(),
            ),
            ..Line::default()
        });
        for l in lines {
            fold.push(l);
        }
        fold.finish()
    }

    #[test]
    fn completion_is_cumulative_per_variant_over_every_day() {
        let (headers, summaries) = fold(&[
            enrolled("2026-10-05T09:00:00Z", "a", "short", None),
            enrolled("2026-10-05T10:00:00Z", "b", "warm", None),
            line("completed", "2026-10-05T12:00:00Z", "b"),
            // No one on the 6th: the day is still on the axis.
            enrolled("2026-10-07T09:00:00Z", "c", "short", None),
            line("completed", "2026-10-08T09:00:00Z", "c"),
            enrolled("2026-10-07T11:00:00Z", "d", "warm", None),
        ]);
        let charts = charts(&headers, &summaries, &Options::default());
        let chart = &charts.campaigns[0].completion[0];
        assert_eq!(chart.experiment.as_deref(), Some("copy"));
        assert_eq!(chart.days, ["2026-10-05", "2026-10-06", "2026-10-07"]);
        let short = &chart.series[0];
        assert_eq!(short.name, "short");
        let rates: Vec<_> = short.points.iter().map(|p| p.cumulative_rate).collect();
        assert_eq!(rates, [Some(0.0), Some(0.0), Some(0.5)]);
        assert_eq!(short.points[2].enrolled, 1);
        assert_eq!(short.points[2].completed, 1);
        let warm: Vec<_> = chart.series[1]
            .points
            .iter()
            .map(|p| p.cumulative_rate)
            .collect();
        assert_eq!(warm, [Some(1.0), Some(1.0), Some(0.5)]);
    }

    #[test]
    fn the_cohort_is_the_reports_and_days_start_at_its_first_enrollment() {
        let (headers, summaries) = fold(&[
            enrolled("2026-10-05T09:00:00Z", "a", "short", None),
            enrolled("2026-10-07T09:00:00Z", "b", "warm", None),
            enrolled("2026-10-09T09:00:00Z", "c", "warm", None),
        ]);
        let options = Options {
            since: Some(at("2026-10-06T00:00:00Z")),
            until: Some(at("2026-10-09T00:00:00Z")),
            ..Options::default()
        };
        let charts = charts(&headers, &summaries, &options);
        let chart = &charts.campaigns[0].completion[0];
        assert_eq!(chart.days, ["2026-10-07"]);
        assert_eq!(chart.series[0].points[0].cumulative_rate, None);
        assert_eq!(chart.series[1].points[0].enrolled, 1);

        let other = Options {
            campaign: Some("elsewhere".into()),
            ..Options::default()
        };
        assert!(charts_of(&headers, &summaries, &other).is_empty());
    }

    fn charts_of(
        headers: &BTreeMap<String, Header>,
        summaries: &[Summary],
        options: &Options,
    ) -> Vec<CampaignCharts> {
        charts(headers, summaries, options).campaigns
    }

    #[test]
    fn the_heatmap_reads_first_sends_and_goals_in_the_enrollments_zone() {
        let (headers, summaries) = fold(&[
            // 2026-10-05 is a Monday; 02:30 UTC is Sunday 21:30 in Chicago.
            enrolled(
                "2026-10-05T02:00:00Z",
                "a",
                "short",
                Some("America/Chicago"),
            ),
            sent("2026-10-05T02:30:00Z", "a"),
            sent("2026-10-05T09:00:00Z", "a"),
            line("completed", "2026-10-05T14:10:00Z", "a"),
            line("completed", "2026-10-06T14:10:00Z", "a"),
            enrolled("2026-10-05T02:00:00Z", "b", "warm", Some("Mars/Olympus")),
            sent("2026-10-05T02:30:00Z", "b"),
        ]);
        let heatmap = &charts(&headers, &summaries, &Options::default()).campaigns[0].heatmap;
        assert_eq!(heatmap.invites[6][21], 1, "Sunday 21h in Chicago");
        assert_eq!(heatmap.invites[0][2], 1, "an unknown zone reads as UTC");
        assert_eq!(heatmap.invites.iter().flatten().sum::<u64>(), 2);
        assert_eq!(heatmap.completions[0][9], 1, "Monday 09h in Chicago");
        assert_eq!(heatmap.completions.iter().flatten().sum::<u64>(), 1);
    }

    #[test]
    fn a_campaign_without_experiments_has_one_series_for_everyone() {
        let mut fold = Fold::new();
        fold.push(&Line {
            kind: "campaign".into(),
            campaign: Some("c".into()),
            goal: Some("completed".into()),
            ..Line::default()
        });
        fold.push(&line("enrolled", "2026-10-05T09:00:00Z", "a"));
        let (headers, summaries) = fold.finish();
        let charts = charts(&headers, &summaries, &Options::default());
        let chart = &charts.campaigns[0].completion[0];
        assert_eq!(chart.experiment, None);
        assert_eq!(chart.series[0].name, "everyone");
        assert_eq!(chart.series[0].points[0].cumulative_rate, Some(0.0));
    }
}
