//! The durable store: candidates, enrollments, timers ordered by due
//! instant, the outbox of sends, history, and counters, in the records
//! (`records`, [`causes`]) and words ([`Counter`], [`SendKey`]) of the
//! domain. The daemon's store is on sled ([`sled`]: its key layout,
//! dossiers, delivery journal, timer buckets, write-behind and identity
//! digests are its own); [`memory`] is a second implementation, in memory,
//! that the runtime tests run on too. The runtime sees neither, only the
//! [`Store`] and [`Transaction`] traits, and is generic over them
//! (monomorphized: no `dyn` on the hot path). See `docs/store.md`.
//!
//! The traits are written so that a database can implement them: due
//! timers and retries are *taken* by a transaction (a database leases them
//! with `SELECT … FOR UPDATE SKIP LOCKED` and deletes them at commit), and
//! counters only ever receive deltas (`UPDATE … SET n = n + $1`), never a
//! value read and written back. Writing behind and sharing a batch between
//! two threads are capabilities of the sled store; the defaults commit at
//! once and keep a batch on one thread.

pub mod causes;
pub mod decisions;
pub mod instant_form;
pub mod memory;
pub(crate) mod names;
mod records;
pub mod sled;
pub mod suppression;

use std::fmt;
use std::path::PathBuf;

use crate::report::trace::Traces;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use self::sled::{raw, SledStore, SledTxn, LAYOUT_FILE, LEDGER_FILE, SCHEMA_VERSION};
pub use memory::{MemoryStore, MemoryTxn};
pub use names::{Counter, SendKey};
pub use records::{
    email_identity, phone_identity, timer_counts, Appendix, CandidateRecord, Dossier, Enrollment,
    LogEntry, LogKind, OutboxEntry, SendStatus, TimerKind,
};
pub use suppression::{Contact, ContactKind, Suppression, SuppressionReason};

pub use decisions::Decision;

