//! The semantic checker: everything `nudge check` rejects or warns about
//! once a file has parsed (see "What `nudge check` must reject" in the
//! language contract).
//!
//! All wording lives in [`CheckErrorKind`]: its `Display` is the headline,
//! and `label` and `help` give the note under the caret and the hint. The
//! checker walks every campaign of every loaded file and reports every
//! problem, sorted by file and position, never only the first.
//!
//! Template files are checked only when a templates folder exists; the
//! [`CheckReport`] says whether they were, rather than inventing a
//! diagnostic without a place in any file.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, FileId, Severity, Sources};
use crate::dsl::ast::{
    self, Campaign, Duration, Experiment, Ident, Limit, SettingKind, Span, State, StatementKind,
    Str, TimezoneSpec, Window,
};
use crate::dsl::load::Loaded;
use crate::dsl::window_deadline::{minutes_text, range_text, verdict, Timing, Verdict, WeekMask};

/// The channel kinds a campaign may send on, in the order the help lists them.
pub const CHANNEL_KINDS: [&str; 4] = ["email", "sms", "whatsapp", "webhook"];

/// The outcome of checking a set of loaded files.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// Syntax errors from loading, then every checker error and warning,
    /// sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// Whether template files were looked up.
    pub templates: TemplateCheck,
}

impl CheckReport {
    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }

    /// Whether any error was found (warnings do not count).
    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }
}

/// Whether the template files that campaigns send were checked.
///
/// Skipping is not a diagnostic: it belongs to no file and no position, so
/// it is reported beside the diagnostics (`report::render_report` prints it
/// as a `note:` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateCheck {
    /// Every template was looked up in this folder.
    Checked { folder: PathBuf },
    /// Templates were not looked up, for this reason.
    Skipped { reason: String },
}

impl fmt::Display for TemplateCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateCheck::Checked { folder } => {
                write!(f, "templates checked in `{}`", folder.display())
            }
            TemplateCheck::Skipped { reason } => {
                write!(f, "template checks were skipped: {reason}")
            }
        }
    }
}

/// Checks every campaign of every loaded file.
///
/// `templates` is the templates folder; when it is `None` or does not exist,
/// template files are not checked and [`CheckReport::templates`] says why.
/// The syntax errors found while loading are part of the report, so one
/// list holds everything `nudge check` prints.
pub fn check(loaded: &Loaded, templates: Option<&Path>) -> CheckReport {
    checked(loaded, templates).0
}

/// Campaign files in which [`checked`] found no error: the only thing
/// [`compile`](crate::dsl::compile::compile) takes, so nothing unchecked can
/// reach the engine.
#[derive(Debug, Clone, Copy)]
pub struct Checked<'a> {
    loaded: &'a Loaded,
}

/// One campaign of a [`Checked`] set.
#[derive(Debug, Clone, Copy)]
pub struct CheckedCampaign<'a> {
    file: FileId,
    campaign: &'a Campaign,
}

impl<'a> Checked<'a> {
    /// Every campaign, in load order.
    pub fn campaigns(self) -> impl Iterator<Item = CheckedCampaign<'a>> {
        self.loaded.files.iter().flat_map(|(file, ast)| {
            ast.campaigns.iter().map(|campaign| CheckedCampaign {
                file: *file,
                campaign,
            })
        })
    }
}

impl<'a> CheckedCampaign<'a> {
    pub fn file(self) -> FileId {
        self.file
    }

    pub fn ast(self) -> &'a ast::Campaign {
        self.campaign
    }
}

/// Checks like [`check`], and hands out the files as [`Checked`] when no
/// error was found (warnings pass).
pub fn checked<'a>(
    loaded: &'a Loaded,
    templates: Option<&Path>,
) -> (CheckReport, Option<Checked<'a>>) {
    let templates = match templates {
        None => TemplateCheck::Skipped {
            reason: "no templates folder is configured".to_string(),
        },
        Some(folder) if !folder.is_dir() => TemplateCheck::Skipped {
            reason: format!("no templates folder at `{}`", folder.display()),
        },
        Some(folder) => TemplateCheck::Checked {
            folder: folder.to_path_buf(),
        },
    };
    let folder = match &templates {
        TemplateCheck::Checked { folder } => Some(folder.as_path()),
        TemplateCheck::Skipped { .. } => None,
    };

    let mut out = Vec::new();
    let mut campaigns: HashMap<&str, (FileId, &Ident)> = HashMap::new();
    // Files that did not parse are checked too, in load order, for what
    // parsed of them: a syntax error hides nothing else.
    let mut files: Vec<&(FileId, ast::File)> =
        loaded.files.iter().chain(&loaded.recovered).collect();
    files.sort_by_key(|(file, _)| *file);
    for (file, ast) in files {
        for campaign in &ast.campaigns {
            let name = &campaign.name;
            match campaigns.get(name.name.as_str()) {
                Some(&(first_file, first)) => {
                    let first_place = (first_file != *file).then(|| {
                        let (line, col) = loaded.sources.line_col(first_file, first.span.start);
                        format!("{}:{line}:{col}", loaded.sources.get(first_file).name)
                    });
                    let mut diag = CheckErrorKind::DuplicateCampaign {
                        name: &name.name,
                        first: first_place,
                    }
                    .at(*file, name.span);
                    if first_file == *file {
                        diag = diag.with_secondary(first.span, "first defined here");
                    }
                    out.push(diag);
                }
                None => {
                    campaigns.insert(&name.name, (*file, name));
                }
            }
            CampaignChecker::new(*file, campaign, &loaded.sources, folder, &mut out).run();
        }
    }

    let mut diagnostics = loaded.diagnostics.clone();
    diagnostics.extend(out);
    diagnostics.sort_by_key(|d| (d.file, d.span.start, d.span.end));
    let report = CheckReport {
        diagnostics,
        templates,
    };
    let checked = (!report.has_errors()).then_some(Checked { loaded });
    (report, checked)
}

