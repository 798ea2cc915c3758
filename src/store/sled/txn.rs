//! The sled store's transaction: writes gathered in memory (dossiers
//! read once and encoded once, counters as deltas, timers by bucket, the
//! journal's records) and written in one atomic batch, at once or behind.

use super::*;

/// Writes gathered for one atomic commit, readable before they land: a
/// later step in the same batch sees the records an earlier step wrote.
/// Dossiers are read once, changed in memory and encoded once at commit,
/// however many steps of the batch touch them.
pub struct SledTxn<'a> {
    store: &'a SledStore,
    batch: writer::Writes,
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    counters: HashMap<Vec<u8>, i64>,
    /// Dossiers read or written in this transaction (`None`: none stored).
    dossiers: HashMap<String, Option<Dossier>>,
    /// The dossiers to write at commit.
    dirty: HashSet<String>,
    /// Sends queued, handed to channels, and settled in this transaction.
    enqueued: Vec<String>,
    launched: Vec<String>,
    settled: Vec<String>,
    /// Sends written as delivered (for the commit ledger).
    delivered: Vec<String>,
    /// Timers armed in this transaction, one per enrollment (the last).
    armed: HashMap<(String, String), TimerEntry>,
    /// The timer records this transaction took entries from.
    touched: Vec<Vec<u8>>,
    /// New candidates' identities.
    known: identities::Identities,
    /// The last identities looked up and their digests: an enrollment
    /// looks its person up by their contacts, then creates them under the
    /// same ones, and a digest is a SHA-256.
    digests: Vec<(String, u64)>,
    /// Suppression entries written by the transaction this one was split
    /// off ([`Transaction::split_off`]): read here, not written again.
    inherited: HashSet<Vec<u8>>,
    /// A dossier record was written by hand ([`SledTxn::put_raw`]): the
    /// dossiers held may not be what is stored, so none is kept for the
    /// next transaction ([`recent`]).
    wrote_dossier_bytes: bool,
    /// The lowest candidate number this transaction gave: ids only grow,
    /// so every candidate numbered from it on was created here.
    first_created: Option<u64>,
    /// The first answers to events of candidates this transaction created
    /// (candidate, event id, encoded answer): one `a` record at commit
    /// instead of an `i` key each (see [`answers`]).
    fresh_answers: answers::Answers,
}

impl<'a> SledTxn<'a> {
    /// [`identities::digest`], remembered for the few identities looked
    /// up last.
    fn digest(&mut self, identity: &str) -> u64 {
        if let Some((_, d)) = self.digests.iter().find(|(i, _)| i == identity) {
            return *d;
        }
        let d = identities::digest(identity);
        if self.digests.len() >= 4 {
            self.digests.clear();
        }
        self.digests.push((identity.to_string(), d));
        d
    }

    pub fn new(store: &'a SledStore) -> Self {
        SledTxn {
            store,
            batch: writer::Writes::default(),
            overlay: BTreeMap::new(),
            counters: HashMap::new(),
            dossiers: HashMap::new(),
            dirty: HashSet::new(),
            enqueued: Vec::new(),
            launched: Vec::new(),
            settled: Vec::new(),
            delivered: Vec::new(),
            armed: HashMap::new(),
            touched: Vec::new(),
            known: identities::Identities::default(),
            digests: Vec::new(),
            inherited: HashSet::new(),
            wrote_dossier_bytes: false,
            first_created: None,
            fresh_answers: Vec::new(),
        }
    }

    /// Notes a record written by hand.
    fn wrote(&mut self, key: &[u8]) {
        if !self.inherited.is_empty() {
            self.inherited.remove(key);
        }
        if key.first() == Some(&b'c') {
            self.wrote_dossier_bytes = true;
        }
    }

