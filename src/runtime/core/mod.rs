//! The runtime's single writer: it turns commands (enrollments, events,
//! delivery outcomes) and due timers into engine steps, and writes each
//! batch of them to the store in one atomic, flushed commit before anyone
//! is told. The daemon runs it on its own thread; the CLI runs the very
//! same code when no daemon holds the store. A large batch shares its steps
//! with a helper thread (candidates split between the two, each with its
//! part of the transaction), and the batch is still one commit.
//!
//! One file per concern:
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | commands and replies, the core, running one batch |
//! | `enroll.rs` | enrollment, identity, tokens, the `where` filter |
//! | `events.rs` | events from outside, pausing a campaign |
//! | `intake.rs` | applications: a person found or created, then enrolled |
//! | `timers.rs` | firing due timers, what is next, the idle rehearsal |
//! | `journal.rs` | sends in flight, retries, recovery after a restart |
//! | `outcomes.rs` | a channel's answer, fallback to another channel |
//! | `reload.rs` | reload and migration onto a new campaign version |
//! | `apply.rs` | engine steps, their records, queueing and rendering sends |
//! | `batch.rs` | writing behind, sharing a batch with a helper thread |
//! | `queries.rs` | counts for people, and keeping the timers' counts |
//! | `suppression.rs` | the suppression list: opt-outs, the gate, add and remove |
//! | `retention.rs` | pruning the history of candidates who finished long ago |
//! | `opt_in.rs` | opting back in: the opt-out lifted, its suppressions taken off |
//! | `decide.rs` | `until decided` experiments: the decision stored, new enrollments given the winner |
//!
//! The children share this module's imports (`use super::*`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{Duration, SubsecRound};
use chrono_tz::Tz;

use crate::channels::phone::to_e164;
use crate::channels::{Delivered, Message, SendError};
use crate::engine::{self, Candidate, Channel, Ctx, Happening, Input, Instant, Machine};
use crate::explain::facts;
use crate::runtime::api::{
    exact_instant, ApplyRequest, ApplyResponse, EnrollRequest, EnrollResponse, EventRequest,
    EventResponse, ReloadReport, SuppressRequest, SuppressResponse, UnsuppressRequest,
    UnsuppressResponse,
};
use crate::runtime::campaigns::{Campaign, Campaigns};
use crate::runtime::compose::Draft;
use crate::runtime::refusal::Refusal;
use crate::store::causes::{Failure, FailureKind, Skip};
use crate::store::{
    CandidateRecord, Counter, DueTimer, Enrollment, LogEntry, LogKind, OutboxEntry, SendKey,
    SendStatus, SledStore, Store, StoreError, TimerKind, Transaction,
};
use crate::templates::Templates;

mod apply;
mod batch;
mod decide;
mod enroll;
mod events;
mod intake;
mod journal;
mod opt_in;
mod outcomes;
mod queries;
mod reload;
mod retention;
mod suppression;
mod timers;

pub use apply::engine_candidate;
pub use batch::{Handoff, This};
pub use decide::{DecideRequest, Decided};
pub use enroll::{find, new_token};
pub use journal::PREMARKED_AT_MOST;
pub use queries::counters;
pub use reload::{
    check_start, stranded, strandings, waiting, StartRefusal, Stranded, StrandedOnStart, Waiting,
};
pub use retention::{Pruned, PRUNE_CHUNK};

use batch::InFlight;
use queries::put_enrollment;

/// What the core is asked to do.
#[derive(Debug)]
pub enum Command {
    Enroll(EnrollRequest),
    Apply(ApplyRequest),
    Event(EventRequest),
    SetPaused {
        campaign: String,
        paused: bool,
    },
    /// The dispatcher is about to hand these sends to their channels.
    MarkInFlight(Vec<String>),
    /// A channel's answer for a send.
    Delivered {
        key: String,
        outcome: Result<Delivered, SendError>,
    },
    /// A contact onto the suppression list.
    Suppress(SuppressRequest),
    /// A contact off the suppression list.
    Unsuppress(UnsuppressRequest),
    /// A candidate who opted out asks for messages again.
    OptIn(crate::runtime::api::OptInRequest),
    /// An `until decided` experiment's decision to store.
    Decide(DecideRequest),
}

