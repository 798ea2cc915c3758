//! The admin API: the CLI's way into a running daemon, on loopback only,
//! every request with `Authorization: Bearer TOKEN`.
//!
//! | method and path | body / answer |
//! |---|---|
//! | `GET /v1/health` | `{"ok": true}` |
//! | `POST /v1/enroll` | `EnrollRequest` → `EnrollResponse` |
//! | `POST /v1/events` | `EventRequest` → `EventResponse` |
//! | `POST /v1/applied` | `ApplyRequest` → `ApplyResponse` (a person applied) |
//! | `GET /v1/status[?campaign=NAME]` | `StatusReport` |
//! | `GET /v1/candidates/{who}` | `CandidateView` |
//! | `POST /v1/campaigns/{name}/pause`, `/resume` | `{}` |
//! | `POST /v1/reload` | `ReloadReport` |
//! | `GET /v1/suppressions` | `[SuppressionView]` |
//! | `POST /v1/suppressions` | `SuppressRequest` → `SuppressResponse` |
//! | `POST /v1/suppressions/remove` | `UnsuppressRequest` → `UnsuppressResponse` |
//! | `POST /v1/backup` | `{"dir": PATH}` → `Copied` (a copy of the store, between two commits) |
//! | `POST /v1/applied/batch` | `[ApplyRequest]` → `[{"ok": ApplyResponse} or {"refused": {"status", "message"}}]`, each on its own |
//! | `GET /v1/reviewed` | `[Reviewed]`: candidates an `import --review` left waiting |
//!
//! Errors answer with their status and `{"status": N, "message": "..."}`;
//! a body that is not its request (not JSON, a field missing, a field the
//! request does not have) is refused that way too, with a 400 naming it;
//! a body over [`super::BODY_LIMIT`] is refused with 413 before it is read.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use subtle::ConstantTimeEq;

use crate::runtime::api::{
    ApplyRequest, EnrollRequest, EventRequest, SuppressRequest, UnsuppressRequest,
};
use crate::runtime::daemon::Handle;
use crate::runtime::refusal::Refusal;

#[derive(Clone)]
struct AppState {
    handle: Handle,
    token: Arc<String>,
}

/// The HTTP status of a refusal: the one place where the runtime's
/// reasons become status codes.
pub(crate) fn status_of(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::UnknownCampaign { .. } | Refusal::UnknownCandidate(_) => StatusCode::NOT_FOUND,
        Refusal::OptedOut { .. }
        | Refusal::AmbiguousCandidate { .. }
        | Refusal::ReloadWouldStrand(_)
        | Refusal::FilterDoesNotTake { .. }
        | Refusal::ReloadDoesNotCheck(_)
        | Refusal::StoreStranded(_)
        | Refusal::EventBeforeProcessed { .. } => StatusCode::CONFLICT,
        Refusal::UnnamedField
        | Refusal::BadPhone { .. }
        | Refusal::BadContact(_)
        | Refusal::BadField { .. }
        | Refusal::MissingField { .. }
        | Refusal::BadRequest(_)
        | Refusal::NoContact
        | Refusal::BadInstant(_)
        | Refusal::EventInFuture { .. }
        | Refusal::BadEventName(_)
        | Refusal::NoDaemon => StatusCode::BAD_REQUEST,
        Refusal::Unauthorized => StatusCode::UNAUTHORIZED,
        // The store cannot be written now: a client may try again later.
        Refusal::ShuttingDown | Refusal::NotRecorded(_) | Refusal::StoreTrouble(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Refusal::Daemon { status, .. } => {
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
        }
        Refusal::NoRandomness(_) | Refusal::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A refusal as the admin API answers it: its status, and a JSON body
/// `{"status": ..., "message": ...}`.
struct Answer(Refusal);

impl From<Refusal> for Answer {
    fn from(r: Refusal) -> Self {
        Answer(r)
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        super::error_response(status_of(&self.0), self.0.to_string())
    }
}

/// A JSON request body, refused as the API refuses (a 400 and
/// `{"status", "message"}`) when it does not decode: the request types
/// deny unknown fields, so a misspelled `external_id` is named, not
/// ignored.
struct Body<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Answer;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(body)) => Ok(Body(body)),
            Err(rejection) => Err(Answer(Refusal::BadRequest(rejection.body_text()))),
        }
    }
}

/// The admin router over a running core.
pub fn router(handle: Handle, token: String) -> Router {
    let state = AppState {
        handle,
        token: Arc::new(token),
    };
    let router = Router::new()
        .route("/v1/health", get(health))
        .route("/v1/enroll", post(enroll))
        .route("/v1/events", post(event))
        .route("/v1/applied", post(applied))
        .route("/v1/status", get(status))
        .route("/v1/candidates/{who}", get(show))
        .route("/v1/campaigns/{name}/pause", post(pause))
        .route("/v1/campaigns/{name}/resume", post(resume))
        .route("/v1/reload", post(reload))
        .route("/v1/suppressions", get(suppressions).post(suppress))
        .route("/v1/suppressions/remove", post(unsuppress))
        .route("/v1/backup", post(backup))
        .route("/v1/applied/batch", post(apply_batch))
        .route("/v1/reviewed", get(reviewed))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state);
    super::guard(router)
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
        return Answer(Refusal::Unauthorized).into_response();
    }
    next.run(request).await
}

