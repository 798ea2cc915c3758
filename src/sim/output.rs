//! Timeline rendering: one JSON object per line (the contract of
//! LANGUAGE.md), or one human line per step in the candidate's zone.

use chrono_tz::Tz;
use serde_json::{Map, Value};

use super::{duration_text, rfc3339, Line, Timeline};
use crate::engine::machine::Machine;
use crate::engine::step::{CancelReason, HoldReason, Trigger};
use crate::engine::{Channel, Happening, Instant, Record};

/// How a transition was triggered, in the language's words.
pub fn trigger_text(machine: &Machine, by: &Trigger) -> String {
    match by {
        Trigger::Event(e) => e.clone(),
        Trigger::After(s) => format!("after {}", duration_text(*s)),
        Trigger::AtDeadline => "at deadline".into(),
        Trigger::BeforeDeadline(s) => format!("before deadline {}", duration_text(*s)),
        Trigger::Split {
            experiment,
            variant,
        } => {
            let exp = &machine.experiments[*experiment];
            format!("split {}={}", exp.name, exp.variants[*variant].0)
        }
    }
}

/// Why a send waits, in words.
pub fn hold_text(machine: &Machine, state: usize, reason: HoldReason) -> String {
    match reason {
        HoldReason::Window => {
            let window = machine.states[state]
                .window
                .as_ref()
                .or(machine.window.as_ref());
            match window {
                Some(w) => format!("outside window {}", w.text),
                None => "outside window".into(),
            }
        }
        HoldReason::Limit(i) => {
            let l = machine.rate_limits[i];
            format!("limit {} per {}", l.count, duration_text(l.period_secs))
        }
    }
}

/// Why a send was skipped, in words.
pub fn skip_text(machine: &Machine, via: Option<Channel>) -> String {
    match via {
        Some(c) => format!("no {} for `via {c}`", address_name(c)),
        None => {
            let names: Vec<&str> = machine.channels.iter().map(|c| c.name()).collect();
            format!("no address on any channel ({})", names.join(", "))
        }
    }
}

fn address_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email address",
        Channel::Sms | Channel::Whatsapp => "phone number",
        Channel::Webhook => "webhook address",
    }
}

fn cancel_text(machine: &Machine, reason: &CancelReason) -> String {
    match reason {
        CancelReason::Left(by) => format!("left the state ({})", trigger_text(machine, by)),
        CancelReason::Exited(outcome) => format!("exited: {outcome}"),
    }
}

fn state_name(machine: &Machine, state: usize) -> &str {
    machine.states.get(state).map_or("?", |s| s.name.as_str())
}

/// The JSON object of one timeline line.
pub fn json_line(machine: &Machine, timeline: &Timeline, line: &Line) -> Value {
    let mut obj = Map::new();
    let mut put = |k: &str, v: Value| {
        obj.insert(k.to_string(), v);
    };
    match line {
        Line::NotEnrolled { at } => {
            put("at", rfc3339(*at).into());
            put("kind", "not_enrolled".into());
            put(
                "reason",
                "the campaign's `where` filter does not take the candidate".into(),
            );
        }
        Line::Pending { at, state } => {
            put("at", rfc3339(*at).into());
            put("kind", "pending".into());
            put("state", state_name(machine, *state).into());
        }
        Line::Record(Record { at, what }) => {
            put("at", rfc3339(*at).into());
            let s = |id: &usize| Value::from(state_name(machine, *id));
            match what {
                Happening::Enrolled { state } => {
                    put("kind", "enrolled".into());
                    put("state", s(state));
                    let variants: Map<String, Value> = machine
                        .experiments
                        .iter()
                        .zip(&timeline.variants)
                        .map(|(e, v)| (e.name.clone(), Value::from(e.variants[*v].0.clone())))
                        .collect();
                    put("variants", Value::Object(variants));
                }
                Happening::Entered { state, from, by } => {
                    put("kind", "entered".into());
                    put("state", s(state));
                    put("from", s(from));
                    put("by", trigger_text(machine, by).into());
                }
                Happening::Sent {
                    state,
                    template,
                    channel,
                    ..
                } => {
                    put("kind", "sent".into());
                    put("state", s(state));
                    put("channel", channel.name().into());
                    put("template", template.clone().into());
                }
                Happening::Held {
                    state,
                    template,
                    until,
                    reason,
                } => {
                    put("kind", "held".into());
                    put("state", s(state));
                    put("template", template.clone().into());
                    put("until", rfc3339(*until).into());
                    put("reason", hold_text(machine, *state, *reason).into());
                }
                Happening::Cancelled {
                    state,
                    template,
                    reason,
                } => {
                    put("kind", "cancelled".into());
                    put("state", s(state));
                    put("template", template.clone().into());
                    put("reason", cancel_text(machine, reason).into());
                }
                Happening::Skipped {
                    state,
                    template,
                    channel,
                } => {
                    put("kind", "skipped".into());
                    put("state", s(state));
                    put("template", template.clone().into());
                    if let Some(c) = channel {
                        put("channel", c.name().into());
                    }
                    put("reason", skip_text(machine, *channel).into());
                }
                Happening::Suppressed {
                    state,
                    template,
                    limit,
                } => {
                    put("kind", "suppressed".into());
                    put("state", s(state));
                    put("template", template.clone().into());
                    put("reason", format!("limit {limit} total reached").into());
                }
                Happening::DeadlineStarted { deadline } => {
                    put("kind", "deadline_started".into());
                    put("deadline", rfc3339(*deadline).into());
                }
                Happening::Exited { outcome, converted } => {
                    put("kind", "exited".into());
                    put("outcome", outcome.clone().into());
                    put("converted", (*converted).into());
                }
            }
        }
    }
    Value::Object(obj)
}

