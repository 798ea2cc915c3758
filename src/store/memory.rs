//! A store in memory: the same [`Store`] and [`Transaction`] as the sled
//! store, kept in BTreeMaps behind a mutex. A transaction works on its own
//! copy of the state, and its commit puts that copy in place at once, so a
//! commit is atomic and a dropped transaction leaves nothing behind. It
//! proves the boundary (the runtime tests run on both stores) and suits
//! tests; it keeps nothing when the process ends.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    CandidateRecord, Contact, Counter, Dossier, DueTimer, Enrollment, LogEntry, OutboxEntry,
    SendKey, SendStatus, Store, StoreError, Suppression, TimerKind, Transaction,
};
use crate::engine::Instant;

/// A timer's place: (due in epoch milliseconds, candidate, campaign).
type TimerAt = (i64, String, String);

/// Everything stored.
#[derive(Debug, Clone, Default)]
struct State {
    /// Candidate id → their dossier (the domain's record of a candidate).
    dossiers: BTreeMap<String, Dossier>,
    /// Identity (external id, `email:`, `phone:`) → candidate id.
    identities: BTreeMap<String, String>,
    /// The last candidate number given.
    last_id: u64,
    timers: BTreeMap<TimerAt, TimerKind>,
    /// (candidate, campaign) → the due instant of its stored timer.
    armed: BTreeMap<(String, String), i64>,
    /// Timers taken and kept unfired: not offered again.
    kept: BTreeSet<TimerAt>,
    /// (due in epoch milliseconds, send key).
    retries: BTreeSet<(i64, String)>,
    /// Send key → when it was queued (for the order of recovery).
    queued: BTreeMap<String, u64>,
    flying: BTreeSet<String>,
    queued_seq: u64,
    /// (campaign, counter name) → count.
    counters: BTreeMap<(String, String), i64>,
    paused: BTreeSet<String>,
    /// (campaign, candidate).
    parked: BTreeSet<(String, String)>,
    /// (candidate, event id) → the first answer, encoded.
    events: BTreeMap<(String, String), Vec<u8>>,
    /// (campaign, version) → source.
    versions: BTreeMap<(String, String), String>,
    /// The suppression list.
    suppressions: BTreeMap<Contact, Suppression>,
    /// When the weekly digest is next due.
    digest_due: Option<Instant>,
    /// (campaign, experiment) → its decision.
    decisions: BTreeMap<(String, String), crate::store::Decision>,
}

/// The store in memory; clones share it.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A transaction: its own copy of the state, put in place at commit.
pub struct MemoryTxn<'a> {
    store: &'a MemoryStore,
    state: State,
    /// Whether it changed anything.
    changed: bool,
    launches: usize,
}

impl State {
    fn send(&self, send_key: SendKey) -> Result<Option<OutboxEntry>, StoreError> {
        let candidate = send_key.candidate();
        match self.dossiers.get(candidate) {
            Some(d) => d
                .send(send_key.as_str())
                .map_err(|e| StoreError::damaged_dossier(candidate, e)),
            None => Ok(None),
        }
    }

    fn enrollment(&self, candidate: &str, campaign: &str) -> Option<Enrollment> {
        self.dossiers
            .get(candidate)
            .and_then(|d| d.enrollment(campaign).cloned())
    }

    /// A campaign's counters but the per-minute ones.
    fn counters(&self, campaign: &str) -> Vec<(Counter, i64)> {
        self.counters
            .iter()
            .filter(|((c, _), _)| c == campaign)
            .map(|((_, name), n)| (Counter::parse(name), *n))
            .filter(|(counter, _)| !counter.per_minute())
            .collect()
    }

    /// Timers not taken and kept, in due order.
    fn offered(&self) -> impl Iterator<Item = (&TimerAt, &TimerKind)> + '_ {
        self.timers
            .iter()
            .filter(|(at, _)| !self.kept.contains(*at))
    }
}

fn due_timer((due, candidate, campaign): &TimerAt, kind: TimerKind) -> DueTimer {
    DueTimer {
        due: Instant::from_timestamp_millis(*due).unwrap_or_default(),
        candidate: candidate.clone(),
        campaign: campaign.clone(),
        kind,
    }
}

impl Store for MemoryStore {
    type Txn<'a> = MemoryTxn<'a>;

