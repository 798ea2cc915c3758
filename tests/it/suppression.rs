//! The suppression list, through the real binary: an opt-out suppresses
//! the person's email address and phone number, so nothing reaches them
//! again whoever is enrolled with them (a loopback SMTP server and a
//! loopback Twilio-compatible server must receive nothing for them);
//! `nudge suppression list|add|remove` with and without a daemon; taking
//! a contact off the list lets sends through again.

use crate::support::site::{self, wait_for, Daemon};
use crate::support::smtp::Inbox;
use crate::support::{self, stderr, stdout, succeeded};

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::SystemTime;

use nudge::runtime::api::{EnrollRequest, EventRequest, SuppressRequest, UnsuppressRequest};
use nudge::runtime::campaigns::Campaigns;
use nudge::runtime::core::{Command as Ask, Core, Reply};
use nudge::store::causes::Failure;
use nudge::store::{
    LogKind, MemoryStore, SendKey, SendStatus, SledStore, Store, SuppressionReason,
};
use nudge::templates::Templates;
use serde_json::json;

/// Virtual seconds per real second: the reminder an hour after the
/// invite comes two real seconds later.
const SPEED: u32 = 1800;

/// An invite at once, a reminder an hour later.
fn campaign(channel: &str) -> String {
    format!(
        r#"campaign probe {{
  title    "Probe"
  channels {channel}
  goal     completed

  state invited {{
    send "invite"
    on completed -> done
    after 1h -> reminded
  }}

  state reminded {{
    send "reminder"
    on completed -> done
    after 72h -> done
  }}

  state done {{
    end
  }}
}}
"#
    )
}

// ---------------------------------------------------------------------------
// A folder with its configuration, and the daemon

const TOKEN_ENV: &str = "NUDGE_TEST_SUPPRESSION_TWILIO_TOKEN";

struct Site(site::Site);

impl std::ops::Deref for Site {
    type Target = site::Site;

    fn deref(&self) -> &site::Site {
        &self.0
    }
}

impl Site {
    /// A site whose `channel` (`email` or `sms`) is configured by
    /// `channel_config` (a `[channels.…]` table).
    fn new(channel: &str, channel_config: &str) -> Site {
        let site = site::Site::empty();
        let port = site.port;
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
listen = "127.0.0.1:0"

{channel_config}

[runtime]
catch_up_secs = 2592000
"#
            ),
        );
        site.write("campaigns/probe.nudge", &campaign(channel));
        for name in ["invite", "reminder"] {
            let text = match channel {
                "email" => format!("Subject: {name}\n\nHello, your link: {{{{ link }}}}\n"),
                _ => format!("Acme {name}: {{{{ link }}}} Reply STOP to opt out\n"),
            };
            site.write(&format!("templates/{name}.{channel}.j2"), &text);
        }
        Site(site)
    }

    /// A site with email over SMTP to `addr`.
    fn smtp(addr: SocketAddr) -> Site {
        Site::new(
            "email",
            &format!(
                "[channels.email]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\nfrom = \"Jobs <jobs@example.com>\"\ntimeout_secs = 5",
                addr.port()
            ),
        )
    }

    /// The shared site's command, with the fake Twilio's token set.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.0.command(args);
        cmd.env(TOKEN_ENV, "tok-secret");
        cmd
    }

    fn nudge(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run nudge")
    }

    /// Runs a command that must succeed; its stdout and stderr.
    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.nudge(args);
        (succeeded(args, &out), stderr(&out))
    }

    /// Starts `nudge run` on an accelerated clock and waits until it runs.
    fn start(&self) -> Daemon {
        let real_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let clock = format!("2026-12-01T09:00:00Z@{real_ms}*{SPEED}");
        self.start_with(
            &["run", "--clock", &clock],
            |c| {
                c.env(TOKEN_ENV, "tok-secret");
            },
            &[": running"],
        )
    }

    fn enroll(&self, id: &str, field: &str, value: &str) -> (String, String) {
        self.ok(&[
            "enroll",
            "--campaign",
            "probe",
            "--id",
            id,
            &format!("--{field}"),
            value,
        ])
    }

    /// `nudge show` once the candidate's history holds `needle`.
    fn show_once(&self, who: &str, needle: &str) -> String {
        wait_for(|| {
            let (out, _) = self.ok(&["show", who]);
            out.contains(needle).then_some(out)
        })
        .unwrap_or_else(|| {
            panic!(
                "`nudge show {who}` never said {needle:?}:\n{}",
                self.ok(&["show", who]).0
            )
        })
    }
}

