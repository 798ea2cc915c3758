//! `nudge run`: the daemon around the core.
//!
//! - The **core thread** owns the single writer ([`Core`]). It sleeps until
//!   the next due timer or a new command, then runs a batch of commands and
//!   a batch of due timers, each as one atomic, flushed commit, and only
//!   then answers the callers and hands the new sends to the dispatcher.
//! - The **dispatcher** marks sends in flight (durably) before calling a
//!   channel, delivers them with a per-channel concurrency limit, and
//!   reports each outcome back to the core. Sends to an unpaced channel
//!   that drops a repeated key are mostly marked in flight by the core's
//!   commit that queues them instead.
//! - The **admin API** (loopback, with a token) and the CLI talk to the core
//!   through a [`Handle`].
//! - SIGTERM and Ctrl-C finish the deliveries in flight, record them, and
//!   exit 0; SIGHUP and changes to the campaign or template files reload
//!   after a check, keeping the running version when the check fails or
//!   when candidates wait in a state the new version removes.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;

use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use super::api::{
    ApplyRequest, ApplyResponse, CandidateView, EnrollRequest, EnrollResponse, EventRequest,
    EventResponse, ReloadReport, StatusReport, SuppressRequest, SuppressResponse, SuppressionView,
    UnsuppressRequest, UnsuppressResponse,
};
use super::campaigns::{Campaigns, LoadFailure};
use super::clock::Clock;
use super::core::{Command, Core, Landed, Reply, This, PRUNE_CHUNK};
use super::health::Health;
use super::policy::{Limiter, Rate};
use super::query;
use super::refusal::Refusal;
use crate::channels::{Channels, Message, SendError};
use crate::engine::{Channel, Instant};
use crate::templates::Templates;

/// Sends handed from the core to the dispatcher but not yet to a channel
/// are at most this many: past it the core stops firing timers until the
/// channels catch up, so memory stays bounded under any backlog.
const MAX_BACKLOG: usize = 16_384;

/// The core's way to the dispatcher, counting what waits there.
#[derive(Clone)]
struct Outbound {
    tx: mpsc::UnboundedSender<Message>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    metrics: Arc<super::metrics::Metrics>,
}

