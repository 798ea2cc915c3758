//! The live dashboard on the admin listener: campaigns with their
//! candidates per state, today's sends per channel, the funnel,
//! experiments with their verdicts and red flags, refreshing itself.
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /dashboard` | the page (with a session), else 303 to the login |
//! | `GET /dashboard/login` | the login form |
//! | `POST /dashboard/login` | form `user`, `password` → 303 to `/dashboard` with the session cookie; 401 and the form again |
//! | `POST /dashboard/logout` | 303 to the login, the cookie cleared |
//! | `GET /dashboard/data.json` | [`crate::runtime::dashboard::Dashboard`], with a session or `Authorization: Bearer TOKEN` |
//!
//! A browser cannot send the admin token, so it logs in once, with the
//! token (no name) or a name and password of `[dashboard.users]`, and gets
//! a session cookie (HttpOnly, SameSite=Strict, `Path=/dashboard`, signed:
//! see [`session`]). Everything else under `/dashboard` requires it; the
//! data also takes the bearer token, for scripts.

mod page;
pub mod session;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use subtle::ConstantTimeEq;

use super::ErrorBody;
use crate::config::{password_matches, DashboardConfig};
use crate::report::compute::Thresholds;
use crate::runtime::daemon::Handle;
use crate::runtime::refusal::Refusal;
use session::{Sessions, COOKIE};

#[derive(Clone)]
struct DashState {
    handle: Handle,
    token: Arc<String>,
    config: Arc<DashboardConfig>,
    thresholds: Arc<Thresholds>,
    sessions: Sessions,
    /// The last reading of the data and when it was taken; see [`data`].
    cache: Arc<tokio::sync::Mutex<Cache>>,
}

/// The last reading of the dashboard's data.
#[derive(Default)]
struct Cache {
    last: Option<(std::time::Instant, crate::runtime::dashboard::Dashboard)>,
    /// A reading is being taken beside the answers.
    reading: bool,
}

impl Cache {
    /// The last reading, or the first, taken now and kept.
    async fn last_or_first(
        &mut self,
        s: &DashState,
    ) -> Result<crate::runtime::dashboard::Dashboard, Refusal> {
        if let Some((_, data)) = &self.last {
            return Ok(data.clone());
        }
        let data = read(s).await?;
        self.last = Some((std::time::Instant::now(), data.clone()));
        Ok(data)
    }
}

/// The dashboard's routes, to be merged beside the admin API's (which
/// has its own token check; these check their own way). `config` is the
/// whole `nudge.toml`: `[dashboard]`, and `[report]` for the red flags.
pub fn routes(handle: Handle, token: String, config: &crate::config::Config) -> Router {
    let state = DashState {
        sessions: Sessions::new(&token, config.dashboard.session_hours),
        handle,
        token: Arc::new(token),
        config: Arc::new(config.dashboard.clone()),
        thresholds: Arc::new(config.report.clone()),
        cache: Arc::default(),
    };
    if config.dashboard.read_at_start {
        tokio::spawn(read_at_start(state.clone()));
    }
    let router = Router::new()
        .route("/dashboard", get(dashboard))
        .route("/dashboard/login", get(login_form).post(login))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/data.json", get(data))
        .with_state(state);
    super::guard(router)
}

/// Now, in Unix milliseconds (sessions expire in real time, whatever
/// clock the campaigns run on).
fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Who the request's session cookie names, if it carries a valid one.
fn session(state: &DashState, headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == COOKIE)
        .find_map(|c| state.sessions.check(c.value(), now_ms()))
}

/// Whether the request carries the admin token as a bearer token.
fn bearer(state: &DashState, headers: &HeaderMap) -> bool {
    super::bears_token(headers, &state.token)
}

/// The hash an unknown name's password is checked against, made once.
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| crate::config::hash_password("no such user").unwrap_or_default())
}

fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// The dashboard page, or to the login without a session.
#[utoipa::path(
    get,
    path = "/dashboard",
    tag = "dashboard", security(("dashboard_session" = [])),
    responses(
        (status = 200, description = "the dashboard page", content_type = "text/html"),
        (status = 303, description = "no valid session: to `/dashboard/login`")
    )
)]
async fn dashboard(State(s): State<DashState>, headers: HeaderMap) -> Response {
    match session(&s, &headers) {
        Some(who) => page::dashboard(s.config.refresh_secs, &who),
        None => see_other("/dashboard/login"),
    }
}

/// The login form.
#[utoipa::path(
    get,
    path = "/dashboard/login",
    tag = "dashboard",
    responses(
        (status = 200, description = "the login form", content_type = "text/html")
    )
)]
async fn login_form() -> Response {
    page::login(StatusCode::OK, None)
}

/// A login: a name and password of `[dashboard.users]`, or no name and
/// the admin token.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct Login {
    /// A name of `[dashboard.users]`; empty to log in with the admin token.
    #[serde(default)]
    pub user: String,
    /// That user's password, or the admin token.
    #[serde(default)]
    pub password: String,
}

/// Log in: the session cookie, and on to the dashboard.
#[utoipa::path(
    post,
    path = "/dashboard/login",
    tag = "dashboard",
    request_body(content = Login, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "logged in: the session cookie is set, to `/dashboard`"),
        (status = 401, description = "the form again: a wrong name, password or token", content_type = "text/html"),
        (status = 415, description = "the body is not a form")
    )
)]
async fn login(State(s): State<DashState>, Form(form): Form<Login>) -> Response {
    let who = if form.user.trim().is_empty() {
        let right = !form.password.is_empty()
            && bool::from(form.password.as_bytes().ct_eq(s.token.as_bytes()));
        right.then(|| "admin token".to_string())
    } else {
        let user = form.user.trim().to_string();
        let hash = s.config.users.get(&user).cloned();
        let password = form.password;
        // Argon2 takes its time on purpose: off the async workers. An
        // unknown name is checked against a decoy, so that it takes as
        // long as a wrong password and the time does not tell names.
        let right = tokio::task::spawn_blocking(move || {
            let known = hash.is_some();
            let hash = hash.unwrap_or_else(|| decoy().to_string());
            password_matches(&hash, &password) && known
        })
        .await
        .unwrap_or(false);
        right.then_some(user)
    };
    let Some(who) = who else {
        return page::login(
            StatusCode::UNAUTHORIZED,
            Some("Wrong name or password (or admin token). Nothing was changed."),
        );
    };
    let value = s.sessions.issue(&who, now_ms());
    let cookie = cookie::Cookie::build((COOKIE, value))
        .path("/dashboard")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(s.sessions.lifetime_secs()))
        .build();
    let mut response = see_other("/dashboard");
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Log out: the cookie cleared, back to the login.
#[utoipa::path(
    post,
    path = "/dashboard/logout",
    tag = "dashboard",
    responses(
        (status = 303, description = "the session cookie is cleared; to `/dashboard/login`")
    )
)]
async fn logout() -> Response {
    let mut response = see_other("/dashboard/login");
    let cookie = cookie::Cookie::build((COOKIE, ""))
        .path("/dashboard")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::ZERO)
        .build();
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The dashboard's numbers: the report over the whole store (as `nudge
/// report --format json`), candidates per state, today's sends per
/// channel.
#[utoipa::path(
    get,
    path = "/dashboard/data.json",
    tag = "dashboard", security(("dashboard_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "`{at, refresh_secs, status, sends_today, report}`: `report` is exactly `nudge report --format json`", content_type = "application/json", body = Object),
        (status = 401, description = "no session and no token, or not the daemon's", body = ErrorBody),
        super::refused::CannotRead
    )
)]
async fn data(State(s): State<DashState>, headers: HeaderMap) -> Response {
    if session(&s, &headers).is_none() && !bearer(&s, &headers) {
        return answer(Refusal::Unauthorized);
    }
    // Reading a store of a million candidates takes a second or two, longer
    // than a page should wait: the answer is the last reading (its `at`
    // says when it was taken), and a reading older than the refresh
    // period starts a new one beside it, which the page's next refresh
    // gets. Only the first answer waits for its reading.
    let period = std::time::Duration::from_secs(s.config.refresh_secs);
    let mut cache = s.cache.lock().await;
    let stale = cache
        .last
        .as_ref()
        .map(|(taken, _)| taken.elapsed() >= period);
    if stale == Some(true) && !cache.reading {
        cache.reading = true;
        let (state, slot) = (s.clone(), s.cache.clone());
        tokio::spawn(async move {
            let read = read(&state).await;
            let mut cache = slot.lock().await;
            cache.reading = false;
            match read {
                Ok(data) => cache.last = Some((std::time::Instant::now(), data)),
                Err(e) => tracing::warn!("reading the dashboard's data failed: {e}"),
            }
        });
    }
    let data = cache.last_or_first(&s).await;
    drop(cache);
    match data {
        Ok(mut data) => {
            // Whether the store can be written is said as it is now.
            data.status.store_trouble = s.handle.health().trouble().map(|t| t.to_string());
            let mut response = Json(data).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(refusal) => answer(refusal),
    }
}

/// `[dashboard] read_at_start`: the first reading, taken now. The cache
/// is held meanwhile, so an answer asked for before it is done waits for
/// this reading instead of taking a second one.
async fn read_at_start(s: DashState) {
    let mut cache = s.cache.lock().await;
    if cache.last.is_some() {
        return;
    }
    let started = std::time::Instant::now();
    match cache.last_or_first(&s).await {
        Ok(_) => tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            "the dashboard's data was read at start"
        ),
        Err(e) => tracing::warn!("reading the dashboard's data at start failed: {e}"),
    }
}

