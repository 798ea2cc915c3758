//! The durable store: candidates, enrollments, timers ordered by due
//! instant, the outbox of sends, history, and counters, in the records
//! ([`records`], [`causes`]) and words ([`Counter`], [`SendKey`]) of the
//! domain. The one implementation is on sled ([`sled`]: its key layout,
//! dossiers, delivery journal, timer buckets, write-behind and identity
//! digests are its own); the runtime sees none of that.

pub mod causes;
mod names;
mod records;
pub mod sled;

use std::fmt;
use std::path::PathBuf;

pub use self::sled::{raw, Store, Txn, LAYOUT_FILE, SCHEMA_VERSION};
pub use names::{Counter, SendKey};
pub use records::{
    Appendix, CandidateRecord, Dossier, Enrollment, LogEntry, LogKind, OutboxEntry, SendStatus,
    TimerKind,
};

use crate::engine::Instant;

/// Why the store cannot be used.
#[derive(Debug)]
pub enum StoreError {
    /// Another process (normally the daemon) holds the store.
    Locked { path: PathBuf },
    /// Written by a newer nudge: never touched.
    NewerSchema { path: PathBuf, found: u32 },
    /// Written by an older nudge whose layout this build does not convert.
    OlderSchema { path: PathBuf, found: u32 },
    /// Not a nudge store, or damaged: never touched.
    Unreadable { path: PathBuf, why: String },
    /// A record that does not decode.
    Corrupt { key: String, why: String },
    /// The operating system failed the store (a file, a thread).
    Io(std::io::Error),
    /// The storage engine failed.
    Backend(String),
    /// Not written, because the batch written behind before it could not
    /// be written.
    NotWritten,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Locked { path } => write!(
                f,
                "the store `{}` is in use by another process (is `nudge run` running?)",
                path.display()
            ),
            StoreError::NewerSchema { path, found } => write!(
                f,
                "the store `{}` was written by a newer nudge (layout version {found}; this build reads version {SCHEMA_VERSION}); upgrade nudge, the store was left untouched",
                path.display()
            ),
            StoreError::OlderSchema { path, found } => write!(
                f,
                "the store `{}` was written by an older nudge (layout version {found}; this build reads version {SCHEMA_VERSION} and cannot convert it); run the nudge that wrote it, or start a new store; the store was left untouched",
                path.display()
            ),
            StoreError::Unreadable { path, why } => write!(
                f,
                "`{}` is not a nudge store this build can read ({why}); it was left untouched",
                path.display()
            ),
            StoreError::Corrupt { key, why } => write!(f, "damaged record `{key}`: {why}"),
            StoreError::Io(e) => write!(f, "store error: {e}"),
            StoreError::Backend(why) => write!(f, "store error: {why}"),
            StoreError::NotWritten => {
                f.write_str("not written: the batch before it could not be written")
            }
        }
    }
}

impl std::error::Error for StoreError {}

/// An enrollment's timer: when it falls due, and what for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTimer {
    pub due: Instant,
    pub candidate: String,
    pub campaign: String,
    pub kind: TimerKind,
}
