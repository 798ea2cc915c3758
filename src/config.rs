//! The configuration file, `nudge.toml`: where the store, campaigns and
//! templates live, the admin API, the names templates sign with, the
//! interview link, the channels' transports and the runtime's limits.
//!
//! Every setting has a default, so the file may be absent. Problems in the
//! file (TOML syntax, unknown keys, wrong types, values that make no sense)
//! become [`Diagnostic`]s over its text and render exactly like campaign
//! diagnostics; only a file that cannot be read is a plain IO error.
//!
//! [`starter_toml`] is the commented file `nudge init` writes; a unit test
//! keeps it equal to [`Config::default`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};

use crate::channels::twilio::TwilioConfig;
use crate::channels::webhook::WebhookConfig;
use crate::channels::SettingProblem;
use crate::diag::{Diagnostic, FileId, Sources};
use crate::dsl::ast::Span;
use crate::dsl::report::render;

/// The configuration file's name, looked up in the current directory.
pub const FILE_NAME: &str = "nudge.toml";

/// The environment variable naming the configuration file when no path is
/// given explicitly (as if given with `--config`).
pub const CONFIG_ENV: &str = "NUDGE_CONFIG";

/// The file in the store folder holding the generated admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Everything `nudge.toml` can say. Every field is optional in the file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The sled store folder: candidates, enrollments, timers, the outbox
    /// and the event log (default `nudge-data`).
    #[serde(default = "default_store")]
    pub store: PathBuf,
    /// The folder of campaign files, `*.nudge` (default `campaigns`).
    #[serde(default = "default_campaigns")]
    pub campaigns: PathBuf,
    /// The folder of message templates (default `templates`).
    #[serde(default = "default_templates")]
    pub templates: PathBuf,
    /// The company name, `{{ company }}` in templates (default `Example Co`).
    #[serde(default = "default_company")]
    pub company: String,
    /// Who signs the messages, `{{ sender }}` in templates: a person or a
    /// team (default `The recruiting team`).
    #[serde(default = "default_sender")]
    pub sender: String,
    /// The tracked interview link, `{{ link }}` in templates; `{token}` is
    /// replaced by the candidate's token and must appear (default
    /// `http://127.0.0.1:7777/i/{token}`).
    #[serde(default = "default_interview_url")]
    pub interview_url: String,
    /// The country calling code that completes phone numbers written
    /// without one when candidates are enrolled: `1` for North America,
    /// `44` for the UK (default: none, so every number must start with `+`
    /// or `00`). See `channels::phone` for the rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_country_code: Option<String>,
    /// The admin API.
    #[serde(default)]
    pub admin: AdminConfig,
    /// How each channel's messages leave.
    #[serde(default)]
    pub channels: ChannelsConfig,
    /// The daemon's throughput and catch-up limits.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// The global switch: `"off"` stops every candidate message (each send
    /// is recorded as suppressed, nothing leaves the machine) (default `"on"`).
    #[serde(default)]
    pub communications: Communications,
    /// The pace each channel may be fed at, for providers' and carriers' caps.
    #[serde(default)]
    pub rates: RatesConfig,
}

/// `communications = "on" | "off"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Communications {
    /// Messages go out.
    #[default]
    On,
    /// No candidate message leaves the machine.
    Off,
}

/// The `[rates]` table: one pace per channel; no limit where unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RatesConfig {
    /// The pace of email.
    #[serde(default)]
    pub email: RateConfig,
    /// The pace of SMS.
    #[serde(default)]
    pub sms: RateConfig,
    /// The pace of WhatsApp messages.
    #[serde(default)]
    pub whatsapp: RateConfig,
    /// The pace of webhook calls.
    #[serde(default)]
    pub webhook: RateConfig,
}

/// At most this many messages in any second, and in any minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// Messages in any one second (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_second: Option<u32>,
    /// Messages in any one minute (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u32>,
}

/// The `[admin]` table: the admin API, for enrolling candidates and
/// receiving events.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// The address the admin API listens on; it must be a loopback address,
    /// as the admin API is not for the open internet (default
    /// `127.0.0.1:7777`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The name of an environment variable holding the admin token. When
    /// unset, or the variable is unset or empty, a token is generated into
    /// `<store>/admin-token` (mode 0600) and read from there (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
}

/// The `[channels]` table: one transport per channel.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsConfig {
    /// How email goes out (default console).
    #[serde(default = "default_transport")]
    pub email: Transport,
    /// How SMS goes out (default console).
    #[serde(default = "default_transport")]
    pub sms: Transport,
    /// How WhatsApp messages go out (default console).
    #[serde(default = "default_transport")]
    pub whatsapp: Transport,
    /// How webhook messages go out (default console).
    #[serde(default = "default_transport")]
    pub webhook: Transport,
}

