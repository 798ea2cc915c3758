//! The parser: campaign text → [`ast::File`], or syntax errors in words.
//!
//! This is the only module that sees pest's pairs. It owns three things:
//! - one `parse_<rule>` function per grammar rule, turning pairs into typed
//!   AST nodes with byte spans, and returning an internal-error diagnostic
//!   (never panicking) when a pair does not have the shape the grammar says;
//! - the wording of syntax errors ([`SyntaxError`]), with pest's expected-rule
//!   sets named in words by one exhaustive `match` over [`Rule`];
//! - error recovery: pest stops at the first error, so a broken file is cut
//!   into campaigns, campaign items and state statements that are re-parsed
//!   on their own, to report every error rather than the first.
//!
//! Comments are silent in the grammar and collected by a small scanner.

use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::{Pair, Pairs};
use pest::Parser as _;

use crate::diag::{Diagnostic, FileId};
use crate::dsl::ast::{
    self, Campaign, Comment, CompareOp, Day, DayRange, Duration, DurationUnit, Experiment, Expr,
    ExprKind, Ident, Int, Limit, Path, Setting, SettingKind, SplitArm, State, Statement,
    StatementKind, Str, TimeOfDay, TimezoneSpec, Value, Variant, Window,
};
use ast::Span;

mod grammar {
    #[derive(pest_derive::Parser)]
    #[grammar = "grammar/campaign.pest"]
    pub struct CampaignParser;
}

use grammar::{CampaignParser, Rule};

/// Parses one `.nudge` file.
///
/// On success every node of the returned tree carries the byte span of its
/// text in `source`, and `comments` holds every `# ...` comment. On failure
/// the diagnostics (all errors found, in source order) have spans relative to
/// the whole of `source`, on character boundaries.
pub fn parse(file: FileId, source: &str) -> Result<ast::File, Vec<Diagnostic>> {
    let (tree, errors) = parse_recovering(file, source);
    if errors.is_empty() {
        Ok(tree)
    } else {
        Err(errors)
    }
}

/// Parses one `.nudge` file as far as it goes: every syntax error, and the
/// campaigns whose beginning (`campaign NAME {`) parsed. A campaign with a
/// syntax error inside keeps the items that parsed and is marked not
/// [`complete`](ast::Campaign::complete), so that the checker can still
/// report what does not depend on the missing text.
pub fn parse_recovering(file: FileId, source: &str) -> (ast::File, Vec<Diagnostic>) {
    let comments = scan_comments(source);
    let mut errors = Vec::new();
    let campaigns = match CampaignParser::parse(Rule::file, source) {
        Ok(pairs) => {
            let b = Builder { file, offset: 0 };
            match single(pairs, Rule::file, Span::new(0, source.len()), file) {
                Ok(pair) => parse_file(b, pair, &mut errors),
                Err(d) => {
                    errors.push(*d);
                    Vec::new()
                }
            }
        }
        Err(first) => {
            let mut recovery = Recovery {
                file,
                src: source,
                errors: Vec::new(),
                campaigns: Vec::new(),
            };
            recovery.file();
            errors = recovery.errors;
            if errors.is_empty() {
                errors.push(pest_diagnostic(file, source, 0, &first, Eoi::File));
            }
            recovery.campaigns
        }
    };
    errors.sort_by_key(|d| (d.span.start, d.span.end));
    errors.dedup();
    let tree = ast::File {
        campaigns,
        comments,
    };
    (tree, errors)
}

// ---------------------------------------------------------------------------
// Wording

/// Every syntax error the parser reports; all the wording lives here.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SyntaxError {
    /// Pest could not go on: what it expected there, in words.
    Expected {
        expected: Vec<&'static str>,
        found: Option<String>,
        hint: Option<Hint>,
    },
    UnterminatedString,
    UnknownEscape {
        escape: String,
    },
    HourOutOfRange {
        time: String,
    },
    MinuteOutOfRange {
        time: String,
    },
    NumberTooLarge {
        number: String,
    },
    /// A `{` with no `}`: `found` is what stands where the `}` should be.
    Unclosed {
        what: &'static str,
        name: String,
        found: Option<String>,
        open: Span,
    },
    TooDeep,
    Internal {
        detail: String,
    },
}

/// Advice attached to an [`SyntaxError::Expected`] for a common mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hint {
    DurationSpace {
        fixed: String,
    },
    DurationUnitWord {
        fixed: String,
    },
    DurationUnknownUnit {
        unit: String,
    },
    DurationNoUnit {
        amount: String,
    },
    TimePadding {
        fixed: String,
    },
    DaysFirst,
    DayName {
        fixed: String,
    },
    Days,
    DoubleQuotes,
    KeywordCase {
        keyword: String,
    },
    NameCase,
    DidYouMean {
        word: String,
    },
    SettingInState {
        word: String,
    },
    StatementInCampaign {
        word: String,
    },
    Settings,
    Statements,
    /// Something other than `until decided` after an experiment's `}`.
    UntilDecided,
    MissingBrace {
        word: String,
    },
    OutsideCampaign,
    MissingComma,
    DoubleEquals,
    StrayBrace,
}

const SETTING_KEYWORDS: [&str; 10] = [
    "title", "enroll", "channels", "timezone", "window", "limit", "deadline", "goal", "exit",
    "link",
];
const STATEMENT_KEYWORDS: [&str; 8] = [
    "send", "on", "after", "at", "before", "split", "window", "end",
];
/// Keywords that start neither a setting nor a statement.
const OTHER_KEYWORDS: [&str; 16] = [
    "campaign",
    "experiment",
    "state",
    "where",
    "and",
    "or",
    "not",
    "in",
    "matches",
    "via",
    "candidate",
    "per",
    "total",
    "enrollment",
    "until",
    "decided",
];

impl SyntaxError {
    fn into_diagnostic(self, file: FileId, span: Span) -> Diagnostic {
        match self {
            SyntaxError::Expected {
                expected,
                found,
                hint,
            } => {
                let found = describe_found(found.as_deref());
                let (message, label) = if expected.is_empty() {
                    (format!("unexpected {found}"), "unexpected here".to_owned())
                } else {
                    let list = join_or(&expected);
                    let label = if expected.len() <= 3 {
                        format!("expected {list}")
                    } else {
                        "unexpected here".to_owned()
                    };
                    (format!("expected {list}, found {found}"), label)
                };
                let d = Diagnostic::error(file, span, message).with_label(label);
                match hint {
                    Some(h) => d.with_help(h.help()),
                    None => d,
                }
            }
            SyntaxError::UnterminatedString => Diagnostic::error(file, span, "unterminated string")
                .with_label("this string has no closing `\"` on its line")
                .with_help("close the string with `\"`; write a line break inside it as `\\n`"),
            SyntaxError::UnknownEscape { escape } => {
                Diagnostic::error(file, span, format!("unknown escape `{escape}` in string"))
                    .with_label("unknown escape")
                    .with_help("the escapes are `\\\"`, `\\\\` and `\\n`")
            }
            SyntaxError::HourOutOfRange { time } => {
                Diagnostic::error(file, span, format!("invalid time `{time}`"))
                    .with_label("hours run from 00 to 23")
                    .with_help("times use the 24-hour clock, `00:00` to `23:59`")
            }
            SyntaxError::MinuteOutOfRange { time } => {
                Diagnostic::error(file, span, format!("invalid time `{time}`"))
                    .with_label("minutes run from 00 to 59")
                    .with_help("times use the 24-hour clock, `00:00` to `23:59`")
            }
            SyntaxError::NumberTooLarge { number } => {
                Diagnostic::error(file, span, format!("number `{number}` is too large"))
                    .with_label("too large")
            }
            SyntaxError::Unclosed {
                what,
                name,
                found,
                open,
            } => Diagnostic::error(
                file,
                span,
                format!(
                    "expected `}}` to close {what} `{name}`, found {}",
                    describe_found(found.as_deref())
                ),
            )
            .with_label("expected `}` before this")
            .with_secondary(open, format!("{what} `{name}` opens here"))
            .with_help(format!("add `}}` at the end of {what} `{name}`")),
            SyntaxError::TooDeep => Diagnostic::error(file, span, "expression nested too deeply")
                .with_label("too many nested parentheses or `not`s")
                .with_help("split the condition into simpler parts"),
            SyntaxError::Internal { detail } => {
                Diagnostic::error(file, span, format!("internal parser error: {detail}"))
                    .with_label("the parser did not expect this")
                    .with_help("this is a bug in nudge; please report it with this campaign file")
            }
        }
    }
}

