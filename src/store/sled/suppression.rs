//! The suppression list on sled: one `s` key per contact (`s` kind `0`
//! address), its value the [`Suppression`] entry. A send reads one key;
//! the list is read whole only to be listed.

use super::*;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::store::{Contact, Suppression};

/// What this process knows of the list's keys (see
/// [`SledStore::may_be_suppressed`]).
#[derive(Default)]
pub(super) enum Known {
    #[default]
    Unread,
    Keys(foldhash::HashSet<Vec<u8>>),
    /// Reading the list failed once: every lookup reads the store.
    Unreliable,
}

/// The key of a contact's entry.
pub(super) fn key_of(contact: &Contact) -> Vec<u8> {
    key::suppression(contact.kind.name(), &contact.address)
}

/// What this process knows of the list, and a flag that says without a
/// lock that the list is known to be empty (most stores never suppress
/// anyone, and every enrollment and send asks).
#[derive(Default)]
pub(super) struct Listed {
    known: Mutex<Known>,
    /// Set once the list was read and found empty; cleared, before the key
    /// goes in, by the first contact noted.
    empty: AtomicBool,
}

impl Listed {
    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether a key is a suppression entry's.
pub(super) fn is_entry(k: &[u8]) -> bool {
    k.first() == Some(&key::suppressions()[0])
}

impl SledStore {
    /// Whether the contact of entry key `k` may be on the list: false says
    /// it is not, with no read of the store after the first.
    pub(super) fn may_be_suppressed(&self, k: &[u8]) -> Result<bool, StoreError> {
        if self.suppressed.empty.load(Ordering::Acquire) {
            return Ok(false);
        }
        let mut known = self.suppressed.known();
        Ok(match self.known_keys(&mut known)? {
            Some(keys) => keys.contains(k),
            None => true,
        })
    }

    /// Whether any contact may be on the list: false says none is (none
    /// was ever listed in the store nor by this process), so a send needs
    /// no lookup at all.
    pub(super) fn may_be_any_suppressed(&self) -> Result<bool, StoreError> {
        if self.suppressed.empty.load(Ordering::Acquire) {
            return Ok(false);
        }
        let mut known = self.suppressed.known();
        let any = self
            .known_keys(&mut known)?
            .is_none_or(|keys| !keys.is_empty());
        if !any {
            // Under the lock, so a contact noted meanwhile clears it after.
            self.suppressed.empty.store(true, Ordering::Release);
        }
        Ok(any)
    }

    /// Notes that the contact of entry key `k` may be on the list from now
    /// (before its entry is written: a write behind the core lands later).
    /// When the list cannot be read, every later lookup reads the store.
    pub(super) fn note_suppressed(&self, k: &[u8]) {
        let mut known = self.suppressed.known();
        self.suppressed.empty.store(false, Ordering::Release);
        match self.known_keys(&mut known) {
            Ok(Some(keys)) => {
                keys.insert(k.to_vec());
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%e, "the suppression list could not be read; every send's lookup reads the store");
                *known = Known::Unreliable;
            }
        }
    }

