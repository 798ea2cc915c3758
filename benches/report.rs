//! `cargo bench --bench report`: reports over a large store. A helper
//! writes `NUDGE_BENCH_CANDIDATES` candidates (default 1,000,000) into a
//! fresh sled store through the store's own transactions, in commits of
//! 10,000: each enrolled in the campaign `bench` with a `copy` variant,
//! and a history of about five events (enrolled, sent, delivered for 90%,
//! opened 60%, clicked 45%, started 30%, completed 15%, exited 50%), so
//! each commit keeps the report traces as the daemon's commits do. The
//! candidates have no enrollment state or timers: nothing in a report
//! reads those.
//!
//! Then, timed with the release binary:
//! - `nudge report --campaign bench --by variant --format json`, the store
//!   opened by the command (no daemon), wall time of the whole process;
//! - the same through a running `nudge run`: its first report reads the
//!   store and keeps the traces in memory, the later ones read them there
//!   (the first is printed apart, with the daemon's resident set);
//! - `GET /dashboard/data.json` on that daemon (the dashboard's data): the
//!   first answer reads the store; later ones answer from the last reading
//!   while a new one is taken beside them (see `server::dashboard::data`).
//!
//! Each is run `NUDGE_BENCH_ROUNDS` times (default 5); the median and the
//! slowest are printed. Nothing here asserts on time.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nudge::store::{CandidateRecord, LogEntry, LogKind, SledStore, Store, Transaction};

#[path = "support/mod.rs"]
mod support;
use support::{env_or, free_port};

const CAMPAIGN: &str = r#"campaign bench {
  title    "Bench"
  channels email
  goal     completed
  experiment copy { short 50, warm 50 }

  state invite {
    send "invite"
    on completed -> done
    after 7d -> done
  }

  state done {
    end
  }
}
"#;

/// A small, fast, seeded generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn site(dir: &Path, admin: u16) {
    support::site_files(
        dir,
        CAMPAIGN,
        &format!(
            "store = \"data\"\n\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\n\
             [server]\nlisten = \"127.0.0.1:{}\"\npublic_url = \"http://127.0.0.1:1\"\n\n\
             [channels.email]\ntransport = \"null\"\n",
            free_port()
        ),
    );
}

/// Writes the candidates; returns how many history lines a report reads.
fn fill(store: &SledStore, candidates: u64) -> u64 {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let start = chrono::DateTime::parse_from_rfc3339("2026-09-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let mut lines = 0;
    let mut txn = store.begin();
    for n in 1..=candidates {
        let id = format!("c{n}");
        let enrolled = start + chrono::Duration::seconds((n * 7) as i64);
        txn.new_candidate(CandidateRecord {
            id: id.clone(),
            external_id: Some(format!("ext-{n}")),
            fields: [
                ("email".to_string(), format!("c{n}@example.com")),
                (
                    "source".to_string(),
                    ["ats", "indeed", "apply_link"][(n % 3) as usize].to_string(),
                ),
            ]
            .into(),
            token: format!("{id}-{n:032x}"),
            created_at: enrolled,
            opted_out: false,
        });
        let variant = if rng.chance(50) { "short" } else { "warm" };
        let mut at = enrolled;
        let mut log =
            |txn: &mut nudge::store::SledTxn<'_>, minutes: i64, campaign: &str, kind: LogKind| {
                at += chrono::Duration::minutes(minutes);
                txn.log(
                    &id,
                    LogEntry {
                        at,
                        campaign: campaign.into(),
                        kind,
                    },
                )
                .unwrap();
            };
        log(
            &mut txn,
            0,
            "bench",
            LogKind::Enrolled {
                state: "invite".into(),
                variants: [("copy".to_string(), variant.to_string())].into(),
                version: "bench".into(),
            },
        );
        log(
            &mut txn,
            3,
            "bench",
            LogKind::Sent {
                state: "invite".into(),
                template: "invite".into(),
                channel: "email".into(),
                key: format!("bench/{id}/1/0"),
            },
        );
        lines += 2;
        let received = |event: &str| LogKind::Received {
            event: event.into(),
            fields: Default::default(),
        };
        let mut steps = 0;
        for (event, percent) in [
            ("delivered", 90),
            ("opened", 67),
            ("clicked", 75),
            ("started", 67),
            ("completed", 50),
        ] {
            if !rng.chance(percent) {
                break;
            }
            steps += 1;
            let kind = if event == "delivered" {
                LogKind::Delivered {
                    key: format!("bench/{id}/1/0"),
                    channel: "email".into(),
                    duplicate: false,
                    possible_duplicate: false,
                }
            } else {
                received(event)
            };
            log(
                &mut txn,
                1 + rng.below(600) as i64,
                if event == "delivered" { "bench" } else { "" },
                kind,
            );
        }
        lines += steps;
        if rng.chance(50) {
            let outcome = if steps == 5 { "completed" } else { "expired" };
            log(
                &mut txn,
                60,
                "bench",
                LogKind::Exited {
                    outcome: outcome.into(),
                    converted: steps == 5,
                },
            );
            lines += 1;
        }
        if n % 10_000 == 0 {
            std::mem::replace(&mut txn, store.begin()).commit().unwrap();
        }
    }
    txn.commit().unwrap();
    lines
}

