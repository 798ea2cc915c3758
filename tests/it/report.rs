//! `nudge report --events FILE`, the real binary over event logs written
//! here, whose every figure is worked out by hand below (REPORT.md §2–§7):
//! counts, rates, time to completion, each grouping, experiments, red
//! flags, a date range, and the refusals of a bad log.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::support::{stderr, stdout};

fn nudge(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(args)
        .current_dir(dir)
        .env_remove("NUDGE_CONFIG")
        .output()
        .expect("run nudge")
}

fn write_log(dir: &Path, lines: &[Value]) -> PathBuf {
    let path = dir.join("events.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// The report as JSON, exit status checked.
fn report(dir: &Path, log: &Path, args: &[&str]) -> Value {
    let mut all = vec![
        "report",
        "--events",
        log.to_str().unwrap(),
        "--format",
        "json",
    ];
    all.extend_from_slice(args);
    let out = nudge(dir, &all);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("one JSON object")
}

fn ev(kind: &str, at: &str, candidate: &str, campaign: Option<&str>, extra: Value) -> Value {
    let mut line = json!({"kind": kind, "at": at, "candidate": candidate});
    if let Some(c) = campaign {
        line["campaign"] = json!(c);
    }
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            line[k] = v;
        }
    }
    line
}

/// Three campaigns: `alpha` with an experiment and seven enrollments
/// (one a re-enrollment), `beta` with a custom goal sharing a candidate
/// with `alpha`, and `gamma` with a header and no enrollment.
fn log() -> Vec<Value> {
    let a = Some("alpha");
    let b = Some("beta");
    let n = json!({});
    vec![
        json!({"kind": "campaign", "campaign": "alpha", "goal": "completed",
               "experiments": {"copy": ["short", "warm"]}}),
        json!({"kind": "campaign", "campaign": "beta", "title": "Beta role", "goal": "hired",
               "experiments": {}}),
        json!({"kind": "campaign", "campaign": "gamma", "goal": "completed",
               "experiments": {"subject": ["a", "b", "c"]}}),
        // Before any enrollment of its candidate: ignored.
        ev("opened", "2026-10-26T09:00:00Z", "zz", None, n.clone()),
        ev(
            "enrolled",
            "2026-10-26T10:00:00Z",
            "a1",
            a,
            json!({"variants": {"copy": "short"}, "source": "indeed", "timezone": "America/New_York"}),
        ),
        ev(
            "sent",
            "2026-10-26T10:05:00Z",
            "a1",
            a,
            json!({"channel": "email", "template": "invite"}),
        ),
        ev(
            "enrolled",
            "2026-10-26T10:30:00Z",
            "a1",
            b,
            json!({"source": "indeed"}),
        ),
        ev(
            "sent",
            "2026-10-26T10:40:00Z",
            "a1",
            b,
            json!({"channel": "sms"}),
        ),
        ev(
            "delivered",
            "2026-10-26T10:41:00Z",
            "a1",
            a,
            json!({"channel": "email"}),
        ),
        ev("opened", "2026-10-26T10:50:00Z", "a1", a, n.clone()),
        // No campaign: both of a1's enrollments own it.
        ev(
            "clicked",
            "2026-10-26T11:00:00Z",
            "a1",
            None,
            json!({"device": "mobile"}),
        ),
        ev(
            "enrolled",
            "2026-10-26T11:00:00Z",
            "a2",
            a,
            json!({"variants": {"copy": "warm"}, "source": "indeed"}),
        ),
        ev("started", "2026-10-26T11:30:00Z", "a1", a, n.clone()),
        ev("completed", "2026-10-26T12:05:00Z", "a1", a, n.clone()),
        ev(
            "exited",
            "2026-10-26T12:05:00Z",
            "a1",
            a,
            json!({"state": "completed", "converted": true}),
        ),
        ev(
            "sent",
            "2026-10-27T01:30:00Z",
            "a2",
            a,
            json!({"channel": "sms"}),
        ),
        ev(
            "delivered",
            "2026-10-27T01:31:00Z",
            "a2",
            a,
            json!({"channel": "sms"}),
        ),
        ev(
            "clicked",
            "2026-10-27T02:00:00Z",
            "a2",
            a,
            json!({"device": "desktop"}),
        ),
        ev(
            "clicked",
            "2026-10-27T02:10:00Z",
            "a2",
            a,
            json!({"device": "mobile"}),
        ),
        ev(
            "enrolled",
            "2026-10-27T09:00:00Z",
            "a3",
            a,
            json!({"variants": {"copy": "warm"}, "source": "ats", "timezone": "Asia/Tokyo"}),
        ),
        // Not beta's goal: no step.
        ev("completed", "2026-10-27T10:00:00Z", "a1", b, n.clone()),
        ev("hired", "2026-10-27T10:40:00Z", "a1", b, n.clone()),
        ev(
            "sent",
            "2026-10-27T15:30:00Z",
            "a3",
            a,
            json!({"channel": "email"}),
        ),
        ev(
            "bounced",
            "2026-10-27T15:31:00Z",
            "a3",
            a,
            json!({"channel": "email"}),
        ),
        ev("opted_out", "2026-10-27T16:00:00Z", "a3", None, n.clone()),
        ev(
            "enrolled",
            "2026-10-28T00:00:00Z",
            "a4",
            a,
            json!({"variants": {"copy": "short"}}),
        ),
        ev(
            "enrolled",
            "2026-10-28T08:00:00Z",
            "a5",
            a,
            json!({"variants": {"copy": "warm"}, "source": "ats", "timezone": "Mars/Olympus"}),
        ),
        ev(
            "sent",
            "2026-10-28T09:00:00Z",
            "a5",
            a,
            json!({"channel": "email"}),
        ),
        ev(
            "failed",
            "2026-10-28T09:01:00Z",
            "a5",
            a,
            json!({"channel": "sms"}),
        ),
        ev(
            "enrolled",
            "2026-10-29T00:00:00Z",
            "a6",
            a,
            json!({"variants": {"copy": "short"}, "source": "indeed"}),
        ),
        ev("completed", "2026-10-29T01:00:00Z", "a6", a, n.clone()),
        ev(
            "sent",
            "2026-10-29T02:00:00Z",
            "a6",
            a,
            json!({"channel": "sms"}),
        ),
        ev("completed", "2026-10-29T10:00:00Z", "a5", a, n.clone()),
        ev(
            "exited",
            "2026-10-29T10:00:00Z",
            "a5",
            a,
            json!({"state": "completed"}),
        ),
        ev(
            "exited",
            "2026-10-29T12:00:00Z",
            "a2",
            a,
            json!({"state": "expired"}),
        ),
        // a2 again: a new enrollment owns what follows.
        ev(
            "enrolled",
            "2026-10-30T00:00:00Z",
            "a2",
            a,
            json!({"variants": {"copy": "short"}}),
        ),
        ev(
            "sent",
            "2026-10-30T01:00:00Z",
            "a2",
            a,
            json!({"channel": "email"}),
        ),
        ev("opened", "2026-10-30T02:00:00Z", "a2", a, n.clone()),
    ]
}

