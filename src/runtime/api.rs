//! Requests and answers of the runtime, shared by the daemon's core, the
//! admin HTTP API and the CLI (which either talks to a running daemon or
//! opens the store itself). All of them are plain serde types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::{ContactKind, Suppression, SuppressionReason};

/// `nudge enroll`: put a candidate in a campaign. Unknown fields are
/// refused (custom candidate fields go in `fields`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub campaign: String,
    /// The candidate's id in the source system (ATS, import). The same id
    /// enrolled twice is one candidate; without it the email address, else
    /// the phone number, identifies them.
    #[serde(default)]
    pub external_id: Option<String>,
    /// `name`, `email`, `phone`, `timezone`, `language`, `role`, `source`,
    /// and any custom field; each checked as `runtime::fields` says, and
    /// refused when one a template of the campaign prints with no default
    /// is missing.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Enroll even when the campaign's `where` filter does not take the
    /// candidate (without it, such an enrollment is refused).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_filter: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrollResponse {
    /// The campaign.
    #[serde(default)]
    pub campaign: String,
    pub candidate: String,
    /// The candidate's unique tracked interview link.
    pub link: String,
    /// False when the candidate was already in the campaign (nothing changed).
    pub enrolled: bool,
    /// When the enrollment happened: RFC 3339 to the millisecond the
    /// engine used (`2026-11-23T08:20:19.097Z`; no fraction when whole).
    pub at: String,
    pub state: String,
    pub variants: BTreeMap<String, String>,
    /// False when the campaign's `where` filter would not have taken the
    /// candidate (an explicit enrollment goes ahead regardless).
    pub filter_matched: bool,
    /// The candidate's contacts on the suppression list: the enrollment is
    /// recorded, and nothing is sent to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed: Vec<SuppressedContact>,
}

/// A contact of an enrolled candidate that nudge will not send to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SuppressedContact {
    #[serde(flatten)]
    pub entry: SuppressionView,
    /// For people: "k15@example.com is suppressed (opted out on …): nudge
    /// will not send to it".
    pub message: String,
}

/// An entry of the suppression list (`nudge suppression list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SuppressionView {
    /// The email address (lower case) or phone number (E.164).
    pub contact: String,
    pub kind: ContactKind,
    pub reason: SuppressionReason,
    /// When it was suppressed, as [`EnrollResponse::at`].
    pub at: String,
    /// The candidate it came from (an opt-out), if any.
    pub candidate: Option<String>,
}

impl SuppressionView {
    pub fn of(entry: &Suppression) -> SuppressionView {
        SuppressionView {
            contact: entry.contact.address.clone(),
            kind: entry.contact.kind,
            reason: entry.reason,
            at: exact_instant(entry.at),
            candidate: entry.candidate.clone(),
        }
    }
}

/// `nudge suppression add CONTACT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuppressRequest {
    /// An email address or a phone number (E.164, or national with
    /// `phone_country_code` configured).
    pub contact: String,
    #[serde(default = "manual")]
    pub reason: SuppressionReason,
}

fn manual() -> SuppressionReason {
    SuppressionReason::Manual
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SuppressResponse {
    /// The contact's entry.
    pub entry: SuppressionView,
    /// False when it was on the list already (its entry is kept as it was).
    pub added: bool,
}

/// `nudge suppression remove CONTACT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnsuppressRequest {
    pub contact: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnsuppressResponse {
    /// The contact in the form the list keeps.
    pub contact: String,
    /// The entry removed; none when the contact was not on the list.
    pub removed: Option<SuppressionView>,
}

/// `nudge event CANDIDATE EVENT`: something happened to a candidate.
/// Unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    /// The candidate id, their external id, or their link token.
    pub candidate: String,
    pub event: String,
    /// When it happened (RFC 3339); default: now. Refused when earlier
    /// than the latest instant any of the candidate's enrollments has
    /// processed (the engine never goes back; within that instant's second
    /// it is taken, as senders often give whole seconds), and when more than a minute
    /// after now: an event is recorded when it happens, and the minute
    /// allows for clocks a little apart; a later one would let the engine
    /// run ahead of the clock and decide sends before their time.
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// An idempotency key from the sender (a webhook delivery id): an
    /// event with a key already recorded for the candidate is answered
    /// with the first answer and changes nothing.
    #[serde(default)]
    pub id: Option<String>,
}

