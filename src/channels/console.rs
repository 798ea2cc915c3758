//! The console channel: prints each message for a person watching a
//! terminal, a header line then the text:
//!
//! ```text
//! ── sms to +15550100 · warehouse_associate · invite-short · key 3f9a0c1d2e4b…
//! Acme Logistics: Hi Ana, next step for Warehouse Associate ...
//! ```
//!
//! Email adds a `Subject:` line under the header. Nothing is remembered, so
//! the same key printed twice is printed twice.

use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use super::{Delivered, Message, SendError};

/// How many characters of the idempotency key the header shows.
const KEY_SHOWN: usize = 12;

/// Prints messages to stdout, or to any writer (tests).
pub struct Console {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl fmt::Debug for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Console").finish_non_exhaustive()
    }
}

impl Console {
    /// Prints to the process's standard output.
    pub fn stdout() -> Console {
        Console::new(io::stdout())
    }

    /// Prints to `writer`.
    pub fn new(writer: impl Write + Send + 'static) -> Console {
        Console {
            out: Arc::new(Mutex::new(Box::new(writer))),
        }
    }

    /// Prints `msg` in one write, so messages from concurrent tasks never
    /// interleave.
    pub async fn deliver(&self, msg: &Message) -> Result<Delivered, SendError> {
        let text = render(msg);
        let out = Arc::clone(&self.out);
        tokio::task::spawn_blocking(move || {
            // A writer poisoned by a panicking task is still a writer.
            let mut out = out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            out.write_all(text.as_bytes())?;
            out.flush()
        })
        .await
        .map_err(|e| SendError::Retryable(format!("console task failed: {e}")))?
        .map_err(|e| SendError::Retryable(format!("cannot write to the console: {e}")))?;
        Ok(Delivered::default())
    }
}

/// The printed form of one message, ending with a blank line.
pub fn render(msg: &Message) -> String {
    let mut key: String = msg.key.chars().take(KEY_SHOWN).collect();
    if msg.key.chars().count() > KEY_SHOWN {
        key.push('…');
    }
    let who = if msg.to.is_empty() {
        format!("for {}", msg.candidate)
    } else {
        format!("to {}", msg.to)
    };
    let mut text = format!(
        "── {} {who} · {} · {} · key {key}\n",
        msg.channel, msg.campaign, msg.template
    );
    if let Some(subject) = &msg.subject {
        text.push_str(&format!("Subject: {subject}\n"));
    }
    text.push_str(msg.body.trim_end());
    text.push_str("\n\n");
    text
}
