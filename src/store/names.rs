//! How the store names what it counts and what it sends: typed
//! [`Counter`]s and [`SendKey`]s, each parsed and written in this one
//! place. Their text is what every layout stores (counter names in counter
//! keys, send keys in dossiers, the journal and retries), so it must not
//! change.

use std::fmt;

use crate::channels::Message;

/// A counter a campaign keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    /// Candidates in a state (stored as `state:NAME`).
    State(String),
    /// Candidates that left with an outcome (`outcome:NAME`).
    Outcome(String),
    /// Sends that failed for good (`failed`).
    Failed,
    /// Sends skipped because they could only go too late (`late`).
    Late,
    /// Enrollments whose armed timer is a send held by a window or a limit
    /// (`held`).
    Held,
    /// Enrollments whose armed timer is a send (held or not) due in this
    /// minute, counted from the epoch (`sends_due:` and the minute in 12
    /// digits, so the stored names sort in time order). Read a range at a
    /// time ([`super::Store::sends_due`]), never with the other counters;
    /// a minute's counter goes when it comes back to zero.
    SendsDue(i64),
    /// Sends a channel delivered in this hour, counted from the epoch
    /// (`sends_on:CHANNEL:` and the hour in 12 digits, so a channel's
    /// hours sort in time order): today's sends on the dashboard. Read a
    /// range at a time ([`super::Store::sends_on`]), never with the other
    /// counters.
    SendsOn { channel: String, hour: i64 },
    /// A name this build does not know (kept as it is, so a store written
    /// by a later nudge still reads).
    Other(String),
}

impl Counter {
    /// The counter stored under `name`.
    pub fn parse(name: &str) -> Counter {
        if let Some(state) = name.strip_prefix("state:") {
            Counter::State(state.to_string())
        } else if let Some(outcome) = name.strip_prefix("outcome:") {
            Counter::Outcome(outcome.to_string())
        } else if name == "failed" {
            Counter::Failed
        } else if name == "late" {
            Counter::Late
        } else if name == "held" {
            Counter::Held
        } else if let Some(minute) = name
            .strip_prefix(SENDS_DUE)
            .and_then(|m| m.parse::<i64>().ok())
        {
            Counter::SendsDue(minute)
        } else if let Some((channel, hour)) = name
            .strip_prefix(SENDS_ON)
            .and_then(|rest| rest.rsplit_once(':'))
            .and_then(|(channel, hour)| Some((channel, hour.parse::<i64>().ok()?)))
        {
            Counter::SendsOn {
                channel: channel.to_string(),
                hour,
            }
        } else {
            Counter::Other(name.to_string())
        }
    }
}

/// The stored names of [`Counter::SendsDue`] begin with this.
pub const SENDS_DUE: &str = "sends_due:";

/// The stored names of [`Counter::SendsOn`] begin with this.
pub const SENDS_ON: &str = "sends_on:";

impl Counter {
    /// The [`Counter::SendsDue`] of the minute `at` falls in.
    pub fn sends_due(at: crate::engine::Instant) -> Counter {
        Counter::SendsDue(at.timestamp_millis().max(0).div_euclid(60_000))
    }

    /// The [`Counter::SendsOn`] of `channel` for the hour `at` falls in.
    pub fn sends_on(channel: &str, at: crate::engine::Instant) -> Counter {
        Counter::SendsOn {
            channel: channel.to_string(),
            hour: at.timestamp_millis().max(0).div_euclid(3_600_000),
        }
    }

    /// Whether it is counted per minute or per hour (read by range, not
    /// with the campaign's other counters).
    pub fn per_minute(&self) -> bool {
        matches!(self, Counter::SendsDue(_) | Counter::SendsOn { .. })
    }
}