/// `{"ok": true}`, or 503 with `{"ok": false, "reason": ...}` while the
/// store cannot be written.
async fn health(State(s): State<AppState>) -> Response {
    match s.handle.health().trouble() {
        None => Json(serde_json::json!({ "ok": true })).into_response(),
        Some(trouble) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "ok": false, "reason": trouble.to_string() })),
        )
            .into_response(),
    }
}

async fn enroll(
    State(s): State<AppState>,
    Body(req): Body<EnrollRequest>,
) -> Result<impl IntoResponse, Answer> {
    Ok(Json(s.handle.enroll(req).await?))
}

async fn applied(
    State(s): State<AppState>,
    Body(req): Body<ApplyRequest>,
) -> Result<impl IntoResponse, Answer> {
    Ok(Json(s.handle.apply(req).await?))
}

async fn event(
    State(s): State<AppState>,
    Body(req): Body<EventRequest>,
) -> Result<impl IntoResponse, Answer> {
    Ok(Json(s.handle.event(req).await?))
}

async fn status(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, Answer> {
    let handle = s.handle.clone();
    let campaign = q.get("campaign").cloned();
    let report = tokio::task::spawn_blocking(move || handle.status(campaign.as_deref()))
        .await
        .map_err(|e| Refusal::Internal(e.to_string()))??;
    Ok(Json(report))
}

async fn show(
    State(s): State<AppState>,
    Path(who): Path<String>,
) -> Result<impl IntoResponse, Answer> {
    let handle = s.handle.clone();
    let view = tokio::task::spawn_blocking(move || handle.show(&who))
        .await
        .map_err(|e| Refusal::Internal(e.to_string()))??;
    Ok(Json(view))
}

async fn pause(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, Answer> {
    s.handle.set_paused(name, true).await?;
    Ok(Json(serde_json::json!({})))
}

async fn resume(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, Answer> {
    s.handle.set_paused(name, false).await?;
    Ok(Json(serde_json::json!({})))
}

async fn reload(State(s): State<AppState>) -> Result<impl IntoResponse, Answer> {
    Ok(Json(s.handle.reload().await?))
}

async fn suppressions(State(s): State<AppState>) -> Result<impl IntoResponse, Answer> {
    let handle = s.handle.clone();
    let list = tokio::task::spawn_blocking(move || handle.suppressions())
        .await
        .map_err(|e| Refusal::Internal(e.to_string()))??;
    Ok(Json(list))
}

async fn suppress(
    State(s): State<AppState>,
    Json(req): Json<SuppressRequest>,
) -> Result<impl IntoResponse, Answer> {
    Ok(Json(s.handle.suppress(req).await?))
}

async fn unsuppress(
    State(s): State<AppState>,
    Json(req): Json<UnsuppressRequest>,
) -> Result<impl IntoResponse, Answer> {
    Ok(Json(s.handle.unsuppress(req).await?))
}

/// `nudge backup` through the daemon.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// The folder to write the copy into (new or empty), as the daemon sees it.
    pub dir: std::path::PathBuf,
}

async fn backup(
    State(s): State<AppState>,
    Json(req): Json<BackupRequest>,
) -> Result<impl IntoResponse, Answer> {
    Ok(Json(s.handle.backup(req.dir).await?))
}

/// `POST /v1/applied/batch`: each application handed to the core at once,
/// so they share its batches, and answered on its own, in order.
async fn apply_batch(
    State(s): State<AppState>,
    Body(requests): Body<Vec<crate::runtime::api::ApplyRequest>>,
) -> Result<impl IntoResponse, Answer> {
    use crate::intake::batch::{Applied, MAX_BATCH};
    if requests.len() > MAX_BATCH {
        return Err(Answer(Refusal::BadRequest(format!(
            "{} applications in one batch; at most {MAX_BATCH} are taken",
            requests.len()
        ))));
    }
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let handle = s.handle.clone();
            tokio::spawn(async move { handle.apply(request).await })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        let answer = task
            .await
            .unwrap_or_else(|e| Err(Refusal::Internal(e.to_string())));
        answers.push(Applied::of(answer));
    }
    Ok(Json(answers))
}

/// `GET /v1/reviewed`: the candidates an `import --review` left waiting.
async fn reviewed(State(s): State<AppState>) -> Result<impl IntoResponse, Answer> {
    Ok(Json(s.handle.reviewed()?))
}
