//! The delivery policy end to end: the in-process daemon (a real `Core`
//! and `daemon::start`) sends through the real SMTP and Twilio channels to
//! servers on loopback that answer as the test scripts them. Passing
//! failures are retried and delivered once, bounces and permanent failures
//! fall back to the campaign's next channel (or end the campaign with
//! `exit on bounced`), an opt-out or `communications = "off"` lets nothing
//! reach a server, a retry waiting when the daemon stops goes out after
//! the next start, and no more sends are in flight at once than twice the
//! concurrency.

use crate::support;
use crate::support::at;

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, SystemTime};

use chrono::Duration;
use mailin_embedded::{response, Handler, Response};
use serde_json::json;

use nudge::channels::twilio::{TwilioChannel, TwilioConfig};
use nudge::channels::{Backend, Channels, SmtpChannel};
use nudge::config::{Security, SmtpConfig};
use nudge::engine::{Channel, Instant};
use nudge::runtime::api::{EnrollRequest, EventRequest};
use nudge::runtime::campaigns::Campaigns;
use nudge::runtime::clock::{Clock, ManualClock, ScaledClock};
use nudge::runtime::core::{Command, Core, Reply as CoreReply, Settings};
use nudge::runtime::daemon::{self, Options, Running, Sources};
use nudge::runtime::policy::Backoff;
use nudge::store::{LogKind, OutboxEntry, SendStatus, SledStore, Store};
use support::{Reply, Server};

/// The variable holding the Twilio auth token in these tests.
const TOKEN_ENV: &str = "NUDGE_TEST_DELIVERY_TWILIO_TOKEN";
const PHONE: &str = "+14155550123";
const EMAIL: &str = "ana@example.com";

/// How long any wait may last before the test gives up: only against
/// hangs, never a timing assertion.
const PATIENCE: StdDuration = StdDuration::from_secs(30);

/// Thursday afternoon: no window in these campaigns, so sends are due at once.
fn start_instant() -> Instant {
    at("2026-11-26T15:00:00Z")
}

/// A campaign with one send due at once, over `channels`, with `exit`
/// (`exit on …`) when given.
fn campaign(channels: &str, exit: Option<&str>) -> String {
    let exit = exit.map_or(String::new(), |e| format!("  exit on {e}\n"));
    format!(
        "campaign outreach {{
  channels {channels}
  goal completed
{exit}  state invite {{
    send \"hello\"
    after 1w -> done
  }}
  state done {{ end }}
}}
"
    )
}

/// A backoff whose first retry comes within `base`.
fn backoff(base: StdDuration) -> Backoff {
    Backoff {
        base,
        cap: base,
        max_attempts: 8,
    }
}

// ---------------------------------------------------------------------------
// An SMTP server on loopback (mailin-embedded) with scripted refusals

/// What the SMTP server was asked and what it took, shared by its sessions.
#[derive(Default)]
struct MailLog {
    /// Recipients of the messages it accepted with 250, one per message.
    accepted: Vec<Vec<String>>,
    /// `RCPT` commands received, accepted or not.
    rcpts: usize,
}

/// The handler: refuses `RCPT` or the message's end with the scripted
/// replies, in order, then accepts everything.
#[derive(Clone, Default)]
struct MailServer {
    log: Arc<Mutex<MailLog>>,
    refuse_rcpt: Arc<Mutex<VecDeque<Response>>>,
    refuse_data: Arc<Mutex<VecDeque<Response>>>,
    recipients: Vec<String>,
}

impl MailServer {
    /// Starts the server on a free loopback port; it lives as long as the
    /// test process (mailin has no shutdown).
    fn start(&self) -> SocketAddr {
        crate::support::smtp::serve(self, "mx.delivery.test")
    }

    fn accepted(&self) -> usize {
        self.log.lock().unwrap().accepted.len()
    }

    fn rcpts(&self) -> usize {
        self.log.lock().unwrap().rcpts
    }
}

impl Handler for MailServer {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        self.recipients.clear();
        response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        self.log.lock().unwrap().rcpts += 1;
        if let Some(refusal) = self.refuse_rcpt.lock().unwrap().pop_front() {
            return refusal;
        }
        self.recipients.push(to.to_string());
        response::OK
    }

    fn data_end(&mut self) -> Response {
        if let Some(refusal) = self.refuse_data.lock().unwrap().pop_front() {
            return refusal;
        }
        let to = std::mem::take(&mut self.recipients);
        self.log.lock().unwrap().accepted.push(to);
        response::OK
    }
}

