//! Timers: firing the due ones in batches, what is coming next, and the
//! idle rehearsal of the next ones.

use super::apply::Step;
use super::batch::{helper_share, PARALLEL_STEPS};
use super::reload::park;
use super::*;

/// What one firing took from the timer records.
#[derive(Default)]
pub(super) struct Fired {
    /// Entries taken, stale ones included.
    pub(super) taken: usize,
    /// Records whose last entry was taken (deleted in the commit).
    pub(super) finished: Vec<Vec<u8>>,
    /// Each record it took entries from.
    pub(super) touched: Vec<Vec<u8>>,
}

/// A timer record being fired.
pub(super) struct OpenRecord {
    pub(super) entries: Vec<TimerEntry>,
    /// Entries taken, in order.
    pub(super) done: usize,
    /// Taken entries of damaged records, kept in the store.
    pub(super) kept: Vec<TimerEntry>,
    /// Already rewritten down to its kept entries.
    pub(super) rewritten: bool,
}

impl Core {
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
    pub(super) fn commit_fired(
        &mut self,
        txn: Txn,
        fired: Option<&Fired>,
    ) -> Result<(), StoreError> {
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
    pub(super) fn fire_into(
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

    /// Fires `picks` into `txn`; returns those whose dossier is damaged
    /// (reported here; the caller keeps them in their records).
    pub(super) fn fire_all<'p>(
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

    pub(super) fn fire_one(
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

    /// The next `limit` timer entries not yet taken (some may turn out
    /// stale), in due order: the first records' entries, bucket by bucket,
    /// until a bucket ends with `limit` found. Damaged records are passed
    /// over (one that does not decode is reported when it falls due).
    pub(super) fn upcoming(&self, limit: usize) -> Result<Vec<TimerEntry>, StoreError> {
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
}
