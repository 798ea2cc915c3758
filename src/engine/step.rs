//! The one pure step function shared by `nudge simulate` and the daemon.
//!
//! [`enroll`] creates a candidate's engine state; [`step`] takes that state,
//! an input (an event, or the clock reaching a due instant) and the time,
//! and returns the new state, what happened (the [`Record`]s: sends, holds,
//! cancellations, skips, transitions, exits) and the next instant at which
//! the enrollment wants to be woken. It reads no clock, disk or network.
//!
//! Things due at one instant happen in the order LANGUAGE.md gives:
//! received events, then goal and exits, then the state's `on`, then
//! deadline transitions, then `after` timers, then sends.

use chrono::Duration;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::candidate::{Candidate, Fields};
use super::machine::{Channel, Machine, StateId};
use super::Instant;

/// A candidate's position in one campaign. Small, serialisable, and all the
/// engine needs to resume after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineState {
    pub state: StateId,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub entered_at: Instant,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub enrolled_at: Instant,
    /// Counts state entries; with the send index it keys a send uniquely.
    pub visit: u32,
    /// The variant index of each experiment, fixed at enrollment.
    pub variants: Vec<usize>,
    /// Absolute deadline, once it has started.
    #[serde(with = "chrono::serde::ts_milliseconds_option")]
    pub deadline: Option<Instant>,
    /// Index of the send whose turn it is (`sends.len()` when all resolved).
    pub next_send: usize,
    /// When that send is next looked at (its turn, or the end of its hold).
    #[serde(with = "chrono::serde::ts_milliseconds_option")]
    pub send_due: Option<Instant>,
    /// The last hold announced for the current send.
    #[serde(with = "chrono::serde::ts_milliseconds_option")]
    pub held_until: Option<Instant>,
    /// When the state's `after` timers started counting.
    #[serde(with = "chrono::serde::ts_milliseconds_option")]
    pub timers_from: Option<Instant>,
    /// Messages this enrollment has sent (for `limit N total`).
    pub sent_total: u32,
    /// This enrollment's recent sends (for `limit N per D`).
    #[serde(with = "super::millis::vec")]
    pub recent_sends: Vec<Instant>,
    /// The latest instant processed; nothing happens before it.
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub clock: Instant,
    /// Set once the candidate has left the campaign.
    pub outcome: Option<String>,
}

/// What a step is asked to handle.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// An event received for the candidate at `now`, with its fields.
    Event { name: &'a str, fields: &'a Fields },
    /// The clock reached `now`: run everything due at or before it.
    Wake,
}

/// What the engine knows about the candidate besides its own state.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub candidate: &'a Candidate,
    /// The zone windows are read in (see [`Candidate::zone`]).
    pub zone: Tz,
    /// Instants of messages sent to this candidate by other campaigns
    /// (sliding limits count across campaigns).
    pub other_sends: &'a [Instant],
    /// When the sends this step decides actually leave, for the late rule
    /// (see [`late`]).
    pub leaving: Leaving,
}

/// When the sends a step decides actually leave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Leaving {
    /// The instant they leave, when later than their own: the daemon's
    /// clock, which is past them after downtime. `None`: each leaves at
    /// its own instant (the simulator).
    pub at: Option<Instant>,
    /// A send that would leave more than this after it was due is late.
    /// `None`: no limit.
    pub stale_after: Option<Duration>,
}

/// Why a send is too late to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lateness {
    /// Due before the candidate's deadline, it could only leave after it.
    AfterDeadline { deadline: Instant },
    /// It would leave more than `limit_secs` after it was due.
    Stale {
        due: Instant,
        leaves: Instant,
        limit_secs: i64,
    },
}

