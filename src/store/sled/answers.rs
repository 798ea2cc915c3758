//! The first answers to idempotent events of candidates created in the
//! same commit (an import's rows, an application through the API with an
//! id): `a` records of up to [`PER_RECORD`] answers, each under the lowest
//! candidate number in it, instead of an `i` key per answer. An import of
//! a million rows writes 8,000 records instead of a million keys (sled
//! splits a leaf past 16 entries, and the split leaves were most of the
//! write); a record stays well under sled's threshold for values it
//! writes apart (a quarter of a 512 KiB segment).
//!
//! Finding a candidate's record needs no index: candidate numbers only
//! grow, one commit's new candidates are numbered after every earlier
//! commit's, and a commit's records split its answers in number order, so
//! the record that holds an answer of candidate `n` is the one with the
//! highest key at or below `n`. The store remembers the keys of the last
//! commit's records (that commit may be the batch being written behind);
//! older records are on disk.

use super::*;

/// (candidate, event id, the answer as the store encodes it), in the order
/// they were given.
pub type Answers = Vec<(String, String, Vec<u8>)>;

pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Answers, StoreError> {
    super::decode(key, bytes)
}

/// Answers per record.
pub const PER_RECORD: usize = 128;

/// A commit's answers as its `a` records: sorted by candidate number, in
/// pieces of [`PER_RECORD`], each under its lowest number. Candidates
/// without a number have no record (their answers go under `i` keys).
pub fn records(mut answers: Answers) -> Vec<(Vec<u8>, Vec<u8>)> {
    answers.sort_by_key(|(c, _, _)| key::candidate_number(c));
    answers
        .chunks(PER_RECORD)
        .filter_map(|piece| {
            let first = key::candidate_number(&piece.first()?.0)?;
            Some((key::answers(first), super::encode(&piece)))
        })
        .collect()
}

/// The number an `a` key is under.
fn number(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?))
}

impl SledStore {
    /// Notes the keys of the `a` records a commit being prepared writes.
    pub(super) fn answers_written(&self, keys: Vec<Vec<u8>>) {
        *self.last_answers.lock().unwrap_or_else(|e| e.into_inner()) = Some(keys);
    }

    /// Forgets which `a` record was written last (after a batch written
    /// behind failed): read from the store when next needed.
    pub(super) fn forget_last_answers(&self) {
        *self.last_answers.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The answer to `event_id` of candidate number `n` (`candidate`)
    /// kept in the `a` record of the commit that created them, if any.
    pub(super) fn created_answer(
        &self,
        n: u64,
        candidate: &str,
        event_id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let last = {
            let mut last = self.last_answers.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none() {
                let found = self
                    .db()?
                    .scan_prefix([b'a'])
                    .next_back()
                    .transpose()?
                    .map(|(k, _)| k.to_vec());
                *last = Some(found.into_iter().collect());
            }
            last.clone().unwrap_or_default()
        };
        // The last commit's record for `n` (that commit perhaps still being
        // written), else an earlier commit's, on disk.
        let holder = last
            .into_iter()
            .filter(|k| number(k).is_some_and(|first| first <= n))
            .max_by_key(|k| number(k));
        let in_last = match holder {
            Some(k) => self.latest(&k)?.map(|v| (k, v)),
            None => None,
        };
        let found = match in_last {
            Some(found) => Some(found),
            None => self
                .db()?
                .range(key::answers(0)..=key::answers(n))
                .next_back()
                .transpose()?
                .map(|(k, v)| (k.to_vec(), v)),
        };
        let Some((key, record)) = found else {
            return Ok(None);
        };
        Ok(decode(&key, &record)?
            .into_iter()
            .find(|(c, e, _)| c == candidate && e == event_id)
            .map(|(_, _, v)| v))
    }
}
