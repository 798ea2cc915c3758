//! What the HTTP channels (Twilio, webhook) share: a client with a whole-
//! request timeout, and the classification of HTTP failures into
//! [`SendError`], decided here once:
//!
//! | what happened | classified |
//! |---|---|
//! | no response: connection refused, DNS, TLS, timeout | retryable |
//! | 429 with a usable `Retry-After` | throttled for that long |
//! | 429 without one, 408, any 5xx | retryable |
//! | any other status that is not a success | permanent |
//!
//! Error texts never hold the request URL (a webhook URL may carry a
//! token in its query) nor any header.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use super::{SendError, SettingProblem};

/// How much of an error response's body goes into the error text.
const EXCERPT_CHARS: usize = 300;

/// A client whose every request gives up after `timeout`.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("nudge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {}", chain(&e)))
}

/// A request that got no response. Building the request failing is a bug
/// or a bad setting, so permanent; everything else may pass.
pub(crate) fn transport_failure(e: reqwest::Error) -> SendError {
    let e = e.without_url();
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let why = format!("{what}: {}", chain(&e));
    if e.is_builder() {
        SendError::Permanent(why)
    } else {
        SendError::Retryable(why)
    }
}

/// A response whose status is not a success, by status alone.
pub(crate) fn status_failure(
    status: StatusCode,
    retry_after: Option<Duration>,
    why: String,
) -> SendError {
    match status.as_u16() {
        429 => match retry_after {
            Some(retry_after) => SendError::Throttled { why, retry_after },
            None => SendError::Retryable(why),
        },
        408 | 500..=599 => SendError::Retryable(why),
        _ => SendError::Permanent(why),
    }
}

/// The delay a `Retry-After` header asks for: whole seconds, or an HTTP
/// date (a date already past means "now"). `None` when absent or
/// unreadable.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?.to_utc();
    Some(
        (at - DateTime::<Utc>::from(now))
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// The start of a response body, on one line, for an error text.
pub(crate) fn excerpt(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// An error and its sources, `outer: inner: innermost` (reqwest's own
/// text is only the outermost layer).
pub(crate) fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// `text` as an absolute http(s) URL; with `base`, one that paths can be
/// added to.
pub fn parse_url(text: &str, base: bool) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || (base && url.cannot_be_a_base()) {
        return Err("is not an http or https URL".to_string());
    }
    Ok(url)
}

/// The problem with a channel's `timeout_secs`, if any.
pub fn timeout_problem(table: &str, timeout_secs: u64) -> Option<SettingProblem> {
    (timeout_secs == 0).then(|| {
        SettingProblem::new(
            &["timeout_secs"],
            format!("`{table}.timeout_secs` is 0"),
            "must be at least 1",
            "leave it out for the default",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            retry_after(&headers("120"), now),
            Some(Duration::from_secs(120))
        );
        // 2015-10-21T07:28:00Z is 1445412480.
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:30:00 GMT"), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn statuses() {
        let classify = |code: u16, after: Option<u64>| {
            status_failure(
                StatusCode::from_u16(code).unwrap(),
                after.map(Duration::from_secs),
                "x".into(),
            )
        };
        assert_eq!(
            classify(429, Some(7)),
            SendError::Throttled {
                why: "x".into(),
                retry_after: Duration::from_secs(7)
            }
        );
        assert_eq!(classify(429, None), SendError::Retryable("x".into()));
        assert_eq!(classify(503, Some(7)), SendError::Retryable("x".into()));
        assert_eq!(classify(408, None), SendError::Retryable("x".into()));
        assert_eq!(classify(400, None), SendError::Permanent("x".into()));
        assert_eq!(classify(401, None), SendError::Permanent("x".into()));
        assert_eq!(classify(404, None), SendError::Permanent("x".into()));
    }

    #[test]
    fn excerpts_are_short_and_on_one_line() {
        assert_eq!(excerpt("a\n  b\tc"), "a b c");
        let long = "é".repeat(400);
        assert_eq!(excerpt(&long).chars().count(), EXCERPT_CHARS + 1);
    }
}
