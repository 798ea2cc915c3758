//! The real `nudge` binary as a daemon (`nudge run` as a child process) and
//! the CLI commands beside it: signals, reloads, the admin API, two CLIs at
//! once, the CLI without a daemon, and stores it must not touch.
//!
//! Each test has its own folder, store and loopback port. Daemons run on an
//! accelerated clock (`--clock START@REAL_MS*SPEED`) where time has to
//! pass; waits poll with generous limits, only to end a hang.

use crate::support::{at, repo, stderr, stdout};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration as StdDuration, SystemTime};

use chrono::{DateTime, Duration, Utc};

use nudge::channels::Message;
use nudge::engine::Instant;
use nudge::store::{raw, SledStore, SledTxn, Transaction};

/// Long enough for a loaded 2-core machine; only reached when something hangs.
const PATIENCE: StdDuration = StdDuration::from_secs(30);

/// A campaign built for these tests: email only, no window, so every send
/// goes out the moment it is due.
const PROBE: &str = r#"campaign probe {
  title    "Probe"
  channels email
  goal     completed

  state first {
    send "ping"
    on clicked -> clicked
    after 2h -> second
  }

  state second {
    send "pong"
    on clicked -> clicked
    after 72h -> last
  }

  state clicked {
    after 1h -> last
  }

  state last {
    send "bye"
    end
  }
}
"#;

fn email_template(subject: &str) -> String {
    format!(
        "Subject: {subject}\n\nHi {{{{ candidate.first_name }}}}, your link: {{{{ link }}}}\n\n--\nUnsubscribe: {{{{ unsubscribe_link }}}}\n"
    )
}

/// A free loopback port: bind port 0, read it, let it go.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A folder with `nudge.toml`, campaigns, templates, a store and file
/// channels, as an operator would lay it out.
struct Site {
    dir: tempfile::TempDir,
    port: u16,
}

impl Site {
    fn probe() -> Site {
        let site = Site::empty();
        site.write("campaigns/probe.nudge", PROBE);
        for name in ["ping", "pong", "bye"] {
            site.write(&format!("templates/{name}.email.j2"), &email_template(name));
        }
        site
    }

    fn warehouse() -> Site {
        let site = Site::empty();
        site.write(
            "campaigns/warehouse.nudge",
            &std::fs::read_to_string(repo().join("campaigns/warehouse.nudge")).unwrap(),
        );
        for entry in std::fs::read_dir(repo().join("templates")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(
                entry.path(),
                site.path().join("templates").join(entry.file_name()),
            )
            .unwrap();
        }
        site
    }

