//! `cargo bench --bench smtp`: emails per second through the SMTP channel
//! to an SMTP server on loopback (mailin-embedded, in this process, one
//! thread per session), on however many cores the machine has.
//!
//! Each email is the warehouse invite rendered from `templates/`, with an
//! HTML alternative and a one-click unsubscribe link (about 1.6 KB on the
//! wire). Rows:
//!
//! - lettre's own pooled transport, for comparison: one write for the
//!   message and another for the final `.`, no `TCP_NODELAY`;
//! - nudge's channel at several pool sizes;
//! - nudge's channel with DKIM signing every email (RSA 2048, Ed25519).
//!
//! Environment: `SMTP_BENCH_EMAILS` (default 20000) emails per nudge row.
//! Numbers go to the README; nothing here asserts on time.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::DateTime;
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mailin_embedded::{response, Handler, Response, Server};
use nudge::channels::{Message, SmtpChannel};
use nudge::config::{parse_str, Transport, FILE_NAME};
use nudge::engine::Channel;
use nudge::templates::{Templates, Vars};

/// Counts emails and their bytes; keeps nothing.
#[derive(Clone, Default)]
struct Counter {
    emails: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
}

impl Handler for Counter {
    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.bytes.fetch_add(buf.len(), Ordering::Relaxed);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.emails.fetch_add(1, Ordering::Relaxed);
        response::OK
    }
}

fn start_server(counter: &Counter, sessions: u32) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let addr = listener.local_addr().expect("an address");
    let mut server = Server::new(counter.clone());
    server
        .with_name("bench.test")
        .with_num_threads(sessions)
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    addr
}

fn messages(count: usize) -> Vec<Message> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let templates = Templates::load(&root.join("templates")).expect("the example templates");
    let mut vars = Vars::sample();
    let unsubscribe = "https://jobs.example.com/u/36d4a5f8c5acba255a8543ec388023d4";
    vars.unsubscribe_link = Some(unsubscribe.to_string());
    let rendered = templates
        .render("invite-short", Channel::Email, None, &vars)
        .expect("invite-short renders");
    let html = format!(
        "<p>Hi Ana,</p>\n<p>Thanks for applying for Warehouse Associate. The next step is a \
         short online interview: about 10 minutes.</p>\n<p><a href=\"{}\">Start here</a></p>\n\
         <p>The recruiting team<br>Example Co</p>\n<p><a href=\"{unsubscribe}\">Unsubscribe</a></p>\n",
        vars.link
    );
    (0..count)
        .map(|i| Message {
            key: format!("warehouse_associate/c-{i}/invite/0"),
            campaign: "warehouse_associate".to_string(),
            candidate: format!("c-{i}"),
            template: "invite-short".to_string(),
            channel: Channel::Email,
            to: format!("candidate{i}@example.com"),
            subject: rendered.subject.clone(),
            body: rendered.body.clone(),
            html: Some(html.clone()),
            unsubscribe_url: Some(unsubscribe.to_string()),
            scheduled_at: DateTime::parse_from_rfc3339("2026-11-28T15:00:00Z")
                .expect("an instant")
                .to_utc(),
            in_flight: false,
        })
        .collect()
}

fn channel(addr: SocketAddr, pool_size: usize, extra: &str) -> SmtpChannel {
    let toml = format!(
        r#"
[channels.email]
transport = "smtp"
host = "{}"
port = {}
security = "plain"
hello_name = "nudge.bench"
from = "Dana Ruiz <jobs@example.com>"
pool_size = {pool_size}
{extra}
"#,
        addr.ip(),
        addr.port()
    );
    let config = parse_str(FILE_NAME, &toml)
        .unwrap_or_else(|e| panic!("{}", e.render(false)))
        .resolve(Path::new(env!("CARGO_MANIFEST_DIR")));
    let Transport::Smtp(smtp) = &config.channels.email else {
        panic!("not smtp");
    };
    SmtpChannel::new(smtp).expect("the channel")
}

