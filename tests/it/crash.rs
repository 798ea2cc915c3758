//! The crash test: the real `nudge run` as a child process on an
//! accelerated clock, with a file channel, killed with SIGKILL at random
//! moments and restarted each time, while 1,000 candidates are enrolled and
//! receive events through the admin API. At the end every candidate must
//! have received exactly the messages the simulator predicts for them: none
//! lost, none extra, and no key delivered twice (the file channel recognises
//! a repeated key, so its guarantee is exactly once).
//!
//! The run is reproducible in its plan (candidates, events, kill intervals
//! come from one seed; set `NUDGE_CRASH_SEED` to replay another), not in its
//! timing: the instants the daemon used are read back from its answers and
//! fed to the simulator.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant as RealInstant, SystemTime};

use chrono::{DateTime, Duration};
use nudge::engine::{Candidate, Happening, Instant, Machine, Record};
use nudge::runtime::api::{
    EnrollRequest, EnrollResponse, EventRequest, EventResponse, StatusReport,
};
use nudge::sim::{Line, Scenario};
use nudge::store::causes::{Failure, Skip};
use nudge::store::{LogKind, OutboxEntry, SendKey, SendStatus, SledStore, Store};

const CAMPAIGN: &str = "warehouse_associate";
const CANDIDATES: usize = 1_000;
/// A Monday, 06:00 UTC: the virtual timeline starts here.
const START: &str = "2026-11-23T06:00:00Z";
/// Virtual milliseconds per real millisecond: a real second is 5.5 hours.
const SPEED: i64 = 20_000;
/// Enrollments are spread over this much virtual time from the start.
const ENROLL_SPAN_HOURS: i64 = 24;
const MIN_KILLS: usize = 20;
/// Real time the whole run may take before the test gives up waiting.
const REAL_BUDGET: StdDuration = StdDuration::from_secs(150);
const TOKEN_ENV: &str = "NUDGE_CRASH_TOKEN";
const TOKEN: &str = "crash-test-token-of-at-least-32-chars";

#[test]
fn daemon_killed_at_random_delivers_exactly_what_the_simulator_predicts() {
    let seed = std::env::var("NUDGE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0de_u64);
    let began = RealInstant::now();
    let mut dir = tempfile::tempdir().expect("temp dir");
    // `NUDGE_CRASH_KEEP=1` keeps the folder (store, logs, deliveries) for a post-mortem.
    if std::env::var_os("NUDGE_CRASH_KEEP").is_some() {
        dir.disable_cleanup(true);
        eprintln!("crash test: keeping {}", dir.path().display());
    }
    let setup = Setup::new(dir.path());
    let timeline = Timeline::new(StdDuration::from_millis(1_500));
    let plans = plan_candidates(&mut Rng::new(seed));

    let daemon = Arc::new(Mutex::new(Daemon::start(&setup, &timeline)));
    let _reaper = Reaper(Arc::clone(&daemon));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let api = Api::new(setup.listen.clone(), began + REAL_BUDGET);
    runtime.block_on(api.wait_healthy());

    let stop_killing = Arc::new(AtomicBool::new(false));
    let killer = {
        let daemon = Arc::clone(&daemon);
        let stop = Arc::clone(&stop_killing);
        let mut rng = Rng::new(seed ^ 0x6b69_6c6c);
        std::thread::spawn(move || kill_at_random(&daemon, &stop, &mut rng))
    };

    let outcome = runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for plan in plans {
            let api = api.clone();
            tasks.spawn(async move { drive(&api, &timeline, plan).await });
        }
        let mut observed = Vec::new();
        while let Some(result) = tasks.join_next().await {
            observed.push(result.expect("a candidate's driver panicked"));
        }
        let exited = api.wait_until_everyone_exited(CANDIDATES).await;
        stop_killing.store(true, Ordering::SeqCst);
        (observed, exited)
    });
    let kills = killer.join().expect("the killer panicked");
    let (mut observed, exited) = outcome;
    observed.sort_by_key(|o| o.index);

    // The daemon that runs now delivers whatever a last kill left queued.
    let drained = runtime.block_on(api.wait_outbox_empty());
    let (stopped, starts, exited_alone) = {
        let mut daemon = daemon.lock().unwrap();
        let stopped = daemon.terminate();
        (stopped, daemon.starts, daemon.exited_alone.clone())
    };

    let machine = load_machine();
    let messages =
        nudge::channels::read_messages(&setup.deliveries).expect("read the deliveries file");
    let store =
        SledStore::open(&setup.dir.join("store"), 16 << 20).expect("open the stopped store");
    let report = compare(&machine, &observed, &messages, &store);

    eprintln!(
        "crash test (seed {seed:#x}): {} candidates; {} messages predicted, {} delivered; \
         {kills} kills, {} restarts, {} request retries; {} duplicates, {} repeats dropped \
         by the channel, {} lost, {} extra, {} differing, {} withheld after an opt-out, \
         {} late ({} sent earlier after it); {:.1} s real",
        observed.len(),
        report.predicted,
        report.delivered,
        starts - 1,
        api.retries(),
        report.duplicates.len(),
        report.repeats_dropped,
        report.lost.len(),
        report.extra.len(),
        report.differing.len(),
        report.withheld.len(),
        report.late.len(),
        report.freed_by_late.len(),
        began.elapsed().as_secs_f64(),
    );
    let logs = setup.logs_hint();
    for line in report.lines().iter().take(40) {
        eprintln!("  {line}");
    }
    assert!(
        exited_alone.is_empty(),
        "nudge run ended without being killed: {exited_alone:?}\n{logs}"
    );
    assert!(exited, "not every candidate exited in time\n{logs}");
    assert!(drained, "the outbox never emptied\n{logs}");
    assert!(
        stopped.success(),
        "SIGTERM should stop nudge cleanly, got {stopped}\n{logs}"
    );
    assert!(kills >= MIN_KILLS, "only {kills} kills");
    assert!(
        report.is_clean(),
        "deliveries differ from the simulator (first lines above)\n{logs}"
    );
}

