//! Why things happened, as facts with their values: what a history entry
//! records beside what happened. Everything is by name (states, templates,
//! experiments and variants, windows as written), never by index into a
//! machine, so history reads the same after the campaign is edited. The
//! words people read are made from these by [`crate::explain`].

use serde::{Deserialize, Serialize};

use super::suppression::SuppressionReason;
use crate::engine::Channel;

/// What moved a candidate from one state to the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trigger {
    /// `on EVENT`.
    Event(String),
    /// `after D`, in seconds.
    After { secs: i64 },
    /// `at deadline`.
    AtDeadline,
    /// `before deadline D`, in seconds.
    BeforeDeadline { secs: i64 },
    /// `split EXPERIMENT`: the candidate's variant chose the way.
    Split { experiment: String, variant: String },
}

/// Why a send waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hold {
    /// Outside the state's window, else the campaign's (as written, when
    /// there was one).
    Window { window: Option<String> },
    /// Over `limit COUNT per PERIOD`.
    Limit { count: u32, period_secs: i64 },
}

/// Why a decided send was dropped before it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cancel {
    /// The candidate left the state first.
    Left(Trigger),
    /// The candidate left the campaign with this outcome.
    Exited(String),
}

/// Why a send was passed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Skip {
    /// `via CHANNEL`, and the candidate has no address on it.
    NoAddressFor(Channel),
    /// The candidate has no address on any of the campaign's channels.
    NoAddress(Vec<Channel>),
    /// It could only go too late.
    Late(Late),
}

/// Why a send was too late to go: never sent, skipped as `late`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Late {
    /// Due before the candidate's deadline (epoch ms), it could only go
    /// after it.
    AfterDeadline { deadline: i64 },
    /// It could only go more than `limit_secs` (the `stale_after_secs`
    /// setting) after it was due; instants in epoch ms.
    Stale {
        due: i64,
        leaves: i64,
        limit_secs: i64,
    },
}

/// What kind of failure a channel reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// Trying again later may succeed.
    Transient,
    /// The provider asked to slow down.
    Throttled,
    /// The message will never succeed on this channel.
    Permanent,
    /// The mailbox does not exist.
    Bounced,
    /// The recipient told the provider to stop.
    Unsubscribed,
}

/// Why a send did not go out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    /// The channel refused it: what kind of failure, the channel's own
    /// words, and whether another attempt follows.
    Channel {
        kind: FailureKind,
        detail: String,
        attempts: u32,
        final_attempt: bool,
    },
    /// The candidate opted out after it was decided.
    OptedOut,
    /// The message could not be made from its template.
    Render(String),
    /// Withheld because `communications = "off"`.
    CommunicationsOff,
    /// Not sent: its destination is on the suppression list.
    Suppressed {
        /// The email address or phone number, as the list keeps it.
        contact: String,
        reason: SuppressionReason,
        /// When it was suppressed, epoch milliseconds.
        since: i64,
    },
    /// Never handed to a channel: by the time it could go, it was late.
    Late(Late),
}
