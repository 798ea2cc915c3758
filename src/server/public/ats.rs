//! Applications from ATSs and job boards: `POST /v1/webhooks/ats/{source}`.
//!
//! The source is an `[ats.SOURCE]` table of `nudge.toml` (an unknown one
//! is a 404). In order, and with nothing stored before the last step:
//!
//! 1. the signature is checked on the raw body with the secret from the
//!    table's `secret_env` (401 when it is missing or wrong);
//! 2. the body is parsed as JSON (400), and an event that is not an
//!    application (Greenhouse's ping, a Lever stage change) is answered
//!    200 `{"ignored": EVENT}`;
//! 3. for Lever, the opportunity is fetched from its API (502 when that
//!    fails);
//! 4. the mapping reads the fields (422 naming the field when there is no
//!    email address or phone number);
//! 5. the application goes to the runtime as an `ApplyRequest` whose
//!    idempotency key is `ats:SOURCE:APPLICATION_ID`, so a retried
//!    delivery changes nothing; the answer is the `ApplyResponse`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

use super::respond::json_error;
use super::PublicState;
use crate::intake::mapping::{Fetch, Mapping};
use crate::intake::signature::{default_header, verify};
use crate::runtime::api::ApplyRequest;
use crate::runtime::refusal::Refusal;

pub(super) fn routes() -> Router<PublicState> {
    Router::new().route("/v1/webhooks/ats/{source}", post(application))
}

async fn application(
    State(state): State<PublicState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(table) = state.config.ats.get(&source) else {
        let known: Vec<String> = state.config.ats.keys().map(|k| format!("`{k}`")).collect();
        let known = if known.is_empty() {
            "none is configured: add an `[ats.SOURCE]` table to nudge.toml".to_string()
        } else {
            format!("configured: {}", known.join(", "))
        };
        return json_error(
            StatusCode::NOT_FOUND,
            format!("no ATS source `{source}` ({known})"),
            None,
        );
    };
    let mapping = Mapping::of(&source, table);
    let env = table.secret_env.clone().unwrap_or_default();
    let secret = match std::env::var(&env) {
        Ok(s) if !s.is_empty() => s,
        _ => {
            tracing::error!(
                source,
                env,
                "the ATS source's secret is not set: its applications are refused"
            );
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the secret of source `{source}` is not configured on this server"),
                None,
            );
        }
    };
    let header_name = table
        .signature_header
        .clone()
        .unwrap_or_else(|| default_header(mapping.signature).to_string());
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if let Err(bad) = verify(mapping.signature, &header_name, &secret, header, &body) {
        tracing::warn!(source, "ATS application refused: {bad}");
        return json_error(StatusCode::UNAUTHORIZED, bad.to_string(), None);
    }
    let mut payload: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("the body is not JSON: {e}"),
                None,
            )
        }
    };
    if let Some(event) = mapping.ignored_event(&payload) {
        return (
            StatusCode::OK,
            Json(serde_json::json!({ "ignored": event })),
        )
            .into_response();
    }
    if let Some(fetch) = &mapping.fetch {
        if let Err(response) = fetched(&source, fetch, &mut payload).await {
            return response;
        }
    }
    let mapped = match mapping.apply(&source, &payload) {
        Ok(m) => m,
        Err(e) => return json_error(StatusCode::UNPROCESSABLE_ENTITY, e.message, Some(&e.field)),
    };
    let request = ApplyRequest {
        external_id: mapped.external_id,
        fields: mapped.fields,
        campaign: table.campaign.clone().filter(|c| c != "applied"),
        ignore_filter: false,
        enroll: true,
        at: None,
        id: mapped.application_id.map(|id| format!("ats:{source}:{id}")),
    };
    match state.handle.apply(request).await {
        Ok(answer) => (StatusCode::OK, Json(answer)).into_response(),
        Err(refusal) => refused(&refusal),
    }
}

/// A refusal as the webhook's answer: its status, and the field when one
/// is at fault.
fn refused(refusal: &Refusal) -> Response {
    let status = crate::server::admin::status_of(refusal);
    let field = match refusal {
        Refusal::BadField { field, .. } | Refusal::MissingField { field, .. } => {
            Some(field.as_str())
        }
        Refusal::BadPhone { .. } => Some("phone"),
        _ => None,
    };
    // A candidate field the campaign needs is the payload's fault.
    let status = if status == StatusCode::BAD_REQUEST && field.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        status
    };
    json_error(status, refusal.to_string(), field)
}

/// Lever's webhook names the opportunity only: its answer from Lever's
/// API goes into the payload where the mapping reads it.
async fn fetched(source: &str, fetch: &Fetch, payload: &mut Value) -> Result<(), Response> {
    let unavailable = |why: String| json_error(StatusCode::BAD_GATEWAY, why, None);
    let Some(env) = &fetch.api_key_env else {
        return Err(json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "`{source}`'s webhook names the application only; set `api_key_env` in `[ats.{source}]` so nudge can fetch the applicant"
            ),
            Some("email"),
        ));
    };
    let key = std::env::var(env).unwrap_or_default();
    if key.is_empty() {
        return Err(unavailable(format!(
            "the API key of source `{source}` is not configured on this server"
        )));
    }
    let Some(id) = payload.pointer(&fetch.id).and_then(Value::as_str) else {
        return Err(json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the payload has no id at `{}`", fetch.id),
            Some("external_id"),
        ));
    };
    let url = format!("{}/opportunities/{}", fetch.api_url, urlencode(id));
    let answer = reqwest::Client::new()
        .get(&url)
        .basic_auth(&key, Some(""))
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| unavailable(format!("`{source}`'s API did not answer: {e}")))?;
    if !answer.status().is_success() {
        return Err(unavailable(format!(
            "`{source}`'s API answered {} for the applicant",
            answer.status()
        )));
    }
    let mut opportunity: Value = answer
        .json()
        .await
        .map_err(|e| unavailable(format!("`{source}`'s API answer is not JSON: {e}")))?;
    let data = opportunity
        .get_mut("data")
        .map(Value::take)
        .unwrap_or(opportunity);
    let (parent, key) = fetch
        .into
        .rsplit_once('/')
        .unwrap_or(("", fetch.into.as_str()));
    match payload.pointer_mut(parent).and_then(Value::as_object_mut) {
        Some(object) => {
            object.insert(key.to_string(), data);
            Ok(())
        }
        None => Err(json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the payload has no object at `{parent}`"),
            None,
        )),
    }
}

/// An id as one path segment.
fn urlencode(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
