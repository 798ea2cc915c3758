//! The warehouse campaign end to end: the in-process daemon on a manual
//! clock drives the repository's `campaigns/warehouse.nudge` and
//! `templates/` through a week of applicants and events, and delivers
//! through the real SMTP and Twilio channels to servers on loopback. What
//! the servers received — who, which template, on which channel, and at
//! which instant of the virtual clock — is the simulator's prediction, each
//! send once, inside the campaign's local windows, and nothing reaches the
//! candidate who opted out after they did.
//!
//! The clock only moves once everything due has been delivered (the send
//! queue is empty), so each message a server receives arrived at the
//! clock's instant of that step.

use crate::support;
use crate::support::repo;
use crate::support::smtp::Inbox;
use crate::support::week as agenda;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Datelike, Duration, Timelike, Weekday};
use serde_json::json;

use agenda::{applicants, at, predict, week, Act, Send};
use nudge::channels::smtp::message_id;
use nudge::channels::twilio::{TwilioChannel, TwilioConfig};
use nudge::channels::{Backend, Channels, SmtpChannel};
use nudge::config::{Security, SmtpConfig};
use nudge::engine::Instant;
use nudge::runtime::campaigns::Campaigns;
use nudge::runtime::clock::{Clock, ManualClock};
use nudge::runtime::core::{Command, Core, Settings};
use nudge::runtime::daemon::{self, Options, Sources};
use nudge::store::{CandidateRecord, LogKind, OutboxEntry, SendStatus, SledStore, Store};
use nudge::templates::Templates;
use support::{Reply, Server};

const WAREHOUSE: &str = "warehouse_associate";
const TOKEN_ENV: &str = "NUDGE_TEST_E2E_TWILIO_TOKEN";
const FROM_EMAIL: &str = "jobs@example.com";
/// How long any wait may last: only against hangs, never a timing check.
const PATIENCE: StdDuration = StdDuration::from_secs(10);

// ---------------------------------------------------------------------------
// The campaign, its templates and a store in a throwaway folder

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn warehouse() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("campaigns")).unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        for entry in std::fs::read_dir(repo().join("templates")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(
                entry.path(),
                dir.path().join("templates").join(entry.file_name()),
            )
            .unwrap();
        }
        std::fs::copy(
            repo().join("campaigns/warehouse.nudge"),
            dir.path().join("campaigns/warehouse.nudge"),
        )
        .unwrap();
        Fixture { dir }
    }

    fn campaigns_dir(&self) -> PathBuf {
        self.dir.path().join("campaigns")
    }

    fn templates_dir(&self) -> PathBuf {
        self.dir.path().join("templates")
    }

    fn sources(&self) -> Sources {
        Sources {
            campaigns: self.campaigns_dir(),
            templates: self.templates_dir(),
        }
    }

    fn core(&self) -> Core {
        let store = SledStore::open(&self.dir.path().join("store"), 8 << 20).unwrap();
        let templates = Templates::load(&self.templates_dir()).unwrap();
        let campaigns = match Campaigns::load(&self.campaigns_dir(), Some(&self.templates_dir())) {
            Ok((campaigns, _, _)) => campaigns,
            Err(failure) => panic!("{}", daemon::render_failure(&failure)),
        };
        let settings = Settings {
            tracked_link: "https://interview.example/i/{token}".into(),
            company: "Example Co".into(),
            sender: "The recruiting team".into(),
            phone_country_code: String::new(),
            catch_up: Duration::seconds(900),
            stale_after: Duration::hours(12),
            backoff: Default::default(),
            communications_off: false,
        };
        Core::new(store, campaigns, Some(Arc::new(templates)), settings)
    }
}

// ---------------------------------------------------------------------------
// The week (`tests/support/week.rs`, shared with `tests/runtime.rs`)

fn logged_sends(store: &SledStore, id: &str) -> Vec<Send> {
    let mut sends: Vec<Send> = store
        .history(id)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            LogKind::Sent {
                template, channel, ..
            } => Some((template, channel, e.at)),
            _ => None,
        })
        .collect();
    sends.sort_by_key(|s| s.2);
    sends
}