/// The late rule, shared by the engine (sends it decides) and the runtime
/// (sends that wait for a channel, a retry or a restart): a send due at
/// `due` that would leave at `leaves` is late when it was due before the
/// deadline and would leave after it, or would leave more than
/// `stale_after` after it was due. A send due at or after the deadline
/// (the message of an `at deadline` state) is late only by staleness.
pub fn late(
    due: Instant,
    leaves: Instant,
    deadline: Option<Instant>,
    stale_after: Option<Duration>,
) -> Option<Lateness> {
    if let Some(deadline) = deadline.filter(|d| due < *d && leaves > *d) {
        return Some(Lateness::AfterDeadline { deadline });
    }
    stale_after
        .filter(|limit| leaves - due > *limit)
        .map(|limit| Lateness::Stale {
            due,
            leaves,
            limit_secs: limit.num_seconds(),
        })
}

/// The result of [`enroll`] or [`step`].
#[derive(Debug, Clone)]
pub struct Step {
    pub state: EngineState,
    pub records: Vec<Record>,
    /// The timer to arm: when to call [`step`] with [`Input::Wake`] next.
    /// `None` once the candidate has exited or nothing is pending.
    pub next_wake: Option<Instant>,
}

/// One thing the engine decided, at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub at: Instant,
    pub what: Happening,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Happening {
    Enrolled {
        state: StateId,
    },
    Entered {
        state: StateId,
        from: StateId,
        by: Trigger,
    },
    Sent {
        state: StateId,
        template: String,
        channel: Channel,
        visit: u32,
        index: usize,
    },
    Held {
        state: StateId,
        template: String,
        until: Instant,
        reason: HoldReason,
    },
    Cancelled {
        state: StateId,
        template: String,
        reason: CancelReason,
    },
    Skipped {
        state: StateId,
        template: String,
        /// The channel asked for with `via`, if any.
        channel: Option<Channel>,
    },
    Suppressed {
        state: StateId,
        template: String,
        limit: u32,
    },
    /// Not sent: it could only leave too late (see [`late`]).
    Late {
        state: StateId,
        template: String,
        channel: Channel,
        why: Lateness,
    },
    DeadlineStarted {
        deadline: Instant,
    },
    Exited {
        outcome: String,
        /// True when the outcome is the campaign's goal.
        converted: bool,
    },
}

/// Why a transition fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trigger {
    Event(String),
    After(i64),
    AtDeadline,
    BeforeDeadline(i64),
    Split { experiment: usize, variant: usize },
}

/// Why a send waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldReason {
    /// Outside the state's window, else the campaign's.
    Window,
    /// Over `limit N per D` (index into `Machine::rate_limits`).
    Limit(usize),
}

/// Why an unsent message was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelReason {
    /// The candidate left the state.
    Left(Trigger),
    /// The candidate left the campaign with this outcome.
    Exited(String),
}

/// The candidate's opt-out: ends every campaign, in any state.
pub const OPTED_OUT: &str = "opted_out";

/// Transitions allowed at a single instant before the engine decides the
/// campaign loops without time passing (`a { at deadline -> b }`,
/// `b { at deadline -> a }` after the deadline) and stops the candidate.
const MAX_TRANSITIONS_PER_INSTANT: u32 = 256;

/// The outcome of a candidate stopped by a loop that takes no time.
pub const STUCK: &str = "stuck";

/// Enrolls a candidate at `now` in the machine's first state, with the
/// given variant index for each experiment. Sends due at `now` are not yet
/// made: call [`step`] with [`Input::Wake`] at `next_wake` (events received
/// at the same instant go first).
pub fn enroll(machine: &Machine, ctx: &Ctx, variants: Vec<usize>, now: Instant) -> Step {
    let deadline = machine
        .deadline
        .filter(|d| d.from_enrollment)
        .map(|d| now + Duration::seconds(d.secs));
    let state = EngineState {
        state: 0,
        entered_at: now,
        enrolled_at: now,
        visit: 0,
        variants,
        deadline,
        next_send: 0,
        send_due: None,
        held_until: None,
        timers_from: None,
        sent_total: 0,
        recent_sends: Vec::new(),
        clock: now,
        outcome: None,
    };
    let mut run = Run::new(machine, ctx, state);
    run.records.push(Record {
        at: now,
        what: Happening::Enrolled { state: 0 },
    });
    if let Some(deadline) = deadline {
        run.records.push(Record {
            at: now,
            what: Happening::DeadlineStarted { deadline },
        });
    }
    run.enter(0, now, None);
    run.finish()
}

