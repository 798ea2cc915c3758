//! SMS and WhatsApp through Twilio's Messages API, or any provider that
//! speaks it (`base_url`): one form POST per message to
//! `/2010-04-01/Accounts/{sid}/Messages.json` with basic auth (account SID,
//! auth token).
//!
//! The form carries `To` (E.164; `whatsapp:+…` on WhatsApp), `From` and/or
//! `MessagingServiceSid`, `Body`, and `StatusCallback` when configured. The
//! callback URL gets `key=<message key>` added to its query, so that a
//! delivery status, when the inbound server records it, finds its message
//! without an index of provider ids; [`callback_status`] says which
//! statuses become `delivered` and `failed` events.
//!
//! Failures are classified by Twilio's error code where it has a meaning
//! nudge acts on (an invalid or unsubscribed recipient is permanent
//! whatever the HTTP status; a rate-limit code is throttling), and
//! otherwise by the HTTP status (see [`super::http`]).
//!
//! The Messages API takes no idempotency key, so this backend is not
//! idempotent: a send whose response was lost (a timeout after Twilio
//! accepted it) may go out twice when retried; the runtime knows, through
//! [`super::Backend::idempotent`].

use std::time::{Duration, SystemTime};

use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

use super::http;
use super::phone;
use super::secret::{is_env_name, Secret};
use super::{Delivered, Message, PlainHttp, SendError, SettingProblem};

/// The settings of `transport = "twilio"`, for `[channels.sms]` and
/// `[channels.whatsapp]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// The API's base URL; a compatible provider or a test server can stand
    /// in (default `https://api.twilio.com`).
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The account SID (`AC…`): the user name of basic auth, and part of
    /// every request path.
    pub account_sid: String,
    /// The name of the environment variable holding the auth token (the
    /// password of basic auth), such as `TWILIO_AUTH_TOKEN`.
    pub auth_token_env: String,
    /// The sender: a phone number (put in E.164 form), or for SMS an
    /// alphanumeric sender ID of up to 11 characters; for WhatsApp the
    /// approved WhatsApp number. `from`, `messaging_service_sid` or both
    /// (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// A Messaging Service SID (`MG…`), which picks the sender from its
    /// pool; with `from` too, Twilio sends from `from` (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_service_sid: Option<String>,
    /// A URL Twilio posts each message's delivery status to; nudge adds
    /// `key=<message key>` to its query (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_callback: Option<String>,
    /// Seconds before a request gives up (and the send is retried), from
    /// 1 to 300 (default 10).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// `"allowed"` lets `base_url` and `status_callback` be plain
    /// `http://` to another machine, sending the auth token and the
    /// candidates' numbers and messages in clear (default `"refused"`:
    /// https, or http to this machine only).
    #[serde(default, skip_serializing_if = "PlainHttp::is_refused")]
    pub plain_http: PlainHttp,
}

fn default_base_url() -> String {
    "https://api.twilio.com".to_string()
}

fn default_timeout_secs() -> u64 {
    10
}

