//! The admin API: the CLI's way into a running daemon, on loopback only,
//! every request with `Authorization: Bearer TOKEN`.
//!
//! | method and path | body / answer |
//! |---|---|
//! | `GET /v1/health` | `{"ok": true}` |
//! | `GET /v1/openapi.json` | the OpenAPI description of both servers ([`super::openapi`]) |
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
//! | `GET /v1/export[?campaign=&since=&until=]` | the event log (JSON Lines), streamed, then `#` + its counts |
//! | `GET /v1/report[?campaign&since&until&by&plan&THRESHOLD...]` | `Report` (REPORT.md §8) |
//! | `GET /v1/report/charts[?...]` | `Charts`: the HTML report's series over the same cohort |
//!
//! Errors answer with their status and `{"status": N, "message": "..."}`;
//! a body that is not its request (not JSON, a field missing, a field the
//! request does not have) is refused that way too, with a 400 naming it;
//! a body over [`super::BODY_LIMIT`] is refused with 413 before it is read.
//!
//! Each handler carries its `#[utoipa::path]` description, collected in
//! [`Described`]; a route added here without one fails the test
//! `openapi::` (see [`super::openapi`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::{refused, ErrorBody};
use crate::runtime::api::{
    ApplyRequest, ApplyResponse, CandidateView, EnrollRequest, EnrollResponse, EventRequest,
    EventResponse, ReloadReport, StatusReport, SuppressRequest, SuppressResponse, SuppressionView,
    UnsuppressRequest, UnsuppressResponse,
};
use crate::runtime::daemon::Handle;
use crate::runtime::refusal::Refusal;
use crate::store::sled::Copied;

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
        .route("/v1/openapi.json", get(description))
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
        .route("/v1/export", get(export))
        .route("/v1/report", get(report))
        .route("/v1/report/charts", get(charts))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state);
    super::guard(router)
}

async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !super::bears_token(request.headers(), &state.token) {
        return Answer(Refusal::Unauthorized).into_response();
    }
    next.run(request).await
}

/// The daemon's health: `{"ok": true}`, or `{"ok": false, "reason": ...}`
/// while the store cannot be written.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    pub ok: bool,
    /// Why the store cannot be written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `{"ok": true}`, or 503 with `{"ok": false, "reason": ...}` while the
/// store cannot be written.
#[utoipa::path(
    get,
    path = "/v1/health",
    tag = "admin", security(("admin_token" = [])),
    responses(
        (status = 200, description = "the store can be written", body = Health),
        (status = 503, description = "the store cannot be written now", body = Health),
        refused::Unauthorized
    )
)]
async fn health(State(s): State<AppState>) -> Response {
    match s.handle.health().trouble() {
        None => Json(Health {
            ok: true,
            reason: None,
        })
        .into_response(),
        Some(trouble) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                ok: false,
                reason: Some(trouble.to_string()),
            }),
        )
            .into_response(),
    }
}

/// This description of both servers' routes.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi",
    tag = "admin", security(("admin_token" = [])),
    responses(
        (status = 200, description = "the OpenAPI 3.1 description of the admin API and the public server", content_type = "application/json", body = Object),
        refused::Unauthorized
    )
)]
async fn description() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::json(),
    )
        .into_response()
}

/// The admin API's routes, described; [`super::openapi`] puts them beside
/// the public server's.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    health,
    enroll,
    event,
    applied,
    status,
    show,
    pause,
    resume,
    reload,
    suppressions,
    suppress,
    unsuppress,
    backup,
    export,
    description,
    report,
    charts
))]
pub(super) struct Described;

/// `nudge enroll`: put a candidate in a campaign.
#[utoipa::path(
    post,
    path = "/v1/enroll",
    tag = "admin", security(("admin_token" = [])),
    request_body = EnrollRequest,
    responses(
        (status = 200, body = EnrollResponse),
        refused::Command
    )
)]
async fn enroll(
    State(s): State<AppState>,
    Body(req): Body<EnrollRequest>,
) -> Result<impl IntoResponse, Answer> {
    Ok(Json(s.handle.enroll(req).await?))
}

/// A person applied: found or created, and enrolled where the campaigns take them.
#[utoipa::path(
    post,
    path = "/v1/applied",
    tag = "admin", security(("admin_token" = [])),
    request_body = ApplyRequest,
    responses(
        (status = 200, body = ApplyResponse),
        refused::Command
    )
)]
async fn applied(
    State(s): State<AppState>,
    Body(req): Body<ApplyRequest>,
) -> Result<impl IntoResponse, Answer> {
    Ok(Json(s.handle.apply(req).await?))
}