/// Every problem the checker knows, with its wording.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CheckErrorKind<'a> {
    UnknownState {
        name: &'a str,
        suggestion: Option<&'a str>,
    },
    DuplicateState {
        name: &'a str,
        campaign: &'a str,
    },
    /// `first` is `file:line:col` when the first definition is in another file.
    DuplicateCampaign {
        name: &'a str,
        first: Option<String>,
    },
    DuplicateExperiment {
        name: &'a str,
    },
    DuplicateVariant {
        experiment: &'a str,
        name: &'a str,
    },
    NoTransition {
        state: &'a str,
    },
    ZeroWeight {
        experiment: &'a str,
        variant: &'a str,
    },
    UnknownPlaceholder {
        name: &'a str,
        suggestion: Option<&'a str>,
    },
    BadPlaceholder,
    SplitUnknownExperiment {
        name: &'a str,
        suggestion: Option<&'a str>,
    },
    SplitMissingVariants {
        experiment: &'a str,
        missing: Vec<&'a str>,
    },
    SplitUnknownVariant {
        experiment: &'a str,
        name: &'a str,
        suggestion: Option<&'a str>,
    },
    SplitDuplicateVariant {
        name: &'a str,
    },
    SplitNotAlone {
        state: &'a str,
    },
    FinalWithTransition {
        state: &'a str,
    },
    UnknownChannel {
        name: &'a str,
        suggestion: Option<&'a str>,
    },
    DuplicateChannel {
        name: &'a str,
    },
    InvalidTimezone {
        name: &'a str,
        suggestion: Option<&'static str>,
    },
    EmptyWindow {
        time: String,
    },
    DeadlineWithoutSetting {
        keyword: &'static str,
    },
    NoChannel {
        template: &'a str,
    },
    DuplicateSetting {
        keyword: &'static str,
        scope: Scope<'a>,
    },
    ZeroLimit,
    ZeroDuration {
        keyword: &'static str,
    },
    TemplateMissing {
        name: String,
        looked_for: Vec<String>,
        folder: String,
    },
    TemplatePartlyMissing {
        name: String,
        missing: Vec<&'a str>,
        looked_for: Vec<String>,
        folder: String,
    },
    // Warnings from here on.
    Unreachable {
        state: &'a str,
        first: &'a str,
    },
    NoGoal {
        campaign: &'a str,
    },
    DecidedWithoutGoal {
        experiment: &'a str,
    },
    DecidedOneVariant {
        experiment: &'a str,
    },
    LimitNeverReached {
        limit: u64,
        sends: usize,
    },
    BeforeDeadlineAtOnce {
        before: Duration,
        deadline: Duration,
    },
    WindowTooLate {
        state: &'a str,
        window: String,
        /// When the state can be entered and when the transition fires,
        /// after the deadline starts (`24h`).
        entered: String,
        fires: String,
        transition: String,
    },
    WindowSometimesLate {
        state: &'a str,
        window: String,
        /// The days and times of the week that lose the sends.
        when: Vec<String>,
        from_enrollment: bool,
    },
}

/// Where a singular setting was repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope<'a> {
    Campaign(&'a str),
    State(&'a str),
}

impl fmt::Display for CheckErrorKind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CheckErrorKind::*;
        match self {
            UnknownState { name, .. } => write!(f, "unknown state `{name}`"),
            DuplicateState { name, campaign } => {
                write!(
                    f,
                    "state `{name}` is defined twice in campaign `{campaign}`"
                )
            }
            DuplicateCampaign { name, .. } => write!(f, "campaign `{name}` is defined twice"),
            DuplicateExperiment { name } => write!(f, "experiment `{name}` is defined twice"),
            DuplicateVariant { experiment, name } => write!(
                f,
                "variant `{name}` appears twice in experiment `{experiment}`"
            ),
            NoTransition { state } => {
                write!(f, "state `{state}` has no transition and no `end`")
            }
            ZeroWeight {
                experiment,
                variant,
            } => write!(
                f,
                "variant `{variant}` of experiment `{experiment}` has weight 0"
            ),
            UnknownPlaceholder { name, .. } => {
                write!(f, "unknown experiment `{name}` in template name")
            }
            BadPlaceholder => write!(f, "malformed `{{...}}` in template name"),
            SplitUnknownExperiment { name, .. } => write!(f, "unknown experiment `{name}`"),
            SplitMissingVariants {
                experiment,
                missing,
            } => write!(
                f,
                "split on `{experiment}` is missing {} {}",
                if missing.len() == 1 {
                    "variant"
                } else {
                    "variants"
                },
                backticked(missing, "and")
            ),
            SplitUnknownVariant {
                experiment, name, ..
            } => write!(f, "experiment `{experiment}` has no variant `{name}`"),
            SplitDuplicateVariant { name } => {
                write!(f, "variant `{name}` appears twice in the split")
            }
            SplitNotAlone { state } => {
                write!(f, "state `{state}` has a `split` and something else")
            }
            FinalWithTransition { state } => {
                write!(f, "final state `{state}` has a transition")
            }
            UnknownChannel { name, .. } => write!(f, "unknown channel `{name}`"),
            DuplicateChannel { name } => write!(f, "channel `{name}` is listed twice"),
            InvalidTimezone { name, .. } => write!(f, "unknown time zone `{name}`"),
            EmptyWindow { time } => write!(f, "empty window: it opens and closes at {time}"),
            DeadlineWithoutSetting { keyword } => {
                write!(f, "`{keyword}` in a campaign without a `deadline`")
            }
            NoChannel { template } => write!(f, "no channel to send `{template}` on"),
            DuplicateSetting { keyword, scope } => match scope {
                Scope::Campaign(name) => {
                    write!(f, "duplicate `{keyword}` in campaign `{name}`")
                }
                Scope::State(name) => write!(f, "duplicate `{keyword}` in state `{name}`"),
            },
            ZeroLimit => write!(f, "a limit of 0 lets no message through"),
            ZeroDuration { keyword } => write!(f, "zero duration in `{keyword}`"),
            TemplateMissing { name, .. } => write!(f, "no template file for `{name}`"),
            TemplatePartlyMissing { name, missing, .. } => write!(
                f,
                "template `{name}` is missing for {}",
                backticked(missing, "and")
            ),
            Unreachable { state, .. } => write!(f, "state `{state}` can never be reached"),
            NoGoal { campaign } => write!(f, "campaign `{campaign}` has no goal"),
            DecidedWithoutGoal { experiment } => write!(
                f,
                "experiment `{experiment}` is decided on the goal, but the campaign has no `goal`"
            ),
            DecidedOneVariant { experiment } => write!(
                f,
                "experiment `{experiment}` has one variant: it can never be decided"
            ),
            LimitNeverReached { limit, sends } => write!(
                f,
                "`limit {limit} total` is never reached: at most {} can happen",
                plural(*sends, "send", "sends")
            ),
            BeforeDeadlineAtOnce { before, deadline } => write!(
                f,
                "`before deadline {before}` fires as soon as the {deadline} deadline starts"
            ),
            WindowTooLate { state, .. } => write!(
                f,
                "state `{state}` never sends: its window opens only after its deadline transition"
            ),
            WindowSometimesLate { state, .. } => write!(
                f,
                "state `{state}` loses its sends for some candidates: its window may open only after its deadline transition"
            ),
        }
    }
}

