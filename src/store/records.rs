//! The records kept in the store. Instants are epoch milliseconds; names
//! (of states, campaigns, templates) are kept as text, so the log stays
//! meaningful across campaign edits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::causes::{Cancel, Failure, Hold, Skip, Trigger};
use crate::channels::Message;
use crate::engine::{EngineState, Instant};

/// A candidate: their fields, where they came from, their link token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateRecord {
    pub id: String,
    /// The identity used to recognise the same person enrolled twice: the
    /// id in the source system, else the email address, else the phone.
    pub external_id: Option<String>,
    pub fields: BTreeMap<String, String>,
    /// The unguessable token of the tracked interview link (128 bits, hex).
    pub token: String,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub created_at: Instant,
    /// Set by an opt-out, cleared by opting back in (`core::opt_in`);
    /// nothing is sent to them while it is set.
    pub opted_out: bool,
}

impl CandidateRecord {
    /// Every identity the person is found under: the external id (or the
    /// first identity they were created under), their email address
    /// (`email:` lower case) and their phone number (`phone:` E.164). So
    /// the same email or phone given again is the same candidate.
    pub fn identities(&self) -> Vec<String> {
        let mut out: Vec<String> = self.external_id.iter().cloned().collect();
        if let Some(email) = self.fields.get("email") {
            out.push(email_identity(email));
        }
        if let Some(phone) = self.fields.get("phone") {
            out.push(phone_identity(phone));
        }
        out.dedup();
        out
    }

    /// Whether the person is found under `identity`.
    pub fn known_as(&self, identity: &str) -> bool {
        self.external_id.as_deref() == Some(identity)
            || self
                .fields
                .get("email")
                .map(|e| email_identity(e))
                .as_deref()
                == Some(identity)
            || self
                .fields
                .get("phone")
                .map(|p| phone_identity(p))
                .as_deref()
                == Some(identity)
    }
}

/// The identity of an email address.
pub fn email_identity(email: &str) -> String {
    let email = email.trim();
    if !email.is_ascii() {
        return format!("email:{}", email.to_lowercase());
    }
    // Made for every enrollment: one allocation, lowered in place (the
    // same as `to_lowercase` for ASCII).
    let mut out = String::with_capacity(6 + email.len());
    out.push_str("email:");
    out.push_str(email);
    out[6..].make_ascii_lowercase();
    out
}

/// The identity of a phone number (its digits and `+`).
pub fn phone_identity(phone: &str) -> String {
    let mut out = String::with_capacity(6 + phone.len());
    out.push_str("phone:");
    out.extend(phone.chars().filter(|c| c.is_ascii_digit() || *c == '+'));
    out
}

/// A candidate in one campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    pub campaign: String,
    pub candidate: String,
    /// The campaign version (hash of its source) this state belongs to.
    pub version: String,
    /// The current state's name, so a new campaign version can find it.
    pub state_name: String,
    /// Variant name per experiment, fixed at enrollment.
    pub variants: BTreeMap<String, String>,
    pub engine: EngineState,
    /// The due instant of the armed timer key, if any.
    #[serde(with = "chrono::serde::ts_milliseconds_option")]
    pub timer: Option<Instant>,
    /// Parked while the campaign is paused.
    pub parked: bool,
}

impl Enrollment {
    /// The timer this enrollment waits on (armed, and not parked), and what
    /// it is for.
    pub fn waiting(&self) -> Option<(Instant, TimerKind)> {
        let due = self.timer.filter(|_| !self.parked)?;
        Some((due, TimerKind::of(&self.engine, due)))
    }

    /// The counters its waiting timer counts in (`status`'s held sends and
    /// sends due by minute): none for a transition timer.
    pub fn timer_counters(&self) -> impl Iterator<Item = super::Counter> {
        TimerKind::counters(self.waiting())
    }
}

/// The counts of waiting timers ([`Enrollment::timer_counters`]) that a
/// read of every enrollment finds: (campaign, counter) → count. The core
/// keeps them as deltas in its commits; this full scan is for a store
/// written before they were kept, and for audits and tests.
pub fn timer_counts<'d>(
    dossiers: impl IntoIterator<Item = &'d Dossier>,
) -> BTreeMap<(String, super::Counter), i64> {
    let mut out: BTreeMap<(String, super::Counter), i64> = BTreeMap::new();
    for d in dossiers {
        for e in &d.enrollments {
            for counter in e.timer_counters() {
                *out.entry((e.campaign.clone(), counter)).or_insert(0) += 1;
            }
        }
    }
    out
}

