//! The SMTP email channel: builds each [`Message`] into a MIME email
//! (plain text, plus an HTML alternative when there is one), signs it with
//! DKIM when a key is configured, and hands it to an SMTP server over a
//! small pool of connections of its own.
//!
//! The email carries a `Message-ID` derived from the idempotency key (the
//! same send always has the same id, so receivers that dedupe by it show a
//! retried send once) and, when the candidate has an unsubscribe link,
//! `List-Unsubscribe` with `List-Unsubscribe-Post: List-Unsubscribe=One-Click`
//! (RFC 8058); both are covered by the DKIM signature, as one-click
//! unsubscribe requires.
//!
//! Why not lettre's own pool: its connections write the message and the
//! final `.` line separately, on sockets without `TCP_NODELAY`. Nagle's
//! algorithm then holds the small `.` until the server acknowledges the
//! message, which the server delays (about 40 ms on Linux) because it is
//! waiting for the `.`: one connection manages about 25 emails a second.
//! Here the message and its `.` leave in one write, and plain and STARTTLS
//! sockets also get `TCP_NODELAY` (lettre does not let us reach the socket
//! of an implicit-TLS connection; the single write is enough there). The
//! SMTP conversation itself (EHLO, STARTTLS, AUTH, reply parsing) is
//! lettre's `AsyncSmtpConnection`.
//!
//! Failures are classified where they happen ([`SendError`]): a 4xx reply,
//! a network error or a timeout is retryable; 550, 551 or 553 in reply to
//! `RCPT` (no such mailbox) is a bounce; any other 5xx reply to the
//! message is permanent. A failure while connecting (greeting, `EHLO`,
//! `STARTTLS`, `AUTH`), even a 5xx, is retryable: it says nothing about
//! the message, and giving up every queued email over a wrong password or
//! an expired certificate would be worse than holding them until it is
//! fixed.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lettre::message::dkim::DkimConfig;
use lettre::message::header::{
    ContentTransferEncoding, ContentType, HeaderName, HeaderValue, MIME_VERSION_1_0,
};
use lettre::message::{Body, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use lettre::Address;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::{Delivered, Message, SendError};

mod config;
mod dkim;

pub use config::{DkimAlgorithm, DkimSettings, Security, SenderSettings, SmtpConfig};

/// A pooled connection unused for longer than this is closed rather than
/// reused: servers drop idle clients (RFC 5321 asks them to wait at least
/// five minutes; many wait less).
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// Sends email through one SMTP server.
pub struct SmtpChannel {
    server: Server,
    senders: Senders,
    dkim: Option<Arc<DkimConfig>>,
    pool: Pool,
}

/// How to reach and log in to the server.
struct Server {
    host: String,
    port: u16,
    security: Security,
    tls: Option<TlsParameters>,
    hello: ClientId,
    /// lettre's `Credentials` never prints the password in `Debug`.
    credentials: Option<Credentials>,
    username: Option<String>,
    timeout: Duration,
}

/// Who each email is from.
struct Senders {
    default: Sender,
    campaigns: HashMap<String, Sender>,
}

#[derive(Clone)]
struct Sender {
    from: Mailbox,
    reply_to: Option<Mailbox>,
}

/// Open connections waiting for the next message, and permits for how many
/// may be in use at once.
struct Pool {
    permits: Semaphore,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl fmt::Debug for SmtpChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpChannel")
            .field("server", &self.describe())
            .field("username", &self.server.username)
            .field("from", &self.senders.default.from.to_string())
            .field("dkim", &self.dkim.is_some())
            .finish_non_exhaustive()
    }
}

