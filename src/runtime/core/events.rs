//! Events from outside (clicked, started, completed, ...) and pausing a
//! campaign.

use super::apply::{log, Step};
use super::enroll::is_identifier;
use super::*;

impl<S: Store> Core<S> {
    pub(super) fn is_paused(&self, txn: &Txn<S>, campaign: &str) -> Result<bool, StoreError> {
        if let Some(p) = self.paused_flags().get(campaign) {
            return Ok(*p);
        }
        let p = txn.paused(campaign)?;
        self.paused_flags().insert(campaign.to_string(), p);
        Ok(p)
    }

    pub(super) fn paused_flags(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.paused.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn event(
        &self,
        txn: &mut Txn<S>,
        req: &EventRequest,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Result<EventResponse, Refusal>, StoreError> {
        let Some(mut candidate) = self.find_candidate(txn, &req.candidate)? else {
            return Ok(Err(Refusal::UnknownCandidate(req.candidate.clone())));
        };
        let at = match &req.at {
            Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
                // The store keeps milliseconds: so does the engine.
                Ok(t) => t.with_timezone(&chrono::Utc).trunc_subsecs(3),
                Err(_) => return Ok(Err(Refusal::BadInstant(t.clone()))),
            },
            None => now,
        };
        // An event from the future would let the engine run ahead of the
        // clock and decide sends before their time.
        if at > now + Duration::minutes(1) {
            return Ok(Err(Refusal::EventInFuture { at, now }));
        }
        if let Some(id) = &req.id {
            if let Some(mut first) = txn.event_answer::<EventResponse>(&candidate.id, id)? {
                first.repeated = true;
                return Ok(Ok(first));
            }
        }
        if !is_identifier(&req.event) {
            return Ok(Err(Refusal::BadEventName(req.event.clone())));
        }
        // An event cannot change what the engine already decided: dated
        // before the latest instant any of the candidate's enrollments has
        // processed, it is refused rather than moved to that instant. Within
        // that instant's second it is taken (at that instant): senders often
        // give whole seconds.
        let enrollments = txn.enrollments_of(&candidate.id)?;
        if let Some(latest) = enrollments.iter().max_by_key(|e| e.engine.clock) {
            if at < latest.engine.clock.trunc_subsecs(0) {
                return Ok(Err(Refusal::EventBeforeProcessed {
                    at,
                    processed: latest.engine.clock,
                    campaign: latest.campaign.clone(),
                }));
            }
        }
        log(
            txn,
            &candidate.id,
            LogEntry {
                at,
                campaign: String::new(),
                kind: LogKind::Received {
                    event: req.event.clone(),
                    fields: req.fields.clone(),
                },
            },
        )?;
        if req.event == engine::step::OPTED_OUT {
            if !candidate.opted_out {
                candidate.opted_out = true;
                txn.put_candidate(&candidate)?;
            }
            // The person, not only this record: their address and number
            // are suppressed for every candidate enrolled with them.
            self.suppress_contacts(txn, &candidate, at)?;
        }
        let mut effects = Vec::new();
        let mut fresh = Vec::new();
        let engine_candidate = engine_candidate(&candidate);
        for (name, campaign) in self.campaigns.iter() {
            let Some(rule) = &campaign.machine.enroll else {
                continue;
            };
            if rule.event != req.event || candidate.opted_out {
                continue;
            }
            if txn.enrollment(&candidate.id, name)?.is_some() {
                continue;
            }
            if !campaign.machine.accepts(&engine_candidate) {
                effects.push(format!(
                    "{name}: not enrolled (the `where` filter does not take them)"
                ));
                continue;
            }
            let fields = std::mem::take(&mut candidate.fields);
            let (fields, missing) = self.missing_field(campaign, fields);
            candidate.fields = fields;
            if let Some(missing) = missing {
                effects.push(format!("{name}: not enrolled ({missing})"));
                continue;
            }
            let enr = self.start_enrollment(txn, campaign, &candidate, at, out)?;
            effects.push(format!("{name}: enrolled in {}", enr.state_name));
            fresh.push(name.clone());
        }
        for enr in txn.enrollments_of(&candidate.id)? {
            if fresh.contains(&enr.campaign) || enr.engine.outcome.is_some() {
                continue;
            }
            let before = enr.state_name.clone();
            let campaign = enr.campaign.clone();
            let after = self.step(
                txn,
                enr,
                Step::Event {
                    name: &req.event,
                    fields: &req.fields,
                    at,
                },
                now,
                out,
            )?;
            match &after.engine.outcome {
                Some(o) => effects.push(format!("{campaign}: exited {o}")),
                None if after.state_name != before => {
                    effects.push(format!("{campaign}: entered {}", after.state_name))
                }
                None => {}
            }
        }
        let response = EventResponse {
            candidate: candidate.id,
            at: exact_instant(at),
            effects,
            repeated: false,
        };
        if let Some(id) = &req.id {
            txn.remember_event(&response.candidate, id, &response);
        }
        Ok(Ok(response))
    }

    pub(super) fn set_paused(
        &self,
        txn: &mut Txn<S>,
        campaign: &str,
        paused: bool,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Result<(), Refusal>, StoreError> {
        if self.campaigns.get(campaign).is_none() {
            return Ok(Err(Refusal::unknown_campaign(campaign, &self.campaigns)));
        }
        let was = self.is_paused(txn, campaign)?;
        if was == paused {
            return Ok(Ok(()));
        }
        self.paused_flags().insert(campaign.to_string(), paused);
        txn.set_paused(campaign, paused);
        if paused {
            return Ok(Ok(()));
        }
        // Unpark: everything that fell due while paused runs now.
        for candidate in txn.parked(campaign)? {
            txn.unpark(campaign, &candidate);
            let Some(mut enr) = txn.enrollment(&candidate, campaign)? else {
                continue;
            };
            enr.parked = false;
            enr.engine.clock = enr.engine.clock.max(now);
            self.step(txn, enr, Step::Wake, now, out)?;
        }
        Ok(Ok(()))
    }
}
