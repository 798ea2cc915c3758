//! The commands behind `nudge`'s subcommands. `main.rs` parses arguments
//! and maps [`CliError`] to exit codes; everything else lives here so the
//! commands can be reached from tests as library calls too.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};

use crate::diag::{Diagnostic, Sources};
use crate::dsl::ast;
use crate::dsl::check::check as check_campaigns;
use crate::dsl::load::{load, Loaded};
use crate::dsl::pipeline::{compile_paths, PipelineError};
use crate::dsl::report::{render, render_report, render_report_json};
use crate::engine::{Candidate, Machine};
use crate::sim::{self, batch, output, parse_offset, Scenario};

/// How a command failed. Every failure a command finds is exit status 1;
/// 2 is left to clap, for arguments it rejects before a command runs (an
/// unknown flag, a missing value, a value of the wrong shape), so a
/// script can tell "you called me wrong" from "that did not work".
#[derive(Debug)]
pub enum CliError {
    /// A campaign, input or store error, with its message.
    Input(String),
    /// Diagnostics were already printed.
    Reported,
    /// The error went to the log (`nudge run`), in the log's format.
    Logged,
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(1)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Input(m) => f.write_str(m),
            CliError::Reported => f.write_str("aborting because of the errors above"),
            CliError::Logged => f.write_str("stopped because of the error logged above"),
        }
    }
}

/// Writes to stdout. A reader that went away (`nudge show X | head -1`)
/// is no failure of the command: the rest of its output is dropped and it
/// ends as it would have, exit status included.
fn emit(args: fmt::Arguments<'_>) -> Result<(), CliError> {
    match std::io::stdout().lock().write_fmt(args) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Input(format!("cannot write the output: {e}")))
        }
        _ => Ok(()),
    }
}

/// `print!` through [`emit`]; returns the error from the calling function.
macro_rules! out {
    ($($arg:tt)*) => {
        emit(format_args!($($arg)*))?
    };
}

/// `println!` through [`emit`]; returns the error from the calling function.
macro_rules! outln {
    ($($arg:tt)*) => {
        emit(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

mod backups;
pub use backups::{backup, restore, verify};

/// clap's check of an RFC 3339 instant (`--start`, `--at`); the text is
/// passed on as given.
pub fn instant_arg(text: &str) -> Result<String, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|_| text.to_string())
        .map_err(|_| {
            format!("`{text}` is not an RFC 3339 instant such as `2026-11-26T20:30:00-06:00`")
        })
}

/// clap's check of a KEY=VALUE argument.
pub fn key_value_arg(text: &str) -> Result<String, String> {
    shaped(text, '=', "KEY=VALUE")
}

/// clap's check of an EXPERIMENT=VARIANT argument.
pub fn variant_arg(text: &str) -> Result<String, String> {
    shaped(text, '=', "EXPERIMENT=VARIANT")
}

/// clap's check of an EXPERIMENT=VARIANT@OFFSET argument (`--decided`).
pub fn decided_arg(text: &str) -> Result<String, String> {
    let shape = "EXPERIMENT=VARIANT@OFFSET, such as `copy=warm@2d`";
    let (pair, offset) = text
        .split_once('@')
        .ok_or_else(|| format!("expected {shape}"))?;
    shaped(pair, '=', shape)?;
    offset_arg(offset).map(|_| text.to_string())
}

/// clap's check of a NAME@OFFSET argument (whether the instant falls after
/// `--start` is the simulation's to say).
pub fn event_arg(text: &str) -> Result<String, String> {
    let shape = "NAME@OFFSET, such as `clicked@20h`";
    shaped(text, '@', shape)?;
    let (_, offset) = text.split_once('@').unwrap_or_default();
    offset_arg(offset).map(|_| text.to_string())
}

/// clap's check of an OFFSET: a duration (`30h`, `2d`) or an RFC 3339 instant.
pub fn offset_arg(text: &str) -> Result<String, String> {
    parse_offset(text, DateTime::UNIX_EPOCH).map(|_| text.to_string())
}

/// clap's check of `--speed`.
pub fn speed_arg(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(speed) if speed.is_finite() && speed > 0.0 => Ok(speed),
        _ => Err(format!("`{text}` is not a positive factor such as 3600")),
    }
}

fn shaped(text: &str, sep: char, shape: &str) -> Result<String, String> {
    match text.split_once(sep) {
        Some((k, _)) if !k.trim().is_empty() => Ok(text.to_string()),
        _ => Err(format!("expected {shape}")),
    }
}

/// Success, or a run that found problems it has already reported (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        match s {
            Status::Ok => ExitCode::SUCCESS,
            Status::Failed => ExitCode::from(1),
        }
    }
}

fn default_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from("campaigns")]
    } else {
        paths.to_vec()
    }
}

