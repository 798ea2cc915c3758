//! Opting back in: a candidate who opted out asks for messages again (a
//! `START` texted to the SMS number). Their opt-out is lifted and the
//! contacts an opt-out put on the suppression list are taken off it, in
//! one commit with a history entry that says how they asked; entries with
//! another reason (a bounce, a complaint, a person's) stay. Campaigns the
//! opt-out ended stay ended: sending resumes with the next enrollment.

use super::apply::log;
use super::*;
use crate::runtime::api::{OptInRequest, OptInResponse, SuppressionView};
use crate::store::{Contact, SuppressionReason};

impl<S: Store> Core<S> {
    pub(super) fn opt_in(
        &self,
        txn: &mut Txn<S>,
        req: &OptInRequest,
        now: Instant,
    ) -> Result<Result<OptInResponse, Refusal>, StoreError> {
        let Some(mut candidate) = self.find_candidate(txn, &req.candidate)? else {
            return Ok(Err(Refusal::UnknownCandidate(req.candidate.clone())));
        };
        if let Some(id) = &req.id {
            if let Some(mut first) = txn.event_answer::<OptInResponse>(&candidate.id, id)? {
                first.repeated = true;
                return Ok(Ok(first));
            }
        }
        let country = &self.settings.phone_country_code;
        let mut contacts = Contact::of_candidate(&candidate.fields, country);
        if let Some(given) = &req.contact {
            match Contact::parse(given, country) {
                Ok(c) if !contacts.contains(&c) => contacts.push(c),
                Ok(_) => {}
                Err(e) => return Ok(Err(Refusal::BadContact(e))),
            }
        }
        let mut unsuppressed = Vec::new();
        let mut still_suppressed = Vec::new();
        for contact in contacts {
            match txn.suppression(&contact)? {
                Some(entry) if entry.reason == SuppressionReason::OptedOut => {
                    txn.unsuppress(&contact);
                    unsuppressed.push(contact.address);
                }
                Some(entry) => still_suppressed.push(SuppressionView::of(&entry)),
                None => {}
            }
        }
        let opted_in = candidate.opted_out || !unsuppressed.is_empty();
        if candidate.opted_out {
            candidate.opted_out = false;
            txn.put_candidate(&candidate)?;
        }
        if opted_in {
            log(
                txn,
                &candidate.id,
                LogEntry {
                    at: now,
                    campaign: String::new(),
                    kind: LogKind::OptedIn {
                        via: req.via.clone(),
                    },
                },
            )?;
        }
        let response = OptInResponse {
            candidate: candidate.id,
            at: exact_instant(now),
            opted_in,
            unsuppressed,
            still_suppressed,
            repeated: false,
        };
        if let Some(id) = &req.id {
            txn.remember_event(&response.candidate, id, &response);
        }
        Ok(Ok(response))
    }
}
