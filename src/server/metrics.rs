//! `GET /metrics` on the admin API's listener: the daemon's metrics in the
//! OpenMetrics text format, which Prometheus scrapes (see
//! `runtime::metrics` for what is counted).
//!
//! The admin token is asked for as on every admin route, unless
//! `[metrics] token = false`: the listener is always a loopback address,
//! so that opens the metrics (and nothing else) to this machine only.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::config::MetricsConfig;
use crate::runtime::daemon::Handle;
use crate::runtime::refusal::Refusal;

/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `/metrics` route, with the admin `token` asked for unless
/// `config` says otherwise.
pub fn routes(handle: Handle, token: String, config: MetricsConfig) -> Router {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .with_state(handle);
    if config.token {
        router.layer(middleware::from_fn_with_state(Arc::new(token), authorize))
    } else {
        router
    }
}

pub(super) async fn authorize(
    State(token): State<Arc<String>>,
    request: Request,
    next: Next,
) -> Response {
    if !super::bears_token(request.headers(), &token) {
        let refusal = Refusal::Unauthorized;
        return super::error_response(super::admin::status_of(&refusal), refusal.to_string());
    }
    next.run(request).await
}

/// The daemon's metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "admin", security(("admin_token" = [])),
    responses(
        (status = 200, description = "the metrics in the OpenMetrics text format (Prometheus \
                                      reads it): sends, failures and retries per channel, \
                                      queue depth, timers pending, dispatch lateness, store \
                                      size, enrollments per campaign; the token is not asked \
                                      for when `[metrics] token = false`",
         content_type = "application/openmetrics-text", body = String),
        super::refused::Read
    )
)]
async fn metrics(State(handle): State<Handle>) -> Response {
    let rendered = tokio::task::spawn_blocking(move || handle.metrics_text()).await;
    match rendered {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Ok(Err(refusal)) => {
            super::error_response(super::admin::status_of(&refusal), refusal.to_string())
        }
        Err(e) => super::error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `/metrics`, described; [`super::openapi`] puts it beside the others.
#[derive(utoipa::OpenApi)]
#[openapi(paths(metrics))]
pub(super) struct Described;