    /// The bytes under a key (see [`raw`]): for tests of the on-disk layout.
    #[doc(hidden)]
    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.overlay.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.store.latest(key)?.map(|v| v.to_vec())),
        }
    }

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.get_raw(key)? {
            Some(v) => decode(key, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Writes bytes under a key (see [`raw`]): for tests of the on-disk
    /// layout.
    #[doc(hidden)]
    pub fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.wrote(&key);
        self.batch
            .insert(key.as_slice().into(), Some(value.as_slice().into()));
        self.overlay.insert(key, Some(value));
    }

    fn put<T: Serialize>(&mut self, key: Vec<u8>, value: &T) {
        self.put_raw(key, encode(value));
    }

    /// Removes a key (see [`raw`]): for tests of the on-disk layout.
    #[doc(hidden)]
    pub fn remove(&mut self, key: Vec<u8>) {
        self.wrote(&key);
        self.batch.insert(key.as_slice().into(), None);
        self.overlay.insert(key, None);
    }

    /// Adds `delta` to a counter (applied at commit).
    fn count(&mut self, key: Vec<u8>, delta: i64) {
        *self.counters.entry(key).or_insert(0) += delta;
    }

    /// A candidate's dossier as this transaction sees it.
    pub fn dossier(&mut self, candidate: &str) -> Result<Option<&Dossier>, StoreError> {
        self.load(candidate)?;
        Ok(self.dossiers.get(candidate).and_then(Option::as_ref))
    }

    /// A candidate's dossier to change (written at commit).
    fn dossier_mut(&mut self, candidate: &str) -> Result<Option<&mut Dossier>, StoreError> {
        self.load(candidate)?;
        let found = self.dossiers.get_mut(candidate).and_then(Option::as_mut);
        if found.is_some() {
            self.dirty.insert(candidate.to_string());
        }
        Ok(found)
    }

    fn load(&mut self, candidate: &str) -> Result<(), StoreError> {
        if !self.dossiers.contains_key(candidate) {
            let d = match self.store.recent.take(candidate) {
                Some(d) => Some(d),
                None => self.store.latest_dossier(candidate)?,
            };
            self.dossiers.insert(candidate.to_string(), d);
        }
        Ok(())
    }

    /// Encodes the dossiers and journal and timer records into the batch.
    fn prepare(mut self) -> Result<Prepared<'a>, StoreError> {
        // Dossiers are encoded on two threads when there are many.
        let dirty: Vec<(&String, &Dossier)> = self
            .dirty
            .iter()
            .filter_map(|id| Some((id, self.dossiers.get(id)?.as_ref()?)))
            .collect();
        let encode_all = |part: &[(&String, &Dossier)]| -> Vec<(Vec<u8>, Vec<u8>)> {
            part.iter()
                .map(|(id, d)| (key::candidate(id), dossier_record::encode(d)))
                .collect()
        };
        let encoded = if dirty.len() >= 64 {
            let (a, b) = dirty.split_at(dirty.len() / 2);
            let (mut out, other) = rayon::join(|| encode_all(a), || encode_all(b));
            out.extend(other);
            out
        } else {
            encode_all(&dirty)
        };
        for (k, v) in encoded {
            self.batch.insert(k.into(), Some(v.into()));
        }
        self.dirty.clear();
        // The dossiers of candidates with a send this transaction puts in
        // flight are kept for the next transactions once written (see
        // `recent`): the channel's answer is about to come. A dossier
        // record written by hand makes every dossier kept suspect.
        let dossiers: Vec<(String, Dossier)> = if self.wrote_dossier_bytes {
            drop(self.store.recent.clear());
            Vec::new()
        } else if self.launched.is_empty() {
            Vec::new()
        } else {
            let flying: HashSet<&str> = self
                .launched
                .iter()
                .filter_map(|k| Some(SendKey::parse(k)?.candidate()))
                .collect();
            let mut kept = Vec::with_capacity(flying.len());
            for id in flying {
                if let Some((id, Some(d))) = self.dossiers.remove_entry(id) {
                    kept.push((id, d));
                }
            }
            kept
        };
        for (key, delta) in std::mem::take(&mut self.counters) {
            if delta == 0 {
                continue;
            }
            let current = self
                .get_raw(&key)?
                .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                .map_or(0, i64::from_be_bytes);
            let value = current + delta;
            // A minute's count goes once nothing waits in it, so the
            // per-minute counters stay as few as the minutes in use.
            let gone = value == 0
                && key::split_pair(&key[1..])
                    .is_some_and(|(_, name)| name.starts_with(crate::store::names::SENDS_DUE));
            self.batch
                .insert(key.into(), (!gone).then(|| (&value.to_be_bytes()).into()));
        }
        let store = self.store;
        // A record whose timers have all been taken goes, in the commit that
        // takes the last; one that holds timers kept unfired keeps just
        // those.
        let mut finished = Vec::new();
        if !self.touched.is_empty() {
            let mut taken = store.taken_timers();
            for k in &self.touched {
                let Some(open) = taken.open.get_mut(k) else {
                    continue;
                };
                if open.done < open.entries.len() || open.rewritten {
                    continue;
                }
                if open.kept.is_empty() {
                    if !finished.contains(k) {
                        self.batch.insert(k.as_slice().into(), None);
                        finished.push(k.clone());
                    }
                } else {
                    self.batch
                        .insert(k.as_slice().into(), Some(encode(&open.kept).into()));
                    open.entries = std::mem::take(&mut open.kept);
                    open.done = open.entries.len();
                    open.rewritten = true;
                }
            }
        }
        if !self.armed.is_empty() {
            let seq = store.next_id()?;
            let mut buckets: BTreeMap<i64, Vec<TimerEntry>> = BTreeMap::new();
            for e in std::mem::take(&mut self.armed).into_values() {
                buckets.entry(key::bucket(e.due)).or_default().push(e);
            }
            for (bucket, mut entries) in buckets {
                // Due order; at one instant, the dossiers' order, so a batch
                // of them walks the tree forwards.
                entries.sort_by_cached_key(|e| (e.due, key::candidate(&e.candidate)));
                self.batch.insert(
                    key::timer_record(bucket, seq).into(),
                    Some(encode(&entries).into()),
                );
            }
        }
        let mut journal = store.journal();
        let Journal {
            queued,
            flying,
            open,
        } = &mut *journal;
        for k in std::mem::take(&mut self.settled) {
            for map in [&mut *queued, &mut *flying] {
                if let Some(record) = Journal::unlist(map, open, &k) {
                    self.batch.insert(record, None);
                }
            }
        }
        for (keys, flight) in [
            (std::mem::take(&mut self.enqueued), false),
            (std::mem::take(&mut self.launched), true),
        ] {
            if keys.is_empty() {
                continue;
            }
            let seq = store.next_id()?;
            // Short enough for sled to keep inline: copied, not allocated.
            let record = sled::IVec::from(if flight {
                key::flight(seq)
            } else {
                key::queue(seq)
            });
            let map = if flight { &mut *flying } else { &mut *queued };
            let first: Vec<bool> = {
                let mut seen = HashSet::with_capacity(keys.len());
                keys.iter().map(|k| seen.insert(k.as_str())).collect()
            };
            let keys: Vec<String> = keys
                .into_iter()
                .zip(first)
                .filter_map(|(k, first)| first.then_some(k))
                .collect();
            self.batch
                .insert(record.clone(), Some(encode(&keys).into()));
            open.insert(record.clone(), keys.len());
            for k in keys {
                // Listed again (a retry, a send again after a restart): it
                // leaves its earlier record.
                if let Some(old) = Journal::unlist(map, open, &k) {
                    self.batch.insert(old, None);
                }
                map.insert(k, record.clone());
            }
        }
        if !self.fresh_answers.is_empty() {
            let mut keys = Vec::new();
            for (k, record) in answers::records(std::mem::take(&mut self.fresh_answers)) {
                self.batch.insert(k.as_slice().into(), Some(record.into()));
                keys.push(k);
            }
            store.answers_written(keys);
        }
        let known = self.known.pairs();
        if !known.is_empty() {
            self.batch.insert(
                key::identities(store.next_id()?).into(),
                Some(identities::encode(&known).into()),
            );
        }
        Ok(Prepared {
            store,
            writes: self.batch,
            known,
            finished,
            delivered: self.delivered,
            dossiers,
            spent: std::mem::take(&mut self.dossiers),
        })
    }
}