fn campaign<'r>(report: &'r Value, name: &str) -> &'r Value {
    report["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["campaign"] == name)
        .unwrap_or_else(|| panic!("no campaign {name} in {report}"))
}

fn counts(funnel: &Value) -> Vec<u64> {
    funnel
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["count"].as_u64().unwrap())
        .collect()
}

fn rates(funnel: &Value, key: &str) -> Vec<Option<f64>> {
    funnel
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[key].as_f64())
        .collect()
}

fn keys(groups: &Value) -> Vec<(String, u64)> {
    groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["key"].as_str().unwrap().to_string(),
                g["funnel"][0]["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

fn close(got: &Value, want: f64) {
    let got = got
        .as_f64()
        .unwrap_or_else(|| panic!("{got} is not a number"));
    assert!((got - want).abs() < 1e-12, "got {got}, want {want}");
}

#[test]
fn every_count_and_rate_of_a_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), &log());
    let r = report(dir.path(), &log, &[]);
    let names: Vec<&str> = r["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["campaign"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta", "gamma"]);

    let alpha = campaign(&r, "alpha");
    assert_eq!(counts(&alpha["funnel"]), [7, 6, 5, 5, 4, 3, 3]);
    let steps: Vec<&str> = alpha["funnel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "enrolled",
            "invited",
            "delivered",
            "opened",
            "clicked",
            "started",
            "completed"
        ]
    );
    assert_eq!(
        rates(&alpha["funnel"], "rate_from_previous"),
        [
            None,
            Some(6.0 / 7.0),
            Some(5.0 / 6.0),
            Some(1.0),
            Some(0.8),
            Some(0.75),
            Some(1.0)
        ]
    );
    assert_eq!(
        rates(&alpha["funnel"], "rate_from_enrolled"),
        [7.0, 6.0, 5.0, 5.0, 4.0, 3.0, 3.0].map(|k| Some(k / 7.0))
    );
    assert_eq!(
        alpha["outcomes"],
        json!({"opted_out": 1, "bounced": 1, "failed": 1,
               "exited": {"completed": 2, "expired": 1}, "running": 4})
    );
    // a1 in 7,200 s, a5 in 90,000 s; a6 completed before its first send.
    let t = &alpha["time_to_completion"];
    assert_eq!(t["count"], 2);
    close(&t["median_s"], 7200.0);
    close(&t["p90_s"], 90_000.0);
    close(&t["within_24h"], 1.0 / 6.0);
    close(&t["within_48h"], 2.0 / 6.0);
    close(&t["within_72h"], 2.0 / 6.0);
    assert_eq!(alpha["goal"], "completed");
    assert_eq!(alpha["groups"], json!({}));
    assert_eq!(alpha["red_flags"], json!([]));

    // The shared candidate's campaign-less click counts in beta too; its
    // goal is `hired`, exactly 24 hours after the send.
    let beta = campaign(&r, "beta");
    assert_eq!(beta["title"], "Beta role");
    assert_eq!(beta["goal"], "hired");
    assert_eq!(counts(&beta["funnel"]), [1, 1, 1, 1, 1, 1, 1]);
    let t = &beta["time_to_completion"];
    close(&t["median_s"], 86_400.0);
    close(&t["within_24h"], 1.0);
    assert_eq!(beta["outcomes"]["running"], 1);

    // A header and no enrollment: zero counts, absent rates.
    let gamma = campaign(&r, "gamma");
    assert_eq!(counts(&gamma["funnel"]), [0; 7]);
    assert_eq!(rates(&gamma["funnel"], "rate_from_enrolled"), [None; 7]);
    assert_eq!(rates(&gamma["funnel"], "rate_from_previous"), [None; 7]);
    assert_eq!(
        gamma["time_to_completion"],
        json!({"count": 0, "median_s": null, "p90_s": null,
               "within_24h": null, "within_48h": null, "within_72h": null})
    );
    let e = &gamma["experiments"][0];
    assert_eq!(e["name"], "subject");
    assert_eq!(
        e["variants"][2],
        json!({"name": "c", "n": 0, "completed": 0, "rate": null, "interval": null})
    );
    assert_eq!(e["comparisons"][0]["verdict"], "not_enough_data");
    assert_eq!(e["comparisons"][0]["difference"], Value::Null);
    assert_eq!(e["chi_square"], Value::Null);
    assert_eq!(e["sample_needed"], Value::Null);
}

