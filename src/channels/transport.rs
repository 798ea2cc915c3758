//! The closed set of transports a channel can be configured with, as the
//! `transport` key of a `[channels.<channel>]` table names them. Each
//! transport's settings are its own module's struct; this module only
//! dispatches to them, in the three steps a configuration goes through:
//!
//! 1. reading: the `transport` word picks a [`TransportKind`], which (as a
//!    serde [`DeserializeSeed`]) reads the rest of the table into that
//!    transport's settings;
//! 2. [`Transport::validate`]: pure checks of the values, each problem a
//!    [`SettingProblem`] with its key inside the channel's table;
//! 3. [`Transport::build`]: the IO step (environment variables, files, key
//!    loading) that makes the channel's [`Backend`].

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer};
use serde::{Deserialize, Serialize};

use super::console::Console;
use super::file::{FileChannel, FileConfig};
use super::smtp::{SmtpChannel, SmtpConfig};
use super::twilio::{TwilioChannel, TwilioConfig};
use super::webhook::{WebhookChannel, WebhookConfig};
use super::Backend;
use crate::engine::Channel;

/// Where one channel's messages go, with the chosen transport's settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "transport", rename_all = "lowercase")]
pub enum Transport {
    /// Prints each message on standard output.
    Console,
    /// Appends each message as one JSON line to a file.
    File(FileConfig),
    /// Drops every message (for benchmarks).
    Null,
    /// Twilio's Messages API, or a compatible one (SMS and WhatsApp only).
    Twilio(TwilioConfig),
    /// A signed JSON POST of each message to a URL.
    Http(WebhookConfig),
    /// Sends email through an SMTP server (email only).
    Smtp(Box<SmtpConfig>),
}

/// The word after `transport =`: which transport, before its settings are
/// read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Console,
    File,
    Null,
    Twilio,
    Http,
    Smtp,
}

impl TransportKind {
    /// Every transport, in the order messages list them.
    pub const ALL: [TransportKind; 6] = [
        TransportKind::Console,
        TransportKind::File,
        TransportKind::Null,
        TransportKind::Twilio,
        TransportKind::Http,
        TransportKind::Smtp,
    ];

    /// The word written after `transport =`.
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::Console => "console",
            TransportKind::File => "file",
            TransportKind::Null => "null",
            TransportKind::Twilio => "twilio",
            TransportKind::Http => "http",
            TransportKind::Smtp => "smtp",
        }
    }

    /// The transport a word names.
    pub fn from_name(name: &str) -> Option<TransportKind> {
        TransportKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The settings of a transport that has none: any key is unknown.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoSettings {}

/// Reads the settings of a channel's table (without its `transport` key)
/// for this transport.
impl<'de> DeserializeSeed<'de> for TransportKind {
    type Value = Transport;

    fn deserialize<D: Deserializer<'de>>(self, settings: D) -> Result<Transport, D::Error> {
        Ok(match self {
            TransportKind::Console => {
                NoSettings::deserialize(settings)?;
                Transport::Console
            }
            TransportKind::Null => {
                NoSettings::deserialize(settings)?;
                Transport::Null
            }
            TransportKind::File => Transport::File(FileConfig::deserialize(settings)?),
            TransportKind::Twilio => Transport::Twilio(TwilioConfig::deserialize(settings)?),
            TransportKind::Http => Transport::Http(WebhookConfig::deserialize(settings)?),
            TransportKind::Smtp => Transport::Smtp(Box::new(SmtpConfig::deserialize(settings)?)),
        })
    }
}

/// A setting that cannot work, found by a transport's own checks (or the
/// configuration's) and placed by `nudge check` at the setting in
/// `nudge.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingProblem {
    /// The setting's key path inside its table (`["dkim", "selector"]`);
    /// empty for the table as a whole (a setting that is missing).
    pub key: Vec<String>,
    /// The headline, naming the setting in full (`channels.sms.from`).
    pub message: String,
    /// The short note beside the caret.
    pub label: Cow<'static, str>,
    /// What to write instead.
    pub help: Cow<'static, str>,
}

impl SettingProblem {
    /// A problem with the setting at `key` (empty: the table).
    pub fn new(key: &[&str], message: String, label: &'static str, help: &'static str) -> Self {
        SettingProblem {
            key: key.iter().map(|k| (*k).to_string()).collect(),
            message,
            label: Cow::Borrowed(label),
            help: Cow::Borrowed(help),
        }
    }
}

/// The values a numeric setting may take, both ends included. Each
/// setting's bounds are a named constant beside its struct, saying why;
/// `nudge check` and `nudge run` refuse a value outside them, and the
/// runtime brings a value that reached it by another path inside them
/// ([`Bounds::clamp`]) rather than panic on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The least value allowed.
    pub min: u64,
    /// The greatest value allowed.
    pub max: u64,
}

impl Bounds {
    /// From `min` to `max`, both included.
    pub const fn new(min: u64, max: u64) -> Self {
        Bounds { min, max }
    }

    /// Whether `value` is allowed.
    pub fn contains(self, value: u64) -> bool {
        (self.min..=self.max).contains(&value)
    }

    /// `value`, or the nearer end when it is outside.
    pub fn clamp(self, value: u64) -> u64 {
        value.clamp(self.min, self.max)
    }

