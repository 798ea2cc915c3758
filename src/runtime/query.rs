//! Read-only questions to the store: `nudge status` and `nudge show`.
//! They read committed records only, so they run beside the writer.

use chrono::Duration;

use super::api::{
    ApiError, CampaignStatus, CandidateView, EnrollmentView, StatusReport, TimelineLine,
};
use super::campaigns::Campaigns;
use super::core::{counters, engine_candidate};
use crate::engine::Instant;
use crate::explain::describe;
use crate::sim::rfc3339;
use crate::store::{CandidateRecord, Counter, Store, TimerKind, Transaction};

/// Candidates per state, sends due soon, held sends and failures, per campaign.
pub fn status<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    only: Option<&str>,
    now: Instant,
) -> Result<StatusReport, ApiError> {
    if let Some(name) = only {
        if campaigns.get(name).is_none() {
            return Err(ApiError::unknown_campaign(name, campaigns));
        }
    }
    let mut out = Vec::new();
    // One pass over the timers for every campaign shown.
    let timers = store.live_timers()?;
    for (name, campaign) in campaigns.iter() {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let counts = counters(store, name)?;
        let states = campaign
            .machine
            .states
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    counts
                        .get(&Counter::State(s.name.clone()))
                        .copied()
                        .unwrap_or(0),
                )
            })
            .collect();
        let mut outcomes: Vec<(String, i64)> = counts
            .iter()
            .filter_map(|(k, v)| match k {
                Counter::Outcome(o) => Some((o.clone(), *v)),
                _ => None,
            })
            .collect();
        outcomes.sort();
        let (mut hour, mut day, mut held) = (0, 0, 0);
        for timer in timers.iter().filter(|t| &t.campaign == name) {
            match timer.kind {
                TimerKind::Held => held += 1,
                TimerKind::Send => {}
                TimerKind::Transition => continue,
            }
            if timer.due < now + Duration::hours(1) {
                hour += 1;
            }
            if timer.due < now + Duration::days(1) {
                day += 1;
            }
        }
        out.push(CampaignStatus {
            name: name.clone(),
            title: campaign.machine.title.clone(),
            paused: store.paused(name)?,
            states,
            outcomes,
            sends_next_hour: hour,
            sends_next_day: day,
            held,
            failed: counts.get(&Counter::Failed).copied().unwrap_or(0),
        });
    }
    let outbox = store.undelivered_checked()? as u64;
    let mut failures = 0;
    failures += out.iter().map(|c| c.failed.max(0) as u64).sum::<u64>();
    Ok(StatusReport {
        at: rfc3339(now),
        campaigns: out,
        outbox,
        failures,
    })
}

/// A candidate's record, enrollments and whole history with reasons.
pub fn show<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    who: &str,
    interview_url: &str,
) -> Result<CandidateView, ApiError> {
    let mut txn = store.begin();
    let candidate: CandidateRecord = super::core::find(&mut txn, who)?
        .ok_or_else(|| ApiError::not_found(format!("no candidate `{who}`")))?;
    let engine_candidate = engine_candidate(&candidate);
    let mut enrollments = Vec::new();
    let mut zone = chrono_tz::UTC;
    for enr in txn.enrollments_of(&candidate.id)? {
        if let Some(c) = campaigns.get(&enr.campaign) {
            zone = engine_candidate.zone(&c.machine.zone);
        }
        enrollments.push(EnrollmentView {
            campaign: enr.campaign.clone(),
            state: enr.state_name.clone(),
            outcome: enr.engine.outcome.clone(),
            variants: enr.variants.clone(),
            next_wake: enr.timer.map(rfc3339),
            paused: enr.parked,
        });
    }
    let timeline = store
        .history(&candidate.id)?
        .into_iter()
        .map(|entry| {
            let (kind, text) = describe(&entry, zone);
            TimelineLine {
                at: rfc3339(entry.at),
                local: crate::sim::output::local(entry.at, zone),
                campaign: entry.campaign.clone(),
                kind,
                text,
            }
        })
        .collect();
    Ok(CandidateView {
        id: candidate.id.clone(),
        external_id: candidate.external_id.clone(),
        link: interview_url.replace("{token}", &candidate.token),
        fields: candidate.fields.clone(),
        opted_out: candidate.opted_out,
        zone: zone.name().to_string(),
        enrollments,
        timeline,
    })
}
