//! `cargo bench --bench runtime`: the durable runtime at scale, in five
//! stages, each printing its figure beside the target it is measured
//! against (numbers go to the README; nothing here asserts on time).
//!
//! 1. **enroll**: N candidates through `Core::tick_behind`, 1,000
//!    enrollments per durable commit, each batch written on the store's
//!    writer thread while the next is run (as `nudge run` does); then the
//!    invites they caused are marked in flight and recorded delivered, as
//!    the daemon's dispatcher does.
//! 2. **fire**: the manual time moves past every `after` timer and
//!    `Core::fire_due` runs them, 1,000 per commit, each an engine step
//!    that queues a send in the outbox.
//! 3. **rss**: a child `nudge run` on that store, with N candidates
//!    waiting on armed timers, until its resident set settles.
//! 4. **restart**: a child `nudge run` whose clock has every timer due,
//!    delivering through the file channel (one `fsync` per message, so
//!    sends really are in flight), is killed with SIGKILL and started
//!    again: the time to its first send, and until every send that was in
//!    flight at the kill is resolved.
//! 5. **lateness**: timers due at a steady 10,000 a second, a child
//!    `nudge run` on a clock running at real speed, the file channel on
//!    tmpfs (so the runtime is measured, not the disk): each send's
//!    `delivered_at` against its due instant.
//!
//! 6. **status**: a child `nudge run` on the store of stages 1 and 2, with
//!    N candidates waiting: the time of each of a few `GET /v1/status`
//!    calls, and the daemon's resident set before and after them.
//!
//! `NUDGE_BENCH_N` sets N (default 1,000,000); stage 5 uses N / 10 sends,
//! between 10,000 and 100,000. `NUDGE_BENCH_STAGES` picks stages (`12`,
//! `5`; stages 1 and 2 run whenever 3, 4 or 6 does, as they build its store);
//! `NUDGE_BENCH_KEEP=1` keeps the stores and the daemons' logs.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration as StdDuration, Instant as Timer};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use nudge::config::Config;
use nudge::engine::Instant;
use nudge::runtime::api::EnrollRequest;
use nudge::runtime::client::settings;
use nudge::runtime::core::{Command, Core, Landed, Reply, This};
use nudge::runtime::daemon::{load_all, Sources};
use nudge::store::{LogKind, SendKey, SendStatus, SledStore, Store, StoreError};