// ---------------------------------------------------------------------------
// The core, on both stores

fn enroll(id: &str, email: &str) -> Ask {
    Ask::Enroll(EnrollRequest {
        ignore_filter: true,
        campaign: "probe".into(),
        external_id: Some(id.into()),
        fields: [("email".to_string(), email.to_string())].into(),
    })
}

/// The core over a store made by `open` in the site's `data` folder, with
/// the site's campaigns and templates.
fn core_of<S: Store>(site: &Site, open: impl FnOnce(&Path) -> S) -> Core<S> {
    let (campaigns, _, _) = Campaigns::load(
        &site.path().join("campaigns"),
        Some(&site.path().join("templates")),
    )
    .unwrap_or_else(|_| panic!("the probe campaign loads"));
    let templates = Templates::load(&site.path().join("templates")).unwrap();
    let settings = crate::support::settings();
    Core::new(
        open(&site.path().join("data")),
        campaigns,
        Some(std::sync::Arc::new(templates)),
        settings,
    )
}

/// Every gate, on a store made by `open`: a send queued before the opt-out
/// is refused when the dispatcher asks to hand it over, one decided in the
/// opt-out's own batch is refused when queued, and taking the address off
/// the list lets the next send go.
fn every_gate_refuses_a_suppressed_address<S: Store>(open: impl FnOnce(&Path) -> S) {
    let site = Site::new("email", "[channels.email]\ntransport = \"null\"");
    let mut core = core_of(&site, open);
    let now = support::at("2026-12-01T09:00:00Z");
    let (_, queued) = core
        .execute(
            vec![
                enroll("b", "K15@Example.com"),
                enroll("a", "k15@example.com"),
            ],
            now,
        )
        .unwrap();
    assert_eq!(queued.len(), 2, "{queued:?}");
    let b_invite = queued
        .iter()
        .find(|m| m.to == "K15@Example.com")
        .unwrap()
        .key
        .clone();

    let stop = Ask::Event(EventRequest {
        candidate: "a".into(),
        event: "opted_out".into(),
        ..Default::default()
    });
    let (replies, out) = core
        .execute(vec![stop, enroll("c", "k15@EXAMPLE.com")], now)
        .unwrap();
    assert!(out.is_empty(), "{out:?}");
    let [Reply::Event(_), Reply::Enrolled(c)] = &replies[..] else {
        panic!("{replies:?}");
    };
    assert_eq!(c.suppressed.len(), 1, "{c:?}");
    assert_eq!(c.suppressed[0].entry.contact, "k15@example.com");
    assert_eq!(c.suppressed[0].entry.candidate.as_deref(), Some("c2"));

    let (replies, _) = core
        .execute(vec![Ask::MarkInFlight(vec![b_invite.clone()])], now)
        .unwrap();
    let [Reply::Cleared(cleared)] = &replies[..] else {
        panic!("{replies:?}");
    };
    assert!(cleared.is_empty(), "{cleared:?}");
    let entry = core
        .store()
        .send(SendKey::parse(&b_invite).unwrap())
        .unwrap()
        .unwrap();
    assert!(
        matches!(&entry.status, SendStatus::Suppressed(why) if why.starts_with("k15@example.com is suppressed (opted out on 2026-12-01 09:00 UTC")),
        "{entry:?}"
    );
    for who in [entry.message.candidate.as_str(), c.candidate.as_str()] {
        let refused: Vec<_> = core
            .store()
            .history(who)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.kind {
                LogKind::DeliveryFailed { why, .. } => Some(why),
                _ => None,
            })
            .collect();
        assert_eq!(
            refused,
            [Failure::Suppressed {
                contact: "k15@example.com".into(),
                reason: SuppressionReason::OptedOut,
                since: now.timestamp_millis(),
            }],
            "{who}"
        );
    }

    let (replies, _) = core
        .execute(
            vec![Ask::Unsuppress(UnsuppressRequest {
                contact: "k15@example.com".into(),
            })],
            now,
        )
        .unwrap();
    assert!(
        matches!(&replies[..], [Reply::Unsuppressed(r)] if r.removed.is_some()),
        "{replies:?}"
    );
    // An hour later the reminders of b and c go; a opted out.
    let (_, out) = core
        .fire_due(now + chrono::Duration::hours(1), 100)
        .unwrap();
    let mut to: Vec<&str> = out.iter().map(|m| m.to.as_str()).collect();
    to.sort();
    assert_eq!(to, ["K15@Example.com", "k15@EXAMPLE.com"], "{out:?}");
}