// ---------------------------------------------------------------------------
// The plan: who enrolls when, with which fields, and what happens to them.

/// A tiny deterministic generator (SplitMix64): plans replay from a seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.unit() * (hi - lo) as f64) as i64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as i64) as usize]
    }
}

#[derive(Debug, Clone)]
struct Plan {
    index: usize,
    external_id: String,
    fields: BTreeMap<String, String>,
    /// Virtual time after the start at which to enroll.
    enroll_after: Duration,
    /// Events in order, each a virtual delay after the enrollment answer.
    events: Vec<(&'static str, Duration)>,
}

fn plan_candidates(rng: &mut Rng) -> Vec<Plan> {
    let zones = [
        Some("America/Chicago"),
        Some("America/New_York"),
        Some("Europe/Madrid"),
        None,
    ];
    let sources = [Some("indeed"), Some("website"), None];
    let span_ms = ENROLL_SPAN_HOURS * 3_600_000;
    (0..CANDIDATES)
        .map(|i| {
            let mut fields = BTreeMap::new();
            fields.insert("name".to_string(), format!("Candidate {i}"));
            fields.insert("role".to_string(), "Warehouse Associate".to_string());
            // Everyone has an address: without one nobody ever reaches the
            // deadline and the candidate never exits.
            let contact = rng.unit();
            if contact < 0.65 {
                fields.insert("phone".to_string(), format!("+1555{i:07}"));
            }
            if contact >= 0.40 {
                fields.insert("email".to_string(), format!("c{i}@example.com"));
            }
            if let Some(zone) = rng.pick(&zones) {
                fields.insert("timezone".to_string(), zone.to_string());
            }
            if let Some(source) = rng.pick(&sources) {
                fields.insert("source".to_string(), source.to_string());
            }
            if rng.unit() < 0.15 {
                fields.insert("language".to_string(), "es".to_string());
            }
            let hours = |rng: &mut Rng, lo: i64, hi: i64| {
                Duration::milliseconds(rng.range(lo * 3_600_000, hi * 3_600_000))
            };
            let mut events = Vec::new();
            let path = rng.unit();
            // Clicks come after the first message (the link is in it),
            // which goes out at most 14 hours after enrolling (19:00 to
            // 09:00 next day). A click before it leaves the deadline
            // unstarted, and `started` waits for the deadline forever (the
            // simulator agrees: a property of the campaign).
            if path < 0.35 {
                events.push(("clicked", hours(rng, 15, 40)));
                if rng.unit() < 0.6 {
                    events.push(("started", hours(rng, 1, 12)));
                    if rng.unit() < 0.5 {
                        events.push(("completed", hours(rng, 1, 30)));
                    }
                }
            } else if path < 0.42 {
                events.push(("opted_out", hours(rng, 1, 60)));
            } else if path < 0.47 {
                // A click long after everything ended changes nothing.
                events.push(("clicked", hours(rng, 100, 110)));
            }
            Plan {
                index: i,
                external_id: format!("crash-{i}"),
                fields,
                enroll_after: Duration::milliseconds(
                    (i as i64 * span_ms) / CANDIDATES as i64 + rng.range(0, 60_000),
                ),
                events,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The virtual timeline shared with the daemon.

#[derive(Debug, Clone, Copy)]
struct Timeline {
    start: Instant,
    /// The real time at which the virtual clock shows `start`.
    origin: SystemTime,
}

impl Timeline {
    /// A timeline that starts moving `delay` from now (the clock stands
    /// at `start` until then), leaving the first daemon time to start.
    fn new(delay: StdDuration) -> Self {
        Timeline {
            start: DateTime::parse_from_rfc3339(START).unwrap().to_utc(),
            origin: SystemTime::now() + delay,
        }
    }

    /// `--clock START@REAL_MS*SPEED`, as `nudge run` takes it.
    fn spec(&self) -> String {
        let real_ms = self
            .origin
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        format!("{START}@{real_ms}*{SPEED}")
    }

    /// Sleeps until the virtual clock shows `at` (the clock stands still
    /// before its origin, so the real instant is computed from the origin).
    async fn sleep_until(&self, at: Instant) {
        let after_origin = (at - self.start).num_milliseconds().max(0) / SPEED + 1;
        let real = self.origin + StdDuration::from_millis(after_origin as u64);
        if let Ok(wait) = real.duration_since(SystemTime::now()) {
            tokio::time::sleep(wait).await;
        }
    }
}

// ---------------------------------------------------------------------------
// The test's folder, configuration and the daemon process.

struct Setup {
    dir: PathBuf,
    config: PathBuf,
    deliveries: PathBuf,
    listen: String,
}

impl Setup {
    fn new(dir: &Path) -> Self {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let campaigns = dir.join("campaigns");
        std::fs::create_dir(&campaigns).unwrap();
        std::fs::copy(
            repo.join("campaigns/warehouse.nudge"),
            campaigns.join("warehouse.nudge"),
        )
        .unwrap();
        let listen = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().to_string()
        };
        let deliveries = dir.join("deliveries.jsonl");
        let channel = |name: &str| {
            format!(
                "[channels.{name}]\ntransport = \"file\"\npath = {:?}\n",
                deliveries.display().to_string()
            )
        };
        let toml = format!(
            "store = {store:?}\ncampaigns = {campaigns:?}\ntemplates = {templates:?}\n\n\
             [admin]\nlisten = {listen:?}\ntoken_env = {TOKEN_ENV:?}\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n{email}\n{sms}\n{whatsapp}\n{webhook}\n\
             [runtime]\ncatch_up_secs = 100000000\nstale_after_secs = 31536000\n",
            store = dir.join("store").display().to_string(),
            campaigns = campaigns.display().to_string(),
            templates = repo.join("templates").display().to_string(),
            email = channel("email"),
            sms = channel("sms"),
            whatsapp = channel("whatsapp"),
            webhook = channel("webhook"),
        );
        let config = dir.join("nudge.toml");
        std::fs::write(&config, toml).unwrap();
        Setup {
            dir: dir.to_path_buf(),
            config,
            deliveries,
            listen,
        }
    }

    /// The tail of the daemon's log, for a failure message.
    fn logs_hint(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("daemon.stderr")).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("daemon stderr (last lines):\n{}", tail.join("\n"))
    }
}

/// The `nudge run` child, restarted with the same arguments after each kill.
struct Daemon {
    command: Vec<String>,
    stdout: PathBuf,
    stderr: PathBuf,
    child: Child,
    starts: usize,
    /// Stopped for good: no more restarts.
    done: bool,
    /// Processes that ended without being killed.
    exited_alone: Vec<String>,
}

impl Daemon {
    fn start(setup: &Setup, timeline: &Timeline) -> Daemon {
        let command = vec![
            "--config".to_string(),
            setup.config.display().to_string(),
            "run".to_string(),
            "--clock".to_string(),
            timeline.spec(),
        ];
        let stdout = setup.dir.join("daemon.stdout");
        let stderr = setup.dir.join("daemon.stderr");
        let child = spawn(&command, &stdout, &stderr, 1);
        Daemon {
            command,
            stdout,
            stderr,
            child,
            starts: 1,
            done: false,
            exited_alone: Vec::new(),
        }
    }

    /// SIGKILL, then a new process; false once stopped for good.
    fn kill_and_restart(&mut self) -> bool {
        if self.done {
            return false;
        }
        self.revive();
        self.child.kill().expect("kill -9 the daemon");
        self.child.wait().expect("reap the daemon");
        self.restart();
        true
    }

    /// Starts a new process if the current one exited by itself (which it
    /// must never do: the test fails at the end), noting how it ended.
    fn revive(&mut self) {
        if self.done {
            return;
        }
        if let Some(status) = self.child.try_wait().expect("poll the daemon") {
            self.exited_alone
                .push(format!("start {} ended by itself: {status}", self.starts));
            self.restart();
        }
    }

    fn restart(&mut self) {
        self.starts += 1;
        self.child = spawn(&self.command, &self.stdout, &self.stderr, self.starts);
    }

    /// SIGTERM, and the exit status.
    fn terminate(&mut self) -> ExitStatus {
        self.done = true;
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM failed");
        self.child.wait().expect("reap the daemon")
    }
}

/// Kills the daemon when the test ends early (a failed assertion), so no
/// `nudge run` outlives the test.
struct Reaper(Arc<Mutex<Daemon>>);

impl Drop for Reaper {
    fn drop(&mut self) {
        let mut daemon = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !daemon.done {
            daemon.done = true;
            let _ = daemon.child.kill();
            let _ = daemon.child.wait();
        }
    }
}

fn spawn(command: &[String], stdout: &Path, stderr: &Path, start: usize) -> Child {
    let open = |path: &Path| -> File {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open a daemon log");
        use std::io::Write;
        let _ = writeln!(file, "==== start {start} ====");
        file
    };
    Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(command)
        .env(TOKEN_ENV, TOKEN)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(open(stdout))
        .stderr(open(stderr))
        .spawn()
        .expect("start nudge run")
}

/// Kills the daemon at random moments until told to stop; returns the count.
fn kill_at_random(daemon: &Mutex<Daemon>, stop: &AtomicBool, rng: &mut Rng) -> usize {
    let mut kills = 0;
    loop {
        let pause = StdDuration::from_millis(rng.range(300, 1_200) as u64);
        let woke = RealInstant::now() + pause;
        while RealInstant::now() < woke {
            if stop.load(Ordering::SeqCst) {
                return kills;
            }
            daemon.lock().unwrap().revive();
            std::thread::sleep(StdDuration::from_millis(10));
        }
        if !daemon.lock().unwrap().kill_and_restart() {
            return kills;
        }
        kills += 1;
    }
}

// ---------------------------------------------------------------------------
// The admin API, retried through kills.

#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
    give_up: RealInstant,
    retries: Arc<Mutex<usize>>,
}

impl Api {
    fn new(listen: String, give_up: RealInstant) -> Self {
        let client = reqwest::Client::builder()
            .timeout(StdDuration::from_secs(5))
            .build()
            .expect("HTTP client");
        Api {
            client,
            base: format!("http://{listen}"),
            give_up,
            retries: Arc::new(Mutex::new(0)),
        }
    }

    fn retries(&self) -> usize {
        *self.retries.lock().unwrap()
    }

    /// Sends a request until the daemon answers it: connection failures and
    /// 5xx (a daemon shutting down or just killed) are retried with the very
    /// same body, so idempotency keys make the retry safe; 4xx is a bug.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> T {
        loop {
            let mut request = self
                .client
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(TOKEN);
            if let Some(body) = body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response) if response.status().is_success() => {
                    // An unreadable body: killed while it was on its way.
                    if let Ok(value) = response.json::<T>().await {
                        return value;
                    }
                }
                Ok(response) if response.status().is_server_error() => {}
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    panic!("{method} {path} answered {status}: {text}");
                }
                Err(_) => {}
            }
            assert!(
                RealInstant::now() < self.give_up,
                "{method} {path}: the daemon did not answer in time"
            );
            *self.retries.lock().unwrap() += 1;
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
    }

    async fn wait_healthy(&self) {
        let _: serde_json::Value = self.call(reqwest::Method::GET, "/v1/health", None).await;
    }

    async fn enroll(&self, request: &EnrollRequest) -> EnrollResponse {
        let body = serde_json::to_value(request).unwrap();
        self.call(reqwest::Method::POST, "/v1/enroll", Some(&body))
            .await
    }

    async fn event(&self, request: &EventRequest) -> EventResponse {
        let body = serde_json::to_value(request).unwrap();
        self.call(reqwest::Method::POST, "/v1/events", Some(&body))
            .await
    }

    async fn status(&self) -> StatusReport {
        self.call(reqwest::Method::GET, "/v1/status", None).await
    }

    /// Polls until nobody is left in any state and `expected` candidates
    /// have an outcome; false if the real-time budget runs out first.
    async fn wait_until_everyone_exited(&self, expected: usize) -> bool {
        while RealInstant::now() < self.give_up {
            let status = self.status().await;
            let campaign = status.campaigns.iter().find(|c| c.name == CAMPAIGN);
            if let Some(c) = campaign {
                let waiting: i64 = c.states.iter().map(|(_, n)| n).sum();
                let exited: i64 = c.outcomes.iter().map(|(_, n)| n).sum();
                if waiting == 0 && exited == expected as i64 {
                    return true;
                }
            }
            tokio::time::sleep(StdDuration::from_millis(200)).await;
        }
        false
    }

    async fn wait_outbox_empty(&self) -> bool {
        while RealInstant::now() < self.give_up {
            if self.status().await.outbox == 0 {
                return true;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        false
    }
}

// ---------------------------------------------------------------------------
// One candidate's life, as the daemon saw it.

#[derive(Debug)]
struct Observed {
    index: usize,
    fields: BTreeMap<String, String>,
    candidate: String,
    enrolled_at: Instant,
    variants: BTreeMap<String, String>,
    /// Each event and the instant the daemon took it at.
    events: Vec<(String, Instant)>,
}

async fn drive(api: &Api, timeline: &Timeline, plan: Plan) -> Observed {
    timeline
        .sleep_until(timeline.start + plan.enroll_after)
        .await;
    let enrolled = api
        .enroll(&EnrollRequest {
            ignore_filter: true,
            campaign: CAMPAIGN.to_string(),
            external_id: Some(plan.external_id.clone()),
            fields: plan.fields.clone(),
        })
        .await;
    let enrolled_at = parse_instant(&enrolled.at);
    let mut events = Vec::new();
    let mut previous = enrolled_at;
    for (n, (event, delay)) in plan.events.iter().enumerate() {
        timeline.sleep_until(previous + *delay).await;
        let answer = api
            .event(&EventRequest {
                candidate: enrolled.candidate.clone(),
                event: event.to_string(),
                id: Some(format!("{}-{n}", plan.external_id)),
                ..EventRequest::default()
            })
            .await;
        assert_eq!(answer.candidate, enrolled.candidate);
        let at = parse_instant(&answer.at);
        events.push((event.to_string(), at));
        previous = at;
    }
    Observed {
        index: plan.index,
        fields: plan.fields,
        candidate: enrolled.candidate,
        enrolled_at,
        variants: enrolled.variants,
        events,
    }
}

fn parse_instant(text: &str) -> Instant {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("`{text}` is not RFC 3339: {e}"))
        .to_utc()
}