impl Hint {
    fn help(&self) -> String {
        match self {
            Hint::DurationSpace { fixed } => format!("durations have no space: write `{fixed}`"),
            Hint::DurationUnitWord { fixed } => {
                format!("durations use the units m, h, d and w: write `{fixed}`")
            }
            Hint::DurationUnknownUnit { unit } => {
                format!("unknown unit `{unit}`: use m, h, d or w")
            }
            Hint::DurationNoUnit { amount } => {
                format!("a duration needs a unit, m, h, d or w: for example `{amount}h`")
            }
            Hint::TimePadding { fixed } => format!("times have two-digit hours: write `{fixed}`"),
            Hint::DaysFirst => {
                "a window names its days first: `window mon-fri 09:00-17:00`".to_owned()
            }
            Hint::DayName { fixed } => format!("days have three letters: write `{fixed}`"),
            Hint::Days => "days are mon tue wed thu fri sat sun".to_owned(),
            Hint::DoubleQuotes => "strings use double quotes: \"like this\"".to_owned(),
            Hint::KeywordCase { keyword } => format!("keywords are lowercase: write `{keyword}`"),
            Hint::NameCase => {
                "names are written with lowercase letters, digits and `_`, as in `last_call`"
                    .to_owned()
            }
            Hint::DidYouMean { word } => format!("did you mean `{word}`?"),
            Hint::SettingInState { word } => format!(
                "`{word}` is a campaign setting: move it out of the state, into the campaign"
            ),
            Hint::StatementInCampaign { word } => {
                format!("`{word}` is a statement: it belongs inside a `state` block")
            }
            Hint::Settings => format!(
                "a campaign holds `experiment` and `state` blocks and the settings {}",
                SETTING_KEYWORDS.join(", ")
            ),
            Hint::Statements => format!(
                "the statements of a state are {}",
                STATEMENT_KEYWORDS
                    .iter()
                    .map(|k| match *k {
                        "at" => "at deadline",
                        "before" => "before deadline",
                        k => k,
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Hint::MissingBrace { word } => {
                format!("is a `}}` missing before this `{word}`?")
            }
            Hint::UntilDecided => "an experiment's `}` may be followed only by `until decided`, \
                 which makes it stop itself once a winner is clear"
                .to_owned(),
            Hint::MissingComma => "separate the names of a list with `,`".to_owned(),
            Hint::StrayBrace => "this `}` closes nothing: remove it".to_owned(),
            Hint::DoubleEquals => "to compare, write `==` (or `!=`)".to_owned(),
            Hint::OutsideCampaign => {
                "everything goes inside a campaign: `campaign name { ... }`".to_owned()
            }
        }
    }
}

/// What pest's rules are called in an error message. `None` drops the rule
/// from the list: wrappers and silent rules that a user never types.
fn expected_phrase(rule: Rule, eoi: Eoi) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => match eoi {
            Eoi::File => "end of file",
            Eoi::Block => "`}`",
        },
        Rule::WHITESPACE
        | Rule::COMMENT
        | Rule::file
        | Rule::campaign_item
        | Rule::campaign_unit
        | Rule::campaign_head
        | Rule::state_head
        | Rule::campaign_chunk
        | Rule::state_chunk
        | Rule::word_char
        | Rule::name => return None,
        Rule::campaign | Rule::kw_campaign => "`campaign`",
        Rule::experiment => "an experiment",
        Rule::variant => "a variant such as `short 50`",
        Rule::until_decided => "`until decided`",
        Rule::state => "a state",
        Rule::setting => "a setting",
        Rule::title_setting => "a `title` setting",
        Rule::enroll_setting => "an `enroll` setting",
        Rule::channels_setting => "a `channels` setting",
        Rule::timezone_setting => "a `timezone` setting",
        Rule::limit_setting => "a `limit` setting",
        Rule::deadline_setting => "a `deadline` setting",
        Rule::goal_setting => "a `goal` setting",
        Rule::exit_setting => "an `exit` setting",
        Rule::link_setting => "a `link` setting",
        Rule::window => "a `window`",
        Rule::days | Rule::day_range | Rule::day => "a day such as `mon`",
        Rule::statement => "a statement",
        Rule::send_stmt => "a `send` statement",
        Rule::on_stmt => "an `on` statement",
        Rule::after_stmt => "an `after` statement",
        Rule::at_deadline_stmt => "an `at deadline` statement",
        Rule::before_deadline_stmt => "a `before deadline` statement",
        Rule::split_stmt => "a `split` statement",
        Rule::split_arm => "a split arm such as `short -> invite_short`",
        Rule::end_stmt => "`end`",
        Rule::expr | Rule::and_expr | Rule::not_expr | Rule::comparison => {
            "a condition such as `role == \"driver\"`"
        }
        Rule::group => "`(`",
        Rule::compare_op | Rule::kw_in | Rule::kw_matches => "`==`, `!=`, `in` or `matches`",
        Rule::path | Rule::field_name => "a field such as `role`",
        Rule::value => "a value (a string or a number)",
        Rule::campaign_name => "a campaign name",
        Rule::state_name => "a state name",
        Rule::event_name => "an event name",
        Rule::channel_name => "a channel such as `email`",
        Rule::experiment_name => "an experiment name",
        Rule::variant_name => "a variant name",
        Rule::string => "a string",
        Rule::int => "a number",
        Rule::duration => "a duration such as `24h`",
        Rule::time => "a time such as `09:00`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::lbracket => "`[`",
        Rule::rbracket => "`]`",
        Rule::comma => "`,`",
        Rule::dash => "`-`",
        Rule::arrow => "`->`",
        Rule::kw_after => "`after`",
        Rule::kw_and => "`and`",
        Rule::kw_at => "`at`",
        Rule::kw_before => "`before`",
        Rule::kw_candidate => "`candidate`",
        Rule::kw_channels => "`channels`",
        Rule::kw_deadline => "`deadline`",
        Rule::kw_decided => "`decided`",
        Rule::kw_end => "`end`",
        Rule::kw_enroll => "`enroll`",
        Rule::kw_enrollment => "`enrollment`",
        Rule::kw_exit => "`exit`",
        Rule::kw_experiment => "`experiment`",
        Rule::kw_goal => "`goal`",
        Rule::kw_limit => "`limit`",
        Rule::kw_link => "`link`",
        Rule::kw_not => "`not`",
        Rule::kw_on => "`on`",
        Rule::kw_or => "`or`",
        Rule::kw_per => "`per`",
        Rule::kw_send => "`send`",
        Rule::kw_split => "`split`",
        Rule::kw_state => "`state`",
        Rule::kw_timezone => "`timezone`",
        Rule::kw_title => "`title`",
        Rule::kw_total => "`total`",
        Rule::kw_until => "`until`",
        Rule::kw_via => "`via`",
        Rule::kw_where => "`where`",
        Rule::kw_window => "`window`",
    })
}

/// What end-of-input means where a piece of text was parsed: the end of the
/// file, or the `}` that closes the block the piece was cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eoi {
    File,
    Block,
}

fn describe_found(found: Option<&str>) -> String {
    match found {
        None => "end of file".to_owned(),
        Some(text) => {
            const MAX: usize = 32;
            if text.chars().count() > MAX {
                let short: String = text.chars().take(MAX).collect();
                format!("`{short}…`")
            } else {
                format!("`{text}`")
            }
        }
    }
}

fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Turns a pest error at `offset` in `src` into a diagnostic in words.
fn pest_diagnostic(
    file: FileId,
    src: &str,
    offset: usize,
    error: &pest::error::Error<Rule>,
    eoi: Eoi,
) -> Diagnostic {
    let pos = floor_boundary(src, offset + error_offset(error));
    match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let (err, span) = expected_error(src, pos, positives, eoi);
            err.into_diagnostic(file, span)
        }
        ErrorVariant::CustomError { message } => {
            // pest's own guards: "stack limit reached", "call limit reached".
            let err = if message.contains("limit") {
                SyntaxError::TooDeep
            } else {
                SyntaxError::Internal {
                    detail: message.clone(),
                }
            };
            err.into_diagnostic(file, Span::new(pos, pos))
        }
    }
}

fn error_offset(error: &pest::error::Error<Rule>) -> usize {
    match error.location {
        InputLocation::Pos(p) | InputLocation::Span((p, _)) => p,
    }
}

/// Names what was expected at `pos`, looks at what stands there, and picks a
/// hint for the common mistakes.
fn expected_error(src: &str, pos: usize, positives: &[Rule], eoi: Eoi) -> (SyntaxError, Span) {
    // A piece that fails at its very start is reported by pest as the
    // piece's own rule: say what it could have started with.
    let mut rules: Vec<Rule> = Vec::new();
    for rule in positives {
        match rule {
            Rule::file => rules.extend([Rule::kw_campaign, Rule::EOI]),
            Rule::campaign_unit | Rule::campaign_head => rules.push(Rule::kw_campaign),
            Rule::state_head => rules.push(Rule::kw_state),
            Rule::campaign_chunk => {
                rules.extend([
                    Rule::setting,
                    Rule::kw_experiment,
                    Rule::kw_state,
                    Rule::EOI,
                ]);
            }
            Rule::state_chunk => rules.extend([Rule::statement, Rule::EOI]),
            other => rules.push(*other),
        }
    }
    let positives = &rules[..];
    // What continues the current construct first, then the items that could
    // start here, then what closes the block.
    let rank = |rule: &Rule| match rule {
        Rule::setting
        | Rule::experiment
        | Rule::kw_experiment
        | Rule::state
        | Rule::kw_state
        | Rule::statement => 1,
        Rule::rbrace | Rule::EOI => 2,
        _ => 0,
    };
    let mut ordered = rules.clone();
    ordered.sort_by_key(rank);
    let mut expected: Vec<&'static str> = Vec::new();
    for phrase in ordered.iter().filter_map(|r| expected_phrase(*r, eoi)) {
        if !expected.contains(&phrase) {
            expected.push(phrase);
        }
    }
    let wants = |rule: Rule| positives.contains(&rule);
    let Some(tok) = token_at(src, pos) else {
        let end = src.len();
        let found = SyntaxError::Expected {
            expected,
            found: None,
            hint: None,
        };
        return (found, Span::new(end, end));
    };
    let text = &src[tok.start..tok.end];
    let mut span = tok;
    let first = text.chars().next().unwrap_or(' ');
    let wants_string = wants(Rule::string) || wants(Rule::value);
    if first == '"' && wants_string && !text.ends_with('"') || text == "\"" {
        return (SyntaxError::UnterminatedString, span);
    }
    let mut hint = None;
    if wants(Rule::duration) && first.is_ascii_digit() {
        let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
        let unit = &text[digits.len()..];
        if unit.is_empty() {
            match word_after_spaces(src, tok.end) {
                Some(word) if duration_unit(&src[word.start..word.end]).is_some() => {
                    let u = duration_unit(&src[word.start..word.end]).unwrap_or('h');
                    hint = Some(Hint::DurationSpace {
                        fixed: format!("{digits}{u}"),
                    });
                    span = Span::new(tok.start, word.end);
                }
                _ => hint = Some(Hint::DurationNoUnit { amount: digits }),
            }
        } else if let Some(u) = duration_unit(unit) {
            hint = Some(Hint::DurationUnitWord {
                fixed: format!("{digits}{u}"),
            });
        } else {
            hint = Some(Hint::DurationUnknownUnit {
                unit: unit.to_owned(),
            });
        }
    } else if wants(Rule::time) && first.is_ascii_digit() {
        if let Some(fixed) = padded_time(text) {
            // Clearly a time: the other things that could come here are noise.
            expected.retain(|p| Some(*p) == expected_phrase(Rule::time, eoi));
            hint = Some(Hint::TimePadding { fixed });
        }
    } else if wants(Rule::day) && first.is_ascii_digit() && text.contains(':') {
        hint = Some(Hint::DaysFirst);
    } else if wants(Rule::day) && first.is_alphabetic() {
        let lower = text.to_lowercase();
        hint = Some(match lower.get(..3).and_then(Day::from_name) {
            Some(day) => Hint::DayName {
                fixed: day.name().to_owned(),
            },
            None => Hint::Days,
        });
    } else if first == '\'' && wants_string {
        hint = Some(Hint::DoubleQuotes);
    } else if first.is_alphabetic() || first == '_' {
        hint = word_hint(text, positives);
    } else if text == "=" && wants(Rule::compare_op) {
        hint = Some(Hint::DoubleEquals);
    } else if text == "}" && wants(Rule::kw_campaign) {
        hint = Some(Hint::StrayBrace);
    }
    (
        SyntaxError::Expected {
            expected,
            found: Some(src[span.start..span.end].to_owned()),
            hint,
        },
        span,
    )
}