/// What an armed timer is for, kept in the timer key's value so `status`
/// can count without reading enrollments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimerKind {
    /// A transition timer (`after`, a deadline).
    Transition,
    /// A send waiting for its turn or its window.
    Send,
    /// A send held by the window or a limit.
    Held,
}

impl TimerKind {
    /// The counters a waiting timer counts in ([`Enrollment::timer_counters`]).
    pub fn counters(waiting: Option<(Instant, TimerKind)>) -> impl Iterator<Item = super::Counter> {
        let (send, held) = match waiting {
            Some((due, TimerKind::Send)) => (Some(super::Counter::sends_due(due)), None),
            Some((due, TimerKind::Held)) => (
                Some(super::Counter::sends_due(due)),
                Some(super::Counter::Held),
            ),
            _ => (None, None),
        };
        send.into_iter().chain(held)
    }

    /// What a timer at `due` is for, by the engine state that armed it.
    pub fn of(engine: &EngineState, due: Instant) -> TimerKind {
        if engine.send_due != Some(due) {
            TimerKind::Transition
        } else if engine.held_until == Some(due) {
            TimerKind::Held
        } else {
            TimerKind::Send
        }
    }

    pub fn byte(self) -> u8 {
        match self {
            TimerKind::Transition => 0,
            TimerKind::Send => 1,
            TimerKind::Held => 2,
        }
    }

    pub fn from_byte(b: u8) -> TimerKind {
        match b {
            1 => TimerKind::Send,
            2 => TimerKind::Held,
            _ => TimerKind::Transition,
        }
    }
}

/// Where a send is in its delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SendStatus {
    /// Decided and stored; not yet handed to the channel.
    Queued,
    /// The channel accepted it.
    Delivered,
    /// The channel refused it for good.
    Failed(String),
    /// Never handed to a channel, on purpose (`communications = "off"`).
    Suppressed(String),
}

/// A send in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub message: Message,
    pub status: SendStatus,
    /// Deliveries attempted.
    pub attempts: u32,
    /// Re-sent after a crash caught it in flight on a channel that cannot
    /// recognise a repeat: the candidate may have it twice.
    pub possible_duplicate: bool,
    /// The campaign's next channels with an address for the candidate, to
    /// try in order if this one fails for good (empty for a `via` send).
    pub fallbacks: Vec<crate::engine::Channel>,
    /// When a failed attempt is tried again (epoch ms), while it waits.
    pub retry_at: Option<i64>,
}

/// One line of a candidate's history: what happened, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub at: Instant,
    /// The campaign, or empty for candidate-wide entries.
    pub campaign: String,
    pub kind: LogKind,
}

/// The kinds of history entries; everything reports will need is here:
/// source, channel, variant, state, template, every instant, and each
/// cause as a fact with its values ([`super::causes`]), worded only when
/// shown ([`crate::explain`]).
///
/// Entries are stored by variant position (postcard), so a variant is never
/// removed or moved: the `Legacy*` ones are how layout 3 and earlier wrote
/// causes, in English words; they are read and shown as they are, never
/// written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogKind {
    Created {
        source: Option<String>,
    },
    Received {
        event: String,
        fields: BTreeMap<String, String>,
    },
    Enrolled {
        state: String,
        variants: BTreeMap<String, String>,
        version: String,
    },
    LegacyEntered {
        state: String,
        from: String,
        by: String,
    },
    Sent {
        state: String,
        template: String,
        channel: String,
        key: String,
    },
    LegacyHeld {
        state: String,
        template: String,
        until: i64,
        reason: String,
    },
    LegacyCancelled {
        state: String,
        template: String,
        reason: String,
    },
    LegacySkipped {
        state: String,
        template: String,
        reason: String,
    },
    LegacySuppressed {
        state: String,
        template: String,
        reason: String,
    },
    DeadlineStarted {
        deadline: i64,
    },
    Exited {
        outcome: String,
        converted: bool,
    },
    Delivered {
        key: String,
        channel: String,
        duplicate: bool,
        possible_duplicate: bool,
    },
    LegacyDeliveryFailed {
        key: String,
        channel: String,
        reason: String,
    },
    Migrated {
        from_version: String,
        to_version: String,
    },
    LegacyRetrying {
        key: String,
        channel: String,
        reason: String,
        at: i64,
    },
    FellBack {
        key: String,
        from: String,
        to: String,
    },
    LegacyDeliverySuppressed {
        key: String,
        channel: String,
        reason: String,
    },
    // Layout 4 on.
    /// Moved from one state to another.
    Entered {
        state: String,
        from: String,
        by: Trigger,
    },
    /// A send waits (until epoch ms).
    Held {
        state: String,
        template: String,
        until: i64,
        why: Hold,
    },
    /// A decided send was dropped before it went.
    Cancelled {
        state: String,
        template: String,
        why: Cancel,
    },
    /// A send was passed over.
    Skipped {
        state: String,
        template: String,
        why: Skip,
    },
    /// A send was not made: `limit N total` was reached.
    Suppressed {
        state: String,
        template: String,
        limit: u32,
    },
    /// A send did not go out, and will not on this channel.
    DeliveryFailed {
        key: String,
        channel: String,
        why: Failure,
    },
    /// A send failed and is tried again at `at` (epoch ms).
    Retrying {
        key: String,
        channel: String,
        why: Failure,
        at: i64,
    },
    /// Sent again after a restart caught it in flight on a channel that
    /// cannot recognise a repeat.
    ResentInDoubt {
        key: String,
        channel: String,
    },
    // Layout 5 on.
    /// The history before this entry was pruned under the retention
    /// setting: `entries` lines and `sends` settled sends went; what says
    /// who the candidate is and how each campaign ended was kept.
    Pruned {
        entries: u32,
        sends: u32,
    },
    /// A candidate who had opted out asked for messages again (`via` says
    /// how: "texted START from +15550100100"): their opt-out is lifted
    /// and their contacts that the opt-out suppressed are taken off the
    /// suppression list.
    OptedIn {
        via: String,
    },
}

