//! Signals from outside through the real daemon's public server: the
//! interview platform's signed events, Twilio's inbound messages and status
//! callbacks (with a loopback Twilio-compatible server taking the SMS the
//! daemon sends), and Postmark's and SendGrid's email events from the
//! sample payloads in `tests/fixtures/webhooks/`.
//!
//! Signatures are computed here with the `hmac`, `sha1` and `sha2` crates
//! directly, not with nudge's own code.

use crate::support::site::{self, wait_for, Daemon};
use crate::support::{self, repo, stderr};

use std::process::Output;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

const TWILIO_TOKEN_ENV: &str = "NUDGE_TEST_HOOKS_TWILIO_TOKEN";
const TWILIO_TOKEN: &str = "twilio-auth-token-0123";
const INTERVIEW_ENV: &str = "NUDGE_TEST_HOOKS_INTERVIEW_SECRET";
const INTERVIEW_SECRET: &str = "whsec_interview_platform";
const POSTMARK_ENV: &str = "NUDGE_TEST_HOOKS_POSTMARK_SECRET";
const POSTMARK_SECRET: &str = "pm-hook-pass";
const SENDGRID_ENV: &str = "NUDGE_TEST_HOOKS_SENDGRID_SECRET";
const SENDGRID_SECRET: &str = "sg-hook-pass";

/// Virtual seconds per real second: the window below opens twelve real
/// seconds after the daemon starts (at 08:00), time enough for a loaded
/// machine to enroll and text STOP before it.
const SPEED: u32 = 600;

/// `texts`: an SMS invite, held until the window opens at 10:00 (the clock
/// starts at 08:00). `again`: an SMS at once, for a second enrollment.
const CAMPAIGNS: &str = r#"campaign texts {
  title    "Texts"
  channels sms
  timezone "UTC"
  window   mon-sun 10:00-20:00
  goal     completed

  state invited {
    send "invite"
    on completed -> done
    after 72h -> done
  }

  state done {
    end
  }
}
"#;

const AGAIN: &str = r#"campaign again {
  title    "Again"
  channels sms, email
  goal     completed

  state invited {
    send "again"
    on completed -> done
    on clicked -> done
    after 72h -> done
  }

  state done {
    end
  }
}
"#;

/// A site whose SMS go to a Twilio-compatible server at `twilio_url`,
/// email to a file, with every webhook's secret configured.
struct Hooks {
    site: site::Site,
    runtime: tokio::runtime::Runtime,
    twilio: Option<support::Server>,
}

impl Hooks {
    fn new() -> Hooks {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let twilio = runtime.block_on(support::Server::start(support::Reply::json(
            201,
            json!({ "sid": "SM0001", "status": "queued" }),
        )));
        let site = site::Site::empty();
        let (port, public) = (site.port, site.public_port);
        site.write(
            "nudge.toml",
            &format!(
                r#"store = "data"
campaigns = "campaigns"
templates = "templates"
interview_url = "https://interview.example/i/{{token}}"
phone_country_code = "1"

[admin]
listen = "127.0.0.1:{port}"

[server]
listen = "127.0.0.1:{public}"
public_url = "http://127.0.0.1:{public}"

[channels.sms]
transport = "twilio"
base_url = "{twilio}"
account_sid = "AC0123"
auth_token_env = "{TWILIO_TOKEN_ENV}"
from = "+14155238886"
status_callback = "http://127.0.0.1:{public}/v1/webhooks/twilio/status"

[channels.email]
transport = "file"
path = "out/email.jsonl"

[runtime]
catch_up_secs = 2592000

[webhooks]
interview_secret_env = "{INTERVIEW_ENV}"
postmark_secret_env = "{POSTMARK_ENV}"
sendgrid_secret_env = "{SENDGRID_ENV}"
sms_help = "Acme Jobs: texts about your application. Reply STOP to stop."
"#,
                twilio = twilio.url()
            ),
        );
        site.write("campaigns/texts.nudge", CAMPAIGNS);
        site.write("campaigns/again.nudge", AGAIN);
        site.write(
            "templates/invite.sms.j2",
            "Acme: your interview {{ link }} Reply STOP to opt out\n",
        );
        site.write(
            "templates/again.sms.j2",
            "Acme: welcome back {{ link }} Reply STOP to opt out\n",
        );
        site.write(
            "templates/again.email.j2",
            "Subject: Your interview\n\nHello, your link: {{ link }}\n",
        );
        Hooks {
            site,
            runtime,
            twilio: Some(twilio),
        }
    }

