//! `nudge status` answers from counters the core keeps in its commits:
//! random runs of enrollments, events, timers firing, pauses and reloads
//! onto a changed campaign (which migrates the waiting candidates), on
//! both stores, and after each step the status report agrees with a full
//! scan of the enrollments; on sled, again after the store is reopened.
//! A store of an older layout gets its counts when it is opened.

use crate::support::repo;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::Duration;
use proptest::prelude::*;

use nudge::engine::Instant;
use nudge::runtime::api::{EnrollRequest, EventRequest};
use nudge::runtime::campaigns::Campaigns;
use nudge::runtime::core::{Command, Core};
use nudge::runtime::query;
use nudge::store::{timer_counts, Counter, Dossier, MemoryStore, SledStore, Store};
use nudge::templates::Templates;

const WAREHOUSE: &str = "warehouse_associate";
const EVENTS: [&str; 5] = ["clicked", "started", "completed", "opted_out", "bounced"];

/// A folder with the warehouse campaign and the repository's templates.
fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["campaigns", "templates"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    for entry in std::fs::read_dir(repo().join("templates")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path().join("templates").join(entry.file_name()),
        )
        .unwrap();
    }
    write_campaign(dir.path(), false);
    dir
}

/// The warehouse campaign, or a version of it with a shorter first wait
/// (a reload onto it migrates every waiting candidate).
fn write_campaign(dir: &Path, changed: bool) {
    let text = std::fs::read_to_string(repo().join("campaigns/warehouse.nudge")).unwrap();
    let text = if changed {
        text.replacen("after 24h -> reminder", "after 20h -> reminder", 1)
    } else {
        text
    };
    std::fs::write(dir.join("campaigns/warehouse.nudge"), text).unwrap();
}

fn campaigns(dir: &Path) -> Campaigns {
    Campaigns::load(&dir.join("campaigns"), Some(&dir.join("templates")))
        .map(|(c, _, _)| c)
        .unwrap_or_else(|_| panic!("the warehouse campaign checks"))
}

fn core<S: Store>(dir: &Path, store: S) -> Core<S> {
    let templates = Templates::load(&dir.join("templates")).unwrap();
    Core::new(
        store,
        campaigns(dir),
        Some(Arc::new(templates)),
        crate::support::settings(),
    )
}

/// One thing that happens to the store.
#[derive(Debug, Clone)]
enum Op {
    Enroll(usize),
    Event(usize, usize),
    /// Time moves on this many minutes and the due timers fire.
    Wait(i64),
    Pause(bool),
    /// A reload onto the original (false) or changed (true) campaign.
    Reload(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..8).prop_map(Op::Enroll),
        3 => (0usize..8, 0..EVENTS.len()).prop_map(|(c, e)| Op::Event(c, e)),
        4 => (1i64..3000).prop_map(Op::Wait),
        1 => any::<bool>().prop_map(Op::Pause),
        1 => any::<bool>().prop_map(Op::Reload),
    ]
}

