//! `POST /v1/webhooks/interview`: the interview platform says a candidate
//! started, completed, or did something the campaigns name (a custom
//! event).
//!
//! The body is JSON: `{"id": EVENT_ID, "event": "started" | "completed" |
//! custom, "token": LINK_TOKEN | "candidate": ID, "at"?: RFC 3339,
//! "fields"?: {NAME: text, number or boolean}}`. It is signed as nudge's
//! own webhook channel signs ([`crate::channels::webhook`]):
//! `X-Nudge-Timestamp: <unix seconds>` and `X-Nudge-Signature: v1=<hex
//! HMAC-SHA256(secret, "<timestamp>.<body>")>`, the secret in the variable
//! `[webhooks] interview_secret_env` names, the timestamp within
//! `tolerance_secs` of now. The event `id` makes it idempotent: a retry is
//! answered as the first delivery was, and changes nothing.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::server::public::respond::JsonError;

use super::{refused, secret, unauthorized, Rejection};
use crate::channels::webhook::{verify, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::runtime::api::EventRequest;
use crate::runtime::refusal::Refusal;
use crate::server::public::PublicState;

/// The body the interview platform posts.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = InterviewEvent)]
pub(super) struct Signal {
    /// The platform's id of this event: a retry with the same id is
    /// recorded once.
    id: String,
    /// `started`, `completed`, or an event the campaigns name.
    event: String,
    /// The candidate's link token (this or `candidate`).
    #[serde(default)]
    token: Option<String>,
    /// The candidate's id (this or `token`).
    #[serde(default)]
    candidate: Option<String>,
    /// When it happened (RFC 3339); default: now.
    #[serde(default)]
    at: Option<String>,
    /// The event's fields: text, numbers or true/false.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, Object>)]
    fields: BTreeMap<String, serde_json::Value>,
}

/// What a recorded interview event answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = InterviewAnswer)]
pub(super) struct Answer {
    candidate: String,
    event: String,
    /// When the event was taken, RFC 3339.
    at: String,
    /// What the event did, one line each.
    effects: Vec<String>,
    /// True when this event id had been recorded before: nothing changed.
    repeated: bool,
}

/// The idempotency keys of these events, apart from other senders'.
const ID_PREFIX: &str = "interview:";

#[utoipa::path(
    post,
    path = "/v1/webhooks/interview",
    operation_id = "interview_event",
    tag = "webhooks",
    security(("interview_signature" = [])),
    params(("X-Nudge-Timestamp" = String, Header, description = "Unix seconds; within `[webhooks] tolerance_secs` of now")),
    request_body = Signal,
    responses(
        (status = 200, description = "recorded (or recorded before: `repeated`)", body = Answer),
        (status = 400, description = "the body is not an interview event; `field` names what is wrong", body = JsonError),
        (status = 401, description = "the signature or timestamp is missing or wrong; nothing is stored", body = JsonError),
        (status = 404, description = "no candidate has this token or id", body = JsonError),
        (status = 409, description = "refused for this candidate (an event earlier than one already processed, ...)", body = JsonError),
        (status = 413, description = "the body is over the size limit", body = JsonError),
        (status = 503, description = "the webhook is not set up, or the store cannot be written now; try again later", body = JsonError)
    )
)]
pub(super) async fn receive(
    State(state): State<PublicState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let webhooks = &state.config.webhooks;
    let secret = secret(
        webhooks.interview_secret_env.as_deref(),
        "interview_secret_env",
    )?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(timestamp) = header(TIMESTAMP_HEADER) else {
        return Err(unauthorized(
            format!("the `{TIMESTAMP_HEADER}` header is missing"),
            Some(TIMESTAMP_HEADER),
        ));
    };
    let Some(signature) = header(SIGNATURE_HEADER) else {
        return Err(unauthorized(
            format!("the `{SIGNATURE_HEADER}` header is missing"),
            Some(SIGNATURE_HEADER),
        ));
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let tolerance = Duration::from_secs(webhooks.tolerance_secs);
    if !verify(secret.expose(), timestamp, &body, signature, now, tolerance) {
        return Err(unauthorized(
            format!(
                "the signature does not match: `{SIGNATURE_HEADER}` must be v1= and the hex \
                 HMAC-SHA256 of \"<timestamp>.<body>\" under the shared secret, and \
                 `{TIMESTAMP_HEADER}` within {} seconds of now",
                tolerance.as_secs()
            ),
            Some(SIGNATURE_HEADER),
        ));
    }
    let signal = decode(&body)?;
    let (who, field) = match (&signal.token, &signal.candidate) {
        (Some(token), _) if !token.trim().is_empty() => (token.trim(), "token"),
        (_, Some(id)) if !id.trim().is_empty() => (id.trim(), "candidate"),
        _ => {
            return Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                "name the candidate: `token` (their link token) or `candidate` (their id)",
                Some("token"),
            ))
        }
    };
    let mut fields = BTreeMap::new();
    for (name, value) in &signal.fields {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Null => continue,
            _ => {
                return Err(Rejection::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "field `{name}` is a list or an object; a field is text, a number or \
                         true/false"
                    ),
                    Some(&format!("fields.{name}")),
                ))
            }
        };
        fields.insert(name.clone(), text);
    }
    let request = EventRequest {
        candidate: who.to_string(),
        event: signal.event.trim().to_string(),
        at: signal.at.clone(),
        fields,
        id: Some(format!("{ID_PREFIX}{}", signal.id.trim())),
    };
    match state.handle.event(request).await {
        Ok(answer) => Ok((
            StatusCode::OK,
            Json(Answer {
                candidate: answer.candidate,
                event: signal.event.trim().to_string(),
                at: answer.at,
                effects: answer.effects,
                repeated: answer.repeated,
            }),
        )
            .into_response()),
        Err(refusal @ Refusal::UnknownCandidate(_)) => Err(Rejection::new(
            StatusCode::NOT_FOUND,
            format!("no candidate has the {field} `{who}`: {refusal}"),
            Some(field),
        )),
        Err(refusal) => Err(refused(&refusal, None)),
    }
}

/// The body as a [`Signal`], or a 400 naming the field that is wrong.
fn decode(body: &[u8]) -> Result<Signal, Rejection> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let signal: Signal = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        Rejection::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not an interview event: {}", e.inner()),
            field.as_deref(),
        )
    })?;
    if signal.id.trim().is_empty() {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "`id` is empty: give each event the platform's own id, so a retry is recorded once",
            Some("id"),
        ));
    }
    Ok(signal)
}
