//! Applications from ATSs and job boards: `POST /v1/webhooks/ats/{source}`.

use axum::Router;

use super::PublicState;

pub(super) fn routes() -> Router<PublicState> {
    Router::new()
}
