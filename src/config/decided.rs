//! `[decided]` in `nudge.toml`: how the daemon decides `until decided`
//! experiments (see `runtime::decider`).

use serde::{Deserialize, Serialize};

/// The `[decided]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DecidedConfig {
    /// How often the daemon reads the table of each undecided `until
    /// decided` experiment, in seconds, from 1 to 86400 (default 60); it
    /// also reads them once when it starts.
    #[serde(default = "default_every_secs")]
    pub every_secs: u64,
    /// N* of the always-valid interval the decisions are taken on, at
    /// least 1 (default 1000, as `nudge report` without `--plan`).
    #[serde(default = "default_plan")]
    pub plan: u64,
}

impl Default for DecidedConfig {
    fn default() -> Self {
        DecidedConfig {
            every_secs: default_every_secs(),
            plan: default_plan(),
        }
    }
}

fn default_every_secs() -> u64 {
    60
}

fn default_plan() -> u64 {
    crate::report::stats::DEFAULT_PLAN
}

impl DecidedConfig {
    /// The allowed `every_secs`.
    pub const EVERY_SECS: std::ops::RangeInclusive<u64> = 1..=86_400;

    /// The first key whose value is refused, and why.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if !Self::EVERY_SECS.contains(&self.every_secs) {
            return Some((
                "every_secs",
                format!(
                    "`decided.every_secs` is {}; it must be from 1 to 86400",
                    self.every_secs
                ),
            ));
        }
        if self.plan == 0 {
            return Some(("plan", "`decided.plan` is 0; it must be at least 1".into()));
        }
        None
    }
}