    fn twilio(&self) -> &support::Server {
        self.twilio.as_ref().unwrap()
    }

    /// SMS the fake Twilio received for `number`.
    fn texts_to(&self, number: &str) -> Vec<Vec<(String, String)>> {
        self.twilio()
            .received()
            .iter()
            .map(|r| r.form())
            .filter(|form| form.iter().any(|(k, v)| k == "To" && v == number))
            .collect()
    }

    fn start(&self) -> Daemon {
        let real_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let clock = format!("2026-12-01T08:00:00Z@{real_ms}*{SPEED}");
        self.site.start_with(
            &["run", "--clock", &clock],
            |c| {
                c.env(TWILIO_TOKEN_ENV, TWILIO_TOKEN)
                    .env(INTERVIEW_ENV, INTERVIEW_SECRET)
                    .env(POSTMARK_ENV, POSTMARK_SECRET)
                    .env(SENDGRID_ENV, SENDGRID_SECRET);
            },
            &[": running"],
        )
    }

    fn nudge(&self, args: &[&str]) -> Output {
        self.site.nudge(args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.site.ok(args)
    }

    fn enroll(&self, campaign: &str, id: &str, field: &str, value: &str) -> Value {
        let out = self.ok(&[
            "enroll",
            "--campaign",
            campaign,
            "--id",
            id,
            &format!("--{field}"),
            value,
            "--json",
        ]);
        serde_json::from_str(&out).unwrap()
    }

    fn show(&self, who: &str) -> Value {
        serde_json::from_str(&self.ok(&["show", who, "--json"])).unwrap()
    }

    /// The `text` of each line of `who`'s timeline of kind `kind`.
    fn timeline(&self, who: &str, kind: &str) -> Vec<String> {
        self.show(who)["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["kind"] == kind)
            .map(|l| l["text"].as_str().unwrap().to_string())
            .collect()
    }

    fn suppressions(&self) -> Vec<Value> {
        let out = self.ok(&["suppression", "list", "--json"]);
        serde_json::from_str::<Vec<Value>>(&out).unwrap()
    }

    fn url(&self, path: &str) -> String {
        self.site.public_url(path)
    }

    /// POSTs `body` to the public server: status, content type, body.
    fn post(&self, path: &str, headers: &[(&str, String)], body: Vec<u8>) -> (u16, String, String) {
        let url = self.url(path);
        self.runtime.block_on(async {
            let mut request = reqwest::Client::new().post(url).body(body);
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let kind = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            (status, kind, response.text().await.unwrap())
        })
    }

    /// A Twilio-signed form post to `path` (query included).
    fn twilio_post(&self, path: &str, params: &[(&str, &str)], token: &str) -> (u16, String) {
        let signature = twilio_signature(token, &self.url(path), params);
        let body = form(params);
        let (status, _, text) = self.post(
            path,
            &[
                (
                    "content-type",
                    "application/x-www-form-urlencoded".to_string(),
                ),
                ("x-twilio-signature", signature),
            ],
            body.into_bytes(),
        );
        (status, text)
    }

    /// An inbound SMS from `from`, as Twilio posts it.
    fn text_in(&self, sid: &str, from: &str, body: &str) -> (u16, String) {
        self.twilio_post(
            "/v1/webhooks/twilio",
            &inbound(sid, from, body),
            TWILIO_TOKEN,
        )
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        // The fake server's task belongs to the runtime: drop it inside.
        let twilio = self.twilio.take();
        let _guard = self.runtime.enter();
        drop(twilio);
    }
}

fn form(params: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        out.append_pair(k, v);
    }
    out.finish()
}

/// Twilio's signature: base64 HMAC-SHA1 of the URL and the sorted
/// parameters' names and values.
fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn inbound<'a>(sid: &'a str, from: &'a str, body: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("AccountSid", "AC0123"),
        ("From", from),
        ("To", "+14155238886"),
        ("Body", body),
        ("NumMedia", "0"),
    ]
}