/// `nudge event`: something happened to a candidate.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "admin", security(("admin_token" = [])),
    request_body = EventRequest,
    responses(
        (status = 200, body = EventResponse),
        refused::Command
    )
)]
async fn event(
    State(s): State<AppState>,
    Body(req): Body<EventRequest>,
) -> Result<impl IntoResponse, Answer> {
    Ok(Json(s.handle.event(req).await?))
}

/// `nudge status`: every campaign, or one.
#[utoipa::path(
    get,
    path = "/v1/status",
    tag = "admin", security(("admin_token" = [])),
    params(("campaign" = Option<String>, Query, description = "only this campaign")),
    responses(
        (status = 200, body = StatusReport),
        refused::Named
    )
)]
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

/// `nudge show`: a candidate, their enrollments and history.
#[utoipa::path(
    get,
    path = "/v1/candidates/{who}",
    tag = "admin", security(("admin_token" = [])),
    params(("who" = String, Path, description = "the candidate id, their external id, or their link token")),
    responses(
        (status = 200, body = CandidateView),
        refused::Lookup
    )
)]
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

/// Pause a campaign: nothing of it is sent until it resumes.
#[utoipa::path(
    post,
    path = "/v1/campaigns/{name}/pause",
    tag = "admin", security(("admin_token" = [])),
    params(("name" = String, Path, description = "the campaign")),
    responses(
        (status = 200, description = "`{}`", body = Object),
        refused::Named
    )
)]
async fn pause(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, Answer> {
    s.handle.set_paused(name, true).await?;
    Ok(Json(serde_json::json!({})))
}

/// Resume a paused campaign.
#[utoipa::path(
    post,
    path = "/v1/campaigns/{name}/resume",
    tag = "admin", security(("admin_token" = [])),
    params(("name" = String, Path, description = "the campaign")),
    responses(
        (status = 200, description = "`{}`", body = Object),
        refused::Named
    )
)]
async fn resume(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, Answer> {
    s.handle.set_paused(name, false).await?;
    Ok(Json(serde_json::json!({})))
}

/// Read the campaigns and templates again.
#[utoipa::path(
    post,
    path = "/v1/reload",
    tag = "admin", security(("admin_token" = [])),
    responses(
        (status = 200, body = ReloadReport),
        refused::Refusable
    )
)]
async fn reload(State(s): State<AppState>) -> Result<impl IntoResponse, Answer> {
    Ok(Json(s.handle.reload().await?))
}

/// The suppression list.
#[utoipa::path(
    get,
    path = "/v1/suppressions",
    tag = "admin", security(("admin_token" = [])),
    responses(
        (status = 200, body = Vec<SuppressionView>),
        refused::Listed
    )
)]
async fn suppressions(State(s): State<AppState>) -> Result<impl IntoResponse, Answer> {
    let handle = s.handle.clone();
    let list = tokio::task::spawn_blocking(move || handle.suppressions())
        .await
        .map_err(|e| Refusal::Internal(e.to_string()))??;
    Ok(Json(list))
}

/// Put a contact on the suppression list.
#[utoipa::path(
    post,
    path = "/v1/suppressions",
    tag = "admin", security(("admin_token" = [])),
    request_body = SuppressRequest,
    responses(
        (status = 200, body = SuppressResponse),
        refused::Posted
    )
)]
async fn suppress(
    State(s): State<AppState>,
    Body(req): Body<SuppressRequest>,
) -> Result<impl IntoResponse, Answer> {
    Ok(Json(s.handle.suppress(req).await?))
}

/// Take a contact off the suppression list.
#[utoipa::path(
    post,
    path = "/v1/suppressions/remove",
    tag = "admin", security(("admin_token" = [])),
    request_body = UnsuppressRequest,
    responses(
        (status = 200, body = UnsuppressResponse),
        refused::Posted
    )
)]
async fn unsuppress(
    State(s): State<AppState>,
    Body(req): Body<UnsuppressRequest>,
) -> Result<impl IntoResponse, Answer> {
    Ok(Json(s.handle.unsuppress(req).await?))
}

/// `nudge backup` through the daemon.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// The folder to write the copy into (new or empty), as the daemon sees it.
    #[schema(value_type = String)]
    pub dir: std::path::PathBuf,
}

