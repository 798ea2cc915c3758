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

mod dashboard;
mod decided;
mod digest;
mod intake;
mod metrics;
mod read;
mod report;
mod server;
mod starter;
mod token;
mod validate;
mod webhooks;

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::de::DeTable;

use crate::diag::{Diagnostic, FileId, Sources};
use crate::dsl::report::render;
use crate::engine::Channel;

pub use crate::channels::smtp::{
    DkimAlgorithm, DkimSettings, Security, SenderSettings, SmtpConfig,
};
pub use crate::channels::{Bounds, FileConfig, PlainHttp, Transport};
pub use dashboard::{hash_password, password_matches, DashboardConfig};
pub use decided::DecidedConfig;
pub use digest::{parse_schedule, DigestConfig, DigestSchedule};
pub use intake::{source_problem, AtsSource, Pointers, SignatureScheme};
pub use metrics::MetricsConfig;
pub use report::ReportConfig;
pub use server::{
    fill_link, link_pattern_problem, ServerConfig, TIMEOUT_SECS as SERVER_TIMEOUT_SECS,
};
pub use starter::starter_toml;
pub use token::MIN_TOKEN_CHARS;
pub use webhooks::{verification_key, WebhooksConfig};

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
    /// Who signs the messages, `{{ sender }}` in templates: a person's
    /// name, as the templates say "I'm {{ sender }}" (default `Alex`).
    #[serde(default = "default_sender")]
    pub sender: String,
    /// Where the tracked link (`{{ link }}` in templates, which is
    /// `[server] public_url` + `/i/TOKEN`) sends a candidate when their
    /// campaign has no `link` setting: the interview platform's address,
    /// in which `{token}`, `{candidate}` and `{campaign}` are filled in
    /// (default: none, and the link shows nudge's own page saying the
    /// interview is not connected yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interview_url: Option<String>,
    /// The country calling code that completes phone numbers written
    /// without one when candidates are enrolled: `1` for North America,
    /// `44` for the UK (default: none, so every number must start with `+`
    /// or `00`). See `channels::phone` for the rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_country_code: Option<String>,
    /// The admin API.
    #[serde(default)]
    pub admin: AdminConfig,
    /// The public server: candidate pages and provider webhooks.
    #[serde(default)]
    pub server: ServerConfig,
    /// How each channel's messages leave. Read table by table rather than
    /// by serde alone, since the `transport` key of each channel's table
    /// decides what its other keys mean (see `read`).
    #[serde(default, skip_deserializing)]
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
    /// What the public server needs to trust providers' and the interview
    /// platform's signals (see `webhooks`).
    #[serde(default)]
    pub webhooks: WebhooksConfig,
    /// Applications from ATSs and job boards, one `[ats.SOURCE]` table per
    /// source (see `intake`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub ats: std::collections::BTreeMap<String, AtsSource>,
    /// Who may read `GET /metrics` (see `metrics`).
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The weekly digest to recruiters (see `digest`; default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<DigestConfig>,
    /// The thresholds of the report's red flags (see `report`).
    #[serde(default)]
    pub report: ReportConfig,
    /// How the daemon decides `until decided` experiments.
    #[serde(default)]
    pub decided: DecidedConfig,
    /// The live dashboard on the admin listener (see `dashboard`).
    #[serde(default)]
    pub dashboard: DashboardConfig,
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
    /// Messages in any one second, from 1 to 10000 (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_second: Option<u32>,
    /// Messages in any one minute, from 1 to 600000 (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u32>,
}

impl RateConfig {
    /// `per_second`: 0 would stop the channel for good (leave the setting
    /// out for no limit); no provider takes more than thousands a second,
    /// and the limiter remembers every send of the last minute.
    pub const PER_SECOND: Bounds = Bounds::new(1, 10_000);

    /// `per_minute`: as `per_second`, for a minute.
    pub const PER_MINUTE: Bounds = Bounds::new(1, 600_000);
}

/// The `[admin]` table: the admin API, for enrolling candidates and
/// receiving events.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// The address the admin API listens on; it must be a loopback address,
    /// as the admin API is not for the open internet, and its port not 0,
    /// as the CLI could not find a port chosen at random (default
    /// `127.0.0.1:7777`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The name of an environment variable holding the admin token, of at
    /// least [`MIN_TOKEN_CHARS`] visible ASCII characters. When unset, or
    /// the variable is unset or empty, a token is generated into
    /// `<store>/admin-token` (mode 0600) and read from there (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
}

/// The `[channels]` table: one transport per channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelsConfig {
    /// How email goes out (default console).
    pub email: Transport,
    /// How SMS goes out (default console).
    pub sms: Transport,
    /// How WhatsApp messages go out (default console).
    pub whatsapp: Transport,
    /// How webhook messages go out (default console).
    pub webhook: Transport,
}

