//! Delivery policy through the in-process daemon and a file channel: a
//! backlog drains at the configured rate and never above it in any second;
//! `communications = "off"` lets nothing leave the machine.

use crate::support::at;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;

use nudge::channels::{Backend, Channels, FileChannel};
use nudge::engine::{Channel, Instant};
use nudge::runtime::api::EnrollRequest;
use nudge::runtime::campaigns::Campaigns;
use nudge::runtime::clock::ManualClock;
use nudge::runtime::core::{Command, Core, Settings};
use nudge::runtime::daemon::{self, Options, Sources};
use nudge::runtime::policy::Rate;
use nudge::store::{SendStatus, SledStore, Store};

const CAMPAIGN: &str = "campaign blast {
  channels email
  goal completed
  state invite {
    send \"invite\"
    after 1w -> done
  }
  state done { end }
}
";

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("campaigns")).unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("campaigns/blast.nudge"), CAMPAIGN).unwrap();
        std::fs::write(
            dir.path().join("templates/invite.email.j2"),
            "Subject: Your interview\n\nHi {{ candidate.name }}, start here: {{ link }}\n",
        )
        .unwrap();
        Setup { dir }
    }

    fn core(&self, communications_off: bool) -> Core {
        let store = SledStore::open(&self.dir.path().join("store"), 16 << 20).unwrap();
        let templates_dir = self.dir.path().join("templates");
        let (campaigns, _, _) =
            Campaigns::load(&self.dir.path().join("campaigns"), Some(&templates_dir)).unwrap();
        let templates = nudge::templates::Templates::load(&templates_dir).unwrap();
        let settings = Settings {
            tracked_link: "https://interview.example/i/{token}".into(),
            company: "Example Co".into(),
            sender: "The recruiting team".into(),
            catch_up: Duration::seconds(900),
            stale_after: Duration::hours(12),
            phone_country_code: String::new(),
            backoff: Default::default(),
            communications_off,
        };
        Core::new(store, campaigns, Some(Arc::new(templates)), settings)
    }

    fn outbox(&self) -> std::path::PathBuf {
        self.dir.path().join("email.jsonl")
    }

    fn sources(&self) -> Sources {
        Sources {
            campaigns: self.dir.path().join("campaigns"),
            templates: self.dir.path().join("templates"),
        }
    }
}

/// Enrolls `n` candidates: each has one invite due at once, queued.
fn enroll(core: &mut Core, n: usize, now: Instant) -> usize {
    let commands = (0..n)
        .map(|i| {
            Command::Enroll(EnrollRequest {
                ignore_filter: true,
                campaign: "blast".into(),
                external_id: Some(format!("cand-{i}")),
                fields: [
                    ("name".to_string(), format!("Candidate {i}")),
                    ("email".to_string(), format!("c{i}@example.com")),
                ]
                .into(),
            })
        })
        .collect();
    let (_, out) = core.execute(commands, now).unwrap();
    out.len()
}

/// One delivery at a time: the file channel writes under a lock, so with
/// several in flight its own queue could bunch writes that nudge handed
/// over at the limited pace; one at a time, what the file records is the
/// pace nudge keeps.
fn start(setup: &Setup, core: Core, now: Instant, rate: Rate) -> daemon::Running {
    let channels = Channels::new(
        Backend::File(FileChannel::open(setup.outbox()).unwrap()),
        Backend::Null,
        Backend::Null,
        Backend::Null,
    );
    daemon::start(Options {
        core,
        channels: Arc::new(channels),
        clock: Arc::new(ManualClock::new(now)),
        concurrency: 1,
        rates: vec![(Channel::Email, rate)],
        batch: 256,
        sources: setup.sources(),
    })
    .unwrap()
}

/// The `delivered_at` instants the file channel wrote, in order (a line
/// still being written, with no newline yet, is left for the next look).
fn delivered_at(path: &std::path::Path) -> Vec<Instant> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut times: Vec<Instant> = complete
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            at(v["delivered_at"].as_str().expect("delivered_at"))
        })
        .collect();
    times.sort();
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_1000_drains_at_50_per_second_and_never_above() {
    let setup = Setup::new();
    let now = at("2026-11-26T15:00:00Z");
    let mut core = setup.core(false);
    assert_eq!(enroll(&mut core, 1000, now), 1000);
    let running = start(
        &setup,
        core,
        now,
        Rate {
            per_second: Some(50),
            per_minute: None,
        },
    );
    let began = std::time::Instant::now();
    let mut times = Vec::new();
    while began.elapsed() < StdDuration::from_secs(90) {
        times = delivered_at(&setup.outbox());
        if times.len() >= 1000 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    running.stop().await;
    assert_eq!(times.len(), 1000, "every send of the backlog was delivered");
    // The file channel stamps `delivered_at` on its writer thread, a
    // little after nudge hands a send over, and a busy machine delays some
    // stamps more than others: a send stamped late can join the next
    // second's fifty. Counting in windows 100 ms shorter than a second
    // allows for that much jitter and still catches a limiter that lets a
    // burst through; the pace is checked by the span below, and the
    // limiter's exact bound, on its own clock, by the unit test
    // `limiter_never_exceeds_the_rate_in_any_window` (runtime/policy.rs).
    let window = Duration::milliseconds(900);
    let mut worst = 0;
    for (i, t) in times.iter().enumerate() {
        let in_window = times[..=i].iter().filter(|s| **s + window > *t).count();
        worst = worst.max(in_window);
    }
    assert!(worst <= 50, "{worst} deliveries within 900 ms");
    let span = times[999] - times[0];
    // 1000 at 50 a second: the last goes out about 19.98 s after the first.
    assert!(
        span >= Duration::milliseconds(19_000),
        "drained too fast: {span}"
    );
    eprintln!("1000 sends drained in {span}, at most {worst} in any 900 ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn communications_off_lets_nothing_leave() {
    let setup = Setup::new();
    let now = at("2026-11-26T15:00:00Z");
    let mut core = setup.core(true);
    assert_eq!(enroll(&mut core, 20, now), 20);
    let store = core.store().clone();
    let running = start(&setup, core, now, Rate::default());
    let began = std::time::Instant::now();
    let mut suppressed = 0;
    while began.elapsed() < StdDuration::from_secs(20) && suppressed < 20 {
        suppressed = store
            .sends()
            .unwrap()
            .iter()
            .filter(|e| matches!(&e.status, SendStatus::Suppressed(why) if why.contains("communications are off")))
            .count();
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    running.stop().await;
    assert_eq!(suppressed, 20, "every send is recorded as suppressed");
    assert!(
        delivered_at(&setup.outbox()).is_empty(),
        "nothing reached the channel"
    );
    assert!(store.undelivered() == 0, "nothing waits to go out");
}
