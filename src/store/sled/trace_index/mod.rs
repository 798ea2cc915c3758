//! The report traces of every candidate, kept in memory by the daemon, so
//! that a report through it reads about a hundred bytes per enrollment
//! from memory instead of every dossier from sled (a million dossiers are
//! several times the daemon's cache, and sled reads, copies and drops each
//! page of them).
//!
//! The index is off until the store is asked to keep it
//! ([`TraceIndex::keep`], by `nudge run`) and then stays idle until the
//! first report: that report reads the store as any other would and keeps
//! what it read; from then on, every batch the store applies tells the
//! index what it wrote ([`TraceIndex::note`]). While the first report reads
//! the store, commits are noted aside and laid over what it read at the
//! end, so a commit that the read missed or saw half of is never lost.
//!
//! The traces are kept in a compact form ([`compact`]: names as numbers in
//! a table, instants as differences, about half a record's own form) in
//! an arena of 1 MiB chunks: an entry is a header, the record's key and
//! the traces. A candidate's newer traces
//! are appended and their older entry marked with the sequence number of
//! the batch that replaced it, so a report reads a consistent snapshot
//! (entries before its end whose replacement came after it began) while
//! commits go on, taking the lock one chunk at a time. Chunks whose
//! entries are mostly replaced are moved to the end and freed while no
//! report is reading, so the arena stays within a quarter of its live size.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::HashTable;

use super::dossier_record;
use crate::report::trace::TraceRef;
use crate::store::StoreError;

mod compact;

/// Bytes of an arena chunk (an entry larger than this gets a chunk of its
/// own size).
const CHUNK: usize = 1 << 20;

/// An entry's header: the sequence of the batch that replaced it (0 while
/// it is the candidate's latest), the key's length, the traces' length.
const HEADER: usize = 8 + 4 + 4;

/// The index and what it is doing.
#[derive(Default)]
pub struct TraceIndex {
    /// Whether this process keeps the index (the daemon does).
    kept: AtomicBool,
    /// Whether batches must be noted (the index is being built or is
    /// ready): read without the lock by every commit.
    listening: AtomicBool,
    /// Reports reading the arena now: no chunk is moved meanwhile.
    readers: AtomicUsize,
    /// Builds begun: a build that a reset overtook is not taken.
    builds: AtomicU64,
    state: RwLock<State>,
    /// The names the entries number. Taken after `state` by a report,
    /// alone by everything that writes entries, so never the other way.
    names: RwLock<compact::Names>,
}

#[derive(Default)]
enum State {
    #[default]
    Idle,
    /// A report is reading the store (the build numbered so); the batches
    /// applied meanwhile, in order.
    Building(u64, Vec<Change>),
    Ready(Arena),
}

/// A candidate's key and traces (`None`: the record went).
type Change = (Box<[u8]>, Option<Box<[u8]>>);

/// How a report reads the traces.
pub enum Plan {
    /// From the store, as without an index.
    Store,
    /// From the store, keeping what it reads: call [`TraceIndex::built`]
    /// with this build's number and the pieces (or [`TraceIndex::reset`]
    /// if the read failed).
    Build(u64),
    /// From the index, at this snapshot.
    Index(Snapshot),
}

/// Where a report reads the arena to: the batches up to `seq` and the
/// entries before the end.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    seq: u64,
    first: usize,
    /// One past the last chunk, and the length of the last.
    end: usize,
    end_len: usize,
}

impl TraceIndex {
    /// Keeps the index from the next report on.
    pub fn keep(&self) {
        self.kept.store(true, Ordering::SeqCst);
    }

