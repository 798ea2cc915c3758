//! Phone numbers to E.164 (`+` and 8 to 15 digits), the form SMS and
//! WhatsApp providers take.
//!
//! Hand-written on purpose: the `phonenumber` crate carries Google's
//! per-country metadata (a large dependency that must follow every
//! numbering-plan change) to answer questions nudge does not ask. nudge only
//! needs to put numbers people typed into one canonical form, and to refuse
//! the ones it cannot, loudly and with the value. The rules, in order:
//!
//! 1. Spaces (also no-break spaces), dashes, dots, slashes and parentheses
//!    are dropped; any other character but a leading `+` is an error (so an
//!    extension such as `x12` is refused rather than dialled).
//! 2. `+` then digits is international already.
//! 3. `00` then digits is international too (the ITU prefix, used across
//!    Europe, Africa, Asia); with the default country code `1`, so is `011`
//!    (the North American prefix).
//! 4. Anything else is national and needs the default country code:
//!    - `1` (North America): 10 digits, the first 2 to 9, or the same 11
//!      digits starting with `1`;
//!    - any other code: one leading `0` (the trunk prefix of most of Europe,
//!      Africa, Asia and Oceania) is dropped and the code put in front.
//!      Italy keeps that `0` on landlines, which this gets wrong; landlines
//!      take no SMS, so a wrong landline number costs one failed send.
//! 5. The result must have 8 to 15 digits, the first not `0`.
//!
//! Without a default country code (an empty string) only rules 2 and 3
//! apply. Validity beyond the shape (is this a real, mobile number?) is the
//! provider's to say, and it does (Twilio 21211, 21614).

use std::fmt;

/// Why a phone number cannot be put in E.164 form; carries the value as
/// written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneError {
    /// The number as given.
    pub value: String,
    /// What is wrong with it.
    pub problem: PhoneProblem,
}

/// What is wrong with a phone number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneProblem {
    /// Nothing but spaces.
    Empty,
    /// A character that is neither a digit, a separator, nor a leading `+`.
    Character(char),
    /// Too few or too many digits once in international form.
    Length(usize),
    /// The international number starts with `0`.
    LeadingZero,
    /// A national number, and no default country code to complete it.
    NoCountryCode,
    /// The default country code is not 1 to 3 digits starting 1 to 9.
    BadCountryCode,
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = &self.value;
        match self.problem {
            PhoneProblem::Empty => write!(f, "the phone number `{value}` is empty"),
            PhoneProblem::Character(c) => {
                write!(f, "the phone number `{value}` has `{c}`, not a digit")
            }
            PhoneProblem::Length(n) => write!(
                f,
                "the phone number `{value}` has {n} digits with its country code, \
                 not 8 to 15"
            ),
            PhoneProblem::LeadingZero => write!(
                f,
                "the phone number `{value}` has no country code after the international prefix"
            ),
            PhoneProblem::NoCountryCode => write!(
                f,
                "the phone number `{value}` has no country code: write it as +<country><number>"
            ),
            PhoneProblem::BadCountryCode => write!(
                f,
                "the phone number `{value}` cannot be completed: the default country code \
                 is not 1 to 3 digits"
            ),
        }
    }
}

impl std::error::Error for PhoneError {}

/// Whether `code` is a country calling code in shape: 1 to 3 digits, the
/// first not `0` (an optional leading `+` is allowed).
pub fn is_country_code(code: &str) -> bool {
    let code = code.strip_prefix('+').unwrap_or(code);
    (1..=3).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_digit())
        && !code.starts_with('0')
}

/// `raw` in E.164 form (`+15550100`), completing national numbers with
/// `default_country_code` (`"1"`, `"44"`; `""` for none). See the module
/// documentation for the rules.
pub fn to_e164(raw: &str, default_country_code: &str) -> Result<String, PhoneError> {
    let fail = |problem| PhoneError {
        value: raw.to_string(),
        problem,
    };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(fail(PhoneProblem::Empty));
    }
    let mut digits = String::with_capacity(trimmed.len());
    let mut plus = false;
    for c in trimmed.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if digits.is_empty() && !plus => plus = true,
            ' ' | '\u{a0}' | '-' | '.' | '/' | '(' | ')' => {}
            other => return Err(fail(PhoneProblem::Character(other))),
        }
    }
    let cc = default_country_code
        .strip_prefix('+')
        .unwrap_or(default_country_code);
    let international = if plus {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else if let Some(rest) = digits.strip_prefix("011").filter(|_| cc == "1") {
        rest.to_string()
    } else if cc.is_empty() {
        return Err(fail(PhoneProblem::NoCountryCode));
    } else if !is_country_code(cc) {
        return Err(fail(PhoneProblem::BadCountryCode));
    } else if cc == "1" {
        north_american(&digits).ok_or_else(|| fail(PhoneProblem::Length(digits.len())))?
    } else {
        let national = digits.strip_prefix('0').unwrap_or(&digits);
        format!("{cc}{national}")
    };
    if international.starts_with('0') {
        return Err(fail(PhoneProblem::LeadingZero));
    }
    if !(8..=15).contains(&international.len()) {
        return Err(fail(PhoneProblem::Length(international.len())));
    }
    Ok(format!("+{international}"))
}

