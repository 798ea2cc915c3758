//! The decider: the daemon's watch over `until decided` experiments.
//!
//! Once when the daemon starts and then every `[decided] every_secs`, each
//! `until decided` experiment of a running campaign that has no decision
//! yet is read out: its table (variant, completed, enrolled) over the
//! campaign's enrollments, from the store's summaries
//! ([`crate::report::stored::summaries`]), goes through the report's one
//! implementation of the statistics ([`crate::report::compute::experiment`]),
//! and [`rule`] says whether it is decided. A decision goes to the core
//! ([`crate::runtime::core::DecideRequest`]), which stores it in one commit;
//! from then on new enrollments get the winner.
//!
//! The rule (README, "Where LANGUAGE.md is silent"): the experiment is
//! decided for a variant when the always-valid verdict finds it `better`
//! than the control and no other variant beats it on the always-valid
//! interval (with several `better` variants, the one that no other beats;
//! when more than one is unbeaten, it waits); or for the control when
//! every other variant is `worse` than it. Reading the table every minute
//! is what the always-valid interval is for: however often it is read, a
//! variant no better than the control is declared `better` rarely.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use tracing::{info, warn};

use super::api::DecisionView;
use super::campaigns::Campaigns;
use super::core::{DecideRequest, Decided};
use super::daemon::Handle;
use crate::config::DecidedConfig;
use crate::engine::machine::Experiment;
use crate::report::compute::{self, Options};
use crate::report::fold::{HeaderDecision, Step, Summary};
use crate::report::model::{ExperimentReport, Verdict};
use crate::report::stats;
use crate::store::{Decision, Store, StoreError};

/// What [`rule`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub winner: String,
    /// Why, in words, with the numbers.
    pub because: String,
}

/// Watches the experiments until the daemon stops (the task is aborted).
pub async fn watch(handle: Handle, config: DecidedConfig) {
    let every = StdDuration::from_secs(config.every_secs.max(1));
    loop {
        check(&handle, config.plan).await;
        tokio::time::sleep(every).await;
    }
}

/// One look at every undecided `until decided` experiment.
pub async fn check(handle: &Handle, plan: u64) {
    let (store, campaigns, _) = handle.reading();
    let work = tokio::task::spawn_blocking(move || choices(&store, &campaigns, plan)).await;
    let found = match work {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            warn!(%e, "cannot read the experiments' tables");
            return;
        }
        Err(e) => {
            warn!(%e, "reading the experiments' tables failed");
            return;
        }
    };
    for (campaign, experiment, choice) in found {
        let req = DecideRequest {
            campaign: campaign.clone(),
            experiment: experiment.clone(),
            winner: choice.winner,
            because: choice.because,
        };
        match handle.decide(req).await {
            Ok(Decided::Stored(d)) => {
                info!(campaign = %d.campaign, "{}", d.describe());
            }
            Ok(Decided::Already(_)) => {}
            Ok(Decided::Refused(why)) => {
                warn!(%campaign, %experiment, %why, "decision not stored")
            }
            Err(e) => warn!(%campaign, %experiment, %e, "decision not stored"),
        }
    }
}

/// The decisions to take now: (campaign, experiment, choice) of every
/// undecided `until decided` experiment whose table decides it.
pub fn choices<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    plan: u64,
) -> Result<Vec<(String, String, Choice)>, StoreError> {
    let decided: Vec<(String, String)> = store
        .decisions()?
        .into_iter()
        .map(|d| (d.campaign, d.experiment))
        .collect();
    let mut out = Vec::new();
    for (name, campaign) in campaigns.iter() {
        let pending: Vec<&Experiment> = (campaign.machine.experiments.iter())
            .filter(|e| e.until_decided && e.variants.len() > 1)
            .filter(|e| !decided.contains(&(name.clone(), e.name.clone())))
            .collect();
        if pending.is_empty() {
            continue;
        }
        let options = Options {
            campaign: Some(name.clone()),
            ..Options::default()
        };
        let (_, summaries) = crate::report::stored::summaries(store, campaigns, &options)?;
        for experiment in pending {
            let table = table(name, experiment, summaries.iter());
            let report = compute::experiment(&experiment.name, &table, plan);
            if let Some(choice) = rule(&report, plan) {
                out.push((name.clone(), experiment.name.clone(), choice));
            }
        }
    }
    Ok(out)
}

