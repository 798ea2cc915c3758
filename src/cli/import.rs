//! `nudge import FILE...` and `nudge invite`: bulk applications from CSV
//! files, ZIP archives and PDF résumés, through the running daemon or the
//! store itself.
//!
//! Rows go to the runtime as applications in chunks of [`CHUNK`], each
//! chunk one request (and, without a daemon, one durable commit). Every
//! row carries the idempotency key `import:DIGEST:LINE` (the input's
//! digest, see `intake::import`): importing a file again, or again after
//! a crash or Ctrl-C stopped it part way, adds nobody twice and finishes
//! what was left. Ctrl-C stops after the chunk in flight, and says so.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{api, connect, emit, note_queued, CliError, Status};
use crate::config::Config;
use crate::intake::import::{self, Column, Kind, Reason, Reject, Row};
use crate::intake::review;
use crate::runtime::api::{ApplyRequest, ApplyResponse};
use crate::runtime::client::{Admin, Answers};
use crate::runtime::refusal::Refusal;

/// Rows per request to the runtime.
pub const CHUNK: usize = 1000;

/// How many of those `--review` would invite are listed (all are counted).
const LISTED: usize = 200;

/// What `nudge import` was asked.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub files: Vec<PathBuf>,
    pub campaign: Option<String>,
    pub review: bool,
    /// `COLUMN=FIELD` each.
    pub maps: Vec<String>,
    pub rejects: Option<PathBuf>,
    /// Enroll in `campaign` even where its `where` filter does not hold.
    pub ignore_filter: bool,
}

/// The counts the import ends with.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Summary {
    imported: u64,
    updated: u64,
    unchanged: u64,
    enrolled: u64,
    rejected: u64,
    flagged: u64,
}

/// `--map COLUMN=FIELD`, checked by clap.
pub fn map_arg(text: &str) -> Result<String, String> {
    import::columns::parse_map(text).map(|_| text.to_string())
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C from now on sets [`INTERRUPTED`] instead of ending the process,
/// so the chunk in flight is finished and counted.
fn catch_interrupt() {
    let handler = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
    }
}

/// One row on its way (its request goes in the chunk's list beside), with
/// where it came from and what the summary needs of it.
struct Pending {
    file: std::rc::Rc<str>,
    line: u64,
    flags: Vec<String>,
    /// Who it is, for the first [`LISTED`] rows `--review` lists.
    who: Option<String>,
}

struct Importer<'a> {
    admin: &'a mut Admin,
    options: &'a ImportOptions,
    summary: Summary,
    rejects: Vec<Reject>,
    flagged: Vec<(String, u64, String, Vec<String>)>,
    /// The first [`LISTED`] of those `--review` would invite, and how
    /// many there are.
    reviewed: Vec<(String, String)>,
    review_count: u64,
    pending: Vec<Pending>,
    requests: Vec<ApplyRequest>,
    /// The chunks handed to the runtime and not yet answered (the store
    /// writes one while the next is read and run), oldest first.
    unanswered: std::collections::VecDeque<Vec<Pending>>,
}

