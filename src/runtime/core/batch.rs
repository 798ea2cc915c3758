//! Batches on two threads and written behind: the write of a batch of
//! enrollments overlapped with the next ([`Core::tick_behind`]), and a large
//! batch's steps shared with a helper thread.

use super::*;

/// A batch being written behind.
pub(super) struct InFlight {
    pub(super) landed: Landed,
}

/// What [`Core::tick_behind`] did.
#[derive(Debug)]
pub struct Handoff {
    /// The batch that was being written, now written (or not: nothing of
    /// it may be acknowledged or sent then).
    pub landed: Option<Result<Landed, StoreError>>,
    /// This batch.
    pub this: This,
}

/// Where a batch given to [`Core::tick_behind`] is.
#[derive(Debug)]
pub enum This {
    /// Being written behind: it comes back from the next call or from
    /// [`Core::land`]. It took this many timer entries.
    Behind { fired: usize },
    /// Written; it took `fired` timer entries.
    Written { landed: Landed, fired: usize },
    /// Not written: nothing of it may be acknowledged or sent.
    Failed(StoreError),
}

/// Due timers in one batch from which their steps are shared between two
/// threads.
pub(super) const PARALLEL_STEPS: usize = 64;

/// The candidates a batch's helper thread takes: the later half of the
/// distinct ones that `movable` lets go, in batch order; none when there
/// are too few for a thread to be worth it.
pub(super) fn helper_share<'s>(
    ids: impl IntoIterator<Item = &'s str>,
    movable: impl Fn(&str) -> bool,
) -> Option<HashSet<String>> {
    let mut seen = HashSet::new();
    let free: Vec<&str> = ids
        .into_iter()
        .filter(|id| movable(id) && seen.insert(*id))
        .collect();
    (free.len() >= PARALLEL_STEPS).then(|| {
        free[free.len() / 2..]
            .iter()
            .map(|id| id.to_string())
            .collect()
    })
}

impl<S: Store> Core<S> {
    /// [`Core::tick`], with the write of a batch of enrollments behind:
    /// when the commands are all enrollments, they are run while the batch
    /// before is written, and this batch is handed to the store's writer
    /// thread and comes back from the next call or from [`Core::land`];
    /// anything else is done as [`Core::tick`] does, after the batch before
    /// is written. The batch before is returned, to be acknowledged and
    /// sent now that it is durable. Between calls, use nothing but
    /// `tick_behind` and `land`: the rest of the core reads the store's
    /// committed records directly. A store that cannot write behind
    /// commits at once ([`crate::store`]'s `commit_behind`).
    ///
    /// Why only enrollments: new candidates' enrollments read nothing from
    /// the store but what the batch before writes (counters), which comes
    /// from that batch's own writes. The store on disk lets no read through
    /// while it applies a batch, and commits made on its writer thread were
    /// measured slower for firing and deliveries than commits made here.
    pub fn tick_behind(&mut self, commands: Vec<Command>, now: Instant, limit: usize) -> Handoff {
        let behind = !commands.is_empty()
            && commands
                .iter()
                .all(|c| matches!(c, Command::Enroll(_) | Command::Apply(_)));
        if !behind {
            let landed = self.land();
            let this = match self.tick(commands, now, limit) {
                Ok((replies, fired, out)) => This::Written {
                    landed: Landed { replies, out },
                    fired,
                },
                Err(e) => This::Failed(e),
            };
            return Handoff { landed, this };
        }
        let store = self.store.clone();
        let mut txn = store.begin();
        let mut out = Vec::new();
        let run = self.run_into(&mut txn, commands, now, &mut out);
        let landed = self.land();
        let replies = match (run, &landed) {
            (Err(e), _) => {
                return Handoff {
                    landed,
                    this: This::Failed(e),
                }
            }
            (Ok(_), Some(Err(_))) => {
                // Run on what was not written: refused too.
                let e = StoreError::NotWritten;
                return Handoff {
                    landed,
                    this: This::Failed(e),
                };
            }
            (Ok(replies), _) => replies,
        };
        let taken = if limit == 0 {
            0
        } else {
            match self.fire_into(&mut txn, now, limit, &mut out) {
                Ok(fired) => fired,
                Err(e) => {
                    return Handoff {
                        landed,
                        this: This::Failed(e),
                    }
                }
            }
        };
        let this = match txn.commit_behind() {
            Ok(()) => {
                self.in_flight = Some(InFlight {
                    landed: Landed { replies, out },
                });
                This::Behind { fired: taken }
            }
            Err(e) => {
                // Its timers are taken again, and what memory took from it
                // (the journal, the identities) is read again.
                self.forget_unwritten();
                This::Failed(e)
            }
        };
        Handoff { landed, this }
    }

    /// Waits for the batch being written behind; `None` when there is none.
    /// When it could not be written, what the core holds in memory of it
    /// (and of the store) is read again from the store.
    pub fn land(&mut self) -> Option<Result<Landed, StoreError>> {
        let flight = self.in_flight.take()?;
        match self.store.settle() {
            Ok(()) => Some(Ok(flight.landed)),
            Err(e) => {
                self.forget_unwritten();
                Some(Err(e))
            }
        }
    }

    /// After a batch written behind was not written: what memory holds of
    /// it (paused flags here; the timers taken, the delivery journal and
    /// identities in the store) is read again from the store.
    pub(super) fn forget_unwritten(&mut self) {
        self.paused_flags().clear();
        if let Err(again) = self.store.reread() {
            tracing::error!(%again, "cannot read the delivery journal again");
        }
    }

    /// Makes the store writable again after a write failed (see
    /// [`Store::recover_writes`]); what memory holds of the store is read
    /// again.
    pub fn recover_writes(&mut self) -> Result<(), StoreError> {
        self.store.recover_writes()?;
        self.paused_flags().clear();
        Ok(())
    }

    /// Runs `work` over the first of `halves` in `txn` and over the second
    /// in a transaction split off `txn` for `their_candidates` (whom the
    /// second half must be about), on two threads. The helper's writes are
    /// then absorbed back into `txn`, and its sends follow this thread's in
    /// `out`.
    pub(super) fn on_two_threads<'c, W: Send, R: Send>(
        &self,
        txn: &mut Txn<S>,
        their_candidates: impl IntoIterator<Item = &'c str>,
        (mine, theirs): (W, W),
        out: &mut Outgoing,
        work: impl Fn(&mut Txn<S>, W, &mut Outgoing) -> Result<R, StoreError> + Sync,
    ) -> Result<(R, R), StoreError> {
        let Some(mut other) = txn.split_off(their_candidates) else {
            // The store keeps a batch on one thread.
            let mine = work(txn, mine, out)?;
            let theirs = work(txn, theirs, out)?;
            return Ok((mine, theirs));
        };
        // On the pool's two threads, which live as long as the process (a
        // thread made for each batch costs its start and a fresh heap whose
        // blocks other threads then free).
        let (mine, theirs) = rayon::join(
            || work(txn, mine, out),
            || {
                let mut out = Vec::new();
                work(&mut other, theirs, &mut out).map(|r| (r, out))
            },
        );
        let mine = mine?;
        let (theirs, their_out) = theirs?;
        txn.absorb(other);
        out.extend(their_out);
        Ok((mine, theirs))
    }
}
