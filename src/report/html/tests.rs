//! The HTML report on a report built by hand: self-contained, every number
//! of the experiment table on the page, names from data escaped, the
//! verdicts and the biggest drop said in words at the top.

use indexmap::IndexMap;

use super::*;
use crate::report::charts::{CampaignCharts, CompletionChart, DayPoint, Heatmap, Series};
use crate::report::model::*;

const HOSTILE: &str = "<script>alert('x')</script> & \"Dallas\"";

fn step(step: Step, count: u64, previous: Option<u64>, enrolled: u64) -> FunnelStep {
    FunnelStep {
        step,
        count,
        rate_from_previous: previous.filter(|p| *p > 0).map(|p| count as f64 / p as f64),
        rate_from_enrolled: Some(count as f64 / enrolled as f64),
    }
}

fn funnel() -> Vec<FunnelStep> {
    let counts = [400, 396, 380, 190, 150, 140, 120];
    Step::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| step(*s, counts[i], i.checked_sub(1).map(|p| counts[p]), 400))
        .collect()
}

fn outcomes() -> Outcomes {
    Outcomes {
        opted_out: 3,
        bounced: 1,
        failed: 0,
        exited: [("expired".to_string(), 120)].into(),
        running: 80,
    }
}

fn time() -> TimeToCompletion {
    TimeToCompletion {
        count: 118,
        median_s: Some(30_600.0),
        p90_s: Some(172_800.0),
        within_24h: Some(0.31),
        within_48h: Some(0.36),
        within_72h: Some(0.39),
    }
}

fn experiment() -> ExperimentReport {
    ExperimentReport {
        name: "copy".into(),
        variants: vec![
            VariantRate {
                name: "short".into(),
                n: 200,
                completed: 48,
                rate: Some(0.24),
                interval: Some([0.1863, 0.3034]),
            },
            VariantRate {
                name: "<b>warm</b>".into(),
                n: 200,
                completed: 72,
                rate: Some(0.36),
                interval: Some([0.2958, 0.4296]),
            },
        ],
        comparisons: vec![Comparison {
            variant: "<b>warm</b>".into(),
            versus: "short".into(),
            difference: Some(0.12),
            interval: Some([0.0316, 0.2084]),
            p_value: Some(0.00873),
            always_valid_interval: Some([0.0123, 0.2277]),
            verdict: Verdict::Better,
            text: "`<b>warm</b>` completes more: +12.0 points (always-valid 95% interval +1.2 to +22.8)"
                .into(),
        }],
        chi_square: None,
        sample_needed: Some(1131),
        decided: None,
    }
}

fn report() -> Report {
    let mut groups = IndexMap::new();
    groups.insert(
        "source".to_string(),
        vec![Group {
            key: "<i>indeed</i>".into(),
            funnel: funnel(),
            outcomes: outcomes(),
            time_to_completion: time(),
        }],
    );
    Report {
        campaigns: vec![CampaignReport {
            campaign: "warehouse_associate".into(),
            title: Some(HOSTILE.into()),
            goal: "completed".into(),
            funnel: funnel(),
            outcomes: outcomes(),
            time_to_completion: time(),
            groups,
            experiments: vec![experiment()],
            red_flags: vec![RedFlag {
                kind: "low_open_rate".into(),
                channel: Some("email".into()),
                value: 0.12,
                threshold: 0.2,
                base: 64,
                advice: "Check that mail lands in the inbox & not in spam folders.".into(),
            }],
        }],
    }
}

fn charts() -> Charts {
    let point = |e, c, r| DayPoint {
        enrolled: e,
        completed: c,
        cumulative_rate: Some(r),
    };
    let mut heatmap = Heatmap {
        invites: vec![vec![0; 24]; 7],
        completions: vec![vec![0; 24]; 7],
    };
    heatmap.invites[1][9] = 34;
    heatmap.completions[3][19] = 12;
    Charts {
        campaigns: vec![CampaignCharts {
            campaign: "warehouse_associate".into(),
            completion: vec![CompletionChart {
                experiment: Some("copy".into()),
                days: vec!["2026-10-05".into(), "2026-10-06".into()],
                series: vec![
                    Series {
                        name: "short".into(),
                        points: vec![point(100, 20, 0.2), point(100, 28, 0.24)],
                    },
                    Series {
                        name: "<b>warm</b>".into(),
                        points: vec![point(100, 30, 0.3), point(100, 42, 0.36)],
                    },
                ],
            }],
            heatmap,
        }],
    }
}

#[test]
fn the_page_fetches_nothing() {
    let html = render(&report(), &charts());
    for external in [
        "http://", "https://", "src=", "href=", "@import", "url(", "<script", "<link", "<img",
        "<iframe", "//fonts",
    ] {
        assert!(
            !html.to_lowercase().contains(external),
            "the page holds {external:?}"
        );
    }
    assert!(html.starts_with("<!doctype html>"));
}

