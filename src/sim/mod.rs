//! `nudge simulate`: one candidate through a campaign on a virtual clock,
//! driven by the same [`engine::step`](crate::engine::step) the daemon uses.
//! No network, no store, no template files.

pub mod batch;
pub mod output;

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::engine::{
    self, Candidate, Ctx, Fields, Happening, Input, Instant, Leaving, Machine, Record,
};

/// What to simulate: who, from when, which events, until when.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// When the `applied` event (or the explicit enrollment) arrives.
    pub start: Instant,
    pub candidate: Candidate,
    /// Events in the order given; they are applied in time order, and in
    /// the order given at equal instants.
    pub events: Vec<(String, Instant)>,
    /// `--variant EXPERIMENT=VARIANT`: forced instead of the stable rule.
    pub variants: Vec<(String, String)>,
    /// Everything due at or before this instant is processed.
    pub until: Instant,
}

/// A scenario the campaign cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScenarioError {
    UnknownExperiment {
        name: String,
        known: Vec<String>,
    },
    UnknownVariant {
        experiment: String,
        name: String,
        known: Vec<String>,
    },
    EventBeforeStart {
        event: String,
        at: Instant,
    },
    /// A `--decided EXPERIMENT=VARIANT@OFFSET` the campaign cannot take.
    BadDecided {
        experiment: String,
        winner: String,
        why: String,
    },
}

/// `--decided EXPERIMENT=VARIANT@OFFSET`: an `until decided` experiment
/// decided for `winner` at `at`, as the daemon would decide it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecidedAt {
    pub experiment: String,
    pub winner: String,
    pub at: Instant,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScenarioError::UnknownExperiment { name, known } if known.is_empty() => {
                write!(f, "`--variant {name}=...`: the campaign has no experiments")
            }
            ScenarioError::UnknownExperiment { name, known } => write!(
                f,
                "`--variant {name}=...`: no experiment `{name}` (experiments: {})",
                known.join(", ")
            ),
            ScenarioError::UnknownVariant {
                experiment,
                name,
                known,
            } => write!(
                f,
                "`--variant {experiment}={name}`: experiment `{experiment}` has no variant `{name}` (variants: {})",
                known.join(", ")
            ),
            ScenarioError::BadDecided {
                experiment,
                winner,
                why,
            } => write!(f, "`--decided {experiment}={winner}@...`: {why}"),
            ScenarioError::EventBeforeStart { event, at } => write!(
                f,
                "event `{event}` at {} falls before `--start`; events must come at or after it",
                rfc3339(*at)
            ),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// One line of a simulated timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The `where` filter rejected the candidate.
    NotEnrolled {
        at: Instant,
    },
    Record(Record),
    /// Still in the campaign when the run stopped.
    Pending {
        at: Instant,
        state: usize,
    },
}

/// The result of a simulation.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// The zone the candidate's windows were read in.
    pub zone: Tz,
    /// Variant index per experiment (empty when not enrolled).
    pub variants: Vec<usize>,
    pub lines: Vec<Line>,
}

impl Timeline {
    /// The candidate's final outcome, if they exited.
    pub fn outcome(&self) -> Option<&str> {
        self.lines.iter().find_map(|l| match l {
            Line::Record(Record {
                what: Happening::Exited { outcome, .. },
                ..
            }) => Some(outcome.as_str()),
            _ => None,
        })
    }
}

/// The variant index of every experiment for this candidate: forced where
/// the scenario says so, else by the stable SHA-256 rule.
pub fn variants_for(
    machine: &Machine,
    candidate: &Candidate,
    forced: &[(String, String)],
) -> Result<Vec<usize>, ScenarioError> {
    for (exp, _) in forced {
        if machine.experiment_index(exp).is_none() {
            return Err(ScenarioError::UnknownExperiment {
                name: exp.clone(),
                known: machine.experiments.iter().map(|e| e.name.clone()).collect(),
            });
        }
    }
    machine
        .experiments
        .iter()
        .map(
            |exp| match forced.iter().rev().find(|(e, _)| *e == exp.name) {
                Some((_, variant)) => exp
                    .variants
                    .iter()
                    .position(|(v, _)| v == variant)
                    .ok_or_else(|| ScenarioError::UnknownVariant {
                        experiment: exp.name.clone(),
                        name: variant.clone(),
                        known: exp.variants.iter().map(|(v, _)| v.clone()).collect(),
                    }),
                None => Ok(engine::assign_variant(&machine.name, exp, &candidate.id)),
            },
        )
        .collect()
}

/// The variant index of every experiment for a candidate enrolled at
/// `start`: forced where `forced` says so (`--variant` wins over
/// everything), else the winner of an experiment decided at or before
/// `start`, else by the stable SHA-256 rule.
pub fn variants_decided(
    machine: &Machine,
    candidate: &Candidate,
    forced: &[(String, String)],
    decided: &[DecidedAt],
    start: Instant,
) -> Result<Vec<usize>, ScenarioError> {
    let winners = decided_winners(machine, decided)?;
    let mut variants = variants_for(machine, candidate, forced)?;
    for (index, (exp, slot)) in machine.experiments.iter().zip(&mut variants).enumerate() {
        if forced.iter().any(|(e, _)| *e == exp.name) {
            continue;
        }
        let winner = winners
            .iter()
            .rev()
            .find(|(i, _, at)| *i == index && *at <= start);
        if let Some((_, w, _)) = winner {
            *slot = *w;
        }
    }
    Ok(variants)
}