/// The interview platform's headers for `body` signed at `timestamp`
/// under `secret`.
fn interview_headers(secret: &str, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    vec![
        ("content-type", "application/json".to_string()),
        ("x-nudge-timestamp", timestamp.to_string()),
        (
            "x-nudge-signature",
            format!("v1={}", hex::encode(mac.finalize().into_bytes())),
        ),
    ]
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/fixtures/webhooks").join(name)).unwrap()
}

fn basic(password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("postmark:{password}"))
    )
}

// ---------------------------------------------------------------------------

#[test]
fn interview_events_are_signed_idempotent_and_find_their_candidate() {
    let hooks = Hooks::new();
    let daemon = hooks.start();
    let enrolled = hooks.enroll("again", "ana", "email", "ana@example.com");
    let link = enrolled["link"].as_str().unwrap();
    let token = link.rsplit('/').next().unwrap().to_string();
    let post = |body: &Value, headers: Option<Vec<(&'static str, String)>>| {
        let bytes = serde_json::to_vec(body).unwrap();
        let headers =
            headers.unwrap_or_else(|| interview_headers(INTERVIEW_SECRET, unix_now(), &bytes));
        let (status, _, text) = hooks.post("/v1/webhooks/interview", &headers, bytes);
        (status, serde_json::from_str::<Value>(&text).unwrap())
    };

    // A bad signature, another secret, a stale timestamp, no headers:
    // 401, and nothing is recorded.
    let started =
        json!({ "id": "evt-1", "event": "started", "token": token, "fields": { "score": 7 } });
    let bytes = serde_json::to_vec(&started).unwrap();
    let mut tampered = interview_headers(INTERVIEW_SECRET, unix_now(), &bytes);
    tampered[2].1 = format!("v1={}", "0".repeat(64));
    for headers in [
        tampered,
        interview_headers("another secret", unix_now(), &bytes),
        interview_headers(INTERVIEW_SECRET, unix_now() - 3600, &bytes),
        vec![("content-type", "application/json".to_string())],
    ] {
        let (status, answer) = post(&started, Some(headers));
        assert_eq!(status, 401, "{answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    assert_eq!(hooks.timeline("ana", "event"), Vec::<String>::new());

    // Signed: recorded, with what it did.
    let (status, answer) = post(&started, None);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["candidate"], "c1");
    assert_eq!(answer["repeated"], false);
    // The same id again (the platform retrying): the first answer, once.
    let (status, again) = post(&started, None);
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["repeated"], true);
    assert_eq!(
        hooks.timeline("ana", "event"),
        ["started received (score=7)"]
    );

    // By candidate id, a built-in event that moves the campaign.
    let clicked = json!({ "id": "evt-2", "event": "clicked", "candidate": "c1" });
    let (status, answer) = post(&clicked, None);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["effects"], json!(["again: exited done"]), "{answer}");

    // Unknown candidate: 404 naming the field; a bad body: 400 naming it.
    let stranger = json!({ "id": "evt-3", "event": "started", "token": "c9-0123456789abcdef0123456789abcdef" });
    let (status, answer) = post(&stranger, None);
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["field"], "token");
    let nameless = json!({ "id": "evt-4", "event": "started" });
    let (status, answer) = post(&nameless, None);
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["field"], "token");
    let odd = json!({ "id": "evt-5", "event": "Started!", "candidate": "c1" });
    let (status, answer) = post(&odd, None);
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["field"], "event");
    let extra = json!({ "id": "evt-6", "event": "started", "candidate": "c1", "score": 3 });
    let (status, answer) = post(&extra, None);
    assert_eq!(status, 400, "{answer}");
    assert_eq!(hooks.timeline("ana", "event").len(), 2);
    daemon.stop();
}

