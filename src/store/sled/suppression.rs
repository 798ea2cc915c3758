//! The suppression list on sled: one `s` key per contact (`s` kind `0`
//! address), its value the [`Suppression`] entry. A send reads one key;
//! the list is read whole only to be listed.

use super::*;
use crate::store::{Contact, Suppression};

/// The key of a contact's entry.
pub(super) fn key_of(contact: &Contact) -> Vec<u8> {
    key::suppression(contact.kind.name(), &contact.address)
}

/// Whether a key is a suppression entry's.
pub(super) fn is_entry(k: &[u8]) -> bool {
    k.first() == Some(&key::suppressions()[0])
}

impl SledStore {
    /// A contact's entry, as committed.
    pub(super) fn suppression_entry(
        &self,
        contact: &Contact,
    ) -> Result<Option<Suppression>, StoreError> {
        let k = key_of(contact);
        match self.db.get(&k)? {
            Some(v) => decode(&k, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Every entry, in key order (email addresses, then phone numbers).
    pub(super) fn suppression_list(&self) -> Result<Vec<Suppression>, StoreError> {
        self.db
            .scan_prefix(key::suppressions())
            .map(|item| {
                let (k, v) = item?;
                decode(&k, &v)
            })
            .collect()
    }
}
