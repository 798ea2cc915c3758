//! How a message's `scheduled_at` is written: RFC 3339 text in JSON (the
//! API, the file channel), and in the store (postcard, which is not
//! human-readable) as whole seconds and nanoseconds, varints of about
//! eight bytes instead of about thirty of text, written and read without
//! formatting or parsing a date. Both keep the instant exactly.
//!
//! Stores of layout 8 and earlier wrote the text in their records too;
//! [`in_text_form`] reads such a record (the store's migration rewrites
//! every one of them when it opens such a store: `store::sled`), and
//! writes one, for tests of that migration.

use std::cell::Cell;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::engine::Instant;

thread_local! {
    static TEXT: Cell<bool> = const { Cell::new(false) };
}

/// Runs `read` with this thread's encoding and decoding taking instants
/// as the text that stores of layout 8 and earlier wrote.
pub fn in_text_form<T>(read: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            TEXT.with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(TEXT.with(|t| t.replace(true)));
    read()
}

pub fn serialize<S: Serializer>(at: &Instant, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() || TEXT.with(Cell::get) {
        at.serialize(s)
    } else {
        (at.timestamp(), at.timestamp_subsec_nanos()).serialize(s)
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Instant, D::Error> {
    if d.is_human_readable() || TEXT.with(Cell::get) {
        return Instant::deserialize(d);
    }
    let (secs, nanos) = <(i64, u32)>::deserialize(d)?;
    chrono::DateTime::from_timestamp(secs, nanos)
        .ok_or_else(|| serde::de::Error::custom("an instant out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct At(#[serde(with = "super")] Instant);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Text(Instant);

    #[test]
    fn an_instant_comes_back_exactly_in_either_form() {
        for at in [
            "2026-12-04T01:02:03.123456789Z",
            "2026-12-04T01:02:03Z",
            "1969-07-20T20:17:40.5Z",
            "2262-01-01T00:00:00Z",
        ] {
            let at = At(at.parse().unwrap());
            // JSON is as chrono writes it.
            let json = serde_json::to_string(&at).unwrap();
            assert_eq!(json, serde_json::to_string(&Text(at.0)).unwrap());
            assert_eq!(serde_json::from_str::<At>(&json).unwrap(), at);
            // The store's form is short and exact.
            let bytes = postcard::to_stdvec(&at).unwrap();
            assert!(bytes.len() <= 10, "{} bytes", bytes.len());
            assert_eq!(postcard::from_bytes::<At>(&bytes).unwrap(), at);
            // Text written by an earlier layout reads back when asked.
            let old = postcard::to_stdvec(&Text(at.0)).unwrap();
            assert_eq!(in_text_form(|| postcard::to_stdvec(&at)).unwrap(), old);
            assert_eq!(
                in_text_form(|| postcard::from_bytes::<At>(&old)).unwrap(),
                at
            );
        }
    }
}
