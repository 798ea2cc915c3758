//! `nudge import`'s reading side: files into rows of candidate fields,
//! each row checked before anything is sent to the runtime, and the rows
//! that cannot be imported kept as rejects (file, line, reason).
//!
//! - **CSV** with a header row; columns matched to fields by
//!   [`columns`] (common names, or `--map`).
//! - **PDF** résumés: one applicant per file, found by [`resume`]'s rules.
//! - **ZIP** archives of both (folders inside are walked; other entries
//!   are reported as skipped).
//!
//! Each input carries a digest of its bytes: a row's idempotency key is
//! `import:DIGEST:LINE`, so the same file imported again (or again after
//! an interruption) is recognised row by row and adds nobody.

pub mod columns;
pub mod resume;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::channels::phone::to_e164;
use crate::runtime::fields;
pub use columns::Column;

/// One file to import: a CSV or a PDF (a ZIP gives several).
#[derive(Debug, Clone)]
pub struct Input {
    /// The name rejects and messages use: the path, or
    /// `archive.zip/inner.csv`.
    pub name: String,
    pub kind: Kind,
    pub body: Body,
}

/// Where an input's bytes are. A CSV file on disk is read as its rows are
/// taken (a file of a million rows never sits in memory); a PDF and a
/// ZIP's entries are read whole.
#[derive(Debug, Clone)]
pub enum Body {
    Bytes(Vec<u8>),
    File { path: PathBuf, len: u64 },
}

/// Bytes read at a time when a file's digest is taken.
const DIGEST_READ: usize = 1 << 20;

impl Input {
    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        match &self.body {
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    /// Its digest (the first 8 bytes of the SHA-256 of its bytes, in hex:
    /// its identity in its rows' idempotency keys) and how many lines it
    /// has, from one read in pieces: the lines say how many rows to make
    /// room for.
    pub fn survey(&self) -> std::io::Result<Survey> {
        let mut hash = Sha256::new();
        let mut lines = 0u64;
        let mut take = |piece: &[u8]| {
            hash.update(piece);
            lines += piece.iter().filter(|b| **b == b'\n').count() as u64;
        };
        match &self.body {
            Body::Bytes(b) => take(b),
            Body::File { path, .. } => {
                let mut file = std::fs::File::open(path)?;
                let mut buffer = vec![0u8; DIGEST_READ];
                loop {
                    let n = file.read(&mut buffer)?;
                    if n == 0 {
                        break;
                    }
                    take(&buffer[..n]);
                }
            }
        }
        Ok(Survey {
            digest: hex::encode(&hash.finalize()[..8]),
            lines,
        })
    }

    /// Its bytes, from the start.
    pub fn reader(&self) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(match &self.body {
            Body::Bytes(b) => Box::new(&b[..]),
            Body::File { path, .. } => Box::new(std::fs::File::open(path)?),
        })
    }

    /// Its bytes, whole (read from disk for a file).
    pub fn bytes(&self) -> std::io::Result<Cow<'_, [u8]>> {
        Ok(match &self.body {
            Body::Bytes(b) => Cow::Borrowed(&b[..]),
            Body::File { path, .. } => Cow::Owned(std::fs::read(path)?),
        })
    }
}

/// What one read of an input tells: [`Input::survey`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    /// See [`Input::survey`].
    pub digest: String,
    /// Newlines (a quoted field may hold some: an upper bound on rows).
    pub lines: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Csv,
    Pdf,
}

/// A file that cannot be imported at all.
#[derive(Debug)]
pub struct OpenError {
    pub file: String,
    pub why: String,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.why)
    }
}

fn kind_of(name: &str) -> Option<Kind> {
    let lower = name.to_lowercase();
    if lower.ends_with(".csv") {
        Some(Kind::Csv)
    } else if lower.ends_with(".pdf") {
        Some(Kind::Pdf)
    } else {
        None
    }
}

