//! The `[digest]` table: the weekly digest recruiters get by email, each
//! campaign's funnel, experiment verdicts and red flags (see
//! `runtime::digest`). Absent, no digest is sent.
//!
//! ```toml
//! [digest]
//! schedule = "0 8 * * MON"        # cron: minute hour day-of-month month day-of-week
//! timezone = "Europe/London"      # the schedule is read in this zone
//! to = ["lead@example.com"]
//! campaigns = ["warehouse"]       # default: every campaign
//! ```

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::channels::SettingProblem;
use crate::engine::Instant;

/// The `[digest]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    /// When the digest goes: a cron expression, either the usual five
    /// fields (`minute hour day-of-month month day-of-week`, as in
    /// `"0 8 * * MON"`) or the `cron` crate's six or seven (seconds first,
    /// years last).
    pub schedule: String,
    /// The IANA zone the schedule is read in, such as `Europe/London`
    /// (default `UTC`); daylight saving time is followed.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// The recruiters' email addresses (at least one).
    pub to: Vec<String>,
    /// The campaigns the digest covers (default: every campaign loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaigns: Option<Vec<String>>,
}

fn default_timezone() -> String {
    "UTC".to_string()
}

/// A schedule read in its zone: the instants a digest falls due.
#[derive(Debug, Clone)]
pub struct DigestSchedule {
    schedule: cron::Schedule,
    zone: chrono_tz::Tz,
}

impl DigestSchedule {
    /// The first due instant strictly after `after`.
    pub fn next_after(&self, after: Instant) -> Option<Instant> {
        let local = after.with_timezone(&self.zone);
        self.schedule
            .after(&local)
            .next()
            .map(|due| due.with_timezone(&chrono::Utc))
    }

    /// Whether `at` is one of the schedule's instants.
    pub fn names(&self, at: Instant) -> bool {
        self.schedule.includes(at.with_timezone(&self.zone))
    }
}

/// `text` as a cron schedule: five fields get `0 ` (second zero) in
/// front; six or seven are taken as they are. The error names the
/// expression and says why.
pub fn parse_schedule(text: &str) -> Result<cron::Schedule, String> {
    let fields = text.split_whitespace().count();
    let full = match fields {
        5 => format!("0 {}", text.trim()),
        6 | 7 => text.trim().to_string(),
        n => {
            return Err(format!(
                "`{text}` has {n} fields; a cron expression has 5 (minute hour day-of-month \
                 month day-of-week), or 6 or 7 with seconds first and years last"
            ))
        }
    };
    cron::Schedule::from_str(&full).map_err(|e| format!("`{text}` is not a cron expression: {e}"))
}

impl DigestConfig {
    /// The schedule in its zone, or the first problem with either.
    pub fn schedule(&self) -> Result<DigestSchedule, String> {
        let schedule = parse_schedule(&self.schedule)?;
        let zone = chrono_tz::Tz::from_str(&self.timezone)
            .map_err(|_| format!("`{}` is not an IANA time zone", self.timezone))?;
        Ok(DigestSchedule { schedule, zone })
    }

