//! The OpenAPI description of both servers, served by the admin API at
//! `GET /v1/openapi.json` (with the token, as every admin route: the
//! admin API is never reachable without it; a tool such as schemathesis
//! passes it as a header).
//!
//! Each route file describes its own handlers (`#[utoipa::path]` beside
//! the handler, collected in a `Described` struct next to its router):
//! [`super::admin`], [`super::public::links`] and the webhooks. This file
//! puts them in one document with what they share: the security schemes
//! (the admin token; the webhooks' signatures), the servers (the admin
//! API is where the document was fetched; the public server is
//! `[server] public_url`), and the tags.
//!
//! [`AWAITED`] describes by hand, complete from issue 14's route table,
//! the routes whose code is written in other branches and not yet merged
//! here (the apply link, the ATS webhook, the batch import): a
//! description of its own in their file replaces the one here (the first
//! description of a path and method wins), and the entry is then taken
//! out of [`AWAITED`].
//!
//! Kept true by the integration test `openapi::` (`tests/it/openapi.rs`):
//! it reads every `.route(PATH, METHODS)` registration in `src/server/`
//! (a registration it cannot read fails it) and requires the set of
//! (method, path) to equal the document's, and it probes every
//! documented route on a real daemon, which must answer from a handler,
//! not from the router's fallback (404) or method check (405). A route
//! added without its description therefore fails the test, as does a
//! description left behind by a removed route.

use std::sync::OnceLock;

use serde_json::json;
use utoipa::openapi::path::PathItem;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::{Server, ServerBuilder, ServerVariableBuilder};
use utoipa::openapi::OpenApi as Document;
use utoipa::OpenApi;

use super::public::respond::JsonError;
use super::{refused, ErrorBody};
use crate::channels::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "nudge",
        description = "A campaign engine that invites applicants to interviews and follows up \
                       until they finish. Two servers: the admin API (`[admin] listen`, \
                       loopback, every request with `Authorization: Bearer TOKEN`; this \
                       document's own server) and the public server (`[server] listen`, \
                       reached at `[server] public_url`: candidates' pages and providers' \
                       webhooks, each protected by its own means)."
    ),
    // `ErrorBody` by name: the shared answers of `super::refused` refer to
    // it, and a response set brings no schema with it.
    components(schemas(JsonError, ErrorBody)),
    tags(
        (name = "admin", description = "The admin API: the CLI's way into a running daemon. \
                                        Errors are `{\"status\": N, \"message\": ...}`."),
        (name = "candidate pages", description = "On the public server: the addresses every \
                                                  message carries, for people. Answers are \
                                                  HTML pages."),
        (name = "webhooks", description = "On the public server: signals from providers, the \
                                           interview platform, ATSs and job boards. Errors are \
                                           `{\"error\": ..., \"field\": ...}`; a request that \
                                           fails its signature is 401 and stores nothing."),
        (name = "dashboard", description = "On the admin listener: the live dashboard, for \
                                            people in a browser (a login sets a session \
                                            cookie); its data also takes the admin token.")
    )
)]
struct Base;

/// The routes described here (in [`awaited`]) until their own file
/// describes them: (method, path).
pub const AWAITED: &[(&str, &str)] = &[];

/// The description of every route of both servers.
pub fn document() -> Document {
    let mut doc = Base::openapi();
    doc.merge(super::admin::Described::openapi());
    doc.merge(super::public::links::Described::openapi());
    doc.merge(super::public::webhooks::Described::openapi());
    doc.merge(super::dashboard::Described::openapi());
    doc.merge(super::metrics::Described::openapi());
    doc.merge(super::digest::Described::openapi());
    for (path, item) in awaited() {
        let item: PathItem = serde_json::from_value(item)
            .unwrap_or_else(|e| panic!("the description of {path} is not a path item: {e}"));
        doc.paths.paths.entry(path.to_string()).or_insert(item);
    }
    let public = public_server();
    for (path, item) in doc.paths.paths.iter_mut() {
        if !is_admin(path) {
            item.servers = Some(vec![public.clone()]);
        }
    }
    doc.servers = Some(vec![ServerBuilder::new()
        .url("/")
        .description(Some(
            "the admin API: where this document was fetched (`[admin] listen`)",
        ))
        .build()]);
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, scheme) in security_schemes() {
        components.add_security_scheme(name, scheme);
    }
    doc
}

/// [`document`] as JSON, made once.
pub fn json() -> String {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .expect("an OpenAPI document serializes")
    })
    .clone()
}

