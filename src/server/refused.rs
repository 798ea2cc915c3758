//! The error answers the admin listener's routes describe in their
//! `#[utoipa::path]` (the admin API, the digest, the metrics and the
//! dashboard's data): each worded once here, as a type the OpenAPI
//! document reads its response from, and gathered into the sets the
//! routes name, so two routes that can fail the same ways say so in the
//! same words. Every one has the body [`ErrorBody`] (`{"status", "message"}`).
//!
//! An answer only one route gives (the digest's 404, the export's bad
//! date) stays in that route's own `responses(...)`.

use std::collections::BTreeMap;

use utoipa::openapi::response::Response;
use utoipa::openapi::RefOr;
use utoipa::IntoResponses;

use super::ErrorBody;

/// 401: no token, or a wrong one.
#[derive(IntoResponses)]
#[response(status = 401, description = "no token, or not the daemon's")]
pub struct Unauthorized(pub ErrorBody);

/// 400: a JSON body that is not the route's request, or a wrong field.
#[derive(IntoResponses)]
#[response(
    status = 400,
    description = "the body is not this request (not JSON, a field missing, an unknown field) or a field is wrong"
)]
pub struct BadBody(pub ErrorBody);

/// 400: a report query ([`crate::report::query`]) with a key or value
/// that is not the report's.
#[derive(IntoResponses)]
#[response(
    status = 400,
    description = "a query key that is not the report's, or a bad value"
)]
pub struct BadQuery(pub ErrorBody);

/// 404: the campaign or candidate named is not known.
#[derive(IntoResponses)]
#[response(status = 404, description = "no such campaign or candidate")]
pub struct NotFound(pub ErrorBody);

/// 409: the runtime refuses in the state things are in.
#[derive(IntoResponses)]
#[response(
    status = 409,
    description = "refused in this state (opted out, an ambiguous candidate, the `where` filter does not take them, ...)"
)]
pub struct Conflict(pub ErrorBody);

/// 413: a body over [`super::BODY_LIMIT`].
#[derive(IntoResponses)]
#[response(status = 413, description = "the body is over the size limit")]
pub struct TooLarge(pub ErrorBody);

/// 503 from a route that writes, or reads beside the writer: the store
/// is in trouble.
#[derive(IntoResponses)]
#[response(
    status = 503,
    description = "the store cannot be written now; try again later"
)]
pub struct CannotWrite(pub ErrorBody);

/// 503 from a route that only reads.
#[derive(IntoResponses)]
#[response(status = 503, description = "the store cannot be read now")]
pub struct CannotRead(pub ErrorBody);

/// A set of the answers above: `set!(Name: A, B, ...)` is a type whose
/// responses are those of A, B, ...
macro_rules! set {
    ($(#[$doc:meta])* $name:ident: $($member:ty),+) => {
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                let mut all = BTreeMap::new();
                $(all.extend(<$member as IntoResponses>::responses());)+
                all
            }
        }
    };
}

set!(
    /// A command with a JSON body that names a campaign or candidate and
    /// may be refused (enroll, applied, events).
    Command: BadBody, NotFound, Conflict, TooLarge, Unauthorized, CannotWrite
);
set!(
    /// A request with a JSON body that names no one (the suppression
    /// list's changes, a backup).
    Posted: BadBody, TooLarge, Unauthorized, CannotWrite
);
set!(
    /// A request on a campaign or candidate named in its path or query.
    Named: NotFound, Unauthorized, CannotWrite
);
set!(
    /// A candidate looked up by what a person typed, which may be
    /// several candidates' (`nudge show`).
    Lookup: NotFound, Conflict, Unauthorized, CannotWrite
);
set!(
    /// A request the runtime may refuse as a whole (reload).
    Refusable: Conflict, Unauthorized, CannotWrite
);
set!(
    /// A read beside the writer with nothing to name (the suppression
    /// list).
    Listed: Unauthorized, CannotWrite
);
set!(
    /// A read of the store under the report's query (`/v1/report` and
    /// its charts).
    Report: BadQuery, Unauthorized, CannotRead
);
set!(
    /// A read of the store that takes nothing (metrics, the digest).
    Read: Unauthorized, CannotRead
);