// ---------------------------------------------------------------------------
// A scenario: campaign and templates in a temp folder, a store, the servers

struct Scenario {
    dir: tempfile::TempDir,
    mail: MailServer,
    mail_addr: SocketAddr,
    twilio: Server,
}

impl Scenario {
    /// Writes the campaign and the `hello` templates, and starts an SMTP
    /// server (with `mail`'s script) and a Twilio server giving `twilio`.
    async fn new(
        campaign: &str,
        mail: MailServer,
        twilio: impl IntoIterator<Item = Reply>,
    ) -> Scenario {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("campaigns")).unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("campaigns/outreach.nudge"), campaign).unwrap();
        std::fs::write(
            dir.path().join("templates/hello.email.j2"),
            "Subject: Your interview\n\nHi {{ candidate.name }}, start here: {{ link }}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("templates/hello.sms.j2"),
            "{{ company }}: Hi {{ candidate.name }}, your interview: {{ link }} Reply STOP to opt out\n",
        )
        .unwrap();
        let mail_addr = mail.start();
        let twilio = Server::start_scripted(twilio).await;
        Scenario {
            dir,
            mail,
            mail_addr,
            twilio,
        }
    }

    fn store_path(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// A core on the scenario's store (which must not be open elsewhere).
    fn core(&self, backoff: Backoff, communications_off: bool) -> Core {
        let store = SledStore::open(&self.store_path(), 16 << 20).unwrap();
        let templates_dir = self.dir.path().join("templates");
        let (campaigns, _, _) =
            Campaigns::load(&self.dir.path().join("campaigns"), Some(&templates_dir)).unwrap();
        let templates = nudge::templates::Templates::load(&templates_dir).unwrap();
        let settings = Settings {
            tracked_link: "https://interview.example/i/{token}".into(),
            company: "Example Co".into(),
            sender: "The recruiting team".into(),
            phone_country_code: String::new(),
            catch_up: Duration::seconds(900),
            stale_after: Duration::hours(12),
            backoff,
            communications_off,
        };
        Core::new(store, campaigns, Some(Arc::new(templates)), settings)
    }

    /// The real SMTP and Twilio channels, pointed at the scenario's servers.
    fn channels(&self) -> Channels {
        let smtp = SmtpConfig {
            host: self.mail_addr.ip().to_string(),
            port: Some(self.mail_addr.port()),
            security: Security::Plain,
            tls_ca_path: None,
            username: None,
            password_env: None,
            from: "Dana Ruiz <jobs@example.com>".into(),
            reply_to: None,
            pool_size: 2,
            timeout_secs: 5,
            hello_name: Some("nudge.test".into()),
            dkim: None,
            campaigns: BTreeMap::new(),
        };
        std::env::set_var(TOKEN_ENV, "tok-delivery");
        let twilio = TwilioConfig {
            base_url: self.twilio.url(),
            account_sid: "AC0123".into(),
            auth_token_env: TOKEN_ENV.into(),
            from: Some("+14155238886".into()),
            messaging_service_sid: None,
            status_callback: None,
            timeout_secs: 5,
            plain_http: Default::default(),
        };
        Channels::new(
            Backend::Smtp(Box::new(SmtpChannel::new(&smtp).unwrap())),
            Backend::Twilio(TwilioChannel::new(&twilio, false).unwrap()),
            Backend::Null,
            Backend::Null,
        )
    }

    fn start(&self, core: Core, clock: Arc<dyn Clock>) -> Running {
        daemon::start(Options {
            core,
            channels: Arc::new(self.channels()),
            clock,
            concurrency: 4,
            rates: Vec::new(),
            batch: 64,
            sources: Sources {
                campaigns: self.dir.path().join("campaigns"),
                templates: self.dir.path().join("templates"),
            },
        })
        .unwrap()
    }

    /// Requests the Twilio server got.
    fn texts(&self) -> usize {
        self.twilio.received().len()
    }
}

/// Ana, with an email address and a phone number.
fn ana() -> EnrollRequest {
    EnrollRequest {
        ignore_filter: true,
        campaign: "outreach".into(),
        external_id: Some("ana-1".into()),
        fields: [
            ("name".to_string(), "Ana".to_string()),
            ("email".to_string(), EMAIL.to_string()),
            ("phone".to_string(), PHONE.to_string()),
        ]
        .into(),
    }
}