impl<'a> CheckErrorKind<'a> {
    fn severity(&self) -> Severity {
        use CheckErrorKind::*;
        match self {
            TemplatePartlyMissing { .. }
            | Unreachable { .. }
            | NoGoal { .. }
            | DecidedWithoutGoal { .. }
            | DecidedOneVariant { .. }
            | LimitNeverReached { .. }
            | BeforeDeadlineAtOnce { .. }
            | WindowSometimesLate { .. } => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// The note printed beside the caret.
    fn label(&self) -> Option<String> {
        use CheckErrorKind::*;
        let label = match self {
            UnknownState { .. } => "no such state".to_string(),
            DuplicateState { .. } | DuplicateCampaign { .. } | DuplicateExperiment { .. } => {
                "defined again here".to_string()
            }
            DuplicateVariant { .. } | SplitDuplicateVariant { .. } => "listed again here".into(),
            NoTransition { .. } => "this state never leaves".into(),
            ZeroWeight { .. } => "no candidate would ever get this variant".into(),
            UnknownPlaceholder { .. } | SplitUnknownExperiment { .. } => {
                "no such experiment".into()
            }
            BadPlaceholder => "expected `{` experiment name `}`".into(),
            SplitMissingVariants { missing, .. } => {
                format!("no arm for {}", backticked(missing, "or"))
            }
            SplitUnknownVariant { .. } => "no such variant".into(),
            SplitNotAlone { .. } => "a state with a `split` holds nothing else".into(),
            FinalWithTransition { .. } => "a state with `end` holds no transitions".into(),
            UnknownChannel { .. } => "no such channel".into(),
            DuplicateChannel { .. } => "listed again here".into(),
            InvalidTimezone { .. } => "not an IANA time zone".into(),
            EmptyWindow { .. } => "this window never opens".into(),
            DeadlineWithoutSetting { .. } => "there is no deadline to count from".into(),
            NoChannel { .. } => "this send has no `via`".into(),
            DuplicateSetting { .. } => "set again here".into(),
            ZeroLimit => "must be at least 1".into(),
            ZeroDuration { .. } => "must be longer than zero".into(),
            TemplateMissing { looked_for, .. } | TemplatePartlyMissing { looked_for, .. } => {
                format!("found none of {}", backticked(looked_for, "or"))
            }
            Unreachable { .. } => "no transition leads here".into(),
            NoGoal { .. } => "no `goal` setting".into(),
            DecidedWithoutGoal { .. } => "decided on `completed` events".into(),
            DecidedOneVariant { .. } => "nothing to compare the variant with".into(),
            LimitNeverReached { .. } => "higher than the number of sends".into(),
            BeforeDeadlineAtOnce { .. } => "not shorter than the deadline".into(),
            WindowTooLate { window, .. } => {
                format!("always cancelled before window `{window}` opens")
            }
            WindowSometimesLate { window, .. } => {
                format!("cancelled when window `{window}` opens too late")
            }
        };
        Some(label)
    }

    /// The hint printed after the snippet as `= help: ...`.
    fn help(&self) -> Option<String> {
        use CheckErrorKind::*;
        match self {
            UnknownState { suggestion, .. }
            | UnknownPlaceholder { suggestion, .. }
            | SplitUnknownExperiment { suggestion, .. }
            | SplitUnknownVariant { suggestion, .. } => suggestion.map(did_you_mean),
            UnknownChannel { suggestion, .. } => Some(match suggestion {
                Some(name) => did_you_mean(name),
                None => format!("the channels are {}", backticked(&CHANNEL_KINDS, "and")),
            }),
            InvalidTimezone { suggestion, .. } => Some(match suggestion {
                Some(name) => did_you_mean(name),
                None => "use a zone name such as `America/Chicago` or `Europe/Berlin`".into(),
            }),
            DuplicateState { .. } => Some("rename one of the two states".into()),
            DuplicateCampaign { first, .. } => Some(match first {
                Some(place) => {
                    format!("first defined at {place}; campaign names are unique across all files")
                }
                None => "campaign names are unique across all files".into(),
            }),
            DuplicateExperiment { .. } | DuplicateVariant { .. } => {
                Some("rename or remove one of the two".into())
            }
            NoTransition { .. } => {
                Some("add a transition such as `after 24h -> ...` or `end`".into())
            }
            ZeroWeight { .. } => Some("give it a weight of at least 1, or remove it".into()),
            BadPlaceholder => Some(
                "a template name may hold `{experiment}`, replaced by the candidate's variant"
                    .into(),
            ),
            SplitMissingVariants { missing, .. } => Some(format!(
                "add {}",
                backticked(
                    &missing
                        .iter()
                        .map(|v| format!("{v} -> ..."))
                        .collect::<Vec<_>>(),
                    "and"
                )
            )),
            SplitDuplicateVariant { .. } => Some("each variant has exactly one arm".into()),
            SplitNotAlone { .. } => Some("move it into the states the split leads to".into()),
            FinalWithTransition { .. } => Some("remove the transition or the `end`".into()),
            DuplicateChannel { .. } => Some("list each channel once".into()),
            EmptyWindow { .. } => Some("to send at any hour, remove the window".into()),
            DeadlineWithoutSetting { .. } => {
                Some("add a setting such as `deadline 72h` to the campaign".into())
            }
            NoChannel { .. } => {
                Some("add `via email` to the send, or a `channels` setting to the campaign".into())
            }
            DuplicateSetting { keyword, scope } => Some(match scope {
                Scope::Campaign(_) => format!("a campaign has at most one `{keyword}`"),
                Scope::State(_) => format!("a state has at most one `{keyword}`"),
            }),
            ZeroLimit => Some("remove the limit, or allow at least 1 message".into()),
            ZeroDuration { keyword } => Some(match *keyword {
                "after" => "an `after` of zero fires at once; use a duration such as `24h`".into(),
                "limit" => "use a period such as `12h`".into(),
                _ => format!("use a duration such as `72h` in `{keyword}`"),
            }),
            TemplateMissing { folder, .. } => Some(format!("create one of them in `{folder}`")),
            TemplatePartlyMissing {
                name,
                missing,
                folder,
                ..
            } => Some(format!(
                "create {} in `{folder}`, or `{name}.j2` for every channel",
                backticked(
                    &missing
                        .iter()
                        .map(|c| format!("{name}.{c}.j2"))
                        .collect::<Vec<_>>(),
                    "and"
                )
            )),
            Unreachable { first, .. } => Some(format!(
                "no chain of transitions leads here from the first state `{first}`"
            )),
            NoGoal { .. } => Some(
                "add a setting such as `goal completed` so that conversions are counted".into(),
            ),
            DecidedWithoutGoal { .. } => Some(
                "add a setting such as `goal completed` naming the event that counts as success"
                    .into(),
            ),
            DecidedOneVariant { .. } => {
                Some("add a second variant, or remove `until decided`".into())
            }
            LimitNeverReached { sends, .. } => {
                Some(format!("use `limit {sends} total` or remove the limit"))
            }
            BeforeDeadlineAtOnce { .. } => Some("use a duration shorter than the deadline".into()),
            WindowTooLate {
                entered,
                fires,
                transition,
                ..
            } => Some(format!(
                "the state is entered {entered} or more after the deadline starts and `{transition}` leaves it {fires} after; widen the window or lengthen the deadline"
            )),
            WindowSometimesLate {
                when,
                from_enrollment,
                ..
            } => Some(if *from_enrollment {
                format!(
                    "candidates enrolled {} wait past the deadline; widen the window or lengthen the deadline",
                    listed(when)
                )
            } else {
                format!(
                    "when the first message goes out {}, the window does not open again before the deadline; widen the window or lengthen the deadline",
                    listed(when)
                )
            }),
        }
    }

    /// The diagnostic for this problem at `span` of `file`.
    fn at(self, file: FileId, span: Span) -> Diagnostic {
        Diagnostic {
            severity: self.severity(),
            file,
            message: self.to_string(),
            span,
            label: self.label(),
            help: self.help(),
            secondary: Vec::new(),
        }
    }
}

/// "a, b and c", or the first four and how many more.
fn listed(items: &[String]) -> String {
    const SHOWN: usize = 4;
    if items.len() > SHOWN {
        return format!(
            "{} and {} more",
            items[..SHOWN].join(", "),
            items.len() - SHOWN
        );
    }
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

fn did_you_mean(name: &str) -> String {
    format!("did you mean `{name}`?")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "`a`", "`a` and `b`", "`a`, `b` and `c`".
fn backticked<S: AsRef<str>>(items: &[S], conjunction: &str) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("`{}`", s.as_ref())).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} {conjunction} {last}", rest.join(", ")),
    }
}