#[test]
fn every_gate_refuses_a_suppressed_address_on_sled() {
    every_gate_refuses_a_suppressed_address(|dir| SledStore::open(dir, 8 << 20).unwrap());
}

#[test]
fn every_gate_refuses_a_suppressed_address_in_memory() {
    every_gate_refuses_a_suppressed_address(|_| MemoryStore::new());
}

/// A suppressed address is one channel closed, not the candidate: the
/// send falls back to their number, which is not on the list.
#[test]
fn a_send_to_a_suppressed_address_falls_back_to_the_next_channel() {
    let site = Site::new("email", "[channels.email]\ntransport = \"null\"");
    site.write("campaigns/probe.nudge", &campaign("email, sms"));
    for name in ["invite", "reminder"] {
        site.write(
            &format!("templates/{name}.sms.j2"),
            &format!("Acme {name}: {{{{ link }}}}\n"),
        );
    }
    let mut core = core_of(&site, |_| MemoryStore::new());
    let now = support::at("2026-12-01T09:00:00Z");
    let add = Ask::Suppress(SuppressRequest {
        contact: "k17@example.com".into(),
        reason: SuppressionReason::Bounced,
    });
    let both = Ask::Enroll(EnrollRequest {
        ignore_filter: true,
        campaign: "probe".into(),
        external_id: Some("f1".into()),
        fields: [
            ("email".to_string(), "k17@example.com".to_string()),
            ("phone".to_string(), "+15550100177".to_string()),
        ]
        .into(),
    });
    let (replies, out) = core.execute(vec![add, both], now).unwrap();
    assert!(
        matches!(&replies[0], Reply::Suppressed(r) if r.added),
        "{replies:?}"
    );
    let to: Vec<(&str, &str)> = out
        .iter()
        .map(|m| (m.channel.name(), m.to.as_str()))
        .collect();
    assert_eq!(to, [("sms", "+15550100177")], "{out:?}");
    let history = core.store().history("c1").unwrap();
    assert!(
        history.iter().any(|e| matches!(
            &e.kind,
            LogKind::FellBack { from, to, .. } if from == "email" && to == "sms"
        )),
        "{history:?}"
    );
}

// ---------------------------------------------------------------------------
// Opt-out by address