// ---------------------------------------------------------------------------
// The verdict: the simulator's prediction against the file channel.

fn load_machine() -> Machine {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/warehouse.nudge");
    let compiled = nudge::dsl::pipeline::compile_paths(&[path], None).expect("the campaign runs");
    compiled
        .machine(CAMPAIGN)
        .expect("the warehouse campaign")
        .clone()
}

/// A message as both sides describe it: template, channel, scheduled instant.
type Sent = (String, String, Instant);

/// What the daemon did, set against the simulator, send by send.
#[derive(Default)]
struct Report {
    predicted: usize,
    /// Distinct send keys in the deliveries file.
    delivered: usize,
    /// Predicted sends the daemon decided only after the candidate's
    /// opt-out had arrived (it was down or behind at their instant), and so
    /// refused: an opt-out is obeyed from the moment it is received, even
    /// over a send whose instant came a little earlier.
    withheld: Vec<String>,
    /// Predicted sends that the daemon, down or behind across the
    /// candidate's deadline they were due before, skipped as late: the
    /// one way downtime may change what is sent, by design.
    late: Vec<String>,
    /// Predicted sends of a candidate who had one skipped as late, that
    /// went earlier than predicted: the skipped send no longer holds them
    /// back by the candidate's limits (same key, template and channel).
    freed_by_late: Vec<String>,
    /// Predicted, never delivered, and not withheld or late.
    lost: Vec<String>,
    /// Delivered, never predicted.
    extra: Vec<String>,
    /// The same key with another template, channel or instant.
    differing: Vec<String>,
    /// Keys found more than once in the file.
    duplicates: Vec<String>,
    /// Candidates whose variants differ between daemon and simulator.
    variant_mismatches: Vec<String>,
    /// Candidates the simulator does not see exit.
    unfinished: Vec<String>,
    /// Repeats the file channel recognised and dropped: sends in flight at
    /// a kill, sent again after the restart.
    repeats_dropped: usize,
}

