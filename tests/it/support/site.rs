//! A folder laid out as an operator would (`nudge.toml`, campaigns,
//! templates, a store, file channels) and the real `nudge` binary run in
//! it, as a daemon or a CLI command: what the tests of the daemon, its
//! faults and its stores share.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration as StdDuration, SystemTime};

use chrono::{DateTime, Duration, Utc};

use nudge::channels::Message;
use nudge::engine::Instant;

use super::{at, repo, stderr, succeeded};

/// Long enough for a loaded 2-core machine; only reached when something hangs.
pub const PATIENCE: StdDuration = StdDuration::from_secs(30);

/// A campaign built for these tests: email only, no window, so every send
/// goes out the moment it is due.
pub const PROBE: &str = r#"campaign probe {
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

pub fn email_template(subject: &str) -> String {
    format!(
        "Subject: {subject}\n\nHi {{{{ candidate.first_name }}}}, your link: {{{{ link }}}}\n\n--\nUnsubscribe: {{{{ unsubscribe_link }}}}\n"
    )
}

/// A free loopback port: bind port 0, read it, let it go.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A folder with `nudge.toml`, campaigns, templates, a store and file
/// channels, as an operator would lay it out.
pub struct Site {
    pub dir: tempfile::TempDir,
    /// The admin API's port.
    pub port: u16,
    /// The public server's port (`public_url` is `http://127.0.0.1:PORT`).
    pub public_port: u16,
}

impl Site {
    pub fn probe() -> Site {
        let site = Site::empty();
        site.write("campaigns/probe.nudge", PROBE);
        for name in ["ping", "pong", "bye"] {
            site.write(&format!("templates/{name}.email.j2"), &email_template(name));
        }
        site
    }

    pub fn warehouse() -> Site {
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

    pub fn empty() -> Site {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["campaigns", "templates", "out"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let port = free_port();
        let public_port = free_port();
        let site = Site {
            dir,
            port,
            public_port,
        };
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
listen = "127.0.0.1:{public_port}"
public_url = "http://127.0.0.1:{public_port}"

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

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("nudge.toml")
    }

    pub fn store(&self) -> PathBuf {
        self.path().join("data")
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path().join(name), text).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
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
    pub fn nudge(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run nudge")
    }

    /// Runs a CLI command that must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, &self.nudge(args))
    }

    /// Starts `nudge run`, its log in a file, and waits until it runs.
    pub fn start(&self, clock: Option<&VirtualClock>) -> Daemon {
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
    pub fn start_with(
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

    /// `http://127.0.0.1:PORT{path}` on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `http://127.0.0.1:PORT{path}` on the public server.
    pub fn public_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.public_port)
    }

    /// The file whose word the store reads before each write (`none`,
    /// `fail`, ...) when the daemon runs with [`Site::start_faulty`].
    pub fn fault_file(&self) -> PathBuf {
        self.path().join("fault")
    }

    /// What the store's next writes do.
    pub fn set_fault(&self, word: &str) {
        std::fs::write(self.fault_file(), word).unwrap();
    }

    /// `nudge run` with the store's fault file in its environment
    /// (`NUDGE_STORE_FAULTS`), its word `none` to begin with.
    pub fn start_faulty(&self) -> Daemon {
        self.set_fault("none");
        self.start_env("NUDGE_STORE_FAULTS", &self.fault_file())
    }

    /// `nudge run` with `name=value` in its environment.
    pub fn start_env(&self, name: &str, value: &Path) -> Daemon {
        self.start_with(
            &["run"],
            |c| {
                c.env(name, value);
            },
            &[": running"],
        )
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.store().join("admin-token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Every message the file channels hold, with the real instant each
    /// was written.
    pub fn sent(&self) -> Vec<(Message, Instant)> {
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
    pub fn sent_to(&self, candidate: &str) -> Vec<(String, Instant)> {
        self.sent()
            .into_iter()
            .filter(|(m, _)| m.candidate == candidate)
            .map(|(m, _)| (m.template, m.scheduled_at))
            .collect()
    }

    /// Waits until `candidate` has been sent `template`; its instant.
    pub fn wait_sent(&self, candidate: &str, template: &str) -> Instant {
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

    /// `nudge enroll` of `id` in the probe campaign, named `name`, at
    /// `email`, with `more` arguments.
    pub fn enroll_command(&self, id: &str, name: &str, email: &str, more: &[&str]) -> Command {
        let mut command = self.command(&[
            "enroll",
            "--campaign",
            "probe",
            "--id",
            id,
            "--name",
            name,
            "--email",
            email,
        ]);
        command.args(more);
        command
    }

    /// `nudge enroll --json` through whatever way in there is.
    pub fn enroll(&self, id: &str, name: &str, email: &str) -> serde_json::Value {
        let out = self
            .enroll_command(id, name, email, &["--json"])
            .output()
            .expect("run nudge");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Every file under the folder and its bytes.
    pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
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
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Where the log ends now, to wait for lines written after it.
    pub fn mark(&self) -> usize {
        self.log().len()
    }

    /// Waits for a line written after `from` that holds every needle.
    pub fn wait_line(&self, from: usize, needles: &[&str]) -> String {
        wait_for(|| {
            let log = self.log();
            let tail = log.get(from..).unwrap_or_default().to_string();
            tail.lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("the daemon never logged {needles:?}:\n{}", self.log()))
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the daemon to exit on its own.
    pub fn wait_exit(mut self) -> (ExitStatus, String) {
        let status = wait_for(|| self.child.try_wait().unwrap())
            .unwrap_or_else(|| panic!("the daemon did not stop:\n{}", self.log()));
        (status, self.log())
    }

    pub fn stop(self) {
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
pub struct VirtualClock {
    pub origin: Instant,
    pub origin_real: SystemTime,
    pub speed: f64,
}

impl VirtualClock {
    pub fn new(origin: &str, speed: f64) -> VirtualClock {
        VirtualClock {
            origin: at(origin),
            origin_real: SystemTime::now(),
            speed,
        }
    }

    pub fn spec(&self) -> String {
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
    pub fn at_real(&self, real: Instant) -> Instant {
        let since = real - DateTime::<Utc>::from(self.origin_real);
        self.origin + Duration::milliseconds((since.num_milliseconds() as f64 * self.speed) as i64)
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

/// [`wait_for`] for a probe that awaits, from async code.
pub async fn wait_for_async<T, F, Fut>(mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if start.elapsed() > PATIENCE {
            return None;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

/// An HTTP client that shows redirects instead of following them, and
/// gives up on an answer after [`PATIENCE`].
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PATIENCE)
        .build()
        .unwrap()
}

/// A minimal HTTP/1.1 request on loopback: status and body.
pub fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
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
