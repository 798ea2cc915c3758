//! The settings of `transport = "smtp"` and their pure checks: the server,
//! how to reach it securely, who the mail is from, how it is signed, and
//! per-campaign senders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};

use crate::channels::{Bounds, SettingProblem};

/// The settings of `transport = "smtp"`: the server, how to reach it
/// securely, who the mail is from, and how it is signed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The SMTP server's host name; with `starttls` or `tls` its
    /// certificate must carry this name.
    pub host: String,
    /// The server's port (default by `security`: 25 for `plain`, 587 for
    /// `starttls`, 465 for `tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// How the connection is protected: `plain` (none, for a relay on the
    /// same host), `starttls` (upgrade required, never falls back) or `tls`
    /// (TLS from the first byte) (default `starttls`).
    #[serde(default)]
    pub security: Security,
    /// A PEM file of root certificates to trust besides the public ones,
    /// for a server whose certificate comes from a private CA; relative to
    /// the configuration file (default: the public roots only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_path: Option<PathBuf>,
    /// The user name to authenticate as (default: no authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The name of the environment variable holding the password; required
    /// with `username`. The password itself never appears in this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// The sender, a mailbox such as "Dana Ruiz <jobs@example.com>"; its
    /// domain also ends every `Message-ID`.
    pub from: String,
    /// Where replies go, a mailbox (default: to `from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Connections kept open to the server and used at once, from 1 to 64
    /// (default 8).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Seconds allowed to connect, and then to send one message, from 1 to
    /// 600 (default 30).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The name nudge gives in `EHLO` (default: this machine's host name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hello_name: Option<String>,
    /// DKIM signing of every message (default: not signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkim: Option<DkimSettings>,
    /// Per-campaign senders, by campaign identifier:
    /// `[channels.email.campaigns.warehouse_associate]` with `from` and
    /// `reply_to`, each replacing the global setting for that campaign.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub campaigns: BTreeMap<String, SenderSettings>,
}

/// How an SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// No encryption: only for a relay on the same host or network.
    Plain,
    /// A plain connection upgraded with `STARTTLS`, which the server must
    /// offer (no fallback to plain).
    #[default]
    Starttls,
    /// TLS from the first byte (implicit TLS, "SMTPS").
    Tls,
}

impl Security {
    /// The word written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Security::Plain => "plain",
            Security::Starttls => "starttls",
            Security::Tls => "tls",
        }
    }

    /// The usual port: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            Security::Plain => 25,
            Security::Starttls => 587,
            Security::Tls => 465,
        }
    }
}

impl SmtpConfig {
    /// `pool_size`: at least one connection; at most 64, as mail servers
    /// limit the connections one client may hold (often to 10 or 20) and
    /// refuse or slow down the rest.
    pub const POOL_SIZE: Bounds = Bounds::new(1, 64);

    /// `timeout_secs`: at least 1, as 0 would fail every send; at most 600,
    /// the longest wait RFC 5321 (4.5.3.2) suggests for any step of a mail
    /// transaction.
    pub const TIMEOUT_SECS: Bounds = Bounds::new(1, 600);

    /// `port`: any TCP port but 0, which names none.
    pub const PORT: Bounds = Bounds::new(1, 65535);

    /// The configured port, or the usual one for the security mode.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.security.default_port())
    }
}

/// The `dkim` table of the SMTP transport.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DkimSettings {
    /// The signing domain (`d=`), usually the domain of `from`.
    pub domain: String,
    /// The selector (`s=`): the public key is published at
    /// `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// The private key file, relative to the configuration file: PEM
    /// PKCS#8 (`BEGIN PRIVATE KEY`, as `openssl genpkey` writes it) for
    /// either algorithm; for `rsa` also PKCS#1 (`BEGIN RSA PRIVATE KEY`),
    /// for `ed25519` also the base64 of the 32-byte seed.
    pub private_key_path: PathBuf,
    /// The key's algorithm: `rsa` or `ed25519` (default `rsa`).
    #[serde(default)]
    pub algorithm: DkimAlgorithm,
}

/// A DKIM key's algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    /// RSA with SHA-256, understood by every receiver.
    #[default]
    Rsa,
    /// Ed25519 with SHA-256 (RFC 8463); not every receiver checks it.
    Ed25519,
}

impl DkimAlgorithm {
    /// The word written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            DkimAlgorithm::Rsa => "rsa",
            DkimAlgorithm::Ed25519 => "ed25519",
        }
    }
}

/// A campaign's own sender, overriding the SMTP transport's.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SenderSettings {
    /// The campaign's sender mailbox (default: the transport's `from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The campaign's reply-to mailbox (default: the transport's
    /// `reply_to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

fn default_pool_size() -> usize {
    8
}

fn default_timeout_secs() -> u64 {
    30
}

