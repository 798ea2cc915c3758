//! `nudge run` from start to exit: configuration to channels, the store,
//! the campaigns, the daemon, the admin API, signals and file watching.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

use super::campaigns::LoadFailure;
use super::client::{settings, sources};
use super::clock::Clock;
use super::core::{check_start, Core, StartRefusal};
use super::daemon::{self, load_all, render_failure, Options};
use crate::channels::Channels;
use crate::config::Config;
use crate::engine::Channel;
use crate::store::{SledStore, StoreError};

/// Why the daemon could not run.
#[derive(Debug)]
pub enum RunError {
    Store(StoreError),
    Start(StartRefusal),
    Campaigns(LoadFailure),
    Channel {
        channel: Channel,
        why: String,
    },
    Listen {
        addr: SocketAddr,
        why: String,
    },
    ListenPublic {
        addr: SocketAddr,
        why: String,
    },
    Io(std::io::Error),
    /// Asked to stop, it could not finish within its time (a store write
    /// that does not return).
    StuckOnStop,
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Store(e) => write!(f, "{e}"),
            RunError::Start(e) => write!(f, "{e}"),
            RunError::Campaigns(failure) if failure.diagnostics.is_empty() => write!(
                f,
                "cannot load the campaigns, nothing was started: {}",
                render_failure(failure)
            ),
            RunError::Campaigns(failure) => write!(
                f,
                "the campaigns do not check, nothing was started:\n{}",
                render_failure(failure)
            ),
            RunError::Channel { channel, why } => write!(f, "channel {channel}: {why}"),
            RunError::Listen { addr, why } => {
                write!(f, "cannot listen on {addr} for the admin API: {why}")
            }
            RunError::ListenPublic { addr, why } => write!(
                f,
                "cannot listen on {addr} for the public server ([server] listen in nudge.toml): {why}"
            ),
            RunError::Io(e) => write!(f, "{e}"),
            RunError::StuckOnStop => {
                f.write_str("stopped without finishing: a store write did not return (see the log)")
            }
        }
    }
}

impl std::error::Error for RunError {}

/// The backends the configuration names.
pub fn channels_from(config: &Config) -> Result<Channels, RunError> {
    let make = |channel: Channel| {
        config
            .channels
            .get(channel)
            .build(channel)
            .map_err(|why| RunError::Channel { channel, why })
    };
    Ok(Channels::new(
        make(Channel::Email)?,
        make(Channel::Sms)?,
        make(Channel::Whatsapp)?,
        make(Channel::Webhook)?,
    ))
}

/// The pace of each channel, from `[rates]`.
pub fn rates_from(config: &Config) -> Vec<(Channel, super::policy::Rate)> {
    let r = &config.rates;
    [
        (Channel::Email, r.email),
        (Channel::Sms, r.sms),
        (Channel::Whatsapp, r.whatsapp),
        (Channel::Webhook, r.webhook),
    ]
    .into_iter()
    .map(|(c, rate)| {
        (
            c,
            super::policy::Rate {
                per_second: rate.per_second,
                per_minute: rate.per_minute,
            },
        )
    })
    .collect()
}

