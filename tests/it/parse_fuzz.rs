//! Fuzz-style tests of the parser: whatever the text, `parse` returns a tree
//! or diagnostics whose spans lie within the text on character boundaries,
//! and never panics or reports an internal error.

use nudge::diag::Diagnostic;
use nudge::dsl::ast::Span;
use nudge::dsl::check::check as check_campaigns;
use nudge::dsl::load::load_str;
use nudge::dsl::parse::{parse, parse_recovering};
use proptest::prelude::*;
use proptest::sample::select;

/// The LANGUAGE.md example, with some multibyte text added.
const EXAMPLE: &str = r#"# campaigns/warehouse.nudge — entrepôt
campaign warehouse_associate {
  title    "Warehouse Associate, Dallas DC — café \"é\""
  enroll   on applied where role == "Warehouse Associate" and source != "referral"
  channels sms, email
  timezone candidate or "America/Chicago"
  window   mon-sun 08:00-20:00
  limit    1 per 12h
  limit    5 total
  deadline 72h
  goal     completed
  exit on  opted_out, bounced

  experiment copy { short 50, warm 50 }

  state invite {
    window mon-thu, sat 09:00-19:00     # no Friday for the first contact
    send "invite-{copy}"
    on clicked where event.link in ["apply", 2] or not (x matches "a*") -> clicked
    after 24h -> reminder
  }

  state reminder {
    send "reminder" via email
    on clicked -> clicked
    after 24h -> last_call
  }

  state last_call {
    send "last-call"
    on clicked -> clicked
    at deadline -> expired
  }

  state clicked {
    split copy { short -> started, warm -> nudge }
  }

  state started {
    before deadline 12h -> nudge
    at deadline -> expired
  }

  state nudge {
    send "nudge"
    at deadline -> expired
  }

  state expired {
    send "expired" via email
    end
  }
}
"#;

/// Pieces of the language, and of the mistakes people make with it.
const TOKENS: &[&str] = &[
    "campaign",
    "state",
    "experiment",
    "title",
    "enroll",
    "on",
    "where",
    "channels",
    "timezone",
    "candidate",
    "or",
    "and",
    "not",
    "in",
    "matches",
    "window",
    "limit",
    "per",
    "total",
    "deadline",
    "after",
    "enrollment",
    "goal",
    "exit",
    "link",
    "send",
    "via",
    "at",
    "before",
    "split",
    "end",
    "State",
    "android",
    "x",
    "role",
    "event.link",
    "a_1",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    "->",
    "-",
    "==",
    "!=",
    "=",
    ".",
    ":",
    "\"",
    "\"s\"",
    "\"a # b\"",
    "\"\\\"\"",
    "\"\\q\"",
    "\\",
    "'x'",
    "24h",
    "24 h",
    "30m",
    "2d",
    "1w",
    "24x",
    "9",
    "09:00",
    "9:00",
    "25:61",
    "mon",
    "mon-fri",
    "sun",
    "monday",
    "50",
    "99999999999999999999999",
    "#",
    "# note\n",
    " ",
    "  ",
    "\n",
    "\t",
    "\r\n",
    "é",
    "—",
    "\u{feff}",
    "日本",
];

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => select(TOKENS).prop_map(String::from),
        1 => any::<char>().prop_map(String::from),
    ]
}

