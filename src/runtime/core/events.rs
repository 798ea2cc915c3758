//! Events from outside (clicked, started, completed, ...) and pausing a
//! campaign.

use super::apply::{log, Step};
use super::enroll::is_identifier;
use super::*;

/// The instant an event says it happened (`at`, RFC 3339; default `now`),
/// to the millisecond the store keeps; refused when more than a minute
/// ahead of `now`: an event from the future would let the engine run ahead
/// of the clock and decide sends before their time.
pub(super) fn event_instant(at: Option<&str>, now: Instant) -> Result<Instant, Refusal> {
    let at = match at {
        Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
            Ok(t) => t.with_timezone(&chrono::Utc).trunc_subsecs(3),
            Err(_) => return Err(Refusal::BadInstant(t.to_string())),
        },
        None => now,
    };
    if at > now + Duration::minutes(1) {
        return Err(Refusal::EventInFuture { at, now });
    }
    Ok(at)
}

/// Refuses an event dated before the latest instant any of the
/// candidate's enrollments has processed: it cannot change what the engine
/// already decided. Within that instant's second it is taken: senders
/// often give whole seconds.
pub(super) fn not_before_processed<T: Transaction>(
    txn: &mut T,
    candidate: &str,
    at: Instant,
) -> Result<Result<(), Refusal>, StoreError> {
    let enrollments = txn.enrollments_of(candidate)?;
    if let Some(latest) = enrollments.iter().max_by_key(|e| e.engine.clock) {
        if at < latest.engine.clock.trunc_subsecs(0) {
            return Ok(Err(Refusal::EventBeforeProcessed {
                at,
                processed: latest.engine.clock,
                campaign: latest.campaign.clone(),
            }));
        }
    }
    Ok(Ok(()))
}

/// The event that brings a person in.
pub(super) const APPLIED: &str = "applied";

/// What an event did to one campaign's enrollment of a candidate.
pub(super) enum Taken {
    Enrolled(Box<Enrollment>),
    /// Enrolled before in this campaign: nothing changed.
    Already(String),
    /// Not enrolled, and why.
    Not {
        campaign: String,
        reason: String,
    },
}

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
        let found = self.find_candidate(txn, &req.candidate)?;
        if req.event == APPLIED {
            // An application: from someone new, it creates them.
            return self.applied_by_event(txn, req, found, now, out);
        }
        let Some(mut candidate) = found else {
            return Ok(Err(Refusal::UnknownCandidate(req.candidate.clone())));
        };
        let at = match event_instant(req.at.as_deref(), now) {
            Ok(at) => at,
            Err(refusal) => return Ok(Err(refusal)),
        };
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
        if let Err(refusal) = not_before_processed(txn, &candidate.id, at)? {
            return Ok(Err(refusal));
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
        for taken in self.enroll_on(txn, &mut candidate, &req.event, None, at, out)? {
            match taken {
                Taken::Enrolled(enr) => {
                    effects.push(format!("{}: enrolled in {}", enr.campaign, enr.state_name));
                    fresh.push(enr.campaign);
                }
                Taken::Already(_) => {}
                // As before: an opted-out candidate is not enrolled, silently.
                Taken::Not { .. } if candidate.opted_out => {}
                Taken::Not { campaign, reason } => {
                    effects.push(format!("{campaign}: not enrolled ({reason})"))
                }
            }
        }
        self.step_enrollments(txn, &candidate, req, &fresh, at, now, out, &mut effects)?;
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

    /// Enrolls `candidate` in the campaigns that enroll on `event` (or, with
    /// `only`, in that campaign whatever its rule, its `where` filter obeyed
    /// unless `only.1` says to ignore it), each as [`Taken`].
    pub(super) fn enroll_on(
        &self,
        txn: &mut Txn<S>,
        candidate: &mut CandidateRecord,
        event: &str,
        only: Option<(&str, bool)>,
        at: Instant,
        out: &mut Outgoing,
    ) -> Result<Vec<Taken>, StoreError> {
        let mut taken = Vec::new();
        let engine_candidate = engine_candidate(candidate);
        for (name, campaign) in self.campaigns.iter() {
            let ignore_filter = match only {
                Some((only, ignore)) if only == name.as_str() => ignore,
                Some(_) => continue,
                None => match &campaign.machine.enroll {
                    Some(rule) if rule.event == event => false,
                    _ => continue,
                },
            };
            if txn.enrollment(&candidate.id, name)?.is_some() {
                taken.push(Taken::Already(name.clone()));
                continue;
            }
            if candidate.opted_out {
                taken.push(Taken::Not {
                    campaign: name.clone(),
                    reason: "they opted out".into(),
                });
                continue;
            }
            if !ignore_filter && !campaign.machine.accepts(&engine_candidate) {
                taken.push(Taken::Not {
                    campaign: name.clone(),
                    reason: "the `where` filter does not take them".into(),
                });
                continue;
            }
            let fields = std::mem::take(&mut candidate.fields);
            let (fields, missing) = self.missing_field(campaign, fields);
            candidate.fields = fields;
            if let Some(missing) = missing {
                taken.push(Taken::Not {
                    campaign: name.clone(),
                    reason: missing.to_string(),
                });
                continue;
            }
            let enr = self.start_enrollment(txn, campaign, candidate, at, out)?;
            taken.push(Taken::Enrolled(Box::new(enr)));
        }
        Ok(taken)
    }

    /// Gives the event `req` to the candidate's enrollments that were not
    /// just started (`fresh`) and have not ended, noting what each did.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn step_enrollments(
        &self,
        txn: &mut Txn<S>,
        candidate: &CandidateRecord,
        req: &EventRequest,
        fresh: &[String],
        at: Instant,
        now: Instant,
        out: &mut Outgoing,
        effects: &mut Vec<String>,
    ) -> Result<(), StoreError> {
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
        Ok(())
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