    fn begin(&self) -> MemoryTxn<'_> {
        MemoryTxn {
            store: self,
            state: self.state().clone(),
            changed: false,
            launches: 0,
        }
    }

    fn candidate(&self, id: &str) -> Result<Option<CandidateRecord>, StoreError> {
        Ok(self.state().dossiers.get(id).map(|d| d.candidate.clone()))
    }

    fn enrollment(
        &self,
        candidate: &str,
        campaign: &str,
    ) -> Result<Option<Enrollment>, StoreError> {
        Ok(self.state().enrollment(candidate, campaign))
    }

    fn send(&self, send_key: SendKey) -> Result<Option<OutboxEntry>, StoreError> {
        self.state().send(send_key)
    }

    fn sends(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut out = Vec::new();
        for (id, d) in &self.state().dossiers {
            out.extend(d.sends().map_err(|e| StoreError::damaged_dossier(id, e))?);
        }
        Ok(out)
    }

    fn history(&self, candidate: &str) -> Result<Vec<LogEntry>, StoreError> {
        match self.state().dossiers.get(candidate) {
            Some(d) => d
                .history
                .items()
                .map_err(|e| StoreError::damaged_dossier(candidate, e)),
            None => Ok(Vec::new()),
        }
    }

    fn dossiers(&self) -> impl Iterator<Item = Result<Dossier, StoreError>> + '_ {
        let all: Vec<Dossier> = self.state().dossiers.values().cloned().collect();
        all.into_iter().map(Ok)
    }

    fn dossiers_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Option<Dossier>)>, StoreError> {
        use std::ops::Bound;
        let from = match after {
            Some(id) => Bound::Excluded(id.to_string()),
            None => Bound::Unbounded,
        };
        Ok(self
            .state()
            .dossiers
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(id, d)| (id.clone(), Some(d.clone())))
            .collect())
    }

    fn live_timers(&self) -> Result<Vec<DueTimer>, StoreError> {
        let state = self.state();
        Ok(state
            .timers
            .iter()
            .map(|(at, kind)| due_timer(at, *kind))
            .filter(|t| {
                state
                    .enrollment(&t.candidate, &t.campaign)
                    .is_some_and(|e| e.timer == Some(t.due) && !e.parked)
            })
            .collect())
    }

    fn timers_until(&self, until: Option<Instant>) -> Result<Vec<DueTimer>, StoreError> {
        let until = until.map_or(i64::MAX, |t| t.timestamp_millis());
        Ok(self
            .state()
            .timers
            .iter()
            .take_while(|((due, _, _), _)| *due <= until)
            .map(|(at, kind)| due_timer(at, *kind))
            .collect())
    }

    fn upcoming_timers(&self, limit: usize) -> Result<Vec<DueTimer>, StoreError> {
        Ok(self
            .state()
            .offered()
            .take(limit)
            .map(|(at, kind)| due_timer(at, *kind))
            .collect())
    }

    fn next_retry(&self) -> Result<Option<Instant>, StoreError> {
        Ok(self
            .state()
            .retries
            .first()
            .and_then(|(due, _)| Instant::from_timestamp_millis(*due)))
    }

    fn counters(&self, campaign: &str) -> Result<Vec<(Counter, i64)>, StoreError> {
        Ok(self.state().counters(campaign))
    }

    fn all_counters(&self) -> Result<Vec<(String, Counter, i64)>, StoreError> {
        Ok(self
            .state()
            .counters
            .iter()
            .map(|((campaign, name), n)| (campaign.clone(), Counter::parse(name), *n))
            .filter(|(_, counter, _)| !counter.per_minute())
            .collect())
    }

    fn sends_due(&self, campaign: &str, before: Instant) -> Result<i64, StoreError> {
        let before = before.timestamp_millis();
        Ok(self
            .state()
            .counters
            .iter()
            .filter(|((c, _), _)| c == campaign)
            .filter_map(|((_, name), n)| match Counter::parse(name) {
                Counter::SendsDue(minute) if minute * 60_000 < before => Some(*n),
                _ => None,
            })
            .sum())
    }

    fn sends_on(
        &self,
        campaign: &str,
        since: Instant,
    ) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
        let hour = since.timestamp_millis().max(0).div_euclid(3_600_000);
        let mut out: std::collections::BTreeMap<String, i64> = crate::engine::Channel::ALL
            .iter()
            .map(|c| (c.name().to_string(), 0))
            .collect();
        for ((c, name), n) in &self.state().counters {
            if c != campaign {
                continue;
            }
            if let Counter::SendsOn { channel, hour: h } = Counter::parse(name) {
                if h >= hour {
                    *out.entry(channel).or_insert(0) += *n;
                }
            }
        }
        Ok(out)
    }

    fn paused(&self, campaign: &str) -> Result<bool, StoreError> {
        Ok(self.state().paused.contains(campaign))
    }

    fn decisions(&self) -> Result<Vec<crate::store::Decision>, StoreError> {
        Ok(self.state().decisions.values().cloned().collect())
    }

    fn suppression(&self, contact: &Contact) -> Result<Option<Suppression>, StoreError> {
        Ok(self.state().suppressions.get(contact).cloned())
    }

    fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        Ok(self.state().suppressions.values().cloned().collect())
    }

    fn digest_due(&self) -> Result<Option<Instant>, StoreError> {
        Ok(self.state().digest_due)
    }

    fn undelivered(&self) -> usize {
        self.state().queued.len()
    }

    fn in_flight(&self) -> usize {
        self.state().flying.len()
    }

    fn queued_sends(&self) -> Vec<(String, bool)> {
        let state = self.state();
        let mut out: Vec<(u64, &String)> = state.queued.iter().map(|(k, n)| (*n, k)).collect();
        out.sort();
        out.into_iter()
            .map(|(_, k)| (k.clone(), state.flying.contains(k)))
            .collect()
    }

    fn flying_unqueued(&self) -> Vec<String> {
        let state = self.state();
        state
            .flying
            .iter()
            .filter(|k| !state.queued.contains_key(*k))
            .cloned()
            .collect()
    }

    fn undelivered_checked(&self) -> Result<usize, StoreError> {
        let state = self.state();
        let mut n = 0;
        for k in state.queued.keys() {
            let Some(k) = SendKey::parse(k) else {
                continue;
            };
            if let Some(e) = state.send(k)? {
                n += usize::from(e.status == SendStatus::Queued && e.retry_at.is_none());
            }
        }
        Ok(n)
    }
}