/// Hints for a word standing where something else was expected.
fn word_hint(word: &str, positives: &[Rule]) -> Option<Hint> {
    let wants = |rule: Rule| positives.contains(&rule);
    let lower = word.to_lowercase();
    let is_keyword = |w: &str| {
        SETTING_KEYWORDS.contains(&w)
            || STATEMENT_KEYWORDS.contains(&w)
            || OTHER_KEYWORDS.contains(&w)
    };
    if lower != word {
        if is_keyword(&lower) {
            return Some(Hint::KeywordCase { keyword: lower });
        }
        let wants_name = positives.iter().any(|r| {
            matches!(
                r,
                Rule::campaign_name
                    | Rule::state_name
                    | Rule::event_name
                    | Rule::channel_name
                    | Rule::experiment_name
                    | Rule::variant_name
                    | Rule::field_name
                    | Rule::path
            )
        });
        if wants_name {
            return Some(Hint::NameCase);
        }
    }
    if wants(Rule::kw_decided) || matches!(word, "until" | "decided") {
        return Some(Hint::UntilDecided);
    }
    if wants(Rule::kw_until) && !is_keyword(word) {
        let words = SETTING_KEYWORDS
            .iter()
            .chain(&["experiment", "state", "until"]);
        return did_you_mean(&lower, words.copied()).or(Some(Hint::UntilDecided));
    }
    if wants(Rule::rbrace) && matches!(word, "state" | "experiment" | "campaign") {
        return Some(Hint::MissingBrace {
            word: word.to_owned(),
        });
    }
    // Only a new item could start here (not the rest of the line before).
    let only_items = positives.iter().all(|r| {
        matches!(
            r,
            Rule::setting
                | Rule::experiment
                | Rule::kw_experiment
                | Rule::state
                | Rule::kw_state
                | Rule::statement
                | Rule::rbrace
                | Rule::EOI
        )
    });
    let is_keyword_here = SETTING_KEYWORDS.contains(&word)
        || STATEMENT_KEYWORDS.contains(&word)
        || matches!(word, "state" | "experiment");
    if wants(Rule::comma) && !is_keyword_here && !OTHER_KEYWORDS.contains(&word) {
        return Some(Hint::MissingComma);
    }
    if wants(Rule::setting) {
        if STATEMENT_KEYWORDS.contains(&word) {
            return Some(Hint::StatementInCampaign {
                word: word.to_owned(),
            });
        }
        let candidates = SETTING_KEYWORDS.iter().chain(&["experiment", "state"]);
        let list = only_items.then_some(Hint::Settings);
        return did_you_mean(&lower, candidates.copied()).or(list);
    }
    if wants(Rule::statement) {
        if SETTING_KEYWORDS.contains(&word) {
            return Some(Hint::SettingInState {
                word: word.to_owned(),
            });
        }
        let list = only_items.then_some(Hint::Statements);
        return did_you_mean(&lower, STATEMENT_KEYWORDS.iter().copied()).or(list);
    }
    if wants(Rule::campaign) || wants(Rule::kw_campaign) {
        if SETTING_KEYWORDS.contains(&word)
            || STATEMENT_KEYWORDS.contains(&word)
            || word == "state"
            || word == "experiment"
        {
            return Some(Hint::OutsideCampaign);
        }
        return did_you_mean(&lower, ["campaign"].into_iter());
    }
    None
}

fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<Hint> {
    let limit = if word.chars().count() <= 4 { 1 } else { 2 };
    candidates
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| Hint::DidYouMean { word: c.to_owned() })
}

/// The unit letter a recruiter meant by `h`, `hours`, `days`...
fn duration_unit(word: &str) -> Option<char> {
    Some(match word.to_lowercase().as_str() {
        "m" | "min" | "mins" | "minute" | "minutes" => 'm',
        "h" | "hr" | "hrs" | "hour" | "hours" => 'h',
        "d" | "day" | "days" => 'd',
        "w" | "wk" | "wks" | "week" | "weeks" => 'w',
        _ => return None,
    })
}

/// `9:00` → `09:00`, when only the padding is wrong.
fn padded_time(text: &str) -> Option<String> {
    let (h, m) = text.split_once(':')?;
    let ok = |s: &str| (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !ok(h) || !ok(m) || (h.len() == 2 && m.len() == 2) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then(|| format!("{h:02}:{m:02}"))
}

// ---------------------------------------------------------------------------
// A small scanner: comments, tokens for error messages, blocks for recovery.

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The end of a string literal starting at `start` (a `"`): after its closing
/// quote, or at the end of its line if it has none.
fn string_end(src: &str, start: usize) -> usize {
    let mut chars = src[start..].char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return start + i + 1,
            '\n' => return start + i,
            '\\' => {
                if let Some((j, '\n')) = chars.next() {
                    return start + j;
                }
            }
            _ => {}
        }
    }
    src.len()
}

fn line_end(src: &str, start: usize) -> usize {
    src[start..].find('\n').map_or(src.len(), |i| start + i)
}

/// Every `#` comment outside string literals; the text excludes the line break.
fn scan_comments(src: &str) -> Vec<Comment> {
    let mut comments = Vec::new();
    let mut i = 0;
    while let Some(c) = src[i..].chars().next() {
        match c {
            '"' => i = string_end(src, i),
            '#' => {
                let mut end = line_end(src, i);
                if src[..end].ends_with('\r') {
                    end -= 1;
                }
                comments.push(Comment {
                    text: src[i..end].to_owned(),
                    span: Span::new(i, end),
                });
                i = end;
            }
            c => i += c.len_utf8(),
        }
    }
    comments
}

/// Skips whitespace and comments from `pos`.
fn skip_trivia(src: &str, mut pos: usize) -> usize {
    while let Some(c) = src[pos..].chars().next() {
        if c.is_whitespace() {
            pos += c.len_utf8();
        } else if c == '#' {
            pos = line_end(src, pos);
        } else {
            break;
        }
    }
    pos
}

/// The token that starts at `pos` (after trivia), as a user would see it;
/// `None` at the end of the file.
fn token_at(src: &str, pos: usize) -> Option<Span> {
    let start = skip_trivia(src, floor_boundary(src, pos));
    let mut chars = src[start..].char_indices().peekable();
    let (_, c) = chars.next()?;
    let take_while = |f: &dyn Fn(char) -> bool| {
        src[start..]
            .char_indices()
            .find(|&(_, c)| !f(c))
            .map_or(src.len(), |(i, _)| start + i)
    };
    let end = match c {
        '"' => string_end(src, start),
        '\'' => {
            let line = line_end(src, start);
            src[start + 1..line].find('\'').map_or_else(
                || take_while(&|c| c == '\'' || is_word_char(c)),
                |i| start + i + 2,
            )
        }
        c if c.is_ascii_digit() => {
            let digits = take_while(&|c| c.is_ascii_digit());
            if src[digits..].starts_with(':') {
                take_while(&|c| c.is_ascii_digit() || c == ':')
            } else {
                take_while(&is_word_char)
            }
        }
        c if is_word_char(c) => take_while(&is_word_char),
        '-' | '=' | '!' if matches!(chars.peek(), Some((_, '>' | '='))) => start + 2,
        c => start + c.len_utf8(),
    };
    Some(Span::new(start, end))
}

/// The word after spaces on the same line, as in `24 h`.
fn word_after_spaces(src: &str, pos: usize) -> Option<Span> {
    let rest = &src[pos..];
    let skipped = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    if skipped == 0 {
        return None;
    }
    let start = pos + skipped;
    let len = src[start..]
        .char_indices()
        .find(|&(_, c)| !c.is_alphabetic())
        .map_or(src.len() - start, |(i, _)| i);
    (len > 0).then(|| Span::new(start, start + len))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LexKind {
    Word,
    Open,
    Close,
    Other,
}

/// A rough token for recovery: enough to match braces and find lines that
/// start with a keyword, ignoring strings and comments.
#[derive(Debug, Clone, Copy)]
struct Lexeme {
    start: usize,
    end: usize,
    kind: LexKind,
    /// First on its line, first of the range, or right after a `}`.
    fresh: bool,
}

fn lex(src: &str, start: usize, end: usize) -> Vec<Lexeme> {
    let mut out = Vec::new();
    let mut i = start;
    let mut fresh = true;
    while i < end {
        let Some(c) = src[i..end].chars().next() else {
            break;
        };
        let (kind, next) = match c {
            '\n' => {
                fresh = true;
                i += 1;
                continue;
            }
            c if c.is_whitespace() => {
                i += c.len_utf8();
                continue;
            }
            '#' => {
                i = line_end(src, i).min(end);
                continue;
            }
            '"' => (LexKind::Other, string_end(src, i).min(end)),
            '{' => (LexKind::Open, i + 1),
            '}' => (LexKind::Close, i + 1),
            c if is_word_char(c) => {
                let len = src[i..end]
                    .char_indices()
                    .find(|&(_, c)| !is_word_char(c))
                    .map_or(end - i, |(j, _)| j);
                (LexKind::Word, i + len)
            }
            c => (LexKind::Other, i + c.len_utf8()),
        };
        out.push(Lexeme {
            start: i,
            end: next,
            kind,
            fresh,
        });
        fresh = kind == LexKind::Close;
        i = next;
    }
    out
}

/// Where the `{` at `open` is closed, if it is before `end`.
fn matching_brace(src: &str, open: usize, end: usize) -> Option<usize> {
    let mut depth = 0usize;
    for lx in lex(src, open, end) {
        match lx.kind {
            LexKind::Open => depth += 1,
            LexKind::Close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(lx.start);
                }
            }
            _ => {}
        }
    }
    None
}

/// Which lines may start an item when recovering from an error.
#[derive(Debug, Clone, Copy)]
enum Sync {
    /// Only lines that start with one of these keywords (any letter case).
    Keywords(&'static [&'static str]),
    /// Those, and any line that starts with a word and does not look like
    /// the continuation of the line before (which would end with `,`, `==`,
    /// `->`... or start with `and`, `or`...).
    Lines(&'static [&'static str]),
}

/// Words that may start the continuation of a long line.
const CONTINUATIONS: [&str; 12] = [
    "and",
    "or",
    "not",
    "where",
    "via",
    "per",
    "total",
    "after",
    "enrollment",
    "candidate",
    "in",
    "matches",
];

/// Positions in `start..end`, outside any braces opened in that range, where
/// an item may start: see [`Sync`].
fn sync_points(src: &str, start: usize, end: usize, sync: Sync) -> Vec<usize> {
    let mut depth = 0usize;
    let mut out = Vec::new();
    let mut prev: Option<Lexeme> = None;
    for lx in lex(src, start, end) {
        match lx.kind {
            LexKind::Open => depth += 1,
            LexKind::Close => depth = depth.saturating_sub(1),
            LexKind::Word if depth == 0 && lx.fresh => {
                let word = &src[lx.start..lx.end];
                let keyword = |k: &[&str]| k.iter().any(|k| k.eq_ignore_ascii_case(word));
                let take = match sync {
                    Sync::Keywords(k) => keyword(k),
                    Sync::Lines(k) => {
                        let after_item = prev.is_none_or(|p| {
                            p.kind != LexKind::Other || src[p.start..].starts_with('"')
                        });
                        keyword(k) || (after_item && !CONTINUATIONS.contains(&word))
                    }
                };
                if take {
                    out.push(lx.start);
                }
            }
            _ => {}
        }
        prev = Some(lx);
    }
    out
}

/// The first `}` in `start..end` that closes a brace opened before `start`.
fn unmatched_close(src: &str, start: usize, end: usize) -> Option<usize> {
    let mut depth = 0usize;
    for lx in lex(src, start, end) {
        match lx.kind {
            LexKind::Open => depth += 1,
            LexKind::Close if depth == 0 => return Some(lx.start),
            LexKind::Close => depth -= 1,
            _ => {}
        }
    }
    None
}

/// A `{` on the line that starts at `start` (for a head that did not parse).
fn brace_on_line(src: &str, start: usize, end: usize) -> Option<usize> {
    lex(src, start, end)
        .into_iter()
        .enumerate()
        .take_while(|(i, lx)| *i == 0 || !lx.fresh)
        .find(|(_, lx)| lx.kind == LexKind::Open)
        .map(|(_, lx)| lx.start)
}

/// Cuts a broken file into pieces that each hold one campaign (or stray text).
fn segments(src: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut seg: Option<usize> = None;
    for lx in lex(src, 0, src.len()) {
        match seg {
            None => seg = Some(lx.start),
            Some(s)
                if lx.kind == LexKind::Word
                    && lx.fresh
                    && s != lx.start
                    && &src[lx.start..lx.end] == "campaign" =>
            {
                out.push((s, lx.start));
                seg = Some(lx.start);
                depth = 0;
            }
            Some(_) => {}
        }
        match lx.kind {
            LexKind::Open => depth += 1,
            LexKind::Close if depth <= 1 => {
                if let Some(s) = seg.take() {
                    out.push((s, lx.end));
                }
                depth = 0;
            }
            LexKind::Close => depth -= 1,
            _ => {}
        }
    }
    if let Some(s) = seg {
        out.push((s, src.len()));
    }
    out
}

