//! Applications: an `applied` for someone unknown creates them and enrolls
//! them where the campaigns' `where` filters take them; the same email or
//! phone is one person; an explicit enrollment obeys the filter unless told
//! not to. Through the real daemon's admin API and the CLI, and without a
//! daemon.

use serde_json::{json, Value};

use crate::support::site::{http, Site};
use crate::support::stderr;

fn apply(site: &Site, body: Value) -> (u16, Value) {
    let (status, text) = http(
        site.port,
        "POST",
        "/v1/applied",
        Some(&site.token()),
        &body.to_string(),
    );
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}"));
    (status, value)
}

fn candidates(site: &Site) -> usize {
    let out = site.nudge(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    status["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["states"].as_array().unwrap().iter())
        .map(|s| s[1].as_i64().unwrap())
        .sum::<i64>() as usize
}

#[test]
fn an_application_creates_the_person_once_and_enrolls_them_where_the_filter_takes_them() {
    let site = Site::warehouse();
    let daemon = site.start(None);
    let ana = json!({
        "fields": {"name": "Ana Ruiz", "email": "Ana@Example.com", "phone": "+15550100",
                   "role": "Warehouse Associate", "source": "instagram-story"},
        "id": "form-1"
    });
    let (status, first) = apply(&site, ana.clone());
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["created"], true, "{first}");
    let enrolled = first["enrolled"].as_array().unwrap();
    assert_eq!(enrolled.len(), 1, "{first}");
    assert_eq!(enrolled[0]["campaign"], "warehouse_associate");
    assert!(first["link"].as_str().unwrap().contains("/i/"), "{first}");

    // The same application again (its id): the first answer, nothing new.
    let (_, again) = apply(&site, ana);
    assert_eq!(again["repeated"], true, "{again}");
    assert_eq!(again["candidate"], first["candidate"]);
    // Whole: the id and link it is kept without are given back, also in
    // each enrollment.
    let mut same = again.clone();
    same["repeated"] = json!(false);
    assert_eq!(same, first);

    // The same email in other case, or the same phone: the same person,
    // enrolled already.
    for fields in [
        json!({"name": "Ana R", "email": "ana@example.COM", "role": "Warehouse Associate"}),
        json!({"name": "Ana R", "phone": "+1 555 0100", "role": "Warehouse Associate"}),
    ] {
        let (status, same) = apply(&site, json!({ "fields": fields }));
        assert_eq!(status, 200, "{same}");
        assert_eq!(same["candidate"], first["candidate"], "{same}");
        assert_eq!(same["created"], false, "{same}");
        assert!(same["enrolled"].as_array().unwrap().is_empty(), "{same}");
        assert_eq!(same["not_enrolled"][0]["reason"], "enrolled already");
    }

    // A role no campaign takes: kept, enrolled nowhere, and said why.
    let (status, bo) = apply(
        &site,
        json!({"fields": {"name": "Bo", "email": "bo@example.com", "role": "Forklift Trainer"}}),
    );
    assert_eq!(status, 200, "{bo}");
    assert_eq!(bo["created"], true);
    assert!(bo["enrolled"].as_array().unwrap().is_empty(), "{bo}");
    let reasons: Vec<&str> = bo["not_enrolled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.iter().all(|r| r.contains("`where` filter")), "{bo}");

    // Neither email nor phone, an unknown campaign, a bad address: refused,
    // nothing made.
    let (status, none) = apply(&site, json!({"fields": {"name": "Cy"}}));
    assert_eq!(status, 400, "{none}");
    assert!(
        none["message"].as_str().unwrap().contains("email"),
        "{none}"
    );
    let (status, unknown) = apply(
        &site,
        json!({"fields": {"email": "cy@example.com"}, "campaign": "nope"}),
    );
    assert_eq!(status, 404, "{unknown}");
    let (status, bad) = apply(&site, json!({"fields": {"email": "not an address"}}));
    assert_eq!(status, 400, "{bad}");
    let (status, typo) = apply(&site, json!({"field": {"email": "cy@example.com"}}));
    assert_eq!(status, 400, "{typo}");
    assert_eq!(candidates(&site), 1, "only Ana is in a campaign");
    let out = site.nudge(&["show", "cy@example.com"]);
    assert_eq!(out.status.code(), Some(1), "nobody was made for Cy");
    daemon.stop();
}

#[test]
fn an_applied_event_creates_the_person_and_an_explicit_enrollment_obeys_the_filter() {
    let site = Site::warehouse();
    // Without a daemon: the CLI's `event` with `applied` for someone new.
    let out = site.nudge(&[
        "event",
        "dee@example.com",
        "applied",
        "--field",
        "name=Dee",
        "--field",
        "role=Warehouse Associate",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = site.nudge(&["show", "dee@example.com", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dee: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dee["enrollments"][0]["campaign"], "warehouse_associate");

    // An explicit enrollment the filter does not take is refused, naming
    // the way round it, and stores nobody.
    let args = [
        "enroll",
        "--campaign",
        "warehouse_associate",
        "--name",
        "Eve",
        "--email",
        "eve@example.com",
        "--field",
        "role=Driver",
    ];
    let out = site.nudge(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--ignore-filter"), "{}", stderr(&out));
    assert_eq!(
        site.nudge(&["show", "eve@example.com"]).status.code(),
        Some(1)
    );
    let mut forced = args.to_vec();
    forced.push("--ignore-filter");
    let out = site.nudge(&forced);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("enrolled as asked"),
        "{}",
        stderr(&out)
    );
}
