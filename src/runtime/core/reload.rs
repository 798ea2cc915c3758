//! Campaign reload and migration: enrollments moved onto a new version of
//! their campaign by state and variant names, and versions pinned.

use super::apply::{log, variant_names};
use super::*;

/// Moves an enrollment onto a new campaign version: the same-named state,
/// the same variants by name (new experiments assigned by the rule).
pub(super) fn migrate(
    txn: &mut Txn,
    enr: &mut Enrollment,
    campaign: &Campaign,
    now: Instant,
) -> Result<(), StoreError> {
    let machine = &campaign.machine;
    let from = std::mem::replace(&mut enr.version, campaign.version.clone());
    if let Some(index) = machine.state_index(&enr.state_name) {
        enr.engine.state = index;
        let sends = machine.states[index].sends.len();
        enr.engine.next_send = enr.engine.next_send.min(sends);
        if enr.engine.next_send == sends {
            enr.engine.send_due = None;
        }
    }
    let variants: Vec<usize> = machine
        .experiments
        .iter()
        .map(|e| {
            enr.variants
                .get(&e.name)
                .and_then(|v| e.variants.iter().position(|(n, _)| n == v))
                .unwrap_or_else(|| engine::assign_variant(&machine.name, e, &enr.candidate))
        })
        .collect();
    enr.variants = variant_names(machine, &variants);
    enr.engine.variants = variants;
    log(
        txn,
        &enr.candidate,
        LogEntry {
            at: now,
            campaign: enr.campaign.clone(),
            kind: LogKind::Migrated {
                from_version: from,
                to_version: campaign.version.clone(),
            },
        },
    )
}

/// Arms the enrollment's timer at its next wake (its earlier timer, if
/// any, becomes stale; one already armed at that very instant is kept).
pub(super) fn rearm(txn: &mut Txn, enr: &mut Enrollment, machine: &Machine) {
    let armed = enr.timer.take();
    let next = if enr.parked {
        None
    } else {
        engine::next_due(machine, &enr.engine)
    };
    let Some(due) = next else {
        txn.disarm(&enr.candidate, &enr.campaign);
        return;
    };
    if armed == Some(due) {
        enr.timer = armed;
        return;
    }
    let kind = if enr.engine.send_due == Some(due) {
        if enr.engine.held_until == Some(due) {
            TimerKind::Held
        } else {
            TimerKind::Send
        }
    } else {
        TimerKind::Transition
    };
    txn.arm(TimerEntry {
        due: due.timestamp_millis(),
        candidate: enr.candidate.clone(),
        campaign: enr.campaign.clone(),
        kind,
    });
    enr.timer = Some(due);
}

/// Takes a paused (or orphaned) campaign's enrollment off the timers.
pub(super) fn park(txn: &mut Txn, enr: &mut Enrollment) {
    enr.timer = None;
    enr.parked = true;
    txn.disarm(&enr.candidate, &enr.campaign);
    txn.put_raw(key::parked(&enr.campaign, &enr.candidate), Vec::new());
}

impl Core {
    /// Swaps in new campaign versions after checking that no candidate waits
    /// in a state the new version removes (then nothing changes). The
    /// candidates of a changed campaign move onto its new version at once,
    /// with their timers re-armed by it, so that a wait made shorter is not
    /// served at the old, later instant.
    pub fn reload(&mut self, new: Campaigns, now: Instant) -> Result<ReloadReport, ApiError> {
        let mut refusals = Vec::new();
        for (name, old) in self.campaigns.iter() {
            let counts = self.state_counts(name)?;
            let waiting: Vec<(&String, i64)> = counts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(s, n)| (s, *n))
                .collect();
            match new.get(name) {
                None if !waiting.is_empty() => refusals.push(format!(
                    "campaign `{name}` is gone from the campaign files but {} candidates are still in it",
                    waiting.iter().map(|(_, n)| n).sum::<i64>()
                )),
                Some(c) => {
                    for (state, n) in waiting {
                        if c.machine.state_index(state).is_none() {
                            refusals.push(format!(
                                "campaign `{name}`: state `{state}` is removed but {n} candidate{} wait in it",
                                if n == 1 { "" } else { "s" }
                            ));
                        }
                    }
                    let _ = old;
                }
                None => {}
            }
        }
        if !refusals.is_empty() {
            return Err(ApiError::conflict(format!(
                "reload refused, the running version is kept: {}",
                refusals.join("; ")
            )));
        }
        let changed: Vec<String> = new
            .iter()
            .filter(|(n, c)| self.campaigns.get(n).is_none_or(|o| o.version != c.version))
            .map(|(n, _)| n.clone())
            .chain(
                self.campaigns
                    .iter()
                    .filter(|(n, _)| new.get(n).is_none())
                    .map(|(n, _)| n.clone()),
            )
            .collect();
        self.pin_versions(&new)?;
        self.migrate_all(&new, &changed, now)?;
        self.campaigns = new;
        Ok(ReloadReport {
            changed,
            campaigns: self.campaigns.iter().map(|(n, _)| n.clone()).collect(),
        })
    }

    /// Moves every live enrollment of the `changed` campaigns onto its
    /// version in `new` and re-arms its timer, in commits of a bounded size
    /// (each enrollment moves whole; one missed by a crash moves when its
    /// old timer fires). A record that does not decode is left as it is:
    /// the timer that reaches it reports it.
    pub(super) fn migrate_all(
        &self,
        new: &Campaigns,
        changed: &[String],
        now: Instant,
    ) -> Result<(), StoreError> {
        const CHUNK: usize = 10_000;
        let mut txn = Txn::new(&self.store);
        let mut moved = 0;
        for dossier in self.store.dossiers() {
            let Ok(dossier) = dossier else {
                continue;
            };
            for mut enr in dossier.enrollments {
                let Some(campaign) = new.get(&enr.campaign) else {
                    continue;
                };
                if !changed.contains(&enr.campaign)
                    || enr.engine.outcome.is_some()
                    || enr.version == campaign.version
                {
                    continue;
                }
                migrate(&mut txn, &mut enr, campaign, now)?;
                rearm(&mut txn, &mut enr, &campaign.machine);
                txn.put_enrollment(&enr)?;
                moved += 1;
            }
            if moved >= CHUNK {
                moved = 0;
                std::mem::replace(&mut txn, Txn::new(&self.store)).commit()?;
            }
        }
        if !txn.is_empty() {
            txn.commit()?;
        }
        Ok(())
    }

    /// Stores the source of every loaded campaign version, so enrollments'
    /// pinned versions can always be read back.
    pub fn pin_versions(&self, campaigns: &Campaigns) -> Result<(), StoreError> {
        let mut txn = Txn::new(&self.store);
        for (name, c) in campaigns.iter() {
            let k = key::version(name, &c.version);
            if self.store.get_raw(&k)?.is_none() {
                txn.put_raw(k, c.source.as_bytes().to_vec());
            }
        }
        if !txn.is_empty() {
            txn.commit()?;
        }
        Ok(())
    }
}