impl<'a> Transaction for SledTxn<'a> {
    /// The candidate known under `identity` (an external id, `email:...`
    /// or `phone:...`), in the store or created earlier in this
    /// transaction. The identities are held by digest, so each candidate
    /// with the digest is compared on the identity in its dossier: two
    /// identities sharing a digest stay two candidates.
    fn candidate_known_as(
        &mut self,
        identity: &str,
    ) -> Result<Option<CandidateRecord>, StoreError> {
        let digest = self.digest(identity);
        let mut numbers = self.store.with_digest(digest)?;
        numbers.extend(self.known.get(digest));
        for n in numbers {
            if let Some(c) = self.candidate(&key::numbered_candidate(n))? {
                if c.known_as(identity) {
                    return Ok(Some(c));
                }
            }
        }
        Ok(None)
    }

    /// A fresh candidate id (`c` and a number), above every one stored.
    fn next_candidate_id(&mut self) -> Result<String, StoreError> {
        let counter = key::meta("next_candidate");
        let next = self
            .get_raw(&counter)?
            .map_or(1, |v| counter_value(&v) + 1)
            .max(self.store.id_floor() as i64 + 1);
        self.put_raw(counter, next.to_be_bytes().to_vec());
        Ok(key::numbered_candidate(next as u64))
    }

    /// Arms an enrollment's timer (written with the commit's other timers
    /// of its bucket), replacing one armed earlier in this transaction.
    /// A timer armed before for the enrollment may stay stored: it is
    /// stale once the enrollment's `timer` no longer names its instant.
    fn arm(&mut self, timer: DueTimer) {
        let entry = TimerEntry {
            due: timer.due.timestamp_millis(),
            candidate: timer.candidate,
            campaign: timer.campaign,
            kind: timer.kind,
        };
        self.armed
            .insert((entry.candidate.clone(), entry.campaign.clone()), entry);
    }

