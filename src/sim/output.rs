//! Timeline rendering: one JSON object per line (the contract of
//! LANGUAGE.md), or one human line per step in the candidate's zone. The
//! words for each cause come from [`crate::explain`].

use chrono_tz::Tz;
use serde_json::{Map, Value};

use super::{rfc3339, Line, Timeline};
use crate::engine::machine::Machine;
use crate::engine::{Happening, Instant, Record};
use crate::explain::facts;

fn state_name(machine: &Machine, state: usize) -> &str {
    machine.states.get(state).map_or("?", |s| s.name.as_str())
}

/// One timeline line, described once for both renderers: its instant, its
/// `kind`, the keys of its JSON object, and the words people read.
struct Described {
    at: Instant,
    kind: &'static str,
    keys: Vec<(&'static str, Value)>,
    text: String,
}

fn describe(machine: &Machine, timeline: &Timeline, line: &Line) -> Described {
    let zone = timeline.zone;
    let name = |id: &usize| state_name(machine, *id).to_string();
    let (at, kind, keys, text): (Instant, &'static str, Vec<(&'static str, Value)>, String) =
        match line {
            Line::NotEnrolled { at } => {
                let why = "the campaign's `where` filter does not take the candidate";
                (
                    *at,
                    "not_enrolled",
                    vec![("reason", why.into())],
                    why.to_string(),
                )
            }
            Line::Pending { at, state } => (
                *at,
                "pending",
                vec![("state", name(state).into())],
                format!("still in {} when the simulation stops", name(state)),
            ),
            Line::Record(Record { at, what }) => match what {
                Happening::Enrolled { state } => {
                    let variants: Vec<(String, String)> = machine
                        .experiments
                        .iter()
                        .zip(&timeline.variants)
                        .map(|(e, v)| (e.name.clone(), e.variants[*v].0.clone()))
                        .collect();
                    let words: Vec<String> =
                        variants.iter().map(|(e, v)| format!("{e}={v}")).collect();
                    let text = if words.is_empty() {
                        format!("in {}", name(state))
                    } else {
                        format!("in {} ({})", name(state), words.join(", "))
                    };
                    let map: Map<String, Value> =
                        variants.into_iter().map(|(e, v)| (e, v.into())).collect();
                    (
                        *at,
                        "enrolled",
                        vec![
                            ("state", name(state).into()),
                            ("variants", Value::Object(map)),
                        ],
                        text,
                    )
                }
                Happening::Entered { state, from, by } => {
                    let by = facts::trigger(machine, by).to_string();
                    let text = format!("{} from {} ({by})", name(state), name(from));
                    let keys = vec![
                        ("state", name(state).into()),
                        ("from", name(from).into()),
                        ("by", by.into()),
                    ];
                    (*at, "entered", keys, text)
                }
                Happening::Sent {
                    state,
                    template,
                    channel,
                    ..
                } => (
                    *at,
                    "sent",
                    vec![
                        ("state", name(state).into()),
                        ("channel", channel.name().into()),
                        ("template", template.clone().into()),
                    ],
                    format!("{template} by {channel}"),
                ),
                Happening::Held {
                    state,
                    template,
                    until,
                    reason,
                } => {
                    let why = facts::hold(machine, *state, *reason).to_string();
                    let text = format!("{template} until {}: {why}", local(*until, zone));
                    let keys = vec![
                        ("state", name(state).into()),
                        ("template", template.clone().into()),
                        ("until", rfc3339(*until).into()),
                        ("reason", why.into()),
                    ];
                    (*at, "held", keys, text)
                }
                Happening::Cancelled {
                    state,
                    template,
                    reason,
                } => {
                    let why = facts::cancel(machine, reason).to_string();
                    let text = format!("{template}: {why}");
                    let keys = vec![
                        ("state", name(state).into()),
                        ("template", template.clone().into()),
                        ("reason", why.into()),
                    ];
                    (*at, "cancelled", keys, text)
                }
                Happening::Skipped {
                    state,
                    template,
                    channel,
                } => {
                    let why = facts::skip(machine, *channel).to_string();
                    let text = format!("{template}: {why}");
                    let mut keys = vec![
                        ("state", name(state).into()),
                        ("template", template.clone().into()),
                    ];
                    if let Some(c) = channel {
                        keys.push(("channel", c.name().into()));
                    }
                    keys.push(("reason", why.into()));
                    (*at, "skipped", keys, text)
                }
                Happening::Late {
                    state,
                    template,
                    channel,
                    why,
                } => {
                    let why = facts::late(why).to_string();
                    let text = format!("{template}: {why}");
                    let keys = vec![
                        ("state", name(state).into()),
                        ("template", template.clone().into()),
                        ("channel", channel.name().into()),
                        ("reason", why.into()),
                    ];
                    (*at, "skipped", keys, text)
                }
                Happening::Suppressed {
                    state,
                    template,
                    limit,
                } => {
                    let why = format!("limit {limit} total reached");
                    let text = format!("{template}: {why}");
                    let keys = vec![
                        ("state", name(state).into()),
                        ("template", template.clone().into()),
                        ("reason", why.into()),
                    ];
                    (*at, "suppressed", keys, text)
                }
                Happening::DeadlineStarted { deadline } => (
                    *at,
                    "deadline_started",
                    vec![("deadline", rfc3339(*deadline).into())],
                    format!("runs until {}", local(*deadline, zone)),
                ),
                Happening::Exited { outcome, converted } => {
                    let text = if *converted {
                        format!("{outcome} (goal reached)")
                    } else {
                        outcome.clone()
                    };
                    let keys = vec![
                        ("outcome", outcome.clone().into()),
                        ("converted", (*converted).into()),
                    ];
                    (*at, "exited", keys, text)
                }
            },
        };
    Described {
        at,
        kind,
        keys,
        text,
    }
}

/// The JSON object of one timeline line.
pub fn json_line(machine: &Machine, timeline: &Timeline, line: &Line) -> Value {
    let d = describe(machine, timeline, line);
    let mut obj = Map::new();
    obj.insert("at".into(), rfc3339(d.at).into());
    obj.insert("kind".into(), d.kind.into());
    for (k, v) in d.keys {
        obj.insert(k.into(), v);
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

/// A time for people, the one format of every command's human output:
/// `Sat 2026-11-28 09:00 -06:00`, local to `zone` with its offset (an
/// abbreviation such as `CST` names several zones; the weekday is for
/// reading windows such as `mon-thu`). Fixed width, so columns line up.
pub fn local(at: Instant, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%a %Y-%m-%d %H:%M %:z")
        .to_string()
}

/// The timeline for people: local times in the candidate's zone, one line
/// per step (the JSON kinds, with `_` read as a space).
pub fn human(machine: &Machine, timeline: &Timeline, candidate_id: &str) -> String {
    let mut out = format!(
        "campaign `{}` · candidate `{candidate_id}` · times in {}\n",
        machine.name,
        timeline.zone.name()
    );
    for line in &timeline.lines {
        let d = describe(machine, timeline, line);
        let kind = match d.kind {
            "deadline_started" => "deadline".to_string(),
            other => other.replace('_', " "),
        };
        out.push_str(&format!(
            "{}  {kind:<12} {}\n",
            local(d.at, timeline.zone),
            d.text
        ));
    }
    out
}
