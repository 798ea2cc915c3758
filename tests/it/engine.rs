//! The engine's timing rules, through the simulator: deadlines (before, at,
//! started mid-state, from enrollment), ordering at one instant, goal and
//! exit precedence, opt-out in a final state, limits across campaigns, and
//! the guard against loops that take no time.

use crate::support::at;
use chrono::Duration;

use nudge::dsl::load::load_str;
use nudge::dsl::pipeline::compile_loaded;
use nudge::engine::{self, Candidate, Ctx, Happening, Input, Machine};
use nudge::sim::{output, run, Scenario};

fn machine(text: &str) -> Machine {
    let loaded = load_str("test.nudge", text);
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let mut compiled = compile_loaded(loaded, None).expect("the campaign checks and compiles");
    compiled.campaigns.remove(0).machine
}

/// The timeline as compact lines: `AT KIND detail`, skipping `enrolled`.
fn timeline(
    text: &str,
    start: &str,
    fields: &[(&str, &str)],
    events: &[(&str, &str)],
) -> Vec<String> {
    let m = machine(text);
    let start = at(start);
    let scenario = Scenario {
        start,
        candidate: Candidate::from_pairs(fields.iter().copied(), "sim"),
        events: events.iter().map(|(e, t)| (e.to_string(), at(t))).collect(),
        variants: Vec::new(),
        until: start + Duration::days(30),
    };
    let tl = run(&m, &scenario).unwrap();
    output::json(&m, &tl)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| {
            !matches!(
                v["kind"].as_str(),
                Some("enrolled") | Some("deadline_started")
            )
        })
        .map(|v| {
            let detail = ["state", "template", "outcome", "by", "until"]
                .iter()
                .filter_map(|k| v.get(*k).and_then(|x| x.as_str()).map(str::to_string))
                .collect::<Vec<_>>()
                .join(" ");
            format!(
                "{} {} {}",
                v["at"].as_str().unwrap(),
                v["kind"].as_str().unwrap(),
                detail
            )
        })
        .collect()
}

const EMAIL: &[(&str, &str)] = &[("email", "a@example.com")];

