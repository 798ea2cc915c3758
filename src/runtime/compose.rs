//! Composing a message from its template: the address, the variables a
//! template sees and the rendering (text, and HTML for email, which gets
//! the open pixel, `public_url/o/TOKEN.gif`, before its `</body>`). The core
//! composes every send with it, and `nudge render` composes its preview with
//! it too, so what a recruiter previews is what would be sent.

use std::collections::BTreeMap;

use chrono_tz::Tz;

use super::core::Settings;
use crate::engine::machine::Machine;
use crate::engine::{Candidate, Channel, Instant};
use crate::templates::{
    beside_tracked, format_deadline, time_left, CampaignVars, Rendered, Templates, Vars,
};

/// What a message is made from.
pub struct Draft<'a> {
    pub machine: &'a Machine,
    pub candidate: &'a Candidate,
    /// The candidate's zone, for the deadline's wording.
    pub zone: Tz,
    /// The template's name, variants resolved (`invite-warm`).
    pub template: &'a str,
    pub channel: Channel,
    /// The candidate's tracked link.
    pub link: String,
    /// When the candidate's deadline passes, if the campaign has one.
    pub deadline: Option<Instant>,
    /// Variant name per experiment.
    pub variants: &'a BTreeMap<String, String>,
    /// When the message goes out (for `time_left`).
    pub at: Instant,
}

/// A composed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    /// The address on the draft's channel (empty for webhooks, or when the
    /// candidate has none).
    pub to: String,
    pub subject: Option<String>,
    pub body: String,
    pub html: Option<String>,
    pub unsubscribe_url: Option<String>,
}

impl Draft<'_> {
    /// The variables its template sees.
    pub fn vars(&self, settings: &Settings) -> Vars {
        self.vars_with(settings, self.unsubscribe_link())
    }

    fn vars_with(&self, settings: &Settings, unsubscribe_link: Option<String>) -> Vars {
        let machine = self.machine;
        Vars {
            candidate: Vars::candidate_fields(self.candidate),
            campaign: CampaignVars {
                name: machine.name.clone(),
                title: machine
                    .title
                    .clone()
                    .unwrap_or_else(|| machine.name.clone()),
            },
            link: self.link.clone(),
            deadline: self.deadline.map(|d| format_deadline(d, self.zone)),
            time_left: self.deadline.map(|d| time_left(self.at, d)),
            variant: self.variants.clone(),
            sender: settings.sender.clone(),
            company: settings.company.clone(),
            unsubscribe_link,
        }
    }

    /// The candidate's unsubscribe page (`unsubscribe_link`, on every
    /// channel): `public_url/u/TOKEN`, beside the tracked link.
    pub fn unsubscribe_link(&self) -> Option<String> {
        beside_tracked(&self.link, "u", "")
    }

    /// The unsubscribe address an email's `List-Unsubscribe` header
    /// carries (RFC 8058 one-click POSTs to it): email only.
    pub fn unsubscribe_url(&self) -> Option<String> {
        (self.channel == Channel::Email)
            .then(|| self.unsubscribe_link())
            .flatten()
    }

    /// The open pixel's address, `public_url/o/TOKEN.gif`.
    pub fn open_pixel(&self) -> Option<String> {
        beside_tracked(&self.link, "o", ".gif")
    }

    /// The candidate's address on the draft's channel.
    pub fn to(&self) -> String {
        let field = match self.channel {
            Channel::Email => "email",
            Channel::Sms | Channel::Whatsapp => "phone",
            Channel::Webhook => return String::new(),
        };
        self.candidate.field(field).unwrap_or_default().to_string()
    }

    /// Renders the message; the error is the template's, in words. Without
    /// a templates folder the body says so instead.
    pub fn compose(
        &self,
        templates: Option<&Templates>,
        settings: &Settings,
    ) -> Result<Composed, String> {
        // Built once: the templates' variable and the email's header.
        let unsubscribe_link = self.unsubscribe_link();
        let unsubscribe_url = (self.channel == Channel::Email)
            .then(|| unsubscribe_link.clone())
            .flatten();
        let (rendered, html) = match templates {
            Some(t) => {
                let vars = self.vars_with(settings, unsubscribe_link);
                let language = self.candidate.field("language");
                let rendered = t
                    .render(self.template, self.channel, language, &vars)
                    .map_err(|e| e.to_string())?;
                let html = match self.channel {
                    Channel::Email => t
                        .render_html(self.template, language, &vars)
                        .map_err(|e| e.to_string())?,
                    _ => None,
                };
                (rendered, html)
            }
            None => (
                Rendered {
                    subject: None,
                    body: format!(
                        "[template `{}`: no templates folder configured]",
                        self.template
                    ),
                },
                None,
            ),
        };
        // The pixel's address only for a message that has an HTML part.
        let html = html.map(|h| match self.open_pixel() {
            Some(pixel) => with_pixel(h, &pixel),
            None => h,
        });
        Ok(Composed {
            to: self.to(),
            subject: rendered.subject,
            body: rendered.body,
            html,
            unsubscribe_url,
        })
    }
}

/// `html` with the open pixel (an invisible 1x1 image at `pixel`) just
/// before its last `</body>`, or at its end when it has none.
pub fn with_pixel(mut html: String, pixel: &str) -> String {
    let src = pixel.replace('&', "&amp;").replace('"', "&quot;");
    let img = format!(
        "<img src=\"{src}\" width=\"1\" height=\"1\" alt=\"\" \
         style=\"display:block;width:1px;height:1px;border:0\">"
    );
    match html.to_ascii_lowercase().rfind("</body>") {
        Some(at) => html.insert_str(at, &img),
        None => html.push_str(&img),
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_beside_a_tracked_link_share_its_base_and_token() {
        let link = "https://jobs.example.com/i/c7-00ff";
        assert_eq!(
            beside_tracked(link, "u", "").as_deref(),
            Some("https://jobs.example.com/u/c7-00ff")
        );
        assert_eq!(
            beside_tracked(link, "o", ".gif").as_deref(),
            Some("https://jobs.example.com/o/c7-00ff.gif")
        );
        assert_eq!(beside_tracked("", "u", ""), None);
        // Under a path prefix, and never from a link of another shape.
        assert_eq!(
            beside_tracked("http://h/jobs/i/c1-ab", "u", "").as_deref(),
            Some("http://h/jobs/u/c1-ab")
        );
        for other in [
            "/i/",
            "i/c1",
            "http://h/i/c1/",
            "http://h/x/c1",
            "http://h/ii/c1",
        ] {
            assert_eq!(beside_tracked(other, "u", ""), None, "{other}");
        }
        assert_eq!(beside_tracked("/i/c1", "u", "").as_deref(), Some("/u/c1"));
    }

    #[test]
    fn the_pixel_goes_before_the_body_closes_or_at_the_end() {
        let pixel = "https://x.example/o/t.gif";
        let img = "<img src=\"https://x.example/o/t.gif\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;width:1px;height:1px;border:0\">";
        assert_eq!(
            with_pixel("<html><BODY><p>Hi</p></BODY></html>".into(), pixel),
            format!("<html><BODY><p>Hi</p>{img}</BODY></html>")
        );
        assert_eq!(
            with_pixel("<p>Hi</p>".into(), pixel),
            format!("<p>Hi</p>{img}")
        );
    }
}