    fn empty() -> Site {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["campaigns", "templates", "out"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let port = free_port();
        let site = Site { dir, port };
        site.write(
            "nudge.toml",
            &format!(
                r#"store = "data"
campaigns = "campaigns"
templates = "templates"
interview_url = "https://interview.example/i/{{token}}"

[admin]
listen = "127.0.0.1:{port}"

[channels.email]
transport = "file"
path = "out/email.jsonl"

[channels.sms]
transport = "file"
path = "out/sms.jsonl"

[channels.whatsapp]
transport = "null"

[channels.webhook]
transport = "null"

[runtime]
# Timers run at their own instant however late the accelerated clock
# wakes, so the instants the tests compare are exact.
catch_up_secs = 2592000
"#
            ),
        );
        site
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> PathBuf {
        self.path().join("nudge.toml")
    }

    fn store(&self) -> PathBuf {
        self.path().join("data")
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path().join(name), text).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nudge"));
        cmd.arg("--config")
            .arg(self.config())
            .args(args)
            .current_dir(self.path())
            .env_remove("NUDGE_CONFIG")
            .env_remove("NUDGE_LOG")
            .env("NO_COLOR", "1");
        cmd
    }

    /// Runs a CLI command to its end.
    fn nudge(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run nudge")
    }

    /// Starts `nudge run`, its log in a file, and waits until it runs.
    fn start(&self, clock: Option<&VirtualClock>) -> Daemon {
        let mut args = vec!["run".to_string()];
        if let Some(c) = clock {
            args.push("--clock".into());
            args.push(c.spec());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.start_with(&args, |_| {}, &[": running"])
    }

    /// Starts `nudge ARGS` (a `run`), its log in a file, with `adjust`
    /// applied to the command, and waits for a line with `ready` in it.
    fn start_with(
        &self,
        args: &[&str],
        adjust: impl FnOnce(&mut Command),
        ready: &[&str],
    ) -> Daemon {
        let log = self.path().join(format!("run-{}.log", free_port()));
        let mut command = self.command(args);
        command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        adjust(&mut command);
        let child = command.spawn().expect("start nudge run");
        let daemon = Daemon { child, log };
        daemon.wait_line(0, ready);
        daemon
    }

    fn token(&self) -> String {
        std::fs::read_to_string(self.store().join("admin-token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Every message the file channels hold, with the real instant each
    /// was written.
    fn sent(&self) -> Vec<(Message, Instant)> {
        let mut out = Vec::new();
        for name in ["email", "sms"] {
            let path = self.path().join(format!("out/{name}.jsonl"));
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let message: Message = serde_json::from_str(line).unwrap();
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                let written = at(value["delivered_at"].as_str().unwrap());
                out.push((message, written));
            }
        }
        out.sort_by_key(|(m, _)| (m.scheduled_at, m.key.clone()));
        out
    }

    /// The templates sent to one candidate, in order.
    fn sent_to(&self, candidate: &str) -> Vec<(String, Instant)> {
        self.sent()
            .into_iter()
            .filter(|(m, _)| m.candidate == candidate)
            .map(|(m, _)| (m.template, m.scheduled_at))
            .collect()
    }

    /// Waits until `candidate` has been sent `template`; its instant.
    fn wait_sent(&self, candidate: &str, template: &str) -> Instant {
        wait_for(|| {
            self.sent_to(candidate)
                .into_iter()
                .find(|(t, _)| t == template)
                .map(|(_, at)| at)
        })
        .unwrap_or_else(|| {
            panic!(
                "{candidate} was never sent {template}; sent: {:?}",
                self.sent()
            )
        })
    }

    /// `nudge enroll --json` through whatever way in there is.
    fn enroll(&self, id: &str, name: &str, email: &str) -> serde_json::Value {
        let out = self.nudge(&[
            "enroll",
            "--campaign",
            "probe",
            "--id",
            id,
            "--name",
            name,
            "--email",
            email,
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Every file under the folder and its bytes.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    todo.push(path);
                } else {
                    out.insert(
                        path.strip_prefix(dir).unwrap().to_path_buf(),
                        std::fs::read(&path).unwrap(),
                    );
                }
            }
        }
        out
    }
}

/// A `nudge run` child; killed if a test fails while it runs.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Where the log ends now, to wait for lines written after it.
    fn mark(&self) -> usize {
        self.log().len()
    }

    /// Waits for a line written after `from` that holds every needle.
    fn wait_line(&self, from: usize, needles: &[&str]) -> String {
        wait_for(|| {
            let log = self.log();
            let tail = log.get(from..).unwrap_or_default().to_string();
            tail.lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("the daemon never logged {needles:?}:\n{}", self.log()))
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the daemon to exit on its own.
    fn wait_exit(mut self) -> (ExitStatus, String) {
        let status = wait_for(|| self.child.try_wait().unwrap())
            .unwrap_or_else(|| panic!("the daemon did not stop:\n{}", self.log()));
        (status, self.log())
    }

    fn stop(self) {
        self.signal("TERM");
        let (status, log) = self.wait_exit();
        assert!(status.success(), "{log}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An accelerated clock: `speed` virtual seconds per real second from
/// `origin`, counted from the moment it was made.
struct VirtualClock {
    origin: Instant,
    origin_real: SystemTime,
    speed: f64,
}

impl VirtualClock {
    fn new(origin: &str, speed: f64) -> VirtualClock {
        VirtualClock {
            origin: at(origin),
            origin_real: SystemTime::now(),
            speed,
        }
    }

    fn spec(&self) -> String {
        let real_ms = self
            .origin_real
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        format!(
            "{}@{real_ms}*{}",
            nudge::sim::rfc3339(self.origin),
            self.speed
        )
    }

    /// The virtual instant the clock showed at real instant `real`.
    fn at_real(&self, real: Instant) -> Instant {
        let since = real - DateTime::<Utc>::from(self.origin_real);
        self.origin + Duration::milliseconds((since.num_milliseconds() as f64 * self.speed) as i64)
    }
}

fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if start.elapsed() > PATIENCE {
            return None;
        }
        std::thread::sleep(StdDuration::from_millis(20));
    }
}

/// A minimal HTTP/1.1 request on loopback: status and body.
fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\nContent-Type: application/json\r\n",
        body.len()
    );
    if let Some(t) = token {
        request.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

// ---------------------------------------------------------------- shutdown

#[test]
fn sigterm_and_ctrl_c_stop_the_daemon_cleanly() {
    let site = Site::probe();
    for signal in ["TERM", "INT"] {
        let daemon = site.start(None);
        let who = format!("stop-{signal}");
        let answer = site.enroll(&who, "Sam Stop", &format!("{who}@example.com"));
        let candidate = answer["candidate"].as_str().unwrap().to_string();
        site.wait_sent(&candidate, "ping");
        daemon.signal(signal);
        let (status, log) = daemon.wait_exit();
        assert_eq!(status.code(), Some(0), "SIG{signal}:\n{log}");
        assert!(log.contains("finishing deliveries in flight"), "{log}");
        assert!(log.contains("stopped cleanly"), "{log}");
        assert!(!log.contains("panicked"), "{log}");

        // The store is free again: the CLI opens it itself.
        let out = site.nudge(&["status", "probe"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            stdout(&out).contains("outbox: 0 waiting"),
            "{}",
            stdout(&out)
        );
    }
    assert_eq!(site.sent().len(), 2, "{:?}", site.sent());
}

// ----------------------------------------------------------- CLI and daemon

#[test]
fn two_enrolls_at_once_go_through_the_daemon_and_one_id_is_one_candidate() {
    let site = Site::probe();
    let daemon = site.start(None);
    let spawn = |id: &str| {
        site.command(&[
            "enroll",
            "--campaign",
            "probe",
            "--id",
            id,
            "--name",
            "Pat Parallel",
            "--email",
            &format!("{id}@example.com"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };

    // Two different people at once.
    let (a, b) = (spawn("ats-1"), spawn("ats-2"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for out in [&a, &b] {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
        assert!(
            stderr(out).contains("through the running daemon"),
            "{}",
            stderr(out)
        );
    }
    assert_ne!(stdout(&a), stdout(&b), "two people, two links");

    // The same person twice at once: one candidate, one invite.
    let (c, d) = (spawn("ats-3"), spawn("ats-3"));
    let (c, d) = (c.wait_with_output().unwrap(), d.wait_with_output().unwrap());
    for out in [&c, &d] {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    }
    assert_eq!(stdout(&c), stdout(&d), "the same link");
    let said = format!("{}\n{}", stderr(&c), stderr(&d));
    assert_eq!(said.matches("enrolled candidate").count(), 1, "{said}");
    assert!(said.contains("through the running daemon"), "{said}");
    assert!(said.contains("was already in probe"), "{said}");

    // And once more, later, with --json.
    let again = site.enroll("ats-3", "Pat Parallel", "ats-3@example.com");
    assert_eq!(again["enrolled"], false);
    let first = site.enroll("ats-1", "Pat Parallel", "ats-1@example.com");
    assert_eq!(first["enrolled"], false);

    let pings = wait_for(|| {
        let sent = site.sent();
        (sent.len() >= 3).then_some(sent)
    })
    .expect("three invites");
    std::thread::sleep(StdDuration::from_millis(200));
    assert_eq!(site.sent().len(), 3, "{pings:?}");
    let mut candidates: Vec<String> = pings.iter().map(|(m, _)| m.candidate.clone()).collect();
    candidates.dedup();
    assert_eq!(candidates.len(), 3, "{pings:?}");
    daemon.stop();
}

#[test]
fn without_a_daemon_the_cli_opens_the_store_and_run_sends_what_waits() {
    let site = Site::probe();
    let out = site.nudge(&[
        "enroll",
        "--campaign",
        "probe",
        "--id",
        "solo",
        "--name",
        "Sol Solo",
        "--email",
        "solo@example.com",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("store opened directly (no daemon running)"),
        "{err}"
    );
    assert!(
        err.contains("1 message wait in the outbox and go out when `nudge run` starts"),
        "{err}"
    );
    assert!(
        site.sent().is_empty(),
        "nothing goes out without the daemon"
    );
    let status = site.nudge(&["status"]);
    assert!(
        stdout(&status).contains("outbox: 1 waiting for delivery"),
        "{}",
        stdout(&status)
    );

    let daemon = site.start(None);
    site.wait_sent("c1", "ping");
    daemon.stop();
    let status = site.nudge(&["status"]);
    assert!(
        stdout(&status).contains("outbox: 0 waiting"),
        "{}",
        stdout(&status)
    );
}

// ------------------------------------------------------- stores it can't read

fn assert_refused_untouched(site: &Site, words: &str) {
    let before = Site::snapshot(&site.store());
    for args in [
        vec!["status"],
        vec!["run"],
        vec!["show", "c1"],
        vec![
            "enroll",
            "--campaign",
            "probe",
            "--name",
            "New",
            "--email",
            "n@example.com",
        ],
    ] {
        let out = site.nudge(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "nudge {args:?}: {err}");
        assert!(err.contains(words), "nudge {args:?}: {err}");
        assert!(err.contains("left untouched"), "nudge {args:?}: {err}");
        assert!(!err.contains("panicked"), "nudge {args:?}: {err}");
        assert_same_files(
            &before,
            &Site::snapshot(&site.store()),
            &format!("nudge {args:?}"),
        );
    }
}

/// Names the files that differ, rather than printing their bytes.
fn assert_same_files(
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
    who: &str,
) {
    let changed: Vec<&PathBuf> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(changed.is_empty(), "{who} changed {changed:?}");
}

#[test]
fn a_folder_of_other_files_is_refused_and_left_as_it_was() {
    let site = Site::probe();
    std::fs::create_dir(site.store()).unwrap();
    site.write("data/payroll.csv", "name,amount\nAna,1\n");
    site.write("data/notes.txt", "not a database");
    assert_refused_untouched(&site, "is not a nudge store this build can read");
}

#[test]
fn a_store_from_a_newer_nudge_is_refused_and_left_as_it_was() {
    let site = Site::probe();
    site.enroll("old", "Olga Old", "old@example.com");
    // As a newer nudge would leave it: layout 99 in the record and in the
    // marker file beside sled's files.
    {
        let store = SledStore::open(&site.store(), 1 << 20).unwrap();
        let mut txn = SledTxn::new(&store);
        txn.put_raw(raw::meta("schema"), 99u32.to_be_bytes().to_vec());
        txn.commit().unwrap();
    }
    let marker = site.store().join(nudge::store::LAYOUT_FILE);
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().trim(),
        nudge::store::SCHEMA_VERSION.to_string()
    );
    std::fs::write(&marker, "99\n").unwrap();
    assert_refused_untouched(&site, "was written by a newer nudge (layout version 99");
}

#[test]
fn a_damaged_record_is_an_error_that_names_its_key() {
    let site = Site::probe();
    let candidate = site.enroll("dmg", "Dee Damaged", "dmg@example.com")["candidate"]
        .as_str()
        .unwrap()
        .to_string();
    {
        let store = SledStore::open(&site.store(), 1 << 20).unwrap();
        let mut txn = SledTxn::new(&store);
        txn.put_raw(raw::dossier(&candidate), b"\x07\xffnot postcard".to_vec());
        txn.commit().unwrap();
    }
    let out = site.nudge(&["show", &candidate]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("damaged record"), "{err}");
    assert!(err.contains(&format!("`c{candidate}`")), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // The daemon reports the record and goes on with everyone else: a
    // candidate whose timer falls due after the damaged one still moves.
    let clock = VirtualClock::new("2026-12-07T09:00:00Z", 43_200.0);
    let daemon = site.start(Some(&clock));
    let other = site.enroll("fine", "Fay Fine", "fine@example.com")["candidate"]
        .as_str()
        .unwrap()
        .to_string();
    site.wait_sent(&other, "pong");
    let said = daemon.wait_line(0, &["damaged record"]);
    assert!(said.contains(&candidate), "{said}");
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        log.matches("damaged record").count() < 10,
        "the same damage is reported over and over:\n{}",
        &log[..log.len().min(4000)]
    );
    daemon.stop();
}

// ------------------------------------------------------------------ reloads

/// The probe without the `second` state.
fn probe_without_second() -> String {
    let text = PROBE.replace("after 2h -> second", "after 2h -> last");
    let start = text.find("  state second {").unwrap();
    let end = start + text[start..].find("  }\n").unwrap() + 4;
    format!("{}{}", &text[..start], &text[end..])
}

/// The probe with a shorter wait in `second` and a new last message.
fn probe_edited() -> String {
    PROBE
        .replace("after 72h -> last", "after 24h -> last")
        .replace("send \"bye\"", "send \"farewell\"")
}

/// How a test asks the daemon to reload.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// The campaigns folder is a symlink to a release folder, swapped
    /// atomically outside every watched folder: only SIGHUP can tell.
    Sighup,
    /// The campaign file is edited in place: the watcher tells.
    FileChange,
}

impl Trigger {
    /// The `why` the daemon logs with the reload.
    fn why(self) -> &'static str {
        match self {
            Trigger::Sighup => "why=\"SIGHUP\"",
            Trigger::FileChange => "why=\"files changed\"",
        }
    }

    /// Lays out the campaigns folder for this trigger.
    fn prepare(self, site: &Site) {
        if self == Trigger::Sighup {
            std::fs::remove_dir_all(site.path().join("campaigns")).unwrap();
            self.publish(site, 0, PROBE);
        }
    }

    /// Puts a new campaign text in place and tells the daemon if needed.
    fn publish(self, site: &Site, release: u32, text: &str) {
        match self {
            Trigger::FileChange => site.write("campaigns/probe.nudge", text),
            Trigger::Sighup => {
                let folder = site.path().join(format!("releases/{release}"));
                std::fs::create_dir_all(&folder).unwrap();
                std::fs::write(folder.join("probe.nudge"), text).unwrap();
                let link = site.path().join("campaigns.new");
                std::os::unix::fs::symlink(&folder, &link).unwrap();
                std::fs::rename(&link, site.path().join("campaigns")).unwrap();
            }
        }
    }

    fn tell(self, daemon: &Daemon) {
        if self == Trigger::Sighup {
            daemon.signal("HUP");
        }
    }
}

fn reload_scenario(trigger: Trigger) {
    let site = Site::probe();
    site.write("templates/farewell.email.j2", &email_template("farewell"));
    trigger.prepare(&site);
    // Twelve virtual hours a second: `after 2h` takes a sixth of a second.
    let clock = VirtualClock::new("2026-12-07T09:00:00Z", 43_200.0);
    let daemon = site.start(Some(&clock));

    let ana = site.enroll("ana", "Ana Ruiz", "ana@example.com")["candidate"]
        .as_str()
        .unwrap()
        .to_string();
    let ana_pong = site.wait_sent(&ana, "pong");

    // Ana waits in `second`: a version without it is refused.
    let mark = daemon.mark();
    trigger.publish(&site, 1, &probe_without_second());
    trigger.tell(&daemon);
    let said = daemon.wait_line(mark, &["reload refused", trigger.why()]);
    assert!(
        said.contains("campaign `probe`: state `second` is removed but 1 candidate wait in it"),
        "{said}"
    );
    assert!(said.contains("the running version is kept"), "{said}");

    // The running version goes on: a newcomer still passes through `second`.
    let ben = site.enroll("ben", "Ben Ode", "ben@example.com")["candidate"]
        .as_str()
        .unwrap()
        .to_string();
    site.wait_sent(&ben, "pong");
    assert!(!daemon.log().contains("reloaded"), "{}", daemon.log());

    // A valid edit: `second` waits 24h instead of 72h, the end says farewell.
    let mark = daemon.mark();
    trigger.publish(&site, 2, &probe_edited());
    trigger.tell(&daemon);
    let said = daemon.wait_line(mark, &["reloaded", trigger.why()]);
    assert!(said.contains("probe"), "{said}");

    let cy = site.enroll("cy", "Cy Diaz", "cy@example.com")["candidate"]
        .as_str()
        .unwrap()
        .to_string();

    // Nobody's timer is lost, and the waits are the new version's: 24h
    // after the pong, not 72h.
    for who in [&ana, &ben, &cy] {
        let pong = site.wait_sent(who, "pong");
        let farewell = site.wait_sent(who, "farewell");
        assert_eq!(farewell - pong, Duration::hours(24), "{who}");
        let templates: Vec<String> = site.sent_to(who).into_iter().map(|(t, _)| t).collect();
        assert_eq!(templates, ["ping", "pong", "farewell"], "{who}");
    }
    assert_eq!(site.wait_sent(&ana, "pong"), ana_pong);
    // Written when due, not at the old version's instant two days later.
    let (message, written) = site
        .sent()
        .into_iter()
        .find(|(m, _)| m.candidate == ana && m.template == "farewell")
        .unwrap();
    let late = clock.at_real(written) - message.scheduled_at;
    assert!(
        late < Duration::hours(24),
        "written {late} (virtual) after its instant"
    );
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");
    if trigger == Trigger::Sighup {
        assert!(!log.contains("files changed"), "{log}");
    }
    daemon.stop();
}

#[test]
fn sighup_reloads_refusing_a_version_that_strands_candidates() {
    reload_scenario(Trigger::Sighup);
}

#[test]
fn changed_files_reload_refusing_a_version_that_strands_candidates() {
    reload_scenario(Trigger::FileChange);
}

// ------------------------------------------------------ the other commands

#[test]
fn status_show_and_event_with_at_through_the_daemon() {
    let site = Site::warehouse();
    // Thursday 20:30 in Dallas, an hour a second: Friday is no day for a
    // first contact, so the invite waits until Saturday 09:00.
    let clock = VirtualClock::new("2026-11-27T02:30:00Z", 3_600.0);
    let daemon = site.start(Some(&clock));
    let out = site.nudge(&[
        "enroll",
        "--campaign",
        "warehouse_associate",
        "--id",
        "ana",
        "--name",
        "Ana Ruiz",
        "--phone",
        "+15550100",
        "--email",
        "ana@example.com",
        "--field",
        "role=Warehouse Associate",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let enrolled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = enrolled["candidate"].as_str().unwrap().to_string();
    let copy = enrolled["variants"]["copy"].as_str().unwrap().to_string();

    let out = site.nudge(&["show", "ana"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("times in America/Chicago"), "{text}");
    assert!(
        text.contains("warehouse_associate: in invite, next step Sat 2026-11-28 09:00 -06:00"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "invite-{copy} held until Sat 2026-11-28 09:00 -06:00: outside window mon-thu, sat 09:00-19:00"
        )),
        "{text}"
    );

    let out = site.nudge(&["status"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        text.contains("warehouse_associate · Warehouse Associate, Dallas DC"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["invite", "1"]),
        "{text}"
    );
    assert!(text.contains("held 1"), "{text}");
    let out = site.nudge(&["status", "warehouse_associate", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["campaigns"][0]["held"], 1);

    // A click ten minutes after the enrollment, reported afterwards.
    let enrolled_at = at(enrolled["at"].as_str().unwrap());
    let clicked_at = nudge::sim::rfc3339(enrolled_at + Duration::minutes(10));
    wait_for(|| (clock.at_real(Utc::now()) > at(&clicked_at)).then_some(()));
    let out = site.nudge(&["event", "ana", "clicked", "--at", &clicked_at]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let clicked_local = for_people(at(&clicked_at), chrono_tz::America::Chicago);
    assert!(
        text.contains(&format!("clicked recorded for {id} at {clicked_local}")),
        "{text}"
    );
    assert!(
        text.contains("warehouse_associate: entered clicked"),
        "{text}"
    );

    let out = site.nudge(&["show", &id, "--json"]);
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lines = view["timeline"].as_array().unwrap();
    let line = |kind: &str| {
        lines
            .iter()
            .find(|l| l["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} line: {lines:?}"))
    };
    assert_eq!(line("event")["at"], clicked_at.as_str());
    assert_eq!(line("entered")["at"], clicked_at.as_str());
    assert!(
        line("cancelled")["text"]
            .as_str()
            .unwrap()
            .contains("left the state (clicked)"),
        "{lines:?}"
    );

    let out = site.nudge(&["event", "ana", "clicked", "--at", "yesterday"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not an RFC 3339 instant"));
    let out = site.nudge(&["show", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no candidate `nobody`"));
    daemon.stop();
}

#[test]
fn a_paused_campaign_fires_nothing_and_resume_runs_what_fell_due() {
    let site = Site::probe();
    // Two virtual days (four real seconds) between the ping and the pong,
    // so the pause lands in between even on a loaded machine.
    site.write(
        "campaigns/probe.nudge",
        &PROBE.replace("after 2h -> second", "after 48h -> second"),
    );
    let clock = VirtualClock::new("2026-12-07T09:00:00Z", 43_200.0);
    let daemon = site.start(Some(&clock));
    let ana = site.enroll("ana", "Ana Ruiz", "ana@example.com")["candidate"]
        .as_str()
        .unwrap()
        .to_string();
    let ping = site.wait_sent(&ana, "ping");

    let out = site.nudge(&["pause", "probe"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("probe paused"));
    let ben = site.enroll("ben", "Ben Ode", "ben@example.com")["candidate"]
        .as_str()
        .unwrap()
        .to_string();
    let status = stdout(&site.nudge(&["status"]));
    assert!(status.contains("Probe · PAUSED"), "{status}");

    // Ana's pong fell due 48h after her ping; wait until it has.
    wait_for(|| (clock.at_real(Utc::now()) > ping + Duration::hours(50)).then_some(()));
    let sent = site.sent();
    assert_eq!(sent.len(), 1, "a paused campaign sent: {sent:?}");
    let show = stdout(&site.nudge(&["show", &ana]));
    assert!(show.contains("(campaign paused)"), "{show}");

    let before_resume = clock.at_real(Utc::now());
    let out = site.nudge(&["resume", "probe"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("probe resumed"));
    // What fell due while paused runs now: Ana's step (due 48h after her
    // ping) and Ben's first send (due at his enrollment).
    let pong = site.wait_sent(&ana, "pong");
    let ben_ping = site.wait_sent(&ben, "ping");
    assert!(pong >= before_resume, "{pong} before {before_resume}");
    assert!(
        ben_ping >= before_resume,
        "{ben_ping} before {before_resume}"
    );
    let status = stdout(&site.nudge(&["status"]));
    assert!(!status.contains("PAUSED"), "{status}");
    daemon.stop();
}

#[test]
fn init_makes_a_folder_that_checks() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("recruiting");
    let nudge = |args: &[&str], cwd: &Path| {
        Command::new(env!("CARGO_BIN_EXE_nudge"))
            .args(args)
            .current_dir(cwd)
            .env_remove("NUDGE_CONFIG")
            .output()
            .unwrap()
    };
    let out = nudge(&["init", target.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("wrote"), "{}", stdout(&out));
    for file in [
        "nudge.toml",
        "campaigns/warehouse.nudge",
        "templates/reminder.email.j2",
    ] {
        assert!(target.join(file).is_file(), "{file}");
    }

    let out = nudge(&["check"], &target);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // A second init into the same folder changes nothing.
    let before = Site::snapshot(&target);
    let out = nudge(&["init", target.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_same_files(&before, &Site::snapshot(&target), "a second init");
}

// ---------------------------------------------------------------- admin API

#[test]
fn the_admin_api_wants_its_token_and_names_the_campaigns_it_has() {
    let site = Site::probe();
    let daemon = site.start(None);
    let token = site.token();
    let port = site.port;

    assert_eq!(http(port, "GET", "/v1/health", Some(&token), "").0, 200);
    for given in [None, Some("wrong"), Some(&token[..token.len() - 1])] {
        let (status, body) = http(port, "GET", "/v1/status", given, "");
        assert_eq!(status, 401, "{given:?}: {body}");
        assert!(body.contains("missing or wrong admin token"), "{body}");
        let (status, _) = http(
            port,
            "POST",
            "/v1/enroll",
            given,
            r#"{"campaign":"probe","fields":{"email":"x@example.com"}}"#,
        );
        assert_eq!(status, 401);
    }
    assert!(site.sent().is_empty(), "nothing enrolled without the token");

    let unknown = [
        ("POST", "/v1/enroll", r#"{"campaign":"nope"}"#),
        ("POST", "/v1/campaigns/nope/pause", "{}"),
        ("POST", "/v1/campaigns/nope/resume", "{}"),
        ("GET", "/v1/status?campaign=nope", ""),
    ];
    for (method, path, body) in unknown {
        let (status, answer) = http(port, method, path, Some(&token), body);
        assert_eq!(status, 404, "{method} {path}: {answer}");
        let error: serde_json::Value = serde_json::from_str(&answer).unwrap();
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("no campaign `nope`") && message.contains("`probe`"),
            "{method} {path}: {message}"
        );
    }
    let out = site.nudge(&["pause", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("`probe`"), "{}", stderr(&out));

    let (status, answer) = http(port, "GET", "/v1/candidates/nobody", Some(&token), "");
    assert_eq!(status, 404, "{answer}");
    daemon.stop();
}

// ---------------------------------------- campaigns edited while it was stopped

/// Waits for a command that should end by itself; kills it if it does not.
fn ends_by_itself(mut child: Child, what: &str) -> (Option<i32>, String) {
    let status = wait_for(|| child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not stop by itself");
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

#[test]
fn a_campaign_edited_while_stopped_that_strands_candidates_is_refused_at_start() {
    let site = Site::probe();
    for (name, email) in [
        ("Ana Ruiz", "ana@example.com"),
        ("Ben Ode", "ben@example.com"),
    ] {
        let out = site.nudge(&[
            "enroll",
            "--campaign",
            "probe",
            "--name",
            name,
            "--email",
            email,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let looks = |site: &Site| -> Vec<String> {
        ["c1", "c2"]
            .iter()
            .map(|c| stdout(&site.nudge(&["show", c, "--json"])))
            .collect()
    };
    let counts = |site: &Site| -> serde_json::Value {
        let mut status: serde_json::Value =
            serde_json::from_str(&stdout(&site.nudge(&["status", "--json"]))).unwrap();
        status["at"] = serde_json::Value::Null;
        status
    };
    let before = looks(&site);
    let counts_before = counts(&site);
    assert!(before[0].contains("\"first\""), "{}", before[0]);

    // The state both wait in is renamed while nothing runs.
    site.write(
        "campaigns/probe.nudge",
        &PROBE.replace("state first {", "state opening {"),
    );
    let words = "campaign `probe`: state `first` is removed but 2 candidates wait in it";

    let check = site.nudge(&["check"]);
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    assert!(stderr(&check).contains(words), "{}", stderr(&check));

    let run = site
        .command(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, err) = ends_by_itself(run, "nudge run on files that strand candidates");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(words), "{err}");
    assert!(err.contains("nothing was started or changed"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // Changes through the CLI are refused; looking is not.
    let event = site.nudge(&["event", "c1", "clicked"]);
    assert_eq!(event.status.code(), Some(1), "{}", stderr(&event));
    assert!(stderr(&event).contains(words), "{}", stderr(&event));
    assert_eq!(looks(&site), before);

    // The edit undone, everyone is exactly where they were, and carries on.
    site.write("campaigns/probe.nudge", PROBE);
    let check = site.nudge(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert_eq!(looks(&site), before);
    assert_eq!(counts(&site), counts_before);
    let daemon = site.start(None);
    site.wait_sent("c1", "ping");
    site.wait_sent("c2", "ping");
    daemon.stop();
}

// ------------------------------------------------------------ who is who

#[test]
fn show_and_event_find_a_candidate_enrolled_with_an_id_by_email_or_phone() {
    let site = Site::warehouse();
    let out = site.nudge(&[
        "enroll",
        "--campaign",
        "warehouse_associate",
        "--id",
        "ats-77",
        "--name",
        "Ana Ruiz",
        "--phone",
        "+15550100",
        "--email",
        "Ana.Ruiz@Example.com",
        "--field",
        "role=Warehouse Associate",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let enrolled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = enrolled["candidate"].as_str().unwrap().to_string();

    // Without a daemon (the CLI opens the store), then through one.
    for through in ["the store", "the daemon"] {
        let daemon = (through == "the daemon").then(|| site.start(None));
        for who in [
            "ana.ruiz@example.com",
            "Ana.Ruiz@Example.com",
            "+15550100",
            "ats-77",
        ] {
            let out = site.nudge(&["show", who, "--json"]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{through}: show {who}: {}",
                stderr(&out)
            );
            let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(view["id"], id.as_str(), "{through}: show {who}");
        }
        let (who, event) = match through {
            "the store" => ("ana.ruiz@example.com", "clicked"),
            _ => ("+15550100", "started"),
        };
        let out = site.nudge(&["event", who, event]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{through}: event {who}: {}",
            stderr(&out)
        );
        assert!(
            stdout(&out).contains(&format!("{event} recorded for {id}")),
            "{through}: {}",
            stdout(&out)
        );
        if let Some(daemon) = daemon {
            daemon.stop();
        }
    }

    // An address two candidates share names neither.
    let out = site.nudge(&[
        "enroll",
        "--campaign",
        "warehouse_associate",
        "--id",
        "ats-78",
        "--email",
        "ana.ruiz@example.com",
        "--field",
        "role=Warehouse Associate",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = site.nudge(&["show", "ana.ruiz@example.com"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("2 candidates"), "{err}");
    let out = site.nudge(&["show", "nobody@example.com"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no candidate `nobody@example.com`"));
}

// --------------------------------------------------------------------- logs

#[test]
fn json_logs_are_json_from_the_first_line_with_one_line_per_send() {
    let site = Site::probe();
    let daemon = site.start_with(
        &["run", "--log-format", "json"],
        |_| {},
        &["\"message\":\"running\""],
    );
    let ana = site.enroll("ana", "Ana Ruiz", "ana@example.com")["candidate"]
        .as_str()
        .unwrap()
        .to_string();
    site.wait_sent(&ana, "ping");
    let line = daemon.wait_line(0, &["\"message\":\"sent\""]);
    daemon.stop();

    let log = std::fs::read_to_string(daemon_log(&site)).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{log}")))
        .collect();
    assert!(lines.len() > 8, "{log}");
    let messages: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .collect();
    for said in [
        "store opened",
        "campaign loaded",
        "channel ready",
        "running",
        "stopped cleanly",
    ] {
        assert!(messages.contains(&said), "{said}: {log}");
    }
    let sent: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(sent["level"], "INFO", "{line}");
    let fields = &sent["fields"];
    assert_eq!(fields["candidate"], ana.as_str(), "{line}");
    assert_eq!(fields["campaign"], "probe", "{line}");
    assert_eq!(fields["channel"], "email", "{line}");
    assert_eq!(fields["template"], "ping", "{line}");
    assert_eq!(fields["outcome"], "delivered", "{line}");
    let (message, _) = site.sent().into_iter().next().unwrap();
    assert_eq!(fields["key"], message.key.as_str(), "{line}");
}

#[test]
fn a_run_that_cannot_start_says_why_in_json_too() {
    let site = Site::probe();
    site.write(
        "campaigns/probe.nudge",
        &PROBE.replace("-> second", "-> secnd"),
    );
    let out = site.nudge(&["run", "--log-format", "json"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{err}")))
        .collect();
    let last = lines.last().expect("a line");
    assert_eq!(last["level"], "ERROR", "{err}");
    let message = last["fields"]["message"].as_str().unwrap();
    assert!(message.contains("the campaigns do not check"), "{err}");
    assert!(message.contains("did you mean `second`?"), "{err}");
}

/// The one log file a test's daemon wrote.
fn daemon_log(site: &Site) -> PathBuf {
    let logs: Vec<PathBuf> = std::fs::read_dir(site.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("run-"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    logs.into_iter().next().unwrap()
}

#[test]
fn logs_to_a_file_have_no_colour() {
    let site = Site::probe();
    // NO_COLOR unset: the file alone must be enough.
    let daemon = site.start_with(
        &["run"],
        |c| {
            c.env_remove("NO_COLOR");
        },
        &["running"],
    );
    let ana = site.enroll("ana", "Ana Ruiz", "ana@example.com")["candidate"]
        .as_str()
        .unwrap()
        .to_string();
    site.wait_sent(&ana, "ping");
    let line = daemon.wait_line(0, &["sent"]);
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("template=ping"), "{line}");
    daemon.stop();
    let log = std::fs::read_to_string(daemon_log(&site)).unwrap();
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a log file:\n{log:?}"
    );
}

// -------------------------------------------------------------------- times

/// How every command shows a time to people: local, with the offset.
fn for_people(instant: Instant, zone: chrono_tz::Tz) -> String {
    instant
        .with_timezone(&zone)
        .format("%a %Y-%m-%d %H:%M %:z")
        .to_string()
}

#[test]
fn times_for_people_are_in_the_candidates_own_zone_with_the_offset() {
    let site = Site::probe();
    // Windows are read in Chicago; Ana lives in Madrid.
    site.write(
        "campaigns/probe.nudge",
        &PROBE.replace(
            "  goal     completed\n",
            "  goal     completed\n  timezone \"America/Chicago\"\n",
        ),
    );
    let out = site.nudge(&[
        "enroll",
        "--campaign",
        "probe",
        "--id",
        "ana",
        "--name",
        "Ana Ruiz",
        "--email",
        "ana@example.com",
        "--field",
        "timezone=Europe/Madrid",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let enrolled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let enrolled_at = at(enrolled["at"].as_str().unwrap());
    let madrid = chrono_tz::Europe::Madrid;

    let out = site.nudge(&[
        "event",
        "ana",
        "clicked",
        "--at",
        &nudge::sim::rfc3339(enrolled_at),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = stdout(&out);
    // `--at` and the clock keep whole seconds or milliseconds: the same minute.
    let clicked = for_people(enrolled_at, madrid);
    assert!(
        said.contains(&format!("clicked recorded for c1 at {clicked}\n")),
        "{said}"
    );

    let out = site.nudge(&["show", "ana"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("times in Europe/Madrid"), "{text}");
    // `clicked` waits an hour before `last`.
    let next = for_people(enrolled_at + Duration::hours(1), madrid);
    assert!(
        text.contains(&format!("probe: in clicked, next step {next}\n")),
        "{text}"
    );
    let offset = format!(" {}  ", clicked.rsplit(' ').next().unwrap());
    for line in text.lines().skip(2) {
        assert_eq!(line.get(20..29), Some(offset.as_str()), "{line}\n{text}");
    }

    // JSON keeps RFC 3339 instants.
    let out = site.nudge(&["show", "ana", "--json"]);
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let wake = view["enrollments"][0]["next_wake"].as_str().unwrap();
    assert!(DateTime::parse_from_rfc3339(wake).is_ok(), "{wake}");
    let out = site.nudge(&["event", "ana", "started", "--json"]);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        DateTime::parse_from_rfc3339(answer["at"].as_str().unwrap()).is_ok(),
        "{answer}"
    );
}

// ------------------------------------------------- a store from layout 3

/// A store written by the nudge before history was kept as facts (layout 3,
/// its causes in English words; made by that build's `nudge enroll` and
/// `nudge event`, see `tests/it/fixtures/layout3/README.md`) opens, is
/// marked layout 4, shows its history as it was written, and goes on.
#[test]
fn a_store_written_by_layout_3_opens_upgraded_with_its_history() {
    let site = Site::warehouse();
    let fixture = repo().join("tests/it/fixtures/layout3");
    site.write(
        "campaigns/warehouse.nudge",
        &std::fs::read_to_string(fixture.join("warehouse.nudge")).unwrap(),
    );
    std::fs::create_dir(site.store()).unwrap();
    for (name, bytes) in Site::snapshot(&fixture.join("data")) {
        let to = site.store().join(&name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, bytes).unwrap();
    }
    let timeline = |who: &str| -> Vec<(String, String)> {
        let out = site.nudge(&["show", who, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        view["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let kind = l["kind"].as_str().unwrap().to_string();
                (kind, l["text"].as_str().unwrap().to_string())
            })
            .collect()
    };
    let before = timeline("c1");
    assert!(
        before.contains(&("entered".into(), "clicked from invite (clicked)".into())),
        "{before:?}"
    );
    assert_eq!(
        std::fs::read_to_string(site.store().join("nudge-layout"))
            .unwrap()
            .trim(),
        nudge::store::SCHEMA_VERSION.to_string()
    );

    // A minute after the fixture's click, whenever the test runs.
    let out = site.nudge(&["event", "c1", "started", "--at", "2026-12-03T08:52:30Z"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after = timeline("c1");
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "history kept as it was"
    );
    assert!(
        after.contains(&("entered".into(), "started from clicked (started)".into())),
        "{after:?}"
    );
    assert!(!timeline("c2").is_empty());
}
