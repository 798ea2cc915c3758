//! The Twilio transport against a recording HTTP server on loopback: the
//! exact form and basic auth it sends for SMS and WhatsApp, and how each
//! kind of failure is classified.

use crate::support;

use std::time::Duration;

use chrono::DateTime;
use nudge::channels::twilio::{TwilioChannel, TwilioConfig};
use nudge::channels::{Backend, Delivered, Message, SendError};
use nudge::config::{parse_str, Transport};
use nudge::engine::Channel;
use nudge::runtime::run::channels_from;
use serde_json::json;
use support::{closed_port_url, Reply, Server};

/// The variable holding the auth token in these tests, and its value.
const TOKEN_ENV: &str = "NUDGE_TEST_TWILIO_AUTH_TOKEN";
const TOKEN: &str = "tok-3n/secret";
/// `Basic ` and base64 of `AC0123:tok-3n/secret`.
const AUTHORIZATION: &str = "Basic QUMwMTIzOnRvay0zbi9zZWNyZXQ=";
const MESSAGES_PATH: &str = "/2010-04-01/Accounts/AC0123/Messages.json";

fn set_token() {
    // Every test sets the same value, so the order does not matter.
    std::env::set_var(TOKEN_ENV, TOKEN);
}

fn config(base_url: &str) -> TwilioConfig {
    TwilioConfig {
        base_url: base_url.to_string(),
        account_sid: "AC0123".to_string(),
        auth_token_env: TOKEN_ENV.to_string(),
        from: Some("+1 415 523 8886".to_string()),
        messaging_service_sid: None,
        status_callback: None,
        timeout_secs: 5,
        plain_http: Default::default(),
    }
}

fn channel(cfg: &TwilioConfig, whatsapp: bool) -> TwilioChannel {
    set_token();
    TwilioChannel::new(cfg, whatsapp).unwrap()
}

fn message(channel: Channel, to: &str) -> Message {
    Message {
        key: "warehouse_associate/c1/2/0".to_string(),
        campaign: "warehouse_associate".to_string(),
        candidate: "c1".to_string(),
        template: "invite-short".to_string(),
        channel,
        to: to.to_string(),
        subject: None,
        body: "Acme: Hi Ana, a 10-min interview: https://x.example/i/ab&c=1 Reply STOP to opt out"
            .to_string(),
        html: None,
        unsubscribe_url: None,
        scheduled_at: DateTime::parse_from_rfc3339("2026-11-28T15:00:00Z")
            .unwrap()
            .to_utc(),
        in_flight: false,
    }
}

fn created(sid: &str) -> Reply {
    Reply::json(201, json!({ "sid": sid, "status": "queued" }))
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn sms_posts_the_exact_form_with_basic_auth() {
    let server = Server::start(created("SM0001")).await;
    let mut cfg = config(&server.url());
    cfg.status_callback = Some("https://nudge.example.com/twilio/status".to_string());
    let backend = Backend::Twilio(channel(&cfg, false));
    assert!(!backend.idempotent());

    let msg = message(Channel::Sms, "+1 (555) 010-0100");
    let delivered = backend.deliver(&msg).await.unwrap();
    assert_eq!(
        delivered,
        Delivered {
            duplicate: false,
            provider_id: Some("SM0001".to_string())
        }
    );

    let [req] = server.received().try_into().unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, MESSAGES_PATH);
    assert_eq!(req.header("authorization"), Some(AUTHORIZATION));
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        req.form(),
        pairs(&[
            ("To", "+15550100100"),
            ("From", "+14155238886"),
            ("Body", &msg.body),
            (
                "StatusCallback",
                "https://nudge.example.com/twilio/status?key=warehouse_associate%2Fc1%2F2%2F0"
            ),
        ])
    );
}

