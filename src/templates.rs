//! Message templates: the `*.j2` files of the templates folder, compiled
//! once with minijinja, looked up by name, channel and language as
//! LANGUAGE.md says, and rendered into a subject and a body.
//!
//! The readings this module takes where LANGUAGE.md is silent:
//!
//! - **Printing what does not exist is an error.** Templates render with
//!   minijinja's semi-strict undefined behaviour: printing or iterating a
//!   variable that does not exist fails with the template, the line and the
//!   variable, rather than sending "Hi ," to a candidate. That holds for
//!   custom candidate fields too: a candidate without `shift` cannot be sent
//!   a template that prints `{{ candidate.shift }}`. Testing one is allowed
//!   and false, so the natural way to write optional text works:
//!   `{% if candidate.shift %}Your shift: {{ candidate.shift }}{% endif %}`
//!   (as do `is defined` and `| default("...")`). Fully strict undefined
//!   would turn that `if` into a failed send for every candidate without
//!   the field, a trap `nudge check` cannot see, since it cannot know which
//!   candidates will lack it. Variables the runtime does not know for this
//!   message ([`Vars::deadline`] before a deadline exists) are left
//!   undefined, so they fail the same way instead of printing `none`.
//! - **`nudge check` is strict only where it can know.** [`Templates::check_all`]
//!   reports every top-level name that is not a variable of [`Vars`] (so
//!   `{% if linkk %}` is caught although it would render), then renders
//!   every file with a sample; a `candidate.FIELD` or `variant.NAME` that the
//!   sample lacks is filled with a placeholder, because custom fields and
//!   experiments belong to the data and the campaigns, not to the templates
//!   folder.
//! - **Fields a template needs.** [`Templates::printed`] finds the
//!   candidate fields a file prints, and which of them it prints with no
//!   default, by rendering it with and without each: the core refuses to
//!   enroll a candidate without one that a campaign's template needs
//!   ([`Templates::campaign_files`] says which files a campaign can use), and
//!   `nudge check` lists them per campaign ([`Templates::campaign_fields`]).
//! - **The `Subject:` line** is required on email and optional elsewhere:
//!   when any template's rendered first line starts with `Subject:`, it
//!   (and the blank lines after it) move from the body into
//!   [`Rendered::subject`], so one plain `NAME.j2` serves email and SMS
//!   alike and the SMS never reads "Subject: ...".
//! - **Whitespace.** The body loses its trailing whitespace; an empty body
//!   is an error.
//! - **Escaping.** Only `*.html.j2` files are HTML-escaped; text and SMS
//!   go out as written.
//! - **One SMS segment, measured at the longest.** [`Templates::check_lengths`]
//!   renders every SMS file with [`Vars::longest`]: a link as long as a real
//!   one and the longest values a message realistically carries (the
//!   numbers are on [`Vars::longest`]), and reports each that would cost
//!   more than one segment. A warning, not an error: a longer text still
//!   goes out, it just costs more and arrives in parts. WhatsApp is not
//!   measured: it does not split messages into segments.
//! - **Language tags** match file names without regard to case, and `_` is
//!   read as `-` (`pt_BR` is `pt-BR`). Any tag with a region also tries its
//!   language (`es-MX` tries `es`, `pt-BR` tries `pt`).

use std::collections::HashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use chrono_tz::Tz;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};
use serde::Serialize;

use crate::channels::segments::{measure, Encoding, Segments};
use crate::diag::{Diagnostic, FileId};
use crate::dsl::ast::Span;
use crate::engine::machine::{Machine, TemplatePart};
use crate::engine::{Candidate, Channel, Instant};

/// The extension every template file carries.
const EXTENSION: &str = ".j2";

/// The templates of one folder, compiled once. To pick up edits, load the
/// folder again.
#[derive(Debug)]
pub struct Templates {
    dir: PathBuf,
    env: Environment<'static>,
    /// Every template file, by its lowercased name.
    files: BTreeMap<String, String>,
    /// The files that did not compile, by file name.
    broken: BTreeMap<String, TemplateError>,
    /// The candidate fields each file prints, by file name: worked out the
    /// first time they are asked for ([`Templates::printed`]).
    printed: OnceLock<BTreeMap<String, Vec<Printed>>>,
    /// The files template names resolved to ([`lookup_order`]), asked by
    /// every send: by name, then by channel (`None` for an email's HTML
    /// alternative) and language as given; the key in `files`, or `None`
    /// when there is none.
    resolved: RwLock<HashMap<String, Vec<Resolution>>>,
}

/// One entry of [`Templates`]' `resolved`.
#[derive(Debug)]
struct Resolution {
    channel: Option<Channel>,
    language: Option<String>,
    key: Option<String>,
}

