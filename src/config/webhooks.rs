//! The `[webhooks]` table: how the public server knows that a signal from
//! the interview platform or an email provider is genuine (the names of
//! the environment variables holding the shared secrets, never a secret
//! itself), how fresh a signed request must be, and the reply to an SMS
//! `HELP`. Twilio's requests are checked with the auth token the Twilio
//! channel already reads (`[channels.sms]` or `[channels.whatsapp]`).

use serde::{Deserialize, Serialize};

use crate::channels::secret::is_env_name;
use crate::channels::SettingProblem;

/// The `[webhooks]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// The name of the environment variable holding the secret the
    /// interview platform signs `POST /v1/webhooks/interview` with, as
    /// nudge's webhook channel signs (`X-Nudge-Timestamp`,
    /// `X-Nudge-Signature: v1=<hex HMAC-SHA256>`) (default: none, and the
    /// route refuses every request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interview_secret_env: Option<String>,
    /// How far a signed request's timestamp may be from now, either way,
    /// in seconds, from 10 to 3600 (default 300). An older request is
    /// refused, so a captured one cannot be replayed later.
    #[serde(default = "default_tolerance_secs")]
    pub tolerance_secs: u64,
    /// The text sent back when a candidate texts `HELP` (default: who is
    /// writing and how to stop).
    #[serde(default = "default_sms_help")]
    pub sms_help: String,
    /// The name of the environment variable holding the password of the
    /// basic auth Postmark's webhook URL carries (any user name), or the
    /// `token` in its query (default: none, and the route refuses every
    /// request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postmark_secret_env: Option<String>,
    /// As `postmark_secret_env`, for SendGrid's event webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sendgrid_secret_env: Option<String>,
    /// The verification key SendGrid shows for its signed event webhook
    /// (base64, `MFkw…`; a public key, so it may be written here): each
    /// post must then carry a valid ECDSA signature of its timestamp and
    /// body (default: none, and `sendgrid_secret_env` alone authenticates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sendgrid_verification_key: Option<String>,
}

/// The bounds of [`WebhooksConfig::tolerance_secs`].
pub const TOLERANCE_SECS: std::ops::RangeInclusive<u64> = 10..=3600;

fn default_tolerance_secs() -> u64 {
    300
}

fn default_sms_help() -> String {
    "These messages are about your job application. Reply STOP to stop them, \
     START to get them again."
        .to_string()
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            interview_secret_env: None,
            tolerance_secs: default_tolerance_secs(),
            sms_help: default_sms_help(),
            postmark_secret_env: None,
            sendgrid_secret_env: None,
            sendgrid_verification_key: None,
        }
    }
}

impl WebhooksConfig {
    /// Every value that cannot work, each at its key under `[webhooks]`.
    pub fn problems(&self) -> Vec<SettingProblem> {
        let mut problems = Vec::new();
        let envs = [
            ("interview_secret_env", &self.interview_secret_env),
            ("postmark_secret_env", &self.postmark_secret_env),
            ("sendgrid_secret_env", &self.sendgrid_secret_env),
        ];
        for (key, value) in envs {
            if let Some(name) = value {
                if !is_env_name(name) {
                    problems.push(SettingProblem::new(
                        &[key],
                        format!("`webhooks.{key}` is `{name}`, not an environment variable name"),
                        "not a variable name",
                        "name the variable holding the secret, such as \"NUDGE_HOOK_SECRET\"; \
                         the secret itself never goes in this file",
                    ));
                }
            }
        }
        if !TOLERANCE_SECS.contains(&self.tolerance_secs) {
            problems.push(SettingProblem::new(
                &["tolerance_secs"],
                format!("`webhooks.tolerance_secs` is {}", self.tolerance_secs),
                "must be from 10 to 3600",
                "300 (five minutes) allows for clocks a little apart",
            ));
        }
        if let Some(key) = &self.sendgrid_verification_key {
            if let Err(why) = verification_key(key) {
                problems.push(SettingProblem::new(
                    &["sendgrid_verification_key"],
                    format!("`webhooks.sendgrid_verification_key` {why}"),
                    "not a verification key",
                    "copy the key SendGrid shows for its signed event webhook (base64, `MFkw…`)",
                ));
            }
        }
        if self.sms_help.trim().is_empty() {
            problems.push(SettingProblem::new(
                &["sms_help"],
                "`webhooks.sms_help` is empty".to_string(),
                "a candidate who texts HELP gets this",
                "say who is texting and how to stop, such as \"Acme Jobs: about your \
                 application. Reply STOP to stop.\"",
            ));
        }
        problems
    }
}

/// SendGrid's verification key (base64 of a DER P-256 public key), or
/// why it is not one ("is not base64 (…)").
pub fn verification_key(text: &str) -> Result<p256::ecdsa::VerifyingKey, String> {
    use base64::Engine;
    use p256::pkcs8::DecodePublicKey;
    let der = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("is not base64 ({e})"))?;
    p256::ecdsa::VerifyingKey::from_public_key_der(&der)
        .map_err(|e| format!("is not a P-256 public key ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_work_and_bad_values_are_named() {
        assert!(WebhooksConfig::default().problems().is_empty());
        let bad = WebhooksConfig {
            interview_secret_env: Some("my secret".into()),
            tolerance_secs: 5,
            sms_help: " ".into(),
            postmark_secret_env: Some("POSTMARK_HOOK".into()),
            sendgrid_secret_env: None,
            sendgrid_verification_key: Some("MFkwEwYHKoZIzj0CAQ==".into()),
        };
        let keys: Vec<_> = bad
            .problems()
            .into_iter()
            .map(|p| p.key.join("."))
            .collect();
        assert_eq!(
            keys,
            [
                "interview_secret_env",
                "tolerance_secs",
                "sendgrid_verification_key",
                "sms_help"
            ]
        );
    }
}
