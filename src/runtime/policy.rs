//! Delivery policy as data: how long to wait before trying a failed send
//! again (exponential backoff with full jitter), and how fast a channel may
//! be fed (a sliding-window rate limit per second and per minute). Both are
//! small values with pure functions, so they are tested without a clock.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Exponential backoff with full jitter: attempt `n` (1-based) waits a
/// uniformly random time in `[0, min(cap, base · 2^(n-1))]`, so many sends
/// failing together do not come back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Deliveries tried in all (the first included) before giving up.
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(30),
            cap: Duration::from_secs(3600),
            max_attempts: 8,
        }
    }
}

impl Backoff {
    /// The longest wait after failed attempt `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        let grown = self.base.saturating_mul(1u32 << doublings.min(31));
        grown.min(self.cap)
    }

    /// The wait after failed attempt `attempt`, given a uniform random
    /// number in `[0, 1)`; `None` once the attempts are used up.
    pub fn delay(&self, attempt: u32, random: f64) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        Some(self.ceiling(attempt).mul_f64(random.clamp(0.0, 1.0)))
    }
}

/// A uniform random number in `[0, 1)` from the operating system (0.5 if
/// it has none: the policy still works, only less spread).
pub fn jitter() -> f64 {
    let mut bytes = [0u8; 8];
    match getrandom::fill(&mut bytes) {
        Ok(()) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

/// The pace a channel may be fed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rate {
    pub per_second: Option<u32>,
    pub per_minute: Option<u32>,
}

/// Slack added to each window (see [`Limiter::wait`]).
const MARGIN: Duration = Duration::from_millis(10);

/// A sliding-window limiter: a send at `t` is allowed when fewer than
/// `per_second` sends happened in `(t - 1 s, t]` and fewer than
/// `per_minute` in `(t - 60 s, t]`. Exact over every window, not on
/// average: a backlog drains at the limit and never above it.
#[derive(Debug, Clone)]
pub struct Limiter {
    rate: Rate,
    /// Instants of recent sends, oldest first (as durations since an origin).
    recent: VecDeque<Duration>,
}

impl Limiter {
    pub fn new(rate: Rate) -> Self {
        Limiter {
            rate,
            recent: VecDeque::new(),
        }
    }

    /// How long to wait from `now` before the next send may go; zero when
    /// it may go now. Windows are kept 10 ms longer than a second (and a
    /// minute), so the small jitter between deciding a send and the channel
    /// acting on it cannot squeeze one more into a second: the pace is at
    /// most 1% under the limit, never over it.
    pub fn wait(&mut self, now: Duration) -> Duration {
        let mut wait = Duration::ZERO;
        for (limit, window) in [
            (self.rate.per_second, Duration::from_secs(1) + MARGIN),
            (self.rate.per_minute, Duration::from_secs(60) + MARGIN),
        ] {
            let Some(limit) = limit else { continue };
            let limit = limit.max(1) as usize;
            let inside: Vec<Duration> = self
                .recent
                .iter()
                .copied()
                .filter(|t| *t + window > now)
                .collect();
            if inside.len() >= limit {
                // The send `inside.len() - limit` places from the oldest must
                // slide out of the window first.
                let free_at = inside[inside.len() - limit] + window;
                wait = wait.max(free_at.saturating_sub(now));
            }
        }
        wait
    }

    /// Records a send at `now`.
    pub fn record(&mut self, now: Duration) {
        self.recent.push_back(now);
        while self
            .recent
            .front()
            .is_some_and(|t| *t + Duration::from_secs(60) + MARGIN <= now)
        {
            self.recent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stops() {
        let b = Backoff {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(60),
            max_attempts: 5,
        };
        assert_eq!(b.ceiling(1), Duration::from_secs(10));
        assert_eq!(b.ceiling(2), Duration::from_secs(20));
        assert_eq!(b.ceiling(3), Duration::from_secs(40));
        assert_eq!(b.ceiling(4), Duration::from_secs(60));
        assert_eq!(b.delay(2, 0.5), Some(Duration::from_secs(10)));
        assert_eq!(
            b.delay(4, 0.999_999),
            Some(Duration::from_secs(60).mul_f64(0.999_999))
        );
        assert_eq!(b.delay(1, 0.0), Some(Duration::ZERO));
        assert_eq!(b.delay(5, 0.5), None, "five attempts were allowed");
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn limiter_never_exceeds_the_rate_in_any_window() {
        let mut l = Limiter::new(Rate {
            per_second: Some(50),
            per_minute: Some(1000),
        });
        let mut now = Duration::ZERO;
        let mut sent = Vec::new();
        for _ in 0..1200 {
            let wait = l.wait(now);
            now += wait;
            assert_eq!(l.wait(now), Duration::ZERO);
            l.record(now);
            sent.push(now);
        }
        for (i, t) in sent.iter().enumerate() {
            let in_second = sent[..=i]
                .iter()
                .filter(|s| **s + Duration::from_secs(1) > *t)
                .count();
            let in_minute = sent[..=i]
                .iter()
                .filter(|s| **s + Duration::from_secs(60) > *t)
                .count();
            assert!(
                in_second <= 50,
                "{in_second} sends in the second before {t:?}"
            );
            assert!(in_minute <= 1000, "{in_minute} in the minute before {t:?}");
        }
        // The backlog drains at the limit: 1000 in the first minute, then on.
        assert!(sent[999] < Duration::from_secs(20), "{:?}", sent[999]);
        assert!(sent[1000] >= Duration::from_secs(60), "{:?}", sent[1000]);
        // ... and only just under it: a burst of 50 every 1.01 s.
        assert!(
            sent[999] > Duration::from_millis(19_100) && sent[999] < Duration::from_millis(19_300),
            "{:?}",
            sent[999]
        );
    }

    #[test]
    fn no_rate_means_no_wait() {
        let mut l = Limiter::new(Rate::default());
        for i in 0..100 {
            assert_eq!(l.wait(Duration::from_millis(i)), Duration::ZERO);
            l.record(Duration::from_millis(i));
        }
    }
}
