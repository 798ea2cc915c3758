//! `nudge export` and reports over the store: a store filled by the real
//! daemon is exported through it and without it (the same bytes), the log
//! is in time order and follows REPORT.md §1, and the report over the store
//! equals the report over the exported log.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::site::{email_template, wait_for, Site, PROBE};
use crate::support::{stderr, stdout};

/// The probe campaign with a two-way experiment.
fn site() -> Site {
    let site = Site::empty();
    let campaign = PROBE.replace(
        "  goal     completed\n",
        "  goal     completed\n  experiment copy { short 50, warm 50 }\n",
    );
    site.write("campaigns/probe.nudge", &campaign);
    for name in ["ping", "pong", "bye"] {
        site.write(&format!("templates/{name}.email.j2"), &email_template(name));
    }
    site
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Waits until the export holds `n` deliveries (every send settled, so
/// every export sees the same history).
fn wait_delivered(site: &Site, n: usize) {
    wait_for(|| {
        let log = site.ok(&["export"]);
        let delivered = lines(&log)
            .iter()
            .filter(|l| l["kind"] == "delivered")
            .count();
        (delivered >= n).then_some(())
    })
    .expect("every ping delivered");
}

/// Twelve candidates enrolled through the daemon, each sent its first
/// message; some click (from a phone), start and complete.
fn fill(site: &Site) {
    let ids: Vec<String> = (0..12)
        .map(|i| {
            let answer = site.enroll(
                &format!("x{i}"),
                &format!("Ana {i}"),
                &format!("x{i}@example.com"),
            );
            answer["candidate"].as_str().unwrap().to_string()
        })
        .collect();
    for who in &ids {
        site.wait_sent(who, "ping");
    }
    for (i, who) in ids.iter().enumerate().take(8) {
        site.ok(&["event", who, "clicked", "--field", "device=mobile"]);
        if i < 5 {
            site.ok(&["event", who, "started"]);
        }
        if i < 3 {
            site.ok(&["event", who, "completed"]);
        }
    }
}

#[test]
fn the_export_is_the_event_log_in_time_order_the_same_through_the_daemon_and_without_it() {
    let site = site();
    let daemon = site.start(None);
    fill(&site);
    // Every send settled, so both exports see the same history.
    wait_delivered(&site, 12);
    let through = site.ok(&["export"]);
    let report_through = site.ok(&["report", "--format", "json", "--by", "variant"]);
    daemon.stop();
    let direct = site.ok(&["export"]);
    assert_eq!(
        through, direct,
        "the daemon's export and the store's differ"
    );

    let log = lines(&direct);
    assert_eq!(log[0]["kind"], "campaign", "{}", log[0]);
    assert_eq!(log[0]["campaign"], "probe");
    assert_eq!(log[0]["goal"], "completed");
    assert_eq!(
        log[0]["experiments"]["copy"],
        serde_json::json!(["short", "warm"])
    );
    let of = |kind: &str| log.iter().filter(|l| l["kind"] == kind).collect::<Vec<_>>();
    let enrolled = of("enrolled");
    assert_eq!(enrolled.len(), 12);
    for e in &enrolled {
        assert_eq!(e["campaign"], "probe");
        assert!(
            ["short", "warm"].contains(&e["variants"]["copy"].as_str().unwrap()),
            "{e}"
        );
        assert!(e["at"].as_str().unwrap().ends_with('Z'), "{e}");
    }
    let sent = of("sent");
    assert_eq!(sent.len(), 12);
    assert!(sent
        .iter()
        .all(|s| s["channel"] == "email" && s["template"] == "ping"));
    assert_eq!(of("clicked").len(), 8);
    assert!(of("clicked").iter().all(|c| c["device"] == "mobile"));
    assert_eq!(of("started").len(), 5);
    assert_eq!(of("completed").len(), 3);
    // Time order, and every candidate enrolled before their first line.
    let times: Vec<i64> = log[1..]
        .iter()
        .map(|l| {
            chrono::DateTime::parse_from_rfc3339(l["at"].as_str().unwrap())
                .unwrap()
                .timestamp_millis()
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "not in time order");
    let mut seen = BTreeSet::new();
    for l in &log[1..] {
        let who = l["candidate"].as_str().unwrap().to_string();
        if l["kind"] == "enrolled" {
            seen.insert(who);
        } else {
            assert!(seen.contains(&who), "{l} before its enrollment");
        }
    }

    // The report over the store and over the exported log agree.
    let file = site.path().join("log.jsonl");
    site.ok(&["export", "--output", file.to_str().unwrap()]);
    let report_store = site.ok(&["report", "--format", "json", "--by", "variant"]);
    let report_log = site.ok(&[
        "report",
        "--events",
        file.to_str().unwrap(),
        "--format",
        "json",
        "--by",
        "variant",
    ]);
    let (store, from_log, through): (Value, Value, Value) = (
        serde_json::from_str(&report_store).unwrap(),
        serde_json::from_str(&report_log).unwrap(),
        serde_json::from_str(&report_through).unwrap(),
    );
    assert_eq!(store, from_log);
    assert_eq!(store, through);
    let funnel = &store["campaigns"][0]["funnel"];
    let count = |step: usize| funnel[step]["count"].as_u64().unwrap();
    assert_eq!(
        (count(0), count(1), count(4), count(5), count(6)),
        (12, 12, 8, 5, 3),
        "{funnel}"
    );
}

/// The daemon keeps the report traces in memory once a report has read
/// them: every commit after that (enrollments, sends, events) reaches the
/// report through it as it reaches the store.
#[test]
fn the_daemons_report_from_memory_follows_every_commit_after_the_first() {
    let site = site();
    let daemon = site.start(None);
    let early = site.enroll("early", "Eve", "early@example.com");
    site.wait_sent(early["candidate"].as_str().unwrap(), "ping");
    let report = |site: &Site| -> Value {
        serde_json::from_str(&site.ok(&["report", "--format", "json", "--by", "variant"])).unwrap()
    };
    // Read from the store, and kept.
    let first = report(&site);
    assert_eq!(first["campaigns"][0]["funnel"][0]["count"], 1, "{first}");
    fill(&site);
    site.ok(&["event", early["candidate"].as_str().unwrap(), "opted_out"]);
    wait_delivered(&site, 13);
    let through = report(&site);
    daemon.stop();
    let direct = report(&site);
    assert_eq!(
        through, direct,
        "the daemon's report and the store's differ"
    );
    let funnel = &direct["campaigns"][0]["funnel"];
    let count = |step: usize| funnel[step]["count"].as_u64().unwrap();
    assert_eq!(
        (count(0), count(1), count(4), count(5), count(6)),
        (13, 13, 8, 5, 3),
        "{funnel}"
    );
}

#[test]
fn dates_and_campaigns_select_what_is_exported() {
    let site = site();
    let daemon = site.start(None);
    let answer = site.enroll("x1", "Ana", "x1@example.com");
    site.wait_sent(answer["candidate"].as_str().unwrap(), "ping");
    daemon.stop();
    // Enrolled today: nothing is enrolled after tomorrow.
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let later = lines(&site.ok(&["export", "--since", &tomorrow]));
    assert_eq!(later.len(), 1, "only the campaign line: {later:?}");
    let before = lines(&site.ok(&["export", "--until", &tomorrow]));
    assert!(before.iter().any(|l| l["kind"] == "sent"), "{before:?}");

    let out = site.nudge(&["export", "--since", "last week"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--since") && stderr(&out).contains("last week"),
        "{}",
        stderr(&out)
    );
    let out = site.nudge(&["export", "--campaign", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nosuch"), "{}", stderr(&out));

    // A failed export leaves no file behind under its name.
    let file = site.path().join("never.jsonl");
    let out = site.nudge(&[
        "export",
        "--campaign",
        "nosuch",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!file.exists());
}

/// A store of layout 6 kept no report traces, and one of layout 7 kept
/// them under `e` keys of their own. Opened by this build, each gets them
/// in front of its dossiers (from the `e` keys where there are some, else
/// from the histories) and reports as before; `nudge verify` then finds
/// them whole, and names traces that disagree with a history. One of
/// layout 8 wrote its messages' instants as text: opened by this build,
/// its dossiers come back the same.
#[test]
fn a_store_of_an_earlier_layout_gets_its_report_traces_in_its_dossiers() {
    use nudge::store::sled::dossier_record;
    use nudge::store::{raw, SledStore, Store, Transaction};
    let site = site();
    let daemon = site.start(None);
    fill(&site);
    daemon.stop();
    let before = site.ok(&["report", "--format", "json", "--by", "variant"]);
    // Every dossier as an earlier layout wrote it; with `layout_7`, one
    // candidate's traces under their `e` key, emptied.
    let rewind = |layout: u32| {
        let store = SledStore::open(&site.store(), 8 << 20).unwrap();
        let records: Vec<(Vec<u8>, Vec<u8>)> = store
            .scan_raw(b"c")
            .map(|r| r.unwrap())
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(records.len(), 12, "one dossier per candidate");
        let mut txn = store.begin();
        for (i, (k, v)) in records.iter().enumerate() {
            assert!(dossier_record::is_current(v));
            let d = dossier_record::decode(v).unwrap();
            let old = if layout == 8 {
                dossier_record::encode_layout_8(&d)
            } else {
                dossier_record::encode_unmarked(&d)
            };
            txn.put_raw(k.clone(), old);
            if layout == 7 && i == 0 {
                let mut e = k.clone();
                e[0] = b'e';
                txn.put_raw(
                    e,
                    postcard::to_allocvec(&nudge::report::trace::Traces::default()).unwrap(),
                );
            }
        }
        txn.put_raw(raw::meta("schema"), layout.to_be_bytes().to_vec());
        txn.commit().unwrap();
        drop(store);
        std::fs::write(
            site.store().join(nudge::store::LAYOUT_FILE),
            format!("{layout}\n"),
        )
        .unwrap();
    };
    // Layout 8: the same records, its messages' instants as text; read as
    // they were, then rewritten in this layout's form on open.
    let dossiers = || -> Vec<nudge::store::Dossier> {
        let store = SledStore::open(&site.store(), 8 << 20).unwrap();
        let all: Vec<_> = store
            .scan_raw(b"c")
            .map(|r| {
                let v = r.unwrap().1;
                assert!(dossier_record::is_current(&v));
                dossier_record::decode(&v).unwrap()
            })
            .collect();
        all
    };
    let whole = dossiers();
    assert!(
        whole.iter().any(|d| !d.settled.items().unwrap().is_empty()),
        "some sends settled"
    );
    rewind(8);
    assert_eq!(
        site.ok(&["report", "--format", "json", "--by", "variant"]),
        before
    );
    assert_eq!(dossiers(), whole);
    let who = &whole[0].candidate.id;
    assert!(site.ok(&["show", who]).contains(who));

    rewind(6);
    let after = site.ok(&["report", "--format", "json", "--by", "variant"]);
    assert_eq!(before, after);
    let verified = site.nudge(&["verify"]);
    assert_eq!(verified.status.code(), Some(0), "{}", stdout(&verified));
    {
        let store = SledStore::open(&site.store(), 8 << 20).unwrap();
        for r in store.scan_raw(b"c") {
            assert!(dossier_record::is_current(&r.unwrap().1));
        }
    }

    // Layout 7: the traces under the `e` key are the ones kept (one
    // candidate's, emptied behind the store's back, so the report counts
    // one enrollment fewer and `verify` says their traces disagree).
    rewind(7);
    let report: serde_json::Value =
        serde_json::from_str(&site.ok(&["report", "--format", "json"])).unwrap();
    let first: serde_json::Value = serde_json::from_str(&before).unwrap();
    let enrolled = |r: &serde_json::Value| -> u64 {
        r["campaigns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["funnel"][0]["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(enrolled(&report) + 1, enrolled(&first), "{report}");
    {
        let store = SledStore::open(&site.store(), 8 << 20).unwrap();
        assert_eq!(store.scan_raw(b"e").count(), 0, "the `e` keys went");
    }
    let verified = site.nudge(&["verify"]);
    assert_eq!(verified.status.code(), Some(1));
    assert!(
        stdout(&verified).contains("report traces do not match their history"),
        "{}",
        stdout(&verified)
    );
}