/// One edit of a byte string; positions are taken modulo its length.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Duplicate(usize, usize),
    Swap(usize, usize, usize),
    Insert(usize, String),
    InsertByte(usize, u8),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    let len = 0usize..24;
    prop_oneof![
        (at, len.clone()).prop_map(|(a, n)| Edit::Delete(a, n)),
        (at, len.clone()).prop_map(|(a, n)| Edit::Duplicate(a, n)),
        (at, at, len).prop_map(|(a, b, n)| Edit::Swap(a, b, n)),
        (at, token()).prop_map(|(a, t)| Edit::Insert(a, t)),
        (at, any::<u8>()).prop_map(|(a, b)| Edit::InsertByte(a, b)),
        at.prop_map(Edit::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    let len = bytes.len();
    let pos = |p: usize| if len == 0 { 0 } else { p % (len + 1) };
    match edit {
        Edit::Delete(a, n) => {
            let a = pos(*a);
            bytes.drain(a..(a + n).min(len));
        }
        Edit::Duplicate(a, n) => {
            let a = pos(*a);
            let piece = bytes[a..(a + n).min(len)].to_vec();
            bytes.splice(a..a, piece);
        }
        Edit::Swap(a, b, n) => {
            let (a, b) = (pos(*a).min(pos(*b)), pos(*a).max(pos(*b)));
            let n = (*n).min(b - a).min(len - b);
            let (left, right) = bytes.split_at_mut(b);
            left[a..a + n].swap_with_slice(&mut right[..n]);
        }
        Edit::Insert(a, t) => {
            let a = pos(*a);
            bytes.splice(a..a, t.bytes());
        }
        Edit::InsertByte(a, b) => bytes.insert(pos(*a), *b),
        Edit::Truncate(a) => bytes.truncate(pos(*a)),
    }
}

fn check_span(source: &str, span: Span, what: &str) {
    assert!(
        span.start <= span.end && span.end <= source.len(),
        "{what} span {span:?} outside a source of {} bytes:\n{source}",
        source.len()
    );
    assert!(
        source.is_char_boundary(span.start) && source.is_char_boundary(span.end),
        "{what} span {span:?} not on char boundaries:\n{source}"
    );
}

fn check_diagnostic(source: &str, d: &Diagnostic) {
    check_span(source, d.span, &d.message);
    for (span, note) in &d.secondary {
        check_span(source, *span, note);
    }
    assert!(
        !d.message.starts_with("internal parser error"),
        "{d:#?}\nfor:\n{source}"
    );
    assert!(!d.message.is_empty());
}

/// Parses and checks the result; panics (failing the case) on any breach.
fn check(source: &str) {
    parse_checked(source, true);
}

/// Like [`check`]; with `checker`, what parsed of a broken file goes
/// through the checker too, whose diagnostics must point into the text as
/// well (whole files are left to the checker's own tests).
fn parse_checked(source: &str, checker: bool) {
    let (file, diagnostics) = parse_recovering(0, source);
    for c in &file.comments {
        check_span(source, c.span, "comment");
        assert_eq!(&source[c.span.start..c.span.end], c.text);
    }
    for campaign in &file.campaigns {
        check_span(source, campaign.span, "campaign");
        for state in &campaign.states {
            check_span(source, state.span, "state");
            for statement in &state.statements {
                check_span(source, statement.span, "statement");
            }
        }
        for setting in &campaign.settings {
            check_span(source, setting.span, "setting");
        }
    }
    for d in &diagnostics {
        check_diagnostic(source, d);
    }
    assert_eq!(
        parse(0, source).is_err(),
        !diagnostics.is_empty(),
        "parse and parse_recovering disagree:\n{source}"
    );
    if diagnostics.is_empty() {
        assert!(file.campaigns.iter().all(|c| c.complete), "{source}");
    }
    if diagnostics.is_empty() || !checker {
        return;
    }
    let loaded = load_str("fuzz.nudge", source);
    for d in &check_campaigns(&loaded, None).diagnostics {
        check_diagnostic(source, d);
    }
}

#[test]
fn the_example_parses() {
    assert!(parse(0, EXAMPLE).is_ok(), "{:#?}", parse(0, EXAMPLE));
}

#[test]
fn every_prefix_of_the_example() {
    // The checker runs on the prefixes that end a line: enough broken
    // campaigns of every shape, at a tenth of the cost.
    for end in (0..=EXAMPLE.len()).filter(|&i| EXAMPLE.is_char_boundary(i)) {
        let line_end = EXAMPLE[end..].starts_with('\n');
        parse_checked(&EXAMPLE[..end], line_end);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn random_token_soup(tokens in prop::collection::vec(token(), 0..80)) {
        // Token soup seldom holds a campaign's head: parse only.
        parse_checked(&tokens.concat(), false);
    }

    #[test]
    fn mutated_example(edits in prop::collection::vec(edit(), 1..5)) {
        let mut bytes = EXAMPLE.as_bytes().to_vec();
        for e in &edits {
            apply(&mut bytes, e);
        }
        check(&String::from_utf8_lossy(&bytes));
    }
}