    /// Takes up to `limit` timers due at or before `now`, bucket by bucket
    /// in due order: a later transaction is not offered them (nor, once
    /// this one commits, anyone). Those of candidates `pass_over` names are
    /// taken too but kept in the store and not returned. Some may be stale
    /// (see [`SledTxn::arm`]).
    fn take_due_timers(
        &mut self,
        now: Instant,
        limit: usize,
        pass_over: impl Fn(&str) -> bool,
    ) -> Result<Vec<DueTimer>, StoreError> {
        let now_ms = now.timestamp_millis();
        let store = self.store;
        let mut taken = store.taken_timers();
        let TakenTimers { open, damaged, .. } = &mut *taken;
        let mut picked = Vec::new();
        for item in store.timer_records(Some(now)) {
            let (k, v) = item?;
            if damaged.contains(k.as_ref()) {
                continue;
            }
            let record = match open.entry(k.to_vec()) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    match decode::<Vec<TimerEntry>>(&k, &v) {
                        Ok(entries) => slot.insert(OpenRecord {
                            entries,
                            done: 0,
                            kept: Vec::new(),
                            rewritten: false,
                        }),
                        Err(e) => {
                            tracing::error!(%e, "a timer record is damaged; it is passed over until nudge restarts and left as it is");
                            damaged.insert(k.to_vec());
                            continue;
                        }
                    }
                }
            };
            if record.done >= record.entries.len() {
                continue;
            }
            self.touched.push(k.to_vec());
            while picked.len() < limit {
                let Some(e) = record.entries.get(record.done) else {
                    break;
                };
                if e.due > now_ms {
                    break;
                }
                if pass_over(&e.candidate) {
                    record.kept.push(e.clone());
                } else {
                    picked.push(e.to_due());
                }
                record.done += 1;
            }
            if picked.len() >= limit {
                break;
            }
        }
        Ok(picked)
    }

    /// Keeps a timer this transaction took in the store, unfired (its
    /// dossier is damaged): this process does not offer it again.
    fn keep_timer(&mut self, timer: &DueTimer) {
        let entry = TimerEntry::of(timer);
        let mut taken = self.store.taken_timers();
        // Rare (a damaged dossier): the records it took from are searched.
        for k in &self.touched {
            if let Some(open) = taken.open.get_mut(k) {
                if open.entries[..open.done].contains(&entry) {
                    open.kept.push(entry);
                    return;
                }
            }
        }
    }

    /// Forgets a timer armed earlier in this transaction (the enrollment
    /// has none now).
    fn disarm(&mut self, candidate: &str, campaign: &str) {
        self.armed
            .remove(&(candidate.to_string(), campaign.to_string()));
    }

    /// Puts a send on the delivery queue (its entry is in the dossier).
    fn enqueue(&mut self, send_key: SendKey) {
        self.enqueued.push(send_key.as_str().to_string());
    }

    /// Records that a queued send is being handed to its channel.
    fn launch(&mut self, send_key: SendKey) {
        self.launched.push(send_key.as_str().to_string());
    }

    /// How many sends this transaction marks in flight.
    fn launches(&self) -> usize {
        self.launched.len()
    }

    /// Takes a send off the queue: delivered, failed, suppressed, or
    /// waiting for a retry (whose own key brings it back).
    fn settle(&mut self, send_key: SendKey) {
        let send_key = send_key.as_str();
        self.enqueued.retain(|k| k != send_key);
        self.launched.retain(|k| k != send_key);
        self.settled.push(send_key.to_string());
    }

    /// Tries a send again at `at` (settle it too: it leaves the queue until
    /// then).
    fn retry_send(&mut self, send_key: SendKey, at: Instant) {
        self.put_raw(key::retry(at, send_key.as_str()), Vec::new());
    }

    /// Takes up to `limit` retries due at or before `now`, in due order:
    /// their send keys.
    fn take_due_retries(&mut self, now: Instant, limit: usize) -> Result<Vec<String>, StoreError> {
        let due = self.store.retries_until(Some(now), limit)?;
        let mut out = Vec::with_capacity(due.len());
        for (_, send_key, rkey) in due {
            self.remove(rkey);
            out.push(send_key);
        }
        Ok(out)
    }

    /// Adds `delta` to a campaign's counter (a delta, applied at commit).
    fn bump(&mut self, campaign: &str, counter: &Counter, delta: i64) {
        self.count(key::counter_of(campaign, counter), delta);
    }

    /// Whether a campaign is paused.
    fn paused(&self, campaign: &str) -> Result<bool, StoreError> {
        Ok(self.get_raw(&key::paused(campaign))?.is_some())
    }

    fn set_paused(&mut self, campaign: &str, paused: bool) {
        if paused {
            self.put_raw(key::paused(campaign), vec![1]);
        } else {
            self.remove(key::paused(campaign));
        }
    }

    fn decision(
        &self,
        campaign: &str,
        experiment: &str,
    ) -> Result<Option<crate::store::Decision>, StoreError> {
        self.get(&key::decision(campaign, experiment))
    }

    fn decide(&mut self, decision: &crate::store::Decision) {
        self.put(
            key::decision(&decision.campaign, &decision.experiment),
            decision,
        );
    }

    /// Notes an enrollment of a paused (or orphaned) campaign as parked.
    fn park(&mut self, campaign: &str, candidate: &str) {
        self.put_raw(key::parked(campaign, candidate), Vec::new());
    }

    fn unpark(&mut self, campaign: &str, candidate: &str) {
        self.remove(key::parked(campaign, candidate));
    }

    /// The candidates whose enrollments in `campaign` are parked.
    fn parked(&self, campaign: &str) -> Result<Vec<String>, StoreError> {
        let prefix = key::parked_of(campaign);
        let mut found = std::collections::BTreeSet::new();
        for item in self.store.scan_raw(&prefix) {
            let (k, _) = item?;
            found.insert(k[prefix.len()..].to_vec());
        }
        for (k, v) in self.overlay.range(prefix.clone()..) {
            if !k.starts_with(&prefix) {
                break;
            }
            let candidate = k[prefix.len()..].to_vec();
            if v.is_some() {
                found.insert(candidate);
            } else {
                found.remove(&candidate);
            }
        }
        Ok(found
            .into_iter()
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .collect())
    }

    /// The first answer to a candidate's event with this id, if any.
    fn event_answer<A: DeserializeOwned>(
        &self,
        candidate: &str,
        event_id: &str,
    ) -> Result<Option<A>, StoreError> {
        let k = key::event_id(candidate, event_id);
        if let Some(answer) = self.get(&k)? {
            return Ok(Some(answer));
        }
        // Given when the candidate was created: in this transaction, or in
        // the `a` record of the commit that created them.
        let fresh = self
            .fresh_answers
            .iter()
            .find(|(c, e, _)| c == candidate && e == event_id)
            .map(|(_, _, v)| v.clone());
        let found = match fresh {
            Some(v) => Some(v),
            None => match key::candidate_number(candidate) {
                Some(n) => self.store.created_answer(n, candidate, event_id)?,
                None => None,
            },
        };
        found.map(|v| decode(&k, &v)).transpose()
    }

    fn suppression(
        &self,
        contact: &crate::store::Contact,
    ) -> Result<Option<crate::store::Suppression>, StoreError> {
        let k = suppression::key_of(contact);
        // Most sends go to contacts never suppressed: answered from memory.
        if !self.overlay.contains_key(&k) && !self.store.may_be_suppressed(&k)? {
            return Ok(None);
        }
        self.get(&k)
    }

    /// The store's memory of the list's keys says (a contact this
    /// transaction suppresses is noted there first: see `suppress`).
    fn may_suppress_any(&self) -> Result<bool, StoreError> {
        self.store.may_be_any_suppressed()
    }

    fn suppress(&mut self, entry: &crate::store::Suppression) {
        let k = suppression::key_of(&entry.contact);
        self.store.note_suppressed(&k);
        self.put(k, entry);
    }

    fn unsuppress(&mut self, contact: &crate::store::Contact) {
        self.remove(suppression::key_of(contact));
    }

    /// Remembers the first answer to a candidate's event with this id: in
    /// the commit's `a` record when this transaction created the candidate
    /// (an import's rows: one record a commit instead of one a row).
    fn remember_event<A: Serialize>(&mut self, candidate: &str, event_id: &str, answer: &A) {
        // Callers ask `event_answer` first, which finds what this
        // transaction remembered: nothing is remembered twice.
        let created_here = key::candidate_number(candidate)
            .zip(self.first_created)
            .is_some_and(|(n, first)| n >= first);
        if created_here {
            self.fresh_answers
                .push((candidate.to_string(), event_id.to_string(), encode(answer)));
            return;
        }
        self.put(key::event_id(candidate, event_id), answer);
    }

    /// Stores a campaign version's source, unless it is stored already.
    fn pin_version(
        &mut self,
        campaign: &str,
        version: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        let k = key::version(campaign, version);
        if self.get_raw(&k)?.is_none() {
            self.put_raw(k, source.as_bytes().to_vec());
        }
        Ok(())
    }

    fn set_digest_due(&mut self, due: Instant) {
        self.put_raw(
            key::meta(key::DIGEST_DUE),
            due.timestamp_millis().to_be_bytes().to_vec(),
        );
    }

    fn is_empty(&self) -> bool {
        self.overlay.is_empty()
            && self.dirty.is_empty()
            && self.enqueued.is_empty()
            && self.launched.is_empty()
            && self.settled.is_empty()
            && self.armed.is_empty()
            && self.touched.is_empty()
            && self.known.is_empty()
            && self.fresh_answers.is_empty()
            && self.counters.values().all(|d| *d == 0)
    }

    fn candidates_held(&self) -> usize {
        self.dossiers.len()
    }

    /// Not when this one has read (or written) their dossier.
    fn movable(&self, candidate: &str) -> bool {
        !self.dossiers.contains_key(candidate)
    }

    /// Moves the dossiers of `candidates` (as read or changed so far) into
    /// a transaction of their own, so their steps can run on another
    /// thread; [`Transaction::absorb`] takes it back. The new one starts with none
    /// of this one's other writes (single records, timers, queued sends):
    /// the work given to it must not need them, which holds for steps of
    /// candidates this transaction has only read, and for the first steps
    /// of new enrollments whose candidates it met only in admitting them.
    fn split_off<'c>(&mut self, candidates: impl IntoIterator<Item = &'c str>) -> Option<Self> {
        let mut other = SledTxn::new(self.store);
        // A contact suppressed earlier in this batch (an opt-out) is
        // suppressed for the other thread's sends too.
        for (k, v) in &self.overlay {
            if suppression::is_entry(k) {
                other.overlay.insert(k.clone(), v.clone());
                other.inherited.insert(k.clone());
            }
        }
        other.first_created = self.first_created;
        for c in candidates {
            if let Some(d) = self.dossiers.remove(c) {
                if self.dirty.remove(c) {
                    other.dirty.insert(c.to_string());
                }
                other.dossiers.insert(c.to_string(), d);
            }
        }
        Some(other)
    }

    /// Takes back a transaction made by [`Transaction::split_off`]: its writes
    /// become this one's, as if made here after this one's own.
    fn absorb(&mut self, other: Self) {
        let SledTxn {
            overlay,
            counters,
            dossiers,
            dirty,
            enqueued,
            launched,
            settled,
            delivered,
            armed,
            touched,
            known,
            inherited,
            wrote_dossier_bytes,
            first_created,
            fresh_answers,
            ..
        } = other;
        self.wrote_dossier_bytes |= wrote_dossier_bytes;
        self.first_created = self.first_created.into_iter().chain(first_created).min();
        self.fresh_answers.extend(fresh_answers);
        self.delivered.extend(delivered);
        self.touched.extend(touched);
        for (digest, id) in known.pairs() {
            self.known.insert(digest, id);
        }
        for (k, v) in overlay {
            if inherited.contains(&k) {
                continue;
            }
            match v {
                Some(v) => self.put_raw(k, v),
                None => self.remove(k),
            }
        }
        for (k, delta) in counters {
            self.count(k, delta);
        }
        self.dossiers.extend(dossiers);
        self.dirty.extend(dirty);
        if !settled.is_empty() {
            let gone: HashSet<&String> = settled.iter().collect();
            self.enqueued.retain(|q| !gone.contains(q));
            self.launched.retain(|q| !gone.contains(q));
        }
        self.settled.extend(settled);
        self.enqueued.extend(enqueued);
        self.launched.extend(launched);
        self.armed.extend(armed);
    }

    /// Reads the dossiers of a batch ahead of its steps, on two threads
    /// (the steps themselves run one after another). A dossier that does not
    /// decode is left for the step to meet and report.
    fn prefetch(&mut self, candidates: &[&str]) {
        let wanted: Vec<&str> = {
            let mut seen = HashSet::new();
            let mut wanted = Vec::new();
            for c in candidates.iter().copied() {
                if self.dossiers.contains_key(c) || !seen.insert(c) {
                    continue;
                }
                match self.store.recent.take(c) {
                    Some(d) => {
                        self.dossiers.insert(c.to_string(), Some(d));
                    }
                    None => wanted.push(c),
                }
            }
            wanted
        };
        if wanted.len() < 64 {
            return;
        }
        let store = self.store;
        let (a, b) = wanted.split_at(wanted.len() / 2);
        let read = |ids: &[&str]| -> Vec<(String, Option<Dossier>)> {
            ids.iter()
                .filter_map(|id| Some((id.to_string(), store.latest_dossier(id).ok()?)))
                .collect()
        };
        let (first, second) = std::thread::scope(|s| {
            let other = s.spawn(|| read(b));
            (read(a), other.join().unwrap_or_default())
        });
        self.dossiers.extend(first.into_iter().chain(second));
    }

    fn candidate(&mut self, id: &str) -> Result<Option<CandidateRecord>, StoreError> {
        Ok(self.dossier(id)?.map(|d| d.candidate.clone()))
    }

    /// Starts the dossier of a candidate just given a fresh id
    /// ([`SledTxn::next_candidate_id`]), without looking for one in the store:
    /// ids only grow (the counter is written with the dossier, and never set
    /// below [`SledStore::id_floor`]). They are known under their external id
    /// from then on ([`SledTxn::candidate_known_as`]).
    fn new_candidate(&mut self, record: CandidateRecord) {
        if let Some(n) = key::candidate_number(&record.id) {
            for identity in record.identities() {
                let digest = self.digest(&identity);
                self.known.insert(digest, n);
            }
            self.first_created = Some(self.first_created.map_or(n, |first| first.min(n)));
        }
        self.dirty.insert(record.id.clone());
        self.dossiers
            .insert(record.id.clone(), Some(Dossier::new(record)));
    }

    /// Writes a candidate's record (a new candidate gets a new dossier).
    fn put_candidate(&mut self, record: &CandidateRecord) -> Result<(), StoreError> {
        // A new email or phone makes the person findable under it too
        // (an identity noted twice is kept once).
        if let Some(n) = key::candidate_number(&record.id) {
            let before = self.candidate(&record.id)?.map(|c| c.identities());
            for identity in record.identities() {
                if before.as_ref().is_none_or(|b| !b.contains(&identity)) {
                    self.known.insert(identities::digest(&identity), n);
                }
            }
        }
        match self.dossier_mut(&record.id)? {
            Some(d) => d.candidate = record.clone(),
            None => {
                self.dossiers
                    .insert(record.id.clone(), Some(Dossier::new(record.clone())));
                self.dirty.insert(record.id.clone());
            }
        }
        Ok(())
    }

    fn enrollment(
        &mut self,
        candidate: &str,
        campaign: &str,
    ) -> Result<Option<Enrollment>, StoreError> {
        Ok(self
            .dossier(candidate)?
            .and_then(|d| d.enrollment(campaign).cloned()))
    }

    /// Read in place: nothing copied.
    fn waiting(
        &mut self,
        candidate: &str,
        campaign: &str,
    ) -> Result<Option<(Instant, TimerKind)>, StoreError> {
        Ok(self
            .dossier(candidate)?
            .and_then(|d| d.enrollment(campaign))
            .and_then(Enrollment::waiting))
    }

    fn enrollments_of(&mut self, candidate: &str) -> Result<Vec<Enrollment>, StoreError> {
        Ok(self
            .dossier(candidate)?
            .map(|d| d.enrollments.clone())
            .unwrap_or_default())
    }

    /// Writes an enrollment into its candidate's dossier (which must exist).
    fn put_enrollment(&mut self, enrollment: &Enrollment) -> Result<(), StoreError> {
        match self.dossier_mut(&enrollment.candidate)? {
            Some(d) => {
                d.put_enrollment(enrollment.clone());
                Ok(())
            }
            None => Err(StoreError::missing_dossier(&enrollment.candidate)),
        }
    }

    /// A send by its key.
    fn send(&mut self, send_key: SendKey) -> Result<Option<OutboxEntry>, StoreError> {
        let candidate = send_key.candidate();
        match self.dossier(candidate)? {
            Some(d) => d
                .send(send_key.as_str())
                .map_err(|e| StoreError::damaged_dossier(candidate, e)),
            None => Ok(None),
        }
    }

    /// A send by its key if it is not settled (without reading the settled
    /// ones).
    fn unsettled_send(&mut self, send_key: SendKey) -> Result<Option<OutboxEntry>, StoreError> {
        let text = send_key.as_str();
        Ok(self
            .dossier(send_key.candidate())?
            .and_then(|d| d.outbox.iter().find(|e| e.message.key == text).cloned()))
    }

    /// Writes a send into its candidate's dossier (which must exist).
    fn put_send(&mut self, entry: &OutboxEntry) -> Result<(), StoreError> {
        if entry.status == SendStatus::Delivered {
            self.delivered.push(entry.message.key.clone());
        }
        match self.dossier_mut(&entry.message.candidate)? {
            Some(d) => {
                d.put_send(entry.clone());
                Ok(())
            }
            None => Err(StoreError::missing_dossier(&entry.message.candidate)),
        }
    }

    /// Appends a line to a candidate's history (dropped, with a warning,
    /// when the candidate has no dossier: nothing else could be written
    /// for them either).
    fn log(&mut self, candidate: &str, entry: LogEntry) -> Result<(), StoreError> {
        match self.dossier_mut(candidate)? {
            Some(d) => d.log(&entry),
            None => tracing::warn!(candidate, "a history line for an unknown candidate"),
        }
        Ok(())
    }

    /// Replaces a candidate's history and forgets their settled sends.
    fn replace_history(&mut self, candidate: &str, kept: &[LogEntry]) -> Result<(), StoreError> {
        match self.dossier_mut(candidate)? {
            Some(d) => {
                d.history = Default::default();
                for entry in kept {
                    d.history.push(entry);
                }
                d.settled = Default::default();
                Ok(())
            }
            None => Err(StoreError::missing_dossier(candidate)),
        }
    }

    /// Writes everything in one atomic batch and flushes it. The timer
    /// records it finished are forgotten once it is durable; if it fails,
    /// what it took of them is taken again.
    fn commit(self) -> Result<(), StoreError> {
        let store = self.store;
        let touched = self.touched.clone();
        let written = self.prepare().and_then(|mut prepared| {
            let writes = std::mem::take(&mut prepared.writes);
            let delivered = std::mem::take(&mut prepared.delivered);
            let spent = std::mem::take(&mut prepared.spent);
            // The dossiers it no longer needs are freed beside the write
            // (sled's apply and the flush), not after it: on a thread of
            // their own, not the pool's, whose two threads the next batch
            // wants at once.
            std::thread::scope(|s| {
                if spent.len() >= 64 {
                    s.spawn(move || drop(spent));
                } else {
                    drop(spent);
                }
                prepared.store.commit(writes, delivered)
            })?;
            // Made durable: now the store's map has them too.
            prepared.learn()?;
            prepared.keep_dossiers();
            Ok(prepared.finished)
        });
        let mut taken = store.taken_timers();
        match written {
            Ok(finished) => {
                for k in finished {
                    taken.open.remove(&k);
                }
                Ok(())
            }
            Err(e) => {
                // The entries already taken in earlier commits are then
                // found stale.
                for k in touched {
                    taken.open.remove(&k);
                }
                Err(e)
            }
        }
    }

    /// Hands everything to the store's writer thread, to be written in one
    /// atomic batch while the caller goes on (see `SledStore::write_behind`).
    /// Transactions begun after this read what it writes; settle it with
    /// [`SledStore::settle`] before acknowledging any of it.
    fn commit_behind(self) -> Result<(), StoreError> {
        let mut prepared = self.prepare()?;
        // Known at once, so the next batch's enrollments find them (if the
        // write fails, the store reads them again: [`SledStore::reread`]).
        prepared.learn()?;
        // Read as the batch leaves them, like its other writes, until it
        // lands; if it fails, the store forgets them (`reread`).
        prepared.keep_dossiers();
        let finished = std::mem::take(&mut prepared.finished);
        prepared.store.taken_timers().behind.extend(finished);
        prepared.store.write_behind(
            prepared.writes,
            prepared.delivered,
            Box::new(prepared.spent),
        )
    }
}