fn color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// `nudge check`: the configuration (when there is one), then the
/// campaigns (by default the configured folder) and their templates.
pub fn check(
    config: Option<&Path>,
    paths: &[PathBuf],
    json: bool,
    templates: Option<&Path>,
    channels: bool,
) -> Result<Status, CliError> {
    // A configuration that does not check is reported with the campaigns
    // (checked from the default folders), so one run shows all, and its
    // errors count in the summary.
    let (config, config_file, config_problems) = match crate::config::load(config) {
        Ok((c, f)) => (c, f, None),
        Err(crate::config::ConfigError::Invalid {
            diagnostics,
            sources,
        }) => (
            crate::config::Config::default(),
            None,
            Some((sources, diagnostics)),
        ),
        Err(e) => return Err(CliError::Input(e.to_string())),
    };
    let config_ok = config_problems.is_none();
    let paths = if paths.is_empty() && config_file.is_some() {
        vec![config.campaigns.clone()]
    } else {
        default_paths(paths)
    };
    let mut loaded = load(&paths).map_err(|e| CliError::Input(e.to_string()))?;
    let templates = templates
        .map(Path::to_path_buf)
        .or_else(|| config_file.as_ref().map(|_| config.templates.clone()))
        .or_else(|| default_templates(&paths));
    let mut report = check_campaigns(&loaded, templates.as_deref());
    if let Some((sources, diagnostics)) = config_problems {
        let first = loaded.sources.files.len();
        loaded.sources.files.extend(sources.files);
        let moved = diagnostics.into_iter().map(|d| Diagnostic {
            file: d.file + first,
            ..d
        });
        report.diagnostics.splice(0..0, moved);
    }
    if json {
        out!("{}", render_report_json(&loaded.sources, &report));
    } else {
        eprint!("{}", render_report(&loaded.sources, &report, color()));
    }
    let template_errors = match templates.as_deref() {
        Some(dir) if dir.is_dir() && !json => {
            check_template_files(dir, &config, config_file.is_some())
        }
        _ => 0,
    };
    // The files the settings name (a DKIM key), read as `run` would.
    let mut file_errors = 0;
    if config_ok {
        for (channel, transport) in config.channels.entries() {
            for problem in transport.check_files(channel) {
                eprintln!("error: {problem}");
                file_errors += 1;
            }
        }
    }
    if let Some(dir) = templates.as_deref().filter(|d| d.is_dir() && !json) {
        if !report.has_errors() {
            for line in template_fields(&paths, dir) {
                outln!("{line}");
            }
        }
    }
    let channel_errors = if channels && config_ok {
        check_channels(&config)?
    } else {
        0
    };
    let stranding = config_file.is_some()
        && config_ok
        && !report.has_errors()
        && {
            let stranded = strandings_for(&config)?;
            for s in &stranded {
                eprintln!("error: {s}");
            }
            if !stranded.is_empty() {
                eprintln!(
                "error: nudge would refuse to start (or reload) on these campaign files: the store at `{}` has candidates in what they remove",
                config.store.display()
            );
            }
            !stranded.is_empty()
        };
    let failed = report.has_errors()
        || !config_ok
        || template_errors > 0
        || file_errors > 0
        || channel_errors > 0
        || stranding;
    Ok(if failed { Status::Failed } else { Status::Ok })
}

/// What the configured campaign files would strand in the configured
/// store, were nudge started (or reloaded) on them now.
fn strandings_for(
    config: &crate::config::Config,
) -> Result<Vec<crate::runtime::core::Stranded>, CliError> {
    let sources = crate::runtime::client::sources(config);
    let Ok((campaigns, _)) = crate::runtime::daemon::load_all(&sources) else {
        return Ok(Vec::new());
    };
    crate::runtime::client::strandings_on_start(config, &campaigns)
        .map_err(|e| CliError::Input(e.to_string()))
}

/// Which candidate fields each campaign's templates print, a line per
/// campaign: a candidate without one printed with no default is refused at
/// enrollment. Nothing when the campaigns or the templates do not load
/// (their errors are reported already).
fn template_fields(paths: &[PathBuf], dir: &Path) -> Vec<String> {
    let Ok(compiled) = compile_paths(paths, Some(dir)) else {
        return Vec::new();
    };
    let Ok((templates, _)) = crate::templates::Templates::load_partial(dir) else {
        return Vec::new();
    };
    compiled
        .campaigns
        .iter()
        .map(|c| templates.campaign_fields(&c.machine).to_string())
        .collect()
}

/// `templates/` beside the first campaigns folder (or beside the folder of
/// the first campaign file), if it exists.
fn default_templates(paths: &[PathBuf]) -> Option<PathBuf> {
    let first = paths.first()?;
    let folder = if first.is_dir() {
        first.as_path()
    } else {
        first.parent()?
    };
    let beside = folder
        .parent()
        .map_or_else(|| PathBuf::from("templates"), |p| p.join("templates"));
    let candidates = [beside, folder.join("templates")];
    candidates.into_iter().find(|p| p.is_dir())
}