/// Everything about one candidate, kept in one record (`c` key): who they
/// are, their enrollments, their sends and their history. A state change
/// rewrites this one record instead of one key per kind of record, which
/// is what makes a transition cheap on sled (see the store's docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dossier {
    pub candidate: CandidateRecord,
    /// One per campaign the candidate was ever enrolled in.
    pub enrollments: Vec<Enrollment>,
    /// Their sends not yet settled (queued, in flight, waiting to retry).
    pub outbox: Vec<OutboxEntry>,
    /// Their settled sends (delivered, failed, suppressed), without their
    /// text (the address, subject, template and outcome stay, for audits).
    pub settled: Appendix<OutboxEntry>,
    /// Their history, oldest first.
    pub history: Appendix<LogEntry>,
    /// What a report needs of each of their enrollments, kept up to date by
    /// [`Dossier::log`] (and kept when the history is pruned). Not part of
    /// the dossier's own encoding: the sled store writes it in front of the
    /// dossier in the same record, so a report reads it without decoding
    /// the rest ([`super::sled::dossier_record`]).
    #[serde(skip)]
    pub traces: crate::report::trace::Traces,
}

/// What a candidate's history entry tells a report
/// ([`crate::report::export::fact_of`]): an enrollment's zone, source and
/// language are the candidate's own fields, as the store's traces keep
/// them (the zone is read under the campaign's rule when a report is made).
fn fact_of<'a>(
    candidate: &'a CandidateRecord,
    entry: &'a LogEntry,
) -> Option<crate::report::trace::Fact<'a>> {
    let mut fact = crate::report::export::fact_of(entry)?;
    if matches!(entry.kind, LogKind::Enrolled { .. }) {
        let field = |name: &str| candidate.fields.get(name).map(String::as_str);
        fact.timezone = field("timezone");
        fact.source = field("source");
        fact.language = field("language");
    }
    Some(fact)
}

impl Dossier {
    pub fn new(candidate: CandidateRecord) -> Self {
        Dossier {
            candidate,
            enrollments: Vec::new(),
            outbox: Vec::new(),
            settled: Appendix::default(),
            history: Appendix::default(),
            traces: Default::default(),
        }
    }

    /// Their report traces made from their history alone (what a pruned
    /// history took is not in it).
    pub fn traces_from_history(&self) -> Result<crate::report::trace::Traces, postcard::Error> {
        let mut traces = crate::report::trace::Traces::default();
        for entry in &self.history.items()? {
            if let Some(fact) = fact_of(&self.candidate, entry) {
                traces.take(&fact);
            }
        }
        Ok(traces)
    }