/// An application: a person applied (the apply form, an ATS or job
/// board, an import, the API). They are found by external id, else email,
/// else phone, or created; then enrolled in every campaign that enrolls on
/// `applied` and whose `where` filter takes them (or, with `campaign`, in
/// that campaign only). Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// The person's id in the source (ATS, job board, import).
    #[serde(default)]
    pub external_id: Option<String>,
    /// `name`, `email`, `phone`, `source`, `role`, `timezone`, `language`
    /// and any custom field, checked as for an enrollment. An email
    /// address or a phone number is required.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Only this campaign (whatever event it enrolls on), its `where`
    /// filter obeyed unless `ignore_filter`.
    #[serde(default)]
    pub campaign: Option<String>,
    #[serde(default)]
    pub ignore_filter: bool,
    /// False: the candidate is created or updated, and enrolled nowhere
    /// (an import to review first).
    #[serde(default = "yes")]
    pub enroll: bool,
    /// When they applied (RFC 3339); default: now. As for an event.
    #[serde(default)]
    pub at: Option<String>,
    /// An idempotency key from the sender: an application with a key
    /// already recorded for the person is answered with the first answer
    /// and changes nothing.
    #[serde(default)]
    pub id: Option<String>,
}

fn yes() -> bool {
    true
}

impl Default for ApplyRequest {
    fn default() -> Self {
        ApplyRequest {
            external_id: None,
            fields: BTreeMap::new(),
            campaign: None,
            ignore_filter: false,
            enroll: true,
            at: None,
            id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApplyResponse {
    pub candidate: String,
    /// Their unique tracked link.
    pub link: String,
    /// True when the person was new.
    pub created: bool,
    /// True when the application's `id` had been recorded before: nothing
    /// changed, and this is the first answer.
    #[serde(default)]
    pub repeated: bool,
    /// When the application was taken, as [`EnrollResponse::at`].
    pub at: String,
    /// The enrollments it made.
    pub enrolled: Vec<EnrollResponse>,
    /// The campaigns it considered and did not enroll them in, and why.
    pub not_enrolled: Vec<NotEnrolled>,
    /// What the application did to enrollments they already had.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<String>,
    /// Their contacts on the suppression list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed: Vec<SuppressedContact>,
}

/// A campaign an application did not enroll the person in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotEnrolled {
    pub campaign: String,
    /// For people: "the `where` filter does not take them", "enrolled
    /// already", ...
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventResponse {
    pub candidate: String,
    /// The instant the event was taken at, to the millisecond, as for
    /// [`EnrollResponse::at`].
    pub at: String,
    /// What the event did, one line each ("warehouse_associate: entered clicked").
    pub effects: Vec<String>,
    /// True when the event's `id` had been recorded before: nothing changed.
    #[serde(default)]
    pub repeated: bool,
}

/// `nudge status [CAMPAIGN]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusReport {
    pub at: String,
    pub campaigns: Vec<CampaignStatus>,
    /// Sends waiting for delivery or in flight.
    pub outbox: u64,
    pub failures: u64,
    /// Why the store cannot be written now, if it cannot (the daemon's
    /// answer only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_trouble: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CampaignStatus {
    pub name: String,
    pub title: Option<String>,
    pub paused: bool,
    /// Candidates in each state, in the campaign's state order.
    pub states: Vec<(String, i64)>,
    /// Candidates who left, by outcome.
    pub outcomes: Vec<(String, i64)>,
    pub sends_next_hour: u64,
    pub sends_next_day: u64,
    pub held: u64,
    pub failed: i64,
    /// Sends skipped because they could only go too late.
    #[serde(default)]
    pub late: i64,
    /// Its decided `until decided` experiments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decided: Vec<DecisionView>,
}

/// A decided `until decided` experiment, as `status` and `show` tell it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DecisionView {
    pub experiment: String,
    /// The variant new enrollments get.
    pub winner: String,
    /// When it was decided (RFC 3339).
    pub at: String,
    /// Why, in words, with the numbers.
    pub because: String,
    /// Whether new enrollments get the winner now: false once an edit of
    /// the campaign removed `until decided` (the decision stays stored).
    pub applied: bool,
    /// All of it in one line for people.
    pub text: String,
}

/// `nudge show CANDIDATE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CandidateView {
    pub id: String,
    pub external_id: Option<String>,
    pub fields: BTreeMap<String, String>,
    pub link: String,
    pub opted_out: bool,
    pub zone: String,
    pub enrollments: Vec<EnrollmentView>,
    pub timeline: Vec<TimelineLine>,
    /// Why the store cannot be written now (the daemon's health), if it
    /// cannot: until it can, this view may hold a change it refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_trouble: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentView {
    pub campaign: String,
    pub state: String,
    pub outcome: Option<String>,
    pub variants: BTreeMap<String, String>,
    pub next_wake: Option<String>,
    pub paused: bool,
    /// The campaign's decided `until decided` experiments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decided: Vec<DecisionView>,
}

