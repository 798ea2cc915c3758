//! The commit ledger: a small append-only file beside sled's own
//! ([`LEDGER_FILE`]) that remembers, outside sled, how far the store got
//! and which sends were delivered, so that a store that lost acknowledged
//! commits (a damaged file sled recovered only in part, a copy put back by
//! hand) is recognised on open instead of being used as if it were whole,
//! and a store restored from a backup never sends again what was delivered
//! after the backup.
//!
//! Every group commit writes a [`Mark`] (its sequence number and a digest
//! chained from the previous commit's) inside sled, in the same atomic
//! batch, under `m commit`; once sled has flushed the batch the same mark is
//! appended here, followed by the keys of the sends the commit settled as
//! delivered. The append is one `write` without `fsync` (it survives a
//! killed process in the page cache); the file is synced at most every
//! [`SYNC_EVERY`] and when the store closes. So on open:
//!
//! - sled's mark equals the ledger's last: whole;
//! - sled is ahead (the process died between sled's flush and the append,
//!   or the machine lost the unsynced tail): whole, and the ledger is
//!   brought up to sled's mark;
//! - sled is behind: commits the ledger saw acknowledged are gone, and the
//!   store is refused ([`StoreError::RolledBack`]);
//! - same number, other digest: not the store the ledger followed.
//!
//! An *anchor* record says "from here the store is the one at this mark"
//! (written by a restore, or by accepting a damaged store as it is). The
//! delivered keys recorded before the last anchor are kept in memory as
//! 64-bit digests ([`Ledger::delivered_before`]): a send the restored store
//! still holds as undelivered, or decides again, is settled as delivered
//! instead of going out twice.
//!
//! Records: a tag byte, a 2-byte little-endian payload length, the
//! payload, and a CRC-32 of the three. A record that does not check ends
//! the file (a torn append): the file is cut there.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use foldhash::HashSet;
use sha2::{Digest, Sha256};

use super::StoreError;

/// The ledger's file in the store folder.
pub const LEDGER_FILE: &str = "nudge-ledger";

/// The first bytes of a ledger file.
const HEADER: &[u8] = b"nudge-ledger 1\n";

/// How long an appended record may stay unsynced.
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

const TAG_COMMIT: u8 = 1;
const TAG_DELIVERED: u8 = 2;
const TAG_ANCHOR: u8 = 3;

/// A commit's place in the store's history: its number and a digest
/// chained from the previous commit's, so two stores that share numbers
/// but not history are told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub seq: u64,
    pub digest: u64,
}

impl Mark {
    /// The mark as stored in sled (16 bytes).
    pub fn to_bytes(self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&self.seq.to_be_bytes());
        out[8..].copy_from_slice(&self.digest.to_be_bytes());
        out
    }

    /// A mark read from sled; `None` when it is not 16 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Mark> {
        let seq = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let digest = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
        (bytes.len() == 16).then_some(Mark { seq, digest })
    }

    /// The mark of the commit after this one; `salt` (one per process)
    /// keeps two histories that restart from the same mark apart.
    pub fn next(self, salt: u64) -> Mark {
        let mut h = Sha256::new();
        h.update(self.seq.to_be_bytes());
        h.update(self.digest.to_be_bytes());
        h.update(salt.to_be_bytes());
        let seq = self.seq + 1;
        h.update(seq.to_be_bytes());
        Mark {
            seq,
            digest: first_u64(&h.finalize()),
        }
    }
}

/// A value that differs between processes (not a secret).
fn salt() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

fn first_u64(bytes: &[u8]) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(b)
}

/// A send key's digest, as the ledger's memory of old deliveries holds it.
fn key_digest(key: &str) -> u64 {
    first_u64(&Sha256::digest(key.as_bytes()))
}

/// How the store found on disk stands against the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The store is where the ledger says (or ahead by the unsynced tail).
    Whole,
    /// The store lost acknowledged commits.
    RolledBack {
        /// The last commit the store holds (0: none).
        kept: u64,
        /// The last commit the ledger saw acknowledged.
        acknowledged: u64,
        /// Deliveries recorded in the lost commits.
        deliveries: usize,
    },
    /// The store is not the one the ledger followed.
    Diverged(String),
}

