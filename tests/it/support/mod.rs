//! Fixtures shared by the integration tests: a scripted HTTP server on
//! loopback ([`http`]), an SMTP server on loopback and an inbox for it
//! ([`smtp`]), an operator's folder and the real binary run in it
//! ([`site`]), a phone-sized browser ([`browser`]), the week of
//! applicants that the runtime and end-to-end tests replay ([`week`]),
//! and an independent DKIM verifier ([`dkim`]). A helper two test
//! modules need goes here, in the file of its concern, not into a copy.

// Each test module uses part of these: the loopback HTTP server, the
// warehouse week, and small helpers every kind of test needs.
#![allow(dead_code)]

pub mod browser;
pub mod dkim;
pub mod http;
pub mod site;
pub mod smtp;
pub mod week;

pub use http::*;

use std::path::Path;
use std::process::Output;

use chrono::{DateTime, Utc};

/// An RFC 3339 instant, in UTC.
pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

/// The repository's root, where `campaigns/` and `templates/` are.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The standard output of `nudge ARGS`, which must have exited 0; a
/// failure shows both streams.
pub fn succeeded(args: &[&str], o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "nudge {args:?}:\n{}{}",
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// Removes the first line if blank, the last line if blank, and the
/// indentation common to every non-blank line.
pub fn unindent(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    if lines.first().is_some_and(|l| l.trim().is_empty()) {
        lines.remove(0);
    }
    if lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for line in lines {
        out.push_str(line.get(indent..).unwrap_or(""));
        out.push('\n');
    }
    out
}

/// The core's settings the tests run with (the starter configuration's
/// link, a company and sender, 15 minutes of catch-up, 12 hours before a
/// send is stale).
pub fn settings() -> nudge::runtime::core::Settings {
    nudge::runtime::core::Settings {
        tracked_link: "https://interview.example/i/{token}".into(),
        company: "Example Co".into(),
        sender: "The recruiting team".into(),
        phone_country_code: String::new(),
        catch_up: chrono::Duration::seconds(900),
        stale_after: chrono::Duration::hours(12),
        backoff: Default::default(),
        communications_off: false,
    }
}
