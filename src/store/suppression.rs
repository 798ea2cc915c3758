//! The suppression list: email addresses and phone numbers nudge never
//! sends to again, whichever candidate is enrolled with them. An opt-out
//! puts the candidate's contacts on it (in the commit that records the
//! opt-out); people add and remove entries by hand (`nudge suppression`).
//!
//! A contact is kept in one normal form so that the same person is found
//! however their address was typed: email addresses trimmed and in lower
//! case, phone numbers in E.164 ([`crate::channels::phone::to_e164`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::channels::phone::to_e164;
use crate::engine::{Channel, Instant};

/// What kind of contact an entry is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    Email,
    Phone,
}

impl ContactKind {
    pub fn name(self) -> &'static str {
        match self {
            ContactKind::Email => "email",
            ContactKind::Phone => "phone",
        }
    }
}

/// An email address or a phone number, in its normal form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Contact {
    pub kind: ContactKind,
    /// `k15@example.com`, `+15550100`.
    pub address: String,
}

/// Why a contact given by a person is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactError {
    /// The contact as given.
    pub value: String,
    pub why: String,
}

impl fmt::Display for ContactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a contact: {}", self.value, self.why)
    }
}

impl std::error::Error for ContactError {}

impl Contact {
    /// An email address as stored (trimmed, lower case); not checked.
    pub fn email(raw: &str) -> Contact {
        Contact {
            kind: ContactKind::Email,
            address: raw.trim().to_lowercase(),
        }
    }

    /// A phone number in E.164, completed with `country_code` when national;
    /// one that cannot be put in that form is kept as written (trimmed), so
    /// it still matches itself.
    pub fn phone(raw: &str, country_code: &str) -> Contact {
        Contact {
            kind: ContactKind::Phone,
            address: to_e164(raw, country_code).unwrap_or_else(|_| raw.trim().to_string()),
        }
    }

    /// A contact a person typed: an email address (it has an `@`, and must
    /// be one in shape) or a phone number (put in E.164, or refused).
    pub fn parse(raw: &str, country_code: &str) -> Result<Contact, ContactError> {
        let fail = |why: String| ContactError {
            value: raw.to_string(),
            why,
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(fail("it is empty".into()));
        }
        if trimmed.contains('@') {
            let contact = Contact::email(trimmed);
            return match lettre::Address::from_str(&contact.address) {
                Ok(_) => Ok(contact),
                Err(e) => Err(fail(format!("not an email address ({e})"))),
            };
        }
        match to_e164(trimmed, country_code) {
            Ok(address) => Ok(Contact {
                kind: ContactKind::Phone,
                address,
            }),
            Err(e) => Err(fail(format!(
                "neither an email address nor a phone number ({e})"
            ))),
        }
    }

    /// Where a send on `channel` to `to` goes, as a contact: none for a
    /// webhook (it goes to the operator's own endpoint, not to a person)
    /// or a send without an address.
    pub fn of_send(channel: Channel, to: &str, country_code: &str) -> Option<Contact> {
        if to.trim().is_empty() {
            return None;
        }
        match channel {
            Channel::Email => Some(Contact::email(to)),
            Channel::Sms | Channel::Whatsapp => Some(Contact::phone(to, country_code)),
            Channel::Webhook => None,
        }
    }

    /// A candidate's contacts (from their `email` and `phone` fields).
    pub fn of_candidate(
        fields: &std::collections::BTreeMap<String, String>,
        country_code: &str,
    ) -> Vec<Contact> {
        let email = fields.get("email").map(|e| Contact::email(e));
        let phone = fields.get("phone").map(|p| Contact::phone(p, country_code));
        email
            .into_iter()
            .chain(phone)
            .filter(|c| !c.address.is_empty())
            .collect()
    }
}

impl fmt::Display for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

/// Why a contact is suppressed. Stored by variant position: append, never
/// reorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// The candidate opted out (an `opted_out` event, a STOP to the
    /// provider, the unsubscribe link).
    OptedOut,
    /// Added by a person (`nudge suppression add`).
    Manual,
    /// The provider reported a hard bounce.
    Bounced,
    /// The recipient marked a message as spam.
    Complaint,
}

impl SuppressionReason {
    pub const ALL: [SuppressionReason; 4] = [
        SuppressionReason::OptedOut,
        SuppressionReason::Manual,
        SuppressionReason::Bounced,
        SuppressionReason::Complaint,
    ];

    /// The name as commands and the API write it.
    pub fn name(self) -> &'static str {
        match self {
            SuppressionReason::OptedOut => "opted_out",
            SuppressionReason::Manual => "manual",
            SuppressionReason::Bounced => "bounced",
            SuppressionReason::Complaint => "complaint",
        }
    }
}

impl FromStr for SuppressionReason {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SuppressionReason::ALL
            .into_iter()
            .find(|r| r.name() == s.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = SuppressionReason::ALL.iter().map(|r| r.name()).collect();
                format!(
                    "`{s}` is not a suppression reason (one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// An entry of the suppression list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub contact: Contact,
    pub reason: SuppressionReason,
    /// When it was suppressed.
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub at: Instant,
    /// The candidate it came from (an opt-out), if any.
    pub candidate: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_found_however_they_were_typed() {
        assert_eq!(
            Contact::parse("  K15@Example.COM ", "").unwrap(),
            Contact::email("k15@example.com")
        );
        assert_eq!(
            Contact::parse("(555) 010-0199", "1").unwrap(),
            Contact::phone("+15550100199", "")
        );
        assert_eq!(
            Contact::phone("+1 555 010 0199", "").address,
            "+15550100199"
        );
    }

    #[test]
    fn what_is_not_a_contact_is_refused_with_the_reason() {
        for bad in ["", "a b@c", "@example.com", "k15@", "notanemail", "+12"] {
            let e = Contact::parse(bad, "1").unwrap_err();
            assert_eq!(e.value, bad);
            assert!(e
                .to_string()
                .starts_with(&format!("`{bad}` is not a contact: ")));
        }
    }

    #[test]
    fn webhooks_have_no_contact() {
        assert_eq!(
            Contact::of_send(Channel::Webhook, "https://ats.example/hook", ""),
            None
        );
        assert_eq!(
            Contact::of_send(Channel::Email, "K15@example.com", ""),
            Some(Contact::email("k15@example.com"))
        );
    }

    #[test]
    fn reasons_read_back_their_names() {
        for r in SuppressionReason::ALL {
            assert_eq!(r.name().parse::<SuppressionReason>(), Ok(r));
        }
        assert!("spam".parse::<SuppressionReason>().is_err());
    }
}
