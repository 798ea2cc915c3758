//! The traces' bytes in a dossier record, written and read by hand: the
//! same bytes as postcard's encoding of [`Traces`] (so no store is
//! rewritten), without serde's per-field machinery. Every commit that
//! touches a candidate reads their traces and most write them back, and a
//! report reads a million of them: by serde this took about a tenth of a
//! delivery's instructions.
//!
//! Postcard's form, as used here: lengths and integers are LEB128 varints
//! (an `i64` zigzagged first), a string is its length then its bytes, an
//! `Option` is a byte 0 or 1 before its value, a sequence or map is its
//! length then its items, and a struct or tuple is its fields in order.

use std::collections::BTreeMap;

use postcard::Error;

use super::trace::{Name, Trace, TraceRef, Traces};

/// Appends the traces in postcard's form.
pub fn encode(traces: &Traces, out: &mut Vec<u8>) {
    let mut w = Writer(out);
    w.len(traces.0.len());
    for t in &traces.0 {
        w.str(&t.campaign);
        w.i64(t.enrolled_at);
        w.len(t.variants.len());
        for (experiment, variant) in &t.variants {
            w.str(experiment);
            w.str(variant);
        }
        w.maybe_str(t.source.as_deref());
        w.maybe_str(t.timezone.as_deref());
        w.maybe_str(t.language.as_deref());
        match &t.first_sent {
            None => w.0.push(0),
            Some((at, channel)) => {
                w.0.push(1);
                w.i64(*at);
                w.str(channel);
            }
        }
        w.strs(&t.sent_on);
        w.len(t.firsts.len());
        for (kind, at) in &t.firsts {
            w.str(kind);
            w.i64(*at);
        }
        w.maybe_str(t.device.as_deref());
        w.strs(&t.bounced_on);
        w.maybe_str(t.exited.as_deref());
    }
}

/// The traces at the front of `bytes`, and the bytes after them. Read
/// straight into owned names rather than through [`decode_ref`], so that a
/// commit's read of a dossier allocates each list once.
pub fn decode(bytes: &[u8]) -> Result<(Traces, &[u8]), Error> {
    let mut r = Reader { bytes, at: 0 };
    let n = r.len()?;
    let mut traces = Vec::with_capacity(n);
    for _ in 0..n {
        let campaign = Name::from(r.str()?);
        let enrolled_at = r.i64()?;
        let mut variants = BTreeMap::new();
        for _ in 0..r.len()? {
            let experiment = Name::from(r.str()?);
            variants.insert(experiment, Name::from(r.str()?));
        }
        let source = r.maybe_str()?.map(Name::from);
        let timezone = r.maybe_str()?.map(Name::from);
        let language = r.maybe_str()?.map(Name::from);
        let first_sent = match r.tag()? {
            false => None,
            true => Some((r.i64()?, Name::from(r.str()?))),
        };
        let sent_on = r.names()?;
        let count = r.len()?;
        let mut firsts = Vec::with_capacity(count);
        for _ in 0..count {
            firsts.push((Name::from(r.str()?), r.i64()?));
        }
        traces.push(Trace {
            campaign,
            enrolled_at,
            variants,
            source,
            timezone,
            language,
            first_sent,
            sent_on,
            firsts,
            device: r.maybe_str()?.map(Name::from),
            bounced_on: r.names()?,
            exited: r.maybe_str()?.map(Name::from),
        });
    }
    Ok((Traces(traces), &bytes[r.at..]))
}

/// The traces at the front of `bytes`, read in place.
pub fn decode_ref(bytes: &[u8]) -> Result<Vec<TraceRef<'_>>, Error> {
    let mut r = Reader { bytes, at: 0 };
    let n = r.len()?;
    let mut traces = Vec::with_capacity(n);
    for _ in 0..n {
        let campaign = r.str()?;
        let enrolled_at = r.i64()?;
        let count = r.len()?;
        let mut variants = Vec::with_capacity(count);
        for _ in 0..count {
            variants.push((r.str()?, r.str()?));
        }
        let source = r.maybe_str()?;
        let timezone = r.maybe_str()?;
        let language = r.maybe_str()?;
        let first_sent = match r.tag()? {
            false => None,
            true => Some((r.i64()?, r.str()?)),
        };
        let sent_on = r.strs()?;
        let count = r.len()?;
        let mut firsts = Vec::with_capacity(count);
        for _ in 0..count {
            firsts.push((r.str()?, r.i64()?));
        }
        traces.push(TraceRef {
            campaign,
            enrolled_at,
            variants,
            source,
            timezone,
            language,
            first_sent,
            sent_on,
            firsts,
            device: r.maybe_str()?,
            bounced_on: r.strs()?,
            exited: r.maybe_str()?,
        });
    }
    Ok(traces)
}

struct Writer<'w>(&'w mut Vec<u8>);

