//! Counts for people, and keeping them: candidates per state and outcome
//! (bumped by the steps), and the timers `status` counts (held sends,
//! sends due by minute), moved in the commit that writes each enrollment.

use super::*;

impl<S: Store> Core<S> {
    /// Candidates per state of a campaign (from the counters).
    pub fn state_counts(&self, campaign: &str) -> Result<BTreeMap<String, i64>, StoreError> {
        Ok(self
            .store
            .counters(campaign)?
            .into_iter()
            .filter_map(|(counter, n)| match counter {
                Counter::State(state) => Some((state, n)),
                _ => None,
            })
            .collect())
    }
}

/// Counters of a campaign: candidates per state and per outcome, failures,
/// held sends (not the sends due per minute: [`Store::sends_due`]).
pub fn counters<S: Store>(store: &S, campaign: &str) -> Result<HashMap<Counter, i64>, StoreError> {
    Ok(store.counters(campaign)?.into_iter().collect())
}

/// Writes an enrollment, and moves the counts of its waiting timer (a held
/// send, a send due in some minute) from what the stored enrollment
/// counted to what this one counts, as deltas in the same commit. Every
/// enrollment the core writes goes through here, so `status` reads counts
/// that a scan of the enrollments would find.
pub(super) fn put_enrollment<T: Transaction>(
    txn: &mut T,
    enr: &Enrollment,
) -> Result<(), StoreError> {
    let waits = enr.waiting();
    let waited = txn.waiting(&enr.candidate, &enr.campaign)?;
    if waited != waits {
        for counter in TimerKind::counters(waited) {
            txn.bump(&enr.campaign, &counter, -1);
        }
        for counter in TimerKind::counters(waits) {
            txn.bump(&enr.campaign, &counter, 1);
        }
    }
    txn.put_enrollment(enr)
}
