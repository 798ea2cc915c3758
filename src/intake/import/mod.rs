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

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;
use std::path::Path;

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
    pub bytes: Vec<u8>,
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
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    if bytes.starts_with(b"PK\x03\x04") || name.to_lowercase().ends_with(".zip") {
        return unzip(&name, bytes, skipped).map_err(fail);
    }
    let kind = if bytes.starts_with(b"%PDF") {
        Kind::Pdf
    } else {
        kind_of(&name).unwrap_or(Kind::Csv)
    };
    Ok(vec![Input { name, kind, bytes }])
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
            bytes: data,
        });
    }
    Ok(inputs)
}

/// The first 8 bytes of the SHA-256 of `bytes`, in hex: an input's
/// identity in its rows' idempotency keys.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
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
    /// A 64-bit hash of each contact seen, and its line: a million rows'
    /// contacts in tens of megabytes rather than hundreds.
    seen: HashMap<u64, u64>,
    hasher: foldhash::fast::FixedState,
}

impl Checker {
    pub fn new(phone_country_code: &str) -> Checker {
        Checker {
            country: phone_country_code.to_string(),
            seen: HashMap::new(),
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
        for (name, value) in &row.fields {
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
            if let Some(first) = self.seen.get(key) {
                return Err(Reason::Duplicate {
                    line: *first,
                    contact: contact.clone(),
                });
            }
        }
        for (key, _) in keys {
            self.seen.insert(key, row.line);
        }
        Ok(())
    }
}

/// A CSV input's rows, in order, each a row or a line's reason.
pub struct CsvRows<'a> {
    reader: csv::Reader<&'a [u8]>,
    columns: Vec<Column>,
    record: csv::StringRecord,
}

impl<'a> CsvRows<'a> {
    /// The rows of `bytes`, its header matched to fields with `maps`.
    pub fn new(bytes: &'a [u8], maps: &BTreeMap<String, Column>) -> Result<CsvRows<'a>, String> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(bytes);
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
        let mut checker = Checker::new("");
        let results: Vec<_> = CsvRows::new(csv.as_bytes(), &maps)
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
}
