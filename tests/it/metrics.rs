//! `GET /metrics` on the real daemon: after sends over a loopback HTTP
//! channel, one of which fails for a passing reason and is retried, the
//! Prometheus text parses (with `prometheus-parse`, not nudge's code) and
//! its numbers are the ones that happened.

use crate::support;

use std::time::Duration;

use prometheus_parse::{Scrape, Value};
use support::site::{wait_for, Site};
use support::{Reply, Server};

const SECRET_ENV: &str = "NUDGE_TEST_METRICS_SECRET";

/// The probe site with email going over HTTP to `url`, retries after a
/// second, and `[metrics]` as `metrics` says.
fn site(url: &str, metrics: &str) -> Site {
    let site = Site::probe();
    let config = std::fs::read_to_string(site.config()).unwrap();
    let config = config
        .replace(
            "[channels.email]\ntransport = \"file\"\npath = \"out/email.jsonl\"\n",
            &format!(
                "[channels.email]\ntransport = \"http\"\nurl = \"{url}/mail\"\nsecret_env = \"{SECRET_ENV}\"\n"
            ),
        )
        .replace("[runtime]\n", "[runtime]\nretry_base_secs = 1\n");
    site.write("nudge.toml", &format!("{config}\n{metrics}"));
    site
}

fn start(site: &Site) -> support::site::Daemon {
    site.start_with(
        &["run"],
        |c| {
            c.env(SECRET_ENV, "metrics-secret-0123456789");
        },
        &[": running"],
    )
}

async fn scrape(site: &Site, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("http://127.0.0.1:{}/metrics", site.port));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap())
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text")
}

/// The value of the sample `name` whose labels include `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .and_then(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
            _ => None,
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn sends_a_failure_and_a_retry_are_counted_and_the_text_parses() {
    // The first post is taken, the second refused with a 503 (a passing
    // failure), every later one taken.
    let server = Server::start_scripted([
        Reply::text(204, ""),
        Reply::text(503, "busy"),
        Reply::text(204, ""),
    ])
    .await;
    let site = site(&server.url(), "");
    let daemon = start(&site);
    let token = site.token();

    let (status, _) = scrape(&site, None).await;
    assert_eq!(status, 401, "the token is asked for by default");
    let (status, before) = scrape(&site, Some(&token)).await;
    assert_eq!(status, 200, "{before}");
    let before = parse(&before);
    assert_eq!(
        value(&before, "nudge_sends_total", &[("channel", "email")]),
        Some(0.0)
    );

    let enroll = |id: &str| {
        let site = &site;
        let id = id.to_string();
        move || site.enroll(&id, "Ana", &format!("{id}@example.com"))
    };
    tokio::task::block_in_place(enroll("m1"));
    tokio::task::block_in_place(enroll("m2"));

    // Three posts: both first tries, one failed, and its retry.
    wait_for(|| (server.received().len() >= 3).then_some(())).expect("three posts");
    let text = wait_for(|| {
        let text = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(scrape(&site, Some(&token)))
        })
        .1;
        let scrape = parse(&text);
        (value(&scrape, "nudge_sends_total", &[("channel", "email")]) == Some(2.0)).then_some(text)
    })
    .expect("two sends counted");
    std::thread::sleep(Duration::from_millis(200));
    let scrape = parse(&text);
    let get = |name: &str, labels: &[(&str, &str)]| {
        value(&scrape, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    assert_eq!(get("nudge_sends_total", &[("channel", "email")]), 2.0);
    assert_eq!(get("nudge_sends_total", &[("channel", "sms")]), 0.0);
    assert_eq!(
        get(
            "nudge_send_failures_total",
            &[("channel", "email"), ("kind", "retryable")]
        ),
        1.0
    );
    assert_eq!(
        get("nudge_send_retries_total", &[("channel", "email")]),
        1.0
    );
    // The lateness of the two first tries (the retry waits on purpose).
    assert_eq!(
        get("nudge_dispatch_lateness_seconds_count", &[("kind", "send")]),
        2.0
    );
    // The retry fell due while the core was idle: it woke for it.
    assert!(
        get(
            "nudge_dispatch_lateness_seconds_count",
            &[("kind", "timer")]
        ) >= 1.0
    );
    assert_eq!(get("nudge_sends_queued", &[]), 0.0);
    assert_eq!(get("nudge_sends_in_flight", &[]), 0.0);
    // Each enrollment waits in `first` with its `after 2h` armed.
    assert_eq!(
        get(
            "nudge_enrollments",
            &[("campaign", "probe"), ("state", "first")]
        ),
        2.0
    );
    assert!(get("nudge_timers_pending", &[]) >= 2.0, "{text}");
    assert!(get("nudge_store_size_bytes", &[]) > 0.0, "{text}");
    assert_eq!(server.received().len(), 3, "no post beyond the retry");
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_can_be_left_off_and_the_store_counts_outlive_a_restart() {
    let server = Server::start(Reply::text(204, "")).await;
    let site = site(&server.url(), "[metrics]\ntoken = false\n");
    let daemon = start(&site);
    tokio::task::block_in_place(|| site.enroll("m1", "Ana", "m1@example.com"));
    wait_for(|| (!server.received().is_empty()).then_some(())).expect("a post");
    daemon.stop();

    let daemon = start(&site);
    let (status, text) = scrape(&site, None).await;
    assert_eq!(status, 200, "{text}");
    let scrape = parse(&text);
    // Counters are this process's; enrollments are the store's.
    assert_eq!(
        value(&scrape, "nudge_sends_total", &[("channel", "email")]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &scrape,
            "nudge_enrollments",
            &[("campaign", "probe"), ("state", "first")]
        ),
        Some(1.0),
        "{text}"
    );
    daemon.stop();
}