impl TwilioConfig {
    /// Every setting that cannot work, for `nudge check` (which points at
    /// each) and [`TwilioChannel::new`]. `table` is the channel's table as
    /// written in messages (`channels.sms`).
    pub fn validate(&self, table: &str, whatsapp: bool) -> Vec<SettingProblem> {
        let mut problems = Vec::new();
        match parse_base(&self.base_url) {
            Ok(url) => problems.extend(http::plain_http_problem(
                table,
                "base_url",
                &url,
                self.plain_http,
                "the auth token and the messages",
            )),
            Err(why) => problems.push(SettingProblem::new(
                &["base_url"],
                format!("`{table}.base_url` {why}"),
                "not an http(s) URL",
                "leave it out for \"https://api.twilio.com\"",
            )),
        }
        let sid_ok = !self.account_sid.is_empty()
            && self.account_sid.bytes().all(|b| b.is_ascii_alphanumeric());
        if !sid_ok {
            problems.push(SettingProblem::new(
                &["account_sid"],
                format!("`{table}.account_sid` is not an account SID"),
                "letters and digits only",
                "copy the Account SID (\"AC…\") from the Twilio console",
            ));
        }
        if !is_env_name(&self.auth_token_env) {
            problems.push(SettingProblem::new(
                &["auth_token_env"],
                format!("`{table}.auth_token_env` is not an environment variable name"),
                "not a variable name",
                "name the variable holding the token, such as \"TWILIO_AUTH_TOKEN\"; \
                 the token itself never goes in this file",
            ));
        }
        match &self.from {
            Some(from) => {
                if let Err(why) = sender(from, whatsapp) {
                    problems.push(SettingProblem::new(
                        &["from"],
                        format!("`{table}.from` {why}"),
                        "not a sender",
                        if whatsapp {
                            "give the WhatsApp number in E.164 form, such as \"+14155238886\""
                        } else {
                            "give a number in E.164 form, such as \"+14155238886\", \
                             or a sender ID such as \"AcmeJobs\""
                        },
                    ));
                }
            }
            None if self.messaging_service_sid.is_none() => {
                problems.push(SettingProblem::new(
                    &[],
                    format!("`{table}` needs `from` or `messaging_service_sid`"),
                    "no sender",
                    "set `from` to your Twilio number, or `messaging_service_sid` to a \
                     Messaging Service (\"MG…\")",
                ));
            }
            None => {}
        }
        if let Some(mss) = &self.messaging_service_sid {
            if mss.is_empty() || !mss.bytes().all(|b| b.is_ascii_alphanumeric()) {
                problems.push(SettingProblem::new(
                    &["messaging_service_sid"],
                    format!("`{table}.messaging_service_sid` is not a service SID"),
                    "letters and digits only",
                    "copy the Messaging Service SID (\"MG…\") from the Twilio console",
                ));
            }
        }
        if let Some(callback) = &self.status_callback {
            match parse_base(callback) {
                Ok(url) => problems.extend(http::plain_http_problem(
                    table,
                    "status_callback",
                    &url,
                    self.plain_http,
                    "the candidates' numbers and delivery statuses",
                )),
                Err(why) => problems.push(SettingProblem::new(
                    &["status_callback"],
                    format!("`{table}.status_callback` {why}"),
                    "not an http(s) URL",
                    "give the public URL of nudge's status endpoint, or leave it out",
                )),
            }
        }
        problems.extend(http::timeout_problem(
            table,
            self.timeout_secs,
            default_timeout_secs(),
        ));
        problems
    }
}

/// `text` as an absolute http(s) URL that paths can be added to.
fn parse_base(text: &str) -> Result<Url, String> {
    http::parse_url(text, true)
}

/// The `From` value for a configured sender: a number in E.164 form
/// (`whatsapp:` in front on WhatsApp), or an alphanumeric sender ID (SMS
/// only: 1 to 11 letters, digits and spaces, at least one letter).
fn sender(from: &str, whatsapp: bool) -> Result<String, String> {
    let bare = from.strip_prefix("whatsapp:").unwrap_or(from);
    match phone::to_e164(bare, "") {
        Ok(number) if whatsapp => Ok(format!("whatsapp:{number}")),
        Ok(number) => Ok(number),
        Err(e) if whatsapp => Err(format!("is not a WhatsApp number: {e}")),
        Err(e) => {
            let id = from.trim();
            let sender_id = (1..=11).contains(&id.chars().count())
                && id.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ')
                && id.chars().any(|c| c.is_ascii_alphabetic());
            if sender_id {
                Ok(id.to_string())
            } else {
                Err(format!(
                    "is neither a phone number nor a sender ID (up to 11 letters and digits): {e}"
                ))
            }
        }
    }
}

/// `base` with `segments` added to its path (each percent-encoded).
fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// Sends SMS or WhatsApp messages through the Messages API.
#[derive(Debug)]
pub struct TwilioChannel {
    client: reqwest::Client,
    whatsapp: bool,
    base_url: Url,
    messages_url: Url,
    account_url: Url,
    account_sid: String,
    auth_token: Secret,
    /// The `From` value, `whatsapp:` prefix included.
    from: Option<String>,
    messaging_service_sid: Option<String>,
    status_callback: Option<Url>,
}

/// The part of a created message nudge keeps.
#[derive(Deserialize)]
struct Created {
    sid: String,
}

/// Twilio's error body: `{"code": 21211, "message": "…", "more_info": "…",
/// "status": 400}`.
#[derive(Deserialize)]
struct ApiError {
    code: Option<u32>,
    message: Option<String>,
}

/// The account, for [`TwilioChannel::check`].
#[derive(Deserialize)]
struct Account {
    friendly_name: Option<String>,
    status: Option<String>,
}

/// What a Twilio error code tells nudge to do, whatever the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodeMeans {
    /// The message can never go to this recipient on this channel.
    Permanent,
    /// Slow down: treated like HTTP 429.
    Throttled,
    /// The recipient opted out with the provider (replied STOP).
    Unsubscribed,
}

