//! `POST /v1/webhooks/email/{provider}`: what an email provider learned
//! after it accepted a message, for `postmark` and `sendgrid`.
//!
//! Both are authenticated by a shared secret (the variable
//! `[webhooks] postmark_secret_env` or `sendgrid_secret_env` names) given
//! as the password of basic auth in the webhook URL
//! (`https://nudge:SECRET@jobs.example.com/v1/webhooks/email/postmark`),
//! or as its `?token=SECRET`; a request without it is refused (401) and
//! nothing of it stored. SendGrid's signed event webhook is checked too
//! when `[webhooks] sendgrid_verification_key` is set: an ECDSA (P-256,
//! SHA-256) signature, base64 in `X-Twilio-Email-Event-Webhook-Signature`,
//! of `X-Twilio-Email-Event-Webhook-Timestamp` followed by the body, the
//! timestamp within `tolerance_secs` of now. Every means configured must
//! pass; either alone is enough when only one is.
//!
//! Each provider's events map onto nudge's:
//!
//! | provider says | event | suppression list |
//! |---|---|---|
//! | delivered (Postmark `Delivery`, SendGrid `delivered`) | `delivered` | |
//! | opened (Postmark `Open`, SendGrid `open`) | `opened` | |
//! | hard bounce (Postmark `Bounce` of type `HardBounce` or `BadEmailAddress`, SendGrid `bounce` but `blocked`) | `bounced` | `bounced` |
//! | soft bounce (any other Postmark `Bounce`, SendGrid `bounce` of type `blocked`) | `soft_bounced` | |
//! | dropped before sending (SendGrid `dropped`) | `failed` | |
//! | spam complaint (Postmark `SpamComplaint`, SendGrid `spamreport`) | `opted_out` | `complaint` |
//! | unsubscribed at the provider (SendGrid `unsubscribe`, `group_unsubscribe`) | `opted_out` | `opted_out` |
//!
//! Others are answered 200 and ignored. The candidate is the one whose
//! send the provider's metadata names (`nudge_key` in Postmark's
//! `Metadata`, or a SendGrid custom argument `nudge_key`) when present,
//! else every candidate with the recipient's address. The provider's
//! event id makes each idempotent; a batch is checked whole before any of
//! it is recorded.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};

use super::{refused, secret, unauthorized, Rejection};
use crate::runtime::api::{EventRequest, SuppressRequest};
use crate::runtime::refusal::Refusal;
use crate::server::public::respond::JsonError;
use crate::server::public::PublicState;
use crate::store::{Contact, SuppressionReason};

/// One provider event, read and checked, not yet recorded.
#[derive(Debug, Clone, PartialEq)]
struct Signal {
    /// nudge's event, or why nudge ignores this one.
    event: Result<&'static str, String>,
    /// The recipient's address.
    address: String,
    /// The send's key, when the provider carried nudge's metadata.
    key: Option<String>,
    /// The provider's id of this event.
    id: String,
    suppress: Option<SuppressionReason>,
    fields: BTreeMap<String, String>,
}

#[utoipa::path(
    post,
    path = "/v1/webhooks/email/{provider}",
    operation_id = "email_events",
    tag = "webhooks",
    security(("email_basic" = []), ("email_token" = [])),
    params(("provider" = String, Path, description = "`postmark` or `sendgrid`")),
    request_body(content = Object, description = "the provider's event webhook as it posts it: Postmark one event (an object), SendGrid a batch (an array). SendGrid's is also checked against `X-Twilio-Email-Event-Webhook-Signature` (ECDSA P-256 over `X-Twilio-Email-Event-Webhook-Timestamp` and the body) when `[webhooks] sendgrid_verification_key` is set", content_type = "application/json"),
    responses(
        (status = 200, description = "`{\"events\": [...]}`: each event's id and what became of it (the event recorded, for which candidates; suppressed; or ignored, and why)", body = Object),
        (status = 400, description = "the body is not the provider's event; `field` names where", body = JsonError),
        (status = 401, description = "the shared secret (or SendGrid's signature) is missing or wrong; nothing is stored", body = JsonError),
        (status = 404, description = "no such provider", body = JsonError),
        (status = 413, description = "the body is over the size limit", body = JsonError),
        (status = 503, description = "the webhook is not set up, or the store cannot be written now", body = JsonError)
    )
)]
pub(super) async fn receive(
    State(state): State<PublicState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, Rejection> {
    authenticate(&state, &provider, &headers, &uri, &body)?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        Rejection::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
            None,
        )
    })?;
    let signals = match provider.as_str() {
        "postmark" => postmark(&value).map(|s| vec![s]),
        _ => sendgrid(&value),
    }
    .map_err(|(why, field)| {
        let field = (!field.is_empty()).then_some(field.as_str());
        Rejection::new(StatusCode::BAD_REQUEST, why, field)
    })?;
    let mut outcomes = Vec::new();
    for signal in signals {
        outcomes.push(record(&state, &provider, signal).await?);
    }
    Ok((StatusCode::OK, Json(json!({ "events": outcomes }))).into_response())
}