/// An experiment's table: (variant, completed, enrolled) in the order
/// written, over the campaign's enrollments. All of them count: the
/// experiment is undecided, so each got its stable assignment (the
/// decision of another experiment of the campaign does not change how
/// this one is assigned).
pub fn table<'s>(
    campaign: &str,
    experiment: &Experiment,
    summaries: impl IntoIterator<Item = &'s Summary>,
) -> Vec<(String, u64, u64)> {
    let mut counts: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for s in summaries.into_iter().filter(|s| s.campaign == campaign) {
        if let Some(variant) = s.variants.get(experiment.name.as_str()) {
            let c = counts.entry(&**variant).or_default();
            c.1 += 1;
            if s.furthest == Step::Completed {
                c.0 += 1;
            }
        }
    }
    experiment
        .variants
        .iter()
        .map(|(v, _)| {
            let (x, n) = counts.get(v.as_str()).copied().unwrap_or_default();
            (v.clone(), x, n)
        })
        .collect()
}

/// Whether an experiment's table decides it, and for whom (see the module
/// header). `plan` is N* of the always-valid interval the report used.
pub fn rule(report: &ExperimentReport, plan: u64) -> Option<Choice> {
    let control = report.variants.first()?;
    if report.comparisons.is_empty() {
        return None;
    }
    let better: Vec<&str> = (report.comparisons.iter())
        .filter(|c| c.verdict == Verdict::Better)
        .map(|c| c.variant.as_str())
        .collect();
    if !better.is_empty() {
        let unbeaten: Vec<&str> = better
            .iter()
            .copied()
            .filter(|w| !beaten(report, w, plan))
            .collect();
        let [winner] = unbeaten[..] else {
            return None;
        };
        let comparison = report.comparisons.iter().find(|c| c.variant == winner)?;
        let because = format!(
            "{winner} completes more than {}: {} ({})",
            control.name,
            difference_words(comparison.difference, comparison.always_valid_interval),
            rates(report)
        );
        return Some(Choice {
            winner: winner.to_owned(),
            because,
        });
    }
    if report
        .comparisons
        .iter()
        .all(|c| c.verdict == Verdict::Worse)
    {
        let each: Vec<String> = (report.comparisons.iter())
            .map(|c| {
                format!(
                    "{} {}",
                    c.variant,
                    difference_words(c.difference, c.always_valid_interval)
                )
            })
            .collect();
        let because = format!(
            "every other variant completes less than {}: {} ({})",
            control.name,
            each.join("; "),
            rates(report)
        );
        return Some(Choice {
            winner: control.name.clone(),
            because,
        });
    }
    None
}

/// Whether some other variant beats `variant` on the always-valid interval.
fn beaten(report: &ExperimentReport, variant: &str, plan: u64) -> bool {
    let Some(me) = report.variants.iter().find(|v| v.name == variant) else {
        return true;
    };
    report
        .variants
        .iter()
        .filter(|o| o.name != variant)
        .any(|o| {
            stats::compare(me.completed, me.n, o.completed, o.n, plan)
                .is_some_and(|c| c.always_valid[0] > 0.0)
        })
}

/// "+6.1 points, always-valid 95% interval +2.3 to +9.9".
fn difference_words(difference: Option<f64>, interval: Option<[f64; 2]>) -> String {
    let points = |d: f64| format!("{:+.1}", d * 100.0);
    match (difference, interval) {
        (Some(d), Some([lo, hi])) => format!(
            "{} points, always-valid 95% interval {} to {}",
            points(d),
            points(lo),
            points(hi)
        ),
        (Some(d), None) => format!("{} points", points(d)),
        _ => "no difference measured".to_owned(),
    }
}

