//! Whether the daemon's store can be written: shared by the core thread
//! (which finds that a write failed, and that writing works again), the
//! watchdog (which finds a write that does not return), the admin API
//! (`/v1/health`, `/v1/status`) and every caller waiting for the core,
//! who is answered at once while the store is in trouble instead of
//! waiting for it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::engine::Instant;
use crate::sim::rfc3339;

/// What is wrong with the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// Writes fail (a full disk, an I/O error, a read-only filesystem);
    /// the core tries again every few seconds.
    WritesFail { cause: String, since: Instant },
    /// A write has not returned for this long (a stalled disk).
    WriteStalled { for_secs: u64, since: Instant },
}

impl std::fmt::Display for Trouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trouble::WritesFail { cause, since } => write!(
                f,
                "the store cannot be written since {}: {cause}; nothing new is accepted and no timer fires until it can (nudge tries again every few seconds, and resumes by itself); everything acknowledged before is kept",
                rfc3339(*since)
            ),
            Trouble::WriteStalled { for_secs, since } => write!(
                f,
                "a write to the store has not finished for {for_secs} s (since {}): the disk is stalled; nothing new is accepted until it finishes",
                rfc3339(*since)
            ),
        }
    }
}

/// The store's health, watched by whoever needs it.
#[derive(Clone)]
pub struct Health(Arc<watch::Sender<Option<Trouble>>>);

impl Default for Health {
    fn default() -> Self {
        Health(Arc::new(watch::Sender::new(None)))
    }
}

impl Health {
    /// What is wrong now, if anything.
    pub fn trouble(&self) -> Option<Trouble> {
        self.0.borrow().clone()
    }

    /// Writes fail: noted with the first cause and time (a later failure
    /// of the same spell keeps them, but replaces a stall).
    pub fn writes_fail(&self, cause: String, now: Instant) {
        self.0.send_if_modified(|t| match t {
            Some(Trouble::WritesFail { .. }) => false,
            _ => {
                *t = Some(Trouble::WritesFail { cause, since: now });
                true
            }
        });
    }

    /// Whether writes are failing (not merely slow).
    pub fn writes_failing(&self) -> bool {
        matches!(*self.0.borrow(), Some(Trouble::WritesFail { .. }))
    }

    /// A write has been running for `running`: a stall once past `limit`,
    /// and the stall over once it returns.
    pub fn write_running(&self, running: Option<Duration>, limit: Duration, now: Instant) {
        self.0.send_if_modified(|t| match (running, &*t) {
            (_, Some(Trouble::WritesFail { .. })) => false,
            (Some(d), _) if d >= limit => {
                let since = now - chrono::Duration::from_std(d).unwrap_or_default();
                *t = Some(Trouble::WriteStalled {
                    for_secs: d.as_secs(),
                    since,
                });
                true
            }
            (None, Some(Trouble::WriteStalled { .. })) => {
                *t = None;
                true
            }
            _ => false,
        });
    }

    /// The store is whole again.
    pub fn clear(&self) {
        self.0.send_if_modified(|t| t.take().is_some());
    }

    /// Resolves once there is trouble (at once if there is now).
    pub async fn troubled(&self) -> Trouble {
        let mut rx = self.0.subscribe();
        let found = match rx.wait_for(Option::is_some).await {
            Ok(t) => t.clone(),
            Err(_) => None,
        };
        match found {
            Some(t) => t,
            // The sender lives as long as `self`: not reached.
            None => std::future::pending().await,
        }
    }

    /// Resolves once there is no trouble (at once if there is none now).
    pub async fn healthy(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(Option::is_none).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Instant {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn a_stall_is_noted_past_its_limit_and_cleared_when_the_write_returns() {
        let h = Health::default();
        let now = at("2026-12-03T10:00:10Z");
        h.write_running(Some(Duration::from_secs(2)), Duration::from_secs(5), now);
        assert_eq!(h.trouble(), None);
        h.write_running(Some(Duration::from_secs(6)), Duration::from_secs(5), now);
        assert_eq!(
            h.trouble(),
            Some(Trouble::WriteStalled {
                for_secs: 6,
                since: at("2026-12-03T10:00:04Z")
            })
        );
        h.write_running(None, Duration::from_secs(5), now);
        assert_eq!(h.trouble(), None);
    }

    #[test]
    fn failing_writes_outrank_a_stall_and_keep_their_first_cause() {
        let h = Health::default();
        let now = at("2026-12-03T10:00:00Z");
        h.write_running(Some(Duration::from_secs(9)), Duration::from_secs(5), now);
        h.writes_fail("disk full".into(), now);
        h.writes_fail("again".into(), at("2026-12-03T10:00:05Z"));
        h.write_running(None, Duration::from_secs(5), now);
        assert_eq!(
            h.trouble(),
            Some(Trouble::WritesFail {
                cause: "disk full".into(),
                since: now
            })
        );
        assert!(h.writes_failing());
        h.clear();
        assert_eq!(h.trouble(), None);
    }
}
