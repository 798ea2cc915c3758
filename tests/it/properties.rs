//! Property test: random campaigns from a generator, random candidates and
//! random event sequences. The simulator never panics, never sends outside
//! the window, never exceeds a limit, never sends after the candidate
//! exited, keeps time moving forward, and is deterministic.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use nudge::dsl::load::load_str;
use nudge::dsl::pipeline::{compile_loaded, PipelineError};
use nudge::engine::window::Window;
use nudge::engine::{Candidate, Happening, Machine, Record};
use nudge::sim::{run, Line, Scenario};

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const ZONES: [&str; 6] = [
    "America/New_York",
    "America/Chicago",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "UTC",
];
const EVENTS: [&str; 8] = [
    "clicked",
    "started",
    "completed",
    "replied",
    "opted_out",
    "bounced",
    "opened",
    "custom_x",
];
const DURATIONS: [&str; 7] = ["30m", "1h", "8h", "12h", "24h", "2d", "1w"];

#[derive(Debug, Clone)]
struct StateSpec {
    sends: Vec<(bool, Option<usize>)>, // (uses experiment placeholder, via channel index)
    window: Option<(Vec<usize>, u32, u32)>,
    ons: Vec<(usize, usize)>, // (event, target)
    after: (usize, usize),    // (duration, target)
    at_deadline: Option<usize>,
    before_deadline: Option<(usize, usize)>,
    split: bool,
}

fn window_text((days, open, close): &(Vec<usize>, u32, u32)) -> String {
    let days: Vec<&str> = days.iter().map(|d| DAYS[*d]).collect();
    format!(
        "window {} {:02}:{:02}-{:02}:{:02}",
        days.join(", "),
        open / 60,
        open % 60,
        close / 60,
        close % 60
    )
}

fn window_strategy() -> impl Strategy<Value = (Vec<usize>, u32, u32)> {
    (
        proptest::sample::subsequence((0..7).collect::<Vec<_>>(), 1..=7),
        0u32..48,
        1u32..47,
    )
        .prop_map(|(days, open, span)| {
            let open = open * 30;
            let close = (open + span * 30) % (24 * 60);
            (days, open, close)
        })
}

prop_compose! {
    fn state_spec(n: usize)(
        sends in proptest::collection::vec((any::<bool>(), proptest::option::of(0usize..3)), 0..3),
        window in proptest::option::weighted(0.3, window_strategy()),
        ons in proptest::collection::vec((0usize..EVENTS.len(), 0..n), 0..3),
        after in (0usize..DURATIONS.len(), 0..n),
        at_deadline in proptest::option::of(0..n),
        before_deadline in proptest::option::of((0usize..DURATIONS.len(), 0..n)),
        split in proptest::bool::weighted(0.1),
    ) -> StateSpec {
        StateSpec { sends, window, ons, after, at_deadline, before_deadline, split }
    }
}

#[derive(Debug, Clone)]
struct CampaignSpec {
    channels: Vec<usize>,
    zone: (bool, usize),
    window: Option<(Vec<usize>, u32, u32)>,
    rate_limits: Vec<(u32, usize)>,
    total: Option<u32>,
    deadline: Option<(usize, bool)>,
    goal: bool,
    experiment: bool,
    states: Vec<StateSpec>,
    final_sends: usize,
}

const CHANNELS: [&str; 3] = ["sms", "email", "whatsapp"];

fn campaign_spec() -> impl Strategy<Value = CampaignSpec> {
    (2usize..7).prop_flat_map(|n| {
        (
            proptest::sample::subsequence(vec![0usize, 1, 2], 1..=3).prop_shuffle(),
            (any::<bool>(), 0..ZONES.len()),
            proptest::option::of(window_strategy()),
            proptest::collection::vec((1u32..4, 0..DURATIONS.len()), 0..3),
            proptest::option::of(1u32..7),
            proptest::option::of((2usize..DURATIONS.len(), any::<bool>())),
            any::<bool>(),
            any::<bool>(),
            proptest::collection::vec(state_spec(n), n - 1),
            0usize..3,
        )
            .prop_map(
                |(
                    channels,
                    zone,
                    window,
                    rate_limits,
                    total,
                    deadline,
                    goal,
                    experiment,
                    states,
                    final_sends,
                )| {
                    CampaignSpec {
                        channels,
                        zone,
                        window,
                        rate_limits,
                        total,
                        deadline,
                        goal,
                        experiment,
                        states,
                        final_sends,
                    }
                },
            )
    })
}

