//! Checks of the values that read well but cannot work (a link without
//! `{token}`, an admin API open to the network, a zero limit), and each
//! channel's transport's own checks, every one placed at its key in the
//! file.

use toml::de::{DeTable, DeValue};

use super::read::span_of;
use super::Config;
use crate::diag::{Diagnostic, FileId};
use crate::dsl::ast::Span;

/// Every value of `config` (read from `table`) that cannot work.
pub(super) fn validate(file: FileId, table: &DeTable<'_>, config: &Config) -> Vec<Diagnostic> {
    // Every default is valid, so an invalid value was written in the file
    // and has a span; the fallback only guards against a drift.
    let at = |path: &[&str], message: String| {
        let span = value_span(table, path).unwrap_or_default();
        Diagnostic::error(file, span, message)
    };
    let mut diagnostics = Vec::new();
    if !config.interview_url.contains("{token}") {
        diagnostics.push(
            at(
                &["interview_url"],
                "`interview_url` has no `{token}`".to_string(),
            )
            .with_label("every candidate needs their own link")
            .with_help(
                "put `{token}` where the candidate's token goes, \
                     as in \"https://jobs.example.com/i/{token}\"",
            ),
        );
    }
    if let Some(code) = &config.phone_country_code {
        if !crate::channels::phone::is_country_code(code) {
            diagnostics.push(
                at(
                    &["phone_country_code"],
                    format!("`phone_country_code` is `{code}`, not a country calling code"),
                )
                .with_label("1 to 3 digits, the first not 0")
                .with_help("write the code without the trunk prefix, such as \"1\" or \"44\""),
            );
        }
    }
    if !config.admin.listen.ip().is_loopback() {
        let message = format!(
            "`admin.listen` is `{}`, not a loopback address",
            config.admin.listen
        );
        diagnostics.push(
            at(&["admin", "listen"], message)
                .with_label("the admin API is not for the open internet")
                .with_help(
                    "use 127.0.0.1 or [::1], and a reverse proxy with TLS \
                     if others must reach it",
                ),
        );
    }
    if let Some(name) = &config.admin.token_env {
        if name.is_empty() || name.contains(['=', '\0']) {
            let message = "`admin.token_env` is not an environment variable name".to_string();
            diagnostics.push(
                at(&["admin", "token_env"], message)
                    .with_label("not a variable name")
                    .with_help(
                        "name a variable such as \"NUDGE_ADMIN_TOKEN\", \
                         or leave the setting out to use a generated token",
                    ),
            );
        }
    }
    for (name, value) in [
        ("concurrency", config.runtime.concurrency),
        ("batch", config.runtime.batch),
    ] {
        if value == 0 {
            diagnostics.push(
                at(&["runtime", name], format!("`runtime.{name}` is 0"))
                    .with_label("must be at least 1")
                    .with_help("leave it out for the default"),
            );
        }
    }
    if let Some(days) = config.runtime.history_days {
        if !(1..=MAX_HISTORY_DAYS).contains(&days) {
            diagnostics.push(
                at(
                    &["runtime", "history_days"],
                    format!("`runtime.history_days` is {days}"),
                )
                .with_label(format!("must be between 1 and {MAX_HISTORY_DAYS}"))
                .with_help("leave it out to keep history forever"),
            );
        }
    }
    for (channel, transport) in config.channels.entries() {
        for problem in transport.validate(channel) {
            let channel_path = ["channels", channel.name()];
            let mut path: Vec<&str> = channel_path.to_vec();
            path.extend(problem.key.iter().map(String::as_str));
            // A missing setting is shown at the channel's table.
            let span = value_span(table, &path)
                .or_else(|| value_span(table, &channel_path))
                .unwrap_or_default();
            diagnostics.push(
                Diagnostic::error(file, span, problem.message)
                    .with_label(problem.label)
                    .with_help(problem.help),
            );
        }
    }
    diagnostics
}

/// Where the value at `path` in the document is written, if the file sets
/// it.
fn value_span(table: &DeTable<'_>, path: &[&str]) -> Option<Span> {
    let (first, rest) = path.split_first()?;
    let value = table.get(*first)?;
    if rest.is_empty() {
        return Some(span_of(value.span()));
    }
    match value.get_ref() {
        DeValue::Table(inner) => value_span(inner, rest),
        _ => None,
    }
}

/// The longest retention `runtime.history_days` takes (a hundred years).
const MAX_HISTORY_DAYS: u32 = 36_500;