/// The answer to a [`Command`].
#[derive(Debug)]
pub enum Reply {
    Enrolled(EnrollResponse),
    Event(EventResponse),
    Applied(ApplyResponse),
    Done,
    /// The sends of a `MarkInFlight` that may go: the others were refused
    /// here (the candidate opted out, or the destination was suppressed,
    /// since the send was decided).
    Cleared(Vec<String>),
    Suppressed(SuppressResponse),
    Unsuppressed(UnsuppressResponse),
    Error(Refusal),
    OptedIn(crate::runtime::api::OptInResponse),
    Decided(Decided),
}

/// Settings the core needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The tracked link; `{token}` is replaced by the candidate's token.
    pub tracked_link: String,
    pub company: String,
    pub sender: String,
    /// Completes national phone numbers at enrollment (`"1"`; `""` for
    /// none): see [`crate::channels::phone::to_e164`].
    pub phone_country_code: String,
    /// A timer found later than this runs at the current time, not its due time.
    pub catch_up: Duration,
    /// A send that could only go more than this after it was due is
    /// skipped as late (as is one due before the candidate's deadline that
    /// could only go after it).
    pub stale_after: Duration,
    /// How failed deliveries are tried again.
    pub backoff: crate::runtime::policy::Backoff,
    /// `communications = "off"`: nothing leaves the machine.
    pub communications_off: bool,
}

/// Sends to hand to the dispatcher once a commit is durable.
pub type Outgoing = Vec<Message>;

/// A transaction of the store `S`.
type Txn<'a, S> = <S as Store>::Txn<'a>;

/// The single writer, over a store ([`SledStore`] unless said otherwise).
pub struct Core<S: Store = SledStore> {
    store: S,
    campaigns: Campaigns,
    templates: Option<Arc<Templates>>,
    settings: Settings,
    /// Candidates whose dossiers do not decode: reported once and their
    /// timers passed over until the process restarts, so one damaged
    /// record neither stops every other timer nor is rewritten.
    damaged: HashSet<String>,
    /// Undelivered sends found at startup and not yet handed back, in
    /// flight ones first; and whether the journal is still to be tidied.
    recovering: std::collections::VecDeque<(String, bool)>,
    tidy_journal: bool,
    /// Campaigns' paused flags as read from the store (this core is their
    /// only writer), so a fired timer does not read its flag again.
    paused: std::sync::Mutex<HashMap<String, bool>>,
    /// The batch being written behind ([`Core::tick_behind`]).
    in_flight: Option<InFlight>,
    /// Channels whose sends are marked in flight in the commit that queues
    /// them ([`Core::mark_in_flight_when_queued`]).
    premarked: Vec<Channel>,
    /// The fields each campaign's templates need, by campaign and language
    /// ([`Core::missing_field`]); emptied when templates or campaigns change.
    needs: std::sync::Mutex<enroll::Needs>,
    /// How long finished candidates' history is kept, and how far pruning
    /// has walked the store.
    retention: retention::Retention,
}

/// A batch the core has built, once the store says it is durable: the
/// answers to its commands and its sends.
#[derive(Debug, Default)]
pub struct Landed {
    pub replies: Vec<Reply>,
    pub out: Outgoing,
}

/// An undelivered send found at startup.
#[derive(Debug, Clone)]
pub struct Pending {
    pub message: Message,
    /// It was in flight when the previous process stopped.
    pub was_in_flight: bool,
}

