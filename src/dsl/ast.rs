//! The typed syntax tree of a `.nudge` file.
//!
//! Built by `dsl::parse` (the only module that sees pest's pairs) and read by
//! the checker, the compiler, the formatter and the graph printer. Every node
//! carries the [`Span`] of the text it came from, so any later phase can
//! point at the source.

use std::fmt;

/// A byte range `start..end` in the source text of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// An identifier (campaign, state, event, channel, experiment, variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A string literal, escapes already resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Str {
    pub value: String,
    pub span: Span,
}

/// A non-negative integer literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int {
    pub value: u64,
    pub span: Span,
}

/// The unit of a duration literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationUnit {
    Minutes,
    Hours,
    Days,
    Weeks,
}

impl DurationUnit {
    pub fn seconds(self) -> u64 {
        match self {
            DurationUnit::Minutes => 60,
            DurationUnit::Hours => 3_600,
            DurationUnit::Days => 86_400,
            DurationUnit::Weeks => 604_800,
        }
    }

    pub fn suffix(self) -> char {
        match self {
            DurationUnit::Minutes => 'm',
            DurationUnit::Hours => 'h',
            DurationUnit::Days => 'd',
            DurationUnit::Weeks => 'w',
        }
    }
}

/// A duration literal such as `24h`: a day is 24 hours of absolute time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration {
    pub amount: u64,
    pub unit: DurationUnit,
    pub span: Span,
}

impl Duration {
    /// Length in seconds, saturating on absurd literals.
    pub fn seconds(&self) -> u64 {
        self.amount.saturating_mul(self.unit.seconds())
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}

/// A day of the week, Monday first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    pub const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    /// 0 for Monday .. 6 for Sunday.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][self.index()]
    }

    pub fn from_name(s: &str) -> Option<Day> {
        Day::ALL.into_iter().find(|d| d.name() == s)
    }
}

/// `mon` or `mon-thu` (inclusive; `fri-mon` wraps over the weekend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub from: Day,
    pub to: Option<Day>,
    pub span: Span,
}

/// A time of day `HH:MM` on the 24-hour clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
    pub span: Span,
}

impl TimeOfDay {
    pub fn minutes(&self) -> u32 {
        u32::from(self.hour) * 60 + u32::from(self.minute)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// `window mon-thu, sat 09:00-19:00`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub days: Vec<DayRange>,
    pub open: TimeOfDay,
    pub close: TimeOfDay,
    pub span: Span,
}

/// A whole `.nudge` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub campaigns: Vec<Campaign>,
    /// Every `# ...` comment, in source order (for the formatter).
    pub comments: Vec<Comment>,
}

/// A `#` comment; `text` excludes the newline and includes the `#`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub text: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub name: Ident,
    pub settings: Vec<Setting>,
    pub experiments: Vec<Experiment>,
    pub states: Vec<State>,
    /// From `campaign` to the closing brace.
    pub span: Span,
    /// False when some of the campaign's text did not parse: the tree then
    /// holds only the items that did (see `parse::parse_recovering`).
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub kind: SettingKind,
    /// The whole setting, keyword included.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingKind {
    /// `title "Warehouse Associate"`
    Title(Str),
    /// `enroll on applied where ...`
    Enroll { event: Ident, filter: Option<Expr> },
    /// `channels sms, email`
    Channels(Vec<Ident>),
    /// `timezone "Europe/Berlin"` or `timezone candidate or "America/Chicago"`
    Timezone(TimezoneSpec),
    /// `window mon-sun 08:00-20:00`
    Window(Window),
    /// `limit 1 per 12h` / `limit 5 total`
    Limit(Limit),
    /// `deadline 72h` / `deadline 48h after enrollment`
    Deadline {
        duration: Duration,
        after_enrollment: bool,
    },
    /// `goal completed`
    Goal(Ident),
    /// `exit on opted_out, bounced`
    Exit(Vec<Ident>),
    /// `link "https://..."`
    Link(Str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimezoneSpec {
    /// `timezone "Europe/Berlin"`
    Fixed(Str),
    /// `timezone candidate` / `timezone candidate or "America/Chicago"`
    Candidate { fallback: Option<Str> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    Per { count: Int, period: Duration },
    Total { count: Int },
}

/// `experiment copy { short 50, warm 50 }`, optionally followed by
/// `until decided`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Experiment {
    pub name: Ident,
    pub variants: Vec<Variant>,
    /// The span of `until decided` when the experiment stops itself once
    /// a winner is clear (the daemon then gives new enrollments the winner).
    pub until_decided: Option<Span>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub name: Ident,
    pub weight: Int,
}

/// `state invite { ... }`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub name: Ident,
    pub statements: Vec<Statement>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub kind: StatementKind,
    /// The whole statement, keyword included.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementKind {
    /// `send "invite-{copy}" via email`
    Send { template: Str, via: Option<Ident> },
    /// `on clicked where event.link == "apply" -> clicked`
    On {
        event: Ident,
        filter: Option<Expr>,
        target: Ident,
    },
    /// `after 24h -> reminder`
    After { duration: Duration, target: Ident },
    /// `at deadline -> expired`
    AtDeadline { target: Ident },
    /// `before deadline 12h -> nudge`
    BeforeDeadline { duration: Duration, target: Ident },
    /// `split copy { short -> a, warm -> b }`
    Split {
        experiment: Ident,
        arms: Vec<SplitArm>,
    },
    /// `window mon-thu 09:00-19:00`
    Window(Window),
    /// `end`
    End,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitArm {
    pub variant: Ident,
    pub target: Ident,
}

/// A filter expression (`where ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprKind {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// Parentheses kept so the formatter can reproduce them.
    Group(Box<Expr>),
    /// `path == value` / `path != value`
    Compare {
        path: Path,
        op: CompareOp,
        value: Value,
    },
    /// `path in ["a", "b"]`
    In {
        path: Path,
        values: Vec<Value>,
    },
    /// `path matches "Warehouse*"`
    Matches {
        path: Path,
        pattern: Str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
}

/// `role`, `candidate.role`, `event.link`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub segments: Vec<Ident>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(Str),
    Int(Int),
}

impl Value {
    /// The text a comparison uses: a string as is, an integer as its digits.
    pub fn text(&self) -> String {
        match self {
            Value::Str(s) => s.value.clone(),
            Value::Int(i) => i.value.to_string(),
        }
    }

    pub fn span(&self) -> Span {
        match self {
            Value::Str(s) => s.span,
            Value::Int(i) => i.span,
        }
    }
}
