//! What operators watch (`GET /metrics`, see `server::metrics`): the
//! daemon's registry of Prometheus metrics, kept with `prometheus-client`.
//!
//! Counted as things happen, at two places in the daemon:
//!
//! - `nudge_sends_total{channel}`, `nudge_send_failures_total{channel,kind}`
//!   and `nudge_dispatch_lateness_seconds` when a channel answers a send
//!   ([`Metrics::delivered`], in the dispatcher's lane);
//! - `nudge_send_retries_total{channel}` when a send due for another try
//!   is handed to the dispatcher ([`Metrics::retried`]);
//! - `nudge_dispatch_lateness_seconds{kind="timer"}` when the idle core
//!   wakes for a timer due ([`Metrics::timer_fired`]).
//!
//! Read from the store at each scrape ([`Metrics::render`]): the sends
//! queued and in flight, the timers stored, the store's bytes on disk, and
//! the enrollments per campaign and state (from the counters the core
//! keeps in its own commits), so a scrape never disagrees with `status`.
//!
//! Counters start at zero with each process, as Prometheus expects of a
//! counter (it reads a restart as a reset).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::channels::{Delivered, Message, SendError};
use crate::engine::{Channel, Instant};
use crate::store::{Counter as StoreCounter, Store, StoreError};

type Labels = Vec<(String, String)>;

/// The upper bounds of the lateness histogram's buckets, in seconds: from
/// on time to a day late.
const LATENESS_BUCKETS: [f64; 12] = [
    0.1,
    0.5,
    1.0,
    5.0,
    15.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4.0 * 3600.0,
    12.0 * 3600.0,
    86_400.0,
];

