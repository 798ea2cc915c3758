//! The tracked link (`GET /i/{token}`), the open pixel (`GET
//! /o/{token}.gif`) and unsubscribe (`GET`/`POST /u/{token}`): the
//! addresses every message carries, one token per candidate.
//!
//! - **The tracked link** records `clicked` with `device` (`mobile`,
//!   `tablet` or `desktop`, from the User-Agent) and redirects (302) to
//!   the interview: the candidate's campaign's `link` setting, else
//!   `interview_url`, with `{token}`, `{candidate}` and `{campaign}`
//!   filled in ([`crate::runtime::links::interview_campaign`] says which
//!   campaign, for a candidate in several). With neither, a page of
//!   nudge's own says the link works and the interview is not connected
//!   yet. The click is best effort: a store that cannot record it is
//!   logged, and the candidate still goes on to the interview; a
//!   candidate who opted out does too. A known robot (a link preview, a
//!   crawler) and a `HEAD` request are redirected without a click.
//! - **The open pixel** records `opened` and always answers the same 1x1
//!   transparent GIF, uncached, whatever the token: the answer says
//!   nothing about which tokens exist.
//! - **Unsubscribe**: `GET` shows a page with the company's name and a
//!   button and records nothing (mail scanners open links); `POST` (the
//!   button, or RFC 8058 one-click from the `List-Unsubscribe` header,
//!   whatever its body) records `opted_out` with `via` = `page` or
//!   `one-click`, once: a candidate already opted out is not recorded
//!   again, and both get the confirmation. An opt-out the store cannot
//!   record is said plainly (503), so the candidate or their mail
//!   provider tries again.
//!
//! A token is the whole secret: only a token finds a candidate here (not
//! an id or an external id), and an unknown one gets a friendly 404 page.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tracing::{info, warn};

use super::respond::{escape, page};
use super::PublicState;
use crate::config::fill_link;
use crate::runtime::api::EventRequest;
use crate::runtime::links::Linked;
use crate::runtime::refusal::Refusal;

pub(super) fn routes() -> Router<PublicState> {
    Router::new()
        .route("/i/{token}", get(click))
        .route("/o/{file}", get(open))
        .route("/u/{token}", get(unsubscribe_page).post(unsubscribe))
}

/// How long a page waits for its event to be recorded before it answers
/// anyway (the click and the open) or says it could not (unsubscribe).
const RECORD_WAIT: Duration = Duration::from_secs(5);

// ------------------------------------------------------------ the device

/// The kind of device a request came from, as `clicked`'s `device` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Mobile,
    Tablet,
    Desktop,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Desktop => "desktop",
        }
    }

    /// The device a User-Agent names; `None` for a known robot (a
    /// crawler, a link preview). woothee sorts agents into `pc`,
    /// `smartphone`, `mobilephone`, `appliance`, `crawler` and `misc`, and
    /// knows the link previews of iMessage, Facebook, Slack, Telegram,
    /// Discord and LinkedIn as crawlers; WhatsApp's (`WhatsApp/2...`, a
    /// preview: a person's tap opens a browser) it does not know, and is
    /// added here. Tablets are among its smartphones and are told apart
    /// here: an iPad,
    /// a Kindle, and an Android device whose agent lacks `Mobile` (Android
    /// browsers put `Mobile` in a phone's agent and leave it out of a
    /// tablet's). An agent it cannot place (or none) counts as a desktop.
    /// An iPad set to request desktop sites says it is a Mac, and is one
    /// here.
    pub fn of(user_agent: &str) -> Option<Device> {
        if user_agent.starts_with("WhatsApp/") {
            return None;
        }
        let Some(parsed) = woothee::parser::Parser::new().parse(user_agent) else {
            return Some(Device::Desktop);
        };
        let tablet = || {
            parsed.os == "iPad"
                || user_agent.contains("iPad")
                || user_agent.contains("Kindle")
                || user_agent.contains("Silk/")
                || (user_agent.contains("Android") && !user_agent.contains("Mobile"))
        };
        match parsed.category {
            "crawler" => None,
            "smartphone" | "mobilephone" if tablet() => Some(Device::Tablet),
            "smartphone" | "mobilephone" => Some(Device::Mobile),
            _ => Some(Device::Desktop),
        }
    }
}

// ------------------------------------------------------- finding a token

/// The path's one segment (a token, or the pixel's file name). One that
/// does not decode (bad percent-encoding) is empty, and finds no one: the
/// answer is the page (or the GIF) any unknown token gets.
struct Token(String);

impl<S: Send + Sync> FromRequestParts<S> for Token {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let segment = Path::<String>::from_request_parts(parts, state).await;
        Ok(Token(segment.map(|Path(s)| s).unwrap_or_default()))
    }
}