/// The allocator `nudge run` uses, so the stages run in this process
/// measure what the daemon does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Commands (and timers) per durable commit.
const BATCH: usize = 1_000;
/// The store's cache, as `nudge run` opens it by default
/// (`NUDGE_BENCH_CACHE_MB` to try another).
fn cache() -> u64 {
    std::env::var("NUDGE_BENCH_CACHE_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(128)
        << 20
}
/// Targets from the issue.
const TARGET_RATE: f64 = 50_000.0;
const TARGET_RSS_MB: f64 = 300.0;
const TARGET_FIRST_SEND_MS: f64 = 300.0;
const TARGET_RESOLVED_MS: f64 = 1_000.0;
const TARGET_P99_MS: f64 = 50.0;
const LATENESS_RATE: u64 = 10_000;
const TARGET_STATUS_MS: f64 = 100.0;
/// Status calls timed by stage 6.
const STATUS_CALLS: usize = 5;

const CAMPAIGN: &str = r#"# The benchmark campaign: email, no window, no limits; a send per state
# and an `after` timer that the benchmark makes due when it chooses.
campaign bench {
  title    "Benchmark Role"
  channels email
  goal     completed

  state invite {
    send "bench-invite"
    after 1h -> reminder
  }

  state reminder {
    send "bench-reminder"
    after 1h -> closing
  }

  state closing {
    send "bench-closing"
    end
  }
}
"#;

fn main() {
    // As `nudge run` does (the in-process stages run the same core).
    nudge::runtime::memory::small_pages().expect("transparent huge pages off");
    let n: usize = std::env::var("NUDGE_BENCH_N")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let root = std::env::temp_dir().join(format!("nudge-bench-runtime-{}", std::process::id()));
    let shm = Path::new("/dev/shm").join(format!("nudge-bench-runtime-{}", std::process::id()));
    fs::create_dir_all(&root).expect("work folder");
    write_campaign(&root);
    println!("nudge runtime benchmark: N = {n}; {}", machine());

    let stages = std::env::var("NUDGE_BENCH_STAGES").unwrap_or_default();
    let wanted = |stage: char| stages.is_empty() || stages.contains(stage);
    let store = root.join("store");
    let t0 = Utc::now();
    if "12346".chars().any(wanted) {
        stage_enroll(&root, &store, n, t0);
        stage_fire(&root, &store, t0 + Duration::hours(1));
    }
    if wanted('3') {
        stage_rss(&root, &store, n);
    }
    if wanted('6') {
        stage_status(&root, &store, n);
    }
    if wanted('4') {
        stage_restart(&root, &store, t0 + Duration::hours(2));
    }
    if wanted('5') {
        let sends = (n / 10).clamp(10_000, 100_000);
        let _ = fs::create_dir_all(&shm);
        let out = if shm.is_dir() {
            shm.clone()
        } else {
            root.clone()
        };
        stage_lateness(&root, &out, sends);
    }

    if std::env::var_os("NUDGE_BENCH_KEEP").is_some() {
        println!("kept {} and {}", root.display(), shm.display());
    } else {
        let _ = fs::remove_dir_all(&root);
        let _ = fs::remove_dir_all(&shm);
    }
}

/// Cores, load and memory as the benchmark starts.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cores} cores, load average {}", load.join(" "))
}

fn write_campaign(root: &Path) {
    fs::create_dir_all(root.join("campaigns")).expect("campaigns folder");
    fs::create_dir_all(root.join("templates")).expect("templates folder");
    fs::write(root.join("campaigns/bench.nudge"), CAMPAIGN).expect("campaign file");
    for name in ["invite", "reminder", "closing"] {
        fs::write(
            root.join(format!("templates/bench-{name}.email.j2")),
            format!(
                "Subject: {{{{ campaign.title }}}}: {name}\n\nHi {{{{ candidate.first_name }}}},\n\n\
                 Your interview for {{{{ campaign.title }}}} is one click away: {{{{ link }}}}\n\n\
                 {{{{ sender }}}}, {{{{ company }}}}\n"
            ),
        )
        .expect("template file");
    }
}

fn sources(root: &Path) -> Sources {
    Sources {
        campaigns: root.join("campaigns"),
        templates: root.join("templates"),
    }
}

/// The core over a store, with the bench campaign and its templates.
fn open_core(root: &Path, store: &Path) -> Core {
    let store = SledStore::open(store, cache()).expect("open the store");
    let (campaigns, templates) = load_all(&sources(root)).expect("the bench campaign checks");
    Core::new(store, campaigns, templates, settings(&Config::default()))
}

/// CPU time (user and system, every thread) this process has used, in
/// seconds: a figure that other processes on the machine disturb less than
/// the wall clock.
fn cpu_secs() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

fn rate(count: usize, secs: f64) -> String {
    group(count as f64 / secs)
}

