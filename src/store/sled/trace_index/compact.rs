//! The traces as the index keeps them: each name (campaign, experiment,
//! variant, channel, kind, source, zone, language, device, state) as a
//! number in a table of the names met, and each instant but the
//! enrollment's as a difference from it, all as varints: about half the
//! bytes of a record's own form (postcard, names written out).
//!
//! A name's code is 0 for none (an absent optional name), 1 for a name
//! written out in place (once the table holds [`MOST_NAMES`]: a source per
//! applicant must not grow it without end), 2 + n for the table's name n.

use foldhash::HashMap;

use crate::report::trace::TraceRef;

/// Names the table takes; later ones are written out in each entry.
const MOST_NAMES: usize = 1 << 16;

/// The names met, never forgotten while the index lives.
#[derive(Default)]
pub struct Names {
    list: Vec<Box<str>>,
    ids: HashMap<Box<str>, u32>,
}

impl Names {
    /// Bytes held (roughly: each name twice, and the map's slots).
    pub fn bytes(&self) -> usize {
        let text: usize = self.list.iter().map(|n| n.len()).sum();
        2 * text + self.list.capacity() * 16 + self.ids.capacity() * 24
    }

    fn code(&mut self, name: &str) -> Option<u64> {
        if let Some(id) = self.ids.get(name) {
            return Some(2 + u64::from(*id));
        }
        if self.list.len() >= MOST_NAMES {
            return None;
        }
        let id = self.list.len() as u32;
        self.list.push(name.into());
        self.ids.insert(name.into(), id);
        Some(2 + u64::from(id))
    }
}

/// Appends the compact form of a candidate's traces to `out`.
pub fn encode(traces: &[TraceRef<'_>], names: &mut Names, out: &mut Vec<u8>) {
    let mut w = Writer { out, names };
    w.varint(traces.len() as u64);
    for t in traces {
        w.name(Some(t.campaign));
        w.varint(zigzag(t.enrolled_at));
        w.varint(t.variants.len() as u64);
        for (e, v) in &t.variants {
            w.name(Some(e));
            w.name(Some(v));
        }
        w.name(t.source);
        w.name(t.timezone);
        w.name(t.language);
        match t.first_sent {
            None => w.varint(0),
            Some((at, channel)) => {
                w.varint(1);
                w.varint(zigzag(at.wrapping_sub(t.enrolled_at)));
                w.name(Some(channel));
            }
        }
        w.names(&t.sent_on);
        w.varint(t.firsts.len() as u64);
        for (kind, at) in &t.firsts {
            w.name(Some(kind));
            w.varint(zigzag(at.wrapping_sub(t.enrolled_at)));
        }
        w.name(t.device);
        w.names(&t.bounced_on);
        w.name(t.exited);
    }
}

/// The traces of [`encode`]'s bytes, their names borrowed from `names`
/// or from the bytes; `None` if the bytes are not such.
pub fn decode<'a>(bytes: &'a [u8], names: &'a Names) -> Option<Vec<TraceRef<'a>>> {
    let mut r = Reader {
        bytes,
        at: 0,
        names,
    };
    let count = r.len()?;
    let mut traces = Vec::with_capacity(count);
    for _ in 0..count {
        let campaign = r.name()?;
        let enrolled_at = unzigzag(r.varint()?);
        let at = |d: u64| enrolled_at.wrapping_add(unzigzag(d));
        let mut variants = Vec::with_capacity(r.len()?);
        for _ in 0..variants.capacity() {
            variants.push((r.name()?, r.name()?));
        }
        let source = r.maybe_name()?;
        let timezone = r.maybe_name()?;
        let language = r.maybe_name()?;
        let first_sent = match r.varint()? {
            0 => None,
            1 => Some((at(r.varint()?), r.name()?)),
            _ => return None,
        };
        let sent_on = r.names()?;
        let mut firsts = Vec::with_capacity(r.len()?);
        for _ in 0..firsts.capacity() {
            firsts.push((r.name()?, at(r.varint()?)));
        }
        let device = r.maybe_name()?;
        let bounced_on = r.names()?;
        let exited = r.maybe_name()?;
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
            device,
            bounced_on,
            exited,
        });
    }
    (r.at == bytes.len()).then_some(traces)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Writer<'w> {
    out: &'w mut Vec<u8>,
    names: &'w mut Names,
}