/// The error codes nudge acts on, with their meaning in words
/// (<https://www.twilio.com/docs/api/errors>). Codes not listed are
/// classified by HTTP status.
const CODES: &[(u32, CodeMeans, &str)] = &[
    (21211, CodeMeans::Permanent, "the `To` number is not valid"),
    (
        21214,
        CodeMeans::Permanent,
        "the `To` number cannot be reached",
    ),
    (
        21217,
        CodeMeans::Permanent,
        "the `To` number is not a phone number",
    ),
    (
        21408,
        CodeMeans::Permanent,
        "the account may not send to this region",
    ),
    (
        21608,
        CodeMeans::Permanent,
        "a trial account sends to verified numbers only",
    ),
    (
        21610,
        CodeMeans::Unsubscribed,
        "the recipient unsubscribed (replied STOP)",
    ),
    (
        21612,
        CodeMeans::Permanent,
        "the `To` number cannot be reached from this sender",
    ),
    (
        21614,
        CodeMeans::Permanent,
        "the `To` number is not a mobile number",
    ),
    (21635, CodeMeans::Permanent, "the `To` number is a landline"),
    (
        63003,
        CodeMeans::Permanent,
        "the `To` address is not on the channel",
    ),
    (
        63014,
        CodeMeans::Permanent,
        "the recipient blocked this sender",
    ),
    (
        63016,
        CodeMeans::Permanent,
        "outside WhatsApp's 24-hour window, which needs an approved template",
    ),
    (
        63024,
        CodeMeans::Permanent,
        "the recipient is not a valid WhatsApp user",
    ),
    (20429, CodeMeans::Throttled, "too many requests"),
    (
        63018,
        CodeMeans::Throttled,
        "the channel's rate limit was exceeded",
    ),
];

fn code_meaning(code: u32) -> Option<(CodeMeans, &'static str)> {
    CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, means, words)| (*means, *words))
}

/// The failure a non-success response stands for.
fn failure(status: StatusCode, retry_after: Option<Duration>, body: &str) -> SendError {
    let error = serde_json::from_str::<ApiError>(body).ok();
    let code = error.as_ref().and_then(|e| e.code);
    let meaning = code.and_then(code_meaning);
    let mut why = format!("HTTP {}", status.as_u16());
    if let Some(code) = code {
        why.push_str(&format!(", Twilio error {code}"));
    }
    if let Some((_, words)) = meaning {
        why.push_str(&format!(": {words}"));
    }
    match error.and_then(|e| e.message) {
        Some(message) => why.push_str(&format!(" ({})", http::excerpt(&message))),
        None if !body.trim().is_empty() => why.push_str(&format!(" ({})", http::excerpt(body))),
        None => {}
    }
    match meaning {
        Some((CodeMeans::Permanent, _)) => SendError::Permanent(why),
        Some((CodeMeans::Unsubscribed, _)) => SendError::Unsubscribed(why),
        Some((CodeMeans::Throttled, _)) => {
            http::status_failure(StatusCode::TOO_MANY_REQUESTS, retry_after, why)
        }
        None => http::status_failure(status, retry_after, why),
    }
}

/// What a delivery-status callback's `MessageStatus` means for the
/// candidate's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackStatus {
    /// `delivered` or `read`: recorded as a `delivered` event.
    Delivered,
    /// `failed` or `undelivered`: recorded as a `failed` event.
    Failed,
}

/// The event a `MessageStatus` value stands for; `None` for the statuses
/// on the way (`queued`, `sending`, `sent`, …), which record nothing.
pub fn callback_status(message_status: &str) -> Option<CallbackStatus> {
    match message_status {
        "delivered" | "read" => Some(CallbackStatus::Delivered),
        "failed" | "undelivered" => Some(CallbackStatus::Failed),
        _ => None,
    }
}

impl TwilioChannel {
    /// The channel for `cfg`, for WhatsApp when `whatsapp`. Reads the auth
    /// token from the environment; errors name the setting or the
    /// variable, never the token.
    pub fn new(cfg: &TwilioConfig, whatsapp: bool) -> Result<TwilioChannel, String> {
        let table = if whatsapp {
            "channels.whatsapp"
        } else {
            "channels.sms"
        };
        if let Some(problem) = cfg.validate(table, whatsapp).into_iter().next() {
            return Err(problem.message);
        }
        let auth_token = Secret::from_env(&cfg.auth_token_env)?;
        let base_url = parse_base(&cfg.base_url)?;
        let account = format!("{}.json", cfg.account_sid);
        let messages_url = join(
            &base_url,
            &["2010-04-01", "Accounts", &cfg.account_sid, "Messages.json"],
        );
        let account_url = join(&base_url, &["2010-04-01", "Accounts", &account]);
        Ok(TwilioChannel {
            client: http::client(Duration::from_secs(
                http::TIMEOUT_SECS.clamp(cfg.timeout_secs),
            ))?,
            whatsapp,
            base_url,
            messages_url,
            account_url,
            account_sid: cfg.account_sid.clone(),
            auth_token,
            from: cfg
                .from
                .as_deref()
                .map(|from| sender(from, whatsapp))
                .transpose()?,
            messaging_service_sid: cfg.messaging_service_sid.clone(),
            status_callback: cfg.status_callback.as_deref().map(parse_base).transpose()?,
        })
    }