/// 1234567.8 → "1,234,568".
fn group(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn stage_enroll(root: &Path, store: &Path, n: usize, t0: Instant) {
    let mut core = open_core(root, store);
    let mut sends = Vec::with_capacity(n);
    let cpu = cpu_secs();
    let started = Timer::now();
    let mut enrolled = 0;
    // Counted as each batch is written, as the daemon answers its clients
    // and hands the sends on (keeping only their keys, for the next stage).
    let mut take = |landed: Option<Result<Landed, StoreError>>| {
        let Some(batch) = landed else { return };
        let batch = batch.expect("enroll batch written");
        enrolled += batch
            .replies
            .iter()
            .filter(|r| matches!(r, Reply::Enrolled(e) if e.enrolled))
            .count();
        sends.extend(batch.out.into_iter().map(|m| m.key));
    };
    for (b, first) in (0..n).step_by(BATCH).enumerate() {
        let commands = (first..(first + BATCH).min(n))
            .map(|i| {
                Command::Enroll(EnrollRequest {
                    ignore_filter: true,
                    campaign: "bench".into(),
                    external_id: None,
                    fields: [
                        ("name".to_string(), format!("Candidate {i}")),
                        ("email".to_string(), format!("c{i}@example.com")),
                    ]
                    .into(),
                })
            })
            .collect();
        let now = t0 + Duration::milliseconds(b as i64);
        // As `nudge run` does: each batch written while the next is built.
        let handoff = core.tick_behind(commands, now, 0);
        take(handoff.landed);
        match handoff.this {
            This::Behind { .. } => {}
            This::Written { landed: batch, .. } => take(Some(Ok(batch))),
            This::Failed(e) => panic!("enroll batch: {e}"),
        }
    }
    take(core.land());
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu;
    println!(
        "1 enroll    {enrolled} enrollments in {secs:.1} s: {} enrollments/s, {BATCH} per durable commit \
         (target {} durable transitions/s: {}); {:.0} µs CPU each; store {:.0} MB",
        rate(enrolled, secs),
        group(TARGET_RATE),
        verdict(enrolled as f64 / secs >= TARGET_RATE),
        cpu * 1e6 / enrolled.max(1) as f64,
        core.store().size_on_disk() as f64 / 1e6,
    );
    settle(&mut core, &sends, t0, Some("invites"));
}

/// Marks the sends in flight and records them delivered, `BATCH` per
/// commit, as the daemon's dispatcher and core do for a null channel;
/// prints the rate when told what they are.
fn settle(core: &mut Core, keys: &[String], now: Instant, what: Option<&str>) {
    let cpu = cpu_secs();
    let started = Timer::now();
    for chunk in keys.chunks(BATCH) {
        core.execute(vec![Command::MarkInFlight(chunk.to_vec())], now)
            .expect("mark in flight");
        let delivered = chunk
            .iter()
            .map(|k| Command::Delivered {
                key: k.clone(),
                outcome: Ok(Default::default()),
            })
            .collect();
        core.execute(delivered, now).expect("record delivered");
    }
    let Some(what) = what else { return };
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu;
    println!(
        "  deliver   {} {what} marked in flight and recorded delivered in {secs:.1} s: {} sends/s \
         (2 durable commits per {BATCH}); {:.0} µs CPU each",
        keys.len(),
        rate(keys.len(), secs),
        cpu * 1e6 / keys.len().max(1) as f64,
    );
}

fn stage_fire(root: &Path, store: &Path, due: Instant) {
    let mut core = open_core(root, store);
    let now = due + Duration::seconds(5);
    let mut sends = Vec::new();
    let mut fired = 0;
    let cpu = cpu_secs();
    let started = Timer::now();
    loop {
        let (n, out) = core.fire_due(now, BATCH).expect("fire due timers");
        if n == 0 {
            break;
        }
        fired += n;
        sends.extend(out.into_iter().map(|m| m.key));
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu;
    println!(
        "2 fire      {fired} due timers fired in {secs:.1} s: {} transitions/s, {BATCH} per durable \
         commit, {} sends queued (target {}/s: {}); {:.0} µs CPU each",
        rate(fired, secs),
        sends.len(),
        group(TARGET_RATE),
        verdict(fired as f64 / secs >= TARGET_RATE),
        cpu * 1e6 / fired.max(1) as f64,
    );
    settle(&mut core, &sends, now, Some("reminders"));
    let (mut count, mut bytes) = (0usize, 0usize);
    for item in core.store().scan_raw(b"c") {
        let (_, v) = item.expect("read a dossier");
        count += 1;
        bytes += v.len();
    }
    println!(
        "  records   {count} dossiers of {} bytes on average; store {:.0} MB",
        bytes / count.max(1),
        core.store().size_on_disk() as f64 / 1e6
    );
}

/// A free loopback port for a child's admin API.
#[path = "support/mod.rs"]
mod support;
use support::free_port;

/// Writes a `nudge.toml` for a child daemon; email goes to `email_file`
/// (the file channel) or nowhere (null).
fn write_config(root: &Path, name: &str, store: &Path, email_file: Option<&Path>) -> PathBuf {
    let email = match email_file {
        Some(path) => format!("transport = \"file\"\npath = '{}'", path.display()),
        None => "transport = \"null\"".to_string(),
    };
    let text = format!(
        "store = '{}'\ncampaigns = '{}'\ntemplates = '{}'\n\n[admin]\nlisten = \"127.0.0.1:{}\"\n\n\
         [channels.email]\n{email}\n\n[channels.sms]\ntransport = \"null\"\n\n\
         [channels.whatsapp]\ntransport = \"null\"\n\n[channels.webhook]\ntransport = \"null\"\n",
        store.display(),
        root.join("campaigns").display(),
        root.join("templates").display(),
        free_port(),
    );
    let path = root.join(name);
    fs::write(&path, text).expect("write config");
    path
}

/// A child `nudge run`.
struct Daemon {
    child: Child,
    spawned: Timer,
    spawned_at: DateTime<Utc>,
}

impl Daemon {
    fn spawn(config: &Path, clock: Option<&str>, log: &Path) -> Daemon {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("daemon log");
        let mut cmd = Process::new(env!("CARGO_BIN_EXE_nudge"));
        cmd.arg("--config").arg(config).arg("run");
        if let Some(spec) = clock {
            cmd.arg("--clock").arg(spec);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("daemon log"))
            .stderr(log);
        let spawned_at = Utc::now();
        let spawned = Timer::now();
        let child = cmd.spawn().expect("start nudge run");
        Daemon {
            child,
            spawned,
            spawned_at,
        }
    }

    /// The resident set in MB, from `/proc/<pid>/status`.
    fn rss_mb(&self) -> Option<f64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 60 s).
    fn stop(mut self) {
        let _ = Process::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Timer::now() + StdDuration::from_secs(60);
        while Timer::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(StdDuration::from_millis(20));
        }
        eprintln!("nudge run did not stop within 60 s of SIGTERM; killed");
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the earlier stages' dirty pages to disk, so that a stage that
/// times a daemon does not also time the kernel's writeback of gigabytes
/// it did not write.
fn quiet_disk() {
    let _ = Process::new("sync").status();
}

fn stage_rss(root: &Path, store: &Path, n: usize) {
    quiet_disk();
    let config = write_config(root, "rss.toml", store, None);
    let daemon = Daemon::spawn(&config, None, &root.join("rss.log"));
    // Sample until the resident set holds still for two seconds (at most 20 s).
    let mut samples: Vec<f64> = Vec::new();
    let mut peak: f64 = 0.0;
    let deadline = Timer::now() + StdDuration::from_secs(20);
    while Timer::now() < deadline {
        std::thread::sleep(StdDuration::from_millis(250));
        let Some(rss) = daemon.rss_mb() else { break };
        peak = peak.max(rss);
        samples.push(rss);
        if samples.len() >= 12 {
            let last = &samples[samples.len() - 8..];
            let (lo, hi) = last
                .iter()
                .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
            if hi - lo < 1.0 {
                break;
            }
        }
    }
    let settled = samples.last().copied().unwrap_or(0.0);
    let waited = daemon.spawned.elapsed().as_secs_f64();
    daemon.stop();
    println!(
        "3 rss       nudge run with {n} candidates waiting: {settled:.0} MB resident after {waited:.1} s \
         (peak {peak:.0} MB; target < {TARGET_RSS_MB:.0} MB: {})",
        verdict(peak < TARGET_RSS_MB),
    );
}

/// The daemon's resident set once it holds still (within 1 MB over two
/// seconds; at most 20 s), and the peak seen.
fn steady_rss(daemon: &Daemon) -> (f64, f64) {
    let mut samples: Vec<f64> = Vec::new();
    let deadline = Timer::now() + StdDuration::from_secs(20);
    while Timer::now() < deadline {
        std::thread::sleep(StdDuration::from_millis(250));
        let Some(rss) = daemon.rss_mb() else { break };
        samples.push(rss);
        if samples.len() >= 8 {
            let last = &samples[samples.len() - 8..];
            let (lo, hi) = last
                .iter()
                .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
            if hi - lo < 1.0 {
                break;
            }
        }
    }
    let peak = samples.iter().copied().fold(0.0, f64::max);
    (samples.last().copied().unwrap_or(0.0), peak)
}

/// `GET path` on the daemon's admin API with its token: the status code
/// and the body's length.
fn admin_get(port: u16, token: &str, path: &str) -> (u16, usize) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("admin API");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, answer.len())
}

