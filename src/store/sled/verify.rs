//! `nudge verify`: reads every record of a store and checks that its parts
//! agree: each record decodes; each armed timer is in a timer record and
//! each parked one has its marker; each send waiting for delivery is in a
//! journal record, and each waiting for a retry has its retry key; the
//! counters equal what a full count of the dossiers gives; the store stands
//! whole against its commit ledger. A full scan: for an operator, not for
//! the daemon's start.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::ledger::Standing;
use super::*;
use crate::store::LogKind;

/// What `nudge verify` found.
#[derive(Debug, Default)]
pub struct Verified {
    /// Records read.
    pub records: usize,
    /// Dossiers read.
    pub candidates: usize,
    /// The store's last commit (0: none recorded).
    pub commit: u64,
    /// What is wrong, one line each; empty when the store is whole.
    pub problems: Vec<String>,
}

/// At most this many problems of one kind are listed one by one.
const LISTED: usize = 20;

/// Checks the store in `path` (see the module header). An error is a
/// store that cannot be read at all (locked, not a store, sled failing).
pub fn verify(path: &Path) -> Result<Verified, StoreError> {
    let (store, standing) = SledStore::open_as(path, 64 << 20, false)?;
    guard::guarded(path, || scan(&store, standing))
}

/// Problems grouped by kind, so a thousand alike read as one line and a
/// count.
#[derive(Default)]
struct Problems(BTreeMap<&'static str, Vec<String>>);

impl Problems {
    fn add(&mut self, kind: &'static str, what: String) {
        self.0.entry(kind).or_default().push(what);
    }

    fn lines(self) -> Vec<String> {
        let mut out = Vec::new();
        for (kind, all) in self.0 {
            for what in all.iter().take(LISTED) {
                out.push(format!("{kind}: {what}"));
            }
            if all.len() > LISTED {
                out.push(format!("{kind}: and {} more", all.len() - LISTED));
            }
        }
        out
    }
}

fn scan(store: &SledStore, standing: Standing) -> Result<Verified, StoreError> {
    let mut problems = Problems::default();
    let mut found = Verified::default();
    match standing {
        Standing::Whole => {}
        Standing::RolledBack {
            kept,
            acknowledged,
            deliveries,
        } => problems.add(
            "lost commits",
            format!(
                "the store ends at commit {kept}, but the ledger `{LEDGER_FILE}` saw commits up to {acknowledged} acknowledged ({deliveries} deliveries among them)"
            ),
        ),
        Standing::Diverged(why) => problems.add("ledger", why),
    }
    // (candidate, campaign, due ms) of every timer entry.
    let mut timers: BTreeSet<(String, String, i64)> = BTreeSet::new();
    let mut parked: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut retries: BTreeSet<String> = BTreeSet::new();
    let mut journal: BTreeSet<String> = BTreeSet::new();
    let mut counters: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut counted: BTreeMap<(String, String), i64> = BTreeMap::new();
    // What the dossiers expect elsewhere.
    let mut armed: Vec<(String, String, i64)> = Vec::new();
    let mut parked_wanted: Vec<(String, String)> = Vec::new();
    let mut waiting: Vec<String> = Vec::new();
    let mut retrying: Vec<String> = Vec::new();
    for item in store.db()?.iter() {
        let (k, v) = item?;
        found.records += 1;
        let shown = k.escape_ascii().to_string();
        let mut damaged = |why: String| problems.add("damaged record", format!("`{shown}`: {why}"));
        match k.first() {
            Some(b'm') => match &k[1..] {
                b"schema" if v.len() != 4 => damaged("the layout marker is not 4 bytes".into()),
                b"commit" => match ledger::Mark::from_bytes(&v) {
                    Some(m) => found.commit = m.seq,
                    None => damaged("the commit mark is not 16 bytes".into()),
                },
                _ => {}
            },
            Some(b'c') => {
                let Some(id) = key::candidate_id(&k) else {
                    damaged("not a candidate key".into());
                    continue;
                };
                let d: Dossier = match super::dossier_record::decode(&v) {
                    Ok(d) => d,
                    Err(e) => {
                        damaged(e.to_string());
                        continue;
                    }
                };
                found.candidates += 1;
                if d.candidate.id != id {
                    damaged(format!("holds the candidate `{}`", d.candidate.id));
                }
                let history = match d.history.items() {
                    Ok(h) => h,
                    Err(e) => {
                        damaged(format!("its history does not decode: {e}"));
                        Vec::new()
                    }
                };
                let sends = match d.sends() {
                    Ok(s) => s,
                    Err(e) => {
                        damaged(format!("its settled sends do not decode: {e}"));
                        Vec::new()
                    }
                };
                // Its traces hold what its history says, unless the
                // history was pruned (the traces keep what pruning took);
                // a record of an earlier layout has none of its own.
                if !super::dossier_record::has_traces(&v) {
                    problems.add(
                        "report traces missing",
                        format!("{id}'s record carries no report traces"),
                    );
                } else if !history
                    .iter()
                    .any(|e| matches!(e.kind, LogKind::Pruned { .. }))
                    && crate::store::traces_of(&d).is_ok_and(|made| made != d.traces)
                {
                    problems.add(
                        "report traces disagree",
                        format!("{id}'s report traces do not match their history"),
                    );
                }
                let mut exited = BTreeSet::new();
                for entry in &history {
                    if let LogKind::Exited { outcome, .. } = &entry.kind {
                        exited.insert(entry.campaign.clone());
                        *counted
                            .entry((entry.campaign.clone(), format!("outcome:{outcome}")))
                            .or_default() += 1;
                    }
                }
                for e in &d.enrollments {
                    if !exited.contains(&e.campaign) {
                        *counted
                            .entry((e.campaign.clone(), format!("state:{}", e.state_name)))
                            .or_default() += 1;
                    }
                    match (e.timer, e.parked) {
                        (_, true) => parked_wanted.push((e.campaign.clone(), id.clone())),
                        (Some(t), false) => {
                            armed.push((id.clone(), e.campaign.clone(), t.timestamp_millis()))
                        }
                        (None, false) => {}
                    }
                }
                for s in &sends {
                    match (&s.status, s.retry_at) {
                        (SendStatus::Queued, None) => waiting.push(s.message.key.clone()),
                        (SendStatus::Queued, Some(_)) => retrying.push(s.message.key.clone()),
                        (SendStatus::Failed(_), _) => {
                            *counted
                                .entry((s.message.campaign.clone(), "failed".into()))
                                .or_default() += 1;
                        }
                        _ => {}
                    }
                }
            }
            Some(b'e') => problems.add(
                "a record of an earlier layout",
                format!("`{shown}`: report traces under an `e` key (layout 7)"),
            ),
            Some(b't') => match decode::<Vec<TimerEntry>>(&k, &v) {
                Ok(entries) => timers.extend(
                    entries
                        .into_iter()
                        .map(|e| (e.candidate, e.campaign, e.due)),
                ),
                Err(e) => damaged(e.to_string()),
            },
            Some(b'z') => {
                parked.insert(k.to_vec());
            }
            Some(b'a') => {
                if let Err(e) = super::answers::decode(&k, &v) {
                    damaged(e.to_string());
                }
            }
            Some(b'y') if identities::decode(&v).is_none() => {
                damaged(format!("an identity record of {} bytes", v.len()));
            }
            Some(b'q' | b'f') => match decode::<Vec<String>>(&k, &v) {
                Ok(keys) => journal.extend(keys),
                Err(e) => damaged(e.to_string()),
            },
            Some(b'r') => match k.get(9..) {
                Some(send) if k.len() > 9 => {
                    retries.insert(String::from_utf8_lossy(send).into_owned());
                }
                _ => damaged("a retry key without its send".into()),
            },
            Some(b'n') => {
                if v.len() != 8 {
                    damaged(format!("a counter of {} bytes", v.len()));
                } else if let Some(pair) = key::split_pair(&k[1..]) {
                    counters.insert(pair, counter_value(&v));
                }
            }
            _ => {}
        }
    }
    for (candidate, campaign, due) in armed {
        if !timers.contains(&(candidate.clone(), campaign.clone(), due)) {
            problems.add(
                "timer missing",
                format!("{candidate} in `{campaign}` waits for a timer at {} that no timer record holds", Instant::from_timestamp_millis(due).unwrap_or_default().to_rfc3339()),
            );
        }
    }
    for (campaign, candidate) in parked_wanted {
        if !parked.contains(&key::parked(&campaign, &candidate)) {
            problems.add(
                "parked timer missing",
                format!("{candidate} is parked in `{campaign}` without its marker"),
            );
        }
    }
    for k in waiting {
        if !journal.contains(&k) {
            problems.add(
                "send not journaled",
                format!("`{k}` waits for delivery but no journal record lists it"),
            );
        }
    }
    for k in retrying {
        if !retries.contains(&k) {
            problems.add(
                "retry missing",
                format!("`{k}` waits for a retry that no retry key holds"),
            );
        }
    }
    let names: BTreeSet<&(String, String)> = counters.keys().chain(counted.keys()).collect();
    for pair in names {
        let (campaign, name) = pair;
        if !(name.starts_with("state:") || name.starts_with("outcome:") || name == "failed") {
            continue;
        }
        let stored = counters.get(pair).copied().unwrap_or(0);
        let real = counted.get(pair).copied().unwrap_or(0);
        if stored != real {
            problems.add(
                "counter",
                format!("`{campaign}` {name} is {stored}, a full count gives {real}"),
            );
        }
    }
    found.problems = problems.lines();
    Ok(found)
}