/// The header carrying SendGrid's signature (base64 of a DER ECDSA
/// signature).
pub const SENDGRID_SIGNATURE_HEADER: &str = "X-Twilio-Email-Event-Webhook-Signature";
/// The header carrying the time SendGrid signed at (Unix seconds).
pub const SENDGRID_TIMESTAMP_HEADER: &str = "X-Twilio-Email-Event-Webhook-Timestamp";

/// Checks every means of authentication configured for `provider` (the
/// shared secret; for SendGrid, its signature too): the error answer when
/// one fails, or when none is configured.
fn authenticate(
    state: &PublicState,
    provider: &str,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<(), Rejection> {
    let webhooks = &state.config.webhooks;
    let (env, setting, key) = match provider {
        "postmark" => (&webhooks.postmark_secret_env, "postmark_secret_env", None),
        "sendgrid" => (
            &webhooks.sendgrid_secret_env,
            "sendgrid_secret_env",
            webhooks.sendgrid_verification_key.as_deref(),
        ),
        other => {
            return Err(Rejection::new(
                StatusCode::NOT_FOUND,
                format!("no email provider `{other}`: nudge reads `postmark` and `sendgrid`"),
                Some("provider"),
            ))
        }
    };
    if let Some(key) = key {
        let key = crate::config::verification_key(key).map_err(|why| {
            Rejection::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("this webhook is not set up: `[webhooks] sendgrid_verification_key` {why}"),
                None,
            )
        })?;
        let tolerance = webhooks.tolerance_secs;
        if let Err(why) = sendgrid_signed(&key, headers, body, tolerance) {
            return Err(unauthorized(why, Some(SENDGRID_SIGNATURE_HEADER)));
        }
        if env.is_none() {
            return Ok(());
        }
    }
    let secret = secret(env.as_deref(), setting)?;
    if !authorized(secret.expose(), headers, uri) {
        return Err(unauthorized(
            "give the shared secret as the basic-auth password in the webhook URL, or as `?token=`",
            Some("authorization"),
        )
        .with_basic_challenge());
    }
    Ok(())
}

/// Whether SendGrid signed this post: an ECDSA (P-256, SHA-256) signature
/// under `key` of the timestamp header's text followed by the body, the
/// timestamp within `tolerance` seconds of now. Why not, if not.
fn sendgrid_signed(
    key: &p256::ecdsa::VerifyingKey,
    headers: &HeaderMap,
    body: &[u8],
    tolerance: u64,
) -> Result<(), String> {
    use p256::ecdsa::signature::Verifier;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .ok_or_else(|| format!("the `{name}` header is missing"))
    };
    let timestamp = header(SENDGRID_TIMESTAMP_HEADER)?;
    let signature = header(SENDGRID_SIGNATURE_HEADER)?;
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| format!("`{SENDGRID_TIMESTAMP_HEADER}` is not Unix seconds"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if now.abs_diff(sent) > tolerance {
        return Err(format!(
            "`{SENDGRID_TIMESTAMP_HEADER}` is more than {tolerance} seconds from now"
        ));
    }
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .ok()
        .and_then(|der| p256::ecdsa::Signature::from_der(&der).ok())
        .ok_or_else(|| format!("`{SENDGRID_SIGNATURE_HEADER}` is not a base64 ECDSA signature"))?;
    let mut signed = Vec::with_capacity(timestamp.len() + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(body);
    key.verify(&signed, &signature).map_err(|_| {
        format!(
            "`{SENDGRID_SIGNATURE_HEADER}` does not match the timestamp and body under \
             `[webhooks] sendgrid_verification_key`"
        )
    })
}

/// Whether the request carries `secret` as its basic-auth password or its
/// `token` query parameter (compared in constant time).
fn authorized(secret: &str, headers: &HeaderMap, uri: &Uri) -> bool {
    use subtle::ConstantTimeEq;
    let same = |given: &str| bool::from(given.as_bytes().ct_eq(secret.as_bytes()));
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| pair.split_once(':').map(|(_, pw)| same(pw)));
    let token = uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(name, _)| name == "token")
            .map(|(_, v)| same(&v))
    });
    basic == Some(true) || token == Some(true)
}

/// A bad payload: why, and the field.
type Bad = (String, String);

