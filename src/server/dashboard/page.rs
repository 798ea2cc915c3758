//! The dashboard's pages: the login form, the refusal of a wrong login,
//! and the dashboard itself (plain HTML, one stylesheet and one small
//! script, both inline and allowed by a per-answer nonce in the
//! Content-Security-Policy: nothing else may load or run).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

const STYLE: &str = include_str!("dashboard.css");
const SCRIPT: &str = include_str!("dashboard.js");

/// A fresh nonce for one answer's inline style and script: 128 random
/// bits, base64.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    // Without randomness the nonce is still unguessable enough for a
    // loopback page only if it differs per answer: fall back to the time.
    if getrandom::fill(&mut bytes).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = t.to_le_bytes();
    }
    STANDARD.encode(bytes)
}

/// The policy of a page whose inline style (and script, when `script`)
/// carries `nonce`: nothing else loads, it may only fetch from its own
/// origin, post forms to it, and not be framed.
fn policy(nonce: &str, script: bool) -> String {
    let script = if script {
        format!("script-src 'nonce-{nonce}'; connect-src 'self'; ")
    } else {
        String::new()
    };
    format!(
        "default-src 'none'; {script}style-src 'nonce-{nonce}'; img-src data:; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// An HTML answer with its policy and headers that keep it out of caches
/// and frames.
fn html(status: StatusCode, policy: &str, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn document(title: &str, nonce: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<link rel=\"icon\" href=\"data:,\">\n\
         <style nonce=\"{nonce}\">\n{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )
}

/// The login form; `refused` adds why the last try was not let in.
pub fn login(status: StatusCode, refused: Option<&str>) -> Response {
    let nonce = nonce();
    let message = refused.map_or(String::new(), |why| {
        format!("<p id=\"error\" role=\"alert\">{why}</p>\n")
    });
    let body = format!(
        "<header><h1>nudge</h1><p class=\"meta\">dashboard login</p></header>\n{message}\
         <main>\n<form class=\"card login\" method=\"post\" action=\"/dashboard/login\">\n\
         <p><label for=\"user\">Name</label><br>\
         <input id=\"user\" name=\"user\" autocomplete=\"username\"></p>\n\
         <p><label for=\"password\">Password</label><br>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></p>\n\
         <p class=\"muted\">A name and password from <code>[dashboard.users]</code> in nudge.toml, \
         or no name and the admin token as the password.</p>\n\
         <p><button type=\"submit\">Log in</button></p>\n</form>\n</main>\n"
    );
    html(
        status,
        &policy(&nonce, false),
        document("nudge: log in", &nonce, &body),
    )
}

/// The dashboard page; its script reads `/dashboard/data.json` every
/// `refresh_secs` seconds.
pub fn dashboard(refresh_secs: u64, who: &str) -> Response {
    let nonce = nonce();
    let who = escape(who);
    let body = format!(
        "<header><h1>nudge</h1><p class=\"meta\"><span id=\"updated\">loading…</span> \
         · refreshes every {refresh_secs} s · {who}</p>\n\
         <form method=\"post\" action=\"/dashboard/logout\"><button type=\"submit\">Log out</button></form></header>\n\
         <p id=\"error\" role=\"alert\" hidden></p>\n\
         <main id=\"main\" data-refresh=\"{refresh_secs}\" data-refreshes=\"0\"></main>\n\
         <script nonce=\"{nonce}\">\n{SCRIPT}</script>\n"
    );
    html(
        StatusCode::OK,
        &policy(&nonce, true),
        document("nudge: dashboard", &nonce, &body),
    )
}

/// Text safe inside HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_page_has_its_own_nonce_in_its_policy() {
        let a = dashboard(10, "admin");
        let b = dashboard(10, "admin");
        let policy = |r: &Response| {
            r.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_ne!(policy(&a), policy(&b));
        assert!(policy(&a).starts_with("default-src 'none'; script-src 'nonce-"));
        assert!(!policy(&login(StatusCode::OK, None)).contains("script-src"));
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
