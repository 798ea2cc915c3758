//! Signals from the interview platform (`POST /v1/webhooks/interview`),
//! Twilio (`POST /v1/webhooks/twilio`, `/twilio/status`) and email
//! providers (`POST /v1/webhooks/email/{provider}`), one file each.
//!
//! Every route checks who is calling before it reads what is said: a
//! request without a valid signature (or password) is answered 401 and
//! nothing of it is stored. What a genuine request says becomes an event
//! of the candidate it names (through the same core command as `nudge
//! event`, with the provider's event id as the idempotency key, so a
//! retried delivery is recorded once), an opt-in, or an entry on the
//! suppression list.

mod email;
mod interview;
mod twilio;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::respond::json_error;
use super::PublicState;
use crate::channels::secret::Secret;
use crate::runtime::refusal::Refusal;
use crate::server::admin::status_of;

/// These routes, described for [`crate::server::openapi`].
#[derive(utoipa::OpenApi)]
#[openapi(paths(interview::receive, twilio::inbound, twilio::status, email::receive))]
pub(crate) struct Described;

pub(super) fn routes() -> Router<PublicState> {
    Router::new()
        .route("/v1/webhooks/interview", post(interview::receive))
        .route("/v1/webhooks/twilio", post(twilio::inbound))
        .route("/v1/webhooks/twilio/status", post(twilio::status))
        .route("/v1/webhooks/email/{provider}", post(email::receive))
}

/// Why a webhook request is refused: answered as a JSON error, `{"error":
/// ..., "field": ...}` with its status.
#[derive(Debug)]
pub(super) struct Rejection {
    status: StatusCode,
    error: String,
    field: Option<String>,
    /// Ask for basic auth (`WWW-Authenticate`).
    challenge: bool,
}

impl Rejection {
    fn new(status: StatusCode, error: impl Into<String>, field: Option<&str>) -> Rejection {
        Rejection {
            status,
            error: error.into(),
            field: field.map(str::to_string),
            challenge: false,
        }
    }

    /// The same, asking the sender for basic auth.
    fn with_basic_challenge(mut self) -> Rejection {
        self.challenge = true;
        self
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut response = json_error(self.status, self.error, self.field.as_deref());
        if self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"nudge webhooks\""),
            );
        }
        response
    }
}

/// The secret in the environment variable `[webhooks] key` names; refused
/// with 503 when the setting or the variable is missing (the operator has
/// to act, and the sender retries meanwhile).
fn secret(name: Option<&str>, key: &str) -> Result<Secret, Rejection> {
    let Some(name) = name else {
        return Err(Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("this webhook is not set up: `[webhooks] {key}` names no variable"),
            None,
        ));
    };
    Secret::from_env(name).map_err(|why| {
        Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("this webhook is not set up: {why}"),
            None,
        )
    })
}

/// 401 with the reason (never the expected value).
fn unauthorized(why: impl Into<String>, field: Option<&str>) -> Rejection {
    Rejection::new(StatusCode::UNAUTHORIZED, why, field)
}

/// A refusal of the core, at `field` when it concerns one.
fn refused(refusal: &Refusal, field: Option<&str>) -> Rejection {
    let field = match refusal {
        Refusal::BadEventName(_) => Some("event"),
        Refusal::BadInstant(_)
        | Refusal::EventInFuture { .. }
        | Refusal::EventBeforeProcessed { .. } => Some("at"),
        _ => field,
    };
    Rejection::new(status_of(refusal), refusal.to_string(), field)
}
