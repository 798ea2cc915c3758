//! Late sends: a message that could only go after the candidate's
//! deadline it was due before, or more than `stale_after_secs` after it
//! was due, is skipped as `late` and never sent. Through the real daemon
//! stopped across the instants that matter (its clock set with `--clock`),
//! and through the core for the sends that wait on a retry or a paced
//! channel.

use crate::support::site::{self, wait_for, Daemon};
use crate::support::{at, stderr, stdout};
use std::process::Command;
use std::sync::Arc;
use std::time::SystemTime;

use chrono::Duration;

use nudge::channels::SendError;
use nudge::engine::Instant;
use nudge::runtime::api::EnrollRequest;
use nudge::runtime::campaigns::Campaigns;
use nudge::runtime::core::{Command as CoreCommand, Core, Reply};
use nudge::store::{LogKind, MemoryStore, SendKey, SendStatus, Store};
use nudge::templates::Templates;

/// Three campaigns alike but for their deadline and when their second
/// message is due, so one downtime of 13 hours after `ping` finds each
/// `pong` in another case: `tight` past its deadline (10h), `stale` due
/// 12h30m before (past the 12h limit), `fresh` due 11h before.
fn campaign(name: &str, deadline: &str, after: &str) -> String {
    format!(
        r#"campaign {name} {{
  channels email
  deadline {deadline}
  goal     completed

  state first {{
    send "ping"
    on clicked -> clicked
    after {after} -> second
  }}

  state second {{
    send "pong"
    on clicked -> clicked
    at deadline -> last
  }}

  state clicked {{
    at deadline -> last
  }}

  state last {{
    send "bye"
    end
  }}
}}
"#
    )
}

/// A folder laid out as an operator would, with the default catch-up and
/// staleness settings (the daemon's own, not a test's).
struct Site(site::Site);

impl std::ops::Deref for Site {
    type Target = site::Site;

    fn deref(&self) -> &site::Site {
        &self.0
    }
}

impl Site {
    fn new() -> Site {
        let site = site::Site::empty();
        site.write(
            "nudge.toml",
            &format!(
                r#"store = "data"
interview_url = "https://interview.example/i/{{token}}"

[admin]
listen = "127.0.0.1:{port}"

[server]
listen = "127.0.0.1:0"

[channels.email]
transport = "file"
path = "out/email.jsonl"
"#,
                port = site.port
            ),
        );
        for (name, deadline, after) in [
            ("tight", "10h", "2h"),
            ("stale", "72h", "30m"),
            ("fresh", "72h", "2h"),
        ] {
            site.write(
                &format!("campaigns/{name}.nudge"),
                &campaign(name, deadline, after),
            );
        }
        for name in ["ping", "pong", "bye"] {
            site.write(
                &format!("templates/{name}.email.j2"),
                &format!("Subject: {name}\n\nHi {{{{ candidate.first_name }}}}: {{{{ link }}}}\n"),
            );
        }
        Site(site)
    }

    /// Starts `nudge run` on a clock that reads `origin` now and runs at
    /// the real pace, and waits until it runs.
    fn start(&self, origin: Instant) -> Daemon {
        let real_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let clock = format!("{}@{real_ms}*1", nudge::sim::rfc3339(origin));
        self.start_with(&["run", "--clock", &clock], |_| {}, &[": running"])
    }

    /// Enrolls `id` in `campaign`; the candidate's id.
    fn enroll(&self, campaign: &str, id: &str) -> String {
        let email = format!("{id}@example.com");
        let out = self.nudge(&[
            "enroll",
            "--campaign",
            campaign,
            "--id",
            id,
            "--name",
            "Ana Ruiz",
            "--email",
            &email,
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        reply["candidate"].as_str().unwrap().to_string()
    }

    /// The templates the email channel received for `candidate`, in order.
    fn sent_to(&self, candidate: &str) -> Vec<String> {
        let path = self.path().join("out/email.jsonl");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|m| m["candidate"] == candidate)
            .map(|m| m["template"].as_str().unwrap().to_string())
            .collect()
    }

    fn wait_sent(&self, candidate: &str, template: &str) {
        wait_for(|| {
            self.sent_to(candidate)
                .iter()
                .any(|t| t == template)
                .then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "{candidate} was never sent {template}: {:?}",
                self.sent_to(candidate)
            )
        });
    }

    /// `nudge show CANDIDATE`, once its history has a line with `needle`.
    fn wait_show(&self, candidate: &str, needle: &str) -> String {
        let mut last = String::new();
        wait_for(|| {
            last = stdout(&self.nudge(&["show", candidate]));
            last.contains(needle).then_some(())
        })
        .unwrap_or_else(|| panic!("`show {candidate}` never said {needle:?}:\n{last}"));
        last
    }
}

/// The line of `status` that counts a campaign's sends.
fn counts_line(status: &str, title_line: &str) -> String {
    let mut lines = status.lines().skip_while(|l| !l.starts_with(title_line));
    lines
        .find(|l| l.contains("sends due in the next hour"))
        .unwrap_or_else(|| panic!("no counts for {title_line}:\n{status}"))
        .to_string()
}