/// The daemon's metrics; one per daemon, shared by its parts.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sends: Family<Labels, Counter>,
    failures: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    lateness: Family<Labels, Histogram, fn() -> Histogram>,
    queued: Gauge,
    in_flight: Gauge,
    timers: Gauge,
    store_bytes: Gauge,
    enrollments: Family<Labels, Gauge>,
    finished: Family<Labels, Gauge>,
    /// The keys of retries under way: their lateness is not the engine's
    /// (they wait for their backoff on purpose), so it is not observed.
    retrying: Mutex<HashSet<String>>,
    /// One scrape at a time, so one scrape's gauges are not another's.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("nudge");
        let sends = Family::<Labels, Counter>::default();
        let failures = Family::<Labels, Counter>::default();
        let retries = Family::<Labels, Counter>::default();
        let lateness: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(LATENESS_BUCKETS));
        let (queued, in_flight, timers, store_bytes): (Gauge, Gauge, Gauge, Gauge) =
            Default::default();
        let enrollments = Family::<Labels, Gauge>::default();
        let finished = Family::<Labels, Gauge>::default();
        registry.register(
            "sends",
            "Sends a channel took (delivered), by channel",
            sends.clone(),
        );
        registry.register(
            "send_failures",
            "Delivery attempts that failed, by channel and kind (retryable, throttled, \
             permanent, bounced, unsubscribed)",
            failures.clone(),
        );
        registry.register(
            "send_retries",
            "Sends handed to a channel again after a failure that may pass, by channel",
            retries.clone(),
        );
        registry.register_with_unit(
            "dispatch_lateness",
            "How late things went: `kind=\"send\"`, how long after the engine decided it (a \
             timer's due instant) a send went to its channel, retries left out; \
             `kind=\"timer\"`, how long after it was due the idle daemon fired the first \
             timer (or retry) of a batch",
            Unit::Seconds,
            lateness.clone(),
        );
        registry.register(
            "sends_queued",
            "Sends queued for delivery and not yet handed to a channel",
            queued.clone(),
        );
        registry.register(
            "sends_in_flight",
            "Sends handed to a channel and not yet answered",
            in_flight.clone(),
        );
        registry.register(
            "timers_pending",
            "Timers stored and not yet fired (a timer replaced by a later one of its \
             enrollment counts until it falls due)",
            timers.clone(),
        );
        registry.register_with_unit(
            "store_size",
            "The store folder's size on disk",
            Unit::Bytes,
            store_bytes.clone(),
        );
        registry.register(
            "enrollments",
            "Enrollments waiting in each state, by campaign and state",
            enrollments.clone(),
        );
        registry.register(
            "enrollments_finished",
            "Enrollments that left their campaign, by campaign and outcome",
            finished.clone(),
        );
        Metrics {
            registry,
            sends,
            failures,
            retries,
            lateness,
            queued,
            in_flight,
            timers,
            store_bytes,
            enrollments,
            finished,
            retrying: Mutex::new(HashSet::new()),
            scrape: Mutex::new(()),
        }
    }

    /// A channel answered `message` with `outcome`, at `now`.
    pub fn delivered(
        &self,
        message: &Message,
        outcome: &Result<Delivered, SendError>,
        now: Instant,
    ) {
        let channel = message.channel.name().to_string();
        match outcome {
            Ok(_) => {
                self.sends
                    .get_or_create(&vec![("channel".into(), channel)])
                    .inc();
            }
            Err(e) => {
                let kind = match e {
                    SendError::Retryable(_) => "retryable",
                    SendError::Throttled { .. } => "throttled",
                    SendError::Permanent(_) => "permanent",
                    SendError::Bounced(_) => "bounced",
                    SendError::Unsubscribed(_) => "unsubscribed",
                };
                self.failures
                    .get_or_create(&vec![
                        ("channel".into(), channel),
                        ("kind".into(), kind.into()),
                    ])
                    .inc();
            }
        }
        let retry = self
            .retrying
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&message.key);
        if !retry {
            self.late("send", message.scheduled_at, now);
        }
    }

    /// The idle core fires a timer (or a retry) due at `due`, at `now`.
    pub fn timer_fired(&self, due: Instant, now: Instant) {
        self.late("timer", due, now);
    }

    fn late(&self, kind: &str, due: Instant, now: Instant) {
        let late = (now - due).num_milliseconds().max(0);
        self.lateness
            .get_or_create(&vec![("kind".into(), kind.into())])
            .observe(late as f64 / 1000.0);
    }

    /// A send due for another try is handed to the dispatcher.
    pub fn retried(&self, message: &Message) {
        self.retries
            .get_or_create(&vec![("channel".into(), message.channel.name().into())])
            .inc();
        self.retrying
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(message.key.clone());
    }

    /// The metrics in the OpenMetrics text format (which Prometheus reads),
    /// with the gauges read from `store` (kept in the folder `dir`) now.
    pub fn render<S: Store>(&self, store: &S, dir: &Path) -> Result<String, StoreError> {
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        let undelivered = store.undelivered();
        let in_flight = store.in_flight();
        self.queued
            .set(gauge(undelivered.saturating_sub(in_flight) as u64));
        self.in_flight.set(gauge(in_flight as u64));
        self.timers
            .set(gauge(store.timers_until(None)?.len() as u64));
        self.store_bytes.set(gauge(folder_bytes(dir)));
        self.enrollments.clear();
        self.finished.clear();
        for (campaign, counter, n) in store.all_counters()? {
            let (family, label, name) = match counter {
                StoreCounter::State(state) => (&self.enrollments, "state", state),
                StoreCounter::Outcome(outcome) => (&self.finished, "outcome", outcome),
                _ => continue,
            };
            family
                .get_or_create(&vec![("campaign".into(), campaign), (label.into(), name)])
                .set(n);
        }
        let mut text = String::new();
        encode(&mut text, &self.registry)
            .map_err(|_| StoreError::Io(std::io::Error::other("the metrics did not encode")))?;
        Ok(text)
    }

    /// Every channel's counters at zero, so a scrape lists each channel
    /// before its first send.
    pub fn with_channels(self) -> Metrics {
        for kind in ["send", "timer"] {
            drop(
                self.lateness
                    .get_or_create(&vec![("kind".to_string(), kind.to_string())]),
            );
        }
        for channel in Channel::ALL {
            let label = vec![("channel".to_string(), channel.name().to_string())];
            drop(self.sends.get_or_create(&label));
            drop(self.retries.get_or_create(&label));
        }
        self
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The bytes of the files under `dir` (0 for what cannot be read).
fn folder_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => folder_bytes(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_of_an_empty_store_lists_every_metric() {
        let metrics = Metrics::new().with_channels();
        let store = crate::store::MemoryStore::default();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), [0u8; 100]).unwrap();
        let text = metrics.render(&store, dir.path()).unwrap();
        for line in [
            "nudge_sends_total{channel=\"email\"} 0",
            "nudge_send_retries_total{channel=\"sms\"} 0",
            "nudge_sends_queued 0",
            "nudge_timers_pending 0",
            "nudge_store_size_bytes 100",
            "nudge_dispatch_lateness_seconds_count{kind=\"send\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
    }
}
