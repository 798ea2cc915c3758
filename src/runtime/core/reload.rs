//! Campaign reload and migration: enrollments moved onto a new version of
//! their campaign by state and variant names, and versions pinned.

use super::apply::{log, variant_names};
use super::*;

/// Live candidates that a set of campaigns would leave with nowhere to be:
/// in a campaign gone from the files, or in a state its version removes.
/// Reload refuses such a set, and so does every start on a store (the
/// daemon's, and the CLI's when it opens the store itself): the files may
/// have been edited while nothing ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stranded {
    pub campaign: String,
    /// The removed state; `None` when the whole campaign is gone.
    pub state: Option<String>,
    pub candidates: i64,
}

impl std::fmt::Display for Stranded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, campaign) = (self.candidates, &self.campaign);
        let s = if n == 1 { "" } else { "s" };
        match &self.state {
            None => write!(
                f,
                "campaign `{campaign}` is gone from the campaign files but {n} candidate{s} are still in it"
            ),
            Some(state) => write!(
                f,
                "campaign `{campaign}`: state `{state}` is removed but {n} candidate{s} wait in it"
            ),
        }
    }
}

/// A start refused because the campaign files strand candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrandedOnStart(pub Vec<Stranded>);

impl std::fmt::Display for StrandedOnStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "the campaign files leave candidates with nowhere to be; nothing was started or changed:"
        )?;
        for s in &self.0 {
            writeln!(f, "  {s}")?;
        }
        write!(
            f,
            "put the state (or campaign) back in the campaign files, or rename it back, and start again"
        )
    }
}

impl std::error::Error for StrandedOnStart {}

/// Refuses campaign files that strand candidates of `store` (the check
/// [`Core::reload`] makes), before anything is written.
pub fn check_start<S: Store>(store: &S, campaigns: &Campaigns) -> Result<(), StartRefusal> {
    let found = stranded(store, campaigns).map_err(StartRefusal::Store)?;
    if found.is_empty() {
        Ok(())
    } else {
        Err(StartRefusal::Stranded(StrandedOnStart(found)))
    }
}

/// Why a start on a store is refused.
#[derive(Debug)]
pub enum StartRefusal {
    Stranded(StrandedOnStart),
    Store(StoreError),
}

impl std::fmt::Display for StartRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartRefusal::Stranded(s) => s.fmt(f),
            StartRefusal::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for StartRefusal {}

/// Live candidates per state, per campaign.
pub type Waiting = BTreeMap<String, BTreeMap<String, i64>>;

/// The live candidates of `store` per campaign and state, from the
/// per-state counters (finished candidates are in none).
pub fn waiting<S: Store>(store: &S) -> Result<Waiting, StoreError> {
    let mut waiting = Waiting::new();
    for (campaign, counter, n) in store.all_counters()? {
        if let (Counter::State(state), true) = (counter, n > 0) {
            waiting.entry(campaign).or_default().insert(state, n);
        }
    }
    Ok(waiting)
}

/// The [`Stranded`] candidates of `store` under `campaigns`.
pub fn stranded<S: Store>(store: &S, campaigns: &Campaigns) -> Result<Vec<Stranded>, StoreError> {
    Ok(strandings(waiting(store)?, campaigns))
}

/// The [`Stranded`] among `waiting` under `campaigns`.
pub fn strandings(waiting: Waiting, campaigns: &Campaigns) -> Vec<Stranded> {
    let mut out = Vec::new();
    for (campaign, states) in waiting {
        match campaigns.get(&campaign) {
            None => out.push(Stranded {
                campaign,
                state: None,
                candidates: states.values().sum(),
            }),
            Some(c) => out.extend(
                states
                    .into_iter()
                    .filter(|(state, _)| c.machine.state_index(state).is_none())
                    .map(|(state, candidates)| Stranded {
                        campaign: campaign.clone(),
                        state: Some(state),
                        candidates,
                    }),
            ),
        }
    }
    out
}

/// Whether an enrollment's state index, as read from the store, names its
/// state in `machine`: the engine indexes the machine's states with it.
pub(super) fn placed(machine: &Machine, enr: &Enrollment) -> bool {
    machine
        .states
        .get(enr.engine.state)
        .is_some_and(|s| s.name == enr.state_name)
}

/// Moves an enrollment onto a new campaign version: the same-named state,
/// the same variants by name (new experiments assigned by the rule). An
/// enrollment whose state the new version lacks is left as it is, and
/// `false` returned: [`stranded`] keeps such a version from being loaded,
/// so this is only a last guard.
pub(super) fn migrate<T: Transaction>(
    txn: &mut T,
    enr: &mut Enrollment,
    campaign: &Campaign,
    now: Instant,
) -> Result<bool, StoreError> {
    let machine = &campaign.machine;
    let Some(index) = machine.state_index(&enr.state_name) else {
        return Ok(false);
    };
    let from = std::mem::replace(&mut enr.version, campaign.version.clone());
    enr.engine.state = index;
    let sends = machine.states[index].sends.len();
    enr.engine.next_send = enr.engine.next_send.min(sends);
    if enr.engine.next_send == sends {
        enr.engine.send_due = None;
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
    )?;
    Ok(true)
}

/// Arms the enrollment's timer at its next wake (its earlier timer, if
/// any, becomes stale; one already armed at that very instant is kept).
pub(super) fn rearm<T: Transaction>(txn: &mut T, enr: &mut Enrollment, machine: &Machine) {
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
    txn.arm(DueTimer {
        due,
        candidate: enr.candidate.clone(),
        campaign: enr.campaign.clone(),
        kind: TimerKind::of(&enr.engine, due),
    });
    enr.timer = Some(due);
}

/// Takes a paused (or orphaned) campaign's enrollment off the timers.
pub(super) fn park<T: Transaction>(txn: &mut T, enr: &mut Enrollment) {
    enr.timer = None;
    enr.parked = true;
    txn.disarm(&enr.candidate, &enr.campaign);
    txn.park(&enr.campaign, &enr.candidate);
}

impl<S: Store> Core<S> {
    /// Swaps in new campaign versions after checking that no candidate waits
    /// in a state the new version removes (then nothing changes). The
    /// candidates of a changed campaign move onto its new version at once,
    /// with their timers re-armed by it, so that a wait made shorter is not
    /// served at the old, later instant.
    pub fn reload(&mut self, new: Campaigns, now: Instant) -> Result<ReloadReport, Refusal> {
        let stranded = stranded(&self.store, &new)?;
        if !stranded.is_empty() {
            return Err(Refusal::ReloadWouldStrand(stranded));
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
        self.forget_needs();
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
        let mut txn = self.store.begin();
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
                if !migrate(&mut txn, &mut enr, campaign, now)? {
                    continue;
                }
                rearm(&mut txn, &mut enr, &campaign.machine);
                put_enrollment(&mut txn, &enr)?;
                moved += 1;
            }
            if moved >= CHUNK {
                moved = 0;
                std::mem::replace(&mut txn, self.store.begin()).commit()?;
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
        let mut txn = self.store.begin();
        for (name, c) in campaigns.iter() {
            txn.pin_version(name, &c.version, &c.source)?;
        }
        if !txn.is_empty() {
            txn.commit()?;
        }
        Ok(())
    }
}
