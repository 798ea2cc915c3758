//! The HTTP transport: each message is POSTed as JSON to a configured URL,
//! signed so the receiver knows it came from nudge and is fresh.
//!
//! The body is one object: `key`, `campaign`, `candidate` (the id),
//! `template`, `channel`, `to`, `subject` (or null), `body`,
//! `scheduled_at` (RFC 3339). The headers:
//!
//! - `Idempotency-Key: <key>`: the message's key. nudge may deliver a
//!   message more than once (a retry after a lost response, a restart in
//!   the middle of a send); **the receiver must dedupe by this key** and
//!   answer 2xx to a key it already has. That contract is why this backend
//!   counts as idempotent.
//! - `X-Nudge-Timestamp: <unix seconds>` at sending (the real clock, also
//!   in demo mode).
//! - `X-Nudge-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
//!   Receivers check it with [`verify`] (or its equivalent in their
//!   language) and refuse timestamps outside a tolerance, which stops an
//!   old request from being replayed. A header may carry several
//!   comma-separated `v1=` values, any of which may match (for rotating
//!   the secret).
//!
//! A 2xx answer is a delivery; other answers and failures are classified
//! as in [`super::http`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use reqwest::header::CONTENT_TYPE;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::http;
use super::secret::{is_env_name, Secret};
use super::{Delivered, Message, PlainHttp, SendError, SettingProblem};
use crate::engine::{Channel, Instant};

/// The header carrying the message key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// The header carrying the signing time, in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-Nudge-Timestamp";
/// The header carrying the signature, `v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Nudge-Signature";

/// The settings of `transport = "http"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The http(s) URL every message is POSTed to.
    pub url: String,
    /// The name of the environment variable holding the signing secret,
    /// such as `NUDGE_WEBHOOK_SECRET`.
    pub secret_env: String,
    /// Seconds before a request gives up (and the send is retried), from
    /// 1 to 300 (default 10).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// `"allowed"` lets `url` be plain `http://` to another machine,
    /// sending the candidates' messages in clear (default `"refused"`:
    /// https, or http to this machine only).
    #[serde(default, skip_serializing_if = "PlainHttp::is_refused")]
    pub plain_http: PlainHttp,
}

fn default_timeout_secs() -> u64 {
    10
}

impl WebhookConfig {
    /// Every setting that cannot work, for `nudge check` and
    /// [`WebhookChannel::new`]. `table` is the channel's table as written
    /// in messages (`channels.webhook`).
    pub fn validate(&self, table: &str) -> Vec<SettingProblem> {
        let mut problems = Vec::new();
        match parse_url(&self.url) {
            Ok(url) => problems.extend(http::plain_http_problem(
                table,
                "url",
                &url,
                self.plain_http,
                "the messages and the candidates' addresses",
            )),
            Err(why) => problems.push(SettingProblem::new(
                &["url"],
                format!("`{table}.url` {why}"),
                "not an http(s) URL",
                "give the receiver's URL, such as \"https://ats.example.com/nudge\"",
            )),
        }
        if !is_env_name(&self.secret_env) {
            problems.push(SettingProblem::new(
                &["secret_env"],
                format!("`{table}.secret_env` is not an environment variable name"),
                "not a variable name",
                "name the variable holding the secret, such as \"NUDGE_WEBHOOK_SECRET\"; \
                 the secret itself never goes in this file",
            ));
        }
        problems.extend(http::timeout_problem(
            table,
            self.timeout_secs,
            default_timeout_secs(),
        ));
        problems
    }
}

fn parse_url(text: &str) -> Result<Url, String> {
    http::parse_url(text, false)
}

/// The JSON body of one delivery.
#[derive(Serialize)]
struct Payload<'a> {
    key: &'a str,
    campaign: &'a str,
    candidate: &'a str,
    template: &'a str,
    channel: Channel,
    to: &'a str,
    subject: Option<&'a str>,
    body: &'a str,
    scheduled_at: Instant,
}

impl<'a> Payload<'a> {
    fn of(msg: &'a Message) -> Self {
        Payload {
            key: &msg.key,
            campaign: &msg.campaign,
            candidate: &msg.candidate,
            template: &msg.template,
            channel: msg.channel,
            to: &msg.to,
            subject: msg.subject.as_deref(),
            body: &msg.body,
            scheduled_at: msg.scheduled_at,
        }
    }
}

/// POSTs signed JSON to one URL.
pub struct WebhookChannel {
    client: reqwest::Client,
    url: Url,
    secret: Secret,
}

/// Shows the URL as [`WebhookChannel::describe`] does: a query or a
/// password in it may be a credential.
impl std::fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookChannel")
            .field("url", &self.describe())
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

impl WebhookChannel {
    /// The backend of channel kind `channel` (usually the webhook channel;
    /// any kind may post to a gateway) for `cfg`. Reads the secret from the
    /// environment; errors name the setting or the variable, never the
    /// secret.
    pub fn new(cfg: &WebhookConfig, channel: Channel) -> Result<WebhookChannel, String> {
        let table = format!("channels.{channel}");
        if let Some(problem) = cfg.validate(&table).into_iter().next() {
            return Err(problem.message);
        }
        Ok(WebhookChannel {
            client: http::client(Duration::from_secs(
                http::TIMEOUT_SECS.clamp(cfg.timeout_secs),
            ))?,
            url: parse_url(&cfg.url)?,
            secret: Secret::from_env(&cfg.secret_env)?,
        })
    }

