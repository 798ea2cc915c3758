//! `nudge report`: the funnel, time to completion, groups, experiments and
//! red flags (REPORT.md), over the store (directly or through the running
//! daemon) or over an exported event log (`--events`), in one of four
//! formats. Every format renders the same [`Report`].

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use super::{connect, emit, CliError, Status};
use crate::config::Config;
use crate::report::charts::Charts;
use crate::report::compute::{self, By, Options};
use crate::report::fold::Fold;
use crate::report::instant::parse as parse_time;
use crate::report::line::Lines;
use crate::report::model::Report;

/// `nudge report`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Only this campaign (default: every campaign, in name order).
    #[arg(long, value_name = "NAME")]
    pub campaign: Option<String>,
    /// Only enrollments enrolled at or after T (RFC 3339, or a date such as
    /// 2026-10-27 for its midnight UTC); their events count whenever they happened.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub since: Option<i64>,
    /// Only enrollments enrolled before T (RFC 3339, or a date for its midnight UTC).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub until: Option<i64>,
    /// Split each campaign's figures into groups (repeatable).
    #[arg(long, value_enum, value_name = "GROUPING")]
    pub by: Vec<By>,
    /// The sample size the always-valid interval is tuned for (default 1000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub plan: Option<u64>,
    /// Read this exported event log (JSON Lines, `nudge export`) instead of the store.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// `table` for people, `json` (REPORT.md §8), `csv`, or `html` (one self-contained page).
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// A table for people, in a terminal.
    Table,
    /// One JSON object (REPORT.md §8).
    Json,
    /// Comma-separated rows, one a figure, for spreadsheets.
    Csv,
    /// One self-contained HTML page with charts.
    Html,
}

/// `nudge report`.
pub fn report(config: &Config, args: &ReportArgs) -> Result<Status, CliError> {
    if let (Some(since), Some(until)) = (args.since, args.until) {
        if since >= until {
            return Err(CliError::Input(
                "`--since` must be before `--until`: no enrollment can fall between them".into(),
            ));
        }
    }
    let options = Options {
        campaign: args.campaign.clone(),
        since: args.since,
        until: args.until,
        by: args.by.clone(),
        plan: args.plan.unwrap_or(crate::report::stats::DEFAULT_PLAN),
        thresholds: config.report.clone(),
    };
    let html = args.format == ReportFormat::Html;
    let (report, charts) = match &args.events {
        Some(path) => from_log(path, &options, html)?,
        None => from_store(config, &options, html)?,
    };
    if let Some(name) = &options.campaign {
        if report.campaigns.is_empty() {
            let place = match &args.events {
                Some(path) => format!("in {}", path.display()),
                None => "in the store or the campaign files".into(),
            };
            return Err(CliError::Input(format!("no campaign `{name}` {place}")));
        }
    }
    let text = render(&report, args.format, charts.as_ref())?;
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| CliError::Input(format!("cannot write {}: {e}", path.display())))?,
        None => emit(format_args!("{text}"))?,
    }
    Ok(Status::Ok)
}

/// The report in a format; the HTML page also draws `charts` (none drawn
/// without them).
pub fn render(
    report: &Report,
    format: ReportFormat,
    charts: Option<&Charts>,
) -> Result<String, CliError> {
    Ok(match format {
        ReportFormat::Table => crate::report::table::render(report),
        ReportFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(report).map_err(|e| CliError::Input(e.to_string()))?;
            text.push('\n');
            text
        }
        ReportFormat::Csv => crate::report::csv::render(report),
        ReportFormat::Html => match charts {
            Some(charts) => crate::report::html::render(report, charts),
            None => crate::report::html::render(
                report,
                &Charts {
                    campaigns: Vec::new(),
                },
            ),
        },
    })
}

/// The report over an event log, and the HTML report's charts when
/// `charts`; the first bad line fails it whole.
fn from_log(
    path: &std::path::Path,
    options: &Options,
    charts: bool,
) -> Result<(Report, Option<Charts>), CliError> {
    let file = File::open(path)
        .map_err(|e| CliError::Input(format!("cannot open {}: {e}", path.display())))?;
    let mut fold = Fold::new();
    for line in Lines::new(BufReader::new(file)) {
        let line = line.map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
        fold.push(&line);
    }
    let (headers, summaries) = fold.finish();
    let made = charts.then(|| crate::report::charts::charts(&headers, &summaries, options));
    Ok((compute::report(&headers, &summaries, options), made))
}

/// The report over the store, opened here or through the running daemon.
fn from_store(
    config: &Config,
    options: &Options,
    charts: bool,
) -> Result<(Report, Option<Charts>), CliError> {
    let mut admin = connect(config)?;
    let report = admin.report(options).map_err(super::api)?;
    let made = match charts {
        true => Some(admin.charts(options).map_err(super::api)?),
        false => None,
    };
    Ok((report, made))
}
