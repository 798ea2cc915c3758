//! From a [`Report`] and its [`Charts`] to what the page prints: numbers
//! formatted for people, verdicts and red flags in words, the biggest drop
//! of the funnel, and the charts' SVG. Plain data, escaped by the template.

use serde::Serialize;

use super::svg;
use crate::report::charts::{CampaignCharts, Charts};
use crate::report::model::{
    CampaignReport, ExperimentReport, FunnelStep, Group, Report, Step, Verdict,
};

#[derive(Debug, Serialize)]
pub struct Page {
    pub title: String,
    pub campaigns: Vec<CampaignView>,
}

#[derive(Debug, Serialize)]
pub struct CampaignView {
    pub name: String,
    pub title: String,
    pub goal: String,
    /// The sentences at the top: verdicts, the biggest drop, red flags.
    pub glance: Vec<Glance>,
    pub funnel_svg: String,
    pub funnel: Vec<FunnelRow>,
    pub outcomes: Vec<(String, String)>,
    pub time: Vec<(String, String)>,
    pub experiments: Vec<ExperimentView>,
    pub completion: Vec<Figure>,
    pub heatmaps: Vec<Figure>,
    pub groups: Vec<GroupingView>,
    pub red_flags: Vec<FlagView>,
}

#[derive(Debug, Serialize)]
pub struct Glance {
    /// `better`, `worse`, `unsure`, `drop`, `flag` or `ok`: the sentence's
    /// colour.
    pub class: &'static str,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct FunnelRow {
    pub step: &'static str,
    pub count: u64,
    pub from_previous: String,
    pub from_enrolled: String,
}

#[derive(Debug, Serialize)]
pub struct ExperimentView {
    pub name: String,
    pub variants: Vec<VariantRow>,
    pub comparisons: Vec<ComparisonRow>,
    pub chi_square: Option<String>,
    pub sample_needed: Option<u64>,
    pub decided: Option<String>,
    pub svg: String,
}

#[derive(Debug, Serialize)]
pub struct VariantRow {
    pub name: String,
    pub n: u64,
    pub completed: u64,
    pub rate: String,
    pub interval: String,
}

#[derive(Debug, Serialize)]
pub struct ComparisonRow {
    pub variant: String,
    pub versus: String,
    pub difference: String,
    pub interval: String,
    pub p_value: String,
    pub always_valid: String,
    pub verdict: &'static str,
    pub class: &'static str,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct Figure {
    pub caption: String,
    pub svg: String,
    /// Series names and their colours (`#rrggbb`), shown under the chart.
    pub legend: Vec<(String, String)>,
}

#[derive(Debug, Serialize)]
pub struct GroupingView {
    pub name: String,
    pub steps: Vec<&'static str>,
    pub rows: Vec<GroupRow>,
}

#[derive(Debug, Serialize)]
pub struct GroupRow {
    pub key: String,
    pub counts: Vec<u64>,
    pub completion: String,
    pub median: String,
}

#[derive(Debug, Serialize)]
pub struct FlagView {
    pub what: String,
    pub value: String,
    pub threshold: String,
    pub base: u64,
    pub advice: String,
}

/// A rate as a percentage with one decimal: `35.0%`; `–` when absent.
pub fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".to_string(), |r| format!("{:.1}%", r * 100.0))
}

/// A difference of rates in percentage points, signed: `+6.0`.
pub fn points(difference: Option<f64>) -> String {
    difference.map_or_else(|| "–".to_string(), |d| format!("{:+.1}", d * 100.0))
}

/// A rate's interval: `28.7% to 41.8%`.
pub fn rate_interval(interval: Option<[f64; 2]>) -> String {
    interval.map_or_else(
        || "–".to_string(),
        |[lo, hi]| format!("{} to {}", percent(Some(lo)), percent(Some(hi))),
    )
}

/// A difference's interval in points: `+2.3 to +9.9`.
pub fn difference_interval(interval: Option<[f64; 2]>) -> String {
    interval.map_or_else(
        || "–".to_string(),
        |[lo, hi]| format!("{} to {}", points(Some(lo)), points(Some(hi))),
    )
}

/// Words written for a terminal, for a page: `name` becomes “name”.
fn quoted(text: &str) -> String {
    let mut open = false;
    text.chars()
        .map(|c| match c {
            '`' => {
                open = !open;
                if open {
                    '“'
                } else {
                    '”'
                }
            }
            c => c,
        })
        .collect()
}

fn p_value(p: Option<f64>) -> String {
    match p {
        None => "–".to_string(),
        Some(p) if p < 0.001 => "< 0.001".to_string(),
        Some(p) => format!("{p:.3}"),
    }
}

fn duration(seconds: Option<f64>) -> String {
    let Some(s) = seconds else {
        return "–".to_string();
    };
    if s < 3600.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} days", s / 86_400.0)
    }
}

