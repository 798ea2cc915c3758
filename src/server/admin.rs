//! The admin API: the CLI's way into a running daemon, on loopback only,
//! every request with `Authorization: Bearer TOKEN`.
//!
//! | method and path | body / answer |
//! |---|---|
//! | `GET /v1/health` | `{"ok": true}` |
//! | `POST /v1/enroll` | `EnrollRequest` → `EnrollResponse` |
//! | `POST /v1/events` | `EventRequest` → `EventResponse` |
//! | `GET /v1/status[?campaign=NAME]` | `StatusReport` |
//! | `GET /v1/candidates/{who}` | `CandidateView` |
//! | `POST /v1/campaigns/{name}/pause`, `/resume` | `{}` |
//! | `POST /v1/reload` | `ReloadReport` |
//!
//! Errors answer with their status and `{"status": N, "message": "..."}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use subtle::ConstantTimeEq;

use crate::runtime::api::{ApiError, EnrollRequest, EventRequest};
use crate::runtime::daemon::Handle;

#[derive(Clone)]
struct AppState {
    handle: Handle,
    token: Arc<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self)).into_response()
    }
}

/// The admin router over a running core.
pub fn router(handle: Handle, token: String) -> Router {
    let state = AppState {
        handle,
        token: Arc::new(token),
    };
    Router::new()
        .route(
            "/v1/health",
            get(|| async { Json(serde_json::json!({ "ok": true })) }),
        )
        .route("/v1/enroll", post(enroll))
        .route("/v1/events", post(event))
        .route("/v1/status", get(status))
        .route("/v1/candidates/{who}", get(show))
        .route("/v1/campaigns/{name}/pause", post(pause))
        .route("/v1/campaigns/{name}/resume", post(resume))
        .route("/v1/reload", post(reload))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Constant time, so the answer's timing does not tell how much of a
    // guess was right.
    if !bool::from(given.as_bytes().ct_eq(state.token.as_bytes())) {
        return ApiError {
            status: 401,
            message: "missing or wrong admin token".into(),
        }
        .into_response();
    }
    next.run(request).await
}

async fn enroll(
    State(s): State<AppState>,
    Json(req): Json<EnrollRequest>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.handle.enroll(req).await?))
}

async fn event(
    State(s): State<AppState>,
    Json(req): Json<EventRequest>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.handle.event(req).await?))
}

async fn status(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let handle = s.handle.clone();
    let campaign = q.get("campaign").cloned();
    let report = tokio::task::spawn_blocking(move || handle.status(campaign.as_deref()))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(report))
}

async fn show(
    State(s): State<AppState>,
    Path(who): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let handle = s.handle.clone();
    let view = tokio::task::spawn_blocking(move || handle.show(&who))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(view))
}

async fn pause(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    s.handle.set_paused(name, true).await?;
    Ok(Json(serde_json::json!({})))
}

async fn resume(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    s.handle.set_paused(name, false).await?;
    Ok(Json(serde_json::json!({})))
}

async fn reload(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.handle.reload().await?))
}