/// A candidate field a template file prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printed {
    /// The field's name (`first_name`).
    pub field: String,
    /// The file renders without it (a `| default(...)`, or printed only
    /// under an `{% if %}`): a candidate without the field is still sent
    /// the message. Otherwise the message fails for such a candidate.
    pub optional: bool,
}

/// A message rendered from a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The `Subject:` line's text, without the `Subject:`.
    pub subject: Option<String>,
    /// The text after the subject line and the blank line under it.
    pub body: String,
}

/// The variables of LANGUAGE.md, built by the runtime for each message.
/// `None` fields are left undefined in the template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vars {
    /// Every field of the candidate, plus `first_name` derived from `name`
    /// when missing (see [`Vars::candidate_fields`]).
    pub candidate: BTreeMap<String, String>,
    /// The campaign sending the message.
    pub campaign: CampaignVars,
    /// The candidate's own tracked interview link.
    pub link: String,
    /// When the link closes, in the candidate's zone
    /// ([`format_deadline`]): "Thu 3 Dec, 14:00 CST". `None` before the
    /// deadline has started, or in a campaign without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// The time until the deadline in words ([`time_left`]): "2 days".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_left: Option<String>,
    /// Each experiment's variant for the candidate (`variant.copy` is `warm`).
    pub variant: BTreeMap<String, String>,
    /// Who signs, from the configuration.
    pub sender: String,
    /// The company, from the configuration.
    pub company: String,
    /// The candidate's unsubscribe page, `public_url/u/TOKEN`, on every
    /// channel ([`beside_tracked`]); email also carries it in its
    /// `List-Unsubscribe` header, for one-click unsubscribe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsubscribe_link: Option<String>,
}

/// The `campaign` variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignVars {
    /// The campaign's identifier (`warehouse_associate`).
    pub name: String,
    /// Its `title` setting; the runtime passes the name when there is none.
    pub title: String,
}

impl Vars {
    /// The `candidate` variable for a candidate: all of its fields, plus
    /// `first_name` (the first word of `name`) when not given.
    pub fn candidate_fields(candidate: &Candidate) -> BTreeMap<String, String> {
        let mut fields = candidate.fields.clone();
        if let Some(first) = candidate.field("first_name") {
            let first = first.to_string();
            fields.entry("first_name".to_string()).or_insert(first);
        }
        fields
            .entry("id".to_string())
            .or_insert_with(|| candidate.id.clone());
        fields
    }

    /// A sample message's variables, for `nudge check`: Ana Ruiz, with a
    /// phone, an email address, a role and a source, and every other
    /// variable set.
    pub fn sample() -> Vars {
        let candidate = Candidate::from_pairs(
            [
                ("id", "sample"),
                ("name", "Ana Ruiz"),
                ("email", "ana@example.com"),
                ("phone", "+15550100"),
                ("role", "Warehouse Associate"),
                ("source", "indeed"),
                ("timezone", "America/Chicago"),
                ("language", "en"),
            ],
            "sample",
        );
        Vars {
            candidate: Vars::candidate_fields(&candidate),
            campaign: CampaignVars {
                name: "sample_campaign".to_string(),
                title: "Warehouse Associate, Dallas DC".to_string(),
            },
            link: "https://jobs.example.com/i/sample".to_string(),
            deadline: Some("Thu 3 Dec, 14:00 CST".to_string()),
            time_left: Some("2 days".to_string()),
            variant: BTreeMap::new(),
            sender: "Dana Ruiz".to_string(),
            company: "Acme Logistics".to_string(),
            unsubscribe_link: Some("https://jobs.example.com/u/sample".to_string()),
        }
    }

