//! The delivery journal: sends marked in flight and settled, retries of
//! failed sends, and the recovery of undelivered sends after a restart.
//! Each of these last gates before a channel skips a send that could only
//! go late now (the engine's rule, [`engine::late`]).

use super::apply::log;
use super::*;

/// Sends in flight past which a queued send is no longer marked in flight
/// as it is queued ([`Core::mark_in_flight_when_queued`]), so a backlog
/// waits as queued and a crash leaves about this many in flight, not the
/// dispatcher's whole backlog. (Two threads stepping one batch may each
/// go up to it.)
pub const PREMARKED_AT_MOST: usize = 1024;

impl<S: Store> Core<S> {
    /// Sends to these channels are marked in flight in the same commit
    /// that queues them, so the dispatcher hands them to the channel
    /// without a commit of its own (one flushed commit less between a due
    /// timer and its channel). Only for channels that recognise a repeated
    /// key, where being in flight at a crash costs nothing (the repeat is
    /// dropped), and that are not paced (a paced send may wait long before
    /// it goes). The last gate before a channel (opt-out, communications
    /// off) is then the queueing commit itself; the daemon passes no
    /// channel when communications are off. Past [`PREMARKED_AT_MOST`]
    /// sends in flight, sends are queued unmarked, and the dispatcher marks
    /// them ([`Message::in_flight`] tells which is which).
    pub fn mark_in_flight_when_queued(&mut self, channels: Vec<Channel>) {
        self.premarked = channels;
    }

    /// Marks a send in flight now if its channel is one of
    /// [`Core::mark_in_flight_when_queued`]'s and fewer than
    /// [`PREMARKED_AT_MOST`] sends are in flight; says whether it did.
    pub(super) fn premark(&self, txn: &mut Txn<S>, send_key: SendKey, channel: Channel) -> bool {
        let mark = self.premarked.contains(&channel)
            && self.store.in_flight() + txn.launches() < PREMARKED_AT_MOST;
        if mark {
            txn.launch(send_key);
        }
        mark
    }

    /// The last gate before a channel: every send is checked against the
    /// candidate's opt-out and the suppression list here, whatever path
    /// queued it, and marked in flight only if it may go. Returns the keys
    /// that may go. (A send to an address suppressed since it was queued
    /// does not fall back to another channel here; one queued after is
    /// refused when queued, and does.)
    pub(super) fn clear_for_delivery(
        &self,
        txn: &mut Txn<S>,
        keys: Vec<String>,
        now: Instant,
    ) -> Result<Vec<String>, StoreError> {
        let mut cleared = Vec::with_capacity(keys.len());
        for k in keys {
            let Some(send_key) = SendKey::parse(&k) else {
                continue;
            };
            let entry = match txn.send(send_key) {
                Ok(Some(entry)) => entry,
                Ok(None) => continue,
                Err(e @ StoreError::Corrupt { .. }) => {
                    tracing::error!(%e, send = %k, "an undelivered send belongs to a damaged record; it is left as it is");
                    continue;
                }
                Err(e) => return Err(e),
            };
            if entry.status != SendStatus::Queued || entry.retry_at.is_some() {
                continue;
            }
            if self.settle_if_delivered_before(txn, &entry, now)? {
                continue;
            }
            let opted_out = txn
                .candidate(&entry.message.candidate)?
                .is_some_and(|c| c.opted_out);
            let channel = entry.message.channel.name().to_string();
            // The last gate before a channel: nothing leaves with
            // communications off, nothing reaches a candidate who opted out
            // or an address on the suppression list.
            let refusal = if self.settings.communications_off {
                Some(Failure::CommunicationsOff)
            } else if opted_out {
                Some(Failure::OptedOut)
            } else if let Some(why) = self.lateness(txn, &entry.message, now)? {
                // Waited too long for its channel (a paced backlog).
                self.settle_late(txn, entry, &why, now)?;
                continue;
            } else {
                self.suppressed_destination(txn, &entry.message)?
            };
            if let Some(why) = refusal {
                let status = match why {
                    Failure::CommunicationsOff | Failure::Suppressed { .. } => {
                        SendStatus::Suppressed(why.to_string())
                    }
                    _ => SendStatus::Failed(why.to_string()),
                };
                let kind = LogKind::DeliveryFailed {
                    key: k,
                    channel,
                    why,
                };
                self.settle(txn, entry, status, kind, now)?;
                continue;
            }
            // Durably in flight from here: the journal lists it, the
            // dossier is left as it is until the channel answers.
            txn.launch(SendKey::of(&entry.message));
            cleared.push(k);
        }
        Ok(cleared)
    }

