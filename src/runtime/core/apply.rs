//! Applying the engine's decisions: stepping an enrollment, writing what
//! the step recorded (state, timers, history) and queueing its sends.

use super::reload::{migrate, placed, rearm};
use super::*;

/// What to step an enrollment with.
pub(super) enum Step<'a> {
    Wake,
    /// After downtime: run what fell due before this instant at the
    /// instants it fell due (everything it sends is late; see
    /// `Core::fire_one`).
    WakeBefore(Instant),
    Event {
        name: &'a str,
        fields: &'a BTreeMap<String, String>,
        at: Instant,
    },
}

pub(super) fn variant_names(machine: &Machine, variants: &[usize]) -> BTreeMap<String, String> {
    machine
        .experiments
        .iter()
        .zip(variants)
        .map(|(e, v)| {
            (
                e.name.clone(),
                e.variants
                    .get(*v)
                    .map_or_else(String::new, |(n, _)| n.clone()),
            )
        })
        .collect()
}

/// The sends of the candidate's other enrollments, for sliding limits.
pub(super) fn other_sends<T: Transaction>(
    txn: &mut T,
    enr: &Enrollment,
) -> Result<Vec<Instant>, StoreError> {
    let mut out = Vec::new();
    for other in txn.enrollments_of(&enr.candidate)? {
        if other.campaign != enr.campaign {
            out.extend(other.engine.recent_sends.iter().copied());
        }
    }
    Ok(out)
}

/// Appends to a candidate's history.
pub(super) fn log<T: Transaction>(
    txn: &mut T,
    candidate: &str,
    entry: LogEntry,
) -> Result<(), StoreError> {
    txn.log(candidate, entry)
}

impl<S: Store> Core<S> {
    pub(super) fn link(&self, candidate: &CandidateRecord) -> String {
        self.settings
            .tracked_link
            .replace("{token}", &candidate.token)
    }