/// What a ledger file holds, read.
#[derive(Debug, Default)]
pub struct Contents {
    /// The last mark of the current history (after the last anchor).
    pub high: Option<Mark>,
    /// How many delivered keys were recorded after the last anchor, by
    /// commit number: runs of `(commit, keys)` in the order written.
    pub delivered: Vec<(u64, u32)>,
    /// Digests of the keys delivered before the last anchor.
    pub before_anchor: HashSet<u64>,
    /// Anchors found.
    pub anchors: usize,
    /// Bytes that read as whole records (the rest is a torn tail).
    pub whole_len: u64,
    /// Bytes in the file.
    pub file_len: u64,
}

/// Reads a ledger file; `None` when there is none.
///
/// Opening a store reads its whole ledger, which grows by a record per
/// delivery, so the pass keeps no key: it counts the delivered records
/// after the last anchor by commit, and only when there is an anchor
/// (a restore happened) reads the records before it a second time for
/// the keys the restored store must not send again.
pub fn read(folder: &Path) -> Result<Option<Contents>, StoreError> {
    let Some(mut records) = Records::open(folder)? else {
        return Ok(None);
    };
    let mut out = Contents {
        file_len: records.file_len,
        ..Contents::default()
    };
    // Where the records before the last anchor end.
    let mut anchored_at = None;
    while let Some((tag, payload)) = records.next() {
        match tag {
            TAG_COMMIT | TAG_ANCHOR => {
                let Some(mark) = mark_in(payload) else { break };
                if tag == TAG_ANCHOR {
                    out.anchors += 1;
                    out.delivered.clear();
                    out.high = Some(mark);
                    anchored_at = Some(records.whole_len);
                } else if out.high.is_none_or(|h| mark.seq > h.seq) {
                    out.high = Some(mark);
                }
            }
            TAG_DELIVERED => {
                let Some(seq) = u64_at(payload, 0) else { break };
                match out.delivered.last_mut() {
                    Some((s, n)) if *s == seq => *n += 1,
                    _ => out.delivered.push((seq, 1)),
                }
            }
            _ => break,
        }
        records.whole_len = records.read_len;
    }
    out.whole_len = records.whole_len;
    if let Some(end) = anchored_at {
        let mut again = Records::open(folder)?
            .ok_or_else(|| unreadable(folder, format!("`{LEDGER_FILE}` went away while read")))?;
        while again.whole_len < end {
            let Some((tag, payload)) = again.next() else {
                break;
            };
            if tag == TAG_DELIVERED && payload.len() >= 8 {
                out.before_anchor
                    .insert(key_digest(&String::from_utf8_lossy(&payload[8..])));
            }
            again.whole_len = again.read_len;
        }
    }
    Ok(Some(out))
}

