//! The apply form as HTML: plain markup on the shared style, no script
//! and no external asset. Every value the applicant typed is written back
//! escaped; each error stands under its field, which is marked
//! `aria-invalid` and described by it. The form is `novalidate`: the
//! server's checks are the ones that count, and they are worded for
//! people, so the browser's own bubbles would only say less.

use std::fmt::Write as _;

use super::check::{Errors, Field, Input, Reach};
use crate::server::public::respond::escape;

/// Everything the form shows.
pub struct Form<'a> {
    /// The campaign's name, in the form's address.
    pub campaign: &'a str,
    pub company: &'a str,
    pub reach: Reach,
    pub input: &'a Input,
    /// The `?source=` word carried in a hidden field, if any.
    pub source: Option<&'a str>,
    pub errors: &'a Errors,
    /// A word above the form for a problem that is no field's (the store
    /// could not take the application now).
    pub notice: Option<&'a str>,
}

impl Form<'_> {
    /// The form's HTML, for the card of a [`respond::page`](super::super::respond::page).
    pub fn html(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "<p>Apply to {company}: it takes a minute. We will send you a link \
             to a short interview you can do from your phone.</p>",
            company = escape(self.company),
        );
        if let Some(notice) = self.notice {
            let _ = write!(
                out,
                "<p class=\"error\" role=\"alert\">{}</p>",
                escape(notice)
            );
        } else if !self.errors.is_empty() {
            let what = if self.errors.len() == 1 {
                "the field marked below"
            } else {
                "the fields marked below"
            };
            let _ = write!(
                out,
                "<p class=\"error\" role=\"alert\">Please check {what}.</p>"
            );
        }
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/apply/{}\" novalidate>",
            escape(self.campaign)
        );
        self.text_input(&mut out, Field::Name, "Your name", "text", "name", "");
        let (email_hint, phone_hint) = match (self.reach.email, self.reach.texts) {
            (true, true) => (
                "Your email, your mobile number, or both.",
                "We text this number only if you tick the box below.",
            ),
            (true, false) => ("The interview link comes by email.", ""),
            (false, _) => ("", "The interview link comes by text."),
        };
        self.text_input(
            &mut out,
            Field::Email,
            "Email",
            "email",
            "email",
            email_hint,
        );
        self.text_input(
            &mut out,
            Field::Phone,
            "Mobile number",
            "tel",
            "tel",
            phone_hint,
        );
        self.consent(&mut out);
        if let Some(source) = self.source {
            let _ = write!(
                out,
                "<input type=\"hidden\" name=\"source\" value=\"{}\">",
                escape(source)
            );
        }
        out.push_str("<button type=\"submit\">Apply</button></form>");
        out
    }

    fn text_input(
        &self,
        out: &mut String,
        field: Field,
        label: &str,
        kind: &str,
        autocomplete: &str,
        hint: &str,
    ) {
        let id = field.id();
        let value = match field {
            Field::Name => &self.input.name,
            Field::Email => &self.input.email,
            Field::Phone => &self.input.phone,
            Field::SmsConsent => "",
        };
        let _ = write!(out, "<label for=\"{id}\">{label}</label>");
        let mut described = Vec::new();
        if !hint.is_empty() {
            let _ = write!(out, "<p class=\"hint\" id=\"{id}-hint\">{hint}</p>");
            described.push(format!("{id}-hint"));
        }
        let error = self.errors.get(field);
        if error.is_some() {
            described.push(format!("{id}-error"));
        }
        let _ = write!(
            out,
            "<input id=\"{id}\" name=\"{id}\" type=\"{kind}\" autocomplete=\"{autocomplete}\" value=\"{}\"",
            escape(value)
        );
        if field == Field::Name {
            out.push_str(" autocapitalize=\"words\"");
        }
        if error.is_some() {
            out.push_str(" aria-invalid=\"true\"");
        }
        if !described.is_empty() {
            let _ = write!(out, " aria-describedby=\"{}\"", described.join(" "));
        }
        out.push('>');
        if let Some(error) = error {
            let _ = write!(
                out,
                "<p class=\"error\" id=\"{id}-error\">{}</p>",
                escape(error)
            );
        }
    }

    fn consent(&self, out: &mut String) {
        let id = Field::SmsConsent.id();
        let error = self.errors.get(Field::SmsConsent);
        let _ = write!(
            out,
            "<label class=\"check\" for=\"{id}\"><input type=\"checkbox\" id=\"{id}\" name=\"{id}\" value=\"yes\""
        );
        if self.input.consents() {
            out.push_str(" checked");
        }
        if error.is_some() {
            let _ = write!(
                out,
                " aria-invalid=\"true\" aria-describedby=\"{id}-error\""
            );
        }
        let _ = write!(
            out,
            "><span>Text me about this application at my mobile number. \
             Message and data rates may apply; reply STOP to stop.</span></label>"
        );
        if let Some(error) = error {
            let _ = write!(
                out,
                "<p class=\"error\" id=\"{id}-error\">{}</p>",
                escape(error)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Reach = Reach {
        email: true,
        texts: true,
    };

    #[test]
    fn input_is_kept_escaped_and_errors_stand_by_their_field() {
        let input = Input {
            name: "<script>alert(1)</script>".into(),
            email: "a\"b@x".into(),
            phone: String::new(),
            sms_consent: Some("yes".into()),
            source: String::new(),
        };
        let errors = Errors::one(Field::Email, "Enter one <email>.");
        let html = Form {
            campaign: "warehouse_associate",
            company: "R&D Co",
            reach: BOTH,
            input: &input,
            source: Some("instagram-story"),
            errors: &errors,
            notice: None,
        }
        .html();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("value=\"&lt;script&gt;alert(1)&lt;/script&gt;\""));
        assert!(html.contains("value=\"a&quot;b@x\" aria-invalid=\"true\" aria-describedby=\"email-hint email-error\">"));
        assert!(html.contains("<p class=\"error\" id=\"email-error\">Enter one &lt;email&gt;.</p>"));
        assert!(html.contains("R&amp;D Co"));
        assert!(html.contains("name=\"sms_consent\" value=\"yes\" checked>"));
        assert!(html.contains("<input type=\"hidden\" name=\"source\" value=\"instagram-story\">"));
        assert!(!html.contains("id=\"name\" name=\"name\" type=\"text\" autocomplete=\"name\" value=\"&lt;script&gt;alert(1)&lt;/script&gt;\" autocapitalize=\"words\" aria-invalid"));
    }
}