/// A transaction's writes, ready to go to sled.
struct Prepared<'a> {
    store: &'a SledStore,
    writes: writer::Writes,
    /// New candidates' identities.
    known: Vec<(u64, u64)>,
    /// Timer records whose last entry it takes.
    finished: Vec<Vec<u8>>,
    /// Sends it writes as delivered.
    delivered: Vec<String>,
    /// The dossiers of the candidates it puts a send in flight for, as it
    /// leaves them.
    dossiers: Vec<(String, Dossier)>,
    /// The other dossiers it held, to be freed off the core's thread.
    spent: HashMap<String, Option<Dossier>>,
}

impl Prepared<'_> {
    /// Leaves the dossiers it held for the next transactions
    /// ([`recent`]); those that no longer fit are freed beside the write
    /// when there are many (freeing a batch's dossiers takes a while).
    fn keep_dossiers(&mut self) {
        let gone = self.store.recent.keep(std::mem::take(&mut self.dossiers));
        if gone.len() >= 64 {
            let _ = std::thread::Builder::new()
                .name("nudge-free".into())
                .spawn(move || drop(gone));
        }
    }

    /// Adds the new identities to the store's map (adding one it already
    /// read is nothing).
    fn learn(&self) -> Result<(), StoreError> {
        if self.known.is_empty() {
            return Ok(());
        }
        self.store.with_identities(|ids| {
            for (digest, id) in &self.known {
                ids.insert(*digest, *id);
            }
        })
    }
}
