//! Reads for people: candidates per state, counters, and history in words.

use super::*;

impl Core {
    /// Candidates per state of a campaign (from the counters).
    pub fn state_counts(&self, campaign: &str) -> Result<BTreeMap<String, i64>, StoreError> {
        let mut out = BTreeMap::new();
        for item in self.store.scan_raw(&key::counters_of(campaign)) {
            let (k, v) = item?;
            let name = String::from_utf8_lossy(&k[key::counters_of(campaign).len()..]).into_owned();
            if let Some(state) = name.strip_prefix("state:") {
                out.insert(state.to_string(), store::counter_value(&v));
            }
        }
        Ok(out)
    }
}

/// Formats a log entry for people (`nudge show`).
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
        LogKind::Sent {
            template, channel, ..
        } => ("sent".into(), format!("{template} by {channel}")),
        LogKind::Held {
            template,
            until,
            reason,
            ..
        } => (
            "held".into(),
            format!("{template} held until {}: {reason}", local(*until)),
        ),
        LogKind::Cancelled {
            template, reason, ..
        } => (
            "cancelled".into(),
            format!("{template} cancelled: {reason}"),
        ),
        LogKind::Skipped {
            template, reason, ..
        } => ("skipped".into(), format!("{template} skipped: {reason}")),
        LogKind::Suppressed {
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
            channel, reason, ..
        } => ("failed".into(), format!("{channel}: {reason}")),
        LogKind::Retrying {
            channel,
            reason,
            at,
            ..
        } => (
            "retrying".into(),
            format!("{channel}: {reason}; next try {}", local(*at)),
        ),
        LogKind::FellBack { from, to, .. } => (
            "fallback".into(),
            format!("{from} failed for good; trying {to}"),
        ),
        LogKind::DeliverySuppressed {
            channel, reason, ..
        } => ("suppressed".into(), format!("{channel}: {reason}")),
        LogKind::Migrated {
            from_version,
            to_version,
        } => (
            "migrated".into(),
            format!("campaign version {from_version} → {to_version}"),
        ),
    }
}

/// Counters of a campaign: candidates per state and per outcome, failures.
pub fn counters(store: &Store, campaign: &str) -> Result<HashMap<String, i64>, StoreError> {
    let prefix = key::counters_of(campaign);
    let mut out = HashMap::new();
    for item in store.scan_raw(&prefix) {
        let (k, v) = item?;
        out.insert(
            String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
            store::counter_value(&v),
        );
    }
    Ok(out)
}
