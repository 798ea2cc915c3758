//! How a dossier is kept under its `c` key: since layout 8, its report
//! traces first, then the dossier itself, so a report reads an
//! enrollment's figures from the front of each record and stops there.
//!
//! A record of layout 9 starts with [`MARK`]; one of layout 8 with
//! [`MARK_8`] (the same form, but its messages' `scheduled_at` written as
//! text: [`crate::store::instant_form`]); one written by an earlier layout
//! is the dossier alone (instants as text too), which starts with the
//! candidate id's length and then an `Option` tag (0 or 1), so it never
//! starts with a mark (even an empty id would be followed by 0 or 1, never
//! 8 or 9). Such a record's traces are made from its history when it is
//! read. Opening a store of an earlier layout rewrites every record in
//! this form (`SledStore::open`'s migration), so records of the earlier
//! forms are only read there, or when written behind the store's back.

use crate::report::trace::{TraceRef, Traces};
use crate::report::trace_wire;
use crate::store::instant_form::in_text_form;
use crate::store::{Appendix, Dossier};

/// The first two bytes of a record of this layout.
pub const MARK: [u8; 2] = [0, 9];

/// The first two bytes of a record of layout 8.
pub const MARK_8: [u8; 2] = [0, 8];

/// The record of a dossier: [`MARK`], its traces, the dossier.
pub fn encode(dossier: &Dossier) -> Vec<u8> {
    // Sized for a typical dossier, so encoding seldom grows it.
    let mut out = Vec::with_capacity(2048);
    out.extend_from_slice(&MARK);
    trace_wire::encode(&dossier.traces, &mut out);
    postcard::to_extend(dossier, out).unwrap_or_default()
}

/// The dossier in a record of any form.
pub fn decode(bytes: &[u8]) -> Result<Dossier, postcard::Error> {
    if let Some(rest) = bytes.strip_prefix(&MARK) {
        let (traces, rest) = trace_wire::decode(rest)?;
        let mut dossier: Dossier = postcard::from_bytes(rest)?;
        dossier.traces = traces;
        return Ok(dossier);
    }
    // An earlier layout's: instants as text, the settled sends too.
    let mut dossier = match bytes.strip_prefix(&MARK_8) {
        Some(rest) => {
            let (traces, rest) = trace_wire::decode(rest)?;
            let mut dossier: Dossier = in_text_form(|| postcard::from_bytes(rest))?;
            dossier.traces = traces;
            dossier
        }
        None => {
            let mut dossier: Dossier = in_text_form(|| postcard::from_bytes(bytes))?;
            dossier.traces = dossier.traces_from_history()?;
            dossier
        }
    };
    let settled = in_text_form(|| dossier.settled.items())?;
    dossier.settled = Appendix::default();
    for entry in &settled {
        dossier.settled.push(entry);
    }
    Ok(dossier)
}

/// The traces at the front of a record that carries them (layout 8 or 9).
fn front(bytes: &[u8]) -> Option<&[u8]> {
    bytes
        .strip_prefix(&MARK)
        .or_else(|| bytes.strip_prefix(&MARK_8))
}

/// Only the traces of a record, read from its front when it carries them.
pub fn traces(bytes: &[u8]) -> Result<Traces, postcard::Error> {
    match front(bytes) {
        Some(rest) => Ok(trace_wire::decode(rest)?.0),
        None => decode(bytes).map(|d| d.traces),
    }
}

/// The traces in front of a record that carries them, read in place.
pub fn traces_ref(bytes: &[u8]) -> Result<Vec<TraceRef<'_>>, postcard::Error> {
    let rest = front(bytes).ok_or(postcard::Error::DeserializeBadEncoding)?;
    trace_wire::decode_ref(rest)
}

/// Whether a record carries its traces at its front (layout 8 or 9), so
/// that a report reads them there.
pub fn has_traces(bytes: &[u8]) -> bool {
    front(bytes).is_some()
}

/// Whether a record is in this layout's form.
pub fn is_current(bytes: &[u8]) -> bool {
    bytes.starts_with(&MARK)
}

/// A record of a layout before 8, as it was written then: for tests of
/// the migration.
pub fn encode_unmarked(dossier: &Dossier) -> Vec<u8> {
    let old = settled_as_text(dossier);
    in_text_form(|| postcard::to_stdvec(&old)).unwrap_or_default()
}

/// A record of layout 8, as it was written then: for tests of the
/// migration.
pub fn encode_layout_8(dossier: &Dossier) -> Vec<u8> {
    let old = settled_as_text(dossier);
    let mut out = MARK_8.to_vec();
    trace_wire::encode(&old.traces, &mut out);
    in_text_form(|| postcard::to_extend(&old, out)).unwrap_or_default()
}