impl Outbound {
    fn send(&self, m: Message) {
        self.waiting
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.tx.send(m).is_err() {
            self.waiting
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn room(&self) -> usize {
        MAX_BACKLOG.saturating_sub(self.waiting.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// Messages to the core thread.
enum CoreMsg {
    Command(Command, Option<oneshot::Sender<Reply>>),
    Reload(
        Campaigns,
        Option<Arc<Templates>>,
        oneshot::Sender<Result<ReloadReport, Refusal>>,
    ),
    /// `nudge backup`: a copy of the store, taken between two batches.
    Backup(
        PathBuf,
        oneshot::Sender<Result<crate::store::sled::Copied, Refusal>>,
    ),
    /// The weekly digest is next due then (`runtime::digest`).
    DigestDue(Instant, oneshot::Sender<Result<(), Refusal>>),
    Stop,
}

/// Where the campaigns and templates are read from, for reloads.
#[derive(Debug, Clone)]
pub struct Sources {
    pub campaigns: PathBuf,
    pub templates: PathBuf,
}

/// A way to reach the running core from async code.
#[derive(Clone)]
pub struct Handle {
    tx: Sender<CoreMsg>,
    store: crate::store::SledStore,
    campaigns: Arc<RwLock<Campaigns>>,
    clock: Arc<dyn Clock>,
    tracked_link: String,
    sources: Sources,
    health: Health,
    metrics: Arc<super::metrics::Metrics>,
}

impl Handle {
    /// Asks the core, and waits for its answer; while the store cannot be
    /// written (or once it turns out it cannot), the answer is at once
    /// that it cannot. A command given up on that way is dropped by the
    /// core unrun.
    async fn call(&self, command: Command) -> Result<Reply, Refusal> {
        if let Some(trouble) = self.health.trouble() {
            return Err(Refusal::StoreTrouble(trouble.to_string()));
        }
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(CoreMsg::Command(command, Some(tx)))
            .map_err(|_| Refusal::ShuttingDown)?;
        tokio::select! {
            reply = rx => reply.map_err(|_| Refusal::ShuttingDown),
            trouble = self.health.troubled() => Err(Refusal::StoreTrouble(trouble.to_string())),
        }
    }

    /// Whether the store can be written.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Asks the core, and takes the answer `take` expects (a refusal is an
    /// error, and so is an answer of another kind, a bug).
    async fn ask<T>(
        &self,
        command: Command,
        take: impl FnOnce(Reply) -> Option<T>,
    ) -> Result<T, Refusal> {
        match self.call(command).await? {
            Reply::Error(e) => Err(e),
            reply => take(reply)
                .ok_or_else(|| Refusal::Internal("the core gave an answer of another kind".into())),
        }
    }

    /// Sends a command without waiting for its answer.
    fn tell(&self, command: Command) {
        let _ = self.tx.send(CoreMsg::Command(command, None));
    }

    pub async fn enroll(&self, req: EnrollRequest) -> Result<EnrollResponse, Refusal> {
        self.ask(Command::Enroll(req), |reply| match reply {
            Reply::Enrolled(r) => Some(r),
            _ => None,
        })
        .await
    }

    /// An application: see [`ApplyRequest`].
    pub async fn apply(&self, req: ApplyRequest) -> Result<ApplyResponse, Refusal> {
        self.ask(Command::Apply(req), |reply| match reply {
            Reply::Applied(r) => Some(r),
            _ => None,
        })
        .await
    }

    pub async fn event(&self, req: EventRequest) -> Result<EventResponse, Refusal> {
        self.ask(Command::Event(req), |reply| match reply {
            Reply::Event(r) => Some(r),
            _ => None,
        })
        .await
    }

    pub async fn set_paused(&self, campaign: String, paused: bool) -> Result<(), Refusal> {
        self.ask(
            Command::SetPaused { campaign, paused },
            |reply| match reply {
                Reply::Done => Some(()),
                _ => None,
            },
        )
        .await
    }

    pub async fn suppress(&self, req: SuppressRequest) -> Result<SuppressResponse, Refusal> {
        self.ask(Command::Suppress(req), |reply| match reply {
            Reply::Suppressed(r) => Some(r),
            _ => None,
        })
        .await
    }

    pub async fn unsuppress(&self, req: UnsuppressRequest) -> Result<UnsuppressResponse, Refusal> {
        self.ask(Command::Unsuppress(req), |reply| match reply {
            Reply::Unsuppressed(r) => Some(r),
            _ => None,
        })
        .await
    }

    /// The store, for reads that do not go through the core (reports,
    /// metrics, the dashboard).
    pub fn store(&self) -> &crate::store::SledStore {
        &self.store
    }

    /// The campaigns loaded now.
    pub fn campaigns_now(&self) -> Campaigns {
        self.campaigns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The clock the daemon runs on.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// `nudge export` through the daemon: the event log of the enrollments
    /// `filter` selects, written to `out` (a blocking writer).
    pub fn export(
        &self,
        filter: &crate::report::export::Filter,
        out: impl std::io::Write,
    ) -> Result<crate::report::export::Exported, crate::report::export::ExportError> {
        let campaigns = self.campaigns_now();
        let decisions = crate::runtime::decider::decisions_by_campaign(&self.store)?;
        crate::report::export::export(&self.store, &campaigns, &decisions, filter, out)
    }

    pub fn suppressions(&self) -> Result<Vec<SuppressionView>, Refusal> {
        query::suppressions(&self.store)
    }

    pub fn status(&self, campaign: Option<&str>) -> Result<StatusReport, Refusal> {
        let campaigns = self
            .campaigns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let trouble = self.health.trouble();
        let mut report = query::status(&self.store, &campaigns, campaign, self.clock.now())
            .map_err(|e| match &trouble {
                // The store is closed while it is opened again: say why.
                Some(t) => Refusal::StoreTrouble(t.to_string()),
                None => e,
            })?;
        report.store_trouble = trouble.map(|t| t.to_string());
        Ok(report)
    }

    /// The candidates an `import --review` left waiting.
    pub fn reviewed(&self) -> Result<Vec<crate::intake::review::Reviewed>, Refusal> {
        crate::intake::review::pending(&self.store)
    }

    pub fn show(&self, who: &str) -> Result<CandidateView, Refusal> {
        let campaigns = self
            .campaigns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let trouble = self.health.trouble();
        let mut view = query::show(&self.store, &campaigns, who, &self.tracked_link)?;
        view.store_trouble = trouble.map(|t| t.to_string());
        Ok(view)
    }

    /// Writes a copy of the store into `dir` on the core's thread, between
    /// two batches (so the copy is consistent).
    pub async fn backup(&self, dir: PathBuf) -> Result<crate::store::sled::Copied, Refusal> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(CoreMsg::Backup(dir, tx))
            .map_err(|_| Refusal::ShuttingDown)?;
        rx.await.map_err(|_| Refusal::ShuttingDown)?
    }

    /// Lifts a candidate's opt-out (see `core::opt_in`).
    pub async fn opt_in(
        &self,
        req: super::api::OptInRequest,
    ) -> Result<super::api::OptInResponse, Refusal> {
        self.ask(Command::OptIn(req), |reply| match reply {
            Reply::OptedIn(r) => Some(r),
            _ => None,
        })
        .await
    }

    /// The candidates reached at `contact` (see [`super::inbound`]).
    pub fn candidates_at(
        &self,
        contact: &crate::store::Contact,
    ) -> Result<Vec<crate::store::CandidateRecord>, Refusal> {
        super::inbound::candidates_at(&self.store, contact)
    }

    /// The send whose key is `key`, if this store has it.
    pub fn send_of(&self, key: &str) -> Result<Option<Message>, Refusal> {
        super::inbound::send_of(&self.store, key)
    }

    /// Loads and checks the campaign and template files, then swaps them in
    /// unless the core refuses. A failed check keeps the running version.
    pub async fn reload(&self) -> Result<ReloadReport, Refusal> {
        let sources = self.sources.clone();
        let loaded = tokio::task::spawn_blocking(move || load_all(&sources))
            .await
            .map_err(|e| Refusal::Internal(e.to_string()))?;
        let (campaigns, templates) =
            loaded.map_err(|failure| Refusal::ReloadDoesNotCheck(render_failure(&failure)))?;
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(CoreMsg::Reload(campaigns.clone(), templates, tx))
            .map_err(|_| Refusal::ShuttingDown)?;
        let report = rx.await.map_err(|_| Refusal::ShuttingDown)??;
        *self.campaigns.write().unwrap_or_else(|p| p.into_inner()) = campaigns;
        Ok(report)
    }

    /// The candidate whose link token is `token` and where their tracked
    /// link leads (`None`: no one has it), read beside the writer like
    /// [`Handle::show`].
    pub fn linked(&self, token: &str) -> Result<Option<super::links::Linked>, Refusal> {
        let campaigns = self
            .campaigns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        super::links::resolve(&self.store, &campaigns, token)
    }

    /// The campaign running under `name` (the public apply form reads its
    /// title, channels and `where` filter).
    pub fn campaign(&self, name: &str) -> Option<Arc<super::campaigns::Campaign>> {
        self.campaigns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Whether `campaign` is paused (`nudge pause`).
    pub fn paused(&self, campaign: &str) -> Result<bool, Refusal> {
        use crate::store::Store;
        Ok(self.store.paused(campaign)?)
    }

    /// Records, in a commit of its own between two batches, when the
    /// weekly digest is next due (see `runtime::digest`).
    pub async fn set_digest_due(&self, due: Instant) -> Result<(), Refusal> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(CoreMsg::DigestDue(due, tx))
            .map_err(|_| Refusal::ShuttingDown)?;
        rx.await.map_err(|_| Refusal::ShuttingDown)?
    }

    /// The metrics in the Prometheus (OpenMetrics) text format, the
    /// store's gauges read now (see [`super::metrics`]).
    pub fn metrics_text(&self) -> Result<String, Refusal> {
        Ok(self.metrics.render(&self.store, self.store.path())?)
    }

    /// Stores an `until decided` experiment's decision (see `core::decide`).
    pub async fn decide(
        &self,
        req: super::core::DecideRequest,
    ) -> Result<super::core::Decided, Refusal> {
        self.ask(Command::Decide(req), |reply| match reply {
            Reply::Decided(d) => Some(d),
            _ => None,
        })
        .await
    }

    /// The store, the campaigns running now and the time, for reading
    /// beside the writer (`runtime::decider`).
    pub fn reading(&self) -> (crate::store::SledStore, Campaigns, Instant) {
        let campaigns = self
            .campaigns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (self.store.clone(), campaigns, self.clock.now())
    }

    /// `nudge report` over the store (REPORT.md), read beside the core.
    pub fn report(
        &self,
        options: &crate::report::compute::Options,
    ) -> Result<crate::report::model::Report, Refusal> {
        let campaigns = self
            .campaigns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok(crate::report::stored::report(
            &self.store,
            &campaigns,
            options,
        )?)
    }

    /// The HTML report's charts over the store.
    pub fn charts(
        &self,
        options: &crate::report::compute::Options,
    ) -> Result<crate::report::charts::Charts, Refusal> {
        let campaigns = self.campaigns_now();
        Ok(crate::report::stored::charts(
            &self.store,
            &campaigns,
            options,
        )?)
    }
}

/// Loads campaigns (checked against the templates folder) and templates.
pub fn load_all(sources: &Sources) -> Result<(Campaigns, Option<Arc<Templates>>), LoadFailure> {
    let templates_dir = sources
        .templates
        .is_dir()
        .then_some(sources.templates.as_path());
    let (campaigns, _warnings, _) = Campaigns::load(&sources.campaigns, templates_dir)?;
    let templates = match templates_dir {
        Some(dir) => Some(Arc::new(Templates::load(dir).map_err(|e| LoadFailure {
            sources: Default::default(),
            diagnostics: Vec::new(),
            message: Some(e.to_string()),
        })?)),
        None => None,
    };
    Ok((campaigns, templates))
}

/// Diagnostics of a failed load, rendered like `nudge check`.
pub fn render_failure(failure: &LoadFailure) -> String {
    let mut text = crate::dsl::report::render(&failure.sources, &failure.diagnostics, false);
    if let Some(m) = &failure.message {
        text.push_str(m);
    }
    text
}

/// The running daemon's parts, for `nudge run` and tests.
pub struct Running {
    pub handle: Handle,
    core_thread: std::thread::JoinHandle<()>,
    dispatcher: tokio::task::JoinHandle<()>,
    stop_dispatch: tokio::sync::watch::Sender<bool>,
    watchdog: tokio::task::JoinHandle<()>,
}

/// Options of one daemon.
pub struct Options {
    pub core: Core,
    pub channels: Arc<Channels>,
    pub clock: Arc<dyn Clock>,
    pub concurrency: usize,
    /// The pace of each channel (none where absent).
    pub rates: Vec<(Channel, Rate)>,
    pub batch: usize,
    pub sources: Sources,
}

/// Starts the core thread and the dispatcher; recovers the sends that were
/// queued or in flight when the previous process stopped.
pub fn start(options: Options) -> Result<Running, crate::store::StoreError> {
    let Options {
        mut core,
        channels,
        clock,
        concurrency,
        rates,
        batch,
        sources,
    } = options;
    let (tx, rx) = std::sync::mpsc::channel();
    let (dispatch_tx, dispatch_rx) = mpsc::unbounded_channel();
    let campaigns = Arc::new(RwLock::new(core.campaigns().clone()));
    let handle = Handle {
        tx,
        store: core.store().clone(),
        campaigns: campaigns.clone(),
        clock: clock.clone(),
        tracked_link: core.settings().tracked_link.clone(),
        sources,
        health: Health::default(),
        metrics: Arc::new(super::metrics::Metrics::new().with_channels()),
    };
    core.pin_versions(&campaigns.read().unwrap_or_else(|p| p.into_inner()))?;
    // The sends the previous process left undelivered go first, a chunk at
    // a time from the core thread, so the first of them leaves without
    // waiting for the rest to be read.
    let (queued, in_flight) = core.begin_recovery();
    if queued + in_flight > 0 {
        info!(queued, in_flight, "resuming undelivered sends");
    }
    let idempotent: Vec<Channel> = Channel::ALL
        .into_iter()
        .filter(|c| channels.get(*c).idempotent())
        .collect();
    // Marked in flight by the commit that queues them: sends to a channel
    // that drops a repeated key and is not paced, while communications
    // are on.
    let unpaced = |c: &Channel| {
        !rates
            .iter()
            .any(|(r, rate)| r == c && *rate != Rate::default())
    };
    if !core.settings().communications_off {
        core.mark_in_flight_when_queued(idempotent.iter().copied().filter(unpaced).collect());
    }
    let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let outbound = Outbound {
        tx: dispatch_tx,
        waiting: waiting.clone(),
        metrics: handle.metrics.clone(),
    };
    let core_clock = clock.clone();
    let health = handle.health.clone();
    let core_thread = std::thread::Builder::new()
        .name("nudge-core".into())
        .spawn(move || core_loop(core, rx, core_clock, outbound, batch, idempotent, health))
        .map_err(crate::store::StoreError::Io)?;
    let watchdog = tokio::spawn(watch_writes(handle.clone()));
    let (stop_dispatch, stop_rx) = tokio::sync::watch::channel(false);
    let dispatcher = tokio::spawn(dispatch_loop(
        dispatch_rx,
        handle.clone(),
        channels,
        concurrency,
        rates,
        waiting,
        stop_rx,
    ));
    Ok(Running {
        handle,
        core_thread,
        dispatcher,
        stop_dispatch,
        watchdog,
    })
}

impl Running {
    /// Graceful stop: deliveries in flight finish and are recorded, the
    /// core commits what it holds, and everything is flushed.
    pub async fn stop(self) {
        let _ = self.stop_dispatch.send(true);
        let _ = self.dispatcher.await;
        let _ = self.handle.tx.send(CoreMsg::Stop);
        let thread = self.core_thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        // Awaited, so that its handle on the store is gone when this
        // returns (the store can be opened again at once).
        self.watchdog.abort();
        let _ = self.watchdog.await;
    }
}

/// A write that has not returned after this long is a stall.
const STALL: StdDuration = StdDuration::from_secs(5);

/// Watches the store's writes from outside the core (whose thread is inside
/// the write when one stalls), so that a stall is seen and callers are
/// answered.
async fn watch_writes(handle: Handle) {
    use crate::store::Store;
    let mut tick = tokio::time::interval(StdDuration::from_millis(500));
    loop {
        tick.tick().await;
        let running = handle.store.write_running_for();
        let was = handle.health.trouble();
        handle
            .health
            .write_running(running, STALL, chrono::Utc::now());
        match (was.is_some(), handle.health.trouble()) {
            (false, Some(t)) => error!("{t}"),
            (true, None) => info!("the stalled store write finished: resuming"),
            _ => {}
        }
    }
}

/// Undelivered sends read back per step of the startup recovery.
const RECOVERY_CHUNK: usize = 256;

/// How many upcoming timers [`Core::rehearse`] steps while the core waits
/// (about 50 ms of a burst at 10,000 sends a second).
const REHEARSAL: usize = 512;
/// A rehearsal runs when the next timer is due between these two waits:
/// not so close that it would delay the timer, not so far that its warmth
/// is gone.
const REHEARSAL_LEAD: StdDuration = StdDuration::from_millis(50);
const REHEARSAL_HORIZON: StdDuration = StdDuration::from_secs(2);

fn core_loop(
    mut core: Core,
    rx: Receiver<CoreMsg>,
    clock: Arc<dyn Clock>,
    dispatch: Outbound,
    batch: usize,
    idempotent: Vec<Channel>,
    health: Health,
) {
    // While writes fail: when to try again, the wait after that, and the
    // channels' answers held until they can be recorded.
    let mut retry_at = std::time::Instant::now();
    let mut retry_wait = FIRST_RETRY;
    let mut held: Vec<Command> = Vec::new();
    let batch = crate::config::RuntimeConfig::BATCH.clamp_usize(batch);
    let mut busy = true;
    let mut preloaded = false;
    let mut rehearsed: Option<Instant> = None;
    // The clients waiting for the batch being written behind.
    let mut flight: Vec<Option<oneshot::Sender<Reply>>> = Vec::new();
    let mut retries_looked = std::time::Instant::now();
    // When the next chunk of history may be pruned (while idle).
    let mut next_prune = std::time::Instant::now();
    // The timer (or retry) the idle core sleeps until, for the lateness
    // of its waking.
    let mut waking_for: Option<Instant> = None;
    loop {
        if health.writes_failing() {
            flight.clear();
            match stand_by(&rx, &mut held, &health, retry_at) {
                StandBy::Stop => break,
                StandBy::Wait => continue,
                StandBy::Try => {}
            }
            match core.recover_writes() {
                Ok(()) => {
                    info!("the store can be written again: resuming");
                    health.clear();
                    retry_wait = FIRST_RETRY;
                    let answers = std::mem::take(&mut held);
                    let none = answers.iter().map(|_| None).collect();
                    run_commands(&mut core, &clock, &dispatch, &health, answers, none);
                    busy = true;
                }
                Err(e) => {
                    warn!(%e, retry_in_s = retry_wait.as_secs(), "the store still cannot be written");
                    retry_at = std::time::Instant::now() + retry_wait;
                    retry_wait = (retry_wait * 2).min(LAST_RETRY);
                }
            }
            continue;
        }
        let wait = if dispatch.room() == 0 {
            // The channels are behind: let them catch up before firing more.
            StdDuration::from_millis(20)
        } else if busy {
            StdDuration::ZERO
        } else {
            match core.next_due() {
                Ok(Some(due)) => {
                    let wait = clock.real_until(due);
                    waking_for = Some(due);
                    if preloaded
                        && rehearsed.is_none_or(|last| due > last)
                        && (REHEARSAL_LEAD..=REHEARSAL_HORIZON).contains(&wait)
                    {
                        // Idle with a timer coming: warm up for it (once per
                        // `REHEARSAL` timers), then look again.
                        let last = core.rehearse(REHEARSAL).ok().flatten();
                        rehearsed = Some(last.map_or(due, |last| last.max(due)));
                        continue;
                    }
                    wait.min(StdDuration::from_secs(1))
                }
                Ok(None) => StdDuration::from_secs(1),
                Err(e) => {
                    error!(%e, "cannot read the timer index");
                    StdDuration::from_secs(1)
                }
            }
        };
        let wait = if core.prunes() {
            wait.min(next_prune.saturating_duration_since(std::time::Instant::now()))
        } else {
            wait
        };
        if !wait.is_zero() {
            // Nothing to build while the batch being written finishes.
            land(&mut core, &mut flight, &dispatch, &health);
        }
        let mut incoming = Vec::new();
        match rx.recv_timeout(wait) {
            Ok(m) => incoming.push(m),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if let Some(due) = waking_for.take() {
            let now = clock.now();
            if due <= now {
                dispatch.metrics.timer_fired(due, now);
            }
        }
        while incoming.len() < batch {
            match rx.try_recv() {
                Ok(m) => incoming.push(m),
                Err(_) => break,
            }
        }
        let mut stop = false;
        let mut commands = Vec::new();
        let mut waiting = Vec::new();
        for m in incoming {
            match m {
                // Given up on (the store was in trouble): never run.
                CoreMsg::Command(_, Some(reply)) if reply.is_closed() => {}
                CoreMsg::Command(c, reply) => {
                    commands.push(c);
                    waiting.push(reply);
                }
                CoreMsg::Reload(campaigns, templates, reply) => {
                    land(&mut core, &mut flight, &dispatch, &health);
                    run_commands(
                        &mut core,
                        &clock,
                        &dispatch,
                        &health,
                        std::mem::take(&mut commands),
                        std::mem::take(&mut waiting),
                    );
                    let result = core.reload(campaigns, clock.now());
                    if result.is_ok() {
                        core.set_templates(templates);
                    }
                    let _ = reply.send(result);
                }
                CoreMsg::Backup(dir, reply) => {
                    land(&mut core, &mut flight, &dispatch, &health);
                    run_commands(
                        &mut core,
                        &clock,
                        &dispatch,
                        &health,
                        std::mem::take(&mut commands),
                        std::mem::take(&mut waiting),
                    );
                    let _ = reply.send(core.store().backup_to(&dir).map_err(Refusal::from));
                }
                CoreMsg::DigestDue(due, reply) => {
                    land(&mut core, &mut flight, &dispatch, &health);
                    let _ = reply.send(record_digest_due(&core, due).map_err(Refusal::from));
                }
                CoreMsg::Stop => stop = true,
            }
        }
        let had_commands = !commands.is_empty();
        if core.recovering() {
            land(&mut core, &mut flight, &dispatch, &health);
            run_commands(&mut core, &clock, &dispatch, &health, commands, waiting);
            // The sends the previous process left undelivered go first, a
            // chunk at a time between commands (the dispatcher's among
            // them), so the first leaves without waiting for the rest.
            let chunk = RECOVERY_CHUNK.min(dispatch.room()).max(1);
            match core.recover_next(|c| idempotent.contains(&c), clock.now(), chunk) {
                Ok(pending) => {
                    for p in pending {
                        dispatch.send(p.message);
                    }
                }
                Err(e) => {
                    error!(%e, "resuming undelivered sends failed; they go when nudge restarts");
                    core.abandon_recovery();
                    if e.is_write_failure() {
                        health.writes_fail(e.to_string(), chrono::Utc::now());
                    }
                }
            }
            if stop {
                break;
            }
            busy = true;
            continue;
        }
        if !preloaded {
            // Who each candidate is, for enrollments: read once the sends
            // a restart found undelivered are on their way, so the read
            // does not compete with them.
            core.store().preload_identities();
            preloaded = true;
        }
        // The commands, then the timers due, in one batch (one flush for
        // both); a batch of enrollments is written behind while the next
        // batch is built, and answered and sent once it is written.
        let limit = batch.min(dispatch.room());
        let handoff = core.tick_behind(commands, clock.now(), limit);
        release(
            handoff.landed,
            std::mem::take(&mut flight),
            &dispatch,
            &health,
        );
        let fired = match handoff.this {
            This::Behind { fired } => {
                flight = waiting;
                fired
            }
            This::Written { landed, fired } => {
                release(Some(Ok(landed)), waiting, &dispatch, &health);
                fired
            }
            This::Failed(e) => {
                refuse(&e, waiting, &health);
                0
            }
        };
        busy = (fired == limit && fired > 0) || had_commands;
        if health.writes_failing() {
            // Tried again first thing next time round.
            retry_at = std::time::Instant::now() + retry_wait;
            if stop {
                break;
            }
            continue;
        }
        if !busy || stop || retries_looked.elapsed() >= RETRY_LOOK {
            // Idle, stopping, or a while since: the batch being written is
            // waited for, and the retries due (read from the store) go out.
            land(&mut core, &mut flight, &dispatch, &health);
            retries_looked = std::time::Instant::now();
            match core.retry_due(clock.now(), batch.min(dispatch.room())) {
                Ok(out) => {
                    busy |= out.len() == batch;
                    for m in out {
                        dispatch.metrics.retried(&m);
                        dispatch.send(m);
                    }
                }
                Err(e) => {
                    error!(%e, "resuming sends due for a retry failed; will retry");
                    if e.is_write_failure() {
                        health.writes_fail(e.to_string(), chrono::Utc::now());
                    }
                }
            }
        }
        if !busy && !stop && core.prunes() && std::time::Instant::now() >= next_prune {
            // Idle: a chunk of the store is looked at for history to prune,
            // in a commit of its own (the batch written behind has landed).
            next_prune = std::time::Instant::now()
                + match core.prune_some(clock.now(), PRUNE_CHUNK) {
                    Ok(done) => {
                        if done.pruned > 0 {
                            info!(candidates = done.pruned, "history pruned (retention)");
                        }
                        if done.wrapped {
                            PRUNE_REST
                        } else {
                            PRUNE_PACE
                        }
                    }
                    Err(e) => {
                        error!(%e, "pruning history failed; will try again");
                        PRUNE_REST
                    }
                };
        }
        if stop {
            break;
        }
    }
    land(&mut core, &mut flight, &dispatch, &health);
}

/// When the weekly digest is next due, in a commit of its own.
fn record_digest_due(core: &Core, due: Instant) -> Result<(), crate::store::StoreError> {
    use crate::store::{Store, Transaction};
    let mut txn = core.store().begin();
    txn.set_digest_due(due);
    txn.commit()
}

/// The pause between two chunks of history pruning while idle, and after
/// a pass over the whole store.
const PRUNE_PACE: StdDuration = StdDuration::from_millis(50);
const PRUNE_REST: StdDuration = StdDuration::from_secs(600);

/// How often a busy core looks for retries due.
const RETRY_LOOK: StdDuration = StdDuration::from_millis(100);

/// The first wait before trying a store whose writes failed again, and
/// the longest (the wait doubles in between).
const FIRST_RETRY: StdDuration = StdDuration::from_secs(1);
const LAST_RETRY: StdDuration = StdDuration::from_secs(8);

/// What the core does next while the store's writes fail.
enum StandBy {
    Stop,
    /// Look again (the loop comes back here).
    Wait,
    /// Time to try the store again.
    Try,
}

/// While the store's writes fail: every caller is answered at once that
/// nothing can be recorded, and the channels' answers are held (to be
/// recorded once the store can be written) until `retry_at`.
fn stand_by(
    rx: &Receiver<CoreMsg>,
    held: &mut Vec<Command>,
    health: &Health,
    retry_at: std::time::Instant,
) -> StandBy {
    let refusal = || {
        Refusal::StoreTrouble(
            health
                .trouble()
                .map_or_else(|| "the store cannot be written".into(), |t| t.to_string()),
        )
    };
    let wait = retry_at.saturating_duration_since(std::time::Instant::now());
    let mut next = match rx.recv_timeout(wait.min(StdDuration::from_millis(200))) {
        Ok(m) => Some(m),
        Err(RecvTimeoutError::Timeout) => None,
        Err(RecvTimeoutError::Disconnected) => return StandBy::Stop,
    };
    while let Some(m) = next {
        match m {
            CoreMsg::Stop => return StandBy::Stop,
            CoreMsg::Command(c @ Command::Delivered { .. }, None) => held.push(c),
            CoreMsg::Command(_, Some(reply)) => {
                let _ = reply.send(Reply::Error(refusal()));
            }
            CoreMsg::Command(_, None) => {}
            CoreMsg::Reload(_, _, reply) => {
                let _ = reply.send(Err(refusal()));
            }
            CoreMsg::Backup(_, reply) => {
                let _ = reply.send(Err(refusal()));
            }
            CoreMsg::DigestDue(_, reply) => {
                let _ = reply.send(Err(refusal()));
            }
        }
        next = rx.try_recv().ok();
    }
    if std::time::Instant::now() >= retry_at {
        StandBy::Try
    } else {
        StandBy::Wait
    }
}

/// Waits for the batch being written behind, then answers and sends it.
fn land(
    core: &mut Core,
    flight: &mut Vec<Option<oneshot::Sender<Reply>>>,
    dispatch: &Outbound,
    health: &Health,
) {
    release(core.land(), std::mem::take(flight), dispatch, health);
}

/// Answers a written batch's clients and hands its sends to the
/// dispatcher; a batch that was not written is refused instead.
fn release(
    landed: Option<Result<Landed, crate::store::StoreError>>,
    waiting: Vec<Option<oneshot::Sender<Reply>>>,
    dispatch: &Outbound,
    health: &Health,
) {
    match landed {
        None => {}
        Some(Ok(landed)) => {
            for (reply, tx) in landed.replies.into_iter().zip(waiting) {
                if let Some(tx) = tx {
                    let _ = tx.send(reply);
                }
            }
            for m in landed.out {
                dispatch.send(m);
            }
        }
        Some(Err(e)) => refuse(&e, waiting, health),
    }
}

/// Tells a batch's clients it was not recorded; a store that could not
/// write is in trouble until it can again.
fn refuse(
    e: &crate::store::StoreError,
    waiting: Vec<Option<oneshot::Sender<Reply>>>,
    health: &Health,
) {
    error!(%e, "a batch could not be written; nothing of it was acknowledged, its timers (if any) will fire again");
    let mut why = e.to_string();
    if e.is_write_failure() {
        health.writes_fail(why.clone(), chrono::Utc::now());
        // A write that failed part way may have left the change on disk
        // (sled seals a batch whole, and a later piece of the same flush
        // may be what failed): the caller is told, not promised.
        why.push_str(" (a change refused this way is dropped when the store resumes, unless its write reached the disk before the failure; an enrollment, or an event with an id, sent again is recognised either way)");
    }
    for tx in waiting.into_iter().flatten() {
        let _ = tx.send(Reply::Error(Refusal::NotRecorded(why.clone())));
    }
}

fn run_commands(
    core: &mut Core,
    clock: &Arc<dyn Clock>,
    dispatch: &Outbound,
    health: &Health,
    commands: Vec<Command>,
    waiting: Vec<Option<oneshot::Sender<Reply>>>,
) {
    if commands.is_empty() {
        return;
    }
    let done = core
        .execute(commands, clock.now())
        .map(|(replies, out)| Landed { replies, out });
    release(Some(done), waiting, dispatch, health);
}

async fn dispatch_loop(
    mut rx: mpsc::UnboundedReceiver<Message>,
    handle: Handle,
    channels: Arc<Channels>,
    concurrency: usize,
    rates: Vec<(Channel, Rate)>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // One lane per channel kind, so a slow or throttled channel never holds
    // up the others.
    let mut lanes = Vec::new();
    let mut workers = JoinSet::new();
    for kind in Channel::ALL {
        let (tx, lane_rx) = mpsc::unbounded_channel();
        let rate = rates
            .iter()
            .find(|(c, _)| *c == kind)
            .map(|(_, r)| *r)
            .unwrap_or_default();
        workers.spawn(lane(
            lane_rx,
            handle.clone(),
            channels.clone(),
            concurrency,
            rate,
            waiting.clone(),
            stop.clone(),
        ));
        lanes.push((kind, tx));
    }
    loop {
        let message = tokio::select! {
            m = rx.recv() => m,
            _ = stop.changed() => None,
        };
        let Some(message) = message else { break };
        if let Some((_, tx)) = lanes.iter().find(|(c, _)| *c == message.channel) {
            let _ = tx.send(message);
        }
    }
    // Shutting down: each lane finishes the deliveries under way and records
    // them; the rest stay queued in the outbox for the next start.
    drop(lanes);
    while workers.join_next().await.is_some() {}
}

/// What a delivery task that did not finish said (its panic's message).
fn panic_words(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into()),
        Err(e) => e.to_string(),
    }
}

/// One log line per send: who, which campaign, channel and template, its
/// key, and what became of it (INFO when delivered, WARN when not).
fn log_send(message: &Message, outcome: &Result<crate::channels::Delivered, SendError>) {
    let (candidate, campaign, channel, template, key) = (
        &message.candidate,
        &message.campaign,
        message.channel,
        &message.template,
        &message.key,
    );
    match outcome {
        Ok(delivered) => {
            let outcome = if delivered.duplicate {
                "duplicate"
            } else {
                "delivered"
            };
            info!(%candidate, %campaign, %channel, %template, %key, outcome, "sent");
        }
        Err(e) => {
            let outcome = match e {
                SendError::Retryable(_) => "retryable",
                SendError::Throttled { .. } => "throttled",
                SendError::Permanent(_) => "permanent",
                SendError::Bounced(_) => "bounced",
                SendError::Unsubscribed(_) => "unsubscribed",
            };
            warn!(%candidate, %campaign, %channel, %template, %key, outcome, error = %e, "delivery failed");
        }
    }
}

/// One channel's deliveries: at most `concurrency` at once, never faster
/// than its rate. A few sends at a time are marked in flight (durably)
/// just before they go, so a crash leaves few of them in doubt (those the
/// commit that queued them marked already go without).
async fn lane(
    mut rx: mpsc::UnboundedReceiver<Message>,
    handle: Handle,
    channels: Arc<Channels>,
    concurrency: usize,
    rate: Rate,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    // Brought inside the configuration's bounds, so a value that came by
    // another path than `nudge.toml` cannot panic the semaphore.
    let concurrency = crate::config::RuntimeConfig::CONCURRENCY.clamp_usize(concurrency);
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut limiter = Limiter::new(rate);
    let origin = std::time::Instant::now();
    // Taken (and marked in flight) no more at a time than can be under way
    // at once: a crash leaves at most twice `concurrency` marked and
    // unanswered (one batch going, the next marked).
    let step = rate
        .per_second
        .map_or(256, |n| n as usize)
        .min(concurrency)
        .clamp(1, 256);
    let mut queue = std::collections::VecDeque::new();
    let mut running = JoinSet::new();
    while !*stop.borrow() {
        if queue.is_empty() {
            match rx.recv().await {
                Some(m) => queue.push_back(m),
                None => break,
            }
        }
        while let Ok(m) = rx.try_recv() {
            queue.push_back(m);
        }
        while running.try_join_next().is_some() {}
        let batch: Vec<Message> = queue.drain(..step.min(queue.len())).collect();
        let left = || waiting.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let keys: Vec<String> = batch
            .iter()
            .filter(|m| !m.in_flight)
            .map(|m| m.key.clone())
            .collect();
        let cleared: std::collections::HashSet<String> = if keys.is_empty() {
            Default::default()
        } else {
            match handle.call(Command::MarkInFlight(keys)).await {
                Ok(Reply::Cleared(keys)) => keys.into_iter().collect(),
                Err(Refusal::ShuttingDown) => break,
                _ => {
                    // Not marked (the store cannot be written): they wait,
                    // first in line, until it can.
                    for m in batch.into_iter().rev() {
                        queue.push_front(m);
                    }
                    let mut stop = stop.clone();
                    tokio::select! {
                        _ = handle.health.healthy() => {}
                        _ = stop.changed() => {}
                    }
                    tokio::time::sleep(StdDuration::from_millis(100)).await;
                    continue;
                }
            }
        };
        for message in batch {
            left();
            if !message.in_flight && !cleared.contains(&message.key) {
                continue;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let wait = limiter.wait(origin.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            limiter.record(origin.elapsed());
            let channels = channels.clone();
            let handle = handle.clone();
            running.spawn(async move {
                let key = message.key.clone();
                let channel = message.channel;
                let (metrics, clock) = (handle.metrics.clone(), handle.clock.clone());
                // A task of its own, so that a channel that panics fails
                // this send (to be retried) instead of losing its outcome.
                let delivery = tokio::spawn(async move {
                    super::faults::before_delivery();
                    let went = clock.now();
                    let outcome = channels.get(message.channel).deliver(&message).await;
                    log_send(&message, &outcome);
                    metrics.delivered(&message, &outcome, went);
                    outcome
                });
                let outcome = delivery.await.unwrap_or_else(|e| {
                    let why = panic_words(e);
                    error!(%key, %channel, why, "the channel failed inside nudge; the send will be retried");
                    Err(SendError::Retryable(format!(
                        "the {channel} channel failed inside nudge: {why}"
                    )))
                });
                handle.tell(Command::Delivered { key, outcome });
                drop(permit);
            });
        }
    }
    while running.join_next().await.is_some() {}
}
