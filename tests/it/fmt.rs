//! `nudge fmt`: the canonical layout, comments kept, idempotent, and never
//! changing what a campaign means. Fixtures live in `tests/it/fixtures/fmt/`:
//! `NAME.in.nudge` formats to `NAME.out.nudge`; a lone `NAME.nudge` is
//! already canonical.

use std::fs;
use std::path::{Path, PathBuf};

use nudge::dsl::ast::{File, SettingKind};
use nudge::dsl::fmt::{check_formatted, format};
use nudge::dsl::parse::parse;
use proptest::prelude::*;

fn parsed(source: &str) -> File {
    match parse(0, source) {
        Ok(file) => file,
        Err(diagnostics) => panic!("does not parse: {diagnostics:#?}\n{source}"),
    }
}

fn fmt(source: &str) -> String {
    format(&parsed(source), source)
}

/// The file's meaning: its campaigns with every span zeroed and the settings
/// in canonical order, and its comments' texts sorted (settings move with
/// their comments, so comments may change order).
fn meaning(file: &File) -> (String, Vec<String>) {
    let mut campaigns = file.campaigns.clone();
    for campaign in &mut campaigns {
        campaign.settings.sort_by_key(|s| canonical_rank(&s.kind));
    }
    let mut comments: Vec<String> = file
        .comments
        .iter()
        .map(|c| c.text.trim_end().to_string())
        .collect();
    comments.sort();
    (zero_spans(&format!("{campaigns:?}")), comments)
}

/// The order the formatter promises for settings, stated independently.
fn canonical_rank(kind: &SettingKind) -> usize {
    let name = match kind {
        SettingKind::Title(_) => "title",
        SettingKind::Enroll { .. } => "enroll",
        SettingKind::Channels(_) => "channels",
        SettingKind::Timezone(_) => "timezone",
        SettingKind::Window(_) => "window",
        SettingKind::Limit(_) => "limit",
        SettingKind::Deadline { .. } => "deadline",
        SettingKind::Goal(_) => "goal",
        SettingKind::Exit(_) => "exit",
        SettingKind::Link(_) => "link",
    };
    let order = [
        "title", "enroll", "channels", "timezone", "window", "limit", "deadline", "goal", "exit",
        "link",
    ];
    order.iter().position(|n| *n == name).unwrap_or(order.len())
}

