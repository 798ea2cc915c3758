//! The runtime's single writer: it turns commands (enrollments, events,
//! delivery outcomes) and due timers into engine steps, and writes each
//! batch of them to the store in one atomic, flushed commit before anyone
//! is told. The daemon runs it on its own thread; the CLI runs the very
//! same code when no daemon holds the store. A large batch shares its steps
//! with a helper thread (candidates split between the two, each with its
//! part of the transaction), and the batch is still one commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{Duration, SubsecRound};
use chrono_tz::Tz;

use super::api::{
    exact_instant, ApiError, EnrollRequest, EnrollResponse, EventRequest, EventResponse,
    ReloadReport,
};
use super::campaigns::{Campaign, Campaigns};
use crate::channels::phone::to_e164;
use crate::channels::{Delivered, Message, SendError};
use crate::engine::{self, Candidate, Channel, Ctx, Happening, Input, Instant, Machine};
use crate::sim::output::{cancel_text, hold_text, skip_text, trigger_text};
use crate::sim::rfc3339;
use crate::store::{
    self, key, CandidateRecord, Enrollment, LogEntry, LogKind, OutboxEntry, SendStatus, Store,
    StoreError, TimerEntry, TimerKind, Txn,
};
use crate::templates::{format_deadline, time_left, Templates, Vars};

/// What the core is asked to do.
#[derive(Debug)]
pub enum Command {
    Enroll(EnrollRequest),
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
}

/// The answer to a [`Command`].
#[derive(Debug)]
pub enum Reply {
    Enrolled(EnrollResponse),
    Event(EventResponse),
    Done,
    /// The sends of a `MarkInFlight` that may go: the others were refused
    /// here (the candidate opted out since the send was decided).
    Cleared(Vec<String>),
    Error(ApiError),
}

/// Settings the core needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The tracked link; `{token}` is replaced by the candidate's token.
    pub interview_url: String,
    pub company: String,
    pub sender: String,
    /// Completes national phone numbers at enrollment (`"1"`; `""` for
    /// none): see [`crate::channels::phone::to_e164`].
    pub phone_country_code: String,
    /// A timer found later than this runs at the current time, not its due time.
    pub catch_up: Duration,
    /// How failed deliveries are tried again.
    pub backoff: super::policy::Backoff,
    /// `communications = "off"`: nothing leaves the machine.
    pub communications_off: bool,
}

/// Sends to hand to the dispatcher once a commit is durable.
pub type Outgoing = Vec<Message>;

/// The single writer.
pub struct Core {
    store: Store,
    campaigns: Campaigns,
    templates: Option<Arc<Templates>>,
    settings: Settings,
    /// Candidates whose dossiers do not decode: reported once and their
    /// timers passed over until the process restarts, so one damaged
    /// record neither stops every other timer nor is rewritten.
    damaged: HashSet<String>,
    /// Timer records that do not decode, passed over likewise.
    damaged_records: HashSet<Vec<u8>>,
    /// Timer records being fired: their entries and how many are taken.
    /// Taken entries stay in the store until the record's last is taken;
    /// after a restart they are taken again and found stale.
    open_timers: BTreeMap<Vec<u8>, OpenRecord>,
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
}

/// A batch the core has built, once the store says it is durable: the
/// answers to its commands and its sends.
#[derive(Debug, Default)]
pub struct Landed {
    pub replies: Vec<Reply>,
    pub out: Outgoing,
}

/// A batch being written behind, and the timer records it finished (they
/// stay among the open ones, all taken, until it is written: until then
/// sled still lists them).
struct InFlight {
    landed: Landed,
    finished: Vec<Vec<u8>>,
}

/// What [`Core::tick_behind`] did.
#[derive(Debug)]
pub struct Handoff {
    /// The batch that was being written, now written (or not: nothing of
    /// it may be acknowledged or sent then).
    pub landed: Option<Result<Landed, StoreError>>,
    /// This batch.
    pub this: This,
}

/// Where a batch given to [`Core::tick_behind`] is.
#[derive(Debug)]
pub enum This {
    /// Being written behind: it comes back from the next call or from
    /// [`Core::land`]. It took this many timer entries.
    Behind { fired: usize },
    /// Written; it took `fired` timer entries.
    Written { landed: Landed, fired: usize },
    /// Not written: nothing of it may be acknowledged or sent.
    Failed(StoreError),
}

/// Due timers in one batch from which their steps are shared between two
/// threads.
const PARALLEL_STEPS: usize = 64;

/// Sends in flight past which a queued send is no longer marked in flight
/// as it is queued ([`Core::mark_in_flight_when_queued`]), so a backlog
/// waits as queued and a crash leaves about this many in flight, not the
/// dispatcher's whole backlog. (Two threads stepping one batch may each
/// go up to it.)
pub const PREMARKED_AT_MOST: usize = 1024;

/// The candidates a batch's helper thread takes: the later half of the
/// distinct ones that `movable` lets go, in batch order; none when there
/// are too few for a thread to be worth it.
fn helper_share<'s>(
    ids: impl IntoIterator<Item = &'s str>,
    movable: impl Fn(&str) -> bool,
) -> Option<HashSet<String>> {
    let mut seen = HashSet::new();
    let free: Vec<&str> = ids
        .into_iter()
        .filter(|id| movable(id) && seen.insert(*id))
        .collect();
    (free.len() >= PARALLEL_STEPS).then(|| {
        free[free.len() / 2..]
            .iter()
            .map(|id| id.to_string())
            .collect()
    })
}

/// What one firing took from the timer records.
#[derive(Default)]
struct Fired {
    /// Entries taken, stale ones included.
    taken: usize,
    /// Records whose last entry was taken (deleted in the commit).
    finished: Vec<Vec<u8>>,
    /// Each record it took entries from.
    touched: Vec<Vec<u8>>,
}

/// A timer record being fired.
struct OpenRecord {
    entries: Vec<TimerEntry>,
    /// Entries taken, in order.
    done: usize,
    /// Taken entries of damaged records, kept in the store.
    kept: Vec<TimerEntry>,
    /// Already rewritten down to its kept entries.
    rewritten: bool,
}

/// An enrollment admitted by [`Core::admit`].
enum Admit {
    /// Answered already (enrolled before, refused).
    Done(Reply),
    /// New: its first step is to be taken.
    Start(Start),
}

/// A new enrollment whose first step is to be taken.
struct Start {
    /// Its place in the run of enrollments.
    at: usize,
    campaign: Arc<Campaign>,
    candidate: CandidateRecord,
    filter_matched: bool,
}

/// An undelivered send found at startup.
#[derive(Debug, Clone)]
pub struct Pending {
    pub message: Message,
    /// It was in flight when the previous process stopped.
    pub was_in_flight: bool,
}

