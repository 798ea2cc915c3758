//! The store on sled, with the layout and the tricks that make it fast:
//! candidates, enrollments, timers ordered by due instant, the outbox of
//! sends, the append-only event log, and counters ([`super::Store`]).
//!
//! Everything lives in one sled tree with one-byte key prefixes, so that a
//! state change, the timer it arms, the sends it causes and its log entries
//! go to disk in one atomic `apply_batch` (multi-tree transactions are slow
//! on sled; see DEPENDENCIES.md). The runtime groups many changes into one
//! batch and flushes it before acknowledging any of them.
//!
//! Key layout (`0` is a zero byte separating variable-length parts):
//!
//! | key | value |
//! |---|---|
//! | `m` name | metadata (`schema`: the layout version, also in the file [`LAYOUT_FILE`]; `commit`: the last commit's mark, also in [`LEDGER_FILE`]; `digest_due`: when the weekly digest is next due, epoch ms) |
//! | `c` candidate | [`Dossier`]: their report traces ([`crate::report::trace::Traces`]) in front ([`dossier_record`]), then the candidate, their enrollments, sends and history |
//! | `x` identity | candidate id (layout 2; read, never written since) |
//! | `y` seq(8) | the identities one commit gave new candidates (`identities`) |
//! | `t` bucket-ms(8, big-endian) seq(8) | the `TimerEntry`s one commit armed in that 10 ms bucket, in due order |
//! | `z` campaign `0` candidate | parked timer of a paused campaign |
//! | `i` candidate `0` event id | the first answer to that event (idempotent events) |
//! | `a` candidate-number(8) | up to 128 first answers to events of candidates one commit created, under the lowest of their numbers (`answers`) |
//! | `r` due-ms(8) send key | a failed send waiting to be tried again |
//! | `q` seq(8) | the send keys one commit queued for delivery (`Journal`) |
//! | `f` seq(8) | the send keys one commit handed to channels (`Journal`) |
//! | `n` campaign `0` counter | i64 count (candidates per state, outcomes, held sends; sends due per minute, `sends_due:` and the minute, deleted at zero) |
//! | `p` campaign | paused flag |
//! | `d` campaign `0` experiment | the [`super::Decision`] of an `until decided` experiment (`decisions`) |
//! | `v` campaign `0` version | campaign source text, pinned by enrollments |
//! | `e` candidate (as `c`) | their report traces (layout 7; moved into the `c` record by layout 8) |
//! | `s` kind `0` contact | a [`super::Suppression`]: an address nudge never sends to (`suppression`) |

pub(super) mod answers;
mod backup;
pub mod dossier_record;
mod faults;
mod guard;
mod identities;
mod ledger;
mod recent;
mod suppression;
mod trace_index;
mod txn;
mod verify;
mod writer;

pub use backup::{accept, restore, Copied};
pub use ledger::LEDGER_FILE;
pub use verify::{verify, Verified};

use std::collections::BTreeMap;

// A fast hasher for the maps of a batch (send keys, candidate ids): the
// keys are nudge's own.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use txn::SledTxn;

use super::{
    CandidateRecord, Counter, Dossier, DueTimer, Enrollment, LogEntry, OutboxEntry, SendKey,
    SendStatus, Store, StoreError, TimerKind, Transaction,
};

use crate::engine::Instant;

/// The layout version this build writes and reads. Version 1 kept
/// enrollments, sends and history under keys of their own; version 2 keeps
/// them in the candidate's [`Dossier`]; version 3 records identities in a
/// `y` record per commit instead of an `x` key per candidate; version 4
/// records history causes as typed facts ([`super::causes`]) in new [`super::LogKind`]
/// variants; version 5 keeps the suppression list (`s` keys), records a
/// send withheld for it as a cause older builds cannot decode (an older
/// build must not open it and send to a suppressed address), keeps counters
/// of the waiting timers (held sends, sends due per minute:
/// [`Counter::Held`], [`Counter::SendsDue`]) and may hold pruned histories
/// ([`super::LogKind::Pruned`]); version 6 records opting back in
/// ([`super::LogKind::OptedIn`]), which older builds cannot decode, and
/// notes candidates' email and phone identities beside their external id;
/// version 7 keeps each candidate's report traces (`e` keys,
/// [`crate::report::trace`]) up to date in every commit, which an older
/// build would leave stale; version 8 keeps them in front of the dossier
/// in its own record instead ([`dossier_record`]), so a commit writes one
/// record per candidate again; version 9 writes a message's
/// `scheduled_at` as numbers instead of text
/// ([`super::instant_form`]), which older builds cannot decode; version
/// 10 keeps the first answers to idempotent events of the candidates a
/// commit created in one `a` record per commit ([`answers`]), where an
/// older build would not look (it would take a repeated import row or
/// application for a new one); version 11 compresses those records
/// ([`answers`]: an older build cannot read them; the uncompressed records
/// of version 10 are still read). Older stores are taken as they are and
/// marked 11: their `x` keys are
/// still read, their history in words stays readable as the `Legacy*`
/// kinds, the timer counters are made from their enrollments (before 5)
/// in the commit that marks them, their dossiers rewritten with their
/// traces in front (taken from the `e` keys of layout 7, else made from
/// their histories) and their messages' instants as numbers before that
/// commit, and their candidates stay known under the identity they were
/// created with.
pub const SCHEMA_VERSION: u32 = 11;

/// Records rewritten per batch when a store of an earlier layout is
/// opened (each batch is held in memory whole).
const CARRY_BATCH: usize = 10_000;

/// The oldest layout this build opens (and marks as its own).
const OLDEST_READABLE: u32 = 2;

/// The file in the store folder, beside sled's own, that holds the layout
/// version as text. It is read before sled opens anything: sled has no
/// read-only mode (every open writes a fresh snapshot file), so a store of
/// a newer nudge must be recognised without opening it. The `m schema`
/// record stays, and must agree.
pub const LAYOUT_FILE: &str = "nudge-layout";

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(e) => StoreError::Io(e),
            e => StoreError::Backend(e.to_string()),
        }
    }
}

/// Encodes a record (postcard: compact and fast).
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap_or_default()
}

/// Decodes a record, naming the key when it does not decode.
fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        // Keys hold zero separators and binary instants: escaped, so the
        // message names the key in full and prints cleanly.
        key: key.escape_ascii().to_string(),
        why: e.to_string(),
    })
}

/// The keys of records, for tests of the on-disk layout (damaged records,
/// older layouts); the store's own methods are the way in otherwise.
#[doc(hidden)]
pub mod raw {
    /// A candidate's dossier.
    pub fn dossier(candidate: &str) -> Vec<u8> {
        super::key::candidate(candidate)
    }
    /// A metadata record (`schema`, `next_candidate`).
    pub fn meta(name: &str) -> Vec<u8> {
        super::key::meta(name)
    }
}

mod key;

/// A commit slower than this is logged as a warning.
const SLOW_COMMIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Timer records group the timers armed by one commit per bucket of this
/// many milliseconds.
const TIMER_BUCKET_MS: i64 = 10;