impl SmtpConfig {
    /// The key file and the CA file taken relative to `base` unless they
    /// are absolute.
    pub fn resolve(&mut self, base: &Path) {
        let paths = [
            self.dkim.as_mut().map(|dkim| &mut dkim.private_key_path),
            self.tls_ca_path.as_mut(),
        ];
        for path in paths.into_iter().flatten() {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Every file a setting names that cannot be used, read as sending
    /// would read it but not kept: for now the DKIM key. Each problem names
    /// the setting, the file and why; `table` is as for [`Self::validate`].
    pub fn check_files(&self, table: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(dkim) = &self.dkim {
            if let Err(why) = super::dkim::load(dkim) {
                problems.push(format!("`{table}.dkim.private_key_path`: {why}"));
            }
        }
        problems
    }

    /// Every setting that cannot work, without reading the files it names;
    /// `table` is the channel's table as written in messages
    /// (`channels.email`).
    pub fn validate(&self, table: &str) -> Vec<SettingProblem> {
        let mut problems = Vec::new();
        let mut here = |key: &[&str], what: &str, label: &'static str, help: &'static str| {
            let message = format!("`{table}.{}` {what}", key.join("."));
            problems.push(SettingProblem::new(key, message, label, help));
        };
        if self.host.trim().is_empty() {
            here(
                &["host"],
                "is empty",
                "no server to send to",
                "name the SMTP server, such as \"smtp.example.com\"",
            );
        }
        let mut mailboxes = vec![(vec!["from"], Some(&self.from))];
        mailboxes.push((vec!["reply_to"], self.reply_to.as_ref()));
        for (campaign, sender) in &self.campaigns {
            for (field, value) in [("from", &sender.from), ("reply_to", &sender.reply_to)] {
                mailboxes.push((vec!["campaigns", campaign.as_str(), field], value.as_ref()));
            }
        }
        for (key, value) in mailboxes {
            let Some(value) = value else { continue };
            if value.parse::<Mailbox>().is_err() {
                here(
                    &key,
                    "is not a mailbox",
                    "not an address, nor a name and an address in <>",
                    "write an address, or a name and an address, \
                     such as \"Dana Ruiz <jobs@example.com>\"",
                );
            }
        }
        match (&self.username, &self.password_env) {
            (Some(_), None) => here(
                &["username"],
                "has no `password_env`",
                "a user name without a password",
                "name the environment variable holding the password: \
                 password_env = \"NUDGE_SMTP_PASSWORD\"",
            ),
            (None, Some(_)) => here(
                &["password_env"],
                "has no `username`",
                "a password without a user name",
                "add the user name: username = \"jobs@example.com\"",
            ),
            _ => {}
        }
        if let Some(name) = &self.password_env {
            if name.is_empty() || name.contains(['=', '\0']) {
                here(
                    &["password_env"],
                    "is not an environment variable name",
                    "not a variable name",
                    "name the variable, such as \"NUDGE_SMTP_PASSWORD\"; \
                     the password itself never goes in this file",
                );
            }
        }
        if self.tls_ca_path.is_some() && self.security == Security::Plain {
            here(
                &["tls_ca_path"],
                "is set but `security` is plain",
                "no TLS to use it for",
                "set security = \"starttls\" or \"tls\", or leave `tls_ca_path` out",
            );
        }
        if self
            .hello_name
            .as_ref()
            .is_some_and(|n| n.trim().is_empty())
        {
            here(
                &["hello_name"],
                "is empty",
                "no name to give the server",
                "leave it out to use this machine's host name",
            );
        }
        if let Some(dkim) = &self.dkim {
            for (field, empty) in [
                ("domain", dkim.domain.trim().is_empty()),
                ("selector", dkim.selector.trim().is_empty()),
                (
                    "private_key_path",
                    dkim.private_key_path.as_os_str().is_empty(),
                ),
            ] {
                if empty {
                    here(
                        &["dkim", field],
                        "is empty",
                        "DKIM needs it",
                        "leave out the whole `dkim` table to send unsigned mail",
                    );
                }
            }
        }
        let numbers = [
            (
                "pool_size",
                Some(u64::try_from(self.pool_size).unwrap_or(u64::MAX)),
                SmtpConfig::POOL_SIZE,
                format!("the default, {}", default_pool_size()),
            ),
            (
                "timeout_secs",
                Some(self.timeout_secs),
                SmtpConfig::TIMEOUT_SECS,
                format!("the default, {}", default_timeout_secs()),
            ),
            (
                "port",
                self.port.map(u64::from),
                SmtpConfig::PORT,
                "the usual port of `security`".to_string(),
            ),
        ];
        for (key, value, bounds, default) in numbers {
            if let Some(value) = value {
                problems.extend(bounds.check(table, key, value, &default));
            }
        }
        problems
    }
}