/// Advances a candidate's state by one input at `now`.
pub fn step(machine: &Machine, ctx: &Ctx, state: EngineState, input: Input, now: Instant) -> Step {
    let mut run = Run::new(machine, ctx, state);
    match input {
        Input::Wake => run.advance(now, true),
        Input::Event { name, fields } => {
            run.advance(now, false);
            run.event(name, fields, now);
        }
    }
    run.finish()
}

/// The next instant the enrollment has something to do, if any.
pub fn next_due(machine: &Machine, state: &EngineState) -> Option<Instant> {
    next_item(machine, state).map(|(at, _)| at)
}

#[derive(Debug, Clone, Copy)]
enum Item {
    Deadline(usize),
    After(usize),
    Send,
}

fn next_item(machine: &Machine, st: &EngineState) -> Option<(Instant, Item)> {
    if st.outcome.is_some() {
        return None;
    }
    let state = machine.states.get(st.state)?;
    let mut best: Option<(Instant, Item)> = None;
    let mut offer = |at: Instant, item: Item| {
        let at = at.max(st.clock);
        if best.is_none_or(|(b, _)| at < b) {
            best = Some((at, item));
        }
    };
    if let Some(deadline) = st.deadline {
        for (i, rule) in state.deadline_rules.iter().enumerate() {
            match rule.before_secs {
                None => offer(deadline.max(st.entered_at), Item::Deadline(i)),
                Some(before) if st.entered_at < deadline => {
                    let at = (deadline - Duration::seconds(before)).max(st.entered_at);
                    offer(at, Item::Deadline(i));
                }
                Some(_) => {}
            }
        }
    }
    if let Some(from) = st.timers_from {
        for (i, after) in state.afters.iter().enumerate() {
            offer(from + Duration::seconds(after.secs), Item::After(i));
        }
    }
    if let Some(due) = st.send_due {
        offer(due, Item::Send);
    }
    best
}

struct Run<'a> {
    machine: &'a Machine,
    ctx: &'a Ctx<'a>,
    st: EngineState,
    records: Vec<Record>,
    /// Transitions made at `st.clock`, to stop loops that take no time.
    transitions_now: u32,
}

impl<'a> Run<'a> {
    fn new(machine: &'a Machine, ctx: &'a Ctx<'a>, st: EngineState) -> Self {
        Run {
            machine,
            ctx,
            st,
            records: Vec::new(),
            transitions_now: 0,
        }
    }

    fn finish(self) -> Step {
        let next_wake = next_due(self.machine, &self.st);
        Step {
            state: self.st,
            records: self.records,
            next_wake,
        }
    }

    fn record(&mut self, at: Instant, what: Happening) {
        self.records.push(Record { at, what });
    }

    fn tick(&mut self, at: Instant) {
        if at > self.st.clock {
            self.st.clock = at;
            self.transitions_now = 0;
        }
    }

    /// Runs everything due before `now` (or at it, when `inclusive`).
    fn advance(&mut self, now: Instant, inclusive: bool) {
        while let Some((at, item)) = next_item(self.machine, &self.st) {
            if at > now || (at == now && !inclusive) {
                break;
            }
            self.tick(at);
            let state = &self.machine.states[self.st.state];
            match item {
                Item::Deadline(i) => {
                    let rule = state.deadline_rules[i];
                    let by = match rule.before_secs {
                        None => Trigger::AtDeadline,
                        Some(s) => Trigger::BeforeDeadline(s),
                    };
                    self.transition(rule.target, by, at);
                }
                Item::After(i) => {
                    let after = state.afters[i];
                    self.transition(after.target, Trigger::After(after.secs), at);
                }
                Item::Send => self.send_turn(at),
            }
        }
    }

