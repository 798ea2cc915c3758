//! The channel backends through their public API: the file channel's
//! durability and once-per-key delivery, the console's printed shape.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use nudge::channels::{
    read_messages, Backend, Channels, Console, Delivered, FileChannel, Message, SendError,
};
use nudge::engine::Channel;

fn message(key: &str, channel: Channel) -> Message {
    Message {
        key: key.to_string(),
        campaign: "warehouse_associate".to_string(),
        candidate: "a-101".to_string(),
        template: "invite-short".to_string(),
        channel,
        to: match channel {
            Channel::Email => "ana@example.com".to_string(),
            Channel::Webhook => String::new(),
            Channel::Sms | Channel::Whatsapp => "+15550100".to_string(),
        },
        subject: (channel == Channel::Email).then(|| "Your next step".to_string()),
        body: "Acme Logistics: Hi Ana, next step for Warehouse Associate".to_string(),
        html: None,
        unsubscribe_url: None,
        scheduled_at: DateTime::parse_from_rfc3339("2026-11-28T15:00:00Z")
            .unwrap()
            .to_utc(),
        in_flight: false,
    }
}

fn fresh() -> Delivered {
    Delivered {
        duplicate: false,
        provider_id: None,
    }
}

fn duplicate() -> Delivered {
    Delivered {
        duplicate: true,
        provider_id: None,
    }
}

#[tokio::test]
async fn file_channel_writes_one_json_line_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let file = FileChannel::open(&path).unwrap();
    let backend = Backend::File(file);
    assert!(backend.idempotent());
    assert_eq!(backend.describe(), format!("file {}", path.display()));

    let sms = message("k1", Channel::Sms);
    let email = message("k2", Channel::Email);
    assert_eq!(backend.deliver(&sms).await, Ok(fresh()));
    assert_eq!(backend.deliver(&email).await, Ok(fresh()));

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(text.ends_with('\n'));
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["key"], "k1");
    assert_eq!(first["channel"], "sms");
    assert_eq!(first["to"], "+15550100");
    assert_eq!(first["subject"], serde_json::Value::Null);
    assert_eq!(first["scheduled_at"], "2026-11-28T15:00:00Z");
    let delivered_at = first["delivered_at"].as_str().unwrap();
    let delivered_at = DateTime::parse_from_rfc3339(delivered_at).unwrap();
    assert!((Utc::now() - delivered_at.to_utc()).num_seconds().abs() < 60);

    assert_eq!(read_messages(&path).unwrap(), vec![sms, email]);
}

#[tokio::test]
async fn file_channel_dedupes_by_key_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    {
        let file = FileChannel::open(&path).unwrap();
        assert_eq!(
            file.deliver(&message("k1", Channel::Sms)).await,
            Ok(fresh())
        );
        assert_eq!(
            file.deliver(&message("k1", Channel::Sms)).await,
            Ok(duplicate())
        );
        assert_eq!(file.len(), 1);
    }
    let file = FileChannel::open(&path).unwrap();
    assert_eq!(file.len(), 1);
    assert_eq!(file.torn_lines(), 0);
    // The same key is the same message, whatever else it says.
    let mut again = message("k1", Channel::Email);
    again.body = "changed".to_string();
    assert_eq!(file.deliver(&again).await, Ok(duplicate()));
    assert_eq!(
        file.deliver(&message("k2", Channel::Sms)).await,
        Ok(fresh())
    );

    let keys: Vec<String> = read_messages(&path)
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, ["k1", "k2"]);
}

#[tokio::test]
async fn file_channel_survives_a_torn_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    {
        let file = FileChannel::open(&path).unwrap();
        file.deliver(&message("k1", Channel::Sms)).await.unwrap();
        file.deliver(&message("k2", Channel::Sms)).await.unwrap();
    }
    let whole = std::fs::read(&path).unwrap();
    let second_line = whole[..whole.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;

    // Cut in the middle of the second line, as a crash mid-write would.
    let cut = second_line + 20;
    std::fs::write(&path, &whole[..cut]).unwrap();
    assert_eq!(read_messages(&path).unwrap().len(), 1);
    let file = FileChannel::open(&path).unwrap();
    assert_eq!(file.torn_lines(), 1);
    assert_eq!(file.len(), 1);
    assert_eq!(std::fs::read(&path).unwrap(), &whole[..second_line]);
    // The torn message was never reported delivered: it goes out again, once.
    assert_eq!(
        file.deliver(&message("k2", Channel::Sms)).await,
        Ok(fresh())
    );
    assert_eq!(
        file.deliver(&message("k1", Channel::Sms)).await,
        Ok(duplicate())
    );
    drop(file);
    let keys: Vec<String> = read_messages(&path)
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, ["k1", "k2"]);

    // A last line that ends but is not JSON (blocks of zeros after a power
    // cut) is torn too.
    let mut zeros = std::fs::read(&path).unwrap();
    let good = zeros.len();
    zeros.extend_from_slice(&[0; 40]);
    zeros.push(b'\n');
    std::fs::write(&path, &zeros).unwrap();
    let file = FileChannel::open(&path).unwrap();
    assert_eq!((file.torn_lines(), file.len()), (1, 2));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good as u64);
}

