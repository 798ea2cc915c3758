//! The first answers to idempotent events of candidates created in the
//! same commit (an import's rows, an application through the API with an
//! id): `a` records of up to [`PER_RECORD`] answers, each under the lowest
//! candidate number in it, instead of an `i` key per answer. An import of
//! a million rows writes 8,000 records instead of a million keys (sled
//! splits a leaf past 16 entries, and the split leaves were most of the
//! write). Records are compressed (layout 11), so that a leaf of 16 of
//! them stays under what sled writes inline (a quarter of its 512 KiB
//! segment) when it rewrites the leaf.
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

/// The first byte of a record compressed with LZ4 (layout 11). A record
/// of layout 10 starts with its answers' count (1 to 128), never 0.
const COMPRESSED: u8 = 0;

/// The most a record's answers take uncompressed: far more than
/// [`PER_RECORD`] answers ever need (an answer is a few hundred bytes).
const MAX_PLAIN: usize = 64 << 20;

/// A record's bytes: [`COMPRESSED`], then its answers' encoding in LZ4
/// (with its length in front). The answers of one commit are alike (the
/// same fields, URLs and times but for a few characters), so a record
/// shrinks several times over; kept as they were, a leaf of records
/// outgrew what sled writes inline, and each rewrite of it went to a file
/// of its own.
fn encode(answers: &[(String, String, Vec<u8>)]) -> Vec<u8> {
    let plain = super::encode(&answers);
    let mut bytes = Vec::with_capacity(plain.len() / 4 + 16);
    bytes.push(COMPRESSED);
    bytes.extend_from_slice(&lz4_flex::compress_prepend_size(&plain));
    bytes
}

pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Answers, StoreError> {
    match bytes.split_first() {
        Some((&COMPRESSED, packed)) => {
            let corrupt = |why: String| StoreError::Corrupt {
                key: key.escape_ascii().to_string(),
                why,
            };
            // A damaged length must not ask for gigabytes.
            let len = packed
                .get(..4)
                .map(|l| u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize);
            if len.is_none_or(|len| len > MAX_PLAIN) {
                return Err(corrupt(format!(
                    "its answers claim {len:?} bytes (at most {MAX_PLAIN})"
                )));
            }
            let plain = lz4_flex::decompress_size_prepended(packed)
                .map_err(|e| corrupt(format!("its answers do not decompress: {e}")))?;
            super::decode(key, &plain)
        }
        _ => super::decode(key, bytes),
    }
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
            Some((key::answers(first), encode(piece)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(n: u64) -> Answers {
        (1..=n)
            .map(|i| {
                let answer = format!("{{\"candidate\":\"c{i}\",\"created\":true}}");
                (
                    format!("c{i}"),
                    format!("import:ab12:{i}"),
                    answer.into_bytes(),
                )
            })
            .collect()
    }

    #[test]
    fn records_are_compressed_and_read_back_whole() {
        let all = answers(300);
        let records = records(all.clone());
        assert_eq!(records.len(), 3, "{PER_RECORD} answers a record");
        let mut read = Vec::new();
        for (key, bytes) in &records {
            assert_eq!(bytes[0], COMPRESSED);
            read.extend(decode(key, bytes).unwrap());
        }
        assert_eq!(read, all);
        let plain: usize = records
            .iter()
            .map(|(k, v)| super::super::encode(&decode(k, v).unwrap()).len())
            .sum();
        let stored: usize = records.iter().map(|(_, v)| v.len()).sum();
        assert!(stored * 2 < plain, "{stored} bytes stored for {plain}");
    }

    #[test]
    fn a_record_of_layout_10_is_read_as_it_was_written() {
        let all = answers(5);
        let key = key::answers(1);
        let old = super::super::encode(&all);
        assert_ne!(old[0], COMPRESSED);
        assert_eq!(decode(&key, &old).unwrap(), all);
    }

    #[test]
    fn a_damaged_record_is_named_not_a_panic_or_a_huge_allocation() {
        let (key, mut bytes) = records(answers(50)).remove(0);
        // A length of 4 GiB.
        bytes[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = decode(&key, &bytes).unwrap_err().to_string();
        assert!(e.contains("claim"), "{e}");
        let (key, mut bytes) = records(answers(50)).remove(0);
        let end = bytes.len();
        bytes.truncate(end / 2);
        assert!(decode(&key, &bytes).is_err());
        let (key, mut bytes) = records(answers(50)).remove(0);
        for b in bytes.iter_mut().skip(8).step_by(7) {
            *b ^= 0x5a;
        }
        assert!(decode(&key, &bytes).is_err());
    }
}
