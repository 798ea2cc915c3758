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
use super::text::{Interner, Text};
use crate::runtime::campaigns::Campaigns;
use crate::store::{Store, StoreError};

/// The headers of the campaigns loaded now (with their decisions) and the
/// summaries of the enrollments `options` selects (campaign, dates).
pub fn summaries<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    options: &Options,
) -> Result<(BTreeMap<String, Header>, Summaries), StoreError> {
    let filter = options.filter();
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
                scope.spawn(move || read_part(store, part, PARTS, campaigns, headers_now, filter))
            })
            .collect();
        running
            .into_iter()
            .map(|r| r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut summaries = Summaries::default();
    let mut orphans: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for part in parts {
        let (some, orphaned) = part?;
        summaries.chunks.extend(some.chunks);
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
    // In the store's order: every figure is a count, or sorted where it is
    // read in order (times to completion), so the order does not matter.
    Ok((headers, summaries))
}

/// One part's summaries, and the campaigns no longer loaded that it met
/// with the variants their enrollments name.
type Part = (Summaries, BTreeMap<String, BTreeMap<String, Vec<String>>>);

/// Summaries in chunks of [`CHUNK`]: a million of them are gathered
/// without moving any (a vector grown one at a time copies itself each time
/// it doubles, and joining the parts' vectors copies them again).
#[derive(Debug, Default)]
pub struct Summaries {
    chunks: Vec<Vec<Summary>>,
}

/// Summaries per chunk.
const CHUNK: usize = 1 << 16;

impl Summaries {
    fn push(&mut self, summary: Summary) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < last.capacity() => last.push(summary),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(summary);
                self.chunks.push(chunk);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.iter().all(Vec::is_empty)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Summary> + Clone {
        self.chunks.iter().flatten()
    }
}

fn read_part<S: Store>(
    store: &S,
    part: usize,
    parts: usize,
    campaigns: &Campaigns,
    headers: &BTreeMap<String, Header>,
    filter: &Filter,
) -> Result<Part, StoreError> {
    let mut summaries = Summaries::default();
    let mut orphans: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut text = Interner::new();
    // The zone of the last campaign and candidate zone met, and the goal of
    // the last campaign: the same for most enrollments in a row.
    let mut zones: Vec<(String, Option<String>, Text)> = Vec::new();
    store.read_traces_part(part, parts, &mut |traces| {
        for trace in traces {
            if !filter.keeps(trace.campaign, trace.enrolled_at) {
                continue;
            }
            let zone = match campaigns.get(trace.campaign) {
                Some(c) => {
                    let known = zones.iter().find(|(name, own, _)| {
                        name == trace.campaign && own.as_deref() == trace.timezone
                    });
                    Some(match known {
                        Some((_, _, zone)) => zone.clone(),
                        None => {
                            let zone = text.text(zone_name(&c.machine.zone, trace.timezone));
                            if zones.len() < 1024 {
                                zones.push((
                                    trace.campaign.to_string(),
                                    trace.timezone.map(str::to_string),
                                    zone.clone(),
                                ));
                            }
                            zone
                        }
                    })
                }
                None => {
                    let experiments = orphans.entry(trace.campaign.to_string()).or_default();
                    for (e, v) in &trace.variants {
                        let seen = experiments.entry(e.to_string()).or_default();
                        if !seen.iter().any(|s| s == v) {
                            seen.push(v.to_string());
                        }
                    }
                    trace.timezone.map(|z| text.text(z))
                }
            };
            let goal = goal_of(headers, trace.campaign);
            summaries.push(trace.summary(goal, zone, &mut text));
        }
    })?;
    Ok((summaries, orphans))
}

/// The zone an enrollment's times are read in: the candidate's own valid
/// zone where the campaign's rule allows it, else the campaign's.
fn zone_name(rule: &crate::engine::machine::ZoneRule, own: Option<&str>) -> &'static str {
    let own = own
        .filter(|_| rule.candidate)
        .and_then(|z| z.parse::<Tz>().ok());
    own.unwrap_or(rule.fallback).name()
}

/// The report over the store: [`summaries`] through
/// [`super::compute::report`].
pub fn report<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    options: &Options,
) -> Result<Report, StoreError> {
    let started = std::time::Instant::now();
    let (headers, summaries) = summaries(store, campaigns, options)?;
    let read = started.elapsed();
    let report = super::compute::report(&headers, summaries.iter(), options);
    tracing::debug!(
        enrollments = summaries.len(),
        read_ms = read.as_millis() as u64,
        computed_ms = (started.elapsed() - read).as_millis() as u64,
        "made a report over the store"
    );
    // A million summaries take a while to free: done beside the answer.
    let _ = std::thread::Builder::new()
        .name("nudge-free".into())
        .spawn(move || drop(summaries));
    Ok(report)
}

/// The HTML report's charts over the store: [`summaries`] through
/// [`super::charts::charts`].
pub fn charts<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    options: &Options,
) -> Result<super::charts::Charts, StoreError> {
    let (headers, summaries) = summaries(store, campaigns, options)?;
    Ok(super::charts::charts(&headers, summaries.iter(), options))
}
