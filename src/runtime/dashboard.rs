//! What the live dashboard shows (`GET /dashboard/data.json`): the report
//! over the store ([`crate::report::stored::report`], the one place every
//! figure is computed), the status figures (candidates per state, from the
//! counters `nudge status` reads) and today's sends per channel (from the
//! per-hour counters the core keeps as sends are delivered). Counters and
//! the report's summaries, never a scan of histories or sends.

use std::collections::BTreeMap;

use chrono::{TimeZone, Timelike};
use serde::{Deserialize, Serialize};

use super::api::StatusReport;
use super::campaigns::Campaigns;
use super::query;
use super::refusal::Refusal;
use crate::engine::Instant;
use crate::report::compute::{Options, Thresholds};
use crate::report::model::Report;
use crate::sim::rfc3339;
use crate::store::Store;

/// The dashboard's data: one answer of `/dashboard/data.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    /// When it was read (RFC 3339).
    pub at: String,
    /// Seconds until the page reads it again.
    pub refresh_secs: u64,
    /// Candidates per state, sends due, held and failed, per campaign.
    pub status: StatusReport,
    /// Sends delivered since the start of today.
    pub sends_today: SendsToday,
    /// Exactly `nudge report --format json` over the whole store (no
    /// `--campaign`, dates, `--by` or `--plan`).
    pub report: Report,
}

/// Sends delivered on each channel since `since`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendsToday {
    /// The start of today in `zone` (RFC 3339), to the hour before it when
    /// the zone's midnight is not on a UTC hour.
    pub since: String,
    pub zone: String,
    /// Channel → sends, every campaign together.
    pub total: BTreeMap<String, i64>,
    /// Campaign → channel → sends.
    pub campaigns: BTreeMap<String, BTreeMap<String, i64>>,
}

/// The dashboard's data at `now`, "today" read in `zone`, the report's
/// red flags raised at `thresholds` (`[report]`, as `nudge report` reads
/// them).
pub fn dashboard<S: Store>(
    store: &S,
    campaigns: &Campaigns,
    now: Instant,
    zone: chrono_tz::Tz,
    refresh_secs: u64,
    thresholds: &Thresholds,
) -> Result<Dashboard, Refusal> {
    let status = query::status(store, campaigns, None, now)?;
    let since = start_of_day(now, zone);
    let mut total: BTreeMap<String, i64> = BTreeMap::new();
    let mut per_campaign = BTreeMap::new();
    for (name, _) in campaigns.iter() {
        let sends = store.sends_on(name, since)?;
        for (channel, n) in &sends {
            *total.entry(channel.clone()).or_insert(0) += n;
        }
        per_campaign.insert(name.clone(), sends);
    }
    let options = Options {
        thresholds: thresholds.clone(),
        ..Options::default()
    };
    let report = crate::report::stored::report(store, campaigns, &options)?;
    Ok(Dashboard {
        at: rfc3339(now),
        refresh_secs,
        status,
        sends_today: SendsToday {
            since: rfc3339(since),
            zone: zone.name().to_string(),
            total,
            campaigns: per_campaign,
        },
        report,
    })
}

/// The instant today began in `zone`, floored to the UTC hour (the
/// counters are hourly): local midnight, or the first instant of the day
/// where a change of clocks skips midnight.
pub fn start_of_day(now: Instant, zone: chrono_tz::Tz) -> Instant {
    let local = now.with_timezone(&zone).date_naive();
    let start = (0..24)
        .filter_map(|h| local.and_hms_opt(h, 0, 0))
        .find_map(|t| zone.from_local_datetime(&t).earliest())
        .map_or(now, |t| t.with_timezone(&chrono::Utc));
    start
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Counter, Transaction};

    /// Sends counted per hour are read from an hour on, per channel, and
    /// never among the counters `nudge status` reads.
    fn sends_on_counts_from_the_hour<S: Store>(store: &S) {
        let mut txn = store.begin();
        for (channel, when, n) in [
            ("email", "2026-12-02T23:59:59Z", 5),
            ("email", "2026-12-03T00:00:00Z", 1),
            ("email", "2026-12-03T15:30:00Z", 2),
            ("sms", "2026-12-03T09:10:00Z", 3),
        ] {
            txn.bump("hiring", &Counter::sends_on(channel, at(when)), n);
        }
        txn.bump(
            "other",
            &Counter::sends_on("email", at("2026-12-03T10:00:00Z")),
            7,
        );
        txn.bump("hiring", &Counter::Failed, 1);
        txn.commit().unwrap();
        let today = store
            .sends_on("hiring", at("2026-12-03T00:00:00Z"))
            .unwrap();
        let expected: BTreeMap<String, i64> =
            [("email", 3), ("sms", 3), ("whatsapp", 0), ("webhook", 0)]
                .into_iter()
                .map(|(c, n)| (c.to_string(), n))
                .collect();
        assert_eq!(today, expected);
        // The hour a later instant falls in counts in full.
        let since = store
            .sends_on("hiring", at("2026-12-03T15:59:00Z"))
            .unwrap();
        assert_eq!(since["email"], 2);
        assert_eq!(since["sms"], 0);
        assert_eq!(
            store.counters("hiring").unwrap(),
            vec![(Counter::Failed, 1)]
        );
        assert!(store
            .all_counters()
            .unwrap()
            .iter()
            .all(|(_, c, _)| matches!(c, Counter::Failed)));
    }

    #[test]
    fn sends_on_counts_from_the_hour_in_both_stores() {
        sends_on_counts_from_the_hour(&crate::store::MemoryStore::new());
        let dir = tempfile::tempdir().unwrap();
        let sled = crate::store::SledStore::open(&dir.path().join("store"), 8 << 20).unwrap();
        sends_on_counts_from_the_hour(&sled);
    }

    fn at(text: &str) -> Instant {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    #[test]
    fn today_begins_at_local_midnight() {
        let chicago: chrono_tz::Tz = "America/Chicago".parse().unwrap();
        assert_eq!(
            start_of_day(at("2026-12-03T15:52:03Z"), chrono_tz::UTC),
            at("2026-12-03T00:00:00Z")
        );
        // 03:00 UTC is still the 2nd in Chicago (UTC-6).
        assert_eq!(
            start_of_day(at("2026-12-03T03:00:00Z"), chicago),
            at("2026-12-02T06:00:00Z")
        );
        // Summer: UTC-5.
        assert_eq!(
            start_of_day(at("2026-07-03T12:00:00Z"), chicago),
            at("2026-07-03T05:00:00Z")
        );
        // Half-hour zones count from the UTC hour before their midnight.
        let kolkata: chrono_tz::Tz = "Asia/Kolkata".parse().unwrap();
        assert_eq!(
            start_of_day(at("2026-12-03T12:00:00Z"), kolkata),
            at("2026-12-02T18:00:00Z")
        );
    }
}