impl Importer<'_> {
    fn reject(&mut self, file: &str, line: u64, reason: Reason) {
        self.summary.rejected += 1;
        self.rejects.push(Reject {
            file: file.to_string(),
            line,
            reason,
        });
    }

    fn push(&mut self, file: &std::rc::Rc<str>, digest: &str, row: Row) -> Result<(), CliError> {
        let Row {
            line,
            external_id,
            mut fields,
            flags,
        } = row;
        // Until the list is full (rows already imported take no place).
        let who = (self.options.review && self.reviewed.len() < LISTED).then(|| who(&fields));
        if self.options.review {
            fields.insert(review::FIELD.into(), review::PENDING.into());
        }
        self.requests.push(ApplyRequest {
            external_id,
            fields,
            campaign: self.options.campaign.clone(),
            ignore_filter: self.options.ignore_filter,
            enroll: !self.options.review,
            at: None,
            id: Some(format!("import:{digest}:{line}")),
        });
        self.pending.push(Pending {
            file: file.clone(),
            line,
            flags,
            who,
        });
        if self.pending.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the rows gathered to the runtime, and counts the answers of
    /// every chunk that is durable now.
    fn flush(&mut self) -> Result<(), CliError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.unanswered.push_back(std::mem::take(&mut self.pending));
        let requests = std::mem::take(&mut self.requests);
        for answers in self.admin.apply_behind(requests).map_err(api)? {
            self.answered(answers)?;
        }
        Ok(())
    }

    /// [`Importer::flush`], then waits until every chunk is answered.
    fn finish(&mut self) -> Result<(), CliError> {
        self.flush()?;
        if let Some(answers) = self.admin.land_applications().map_err(api)? {
            self.answered(answers)?;
        }
        Ok(())
    }

    /// Counts the answers to the oldest chunk not yet answered.
    fn answered(&mut self, answers: Answers) -> Result<(), CliError> {
        let chunk = self.unanswered.pop_front().unwrap_or_default();
        if chunk.len() != answers.len() {
            return Err(api(Refusal::Internal(format!(
                "{} answers to a chunk of {} rows",
                answers.len(),
                chunk.len()
            ))));
        }
        for (pending, answer) in chunk.into_iter().zip(answers) {
            match answer {
                Ok(answer) => self.count(pending, &answer),
                Err(refusal) if fatal(&refusal) => return Err(api(refusal)),
                Err(refusal) => self.reject(
                    &pending.file,
                    pending.line,
                    Reason::Refused(refusal.to_string()),
                ),
            }
        }
        Ok(())
    }

    fn count(&mut self, pending: Pending, answer: &ApplyResponse) {
        let s = &mut self.summary;
        if answer.repeated {
            s.unchanged += 1;
            return;
        }
        if answer.created {
            s.imported += 1;
        } else {
            s.updated += 1;
        }
        s.enrolled += answer.enrolled.len() as u64;
        if !pending.flags.is_empty() {
            s.flagged += 1;
            self.flagged.push((
                pending.file.to_string(),
                pending.line,
                answer.candidate.clone(),
                pending.flags,
            ));
        }
        if self.options.review {
            self.review_count += 1;
            if let Some(who) = pending.who.filter(|_| self.reviewed.len() < LISTED) {
                self.reviewed.push((answer.candidate.clone(), who));
            }
        }
    }
}

/// A refusal that stops the whole import rather than one row: the store
/// or the daemon cannot take anything now.
fn fatal(refusal: &Refusal) -> bool {
    matches!(
        refusal,
        Refusal::UnknownCampaign { .. }
            | Refusal::StoreStranded(_)
            | Refusal::NotRecorded(_)
            | Refusal::StoreTrouble(_)
            | Refusal::ShuttingDown
            | Refusal::Internal(_)
            | Refusal::Unauthorized
            | Refusal::Daemon {
                status: 401 | 404 | 500..,
                ..
            }
    )
}

/// "Ana Ruiz <ana@example.com, +13125550100>", for lists.
fn who(fields: &BTreeMap<String, String>) -> String {
    let contacts: Vec<&str> = ["email", "phone"]
        .iter()
        .filter_map(|k| fields.get(*k).map(String::as_str))
        .collect();
    let name = fields
        .get("name")
        .map(String::as_str)
        .unwrap_or("(no name)");
    format!("{name} <{}>", contacts.join(", "))
}

/// The progress bar over `len` units (bytes of a CSV, files of an
/// archive), on stderr and only on a terminal.
fn bar(len: u64, name: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() || len < 1 << 20 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(name.to_string());
    bar
}

/// Where the rejects go: `--rejects`, else `NAME.rejects.csv` beside the
/// first input.
fn rejects_path(options: &ImportOptions) -> PathBuf {
    if let Some(p) = &options.rejects {
        return p.clone();
    }
    let first = &options.files[0];
    let stem = first
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "import".into());
    first.with_file_name(format!("{stem}.rejects.csv"))
}