#[test]
fn stop_opts_out_before_a_queued_send_goes_and_start_lets_the_next_one_go() {
    let hooks = Hooks::new();
    let daemon = hooks.start();
    // Both invites wait for the window (10:00, twelve real seconds away).
    hooks.enroll("texts", "stopper", "phone", "+1 555 010 0199");
    hooks.enroll("texts", "control", "phone", "+1 555 010 0123");

    // A forged STOP is refused, and changes nothing.
    let (status, answer) = hooks.twilio_post(
        "/v1/webhooks/twilio",
        &inbound("SMforged", "+15550100199", "STOP"),
        "not the token",
    );
    assert_eq!(status, 401, "{answer}");
    assert_eq!(hooks.show("stopper")["opted_out"], false);

    let (status, twiml) = hooks.text_in("SM100", "+15550100199", " Stop ");
    assert_eq!(status, 200, "{twiml}");
    assert!(twiml.contains("<Response/>"), "{twiml}");
    let shown = hooks.show("stopper");
    assert_eq!(shown["opted_out"], true, "{shown}");
    assert!(hooks
        .suppressions()
        .iter()
        .any(|e| e["contact"] == "+15550100199" && e["reason"] == "opted_out"));

    wait_for(|| (!hooks.texts_to("+15550100123").is_empty()).then_some(()))
        .expect("the control candidate's invite goes when the window opens");
    assert!(
        hooks.texts_to("+15550100199").is_empty(),
        "the opted-out candidate's queued invite never went"
    );
    // Opted out: a new enrollment is refused.
    let refused = hooks.nudge(&["enroll", "--campaign", "again", "--id", "stopper"]);
    assert_ne!(refused.status.code(), Some(0));
    assert!(
        stderr(&refused).contains("opted out"),
        "{}",
        stderr(&refused)
    );

    // START: recorded, off the list, and the next enrollment's SMS goes.
    let (status, twiml) = hooks.text_in("SM101", "+15550100199", "start");
    assert_eq!(status, 200, "{twiml}");
    assert_eq!(hooks.show("stopper")["opted_out"], false);
    let opted_in = hooks.timeline("stopper", "opted_in");
    assert_eq!(opted_in.len(), 1, "{opted_in:?}");
    assert!(
        opted_in[0].contains("texted START from +15550100199"),
        "{opted_in:?}"
    );
    assert!(!hooks
        .suppressions()
        .iter()
        .any(|e| e["contact"] == "+15550100199"));
    // The same message delivered twice by Twilio is one opt-in.
    hooks.text_in("SM101", "+15550100199", "start");
    assert_eq!(hooks.timeline("stopper", "opted_in").len(), 1);
    hooks.enroll("again", "stopper", "phone", "+1 555 010 0199");
    wait_for(|| (!hooks.texts_to("+15550100199").is_empty()).then_some(()))
        .expect("after START the next send reaches the candidate");
    daemon.stop();
}