fn stage_status(root: &Path, store: &Path, n: usize) {
    quiet_disk();
    let config = write_config(root, "status.toml", store, None);
    let port = nudge::config::load(Some(&config))
        .map(|(c, _)| c.admin.listen.port())
        .expect("the bench config reads");
    let daemon = Daemon::spawn(&config, None, &root.join("status.log"));
    let token_file = store.join("admin-token");
    let deadline = Timer::now() + StdDuration::from_secs(60);
    let token = loop {
        match fs::read_to_string(&token_file) {
            Ok(t) if !t.trim().is_empty() => break t.trim().to_string(),
            _ if Timer::now() < deadline => std::thread::sleep(StdDuration::from_millis(50)),
            _ => panic!("no admin token in {}", token_file.display()),
        }
    };
    // Ready once the API answers.
    while admin_get_checked(port, &token).is_none() && Timer::now() < deadline {
        std::thread::sleep(StdDuration::from_millis(50));
    }
    let (before, _) = steady_rss(&daemon);
    let mut times = Vec::with_capacity(STATUS_CALLS);
    for _ in 0..STATUS_CALLS {
        let started = Timer::now();
        let (code, _) = admin_get(port, &token, "/v1/status");
        times.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(code, 200, "GET /v1/status answered {code}");
    }
    let (after, peak) = steady_rss(&daemon);
    daemon.stop();
    let slowest = times.iter().copied().fold(0.0, f64::max);
    let each: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
    println!(
        "6 status    nudge run with {n} candidates waiting: {STATUS_CALLS} status calls of {} ms \
         (target < {TARGET_STATUS_MS:.0} ms: {}); resident {before:.0} MB before, {after:.0} MB after \
         (peak {peak:.0} MB; growth {:+.0} MB)",
        each.join(", "),
        verdict(slowest < TARGET_STATUS_MS),
        after - before,
    );
}