/// `nudge import`.
pub fn import(config: &Config, options: &ImportOptions) -> Result<Status, CliError> {
    let mut maps: BTreeMap<String, Column> = BTreeMap::new();
    for m in &options.maps {
        let (column, target) = import::columns::parse_map(m).map_err(CliError::Input)?;
        maps.insert(column, target);
    }
    let country = config.phone_country_code.clone().unwrap_or_default();
    let mut admin = crate::runtime::client::Admin::connect_with_cache(
        config,
        crate::runtime::client::IMPORT_CACHE,
    )
    .map_err(|e| CliError::Input(e.to_string()))?;
    catch_interrupt();
    let mut importer = Importer {
        admin: &mut admin,
        options,
        summary: Summary::default(),
        rejects: Vec::new(),
        flagged: Vec::new(),
        reviewed: Vec::new(),
        review_count: 0,
        pending: Vec::new(),
        requests: Vec::new(),
        unanswered: Default::default(),
    };
    let mut skipped = Vec::new();
    // Every input's name, in the order they were read.
    let mut all_inputs: Vec<std::rc::Rc<str>> = Vec::new();
    'files: for path in &options.files {
        let inputs = match import::open(path, &mut skipped) {
            Ok(inputs) => inputs,
            Err(e) => {
                all_inputs.push(e.file.as_str().into());
                importer.reject(&e.file, 0, Reason::Unreadable(e.why));
                continue;
            }
        };
        for input in &inputs {
            let file: std::rc::Rc<str> = input.name.as_str().into();
            all_inputs.push(file.clone());
            let survey = match input.survey() {
                Ok(survey) => survey,
                Err(e) => {
                    importer.reject(
                        &input.name,
                        0,
                        Reason::Unreadable(format!("cannot read it: {e}")),
                    );
                    continue;
                }
            };
            let digest = survey.digest;
            // Two contacts a row at most: room for a CSV's all at once,
            // here and in the store's map of identities (a table that
            // grows holds its old and new slots at once). A PDF is one row.
            let rows = match input.kind {
                Kind::Csv => survey.lines,
                Kind::Pdf => 1,
            };
            let contacts = usize::try_from(rows.saturating_mul(2)).unwrap_or(usize::MAX);
            let mut checker = import::Checker::new(&country, contacts);
            importer.admin.expect_identities(contacts).map_err(api)?;
            match input.kind {
                Kind::Pdf => match input
                    .bytes()
                    .map_err(|e| Reason::Unreadable(format!("cannot read it: {e}")))
                    .and_then(|bytes| import::pdf_row(&bytes, &country))
                {
                    Ok(row) => match checker.check(&row) {
                        Ok(()) => importer.push(&file, &digest, row)?,
                        Err(reason) => importer.reject(&input.name, row.line, reason),
                    },
                    Err(reason) => importer.reject(&input.name, 1, reason),
                },
                Kind::Csv => {
                    let read = input.reader().map_err(|e| format!("cannot read it: {e}"));
                    let mut rows = match read.and_then(|r| import::CsvRows::new(r, &maps)) {
                        Ok(rows) => rows,
                        Err(why) => {
                            importer.reject(&input.name, 1, Reason::Unreadable(why));
                            continue;
                        }
                    };
                    let progress = bar(input.size(), &input.name);
                    let mut n = 0usize;
                    while let Some(result) = rows.next() {
                        n += 1;
                        match result {
                            Ok(row) => match checker.check(&row) {
                                Ok(()) => importer.push(&file, &digest, row)?,
                                Err(reason) => importer.reject(&input.name, row.line, reason),
                            },
                            Err((line, reason)) => importer.reject(&input.name, line, reason),
                        }
                        if n.is_multiple_of(CHUNK) && INTERRUPTED.load(Ordering::SeqCst) {
                            importer.finish()?;
                            progress.abandon();
                            eprintln!(
                                "interrupted in {}: run the same command again to finish (rows already imported are recognised and not added twice)",
                                input.name
                            );
                            break 'files;
                        }
                        if n.is_multiple_of(4096) {
                            progress.set_position(rows.position());
                        }
                    }
                    progress.finish_and_clear();
                }
            }
            importer.flush()?;
        }
    }
    importer.finish()?;
    let Importer {
        summary,
        mut rejects,
        flagged,
        reviewed,
        review_count,
        ..
    } = importer;
    for file in &skipped {
        eprintln!("skipped {file}: neither CSV nor PDF");
    }
    // The runtime's refusals of a chunk are counted once it is durable,
    // after the rows read behind it were checked: the rejects in the
    // order of the inputs and their lines.
    rejects.sort_by_key(|r| (all_inputs.iter().position(|f| **f == *r.file), r.line));
    for r in rejects.iter().take(20) {
        eprintln!("rejected {}:{}: {}", r.file, r.line, r.reason);
    }
    if rejects.len() > 20 {
        eprintln!("... and {} more rejects", rejects.len() - 20);
    }
    for (file, line, candidate, flags) in &flagged {
        eprintln!("flagged {file}:{line} ({candidate}): {}", flags.join("; "));
    }
    if !rejects.is_empty() {
        let path = rejects_path(options);
        import::write_rejects(&path, &rejects).map_err(|e| {
            CliError::Input(format!(
                "cannot write the rejects to {}: {e}",
                path.display()
            ))
        })?;
        eprintln!("rejects written to {}", path.display());
    }
    if options.review {
        let to = match &options.campaign {
            Some(c) => format!("campaign `{c}`"),
            None => "every campaign whose `enroll on applied` takes them".to_string(),
        };
        if reviewed.is_empty() {
            outln!("nobody new to review");
        } else {
            outln!("would invite to {to} ({review_count}):");
            for (candidate, person) in &reviewed {
                outln!("  {candidate}  {person}");
            }
            if review_count > reviewed.len() as u64 {
                outln!(
                    "  ... and {} more (`nudge show` any of them; all are marked {}={})",
                    review_count - reviewed.len() as u64,
                    review::FIELD,
                    review::PENDING
                );
            }
            let campaign = options
                .campaign
                .as_ref()
                .map(|c| format!(" --campaign {c}"))
                .unwrap_or_default();
            outln!("invite them with: nudge invite{campaign} --all-reviewed");
        }
    }
    outln!(
        "imported {}, updated {}, enrolled {}, rejected {}, flagged {}{} ({})",
        summary.imported,
        summary.updated,
        summary.enrolled,
        summary.rejected,
        summary.flagged,
        if summary.unchanged > 0 {
            format!(", already imported {}", summary.unchanged)
        } else {
            String::new()
        },
        admin.describe()
    );
    note_queued(&admin);
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Ok(Status::Failed);
    }
    Ok(Status::Ok)
}