    /// The keys that may be on the list, read from the store the first
    /// time; `None` when the memory cannot be trusted.
    fn known_keys<'k>(
        &self,
        known: &'k mut Known,
    ) -> Result<Option<&'k mut foldhash::HashSet<Vec<u8>>>, StoreError> {
        if matches!(known, Known::Unread) {
            let mut keys = foldhash::HashSet::default();
            for item in self.scan(&key::suppressions()) {
                keys.insert(item?.0.to_vec());
            }
            *known = Known::Keys(keys);
        }
        Ok(match known {
            Known::Keys(keys) => Some(keys),
            _ => None,
        })
    }

    /// A contact's entry, as committed.
    pub(super) fn suppression_entry(
        &self,
        contact: &Contact,
    ) -> Result<Option<Suppression>, StoreError> {
        let k = key_of(contact);
        match self.db()?.get(&k)? {
            Some(v) => decode(&k, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Every entry, in key order (email addresses, then phone numbers).
    pub(super) fn suppression_list(&self) -> Result<Vec<Suppression>, StoreError> {
        self.scan(&key::suppressions())
            .map(|item| {
                let (k, v) = item?;
                decode(&k, &v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Contact, Store, SuppressionReason, Transaction};

    fn entry(address: &str) -> Suppression {
        Suppression {
            contact: Contact::email(address),
            reason: SuppressionReason::OptedOut,
            at: Instant::from_timestamp_millis(1_796_000_000_000).unwrap(),
            candidate: Some("c1".into()),
        }
    }

    #[test]
    fn a_lookup_answered_from_memory_sees_every_entry_of_this_process_and_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path(), 1 << 20).unwrap();
            let mut txn = store.begin();
            txn.suppress(&entry("old@example.com"));
            txn.commit().unwrap();
        }
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        // The first lookup reads the list; the entry from the file is in it.
        let mut txn = store.begin();
        assert!(txn
            .suppression(&Contact::email("old@example.com"))
            .unwrap()
            .is_some());
        assert!(txn
            .suppression(&Contact::email("new@example.com"))
            .unwrap()
            .is_none());
        txn.suppress(&entry("new@example.com"));
        txn.commit().unwrap();
        // Written by this process after the list was read: still seen.
        let mut txn = store.begin();
        assert_eq!(
            txn.suppression(&Contact::email("new@example.com")).unwrap(),
            Some(entry("new@example.com"))
        );
        txn.unsuppress(&Contact::email("new@example.com"));
        txn.commit().unwrap();
        let txn = store.begin();
        assert!(txn
            .suppression(&Contact::email("new@example.com"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_store_that_never_listed_a_contact_needs_no_lookup_until_one_is() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path(), 1 << 20).unwrap();
            let mut txn = store.begin();
            assert!(!txn.may_suppress_any().unwrap());
            // Suppressed in this transaction, before its commit.
            txn.suppress(&entry("a@example.com"));
            assert!(txn.may_suppress_any().unwrap());
            txn.unsuppress(&Contact::email("a@example.com"));
            txn.commit().unwrap();
            // Taken off again: still "may be" (the memory only grows).
            assert!(store.begin().may_suppress_any().unwrap());
        }
        // A store whose file holds an entry says so from its first lookup.
        let other = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(other.path(), 1 << 20).unwrap();
            let mut txn = store.begin();
            txn.suppress(&entry("b@example.com"));
            txn.commit().unwrap();
        }
        let store = SledStore::open(other.path(), 1 << 20).unwrap();
        assert!(store.begin().may_suppress_any().unwrap());
        let fresh = tempfile::tempdir().unwrap();
        let store = SledStore::open(fresh.path(), 1 << 20).unwrap();
        assert!(!store.begin().may_suppress_any().unwrap());
    }

    #[test]
    fn entries_are_found_by_contact_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        let mut txn = store.begin();
        txn.suppress(&entry("k15@example.com"));
        txn.suppress(&entry("a@example.com"));
        assert_eq!(
            txn.suppression(&Contact::email("K15@example.com")).unwrap(),
            Some(entry("k15@example.com"))
        );
        txn.commit().unwrap();
        assert_eq!(
            store
                .suppression(&Contact::email("k15@example.com"))
                .unwrap(),
            Some(entry("k15@example.com"))
        );
        assert_eq!(
            store.suppression(&Contact::phone("+15550100", "")).unwrap(),
            None
        );
        assert_eq!(
            store.suppressions().unwrap(),
            [entry("a@example.com"), entry("k15@example.com")]
        );
        let mut txn = store.begin();
        txn.unsuppress(&Contact::email("a@example.com"));
        txn.commit().unwrap();
        assert_eq!(store.suppressions().unwrap(), [entry("k15@example.com")]);
    }

    #[test]
    fn a_transaction_split_off_sees_what_its_parent_suppressed_and_does_not_write_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        let mut txn = store.begin();
        txn.suppress(&entry("k15@example.com"));
        let mut other = txn.split_off(["c9"]).unwrap();
        assert_eq!(
            other
                .suppression(&Contact::email("k15@example.com"))
                .unwrap(),
            Some(entry("k15@example.com"))
        );
        // The parent takes it off meanwhile; taking the other back does not
        // put it on again.
        txn.unsuppress(&Contact::email("k15@example.com"));
        other.suppress(&entry("b@example.com"));
        txn.absorb(other);
        txn.commit().unwrap();
        assert_eq!(store.suppressions().unwrap(), [entry("b@example.com")]);
    }
}