/// Whether `path` is the admin API's: its routes are under `/v1/`, apart
/// from the public server's webhooks, and `/metrics` is on its listener.
pub fn is_admin(path: &str) -> bool {
    (path.starts_with("/v1/") && !path.starts_with("/v1/webhooks/"))
        || path == "/metrics"
        || path == "/dashboard"
        || path.starts_with("/dashboard/")
}

fn public_server() -> Server {
    ServerBuilder::new()
        .url("{public_url}")
        .description(Some(
            "the public server: candidates' pages and providers' webhooks",
        ))
        .parameter(
            "public_url",
            ServerVariableBuilder::new()
                .default_value(crate::config::ServerConfig::default().public_url)
                .description(Some("`[server] public_url` in nudge.toml")),
        )
        .build()
}

fn security_schemes() -> Vec<(&'static str, SecurityScheme)> {
    let header = |name: &str, description: &str| {
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            name.to_string(),
            description.to_string(),
        )))
    };
    vec![
        (
            "dashboard_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::server::dashboard::session::COOKIE.to_string(),
                "the dashboard's session, set by `POST /dashboard/login`".to_string(),
            ))),
        ),
        (
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "the daemon's admin token (`nudge run` writes it beside the store)",
                    ))
                    .build(),
            ),
        ),
        (
            "interview_signature",
            header(
                SIGNATURE_HEADER,
                &format!(
                    "`v1=` and the hex HMAC-SHA256, under the secret `[webhooks] \
                     interview_secret_env` names, of `<{TIMESTAMP_HEADER}>.<body>`; \
                     `{TIMESTAMP_HEADER}` (Unix seconds) within `[webhooks] tolerance_secs` \
                     of now"
                ),
            ),
        ),
        (
            "twilio_signature",
            header(
                "X-Twilio-Signature",
                "Twilio's: base64 of HMAC-SHA1, under the Twilio channel's auth token, of \
                 the full URL posted to (`[server] public_url`, path and query) followed by \
                 each POST parameter's name and value, sorted by name",
            ),
        ),
        (
            "email_basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "the shared secret (`[webhooks] postmark_secret_env` or \
                         `sendgrid_secret_env`) as the password, any user name",
                    ))
                    .build(),
            ),
        ),
        (
            "email_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token".to_string(),
                "the same shared secret as `?token=SECRET`".to_string(),
            ))),
        ),
        (
            "ats_signature",
            header(
                "Signature",
                "per source, as its `[ats.SOURCE]` table says (`signature`, `header`, \
                 `secret_env`): Greenhouse's `Signature: sha256 <hex HMAC-SHA256 of the \
                 body>`, Indeed's `X-Indeed-Signature` (base64 HMAC-SHA1), Lever's token \
                 in the body, or a generic `X-Signature` HMAC-SHA256 or `Authorization` \
                 token",
            ),
        ),
    ]
}