#[test]
fn help_replies_other_texts_are_recorded_and_strangers_store_nothing() {
    let hooks = Hooks::new();
    let daemon = hooks.start();
    hooks.enroll("again", "rae", "phone", "+1 555 010 0177");

    let (status, twiml) = hooks.text_in("SM200", "+15550100177", "help");
    assert_eq!(status, 200);
    assert_eq!(
        twiml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>Acme Jobs: texts about \
         your application. Reply STOP to stop.</Message></Response>"
    );

    // WhatsApp numbers come with a prefix.
    let (status, twiml) = hooks.text_in("SM201", "whatsapp:+15550100177", "Is the job <remote>?");
    assert_eq!(status, 200, "{twiml}");
    assert!(twiml.contains("<Response/>"));
    let events = hooks.timeline("rae", "event");
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].starts_with("replied received (channel=whatsapp, from=+15550100177")
            && events[0].contains("text=Is the job <remote>?"),
        "{events:?}"
    );

    let mark = daemon.mark();
    let (status, twiml) = hooks.text_in("SM202", "+15550100999", "STOP");
    assert_eq!(status, 200);
    assert!(twiml.contains("<Response/>"));
    daemon.wait_line(mark, &["no candidate has", "+15550100999"]);
    assert!(
        hooks.suppressions().is_empty(),
        "a stranger's STOP stores nothing"
    );
    daemon.stop();
}

#[test]
fn a_status_callback_marks_the_very_send() {
    let hooks = Hooks::new();
    let daemon = hooks.start();
    hooks.enroll("again", "sam", "phone", "+1 555 010 0155");
    let sent = wait_for(|| hooks.texts_to("+15550100155").into_iter().next())
        .expect("the SMS reaches the fake Twilio");
    let callback = sent
        .iter()
        .find(|(k, _)| k == "StatusCallback")
        .map(|(_, v)| v.clone())
        .expect("the send asks for status callbacks");
    let path = callback
        .strip_prefix(&hooks.url(""))
        .expect("the callback is on the public server")
        .to_string();
    assert!(
        path.starts_with("/v1/webhooks/twilio/status?key="),
        "{path}"
    );
    let status_form = |status: &'static str| {
        vec![
            ("MessageSid", "SM0001"),
            ("MessageStatus", status),
            ("AccountSid", "AC0123"),
            ("To", "+15550100155"),
        ]
    };

    // On the way: nothing recorded.
    let (status, answer) = hooks.twilio_post(&path, &status_form("sent"), TWILIO_TOKEN);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"recorded\":false"), "{answer}");
    // Forged: refused.
    let (status, _) = hooks.twilio_post(&path, &status_form("delivered"), "forged");
    assert_eq!(status, 401);
    assert!(hooks.timeline("sam", "event").is_empty());

    let (status, answer) = hooks.twilio_post(&path, &status_form("delivered"), TWILIO_TOKEN);
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = hooks.twilio_post(&path, &status_form("read"), TWILIO_TOKEN);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"repeated\":true"), "{answer}");
    let events = hooks.timeline("sam", "event");
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].starts_with("delivered received (channel=sms, key=again/c1/")
            && events[0].contains("message_sid=SM0001"),
        "{events:?}"
    );

    // A key no send has.
    let (status, answer) = hooks.twilio_post(
        "/v1/webhooks/twilio/status?key=again%2Fc9%2F1%2F0",
        &status_form("delivered"),
        TWILIO_TOKEN,
    );
    assert_eq!(status, 404, "{answer}");
    daemon.stop();
}

