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

use std::borrow::Cow;
use std::error::Error as _;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use super::{Bounds, PlainHttp, SendError, SettingProblem};

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

/// The seconds an HTTP channel's request may take (`timeout_secs`): at
/// least 1, as 0 would fail every send; at most 300, since a request takes
/// one of the channel's `concurrency` places while it waits, and an API
/// that has not answered in five minutes is better tried again.
pub const TIMEOUT_SECS: Bounds = Bounds::new(1, 300);

/// The problem with a channel's `timeout_secs`, if any; `default` is the
/// channel's.
pub fn timeout_problem(table: &str, timeout_secs: u64, default: u64) -> Option<SettingProblem> {
    TIMEOUT_SECS.check(
        table,
        "timeout_secs",
        timeout_secs,
        &format!("the default, {default}"),
    )
}

/// Whether `url` goes to this machine: `localhost`, 127.0.0.0/8 or `::1`.
pub fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The problem with `url`, the setting `key` of `table`, when it is plain
/// `http://` to another machine and `plain_http` does not allow it;
/// `travels` says what would go in clear ("the auth token and the
/// messages").
pub fn plain_http_problem(
    table: &str,
    key: &str,
    url: &reqwest::Url,
    plain_http: PlainHttp,
    travels: &str,
) -> Option<SettingProblem> {
    if url.scheme() != "http" || plain_http == PlainHttp::Allowed || is_loopback(url) {
        return None;
    }
    let host = url.host_str().unwrap_or_default();
    Some(SettingProblem {
        key: vec![key.to_string()],
        message: format!(
            "`{table}.{key}` is plain http to `{host}`: {travels} would cross the network in clear"
        ),
        label: Cow::Borrowed("not https, and not this machine"),
        help: Cow::Owned(format!(
            "use https://, or, if every network between is trusted, \
             write plain_http = \"allowed\" in [{table}]"
        )),
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
    fn loopback_hosts() {
        let url = |text: &str| reqwest::Url::parse(text).unwrap();
        for here in [
            "http://127.0.0.1:9/x",
            "http://127.1.2.3/",
            "http://[::1]:8080/",
            "http://localhost/",
            "http://LOCALHOST:1/",
        ] {
            assert!(is_loopback(&url(here)), "{here}");
        }
        for there in [
            "http://10.0.0.1/",
            "http://[::2]/",
            "http://localhost.example.com/",
            "http://api.twilio.com/",
        ] {
            assert!(!is_loopback(&url(there)), "{there}");
        }
        let plain = url("http://api.example.com/");
        let problem = |p| plain_http_problem("channels.sms", "base_url", &plain, p, "it");
        assert!(problem(PlainHttp::Refused).is_some());
        assert!(problem(PlainHttp::Allowed).is_none());
        let secure = url("https://api.example.com/");
        assert!(plain_http_problem("t", "url", &secure, PlainHttp::Refused, "it").is_none());
    }

    #[test]
    fn excerpts_are_short_and_on_one_line() {
        assert_eq!(excerpt("a\n  b\tc"), "a b c");
        let long = "é".repeat(400);
        assert_eq!(excerpt(&long).chars().count(), EXCERPT_CHARS + 1);
    }
}
