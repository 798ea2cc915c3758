//! Who each candidate is, for finding them again by external id, email or
//! phone, held in memory.
//!
//! An index in sled keyed by identity put each new candidate's entry at a
//! random place in the tree; sled 0.34 copies a leaf on every insert and
//! splits it every 16 entries, so that index cost about as much as the
//! rest of an enrollment (`cargo bench --bench runtime` at 1,000,000
//! candidates: 20,526 enrollments a second, 37,555 with a build that left
//! the index out). Instead, each commit that creates candidates writes one
//! `y` record (sequential, like the timer and journal records) listing a
//! 64-bit digest of each new identity and the candidate's number; the
//! store reads them back into a map the first time it is asked (16 bytes an
//! identity on disk, 8 in memory plus the table's overhead: [`Index`]), and the daemon
//! asks on a thread of its own once a restart's undelivered sends are on
//! their way.
//!
//! A digest says which candidates *may* be known under an identity: the
//! caller compares the candidate's stored identity, so two identities with
//! one digest (about one chance in 10^7 among a million candidates) stay
//! two candidates.

use foldhash::HashMap;
use hashbrown::HashTable;
use sha2::{Digest, Sha256};

/// The 64-bit digest of an identity: the first 8 bytes of its SHA-256,
/// stable across builds and machines (the records are read back by later
/// versions).
pub fn digest(identity: &str) -> u64 {
    let hash = Sha256::digest(identity.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(first)
}

/// Digest → candidate numbers (`c` n).
#[derive(Debug, Default)]
pub struct Identities {
    /// The candidate of each digest that only one candidate has.
    one: HashMap<u64, u64>,
    /// Digests that several candidates have, with all of them.
    more: HashMap<u64, Vec<u64>>,
}

impl Identities {
    /// Notes that candidate `id` is known under `digest`.
    pub fn insert(&mut self, digest: u64, id: u64) {
        if let Some(more) = self.more.get_mut(&digest) {
            if !more.contains(&id) {
                more.push(id);
            }
            return;
        }
        match self.one.insert(digest, id) {
            Some(earlier) if earlier != id => {
                self.one.remove(&digest);
                self.more.insert(digest, vec![earlier, id]);
            }
            _ => {}
        }
    }

    /// The candidates that may be known under `digest`, earliest first.
    pub fn get(&self, digest: u64) -> Vec<u64> {
        match self.more.get(&digest) {
            Some(ids) => ids.clone(),
            None => self.one.get(&digest).copied().into_iter().collect(),
        }
    }

    /// Every (digest, candidate number) pair.
    pub fn pairs(&self) -> Vec<(u64, u64)> {
        let one = self.one.iter().map(|(d, id)| (*d, *id));
        let more = self
            .more
            .iter()
            .flat_map(|(d, ids)| ids.iter().map(move |id| (*d, *id)));
        one.chain(more).collect()
    }

    pub fn len(&self) -> usize {
        self.one.len() + self.more.values().map(Vec::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The store's map of every candidate's identities, compact: an entry is
/// the top 32 bits of a digest and a candidate number below 2^32, in one
/// 64-bit word (9 bytes a slot with the table's control byte, where
/// [`Identities`] takes 17). A lookup returns every candidate whose digest
/// shares those bits, which the caller compares on the identity itself as
/// it does for a shared digest: with a million candidates, about one
/// lookup in two thousand reads one dossier more. Numbers from 2^32 on are
/// kept whole beside.
#[derive(Default)]
pub struct Index {
    table: HashTable<u64>,
    wide: Identities,
}

/// The word of an entry.
fn word(digest: u64, id: u32) -> u64 {
    (digest & !0xFFFF_FFFF) | u64::from(id)
}

/// The table's hash of an entry: from the digest bits it keeps, mixed (a
/// digest's low bits are no better than its high ones, but the table reads
/// both ends of its hash).
fn slot_hash(word: u64) -> u64 {
    (word >> 32).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl Index {
    /// Room for `additional` more entries without growing (a table that
    /// grows holds its old and new slots at once).
    pub fn reserve(&mut self, additional: usize) {
        self.table.reserve(additional, |w| slot_hash(*w));
    }

    /// Notes that candidate `id` is known under `digest`.
    pub fn insert(&mut self, digest: u64, id: u64) {
        let Ok(small) = u32::try_from(id) else {
            return self.wide.insert(digest, id);
        };
        let w = word(digest, small);
        let hash = slot_hash(w);
        if self.table.find(hash, |e| *e == w).is_none() {
            self.table.insert_unique(hash, w, |e| slot_hash(*e));
        }
    }

    /// The candidates that may be known under `digest`, earliest first.
    pub fn get(&self, digest: u64) -> Vec<u64> {
        let w = word(digest, 0);
        let mut ids: Vec<u64> = self
            .table
            .iter_hash(slot_hash(w))
            .filter(|e| *e >> 32 == w >> 32)
            .map(|e| *e & 0xFFFF_FFFF)
            .collect();
        ids.extend(self.wide.get(digest));
        ids.sort_unstable();
        ids
    }

    pub fn len(&self) -> usize {
        self.table.len() + self.wide.len()
    }
}

/// A `y` record's value: (digest, candidate number) pairs, 16 bytes each.
pub fn encode(entries: &[(u64, u64)]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(entries.len() * 16);
    for (digest, id) in entries {
        bytes.extend_from_slice(&digest.to_be_bytes());
        bytes.extend_from_slice(&id.to_be_bytes());
    }
    bytes
}

/// The pairs of a `y` record, or `None` when its length is not a multiple
/// of 16 (damaged).
pub fn decode(bytes: &[u8]) -> Option<Vec<(u64, u64)>> {
    if !bytes.len().is_multiple_of(16) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(16)
            .map(|pair| {
                let (d, i) = pair.split_at(8);
                (
                    u64::from_be_bytes(d.try_into().unwrap_or_default()),
                    u64::from_be_bytes(i.try_into().unwrap_or_default()),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_shared_by_two_candidates_keeps_both() {
        let mut ids = Identities::default();
        ids.insert(7, 1);
        ids.insert(7, 1);
        assert_eq!(ids.get(7), [1]);
        ids.insert(7, 5);
        ids.insert(7, 9);
        ids.insert(7, 5);
        assert_eq!(ids.get(7), [1, 5, 9]);
        ids.insert(8, 2);
        assert_eq!(ids.get(8), [2]);
        assert!(ids.get(6).is_empty());
        assert_eq!(ids.len(), 4);
    }

    #[test]
    fn the_index_finds_every_candidate_whose_digest_shares_its_kept_bits() {
        let mut index = Index::default();
        index.insert(0xAAAA_BBBB_0000_0001, 3);
        index.insert(0xAAAA_BBBB_0000_0001, 3);
        // The same top bits: both come back, for the caller to compare.
        index.insert(0xAAAA_BBBB_FFFF_FFFF, 1);
        index.insert(0x1234_5678_0000_0000, 7);
        // A number too wide for a word is kept whole.
        index.insert(0xAAAA_BBBB_0000_0001, 1 << 40);
        assert_eq!(index.get(0xAAAA_BBBB_0000_0001), [1, 3, 1 << 40]);
        assert_eq!(index.get(0x1234_5678_9999_9999), [7]);
        assert!(index.get(0x1234_5679_0000_0000).is_empty());
        assert_eq!(index.len(), 4);
        index.reserve(1000);
        for i in 0..1000u64 {
            index.insert(digest(&format!("email:a{i}@example.com")), 100 + i);
        }
        for i in 0..1000u64 {
            assert!(index
                .get(digest(&format!("email:a{i}@example.com")))
                .contains(&(100 + i)));
        }
    }

    #[test]
    fn records_round_trip_and_damage_is_seen() {
        let pairs = vec![(digest("email:ana@example.com"), 1), (u64::MAX, 42)];
        assert_eq!(decode(&encode(&pairs)), Some(pairs));
        assert_eq!(decode(&[0; 15]), None);
        // Stable: written by one build, read by the next.
        assert_eq!(digest(""), 0xe3b0_c442_98fc_1c14);
    }
}