    /// Settles a send as delivered, with a history line, if a store this
    /// one was restored over delivered it (the commit ledger remembers:
    /// see `store::sled::ledger`), so it is never sent again; says whether
    /// it did.
    pub(super) fn settle_if_delivered_before(
        &self,
        txn: &mut Txn<S>,
        entry: &OutboxEntry,
        now: Instant,
    ) -> Result<bool, StoreError> {
        if !self.store.delivered_before(&entry.message.key) {
            return Ok(false);
        }
        let kind = LogKind::Delivered {
            key: entry.message.key.clone(),
            channel: entry.message.channel.name().into(),
            duplicate: true,
            possible_duplicate: entry.possible_duplicate,
        };
        self.settle(txn, entry.clone(), SendStatus::Delivered, kind, now)?;
        Ok(true)
    }

    /// Ends a send's time in the delivery queue with its final status, and
    /// records why in the candidate's history.
    pub(super) fn settle(
        &self,
        txn: &mut Txn<S>,
        mut entry: OutboxEntry,
        status: SendStatus,
        kind: LogKind,
        now: Instant,
    ) -> Result<(), StoreError> {
        match status {
            SendStatus::Failed(_) => txn.bump(&entry.message.campaign, &Counter::Failed, 1),
            SendStatus::Delivered => {
                let hour = Counter::sends_on(entry.message.channel.name(), now);
                txn.bump(&entry.message.campaign, &hour, 1);
            }
            SendStatus::Queued | SendStatus::Suppressed(_) => {}
        }
        entry.status = status;
        entry.retry_at = None;
        txn.settle(SendKey::of(&entry.message));
        txn.put_send(&entry)?;
        let entry_log = LogEntry {
            at: now,
            campaign: entry.message.campaign.clone(),
            kind,
        };
        log(txn, &entry.message.candidate, entry_log)
    }

    /// Whether a send decided earlier could only go late if it went at
    /// `now`: the engine's rule ([`engine::late`]), from the instant it
    /// was due to go, against its enrollment's deadline.
    pub(super) fn lateness(
        &self,
        txn: &mut Txn<S>,
        message: &Message,
        now: Instant,
    ) -> Result<Option<engine::Lateness>, StoreError> {
        let deadline = txn
            .enrollment(&message.candidate, &message.campaign)?
            .and_then(|e| e.engine.deadline);
        Ok(engine::late(
            message.scheduled_at,
            now,
            deadline,
            Some(self.settings.stale_after),
        ))
    }

    /// Settles a send that could only go late: never handed to a channel,
    /// skipped as `late` in the candidate's history and counted.
    pub(super) fn settle_late(
        &self,
        txn: &mut Txn<S>,
        entry: OutboxEntry,
        why: &engine::Lateness,
        now: Instant,
    ) -> Result<(), StoreError> {
        let why = Failure::Late(facts::late(why));
        txn.bump(&entry.message.campaign, &Counter::Late, 1);
        let kind = LogKind::DeliveryFailed {
            key: entry.message.key.clone(),
            channel: entry.message.channel.name().to_string(),
            why: why.clone(),
        };
        self.settle(
            txn,
            entry,
            SendStatus::Suppressed(why.to_string()),
            kind,
            now,
        )
    }

    /// Sends whose retry is due: back to the dispatcher, in one commit
    /// (those that could only go late now are skipped instead).
    pub fn retry_due(&mut self, now: Instant, limit: usize) -> Result<Outgoing, StoreError> {
        let mut txn = self.store.begin();
        let due = txn.take_due_retries(now, limit)?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for k in due {
            let Some(send_key) = SendKey::parse(&k) else {
                continue;
            };
            if let Some(mut entry) = txn.send(send_key)? {
                if entry.status == SendStatus::Queued && entry.retry_at.is_some() {
                    // A retry marked in flight here skips the dispatcher's
                    // gate: it is gated now.
                    let opted_out = txn
                        .candidate(&entry.message.candidate)?
                        .is_some_and(|c| c.opted_out);
                    let refusal = if opted_out {
                        Some(Failure::OptedOut)
                    } else {
                        self.suppressed_destination(&txn, &entry.message)?
                    };
                    if let Some(why) = refusal {
                        let status = match why {
                            Failure::Suppressed { .. } => SendStatus::Suppressed(why.to_string()),
                            _ => SendStatus::Failed(why.to_string()),
                        };
                        let kind = LogKind::DeliveryFailed {
                            key: k,
                            channel: entry.message.channel.name().to_string(),
                            why,
                        };
                        self.settle(&mut txn, entry, status, kind, now)?;
                        continue;
                    }
                    entry.retry_at = None;
                    if self.settle_if_delivered_before(&mut txn, &entry, now)? {
                        continue;
                    }
                    if let Some(why) = self.lateness(&mut txn, &entry.message, now)? {
                        self.settle_late(&mut txn, entry, &why, now)?;
                        continue;
                    }
                    txn.put_send(&entry)?;
                    let send_key = SendKey::of(&entry.message);
                    txn.enqueue(send_key);
                    let in_flight = self.premark(&mut txn, send_key, entry.message.channel);
                    entry.message.in_flight = in_flight;
                    out.push(entry.message);
                }
            }
        }
        txn.commit()?;
        Ok(out)
    }