#[test]
fn every_number_of_the_experiment_table_is_on_the_page() {
    let html = render(&report(), &charts());
    let e = experiment();
    let mut numbers = vec![e.sample_needed.unwrap().to_string()];
    for v in &e.variants {
        numbers.push(format!("<td>{}</td>", v.n));
        numbers.push(format!("<td>{}</td>", v.completed));
        numbers.push(percent(v.rate));
        numbers.push(rate_interval(v.interval));
    }
    for c in &e.comparisons {
        numbers.push(points(c.difference));
        numbers.push(difference_interval(c.interval));
        numbers.push(difference_interval(c.always_valid_interval));
    }
    numbers.push("0.009".into());
    for n in &numbers {
        assert!(html.contains(n.as_str()), "{n:?} is not on the page");
    }
    assert_eq!(percent(Some(0.24)), "24.0%");
    assert_eq!(rate_interval(Some([0.1863, 0.3034])), "18.6% to 30.3%");
    assert_eq!(difference_interval(Some([0.0123, 0.2277])), "+1.2 to +22.8");
}

#[test]
fn names_from_data_are_escaped() {
    let html = render(&report(), &charts());
    assert!(!html.contains("<script>alert"), "the title is escaped");
    assert!(html.contains("&lt;script&gt;alert("));
    assert!(!html.contains("<b>warm</b>"), "variant names are escaped");
    assert!(!html.contains("<i>indeed</i>"), "group keys are escaped");
    assert!(
        html.contains("&lt;b&gt;warm&lt;&#x2f;b&gt;") || html.contains("&lt;b&gt;warm&lt;/b&gt;")
    );
}

#[test]
fn the_top_says_who_wins_and_where_candidates_drop_off() {
    let html = render(&report(), &charts());
    let glance = &html[html.find("At a glance").unwrap()..html.find("<h3>Funnel").unwrap()];
    assert!(
        glance.contains("copy: “&lt;b&gt;warm&lt;&#x2f;b&gt;” completes more: +12.0 points"),
        "{glance}"
    );
    assert!(glance.contains("class=\"better\""));
    assert!(
        glance.contains(
            "Most candidates drop off between delivered and opened: 190 of 380 delivered (50.0% did not open)."
        ),
        "{glance}"
    );
    assert!(glance.contains("1 red flag: low open rate on email."));
}

#[test]
fn the_charts_are_inline_svg() {
    let html = render(&report(), &charts());
    // Funnel, intervals, completion over time, two heatmaps.
    assert_eq!(html.matches("<svg ").count(), 5, "{html}");
    assert_eq!(html.matches("</svg>").count(), 5);
    assert!(html.contains("aria-label=\"The funnel\""));
    assert!(html.contains("aria-label=\"Completion over time by variant of copy\""));
    assert!(html.contains("busiest: tue 09:00 (34)"));
    // Every row of the intervals is labelled, a single comparison too.
    let intervals = &html[html.find("Intervals of experiment copy").unwrap()..];
    let intervals = &intervals[..intervals.find("</svg>").unwrap()];
    for label in ["short", "warm", "− short"] {
        assert!(intervals.contains(label), "{label:?} in {intervals}");
    }
    assert!(html.contains("busiest: thu 19:00 (12)"));
}

#[test]
fn the_biggest_drop_is_the_most_candidates_lost_the_earlier_on_a_tie() {
    let tie: Vec<FunnelStep> = [10, 8, 6, 6, 6, 6, 6]
        .iter()
        .zip(Step::ALL)
        .map(|(n, s)| step(s, *n, None, 10))
        .collect();
    assert_eq!(
        biggest_drop(&tie).unwrap(),
        "Most candidates drop off between enrolled and invited: 2 of 10 enrolled (20.0% were not invited yet)."
    );
    let flat: Vec<FunnelStep> = Step::ALL.iter().map(|s| step(*s, 0, None, 1)).collect();
    assert_eq!(biggest_drop(&flat), None);
}

#[test]
fn an_empty_report_renders() {
    let html = render(&Report { campaigns: vec![] }, &Charts { campaigns: vec![] });
    assert!(html.contains("No campaign in this report."));
    let mut empty = report();
    let c = &mut empty.campaigns[0];
    c.funnel = Step::ALL.iter().map(|s| step(*s, 0, None, 1)).collect();
    c.experiments.clear();
    c.red_flags.clear();
    let html = render(&empty, &Charts { campaigns: vec![] });
    assert!(html.contains("No red flags."));
    assert!(html.contains("No step of the funnel loses anyone."));
}

#[test]
fn a_decided_experiment_says_so_at_the_top_and_in_its_table() {
    let mut decided = report();
    decided.campaigns[0].experiments[0].decided = Some(Decision {
        winner: "<b>warm</b>".into(),
        at: "2026-10-20T09:00:00Z".into(),
        because: "+12.0 points, always-valid interval +1.2 to +22.8".into(),
    });
    let html = render(&decided, &charts());
    let glance = &html[html.find("At a glance").unwrap()..html.find("<h3>Funnel").unwrap()];
    assert!(
        glance.contains("copy: decided for &lt;b&gt;warm&lt;&#x2f;b&gt; on 2026-10-20T09:00:00Z."),
        "{glance}"
    );
    assert!(html.contains(
        "Decided for &lt;b&gt;warm&lt;&#x2f;b&gt; on 2026-10-20T09:00:00Z: +12.0 points"
    ));
}