fn u64_at(payload: &[u8], at: usize) -> Option<u64> {
    let bytes = payload.get(at..at + 8)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

fn mark_in(payload: &[u8]) -> Option<Mark> {
    Some(Mark {
        seq: u64_at(payload, 0)?,
        digest: u64_at(payload, 8)?,
    })
}

/// The records of a ledger file, parsed in place from chunks of the file
/// (a ledger holds a record per delivery: millions, read at every open).
struct Records {
    file: File,
    /// File bytes read and not yet parsed are `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    file_len: u64,
    /// Bytes up to the end of the last record read.
    read_len: u64,
    /// Bytes up to the end of the last record accepted (the caller moves
    /// it up to `read_len` once a record makes sense).
    whole_len: u64,
}

/// How much of the file is read at a time.
const CHUNK: usize = 1 << 20;

impl Records {
    fn open(folder: &Path) -> Result<Option<Records>, StoreError> {
        let path = folder.join(LEDGER_FILE);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(unreadable(
                    folder,
                    format!("cannot read `{LEDGER_FILE}`: {e}"),
                ))
            }
        };
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut records = Records {
            file,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            file_len,
            read_len: HEADER.len() as u64,
            whole_len: HEADER.len() as u64,
        };
        if !records.fill(HEADER.len()) || &records.buf[..HEADER.len()] != HEADER {
            return Err(unreadable(
                folder,
                format!("`{LEDGER_FILE}` does not start as a nudge ledger"),
            ));
        }
        records.start = HEADER.len();
        Ok(Some(records))
    }

    /// Makes at least `want` unparsed bytes available, reading more of the
    /// file; false when the file ends (or cannot be read) first.
    fn fill(&mut self, want: usize) -> bool {
        if self.end - self.start >= want {
            return true;
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        while self.end < want {
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => return false,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// The next record whose checksum holds: its tag and payload; `None`
    /// at the end or at a torn record.
    fn next(&mut self) -> Option<(u8, &[u8])> {
        if !self.fill(3) {
            return None;
        }
        let len = u16::from_le_bytes([self.buf[self.start + 1], self.buf[self.start + 2]]) as usize;
        let whole = 3 + len + 4;
        if !self.fill(whole) {
            return None;
        }
        let record = &self.buf[self.start..self.start + whole];
        let crc = crc32fast::hash(&record[..3 + len]);
        if crc.to_le_bytes() != record[3 + len..] {
            return None;
        }
        let tag = record[0];
        let payload = self.start + 3..self.start + 3 + len;
        self.start += whole;
        self.read_len += whole as u64;
        Some((tag, &self.buf[payload]))
    }
}

impl Contents {
    /// How a store whose last commit is `store` stands against this ledger.
    pub fn standing(&self, store: Option<Mark>) -> Standing {
        let Some(high) = self.high else {
            return Standing::Whole;
        };
        let kept = store.map_or(0, |m| m.seq);
        if kept < high.seq {
            return Standing::RolledBack {
                kept,
                acknowledged: high.seq,
                deliveries: self
                    .delivered
                    .iter()
                    .filter(|(s, _)| *s > kept)
                    .map(|(_, n)| *n as usize)
                    .sum(),
            };
        }
        match store {
            Some(m) if m.seq == high.seq && m.digest != high.digest => Standing::Diverged(format!(
                "its commit {} is not the commit {} the ledger `{LEDGER_FILE}` recorded",
                m.seq, high.seq
            )),
            _ => Standing::Whole,
        }
    }
}

fn unreadable(folder: &Path, why: String) -> StoreError {
    StoreError::Unreadable {
        path: folder.to_path_buf(),
        why,
    }
}

/// One record's bytes.
fn record(tag: u8, payload: &[u8], out: &mut Vec<u8>) {
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    let start = out.len();
    out.push(tag);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&payload[..len as usize]);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

fn mark_record(tag: u8, mark: Mark, out: &mut Vec<u8>) {
    let mut payload = [0; 16];
    payload[..8].copy_from_slice(&mark.seq.to_le_bytes());
    payload[8..].copy_from_slice(&mark.digest.to_le_bytes());
    record(tag, &payload, out);
}

/// The ledger of an open store: appends after each durable commit.
pub struct Ledger {
    folder: PathBuf,
    /// `None` for a store only looked at ([`Ledger::detached`]).
    file: Mutex<Option<Appender>>,
    /// The last mark handed out ([`Ledger::stamp`]).
    last: Mutex<Mark>,
    /// Digests of keys delivered before the last anchor.
    before_anchor: HashSet<u64>,
    /// Mixed into this process's digests.
    salt: u64,
}

struct Appender {
    file: File,
    synced: std::time::Instant,
    dirty: bool,
}

impl Ledger {
    /// Opens the ledger of the store in `folder`, whose last commit is
    /// `store` and which was found to stand whole against `contents`
    /// (`None`: there was no ledger, one is started). The ledger is
    /// brought up to the store's mark, and a torn tail is cut.
    pub fn open(
        folder: &Path,
        contents: Option<Contents>,
        store: Option<Mark>,
    ) -> Result<Ledger, StoreError> {
        let path = folder.join(LEDGER_FILE);
        let io =
            |e: std::io::Error| unreadable(folder, format!("cannot write `{LEDGER_FILE}`: {e}"));
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io)?;
        let mut dirty = false;
        let (high, before_anchor) = match contents {
            Some(c) => {
                if c.whole_len < c.file_len {
                    tracing::warn!(
                        bytes = c.file_len - c.whole_len,
                        "the commit ledger ended in a torn record; it is cut"
                    );
                    file.set_len(c.whole_len).map_err(io)?;
                    dirty = true;
                }
                (c.high, c.before_anchor)
            }
            None => {
                (&file).write_all(HEADER).map_err(io)?;
                dirty = true;
                (None, HashSet::default())
            }
        };
        let mut file = Appender {
            file,
            synced: std::time::Instant::now(),
            dirty,
        };
        let last = match (store, high) {
            (Some(s), h) if h.is_none_or(|h| s.seq > h.seq) => {
                // The unsynced tail was lost, or the process died between
                // sled's flush and the append: sled is right.
                let mut bytes = Vec::new();
                mark_record(TAG_COMMIT, s, &mut bytes);
                (&file.file).write_all(&bytes).map_err(io)?;
                file.dirty = true;
                s
            }
            (Some(s), _) => s,
            (None, Some(h)) => h,
            (None, None) => Mark { seq: 0, digest: 0 },
        };
        if file.dirty {
            file.file.sync_data().map_err(io)?;
            file.dirty = false;
        }
        Ok(Ledger {
            folder: folder.to_path_buf(),
            file: Mutex::new(Some(file)),
            last: Mutex::new(last),
            before_anchor,
            salt: salt(),
        })
    }

    /// A ledger that records nothing: for a store that does not stand
    /// whole, opened to be looked at (`nudge verify`).
    pub fn detached(folder: &Path, store: Option<Mark>) -> Ledger {
        Ledger {
            folder: folder.to_path_buf(),
            file: Mutex::new(None),
            last: Mutex::new(store.unwrap_or(Mark { seq: 0, digest: 0 })),
            before_anchor: HashSet::default(),
            salt: salt(),
        }
    }

    /// The mark for the next commit (numbers are never reused, even when
    /// a commit fails).
    pub fn stamp(&self) -> Mark {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        *last = last.next(self.salt);
        *last
    }

    /// Records a commit sled has made durable, and the sends it settled as
    /// delivered: one `write`, synced at most every [`SYNC_EVERY`]. A
    /// failure is logged, not returned: the commit is durable in sled, and
    /// a ledger that falls behind sled is only brought up to it on open.
    pub fn record(&self, mark: Mark, delivered: &[String]) {
        let mut bytes = Vec::with_capacity(32 + delivered.len() * 48);
        mark_record(TAG_COMMIT, mark, &mut bytes);
        for key in delivered {
            let mut payload = Vec::with_capacity(8 + key.len());
            payload.extend_from_slice(&mark.seq.to_le_bytes());
            payload.extend_from_slice(key.as_bytes());
            record(TAG_DELIVERED, &payload, &mut bytes);
        }
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let Some(file) = file.as_mut() else {
            return;
        };
        let mut written = (&file.file).write_all(&bytes);
        file.dirty = true;
        if written.is_ok() && file.synced.elapsed() >= SYNC_EVERY {
            written = file.sync();
        }
        if let Err(e) = written {
            tracing::error!(%e, folder = %self.folder.display(), "cannot append to the commit ledger");
        }
    }

    /// Whether the ledger saw `key` delivered by a store this one was
    /// restored over (see the module header).
    pub fn delivered_before(&self, key: &str) -> bool {
        !self.before_anchor.is_empty() && self.before_anchor.contains(&key_digest(key))
    }

    /// Syncs what was appended.
    pub fn sync(&self) -> Result<(), StoreError> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        match file.as_mut() {
            Some(f) => f.sync().map_err(StoreError::Io),
            None => Ok(()),
        }
    }
}