#[test]
fn after_an_opt_out_no_email_reaches_the_address_whoever_is_enrolled_with_it() {
    let inbox = Inbox::default();
    let site = Site::smtp(inbox.start());
    let daemon = site.start();

    site.enroll("a1", "email", "k15@example.com");
    wait_for(|| (inbox.count_to("k15@example.com") >= 1).then_some(()))
        .expect("the first candidate's invite arrives");
    site.ok(&["event", "a1", "opted_out"]);
    // Its reminder may have gone before the opt-out; nothing goes after.
    let before = inbox.count_to("k15@example.com");

    // The same person under a new id, the address in upper case.
    let (_, err) = site.enroll("a2", "email", "K15@EXAMPLE.COM");
    assert!(
        err.contains("note: k15@example.com is suppressed (opted out on 2026-12-0"),
        "{err}"
    );
    assert!(err.contains("): nudge will not send to it"), "{err}");
    // A control candidate: their invite and reminder arrive, so the
    // daemon had every chance to send the others'.
    site.enroll("a3", "email", "control@example.com");
    wait_for(|| (inbox.count_to("control@example.com") == 2).then_some(()))
        .expect("the control candidate's invite and reminder arrive");
    assert_eq!(
        inbox.count_to("k15@example.com"),
        before,
        "nothing after the opt-out"
    );
    let shown = wait_for(|| {
        let (out, _) = site.ok(&["show", "a2"]);
        (out.matches("is suppressed (opted out on").count() == 2).then_some(out)
    })
    .expect("the invite and the reminder are both recorded as not sent");
    assert!(
        shown.contains("not sent   email: k15@example.com is suppressed (opted out on "),
        "{shown}"
    );
    assert_eq!(
        inbox.count_to("k15@example.com"),
        before,
        "nothing after the opt-out"
    );

    let (list, _) = site.ok(&["suppression", "list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(lines[0].starts_with("CONTACT"), "{list}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row[..3],
        ["k15@example.com", "email", "opted_out"],
        "{list}"
    );
    assert_eq!(row[4], "c1", "{list}");

    // Taken off the list, the address is sent to again.
    let (out, _) = site.ok(&["suppression", "remove", "K15@example.com"]);
    assert!(
        out.starts_with("removed k15@example.com from the suppression list (it was opted out on "),
        "{out}"
    );
    assert!(
        out.contains(", candidate c1): nudge sends to it again"),
        "{out}"
    );
    let (_, err) = site.enroll("a4", "email", "k15@example.com");
    assert!(!err.contains("suppressed"), "{err}");
    wait_for(|| (inbox.count_to("k15@example.com") == 2).then_some(()))
        .expect("the invite goes once the address is off the list");
    daemon.stop();
}

#[test]
fn after_an_opt_out_no_sms_reaches_the_number_whoever_is_enrolled_with_it() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let twilio = runtime.block_on(support::Server::start(support::Reply::json(
        201,
        json!({ "sid": "SM0001", "status": "queued" }),
    )));
    let site = Site::new(
        "sms",
        &format!(
            "[channels.sms]\ntransport = \"twilio\"\nbase_url = \"{}\"\naccount_sid = \"AC0123\"\nauth_token_env = \"{TOKEN_ENV}\"\nfrom = \"+14155238886\"",
            twilio.url()
        ),
    );
    let to = |number: &str| {
        twilio
            .received()
            .iter()
            .filter(|r| r.form().iter().any(|(k, v)| k == "To" && v == number))
            .count()
    };
    let daemon = site.start();

    site.enroll("p1", "phone", "+1 555 010 0199");
    wait_for(|| (to("+15550100199") >= 1).then_some(())).expect("the invite arrives");
    site.ok(&["event", "p1", "opted_out"]);
    let before = to("+15550100199");

    // The same number, typed as a national one.
    let (_, err) = site.enroll("p2", "phone", "(555) 010-0199");
    assert!(
        err.contains("note: +15550100199 is suppressed (opted out on 2026-12-0"),
        "{err}"
    );
    site.enroll("p3", "phone", "+15550100123");
    wait_for(|| (to("+15550100123") == 2).then_some(()))
        .expect("the control candidate's invite and reminder arrive");
    assert_eq!(to("+15550100199"), before, "nothing after the opt-out");
    wait_for(|| {
        let (out, _) = site.ok(&["show", "p2"]);
        (out.matches("sms: +15550100199 is suppressed (opted out on")
            .count()
            == 2)
            .then_some(())
    })
    .expect("the invite and the reminder are both recorded as not sent");
    assert_eq!(to("+15550100199"), before, "nothing after the opt-out");
    daemon.stop();
}

// ---------------------------------------------------------------------------
// The commands