impl SmtpChannel {
    /// The channel the configuration describes, with the password read
    /// from the environment variable `password_env` and the DKIM key from
    /// its file. Nothing is connected yet. The error says what is wrong in
    /// words, never quoting the password.
    pub fn new(config: &SmtpConfig) -> Result<SmtpChannel, String> {
        let password = match &config.password_env {
            Some(name) => match std::env::var(name) {
                Ok(value) if !value.is_empty() => Some(value),
                Ok(_) => return Err(format!("environment variable `{name}` is empty")),
                Err(std::env::VarError::NotPresent) => {
                    return Err(format!(
                        "environment variable `{name}` is not set (it holds the SMTP password)"
                    ))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(format!("environment variable `{name}` is not valid UTF-8"))
                }
            },
            None => None,
        };
        let credentials = match (&config.username, password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password)),
            (Some(_), None) => return Err("`username` needs `password_env`".to_string()),
            (None, _) => None,
        };
        let tls = match config.security {
            Security::Plain => None,
            Security::Starttls | Security::Tls => Some(tls_parameters(config)?),
        };
        let hello = match &config.hello_name {
            Some(name) => ClientId::Domain(name.clone()),
            None => ClientId::default(),
        };
        let mailbox = |what: &str, text: &str| {
            text.parse::<Mailbox>()
                .map_err(|e| format!("{what} `{text}` is not a mailbox: {e}"))
        };
        let default = Sender {
            from: mailbox("from", &config.from)?,
            reply_to: config
                .reply_to
                .as_deref()
                .map(|r| mailbox("reply_to", r))
                .transpose()?,
        };
        let mut campaigns = HashMap::new();
        for (name, settings) in &config.campaigns {
            let from = match &settings.from {
                Some(from) => mailbox(&format!("campaign {name}'s from"), from)?,
                None => default.from.clone(),
            };
            let reply_to = match &settings.reply_to {
                Some(r) => Some(mailbox(&format!("campaign {name}'s reply_to"), r)?),
                None => default.reply_to.clone(),
            };
            campaigns.insert(name.clone(), Sender { from, reply_to });
        }
        let dkim = config
            .dkim
            .as_ref()
            .map(|dkim| dkim::load(dkim).map(Arc::new))
            .transpose()?;
        Ok(SmtpChannel {
            server: Server {
                host: config.host.clone(),
                port: config.port(),
                security: config.security,
                tls,
                hello,
                credentials,
                username: config.username.clone(),
                timeout: Duration::from_secs(SmtpConfig::TIMEOUT_SECS.clamp(config.timeout_secs)),
            },
            senders: Senders { default, campaigns },
            dkim,
            pool: Pool {
                permits: Semaphore::new(SmtpConfig::POOL_SIZE.clamp_usize(config.pool_size)),
                idle: Mutex::new(Vec::new()),
            },
        })
    }

    /// `smtp smtp.example.com:587 (starttls)`, for `nudge run`'s startup
    /// lines.
    pub fn describe(&self) -> String {
        format!(
            "smtp {}:{} ({})",
            self.server.host,
            self.server.port,
            self.server.security.name()
        )
    }

    /// Connects, says `EHLO`, upgrades to TLS and logs in as configured,
    /// then says `QUIT`; no mail is sent. Returns what was reached, in
    /// words, or why it failed.
    pub async fn check(&self) -> Result<String, String> {
        let mut conn = self
            .server
            .connect()
            .await
            .map_err(|f| format!("{}: {}", self.describe(), f.describe()))?;
        let mut report = format!("{}: connected", self.describe());
        if conn.is_encrypted() {
            report.push_str(", encrypted");
        }
        if let Some(user) = &self.server.username {
            let _ = write!(report, ", logged in as {user}");
        }
        if self.dkim.is_some() {
            report.push_str(", DKIM key loaded");
        }
        // Best effort: a server that drops us at QUIT has still answered.
        let _ = conn.quit().await;
        Ok(report)
    }

    /// Sends `msg` as an email. See the module header for how failures are
    /// classified. On success, `provider_id` is the server's reply to the
    /// message (it usually names the queue id).
    pub async fn deliver(&self, msg: &Message) -> Result<Delivered, SendError> {
        let email = self.compose(msg).await?;
        let _permit = self
            .pool
            .permits
            .acquire()
            .await
            .map_err(|_| SendError::Retryable("the SMTP channel is shut down".to_string()))?;
        // A pooled connection may have been closed by the server while idle;
        // that shows as a failure before the message was handed over, and
        // the message then goes out on a fresh connection.
        let (mut conn, mut reused) = match self.pool.take() {
            Some(conn) => (conn, true),
            None => (self.connect().await?, false),
        };
        loop {
            let sent = tokio::time::timeout(self.server.timeout, transact(&mut conn, &email)).await;
            let failure = match sent {
                Ok(Ok(reply)) => {
                    self.pool.put(conn);
                    return Ok(Delivered {
                        duplicate: false,
                        provider_id: Some(reply.message().collect::<Vec<_>>().join(" ")),
                    });
                }
                Ok(Err(failure)) => failure,
                // The connection is somewhere in the middle of a command:
                // dropping it closes the socket.
                Err(_) => {
                    return Err(SendError::Retryable(format!(
                        "timed out after {} s sending the message",
                        self.server.timeout.as_secs()
                    )))
                }
            };
            if reused && failure.stale_connection() {
                reused = false;
                conn = self.connect().await?;
                continue;
            }
            // A refusal before the message leaves the connection usable
            // once the transaction is reset. A refusal of the message itself
            // should end the transaction (RFC 5321 4.1.1.4), but some
            // servers (mailin among them) keep reading it as message text,
            // so that connection is closed instead.
            if failure.reply().is_some()
                && !failure.closes_connection()
                && failure.stage != Stage::Content
            {
                if let Ok(Ok(_)) =
                    tokio::time::timeout(self.server.timeout, conn.command(Rset)).await
                {
                    self.pool.put(conn);
                }
            }
            return Err(failure.classify());
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        self.server.connect().await.map_err(|f| f.classify())
    }

    /// The email for `msg`: envelope and the dot-stuffed text ending with
    /// the `.` line, ready to write after `DATA`.
    async fn compose(&self, msg: &Message) -> Result<Email, SendError> {
        let sender = self
            .senders
            .campaigns
            .get(&msg.campaign)
            .unwrap_or(&self.senders.default);
        let to: Mailbox = msg.to.parse().map_err(|e| {
            SendError::Permanent(format!("`{}` is not an email address: {e}", msg.to))
        })?;
        let mut builder = lettre::Message::builder()
            .from(sender.from.clone())
            .to(to)
            .subject(msg.subject.clone().unwrap_or_default())
            .message_id(Some(message_id(&msg.key, &sender.from.email)));
        if let Some(reply_to) = &sender.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        if let Some(url) = &msg.unsubscribe_url {
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_string(),
                ));
        }
        let (content_type, body) = mime_body(msg)?;
        let mut email = builder
            .header(MIME_VERSION_1_0)
            .header(content_type)
            .body(body)
            .map_err(|e| SendError::Permanent(format!("cannot build the email: {e}")))?;
        if let Some(dkim) = &self.dkim {
            // RSA signing takes about a millisecond: not on the scheduler's
            // threads.
            let dkim = Arc::clone(dkim);
            email = tokio::task::spawn_blocking(move || {
                email.sign(&dkim);
                email
            })
            .await
            .map_err(|e| SendError::Retryable(format!("DKIM signing failed: {e}")))?;
        }
        Email::new(&email)
    }
}

