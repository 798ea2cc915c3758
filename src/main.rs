//! The `nudge` command: a thin clap front over the library. Exit status 0
//! on success, 1 on a campaign (or input) error, 2 on bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use nudge::cli;

#[derive(Parser)]
#[command(
    name = "nudge",
    version,
    about = "Invite applicants to interviews and follow up until they finish"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check campaign files and their templates; report every error.
    Check {
        /// Campaign files or folders (default: campaigns/).
        paths: Vec<PathBuf>,
        /// `human` diagnostics like rustc's, or `json` (one object per line).
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// The templates folder (default: templates/ beside the campaigns folder).
        #[arg(long)]
        templates: Option<PathBuf>,
    },
    /// Run one candidate (or a whole list) through a campaign on a virtual clock.
    Simulate(SimulateArgs),
    /// Print a campaign's state machine as Graphviz DOT or Mermaid.
    Graph {
        /// The campaign file.
        file: PathBuf,
        /// Which campaign of the file (needed when it holds several).
        #[arg(long)]
        campaign: Option<String>,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Rewrite campaign files in the canonical layout, comments kept.
    Fmt {
        /// Report files that are not formatted instead of rewriting them (exit 1).
        #[arg(long)]
        check: bool,
        /// Campaign files or folders (default: campaigns/).
        paths: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct SimulateArgs {
    /// The campaign file.
    file: PathBuf,
    /// Which campaign of the file (needed when it holds several).
    #[arg(long)]
    campaign: Option<String>,
    /// When the `applied` event arrives (RFC 3339, e.g. 2026-11-26T20:30:00-06:00).
    #[arg(long)]
    start: String,
    /// A candidate field, KEY=VALUE (repeatable): name, email, phone, timezone, role, ...
    #[arg(long = "candidate", value_name = "KEY=VALUE")]
    candidate: Vec<String>,
    /// An event, NAME@OFFSET (repeatable); OFFSET is a duration after --start (30h, 2d) or an RFC 3339 instant.
    #[arg(long = "event", value_name = "NAME@OFFSET")]
    event: Vec<String>,
    /// Force a variant, EXPERIMENT=VARIANT (repeatable), instead of the stable assignment.
    #[arg(long = "variant", value_name = "EXPERIMENT=VARIANT")]
    variant: Vec<String>,
    /// Stop after this OFFSET (default 30d).
    #[arg(long, value_name = "OFFSET")]
    until: Option<String>,
    /// Run every candidate of a CSV list (header row = field names) and print a summary.
    #[arg(long, value_name = "LIST.csv", conflicts_with_all = ["candidate", "event"])]
    candidates: Option<PathBuf>,
    /// Worker threads for --candidates (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Check {
            paths,
            format,
            templates,
        } => cli::check(&paths, matches!(format, Format::Json), templates.as_deref()),
        Command::Simulate(a) => cli::simulate(&cli::SimulateOptions {
            file: a.file,
            campaign: a.campaign,
            start: a.start,
            candidate: a.candidate,
            events: a.event,
            variants: a.variant,
            until: a.until,
            candidates: a.candidates,
            threads: a.threads,
            json: a.json,
        }),
        Command::Graph {
            file,
            campaign,
            format,
        } => cli::graph(
            &file,
            campaign.as_deref(),
            matches!(format, GraphFormat::Mermaid),
        ),
        Command::Fmt { check, paths } => cli::fmt(&paths, check),
    };
    match result {
        Ok(status) => status.into(),
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    }
}