/// Where one channel's messages go, chosen by the `transport` key of the
/// channel's table. A closed set: each transport is one variant with its
/// own settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "transport", rename_all = "lowercase", deny_unknown_fields)]
pub enum Transport {
    /// Prints each message on standard output.
    Console,
    /// Appends each message as one JSON line to a file.
    File {
        /// The file to append to, relative to the configuration file.
        path: PathBuf,
    },
    /// Drops every message (for benchmarks).
    Null,
    /// Twilio's Messages API, or a compatible one (SMS and WhatsApp only).
    Twilio(TwilioConfig),
    /// A signed JSON POST of each message to a URL.
    Http(WebhookConfig),
    /// Sends email through an SMTP server (email only).
    Smtp(Box<SmtpConfig>),
}

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
    /// Connections kept open to the server and used at once, at least 1
    /// (default 8).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Seconds allowed to connect, and then to send one message, at least 1
    /// (default 30).
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
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`) for `rsa`, the base64 32-byte seed
    /// for `ed25519`.
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

/// The `[runtime]` table: limits of the daemon.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Sends in flight at once per channel, at least 1 (default 16).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Timers fired per batch, at least 1 (default 1024).
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// A timer found more than this many seconds late (after downtime, say)
    /// runs at the current time instead of its due time, so a long outage
    /// never sends at a stale hour (default 900).
    #[serde(default = "default_catch_up_secs")]
    pub catch_up_secs: u64,
    /// Deliveries tried in all before a send that keeps failing for a
    /// passing reason is given up (and the next channel tried) (default 8).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The first retry waits up to this many seconds; each further one up
    /// to twice as long, randomly (full jitter) (default 30).
    #[serde(default = "default_retry_base_secs")]
    pub retry_base_secs: u64,
    /// No retry waits longer than this many seconds (default 3600).
    #[serde(default = "default_retry_cap_secs")]
    pub retry_cap_secs: u64,
}

fn default_store() -> PathBuf {
    PathBuf::from("nudge-data")
}

fn default_campaigns() -> PathBuf {
    PathBuf::from("campaigns")
}

fn default_templates() -> PathBuf {
    PathBuf::from("templates")
}

fn default_company() -> String {
    "Example Co".to_string()
}

fn default_sender() -> String {
    "The recruiting team".to_string()
}

fn default_interview_url() -> String {
    "http://127.0.0.1:7777/i/{token}".to_string()
}

fn default_listen() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 7777))
}

fn default_transport() -> Transport {
    Transport::Console
}

fn default_pool_size() -> usize {
    8
}

fn default_timeout_secs() -> u64 {
    30
}

fn default_concurrency() -> usize {
    16
}

fn default_batch() -> usize {
    1024
}

fn default_catch_up_secs() -> u64 {
    900
}

fn default_max_attempts() -> u32 {
    8
}

fn default_retry_base_secs() -> u64 {
    30
}

fn default_retry_cap_secs() -> u64 {
    3600
}

impl Default for Config {
    fn default() -> Self {
        Config {
            store: default_store(),
            campaigns: default_campaigns(),
            templates: default_templates(),
            company: default_company(),
            sender: default_sender(),
            interview_url: default_interview_url(),
            phone_country_code: None,
            admin: AdminConfig::default(),
            channels: ChannelsConfig::default(),
            runtime: RuntimeConfig::default(),
            communications: Communications::On,
            rates: RatesConfig::default(),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: default_listen(),
            token_env: None,
        }
    }
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        ChannelsConfig {
            email: default_transport(),
            sms: default_transport(),
            whatsapp: default_transport(),
            webhook: default_transport(),
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            concurrency: default_concurrency(),
            batch: default_batch(),
            catch_up_secs: default_catch_up_secs(),
            max_attempts: default_max_attempts(),
            retry_base_secs: default_retry_base_secs(),
            retry_cap_secs: default_retry_cap_secs(),
        }
    }
}

impl Transport {
    /// The transport's name, as written after `transport =`.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Console => "console",
            Transport::File { .. } => "file",
            Transport::Null => "null",
            Transport::Twilio(_) => "twilio",
            Transport::Http(_) => "http",
            Transport::Smtp(_) => "smtp",
        }
    }
}

impl ChannelsConfig {
    /// Every channel's name (as in campaign files) and transport.
    pub fn entries(&self) -> [(&'static str, &Transport); 4] {
        [
            ("email", &self.email),
            ("sms", &self.sms),
            ("whatsapp", &self.whatsapp),
            ("webhook", &self.webhook),
        ]
    }

    fn entries_mut(&mut self) -> [&mut Transport; 4] {
        [
            &mut self.email,
            &mut self.sms,
            &mut self.whatsapp,
            &mut self.webhook,
        ]
    }
}

impl Config {
    /// The configuration with every relative path (store, campaigns,
    /// templates, file transports) taken relative to `base`, the folder
    /// holding the configuration file. Absolute paths stay as they are; an
    /// empty `base` keeps relative paths relative to the current directory.
    pub fn resolve(mut self, base: &Path) -> Config {
        let join = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        join(&mut self.store);
        join(&mut self.campaigns);
        join(&mut self.templates);
        for transport in self.channels.entries_mut() {
            match transport {
                Transport::File { path } => join(path),
                Transport::Smtp(smtp) => {
                    if let Some(dkim) = &mut smtp.dkim {
                        join(&mut dkim.private_key_path);
                    }
                    if let Some(path) = &mut smtp.tls_ca_path {
                        join(path);
                    }
                }
                Transport::Console | Transport::Null => {}
                Transport::Twilio(_) | Transport::Http(_) => {}
            }
        }
        self
    }

    /// The admin API token: the value of the environment variable named by
    /// `admin.token_env` when that is set and not empty, else the token in
    /// `<store>/admin-token`.
    ///
    /// When the file does not exist, the store folder and the file are
    /// created with 32 random bytes, hex-encoded, readable by the owner
    /// only (mode 0600). The file appears whole or not at all (written
    /// aside, then linked into place), and when two processes race, both
    /// return the token of the one that won.
    pub fn admin_token(&self) -> io::Result<String> {
        if let Some(name) = &self.admin.token_env {
            if let Some(token) = std::env::var_os(name).filter(|v| !v.is_empty()) {
                return token.into_string().map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("environment variable `{name}` is not valid UTF-8"),
                    )
                });
            }
        }
        let path = self.store.join(ADMIN_TOKEN_FILE);
        match read_token(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            read => return read,
        }
        fs::create_dir_all(&self.store)?;
        let token = generate_token()?;
        write_new(&path, &token)?;
        read_token(&path)
    }
}

/// The token in `path`, without surrounding whitespace; an empty file is
/// an error rather than an empty token.
fn read_token(path: &Path) -> io::Result<String> {
    let mut text = String::new();
    fs::File::open(path)?.read_to_string(&mut text)?;
    let token = text.trim();
    if token.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("admin token file `{}` is empty", path.display()),
        ));
    }
    Ok(token.to_string())
}

/// 32 random bytes from the operating system, as 64 lowercase hex digits.
fn generate_token() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("no random bytes: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates `path` holding `token` (mode 0600) unless it exists: writes a
/// temporary file beside it, then hard-links it into place, which fails
/// rather than replace a file another process created meanwhile.
fn write_new(path: &Path, token: &str) -> io::Result<()> {
    // A random name, so that racing threads never share a temporary file.
    let temp = path.with_extension(format!("tmp-{}", &generate_token()?[..16]));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)?;
    let written = (|| {
        file.write_all(token.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        match fs::hard_link(&temp, path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            linked => linked,
        }
    })();
    let removed = fs::remove_file(&temp);
    written.and(removed)
}

/// Why the configuration could not be loaded.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read (missing when named explicitly,
    /// unreadable, not UTF-8).
    Io { path: PathBuf, source: io::Error },
    /// The file was read but is not a valid configuration: every problem
    /// found, as diagnostics over `sources` (which holds the file's text).
    Invalid {
        diagnostics: Vec<Diagnostic>,
        sources: Sources,
    },
}

impl ConfigError {
    /// The error as people read it; `Invalid` renders like a campaign
    /// diagnostic (see [`render`]), with ANSI colors when `color` is set.
    pub fn render(&self, color: bool) -> String {
        match self {
            ConfigError::Io { .. } => format!("error: {self}\n"),
            ConfigError::Invalid {
                diagnostics,
                sources,
            } => render(sources, diagnostics, color),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, source } => {
                write!(f, "cannot read `{}`: {source}", path.display())
            }
            ConfigError::Invalid { .. } => f.write_str(self.render(false).trim_end()),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Io { source, .. } => Some(source),
            ConfigError::Invalid { .. } => None,
        }
    }
}

/// Loads the configuration, with its relative paths resolved (see
/// [`Config::resolve`]), and the file it came from.
///
/// The file is `path` when given, else the file named by the environment
/// variable `NUDGE_CONFIG` when set and not empty; either must exist.
/// Otherwise it is `./nudge.toml` if that exists, and the defaults (with
/// no file) if not.
pub fn load(path: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
    let Some(path) = locate(path) else {
        return Ok((Config::default(), None));
    };
    let text = fs::read_to_string(&path).map_err(|source| ConfigError::Io {
        path: path.clone(),
        source,
    })?;
    let config = parse_str(&path.display().to_string(), &text)?;
    let config = config.resolve(base_dir(&path));
    Ok((config, Some(path)))
}

/// The configuration file that applies: `explicit` (from `--config`) when
/// given, else the file named by `NUDGE_CONFIG` when set and not empty,
/// else `nudge.toml` in the current directory when it exists, else none
/// (the defaults apply).
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    choose(
        explicit,
        std::env::var_os(CONFIG_ENV),
        Path::new(FILE_NAME).exists(),
    )
}

/// The folder that relative paths in the configuration file `path` are
/// relative to, for [`Config::resolve`]: the file's folder (empty, meaning
/// the current directory, for a bare file name).
pub fn base_dir(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

/// [`locate`]'s choice, given the environment variable's value and
/// whether `./nudge.toml` exists.
fn choose(explicit: Option<&Path>, env: Option<OsString>, default_exists: bool) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    if let Some(path) = env.filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    default_exists.then(|| PathBuf::from(FILE_NAME))
}

/// Parses configuration text, shown in diagnostics as `name`. Relative
/// paths are left as written.
pub fn parse_str(name: &str, text: &str) -> Result<Config, ConfigError> {
    let mut sources = Sources::default();
    let file = sources.add(name, text);
    parse(&sources, file).map_err(|diagnostics| ConfigError::Invalid {
        diagnostics,
        sources,
    })
}

/// Parses and validates the configuration text of `file` in `sources`, so
/// that `nudge check` can report it together with campaign files. Returns
/// every problem found: all syntax errors, else the first error of shape
/// (unknown key, wrong type), else every invalid value. Relative paths are
/// left as written.
pub fn parse(sources: &Sources, file: FileId) -> Result<Config, Vec<Diagnostic>> {
    let text = sources.get(file).text.as_str();
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        let mut diagnostics: Vec<Diagnostic> = errors
            .iter()
            .map(|e| syntax_diagnostic(file, text, e))
            .collect();
        diagnostics.sort_by_key(|d| d.span.start);
        return Err(diagnostics);
    }
    let table = root.get_ref().clone();
    let config = Config::deserialize(toml::de::Deserializer::from(root))
        .map_err(|e| vec![shape_diagnostic(file, &table, &e)])?;
    let diagnostics = validate(file, &table, &config);
    if diagnostics.is_empty() {
        Ok(config)
    } else {
        Err(diagnostics)
    }
}

fn span_of(range: Range<usize>) -> Span {
    Span::new(range.start, range.end)
}

/// A TOML syntax error.
fn syntax_diagnostic(file: FileId, text: &str, error: &toml::de::Error) -> Diagnostic {
    let span = error
        .span()
        .map_or(Span::new(text.len(), text.len()), span_of);
    Diagnostic::error(file, span, format!("invalid TOML: {}", error.message()))
}

/// An error serde found in well-formed TOML: an unknown key, a wrong type,
/// an unknown transport, a missing setting.
fn shape_diagnostic(file: FileId, table: &DeTable<'_>, error: &toml::de::Error) -> Diagnostic {
    let message = error.message();
    let found = error.span().and_then(|span| find_key(table, &span));
    let Some(found) = found else {
        let span = error.span().map_or(Span::default(), span_of);
        return Diagnostic::error(file, span, message);
    };
    if let Some(unknown) = between(message, "unknown field `", "`") {
        // Serde sees a transport's whole table; find the key inside it.
        let (key, span) = if found.path.last().is_some_and(|last| last == unknown) {
            (found.path.join("."), found.key_span)
        } else {
            let key_span =
                find_child(table, &found.path, unknown).map_or(found.key_span, |child| child.key);
            (format!("{}.{unknown}", found.path.join(".")), key_span)
        };
        let mut diag = Diagnostic::error(file, span, format!("unknown key `{key}`"))
            .with_label("not a setting");
        let expected = expected_names(message);
        if let Some(best) = closest(unknown, &expected) {
            diag = diag.with_help(format!("did you mean `{best}`?"));
        } else if let [only] = expected.as_slice() {
            diag = diag.with_help(format!("expected `{only}`"));
        } else if !expected.is_empty() {
            diag = diag.with_help(format!("expected one of {}", list(&expected)));
        }
        return diag;
    }
    let key = found.path.join(".");
    if let Some(unknown) = between(message, "unknown variant `", "`") {
        let mut channel = found.path.clone();
        if channel.last().is_some_and(|last| last == "transport") {
            channel.pop();
        }
        let expected = expected_names(message);
        // Serde sees a transport's settings as a whole and does not say
        // which of its words it did not know: find the word, unless it is
        // the transport's name.
        let transports = ["console", "file", "null", "twilio", "http", "smtp"];
        if !expected.iter().all(|e| transports.contains(e)) {
            if let Some((path, span)) = find_string(table, &channel, unknown) {
                let mut diag = Diagnostic::error(
                    file,
                    span,
                    format!("`{}` should be one of {}", path.join("."), list(&expected)),
                )
                .with_label("not one of these");
                if let Some(best) = closest(unknown, &expected) {
                    diag = diag.with_help(format!("did you mean `{best}`?"));
                }
                return diag;
            }
        }
        let key = channel.join(".");
        let span =
            find_child(table, &channel, "transport").map_or(found.value_span, |child| child.value);
        let expected = expected_names(message);
        let mut diag = Diagnostic::error(
            file,
            span,
            format!("unknown transport `{unknown}` for `{key}`"),
        )
        .with_label("no such transport");
        diag = match closest(unknown, &expected) {
            Some(best) => diag.with_help(format!("did you mean `{best}`?")),
            None => diag.with_help(format!("expected one of {}", list(&expected))),
        };
        return diag;
    }
    if let Some(missing) = between(message, "missing field `", "`") {
        return Diagnostic::error(
            file,
            found.value_span,
            format!("`{key}` needs a `{missing}` setting"),
        )
        .with_label(format!("no `{missing}` here"));
    }
    let wrong = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    if let Some(rest) = wrong {
        if let Some((got, expected)) = rest.split_once(", expected ") {
            return Diagnostic::error(
                file,
                found.value_span,
                format!("`{key}` should be {}", describe_expected(expected)),
            )
            .with_label(format!("found {got}"));
        }
    }
    Diagnostic::error(
        file,
        found.value_span,
        format!("invalid value for `{key}`: {message}"),
    )
}

/// The text between `start` and the next `end` in `text`.
fn between<'t>(text: &'t str, start: &str, end: &str) -> Option<&'t str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

/// The names serde lists after "expected one of" (or "expected"): every
/// word in backticks after the first "expected".
fn expected_names(message: &str) -> Vec<&str> {
    let Some((_, tail)) = message.split_once("expected") else {
        return Vec::new();
    };
    tail.split('`').skip(1).step_by(2).collect()
}

