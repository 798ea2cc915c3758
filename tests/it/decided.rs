//! `until decided` experiments through the real daemon: a campaign whose
//! `warm` copy converts clearly better is decided once enough candidates
//! have completed; new candidates then get `warm`, those enrolled before
//! keep their variant, `status` and `show` say so, and the decision
//! survives a restart unchanged.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::support::site::{http, wait_for, Site};
use crate::support::stderr;

const CAMPAIGN: &str = r#"campaign probe {
  title    "Probe"
  goal     completed

  experiment copy { short 50, warm 50 } until decided

  state waiting {
    on completed -> done
  }

  state done {
    end
  }
}
"#;

fn site() -> Site {
    let site = Site::empty();
    site.write("campaigns/probe.nudge", CAMPAIGN);
    let config = std::fs::read_to_string(site.config()).unwrap();
    site.write(
        "nudge.toml",
        &format!("{config}\n[decided]\nevery_secs = 1\n"),
    );
    site
}

fn post(site: &Site, path: &str, body: &Value) -> Value {
    let (status, text) = http(
        site.port,
        "POST",
        path,
        Some(&site.token()),
        &body.to_string(),
    );
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn get(site: &Site, path: &str) -> Value {
    let (status, text) = http(site.port, "GET", path, Some(&site.token()), "");
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Enrolls `x{from}`..`x{to}` through the admin API: candidate id → variant.
fn enroll(site: &Site, from: usize, to: usize) -> BTreeMap<String, String> {
    (from..to)
        .map(|i| {
            let answer = post(
                site,
                "/v1/enroll",
                &json!({
                    "campaign": "probe",
                    "external_id": format!("x{i}"),
                    "fields": {"name": format!("Ana {i}"), "email": format!("x{i}@example.com")},
                }),
            );
            assert_eq!(answer["enrolled"], true, "{answer}");
            let id = answer["candidate"].as_str().unwrap().to_string();
            let variant = answer["variants"]["copy"].as_str().unwrap().to_string();
            (id, variant)
        })
        .collect()
}

/// The campaign's decisions as `/v1/status` gives them.
fn decided(site: &Site) -> Vec<Value> {
    let status = get(site, "/v1/status");
    status["campaigns"][0]["decided"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn warm_wins_new_candidates_get_it_earlier_ones_keep_theirs_and_a_restart_keeps_it() {
    let site = site();
    let daemon = site.start(None);

    // 160 candidates, then completions: 4 in 5 of `warm`, 1 in 10 of `short`.
    let early = enroll(&site, 0, 160);
    let count = |v: &str| early.values().filter(|x| *x == v).count();
    assert!(count("warm") > 40 && count("short") > 40, "{early:?}");
    assert!(decided(&site).is_empty(), "decided before any completion");
    let mut n = BTreeMap::<&str, usize>::new();
    for (id, variant) in &early {
        let k = n.entry(variant.as_str()).or_default();
        *k += 1;
        let completes = match variant.as_str() {
            "warm" => *k % 5 != 0,
            _ => *k % 10 == 0,
        };
        if completes {
            post(
                &site,
                "/v1/events",
                &json!({"candidate": id, "event": "completed"}),
            );
        }
    }

    let decision = wait_for(|| decided(&site).first().cloned()).unwrap_or_else(|| {
        panic!("not decided; the daemon's log:\n{}", daemon.log());
    });
    assert_eq!(decision["experiment"], "copy");
    assert_eq!(decision["winner"], "warm");
    assert_eq!(decision["applied"], true);
    let because = decision["because"].as_str().unwrap();
    assert!(
        because.starts_with("warm completes more than short: +"),
        "{because}"
    );
    let text = decision["text"].as_str().unwrap();
    assert!(
        text.starts_with("experiment copy decided: warm, 20"),
        "{text}"
    );
    assert!(
        daemon.log().contains("experiment decided"),
        "{}",
        daemon.log()
    );

    // New candidates get the winner, whatever their stable assignment.
    let late = enroll(&site, 160, 190);
    assert!(late.values().all(|v| v == "warm"), "{late:?}");
    let exp = nudge::engine::machine::Experiment {
        name: "copy".into(),
        variants: vec![("short".into(), 50), ("warm".into(), 50)],
        until_decided: true,
    };
    let stable_short = (late.keys())
        .filter(|id| nudge::engine::assign_variant("probe", &exp, id) == 0)
        .count();
    assert!(
        stable_short > 0,
        "every late candidate would have had warm anyway"
    );

    // Those enrolled before keep theirs; `show` tells the decision.
    for (id, variant) in early.iter().take(20) {
        let view = get(&site, &format!("/v1/candidates/{id}"));
        assert_eq!(
            view["enrollments"][0]["variants"]["copy"], *variant,
            "{view}"
        );
        assert_eq!(view["enrollments"][0]["decided"][0]["winner"], "warm");
    }
    let (short_id, _) = early.iter().find(|(_, v)| *v == "short").unwrap();
    let shown = site.nudge(&["show", short_id]);
    let shown_text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown_text.contains("experiment copy decided: warm")
            && shown_text.contains("(this enrollment has short)"),
        "{shown_text}{}",
        stderr(&shown)
    );
    let status = site.nudge(&["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("experiment copy decided: warm, 20"),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );

    // A restart on the same store keeps the decision as it was taken.
    daemon.stop();
    let daemon = site.start(None);
    let again = decided(&site);
    assert_eq!(again, vec![decision.clone()], "{}", daemon.log());
    let after = enroll(&site, 190, 210);
    assert!(after.values().all(|v| v == "warm"), "{after:?}");
    for (id, variant) in early.iter().take(5) {
        let view = get(&site, &format!("/v1/candidates/{id}"));
        assert_eq!(view["enrollments"][0]["variants"]["copy"], *variant);
    }
    // Read again after a few of the decider's looks: still the one decision.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(decided(&site), vec![decision], "{}", daemon.log());
    daemon.stop();
}

#[test]
fn an_edit_that_removes_until_decided_keeps_the_decision_but_no_longer_applies_it() {
    let site = site();
    let daemon = site.start(None);
    let early = enroll(&site, 0, 120);
    let mut n = BTreeMap::<&str, usize>::new();
    for (id, variant) in &early {
        let k = n.entry(variant.as_str()).or_default();
        *k += 1;
        if variant == "warm" && *k % 5 != 0 {
            post(
                &site,
                "/v1/events",
                &json!({"candidate": id, "event": "completed"}),
            );
        }
    }
    wait_for(|| decided(&site).first().cloned()).expect("decided");
    daemon.stop();

    site.write(
        "campaigns/probe.nudge",
        &CAMPAIGN.replace(" until decided", ""),
    );
    let daemon = site.start(None);
    let decision = decided(&site);
    assert_eq!(decision.len(), 1, "{decision:?}");
    assert_eq!(decision[0]["winner"], "warm");
    assert_eq!(decision[0]["applied"], false);
    assert!(
        decision[0]["text"]
            .as_str()
            .unwrap()
            .ends_with("(no longer applied: the experiment is not `until decided` now)"),
        "{decision:?}"
    );
    // New candidates get the stable assignment again: some get `short`.
    let late = enroll(&site, 120, 160);
    assert!(late.values().any(|v| v == "short"), "{late:?}");
    daemon.stop();
}

// ---------------------------------------------------------------- language

fn lang_site(campaign: &str) -> Site {
    let site = Site::empty();
    site.write("campaigns/probe.nudge", campaign);
    site
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn until_decided_checks_and_formats_back_to_itself() {
    let site = lang_site(CAMPAIGN);
    let out = site.nudge(&["check", "campaigns/probe.nudge"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no problems found"), "{}", text(&out));

    let messy = CAMPAIGN.replace(
        "  experiment copy { short 50, warm 50 } until decided\n",
        "experiment copy {short 50 ,warm 50}   until\n     decided   # stop when clear\n",
    );
    site.write("campaigns/probe.nudge", &messy);
    let out = site.nudge(&["fmt", "campaigns/probe.nudge"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let formatted = std::fs::read_to_string(site.path().join("campaigns/probe.nudge")).unwrap();
    assert_eq!(
        formatted,
        CAMPAIGN.replace("until decided\n", "until decided  # stop when clear\n")
    );
    let out = site.nudge(&["fmt", "--check", "campaigns/probe.nudge"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn anything_else_after_the_variants_is_an_error_with_a_hint() {
    for (tail, expected) in [
        ("until soon", "error: expected `decided`, found `soon`"),
        ("decided", "found `decided`"),
        ("until", "error: expected `decided`, found `state`"),
        ("soon", "found `soon`"),
    ] {
        let site = lang_site(&CAMPAIGN.replace("until decided", tail));
        let out = site.nudge(&["check", "campaigns/probe.nudge"]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{tail}: {said}");
        assert!(said.contains(expected), "{tail}: {said}");
        assert!(
            said.contains(
                "help: an experiment's `}` may be followed only by `until decided`, \
                 which makes it stop itself once a winner is clear"
            ),
            "{tail}: {said}"
        );
    }
    let site = lang_site(&CAMPAIGN.replace("until decided", "untill decided"));
    let said = text(&site.nudge(&["check", "campaigns/probe.nudge"]));
    assert!(said.contains("help: did you mean `until`?"), "{said}");
}

#[test]
fn until_decided_without_a_goal_or_with_one_variant_is_warned_about() {
    let site = lang_site(
        &CAMPAIGN
            .replace("  goal     completed\n", "")
            .replace("short 50, warm 50", "warm 50"),
    );
    let out = site.nudge(&["check", "campaigns/probe.nudge"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(
            "warning: experiment `copy` is decided on the goal, but the campaign has no `goal`"
        ),
        "{said}"
    );
    assert!(
        said.contains("warning: experiment `copy` has one variant: it can never be decided"),
        "{said}"
    );
}

#[test]
fn simulate_gives_the_winner_from_the_decision_on() {
    let site = lang_site(CAMPAIGN);
    let exp = nudge::engine::machine::Experiment {
        name: "copy".into(),
        variants: vec![("short".into(), 50), ("warm".into(), 50)],
        until_decided: true,
    };
    // A candidate whose stable variant is `short`.
    let id = (1..)
        .map(|i| format!("id=c-{i}"))
        .find(|id| nudge::engine::assign_variant("probe", &exp, &id[3..]) == 0)
        .unwrap();
    let run = |more: &[&str]| -> Value {
        let mut args = vec![
            "simulate",
            "campaigns/probe.nudge",
            "--start",
            "2026-12-01T10:00:00Z",
            "--candidate",
            &id,
            "--until",
            "1h",
            "--json",
        ];
        args.extend_from_slice(more);
        let out = site.nudge(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let first = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap()
            .to_string();
        serde_json::from_str::<Value>(&first).unwrap()["variants"]["copy"].clone()
    };
    assert_eq!(run(&[]), "short");
    assert_eq!(run(&["--decided", "copy=warm@0h"]), "warm");
    assert_eq!(
        run(&["--decided", "copy=warm@2026-11-30T00:00:00Z"]),
        "warm"
    );
    assert_eq!(run(&["--decided", "copy=warm@2d"]), "short");
    assert_eq!(
        run(&["--decided", "copy=warm@0h", "--variant", "copy=short"]),
        "short"
    );

    let out = site.nudge(&[
        "simulate",
        "campaigns/probe.nudge",
        "--start",
        "2026-12-01T10:00:00Z",
        "--decided",
        "copy=cold@1h",
    ]);
    assert!(
        text(&out).contains(
            "`--decided copy=cold@...`: experiment `copy` has no variant `cold` (variants: short, warm)"
        ),
        "{}",
        text(&out)
    );
    assert_ne!(out.status.code(), Some(0));

    let plain = lang_site(&CAMPAIGN.replace(" until decided", ""));
    let out = plain.nudge(&[
        "simulate",
        "campaigns/probe.nudge",
        "--start",
        "2026-12-01T10:00:00Z",
        "--decided",
        "copy=warm@1h",
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out).contains("experiment `copy` is not `until decided`"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_decided_table_that_cannot_work_is_refused_where_it_is_written() {
    let site = lang_site(CAMPAIGN);
    let config = std::fs::read_to_string(site.config()).unwrap();
    site.write(
        "nudge.toml",
        &format!("{config}\n[decided]\nevery_secs = 0\n"),
    );
    let out = site.nudge(&["check", "campaigns/probe.nudge"]);
    let said = text(&out);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("`decided.every_secs` is 0; it must be from 1 to 86400"),
        "{said}"
    );
    assert!(said.contains("every_secs = 0"), "{said}");
}

// ---------------------------------------------------------------- the core

mod core {
    use std::collections::BTreeMap;

    use chrono::{DateTime, Utc};
    use nudge::runtime::api::EnrollRequest;
    use nudge::runtime::campaigns::Campaigns;
    use nudge::runtime::core::{Command, Core, DecideRequest, Decided, Reply};
    use nudge::store::{MemoryStore, SledStore, Store};

    fn campaigns(dir: &std::path::Path, text: &str) -> Campaigns {
        std::fs::create_dir_all(dir.join("campaigns")).unwrap();
        std::fs::write(dir.join("campaigns/probe.nudge"), text).unwrap();
        Campaigns::load(&dir.join("campaigns"), None).unwrap().0
    }

    fn enroll<S: Store>(
        core: &mut Core<S>,
        from: usize,
        to: usize,
        now: DateTime<Utc>,
    ) -> Vec<String> {
        let commands = (from..to)
            .map(|i| {
                Command::Enroll(EnrollRequest {
                    campaign: "probe".into(),
                    external_id: Some(format!("x{i}")),
                    fields: BTreeMap::from([("email".to_string(), format!("x{i}@example.com"))]),
                    ignore_filter: false,
                })
            })
            .collect();
        let (replies, _) = core.execute(commands, now).unwrap();
        replies
            .into_iter()
            .map(|r| match r {
                Reply::Enrolled(e) => e.variants["copy"].clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn decide<S: Store>(core: &mut Core<S>, winner: &str, now: DateTime<Utc>) -> Decided {
        let req = DecideRequest {
            campaign: "probe".into(),
            experiment: "copy".into(),
            winner: winner.into(),
            because: format!("{winner} completes more"),
        };
        match core
            .execute(vec![Command::Decide(req)], now)
            .unwrap()
            .0
            .pop()
        {
            Some(Reply::Decided(d)) => d,
            other => panic!("{other:?}"),
        }
    }

    /// The decision is stored once and stands; new enrollments get the
    /// winner; a second decision and a bad one change nothing.
    fn decided_once<S: Store>(store: S, dir: &std::path::Path) -> S {
        let now: DateTime<Utc> = "2026-12-03T14:00:00Z".parse().unwrap();
        let mut core = Core::new(
            store.clone(),
            campaigns(dir, super::CAMPAIGN),
            None,
            crate::support::settings(),
        );
        let before = enroll(&mut core, 0, 40, now);
        assert!(before.iter().any(|v| v == "short"), "{before:?}");
        let Decided::Stored(stored) = decide(&mut core, "warm", now) else {
            panic!("not stored");
        };
        assert_eq!(stored.winner, "warm");
        assert_eq!(stored.at_ms, now.timestamp_millis());
        let later = now + chrono::Duration::minutes(5);
        assert_eq!(
            decide(&mut core, "short", later),
            Decided::Already(stored.clone())
        );
        assert!(
            matches!(decide(&mut core, "cold", later), Decided::Refused(why) if why.contains("no variant `cold`"))
        );
        let after = enroll(&mut core, 40, 70, later);
        assert!(after.iter().all(|v| v == "warm"), "{after:?}");
        // Enrolling the same candidates again changes nothing.
        assert_eq!(enroll(&mut core, 0, 40, later), before);
        assert_eq!(store.decisions().unwrap(), vec![stored]);
        store
    }

    #[test]
    fn on_memory() {
        let dir = tempfile::tempdir().unwrap();
        decided_once(MemoryStore::new(), dir.path());
    }

    #[test]
    fn on_sled_and_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let store = decided_once(SledStore::open(&path, 8 << 20).unwrap(), dir.path());
        let first = store.decisions().unwrap();
        drop(store);
        let store = SledStore::open(&path, 8 << 20).unwrap();
        assert_eq!(store.decisions().unwrap(), first);
        assert_eq!(first[0].winner, "warm");
    }
}
