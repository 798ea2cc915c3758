//! The public server: what candidates' browsers and providers reach,
//! at `[server] public_url`. Unlike the admin API it carries no token;
//! each route protects itself by its own means (an unguessable link token,
//! a provider's signature).
//!
//! | route | file |
//! |---|---|
//! | `GET /i/{token}`, `GET /o/{token}.gif`, `GET`/`POST /u/{token}` | [`links`] |
//! | `GET`/`POST /apply/{campaign}` | [`apply`] |
//! | `POST /v1/webhooks/interview`, `/twilio`, `/twilio/status`, `/email/{provider}` | [`webhooks`] |
//! | `POST /v1/webhooks/ats/{source}` | [`ats`] |
//!
//! Answers: machines (webhooks) get JSON errors `{"error": ..., "field":
//! ...}` ([`respond::json_error`]); people get a friendly HTML page
//! ([`respond::page`]). A request is bounded in size (413 before its body
//! is read) and in time (`[server] timeout_secs`, then 408); a rejected
//! request stores nothing.

pub mod apply;
pub mod ats;
pub mod links;
pub mod respond;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::{Config, SERVER_TIMEOUT_SECS as TIMEOUT};
use crate::runtime::daemon::Handle;

/// What every public route may use: the running core and the configuration
/// the daemon started with.
#[derive(Clone)]
pub struct PublicState {
    pub handle: Handle,
    pub config: Arc<Config>,
}

impl PublicState {
    /// `path` (starting with `/`) on the public URL.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.server.base())
    }
}

/// The public router over a running core.
pub fn router(state: PublicState) -> Router {
    let timeout = Duration::from_secs(
        state
            .config
            .server
            .timeout_secs
            .clamp(*TIMEOUT.start(), *TIMEOUT.end()),
    );
    Router::new()
        .merge(links::routes())
        .merge(apply::routes())
        .merge(webhooks::routes())
        .merge(ats::routes())
        .fallback(respond::not_found)
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn(refuse_declared_oversize))
        .layer(axum::extract::DefaultBodyLimit::max(super::BODY_LIMIT))
}

/// As [`super::guard`] does for the admin API, in the public answers'
/// shape: a declared body over the limit is refused before it is read.
async fn refuse_declared_oversize(request: Request, next: Next) -> Response {
    match super::declared_oversize(&request) {
        Some(length) => super::close_after(respond::json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            super::oversize_message(length),
            None,
        )),
        None => next.run(request).await,
    }
}