/// The descriptions of the [`AWAITED`] routes, as issue 14's route table
/// and the admin API's table say them.
fn awaited() -> Vec<(&'static str, serde_json::Value)> {
    let json_error = |what: &str| {
        json!({ "description": what, "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/JsonError" } } } })
    };
    let admin_error = |what: &str| {
        json!({ "description": what, "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/ErrorBody" } } } })
    };
    let html = |what: &str| json!({ "description": what, "content": { "text/html": {} } });
    let campaign = json!({ "name": "campaign", "in": "path", "required": true,
        "description": "the campaign's name", "schema": { "type": "string" } });
    let source_word = json!({ "name": "source", "in": "query", "required": false,
        "description": "a word (letters, digits, `-`, `_`) that becomes the candidate's \
                        `source`, so a recruiter sees which post worked",
        "schema": { "type": "string" } });
    let admin_security = json!([{ "admin_token": [] }]);
    vec![
        (
            "/apply/{campaign}",
            json!({
                "get": {
                    "tags": ["candidate pages"],
                    "summary": "The shared apply link: a mobile-first form (name, email, \
                                phone, consent to texts) titled with the campaign's title.",
                    "parameters": [campaign, source_word],
                    "responses": {
                        "200": html("the form"),
                        "404": html("a page: no such campaign, or it is paused")
                    }
                },
                "post": {
                    "tags": ["candidate pages"],
                    "summary": "An application from the form: checked, put through the \
                                campaign's `where` filter, enrolled, and sent on to the \
                                applicant's own tracked link. The same email or phone twice \
                                is one candidate.",
                    "parameters": [campaign],
                    "requestBody": { "required": true, "content": {
                        "application/x-www-form-urlencoded": { "schema": {
                            "type": "object",
                            "properties": {
                                "name": { "type": "string" },
                                "email": { "type": "string" },
                                "phone": { "type": "string" },
                                "sms_consent": { "type": "string",
                                    "description": "present when they agree to texts" },
                                "source": { "type": "string",
                                    "description": "the link's `?source=`, carried by the form" }
                            }
                        } } } },
                    "responses": {
                        "303": { "description": "to the applicant's tracked link `/i/{token}`",
                            "headers": { "Location": { "schema": { "type": "string" } } } },
                        "200": html("a page: thanks (the `where` filter does not take them; \
                                     they are kept as a candidate)"),
                        "404": html("a page: no such campaign, or it is paused"),
                        "422": html("the form again, each mistake under its field, the input kept"),
                        "503": html("the form again: the store cannot be written now")
                    }
                }
            }),
        ),
        (
            "/v1/webhooks/ats/{source}",
            json!({
                "post": {
                    "tags": ["webhooks"],
                    "summary": "An application from an ATS or job board (`greenhouse`, \
                                `lever`, `indeed`, or a source mapped in nudge.toml's \
                                `[ats.SOURCE]`), signed; idempotent on the application's id.",
                    "security": [{ "ats_signature": [] }],
                    "parameters": [{ "name": "source", "in": "path", "required": true,
                        "description": "an `[ats.SOURCE]` table of nudge.toml",
                        "schema": { "type": "string" } }],
                    "requestBody": { "required": true, "content": { "application/json": {
                        "schema": { "type": "object", "description": "the source's payload, read by its mapping \
                                                    (JSON pointer → candidate field)" } } } },
                    "responses": {
                        "200": { "description": "the application taken (`ApplyResponse`), or \
                                                 `{\"ignored\": EVENT}` for an event that is \
                                                 not an application",
                            "content": { "application/json": { "schema": {
                                "$ref": "#/components/schemas/ApplyResponse" } } } },
                        "400": json_error("the body is not JSON"),
                        "401": json_error("the signature is missing or wrong; nothing is stored"),
                        "404": json_error("no such source"),
                        "413": json_error("the body is over the size limit"),
                        "422": json_error("the mapping finds no email address or phone number"),
                        "502": json_error("the source's API (Lever's) could not be read"),
                        "503": json_error("the store cannot be written now")
                    }
                }
            }),
        ),
        (
            "/v1/applied/batch",
            json!({
                "post": {
                    "tags": ["admin"],
                    "summary": "Many applications at once (`nudge import` through the \
                                daemon), each answered on its own, in order.",
                    "security": admin_security,
                    "requestBody": { "required": true, "content": { "application/json": {
                        "schema": { "type": "array",
                            "items": { "$ref": "#/components/schemas/ApplyRequest" } } } } },
                    "responses": {
                        "200": { "description": "per application, in order: `{\"ok\": \
                                                 ApplyResponse}` or `{\"refused\": {\"status\", \
                                                 \"message\"}}`",
                            "content": { "application/json": { "schema": { "type": "array",
                                "items": { "type": "object" } } } } },
                        "400": admin_error("not a list of applications, or too many"),
                        "401": refused::json::<refused::Unauthorized>(),
                        "413": refused::json::<refused::TooLarge>()
                    }
                }
            }),
        ),
        (
            "/v1/reviewed",
            json!({
                "get": {
                    "tags": ["admin"],
                    "summary": "The candidates an `import --review` left waiting for \
                                `nudge invite`.",
                    "security": admin_security,
                    "responses": {
                        "200": { "description": "the candidates waiting",
                            "content": { "application/json": { "schema": { "type": "array",
                                "items": { "type": "object" } } } } },
                        "401": refused::json::<refused::Unauthorized>(),
                        "503": refused::json::<refused::CannotRead>()
                    }
                }
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_awaited_routes_are_described_and_listed_alike() {
        let doc = document();
        for (method, path) in AWAITED {
            let item = doc
                .paths
                .paths
                .get(*path)
                .unwrap_or_else(|| panic!("{path}"));
            let described = match *method {
                "get" => item.get.is_some(),
                "post" => item.post.is_some(),
                other => panic!("{other}"),
            };
            assert!(described, "{method} {path}");
        }
    }

    #[test]
    fn every_reference_names_a_schema_of_the_document() {
        let text = json();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let schemas = &value["components"]["schemas"];
        let mut refs = Vec::new();
        collect_refs(&value, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{r}"));
            assert!(schemas.get(name).is_some(), "{r} is not in the document");
        }
    }

    fn collect_refs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", serde_json::Value::String(r)) => out.push(r.clone()),
                        _ => collect_refs(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }
}