/// The candidate most like `word`, if any is close enough to be a typo.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `a`, `b` or `c`.
fn list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Serde's name of an expected type, in words.
fn describe_expected(expected: &str) -> String {
    match expected {
        "usize" | "u64" | "u32" | "u16" => "a whole number, 0 or more".to_string(),
        "a string" | "path string" => "a string".to_string(),
        "socket address" => "an address such as \"127.0.0.1:7777\"".to_string(),
        "struct AdminConfig"
        | "struct ChannelsConfig"
        | "struct RuntimeConfig"
        | "struct DkimSettings"
        | "struct SenderSettings"
        | "struct SmtpConfig" => "a table".to_string(),
        "variant identifier" => "a transport name such as \"console\"".to_string(),
        "internally tagged enum Transport" => {
            "a table such as { transport = \"console\" }".to_string()
        }
        other => other.to_string(),
    }
}

/// A key of the document, found by a position inside it.
struct FoundKey {
    /// Dotted from the root: `["runtime", "concurrency"]`.
    path: Vec<String>,
    key_span: Span,
    value_span: Span,
}

/// The innermost key whose name or value covers `span`.
fn find_key(table: &DeTable<'_>, span: &Range<usize>) -> Option<FoundKey> {
    for (key, value) in table.iter() {
        let (key_range, value_range) = (key.span(), value.span());
        let covers = |r: &Range<usize>| r.start <= span.start && span.end <= r.end.max(r.start + 1);
        let inner = match value.get_ref() {
            DeValue::Table(inner) => find_key(inner, span),
            _ => None,
        };
        if let Some(mut inner) = inner {
            inner.path.insert(0, key.get_ref().to_string());
            return Some(inner);
        }
        if covers(&key_range) || covers(&value_range) {
            return Some(FoundKey {
                path: vec![key.get_ref().to_string()],
                key_span: span_of(key_range),
                value_span: span_of(value_range),
            });
        }
    }
    None
}