/// One part's reader of report traces ([`Store::read_traces`]).
pub type TraceReader<'r> = &'r mut (dyn FnMut(&[crate::report::trace::TraceRef<'_>]) + Send);

use crate::engine::Instant;

/// Why the store cannot be used.
#[derive(Debug)]
pub enum StoreError {
    /// Another process (normally the daemon) holds the store.
    Locked { path: PathBuf },
    /// Written by a newer nudge: never touched.
    NewerSchema { path: PathBuf, found: u32 },
    /// Written by an older nudge whose layout this build does not convert.
    OlderSchema { path: PathBuf, found: u32 },
    /// Not a nudge store, or damaged: never touched.
    Unreadable { path: PathBuf, why: String },
    /// A record that does not decode.
    Corrupt { key: String, why: String },
    /// The operating system failed the store (a file, a thread).
    Io(std::io::Error),
    /// The storage engine failed.
    Backend(String),
    /// Not written, because the batch written behind before it could not
    /// be written.
    NotWritten,
    /// Closed for the moment: being opened again after a write failed.
    Unavailable { path: PathBuf },
    /// The store lost commits it had acknowledged (the commit ledger,
    /// kept outside sled, saw them): never used as if it were whole.
    RolledBack {
        path: PathBuf,
        /// The last commit the store holds (0: none).
        kept: u64,
        /// The last commit acknowledged.
        acknowledged: u64,
        /// Deliveries recorded by the lost commits.
        deliveries: usize,
    },
    /// The store's files are damaged (sled cannot read them), or it is not
    /// the store its commit ledger followed.
    Damaged { path: PathBuf, why: String },
}

impl StoreError {
    /// The store could not write (a full disk, an I/O error, a stalled or
    /// failed storage engine), as opposed to a record that is wrong: writing
    /// may work again later.
    pub fn is_write_failure(&self) -> bool {
        matches!(
            self,
            StoreError::Io(_)
                | StoreError::Backend(_)
                | StoreError::NotWritten
                | StoreError::Unavailable { .. }
        )
    }

    /// A dossier whose history or settled sends do not decode.
    pub fn damaged_dossier(candidate: &str, e: postcard::Error) -> StoreError {
        StoreError::Corrupt {
            key: format!("c{candidate}"),
            why: e.to_string(),
        }
    }

    /// A candidate's dossier that should be there and is not.
    pub fn missing_dossier(candidate: &str) -> StoreError {
        StoreError::Corrupt {
            key: format!("c{candidate}"),
            why: "the candidate's dossier is missing".into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Locked { path } => write!(
                f,
                "the store `{}` is in use by another process (is `nudge run` running?)",
                path.display()
            ),
            StoreError::NewerSchema { path, found } => write!(
                f,
                "the store `{}` was written by a newer nudge (layout version {found}; this build reads version {SCHEMA_VERSION}); upgrade nudge, the store was left untouched",
                path.display()
            ),
            StoreError::OlderSchema { path, found } => write!(
                f,
                "the store `{}` was written by an older nudge (layout version {found}; this build reads version {SCHEMA_VERSION} and cannot convert it); run the nudge that wrote it, or start a new store; the store was left untouched",
                path.display()
            ),
            StoreError::Unreadable { path, why } => write!(
                f,
                "`{}` is not a nudge store this build can read ({why}); it was left untouched",
                path.display()
            ),
            StoreError::Corrupt { key, why } => write!(f, "damaged record `{key}`: {why}"),
            StoreError::Io(e) => write!(f, "store error: {e}"),
            StoreError::Backend(why) => write!(f, "store error: {why}"),
            StoreError::NotWritten => {
                f.write_str("not written: the batch before it could not be written")
            }
            StoreError::Unavailable { path } => write!(
                f,
                "the store `{}` is being opened again after a write failed",
                path.display()
            ),
            StoreError::RolledBack {
                path,
                kept,
                acknowledged,
                deliveries,
            } => write!(
                f,
                "the store `{}` lost commits it had acknowledged: it ends at commit {kept}, but commits {} to {acknowledged} were acknowledged ({deliveries} deliveries among them); nudge will not run on it. Restore a backup with `nudge restore DIR` (nothing delivered since is sent again), see what is wrong with `nudge verify`, or take the store as it is with `nudge verify --accept`",
                path.display(),
                kept + 1
            ),
            StoreError::Damaged { path, why } => write!(
                f,
                "the store `{}` is damaged: {why}; restore a backup with `nudge restore DIR`, or see what is wrong with `nudge verify`",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {}

/// An enrollment's timer: when it falls due, and what for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTimer {
    pub due: Instant,
    pub candidate: String,
    pub campaign: String,
    pub kind: TimerKind,
}

/// A durable store: what the runtime reads of committed records, and the
/// transactions it writes through. One writer (the core) at a time; any
/// number of readers.
/// A candidate's report traces made from their history, as the store
/// keeps them (the candidate's own zone field, not yet read under a
/// campaign's rule): what `nudge verify` checks the kept traces against.
pub fn traces_of(dossier: &Dossier) -> Result<Traces, StoreError> {
    dossier
        .traces_from_history()
        .map_err(|e| StoreError::damaged_dossier(&dossier.candidate.id, e))
}

pub trait Store: Clone + Send + Sync + 'static {
    /// A transaction: writes gathered for one atomic commit, readable
    /// before they land.
    type Txn<'a>: Transaction + Send
    where
        Self: 'a;

    fn begin(&self) -> Self::Txn<'_>;

    fn candidate(&self, id: &str) -> Result<Option<CandidateRecord>, StoreError>;

    fn enrollment(&self, candidate: &str, campaign: &str)
        -> Result<Option<Enrollment>, StoreError>;

    /// A send by its key.
    fn send(&self, send_key: SendKey) -> Result<Option<OutboxEntry>, StoreError>;

    /// Every send of every candidate (a full scan).
    fn sends(&self) -> Result<Vec<OutboxEntry>, StoreError>;

    /// A candidate's history, oldest first.
    fn history(&self, candidate: &str) -> Result<Vec<LogEntry>, StoreError>;

    /// Every candidate's dossier (a full scan: for reloads and audits).
    fn dossiers(&self) -> impl Iterator<Item = Result<Dossier, StoreError>> + '_;

    /// Calls the readers with the report traces ([`crate::report::trace`])
    /// of every candidate, each reader with those of a disjoint part, so
    /// that a report reads them on as many threads at once. The traces are
    /// kept in the dossiers by [`Dossier::log`]; a store reads them in
    /// place where it can (sled: from the front of each record, without
    /// decoding the rest, or from memory in the daemon). By default the
    /// first reader gets them all, on the calling thread.
    fn read_traces(&self, readers: &mut [TraceReader<'_>]) -> Result<(), StoreError> {
        if let Some(first) = readers.first_mut() {
            for d in self.dossiers() {
                first(&d?.traces.refs());
            }
        }
        Ok(())
    }

    /// Up to `limit` dossiers in the store's order, after candidate `after`
    /// (from the first when `None`): (candidate id, the dossier, or `None`
    /// when it does not decode). For walks a chunk at a time (retention).
    #[allow(clippy::type_complexity)]
    fn dossiers_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Option<Dossier>)>, StoreError>;

    /// The live timers: each checked against its enrollment (for
    /// `nudge status`, not for hot paths).
    fn live_timers(&self) -> Result<Vec<DueTimer>, StoreError>;

    /// Every timer stored due at or before `until` (all when `None`), live
    /// or stale: for audits and tests.
    fn timers_until(&self, until: Option<Instant>) -> Result<Vec<DueTimer>, StoreError>;

    /// The next `limit` timers not yet taken (some may be stale), in due
    /// order.
    fn upcoming_timers(&self, limit: usize) -> Result<Vec<DueTimer>, StoreError>;

    /// The instant of the earliest retry of a failed send.
    fn next_retry(&self) -> Result<Option<Instant>, StoreError>;

    /// A campaign's counters, but those kept per minute
    /// ([`Counter::per_minute`]: read with [`Store::sends_due`]).
    fn counters(&self, campaign: &str) -> Result<Vec<(Counter, i64)>, StoreError>;

    /// Every campaign's counters but those kept per minute: (campaign,
    /// counter, count).
    fn all_counters(&self) -> Result<Vec<(String, Counter, i64)>, StoreError>;

    /// A campaign's sends (held or not) that enrollments wait to make
    /// before `before`, counted to the minute: the sum of its
    /// [`Counter::SendsDue`] of the minutes that begin before it (overdue
    /// ones included). One ordered read of at most a counter per minute.
    fn sends_due(&self, campaign: &str, before: Instant) -> Result<i64, StoreError>;

    /// A campaign's sends delivered on each channel from the hour `since`
    /// falls in (that hour counted in full): channel → count, summed from
    /// its [`Counter::SendsOn`]. One ordered read per channel.
    fn sends_on(
        &self,
        campaign: &str,
        since: Instant,
    ) -> Result<std::collections::BTreeMap<String, i64>, StoreError>;

    fn paused(&self, campaign: &str) -> Result<bool, StoreError>;

    /// The suppression list's entry for a contact (a point lookup).
    fn suppression(&self, contact: &Contact) -> Result<Option<Suppression>, StoreError>;

    /// The whole suppression list, by contact.
    fn suppressions(&self) -> Result<Vec<Suppression>, StoreError>;

    /// When the weekly digest is next due (`None`: never scheduled yet).
    fn digest_due(&self) -> Result<Option<Instant>, StoreError>;

    /// Sends queued and not settled, as this process knows them (after a
    /// restart, until recovery, some may have settled).
    fn undelivered(&self) -> usize;

    /// Sends handed to a channel and not settled.
    fn in_flight(&self) -> usize;

    /// The sends queued and not settled, in the order they were queued,
    /// each with whether it was handed to a channel.
    fn queued_sends(&self) -> Vec<(String, bool)>;

    /// Sends listed as handed to a channel that are no longer queued (to be
    /// settled by the recovery after a restart).
    fn flying_unqueued(&self) -> Vec<String>;

    /// Sends queued and not settled, each checked against its record.
    fn undelivered_checked(&self) -> Result<usize, StoreError>;

    /// Waits for the batch being written behind, and says whether it was
    /// written (`Ok` when there was none: see [`Transaction::commit_behind`]).
    fn settle(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Makes the store writable again after a write failed (see
    /// [`StoreError::is_write_failure`]); an error says it is not yet.
    fn recover_writes(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// How long the write under way has been going, if one is: a stalled
    /// disk shows here.
    fn write_running_for(&self) -> Option<std::time::Duration> {
        None
    }

    /// Reads again what this process holds in memory of the store (after a
    /// batch written behind failed).
    fn reread(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Every decision of an `until decided` experiment, by campaign and
    /// experiment name.
    fn decisions(&self) -> Result<Vec<Decision>, StoreError>;

    /// Whether a store this one was restored over delivered the send
    /// `key` (the sled store's commit ledger remembers): such a send is
    /// settled as delivered, never sent again.
    fn delivered_before(&self, _key: &str) -> bool {
        false
    }
}

/// Writes gathered for one atomic commit, readable before they land: a
/// later step in the same batch sees what an earlier step wrote.
pub trait Transaction: Sized {
    fn candidate(&mut self, id: &str) -> Result<Option<CandidateRecord>, StoreError>;

    /// The candidate known under `identity` (an external id, `email:...`
    /// or `phone:...`), stored or created in this transaction.
    fn candidate_known_as(&mut self, identity: &str)
        -> Result<Option<CandidateRecord>, StoreError>;

    /// A fresh candidate id (`c` and a number), above every one stored.
    fn next_candidate_id(&mut self) -> Result<String, StoreError>;

    /// Stores a candidate just given a fresh id; they are known under
    /// their external id from then on.
    fn new_candidate(&mut self, record: CandidateRecord);

    /// Writes a candidate's record.
    fn put_candidate(&mut self, record: &CandidateRecord) -> Result<(), StoreError>;

    fn enrollment(
        &mut self,
        candidate: &str,
        campaign: &str,
    ) -> Result<Option<Enrollment>, StoreError>;

    fn enrollments_of(&mut self, candidate: &str) -> Result<Vec<Enrollment>, StoreError>;

    /// What the stored enrollment waits on ([`Enrollment::waiting`]),
    /// without copying it where the store can.
    fn waiting(
        &mut self,
        candidate: &str,
        campaign: &str,
    ) -> Result<Option<(Instant, TimerKind)>, StoreError> {
        Ok(self
            .enrollment(candidate, campaign)?
            .and_then(|e| e.waiting()))
    }

    /// Writes an enrollment (its candidate must be stored).
    fn put_enrollment(&mut self, enrollment: &Enrollment) -> Result<(), StoreError>;

    fn send(&mut self, send_key: SendKey) -> Result<Option<OutboxEntry>, StoreError>;

    /// A send by its key if it is not settled.
    fn unsettled_send(&mut self, send_key: SendKey) -> Result<Option<OutboxEntry>, StoreError>;

    /// Writes a send (its candidate must be stored).
    fn put_send(&mut self, entry: &OutboxEntry) -> Result<(), StoreError>;

    /// Appends to a candidate's history.
    fn log(&mut self, candidate: &str, entry: LogEntry) -> Result<(), StoreError>;

    /// Replaces a candidate's history with `kept` and forgets their
    /// settled sends (retention: see `runtime::core::retention`).
    fn replace_history(&mut self, candidate: &str, kept: &[LogEntry]) -> Result<(), StoreError>;

    /// Arms an enrollment's timer, replacing one armed earlier in this
    /// transaction. One armed before may stay stored: it is stale once the
    /// enrollment's `timer` no longer names its instant.
    fn arm(&mut self, timer: DueTimer);

    /// Forgets a timer armed earlier in this transaction.
    fn disarm(&mut self, candidate: &str, campaign: &str);

    /// Takes up to `limit` timers due at or before `now`, in due order: no
    /// other transaction is offered them, and they are gone once this one
    /// commits (if it fails, they are offered again). Those of candidates
    /// `pass_over` names are taken too but kept stored, not returned.
    fn take_due_timers(
        &mut self,
        now: Instant,
        limit: usize,
        pass_over: impl Fn(&str) -> bool,
    ) -> Result<Vec<DueTimer>, StoreError>;

    /// Keeps a timer this transaction took stored, unfired (its records are
    /// damaged): this process does not offer it again.
    fn keep_timer(&mut self, timer: &DueTimer);

    /// Puts a send (its entry written with [`Transaction::put_send`]) on the
    /// delivery queue.
    fn enqueue(&mut self, send_key: SendKey);

    /// Marks a queued send as handed to its channel.
    fn launch(&mut self, send_key: SendKey);

    /// How many sends this transaction marks in flight.
    fn launches(&self) -> usize;

    /// Takes a send off the queue: delivered, failed, suppressed, or
    /// waiting for a retry.
    fn settle(&mut self, send_key: SendKey);

    /// Tries a settled send again at `at`.
    fn retry_send(&mut self, send_key: SendKey, at: Instant);

    /// Takes up to `limit` retries due at or before `now`, in due order:
    /// their send keys.
    fn take_due_retries(&mut self, now: Instant, limit: usize) -> Result<Vec<String>, StoreError>;

    /// Adds `delta` to a campaign's counter at commit.
    fn bump(&mut self, campaign: &str, counter: &Counter, delta: i64);

    fn paused(&self, campaign: &str) -> Result<bool, StoreError>;

    fn set_paused(&mut self, campaign: &str, paused: bool);

    /// Notes an enrollment of a paused (or orphaned) campaign as parked.
    fn park(&mut self, campaign: &str, candidate: &str);

    fn unpark(&mut self, campaign: &str, candidate: &str);

    /// The candidates whose enrollments in `campaign` are parked.
    fn parked(&self, campaign: &str) -> Result<Vec<String>, StoreError>;

    /// The suppression list's entry for a contact, as this transaction
    /// leaves it (a point lookup: it is read for every send).
    fn suppression(&self, contact: &Contact) -> Result<Option<Suppression>, StoreError>;

    /// Whether any contact may be on the suppression list as this
    /// transaction leaves it: false lets a send skip making its contact's
    /// key and looking it up. By default true (always look).
    fn may_suppress_any(&self) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// Puts a contact on the suppression list (replacing its entry).
    fn suppress(&mut self, entry: &Suppression);

    /// Takes a contact off the suppression list.
    fn unsuppress(&mut self, contact: &Contact);

    /// The first answer to a candidate's event with this id, if any.
    fn event_answer<A: DeserializeOwned>(
        &self,
        candidate: &str,
        event_id: &str,
    ) -> Result<Option<A>, StoreError>;

    /// Remembers the first answer to a candidate's event with this id.
    fn remember_event<A: Serialize>(&mut self, candidate: &str, event_id: &str, answer: &A);

    /// Stores a campaign version's source, unless it is stored already.
    fn pin_version(
        &mut self,
        campaign: &str,
        version: &str,
        source: &str,
    ) -> Result<(), StoreError>;

    /// Sets when the weekly digest is next due, in the commit that
    /// records the last one as sent.
    fn set_digest_due(&mut self, due: Instant);
    /// The decision of a campaign's `until decided` experiment, as this
    /// transaction leaves it.
    fn decision(&self, campaign: &str, experiment: &str) -> Result<Option<Decision>, StoreError>;

    /// Stores an experiment's decision (the core writes one only where
    /// there is none).
    fn decide(&mut self, decision: &Decision);

    /// Whether committing would write nothing.
    fn is_empty(&self) -> bool;

    /// Writes everything atomically and durably.
    fn commit(self) -> Result<(), StoreError>;

    /// Commits while the caller goes on, where the store can: transactions
    /// begun after this read what it writes, and [`Store::settle`] says when
    /// it is durable. By default a commit.
    fn commit_behind(self) -> Result<(), StoreError> {
        self.commit()
    }

    /// Reads these candidates' records ahead of their steps.
    fn prefetch(&mut self, _candidates: &[&str]) {}

    /// Whether the candidate's steps may move to a transaction split off
    /// this one ([`Transaction::split_off`]).
    fn movable(&self, _candidate: &str) -> bool {
        false
    }

    /// Moves these candidates into a transaction of their own, so their
    /// steps can run on another thread; [`Transaction::absorb`] takes it
    /// back. `None` where the store cannot (the steps stay here).
    fn split_off<'c>(&mut self, _candidates: impl IntoIterator<Item = &'c str>) -> Option<Self> {
        None
    }

    /// How many candidates this transaction holds (read or created): an
    /// admission that leaves it as it was met a candidate read before,
    /// whose steps stay with this transaction.
    fn candidates_held(&self) -> usize {
        0
    }

    /// Takes back a transaction made by [`Transaction::split_off`].
    fn absorb(&mut self, _other: Self) {}
}
