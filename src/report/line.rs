//! One line of the event log (REPORT.md §1): a flat object whose `kind`
//! says which keys it must have. Kept flat rather than as an enum so that
//! unknown kinds (custom events) and unknown keys pass through.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A line of the event log. `at` is epoch milliseconds, written as RFC
/// 3339 (UTC, `Z`, milliseconds when they are not zero) and read from
/// RFC 3339 with any offset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub kind: String,
    #[serde(default, with = "rfc3339", skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    // `campaign` lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// Experiment name → its variants in the order written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiments: Option<indexmap::IndexMap<String, Vec<String>>>,
    /// Experiment name → its decision, for `until decided` experiments
    /// that have been decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided: Option<indexmap::IndexMap<String, LineDecision>>,
    // `enrolled` lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    // `sent` lines and events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// `sent`: the state that sent; `exited`: the final state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// `at` as RFC 3339 text on the wire, epoch milliseconds in memory.
mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match at.and_then(DateTime::<Utc>::from_timestamp_millis) {
            Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|t| t.timestamp_millis())
                .map_err(|e| serde::de::Error::custom(format!("`at` {t:?} is not RFC 3339: {e}")))
        })
        .transpose()
    }
}

/// A decision on a `campaign` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineDecision {
    pub winner: String,
    #[serde(with = "rfc3339_required")]
    pub at: i64,
    #[serde(default)]
    pub because: String,
}

mod rfc3339_required {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &i64, s: S) -> Result<S::Ok, S::Error> {
        super::rfc3339::serialize(&Some(*at), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        super::rfc3339::deserialize(d)?
            .ok_or_else(|| serde::de::Error::custom("a decision needs `at`"))
    }
}