/// Loads, checks and compiles one campaign of a file; prints the
/// diagnostics of a campaign that does not check.
pub fn load_machine(file: &Path, campaign: Option<&str>) -> Result<(Machine, Sources), CliError> {
    let mut compiled = match compile_paths(&[file.to_path_buf()], None) {
        Ok(compiled) => compiled,
        Err(PipelineError::Rejected {
            sources,
            diagnostics,
        }) => {
            let errors: Vec<Diagnostic> =
                diagnostics.into_iter().filter(|d| d.is_error()).collect();
            eprint!("{}", render(&sources, &errors, color()));
            return Err(CliError::Reported);
        }
        Err(e) => return Err(CliError::Input(e.to_string())),
    };
    let chosen = pick_campaign(&compiled.loaded, file, campaign)?
        .name
        .name
        .clone();
    let at = compiled
        .campaigns
        .iter()
        .position(|c| c.machine.name == chosen)
        .ok_or_else(|| CliError::Input(format!("campaign `{chosen}` was not compiled")))?;
    let machine = compiled.campaigns.swap_remove(at).machine;
    Ok((machine, compiled.loaded.sources))
}

/// Loads and checks a campaign file; prints the errors of one that does
/// not check (its warnings are `nudge check`'s to tell).
fn load_checked(file: &Path) -> Result<Loaded, CliError> {
    let loaded = load(&[file.to_path_buf()]).map_err(|e| CliError::Input(e.to_string()))?;
    let report = check_campaigns(&loaded, None);
    let errors: Vec<Diagnostic> = report
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .cloned()
        .collect();
    if !errors.is_empty() {
        eprint!("{}", render(&loaded.sources, &errors, color()));
        return Err(CliError::Reported);
    }
    Ok(loaded)
}

fn pick_campaign<'a>(
    loaded: &'a Loaded,
    file: &Path,
    name: Option<&str>,
) -> Result<&'a ast::Campaign, CliError> {
    let all: Vec<&ast::Campaign> = loaded
        .files
        .iter()
        .flat_map(|(_, f)| &f.campaigns)
        .collect();
    let names = || {
        all.iter()
            .map(|c| format!("`{}`", c.name.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(n) => all
            .iter()
            .copied()
            .find(|c| c.name.name == n)
            .ok_or_else(|| {
                CliError::Input(format!(
                    "{} has no campaign `{n}` (it has {})",
                    file.display(),
                    names()
                ))
            }),
        None => match all.as_slice() {
            [one] => Ok(one),
            [] => Err(CliError::Input(format!(
                "{} holds no campaign",
                file.display()
            ))),
            _ => Err(CliError::Input(format!(
                "{} holds several campaigns ({}): choose one with `--campaign NAME`",
                file.display(),
                names()
            ))),
        },
    }
}

/// The options of `nudge simulate`, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct SimulateOptions {
    pub file: PathBuf,
    pub campaign: Option<String>,
    pub start: String,
    pub candidate: Vec<String>,
    pub events: Vec<String>,
    pub variants: Vec<String>,
    /// `--decided EXPERIMENT=VARIANT@OFFSET`.
    pub decided: Vec<String>,
    pub until: Option<String>,
    pub candidates: Option<PathBuf>,
    pub threads: Option<usize>,
    pub json: bool,
}

fn key_value<'a>(
    text: &'a str,
    flag: &str,
    sep: char,
    shape: &str,
) -> Result<(&'a str, &'a str), CliError> {
    match text.split_once(sep) {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim(), v)),
        _ => Err(CliError::Input(format!(
            "`{flag} {text}`: expected {shape}"
        ))),
    }
}