// ---------------------------------------------------------------------------
// Recovery: re-parse the pieces of a broken file to report every error.

const CAMPAIGN_SYNC: [&str; 12] = [
    "title",
    "enroll",
    "channels",
    "timezone",
    "window",
    "limit",
    "deadline",
    "goal",
    "exit",
    "link",
    "experiment",
    "state",
];
/// Words that cannot start a line inside a state: a `}` is missing before.
const STATE_STOPS: [&str; 3] = ["state", "experiment", "campaign"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Campaign,
    State,
}

impl Level {
    fn chunk_rule(self) -> Rule {
        match self {
            Level::Campaign => Rule::campaign_chunk,
            Level::State => Rule::state_chunk,
        }
    }

    fn sync(self) -> Sync {
        match self {
            Level::Campaign => Sync::Lines(&CAMPAIGN_SYNC),
            Level::State => Sync::Lines(&STATEMENT_KEYWORDS),
        }
    }
}

/// What a campaign body or state body holds.
enum Node {
    Setting(Setting),
    Experiment(Experiment),
    State(State),
    Statement(Statement),
}

struct Recovery<'s> {
    file: FileId,
    src: &'s str,
    errors: Vec<Diagnostic>,
    /// What parsed of each campaign whose beginning parsed.
    campaigns: Vec<Campaign>,
}

impl Recovery<'_> {
    fn report(&mut self, offset: usize, error: &pest::error::Error<Rule>, eoi: Eoi) {
        self.errors
            .push(pest_diagnostic(self.file, self.src, offset, error, eoi));
    }

    fn builder(&self, offset: usize) -> Builder {
        Builder {
            file: self.file,
            offset,
        }
    }

    fn file(&mut self) {
        for (start, end) in segments(self.src) {
            self.campaign(start, end);
        }
    }

    fn campaign(&mut self, start: usize, end: usize) {
        let text = &self.src[start..end];
        let whole = match CampaignParser::parse(Rule::campaign_unit, text) {
            Ok(pairs) => {
                let b = self.builder(start);
                let span = Span::new(start, end);
                let before = self.errors.len();
                let result = single(pairs, Rule::campaign_unit, span, self.file).and_then(|p| {
                    let mut c = Cursor::new(b, p);
                    parse_campaign(b, c.take(Rule::campaign)?, &mut self.errors)
                });
                match result {
                    Ok(mut campaign) => {
                        campaign.complete &= self.errors.len() == before;
                        self.campaigns.push(campaign);
                    }
                    Err(d) => self.errors.push(*d),
                }
                return;
            }
            Err(e) => e,
        };
        let before = self.errors.len();
        let Some(head) = self.head(start, end, Rule::campaign_head, Rule::campaign_name) else {
            if self.errors.len() == before {
                self.report(start, &whole, Eoi::File);
            }
            return;
        };
        // A head that did not parse has a guessed name: keep nothing of it.
        let head_parsed = self.errors.len() == before;
        let close = matching_brace(self.src, head.open.start, end);
        let (nodes, body_end) = self.items(Level::Campaign, head.open.end, close.unwrap_or(end));
        if head_parsed {
            let mut campaign = Campaign {
                name: head.name.clone(),
                settings: Vec::new(),
                experiments: Vec::new(),
                states: Vec::new(),
                span: Span::new(start, close.map_or(body_end, |c| c + 1)),
                complete: false,
            };
            for node in nodes {
                add_node(&mut campaign, node);
            }
            self.campaigns.push(campaign);
        }
        let closed = close.is_some() || body_end < end;
        if !closed && (end < self.src.len() || self.errors.len() == before) {
            self.unclosed("campaign", &head, end);
        }
        if self.errors.len() == before {
            self.report(start, &whole, Eoi::File);
        }
    }

    /// `campaign NAME {` or `state NAME {` at `start`. When it does not parse,
    /// reports why, and still returns it if its line has a `{`, so that the
    /// block's inside can be checked.
    fn head(&mut self, start: usize, end: usize, rule: Rule, name_rule: Rule) -> Option<Head> {
        let b = self.builder(start);
        match CampaignParser::parse(rule, &self.src[start..end]) {
            Ok(pairs) => match parse_head(b, pairs, rule, name_rule) {
                Ok(head) => Some(head),
                Err(d) => {
                    self.errors.push(*d);
                    None
                }
            },
            Err(e) => {
                self.report(start, &e, Eoi::Block);
                let open = brace_on_line(self.src, start, end)?;
                let name = lex(self.src, start, open)
                    .get(1)
                    .filter(|lx| lx.kind == LexKind::Word)
                    .map_or("?", |lx| &self.src[lx.start..lx.end]);
                Some(Head {
                    name: Ident {
                        name: name.to_owned(),
                        span: Span::new(start, start),
                    },
                    open: Span::new(open, open + 1),
                })
            }
        }
    }

    fn unclosed(&mut self, what: &'static str, head: &Head, at: usize) {
        let found = token_at(self.src, at);
        let span = found.unwrap_or(Span::new(self.src.len(), self.src.len()));
        let err = SyntaxError::Unclosed {
            what,
            name: head.name.name.clone(),
            found: found.map(|s| self.src[s.start..s.end].to_owned()),
            open: head.open,
        };
        self.errors.push(err.into_diagnostic(self.file, span));
    }

    /// Parses the items of a body in `start..end`, reporting each broken
    /// item and going on at the next line that may start an item. Returns
    /// the items and where the body ended: before `end` when a state with a
    /// missing `}` made the body's own `}` show up early.
    fn items(&mut self, level: Level, start: usize, mut end: usize) -> (Vec<Node>, usize) {
        let mut nodes = Vec::new();
        let mut pos = start;
        while skip_trivia(self.src, pos) < end {
            let chunk = pos;
            let error = match CampaignParser::parse(level.chunk_rule(), &self.src[chunk..end]) {
                Ok(pairs) => {
                    let b = self.builder(chunk);
                    let span = Span::new(chunk, end);
                    match single(pairs, level.chunk_rule(), span, self.file) {
                        Ok(pair) => nodes.extend(parse_chunk(b, pair, &mut self.errors)),
                        Err(d) => self.errors.push(*d),
                    }
                    break;
                }
                Err(e) => e,
            };
            let at = chunk + error_offset(&error);
            let syncs = sync_points(self.src, chunk, end, level.sync());
            let item = syncs.iter().copied().rfind(|&s| s <= at).unwrap_or(chunk);
            if item > chunk {
                let before = self.errors.len();
                nodes.extend(self.items(level, chunk, item).0);
                if self.errors.len() > before {
                    // The error was in the lines before `item`: start afresh
                    // there rather than blame `item` for it.
                    pos = item;
                    continue;
                }
            }
            let before = self.errors.len();
            let word = token_at(self.src, item).map_or("", |t| &self.src[t.start..t.end]);
            if level == Level::Campaign && word.eq_ignore_ascii_case("state") {
                let (state, next, stopped) = self.state(item, end);
                nodes.extend(state.map(Node::State));
                pos = next;
                if stopped {
                    // The `}` that seemed to close that state closes the body.
                    end = unmatched_close(self.src, next, end).unwrap_or(end);
                }
            } else {
                pos = syncs.iter().copied().find(|&s| s > at).unwrap_or(end);
            }
            if self.errors.len() == before {
                self.report(chunk, &error, Eoi::Block);
            }
        }
        (nodes, end)
    }

    /// Re-parses the state starting at `start`; returns it, where the
    /// campaign body goes on, and whether the state lacked its `}`.
    fn state(&mut self, start: usize, end: usize) -> (Option<State>, usize, bool) {
        let Some(head) = self.head(start, end, Rule::state_head, Rule::state_name) else {
            let next = sync_points(self.src, start, end, Sync::Keywords(&CAMPAIGN_SYNC))
                .into_iter()
                .find(|&s| s > start)
                .unwrap_or(end);
            return (None, next, false);
        };
        let close = matching_brace(self.src, head.open.start, end);
        let limit = close.unwrap_or(end);
        let stop = sync_points(self.src, head.open.end, limit, Sync::Keywords(&STATE_STOPS))
            .into_iter()
            .next();
        let body_end = stop.unwrap_or(limit);
        let before = self.errors.len();
        let statements = self
            .items(Level::State, head.open.end, body_end)
            .0
            .into_iter()
            .filter_map(|n| match n {
                Node::Statement(s) => Some(s),
                _ => None,
            })
            .collect();
        let next = match (stop, close) {
            (Some(s), _) => {
                self.unclosed("state", &head, s);
                s
            }
            (None, Some(c)) => c + 1,
            (None, None) => {
                if self.errors.len() == before {
                    self.unclosed("state", &head, end);
                }
                end
            }
        };
        let state = State {
            name: head.name,
            statements,
            span: Span::new(start, next),
        };
        (Some(state), next, stop.is_some())
    }
}

// ---------------------------------------------------------------------------
// Pairs → AST

/// A node, or the error (boxed: diagnostics are large) that stopped it.
type Built<T> = Result<T, Box<Diagnostic>>;

/// Where the pairs of one parsed piece of text sit in the whole file.
#[derive(Debug, Clone, Copy)]
struct Builder {
    file: FileId,
    offset: usize,
}

impl Builder {
    /// The span of a pair without the whitespace and comments that pest
    /// leaves at the end of a rule ending in `?` or `*`.
    fn span(self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        let end = pair
            .clone()
            .into_inner()
            .flatten()
            .last()
            .map_or(s.end(), |last| last.as_span().end());
        Span::new(self.offset + s.start(), self.offset + end)
    }

    fn error(self, span: Span, err: SyntaxError) -> Box<Diagnostic> {
        Box::new(err.into_diagnostic(self.file, span))
    }

    fn internal(self, span: Span, detail: impl Into<String>) -> Box<Diagnostic> {
        self.error(
            span,
            SyntaxError::Internal {
                detail: detail.into(),
            },
        )
    }
}

/// Walks the children of one pair, checking each has the expected rule.
struct Cursor<'i> {
    b: Builder,
    parent: Rule,
    span: Span,
    pairs: std::iter::Peekable<Pairs<'i, Rule>>,
}

impl<'i> Cursor<'i> {
    fn new(b: Builder, pair: Pair<'i, Rule>) -> Self {
        Cursor {
            b,
            parent: pair.as_rule(),
            span: b.span(&pair),
            pairs: pair.into_inner().peekable(),
        }
    }

    fn next(&mut self) -> Built<Pair<'i, Rule>> {
        self.pairs.next().ok_or_else(|| {
            self.b
                .internal(self.span, format!("`{:?}` ended early", self.parent))
        })
    }

    fn take(&mut self, rule: Rule) -> Built<Pair<'i, Rule>> {
        let pair = self.next()?;
        if pair.as_rule() == rule {
            Ok(pair)
        } else {
            Err(unexpected(self.b, &pair, self.parent))
        }
    }

    fn peek(&mut self) -> Option<Rule> {
        self.pairs.peek().map(Pair::as_rule)
    }

    fn eat(&mut self, rule: Rule) -> bool {
        self.opt(rule).is_some()
    }

    fn opt(&mut self, rule: Rule) -> Option<Pair<'i, Rule>> {
        if self.peek() == Some(rule) {
            self.pairs.next()
        } else {
            None
        }
    }

    fn done(mut self) -> Built<()> {
        match self.pairs.next() {
            None => Ok(()),
            Some(pair) => Err(unexpected(self.b, &pair, self.parent)),
        }
    }
}

