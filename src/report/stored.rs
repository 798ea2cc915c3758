//! Reports over the store: the campaigns' headers and every enrollment's
//! summary, read from the traces the store keeps up to date in its own
//! commits ([`crate::report::trace`]) instead of from every history. A
//! trace is made from the same lines `nudge export` writes, so the report
//! over the store and the report over its export agree.

use std::collections::BTreeMap;

use chrono_tz::Tz;

use super::compute::Options;
use super::export::Filter;
use super::fold::{goal_of, Header, Summary};
use super::model::Report;
use crate::runtime::campaigns::Campaigns;
use crate::store::{Store, StoreError};

/// The headers of the campaigns loaded now (with their decisions) and the
/// summaries of the enrollments `options` selects (campaign, dates).
pub fn summaries<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    options: &Options,
) -> Result<(BTreeMap<String, Header>, Vec<Summary>), StoreError> {
    let filter = Filter {
        campaign: options.campaign.clone(),
        since: options.since,
        until: options.until,
    };
    let decisions = crate::runtime::decider::decisions_by_campaign(store)?;
    let mut headers = BTreeMap::new();
    for (name, campaign) in campaigns.iter() {
        if filter.keeps_campaign(name) {
            let decided = decisions.get(name).map(Vec::as_slice).unwrap_or(&[]);
            let line = super::export::header_line(campaign, decided);
            headers.extend(Header::of(&line).map(|h| (name.clone(), h)));
        }
    }
    // Two parts of the traces, read, decoded and summed up on two threads.
    const PARTS: usize = 2;
    let headers_now = &headers;
    let parts: Vec<Result<Part, StoreError>> = std::thread::scope(|scope| {
        let running: Vec<_> = (0..PARTS)
            .map(|part| {
                let filter = &filter;
                scope.spawn(move || {
                    read_part(
                        store.traces_part(part, PARTS),
                        campaigns,
                        headers_now,
                        filter,
                    )
                })
            })
            .collect();
        running
            .into_iter()
            .map(|r| r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut summaries = Vec::new();
    let mut orphans: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for part in parts {
        let (mut some, orphaned) = part?;
        summaries.append(&mut some);
        for (campaign, experiments) in orphaned {
            let known = orphans.entry(campaign).or_default();
            for (e, variants) in experiments {
                let seen = known.entry(e).or_default();
                for v in variants {
                    if !seen.contains(&v) {
                        seen.push(v);
                    }
                }
            }
        }
    }
    for (name, experiments) in &orphans {
        let line = super::export::orphan_header_line(name, experiments);
        headers.extend(Header::of(&line).map(|h| (name.clone(), h)));
    }
    summaries
        .sort_unstable_by(|a, b| (a.enrolled_at, &a.candidate).cmp(&(b.enrolled_at, &b.candidate)));
    Ok((headers, summaries))
}

/// One part's summaries, and the campaigns no longer loaded that it met
/// with the variants their enrollments name.
type Part = (
    Vec<Summary>,
    BTreeMap<String, BTreeMap<String, Vec<String>>>,
);

fn read_part(
    traces: impl Iterator<Item = Result<(String, crate::report::trace::Traces), StoreError>>,
    campaigns: &Campaigns,
    headers: &BTreeMap<String, Header>,
    filter: &Filter,
) -> Result<Part, StoreError> {
    let mut summaries = Vec::new();
    let mut orphans: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for item in traces {
        let (candidate, traces) = item?;
        for trace in traces.0 {
            if !filter.keeps(&trace.campaign, trace.enrolled_at) {
                continue;
            }
            let zone = match campaigns.get(&trace.campaign) {
                Some(c) => Some(zone_name(&c.machine.zone, trace.timezone.as_deref())),
                None => {
                    let experiments = orphans.entry(trace.campaign.clone()).or_default();
                    for (e, v) in &trace.variants {
                        let seen = experiments.entry(e.clone()).or_default();
                        if !seen.contains(v) {
                            seen.push(v.clone());
                        }
                    }
                    trace.timezone.clone()
                }
            };
            let goal = goal_of(headers, &trace.campaign);
            summaries.push(trace.into_summary(&candidate, goal, zone));
        }
    }
    Ok((summaries, orphans))
}

/// The zone an enrollment's times are read in: the candidate's own valid
/// zone where the campaign's rule allows it, else the campaign's.
fn zone_name(rule: &crate::engine::machine::ZoneRule, own: Option<&str>) -> String {
    let own = own
        .filter(|_| rule.candidate)
        .and_then(|z| z.parse::<Tz>().ok());
    own.unwrap_or(rule.fallback).name().to_string()
}

/// The report over the store: [`summaries`] through
/// [`super::compute::report`].
pub fn report<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    options: &Options,
) -> Result<Report, StoreError> {
    let (headers, summaries) = summaries(store, campaigns, options)?;
    Ok(super::compute::report(&headers, &summaries, options))
}

/// The HTML report's charts over the store: [`summaries`] through
/// [`super::charts::charts`].
pub fn charts<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    options: &Options,
) -> Result<super::charts::Charts, StoreError> {
    let (headers, summaries) = summaries(store, campaigns, options)?;
    Ok(super::charts::charts(&headers, &summaries, options))
}