/// Runs the daemon until SIGTERM or Ctrl-C.
pub async fn run(config: Config, clock: Arc<dyn Clock>) -> Result<(), RunError> {
    // A token from the environment that will be refused is refused before
    // anything is made.
    config.admin_token_from_env().map_err(RunError::Io)?;
    // The store's recovery and the campaigns, templates and channels load side
    // by side: a restart's first send waits for the slower of the two.
    // A first run checks the campaigns before the store is made, so a
    // start in the wrong folder creates nothing there.
    let first = if config.store.exists() {
        None
    } else {
        Some(load_all(&sources(&config)).map_err(RunError::Campaigns)?)
    };
    let opening = std::time::Instant::now();
    let store_path = config.store.clone();
    let store = std::thread::spawn(move || {
        let store = SledStore::open(&store_path, 128 << 20);
        (store, opening.elapsed())
    });
    let loaded = match first {
        Some(loaded) => Ok(loaded),
        None => load_all(&sources(&config)).map_err(RunError::Campaigns),
    };
    let channels = channels_from(&config);
    let (store, opened) = store
        .join()
        .map_err(|_| RunError::Io(std::io::Error::other("opening the store panicked")))?;
    let store = store.map_err(RunError::Store)?;
    // Reports and the dashboard read the traces from memory once the first
    // report has read them from the store.
    store.keep_traces_in_memory();
    let (campaigns, templates) = loaded?;
    check_start(&store, &campaigns).map_err(RunError::Start)?;
    let channels = Arc::new(channels?);
    let token = config.admin_token().map_err(RunError::Io)?;
    let listener = tokio::net::TcpListener::bind(config.admin.listen)
        .await
        .map_err(|e| RunError::Listen {
            addr: config.admin.listen,
            why: e.to_string(),
        })?;
    let public_listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| RunError::ListenPublic {
            addr: config.server.listen,
            why: e.to_string(),
        })?;
    let public_addr = public_listener.local_addr().map_err(RunError::Io)?;

    // Through the log, not stderr: with `--log-format json` every line a
    // collector reads is one JSON object.
    info!(
        store = %config.store.display(),
        opened_ms = u64::try_from(opened.as_millis()).unwrap_or(u64::MAX),
        "store opened"
    );
    info!(
        url = %format!("http://{}", config.admin.listen),
        "admin API listening (token required)"
    );
    info!(
        listen = %public_addr,
        public_url = %config.server.base(),
        "public server listening (tracked links, apply form, webhooks)"
    );
    for (name, c) in campaigns.iter() {
        info!(
            campaign = %name,
            version = %c.version,
            states = c.machine.states.len(),
            file = %c.file,
            "campaign loaded"
        );
    }
    if campaigns.is_empty() {
        warn!("no campaigns loaded from {}", config.campaigns.display());
    }
    for kind in Channel::ALL {
        info!(channel = %kind, backend = %channels.get(kind).describe(), "channel ready");
    }
    if channels.only_console() {
        warn!("only the console channel is configured: messages are printed here, not sent");
    }

    let mut core = Core::new(store, campaigns, templates, settings(&config));
    core.set_retention(
        config
            .runtime
            .history_days
            .map(|days| chrono::Duration::days(days.into())),
    );
    let running = daemon::start(Options {
        core,
        channels: channels.clone(),
        clock,
        concurrency: config.runtime.concurrency,
        rates: rates_from(&config),
        batch: config.runtime.batch,
        sources: sources(&config),
    })
    .map_err(RunError::Store)?;
    let handle = running.handle.clone();
    let decider = tokio::spawn(super::decider::watch(handle.clone(), config.decided));

    let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
    let digest = config.digest.clone().map(|digest| {
        info!(schedule = %digest.schedule, timezone = %digest.timezone, "weekly digest on");
        tokio::spawn(super::digest::run(
            handle.clone(),
            channels.clone(),
            digest,
            shutdown_rx.clone(),
        ))
    });
    let app = crate::server::admin::router(handle.clone(), token.clone())
        .merge(crate::server::dashboard::routes(
            handle.clone(),
            token.clone(),
            &config,
        ))
        .merge(crate::server::metrics::routes(
            handle.clone(),
            token.clone(),
            config.metrics,
        ))
        .merge(crate::server::digest::routes(
            handle.clone(),
            token,
            config.digest.clone(),
        ));
    let mut public_shutdown = shutdown_rx.clone();
    let server = tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown_rx.changed().await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            error!(%e, "admin API stopped");
        }
    });
    let public_app = crate::server::public::router(crate::server::public::PublicState {
        handle: handle.clone(),
        config: Arc::new(config.clone()),
    });
    let public_server = tokio::spawn(async move {
        let stop = async move {
            let _ = public_shutdown.changed().await;
        };
        if let Err(e) = axum::serve(public_listener, public_app)
            .with_graceful_shutdown(stop)
            .await
        {
            error!(%e, "public server stopped");
        }
    });

    let watched: Vec<PathBuf> = [config.campaigns.clone(), config.templates.clone()]
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    let (change_tx, mut change_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let _watcher = watch(&watched, change_tx);

    let mut term = signal(SignalKind::terminate()).map_err(RunError::Io)?;
    let mut hup = signal(SignalKind::hangup()).map_err(RunError::Io)?;
    info!("running");
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: finishing deliveries in flight"); break; }
            _ = tokio::signal::ctrl_c() => { info!("Ctrl-C: finishing deliveries in flight"); break; }
            _ = hup.recv() => reload(&handle, "SIGHUP").await,
            Some(()) = change_rx.recv() => {
                // Editors write in several steps: wait for the files to settle.
                tokio::time::sleep(StdDuration::from_millis(300)).await;
                while change_rx.try_recv().is_ok() {}
                reload(&handle, "files changed").await;
            }
        }
    }
    let _ = shutdown_tx.send(true);
    decider.abort();
    let health = handle.health().clone();
    let stopping = async {
        let _ = server.await;
        let _ = public_server.await;
        if let Some(digest) = digest {
            let _ = digest.await;
        }
        running.stop().await;
    };
    let started = tokio::time::Instant::now();
    let overdue = async {
        loop {
            tokio::time::sleep(StdDuration::from_millis(100)).await;
            let limit = match health.trouble() {
                Some(_) => STOP_WITHIN_TROUBLED,
                None => STOP_WITHIN,
            };
            if started.elapsed() >= limit {
                return limit;
            }
        }
    };
    let late = tokio::select! {
        _ = stopping => None,
        limit = overdue => Some(limit),
    };
    if let Some(limit) = late {
        // The core is inside a store write that does not return (a stalled
        // disk). Everything acknowledged was flushed before it was
        // acknowledged, and the next start resolves the sends in flight,
        // as after a crash: leave without waiting for it.
        error!(
            seconds = limit.as_secs(),
            "did not stop in time: a store write has not returned; exiting without it (nothing acknowledged is lost; sends in flight are resolved at the next start)"
        );
        return Err(RunError::StuckOnStop);
    }
    info!("stopped cleanly");
    Ok(())
}

/// How long a stop may take (deliveries in flight finishing, the last
/// commit) before the daemon leaves without finishing; and how long while
/// the store is in trouble (a stalled or failing disk), when waiting longer
/// would not help.
const STOP_WITHIN: StdDuration = StdDuration::from_secs(30);
const STOP_WITHIN_TROUBLED: StdDuration = StdDuration::from_secs(3);

async fn reload(handle: &daemon::Handle, why: &str) {
    match handle.reload().await {
        Ok(report) if report.changed.is_empty() => info!(why, "reload: nothing changed"),
        Ok(report) => info!(why, changed = ?report.changed, "reloaded"),
        Err(e) => warn!(why, "{e}"),
    }
}

fn watch(
    paths: &[PathBuf],
    tx: tokio::sync::mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event {
            if !e.kind.is_access() {
                let _ = tx.send(());
            }
        }
    })
    .map_err(|e| warn!(%e, "cannot watch the campaign files; reload with SIGHUP"))
    .ok()?;
    for p in paths {
        if let Err(e) = watcher.watch(p, RecursiveMode::Recursive) {
            warn!(%e, path = %p.display(), "cannot watch; reload with SIGHUP");
        }
    }
    Some(watcher)
}
