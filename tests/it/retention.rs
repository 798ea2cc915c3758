//! Retention (`runtime.history_days`): the history of candidates who
//! finished every campaign longer ago than the setting is pruned, their
//! outcome kept. In the core on both stores (what goes, what stays, who
//! is left alone, a chunk at a time), and through the real daemon, which
//! prunes while idle and whose `nudge show` says so.

use crate::support::{at, stderr};

use std::path::Path;
use std::process::{Child, Command as Process, Output, Stdio};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;

use nudge::engine::Instant;
use nudge::runtime::api::{EnrollRequest, EventRequest};
use nudge::runtime::campaigns::Campaigns;
use nudge::runtime::core::{Command, Core, Reply};
use nudge::runtime::query;
use nudge::store::{LogKind, MemoryStore, SledStore, Store};
use nudge::templates::Templates;

/// Email only, no window: every send goes when it is decided.
const KEEP: &str = r#"campaign keep {
  title    "Keep"
  channels email
  goal     completed
  exit on  opted_out

  state first {
    send "ping"
    on clicked -> done
    after 2w -> done
  }

  state done {
    send "bye"
    end
  }
}
"#;

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["campaigns", "templates", "out"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    std::fs::write(dir.path().join("campaigns/keep.nudge"), KEEP).unwrap();
    for name in ["ping", "bye"] {
        std::fs::write(
            dir.path().join(format!("templates/{name}.email.j2")),
            format!(
                "Subject: {name}\n\nHi {{{{ candidate.first_name }}}}, your link: {{{{ link }}}}\n\n\
                 --\nUnsubscribe: {{{{ unsubscribe_link }}}}\n"
            ),
        )
        .unwrap();
    }
    dir
}

fn core<S: Store>(dir: &Path, store: S) -> Core<S> {
    let campaigns = Campaigns::load(&dir.join("campaigns"), Some(&dir.join("templates")))
        .map(|(c, _, _)| c)
        .unwrap_or_else(|_| panic!("the campaign checks"));
    let templates = Templates::load(&dir.join("templates")).unwrap();
    let settings = crate::support::settings();
    Core::new(store, campaigns, Some(Arc::new(templates)), settings)
}

/// Runs commands and delivers the sends they cause, as the dispatcher
/// would, so nothing of the candidates stays unsettled.
fn run<S: Store>(core: &mut Core<S>, commands: Vec<Command>, now: Instant) {
    let (replies, out) = core.execute(commands, now).unwrap();
    for r in replies {
        assert!(!matches!(r, Reply::Error(_)), "{r:?}");
    }
    let keys: Vec<String> = out.into_iter().map(|m| m.key).collect();
    core.execute(vec![Command::MarkInFlight(keys.clone())], now)
        .unwrap();
    let delivered = keys
        .into_iter()
        .map(|key| Command::Delivered {
            key,
            outcome: Ok(Default::default()),
        })
        .collect();
    core.execute(delivered, now).unwrap();
}

fn enroll(who: &str) -> Command {
    Command::Enroll(EnrollRequest {
        ignore_filter: true,
        campaign: "keep".into(),
        external_id: Some(who.into()),
        fields: [
            ("name".to_string(), format!("Applicant {who}")),
            ("email".to_string(), format!("{who}@example.com")),
        ]
        .into(),
    })
}

fn event(who: &str, name: &str) -> Command {
    Command::Event(EventRequest {
        candidate: who.into(),
        event: name.into(),
        ..EventRequest::default()
    })
}

fn kinds<S: Store>(store: &S, id: &str) -> Vec<String> {
    store
        .history(id)
        .unwrap()
        .iter()
        .map(|e| {
            let text = format!("{:?}", e.kind);
            text.split([' ', '{', '(']).next().unwrap().to_string()
        })
        .collect()
}

/// The candidate id of an external id.
fn id_of<S: Store>(store: &S, who: &str) -> String {
    let mut txn = store.begin();
    nudge::runtime::core::find(&mut txn, who)
        .unwrap()
        .unwrap_or_else(|| panic!("{who} is enrolled"))
        .id
}