impl Writer<'_> {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn name(&mut self, name: Option<&str>) {
        match name {
            None => self.varint(0),
            Some(name) => match self.names.code(name) {
                Some(code) => self.varint(code),
                None => {
                    self.varint(1);
                    self.varint(name.len() as u64);
                    self.out.extend_from_slice(name.as_bytes());
                }
            },
        }
    }

    fn names(&mut self, names: &[&str]) {
        self.varint(names.len() as u64);
        for n in names {
            self.name(Some(n));
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    names: &'a Names,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.at)?;
            self.at += 1;
            v |= u64::from(b & 0x7F) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// A count, bounded by the bytes left (each item takes one at least).
    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        (n <= self.bytes.len() - self.at).then_some(n)
    }

    fn maybe_name(&mut self) -> Option<Option<&'a str>> {
        match self.varint()? {
            0 => Some(None),
            1 => {
                let len = self.len()?;
                let text = std::str::from_utf8(&self.bytes[self.at..self.at + len]).ok()?;
                self.at += len;
                Some(Some(text))
            }
            code => {
                let id = usize::try_from(code - 2).ok()?;
                Some(Some(self.names.list.get(id)?))
            }
        }
    }

    fn name(&mut self) -> Option<&'a str> {
        self.maybe_name()?
    }

    fn names(&mut self) -> Option<Vec<&'a str>> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.name()?);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace<'a>(campaign: &'a str, source: Option<&'a str>) -> TraceRef<'a> {
        TraceRef {
            campaign,
            enrolled_at: 1_700_000_000_000,
            variants: vec![("copy", "warm"), ("time", "morning")],
            source,
            timezone: Some("Europe/London"),
            language: None,
            first_sent: Some((1_700_000_060_000, "email")),
            sent_on: vec!["email", "sms"],
            firsts: vec![("delivered", 1_700_000_061_000), ("clicked", i64::MIN)],
            device: Some("mobile"),
            bounced_on: vec![],
            exited: Some("completed"),
        }
    }

    #[test]
    fn traces_come_back_as_they_went_and_in_fewer_bytes() {
        let mut names = Names::default();
        let traces = vec![trace("hiring", Some("indeed")), trace("nurses", None)];
        let mut out = Vec::new();
        encode(&traces, &mut names, &mut out);
        assert_eq!(decode(&out, &names).unwrap(), traces);
        let record = postcard::to_stdvec(&crate::report::trace::Traces(
            traces.iter().map(owned).collect(),
        ))
        .unwrap();
        assert!(
            out.len() * 2 < record.len(),
            "{} against {}",
            out.len(),
            record.len()
        );
        // Cut short, or one byte too many: refused, never a panic.
        for end in 0..out.len() {
            assert!(decode(&out[..end], &names).is_none());
        }
        let mut longer = out.clone();
        longer.push(0);
        assert!(decode(&longer, &names).is_none());
    }

    #[test]
    fn names_past_the_table_are_written_in_place() {
        let mut names = Names::default();
        for i in 0..MOST_NAMES {
            names.code(&format!("n{i}")).unwrap();
        }
        let traces = vec![trace("hiring", Some("a source never seen"))];
        let mut out = Vec::new();
        encode(&traces, &mut names, &mut out);
        assert_eq!(decode(&out, &names).unwrap(), traces);
        assert_eq!(names.list.len(), MOST_NAMES);
    }

    fn owned(t: &TraceRef<'_>) -> crate::report::trace::Trace {
        let s = |x: &str| crate::report::trace::Name::from(x);
        crate::report::trace::Trace {
            campaign: s(t.campaign),
            enrolled_at: t.enrolled_at,
            variants: t.variants.iter().map(|(e, v)| (s(e), s(v))).collect(),
            source: t.source.map(s),
            timezone: t.timezone.map(s),
            language: t.language.map(s),
            first_sent: t.first_sent.map(|(at, c)| (at, s(c))),
            sent_on: t.sent_on.iter().map(|x| s(x)).collect(),
            firsts: t.firsts.iter().map(|(k, at)| (s(k), *at)).collect(),
            device: t.device.map(s),
            bounced_on: t.bounced_on.iter().map(|x| s(x)).collect(),
            exited: t.exited.map(s),
        }
    }
}