    /// Appends a line to their history, and to their report traces when
    /// it is one a report reads.
    pub fn log(&mut self, entry: &LogEntry) {
        self.history.push(entry);
        if let Some(fact) = fact_of(&self.candidate, entry) {
            self.traces.take(&fact);
        }
    }

    pub fn enrollment(&self, campaign: &str) -> Option<&Enrollment> {
        self.enrollments.iter().find(|e| e.campaign == campaign)
    }

    pub fn put_enrollment(&mut self, enrollment: Enrollment) {
        match self
            .enrollments
            .iter_mut()
            .find(|e| e.campaign == enrollment.campaign)
        {
            Some(e) => *e = enrollment,
            None => self.enrollments.push(enrollment),
        }
    }

    /// A send by its key: unsettled, else the last settled record of it.
    pub fn send(&self, key: &str) -> Result<Option<OutboxEntry>, postcard::Error> {
        if let Some(e) = self.outbox.iter().find(|e| e.message.key == key) {
            return Ok(Some(e.clone()));
        }
        Ok(self
            .settled
            .items()?
            .into_iter()
            .rev()
            .find(|e| e.message.key == key))
    }

    /// Every send, unsettled ones last (a send settled again replaces its
    /// earlier record).
    pub fn sends(&self) -> Result<Vec<OutboxEntry>, postcard::Error> {
        let mut out: Vec<OutboxEntry> = Vec::new();
        for e in self.settled.items()?.into_iter().chain(self.outbox.clone()) {
            match out.iter_mut().find(|o| o.message.key == e.message.key) {
                Some(o) => *o = e,
                None => out.push(e),
            }
        }
        Ok(out)
    }

    pub fn put_send(&mut self, mut entry: OutboxEntry) {
        let at = self
            .outbox
            .iter()
            .position(|e| e.message.key == entry.message.key);
        if entry.status == SendStatus::Queued {
            match at {
                Some(i) => self.outbox[i] = entry,
                None => self.outbox.push(entry),
            }
            return;
        }
        if let Some(i) = at {
            self.outbox.remove(i);
        }
        // Settled: the text goes (it was most of a dossier's bytes, written
        // again on every step); the address, subject, template, channel,
        // key and outcome stay. `nudge render` shows the text again.
        entry.message.body = String::new();
        entry.message.html = None;
        entry.message.unsubscribe_url = None;
        self.settled.push(&entry);
    }
}

/// Records kept as their encoded bytes one after another: appended
/// without decoding what is already there, decoded only when read. A
/// candidate's history and settled sends grow with every step; kept this
/// way, a transition copies their bytes instead of decoding and encoding
/// each line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appendix<T> {
    bytes: Vec<u8>,
    of: std::marker::PhantomData<T>,
}

impl<T> Default for Appendix<T> {
    fn default() -> Self {
        Appendix {
            bytes: Vec::new(),
            of: std::marker::PhantomData,
        }
    }
}

impl<T: Serialize + serde::de::DeserializeOwned> Appendix<T> {
    pub fn push(&mut self, item: &T) {
        let bytes = std::mem::take(&mut self.bytes);
        self.bytes = postcard::to_extend(item, bytes).unwrap_or_default();
    }

    pub fn items(&self) -> Result<Vec<T>, postcard::Error> {
        let mut out = Vec::new();
        let mut rest = &self.bytes[..];
        while !rest.is_empty() {
            let (item, tail) = postcard::take_from_bytes(rest)?;
            out.push(item);
            rest = tail;
        }
        Ok(out)
    }
}

impl<T> Serialize for Appendix<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.bytes)
    }
}

impl<'de, T> Deserialize<'de> for Appendix<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl<'de> serde::de::Visitor<'de> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("encoded records")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        Ok(Appendix {
            bytes: deserializer.deserialize_bytes(Bytes)?,
            of: std::marker::PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_is_the_trimmed_lower_case_contact() {
        for (email, want) in [
            ("  Ann.Lee@Example.COM ", "email:ann.lee@example.com"),
            ("x@y.z", "email:x@y.z"),
            ("ÉLODIE@Exemple.fr", "email:élodie@exemple.fr"),
            ("\tK15@EXAMPLE.com\n", "email:k15@example.com"),
        ] {
            assert_eq!(email_identity(email), want);
            assert_eq!(
                email_identity(email),
                format!("email:{}", email.trim().to_lowercase())
            );
        }
        assert_eq!(phone_identity("+1 (415) 555-0100"), "phone:+14155550100");
        assert_eq!(phone_identity("+33612345678"), "phone:+33612345678");
    }
}