/// The email's MIME body (plain text, or `multipart/alternative` with the
/// HTML) as its `Content-Type` and its encoded bytes, for the message
/// itself to carry.
///
/// Why not lettre's `singlepart`/`multipart`: those keep the body's
/// `Content-Type` (and `Content-Transfer-Encoding`) with the MIME part,
/// written after the message's headers, and lettre's DKIM signer reads only
/// the message's own headers: it named `content-type` in `h=` but left it
/// out of the signed data, so no signature verified. As the message's own
/// headers they are signed as they are sent.
fn mime_body(msg: &Message) -> Result<(ContentType, Body), SendError> {
    let Some(html) = &msg.html else {
        return Ok((ContentType::TEXT_PLAIN, Body::new(msg.body.clone())));
    };
    let part = MultiPart::alternative_plain_html(msg.body.clone(), html.clone());
    let content_type = part.headers().get::<ContentType>().ok_or_else(|| {
        SendError::Permanent("cannot build the email: the multipart has no Content-Type".into())
    })?;
    // The parts follow the multipart's headers and the blank line.
    let formatted = part.formatted();
    let start = formatted
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(formatted.len(), |at| at + 4);
    // lettre encodes every part to 7-bit text (quoted-printable or base64
    // where it is not), so the whole is 7-bit too.
    let body = Body::dangerous_pre_encoded(
        formatted[start..].to_vec(),
        ContentTransferEncoding::SevenBit,
    );
    Ok((content_type, body))
}

/// TLS for the configured host: the public roots, plus `tls_ca_path`'s.
fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(config.host.clone());
    if let Some(path) = &config.tls_ca_path {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
        let roots = Certificate::from_pem(&pem).map_err(|e| {
            format!(
                "the CA file {} holds no usable certificate: {e}",
                path.display()
            )
        })?;
        builder = builder.add_root_certificate(roots);
    }
    builder
        .build()
        .map_err(|e| format!("cannot set up TLS for `{}`: {e}", config.host))
}