fn verdict_words(verdict: Verdict) -> (&'static str, &'static str) {
    match verdict {
        Verdict::Better => ("better", "better"),
        Verdict::Worse => ("worse", "worse"),
        Verdict::NoDifference => ("no difference", "unsure"),
        Verdict::NotEnoughData => ("not enough data", "unsure"),
    }
}

/// What those who did not reach `step` did not do.
fn missed(step: Step) -> &'static str {
    match step {
        Step::Enrolled => "were not enrolled",
        Step::Invited => "were not invited yet",
        Step::Delivered => "had no delivery confirmed",
        Step::Opened => "did not open",
        Step::Clicked => "did not click",
        Step::Started => "did not start",
        Step::Completed => "did not complete",
    }
}

/// Where the funnel loses the most candidates, in words: the step before
/// which the most enrollments stop (the earlier step on a tie), or `None`
/// when no step loses anyone.
pub fn biggest_drop(funnel: &[FunnelStep]) -> Option<String> {
    let (before, after) = funnel
        .windows(2)
        .map(|w| (&w[0], &w[1]))
        .filter(|(a, b)| a.count > b.count)
        .fold(
            None::<(&FunnelStep, &FunnelStep)>,
            |best, (a, b)| match best {
                Some((x, y)) if x.count - y.count >= a.count - b.count => Some((x, y)),
                _ => Some((a, b)),
            },
        )?;
    let lost = before.count - after.count;
    Some(format!(
        "Most candidates drop off between {} and {}: {lost} of {} {} ({} {}).",
        before.step.name(),
        after.step.name(),
        before.count,
        before.step.name(),
        percent(Some(lost as f64 / before.count as f64)),
        missed(after.step),
    ))
}

fn flag_words(kind: &str, channel: Option<&str>) -> String {
    let what = match kind {
        "low_open_rate" => "Low open rate",
        "high_start_low_completion" => "Many start, few complete",
        "high_bounce_rate" => "High bounce rate",
        "high_opt_out_rate" => "High opt-out rate",
        "high_failure_rate" => "High failure rate",
        other => other,
    };
    match channel {
        Some(c) => format!("{what} on {c}"),
        None => what.to_string(),
    }
}

pub fn page(report: &Report, charts: &Charts) -> Page {
    let campaigns: Vec<CampaignView> = report
        .campaigns
        .iter()
        .map(|c| {
            let charts = charts.campaigns.iter().find(|x| x.campaign == c.campaign);
            campaign(c, charts)
        })
        .collect();
    let title = match campaigns.as_slice() {
        [one] => format!("Report: {}", one.title),
        _ => "Campaign report".to_string(),
    };
    Page { title, campaigns }
}

