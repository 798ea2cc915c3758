//! `cargo bench --bench pacing`: the pacing error of the per-channel rate
//! limit. A backlog is queued at once and drained by the in-process daemon
//! through the file channel (on tmpfs where there is one); each line's
//! `delivered_at` gives the pace the channel saw. Prints, for each rate, the
//! pace (sends before the last burst over the time until it), its error against the
//! configured rate, and the most deliveries seen in any one second.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant as RealInstant};

use chrono::{DateTime, Duration, Utc};

use nudge::channels::{Backend, Channels, FileChannel};
use nudge::engine::Channel;
use nudge::runtime::api::EnrollRequest;
use nudge::runtime::campaigns::Campaigns;
use nudge::runtime::clock::ManualClock;
use nudge::runtime::core::{Command, Core, Settings};
use nudge::runtime::daemon::{self, Options, Sources};
use nudge::runtime::policy::Rate;
use nudge::store::SledStore;

const CAMPAIGN: &str = "campaign pace {\n  channels sms\n  goal completed\n  state a {\n    send \"hello\"\n    after 1w -> b\n  }\n  state b { end }\n}\n";

fn scratch() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    let base = if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!(
        "nudge-pacing-{}-{}",
        std::process::id(),
        Utc::now().timestamp_micros()
    ));
    std::fs::create_dir_all(dir.join("campaigns")).expect("scratch dir");
    std::fs::create_dir_all(dir.join("templates")).expect("scratch dir");
    std::fs::write(dir.join("campaigns/pace.nudge"), CAMPAIGN).expect("campaign");
    std::fs::write(
        dir.join("templates/hello.sms.j2"),
        "Hi {{ candidate.name }}: {{ link }}\n",
    )
    .expect("template");
    dir
}

fn run(rate: u32, count: usize, runtime: &tokio::runtime::Runtime) {
    let dir = scratch();
    let now: DateTime<Utc> = "2026-11-26T15:00:00Z".parse().expect("instant");
    let store = SledStore::open(&dir.join("store"), 32 << 20).expect("store");
    let (campaigns, _, _) =
        Campaigns::load(&dir.join("campaigns"), Some(&dir.join("templates"))).expect("campaign");
    let templates = nudge::templates::Templates::load(&dir.join("templates")).expect("templates");
    let settings = Settings {
        tracked_link: "https://interview.example/i/{token}".into(),
        company: "Example Co".into(),
        sender: "The recruiting team".into(),
        catch_up: Duration::seconds(900),
        stale_after: Duration::hours(12),
        phone_country_code: String::new(),
        backoff: Default::default(),
        communications_off: false,
    };
    let mut core = Core::new(store, campaigns, Some(Arc::new(templates)), settings);
    let commands = (0..count)
        .map(|i| {
            Command::Enroll(EnrollRequest {
                ignore_filter: true,
                campaign: "pace".into(),
                external_id: Some(format!("p{i}")),
                fields: [
                    ("name".to_string(), format!("C{i}")),
                    ("phone".to_string(), format!("+1555{i:07}")),
                ]
                .into(),
            })
        })
        .collect();
    core.execute(commands, now).expect("enroll");
    let out = dir.join("sms.jsonl");
    let channels = Channels::new(
        Backend::Null,
        Backend::File(FileChannel::open(&out).expect("file channel")),
        Backend::Null,
        Backend::Null,
    );
    let began = RealInstant::now();
    let times = runtime.block_on(async {
        let running = daemon::start(Options {
            core,
            channels: Arc::new(channels),
            clock: Arc::new(ManualClock::new(now)),
            concurrency: 1,
            rates: vec![(
                Channel::Sms,
                Rate {
                    per_second: Some(rate),
                    per_minute: None,
                },
            )],
            batch: 1024,
            sources: Sources {
                campaigns: dir.join("campaigns"),
                templates: dir.join("templates"),
            },
        })
        .expect("daemon");
        let mut times = Vec::new();
        while began.elapsed() < StdDuration::from_secs(120) {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            let complete = text.rfind('\n').map_or("", |end| &text[..end]);
            times = complete
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| {
                    v["delivered_at"]
                        .as_str()
                        .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                })
                .collect::<Vec<_>>();
            if times.len() >= count {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        running.stop().await;
        times
    });
    let mut times = times;
    times.sort();
    let n = times.len();
    // The limiter lets a second's worth go at once, then the next
    // second's worth when the first slides out: the pace is the sends before
    // the last burst over the time until that burst.
    let burst = (rate as usize).min(n - 1);
    let span = (times[n - burst] - times[0])
        .num_microseconds()
        .unwrap_or(1) as f64
        / 1e6;
    let steady = (n - burst) as f64 / span;
    let worst = (0..n)
        .map(|i| {
            times[..=i]
                .iter()
                .filter(|t| **t + Duration::seconds(1) > times[i])
                .count()
        })
        .max()
        .unwrap_or(0);
    println!(
        "  {rate:>4}/s configured, {n} sends: steady pace {steady:8.2}/s ({:+.2}%), at most {worst} in any second",
        (steady / f64::from(rate) - 1.0) * 100.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    println!("pacing of the per-channel rate limit (file channel on tmpfs, one send at a time)");
    run(50, 1000, &runtime);
    run(200, 2000, &runtime);
}