impl Server {
    /// A new connection, past `EHLO`, `STARTTLS` and `AUTH` as configured.
    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        tokio::time::timeout(self.timeout, self.connect_untimed())
            .await
            .unwrap_or_else(|_| Err(Failure::timed_out(Stage::Connect)))
    }

    async fn connect_untimed(&self) -> Result<AsyncSmtpConnection, Failure> {
        let smtp = |e| Failure::smtp(Stage::Connect, e);
        let mut conn = match (self.security, &self.tls) {
            (Security::Tls, Some(tls)) => AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                None,
                &self.hello,
                Some(tls.clone()),
                None,
            )
            .await
            .map_err(smtp)?,
            _ => {
                let tcp = TcpStream::connect((self.host.as_str(), self.port))
                    .await
                    .map_err(|e| Failure::io(Stage::Connect, e))?;
                tcp.set_nodelay(true)
                    .map_err(|e| Failure::io(Stage::Connect, e))?;
                let mut conn =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                        .await
                        .map_err(smtp)?;
                if let (Security::Starttls, Some(tls)) = (self.security, &self.tls) {
                    conn.starttls(tls.clone(), &self.hello)
                        .await
                        .map_err(smtp)?;
                }
                conn
            }
        };
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(smtp)?;
        }
        Ok(conn)
    }
}

impl Pool {
    /// The most recently used idle connection that is fresh enough.
    fn take(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < IDLE_LIMIT && !conn.has_broken() {
                return Some(conn);
            }
        }
        None
    }

    /// Returns a connection to the pool, closing those idle too long (the
    /// oldest sit at the bottom, where `take` rarely reaches).
    fn put(&self, conn: AsyncSmtpConnection) {
        if !conn.has_broken() {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|(_, since)| since.elapsed() < IDLE_LIMIT);
            idle.push((conn, Instant::now()));
        }
    }
}

/// `<32 hex digits of sha256(key)@domain of from>`: the same key always
/// gives the same id.
pub fn message_id(key: &str, from: &Address) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("<{}@{}>", hex::encode(&digest[..16]), from.domain())
}

/// One email ready for the wire.
struct Email {
    from: Option<Address>,
    to: Vec<Address>,
    parameters: Vec<MailParameter>,
    needs_utf8: bool,
    /// The text after `DATA`: dot-stuffed, ending with `\r\n.\r\n`.
    payload: Payload,
}

impl Email {
    fn new(email: &lettre::Message) -> Result<Email, SendError> {
        let envelope = email.envelope();
        let text = String::from_utf8(email.formatted())
            .map_err(|_| SendError::Permanent("the email is not valid UTF-8".to_string()))?;
        let needs_utf8 = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
        let mut parameters = Vec::new();
        if needs_utf8 {
            parameters.push(MailParameter::SmtpUtfEight);
        }
        if !text.is_ascii() {
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        Ok(Email {
            from: envelope.from().cloned(),
            to: envelope.to().to_vec(),
            parameters,
            needs_utf8,
            payload: Payload(dot_stuff(&text)),
        })
    }
}

/// Text written as it is, through lettre's `command` (which writes any
/// `Display` in one write, then reads the reply).
struct Payload(String);

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The message as sent after `DATA` (RFC 5321 4.5.2): a `.` doubled at the
/// start of every line, and the terminating `.` line appended.
fn dot_stuff(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut line_start = true;
    for c in text.chars() {
        if line_start && c == '.' {
            out.push('.');
        }
        out.push(c);
        line_start = c == '\n';
    }
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

/// One mail transaction on an open connection: `MAIL`, `RCPT`, `DATA`, and
/// the message with its `.` in a single write. Returns the final reply.
async fn transact(conn: &mut AsyncSmtpConnection, email: &Email) -> Result<Response, Failure> {
    if email.needs_utf8 && !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
        return Err(Failure::refused(
            "the address is not ASCII and the server does not support SMTPUTF8",
        ));
    }
    if email
        .parameters
        .contains(&MailParameter::Body(MailBodyParameter::EightBitMime))
        && !conn.server_info().supports_feature(Extension::EightBitMime)
    {
        return Err(Failure::refused(
            "the email is not ASCII and the server does not support 8BITMIME",
        ));
    }
    conn.command(Mail::new(email.from.clone(), email.parameters.clone()))
        .await
        .map_err(|e| Failure::smtp(Stage::Mail, e))?;
    for to in &email.to {
        conn.command(Rcpt::new(to.clone(), Vec::new()))
            .await
            .map_err(|e| Failure::smtp(Stage::Rcpt, e))?;
    }
    conn.command(Data)
        .await
        .map_err(|e| Failure::smtp(Stage::Data, e))?;
    conn.command(&email.payload)
        .await
        .map_err(|e| Failure::smtp(Stage::Content, e))
}

/// Where in the conversation a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Connecting: TCP, TLS, greeting, `EHLO`, `STARTTLS`, `AUTH`.
    Connect,
    Mail,
    Rcpt,
    Data,
    /// The message itself, after `DATA` was accepted.
    Content,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Connect => "connecting",
            Stage::Mail => "MAIL FROM",
            Stage::Rcpt => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Content => "the message",
        }
    }
}

