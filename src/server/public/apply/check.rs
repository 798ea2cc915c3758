//! What an applicant typed, checked before anything is stored: the checks
//! of enrollment (`runtime::fields` for one-line values and the email
//! address, `channels::phone` for the number), worded for the applicant,
//! and the rule of reach: an applicant gives a way the campaign can reach
//! them.
//!
//! **Reach and consent to texts.** A campaign that sends email takes an
//! email address; one that sends texts (SMS or WhatsApp) takes a mobile
//! number *with* the consent box ticked. Whoever gives neither is asked
//! for one. A number without consent is refused with the box marked,
//! never stored quietly: a stored number is a number the campaign texts,
//! and nobody is texted who did not agree. So a campaign sending both
//! (the warehouse one: texts first, email as the fallback) takes an email
//! alone, a number with consent, or both; one sending texts only needs
//! the number and the consent; one sending email only needs the address
//! (a number given there is kept, with the consent as ticked).

use std::fmt;

use serde::Deserialize;

use crate::channels::phone::{to_e164, PhoneProblem};
use crate::engine::{Channel, Machine};
use crate::runtime::fields::{self, FieldProblem};

/// The longest name taken, in characters.
const NAME_MAX: usize = 200;
/// The longest email address that can be sent to (RFC 5321's path limit).
const EMAIL_MAX: usize = 254;
/// The longest `?source=` word kept.
const SOURCE_MAX: usize = 64;

/// The form as it is posted (`application/x-www-form-urlencoded`); a
/// field left out is empty, an unknown one ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Input {
    pub name: String,
    pub email: String,
    pub phone: String,
    /// `yes` when the box is ticked; absent when it is not.
    pub sms_consent: Option<String>,
    /// The hidden field carrying `?source=`.
    pub source: String,
}

impl Input {
    pub fn consents(&self) -> bool {
        self.sms_consent
            .as_deref()
            .is_some_and(|v| !v.trim().is_empty())
    }
}

/// A field of the form, named as the form and the candidate name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Email,
    Phone,
    SmsConsent,
}

impl Field {
    /// The input's `name` and `id`.
    pub fn id(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Email => "email",
            Field::Phone => "phone",
            Field::SmsConsent => "sms_consent",
        }
    }

    /// The field a runtime refusal names, when the form has it.
    pub fn of(name: &str) -> Option<Field> {
        [Field::Name, Field::Email, Field::Phone, Field::SmsConsent]
            .into_iter()
            .find(|f| f.id() == name)
    }
}

/// What is wrong, field by field, in the order of the form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Errors(Vec<(Field, String)>);

impl Errors {
    pub fn add(&mut self, field: Field, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    /// The message beside `field`, if any.
    pub fn get(&self, field: Field) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn one(field: Field, message: impl Into<String>) -> Errors {
        let mut errors = Errors::default();
        errors.add(field, message);
        errors
    }
}

/// How a campaign reaches people: by email, by text, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    pub email: bool,
    pub texts: bool,
}

impl Reach {
    /// A campaign that reaches people by neither (webhooks only) takes
    /// either contact, as one that uses both does.
    pub fn of(machine: &Machine) -> Reach {
        let email = machine.channels.contains(&Channel::Email);
        let texts = machine
            .channels
            .iter()
            .any(|c| matches!(c, Channel::Sms | Channel::Whatsapp));
        if email || texts {
            Reach { email, texts }
        } else {
            Reach {
                email: true,
                texts: true,
            }
        }
    }
}

/// An application that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub name: String,
    pub email: Option<String>,
    /// In E.164 form.
    pub phone: Option<String>,
    pub consent: bool,
}