/// Whether the admin API answers a status call (`None` until it listens).
fn admin_get_checked(port: u16, token: &str) -> Option<()> {
    std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    (admin_get(port, token, "/v1/health").0 != 0).then_some(())
}

/// The complete lines of a file written by the file channel, from byte
/// `from`, and the offset after the last of them.
fn file_lines(path: &Path, from: u64) -> (Vec<serde_json::Value>, u64) {
    let mut bytes = Vec::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.seek(SeekFrom::Start(from));
        let _ = f.read_to_end(&mut bytes);
    }
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let lines = bytes[..complete]
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect();
    (lines, from + complete as u64)
}

fn field<'a>(line: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    line.get(name)?.as_str()
}

fn instant(line: &serde_json::Value, name: &str) -> Option<DateTime<Utc>> {
    field(line, name)?.parse().ok()
}

/// The keys in the complete lines of a file, from byte `from`.
fn file_keys(path: &Path, from: u64) -> BTreeSet<String> {
    file_lines(path, from)
        .0
        .iter()
        .filter_map(|l| field(l, "key").map(str::to_string))
        .collect()
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

fn stage_restart(root: &Path, store: &Path, due: Instant) {
    quiet_disk();
    let out = root.join("restart-email.jsonl");
    let config = write_config(root, "restart.toml", store, Some(&out));
    // A clock at real speed on which every timer is already due; both
    // processes share it, so the restarted one goes on from the same time.
    let origin = due + Duration::seconds(5);
    let origin_real = Utc::now();
    let spec = format!(
        "{}@{}*1",
        origin.to_rfc3339_opts(SecondsFormat::Millis, true),
        origin_real.timestamp_millis()
    );
    let to_real = |virtual_at: Instant| origin_real + (virtual_at - origin);
    let log = root.join("restart.log");

    let mut first = Daemon::spawn(&config, Some(&spec), &log);
    let deadline = Timer::now() + StdDuration::from_secs(120);
    while file_len(&out) == 0 && Timer::now() < deadline {
        std::thread::sleep(StdDuration::from_millis(5));
    }
    // Let it deliver for a while, so the kill finds a stream of sends.
    std::thread::sleep(StdDuration::from_millis(1500));
    let rss_before = first.rss_mb().unwrap_or(0.0);
    first.kill();
    let killed = Utc::now();

    // What the kill left is read from a copy, so that the restarted daemon
    // meets the store as the kill left it and does sled's crash recovery
    // itself, inside the time measured.
    let at_kill = root.join("store-at-kill");
    let _ = fs::remove_dir_all(&at_kill);
    let copied = Process::new("cp")
        .arg("-a")
        .arg(store)
        .arg(&at_kill)
        .status()
        .expect("copy the store");
    assert!(copied.success(), "copy the store after the kill");
    // The copy's gigabytes go to disk now, not while the daemon restarts.
    quiet_disk();
    let (waiting, queued, in_flight, open_after_kill) = inspect_after_kill(&at_kill);
    let _ = fs::remove_dir_all(&at_kill);
    let len_at_kill = file_len(&out);
    let in_file = file_keys(&out, 0);
    let already = in_flight
        .iter()
        .filter(|(k, _)| in_file.contains(k))
        .count();

    let second = Daemon::spawn(&config, Some(&spec), &log);
    let deadline = Timer::now() + StdDuration::from_secs(60);
    while file_len(&out) <= len_at_kill && Timer::now() < deadline {
        std::thread::sleep(StdDuration::from_millis(1));
    }
    let seen_after = second.spawned.elapsed();
    let first_new = file_lines(&out, len_at_kill)
        .0
        .first()
        .and_then(|l| instant(l, "delivered_at"));
    // Run on until every send in flight at the kill is in the file, then
    // some, so that their outcomes are recorded; then stop cleanly.
    let missing: Vec<&String> = in_flight
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !in_file.contains(*k))
        .collect();
    let deadline = Timer::now() + StdDuration::from_secs(30);
    loop {
        let now_in = file_keys(&out, len_at_kill);
        if missing.iter().all(|k| now_in.contains(*k)) || Timer::now() > deadline {
            break;
        }
        std::thread::sleep(StdDuration::from_millis(50));
    }
    std::thread::sleep(StdDuration::from_millis(1000));
    let rss_after = second.rss_mb().unwrap_or(0.0);
    let spawned_at = second.spawned_at;
    second.stop();

    let resolved = resolutions(store, &in_flight, killed, to_real);
    let unresolved = in_flight.len() - resolved.len();
    let last = resolved
        .values()
        .max()
        .map(|at| (*at - spawned_at).num_milliseconds() as f64);
    let first_ms = first_new.map(|at| (at - spawned_at).num_milliseconds() as f64);

    println!(
        "4 restart   kill -9 of nudge run ({:.0} MB resident) with {waiting} candidates waiting, \
         {queued} sends queued and {} in flight ({already} of them already in the file); \
         opening a copy of the store as the kill left it took {} ms (sled's crash recovery)",
        rss_before,
        in_flight.len(),
        open_after_kill.as_millis(),
    );
    match first_ms {
        Some(ms) => println!(
            "  (a)       first send {ms:.0} ms after the restart (seen by polling at {:.0} ms; \
             target < {TARGET_FIRST_SEND_MS:.0} ms: {})",
            seen_after.as_secs_f64() * 1e3,
            verdict(ms < TARGET_FIRST_SEND_MS),
        ),
        None => println!(
            "  (a)       no send after the restart (target < {TARGET_FIRST_SEND_MS:.0} ms: MISSED)"
        ),
    }
    match last {
        Some(ms) if unresolved == 0 => println!(
            "  (b)       all {} sends in flight at the kill resolved {ms:.0} ms after the restart \
             (target < {TARGET_RESOLVED_MS:.0} ms: {}); {rss_after:.0} MB resident",
            in_flight.len(),
            verdict(ms < TARGET_RESOLVED_MS),
        ),
        _ => println!(
            "  (b)       {unresolved} of {} sends in flight at the kill not resolved after the restart \
             (target < {TARGET_RESOLVED_MS:.0} ms: MISSED)",
            in_flight.len(),
        ),
    }
}