/// `nudge backup`: a copy of the store, between two commits.
#[utoipa::path(
    post,
    path = "/v1/backup",
    tag = "admin", security(("admin_token" = [])),
    request_body = BackupRequest,
    responses(
        (status = 200, body = Copied),
        refused::Posted
    )
)]
async fn backup(
    State(s): State<AppState>,
    Body(req): Body<BackupRequest>,
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

/// `nudge export` through the daemon: the event log of REPORT.md §1 as
/// JSON Lines, written as it is read, ending with a line `#` + the counts
/// (`{"campaigns", "enrollments", "lines"}`) with no newline, so a client
/// tells a whole export from a cut-off one. A failure half way cuts the
/// connection instead of ending that way.
#[utoipa::path(
    get,
    path = "/v1/export",
    tag = "admin", security(("admin_token" = [])),
    params(
        ("campaign" = Option<String>, Query, description = "only this campaign"),
        ("since" = Option<String>, Query, description = "enrolled at or after this instant (RFC 3339) or date"),
        ("until" = Option<String>, Query, description = "enrolled before this instant (RFC 3339) or date")
    ),
    responses(
        (status = 200, description = "the event log, JSON Lines", content_type = "application/x-ndjson", body = String),
        (status = 400, description = "a date that is not one", body = ErrorBody),
        refused::Unauthorized
    )
)]
async fn export(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Answer> {
    let when = |key: &str| {
        q.get(key)
            .map(|t| {
                crate::report::instant::parse(t)
                    .map_err(|e| Answer(Refusal::BadRequest(format!("{key}: {e}"))))
            })
            .transpose()
    };
    let filter = crate::report::export::Filter {
        campaign: q.get("campaign").cloned(),
        since: when("since")?,
        until: when("until")?,
    };
    Ok(super::export::stream(s.handle.clone(), filter))
}

/// `nudge report` over the store (REPORT.md): the funnel, time to
/// completion, groups, experiments and red flags of every campaign, or
/// one. The query is [`crate::report::query`]'s.
#[utoipa::path(
    get,
    path = "/v1/report",
    tag = "admin", security(("admin_token" = [])),
    params(
        ("campaign" = Option<String>, Query, description = "only this campaign"),
        ("since" = Option<String>, Query, description = "only enrollments enrolled at or after this instant (RFC 3339, or a date for its midnight UTC)"),
        ("until" = Option<String>, Query, description = "only enrollments enrolled before this instant"),
        ("by" = Option<String>, Query, description = "groupings, comma-separated: variant, channel, source, device, weekday, hour"),
        ("plan" = Option<u64>, Query, description = "the sample size the always-valid interval is tuned for (default 1000)"),
    ),
    responses(
        (status = 200, description = "the report (REPORT.md §8)", content_type = "application/json", body = Object),
        refused::Report
    )
)]
async fn report(
    State(s): State<AppState>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<impl IntoResponse, Answer> {
    read_report(&s, &q, Handle::report).await
}

/// A read of the store under the report's query, on a blocking thread.
async fn read_report<T: serde::Serialize + Send + 'static>(
    s: &AppState,
    q: &[(String, String)],
    read: fn(&Handle, &crate::report::compute::Options) -> Result<T, Refusal>,
) -> Result<Json<T>, Answer> {
    let options = crate::report::query::from_query(q.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(Refusal::BadRequest)?;
    let handle = s.handle.clone();
    let answer = tokio::task::spawn_blocking(move || read(&handle, &options))
        .await
        .map_err(|e| Refusal::Internal(e.to_string()))??;
    Ok(Json(answer))
}

/// The HTML report's charts over the store (completion over time per
/// variant, weekday × hour heatmaps), over the cohort `/v1/report` takes.
#[utoipa::path(
    get,
    path = "/v1/report/charts",
    tag = "admin", security(("admin_token" = [])),
    params(
        ("campaign" = Option<String>, Query, description = "only this campaign"),
        ("since" = Option<String>, Query, description = "only enrollments enrolled at or after this instant (RFC 3339, or a date for its midnight UTC)"),
        ("until" = Option<String>, Query, description = "only enrollments enrolled before this instant"),
    ),
    responses(
        (status = 200, description = "the charts' series", content_type = "application/json", body = Object),
        refused::Report
    )
)]
async fn charts(
    State(s): State<AppState>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<impl IntoResponse, Answer> {
    read_report(&s, &q, Handle::charts).await
}
