//! The file channel: appends one JSON line per message (the [`Message`]
//! fields plus `delivered_at`, the real time of writing) and delivers each
//! key at most once, across restarts. The crash tests count deliveries with
//! it through [`read_messages`].
//!
//! Durability: each line goes out in a single `write_all` followed by
//! `sync_data`, so a delivery that returned is on disk. A crash in the
//! middle of a write can only tear the last line (no trailing newline, or
//! not valid JSON); opening the file again truncates that line with a
//! warning and counts it ([`FileChannel::torn_lines`]). The message it held
//! was never reported delivered, so the runtime delivers it again. Any
//! other line that is not a message is an error: silently skipping it
//! would forget a key and deliver a message twice.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde::Serialize;

use super::{Delivered, Message, SendError};
use crate::engine::Instant;

/// Appends messages to a JSON-lines file, once per key.
#[derive(Debug)]
pub struct FileChannel {
    path: PathBuf,
    torn: usize,
    inner: Arc<Mutex<Inner>>,
}

/// What the lock guards: the open file, its length after the last complete
/// line, and every key in it.
#[derive(Debug)]
struct Inner {
    file: File,
    len: u64,
    keys: HashSet<String>,
}

/// One line of the file.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    message: &'a Message,
    delivered_at: Instant,
}

impl FileChannel {
    /// Opens (or creates) the file and remembers the keys already in it.
    /// A torn last line is truncated with a warning; any other line that is
    /// not a message is an `InvalidData` error naming the line.
    pub fn open(path: impl AsRef<Path>) -> io::Result<FileChannel> {
        let path = path.as_ref().to_path_buf();
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        if !existed {
            sync_parent(&path)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        // Only the keys are wanted here: each line is read as far as its
        // key (a restart with a long file starts sooner).
        let parsed = parse::<KeyOnly>(&path, &bytes)?;
        let mut torn = 0;
        if parsed.complete_len < bytes.len() {
            torn = 1;
            tracing::warn!(
                path = %path.display(),
                bytes = bytes.len() - parsed.complete_len,
                "file channel: truncating a torn last line (a write cut short by a crash)"
            );
            file.set_len(parsed.complete_len as u64)?;
            file.sync_data()?;
        }
        let keys = parsed.messages.into_iter().map(|m| m.key).collect();
        Ok(FileChannel {
            path,
            torn,
            inner: Arc::new(Mutex::new(Inner {
                file,
                len: parsed.complete_len as u64,
                keys,
            })),
        })
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many torn lines were truncated when the file was opened (0 or 1).
    pub fn torn_lines(&self) -> usize {
        self.torn
    }

    /// How many distinct messages the file holds.
    pub fn len(&self) -> usize {
        lock(&self.inner).keys.len()
    }

    /// Whether the file holds no message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `msg` durably, unless its key is already in the file.
    pub async fn deliver(&self, msg: &Message) -> Result<Delivered, SendError> {
        let msg = msg.clone();
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || append(&inner, &msg))
            .await
            .map_err(|e| SendError::Retryable(format!("file channel task failed: {e}")))?
    }
}

/// Makes a new file's directory entry durable, so the lines synced into it
/// cannot vanish with the name after a power cut.
fn sync_parent(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Locks the shared state; a panic elsewhere cannot leave it half-updated
/// (keys are added only after a line is durable), so a poisoned lock is
/// still good.
fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    inner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn append(inner: &Mutex<Inner>, msg: &Message) -> Result<Delivered, SendError> {
    let mut inner = lock(inner);
    if inner.keys.contains(&msg.key) {
        return Ok(Delivered {
            duplicate: true,
            provider_id: None,
        });
    }
    let line = Line {
        message: msg,
        delivered_at: Utc::now(),
    };
    let mut text = serde_json::to_vec(&line)
        .map_err(|e| SendError::Permanent(format!("cannot encode the message as JSON: {e}")))?;
    text.push(b'\n');
    let written = inner
        .file
        .write_all(&text)
        .and_then(|()| inner.file.sync_data());
    if let Err(e) = written {
        // Take back whatever part of the line reached the file, so the next
        // line does not land after a torn one; if even that fails, opening
        // the file again truncates it.
        let len = inner.len;
        let _ = inner.file.set_len(len);
        return Err(SendError::Retryable(format!(
            "cannot write the message: {e}"
        )));
    }
    inner.len += text.len() as u64;
    inner.keys.insert(msg.key.clone());
    Ok(Delivered::default())
}

/// Every message in a file written by [`FileChannel`], in file order;
/// a torn last line is ignored, not truncated.
pub fn read_messages(path: impl AsRef<Path>) -> io::Result<Vec<Message>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path)?;
    Ok(parse::<Message>(path, &bytes)?.messages)
}

/// A line read only for its key.
#[derive(serde::Deserialize)]
struct KeyOnly {
    key: String,
}

/// A file's lines, and the length of its complete lines.
struct Parsed<T> {
    messages: Vec<T>,
    complete_len: usize,
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> io::Result<Parsed<T>> {
    let mut messages = Vec::new();
    let mut start = 0;
    let mut number = 0;
    while start < bytes.len() {
        number += 1;
        let (end, next) = match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => (start + i, start + i + 1),
            // No newline: a write cut short.
            None => break,
        };
        let line = &bytes[start..end];
        if line.iter().all(u8::is_ascii_whitespace) {
            start = next;
            continue;
        }
        match serde_json::from_slice::<T>(line) {
            Ok(message) => messages.push(message),
            Err(_) if next == bytes.len() => break,
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} line {number}: not a message: {e}", path.display()),
                ));
            }
        }
        start = next;
    }
    Ok(Parsed {
        messages,
        complete_len: start,
    })
}
