//! Decisions of `until decided` experiments: which variant new enrollments
//! of a campaign get from a given instant on. Written once by the core
//! (`runtime::core::decide`), never changed or taken back afterwards.

use serde::{Deserialize, Serialize};

use crate::engine::Instant;

/// An `until decided` experiment's decision, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub campaign: String,
    pub experiment: String,
    /// The variant new enrollments get from `at` on.
    pub winner: String,
    /// When it was decided, epoch milliseconds: the experiment's table
    /// counts the enrollments enrolled before it.
    pub at_ms: i64,
    /// Why, in words, with the numbers it was decided on.
    pub because: String,
}

impl Decision {
    /// When it was decided.
    pub fn at(&self) -> Instant {
        chrono::DateTime::from_timestamp_millis(self.at_ms).unwrap_or_default()
    }

    /// One line for people: "experiment copy decided: warm, 2026-12-03
    /// 14:00 UTC: warm completes more ...".
    pub fn describe(&self) -> String {
        format!(
            "experiment {} decided: {}, {}: {}",
            self.experiment,
            self.winner,
            self.at().format("%Y-%m-%d %H:%M UTC"),
            self.because
        )
    }
}