impl Appender {
    fn sync(&mut self) -> std::io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        self.synced = std::time::Instant::now();
        Ok(())
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        if let Err(e) = self.sync() {
            tracing::error!(%e, "cannot sync the commit ledger");
        }
    }
}

/// Appends an anchor to the ledger in `folder`: from here, the store is
/// the one at `mark` (a restored backup, or a damaged store accepted as it
/// is). Keys delivered before it stay known. Starts a ledger if there is
/// none.
pub fn anchor(folder: &Path, mark: Option<Mark>) -> Result<(), StoreError> {
    let path = folder.join(LEDGER_FILE);
    let io = |e: std::io::Error| unreadable(folder, format!("cannot write `{LEDGER_FILE}`: {e}"));
    let contents = read(folder)?;
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .map_err(io)?;
    match &contents {
        Some(c) if c.whole_len < c.file_len => file.set_len(c.whole_len).map_err(io)?,
        Some(_) => {}
        None => file.write_all(HEADER).map_err(io)?,
    }
    let mut bytes = Vec::new();
    mark_record(
        TAG_ANCHOR,
        mark.unwrap_or(Mark { seq: 0, digest: 0 }),
        &mut bytes,
    );
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "nudge-ledger-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_store_behind_the_ledger_is_rolled_back_and_one_ahead_is_whole() {
        let dir = temp();
        let ledger = Ledger::open(&dir, None, None).unwrap();
        let a = ledger.stamp();
        ledger.record(a, &[]);
        let b = ledger.stamp();
        ledger.record(b, &["k1".into(), "k2".into()]);
        let c = ledger.stamp();
        drop(ledger);
        let contents = read(&dir).unwrap().unwrap();
        assert_eq!(contents.high, Some(b));
        assert_eq!(contents.standing(Some(b)), Standing::Whole);
        assert_eq!(contents.standing(Some(c)), Standing::Whole);
        assert_eq!(
            contents.standing(Some(a)),
            Standing::RolledBack {
                kept: 1,
                acknowledged: 2,
                deliveries: 2
            }
        );
        assert!(matches!(
            contents.standing(Some(Mark { seq: 2, digest: 7 })),
            Standing::Diverged(_)
        ));
    }

    #[test]
    fn records_across_many_chunks_are_all_read_and_a_torn_last_one_is_not() {
        let dir = temp();
        let ledger = Ledger::open(&dir, None, None).unwrap();
        let mut marks = Vec::new();
        for commit in 0..300 {
            let mark = ledger.stamp();
            let keys: Vec<String> = (0..1000)
                .map(|i| format!("campaign/c{commit}-{i}/invite/1"))
                .collect();
            ledger.record(mark, &keys);
            marks.push(mark);
        }
        drop(ledger);
        let path = dir.join(LEDGER_FILE);
        assert!(std::fs::metadata(&path).unwrap().len() > 3 * CHUNK as u64);
        let contents = read(&dir).unwrap().unwrap();
        assert_eq!(contents.high, marks.last().copied());
        assert_eq!(contents.whole_len, contents.file_len);
        let count = |c: &Contents| c.delivered.iter().map(|(_, n)| *n as usize).sum::<usize>();
        assert_eq!(count(&contents), 300_000);
        assert_eq!(
            contents.standing(Some(marks[99])),
            Standing::RolledBack {
                kept: 100,
                acknowledged: 300,
                deliveries: 200_000
            }
        );
        // A record cut short at the end is not read.
        let len = contents.file_len;
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[TAG_DELIVERED, 40, 0, 1, 2, 3]).unwrap();
        drop(f);
        let torn = read(&dir).unwrap().unwrap();
        assert_eq!(torn.whole_len, len);
        assert_eq!(count(&torn), 300_000);
    }

    #[test]
    fn a_torn_tail_is_cut_and_an_anchor_remembers_what_was_delivered() {
        let dir = temp();
        let ledger = Ledger::open(&dir, None, None).unwrap();
        let a = ledger.stamp();
        ledger.record(a, &[]);
        let b = ledger.stamp();
        ledger.record(b, &["late".into()]);
        drop(ledger);
        let path = dir.join(LEDGER_FILE);
        let len = std::fs::metadata(&path).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[TAG_COMMIT, 16, 0, 1, 2]).unwrap();
        drop(f);
        let contents = read(&dir).unwrap().unwrap();
        assert_eq!(contents.whole_len, len);
        let ledger = Ledger::open(&dir, Some(contents), Some(b)).unwrap();
        assert!(!ledger.delivered_before("late"));
        drop(ledger);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        anchor(&dir, Some(a)).unwrap();
        let contents = read(&dir).unwrap().unwrap();
        assert_eq!(contents.standing(Some(a)), Standing::Whole);
        let ledger = Ledger::open(&dir, Some(contents), Some(a)).unwrap();
        assert!(ledger.delivered_before("late"));
        assert!(!ledger.delivered_before("other"));
        assert_eq!(ledger.stamp().seq, 2);
    }
}
