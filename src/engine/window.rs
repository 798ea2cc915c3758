//! Send windows in IANA zones, and sliding limits.
//!
//! A window opens on its listed days at `open` and closes at `close` the
//! same day, or the next day when it crosses midnight (`20:00-08:00`). Wall
//! clock times follow the zone's rules: an opening time that a
//! spring-forward skips opens at the first instant after the gap, and one
//! that a fall-back repeats opens at its first occurrence.

use chrono::{Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::Instant;

/// A compiled `window DAYS HH:MM-HH:MM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// `days[0]` is Monday: the days on which the window opens.
    pub days: [bool; 7],
    /// Minutes after local midnight.
    pub open: u32,
    pub close: u32,
    /// The source text, for reasons such as "outside window mon-fri 09:00-17:00".
    pub text: String,
}

impl Window {
    /// True when the window runs past midnight into the next day.
    pub fn crosses_midnight(&self) -> bool {
        self.close <= self.open
    }

    /// The earliest instant at or after `t` inside the window, in `zone`.
    /// `None` only for a window that never opens (no days, or empty).
    pub fn next_open(&self, t: Instant, zone: Tz) -> Option<Instant> {
        if self.open == self.close || !self.days.iter().any(|d| *d) {
            return None;
        }
        let date = t.with_timezone(&zone).date_naive();
        // Yesterday's opening may still be running (a window that crosses
        // midnight, or a fall-back day). The next opening may fall in a
        // spring-forward's gap (a window of 02:00 to 02:30 on that
        // Sunday), and then the one a week later is next: yesterday and
        // two weeks cover every case.
        for offset in -1..=14 {
            let day = date + Duration::days(offset);
            if !self.days[day.weekday().num_days_from_monday() as usize] {
                continue;
            }
            let opens = wall_clock(zone, day, self.open);
            let close_day = if self.crosses_midnight() {
                day + Duration::days(1)
            } else {
                day
            };
            let closes = wall_clock(zone, close_day, self.close);
            if t < closes && opens < closes {
                return Some(t.max(opens));
            }
        }
        None
    }

    /// True when `t` is inside the window.
    pub fn contains(&self, t: Instant, zone: Tz) -> bool {
        self.next_open(t, zone) == Some(t)
    }
}

/// The instant at which the wall clock of `zone` shows `minutes` after
/// midnight on `day`. A time skipped by a spring-forward gives the first
/// instant after the gap; a time repeated by a fall-back its first occurrence.
pub fn wall_clock(zone: Tz, day: NaiveDate, minutes: u32) -> Instant {
    let time = NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).unwrap_or(NaiveTime::MIN);
    let local = NaiveDateTime::new(day, time);
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.to_utc(),
        LocalResult::Ambiguous(first, second) => first.to_utc().min(second.to_utc()),
        LocalResult::None => {
            // Walk forward through the gap to the first wall-clock minute that
            // exists; that minute is the instant the clocks jumped.
            let mut probe = local;
            for _ in 0..(48 * 60) {
                probe += Duration::minutes(1);
                if let Some(t) = zone.from_local_datetime(&probe).earliest() {
                    return t.to_utc();
                }
            }
            // No zone has a gap of two days; fall back to reading it as UTC.
            local.and_utc()
        }
    }
}

/// `limit N per D`: at most `count` sends in any sliding period `(t - D, t]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub count: u32,
    pub period_secs: i64,
}

