//! Why the runtime said no: one typed refusal per reason, with the words
//! people read. The runtime never thinks in HTTP status codes; only the
//! HTTP layer (`server::admin`) maps a refusal to one, and the CLI maps
//! every refusal to exit status 1.

use std::fmt;

use super::api::exact_instant;
use super::core::{Stranded, StrandedOnStart};
use super::fields::FieldProblem;
use crate::engine::Instant;
use crate::sim::rfc3339;

/// A request the runtime refused, or could not carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No campaign of that name is loaded (the loaded ones named).
    UnknownCampaign { name: String, loaded: Vec<String> },
    /// No candidate by that id, external id, email or phone.
    UnknownCandidate(String),
    /// An address shared by several candidates, named by their ids.
    AmbiguousCandidate { who: String, ids: Vec<String> },
    /// The candidate opted out: never enrolled again.
    OptedOut { candidate: String },
    /// A candidate field without a name.
    UnnamedField,
    /// A phone number that cannot be put in E.164 form.
    BadPhone { who: String, why: String },
    /// Not an email address or a phone number (`nudge suppression`).
    BadContact(crate::store::suppression::ContactError),
    /// A candidate field whose value is refused (see `runtime::fields`).
    BadField {
        field: String,
        value: String,
        problem: FieldProblem,
    },
    /// A candidate without a field that a template of the campaign prints
    /// with no default.
    MissingField {
        campaign: String,
        field: String,
        template: String,
    },
    /// An instant that is not RFC 3339.
    BadInstant(String),
    /// An event dated after now.
    EventInFuture { at: Instant, now: Instant },
    /// An event dated before what the candidate's enrollment in `campaign`
    /// has already processed.
    EventBeforeProcessed {
        at: Instant,
        processed: Instant,
        campaign: String,
    },
    /// A request body that is not the request (an unknown field, a
    /// missing one, not JSON): the decoder's words.
    BadRequest(String),
    /// Not an event name of the language.
    BadEventName(String),
    /// A reload whose campaigns would leave candidates nowhere to be.
    ReloadWouldStrand(Vec<Stranded>),
    /// A reload whose files do not check (the diagnostics, rendered).
    ReloadDoesNotCheck(String),
    /// The campaign files strand candidates of this store: it may be
    /// looked at, not changed.
    StoreStranded(StrandedOnStart),
    /// `nudge reload` with no daemon running.
    NoDaemon,
    /// No randomness from the operating system for a link token.
    NoRandomness(String),
    /// An application with neither an email address nor a phone number.
    NoContact,
    /// An explicit enrollment the campaign's `where` filter does not take.
    FilterDoesNotTake { campaign: String },
    /// The batch could not be written; nothing of it happened.
    NotRecorded(String),
    /// The store cannot be written now (why, and since when): nothing was
    /// tried.
    StoreTrouble(String),
    /// The daemon is stopping.
    ShuttingDown,
    /// The admin token is missing or wrong.
    Unauthorized,
    /// The running daemon refused, with this HTTP status and words (the
    /// CLI's view of a refusal that crossed the admin API).
    Daemon { status: u16, message: String },
    /// Anything else that went wrong inside: a bug or the store.
    Internal(String),
}

impl Refusal {
    /// No such candidate, said here or by the running daemon (whose
    /// answer crossed HTTP as a 404).
    pub fn is_unknown_candidate(&self) -> bool {
        matches!(
            self,
            Refusal::UnknownCandidate(_) | Refusal::Daemon { status: 404, .. }
        )
    }

