//! Inbound HTTP. Today the admin API on loopback; the public front door
//! (tracked links, the open pixel, unsubscribe, webhooks) joins it later as
//! its own router beside this one.
//!
//! What every router shares lives here: the error answer's JSON shape, and
//! [`guard`], which bounds what a request may make the daemon read.

pub mod admin;
pub mod dashboard;
pub mod digest;
pub mod export;
pub mod metrics;
pub mod openapi;
pub mod public;
pub mod refused;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};

/// The most bytes a request body may have. An enrollment or an event is a
/// few hundred bytes; a mebibyte leaves room for a candidate with many
/// long fields, and bounds what one request can make the daemon hold.
pub const BODY_LIMIT: usize = 1 << 20;

/// The body of the admin API's error answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The answer's HTTP status, again.
    pub status: u16,
    /// What went wrong, for people.
    pub message: String,
}

/// An error as every router answers it: `status`, and the JSON body
/// `{"status": N, "message": "..."}`.
/// Whether a request carries `token` as its bearer token, compared in
/// constant time (the answer's timing does not tell how much of a guess
/// was right); a request without one never matches.
pub fn bears_token(headers: &axum::http::HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    use subtle::ConstantTimeEq;
    !given.is_empty() && bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

pub fn error_response(status: StatusCode, message: String) -> Response {
    let body = ErrorBody {
        status: status.as_u16(),
        message,
    };
    (status, Json(body)).into_response()
}

/// `router` with its requests' bodies bounded by [`BODY_LIMIT`]: a request
/// that declares a longer body (`Content-Length`) is answered 413 at once,
/// before any of its body is read, and its connection closed; a body that
/// turns out longer as it is read (chunked) stops being read at the limit.
/// Applied last, so it runs before anything else, the token check
/// included.
pub fn guard(router: Router) -> Router {
    router
        .layer(middleware::from_fn(refuse_declared_oversize))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

async fn refuse_declared_oversize(request: Request, next: Next) -> Response {
    match declared_oversize(&request) {
        Some(length) => close_after(error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            oversize_message(length),
        )),
        None => next.run(request).await,
    }
}

/// The length a request declares (`Content-Length`), when it is over
/// [`BODY_LIMIT`]. hyper has already refused one that is not a number.
pub(crate) fn declared_oversize(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|length| *length > BODY_LIMIT as u64)
}

/// What a 413 says.
pub(crate) fn oversize_message(length: u64) -> String {
    format!("the request body is {length} bytes; at most {BODY_LIMIT} are taken")
}

/// `response` with its connection closed: the unread body stays on the
/// connection, so close it rather than wait for (or read through) the
/// bytes announced.
pub(crate) fn close_after(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