/// The inputs in the file at `path`; `skipped` gets a ZIP's entries that
/// are neither CSV nor PDF.
pub fn open(path: &Path, skipped: &mut Vec<String>) -> Result<Vec<Input>, OpenError> {
    let name = path.display().to_string();
    let fail = |why: String| OpenError {
        file: name.clone(),
        why,
    };
    let unreadable = |e: std::io::Error| fail(format!("cannot read it: {e}"));
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let len = file.metadata().map_err(unreadable)?.len();
    let mut head = Vec::with_capacity(4);
    (&mut file)
        .take(4)
        .read_to_end(&mut head)
        .map_err(unreadable)?;
    if head.starts_with(b"PK\x03\x04") || name.to_lowercase().ends_with(".zip") {
        let bytes = std::fs::read(path).map_err(unreadable)?;
        return unzip(&name, bytes, skipped).map_err(fail);
    }
    let kind = if head.starts_with(b"%PDF") {
        Kind::Pdf
    } else {
        kind_of(&name).unwrap_or(Kind::Csv)
    };
    let body = match kind {
        Kind::Pdf => Body::Bytes(std::fs::read(path).map_err(unreadable)?),
        Kind::Csv => Body::File {
            path: path.to_path_buf(),
            len,
        },
    };
    Ok(vec![Input { name, kind, body }])
}

fn unzip(name: &str, bytes: Vec<u8>, skipped: &mut Vec<String>) -> Result<Vec<Input>, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a ZIP archive nudge can read: {e}"))?;
    let mut inputs = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("entry {i} cannot be read: {e}"))?;
        if entry.is_dir() {
            continue;
        }
        let inner = entry.name().to_string();
        let file = format!("{name}/{inner}");
        let base = inner.rsplit('/').next().unwrap_or(&inner);
        // macOS's resource forks and hidden files are not applicants.
        if inner.starts_with("__MACOSX/") || base.starts_with('.') {
            continue;
        }
        let Some(kind) = kind_of(&inner) else {
            skipped.push(file);
            continue;
        };
        let mut data = Vec::with_capacity(entry.size().min(1 << 28) as usize);
        entry
            .read_to_end(&mut data)
            .map_err(|e| format!("`{inner}` cannot be decompressed: {e}"))?;
        inputs.push(Input {
            name: file,
            kind,
            body: Body::Bytes(data),
        });
    }
    Ok(inputs)
}

/// One applicant read from a file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    /// The line the row starts on (1 is the header of a CSV; a PDF's row is
    /// line 1).
    pub line: u64,
    pub external_id: Option<String>,
    pub fields: BTreeMap<String, String>,
    /// What a person should check (a guessed name).
    pub flags: Vec<String>,
}

/// Why a row is not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Neither an email address nor a phone number.
    NoContact,
    InvalidEmail(String),
    UnparseablePhone(String),
    /// The same email address or phone number as an earlier line.
    Duplicate {
        line: u64,
        contact: String,
    },
    /// The row or file cannot be read.
    Unreadable(String),
    /// The runtime refused it (a bad time zone, say).
    Refused(String),
}

impl Reason {
    /// The reason's short name, the rejects file's `reason` column.
    pub fn name(&self) -> &'static str {
        match self {
            Reason::NoContact => "no contact",
            Reason::InvalidEmail(_) => "invalid email",
            Reason::UnparseablePhone(_) => "unparseable phone",
            Reason::Duplicate { .. } => "duplicate",
            Reason::Unreadable(_) => "unreadable",
            Reason::Refused(_) => "refused",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoContact => f.write_str("no email address or phone number"),
            Reason::InvalidEmail(why) => write!(f, "invalid email: {why}"),
            Reason::UnparseablePhone(why) => write!(f, "unparseable phone: {why}"),
            Reason::Duplicate { line, contact } => {
                write!(f, "duplicate of line {line} ({contact})")
            }
            Reason::Unreadable(why) => write!(f, "unreadable: {why}"),
            Reason::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

/// A row that is not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub file: String,
    pub line: u64,
    pub reason: Reason,
}

/// The checks a row passes before it is sent, per input: a contact, a
/// valid email, a phone number that has an E.164 form, no contact seen on
/// an earlier line.
pub struct Checker {
    country: String,
    /// A 64-bit hash of each contact seen and its line, as three 32-bit
    /// words (13 bytes a slot with the table's control byte, where a map
    /// of two 64-bit numbers takes 17): a million rows' contacts in tens
    /// of megabytes rather than hundreds.
    seen: hashbrown::HashTable<[u32; 3]>,
    hasher: foldhash::fast::FixedState,
}

/// A seen contact's hash, from its words.
fn seen_hash(words: &[u32; 3]) -> u64 {
    (u64::from(words[0]) << 32) | u64::from(words[1])
}

impl Checker {
    /// A checker with room for `contacts` contacts (two a row is usual).
    pub fn new(phone_country_code: &str, contacts: usize) -> Checker {
        Checker {
            country: phone_country_code.to_string(),
            seen: hashbrown::HashTable::with_capacity(contacts),
            hasher: foldhash::fast::FixedState::with_seed(0x006e_7564_6765),
        }
    }