/// The stored name: `state:NAME`, `outcome:NAME`, `failed`, `late`, `held`,
/// `sends_due:MINUTE`, `sends_on:CHANNEL:HOUR`.
impl Counter {
    /// Appends the counter's stored name: the one place it is written
    /// (each commit names several, so without `fmt`).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut text = |s: &str| out.extend_from_slice(s.as_bytes());
        match self {
            Counter::State(s) => {
                text("state:");
                text(s);
            }
            Counter::Outcome(o) => {
                text("outcome:");
                text(o);
            }
            Counter::Failed => text("failed"),
            Counter::Late => text("late"),
            Counter::Held => text("held"),
            Counter::SendsDue(minute) => {
                text(SENDS_DUE);
                twelve_digits(*minute, out);
            }
            Counter::SendsOn { channel, hour } => {
                text(SENDS_ON);
                text(channel);
                text(":");
                twelve_digits(*hour, out);
            }
            Counter::Other(name) => text(name),
        }
    }
}

/// `n` as `{n:012}` writes it.
fn twelve_digits(n: i64, out: &mut Vec<u8>) {
    if !(0..=999_999_999_999).contains(&n) {
        out.extend_from_slice(format!("{n:012}").as_bytes());
        return;
    }
    let mut digits = [b'0'; 12];
    let mut rest = n;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend_from_slice(&digits);
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut name = Vec::new();
        self.write_to(&mut name);
        f.write_str(&String::from_utf8_lossy(&name))
    }
}

/// A send's idempotency key: `campaign/candidate/visit/index`, with
/// `>channel` after it for a fallback to another channel. A view of the
/// key's text that knows whose send it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SendKey<'a> {
    text: &'a str,
    candidate: &'a str,
}

impl<'a> SendKey<'a> {
    /// A key as written by [`SendKey::format`] (or with a fallback);
    /// `None` for text that names no candidate.
    pub fn parse(text: &'a str) -> Option<SendKey<'a>> {
        let candidate = text.split('/').nth(1)?;
        Some(SendKey { text, candidate })
    }

    /// The key of a message (which says whose it is).
    pub fn of(message: &'a Message) -> SendKey<'a> {
        SendKey {
            text: &message.key,
            candidate: &message.candidate,
        }
    }

    /// The key of the `index`th send of a candidate's `visit` to a state.
    pub fn format(campaign: &str, candidate: &str, visit: u32, index: usize) -> String {
        format!("{campaign}/{candidate}/{visit}/{index}")
    }

    /// The key of this send tried again on `channel`.
    pub fn fallback(&self, channel: &str) -> String {
        let base = self.text.split('>').next().unwrap_or(self.text);
        format!("{base}>{channel}")
    }

    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// Whose send it is.
    pub fn candidate(&self) -> &'a str {
        self.candidate
    }
}

impl fmt::Display for SendKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_read_as_they_are_stored() {
        for name in [
            "state:waiting",
            "outcome:completed",
            "failed",
            "late",
            "held",
            "sends_due:000029412345",
            "sends_on:email:000000490205",
            "later",
        ] {
            assert_eq!(Counter::parse(name).to_string(), name);
        }
        assert_eq!(
            Counter::parse("state:a:b"),
            Counter::State("a:b".to_string())
        );
        // The minutes and hours as `{:012}` writes them, at the edges too.
        for n in [
            0,
            7,
            999_999_999_999,
            1_000_000_000_000,
            -1,
            -42,
            i64::MIN,
            i64::MAX,
        ] {
            assert_eq!(
                Counter::SendsDue(n).to_string(),
                format!("sends_due:{n:012}")
            );
            let on = Counter::SendsOn {
                channel: "sms".into(),
                hour: n,
            };
            assert_eq!(on.to_string(), format!("sends_on:sms:{n:012}"));
        }
    }

    #[test]
    fn send_keys_know_their_candidate_and_fall_back() {
        let text = SendKey::format("warehouse", "c7", 1, 0);
        let k = SendKey::parse(&text).unwrap();
        assert_eq!((k.as_str(), k.candidate()), ("warehouse/c7/1/0", "c7"));
        let again = k.fallback("sms");
        assert_eq!(again, "warehouse/c7/1/0>sms");
        assert_eq!(
            SendKey::parse(&again).unwrap().fallback("email"),
            "warehouse/c7/1/0>email"
        );
        assert!(SendKey::parse("nothing").is_none());
    }
}
