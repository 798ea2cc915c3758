//! A damaged store, through the real binary: a store whose candidates all
//! received every message is damaged (a byte flipped at several offsets of
//! sled's file, the file cut to 90% and 50%) and then used. nudge either
//! works with exactly the state it had acknowledged or refuses with a clear
//! error naming the store; it never delivers a message a second time and
//! never panics. A store refused for lost commits and then taken as it is
//! (`nudge verify --accept`) still sends nothing twice: the commit ledger
//! remembers what was delivered.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration as StdDuration, SystemTime};

use super::support::{stderr, stdout};

const PATIENCE: StdDuration = StdDuration::from_secs(60);

/// Email only, no window: every send goes the moment it is due; every
/// candidate gets three messages and finishes within 75 virtual hours.
const PROBE: &str = r#"campaign probe {
  title    "Probe"
  channels email
  goal     completed

  state first {
    send "ping"
    after 2h -> second
  }

  state second {
    send "pong"
    after 72h -> last
  }

  state last {
    send "bye"
    end
  }
}
"#;

/// Virtual seconds per real second.
const SPEED: u64 = 40_000;

/// A folder with `nudge.toml`, the campaign, templates, a store and a file
/// email channel.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Site {
    pub fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["campaigns", "templates", "out"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let site = Site { dir, port };
        site.write("campaigns/probe.nudge", PROBE);
        for name in ["ping", "pong", "bye"] {
            site.write(
                &format!("templates/{name}.email.j2"),
                &format!("Subject: {name}\n\nHi {{{{ candidate.first_name }}}}: {{{{ link }}}}\n\n--\nUnsubscribe: {{{{ unsubscribe_link }}}}\n"),
            );
        }
        site.write(
            "nudge.toml",
            &format!(
                r#"store = "data"
campaigns = "campaigns"
templates = "templates"
interview_url = "https://interview.example/i/{{token}}"

[admin]
listen = "127.0.0.1:{port}"

[server]
listen = "127.0.0.1:0"

[channels.email]
transport = "file"
path = "out/email.jsonl"

[channels.sms]
transport = "null"

[channels.whatsapp]
transport = "null"

[channels.webhook]
transport = "null"

[runtime]
catch_up_secs = 2592000
"#,
                port = site.port
            ),
        );
        site
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn store(&self) -> PathBuf {
        self.path().join("data")
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path().join(name), text).unwrap();
    }

    pub fn nudge(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("run nudge");
        assert_no_panic(&out);
        out
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nudge"));
        cmd.arg("--config")
            .arg(self.path().join("nudge.toml"))
            .args(args)
            .current_dir(self.path())
            .env_remove("NUDGE_CONFIG")
            .env_remove("NUDGE_LOG")
            .env("NO_COLOR", "1");
        cmd
    }

    /// Starts `nudge run` on an accelerated clock from `origin`; `None`
    /// when it stopped at once (its log says why).
    pub fn start(&self, origin: &str) -> Result<Daemon, String> {
        let log = self.path().join(format!("run-{}.log", unique()));
        let real_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let child = self
            .command(&["run", "--clock", &format!("{origin}@{real_ms}*{SPEED}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start nudge run");
        let mut daemon = Daemon { child, log };
        let ready = wait_for(|| {
            if daemon.log().contains(": running") {
                return Some(true);
            }
            daemon.child.try_wait().unwrap().map(|_| false)
        });
        let text = daemon.log();
        assert!(!text.contains("panicked at"), "{text}");
        match ready {
            Some(true) => Ok(daemon),
            _ => Err(text),
        }
    }

    /// The keys of the messages the file channel wrote.
    pub fn delivered(&self) -> Vec<String> {
        let Ok(text) = std::fs::read_to_string(self.path().join("out/email.jsonl")) else {
            return Vec::new();
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["key"].as_str().unwrap().to_string()
            })
            .collect()
    }

    /// Enrolls candidates `c{from}..c{to}` (through the daemon if it runs).
    pub fn enroll(&self, ids: std::ops::Range<usize>) {
        for i in ids {
            let out = self.nudge(&[
                "enroll",
                "--campaign",
                "probe",
                "--id",
                &format!("ext{i}"),
                "--name",
                &format!("Cand {i}"),
                "--email",
                &format!("k{i}@example.com"),
            ]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
    }

    /// Waits until the file channel holds `n` messages.
    pub fn wait_delivered(&self, n: usize) {
        wait_for(|| (self.delivered().len() >= n).then_some(()))
            .unwrap_or_else(|| panic!("{} of {n} delivered", self.delivered().len()));
    }
}

pub fn unique() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

pub fn assert_no_panic(out: &Output) {
    let err = stderr(out);
    assert!(!err.contains("panicked at"), "a panic:\n{err}");
}

/// A `nudge run` child; killed if a test fails while it runs.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: sled writes no last snapshot, so its next open replays
    /// the log's tail (where a damage can go unnoticed by sled).
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and waits for a clean exit.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let exit = wait_for(|| self.child.try_wait().unwrap())
            .unwrap_or_else(|| panic!("the daemon did not stop:\n{}", self.log()));
        let log = self.log();
        assert!(exit.success(), "{log}");
        assert!(!log.contains("panicked at"), "{log}");
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

pub fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> Option<T> {
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

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A damage done to sled's file.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// One byte flipped at this fraction of the file's written part.
    Flip(f64),
    /// The file cut to this fraction of its written part.
    Truncate(f64),
    /// The file cut to this fraction of its length (sled preallocates).
    TruncateFile(f64),
}

impl Damage {
    fn apply(self, db: &Path) {
        let mut bytes = std::fs::read(db).unwrap();
        // sled's segments are preallocated: aim inside what was written.
        let written = bytes.iter().rposition(|b| *b != 0).unwrap_or(0) + 1;
        match self {
            Damage::Flip(at) => bytes[((written as f64) * at) as usize] ^= 0x5a,
            Damage::Truncate(to) => bytes.truncate(((written as f64) * to) as usize),
            Damage::TruncateFile(to) => bytes.truncate(((bytes.len() as f64) * to) as usize),
        }
        std::fs::write(db, bytes).unwrap();
    }
}

pub const ORIGIN: &str = "2026-11-23T06:00:00Z";
/// Four virtual days later: every timer of the first run is due.
pub const LATER: &str = "2026-11-27T06:00:00Z";

#[test]
fn a_damaged_store_is_used_whole_or_refused_and_nothing_is_delivered_twice() {
    let site = Site::new();
    let daemon = site.start(ORIGIN).expect("the daemon starts");
    site.enroll(0..20);
    site.wait_delivered(60);
    // Settled in the store too (the file channel writes first).
    std::thread::sleep(StdDuration::from_millis(500));
    daemon.kill();
    let delivered: BTreeSet<String> = site.delivered().into_iter().collect();
    assert_eq!(delivered.len(), 60, "each message once");
    let status = site.nudge(&["status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let whole_status = stdout(&status);
    let pristine = site.path().join("pristine");
    copy_dir(&site.store(), &pristine);

    let cases = [
        Damage::Flip(0.02),
        Damage::Flip(0.1),
        Damage::Flip(0.2),
        Damage::Flip(0.33),
        Damage::Flip(0.45),
        Damage::Flip(0.7),
        Damage::Flip(0.9),
        Damage::Flip(0.99),
        Damage::Truncate(0.99),
        Damage::Truncate(0.9),
        Damage::Truncate(0.5),
        Damage::TruncateFile(0.9),
        Damage::TruncateFile(0.5),
    ];
    let mut refused = 0;
    for damage in cases {
        let store = site.store();
        std::fs::remove_dir_all(&store).unwrap();
        copy_dir(&pristine, &store);
        // A fresh channel file: any delivery now is one made twice.
        let _ = std::fs::remove_file(site.path().join("out/email.jsonl"));
        damage.apply(&store.join("db"));

        let status = site.nudge(&["status"]);
        let verify = site.nudge(&["verify"]);
        eprintln!(
            "{damage:?}: status {:?} {}; verify {:?} {}",
            status.status.code(),
            stderr(&status).trim(),
            verify.status.code(),
            stdout(&verify).trim()
        );
        if status.status.success() {
            assert_eq!(
                stdout(&status),
                whole_status,
                "{damage:?}: not the acknowledged state"
            );
        } else {
            refused += 1;
            let err = stderr(&status);
            assert!(
                err.contains("error:") && err.contains("data"),
                "{damage:?}: {err}"
            );
            assert!(
                !verify.status.success(),
                "{damage:?}: verify found nothing:\n{}",
                stdout(&verify)
            );
        }
        match site.start(LATER) {
            Ok(d) => {
                std::thread::sleep(StdDuration::from_secs(2));
                d.stop();
            }
            Err(log) => assert!(log.contains("data"), "{damage:?}: {log}"),
        }
        assert_eq!(
            site.delivered(),
            Vec::<String>::new(),
            "{damage:?}: delivered again"
        );

        // Taken as it is, the store still sends nothing it had delivered.
        let accepted = site.nudge(&["verify", "--accept"]);
        if accepted.status.success() {
            if let Ok(d) = site.start(LATER) {
                std::thread::sleep(StdDuration::from_secs(3));
                d.stop();
            }
            let again: Vec<String> = site
                .delivered()
                .into_iter()
                .filter(|k| delivered.contains(k))
                .collect();
            assert!(
                again.is_empty(),
                "{damage:?}: delivered again after --accept: {again:?}"
            );
        }
    }
    assert!(refused > 0, "no damage was noticed at all");
}

/// sled's files put back from an earlier copy by hand (the ledger beside
/// them kept): the commits made since are lost, and nudge refuses to run on
/// the store, saying so; taken as it is, it sends nothing it had delivered.
#[test]
fn a_store_rolled_back_by_hand_is_refused_and_taken_as_it_is_sends_nothing_twice() {
    let site = Site::new();
    let daemon = site.start(ORIGIN).expect("the daemon starts");
    site.enroll(0..4);
    site.wait_delivered(4);
    daemon.stop();
    let early = site.path().join("early");
    copy_dir(&site.store(), &early);
    let daemon = site.start(ORIGIN).expect("the daemon starts again");
    site.wait_delivered(12);
    daemon.stop();
    let delivered: BTreeSet<String> = site.delivered().into_iter().collect();
    assert_eq!(delivered.len(), 12, "each message once");
    // sled's files back as they were; the ledger stays.
    for entry in std::fs::read_dir(&early).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "nudge-ledger" {
            continue;
        }
        let target = site.store().join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::remove_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
    for args in [&["status"][..], &["show", "ext1"], &["run"]] {
        let out = site.nudge(args);
        assert!(!out.status.success(), "{args:?} ran on a rolled-back store");
        let err = stderr(&out);
        assert!(
            err.contains("lost commits it had acknowledged")
                && err.contains("deliveries among them"),
            "{args:?}: {err}"
        );
    }
    let verify = site.nudge(&["verify"]);
    assert!(!verify.status.success());
    assert!(
        stdout(&verify).contains("lost commits"),
        "{}",
        stdout(&verify)
    );

    let accepted = site.nudge(&["verify", "--accept"]);
    assert!(accepted.status.success(), "{}", stderr(&accepted));
    std::fs::remove_file(site.path().join("out/email.jsonl")).unwrap();
    let daemon = site.start(LATER).expect("the accepted store runs");
    std::thread::sleep(StdDuration::from_secs(3));
    daemon.stop();
    assert_eq!(site.delivered(), Vec::<String>::new(), "delivered again");
    let verify = site.nudge(&["verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
}
