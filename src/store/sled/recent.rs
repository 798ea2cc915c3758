//! The dossiers the last commits held, kept decoded for the next ones.
//!
//! A send in flight touches its candidate's dossier in two commits close
//! together: the one that marks it in flight (the commit that queues it,
//! for a channel the core marks at once, or the dispatcher's), then the one
//! that records the channel's answer a moment later. A committing
//! transaction leaves here the dossiers of the candidates it put a send in
//! flight for (it saw the latest of each, and the core is the store's only
//! writer), and the next transaction that needs one takes it, moving it,
//! instead of reading it from sled and decoding it. Other dossiers are not
//! kept, not even those with a send queued: a queued send may wait long
//! for the dispatcher (a paced channel, a backlog), so keeping them would
//! mostly mean freeing them later, cold, unused (a million enrollments
//! spent 4% of their time so).
//!
//! What is here is always what sled holds or the batch being written
//! behind will hold:
//! - only a committing transaction puts dossiers here (after its write,
//!   or as it hands its batch to the writer thread), and a transaction
//!   takes what it reads, so a reader that never commits only takes;
//! - a transaction that wrote dossier records by hand ([`super::raw`])
//!   puts nothing here;
//! - when a write fails, the store clears it with everything else it
//!   rereads ([`super::SledStore::reread`]).

use std::collections::VecDeque;
use std::sync::Mutex;

use foldhash::HashMap;

use crate::store::Dossier;

/// Dossiers kept: enough for the sends in flight at once (see
/// `runtime::core::journal::PREMARKED_AT_MOST`) and a batch of answers.
pub const KEPT: usize = 2048;

#[derive(Default)]
pub struct Recent(Mutex<Kept>);

#[derive(Default)]
struct Kept {
    /// Candidate id → (when put, dossier).
    dossiers: HashMap<String, (u64, Dossier)>,
    /// Ids in the order put; an id taken or put again since is stale here
    /// (its number differs) and skipped.
    order: VecDeque<(u64, String)>,
    put: u64,
}

impl Recent {
    /// The candidate's dossier if a recent commit held it, taken out.
    pub fn take(&self, candidate: &str) -> Option<Dossier> {
        let mut kept = self.lock();
        if kept.dossiers.is_empty() {
            return None;
        }
        kept.dossiers.remove(candidate).map(|(_, d)| d)
    }

    /// Keeps the dossiers given (those of sends a commit put in flight)
    /// that have a send not yet settled;
    /// returns the others and those that no longer fit, for the caller to
    /// drop where it suits.
    pub fn keep(&self, dossiers: impl IntoIterator<Item = (String, Dossier)>) -> Vec<Dossier> {
        let mut kept = self.lock();
        let kept = &mut *kept;
        if kept.dossiers.capacity() == 0 {
            // Room for a full set and a batch beyond it, so that it never
            // grows (moving every dossier) once in use.
            kept.dossiers.reserve(2 * KEPT);
        }
        let mut out = Vec::new();
        for (id, mut dossier) in dossiers {
            if dossier.outbox.is_empty() {
                out.push(dossier);
                continue;
            }
            // Not stored, so not what a read would give.
            for entry in &mut dossier.outbox {
                entry.message.in_flight = false;
            }
            kept.put += 1;
            kept.order.push_back((kept.put, id.clone()));
            if let Some((_, old)) = kept.dossiers.insert(id, (kept.put, dossier)) {
                out.push(old);
            }
        }
        // Oldest first, until it fits and the order holds few stale ids.
        while kept.dossiers.len() > KEPT || kept.order.len() > 2 * KEPT {
            let Some((put, id)) = kept.order.pop_front() else {
                break;
            };
            if kept.dossiers.get(&id).is_some_and(|(p, _)| *p == put) {
                if let Some((_, d)) = kept.dossiers.remove(&id) {
                    out.push(d);
                }
            }
        }
        out
    }

    /// Whether the candidate's dossier is kept (for tests).
    pub fn holds(&self, candidate: &str) -> bool {
        self.lock().dossiers.contains_key(candidate)
    }

    /// Forgets everything (a write failed: memory may hold what the store
    /// does not).
    pub fn clear(&self) -> Vec<Dossier> {
        let mut kept = self.lock();
        kept.order.clear();
        kept.dossiers.drain().map(|(_, (_, d))| d).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CandidateRecord;

    /// A dossier with a send waiting.
    fn dossier(id: &str) -> Dossier {
        let mut d = settled(id);
        d.outbox.push(crate::store::OutboxEntry {
            message: crate::channels::Message {
                key: format!("hiring/{id}/1/0"),
                campaign: "hiring".into(),
                candidate: id.into(),
                template: "invite".into(),
                channel: crate::engine::Channel::Email,
                to: format!("{id}@example.com"),
                subject: None,
                body: "Hi".into(),
                html: None,
                unsubscribe_url: None,
                scheduled_at: chrono::DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
                in_flight: true,
            },
            status: crate::store::SendStatus::Queued,
            attempts: 0,
            possible_duplicate: false,
            fallbacks: Vec::new(),
            retry_at: None,
        });
        d
    }

    /// A dossier with nothing waiting.
    fn settled(id: &str) -> Dossier {
        Dossier::new(CandidateRecord {
            id: id.into(),
            external_id: None,
            fields: Default::default(),
            token: format!("{id}-t"),
            created_at: chrono::DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
            opted_out: false,
        })
    }

    #[test]
    fn only_a_dossier_with_a_send_waiting_is_kept_and_as_a_read_gives_it() {
        let recent = Recent::default();
        let out = recent.keep([
            ("a".to_string(), dossier("a")),
            ("b".to_string(), settled("b")),
        ]);
        assert_eq!(out.len(), 1);
        assert!(recent.take("b").is_none());
        let a = recent.take("a").unwrap();
        assert!(!a.outbox[0].message.in_flight, "not stored, so not kept");
    }

    #[test]
    fn a_dossier_is_taken_once_and_the_oldest_go_first() {
        let recent = Recent::default();
        let out = recent.keep((0..KEPT + 10).map(|i| (format!("c{i}"), dossier(&format!("c{i}")))));
        assert_eq!(out.len(), 10);
        assert!(recent.take("c0").is_none(), "the oldest went");
        assert_eq!(recent.take("c10").unwrap().candidate.id, "c10");
        assert!(recent.take("c10").is_none(), "taken once");
        // Put again: the newer one is kept, the older given back.
        let out = recent.keep([("c11".to_string(), dossier("c11"))]);
        assert_eq!(out.len(), 1);
        assert!(recent.take("c11").is_some());
        assert_eq!(recent.clear().len(), KEPT - 2);
        assert!(recent.take("c20").is_none());
    }

    #[test]
    fn taking_and_putting_again_keeps_the_order_bounded() {
        let recent = Recent::default();
        for round in 0..10 {
            recent.keep((0..KEPT).map(|i| (format!("c{i}"), dossier("x"))));
            for i in 0..KEPT {
                assert!(recent.take(&format!("c{i}")).is_some(), "round {round}");
            }
        }
        assert!(recent.lock().order.len() <= 2 * KEPT);
    }
}