/// One reading of the dashboard's data from the store.
async fn read(s: &DashState) -> Result<crate::runtime::dashboard::Dashboard, Refusal> {
    let handle = s.handle.clone();
    let (zone, refresh) = (s.config.zone(), s.config.refresh_secs);
    let thresholds = s.thresholds.clone();
    let read = tokio::task::spawn_blocking(move || {
        let now = handle.clock().now();
        let campaigns = handle.campaigns_now();
        let trouble = handle.health().trouble().map(|t| t.to_string());
        let mut data = crate::runtime::dashboard::dashboard(
            handle.store(),
            &campaigns,
            now,
            zone,
            refresh,
            &thresholds,
        )
        .map_err(|e| match &trouble {
            // The store is closed while it is opened again: say why.
            Some(t) => Refusal::StoreTrouble(t.clone()),
            None => e,
        })?;
        data.status.store_trouble = trouble;
        Ok::<_, Refusal>(data)
    })
    .await;
    read.unwrap_or_else(|e| Err(Refusal::Internal(e.to_string())))
}

fn answer(refusal: Refusal) -> Response {
    super::error_response(super::admin::status_of(&refusal), refusal.to_string())
}

/// The dashboard's routes, described; [`super::openapi`] puts them beside
/// the others.
#[derive(utoipa::OpenApi)]
#[openapi(paths(dashboard, login_form, login, logout, data))]
pub(super) struct Described;
