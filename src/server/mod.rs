//! Inbound HTTP. Today the admin API on loopback; the public front door
//! (tracked links, the open pixel, unsubscribe, webhooks) joins it later as
//! its own router beside this one.
//!
//! What every router shares lives here: the error answer's JSON shape, and
//! [`guard`], which bounds what a request may make the daemon read.

pub mod admin;
pub mod openapi;
pub mod public;

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
    // hyper has already refused a `Content-Length` that is not a number.
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > BODY_LIMIT as u64 => {
            let message =
                format!("the request body is {length} bytes; at most {BODY_LIMIT} are taken");
            let mut response = error_response(StatusCode::PAYLOAD_TOO_LARGE, message);
            // The unread body stays on the connection: close it rather
            // than wait for (or read through) the bytes announced.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        _ => next.run(request).await,
    }
}