/// One step of a candidate's history, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TimelineLine {
    /// RFC 3339, UTC.
    pub at: String,
    /// The same instant in the candidate's zone, for people.
    pub local: String,
    pub campaign: String,
    pub kind: String,
    pub text: String,
}

/// The outcome of a campaign reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReloadReport {
    /// Campaigns whose version changed, were added or removed.
    pub changed: Vec<String>,
    pub campaigns: Vec<String>,
}

/// A candidate who opted out asks for messages again (a `START` texted
/// to the SMS number). Unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptInRequest {
    /// The candidate id, their external id, or their link token.
    pub candidate: String,
    /// How they asked, for their history ("texted START from +1555…").
    pub via: String,
    /// The contact they asked from (a phone number or email address),
    /// taken off the suppression list whoever's opt-out put it there.
    #[serde(default)]
    pub contact: Option<String>,
    /// An idempotency key from the sender (the provider's message id): a
    /// request with a key already recorded is answered with the first
    /// answer and changes nothing.
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OptInResponse {
    pub candidate: String,
    pub at: String,
    /// False when the candidate had not opted out (nothing changed).
    pub opted_in: bool,
    /// The contacts taken off the suppression list.
    pub unsuppressed: Vec<String>,
    /// The candidate's contacts still on the list for another reason (a
    /// bounce, a complaint, a person's entry): nudge still will not send
    /// to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub still_suppressed: Vec<SuppressionView>,
    /// True when the request's `id` had been recorded before.
    #[serde(default)]
    pub repeated: bool,
}

/// An instant as the runtime's answers give it: RFC 3339 in UTC with as
/// many fractional digits as it has (the store keeps milliseconds), so that
/// a client replaying a candidate (with `nudge simulate`, say) uses the very
/// instants the engine used.
pub fn exact_instant(at: crate::engine::Instant) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_instants_keep_their_milliseconds_and_only_those() {
        let whole = chrono::DateTime::parse_from_rfc3339("2026-11-23T08:20:19Z")
            .unwrap()
            .to_utc();
        assert_eq!(exact_instant(whole), "2026-11-23T08:20:19Z");
        let ms = whole + chrono::Duration::milliseconds(97);
        assert_eq!(exact_instant(ms), "2026-11-23T08:20:19.097Z");
        let back = chrono::DateTime::parse_from_rfc3339(&exact_instant(ms)).unwrap();
        assert_eq!(back, ms);
    }
}