/// The closest of `candidates` to `name`, when close enough to be a typo.
fn suggest<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let threshold = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(name, c), c))
        .filter(|&(d, _)| d > 0 && d <= threshold)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// A near miss for a zone name: same name in other case, the city alone
/// (`Chicago`), or a small typo.
fn suggest_timezone(name: &str) -> Option<&'static str> {
    let names = || chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
    let lower = name.to_ascii_lowercase();
    if let Some(found) = names().find(|n| n.eq_ignore_ascii_case(name)) {
        return Some(found);
    }
    if let Some(found) = names().find(|n| {
        n.rsplit('/')
            .next()
            .is_some_and(|city| city.eq_ignore_ascii_case(&lower.replace(' ', "_")))
    }) {
        return Some(found);
    }
    names()
        .map(|n| (strsim::osa_distance(&lower, &n.to_ascii_lowercase()), n))
        .filter(|&(d, _)| d <= 3)
        .min_by_key(|&(d, _)| d)
        .map(|(_, n)| n)
}

fn valid_timezone(name: &str) -> bool {
    name.parse::<chrono_tz::Tz>().is_ok()
}

/// One piece of a template name: text, or a `{experiment}` placeholder.
enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// Splits a template name into pieces; `Err` when a brace is unbalanced or
/// a placeholder is not an identifier.
fn template_pieces(name: &str) -> Result<Vec<Piece<'_>>, ()> {
    let mut pieces = Vec::new();
    let mut rest = name;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(());
        }
        let close = rest[open..].find('}').ok_or(())? + open;
        let inner = &rest[open + 1..close];
        if !is_ident(inner) {
            return Err(());
        }
        if open > 0 {
            pieces.push(Piece::Text(&rest[..open]));
        }
        pieces.push(Piece::Placeholder(inner));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The checks of one campaign.
struct CampaignChecker<'a, 'o> {
    file: FileId,
    campaign: &'a Campaign,
    source: &'a str,
    templates: Option<&'a Path>,
    out: &'o mut Vec<Diagnostic>,
    /// First definition of each state.
    states: HashMap<&'a str, &'a State>,
    /// First definition of each experiment.
    experiments: HashMap<&'a str, &'a Experiment>,
    /// The valid channels of the `channels` setting, if there is one.
    channels: Option<Vec<&'a str>>,
    deadline: Option<&'a Duration>,
    /// False when part of the campaign did not parse: then only problems
    /// that a missing item cannot cause or explain are reported (no unknown
    /// state, missing goal or unreachable state that the lost text may
    /// have held).
    complete: bool,
}

impl<'a, 'o> CampaignChecker<'a, 'o> {
    fn new(
        file: FileId,
        campaign: &'a Campaign,
        sources: &'a Sources,
        templates: Option<&'a Path>,
        out: &'o mut Vec<Diagnostic>,
    ) -> Self {
        CampaignChecker {
            file,
            campaign,
            source: &sources.get(file).text,
            templates,
            out,
            states: HashMap::new(),
            experiments: HashMap::new(),
            channels: None,
            deadline: None,
            complete: campaign.complete,
        }
    }

    fn run(mut self) {
        self.settings();
        self.experiments();
        self.states();
        for state in &self.campaign.states {
            self.state(state);
        }
        if self.complete {
            self.reachability();
            self.windows_before_deadline();
        }
    }

    fn report(&mut self, kind: CheckErrorKind<'a>, span: Span) -> &mut Diagnostic {
        self.out.push(kind.at(self.file, span));
        self.out.last_mut().expect("just pushed")
    }

    /// The span of the first `len` bytes of `span`: the keyword of a setting
    /// or statement.
    fn keyword_span(span: Span, keyword: &str) -> Span {
        Span::new(span.start, (span.start + keyword.len()).min(span.end))
    }

    fn settings(&mut self) {
        let campaign = self.campaign;
        let scope = Scope::Campaign(&campaign.name.name);
        let mut first_seen: HashMap<&'static str, Span> = HashMap::new();
        let mut goal = false;
        let mut total_limits = Vec::new();
        for setting in &campaign.settings {
            let keyword = match &setting.kind {
                SettingKind::Title(_) => Some("title"),
                SettingKind::Enroll { .. } => Some("enroll"),
                SettingKind::Channels(_) => Some("channels"),
                SettingKind::Timezone(_) => Some("timezone"),
                SettingKind::Window(_) => Some("window"),
                SettingKind::Deadline { .. } => Some("deadline"),
                SettingKind::Goal(_) => Some("goal"),
                SettingKind::Link(_) => Some("link"),
                SettingKind::Limit(_) | SettingKind::Exit(_) => None,
            };
            if let Some(keyword) = keyword {
                let span = Self::keyword_span(setting.span, keyword);
                if let Some(&first) = first_seen.get(keyword) {
                    self.report(CheckErrorKind::DuplicateSetting { keyword, scope }, span)
                        .secondary
                        .push((first, "first set here".into()));
                    continue;
                }
                first_seen.insert(keyword, span);
            }
            match &setting.kind {
                SettingKind::Channels(list) => {
                    let channels = self.channel_list(list);
                    self.channels = Some(channels);
                }
                SettingKind::Timezone(TimezoneSpec::Fixed(zone))
                | SettingKind::Timezone(TimezoneSpec::Candidate {
                    fallback: Some(zone),
                }) => self.timezone(zone),
                SettingKind::Window(window) => self.window(window),
                SettingKind::Limit(Limit::Per { count, period }) => {
                    if count.value == 0 {
                        self.report(CheckErrorKind::ZeroLimit, count.span);
                    }
                    if period.seconds() == 0 {
                        self.report(
                            CheckErrorKind::ZeroDuration { keyword: "limit" },
                            period.span,
                        );
                    }
                }
                SettingKind::Limit(Limit::Total { count }) => {
                    if count.value == 0 {
                        self.report(CheckErrorKind::ZeroLimit, count.span);
                    } else {
                        total_limits.push(*count);
                    }
                }
                SettingKind::Deadline { duration, .. } => {
                    if duration.seconds() == 0 {
                        self.report(
                            CheckErrorKind::ZeroDuration {
                                keyword: "deadline",
                            },
                            duration.span,
                        );
                    } else {
                        self.deadline = Some(duration);
                    }
                }
                SettingKind::Goal(_) => goal = true,
                SettingKind::Title(_)
                | SettingKind::Enroll { .. }
                | SettingKind::Timezone(TimezoneSpec::Candidate { fallback: None })
                | SettingKind::Exit(_)
                | SettingKind::Link(_) => {}
            }
        }
        if !goal && self.complete {
            self.report(
                CheckErrorKind::NoGoal {
                    campaign: &campaign.name.name,
                },
                campaign.name.span,
            );
        }
        if self.complete {
            self.limits_reachable(&total_limits);
        }
    }