    /// One engine step for one enrollment, and everything it causes.
    pub(super) fn step(
        &self,
        txn: &mut Txn<S>,
        mut enr: Enrollment,
        input: Step,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Enrollment, StoreError> {
        let Some(campaign) = self.campaigns.get(&enr.campaign).cloned() else {
            return Ok(enr);
        };
        let machine = &campaign.machine;
        if enr.version != campaign.version && !migrate(txn, &mut enr, &campaign, now)? {
            tracing::error!(
                candidate = %enr.candidate,
                campaign = %enr.campaign,
                state = %enr.state_name,
                "the candidate's state is not in the loaded campaign; left where it is"
            );
            return Ok(enr);
        }
        if !placed(machine, &enr) {
            tracing::error!(
                candidate = %enr.candidate,
                campaign = %enr.campaign,
                state = %enr.state_name,
                index = enr.engine.state,
                "the stored state does not match the campaign; left where it is"
            );
            return Ok(enr);
        }
        let Some(candidate) = txn.candidate(&enr.candidate)? else {
            return Ok(enr);
        };
        let engine_candidate = engine_candidate(&candidate);
        let zone = engine_candidate.zone(&machine.zone);
        let others = if machine.rate_limits.is_empty() {
            Vec::new()
        } else {
            other_sends(txn, &enr)?
        };
        let ctx = Ctx {
            candidate: &engine_candidate,
            zone,
            other_sends: &others,
            leaving: self.leaving(now),
        };
        let state = std::mem::take(&mut enr.engine);
        let result = match input {
            Step::Wake => engine::step(machine, &ctx, state, Input::Wake, now),
            Step::WakeBefore(cut) => {
                let before = cut - Duration::milliseconds(1);
                engine::step(machine, &ctx, state, Input::Wake, before)
            }
            Step::Event { name, fields, at } => {
                let at = at.max(state.clock);
                let first = engine::step(machine, &ctx, state, Input::Event { name, fields }, at);
                // What the event makes due at once (a split, a past deadline)
                // runs now rather than on the next timer tick.
                match first.next_wake {
                    Some(w) if w <= now.max(at) => {
                        let mut second =
                            engine::step(machine, &ctx, first.state, Input::Wake, now.max(at));
                        let mut records = first.records;
                        records.append(&mut second.records);
                        second.records = records;
                        second
                    }
                    _ => first,
                }
            }
        };
        enr.engine = result.state;
        self.apply_records(
            txn,
            enr,
            machine,
            &engine_candidate,
            zone,
            result.records,
            out,
        )
    }

    /// Logs what the engine decided, queues its sends, moves the counters,
    /// re-arms the timer, and writes the enrollment.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_records(
        &self,
        txn: &mut Txn<S>,
        mut enr: Enrollment,
        machine: &Machine,
        candidate: &Candidate,
        zone: Tz,
        records: Vec<engine::Record>,
        out: &mut Outgoing,
    ) -> Result<Enrollment, StoreError> {
        let campaign = machine.name.clone();
        let state_name = |id: &usize| {
            machine
                .states
                .get(*id)
                .map_or_else(|| "?".to_string(), |s| s.name.clone())
        };
        for record in records {
            let at = record.at;
            let kind = match record.what {
                Happening::Enrolled { .. } => continue,
                Happening::Entered { state, from, by } => {
                    let (old, new) = (state_name(&from), state_name(&state));
                    txn.bump(&campaign, &Counter::State(old.clone()), -1);
                    txn.bump(&campaign, &Counter::State(new.clone()), 1);
                    enr.state_name = new.clone();
                    LogKind::Entered {
                        state: new,
                        from: old,
                        by: facts::trigger(machine, &by),
                    }
                }
                Happening::Sent {
                    state,
                    template,
                    channel,
                    visit,
                    index,
                } => {
                    let send_key = SendKey::format(&campaign, &enr.candidate, visit, index);
                    let entry = LogEntry {
                        at,
                        campaign: campaign.clone(),
                        kind: LogKind::Sent {
                            state: state_name(&state),
                            template: template.clone(),
                            channel: channel.name().into(),
                            key: send_key.clone(),
                        },
                    };
                    log(txn, &enr.candidate, entry)?;
                    // Without `via`, the campaign's later channels with an
                    // address are the fallbacks if this one fails for good.
                    let via = machine
                        .states
                        .get(state)
                        .and_then(|s| s.sends.get(index))
                        .and_then(|s| s.via);
                    let mut route = vec![channel];
                    if via.is_none() {
                        route.extend(
                            machine
                                .channels
                                .iter()
                                .copied()
                                .skip_while(|c| *c != channel)
                                .skip(1)
                                .filter(|c| candidate.has_address(*c)),
                        );
                    }
                    self.queue_send(
                        txn, &enr, machine, candidate, zone, &template, &route, &send_key, at, out,
                    )?;
                    continue;
                }
                Happening::Held {
                    state,
                    template,
                    until,
                    reason,
                } => LogKind::Held {
                    state: state_name(&state),
                    template,
                    until: until.timestamp_millis(),
                    why: facts::hold(machine, state, reason),
                },
                Happening::Cancelled {
                    state,
                    template,
                    reason,
                } => LogKind::Cancelled {
                    state: state_name(&state),
                    template,
                    why: facts::cancel(machine, &reason),
                },
                Happening::Skipped {
                    state,
                    template,
                    channel,
                } => LogKind::Skipped {
                    state: state_name(&state),
                    template,
                    why: facts::skip(machine, channel),
                },
                Happening::Late {
                    state,
                    template,
                    why,
                    ..
                } => {
                    txn.bump(&campaign, &Counter::Late, 1);
                    LogKind::Skipped {
                        state: state_name(&state),
                        template,
                        why: Skip::Late(facts::late(&why)),
                    }
                }
                Happening::Suppressed {
                    state,
                    template,
                    limit,
                } => LogKind::Suppressed {
                    state: state_name(&state),
                    template,
                    limit,
                },
                Happening::DeadlineStarted { deadline } => LogKind::DeadlineStarted {
                    deadline: deadline.timestamp_millis(),
                },
                Happening::Exited { outcome, converted } => {
                    txn.bump(&campaign, &Counter::State(enr.state_name.clone()), -1);
                    txn.bump(&campaign, &Counter::Outcome(outcome.clone()), 1);
                    LogKind::Exited { outcome, converted }
                }
            };
            log(
                txn,
                &enr.candidate,
                LogEntry {
                    at,
                    campaign: campaign.clone(),
                    kind,
                },
            )?;
        }
        rearm(txn, &mut enr, machine);
        put_enrollment(txn, &enr)?;
        Ok(enr)
    }