// ---------------------------------------------------------------------------
// The messages a loopback SMTP server accepted

/// One accepted message: its `RCPT` recipients and the raw text.
#[derive(Clone, Debug)]
struct Mail {
    to: Vec<String>,
    raw: String,
}

impl Mail {
    /// A header's value (unfolded), from the message's header block.
    fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or_default();
        let mut lines: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = lines.last_mut() {
                    last.push_str(line);
                }
            } else {
                lines.push(line.to_string());
            }
        }
        lines.into_iter().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// What `inbox` accepted so far.
fn accepted(inbox: &Inbox) -> Vec<Mail> {
    inbox
        .mails()
        .into_iter()
        .map(|m| Mail {
            raw: m.text(),
            to: m.to,
        })
        .collect()
}

fn channels(mail: SocketAddr, sms: &Server, whatsapp: &Server) -> Channels {
    let smtp = SmtpConfig {
        host: mail.ip().to_string(),
        port: Some(mail.port()),
        security: Security::Plain,
        tls_ca_path: None,
        username: None,
        password_env: None,
        from: format!("Dana Ruiz <{FROM_EMAIL}>"),
        reply_to: None,
        pool_size: 2,
        timeout_secs: 5,
        hello_name: Some("nudge.test".into()),
        dkim: None,
        campaigns: BTreeMap::new(),
    };
    std::env::set_var(TOKEN_ENV, "tok-e2e");
    let twilio = |server: &Server| TwilioConfig {
        base_url: server.url(),
        account_sid: "AC0123".into(),
        auth_token_env: TOKEN_ENV.into(),
        from: Some("+14155238886".into()),
        messaging_service_sid: None,
        // Carries each text's send key, which names its send below.
        status_callback: Some("http://127.0.0.1:9/status".into()),
        timeout_secs: 5,
        plain_http: Default::default(),
    };
    Channels::new(
        Backend::Smtp(Box::new(SmtpChannel::new(&smtp).unwrap())),
        Backend::Twilio(TwilioChannel::new(&twilio(sms), false).unwrap()),
        Backend::Twilio(TwilioChannel::new(&twilio(whatsapp), true).unwrap()),
        Backend::Null,
    )
}

fn twilio_ok() -> Reply {
    Reply::json(201, json!({ "sid": "SM0001", "status": "queued" }))
}

/// Polls `probe` every few milliseconds until it answers; panics after
/// [`PATIENCE`].
async fn until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let began = std::time::Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(began.elapsed() < PATIENCE, "gave up waiting: {what}");
        tokio::time::sleep(StdDuration::from_millis(2)).await;
    }
}

