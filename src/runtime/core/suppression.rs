//! The suppression list in the core: an opt-out puts the candidate's
//! email address and phone number on it in the commit that records the
//! opt-out; the gates before a channel refuse a send whose destination is
//! on it (whoever the candidate); people add and take off entries; an
//! enrollment says which of the candidate's contacts are on it.
//!
//! Webhook sends are not gated here: they go to the operator's own
//! endpoint (an ATS), not to the candidate's address. An opted-out
//! candidate's webhook sends are still refused by the opt-out itself.

use super::*;
use crate::runtime::api::{
    SuppressRequest, SuppressResponse, SuppressedContact, SuppressionView, UnsuppressRequest,
    UnsuppressResponse,
};
use crate::store::{Contact, Suppression, SuppressionReason};

impl<S: Store> Core<S> {
    /// Puts the candidate's contacts on the suppression list, in this
    /// transaction (their opt-out's). An entry already there is kept.
    pub(super) fn suppress_contacts(
        &self,
        txn: &mut Txn<S>,
        candidate: &CandidateRecord,
        at: Instant,
    ) -> Result<(), StoreError> {
        for contact in Contact::of_candidate(&candidate.fields, &self.settings.phone_country_code) {
            if txn.suppression(&contact)?.is_some() {
                continue;
            }
            txn.suppress(&Suppression {
                contact,
                reason: SuppressionReason::OptedOut,
                at,
                candidate: Some(candidate.id.clone()),
            });
        }
        Ok(())
    }

    /// Why a send may not go to its destination: the suppression list's
    /// entry for it, as the failure to record (one point lookup).
    pub(super) fn suppressed_destination(
        &self,
        txn: &Txn<S>,
        message: &Message,
    ) -> Result<Option<Failure>, StoreError> {
        if !txn.may_suppress_any()? {
            return Ok(None);
        }
        let Some(contact) = Contact::of_send(
            message.channel,
            &message.to,
            &self.settings.phone_country_code,
        ) else {
            return Ok(None);
        };
        Ok(txn.suppression(&contact)?.map(|s| Failure::Suppressed {
            contact: s.contact.address,
            reason: s.reason,
            since: s.at.timestamp_millis(),
        }))
    }

    /// The candidate's contacts on the suppression list, for the answer to
    /// their enrollment.
    pub(super) fn suppressed_contacts(
        &self,
        txn: &Txn<S>,
        candidate: &CandidateRecord,
    ) -> Result<Vec<SuppressedContact>, StoreError> {
        let mut found = Vec::new();
        if !txn.may_suppress_any()? {
            return Ok(found);
        }
        for contact in Contact::of_candidate(&candidate.fields, &self.settings.phone_country_code) {
            if let Some(entry) = txn.suppression(&contact)? {
                found.push(SuppressedContact {
                    message: crate::explain::words::enrolled_suppressed(
                        &entry.contact.address,
                        entry.reason,
                        entry.at.timestamp_millis(),
                    ),
                    entry: SuppressionView::of(&entry),
                });
            }
        }
        Ok(found)
    }

    /// `nudge suppression add`: a contact onto the list, unless it is there.
    pub(super) fn add_suppression(
        &self,
        txn: &mut Txn<S>,
        req: &SuppressRequest,
        now: Instant,
    ) -> Result<Result<SuppressResponse, Refusal>, StoreError> {
        let contact = match Contact::parse(&req.contact, &self.settings.phone_country_code) {
            Ok(c) => c,
            Err(e) => return Ok(Err(Refusal::BadContact(e))),
        };
        if let Some(entry) = txn.suppression(&contact)? {
            return Ok(Ok(SuppressResponse {
                entry: SuppressionView::of(&entry),
                added: false,
            }));
        }
        let entry = Suppression {
            contact,
            reason: req.reason,
            at: now,
            candidate: None,
        };
        txn.suppress(&entry);
        Ok(Ok(SuppressResponse {
            entry: SuppressionView::of(&entry),
            added: true,
        }))
    }

    /// `nudge suppression remove`: a contact off the list, if it is there.
    pub(super) fn remove_suppression(
        &self,
        txn: &mut Txn<S>,
        req: &UnsuppressRequest,
    ) -> Result<Result<UnsuppressResponse, Refusal>, StoreError> {
        let contact = match Contact::parse(&req.contact, &self.settings.phone_country_code) {
            Ok(c) => c,
            Err(e) => return Ok(Err(Refusal::BadContact(e))),
        };
        let removed = txn.suppression(&contact)?;
        if removed.is_some() {
            txn.unsuppress(&contact);
        }
        Ok(Ok(UnsuppressResponse {
            contact: contact.address,
            removed: removed.as_ref().map(SuppressionView::of),
        }))
    }
}
