//! `cargo bench --bench front_door`: the public server under load. A real
//! `nudge run` (the release binary) on a fresh store in a temporary folder,
//! its public server on loopback; `NUDGE_BENCH_APPLICANTS` applicants
//! (default 20,000) are enrolled through the admin API's `POST
//! /v1/applied`, then `NUDGE_BENCH_CONNECTIONS` connections (default 64)
//! post signed interview events (`POST /v1/webhooks/interview`, each
//! signed with HMAC-SHA256 as the interview platform signs, each with its
//! own event id, `started` or a custom `viewed`, for applicants picked at
//! random) for `NUDGE_BENCH_SECONDS` seconds (default 10). A `200` is a
//! durable acknowledgement: the daemon answers once the event's commit is
//! flushed. Printed: acknowledged events a second, latency percentiles,
//! and every answer that was not a 200 (target: 5,000 a second). Nothing
//! here asserts on time.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET: &str = "bench-interview-secret-0123456789abcdef";

#[path = "support/mod.rs"]
mod support;
use support::{env_or, free_port};

const CAMPAIGN: &str = r#"campaign bench {
  title    "Bench"
  enroll   on applied
  channels email
  deadline 30d
  goal     completed

  state invite {
    send "invite"
    on started -> started
    after 7d -> done
  }

  state started {
    on completed -> done
    after 7d -> done
  }

  state done {
    end
  }
}
"#;

fn site(dir: &Path, admin: u16, public: u16) {
    support::site_files(
        dir,
        CAMPAIGN,
        &format!(
            "store = \"data\"\n\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\n\
             [server]\nlisten = \"127.0.0.1:{public}\"\npublic_url = \"http://127.0.0.1:{public}\"\n\n\
             [webhooks]\ninterview_secret_env = \"NUDGE_BENCH_INTERVIEW_SECRET\"\n\n\
             [channels.email]\ntransport = \"null\"\n"
        ),
    );
}

fn start(dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_nudge"))
        .arg("--config")
        .arg(dir.join("nudge.toml"))
        .arg("run")
        .current_dir(dir)
        .env("NUDGE_BENCH_INTERVIEW_SECRET", SECRET)
        .env("NUDGE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("run.log")).unwrap())
        .spawn()
        .expect("start nudge run")
}

fn sign(timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Latencies in microseconds, sorted: the value at quantile `q`.
fn quantile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let applicants = env_or("NUDGE_BENCH_APPLICANTS", 20_000) as usize;
    let connections = env_or("NUDGE_BENCH_CONNECTIONS", 64) as usize;
    let seconds = env_or("NUDGE_BENCH_SECONDS", 10);
    let dir = tempfile::tempdir().unwrap();
    let (admin, public) = (free_port(), free_port());
    site(dir.path(), admin, public);
    let mut daemon = start(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{public}");
    let admin_base = format!("http://127.0.0.1:{admin}");
    let token_file = dir.path().join("data/admin-token");
    let ready = Instant::now();
    let token = loop {
        if let Ok(t) = std::fs::read_to_string(&token_file) {
            let up = runtime.block_on(async {
                client
                    .get(format!("{admin_base}/v1/health"))
                    .bearer_auth(t.trim())
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            });
            if up {
                break t.trim().to_string();
            }
        }
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "nudge run did not start: see {}",
            dir.path().join("run.log").display()
        );
        std::thread::sleep(Duration::from_millis(50));
    };

    // The applicants, through the admin API, 64 at a time.
    let enrolling = Instant::now();
    let tokens: Vec<String> = runtime.block_on(async {
        let mut out = Vec::with_capacity(applicants);
        for chunk in (0..applicants).collect::<Vec<_>>().chunks(64) {
            let posts = chunk.iter().map(|i| {
                let body = serde_json::json!({
                    "external_id": format!("bench-{i}"),
                    "fields": {"name": format!("Applicant {i}"), "email": format!("a{i}@example.com")}
                });
                let request = client
                    .post(format!("{admin_base}/v1/applied"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send();
                async move {
                    let answer: serde_json::Value = request.await.unwrap().json().await.unwrap();
                    let link = answer["link"].as_str().unwrap_or_else(|| panic!("{answer}"));
                    link.rsplit('/').next().unwrap().to_string()
                }
            });
            out.extend(futures_join(posts).await);
        }
        out
    });
    let enrolled_in = enrolling.elapsed();
    println!(
        "front door: {applicants} applicants through POST /v1/applied in {:.1} s ({:.0}/s, 64 at a time)",
        enrolled_in.as_secs_f64(),
        applicants as f64 / enrolled_in.as_secs_f64()
    );

    // The load.
    let tokens = Arc::new(tokens);
    let acked = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let next_id = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let latencies: Vec<u64> = runtime.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..connections {
            let (client, base, tokens) = (client.clone(), base.clone(), tokens.clone());
            let (acked, refused, next_id) = (acked.clone(), refused.clone(), next_id.clone());
            tasks.push(tokio::spawn(async move {
                let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (c as u64 + 1);
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let who = &tokens[(seed % tokens.len() as u64) as usize];
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    let event = if id % 4 == 0 { "started" } else { "viewed" };
                    let body = format!(r#"{{"id":"e{id}","event":"{event}","token":"{who}"}}"#);
                    let timestamp = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs();
                    let sent = Instant::now();
                    let answer = client
                        .post(format!("{base}/v1/webhooks/interview"))
                        .header("Content-Type", "application/json")
                        .header("X-Nudge-Timestamp", timestamp.to_string())
                        .header("X-Nudge-Signature", sign(timestamp, body.as_bytes()))
                        .body(body)
                        .send()
                        .await;
                    match answer {
                        Ok(r) if r.status().as_u16() == 200 => {
                            let _ = r.bytes().await;
                            latencies.push(sent.elapsed().as_micros() as u64);
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => {
                            let status = r.status();
                            let text = r.text().await.unwrap_or_default();
                            if refused.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!("refused: {status} {text}");
                            }
                        }
                        Err(e) => {
                            if refused.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!("failed: {e}");
                            }
                        }
                    }
                }
                latencies
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = latencies;
    latencies.sort_unstable();
    let acked = acked.load(Ordering::Relaxed);
    let rate = acked as f64 / elapsed;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "front door: {acked} signed interview events acknowledged durably in {elapsed:.1} s over {connections} connections: {rate:.0} events/s (target 5,000/s: {}); latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} not acknowledged; load average {}",
        if rate >= 5_000.0 { "met" } else { "MISSED" },
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        quantile(&latencies, 1.0),
        refused.load(Ordering::Relaxed),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    stop(&mut daemon);
}

/// Joins futures without another dependency: each is spawned on the
/// runtime and awaited in order.
async fn futures_join<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Stops the daemon with SIGTERM and waits for it.
fn stop(daemon: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(daemon.id().to_string())
        .status();
    let _ = daemon.wait();
}
