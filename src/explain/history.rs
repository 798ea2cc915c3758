//! A candidate's history in words, for `nudge show`: each entry's kind
//! and one line, legacy entries (layout 3, causes kept in words) as they
//! were written.

use chrono_tz::Tz;

use crate::engine::Instant;
use crate::store::causes::Failure;
use crate::store::{LogEntry, LogKind};

/// A history entry for people (`nudge show`): its kind and its words, times
/// in `zone`.
pub fn describe(entry: &LogEntry, zone: Tz) -> (String, String) {
    let local = |ms: i64| {
        Instant::from_timestamp_millis(ms)
            .map(|t| crate::sim::output::local(t, zone))
            .unwrap_or_default()
    };
    match &entry.kind {
        LogKind::Created { source } => (
            "created".into(),
            match source {
                Some(s) => format!("candidate created (source {s})"),
                None => "candidate created".into(),
            },
        ),
        LogKind::Received { event, fields } => (
            "event".into(),
            if fields.is_empty() {
                format!("{event} received")
            } else {
                let f: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{event} received ({})", f.join(", "))
            },
        ),
        LogKind::Enrolled {
            state, variants, ..
        } => (
            "enrolled".into(),
            if variants.is_empty() {
                format!("in {state}")
            } else {
                let v: Vec<String> = variants.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("in {state} ({})", v.join(", "))
            },
        ),
        LogKind::Entered { state, from, by } => {
            ("entered".into(), format!("{state} from {from} ({by})"))
        }
        LogKind::LegacyEntered { state, from, by } => {
            ("entered".into(), format!("{state} from {from} ({by})"))
        }
        LogKind::Sent {
            template, channel, ..
        } => ("sent".into(), format!("{template} by {channel}")),
        LogKind::Held {
            template,
            until,
            why,
            ..
        } => (
            "held".into(),
            format!("{template} held until {}: {why}", local(*until)),
        ),
        LogKind::LegacyHeld {
            template,
            until,
            reason,
            ..
        } => (
            "held".into(),
            format!("{template} held until {}: {reason}", local(*until)),
        ),
        LogKind::Cancelled { template, why, .. } => {
            ("cancelled".into(), format!("{template} cancelled: {why}"))
        }
        LogKind::LegacyCancelled {
            template, reason, ..
        } => (
            "cancelled".into(),
            format!("{template} cancelled: {reason}"),
        ),
        LogKind::Skipped { template, why, .. } => {
            ("skipped".into(), format!("{template} skipped: {why}"))
        }
        LogKind::LegacySkipped {
            template, reason, ..
        } => ("skipped".into(), format!("{template} skipped: {reason}")),
        LogKind::Suppressed {
            template, limit, ..
        } => (
            "suppressed".into(),
            format!("{template} suppressed: limit {limit} total reached"),
        ),
        LogKind::LegacySuppressed {
            template, reason, ..
        } => (
            "suppressed".into(),
            format!("{template} suppressed: {reason}"),
        ),
        LogKind::DeadlineStarted { deadline } => (
            "deadline".into(),
            format!("deadline runs until {}", local(*deadline)),
        ),
        LogKind::Exited { outcome, converted } => (
            "exited".into(),
            if *converted {
                format!("{outcome} (goal reached)")
            } else {
                outcome.clone()
            },
        ),
        LogKind::Delivered {
            channel,
            duplicate,
            possible_duplicate,
            ..
        } => (
            "delivered".into(),
            match (duplicate, possible_duplicate) {
                (true, _) => format!("{channel} recognised a repeat and did not deliver it twice"),
                (false, true) => format!(
                    "delivered by {channel} (sent again after a restart: possibly a duplicate)"
                ),
                (false, false) => format!("delivered by {channel}"),
            },
        ),
        LogKind::DeliveryFailed {
            channel,
            why: why @ Failure::CommunicationsOff,
            ..
        } => ("suppressed".into(), format!("{channel}: {why}")),
        LogKind::DeliveryFailed {
            channel,
            why:
                Failure::Suppressed {
                    contact,
                    reason,
                    since,
                },
            ..
        } => (
            "not sent".into(),
            format!(
                "{channel}: {}",
                super::words::suppressed(contact, *reason, &local(*since))
            ),
        ),
        LogKind::DeliveryFailed {
            channel,
            why: why @ Failure::Late(_),
            ..
        } => ("skipped".into(), format!("{channel}: {why}")),
        LogKind::DeliveryFailed { channel, why, .. } => {
            ("failed".into(), format!("{channel}: {why}"))
        }
        LogKind::LegacyDeliveryFailed {
            channel, reason, ..
        } => ("failed".into(), format!("{channel}: {reason}")),
        LogKind::Retrying {
            channel, why, at, ..
        } => (
            "retrying".into(),
            format!("{channel}: {why}; next try {}", local(*at)),
        ),
        LogKind::LegacyRetrying {
            channel,
            reason,
            at,
            ..
        } => (
            "retrying".into(),
            format!("{channel}: {reason}; next try {}", local(*at)),
        ),
        LogKind::ResentInDoubt { channel, .. } => (
            "failed".into(),
            format!(
                "{channel}: in flight when nudge stopped; sent again, the candidate may get it twice"
            ),
        ),
        LogKind::FellBack { from, to, .. } => (
            "fallback".into(),
            format!("{from} failed for good; trying {to}"),
        ),
        LogKind::LegacyDeliverySuppressed {
            channel, reason, ..
        } => ("suppressed".into(), format!("{channel}: {reason}")),
        LogKind::Migrated {
            from_version,
            to_version,
        } => (
            "migrated".into(),
            format!("campaign version {from_version} → {to_version}"),
        ),
        LogKind::Pruned { entries, sends } => (
            "pruned".into(),
            format!(
                "history pruned under the retention setting ({entries} entries and {sends} \
                 settled sends removed); enrollment, last state and outcome kept"
            ),
        ),
        LogKind::OptedIn { via } => (
            "opted_in".into(),
            format!("opted back in ({via}): messages may be sent again"),
        ),
    }
}