fn unexpected(b: Builder, pair: &Pair<'_, Rule>, parent: Rule) -> Box<Diagnostic> {
    b.internal(
        b.span(pair),
        format!("unexpected `{:?}` in `{parent:?}`", pair.as_rule()),
    )
}

/// The one top pair of a successful parse.
fn single(
    mut pairs: Pairs<'_, Rule>,
    rule: Rule,
    span: Span,
    file: FileId,
) -> Built<Pair<'_, Rule>> {
    match pairs.next() {
        Some(pair) if pair.as_rule() == rule => Ok(pair),
        _ => Err(Box::new(
            SyntaxError::Internal {
                detail: format!("no `{rule:?}` at the top"),
            }
            .into_diagnostic(file, span),
        )),
    }
}

/// `campaign NAME {` or `state NAME {`, parsed on their own during recovery.
struct Head {
    name: Ident,
    open: Span,
}

fn parse_head(b: Builder, pairs: Pairs<'_, Rule>, rule: Rule, name_rule: Rule) -> Built<Head> {
    let span = Span::new(b.offset, b.offset);
    let pair = single(pairs, rule, span, b.file)?;
    let mut c = Cursor::new(b, pair);
    c.next()?;
    let name = parse_ident(b, c.take(name_rule)?);
    let open = b.span(&c.take(Rule::lbrace)?);
    c.done()?;
    Ok(Head { name, open })
}