    /// The longest values a message realistically carries, for measuring
    /// SMS ([`Templates::check_lengths`]): the link is `tracked_link` with
    /// a token as long as a real one ([`real_length_link`]), and the rest
    /// are at these lengths, long enough for nearly every candidate and
    /// setup (a longer value makes a longer text, which still goes out):
    ///
    /// | variable | characters | value |
    /// |---|---|---|
    /// | `candidate.first_name` | 11 | `Christopher` |
    /// | `candidate.name` | 24 | `Christopher Papadopoulos` |
    /// | `candidate.role`, `campaign.title` | 30 | `Warehouse Associate, Dallas DC` |
    /// | `campaign.name` | 30 | `warehouse_associate_dallas_dc` |
    /// | `company` | 16 | `Acme Freight Inc` |
    /// | `sender` | 10 | `Alexandrea`: a first name, as it signs "I'm Alex" |
    /// | `deadline` | 23 | the longest [`format_deadline`] writes: two-digit day, a five-character zone |
    /// | `time_left` | 18 | the longest [`time_left`] writes: `less than a minute` |
    ///
    /// Every value is GSM-7: a name outside it (`María`) turns any text
    /// into UCS-2, whatever the template, so it says nothing about one.
    /// `nudge check` puts the configured `company` and `sender` in place
    /// of these when there is a configuration, since every message carries
    /// exactly those.
    pub fn longest(tracked_link: &str) -> Vars {
        let candidate = Candidate::from_pairs(
            [
                ("id", "c1234567"),
                ("name", "Christopher Papadopoulos"),
                ("first_name", "Christopher"),
                ("email", "christopher.papadopoulos@example.com"),
                ("phone", "+15550100"),
                ("role", "Warehouse Associate, Dallas DC"),
                ("source", "indeed"),
                ("timezone", "Asia/Kathmandu"),
                ("language", "en"),
            ],
            "c1234567",
        );
        // The last minute of a two-digit day, in a zone chrono-tz writes as
        // an offset (`+0545`): as long as a deadline gets.
        let deadline = chrono::DateTime::parse_from_rfc3339("2026-09-30T18:14:00Z")
            .map(|d| format_deadline(d.to_utc(), chrono_tz::Asia::Kathmandu))
            .unwrap_or_default();
        let now = chrono::DateTime::UNIX_EPOCH;
        let link = real_length_link(tracked_link);
        Vars {
            candidate: Vars::candidate_fields(&candidate),
            campaign: CampaignVars {
                name: "warehouse_associate_dallas_dc".to_string(),
                title: "Warehouse Associate, Dallas DC".to_string(),
            },
            unsubscribe_link: beside_tracked(&link, "u", ""),
            link,
            deadline: Some(deadline),
            time_left: Some(time_left(now, now)),
            variant: BTreeMap::new(),
            sender: "Alexandrea".to_string(),
            company: "Acme Freight Inc".to_string(),
        }
    }
}

/// A link token as long as the longest real one the store will make for
/// years: the candidate id with a seven-digit number, `-`, and 128 random
/// bits in hex (see `runtime::core::enroll::new_token`).
pub const REAL_LENGTH_TOKEN: &str = "c1234567-9f86d081884c7d659a2feaa0c55ad015";

/// A candidate page's address beside their tracked link, which is always
/// `public_url/i/TOKEN` (`[server] public_url`): `page` in place of `i`,
/// and `suffix` after the token. `None` when `link` is not of that shape
/// (a candidate whose record could not be read has no link).
pub fn beside_tracked(link: &str, page: &str, suffix: &str) -> Option<String> {
    // Built for every send: the token holds no `/`, so the last `/` is
    // the one of `/i/`; one byte scan from the end and one allocation (a
    // `str` pattern search and `format!` were 3% of a firing's
    // instructions).
    let bytes = link.as_bytes();
    let slash = bytes.iter().rposition(|&b| b == b'/')?;
    if slash < 2 || &bytes[slash - 2..slash] != b"/i" {
        return None;
    }
    let (base, token) = (&link[..slash - 2], &link[slash + 1..]);
    if token.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(link.len() + page.len() + suffix.len());
    out.push_str(base);
    out.push('/');
    out.push_str(page);
    out.push('/');
    out.push_str(token);
    out.push_str(suffix);
    Some(out)
}

/// `tracked_link` with [`REAL_LENGTH_TOKEN`] for `{token}`: what a
/// candidate's link looks like, at its length.
pub fn real_length_link(tracked_link: &str) -> String {
    tracked_link.replace("{token}", REAL_LENGTH_TOKEN)
}

/// The candidate fields a campaign's templates print
/// ([`Templates::campaign_fields`]), worded on one line for `nudge check`:
/// "campaign `invite`: templates print candidate.first_name (optional),
/// candidate.shift (required by invite.sms.j2)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignFields {
    pub campaign: String,
    /// By field name.
    pub fields: BTreeMap<String, FieldUse>,
}

/// The files that print one field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldUse {
    /// Files that print it with no default: enrolling a candidate without
    /// it is refused.
    pub required: BTreeSet<String>,
    /// Files that print it with a default or under an `{% if %}`.
    pub optional: BTreeSet<String>,
}

impl fmt::Display for CampaignFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "campaign `{}`: templates print ", self.campaign)?;
        if self.fields.is_empty() {
            return f.write_str("no candidate field");
        }
        let words: Vec<String> = self
            .fields
            .iter()
            .map(|(field, used)| {
                if used.required.is_empty() {
                    format!("candidate.{field} (optional)")
                } else {
                    let files: Vec<&str> = used.required.iter().map(String::as_str).collect();
                    format!("candidate.{field} (required by {})", files.join(", "))
                }
            })
            .collect();
        f.write_str(&words.join(", "))
    }
}