#[test]
fn every_grouping() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), &log());
    let by = ["variant", "channel", "source", "device", "weekday", "hour"];
    let mut args = Vec::new();
    for b in by {
        args.extend(["--by", b]);
    }
    let r = report(
        dir.path(),
        &log,
        &[&args[..], &["--campaign", "alpha"]].concat(),
    );
    assert_eq!(r["campaigns"].as_array().unwrap().len(), 1);
    let groups = &campaign(&r, "alpha")["groups"];
    let names: Vec<&String> = groups.as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "variant:copy",
            "channel",
            "source",
            "device",
            "weekday",
            "hour"
        ]
    );

    let variant = &groups["variant:copy"];
    assert_eq!(keys(variant), pairs(&[("short", 4), ("warm", 3)]));
    assert_eq!(counts(&variant[0]["funnel"]), [4, 3, 3, 3, 2, 2, 2]);
    assert_eq!(counts(&variant[1]["funnel"]), [3, 3, 2, 2, 2, 1, 1]);
    assert_eq!(variant[1]["outcomes"]["opted_out"], 1);
    assert_eq!(variant[0]["time_to_completion"]["count"], 1);

    assert_eq!(
        keys(&groups["channel"]),
        pairs(&[("email", 4), ("sms", 2), ("none", 1)])
    );
    assert_eq!(
        keys(&groups["source"]),
        pairs(&[("indeed", 3), ("ats", 2), ("unknown", 2)])
    );
    // a2's first click with a device was on a desktop.
    assert_eq!(
        keys(&groups["device"]),
        pairs(&[("unknown", 5), ("desktop", 1), ("mobile", 1)])
    );
    // First sends in local time: a1 06:05 Mon in New York, a2 01:30 Tue
    // UTC, a3 00:30 Wed in Tokyo, a5 09:00 Wed UTC (an unknown zone),
    // a6 02:00 Thu, a2 again 01:00 Fri; a4 was never sent to.
    assert_eq!(
        keys(&groups["weekday"]),
        pairs(&[
            ("mon", 1),
            ("tue", 1),
            ("wed", 2),
            ("thu", 1),
            ("fri", 1),
            ("sat", 0),
            ("sun", 0),
            ("none", 1)
        ])
    );
    let hours = keys(&groups["hour"]);
    assert_eq!(hours.len(), 25);
    let busy: Vec<(String, u64)> = hours.into_iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(
        busy,
        pairs(&[
            ("00", 1),
            ("01", 2),
            ("02", 1),
            ("06", 1),
            ("09", 1),
            ("none", 1)
        ])
    );
    let empty = &groups["weekday"][5];
    assert_eq!(empty["key"], "sat");
    assert_eq!(rates(&empty["funnel"], "rate_from_enrolled"), [None; 7]);
}

