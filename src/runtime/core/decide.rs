//! Deciding an `until decided` experiment: the decision stored in one
//! commit, never taken back, and new enrollments given its winner.
//!
//! The daemon's decider (`runtime::decider`) computes the experiment's
//! table and asks for a decision through [`Command::Decide`]; the core
//! checks it against the campaign running now and stores it unless one is
//! stored already (the first decision stands: a later one is answered
//! with it). Enrolling reads the decisions of the campaign's `until
//! decided` experiments ([`Core::decided_variants`]); an experiment that is
//! no longer `until decided` keeps its stored decision, unapplied.

use super::*;
use crate::engine::machine::Experiment;
use crate::store::Decision;

/// What the decider asks the core to store.
#[derive(Debug, Clone)]
pub struct DecideRequest {
    pub campaign: String,
    pub experiment: String,
    pub winner: String,
    /// Why, in words, with the numbers.
    pub because: String,
}

/// The core's answer to a [`DecideRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// Stored now.
    Stored(Decision),
    /// A decision was stored before: it stands.
    Already(Decision),
    /// Not stored: the campaign running now has no such `until decided`
    /// experiment or variant (it was edited meanwhile).
    Refused(String),
}

impl<S: Store> Core<S> {
    pub(super) fn decide(
        &self,
        txn: &mut Txn<S>,
        req: &DecideRequest,
        now: Instant,
    ) -> Result<Decided, StoreError> {
        let Some(campaign) = self.campaigns.get(&req.campaign) else {
            return Ok(Decided::Refused(format!(
                "no campaign `{}` is running",
                req.campaign
            )));
        };
        let machine = &campaign.machine;
        let Some(experiment) = machine
            .experiments
            .iter()
            .find(|e| e.name == req.experiment)
        else {
            return Ok(Decided::Refused(format!(
                "campaign `{}` has no experiment `{}`",
                req.campaign, req.experiment
            )));
        };
        if !experiment.until_decided {
            return Ok(Decided::Refused(format!(
                "experiment `{}` of campaign `{}` is not `until decided`",
                req.experiment, req.campaign
            )));
        }
        if !experiment.variants.iter().any(|(v, _)| *v == req.winner) {
            return Ok(Decided::Refused(format!(
                "experiment `{}` of campaign `{}` has no variant `{}`",
                req.experiment, req.campaign, req.winner
            )));
        }
        if let Some(stored) = txn.decision(&req.campaign, &req.experiment)? {
            return Ok(Decided::Already(stored));
        }
        let decision = Decision {
            campaign: req.campaign.clone(),
            experiment: req.experiment.clone(),
            winner: req.winner.clone(),
            at_ms: now.timestamp_millis(),
            because: req.because.clone(),
        };
        txn.decide(&decision);
        tracing::info!(
            campaign = %decision.campaign,
            experiment = %decision.experiment,
            winner = %decision.winner,
            because = %decision.because,
            "experiment decided"
        );
        Ok(Decided::Stored(decision))
    }

    /// The variant index of each of the machine's experiments for a new
    /// enrollment: the winner of a decided `until decided` experiment,
    /// else the stable assignment.
    pub(super) fn decided_variants(
        &self,
        txn: &Txn<S>,
        machine: &Machine,
        candidate: &str,
    ) -> Result<Vec<usize>, StoreError> {
        machine
            .experiments
            .iter()
            .map(|e| {
                Ok(match winner(txn, &machine.name, e)? {
                    Some(index) => index,
                    None => engine::assign_variant(&machine.name, e, candidate),
                })
            })
            .collect()
    }
}

/// The index of a decided `until decided` experiment's winner.
fn winner<T: Transaction>(
    txn: &T,
    campaign: &str,
    experiment: &Experiment,
) -> Result<Option<usize>, StoreError> {
    if !experiment.until_decided {
        return Ok(None);
    }
    let Some(decision) = txn.decision(campaign, &experiment.name)? else {
        return Ok(None);
    };
    Ok(experiment
        .variants
        .iter()
        .position(|(v, _)| *v == decision.winner))
}
