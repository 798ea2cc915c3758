//! The runtime's sense of time, as a trait: the real clock in production, a
//! scaled one for accelerated end-to-end tests (an hour a second, stable
//! across restarts), and a manual one that tests move by hand.

use std::sync::Mutex;
use std::time::{Duration as StdDuration, SystemTime};

use chrono::{DateTime, SubsecRound, Utc};

use crate::engine::Instant;

/// What the runtime asks of a clock.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
    /// How long to wait in real time until the clock shows `at` (zero when
    /// it already has).
    fn real_until(&self, at: Instant) -> StdDuration;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Whole milliseconds: the store keeps instants to the millisecond, so
    /// a step computed from a finer `now` would differ from the same step
    /// replayed from the store (and the scheduled instant of a send from
    /// the state that caused it).
    fn now(&self) -> Instant {
        Utc::now().trunc_subsecs(3)
    }

    fn real_until(&self, at: Instant) -> StdDuration {
        (at - Utc::now()).to_std().unwrap_or(StdDuration::ZERO)
    }
}

/// A clock that runs `speed` times faster than real time from an origin:
/// at real time `origin_real` it shows `origin`. Because both origins are
/// fixed, every process started with the same ones shares one timeline, so
/// a daemon killed and restarted picks up where the timeline now is.
#[derive(Debug, Clone, Copy)]
pub struct ScaledClock {
    pub origin: Instant,
    pub origin_real: SystemTime,
    pub speed: f64,
}

impl ScaledClock {
    /// Parses `START@REAL_MS*SPEED`, e.g. `2026-11-26T00:00:00Z@1764115200000*3600`.
    pub fn parse(text: &str) -> Result<ScaledClock, String> {
        let shape = "expected START@REAL_MS*SPEED, e.g. 2026-11-26T00:00:00Z@1764115200000*3600";
        let (start, rest) = text.split_once('@').ok_or(shape)?;
        let (real, speed) = rest.split_once('*').ok_or(shape)?;
        let origin = DateTime::parse_from_rfc3339(start)
            .map_err(|_| shape.to_string())?
            .with_timezone(&Utc);
        let real: u64 = real.parse().map_err(|_| shape.to_string())?;
        let speed: f64 = speed.parse().map_err(|_| shape.to_string())?;
        if !(speed.is_finite() && speed > 0.0) {
            return Err(format!("clock speed must be positive, got {speed}"));
        }
        Ok(ScaledClock {
            origin,
            origin_real: SystemTime::UNIX_EPOCH + StdDuration::from_millis(real),
            speed,
        })
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Instant {
        // Before `origin_real` the clock shows instants before `origin`.
        let real = match SystemTime::now().duration_since(self.origin_real) {
            Ok(after) => after.as_secs_f64(),
            Err(before) => -before.duration().as_secs_f64(),
        };
        let virtual_ms = (real * 1000.0 * self.speed).floor() as i64;
        self.origin + chrono::Duration::milliseconds(virtual_ms)
    }

    fn real_until(&self, at: Instant) -> StdDuration {
        let ahead = (at - self.now()).num_milliseconds();
        if ahead <= 0 {
            return StdDuration::ZERO;
        }
        StdDuration::from_secs_f64(ahead as f64 / 1000.0 / self.speed)
    }
}

/// A clock that stands still until a test moves it.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Instant>,
}

impl ManualClock {
    pub fn new(start: Instant) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    pub fn set(&self, at: Instant) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn real_until(&self, at: Instant) -> StdDuration {
        // Time only moves when the test moves it: look again soon.
        if at <= self.now() {
            StdDuration::ZERO
        } else {
            StdDuration::from_millis(5)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_clock_runs_fast_from_fixed_origins() {
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let clock = ScaledClock::parse(&format!("2026-11-26T00:00:00Z@{now_ms}*3600")).unwrap();
        let t = clock.now();
        // Within a few real milliseconds of the origin: a few virtual seconds.
        assert!(
            t >= clock.origin && t - clock.origin < chrono::Duration::seconds(60),
            "{t}"
        );
        let wait = clock.real_until(clock.origin + chrono::Duration::hours(1));
        assert!(
            wait <= StdDuration::from_secs(1) && wait > StdDuration::from_millis(900),
            "{wait:?}"
        );
        assert!(ScaledClock::parse("2026-11-26T00:00:00Z@1*0").is_err());
        assert!(ScaledClock::parse("soon").is_err());
    }

    #[test]
    fn scaled_clock_shows_earlier_instants_before_its_real_origin() {
        let soon_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 2_000;
        let clock = ScaledClock::parse(&format!("2026-12-01T09:00:00Z@{soon_ms}*1")).unwrap();
        let ahead = clock.origin - clock.now();
        assert!(
            ahead > chrono::Duration::milliseconds(1_500) && ahead <= chrono::Duration::seconds(2),
            "{ahead}"
        );
        // So a timer due at the origin waits for it.
        let wait = clock.real_until(clock.origin);
        assert!(wait > StdDuration::from_millis(1_500), "{wait:?}");
    }

    #[test]
    fn system_clock_speaks_whole_milliseconds() {
        let now = SystemClock.now();
        assert_eq!(now.timestamp_subsec_nanos() % 1_000_000, 0, "{now:?}");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::parse_from_rfc3339("2026-11-26T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = ManualClock::new(start);
        clock.advance(chrono::Duration::hours(2));
        assert_eq!(clock.now(), start + chrono::Duration::hours(2));
        assert_eq!(clock.real_until(start), StdDuration::ZERO);
    }
}