/// A North American national number with its country code: 10 digits (the
/// area code starting 2 to 9), optionally after a `1`.
fn north_american(digits: &str) -> Option<String> {
    let ten = match digits.len() {
        10 => digits,
        11 => digits.strip_prefix('1')?,
        _ => return None,
    };
    matches!(ten.as_bytes()[0], b'2'..=b'9').then(|| format!("1{ten}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_that_normalise() {
        let cases = [
            // (raw, default country code, E.164)
            ("+15550100", "", "+15550100"),
            ("+1 (555) 010-0100", "", "+15550100100"),
            ("  +44 7911 123456 ", "", "+447911123456"),
            ("+49.30.1234567", "", "+49301234567"),
            ("0044 7911 123456", "", "+447911123456"),
            ("0044 7911 123456", "1", "+447911123456"),
            ("011 44 7911 123456", "1", "+447911123456"),
            ("(555) 010-0100", "1", "+15550100100"),
            ("1 555 010 0100", "1", "+15550100100"),
            ("555.010.0100", "+1", "+15550100100"),
            ("07911 123456", "44", "+447911123456"),
            ("7911 123456", "44", "+447911123456"),
            ("0612 345 678", "31", "+31612345678"),
            ("030/1234567", "49", "+49301234567"),
            ("+52\u{a0}55 1234 5678", "", "+525512345678"),
            ("+123456789012345", "", "+123456789012345"),
        ];
        for (raw, cc, expected) in cases {
            assert_eq!(
                to_e164(raw, cc).as_deref(),
                Ok(expected),
                "{raw:?} with {cc:?}"
            );
        }
    }

    #[test]
    fn numbers_that_do_not() {
        let cases = [
            ("", "1", PhoneProblem::Empty),
            ("   ", "1", PhoneProblem::Empty),
            ("+1 555 0100 x12", "", PhoneProblem::Character('x')),
            ("555-CALL-NOW", "1", PhoneProblem::Character('C')),
            ("+1+5550100", "", PhoneProblem::Character('+')),
            ("555 0100", "", PhoneProblem::NoCountryCode),
            ("07911 123456", "", PhoneProblem::NoCountryCode),
            ("07911 123456", "044", PhoneProblem::BadCountryCode),
            ("07911 123456", "4444", PhoneProblem::BadCountryCode),
            ("555 0100", "1", PhoneProblem::Length(7)),
            ("155 010 0100", "1", PhoneProblem::Length(10)),
            ("2 555 010 0100", "1", PhoneProblem::Length(11)),
            ("+1234567", "", PhoneProblem::Length(7)),
            ("+1234567890123456", "", PhoneProblem::Length(16)),
            ("+0 555 010 0100", "", PhoneProblem::LeadingZero),
            ("000 555 010 0100", "44", PhoneProblem::LeadingZero),
            ("+", "", PhoneProblem::Length(0)),
        ];
        for (raw, cc, problem) in cases {
            assert_eq!(
                to_e164(raw, cc),
                Err(PhoneError {
                    value: raw.to_string(),
                    problem
                }),
                "{raw:?} with {cc:?}"
            );
        }
    }

    #[test]
    fn errors_name_the_value() {
        let err = to_e164("555 0100", "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the phone number `555 0100` has no country code: write it as +<country><number>"
        );
        let err = to_e164("+1 555 0100 x12", "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the phone number `+1 555 0100 x12` has `x`, not a digit"
        );
    }

    #[test]
    fn country_codes() {
        for good in ["1", "44", "+44", "351"] {
            assert!(is_country_code(good), "{good}");
        }
        for bad in ["", "+", "0", "044", "1234", "4a"] {
            assert!(!is_country_code(bad), "{bad}");
        }
    }
}