/// After the kill: candidates waiting on a timer, sends queued, the
/// (key, candidate) of each send marked in flight, and how long opening
/// the store took (sled's recovery, the floor under a restart).
fn inspect_after_kill(store: &Path) -> (usize, usize, Vec<(String, String)>, StdDuration) {
    let opening = Timer::now();
    let store = SledStore::open(store, cache()).expect("open the store after the kill");
    let opened = opening.elapsed();
    let waiting = store.timers_until(None).expect("read the timers").len();
    let mut queued = 0;
    let mut in_flight = Vec::new();
    for (send_key, flying) in store.queued_sends() {
        // The journal lists sends until its record's last one settles: the
        // dossier says whether this one still waits.
        let waits = store
            .send(SendKey::parse(&send_key).expect("a send key"))
            .expect("read the outbox")
            .is_some_and(|e| e.status == SendStatus::Queued && e.retry_at.is_none());
        if !waits {
            continue;
        }
        if flying {
            let candidate = SendKey::parse(&send_key)
                .map(|k| k.candidate().to_string())
                .unwrap_or_default();
            in_flight.push((send_key, candidate));
        } else {
            queued += 1;
        }
    }
    (waiting, queued, in_flight, opened)
}

/// When (real time) each of the sends was recorded delivered or failed
/// after `since`, from the candidates' logs.
fn resolutions(
    store: &Path,
    sends: &[(String, String)],
    since: DateTime<Utc>,
    to_real: impl Fn(Instant) -> DateTime<Utc>,
) -> HashMap<String, DateTime<Utc>> {
    let store = SledStore::open(store, cache()).expect("open the store after the restart");
    let mut out = HashMap::new();
    for (send_key, candidate) in sends {
        let done = store
            .send(SendKey::parse(send_key).expect("a send key"))
            .expect("read the outbox")
            .is_some_and(|e| matches!(e.status, SendStatus::Delivered | SendStatus::Failed(_)));
        if !done {
            continue;
        }
        let entries = store.history(candidate).expect("read the log");
        for entry in entries {
            let about = match &entry.kind {
                LogKind::Delivered { key, .. } | LogKind::DeliveryFailed { key, .. } => key,
                _ => continue,
            };
            let at = to_real(entry.at);
            if about == send_key && at >= since {
                out.insert(send_key.clone(), at);
            }
        }
    }
    out
}