/// Where a key and its value are written.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: Span,
    value: Span,
}

/// The entry at `path` in the document, if the file sets it.
fn entry(table: &DeTable<'_>, path: &[&str]) -> Option<Entry> {
    let (first, rest) = path.split_first()?;
    let (key, value) = table.iter().find(|(k, _)| k.get_ref() == first)?;
    if rest.is_empty() {
        return Some(Entry {
            key: span_of(key.span()),
            value: span_of(value.span()),
        });
    }
    match value.get_ref() {
        DeValue::Table(inner) => entry(inner, rest),
        _ => None,
    }
}

/// The first key under the table at `path` (searched depth first) whose
/// value is the string `word`: its dotted path from the root, and where
/// the value is written.
fn find_string(table: &DeTable<'_>, path: &[String], word: &str) -> Option<(Vec<String>, Span)> {
    fn search(table: &DeTable<'_>, prefix: &[String], word: &str) -> Option<(Vec<String>, Span)> {
        for (key, value) in table.iter() {
            let mut path = prefix.to_vec();
            path.push(key.get_ref().to_string());
            match value.get_ref() {
                DeValue::String(s) if s.as_ref() == word => {
                    return Some((path, span_of(value.span())));
                }
                DeValue::Table(inner) => {
                    if let Some(found) = search(inner, &path, word) {
                        return Some(found);
                    }
                }
                _ => {}
            }
        }
        None
    }
    let mut current = table;
    for part in path {
        match current
            .iter()
            .find(|(k, _)| k.get_ref() == part.as_str())?
            .1
            .get_ref()
        {
            DeValue::Table(inner) => current = inner,
            _ => return None,
        }
    }
    search(current, path, word)
}

