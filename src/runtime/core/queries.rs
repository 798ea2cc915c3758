//! Reads for people: candidates per state, counters, and history in words.

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

/// Counters of a campaign: candidates per state and per outcome, failures.
pub fn counters<S: Store>(store: &S, campaign: &str) -> Result<HashMap<Counter, i64>, StoreError> {
    Ok(store.counters(campaign)?.into_iter().collect())
}
