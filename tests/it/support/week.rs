//! The warehouse week both `runtime.rs` and `e2e.rs` run:
//! five applicants and their events as an agenda, the commands that play
//! it, and what the simulator predicts for each of them.

use chrono::Duration;
use nudge::engine::{Happening, Instant, Machine};
use nudge::runtime::api::{EnrollRequest, EventRequest};
use nudge::runtime::core::{engine_candidate, Command};
use nudge::sim::{self, Scenario};
use nudge::store::CandidateRecord;

pub use super::at;

/// Something that happens to a candidate, named by their external id.
#[derive(Debug, Clone)]
pub enum Act {
    Enroll(Applicant),
    Event {
        who: &'static str,
        event: &'static str,
    },
}

#[derive(Debug, Clone)]
pub struct Applicant {
    pub id: &'static str,
    pub fields: Vec<(&'static str, &'static str)>,
}

impl Applicant {
    pub fn field(&self, name: &str) -> Option<&'static str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }
}

impl Act {
    pub fn command(&self, campaign: &str) -> Command {
        match self {
            Act::Enroll(a) => Command::Enroll(EnrollRequest {
                ignore_filter: true,
                campaign: campaign.into(),
                external_id: Some(a.id.into()),
                fields: a
                    .fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }),
            Act::Event { who, event } => Command::Event(EventRequest {
                candidate: who.to_string(),
                event: event.to_string(),
                ..EventRequest::default()
            }),
        }
    }
}

pub fn applicant(id: &'static str, fields: &[(&'static str, &'static str)]) -> Act {
    Act::Enroll(Applicant {
        id,
        fields: fields.to_vec(),
    })
}

/// Five applicants over one week: no answer, a click and a start, a
/// Spanish speaker in Madrid who completes, a phone-only one who opts out,
/// and one who clicks and then goes quiet.
pub fn week() -> Vec<(Instant, Act)> {
    let role = ("role", "Warehouse Associate");
    let event = |who, event| Act::Event { who, event };
    vec![
        (
            at("2026-11-26T15:00:00Z"),
            applicant("di", &[("name", "Di Egan"), ("phone", "+15550103"), role]),
        ),
        (
            at("2026-11-27T02:30:00Z"),
            applicant(
                "ana",
                &[
                    ("name", "Ana Ruiz"),
                    ("phone", "+15550100"),
                    ("email", "ana@example.com"),
                    role,
                ],
            ),
        ),
        (
            at("2026-11-27T02:30:00Z"),
            applicant(
                "eve",
                &[
                    ("name", "Eve Fox"),
                    ("phone", "+15550104"),
                    ("email", "eve@example.com"),
                    role,
                ],
            ),
        ),
        (
            at("2026-11-28T10:00:00Z"),
            applicant(
                "cy",
                &[
                    ("name", "Cy Diaz"),
                    ("email", "cy@example.com"),
                    ("language", "es"),
                    ("timezone", "Europe/Madrid"),
                    role,
                ],
            ),
        ),
        (at("2026-11-28T16:07:00Z"), event("eve", "clicked")),
        (at("2026-11-28T17:11:00Z"), event("di", "opted_out")),
        (at("2026-11-29T16:13:00Z"), event("cy", "completed")),
        (
            at("2026-11-30T14:00:00Z"),
            applicant(
                "ben",
                &[
                    ("name", "Ben Ode"),
                    ("phone", "+15550101"),
                    ("email", "ben@example.com"),
                    ("timezone", "America/New_York"),
                    role,
                ],
            ),
        ),
        (at("2026-11-30T17:03:00Z"), event("ben", "clicked")),
        (at("2026-12-01T10:17:00Z"), event("ben", "started")),
    ]
}

pub fn applicants(agenda: &[(Instant, Act)]) -> Vec<Applicant> {
    agenda
        .iter()
        .filter_map(|(_, a)| match a {
            Act::Enroll(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

/// (template, channel, instant) of one send.
pub type Send = (String, String, Instant);

/// The simulator's sends for one stored candidate, given the agenda.
pub fn predict(
    machine: &Machine,
    record: &CandidateRecord,
    agenda: &[(Instant, Act)],
    external: &str,
) -> (Vec<Send>, Option<String>) {
    let start = agenda
        .iter()
        .find_map(|(t, a)| matches!(a, Act::Enroll(x) if x.id == external).then_some(*t))
        .expect("enrolled in the agenda");
    let events = agenda
        .iter()
        .filter_map(|(t, a)| match a {
            Act::Event { who, event } if *who == external => Some((event.to_string(), *t)),
            _ => None,
        })
        .collect();
    let scenario = Scenario {
        start,
        candidate: engine_candidate(record),
        events,
        variants: Vec::new(),
        until: start + Duration::days(30),
    };
    let timeline = sim::run(machine, &scenario).unwrap();
    let mut sends: Vec<Send> = timeline
        .lines
        .iter()
        .filter_map(|l| match l {
            sim::Line::Record(r) => match &r.what {
                Happening::Sent {
                    template, channel, ..
                } => Some((template.clone(), channel.name().to_string(), r.at)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    sends.sort_by_key(|s| s.2);
    (sends, timeline.outcome().map(str::to_string))
}