    /// Renders a send and puts it in the outbox and the delivery queue.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn queue_send(
        &self,
        txn: &mut Txn<S>,
        enr: &Enrollment,
        machine: &Machine,
        candidate: &Candidate,
        zone: Tz,
        template: &str,
        route: &[Channel],
        send_key: &str,
        at: Instant,
        out: &mut Outgoing,
    ) -> Result<(), StoreError> {
        let Some((&channel, fallbacks)) = route.split_first() else {
            return Ok(());
        };
        let Some(key) = SendKey::parse(send_key) else {
            return Ok(());
        };
        if txn.unsettled_send(key)?.is_some() {
            return Ok(());
        }
        let record = txn.candidate(&enr.candidate)?;
        let opted_out = record.as_ref().is_some_and(|r| r.opted_out);
        let draft = Draft {
            machine,
            candidate,
            zone,
            template,
            channel,
            link: record.as_ref().map(|r| self.link(r)).unwrap_or_default(),
            deadline: enr.engine.deadline,
            variants: &enr.variants,
            at,
        };
        // Moved into the message, not copied: this runs for every send.
        let (to, subject, body, html, unsubscribe_url, unmade) =
            match draft.compose(self.templates.as_deref(), &self.settings) {
                Ok(c) => (c.to, c.subject, c.body, c.html, c.unsubscribe_url, None),
                Err(e) => (
                    draft.to(),
                    None,
                    String::new(),
                    None,
                    draft.unsubscribe_url(),
                    Some(e),
                ),
            };
        let message = Message {
            key: send_key.to_string(),
            campaign: machine.name.clone(),
            candidate: enr.candidate.clone(),
            template: template.to_string(),
            channel,
            to,
            subject,
            body,
            html,
            unsubscribe_url,
            scheduled_at: at,
            in_flight: false,
        };
        let refusal = if opted_out {
            Some(Failure::OptedOut)
        } else if let Some(why) = self.suppressed_destination(txn, &message)? {
            Some(why)
        } else {
            unmade.map(Failure::Render)
        };
        let mut entry = OutboxEntry {
            message: message.clone(),
            status: SendStatus::Queued,
            attempts: 0,
            possible_duplicate: false,
            fallbacks: fallbacks.to_vec(),
            retry_at: None,
        };
        if let Some(why) = refusal {
            let suppressed = matches!(why, Failure::Suppressed { .. });
            entry.status = if suppressed {
                // Withheld on purpose, not a failed delivery.
                SendStatus::Suppressed(why.to_string())
            } else {
                txn.bump(&machine.name, &Counter::Failed, 1);
                SendStatus::Failed(why.to_string())
            };
            txn.put_send(&entry)?;
            log(
                txn,
                &enr.candidate,
                LogEntry {
                    at,
                    campaign: machine.name.clone(),
                    kind: LogKind::DeliveryFailed {
                        key: send_key.to_string(),
                        channel: channel.name().into(),
                        why,
                    },
                },
            )?;
            // A suppressed address leaves the candidate's other channels
            // (a number not on the list) to try, as a failure would.
            return match fallbacks.first() {
                Some(next) if suppressed => {
                    let next_key = key.fallback(next.name());
                    log(
                        txn,
                        &enr.candidate,
                        LogEntry {
                            at,
                            campaign: machine.name.clone(),
                            kind: LogKind::FellBack {
                                key: send_key.to_string(),
                                from: channel.name().into(),
                                to: next.name().into(),
                            },
                        },
                    )?;
                    self.queue_send(
                        txn, enr, machine, candidate, zone, template, fallbacks, &next_key, at, out,
                    )
                }
                _ => Ok(()),
            };
        }
        if self.settle_if_delivered_before(txn, &entry, at)? {
            return Ok(());
        }
        txn.put_send(&entry)?;
        txn.enqueue(key);
        let mut message = message;
        message.in_flight = self.premark(txn, key, channel);
        out.push(message);
        Ok(())
    }
}

/// The engine's view of a stored candidate.
pub fn engine_candidate(record: &CandidateRecord) -> Candidate {
    Candidate {
        id: record.id.clone(),
        fields: record.fields.clone(),
    }
}
