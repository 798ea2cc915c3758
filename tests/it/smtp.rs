//! The SMTP email channel against real SMTP servers on loopback: an
//! in-process mailin-embedded server for what arrives (headers, both MIME
//! parts, the unsubscribe header and link, the rendered text) and for
//! scripted replies (451 then 250, 550, 554), and a small hand-written
//! server for what mailin cannot do (drop idle connections, stay silent,
//! offer AUTH without TLS). Plus the configuration's errors.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::DateTime;
use mailin_embedded::{response, Handler, Response, Server, SslConfig};
use nudge::channels::smtp::message_id;
use nudge::channels::{Backend, Message, SendError, SmtpChannel};
use nudge::config::{parse_str, Transport, FILE_NAME};
use nudge::engine::Channel;
use nudge::templates::{Templates, Vars};

use crate::support::dkim::{verify, PublicKey};
use crate::support::stderr;

// ---------------------------------------------------------------------------
// A recording SMTP server (mailin-embedded)

/// One email as the server received it.
#[derive(Debug, Clone, Default)]
struct Received {
    helo: String,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Received {
    fn text(&self) -> String {
        String::from_utf8(self.data.clone()).expect("the email is UTF-8")
    }
}

/// What the server saw, shared by every session.
#[derive(Default)]
struct Seen {
    mails: Vec<Received>,
    sessions: usize,
}

/// The handler: each session works on a clone, the record is shared.
#[derive(Clone, Default)]
struct Inbox {
    seen: Arc<Mutex<Seen>>,
    /// Replies to `RCPT`, one per command, before the default 250.
    rcpt_replies: Arc<Mutex<VecDeque<Response>>>,
    /// Replies to the end of the message, one per email, before 250.
    data_replies: Arc<Mutex<VecDeque<Response>>>,
    current: Received,
}

impl Inbox {
    fn mails(&self) -> Vec<Received> {
        self.seen.lock().unwrap().mails.clone()
    }

    fn sessions(&self) -> usize {
        self.seen.lock().unwrap().sessions
    }

    fn script_rcpt(&self, replies: impl IntoIterator<Item = Response>) {
        self.rcpt_replies.lock().unwrap().extend(replies);
    }

    fn script_data(&self, replies: impl IntoIterator<Item = Response>) {
        self.data_replies.lock().unwrap().extend(replies);
    }
}

impl Handler for Inbox {
    fn helo(&mut self, _ip: IpAddr, domain: &str) -> Response {
        self.seen.lock().unwrap().sessions += 1;
        self.current.helo = domain.to_string();
        response::OK
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.current.from = from.to_string();
        self.current.to.clear();
        self.current.data.clear();
        response::OK
    }