fn render(spec: &CampaignSpec) -> String {
    let n = spec.states.len() + 1;
    let mut s = String::from("campaign prop {\n  enroll on applied\n");
    let channels: Vec<&str> = spec.channels.iter().map(|c| CHANNELS[*c]).collect();
    s += &format!("  channels {}\n", channels.join(", "));
    if spec.zone.0 {
        s += &format!("  timezone candidate or \"{}\"\n", ZONES[spec.zone.1]);
    } else {
        s += &format!("  timezone \"{}\"\n", ZONES[spec.zone.1]);
    }
    if let Some(w) = &spec.window {
        s += &format!("  {}\n", window_text(w));
    }
    for (count, d) in &spec.rate_limits {
        s += &format!("  limit {count} per {}\n", DURATIONS[*d]);
    }
    if let Some(t) = spec.total {
        s += &format!("  limit {t} total\n");
    }
    if let Some((d, after)) = spec.deadline {
        s += &format!(
            "  deadline {}{}\n",
            DURATIONS[d],
            if after { " after enrollment" } else { "" }
        );
    }
    if spec.goal {
        s += "  goal completed\n";
    }
    s += "  exit on bounced\n";
    if spec.experiment {
        s += "  experiment copy { short 1, warm 2 }\n";
    }
    for (i, st) in spec.states.iter().enumerate() {
        s += &format!("  state s{i} {{\n");
        if st.split && spec.experiment {
            s += &format!(
                "    split copy {{ short -> s{}, warm -> s{} }}\n",
                (i + 1) % n,
                n - 1
            );
            s += "  }\n";
            continue;
        }
        if let Some(w) = &st.window {
            s += &format!("    {}\n", window_text(w));
        }
        for (j, (exp, via)) in st.sends.iter().enumerate() {
            let name = if *exp && spec.experiment {
                format!("t{i}-{j}-{{copy}}")
            } else {
                format!("t{i}-{j}")
            };
            match via {
                Some(c) => s += &format!("    send \"{name}\" via {}\n", CHANNELS[*c]),
                None => s += &format!("    send \"{name}\"\n"),
            }
        }
        for (e, t) in &st.ons {
            s += &format!("    on {} -> s{t}\n", EVENTS[*e]);
        }
        s += &format!("    after {} -> s{}\n", DURATIONS[st.after.0], st.after.1);
        if spec.deadline.is_some() {
            if let Some(t) = st.at_deadline {
                s += &format!("    at deadline -> s{t}\n");
            }
            if let Some((d, t)) = st.before_deadline {
                s += &format!("    before deadline {} -> s{t}\n", DURATIONS[d]);
            }
        }
        s += "  }\n";
    }
    s += &format!("  state s{} {{\n", n - 1);
    for j in 0..spec.final_sends {
        s += &format!("    send \"final-{j}\"\n");
    }
    s += "    end\n  }\n}\n";
    s
}

/// The generated campaign compiled; `None` when the checker rejects it only
/// because a state's window opens after its deadline transition, a
/// combination the generator makes but a recruiter cannot run.
fn machine_of(text: &str) -> Option<Machine> {
    let loaded = load_str("prop.nudge", text);
    assert!(
        loaded.diagnostics.is_empty(),
        "generated campaign does not parse:\n{text}\n{:?}",
        loaded.diagnostics
    );
    match compile_loaded(loaded, None) {
        Ok(mut compiled) => Some(compiled.campaigns.remove(0).machine),
        Err(PipelineError::Rejected { diagnostics, .. })
            if diagnostics
                .iter()
                .filter(|d| d.is_error())
                .all(|d| d.message.contains("never sends")) =>
        {
            None
        }
        Err(e) => panic!("generated campaign does not check:\n{text}\n{e:?}"),
    }
}