#[test]
fn before_deadline_fires_before_the_deadline() {
    let text = "campaign d { channels email deadline 48h
      state a { send \"invite\" on started -> s at deadline -> x }
      state s { before deadline 12h -> n at deadline -> x }
      state n { send \"nudge\" at deadline -> x }
      state x { end } }";
    let got = timeline(
        text,
        "2026-12-01T00:00:00Z",
        EMAIL,
        &[("started", "2026-12-01T10:00:00Z")],
    );
    assert_eq!(
        got,
        [
            "2026-12-01T00:00:00Z sent a invite",
            "2026-12-01T10:00:00Z entered s started",
            "2026-12-02T12:00:00Z entered n before deadline 12h",
            "2026-12-02T12:00:00Z sent n nudge",
            "2026-12-03T00:00:00Z entered x at deadline",
            "2026-12-03T00:00:00Z exited x",
        ]
    );
}

#[test]
fn entered_at_or_after_the_deadline_only_at_deadline_fires() {
    let text = "campaign d { channels email deadline 24h
      state a { send \"invite\" on started -> s after 30d -> x }
      state s { before deadline 1h -> n after 1h -> late }
      state late { at deadline -> x before deadline 1h -> n }
      state n { send \"nudge\" after 1h -> x }
      state x { end } }";
    // Started exactly at the deadline: `before deadline` does not fire.
    let got = timeline(
        text,
        "2026-12-01T00:00:00Z",
        EMAIL,
        &[("started", "2026-12-02T00:00:00Z")],
    );
    assert_eq!(
        got,
        [
            "2026-12-01T00:00:00Z sent a invite",
            "2026-12-02T00:00:00Z entered s started",
            "2026-12-02T01:00:00Z entered late after 1h",
            "2026-12-02T01:00:00Z entered x at deadline",
            "2026-12-02T01:00:00Z exited x",
        ]
    );
}

#[test]
fn deadline_starts_with_the_first_message_sent_even_mid_state() {
    // The invite waits for Monday 09:00 Berlin; the deadline runs from then,
    // and the state's own `at deadline` is armed when it starts.
    let text = "campaign d { channels email timezone \"Europe/Berlin\" window mon-fri 09:00-17:00 deadline 2h
      state a { send \"invite\" at deadline -> x }
      state x { end } }";
    let got = timeline(text, "2026-12-05T10:00:00Z", EMAIL, &[]);
    assert_eq!(
        got,
        [
            "2026-12-05T10:00:00Z held a invite 2026-12-07T08:00:00Z",
            "2026-12-07T08:00:00Z sent a invite",
            "2026-12-07T10:00:00Z entered x at deadline",
            "2026-12-07T10:00:00Z exited x",
        ]
    );
}

#[test]
fn skipped_and_suppressed_do_not_start_the_deadline() {
    let text = "campaign d { channels sms deadline 1h limit 1 total
      state a { send \"a\" send \"b\" via email after 1h -> b }
      state b { send \"c\" at deadline -> x after 5h -> x }
      state x { end } }";
    let got = timeline(text, "2026-12-01T00:00:00Z", &[], &[]);
    assert_eq!(
        got,
        [
            "2026-12-01T00:00:00Z skipped a a",
            "2026-12-01T00:00:00Z skipped a b",
            "2026-12-01T01:00:00Z entered b after 1h",
            "2026-12-01T01:00:00Z skipped b c",
            "2026-12-01T06:00:00Z entered x after 5h",
            "2026-12-01T06:00:00Z exited x",
        ]
    );
}

#[test]
fn a_transition_at_the_hold_instant_cancels_the_held_send() {
    // The nudge is held until 09:00; the deadline also falls at 09:00 and
    // transitions come before sends at one instant.
    let text =
        "campaign d { channels email window mon-sun 09:00-17:00 deadline 16h after enrollment
      state a { after 1h -> b }
      state b { send \"nudge\" at deadline -> x }
      state x { end } }";
    let got = timeline(text, "2026-12-01T17:00:00Z", EMAIL, &[]);
    assert_eq!(
        got,
        [
            "2026-12-01T18:00:00Z entered b after 1h",
            "2026-12-01T18:00:00Z held b nudge 2026-12-02T09:00:00Z",
            "2026-12-02T09:00:00Z cancelled b nudge",
            "2026-12-02T09:00:00Z entered x at deadline",
            "2026-12-02T09:00:00Z exited x",
        ]
    );
}

#[test]
fn an_event_at_the_hold_instant_goes_first() {
    let text = "campaign d { channels email window mon-sun 09:00-17:00 goal completed
      state a { send \"invite\" after 1d -> x }
      state x { end } }";
    let got = timeline(
        text,
        "2026-12-01T06:00:00Z",
        EMAIL,
        &[("completed", "2026-12-01T09:00:00Z")],
    );
    assert_eq!(
        got,
        [
            "2026-12-01T06:00:00Z held a invite 2026-12-01T09:00:00Z",
            "2026-12-01T09:00:00Z cancelled a invite",
            "2026-12-01T09:00:00Z exited completed",
        ]
    );
}

#[test]
fn goal_and_exits_take_precedence_over_on() {
    let text = "campaign d { channels email goal completed exit on replied
      state a { on completed -> b on replied -> b after 1d -> b }
      state b { end } }";
    assert_eq!(
        timeline(
            text,
            "2026-12-01T00:00:00Z",
            EMAIL,
            &[("replied", "2026-12-01T01:00:00Z")]
        ),
        ["2026-12-01T01:00:00Z exited replied"]
    );
    assert_eq!(
        timeline(
            text,
            "2026-12-01T00:00:00Z",
            EMAIL,
            &[("completed", "2026-12-01T01:00:00Z")]
        ),
        ["2026-12-01T01:00:00Z exited completed"]
    );
}

#[test]
fn a_final_state_ignores_the_goal_but_not_an_opt_out() {
    let text = "campaign d { channels email window mon-fri 09:00-17:00 goal completed
      state a { after 1h -> x }
      state x { send \"bye\" end } }";
    // Friday 17:00 UTC + 1h: `bye` waits for Monday; `completed` does not end it.
    let got = timeline(
        text,
        "2026-12-04T17:00:00Z",
        EMAIL,
        &[("completed", "2026-12-05T10:00:00Z")],
    );
    assert_eq!(got.last().unwrap(), "2026-12-07T09:00:00Z exited x");
    let got = timeline(
        text,
        "2026-12-04T17:00:00Z",
        EMAIL,
        &[("opted_out", "2026-12-05T10:00:00Z")],
    );
    assert_eq!(
        &got[got.len() - 2..],
        [
            "2026-12-05T10:00:00Z cancelled x bye",
            "2026-12-05T10:00:00Z exited opted_out"
        ]
    );
}

#[test]
fn on_where_reads_event_fields_and_candidate_fields() {
    let m = machine(
        "campaign d { channels email
           state a { on clicked where event.link == \"apply\" and role in [\"Driver\", \"picker\"] -> b after 1d -> a }
           state b { end } }",
    );
    let candidate = Candidate::from_pairs([("role", "PICKER"), ("email", "p@example.com")], "c1");
    let ctx = Ctx {
        candidate: &candidate,
        zone: chrono_tz::UTC,
        other_sends: &[],
        leaving: Default::default(),
    };
    let t0 = at("2026-12-01T00:00:00Z");
    let first = engine::enroll(&m, &ctx, vec![], t0);
    let mut fields = engine::Fields::new();
    fields.insert("link".into(), "unsubscribe".into());
    let miss = engine::step(
        &m,
        &ctx,
        first.state.clone(),
        Input::Event {
            name: "clicked",
            fields: &fields,
        },
        t0,
    );
    assert!(miss.state.outcome.is_none());
    fields.insert("link".into(), "Apply".into());
    let hit = engine::step(
        &m,
        &ctx,
        miss.state,
        Input::Event {
            name: "clicked",
            fields: &fields,
        },
        t0,
    );
    assert_eq!(hit.state.outcome.as_deref(), Some("b"));
}

#[test]
fn sliding_limits_count_sends_of_other_campaigns() {
    let m = machine(
        "campaign d { channels sms limit 1 per 12h
           state a { send \"invite\" after 1d -> b }
           state b { end } }",
    );
    let candidate = Candidate::from_pairs([("phone", "+15550100")], "c1");
    let other = [at("2026-12-01T05:00:00Z")];
    let ctx = Ctx {
        candidate: &candidate,
        zone: chrono_tz::UTC,
        other_sends: &other,
        leaving: Default::default(),
    };
    let t0 = at("2026-12-01T08:00:00Z");
    let first = engine::enroll(&m, &ctx, vec![], t0);
    let held = engine::step(&m, &ctx, first.state, Input::Wake, t0);
    assert!(matches!(
        &held.records[0].what,
        Happening::Held { until, .. } if *until == at("2026-12-01T17:00:00Z")
    ));
    assert_eq!(held.next_wake, Some(at("2026-12-01T17:00:00Z")));
    let sent = engine::step(
        &m,
        &ctx,
        held.state,
        Input::Wake,
        at("2026-12-01T17:00:00Z"),
    );
    assert!(matches!(&sent.records[0].what, Happening::Sent { .. }));
}

#[test]
fn a_daemon_waking_late_catches_up_in_order() {
    // Woken three days late, the engine replays what fell due in order and
    // stops at the exit.
    let m = machine(
        "campaign d { channels email
           state a { send \"invite\" after 1d -> b }
           state b { send \"reminder\" after 1d -> c }
           state c { end } }",
    );
    let candidate = Candidate::from_pairs([("email", "a@example.com")], "c1");
    let ctx = Ctx {
        candidate: &candidate,
        zone: chrono_tz::UTC,
        other_sends: &[],
        leaving: Default::default(),
    };
    let t0 = at("2026-12-01T00:00:00Z");
    let first = engine::enroll(&m, &ctx, vec![], t0);
    let late = engine::step(
        &m,
        &ctx,
        first.state,
        Input::Wake,
        at("2026-12-04T00:00:00Z"),
    );
    let got: Vec<String> = late
        .records
        .iter()
        .map(|r| {
            let what = match &r.what {
                Happening::Sent { template, .. } => format!("sent {template}"),
                Happening::Entered { state, .. } => format!("entered {}", m.states[*state].name),
                Happening::Exited { outcome, .. } => format!("exited {outcome}"),
                other => format!("{other:?}"),
            };
            format!("{} {what}", r.at.format("%d %H:%M"))
        })
        .collect();
    assert_eq!(
        got,
        [
            "01 00:00 sent invite",
            "02 00:00 entered b",
            "02 00:00 sent reminder",
            "03 00:00 entered c",
            "03 00:00 exited c",
        ]
    );
    assert_eq!(late.state.outcome.as_deref(), Some("c"));
    assert_eq!(late.next_wake, None);
}

#[test]
fn a_loop_that_takes_no_time_stops_the_candidate() {
    let text = "campaign d { channels email deadline 1h after enrollment
      state a { after 2h -> b }
      state b { at deadline -> c }
      state c { at deadline -> b } }";
    let got = timeline(text, "2026-12-01T00:00:00Z", EMAIL, &[]);
    assert_eq!(got.last().unwrap(), "2026-12-01T02:00:00Z exited stuck");
}

#[test]
fn window_crossing_midnight_in_the_engine() {
    let text = "campaign d { channels sms timezone \"America/Chicago\" window mon-sun 20:00-02:00
      state a { send \"invite\" after 1h -> b }
      state b { send \"reminder\" after 1h -> c }
      state c { end } }";
    let got = timeline(text, "2026-12-01T07:30:00Z", &[("phone", "+15550100")], &[]);
    assert_eq!(
        got,
        [
            // 01:30 local: inside Monday night's window.
            "2026-12-01T07:30:00Z sent a invite",
            // 02:30 local: closed until 20:00.
            "2026-12-01T08:30:00Z entered b after 1h",
            "2026-12-01T08:30:00Z held b reminder 2026-12-02T02:00:00Z",
            "2026-12-02T02:00:00Z sent b reminder",
            "2026-12-02T03:00:00Z entered c after 1h",
            "2026-12-02T03:00:00Z exited c",
        ]
    );
}

#[test]
fn enrollment_filter_is_compiled_once_and_reads_like_the_language() {
    let m = machine(
        "campaign d { channels email
           enroll on applied where (role == \"Picker\" or role matches \"*driver*\")
             and not source in [\"Referral\", 7] and candidate.first_name != \"bot\" and a.b.c != \"x\"
           state a { end } }",
    );
    let filter = m.enroll.as_ref().and_then(|e| e.filter.as_ref()).unwrap();
    assert_eq!(
        filter.text(),
        "(role == \"Picker\" or role matches \"*driver*\") and not source in [\"Referral\", 7] \
         and candidate.first_name != \"bot\" and a.b.c != \"x\""
    );
    let takes = |pairs: &[(&str, &str)]| m.accepts(&Candidate::from_pairs(pairs.to_vec(), "c"));
    assert!(takes(&[("role", "PICKER")]));
    assert!(takes(&[
        ("role", "Night DRIVER, Dallas"),
        ("source", "indeed")
    ]));
    assert!(!takes(&[("role", "Packer")]));
    // A missing field: `==` false, `!=` true; an INT compares as its digits.
    assert!(!takes(&[]));
    assert!(!takes(&[("role", "picker"), ("source", "referral")]));
    assert!(!takes(&[("role", "picker"), ("source", "7")]));
    // `first_name` falls back to the first word of `name`.
    assert!(!takes(&[("role", "picker"), ("name", "Bot Smith")]));
    assert!(takes(&[("role", "picker"), ("name", "Ana Smith")]));
}
