//! Faults injected into deliveries, for the tests of what the daemon does
//! when a channel fails inside nudge (a bug in a channel's code).
//!
//! `NUDGE_CHANNEL_FAULTS=<file>` names a file whose first word, read before
//! each delivery, says what it does: `panic` panics in the delivery's task;
//! anything else, or no file, delivers as usual. Without the variable (as in
//! production) each delivery costs one check of a value read once.

use std::path::PathBuf;
use std::sync::OnceLock;

/// Before a channel is handed a message.
pub fn before_delivery() {
    static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    let Some(file) = FILE
        .get_or_init(|| std::env::var_os("NUDGE_CHANNEL_FAULTS").map(PathBuf::from))
        .as_ref()
    else {
        return;
    };
    let word = std::fs::read_to_string(file).unwrap_or_default();
    if word.split_whitespace().next() == Some("panic") {
        panic!("injected by NUDGE_CHANNEL_FAULTS");
    }
}