/// A GET on loopback with the admin token, read to its end: the status.
fn get(port: u16, path: &str, token: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response[..response.len().min(32)]).into_owned();
    text.split(' ').nth(1)?.parse().ok()
}

fn median_and_max(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(times[times.len() / 2]), ms(*times.last().unwrap()))
}

fn nudge(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nudge"));
    c.arg("--config")
        .arg(dir.join("nudge.toml"))
        .current_dir(dir)
        .env("NUDGE_LOG", "warn");
    c
}

/// The time of each run, and the last report.
/// `nudge run` on the site in `dir`, its log in `log` (warnings, and what
/// `module` says at info).
fn run(dir: &Path, log: &str, module: &str) -> std::process::Child {
    nudge(dir)
        .arg("run")
        .env("NUDGE_LOG", format!("warn,{module}=info"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(log)).unwrap())
        .spawn()
        .unwrap()
}

/// The admin token, once the daemon on `admin` answers with it.
fn token_when_up(dir: &Path, admin: u16) -> String {
    let token_path = dir.join("data/admin-token");
    loop {
        if let Ok(t) = std::fs::read_to_string(&token_path) {
            if get(admin, "/v1/health", t.trim()).is_some() {
                return t.trim().to_string();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn timed_report(dir: &Path, rounds: u64) -> (Vec<Duration>, serde_json::Value) {
    let mut times = Vec::new();
    let mut last = serde_json::Value::Null;
    for _ in 0..rounds {
        let started = Instant::now();
        let out = nudge(dir)
            .args([
                "report",
                "--campaign",
                "bench",
                "--by",
                "variant",
                "--format",
                "json",
            ])
            .output()
            .unwrap();
        times.push(started.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        last = serde_json::from_slice(&out.stdout).unwrap();
    }
    (times, last)
}

/// The resident set of a process, in MB (Linux).
fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let candidates = env_or("NUDGE_BENCH_CANDIDATES", 1_000_000);
    let rounds = env_or("NUDGE_BENCH_ROUNDS", 5);
    // `NUDGE_BENCH_DIR` keeps the folder (store included) for profiling.
    let temp = tempfile::tempdir().unwrap();
    let kept = std::env::var_os("NUDGE_BENCH_DIR").map(std::path::PathBuf::from);
    let path = kept.clone().unwrap_or_else(|| temp.path().to_path_buf());
    struct Dir(std::path::PathBuf);
    impl Dir {
        fn path(&self) -> &Path {
            &self.0
        }
    }
    let dir = Dir(path);
    let admin = free_port();
    let reuse = kept.is_some() && dir.path().join("data").exists();
    site(dir.path(), admin);
    let started = Instant::now();
    let lines = if reuse {
        println!(
            "store: the one already in {} (not written again)",
            dir.path().display()
        );
        0
    } else {
        let store = SledStore::open(&dir.path().join("data"), 256 << 20).unwrap();
        let lines = fill(&store, candidates);
        store.settle().unwrap();
        lines
    };
    if !reuse {
        println!(
            "store: {candidates} candidates, {lines} events a report reads, written in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    let (times, report) = timed_report(dir.path(), rounds);
    let (median, max) = median_and_max(times);
    let funnel = &report["campaigns"][0]["funnel"];
    println!(
        "nudge report --campaign bench --by variant (no daemon): median {median:.0} ms, slowest {max:.0} ms ({} enrolled, {} completed)",
        funnel[0]["count"], funnel[6]["count"]
    );

    // The index says its size when it is built.
    let mut daemon = run(dir.path(), "run.log", "nudge::store::sled::trace_index");
    let token = token_when_up(dir.path(), admin);
    let before = rss_mb(daemon.id()).unwrap_or(0.0);
    // The daemon's first report reads the store and keeps the traces in
    // memory; the later ones read them there.
    let (times, _) = timed_report(dir.path(), rounds + 1);
    let first = times[0].as_secs_f64() * 1000.0;
    let (median, max) = median_and_max(times[1..].to_vec());
    println!("nudge report --campaign bench --by variant (through the daemon): first (reads the store, keeps the traces) {first:.0} ms; then median {median:.0} ms, slowest {max:.0} ms");
    let after = rss_mb(daemon.id()).unwrap_or(0.0);
    // The last report's summaries are freed beside its answer, and the
    // allocator gives pages back a while after.
    std::thread::sleep(Duration::from_secs(10));
    println!(
        "daemon resident set: {before:.0} MB before the first report, {after:.0} MB right after the last, {:.0} MB 10 s later",
        rss_mb(daemon.id()).unwrap_or(0.0)
    );
    let log = std::fs::read_to_string(dir.path().join("run.log")).unwrap_or_default();
    let index_mb = log
        .lines()
        .filter(|l| l.contains("kept in memory"))
        .filter_map(|l| l.split("mb=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .next_back()
        .unwrap_or("?");
    println!("report traces kept in memory by the daemon: {index_mb} MB (its log)");
    let mut times = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let status = get(admin, "/dashboard/data.json", &token).expect("the daemon answers");
        times.push(started.elapsed());
        assert_eq!(status, 200);
    }
    let first = times[0].as_secs_f64() * 1000.0;
    let later = if times.len() > 1 {
        times[1..].to_vec()
    } else {
        times.clone()
    };
    let (median, max) = median_and_max(later);
    println!(
        "GET /dashboard/data.json: first (reads the store) {first:.0} ms; then (the last reading, read again beside) median {median:.0} ms, slowest {max:.0} ms"
    );
    let _ = daemon.kill();
    let _ = daemon.wait();

    // `[dashboard] read_at_start`: the daemon reads the data as it starts,
    // so the first answer and the first report find the traces in memory.
    let config = dir.path().join("nudge.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}\n[dashboard]\nread_at_start = true\n"),
    )
    .unwrap();
    let started = Instant::now();
    let mut daemon = run(dir.path(), "warm.log", "nudge::server::dashboard");
    let read = loop {
        let log = std::fs::read_to_string(dir.path().join("warm.log")).unwrap_or_default();
        if log.contains("read at start") {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no reading at start: {log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let rss = rss_mb(daemon.id()).unwrap_or(0.0);
    token_when_up(dir.path(), admin);
    let answered = Instant::now();
    assert_eq!(get(admin, "/dashboard/data.json", &token), Some(200));
    let dashboard = answered.elapsed().as_secs_f64() * 1000.0;
    let (times, _) = timed_report(dir.path(), 1);
    println!(
        "with [dashboard] read_at_start: read {:.1} s after the start (resident set then {rss:.0} MB); first GET /dashboard/data.json {dashboard:.0} ms; first nudge report --campaign bench --by variant {:.0} ms",
        read.as_secs_f64(),
        times[0].as_secs_f64() * 1000.0
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
}