#[tokio::test]
async fn file_channel_refuses_a_damaged_middle_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    {
        let file = FileChannel::open(&path).unwrap();
        file.deliver(&message("k1", Channel::Sms)).await.unwrap();
    }
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.insert_str(0, "not a message\n");
    std::fs::write(&path, &text).unwrap();
    let error = FileChannel::open(&path).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    assert!(
        error.to_string().contains("line 1: not a message"),
        "{error}"
    );
    assert!(read_messages(&path).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_land_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let channels = Arc::new(Channels::new(
        Backend::File(FileChannel::open(&path).unwrap()),
        Backend::Null,
        Backend::Null,
        Backend::Null,
    ));
    // 8 tasks deliver the same 50 keys, each in its own order.
    let mut tasks = Vec::new();
    for task in 0..8 {
        let channels = Arc::clone(&channels);
        tasks.push(tokio::spawn(async move {
            let mut fresh = 0;
            for i in 0..50 {
                let key = format!("k{}", (i * 7 + task * 13) % 50);
                let delivered = channels
                    .get(Channel::Email)
                    .deliver(&message(&key, Channel::Email))
                    .await
                    .unwrap();
                fresh += usize::from(!delivered.duplicate);
            }
            fresh
        }));
    }
    let mut fresh = 0;
    for task in tasks {
        fresh += task.await.unwrap();
    }
    assert_eq!(fresh, 50);
    let messages = read_messages(&path).unwrap();
    assert_eq!(messages.len(), 50);
    let keys: BTreeSet<String> = messages.into_iter().map(|m| m.key).collect();
    assert_eq!(keys.len(), 50);
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 50);
}

/// A writer the test can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn console_prints_a_header_then_the_text() {
    let out = Captured::default();
    let backend = Backend::Console(Console::new(out.clone()));
    assert!(!backend.idempotent());
    assert_eq!(backend.describe(), "console");

    let sms = message("3f9a0c1d2e4b5a6978", Channel::Sms);
    assert_eq!(backend.deliver(&sms).await, Ok(fresh()));
    assert_eq!(
        out.text(),
        "── sms to +15550100 · warehouse_associate · invite-short · key 3f9a0c1d2e4b…\n\
         Acme Logistics: Hi Ana, next step for Warehouse Associate\n\
         \n"
    );
    // Not idempotent: the same key prints again.
    assert_eq!(backend.deliver(&sms).await, Ok(fresh()));
    assert_eq!(out.text().matches("── sms").count(), 2);
}

#[tokio::test]
async fn console_prints_the_subject_of_an_email() {
    let out = Captured::default();
    let console = Console::new(out.clone());
    console
        .deliver(&message("k1", Channel::Email))
        .await
        .unwrap();
    console
        .deliver(&message("k2", Channel::Webhook))
        .await
        .unwrap();
    assert_eq!(
        out.text(),
        "── email to ana@example.com · warehouse_associate · invite-short · key k1\n\
         Subject: Your next step\n\
         Acme Logistics: Hi Ana, next step for Warehouse Associate\n\
         \n\
         ── webhook for a-101 · warehouse_associate · invite-short · key k2\n\
         Acme Logistics: Hi Ana, next step for Warehouse Associate\n\
         \n"
    );
}

#[tokio::test]
async fn null_drops_everything() {
    let backend = Backend::Null;
    assert_eq!(
        backend.deliver(&message("k1", Channel::Sms)).await,
        Ok(fresh())
    );
    assert!(!backend.idempotent());
    assert_eq!(backend.describe(), "null");
}

#[test]
fn channels_pick_the_backend_of_each_kind() {
    let channels = Channels::all_console();
    assert!(channels.only_console());
    for kind in Channel::ALL {
        assert_eq!(channels.get(kind).describe(), "console");
    }
    let channels = Channels::new(
        Backend::Console(Console::stdout()),
        Backend::Null,
        Backend::Console(Console::stdout()),
        Backend::Console(Console::stdout()),
    );
    assert!(!channels.only_console());
    assert_eq!(channels.get(Channel::Sms).describe(), "null");
    assert_eq!(channels.get(Channel::Email).describe(), "console");
}

#[test]
fn send_errors_say_whether_to_retry() {
    let retry = SendError::Retryable("timeout".to_string());
    let fail = SendError::Permanent("no such number".to_string());
    assert!(retry.is_retryable());
    assert!(!fail.is_retryable());
    assert_eq!(retry.to_string(), "delivery failed, will retry: timeout");
    assert_eq!(fail.to_string(), "delivery failed for good: no such number");
}

#[test]
fn messages_round_trip_through_json() {
    let msg = message("k1", Channel::Whatsapp);
    let json = serde_json::to_value(&msg).unwrap();
    assert_eq!(json["channel"], "whatsapp");
    assert_eq!(json["scheduled_at"], "2026-11-28T15:00:00Z");
    assert_eq!(serde_json::from_value::<Message>(json).unwrap(), msg);
}