/// `nudge simulate`.
pub fn simulate(opts: &SimulateOptions) -> Result<Status, CliError> {
    let start = DateTime::parse_from_rfc3339(&opts.start)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            CliError::Input(format!(
                "`--start {}`: expected an RFC 3339 instant such as `2026-11-26T20:30:00-06:00`",
                opts.start
            ))
        })?;
    let until = match &opts.until {
        Some(u) => {
            parse_offset(u, start).map_err(|e| CliError::Input(format!("`--until`: {e}")))?
        }
        None => start + Duration::days(30),
    };
    let mut variants = Vec::new();
    for v in &opts.variants {
        let (e, name) = key_value(v, "--variant", '=', "EXPERIMENT=VARIANT")?;
        variants.push((e.to_string(), name.trim().to_string()));
    }
    let mut decided = Vec::new();
    for d in &opts.decided {
        let shape = "EXPERIMENT=VARIANT@OFFSET, such as `copy=warm@2d`";
        let (pair, offset) = key_value(d, "--decided", '@', shape)?;
        let (experiment, winner) = key_value(pair, "--decided", '=', shape)?;
        let at = parse_offset(offset, start)
            .map_err(|m| CliError::Input(format!("`--decided {d}`: {m}")))?;
        decided.push(sim::DecidedAt {
            experiment: experiment.to_string(),
            winner: winner.trim().to_string(),
            at,
        });
    }
    let (machine, _) = load_machine(&opts.file, opts.campaign.as_deref())?;

    if let Some(list) = &opts.candidates {
        let rows = batch::read_list(list).map_err(|e| CliError::Input(e.to_string()))?;
        let threads = opts
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        let horizon = until - start;
        let outcomes =
            batch::simulate_list_decided(&machine, &rows, start, horizon, threads, &decided)
                .map_err(|e| CliError::Input(e.to_string()))?;
        let mut stdout = std::io::stdout().lock();
        if opts.json {
            for o in &outcomes {
                writeln!(stdout, "{}", o.json()).map_err(|e| CliError::Input(e.to_string()))?;
            }
        } else {
            let text = batch::summary(
                &machine,
                &outcomes,
                &list.display().to_string(),
                horizon.num_days(),
            );
            write!(stdout, "{text}").map_err(|e| CliError::Input(e.to_string()))?;
        }
        return Ok(Status::Ok);
    }

    let mut pairs = Vec::new();
    for c in &opts.candidate {
        pairs.push(key_value(c, "--candidate", '=', "KEY=VALUE")?);
    }
    let candidate = Candidate::from_pairs(pairs, "sim");
    let mut events = Vec::new();
    for e in &opts.events {
        let (name, offset) = key_value(e, "--event", '@', "NAME@OFFSET, such as `clicked@20h`")?;
        let at = parse_offset(offset, start)
            .map_err(|m| CliError::Input(format!("`--event {e}`: {m}")))?;
        events.push((name.to_string(), at));
    }
    let scenario = Scenario {
        start,
        candidate,
        events,
        variants,
        until,
    };
    let timeline = sim::run_decided(&machine, &scenario, &decided)
        .map_err(|e| CliError::Input(e.to_string()))?;
    let text = if opts.json {
        output::json(&machine, &timeline)
    } else {
        output::human(&machine, &timeline, &scenario.candidate.id)
    };
    out!("{text}");
    Ok(Status::Ok)
}

/// `nudge graph`.
pub fn graph(file: &Path, campaign: Option<&str>, mermaid: bool) -> Result<Status, CliError> {
    // A drawing of a campaign that does not check would show a machine
    // that cannot run.
    let loaded = load_checked(file)?;
    let chosen = pick_campaign(&loaded, file, campaign)?;
    let text = if mermaid {
        crate::graph::mermaid(chosen)
    } else {
        crate::graph::dot(chosen)
    };
    out!("{text}");
    Ok(Status::Ok)
}

/// `nudge fmt`: rewrites files in place, or with `check` lists the files
/// that would change (exit 1). A file that does not parse is reported and
/// left untouched.
pub fn fmt(paths: &[PathBuf], check: bool) -> Result<Status, CliError> {
    let paths = default_paths(paths);
    let loaded = load(&paths).map_err(|e| CliError::Input(e.to_string()))?;
    let mut status = Status::Ok;
    if !loaded.diagnostics.is_empty() {
        eprint!("{}", render(&loaded.sources, &loaded.diagnostics, color()));
        status = Status::Failed;
    }
    for (id, file) in &loaded.files {
        let source = loaded.sources.get(*id);
        if check {
            if let Some(change) = crate::dsl::fmt::check_formatted(file, &source.text) {
                outln!(
                    "{name}:{}: not formatted (`nudge fmt` rewrites it)\n--- {name}\n+++ {name}\n{}",
                    change.line,
                    change.diff,
                    name = source.name,
                );
                status = Status::Failed;
            }
        } else {
            let formatted = crate::dsl::fmt::format(file, &source.text);
            if formatted != source.text {
                std::fs::write(&source.name, formatted)
                    .map_err(|e| CliError::Input(format!("cannot write {}: {e}", source.name)))?;
                outln!("formatted {}", source.name);
            }
        }
    }
    Ok(status)
}

/// Loads `nudge.toml` (or the defaults when there is none).
pub fn load_config(path: Option<&Path>) -> Result<crate::config::Config, CliError> {
    crate::config::load(path)
        .map(|(config, _)| config)
        .map_err(|e| match e {
            crate::config::ConfigError::Invalid { .. } => {
                eprint!("{}", e.render(color()));
                CliError::Reported
            }
            crate::config::ConfigError::Io { .. } => CliError::Input(e.to_string()),
        })
}

