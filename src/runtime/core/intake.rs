//! Applications: a person who applied (the apply form, an ATS or job
//! board, an import, the API) is found or created, then enrolled in the
//! campaigns that take applicants.

use super::apply::log;
use super::events::{event_instant, not_before_processed, Taken, APPLIED};
use super::*;
use crate::runtime::api::NotEnrolled;

impl<S: Store> Core<S> {
    pub(super) fn apply(
        &self,
        txn: &mut Txn<S>,
        req: &ApplyRequest,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Result<ApplyResponse, Refusal>, StoreError> {
        let at = match event_instant(req.at.as_deref(), now) {
            Ok(at) => at,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if let Some(name) = &req.campaign {
            if self.campaigns.get(name).is_none() {
                return Ok(Err(Refusal::unknown_campaign(name, &self.campaigns)));
            }
        }
        let has_contact = ["email", "phone"]
            .iter()
            .any(|k| req.fields.get(*k).is_some_and(|v| !v.trim().is_empty()));
        if !has_contact {
            return Ok(Err(Refusal::NoContact));
        }
        let clean = match self.clean_fields(req.external_id.as_deref(), &req.fields) {
            Ok(clean) => clean,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let (mut candidate, created) =
            match self.upsert(txn, None, req.external_id.as_deref(), clean, at)? {
                Ok(found) => found,
                Err(refusal) => return Ok(Err(refusal)),
            };
        // A person created just now has answered nothing before.
        if let Some(id) = req.id.as_ref().filter(|_| !created) {
            // Kept as JSON: the answer has fields left out when empty,
            // which the store's own encoding cannot read back.
            let first = txn.event_answer::<String>(&candidate.id, id)?;
            if let Some(Ok(mut first)) = first.map(|j| serde_json::from_str::<ApplyResponse>(&j)) {
                first.repeated = true;
                self.give_back(&mut first, &candidate);
                return Ok(Ok(first));
            }
        }
        let mut response = ApplyResponse {
            candidate: candidate.id.clone(),
            link: self.link(&candidate),
            created,
            repeated: false,
            at: exact_instant(at),
            enrolled: Vec::new(),
            not_enrolled: Vec::new(),
            effects: Vec::new(),
            suppressed: Vec::new(),
        };
        if req.enroll {
            if !created {
                if let Err(refusal) = not_before_processed(txn, &candidate.id, at)? {
                    return Ok(Err(refusal));
                }
            }
            let event = EventRequest {
                candidate: candidate.id.clone(),
                event: APPLIED.to_string(),
                at: req.at.clone(),
                fields: req.fields.clone(),
                id: None,
            };
            log(
                txn,
                &candidate.id,
                LogEntry {
                    at,
                    campaign: String::new(),
                    kind: LogKind::Received {
                        event: event.event.clone(),
                        fields: event.fields.clone(),
                    },
                },
            )?;
            let only = req
                .campaign
                .as_deref()
                .map(|name| (name, req.ignore_filter));
            let mut fresh = Vec::new();
            for taken in self.enroll_on(txn, &mut candidate, APPLIED, only, at, out)? {
                match taken {
                    Taken::Enrolled(enr) => {
                        fresh.push(enr.campaign.clone());
                        response.enrolled.push(EnrollResponse {
                            campaign: enr.campaign.clone(),
                            candidate: candidate.id.clone(),
                            link: response.link.clone(),
                            enrolled: true,
                            at: exact_instant(at),
                            state: enr.state_name.clone(),
                            variants: enr.variants.clone(),
                            filter_matched: self
                                .campaigns
                                .get(&enr.campaign)
                                .is_none_or(|c| c.machine.accepts(&engine_candidate(&candidate))),
                            suppressed: Vec::new(),
                        });
                    }
                    Taken::Already(name) => response.not_enrolled.push(NotEnrolled {
                        campaign: name,
                        reason: ENROLLED_ALREADY.into(),
                    }),
                    Taken::Not { campaign, reason } => {
                        response.not_enrolled.push(NotEnrolled { campaign, reason })
                    }
                }
            }
            self.step_enrollments(
                txn,
                &candidate,
                &event,
                &fresh,
                at,
                now,
                out,
                &mut response.effects,
            )?;
        }
        response.suppressed = self.suppressed_contacts(txn, &candidate)?;
        for e in &mut response.enrolled {
            e.suppressed = response.suppressed.clone();
        }
        if let Some(id) = &req.id {
            // Kept without what the candidate gives back: their id and
            // link, in every application's answer the longest part.
            let kept = Kept::from(&mut response);
            let json = serde_json::to_string(&response);
            kept.restore(&mut response);
            match json {
                Ok(json) => txn.remember_event(&candidate.id, id, &json),
                Err(e) => return Ok(Err(Refusal::Internal(e.to_string()))),
            }
        }
        Ok(Ok(response))
    }

    /// A repeated application's first answer, kept without the candidate's
    /// id and link (answers kept before had them), made whole again.
    fn give_back(&self, answer: &mut ApplyResponse, candidate: &CandidateRecord) {
        let link = self.link(candidate);
        let fill = |slot: &mut String, with: &str| {
            if slot.is_empty() {
                *slot = with.to_string();
            }
        };
        fill(&mut answer.candidate, &candidate.id);
        fill(&mut answer.link, &link);
        for e in &mut answer.enrolled {
            fill(&mut e.candidate, &candidate.id);
            fill(&mut e.link, &link);
        }
    }

    /// An `applied` event: an application from the event's fields. For
    /// someone unknown, the event's `candidate` is taken as their external
    /// id unless it is their email address or phone number.
    pub(super) fn applied_by_event(
        &self,
        txn: &mut Txn<S>,
        req: &EventRequest,
        found: Option<CandidateRecord>,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Result<EventResponse, Refusal>, StoreError> {
        if let Some(candidate) = found {
            // Found under their identity, with their contacts for the
            // check that an application has one.
            let mut fields = candidate.fields.clone();
            fields.remove("id");
            fields.extend(req.fields.clone());
            let apply = ApplyRequest {
                external_id: candidate.external_id.clone(),
                fields,
                at: req.at.clone(),
                id: req.id.clone(),
                ..ApplyRequest::default()
            };
            return Ok(self
                .apply(txn, &apply, now, out)?
                .map(|r| event_response(r, false)));
        }
        let who = req.candidate.trim();
        let is_contact = req
            .fields
            .get("email")
            .is_some_and(|e| e.trim().eq_ignore_ascii_case(who))
            || req.fields.get("phone").is_some_and(|p| p.trim() == who);
        let mut fields = req.fields.clone();
        if !is_contact && who.contains('@') && !fields.contains_key("email") {
            fields.insert("email".into(), who.to_string());
        }
        let external_id =
            (!is_contact && !who.contains('@') && !who.is_empty()).then(|| who.to_string());
        let apply = ApplyRequest {
            external_id,
            fields,
            at: req.at.clone(),
            id: req.id.clone(),
            ..ApplyRequest::default()
        };
        Ok(self
            .apply(txn, &apply, now, out)?
            .map(|r| event_response(r, true)))
    }
}

/// The candidate's id and link, taken out of an answer while it is kept.
struct Kept {
    candidate: String,
    link: String,
}

impl Kept {
    fn from(answer: &mut ApplyResponse) -> Kept {
        for e in &mut answer.enrolled {
            e.candidate.clear();
            e.link.clear();
        }
        Kept {
            candidate: std::mem::take(&mut answer.candidate),
            link: std::mem::take(&mut answer.link),
        }
    }

    fn restore(self, answer: &mut ApplyResponse) {
        for e in &mut answer.enrolled {
            e.candidate.clone_from(&self.candidate);
            e.link.clone_from(&self.link);
        }
        answer.candidate = self.candidate;
        answer.link = self.link;
    }
}

/// An application's answer as an event's: what it did, one line each.
fn event_response(r: ApplyResponse, say_created: bool) -> EventResponse {
    let mut effects = Vec::new();
    if say_created && r.created {
        effects.push(format!("created candidate {}", r.candidate));
    }
    for e in &r.enrolled {
        effects.push(format!("{}: enrolled in {}", e.campaign, e.state));
    }
    for n in &r.not_enrolled {
        if n.reason != ENROLLED_ALREADY {
            effects.push(format!("{}: not enrolled ({})", n.campaign, n.reason));
        }
    }
    effects.extend(r.effects);
    EventResponse {
        candidate: r.candidate,
        at: r.at,
        effects,
        repeated: r.repeated,
    }
}

/// Why an application enrolls nobody in a campaign they are in.
const ENROLLED_ALREADY: &str = "enrolled already";