#[test]
fn an_experiment_with_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), &log());
    let r = report(dir.path(), &log, &["--campaign", "alpha"]);
    let e = &campaign(&r, "alpha")["experiments"][0];
    assert_eq!(e["name"], "copy");
    let v = &e["variants"];
    assert_eq!(
        (
            v[0]["name"].as_str(),
            v[0]["n"].as_u64(),
            v[0]["completed"].as_u64()
        ),
        (Some("short"), Some(4), Some(2))
    );
    assert_eq!(
        (
            v[1]["name"].as_str(),
            v[1]["n"].as_u64(),
            v[1]["completed"].as_u64()
        ),
        (Some("warm"), Some(3), Some(1))
    );
    close(&v[0]["rate"], 0.5);
    close(&v[1]["rate"], 1.0 / 3.0);
    let c = &e["comparisons"][0];
    assert_eq!(
        (c["variant"].as_str(), c["versus"].as_str()),
        (Some("warm"), Some("short"))
    );
    close(&c["difference"], 1.0 / 3.0 - 0.5);
    assert_eq!(c["verdict"], "not_enough_data");
    // 1,565 needed for a control at 50%, less the smaller variant's 3.
    assert_eq!(e["sample_needed"], 1565);
    assert_eq!(
        c["text"],
        "not enough data yet: about 1562 more per variant"
    );
    assert_eq!(e["chi_square"], Value::Null);
}

#[test]
fn a_date_range_selects_enrollments_and_keeps_their_later_events() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), &log());
    // [Oct 27, Oct 29): a3, a4, a5; a6 enrolled at the end, so out.
    let r = report(
        dir.path(),
        &log,
        &["--since", "2026-10-27", "--until", "2026-10-29"],
    );
    let alpha = campaign(&r, "alpha");
    assert_eq!(counts(&alpha["funnel"]), [3, 2, 1, 1, 1, 1, 1]);
    // a5 completed on Oct 29, after the range: it counts.
    assert_eq!(alpha["time_to_completion"]["count"], 1);
    close(&alpha["time_to_completion"]["median_s"], 90_000.0);
    assert_eq!(counts(&campaign(&r, "beta")["funnel"]), [0; 7]);
    // The same instant written with an offset.
    let same = report(
        dir.path(),
        &log,
        &[
            "--since",
            "2026-10-27T02:00:00+02:00",
            "--until",
            "2026-10-29T00:00:00Z",
        ],
    );
    assert_eq!(same, r);
}