    /// Checks a `channels` list and returns its valid, distinct channels.
    fn channel_list(&mut self, list: &'a [Ident]) -> Vec<&'a str> {
        let mut channels: Vec<&'a str> = Vec::new();
        for ident in list {
            if !self.channel(ident) {
                continue;
            }
            if channels.contains(&ident.name.as_str()) {
                self.report(
                    CheckErrorKind::DuplicateChannel { name: &ident.name },
                    ident.span,
                );
            } else {
                channels.push(&ident.name);
            }
        }
        channels
    }

    /// Reports an unknown channel; true when the channel is known.
    fn channel(&mut self, ident: &'a Ident) -> bool {
        if CHANNEL_KINDS.contains(&ident.name.as_str()) {
            return true;
        }
        self.report(
            CheckErrorKind::UnknownChannel {
                name: &ident.name,
                suggestion: suggest(&ident.name, CHANNEL_KINDS),
            },
            ident.span,
        );
        false
    }

    fn timezone(&mut self, zone: &'a Str) {
        if !valid_timezone(&zone.value) {
            self.report(
                CheckErrorKind::InvalidTimezone {
                    name: &zone.value,
                    suggestion: suggest_timezone(&zone.value),
                },
                zone.span,
            );
        }
    }

    fn window(&mut self, window: &Window) {
        if window.open.minutes() == window.close.minutes() {
            self.report(
                CheckErrorKind::EmptyWindow {
                    time: window.open.to_string(),
                },
                window.open.span.to(window.close.span),
            );
        }
    }

    fn experiments(&mut self) {
        let has_goal =
            (self.campaign.settings.iter()).any(|s| matches!(s.kind, SettingKind::Goal(_)));
        for experiment in &self.campaign.experiments {
            let name = &experiment.name;
            if let Some(until) = experiment.until_decided {
                if !has_goal && self.complete {
                    self.report(
                        CheckErrorKind::DecidedWithoutGoal {
                            experiment: &name.name,
                        },
                        until,
                    );
                }
                if experiment.variants.len() == 1 {
                    self.report(
                        CheckErrorKind::DecidedOneVariant {
                            experiment: &name.name,
                        },
                        until,
                    );
                }
            }
            if let Some(first) = self.experiments.get(name.name.as_str()) {
                let first = first.name.span;
                self.report(
                    CheckErrorKind::DuplicateExperiment { name: &name.name },
                    name.span,
                )
                .secondary
                .push((first, "first defined here".into()));
            } else {
                self.experiments.insert(&name.name, experiment);
            }
            let mut seen: HashMap<&str, Span> = HashMap::new();
            for variant in &experiment.variants {
                if let Some(&first) = seen.get(variant.name.name.as_str()) {
                    self.report(
                        CheckErrorKind::DuplicateVariant {
                            experiment: &name.name,
                            name: &variant.name.name,
                        },
                        variant.name.span,
                    )
                    .secondary
                    .push((first, "first listed here".into()));
                } else {
                    seen.insert(&variant.name.name, variant.name.span);
                }
                if variant.weight.value == 0 {
                    self.report(
                        CheckErrorKind::ZeroWeight {
                            experiment: &name.name,
                            variant: &variant.name.name,
                        },
                        variant.weight.span,
                    );
                }
            }
        }
    }

    /// Duplicate states; fills the state table.
    fn states(&mut self) {
        let campaign = self.campaign;
        for state in &campaign.states {
            let name = &state.name;
            if let Some(first) = self.states.get(name.name.as_str()) {
                let first = first.name.span;
                self.report(
                    CheckErrorKind::DuplicateState {
                        name: &name.name,
                        campaign: &campaign.name.name,
                    },
                    name.span,
                )
                .secondary
                .push((first, "first defined here".into()));
            } else {
                self.states.insert(&name.name, state);
            }
        }
    }

    fn state(&mut self, state: &'a State) {
        let name = state.name.name.as_str();
        let is_final = state
            .statements
            .iter()
            .any(|s| matches!(s.kind, StatementKind::End));
        let has_split = state
            .statements
            .iter()
            .any(|s| matches!(s.kind, StatementKind::Split { .. }));
        let mut has_transition = false;
        let mut window_seen: Option<Span> = None;
        let mut split_seen = false;

        for statement in &state.statements {
            let is_transition = !matches!(
                statement.kind,
                StatementKind::Send { .. } | StatementKind::Window(_) | StatementKind::End
            );
            has_transition |= is_transition;
            let is_first_split =
                matches!(statement.kind, StatementKind::Split { .. }) && !split_seen;
            if has_split && !is_first_split {
                self.report(
                    CheckErrorKind::SplitNotAlone { state: name },
                    statement.span,
                );
            } else if is_final && is_transition {
                self.report(
                    CheckErrorKind::FinalWithTransition { state: name },
                    statement.span,
                );
            }
            split_seen |= is_first_split;

            match &statement.kind {
                StatementKind::Send { template, via } => self.send(statement.span, template, via),
                StatementKind::On { target, .. } => self.target(target),
                StatementKind::After { duration, target } => {
                    if duration.seconds() == 0 {
                        self.report(
                            CheckErrorKind::ZeroDuration { keyword: "after" },
                            duration.span,
                        );
                    }
                    self.target(target);
                }
                StatementKind::AtDeadline { target } => {
                    self.deadline_transition(statement.span, "at deadline", None);
                    self.target(target);
                }
                StatementKind::BeforeDeadline { duration, target } => {
                    self.deadline_transition(statement.span, "before deadline", Some(duration));
                    self.target(target);
                }
                StatementKind::Split { experiment, arms } => {
                    self.split(experiment, arms);
                }
                StatementKind::Window(window) => {
                    let span = Self::keyword_span(statement.span, "window");
                    if let Some(first) = window_seen {
                        self.report(
                            CheckErrorKind::DuplicateSetting {
                                keyword: "window",
                                scope: Scope::State(name),
                            },
                            span,
                        )
                        .secondary
                        .push((first, "first set here".into()));
                    } else {
                        window_seen = Some(span);
                        self.window(window);
                    }
                }
                StatementKind::End => {}
            }
        }

        if !is_final && !has_transition && self.complete {
            self.report(
                CheckErrorKind::NoTransition { state: name },
                state.name.span,
            );
        }
    }

    fn target(&mut self, target: &'a Ident) {
        if self.states.contains_key(target.name.as_str()) || !self.complete {
            return;
        }
        let names = self.campaign.states.iter().map(|s| s.name.name.as_str());
        self.report(
            CheckErrorKind::UnknownState {
                name: &target.name,
                suggestion: suggest(&target.name, names),
            },
            target.span,
        );
    }

    /// `at deadline` / `before deadline D`: needs a `deadline` setting.
    fn deadline_transition(
        &mut self,
        statement: Span,
        keyword: &'static str,
        before: Option<&Duration>,
    ) {
        let Some(deadline) = self.deadline else {
            let has_zero_deadline = self
                .campaign
                .settings
                .iter()
                .any(|s| matches!(s.kind, SettingKind::Deadline { .. }));
            if !has_zero_deadline && self.complete {
                let span = self.words_span(statement, keyword);
                self.report(CheckErrorKind::DeadlineWithoutSetting { keyword }, span);
            }
            return;
        };
        if let Some(before) = before {
            if before.seconds() >= deadline.seconds() {
                self.report(
                    CheckErrorKind::BeforeDeadlineAtOnce {
                        before: *before,
                        deadline: *deadline,
                    },
                    before.span,
                );
            }
        }
    }

    /// The span of a two-word keyword such as `at deadline` at the start of
    /// `span`, whatever the blanks between the words.
    fn words_span(&self, span: Span, keyword: &str) -> Span {
        let last = keyword.rsplit(' ').next().unwrap_or(keyword);
        self.source
            .get(span.start..span.end)
            .and_then(|text| text.find(last))
            .map_or(span, |at| {
                Span::new(span.start, span.start + at + last.len())
            })
    }

    fn split(&mut self, experiment: &'a Ident, arms: &'a [crate::dsl::ast::SplitArm]) {
        for arm in arms {
            self.target(&arm.target);
        }
        let Some(exp) = self.experiments.get(experiment.name.as_str()).copied() else {
            if !self.complete {
                return;
            }
            let names = self
                .campaign
                .experiments
                .iter()
                .map(|e| e.name.name.as_str());
            self.report(
                CheckErrorKind::SplitUnknownExperiment {
                    name: &experiment.name,
                    suggestion: suggest(&experiment.name, names),
                },
                experiment.span,
            );
            return;
        };
        let variants: Vec<&str> = exp.variants.iter().map(|v| v.name.name.as_str()).collect();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for arm in arms {
            let variant = &arm.variant;
            if !variants.contains(&variant.name.as_str()) {
                self.report(
                    CheckErrorKind::SplitUnknownVariant {
                        experiment: &experiment.name,
                        name: &variant.name,
                        suggestion: suggest(&variant.name, variants.iter().copied()),
                    },
                    variant.span,
                );
            } else if let Some(&first) = seen.get(variant.name.as_str()) {
                self.report(
                    CheckErrorKind::SplitDuplicateVariant {
                        name: &variant.name,
                    },
                    variant.span,
                )
                .secondary
                .push((first, "first listed here".into()));
            } else {
                seen.insert(&variant.name, variant.span);
            }
        }
        let mut missing: Vec<&str> = Vec::new();
        for v in &variants {
            if !seen.contains_key(v) && !missing.contains(v) {
                missing.push(v);
            }
        }
        if !missing.is_empty() {
            self.report(
                CheckErrorKind::SplitMissingVariants {
                    experiment: &experiment.name,
                    missing,
                },
                experiment.span,
            );
        }
    }

    fn send(&mut self, statement: Span, template: &'a Str, via: &'a Option<Ident>) {
        let via_ok = via.as_ref().map(|v| self.channel(v));
        let placeholders_ok = self.placeholders(template);
        if !self.complete {
            // The `channels` setting or the templates' experiments may be
            // in the text that did not parse.
            return;
        }
        if via.is_none() && self.channels.is_none() {
            self.report(
                CheckErrorKind::NoChannel {
                    template: &template.value,
                },
                Self::keyword_span(statement, "send"),
            );
            return;
        }
        if via_ok == Some(false) || !placeholders_ok {
            return;
        }
        let channels: Vec<&'a str> = match via {
            Some(v) => vec![v.name.as_str()],
            None => self.channels.clone().unwrap_or_default(),
        };
        if let (Some(folder), false) = (self.templates, channels.is_empty()) {
            for name in self.expand(&template.value) {
                self.template_files(folder, &name, &channels, template.span);
            }
        }
    }

