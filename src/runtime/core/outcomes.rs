//! A channel's answer for a send: delivered, failed for good (with a
//! fallback to another channel), or to be tried again.

use super::apply::log;
use super::*;

impl<S: Store> Core<S> {
    /// A channel's answer: delivered; failed for a passing reason (tried
    /// again after a backoff, durably); or failed for good (the next channel
    /// of the campaign is tried; a bounce is also a `bounced` event).
    pub(super) fn delivered(
        &self,
        txn: &mut Txn<S>,
        k: &str,
        outcome: Result<Delivered, SendError>,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<(), StoreError> {
        let Some(send_key) = SendKey::parse(k) else {
            return Ok(());
        };
        let Some(mut entry) = txn.send(send_key)? else {
            return Ok(());
        };
        if entry.status != SendStatus::Queued {
            // Settled already (an answer that arrives twice).
            return Ok(());
        }
        entry.attempts += 1;
        let channel = entry.message.channel.name().to_string();
        let candidate = entry.message.candidate.clone();
        let campaign = entry.message.campaign.clone();
        let note = |txn: &mut Txn<S>, kind: LogKind| {
            log(
                txn,
                &candidate,
                LogEntry {
                    at: now,
                    campaign: campaign.clone(),
                    kind,
                },
            )
        };
        let error = match outcome {
            Ok(d) => {
                let kind = LogKind::Delivered {
                    key: k.to_string(),
                    channel,
                    duplicate: d.duplicate,
                    possible_duplicate: entry.possible_duplicate,
                };
                return self.settle(txn, entry, SendStatus::Delivered, kind, now);
            }
            Err(e) => e,
        };
        let (kind, detail) = failure_of(&error);
        let failure = |final_attempt: bool| Failure::Channel {
            kind,
            detail: detail.to_string(),
            attempts: entry.attempts,
            final_attempt,
        };
        if error.is_retryable() {
            let backoff = self
                .settings
                .backoff
                .delay(entry.attempts, crate::runtime::policy::jitter());
            if let Some(wait) = backoff {
                let wait = match &error {
                    SendError::Throttled { retry_after, .. } => wait.max(*retry_after),
                    _ => wait,
                };
                let when = now + Duration::from_std(wait).unwrap_or(Duration::hours(1));
                entry.status = SendStatus::Queued;
                entry.retry_at = Some(when.timestamp_millis());
                txn.retry_send(send_key, when);
                txn.settle(send_key);
                txn.put_send(&entry)?;
                return note(
                    txn,
                    LogKind::Retrying {
                        key: k.to_string(),
                        channel,
                        why: failure(false),
                        at: when.timestamp_millis(),
                    },
                );
            }
        }
        // Failed for good (or out of attempts).
        let why = failure(true);
        let status = SendStatus::Failed(why.to_string());
        let kind = LogKind::DeliveryFailed {
            key: k.to_string(),
            channel: channel.clone(),
            why,
        };
        self.settle(txn, entry.clone(), status, kind, now)?;
        if matches!(error, SendError::Unsubscribed(_)) {
            // A STOP to the provider is the candidate's opt-out: recorded as
            // theirs, which ends every campaign and every later send, so
            // there is no next channel to try.
            let stop = EventRequest {
                candidate: candidate.clone(),
                event: engine::step::OPTED_OUT.into(),
                at: None,
                fields: BTreeMap::from([("channel".to_string(), channel.clone())]),
                id: Some(format!("unsubscribed:{k}")),
            };
            if let Err(e) = self.event(txn, &stop, now, out)? {
                tracing::warn!(key = k, "recording the opt-out failed: {e}");
            }
            return Ok(());
        }
        if matches!(error, SendError::Bounced(_)) {
            let bounce = EventRequest {
                candidate: candidate.clone(),
                event: "bounced".into(),
                at: None,
                fields: BTreeMap::from([("channel".to_string(), channel.clone())]),
                id: Some(format!("bounce:{k}")),
            };
            if let Err(e) = self.event(txn, &bounce, now, out)? {
                tracing::warn!(key = k, "recording the bounce failed: {e}");
            }
        }
        self.fall_back(txn, &entry, now, out)
    }

    /// Tries a failed send on the campaign's next channel with an address,
    /// unless the candidate has left the campaign meanwhile.
    pub(super) fn fall_back(
        &self,
        txn: &mut Txn<S>,
        failed: &OutboxEntry,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<(), StoreError> {
        let Some(&next) = failed.fallbacks.first() else {
            return Ok(());
        };
        let m = &failed.message;
        let Some(campaign) = self.campaigns.get(&m.campaign).cloned() else {
            return Ok(());
        };
        let Some(enr) = txn.enrollment(&m.candidate, &m.campaign)? else {
            return Ok(());
        };
        let Some(record) = txn.candidate(&m.candidate)? else {
            return Ok(());
        };
        if enr
            .engine
            .outcome
            .as_deref()
            .is_some_and(|o| o != enr.state_name)
        {
            // Exited by an event (a bounce with `exit on bounced`, a
            // completion): the message has no reason to go any more. A final
            // state's own message still goes.
            return Ok(());
        }
        let candidate = engine_candidate(&record);
        let zone = candidate.zone(&campaign.machine.zone);
        let send_key = SendKey::of(m).fallback(next.name());
        // The next channel carries the same message, due when it was.
        if let Some(why) = self.lateness(txn, m, now)? {
            txn.bump(&m.campaign, &Counter::Late, 1);
            let kind = LogKind::DeliveryFailed {
                key: send_key,
                channel: next.name().into(),
                why: Failure::Late(facts::late(&why)),
            };
            let entry = LogEntry {
                at: now,
                campaign: m.campaign.clone(),
                kind,
            };
            return log(txn, &m.candidate, entry);
        }
        log(
            txn,
            &m.candidate,
            LogEntry {
                at: now,
                campaign: m.campaign.clone(),
                kind: LogKind::FellBack {
                    key: m.key.clone(),
                    from: m.channel.name().into(),
                    to: next.name().into(),
                },
            },
        )?;
        self.queue_send(
            txn,
            &enr,
            &campaign.machine,
            &candidate,
            zone,
            &m.template,
            &failed.fallbacks,
            &send_key,
            now,
            out,
        )
    }
}

/// A channel's error as a fact: its kind and its own words.
fn failure_of(error: &SendError) -> (FailureKind, &str) {
    match error {
        SendError::Retryable(why) => (FailureKind::Transient, why),
        SendError::Throttled { why, .. } => (FailureKind::Throttled, why),
        SendError::Permanent(why) => (FailureKind::Permanent, why),
        SendError::Bounced(why) => (FailureKind::Bounced, why),
        SendError::Unsubscribed(why) => (FailureKind::Unsubscribed, why),
    }
}
