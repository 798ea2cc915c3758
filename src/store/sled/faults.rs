//! Faults injected into the store's writes, for the tests of what nudge does
//! when a disk fails in ways a test cannot easily cause for real (an I/O
//! error on flush, a write that never returns).
//!
//! `NUDGE_STORE_FAULTS=<file>` in the environment names a file whose first
//! word, read before each write, says what that write does:
//!
//! | word | the write |
//! |---|---|
//! | `fail` | fails with an I/O error (as from a full disk) before anything is written |
//! | `fail-flush` | is applied, then its flush fails with an I/O error |
//! | `stall` | waits, without writing, for as long as the file says `stall` |
//! | anything else, or no file | goes as usual |
//!
//! Without the variable (as in production) each write costs one check of a
//! value read once.

use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use super::StoreError;

/// The fault file, if the environment names one.
fn fault_file() -> Option<&'static PathBuf> {
    static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    FILE.get_or_init(|| std::env::var_os("NUDGE_STORE_FAULTS").map(PathBuf::from))
        .as_ref()
}

/// The word the fault file says now.
fn fault() -> Option<String> {
    let file = fault_file()?;
    let text = std::fs::read_to_string(file).ok()?;
    text.split_whitespace().next().map(str::to_owned)
}

fn injected(what: &str) -> StoreError {
    StoreError::Io(io::Error::other(format!(
        "{what} (injected by NUDGE_STORE_FAULTS)"
    )))
}

/// Before a batch is applied.
pub fn before_write() -> Result<(), StoreError> {
    if fault_file().is_none() {
        return Ok(());
    }
    loop {
        match fault().as_deref() {
            Some("fail") => return Err(injected("No space left on device")),
            Some("stall") => std::thread::sleep(Duration::from_millis(20)),
            _ => return Ok(()),
        }
    }
}

/// After a batch is applied, before it is flushed.
pub fn before_flush() -> Result<(), StoreError> {
    if fault_file().is_none() {
        return Ok(());
    }
    match fault().as_deref() {
        Some("fail-flush") => Err(injected("Input/output error on flush")),
        _ => Ok(()),
    }
}
