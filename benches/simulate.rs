//! `cargo bench --bench simulate`: `nudge simulate --candidates` on the
//! warehouse example over 100,000 generated candidates in several zones.
//!
//! Prints candidate timelines per second for the engine alone (the library
//! call, on 1 thread and on every core) and for the whole command (the
//! release binary reading the CSV and writing one JSON line a candidate).
//! Numbers go to the README; nothing here asserts on time.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use nudge::dsl::pipeline::compile_paths;
use nudge::sim::batch::{read_list, simulate_list};

const CANDIDATES: usize = 100_000;
const ZONES: [&str; 7] = [
    "America/Chicago",
    "America/New_York",
    "America/Los_Angeles",
    "America/Denver",
    "Europe/Madrid",
    "Asia/Kolkata",
    "",
];

/// A small deterministic generator, so every run sees the same list.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn generate(path: &Path) {
    let mut rng = Lcg(42);
    let mut csv = String::from("id,name,email,phone,timezone,role,source,applied_at\n");
    let start: DateTime<Utc> = "2026-11-23T06:00:00Z".parse().expect("valid instant");
    for i in 0..CANDIDATES {
        let zone = ZONES[(rng.next() % ZONES.len() as u64) as usize];
        let role = if rng.next() % 10 < 8 {
            "Warehouse Associate"
        } else {
            "Driver"
        };
        let source = ["indeed", "career_site", "referral", "ats"][(rng.next() % 4) as usize];
        let phone = if rng.next().is_multiple_of(5) {
            String::new()
        } else {
            format!("+1555{:07}", i)
        };
        let email = if rng.next().is_multiple_of(7) {
            String::new()
        } else {
            format!("c{i}@example.com")
        };
        let applied = start + Duration::minutes((rng.next() % (7 * 24 * 60)) as i64);
        let _ = writeln!(
            csv,
            "c-{i},Candidate {i},{email},{phone},{zone},{role},{source},{}",
            applied.format("%Y-%m-%dT%H:%M:%SZ")
        );
    }
    std::fs::write(path, csv).expect("write candidate list");
}

fn main() {
    let dir = std::env::temp_dir().join(format!("nudge-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let list = dir.join("candidates.csv");
    generate(&list);
    let campaign = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/warehouse.nudge");
    let mut compiled =
        compile_paths(std::slice::from_ref(&campaign), None).expect("warehouse.nudge runs");
    let machine = compiled.campaigns.remove(0).machine;
    let start: DateTime<Utc> = "2026-11-23T06:00:00Z".parse().expect("valid instant");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);

    println!(
        "nudge simulate --candidates: warehouse example, {CANDIDATES} candidates, {} zones",
        ZONES.len()
    );
    let t = Instant::now();
    let rows = read_list(&list).expect("read list");
    println!(
        "  read CSV                  {:>8.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    for threads in [1, cores] {
        let t = Instant::now();
        let outcomes =
            simulate_list(&machine, &rows, start, Duration::days(30), threads).expect("simulate");
        let secs = t.elapsed().as_secs_f64();
        let sent: u64 = outcomes.iter().map(|o| u64::from(o.messages())).sum();
        println!(
            "  engine, {threads} thread{}          {:>8.0} ms  {:>9.0} candidates/s  ({sent} messages)",
            if threads == 1 { " " } else { "s" },
            secs * 1e3,
            CANDIDATES as f64 / secs
        );
    }

    let binary = env!("CARGO_BIN_EXE_nudge");
    for (label, json) in [("summary", false), ("--json", true)] {
        let t = Instant::now();
        let mut cmd = Command::new(binary);
        cmd.args(["simulate"])
            .arg(&campaign)
            .args(["--candidates"])
            .arg(&list)
            .args(["--start", "2026-11-23T06:00:00Z"])
            .stdout(Stdio::null());
        if json {
            cmd.arg("--json");
        }
        let status = cmd.status().expect("run nudge");
        let secs = t.elapsed().as_secs_f64();
        assert!(status.success(), "nudge simulate failed");
        println!(
            "  whole command, {label:<8}  {:>8.0} ms  {:>9.0} candidates/s",
            secs * 1e3,
            CANDIDATES as f64 / secs
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