/// The entry `child` of the table at `path`.
fn find_child(table: &DeTable<'_>, path: &[String], child: &str) -> Option<Entry> {
    let mut full: Vec<&str> = path.iter().map(String::as_str).collect();
    full.push(child);
    entry(table, &full)
}

/// The keys of the table at `path` other than `except`.
fn other_keys<'t>(table: &'t DeTable<'_>, path: &[&str], except: &str) -> Vec<(&'t str, Span)> {
    let mut current = table;
    for part in path {
        match current.iter().find(|(k, _)| k.get_ref() == part) {
            Some((_, value)) => match value.get_ref() {
                DeValue::Table(inner) => current = inner,
                _ => return Vec::new(),
            },
            None => return Vec::new(),
        }
    }
    current
        .iter()
        .filter(|(k, _)| k.get_ref() != except)
        .map(|(k, _)| (k.get_ref().as_ref(), span_of(k.span())))
        .collect()
}

/// Checks the values serde accepted but nudge cannot use.
fn validate(file: FileId, table: &DeTable<'_>, config: &Config) -> Vec<Diagnostic> {
    // Every default is valid, so an invalid value was written in the file
    // and has a span; the fallback only guards against a drift.
    let at = |path: &[&str], message: String| {
        let span = entry(table, path).map(|e| e.value).unwrap_or_default();
        Diagnostic::error(file, span, message)
    };
    let mut diagnostics = Vec::new();
    if !config.interview_url.contains("{token}") {
        diagnostics.push(
            at(
                &["interview_url"],
                "`interview_url` has no `{token}`".to_string(),
            )
            .with_label("every candidate needs their own link")
            .with_help(
                "put `{token}` where the candidate's token goes, \
                     as in \"https://jobs.example.com/i/{token}\"",
            ),
        );
    }
    if let Some(code) = &config.phone_country_code {
        if !crate::channels::phone::is_country_code(code) {
            diagnostics.push(
                at(
                    &["phone_country_code"],
                    format!("`phone_country_code` is `{code}`, not a country calling code"),
                )
                .with_label("1 to 3 digits, the first not 0")
                .with_help("write the code without the trunk prefix, such as \"1\" or \"44\""),
            );
        }
    }
    if !config.admin.listen.ip().is_loopback() {
        let message = format!(
            "`admin.listen` is `{}`, not a loopback address",
            config.admin.listen
        );
        diagnostics.push(
            at(&["admin", "listen"], message)
                .with_label("the admin API is not for the open internet")
                .with_help(
                    "use 127.0.0.1 or [::1], and a reverse proxy with TLS \
                     if others must reach it",
                ),
        );
    }
    if let Some(name) = &config.admin.token_env {
        if name.is_empty() || name.contains(['=', '\0']) {
            let message = "`admin.token_env` is not an environment variable name".to_string();
            diagnostics.push(
                at(&["admin", "token_env"], message)
                    .with_label("not a variable name")
                    .with_help(
                        "name a variable such as \"NUDGE_ADMIN_TOKEN\", \
                         or leave the setting out to use a generated token",
                    ),
            );
        }
    }
    for (name, value) in [
        ("concurrency", config.runtime.concurrency),
        ("batch", config.runtime.batch),
    ] {
        if value == 0 {
            diagnostics.push(
                at(&["runtime", name], format!("`runtime.{name}` is 0"))
                    .with_label("must be at least 1")
                    .with_help("leave it out for the default"),
            );
        }
    }
    for (name, transport) in config.channels.entries() {
        match transport {
            Transport::File { path } => {
                if path.as_os_str().is_empty() {
                    let message = format!("`channels.{name}.path` is empty");
                    diagnostics.push(
                        at(&["channels", name, "path"], message)
                            .with_label("no file to write to")
                            .with_help("name a file, such as \"outbox/email.jsonl\""),
                    );
                }
            }
            Transport::Smtp(smtp) => {
                if name != "email" {
                    let message = format!("`channels.{name}` cannot use the smtp transport");
                    diagnostics.push(
                        at(&["channels", name, "transport"], message)
                            .with_label("smtp sends email only")
                            .with_help("use it under [channels.email]"),
                    );
                }
                validate_smtp(&at, name, smtp, &mut diagnostics);
            }
            // Serde lets a variant without settings ignore extra keys.
            Transport::Console | Transport::Null => {
                for (key, span) in other_keys(table, &["channels", name], "transport") {
                    let message = format!("unknown key `channels.{name}.{key}`");
                    diagnostics.push(Diagnostic::error(file, span, message).with_label(format!(
                        "the {} transport has no settings",
                        transport.name()
                    )));
                }
            }
            Transport::Twilio(twilio) => {
                if matches!(name, "sms" | "whatsapp") {
                    let problems = twilio.problems(&format!("channels.{name}"), name == "whatsapp");
                    diagnostics.extend(setting_diagnostics(file, table, name, problems));
                } else {
                    let message = format!("`channels.{name}` cannot use the twilio transport");
                    diagnostics.push(
                        at(&["channels", name, "transport"], message)
                            .with_label("twilio sends SMS and WhatsApp only")
                            .with_help("use \"http\" for a webhook, \"console\" or \"file\""),
                    );
                }
            }
            Transport::Http(http) => {
                let problems = http.problems(&format!("channels.{name}"));
                diagnostics.extend(setting_diagnostics(file, table, name, problems));
            }
        }
    }
    diagnostics.sort_by_key(|d| d.span.start);
    diagnostics
}

