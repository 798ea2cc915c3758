//! Key builders, one per record kind (the layout is in [`super`]'s docs).

use crate::engine::Instant;

fn join(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    k.push(prefix);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

/// The meta record holding when the weekly digest is next due (epoch ms,
/// 8 bytes big-endian).
pub const DIGEST_DUE: &str = "digest_due";

/// An instant stored as 8 big-endian bytes of epoch milliseconds.
pub fn instant_of(bytes: &[u8]) -> Option<Instant> {
    let ms = i64::from_be_bytes(bytes.try_into().ok()?);
    chrono::DateTime::from_timestamp_millis(ms)
}

pub fn meta(name: &str) -> Vec<u8> {
    join(b'm', &[name.as_bytes()])
}
/// A candidate's dossier. Ids are `c` and a number, kept as 8
/// big-endian bytes so that dossiers sort in the order candidates came
/// (new ones append to the tree; those enrolled together sit together,
/// as their timers fall due together); any other text (a lookup by
/// something that is not an id) goes after a 0xFF byte and matches
/// nothing.
pub fn candidate(id: &str) -> Vec<u8> {
    let mut k = vec![b'c'];
    match candidate_number(id) {
        Some(n) => k.extend_from_slice(&n.to_be_bytes()),
        None => {
            k.push(0xFF);
            k.extend_from_slice(id.as_bytes());
        }
    }
    k
}
/// The number of a candidate id (`c` and a number written without
/// leading zeros), or `None` for any other text.
pub fn candidate_number(id: &str) -> Option<u64> {
    id.strip_prefix('c')
        .filter(|n| !n.is_empty() && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
}
/// The candidate id of a number: `c` and the number.
pub fn numbered_candidate(n: u64) -> String {
    format!("c{n}")
}
/// The candidate id of a dossier key.
/// The key of a candidate's report traces: their dossier's key under `e`.
pub fn traces(id: &str) -> Vec<u8> {
    let mut k = candidate(id);
    k[0] = b'e';
    k
}

pub fn candidate_id(k: &[u8]) -> Option<String> {
    match k.get(1..)? {
        [0xFF, rest @ ..] => String::from_utf8(rest.to_vec()).ok(),
        rest => Some(numbered_candidate(u64::from_be_bytes(
            rest.try_into().ok()?,
        ))),
    }
}
/// The first answers to events of the candidates one commit created,
/// under the lowest of their numbers.
pub fn answers(first_candidate: u64) -> Vec<u8> {
    let mut k = vec![b'a'];
    k.extend_from_slice(&first_candidate.to_be_bytes());
    k
}
/// One commit's new identities.
pub fn identities(seq: u64) -> Vec<u8> {
    let mut k = vec![b'y'];
    k.extend_from_slice(&seq.to_be_bytes());
    k
}
/// Milliseconds since the epoch as 8 big-endian bytes that sort in time
/// order (the sign bit flipped so that instants before 1970 sort first).
pub fn due_bytes(due: Instant) -> [u8; 8] {
    ((due.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes()
}
pub fn due_from_bytes(b: [u8; 8]) -> Option<Instant> {
    Instant::from_timestamp_millis((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}
/// The bucket (its first millisecond) a due instant falls in.
pub fn bucket(due_ms: i64) -> i64 {
    due_ms.div_euclid(super::TIMER_BUCKET_MS) * super::TIMER_BUCKET_MS
}
/// The record of the timers one commit (`seq`) armed in a bucket.
pub fn timer_record(bucket_ms: i64, seq: u64) -> Vec<u8> {
    let mut k = vec![b't'];
    k.extend_from_slice(&((bucket_ms as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}
/// The first timer record key after every bucket that holds instants
/// at or before `due`.
pub fn timers_after(due: Instant) -> Vec<u8> {
    let next = bucket(due.timestamp_millis()) + super::TIMER_BUCKET_MS;
    let mut k = vec![b't'];
    k.extend_from_slice(&((next as u64) ^ (1 << 63)).to_be_bytes());
    k
}
/// The bucket of a timer record key.
pub fn record_bucket(k: &[u8]) -> Option<i64> {
    let b: [u8; 8] = k.get(1..9)?.try_into().ok()?;
    Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}
pub fn parked(campaign: &str, candidate: &str) -> Vec<u8> {
    join(b'z', &[campaign.as_bytes(), candidate.as_bytes()])
}
pub fn parked_of(campaign: &str) -> Vec<u8> {
    let mut k = join(b'z', &[campaign.as_bytes()]);
    k.push(0);
    k
}
/// A failed send waiting to be tried again at `due`.
pub fn retry(due: Instant, send_key: &str) -> Vec<u8> {
    let mut k = vec![b'r'];
    k.extend_from_slice(&due_bytes(due));
    k.extend_from_slice(send_key.as_bytes());
    k
}
/// The first retry key after every retry due at or before `due`.
pub fn retries_after(due: Instant) -> Vec<u8> {
    let mut k = vec![b'r'];
    let next = (u64::from_be_bytes(due_bytes(due))).saturating_add(1);
    k.extend_from_slice(&next.to_be_bytes());
    k
}
pub fn event_id(candidate: &str, id: &str) -> Vec<u8> {
    join(b'i', &[candidate.as_bytes(), id.as_bytes()])
}
/// A journal record of sends queued for delivery by one commit.
pub fn queue(seq: u64) -> Vec<u8> {
    let mut k = vec![b'q'];
    k.extend_from_slice(&seq.to_be_bytes());
    k
}
/// A journal record of sends handed to channels by one commit.
pub fn flight(seq: u64) -> Vec<u8> {
    let mut k = vec![b'f'];
    k.extend_from_slice(&seq.to_be_bytes());
    k
}
pub fn counter(campaign: &str, name: &str) -> Vec<u8> {
    join(b'n', &[campaign.as_bytes(), name.as_bytes()])
}

/// [`counter`] of a typed counter, its name written in place.
pub fn counter_of(campaign: &str, counter: &crate::store::Counter) -> Vec<u8> {
    let mut k = Vec::with_capacity(campaign.len() + 40);
    k.push(b'n');
    k.extend_from_slice(campaign.as_bytes());
    k.push(0);
    counter.write_to(&mut k);
    k
}
/// Where a campaign's per-minute counters begin, and the first key after
/// them (their names all begin `sends_due:`).
pub fn per_minute_counters(campaign: &str) -> (Vec<u8>, Vec<u8>) {
    let prefix = crate::store::names::SENDS_DUE;
    let mut after = prefix.to_string();
    after.pop();
    after.push(';');
    (counter(campaign, prefix), counter(campaign, &after))
}
/// Where a campaign's per-hour counters of `channel`'s sends begin from
/// `hour`, and the first key after them.
pub fn sends_on_counters(campaign: &str, channel: &str, hour: i64) -> (Vec<u8>, Vec<u8>) {
    let prefix = crate::store::names::SENDS_ON;
    (
        counter(campaign, &format!("{prefix}{channel}:{hour:012}")),
        counter(campaign, &format!("{prefix}{channel};")),
    )
}
/// Where a campaign's per-hour counters begin, and the first key after
/// them (their names all begin `sends_on:`).
pub fn per_hour_counters(campaign: &str) -> (Vec<u8>, Vec<u8>) {
    let prefix = crate::store::names::SENDS_ON;
    let mut after = prefix.to_string();
    after.pop();
    after.push(';');
    (counter(campaign, prefix), counter(campaign, &after))
}
/// Every campaign's counters.
pub fn all_counters() -> Vec<u8> {
    vec![b'n']
}

pub fn counters_of(campaign: &str) -> Vec<u8> {
    let mut k = join(b'n', &[campaign.as_bytes()]);
    k.push(0);
    k
}
pub fn paused(campaign: &str) -> Vec<u8> {
    join(b'p', &[campaign.as_bytes()])
}
/// An `until decided` experiment's decision.
pub fn decision(campaign: &str, experiment: &str) -> Vec<u8> {
    join(b'd', &[campaign.as_bytes(), experiment.as_bytes()])
}
/// Every decision.
pub fn decisions() -> Vec<u8> {
    vec![b'd']
}
pub fn version(campaign: &str, version: &str) -> Vec<u8> {
    join(b'v', &[campaign.as_bytes(), version.as_bytes()])
}

/// Splits the `candidate 0 campaign` tail of an enrollment or timer key.
pub fn split_pair(tail: &[u8]) -> Option<(String, String)> {
    let zero = tail.iter().position(|b| *b == 0)?;
    let a = std::str::from_utf8(&tail[..zero]).ok()?;
    let b = std::str::from_utf8(&tail[zero + 1..]).ok()?;
    Some((a.to_string(), b.to_string()))
}
/// A contact's entry on the suppression list.
pub fn suppression(kind: &str, address: &str) -> Vec<u8> {
    join(b's', &[kind.as_bytes(), address.as_bytes()])
}
/// Every entry of the suppression list.
pub fn suppressions() -> Vec<u8> {
    vec![b's']
}
