//! Retention: the history of candidates who finished long ago is pruned,
//! their outcome kept. A candidate qualifies once every enrollment they
//! have has an outcome, no send of theirs is unsettled, and they finished
//! (their last exit) more than the retention period ago. Their history
//! then keeps only the entries that say who they are and how it ended
//! (created, enrolled, the last state entered and the exit of each
//! campaign), and a `Pruned` entry dated the day it ran; their settled
//! sends go. Their enrollments (final state, outcome, instants) and the
//! campaigns' counters are not touched.
//!
//! The daemon prunes while idle, a chunk of dossiers at a time in its own
//! commits ([`Core::prune_some`]), walking the store in key order and
//! starting over at the end, so no pass holds the core for long or keeps
//! more than a chunk of dossiers in memory.

use super::*;

/// How far the walk over the dossiers has come, and the setting.
#[derive(Debug, Default)]
pub struct Retention {
    /// History is kept this long after a candidate finished (forever when
    /// `None`).
    keep: Option<Duration>,
    /// The last candidate looked at (the walk starts after them).
    after: Option<String>,
}

/// Dossiers read per chunk (and at most as many pruned per commit).
pub const PRUNE_CHUNK: usize = 256;

/// What one chunk did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Dossiers looked at.
    pub read: usize,
    /// Candidates whose history was pruned.
    pub pruned: usize,
    /// Whether the walk reached the end of the store (the next chunk
    /// starts over).
    pub wrapped: bool,
}

impl<S: Store> Core<S> {
    /// Keeps the history of finished candidates for `keep` after they
    /// finished, then prunes it (`None`: forever, the default).
    pub fn set_retention(&mut self, keep: Option<Duration>) {
        self.retention.keep = keep;
    }

    /// Whether a retention period is set.
    pub fn prunes(&self) -> bool {
        self.retention.keep.is_some()
    }

    /// Looks at the next `limit` dossiers and prunes the history of those
    /// that finished more than the retention period before `now`, in one
    /// commit. Nothing when no period is set.
    pub fn prune_some(&mut self, now: Instant, limit: usize) -> Result<Pruned, StoreError> {
        let Some(keep) = self.retention.keep else {
            return Ok(Pruned::default());
        };
        let cutoff = now - keep;
        let chunk = self
            .store
            .dossiers_after(self.retention.after.as_deref(), limit.max(1))?;
        let mut done = Pruned {
            read: chunk.len(),
            wrapped: chunk.len() < limit.max(1),
            ..Pruned::default()
        };
        self.retention.after = if done.wrapped {
            None
        } else {
            chunk.last().map(|(id, _)| id.clone())
        };
        let mut txn = self.store.begin();
        for (id, dossier) in chunk {
            // One that does not decode is left as it is (the timer or the
            // command that reaches it reports it).
            let Some(dossier) = dossier else { continue };
            if let Some(kept) = pruned_history(&dossier, cutoff, now)? {
                txn.replace_history(&id, &kept)?;
                done.pruned += 1;
            }
        }
        if !txn.is_empty() {
            txn.commit()?;
        }
        Ok(done)
    }
}

/// The history to keep of a candidate who finished before `cutoff`, with
/// the `Pruned` entry of `now` last, or `None` when they do not qualify
/// (still in a campaign, a send unsettled, finished since, or nothing left
/// to prune).
fn pruned_history(
    d: &crate::store::Dossier,
    cutoff: Instant,
    now: Instant,
) -> Result<Option<Vec<LogEntry>>, StoreError> {
    let finished = !d.enrollments.is_empty()
        && d.enrollments.iter().all(|e| e.engine.outcome.is_some())
        && d.outbox.is_empty();
    // The engine's clock is at or after the exit: a cheap first look, before
    // the history is decoded.
    if !finished
        || d.enrollments
            .iter()
            .any(|e| e.engine.clock.max(e.engine.entered_at) >= cutoff)
    {
        return Ok(None);
    }
    let history = d
        .history
        .items()
        .map_err(|e| StoreError::damaged_dossier(&d.candidate.id, e))?;
    let finished_at = history
        .iter()
        .filter(|e| matches!(e.kind, LogKind::Exited { .. }))
        .map(|e| e.at)
        .max();
    if finished_at.is_some_and(|at| at >= cutoff) {
        return Ok(None);
    }
    // The last state each campaign entered.
    let last_entered: HashSet<usize> = {
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, e) in history.iter().enumerate() {
            if matches!(
                e.kind,
                LogKind::Entered { .. } | LogKind::LegacyEntered { .. }
            ) {
                last.insert(e.campaign.as_str(), i);
            }
        }
        last.into_values().collect()
    };
    let keeps = |i: usize, e: &LogEntry| {
        last_entered.contains(&i)
            || matches!(
                e.kind,
                LogKind::Created { .. }
                    | LogKind::Enrolled { .. }
                    | LogKind::Exited { .. }
                    | LogKind::Pruned { .. }
            )
    };
    let mut kept: Vec<LogEntry> = history
        .iter()
        .enumerate()
        .filter(|(i, e)| keeps(*i, e))
        .map(|(_, e)| e.clone())
        .collect();
    let settled = d.settled.items().map_or(0, |s| s.len());
    if kept.len() == history.len() && settled == 0 {
        return Ok(None);
    }
    kept.push(LogEntry {
        at: now,
        campaign: String::new(),
        kind: LogKind::Pruned {
            entries: (history.len() - kept.len()) as u32,
            sends: settled as u32,
        },
    });
    Ok(Some(kept))
}