fn stage_lateness(root: &Path, out_dir: &Path, sends: usize) {
    let store = root.join("lateness-store");
    let out = out_dir.join("lateness-email.jsonl");
    let mut core = open_core(root, &store);
    // Candidate i's reminder falls due at origin + i / 10,000 s: enroll it
    // an hour before, ten to a commit (the due instants have milliseconds).
    let origin: Instant = "2026-12-01T09:00:00Z".parse().expect("an instant");
    let per_ms = (LATENESS_RATE / 1000) as usize;
    let mut invites = Vec::with_capacity(sends);
    let started = Timer::now();
    for (ms, first) in (0..sends).step_by(per_ms).enumerate() {
        let commands = (first..(first + per_ms).min(sends))
            .map(|i| {
                Command::Enroll(EnrollRequest {
                    ignore_filter: true,
                    campaign: "bench".into(),
                    external_id: None,
                    fields: [
                        ("name".to_string(), format!("Late {i}")),
                        ("email".to_string(), format!("l{i}@example.com")),
                    ]
                    .into(),
                })
            })
            .collect();
        let now = origin - Duration::hours(1) + Duration::milliseconds(ms as i64);
        let (_, sent) = core.execute(commands, now).expect("enroll");
        invites.extend(sent.into_iter().map(|m| m.key));
    }
    let setup = started.elapsed().as_secs_f64();
    settle(&mut core, &invites, origin - Duration::hours(1), None);
    drop(core);
    quiet_disk();

    // Real time `origin_real` is `origin` on the child's clock.
    let config = write_config(root, "lateness.toml", &store, Some(&out));
    let origin_real = Utc::now() + Duration::seconds(3);
    let spec = format!(
        "{}@{}*1",
        origin.to_rfc3339_opts(SecondsFormat::Millis, true),
        origin_real.timestamp_millis()
    );
    let daemon = Daemon::spawn(&config, Some(&spec), &root.join("lateness.log"));
    let span = StdDuration::from_millis(sends as u64 * 1000 / LATENESS_RATE);
    let deadline = Timer::now() + StdDuration::from_secs(3) + span + StdDuration::from_secs(30);
    let mut peak: f64 = 0.0;
    let mut lines = Vec::new();
    let mut read_to = 0;
    while lines.len() < sends && Timer::now() < deadline {
        std::thread::sleep(StdDuration::from_millis(200));
        peak = peak.max(daemon.rss_mb().unwrap_or(0.0));
        let (new, next) = file_lines(&out, read_to);
        read_to = next;
        lines.extend(
            new.iter()
                .filter_map(|l| Some((instant(l, "scheduled_at")?, instant(l, "delivered_at")?))),
        );
    }
    daemon.stop();

    // (due, lateness) in milliseconds from the first due instant.
    let timed: Vec<(f64, f64)> = lines
        .iter()
        .map(|(scheduled, delivered)| {
            let due_real = origin_real + (*scheduled - origin);
            let late = (*delivered - due_real)
                .num_microseconds()
                .unwrap_or(i64::MAX) as f64
                / 1e3;
            ((*scheduled - origin).num_milliseconds() as f64, late)
        })
        .collect();
    // The worst tenth of a second, to tell a stall from a steady tail.
    let mut tenths: HashMap<i64, f64> = HashMap::new();
    for (at, late) in &timed {
        let worst = tenths.entry((at / 100.0).floor() as i64).or_insert(0.0);
        *worst = worst.max(*late);
    }
    let worst_at = tenths
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |(tenth, _)| tenth);
    let mut late: Vec<f64> = timed.iter().map(|(_, l)| *l).collect();
    late.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        late.get(((q * late.len() as f64).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let p99 = pct(0.99);
    println!(
        "5 lateness  {} of {sends} sends due at {}/s over {:.0} s (set up in {setup:.1} s) reached the \
         file channel: lateness p50 {:.1} ms, p99 {p99:.1} ms, max {:.1} ms (target p99 < {TARGET_P99_MS:.0} ms: {}); \
         peak {peak:.0} MB resident; the latest sends were due in the tenth of a second from {:.1} s",
        late.len(),
        group(LATENESS_RATE as f64),
        span.as_secs_f64(),
        pct(0.5),
        late.last().copied().unwrap_or(f64::NAN),
        verdict(late.len() == sends && p99 < TARGET_P99_MS),
        worst_at as f64 / 10.0,
    );
}
