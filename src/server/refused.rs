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

/// A type per answer: each `Name(STATUS, "description");` is a type whose
/// one response has that status and description and the body
/// [`ErrorBody`].
macro_rules! answers {
    ($($(#[$doc:meta])* $name:ident($status:tt, $description:tt);)+) => {
        $(
            $(#[$doc])*
            #[derive(IntoResponses)]
            #[response(status = $status, description = $description)]
            pub struct $name(pub ErrorBody);
        )+
    };
}

answers! {
    /// No token, or a wrong one.
    Unauthorized(401, "no token, or not the daemon's");
    /// A JSON body that is not the route's request, or a wrong field.
    BadBody(
        400,
        "the body is not this request (not JSON, a field missing, an unknown field) or a field is wrong"
    );
    /// A report query ([`crate::report::query`]) with a key or value
    /// that is not the report's.
    BadQuery(400, "a query key that is not the report's, or a bad value");
    /// The campaign or candidate named is not known.
    NotFound(404, "no such campaign or candidate");
    /// The runtime refuses in the state things are in.
    Conflict(
        409,
        "refused in this state (opted out, an ambiguous candidate, the `where` filter does not take them, ...)"
    );
    /// A body over [`super::BODY_LIMIT`].
    TooLarge(413, "the body is over the size limit");
    /// From a route that writes, or reads beside the writer: the store is
    /// in trouble.
    CannotWrite(503, "the store cannot be written now; try again later");
    /// From a route that only reads.
    CannotRead(503, "the store cannot be read now");
}

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

/// The one response of answer `T`, as JSON: for the routes
/// [`super::openapi`] describes by hand.
pub(crate) fn json<T: IntoResponses>() -> serde_json::Value {
    let responses = T::responses();
    let mut all = responses.values();
    match (all.next(), all.next()) {
        (Some(response), None) => serde_json::to_value(response).expect("a response serializes"),
        _ => panic!("one response expected, got {}", responses.len()),
    }
}