/// Checks `input` for a campaign that reaches people as `reach`; national
/// numbers are completed with `country_code` (empty for none).
pub fn check(input: &Input, reach: Reach, country_code: &str) -> Result<Checked, Errors> {
    let mut errors = Errors::default();
    let name = input.name.trim();
    if name.is_empty() {
        errors.add(Field::Name, "Enter your name.");
    } else if name.chars().count() > NAME_MAX {
        errors.add(Field::Name, format!("Enter at most {NAME_MAX} characters."));
    } else if let Err(problem) = fields::check("name", name) {
        errors.add(Field::Name, field_words(&problem));
    }

    let email = input.email.trim();
    let email_ok = if email.is_empty() {
        false
    } else if email.chars().count() > EMAIL_MAX {
        errors.add(
            Field::Email,
            format!("An email address has at most {EMAIL_MAX} characters."),
        );
        false
    } else if let Err(problem) = fields::check("email", email) {
        errors.add(Field::Email, field_words(&problem));
        false
    } else {
        true
    };

    let phone = input.phone.trim();
    let mut e164 = None;
    if !phone.is_empty() {
        match to_e164(phone, country_code) {
            Ok(number) => e164 = Some(number),
            Err(e) => errors.add(Field::Phone, phone_words(e.problem)),
        }
    }

    let consent = input.consents();
    if email.is_empty() && phone.is_empty() {
        match (reach.email, reach.texts) {
            (true, true) => {
                errors.add(
                    Field::Email,
                    "Enter your email address or your mobile number (or both), so we can send you the interview link.",
                );
                errors.add(Field::Phone, "Or enter your mobile number here.");
            }
            (false, _) => errors.add(
                Field::Phone,
                "Enter your mobile number: this job's messages come by text.",
            ),
            (true, false) => errors.add(
                Field::Email,
                "Enter your email address: this job's messages come by email.",
            ),
        }
    } else if !reach.email && phone.is_empty() {
        errors.add(
            Field::Phone,
            "Enter your mobile number: this job's messages come by text.",
        );
    } else if !reach.texts && email.is_empty() {
        errors.add(
            Field::Email,
            "Enter your email address: this job's messages come by email.",
        );
    }
    if reach.texts && !phone.is_empty() && !consent {
        let message = if reach.email {
            "Tick this box so we may text you, or clear the mobile number and we will write by email."
        } else {
            "Tick this box: this job's messages come by text."
        };
        errors.add(Field::SmsConsent, message);
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Checked {
        name: name.to_string(),
        email: email_ok.then(|| email.to_string()),
        phone: e164,
        consent,
    })
}

/// The `?source=` word, when it is one: letters, digits, `-` and `_`.
pub fn source_word(raw: &str) -> Option<&str> {
    let word = raw.trim();
    let ok = !word.is_empty()
        && word.len() <= SOURCE_MAX
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(word)
}

/// A field's problem in the applicant's words.
pub fn field_words(problem: &FieldProblem) -> String {
    match problem {
        FieldProblem::ControlCharacter(_) => {
            "Use one line, with no tabs or line breaks.".to_string()
        }
        FieldProblem::Email(why) => {
            format!("Enter one email address, such as ana@example.com ({why}).")
        }
        other => Sentence(other).to_string(),
    }
}

/// A phone number's problem in the applicant's words.
pub fn phone_words(problem: PhoneProblem) -> String {
    match problem {
        PhoneProblem::Empty => "Enter your mobile number.".to_string(),
        PhoneProblem::Character(c) => format!(
            "A phone number has digits, spaces and dashes, and + in front; \u{201c}{c}\u{201d} is none of them."
        ),
        PhoneProblem::Length(n) => format!(
            "This number has {n} digits with its country code; a mobile number has 8 to 15."
        ),
        PhoneProblem::LeadingZero | PhoneProblem::NoCountryCode | PhoneProblem::BadCountryCode => {
            "Start with + and your country code, such as +1 214 555 0100.".to_string()
        }
    }
}

/// Any other problem, as the runtime words it, made a sentence.
struct Sentence<'a>(&'a FieldProblem);