/// An armed timer, inside a timer record. A timer is live while its
/// enrollment's `timer` still names its instant: re-arming or parking an
/// enrollment does not delete its old entry, which is passed over as stale
/// when it comes due (so a transition writes no timer key of its own, only
/// a share of its commit's record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
struct TimerEntry {
    /// Epoch milliseconds.
    pub due: i64,
    pub candidate: String,
    pub campaign: String,
    pub kind: TimerKind,
}

impl TimerEntry {
    pub fn due(&self) -> Instant {
        Instant::from_timestamp_millis(self.due).unwrap_or_default()
    }

    fn to_due(&self) -> DueTimer {
        DueTimer {
            due: self.due(),
            candidate: self.candidate.clone(),
            campaign: self.campaign.clone(),
            kind: self.kind,
        }
    }

    fn of(timer: &DueTimer) -> TimerEntry {
        TimerEntry {
            due: timer.due.timestamp_millis(),
            candidate: timer.candidate.clone(),
            campaign: timer.campaign.clone(),
            kind: timer.kind,
        }
    }
}

/// The sled database, opened and checked.
#[derive(Clone)]
pub struct SledStore {
    /// The database; `None` for the moment it is being reopened after a
    /// write failed (see [`SledStore::recover_writes`]).
    slot: Arc<arc_swap::ArcSwapOption<sled::Db>>,
    /// sled's cache size, to reopen with.
    cache_bytes: u64,
    /// [`HOLDER_FILE`], locked while this process holds the store, even
    /// while sled's database is closed to be opened again.
    _holder: Arc<std::fs::File>,
    path: PathBuf,
    /// The highest numbered candidate id stored when the store opened.
    id_floor: u64,
    journal: Arc<Mutex<Journal>>,
    /// Who each candidate is; read from the store when first needed.
    identities: Arc<Mutex<Option<identities::Index>>>,
    /// The keys of every contact that may be on the suppression list: read
    /// from the store when first needed, then every contact suppressed by
    /// this process (kept when taken off, so it only ever says "may be").
    /// A send to a contact not in it needs no read (see `suppression`).
    suppressed: Arc<suppression::Listed>,
    /// Writes batches behind the core (see [`writer`]).
    writer: Arc<writer::Writer>,
    /// The report traces kept in memory, when this process keeps them
    /// (see [`trace_index`]).
    traces: Arc<trace_index::TraceIndex>,
    /// The dossiers the last commits held, for the next (see [`recent`]).
    recent: Arc<recent::Recent>,
    /// The timer records being taken by this process.
    timers: Arc<Mutex<TakenTimers>>,
    /// The commit ledger beside sled's files (see [`ledger`]).
    ledger: Arc<ledger::Ledger>,
    /// The mark and delivered keys of the batch being written behind,
    /// recorded in the ledger once it is durable.
    behind: Arc<Mutex<Behind>>,
    /// The keys of the `a` records the last commit that wrote any wrote
    /// (see [`answers`]): `None` until read from the store.
    last_answers: Arc<Mutex<Option<Vec<Vec<u8>>>>>,
    /// Dropped with the last clone, after `db`: notes when this process let
    /// go of the store (see [`SledStore::open`]).
    _closing: Arc<Closing>,
}

/// The mark and delivered keys of a batch written behind, until it settles.
type Behind = Option<(ledger::Mark, Vec<String>)>;

/// Notes, when the last clone of a [`SledStore`] goes, that this process closed
/// the store at that path.
struct Closing(PathBuf);

impl Drop for Closing {
    fn drop(&mut self) {
        closed_here().insert(self.0.clone(), std::time::Instant::now());
    }
}

/// Stores this process closed, and when. sled's background threads finish
/// their last writes after its handles are dropped, holding the store's
/// lock a moment longer; opening the store again within that moment (a
/// test, a command that reopens) waits for them instead of reporting the
/// store as in use by another process.
fn closed_here() -> std::sync::MutexGuard<'static, HashMap<PathBuf, std::time::Instant>> {
    static CLOSED: std::sync::OnceLock<Mutex<HashMap<PathBuf, std::time::Instant>>> =
        std::sync::OnceLock::new();
    CLOSED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// How long a store this process closed may stay locked by sled's
/// finishing threads.
const RELEASE: std::time::Duration = std::time::Duration::from_secs(3);

/// Which sends are queued for delivery and which are in flight, kept as
/// journal records instead of a key per send: each commit that queues
/// sends writes one `q` record listing them, each commit that hands sends
/// to channels writes one `f` record, and a record is deleted in the commit
/// that settles the last send it lists. A send's own state (its message,
/// attempts and outcome) stays in its candidate's [`Dossier`]; the journal
/// only says where it is in the pipeline, so a transition or a delivery
/// costs one dossier write plus a share of one record. The lists are read
/// back (and checked against the dossiers) when the store opens; they are
/// bounded by the dispatcher's backlog.
#[derive(Debug, Default)]
struct Journal {
    /// Unsettled send → the `q` record that lists it.
    queued: HashMap<String, sled::IVec>,
    /// Send handed to a channel and not settled → its `f` record.
    flying: HashMap<String, sled::IVec>,
    /// Record → how many unsettled sends it still lists.
    open: HashMap<sled::IVec, usize>,
}

impl Journal {
    /// Drops `key` from `map`'s record; returns the record when that was
    /// its last unsettled send (the caller deletes it).
    fn unlist(
        map: &mut HashMap<String, sled::IVec>,
        open: &mut HashMap<sled::IVec, usize>,
        key: &str,
    ) -> Option<sled::IVec> {
        let record = map.remove(key)?;
        let left = open.get_mut(&record)?;
        *left = left.saturating_sub(1);
        if *left == 0 {
            open.remove(&record);
            return Some(record);
        }
        None
    }
}

/// A timer record being taken: its entries and how many are taken. Taken
/// entries stay in the store until the record's last is taken (the commit
/// that takes it deletes the record); after a restart they are taken again
/// and found stale.
struct OpenRecord {
    entries: Vec<TimerEntry>,
    /// Entries taken, in order.
    done: usize,
    /// Taken entries that were not fired (their dossiers are damaged),
    /// kept in the store.
    kept: Vec<TimerEntry>,
    /// Already rewritten down to its kept entries.
    rewritten: bool,
}

/// How far this process has taken the timer records.
#[derive(Default)]
struct TakenTimers {
    open: BTreeMap<Vec<u8>, OpenRecord>,
    /// Records that do not decode: reported once and passed over until the
    /// process restarts, left as they are.
    damaged: HashSet<Vec<u8>>,
    /// Records the batch being written behind finishes: forgotten once it
    /// is written (until then sled still lists them).
    behind: Vec<Vec<u8>>,
}