/// The timeline as JSON lines.
pub fn json(machine: &Machine, timeline: &Timeline) -> String {
    let mut out = String::new();
    for line in &timeline.lines {
        out.push_str(&json_line(machine, timeline, line).to_string());
        out.push('\n');
    }
    out
}

/// A local time for people: `Sat 28 Nov 2026 09:00 CST` (days padded, so
/// columns line up: `Tue  1 Dec`).
pub fn local(at: Instant, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%a %e %b %Y %H:%M %Z")
        .to_string()
}

/// The timeline for people: local times, one line per step.
pub fn human(machine: &Machine, timeline: &Timeline, candidate_id: &str) -> String {
    let zone = timeline.zone;
    let mut out = format!(
        "campaign `{}` · candidate `{candidate_id}` · times in {}\n",
        machine.name,
        zone.name()
    );
    for line in &timeline.lines {
        let (at, kind, text) = match line {
            Line::NotEnrolled { at } => (
                *at,
                "not enrolled",
                "the campaign's `where` filter does not take the candidate".to_string(),
            ),
            Line::Pending { at, state } => (
                *at,
                "pending",
                format!(
                    "still in {} when the simulation stops",
                    state_name(machine, *state)
                ),
            ),
            Line::Record(Record { at, what }) => {
                let n = |s: &usize| state_name(machine, *s).to_string();
                let (kind, text) = match what {
                    Happening::Enrolled { state } => {
                        let variants: Vec<String> = machine
                            .experiments
                            .iter()
                            .zip(&timeline.variants)
                            .map(|(e, v)| format!("{}={}", e.name, e.variants[*v].0))
                            .collect();
                        let extra = if variants.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", variants.join(", "))
                        };
                        ("enrolled", format!("in {}{extra}", n(state)))
                    }
                    Happening::Entered { state, from, by } => (
                        "entered",
                        format!(
                            "{} from {} ({})",
                            n(state),
                            n(from),
                            trigger_text(machine, by)
                        ),
                    ),
                    Happening::Sent {
                        template, channel, ..
                    } => ("sent", format!("{template} by {channel}")),
                    Happening::Held {
                        state,
                        template,
                        until,
                        reason,
                    } => (
                        "held",
                        format!(
                            "{template} until {}: {}",
                            local(*until, zone),
                            hold_text(machine, *state, *reason)
                        ),
                    ),
                    Happening::Cancelled {
                        template, reason, ..
                    } => (
                        "cancelled",
                        format!("{template}: {}", cancel_text(machine, reason)),
                    ),
                    Happening::Skipped {
                        template, channel, ..
                    } => (
                        "skipped",
                        format!("{template}: {}", skip_text(machine, *channel)),
                    ),
                    Happening::Suppressed {
                        template, limit, ..
                    } => (
                        "suppressed",
                        format!("{template}: limit {limit} total reached"),
                    ),
                    Happening::DeadlineStarted { deadline } => {
                        ("deadline", format!("runs until {}", local(*deadline, zone)))
                    }
                    Happening::Exited { outcome, converted } => (
                        "exited",
                        if *converted {
                            format!("{outcome} (goal reached)")
                        } else {
                            outcome.clone()
                        },
                    ),
                };
                (*at, kind, text)
            }
        };
        out.push_str(&format!("{}  {kind:<12} {text}\n", local(at, zone)));
    }
    out
}