impl fmt::Display for Sentence<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "This value {}.", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Reach = Reach {
        email: true,
        texts: true,
    };
    const TEXTS: Reach = Reach {
        email: false,
        texts: true,
    };
    const EMAIL: Reach = Reach {
        email: true,
        texts: false,
    };

    fn input(name: &str, email: &str, phone: &str, consent: bool) -> Input {
        Input {
            name: name.into(),
            email: email.into(),
            phone: phone.into(),
            sms_consent: consent.then(|| "yes".to_string()),
            source: String::new(),
        }
    }

    fn fields_in_error(errors: &Errors) -> Vec<Field> {
        errors.0.iter().map(|(f, _)| *f).collect()
    }

    #[test]
    fn a_name_and_one_way_to_reach_them() {
        let ok = check(&input(" Ana Ruiz ", "ana@example.com", "", false), BOTH, "").unwrap();
        assert_eq!(ok.name, "Ana Ruiz");
        assert_eq!(ok.email.as_deref(), Some("ana@example.com"));
        assert_eq!(ok.phone, None);
        let ok = check(&input("Ana", "", "(214) 555-0100", true), BOTH, "1").unwrap();
        assert_eq!(ok.phone.as_deref(), Some("+12145550100"));
        assert!(ok.consent);
        let errors = check(&input("", "", "", false), BOTH, "").unwrap_err();
        assert_eq!(
            fields_in_error(&errors),
            [Field::Name, Field::Email, Field::Phone]
        );
    }

    #[test]
    fn each_field_is_checked_as_enrollment_checks_it() {
        let errors = check(&input("Ana", "ana@localhost", "", false), BOTH, "").unwrap_err();
        assert_eq!(fields_in_error(&errors), [Field::Email]);
        assert!(errors.get(Field::Email).unwrap().contains("no dot"));
        let errors = check(&input("Ana\nBcc", "ana@example.com", "", false), BOTH, "").unwrap_err();
        assert_eq!(fields_in_error(&errors), [Field::Name]);
        let errors = check(&input("Ana", "", "214 555 0100", true), BOTH, "").unwrap_err();
        assert_eq!(
            errors.get(Field::Phone),
            Some("Start with + and your country code, such as +1 214 555 0100.")
        );
        let errors = check(&input("Ana", "", "+1 214 555 0100 x12", true), BOTH, "").unwrap_err();
        assert!(errors.get(Field::Phone).unwrap().contains('x'));
    }

    #[test]
    fn nobody_is_texted_without_consent() {
        let errors = check(
            &input("Ana", "ana@example.com", "+12145550100", false),
            BOTH,
            "",
        )
        .unwrap_err();
        assert_eq!(fields_in_error(&errors), [Field::SmsConsent]);
        let errors = check(&input("Ana", "", "+12145550100", false), TEXTS, "").unwrap_err();
        assert_eq!(fields_in_error(&errors), [Field::SmsConsent]);
        // A campaign that only emails keeps the number, with the consent as ticked.
        let ok = check(
            &input("Ana", "ana@example.com", "+12145550100", false),
            EMAIL,
            "",
        )
        .unwrap();
        assert_eq!(ok.phone.as_deref(), Some("+12145550100"));
        assert!(!ok.consent);
    }

    #[test]
    fn the_contact_the_campaign_reaches_people_on_is_required() {
        let errors = check(&input("Ana", "ana@example.com", "", false), TEXTS, "").unwrap_err();
        assert_eq!(fields_in_error(&errors), [Field::Phone]);
        let errors = check(&input("Ana", "", "+12145550100", true), EMAIL, "").unwrap_err();
        assert_eq!(fields_in_error(&errors), [Field::Email]);
    }

    #[test]
    fn a_source_is_one_word() {
        assert_eq!(source_word("instagram-story"), Some("instagram-story"));
        assert_eq!(source_word("Indeed_2026"), Some("Indeed_2026"));
        for bad in ["", "two words", "<b>", "a.b", "ig\tx", &"x".repeat(65)] {
            assert_eq!(source_word(bad), None, "{bad:?}");
        }
    }
}