impl MemoryTxn<'_> {
    fn dossier_mut(&mut self, candidate: &str) -> Option<&mut Dossier> {
        self.changed = true;
        self.state.dossiers.get_mut(candidate)
    }
}

impl Transaction for MemoryTxn<'_> {
    fn candidate(&mut self, id: &str) -> Result<Option<CandidateRecord>, StoreError> {
        Ok(self.state.dossiers.get(id).map(|d| d.candidate.clone()))
    }

    fn candidate_known_as(
        &mut self,
        identity: &str,
    ) -> Result<Option<CandidateRecord>, StoreError> {
        let Some(id) = self.state.identities.get(identity).cloned() else {
            return Ok(None);
        };
        Ok(self.candidate(&id)?.filter(|c| c.known_as(identity)))
    }

    fn next_candidate_id(&mut self) -> Result<String, StoreError> {
        self.changed = true;
        self.state.last_id += 1;
        Ok(format!("c{}", self.state.last_id))
    }

    fn new_candidate(&mut self, record: CandidateRecord) {
        self.changed = true;
        for identity in record.identities() {
            // The first candidate known under an identity keeps it.
            self.state
                .identities
                .entry(identity)
                .or_insert_with(|| record.id.clone());
        }
        self.state
            .dossiers
            .insert(record.id.clone(), Dossier::new(record));
    }

    fn put_candidate(&mut self, record: &CandidateRecord) -> Result<(), StoreError> {
        for identity in record.identities() {
            self.state
                .identities
                .entry(identity)
                .or_insert_with(|| record.id.clone());
        }
        match self.dossier_mut(&record.id) {
            Some(d) => d.candidate = record.clone(),
            None => {
                self.state
                    .dossiers
                    .insert(record.id.clone(), Dossier::new(record.clone()));
            }
        }
        Ok(())
    }

    fn enrollment(
        &mut self,
        candidate: &str,
        campaign: &str,
    ) -> Result<Option<Enrollment>, StoreError> {
        Ok(self.state.enrollment(candidate, campaign))
    }

    fn enrollments_of(&mut self, candidate: &str) -> Result<Vec<Enrollment>, StoreError> {
        Ok(self
            .state
            .dossiers
            .get(candidate)
            .map(|d| d.enrollments.clone())
            .unwrap_or_default())
    }

    fn put_enrollment(&mut self, enrollment: &Enrollment) -> Result<(), StoreError> {
        match self.dossier_mut(&enrollment.candidate) {
            Some(d) => {
                d.put_enrollment(enrollment.clone());
                Ok(())
            }
            None => Err(StoreError::missing_dossier(&enrollment.candidate)),
        }
    }

    fn send(&mut self, send_key: SendKey) -> Result<Option<OutboxEntry>, StoreError> {
        self.state.send(send_key)
    }

    fn unsettled_send(&mut self, send_key: SendKey) -> Result<Option<OutboxEntry>, StoreError> {
        let text = send_key.as_str();
        Ok(self
            .state
            .dossiers
            .get(send_key.candidate())
            .and_then(|d| d.outbox.iter().find(|e| e.message.key == text).cloned()))
    }

    fn put_send(&mut self, entry: &OutboxEntry) -> Result<(), StoreError> {
        match self.dossier_mut(&entry.message.candidate) {
            Some(d) => {
                d.put_send(entry.clone());
                Ok(())
            }
            None => Err(StoreError::missing_dossier(&entry.message.candidate)),
        }
    }

    fn log(&mut self, candidate: &str, entry: LogEntry) -> Result<(), StoreError> {
        match self.dossier_mut(candidate) {
            Some(d) => d.log(&entry),
            None => tracing::warn!(candidate, "a history line for an unknown candidate"),
        }
        Ok(())
    }

    fn replace_history(&mut self, candidate: &str, kept: &[LogEntry]) -> Result<(), StoreError> {
        match self.dossier_mut(candidate) {
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

    /// Replaces the enrollment's stored timer (a database's upsert).
    fn arm(&mut self, timer: DueTimer) {
        self.changed = true;
        let (candidate, campaign) = (timer.candidate.clone(), timer.campaign.clone());
        let due = timer.due.timestamp_millis();
        if let Some(old) = self
            .state
            .armed
            .insert((candidate.clone(), campaign.clone()), due)
        {
            self.state
                .timers
                .remove(&(old, candidate.clone(), campaign.clone()));
        }
        self.state
            .timers
            .insert((due, candidate, campaign), timer.kind);
    }

    fn disarm(&mut self, candidate: &str, campaign: &str) {
        let enrollment = (candidate.to_string(), campaign.to_string());
        if let Some(old) = self.state.armed.remove(&enrollment) {
            self.changed = true;
            let (candidate, campaign) = enrollment;
            self.state.timers.remove(&(old, candidate, campaign));
        }
    }

    fn take_due_timers(
        &mut self,
        now: Instant,
        limit: usize,
        pass_over: impl Fn(&str) -> bool,
    ) -> Result<Vec<DueTimer>, StoreError> {
        let now = now.timestamp_millis();
        let due: Vec<(TimerAt, TimerKind)> = self
            .state
            .offered()
            .take_while(|((at, _, _), _)| *at <= now)
            .take(limit)
            .map(|(at, kind)| (at.clone(), *kind))
            .collect();
        let mut taken = Vec::with_capacity(due.len());
        for (at, kind) in due {
            self.changed = true;
            if pass_over(&at.1) {
                self.state.kept.insert(at);
                continue;
            }
            taken.push(due_timer(&at, kind));
            let enrollment = (at.1.clone(), at.2.clone());
            if self.state.armed.get(&enrollment) == Some(&at.0) {
                self.state.armed.remove(&enrollment);
            }
            self.state.timers.remove(&at);
        }
        Ok(taken)
    }

    fn keep_timer(&mut self, timer: &DueTimer) {
        let at = (
            timer.due.timestamp_millis(),
            timer.candidate.clone(),
            timer.campaign.clone(),
        );
        self.changed = true;
        self.state.timers.insert(at.clone(), timer.kind);
        self.state.kept.insert(at);
    }

    fn enqueue(&mut self, send_key: SendKey) {
        self.changed = true;
        self.state.queued_seq += 1;
        self.state
            .queued
            .insert(send_key.as_str().to_string(), self.state.queued_seq);
    }

    fn launch(&mut self, send_key: SendKey) {
        self.changed = true;
        self.launches += 1;
        self.state.flying.insert(send_key.as_str().to_string());
    }

    fn launches(&self) -> usize {
        self.launches
    }

    fn settle(&mut self, send_key: SendKey) {
        self.changed = true;
        self.state.queued.remove(send_key.as_str());
        self.state.flying.remove(send_key.as_str());
    }

    fn retry_send(&mut self, send_key: SendKey, at: Instant) {
        self.changed = true;
        self.state
            .retries
            .insert((at.timestamp_millis(), send_key.as_str().to_string()));
    }

    fn take_due_retries(&mut self, now: Instant, limit: usize) -> Result<Vec<String>, StoreError> {
        let now = now.timestamp_millis();
        let due: Vec<(i64, String)> = self
            .state
            .retries
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(limit)
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(due.len());
        for retry in due {
            self.changed = true;
            self.state.retries.remove(&retry);
            out.push(retry.1);
        }
        Ok(out)
    }

    fn bump(&mut self, campaign: &str, counter: &Counter, delta: i64) {
        self.changed = true;
        let at = (campaign.to_string(), counter.to_string());
        let n = self.state.counters.entry(at.clone()).or_insert(0);
        *n += delta;
        if *n == 0 && counter.per_minute() {
            self.state.counters.remove(&at);
        }
    }

    fn paused(&self, campaign: &str) -> Result<bool, StoreError> {
        Ok(self.state.paused.contains(campaign))
    }

    fn decision(
        &self,
        campaign: &str,
        experiment: &str,
    ) -> Result<Option<crate::store::Decision>, StoreError> {
        let at = (campaign.to_string(), experiment.to_string());
        Ok(self.state.decisions.get(&at).cloned())
    }

    fn decide(&mut self, decision: &crate::store::Decision) {
        self.changed = true;
        let at = (decision.campaign.clone(), decision.experiment.clone());
        self.state.decisions.insert(at, decision.clone());
    }

    fn set_paused(&mut self, campaign: &str, paused: bool) {
        self.changed = true;
        if paused {
            self.state.paused.insert(campaign.to_string());
        } else {
            self.state.paused.remove(campaign);
        }
    }

    fn park(&mut self, campaign: &str, candidate: &str) {
        self.changed = true;
        self.state
            .parked
            .insert((campaign.to_string(), candidate.to_string()));
    }

    fn unpark(&mut self, campaign: &str, candidate: &str) {
        self.changed = true;
        self.state
            .parked
            .remove(&(campaign.to_string(), candidate.to_string()));
    }

    fn parked(&self, campaign: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .state
            .parked
            .iter()
            .filter(|(c, _)| c == campaign)
            .map(|(_, candidate)| candidate.clone())
            .collect())
    }

    fn event_answer<A: DeserializeOwned>(
        &self,
        candidate: &str,
        event_id: &str,
    ) -> Result<Option<A>, StoreError> {
        let key = (candidate.to_string(), event_id.to_string());
        match self.state.events.get(&key) {
            Some(bytes) => postcard::from_bytes(bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    key: format!("event {event_id} of {candidate}"),
                    why: e.to_string(),
                }),
            None => Ok(None),
        }
    }

    fn suppression(&self, contact: &Contact) -> Result<Option<Suppression>, StoreError> {
        Ok(self.state.suppressions.get(contact).cloned())
    }

    fn suppress(&mut self, entry: &Suppression) {
        self.changed = true;
        self.state
            .suppressions
            .insert(entry.contact.clone(), entry.clone());
    }

    fn unsuppress(&mut self, contact: &Contact) {
        self.changed = true;
        self.state.suppressions.remove(contact);
    }

    fn remember_event<A: Serialize>(&mut self, candidate: &str, event_id: &str, answer: &A) {
        self.changed = true;
        let bytes = postcard::to_stdvec(answer).unwrap_or_default();
        self.state
            .events
            .insert((candidate.to_string(), event_id.to_string()), bytes);
    }

    fn pin_version(
        &mut self,
        campaign: &str,
        version: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        let key = (campaign.to_string(), version.to_string());
        if !self.state.versions.contains_key(&key) {
            self.changed = true;
            self.state.versions.insert(key, source.to_string());
        }
        Ok(())
    }

    fn set_digest_due(&mut self, due: Instant) {
        self.changed = true;
        self.state.digest_due = Some(due);
    }

    fn is_empty(&self) -> bool {
        !self.changed
    }

    fn commit(self) -> Result<(), StoreError> {
        if self.changed {
            *self.store.state() = self.state;
        }
        Ok(())
    }
}