fn parse_file(b: Builder, pair: Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Vec<Campaign> {
    let mut campaigns = Vec::new();
    for child in pair.into_inner() {
        match child.as_rule() {
            Rule::campaign => match parse_campaign(b, child, errors) {
                Ok(c) => campaigns.push(c),
                Err(d) => errors.push(*d),
            },
            Rule::EOI => {}
            _ => errors.push(*unexpected(b, &child, Rule::file)),
        }
    }
    campaigns
}

fn parse_campaign(
    b: Builder,
    pair: Pair<'_, Rule>,
    errors: &mut Vec<Diagnostic>,
) -> Built<Campaign> {
    let span = b.span(&pair);
    let mut c = Cursor::new(b, pair);
    c.take(Rule::kw_campaign)?;
    let name = parse_ident(b, c.take(Rule::campaign_name)?);
    c.take(Rule::lbrace)?;
    let mut campaign = Campaign {
        name,
        settings: Vec::new(),
        experiments: Vec::new(),
        states: Vec::new(),
        span,
        complete: true,
    };
    let before = errors.len();
    while c.peek() != Some(Rule::rbrace) {
        match parse_campaign_item(b, c.next()?, errors) {
            Ok(node) => add_node(&mut campaign, node),
            Err(d) => errors.push(*d),
        }
    }
    campaign.complete = errors.len() == before;
    c.take(Rule::rbrace)?;
    c.done()?;
    Ok(campaign)
}

fn add_node(campaign: &mut Campaign, node: Node) {
    match node {
        Node::Setting(s) => campaign.settings.push(s),
        Node::Experiment(e) => campaign.experiments.push(e),
        Node::State(s) => campaign.states.push(s),
        Node::Statement(_) => {}
    }
}

/// A `campaign_chunk` or `state_chunk` of a broken file.
fn parse_chunk(b: Builder, pair: Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Vec<Node> {
    let mut nodes = Vec::new();
    for child in pair.into_inner() {
        let node = match child.as_rule() {
            Rule::EOI => continue,
            Rule::statement => parse_statement(b, child).map(Node::Statement),
            _ => parse_campaign_item(b, child, errors),
        };
        match node {
            Ok(node) => nodes.push(node),
            Err(d) => errors.push(*d),
        }
    }
    nodes
}

fn parse_campaign_item(
    b: Builder,
    pair: Pair<'_, Rule>,
    errors: &mut Vec<Diagnostic>,
) -> Built<Node> {
    match pair.as_rule() {
        Rule::setting => parse_setting(b, pair).map(Node::Setting),
        Rule::experiment => parse_experiment(b, pair).map(Node::Experiment),
        Rule::state => parse_state(b, pair, errors).map(Node::State),
        _ => Err(unexpected(b, &pair, Rule::campaign)),
    }
}

fn parse_setting(b: Builder, pair: Pair<'_, Rule>) -> Built<Setting> {
    let span = b.span(&pair);
    let mut outer = Cursor::new(b, pair);
    let inner = outer.next()?;
    outer.done()?;
    let rule = inner.as_rule();
    let mut c = Cursor::new(b, inner);
    c.next()?; // the keyword
    let kind = match rule {
        Rule::title_setting => SettingKind::Title(parse_string(b, c.take(Rule::string)?)?),
        Rule::enroll_setting => {
            c.take(Rule::kw_on)?;
            let event = parse_ident(b, c.take(Rule::event_name)?);
            let filter = if c.eat(Rule::kw_where) {
                Some(parse_expr(b, c.take(Rule::expr)?, 0)?)
            } else {
                None
            };
            SettingKind::Enroll { event, filter }
        }
        Rule::channels_setting => {
            SettingKind::Channels(parse_ident_list(b, &mut c, Rule::channel_name)?)
        }
        Rule::timezone_setting => SettingKind::Timezone(parse_timezone(b, &mut c)?),
        Rule::window => {
            // `window` is one rule shared with statements: hand it over whole.
            return Ok(Setting {
                kind: SettingKind::Window(parse_window_rest(b, c, span)?),
                span,
            });
        }
        Rule::limit_setting => {
            let count = parse_int(b, c.take(Rule::int)?)?;
            if c.eat(Rule::kw_per) {
                let period = parse_duration(b, c.take(Rule::duration)?)?;
                SettingKind::Limit(Limit::Per { count, period })
            } else {
                c.take(Rule::kw_total)?;
                SettingKind::Limit(Limit::Total { count })
            }
        }
        Rule::deadline_setting => {
            let duration = parse_duration(b, c.take(Rule::duration)?)?;
            let after_enrollment = c.eat(Rule::kw_after);
            if after_enrollment {
                c.take(Rule::kw_enrollment)?;
            }
            SettingKind::Deadline {
                duration,
                after_enrollment,
            }
        }
        Rule::goal_setting => SettingKind::Goal(parse_ident(b, c.take(Rule::event_name)?)),
        Rule::exit_setting => {
            c.take(Rule::kw_on)?;
            SettingKind::Exit(parse_ident_list(b, &mut c, Rule::event_name)?)
        }
        Rule::link_setting => SettingKind::Link(parse_string(b, c.take(Rule::string)?)?),
        other => {
            return Err(b.internal(span, format!("unexpected `{other:?}` in `setting`")));
        }
    };
    c.done()?;
    Ok(Setting { kind, span })
}

/// `NAME ("," NAME)*`, the rest of a `channels` or `exit on` setting.
fn parse_ident_list(b: Builder, c: &mut Cursor<'_>, rule: Rule) -> Built<Vec<Ident>> {
    let mut names = vec![parse_ident(b, c.take(rule)?)];
    while c.eat(Rule::comma) {
        names.push(parse_ident(b, c.take(rule)?));
    }
    Ok(names)
}

fn parse_timezone(b: Builder, c: &mut Cursor<'_>) -> Built<TimezoneSpec> {
    if let Some(zone) = c.opt(Rule::string) {
        return Ok(TimezoneSpec::Fixed(parse_string(b, zone)?));
    }
    c.take(Rule::kw_candidate)?;
    let fallback = if c.eat(Rule::kw_or) {
        Some(parse_string(b, c.take(Rule::string)?)?)
    } else {
        None
    };
    Ok(TimezoneSpec::Candidate { fallback })
}

/// A `window` pair whose keyword has been taken.
fn parse_window_rest(b: Builder, mut c: Cursor<'_>, span: Span) -> Built<Window> {
    let days = parse_days(b, c.take(Rule::days)?)?;
    let open = parse_time(b, c.take(Rule::time)?)?;
    c.take(Rule::dash)?;
    let close = parse_time(b, c.take(Rule::time)?)?;
    c.done()?;
    Ok(Window {
        days,
        open,
        close,
        span,
    })
}

fn parse_window(b: Builder, pair: Pair<'_, Rule>) -> Built<Window> {
    let span = b.span(&pair);
    let mut c = Cursor::new(b, pair);
    c.take(Rule::kw_window)?;
    parse_window_rest(b, c, span)
}

fn parse_days(b: Builder, pair: Pair<'_, Rule>) -> Built<Vec<DayRange>> {
    let mut c = Cursor::new(b, pair);
    let mut days = vec![parse_day_range(b, c.take(Rule::day_range)?)?];
    while c.eat(Rule::comma) {
        days.push(parse_day_range(b, c.take(Rule::day_range)?)?);
    }
    c.done()?;
    Ok(days)
}

fn parse_day_range(b: Builder, pair: Pair<'_, Rule>) -> Built<DayRange> {
    let span = b.span(&pair);
    let mut c = Cursor::new(b, pair);
    let from = parse_day(b, c.take(Rule::day)?)?;
    let to = if c.eat(Rule::dash) {
        Some(parse_day(b, c.take(Rule::day)?)?)
    } else {
        None
    };
    c.done()?;
    Ok(DayRange { from, to, span })
}

fn parse_day(b: Builder, pair: Pair<'_, Rule>) -> Built<Day> {
    Day::from_name(pair.as_str())
        .ok_or_else(|| b.internal(b.span(&pair), format!("`{}` is no day", pair.as_str())))
}

fn parse_time(b: Builder, pair: Pair<'_, Rule>) -> Built<TimeOfDay> {
    let span = b.span(&pair);
    let text = pair.as_str();
    let digits = |s: Option<&str>| s.and_then(|s| s.parse::<u8>().ok());
    let (Some(hour), Some(minute)) = (digits(text.get(0..2)), digits(text.get(3..5))) else {
        return Err(b.internal(span, format!("`{text}` is no time")));
    };
    let time = text.to_owned();
    if hour > 23 {
        return Err(b.error(
            Span::new(span.start, span.start + 2),
            SyntaxError::HourOutOfRange { time },
        ));
    }
    if minute > 59 {
        return Err(b.error(
            Span::new(span.start + 3, span.start + 5),
            SyntaxError::MinuteOutOfRange { time },
        ));
    }
    Ok(TimeOfDay { hour, minute, span })
}

fn parse_experiment(b: Builder, pair: Pair<'_, Rule>) -> Built<Experiment> {
    let span = b.span(&pair);
    let mut c = Cursor::new(b, pair);
    c.take(Rule::kw_experiment)?;
    let name = parse_ident(b, c.take(Rule::experiment_name)?);
    c.take(Rule::lbrace)?;
    let mut variants = Vec::new();
    while let Some(v) = c.opt(Rule::variant) {
        variants.push(parse_variant(b, v)?);
        c.eat(Rule::comma);
    }
    c.take(Rule::rbrace)?;
    let until_decided = c.opt(Rule::until_decided).map(|u| b.span(&u));
    c.done()?;
    Ok(Experiment {
        name,
        variants,
        until_decided,
        span,
    })
}

fn parse_variant(b: Builder, pair: Pair<'_, Rule>) -> Built<Variant> {
    let mut c = Cursor::new(b, pair);
    let name = parse_ident(b, c.take(Rule::variant_name)?);
    let weight = parse_int(b, c.take(Rule::int)?)?;
    c.done()?;
    Ok(Variant { name, weight })
}

fn parse_state(b: Builder, pair: Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Built<State> {
    let span = b.span(&pair);
    let mut c = Cursor::new(b, pair);
    c.take(Rule::kw_state)?;
    let name = parse_ident(b, c.take(Rule::state_name)?);
    c.take(Rule::lbrace)?;
    let mut statements = Vec::new();
    while let Some(s) = c.opt(Rule::statement) {
        match parse_statement(b, s) {
            Ok(s) => statements.push(s),
            Err(d) => errors.push(*d),
        }
    }
    c.take(Rule::rbrace)?;
    c.done()?;
    Ok(State {
        name,
        statements,
        span,
    })
}

fn parse_statement(b: Builder, pair: Pair<'_, Rule>) -> Built<Statement> {
    let span = b.span(&pair);
    let mut outer = Cursor::new(b, pair);
    let inner = outer.next()?;
    outer.done()?;
    let rule = inner.as_rule();
    if rule == Rule::window {
        return Ok(Statement {
            kind: StatementKind::Window(parse_window(b, inner)?),
            span,
        });
    }
    let mut c = Cursor::new(b, inner);
    c.next()?; // the keyword
    let kind = match rule {
        Rule::send_stmt => {
            let template = parse_string(b, c.take(Rule::string)?)?;
            let via = if c.eat(Rule::kw_via) {
                Some(parse_ident(b, c.take(Rule::channel_name)?))
            } else {
                None
            };
            StatementKind::Send { template, via }
        }
        Rule::on_stmt => {
            let event = parse_ident(b, c.take(Rule::event_name)?);
            let filter = if c.eat(Rule::kw_where) {
                Some(parse_expr(b, c.take(Rule::expr)?, 0)?)
            } else {
                None
            };
            c.take(Rule::arrow)?;
            let target = parse_ident(b, c.take(Rule::state_name)?);
            StatementKind::On {
                event,
                filter,
                target,
            }
        }
        Rule::after_stmt => {
            let duration = parse_duration(b, c.take(Rule::duration)?)?;
            c.take(Rule::arrow)?;
            let target = parse_ident(b, c.take(Rule::state_name)?);
            StatementKind::After { duration, target }
        }
        Rule::at_deadline_stmt => {
            c.take(Rule::kw_deadline)?;
            c.take(Rule::arrow)?;
            let target = parse_ident(b, c.take(Rule::state_name)?);
            StatementKind::AtDeadline { target }
        }
        Rule::before_deadline_stmt => {
            c.take(Rule::kw_deadline)?;
            let duration = parse_duration(b, c.take(Rule::duration)?)?;
            c.take(Rule::arrow)?;
            let target = parse_ident(b, c.take(Rule::state_name)?);
            StatementKind::BeforeDeadline { duration, target }
        }
        Rule::split_stmt => {
            let experiment = parse_ident(b, c.take(Rule::experiment_name)?);
            c.take(Rule::lbrace)?;
            let mut arms = Vec::new();
            while let Some(arm) = c.opt(Rule::split_arm) {
                arms.push(parse_split_arm(b, arm)?);
                c.eat(Rule::comma);
            }
            c.take(Rule::rbrace)?;
            StatementKind::Split { experiment, arms }
        }
        Rule::end_stmt => StatementKind::End,
        other => {
            return Err(b.internal(span, format!("unexpected `{other:?}` in `statement`")));
        }
    };
    c.done()?;
    Ok(Statement { kind, span })
}

fn parse_split_arm(b: Builder, pair: Pair<'_, Rule>) -> Built<SplitArm> {
    let mut c = Cursor::new(b, pair);
    let variant = parse_ident(b, c.take(Rule::variant_name)?);
    c.take(Rule::arrow)?;
    let target = parse_ident(b, c.take(Rule::state_name)?);
    c.done()?;
    Ok(SplitArm { variant, target })
}

/// Deeper than this, a condition is refused rather than risk the stack.
const MAX_DEPTH: usize = 64;

fn parse_expr(b: Builder, pair: Pair<'_, Rule>, depth: usize) -> Built<Expr> {
    if depth > MAX_DEPTH {
        return Err(b.error(b.span(&pair), SyntaxError::TooDeep));
    }
    let mut c = Cursor::new(b, pair);
    let mut left = parse_and_expr(b, c.take(Rule::and_expr)?, depth)?;
    while c.eat(Rule::kw_or) {
        let right = parse_and_expr(b, c.take(Rule::and_expr)?, depth)?;
        left = Expr {
            span: left.span.to(right.span),
            kind: ExprKind::Or(Box::new(left), Box::new(right)),
        };
    }
    c.done()?;
    Ok(left)
}

fn parse_and_expr(b: Builder, pair: Pair<'_, Rule>, depth: usize) -> Built<Expr> {
    let mut c = Cursor::new(b, pair);
    let mut left = parse_not_expr(b, c.take(Rule::not_expr)?, depth)?;
    while c.eat(Rule::kw_and) {
        let right = parse_not_expr(b, c.take(Rule::not_expr)?, depth)?;
        left = Expr {
            span: left.span.to(right.span),
            kind: ExprKind::And(Box::new(left), Box::new(right)),
        };
    }
    c.done()?;
    Ok(left)
}

fn parse_not_expr(b: Builder, pair: Pair<'_, Rule>, depth: usize) -> Built<Expr> {
    let span = b.span(&pair);
    if depth > MAX_DEPTH {
        return Err(b.error(span, SyntaxError::TooDeep));
    }
    let mut c = Cursor::new(b, pair);
    let first = c.next()?;
    let kind = match first.as_rule() {
        Rule::kw_not => {
            let inner = parse_not_expr(b, c.take(Rule::not_expr)?, depth + 1)?;
            ExprKind::Not(Box::new(inner))
        }
        Rule::group => ExprKind::Group(Box::new(parse_group(b, first, depth + 1)?)),
        Rule::comparison => parse_comparison(b, first)?,
        _ => return Err(unexpected(b, &first, Rule::not_expr)),
    };
    c.done()?;
    Ok(Expr { kind, span })
}

fn parse_group(b: Builder, pair: Pair<'_, Rule>, depth: usize) -> Built<Expr> {
    let mut c = Cursor::new(b, pair);
    c.take(Rule::lparen)?;
    let inner = parse_expr(b, c.take(Rule::expr)?, depth)?;
    c.take(Rule::rparen)?;
    c.done()?;
    Ok(inner)
}

fn parse_comparison(b: Builder, pair: Pair<'_, Rule>) -> Built<ExprKind> {
    let mut c = Cursor::new(b, pair);
    let path = parse_path(b, c.take(Rule::path)?)?;
    let op = c.next()?;
    let kind = match op.as_rule() {
        Rule::compare_op => {
            let op = match op.as_str() {
                "==" => CompareOp::Eq,
                "!=" => CompareOp::Ne,
                other => {
                    return Err(b.internal(b.span(&op), format!("`{other}` is no operator")));
                }
            };
            let value = parse_value(b, c.take(Rule::value)?)?;
            ExprKind::Compare { path, op, value }
        }
        Rule::kw_in => {
            c.take(Rule::lbracket)?;
            let mut values = vec![parse_value(b, c.take(Rule::value)?)?];
            while c.eat(Rule::comma) {
                if let Some(v) = c.opt(Rule::value) {
                    values.push(parse_value(b, v)?);
                }
            }
            c.take(Rule::rbracket)?;
            ExprKind::In { path, values }
        }
        Rule::kw_matches => {
            let pattern = parse_string(b, c.take(Rule::string)?)?;
            ExprKind::Matches { path, pattern }
        }
        _ => return Err(unexpected(b, &op, Rule::comparison)),
    };
    c.done()?;
    Ok(kind)
}

fn parse_path(b: Builder, pair: Pair<'_, Rule>) -> Built<Path> {
    let span = b.span(&pair);
    let mut c = Cursor::new(b, pair);
    let mut segments = vec![parse_ident(b, c.take(Rule::field_name)?)];
    while let Some(seg) = c.opt(Rule::field_name) {
        segments.push(parse_ident(b, seg));
    }
    c.done()?;
    Ok(Path { segments, span })
}

fn parse_value(b: Builder, pair: Pair<'_, Rule>) -> Built<Value> {
    let mut c = Cursor::new(b, pair);
    let inner = c.next()?;
    c.done()?;
    match inner.as_rule() {
        Rule::string => Ok(Value::Str(parse_string(b, inner)?)),
        Rule::int => Ok(Value::Int(parse_int(b, inner)?)),
        _ => Err(unexpected(b, &inner, Rule::value)),
    }
}

/// Any of the name rules (`state_name`, `event_name`...): an [`Ident`].
fn parse_ident(b: Builder, pair: Pair<'_, Rule>) -> Ident {
    Ident {
        name: pair.as_str().to_owned(),
        span: b.span(&pair),
    }
}

fn parse_string(b: Builder, pair: Pair<'_, Rule>) -> Built<Str> {
    let span = b.span(&pair);
    let text = pair.as_str();
    let inner = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(|| b.internal(span, "a string without quotes"))?;
    let mut value = String::with_capacity(inner.len());
    let mut chars = inner.char_indices();
    while let Some((i, ch)) = chars.next() {
        if ch != '\\' {
            value.push(ch);
            continue;
        }
        match chars.next() {
            Some((_, '"')) => value.push('"'),
            Some((_, '\\')) => value.push('\\'),
            Some((_, 'n')) => value.push('\n'),
            Some((_, other)) => {
                let start = span.start + 1 + i;
                let end = start + 1 + other.len_utf8();
                return Err(b.error(
                    Span::new(start, end),
                    SyntaxError::UnknownEscape {
                        escape: format!("\\{other}"),
                    },
                ));
            }
            None => return Err(b.internal(span, "a string ending in `\\`")),
        }
    }
    Ok(Str { value, span })
}

fn parse_int(b: Builder, pair: Pair<'_, Rule>) -> Built<Int> {
    let span = b.span(&pair);
    let text = pair.as_str();
    let value = text.parse::<u64>().map_err(|_| {
        b.error(
            span,
            SyntaxError::NumberTooLarge {
                number: text.to_owned(),
            },
        )
    })?;
    Ok(Int { value, span })
}

fn parse_duration(b: Builder, pair: Pair<'_, Rule>) -> Built<Duration> {
    let span = b.span(&pair);
    let text = pair.as_str();
    let split = text.len().saturating_sub(1);
    let (digits, unit) = (text.get(..split), text.get(split..));
    let unit = match unit {
        Some("m") => DurationUnit::Minutes,
        Some("h") => DurationUnit::Hours,
        Some("d") => DurationUnit::Days,
        Some("w") => DurationUnit::Weeks,
        _ => return Err(b.internal(span, format!("`{text}` is no duration"))),
    };
    let digits = digits.unwrap_or_default();
    let amount = digits.parse::<u64>().map_err(|_| {
        b.error(
            Span::new(span.start, span.start + digits.len()),
            SyntaxError::NumberTooLarge {
                number: digits.to_owned(),
            },
        )
    })?;
    Ok(Duration { amount, unit, span })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Sources;

    /// The LANGUAGE.md example, as shipped in `campaigns/`.
    const EXAMPLE: &str = include_str!("../../campaigns/warehouse.nudge");

    fn ok(src: &str) -> ast::File {
        match parse(0, src) {
            Ok(file) => file,
            Err(errors) => panic!("{src}\nshould parse, got {errors:#?}"),
        }
    }

    fn text(src: &str, span: Span) -> &str {
        &src[span.start..span.end]
    }

    /// The one setting of `campaign c { LINE state s { end } }`.
    fn setting(line: &str) -> SettingKind {
        let src = format!("campaign c {{\n  {line}\n  state s {{ end }}\n}}\n");
        let mut file = ok(&src);
        let setting = file.campaigns.remove(0).settings.remove(0);
        assert_eq!(text(&src, setting.span), line, "setting span");
        setting.kind
    }

    /// The one statement of `campaign c { state s { LINE } }`.
    fn statement(line: &str) -> StatementKind {
        let src = format!("campaign c {{\n  state s {{\n    {line}\n  }}\n}}\n");
        let mut file = ok(&src);
        let statement = file
            .campaigns
            .remove(0)
            .states
            .remove(0)
            .statements
            .remove(0);
        assert_eq!(text(&src, statement.span), line, "statement span");
        statement.kind
    }

    /// A condition as an S-expression, to check precedence at a glance.
    fn show(e: &Expr) -> String {
        let path = |p: &Path| {
            p.segments
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(".")
        };
        match &e.kind {
            ExprKind::Or(a, b) => format!("(or {} {})", show(a), show(b)),
            ExprKind::And(a, b) => format!("(and {} {})", show(a), show(b)),
            ExprKind::Not(a) => format!("(not {})", show(a)),
            ExprKind::Group(a) => format!("[{}]", show(a)),
            ExprKind::Compare { path: p, op, value } => {
                let op = if *op == CompareOp::Eq { "==" } else { "!=" };
                format!("{}{op}{}", path(p), value.text())
            }
            ExprKind::In { path: p, values } => {
                let values: Vec<String> = values.iter().map(Value::text).collect();
                format!("{} in {}", path(p), values.join("|"))
            }
            ExprKind::Matches { path: p, pattern } => format!("{}~{}", path(p), pattern.value),
        }
    }

    fn condition(cond: &str) -> String {
        match setting(&format!("enroll on applied where {cond}")) {
            SettingKind::Enroll {
                filter: Some(e), ..
            } => show(&e),
            other => panic!("not an enroll with a filter: {other:?}"),
        }
    }

    #[test]
    fn the_language_example_parses() {
        let file = ok(EXAMPLE);
        assert_eq!(file.campaigns.len(), 1);
        let c = &file.campaigns[0];
        assert_eq!(c.name.name, "warehouse_associate");
        assert_eq!(text(EXAMPLE, c.name.span), "warehouse_associate");
        assert!(text(EXAMPLE, c.span).starts_with("campaign warehouse_associate {"));
        assert!(text(EXAMPLE, c.span).ends_with("end\n  }\n}"));

        let settings: Vec<&str> = c.settings.iter().map(|s| text(EXAMPLE, s.span)).collect();
        assert_eq!(settings.len(), 10);
        assert_eq!(settings[0], r#"title    "Warehouse Associate, Dallas DC""#);
        assert_eq!(settings[7], "deadline 72h");
        assert_eq!(settings[9], "exit on  opted_out, bounced");
        assert!(matches!(
            &c.settings[0].kind,
            SettingKind::Title(s) if s.value == "Warehouse Associate, Dallas DC"
        ));
        let SettingKind::Enroll { event, filter } = &c.settings[1].kind else {
            panic!("enroll expected");
        };
        assert_eq!(event.name, "applied");
        let filter = filter.as_ref().expect("a filter");
        assert_eq!(
            show(filter),
            "(and role==Warehouse Associate source!=referral)"
        );
        assert_eq!(
            text(EXAMPLE, filter.span),
            r#"role == "Warehouse Associate" and source != "referral""#
        );
        assert!(matches!(
            &c.settings[3].kind,
            SettingKind::Timezone(TimezoneSpec::Candidate { fallback: Some(s) })
                if s.value == "America/Chicago"
        ));
        let SettingKind::Window(w) = &c.settings[4].kind else {
            panic!("window expected");
        };
        assert_eq!((w.open.hour, w.close.hour), (8, 20));
        assert_eq!((w.days[0].from, w.days[0].to), (Day::Mon, Some(Day::Sun)));
        assert!(matches!(
            &c.settings[5].kind,
            SettingKind::Limit(Limit::Per { count, period })
                if count.value == 1 && period.seconds() == 12 * 3600
        ));
        assert!(matches!(
            &c.settings[6].kind,
            SettingKind::Limit(Limit::Total { count }) if count.value == 5
        ));

        assert_eq!(c.experiments.len(), 1);
        let e = &c.experiments[0];
        assert_eq!(
            text(EXAMPLE, e.span),
            "experiment copy { short 50, warm 50 }"
        );
        let variants: Vec<(&str, u64)> = e
            .variants
            .iter()
            .map(|v| (v.name.name.as_str(), v.weight.value))
            .collect();
        assert_eq!(variants, [("short", 50), ("warm", 50)]);

        let states: Vec<&str> = c.states.iter().map(|s| s.name.name.as_str()).collect();
        assert_eq!(
            states,
            [
                "invite",
                "reminder",
                "last_call",
                "clicked",
                "started",
                "nudge",
                "expired"
            ]
        );
        let invite = &c.states[0];
        let invite_text = text(EXAMPLE, invite.span);
        assert!(invite_text.starts_with("state invite {") && invite_text.ends_with('}'));
        let statements: Vec<&str> = invite
            .statements
            .iter()
            .map(|s| text(EXAMPLE, s.span))
            .collect();
        assert_eq!(
            statements,
            [
                "window mon-thu, sat 09:00-19:00",
                r#"send "invite-{copy}""#,
                "on clicked -> clicked",
                "after 24h -> reminder",
            ]
        );
        let StatementKind::Window(w) = &invite.statements[0].kind else {
            panic!("window expected");
        };
        let days: Vec<(Day, Option<Day>)> = w.days.iter().map(|d| (d.from, d.to)).collect();
        assert_eq!(days, [(Day::Mon, Some(Day::Thu)), (Day::Sat, None)]);
        assert_eq!(text(EXAMPLE, w.days[1].span), "sat");
        assert_eq!(w.open.to_string(), "09:00");
        assert!(matches!(
            &invite.statements[3].kind,
            StatementKind::After { duration, target }
                if duration.to_string() == "24h" && target.name == "reminder"
                    && text(EXAMPLE, target.span) == "reminder"
        ));
        assert!(matches!(
            &c.states[1].statements[0].kind,
            StatementKind::Send { template, via: Some(via) }
                if template.value == "reminder" && via.name == "email"
        ));
        assert!(matches!(
            &c.states[4].statements[0].kind,
            StatementKind::BeforeDeadline { duration, target }
                if duration.seconds() == 12 * 3600 && target.name == "nudge"
        ));
        assert_eq!(c.states[6].statements[1].kind, StatementKind::End);

        let comments: Vec<&str> = file.comments.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            comments,
            [
                "# campaigns/warehouse.nudge",
                "# no Friday for the first contact"
            ]
        );
        for comment in &file.comments {
            assert_eq!(text(EXAMPLE, comment.span), comment.text);
        }
    }

    #[test]
    fn every_setting_form() {
        assert!(
            matches!(setting(r#"title "A \"B\"""#), SettingKind::Title(s) if s.value == r#"A "B""#)
        );
        assert!(matches!(
            setting("enroll on applied"),
            SettingKind::Enroll { event, filter: None } if event.name == "applied"
        ));
        assert!(matches!(
            setting("channels whatsapp"),
            SettingKind::Channels(c) if c.len() == 1 && c[0].name == "whatsapp"
        ));
        assert!(matches!(
            setting(r#"timezone "Europe/Berlin""#),
            SettingKind::Timezone(TimezoneSpec::Fixed(s)) if s.value == "Europe/Berlin"
        ));
        assert!(matches!(
            setting("timezone candidate"),
            SettingKind::Timezone(TimezoneSpec::Candidate { fallback: None })
        ));
        assert!(matches!(
            setting("window fri-mon 20:00-08:00"),
            SettingKind::Window(w) if w.days[0].from == Day::Fri && w.open.minutes() == 1200
        ));
        assert!(matches!(
            setting("limit 2 per 1w"),
            SettingKind::Limit(Limit::Per { count, period })
                if count.value == 2 && period.unit == DurationUnit::Weeks
        ));
        assert!(matches!(
            setting("deadline 48h after enrollment"),
            SettingKind::Deadline { duration, after_enrollment: true } if duration.amount == 48
        ));
        assert!(matches!(
            setting("deadline 30m"),
            SettingKind::Deadline { duration, after_enrollment: false }
                if duration.unit == DurationUnit::Minutes
        ));
        assert!(matches!(setting("goal completed"), SettingKind::Goal(g) if g.name == "completed"));
        assert!(matches!(
            setting("exit on opted_out"),
            SettingKind::Exit(e) if e.len() == 1
        ));
        assert!(matches!(
            setting(r#"link "https://example.com/apply""#),
            SettingKind::Link(s) if s.value == "https://example.com/apply"
        ));
    }

    #[test]
    fn every_statement_form() {
        assert!(matches!(
            statement(r#"send "a""#),
            StatementKind::Send { template, via: None } if template.value == "a"
        ));
        assert!(matches!(
            statement(r#"on clicked where event.link == "apply" -> done"#),
            StatementKind::On { event, filter: Some(f), target }
                if event.name == "clicked" && show(&f) == "event.link==apply" && target.name == "done"
        ));
        assert!(matches!(
            statement("on replied -> done"),
            StatementKind::On { filter: None, .. }
        ));
        assert!(matches!(
            statement("after 2d -> s"),
            StatementKind::After { duration, .. } if duration.seconds() == 2 * 86_400
        ));
        assert!(matches!(
            statement("at deadline -> s"),
            StatementKind::AtDeadline { target } if target.name == "s"
        ));
        assert!(matches!(
            statement("before deadline 1w -> s"),
            StatementKind::BeforeDeadline { duration, .. } if duration.seconds() == 604_800
        ));
        for split in [
            "split copy { short -> a, warm -> b }",
            "split copy { short -> a warm -> b }",
            "split copy { short -> a, warm -> b, }",
        ] {
            let StatementKind::Split { experiment, arms } = statement(split) else {
                panic!("split expected");
            };
            assert_eq!(experiment.name, "copy");
            let arms: Vec<(&str, &str)> = arms
                .iter()
                .map(|a| (a.variant.name.as_str(), a.target.name.as_str()))
                .collect();
            assert_eq!(arms, [("short", "a"), ("warm", "b")]);
        }
        assert!(matches!(
            statement("window sat, sun 10:00-12:30"),
            StatementKind::Window(w) if w.days.len() == 2 && w.close.minute == 30
        ));
        assert_eq!(statement("end"), StatementKind::End);
    }

    #[test]
    fn experiments_take_commas_or_not() {
        for src in [
            "campaign c { experiment e { a 1 b 2 } state s { end } }",
            "campaign c { experiment e { a 1, b 2, } state s { end } }",
        ] {
            let file = ok(src);
            let e = &file.campaigns[0].experiments[0];
            assert_eq!(e.variants.len(), 2);
            assert_eq!(e.variants[1].weight.value, 2);
        }
    }

    #[test]
    fn items_may_come_in_any_order() {
        let src = "campaign c {\n state a { end }\n title \"t\"\n experiment e { x 1 }\n goal g\n state b { end }\n}";
        let c = &ok(src).campaigns[0];
        assert_eq!(c.settings.len(), 2);
        assert_eq!(c.experiments.len(), 1);
        let names: Vec<&str> = c.states.iter().map(|s| s.name.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn not_binds_tighter_than_and_tighter_than_or() {
        assert_eq!(
            condition("a == 1 or not b == 2 and c == 3"),
            "(or a==1 (and (not b==2) c==3))"
        );
        assert_eq!(
            condition("a == 1 and b == 2 or c == 3 and d == 4"),
            "(or (and a==1 b==2) (and c==3 d==4))"
        );
        assert_eq!(
            condition("a == 1 or b == 2 or c == 3"),
            "(or (or a==1 b==2) c==3)"
        );
        assert_eq!(
            condition("not (a == 1 or b == 2) and c != 3"),
            "(and (not [(or a==1 b==2)]) c!=3)"
        );
        assert_eq!(
            condition(r#"role in ["a", 2,] and name matches "J*n?""#),
            "(and role in a|2 name~J*n?)"
        );
        assert_eq!(condition("not not a == 1"), "(not (not a==1))");
    }

    #[test]
    fn keywords_stop_at_word_boundaries() {
        assert_eq!(
            condition(r#"android == "x" and order == 1 or notes != "" and indigo == 2"#),
            "(or (and android==x order==1) (and notes!= indigo==2))"
        );
        let src = "campaign c {\n state end { on on -> end\n end }\n state started { after 1h -> expired }\n state expired { end }\n}";
        let c = &ok(src).campaigns[0];
        assert_eq!(c.states[0].name.name, "end");
        assert!(matches!(
            &c.states[0].statements[0].kind,
            StatementKind::On { event, target, .. } if event.name == "on" && target.name == "end"
        ));
    }

    #[test]
    fn string_escapes_are_resolved() {
        let s = setting(r#"title "say \"hi\"\\ \n — é""#);
        assert!(matches!(s, SettingKind::Title(t) if t.value == "say \"hi\"\\ \n — é"));
    }

    #[test]
    fn comments_are_collected_but_not_inside_strings() {
        let src =
            "# top\ncampaign c { # after brace\r\n  title \"a # b\" #tail\n  state s { end }\n}\n#";
        let file = ok(src);
        let comments: Vec<&str> = file.comments.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(comments, ["# top", "# after brace", "#tail", "#"]);
        for comment in &file.comments {
            assert_eq!(text(src, comment.span), comment.text);
        }
        assert!(matches!(
            &file.campaigns[0].settings[0].kind,
            SettingKind::Title(t) if t.value == "a # b"
        ));
    }

    #[test]
    fn several_campaigns_and_empty_files() {
        assert!(ok("").campaigns.is_empty());
        assert!(ok("  # only a comment\n").campaigns.is_empty());
        let file = ok("campaign a { state s { end } }\ncampaign b { state s { end } }");
        assert_eq!(file.campaigns.len(), 2);
        assert_eq!(file.campaigns[1].name.name, "b");
    }

    /// Parses `src`, which must fail; returns each error as
    /// `line:col: message` (and `help: ...` when there is one).
    fn errors(src: &str) -> Vec<String> {
        let mut sources = Sources::default();
        let id = sources.add("test.nudge", src);
        let Err(errors) = parse(id, src) else {
            panic!("{src}\nshould not parse");
        };
        errors
            .iter()
            .map(|d| {
                let (line, col) = sources.line_col(id, d.span.start);
                match &d.help {
                    Some(help) => format!("{line}:{col}: {} | help: {help}", d.message),
                    None => format!("{line}:{col}: {}", d.message),
                }
            })
            .collect()
    }

    /// `campaign c { state s { LINE } }`: the errors of one statement line.
    fn in_state(line: &str) -> Vec<String> {
        errors(&format!(
            "campaign c {{\n  state s {{\n    {line}\n  }}\n}}\n"
        ))
    }

    /// `campaign c { LINE state s { end } }`: the errors of one setting line.
    fn in_campaign(line: &str) -> Vec<String> {
        errors(&format!(
            "campaign c {{\n  {line}\n  state s {{ end }}\n}}\n"
        ))
    }

    #[test]
    fn syntax_errors_in_words() {
        let cases: Vec<(Vec<String>, &str)> = vec![
            (
                in_state("after 24 h -> s"),
                "3:11: expected a duration such as `24h`, found `24 h` | help: durations have no space: write `24h`",
            ),
            (
                in_state("after 24x -> s"),
                "3:11: expected a duration such as `24h`, found `24x` | help: unknown unit `x`: use m, h, d or w",
            ),
            (
                in_state("after 3 days -> s"),
                "3:11: expected a duration such as `24h`, found `3 days` | help: durations have no space: write `3d`",
            ),
            (
                in_state("after 24 -> s"),
                "3:11: expected a duration such as `24h`, found `24` | help: a duration needs a unit, m, h, d or w: for example `24h`",
            ),
            (
                in_state("after 24h s"),
                "3:15: expected `->`, found `s`",
            ),
            (
                in_state("on clicked clicked"),
                "3:16: expected `->` or `where`, found `clicked`",
            ),
            (
                in_state("window mon 9:00-17:00"),
                "3:16: expected a time such as `09:00`, found `9:00` | help: times have two-digit hours: write `09:00`",
            ),
            (
                in_state("window mon 09:00-24:00"),
                "3:22: invalid time `24:00` | help: times use the 24-hour clock, `00:00` to `23:59`",
            ),
            (
                in_state("window mon 09:60-17:00"),
                "3:19: invalid time `09:60` | help: times use the 24-hour clock, `00:00` to `23:59`",
            ),
            (
                in_state("window monday 09:00-17:00"),
                "3:12: expected a day such as `mon`, found `monday` | help: days have three letters: write `mon`",
            ),
            (
                in_state("window tues 09:00-17:00"),
                "3:12: expected a day such as `mon`, found `tues` | help: days have three letters: write `tue`",
            ),
            (
                in_state("window weekdays 09:00-17:00"),
                "3:12: expected a day such as `mon`, found `weekdays` | help: days are mon tue wed thu fri sat sun",
            ),
            (
                in_state(r#"send "a\tb""#),
                "3:12: unknown escape `\\t` in string | help: the escapes are `\\\"`, `\\\\` and `\\n`",
            ),
            (
                in_state(r#"send "open"#),
                "3:10: unterminated string | help: close the string with `\"`; write a line break inside it as `\\n`",
            ),
            (
                in_state("send 'x'"),
                "3:10: expected a string, found `'x'` | help: strings use double quotes: \"like this\"",
            ),
            (
                in_state("sned \"x\""),
                "3:5: expected a statement or `}`, found `sned` | help: did you mean `send`?",
            ),
            (
                in_state("End"),
                "3:5: expected a statement or `}`, found `End` | help: keywords are lowercase: write `end`",
            ),
            (
                in_state("remind \"x\""),
                "3:5: expected a statement or `}`, found `remind` | help: the statements of a state are send, on, after, at deadline, before deadline, split, window, end",
            ),
            (
                in_state("goal done"),
                "3:5: expected a statement or `}`, found `goal` | help: `goal` is a campaign setting: move it out of the state, into the campaign",
            ),
            (
                in_campaign("titel \"x\""),
                "2:3: expected a setting, `experiment`, `state` or `}`, found `titel` | help: did you mean `title`?",
            ),
            (
                in_campaign("Title \"x\""),
                "2:3: expected a setting, `experiment`, `state` or `}`, found `Title` | help: keywords are lowercase: write `title`",
            ),
            (
                in_campaign("send \"x\""),
                "2:3: expected a setting, `experiment`, `state` or `}`, found `send` | help: `send` is a statement: it belongs inside a `state` block",
            ),
            (
                in_campaign("channels sms email"),
                "2:16: expected `,`, a setting, `experiment`, `state` or `}`, found `email` | help: separate the names of a list with `,`",
            ),
            (
                in_campaign("enroll on applied where role = \"x\""),
                "2:32: expected `==`, `!=`, `in` or `matches`, found `=` | help: to compare, write `==` (or `!=`)",
            ),
            (
                in_campaign("window 09:00-17:00"),
                "2:10: expected a day such as `mon`, found `09:00` | help: a window names its days first: `window mon-fri 09:00-17:00`",
            ),
            (
                in_campaign("limit 99999999999999999999 total"),
                "2:9: number `99999999999999999999` is too large",
            ),
            (
                in_campaign("goal Completed"),
                "2:8: expected an event name, found `Completed` | help: names are written with lowercase letters, digits and `_`, as in `last_call`",
            ),
            (
                in_campaign("deadline 72h after"),
                "3:3: expected `enrollment`, found `state`",
            ),
            (
                errors("campaign c {\n  State s { end }\n}\n"),
                "2:3: expected `state`, found `State` | help: keywords are lowercase: write `state`",
            ),
            (
                errors("campaign c {\n  state a {\n    send \"x\"\n  state b { end }\n}\n"),
                "4:3: expected `}` to close state `a`, found `state` | help: add `}` at the end of state `a`",
            ),
            (
                errors("campaign c {\n  state a { end }\n"),
                "3:1: expected `}` to close campaign `c`, found end of file | help: add `}` at the end of campaign `c`",
            ),
            (
                errors("campaign c {\n  state a { end }\n}\n}\n"),
                "4:1: expected `campaign`, found `}` | help: this `}` closes nothing: remove it",
            ),
            (
                errors("title \"x\"\ncampaign c { state a { end } }\n"),
                "1:1: expected `campaign`, found `title` | help: everything goes inside a campaign: `campaign name { ... }`",
            ),
            (
                errors("campain c { state a { end } }\n"),
                "1:1: expected `campaign`, found `campain` | help: did you mean `campaign`?",
            ),
        ];
        let wrong: Vec<String> = cases
            .into_iter()
            .filter(|(got, want)| got != &[*want])
            .map(|(got, want)| format!("want {want}\n got {got:?}"))
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn every_error_is_reported() {
        let src = "campaign a {\n  titel \"x\"\n  state s {\n    after 24 h -> t\n    send \"ok\"\n    on clicked t\n  }\n  state t {\n    window mon 9:00-10:00\n    end\n  }\n}\ncampaign b {\n  state u { after 1x -> u }\n}\n";
        let got = errors(src);
        let at: Vec<&str> = got
            .iter()
            .map(|e| e.split(": ").next().unwrap_or(""))
            .collect();
        assert_eq!(at, ["2:3", "4:11", "6:16", "9:16", "14:19"], "{got:#?}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!(
            "campaign c {{ enroll on x where {}a == 1{} state s {{ end }} }}",
            "(".repeat(3000),
            ")".repeat(3000)
        );
        let got = errors(&deep);
        assert_eq!(got.len(), 1);
        assert!(got[0].contains("nested too deeply"), "{got:?}");
        let nots = format!(
            "campaign c {{ enroll on x where {}a == 1 state s {{ end }} }}",
            "not ".repeat(3000)
        );
        assert!(errors(&nots)[0].contains("nested too deeply"));
        let fine = format!(
            "campaign c {{ enroll on x where {}a == 1{} state s {{ end }} }}",
            "(".repeat(20),
            ")".repeat(20)
        );
        ok(&fine);
    }
}