    /// Reports unknown experiments in `{...}`; true when all are known.
    fn placeholders(&mut self, template: &'a Str) -> bool {
        let Ok(pieces) = template_pieces(&template.value) else {
            self.report(CheckErrorKind::BadPlaceholder, template.span);
            return false;
        };
        let raw = self.source.get(template.span.start..template.span.end);
        let mut search_from = 0;
        let mut ok = true;
        for piece in pieces {
            let Piece::Placeholder(name) = piece else {
                continue;
            };
            let needle = format!("{{{name}}}");
            let found = raw
                .and_then(|r| r.get(search_from..))
                .and_then(|r| r.find(&needle));
            let span = match found {
                Some(at) => {
                    let start = template.span.start + search_from + at;
                    search_from += at + needle.len();
                    Span::new(start, start + needle.len())
                }
                None => template.span,
            };
            if !self.experiments.contains_key(name) {
                ok = false;
                if !self.complete {
                    continue;
                }
                let names = self
                    .campaign
                    .experiments
                    .iter()
                    .map(|e| e.name.name.as_str());
                let suggestion = suggest(name, names);
                self.report(
                    CheckErrorKind::UnknownPlaceholder { name, suggestion },
                    span,
                );
            }
        }
        ok
    }

    /// Every template name `value` can resolve to, in variant order.
    fn expand(&self, value: &str) -> Vec<String> {
        let Ok(pieces) = template_pieces(value) else {
            return Vec::new();
        };
        let mut names = vec![String::new()];
        for piece in pieces {
            match piece {
                Piece::Text(text) => names.iter_mut().for_each(|n| n.push_str(text)),
                Piece::Placeholder(exp) => {
                    let Some(exp) = self.experiments.get(exp) else {
                        return Vec::new();
                    };
                    let mut variants: Vec<&str> = Vec::new();
                    for v in &exp.variants {
                        if !variants.contains(&v.name.name.as_str()) {
                            variants.push(&v.name.name);
                        }
                    }
                    names = names
                        .iter()
                        .flat_map(|n| variants.iter().map(move |v| format!("{n}{v}")))
                        .collect();
                }
            }
        }
        names
    }

    fn template_files(&mut self, folder: &Path, name: &str, channels: &[&'a str], span: Span) {
        let generic = format!("{name}.j2");
        let has_generic = folder.join(&generic).is_file();
        let missing: Vec<&'a str> = if has_generic {
            Vec::new()
        } else {
            channels
                .iter()
                .copied()
                .filter(|c| !folder.join(format!("{name}.{c}.j2")).is_file())
                .collect()
        };
        if missing.is_empty() {
            return;
        }
        let looked_for = missing
            .iter()
            .map(|c| format!("{name}.{c}.j2"))
            .chain(std::iter::once(generic))
            .collect();
        let folder = folder.display().to_string();
        let name = name.to_string();
        let kind = if missing.len() == channels.len() {
            CheckErrorKind::TemplateMissing {
                name,
                looked_for,
                folder,
            }
        } else {
            CheckErrorKind::TemplatePartlyMissing {
                name,
                missing,
                looked_for,
                folder,
            }
        };
        self.report(kind, span);
    }