    fn rcpt(&mut self, _to: &str) -> Response {
        let scripted = self.rcpt_replies.lock().unwrap().pop_front();
        scripted.unwrap_or(response::OK)
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current.to = to.to_vec();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let scripted = self.data_replies.lock().unwrap().pop_front();
        if let Some(reply) = scripted {
            return reply;
        }
        let mail = std::mem::take(&mut self.current);
        self.current.helo = mail.helo.clone();
        self.seen.lock().unwrap().mails.push(mail);
        response::OK
    }
}

/// Starts a mailin-embedded server on a free loopback port. It runs until
/// the test process exits (mailin has no shutdown).
fn start(inbox: &Inbox) -> SocketAddr {
    start_with(inbox, false)
}

/// The same, offering STARTTLS with a certificate for `localhost` from
/// the test CA (`tests/it/fixtures/smtp/ca.pem`) when `tls`.
fn start_with(inbox: &Inbox, tls: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut server = Server::new(inbox.clone());
    server
        .with_name("mx.test")
        .with_num_threads(4)
        .with_tcp_listener(listener);
    if tls {
        let fixture = |name: &str| {
            format!(
                "{}/tests/it/fixtures/smtp/{name}",
                env!("CARGO_MANIFEST_DIR")
            )
        };
        server
            .with_ssl(SslConfig::SelfSigned {
                cert_path: fixture("localhost.pem"),
                key_path: fixture("localhost.key"),
            })
            .expect("the test certificate loads");
    }
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    addr
}

// ---------------------------------------------------------------------------
// The channel and its messages

/// The SMTP channel for `addr`, through the configuration file's parser,
/// with `extra` settings appended to `[channels.email]`.
fn channel(addr: SocketAddr, extra: &str) -> SmtpChannel {
    channel_to(&addr.ip().to_string(), addr.port(), "plain", extra).unwrap()
}

/// The SMTP channel for `host:port` with `security`, or why it cannot be
/// built.
fn channel_to(host: &str, port: u16, security: &str, extra: &str) -> Result<SmtpChannel, String> {
    let toml = format!(
        r#"
[channels.email]
transport = "smtp"
host = "{host}"
port = {port}
security = "{security}"
hello_name = "nudge.test"
from = "Dana Ruiz <jobs@example.com>"
reply_to = "Dana Ruiz <dana@example.com>"
{extra}
"#
    );
    let config = parse_str(FILE_NAME, &toml).unwrap_or_else(|e| panic!("{}", e.render(false)));
    let config = config.resolve(Path::new(env!("CARGO_MANIFEST_DIR")));
    let Transport::Smtp(smtp) = &config.channels.email else {
        panic!("not an smtp transport");
    };
    SmtpChannel::new(smtp)
}

const UNSUBSCRIBE: &str = "https://jobs.example.com/u/36d4a5f8c5acba25";

/// An email to Ana rendered from the repository's `invite-short` template.
fn email(key: &str) -> Message {
    let templates = Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"))
        .expect("the example templates load");
    let mut vars = Vars::sample();
    vars.unsubscribe_link = Some(UNSUBSCRIBE.to_string());
    let rendered = templates
        .render("invite-short", Channel::Email, None, &vars)
        .expect("invite-short renders");
    Message {
        key: key.to_string(),
        campaign: "warehouse_associate".to_string(),
        candidate: "a-101".to_string(),
        template: "invite-short".to_string(),
        channel: Channel::Email,
        to: "ana@example.com".to_string(),
        subject: rendered.subject,
        body: rendered.body,
        html: Some(format!(
            "<p>Hi Ana, your interview for Warehouse Associate is open.</p>\n\
             <p><a href=\"{}\">Start here</a></p>\n\
             <p><a href=\"{UNSUBSCRIBE}\">Unsubscribe</a></p>\n",
            vars.link
        )),
        unsubscribe_url: Some(UNSUBSCRIBE.to_string()),
        scheduled_at: DateTime::parse_from_rfc3339("2026-11-28T15:00:00Z")
            .unwrap()
            .to_utc(),
        in_flight: false,
    }
}

fn plain_email(key: &str, body: &str) -> Message {
    Message {
        html: None,
        unsubscribe_url: None,
        body: body.to_string(),
        ..email(key)
    }
}

// ---------------------------------------------------------------------------
// A small MIME reader for the assertions

/// Headers (unfolded) and body of a MIME entity.
struct Entity {
    headers: Vec<(String, String)>,
    body: String,
}

impl Entity {
    fn parse(text: &str) -> Entity {
        let (head, body) = text.split_once("\r\n\r\n").expect("headers end");
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                let last = headers.last_mut().expect("a continuation follows a header");
                last.1.push(' ');
                last.1.push_str(line.trim());
            } else {
                let (name, value) = line.split_once(':').expect("a header line");
                headers.push((name.to_string(), value.trim().to_string()));
            }
        }
        Entity {
            headers,
            body: body.to_string(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The parts of a multipart entity.
    fn parts(&self) -> Vec<Entity> {
        let content_type = self.header("Content-Type").expect("a content type");
        let boundary = content_type
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .expect("a boundary")
            .trim_matches('"');
        let delimiter = format!("--{boundary}");
        let mut parts = Vec::new();
        for chunk in self.body.split(&delimiter).skip(1) {
            if chunk.starts_with("--") {
                break;
            }
            let chunk = chunk.strip_prefix("\r\n").unwrap_or(chunk);
            let chunk = chunk.strip_suffix("\r\n").unwrap_or(chunk);
            parts.push(Entity::parse(chunk));
        }
        parts
    }

    /// The body with its transfer encoding undone (7bit or
    /// quoted-printable), with CRLF turned into LF.
    fn decoded(&self) -> String {
        let body = match self.header("Content-Transfer-Encoding") {
            None | Some("7bit") => self.body.clone(),
            Some("quoted-printable") => decode_qp(&self.body),
            Some(other) => panic!("unexpected transfer encoding {other}"),
        };
        body.replace("\r\n", "\n")
    }
}

fn decode_qp(text: &str) -> String {
    let text = text.replace("=\r\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).expect("a QP escape"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn normalized(text: &str) -> String {
    text.replace("\r\n", "\n").trim_end().to_string()
}

// ---------------------------------------------------------------------------
// What arrives

#[tokio::test]
async fn an_email_arrives_with_its_headers_both_parts_and_one_click_unsubscribe() {
    let inbox = Inbox::default();
    let smtp = channel(start(&inbox), "");
    let msg = email("warehouse_associate/a-101/invite/0");

    let delivered = smtp.deliver(&msg).await.unwrap();
    assert!(!delivered.duplicate);
    assert!(delivered.provider_id.is_some());

    let mails = inbox.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.helo, "nudge.test");
    assert_eq!(mail.from, "jobs@example.com");
    assert_eq!(mail.to, vec!["ana@example.com".to_string()]);

    let email = Entity::parse(&mail.text());
    assert_eq!(
        email.header("From"),
        Some("\"Dana Ruiz\" <jobs@example.com>")
    );
    assert_eq!(
        email.header("Reply-To"),
        Some("\"Dana Ruiz\" <dana@example.com>")
    );
    assert_eq!(email.header("To"), Some("ana@example.com"));
    assert_eq!(email.header("Subject"), msg.subject.as_deref());
    assert_eq!(
        email.header("Message-ID"),
        Some(message_id(&msg.key, &"jobs@example.com".parse().unwrap()).as_str())
    );
    assert!(email.header("Date").is_some());
    assert_eq!(email.header("MIME-Version"), Some("1.0"));
    assert_eq!(
        email.header("List-Unsubscribe"),
        Some(format!("<{UNSUBSCRIBE}>").as_str())
    );
    assert_eq!(
        email.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(email.header("DKIM-Signature").is_none());

    let content_type = email.header("Content-Type").unwrap();
    assert!(
        content_type.starts_with("multipart/alternative;"),
        "{content_type}"
    );
    let parts = email.parts();
    assert_eq!(parts.len(), 2);
    let (text, html) = (&parts[0], &parts[1]);
    assert_eq!(
        text.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        html.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );

    // The rendered text arrives as rendered, unsubscribe link included.
    assert_eq!(normalized(&text.decoded()), normalized(&msg.body));
    assert!(text
        .decoded()
        .contains("Thanks for applying for Warehouse Associate"));
    assert!(text
        .decoded()
        .contains(&format!("Unsubscribe: {UNSUBSCRIBE}")));
    assert_eq!(
        normalized(&html.decoded()),
        normalized(msg.html.as_ref().unwrap())
    );
    assert!(html
        .decoded()
        .contains(&format!("<a href=\"{UNSUBSCRIBE}\">Unsubscribe</a>")));
}

#[tokio::test]
async fn a_text_only_email_is_one_part_without_list_headers() {
    let inbox = Inbox::default();
    let smtp = channel(start(&inbox), "");
    // Lines starting with a dot must survive the SMTP dot-stuffing.
    let body = "Hi Ana,\n.hidden line\n..two dots\n.\nBye";
    smtp.deliver(&plain_email("k-plain", body)).await.unwrap();

    let mails = inbox.mails();
    let email = Entity::parse(&mails[0].text());
    assert_eq!(
        email.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(email.header("List-Unsubscribe").is_none());
    assert!(email.header("List-Unsubscribe-Post").is_none());
    assert_eq!(normalized(&email.decoded()), body);
}

#[tokio::test]
async fn non_ascii_text_arrives_intact() {
    let inbox = Inbox::default();
    let smtp = channel(start(&inbox), "");
    let mut msg = plain_email(
        "k-es",
        "Hola Ana: tu entrevista para Almacén está abierta. ¡Éxito!",
    );
    msg.subject = Some("Tu entrevista · Almacén".to_string());
    smtp.deliver(&msg).await.unwrap();

    let email = Entity::parse(&inbox.mails()[0].text());
    assert_eq!(normalized(&email.decoded()), msg.body);
    // An encoded word, as headers must be ASCII.
    let subject = email.header("Subject").unwrap();
    assert!(subject.contains("=?utf-8?"), "{subject}");
}

#[tokio::test]
async fn the_same_key_always_has_the_same_message_id() {
    let inbox = Inbox::default();
    let smtp = channel(start(&inbox), "");
    for key in ["k-1", "k-1", "k-2"] {
        smtp.deliver(&plain_email(key, "Hi")).await.unwrap();
    }
    let ids: Vec<String> = inbox
        .mails()
        .iter()
        .map(|m| {
            Entity::parse(&m.text())
                .header("Message-ID")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
    assert!(ids[0].ends_with("@example.com>"));
}

#[tokio::test]
async fn a_campaign_can_have_its_own_sender() {
    let inbox = Inbox::default();
    let smtp = channel(
        start(&inbox),
        r#"
[channels.email.campaigns.warehouse_associate]
from = "Dallas DC Hiring <dallas@jobs.example.org>"
"#,
    );
    smtp.deliver(&plain_email("k-c", "Hi")).await.unwrap();
    let mut other = plain_email("k-d", "Hi");
    other.campaign = "analyst".to_string();
    smtp.deliver(&other).await.unwrap();

    let mails = inbox.mails();
    let first = Entity::parse(&mails[0].text());
    assert_eq!(mails[0].from, "dallas@jobs.example.org");
    assert_eq!(
        first.header("From"),
        Some("\"Dallas DC Hiring\" <dallas@jobs.example.org>")
    );
    // The global reply-to still applies; the Message-ID takes the sender's domain.
    assert_eq!(
        first.header("Reply-To"),
        Some("\"Dana Ruiz\" <dana@example.com>")
    );
    assert!(first
        .header("Message-ID")
        .unwrap()
        .ends_with("@jobs.example.org>"));
    assert_eq!(mails[1].from, "jobs@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dkim_signs_the_sender_and_the_unsubscribe_headers() {
    let inbox = Inbox::default();
    let smtp = channel(
        start(&inbox),
        r#"dkim = { domain = "example.com", selector = "nudge", private_key_path = "tests/it/fixtures/smtp/dkim-test.pem" }"#,
    );
    smtp.deliver(&email("k-dkim")).await.unwrap();

    let email = Entity::parse(&inbox.mails()[0].text());
    let signature = email.header("DKIM-Signature").expect("signed");
    let tags: Vec<(&str, &str)> = signature
        .split(';')
        .filter_map(|t| t.trim().split_once('='))
        .collect();
    let tag = |name: &str| tags.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    assert_eq!(tag("a"), Some("rsa-sha256"));
    assert_eq!(tag("d"), Some("example.com"));
    assert_eq!(tag("s"), Some("nudge"));
    assert_eq!(tag("c"), Some("relaxed/relaxed"));
    let signed: Vec<&str> = tag("h").unwrap().split(':').collect();
    for header in [
        "from",
        "to",
        "subject",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        assert!(signed.contains(&header), "{header} not in h={signed:?}");
    }
    assert!(tag("b").is_some_and(|b| b.len() > 300));
}

/// The emails a signed channel sends, by what they exercise in DKIM:
/// one MIME part or two, ASCII or encoded-word headers (a long non-ASCII
/// subject is folded over several lines), a non-ASCII display name,
/// trailing spaces and blank lines that the body canonicalization drops.
fn signed_variants() -> Vec<(&'static str, Message)> {
    let mut plain_non_ascii = plain_email(
        "k-plain-es",
        "Hola Ana: tu entrevista para Almacén está abierta.  \n¡Éxito!\n\n\n",
    );
    plain_non_ascii.subject = Some("Tu entrevista · Almacén".to_string());
    let mut multipart_non_ascii = email("k-multi-es");
    multipart_non_ascii.subject = Some(
        "Ana, tu entrevista para Almacén (turno de mañana, Düsseldorf–Málaga) \
         está abierta hasta el viernes"
            .to_string(),
    );
    multipart_non_ascii.html = Some("<p>¡Hola Ana! Tu entrevista está abierta.</p>\n".to_string());
    let mut display_name = email("k-name");
    display_name.campaign = "noel".to_string();
    display_name.to = "Ana Zoë Pérez <ana@example.com>".to_string();
    vec![
        (
            "plain, ASCII",
            plain_email("k-plain", "Hi Ana,\n.a line with a dot\nBye"),
        ),
        ("multipart, ASCII", email("k-multi")),
        ("plain, non-ASCII subject and body", plain_non_ascii),
        ("multipart, long non-ASCII subject", multipart_non_ascii),
        ("multipart, non-ASCII display names", display_name),
    ]
}

/// Every email a signed channel sends verifies with dkimpy, an
/// independent verifier, for each accepted form of RSA and Ed25519 key
/// (PKCS#1, PKCS#8, the bare Ed25519 seed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signed_email_verifies_with_dkimpy() {
    let mut failures = Vec::new();
    for (file, algorithm) in [
        ("dkim-test.pem", "rsa"),
        ("dkim-test-pkcs8.pem", "rsa"),
        ("dkim-test-ed25519-pkcs8.pem", "ed25519"),
        ("dkim-test-ed25519.key", "ed25519"),
    ] {
        let inbox = Inbox::default();
        let smtp = channel(
            start(&inbox),
            &format!(
                r#"dkim = {{ domain = "example.com", selector = "nudge", algorithm = "{algorithm}", private_key_path = "tests/it/fixtures/smtp/{file}" }}
[channels.email.campaigns.noel]
from = "Zoë Núñez — Contratación <jobs@example.com>"
"#
            ),
        );
        let variants = signed_variants();
        for (what, msg) in &variants {
            smtp.deliver(msg)
                .await
                .unwrap_or_else(|e| panic!("{file}, {what}: {e:?}"));
        }
        let key = PublicKey::fixture(file, "nudge", "example.com");
        let mails = inbox.mails();
        assert_eq!(mails.len(), variants.len());
        for ((what, _), mail) in variants.iter().zip(&mails) {
            let signature = Entity::parse(&mail.text())
                .header("DKIM-Signature")
                .map(str::to_string)
                .unwrap_or_else(|| panic!("{file}, {what}: not signed"));
            assert!(
                signature.contains(&format!("a={algorithm}-sha256;")),
                "{signature}"
            );
            if let Err(why) = verify(&mail.data, &key) {
                failures.push(format!("{file}, {what}: does not verify\n{why}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The verifier can say no: an email changed on the way, or checked
/// against another key, fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dkimpy_refuses_a_changed_email_and_another_key() {
    let inbox = Inbox::default();
    let smtp = channel(
        start(&inbox),
        r#"dkim = { domain = "example.com", selector = "nudge", private_key_path = "tests/it/fixtures/smtp/dkim-test.pem" }"#,
    );
    smtp.deliver(&email("k-tamper")).await.unwrap();
    let data = inbox.mails()[0].text();
    let key = PublicKey::fixture("dkim-test.pem", "nudge", "example.com");
    let changed = data.replacen("Subject: ", "Subject: Re: ", 1);
    assert_ne!(changed, data);
    assert!(verify(changed.as_bytes(), &key).is_err());
    let other = PublicKey::fixture("dkim-test-pkcs8.pem", "nudge", "example.com");
    assert!(verify(data.as_bytes(), &other).is_err());
}

// ---------------------------------------------------------------------------
// The real binary with a DKIM key: `nudge check` and `nudge run`

/// Two email-only campaigns, one plain and one with an HTML part, each
/// sending one email with a non-ASCII subject the moment a candidate
/// enrolls.
const SIGNED_CAMPAIGNS: [(&str, &str); 2] = [("plain", "hola"), ("rich", "rico")];

/// A folder as an operator lays it out, sending through the SMTP server at
/// `addr` from a non-ASCII display name, signing with the fixture key
/// `key` copied in as `dkim.key`.
fn signed_site(addr: SocketAddr, key: &str, algorithm: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let admin = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    write(
        FILE_NAME,
        &format!(
            r#"store = "data"
campaigns = "campaigns"
templates = "templates"

[admin]
listen = "{admin}"

[server]
listen = "127.0.0.1:0"

[channels.email]
transport = "smtp"
host = "{}"
port = {}
security = "plain"
from = "Zoë Núñez — Contratación <jobs@example.com>"
dkim = {{ domain = "example.com", selector = "nudge", algorithm = "{algorithm}", private_key_path = "dkim.key" }}
"#,
            addr.ip(),
            addr.port()
        ),
    );
    let key_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures/smtp")
        .join(key);
    std::fs::copy(key_path, dir.path().join("dkim.key")).unwrap();
    for (campaign, template) in SIGNED_CAMPAIGNS {
        write(
            &format!("campaigns/{campaign}.nudge"),
            &format!(
                "campaign {campaign} {{\n  title \"Almacén\"\n  channels email\n  goal completed\n\n  state invite {{\n    send \"{template}\"\n    end\n  }}\n}}\n"
            ),
        );
        write(
            &format!("templates/{template}.email.j2"),
            "Subject: ¡Hola {{ candidate.first_name }}! Tu entrevista para {{ campaign.title }} está abierta hasta el viernes\n\n\
             Hola {{ candidate.first_name }}, tu enlace: {{ link }}\n\n--\nDarse de baja: {{ unsubscribe_link }}\n",
        );
    }
    write(
        "templates/rico.email.html.j2",
        "<p>¡Hola {{ candidate.first_name }}! <a href=\"{{ link }}\">Tu entrevista</a>.</p>\n\
         <p><a href=\"{{ unsubscribe_link }}\">Darse de baja</a></p>\n",
    );
    dir
}

/// `nudge ARGS` in `dir`, with its configuration.
fn nudge_in(dir: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_nudge"));
    cmd.arg("--config")
        .arg(dir.join(FILE_NAME))
        .args(args)
        .current_dir(dir)
        .env_remove("NUDGE_CONFIG")
        .env_remove("NUDGE_LOG")
        .env("NO_COLOR", "1");
    cmd
}

/// The emails `nudge run` sends verify with dkimpy: the real daemon,
/// plain and multipart, an RSA and an Ed25519 key.
#[test]
fn the_daemon_sends_emails_that_verify() {
    for (key, algorithm) in [
        ("dkim-test-pkcs8.pem", "rsa"),
        ("dkim-test-ed25519-pkcs8.pem", "ed25519"),
    ] {
        let inbox = Inbox::default();
        let site = signed_site(start(&inbox), key, algorithm);
        for (n, (campaign, _)) in SIGNED_CAMPAIGNS.iter().enumerate() {
            let out = nudge_in(
                site.path(),
                &[
                    "enroll",
                    "--campaign",
                    campaign,
                    "--id",
                    &format!("c{n}"),
                    "--name",
                    "Zoë Pérez",
                    "--email",
                    "zoe@example.com",
                ],
            )
            .output()
            .unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        }
        let mut daemon = nudge_in(site.path(), &["run"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nudge run starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while inbox.mails().len() < SIGNED_CAMPAIGNS.len() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = daemon.kill();
        let _ = daemon.wait();
        let mails = inbox.mails();
        assert_eq!(
            mails.len(),
            SIGNED_CAMPAIGNS.len(),
            "{key}: emails received"
        );
        let public = PublicKey::fixture(key, "nudge", "example.com");
        for mail in &mails {
            let email = Entity::parse(&mail.text());
            let what = format!("{key}, {}", email.header("Content-Type").unwrap());
            assert!(
                email.header("Subject").unwrap().contains("=?utf-8?"),
                "{what}"
            );
            if let Err(why) = verify(&mail.data, &public) {
                panic!("{what}: does not verify\n{why}\n{}", mail.text());
            }
        }
    }
}

/// `nudge check` reads the DKIM key as `nudge run` would and refuses one
/// that cannot sign, naming the setting, the file and why.
#[test]
fn check_refuses_a_dkim_key_that_cannot_sign() {
    let addr: SocketAddr = "127.0.0.1:2525".parse().unwrap();
    let good = signed_site(addr, "dkim-test-ed25519-pkcs8.pem", "ed25519");
    let out = nudge_in(good.path(), &["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let wrong = signed_site(addr, "dkim-test-pkcs8.pem", "ed25519");
    let out = nudge_in(wrong.path(), &["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let key = wrong.path().join("dkim.key");
    let expected = format!(
        "error: `channels.email.dkim.private_key_path`: the DKIM key {} is not usable: \
         it is an RSA key, but `algorithm` is \"ed25519\"",
        key.display()
    );
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));

    std::fs::remove_file(&key).unwrap();
    let out = nudge_in(wrong.path(), &["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let expected = format!("cannot read the DKIM key {}: ", key.display());
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
}

#[tokio::test]
async fn starttls_encrypts_with_a_certificate_from_the_configured_ca() {
    let inbox = Inbox::default();
    let addr = start_with(&inbox, true);
    let ca = r#"tls_ca_path = "tests/it/fixtures/smtp/ca.pem""#;
    let smtp = channel_to("localhost", addr.port(), "starttls", ca).unwrap();
    assert_eq!(
        smtp.check().await.unwrap(),
        format!(
            "smtp localhost:{} (starttls): connected, encrypted",
            addr.port()
        )
    );
    smtp.deliver(&email("k-tls")).await.unwrap();
    assert_eq!(inbox.mails().len(), 1);
}

#[tokio::test]
async fn starttls_refuses_an_unknown_certificate_and_a_server_without_starttls() {
    let inbox = Inbox::default();
    // A certificate from a CA nudge was not told to trust.
    let tls = start_with(&inbox, true);
    let smtp = channel_to("localhost", tls.port(), "starttls", "").unwrap();
    let err = smtp.deliver(&email("k-untrusted")).await.unwrap_err();
    assert!(matches!(err, SendError::Retryable(_)), "{err:?}");
    assert!(smtp.check().await.unwrap_err().contains("certificate"));

    // A server that does not offer STARTTLS: no fallback to plain text.
    let plain = start(&inbox);
    let smtp = channel_to("localhost", plain.port(), "starttls", "").unwrap();
    let err = smtp.deliver(&email("k-downgrade")).await.unwrap_err();
    assert!(
        matches!(err, SendError::Retryable(ref why) if why.contains("STARTTLS")),
        "{err:?}"
    );
    assert!(inbox.mails().is_empty());
}

// ---------------------------------------------------------------------------
// How failures are classified

#[tokio::test]
async fn a_451_is_retryable_and_the_next_try_goes_through_on_the_same_connection() {
    let inbox = Inbox::default();
    inbox.script_rcpt([Response::custom(451, "4.3.0 try again later".to_string())]);
    let smtp = channel(start(&inbox), "");
    let msg = email("k-451");

    let first = smtp.deliver(&msg).await.unwrap_err();
    assert!(matches!(first, SendError::Retryable(_)), "{first:?}");
    assert!(first.to_string().contains("451"), "{first}");
    assert!(inbox.mails().is_empty());

    smtp.deliver(&msg).await.unwrap();
    assert_eq!(inbox.mails().len(), 1);
    // The refused transaction was reset, not the connection dropped.
    assert_eq!(inbox.sessions(), 1);
}

#[tokio::test]
async fn a_550_on_the_mailbox_is_a_bounce() {
    let inbox = Inbox::default();
    inbox.script_rcpt([Response::custom(550, "5.1.1 no such user".to_string())]);
    let smtp = channel(start(&inbox), "");

    let err = smtp.deliver(&email("k-550")).await.unwrap_err();
    assert_eq!(
        err,
        SendError::Bounced("SMTP 550 at RCPT TO: 5.1.1 no such user".to_string())
    );
    assert!(!err.is_retryable());
    assert!(inbox.mails().is_empty());
}

#[tokio::test]
async fn a_5xx_to_the_message_is_permanent() {
    let inbox = Inbox::default();
    inbox.script_data([Response::custom(554, "5.7.1 message refused".to_string())]);
    let smtp = channel(start(&inbox), "");

    let err = smtp.deliver(&email("k-554")).await.unwrap_err();
    assert_eq!(
        err,
        SendError::Permanent("SMTP 554 at the message: 5.7.1 message refused".to_string())
    );
    // The next email goes out, on a new connection: after refusing a
    // message, mailin (like some other servers) is in no state to go on.
    smtp.deliver(&email("k-after")).await.unwrap();
    assert_eq!(inbox.mails().len(), 1);
    assert_eq!(inbox.sessions(), 2);
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let smtp = channel(addr, "");
    let err = smtp.deliver(&email("k-refused")).await.unwrap_err();
    assert!(matches!(err, SendError::Retryable(_)), "{err:?}");
    assert!(smtp.check().await.is_err());
}

#[tokio::test]
async fn a_silent_server_times_out_as_retryable() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts, then never says a word.
    std::thread::spawn(move || {
        let held: Vec<TcpStream> = listener.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    let smtp = channel(addr, "timeout_secs = 1");
    let started = std::time::Instant::now();
    let err = smtp.deliver(&email("k-silent")).await.unwrap_err();
    assert!(
        matches!(err, SendError::Retryable(ref why) if why.contains("timed out")),
        "{err:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

// ---------------------------------------------------------------------------
// A hand-written server: one transaction per connection, optional AUTH

/// What the scripted server saw: every line from the client.
type Lines = Arc<Mutex<Vec<String>>>;

/// Serves SMTP on loopback: offers `AUTH PLAIN` when `auth`, accepts one
/// email per connection, then closes the connection (as a server that
/// drops idle clients would).
fn start_scripted(auth: bool) -> (SocketAddr, Lines) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let lines: Lines = Arc::default();
    let seen = Arc::clone(&lines);
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                let _ = serve_once(stream, auth, &seen);
            });
        }
    });
    (addr, lines)
}

fn serve_once(stream: TcpStream, auth: bool, seen: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    out.write_all(b"220 scripted.test ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        seen.lock().unwrap().push(line.trim_end().to_string());
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" if auth => out.write_all(b"250-scripted.test\r\n250 AUTH PLAIN\r\n")?,
            "EHLO" => out.write_all(b"250 scripted.test\r\n")?,
            "AUTH" => out.write_all(b"235 2.7.0 accepted\r\n")?,
            "MAIL" | "RCPT" | "RSET" => out.write_all(b"250 ok\r\n")?,
            "DATA" => {
                out.write_all(b"354 go ahead\r\n")?;
                loop {
                    line.clear();
                    input.read_line(&mut line)?;
                    if line == ".\r\n" || line.is_empty() {
                        break;
                    }
                }
                out.write_all(b"250 2.0.0 queued as 7F3A\r\n")?;
                // One email per connection.
                return Ok(());
            }
            "QUIT" => {
                out.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => out.write_all(b"502 not implemented\r\n")?,
        }
    }
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_replaced() {
    let (addr, lines) = start_scripted(false);
    let smtp = channel(addr, "");
    let first = smtp.deliver(&email("k-a")).await.unwrap();
    assert_eq!(first.provider_id.as_deref(), Some("2.0.0 queued as 7F3A"));
    // The pooled connection is dead by now; the email goes out on a new one.
    smtp.deliver(&email("k-b")).await.unwrap();
    let ehlos = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("EHLO"))
        .count();
    assert_eq!(ehlos, 2);
}

#[tokio::test]
async fn the_password_comes_from_the_environment_and_is_never_printed() {
    // Unique to this test: the process's environment is shared.
    std::env::set_var("NUDGE_TEST_SMTP_PASSWORD", "s3cret-pass");
    let (addr, lines) = start_scripted(true);
    let smtp = channel(
        addr,
        r#"
username = "jobs@example.com"
password_env = "NUDGE_TEST_SMTP_PASSWORD"
"#,
    );
    let report = smtp.check().await.unwrap();
    assert!(report.contains("logged in as jobs@example.com"), "{report}");
    smtp.deliver(&email("k-auth")).await.unwrap();

    // AUTH PLAIN carries "\0user\0password" in base64.
    let auth = lines
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.starts_with("AUTH PLAIN"))
        .cloned()
        .expect("authenticated");
    assert_eq!(auth, "AUTH PLAIN AGpvYnNAZXhhbXBsZS5jb20AczNjcmV0LXBhc3M=");
    let printed = format!(
        "{smtp:?} {report} {}",
        Backend::Smtp(Box::new(channel(addr, ""))).describe()
    );
    assert!(!printed.contains("s3cret"), "{printed}");
}

#[tokio::test]
async fn check_reports_the_server_and_describe_names_it() {
    let inbox = Inbox::default();
    let addr = start(&inbox);
    let smtp = channel(addr, "");
    let report = smtp.check().await.unwrap();
    assert_eq!(
        report,
        format!("smtp 127.0.0.1:{} (plain): connected", addr.port())
    );
    assert_eq!(
        Backend::Smtp(Box::new(smtp)).describe(),
        format!("smtp 127.0.0.1:{} (plain)", addr.port())
    );
    assert!(inbox.mails().is_empty());
}

#[test]
fn a_missing_password_variable_is_an_error_naming_it() {
    let toml = r#"
[channels.email]
transport = "smtp"
host = "smtp.example.com"
username = "jobs@example.com"
password_env = "NUDGE_TEST_UNSET_PASSWORD"
from = "jobs@example.com"
"#;
    let config = parse_str(FILE_NAME, toml).unwrap();
    let Transport::Smtp(smtp) = &config.channels.email else {
        panic!()
    };
    assert_eq!(smtp.port(), 587);
    let err = SmtpChannel::new(smtp).unwrap_err();
    assert_eq!(
        err,
        "environment variable `NUDGE_TEST_UNSET_PASSWORD` is not set (it holds the SMTP password)"
    );
}

// ---------------------------------------------------------------------------
// Configuration errors

#[track_caller]
fn assert_config_error(input: &str, expected: &str) {
    let err = parse_str(FILE_NAME, input.trim_start()).unwrap_err();
    let actual = err.render(false);
    let trim = |s: &str| {
        s.lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_string()
    };
    assert_eq!(trim(&actual), trim(expected), "actual:\n{actual}");
}

#[test]
fn a_from_that_is_not_a_mailbox_is_pointed_at() {
    assert_config_error(
        r#"
[channels.email]
transport = "smtp"
host = "smtp.example.com"
from = "Dana Ruiz jobs.example.com"
"#,
        r#"
error: `channels.email.from` is not a mailbox
 --> nudge.toml:4:8
  |
4 | from = "Dana Ruiz jobs.example.com"
  |        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^ not an address, nor a name and an address in <>
  |
  = help: write an address, or a name and an address, such as "Dana Ruiz <jobs@example.com>"
"#,
    );
}

#[test]
fn smtp_is_for_email_only_and_every_bad_value_is_reported() {
    assert_config_error(
        r#"
[channels.sms]
transport = "smtp"
host = ""
from = "jobs@example.com"
username = "jobs"
pool_size = 0
"#,
        r#"
error: `channels.sms` cannot use the smtp transport
 --> nudge.toml:2:13
  |
2 | transport = "smtp"
  |             ^^^^^^ smtp sends email only
  |
  = help: use it under [channels.email]

error: `channels.sms.host` is empty
 --> nudge.toml:3:8
  |
3 | host = ""
  |        ^^ no server to send to
  |
  = help: name the SMTP server, such as "smtp.example.com"

error: `channels.sms.username` has no `password_env`
 --> nudge.toml:5:12
  |
5 | username = "jobs"
  |            ^^^^^^ a user name without a password
  |
  = help: name the environment variable holding the password: password_env = "NUDGE_SMTP_PASSWORD"

error: `channels.sms.pool_size` is 0; it must be from 1 to 64
 --> nudge.toml:6:13
  |
6 | pool_size = 0
  |             ^ out of range
  |
  = help: leave it out for the default, 8
"#,
    );
}

#[test]
fn an_unknown_security_mode_is_named() {
    assert_config_error(
        r#"
[channels.email]
transport = "smtp"
host = "smtp.example.com"
from = "jobs@example.com"
security = "ssl"
"#,
        r#"
error: `channels.email.security` is `ssl`; it must be `plain`, `starttls` or `tls`
 --> nudge.toml:5:12
  |
5 | security = "ssl"
  |            ^^^^^ not `plain`, `starttls` or `tls`
  |
  = help: write `plain`, `starttls` or `tls`
"#,
    );
}

#[test]
fn a_password_in_the_file_is_not_a_setting() {
    assert_config_error(
        r#"
[channels.email]
transport = "smtp"
host = "smtp.example.com"
from = "jobs@example.com"
password = "hunter2"
"#,
        r#"
error: `channels.email.password`: unknown field `password`, expected one of `host`, `port`, `security`, `tls_ca_path`, `username`, `password_env`, `from`, `reply_to`, `pool_size`, `timeout_secs`, `hello_name`, `dkim`, `campaigns`
 --> nudge.toml:5:1
  |
5 | password = "hunter2"
  | ^^^^^^^^
"#,
    );
}