impl Core {
    pub fn new(
        store: Store,
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
            damaged_records: HashSet::new(),
            open_timers: BTreeMap::new(),
            recovering: std::collections::VecDeque::new(),
            tidy_journal: false,
            paused: Default::default(),
            in_flight: None,
            premarked: Vec::new(),
        }
    }

    /// Sends to these channels are marked in flight in the same commit
    /// that queues them, so the dispatcher hands them to the channel
    /// without a commit of its own (one flushed commit less between a due
    /// timer and its channel). Only for channels that recognise a repeated
    /// key, where being in flight at a crash costs nothing (the repeat is
    /// dropped), and that are not paced (a paced send may wait long before
    /// it goes). The last gate before a channel (opt-out, communications
    /// off) is then the queueing commit itself; the daemon passes no
    /// channel when communications are off. Past [`PREMARKED_AT_MOST`]
    /// sends in flight, sends are queued unmarked, and the dispatcher marks
    /// them ([`Message::in_flight`] tells which is which).
    pub fn mark_in_flight_when_queued(&mut self, channels: Vec<Channel>) {
        self.premarked = channels;
    }

    /// Marks a send in flight now if its channel is one of
    /// [`Core::mark_in_flight_when_queued`]'s and fewer than
    /// [`PREMARKED_AT_MOST`] sends are in flight; says whether it did.
    fn premark(&self, txn: &mut Txn, send_key: &str, channel: Channel) -> bool {
        let mark = self.premarked.contains(&channel)
            && self.store.in_flight() + txn.launches() < PREMARKED_AT_MOST;
        if mark {
            txn.launch(send_key);
        }
        mark
    }

    pub fn store(&self) -> &Store {
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
        let mut txn = Txn::new(&store);
        let mut out = Vec::new();
        let replies = self.run_into(&mut txn, commands, now, &mut out)?;
        txn.commit()?;
        Ok((replies, out))
    }

    /// [`Core::tick`], with the write of a batch of enrollments behind:
    /// when the commands are all enrollments, they are run while the batch
    /// before is written, and this batch is handed to the store's writer
    /// thread and comes back from the next call or from [`Core::land`];
    /// anything else is done as [`Core::tick`] does, after the batch before
    /// is written. The batch before is returned, to be acknowledged and
    /// sent now that it is durable. Between calls, use nothing but
    /// `tick_behind` and `land`: the rest of the core reads sled directly.
    ///
    /// Why only enrollments: new candidates' enrollments read nothing from
    /// sled but what the batch before writes (counters), which comes from
    /// that batch's own writes. sled lets no read through while it applies
    /// a batch, and commits made on the writer thread were measured slower
    /// for firing and deliveries than commits made here.
    pub fn tick_behind(&mut self, commands: Vec<Command>, now: Instant, limit: usize) -> Handoff {
        let behind =
            !commands.is_empty() && commands.iter().all(|c| matches!(c, Command::Enroll(_)));
        if !behind {
            let landed = self.land();
            let this = match self.tick(commands, now, limit) {
                Ok((replies, fired, out)) => This::Written {
                    landed: Landed { replies, out },
                    fired,
                },
                Err(e) => This::Failed(e),
            };
            return Handoff { landed, this };
        }
        let store = self.store.clone();
        let mut txn = Txn::new(&store);
        let mut out = Vec::new();
        let run = self.run_into(&mut txn, commands, now, &mut out);
        let landed = self.land();
        let replies = match (run, &landed) {
            (Err(e), _) => {
                return Handoff {
                    landed,
                    this: This::Failed(e),
                }
            }
            (Ok(_), Some(Err(_))) => {
                // Run on what was not written: refused too.
                let e = StoreError::Io(sled::Error::ReportableBug(
                    "not written: the batch before it could not be written".into(),
                ));
                return Handoff {
                    landed,
                    this: This::Failed(e),
                };
            }
            (Ok(replies), _) => replies,
        };
        let fired = if limit == 0 {
            Fired::default()
        } else {
            match self.fire_into(&mut txn, now, limit, &mut out) {
                Ok(fired) => fired.unwrap_or_default(),
                Err(e) => {
                    return Handoff {
                        landed,
                        this: This::Failed(e),
                    }
                }
            }
        };
        let taken = fired.taken;
        let this = match txn.commit_behind() {
            Ok(()) => {
                self.in_flight = Some(InFlight {
                    landed: Landed { replies, out },
                    finished: fired.finished,
                });
                This::Behind { fired: taken }
            }
            Err(e) => {
                // Its timers are taken again, and what memory took from it
                // (the journal, the identities) is read again.
                self.forget_unwritten();
                This::Failed(e)
            }
        };
        Handoff { landed, this }
    }

    /// Waits for the batch being written behind; `None` when there is none.
    /// When it could not be written, what the core holds in memory of it
    /// (and of the store) is read again from the store.
    pub fn land(&mut self) -> Option<Result<Landed, StoreError>> {
        let flight = self.in_flight.take()?;
        match self.store.settle() {
            Ok(()) => {
                for k in &flight.finished {
                    self.open_timers.remove(k);
                }
                Some(Ok(flight.landed))
            }
            Err(e) => {
                self.forget_unwritten();
                Some(Err(e))
            }
        }
    }

    /// After a batch written behind was not written: what memory holds of
    /// it (timer records' progress, paused flags, the delivery journal,
    /// identities) is read again from the store.
    fn forget_unwritten(&mut self) {
        self.open_timers.clear();
        self.paused_flags().clear();
        if let Err(again) = self.store.reread() {
            tracing::error!(%again, "cannot read the delivery journal again");
        }
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
        let mut txn = Txn::new(&store);
        let mut out = Vec::new();
        let replies = self.run_into(&mut txn, commands, now, &mut out)?;
        let fired = self.fire_into(&mut txn, now, limit, &mut out)?;
        self.commit_fired(txn, fired.as_ref())?;
        Ok((replies, fired.map_or(0, |f| f.taken), out))
    }

    fn run_into(
        &mut self,
        txn: &mut Txn,
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
            .filter_map(key::send_candidate)
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
                Command::Delivered { key: k, outcome } => {
                    self.delivered(txn, &k, outcome, now, out)?;
                    Reply::Done
                }
            };
            replies.push(reply);
        }
        Ok(replies)
    }

    /// The last gate before a channel: every send is checked against the
    /// candidate's opt-out here, whatever path queued it, and marked in
    /// flight only if it may go. Returns the keys that may go.
    fn clear_for_delivery(
        &self,
        txn: &mut Txn,
        keys: Vec<String>,
        now: Instant,
    ) -> Result<Vec<String>, StoreError> {
        let mut cleared = Vec::with_capacity(keys.len());
        for k in keys {
            let entry = match txn.send(&k) {
                Ok(Some(entry)) => entry,
                Ok(None) => continue,
                Err(e @ StoreError::Corrupt { .. }) => {
                    tracing::error!(%e, send = %k, "an undelivered send belongs to a damaged record; it is left as it is");
                    continue;
                }
                Err(e) => return Err(e),
            };
            if entry.status != SendStatus::Queued || entry.retry_at.is_some() {
                continue;
            }
            let opted_out = txn
                .candidate(&entry.message.candidate)?
                .is_some_and(|c| c.opted_out);
            let channel = entry.message.channel.name().to_string();
            if self.settings.communications_off {
                let why = "communications are off (`communications = \"off\"` in nudge.toml)";
                let kind = LogKind::DeliverySuppressed {
                    key: k,
                    channel,
                    reason: why.into(),
                };
                self.settle(txn, entry, SendStatus::Suppressed(why.into()), kind, now)?;
                continue;
            }
            if opted_out {
                let why = "the candidate opted out before it went out";
                let kind = LogKind::DeliveryFailed {
                    key: k,
                    channel,
                    reason: why.into(),
                };
                self.settle(txn, entry, SendStatus::Failed(why.into()), kind, now)?;
                continue;
            }
            // Durably in flight from here: the journal lists it, the
            // dossier is left as it is until the channel answers.
            txn.launch(&k);
            cleared.push(k);
        }
        Ok(cleared)
    }

    /// Ends a send's time in the delivery queue with its final status, and
    /// records why in the candidate's history.
    fn settle(
        &self,
        txn: &mut Txn,
        mut entry: OutboxEntry,
        status: SendStatus,
        kind: LogKind,
        now: Instant,
    ) -> Result<(), StoreError> {
        if matches!(status, SendStatus::Failed(_)) {
            txn.count(key::counter(&entry.message.campaign, "failed"), 1);
        }
        entry.status = status;
        entry.retry_at = None;
        txn.settle(&entry.message.key);
        txn.put_send(&entry)?;
        let entry_log = LogEntry {
            at: now,
            campaign: entry.message.campaign.clone(),
            kind,
        };
        log(txn, &entry.message.candidate, entry_log)
    }

    /// Fires up to `limit` timers due at or before `now`, bucket by bucket
    /// in due order, in one commit. Returns how many timer entries were
    /// taken (stale ones, passed over, included) and the sends to dispatch.
    pub fn fire_due(
        &mut self,
        now: Instant,
        limit: usize,
    ) -> Result<(usize, Outgoing), StoreError> {
        let store = self.store.clone();
        let mut txn = Txn::new(&store);
        let mut out = Vec::new();
        let fired = self.fire_into(&mut txn, now, limit, &mut out)?;
        if fired.is_none() && txn.is_empty() {
            return Ok((0, Vec::new()));
        }
        self.commit_fired(txn, fired.as_ref())?;
        Ok((fired.map_or(0, |f| f.taken), out))
    }

    /// Commits a transaction that fired timers; the records they finished
    /// are forgotten once it is durable, and their progress is undone if it
    /// fails (the timers are taken again).
    fn commit_fired(&mut self, txn: Txn, fired: Option<&Fired>) -> Result<(), StoreError> {
        match txn.commit() {
            Ok(()) => {
                for k in fired.map(|f| f.finished.as_slice()).unwrap_or_default() {
                    self.open_timers.remove(k);
                }
                Ok(())
            }
            Err(e) => {
                // What this firing took is taken again from the store (the
                // entries already fired in earlier commits are then stale).
                for k in fired.map(|f| f.touched.as_slice()).unwrap_or_default() {
                    self.open_timers.remove(k);
                }
                Err(e)
            }
        }
    }

    /// Takes up to `limit` due timer entries and steps their enrollments
    /// into `txn`. A timer whose dossier does not decode is reported,
    /// passed over until nudge restarts, and its entry kept in the store.
    fn fire_into(
        &mut self,
        txn: &mut Txn,
        now: Instant,
        limit: usize,
        out: &mut Outgoing,
    ) -> Result<Option<Fired>, StoreError> {
        let now_ms = now.timestamp_millis();
        let mut picked: Vec<(Vec<u8>, TimerEntry)> = Vec::new();
        // The records taken from, to read again if the commit fails.
        let mut touched: Vec<Vec<u8>> = Vec::new();
        for item in self.store.timer_records(Some(now)) {
            let (k, v) = item?;
            if self.damaged_records.contains(k.as_ref()) {
                continue;
            }
            let open = match self.open_timers.entry(k.to_vec()) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    match store::decode::<Vec<TimerEntry>>(&k, &v) {
                        Ok(entries) => slot.insert(OpenRecord {
                            entries,
                            done: 0,
                            kept: Vec::new(),
                            rewritten: false,
                        }),
                        Err(e) => {
                            tracing::error!(%e, "a timer record is damaged; it is passed over until nudge restarts and left as it is");
                            self.damaged_records.insert(k.to_vec());
                            continue;
                        }
                    }
                }
            };
            if open.done >= open.entries.len() {
                continue;
            }
            touched.push(k.to_vec());
            while picked.len() < limit {
                let Some(e) = open.entries.get(open.done) else {
                    break;
                };
                if e.due > now_ms {
                    break;
                }
                if self.damaged.contains(&e.candidate) {
                    open.kept.push(e.clone());
                } else {
                    picked.push((k.to_vec(), e.clone()));
                }
                open.done += 1;
            }
            if picked.len() >= limit {
                break;
            }
        }
        if touched.is_empty() {
            return Ok(None);
        }
        let candidates: Vec<&str> = picked.iter().map(|(_, e)| e.candidate.as_str()).collect();
        // Candidates this batch's commands have not touched can step on
        // another thread, with a transaction of their own.
        let theirs = (picked.len() >= PARALLEL_STEPS)
            .then(|| helper_share(candidates.iter().copied(), |c| !txn.has_read(c)))
            .flatten();
        txn.prefetch(&candidates);
        let hits = match theirs {
            Some(theirs) => {
                let halves: (Vec<&(Vec<u8>, TimerEntry)>, Vec<_>) = picked
                    .iter()
                    .partition(|(_, e)| !theirs.contains(e.candidate.as_str()));
                let (mut hits, their_hits) = self.on_two_threads(
                    txn,
                    theirs.iter().map(String::as_str),
                    halves,
                    out,
                    |txn, picks, out| self.fire_all(txn, &picks, now, out),
                )?;
                hits.extend(their_hits);
                hits
            }
            None => {
                let all: Vec<&(Vec<u8>, TimerEntry)> = picked.iter().collect();
                self.fire_all(txn, &all, now, out)?
            }
        };
        for (record, timer) in hits {
            self.damaged.insert(timer.candidate.clone());
            if let Some(open) = self.open_timers.get_mut(record) {
                open.kept.push(timer.clone());
            }
        }
        // A record whose timers have all been taken goes, in the commit that
        // takes the last; one that holds timers of damaged records keeps
        // just those.
        let mut finished = Vec::new();
        for k in &touched {
            let Some(open) = self.open_timers.get_mut(k) else {
                continue;
            };
            if open.done < open.entries.len() || open.rewritten {
                continue;
            }
            if open.kept.is_empty() {
                txn.remove(k.clone());
                finished.push(k.clone());
            } else {
                txn.put(k.clone(), &open.kept);
                open.entries = std::mem::take(&mut open.kept);
                open.done = open.entries.len();
                open.rewritten = true;
            }
        }
        Ok(Some(Fired {
            taken: picked.len(),
            finished,
            touched,
        }))
    }

    /// Runs `work` over the first of `halves` in `txn` and over the second
    /// in a transaction split off `txn` for `their_candidates` (whom the
    /// second half must be about), on two threads. The helper's writes are
    /// then absorbed back into `txn`, and its sends follow this thread's in
    /// `out`.
    fn on_two_threads<'c, W: Send, R: Send>(
        &self,
        txn: &mut Txn,
        their_candidates: impl IntoIterator<Item = &'c str>,
        (mine, theirs): (W, W),
        out: &mut Outgoing,
        work: impl Fn(&mut Txn, W, &mut Outgoing) -> Result<R, StoreError> + Sync,
    ) -> Result<(R, R), StoreError> {
        let mut other = txn.split_off(their_candidates);
        let (mine, theirs) = std::thread::scope(|scope| {
            let helper = scope.spawn(|| {
                let mut out = Vec::new();
                work(&mut other, theirs, &mut out).map(|r| (r, out))
            });
            let mine = work(txn, mine, out);
            let theirs = helper
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            (mine, theirs)
        });
        let mine = mine?;
        let (theirs, their_out) = theirs?;
        txn.absorb(other);
        out.extend(their_out);
        Ok((mine, theirs))
    }

    /// Fires `picks` into `txn`; returns those whose dossier is damaged
    /// (reported here; the caller keeps them in their records).
    fn fire_all<'p>(
        &self,
        txn: &mut Txn,
        picks: &[&'p (Vec<u8>, TimerEntry)],
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Vec<(&'p Vec<u8>, &'p TimerEntry)>, StoreError> {
        let mut hits = Vec::new();
        for (record, timer) in picks.iter().copied() {
            match self.fire_one(txn, timer, now, out) {
                Ok(()) => {}
                Err(e @ StoreError::Corrupt { .. }) => {
                    // Met when the dossier is read, before anything of this
                    // timer is written: the others go on.
                    tracing::error!(
                        %e,
                        candidate = %timer.candidate,
                        campaign = %timer.campaign,
                        "a due timer reaches a damaged record; it is passed over until nudge restarts and the record is left as it is"
                    );
                    hits.push((record, timer));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(hits)
    }

    fn fire_one(
        &self,
        txn: &mut Txn,
        timer: &TimerEntry,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<(), StoreError> {
        let Some(mut enr) = txn.enrollment(&timer.candidate, &timer.campaign)? else {
            return Ok(());
        };
        let due = timer.due();
        if enr.timer != Some(due) {
            // Stale: the enrollment moved on (re-armed, parked, exited)
            // after this timer was armed.
            return Ok(());
        }
        if self.is_paused(txn, &enr.campaign)? || self.campaigns.get(&enr.campaign).is_none() {
            park(txn, &mut enr);
            txn.put_enrollment(&enr)?;
            return Ok(());
        }
        if now - due > self.settings.catch_up {
            // Long downtime: run what fell due now, at a decent hour.
            enr.engine.clock = enr.engine.clock.max(now);
        }
        // This timer is taken: whatever the step arms is a new one.
        enr.timer = None;
        self.step(txn, enr, Step::Wake, now, out)?;
        Ok(())
    }

    fn is_paused(&self, txn: &Txn, campaign: &str) -> Result<bool, StoreError> {
        if let Some(p) = self.paused_flags().get(campaign) {
            return Ok(*p);
        }
        let p = txn.get_raw(&key::paused(campaign))?.is_some();
        self.paused_flags().insert(campaign.to_string(), p);
        Ok(p)
    }

    fn paused_flags(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.paused.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `limit` timer entries not yet taken (some may turn out
    /// stale), in due order: the first records' entries, bucket by bucket,
    /// until a bucket ends with `limit` found. Damaged records are passed
    /// over (one that does not decode is reported when it falls due).
    fn upcoming(&self, limit: usize) -> Result<Vec<TimerEntry>, StoreError> {
        let mut pending: Vec<TimerEntry> = Vec::new();
        let mut bucket = None;
        for item in self.store.timer_records(None) {
            let (k, v) = item?;
            let this = key::record_bucket(&k);
            if this != bucket && pending.len() >= limit {
                // Later buckets hold only later instants.
                break;
            }
            bucket = this;
            if self.damaged_records.contains(k.as_ref()) {
                continue;
            }
            match self.open_timers.get(k.as_ref()) {
                Some(open) => pending.extend(open.entries[open.done..].iter().take(limit).cloned()),
                None => {
                    if let Ok(entries) = store::decode::<Vec<TimerEntry>>(&k, &v) {
                        pending.extend(entries.into_iter().take(limit));
                    }
                }
            }
        }
        pending.sort_by_key(|e| e.due);
        pending.truncate(limit);
        Ok(pending)
    }

    /// Steps the next `limit` timers through the engine at their due
    /// instants, in a transaction that is dropped: nothing is written,
    /// sent or logged. The daemon runs it while it waits for them, so that
    /// the first batches of a burst (the reminders due at 09:00) find their
    /// dossiers in sled's cache and the code and templates warm, instead of
    /// paying for that while the sends are due. Returns the last instant
    /// rehearsed.
    pub fn rehearse(&self, limit: usize) -> Result<Option<Instant>, StoreError> {
        let mut pending = self.upcoming(limit)?;
        pending.retain(|e| !self.damaged.contains(&e.candidate));
        let mut txn = Txn::new(&self.store);
        let candidates: Vec<&str> = pending.iter().map(|e| e.candidate.as_str()).collect();
        txn.prefetch(&candidates);
        let mut out = Vec::new();
        for e in &pending {
            // What goes wrong here goes wrong again, and is reported, when
            // the timer fires.
            let _ = self.fire_one(&mut txn, e, e.due(), &mut out);
        }
        Ok(pending.last().map(TimerEntry::due))
    }

    /// The instant of the earliest timer not yet taken (it may turn out
    /// stale), or of the earliest retry.
    pub fn next_due(&self) -> Result<Option<Instant>, StoreError> {
        let timer = self.upcoming(1)?.first().map(TimerEntry::due);
        let retry = self.store.retries_until(None, 1)?.first().map(|r| r.0);
        Ok(match (timer, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Sends whose retry is due: back to the dispatcher, in one commit.
    pub fn retry_due(&mut self, now: Instant, limit: usize) -> Result<Outgoing, StoreError> {
        let due = self.store.retries_until(Some(now), limit)?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let mut txn = Txn::new(&self.store);
        let mut out = Vec::new();
        for (_, send_key, rkey) in due {
            txn.remove(rkey);
            if let Some(mut entry) = txn.send(&send_key)? {
                if entry.status == SendStatus::Queued && entry.retry_at.is_some() {
                    entry.retry_at = None;
                    txn.put_send(&entry)?;
                    txn.enqueue(&send_key);
                    entry.message.in_flight =
                        self.premark(&mut txn, &send_key, entry.message.channel);
                    out.push(entry.message);
                }
            }
        }
        txn.commit()?;
        Ok(out)
    }

    /// Sends not yet delivered, in flight ones first, then in the order
    /// they were decided; marks those that were in flight on a channel that
    /// cannot recognise a repeat as possible duplicates (and logs it) before
    /// they go again. All at once: see [`Core::begin_recovery`] for the
    /// daemon's way, a chunk at a time.
    pub fn recover(
        &mut self,
        idempotent: impl Fn(Channel) -> bool,
        now: Instant,
    ) -> Result<Vec<Pending>, StoreError> {
        self.begin_recovery();
        let mut all = Vec::new();
        loop {
            all.extend(self.recover_next(&idempotent, now, 4096)?);
            if !self.recovering() {
                return Ok(all);
            }
        }
    }

    /// Lists the sends the journal says were queued or in flight when the
    /// previous process stopped (without reading their dossiers yet):
    /// (queued, in flight).
    pub fn begin_recovery(&mut self) -> (usize, usize) {
        let mut listed = self.store.queued_sends();
        // In flight first: they are the oldest, and the ones a restart owes
        // an answer soonest.
        listed.sort_by_key(|(_, flying)| !flying);
        let in_flight = listed.iter().filter(|(_, f)| *f).count();
        let queued = listed.len() - in_flight;
        self.recovering = listed.into();
        self.tidy_journal = true;
        (queued, in_flight)
    }

    /// Stops handing back the sends found at startup (after a store error:
    /// the journal keeps them for the next start).
    pub fn abandon_recovery(&mut self) {
        self.recovering.clear();
        self.tidy_journal = false;
    }

    /// Whether sends found at startup are still to be handed back.
    pub fn recovering(&self) -> bool {
        !self.recovering.is_empty() || self.tidy_journal
    }

    /// The next `limit` sends of the recovery, read from their dossiers and
    /// made ready to go again, in one commit (settled ones leave the
    /// journal).
    pub fn recover_next(
        &mut self,
        idempotent: impl Fn(Channel) -> bool,
        now: Instant,
        limit: usize,
    ) -> Result<Vec<Pending>, StoreError> {
        let mut pending = Vec::new();
        let mut txn = Txn::new(&self.store);
        if std::mem::take(&mut self.tidy_journal) {
            // Handed to a channel and settled since, but listed still.
            for k in self.store.flying_unqueued() {
                txn.settle(&k);
            }
        }
        let take = limit.max(1).min(self.recovering.len());
        let chunk: Vec<(String, bool)> = self.recovering.drain(..take).collect();
        for (k, was_in_flight) in chunk {
            let mut entry = match txn.send(&k) {
                Ok(Some(entry)) => entry,
                Ok(None) => {
                    txn.settle(&k);
                    continue;
                }
                Err(e @ StoreError::Corrupt { .. }) => {
                    tracing::error!(%e, send = %k, "an undelivered send belongs to a damaged record; it is left as it is");
                    continue;
                }
                Err(e) => return Err(e),
            };
            if entry.retry_at.is_some() || entry.status != SendStatus::Queued {
                // Settled after its journal record was written, or waiting
                // for its retry (the retry index brings it back): off the
                // queue.
                txn.settle(&k);
                continue;
            }
            if was_in_flight && !idempotent(entry.message.channel) && !entry.possible_duplicate {
                entry.possible_duplicate = true;
                txn.put_send(&entry)?;
                log(&mut txn, &entry.message.candidate,
                    LogEntry {
                        at: now,
                        campaign: entry.message.campaign.clone(),
                        kind: LogKind::DeliveryFailed {
                            key: k.clone(),
                            channel: entry.message.channel.name().into(),
                            reason: "in flight when nudge stopped; sent again, the candidate may get it twice".into(),
                        },
                    },
                )?;
            }
            let channel = entry.message.channel;
            // In flight already; on the other channels the dispatcher marks
            // it again (checking the opt-out once more).
            entry.message.in_flight = if was_in_flight {
                self.premarked.contains(&channel)
            } else {
                self.premark(&mut txn, &k, channel)
            };
            pending.push(Pending {
                message: entry.message,
                was_in_flight,
            });
        }
        if !txn.is_empty() {
            txn.commit()?;
        }
        Ok(pending)
    }

    /// Swaps in new campaign versions after checking that no candidate waits
    /// in a state the new version removes (then nothing changes). The
    /// candidates of a changed campaign move onto its new version at once,
    /// with their timers re-armed by it, so that a wait made shorter is not
    /// served at the old, later instant.
    pub fn reload(&mut self, new: Campaigns, now: Instant) -> Result<ReloadReport, ApiError> {
        let mut refusals = Vec::new();
        for (name, old) in self.campaigns.iter() {
            let counts = self.state_counts(name)?;
            let waiting: Vec<(&String, i64)> = counts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(s, n)| (s, *n))
                .collect();
            match new.get(name) {
                None if !waiting.is_empty() => refusals.push(format!(
                    "campaign `{name}` is gone from the campaign files but {} candidates are still in it",
                    waiting.iter().map(|(_, n)| n).sum::<i64>()
                )),
                Some(c) => {
                    for (state, n) in waiting {
                        if c.machine.state_index(state).is_none() {
                            refusals.push(format!(
                                "campaign `{name}`: state `{state}` is removed but {n} candidate{} wait in it",
                                if n == 1 { "" } else { "s" }
                            ));
                        }
                    }
                    let _ = old;
                }
                None => {}
            }
        }
        if !refusals.is_empty() {
            return Err(ApiError::conflict(format!(
                "reload refused, the running version is kept: {}",
                refusals.join("; ")
            )));
        }
        let changed: Vec<String> = new
            .iter()
            .filter(|(n, c)| self.campaigns.get(n).is_none_or(|o| o.version != c.version))
            .map(|(n, _)| n.clone())
            .chain(
                self.campaigns
                    .iter()
                    .filter(|(n, _)| new.get(n).is_none())
                    .map(|(n, _)| n.clone()),
            )
            .collect();
        self.pin_versions(&new)?;
        self.migrate_all(&new, &changed, now)?;
        self.campaigns = new;
        Ok(ReloadReport {
            changed,
            campaigns: self.campaigns.iter().map(|(n, _)| n.clone()).collect(),
        })
    }

    /// Moves every live enrollment of the `changed` campaigns onto its
    /// version in `new` and re-arms its timer, in commits of a bounded size
    /// (each enrollment moves whole; one missed by a crash moves when its
    /// old timer fires). A record that does not decode is left as it is:
    /// the timer that reaches it reports it.
    fn migrate_all(
        &self,
        new: &Campaigns,
        changed: &[String],
        now: Instant,
    ) -> Result<(), StoreError> {
        const CHUNK: usize = 10_000;
        let mut txn = Txn::new(&self.store);
        let mut moved = 0;
        for dossier in self.store.dossiers() {
            let Ok(dossier) = dossier else {
                continue;
            };
            for mut enr in dossier.enrollments {
                let Some(campaign) = new.get(&enr.campaign) else {
                    continue;
                };
                if !changed.contains(&enr.campaign)
                    || enr.engine.outcome.is_some()
                    || enr.version == campaign.version
                {
                    continue;
                }
                migrate(&mut txn, &mut enr, campaign, now)?;
                rearm(&mut txn, &mut enr, &campaign.machine);
                txn.put_enrollment(&enr)?;
                moved += 1;
            }
            if moved >= CHUNK {
                moved = 0;
                std::mem::replace(&mut txn, Txn::new(&self.store)).commit()?;
            }
        }
        if !txn.is_empty() {
            txn.commit()?;
        }
        Ok(())
    }

    /// Replaces the templates (after a reload).
    pub fn set_templates(&mut self, templates: Option<Arc<Templates>>) {
        self.templates = templates;
    }

    /// Stores the source of every loaded campaign version, so enrollments'
    /// pinned versions can always be read back.
    pub fn pin_versions(&self, campaigns: &Campaigns) -> Result<(), StoreError> {
        let mut txn = Txn::new(&self.store);
        for (name, c) in campaigns.iter() {
            let k = key::version(name, &c.version);
            if self.store.get_raw(&k)?.is_none() {
                txn.put_raw(k, c.source.as_bytes().to_vec());
            }
        }
        if !txn.is_empty() {
            txn.commit()?;
        }
        Ok(())
    }

    /// Candidates per state of a campaign (from the counters).
    pub fn state_counts(&self, campaign: &str) -> Result<BTreeMap<String, i64>, StoreError> {
        let mut out = BTreeMap::new();
        for item in self.store.scan_raw(&key::counters_of(campaign)) {
            let (k, v) = item?;
            let name = String::from_utf8_lossy(&k[key::counters_of(campaign).len()..]).into_owned();
            if let Some(state) = name.strip_prefix("state:") {
                out.insert(state.to_string(), store::counter_value(&v));
            }
        }
        Ok(out)
    }

    /// Enrollments, in order: who each candidate is and whether they are
    /// enrolled already is settled one after another; the first steps of
    /// the new enrollments then run on two threads when there are many
    /// (a candidate's on one of them). The same candidate enrolled twice
    /// in one campaign within the run sees the first enrollment.
    fn enroll_all(
        &self,
        txn: &mut Txn,
        reqs: &[EnrollRequest],
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Vec<Reply>, StoreError> {
        let mut replies: Vec<Option<Reply>> = Vec::with_capacity(reqs.len());
        let mut starts: Vec<Start> = Vec::new();
        // Candidates whose dossier this transaction had read before the run
        // stay on this thread; the others may go to the helper.
        let mut pinned: HashSet<String> = HashSet::new();
        let mut seen: HashSet<String> = HashSet::new();
        // (candidate, campaign) of the enrollments in `starts`.
        let mut starting: HashSet<(String, String)> = HashSet::new();
        for (at, req) in reqs.iter().enumerate() {
            let mut admitted = self.admit(txn, req, now, &mut pinned, &mut seen)?;
            if let Admit::Start(start) = &admitted {
                let pair = (
                    start.candidate.id.clone(),
                    start.campaign.machine.name.clone(),
                );
                if !starting.insert(pair) {
                    starting.clear();
                    // Enrolled earlier in this run: its first step is taken
                    // now, so this one finds it.
                    for (i, reply) in
                        self.start_all(txn, std::mem::take(&mut starts), &pinned, now, out)?
                    {
                        replies[i] = Some(reply);
                    }
                    admitted = self.admit(txn, req, now, &mut pinned, &mut seen)?;
                    if let Admit::Start(start) = &admitted {
                        starting.insert((
                            start.candidate.id.clone(),
                            start.campaign.machine.name.clone(),
                        ));
                    }
                }
            }
            match admitted {
                Admit::Done(reply) => replies.push(Some(reply)),
                Admit::Start(mut start) => {
                    start.at = at;
                    starts.push(start);
                    replies.push(None);
                }
            }
        }
        for (i, reply) in self.start_all(txn, starts, &pinned, now, out)? {
            replies[i] = Some(reply);
        }
        Ok(replies
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Reply::Error(ApiError::internal("an enrollment was lost")))
            })
            .collect())
    }

    /// The first steps of new enrollments, on two threads when there are
    /// many; a reply for each, by its place in the run.
    fn start_all(
        &self,
        txn: &mut Txn,
        starts: Vec<Start>,
        pinned: &HashSet<String>,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Vec<(usize, Reply)>, StoreError> {
        let each = |txn: &mut Txn, starts: Vec<Start>, out: &mut Outgoing| {
            let mut replies = Vec::with_capacity(starts.len());
            for s in starts {
                let enr = self.start_enrollment(txn, &s.campaign, &s.candidate, now, out)?;
                replies.push((
                    s.at,
                    Reply::Enrolled(EnrollResponse {
                        candidate: s.candidate.id.clone(),
                        link: self.link(&s.candidate),
                        enrolled: true,
                        at: exact_instant(now),
                        state: enr.state_name.clone(),
                        variants: enr.variants.clone(),
                        filter_matched: s.filter_matched,
                    }),
                ));
            }
            Ok::<_, StoreError>(replies)
        };
        let ids = starts.iter().map(|s| s.candidate.id.as_str());
        let Some(theirs) = helper_share(ids, |id| !pinned.contains(id)) else {
            return each(txn, starts, out);
        };
        let halves: (Vec<Start>, Vec<Start>) = starts
            .into_iter()
            .partition(|s| !theirs.contains(&s.candidate.id));
        let (mut replies, their_replies) =
            self.on_two_threads(txn, theirs.iter().map(String::as_str), halves, out, each)?;
        replies.extend(their_replies);
        Ok(replies)
    }

    /// Who an enrollment's candidate is (created or updated), and whether
    /// it is to start: the part of an enrollment taken one at a time.
    fn admit(
        &self,
        txn: &mut Txn,
        req: &EnrollRequest,
        now: Instant,
        pinned: &mut HashSet<String>,
        seen: &mut HashSet<String>,
    ) -> Result<Admit, StoreError> {
        let Some(campaign) = self.campaigns.get(&req.campaign).cloned() else {
            return Ok(Admit::Done(Reply::Error(ApiError::unknown_campaign(
                &req.campaign,
                &self.campaigns,
            ))));
        };
        // A dossier this transaction had read already is not read again.
        let read = txn.dossiers_held();
        let candidate =
            match self.upsert_candidate(txn, req.external_id.as_deref(), &req.fields, now)? {
                Ok(c) => c,
                Err(e) => return Ok(Admit::Done(Reply::Error(e))),
            };
        if seen.insert(candidate.id.clone()) && txn.dossiers_held() == read {
            pinned.insert(candidate.id.clone());
        }
        let existing = txn.enrollment(&candidate.id, &campaign.machine.name)?;
        if candidate.opted_out && existing.is_none() {
            return Ok(Admit::Done(Reply::Error(ApiError::conflict(format!(
                "candidate {} opted out: nothing is ever sent to them again, so they are not enrolled",
                candidate.id
            )))));
        }
        if let Some(existing) = existing {
            return Ok(Admit::Done(Reply::Enrolled(EnrollResponse {
                candidate: candidate.id.clone(),
                link: self.link(&candidate),
                enrolled: false,
                at: exact_instant(existing.engine.enrolled_at),
                state: existing.state_name.clone(),
                variants: existing.variants.clone(),
                filter_matched: true,
            })));
        }
        let filter_matched = campaign.machine.accepts(&engine_candidate(&candidate));
        Ok(Admit::Start(Start {
            at: 0,
            campaign,
            candidate,
            filter_matched,
        }))
    }

    fn start_enrollment(
        &self,
        txn: &mut Txn,
        campaign: &Arc<Campaign>,
        candidate: &CandidateRecord,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Enrollment, StoreError> {
        let machine = &campaign.machine;
        let engine_candidate = engine_candidate(candidate);
        let variants: Vec<usize> = machine
            .experiments
            .iter()
            .map(|e| engine::assign_variant(&machine.name, e, &candidate.id))
            .collect();
        let variant_names = variant_names(machine, &variants);
        let zone = engine_candidate.zone(&machine.zone);
        let ctx = Ctx {
            candidate: &engine_candidate,
            zone,
            other_sends: &[],
        };
        let first = engine::enroll(machine, &ctx, variants, now);
        let enr = Enrollment {
            campaign: machine.name.clone(),
            candidate: candidate.id.clone(),
            version: campaign.version.clone(),
            state_name: machine.states[0].name.clone(),
            variants: variant_names.clone(),
            engine: first.state.clone(),
            timer: None,
            parked: false,
        };
        txn.count(
            key::counter(&machine.name, &format!("state:{}", enr.state_name)),
            1,
        );
        log(
            txn,
            &candidate.id,
            LogEntry {
                at: now,
                campaign: machine.name.clone(),
                kind: LogKind::Enrolled {
                    state: enr.state_name.clone(),
                    variants: variant_names,
                    version: campaign.version.clone(),
                },
            },
        )?;
        // Records of `enroll` beyond `Enrolled` (a split, a final state).
        let records: Vec<_> = first
            .records
            .into_iter()
            .filter(|r| !matches!(r.what, Happening::Enrolled { .. }))
            .collect();
        let mut enr =
            self.apply_records(txn, enr, machine, &engine_candidate, zone, records, out)?;
        if self.is_paused(txn, &machine.name)? {
            park(txn, &mut enr);
            txn.put_enrollment(&enr)?;
            return Ok(enr);
        }
        self.step(txn, enr, Step::Wake, now, out)
    }

    fn event(
        &self,
        txn: &mut Txn,
        req: &EventRequest,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Result<EventResponse, ApiError>, StoreError> {
        let Some(mut candidate) = self.find_candidate(txn, &req.candidate)? else {
            return Ok(Err(ApiError::not_found(format!(
                "no candidate `{}`",
                req.candidate
            ))));
        };
        let at = match &req.at {
            Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
                // The store keeps milliseconds: so does the engine.
                Ok(t) => t.with_timezone(&chrono::Utc).trunc_subsecs(3),
                Err(_) => {
                    return Ok(Err(ApiError::bad_request(format!(
                        "`{t}` is not an RFC 3339 instant such as `2026-12-01T09:00:00Z`"
                    ))))
                }
            },
            None => now,
        };
        // An event from the future would let the engine run ahead of the
        // clock and decide sends before their time.
        if at > now + Duration::minutes(1) {
            return Ok(Err(ApiError::bad_request(format!(
                "event at {} is in the future (now is {}): record events when they happen",
                rfc3339(at),
                rfc3339(now)
            ))));
        }
        let seen_key = req.id.as_ref().map(|id| key::event_id(&candidate.id, id));
        if let Some(k) = &seen_key {
            if let Some(mut first) = txn.get::<EventResponse>(k)? {
                first.repeated = true;
                return Ok(Ok(first));
            }
        }
        if !is_identifier(&req.event) {
            return Ok(Err(ApiError::bad_request(format!(
                "`{}` is not an event name: use lowercase letters, digits and `_`",
                req.event
            ))));
        }
        log(
            txn,
            &candidate.id,
            LogEntry {
                at,
                campaign: String::new(),
                kind: LogKind::Received {
                    event: req.event.clone(),
                    fields: req.fields.clone(),
                },
            },
        )?;
        if req.event == engine::step::OPTED_OUT && !candidate.opted_out {
            candidate.opted_out = true;
            txn.put_candidate(&candidate)?;
        }
        let mut effects = Vec::new();
        let mut fresh = Vec::new();
        let engine_candidate = engine_candidate(&candidate);
        for (name, campaign) in self.campaigns.iter() {
            let Some(rule) = &campaign.machine.enroll else {
                continue;
            };
            if rule.event != req.event || candidate.opted_out {
                continue;
            }
            if txn.enrollment(&candidate.id, name)?.is_some() {
                continue;
            }
            if !campaign.machine.accepts(&engine_candidate) {
                effects.push(format!(
                    "{name}: not enrolled (the `where` filter does not take them)"
                ));
                continue;
            }
            let enr = self.start_enrollment(txn, campaign, &candidate, at, out)?;
            effects.push(format!("{name}: enrolled in {}", enr.state_name));
            fresh.push(name.clone());
        }
        for enr in txn.enrollments_of(&candidate.id)? {
            if fresh.contains(&enr.campaign) || enr.engine.outcome.is_some() {
                continue;
            }
            let before = enr.state_name.clone();
            let campaign = enr.campaign.clone();
            let after = self.step(
                txn,
                enr,
                Step::Event {
                    name: &req.event,
                    fields: &req.fields,
                    at,
                },
                now,
                out,
            )?;
            match &after.engine.outcome {
                Some(o) => effects.push(format!("{campaign}: exited {o}")),
                None if after.state_name != before => {
                    effects.push(format!("{campaign}: entered {}", after.state_name))
                }
                None => {}
            }
        }
        let response = EventResponse {
            candidate: candidate.id,
            at: exact_instant(at),
            effects,
            repeated: false,
        };
        if let Some(k) = seen_key {
            txn.put(k, &response);
        }
        Ok(Ok(response))
    }

    fn set_paused(
        &self,
        txn: &mut Txn,
        campaign: &str,
        paused: bool,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Result<(), ApiError>, StoreError> {
        if self.campaigns.get(campaign).is_none() {
            return Ok(Err(ApiError::unknown_campaign(campaign, &self.campaigns)));
        }
        let pkey = key::paused(campaign);
        let was = self.is_paused(txn, campaign)?;
        if was == paused {
            return Ok(Ok(()));
        }
        self.paused_flags().insert(campaign.to_string(), paused);
        if paused {
            txn.put_raw(pkey, vec![1]);
            return Ok(Ok(()));
        }
        txn.remove(pkey);
        // Unpark: everything that fell due while paused runs now.
        let parked: Vec<String> = self
            .store
            .scan_raw(&key::parked_of(campaign))
            .map(|r| {
                r.map(|(k, _)| {
                    String::from_utf8_lossy(&k[key::parked_of(campaign).len()..]).into_owned()
                })
            })
            .collect::<Result<_, _>>()?;
        for candidate in parked {
            txn.remove(key::parked(campaign, &candidate));
            let Some(mut enr) = txn.enrollment(&candidate, campaign)? else {
                continue;
            };
            enr.parked = false;
            enr.engine.clock = enr.engine.clock.max(now);
            self.step(txn, enr, Step::Wake, now, out)?;
        }
        Ok(Ok(()))
    }

    /// A channel's answer: delivered; failed for a passing reason (tried
    /// again after a backoff, durably); or failed for good (the next channel
    /// of the campaign is tried; a bounce is also a `bounced` event).
    fn delivered(
        &self,
        txn: &mut Txn,
        k: &str,
        outcome: Result<Delivered, SendError>,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<(), StoreError> {
        let Some(mut entry) = txn.send(k)? else {
            return Ok(());
        };
        if entry.status != SendStatus::Queued {
            // Settled already (an answer that arrives twice).
            return Ok(());
        }
        entry.attempts += 1;
        let channel = entry.message.channel.name().to_string();
        let candidate = entry.message.candidate.clone();
        let campaign = entry.message.campaign.clone();
        let note = |txn: &mut Txn, kind: LogKind| {
            log(
                txn,
                &candidate,
                LogEntry {
                    at: now,
                    campaign: campaign.clone(),
                    kind,
                },
            )
        };
        let error = match outcome {
            Ok(d) => {
                let kind = LogKind::Delivered {
                    key: k.to_string(),
                    channel,
                    duplicate: d.duplicate,
                    possible_duplicate: entry.possible_duplicate,
                };
                return self.settle(txn, entry, SendStatus::Delivered, kind, now);
            }
            Err(e) => e,
        };
        if error.is_retryable() {
            let backoff = self
                .settings
                .backoff
                .delay(entry.attempts, super::policy::jitter());
            if let Some(wait) = backoff {
                let wait = match &error {
                    SendError::Throttled { retry_after, .. } => wait.max(*retry_after),
                    _ => wait,
                };
                let when = now + Duration::from_std(wait).unwrap_or(Duration::hours(1));
                entry.status = SendStatus::Queued;
                entry.retry_at = Some(when.timestamp_millis());
                txn.put_raw(key::retry(when, k), Vec::new());
                txn.settle(k);
                txn.put_send(&entry)?;
                return note(
                    txn,
                    LogKind::Retrying {
                        key: k.to_string(),
                        channel,
                        reason: error.to_string(),
                        at: when.timestamp_millis(),
                    },
                );
            }
        }
        // Failed for good (or out of attempts).
        let kind = LogKind::DeliveryFailed {
            key: k.to_string(),
            channel: channel.clone(),
            reason: error.to_string(),
        };
        self.settle(
            txn,
            entry.clone(),
            SendStatus::Failed(error.to_string()),
            kind,
            now,
        )?;
        if matches!(error, SendError::Unsubscribed(_)) {
            // A STOP to the provider is the candidate's opt-out: recorded as
            // theirs, which ends every campaign and every later send, so
            // there is no next channel to try.
            let stop = EventRequest {
                candidate: candidate.clone(),
                event: engine::step::OPTED_OUT.into(),
                at: None,
                fields: BTreeMap::from([("channel".to_string(), channel.clone())]),
                id: Some(format!("unsubscribed:{k}")),
            };
            if let Err(e) = self.event(txn, &stop, now, out)? {
                tracing::warn!(key = k, "recording the opt-out failed: {e}");
            }
            return Ok(());
        }
        if matches!(error, SendError::Bounced(_)) {
            let bounce = EventRequest {
                candidate: candidate.clone(),
                event: "bounced".into(),
                at: None,
                fields: BTreeMap::from([("channel".to_string(), channel.clone())]),
                id: Some(format!("bounce:{k}")),
            };
            if let Err(e) = self.event(txn, &bounce, now, out)? {
                tracing::warn!(key = k, "recording the bounce failed: {e}");
            }
        }
        self.fall_back(txn, &entry, now, out)
    }

    /// Tries a failed send on the campaign's next channel with an address,
    /// unless the candidate has left the campaign meanwhile.
    fn fall_back(
        &self,
        txn: &mut Txn,
        failed: &OutboxEntry,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<(), StoreError> {
        let Some(&next) = failed.fallbacks.first() else {
            return Ok(());
        };
        let m = &failed.message;
        let Some(campaign) = self.campaigns.get(&m.campaign).cloned() else {
            return Ok(());
        };
        let Some(enr) = txn.enrollment(&m.candidate, &m.campaign)? else {
            return Ok(());
        };
        let Some(record) = txn.candidate(&m.candidate)? else {
            return Ok(());
        };
        if enr
            .engine
            .outcome
            .as_deref()
            .is_some_and(|o| o != enr.state_name)
        {
            // Exited by an event (a bounce with `exit on bounced`, a
            // completion): the message has no reason to go any more. A final
            // state's own message still goes.
            return Ok(());
        }
        let candidate = engine_candidate(&record);
        let zone = candidate.zone(&campaign.machine.zone);
        let base = m.key.split('>').next().unwrap_or(&m.key);
        let send_key = format!("{base}>{next}");
        log(
            txn,
            &m.candidate,
            LogEntry {
                at: now,
                campaign: m.campaign.clone(),
                kind: LogKind::FellBack {
                    key: m.key.clone(),
                    from: m.channel.name().into(),
                    to: next.name().into(),
                },
            },
        )?;
        self.queue_send(
            txn,
            &enr,
            &campaign.machine,
            &candidate,
            zone,
            &m.template,
            &failed.fallbacks,
            &send_key,
            now,
            out,
        )
    }

    fn upsert_candidate(
        &self,
        txn: &mut Txn,
        external_id: Option<&str>,
        fields: &BTreeMap<String, String>,
        now: Instant,
    ) -> Result<Result<CandidateRecord, ApiError>, StoreError> {
        let mut clean = BTreeMap::new();
        for (k, v) in fields {
            let (k, v) = (k.trim().to_lowercase(), v.trim());
            if k.is_empty() {
                return Ok(Err(ApiError::bad_request("a candidate field needs a name")));
            }
            if !v.is_empty() {
                clean.insert(k, v.to_string());
            }
        }
        // Channels send to E.164 numbers only; a number that cannot be put
        // in that form is refused now, not at the first SMS.
        if let Some(phone) = clean.get("phone") {
            match to_e164(phone, &self.settings.phone_country_code) {
                Ok(e164) => {
                    clean.insert("phone".to_string(), e164);
                }
                Err(e) => {
                    let who = external_id
                        .map(str::trim)
                        .filter(|id| !id.is_empty())
                        .or_else(|| clean.get("email").map(String::as_str))
                        .or_else(|| clean.get("name").map(String::as_str))
                        .unwrap_or("without id or email");
                    return Ok(Err(ApiError::bad_request(format!(
                        "candidate `{who}`: {e}"
                    ))));
                }
            }
        }
        let identity = external_id
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .or_else(|| {
                clean
                    .get("email")
                    .map(|e| format!("email:{}", e.to_lowercase()))
            })
            .or_else(|| {
                clean.get("phone").map(|p| {
                    format!(
                        "phone:{}",
                        p.chars()
                            .filter(|c| c.is_ascii_digit() || *c == '+')
                            .collect::<String>()
                    )
                })
            });
        if let Some(identity) = &identity {
            if let Some(mut existing) = txn.candidate_known_as(identity)? {
                let mut changed = false;
                for (k, v) in clean {
                    if existing.fields.get(&k) != Some(&v) {
                        existing.fields.insert(k, v);
                        changed = true;
                    }
                }
                if changed {
                    txn.put_candidate(&existing)?;
                }
                return Ok(Ok(existing));
            }
        }
        // Candidate ids are short and dense (`c1`, `c2`, ...): people type them.
        let counter = key::meta("next_candidate");
        let next = txn
            .get_raw(&counter)?
            .map_or(1, |v| store::counter_value(&v) + 1)
            .max(self.store.id_floor() as i64 + 1);
        txn.put_raw(counter, next.to_be_bytes().to_vec());
        let id = key::numbered_candidate(next as u64);
        let token = match new_token() {
            Ok(t) => format!("{id}-{t}"),
            Err(e) => return Ok(Err(ApiError::internal(e))),
        };
        clean.insert("id".into(), id.clone());
        let record = CandidateRecord {
            id: id.clone(),
            external_id: identity.clone(),
            fields: clean,
            token: token.clone(),
            created_at: now,
            opted_out: false,
        };
        txn.new_candidate(record.clone());
        if let Some(identity) = &identity {
            txn.know_as(identity, next as u64);
        }
        log(
            txn,
            &id,
            LogEntry {
                at: now,
                campaign: String::new(),
                kind: LogKind::Created {
                    source: record.fields.get("source").cloned(),
                },
            },
        )?;
        Ok(Ok(record))
    }

    /// A candidate by id, external id, email or phone identity, or token.
    pub fn find_candidate(
        &self,
        txn: &mut Txn,
        who: &str,
    ) -> Result<Option<CandidateRecord>, StoreError> {
        find(txn, who)
    }

    fn link(&self, candidate: &CandidateRecord) -> String {
        self.settings
            .interview_url
            .replace("{token}", &candidate.token)
    }

    /// One engine step for one enrollment, and everything it causes.
    fn step(
        &self,
        txn: &mut Txn,
        mut enr: Enrollment,
        input: Step,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Enrollment, StoreError> {
        let Some(campaign) = self.campaigns.get(&enr.campaign).cloned() else {
            return Ok(enr);
        };
        let machine = &campaign.machine;
        if enr.version != campaign.version {
            migrate(txn, &mut enr, &campaign, now)?;
        }
        let Some(candidate) = txn.candidate(&enr.candidate)? else {
            return Ok(enr);
        };
        let engine_candidate = engine_candidate(&candidate);
        let zone = engine_candidate.zone(&machine.zone);
        let others = if machine.rate_limits.is_empty() {
            Vec::new()
        } else {
            other_sends(txn, &enr)?
        };
        let ctx = Ctx {
            candidate: &engine_candidate,
            zone,
            other_sends: &others,
        };
        let state = std::mem::take(&mut enr.engine);
        let result = match input {
            Step::Wake => engine::step(machine, &ctx, state, Input::Wake, now),
            Step::Event { name, fields, at } => {
                let at = at.max(state.clock);
                let first = engine::step(machine, &ctx, state, Input::Event { name, fields }, at);
                // What the event makes due at once (a split, a past deadline)
                // runs now rather than on the next timer tick.
                match first.next_wake {
                    Some(w) if w <= now.max(at) => {
                        let mut second =
                            engine::step(machine, &ctx, first.state, Input::Wake, now.max(at));
                        let mut records = first.records;
                        records.append(&mut second.records);
                        second.records = records;
                        second
                    }
                    _ => first,
                }
            }
        };
        enr.engine = result.state;
        self.apply_records(
            txn,
            enr,
            machine,
            &engine_candidate,
            zone,
            result.records,
            out,
        )
    }

    /// Logs what the engine decided, queues its sends, moves the counters,
    /// re-arms the timer, and writes the enrollment.
    #[allow(clippy::too_many_arguments)]
    fn apply_records(
        &self,
        txn: &mut Txn,
        mut enr: Enrollment,
        machine: &Machine,
        candidate: &Candidate,
        zone: Tz,
        records: Vec<engine::Record>,
        out: &mut Outgoing,
    ) -> Result<Enrollment, StoreError> {
        let campaign = machine.name.clone();
        let state_name = |id: &usize| {
            machine
                .states
                .get(*id)
                .map_or_else(|| "?".to_string(), |s| s.name.clone())
        };
        for record in records {
            let at = record.at;
            let kind = match record.what {
                Happening::Enrolled { .. } => continue,
                Happening::Entered { state, from, by } => {
                    let (old, new) = (state_name(&from), state_name(&state));
                    txn.count(key::counter(&campaign, &format!("state:{old}")), -1);
                    txn.count(key::counter(&campaign, &format!("state:{new}")), 1);
                    enr.state_name = new.clone();
                    LogKind::Entered {
                        state: new,
                        from: old,
                        by: trigger_text(machine, &by),
                    }
                }
                Happening::Sent {
                    state,
                    template,
                    channel,
                    visit,
                    index,
                } => {
                    let send_key = format!("{}/{}/{}/{}", campaign, enr.candidate, visit, index);
                    let entry = LogEntry {
                        at,
                        campaign: campaign.clone(),
                        kind: LogKind::Sent {
                            state: state_name(&state),
                            template: template.clone(),
                            channel: channel.name().into(),
                            key: send_key.clone(),
                        },
                    };
                    log(txn, &enr.candidate, entry)?;
                    // Without `via`, the campaign's later channels with an
                    // address are the fallbacks if this one fails for good.
                    let via = machine
                        .states
                        .get(state)
                        .and_then(|s| s.sends.get(index))
                        .and_then(|s| s.via);
                    let mut route = vec![channel];
                    if via.is_none() {
                        route.extend(
                            machine
                                .channels
                                .iter()
                                .copied()
                                .skip_while(|c| *c != channel)
                                .skip(1)
                                .filter(|c| candidate.has_address(*c)),
                        );
                    }
                    self.queue_send(
                        txn, &enr, machine, candidate, zone, &template, &route, &send_key, at, out,
                    )?;
                    continue;
                }
                Happening::Held {
                    state,
                    template,
                    until,
                    reason,
                } => LogKind::Held {
                    state: state_name(&state),
                    template,
                    until: until.timestamp_millis(),
                    reason: hold_text(machine, state, reason),
                },
                Happening::Cancelled {
                    state,
                    template,
                    reason,
                } => LogKind::Cancelled {
                    state: state_name(&state),
                    template,
                    reason: cancel_text(machine, &reason),
                },
                Happening::Skipped {
                    state,
                    template,
                    channel,
                } => LogKind::Skipped {
                    state: state_name(&state),
                    template,
                    reason: skip_text(machine, channel),
                },
                Happening::Suppressed {
                    state,
                    template,
                    limit,
                } => LogKind::Suppressed {
                    state: state_name(&state),
                    template,
                    reason: format!("limit {limit} total reached"),
                },
                Happening::DeadlineStarted { deadline } => LogKind::DeadlineStarted {
                    deadline: deadline.timestamp_millis(),
                },
                Happening::Exited { outcome, converted } => {
                    txn.count(
                        key::counter(&campaign, &format!("state:{}", enr.state_name)),
                        -1,
                    );
                    txn.count(key::counter(&campaign, &format!("outcome:{outcome}")), 1);
                    LogKind::Exited { outcome, converted }
                }
            };
            log(
                txn,
                &enr.candidate,
                LogEntry {
                    at,
                    campaign: campaign.clone(),
                    kind,
                },
            )?;
        }
        rearm(txn, &mut enr, machine);
        txn.put_enrollment(&enr)?;
        Ok(enr)
    }

    /// Renders a send and puts it in the outbox and the delivery queue.
    #[allow(clippy::too_many_arguments)]
    fn queue_send(
        &self,
        txn: &mut Txn,
        enr: &Enrollment,
        machine: &Machine,
        candidate: &Candidate,
        zone: Tz,
        template: &str,
        route: &[Channel],
        send_key: &str,
        at: Instant,
        out: &mut Outgoing,
    ) -> Result<(), StoreError> {
        let Some((&channel, fallbacks)) = route.split_first() else {
            return Ok(());
        };
        if txn.unsettled_send(send_key)?.is_some() {
            return Ok(());
        }
        let record = txn.candidate(&enr.candidate)?;
        let opted_out = record.as_ref().is_some_and(|r| r.opted_out);
        let to = match channel {
            Channel::Email => candidate.field("email").unwrap_or_default().to_string(),
            Channel::Sms | Channel::Whatsapp => {
                candidate.field("phone").unwrap_or_default().to_string()
            }
            Channel::Webhook => String::new(),
        };
        let link = record.as_ref().map(|r| self.link(r)).unwrap_or_default();
        let unsubscribe = (channel == Channel::Email).then(|| format!("{link}/unsubscribe"));
        let rendered = match &self.templates {
            Some(t) => {
                let vars = Vars {
                    candidate: Vars::candidate_fields(candidate),
                    campaign: crate::templates::CampaignVars {
                        name: machine.name.clone(),
                        title: machine
                            .title
                            .clone()
                            .unwrap_or_else(|| machine.name.clone()),
                    },
                    link: link.clone(),
                    deadline: enr.engine.deadline.map(|d| format_deadline(d, zone)),
                    time_left: enr.engine.deadline.map(|d| time_left(at, d)),
                    variant: enr.variants.clone(),
                    sender: self.settings.sender.clone(),
                    company: self.settings.company.clone(),
                    unsubscribe_link: unsubscribe.clone(),
                };
                let language = candidate.field("language");
                t.render(template, channel, language, &vars)
                    .and_then(|r| {
                        let html = match channel {
                            Channel::Email => t.render_html(template, language, &vars)?,
                            _ => None,
                        };
                        Ok((r, html))
                    })
                    .map_err(|e| e.to_string())
            }
            None => Ok((
                crate::templates::Rendered {
                    subject: None,
                    body: format!("[template `{template}`: no templates folder configured]"),
                },
                None,
            )),
        };
        let message = Message {
            key: send_key.to_string(),
            campaign: machine.name.clone(),
            candidate: enr.candidate.clone(),
            template: template.to_string(),
            channel,
            to,
            subject: rendered.as_ref().ok().and_then(|(r, _)| r.subject.clone()),
            body: rendered
                .as_ref()
                .map(|(r, _)| r.body.clone())
                .unwrap_or_default(),
            html: rendered.as_ref().ok().and_then(|(_, h)| h.clone()),
            unsubscribe_url: unsubscribe,
            scheduled_at: at,
            in_flight: false,
        };
        let refusal = if opted_out {
            Some("the candidate opted out".to_string())
        } else {
            rendered.err()
        };
        let mut entry = OutboxEntry {
            message: message.clone(),
            status: SendStatus::Queued,
            attempts: 0,
            possible_duplicate: false,
            fallbacks: fallbacks.to_vec(),
            retry_at: None,
        };
        if let Some(why) = refusal {
            entry.status = SendStatus::Failed(why.clone());
            txn.count(key::counter(&machine.name, "failed"), 1);
            txn.put_send(&entry)?;
            return log(
                txn,
                &enr.candidate,
                LogEntry {
                    at,
                    campaign: machine.name.clone(),
                    kind: LogKind::DeliveryFailed {
                        key: send_key.to_string(),
                        channel: channel.name().into(),
                        reason: why,
                    },
                },
            );
        }
        txn.put_send(&entry)?;
        txn.enqueue(send_key);
        let mut message = message;
        message.in_flight = self.premark(txn, send_key, channel);
        out.push(message);
        Ok(())
    }
}

/// What to step an enrollment with.
enum Step<'a> {
    Wake,
    Event {
        name: &'a str,
        fields: &'a BTreeMap<String, String>,
        at: Instant,
    },
}

/// The engine's view of a stored candidate.
pub fn engine_candidate(record: &CandidateRecord) -> Candidate {
    Candidate {
        id: record.id.clone(),
        fields: record.fields.clone(),
    }
}

fn variant_names(machine: &Machine, variants: &[usize]) -> BTreeMap<String, String> {
    machine
        .experiments
        .iter()
        .zip(variants)
        .map(|(e, v)| {
            (
                e.name.clone(),
                e.variants
                    .get(*v)
                    .map_or_else(String::new, |(n, _)| n.clone()),
            )
        })
        .collect()
}

/// Moves an enrollment onto a new campaign version: the same-named state,
/// the same variants by name (new experiments assigned by the rule).
fn migrate(
    txn: &mut Txn,
    enr: &mut Enrollment,
    campaign: &Campaign,
    now: Instant,
) -> Result<(), StoreError> {
    let machine = &campaign.machine;
    let from = std::mem::replace(&mut enr.version, campaign.version.clone());
    if let Some(index) = machine.state_index(&enr.state_name) {
        enr.engine.state = index;
        let sends = machine.states[index].sends.len();
        enr.engine.next_send = enr.engine.next_send.min(sends);
        if enr.engine.next_send == sends {
            enr.engine.send_due = None;
        }
    }
    let variants: Vec<usize> = machine
        .experiments
        .iter()
        .map(|e| {
            enr.variants
                .get(&e.name)
                .and_then(|v| e.variants.iter().position(|(n, _)| n == v))
                .unwrap_or_else(|| engine::assign_variant(&machine.name, e, &enr.candidate))
        })
        .collect();
    enr.variants = variant_names(machine, &variants);
    enr.engine.variants = variants;
    log(
        txn,
        &enr.candidate,
        LogEntry {
            at: now,
            campaign: enr.campaign.clone(),
            kind: LogKind::Migrated {
                from_version: from,
                to_version: campaign.version.clone(),
            },
        },
    )
}

/// Arms the enrollment's timer at its next wake (its earlier timer, if
/// any, becomes stale; one already armed at that very instant is kept).
fn rearm(txn: &mut Txn, enr: &mut Enrollment, machine: &Machine) {
    let armed = enr.timer.take();
    let next = if enr.parked {
        None
    } else {
        engine::next_due(machine, &enr.engine)
    };
    let Some(due) = next else {
        txn.disarm(&enr.candidate, &enr.campaign);
        return;
    };
    if armed == Some(due) {
        enr.timer = armed;
        return;
    }
    let kind = if enr.engine.send_due == Some(due) {
        if enr.engine.held_until == Some(due) {
            TimerKind::Held
        } else {
            TimerKind::Send
        }
    } else {
        TimerKind::Transition
    };
    txn.arm(TimerEntry {
        due: due.timestamp_millis(),
        candidate: enr.candidate.clone(),
        campaign: enr.campaign.clone(),
        kind,
    });
    enr.timer = Some(due);
}

/// Takes a paused (or orphaned) campaign's enrollment off the timers.
fn park(txn: &mut Txn, enr: &mut Enrollment) {
    enr.timer = None;
    enr.parked = true;
    txn.disarm(&enr.candidate, &enr.campaign);
    txn.put_raw(key::parked(&enr.campaign, &enr.candidate), Vec::new());
}

/// The sends of the candidate's other enrollments, for sliding limits.
fn other_sends(txn: &mut Txn, enr: &Enrollment) -> Result<Vec<Instant>, StoreError> {
    let mut out = Vec::new();
    for other in txn.enrollments_of(&enr.candidate)? {
        if other.campaign != enr.campaign {
            out.extend(other.engine.recent_sends.iter().copied());
        }
    }
    Ok(out)
}

/// A candidate by id, external id, email or phone identity, or link token.
pub fn find(txn: &mut Txn, who: &str) -> Result<Option<CandidateRecord>, StoreError> {
    if let Some(c) = txn.candidate(who)? {
        return Ok(Some(c));
    }
    // A link token is the candidate id, `-`, and 128 random bits: found
    // through the id, then compared whole.
    if let Some((id, secret)) = who.rsplit_once('-') {
        if secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            if let Some(c) = txn.candidate(id)? {
                if same_token(c.token.as_bytes(), who.as_bytes()) {
                    return Ok(Some(c));
                }
            }
        }
    }
    let identities = [
        who.to_string(),
        format!("email:{}", who.to_lowercase()),
        format!("phone:{who}"),
    ];
    for identity in identities {
        if let Some(c) = txn.candidate_known_as(&identity)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Compares two tokens in time that does not depend on where they differ.
fn same_token(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Appends to a candidate's history.
fn log(txn: &mut Txn, candidate: &str, entry: LogEntry) -> Result<(), StoreError> {
    txn.log(candidate, entry)
}

/// 128 random bits from the operating system, hex: the secret part of a
/// tracked link's token (the token is `candidate-secret`, so the store
/// needs no index of tokens). Without OS randomness no link is made (a
/// guessable one is worse).
pub fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random bytes for a link token: {e}"))?;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut token = String::with_capacity(32);
    for b in bytes {
        token.push(HEX[usize::from(b >> 4)] as char);
        token.push(HEX[usize::from(b & 0xF)] as char);
    }
    Ok(token)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Formats a log entry for people (`nudge show`).
pub fn describe(entry: &LogEntry, zone: Tz) -> (String, String) {
    let local = |ms: i64| {
        Instant::from_timestamp_millis(ms)
            .map(|t| crate::sim::output::local(t, zone))
            .unwrap_or_default()
    };
    match &entry.kind {
        LogKind::Created { source } => (
            "created".into(),
            match source {
                Some(s) => format!("candidate created (source {s})"),
                None => "candidate created".into(),
            },
        ),
        LogKind::Received { event, fields } => (
            "event".into(),
            if fields.is_empty() {
                format!("{event} received")
            } else {
                let f: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{event} received ({})", f.join(", "))
            },
        ),
        LogKind::Enrolled {
            state, variants, ..
        } => (
            "enrolled".into(),
            if variants.is_empty() {
                format!("in {state}")
            } else {
                let v: Vec<String> = variants.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("in {state} ({})", v.join(", "))
            },
        ),
        LogKind::Entered { state, from, by } => {
            ("entered".into(), format!("{state} from {from} ({by})"))
        }
        LogKind::Sent {
            template, channel, ..
        } => ("sent".into(), format!("{template} by {channel}")),
        LogKind::Held {
            template,
            until,
            reason,
            ..
        } => (
            "held".into(),
            format!("{template} held until {}: {reason}", local(*until)),
        ),
        LogKind::Cancelled {
            template, reason, ..
        } => (
            "cancelled".into(),
            format!("{template} cancelled: {reason}"),
        ),
        LogKind::Skipped {
            template, reason, ..
        } => ("skipped".into(), format!("{template} skipped: {reason}")),
        LogKind::Suppressed {
            template, reason, ..
        } => (
            "suppressed".into(),
            format!("{template} suppressed: {reason}"),
        ),
        LogKind::DeadlineStarted { deadline } => (
            "deadline".into(),
            format!("deadline runs until {}", local(*deadline)),
        ),
        LogKind::Exited { outcome, converted } => (
            "exited".into(),
            if *converted {
                format!("{outcome} (goal reached)")
            } else {
                outcome.clone()
            },
        ),
        LogKind::Delivered {
            channel,
            duplicate,
            possible_duplicate,
            ..
        } => (
            "delivered".into(),
            match (duplicate, possible_duplicate) {
                (true, _) => format!("{channel} recognised a repeat and did not deliver it twice"),
                (false, true) => format!(
                    "delivered by {channel} (sent again after a restart: possibly a duplicate)"
                ),
                (false, false) => format!("delivered by {channel}"),
            },
        ),
        LogKind::DeliveryFailed {
            channel, reason, ..
        } => ("failed".into(), format!("{channel}: {reason}")),
        LogKind::Retrying {
            channel,
            reason,
            at,
            ..
        } => (
            "retrying".into(),
            format!("{channel}: {reason}; next try {}", local(*at)),
        ),
        LogKind::FellBack { from, to, .. } => (
            "fallback".into(),
            format!("{from} failed for good; trying {to}"),
        ),
        LogKind::DeliverySuppressed {
            channel, reason, ..
        } => ("suppressed".into(), format!("{channel}: {reason}")),
        LogKind::Migrated {
            from_version,
            to_version,
        } => (
            "migrated".into(),
            format!("campaign version {from_version} → {to_version}"),
        ),
    }
}

/// Counters of a campaign: candidates per state and per outcome, failures.
pub fn counters(store: &Store, campaign: &str) -> Result<HashMap<String, i64>, StoreError> {
    let prefix = key::counters_of(campaign);
    let mut out = HashMap::new();
    for item in store.scan_raw(&prefix) {
        let (k, v) = item?;
        out.insert(
            String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
            store::counter_value(&v),
        );
    }
    Ok(out)
}
