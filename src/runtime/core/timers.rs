//! Timers: firing the due ones in batches, what is coming next, and the
//! idle rehearsal of the next ones.

use super::apply::Step;
use super::batch::{helper_share, PARALLEL_STEPS};
use super::reload::park;
use super::*;

impl<S: Store> Core<S> {
    /// Fires up to `limit` timers due at or before `now`, bucket by bucket
    /// in due order, in one commit. Returns how many timers were taken
    /// (stale ones, passed over, included) and the sends to dispatch.
    pub fn fire_due(
        &mut self,
        now: Instant,
        limit: usize,
    ) -> Result<(usize, Outgoing), StoreError> {
        let store = self.store.clone();
        let mut txn = store.begin();
        let mut out = Vec::new();
        let fired = self.fire_into(&mut txn, now, limit, &mut out)?;
        if txn.is_empty() {
            return Ok((0, Vec::new()));
        }
        txn.commit()?;
        Ok((fired, out))
    }

    /// Takes up to `limit` due timers and steps their enrollments into
    /// `txn`; returns how many it took. A timer whose dossier does not
    /// decode is reported, passed over until nudge restarts, and kept in
    /// the store.
    pub(super) fn fire_into(
        &mut self,
        txn: &mut Txn<S>,
        now: Instant,
        limit: usize,
        out: &mut Outgoing,
    ) -> Result<usize, StoreError> {
        let damaged = &self.damaged;
        let picked = txn.take_due_timers(now, limit, |c| damaged.contains(c))?;
        if picked.is_empty() {
            return Ok(0);
        }
        let candidates: Vec<&str> = picked.iter().map(|t| t.candidate.as_str()).collect();
        // Candidates this batch's commands have not touched can step on
        // another thread, with a transaction of their own.
        let theirs = (picked.len() >= PARALLEL_STEPS)
            .then(|| helper_share(candidates.iter().copied(), |c| txn.movable(c)))
            .flatten();
        txn.prefetch(&candidates);
        let hits = match theirs {
            Some(theirs) => {
                let halves: (Vec<&DueTimer>, Vec<_>) = picked
                    .iter()
                    .partition(|t| !theirs.contains(t.candidate.as_str()));
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
                let all: Vec<&DueTimer> = picked.iter().collect();
                self.fire_all(txn, &all, now, out)?
            }
        };
        for timer in hits {
            self.damaged.insert(timer.candidate.clone());
            txn.keep_timer(timer);
        }
        Ok(picked.len())
    }

    /// Fires `picks` into `txn`; returns those whose dossier is damaged
    /// (reported here; the caller keeps them in their records).
    pub(super) fn fire_all<'p>(
        &self,
        txn: &mut Txn<S>,
        picks: &[&'p DueTimer],
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Vec<&'p DueTimer>, StoreError> {
        let mut hits = Vec::new();
        for timer in picks.iter().copied() {
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
                    hits.push(timer);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(hits)
    }

    pub(super) fn fire_one(
        &self,
        txn: &mut Txn<S>,
        timer: &DueTimer,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<(), StoreError> {
        let Some(mut enr) = txn.enrollment(&timer.candidate, &timer.campaign)? else {
            return Ok(());
        };
        let due = timer.due;
        if enr.timer != Some(due) {
            // Stale: the enrollment moved on (re-armed, parked, exited)
            // after this timer was armed.
            return Ok(());
        }
        if self.is_paused(txn, &enr.campaign)? || self.campaigns.get(&enr.campaign).is_none() {
            park(txn, &mut enr);
            put_enrollment(txn, &enr)?;
            return Ok(());
        }
        // This timer is taken: whatever the step arms is a new one.
        enr.timer = None;
        // After downtime, what fell due more than `stale_after` ago, or
        // before a deadline that has passed since, could only go late: it
        // runs at the instants it fell due, so transitions keep their
        // times and each send is skipped as late by the engine.
        let stale = now - self.settings.stale_after;
        let cut = match enr.engine.deadline {
            Some(deadline) if deadline < now => stale.max(deadline),
            _ => stale,
        };
        if due < cut {
            enr = self.step(txn, enr, Step::WakeBefore(cut), now, out)?;
        }
        if now - due > self.settings.catch_up {
            // Long downtime: run what fell due now, at a decent hour.
            enr.engine.clock = enr.engine.clock.max(now);
        }
        self.step(txn, enr, Step::Wake, now, out)?;
        Ok(())
    }

    /// Steps the next `limit` timers through the engine at their due
    /// instants, in a transaction that is dropped: nothing is written,
    /// sent or logged. The daemon runs it while it waits for them, so that
    /// the first batches of a burst (the reminders due at 09:00) find their
    /// dossiers in the store's cache and the code and templates warm, instead of
    /// paying for that while the sends are due. Returns the last instant
    /// rehearsed.
    pub fn rehearse(&self, limit: usize) -> Result<Option<Instant>, StoreError> {
        let mut pending = self.store.upcoming_timers(limit)?;
        pending.retain(|e| !self.damaged.contains(&e.candidate));
        let mut txn = self.store.begin();
        let candidates: Vec<&str> = pending.iter().map(|e| e.candidate.as_str()).collect();
        txn.prefetch(&candidates);
        let mut out = Vec::new();
        for e in &pending {
            // What goes wrong here goes wrong again, and is reported, when
            // the timer fires.
            let _ = self.fire_one(&mut txn, e, e.due, &mut out);
        }
        Ok(pending.last().map(|e| e.due))
    }

    /// The instant of the earliest timer not yet taken (it may turn out
    /// stale), or of the earliest retry.
    pub fn next_due(&self) -> Result<Option<Instant>, StoreError> {
        let timer = self.store.upcoming_timers(1)?.first().map(|e| e.due);
        let retry = self.store.next_retry()?;
        Ok(match (timer, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }
}