/// The dossier with its settled sends encoded as layouts before 9 did.
fn settled_as_text(dossier: &Dossier) -> Dossier {
    let mut old = dossier.clone();
    if let Ok(settled) = dossier.settled.items() {
        old.settled = Appendix::default();
        in_text_form(|| {
            for entry in &settled {
                old.settled.push(entry);
            }
        });
    }
    old
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CandidateRecord, LogEntry, LogKind};

    fn dossier() -> Dossier {
        let mut d = Dossier::new(CandidateRecord {
            id: "c7".into(),
            external_id: Some("ext".into()),
            fields: [("source".to_string(), "indeed".to_string())].into(),
            token: "c7-00".into(),
            created_at: chrono::DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
            opted_out: false,
        });
        d.log(&LogEntry {
            at: chrono::DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
            campaign: "hiring".into(),
            kind: LogKind::Enrolled {
                state: "start".into(),
                variants: [("copy".to_string(), "warm".to_string())].into(),
                version: "1".into(),
            },
        });
        let at = |s: i64| chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + s).unwrap();
        let kinds = [
            LogKind::Sent {
                state: "invite".into(),
                template: "invite".into(),
                channel: "email".into(),
                key: "k1".into(),
            },
            LogKind::Delivered {
                key: "k1".into(),
                channel: "email".into(),
                duplicate: false,
                possible_duplicate: false,
            },
            LogKind::Received {
                event: "clicked".into(),
                fields: [("device".to_string(), "mobile".to_string())].into(),
            },
            LogKind::Received {
                event: "bounced".into(),
                fields: [("channel".to_string(), "sms".to_string())].into(),
            },
            LogKind::Exited {
                outcome: "done".into(),
                converted: true,
            },
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            d.log(&LogEntry {
                at: at(1000 * (i as i64 + 1)),
                campaign: "hiring".into(),
                kind,
            });
        }
        d
    }

    #[test]
    fn a_record_gives_back_its_dossier_and_traces() {
        let d = dossier();
        assert_eq!(d.traces.0.len(), 1);
        let t = &d.traces.0[0];
        assert_eq!(t.first_sent, Some((1_700_000_001_000, "email".into())));
        assert_eq!(t.device.as_deref(), Some("mobile"));
        assert_eq!(t.bounced_on, ["sms"]);
        assert_eq!(t.exited.as_deref(), Some("done"));
        let bytes = encode(&d);
        assert!(is_current(&bytes));
        assert_eq!(decode(&bytes).unwrap(), d);
        assert_eq!(traces(&bytes).unwrap(), d.traces);
        let borrowed = traces_ref(&bytes).unwrap();
        assert_eq!(borrowed, d.traces.refs());
    }

    #[test]
    fn a_record_of_an_earlier_layout_gets_traces_from_its_history() {
        let d = dossier();
        let old = encode_unmarked(&d);
        assert!(!is_current(&old));
        assert_eq!(decode(&old).unwrap(), d);
        assert_eq!(traces(&old).unwrap(), d.traces);
    }

    /// A dossier with a send waiting and one settled.
    fn with_sends() -> Dossier {
        let mut d = dossier();
        let message = crate::channels::Message {
            key: "hiring/c7/1/0".into(),
            campaign: "hiring".into(),
            candidate: "c7".into(),
            template: "invite".into(),
            channel: crate::engine::Channel::Email,
            to: "c7@example.com".into(),
            subject: Some("Hello".into()),
            body: "Hi".into(),
            html: None,
            unsubscribe_url: None,
            scheduled_at: "2026-12-04T01:02:03.123456789Z".parse().unwrap(),
            in_flight: false,
        };
        let entry = crate::store::OutboxEntry {
            message,
            status: crate::store::SendStatus::Queued,
            attempts: 0,
            possible_duplicate: false,
            fallbacks: Vec::new(),
            retry_at: None,
        };
        d.settled.push(&entry);
        d.outbox.push(entry);
        d
    }

    #[test]
    fn a_record_of_layout_8_reads_as_it_was_written() {
        let d = with_sends();
        let old = encode_layout_8(&d);
        assert!(!is_current(&old) && has_traces(&old));
        assert_eq!(decode(&old).unwrap(), d);
        assert_eq!(traces(&old).unwrap(), d.traces);
        let unmarked = encode_unmarked(&d);
        assert_eq!(decode(&unmarked).unwrap(), d);
        // This layout's form is shorter by the instants' text.
        assert!(encode(&d).len() + 30 < old.len());
    }

    #[test]
    fn a_cut_record_does_not_decode() {
        let bytes = encode(&dossier());
        assert!(decode(&bytes[..bytes.len() - 3]).is_err());
        assert!(traces(&bytes[..4]).is_err());
    }
}
