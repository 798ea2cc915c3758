//! Whether a state's window opens before its deadline transition fires:
//! the arithmetic behind the checker's "never sends" error and "some
//! candidates lose it" warning.
//!
//! Everything is in minutes of a wall-clock week (0 is Monday 00:00):
//! windows open and close on whole minutes and durations are whole minutes,
//! so a week of minutes decides every case. A deadline starts at an instant
//! `s0`; a state entered no earlier than `s0 + entered` with a deadline
//! transition at `s0 + fires` sends only if its window is open somewhere in
//! `[s0 + entered, s0 + fires)` (at one instant the transition goes before
//! the send). For `s0` on a whole minute `m` that is the minutes
//! `m + entered ..= m + fires - 1`; for `s0` inside minute `m` it is
//! `m + entered ..= m + fires`. A start minute is *lost* when both miss the
//! window, so a verdict never rests on one exact instant alone.
//!
//! Daylight saving moves the wall clock against absolute time; a `margin`
//! widens the searched minutes by the zone's largest change, so that a
//! "never" holds on every day of the year.

use crate::dsl::ast;

/// Minutes in a week.
pub const WEEK: i64 = 7 * 1440;

/// For each minute of the week, whether a window is open in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekMask {
    open: Vec<bool>,
    /// `before[i]`: open minutes among the first `i`.
    before: Vec<u32>,
}

impl WeekMask {
    /// Every minute open: no window.
    pub fn always() -> WeekMask {
        WeekMask::from_minutes(vec![true; WEEK as usize])
    }

    /// The minutes `window` is open in; a window crossing midnight runs
    /// into the next day (and from Sunday into Monday).
    pub fn of(window: &ast::Window) -> WeekMask {
        let mut open = vec![false; WEEK as usize];
        let (from, to) = (
            i64::from(window.open.minutes()),
            i64::from(window.close.minutes()),
        );
        let length = if to > from {
            to - from
        } else {
            to + 1440 - from
        };
        let days = super::compile::window(window).days;
        for day in (0..7).filter(|d| days[*d]) {
            let start = day as i64 * 1440 + from;
            for minute in start..start + length {
                open[minute.rem_euclid(WEEK) as usize] = true;
            }
        }
        WeekMask::from_minutes(open)
    }

    fn from_minutes(open: Vec<bool>) -> WeekMask {
        let mut before = Vec::with_capacity(open.len() + 1);
        let mut count = 0;
        before.push(0);
        for o in &open {
            count += u32::from(*o);
            before.push(count);
        }
        WeekMask { open, before }
    }

    /// Adds the minutes of `other`.
    pub fn union(&self, other: &WeekMask) -> WeekMask {
        let open = self.open.iter().zip(&other.open).map(|(a, b)| *a || *b);
        WeekMask::from_minutes(open.collect())
    }

    pub fn is_open(&self, minute: i64) -> bool {
        self.open[minute.rem_euclid(WEEK) as usize]
    }

    /// Whether any minute of `from..=to` (any week) is open.
    fn any_in(&self, from: i64, to: i64) -> bool {
        if to < from {
            return false;
        }
        if to - from + 1 >= WEEK {
            return self.before[WEEK as usize] > 0;
        }
        let (a, b) = (from.rem_euclid(WEEK) as usize, to.rem_euclid(WEEK) as usize);
        let count = if a <= b {
            self.before[b + 1] - self.before[a]
        } else {
            (self.before[WEEK as usize] - self.before[a]) + self.before[b + 1]
        };
        count > 0
    }
}

/// The question for one state, in minutes after the deadline starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The state is entered no earlier than this.
    pub entered: i64,
    /// Its first deadline transition fires then.
    pub fires: i64,
    /// Daylight saving's largest change of the wall clock, in minutes.
    pub margin: i64,
}

/// The outcome for a state's sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The window never opens in time, whenever the deadline starts.
    Never,
    /// Lost when the deadline starts in these minutes of the week: ranges
    /// `start..end`, `end` possibly past the week's end (wrapping).
    Sometimes(Vec<(i64, i64)>),
    /// Never lost to the window.
    Fine,
}

