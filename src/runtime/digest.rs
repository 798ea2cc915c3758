//! The weekly digest (`[digest]` in `nudge.toml`): at each instant the
//! schedule names, recruiters get one email with each campaign's funnel,
//! experiment verdicts and red flags, from the same report as `nudge
//! report` ([`crate::report::stored::report`]), through the configured
//! email channel (the console channel prints it).
//!
//! Durable like every other timer: the next due instant is kept in the
//! store (`Store::digest_due`), set when the daemon first runs with a
//! `[digest]`, and moved on by the core's commit that records a digest as
//! sent. So:
//!
//! - a digest that fell due while the daemon was down goes once at the
//!   next start, however many were missed (one digest of now, not one per
//!   missed week), and the next is the schedule's first instant after
//!   that start;
//! - a `schedule` edited while a digest waits moves it to the new
//!   schedule's next instant (one that fell due while the daemon was down
//!   still goes once);
//! - a crash after a digest went and before its commit sends it once more
//!   at the next start (at most once: that start records it). Its
//!   messages keep their key (`digest/DUE/ADDRESS`), so a channel that
//!   drops a repeated key (HTTP's `Idempotency-Key`) drops the repeat.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use tracing::{error, info, warn};

use super::campaigns::Campaigns;
use super::daemon::Handle;
use crate::channels::{Channels, Message, SendError};
use crate::config::{DigestConfig, DigestSchedule};
use crate::engine::{Channel, Instant};
use crate::report::compute::Options;
use crate::report::model::Report;
use crate::store::{Store, StoreError};

/// The template name a digest's messages carry (in logs).
pub const TEMPLATE: &str = "digest";

/// How many times a digest is tried on a channel failure that may pass
/// before it is given up until the next one.
const ATTEMPTS: u32 = 5;

/// One digest, ready to go.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Composed {
    pub subject: String,
    pub text: String,
}

/// `nudge digest`: the digest as it would go now, and when the next is
/// due (RFC 3339; none before the daemon first ran with `[digest]`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Preview {
    pub digest: Composed,
    pub next_due: Option<String>,
    /// Who gets it.
    pub to: Vec<String>,
}

/// The report the digest is made of: every campaign loaded, or those
/// `config` names (a name not loaded is passed over).
pub fn report<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    config: &DigestConfig,
) -> Result<Report, StoreError> {
    let mut report = crate::report::stored::report(store, campaigns, &Options::default())?;
    report.campaigns.retain(|c| {
        campaigns.get(&c.campaign).is_some()
            && config
                .campaigns
                .as_ref()
                .is_none_or(|only| only.contains(&c.campaign))
    });
    Ok(report)
}

/// The digest of `report`, as of `now`: the report as `nudge report`
/// prints it ([`crate::report::table::render`]), under a heading.
pub fn compose(report: &Report, now: Instant) -> Composed {
    let subject = format!("nudge weekly digest, {}", now.format("%Y-%m-%d"));
    let body = if report.campaigns.is_empty() {
        "No campaign to report on yet.\n".to_string()
    } else {
        crate::report::table::render(report)
    };
    let text = format!("{subject}\n\n{body}");
    Composed { subject, text }
}

/// The messages of one digest: one per recipient, keyed by the due
/// instant and the address.
pub fn messages(config: &DigestConfig, composed: &Composed, due: Instant) -> Vec<Message> {
    config
        .to
        .iter()
        .map(|to| Message {
            key: format!("digest/{}/{to}", due.timestamp_millis()),
            campaign: "digest".to_string(),
            candidate: String::new(),
            template: TEMPLATE.to_string(),
            channel: Channel::Email,
            to: to.clone(),
            subject: Some(composed.subject.clone()),
            body: composed.text.clone(),
            html: None,
            unsubscribe_url: None,
            scheduled_at: due,
            in_flight: false,
        })
        .collect()
}

/// The digest as it would go now, over `store`.
pub fn composed<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    config: &DigestConfig,
    now: Instant,
) -> Result<Composed, StoreError> {
    Ok(compose(&report(store, campaigns, config)?, now))
}

/// `nudge digest`: the digest as it would go now, and when the next is due.
pub fn preview<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    config: &DigestConfig,
    now: Instant,
) -> Result<Preview, StoreError> {
    Ok(Preview {
        digest: composed(store, campaigns, config, now)?,
        next_due: store.digest_due()?.map(crate::sim::rfc3339),
        to: config.to.clone(),
    })
}

