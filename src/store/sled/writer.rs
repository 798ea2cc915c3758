//! Write-behind: the store's writer thread applies and flushes one batch
//! while the core builds the next.
//!
//! sled applies a batch on the calling thread (about a third of an
//! enrollment's cost, all on one core), so a core that waited for each
//! batch left the machine's other core idle meanwhile. With write-behind,
//! the core hands batch k to this thread and goes on building batch k + 1;
//! it reads what k writes from k's own list of writes ([`Writer::pending`])
//! until sled has it. Nothing of k is acknowledged or sent before k is
//! durable: the core waits for it ([`Writer::settle`]) before it answers
//! k's clients, hands k's sends to the channels, or hands k + 1 over. At
//! most one batch is being written at a time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, Weak};

use foldhash::HashMap;

use super::trace_index::TraceIndex;
use super::StoreError;

/// A batch's writes by key (`None`: the key is removed).
pub type Writes = HashMap<sled::IVec, Option<sled::IVec>>;

/// Writes as the trace index takes them.
pub fn noted(writes: &Writes) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
    writes.iter().map(|(k, v)| (&k[..], v.as_deref()))
}

/// Turns writes into sled's atomic batch.
pub fn into_batch(
    writes: impl IntoIterator<Item = (sled::IVec, Option<sled::IVec>)>,
) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for (k, v) in writes {
        match v {
            Some(v) => batch.insert(k, v),
            None => batch.remove(k),
        }
    }
    batch
}

/// A batch for the thread: the database, the batch, its writes (for the
/// trace index) and the index to tell once sled holds it.
type Job = (sled::Db, sled::Batch, Arc<Writes>, Arc<TraceIndex>, Spent);

/// What a batch's transaction held and no longer needs (its decoded
/// dossiers), freed by the writer thread once the batch is written and
/// its waiters told, so the core's thread does not spend its time on it.
pub type Spent = Box<dyn Send>;

#[derive(Default)]
struct State {
    /// The writes of the batch being written; `None` when there is none.
    writing: Option<Arc<Writes>>,
    /// How the last batch went, until [`Writer::settle`] takes it.
    outcome: Option<Result<(), StoreError>>,
}

/// One batch at a time, written on a thread of its own.
#[derive(Default)]
pub struct Writer {
    state: Mutex<State>,
    written: Condvar,
    /// The thread's queue; the thread starts with the first batch and ends
    /// when the store is dropped.
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    /// Microseconds each batch waits before it is applied (tests only: a
    /// slow disk, so the next batch is surely built before it is written).
    hold: AtomicU64,
    /// When the write under way started ([`since_origin`] microseconds,
    /// plus one), 0 when none is: a stalled disk shows here.
    since: Arc<AtomicU64>,
}

impl Writer {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `writes` to the thread, to apply and flush, after the batch
    /// being written (if any) is done. The caller settles the batch before
    /// it first: its outcome would otherwise be lost.
    pub fn start(
        self: &Arc<Self>,
        db: &sled::Db,
        writes: Writes,
        traces: &Arc<TraceIndex>,
        spent: Spent,
    ) -> Result<(), StoreError> {
        // The batch shares its values with the list kept for reads.
        let batch = into_batch(writes.iter().map(|(k, v)| (k.clone(), v.clone())));
        let writes = Arc::new(writes);
        {
            let mut state = self.idle();
            debug_assert!(state.outcome.is_none(), "a write's outcome was not taken");
            state.writing = Some(writes.clone());
        }
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.is_none() {
            let (tx, rx) = mpsc::channel();
            let me = Arc::downgrade(self);
            let since = self.since.clone();
            std::thread::Builder::new()
                .name("nudge-writer".into())
                .spawn(move || run(me, rx, since))
                .map_err(StoreError::Io)?;
            *queue = Some(tx);
        }
        if let Some(tx) = queue.as_ref() {
            if tx
                .send((db.clone(), batch, writes, traces.clone(), spent))
                .is_ok()
            {
                return Ok(());
            }
        }
        // The thread is gone (it panicked): the batch was not written.
        *queue = None;
        self.state().writing = None;
        Err(StoreError::Backend(
            "the store's writer thread stopped".into(),
        ))
    }

    /// Waits for the batch being written (if any); returns the state with
    /// none being written.
    fn idle(&self) -> MutexGuard<'_, State> {
        let mut state = self.state();
        while state.writing.is_some() {
            state = self.written.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state
    }

    /// Waits for the batch being written, and says how it went (`Ok` when
    /// there was none).
    pub fn settle(&self) -> Result<(), StoreError> {
        self.idle().outcome.take().unwrap_or(Ok(()))
    }

    /// Writes a batch on this thread, timed like those written behind.
    pub fn write_here(
        &self,
        db: &sled::Db,
        batch: sled::Batch,
        applied: impl FnOnce(),
    ) -> Result<(), StoreError> {
        timed(&self.since, || super::write_durably(db, batch, applied))
    }

    /// How long the write under way (behind or not) has been going.
    pub fn running_for(&self) -> Option<std::time::Duration> {
        match self.since.load(Ordering::Relaxed) {
            0 => None,
            started => Some(std::time::Duration::from_micros(
                since_origin().saturating_sub(started - 1),
            )),
        }
    }

    /// Waits for the batch being written, leaving its outcome to be taken.
    pub fn wait_idle(&self) {
        drop(self.idle());
    }

    /// Makes each batch wait `micros` before it is applied (for tests).
    pub fn hold(&self, micros: u64) {
        self.hold.store(micros, Ordering::Relaxed);
    }

    /// What the batch being written writes at `key`: `Some(None)` when it
    /// removes the key, `None` when it does not touch it (or there is no
    /// batch being written).
    pub fn pending(&self, key: &[u8]) -> Option<Option<sled::IVec>> {
        let writing = self.state().writing.clone()?;
        writing.get(key).cloned()
    }
}

/// The thread: each batch applied atomically and flushed, then its outcome
/// posted and its writes dropped (sled has them).
fn run(writer: Weak<Writer>, queue: mpsc::Receiver<Job>, since: Arc<AtomicU64>) {
    while let Ok((db, batch, writes, traces, spent)) = queue.recv() {
        let hold = writer
            .upgrade()
            .map_or(0, |w| w.hold.load(Ordering::Relaxed));
        if hold > 0 {
            std::thread::sleep(std::time::Duration::from_micros(hold));
        }
        let outcome = timed(&since, || {
            super::write_durably(&db, batch, || traces.note(noted(&writes)))
        });
        drop((db, writes, traces));
        let Some(writer) = writer.upgrade() else {
            return;
        };
        let mut state = writer.state();
        state.outcome = Some(outcome);
        state.writing = None;
        drop(state);
        writer.written.notify_all();
        drop(spent);
    }
}

/// Runs a write, noting when it started in `since` meanwhile.
fn timed<T>(since: &AtomicU64, write: impl FnOnce() -> T) -> T {
    since.store(since_origin() + 1, Ordering::Relaxed);
    let out = write();
    since.store(0, Ordering::Relaxed);
    out
}

/// Microseconds since the first call in this process (a monotonic clock
/// that fits an atomic).
fn since_origin() -> u64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    ORIGIN
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_micros() as u64
}