/// A channel transport's own findings, each at its setting (or at the
/// channel's table when the setting is missing).
fn setting_diagnostics(
    file: FileId,
    table: &DeTable<'_>,
    channel: &str,
    problems: Vec<SettingProblem>,
) -> Vec<Diagnostic> {
    problems
        .into_iter()
        .map(|problem| {
            let mut path = vec!["channels", channel];
            path.extend(problem.key);
            let span = entry(table, &path)
                .or_else(|| entry(table, &["channels", channel]))
                .map(|e| e.value)
                .unwrap_or_default();
            Diagnostic::error(file, span, problem.message)
                .with_label(problem.label)
                .with_help(problem.help)
        })
        .collect()
}

/// Checks the values of an SMTP transport under `channels.<channel>`.
fn validate_smtp(
    at: &dyn Fn(&[&str], String) -> Diagnostic,
    channel: &str,
    smtp: &SmtpConfig,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let key = |rest: &[&str]| format!("channels.{channel}.{}", rest.join("."));
    let path = |rest: &[&str]| -> Vec<String> {
        ["channels", channel]
            .iter()
            .chain(rest)
            .map(|s| (*s).to_string())
            .collect()
    };
    let mut here = |rest: &[&str], message: String, label: &str, help: &str| {
        let path = path(rest);
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        diagnostics.push(at(&path, message).with_label(label).with_help(help));
    };
    if smtp.host.trim().is_empty() {
        here(
            &["host"],
            format!("`{}` is empty", key(&["host"])),
            "no server to send to",
            "name the SMTP server, such as \"smtp.example.com\"",
        );
    }
    let mut mailboxes = vec![(vec!["from"], Some(&smtp.from))];
    mailboxes.push((vec!["reply_to"], smtp.reply_to.as_ref()));
    for (campaign, sender) in &smtp.campaigns {
        for (field, value) in [("from", &sender.from), ("reply_to", &sender.reply_to)] {
            mailboxes.push((vec!["campaigns", campaign.as_str(), field], value.as_ref()));
        }
    }
    for (rest, value) in mailboxes {
        let Some(value) = value else { continue };
        if value.parse::<lettre::message::Mailbox>().is_err() {
            here(
                &rest,
                format!("`{}` is not a mailbox", key(&rest)),
                "not an address, nor a name and an address in <>",
                "write an address, or a name and an address, \
                 such as \"Dana Ruiz <jobs@example.com>\"",
            );
        }
    }
    match (&smtp.username, &smtp.password_env) {
        (Some(_), None) => here(
            &["username"],
            format!("`{}` has no `password_env`", key(&["username"])),
            "a user name without a password",
            "name the environment variable holding the password: \
             password_env = \"NUDGE_SMTP_PASSWORD\"",
        ),
        (None, Some(_)) => here(
            &["password_env"],
            format!("`{}` has no `username`", key(&["password_env"])),
            "a password without a user name",
            "add the user name: username = \"jobs@example.com\"",
        ),
        _ => {}
    }
    if let Some(name) = &smtp.password_env {
        if name.is_empty() || name.contains(['=', '\0']) {
            here(
                &["password_env"],
                format!(
                    "`{}` is not an environment variable name",
                    key(&["password_env"])
                ),
                "not a variable name",
                "name the variable, such as \"NUDGE_SMTP_PASSWORD\"; \
                 the password itself never goes in this file",
            );
        }
    }
    if smtp.tls_ca_path.is_some() && smtp.security == Security::Plain {
        here(
            &["tls_ca_path"],
            format!("`{}` is set but `security` is plain", key(&["tls_ca_path"])),
            "no TLS to use it for",
            "set security = \"starttls\" or \"tls\", or leave `tls_ca_path` out",
        );
    }
    if smtp.pool_size == 0 {
        here(
            &["pool_size"],
            format!("`{}` is 0", key(&["pool_size"])),
            "must be at least 1",
            "leave it out for the default",
        );
    }
    if smtp.timeout_secs == 0 {
        here(
            &["timeout_secs"],
            format!("`{}` is 0", key(&["timeout_secs"])),
            "must be at least 1",
            "leave it out for the default",
        );
    }
    if smtp.port == Some(0) {
        here(
            &["port"],
            format!("`{}` is 0", key(&["port"])),
            "not a port",
            "leave it out for the usual port of `security`",
        );
    }
    if smtp
        .hello_name
        .as_ref()
        .is_some_and(|n| n.trim().is_empty())
    {
        here(
            &["hello_name"],
            format!("`{}` is empty", key(&["hello_name"])),
            "no name to give the server",
            "leave it out to use this machine's host name",
        );
    }
    if let Some(dkim) = &smtp.dkim {
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
                    format!("`{}` is empty", key(&["dkim", field])),
                    "DKIM needs it",
                    "leave out the whole `dkim` table to send unsigned mail",
                );
            }
        }
    }
}