fn campaign(c: &CampaignReport, charts: Option<&CampaignCharts>) -> CampaignView {
    let mut glance = Vec::new();
    for experiment in &c.experiments {
        if let Some(d) = &experiment.decided {
            glance.push(Glance {
                class: "better",
                text: format!("{}: decided for {} on {}.", experiment.name, d.winner, d.at),
            });
        }
        for comparison in &experiment.comparisons {
            glance.push(Glance {
                class: verdict_words(comparison.verdict).1,
                text: format!("{}: {}", experiment.name, quoted(&comparison.text)),
            });
        }
    }
    match biggest_drop(&c.funnel) {
        Some(text) => glance.push(Glance {
            class: "drop",
            text,
        }),
        None => glance.push(Glance {
            class: "ok",
            text: "No step of the funnel loses anyone.".into(),
        }),
    }
    glance.push(match c.red_flags.len() {
        0 => Glance {
            class: "ok",
            text: "No red flags.".into(),
        },
        n => Glance {
            class: "flag",
            text: format!(
                "{n} red flag{}: {}.",
                if n == 1 { "" } else { "s" },
                c.red_flags
                    .iter()
                    .map(|f| flag_words(&f.kind, f.channel.as_deref()).to_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    });

    let o = &c.outcomes;
    let mut outcomes = vec![
        ("running".to_string(), o.running.to_string()),
        ("opted out".to_string(), o.opted_out.to_string()),
        ("bounced".to_string(), o.bounced.to_string()),
        ("failed".to_string(), o.failed.to_string()),
    ];
    outcomes.extend(
        o.exited
            .iter()
            .map(|(state, n)| (format!("exited in {state}"), n.to_string())),
    );
    let t = &c.time_to_completion;
    let time = vec![
        ("completed after an invite".to_string(), t.count.to_string()),
        ("median".to_string(), duration(t.median_s)),
        ("90th percentile".to_string(), duration(t.p90_s)),
        (
            "within 24 h of the invite".to_string(),
            percent(t.within_24h),
        ),
        ("within 48 h".to_string(), percent(t.within_48h)),
        ("within 72 h".to_string(), percent(t.within_72h)),
    ];

    let completion = charts
        .map(|ch| {
            ch.completion
                .iter()
                .filter(|chart| !chart.days.is_empty())
                .map(|chart| Figure {
                    caption: match &chart.experiment {
                        Some(e) => format!(
                            "Completion over time by variant of {e}: of those enrolled up to each day, the share who completed"
                        ),
                        None => "Completion over time: of those enrolled up to each day, the share who completed".into(),
                    },
                    svg: svg::completion(chart),
                    legend: chart
                        .series
                        .iter()
                        .enumerate()
                        .map(|(i, s)| (s.name.clone(), svg::css(svg::series_colour(i))))
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    let heatmaps = charts
        .map(|ch| {
            vec![
                Figure {
                    caption: format!(
                        "Invites (first message) by weekday and hour, in each candidate's zone, darker for more{}",
                        busiest(&ch.heatmap.invites)
                    ),
                    svg: svg::heatmap(
                        "Invites by weekday and hour",
                        &ch.heatmap.invites,
                        svg::INVITES,
                    ),
                    legend: Vec::new(),
                },
                Figure {
                    caption: format!(
                        "Completions by weekday and hour, in each candidate's zone, darker for more{}",
                        busiest(&ch.heatmap.completions)
                    ),
                    svg: svg::heatmap(
                        "Completions by weekday and hour",
                        &ch.heatmap.completions,
                        svg::COMPLETIONS,
                    ),
                    legend: Vec::new(),
                },
            ]
        })
        .unwrap_or_default();

    CampaignView {
        name: c.campaign.clone(),
        title: c.title.clone().unwrap_or_else(|| c.campaign.clone()),
        goal: c.goal.clone(),
        glance,
        funnel_svg: svg::funnel(&c.funnel),
        funnel: c.funnel.iter().map(funnel_row).collect(),
        outcomes,
        time,
        experiments: c.experiments.iter().map(experiment).collect(),
        completion,
        heatmaps,
        groups: c
            .groups
            .iter()
            .map(|(name, groups)| grouping(name, groups))
            .collect(),
        red_flags: c
            .red_flags
            .iter()
            .map(|f| FlagView {
                what: flag_words(&f.kind, f.channel.as_deref()),
                value: percent(Some(f.value)),
                threshold: percent(Some(f.threshold)),
                base: f.base,
                advice: quoted(&f.advice),
            })
            .collect(),
    }
}

/// `; busiest: tue 09:00 (34)`, or nothing when the map is empty.
fn busiest(cells: &[Vec<u64>]) -> String {
    let best = cells
        .iter()
        .enumerate()
        .flat_map(|(d, row)| row.iter().enumerate().map(move |(h, n)| (*n, d, h)))
        .filter(|(n, _, _)| *n > 0)
        // The earliest of equals: max_by_key keeps the last, so reverse.
        .rev()
        .max_by_key(|(n, _, _)| *n);
    match best {
        Some((n, d, h)) => format!(
            "; busiest: {} {h:02}:00 ({n})",
            crate::report::charts::WEEKDAYS[d]
        ),
        None => " (none yet)".into(),
    }
}

fn funnel_row(s: &FunnelStep) -> FunnelRow {
    FunnelRow {
        step: s.step.name(),
        count: s.count,
        from_previous: percent(s.rate_from_previous),
        from_enrolled: percent(s.rate_from_enrolled),
    }
}

fn experiment(e: &ExperimentReport) -> ExperimentView {
    ExperimentView {
        name: e.name.clone(),
        variants: e
            .variants
            .iter()
            .map(|v| VariantRow {
                name: v.name.clone(),
                n: v.n,
                completed: v.completed,
                rate: percent(v.rate),
                interval: rate_interval(v.interval),
            })
            .collect(),
        comparisons: e
            .comparisons
            .iter()
            .map(|c| {
                let (verdict, class) = verdict_words(c.verdict);
                ComparisonRow {
                    variant: c.variant.clone(),
                    versus: c.versus.clone(),
                    difference: points(c.difference),
                    interval: difference_interval(c.interval),
                    p_value: p_value(c.p_value),
                    always_valid: difference_interval(c.always_valid_interval),
                    verdict,
                    class,
                    text: quoted(&c.text),
                }
            })
            .collect(),
        chi_square: e.chi_square.as_ref().map(|x| {
            format!(
                "chi-square {:.2} on {} degrees of freedom, p = {}",
                x.statistic,
                x.df,
                p_value(Some(x.p_value))
            )
        }),
        sample_needed: e.sample_needed,
        decided: e
            .decided
            .as_ref()
            .map(|d| format!("Decided for {} on {}: {}", d.winner, d.at, d.because)),
        svg: svg::intervals(e),
    }
}

fn grouping(name: &str, groups: &[Group]) -> GroupingView {
    GroupingView {
        name: name.to_string(),
        steps: Step::ALL.iter().map(|s| s.name()).collect(),
        rows: groups
            .iter()
            .map(|g| GroupRow {
                key: g.key.clone(),
                counts: g.funnel.iter().map(|s| s.count).collect(),
                completion: percent(g.funnel.last().and_then(|s| s.rate_from_enrolled)),
                median: duration(g.time_to_completion.median_s),
            })
            .collect(),
    }
}