/// Whether `window` opens in time for a deadline that starts in one of the
/// `starts` minutes.
pub fn verdict(window: &WeekMask, starts: &WeekMask, timing: Timing) -> Verdict {
    let Timing {
        entered,
        fires,
        margin,
    } = timing;
    let lost = |m: i64, margin: i64| !window.any_in(m + entered - margin, m + fires + margin);
    let start_minutes: Vec<i64> = (0..WEEK).filter(|m| starts.is_open(*m)).collect();
    if start_minutes.is_empty() {
        return Verdict::Fine;
    }
    if start_minutes.iter().all(|m| lost(*m, margin)) {
        return Verdict::Never;
    }
    let losing: Vec<i64> = start_minutes.into_iter().filter(|m| lost(*m, 0)).collect();
    if losing.is_empty() {
        Verdict::Fine
    } else {
        Verdict::Sometimes(ranges(&losing))
    }
}

/// Sorted minutes as ranges `start..end`, joining the week's last minute to
/// its first.
fn ranges(minutes: &[i64]) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &m in minutes {
        match out.last_mut() {
            Some((_, end)) if *end == m => *end = m + 1,
            _ => out.push((m, m + 1)),
        }
    }
    if out.len() > 1 {
        let (first, last) = (out[0], out[out.len() - 1]);
        if first.0 == 0 && last.1 == WEEK {
            out.pop();
            out[0] = (last.0, WEEK + first.1);
        }
    }
    out
}

/// `sat 10:00-fri 09:00`, or `wed 09:00-17:00` within one day: a range of
/// minutes of the week as days and times.
pub fn range_text((start, end): (i64, i64)) -> String {
    let time = |m: i64| format!("{:02}:{:02}", (m % 1440) / 60, m % 60);
    let day = |m: i64| ast::Day::ALL[(m.rem_euclid(WEEK) / 1440) as usize].name();
    if end - start < 1440 && start / 1440 == end / 1440 {
        format!("{} {}-{}", day(start), time(start), time(end))
    } else {
        let end = end.rem_euclid(WEEK);
        format!("{} {}-{} {}", day(start), time(start), day(end), time(end))
    }
}

/// A length in minutes as a recruiter writes it: `24h`, `2d`, `90m`.
pub fn minutes_text(minutes: i64) -> String {
    if minutes != 0 && minutes % 1440 == 0 {
        format!("{}d", minutes / 1440)
    } else if minutes % 60 == 0 {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(minutes: impl Fn(i64) -> bool) -> WeekMask {
        WeekMask::from_minutes((0..WEEK).map(minutes).collect())
    }

    const SAT: i64 = 5 * 1440;

    #[test]
    fn any_in_wraps_over_the_week() {
        let monday_first_hour = mask(|m| m < 60);
        assert!(monday_first_hour.any_in(WEEK - 10, WEEK + 5));
        assert!(!monday_first_hour.any_in(60, WEEK - 1));
        assert!(monday_first_hour.any_in(60, 60 + WEEK));
    }

    #[test]
    fn saturday_hour_and_a_day_long_deadline() {
        let sat = mask(|m| (SAT + 540..SAT + 600).contains(&m));
        // Entered 12h after a deadline that starts on Saturday morning.
        let late = Timing {
            entered: 720,
            fires: 1440,
            margin: 0,
        };
        assert_eq!(verdict(&sat, &sat, late), Verdict::Never);
        // Entered as the deadline starts, at enrollment: lost unless enrolled
        // from Friday 09:00 to Saturday 10:00.
        let at_once = Timing {
            entered: 0,
            fires: 1440,
            margin: 0,
        };
        let Verdict::Sometimes(lost) = verdict(&sat, &WeekMask::always(), at_once) else {
            panic!("expected some losses");
        };
        let texts: Vec<String> = lost.into_iter().map(range_text).collect();
        assert_eq!(texts, ["sat 10:00-fri 09:00"]);
    }

    #[test]
    fn a_gap_exactly_as_long_as_the_wait_is_not_a_loss() {
        // Closed 20:00-08:00: a 12h wait that starts exactly at 20:00 would
        // miss 08:00 by an instant; a start a moment later would not.
        let days = mask(|m| (480..1200).contains(&(m % 1440)));
        let twelve = Timing {
            entered: 0,
            fires: 720,
            margin: 0,
        };
        assert_eq!(verdict(&days, &WeekMask::always(), twelve), Verdict::Fine);
    }
}
