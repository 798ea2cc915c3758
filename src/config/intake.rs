//! The `[ats.SOURCE]` tables: where applications from an ATS or a job
//! board come in (`POST /v1/webhooks/ats/SOURCE` on the public server),
//! how their signature is checked, and which JSON pointer of the payload
//! holds which candidate field.
//!
//! A source named `greenhouse`, `lever` or `indeed` starts from nudge's
//! ready-made mapping of that provider's documented payload
//! ([`crate::intake::mapping::ready_made`]); such a table needs only
//! `secret_env`, and any other key it gives replaces the ready-made one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One `[ats.SOURCE]` table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AtsSource {
    /// The environment variable holding the shared secret the source signs
    /// with (Greenhouse's secret key, Lever's signature token, Indeed's API
    /// secret, or the token an automation sends). Required: an unsigned
    /// source would let anyone create candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// How the request is signed (default: the provider's own scheme for
    /// `greenhouse`, `lever` and `indeed`; else `hmac-sha256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureScheme>,
    /// The header holding the signature or token for `hmac-sha256`
    /// (default `X-Signature`) and `token` (default `Authorization`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_header: Option<String>,
    /// Candidate field → JSON pointer into the payload
    /// (`email = "/candidate/email"`), or a list of pointers whose values
    /// are joined with a space (`name = ["/first_name", "/last_name"]`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, Pointers>,
    /// The pointer to the person's id in the source; stored as the
    /// candidate's external id, `SOURCE:ID`, so two sources' ids never
    /// meet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<Pointers>,
    /// The pointer to the application's id: the same application posted
    /// again (a retry) changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<Pointers>,
    /// The pointer to the payload's event name, and `events` the names that
    /// are applications; any other event is answered 200 and ignored (a
    /// test ping, a stage change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The event names that are applications (with `event`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// `applied` (default): every campaign whose `enroll on applied where
    /// ...` holds; or the name of one campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// For a source whose webhook names the application only (Lever): the
    /// environment variable holding the API key to fetch it with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// The API's base address for `api_key_env` (default Lever's,
    /// `https://api.lever.co/v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

/// JSON pointers to one field: one, or several joined with a space.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Pointers {
    One(String),
    Joined(Vec<String>),
}

impl Pointers {
    /// Each pointer, in order.
    pub fn each(&self) -> &[String] {
        match self {
            Pointers::One(p) => std::slice::from_ref(p),
            Pointers::Joined(ps) => ps,
        }
    }
}

/// How a source proves a request is its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureScheme {
    /// Greenhouse: `Signature: sha256 HEX`, HMAC-SHA256 of the body.
    Greenhouse,
    /// Lever: `signature` in the body, HMAC-SHA256 (hex) of the body's
    /// `token` followed by its `triggeredAt`.
    Lever,
    /// Indeed Apply: `X-Indeed-Signature`, HMAC-SHA1 of the body, base64.
    Indeed,
    /// HMAC-SHA256 of the body in `signature_header`, hex or base64, with
    /// or without a `sha256=` prefix.
    HmacSha256,
    /// The secret itself in `signature_header` (`Bearer SECRET` or
    /// `SECRET`): for automations that can set a header but not sign.
    Token,
}

impl SignatureScheme {
    pub fn name(self) -> &'static str {
        match self {
            SignatureScheme::Greenhouse => "greenhouse",
            SignatureScheme::Lever => "lever",
            SignatureScheme::Indeed => "indeed",
            SignatureScheme::HmacSha256 => "hmac-sha256",
            SignatureScheme::Token => "token",
        }
    }
}

/// Why an `[ats.SOURCE]` table cannot work, if it cannot: checked by
/// `nudge check` and at start.
pub fn source_problem(name: &str, source: &AtsSource) -> Option<(&'static str, String)> {
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_name {
        return Some((
            "",
            format!("`{name}` cannot be a path segment: use letters, digits, `-` and `_`"),
        ));
    }
    if source.secret_env.as_deref().is_none_or(str::is_empty) {
        return Some((
            "secret_env",
            "`secret_env` is required: the environment variable holding the secret the source signs with".into(),
        ));
    }
    let resolved = crate::intake::mapping::Mapping::of(name, source);
    for (field, pointers) in resolved
        .fields
        .iter()
        .map(|(f, p)| (f.as_str(), p))
        .chain(resolved.external_id.iter().map(|p| ("external_id", p)))
        .chain(
            resolved
                .application_id
                .iter()
                .map(|p| ("application_id", p)),
        )
    {
        if let Some(bad) = pointers.each().iter().find(|p| !p.starts_with('/')) {
            return Some((
                "fields",
                format!("`{field}`: `{bad}` is not a JSON pointer, which starts with `/` (such as `/candidate/email`)"),
            ));
        }
    }
    if !resolved.has_contact() {
        return Some((
            "fields",
            "`fields` maps neither `email` nor `phone`: nudge could not reach the applicants"
                .into(),
        ));
    }
    None
}