/// The daemon's digest task: waits for each due instant, sends, records.
/// Ends when `stop` turns true.
pub async fn run(
    handle: Handle,
    channels: Arc<Channels>,
    config: DigestConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let schedule = match config.schedule() {
        Ok(s) => s,
        Err(why) => {
            // `nudge check` and the start refuse this; a guard only.
            error!("[digest]: {why}; no digest will be sent");
            return;
        }
    };
    if let Some(only) = &config.campaigns {
        let campaigns = handle.campaigns_now();
        for name in only.iter().filter(|n| campaigns.get(n).is_none()) {
            warn!(campaign = %name, "[digest] names a campaign that is not loaded; it is left out");
        }
    }
    let mut tries = Tries::default();
    while !*stop.borrow() {
        let wait = match step(&handle, &channels, &config, &schedule, &mut tries).await {
            Ok(wait) => wait,
            Err(why) => {
                warn!("weekly digest: {why}; trying again in a minute");
                StdDuration::from_secs(60)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
}

/// The tries of the digest due now: how many failed for a passing
/// reason, and the messages that went (not sent again by the next try).
#[derive(Default)]
struct Tries {
    failed: u32,
    sent: std::collections::HashSet<String>,
}

/// One look at the digest: schedules the first, or sends one due and
/// records it; the real time to wait before the next look.
async fn step(
    handle: &Handle,
    channels: &Channels,
    config: &DigestConfig,
    schedule: &DigestSchedule,
    tries: &mut Tries,
) -> Result<StdDuration, String> {
    let clock = handle.clock().clone();
    let now = clock.now();
    let Some(due) = handle.store().digest_due().map_err(|e| e.to_string())? else {
        let first = schedule
            .next_after(now)
            .ok_or("the schedule names no instant after now")?;
        handle
            .set_digest_due(first)
            .await
            .map_err(|e| e.to_string())?;
        info!(due = %crate::sim::rfc3339(first), "weekly digest scheduled");
        return Ok(StdDuration::ZERO);
    };
    if due > now && !schedule.names(due) {
        // Scheduled by another `schedule` (the file was edited since):
        // the next is the present schedule's.
        let next = schedule
            .next_after(now)
            .ok_or("the schedule names no instant after now")?;
        handle
            .set_digest_due(next)
            .await
            .map_err(|e| e.to_string())?;
        info!(due = %crate::sim::rfc3339(next), "weekly digest rescheduled (the schedule changed)");
        return Ok(StdDuration::ZERO);
    }
    if due > now {
        // Looked at again at least every minute (a clock that jumps, a
        // schedule edited and reloaded by a restart).
        return Ok(clock.real_until(due).min(StdDuration::from_secs(60)));
    }
    let (store, campaigns, cfg) = (
        handle.store().clone(),
        handle.campaigns_now(),
        config.clone(),
    );
    let composed =
        tokio::task::spawn_blocking(move || composed(&store, &campaigns, &cfg, now)).await;
    let composed = match composed {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(format!("the report could not be read: {e}")),
        Err(e) => return Err(format!("the report failed: {e}")),
    };
    let mut passing = None;
    for message in messages(config, &composed, due) {
        if tries.sent.contains(&message.key) {
            continue;
        }
        match channels.get(Channel::Email).deliver(&message).await {
            Ok(_) => {
                info!(to = %message.to, key = %message.key, "weekly digest sent");
                tries.sent.insert(message.key);
            }
            Err(e @ (SendError::Retryable(_) | SendError::Throttled { .. })) => {
                passing = Some(e.to_string());
            }
            Err(e) => error!(to = %message.to, "weekly digest not sent: {e}"),
        }
    }
    if let Some(why) = passing {
        tries.failed += 1;
        if tries.failed < ATTEMPTS {
            return Err(format!("a digest could not be sent ({why})"));
        }
        error!("weekly digest given up after {ATTEMPTS} tries: {why}");
    }
    *tries = Tries::default();
    let next = schedule
        .next_after(now.max(due))
        .ok_or("the schedule names no instant after now")?;
    handle
        .set_digest_due(next)
        .await
        .map_err(|e| e.to_string())?;
    info!(next = %crate::sim::rfc3339(next), "weekly digest recorded as sent");
    Ok(StdDuration::ZERO)
}
