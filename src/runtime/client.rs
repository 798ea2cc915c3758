//! How a CLI command reaches the runtime: through the running daemon's
//! admin API when the daemon holds the store (one process holds it), or
//! by opening the store itself and running the same core when it does not.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::api::{
    ApplyRequest, ApplyResponse, CandidateView, EnrollRequest, EnrollResponse, EventRequest,
    EventResponse, ReloadReport, StatusReport, SuppressRequest, SuppressResponse, SuppressionView,
    UnsuppressRequest, UnsuppressResponse,
};
use super::campaigns::{Campaigns, LoadFailure};
use super::clock::{Clock, SystemClock};
use super::core::{
    check_start, stranded, strandings, Command, Core, Reply, Settings, StartRefusal, Stranded,
    StrandedOnStart, This, Waiting,
};
use super::daemon::{load_all, Sources};
use super::query;
use super::refusal::Refusal;
use crate::config::{Config, RuntimeConfig};
use crate::store::{SledStore, StoreError};

/// The admin API of a running daemon.
pub struct Remote {
    base: String,
    token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// The store opened by this process (no daemon is running).
pub struct Local {
    core: Core,
    clock: SystemClock,
    /// Sends decided here wait in the outbox for the daemon.
    pub queued: usize,
    /// Why this store may not be changed under the loaded campaigns.
    refusal: Option<StrandedOnStart>,
}

/// Either way in.
pub enum Admin {
    Remote(Remote),
    Local(Box<Local>),
}

/// Why the runtime cannot be reached.
#[derive(Debug)]
pub enum ConnectError {
    Store(StoreError),
    /// The running daemon could not answer.
    Daemon(String),
    Campaigns(LoadFailure),
    Token(std::io::Error),
    Runtime(std::io::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Store(e) => write!(f, "{e}"),
            ConnectError::Daemon(e) => write!(f, "the running daemon did not answer: {e}"),
            ConnectError::Campaigns(failure) if failure.diagnostics.is_empty() => write!(
                f,
                "cannot load the campaigns: {}",
                super::daemon::render_failure(failure)
            ),
            ConnectError::Campaigns(failure) => write!(
                f,
                "the campaigns do not check:\n{}",
                super::daemon::render_failure(failure)
            ),
            ConnectError::Token(e) => write!(f, "cannot read the admin token: {e}"),
            ConnectError::Runtime(e) => write!(f, "cannot start: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// The core settings a configuration gives.
pub fn settings(config: &Config) -> Settings {
    Settings {
        tracked_link: config.server.tracked_link(),
        company: config.company.clone(),
        sender: config.sender.clone(),
        phone_country_code: config.phone_country_code.clone().unwrap_or_default(),
        // Each number brought inside its bounds, which `nudge check` holds
        // a file to, so that no other path can overflow the arithmetic.
        catch_up: chrono::Duration::seconds(
            i64::try_from(RuntimeConfig::CATCH_UP_SECS.clamp(config.runtime.catch_up_secs))
                .unwrap_or(0),
        ),
        stale_after: chrono::Duration::seconds(
            i64::try_from(config.runtime.stale_after_secs).unwrap_or(i64::MAX / 1000),
        ),
        backoff: super::policy::Backoff {
            base: std::time::Duration::from_secs(
                RuntimeConfig::RETRY_BASE_SECS.clamp(config.runtime.retry_base_secs),
            ),
            cap: std::time::Duration::from_secs(
                RuntimeConfig::RETRY_CAP_SECS.clamp(config.runtime.retry_cap_secs),
            ),
            max_attempts: config.runtime.max_attempts.max(1),
        },
        communications_off: config.communications == crate::config::Communications::Off,
    }
}

/// Where campaigns and templates come from.
pub fn sources(config: &Config) -> Sources {
    Sources {
        campaigns: config.campaigns.clone(),
        templates: config.templates.clone(),
    }
}

/// The candidates `campaigns` would strand if nudge started on them now
/// (`nudge check` in the daemon's folder): from the store when nothing
/// holds it, else from the running daemon's counts. None when there is no
/// store yet.
pub fn strandings_on_start(
    config: &Config,
    campaigns: &Campaigns,
) -> Result<Vec<Stranded>, ConnectError> {
    if !config.store.exists() {
        return Ok(Vec::new());
    }
    match SledStore::open(&config.store, COMMAND_CACHE) {
        Ok(store) => stranded(&store, campaigns).map_err(ConnectError::Store),
        Err(StoreError::Locked { .. }) => {
            let mut admin = Admin::connect(config)?;
            let report = admin
                .status(None)
                .map_err(|e| ConnectError::Daemon(e.to_string()))?;
            let waiting: Waiting = report
                .campaigns
                .into_iter()
                .map(|c| {
                    let states = c.states.into_iter().filter(|(_, n)| *n > 0).collect();
                    (c.name, states)
                })
                .collect();
            Ok(strandings(waiting, campaigns))
        }
        Err(e) => Err(ConnectError::Store(e)),
    }
}

/// sled's cache for a command that opens the store itself.
const COMMAND_CACHE: u64 = 64 << 20;

/// sled's cache for `nudge import`: 16 MB took a million rows as fast as
/// 64 MB and peaked 100 MB lower (`cargo bench --bench import`).
pub const IMPORT_CACHE: u64 = 16 << 20;

impl Admin {
    /// Opens the store, or finds the daemon that holds it.
    pub fn connect(config: &Config) -> Result<Admin, ConnectError> {
        Admin::connect_with_cache(config, COMMAND_CACHE)
    }

    /// [`Admin::connect`] with sled's cache at `cache_bytes` when the
    /// store is opened here: an import, which appends new candidates in
    /// key order, reads little back and takes [`IMPORT_CACHE`].
    pub fn connect_with_cache(config: &Config, cache_bytes: u64) -> Result<Admin, ConnectError> {
        // Without a store yet no daemon can hold it: the campaigns are
        // loaded first, so a command run in the wrong folder fails before
        // opening (and so creating) a store there.
        let mut loaded = None;
        if !config.store.exists() {
            loaded = Some(load_all(&sources(config)).map_err(ConnectError::Campaigns)?);
        }
        match SledStore::open(&config.store, cache_bytes) {
            Ok(store) => {
                let (campaigns, templates) = match loaded {
                    Some(loaded) => loaded,
                    None => load_all(&sources(config)).map_err(ConnectError::Campaigns)?,
                };
                // Files that strand candidates still let people look
                // (status, show), and refuse every change.
                let refusal = match check_start(&store, &campaigns) {
                    Ok(()) => None,
                    Err(StartRefusal::Stranded(s)) => Some(s),
                    Err(StartRefusal::Store(e)) => return Err(ConnectError::Store(e)),
                };
                let core = Core::new(store, campaigns, templates, settings(config));
                if refusal.is_none() {
                    core.pin_versions(&core.campaigns().clone())
                        .map_err(ConnectError::Store)?;
                }
                Ok(Admin::Local(Box::new(Local {
                    core,
                    clock: SystemClock,
                    queued: 0,
                    refusal,
                })))
            }
            Err(StoreError::Locked { .. }) => {
                let token = config.admin_token().map_err(ConnectError::Token)?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(ConnectError::Runtime)?;
                Ok(Admin::Remote(Remote {
                    base: format!("http://{}", config.admin.listen),
                    token,
                    http: reqwest::Client::new(),
                    runtime,
                }))
            }
            Err(e) => Err(ConnectError::Store(e)),
        }
    }

    /// "through the running daemon" or "store opened directly", for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Admin::Remote(_) => "through the running daemon",
            Admin::Local(_) => "store opened directly (no daemon running)",
        }
    }

    pub fn enroll(&mut self, req: EnrollRequest) -> Result<EnrollResponse, Refusal> {
        match self {
            Admin::Remote(r) => r.post("/v1/enroll", &req),
            Admin::Local(l) => match l.run(Command::Enroll(req))? {
                Reply::Enrolled(r) => Ok(r),
                Reply::Error(e) => Err(e),
                other => Err(Refusal::Internal(format!("unexpected answer {other:?}"))),
            },
        }
    }

    /// An application: see [`ApplyRequest`].
    pub fn apply(&mut self, req: ApplyRequest) -> Result<ApplyResponse, Refusal> {
        match self {
            Admin::Remote(r) => r.post("/v1/applied", &req),
            Admin::Local(l) => match l.run(Command::Apply(req))? {
                Reply::Applied(r) => Ok(r),
                Reply::Error(e) => Err(e),
                other => Err(Refusal::Internal(format!("unexpected answer {other:?}"))),
            },
        }
    }

    pub fn event(&mut self, req: EventRequest) -> Result<EventResponse, Refusal> {
        match self {
            Admin::Remote(r) => r.post("/v1/events", &req),
            Admin::Local(l) => match l.run(Command::Event(req))? {
                Reply::Event(r) => Ok(r),
                Reply::Error(e) => Err(e),
                other => Err(Refusal::Internal(format!("unexpected answer {other:?}"))),
            },
        }
    }

    pub fn set_paused(&mut self, campaign: &str, paused: bool) -> Result<(), Refusal> {
        match self {
            Admin::Remote(r) => {
                let verb = if paused { "pause" } else { "resume" };
                r.post::<_, serde_json::Value>(
                    &format!("/v1/campaigns/{campaign}/{verb}"),
                    &serde_json::json!({}),
                )
                .map(|_| ())
            }
            Admin::Local(l) => match l.run(Command::SetPaused {
                campaign: campaign.to_string(),
                paused,
            })? {
                Reply::Done => Ok(()),
                Reply::Error(e) => Err(e),
                other => Err(Refusal::Internal(format!("unexpected answer {other:?}"))),
            },
        }
    }

    pub fn status(&mut self, campaign: Option<&str>) -> Result<StatusReport, Refusal> {
        match self {
            Admin::Remote(r) => match campaign {
                Some(c) => r.get(&format!("/v1/status?campaign={c}")),
                None => r.get("/v1/status"),
            },
            Admin::Local(l) => {
                let campaigns: Campaigns = l.core.campaigns().clone();
                query::status(l.core.store(), &campaigns, campaign, l.clock.now())
            }
        }
    }

    pub fn show(&mut self, who: &str) -> Result<CandidateView, Refusal> {
        match self {
            Admin::Remote(r) => r.get(&format!("/v1/candidates/{who}")),
            Admin::Local(l) => {
                let campaigns = l.core.campaigns().clone();
                query::show(
                    l.core.store(),
                    &campaigns,
                    who,
                    &l.core.settings().tracked_link,
                )
            }
        }
    }

    pub fn suppress(&mut self, req: SuppressRequest) -> Result<SuppressResponse, Refusal> {
        match self {
            Admin::Remote(r) => r.post("/v1/suppressions", &req),
            Admin::Local(l) => match l.run(Command::Suppress(req))? {
                Reply::Suppressed(r) => Ok(r),
                Reply::Error(e) => Err(e),
                other => Err(Refusal::Internal(format!("unexpected answer {other:?}"))),
            },
        }
    }

    pub fn unsuppress(&mut self, req: UnsuppressRequest) -> Result<UnsuppressResponse, Refusal> {
        match self {
            Admin::Remote(r) => r.post("/v1/suppressions/remove", &req),
            Admin::Local(l) => match l.run(Command::Unsuppress(req))? {
                Reply::Unsuppressed(r) => Ok(r),
                Reply::Error(e) => Err(e),
                other => Err(Refusal::Internal(format!("unexpected answer {other:?}"))),
            },
        }
    }

    pub fn suppressions(&mut self) -> Result<Vec<SuppressionView>, Refusal> {
        match self {
            Admin::Remote(r) => r.get("/v1/suppressions"),
            Admin::Local(l) => query::suppressions(l.core.store()),
        }
    }

    /// `nudge export`: the event log of the enrollments `filter` selects,
    /// written to `out` as it is read.
    pub fn export(
        &mut self,
        filter: &crate::report::export::Filter,
        out: impl std::io::Write,
    ) -> Result<crate::report::export::Exported, Refusal> {
        match self {
            Admin::Remote(r) => r.export(filter, out),
            Admin::Local(l) => {
                let campaigns = l.core.campaigns().clone();
                let decisions = crate::runtime::decider::decisions_by_campaign(l.core.store())
                    .map_err(|e| Refusal::Internal(e.to_string()))?;
                crate::report::export::export(l.core.store(), &campaigns, &decisions, filter, out)
                    .map_err(|e| Refusal::Internal(e.to_string()))
            }
        }
    }

    /// Asks a running daemon to reload its campaigns and templates.
    pub fn reload(&mut self) -> Result<ReloadReport, Refusal> {
        match self {
            Admin::Remote(r) => r.post("/v1/reload", &serde_json::json!({})),
            Admin::Local(_) => Err(Refusal::NoDaemon),
        }
    }

    /// Writes a copy of the store into `dir`: through the daemon, between
    /// two of its commits, or directly.
    pub fn backup(&mut self, dir: &std::path::Path) -> Result<crate::store::sled::Copied, Refusal> {
        match self {
            Admin::Remote(r) => r.post("/v1/backup", &serde_json::json!({ "dir": dir })),
            Admin::Local(l) => l.core.store().backup_to(dir).map_err(Refusal::from),
        }
    }

    /// Sends decided by this process that wait in the outbox for the daemon.
    pub fn queued(&self) -> usize {
        match self {
            Admin::Remote(_) => 0,
            Admin::Local(l) => l.queued,
        }
    }

    /// Many applications, each answered on its own (one request to the
    /// daemon, `POST /v1/applied/batch`, or one commit of the store), the
    /// store's write of each batch overlapped with the caller's next:
    /// returns the answers of every batch that is durable now, oldest
    /// first (through the daemon, or on a store that cannot write behind,
    /// this one's; opened here, usually the batch handed over before,
    /// while this one is written). Nothing of a batch
    /// is answered before it is durable; [`Admin::land_applications`]
    /// waits for the last.
    pub fn apply_behind(&mut self, requests: Vec<ApplyRequest>) -> Result<Vec<Answers>, Refusal> {
        match self {
            Admin::Remote(r) => {
                let answers: Vec<crate::intake::batch::Applied> =
                    r.post("/v1/applied/batch", &requests)?;
                Ok(vec![answers.into_iter().map(|a| a.into_result()).collect()])
            }
            Admin::Local(l) => {
                let commands = requests.into_iter().map(Command::Apply).collect();
                l.run_behind(commands)
                    .map(|batches| batches.into_iter().map(applied).collect())
            }
        }
    }

    /// Waits for the batch [`Admin::apply_behind`] left being written: its
    /// answers, if there was one.
    pub fn land_applications(&mut self) -> Result<Option<Answers>, Refusal> {
        match self {
            Admin::Remote(_) => Ok(None),
            Admin::Local(l) => match l.core.land() {
                None => Ok(None),
                Some(Ok(landed)) => {
                    l.queued += landed.out.len();
                    Ok(Some(applied(landed.replies)))
                }
                Some(Err(e)) => Err(e.into()),
            },
        }
    }

    /// Makes room for `n` more identities in the store's map of who each
    /// candidate is, when the store is opened here (the daemon's map grows
    /// as it goes).
    pub fn expect_identities(&mut self, n: usize) -> Result<(), Refusal> {
        match self {
            Admin::Remote(_) => Ok(()),
            Admin::Local(l) => Ok(l.core.store().expect_identities(n)?),
        }
    }

    /// The candidates an `import --review` left waiting.
    pub fn reviewed(&mut self) -> Result<Vec<crate::intake::review::Reviewed>, Refusal> {
        match self {
            Admin::Remote(r) => r.get("/v1/reviewed"),
            Admin::Local(l) => crate::intake::review::pending(l.core.store()),
        }
    }

    /// The weekly digest as it would go now (`config`: this side's
    /// `[digest]`; the daemon answers with its own).
    pub fn digest(
        &mut self,
        config: &crate::config::DigestConfig,
    ) -> Result<super::digest::Preview, Refusal> {
        match self {
            Admin::Remote(r) => r.get("/v1/digest"),
            Admin::Local(l) => Ok(super::digest::preview(
                l.core.store(),
                l.core.campaigns(),
                config,
                l.clock.now(),
            )?),
        }
    }

    /// `nudge report` over the store: `GET /v1/report`, or read here.
    pub fn report(
        &mut self,
        options: &crate::report::compute::Options,
    ) -> Result<crate::report::model::Report, Refusal> {
        match self {
            Admin::Remote(r) => {
                let query = crate::report::query::to_query(options);
                r.get_query("/v1/report", &query)
            }
            Admin::Local(l) => {
                let campaigns = l.core.campaigns().clone();
                Ok(crate::report::stored::report(
                    l.core.store(),
                    &campaigns,
                    options,
                )?)
            }
        }
    }

    /// The HTML report's charts over the store.
    pub fn charts(
        &mut self,
        options: &crate::report::compute::Options,
    ) -> Result<crate::report::charts::Charts, Refusal> {
        match self {
            Admin::Remote(r) => {
                let query = crate::report::query::to_query(options);
                r.get_query("/v1/report/charts", &query)
            }
            Admin::Local(l) => {
                let campaigns = l.core.campaigns().clone();
                Ok(crate::report::stored::charts(
                    l.core.store(),
                    &campaigns,
                    options,
                )?)
            }
        }
    }
}

/// Each application's answer, in order.
pub type Answers = Vec<Result<ApplyResponse, Refusal>>;

/// The replies to applications as their answers.
fn applied(replies: Vec<Reply>) -> Answers {
    replies
        .into_iter()
        .map(|reply| match reply {
            Reply::Applied(r) => Ok(r),
            Reply::Error(e) => Err(e),
            other => Err(Refusal::Internal(format!("unexpected answer {other:?}"))),
        })
        .collect()
}

impl Local {
    /// Many commands in one commit, written behind
    /// ([`Core::tick_behind`]): the replies of every batch durable now,
    /// oldest first.
    fn run_behind(&mut self, commands: Vec<Command>) -> Result<Vec<Vec<Reply>>, Refusal> {
        if let Some(refusal) = &self.refusal {
            return Err(Refusal::StoreStranded(refusal.clone()));
        }
        let handoff = self.core.tick_behind(commands, self.clock.now(), 1024);
        let mut durable = Vec::new();
        match handoff.landed {
            None => {}
            Some(Ok(landed)) => {
                self.queued += landed.out.len();
                durable.push(landed.replies);
            }
            Some(Err(e)) => return Err(e.into()),
        }
        match handoff.this {
            This::Behind { .. } => {}
            This::Written { landed, .. } => {
                self.queued += landed.out.len();
                durable.push(landed.replies);
            }
            This::Failed(e) => return Err(e.into()),
        }
        Ok(durable)
    }

