//! Whom a provider's signal is about, read from the store beside the core
//! (as `nudge show` reads): the candidates reached at a phone number or an
//! email address (an inbound SMS, an email provider's event), and the send
//! a delivery report names by its key (a Twilio status callback).
//!
//! A contact is first looked up as a candidate's identity (candidates
//! enrolled by email or phone alone), which is one read; a candidate known
//! by an external id is found by a scan of the dossiers, as `nudge show`
//! finds one by address. Every candidate with the contact is returned: one
//! person's STOP concerns each record that holds their number.

use crate::channels::Message;
use crate::store::{CandidateRecord, Contact, ContactKind, SendKey, Store, Transaction};

use super::refusal::Refusal;

/// The candidates whose `email` or `phone` field is `contact` (in its
/// normal form; phone numbers stored in E.164, as enrollment keeps them).
pub fn candidates_at<S: Store>(
    store: &S,
    contact: &Contact,
) -> Result<Vec<CandidateRecord>, Refusal> {
    let identity = match contact.kind {
        ContactKind::Email => format!("email:{}", contact.address),
        ContactKind::Phone => format!("phone:{}", contact.address),
    };
    let mut txn = store.begin();
    let known = txn.candidate_known_as(&identity)?;
    drop(txn);
    let holds = |c: &CandidateRecord| match contact.kind {
        ContactKind::Email => c
            .fields
            .get("email")
            .is_some_and(|e| e.trim().to_lowercase() == contact.address),
        ContactKind::Phone => c.fields.get("phone") == Some(&contact.address),
    };
    if let Some(candidate) = known.filter(holds) {
        return Ok(vec![candidate]);
    }
    // A damaged record cannot be matched; it is reported where it is read
    // for what it holds.
    Ok(store
        .dossiers()
        .filter_map(Result::ok)
        .map(|d| d.candidate)
        .filter(holds)
        .collect())
}

/// The send whose key is `key`, settled or not; `None` for a key that
/// names no send of this store.
pub fn send_of<S: Store>(store: &S, key: &str) -> Result<Option<Message>, Refusal> {
    let Some(parsed) = SendKey::parse(key) else {
        return Ok(None);
    };
    Ok(store.send(parsed)?.map(|entry| entry.message))
}
