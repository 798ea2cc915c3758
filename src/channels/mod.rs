//! Channels: where a rendered message goes out. This module owns the
//! [`Message`] the runtime hands over, the failure classification
//! ([`SendError`]: retryable or permanent, decided where the failure
//! happens), the closed set of backends ([`Backend`]) per channel kind
//! ([`Channels`]), and the transports that configure them ([`Transport`]:
//! each transport's settings live in its own module, with a pure
//! `validate` and an IO `build`).
//!
//! Every backend is used through `&self` from many tokio tasks at once;
//! those that hold state lock it inside. Blocking work (terminal and file
//! writes, `fsync`) runs on tokio's blocking pool, so a slow disk does not
//! stall the scheduler.

pub mod console;
pub mod file;
mod http;
pub mod phone;
pub mod secret;
pub mod segments;
pub mod smtp;
pub mod transport;
pub mod twilio;
pub mod webhook;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::engine::{Channel, Instant};

pub use console::Console;
pub use file::{read_messages, FileChannel, FileConfig};
pub use smtp::SmtpChannel;
pub use transport::{Bounds, PlainHttp, SettingProblem, Transport, TransportKind};
pub use twilio::TwilioChannel;
pub use webhook::WebhookChannel;

/// One message ready to go out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Idempotency key: the same key is the same message (derived by the
    /// runtime from enrollment, state visit, send index).
    pub key: String,
    /// The campaign's identifier (`warehouse_associate`).
    pub campaign: String,
    /// The candidate's id.
    pub candidate: String,
    /// The resolved template name (`invite-warm`).
    pub template: String,
    /// The channel kind it goes out on.
    pub channel: Channel,
    /// The address: email address or phone number (empty for webhook).
    pub to: String,
    /// The subject line, for email.
    pub subject: Option<String>,
    /// The rendered text.
    pub body: String,
    /// The rendered HTML alternative of an email, when an HTML template exists.
    /// (Never skipped when serialising: the store's encoding is positional.)
    #[serde(default)]
    pub html: Option<String>,
    /// The candidate's one-click unsubscribe link (email: `List-Unsubscribe`).
    #[serde(default)]
    pub unsubscribe_url: Option<String>,
    /// The instant the engine decided to send it (RFC 3339 in JSON; in
    /// the store, see [`crate::store::instant_form`]).
    #[serde(with = "crate::store::instant_form")]
    pub scheduled_at: Instant,
    /// Marked in flight by the commit that queued it
    /// ([`Core::mark_in_flight_when_queued`](crate::runtime::core::Core::mark_in_flight_when_queued)),
    /// so the dispatcher hands it over without marking it again. Neither
    /// stored nor sent.
    #[serde(skip)]
    pub in_flight: bool,
}

/// How a delivery failed, classified where it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Trying the same message again later may succeed (a full disk, a
    /// timeout, a provider's 5xx).
    Retryable(String),
    /// The provider asked us to slow down and said when to come back
    /// (HTTP 429 with `Retry-After`).
    Throttled {
        why: String,
        retry_after: std::time::Duration,
    },
    /// The same message will never succeed on this channel (a rejected
    /// address); the runtime moves on to the next channel or gives up.
    Permanent(String),
    /// The mailbox does not exist (SMTP 550): permanent, and recorded as a
    /// `bounced` event for the candidate.
    Bounced(String),
    /// The recipient told the provider to stop (Twilio 21610: they replied
    /// STOP): permanent, and recorded as the candidate's `opted_out`, so
    /// nothing goes to them again on any channel.
    Unsubscribed(String),
}

impl SendError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Retryable(_) | SendError::Throttled { .. })
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Retryable(why) => write!(f, "delivery failed, will retry: {why}"),
            SendError::Throttled { why, retry_after } => write!(
                f,
                "delivery throttled, will retry after {} s: {why}",
                retry_after.as_secs()
            ),
            SendError::Permanent(why) => write!(f, "delivery failed for good: {why}"),
            SendError::Bounced(why) => write!(f, "bounced: {why}"),
            SendError::Unsubscribed(why) => write!(f, "the recipient unsubscribed: {why}"),
        }
    }
}

impl std::error::Error for SendError {}

/// A delivery that succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delivered {
    /// True when the channel recognised the key as already delivered and
    /// did nothing.
    pub duplicate: bool,
    /// The provider's id for the message, where it gives one.
    pub provider_id: Option<String>,
}