/// A failure, with where it happened.
#[derive(Debug)]
struct Failure {
    stage: Stage,
    kind: FailureKind,
}

#[derive(Debug)]
enum FailureKind {
    Smtp(lettre::transport::smtp::Error),
    Io(io::Error),
    TimedOut,
    /// nudge will not send this message to this server.
    Refused(&'static str),
}

impl Failure {
    fn smtp(stage: Stage, e: lettre::transport::smtp::Error) -> Failure {
        Failure {
            stage,
            kind: FailureKind::Smtp(e),
        }
    }

    fn io(stage: Stage, e: io::Error) -> Failure {
        Failure {
            stage,
            kind: FailureKind::Io(e),
        }
    }

    fn timed_out(stage: Stage) -> Failure {
        Failure {
            stage,
            kind: FailureKind::TimedOut,
        }
    }

    fn refused(why: &'static str) -> Failure {
        Failure {
            stage: Stage::Mail,
            kind: FailureKind::Refused(why),
        }
    }

    /// The server's reply code, when the failure is a negative reply.
    fn reply(&self) -> Option<u16> {
        match &self.kind {
            FailureKind::Smtp(e) => e.status().map(u16::from),
            _ => None,
        }
    }

    /// 421: the server is closing the connection.
    fn closes_connection(&self) -> bool {
        self.reply() == Some(421)
    }

    /// Whether a reused connection turned out to be dead before the message
    /// was handed over, so the message may go out on a fresh one.
    fn stale_connection(&self) -> bool {
        self.stage == Stage::Mail
            && (self.closes_connection()
                || matches!(&self.kind, FailureKind::Smtp(e) if e.status().is_none() && !e.is_client()))
    }

    /// What the runtime should make of it.
    fn classify(&self) -> SendError {
        let why = self.describe();
        match (&self.kind, self.reply()) {
            (FailureKind::Refused(_), _) => SendError::Permanent(why),
            (_, Some(550 | 551 | 553)) if self.stage == Stage::Rcpt => SendError::Bounced(why),
            (_, Some(code)) if (500..600).contains(&code) && self.stage != Stage::Connect => {
                SendError::Permanent(why)
            }
            (FailureKind::Smtp(e), None) if e.is_client() && self.stage != Stage::Connect => {
                SendError::Permanent(why)
            }
            _ => SendError::Retryable(why),
        }
    }

    /// `SMTP 550 at RCPT TO: 5.1.1 no such user`: never includes the
    /// password (lettre's errors never quote it).
    fn describe(&self) -> String {
        let stage = self.stage.name();
        match &self.kind {
            FailureKind::Smtp(e) => match e.status() {
                Some(code) => {
                    let text = std::error::Error::source(e)
                        .map(|s| s.to_string())
                        .unwrap_or_default();
                    format!("SMTP {code} at {stage}: {text}")
                }
                None => format!("{e} ({stage})"),
            },
            FailureKind::Io(e) => format!("{e} ({stage})"),
            FailureKind::TimedOut => format!("timed out ({stage})"),
            FailureKind::Refused(why) => why.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_ends_with_the_dot_line() {
        assert_eq!(dot_stuff("a\r\n.b\r\n..\r\n"), "a\r\n..b\r\n...\r\n.\r\n");
        assert_eq!(dot_stuff(".x"), "..x\r\n.\r\n");
        assert_eq!(dot_stuff("a.b\r\n"), "a.b\r\n.\r\n");
    }

    #[test]
    fn message_ids_are_stable_per_key() {
        let from: Address = "jobs@example.com".parse().unwrap();
        let a = message_id("k1", &from);
        assert_eq!(a, message_id("k1", &from));
        assert_ne!(a, message_id("k2", &from));
        assert!(a.starts_with('<') && a.ends_with("@example.com>"));
        assert_eq!(a.len(), 1 + 32 + "@example.com>".len());
    }
}