fn enroll(i: usize) -> Command {
    let fields: BTreeMap<String, String> = [
        ("name", format!("Applicant {i}")),
        ("role", "Warehouse Associate".into()),
        ("source", "indeed".into()),
        if i.is_multiple_of(2) {
            ("phone", format!("+1312555{i:04}"))
        } else {
            ("email", format!("a{i}@example.com"))
        },
        (
            "timezone",
            ["America/Chicago", "Asia/Kathmandu", "Europe/Berlin"][i % 3].into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Command::Enroll(EnrollRequest {
        ignore_filter: true,
        campaign: WAREHOUSE.into(),
        external_id: Some(format!("a{i}")),
        fields,
    })
}

fn apply<S: Store>(core: &mut Core<S>, dir: &Path, op: &Op, now: &mut Instant) {
    match op {
        Op::Enroll(i) => {
            core.execute(vec![enroll(*i)], *now).unwrap();
        }
        Op::Event(i, e) => {
            let event = Command::Event(EventRequest {
                candidate: format!("a{i}"),
                event: EVENTS[*e].into(),
                ..EventRequest::default()
            });
            core.execute(vec![event], *now).unwrap();
        }
        Op::Wait(minutes) => {
            *now += Duration::minutes(*minutes);
            while core.fire_due(*now, 1000).unwrap().0 > 0 {}
        }
        Op::Pause(paused) => {
            let command = Command::SetPaused {
                campaign: WAREHOUSE.into(),
                paused: *paused,
            };
            core.execute(vec![command], *now).unwrap();
        }
        Op::Reload(changed) => {
            write_campaign(dir, *changed);
            core.reload(campaigns(dir), *now).unwrap();
        }
    }
}

/// The figures `status` shows, as a scan of every enrollment finds them.
#[derive(Debug, PartialEq, Eq)]
struct Figures {
    states: Vec<(String, i64)>,
    outcomes: Vec<(String, i64)>,
    next_hour: u64,
    next_day: u64,
    held: u64,
}

fn scanned<S: Store>(store: &S, campaigns: &Campaigns, now: Instant) -> Figures {
    let dossiers: Vec<Dossier> = store.dossiers().map(Result::unwrap).collect();
    let machine = &campaigns.get(WAREHOUSE).unwrap().machine;
    let enrollments = || {
        dossiers
            .iter()
            .flat_map(|d| &d.enrollments)
            .filter(|e| e.campaign == WAREHOUSE)
    };
    let states = machine
        .states
        .iter()
        .map(|s| {
            let n = enrollments()
                .filter(|e| e.engine.outcome.is_none() && e.state_name == s.name)
                .count();
            (s.name.clone(), n as i64)
        })
        .collect();
    let mut outcomes: BTreeMap<String, i64> = BTreeMap::new();
    for e in enrollments() {
        if let Some(o) = &e.engine.outcome {
            *outcomes.entry(o.clone()).or_insert(0) += 1;
        }
    }
    let counts = timer_counts(&dossiers);
    // Counted to the minute: the minutes that begin before the horizon.
    let due_before = |horizon: Instant| -> u64 {
        counts
            .iter()
            .filter_map(|((_, counter), n)| match counter {
                Counter::SendsDue(minute) if minute * 60_000 < horizon.timestamp_millis() => {
                    Some(*n as u64)
                }
                _ => None,
            })
            .sum()
    };
    Figures {
        states,
        outcomes: outcomes.into_iter().collect(),
        next_hour: due_before(now + Duration::hours(1)),
        next_day: due_before(now + Duration::days(1)),
        held: counts
            .get(&(WAREHOUSE.to_string(), Counter::Held))
            .map_or(0, |n| *n as u64),
    }
}

fn reported<S: Store>(store: &S, campaigns: &Campaigns, now: Instant) -> Figures {
    let report = query::status(store, campaigns, None, now).unwrap();
    let c = &report.campaigns[0];
    Figures {
        states: c.states.clone(),
        outcomes: c
            .outcomes
            .iter()
            .filter(|(_, n)| *n != 0)
            .cloned()
            .collect(),
        next_hour: c.sends_next_hour,
        next_day: c.sends_next_day,
        held: c.held,
    }
}

/// Also the waiting timers themselves, as the timer records say (each
/// send or held timer the scan counts is live there too).
fn check<S: Store>(store: &S, campaigns: &Campaigns, now: Instant, after: &Op) {
    let scan = scanned(store, campaigns, now);
    assert_eq!(reported(store, campaigns, now), scan, "after {after:?}");
    let live_held = store
        .live_timers()
        .unwrap()
        .iter()
        .filter(|t| t.kind == nudge::store::TimerKind::Held)
        .count() as u64;
    assert_eq!(live_held, scan.held, "held timers after {after:?}");
}

fn run<S: Store>(dir: &Path, store: S, ops: &[Op]) -> Instant {
    let mut core = core(dir, store);
    // A Monday morning in Chicago.
    let mut now = crate::support::at("2026-11-23T14:00:00Z");
    for op in ops {
        apply(&mut core, dir, op, &mut now);
        check(core.store(), core.campaigns(), now, op);
    }
    now
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn status_counts_equal_a_scan_on_both_stores(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = folder();
        run(dir.path(), MemoryStore::new(), &ops);

        let dir = folder();
        let store = SledStore::open(&dir.path().join("store"), 8 << 20).unwrap();
        let now = run(dir.path(), store, &ops);
        // Kept on disk: a reopened store reads the same.
        let store = SledStore::open(&dir.path().join("store"), 8 << 20).unwrap();
        let campaigns = campaigns(dir.path());
        assert_eq!(reported(&store, &campaigns, now), scanned(&store, &campaigns, now));
    }
}

/// A store of layout 3 (before the timer counts were kept) gets them from
/// its enrollments when it is opened, so `status` agrees with a scan.
#[test]
fn an_older_store_gets_its_timer_counts_when_opened() {
    let dir = folder();
    let fixture = repo().join("tests/it/fixtures/layout3");
    std::fs::copy(
        fixture.join("warehouse.nudge"),
        dir.path().join("campaigns/warehouse.nudge"),
    )
    .unwrap();
    let store_dir = dir.path().join("store");
    let mut todo = vec![fixture.join("data")];
    while let Some(from) = todo.pop() {
        for entry in std::fs::read_dir(&from).unwrap() {
            let path = entry.unwrap().path();
            let to = store_dir.join(path.strip_prefix(fixture.join("data")).unwrap());
            if path.is_dir() {
                todo.push(path);
            } else {
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(&path, &to).unwrap();
            }
        }
    }
    let store = SledStore::open(&store_dir, 8 << 20).unwrap();
    let dossiers: Vec<Dossier> = store.dossiers().map(Result::unwrap).collect();
    let scan = timer_counts(&dossiers);
    assert!(
        scan.keys().any(|(_, c)| matches!(c, Counter::SendsDue(_))),
        "the fixture has candidates waiting to be sent something: {scan:?}"
    );
    let far = crate::support::at("2100-01-01T00:00:00Z");
    for ((campaign, counter), n) in &scan {
        if counter == &Counter::Held {
            let stored = store.counters(campaign).unwrap();
            assert!(stored.contains(&(Counter::Held, *n)), "{stored:?}");
        }
    }
    let all: i64 = scan
        .iter()
        .filter(|((_, c), _)| matches!(c, Counter::SendsDue(_)))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(store.sends_due(WAREHOUSE, far).unwrap(), all);
}