/// A debug print with every `Span { start: N, end: M }` replaced by `Span`.
fn zero_spans(debug: &str) -> String {
    const OPEN: &str = "Span { start: ";
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(at) = rest.find(OPEN) {
        out.push_str(&rest[..at]);
        out.push_str("Span");
        let after = &rest[at..];
        let close = after.find('}').expect("a span's debug print closes");
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Formatting `source` is stable and keeps its meaning; returns the result.
fn assert_sound(source: &str) -> String {
    let once = fmt(source);
    let twice = fmt(&once);
    assert_eq!(
        once, twice,
        "formatting is not idempotent; first pass:\n{once}"
    );
    assert_eq!(
        meaning(&parsed(source)),
        meaning(&parsed(&once)),
        "formatting changed the meaning:\n{source}\n---\n{once}"
    );
    once
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/fmt");
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("fixture folder")
        .map(|e| e.expect("fixture entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "nudge"))
        .filter(|p| !p.to_string_lossy().ends_with(".out.nudge"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    paths
}

#[test]
fn fixtures_format_to_their_expected_text() {
    for path in fixtures() {
        let source = fs::read_to_string(&path).expect("fixture text");
        let name = path.to_string_lossy().to_string();
        let expected = match name.strip_suffix(".in.nudge") {
            Some(stem) => fs::read_to_string(format!("{stem}.out.nudge")).expect("expected text"),
            None => source.clone(),
        };
        let formatted = assert_sound(&source);
        assert_eq!(formatted, expected, "{name} formats differently");
        assert_sound(&expected);
    }
}

#[test]
fn the_language_reference_example_is_canonical() {
    let spec = include_str!("../../campaigns/warehouse.nudge");
    assert_eq!(fmt(spec), spec);
    assert!(check_formatted(&parsed(spec), spec).is_none());
}

#[test]
fn an_empty_file_formats_to_nothing() {
    assert_eq!(fmt(""), "");
    assert_eq!(fmt("\n\n  \n"), "");
    assert_eq!(fmt("\n# only a comment   \n\n"), "# only a comment\n");
}

#[test]
fn comments_in_a_one_line_item_move_above_it() {
    let source = "campaign c {\n  experiment copy { # weights\n    short 1,\n    long 2 }\n  state a {\n    on clicked where role == \"x\" # the role\n      and source == \"y\" -> a  # tail\n  }\n}\n";
    let expected = "campaign c {\n  # weights\n  experiment copy { short 1, long 2 }\n\n  state a {\n    # the role\n    on clicked where role == \"x\" and source == \"y\" -> a  # tail\n  }\n}\n";
    assert_eq!(assert_sound(source), expected);
}

#[test]
fn trailing_comments_on_consecutive_lines_share_a_column() {
    let source = "campaign c {\n  state a {\n    send \"a\" # one\n    on clicked where role in [\"a very long role name\", \"another\"] -> a # two\n    end # three\n\n    end # four\n  }\n}\n";
    let expected = "campaign c {\n  state a {\n    send \"a\"                                                            # one\n    on clicked where role in [\"a very long role name\", \"another\"] -> a  # two\n    end                                                                 # three\n\n    end                                 # four\n  }\n}\n";
    assert_eq!(assert_sound(source), expected);
}

#[test]
fn parentheses_and_escapes_are_kept() {
    let source = "campaign c { enroll on applied where not (a == \"q\\\"\" or b.c != 7) and (d matches \"x\\\\*\") state s { end } }";
    let formatted = assert_sound(source);
    assert!(
        formatted.contains(
            "enroll   on applied where not (a == \"q\\\"\" or b.c != 7) and (d matches \"x\\\\*\")\n"
        ),
        "{formatted}"
    );
}

#[test]
fn check_reports_the_first_differing_lines() {
    let source = "campaign c {\n  goal completed\n  title \"T\"\n  state a {\n    end\n  }\n}\n";
    let report = check_formatted(&parsed(source), source).expect("not canonical");
    assert_eq!(report.line, 2);
    assert_eq!(report.formatted, fmt(source));
    assert_eq!(
        report.diff,
        "@@ -1,6 +1,7 @@\n campaign c {\n-  goal completed\n-  title \"T\"\n\
         +  title    \"T\"\n+  goal     completed\n+\n   state a {\n     end\n   }\n"
    );

    let canonical = fmt(source);
    assert!(check_formatted(&parsed(&canonical), &canonical).is_none());
    let no_newline = canonical.trim_end();
    let report = check_formatted(&parsed(no_newline), no_newline).expect("final newline");
    assert!(report.diff.contains("final newline"), "{}", report.diff);
}

/// Applies the hunks of a unified diff to `old`, asserting that each
/// hunk's header counts the lines it shows and that its context and
/// removed lines are the file's own.
fn apply(old: &str, diff: &str) -> String {
    let old: Vec<&str> = old.lines().collect();
    let mut new: Vec<String> = Vec::new();
    let mut next = 0; // the next line of `old` not yet copied
    let mut lines = diff.lines().peekable();
    while let Some(header) = lines.next() {
        let ranges = header
            .strip_prefix("@@ -")
            .and_then(|h| h.strip_suffix(" @@"))
            .unwrap_or_else(|| panic!("not a hunk header: {header:?}\n{diff}"));
        let (from, to) = ranges.split_once(" +").unwrap();
        let range = |r: &str| -> (usize, usize) {
            let (start, len) = r.split_once(',').unwrap_or((r, "1"));
            (start.parse().unwrap(), len.parse().unwrap())
        };
        let ((old_start, old_len), (_, new_len)) = (range(from), range(to));
        let first = if old_len == 0 {
            old_start
        } else {
            old_start - 1
        };
        new.extend(old[next..first].iter().map(|l| l.to_string()));
        next = first;
        let (mut seen_old, mut seen_new) = (0, 0);
        while let Some(line) = lines.next_if(|l| !l.starts_with("@@")) {
            let (sign, text) = line.split_at(1);
            match sign {
                " " | "-" => {
                    assert_eq!(old[next], text, "{header}\n{diff}");
                    next += 1;
                    seen_old += 1;
                    if sign == " " {
                        new.push(text.to_string());
                        seen_new += 1;
                    }
                }
                "+" => {
                    new.push(text.to_string());
                    seen_new += 1;
                }
                "\\" => {}
                _ => panic!("not a diff line: {line:?}\n{diff}"),
            }
        }
        assert_eq!((seen_old, seen_new), (old_len, new_len), "{header}\n{diff}");
    }
    new.extend(old[next..].iter().map(|l| l.to_string()));
    new.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn check_prints_a_unified_diff_that_turns_the_file_into_its_layout() {
    let canonical = include_str!("../../campaigns/warehouse.nudge").to_string();
    let lines: Vec<&str> = canonical.lines().collect();
    assert!(lines.len() > 30, "{canonical}");
    // Two lines far apart out of place: two hunks, each changing one line
    // and showing its neighbours as they are.
    let mut messy: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let code = |i: usize| !lines[i].trim().is_empty() && !lines[i].trim().starts_with('#');
    let one = (3..).find(|i| code(*i)).unwrap();
    let two = (0..lines.len() - 3).rev().find(|i| code(*i)).unwrap();
    for i in [one, two] {
        messy[i] = format!("       {}", messy[i].trim());
    }
    let messy: String = messy.iter().map(|l| format!("{l}\n")).collect();
    let report = check_formatted(&parsed(&messy), &messy).expect("not canonical");
    assert_eq!(report.line, one + 1);
    assert_eq!(apply(&messy, &report.diff), canonical, "{}", report.diff);
    assert_eq!(
        report.diff.matches("\n@@").count() + 1,
        2,
        "{}",
        report.diff
    );
    assert_eq!(report.diff.matches("\n-").count(), 2, "{}", report.diff);
    assert_eq!(report.diff.matches("\n+").count(), 2, "{}", report.diff);

    for path in fixtures() {
        let source = fs::read_to_string(&path).expect("fixture text");
        if let Some(report) = check_formatted(&parsed(&source), &source) {
            assert_eq!(
                apply(&source, &report.diff),
                fmt(&source),
                "{}",
                report.diff
            );
        }
    }
}

// ------------------------------------------------------------ generated files

/// Identifiers that are never keywords.
fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("invite".to_string()),
        Just("end_".to_string()),
        Just("started".to_string()),
        Just("expired".to_string()),
        "[a-z_][a-z0-9_]{0,5}".prop_filter("not a keyword", |s| !KEYWORDS.contains(&s.as_str())),
    ]
}

const KEYWORDS: &[&str] = &[
    "after",
    "and",
    "at",
    "before",
    "campaign",
    "candidate",
    "channels",
    "deadline",
    "end",
    "enroll",
    "enrollment",
    "exit",
    "experiment",
    "goal",
    "in",
    "limit",
    "link",
    "matches",
    "not",
    "on",
    "or",
    "per",
    "send",
    "split",
    "state",
    "timezone",
    "title",
    "total",
    "via",
    "where",
    "window",
];

/// A string literal as source text, with characters that need escaping.
fn string() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 \"\\\\\n#{}é*-]{0,10}".prop_map(|s| {
        let escaped = s
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        format!("\"{escaped}\"")
    })
}

fn duration() -> impl Strategy<Value = String> {
    (1u32..200, prop::sample::select(vec!['m', 'h', 'd', 'w'])).prop_map(|(n, u)| format!("{n}{u}"))
}

/// Tokens of `window DAYS HH:MM - HH:MM` (without the keyword).
fn window() -> impl Strategy<Value = Vec<String>> {
    let day = prop::sample::select(vec!["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);
    let range = (day.clone(), prop::option::of(day)).prop_map(|(a, b)| {
        b.map_or(vec![a.to_string()], |b| {
            vec![a.into(), "-".into(), b.into()]
        })
    });
    (
        prop::collection::vec(range, 1..4),
        0u8..24,
        0u8..60,
        0u8..24,
        0u8..60,
    )
        .prop_map(|(ranges, h1, m1, h2, m2)| {
            let mut tokens = Vec::new();
            for (i, range) in ranges.into_iter().enumerate() {
                if i > 0 {
                    tokens.push(",".to_string());
                }
                tokens.extend(range);
            }
            tokens.extend([
                format!("{h1:02}:{m1:02}"),
                "-".into(),
                format!("{h2:02}:{m2:02}"),
            ]);
            tokens
        })
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(ident(), 1..3).prop_map(|segments| segments.join("."))
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![string(), (0u32..1000).prop_map(|n| n.to_string())]
}

/// Tokens of a filter expression, with parentheses sometimes.
fn expr() -> impl Strategy<Value = Vec<String>> {
    let comparison = prop_oneof![
        (path(), prop::sample::select(vec!["==", "!="]), value()).prop_map(|(p, op, v)| vec![
            p,
            op.to_string(),
            v
        ]),
        (path(), prop::collection::vec(value(), 1..4), any::<bool>()).prop_map(
            |(p, values, trailing_comma)| {
                let mut tokens = vec![p, "in".into(), "[".into()];
                for (i, v) in values.into_iter().enumerate() {
                    if i > 0 {
                        tokens.push(",".into());
                    }
                    tokens.push(v);
                }
                if trailing_comma {
                    tokens.push(",".into());
                }
                tokens.push("]".into());
                tokens
            }
        ),
        (path(), string()).prop_map(|(p, s)| vec![p, "matches".into(), s]),
    ];
    comparison.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|e| [vec!["not".to_string()], e].concat()),
            inner
                .clone()
                .prop_map(|e| [vec!["(".to_string()], e, vec![")".to_string()]].concat()),
            (
                inner.clone(),
                prop::sample::select(vec!["and", "or"]),
                inner
            )
                .prop_map(|(a, op, b)| [a, vec![op.to_string()], b].concat()),
        ]
    })
}

fn filter() -> impl Strategy<Value = Vec<String>> {
    prop::option::of(expr())
        .prop_map(|e| e.map_or(Vec::new(), |e| [vec!["where".to_string()], e].concat()))
}

fn setting() -> impl Strategy<Value = Vec<String>> {
    let t = |s: &str| s.to_string();
    prop_oneof![
        string().prop_map(move |s| vec![t("title"), s]),
        (ident(), filter()).prop_map(|(e, f)| [vec!["enroll".into(), "on".into(), e], f].concat()),
        prop::collection::vec(ident(), 1..3).prop_map(|names| {
            let mut tokens = vec!["channels".to_string()];
            for (i, n) in names.into_iter().enumerate() {
                if i > 0 {
                    tokens.push(",".into());
                }
                tokens.push(n);
            }
            tokens
        }),
        string().prop_map(|s| vec!["timezone".into(), s]),
        prop::option::of(string()).prop_map(|s| match s {
            Some(s) => vec!["timezone".into(), "candidate".into(), "or".into(), s],
            None => vec!["timezone".into(), "candidate".into()],
        }),
        window().prop_map(|w| [vec!["window".to_string()], w].concat()),
        (0u32..50, duration()).prop_map(|(n, d)| vec![
            "limit".into(),
            n.to_string(),
            "per".into(),
            d
        ]),
        (0u32..50).prop_map(|n| vec!["limit".into(), n.to_string(), "total".into()]),
        (duration(), any::<bool>()).prop_map(|(d, after)| {
            let mut tokens = vec!["deadline".to_string(), d];
            if after {
                tokens.extend(["after".to_string(), "enrollment".to_string()]);
            }
            tokens
        }),
        ident().prop_map(|e| vec!["goal".into(), e]),
        prop::collection::vec(ident(), 1..3).prop_map(|names| {
            let mut tokens = vec!["exit".to_string(), "on".to_string()];
            for (i, n) in names.into_iter().enumerate() {
                if i > 0 {
                    tokens.push(",".into());
                }
                tokens.push(n);
            }
            tokens
        }),
        string().prop_map(|s| vec!["link".into(), s]),
    ]
}

fn experiment() -> impl Strategy<Value = Vec<String>> {
    (
        ident(),
        prop::collection::vec((ident(), 0u32..100, any::<bool>()), 1..4),
    )
        .prop_map(|(name, variants)| {
            let mut tokens = vec!["experiment".to_string(), name, "{".into()];
            for (variant, weight, comma) in variants {
                tokens.extend([variant, weight.to_string()]);
                if comma {
                    tokens.push(",".into());
                }
            }
            tokens.push("}".into());
            tokens
        })
}

fn statement() -> impl Strategy<Value = Vec<String>> {
    let arrow = |target: String| vec!["->".to_string(), target];
    prop_oneof![
        (string(), prop::option::of(ident())).prop_map(|(s, via)| match via {
            Some(via) => vec!["send".into(), s, "via".into(), via],
            None => vec!["send".into(), s],
        }),
        (ident(), filter(), ident())
            .prop_map(move |(e, f, t)| [vec!["on".into(), e], f, arrow(t)].concat()),
        (duration(), ident()).prop_map(move |(d, t)| [vec!["after".into(), d], arrow(t)].concat()),
        ident().prop_map(move |t| [vec!["at".into(), "deadline".into()], arrow(t)].concat()),
        (duration(), ident()).prop_map(move |(d, t)| [
            vec!["before".into(), "deadline".into(), d],
            arrow(t)
        ]
        .concat()),
        (
            ident(),
            prop::collection::vec((ident(), ident(), any::<bool>()), 1..3)
        )
            .prop_map(|(experiment, arms)| {
                let mut tokens = vec!["split".to_string(), experiment, "{".into()];
                for (variant, target, comma) in arms {
                    tokens.extend([variant, "->".into(), target]);
                    if comma {
                        tokens.push(",".into());
                    }
                }
                tokens.push("}".into());
                tokens
            }),
        window().prop_map(|w| [vec!["window".to_string()], w].concat()),
        Just(vec!["end".to_string()]),
    ]
}

fn state() -> impl Strategy<Value = Vec<String>> {
    (ident(), prop::collection::vec(statement(), 0..5)).prop_map(|(name, statements)| {
        let mut tokens = vec!["state".to_string(), name, "{".into()];
        tokens.extend(statements.into_iter().flatten());
        tokens.push("}".into());
        tokens
    })
}

/// Tokens of one campaign, its settings, experiments and states interleaved.
fn campaign() -> impl Strategy<Value = Vec<String>> {
    (
        ident(),
        prop::collection::vec(setting(), 0..6),
        prop::collection::vec(experiment(), 0..3),
        prop::collection::vec(state(), 1..4),
    )
        .prop_flat_map(|(name, settings, experiments, states)| {
            let items: Vec<Vec<String>> = settings
                .into_iter()
                .chain(experiments)
                .chain(states)
                .collect();
            (Just(name), Just(items).prop_shuffle())
        })
        .prop_map(|(name, items)| {
            let mut tokens = vec!["campaign".to_string(), name, "{".into()];
            tokens.extend(items.into_iter().flatten());
            tokens.push("}".into());
            tokens
        })
}

/// What may stand between two tokens: spacing, blank lines and comments.
const GAPS: &[&str] = &[
    " ",
    " ",
    " ",
    "\n  ",
    "\n  ",
    "\t",
    "\n\n\n    ",
    " # trailing {\n",
    "\n# own line \"quoted\"   \n",
    "\n\n  # after a blank\n\n",
    "\n  #\n  # two lines\n",
];

/// Source text of a whole file from its tokens and a cycle of gaps.
fn file() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(campaign(), 0..3),
        prop::collection::vec(0..GAPS.len(), 1..40),
        prop::option::of(0..GAPS.len()),
    )
        .prop_map(|(campaigns, gaps, lead)| {
            let mut source = lead.map_or(String::new(), |g| GAPS[g].trim_start().to_string());
            let tokens: Vec<String> = campaigns.into_iter().flatten().collect();
            for (i, token) in tokens.iter().enumerate() {
                if i > 0 {
                    source.push_str(GAPS[gaps[i % gaps.len()]]);
                }
                source.push_str(token);
            }
            source.push_str(GAPS[gaps[0]]);
            source
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn formatting_is_idempotent_and_keeps_meaning(source in file()) {
        let file = parse(0, &source);
        prop_assert!(file.is_ok(), "generated text does not parse: {:?}\n{}", file, source);
        let once = fmt(&source);
        let twice = fmt(&once);
        prop_assert_eq!(&once, &twice, "source:\n{}", source);
        prop_assert_eq!(meaning(&parsed(&source)), meaning(&parsed(&once)), "source:\n{}", source);
        let check = check_formatted(&parsed(&once), &once);
        prop_assert!(check.is_none(), "{:?}", check);
    }
}