/// The `[runtime]` table: limits of the daemon. Each number has bounds
/// (the constants below); a value outside them is refused.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Sends in flight at once per channel, from 1 to 1024 (default 16).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Timers fired per batch, from 1 to 65536 (default 1024).
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// A timer found more than this many seconds late (after downtime, say)
    /// runs at the current time instead of its due time, so a long outage
    /// never sends at a stale hour; from 0 to 315360000, ten years (default
    /// 900).
    #[serde(default = "default_catch_up_secs")]
    pub catch_up_secs: u64,
    /// A send that could only go more than this many seconds after it was
    /// due is skipped as `late`, never sent, from 60 to a year (default
    /// 43200, 12 hours).
    #[serde(default = "default_stale_after_secs")]
    pub stale_after_secs: u64,
    /// Deliveries tried in all before a send that keeps failing for a
    /// passing reason is given up (and the next channel tried), from 1 to
    /// 100 (default 8).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The first retry waits up to this many seconds; each further one up
    /// to twice as long, randomly (full jitter); from 1 to 86400, a day
    /// (default 30).
    #[serde(default = "default_retry_base_secs")]
    pub retry_base_secs: u64,
    /// No retry waits longer than this many seconds; from
    /// `retry_base_secs` to 604800, a week (default 3600).
    #[serde(default = "default_retry_cap_secs")]
    pub retry_cap_secs: u64,
    /// The history of a candidate who finished every campaign is pruned
    /// this many days after they finished, keeping their outcome (default:
    /// kept forever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_days: Option<u32>,
}

impl RuntimeConfig {
    /// `concurrency`: at least one send at a time, or nothing goes; at most
    /// 1024, as each send in flight holds a task and, for SMTP and HTTP, a
    /// connection, and providers throttle far below that (beyond it sends
    /// only queue at their end).
    pub const CONCURRENCY: Bounds = Bounds::new(1, 1024);

    /// `batch`: at least one timer per commit; at most 65536, as a batch is
    /// one store transaction held in memory, and a longer commit delays the
    /// admin API's answers behind it.
    pub const BATCH: Bounds = Bounds::new(1, 65_536);

    /// `catch_up_secs`: 0 runs every late timer at once; more than ten years
    /// late is as good as never, and a bound keeps the time arithmetic far
    /// from overflowing.
    pub const CATCH_UP_SECS: Bounds = Bounds::new(0, 315_360_000);

    /// `max_attempts`: the first attempt counts, so at least 1; 100
    /// attempts at the longest wait already span months.
    pub const MAX_ATTEMPTS: Bounds = Bounds::new(1, 100);

    /// `retry_base_secs`: at least a second, so a failing provider is not
    /// hammered in a loop; at most a day.
    pub const RETRY_BASE_SECS: Bounds = Bounds::new(1, 86_400);

    /// `retry_cap_secs`: at most a week between two attempts (and never
    /// below `retry_base_secs`, checked apart).
    pub const RETRY_CAP_SECS: Bounds = Bounds::new(1, 604_800);

    /// `stale_after_secs`: a send that could only go this long after it
    /// was due is skipped as late; from a minute to a year.
    pub const STALE_AFTER_SECS: Bounds = Bounds::new(60, 365 * 86_400);
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
    "Alex".to_string()
}

fn default_listen() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 7777))
}

fn default_transport() -> Transport {
    Transport::Console
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

fn default_stale_after_secs() -> u64 {
    12 * 3600
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
            interview_url: None,
            phone_country_code: None,
            admin: AdminConfig::default(),
            server: ServerConfig::default(),
            channels: ChannelsConfig::default(),
            runtime: RuntimeConfig::default(),
            communications: Communications::On,
            rates: RatesConfig::default(),
            webhooks: WebhooksConfig::default(),
            ats: Default::default(),
            metrics: MetricsConfig::default(),
            digest: None,
            report: ReportConfig::default(),
            decided: DecidedConfig::default(),
            dashboard: DashboardConfig::default(),
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
            stale_after_secs: default_stale_after_secs(),
            max_attempts: default_max_attempts(),
            retry_base_secs: default_retry_base_secs(),
            retry_cap_secs: default_retry_cap_secs(),
            history_days: None,
        }
    }
}

impl ChannelsConfig {
    /// Every channel and its transport.
    pub fn entries(&self) -> [(Channel, &Transport); 4] {
        Channel::ALL.map(|channel| (channel, self.get(channel)))
    }

    /// The transport of `channel`.
    pub fn get(&self, channel: Channel) -> &Transport {
        match channel {
            Channel::Email => &self.email,
            Channel::Sms => &self.sms,
            Channel::Whatsapp => &self.whatsapp,
            Channel::Webhook => &self.webhook,
        }
    }

    /// The transport of `channel`, to change.
    pub fn get_mut(&mut self, channel: Channel) -> &mut Transport {
        match channel {
            Channel::Email => &mut self.email,
            Channel::Sms => &mut self.sms,
            Channel::Whatsapp => &mut self.whatsapp,
            Channel::Webhook => &mut self.webhook,
        }
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
        for channel in Channel::ALL {
            self.channels.get_mut(channel).resolve(base);
        }
        self
    }
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
/// every problem found: all syntax errors; else every problem of shape
/// (unknown key, wrong type, missing setting), each at its key path, and
/// every invalid value among the settings that have the right shape.
/// Relative paths are left as written.
pub fn parse(sources: &Sources, file: FileId) -> Result<Config, Vec<Diagnostic>> {
    let text = sources.get(file).text.as_str();
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        let mut diagnostics: Vec<Diagnostic> = errors
            .iter()
            .map(|e| read::syntax_diagnostic(file, text, e))
            .collect();
        diagnostics.sort_by_key(|d| d.span.start);
        return Err(diagnostics);
    }
    let mut diagnostics = Vec::new();
    let config = read::config(file, &root, &mut diagnostics);
    diagnostics.extend(validate::validate(file, root.get_ref(), &config));
    diagnostics.sort_by_key(|d| d.span.start);
    if diagnostics.is_empty() {
        Ok(config)
    } else {
        Err(diagnostics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