impl<S: Store> Core<S> {
    pub fn new(
        store: S,
        campaigns: Campaigns,
        templates: Option<Arc<Templates>>,
        settings: Settings,
    ) -> Self {
        Core {
            store,
            campaigns,
            templates,
            settings,
            damaged: HashSet::new(),
            recovering: std::collections::VecDeque::new(),
            tidy_journal: false,
            paused: Default::default(),
            in_flight: None,
            premarked: Vec::new(),
            needs: Default::default(),
            retention: Default::default(),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn campaigns(&self) -> &Campaigns {
        &self.campaigns
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Runs commands in one atomic commit; returns a reply per command and
    /// the sends to dispatch.
    pub fn execute(
        &mut self,
        commands: Vec<Command>,
        now: Instant,
    ) -> Result<(Vec<Reply>, Outgoing), StoreError> {
        let store = self.store.clone();
        let mut txn = store.begin();
        let mut out = Vec::new();
        let replies = self.run_into(&mut txn, commands, now, &mut out)?;
        txn.commit()?;
        Ok((replies, out))
    }

    /// Runs commands and fires up to `limit` due timers after them, in one
    /// atomic commit (one flush for both): the daemon's loop. Returns the
    /// replies, how many timer entries were taken, and the sends.
    pub fn tick(
        &mut self,
        commands: Vec<Command>,
        now: Instant,
        limit: usize,
    ) -> Result<(Vec<Reply>, usize, Outgoing), StoreError> {
        let store = self.store.clone();
        let mut txn = store.begin();
        let mut out = Vec::new();
        let replies = self.run_into(&mut txn, commands, now, &mut out)?;
        let fired = self.fire_into(&mut txn, now, limit, &mut out)?;
        txn.commit()?;
        Ok((replies, fired, out))
    }

    fn run_into(
        &mut self,
        txn: &mut Txn<S>,
        commands: Vec<Command>,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Vec<Reply>, StoreError> {
        let touched: Vec<&str> = commands
            .iter()
            .flat_map(|c| match c {
                Command::MarkInFlight(keys) => keys.iter().map(String::as_str).collect(),
                Command::Delivered { key: k, .. } => vec![k.as_str()],
                _ => Vec::new(),
            })
            .filter_map(|k| SendKey::parse(k).map(|k| k.candidate()))
            .collect();
        txn.prefetch(&touched);
        let mut replies = Vec::with_capacity(commands.len());
        let mut commands = commands.into_iter().peekable();
        while let Some(command) = commands.next() {
            let reply = match command {
                Command::Enroll(req) => {
                    // A run of enrollments goes together: see `enroll_all`.
                    let mut run = vec![req];
                    while let Some(Command::Enroll(_)) = commands.peek() {
                        if let Some(Command::Enroll(req)) = commands.next() {
                            run.push(req);
                        }
                    }
                    replies.extend(self.enroll_all(txn, &run, now, out)?);
                    continue;
                }
                Command::Apply(req) => match self.apply(txn, &req, now, out)? {
                    Ok(r) => Reply::Applied(r),
                    Err(e) => Reply::Error(e),
                },
                Command::Event(req) => match self.event(txn, &req, now, out)? {
                    Ok(r) => Reply::Event(r),
                    Err(e) => Reply::Error(e),
                },
                Command::SetPaused { campaign, paused } => {
                    match self.set_paused(txn, &campaign, paused, now, out)? {
                        Ok(()) => Reply::Done,
                        Err(e) => Reply::Error(e),
                    }
                }
                Command::MarkInFlight(keys) => {
                    Reply::Cleared(self.clear_for_delivery(txn, keys, now)?)
                }
                Command::Suppress(req) => match self.add_suppression(txn, &req, now)? {
                    Ok(r) => Reply::Suppressed(r),
                    Err(e) => Reply::Error(e),
                },
                Command::Unsuppress(req) => match self.remove_suppression(txn, &req)? {
                    Ok(r) => Reply::Unsuppressed(r),
                    Err(e) => Reply::Error(e),
                },
                Command::Delivered { key: k, outcome } => {
                    self.delivered(txn, &k, outcome, now, out)?;
                    Reply::Done
                }
                Command::OptIn(req) => match self.opt_in(txn, &req, now)? {
                    Ok(r) => Reply::OptedIn(r),
                    Err(e) => Reply::Error(e),
                },
                Command::Decide(req) => Reply::Decided(self.decide(txn, &req, now)?),
            };
            replies.push(reply);
        }
        Ok(replies)
    }

    /// When the sends decided at `now` leave, for the engine's late rule.
    fn leaving(&self, now: Instant) -> engine::Leaving {
        engine::Leaving {
            at: Some(now),
            stale_after: Some(self.settings.stale_after),
        }
    }

    /// Replaces the templates (after a reload).
    pub fn set_templates(&mut self, templates: Option<Arc<Templates>>) {
        self.templates = templates;
        self.forget_needs();
    }
}