#[test]
fn postmark_events_map_and_a_hard_bounce_joins_the_suppression_list() {
    let hooks = Hooks::new();
    let daemon = hooks.start();
    for (id, email) in [
        ("ana", "ana.lopez@example.com"),
        ("ben", "ben.okafor@example.com"),
        ("cy", "cy.tran@example.com"),
    ] {
        hooks.enroll("again", id, "email", email);
    }
    let post = |name: &str, auth: &str| {
        hooks.post(
            "/v1/webhooks/email/postmark",
            &[
                ("content-type", "application/json".to_string()),
                ("authorization", auth.to_string()),
            ],
            fixture(name),
        )
    };

    let (status, _, answer) = post("postmark-bounce-hard.json", &basic("wrong"));
    assert_eq!(status, 401, "{answer}");
    assert!(hooks.suppressions().is_empty());
    assert!(hooks.timeline("ben", "event").is_empty());

    for name in ["postmark-delivery.json", "postmark-open.json"] {
        let (status, _, answer) = post(name, &basic(POSTMARK_SECRET));
        assert_eq!(status, 200, "{name}: {answer}");
    }
    let ana = hooks.timeline("ana", "event");
    assert_eq!(ana.len(), 2, "{ana:?}");
    assert!(ana[0].starts_with("delivered received"), "{ana:?}");
    assert!(ana[1].starts_with("opened received"), "{ana:?}");

    // Postmark's metadata naming the send finds its candidate whatever the
    // recipient's address.
    let key = wait_for(|| {
        hooks
            .site
            .sent()
            .into_iter()
            .find(|(m, _)| m.to == "ana.lopez@example.com")
            .map(|(m, _)| m.key)
    })
    .expect("ana's invite is written");
    let mut forwarded: Value = serde_json::from_slice(&fixture("postmark-delivery.json")).unwrap();
    forwarded["MessageID"] = json!("forwarded-1");
    forwarded["Recipient"] = json!("ana.forward@example.net");
    forwarded["Metadata"] = json!({ "nudge_key": key });
    let (status, _, answer) = hooks.post(
        "/v1/webhooks/email/postmark",
        &[("authorization", basic(POSTMARK_SECRET))],
        serde_json::to_vec(&forwarded).unwrap(),
    );
    assert_eq!(status, 200, "{answer}");
    let ana = hooks.timeline("ana", "event");
    assert_eq!(ana.len(), 3, "{ana:?}");
    assert!(ana[2].contains(&format!("key={key}")), "{ana:?}");

    let (status, _, answer) = post("postmark-bounce-soft.json", &basic(POSTMARK_SECRET));
    assert_eq!(status, 200, "{answer}");
    assert!(
        hooks.suppressions().is_empty(),
        "a soft bounce is not suppressed"
    );
    let (status, _, answer) = post("postmark-bounce-hard.json", &basic(POSTMARK_SECRET));
    assert_eq!(status, 200, "{answer}");
    // Retried by Postmark: once.
    post("postmark-bounce-hard.json", &basic(POSTMARK_SECRET));
    let ben = hooks.timeline("ben", "event");
    assert_eq!(ben.len(), 2, "{ben:?}");
    assert!(ben[0].starts_with("soft_bounced received"), "{ben:?}");
    assert!(ben[1].starts_with("bounced received"), "{ben:?}");

    let (status, _, answer) = post("postmark-spam-complaint.json", &basic(POSTMARK_SECRET));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(hooks.show("cy")["opted_out"], true);

    let reasons: Vec<(String, String)> = hooks
        .suppressions()
        .iter()
        .map(|e| {
            (
                e["contact"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&("ben.okafor@example.com".into(), "bounced".into())),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("cy.tran@example.com".into(), "complaint".into())),
        "{reasons:?}"
    );
    daemon.stop();
}

#[test]
fn sendgrid_events_map_and_the_token_may_be_in_the_url() {
    let hooks = Hooks::new();
    let daemon = hooks.start();
    for (id, email) in [
        ("dee", "dee.park@example.com"),
        ("eli", "eli.ross@example.com"),
        ("fay", "fay.chen@example.com"),
        ("gus", "gus.ward@example.com"),
        ("hal", "hal.diaz@example.com"),
    ] {
        hooks.enroll("again", id, "email", email);
    }
    let headers = [("content-type", "application/json".to_string())];
    let (status, _, answer) = hooks.post(
        "/v1/webhooks/email/sendgrid?token=nope",
        &headers,
        fixture("sendgrid-events.json"),
    );
    assert_eq!(status, 401, "{answer}");
    assert!(hooks.suppressions().is_empty());

    // A batch with one bad event is refused whole.
    let mut bad: Vec<Value> = serde_json::from_slice(&fixture("sendgrid-events.json")).unwrap();
    bad[3].as_object_mut().unwrap().remove("email");
    let (status, _, answer) = hooks.post(
        &format!("/v1/webhooks/email/sendgrid?token={SENDGRID_SECRET}"),
        &headers,
        serde_json::to_vec(&bad).unwrap(),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("[3].email"), "{answer}");
    assert!(hooks.timeline("dee", "event").is_empty());

    let (status, _, answer) = hooks.post(
        &format!("/v1/webhooks/email/sendgrid?token={SENDGRID_SECRET}"),
        &headers,
        fixture("sendgrid-events.json"),
    );
    assert_eq!(status, 200, "{answer}");
    let first = |who: &str| {
        hooks
            .timeline(who, "event")
            .into_iter()
            .map(|t| t.split(' ').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(first("dee"), ["delivered", "opened"]);
    assert_eq!(first("eli"), ["bounced"]);
    assert_eq!(first("fay"), ["soft_bounced"]);
    assert_eq!(first("gus"), ["opted_out"]);
    assert_eq!(first("hal"), ["failed"]);
    let suppressed: Vec<(String, String)> = hooks
        .suppressions()
        .iter()
        .map(|e| {
            (
                e["contact"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        suppressed.len(),
        2,
        "only the hard bounce and the complaint: {suppressed:?}"
    );
    assert!(suppressed.contains(&("eli.ross@example.com".into(), "bounced".into())));
    assert!(suppressed.contains(&("gus.ward@example.com".into(), "complaint".into())));

    // An unknown provider.
    let (status, _, answer) = hooks.post("/v1/webhooks/email/mailgun", &headers, b"{}".to_vec());
    assert_eq!(status, 404, "{answer}");
    daemon.stop();
}

#[test]
fn a_sendgrid_signature_is_checked_when_its_key_is_configured() {
    use p256::ecdsa::signature::Signer;
    let signing = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    // SubjectPublicKeyInfo for a P-256 key (id-ecPublicKey, prime256v1),
    // then the uncompressed point: the DER SendGrid shows in base64.
    let mut public = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
    public.extend_from_slice(signing.verifying_key().to_encoded_point(false).as_bytes());
    let hooks = Hooks::new();
    let config = std::fs::read_to_string(hooks.site.config()).unwrap();
    hooks.site.write(
        "nudge.toml",
        &format!(
            "{config}sendgrid_verification_key = \"{}\"\n",
            base64::engine::general_purpose::STANDARD.encode(public)
        ),
    );
    let daemon = hooks.start();
    hooks.enroll("again", "dee", "email", "dee.park@example.com");
    let body = fixture("sendgrid-events.json");
    let signed = |signer: &p256::ecdsa::SigningKey, timestamp: i64| {
        let mut message = timestamp.to_string().into_bytes();
        message.extend_from_slice(&body);
        let signature: p256::ecdsa::Signature = signer.sign(&message);
        vec![
            ("content-type", "application/json".to_string()),
            (
                "x-twilio-email-event-webhook-signature",
                base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes()),
            ),
            (
                "x-twilio-email-event-webhook-timestamp",
                timestamp.to_string(),
            ),
        ]
    };
    let with_token = format!("/v1/webhooks/email/sendgrid?token={SENDGRID_SECRET}");
    let other = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
    let refused = [
        // Both means are configured: both must pass.
        (
            with_token.as_str(),
            vec![("content-type", "application/json".to_string())],
        ),
        ("/v1/webhooks/email/sendgrid", signed(&signing, unix_now())),
        (with_token.as_str(), signed(&other, unix_now())),
        (with_token.as_str(), signed(&signing, unix_now() - 3600)),
    ];
    for (path, headers) in refused {
        let (status, _, answer) = hooks.post(path, &headers, body.clone());
        assert_eq!(status, 401, "{path}: {answer}");
    }
    assert!(hooks.timeline("dee", "event").is_empty());
    let (status, _, answer) = hooks.post(&with_token, &signed(&signing, unix_now()), body.clone());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(hooks.timeline("dee", "event").len(), 2);
    daemon.stop();
}

#[test]
fn opting_in_lifts_the_opt_out_and_only_its_suppressions() {
    use nudge::runtime::api::{EventRequest, OptInRequest, SuppressRequest};
    use nudge::runtime::campaigns::Campaigns;
    use nudge::runtime::core::{Command as Ask, Core, Reply};
    use nudge::store::{LogKind, MemoryStore, Store, SuppressionReason};

    let site = site::Site::empty();
    site.write("campaigns/again.nudge", AGAIN);
    site.write("templates/again.sms.j2", "Acme: {{ link }}\n");
    site.write("templates/again.email.j2", "Subject: Hi\n\n{{ link }}\n");
    let (campaigns, _, _) = Campaigns::load(&site.path().join("campaigns"), None)
        .unwrap_or_else(|_| panic!("the campaign loads"));
    let mut core = Core::new(MemoryStore::default(), campaigns, None, support::settings());
    let now = support::at("2026-12-01T09:00:00Z");
    let run = |core: &mut Core<MemoryStore>, ask: Ask| {
        let (mut replies, _) = core.execute(vec![ask], now).unwrap();
        replies.remove(0)
    };
    let enrolled = run(
        &mut core,
        Ask::Enroll(nudge::runtime::api::EnrollRequest {
            ignore_filter: true,
            campaign: "again".into(),
            external_id: Some("ana".into()),
            fields: [
                ("email".to_string(), "ana@example.com".to_string()),
                ("phone".to_string(), "+15550100111".to_string()),
            ]
            .into(),
        }),
    );
    assert!(matches!(enrolled, Reply::Enrolled(_)), "{enrolled:?}");
    let opt_in = |id: &str| {
        Ask::OptIn(OptInRequest {
            candidate: "ana".into(),
            via: "texted START from +15550100111 by sms".into(),
            contact: Some("+15550100111".into()),
            id: Some(id.into()),
        })
    };
    // Not opted out: nothing to lift, nothing written.
    match run(&mut core, opt_in("sm-0")) {
        Reply::OptedIn(r) => assert!(!r.opted_in && r.unsuppressed.is_empty(), "{r:?}"),
        other => panic!("{other:?}"),
    }
    // A bounce suppresses the address; the opt-out adds the number.
    run(
        &mut core,
        Ask::Suppress(SuppressRequest {
            contact: "ana@example.com".into(),
            reason: SuppressionReason::Bounced,
        }),
    );
    run(
        &mut core,
        Ask::Event(EventRequest {
            candidate: "ana".into(),
            event: "opted_out".into(),
            ..Default::default()
        }),
    );
    match run(&mut core, opt_in("sm-1")) {
        Reply::OptedIn(r) => {
            assert!(r.opted_in && !r.repeated, "{r:?}");
            assert_eq!(r.unsuppressed, ["+15550100111"]);
            assert_eq!(r.still_suppressed.len(), 1, "{r:?}");
            assert_eq!(r.still_suppressed[0].contact, "ana@example.com");
            assert_eq!(r.still_suppressed[0].reason, SuppressionReason::Bounced);
        }
        other => panic!("{other:?}"),
    }
    match run(&mut core, opt_in("sm-1")) {
        Reply::OptedIn(r) => assert!(r.repeated, "{r:?}"),
        other => panic!("{other:?}"),
    }
    let store = core.store();
    let candidate = store.candidate("c1").unwrap().unwrap();
    assert!(!candidate.opted_out);
    let suppressed: Vec<String> = store
        .suppressions()
        .unwrap()
        .into_iter()
        .map(|s| s.contact.address)
        .collect();
    assert_eq!(suppressed, ["ana@example.com"]);
    let opted_in: Vec<_> = store
        .history("c1")
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.kind, LogKind::OptedIn { .. }))
        .collect();
    assert_eq!(opted_in.len(), 1, "{opted_in:?}");
}