/// Enrolls Ana through the running daemon; returns her candidate id.
async fn enroll(running: &Running) -> String {
    running.handle.enroll(ana()).await.unwrap().candidate
}

/// A clock that moves with real time from a fixed instant, for the tests
/// whose retries must wait for real: a manual clock only moves when the
/// test moves it, which would make "waited at least `Retry-After`" the
/// test's own doing.
fn real_time() -> Arc<dyn Clock> {
    Arc::new(ScaledClock {
        origin: start_instant(),
        origin_real: SystemTime::now(),
        speed: 1.0,
    })
}

fn manual() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(start_instant()))
}

/// Waits until `probe` gives something; panics after [`PATIENCE`].
async fn until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let began = std::time::Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(began.elapsed() < PATIENCE, "gave up waiting: {what}");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

/// Lets the daemon run a little longer, so a second (wrong) delivery
/// would have time to show.
async fn settle() {
    tokio::time::sleep(StdDuration::from_millis(500)).await;
}

/// The candidate's log, in order.
fn log_of(store: &SledStore, candidate: &str) -> Vec<LogKind> {
    store
        .history(candidate)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// The outbox entry of the candidate's send on `channel`, if any.
fn send_on(store: &SledStore, channel: Channel) -> Option<OutboxEntry> {
    store
        .sends()
        .unwrap()
        .into_iter()
        .find(|e| e.message.channel == channel)
}

fn status_on(store: &SledStore, channel: Channel) -> Option<SendStatus> {
    send_on(store, channel).map(|e| e.status)
}

/// Short names of the delivery entries of a log, in order: `retrying:email`,
/// `delivered:sms`, `failed:email`, `fell-back:email>sms`,
/// `received:bounced`, `exited:bounced`.
fn delivery_story(log: &[LogKind]) -> Vec<String> {
    log.iter()
        .filter_map(|kind| match kind {
            LogKind::Retrying { channel, .. } => Some(format!("retrying:{channel}")),
            LogKind::Delivered { channel, .. } => Some(format!("delivered:{channel}")),
            LogKind::DeliveryFailed { channel, .. } => Some(format!("failed:{channel}")),
            LogKind::FellBack { from, to, .. } => Some(format!("fell-back:{from}>{to}")),
            LogKind::Received { event, .. } if event == "bounced" => {
                Some("received:bounced".into())
            }
            LogKind::Exited { outcome, .. } => Some(format!("exited:{outcome}")),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// SMTP

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_451_is_retried_and_the_email_delivered_once() {
    let mail = MailServer::default();
    mail.refuse_data
        .lock()
        .unwrap()
        .push_back(Response::custom(451, "4.3.0 try again later".into()));
    let sc = Scenario::new(&campaign("email", None), mail, [created()]).await;
    let core = sc.core(backoff(StdDuration::from_millis(50)), false);
    let store = core.store().clone();
    let running = sc.start(core, real_time());
    let who = enroll(&running).await;

    until("the email is delivered", || {
        (status_on(&store, Channel::Email) == Some(SendStatus::Delivered)).then_some(())
    })
    .await;
    settle().await;
    running.stop().await;

    assert_eq!(sc.mail.accepted(), 1, "the server took exactly one email");
    assert_eq!(sc.mail.rcpts(), 2, "two transactions: refused, then taken");
    let entry = send_on(&store, Channel::Email).unwrap();
    assert_eq!(entry.status, SendStatus::Delivered);
    assert_eq!(entry.attempts, 2);
    assert_eq!(
        delivery_story(&log_of(&store, &who)),
        ["retrying:email", "delivered:email"]
    );
    let reason = log_of(&store, &who)
        .into_iter()
        .find_map(|k| match k {
            LogKind::Retrying { why, .. } => Some(why.to_string()),
            _ => None,
        })
        .unwrap();
    assert!(reason.contains("451"), "{reason}");
    assert_eq!(sc.texts(), 0, "no SMS for an email campaign");
}

/// SMTP 550 on `RCPT` for a campaign over email then SMS, with or without
/// `exit on bounced`.
async fn bounce(exit_on_bounced: bool) -> (Scenario, SledStore, String) {
    let mail = MailServer::default();
    mail.refuse_rcpt
        .lock()
        .unwrap()
        .push_back(Response::custom(550, "5.1.1 no such user".into()));
    let exit = exit_on_bounced.then_some("bounced");
    let sc = Scenario::new(&campaign("email, sms", exit), mail, [created()]).await;
    let core = sc.core(backoff(StdDuration::from_millis(50)), false);
    let store = core.store().clone();
    let running = sc.start(core, manual());
    let who = enroll(&running).await;
    until("the email fails", || {
        matches!(
            status_on(&store, Channel::Email),
            Some(SendStatus::Failed(_))
        )
        .then_some(())
    })
    .await;
    if !exit_on_bounced {
        until("the SMS is delivered", || {
            (status_on(&store, Channel::Sms) == Some(SendStatus::Delivered)).then_some(())
        })
        .await;
    }
    settle().await;
    running.stop().await;
    (sc, store, who)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_550_is_a_bounce_and_exit_on_bounced_keeps_the_sms_back() {
    let (sc, store, who) = bounce(true).await;
    let Some(SendStatus::Failed(why)) = status_on(&store, Channel::Email) else {
        panic!("{:?}", send_on(&store, Channel::Email));
    };
    assert!(why.contains("550"), "{why}");
    assert_eq!(
        delivery_story(&log_of(&store, &who)),
        ["failed:email", "received:bounced", "exited:bounced"]
    );
    assert_eq!(send_on(&store, Channel::Sms), None, "no SMS was queued");
    assert_eq!(sc.texts(), 0, "the Twilio server got nothing");
    assert_eq!(sc.mail.accepted(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_550_is_a_bounce_and_without_exit_the_sms_goes() {
    let (sc, store, who) = bounce(false).await;
    assert!(matches!(
        status_on(&store, Channel::Email),
        Some(SendStatus::Failed(why)) if why.contains("550")
    ));
    assert_eq!(
        delivery_story(&log_of(&store, &who)),
        [
            "failed:email",
            "received:bounced",
            "fell-back:email>sms",
            "delivered:sms"
        ]
    );
    let texts = sc.twilio.received();
    assert_eq!(texts.len(), 1, "the SMS went once");
    assert!(texts[0]
        .form()
        .contains(&("To".to_string(), PHONE.to_string())));
    assert_eq!(sc.mail.accepted(), 0);
}

// ---------------------------------------------------------------------------
// Twilio

fn created() -> Reply {
    Reply::json(201, json!({ "sid": "SM0001", "status": "queued" }))
}

/// Runs a campaign over SMS then email against a Twilio server giving
/// `replies`, until Ana's SMS is no longer queued or in flight (and, when
/// `email_too`, her email is delivered).
async fn texting(
    replies: Vec<Reply>,
    clock: Arc<dyn Clock>,
    email_too: bool,
) -> (Scenario, SledStore, String) {
    let sc = Scenario::new(
        &campaign("sms, email", None),
        MailServer::default(),
        replies,
    )
    .await;
    let core = sc.core(backoff(StdDuration::from_millis(50)), false);
    let store = core.store().clone();
    let running = sc.start(core, clock);
    let who = enroll(&running).await;
    until("the SMS is settled", || {
        let entry = send_on(&store, Channel::Sms)?;
        let settled = matches!(entry.status, SendStatus::Delivered | SendStatus::Failed(_));
        settled.then_some(())
    })
    .await;
    if email_too {
        until("the email is delivered", || {
            (status_on(&store, Channel::Email) == Some(SendStatus::Delivered)).then_some(())
        })
        .await;
    }
    settle().await;
    running.stop().await;
    (sc, store, who)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_429_waits_at_least_its_retry_after_and_sends_once() {
    let throttled = Reply::json(
        429,
        json!({ "code": 20429, "message": "Too Many Requests", "status": 429 }),
    )
    .with_header("retry-after", "1");
    let (sc, store, who) = texting(vec![throttled, created()], real_time(), false).await;

    let requests = sc.twilio.received();
    assert_eq!(requests.len(), 2, "one refused, one taken");
    let waited = requests[1].at - requests[0].at;
    assert!(
        waited >= StdDuration::from_secs(1),
        "retried after {waited:?}, before the server's Retry-After of 1 s"
    );
    assert_eq!(status_on(&store, Channel::Sms), Some(SendStatus::Delivered));
    assert_eq!(
        delivery_story(&log_of(&store, &who)),
        ["retrying:sms", "delivered:sms"]
    );
    assert_eq!(
        sc.mail.accepted(),
        0,
        "no email fallback for a delivered SMS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_500_is_retried_and_sent_once() {
    let failing = Reply::json(500, json!({ "message": "internal error" }));
    let (sc, store, who) = texting(vec![failing, created()], real_time(), false).await;

    assert_eq!(sc.twilio.received().len(), 2, "one refused, one taken");
    assert_eq!(status_on(&store, Channel::Sms), Some(SendStatus::Delivered));
    assert_eq!(
        delivery_story(&log_of(&store, &who)),
        ["retrying:sms", "delivered:sms"]
    );
    assert_eq!(sc.mail.accepted(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_400_fails_for_good_with_its_reason_and_the_email_goes() {
    let refused = Reply::json(
        400,
        json!({ "code": 21211, "message": "The 'To' number is not valid.", "status": 400 }),
    );
    let (sc, store, who) = texting(vec![refused], manual(), true).await;

    assert_eq!(
        sc.twilio.received().len(),
        1,
        "a permanent failure is not retried"
    );
    let Some(SendStatus::Failed(why)) = status_on(&store, Channel::Sms) else {
        panic!("{:?}", send_on(&store, Channel::Sms));
    };
    assert!(why.contains("HTTP 400") && why.contains("21211"), "{why}");
    let logged = log_of(&store, &who)
        .into_iter()
        .find_map(|k| match k {
            LogKind::DeliveryFailed { why, .. } => Some(why.to_string()),
            _ => None,
        })
        .unwrap();
    assert_eq!(logged, why, "the log keeps the reason");
    assert_eq!(
        delivery_story(&log_of(&store, &who)),
        ["failed:sms", "fell-back:sms>email", "delivered:email"]
    );
    assert_eq!(sc.mail.accepted(), 1, "the email went once");
    assert_eq!(sc.mail.log.lock().unwrap().accepted[0], [EMAIL]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_21610_is_the_candidates_opt_out_and_no_email_follows() {
    let stopped = Reply::json(
        400,
        json!({ "code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400 }),
    );
    let (sc, store, who) = texting(vec![stopped], manual(), false).await;

    assert_eq!(sc.twilio.received().len(), 1, "not retried");
    let Some(SendStatus::Failed(why)) = status_on(&store, Channel::Sms) else {
        panic!("{:?}", send_on(&store, Channel::Sms));
    };
    assert!(
        why.contains("21610") && why.contains("unsubscribed"),
        "{why}"
    );
    assert!(
        store.candidate(&who).unwrap().unwrap().opted_out,
        "a STOP to the provider is the candidate's opt-out"
    );
    let log = log_of(&store, &who);
    assert!(
        log.iter()
            .any(|k| matches!(k, LogKind::Received { event, .. } if event == "opted_out")),
        "{log:?}"
    );
    assert_eq!(delivery_story(&log), ["failed:sms", "exited:opted_out"]);
    assert_eq!(sc.mail.accepted(), 0, "no email after the opt-out");
}

// ---------------------------------------------------------------------------
// Nothing leaves for an opted-out candidate or with communications off

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opt_out_after_the_send_was_decided_reaches_no_server() {
    let sc = Scenario::new(
        &campaign("sms, email", None),
        MailServer::default(),
        [created()],
    )
    .await;
    let mut core = sc.core(backoff(StdDuration::from_millis(50)), false);
    let now = start_instant();
    // The send is decided and queued; then Ana opts out; then the daemon runs.
    let (replies, out) = core.execute(vec![Command::Enroll(ana())], now).unwrap();
    let [CoreReply::Enrolled(enrolled)] = &replies[..] else {
        panic!("{replies:?}");
    };
    assert_eq!(out.len(), 1, "{out:?}");
    let stop = Command::Event(EventRequest {
        candidate: enrolled.candidate.clone(),
        event: "opted_out".into(),
        ..Default::default()
    });
    core.execute(vec![stop], now).unwrap();
    let store = core.store().clone();
    let running = sc.start(core, manual());
    until("the send is refused", || {
        matches!(
            status_on(&store, Channel::Sms),
            Some(SendStatus::Failed(why)) if why.contains("opted out")
        )
        .then_some(())
    })
    .await;
    settle().await;
    running.stop().await;

    assert_eq!(sc.texts(), 0, "the Twilio server got nothing");
    assert_eq!(sc.mail.rcpts(), 0, "the SMTP server got nothing");
    assert_eq!(
        send_on(&store, Channel::Email),
        None,
        "no fallback to email"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn communications_off_reaches_no_server() {
    let sc = Scenario::new(
        &campaign("sms, email", None),
        MailServer::default(),
        [created()],
    )
    .await;
    let core = sc.core(backoff(StdDuration::from_millis(50)), true);
    let store = core.store().clone();
    let running = sc.start(core, manual());
    enroll(&running).await;
    until("the send is suppressed", || {
        matches!(
            status_on(&store, Channel::Sms),
            Some(SendStatus::Suppressed(_))
        )
        .then_some(())
    })
    .await;
    settle().await;
    running.stop().await;

    assert_eq!(sc.texts(), 0, "the Twilio server got nothing");
    assert_eq!(sc.mail.rcpts(), 0, "the SMTP server got nothing");
    assert_eq!(
        send_on(&store, Channel::Email),
        None,
        "no fallback to email"
    );
}

// ---------------------------------------------------------------------------
// A retry survives a restart

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_waiting_when_the_daemon_stops_goes_after_the_next_start_once() {
    let mail = MailServer::default();
    mail.refuse_data
        .lock()
        .unwrap()
        .push_back(Response::custom(451, "4.3.0 try again later".into()));
    let sc = Scenario::new(&campaign("email", None), mail, [created()]).await;
    let slow = backoff(StdDuration::from_secs(2));

    // First run: the email is refused and waits for its retry; the clock
    // stands still, so the retry cannot come due before the stop.
    let clock = manual();
    let core = sc.core(slow, false);
    let store = core.store().clone();
    let running = sc.start(core, clock.clone());
    let who = enroll(&running).await;
    until("the email waits for its retry", || {
        send_on(&store, Channel::Email)?.retry_at.map(|_| ())
    })
    .await;
    running.stop().await;
    let waiting = send_on(&store, Channel::Email).unwrap();
    assert_eq!(waiting.status, SendStatus::Queued);
    assert_eq!(sc.mail.rcpts(), 1, "tried once before the stop");
    assert_eq!(sc.mail.accepted(), 0);
    drop(store);

    // Second run on the same store, later than any retry: it goes, once.
    let later = manual();
    later.set(start_instant() + Duration::minutes(1));
    let core = sc.core(slow, false);
    let store = core.store().clone();
    let running = sc.start(core, later);
    until("the email is delivered", || {
        (status_on(&store, Channel::Email) == Some(SendStatus::Delivered)).then_some(())
    })
    .await;
    settle().await;
    running.stop().await;

    assert_eq!(sc.mail.accepted(), 1, "the server took exactly one email");
    assert_eq!(
        sc.mail.rcpts(),
        2,
        "refused once before the stop, taken once after"
    );
    assert_eq!(
        delivery_story(&log_of(&store, &who)),
        ["retrying:email", "delivered:email"]
    );
}

/// On a channel that cannot recognise a repeat, the dispatcher marks no
/// more sends in flight at a time than can be under way (concurrency 4
/// here), so a crash never leaves more than twice that in doubt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_in_doubt_on_an_sms_provider_stay_within_twice_the_concurrency() {
    let slow = created().after(StdDuration::from_millis(150));
    let sc = Scenario::new(&campaign("sms", None), MailServer::default(), [slow]).await;
    let core = sc.core(backoff(StdDuration::from_millis(50)), false);
    let store = core.store().clone();
    let running = sc.start(core, manual());
    let people = 24;
    for i in 0..people {
        let mut who = ana();
        who.external_id = Some(format!("applicant-{i}"));
        who.fields.insert("phone".into(), format!("+1415555{i:04}"));
        running.handle.enroll(who).await.unwrap();
    }
    let mut most = 0;
    until("every SMS is delivered", || {
        most = most.max(store.in_flight());
        let delivered = store
            .sends()
            .unwrap()
            .iter()
            .filter(|e| e.status == SendStatus::Delivered)
            .count();
        (delivered == people).then_some(())
    })
    .await;
    running.stop().await;
    assert_eq!(sc.texts(), people);
    assert!(most > 0, "never saw a send in flight");
    assert!(
        most <= 8,
        "{most} sends in flight at once, over twice the concurrency"
    );
}
