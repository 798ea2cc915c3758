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
use crate::dsl::compile::compile;
use crate::dsl::load::{load, Loaded};
use crate::dsl::report::{render, render_report, render_report_json};
use crate::engine::{Candidate, Machine};
use crate::sim::{self, batch, output, parse_offset, Scenario};

/// How a command failed.
#[derive(Debug)]
pub enum CliError {
    /// Bad usage: exit status 2.
    Usage(String),
    /// A campaign or input error: exit status 1.
    Input(String),
    /// Diagnostics were already printed: exit status 1.
    Reported,
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            CliError::Input(_) | CliError::Reported => ExitCode::from(1),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Input(m) => f.write_str(m),
            CliError::Reported => f.write_str("aborting because of the errors above"),
        }
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

/// `nudge check`.
pub fn check(paths: &[PathBuf], json: bool, templates: Option<&Path>) -> Result<Status, CliError> {
    let paths = default_paths(paths);
    let loaded = load(&paths).map_err(|e| CliError::Input(e.to_string()))?;
    let templates = templates
        .map(Path::to_path_buf)
        .or_else(|| default_templates(&paths));
    let report = check_campaigns(&loaded, templates.as_deref());
    if json {
        print!("{}", render_report_json(&loaded.sources, &report));
    } else {
        eprint!("{}", render_report(&loaded.sources, &report, color()));
    }
    Ok(if report.has_errors() {
        Status::Failed
    } else {
        Status::Ok
    })
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
    let chosen = pick_campaign(&loaded, file, campaign)?;
    let machine = compile(chosen).map_err(|e| CliError::Input(e.to_string()))?;
    Ok((machine, loaded.sources))
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
                CliError::Usage(format!(
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
            _ => Err(CliError::Usage(format!(
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
        _ => Err(CliError::Usage(format!(
            "`{flag} {text}`: expected {shape}"
        ))),
    }
}

/// `nudge simulate`.
pub fn simulate(opts: &SimulateOptions) -> Result<Status, CliError> {
    let start = DateTime::parse_from_rfc3339(&opts.start)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            CliError::Usage(format!(
                "`--start {}`: expected an RFC 3339 instant such as `2026-11-26T20:30:00-06:00`",
                opts.start
            ))
        })?;
    let until = match &opts.until {
        Some(u) => {
            parse_offset(u, start).map_err(|e| CliError::Usage(format!("`--until`: {e}")))?
        }
        None => start + Duration::days(30),
    };
    let mut variants = Vec::new();
    for v in &opts.variants {
        let (e, name) = key_value(v, "--variant", '=', "EXPERIMENT=VARIANT")?;
        variants.push((e.to_string(), name.trim().to_string()));
    }
    let (machine, _) = load_machine(&opts.file, opts.campaign.as_deref())?;

    if let Some(list) = &opts.candidates {
        let rows = batch::read_list(list).map_err(|e| CliError::Input(e.to_string()))?;
        let threads = opts
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        let horizon = until - start;
        let outcomes = batch::simulate_list(&machine, &rows, start, horizon, threads)
            .map_err(|e| CliError::Usage(e.to_string()))?;
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
            .map_err(|m| CliError::Usage(format!("`--event {e}`: {m}")))?;
        events.push((name.to_string(), at));
    }
    let scenario = Scenario {
        start,
        candidate,
        events,
        variants,
        until,
    };
    let timeline = sim::run(&machine, &scenario).map_err(|e| CliError::Usage(e.to_string()))?;
    let text = if opts.json {
        output::json(&machine, &timeline)
    } else {
        output::human(&machine, &timeline, &scenario.candidate.id)
    };
    print!("{text}");
    Ok(Status::Ok)
}

/// `nudge graph`.
pub fn graph(file: &Path, campaign: Option<&str>, mermaid: bool) -> Result<Status, CliError> {
    let loaded = load(&[file.to_path_buf()]).map_err(|e| CliError::Input(e.to_string()))?;
    if loaded.diagnostics.iter().any(Diagnostic::is_error) {
        eprint!("{}", render(&loaded.sources, &loaded.diagnostics, color()));
        return Err(CliError::Reported);
    }
    let chosen = pick_campaign(&loaded, file, campaign)?;
    let text = if mermaid {
        crate::graph::mermaid(chosen)
    } else {
        crate::graph::dot(chosen)
    };
    print!("{text}");
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
                println!(
                    "{}:{}: not formatted (`nudge fmt` rewrites it)\n{}",
                    source.name, change.line, change.diff
                );
                status = Status::Failed;
            }
        } else {
            let formatted = crate::dsl::fmt::format(file, &source.text);
            if formatted != source.text {
                std::fs::write(&source.name, formatted)
                    .map_err(|e| CliError::Input(format!("cannot write {}: {e}", source.name)))?;
                println!("formatted {}", source.name);
            }
        }
    }
    Ok(status)
}