/// The commented configuration `nudge init` writes: every setting, with
/// its default and what it does. It parses to [`Config::default`].
pub fn starter_toml() -> String {
    STARTER.to_string()
}

const STARTER: &str = r#"# nudge.toml: configuration for nudge. Every setting is optional; each is
# shown here with its default. Relative paths are relative to this file's
# folder.

# The sled store folder: candidates, enrollments, timers, the outbox and the
# event log.
store = "nudge-data"

# The folder of campaign files (*.nudge).
campaigns = "campaigns"

# The folder of message templates.
templates = "templates"

# The company name, {{ company }} in templates.
company = "Example Co"

# Who signs the messages, {{ sender }} in templates: a person or a team.
sender = "The recruiting team"

# The tracked interview link, {{ link }} in templates. `{token}` is replaced
# by the candidate's token and must appear.
interview_url = "http://127.0.0.1:7777/i/{token}"

# The global switch: "off" stops every candidate message; each send is
# recorded as suppressed and nothing leaves the machine.
communications = "on"

# The country calling code that completes phone numbers written without one
# when candidates are enrolled ("1" for North America, "44" for the UK).
# Without it, every number must start with + (or 00).
# phone_country_code = "1"

[admin]
# The address the admin API listens on. It must be a loopback address: the
# admin API is not for the open internet.
listen = "127.0.0.1:7777"

