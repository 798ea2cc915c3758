//! Read-only questions to the store: `nudge status`, `nudge show` and
//! `nudge suppression list`.
//! They read committed records only, so they run beside the writer.

use chrono::Duration;

use super::api::{
    CampaignStatus, CandidateView, EnrollmentView, StatusReport, SuppressionView, TimelineLine,
};
use super::campaigns::Campaigns;
use super::core::{counters, engine_candidate};
use super::refusal::Refusal;
use crate::engine::Instant;
use crate::explain::describe;
use crate::sim::rfc3339;
use crate::store::{CandidateRecord, Counter, Store, Transaction};

/// Candidates per state, sends due soon, held sends and failures, per
/// campaign: from counters the core keeps in its commits, so the answer
/// reads a few keys per campaign however many candidates wait. The sends
/// due in the next hour and day are counted to the minute (those due in
/// the minute the hour ends in count in full).
pub fn status<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    only: Option<&str>,
    now: Instant,
) -> Result<StatusReport, Refusal> {
    if let Some(name) = only {
        if campaigns.get(name).is_none() {
            return Err(Refusal::unknown_campaign(name, campaigns));
        }
    }
    let mut out = Vec::new();
    let decisions = store.decisions()?;
    for (name, campaign) in campaigns.iter() {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let counts = counters(store, name)?;
        let count = |c: &Counter| counts.get(c).copied().unwrap_or(0);
        let states = campaign
            .machine
            .states
            .iter()
            .map(|s| (s.name.clone(), count(&Counter::State(s.name.clone()))))
            .collect();
        let mut outcomes: Vec<(String, i64)> = counts
            .iter()
            .filter_map(|(k, v)| match k {
                Counter::Outcome(o) => Some((o.clone(), *v)),
                _ => None,
            })
            .collect();
        outcomes.sort();
        // Counted to the minute: the sends due in the minutes that begin
        // within the hour (the day), overdue ones included.
        let hour = store.sends_due(name, now + Duration::hours(1))?;
        let day = store.sends_due(name, now + Duration::days(1))?;
        let held = count(&Counter::Held);
        out.push(CampaignStatus {
            name: name.clone(),
            title: campaign.machine.title.clone(),
            paused: store.paused(name)?,
            states,
            outcomes,
            sends_next_hour: hour.max(0) as u64,
            sends_next_day: day.max(0) as u64,
            held: held.max(0) as u64,
            failed: count(&Counter::Failed),
            late: count(&Counter::Late),
            decided: super::decider::views(&decisions, name, campaigns),
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
        store_trouble: None,
    })
}

/// The candidate `who` names: their id, link token or external id (what
/// the core looks up), else their email address or phone number. An
/// address may be several candidates' (two external ids with one email),
/// so it is looked for in every record and a shared one is refused as
/// ambiguous: a full scan, for people's questions (`nudge show`, the CLI's
/// `nudge event`), never for the daemon's own work.
pub fn find_candidate<S: Store>(
    store: &S,
    txn: &mut S::Txn<'_>,
    who: &str,
) -> Result<CandidateRecord, Refusal> {
    // An address may be several candidates' (two external ids with one
    // email): it is looked for in every record, so that is said.
    let Some(address) = Address::of(who) else {
        return match super::core::find(txn, who)? {
            Some(candidate) => Ok(candidate),
            None => Err(Refusal::UnknownCandidate(who.to_string())),
        };
    };
    // A damaged record cannot be matched; it is reported where it is read
    // for what it holds.
    let mut found: Vec<CandidateRecord> = store
        .dossiers()
        .filter_map(Result::ok)
        .map(|d| d.candidate)
        .filter(|c| address.matches(c))
        .collect();
    match found.len() {
        // An external id may look like a phone number.
        0 => super::core::find(txn, who)?.ok_or_else(|| Refusal::UnknownCandidate(who.to_string())),
        1 => Ok(found.remove(0)),
        _ => Err(Refusal::AmbiguousCandidate {
            who: who.to_string(),
            ids: found.into_iter().map(|c| c.id).collect(),
        }),
    }
}

/// An email address or a phone number, as a person types it.
enum Address {
    /// Lowercased.
    Email(String),
    /// The digits alone.
    Phone(String),
}

impl Address {
    fn of(who: &str) -> Option<Address> {
        if who.contains('@') {
            return Some(Address::Email(who.trim().to_lowercase()));
        }
        let digits: String = who.chars().filter(char::is_ascii_digit).collect();
        let phone_like = who
            .chars()
            .all(|c| c.is_ascii_digit() || " +-.()".contains(c));
        (phone_like && digits.len() >= 5).then_some(Address::Phone(digits))
    }

    fn matches(&self, candidate: &CandidateRecord) -> bool {
        match self {
            Address::Email(email) => candidate
                .fields
                .get("email")
                .is_some_and(|e| e.trim().to_lowercase() == *email),
            Address::Phone(digits) => candidate.fields.get("phone").is_some_and(|p| {
                p.chars().filter(char::is_ascii_digit).collect::<String>() == *digits
            }),
        }
    }
}

/// The zone a candidate's times are shown in: their own `timezone` when
/// it names one, else the zone a campaign they are in reads them in (one
/// they are still active in first), else UTC (their campaigns are all
/// gone). Every time shown carries its offset, so even UTC is plain.
fn candidate_zone(
    candidate: &crate::engine::Candidate,
    enrollments: &[crate::store::Enrollment],
    campaigns: &Campaigns,
) -> chrono_tz::Tz {
    if let Some(own) = candidate
        .field("timezone")
        .and_then(|z| z.parse::<chrono_tz::Tz>().ok())
    {
        return own;
    }
    let mut loaded: Vec<&crate::store::Enrollment> = enrollments
        .iter()
        .filter(|e| campaigns.get(&e.campaign).is_some())
        .collect();
    loaded.sort_by_key(|e| e.engine.outcome.is_some());
    loaded
        .first()
        .and_then(|e| campaigns.get(&e.campaign))
        .map_or(chrono_tz::UTC, |c| candidate.zone(&c.machine.zone))
}

/// A candidate's record, enrollments and whole history with reasons.
pub fn show<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    who: &str,
    tracked_link: &str,
) -> Result<CandidateView, Refusal> {
    let mut txn = store.begin();
    let candidate = find_candidate(store, &mut txn, who)?;
    let engine_candidate = engine_candidate(&candidate);
    let mut enrollments = Vec::new();
    let records = txn.enrollments_of(&candidate.id)?;
    let zone = candidate_zone(&engine_candidate, &records, campaigns);
    let decisions = store.decisions()?;
    for enr in records {
        enrollments.push(EnrollmentView {
            campaign: enr.campaign.clone(),
            state: enr.state_name.clone(),
            outcome: enr.engine.outcome.clone(),
            variants: enr.variants.clone(),
            next_wake: enr.timer.map(rfc3339),
            paused: enr.parked,
            decided: super::decider::views(&decisions, &enr.campaign, campaigns),
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
        link: tracked_link.replace("{token}", &candidate.token),
        fields: candidate.fields.clone(),
        opted_out: candidate.opted_out,
        zone: zone.name().to_string(),
        enrollments,
        timeline,
        store_trouble: None,
    })
}

/// The suppression list, by contact.
pub fn suppressions<S: Store>(store: &S) -> Result<Vec<SuppressionView>, Refusal> {
    Ok(store
        .suppressions()?
        .iter()
        .map(SuppressionView::of)
        .collect())
}