fn candidate_strategy() -> impl Strategy<Value = Candidate> {
    (
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(0..ZONES.len() + 1),
        0u32..1000,
    )
        .prop_map(|(phone, email, zone, id)| {
            let mut pairs = vec![("id".to_string(), format!("c{id}"))];
            if phone {
                pairs.push(("phone".into(), "+15550100".into()));
            }
            if email {
                pairs.push(("email".into(), "a@example.com".into()));
            }
            if let Some(z) = zone {
                pairs.push((
                    "timezone".into(),
                    ZONES.get(z).copied().unwrap_or("Not/AZone").into(),
                ));
            }
            Candidate::from_pairs(pairs, "sim")
        })
}

/// Whether `t` is inside `window` in `zone`, found without the engine's
/// window arithmetic: for each listed day that may still be open at `t`, the
/// opening and the closing instants are where a minute-by-minute walk of
/// the zone's wall clock first reaches the opening and closing times. That
/// reads LANGUAGE.md's rules off the wall clock: a time that a
/// spring-forward skips is reached at the first instant after the gap, one
/// that a fall-back repeats at its first occurrence.
fn oracle_contains(window: &Window, t: DateTime<Utc>, zone: Tz) -> bool {
    if window.open == window.close {
        return false;
    }
    let time = |minutes: u32| NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).unwrap();
    let today = t.with_timezone(&zone).date_naive();
    // A window is open for less than a day of wall clock, so only today's
    // and yesterday's openings (and one more for daylight saving) matter.
    (0..=2).any(|back| {
        let day = today - Duration::days(back);
        if !window.days[day.weekday().num_days_from_monday() as usize] {
            return false;
        }
        let close_day = if window.close <= window.open {
            day + Duration::days(1)
        } else {
            day
        };
        let opens = wall_clock_reaches(zone, day.and_time(time(window.open)));
        let closes = wall_clock_reaches(zone, close_day.and_time(time(window.close)));
        opens <= t && t < closes
    })
}

/// The first whole-minute instant at which the wall clock of `zone` shows
/// `local` or a later time, having shown an earlier one a minute before.
fn wall_clock_reaches(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let wall = |u: DateTime<Utc>| u.with_timezone(&zone).naive_local();
    // Reading the time as UTC and moving by the zone's offset then lands
    // within its largest daylight-saving change of the answer.
    let guess = local.and_utc();
    let offset = wall(guess) - guess.naive_utc();
    let mut u = guess - offset - Duration::hours(4);
    let mut before = wall(u);
    assert!(
        before < local,
        "the walk starts too late for {local} in {zone}"
    );
    for _ in 0..(8 * 60) {
        u += Duration::minutes(1);
        let now = wall(u);
        if before < local && local <= now {
            return u;
        }
        before = now;
    }
    panic!("the wall clock of {zone} never reaches {local}");
}

/// Instants near 2026's daylight-saving changes of [`ZONES`], where windows
/// go wrong if anywhere.
const CHANGES: [&str; 6] = [
    "2026-03-08T07:00:00Z", // New York and Chicago spring forward
    "2026-11-01T06:00:00Z", // and fall back
    "2026-03-29T01:00:00Z", // Berlin
    "2026-10-25T01:00:00Z",
    "2026-04-04T15:00:00Z", // Lord Howe: half an hour
    "2026-10-03T15:30:00Z",
];

/// Windows that open or close in the hours that daylight-saving changes
/// skip or repeat (01:00 to 03:00), on any days.
fn window_at_change_times() -> impl Strategy<Value = (Vec<usize>, u32, u32)> {
    let change_time = proptest::sample::select(vec![60u32, 90, 120, 150, 180]);
    (
        proptest::sample::subsequence((0..7).collect::<Vec<_>>(), 1..=7),
        change_time.clone(),
        prop_oneof![change_time, (0u32..48).prop_map(|h| h * 30)],
        any::<bool>(),
    )
        .prop_filter("a window has a length", |(_, a, b, _)| a != b)
        .prop_map(|(days, a, b, swap)| if swap { (days, b, a) } else { (days, a, b) })
}