/// Delivers every message with `tasks` tasks at once; returns the time.
async fn run_nudge(smtp: Arc<SmtpChannel>, msgs: Arc<Vec<Message>>, tasks: usize) -> Duration {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let (smtp, msgs, next) = (Arc::clone(&smtp), Arc::clone(&msgs), Arc::clone(&next));
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(msg) = msgs.get(i) else { break };
                    smtp.deliver(msg).await.expect("delivered");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a worker");
    }
    started.elapsed()
}

/// The same emails through lettre's `AsyncSmtpTransport` and its pool.
async fn run_lettre(addr: SocketAddr, msgs: &[Message], pool_size: u32) -> Duration {
    let transport: AsyncSmtpTransport<Tokio1Executor> =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
            .port(addr.port())
            .hello_name(ClientId::Domain("lettre.bench".to_string()))
            .pool_config(PoolConfig::new().max_size(pool_size))
            .build();
    let emails: Vec<lettre::Message> = msgs
        .iter()
        .map(|m| {
            lettre::Message::builder()
                .from("Dana Ruiz <jobs@example.com>".parse().expect("a mailbox"))
                .to(m.to.parse().expect("a mailbox"))
                .subject(m.subject.clone().unwrap_or_default())
                .multipart(lettre::message::MultiPart::alternative_plain_html(
                    m.body.clone(),
                    m.html.clone().unwrap_or_default(),
                ))
                .expect("an email")
        })
        .collect();
    let transport = Arc::new(transport);
    let emails = Arc::new(emails);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..pool_size)
        .map(|_| {
            let (transport, emails, next) = (
                Arc::clone(&transport),
                Arc::clone(&emails),
                Arc::clone(&next),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(email) = emails.get(i) else { break };
                    transport.send(email.clone()).await.expect("sent");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a worker");
    }
    started.elapsed()
}

fn row(label: &str, emails: usize, took: Duration) {
    println!(
        "  {label:<34} {emails:>6} emails {:>8.0} ms {:>8.0} emails/s",
        took.as_secs_f64() * 1000.0,
        emails as f64 / took.as_secs_f64()
    );
}

fn main() {
    let count: usize = std::env::var("SMTP_BENCH_EMAILS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .expect("a runtime");
    let counter = Counter::default();
    let addr = start_server(&counter, 64);
    let msgs = Arc::new(messages(count));

    println!(
        "SMTP to mailin-embedded on loopback, {cores} cores, the warehouse invite \
         (text + HTML + List-Unsubscribe)"
    );
    runtime.block_on(async {
        // lettre alone is slow here: a few hundred emails are enough.
        for pool in [1u32, 8] {
            let n = 100 * pool as usize;
            let took = run_lettre(addr, &msgs[..n], pool).await;
            row(&format!("lettre pool, {pool} connections"), n, took);
        }
        for pool in [1usize, 2, 4, 8] {
            let smtp = Arc::new(channel(addr, pool, ""));
            // Warm the pool so connecting is not counted.
            let warm = Arc::new(msgs[..pool].to_vec());
            run_nudge(Arc::clone(&smtp), warm, pool).await;
            let took = run_nudge(smtp, Arc::clone(&msgs), pool * 2).await;
            row(&format!("nudge, pool {pool}"), count, took);
        }
        let dkim = r#"dkim = { domain = "example.com", selector = "bench", private_key_path = "tests/it/fixtures/smtp/dkim-test.pem" }"#;
        let smtp = Arc::new(channel(addr, 8, dkim));
        let n = count.min(5_000);
        let took = run_nudge(smtp, Arc::new(msgs[..n].to_vec()), 16).await;
        row("nudge, pool 8, DKIM RSA-2048", n, took);
        let dkim = r#"dkim = { domain = "example.com", selector = "bench", algorithm = "ed25519", private_key_path = "tests/it/fixtures/smtp/dkim-test-ed25519.key" }"#;
        let smtp = Arc::new(channel(addr, 8, dkim));
        let took = run_nudge(smtp, Arc::clone(&msgs), 16).await;
        row("nudge, pool 8, DKIM Ed25519", count, took);
    });
    let emails = counter.emails.load(Ordering::Relaxed);
    let bytes = counter.bytes.load(Ordering::Relaxed);
    println!(
        "  server received {emails} emails, {} bytes each on average",
        bytes / emails.max(1)
    );
}