#[test]
fn red_flags_follow_the_thresholds_of_nudge_toml() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), &log());
    std::fs::write(
        dir.path().join("nudge.toml"),
        "[report]\nlow_open_rate = 0.8\nlow_open_rate_base = 1\nhigh_start_low_completion_base = 1\n\
         high_bounce_rate_base = 1\nhigh_opt_out_rate_base = 1\nhigh_failure_rate_base = 1\n",
    )
    .unwrap();
    let r = report(dir.path(), &log, &["--campaign", "alpha"]);
    let flags: Vec<(String, Option<String>, f64, u64)> = campaign(&r, "alpha")["red_flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["channel"].as_str().map(str::to_string),
                f["value"].as_f64().unwrap(),
                f["base"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        [
            (
                "low_open_rate".to_string(),
                Some("email".to_string()),
                0.75,
                4
            ),
            ("high_bounce_rate".into(), Some("email".into()), 0.25, 4),
            ("high_opt_out_rate".into(), None, 1.0 / 7.0, 7),
            ("high_failure_rate".into(), None, 1.0 / 6.0, 6),
        ]
    );
    let table = nudge(dir.path(), &["report", "--events", log.to_str().unwrap()]);
    let text = stdout(&table);
    assert!(
        text.contains("high_bounce_rate: 25.0% of 4 sent to by email bounced"),
        "{text}"
    );
    assert!(text.contains("spam folders"), "{text}");

    std::fs::write(
        dir.path().join("nudge.toml"),
        "[report]\nlow_open_rate = 20\n",
    )
    .unwrap();
    let out = nudge(dir.path(), &["report", "--events", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`report.low_open_rate` is 20"),
        "{}",
        stderr(&out)
    );
    std::fs::write(dir.path().join("nudge.toml"), "[report]\nlow_open = 0.1\n").unwrap();
    let out = nudge(dir.path(), &["report", "--events", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("low_open"), "{}", stderr(&out));
}

#[test]
fn table_and_csv_show_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), &log());
    let path = log.to_str().unwrap();
    let out = nudge(dir.path(), &["report", "--events", path, "--by", "variant"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    for expected in [
        "alpha\n7 enrolled · goal: completed",
        "beta · Beta role",
        "experiment copy (control: short)",
        "not enough data yet: about 1562 more per variant",
        "median 2h 0m, 90% within 1d 1h",
    ] {
        assert!(table.contains(expected), "{expected:?} not in\n{table}");
    }
    let out = nudge(
        dir.path(),
        &[
            "report", "--events", path, "--format", "csv", "--by", "channel",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let csv = stdout(&out);
    assert!(
        csv.starts_with("campaign,section,grouping,group,item,measure,value\n"),
        "{csv}"
    );
    for row in [
        "alpha,funnel,,,clicked,count,4",
        "alpha,funnel,,,clicked,rate_from_previous,0.8",
        "alpha,funnel,channel,sms,enrolled,count,2",
        "alpha,outcomes,,,exited:expired,count,1",
        "alpha,time_to_completion,,,,p90_s,90000",
        "alpha,experiment,copy,warm,warm,n,3",
        "alpha,comparison,copy,warm,warm vs short,verdict,not_enough_data",
        "gamma,funnel,,,enrolled,rate_from_enrolled,",
    ] {
        assert!(csv.lines().any(|l| l == row), "{row:?} not in\n{csv}");
    }

    let file = dir.path().join("out.json");
    let out = nudge(
        dir.path(),
        &[
            "report",
            "--events",
            path,
            "--format",
            "json",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(written, report(dir.path(), &log, &[]));
}

#[test]
fn a_bad_line_fails_the_report_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = log();
    let cases: [(Value, &str); 3] = [
        (json!("not an object"), "line 6: "),
        (
            json!({"kind": "enrolled", "at": "2026-10-26T10:00:00Z", "campaign": "alpha"}),
            "line 6: `candidate` is missing; every `enrolled` line needs it",
        ),
        (
            json!({"kind": "opened", "at": "27/10/2026", "candidate": "a1"}),
            "line 6: `at` \"27/10/2026\" is not RFC 3339",
        ),
    ];
    for (bad, expected) in cases {
        let mut lines = good.clone();
        lines.insert(5, bad);
        let path = write_log(dir.path(), &lines);
        let out = nudge(
            dir.path(),
            &[
                "report",
                "--events",
                path.to_str().unwrap(),
                "--format",
                "json",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{expected}");
        assert_eq!(stdout(&out), "", "{expected}");
        assert!(
            stderr(&out).contains(expected),
            "{expected:?} not in {}",
            stderr(&out)
        );
    }
    // Not JSON at all.
    let mut text: String = good.iter().map(|l| format!("{l}\n")).collect();
    text.push_str("{\"kind\": \"opened\", \"at\": \n");
    std::fs::write(dir.path().join("cut.jsonl"), text).unwrap();
    let out = nudge(dir.path(), &["report", "--events", "cut.jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    let line = good.len() + 1;
    assert!(
        stderr(&out).contains(&format!("cut.jsonl: line {line}: is not JSON")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), &log());
    let path = log.to_str().unwrap();
    let out = nudge(
        dir.path(),
        &["report", "--events", path, "--since", "last tuesday"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`last tuesday` is neither an RFC 3339 instant"),
        "{}",
        stderr(&out)
    );
    let out = nudge(dir.path(), &["report", "--events", path, "--by", "colour"]);
    assert_eq!(out.status.code(), Some(2));
    let out = nudge(
        dir.path(),
        &[
            "report",
            "--events",
            path,
            "--since",
            "2026-10-29",
            "--until",
            "2026-10-28",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`--since` must be before `--until`"),
        "{}",
        stderr(&out)
    );
    let out = nudge(
        dir.path(),
        &["report", "--events", path, "--campaign", "delta"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no campaign `delta`"),
        "{}",
        stderr(&out)
    );
    let out = nudge(dir.path(), &["report", "--events", "missing.jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot open missing.jsonl"),
        "{}",
        stderr(&out)
    );
}