    fn run(&mut self, command: Command) -> Result<Reply, Refusal> {
        if let Some(refusal) = &self.refusal {
            return Err(Refusal::StoreStranded(refusal.clone()));
        }
        let (mut replies, out) = self.core.execute(vec![command], self.clock.now())?;
        // Also run what falls due now (a send due at once), so the outbox
        // holds it for the daemon.
        let (_, more) = self.core.fire_due(self.clock.now(), 1024)?;
        self.queued += out.len() + more.len();
        replies
            .pop()
            .ok_or_else(|| Refusal::Internal("no answer".into()))
    }
}

impl Remote {
    fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, Refusal> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body);
        self.send(request)
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Refusal> {
        let request = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        self.send(request)
    }

    /// `GET /v1/export`, its body copied to `out` as it arrives; the
    /// counts come last, in the `x-nudge-exported` trailer line's place:
    /// the daemon ends a whole export with a line `#` + the counts' JSON,
    /// which is not copied, so a cut-off export is told from a whole one.
    fn export(
        &self,
        filter: &crate::report::export::Filter,
        mut out: impl std::io::Write,
    ) -> Result<crate::report::export::Exported, Refusal> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(c) = &filter.campaign {
            query.push(("campaign", c.clone()));
        }
        if let Some(s) = filter.since {
            query.push(("since", crate::report::instant::format(s)));
        }
        if let Some(u) = filter.until {
            query.push(("until", crate::report::instant::format(u)));
        }
        let query: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        let request = self
            .http
            .get(format!("{}/v1/export?{query}", self.base))
            .bearer_auth(&self.token);
        let cut =
            |e: String| Refusal::Internal(format!("the export from the daemon was cut off: {e}"));
        self.runtime.block_on(async {
            let mut response = request.send().await.map_err(|e| {
                Refusal::Internal(format!(
                    "the store is locked but the daemon's admin API at {} does not answer: {e}",
                    self.base
                ))
            })?;
            let status = response.status();
            if !status.is_success() {
                let bytes = response.bytes().await.unwrap_or_default();
                let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
                return Err(Refusal::Daemon {
                    status: status.as_u16(),
                    message,
                });
            }
            // Lines are copied whole; the last one (`#` + counts) is kept
            // back until the body ends.
            let mut pending: Vec<u8> = Vec::new();
            loop {
                let chunk: Option<bytes::Bytes> =
                    response.chunk().await.map_err(|e| cut(e.to_string()))?;
                let Some(chunk) = chunk else { break };
                pending.extend_from_slice(&chunk);
                if let Some(last) = pending.iter().rposition(|b| *b == b'\n') {
                    let rest = pending.split_off(last + 1);
                    let whole = std::mem::replace(&mut pending, rest);
                    out.write_all(&whole).map_err(|e| cut(e.to_string()))?;
                }
            }
            let tail = String::from_utf8_lossy(&pending);
            let counts = tail
                .strip_prefix('#')
                .and_then(|t| serde_json::from_str(t.trim()).ok())
                .ok_or_else(|| cut("it did not end with its counts".into()))?;
            out.flush().map_err(|e| cut(e.to_string()))?;
            Ok(counts)
        })
    }

    fn get_query<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<T, Refusal> {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        let request = self
            .http
            .get(format!("{}{path}?{query}", self.base))
            .bearer_auth(&self.token);
        self.send(request)
    }

    fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, Refusal> {
        self.runtime.block_on(async {
            let response = request.send().await.map_err(|e| {
                Refusal::Internal(format!(
                    "the store is locked but the daemon's admin API at {} does not answer: {e}",
                    self.base
                ))
            })?;
            let status = response.status();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| Refusal::Internal(e.to_string()))?;
            if status.is_success() {
                serde_json::from_slice(&bytes).map_err(|e| {
                    Refusal::Internal(format!("unexpected answer from the daemon: {e}"))
                })
            } else {
                let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
                Err(Refusal::Daemon {
                    status: status.as_u16(),
                    message,
                })
            }
        })
    }
}
