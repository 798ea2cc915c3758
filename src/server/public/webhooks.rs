//! Signals from the interview platform (`POST /v1/webhooks/interview`),
//! Twilio (`POST /v1/webhooks/twilio`, `/twilio/status`) and email
//! providers (`POST /v1/webhooks/email/{provider}`).

use axum::Router;

use super::PublicState;

pub(super) fn routes() -> Router<PublicState> {
    Router::new()
}