fn prunes_finished_history<S: Store>(store: S) {
    let dir = folder();
    let mut core = core(dir.path(), store);
    let t0 = at("2026-11-02T10:00:00Z");
    run(
        &mut core,
        vec![enroll("a1"), enroll("a2"), enroll("a3")],
        t0,
    );
    run(
        &mut core,
        vec![event("a1", "clicked")],
        t0 + Duration::hours(1),
    );
    run(
        &mut core,
        vec![event("a2", "opted_out")],
        t0 + Duration::hours(2),
    );
    // Finished five days before the pruning: kept.
    let recent = t0 + Duration::days(26);
    run(&mut core, vec![enroll("a4")], recent);
    run(&mut core, vec![event("a4", "clicked")], recent);

    let store = core.store().clone();
    let ids: Vec<String> = ["a1", "a2", "a3", "a4"]
        .iter()
        .map(|w| id_of(&store, w))
        .collect();
    let histories: Vec<_> = ids.iter().map(|id| store.history(id).unwrap()).collect();
    let enrollments: Vec<_> = ids
        .iter()
        .map(|id| store.enrollment(id, "keep").unwrap().unwrap())
        .collect();
    let counters = store.all_counters().unwrap();
    assert!(kinds(&store, &ids[0]).contains(&"Delivered".to_string()));
    assert_eq!(store.sends().unwrap().len(), 6);

    // Nothing pruned without a retention period.
    let now = t0 + Duration::days(31);
    assert_eq!(core.prune_some(now, 100).unwrap().pruned, 0);

    core.set_retention(Some(Duration::days(30)));
    // A chunk of two at a time walks the four, then starts over.
    let mut pruned = 0;
    let mut chunks = 0;
    loop {
        let done = core.prune_some(now, 2).unwrap();
        pruned += done.pruned;
        chunks += 1;
        if done.wrapped {
            break;
        }
    }
    assert_eq!((pruned, chunks), (2, 3));

    // a1 and a2 keep who they are and how it ended; their sends went.
    assert_eq!(
        kinds(&store, &ids[0]),
        ["Created", "Enrolled", "Entered", "Exited", "Pruned"]
    );
    assert_eq!(
        kinds(&store, &ids[1]),
        ["Created", "Enrolled", "Exited", "Pruned"]
    );
    let last = store.history(&ids[0]).unwrap().pop().unwrap();
    assert_eq!(last.at, now);
    assert_eq!(
        last.kind,
        LogKind::Pruned {
            entries: 5,
            sends: 2
        }
    );
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            store.enrollment(id, "keep").unwrap().unwrap(),
            enrollments[i],
            "{id}'s enrollment is as it was"
        );
    }
    // a3 still waits, a4 finished too recently: untouched.
    assert_eq!(store.history(&ids[2]).unwrap(), histories[2]);
    assert_eq!(store.history(&ids[3]).unwrap(), histories[3]);
    assert_eq!(store.sends().unwrap().len(), 3);
    assert_eq!(store.all_counters().unwrap(), counters);
    // Kept entries are the very ones written then.
    let kept: Vec<_> = histories[0]
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                LogKind::Created { .. }
                    | LogKind::Enrolled { .. }
                    | LogKind::Entered { .. }
                    | LogKind::Exited { .. }
            )
        })
        .cloned()
        .collect();
    assert_eq!(store.history(&ids[0]).unwrap()[..4], kept[..]);

    // Pruned once: the next pass finds nothing to do.
    let again = core.prune_some(now + Duration::days(1), 100).unwrap();
    assert_eq!((again.pruned, again.read, again.wrapped), (0, 4, true));

    // `show` says when, and shows the outcome.
    let view = query::show(
        &store,
        core.campaigns(),
        "a1",
        "https://interview.example/i/{token}",
    )
    .unwrap();
    assert_eq!(view.enrollments[0].outcome.as_deref(), Some("done"));
    let line = view.timeline.last().unwrap();
    assert_eq!(line.kind, "pruned");
    assert_eq!(line.at, "2026-12-03T10:00:00Z");
    assert!(line.text.contains("outcome kept"), "{}", line.text);
}

#[test]
fn prunes_finished_history_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    prunes_finished_history(SledStore::open(&dir.path().join("store"), 8 << 20).unwrap());
}

#[test]
fn prunes_finished_history_in_memory() {
    prunes_finished_history(MemoryStore::new());
}