/// An SMS template that can render to more than one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLong {
    /// The template file.
    pub file: String,
    /// The channel it is measured for.
    pub channel: Channel,
    /// Its size rendered with [`Vars::longest`].
    pub size: Segments,
}

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.size.encoding {
            Encoding::Gsm7 => "characters",
            Encoding::Ucs2 => "UTF-16 units",
        };
        write!(
            f,
            "{} `{}` can render to {} {unit}, over the {} of one segment",
            self.channel,
            self.file,
            self.size.units,
            self.size.encoding.single_segment()
        )
    }
}

impl TooLong {
    /// The note under the caret.
    pub fn label(&self) -> String {
        format!(
            "{} with a real-length link and the longest names",
            self.size
        )
    }

    /// The hint.
    pub fn help(&self) -> String {
        let over = self.size.units - self.size.encoding.single_segment();
        let mut help = format!(
            "shorten it by {over}: a longer text costs {} messages and may arrive in parts",
            self.size.segments
        );
        if self.size.encoding == Encoding::Ucs2 {
            help.push_str(
                "; a character outside GSM-7 (such as `á`, `í`, `ó`, `ú` or an emoji) makes the whole text UCS-2, 70 to a segment",
            );
        }
        help
    }

    /// The warning as a diagnostic on the template's text, `file` in
    /// `sources`.
    pub fn diagnostic(&self, file: FileId, source: &str) -> Diagnostic {
        let text = source.trim_end();
        let start = text.len() - text.trim_start().len();
        Diagnostic::warning(file, Span::new(start, text.len()), self.to_string())
            .with_label(self.label())
            .with_help(self.help())
    }
}

/// Why a template could not be loaded, found or rendered.
#[derive(Debug, Clone)]
pub enum TemplateError {
    /// The folder or a file in it could not be read.
    Io {
        path: PathBuf,
        source: Arc<io::Error>,
    },
    /// A file is not valid minijinja.
    Syntax {
        file: String,
        line: Option<usize>,
        message: String,
    },
    /// Rendering used a variable that does not exist.
    Undefined {
        template: String,
        line: Option<usize>,
        variable: String,
    },
    /// Rendering failed otherwise (a bad filter argument, ...).
    Render {
        template: String,
        line: Option<usize>,
        message: String,
    },
    /// No file serves this template on this channel.
    Missing {
        name: String,
        channel: Channel,
        /// The file names looked for, in order.
        tried: Vec<String>,
    },
    /// An email template whose first line is not `Subject: ...`.
    NoSubject { template: String },
    /// A template that rendered to nothing.
    EmptyBody { template: String },
}

/// " line N" when the line is known.
struct At(Option<usize>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, " line {line}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TemplateError::*;
        match self {
            Io { path, source } => write!(f, "cannot read `{}`: {source}", path.display()),
            Syntax {
                file,
                line,
                message,
            } => write!(
                f,
                "syntax error in template `{file}`{}: {message}",
                At(*line)
            ),
            Undefined {
                template,
                line,
                variable,
            } => write!(
                f,
                "template `{template}`{}: `{variable}` is undefined",
                At(*line)
            ),
            Render {
                template,
                line,
                message,
            } => write!(f, "template `{template}`{}: {message}", At(*line)),
            Missing {
                name,
                channel,
                tried,
            } => write!(
                f,
                "no template `{name}` for {channel}: tried {}",
                tried
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            NoSubject { template } => write!(
                f,
                "email template `{template}` does not start with a `Subject:` line"
            ),
            EmptyBody { template } => write!(f, "template `{template}` renders to nothing"),
        }
    }
}

impl std::error::Error for TemplateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TemplateError::Io { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

impl Templates {
    /// Reads and compiles every `*.j2` file in `dir`; the first file (by
    /// name) that does not compile is an error naming the file, the line and
    /// the problem.
    pub fn load(dir: &Path) -> Result<Templates, TemplateError> {
        let (templates, mut broken) = Templates::load_partial(dir)?;
        if broken.is_empty() {
            Ok(templates)
        } else {
            Err(broken.swap_remove(0))
        }
    }