impl Writer<'_> {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn len(&mut self, n: usize) {
        self.varint(n as u64);
    }

    fn i64(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn maybe_str(&mut self, s: Option<&str>) {
        match s {
            None => self.0.push(0),
            Some(s) => {
                self.0.push(1);
                self.str(s);
            }
        }
    }

    fn strs(&mut self, list: &[Name]) {
        self.len(list.len());
        for s in list {
            self.str(s);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, Error> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or(Error::DeserializeUnexpectedEnd)?;
        self.at += 1;
        Ok(b)
    }

    /// A varint of at most ten bytes whose bits fit in 64, as postcard
    /// reads them.
    fn varint(&mut self) -> Result<u64, Error> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            if i == 9 && b > 1 {
                return Err(Error::DeserializeBadVarint);
            }
            v |= u64::from(b & 0x7F) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(Error::DeserializeBadVarint)
    }

    /// A count, bounded by the bytes left (each item takes one at least),
    /// so a damaged length cannot ask for a huge allocation.
    fn len(&mut self) -> Result<usize, Error> {
        let n = usize::try_from(self.varint()?).map_err(|_| Error::DeserializeBadVarint)?;
        if n > self.bytes.len() - self.at {
            return Err(Error::DeserializeUnexpectedEnd);
        }
        Ok(n)
    }

    fn i64(&mut self) -> Result<i64, Error> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn tag(&mut self) -> Result<bool, Error> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::DeserializeBadOption),
        }
    }

    fn str(&mut self) -> Result<&'a str, Error> {
        let n = self.len()?;
        let text = std::str::from_utf8(&self.bytes[self.at..self.at + n])
            .map_err(|_| Error::DeserializeBadUtf8)?;
        self.at += n;
        Ok(text)
    }

    fn maybe_str(&mut self) -> Result<Option<&'a str>, Error> {
        Ok(match self.tag()? {
            false => None,
            true => Some(self.str()?),
        })
    }

    fn strs(&mut self) -> Result<Vec<&'a str>, Error> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.str()?);
        }
        Ok(out)
    }

    fn names(&mut self) -> Result<Vec<Name>, Error> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(Name::from(self.str()?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(i: i64) -> Trace {
        let name = |s: &str| Name::from(s);
        Trace {
            campaign: name(if i % 2 == 0 {
                "hiring"
            } else {
                "a campaign name longer than twenty-four bytes"
            }),
            enrolled_at: 1_700_000_000_000 + i * 977 - 5_000_000 * (i % 3),
            variants: (0..i % 4)
                .map(|v| (name(&format!("exp{v}")), name(&format!("variant{}", v * i))))
                .collect(),
            source: (i % 3 != 0).then(|| name("instagram-story")),
            timezone: (i % 2 == 0).then(|| name("Europe/Lisbon")),
            language: (i % 5 == 1).then(|| name("pt-BR")),
            first_sent: (i % 4 != 3).then(|| (i64::MIN + i, name("email"))),
            sent_on: (0..i % 3)
                .map(|c| name(["email", "sms", "whatsapp"][c as usize]))
                .collect(),
            firsts: (0..i % 6)
                .map(|k| {
                    (
                        name(&format!("kind{k}")),
                        if k == 2 { i64::MAX - i } else { -i * 1_000_003 },
                    )
                })
                .collect(),
            device: (i % 3 == 1).then(|| name("mobile")),
            bounced_on: (0..i % 2).map(|_| name("sms")).collect(),
            exited: (i % 7 == 0).then(|| name("done é")),
        }
    }

    fn samples() -> Vec<Traces> {
        (0..40)
            .map(|n| Traces((0..n % 4).map(|k| trace(n * 4 + k)).collect()))
            .collect()
    }

    #[test]
    fn the_bytes_are_postcards_and_come_back_as_they_went() {
        for traces in samples() {
            let mut mine = vec![9];
            encode(&traces, &mut mine);
            let theirs = postcard::to_stdvec(&traces).unwrap();
            assert_eq!(&mine[1..], theirs.as_slice());
            mine.extend_from_slice(b"rest");
            let (back, rest) = decode(&mine[1..]).unwrap();
            assert_eq!(back, traces);
            assert_eq!(rest, b"rest");
            assert_eq!(decode_ref(&mine[1..]).unwrap(), traces.refs());
            // What postcard reads from them is the same.
            let (theirs, _) = postcard::take_from_bytes::<Traces>(&mine[1..]).unwrap();
            assert_eq!(theirs, traces);
        }
    }

    #[test]
    fn cut_or_damaged_bytes_are_an_error_never_a_panic() {
        for traces in samples().into_iter().filter(|t| !t.0.is_empty()) {
            let bytes = postcard::to_stdvec(&traces).unwrap();
            for cut in 0..bytes.len() {
                assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
                assert!(decode_ref(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            for at in 0..bytes.len() {
                for flip in [0x80, 0xFF, 0x01] {
                    let mut bad = bytes.clone();
                    bad[at] ^= flip;
                    // Either an error or some traces: what matters is that
                    // it returns, as postcard does.
                    let _ = decode(&bad);
                    let _ = decode_ref(&bad);
                }
            }
        }
        assert_eq!(
            decode(&[1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]).unwrap_err(),
            Error::DeserializeBadVarint
        );
        // An option tag that is neither 0 nor 1.
        assert_eq!(
            decode(&[1, 1, b'c', 0, 0, 2]).unwrap_err(),
            Error::DeserializeBadOption
        );
    }
}