fn text(value: &Value, field: &str, at: &str) -> Result<String, Bad> {
    match value.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err((
            format!("`{at}{field}` is missing or not text"),
            format!("{at}{field}"),
        )),
    }
}

fn optional(value: &Value, field: &str) -> Option<String> {
    match value.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// One Postmark webhook post: a `Delivery`, `Bounce`, `SpamComplaint`,
/// `Open` (others ignored).
fn postmark(value: &Value) -> Result<Signal, Bad> {
    if !value.is_object() {
        return Err(("a Postmark event is a JSON object".into(), String::new()));
    }
    let record_type = text(value, "RecordType", "")?;
    let message_id = optional(value, "MessageID").unwrap_or_default();
    let key = value.get("Metadata").and_then(|m| optional(m, "nudge_key"));
    let mut fields = BTreeMap::from([("provider".to_string(), "postmark".to_string())]);
    if !message_id.is_empty() {
        fields.insert("message_id".into(), message_id.clone());
    }
    let (event, address, id, suppress) = match record_type.as_str() {
        "Delivery" => (
            Ok("delivered"),
            text(value, "Recipient", "")?,
            format!("Delivery:{}", text(value, "MessageID", "")?),
            None,
        ),
        "Open" => {
            let first = value.get("FirstOpen").and_then(Value::as_bool) == Some(true);
            let event = if first {
                Ok("opened")
            } else {
                Err("not the first open".to_string())
            };
            (
                event,
                text(value, "Recipient", "")?,
                format!("Open:{}", text(value, "MessageID", "")?),
                None,
            )
        }
        "Bounce" => {
            let kind = text(value, "Type", "")?;
            fields.insert("bounce_type".into(), kind.clone());
            if let Some(d) = optional(value, "Description") {
                fields.insert("reason".into(), d);
            }
            let (event, suppress) = match kind.as_str() {
                "HardBounce" | "BadEmailAddress" => {
                    (Ok("bounced"), Some(SuppressionReason::Bounced))
                }
                "SpamComplaint" | "SpamNotification" => {
                    (Ok("opted_out"), Some(SuppressionReason::Complaint))
                }
                _ => (Ok("soft_bounced"), None),
            };
            (
                event,
                text(value, "Email", "")?,
                format!("Bounce:{}", text(value, "ID", "")?),
                suppress,
            )
        }
        "SpamComplaint" => (
            Ok("opted_out"),
            text(value, "Email", "")?,
            format!("SpamComplaint:{}", text(value, "ID", "")?),
            Some(SuppressionReason::Complaint),
        ),
        other => (
            Err(format!("Postmark's `{other}` is not read")),
            optional(value, "Recipient")
                .or_else(|| optional(value, "Email"))
                .unwrap_or_default(),
            format!("{other}:{message_id}"),
            None,
        ),
    };
    Ok(Signal {
        event,
        address,
        key,
        id,
        suppress,
        fields,
    })
}

/// A SendGrid event webhook post: an array of events.
fn sendgrid(value: &Value) -> Result<Vec<Signal>, Bad> {
    let Some(items) = value.as_array() else {
        return Err((
            "a SendGrid post is a JSON array of events".into(),
            String::new(),
        ));
    };
    let mut signals = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("[{i}].");
        if !item.is_object() {
            return Err((format!("event {i} is not a JSON object"), format!("[{i}]")));
        }
        let kind = text(item, "event", &at)?;
        let address = text(item, "email", &at)?;
        let id = match optional(item, "sg_event_id") {
            Some(id) => id,
            None => format!(
                "{kind}:{address}:{}",
                optional(item, "timestamp").unwrap_or_default()
            ),
        };
        let mut fields = BTreeMap::from([("provider".to_string(), "sendgrid".to_string())]);
        if let Some(m) = optional(item, "sg_message_id") {
            fields.insert("message_id".into(), m);
        }
        if let Some(r) = optional(item, "reason") {
            fields.insert("reason".into(), r);
        }
        let (event, suppress) = match kind.as_str() {
            "delivered" => (Ok("delivered"), None),
            "open" => (Ok("opened"), None),
            "bounce" => {
                let bounce_type = optional(item, "type").unwrap_or_else(|| "bounce".into());
                fields.insert("bounce_type".into(), bounce_type.clone());
                if bounce_type == "blocked" {
                    (Ok("soft_bounced"), None)
                } else {
                    (Ok("bounced"), Some(SuppressionReason::Bounced))
                }
            }
            "dropped" => (Ok("failed"), None),
            "spamreport" => (Ok("opted_out"), Some(SuppressionReason::Complaint)),
            "unsubscribe" | "group_unsubscribe" => {
                (Ok("opted_out"), Some(SuppressionReason::OptedOut))
            }
            other => (Err(format!("SendGrid's `{other}` is not read")), None),
        };
        signals.push(Signal {
            event,
            address,
            key: optional(item, "nudge_key"),
            id,
            suppress,
            fields,
        });
    }
    Ok(signals)
}