    /// Like [`Templates::load`], but keeps going: returns the templates
    /// with every syntax error, in file name order (`nudge check` reports
    /// them all). Rendering a broken file gives its syntax error. Only an
    /// unreadable folder or file is an `Err`.
    pub fn load_partial(dir: &Path) -> Result<(Templates, Vec<TemplateError>), TemplateError> {
        let io_error = |path: &Path, e: io::Error| TemplateError::Io {
            path: path.to_path_buf(),
            source: Arc::new(e),
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
            let entry = entry.map_err(|e| io_error(dir, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let is_file = entry.file_type().map_err(|e| io_error(&entry.path(), e))?;
            if name.ends_with(EXTENSION) && !is_file.is_dir() {
                names.push(name);
            }
        }
        names.sort();

        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html.j2") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        let mut files = BTreeMap::new();
        let mut broken = BTreeMap::new();
        for name in names {
            let path = dir.join(&name);
            let source = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
            if let Err(e) = env.add_template_owned(name.clone(), source) {
                let error = TemplateError::Syntax {
                    file: name.clone(),
                    line: e.line(),
                    message: e
                        .detail()
                        .map_or_else(|| e.kind().to_string(), str::to_string),
                };
                broken.insert(name.clone(), error);
            }
            files.insert(name.to_lowercase(), name);
        }
        let errors = broken.values().cloned().collect();
        let templates = Templates {
            dir: dir.to_path_buf(),
            env,
            files,
            broken,
            printed: OnceLock::new(),
            resolved: RwLock::default(),
        };
        Ok((templates, errors))
    }

    /// The folder the templates were read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every template file name, sorted.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.files.values().map(String::as_str)
    }

    /// The file a template name resolves to for a channel and a language,
    /// trying [`lookup_order`]'s names in turn.
    pub fn resolve(&self, name: &str, channel: Channel, language: Option<&str>) -> Option<&str> {
        self.resolved(name, Some(channel), language, || {
            lookup_order(name, channel, language)
                .into_iter()
                .map(|file| file.to_lowercase())
                .find(|key| self.files.contains_key(key))
        })
    }

    /// The file `find` names (a key of `files`), worked out once per name,
    /// channel and language.
    fn resolved(
        &self,
        name: &str,
        channel: Option<Channel>,
        language: Option<&str>,
        find: impl FnOnce() -> Option<String>,
    ) -> Option<&str> {
        let same = |r: &&Resolution| r.channel == channel && r.language.as_deref() == language;
        {
            let cache = self.resolved.read().unwrap_or_else(|e| e.into_inner());
            if let Some(hit) = cache.get(name).and_then(|all| all.iter().find(same)) {
                return hit
                    .key
                    .as_ref()
                    .and_then(|k| self.files.get(k))
                    .map(String::as_str);
            }
        }
        let key = find();
        let file = key
            .as_ref()
            .and_then(|k| self.files.get(k))
            .map(String::as_str);
        let mut cache = self.resolved.write().unwrap_or_else(|e| e.into_inner());
        let all = cache.entry(name.to_string()).or_default();
        if !all.iter().any(|r| same(&r)) {
            all.push(Resolution {
                channel,
                language: language.map(str::to_string),
                key,
            });
        }
        file
    }

    /// Renders template `name` for a message on `channel` to a candidate
    /// speaking `language`.
    pub fn render(
        &self,
        name: &str,
        channel: Channel,
        language: Option<&str>,
        vars: &Vars,
    ) -> Result<Rendered, TemplateError> {
        let file = self
            .resolve(name, channel, language)
            .ok_or_else(|| TemplateError::Missing {
                name: name.to_string(),
                channel,
                tried: lookup_order(name, channel, language),
            })?;
        self.render_file(file, Some(channel), Value::from(Serde(vars)))
    }

    /// The HTML alternative of an email, when an `NAME.email.html.j2` (or
    /// `NAME.LANG.email.html.j2`) file exists: rendered with HTML escaping.
    pub fn render_html(
        &self,
        name: &str,
        language: Option<&str>,
        vars: &Vars,
    ) -> Result<Option<String>, TemplateError> {
        match self.html_file(name, language) {
            Some(file) => Ok(Some(
                self.render_file(file, None, Value::from(Serde(vars)))?.body,
            )),
            None => Ok(None),
        }
    }

    /// The file of an email's HTML alternative, if there is one.
    fn html_file(&self, name: &str, language: Option<&str>) -> Option<&str> {
        self.resolved(name, None, language, || {
            lookup_order(name, Channel::Email, language)
                .into_iter()
                .filter(|f| f.contains(".email."))
                .map(|f| format!("{}.html{EXTENSION}", f.trim_end_matches(EXTENSION)))
                .map(|f| f.to_lowercase())
                .find(|key| self.files.contains_key(key))
        })
    }

    /// Checks every template file with `sample` (see the module notes for
    /// what is filled in) and returns every error, in file name order.
    /// A file named for a channel (`NAME.email.j2`, `NAME.es.email.j2`) is
    /// checked as that channel's, so an email file needs its subject (its
    /// HTML alternative, `NAME.email.html.j2`, does not).
    pub fn check_all(&self, sample: &Vars) -> Vec<TemplateError> {
        // Every variable a message can have: the full sample's, and any
        // the caller's sample adds.
        let known: BTreeSet<String> = [Vars::sample(), sample.clone()]
            .into_iter()
            .flat_map(|vars| Value::from(Serde(vars)).try_iter().into_iter().flatten())
            .map(|key| key.to_string())
            .collect();
        let mut errors = Vec::new();
        for file in self.files.values() {
            if let Some(error) = self.broken.get(file) {
                errors.push(error.clone());
                continue;
            }
            let Ok(template) = self.env.get_template(file) else {
                continue;
            };
            let mut unknown = BTreeSet::new();
            for name in template.undeclared_variables(false) {
                let global = self.env.globals().any(|(global, _)| global == name);
                if !known.contains(&name) && !global {
                    errors.push(TemplateError::Undefined {
                        template: file.clone(),
                        line: first_line_naming(template.source(), &name),
                        variable: name.clone(),
                    });
                    unknown.insert(name);
                }
            }
            let vars = filled(&template, sample);
            // An HTML alternative has no subject line of its own.
            let channel = channel_of(file).filter(|_| !file.ends_with(".html.j2"));
            match self.render_file(file, channel, Value::from(Serde(&vars))) {
                Err(TemplateError::Undefined { variable, .. })
                    if unknown.iter().any(|name| root_of(&variable) == name) => {}
                Err(error) => errors.push(error),
                Ok(_) => {}
            }
        }
        errors
    }

    /// Renders every SMS file with `longest` (normally [`Vars::longest`];
    /// a `candidate.FIELD` or `variant.NAME` it lacks is filled as
    /// [`Templates::check_all`] does) and returns those that cost more than
    /// one segment, in file name order. A file that does not render is
    /// [`Templates::check_all`]'s to report, not this.
    pub fn check_lengths(&self, longest: &Vars) -> Vec<TooLong> {
        let mut long = Vec::new();
        for file in self.files.values() {
            let channel = channel_of(file).filter(|_| !file.ends_with(".html.j2"));
            // WhatsApp sends a text whole, up to 4096 characters: only SMS
            // is cut into segments.
            if channel != Some(Channel::Sms) {
                continue;
            }
            let Ok(template) = self.env.get_template(file) else {
                continue;
            };
            let vars = filled(&template, longest);
            let Ok(rendered) = self.render_file(file, channel, Value::from(Serde(&vars))) else {
                continue;
            };
            let size = measure(&rendered.body);
            if size.segments > 1 {
                long.push(TooLong {
                    file: file.clone(),
                    channel: Channel::Sms,
                    size,
                });
            }
        }
        long
    }

    /// The candidate fields template file `file` prints, in name order
    /// (none for a file that does not render with the sample).
    ///
    /// Found by rendering, so that it means what sending means: a field is
    /// printed when a value given to it shows in the rendered message, and
    /// optional when the file still renders without it. A field printed
    /// only in a branch the sample does not take (`{% if variant.copy ==
    /// "warm" %}`) is not seen.
    pub fn printed(&self, file: &str) -> &[Printed] {
        let all = self.printed.get_or_init(|| {
            self.files
                .values()
                .map(|f| (f.clone(), self.find_printed(f)))
                .collect()
        });
        all.get(file).map_or(&[], Vec::as_slice)
    }

    fn find_printed(&self, file: &str) -> Vec<Printed> {
        let Ok(template) = self.env.get_template(file) else {
            return Vec::new();
        };
        let base = filled(&template, &Vars::sample());
        let channel = channel_of(file).filter(|_| !file.ends_with(".html.j2"));
        let fields: BTreeSet<String> = template
            .undeclared_variables(true)
            .iter()
            .filter_map(|v| v.strip_prefix("candidate."))
            .map(|f| root_of(f).to_string())
            .filter(|f| f != "id")
            .collect();
        let mut printed = Vec::new();
        for field in fields {
            let marker = format!("nudgemarker{field}nudgemarker").to_lowercase();
            let mut present = base.clone();
            present.candidate.insert(field.clone(), marker.clone());
            let Ok(rendered) = self.render_file(file, channel, Value::from(Serde(&present))) else {
                continue;
            };
            let shown = |text: &str| text.to_lowercase().contains(&marker);
            if !shown(&rendered.body) && !rendered.subject.as_deref().is_some_and(shown) {
                continue;
            }
            let mut absent = base.clone();
            absent.candidate.remove(&field);
            let optional = self
                .render_file(file, channel, Value::from(Serde(&absent)))
                .is_ok();
            printed.push(Printed { field, optional });
        }
        printed
    }

    /// The files a campaign's sends can be rendered from, each with the
    /// channel it goes on, for a candidate speaking `language`: every
    /// variant of a name with `{experiment}`, the `via` channel or else
    /// each of the campaign's channels (the first with an address is used,
    /// the later ones are fallbacks), an email's HTML alternative too.
    /// Sorted, without repeats; templates with no file are left out (the
    /// campaign check reports them).
    pub fn campaign_files(
        &self,
        machine: &Machine,
        language: Option<&str>,
    ) -> Vec<(&str, Channel)> {
        let mut out = BTreeSet::new();
        for send in machine.states.iter().flat_map(|s| &s.sends) {
            let mut names = vec![String::new()];
            for part in &send.template.parts {
                match part {
                    TemplatePart::Text(t) => names.iter_mut().for_each(|n| n.push_str(t)),
                    TemplatePart::Variant(e) => {
                        let variants = machine.experiments.get(*e).map_or(&[][..], |x| &x.variants);
                        names = names
                            .iter()
                            .flat_map(|n| variants.iter().map(move |(v, _)| format!("{n}{v}")))
                            .collect();
                    }
                }
            }
            let channels = match send.via {
                Some(via) => vec![via],
                None => machine.channels.clone(),
            };
            for name in &names {
                for &channel in &channels {
                    if let Some(file) = self.resolve(name, channel, language) {
                        out.insert((file, channel));
                    }
                    if channel == Channel::Email {
                        if let Some(html) = self.html_file(name, language) {
                            out.insert((html, channel));
                        }
                    }
                }
            }
        }
        out.into_iter().collect()
    }

    /// The candidate fields `machine`'s templates print, in every language
    /// the folder has (for `nudge check`).
    pub fn campaign_fields(&self, machine: &Machine) -> CampaignFields {
        let mut fields: BTreeMap<String, FieldUse> = BTreeMap::new();
        let languages = self.languages();
        let languages = std::iter::once(None).chain(languages.iter().map(|l| Some(l.as_str())));
        for language in languages {
            for (file, _) in self.campaign_files(machine, language) {
                for printed in self.printed(file) {
                    let used = fields.entry(printed.field.clone()).or_default();
                    let files = if printed.optional {
                        &mut used.optional
                    } else {
                        &mut used.required
                    };
                    files.insert(file.to_string());
                }
            }
        }
        CampaignFields {
            campaign: machine.name.clone(),
            fields,
        }
    }

    /// Every language some file is written in (`es` for
    /// `invite.es.email.j2`), lowercased and sorted.
    pub fn languages(&self) -> BTreeSet<String> {
        self.files
            .keys()
            .filter_map(|f| f.strip_suffix(EXTENSION))
            .flat_map(|stem| stem.split('.').skip(1))
            .filter(|part| *part != "html" && Channel::from_name(part).is_none())
            .map(str::to_string)
            .collect()
    }

    /// The text of a template file, as read.
    pub fn source(&self, file: &str) -> Option<String> {
        self.env
            .get_template(file)
            .ok()
            .map(|t| t.source().to_string())
    }

    fn render_file(
        &self,
        file: &str,
        channel: Option<Channel>,
        ctx: Value,
    ) -> Result<Rendered, TemplateError> {
        if let Some(error) = self.broken.get(file) {
            return Err(error.clone());
        }
        let template = self
            .env
            .get_template(file)
            .map_err(|e| render_error(file, "", e))?;
        let text = template
            .render(ctx)
            .map_err(|e| render_error(file, template.source(), e))?;
        split_subject(file, channel, &text)
    }
}

/// `sample` with a placeholder (`[shift]`) for each `candidate.FIELD` and
/// `variant.NAME` the template uses and the sample lacks.
fn filled(template: &minijinja::Template<'_, '_>, sample: &Vars) -> Vars {
    let mut vars = sample.clone();
    for variable in template.undeclared_variables(true) {
        let mut parts = variable.splitn(3, '.');
        let (Some(root), Some(key)) = (parts.next(), parts.next()) else {
            continue;
        };
        let map = match root {
            "candidate" => &mut vars.candidate,
            "variant" => &mut vars.variant,
            _ => continue,
        };
        map.entry(key.to_string())
            .or_insert_with(|| format!("[{key}]"));
    }
    vars
}

/// The file names a template name is looked for under, in order:
/// `NAME.LANG.CHANNEL.j2`, `NAME.LANG.j2` (then the same for the tag's
/// language alone: `pt` for `pt-BR`), `NAME.CHANNEL.j2`, `NAME.j2`.
pub fn lookup_order(name: &str, channel: Channel, language: Option<&str>) -> Vec<String> {
    let mut languages = Vec::new();
    if let Some(tag) = language.map(|l| l.trim().replace('_', "-")) {
        if !tag.is_empty() {
            if let Some((primary, _)) = tag.split_once('-') {
                let primary = primary.to_string();
                languages.push(tag);
                if !primary.is_empty() {
                    languages.push(primary);
                }
            } else {
                languages.push(tag);
            }
        }
    }
    let mut order = Vec::new();
    for lang in &languages {
        order.push(format!("{name}.{lang}.{channel}{EXTENSION}"));
        order.push(format!("{name}.{lang}{EXTENSION}"));
    }
    order.push(format!("{name}.{channel}{EXTENSION}"));
    order.push(format!("{name}{EXTENSION}"));
    order
}

/// The first line of `source` (from 1) where `name` appears as a word.
fn first_line_naming(source: &str, name: &str) -> Option<usize> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    source
        .lines()
        .position(|line| {
            line.match_indices(name).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + name.len()..].chars().next();
                !before.is_some_and(word) && !after.is_some_and(word)
            })
        })
        .map(|index| index + 1)
}