    fn event(&mut self, name: &str, fields: &Fields, at: Instant) {
        if self.st.outcome.is_some() {
            return;
        }
        self.tick(at);
        let machine = self.machine;
        let state = &machine.states[self.st.state];
        if name == OPTED_OUT {
            self.exit(OPTED_OUT.to_string(), at);
            return;
        }
        if state.is_final {
            return;
        }
        if machine.goal.as_deref() == Some(name) || machine.exits.iter().any(|e| e == name) {
            self.exit(name.to_string(), at);
            return;
        }
        let hit = state.ons.iter().find(|on| {
            on.event == name
                && on
                    .filter
                    .as_ref()
                    .is_none_or(|f| f.matches(self.ctx.candidate, fields))
        });
        if let Some(on) = hit {
            self.transition(on.target, Trigger::Event(name.to_string()), at);
        }
    }

    fn transition(&mut self, target: StateId, by: Trigger, at: Instant) {
        self.cancel_unsent(at, CancelReason::Left(by.clone()));
        let from = self.st.state;
        self.enter(target, at, Some((from, by)));
    }

    /// Drops the sends of the current state that have not gone out.
    fn cancel_unsent(&mut self, at: Instant, reason: CancelReason) {
        let machine = self.machine;
        let state = &machine.states[self.st.state];
        for index in self.st.next_send..state.sends.len() {
            let template = state.sends[index]
                .template
                .resolve(machine, &self.st.variants);
            self.record(
                at,
                Happening::Cancelled {
                    state: self.st.state,
                    template,
                    reason: reason.clone(),
                },
            );
        }
        self.st.next_send = state.sends.len();
        self.st.send_due = None;
    }

    fn enter(&mut self, mut target: StateId, at: Instant, mut from: Option<(StateId, Trigger)>) {
        let machine = self.machine;
        loop {
            self.transitions_now += 1;
            if self.transitions_now > MAX_TRANSITIONS_PER_INSTANT {
                self.exit(STUCK.to_string(), at);
                return;
            }
            if let Some((from_state, by)) = from.take() {
                self.record(
                    at,
                    Happening::Entered {
                        state: target,
                        from: from_state,
                        by,
                    },
                );
            }
            let state = &machine.states[target];
            self.st.state = target;
            self.st.entered_at = at;
            self.st.visit += 1;
            self.st.next_send = 0;
            self.st.held_until = None;
            self.st.send_due = (!state.sends.is_empty()).then_some(at);
            self.st.timers_from = state.sends.is_empty().then_some(at);
            if let Some(split) = &state.split {
                let variant = self.st.variants.get(split.experiment).copied().unwrap_or(0);
                let Some(next) = split.targets.get(variant).copied() else {
                    return;
                };
                from = Some((
                    target,
                    Trigger::Split {
                        experiment: split.experiment,
                        variant,
                    },
                ));
                target = next;
                continue;
            }
            if state.is_final && state.sends.is_empty() {
                self.exit(state.name.clone(), at);
            }
            return;
        }
    }

    /// The current send's turn has come (or its hold has ended) at `at`.
    fn send_turn(&mut self, at: Instant) {
        let machine = self.machine;
        let state_id = self.st.state;
        let state = &machine.states[state_id];
        let index = self.st.next_send;
        let Some(send) = state.sends.get(index) else {
            self.st.send_due = None;
            return;
        };
        let template = send.template.resolve(machine, &self.st.variants);
        let candidate = self.ctx.candidate;
        let channel = match send.via {
            Some(via) => candidate.has_address(via).then_some(via),
            None => machine
                .channels
                .iter()
                .copied()
                .find(|c| candidate.has_address(*c)),
        };
        let Some(channel) = channel else {
            self.record(
                at,
                Happening::Skipped {
                    state: state_id,
                    template,
                    channel: send.via,
                },
            );
            self.resolve_send(at);
            return;
        };
        if let Some(total) = machine.total_limit {
            if self.st.sent_total >= total {
                self.record(
                    at,
                    Happening::Suppressed {
                        state: state_id,
                        template,
                        limit: total,
                    },
                );
                self.resolve_send(at);
                return;
            }
        }
        let (allowed, reason) = self.earliest_allowed(at);
        // Held past the deadline it was due before: late at its turn, as a
        // skip is (a send that can never fit stays held, as before).
        // Otherwise a send leaving now is checked against both limits; the
        // end of a hold is when a held send is due.
        let leaves = self.ctx.leaving.at.map_or(allowed, |t| t.max(allowed));
        let why = if allowed == at {
            late(at, leaves, self.st.deadline, self.ctx.leaving.stale_after)
        } else if allowed < Instant::MAX_UTC {
            late(at, leaves, self.st.deadline, None)
        } else {
            None
        };
        if let Some(why) = why {
            self.record(
                at,
                Happening::Late {
                    state: state_id,
                    template,
                    channel,
                    why,
                },
            );
            self.resolve_send(at);
            return;
        }
        if allowed > at {
            if self.st.held_until != Some(allowed) {
                self.record(
                    at,
                    Happening::Held {
                        state: state_id,
                        template,
                        until: allowed,
                        reason,
                    },
                );
                self.st.held_until = Some(allowed);
            }
            self.st.send_due = Some(allowed);
            return;
        }
        let visit = self.st.visit;
        self.record(
            at,
            Happening::Sent {
                state: state_id,
                template,
                channel,
                visit,
                index,
            },
        );
        self.st.sent_total += 1;
        self.remember_send(at);
        if self.st.deadline.is_none() {
            if let Some(rule) = machine.deadline {
                let deadline = at + Duration::seconds(rule.secs);
                self.st.deadline = Some(deadline);
                self.record(at, Happening::DeadlineStarted { deadline });
            }
        }
        self.resolve_send(at);
    }

