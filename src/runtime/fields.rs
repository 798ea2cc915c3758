//! The checks a candidate's fields pass where they enter (an enrollment
//! from the CLI or the admin API), so that nothing a channel or a template
//! would trip on later is stored:
//!
//! - **One line each.** No field holds a control character (CR, LF, tab,
//!   NUL, ...): any field can reach a message header (a template may print
//!   it in a subject, and templates are edited and reloaded without
//!   enrolling anyone again), and a line break there starts a new header.
//! - **`email`** is one bare address, `local@domain`, as the `email_address`
//!   crate parses it (RFC 5321/5322) with no display name (`Ana <a@b.com>`),
//!   no domain literal (`a@[10.0.0.1]`), no comment, and a domain with at
//!   least one dot: a dot-less domain (`a@localhost`) has no mail server on
//!   the public internet, so for a candidate it is a typo. Such an address
//!   is one the SMTP channel's `lettre` accepts too, so what is enrolled can
//!   be sent to: lettre splits an address at its last `@` as
//!   `email_address` does and checks the parts with that crate's own
//!   `is_valid_local_part` and `is_valid_domain`, under default options,
//!   which are looser than these (a test holds lettre to it).
//! - **`timezone`** is an IANA zone chrono-tz knows (`America/Chicago`).
//! - **`language`** is a BCP 47 tag (`en`, `pt-BR`; `_` read as `-`, as the
//!   templates read it) whose subtags are in the IANA Language Subtag
//!   Registry (the `language-tags` crate carries it) and whose primary
//!   language is a two- or three-letter ISO 639 code: not private use
//!   (`qaa`-`qtz`, `x-...`), not a grandfathered form (`i-klingon`). `tlh`
//!   (Klingon's ISO 639-2 and 639-3 code) is accepted: it is a registered
//!   language, and nudge does not judge which languages are real enough; a
//!   candidate whose language has no templates gets the default ones.
//!
//! The phone number is checked (and put in E.164 form) by
//! `channels::phone`.

use std::fmt;

use chrono_tz::Tz;

/// Why a candidate field's value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldProblem {
    /// A control character: a value is one line.
    ControlCharacter(char),
    /// Not one bare email address; the parser's reason.
    Email(String),
    /// Not an IANA time zone.
    Zone,
    /// Not a language tag of a known language; why.
    Language(String),
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldProblem::ControlCharacter(c) => write!(
                f,
                "holds a control character (U+{:04X}): a field is one line, since it can reach a message header",
                u32::from(*c)
            ),
            FieldProblem::Email(why) => write!(
                f,
                "is not one email address such as `ana@example.com` ({why})"
            ),
            FieldProblem::Zone => f.write_str(
                "is not an IANA time zone such as `America/Chicago` or `Europe/Madrid`",
            ),
            FieldProblem::Language(why) => write!(
                f,
                "is not the language tag of a known language, such as `en`, `es` or `pt-BR` ({why})"
            ),
        }
    }
}

/// Checks one candidate field (`name` already trimmed and lowercased).
pub fn check(name: &str, value: &str) -> Result<(), FieldProblem> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(FieldProblem::ControlCharacter(c));
    }
    match name {
        "email" => check_email(value),
        "timezone" => value
            .parse::<Tz>()
            .map(|_| ())
            .map_err(|_| FieldProblem::Zone),
        "language" => check_language(value),
        _ => Ok(()),
    }
}

/// A field name is one line too.
pub fn check_name(name: &str) -> Result<(), FieldProblem> {
    match name.chars().find(|c| c.is_control()) {
        Some(c) => Err(FieldProblem::ControlCharacter(c)),
        None => Ok(()),
    }
}

fn check_email(value: &str) -> Result<(), FieldProblem> {
    use email_address::{EmailAddress, Options};
    let options = Options::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    let email = |why: &str| Err(FieldProblem::Email(why.to_string()));
    if value.contains(['(', ')']) {
        return email("a comment in parentheses is not part of an address");
    }
    if value.contains(['<', '>']) {
        return email("give the address alone, without a name or `<...>`");
    }
    match EmailAddress::parse_with_options(value, options) {
        Ok(_) => Ok(()),
        Err(email_address::Error::DomainTooFew) => email("its domain has no dot"),
        Err(e) => {
            let why = e.to_string();
            email(why.trim_end_matches('.').to_lowercase().as_str())
        }
    }
}