    /// The states reachable from the first one, following every transition
    /// and split arm.
    fn reachable(&self) -> HashSet<&'a str> {
        let mut seen = HashSet::new();
        let Some(first) = self.campaign.states.first() else {
            return seen;
        };
        let mut stack = vec![first.name.name.as_str()];
        while let Some(name) = stack.pop() {
            if !seen.insert(name) {
                continue;
            }
            if let Some(state) = self.states.get(name) {
                stack.extend(
                    successors(state).filter(|t| self.states.contains_key(t) && !seen.contains(t)),
                );
            }
        }
        seen
    }

    fn reachability(&mut self) {
        let Some(first) = self.campaign.states.first() else {
            return;
        };
        let reachable = self.reachable();
        for state in &self.campaign.states {
            let name = state.name.name.as_str();
            let is_first_definition = self
                .states
                .get(name)
                .is_some_and(|s| std::ptr::eq(*s, state));
            if is_first_definition && !reachable.contains(name) {
                self.report(
                    CheckErrorKind::Unreachable {
                        state: name,
                        first: &first.name.name,
                    },
                    state.name.span,
                );
            }
        }
    }

    /// A state that sends, in a window, and that a deadline transition
    /// leaves: an error when the window can never open between the state's
    /// earliest entry and that transition, a warning naming the days and
    /// times that lose its sends when only some do (see `window_deadline`).
    fn windows_before_deadline(&mut self) {
        let campaign = self.campaign;
        let Some(deadline) = self.deadline else {
            return;
        };
        let d = minutes(deadline);
        let from_enrollment = campaign.settings.iter().find_map(|s| match s.kind {
            SettingKind::Deadline {
                after_enrollment, ..
            } => Some(after_enrollment),
            _ => None,
        }) == Some(true);
        let campaign_window = campaign.settings.iter().find_map(|s| match &s.kind {
            SettingKind::Window(w) => Some(w),
            _ => None,
        });
        let window_of = |state: &'a State| {
            state
                .statements
                .iter()
                .find_map(|s| match &s.kind {
                    StatementKind::Window(w) => Some(w),
                    _ => None,
                })
                .or(campaign_window)
        };
        let states: Vec<&'a State> = campaign
            .states
            .iter()
            .filter(|s| {
                self.states
                    .get(s.name.name.as_str())
                    .is_some_and(|first| std::ptr::eq(*first, *s))
            })
            .collect();
        let entered = earliest_entries(&states, d, from_enrollment);
        let sends = |state: &'a State| {
            state
                .statements
                .iter()
                .find(|s| matches!(s.kind, StatementKind::Send { .. }))
        };
        let starts = if from_enrollment {
            WeekMask::always()
        } else {
            // The first message comes from a state that can be entered
            // before the deadline starts, inside that state's window.
            let mut starts: Option<WeekMask> = None;
            for (i, state) in states.iter().enumerate() {
                if entered[i] != Some(None) || sends(state).is_none() {
                    continue;
                }
                let mask = window_of(state).map_or_else(WeekMask::always, WeekMask::of);
                starts = Some(match starts {
                    Some(s) => s.union(&mask),
                    None => mask,
                });
            }
            let Some(starts) = starts else {
                return;
            };
            starts
        };
        let margin = dst_margin(campaign);
        for (i, state) in states.iter().enumerate() {
            let (Some(Some(entered)), Some(send), Some(window)) =
                (entered[i], sends(state), window_of(state))
            else {
                continue;
            };
            if window.open.minutes() == window.close.minutes() {
                continue;
            }
            let first_transition = state
                .statements
                .iter()
                .filter_map(|s| match &s.kind {
                    StatementKind::AtDeadline { .. } => Some((d, s, "at deadline".to_string())),
                    StatementKind::BeforeDeadline { duration, .. } => Some((
                        (d - minutes(duration)).max(0),
                        s,
                        format!("before deadline {duration}"),
                    )),
                    _ => None,
                })
                .min_by_key(|(fires, _, _)| *fires);
            let Some((fires, transition, transition_text)) = first_transition else {
                continue;
            };
            if fires <= entered {
                continue;
            }
            let timing = Timing {
                entered,
                fires,
                margin,
            };
            let window_text = crate::dsl::compile::window(window).text;
            let kind = match verdict(&WeekMask::of(window), &starts, timing) {
                Verdict::Fine => continue,
                Verdict::Never => CheckErrorKind::WindowTooLate {
                    state: &state.name.name,
                    window: window_text,
                    entered: minutes_text(entered),
                    fires: minutes_text(fires - entered),
                    transition: transition_text,
                },
                Verdict::Sometimes(lost) => CheckErrorKind::WindowSometimesLate {
                    state: &state.name.name,
                    window: window_text,
                    when: lost.into_iter().map(range_text).collect(),
                    from_enrollment,
                },
            };
            let span = Self::keyword_span(send.span, "send");
            self.report(kind, span)
                .secondary
                .push((transition.span, "leaves the state first".into()));
        }
    }

    /// Warns about `limit N total` above the number of sends that can
    /// happen; no warning when a reachable cycle holds a send (unbounded).
    fn limits_reachable(&mut self, limits: &[crate::dsl::ast::Int]) {
        if limits.is_empty() {
            return;
        }
        // The state table is filled later in `run`; build a local one.
        let mut table: HashMap<&'a str, &'a State> = HashMap::new();
        for state in &self.campaign.states {
            table.entry(&state.name.name).or_insert(state);
        }
        let Some(sends) = max_sends(&self.campaign.states, &table) else {
            return;
        };
        for count in limits {
            if count.value > sends as u64 {
                self.report(
                    CheckErrorKind::LimitNeverReached {
                        limit: count.value,
                        sends,
                    },
                    count.span,
                );
            }
        }
    }
}

/// A duration in whole minutes (every duration unit is).
fn minutes(d: &Duration) -> i64 {
    i64::try_from(d.seconds() / 60)
        .unwrap_or(i64::MAX / 4)
        .min(i64::MAX / 4)
}

