//! The file channel: appends one JSON line per message (the [`Message`]
//! fields plus `delivered_at`, the real time of writing) and delivers each
//! key at most once, across restarts. The crash tests count deliveries with
//! it through [`read_messages`].
//!
//! Durability: one writer thread owns the file and commits in groups: it
//! takes every delivery waiting for it, writes their lines with one
//! `write_all`, makes them durable with one `sync_data`, and only then
//! answers each, so a delivery that returned is on disk (and a busy channel
//! pays one `sync_data` per group, not per line). A crash in the
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
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::{Delivered, Message, SendError, SettingProblem};
use crate::engine::Instant;

/// The settings of `transport = "file"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The file to append to, relative to the configuration file.
    pub path: PathBuf,
}

impl FileConfig {
    /// Every setting that cannot work; `table` is the channel's table as
    /// written in messages (`channels.email`).
    pub fn validate(&self, table: &str) -> Vec<SettingProblem> {
        if self.path.as_os_str().is_empty() {
            return vec![SettingProblem::new(
                &["path"],
                format!("`{table}.path` is empty"),
                "no file to write to",
                "name a file, such as \"outbox/email.jsonl\"",
            )];
        }
        Vec::new()
    }

    /// The path taken relative to `base` unless it is absolute.
    pub fn resolve(&mut self, base: &Path) {
        if self.path.is_relative() {
            self.path = base.join(&self.path);
        }
    }
}

/// Appends messages to a JSON-lines file, once per key.
#[derive(Debug)]
pub struct FileChannel {
    path: PathBuf,
    torn: usize,
    inner: Arc<Mutex<Inner>>,
    /// To the writer thread; it stops when the channel is dropped, after
    /// answering every delivery already handed to it.
    writer: Sender<Pending>,
}

/// A delivery waiting for the writer thread, and where its answer goes.
type Pending = (Message, oneshot::Sender<Result<Delivered, SendError>>);

/// Deliveries written (and synced) together at most: bounds a group's
/// buffer and how long the first of them waits for the last.
const GROUP: usize = 1024;

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
        let inner = Arc::new(Mutex::new(Inner {
            file,
            len: parsed.complete_len as u64,
            keys,
        }));
        let (tx, rx) = mpsc::channel();
        let owned = Arc::clone(&inner);
        std::thread::Builder::new()
            .name("nudge-file".into())
            .spawn(move || write_loop(&owned, &rx))?;
        Ok(FileChannel {
            path,
            torn,
            inner,
            writer: tx,
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
        let (tx, rx) = oneshot::channel();
        let handed = self.writer.send((msg.clone(), tx));
        let gone = || SendError::Retryable("the file channel's writer stopped".into());
        handed.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
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

/// The writer thread: each turn takes the deliveries waiting (at most
/// [`GROUP`]) and commits them together.
fn write_loop(inner: &Mutex<Inner>, rx: &Receiver<Pending>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let (messages, answers): (Vec<Message>, Vec<_>) = group.into_iter().unzip();
        let outcomes = append(&mut lock(inner), &messages);
        for (answer, outcome) in answers.into_iter().zip(outcomes) {
            // A caller that stopped waiting has nothing to be told.
            let _ = answer.send(outcome);
        }
    }
}

/// Appends the messages whose keys are not in the file yet (nor earlier in
/// `messages`) with one write and one `sync_data`; one outcome per message.
/// Nothing is reported delivered unless the whole group is durable.
fn append(inner: &mut Inner, messages: &[Message]) -> Vec<Result<Delivered, SendError>> {
    let mut text = Vec::new();
    let mut fresh = HashSet::new();
    let mut outcomes: Vec<Result<Delivered, SendError>> = Vec::with_capacity(messages.len());
    for msg in messages {
        if inner.keys.contains(&msg.key) || !fresh.insert(msg.key.as_str()) {
            outcomes.push(Ok(Delivered {
                duplicate: true,
                provider_id: None,
            }));
            continue;
        }
        let line = Line {
            message: msg,
            delivered_at: Utc::now(),
        };
        let start = text.len();
        match serde_json::to_writer(&mut text, &line) {
            Ok(()) => {
                text.push(b'\n');
                outcomes.push(Ok(Delivered::default()));
            }
            Err(e) => {
                text.truncate(start);
                fresh.remove(msg.key.as_str());
                outcomes.push(Err(SendError::Permanent(format!(
                    "cannot encode the message as JSON: {e}"
                ))));
            }
        }
    }
    if text.is_empty() {
        return outcomes;
    }
    let written = inner
        .file
        .write_all(&text)
        .and_then(|()| inner.file.sync_data());
    if let Err(e) = written {
        // Take back whatever part of the group reached the file, so the
        // next lines do not land after a torn one; if even that fails,
        // opening the file again truncates it.
        let len = inner.len;
        let _ = inner.file.set_len(len);
        return messages
            .iter()
            .zip(outcomes)
            .map(|(msg, outcome)| match outcome {
                // Written in this group (or a repeat of one that was).
                Ok(_) if fresh.contains(msg.key.as_str()) => Err(SendError::Retryable(format!(
                    "cannot write the message: {e}"
                ))),
                other => other,
            })
            .collect();
    }
    inner.len += text.len() as u64;
    inner.keys.extend(fresh.into_iter().map(str::to_string));
    outcomes
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Channel;

    fn message(key: &str) -> Message {
        Message {
            key: key.to_string(),
            campaign: "c".into(),
            candidate: "a".into(),
            template: "t".into(),
            channel: Channel::Email,
            to: "a@example.com".into(),
            subject: Some("s".into()),
            body: "b".into(),
            html: None,
            unsubscribe_url: None,
            scheduled_at: Utc::now(),
            in_flight: false,
        }
    }

    #[test]
    fn a_group_writes_each_new_key_once_and_reports_repeats_as_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let channel = FileChannel::open(&path).unwrap();
        let mut inner = lock(&channel.inner);
        let first = append(&mut inner, &[message("k1")]);
        assert!(matches!(
            first[..],
            [Ok(Delivered {
                duplicate: false,
                ..
            })]
        ));
        // One group: a key already in the file, a new key twice, another.
        let group = [message("k1"), message("k2"), message("k2"), message("k3")];
        let duplicate: Vec<bool> = append(&mut inner, &group)
            .into_iter()
            .map(|o| o.unwrap().duplicate)
            .collect();
        assert_eq!(duplicate, [true, false, true, false]);
        assert_eq!(inner.len, std::fs::metadata(&path).unwrap().len());
        drop(inner);
        let keys: Vec<String> = read_messages(&path)
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(keys, ["k1", "k2", "k3"]);
        assert_eq!(channel.len(), 3);
    }
}