#[tokio::test]
async fn whatsapp_uses_whatsapp_addresses_and_the_messaging_service() {
    let server = Server::start(created("SM0002")).await;
    let mut cfg = config(&server.url());
    cfg.messaging_service_sid = Some("MG0456".to_string());
    let twilio = channel(&cfg, true);

    let msg = message(Channel::Whatsapp, "+44 7911 123456");
    let delivered = twilio.deliver(&msg).await.unwrap();
    assert_eq!(delivered.provider_id.as_deref(), Some("SM0002"));

    let [req] = server.received().try_into().unwrap();
    assert_eq!(req.path, MESSAGES_PATH);
    assert_eq!(req.header("authorization"), Some(AUTHORIZATION));
    assert_eq!(
        req.form(),
        pairs(&[
            ("To", "whatsapp:+447911123456"),
            ("From", "whatsapp:+14155238886"),
            ("MessagingServiceSid", "MG0456"),
            ("Body", &msg.body),
        ])
    );
}

#[tokio::test]
async fn a_messaging_service_alone_sends_no_from() {
    let server = Server::start(created("SM0003")).await;
    let mut cfg = config(&server.url());
    cfg.from = None;
    cfg.messaging_service_sid = Some("MG0456".to_string());
    let msg = message(Channel::Sms, "+15550100100");
    channel(&cfg, false).deliver(&msg).await.unwrap();

    let [req] = server.received().try_into().unwrap();
    assert_eq!(
        req.form(),
        pairs(&[
            ("To", "+15550100100"),
            ("MessagingServiceSid", "MG0456"),
            ("Body", &msg.body),
        ])
    );
}

/// What delivering one SMS gets from a server answering `reply`.
async fn outcome(reply: Reply) -> Result<Delivered, SendError> {
    let server = Server::start(reply).await;
    let twilio = channel(&config(&server.url()), false);
    twilio.deliver(&message(Channel::Sms, "+15550100100")).await
}

fn twilio_error(code: u32, status: u16, text: &str) -> serde_json::Value {
    json!({
        "code": code,
        "message": text,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    })
}