fn records(lines: &[Line]) -> Vec<&Record> {
    lines
        .iter()
        .filter_map(|l| match l {
            Line::Record(r) => Some(r),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn simulator_keeps_its_promises(
        spec in campaign_spec(),
        candidate in candidate_strategy(),
        start_min in 0i64..(60 * 24 * 400),
        events in proptest::collection::vec((0..EVENTS.len(), 0i64..(60 * 24 * 20)), 0..6),
    ) {
        let text = render(&spec);
        let machine = machine_of(&text);
        prop_assume!(machine.is_some(), "the checker rejects it");
        let machine = machine.expect("assumed");
        let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(start_min);
        let scenario = Scenario {
            start,
            candidate: candidate.clone(),
            events: events.iter().map(|(e, m)| (EVENTS[*e].to_string(), start + Duration::minutes(*m))).collect(),
            variants: Vec::new(),
            until: start + Duration::days(30),
        };
        let first = run(&machine, &scenario).expect("runs");
        let second = run(&machine, &scenario).expect("runs");
        prop_assert_eq!(&first.lines, &second.lines, "not deterministic");

        let zone = candidate.zone(&machine.zone);
        let recs = records(&first.lines);
        let mut exited = false;
        let mut last = start;
        let mut sent: Vec<DateTime<Utc>> = Vec::new();
        for r in &recs {
            prop_assert!(r.at >= last, "time went backwards at {:?}\n{}", r, text);
            last = r.at;
            match &r.what {
                Happening::Exited { .. } => {
                    prop_assert!(!exited, "exited twice\n{}", text);
                    exited = true;
                }
                Happening::Sent { state, .. } => {
                    prop_assert!(!exited, "sent after exit\n{}", text);
                    let window = machine.states[*state].window.as_ref().or(machine.window.as_ref());
                    if let Some(w) = window {
                        prop_assert!(oracle_contains(w, r.at, zone), "sent outside {} at {}\n{}", w.text, r.at, text);
                    }
                    for limit in &machine.rate_limits {
                        let inside = sent.iter().filter(|s| **s > r.at - Duration::seconds(limit.period_secs)).count();
                        prop_assert!(inside < limit.count as usize, "limit {:?} exceeded at {}\n{}", limit, r.at, text);
                    }
                    sent.push(r.at);
                    if let Some(total) = machine.total_limit {
                        prop_assert!(sent.len() <= total as usize, "total limit exceeded\n{}", text);
                    }
                }
                Happening::Held { .. } | Happening::Skipped { .. } | Happening::Suppressed { .. } => {
                    prop_assert!(!exited, "send activity after exit\n{}", text);
                }
                _ => {}
            }
        }
        prop_assert!(last <= scenario.until, "processed past --until");
    }

    /// The engine's windows against the wall-clock oracle, mostly around
    /// daylight-saving changes: `contains` agrees with it, and `next_open`
    /// is an open instant with nothing open between `t` and it.
    #[test]
    fn windows_match_the_wall_clock(
        (days, open, close) in prop_oneof![window_strategy(), window_at_change_times()],
        zone in 0..ZONES.len(),
        near in proptest::option::weighted(0.8, 0..CHANGES.len()),
        minutes in -(36 * 60i64)..(12 * 60),
        probes in proptest::collection::vec(0.0f64..1.0, 8),
    ) {
        let mut mask = [false; 7];
        for d in &days {
            mask[*d] = true;
        }
        let window = Window { days: mask, open, close, text: window_text(&(days, open, close)) };
        let zone: Tz = ZONES[zone].parse().unwrap();
        let base = match near {
            Some(i) => CHANGES[i].parse::<DateTime<Utc>>().unwrap(),
            None => "2026-06-15T12:00:00Z".parse::<DateTime<Utc>>().unwrap(),
        };
        let t = base + Duration::minutes(minutes);
        prop_assert_eq!(window.contains(t, zone), oracle_contains(&window, t, zone), "{} at {} in {}", window.text, t, zone);
        let next = window.next_open(t, zone).expect("a window with a day and a length opens");
        prop_assert!(next >= t);
        prop_assert!(oracle_contains(&window, next, zone), "next_open {} is closed: {} in {}", next, window.text, zone);
        if next > t {
            let closed = |u: DateTime<Utc>| !oracle_contains(&window, u, zone);
            prop_assert!(closed(t) && closed(next - Duration::minutes(1)), "{} opens before {} after {} in {}", window.text, next, t, zone);
            let gap = (next - t).num_minutes();
            for p in &probes {
                let u = t + Duration::minutes((gap as f64 * p) as i64);
                prop_assert!(closed(u), "{} is open at {}, before next_open {} in {}", window.text, u, next, zone);
            }
        }
    }
}