/// For each state, how soon after the deadline starts it can be entered:
/// `None` unreachable, `Some(None)` possibly before the deadline starts,
/// `Some(Some(m))` only once the deadline has run `m` minutes. The first
/// state is entered at enrollment; a deadline transition fires only once the
/// deadline runs; an `after` adds its duration; events and splits add nothing.
fn earliest_entries(
    states: &[&State],
    deadline: i64,
    from_enrollment: bool,
) -> Vec<Option<Option<i64>>> {
    let index: HashMap<&str, usize> = states
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.name.as_str(), i))
        .collect();
    let mut entered: Vec<Option<Option<i64>>> = vec![None; states.len()];
    if states.is_empty() {
        return entered;
    }
    entered[0] = Some(from_enrollment.then_some(0));
    // `None` inside sorts first, so `min` keeps the earliest bound.
    let earlier = |a: Option<Option<i64>>, b: Option<i64>| match a {
        Some(a) => Some(a.min(b)),
        None => Some(b),
    };
    for _ in 0..=states.len() {
        let mut changed = false;
        for (i, state) in states.iter().enumerate() {
            let Some(from) = entered[i] else {
                continue;
            };
            for statement in &state.statements {
                let moves: Vec<(&str, Option<i64>)> = match &statement.kind {
                    StatementKind::On { target, .. } => vec![(&target.name, from)],
                    StatementKind::Split { arms, .. } => arms
                        .iter()
                        .map(|a| (a.target.name.as_str(), from))
                        .collect(),
                    StatementKind::After { duration, target } => {
                        vec![(
                            &target.name,
                            from.map(|f| f.saturating_add(minutes(duration))),
                        )]
                    }
                    StatementKind::AtDeadline { target } => {
                        vec![(
                            &target.name,
                            Some(from.map_or(deadline, |f| f.max(deadline))),
                        )]
                    }
                    StatementKind::BeforeDeadline { duration, target } => {
                        let fires = (deadline - minutes(duration)).max(0);
                        vec![(&target.name, Some(from.map_or(fires, |f| f.max(fires))))]
                    }
                    StatementKind::Send { .. } | StatementKind::Window(_) | StatementKind::End => {
                        Vec::new()
                    }
                };
                for (target, at) in moves {
                    let Some(&j) = index.get(target) else {
                        continue;
                    };
                    let next = earlier(entered[j], at);
                    if next != entered[j] {
                        entered[j] = next;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    entered
}

/// How far daylight saving can move the wall clock of the campaign's zone,
/// in minutes: none for a fixed zone without it, two hours (the most any
/// zone moves) when the zone is the candidate's.
fn dst_margin(campaign: &Campaign) -> i64 {
    let zone = campaign.settings.iter().find_map(|s| match &s.kind {
        SettingKind::Timezone(spec) => Some(spec),
        _ => None,
    });
    match zone {
        None => 0,
        Some(TimezoneSpec::Candidate { .. }) => 120,
        Some(TimezoneSpec::Fixed(name)) => name
            .value
            .parse::<chrono_tz::Tz>()
            .map_or(0, largest_clock_change),
    }
}

/// The spread of a zone's offsets from UTC over the coming years, sampled
/// twice a month, in minutes.
fn largest_clock_change(zone: chrono_tz::Tz) -> i64 {
    use chrono::{Offset, TimeZone};
    let mut offsets = Vec::new();
    for year in 2024..=2060 {
        for month in 1..=12 {
            for day in [1, 15] {
                if let Some(at) = chrono::NaiveDate::from_ymd_opt(year, month, day)
                    .and_then(|d| d.and_hms_opt(12, 0, 0))
                {
                    let offset = zone.offset_from_utc_datetime(&at).fix().local_minus_utc();
                    offsets.push(i64::from(offset) / 60);
                }
            }
        }
    }
    let (min, max) = (offsets.iter().min(), offsets.iter().max());
    match (min, max) {
        (Some(min), Some(max)) => max - min,
        _ => 120,
    }
}

/// The states a state can move to, in the order written.
fn successors<'a>(state: &'a State) -> impl Iterator<Item = &'a str> {
    state.statements.iter().flat_map(|s| {
        let targets: Vec<&'a str> = match &s.kind {
            StatementKind::On { target, .. }
            | StatementKind::After { target, .. }
            | StatementKind::AtDeadline { target }
            | StatementKind::BeforeDeadline { target, .. } => vec![&target.name],
            StatementKind::Split { arms, .. } => {
                arms.iter().map(|a| a.target.name.as_str()).collect()
            }
            StatementKind::Send { .. } | StatementKind::Window(_) | StatementKind::End => {
                Vec::new()
            }
        };
        targets
    })
}

fn send_count(state: &State) -> usize {
    state
        .statements
        .iter()
        .filter(|s| matches!(s.kind, StatementKind::Send { .. }))
        .count()
}

/// The number of sends of the states reachable from the first one, or
/// `None` when a reachable cycle holds a send (a run may send without end).
///
/// Without such a cycle, every state with a send is entered at most once,
/// so the sum bounds the sends of one enrollment.
fn max_sends<'a>(states: &'a [State], table: &HashMap<&'a str, &'a State>) -> Option<usize> {
    let first = states.first()?;
    let mut reachable = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![first.name.name.as_str()];
    while let Some(name) = stack.pop() {
        if !seen.insert(name) {
            continue;
        }
        if let Some(state) = table.get(name) {
            reachable.push(*state);
            stack.extend(successors(state).filter(|t| table.contains_key(t)));
        }
    }
    // A state with a send lies on a cycle when it can reach itself.
    for state in reachable.iter().filter(|s| send_count(s) > 0) {
        let me = state.name.name.as_str();
        let mut seen = HashSet::new();
        let mut stack: Vec<&str> = successors(state).collect();
        while let Some(name) = stack.pop() {
            if name == me {
                return None;
            }
            if !seen.insert(name) {
                continue;
            }
            if let Some(next) = table.get(name) {
                stack.extend(successors(next));
            }
        }
    }
    Some(reachable.iter().map(|s| send_count(s)).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_like_english() {
        assert_eq!(backticked(&["a"], "and"), "`a`");
        assert_eq!(backticked(&["a", "b"], "and"), "`a` and `b`");
        assert_eq!(backticked(&["a", "b", "c"], "or"), "`a`, `b` or `c`");
    }

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(suggest("remnder", ["invite", "reminder"]), Some("reminder"));
        assert_eq!(suggest("emial", CHANNEL_KINDS), Some("email"));
        assert_eq!(suggest("fax", CHANNEL_KINDS), None);
    }

    #[test]
    fn timezone_suggestions() {
        assert_eq!(suggest_timezone("america/chicago"), Some("America/Chicago"));
        assert_eq!(suggest_timezone("Chicago"), Some("America/Chicago"));
        assert_eq!(suggest_timezone("America/Chicgo"), Some("America/Chicago"));
        assert_eq!(suggest_timezone("Mars/Olympus"), None);
        assert!(valid_timezone("Europe/Berlin"));
        assert!(!valid_timezone("Europe/Berlln"));
    }

    fn ident(name: &str) -> Ident {
        Ident {
            name: name.into(),
            span: Span::default(),
        }
    }

    fn statement(kind: StatementKind) -> crate::dsl::ast::Statement {
        crate::dsl::ast::Statement {
            kind,
            span: Span::default(),
        }
    }

    fn send() -> crate::dsl::ast::Statement {
        statement(StatementKind::Send {
            template: Str {
                value: "t".into(),
                span: Span::default(),
            },
            via: None,
        })
    }

    fn on(target: &str) -> crate::dsl::ast::Statement {
        statement(StatementKind::On {
            event: ident("clicked"),
            filter: None,
            target: ident(target),
        })
    }

    fn state(name: &str, statements: Vec<crate::dsl::ast::Statement>) -> State {
        State {
            name: ident(name),
            statements,
            span: Span::default(),
        }
    }

    fn table(states: &[State]) -> HashMap<&str, &State> {
        states.iter().map(|s| (s.name.name.as_str(), s)).collect()
    }

    #[test]
    fn sends_are_counted_over_reachable_states() {
        let states = vec![
            state("a", vec![send(), on("b")]),
            state("b", vec![send(), send(), on("c")]),
            state("c", vec![on("b"), on("d")]),
            state("d", vec![statement(StatementKind::End)]),
            state("island", vec![send(), on("d")]),
        ];
        // b and c form a cycle, and b sends.
        assert_eq!(max_sends(&states, &table(&states)), None);

        let states = vec![
            state("a", vec![send(), on("b")]),
            state("b", vec![send(), send(), on("c")]),
            state("c", vec![on("c"), on("d")]),
            state("d", vec![statement(StatementKind::End)]),
            state("island", vec![send(), on("d")]),
        ];
        // c loops on itself but sends nothing; the island is never entered.
        assert_eq!(max_sends(&states, &table(&states)), Some(3));
    }

    #[test]
    fn template_names_split_into_pieces() {
        let pieces = template_pieces("invite-{copy}-{tone}").unwrap();
        assert_eq!(pieces.len(), 4);
        assert!(template_pieces("invite-{copy").is_err());
        assert!(template_pieces("invite-}").is_err());
        assert!(template_pieces("invite-{Copy}").is_err());
    }
}
