//! Reads for people: candidates per state, counters, and history in words.

use super::*;

impl Core {
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