/// `candidate` for `candidate.shift`.
fn root_of(variable: &str) -> &str {
    variable.split(['.', '[']).next().unwrap_or(variable)
}

/// The channel a file name is for (`x.es.email.j2` → email), if it names
/// one.
fn channel_of(file: &str) -> Option<Channel> {
    let stem = file.strip_suffix(EXTENSION)?;
    let stem = stem.strip_suffix(".html").unwrap_or(stem);
    let (_, last) = stem.rsplit_once('.')?;
    Channel::from_name(&last.to_lowercase())
}

fn render_error(file: &str, source: &str, e: minijinja::Error) -> TemplateError {
    let template = e.name().unwrap_or(file).to_string();
    let line = e.line();
    if e.kind() == ErrorKind::UndefinedError {
        // minijinja names the variable in backticks; else the source span.
        let named = e
            .detail()
            .and_then(|d| d.split('`').nth(1))
            .filter(|v| !v.is_empty());
        let spanned = e
            .range()
            .and_then(|r| source.get(r))
            .map(str::trim)
            .filter(|v| !v.is_empty());
        if let Some(variable) = named.or(spanned) {
            return TemplateError::Undefined {
                template,
                line,
                variable: variable.to_string(),
            };
        }
    }
    TemplateError::Render {
        template,
        line,
        message: e
            .detail()
            .map_or_else(|| e.kind().to_string(), str::to_string),
    }
}

