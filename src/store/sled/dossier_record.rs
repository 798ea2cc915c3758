//! How a dossier is kept under its `c` key: since layout 8, its report
//! traces first, then the dossier itself, so a report reads an
//! enrollment's figures from the front of each record and stops there.
//!
//! A record of layout 8 starts with [`MARK`]; one written by an earlier
//! layout is the dossier alone, which starts with the candidate id's length
//! and then an `Option` tag (0 or 1), so it never starts with `MARK` (even
//! an empty id would be followed by 0 or 1, never 8). Such a record's
//! traces are made from its history when it is read; opening a store of an
//! earlier layout rewrites every record in this form
//! (`SledStore::open`'s migration), so that only happens to records written
//! behind the store's back.

use crate::report::trace::{Traces, TracesRef};
use crate::report::trace_wire;
use crate::store::Dossier;

/// The first two bytes of a record that carries its traces.
pub const MARK: [u8; 2] = [0, 8];

/// The record of a dossier: [`MARK`], its traces, the dossier.
pub fn encode(dossier: &Dossier) -> Vec<u8> {
    // Sized for a typical dossier, so encoding seldom grows it.
    let mut out = Vec::with_capacity(2048);
    out.extend_from_slice(&MARK);
    trace_wire::encode(&dossier.traces, &mut out);
    postcard::to_extend(dossier, out).unwrap_or_default()
}

/// The dossier in a record of either form.
pub fn decode(bytes: &[u8]) -> Result<Dossier, postcard::Error> {
    match bytes.strip_prefix(&MARK) {
        Some(rest) => {
            let (traces, rest) = trace_wire::decode(rest)?;
            let mut dossier: Dossier = postcard::from_bytes(rest)?;
            dossier.traces = traces;
            Ok(dossier)
        }
        None => {
            let mut dossier: Dossier = postcard::from_bytes(bytes)?;
            dossier.traces = dossier.traces_from_history()?;
            Ok(dossier)
        }
    }
}

/// Only the traces of a record, read from its front when it carries them.
pub fn traces(bytes: &[u8]) -> Result<Traces, postcard::Error> {
    match bytes.strip_prefix(&MARK) {
        Some(rest) => Ok(trace_wire::decode(rest)?.0),
        None => decode(bytes).map(|d| d.traces),
    }
}

/// The traces in front of a record that carries them, read in place.
pub fn traces_ref(bytes: &[u8]) -> Result<TracesRef<'_>, postcard::Error> {
    let rest = bytes
        .strip_prefix(&MARK)
        .ok_or(postcard::Error::DeserializeBadEncoding)?;
    Ok(TracesRef(trace_wire::decode_ref(rest)?))
}

/// Whether a record carries its traces (layout 8).
pub fn is_current(bytes: &[u8]) -> bool {
    bytes.starts_with(&MARK)
}

/// A record of an earlier layout, as it was written then: for tests of the
/// migration.
pub fn encode_unmarked(dossier: &Dossier) -> Vec<u8> {
    postcard::to_stdvec(dossier).unwrap_or_default()
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
        assert_eq!(borrowed.0, d.traces.refs());
    }

    #[test]
    fn a_record_of_an_earlier_layout_gets_traces_from_its_history() {
        let d = dossier();
        let old = encode_unmarked(&d);
        assert!(!is_current(&old));
        assert_eq!(decode(&old).unwrap(), d);
        assert_eq!(traces(&old).unwrap(), d.traces);
    }

    #[test]
    fn a_cut_record_does_not_decode() {
        let bytes = encode(&dossier());
        assert!(decode(&bytes[..bytes.len() - 3]).is_err());
        assert!(traces(&bytes[..4]).is_err());
    }
}
