//! The compiled `where` filter: field paths resolved to [`Field`]s and
//! values case-folded once, when the campaign is compiled, so that an
//! evaluation only compares text.
//!
//! Comparisons ignore letter case; a field the candidate (or the event)
//! does not have makes `==`, `in` and `matches` false and `!=` true.

use super::candidate::{Candidate, Fields};

/// A `where` filter, with the text it was written as (in the formatter's
/// canonical layout) for graphs, summaries and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    text: String,
    condition: Condition,
}

/// The tree of a filter. `!=` is `Not(Equals)`: both read a missing field
/// the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Any(Vec<Condition>),
    All(Vec<Condition>),
    Not(Box<Condition>),
    /// `field == value`, `value` case-folded.
    Equals {
        field: Field,
        value: String,
    },
    /// `field in [values]`, each case-folded.
    OneOf {
        field: Field,
        values: Vec<String>,
    },
    /// `field matches "glob"`, the pattern case-folded.
    Matches {
        field: Field,
        pattern: Vec<char>,
    },
}

/// What a path in a filter reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `role` or `candidate.role`.
    Candidate(CandidateField),
    /// `event.link`: a field of the event being matched (none on enrollment).
    Event(String),
    /// A path of any other shape (`a.b.c`): never present.
    Absent,
}

/// A candidate field; the built-in ones by name, any other as custom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CandidateField {
    Id,
    Name,
    /// The `first_name` field, else the first word of `name`.
    FirstName,
    Email,
    Phone,
    Timezone,
    Language,
    Role,
    Source,
    Custom(String),
}

impl CandidateField {
    const BUILT_IN: [CandidateField; 9] = [
        CandidateField::Id,
        CandidateField::Name,
        CandidateField::FirstName,
        CandidateField::Email,
        CandidateField::Phone,
        CandidateField::Timezone,
        CandidateField::Language,
        CandidateField::Role,
        CandidateField::Source,
    ];

    /// The field a (lowercase) name stands for.
    pub fn from_name(name: &str) -> CandidateField {
        CandidateField::BUILT_IN
            .into_iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| CandidateField::Custom(name.to_string()))
    }

    /// The key of the field in [`Candidate::fields`].
    pub fn name(&self) -> &str {
        match self {
            CandidateField::Id => "id",
            CandidateField::Name => "name",
            CandidateField::FirstName => "first_name",
            CandidateField::Email => "email",
            CandidateField::Phone => "phone",
            CandidateField::Timezone => "timezone",
            CandidateField::Language => "language",
            CandidateField::Role => "role",
            CandidateField::Source => "source",
            CandidateField::Custom(name) => name,
        }
    }
}

impl Field {
    /// The field a path of segment names reads: `x` and `candidate.x` a
    /// candidate field, `event.x` an event field, anything else nothing.
    pub fn from_path(segments: &[&str]) -> Field {
        match segments {
            [name] | ["candidate", name] => Field::Candidate(CandidateField::from_name(name)),
            ["event", name] => Field::Event((*name).to_string()),
            _ => Field::Absent,
        }
    }

    fn read<'a>(&self, candidate: &'a Candidate, event: &'a Fields) -> Option<&'a str> {
        match self {
            Field::Candidate(field) => candidate.field(field.name()),
            Field::Event(name) => event.get(name).map(String::as_str),
            Field::Absent => None,
        }
    }
}

/// Text as comparisons see it: letter case folded.
pub fn fold(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// Whether `value`, case-folded, is `folded`.
fn same_text(value: &str, folded: &str) -> bool {
    value
        .chars()
        .flat_map(char::to_lowercase)
        .eq(folded.chars())
}

impl Filter {
    pub fn new(text: String, condition: Condition) -> Filter {
        Filter { text, condition }
    }

    /// The filter as written, such as `role == "Picker" and source != "referral"`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the filter holds. `event` holds the fields of the event
    /// being matched, empty for enrollment filters.
    pub fn matches(&self, candidate: &Candidate, event: &Fields) -> bool {
        self.condition.holds(candidate, event)
    }
}

impl Condition {
    fn holds(&self, candidate: &Candidate, event: &Fields) -> bool {
        match self {
            Condition::Any(all) => all.iter().any(|c| c.holds(candidate, event)),
            Condition::All(all) => all.iter().all(|c| c.holds(candidate, event)),
            Condition::Not(c) => !c.holds(candidate, event),
            Condition::Equals { field, value } => field
                .read(candidate, event)
                .is_some_and(|v| same_text(v, value)),
            Condition::OneOf { field, values } => field
                .read(candidate, event)
                .is_some_and(|v| values.iter().any(|x| same_text(v, x))),
            Condition::Matches { field, pattern } => field
                .read(candidate, event)
                .is_some_and(|v| glob(pattern, v)),
        }
    }
}

/// A glob over the whole value: `*` any run, `?` one character. `pattern`
/// is already case-folded; the value is folded here.
pub fn glob(pattern: &[char], value: &str) -> bool {
    let p = pattern;
    let v: Vec<char> = value.chars().flat_map(char::to_lowercase).collect();
    // Iterative matcher with one backtrack point for the last `*`.
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globbed(pattern: &str, value: &str) -> bool {
        let folded: Vec<char> = fold(pattern).chars().collect();
        glob(&folded, value)
    }

    #[test]
    fn glob_matches_whole_value_ignoring_case() {
        assert!(globbed("*night*", "Night Shift Picker"));
        assert!(globbed("warehouse ?ssociate", "Warehouse Associate"));
        assert!(!globbed("warehouse", "Warehouse Associate"));
        assert!(globbed("*", ""));
        assert!(globbed("a*b*c", "aXXbYYc"));
        assert!(!globbed("a*b*c", "aXXbYY"));
    }

    #[test]
    fn paths_resolve_once() {
        assert_eq!(
            Field::from_path(&["candidate", "role"]),
            Field::Candidate(CandidateField::Role)
        );
        assert_eq!(
            Field::from_path(&["shift"]),
            Field::Candidate(CandidateField::Custom("shift".into()))
        );
        assert_eq!(
            Field::from_path(&["event", "link"]),
            Field::Event("link".into())
        );
        assert_eq!(Field::from_path(&["a", "b", "c"]), Field::Absent);
    }

    #[test]
    fn a_missing_field_fails_equals_and_passes_not_equals() {
        let c = Candidate::from_pairs([("Name", "Ana Ruiz"), ("role", "PICKER")], "sim");
        let none = Fields::new();
        let eq = |field: Field, value: &str| Condition::Equals {
            field,
            value: fold(value),
        };
        let role = Field::Candidate(CandidateField::Role);
        let source = Field::Candidate(CandidateField::Source);
        let first = Field::Candidate(CandidateField::FirstName);
        assert!(eq(role.clone(), "Picker").holds(&c, &none));
        assert!(eq(first, "ana").holds(&c, &none));
        assert!(!eq(source.clone(), "referral").holds(&c, &none));
        assert!(Condition::Not(Box::new(eq(source, "referral"))).holds(&c, &none));
        assert!(!eq(Field::Absent, "x").holds(&c, &none));
        let one_of = Condition::OneOf {
            field: role,
            values: vec![fold("Driver"), fold("picker")],
        };
        assert!(one_of.holds(&c, &none));
    }
}
