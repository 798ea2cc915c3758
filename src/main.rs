//! The `nudge` command: a thin clap front over the library. Exit status 0
//! on success, 1 when a command fails (a campaign, input or store error),
//! 2 when clap rejects the arguments before any command runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use nudge::cli;

/// mimalloc rather than the system allocator: the store (sled) allocates
/// and frees a node's worth of small buffers on every write, and glibc's
/// malloc spent about a third of the daemon's time on it
/// (`cargo bench --bench runtime`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "nudge",
    version,
    about = "Invite applicants to interviews and follow up until they finish"
)]
struct Args {
    /// The configuration file (default: ./nudge.toml if it exists, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
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
        /// Also connect to every configured channel (SMTP EHLO and login, the SMS
        /// provider's account) and report what works, sending nothing.
        #[arg(long)]
        channels: bool,
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
        /// `dot` for Graphviz, or `mermaid` for Markdown pages.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Write a starter configuration, a sample campaign and its templates into a new folder.
    Init {
        /// The folder to create.
        dir: PathBuf,
    },
    /// Run the daemon: fire timers, send messages, serve the admin API.
    Run {
        /// Log lines for people (`human`) or machines (`json`, one object per line).
        #[arg(long, value_enum, default_value_t = LogFormat::Human)]
        log_format: LogFormat,
        /// Demo mode: time runs this many times faster (3600 = an hour a second),
        /// so a week of follow-ups plays in minutes. Use a throwaway store.
        #[arg(long, value_name = "FACTOR", conflicts_with = "clock", value_parser = cli::speed_arg)]
        speed: Option<f64>,
        /// Run on an accelerated clock, START@REAL_MS*SPEED (for tests).
        #[arg(long, hide = true)]
        clock: Option<String>,
    },
    /// Enroll a candidate in a campaign and print their tracked interview link.
    Enroll {
        /// The campaign to enroll in, by the name after `campaign` in its file.
        #[arg(long)]
        campaign: String,
        /// The candidate's id in your ATS; the same id enrolled twice is one candidate.
        #[arg(long)]
        id: Option<String>,
        /// The candidate's full name (templates greet them by its first word).
        #[arg(long)]
        name: Option<String>,
        /// The candidate's email address, for the campaign's email sends.
        #[arg(long)]
        email: Option<String>,
        /// The candidate's mobile number, for SMS and WhatsApp (+15550100, or
        /// a national number with `phone_country_code` configured).
        #[arg(long)]
        phone: Option<String>,
        /// Any other field, KEY=VALUE (repeatable): timezone, language, role, source, ...
        #[arg(long = "field", value_name = "KEY=VALUE", value_parser = cli::key_value_arg)]
        field: Vec<String>,
        /// Enroll even when the campaign's `where` filter does not take the
        /// candidate (without it such an enrollment is refused).
        #[arg(long)]
        ignore_filter: bool,
        /// Print the answer as JSON (candidate, link, state, variants) instead of the link.
        #[arg(long)]
        json: bool,
    },
    /// Record an event for a candidate (clicked, started, completed, opted_out, ...).
    Event {
        /// Candidate id, external id, email, phone or link token.
        candidate: String,
        /// The event's name, as the campaign's `on` rules write it (clicked, completed, ...).
        event: String,
        /// When it happened (RFC 3339; default now).
        #[arg(long, value_parser = cli::instant_arg)]
        at: Option<String>,
        /// An event field, KEY=VALUE (repeatable).
        #[arg(long = "field", value_name = "KEY=VALUE", value_parser = cli::key_value_arg)]
        field: Vec<String>,
        /// Print the answer as JSON instead of lines for people.
        #[arg(long)]
        json: bool,
    },
    /// Candidates per state, sends due soon, held sends and failures.
    Status {
        /// Only this campaign (default: every campaign).
        campaign: Option<String>,
        /// Print the report as JSON instead of lines for people.
        #[arg(long)]
        json: bool,
    },
    /// A candidate's timeline, with the reason for every step.
    Show {
        /// Candidate id, external id, email, phone or link token.
        candidate: String,
        /// Print the candidate as JSON (times in RFC 3339) instead of lines for people.
        #[arg(long)]
        json: bool,
    },
    /// Pause a campaign: nothing of it fires or sends until resumed.
    Pause {
        /// The campaign to pause.
        campaign: String,
    },
    /// Resume a paused campaign; what fell due meanwhile runs now.
    Resume {
        /// The campaign to resume.
        campaign: String,
    },
    /// Ask the running daemon to reload its campaigns and templates.
    Reload,
    /// Check a store: every record decodes, its parts and its commit ledger agree (exit 1 when not).
    Verify {
        /// The store folder (default: the configured one).
        #[arg(long, value_name = "DIR")]
        store: Option<PathBuf>,
        /// Take a store that lost commits as it is (what it knows was delivered is not sent again).
        #[arg(long)]
        accept: bool,
    },
    /// Write a consistent copy of the store into DIR (new or empty), through the daemon if it runs.
    Backup {
        /// The folder for the copy.
        dir: PathBuf,
    },
    /// Write the store's history as the event log of REPORT.md (JSON Lines, in time order).
    Export {
        /// Only this campaign.
        #[arg(long, value_name = "NAME")]
        campaign: Option<String>,
        /// Only enrollments enrolled at or after T (RFC 3339, or a date: 2026-10-27).
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// Only enrollments enrolled before T.
        #[arg(long, value_name = "T")]
        until: Option<String>,
        /// Write to FILE instead of standard output (whole or not at all).
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Put a backup back in place of the store (stop the daemon first).
    Restore {
        /// The backup folder.
        dir: PathBuf,
    },
    /// Print a message as a candidate would get it (and its SMS length).
    Render {
        /// The campaign whose message to render.
        campaign: String,
        /// The template name as the campaign's `send` writes it (`invite-{copy}` or `reminder`).
        template: String,
        /// The channel (default: the first of the campaign's channels with a template).
        #[arg(long)]
        channel: Option<String>,
        /// A candidate field, KEY=VALUE (repeatable).
        #[arg(long = "candidate", value_name = "KEY=VALUE", value_parser = cli::key_value_arg)]
        candidate: Vec<String>,
        /// Force a variant, EXPERIMENT=VARIANT (repeatable).
        #[arg(long = "variant", value_name = "EXPERIMENT=VARIANT", value_parser = cli::variant_arg)]
        variant: Vec<String>,
    },
    /// The suppression list: email addresses and phone numbers nudge never sends to.
    Suppression {
        #[command(subcommand)]
        command: SuppressionCommand,
    },
    /// Rewrite campaign files in the canonical layout, comments kept.
    Fmt {
        /// Report files that are not formatted, with a diff, instead of rewriting them (exit 1).
        #[arg(long)]
        check: bool,
        /// Campaign files or folders (default: campaigns/).
        paths: Vec<PathBuf>,
    },
    /// Import applicants from CSV files, ZIP archives of CSVs and PDFs, and PDF résumés.
    Import {
        /// The files (CSV with a header row, ZIP, PDF).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Enroll in this campaign (through its `where` filter) instead of every
        /// campaign whose `enroll on applied` takes them.
        #[arg(long)]
        campaign: Option<String>,
        /// With --campaign: enroll even where its `where` filter does not hold.
        #[arg(long, requires = "campaign")]
        ignore_filter: bool,
        /// Create the candidates without enrolling them, and list who would be
        /// invited (then `nudge invite`).
        #[arg(long)]
        review: bool,
        /// Read a column as a field, COLUMN=FIELD (repeatable; FIELD `-` skips the column).
        #[arg(long = "map", value_name = "COLUMN=FIELD", value_parser = cli::import::map_arg)]
        map: Vec<String>,
        /// Where to write the rejected rows (default: NAME.rejects.csv beside the first file).
        #[arg(long, value_name = "FILE")]
        rejects: Option<PathBuf>,
    },
    /// Invite candidates an `import --review` left waiting.
    #[command(group(clap::ArgGroup::new("who").required(true).args(["all_reviewed", "candidates"])))]
    Invite {
        /// Enroll in this campaign (default: every campaign whose `enroll on applied` takes them).
        #[arg(long)]
        campaign: Option<String>,
        /// Every candidate waiting for review.
        #[arg(
            long,
            conflicts_with = "candidates",
            required_unless_present = "candidates"
        )]
        all_reviewed: bool,
        /// Candidates by id, external id, email or phone.
        candidates: Vec<String>,
    },
    /// The weekly digest (`[digest]` in nudge.toml): who gets it and when the next is due.
    Digest {
        /// Print the digest as it would go now, the text recruiters get.
        #[arg(long)]
        now: bool,
    },
    /// The funnel, time to completion, experiments with verdicts and red flags,
    /// over the store or an exported event log.
    Report(cli::report::ReportArgs),
    /// Print the `[dashboard.users]` line that lets NAME log in to the
    /// dashboard, from a password read on standard input (the first line).
    DashboardUser {
        /// The name to log in with.
        name: String,
    },
}