    fn names(&self) -> RwLockWriteGuard<'_, compact::Names> {
        self.names.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Traces in the compact form, their names taken into the table.
    fn compact(&self, traces: &[TraceRef<'_>]) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        compact::encode(traces, &mut self.names(), &mut out);
        out
    }

    /// A record's traces in the compact form; `None` if the record does
    /// not decode.
    fn compact_record(&self, record: &[u8]) -> Option<Vec<u8>> {
        if dossier_record::has_traces(record) {
            Some(self.compact(&dossier_record::traces_ref(record).ok()?))
        } else {
            Some(self.compact(&dossier_record::traces(record).ok()?.refs()))
        }
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets the index (the store was reopened, or a batch it was told of
    /// may not be in the store): the next report builds it again.
    pub fn reset(&self) {
        let mut state = self.write_state();
        self.listening.store(false, Ordering::SeqCst);
        *state = State::Idle;
    }

    /// How the next report reads; [`Plan::Index`] counts it as a reader
    /// until [`TraceIndex::done_reading`].
    pub fn plan(&self) -> Plan {
        if !self.kept.load(Ordering::SeqCst) {
            return Plan::Store;
        }
        if let State::Ready(arena) = &*self.read_state() {
            self.readers.fetch_add(1, Ordering::SeqCst);
            return Plan::Index(arena.snapshot());
        }
        let mut state = self.write_state();
        match &*state {
            State::Idle => {
                let build = self.builds.fetch_add(1, Ordering::SeqCst) + 1;
                *state = State::Building(build, Vec::new());
                self.listening.store(true, Ordering::SeqCst);
                Plan::Build(build)
            }
            // Another report is building it.
            State::Building(..) => Plan::Store,
            State::Ready(arena) => {
                self.readers.fetch_add(1, Ordering::SeqCst);
                Plan::Index(arena.snapshot())
            }
        }
    }

    /// Ends a read of [`Plan::Index`].
    pub fn done_reading(&self) {
        self.readers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Ends a read of [`Plan::Build`]: the pieces the parts read, with the
    /// batches applied meanwhile laid over them.
    pub fn built(&self, build: u64, pieces: Vec<Piece>) {
        let mut state = self.write_state();
        let State::Building(now, since) = &mut *state else {
            // Reset meanwhile: what was read may be out of date.
            return;
        };
        if *now != build {
            // Reset, and another build begun, since this one read.
            return;
        }
        let since = std::mem::take(since);
        // Replacements by the batches laid over are older than any report.
        let mut arena = Arena {
            seq: 1,
            ..Arena::default()
        };
        for piece in pieces {
            arena.adopt(piece.chunks);
        }
        for (key, traces) in since {
            arena.put(&key, traces.as_deref());
        }
        tracing::info!(
            candidates = arena.table.len(),
            mb = (arena.bytes() + self.names().bytes()) >> 20,
            "the report traces are kept in memory from now on"
        );
        *state = State::Ready(arena);
    }

    /// Tells the index what a batch applied to the store wrote (every key;
    /// only candidates' records matter). Nothing happens while the index is
    /// off or idle.
    pub fn note<'a>(&self, writes: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>) {
        if !self.listening.load(Ordering::SeqCst) {
            return;
        }
        let mut changes = Vec::new();
        for (key, value) in writes {
            if !key.starts_with(b"c") {
                continue;
            }
            match value {
                None => changes.push((key, None)),
                Some(v) => match self.compact_record(v) {
                    Some(t) => changes.push((key, Some(t))),
                    // Not a dossier this build reads: the index cannot be
                    // trusted to follow the store.
                    None => return self.reset(),
                },
            }
        }
        if changes.is_empty() {
            return;
        }
        let mut state = self.write_state();
        match &mut *state {
            State::Idle => {}
            State::Building(_, since) => since.extend(
                changes
                    .into_iter()
                    .map(|(k, t)| (Box::from(k), t.map(Vec::into_boxed_slice))),
            ),
            State::Ready(arena) => {
                arena.seq += 1;
                for (k, t) in &changes {
                    arena.put(k, t.as_deref());
                }
                if self.readers.load(Ordering::SeqCst) == 0 {
                    arena.tidy();
                }
            }
        }
    }

    /// Calls `read` with the traces of every live entry of the snapshot in
    /// the chunks of part `part` of `parts` (every `parts`th chunk), taking
    /// the lock one chunk at a time.
    pub fn read(
        &self,
        snapshot: Snapshot,
        part: usize,
        parts: usize,
        read: &mut dyn FnMut(&[TraceRef<'_>]),
    ) -> Result<(), StoreError> {
        let mut chunk = snapshot.first + part;
        while chunk < snapshot.end {
            let state = self.read_state();
            let State::Ready(arena) = &*state else {
                return Err(StoreError::Backend(
                    "the store was reopened while a report read it; run the report again".into(),
                ));
            };
            let names = self.names.read().unwrap_or_else(|e| e.into_inner());
            let bytes = arena.chunk(chunk);
            let end = if chunk + 1 == snapshot.end {
                snapshot.end_len
            } else {
                bytes.len()
            };
            let mut at = 0;
            while at < end {
                let entry = Entry::at(bytes, at);
                if entry.replaced == 0 || entry.replaced > snapshot.seq {
                    let traces = compact::decode(entry.traces, &names).ok_or_else(|| {
                        StoreError::Corrupt {
                            key: String::from_utf8_lossy(entry.key).into_owned(),
                            why: "the traces kept in memory do not decode".into(),
                        }
                    })?;
                    read(&traces);
                }
                at += entry.size();
            }
            drop((names, state));
            chunk += parts.max(1);
        }
        Ok(())
    }
}

/// The traces a part read from the store, kept as an index's entries.
#[derive(Default)]
pub struct Piece {
    chunks: VecDeque<Vec<u8>>,
}

impl Piece {
    /// Keeps a candidate's traces (as the report read them from the
    /// record under `key`) in the form of `index`.
    pub fn keep(&mut self, index: &TraceIndex, key: &[u8], traces: &[TraceRef<'_>]) {
        append(&mut self.chunks, key, &index.compact(traces));
    }
}

/// Appends an entry to the last chunk (or a new one); returns the chunk's
/// index in `chunks`, the entry's offset in it, and the entry's size.
fn append(chunks: &mut VecDeque<Vec<u8>>, key: &[u8], traces: &[u8]) -> (usize, usize, usize) {
    let size = HEADER + key.len() + traces.len();
    let room = chunks
        .back()
        .is_some_and(|c| c.capacity() - c.len() >= size);
    if !room {
        chunks.push_back(Vec::with_capacity(size.max(CHUNK)));
    }
    let index = chunks.len() - 1;
    let chunk = &mut chunks[index];
    let offset = chunk.len();
    chunk.extend_from_slice(&0u64.to_le_bytes());
    chunk.extend_from_slice(&(key.len() as u32).to_le_bytes());
    chunk.extend_from_slice(&(traces.len() as u32).to_le_bytes());
    chunk.extend_from_slice(key);
    chunk.extend_from_slice(traces);
    (index, offset, size)
}

/// An entry read in place.
struct Entry<'a> {
    replaced: u64,
    key: &'a [u8],
    traces: &'a [u8],
}

impl<'a> Entry<'a> {
    fn at(chunk: &'a [u8], at: usize) -> Entry<'a> {
        let word = |from: usize, len: usize| -> u64 {
            let mut b = [0u8; 8];
            b[..len].copy_from_slice(&chunk[at + from..at + from + len]);
            u64::from_le_bytes(b)
        };
        let key_len = word(8, 4) as usize;
        let traces_len = word(12, 4) as usize;
        let key_at = at + HEADER;
        Entry {
            replaced: word(0, 8),
            key: &chunk[key_at..key_at + key_len],
            traces: &chunk[key_at + key_len..key_at + key_len + traces_len],
        }
    }

    fn size(&self) -> usize {
        HEADER + self.key.len() + self.traces.len()
    }
}

/// The entries, and where each candidate's latest is.
#[derive(Default)]
struct Arena {
    /// Chunk `first + i` is `chunks[i]`.
    chunks: VecDeque<Vec<u8>>,
    first: usize,
    /// Positions (chunk << 32 | offset) of the latest entries, by key.
    table: HashTable<u64>,
    hasher: foldhash::fast::FixedState,
    /// Bytes of latest entries, and of replaced ones.
    live: usize,
    dead: usize,
    /// The last batch noted.
    seq: u64,
}

fn position(chunk: usize, offset: usize) -> u64 {
    ((chunk as u64) << 32) | offset as u64
}

fn split(position: u64) -> (usize, usize) {
    ((position >> 32) as usize, (position & 0xFFFF_FFFF) as usize)
}

impl Arena {
    fn chunk(&self, id: usize) -> &[u8] {
        &self.chunks[id - self.first]
    }

    fn entry(&self, position: u64) -> Entry<'_> {
        let (chunk, offset) = split(position);
        Entry::at(self.chunk(chunk), offset)
    }

    /// Bytes held: the chunks and the table.
    fn bytes(&self) -> usize {
        let chunks: usize = self.chunks.iter().map(Vec::capacity).sum();
        chunks + self.table.capacity() * (std::mem::size_of::<u64>() + 1)
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            seq: self.seq,
            first: self.first,
            end: self.first + self.chunks.len(),
            end_len: self.chunks.back().map_or(0, Vec::len),
        }
    }

    /// Takes a piece's chunks (their keys are none of the arena's).
    fn adopt(&mut self, chunks: VecDeque<Vec<u8>>) {
        for chunk in chunks {
            let len = chunk.len();
            self.chunks.push_back(chunk);
            let id = self.first + self.chunks.len() - 1;
            let mut at = 0;
            while at < len {
                let entry = self.entry(position(id, at));
                let (hash, size) = (self.hasher.hash_one(entry.key), entry.size());
                self.insert_new(hash, position(id, at));
                self.live += size;
                at += size;
            }
        }
    }

    /// Adds the position of a key not in the table.
    fn insert_new(&mut self, hash: u64, position: u64) {
        let (hasher, chunks, first) = (&self.hasher, &self.chunks, self.first);
        self.table.insert_unique(hash, position, |&p| {
            let (c, o) = split(p);
            hasher.hash_one(Entry::at(&chunks[c - first], o).key)
        });
    }

    /// Appends an entry at the end and returns its position.
    fn append(&mut self, key: &[u8], traces: &[u8]) -> u64 {
        let (index, offset, size) = append(&mut self.chunks, key, traces);
        self.live += size;
        position(self.first + index, offset)
    }

    /// Marks the entry at `position` replaced by batch `seq`.
    fn replace(&mut self, position: u64, seq: u64) {
        let (chunk, offset) = split(position);
        let bytes = &mut self.chunks[chunk - self.first];
        bytes[offset..offset + 8].copy_from_slice(&seq.to_le_bytes());
        let size = Entry::at(bytes, offset).size();
        self.live -= size;
        self.dead += size;
    }

    /// Sets a candidate's traces (`None`: the record went).
    fn put(&mut self, key: &[u8], traces: Option<&[u8]>) {
        let hash = self.hasher.hash_one(key);
        let old = self
            .table
            .find(hash, |&p| self.entry(p).key == key)
            .copied();
        if let Some(old) = old {
            self.replace(old, self.seq);
        }
        match (old, traces) {
            (Some(old), Some(t)) => {
                let new = self.append(key, t);
                if let Some(slot) = self.table.find_mut(hash, |&p| p == old) {
                    *slot = new;
                }
            }
            (None, Some(t)) => {
                let new = self.append(key, t);
                self.insert_new(hash, new);
            }
            (Some(old), None) => {
                if let Ok(entry) = self.table.find_entry(hash, |&p| p == old) {
                    entry.remove();
                }
            }
            (None, None) => {}
        }
    }

    /// While replaced entries are over a quarter of the live ones, moves
    /// the oldest chunk's live entries to the end and frees it (one chunk a
    /// call, so a commit never waits long). Only while no report reads.
    fn tidy(&mut self) {
        if self.dead * 4 <= self.live || self.chunks.len() < 2 {
            return;
        }
        let Some(oldest) = self.chunks.pop_front() else {
            return;
        };
        let id = self.first;
        self.first += 1;
        let mut at = 0;
        while at < oldest.len() {
            let entry = Entry::at(&oldest, at);
            let size = entry.size();
            if entry.replaced == 0 {
                self.live -= size;
                let new = self.append(entry.key, entry.traces);
                let hash = self.hasher.hash_one(entry.key);
                let was = position(id, at);
                if let Some(slot) = self.table.find_mut(hash, |&p| p == was) {
                    *slot = new;
                }
            } else {
                self.dead -= size;
            }
            at += size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::trace::Traces;
    use crate::store::{CandidateRecord, Dossier};

    /// The traces at the front of a record.
    fn traces_of(record: &[u8]) -> Vec<TraceRef<'_>> {
        dossier_record::traces_ref(record).unwrap()
    }

    /// A record whose traces hold one enrollment in `campaign`.
    fn record(id: &str, campaign: &str) -> Vec<u8> {
        let mut d = Dossier::new(CandidateRecord {
            id: id.into(),
            external_id: None,
            fields: Default::default(),
            token: format!("{id}-00"),
            created_at: chrono::DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
            opted_out: false,
        });
        let line = crate::report::line::Line {
            kind: "enrolled".into(),
            at: Some(0),
            campaign: Some(campaign.into()),
            candidate: Some(id.into()),
            ..Default::default()
        };
        let mut traces = Traces::default();
        traces.push(&line);
        d.traces = traces;
        dossier_record::encode(&d)
    }

    fn campaigns(index: &TraceIndex, snapshot: Snapshot, parts: usize) -> Vec<String> {
        let mut seen = Vec::new();
        for part in 0..parts {
            index
                .read(snapshot, part, parts, &mut |traces| {
                    seen.extend(traces.iter().map(|t| t.campaign.to_string()))
                })
                .unwrap();
        }
        seen.sort();
        seen
    }

    fn ready(index: &TraceIndex, records: &[(&[u8], Vec<u8>)]) {
        index.keep();
        let Plan::Build(build) = index.plan() else {
            panic!("not building")
        };
        let mut piece = Piece::default();
        for (k, v) in records {
            piece.keep(index, k, &traces_of(v));
        }
        index.built(build, vec![piece]);
    }

    fn snapshot(index: &TraceIndex) -> Snapshot {
        match index.plan() {
            Plan::Index(s) => s,
            _ => panic!("the index is not ready"),
        }
    }

    #[test]
    fn an_index_not_kept_leaves_reports_to_the_store() {
        let index = TraceIndex::default();
        assert!(matches!(index.plan(), Plan::Store));
        index.note([(&b"c1"[..], Some(&record("c1", "a")[..]))]);
        assert!(matches!(index.plan(), Plan::Store));
    }

    #[test]
    fn commits_during_the_build_are_laid_over_what_it_read() {
        let index = TraceIndex::default();
        index.keep();
        let Plan::Build(build) = index.plan() else {
            panic!("not building")
        };
        // A second report meanwhile reads the store.
        assert!(matches!(index.plan(), Plan::Store));
        let mut piece = Piece::default();
        piece.keep(&index, b"c1", &traces_of(&record("c1", "old")));
        piece.keep(&index, b"c2", &traces_of(&record("c2", "gone")));
        index.note([
            (&b"c1"[..], Some(&record("c1", "new")[..])),
            (&b"c3"[..], Some(&record("c3", "added")[..])),
            (&b"m"[..], Some(&b"not a dossier"[..])),
        ]);
        index.note([(&b"c2"[..], None)]);
        index.built(build, vec![piece]);
        let s = snapshot(&index);
        assert_eq!(campaigns(&index, s, 2), ["added", "new"]);
        index.done_reading();
    }

    #[test]
    fn a_report_reads_its_snapshot_while_commits_go_on() {
        let index = TraceIndex::default();
        ready(
            &index,
            &[(b"c1", record("c1", "one")), (b"c2", record("c2", "two"))],
        );
        let before = snapshot(&index);
        index.note([(&b"c1"[..], Some(&record("c1", "uno")[..]))]);
        index.note([
            (&b"c2"[..], None),
            (&b"c4"[..], Some(&record("c4", "four")[..])),
        ]);
        assert_eq!(campaigns(&index, before, 1), ["one", "two"]);
        index.done_reading();
        let after = snapshot(&index);
        assert_eq!(campaigns(&index, after, 3), ["four", "uno"]);
        index.done_reading();
    }

    #[test]
    fn replaced_entries_are_freed_and_the_latest_kept() {
        let index = TraceIndex::default();
        let many: Vec<(Vec<u8>, Vec<u8>)> = (0..5_000)
            .map(|i| {
                (
                    format!("c{i}").into_bytes(),
                    record(&format!("c{i}"), "first"),
                )
            })
            .collect();
        let refs: Vec<(&[u8], Vec<u8>)> = many.iter().map(|(k, v)| (&k[..], v.clone())).collect();
        ready(&index, &refs);
        // Every candidate's traces replaced 60 times over: far more than
        // a chunk, so the oldest chunks are moved and freed.
        for round in 0..60 {
            for (k, _) in &many {
                let id = String::from_utf8_lossy(k).into_owned();
                let campaign = if round == 59 { "last" } else { "mid" };
                index.note([(&k[..], Some(&record(&id, campaign)[..]))]);
            }
        }
        let s = snapshot(&index);
        let seen = campaigns(&index, s, 2);
        index.done_reading();
        assert_eq!(seen.len(), 5_000);
        assert!(seen.iter().all(|c| c == "last"));
        let State::Ready(arena) = &*index.read_state() else {
            panic!("not ready");
        };
        // Within a quarter of the live bytes, but for the chunk being
        // filled and the one before it.
        assert!(
            arena.dead <= arena.live / 4 + 2 * CHUNK,
            "{} dead, {} live",
            arena.dead,
            arena.live
        );
        let held: usize = arena.chunks.iter().map(Vec::len).sum();
        assert_eq!(held, arena.live + arena.dead);
        assert!(arena.first > 0, "no chunk was freed");
    }

    #[test]
    fn a_reset_during_a_build_drops_what_it_read() {
        let index = TraceIndex::default();
        index.keep();
        let Plan::Build(first) = index.plan() else {
            panic!("not building")
        };
        index.reset();
        index.built(first, vec![Piece::default()]);
        let Plan::Build(second) = index.plan() else {
            panic!("not building again")
        };
        // The first build ends after the second began: still not taken.
        let mut stale = Piece::default();
        stale.keep(&index, b"c1", &traces_of(&record("c1", "stale")));
        index.built(first, vec![stale]);
        assert!(matches!(index.plan(), Plan::Store));
        let mut fresh = Piece::default();
        fresh.keep(&index, b"c2", &traces_of(&record("c2", "fresh")));
        index.built(second, vec![fresh]);
        let s = snapshot(&index);
        assert_eq!(campaigns(&index, s, 1), ["fresh"]);
        index.done_reading();
    }
}