/// Moves a leading `Subject:` line out of the body.
fn split_subject(
    file: &str,
    channel: Option<Channel>,
    text: &str,
) -> Result<Rendered, TemplateError> {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let first = first.trim_start_matches('\u{feff}');
    let subject = first
        .get(.."Subject:".len())
        .filter(|prefix| prefix.eq_ignore_ascii_case("Subject:"))
        .map(|_| first["Subject:".len()..].trim().to_string());
    let (subject, body) = match subject {
        Some(subject) => (Some(subject), rest.trim_start_matches(['\r', '\n'])),
        None => (None, text),
    };
    if channel == Some(Channel::Email) && subject.as_deref().is_none_or(str::is_empty) {
        return Err(TemplateError::NoSubject {
            template: file.to_string(),
        });
    }
    let body = body.trim_end();
    if body.is_empty() {
        return Err(TemplateError::EmptyBody {
            template: file.to_string(),
        });
    }
    Ok(Rendered {
        subject: subject.filter(|s| !s.is_empty()),
        body: body.to_string(),
    })
}

/// A deadline as the candidate reads it, in their zone: "Thu 3 Dec, 14:00
/// CST".
pub fn format_deadline(deadline: Instant, zone: Tz) -> String {
    deadline
        .with_timezone(&zone)
        .format("%a %-d %b, %H:%M %Z")
        .to_string()
}

/// The time from `now` to `deadline` in words: "2 days", "1 day",
/// "36 hours", "5 hours", "45 minutes". Days from 47½ hours on, rounded to
/// the nearest day (a half rounds down, so the candidate is never told
/// more than half a day too much); "1 day" for 23½ to 24½ hours; hours
/// otherwise from an hour on; minutes below that; "less than a minute" at
/// or after the deadline. Never "0 days".
pub fn time_left(now: Instant, deadline: Instant) -> String {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    let secs = (deadline - now).num_seconds();
    // Nearest multiple of `unit`, a half rounding down.
    let nearest = |unit: i64| (secs + unit / 2 - 1).div_euclid(unit);
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    if secs < MINUTE {
        return "less than a minute".to_string();
    }
    let minutes = nearest(MINUTE).max(1);
    if minutes < 60 {
        return plural(minutes, "minute");
    }
    let hours = nearest(HOUR).max(1);
    if hours == 24 {
        plural(1, "day")
    } else if hours < 48 {
        plural(hours, "hour")
    } else {
        plural(nearest(DAY), "day")
    }
}