/// `nudge ARGS` with the folder's configuration.
fn nudge(dir: &Path, args: &[&str]) -> Process {
    let mut cmd = Process::new(env!("CARGO_BIN_EXE_nudge"));
    cmd.arg("--config")
        .arg(dir.join("nudge.toml"))
        .args(args)
        .current_dir(dir)
        .env_remove("NUDGE_CONFIG")
        .env_remove("NUDGE_LOG")
        .env("NO_COLOR", "1");
    cmd
}

fn output(dir: &Path, args: &[&str]) -> Output {
    nudge(dir, args).output().unwrap()
}

/// `nudge run` on a fixed clock at `now`, killed when dropped.
struct Daemon(Child, std::path::PathBuf);

impl Daemon {
    fn start(dir: &Path, now: Instant) -> Daemon {
        let real_ms = chrono::Utc::now().timestamp_millis();
        let clock = format!("{}@{real_ms}*1", nudge::sim::rfc3339(now));
        let log = dir.join(format!("run-{real_ms}.log"));
        let child = nudge(dir, &["run", "--clock", &clock])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let daemon = Daemon(child, log);
        daemon.wait_log(": running");
        daemon
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }

    fn wait_log(&self, needle: &str) {
        let deadline = std::time::Instant::now() + StdDuration::from_secs(60);
        while !self.log().contains(needle) {
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon never logged {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(StdDuration::from_millis(50));
        }
    }

    fn stop(mut self) {
        let _ = Process::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn show(dir: &Path, who: &str) -> serde_json::Value {
    let out = output(dir, &["show", who, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_daemon_prunes_while_idle_and_show_says_so() {
    let dir = folder();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.path().join("nudge.toml"),
        format!(
            "store = \"data\"\ncampaigns = \"campaigns\"\ntemplates = \"templates\"\n\n\
             [admin]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [server]\nlisten = \"127.0.0.1:0\"\n\n\
             [channels.email]\ntransport = \"file\"\npath = \"out/email.jsonl\"\n\n\
             [runtime]\nhistory_days = 2\n"
        ),
    )
    .unwrap();
    let t0 = chrono::Utc::now();
    let daemon = Daemon::start(dir.path(), t0);
    for who in ["a1", "a2"] {
        let out = output(
            dir.path(),
            &[
                "enroll",
                "--campaign",
                "keep",
                "--id",
                who,
                "--name",
                "Ana",
                "--email",
                &format!("{who}@example.com"),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let out = output(dir.path(), &["event", "a1", "clicked"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Until the goodbye is delivered, a1 has a send unsettled.
    let deadline = std::time::Instant::now() + StdDuration::from_secs(60);
    while !std::fs::read_to_string(dir.path().join("out/email.jsonl"))
        .unwrap_or_default()
        .contains("\"bye\"")
    {
        assert!(std::time::Instant::now() < deadline, "bye never sent");
        std::thread::sleep(StdDuration::from_millis(50));
    }
    let before = show(dir.path(), "a1");
    assert!(before["timeline"].as_array().unwrap().len() > 4);
    let status = output(dir.path(), &["status", "--json"]);
    daemon.stop();

    // Three days on: a1 finished more than two days ago, a2 still waits.
    let later = t0 + Duration::days(3);
    let daemon = Daemon::start(dir.path(), later);
    daemon.wait_log("history pruned");
    let after = show(dir.path(), "a1");
    let timeline = after["timeline"].as_array().unwrap();
    let kinds: Vec<&str> = timeline
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["created", "enrolled", "entered", "exited", "pruned"]
    );
    let pruned_on = at(timeline[4]["at"].as_str().unwrap());
    assert!((pruned_on - later).num_minutes().abs() < 5, "{pruned_on}");
    assert_eq!(after["enrollments"], before["enrollments"]);
    assert_eq!(after["enrollments"][0]["outcome"], "done");
    // The CLI's words for it.
    let text = String::from_utf8(output(dir.path(), &["show", "a1"]).stdout).unwrap();
    assert!(text.contains("history pruned"), "{text}");
    // a2 keeps everything; the counts are the same.
    assert!(show(dir.path(), "a2")["timeline"].as_array().unwrap().len() >= 3);
    let status_after = output(dir.path(), &["status", "--json"]);
    let counts = |o: &Output| {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (
            v["campaigns"][0]["states"].clone(),
            v["campaigns"][0]["outcomes"].clone(),
        )
    };
    assert_eq!(counts(&status_after), counts(&status));
    daemon.stop();
}