impl SledStore {
    /// Opens (or creates) the store in `path`. A store written by a newer
    /// nudge, or a folder that is not a nudge store, is refused untouched.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<SledStore, StoreError> {
        Self::open_as(path, cache_bytes, true).map(|(store, _)| store)
    }

    /// Opens the store in `path`, and says how it stands against its
    /// commit ledger; when `whole_only`, a store that does not stand whole
    /// is refused ([`StoreError::RolledBack`], [`StoreError::Damaged`]).
    /// A panic inside sled on a damaged file is an error naming the store.
    fn open_as(
        path: &Path,
        cache_bytes: u64,
        whole_only: bool,
    ) -> Result<(SledStore, ledger::Standing), StoreError> {
        guard::guarded(path, || Self::open_unguarded(path, cache_bytes, whole_only))
    }

    fn open_unguarded(
        path: &Path,
        cache_bytes: u64,
        whole_only: bool,
    ) -> Result<(SledStore, ledger::Standing), StoreError> {
        let path = path.to_path_buf();
        if path.exists() && !path.is_dir() {
            return Err(StoreError::Unreadable {
                path,
                why: "it is a file, not a folder".into(),
            });
        }
        let fresh = !path.exists()
            || std::fs::read_dir(&path)
                .map(|mut d| d.all(|e| e.is_ok_and(|e| e.file_name() == HOLDER_FILE)))
                .unwrap_or(false);
        if !fresh && !path.join("conf").exists() && !path.join("db").exists() {
            return Err(StoreError::Unreadable {
                path,
                why: "the folder holds other files and no sled database".into(),
            });
        }
        let layout = read_layout(&path)?;
        if let Some(found) = layout.filter(|v| *v > SCHEMA_VERSION) {
            return Err(StoreError::NewerSchema { path, found });
        }
        if let Some(found) = layout.filter(|v| *v < OLDEST_READABLE) {
            return Err(StoreError::OlderSchema { path, found });
        }
        let released = || {
            closed_here()
                .get(&path)
                .is_some_and(|at| at.elapsed() < RELEASE)
        };
        let holder = hold(&path, released)?;
        let db = open_db(&path, cache_bytes, released)?;
        // The last numbered dossier (`c` and 8 bytes; text ids sort after).
        let id_floor = match db.range(vec![b'c']..vec![b'c', 0xFF]).next_back() {
            Some(item) => {
                let (k, _) = item?;
                k.get(1..9)
                    .and_then(|n| <[u8; 8]>::try_from(n).ok())
                    .map_or(0, u64::from_be_bytes)
            }
            None => 0,
        };
        let mark = match db.get(key::meta("commit"))? {
            Some(v) => Some(
                ledger::Mark::from_bytes(&v).ok_or_else(|| StoreError::Damaged {
                    path: path.clone(),
                    why: "its commit mark is damaged".into(),
                })?,
            ),
            None => None,
        };
        let contents = ledger::read(&path)?;
        let standing = match &contents {
            Some(c) => c.standing(mark),
            None if mark.is_some() => ledger::Standing::Diverged(format!(
                "it has commits but its commit ledger `{LEDGER_FILE}` is missing"
            )),
            None => ledger::Standing::Whole,
        };
        if whole_only {
            match &standing {
                ledger::Standing::Whole => {}
                ledger::Standing::RolledBack {
                    kept,
                    acknowledged,
                    deliveries,
                } => {
                    return Err(StoreError::RolledBack {
                        path,
                        kept: *kept,
                        acknowledged: *acknowledged,
                        deliveries: *deliveries,
                    })
                }
                ledger::Standing::Diverged(why) => {
                    return Err(StoreError::Damaged {
                        path,
                        why: why.clone(),
                    })
                }
            }
        }
        // Replaced below once the layout is known to be this build's: a
        // refused store gets no ledger file.
        let looking = ledger::Ledger::detached(&path, mark);
        let mut store = SledStore {
            slot: Arc::new(arc_swap::ArcSwapOption::from_pointee(db.clone())),
            cache_bytes,
            _holder: Arc::new(holder),
            _closing: Arc::new(Closing(path.clone())),
            path,
            id_floor,
            journal: Arc::default(),
            identities: Arc::default(),
            suppressed: Arc::default(),
            writer: Arc::default(),
            traces: Arc::default(),
            recent: Arc::default(),
            timers: Arc::default(),
            ledger: Arc::new(looking),
            behind: Arc::default(),
            last_answers: Arc::default(),
        };
        match db.get(key::meta("schema"))? {
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Unreadable {
                        path: store.path.clone(),
                        why: "its schema marker is damaged".into(),
                    })?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema {
                        path: store.path.clone(),
                        found,
                    });
                }
                if found < OLDEST_READABLE {
                    return Err(StoreError::OlderSchema {
                        path: store.path.clone(),
                        found,
                    });
                }
                if found < SCHEMA_VERSION {
                    // The `x` keys and the history in words (layout 3) stay
                    // readable; the counts of waiting timers (layout 5) are
                    // made from the enrollments, in the batch that marks
                    // the store. The marker in the store goes first, the
                    // file second, so a crash between them leaves a store
                    // this build opens and an older one refuses.
                    if found < 9 {
                        store.rewrite_dossiers()?;
                    }
                    let mut batch = if found < 5 {
                        store.timer_counts_batch()?
                    } else {
                        sled::Batch::default()
                    };
                    batch.insert(key::meta("schema"), &SCHEMA_VERSION.to_be_bytes());
                    db.apply_batch(batch)?;
                    db.flush()?;
                }
            }
            None if db.is_empty() => {
                db.insert(key::meta("schema"), &SCHEMA_VERSION.to_be_bytes())?;
                db.flush()?;
            }
            None => {
                return Err(StoreError::Unreadable {
                    path: store.path.clone(),
                    why: "it has data but no schema marker".into(),
                })
            }
        }
        if layout != Some(SCHEMA_VERSION) {
            write_layout(&store.path).map_err(StoreError::Io)?;
        }
        if standing == ledger::Standing::Whole {
            store.ledger = Arc::new(ledger::Ledger::open(&store.path, contents, mark)?);
        }
        store.load_journal()?;
        Ok((store, standing))
    }

    /// Rewrites every dossier record of an earlier layout in this layout's
    /// form ([`dossier_record`]): its messages' instants as numbers, and its
    /// report traces in front (those of a layout-8 record; else those
    /// layout 7 kept under the candidate's `e` key, which goes; else made
    /// from the history, as a layout before 7 kept none). Done in batches of [`CARRY_BATCH`]
    /// records, each written whole; a record already rewritten is left as
    /// it is, so a migration cut short by a crash finishes on the next open.
    fn rewrite_dossiers(&self) -> Result<(), StoreError> {
        use std::ops::Bound;
        let started = std::time::Instant::now();
        let db = self.db()?;
        let mut made = 0usize;
        let mut after: Bound<Vec<u8>> = Bound::Included(vec![b'c']);
        loop {
            let mut batch = sled::Batch::default();
            let mut last = None;
            for item in db
                .range::<Vec<u8>, _>((after.clone(), Bound::Excluded(vec![b'd'])))
                .take(CARRY_BATCH)
            {
                let (k, v) = item?;
                last = Some(k.to_vec());
                if dossier_record::is_current(&v) {
                    continue;
                }
                let id = key::candidate_id(&k).unwrap_or_default();
                // A dossier that does not decode stays as it is (`nudge
                // verify` names it; reading it says so).
                let Ok(mut d) = dossier_record::decode(&v) else {
                    continue;
                };
                // Only a record without traces of its own (layout 7 and
                // earlier) may have some under an `e` key.
                let kept = (!dossier_record::has_traces(&v))
                    .then(|| key::traces(&id))
                    .and_then(|e| db.get(&e).ok().flatten().map(|v| (e, v)));
                if let Some((e, v)) = kept {
                    if let Ok(traces) = postcard::from_bytes(&v) {
                        d.traces = traces;
                    }
                    batch.remove(e);
                }
                debug_assert_eq!(d.candidate.id, id);
                batch.insert(k.to_vec(), dossier_record::encode(&d));
                made += 1;
            }
            let Some(last) = last else { break };
            db.apply_batch(batch)?;
            after = Bound::Excluded(last);
        }
        // Traces of candidates with no dossier (none should be) go too.
        let mut batch = sled::Batch::default();
        for item in db.scan_prefix(b"e") {
            batch.remove(item?.0);
        }
        db.apply_batch(batch)?;
        tracing::info!(
            candidates = made,
            ms = started.elapsed().as_millis() as u64,
            "rewrote the dossiers of a store of an earlier layout in this layout's form"
        );
        Ok(())
    }

    /// The counters of waiting timers (held sends, sends due per minute),
    /// made by reading every enrollment: for a store of a layout before 5,
    /// which did not keep them. A dossier that does not decode counts for
    /// nothing (the timer that reaches it reports it).
    fn timer_counts_batch(&self) -> Result<sled::Batch, StoreError> {
        let started = std::time::Instant::now();
        let mut counts: BTreeMap<(String, Counter), i64> = BTreeMap::new();
        for d in self.dossiers() {
            let Ok(d) = d else { continue };
            for ((campaign, counter), n) in super::timer_counts([&d]) {
                *counts.entry((campaign, counter)).or_insert(0) += n;
            }
        }
        let mut batch = sled::Batch::default();
        for ((campaign, counter), n) in &counts {
            batch.insert(
                key::counter(campaign, &counter.to_string()),
                &n.to_be_bytes(),
            );
        }
        tracing::info!(
            counters = counts.len(),
            ms = started.elapsed().as_millis() as u64,
            "counted the waiting timers of a store of an earlier layout"
        );
        Ok(batch)
    }

    /// The dossier keys of part `part` of `parts`: candidates numbered in
    /// the part's share of the numbers given so far; the last part also
    /// takes the ids that are not numbers (sorted after every number).
    fn part_range(&self, part: usize, parts: usize) -> std::ops::Range<Vec<u8>> {
        let top = self
            .latest(&key::meta("next_candidate"))
            .ok()
            .flatten()
            .map_or(0, |v| counter_value(&v).max(0) as u64)
            .max(self.id_floor())
            + 1;
        let parts = parts.max(1) as u64;
        let step = top / parts + 1;
        let bound = |i: u64| {
            let mut k = vec![b'c'];
            k.extend_from_slice(&(step * i).to_be_bytes());
            k
        };
        let part = part as u64;
        let to = if part + 1 >= parts {
            vec![b'd']
        } else {
            bound(part + 1)
        };
        bound(part)..to
    }

    /// Reads the traces at the front of every candidate's record, reader
    /// `i` those of part `i`, keeping them in `pieces[i]` when given.
    fn read_records(
        &self,
        readers: &mut [super::TraceReader<'_>],
        pieces: Option<&mut [trace_index::Piece]>,
    ) -> Result<(), StoreError> {
        let parts = readers.len();
        let mut pieces: Vec<Option<&mut trace_index::Piece>> = match pieces {
            Some(p) => p.iter_mut().map(Some).collect(),
            None => readers.iter().map(|_| None).collect(),
        };
        let mut jobs: Vec<_> = readers.iter_mut().zip(pieces.iter_mut()).collect();
        on_threads(&mut jobs, |part, (reader, piece)| {
            let db = self.db()?;
            for item in db.range(self.part_range(part, parts)) {
                let (k, v) = item?;
                let damaged =
                    |e| StoreError::damaged_dossier(&key::candidate_id(&k).unwrap_or_default(), e);
                // Decoded once, for the reader and the piece alike.
                let owned;
                let traces = if dossier_record::has_traces(&v) {
                    dossier_record::traces_ref(&v).map_err(damaged)?
                } else {
                    owned = dossier_record::traces(&v).map_err(damaged)?;
                    owned.refs()
                };
                reader(&traces);
                if let Some(piece) = piece {
                    piece.keep(&self.traces, &k, &traces);
                }
            }
            Ok(())
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open database, or why there is none: it is being reopened after
    /// a write failed, or that reopening failed.
    fn db(&self) -> Result<Arc<sled::Db>, StoreError> {
        self.slot
            .load_full()
            .ok_or_else(|| StoreError::Unavailable {
                path: self.path.clone(),
            })
    }

    /// The records under a prefix, in key order; a store being reopened
    /// yields its error once.
    fn scan(
        &self,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec), StoreError>> + 'static {
        entries(self.db().map(|db| db.scan_prefix(prefix)))
    }

    /// Makes the store writable again after a write failed (a full disk, an
    /// I/O error), without a restart: sled keeps the first write error of a
    /// database and fails every later write with it, so the database is
    /// closed and opened again (its files hold everything acknowledged),
    /// what this process keeps in memory of it is read again, and a small
    /// write is flushed to prove that writing works. Readers meanwhile get
    /// [`StoreError::Unavailable`]; until this succeeds, the caller tries
    /// again later.
    pub fn reopen_for_writes(&self) -> Result<(), StoreError> {
        self.writer.wait_idle();
        // A full disk: the database stays open for reads until there is
        // room to open it again (sled writes as it opens).
        if let Some(free) = free_bytes(&self.path) {
            if free < REOPEN_FREE {
                return Err(StoreError::Io(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    format!(
                        "the store's filesystem is still full ({} KiB free)",
                        free / 1024
                    ),
                )));
            }
        }
        if let Some(old) = self.slot.swap(None) {
            // Its last flush fails like the writes before it; what it held
            // and had not flushed was never acknowledged.
            let _ = old.flush();
        }
        let started = std::time::Instant::now();
        let db = open_db(&self.path, self.cache_bytes, || started.elapsed() < RELEASE)?;
        db.insert(key::meta("probe"), &now_millis().to_be_bytes())?;
        db.flush()?;
        self.slot.store(Some(Arc::new(db)));
        self.reread()
    }

    /// Makes room for `n` more identities in the map of who each
    /// candidate is (read first if it was not), so that an import of many
    /// new candidates does not grow it as it goes.
    pub fn expect_identities(&self, n: usize) -> Result<(), StoreError> {
        self.with_identities(|ids| ids.reserve(n))
    }

    /// Keeps the report traces in memory from the next report on (the
    /// daemon): later reports read them from there (see [`trace_index`]).
    pub fn keep_traces_in_memory(&self) {
        self.traces.keep();
    }

    /// The highest numbered candidate id (`c` n) stored when the store
    /// opened: new ids are above it even if the id counter were lost.
    pub fn id_floor(&self) -> u64 {
        self.id_floor
    }

    /// Reads who each candidate is (see `identities`) on a thread of its
    /// own, so the first enrollment after a start finds it ready (one that
    /// comes sooner waits for the read); timers never wait for it.
    pub fn preload_identities(&self) {
        let store = self.clone();
        let _ = std::thread::Builder::new()
            .name("nudge-identities".into())
            .spawn(move || {
                if let Err(e) = store.with_identities(|_| ()) {
                    tracing::error!(%e, "cannot read the candidates' identities");
                }
            });
    }

    /// Runs `f` on the identities, reading them first if this is the first
    /// time (then later callers wait for the read).
    fn with_identities<R>(
        &self,
        f: impl FnOnce(&mut identities::Index) -> R,
    ) -> Result<R, StoreError> {
        let mut held = self.identities.lock().unwrap_or_else(|e| e.into_inner());
        let ids = match &mut *held {
            Some(ids) => ids,
            None => held.insert(self.read_identities()?),
        };
        Ok(f(ids))
    }

    fn read_identities(&self) -> Result<identities::Index, StoreError> {
        let started = std::time::Instant::now();
        let mut found = identities::Index::default();
        // Two identities a candidate is typical (an email and a phone).
        found.reserve(2 * self.id_floor as usize);
        for item in self.db()?.scan_prefix([b'y']) {
            let (k, v) = item?;
            let pairs = identities::decode(&v).ok_or_else(|| StoreError::Corrupt {
                key: String::from_utf8_lossy(&k).into_owned(),
                why: format!("an identity record of {} bytes", v.len()),
            })?;
            for (digest, id) in pairs {
                found.insert(digest, id);
            }
        }
        // Layout 2's index, a key per candidate.
        for item in self.db()?.scan_prefix([b'x']) {
            let (k, v) = item?;
            let id = String::from_utf8_lossy(&v).into_owned();
            match key::candidate_number(&id) {
                Some(n) => found.insert(identities::digest(&String::from_utf8_lossy(&k[1..])), n),
                None => {
                    return Err(StoreError::Corrupt {
                        key: String::from_utf8_lossy(&k).into_owned(),
                        why: format!("names `{id}`, which is not a candidate id"),
                    })
                }
            }
        }
        tracing::debug!(
            candidates = found.len(),
            ms = started.elapsed().as_millis() as u64,
            "identities read"
        );
        Ok(found)
    }

    /// The numbers of the candidates whose identity has this digest.
    fn with_digest(&self, digest: u64) -> Result<Vec<u64>, StoreError> {
        self.with_identities(|ids| ids.get(digest))
    }

    /// A fresh, strictly increasing number (sled's id generator: survives
    /// restarts).
    pub fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.db()?.generate_id()?)
    }

    /// The bytes under a key (see [`raw`]): for tests of the on-disk layout.
    #[doc(hidden)]
    pub fn get_raw(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        Ok(self.db()?.get(key)?)
    }

    /// Raw keys and values under a prefix: for tests of the on-disk layout.
    #[doc(hidden)]
    pub fn scan_raw(
        &self,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec), StoreError>> + '_ {
        self.scan(prefix)
    }

    /// Timer records whose bucket holds instants at or before `until`
    /// (every record when `None`), in bucket order, undecoded.
    fn timer_records(
        &self,
        until: Option<Instant>,
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec), StoreError>> + '_ {
        let end = match until {
            Some(t) => key::timers_after(t),
            None => vec![b'u'],
        };
        let range = self.db().map(|db| db.range(vec![b't']..end));
        entries(range)
    }

    fn taken_timers(&self) -> std::sync::MutexGuard<'_, TakenTimers> {
        self.timers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Up to `limit` retries due at or before `until` (all when `None`), in
    /// due order: (due, send key, the retry's own key).
    fn retries_until(
        &self,
        until: Option<Instant>,
        limit: usize,
    ) -> Result<Vec<(Instant, String, Vec<u8>)>, StoreError> {
        let end = match until {
            Some(t) => key::retries_after(t),
            None => vec![b's'],
        };
        let mut out = Vec::new();
        for item in self.db()?.range(vec![b'r']..end).take(limit) {
            let (k, _) = item?;
            if k.len() < 9 {
                continue;
            }
            let Some(due) = <[u8; 8]>::try_from(&k[1..9])
                .ok()
                .and_then(key::due_from_bytes)
            else {
                continue;
            };
            out.push((
                due,
                String::from_utf8_lossy(&k[9..]).into_owned(),
                k.to_vec(),
            ));
        }
        Ok(out)
    }

    /// A candidate's dossier, by candidate id.
    pub fn dossier(&self, candidate: &str) -> Result<Option<Dossier>, StoreError> {
        let k = key::candidate(candidate);
        match self.db()?.get(&k)? {
            Some(v) => dossier_record::decode(&v)
                .map(Some)
                .map_err(|e| StoreError::damaged_dossier(candidate, e)),
            None => Ok(None),
        }
    }

    /// Reads the journal records back. Every send they list counts as
    /// unsettled until the daemon's recovery reads its dossier (a record
    /// lists sends that settled after it was written, until its last one
    /// settles): opening the store reads the few records, not the dossiers.
    fn load_journal(&self) -> Result<(), StoreError> {
        let mut journal = Journal::default();
        for (prefix, flying) in [(b"q", false), (b"f", true)] {
            for item in self.db()?.scan_prefix(prefix) {
                let (record, value) = item?;
                let keys: Vec<String> = decode(&record, &value)?;
                let map = if flying {
                    &mut journal.flying
                } else {
                    &mut journal.queued
                };
                let mut open = 0;
                for k in keys {
                    // Listed again in a later record: that one counts.
                    if let Some(old) = map.insert(k, record.clone()) {
                        if let Some(n) = journal.open.get_mut(&old) {
                            *n = n.saturating_sub(1);
                        }
                    }
                    open += 1;
                }
                journal.open.insert(record, open);
            }
        }
        *self.journal() = journal;
        Ok(())
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every candidate's history (for tests and audits).
    pub fn all_history(&self) -> Result<Vec<LogEntry>, StoreError> {
        let mut out = Vec::new();
        for d in self.dossiers() {
            let d = d?;
            out.extend(
                d.history
                    .items()
                    .map_err(|e| StoreError::damaged_dossier(&d.candidate.id, e))?,
            );
        }
        Ok(out)
    }

    /// Applies a batch atomically and makes it durable before returning
    /// (after the batch being written behind, if any).
    fn commit(&self, writes: writer::Writes, delivered: Vec<String>) -> Result<(), StoreError> {
        self.writer.wait_idle();
        let mark = self.ledger.stamp();
        // The batch shares its values with the writes (a value's clone is
        // a count, or a copy of a few bytes), which the trace index is
        // told of once sled holds them:
        // it decides then whether it listens, so a build that begins
        // meanwhile misses nothing.
        let mut batch = writer::into_batch(writes.iter().map(|(k, v)| (k.clone(), v.clone())));
        batch.insert(key::meta("commit"), &mark.to_bytes());
        self.writer.write_here(&*self.db()?, batch, || {
            self.traces.note(writer::noted(&writes))
        })?;
        // Written after the batch written behind (if it was not settled
        // yet, it was durable before this one).
        let behind = self.behind().take();
        if let Some((mark, delivered)) = behind {
            self.ledger.record(mark, &delivered);
        }
        self.ledger.record(mark, &delivered);
        Ok(())
    }

    fn behind(&self) -> std::sync::MutexGuard<'_, Behind> {
        self.behind.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a batch to the writer thread and returns at once; the batch
    /// being written before it, if any, is waited for first (settle it
    /// before: see [`SledStore::settle`]). Until it is written, transactions
    /// read what it writes ([`SledTxn`]), and other readers what sled has.
    fn write_behind(
        &self,
        mut writes: writer::Writes,
        delivered: Vec<String>,
        spent: writer::Spent,
    ) -> Result<(), StoreError> {
        let mark = self.ledger.stamp();
        writes.insert(
            key::meta("commit").into(),
            Some(mark.to_bytes().as_slice().into()),
        );
        *self.behind() = Some((mark, delivered));
        self.writer.start(&*self.db()?, writes, &self.traces, spent)
    }

    /// Makes each batch written behind wait this long before it is applied:
    /// for tests, which need the next batch built before it is written.
    #[doc(hidden)]
    pub fn hold_writes(&self, wait: std::time::Duration) {
        self.writer.hold(wait.as_micros() as u64);
    }

    /// The value at `key` as the batch being written leaves it.
    fn latest(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        match self.writer.pending(key) {
            Some(v) => Ok(v),
            None => Ok(self.db()?.get(key)?),
        }
    }

    /// Whether a candidate's dossier is kept decoded for the next
    /// transaction ([`recent`]): for tests.
    #[doc(hidden)]
    pub fn keeps_decoded(&self, candidate: &str) -> bool {
        self.recent.holds(candidate)
    }

    /// A dossier as the batch being written leaves it.
    fn latest_dossier(&self, candidate: &str) -> Result<Option<Dossier>, StoreError> {
        match self.latest(&key::candidate(candidate))? {
            Some(v) => dossier_record::decode(&v)
                .map(Some)
                .map_err(|e| StoreError::damaged_dossier(candidate, e)),
            None => Ok(None),
        }
    }

    /// Bytes on disk, for status and benchmarks.
    pub fn size_on_disk(&self) -> u64 {
        self.db()
            .ok()
            .and_then(|db| db.size_on_disk().ok())
            .unwrap_or(0)
    }
}