/// Records one signal: the suppression first (so its reason is the
/// provider's, not the opt-out's), then the event for each candidate.
/// The outcome for the answer, or the error answer that stops the post.
async fn record(state: &PublicState, provider: &str, signal: Signal) -> Result<Value, Rejection> {
    let event = match signal.event {
        Ok(e) => e,
        Err(why) => return Ok(json!({ "id": signal.id, "ignored": why })),
    };
    let mut outcome = json!({ "id": signal.id, "event": event, "address": signal.address });
    if let Some(reason) = signal.suppress {
        let suppressed = state
            .handle
            .suppress(SuppressRequest {
                contact: signal.address.clone(),
                reason,
            })
            .await;
        match suppressed {
            Ok(answer) => {
                outcome["suppressed"] = json!(answer.entry.reason.name());
            }
            // An address the list cannot take is still an event.
            Err(Refusal::BadContact(_)) => {}
            Err(refusal) => return Err(refused(&refusal, None)),
        }
    }
    let candidates = match candidates(state, &signal.address, signal.key.as_deref()).await {
        Ok(c) => c,
        Err(refusal) => return Err(refused(&refusal, None)),
    };
    if candidates.is_empty() {
        tracing::info!(%provider, address = %signal.address, event, "email event for an address no candidate has");
        outcome["ignored"] = json!("no candidate has this address");
        return Ok(outcome);
    }
    let mut fields = signal.fields.clone();
    fields.insert("address".into(), signal.address.clone());
    if let Some(key) = &signal.key {
        fields.insert("key".into(), key.clone());
    }
    let mut recorded = Vec::new();
    for candidate in candidates {
        let request = EventRequest {
            candidate,
            event: event.to_string(),
            at: None,
            fields: fields.clone(),
            id: Some(format!("{provider}:{}", signal.id)),
        };
        match state.handle.event(request).await {
            Ok(answer) => recorded.push(json!({
                "candidate": answer.candidate,
                "effects": answer.effects,
                "repeated": answer.repeated,
            })),
            Err(refusal) => return Err(refused(&refusal, None)),
        }
    }
    outcome["candidates"] = json!(recorded);
    Ok(outcome)
}

/// Whom a signal is about: the candidate of the send `key` names, when it
/// names one of this store's sends; else everyone with the address.
async fn candidates(
    state: &PublicState,
    address: &str,
    key: Option<&str>,
) -> Result<Vec<String>, Refusal> {
    if let Some(key) = key {
        if let Some(send) = state.handle.send_of(key)? {
            return Ok(vec![send.candidate]);
        }
    }
    let handle = state.handle.clone();
    let contact = Contact::email(address);
    let found = tokio::task::spawn_blocking(move || handle.candidates_at(&contact))
        .await
        .map_err(|e| Refusal::Internal(format!("looking the address up failed: {e}")))??;
    Ok(found.into_iter().map(|c| c.id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postmark_bounces_are_hard_or_soft_by_type() {
        let bounce = |kind: &str| {
            json!({"RecordType": "Bounce", "ID": 7, "Type": kind, "MessageID": "m1",
                   "Email": "ana@example.com", "Description": "d"})
        };
        let hard = postmark(&bounce("HardBounce")).unwrap();
        assert_eq!(hard.event, Ok("bounced"));
        assert_eq!(hard.suppress, Some(SuppressionReason::Bounced));
        assert_eq!(hard.id, "Bounce:7");
        let soft = postmark(&bounce("SoftBounce")).unwrap();
        assert_eq!(soft.event, Ok("soft_bounced"));
        assert_eq!(soft.suppress, None);
        let missing = postmark(&json!({"RecordType": "Bounce", "ID": 7, "Type": "HardBounce"}));
        assert_eq!(missing.unwrap_err().1, "Email");
    }

    #[test]
    fn sendgrid_names_the_bad_event_by_its_place() {
        let err =
            sendgrid(&json!([{"event": "delivered", "email": "a@example.com"}, {"event": "open"}]))
                .unwrap_err();
        assert_eq!(err.1, "[1].email");
        let blocked = sendgrid(&json!([{"event": "bounce", "type": "blocked", "email": "a@example.com", "sg_event_id": "e1"}]))
            .unwrap();
        assert_eq!(blocked[0].event, Ok("soft_bounced"));
    }
}