    pub fn check(&mut self, row: &Row) -> Result<(), Reason> {
        let email = row.fields.get("email").map(|e| e.trim().to_lowercase());
        let phone = row.fields.get("phone").map(|p| p.trim());
        if email.is_none() && phone.is_none() {
            return Err(Reason::NoContact);
        }
        if let Some(email) = &email {
            fields::check("email", email)
                .map_err(|p| Reason::InvalidEmail(format!("`{email}` {p}")))?;
        }
        let phone = match phone {
            Some(p) => Some(
                to_e164(p, &self.country).map_err(|e| Reason::UnparseablePhone(e.to_string()))?,
            ),
            None => None,
        };
        // The email address was checked above, trimmed as the runtime
        // keeps it.
        for (name, value) in row.fields.iter().filter(|(name, _)| *name != "email") {
            if let Err(problem) = fields::check(name, value) {
                return Err(Reason::Refused(format!("`{name}` {problem}")));
            }
        }
        use std::hash::BuildHasher;
        let keys: Vec<(u64, String)> = email
            .into_iter()
            .chain(phone)
            .map(|c| (self.hasher.hash_one(&c), c))
            .collect();
        for (key, contact) in &keys {
            if let Some(first) = self.seen.find(*key, |w| seen_hash(w) == *key) {
                return Err(Reason::Duplicate {
                    line: u64::from(first[2]),
                    contact: contact.clone(),
                });
            }
        }
        // A line past 2^32 is noted as the last that fits (only a
        // duplicate's message shows it).
        let line = u32::try_from(row.line).unwrap_or(u32::MAX);
        for (key, _) in keys {
            if self.seen.find(key, |w| seen_hash(w) == key).is_none() {
                let words = [(key >> 32) as u32, key as u32, line];
                self.seen.insert_unique(key, words, seen_hash);
            }
        }
        Ok(())
    }
}

/// A CSV input's rows, in order, each a row or a line's reason.
pub struct CsvRows<'a> {
    reader: csv::Reader<std::io::BufReader<Box<dyn Read + 'a>>>,
    columns: Vec<Column>,
    record: csv::StringRecord,
}

impl<'a> CsvRows<'a> {
    /// The rows of what `input` reads, its header matched to fields with
    /// `maps` (a UTF-8 byte order mark first is passed over).
    pub fn new(
        input: Box<dyn Read + 'a>,
        maps: &BTreeMap<String, Column>,
    ) -> Result<CsvRows<'a>, String> {
        let mut input = std::io::BufReader::new(input);
        let start = input
            .fill_buf()
            .map_err(|e| format!("cannot read it: {e}"))?;
        if start.starts_with(b"\xEF\xBB\xBF") {
            input.consume(3);
        }
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(input);
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| format!("the header row cannot be read: {e}"))?
            .iter()
            .map(str::to_string)
            .collect();
        let columns = columns::columns(&headers, maps);
        if !columns
            .iter()
            .any(|c| matches!(c, Column::Field(f) if f == "email" || f == "phone"))
        {
            return Err(format!(
                "no column is an email address or a phone number (the header is `{}`): name one with --map COLUMN=email",
                headers.join(",")
            ));
        }
        Ok(CsvRows {
            reader,
            columns,
            record: csv::StringRecord::new(),
        })
    }

    /// How far into the input the reader is, in bytes.
    pub fn position(&self) -> u64 {
        self.reader.position().byte()
    }
}

