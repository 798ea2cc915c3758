//! `nudge suppression list|add|remove`: the addresses and numbers nudge
//! never sends to, through the running daemon or the store itself.

use super::{api, connect, emit, print_json, CliError, Status};
use crate::config::Config;
use crate::explain::words::suppression_reason;
use crate::runtime::api::{SuppressRequest, SuppressionView, UnsuppressRequest};
use crate::store::SuppressionReason;

/// `--reason`: one of the reasons' names.
pub fn reason_arg(text: &str) -> Result<SuppressionReason, String> {
    text.parse()
}

/// How an entry reads after its contact: `opted out on 2026-12-03 10:20
/// UTC, candidate c1`.
fn entry_words(entry: &SuppressionView) -> String {
    let when = chrono::DateTime::parse_from_rfc3339(&entry.at)
        .map(|t| t.to_utc().format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| entry.at.clone());
    let mut words = format!("{} on {when}", suppression_reason(entry.reason));
    if let Some(c) = &entry.candidate {
        words.push_str(&format!(", candidate {c}"));
    }
    words
}

/// `nudge suppression list`: a table, or JSON.
pub fn list(config: &Config, json: bool) -> Result<Status, CliError> {
    let mut admin = connect(config)?;
    let entries = admin.suppressions().map_err(api)?;
    if json {
        return print_json(&entries);
    }
    if entries.is_empty() {
        eprintln!("the suppression list is empty");
        return Ok(Status::Ok);
    }
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|e| {
            [
                e.contact.clone(),
                e.kind.name().to_string(),
                e.reason.name().to_string(),
                e.at.clone(),
                e.candidate.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = ["CONTACT", "KIND", "REASON", "SINCE", "CANDIDATE"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    outln!("{}", line(header));
    for row in &rows {
        outln!("{}", line(row.each_ref().map(String::as_str)));
    }
    Ok(Status::Ok)
}

/// `nudge suppression add CONTACT [--reason R]`.
pub fn add(
    config: &Config,
    contact: &str,
    reason: SuppressionReason,
    json: bool,
) -> Result<Status, CliError> {
    let mut admin = connect(config)?;
    let answer = admin
        .suppress(SuppressRequest {
            contact: contact.to_string(),
            reason,
        })
        .map_err(api)?;
    if json {
        return print_json(&answer);
    }
    let entry = &answer.entry;
    if answer.added {
        outln!(
            "suppressed {} ({}, {}): nudge will not send to it",
            entry.contact,
            entry.kind.name(),
            entry_words(entry)
        );
    } else {
        outln!(
            "{} was suppressed already ({}): kept as it was",
            entry.contact,
            entry_words(entry)
        );
    }
    Ok(Status::Ok)
}

/// `nudge suppression remove CONTACT`.
pub fn remove(config: &Config, contact: &str, json: bool) -> Result<Status, CliError> {
    let mut admin = connect(config)?;
    let answer = admin
        .unsuppress(UnsuppressRequest {
            contact: contact.to_string(),
        })
        .map_err(api)?;
    if json {
        return print_json(&answer);
    }
    match &answer.removed {
        Some(entry) => outln!(
            "removed {} from the suppression list (it was {}): nudge sends to it again",
            entry.contact,
            entry_words(entry)
        ),
        None => outln!(
            "{} is not on the suppression list: nothing removed",
            answer.contact
        ),
    }
    Ok(Status::Ok)
}
