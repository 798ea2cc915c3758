//! How the public server answers: JSON errors for machines, plain HTML
//! pages for people (mobile first, inline CSS, no external asset).

use axum::http::{header, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;

/// The body of a machine's error.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct JsonError {
    /// What went wrong, for people.
    pub error: String,
    /// The field, header or parameter that is wrong, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A machine's error: `status` and `{"error": ..., "field": ...}` (the
/// field that is wrong, when one is).
pub fn json_error(status: StatusCode, error: String, field: Option<&str>) -> Response {
    let body = JsonError {
        error,
        field: field.map(str::to_string),
    };
    (status, Json(body)).into_response()
}

/// Text made safe to put in HTML, as element content or a quoted
/// attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The style every page shares: readable on a phone first.
pub const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:17px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
color:#1f2328;background:#f6f8fa}\
main{max-width:34rem;margin:0 auto;padding:1.5rem 1.25rem 3rem}\
h1{font-size:1.5rem;line-height:1.25;margin:.5rem 0 1rem}\
p{margin:.75rem 0}\
.card{background:#fff;border:1px solid #d0d7de;border-radius:12px;padding:1.25rem}\
label{display:block;font-weight:600;margin:1rem 0 .25rem}\
input[type=text],input[type=email],input[type=tel]{width:100%;font:inherit;\
padding:.7rem .8rem;border:1px solid #8c959f;border-radius:8px;background:#fff}\
input[aria-invalid=true]{border-color:#cf222e;background:#fff5f5}\
.check{display:flex;gap:.6rem;align-items:flex-start;font-weight:400}\
.check input{width:1.3rem;height:1.3rem;margin-top:.15rem}\
.error{color:#cf222e;font-size:.95rem;margin:.3rem 0 0}\
.hint{color:#59636e;font-size:.95rem}\
button{width:100%;font:inherit;font-weight:600;margin-top:1.5rem;padding:.85rem;\
border:0;border-radius:8px;background:#1f6feb;color:#fff;cursor:pointer}\
button:focus,input:focus{outline:3px solid #80b3ff;outline-offset:1px}";

/// A page for people: `title` as its heading, `body` (HTML, already
/// escaped where it holds input) inside a card.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{title}</title><style>{STYLE}</style></head>\
         <body><main><h1>{title}</h1><div class=\"card\">{body}</div></main></body></html>\n",
        title = escape(title),
    );
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// Whatever no route takes: JSON for the webhooks' paths, a page for people.
pub async fn not_found(uri: Uri) -> Response {
    if uri.path().starts_with("/v1/") {
        json_error(
            StatusCode::NOT_FOUND,
            format!("no route `{}`", uri.path()),
            None,
        )
    } else {
        page(
            StatusCode::NOT_FOUND,
            "This page does not exist",
            "<p>The address may be incomplete: links in our messages are long, \
             and some apps cut them. Open the link from the message again, or \
             reply to the message and we will send a fresh one.</p>",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