impl super::Store for SledStore {
    type Txn<'a> = SledTxn<'a>;

    fn recover_writes(&self) -> Result<(), StoreError> {
        self.reopen_for_writes()
    }

    fn write_running_for(&self) -> Option<std::time::Duration> {
        self.writer.running_for()
    }

    fn begin(&self) -> SledTxn<'_> {
        SledTxn::new(self)
    }

    /// Every timer entry due at or before `until` (all when `None`), live
    /// or stale, in bucket order: for status, audits and tests.
    fn timers_until(&self, until: Option<Instant>) -> Result<Vec<DueTimer>, StoreError> {
        let mut out = Vec::new();
        for item in self.timer_records(until) {
            let (k, v) = item?;
            for e in decode::<Vec<TimerEntry>>(&k, &v)? {
                if until.is_some_and(|t| e.due > t.timestamp_millis()) {
                    continue;
                }
                out.push(DueTimer {
                    due: e.due(),
                    candidate: e.candidate,
                    campaign: e.campaign,
                    kind: e.kind,
                });
            }
        }
        Ok(out)
    }

    /// The next `limit` timers not yet taken (some may turn out stale), in
    /// due order: the first records' entries, bucket by bucket, until a
    /// bucket ends with `limit` found. Damaged records are passed over (one
    /// that does not decode is reported when it falls due).
    fn upcoming_timers(&self, limit: usize) -> Result<Vec<DueTimer>, StoreError> {
        let mut pending: Vec<DueTimer> = Vec::new();
        let mut bucket = None;
        let taken = self.taken_timers();
        for item in self.timer_records(None) {
            let (k, v) = item?;
            let this = key::record_bucket(&k);
            if this != bucket && pending.len() >= limit {
                // Later buckets hold only later instants.
                break;
            }
            bucket = this;
            if taken.damaged.contains(k.as_ref()) {
                continue;
            }
            match taken.open.get(k.as_ref()) {
                Some(open) => pending.extend(
                    open.entries[open.done..]
                        .iter()
                        .take(limit)
                        .map(TimerEntry::to_due),
                ),
                None => {
                    if let Ok(entries) = decode::<Vec<TimerEntry>>(&k, &v) {
                        pending.extend(entries.iter().take(limit).map(TimerEntry::to_due));
                    }
                }
            }
        }
        pending.sort_by_key(|e| e.due);
        pending.truncate(limit);
        Ok(pending)
    }

    /// The instant of the earliest retry of a failed send.
    fn next_retry(&self) -> Result<Option<Instant>, StoreError> {
        Ok(self.retries_until(None, 1)?.first().map(|r| r.0))
    }

    /// A campaign's counters but the per-minute and per-hour ones, which
    /// sort together (`sends_due:` before `sends_on:`) and are read around.
    fn counters(&self, campaign: &str) -> Result<Vec<(Counter, i64)>, StoreError> {
        let prefix = key::counters_of(campaign);
        let (minutes, after_minutes) = key::per_minute_counters(campaign);
        let (hours, after_hours) = key::per_hour_counters(campaign);
        let mut end = prefix.clone();
        if let Some(last) = end.last_mut() {
            *last = 1;
        }
        let mut out = Vec::new();
        for range in [
            prefix.clone()..minutes,
            after_minutes..hours,
            after_hours..end,
        ] {
            for item in self.db()?.range(range) {
                let (k, v) = item?;
                let name = String::from_utf8_lossy(&k[prefix.len()..]);
                out.push((Counter::parse(&name), counter_value(&v)));
            }
        }
        Ok(out)
    }

    /// Every campaign's counters but the per-minute ones: (campaign,
    /// counter, count).
    fn all_counters(&self) -> Result<Vec<(String, Counter, i64)>, StoreError> {
        let mut out = Vec::new();
        for item in self.db()?.scan_prefix(key::all_counters()) {
            let (k, v) = item?;
            let Some((campaign, name)) = key::split_pair(&k[1..]) else {
                continue;
            };
            let counter = Counter::parse(&name);
            if !counter.per_minute() {
                out.push((campaign, counter, counter_value(&v)));
            }
        }
        Ok(out)
    }

    /// The campaign's `sends_due:` counters of the minutes before the one
    /// `before` ends in, summed: one range read.
    fn sends_due(&self, campaign: &str, before: Instant) -> Result<i64, StoreError> {
        let (first, _) = key::per_minute_counters(campaign);
        let end_minute = before.timestamp_millis().max(0).div_euclid(60_000)
            + i64::from(before.timestamp_millis().rem_euclid(60_000) > 0);
        let end = key::counter(campaign, &Counter::SendsDue(end_minute).to_string());
        let mut n = 0;
        for item in self.db()?.range(first..end) {
            let (_, v) = item?;
            n += counter_value(&v);
        }
        Ok(n)
    }

    /// The campaign's `sends_on:` counters of each channel from the hour
    /// `since` falls in, summed: one range read per channel.
    fn sends_on(
        &self,
        campaign: &str,
        since: Instant,
    ) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
        let hour = since.timestamp_millis().max(0).div_euclid(3_600_000);
        let mut out = std::collections::BTreeMap::new();
        for channel in crate::engine::Channel::ALL {
            let (first, end) = key::sends_on_counters(campaign, channel.name(), hour);
            let mut n = 0;
            for item in self.db()?.range(first..end) {
                let (_, v) = item?;
                n += counter_value(&v);
            }
            out.insert(channel.name().to_string(), n);
        }
        Ok(out)
    }

    /// Whether a campaign is paused.
    fn paused(&self, campaign: &str) -> Result<bool, StoreError> {
        Ok(self.db()?.get(key::paused(campaign))?.is_some())
    }

    fn decisions(&self) -> Result<Vec<super::Decision>, StoreError> {
        self.scan(&key::decisions())
            .map(|item| {
                let (k, v) = item?;
                decode(&k, &v)
            })
            .collect()
    }

    fn suppression(
        &self,
        contact: &super::Contact,
    ) -> Result<Option<super::Suppression>, StoreError> {
        self.suppression_entry(contact)
    }

    fn suppressions(&self) -> Result<Vec<super::Suppression>, StoreError> {
        self.suppression_list()
    }

    fn digest_due(&self) -> Result<Option<Instant>, StoreError> {
        let value = self.db()?.get(key::meta(key::DIGEST_DUE))?;
        Ok(value.and_then(|v| key::instant_of(&v)))
    }

    /// Every dossier, in key order (a full scan: for reloads, reports and
    /// audits, not for hot paths).
    fn dossiers(&self) -> impl Iterator<Item = Result<Dossier, StoreError>> + '_ {
        self.scan(b"c").map(|r| {
            r.and_then(|(k, v)| {
                dossier_record::decode(&v).map_err(|e| {
                    StoreError::damaged_dossier(&key::candidate_id(&k).unwrap_or_default(), e)
                })
            })
        })
    }

    /// The traces from the daemon's index once a report built it (see
    /// [`trace_index`]), else from the front of each record, each reader
    /// on a thread of its own over a part of the candidates' keys
    /// ([`SledStore::part_range`]).
    fn read_traces(&self, readers: &mut [super::TraceReader<'_>]) -> Result<(), StoreError> {
        match self.traces.plan() {
            trace_index::Plan::Store => self.read_records(readers, None),
            trace_index::Plan::Build(build) => {
                // Reset unless it ends well (an error, a panic).
                struct Building<'a>(Option<&'a trace_index::TraceIndex>);
                impl Drop for Building<'_> {
                    fn drop(&mut self) {
                        if let Some(index) = self.0 {
                            index.reset();
                        }
                    }
                }
                let mut building = Building(Some(&self.traces));
                let mut pieces: Vec<trace_index::Piece> =
                    readers.iter().map(|_| Default::default()).collect();
                self.read_records(readers, Some(&mut pieces))?;
                building.0 = None;
                self.traces.built(build, pieces);
                Ok(())
            }
            trace_index::Plan::Index(snapshot) => {
                struct Reading<'a>(&'a trace_index::TraceIndex);
                impl Drop for Reading<'_> {
                    fn drop(&mut self) {
                        self.0.done_reading();
                    }
                }
                let _reading = Reading(&self.traces);
                let parts = readers.len();
                on_threads(readers, |part, reader| {
                    self.traces.read(snapshot, part, parts, reader)
                })
            }
        }
    }

    /// Dossiers in key order after `after`'s: one range read of `limit`.
    fn dossiers_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Option<Dossier>)>, StoreError> {
        use std::ops::Bound;
        let from = match after {
            Some(id) => Bound::Excluded(key::candidate(id)),
            None => Bound::Included(vec![b'c']),
        };
        let mut out = Vec::with_capacity(limit);
        for item in self
            .db()?
            .range::<Vec<u8>, _>((from, Bound::Excluded(vec![b'd'])))
            .take(limit)
        {
            let (k, v) = item?;
            let Some(id) = key::candidate_id(&k) else {
                continue;
            };
            out.push((id, dossier_record::decode(&v).ok()));
        }
        Ok(out)
    }

    fn candidate(&self, id: &str) -> Result<Option<CandidateRecord>, StoreError> {
        Ok(self.dossier(id)?.map(|d| d.candidate))
    }

    fn enrollment(
        &self,
        candidate: &str,
        campaign: &str,
    ) -> Result<Option<Enrollment>, StoreError> {
        Ok(self
            .dossier(candidate)?
            .and_then(|d| d.enrollment(campaign).cloned()))
    }

    /// A send by its key.
    fn send(&self, send_key: SendKey) -> Result<Option<OutboxEntry>, StoreError> {
        let candidate = send_key.candidate();
        match self.dossier(candidate)? {
            Some(d) => d
                .send(send_key.as_str())
                .map_err(|e| StoreError::damaged_dossier(candidate, e)),
            None => Ok(None),
        }
    }

    /// Every send of every candidate (a full scan).
    fn sends(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut out = Vec::new();
        for d in self.dossiers() {
            let d = d?;
            out.extend(
                d.sends()
                    .map_err(|e| StoreError::damaged_dossier(&d.candidate.id, e))?,
            );
        }
        Ok(out)
    }

    /// Sends queued and not yet settled (the delivery queue's length); after
    /// a restart, until recovery, sends listed by the journal (some may have
    /// settled: [`SledStore::undelivered_checked`] reads their dossiers).
    fn undelivered(&self) -> usize {
        self.journal().queued.len()
    }

    /// Sends handed to a channel (or marked in flight as they were queued)
    /// and not settled.
    fn in_flight(&self) -> usize {
        self.journal().flying.len()
    }

    /// Sends a journal record lists as handed to a channel that are no
    /// longer queued (settled before the record's last send was).
    fn flying_unqueued(&self) -> Vec<String> {
        let journal = self.journal();
        journal
            .flying
            .keys()
            .filter(|k| !journal.queued.contains_key(*k))
            .cloned()
            .collect()
    }

    /// Sends queued and not settled, each checked against its dossier.
    fn undelivered_checked(&self) -> Result<usize, StoreError> {
        let keys: Vec<String> = self.journal().queued.keys().cloned().collect();
        let mut n = 0;
        for k in keys {
            let Some(k) = SendKey::parse(&k) else {
                continue;
            };
            if let Some(e) = self.send(k)? {
                n += usize::from(e.status == SendStatus::Queued && e.retry_at.is_none());
            }
        }
        Ok(n)
    }

    /// The sends queued for delivery and not settled, in the order their
    /// journal records were written, each with whether it was handed to
    /// a channel.
    fn queued_sends(&self) -> Vec<(String, bool)> {
        let journal = self.journal();
        let mut out: Vec<(&sled::IVec, &String)> =
            journal.queued.iter().map(|(k, r)| (r, k)).collect();
        out.sort();
        out.into_iter()
            .map(|(_, k)| (k.clone(), journal.flying.contains_key(k)))
            .collect()
    }

    /// A candidate's history, oldest first.
    fn history(&self, candidate: &str) -> Result<Vec<LogEntry>, StoreError> {
        match self.dossier(candidate)? {
            Some(d) => d
                .history
                .items()
                .map_err(|e| StoreError::damaged_dossier(candidate, e)),
            None => Ok(Vec::new()),
        }
    }

    /// The live timers: every entry checked against its enrollment (a full
    /// scan that reads dossiers: for `nudge status`, not for hot paths).
    fn live_timers(&self) -> Result<Vec<DueTimer>, StoreError> {
        let mut out = Vec::new();
        let mut txn = SledTxn::new(self);
        for t in self.timers_until(None)? {
            let live = match txn.enrollment(&t.candidate, &t.campaign) {
                Ok(Some(e)) => e.timer == Some(t.due) && !e.parked,
                Ok(None) | Err(StoreError::Corrupt { .. }) => false,
                Err(e) => return Err(e),
            };
            if live {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Waits for the batch being written behind, and says whether it was
    /// written (`Ok` when there was none).
    fn settle(&self) -> Result<(), StoreError> {
        let written = self.writer.settle();
        let behind = self.behind().take();
        if let (Ok(()), Some((mark, delivered))) = (&written, behind) {
            self.ledger.record(mark, &delivered);
        }
        let mut taken = self.taken_timers();
        let finished = std::mem::take(&mut taken.behind);
        if written.is_ok() {
            for k in finished {
                taken.open.remove(&k);
            }
        }
        written
    }

    /// Reads the delivery journal, the identities and the timer records
    /// again: after a batch written behind failed, what memory holds of it
    /// is not in the store.
    fn reread(&self) -> Result<(), StoreError> {
        *self.identities.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.forget_last_answers();
        self.traces.reset();
        drop(self.recent.clear());
        {
            let mut taken = self.taken_timers();
            taken.open.clear();
            taken.behind.clear();
        }
        self.load_journal()
    }

    fn delivered_before(&self, key: &str) -> bool {
        self.ledger.delivered_before(key)
    }
}

/// Runs `work` for each item, the first on this thread and each other on
/// a thread of its own; the first error, if any.
fn on_threads<T: Send>(
    items: &mut [T],
    work: impl Fn(usize, &mut T) -> Result<(), StoreError> + Sync,
) -> Result<(), StoreError> {
    let work = &work;
    let Some((first, rest)) = items.split_first_mut() else {
        return Ok(());
    };
    std::thread::scope(|scope| {
        let others: Vec<_> = rest
            .iter_mut()
            .enumerate()
            .map(|(i, item)| scope.spawn(move || work(i + 1, item)))
            .collect();
        let mine = work(0, first);
        let theirs: Vec<_> = others
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect();
        mine.and(theirs.into_iter().collect())
    })
}

/// Applies a batch atomically and flushes it; a slow one is logged.
/// `applied` runs once sled holds the batch, before the flush.
fn write_durably(
    db: &sled::Db,
    batch: sled::Batch,
    applied: impl FnOnce(),
) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    faults::before_write()?;
    db.apply_batch(batch)?;
    applied();
    let applied = started.elapsed();
    faults::before_flush()?;
    db.flush()?;
    let took = started.elapsed();
    if took >= SLOW_COMMIT {
        // Sends wait for their commit: an operator seeing late sends sees
        // why (usually the disk's flush).
        tracing::warn!(
            ms = took.as_millis() as u64,
            flush_ms = (took - applied).as_millis() as u64,
            "slow store commit"
        );
    }
    Ok(())
}

/// The layout version in [`LAYOUT_FILE`], if the file is there.
fn read_layout(path: &Path) -> Result<Option<u32>, StoreError> {
    let file = path.join(LAYOUT_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| StoreError::Unreadable {
                path: path.to_path_buf(),
                why: format!("its layout marker `{LAYOUT_FILE}` is damaged"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::Unreadable {
            path: path.to_path_buf(),
            why: format!("cannot read `{LAYOUT_FILE}`: {e}"),
        }),
    }
}

/// Writes [`LAYOUT_FILE`] whole or not at all: aside, synced, renamed.
fn write_layout(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let temp = path.join(format!("{LAYOUT_FILE}.tmp"));
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(format!("{SCHEMA_VERSION}\n").as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, path.join(LAYOUT_FILE))?;
    std::fs::File::open(path)?.sync_all()
}

/// The file in the store folder that the process holding the store keeps
/// locked (besides sled's own lock, which a daemon reopening its database
/// after a write failed lets go of for a moment).
pub const HOLDER_FILE: &str = "holder.lock";

/// Locks [`HOLDER_FILE`] in `path` (made if need be) for this process, or
/// says the store is in use; while `wait_for_release` holds, a lock still
/// held by a handle this process dropped is tried again.
fn hold(path: &Path, wait_for_release: impl Fn() -> bool) -> Result<std::fs::File, StoreError> {
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(path).map_err(StoreError::Io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.join(HOLDER_FILE))
        .map_err(StoreError::Io)?;
    loop {
        // SAFETY: flock on a descriptor this function owns; no memory is
        // shared with the call.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(file);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::WouldBlock {
            return Err(StoreError::Io(e));
        }
        if !wait_for_release() {
            return Err(StoreError::Locked {
                path: path.to_path_buf(),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Opens sled's database in `path`; while `wait_for_release` holds, a
/// store still locked (by sled's threads of a handle this process
/// dropped) is tried again.
fn open_db(
    path: &Path,
    cache_bytes: u64,
    wait_for_release: impl Fn() -> bool,
) -> Result<sled::Db, StoreError> {
    loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(None)
            .open()
            .map_err(|e| classify_open_error(path, e));
        match opened {
            Err(StoreError::Locked { .. }) if wait_for_release() => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// sled's records as the store's, or the one error that there are none.
fn entries<I>(
    scan: Result<I, StoreError>,
) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec), StoreError>>
where
    I: Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
{
    let (records, error) = match scan {
        Ok(records) => (Some(records), None),
        Err(e) => (None, Some(Err(e))),
    };
    error.into_iter().chain(
        records
            .into_iter()
            .flatten()
            .map(|r| r.map_err(StoreError::from)),
    )
}

/// Free room on a filesystem before a database whose writes failed is
/// opened again: two of sled's 512 KiB log segments.
const REOPEN_FREE: u64 = 1 << 20;

/// Bytes an unprivileged process may still write on `path`'s filesystem.
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `stat` is written whole by a
    // successful call, read only then.
    if unsafe { libc::statvfs(c.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return None;
    }
    let stat = unsafe { stat.assume_init() };
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Milliseconds since the Unix epoch.
fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn classify_open_error(path: &Path, e: sled::Error) -> StoreError {
    match &e {
        sled::Error::Io(io)
            if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock") =>
        {
            StoreError::Locked {
                path: path.to_path_buf(),
            }
        }
        sled::Error::Corruption { .. } => StoreError::Damaged {
            path: path.to_path_buf(),
            why: "sled found corrupted data in its files".into(),
        },
        sled::Error::Unsupported(_) => StoreError::Unreadable {
            path: path.to_path_buf(),
            why: e.to_string(),
        },
        _ => StoreError::from(e),
    }
}

/// Reads a counter value.
fn counter_value(bytes: &[u8]) -> i64 {
    <[u8; 8]>::try_from(bytes).map_or(0, i64::from_be_bytes)
}