impl Report {
    fn is_clean(&self) -> bool {
        self.lost.is_empty()
            && self.extra.is_empty()
            && self.differing.is_empty()
            && self.duplicates.is_empty()
            && self.variant_mismatches.is_empty()
            && self.unfinished.is_empty()
    }

    fn lines(&self) -> Vec<String> {
        let tagged = |tag: &str, items: &[String]| -> Vec<String> {
            items.iter().map(|i| format!("{tag} {i}")).collect()
        };
        [
            tagged("lost", &self.lost),
            tagged("extra", &self.extra),
            tagged("differs", &self.differing),
            tagged("duplicate", &self.duplicates),
            tagged("variants differ", &self.variant_mismatches),
            tagged("never exits in the simulator:", &self.unfinished),
            tagged("withheld after opt-out", &self.withheld),
            tagged("late", &self.late),
            tagged("earlier after a late skip", &self.freed_by_late),
        ]
        .concat()
    }
}

fn describe((template, channel, at): &Sent) -> String {
    format!("{template} by {channel} at {}", at.to_rfc3339())
}

/// The simulator's sends for one observed candidate, by send key
/// (`campaign/candidate/visit/index`, as the README documents it).
fn predict(machine: &Machine, o: &Observed, report: &mut Report) -> BTreeMap<String, Sent> {
    let mut pairs: Vec<(String, String)> = o.fields.clone().into_iter().collect();
    pairs.push(("id".to_string(), o.candidate.clone()));
    let scenario = Scenario {
        start: o.enrolled_at,
        candidate: Candidate::from_pairs(pairs, &o.candidate),
        events: o.events.clone(),
        variants: Vec::new(),
        until: o.enrolled_at + Duration::days(30),
    };
    let timeline = nudge::sim::run(machine, &scenario).expect("simulate");
    let variants: BTreeMap<String, String> = machine
        .experiments
        .iter()
        .zip(&timeline.variants)
        .map(|(e, v)| (e.name.clone(), e.variants[*v].0.clone()))
        .collect();
    if variants != o.variants {
        report.variant_mismatches.push(format!(
            "{}: daemon {:?}, simulator {variants:?}",
            o.candidate, o.variants
        ));
    }
    if timeline.outcome().is_none() {
        report.unfinished.push(o.candidate.clone());
    }
    timeline
        .lines
        .iter()
        .filter_map(|line| match line {
            Line::Record(Record {
                at,
                what:
                    Happening::Sent {
                        template,
                        channel,
                        visit,
                        index,
                        ..
                    },
            }) => Some((
                format!("{CAMPAIGN}/{}/{visit}/{index}", o.candidate),
                (template.clone(), channel.name().to_string(), *at),
            )),
            _ => None,
        })
        .collect()
}