/// The candidate a token names, read off the core's thread; the store's
/// error when it cannot be read.
async fn find(state: &PublicState, token: String) -> Result<Option<Linked>, Refusal> {
    let handle = state.handle.clone();
    tokio::task::spawn_blocking(move || handle.linked(&token))
        .await
        .map_err(|e| Refusal::Internal(e.to_string()))?
}

/// Records `event` for the candidate, waiting at most [`RECORD_WAIT`].
async fn record(
    state: &PublicState,
    candidate: &str,
    event: &str,
    fields: BTreeMap<String, String>,
) -> Result<(), Refusal> {
    let request = EventRequest {
        candidate: candidate.to_string(),
        event: event.to_string(),
        fields,
        ..Default::default()
    };
    match tokio::time::timeout(RECORD_WAIT, state.handle.event(request)).await {
        Ok(answer) => answer.map(|_| ()),
        Err(_) => Err(Refusal::StoreTrouble(format!(
            "the store did not record it within {} s",
            RECORD_WAIT.as_secs()
        ))),
    }
}

/// Nothing may keep a copy: each open and click is its own request.
fn no_cache(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache, must-revalidate, max-age=0"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::EXPIRES, HeaderValue::from_static("0"));
}

/// The page of a token that finds no one.
fn unknown_link() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "This link does not work",
        "<p>We could not find an interview for this link. It may have been \
         cut short: links in our messages are long, and some apps shorten \
         them.</p><p>Open the link from the message again, or reply to the \
         message and we will send a fresh one.</p>",
    )
}

// ------------------------------------------------------- the tracked link

async fn click(
    State(state): State<PublicState>,
    Token(token): Token,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let linked = match find(&state, token.clone()).await {
        Ok(Some(linked)) => linked,
        Ok(None) => return unknown_link(),
        Err(e) => {
            // The store cannot be read just now: the candidate still goes
            // on, to the default interview address if there is one.
            warn!(error = %e, "a tracked link was opened while the store could not be read; redirecting without recording the click");
            return match &state.config.interview_url {
                Some(pattern) => {
                    let candidate = token.rsplit_once('-').map_or("", |(id, _)| id);
                    redirect(&fill_link(pattern, &token, candidate, ""))
                }
                None => page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Please try again in a minute",
                    "<p>We could not open your interview just now. Please \
                     open the link again in a minute.</p>",
                ),
            };
        }
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let device = Device::of(user_agent);
    match device {
        Some(device) if method != Method::HEAD => {
            let fields = BTreeMap::from([("device".to_string(), device.as_str().to_string())]);
            match record(&state, &linked.candidate, "clicked", fields).await {
                Ok(()) => info!(
                    candidate = %linked.candidate,
                    device = device.as_str(),
                    "tracked link clicked"
                ),
                Err(e) => warn!(
                    candidate = %linked.candidate,
                    error = %e,
                    "tracked link clicked; the click was not recorded"
                ),
            }
        }
        _ => {}
    }
    let pattern = linked
        .link
        .as_deref()
        .or(state.config.interview_url.as_deref());
    match pattern {
        Some(pattern) => redirect(&fill_link(
            pattern,
            &linked.token,
            &linked.candidate,
            linked.campaign.as_deref().unwrap_or(""),
        )),
        None => page(
            StatusCode::OK,
            "Your interview link works",
            "<p>The recruiter has not connected the interview to it yet, so \
             there is nothing to start here for now.</p><p>Keep the message: \
             this same link will take you to the interview once it is \
             ready.</p>",
        ),
    }
}

/// A 302 to `to`, not to be cached (every click is counted).
fn redirect(to: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(to) else {
        // `link_pattern_problem` keeps spaces and control characters out
        // of configured addresses, and filled values are percent-encoded.
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "This link cannot open the interview",
            "<p>The interview address is not valid. Please reply to the \
             message so the recruiter can fix it.</p>",
        );
    };
    let mut response = (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    no_cache(&mut response);
    response
}

// -------------------------------------------------------- the open pixel

/// A 1x1 GIF whose one pixel is transparent: GIF89a, a two-colour table,
/// a graphic control extension marking colour 0 transparent, and one
/// LZW-coded pixel of colour 0.
pub const PIXEL: [u8; 43] = [
    b'G', b'I', b'F', b'8', b'9', b'a', // signature and version
    1, 0, 1, 0, // width 1, height 1
    0x80, 0, 0, // a global colour table of 2 entries
    0, 0, 0, 0xff, 0xff, 0xff, // black, white
    0x21, 0xf9, 4, 1, 0, 0, 0, 0, // colour 0 is transparent
    0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, // the image: at 0,0, 1x1
    2, 2, 0x44, 1, 0,    // LZW minimum code size 2, one block: clear, 0, end
    b';', // trailer
];