/// Each decision as (experiment index, winner index, instant), checked
/// against the campaign.
fn decided_winners(
    machine: &Machine,
    decided: &[DecidedAt],
) -> Result<Vec<(usize, usize, Instant)>, ScenarioError> {
    decided
        .iter()
        .map(|d| {
            let bad = |why: String| ScenarioError::BadDecided {
                experiment: d.experiment.clone(),
                winner: d.winner.clone(),
                why,
            };
            let Some(index) = machine.experiment_index(&d.experiment) else {
                let known: Vec<&str> = machine.experiments.iter().map(|e| e.name.as_str()).collect();
                return Err(bad(if known.is_empty() {
                    "the campaign has no experiments".into()
                } else {
                    format!("no experiment `{}` (experiments: {})", d.experiment, known.join(", "))
                }));
            };
            let exp = &machine.experiments[index];
            if !exp.until_decided {
                return Err(bad(format!(
                    "experiment `{}` is not `until decided`; write `experiment {} {{ ... }} until decided`",
                    exp.name, exp.name
                )));
            }
            let Some(winner) = exp.variants.iter().position(|(v, _)| *v == d.winner) else {
                let known: Vec<&str> = exp.variants.iter().map(|(v, _)| v.as_str()).collect();
                return Err(bad(format!(
                    "experiment `{}` has no variant `{}` (variants: {})",
                    exp.name,
                    d.winner,
                    known.join(", ")
                )));
            };
            Ok((index, winner, d.at))
        })
        .collect()
}

/// Runs the scenario to `until` or to the candidate's exit.
pub fn run(machine: &Machine, scenario: &Scenario) -> Result<Timeline, ScenarioError> {
    run_decided(machine, scenario, &[])
}

/// [`run`], with `until decided` experiments decided at given instants: a
/// candidate enrolled at or after a decision gets its winner.
pub fn run_decided(
    machine: &Machine,
    scenario: &Scenario,
    decided: &[DecidedAt],
) -> Result<Timeline, ScenarioError> {
    let candidate = &scenario.candidate;
    let zone = candidate.zone(&machine.zone);
    if let Some((event, at)) = scenario.events.iter().find(|(_, at)| *at < scenario.start) {
        return Err(ScenarioError::EventBeforeStart {
            event: event.clone(),
            at: *at,
        });
    }
    let variants = variants_decided(
        machine,
        candidate,
        &scenario.variants,
        decided,
        scenario.start,
    )?;
    if !machine.accepts(candidate) {
        return Ok(Timeline {
            zone,
            variants: Vec::new(),
            lines: vec![Line::NotEnrolled { at: scenario.start }],
        });
    }
    let mut events: Vec<&(String, Instant)> = scenario.events.iter().collect();
    events.sort_by_key(|(_, at)| *at); // stable: equal instants keep their order
    let mut events = events.into_iter().peekable();

    // Each send leaves at its own instant: only the deadline makes one late.
    let ctx = Ctx {
        candidate,
        zone,
        other_sends: &[],
        leaving: Leaving::default(),
    };
    let no_fields = Fields::new();
    let first = engine::enroll(machine, &ctx, variants.clone(), scenario.start);
    let mut lines: Vec<Line> = first.records.into_iter().map(Line::Record).collect();
    let mut state = first.state;
    let mut wake = first.next_wake;
    while state.outcome.is_none() {
        let next_event = events.peek().map(|(_, at)| *at);
        let step = match (next_event, wake) {
            // Events received at an instant go before timers and sends due then.
            (Some(e), w) if e <= scenario.until && w.is_none_or(|w| e <= w) => {
                let Some((name, at)) = events.next() else {
                    break;
                };
                let input = Input::Event {
                    name,
                    fields: &no_fields,
                };
                engine::step(machine, &ctx, state, input, *at)
            }
            (_, Some(w)) if w <= scenario.until => {
                engine::step(machine, &ctx, state, Input::Wake, w)
            }
            _ => break,
        };
        lines.extend(step.records.into_iter().map(Line::Record));
        state = step.state;
        wake = step.next_wake;
    }
    if state.outcome.is_none() {
        lines.push(Line::Pending {
            at: scenario.until,
            state: state.state,
        });
    }
    Ok(Timeline {
        zone,
        variants,
        lines,
    })
}

/// `2026-11-28T15:00:00Z`: UTC, whole seconds.
pub fn rfc3339(at: Instant) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A duration in the language's own units, as a recruiter would write it:
/// whole weeks as `1w`, two days or more as `2d`, else `24h` or `30m`.
pub fn duration_text(secs: i64) -> String {
    const UNITS: [(&str, i64, i64); 4] = [
        ("w", 604_800, 604_800),
        ("d", 86_400, 2 * 86_400),
        ("h", 3_600, 3_600),
        ("m", 60, 60),
    ];
    for (unit, size, from) in UNITS {
        if secs >= from && secs % size == 0 {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

/// Parses a duration `30m`, `24h`, `2d`, `1w` (an integer and a unit).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let amount: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let size = match unit {
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    Duration::try_seconds(amount.checked_mul(size)?)
}

/// An OFFSET of the CLI: a duration after `start`, or an RFC 3339 instant.
pub fn parse_offset(text: &str, start: Instant) -> Result<Instant, String> {
    if let Some(d) = parse_duration(text) {
        return start
            .checked_add_signed(d)
            .ok_or_else(|| format!("`{text}` is too far in the future"));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            format!("`{text}` is neither a duration such as `30h` or `2d` nor an RFC 3339 instant such as `2026-12-01T09:00:00Z`")
        })
}