fn compare(
    machine: &Machine,
    observed: &[Observed],
    messages: &[nudge::channels::Message],
    store: &SledStore,
) -> Report {
    let mut report = Report::default();
    let mut delivered: HashMap<&str, Vec<&nudge::channels::Message>> = HashMap::new();
    for m in messages {
        delivered.entry(m.key.as_str()).or_default().push(m);
    }
    report.delivered = delivered.len();
    for (key, copies) in &delivered {
        if copies.len() > 1 {
            report
                .duplicates
                .push(format!("{key} delivered {} times", copies.len()));
        }
    }
    for o in observed {
        let opted_out = o
            .events
            .iter()
            .find(|(name, _)| name == "opted_out")
            .map(|(_, at)| *at);
        let predicted = predict(machine, o, &mut report);
        report.predicted += predicted.len();
        // Sends skipped as late: by key once queued, by template when the
        // engine found it late at its turn (nothing was queued).
        let mut late_keys = Vec::new();
        let mut late_templates = Vec::new();
        for e in store.history(&o.candidate).expect("history") {
            match e.kind {
                LogKind::DeliveryFailed {
                    key,
                    why: Failure::Late(_),
                    ..
                } => late_keys.push(key),
                LogKind::Skipped {
                    template,
                    why: Skip::Late(_),
                    ..
                } => late_templates.push(template),
                _ => {}
            }
        }
        for (key, sent) in predicted {
            let Some(copies) = delivered.remove(key.as_str()) else {
                let entry: Option<OutboxEntry> = store
                    .send(SendKey::parse(&key).expect("a send key"))
                    .expect("outbox");
                let refused = matches!(
                    entry.as_ref().map(|e| &e.status),
                    Some(SendStatus::Failed(why)) if why.contains("opted out")
                );
                let line = format!("{key}: {}", describe(&sent));
                if refused && opted_out.is_some_and(|at| sent.2 <= at) {
                    report.withheld.push(line);
                } else if late_keys.contains(&key) || late_templates.contains(&sent.0) {
                    report.late.push(line);
                } else {
                    let status = entry.map_or("no outbox entry".to_string(), |e| {
                        format!("outbox says {:?}", e.status)
                    });
                    report.lost.push(format!("{line} ({status})"));
                }
                continue;
            };
            let m = copies[0];
            let got = (
                m.template.clone(),
                m.channel.name().to_string(),
                m.scheduled_at,
            );
            let had_late = !late_keys.is_empty() || !late_templates.is_empty();
            if got != sent && had_late && got.0 == sent.0 && got.1 == sent.1 && got.2 < sent.2 {
                report.freed_by_late.push(format!(
                    "{key}: predicted {}, delivered {}",
                    describe(&sent),
                    describe(&got)
                ));
            } else if got != sent {
                report.differing.push(format!(
                    "{key}: predicted {}, delivered {}",
                    describe(&sent),
                    describe(&got)
                ));
            }
        }
    }
    for (key, copies) in delivered {
        let m = copies[0];
        let got = (
            m.template.clone(),
            m.channel.name().to_string(),
            m.scheduled_at,
        );
        report.extra.push(format!("{key}: {}", describe(&got)));
    }
    report.repeats_dropped = store
        .all_history()
        .expect("read the event log")
        .into_iter()
        .filter(|e| {
            matches!(
                e.kind,
                LogKind::Delivered {
                    duplicate: true,
                    ..
                }
            )
        })
        .count();
    for list in [&mut report.lost, &mut report.extra, &mut report.differing] {
        list.sort();
    }
    report
}