/// `add`, `list` and `remove`, whichever way they reach the store.
fn manage_the_list(site: &Site) {
    let (out, _) = site.ok(&["suppression", "add", " Ana@Example.com "]);
    assert!(
        out.starts_with("suppressed ana@example.com (email, added by hand on "),
        "{out}"
    );
    let (out, _) = site.ok(&[
        "suppression",
        "add",
        "(555) 010-0142",
        "--reason",
        "complaint",
    ]);
    assert!(
        out.starts_with("suppressed +15550100142 (phone, marked as spam on "),
        "{out}"
    );
    let (out, _) = site.ok(&[
        "suppression",
        "add",
        "ana@example.com",
        "--reason",
        "bounced",
    ]);
    assert!(
        out.starts_with("ana@example.com was suppressed already (added by hand on "),
        "{out}"
    );
    assert!(out.ends_with("): kept as it was\n"), "{out}");

    for bad in ["notanemail", "a b@c", "@example.com"] {
        let out = site.nudge(&["suppression", "add", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad}: {}", stdout(&out));
        assert!(
            stderr(&out).starts_with(&format!("error: `{bad}` is not a contact: ")),
            "{}",
            stderr(&out)
        );
    }
    let out = site.nudge(&["suppression", "add", "x@example.com", "--reason", "spite"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    let (out, _) = site.ok(&["suppression", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows: Vec<(&str, &str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["contact"].as_str().unwrap(),
                e["kind"].as_str().unwrap(),
                e["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("ana@example.com", "email", "manual"),
            ("+15550100142", "phone", "complaint")
        ]
    );
    assert!(list[0]["candidate"].is_null(), "{out}");
    let (out, _) = site.ok(&["suppression", "list"]);
    assert!(
        out.starts_with("CONTACT          KIND   REASON     SINCE"),
        "{out}"
    );

    let (out, _) = site.ok(&["suppression", "remove", "+1 555 010 0142"]);
    assert!(
        out.starts_with(
            "removed +15550100142 from the suppression list (it was marked as spam on "
        ),
        "{out}"
    );
    let (out, _) = site.ok(&["suppression", "remove", "+15550100142"]);
    assert_eq!(
        out,
        "+15550100142 is not on the suppression list: nothing removed\n"
    );
    let (out, _) = site.ok(&["suppression", "list"]);
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn the_list_is_managed_without_a_daemon() {
    let site = Site::new("email", "[channels.email]\ntransport = \"null\"");
    let (out, err) = site.ok(&["suppression", "list"]);
    assert_eq!(out, "");
    assert_eq!(err, "the suppression list is empty\n");
    manage_the_list(&site);
}

#[test]
fn the_list_is_managed_through_the_daemon_and_a_manual_entry_stops_sends_until_removed() {
    let inbox = Inbox::default();
    let site = Site::smtp(inbox.start());
    let daemon = site.start();
    manage_the_list(&site);

    // Added by hand, before anyone is enrolled with it.
    let (out, _) = site.ok(&["suppression", "add", "k16@example.com"]);
    assert!(out.starts_with("suppressed k16@example.com"), "{out}");
    let (_, err) = site.enroll("b1", "email", "k16@example.com");
    assert!(
        err.contains("note: k16@example.com is suppressed (added by hand on "),
        "{err}"
    );
    site.show_once(
        "b1",
        "not sent   email: k16@example.com is suppressed (added by hand on",
    );
    site.ok(&["suppression", "remove", "k16@example.com"]);
    site.enroll("b2", "email", "k16@example.com");
    wait_for(|| (inbox.count_to("k16@example.com") >= 1).then_some(()))
        .expect("the invite goes once the address is off the list");
    daemon.stop();
}

#[test]
fn the_admin_api_lists_adds_and_removes_with_typed_answers() {
    let site = Site::new("email", "[channels.email]\ntransport = \"null\"");
    let daemon = site.start();
    let config = std::fs::read_to_string(site.path().join("nudge.toml")).unwrap();
    let listen = config
        .lines()
        .find_map(|l| l.strip_prefix("listen = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let token = std::fs::read_to_string(site.path().join("data/admin-token")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let mut request = client
            .request(method, format!("http://{listen}{path}"))
            .bearer_auth(token.trim());
        if let Some(b) = body {
            request = request.json(&b);
        }
        runtime.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        })
    };
    let (status, body) = call(
        reqwest::Method::POST,
        "/v1/suppressions",
        Some(json!({ "contact": "Ana@Example.com", "reason": "bounced" })),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["added"], true);
    assert_eq!(body["entry"]["contact"], "ana@example.com");
    assert_eq!(body["entry"]["reason"], "bounced");
    let (status, body) = call(
        reqwest::Method::POST,
        "/v1/suppressions",
        Some(json!({ "contact": "a b@c" })),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("`a b@c` is not a contact: "),
        "{body}"
    );
    let (status, body) = call(
        reqwest::Method::POST,
        "/v1/enroll",
        Some(
            json!({ "campaign": "probe", "external_id": "e1", "fields": { "email": "ana@example.com" } }),
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enrolled"], true);
    assert_eq!(body["suppressed"][0]["contact"], "ana@example.com");
    assert_eq!(body["suppressed"][0]["reason"], "bounced");
    let message = body["suppressed"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("ana@example.com is suppressed (bounced on 2026-12-0"),
        "{message}"
    );
    let (_, list) = call(reqwest::Method::GET, "/v1/suppressions", None);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let (status, body) = call(
        reqwest::Method::POST,
        "/v1/suppressions/remove",
        Some(json!({ "contact": "ana@example.com" })),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["removed"]["contact"], "ana@example.com");
    let (_, body) = call(
        reqwest::Method::POST,
        "/v1/suppressions/remove",
        Some(json!({ "contact": "ana@example.com" })),
    );
    assert!(body["removed"].is_null(), "{body}");
    daemon.stop();
}