#[test]
fn after_downtime_a_send_past_the_deadline_or_the_stale_limit_is_skipped_as_late() {
    let site = Site::new();
    let t0 = at("2026-12-07T09:00:00Z");
    let daemon = site.start(t0);
    let tight = site.enroll("tight", "tina");
    let stale = site.enroll("stale", "stan");
    let fresh = site.enroll("fresh", "fred");
    for c in [&tight, &stale, &fresh] {
        site.wait_sent(c, "ping");
    }
    daemon.stop();

    // Back 13 hours later: past tight's deadline (10h), 12h30m after
    // stale's pong was due, 11h after fresh's.
    let daemon = site.start(t0 + Duration::hours(13));
    site.wait_sent(&fresh, "pong");
    // The message of the state entered at the deadline still goes.
    site.wait_sent(&tight, "bye");
    let show = site.wait_show(&tight, "late");
    assert!(
        show.contains("pong skipped: late: due before the deadline, it could only go after it"),
        "{show}"
    );
    // 12h30m, give or take the seconds between the enrollments.
    let show = site.wait_show(&stale, "late");
    assert!(
        show.contains("pong skipped: late: it could only go 12h 29m after")
            || show.contains("pong skipped: late: it could only go 12h 30m after"),
        "{show}"
    );
    assert!(show.contains("after it was due, more than 12h"), "{show}");
    let status = stdout(&site.nudge(&["status"]));
    assert!(
        counts_line(&status, "tight").ends_with("late 1"),
        "{status}"
    );
    assert!(
        counts_line(&status, "stale").ends_with("late 1"),
        "{status}"
    );
    assert!(
        counts_line(&status, "fresh").ends_with("late 0"),
        "{status}"
    );
    daemon.stop();
    assert_eq!(site.sent_to(&tight), ["ping", "bye"]);
    assert_eq!(site.sent_to(&stale), ["ping"]);
    assert_eq!(site.sent_to(&fresh), ["ping", "pong"]);
}

#[test]
fn a_send_waiting_in_the_outbox_when_nudge_stopped_is_skipped_late_at_the_restart() {
    let site = Site::new();
    // Enrolled with no daemon running: the ping waits in the outbox, due
    // now (the real clock).
    let out = site.nudge(&[
        "enroll",
        "--campaign",
        "fresh",
        "--id",
        "olga",
        "--name",
        "Olga",
        "--email",
        "olga@example.com",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let olga = reply["candidate"].as_str().unwrap().to_string();

    // A minute more than 13 hours: the clock given to `--clock` is read
    // to the whole second.
    let daemon = site.start(chrono::Utc::now() + Duration::minutes(13 * 60 + 1));
    let show = site.wait_show(&olga, "late");
    assert!(show.contains("email: late: it could only go 13h"), "{show}");
    let status = stdout(&site.nudge(&["status"]));
    assert!(
        counts_line(&status, "fresh").ends_with("late 1"),
        "{status}"
    );
    assert!(status.contains("outbox: 0 waiting"), "{status}");
    // Its pong, due 11 hours before the restart, is within the limit.
    site.wait_sent(&olga, "pong");
    daemon.stop();
    assert_eq!(site.sent_to(&olga), ["pong"]);
}

// ------------------------------------------------------------- in the core

/// A core on a memory store with the three campaigns of [`Site`].
fn core() -> (tempfile::TempDir, Core<MemoryStore>) {
    let site = Site::new();
    let campaigns = site.path().join("campaigns");
    let templates = site.path().join("templates");
    let (loaded, _, _) = Campaigns::load(&campaigns, Some(&templates)).unwrap();
    let templates = Templates::load(&templates).unwrap();
    let core = Core::new(
        MemoryStore::new(),
        loaded,
        Some(Arc::new(templates)),
        crate::support::settings(),
    );
    (site.0.dir, core)
}

/// Enrolls a candidate in `campaign` at `now`: their id and their first
/// send, queued.
fn enroll(core: &mut Core<MemoryStore>, campaign: &str, now: Instant) -> (String, String) {
    let request = EnrollRequest {
        ignore_filter: true,
        campaign: campaign.into(),
        external_id: None,
        fields: [
            ("name".to_string(), "Ana Ruiz".to_string()),
            ("email".to_string(), "ana@example.com".to_string()),
        ]
        .into(),
    };
    let (replies, out) = core
        .execute(vec![CoreCommand::Enroll(request)], now)
        .unwrap();
    let [Reply::Enrolled(r)] = &replies[..] else {
        panic!("{replies:?}");
    };
    assert_eq!(out.len(), 1, "{out:?}");
    (r.candidate.clone(), out[0].key.clone())
}

fn late_lines(core: &Core<MemoryStore>, candidate: &str) -> Vec<String> {
    core.store()
        .history(candidate)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            LogKind::DeliveryFailed { why, .. } => Some(why.to_string()),
            _ => None,
        })
        .filter(|why| why.starts_with("late"))
        .collect()
}

