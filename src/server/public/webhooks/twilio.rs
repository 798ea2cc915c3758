//! Twilio's requests: inbound SMS and WhatsApp messages (`POST
//! /v1/webhooks/twilio`) and delivery status callbacks (`POST
//! /v1/webhooks/twilio/status?key=SEND_KEY`, the URL the Twilio channel
//! gives as `StatusCallback` when its `status_callback` is set).
//!
//! Both are form posts signed with `X-Twilio-Signature`: base64 of
//! HMAC-SHA1, under the account's auth token (the one the Twilio channel
//! of `[channels.sms]`, else `[channels.whatsapp]`, reads), of the full URL
//! Twilio posted to (`[server] public_url`, the path and the query) followed
//! by every POST parameter's name and value, sorted by name.
//!
//! An inbound message is from the candidates whose phone is its `From`
//! (E.164, `whatsapp:` taken off). Its text, trimmed and in any case:
//! STOP, STOPALL, UNSUBSCRIBE, CANCEL, END or QUIT is an `opted_out`
//! event (which puts the number on the suppression list); START, UNSTOP
//! or YES lifts the opt-out; HELP is answered with `[webhooks] sms_help`;
//! anything else is a `replied` event with the text in its field `text`.
//! The answer is TwiML. A message from a number no candidate has is
//! answered with empty TwiML and stores nothing.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::{refused, unauthorized, Rejection};
use crate::channels::secret::Secret;
use crate::channels::twilio::{callback_status, CallbackStatus};
use crate::channels::Transport;
use crate::engine::Channel;
use crate::runtime::api::{EventRequest, OptInRequest};
use crate::server::public::respond::{escape, JsonError};
use crate::server::public::PublicState;
use crate::store::Contact;

/// The header Twilio signs its requests with.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// Texts that opt out, as carriers and Twilio read them.
const STOP_WORDS: [&str; 6] = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];
/// Texts that opt back in.
const START_WORDS: [&str; 3] = ["START", "UNSTOP", "YES"];
/// Texts that ask who is writing.
const HELP_WORDS: [&str; 1] = ["HELP"];

/// `X-Twilio-Signature` for a request to `url` with the form `params`:
/// base64 of HMAC-SHA1 under `auth_token` of the URL followed by each
/// parameter's name and value, sorted by name (then value).
#[cfg(test)]
fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let digest = mac(auth_token, url, params).finalize().into_bytes();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// Whether `given` (the header) is the signature of the request, compared
/// in constant time.
fn verified(auth_token: &str, url: &str, params: &[(String, String)], given: &str) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(given.trim()) else {
        return false;
    };
    mac(auth_token, url, params).verify_slice(&given).is_ok()
}

/// The auth token of the Twilio channel (SMS first, else WhatsApp).
fn auth_token(state: &PublicState) -> Result<Secret, Rejection> {
    let channels = &state.config.channels;
    let twilio = [&channels.sms, &channels.whatsapp]
        .into_iter()
        .find_map(|t| match t {
            Transport::Twilio(cfg) => Some(cfg),
            _ => None,
        });
    let Some(cfg) = twilio else {
        return Err(Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this webhook is not set up: neither `[channels.sms]` nor `[channels.whatsapp]` \
             uses transport \"twilio\", whose auth token checks Twilio's signature",
            None,
        ));
    };
    Secret::from_env(&cfg.auth_token_env).map_err(|why| {
        Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("this webhook is not set up: {why}"),
            None,
        )
    })
}