    /// A campaign that is not loaded, with the names of those that are, so
    /// a typo is seen at once.
    pub fn unknown_campaign(name: &str, loaded: &super::campaigns::Campaigns) -> Self {
        Refusal::UnknownCampaign {
            name: name.to_string(),
            loaded: loaded.iter().map(|(n, _)| n.clone()).collect(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownCampaign { name, loaded } => {
                let known: Vec<String> = loaded.iter().map(|n| format!("`{n}`")).collect();
                let known = if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                };
                write!(f, "no campaign `{name}` (loaded: {known})")
            }
            Refusal::UnknownCandidate(who) => write!(f, "no candidate `{who}`"),
            Refusal::AmbiguousCandidate { who, ids } => {
                let ids: Vec<String> = ids.iter().map(|id| format!("`{id}`")).collect();
                write!(
                    f,
                    "`{who}` is the address of {} candidates ({}): name one by its id",
                    ids.len(),
                    ids.join(", ")
                )
            }
            Refusal::OptedOut { candidate } => write!(
                f,
                "candidate {candidate} opted out: nothing is ever sent to them again, so they are not enrolled"
            ),
            Refusal::UnnamedField => f.write_str("a candidate field needs a name"),
            Refusal::BadPhone { who, why } => write!(f, "candidate `{who}`: {why}"),
            Refusal::BadContact(e) => e.fmt(f),
            Refusal::BadField {
                field,
                value,
                problem,
            } => write!(
                f,
                "candidate field `{field}`: `{}` {problem}",
                value.escape_debug()
            ),
            Refusal::MissingField {
                campaign,
                field,
                template,
            } => {
                let from_name = if field == "first_name" {
                    " (or a `name` to take it from)"
                } else {
                    ""
                };
                write!(
                    f,
                    "candidate field `{field}` is missing{from_name}: template `{template}` of campaign `{campaign}` prints it with no default (give the field, or a default in the template: `{{{{ candidate.{field} | default(\"...\") }}}}`)"
                )
            }
            Refusal::BadInstant(t) => write!(
                f,
                "`{t}` is not an RFC 3339 instant such as `2026-12-01T09:00:00Z`"
            ),
            Refusal::EventInFuture { at, now } => write!(
                f,
                "event at {} is in the future (now is {}): record events when they happen",
                rfc3339(*at),
                rfc3339(*now)
            ),
            Refusal::EventBeforeProcessed {
                at,
                processed,
                campaign,
            } => write!(
                f,
                "event at {} is earlier than {}, the last instant the candidate's enrollment in `{campaign}` has processed: an event cannot change what already happened",
                exact_instant(*at),
                exact_instant(*processed)
            ),
            Refusal::BadRequest(why) => write!(f, "bad request body: {why}"),
            Refusal::BadEventName(e) => write!(
                f,
                "`{e}` is not an event name: use lowercase letters, digits and `_`"
            ),
            Refusal::ReloadWouldStrand(stranded) => {
                let words: Vec<String> = stranded.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "reload refused, the running version is kept: {}",
                    words.join("; ")
                )
            }
            Refusal::ReloadDoesNotCheck(diagnostics) => write!(
                f,
                "reload refused, the running version is kept:\n{diagnostics}"
            ),
            Refusal::StoreStranded(s) => s.fmt(f),
            Refusal::NoDaemon => f.write_str(
                "no daemon is running: the next `nudge run` loads the files as they are",
            ),
            Refusal::NoRandomness(why) => f.write_str(why),
            Refusal::FilterDoesNotTake { campaign } => write!(
                f,
                "not enrolled: the `where` filter of campaign {campaign} does not take this candidate \
                 (enroll with --ignore-filter, or `\"ignore_filter\": true`, to enroll them anyway)"
            ),
            Refusal::NoContact => f.write_str(
                "an application needs an email address (`email`) or a phone number (`phone`): \
                 without one the person cannot be invited",
            ),
            Refusal::NotRecorded(why) => write!(f, "not recorded: {why}"),
            Refusal::StoreTrouble(why) => write!(f, "not recorded: {why}"),
            Refusal::ShuttingDown => f.write_str("nudge is shutting down"),
            Refusal::Unauthorized => f.write_str("missing or wrong admin token"),
            Refusal::Daemon { message, .. } => f.write_str(message),
            Refusal::Internal(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Refusal {}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Self {
        Refusal::Internal(e.to_string())
    }
}