    /// [`Bounds::clamp`] for a count.
    pub fn clamp_usize(self, value: usize) -> usize {
        let clamped = self.clamp(u64::try_from(value).unwrap_or(u64::MAX));
        usize::try_from(clamped).unwrap_or(usize::MAX)
    }

    /// The problem with `value` as the setting `key` of `table` (`runtime`,
    /// `channels.sms`), if it is outside; `default` says what leaving the
    /// setting out means (`the default, 16`; `no limit`).
    pub fn check(
        self,
        table: &str,
        key: &str,
        value: u64,
        default: &str,
    ) -> Option<SettingProblem> {
        if self.contains(value) {
            return None;
        }
        let name = if table.is_empty() {
            key.to_string()
        } else {
            format!("{table}.{key}")
        };
        Some(SettingProblem {
            key: vec![key.to_string()],
            message: format!("`{name}` is {value}; it must be {self}"),
            label: Cow::Borrowed("out of range"),
            help: Cow::Owned(format!("leave it out for {default}")),
        })
    }
}

/// `from 1 to 1024`.
impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "from {} to {}", self.min, self.max)
    }
}

/// Whether a URL that carries a secret or candidate data may be plain
/// `http://` to another machine: `plain_http = "allowed"` beside it says
/// so in words. Without it, such a URL must be `https://`, or `http://` to
/// this machine (127.0.0.0/8, `::1`, `localhost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlainHttp {
    /// Plain HTTP only to this machine (the default).
    #[default]
    Refused,
    /// Plain HTTP to any host: the secret and the data travel in clear.
    Allowed,
}

impl PlainHttp {
    /// Whether this is the default, which is not written out.
    pub fn is_refused(&self) -> bool {
        *self == PlainHttp::Refused
    }
}

impl Transport {
    /// Which transport this is.
    pub fn kind(&self) -> TransportKind {
        match self {
            Transport::Console => TransportKind::Console,
            Transport::File(_) => TransportKind::File,
            Transport::Null => TransportKind::Null,
            Transport::Twilio(_) => TransportKind::Twilio,
            Transport::Http(_) => TransportKind::Http,
            Transport::Smtp(_) => TransportKind::Smtp,
        }
    }

    /// The transport's name, as written after `transport =`.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Every setting that cannot work as `channel`'s transport, without
    /// touching files, the network or the environment.
    pub fn validate(&self, channel: Channel) -> Vec<SettingProblem> {
        let table = format!("channels.{channel}");
        match self {
            Transport::Console | Transport::Null => Vec::new(),
            Transport::File(file) => file.validate(&table),
            Transport::Twilio(twilio) => match channel {
                Channel::Sms | Channel::Whatsapp => {
                    twilio.validate(&table, channel == Channel::Whatsapp)
                }
                Channel::Email | Channel::Webhook => vec![SettingProblem::new(
                    &["transport"],
                    format!("`{table}` cannot use the twilio transport"),
                    "twilio sends SMS and WhatsApp only",
                    "use \"http\" for a webhook, \"console\" or \"file\"",
                )],
            },
            Transport::Http(http) => http.validate(&table),
            Transport::Smtp(smtp) => {
                let mut problems = Vec::new();
                if channel != Channel::Email {
                    problems.push(SettingProblem::new(
                        &["transport"],
                        format!("`{table}` cannot use the smtp transport"),
                        "smtp sends email only",
                        "use it under [channels.email]",
                    ));
                }
                problems.extend(smtp.validate(&table));
                problems
            }
        }
    }

    /// Every file `channel`'s settings name that cannot be used (a DKIM
    /// key that does not read or parse), each naming the setting, the file
    /// and why: what `nudge check` adds to [`Self::validate`], with the
    /// paths resolved.
    pub fn check_files(&self, channel: Channel) -> Vec<String> {
        match self {
            Transport::Smtp(smtp) => smtp.check_files(&format!("channels.{channel}")),
            Transport::Console
            | Transport::Null
            | Transport::File(_)
            | Transport::Twilio(_)
            | Transport::Http(_) => Vec::new(),
        }
    }

    /// The transport with its relative paths (a file to append to, a DKIM
    /// key, a CA file) taken relative to `base`.
    pub fn resolve(&mut self, base: &Path) {
        match self {
            Transport::File(file) => file.resolve(base),
            Transport::Smtp(smtp) => smtp.resolve(base),
            Transport::Console | Transport::Null => {}
            Transport::Twilio(_) | Transport::Http(_) => {}
        }
    }

    /// Makes `channel`'s backend: reads the secrets from the environment,
    /// opens files, loads keys. The error says what is wrong in words,
    /// never quoting a secret.
    pub fn build(&self, channel: Channel) -> Result<Backend, String> {
        if let Some(problem) = self.validate(channel).into_iter().next() {
            return Err(problem.message);
        }
        Ok(match self {
            Transport::Console => Backend::Console(Console::stdout()),
            Transport::Null => Backend::Null,
            Transport::File(file) => Backend::File(
                FileChannel::open(&file.path)
                    .map_err(|e| format!("cannot open {}: {e}", file.path.display()))?,
            ),
            Transport::Twilio(twilio) => {
                Backend::Twilio(TwilioChannel::new(twilio, channel == Channel::Whatsapp)?)
            }
            Transport::Http(http) => Backend::Webhook(WebhookChannel::new(http, channel)?),
            Transport::Smtp(smtp) => Backend::Smtp(Box::new(SmtpChannel::new(smtp)?)),
        })
    }
}