fn check_language(value: &str) -> Result<(), FieldProblem> {
    let tag = language_tags::LanguageTag::parse(&value.replace('_', "-"))
        .map_err(|e| FieldProblem::Language(e.to_string()))?;
    tag.validate()
        .map_err(|e| FieldProblem::Language(e.to_string()))?;
    let primary = tag.primary_language();
    let iso = (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_alphabetic());
    let private = primary.len() == 3 && ("qaa"..="qtz").contains(&primary.to_lowercase().as_str());
    if !iso || private {
        return Err(FieldProblem::Language(format!(
            "`{primary}` is not an ISO 639 language code"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_one_bare_address_with_a_dotted_domain() {
        for good in [
            "ana@example.com",
            "ana.ruiz+jobs@mail.example.co.uk",
            "o'brien@example.ie",
            "\"ana ruiz\"@example.com",
            "\"a@b\"@example.com",
            "josé@example.es",
            "ana@xn--bcher-kva.example",
            "ana@bücher.example",
            "a!#$%&*+-/=?^_`{|}~@example.com",
        ] {
            assert_eq!(check("email", good), Ok(()), "{good}");
            // What is enrolled, the SMTP channel can address.
            assert!(good.parse::<lettre::Address>().is_ok(), "lettre: {good}");
        }
        for bad in [
            "notanemail",
            "a b@c",
            "a b@example.com",
            "@example.com",
            "ana@",
            "ana@localhost",
            "ana@c",
            "Ana <ana@example.com>",
            "<ana@example.com>",
            "ana(work)@example.com",
            "ana@[10.0.0.1]",
            "ana@example..com",
        ] {
            assert!(
                matches!(check("email", bad), Err(FieldProblem::Email(_))),
                "{bad}: {:?}",
                check("email", bad)
            );
        }
    }

    #[test]
    fn every_address_taken_is_one_lettre_takes() {
        // Strings made of the characters that decide how an address
        // parses, a few hundred thousand of them: whatever the check takes,
        // lettre must take too (it is not parsed again before sending).
        let alphabet: Vec<char> = "ab.@\"\\ -+ü[]1_(),;:<>x".chars().collect();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        let mut taken = 0;
        for _ in 0..300_000 {
            let len = 3 + next(14);
            let mut s: String = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
            s.push_str(["@example.com", ".com", "@a.b", ""][next(4)]);
            if check("email", &s).is_ok() {
                taken += 1;
                assert!(s.parse::<lettre::Address>().is_ok(), "{s:?}");
            }
        }
        assert!(
            taken > 1_000,
            "only {taken} taken: the test tries too little"
        );
    }

    #[test]
    fn a_line_break_in_any_field_is_refused() {
        assert_eq!(
            check("email", "ana@example.com\nBcc: all@example.com"),
            Err(FieldProblem::ControlCharacter('\n'))
        );
        assert_eq!(
            check("name", "Ana\r\nBcc: x@example.com"),
            Err(FieldProblem::ControlCharacter('\r'))
        );
        assert_eq!(
            check("shift", "night\tshift"),
            Err(FieldProblem::ControlCharacter('\t'))
        );
        assert_eq!(check("name", "María José Ruiz"), Ok(()));
        assert_eq!(
            check_name("sh\nift"),
            Err(FieldProblem::ControlCharacter('\n'))
        );
    }

    #[test]
    fn zones_are_iana_names() {
        assert_eq!(check("timezone", "America/Chicago"), Ok(()));
        assert_eq!(check("timezone", "UTC"), Ok(()));
        assert_eq!(check("timezone", "Mars/Olympus"), Err(FieldProblem::Zone));
        assert_eq!(check("timezone", "CST6"), Err(FieldProblem::Zone));
    }

    #[test]
    fn languages_are_registered_iso_639_languages() {
        for good in [
            "en",
            "fr",
            "pt-BR",
            "pt_BR",
            "es-419",
            "zh-Hant-TW",
            "tlh",
            "EN",
        ] {
            assert_eq!(check("language", good), Ok(()), "{good}");
        }
        for bad in [
            "klingon",
            "english",
            "xx",
            "qaa",
            "x-private",
            "i-klingon",
            "en-XYZ1",
            "",
        ] {
            assert!(
                matches!(check("language", bad), Err(FieldProblem::Language(_))),
                "{bad}: {:?}",
                check("language", bad)
            );
        }
    }
}