impl RateLimit {
    /// The earliest instant at or after `t` at which one more send fits,
    /// given the instants of earlier sends (in any order, from any source).
    pub fn earliest_fit<'a>(
        &self,
        t: Instant,
        sends: impl Iterator<Item = &'a Instant>,
    ) -> Instant {
        let period = Duration::seconds(self.period_secs);
        let mut inside: Vec<Instant> = sends
            .filter(|s| **s > t - period && **s <= t)
            .copied()
            .collect();
        let count = inside.len();
        let limit = self.count as usize;
        if count < limit {
            return t;
        }
        if limit == 0 {
            // A limit of zero never fits; the checker rejects it.
            return Instant::MAX_UTC;
        }
        inside.sort_unstable();
        // Once the oldest `count - limit + 1` sends have slid out, one fits.
        inside[count - limit] + period
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn at(s: &str) -> Instant {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn window(days: &str, open: &str, close: &str) -> Window {
        let mut mask = [false; 7];
        for part in days.split(',') {
            let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
            let idx = |n: &str| names.iter().position(|x| *x == n.trim()).unwrap();
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (idx(a), idx(b));
                    let mut i = a;
                    loop {
                        mask[i] = true;
                        if i == b {
                            break;
                        }
                        i = (i + 1) % 7;
                    }
                }
                None => mask[idx(part)] = true,
            }
        }
        let mins = |s: &str| {
            let (h, m) = s.split_once(':').unwrap();
            h.parse::<u32>().unwrap() * 60 + m.parse::<u32>().unwrap()
        };
        Window {
            days: mask,
            open: mins(open),
            close: mins(close),
            text: format!("{days} {open}-{close}"),
        }
    }

    const NY: Tz = chrono_tz::America::New_York;
    const CHICAGO: Tz = chrono_tz::America::Chicago;

    #[test]
    fn inside_the_window_goes_at_once() {
        let w = window("mon-sun", "08:00", "20:00");
        let t = at("2026-11-30T15:00:00Z"); // 09:00 Chicago
        assert_eq!(w.next_open(t, CHICAGO), Some(t));
    }

    #[test]
    fn opening_minute_is_in_and_closing_minute_is_out() {
        let w = window("mon-sun", "09:00", "19:00");
        assert!(w.contains(at("2026-11-30T15:00:00Z"), CHICAGO));
        assert!(!w.contains(at("2026-12-01T01:00:00Z"), CHICAGO)); // 19:00 local
        assert_eq!(
            w.next_open(at("2026-12-01T01:00:00Z"), CHICAGO),
            Some(at("2026-12-01T15:00:00Z"))
        );
    }

    #[test]
    fn no_friday_first_contact_waits_for_saturday() {
        let w = window("mon-thu, sat", "09:00", "19:00");
        // Thursday 20:30 Chicago.
        let t = at("2026-11-27T02:30:00Z");
        assert_eq!(w.next_open(t, CHICAGO), Some(at("2026-11-28T15:00:00Z")));
    }

    #[test]
    fn new_york_fall_back_keeps_nine_on_the_wall_clock() {
        // 2026-11-01: clocks go from 02:00 EDT back to 01:00 EST.
        let w = window("mon-sun", "09:00", "18:00");
        let saturday_evening = at("2026-10-31T23:00:00Z"); // 19:00 EDT
        assert_eq!(
            w.next_open(saturday_evening, NY),
            Some(at("2026-11-01T14:00:00Z"))
        );
        // The day before the change, 09:00 is 13:00Z.
        assert_eq!(
            w.next_open(at("2026-10-31T03:00:00Z"), NY),
            Some(at("2026-10-31T13:00:00Z"))
        );
    }

    #[test]
    fn fall_back_repeated_opening_opens_at_first_occurrence() {
        // 01:30 happens twice on 2026-11-01 in New York: first at 05:30Z (EDT).
        let w = window("sun", "01:30", "03:00");
        assert_eq!(
            w.next_open(at("2026-11-01T00:00:00Z"), NY),
            Some(at("2026-11-01T05:30:00Z"))
        );
    }

    #[test]
    fn spring_forward_skipped_opening_opens_after_the_gap() {
        // 2026-03-08 in New York: 02:00 EST jumps to 03:00 EDT (07:00Z).
        let w = window("sun", "02:30", "10:00");
        assert_eq!(
            w.next_open(at("2026-03-08T05:00:00Z"), NY),
            Some(at("2026-03-08T07:00:00Z"))
        );
        // 09:00 on the wall clock is 13:00Z after the change, 14:00Z before.
        let w = window("mon-sun", "09:00", "17:00");
        assert_eq!(
            w.next_open(at("2026-03-08T05:00:00Z"), NY),
            Some(at("2026-03-08T13:00:00Z"))
        );
        assert_eq!(
            w.next_open(at("2026-03-07T05:00:00Z"), NY),
            Some(at("2026-03-07T14:00:00Z"))
        );
    }

    #[test]
    fn an_opening_wholly_inside_a_spring_forward_gap_waits_a_week() {
        // 2026-03-29 in Berlin: 02:00 CET jumps to 03:00 CEST (01:00Z), so
        // Sunday 02:00-02:30 does not happen that day; from the Friday
        // before, the next opening is the Sunday after (00:00Z in CEST).
        let berlin: Tz = chrono_tz::Europe::Berlin;
        let w = window("sun", "02:00", "02:30");
        assert_eq!(
            w.next_open(at("2026-03-27T22:59:00Z"), berlin),
            Some(at("2026-04-05T00:00:00Z"))
        );
    }

    #[test]
    fn window_crossing_midnight_belongs_to_the_day_it_opens() {
        let w = window("fri", "20:00", "08:00");
        // Saturday 03:00 UTC is inside Friday night's window.
        let sat_3am = at("2026-12-05T03:00:00Z");
        assert_eq!(w.next_open(sat_3am, chrono_tz::UTC), Some(sat_3am));
        // Saturday 08:00 is closed; the next opening is next Friday 20:00.
        assert_eq!(
            w.next_open(at("2026-12-05T08:00:00Z"), chrono_tz::UTC),
            Some(at("2026-12-11T20:00:00Z"))
        );
        // Thursday 03:00 is not in any window (Wednesday does not open).
        assert_eq!(
            w.next_open(at("2026-12-03T03:00:00Z"), chrono_tz::UTC),
            Some(at("2026-12-04T20:00:00Z"))
        );
    }

    #[test]
    fn empty_window_never_opens() {
        let w = window("mon", "09:00", "09:00");
        assert_eq!(
            w.next_open(at("2026-12-01T00:00:00Z"), chrono_tz::UTC),
            None
        );
    }

    #[test]
    fn sliding_limit_waits_for_the_oldest_send_to_slide_out() {
        let limit = RateLimit {
            count: 2,
            period_secs: 12 * 3600,
        };
        let sends = [at("2026-12-01T08:00:00Z"), at("2026-12-01T10:00:00Z")];
        let t = at("2026-12-01T11:00:00Z");
        assert_eq!(
            limit.earliest_fit(t, sends.iter()),
            at("2026-12-01T20:00:00Z")
        );
        // Exactly D after a send, that send no longer counts: (t - D, t].
        let one = RateLimit {
            count: 1,
            period_secs: 12 * 3600,
        };
        assert_eq!(
            one.earliest_fit(at("2026-12-01T20:00:00Z"), sends[..1].iter()),
            at("2026-12-01T20:00:00Z")
        );
        // Fewer sends than the limit fit at once.
        assert_eq!(limit.earliest_fit(t, sends[..1].iter()), t);
    }
}