/// The form's parameters, once the signature over them and `uri` checks.
fn signed_form(
    state: &PublicState,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<Vec<(String, String)>, Rejection> {
    let token = auth_token(state)?;
    let Some(given) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(unauthorized(
            format!("the `{SIGNATURE_HEADER}` header is missing"),
            Some(SIGNATURE_HEADER),
        ));
    };
    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let url = state.url(path);
    if !verified(token.expose(), &url, &params, given) {
        return Err(unauthorized(
            format!(
                "`{SIGNATURE_HEADER}` does not match this request to {url} under the Twilio \
                 channel's auth token (is `[server] public_url` the address Twilio posts to?)"
            ),
            Some(SIGNATURE_HEADER),
        ));
    }
    Ok(params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A TwiML answer: no reply, or one message.
fn twiml(reply: Option<&str>) -> Response {
    let body = match reply {
        Some(text) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
            escape(text)
        ),
        None => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".to_string(),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// What an inbound text asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    Stop,
    Start,
    Help,
    Reply,
}

fn intent(text: &str) -> Intent {
    let word = text.trim().to_uppercase();
    if STOP_WORDS.contains(&word.as_str()) {
        Intent::Stop
    } else if START_WORDS.contains(&word.as_str()) {
        Intent::Start
    } else if HELP_WORDS.contains(&word.as_str()) {
        Intent::Help
    } else {
        Intent::Reply
    }
}

/// The form Twilio posts for an inbound message (the parameters nudge
/// reads; Twilio sends more, and all of them are signed).
#[derive(utoipa::ToSchema)]
#[allow(non_snake_case, dead_code)]
#[schema(as = TwilioInbound)]
pub(super) struct Inbound {
    /// The sender: E.164, or `whatsapp:` and E.164.
    From: String,
    /// The text.
    Body: Option<String>,
    /// Twilio's id of the message: a retry is recorded once.
    MessageSid: Option<String>,
}

/// The form Twilio posts for a status callback (the parameters nudge reads).
#[derive(utoipa::ToSchema)]
#[allow(non_snake_case, dead_code)]
#[schema(as = TwilioStatus)]
pub(super) struct Status {
    /// `queued`, `sent`, `delivered`, `read`, `undelivered`, `failed`, ...
    /// (`SmsStatus` is read when this is absent).
    MessageStatus: String,
    MessageSid: Option<String>,
    ErrorCode: Option<String>,
}

/// `POST /v1/webhooks/twilio`: an inbound SMS or WhatsApp message.
#[utoipa::path(
    post,
    path = "/v1/webhooks/twilio",
    operation_id = "twilio_inbound",
    tag = "webhooks",
    security(("twilio_signature" = [])),
    request_body(content = Inbound, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "TwiML: empty, or the HELP text as a reply. STOP and the like record `opted_out`, START and the like opt back in, anything else is `replied`", content_type = "text/xml", body = String),
        (status = 400, description = "the form has no `From`", body = JsonError),
        (status = 401, description = "`X-Twilio-Signature` is missing or does not match; nothing is stored", body = JsonError),
        (status = 413, description = "the body is over the size limit", body = JsonError),
        (status = 503, description = "no Twilio channel is set up (its auth token checks the signature), or the store cannot be written now", body = JsonError)
    )
)]
pub(super) async fn inbound(
    State(state): State<PublicState>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, Rejection> {
    let params = signed_form(&state, &headers, &uri, &body)?;
    let Some(from) = param(&params, "From").filter(|f| !f.trim().is_empty()) else {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "the form has no `From`",
            Some("From"),
        ));
    };
    let text = param(&params, "Body").unwrap_or_default();
    let sid = param(&params, "MessageSid").or_else(|| param(&params, "SmsSid"));
    let (channel, number) = match from.trim().strip_prefix("whatsapp:") {
        Some(number) => (Channel::Whatsapp, number),
        None => (Channel::Sms, from.trim()),
    };
    let country = state.config.phone_country_code.clone().unwrap_or_default();
    let contact = Contact::phone(number, &country);
    let intent = intent(text);
    if intent == Intent::Help {
        return Ok(twiml(Some(&state.config.webhooks.sms_help)));
    }
    let handle = state.handle.clone();
    let lookup = contact.clone();
    let found = tokio::task::spawn_blocking(move || handle.candidates_at(&lookup)).await;
    let candidates = match found {
        Ok(Ok(c)) => c,
        Ok(Err(refusal)) => return Err(refused(&refusal, None)),
        Err(e) => {
            return Err(Rejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("looking the number up failed: {e}"),
                None,
            ))
        }
    };
    if candidates.is_empty() {
        tracing::info!(
            from = %contact.address,
            %channel,
            "inbound message from a number no candidate has: nothing recorded"
        );
        return Ok(twiml(None));
    }
    let id = sid.map(|sid| format!("twilio:{sid}"));
    for candidate in candidates {
        let outcome = match intent {
            Intent::Start => state
                .handle
                .opt_in(OptInRequest {
                    candidate: candidate.id.clone(),
                    via: format!(
                        "texted {} from {} by {channel}",
                        text.trim().to_uppercase(),
                        contact.address
                    ),
                    contact: Some(contact.address.clone()),
                    id: id.clone(),
                })
                .await
                .map(|_| ()),
            Intent::Stop | Intent::Reply => {
                let mut fields = BTreeMap::from([
                    ("channel".to_string(), channel.name().to_string()),
                    ("from".to_string(), contact.address.clone()),
                    ("text".to_string(), text.to_string()),
                ]);
                if let Some(sid) = sid {
                    fields.insert("message_sid".into(), sid.to_string());
                }
                let event = if intent == Intent::Stop {
                    crate::engine::step::OPTED_OUT
                } else {
                    "replied"
                };
                state
                    .handle
                    .event(EventRequest {
                        candidate: candidate.id.clone(),
                        event: event.to_string(),
                        at: None,
                        fields,
                        id: id.clone(),
                    })
                    .await
                    .map(|_| ())
            }
            Intent::Help => Ok(()),
        };
        outcome.map_err(|refusal| refused(&refusal, None))?;
    }
    Ok(twiml(None))
}