#[derive(Subcommand)]
enum SuppressionCommand {
    /// Every entry: the contact, its kind, the reason, since when, the candidate it came from.
    List {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put an email address or phone number on the list: nothing is sent to it again.
    Add {
        /// An email address, or a phone number (+15550100, or national with `phone_country_code`).
        contact: String,
        /// Why: manual, opted_out, bounced or complaint.
        #[arg(long, default_value = "manual", value_parser = cli::suppression::reason_arg)]
        reason: nudge::store::SuppressionReason,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Take a contact off the list: sends to it go out again.
    Remove {
        /// The email address or phone number.
        contact: String,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
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
    #[arg(long, value_parser = cli::instant_arg)]
    start: String,
    /// A candidate field, KEY=VALUE (repeatable): name, email, phone, timezone, role, ...
    #[arg(long = "candidate", value_name = "KEY=VALUE", value_parser = cli::key_value_arg)]
    candidate: Vec<String>,
    /// An event, NAME@OFFSET (repeatable); OFFSET is a duration after --start (30h, 2d) or an RFC 3339 instant.
    #[arg(long = "event", value_name = "NAME@OFFSET", value_parser = cli::event_arg)]
    event: Vec<String>,
    /// Force a variant, EXPERIMENT=VARIANT (repeatable), instead of the stable assignment.
    #[arg(long = "variant", value_name = "EXPERIMENT=VARIANT", value_parser = cli::variant_arg)]
    variant: Vec<String>,
    /// An `until decided` experiment decided at OFFSET, EXPERIMENT=VARIANT@OFFSET (repeatable): a candidate enrolled at or after it gets VARIANT (--variant still wins).
    #[arg(long = "decided", value_name = "EXPERIMENT=VARIANT@OFFSET", value_parser = cli::decided_arg)]
    decided: Vec<String>,
    /// Stop after this OFFSET (default 30d).
    #[arg(long, value_name = "OFFSET", value_parser = cli::offset_arg)]
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
    /// Diagnostics like rustc's, for people.
    Human,
    /// One JSON object per diagnostic, one a line.
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// One line of text per event, for people.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    /// Graphviz DOT (`nudge graph FILE | dot -Tsvg`).
    Dot,
    /// A Mermaid state diagram.
    Mermaid,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // 4 KiB pages for every command: with transparent huge pages the
    // kernel zeroes 2 MiB at each first touch, which was most of opening a
    // large store (`nudge status`), a tenth of an import and most of a
    // report (see `nudge::runtime::memory`). `nudge run` says so if the
    // kernel refuses.
    let _ = nudge::runtime::memory::small_pages();
    let config_path = args.config.clone();
    let config = || cli::load_config(config_path.as_deref());
    let result = match args.command {
        Command::Check {
            paths,
            format,
            templates,
            channels,
        } => cli::check(
            config_path.as_deref(),
            &paths,
            matches!(format, Format::Json),
            templates.as_deref(),
            channels,
        ),
        Command::Simulate(a) => cli::simulate(&cli::SimulateOptions {
            file: a.file,
            campaign: a.campaign,
            start: a.start,
            candidate: a.candidate,
            events: a.event,
            variants: a.variant,
            decided: a.decided,
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
        Command::Init { dir } => cli::init(&dir),
        Command::Run {
            log_format,
            speed,
            clock,
        } => config().and_then(|c| {
            cli::run(
                c,
                speed,
                clock.as_deref(),
                matches!(log_format, LogFormat::Json),
            )
        }),
        Command::Enroll {
            campaign,
            id,
            name,
            email,
            phone,
            field,
            ignore_filter,
            json,
        } => config().and_then(|c| {
            cli::enroll(
                &c,
                &cli::EnrollOptions {
                    campaign,
                    id,
                    name,
                    email,
                    phone,
                    fields: field,
                    ignore_filter,
                    json,
                },
            )
        }),
        Command::Event {
            candidate,
            event,
            at,
            field,
            json,
        } => config().and_then(|c| cli::event(&c, &candidate, &event, at.as_deref(), &field, json)),
        Command::Status { campaign, json } => {
            config().and_then(|c| cli::status(&c, campaign.as_deref(), json))
        }
        Command::Show { candidate, json } => config().and_then(|c| cli::show(&c, &candidate, json)),
        Command::Pause { campaign } => config().and_then(|c| cli::set_paused(&c, &campaign, true)),
        Command::Resume { campaign } => {
            config().and_then(|c| cli::set_paused(&c, &campaign, false))
        }
        Command::Reload => config().and_then(|c| cli::reload(&c)),
        Command::Suppression { command } => config().and_then(|c| match command {
            SuppressionCommand::List { json } => cli::suppression::list(&c, json),
            SuppressionCommand::Add {
                contact,
                reason,
                json,
            } => cli::suppression::add(&c, &contact, reason, json),
            SuppressionCommand::Remove { contact, json } => {
                cli::suppression::remove(&c, &contact, json)
            }
        }),
        Command::Verify { store, accept } => {
            config().and_then(|c| cli::verify(&c, store.as_deref(), accept))
        }
        Command::Backup { dir } => config().and_then(|c| cli::backup(&c, &dir)),
        Command::Export {
            campaign,
            since,
            until,
            output,
        } => config().and_then(|c| {
            cli::export::export(
                &c,
                campaign.as_deref(),
                since.as_deref(),
                until.as_deref(),
                output.as_deref(),
            )
        }),
        Command::Restore { dir } => config().and_then(|c| cli::restore(&c, &dir)),
        Command::Render {
            campaign,
            template,
            channel,
            candidate,
            variant,
        } => config().and_then(|c| {
            cli::render_message(
                &c,
                &cli::RenderOptions {
                    campaign,
                    template,
                    channel,
                    candidate,
                    variants: variant,
                },
            )
        }),
        Command::Import {
            files,
            campaign,
            ignore_filter,
            review,
            map,
            rejects,
        } => config().and_then(|c| {
            cli::import(
                &c,
                &cli::ImportOptions {
                    files,
                    campaign,
                    review,
                    maps: map,
                    rejects,
                    ignore_filter,
                },
            )
        }),
        Command::Invite {
            campaign,
            all_reviewed,
            candidates,
        } => config().and_then(|c| cli::invite(&c, campaign.as_deref(), all_reviewed, &candidates)),
        Command::Digest { now } => config().and_then(|c| cli::digest(&c, now)),
        Command::Report(a) => config().and_then(|c| cli::report::report(&c, &a)),
        Command::DashboardUser { name } => cli::dashboard::user(&name),
    };
    match result {
        Ok(status) => status.into(),
        Err(err) => {
            if !matches!(err, cli::CliError::Logged) {
                eprintln!("error: {err}");
            }
            err.exit_code()
        }
    }
}