    /// Sends not yet delivered, in flight ones first, then in the order
    /// they were decided; marks those that were in flight on a channel that
    /// cannot recognise a repeat as possible duplicates (and logs it) before
    /// they go again. All at once: see [`Core::begin_recovery`] for the
    /// daemon's way, a chunk at a time.
    pub fn recover(
        &mut self,
        idempotent: impl Fn(Channel) -> bool,
        now: Instant,
    ) -> Result<Vec<Pending>, StoreError> {
        self.begin_recovery();
        let mut all = Vec::new();
        loop {
            all.extend(self.recover_next(&idempotent, now, 4096)?);
            if !self.recovering() {
                return Ok(all);
            }
        }
    }

    /// Lists the sends the journal says were queued or in flight when the
    /// previous process stopped (without reading their dossiers yet):
    /// (queued, in flight).
    pub fn begin_recovery(&mut self) -> (usize, usize) {
        let mut listed = self.store.queued_sends();
        // In flight first: they are the oldest, and the ones a restart owes
        // an answer soonest.
        listed.sort_by_key(|(_, flying)| !flying);
        let in_flight = listed.iter().filter(|(_, f)| *f).count();
        let queued = listed.len() - in_flight;
        self.recovering = listed.into();
        self.tidy_journal = true;
        (queued, in_flight)
    }

    /// Stops handing back the sends found at startup (after a store error:
    /// the journal keeps them for the next start).
    pub fn abandon_recovery(&mut self) {
        self.recovering.clear();
        self.tidy_journal = false;
    }

    /// Whether sends found at startup are still to be handed back.
    pub fn recovering(&self) -> bool {
        !self.recovering.is_empty() || self.tidy_journal
    }

    /// The next `limit` sends of the recovery, read from their dossiers and
    /// made ready to go again, in one commit (settled ones leave the
    /// journal).
    pub fn recover_next(
        &mut self,
        idempotent: impl Fn(Channel) -> bool,
        now: Instant,
        limit: usize,
    ) -> Result<Vec<Pending>, StoreError> {
        let mut pending = Vec::new();
        let mut txn = self.store.begin();
        if std::mem::take(&mut self.tidy_journal) {
            // Handed to a channel and settled since, but listed still.
            for k in self.store.flying_unqueued() {
                if let Some(k) = SendKey::parse(&k) {
                    txn.settle(k);
                }
            }
        }
        let take = limit.max(1).min(self.recovering.len());
        let chunk: Vec<(String, bool)> = self.recovering.drain(..take).collect();
        for (k, was_in_flight) in chunk {
            let Some(send_key) = SendKey::parse(&k) else {
                continue;
            };
            let mut entry = match txn.send(send_key) {
                Ok(Some(entry)) => entry,
                Ok(None) => {
                    txn.settle(send_key);
                    continue;
                }
                Err(e @ StoreError::Corrupt { .. }) => {
                    tracing::error!(%e, send = %k, "an undelivered send belongs to a damaged record; it is left as it is");
                    continue;
                }
                Err(e) => return Err(e),
            };
            if entry.retry_at.is_some() || entry.status != SendStatus::Queued {
                // Settled after its journal record was written, or waiting
                // for its retry (the retry index brings it back): off the
                // queue.
                txn.settle(send_key);
                continue;
            }
            if self.settle_if_delivered_before(&mut txn, &entry, now)? {
                continue;
            }
            if let Some(why) = self.lateness(&mut txn, &entry.message, now)? {
                // Undelivered when nudge stopped, and too late now.
                self.settle_late(&mut txn, entry, &why, now)?;
                continue;
            }
            if was_in_flight && !idempotent(entry.message.channel) && !entry.possible_duplicate {
                entry.possible_duplicate = true;
                txn.put_send(&entry)?;
                log(
                    &mut txn,
                    &entry.message.candidate,
                    LogEntry {
                        at: now,
                        campaign: entry.message.campaign.clone(),
                        kind: LogKind::ResentInDoubt {
                            key: k.clone(),
                            channel: entry.message.channel.name().into(),
                        },
                    },
                )?;
            }
            let channel = entry.message.channel;
            // In flight already; on the other channels the dispatcher marks
            // it again (checking the opt-out once more).
            entry.message.in_flight = if was_in_flight {
                self.premarked.contains(&channel)
            } else {
                self.premark(&mut txn, send_key, channel)
            };
            pending.push(Pending {
                message: entry.message,
                was_in_flight,
            });
        }
        if !txn.is_empty() {
            txn.commit()?;
        }
        Ok(pending)
    }
}
