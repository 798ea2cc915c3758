//! A PDF résumé's name, email address and phone number, found by rules in
//! its text; what the rules are unsure of is flagged for a person to look
//! at.
//!
//! - **Email**: the first word with an `@` that is one valid address
//!   (`runtime::fields`), trailing punctuation cut; more than one is
//!   flagged.
//! - **Phone**: the first run of digits, spaces, dots, dashes, brackets
//!   and a leading `+` holding 7 to 15 digits that `channels::phone`
//!   takes; more than one different number is flagged.
//! - **Name**: a line `Name: ...` when there is one; else the first line
//!   of two to four words of letters that is not a heading such as
//!   "Résumé" or "Curriculum Vitae", flagged as guessed.

use std::collections::BTreeMap;

use crate::channels::phone::to_e164;
use crate::runtime::fields;

/// What the rules found, and what they are unsure of.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Found {
    pub fields: BTreeMap<String, String>,
    pub flags: Vec<String>,
}

/// The text of a PDF, or why it has none. The extractor is guarded: a
/// malformed file is a reject of that file, never a crash of the import.
pub fn text_of(pdf: &[u8]) -> Result<String, String> {
    let bytes = pdf.to_vec();
    match std::panic::catch_unwind(move || pdf_extract::extract_text_from_mem(&bytes)) {
        Ok(Ok(text)) if !text.trim().is_empty() => Ok(text),
        Ok(Ok(_)) => Err("the PDF has no text (a scanned image?)".into()),
        Ok(Err(e)) => Err(format!("the PDF cannot be read: {e}")),
        Err(_) => Err("the PDF cannot be read".into()),
    }
}

const HEADINGS: &[&str] = &[
    "resume",
    "résumé",
    "curriculum vitae",
    "cv",
    "contact",
    "profile",
    "summary",
];

fn email_in(word: &str) -> Option<String> {
    let w = word.trim_matches(|c: char| !c.is_alphanumeric());
    let w = w.strip_prefix("mailto:").unwrap_or(w);
    (w.contains('@') && fields::check("email", w).is_ok()).then(|| w.to_string())
}

/// Phone-like runs of a line: digits with separators, 7 to 15 digits.
fn phones_in(line: &str, country: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut Vec<(String, String)>| {
        let candidate = run
            .trim()
            .trim_end_matches(['-', '.', '('])
            .trim()
            .to_string();
        let digits = candidate.chars().filter(char::is_ascii_digit).count();
        if (7..=15).contains(&digits) {
            if let Ok(e164) = to_e164(&candidate, country) {
                out.push((candidate, e164));
            }
        }
        run.clear();
    };
    for c in line.chars() {
        let part = c.is_ascii_digit()
            || (matches!(c, ' ' | '.' | '-' | '(' | ')') && !run.is_empty())
            || (c == '+' && run.trim().is_empty());
        if part {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn looks_like_name(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    (2..=4).contains(&words.len())
        && words.iter().all(|w| {
            w.chars()
                .all(|c| c.is_alphabetic() || matches!(c, '-' | '\'' | '.' | '’'))
                && w.chars().next().is_some_and(char::is_alphabetic)
        })
        && !HEADINGS.contains(&line.trim().to_lowercase().as_str())
}

/// Name, email and phone in a résumé's `text`; `country` completes
/// national phone numbers as enrollment does.
pub fn find(text: &str, country: &str) -> Found {
    let mut found = Found::default();
    let mut emails: Vec<String> = Vec::new();
    let mut phones: Vec<(String, String)> = Vec::new();
    let mut labelled_name = None;
    let mut first_name_line = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        for word in line.split_whitespace() {
            if let Some(e) = email_in(word) {
                if !emails.contains(&e) {
                    emails.push(e);
                }
            }
        }
        for p in phones_in(line, country) {
            if !phones.iter().any(|(_, e)| *e == p.1) {
                phones.push(p);
            }
        }
        let lower = line.to_lowercase();
        if labelled_name.is_none() {
            if let Some(rest) = lower
                .strip_prefix("name:")
                .or_else(|| lower.strip_prefix("full name:"))
            {
                let at = line.len() - rest.len();
                let name = line[at..].trim();
                if !name.is_empty() {
                    labelled_name = Some(name.to_string());
                }
            }
        }
        if first_name_line.is_none() && looks_like_name(line) {
            first_name_line = Some(line.to_string());
        }
    }
    match (labelled_name, first_name_line) {
        (Some(name), _) => {
            found.fields.insert("name".into(), name);
        }
        (None, Some(line)) => {
            found
                .flags
                .push(format!("name guessed from the line `{line}`"));
            found.fields.insert("name".into(), line);
        }
        (None, None) => found.flags.push("no name found".into()),
    }
    if let Some(email) = emails.first() {
        found.fields.insert("email".into(), email.clone());
        if emails.len() > 1 {
            found.flags.push(format!(
                "{} email addresses; the first, {email}, taken",
                emails.len()
            ));
        }
    }
    if let Some((raw, _)) = phones.first() {
        found.fields.insert("phone".into(), raw.clone());
        if phones.len() > 1 {
            found.flags.push(format!(
                "{} phone numbers; the first, {raw}, taken",
                phones.len()
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_gives_its_name_email_and_phone() {
        let text = "Curriculum Vitae\nMaria Lopez\nWarehouse associate\n\
                    maria.lopez@example.com | +1 (312) 555-0147\nExperience: 2019-2024 forklift";
        let found = find(text, "");
        assert_eq!(found.fields["name"], "Maria Lopez");
        assert_eq!(found.fields["email"], "maria.lopez@example.com");
        assert_eq!(found.fields["phone"], "+1 (312) 555-0147");
        assert_eq!(found.flags.len(), 1, "{:?}", found.flags);
        assert!(found.flags[0].contains("guessed"));
    }

    #[test]
    fn a_labelled_name_is_sure() {
        let found = find(
            "Name: Jo Park\nEmail: jo@example.org\nTel 312.555.0100",
            "1",
        );
        assert_eq!(found.fields["name"], "Jo Park");
        assert_eq!(found.fields["phone"], "312.555.0100");
        assert!(found.flags.is_empty(), "{:?}", found.flags);
    }
}