    /// POSTs one message, signed at the current time.
    pub async fn deliver(&self, msg: &Message) -> Result<Delivered, SendError> {
        let body = serde_json::to_vec(&Payload::of(msg))
            .map_err(|e| SendError::Permanent(format!("cannot encode the message: {e}")))?;
        let timestamp = unix_secs(SystemTime::now());
        let signature = sign(self.secret.expose(), timestamp, &body);
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, &msg.key)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(http::transport_failure)?;
        let status = response.status();
        if status.is_success() {
            return Ok(Delivered::default());
        }
        let retry_after = http::retry_after(response.headers(), SystemTime::now());
        let body = response.text().await.unwrap_or_default();
        let mut why = format!("HTTP {}", status.as_u16());
        if !body.trim().is_empty() {
            why.push_str(&format!(" ({})", http::excerpt(&body)));
        }
        Err(http::status_failure(status, retry_after, why))
    }

    /// `http https://ats.example.com/nudge`, without the query (which may
    /// hold a token), for `nudge run`'s startup lines.
    pub fn describe(&self) -> String {
        let mut shown = self.url.clone();
        shown.set_query(None);
        shown.set_fragment(None);
        let _ = shown.set_password(None);
        format!("http {shown}")
    }
}

fn unix_secs(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Nudge-Signature` value for `body` sent at `timestamp` (Unix
/// seconds): `v1=` and the lowercase hex HMAC-SHA256 of
/// `"<timestamp>.<body>"` under `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("v1={}", hex::encode(digest))
}

/// For receivers: whether `signature` (the `X-Nudge-Signature` header) is
/// nudge's signature of `body` at `timestamp` (the `X-Nudge-Timestamp`
/// header) under `secret`, and `timestamp` is within `tolerance` of `now`
/// (Unix seconds) either way. The comparison takes constant time.
pub fn verify(
    secret: &str,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
    tolerance: Duration,
) -> bool {
    let Ok(sent) = timestamp.trim().parse::<i64>() else {
        return false;
    };
    if now.abs_diff(sent) > tolerance.as_secs() {
        return false;
    }
    let expected = mac(secret, timestamp.trim(), body);
    signature
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(|given| hex::decode(given).ok())
        .any(|given| expected.clone().verify_slice(&given).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";
    const TOLERANCE: Duration = Duration::from_secs(300);

    #[test]
    fn a_signature_verifies_within_the_tolerance() {
        let body = br#"{"key":"k1"}"#;
        let signature = sign(SECRET, 1_700_000_000, body);
        assert!(signature.starts_with("v1="));
        assert_eq!(signature.len(), 3 + 64);
        for now in [1_700_000_000, 1_700_000_300, 1_699_999_700] {
            assert!(verify(
                SECRET,
                "1700000000",
                body,
                &signature,
                now,
                TOLERANCE
            ));
        }
    }

    #[test]
    fn tampering_staleness_and_other_secrets_fail() {
        let body = br#"{"key":"k1"}"#;
        let signature = sign(SECRET, 1_700_000_000, body);
        let ok = |ts: &str, body: &[u8], sig: &str, secret: &str, now: i64| {
            verify(secret, ts, body, sig, now, TOLERANCE)
        };
        assert!(!ok(
            "1700000000",
            br#"{"key":"k2"}"#,
            &signature,
            SECRET,
            1_700_000_000
        ));
        assert!(!ok("1700000001", body, &signature, SECRET, 1_700_000_000));
        assert!(!ok("1700000000", body, &signature, "other", 1_700_000_000));
        assert!(!ok("1700000000", body, &signature, SECRET, 1_700_000_301));
        assert!(!ok("soon", body, &signature, SECRET, 1_700_000_000));
        assert!(!ok("1700000000", body, "v1=zz", SECRET, 1_700_000_000));
        assert!(!ok(
            "1700000000",
            body,
            &signature[3..],
            SECRET,
            1_700_000_000
        ));
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let body = b"{}";
        let old = sign("old", 1_700_000_000, body);
        let new = sign(SECRET, 1_700_000_000, body);
        let header = format!("{old}, {new}");
        assert!(verify(
            SECRET,
            "1700000000",
            body,
            &header,
            1_700_000_000,
            TOLERANCE
        ));
    }

    #[test]
    fn describe_hides_the_query() {
        let channel = WebhookChannel {
            client: reqwest::Client::new(),
            url: parse_url("https://user:pw@ats.example.com/hook?token=abc").unwrap(),
            secret: Secret::new("hunter2"),
        };
        assert_eq!(channel.describe(), "http https://user@ats.example.com/hook");
        let debug = format!("{channel:?}");
        for hidden in ["hunter2", "token=abc", "pw"] {
            assert!(!debug.contains(hidden), "{debug}");
        }
    }
}