    fn remember_send(&mut self, at: Instant) {
        let longest = self
            .machine
            .rate_limits
            .iter()
            .map(|l| l.period_secs)
            .max()
            .unwrap_or(0);
        let horizon = at - Duration::seconds(longest);
        self.st.recent_sends.retain(|s| *s > horizon);
        if longest > 0 {
            self.st.recent_sends.push(at);
        }
    }

    /// The earliest instant at or after `at` that the window and every
    /// sliding limit allow, and what held it first.
    fn earliest_allowed(&self, at: Instant) -> (Instant, HoldReason) {
        let machine = self.machine;
        let window = machine.states[self.st.state]
            .window
            .as_ref()
            .or(machine.window.as_ref());
        let mut t = at;
        let mut reason = None;
        // Each round moves t forward; a handful of rounds settle any mix of
        // window and limits, the bound only guards against a pathological one.
        for _ in 0..64 {
            let mut next = t;
            if let Some(w) = window {
                match w.next_open(next, self.ctx.zone) {
                    Some(open) => next = open,
                    None => return (Instant::MAX_UTC, HoldReason::Window),
                }
            }
            if next > t {
                reason.get_or_insert(HoldReason::Window);
            }
            for (i, limit) in machine.rate_limits.iter().enumerate() {
                let sends = self.st.recent_sends.iter().chain(self.ctx.other_sends);
                let fit = limit.earliest_fit(next, sends);
                if fit > next {
                    reason.get_or_insert(HoldReason::Limit(i));
                    next = fit;
                }
            }
            if next == Instant::MAX_UTC {
                // A limit that can never fit (`limit 0 per ...`).
                return (next, reason.unwrap_or(HoldReason::Window));
            }
            if next == t {
                return (t, reason.unwrap_or(HoldReason::Window));
            }
            t = next;
        }
        (t, reason.unwrap_or(HoldReason::Window))
    }

    fn resolve_send(&mut self, at: Instant) {
        let state = &self.machine.states[self.st.state];
        self.st.next_send += 1;
        self.st.held_until = None;
        if self.st.next_send < state.sends.len() {
            self.st.send_due = Some(at);
        } else {
            self.st.send_due = None;
            self.st.timers_from = Some(at);
            if state.is_final {
                self.exit(state.name.clone(), at);
            }
        }
    }

    fn exit(&mut self, outcome: String, at: Instant) {
        if self.st.outcome.is_some() {
            return;
        }
        self.cancel_unsent(at, CancelReason::Exited(outcome.clone()));
        self.st.timers_from = None;
        let converted = self.machine.goal.as_deref() == Some(outcome.as_str());
        self.record(
            at,
            Happening::Exited {
                outcome: outcome.clone(),
                converted,
            },
        );
        self.st.outcome = Some(outcome);
    }
}
