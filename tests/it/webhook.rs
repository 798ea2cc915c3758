//! The HTTP (webhook) transport against a recording HTTP server on
//! loopback: the JSON it posts, the headers, a signature the receiver can
//! verify with the shared secret, and how failures are classified.

use crate::support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::DateTime;
use nudge::channels::webhook::{self, verify, WebhookChannel, WebhookConfig};
use nudge::channels::{Backend, Delivered, Message, SendError};
use nudge::config::{parse_str, Transport};
use nudge::engine::Channel;
use nudge::runtime::run::channels_from;
use serde_json::json;
use support::{closed_port_url, Reply, Server};

const SECRET_ENV: &str = "NUDGE_TEST_WEBHOOK_SECRET";
const SECRET: &str = "whsec-5f1e0c";
const TOLERANCE: Duration = Duration::from_secs(300);

fn set_secret() {
    // Every test sets the same value, so the order does not matter.
    std::env::set_var(SECRET_ENV, SECRET);
}

fn config(url: &str) -> WebhookConfig {
    WebhookConfig {
        url: url.to_string(),
        secret_env: SECRET_ENV.to_string(),
        timeout_secs: 5,
        plain_http: Default::default(),
    }
}

fn channel(cfg: &WebhookConfig) -> WebhookChannel {
    set_secret();
    WebhookChannel::new(cfg, Channel::Webhook).unwrap()
}

fn message() -> Message {
    Message {
        key: "warehouse_associate/c1/2/0".to_string(),
        campaign: "warehouse_associate".to_string(),
        candidate: "c1".to_string(),
        template: "ats-update".to_string(),
        channel: Channel::Webhook,
        to: String::new(),
        subject: Some("Invited".to_string()),
        body: "Ana Ruiz was invited to the interview".to_string(),
        html: None,
        unsubscribe_url: None,
        scheduled_at: DateTime::parse_from_rfc3339("2026-11-28T15:00:00Z")
            .unwrap()
            .to_utc(),
        in_flight: false,
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

#[tokio::test]
async fn posts_signed_json_the_receiver_can_verify() {
    let server = Server::start(Reply::text(204, "")).await;
    let backend = Backend::Webhook(channel(&config(&format!("{}/hooks/nudge", server.url()))));
    assert!(backend.idempotent());

    let before = now();
    let delivered = backend.deliver(&message()).await.unwrap();
    assert_eq!(delivered, Delivered::default());

    let [req] = server.received().try_into().unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/hooks/nudge");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(
        req.header("idempotency-key"),
        Some("warehouse_associate/c1/2/0")
    );
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        body,
        json!({
            "key": "warehouse_associate/c1/2/0",
            "campaign": "warehouse_associate",
            "candidate": "c1",
            "template": "ats-update",
            "channel": "webhook",
            "to": "",
            "subject": "Invited",
            "body": "Ana Ruiz was invited to the interview",
            "scheduled_at": "2026-11-28T15:00:00Z",
        })
    );

    let timestamp = req.header("x-nudge-timestamp").unwrap();
    let sent: i64 = timestamp.parse().unwrap();
    assert!((before..=now()).contains(&sent), "{sent}");
    let signature = req.header("x-nudge-signature").unwrap();
    assert!(signature.starts_with("v1="), "{signature}");
    assert!(verify(
        SECRET,
        timestamp,
        &req.body,
        signature,
        now(),
        TOLERANCE
    ));
    // The receiver refuses another secret, a changed body, and a replay
    // after the tolerance.
    assert!(!verify(
        "other",
        timestamp,
        &req.body,
        signature,
        now(),
        TOLERANCE
    ));
    let mut changed = req.body.to_vec();
    changed[10] ^= 1;
    assert!(!verify(
        SECRET,
        timestamp,
        &changed,
        signature,
        now(),
        TOLERANCE
    ));
    assert!(!verify(
        SECRET,
        timestamp,
        &req.body,
        signature,
        now() + 301,
        TOLERANCE
    ));
    // The signature is nudge's documented scheme, reproducible by receivers.
    assert_eq!(signature, webhook::sign(SECRET, sent, &req.body));
}

/// What delivering one message gets from a server answering `reply`.
async fn outcome(reply: Reply) -> Result<Delivered, SendError> {
    let server = Server::start(reply).await;
    channel(&config(&server.url())).deliver(&message()).await
}

#[tokio::test]
async fn too_many_requests_with_retry_after_is_throttled_for_that_long() {
    let reply = Reply::text(429, "slow down").with_header("retry-after", "42");
    assert_eq!(
        outcome(reply).await,
        Err(SendError::Throttled {
            why: "HTTP 429 (slow down)".to_string(),
            retry_after: Duration::from_secs(42),
        })
    );
}

#[tokio::test]
async fn a_server_error_is_retryable() {
    assert_eq!(
        outcome(Reply::text(503, "")).await,
        Err(SendError::Retryable("HTTP 503".to_string()))
    );
}

#[tokio::test]
async fn a_client_error_is_permanent() {
    assert_eq!(
        outcome(Reply::json(400, json!({ "error": "unknown candidate" }))).await,
        Err(SendError::Permanent(
            r#"HTTP 400 ({"error":"unknown candidate"})"#.to_string()
        ))
    );
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    let result = channel(&config(&closed_port_url()))
        .deliver(&message())
        .await;
    assert!(
        matches!(&result, Err(SendError::Retryable(why)) if why.starts_with("cannot connect")),
        "{result:?}"
    );
}

#[test]
fn nudge_toml_configures_the_webhook() {
    set_secret();
    let text = format!(
        r#"
        [channels.webhook]
        transport = "http"
        url = "https://ats.example.com/nudge?token=abc"
        secret_env = "{SECRET_ENV}"
        "#
    );
    let config = parse_str("nudge.toml", &text).unwrap();
    assert_eq!(
        config.channels.webhook,
        Transport::Http(WebhookConfig {
            url: "https://ats.example.com/nudge?token=abc".to_string(),
            secret_env: SECRET_ENV.to_string(),
            timeout_secs: 10,
            plain_http: Default::default(),
        })
    );
    let channels = channels_from(&config).unwrap();
    let backend = channels.get(Channel::Webhook);
    assert_eq!(backend.describe(), "http https://ats.example.com/nudge");
    let debug = format!("{backend:?}");
    assert!(
        !debug.contains(SECRET) && !debug.contains("token=abc"),
        "{debug}"
    );
}

#[test]
fn a_missing_secret_is_named_not_shown() {
    let mut cfg = config("https://ats.example.com/nudge");
    cfg.secret_env = "NUDGE_TEST_WEBHOOK_SECRET_NOT_SET".to_string();
    assert_eq!(
        WebhookChannel::new(&cfg, Channel::Webhook).unwrap_err(),
        "environment variable `NUDGE_TEST_WEBHOOK_SECRET_NOT_SET` is not set"
    );
}