async fn open(State(state): State<PublicState>, Token(file): Token, method: Method) -> Response {
    if let (Some(token), false) = (file.strip_suffix(".gif"), method == Method::HEAD) {
        match find(&state, token.to_string()).await {
            Ok(Some(linked)) => {
                if let Err(e) = record(&state, &linked.candidate, "opened", BTreeMap::new()).await {
                    warn!(candidate = %linked.candidate, error = %e, "an email was opened; the open was not recorded");
                }
            }
            Ok(None) => {}
            Err(e) => warn!(error = %e, "an email was opened while the store could not be read"),
        }
    }
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"))],
        PIXEL.as_slice(),
    )
        .into_response();
    no_cache(&mut response);
    response
}

// ------------------------------------------------------------ unsubscribe

async fn unsubscribe_page(State(state): State<PublicState>, Token(token): Token) -> Response {
    let company = escape(&state.config.company);
    match find(&state, token).await {
        Ok(Some(linked)) if linked.opted_out => unsubscribed(&company),
        Ok(Some(_)) => page(
            StatusCode::OK,
            "Unsubscribe",
            &format!(
                "<p>Stop all messages from {company} about your job \
                 application?</p><form method=\"post\"><button \
                 type=\"submit\">Unsubscribe</button></form><p class=\"hint\">You \
                 will get no more emails or texts from {company} about it.</p>"
            ),
        ),
        Ok(None) => unknown_link(),
        Err(e) => {
            warn!(error = %e, "an unsubscribe page was opened while the store could not be read");
            not_now()
        }
    }
}

async fn unsubscribe(
    State(state): State<PublicState>,
    Token(token): Token,
    body: Bytes,
) -> Response {
    let company = escape(&state.config.company);
    let linked = match find(&state, token).await {
        Ok(Some(linked)) => linked,
        Ok(None) => return unknown_link(),
        Err(e) => {
            warn!(error = %e, "an unsubscribe could not be read from the store");
            return not_now();
        }
    };
    if linked.opted_out {
        return unsubscribed(&company);
    }
    // RFC 8058: a mail provider's one-click POST carries this pair, form
    // or multipart encoded; the page's button carries nothing.
    let one_click = body
        .windows(b"List-Unsubscribe=One-Click".len())
        .any(|w| w == b"List-Unsubscribe=One-Click");
    let via = if one_click { "one-click" } else { "page" };
    let fields = BTreeMap::from([("via".to_string(), via.to_string())]);
    match record(&state, &linked.candidate, "opted_out", fields).await {
        Ok(()) => {
            info!(candidate = %linked.candidate, via, "unsubscribed");
            unsubscribed(&company)
        }
        Err(e) => {
            warn!(candidate = %linked.candidate, error = %e, "an unsubscribe could not be recorded");
            not_now()
        }
    }
}

/// The confirmation (also for a candidate who had opted out already).
fn unsubscribed(company: &str) -> Response {
    page(
        StatusCode::OK,
        "You are unsubscribed",
        &format!(
            "<p>{company} will not send you any more messages about your job \
             application.</p><p class=\"hint\">Your interview link still \
             works if you want to finish it.</p>"
        ),
    )
}

/// An unsubscribe the store cannot take now.
fn not_now() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "We could not unsubscribe you just now",
        "<p>Something went wrong on our side and your request was not \
         saved. Please try again in a few minutes.</p>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_told_apart_by_their_user_agents() {
        let cases = [
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", Some(Device::Mobile)),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", Some(Device::Mobile)),
            ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", Some(Device::Tablet)),
            ("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", Some(Device::Tablet)),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", Some(Device::Desktop)),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", Some(Device::Desktop)),
            ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", Some(Device::Desktop)),
            ("", Some(Device::Desktop)),
            ("curl/8.5.0", Some(Device::Desktop)),
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", None),
            // In-app browsers are people; link previews are not.
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 325.0.0.35.91", Some(Device::Mobile)),
            ("Mozilla/5.0 (Linux; Android 14; SM-S918B; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/460.0.0.48.109;]", Some(Device::Mobile)),
            ("Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/108.4.6 like Chrome/108.0.5359.220 Safari/537.36", Some(Device::Tablet)),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0", None),
            ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", None),
            ("WhatsApp/2.23.20.0 A", None),
        ];
        for (agent, device) in cases {
            assert_eq!(Device::of(agent), device, "{agent}");
        }
    }

    #[test]
    fn the_pixel_is_a_one_by_one_gif() {
        assert_eq!(&PIXEL[..6], b"GIF89a");
        assert_eq!(u16::from_le_bytes([PIXEL[6], PIXEL[7]]), 1);
        assert_eq!(u16::from_le_bytes([PIXEL[8], PIXEL[9]]), 1);
        assert_eq!(PIXEL[PIXEL.len() - 1], b';');
    }
}
