//! `GET /v1/digest` on the admin API: the weekly digest as it would go
//! now, for `nudge digest` while the daemon holds the store.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::ErrorBody;
use crate::config::DigestConfig;
use crate::runtime::daemon::Handle;
use crate::runtime::digest::Preview;

#[derive(Clone)]
struct DigestState {
    handle: Handle,
    config: Option<Arc<DigestConfig>>,
}

/// The `/v1/digest` route, behind the admin `token`, for the daemon's
/// `[digest]` (`None`: it has none).
pub fn routes(handle: Handle, token: String, config: Option<DigestConfig>) -> Router {
    Router::new()
        .route("/v1/digest", get(preview))
        .with_state(DigestState {
            handle,
            config: config.map(Arc::new),
        })
        .layer(middleware::from_fn_with_state(
            Arc::new(token),
            super::metrics::authorize,
        ))
}

/// The weekly digest as it would go now, and when the next is due.
#[utoipa::path(
    get,
    path = "/v1/digest",
    operation_id = "digest",
    tag = "admin", security(("admin_token" = [])),
    responses(
        (status = 200, description = "the digest as it would go now", body = Preview),
        (status = 404, description = "the daemon runs with no `[digest]`", body = ErrorBody),
        super::refused::Read
    )
)]
async fn preview(State(state): State<DigestState>) -> Response {
    let Some(config) = state.config else {
        return super::error_response(
            StatusCode::NOT_FOUND,
            "the daemon runs with no `[digest]` in nudge.toml".into(),
        );
    };
    let handle = state.handle;
    let made = tokio::task::spawn_blocking(move || {
        let now = handle.clock().now();
        crate::runtime::digest::preview(handle.store(), &handle.campaigns_now(), &config, now)
    })
    .await;
    match made {
        Ok(Ok(preview)) => Json(preview).into_response(),
        Ok(Err(e)) => super::error_response(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => super::error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `/v1/digest`, described; [`super::openapi`] puts it beside the others.
#[derive(utoipa::OpenApi)]
#[openapi(paths(preview))]
pub(super) struct Described;