fn status_of(core: &Core<MemoryStore>, key: &str) -> SendStatus {
    core.store()
        .send(SendKey::parse(key).unwrap())
        .unwrap()
        .unwrap()
        .status
}

#[test]
fn a_send_held_for_its_channel_past_the_deadline_is_not_cleared() {
    let (_dir, mut core) = core();
    let t0 = at("2026-12-07T09:00:00Z");
    let (candidate, ping) = enroll(&mut core, "tight", t0);
    // The pong is due at t0+2h, before the deadline (t0+10h).
    let (_, out) = core.fire_due(t0 + Duration::hours(2), 16).unwrap();
    assert_eq!(out.len(), 1, "{out:?}");
    let pong = out[0].key.clone();
    // A paced channel's backlog: the dispatcher asks to hand the ping over
    // at once, and the pong only after the deadline.
    let ask = |core: &mut Core<MemoryStore>, key: &str, now| {
        let (replies, _) = core
            .execute(vec![CoreCommand::MarkInFlight(vec![key.to_string()])], now)
            .unwrap();
        let [Reply::Cleared(cleared)] = &replies[..] else {
            panic!("{replies:?}");
        };
        cleared.clone()
    };
    assert_eq!(ask(&mut core, &ping, t0), vec![ping]);
    assert!(ask(&mut core, &pong, t0 + Duration::hours(11)).is_empty());
    assert!(
        matches!(status_of(&core, &pong), SendStatus::Suppressed(why) if why.starts_with("late")),
        "{:?}",
        status_of(&core, &pong)
    );
    assert_eq!(
        late_lines(&core, &candidate),
        ["late: due before the deadline, it could only go after it"]
    );
}

#[test]
fn a_retry_that_would_go_past_the_stale_limit_is_skipped() {
    let (_dir, mut core) = core();
    let t0 = at("2026-12-07T09:00:00Z");
    let (candidate, ping) = enroll(&mut core, "fresh", t0);
    let failed = CoreCommand::Delivered {
        key: ping.clone(),
        outcome: Err(SendError::Retryable("connection reset".into())),
    };
    core.execute(vec![failed], t0).unwrap();
    // Nothing retried the send until 13 hours later (the daemon was down).
    let out = core.retry_due(t0 + Duration::hours(13), 16).unwrap();
    assert!(out.is_empty(), "a stale retry went out: {out:?}");
    assert!(matches!(status_of(&core, &ping), SendStatus::Suppressed(_)));
    assert_eq!(
        late_lines(&core, &candidate),
        ["late: it could only go 13h after it was due, more than 12h"]
    );
}

#[test]
fn a_retry_within_the_limit_and_before_the_deadline_goes() {
    let (_dir, mut core) = core();
    let t0 = at("2026-12-07T09:00:00Z");
    let (candidate, ping) = enroll(&mut core, "tight", t0);
    let failed = CoreCommand::Delivered {
        key: ping.clone(),
        outcome: Err(SendError::Retryable("connection reset".into())),
    };
    core.execute(vec![failed], t0).unwrap();
    let out = core.retry_due(t0 + Duration::hours(1), 16).unwrap();
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(late_lines(&core, &candidate).is_empty());
}

// -------------------------------------------------------------- simulate

/// A reminder whose window opens only after the deadline it was due
/// before: `simulate` skips it as late when its turn comes, and the
/// message of the state entered after the deadline still goes.
#[test]
fn simulate_skips_a_send_held_past_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("held.nudge");
    std::fs::write(
        &file,
        r#"campaign held {
  channels email
  window   mon-fri 09:00-17:00
  deadline 24h

  state first {
    send "ping"
    after 20h -> second
  }

  state second {
    send "pong"
    after 48h -> last
  }

  state last {
    send "bye"
    end
  }
}
"#,
    )
    .unwrap();
    // Friday 09:00 UTC: the deadline falls on Saturday 09:00, the pong's
    // turn on Saturday 05:00, and the window opens again on Monday.
    let out = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .arg("simulate")
        .arg(&file)
        .args([
            "--start",
            "2026-12-04T09:00:00Z",
            "--candidate",
            "email=ana@example.com",
            "--json",
        ])
        .env_remove("NUDGE_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &serde_json::Value| l["kind"] == "sent" || l["kind"] == "skipped")
        .collect();
    let want = [
        r#"{"at":"2026-12-04T09:00:00Z","kind":"sent","state":"first","channel":"email","template":"ping"}"#,
        r#"{"at":"2026-12-05T05:00:00Z","kind":"skipped","state":"second","template":"pong","channel":"email","reason":"late: due before the deadline, it could only go after it"}"#,
        r#"{"at":"2026-12-07T09:00:00Z","kind":"sent","state":"last","channel":"email","template":"bye"}"#,
    ];
    let want: Vec<serde_json::Value> = want
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, want);
}