/// `POST /v1/webhooks/twilio/status?key=SEND_KEY`: a delivery status.
#[utoipa::path(
    post,
    path = "/v1/webhooks/twilio/status",
    operation_id = "twilio_status",
    tag = "webhooks",
    security(("twilio_signature" = [])),
    params(("key" = String, Query, description = "the send's key, as the Twilio channel's `StatusCallback` URL gives it")),
    request_body(content = Status, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "`{\"key\", \"status\", \"recorded\": false}` for a status that is neither delivered nor failed; else `delivered` or `failed` recorded for the send's candidate: `{\"key\", \"candidate\", \"event\", \"recorded\": true, \"effects\", \"repeated\"}`", body = Object),
        (status = 400, description = "no `key` in the URL, or no `MessageStatus` in the form", body = JsonError),
        (status = 401, description = "`X-Twilio-Signature` is missing or does not match; nothing is stored", body = JsonError),
        (status = 404, description = "no send has this key", body = JsonError),
        (status = 413, description = "the body is over the size limit", body = JsonError),
        (status = 503, description = "no Twilio channel is set up (its auth token checks the signature), or the store cannot be written now", body = JsonError)
    )
)]
pub(super) async fn status(
    State(state): State<PublicState>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, Rejection> {
    let params = match signed_form(&state, &headers, &uri, &body) {
        Ok(p) => p,
        Err(answer) => return Err(answer),
    };
    let key = uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(name, _)| name == "key")
            .map(|(_, v)| v.into_owned())
    });
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "the URL has no `key`: give Twilio the status callback URL the Twilio channel \
             makes (`status_callback`), which adds the send's key",
            Some("key"),
        ));
    };
    let Some(message_status) = param(&params, "MessageStatus").or(param(&params, "SmsStatus"))
    else {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "the form has no `MessageStatus`",
            Some("MessageStatus"),
        ));
    };
    let Some(meaning) = callback_status(message_status) else {
        return Ok((
            StatusCode::OK,
            Json(serde_json::json!({ "key": key, "status": message_status, "recorded": false })),
        )
            .into_response());
    };
    let send = match state.handle.send_of(&key) {
        Ok(Some(send)) => send,
        Ok(None) => {
            return Err(Rejection::new(
                StatusCode::NOT_FOUND,
                format!("no send has the key `{key}`"),
                Some("key"),
            ))
        }
        Err(refusal) => return Err(refused(&refusal, Some("key"))),
    };
    let event = match meaning {
        CallbackStatus::Delivered => "delivered",
        CallbackStatus::Failed => "failed",
    };
    let mut fields = BTreeMap::from([
        ("key".to_string(), key.clone()),
        ("channel".to_string(), send.channel.name().to_string()),
        ("status".to_string(), message_status.to_string()),
    ]);
    for (name, field) in [("MessageSid", "message_sid"), ("ErrorCode", "error_code")] {
        if let Some(value) = param(&params, name).filter(|v| !v.is_empty()) {
            fields.insert(field.to_string(), value.to_string());
        }
    }
    let request = EventRequest {
        candidate: send.candidate.clone(),
        event: event.to_string(),
        at: None,
        fields,
        // One `delivered` and one `failed` at most per send, whichever
        // statuses (`delivered`, then `read`) say so.
        id: Some(format!("twilio-status:{key}:{event}")),
    };
    let answer = state
        .handle
        .event(request)
        .await
        .map_err(|refusal| refused(&refusal, None))?;
    Ok((
        StatusCode::OK,
        Json(serde_json::json!({
            "key": key,
            "candidate": answer.candidate,
            "event": event,
            "recorded": true,
            "effects": answer.effects,
            "repeated": answer.repeated,
        })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_whole_texts_in_any_case() {
        assert_eq!(intent(" stop "), Intent::Stop);
        assert_eq!(intent("Quit"), Intent::Stop);
        assert_eq!(intent("unstop"), Intent::Start);
        assert_eq!(intent("YES"), Intent::Start);
        assert_eq!(intent("help"), Intent::Help);
        assert_eq!(intent("please stop"), Intent::Reply);
        assert_eq!(intent(""), Intent::Reply);
    }

    #[test]
    fn a_signature_covers_the_url_and_every_parameter() {
        let params = vec![
            ("To".to_string(), "+15550100001".to_string()),
            ("From".to_string(), "+15550100002".to_string()),
            ("Body".to_string(), "STOP".to_string()),
        ];
        let url = "https://jobs.example.com/v1/webhooks/twilio";
        let sig = signature("token", url, &params);
        assert!(verified("token", url, &params, &sig));
        assert!(!verified("other", url, &params, &sig));
        assert!(!verified(
            "token",
            "https://jobs.example.com/v1/webhooks/twilio?x=1",
            &params,
            &sig
        ));
        let mut changed = params.clone();
        changed[2].1 = "START".into();
        assert!(!verified("token", url, &changed, &sig));
        assert!(!verified("token", url, &params, "not base64!"));
    }
}