/// The campaign's local windows: every send between 08:00 and 20:00 in the
/// candidate's zone; the invite also 09:00–19:00 and never on a Friday.
fn assert_in_window(external: &str, zone: chrono_tz::Tz, (template, _, when): &Send) {
    let local = when.with_timezone(&zone);
    let minutes = local.hour() * 60 + local.minute();
    assert!(
        (8 * 60..=20 * 60).contains(&minutes),
        "{external}: {template} at {local}, outside 08:00-20:00"
    );
    if template.starts_with("invite") {
        assert!(
            (9 * 60..=19 * 60).contains(&minutes) && local.weekday() != Weekday::Fri,
            "{external}: {template} at {local}, outside the invite's window"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_warehouse_week_reaches_loopback_smtp_and_twilio_as_simulated() {
    let began = std::time::Instant::now();
    let fx = Fixture::warehouse();
    let mail = Inbox::default();
    let mail_addr = mail.start();
    let sms = Server::start(twilio_ok()).await;
    let whatsapp = Server::start(twilio_ok()).await;

    let agenda = week();
    let clock = Arc::new(ManualClock::new(agenda[0].0));
    let core = fx.core();
    let machine = core
        .campaigns()
        .get(WAREHOUSE)
        .expect("the warehouse campaign is loaded")
        .machine
        .clone();
    let store = core.store().clone();
    let running = daemon::start(Options {
        core,
        channels: Arc::new(channels(mail_addr, &sms, &whatsapp)),
        clock: clock.clone(),
        concurrency: 4,
        rates: Vec::new(),
        batch: 64,
        sources: fx.sources(),
    })
    .unwrap();
    let handle = running.handle.clone();

    // What each server received, tagged with the clock's instant when it
    // arrived.
    let mut mails: Vec<(Mail, Instant)> = Vec::new();
    let mut texts: Vec<(support::Received, Instant)> = Vec::new();
    let mut queue: VecDeque<_> = agenda.clone().into();
    let mut ids: HashMap<String, String> = HashMap::new();
    for _ in 0..10_000 {
        // Settle: every enrollment's next wake lies after the clock, and
        // everything queued has reached its server.
        let now = clock.now();
        let next_wake = until(&format!("the daemon runs what is due at {now}"), || {
            let mut wakes = Vec::new();
            for id in ids.values() {
                for e in handle.show(id).unwrap().enrollments {
                    wakes.extend(e.next_wake.map(|w| at(&w)));
                }
            }
            let next = wakes.into_iter().min();
            let drained = store.undelivered() == 0;
            (drained && next.is_none_or(|w| w > now)).then_some(next)
        })
        .await;
        let accepted = accepted(&mail);
        mails.extend(accepted[mails.len()..].iter().map(|m| (m.clone(), now)));
        let received = sms.received();
        texts.extend(received[texts.len()..].iter().map(|r| (r.clone(), now)));

        let act = queue.front().map(|(t, _)| *t);
        match (next_wake, act) {
            (Some(w), a) if a.is_none_or(|a| w < a) => clock.set(w),
            (_, Some(a)) => {
                clock.set(a);
                let (_, act) = queue.pop_front().unwrap();
                match act.command(WAREHOUSE) {
                    Command::Enroll(req) => {
                        let r = handle.enroll(req).await.unwrap();
                        let Act::Enroll(a) = act else { unreachable!() };
                        ids.insert(a.id.to_string(), r.candidate);
                    }
                    Command::Event(req) => {
                        handle.event(req).await.unwrap();
                    }
                    other => panic!("{other:?}"),
                }
            }
            _ => break,
        }
    }
    // A moment more, so a late or repeated delivery would show.
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    running.stop().await;
    assert_eq!(accepted(&mail).len(), mails.len(), "mail after the week");
    assert_eq!(sms.received().len(), texts.len(), "texts after the week");
    assert!(whatsapp.received().is_empty(), "WhatsApp is not a channel");

    // Every delivered send, by key, from the outbox.
    let outbox: HashMap<String, OutboxEntry> = store
        .sends()
        .unwrap()
        .into_iter()
        .map(|e| (e.message.key.clone(), e))
        .collect();
    assert!(outbox.values().all(|e| e.status == SendStatus::Delivered));
    assert_eq!(store.undelivered(), 0);
    let from: lettre::Address = FROM_EMAIL.parse().unwrap();
    let by_message_id: HashMap<String, &OutboxEntry> = outbox
        .values()
        .map(|e| (message_id(&e.message.key, &from), e))
        .collect();

    // What the servers got, as candidate id → (template, channel, instant).
    let mut got: BTreeMap<String, Vec<Send>> = BTreeMap::new();
    for (m, arrived) in &mails {
        let id = m.header("Message-ID").expect("a Message-ID");
        let entry = by_message_id
            .get(&id)
            .unwrap_or_else(|| panic!("mail {id} matches no send:\n{}", m.raw));
        let msg = &entry.message;
        assert_eq!(msg.channel.name(), "email");
        assert_eq!(m.to, vec![msg.to.clone()], "{}: recipient", msg.key);
        let subject = msg.subject.clone().expect("an email has a subject");
        if subject.is_ascii() {
            assert_eq!(m.header("Subject"), Some(subject), "{}: subject", msg.key);
        }
        got.entry(msg.candidate.clone()).or_default().push((
            msg.template.clone(),
            "email".into(),
            *arrived,
        ));
    }
    for (r, arrived) in &texts {
        let form: HashMap<String, String> = r.form().into_iter().collect();
        let to = &form["To"];
        let body = &form["Body"];
        let callback = reqwest::Url::parse(&form["StatusCallback"]).expect("a callback URL");
        let key = callback
            .query_pairs()
            .find(|(k, _)| k == "key")
            .map(|(_, v)| v.into_owned())
            .expect("the send key in the callback");
        let entry = outbox
            .get(&key)
            .unwrap_or_else(|| panic!("text to {to} ({key}) matches no send: {body}"));
        let msg = &entry.message;
        assert_eq!(msg.channel.name(), "sms", "{key}");
        assert_eq!(&msg.to, to, "{key}: recipient");
        // The stored send keeps no text once delivered: the text carries
        // the candidate's own link.
        let token = store.candidate(&msg.candidate).unwrap().unwrap().token;
        assert!(body.contains(&token), "{key}: {body}");
        got.entry(msg.candidate.clone()).or_default().push((
            msg.template.clone(),
            "sms".into(),
            *arrived,
        ));
    }
    for sends in got.values_mut() {
        sends.sort_by_key(|s| s.2);
    }

    // Per candidate: the right addresses, the predicted sends each once at
    // the predicted instants (as received and as logged), in the windows.
    let opted_out = agenda
        .iter()
        .find_map(|(t, a)| {
            matches!(
                a,
                Act::Event {
                    who: "di",
                    event: "opted_out"
                }
            )
            .then_some(*t)
        })
        .unwrap();
    let mut total = 0;
    for a in applicants(&agenda) {
        let id = &ids[a.id];
        let record: CandidateRecord = store.candidate(id).unwrap().unwrap();
        let (expected, _) = predict(&machine, &record, &agenda, a.id);
        assert!(
            !expected.is_empty(),
            "{}: the simulator sends something",
            a.id
        );
        total += expected.len();
        let received = got.get(id).cloned().unwrap_or_default();
        assert_eq!(received, expected, "{} ({id}): received", a.id);
        assert_eq!(
            logged_sends(&store, id),
            expected,
            "{} ({id}): logged",
            a.id
        );
        let zone: chrono_tz::Tz = a
            .field("timezone")
            .unwrap_or("America/Chicago")
            .parse()
            .unwrap();
        for send in &expected {
            assert_in_window(a.id, zone, send);
        }
        let emails = mails
            .iter()
            .filter(|(m, _)| a.field("email").is_some_and(|e| m.to == [e]))
            .count();
        let phones = texts
            .iter()
            .filter(|(r, _)| {
                let to = r.form().into_iter().find(|(k, _)| k == "To").unwrap().1;
                a.field("phone") == Some(to.as_str())
            })
            .count();
        let on = |channel: &str| expected.iter().filter(|s| s.1 == channel).count();
        assert_eq!(emails, on("email"), "{}: mails to their address", a.id);
        assert_eq!(phones, on("sms"), "{}: texts to their phone", a.id);
    }
    assert_eq!(mails.len() + texts.len(), total, "nothing else went out");
    assert_eq!(outbox.len(), total);

    // Di opted out: nothing reached their phone from then on.
    let di_phone = "+15550103";
    let to_di: Vec<Instant> = texts
        .iter()
        .filter(|(r, _)| r.form().iter().any(|(k, v)| k == "To" && v == di_phone))
        .map(|(_, t)| *t)
        .collect();
    assert!(!to_di.is_empty(), "di was texted before opting out");
    assert!(
        to_di.iter().all(|t| *t < opted_out),
        "di texted after opting out: {to_di:?}"
    );
    assert!(
        began.elapsed() < StdDuration::from_secs(20),
        "took {:?}",
        began.elapsed()
    );
}
