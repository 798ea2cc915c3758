//! From the engine's decisions (indexes into one machine) to the facts
//! history keeps (names, with their values), so that a cause reads the same
//! after the campaign is edited.

use crate::engine::machine::Machine;
use crate::engine::step::{CancelReason, HoldReason, Lateness, Trigger as EngineTrigger};
use crate::engine::Channel;
use crate::store::causes::{Cancel, Hold, Late, Skip, Trigger};

/// What moved a candidate, by name.
pub fn trigger(machine: &Machine, by: &EngineTrigger) -> Trigger {
    match by {
        EngineTrigger::Event(e) => Trigger::Event(e.clone()),
        EngineTrigger::After(secs) => Trigger::After { secs: *secs },
        EngineTrigger::AtDeadline => Trigger::AtDeadline,
        EngineTrigger::BeforeDeadline(secs) => Trigger::BeforeDeadline { secs: *secs },
        EngineTrigger::Split {
            experiment,
            variant,
        } => {
            let exp = machine.experiments.get(*experiment);
            Trigger::Split {
                experiment: exp.map_or_else(|| "?".into(), |e| e.name.clone()),
                variant: exp
                    .and_then(|e| e.variants.get(*variant))
                    .map_or_else(|| "?".into(), |v| v.0.clone()),
            }
        }
    }
}

/// Why a send in `state` waits, with the window or limit as written.
pub fn hold(machine: &Machine, state: usize, reason: HoldReason) -> Hold {
    match reason {
        HoldReason::Window => Hold::Window {
            window: machine
                .states
                .get(state)
                .and_then(|s| s.window.as_ref())
                .or(machine.window.as_ref())
                .map(|w| w.text.clone()),
        },
        HoldReason::Limit(i) => match machine.rate_limits.get(i) {
            Some(l) => Hold::Limit {
                count: l.count,
                period_secs: l.period_secs,
            },
            None => Hold::Limit {
                count: 0,
                period_secs: 0,
            },
        },
    }
}

/// Why a decided send was dropped.
pub fn cancel(machine: &Machine, reason: &CancelReason) -> Cancel {
    match reason {
        CancelReason::Left(by) => Cancel::Left(trigger(machine, by)),
        CancelReason::Exited(outcome) => Cancel::Exited(outcome.clone()),
    }
}

/// Why a send was passed over: no address for its `via`, or none on any of
/// the campaign's channels.
pub fn skip(machine: &Machine, via: Option<Channel>) -> Skip {
    match via {
        Some(c) => Skip::NoAddressFor(c),
        None => Skip::NoAddress(machine.channels.clone()),
    }
}

/// Why a send was too late to go.
pub fn late(why: &Lateness) -> Late {
    match *why {
        Lateness::AfterDeadline { deadline } => Late::AfterDeadline {
            deadline: deadline.timestamp_millis(),
        },
        Lateness::Stale {
            due,
            leaves,
            limit_secs,
        } => Late::Stale {
            due: due.timestamp_millis(),
            leaves: leaves.timestamp_millis(),
            limit_secs,
        },
    }
}
