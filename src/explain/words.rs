//! The words for each fact, in the campaign language's own terms
//! (`after 24h`, `at deadline`, `split copy=warm`).

use std::fmt;

use crate::engine::Channel;
use crate::sim::duration_text;
use crate::store::causes::{Cancel, Failure, FailureKind, Hold, Late, Skip, Trigger};
use crate::store::SuppressionReason;

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Event(e) => f.write_str(e),
            Trigger::After { secs } => write!(f, "after {}", duration_text(*secs)),
            Trigger::AtDeadline => f.write_str("at deadline"),
            Trigger::BeforeDeadline { secs } => {
                write!(f, "before deadline {}", duration_text(*secs))
            }
            Trigger::Split {
                experiment,
                variant,
            } => write!(f, "split {experiment}={variant}"),
        }
    }
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::Window { window: Some(w) } => write!(f, "outside window {w}"),
            Hold::Window { window: None } => f.write_str("outside window"),
            Hold::Limit { count, period_secs } => {
                write!(f, "limit {count} per {}", duration_text(*period_secs))
            }
        }
    }
}

impl fmt::Display for Cancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cancel::Left(by) => write!(f, "left the state ({by})"),
            Cancel::Exited(outcome) => write!(f, "exited: {outcome}"),
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::NoAddressFor(c) => write!(f, "no {} for `via {c}`", address_name(*c)),
            Skip::NoAddress(channels) => {
                let names: Vec<&str> = channels.iter().map(|c| c.name()).collect();
                write!(f, "no address on any channel ({})", names.join(", "))
            }
            Skip::Late(late) => write!(f, "{late}"),
        }
    }
}

/// Always begins with `late`, the reason's name in `show`, `status` and
/// `simulate`.
impl fmt::Display for Late {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Late::AfterDeadline { .. } => {
                f.write_str("late: due before the deadline, it could only go after it")
            }
            Late::Stale {
                due,
                leaves,
                limit_secs,
            } => {
                let minutes = (leaves - due).max(0) / 60_000;
                let by = match (minutes / 60, minutes % 60) {
                    (0, m) => format!("{m}m"),
                    (h, 0) => format!("{h}h"),
                    (h, m) => format!("{h}h {m}m"),
                };
                write!(
                    f,
                    "late: it could only go {by} after it was due, more than {}",
                    duration_text(*limit_secs)
                )
            }
        }
    }
}

/// What a candidate needs to be reached on a channel.
pub fn address_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email address",
        Channel::Sms | Channel::Whatsapp => "phone number",
        Channel::Webhook => "webhook address",
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Channel {
                kind,
                detail,
                attempts,
                final_attempt,
            } => {
                match kind {
                    FailureKind::Transient | FailureKind::Permanent => f.write_str(detail)?,
                    FailureKind::Throttled => write!(f, "throttled: {detail}")?,
                    FailureKind::Bounced => write!(f, "bounced: {detail}")?,
                    FailureKind::Unsubscribed => {
                        write!(f, "the recipient told the provider to stop: {detail}")?
                    }
                }
                let retryable = matches!(kind, FailureKind::Transient | FailureKind::Throttled);
                if retryable && *final_attempt {
                    let s = if *attempts == 1 { "" } else { "s" };
                    write!(f, "; given up after {attempts} attempt{s}")?;
                }
                Ok(())
            }
            Failure::OptedOut => f.write_str("the candidate opted out before it went out"),
            Failure::Render(why) => write!(f, "the message could not be made: {why}"),
            Failure::CommunicationsOff => {
                f.write_str("communications are off (`communications = \"off\"` in nudge.toml)")
            }
            Failure::Suppressed {
                contact,
                reason,
                since,
            } => f.write_str(&suppressed(contact, *reason, &utc_minute(*since))),
            Failure::Late(late) => write!(f, "{late}"),
        }
    }
}

/// Why a contact is on the suppression list, for people.
pub fn suppression_reason(reason: SuppressionReason) -> &'static str {
    match reason {
        SuppressionReason::OptedOut => "opted out",
        SuppressionReason::Manual => "added by hand",
        SuppressionReason::Bounced => "bounced",
        SuppressionReason::Complaint => "marked as spam",
    }
}

/// `k15@example.com is suppressed (opted out on WHEN)`, `when` already
/// worded.
pub fn suppressed(contact: &str, reason: SuppressionReason, when: &str) -> String {
    format!(
        "{contact} is suppressed ({} on {when})",
        suppression_reason(reason)
    )
}

/// What an enrollment says of a contact of the candidate that is
/// suppressed.
pub fn enrolled_suppressed(contact: &str, reason: SuppressionReason, since: i64) -> String {
    format!(
        "{}: nudge will not send to it",
        suppressed(contact, reason, &utc_minute(since))
    )
}

/// Epoch milliseconds as `2026-12-03 10:20 UTC`.
pub fn utc_minute(ms: i64) -> String {
    crate::engine::Instant::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}