#[tokio::test]
async fn too_many_requests_with_retry_after_is_throttled_for_that_long() {
    let reply = Reply::json(429, twilio_error(20429, 429, "Too Many Requests"))
        .with_header("retry-after", "17");
    match outcome(reply).await {
        Err(SendError::Throttled { why, retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(17));
            assert!(why.contains("20429"), "{why}");
        }
        other => panic!("expected throttled, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_error_is_retryable() {
    let reply = Reply::text(500, "upstream exploded");
    assert_eq!(
        outcome(reply).await,
        Err(SendError::Retryable(
            "HTTP 500 (upstream exploded)".to_string()
        ))
    );
}

#[tokio::test]
async fn a_bad_request_is_permanent() {
    let reply = Reply::json(400, json!({ "message": "Missing required parameter" }));
    assert_eq!(
        outcome(reply).await,
        Err(SendError::Permanent(
            "HTTP 400 (Missing required parameter)".to_string()
        ))
    );
}

#[tokio::test]
async fn recipient_error_codes_are_permanent_with_their_meaning() {
    let cases = [
        (21211, "the `To` number is not valid"),
        (21614, "the `To` number is not a mobile number"),
        (63024, "the recipient is not a valid WhatsApp user"),
    ];
    for (code, meaning) in cases {
        let reply = Reply::json(400, twilio_error(code, 400, "refused"));
        assert_eq!(
            outcome(reply).await,
            Err(SendError::Permanent(format!(
                "HTTP 400, Twilio error {code}: {meaning} (refused)"
            ))),
            "code {code}"
        );
    }
    // A STOP the recipient sent the provider: the candidate's opt-out.
    let reply = Reply::json(400, twilio_error(21610, 400, "refused"));
    assert_eq!(
        outcome(reply).await,
        Err(SendError::Unsubscribed(
            "HTTP 400, Twilio error 21610: the recipient unsubscribed (replied STOP) (refused)"
                .into()
        ))
    );
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    let twilio = channel(&config(&closed_port_url()), false);
    let result = twilio.deliver(&message(Channel::Sms, "+15550100100")).await;
    assert!(
        matches!(&result, Err(SendError::Retryable(why)) if why.starts_with("cannot connect")),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_timeout_is_retryable() {
    let server = Server::start(created("SM0004").after(Duration::from_secs(5))).await;
    let mut cfg = config(&server.url());
    cfg.timeout_secs = 1;
    let result = channel(&cfg, false)
        .deliver(&message(Channel::Sms, "+15550100100"))
        .await;
    assert!(
        matches!(&result, Err(SendError::Retryable(why)) if why.starts_with("timed out")),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_number_without_country_code_is_permanent_and_named() {
    let server = Server::start(created("SM0005")).await;
    let twilio = channel(&config(&server.url()), false);
    let result = twilio.deliver(&message(Channel::Sms, "555 0100")).await;
    assert_eq!(
        result,
        Err(SendError::Permanent(
            "candidate `c1`: the phone number `555 0100` has no country code: \
             write it as +<country><number>"
                .to_string()
        ))
    );
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn check_asks_for_the_account() {
    let server = Server::start(Reply::json(
        200,
        json!({ "sid": "AC0123", "friendly_name": "Acme Recruiting", "status": "active" }),
    ))
    .await;
    let twilio = channel(&config(&server.url()), false);
    let line = twilio.check().await.unwrap();
    assert!(
        line.starts_with("account AC0123 (Acme Recruiting) is active"),
        "{line}"
    );
    let [req] = server.received().try_into().unwrap();
    assert_eq!(req.method, "GET");
    assert_eq!(req.path, "/2010-04-01/Accounts/AC0123.json");
    assert_eq!(req.header("authorization"), Some(AUTHORIZATION));

    let server = Server::start(Reply::json(401, twilio_error(20003, 401, "Authenticate"))).await;
    let twilio = channel(&config(&server.url()), false);
    let err = twilio.check().await.unwrap_err();
    assert!(err.contains("HTTP 401, Twilio error 20003"), "{err}");
}

#[test]
fn the_token_comes_from_the_environment_and_stays_out_of_sight() {
    set_token();
    let twilio = TwilioChannel::new(&config("https://api.twilio.com"), false).unwrap();
    assert!(!format!("{twilio:?}").contains(TOKEN));
    assert_eq!(
        twilio.describe(),
        "twilio https://api.twilio.com/ account AC0123 from +14155238886"
    );

    let mut cfg = config("https://api.twilio.com");
    cfg.auth_token_env = "NUDGE_TEST_TWILIO_TOKEN_NOT_SET".to_string();
    assert_eq!(
        TwilioChannel::new(&cfg, false).unwrap_err(),
        "environment variable `NUDGE_TEST_TWILIO_TOKEN_NOT_SET` is not set"
    );
}

#[test]
fn nudge_toml_configures_sms_and_whatsapp() {
    set_token();
    let text = format!(
        r#"
        [channels.sms]
        transport = "twilio"
        account_sid = "AC0123"
        auth_token_env = "{TOKEN_ENV}"
        from = "AcmeJobs"

        [channels.whatsapp]
        transport = "twilio"
        base_url = "http://127.0.0.1:9"
        account_sid = "AC0123"
        auth_token_env = "{TOKEN_ENV}"
        messaging_service_sid = "MG0456"
        status_callback = "https://nudge.example.com/twilio/status"
        timeout_secs = 3
        "#
    );
    let config = parse_str("nudge.toml", &text).unwrap();
    assert_eq!(
        config.channels.sms,
        Transport::Twilio(TwilioConfig {
            base_url: "https://api.twilio.com".to_string(),
            account_sid: "AC0123".to_string(),
            auth_token_env: TOKEN_ENV.to_string(),
            from: Some("AcmeJobs".to_string()),
            messaging_service_sid: None,
            status_callback: None,
            timeout_secs: 10,
            plain_http: Default::default(),
        })
    );
    let channels = channels_from(&config).unwrap();
    assert_eq!(
        channels.get(Channel::Sms).describe(),
        "twilio https://api.twilio.com/ account AC0123 from AcmeJobs"
    );
    assert_eq!(
        channels.get(Channel::Whatsapp).describe(),
        "twilio http://127.0.0.1:9/ account AC0123 via service MG0456"
    );
    assert!(!channels.only_console());
}