    /// The form fields for `msg`, whose number is `to` (E.164).
    fn form(&self, msg: &Message, to: &str) -> Vec<(&'static str, String)> {
        let mut form = Vec::with_capacity(5);
        form.push((
            "To",
            if self.whatsapp {
                format!("whatsapp:{to}")
            } else {
                to.to_string()
            },
        ));
        if let Some(from) = &self.from {
            form.push(("From", from.clone()));
        }
        if let Some(mss) = &self.messaging_service_sid {
            form.push(("MessagingServiceSid", mss.clone()));
        }
        form.push(("Body", msg.body.clone()));
        if let Some(callback) = &self.status_callback {
            let mut url = callback.clone();
            url.query_pairs_mut().append_pair("key", &msg.key);
            form.push(("StatusCallback", url.into()));
        }
        form
    }

    /// Sends one message; the provider id is the message SID Twilio
    /// returns. A number that is not in E.164 form (nor can be made so
    /// without a country code) is a permanent failure naming the candidate
    /// and the value.
    pub async fn deliver(&self, msg: &Message) -> Result<Delivered, SendError> {
        let to = phone::to_e164(&msg.to, "")
            .map_err(|e| SendError::Permanent(format!("candidate `{}`: {e}", msg.candidate)))?;
        let response = self
            .client
            .post(self.messages_url.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .form(&self.form(msg, &to))
            .send()
            .await
            .map_err(http::transport_failure)?;
        let status = response.status();
        let retry_after = http::retry_after(response.headers(), SystemTime::now());
        let body = response.text().await;
        if !status.is_success() {
            return Err(failure(status, retry_after, &body.unwrap_or_default()));
        }
        // Twilio accepted the message: whatever the body says now, sending
        // again would send twice.
        let provider_id = body
            .ok()
            .and_then(|b| serde_json::from_str::<Created>(&b).ok())
            .map(|created| created.sid);
        if provider_id.is_none() {
            tracing::warn!(
                key = %msg.key,
                "twilio accepted a message but returned no message sid"
            );
        }
        Ok(Delivered {
            duplicate: false,
            provider_id,
        })
    }

    /// Whether the account answers to these credentials: an authenticated
    /// GET of `/2010-04-01/Accounts/{sid}.json`, for
    /// `nudge check --channels`. A line saying so, or why not.
    pub async fn check(&self) -> Result<String, String> {
        let response = self
            .client
            .get(self.account_url.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .send()
            .await
            .map_err(|e| http::transport_failure(e).to_string())?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(failure(status, None, &body).to_string());
        }
        let account = serde_json::from_str::<Account>(&body).map_err(|e| {
            format!(
                "account {} answered, but not with an account: {e}",
                self.account_sid
            )
        })?;
        let name = account.friendly_name.unwrap_or_default();
        match account.status.as_deref() {
            Some("active") | None => Ok(format!(
                "account {} ({name}) is active at {}",
                self.account_sid, self.base_url
            )),
            Some(other) => Err(format!(
                "account {} ({name}) is {other}, not active",
                self.account_sid
            )),
        }
    }

    /// `twilio https://api.twilio.com account AC… from +1…`, for
    /// `nudge run`'s startup lines.
    pub fn describe(&self) -> String {
        let mut text = format!("twilio {} account {}", self.base_url, self.account_sid);
        if let Some(from) = &self.from {
            text.push_str(&format!(" from {from}"));
        }
        if let Some(mss) = &self.messaging_service_sid {
            text.push_str(&format!(" via service {mss}"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TwilioConfig {
        TwilioConfig {
            base_url: default_base_url(),
            account_sid: "AC0123".into(),
            auth_token_env: "TWILIO_AUTH_TOKEN".into(),
            from: Some("+1 415 523 8886".into()),
            messaging_service_sid: None,
            status_callback: None,
            timeout_secs: 10,
            plain_http: PlainHttp::Refused,
        }
    }

    #[test]
    fn senders() {
        assert_eq!(sender("+1 415 523 8886", false).unwrap(), "+14155238886");
        assert_eq!(
            sender("+1 415 523 8886", true).unwrap(),
            "whatsapp:+14155238886"
        );
        assert_eq!(
            sender("whatsapp:+14155238886", true).unwrap(),
            "whatsapp:+14155238886"
        );
        assert_eq!(sender("AcmeJobs", false).unwrap(), "AcmeJobs");
        assert!(sender("AcmeJobs", true).is_err());
        assert!(sender("Acme Logistics Jobs", false).is_err());
        assert!(sender("4155238886", false).is_err());
    }

    #[test]
    fn a_good_config_has_no_problems() {
        assert_eq!(config().validate("channels.sms", false), vec![]);
    }

    #[test]
    fn every_problem_at_once() {
        let cfg = TwilioConfig {
            base_url: "ftp://example.com".into(),
            account_sid: "AC/../x".into(),
            auth_token_env: "my token".into(),
            from: None,
            messaging_service_sid: None,
            status_callback: Some("not a url".into()),
            timeout_secs: 0,
            plain_http: PlainHttp::Refused,
        };
        let keys: Vec<_> = cfg
            .validate("channels.sms", false)
            .into_iter()
            .map(|p| p.key.join("."))
            .collect();
        assert_eq!(
            keys,
            [
                "base_url",
                "account_sid",
                "auth_token_env",
                "",
                "status_callback",
                "timeout_secs",
            ]
        );
    }

    #[test]
    fn plain_http_to_another_host_only_when_allowed_in_words() {
        let keys = |cfg: &TwilioConfig| -> Vec<String> {
            cfg.validate("channels.sms", false)
                .into_iter()
                .map(|p| p.key.join("."))
                .collect()
        };
        let mut cfg = config();
        cfg.base_url = "http://sms.example.com".into();
        cfg.status_callback = Some("http://hooks.example.com/status".into());
        assert_eq!(keys(&cfg), ["base_url", "status_callback"]);
        cfg.plain_http = PlainHttp::Allowed;
        assert!(keys(&cfg).is_empty());
        let mut local = config();
        local.base_url = "http://127.0.0.1:9".into();
        assert!(keys(&local).is_empty());
    }

    #[test]
    fn paths_are_added_to_the_base() {
        let base = parse_base("http://127.0.0.1:9/prefix/").unwrap();
        assert_eq!(
            join(&base, &["2010-04-01", "Accounts", "AC1", "Messages.json"]).as_str(),
            "http://127.0.0.1:9/prefix/2010-04-01/Accounts/AC1/Messages.json"
        );
        let base = parse_base("https://api.twilio.com").unwrap();
        assert_eq!(
            join(&base, &["2010-04-01", "Accounts", "AC1.json"]).as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC1.json"
        );
    }

    #[test]
    fn error_codes_beat_statuses() {
        let body = |code: u32| format!(r#"{{"code": {code}, "message": "m", "status": 400}}"#);
        let unsubscribed = failure(StatusCode::BAD_REQUEST, None, &body(21610));
        assert_eq!(
            unsubscribed,
            SendError::Unsubscribed(
                "HTTP 400, Twilio error 21610: the recipient unsubscribed (replied STOP) (m)"
                    .into()
            )
        );
        assert!(matches!(
            failure(StatusCode::SERVICE_UNAVAILABLE, None, &body(63024)),
            SendError::Permanent(_)
        ));
        assert!(matches!(
            failure(StatusCode::BAD_REQUEST, Some(Duration::from_secs(3)), &body(63018)),
            SendError::Throttled { retry_after, .. } if retry_after == Duration::from_secs(3)
        ));
        assert!(matches!(
            failure(StatusCode::INTERNAL_SERVER_ERROR, None, "oops"),
            SendError::Retryable(why) if why == "HTTP 500 (oops)"
        ));
        assert!(matches!(
            failure(StatusCode::UNAUTHORIZED, None, &body(20003)),
            SendError::Permanent(_)
        ));
    }

    #[test]
    fn callback_statuses() {
        assert_eq!(
            callback_status("delivered"),
            Some(CallbackStatus::Delivered)
        );
        assert_eq!(callback_status("read"), Some(CallbackStatus::Delivered));
        assert_eq!(callback_status("undelivered"), Some(CallbackStatus::Failed));
        assert_eq!(callback_status("failed"), Some(CallbackStatus::Failed));
        assert_eq!(callback_status("sent"), None);
        assert_eq!(callback_status("queued"), None);
    }
}