/// `nudge init DIR`.
pub fn init(dir: &Path) -> Result<Status, CliError> {
    let report = crate::init::init(dir).map_err(|e| CliError::Input(e.to_string()))?;
    for file in &report.files {
        outln!("wrote {}", file.display());
    }
    outln!(
        "\nnext:\n  cd {}\n  nudge check\n  nudge run",
        dir.display()
    );
    Ok(Status::Ok)
}

/// `nudge run`.
pub fn run(
    config: crate::config::Config,
    speed: Option<f64>,
    clock: Option<&str>,
    json_logs: bool,
) -> Result<Status, CliError> {
    use crate::runtime::clock::{Clock, ScaledClock, SystemClock};
    let clock: std::sync::Arc<dyn Clock> = match (speed, clock) {
        (Some(speed), _) if !(speed.is_finite() && speed > 0.0) => {
            return Err(CliError::Input(format!(
                "`--speed {speed}`: expected a positive factor such as 3600"
            )))
        }
        (Some(speed), _) => std::sync::Arc::new(ScaledClock {
            origin: chrono::Utc::now(),
            origin_real: std::time::SystemTime::now(),
            speed,
        }),
        (None, Some(spec)) => std::sync::Arc::new(
            ScaledClock::parse(spec).map_err(|e| CliError::Input(format!("`--clock`: {e}")))?,
        ),
        (None, None) => std::sync::Arc::new(SystemClock),
    };
    // Held until the daemon ends: dropping it writes the last lines.
    let _logs = init_logs(json_logs);
    if let Err(e) = crate::runtime::memory::small_pages() {
        tracing::warn!(%e, "cannot turn transparent huge pages off; a burst after idle may start late");
    }
    // With JSON logs a failure to start is one more JSON line, so a
    // collector reads every line the daemon wrote.
    let failed = |message: String| {
        if json_logs {
            tracing::error!("{message}");
            CliError::Logged
        } else {
            CliError::Input(message)
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(format!("cannot start: {e}")))?;
    let ran = runtime.block_on(crate::runtime::run::run(config, clock));
    // Not waiting for a thread stuck in a store write (see `StuckOnStop`).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ran.map_err(|e| failed(e.to_string()))?;
    Ok(Status::Ok)
}

/// Logs to stderr from a thread of their own: a line per send at ten
/// thousand sends a second would otherwise cost the dispatcher a write each
/// (the runtime benchmark's lateness p99 went from 11 to 20 ms with them).
/// Lines wait in memory only until that thread writes them (a `kill -9`
/// can lose the last few; the store, not the log, is the record), and a
/// burst past the buffer slows the loggers rather than dropping lines.
fn init_logs(json: bool) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("NUDGE_LOG").unwrap_or_else(|_| EnvFilter::new("info,sled=warn"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("nudge-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color())
        .with_writer(writer);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    guard
}

pub mod suppression;

pub mod export;
pub mod import;
pub use import::{import, invite, ImportOptions};

pub mod dashboard;

fn connect(config: &crate::config::Config) -> Result<crate::runtime::client::Admin, CliError> {
    crate::runtime::client::Admin::connect(config).map_err(|e| CliError::Input(e.to_string()))
}

/// Every refusal is an input error (exit 1): usage errors (exit 2) are
/// clap's alone.
fn api(e: crate::runtime::refusal::Refusal) -> CliError {
    CliError::Input(e.to_string())
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<Status, CliError> {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).map_err(|e| CliError::Input(e.to_string()))?
    );
    Ok(Status::Ok)
}

fn note_queued(admin: &crate::runtime::client::Admin) {
    let queued = admin.queued();
    if queued > 0 {
        eprintln!(
            "note: no daemon is running: {queued} message{} wait in the outbox and go out when `nudge run` starts",
            if queued == 1 { "" } else { "s" }
        );
    }
}

/// The options of `nudge enroll`.
#[derive(Debug, Clone, Default)]
pub struct EnrollOptions {
    pub campaign: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub fields: Vec<String>,
    pub ignore_filter: bool,
    pub json: bool,
}

/// `nudge enroll`: prints the candidate's tracked link.
pub fn enroll(config: &crate::config::Config, opts: &EnrollOptions) -> Result<Status, CliError> {
    let mut fields = std::collections::BTreeMap::new();
    for (k, v) in [
        ("name", &opts.name),
        ("email", &opts.email),
        ("phone", &opts.phone),
    ] {
        if let Some(v) = v {
            fields.insert(k.to_string(), v.clone());
        }
    }
    for f in &opts.fields {
        let (k, v) = key_value(f, "--field", '=', "KEY=VALUE")?;
        fields.insert(k.to_lowercase(), v.to_string());
    }
    let mut admin = connect(config)?;
    let response = admin
        .enroll(crate::runtime::api::EnrollRequest {
            campaign: opts.campaign.clone(),
            external_id: opts.id.clone(),
            fields,
            ignore_filter: opts.ignore_filter,
        })
        .map_err(api)?;
    if opts.json {
        print_json(&response)?;
    } else {
        outln!("{}", response.link);
        if response.enrolled {
            eprintln!(
                "enrolled candidate {} in {} (state {}) {}",
                response.candidate,
                opts.campaign,
                response.state,
                admin.describe()
            );
        } else {
            eprintln!(
                "candidate {} was already in {} (state {}): nothing changed",
                response.candidate, opts.campaign, response.state
            );
        }
        if !response.filter_matched {
            eprintln!("note: the campaign's `where` filter does not take this candidate; enrolled as asked (--ignore-filter)");
        }
        for s in &response.suppressed {
            eprintln!("note: {}", s.message);
        }
    }
    note_queued(&admin);
    Ok(Status::Ok)
}

/// `nudge event CANDIDATE EVENT`.
pub fn event(
    config: &crate::config::Config,
    candidate: &str,
    event: &str,
    at: Option<&str>,
    fields: &[String],
    json: bool,
) -> Result<Status, CliError> {
    let mut map = std::collections::BTreeMap::new();
    for f in fields {
        let (k, v) = key_value(f, "--field", '=', "KEY=VALUE")?;
        map.insert(k.to_lowercase(), v.to_string());
    }
    let mut admin = connect(config)?;
    let request = |candidate: &str| crate::runtime::api::EventRequest {
        candidate: candidate.to_string(),
        event: event.to_string(),
        at: at.map(str::to_string),
        fields: map.clone(),
        id: None,
    };
    let response = match admin.event(request(candidate)) {
        // The core knows a candidate by id, token and the identity they
        // were enrolled under; `show` also finds them by email or phone.
        Err(e) if e.is_unknown_candidate() => {
            let id = admin.show(candidate).map_err(api)?.id;
            admin.event(request(&id))
        }
        answer => answer,
    }
    .map_err(api)?;
    if json {
        print_json(&response)?;
    } else {
        let zone = admin
            .show(&response.candidate)
            .map_err(api)?
            .zone
            .parse()
            .unwrap_or(chrono_tz::UTC);
        outln!(
            "{event} recorded for {} at {}",
            response.candidate,
            for_people(&response.at, zone)
        );
        for effect in &response.effects {
            outln!("  {effect}");
        }
    }
    note_queued(&admin);
    Ok(Status::Ok)
}

/// An RFC 3339 instant from the runtime as people read every time:
/// local to the candidate's zone, with its offset.
fn for_people(rfc3339: &str, zone: chrono_tz::Tz) -> String {
    match DateTime::parse_from_rfc3339(rfc3339) {
        Ok(at) => output::local(at.with_timezone(&Utc), zone),
        Err(_) => rfc3339.to_string(),
    }
}

/// `nudge status [CAMPAIGN]`.
pub fn status(
    config: &crate::config::Config,
    campaign: Option<&str>,
    json: bool,
) -> Result<Status, CliError> {
    let mut admin = connect(config)?;
    let report = admin.status(campaign).map_err(api)?;
    if json {
        print_json(&report)?;
        return Ok(troubled(&report));
    }
    if let Some(trouble) = &report.store_trouble {
        outln!("STORE NOT WRITABLE: {trouble}\n{UNWRITTEN}\n");
    }
    for c in &report.campaigns {
        outln!(
            "{}{}{}",
            c.name,
            c.title
                .as_ref()
                .map(|t| format!(" · {t}"))
                .unwrap_or_default(),
            if c.paused { " · PAUSED" } else { "" }
        );
        for (state, n) in &c.states {
            outln!("  {state:<24} {n:>8}");
        }
        for (outcome, n) in &c.outcomes {
            outln!("  exited: {outcome:<16} {n:>8}");
        }
        outln!(
            "  sends due in the next hour {}, next day {}; held {}; failed {}; late {}",
            c.sends_next_hour,
            c.sends_next_day,
            c.held,
            c.failed,
            c.late
        );
        for d in &c.decided {
            outln!("  {}", d.text);
        }
    }
    outln!("outbox: {} waiting for delivery", report.outbox);
    Ok(troubled(&report))
}

/// Status fails (exit 1) while the store cannot be written, so a monitor
/// running `nudge status` sees it.
fn troubled(report: &crate::runtime::api::StatusReport) -> Status {
    match report.store_trouble {
        Some(_) => Status::Failed,
        None => Status::Ok,
    }
}

/// Said under "STORE NOT WRITABLE": the store's memory holds the batch
/// whose write failed until the store is opened again.
const UNWRITTEN: &str = "Until it can be written again, what is shown may include the change it refused (held in memory, never acknowledged); that change is dropped when the store resumes.";

/// `nudge show CANDIDATE`.
pub fn show(config: &crate::config::Config, who: &str, json: bool) -> Result<Status, CliError> {
    let mut admin = connect(config)?;
    let view = admin.show(who).map_err(api)?;
    if json {
        return print_json(&view);
    }
    if let Some(trouble) = &view.store_trouble {
        outln!("STORE NOT WRITABLE: {trouble}\n{UNWRITTEN}\n");
    }
    let zone = view.zone.parse().unwrap_or(chrono_tz::UTC);
    let name = view.fields.get("name").cloned().unwrap_or_default();
    outln!(
        "{} {name} · {} · times in {}",
        view.id,
        view.link,
        view.zone
    );
    if view.opted_out {
        outln!("opted out: nothing is sent to this candidate");
    }
    for e in &view.enrollments {
        let state = match &e.outcome {
            Some(o) => format!("exited: {o}"),
            None => format!("in {}", e.state),
        };
        outln!(
            "  {}: {state}{}{}",
            e.campaign,
            e.next_wake
                .as_deref()
                .map(|w| format!(", next step {}", for_people(w, zone)))
                .unwrap_or_default(),
            if e.paused { " (campaign paused)" } else { "" }
        );
        for d in &e.decided {
            let had = e
                .variants
                .get(&d.experiment)
                .map_or_else(String::new, |v| format!(" (this enrollment has {v})"));
            outln!("    {}{had}", d.text);
        }
    }
    for line in &view.timeline {
        let campaign = if line.campaign.is_empty() {
            String::new()
        } else {
            format!("{} ", line.campaign)
        };
        outln!("{}  {campaign}{:<10} {}", line.local, line.kind, line.text);
    }
    Ok(Status::Ok)
}

/// `nudge pause` / `nudge resume`.
pub fn set_paused(
    config: &crate::config::Config,
    campaign: &str,
    paused: bool,
) -> Result<Status, CliError> {
    let mut admin = connect(config)?;
    admin.set_paused(campaign, paused).map_err(api)?;
    outln!("{campaign} {}", if paused { "paused" } else { "resumed" });
    note_queued(&admin);
    Ok(Status::Ok)
}

/// `nudge reload`: asks the running daemon to reload its files.
pub fn reload(config: &crate::config::Config) -> Result<Status, CliError> {
    let mut admin = connect(config)?;
    let report = admin.reload().map_err(api)?;
    if report.changed.is_empty() {
        outln!("reloaded: nothing changed");
    } else {
        outln!("reloaded: {}", report.changed.join(", "));
    }
    Ok(Status::Ok)
}

/// `nudge digest`: who gets the weekly digest and when the next is due;
/// with `now`, the digest as it would go now.
pub fn digest(config: &crate::config::Config, now: bool) -> Result<Status, CliError> {
    let Some(digest) = &config.digest else {
        return Err(CliError::Input(
            "no `[digest]` in nudge.toml: add `schedule`, `timezone` and `to` to send one".into(),
        ));
    };
    let mut admin = connect(config)?;
    let preview = admin.digest(digest).map_err(api)?;
    if now {
        outln!("Subject: {}\n", preview.digest.subject);
        out!("{}", preview.digest.text);
        return Ok(Status::Ok);
    }
    outln!("to: {}", preview.to.join(", "));
    outln!("schedule: {} ({})", digest.schedule, digest.timezone);
    match &preview.next_due {
        Some(due) => outln!("next due: {due}"),
        None => outln!("next due: set when the daemon first runs with `[digest]`"),
    }
    outln!("(`nudge digest --now` prints the digest as it would go now)");
    Ok(Status::Ok)
}

/// Renders every template with a sample candidate (undefined variables
/// and syntax errors are errors), then every SMS template with the longest
/// realistic values (more than one segment is a warning). `configured`
/// says whether `config` was read from a file: its company and sender then
/// replace the sample's longest ones. Returns the number of errors.
fn check_template_files(dir: &Path, config: &crate::config::Config, configured: bool) -> usize {
    use crate::templates::{Templates, Vars};
    let (templates, mut errors) = match Templates::load_partial(dir) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    errors.extend(templates.check_all(&Vars::sample()));
    for e in &errors {
        eprintln!("error: {e}");
    }
    let mut longest = Vars::longest(&config.server.tracked_link());
    if configured {
        longest.company.clone_from(&config.company);
        longest.sender.clone_from(&config.sender);
    }
    let mut sources = Sources::default();
    let mut warnings = Vec::new();
    for long in templates.check_lengths(&longest) {
        let text = templates.source(&long.file).unwrap_or_default();
        let file = sources.add(dir.join(&long.file).display().to_string(), text.clone());
        warnings.push(long.diagnostic(file, &text));
    }
    eprint!("{}", render(&sources, &warnings, color()));
    errors.len()
}

/// The options of `nudge render`.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    pub campaign: String,
    pub template: String,
    pub channel: Option<String>,
    pub candidate: Vec<String>,
    pub variants: Vec<String>,
}

/// `nudge render CAMPAIGN TEMPLATE`: a message as a candidate would get it.
pub fn render_message(
    config: &crate::config::Config,
    opts: &RenderOptions,
) -> Result<Status, CliError> {
    use crate::engine::Channel;
    use crate::templates::Templates;
    let (campaigns, _, _) =
        crate::runtime::campaigns::Campaigns::load(&config.campaigns, Some(&config.templates))
            .map_err(|f| CliError::Input(crate::runtime::daemon::render_failure(&f)))?;
    let campaign = campaigns.get(&opts.campaign).ok_or_else(|| {
        let names: Vec<String> = campaigns.iter().map(|(n, _)| format!("`{n}`")).collect();
        CliError::Input(format!(
            "no campaign `{}` (loaded: {})",
            opts.campaign,
            names.join(", ")
        ))
    })?;
    let machine = &campaign.machine;
    let templates =
        Templates::load(&config.templates).map_err(|e| CliError::Input(e.to_string()))?;
    let mut pairs = Vec::new();
    for c in &opts.candidate {
        pairs.push(key_value(c, "--candidate", '=', "KEY=VALUE")?);
    }
    let candidate = Candidate::from_pairs(pairs, "preview");
    let mut forced = Vec::new();
    for v in &opts.variants {
        let (e, name) = key_value(v, "--variant", '=', "EXPERIMENT=VARIANT")?;
        forced.push((e.to_string(), name.trim().to_string()));
    }
    let variants = sim::variants_for(machine, &candidate, &forced)
        .map_err(|e| CliError::Input(e.to_string()))?;
    let variant_names: std::collections::BTreeMap<String, String> = machine
        .experiments
        .iter()
        .zip(&variants)
        .map(|(e, v)| (e.name.clone(), e.variants[*v].0.clone()))
        .collect();
    // `invite-{copy}` resolves with the candidate's variant.
    let mut name = opts.template.clone();
    for (e, v) in &variant_names {
        name = name.replace(&format!("{{{e}}}"), v);
    }
    let language = candidate.field("language");
    let channel = match &opts.channel {
        Some(c) => Channel::from_name(c).ok_or_else(|| {
            CliError::Input(format!(
                "`--channel {c}`: use email, sms, whatsapp or webhook"
            ))
        })?,
        None => machine
            .channels
            .iter()
            .copied()
            .chain(Channel::ALL)
            .find(|c| templates.resolve(&name, *c, language).is_some())
            .ok_or_else(|| {
                CliError::Input(format!(
                    "no template file for `{name}` in {}",
                    config.templates.display()
                ))
            })?,
    };
    let now = chrono::Utc::now();
    // The daemon's own composition, on a sample link as long as a real one
    // (so the length shown is the length sent) and a deadline counted from
    // now.
    let draft = crate::runtime::compose::Draft {
        machine,
        candidate: &candidate,
        zone: candidate.zone(&machine.zone),
        template: &name,
        channel,
        link: crate::templates::real_length_link(&config.server.tracked_link()),
        deadline: machine.deadline.map(|d| now + Duration::seconds(d.secs)),
        variants: &variant_names,
        at: now,
    };
    let file = templates
        .resolve(&name, channel, language)
        .unwrap_or_default()
        .to_string();
    let rendered = draft
        .compose(Some(&templates), &crate::runtime::client::settings(config))
        .map_err(CliError::Input)?;
    eprintln!(
        "{file} for {channel} (a sample link as long as a real one, and a deadline counted from now)"
    );
    if let Some(subject) = &rendered.subject {
        outln!("Subject: {subject}\n");
    }
    outln!("{}", rendered.body);
    if matches!(channel, Channel::Sms | Channel::Whatsapp) {
        let size = crate::channels::segments::measure(&rendered.body);
        let limit = size.encoding.single_segment();
        let fits = if size.units <= limit {
            "within"
        } else {
            "over"
        };
        eprintln!("\n{size} ({fits} the {limit} of one SMS segment)");
    }
    Ok(Status::Ok)
}

/// `nudge check --channels`: connects to every configured channel, sends
/// nothing, and reports what works. Returns the number that do not.
fn check_channels(config: &crate::config::Config) -> Result<usize, CliError> {
    let channels =
        crate::runtime::run::channels_from(config).map_err(|e| CliError::Input(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Input(format!("cannot start: {e}")))?;
    let mut failures = 0;
    for kind in crate::engine::Channel::ALL {
        let backend = channels.get(kind);
        match runtime.block_on(backend.check()) {
            Ok(what) => eprintln!("channel {kind} ({}): ok: {what}", backend.describe()),
            Err(why) => {
                failures += 1;
                eprintln!("error: channel {kind} ({}): {why}", backend.describe());
            }
        }
    }
    Ok(failures)
}

pub mod report;
