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
use super::trace::TraceRef;
use crate::runtime::campaigns::Campaigns;
use crate::store::{Store, StoreError, TraceReader};

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
    let mut parts: Vec<Part> = (0..PARTS)
        .map(|_| Part::new(campaigns, &headers, &filter))
        .collect();
    {
        let mut takers: Vec<_> = parts
            .iter_mut()
            .map(|p| move |traces: &[TraceRef<'_>]| p.take(traces))
            .collect();
        let mut readers: Vec<TraceReader<'_>> =
            takers.iter_mut().map(|t| t as TraceReader<'_>).collect();
        store.read_traces(&mut readers)?;
    }
    let mut summaries = Summaries::default();
    let mut orphans = Orphans::new();
    for part in parts {
        summaries.chunks.extend(part.summaries.chunks);
        let orphaned = part.orphans;
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

/// Campaigns no longer loaded, with the variants their enrollments name.
type Orphans = BTreeMap<String, BTreeMap<String, Vec<String>>>;

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

/// What one part of the traces adds up to: its summaries, and the
/// campaigns no longer loaded that it met.
struct Part<'a> {
    campaigns: &'a Campaigns,
    headers: &'a BTreeMap<String, Header>,
    filter: &'a Filter,
    summaries: Summaries,
    orphans: Orphans,
    text: Interner,
    /// The zone of the campaigns and candidate zones met (most enrollments
    /// in a row share one).
    zones: Vec<(String, Option<String>, Text)>,
}

impl<'a> Part<'a> {
    fn new(
        campaigns: &'a Campaigns,
        headers: &'a BTreeMap<String, Header>,
        filter: &'a Filter,
    ) -> Part<'a> {
        Part {
            campaigns,
            headers,
            filter,
            summaries: Summaries::default(),
            orphans: Orphans::new(),
            text: Interner::new(),
            zones: Vec::new(),
        }
    }

    fn take(&mut self, traces: &[TraceRef<'_>]) {
        for trace in traces {
            if !self.filter.keeps(trace.campaign, trace.enrolled_at) {
                continue;
            }
            let zone = match self.campaigns.get(trace.campaign) {
                Some(c) => Some(self.zone(trace, &c.machine.zone)),
                None => {
                    let experiments = self.orphans.entry(trace.campaign.to_string()).or_default();
                    for (e, v) in &trace.variants {
                        let seen = experiments.entry(e.to_string()).or_default();
                        if !seen.iter().any(|s| s == v) {
                            seen.push(v.to_string());
                        }
                    }
                    trace.timezone.map(|z| self.text.text(z))
                }
            };
            let goal = goal_of(self.headers, trace.campaign);
            self.summaries
                .push(trace.summary(goal, zone, &mut self.text));
        }
    }

    /// The zone a loaded campaign's enrollment is read in.
    fn zone(&mut self, trace: &TraceRef<'_>, rule: &crate::engine::machine::ZoneRule) -> Text {
        let known = self
            .zones
            .iter()
            .find(|(name, own, _)| name == trace.campaign && own.as_deref() == trace.timezone);
        if let Some((_, _, zone)) = known {
            return zone.clone();
        }
        let zone = self.text.text(zone_name(rule, trace.timezone));
        if self.zones.len() < 1024 {
            self.zones.push((
                trace.campaign.to_string(),
                trace.timezone.map(str::to_string),
                zone.clone(),
            ));
        }
        zone
    }
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