    /// Every value that cannot work, each at its key under `[digest]`.
    pub fn problems(&self) -> Vec<SettingProblem> {
        let mut problems = Vec::new();
        if let Err(why) = parse_schedule(&self.schedule) {
            problems.push(SettingProblem::new(
                &["schedule"],
                format!("`digest.schedule`: {why}"),
                "not a schedule",
                "write five fields, such as \"0 8 * * MON\" for Mondays at 8:00",
            ));
        }
        if chrono_tz::Tz::from_str(&self.timezone).is_err() {
            problems.push(SettingProblem::new(
                &["timezone"],
                format!(
                    "`digest.timezone` is `{}`, not an IANA time zone",
                    self.timezone
                ),
                "unknown zone",
                "name a zone such as \"Europe/London\" or \"America/New_York\"",
            ));
        }
        if self.to.is_empty() {
            problems.push(SettingProblem::new(
                &["to"],
                "`digest.to` names no one".to_string(),
                "no recipient",
                "list the recruiters' addresses, such as [\"lead@example.com\"]",
            ));
        }
        for address in &self.to {
            if let Err(why) = crate::runtime::fields::check("email", address) {
                problems.push(SettingProblem::new(
                    &["to"],
                    format!("`digest.to` has `{address}`, which {why}"),
                    "not an email address",
                    "write each address in full, such as \"lead@example.com\"",
                ));
            }
        }
        if self.campaigns.as_ref().is_some_and(Vec::is_empty) {
            problems.push(SettingProblem::new(
                &["campaigns"],
                "`digest.campaigns` is empty".to_string(),
                "no campaign",
                "name the campaigns, or leave the setting out for every campaign",
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn digest(schedule: &str, zone: &str) -> DigestConfig {
        DigestConfig {
            schedule: schedule.into(),
            timezone: zone.into(),
            to: vec!["lead@example.com".into()],
            campaigns: None,
        }
    }

    #[test]
    fn mondays_at_eight_follow_the_zone_across_a_dst_change() {
        // Europe/Paris leaves summer time on Sunday 2026-10-25: 8:00 is
        // 06:00 UTC before it and 07:00 UTC after.
        let schedule = digest("0 8 * * MON", "Europe/Paris").schedule().unwrap();
        let first = schedule
            .next_after(Utc.with_ymd_and_hms(2026, 10, 15, 12, 0, 0).unwrap())
            .unwrap();
        assert_eq!(first, Utc.with_ymd_and_hms(2026, 10, 19, 6, 0, 0).unwrap());
        let second = schedule.next_after(first).unwrap();
        assert_eq!(second, Utc.with_ymd_and_hms(2026, 10, 26, 7, 0, 0).unwrap());
        assert!(schedule.names(second));
        assert!(!schedule.names(Utc.with_ymd_and_hms(2026, 10, 26, 8, 0, 0).unwrap()));
        // And back into summer time in spring (2027-03-28).
        let spring = schedule
            .next_after(Utc.with_ymd_and_hms(2027, 3, 23, 0, 0, 0).unwrap())
            .unwrap();
        assert_eq!(spring, Utc.with_ymd_and_hms(2027, 3, 29, 6, 0, 0).unwrap());
    }

    #[test]
    fn a_time_skipped_by_the_spring_change_does_not_stop_the_schedule() {
        // 02:30 does not exist in New York on 2027-03-14; the schedule
        // still goes on the next day.
        let schedule = digest("30 2 * * *", "America/New_York").schedule().unwrap();
        let next = schedule
            .next_after(Utc.with_ymd_and_hms(2027, 3, 13, 12, 0, 0).unwrap())
            .unwrap();
        assert!(next > Utc.with_ymd_and_hms(2027, 3, 13, 12, 0, 0).unwrap());
        assert!(next <= Utc.with_ymd_and_hms(2027, 3, 15, 6, 30, 0).unwrap());
    }

    #[test]
    fn six_and_seven_fields_are_taken_as_they_are() {
        assert!(parse_schedule("0 0 8 * * MON").is_ok());
        assert!(parse_schedule("0 0 8 * * MON 2027").is_ok());
    }

    #[test]
    fn bad_values_are_named() {
        let bad = DigestConfig {
            schedule: "every monday".into(),
            timezone: "Mars/Olympus".into(),
            to: vec!["lead@example.com".into(), "nobody".into()],
            campaigns: Some(Vec::new()),
        };
        let problems = bad.problems();
        let keys: Vec<_> = problems.iter().map(|p| p.key.join(".")).collect();
        assert_eq!(keys, ["schedule", "timezone", "to", "campaigns"]);
        assert!(
            problems[0].message.contains("`every monday` has 2 fields"),
            "{}",
            problems[0].message
        );
        let wrong = parse_schedule("0 25 * * *").unwrap_err();
        assert!(wrong.contains("`0 25 * * *`"), "{wrong}");
        assert!(digest("0 8 * * MON", "UTC").problems().is_empty());
    }
}