/// The configured backend of one channel kind; a closed enum.
// Four of these exist, built once at startup: boxing the large variants
// would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Backend {
    /// Prints each message for a person watching a terminal.
    Console(Console),
    /// Appends each message as a JSON line to a file, once per key.
    File(FileChannel),
    /// Drops everything (benchmarks).
    Null,
    /// SMS or WhatsApp through Twilio's Messages API.
    Twilio(TwilioChannel),
    /// Signed JSON POSTs to a URL.
    Webhook(WebhookChannel),
    /// Sends email through an SMTP server.
    Smtp(Box<SmtpChannel>),
}

impl Backend {
    /// Delivers one message.
    pub async fn deliver(&self, msg: &Message) -> Result<Delivered, SendError> {
        match self {
            Backend::Console(console) => console.deliver(msg).await,
            Backend::File(file) => file.deliver(msg).await,
            Backend::Null => Ok(Delivered::default()),
            Backend::Twilio(twilio) => twilio.deliver(msg).await,
            Backend::Webhook(webhook) => webhook.deliver(msg).await,
            Backend::Smtp(smtp) => smtp.deliver(msg).await,
        }
    }

    /// Whether delivering the same key twice is recognised (file: yes;
    /// webhook: yes, its receiver must dedupe by `Idempotency-Key`;
    /// console, null, Twilio: no).
    ///
    /// SMTP: no. The same key always carries the same `Message-ID`, so a
    /// mailbox that dedupes by it shows a repeat once, but the server does
    /// not dedupe, and when the connection dies or times out after the
    /// message's final `.` nudge cannot know whether the server took it.
    pub fn idempotent(&self) -> bool {
        match self {
            Backend::File(_) | Backend::Webhook(_) => true,
            Backend::Console(_) | Backend::Null | Backend::Twilio(_) | Backend::Smtp(_) => false,
        }
    }

    /// Whether the channel works, without sending a message: an SMTP
    /// EHLO (and STARTTLS and login), an authenticated GET on the SMS
    /// provider's account. Says what was checked.
    pub async fn check(&self) -> Result<String, String> {
        match self {
            Backend::Console(_) => Ok("prints messages on this terminal".into()),
            Backend::Null => Ok("drops every message".into()),
            Backend::File(file) => Ok(format!("appends to {}", file.path().display())),
            Backend::Twilio(twilio) => twilio.check().await,
            Backend::Smtp(smtp) => smtp.check().await,
            Backend::Webhook(_) => Ok(
                "configured; not contacted (a webhook cannot be called without sending a message)"
                    .into(),
            ),
        }
    }

    /// `console`, `file /path/out.jsonl`, `null`,
    /// `smtp smtp.example.com:587 (starttls)`, a Twilio or webhook line:
    /// for `nudge run`'s startup lines.
    pub fn describe(&self) -> String {
        match self {
            Backend::Console(_) => "console".to_string(),
            Backend::File(file) => format!("file {}", file.path().display()),
            Backend::Null => "null".to_string(),
            Backend::Twilio(twilio) => twilio.describe(),
            Backend::Webhook(webhook) => webhook.describe(),
            Backend::Smtp(smtp) => smtp.describe(),
        }
    }
}

/// The backend of every channel kind. Share it between tasks as
/// `Arc<Channels>`.
#[derive(Debug)]
pub struct Channels {
    email: Backend,
    sms: Backend,
    whatsapp: Backend,
    webhook: Backend,
}

impl Channels {
    /// One backend per channel kind.
    pub fn new(email: Backend, sms: Backend, whatsapp: Backend, webhook: Backend) -> Self {
        Channels {
            email,
            sms,
            whatsapp,
            webhook,
        }
    }

    /// The embedded default: every channel prints to stdout.
    pub fn all_console() -> Self {
        let console = || Backend::Console(Console::stdout());
        Channels::new(console(), console(), console(), console())
    }

    /// The backend of a channel kind.
    pub fn get(&self, kind: Channel) -> &Backend {
        match kind {
            Channel::Email => &self.email,
            Channel::Sms => &self.sms,
            Channel::Whatsapp => &self.whatsapp,
            Channel::Webhook => &self.webhook,
        }
    }

    /// Whether every channel only prints to the terminal, so nothing
    /// reaches a candidate (the daemon warns about it).
    pub fn only_console(&self) -> bool {
        Channel::ALL
            .into_iter()
            .all(|kind| matches!(self.get(kind), Backend::Console(_)))
    }
}
