//! The `[dashboard]` table: the live dashboard the daemon serves at
//! `/dashboard` on the admin listener (see `server::dashboard`): how often
//! the page refreshes itself, how long a login lasts, and who may log in
//! with a name and password beside the admin token. Only a password's
//! Argon2 hash is ever written here (`nudge dashboard-user NAME` makes
//! the line).

use std::collections::BTreeMap;

use argon2::password_hash::PasswordHash;
use serde::{Deserialize, Serialize};

use crate::channels::{Bounds, SettingProblem};

/// The `[dashboard]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    /// Seconds between two refreshes of the page's numbers, from 2 to 3600
    /// (default 10).
    #[serde(default = "default_refresh_secs")]
    pub refresh_secs: u64,
    /// Hours a login lasts before the page asks again, from 1 to 720
    /// (default 12).
    #[serde(default = "default_session_hours")]
    pub session_hours: u64,
    /// The zone "today" is read in for today's sends, an IANA name
    /// (default `UTC`).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// People who may log in with a name and a password: name → the
    /// password's Argon2 hash in PHC form (`$argon2id$...`), as `nudge
    /// dashboard-user NAME` prints it (default: none; the admin token
    /// always logs in).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, String>,
    /// Read the dashboard's data as soon as the daemon has started, so
    /// that the first look at the page (and the first `nudge report`
    /// through the daemon) does not wait for a reading of the whole store
    /// (default false: the reading keeps every enrollment's report traces
    /// in memory, about 75 MB a million candidates, and fills the store's
    /// cache, which a daemon nobody reads reports from does not need).
    #[serde(default)]
    pub read_at_start: bool,
}

impl DashboardConfig {
    /// `refresh_secs`: faster than every 2 seconds is load for no one to
    /// read; slower than an hour is not live.
    pub const REFRESH_SECS: Bounds = Bounds::new(2, 3600);

    /// `session_hours`: at least an hour, at most a month.
    pub const SESSION_HOURS: Bounds = Bounds::new(1, 720);

    /// Every value that cannot work, each at its key under `[dashboard]`.
    pub fn problems(&self) -> Vec<SettingProblem> {
        let mut problems = Vec::new();
        for (key, bounds, value, default) in [
            (
                "refresh_secs",
                Self::REFRESH_SECS,
                self.refresh_secs,
                default_refresh_secs(),
            ),
            (
                "session_hours",
                Self::SESSION_HOURS,
                self.session_hours,
                default_session_hours(),
            ),
        ] {
            let default = format!("the default, {default}");
            problems.extend(bounds.check("dashboard", key, value, &default));
        }
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            problems.push(SettingProblem::new(
                &["timezone"],
                format!(
                    "`dashboard.timezone` is `{}`, not a time zone",
                    self.timezone
                ),
                "not an IANA zone name",
                "write a name such as `America/Chicago` or `UTC`",
            ));
        }
        for (name, hash) in &self.users {
            if name.trim().is_empty() || name.contains(char::is_control) {
                problems.push(SettingProblem::new(
                    &["users"],
                    format!("`dashboard.users` has a user named {name:?}"),
                    "not a name one can type",
                    "give each user a name of visible characters",
                ));
            }
            match PasswordHash::new(hash) {
                Ok(parsed) if parsed.algorithm.as_str().starts_with("argon2") => {}
                _ => problems.push(SettingProblem::new(
                    &["users", name],
                    format!("`dashboard.users.{name}` is not an Argon2 password hash"),
                    "not a `$argon2id$...` hash",
                    "write the line `nudge dashboard-user NAME` prints (never the password itself)",
                )),
            }
        }
        problems
    }

    /// The zone "today" begins in.
    pub fn zone(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::UTC)
    }
}

/// The hash of `password` in PHC form, with a fresh random salt (Argon2id
/// with the crate's default cost), for `[dashboard.users]`.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a salt: {e}"))?;
    let salt = SaltString::encode_b64(&bytes).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` is the one `hash` (PHC form) was made from.
pub fn password_matches(hash: &str, password: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

fn default_refresh_secs() -> u64 {
    10
}

fn default_session_hours() -> u64 {
    12
}

fn default_timezone() -> String {
    "UTC".to_string()
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            refresh_secs: default_refresh_secs(),
            session_hours: default_session_hours(),
            timezone: default_timezone(),
            users: BTreeMap::new(),
            read_at_start: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_matches_its_password_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(password_matches(&hash, "correct horse"));
        assert!(!password_matches(&hash, "correct horse "));
        assert!(!password_matches("not a hash", "correct horse"));
        let config = DashboardConfig {
            users: [("ana".to_string(), hash)].into(),
            ..DashboardConfig::default()
        };
        assert!(config.problems().is_empty());
    }

    #[test]
    fn bad_values_are_named() {
        let config = DashboardConfig {
            refresh_secs: 1,
            session_hours: 0,
            timezone: "Mars/Olympus".into(),
            users: [("ana".to_string(), "hunter2".to_string())].into(),
            read_at_start: false,
        };
        let messages: Vec<String> = config.problems().into_iter().map(|p| p.message).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(messages[0].contains("refresh_secs"), "{messages:?}");
        assert!(messages[1].contains("session_hours"), "{messages:?}");
        assert!(messages[2].contains("Mars/Olympus"), "{messages:?}");
        assert!(
            messages[3].contains("`dashboard.users.ana`"),
            "{messages:?}"
        );
    }
}