# The name of an environment variable holding the admin token. Without it (or
# when the variable is unset or empty) a token is generated into
# <store>/admin-token, readable by you only, and read from there.
# token_env = "NUDGE_ADMIN_TOKEN"

# How each channel's messages leave: transport "console" prints them,
# "file" appends them as JSON lines to `path` (path = "outbox/email.jsonl"),
# "null" drops them (for benchmarks). SMS and WhatsApp can go through
# "twilio" (account_sid, auth_token_env, from or messaging_service_sid;
# optional base_url, status_callback, timeout_secs), and any channel to
# "http": a signed JSON POST to `url`, with the secret in the environment
# variable `secret_env`. Secrets never go in this file.

[channels.email]
transport = "console"
# Email through an SMTP server instead (the password is read from the
# environment variable named by password_env, never from this file):
# transport = "smtp"
# host = "smtp.example.com"
# security = "starttls"          # "plain", "starttls" (port 587) or "tls" (465)
# tls_ca_path = "private-ca.pem" # roots to trust besides the public ones
# username = "jobs@example.com"
# password_env = "NUDGE_SMTP_PASSWORD"
# from = "Dana Ruiz <jobs@example.com>"
# reply_to = "Dana Ruiz <dana@example.com>"
# pool_size = 8                  # connections used at once
# timeout_secs = 30
# dkim = { domain = "example.com", selector = "nudge", private_key_path = "dkim.pem" }
# [channels.email.campaigns.warehouse_associate]
# from = "Dallas DC Hiring <dallas-jobs@example.com>"

[channels.sms]
transport = "console"

[channels.whatsapp]
transport = "console"

[channels.webhook]
transport = "console"

[runtime]
# Sends in flight at once per channel, at least 1.
concurrency = 16

# Timers fired per batch, at least 1.
batch = 1024

# A timer found more than this many seconds late (after downtime, say) runs
# at the current time instead of its due time, so a long outage never sends
# at a stale hour.
catch_up_secs = 900

# Deliveries tried in all before a send that keeps failing for a passing
# reason (a timeout, a 4xx from SMTP, a 5xx or 429 from an API) is given up
# and the next channel of the campaign tried.
max_attempts = 8

# The first retry waits up to this many seconds, each further one up to twice
# as long (a random time below that: full jitter), never more than the cap.
retry_base_secs = 30
retry_cap_secs = 3600

# The pace each channel may be fed at, in any second and any minute; no
# limit where unset. For example:
# [rates.sms]
# per_second = 10
# per_minute = 300
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starter_parses_to_the_defaults() {
        let config = parse_str(FILE_NAME, &starter_toml()).unwrap();
        assert_eq!(config, Config::default());
    }

    /// Every setting the defaults serialize is spelled out in the starter,
    /// and it sets nothing else, so a new field cannot go undocumented.
    #[test]
    fn starter_shows_every_setting() {
        fn keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
            for (key, value) in table {
                let path = format!("{prefix}{key}");
                match value {
                    toml::Value::Table(inner) => keys(inner, &format!("{path}."), out),
                    _ => out.push(path),
                }
            }
        }
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        let starter: toml::Table = toml::from_str(STARTER).unwrap();
        let (mut expected, mut written) = (Vec::new(), Vec::new());
        keys(&defaults, "", &mut expected);
        keys(&starter, "", &mut written);
        expected.sort();
        written.sort();
        assert_eq!(written, expected);
        assert!(STARTER.contains("\n# token_env = "));
    }

    #[test]
    fn choose_prefers_explicit_then_env_then_default() {
        let env = Some(OsString::from("other.toml"));
        let explicit = Path::new("x.toml");
        assert_eq!(
            choose(Some(explicit), env.clone(), true),
            Some(PathBuf::from("x.toml"))
        );
        assert_eq!(choose(None, env, true), Some(PathBuf::from("other.toml")));
        assert_eq!(
            choose(None, Some(OsString::new()), true),
            Some(PathBuf::from(FILE_NAME))
        );
        assert_eq!(choose(None, None, false), None);
    }

    #[test]
    fn tokens_are_64_hex_digits() {
        let token = generate_token().unwrap();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(token, generate_token().unwrap());
    }
}