/// `nudge invite [--campaign NAME] (--all-reviewed | CANDIDATE...)`: the
/// candidates an import with `--review` left waiting, enrolled now.
pub fn invite(
    config: &Config,
    campaign: Option<&str>,
    all_reviewed: bool,
    candidates: &[String],
) -> Result<Status, CliError> {
    let mut admin = connect(config)?;
    let mut people: Vec<review::Reviewed> = Vec::new();
    if all_reviewed {
        people = admin.reviewed().map_err(api)?;
    }
    for who in candidates {
        let view = admin.show(who).map_err(api)?;
        people.push(review::Reviewed {
            candidate: view.id,
            external_id: view.external_id,
            fields: view.fields,
        });
    }
    if people.is_empty() {
        outln!("nobody to invite: no candidate waits for review");
        return Ok(Status::Ok);
    }
    let mut enrolled = 0;
    let mut failed = false;
    for person in people {
        let mut fields: BTreeMap<String, String> = person
            .fields
            .iter()
            .filter(|(k, _)| matches!(k.as_str(), "email" | "phone"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        fields.insert(review::FIELD.into(), review::INVITED.into());
        let request = ApplyRequest {
            external_id: person.external_id.clone(),
            fields,
            campaign: campaign.map(str::to_string),
            ignore_filter: false,
            enroll: true,
            at: None,
            id: None,
        };
        match admin.apply(request) {
            Ok(answer) => {
                let joined: Vec<&str> = answer.enrolled.iter().map(|e| e.state.as_str()).collect();
                enrolled += answer.enrolled.len();
                if answer.enrolled.is_empty() {
                    let why: Vec<String> = answer
                        .not_enrolled
                        .iter()
                        .map(|n| format!("{}: {}", n.campaign, n.reason))
                        .collect();
                    outln!(
                        "{}  {}  not invited ({})",
                        person.candidate,
                        who(&person.fields),
                        why.join("; ")
                    );
                } else {
                    outln!(
                        "{}  {}  invited ({} enrollment{}, {})",
                        person.candidate,
                        who(&person.fields),
                        answer.enrolled.len(),
                        if answer.enrolled.len() == 1 { "" } else { "s" },
                        joined.join(", ")
                    );
                }
            }
            Err(refusal) => {
                failed = true;
                eprintln!("{}: {refusal}", person.candidate);
            }
        }
    }
    outln!("enrolled {enrolled} ({})", admin.describe());
    note_queued(&admin);
    Ok(if failed { Status::Failed } else { Status::Ok })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn rejects_go_beside_the_first_input() {
        let options = ImportOptions {
            files: vec![PathBuf::from("/tmp/x/people.csv")],
            ..ImportOptions::default()
        };
        assert_eq!(
            rejects_path(&options),
            Path::new("/tmp/x/people.rejects.csv")
        );
    }
}