impl Iterator for CsvRows<'_> {
    type Item = Result<Row, (u64, Reason)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = self.reader.position().line();
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return None,
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(line);
                    return Some(Err((line, Reason::Unreadable(e.to_string()))));
                }
                Ok(true) => {}
            }
            let line = self.record.position().map(|p| p.line()).unwrap_or(line);
            if self.record.iter().all(str::is_empty) {
                continue;
            }
            let mut row = Row {
                line,
                ..Row::default()
            };
            let (mut first, mut last) = (None, None);
            for (value, column) in self.record.iter().zip(&self.columns) {
                if value.is_empty() {
                    continue;
                }
                match column {
                    Column::Field(f) => {
                        row.fields.insert(f.clone(), value.to_string());
                    }
                    Column::FirstName => first = Some(value),
                    Column::LastName => last = Some(value),
                    Column::ExternalId => row.external_id = Some(value.to_string()),
                    Column::Skip => {}
                }
            }
            if !row.fields.contains_key("name") {
                let name: Vec<&str> = first.into_iter().chain(last).collect();
                if !name.is_empty() {
                    row.fields.insert("name".into(), name.join(" "));
                }
            }
            return Some(Ok(row));
        }
    }
}

/// A PDF résumé's one row.
pub fn pdf_row(bytes: &[u8], phone_country_code: &str) -> Result<Row, Reason> {
    let text = resume::text_of(bytes).map_err(Reason::Unreadable)?;
    let found = resume::find(&text, phone_country_code);
    Ok(Row {
        line: 1,
        external_id: None,
        fields: found.fields,
        flags: found.flags,
    })
}

/// Writes the rejects as CSV: `file,line,reason,detail`.
pub fn write_rejects(path: &Path, rejects: &[Reject]) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_path(path)?;
    writer.write_record(["file", "line", "reason", "detail"])?;
    for r in rejects {
        writer.write_record([
            r.file.as_str(),
            &r.line.to_string(),
            r.reason.name(),
            &r.reason.to_string(),
        ])?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_with_their_line_and_bad_ones_are_named() {
        let csv = "First name,Last name,E-mail,Mobile,Shift\n\
                   Ana,Ruiz,ana@example.com,+13125550100,nights\n\
                   \n\
                   Bo,Li,,,days\n\
                   Cy,Ng,not-an-email,,\n\
                   Di,Oh,,12,\n\
                   Ed,Yu,ANA@example.com,,\n";
        let maps = BTreeMap::new();
        let mut checker = Checker::new("", 0);
        let results: Vec<_> = CsvRows::new(Box::new(csv.as_bytes()), &maps)
            .unwrap()
            .map(|r| r.and_then(|row| checker.check(&row).map(|()| row).map_err(|e| (0, e))))
            .collect();
        let ok = results[0].as_ref().unwrap();
        assert_eq!(ok.line, 2);
        assert_eq!(ok.fields["name"], "Ana Ruiz");
        assert_eq!(ok.fields["shift"], "nights");
        let reasons: Vec<&str> = results[1..]
            .iter()
            .map(|r| r.as_ref().unwrap_err().1.name())
            .collect();
        assert_eq!(
            reasons,
            [
                "no contact",
                "invalid email",
                "unparseable phone",
                "duplicate"
            ]
        );
    }

    /// A CSV on disk is read from the file as its rows are taken, not
    /// held: its digest is the digest of its bytes, as for an input in
    /// memory, and a byte order mark before its header is passed over.
    #[test]
    fn a_csv_file_is_streamed_with_the_digest_of_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("people.csv");
        let text = "\u{feff}Email,First name\nana@example.com,Ana\nbo@example.com,Bo\n";
        std::fs::write(&path, text).unwrap();
        let mut skipped = Vec::new();
        let inputs = open(&path, &mut skipped).unwrap();
        assert_eq!(inputs.len(), 1);
        let input = &inputs[0];
        assert!(matches!(input.body, Body::File { .. }));
        assert_eq!(input.size(), text.len() as u64);
        let in_memory = Input {
            name: "people.csv".into(),
            kind: Kind::Csv,
            body: Body::Bytes(text.as_bytes().to_vec()),
        };
        assert_eq!(input.survey().unwrap(), in_memory.survey().unwrap());
        assert_eq!(input.survey().unwrap().digest.len(), 16);
        let rows: Vec<Row> = CsvRows::new(input.reader().unwrap(), &BTreeMap::new())
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].fields["email"], "ana@example.com");
        assert_eq!(rows[1].line, 3);
    }
}