/// "short 35.0% of 200, warm 41.1% of 202".
fn rates(report: &ExperimentReport) -> String {
    report
        .variants
        .iter()
        .map(|v| match v.rate {
            Some(r) => format!("{} {:.1}% of {}", v.name, r * 100.0, v.n),
            None => format!("{} none enrolled", v.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every stored decision as the report's campaign header carries it:
/// (campaign, decision), by campaign and experiment.
pub fn header_decisions<S: Store>(store: &S) -> Result<Vec<(String, HeaderDecision)>, StoreError> {
    Ok(store
        .decisions()?
        .into_iter()
        .map(|d| (d.campaign.clone(), header_decision(&d)))
        .collect())
}

/// Every stored decision by campaign, as [`crate::report::export::export`]
/// and the report's headers take them.
pub fn decisions_by_campaign<S: Store>(
    store: &S,
) -> Result<BTreeMap<String, Vec<HeaderDecision>>, StoreError> {
    let mut out: BTreeMap<String, Vec<HeaderDecision>> = BTreeMap::new();
    for d in store.decisions()? {
        out.entry(d.campaign.clone())
            .or_default()
            .push(header_decision(&d));
    }
    Ok(out)
}

/// A campaign's stored decisions as `status` and `show` tell them.
pub fn views(decisions: &[Decision], campaign: &str, campaigns: &Campaigns) -> Vec<DecisionView> {
    decisions
        .iter()
        .filter(|d| d.campaign == campaign)
        .map(|d| {
            let applied = campaigns.get(campaign).is_some_and(|c| {
                (c.machine.experiments.iter()).any(|e| e.name == d.experiment && e.until_decided)
            });
            let mut text = d.describe();
            if !applied {
                text.push_str(" (no longer applied: the experiment is not `until decided` now)");
            }
            DecisionView {
                experiment: d.experiment.clone(),
                winner: d.winner.clone(),
                at: d.at().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                because: d.because.clone(),
                applied,
                text,
            }
        })
        .collect()
}

/// A stored decision in the report's words.
pub fn header_decision(d: &Decision) -> HeaderDecision {
    HeaderDecision {
        experiment: d.experiment.clone(),
        winner: d.winner.clone(),
        at: d.at_ms,
        because: d.because.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Comparison, VariantRate};

    fn rate(name: &str, completed: u64, n: u64) -> VariantRate {
        VariantRate {
            name: name.into(),
            n,
            completed,
            rate: Some(completed as f64 / n as f64),
            interval: None,
        }
    }

    fn versus(variant: &str, d: f64, lo: f64, hi: f64, verdict: Verdict) -> Comparison {
        Comparison {
            variant: variant.into(),
            versus: "a".into(),
            difference: Some(d),
            interval: None,
            p_value: None,
            always_valid_interval: Some([lo, hi]),
            verdict,
            text: String::new(),
        }
    }

    fn report(variants: Vec<VariantRate>, comparisons: Vec<Comparison>) -> ExperimentReport {
        ExperimentReport {
            name: "copy".into(),
            variants,
            comparisons,
            chi_square: None,
            sample_needed: None,
            decided: None,
        }
    }

    #[test]
    fn one_better_variant_wins() {
        // Three variants: `b` better than the control, `c` no different.
        let r = report(
            vec![
                rate("a", 100, 400),
                rate("b", 200, 400),
                rate("c", 104, 400),
            ],
            vec![
                versus("b", 0.25, 0.15, 0.35, Verdict::Better),
                versus("c", 0.01, -0.08, 0.10, Verdict::NoDifference),
            ],
        );
        let choice = rule(&r, 1000).expect("decided");
        assert_eq!(choice.winner, "b");
        assert_eq!(
            choice.because,
            "b completes more than a: +25.0 points, always-valid 95% interval +15.0 to +35.0 \
             (a 25.0% of 400, b 50.0% of 400, c 26.0% of 400)"
        );
    }

    #[test]
    fn control_wins_when_every_other_variant_is_worse() {
        let r = report(
            vec![rate("a", 200, 400), rate("b", 100, 400), rate("c", 90, 400)],
            vec![
                versus("b", -0.25, -0.35, -0.15, Verdict::Worse),
                versus("c", -0.275, -0.37, -0.18, Verdict::Worse),
            ],
        );
        assert_eq!(rule(&r, 1000).expect("decided").winner, "a");
    }

    #[test]
    fn one_worse_and_one_undecided_waits() {
        let r = report(
            vec![
                rate("a", 200, 400),
                rate("b", 100, 400),
                rate("c", 190, 400),
            ],
            vec![
                versus("b", -0.25, -0.35, -0.15, Verdict::Worse),
                versus("c", -0.025, -0.12, 0.07, Verdict::NotEnoughData),
            ],
        );
        assert_eq!(rule(&r, 1000), None);
    }

    #[test]
    fn nothing_clear_waits() {
        let r = report(
            vec![rate("a", 100, 200), rate("b", 104, 200), rate("c", 98, 200)],
            vec![
                versus("b", 0.02, -0.1, 0.14, Verdict::NotEnoughData),
                versus("c", -0.01, -0.13, 0.11, Verdict::NotEnoughData),
            ],
        );
        assert_eq!(rule(&r, 1000), None);
    }

    #[test]
    fn two_better_variants_wait_while_neither_beats_the_other() {
        // `b` and `c` both beat the control and are close to each other:
        // no always-valid interval of c − b or b − c excludes 0.
        let r = report(
            vec![
                rate("a", 100, 1000),
                rate("b", 400, 1000),
                rate("c", 410, 1000),
            ],
            vec![
                versus("b", 0.30, 0.24, 0.36, Verdict::Better),
                versus("c", 0.31, 0.25, 0.37, Verdict::Better),
            ],
        );
        assert_eq!(rule(&r, 1000), None);
    }

    #[test]
    fn of_two_better_variants_the_one_no_other_beats_wins() {
        // `c` beats `b` by far more than any interval's width at n = 1000.
        let r = report(
            vec![
                rate("a", 100, 1000),
                rate("b", 300, 1000),
                rate("c", 700, 1000),
            ],
            vec![
                versus("b", 0.20, 0.14, 0.26, Verdict::Better),
                versus("c", 0.60, 0.54, 0.66, Verdict::Better),
            ],
        );
        assert_eq!(rule(&r, 1000).expect("decided").winner, "c");
    }

    #[test]
    fn table_counts_completed_and_enrolled_per_variant_in_written_order() {
        let experiment = Experiment {
            name: "copy".into(),
            variants: vec![("short".into(), 50), ("warm".into(), 50)],
            until_decided: true,
        };
        let summary = |variant: &str, furthest: Step| {
            let line = crate::report::line::Line {
                kind: "enrolled".into(),
                at: Some(0),
                campaign: Some("c".into()),
                candidate: Some("x".into()),
                variants: Some([("copy".to_string(), variant.to_string())].into()),
                ..Default::default()
            };
            let trace = crate::report::trace::Trace::enrolled(&line.fact()).expect("trace");
            let mut text = crate::report::text::Interner::new();
            let mut s = trace.as_ref().summary("completed", None, &mut text);
            s.furthest = furthest;
            s
        };
        let summaries = vec![
            summary("warm", Step::Completed),
            summary("warm", Step::Opened),
            summary("short", Step::Completed),
            summary("warm", Step::Completed),
        ];
        assert_eq!(
            table("c", &experiment, &summaries),
            vec![("short".into(), 1, 1), ("warm".into(), 2, 3)]
        );
    }
}
