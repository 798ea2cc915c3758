//! Checks of the values that read well but cannot work (a link without
//! `{token}`, an admin API open to the network, a number out of its
//! bounds), and each channel's transport's own checks, every one placed at
//! its key in the file.

use toml::de::{DeTable, DeValue};

use super::read::span_of;
use super::{Config, RateConfig, RuntimeConfig};
use crate::channels::SettingProblem;
use crate::diag::{Diagnostic, FileId};
use crate::dsl::ast::Span;
use crate::engine::Channel;

/// Every value of `config` (read from `table`) that cannot work.
pub(super) fn validate(file: FileId, table: &DeTable<'_>, config: &Config) -> Vec<Diagnostic> {
    // Every default is valid, so an invalid value was written in the file
    // and has a span; the fallback only guards against a drift.
    let at = |path: &[&str], message: String| {
        let span = value_span(table, path).unwrap_or_default();
        Diagnostic::error(file, span, message)
    };
    let mut diagnostics = Vec::new();
    for (name, source) in &config.ats {
        if let Some((key, why)) = super::source_problem(name, source) {
            // At the key when the table has it, else at the table.
            let mut path = vec!["ats", name.as_str(), key];
            if key.is_empty() || value_span(table, &path).is_none() {
                path.pop();
            }
            diagnostics.push(at(&path, format!("`[ats.{name}]`: {why}")));
        }
    }
    if let Some((key, why)) = config.decided.problem() {
        diagnostics.push(at(&["decided", key], why));
    }
    if let Some(url) = &config.interview_url {
        if let Some(why) = crate::config::link_pattern_problem(url) {
            diagnostics.push(
                at(&["interview_url"], format!("`interview_url` {why}"))
                    .with_label("candidates are sent here from their tracked link")
                    .with_help(
                        "give the interview's address, with `{token}`, `{candidate}` or \
                         `{campaign}` where they go, as in \"https://interview.example.com/start?t={token}\"",
                    ),
            );
        }
    }
    if let Some(why) = config.server.public_url_problem() {
        diagnostics.push(
            at(&["server", "public_url"], format!("`public_url` {why}"))
                .with_label("the tracked link in every message starts with this")
                .with_help(
                    "write the address people reach nudge at, as in \"https://jobs.example.com\"",
                ),
        );
    }
    if !super::server::TIMEOUT_SECS.contains(&config.server.timeout_secs) {
        diagnostics.push(
            at(
                &["server", "timeout_secs"],
                format!(
                    "`timeout_secs` is {}; it must be from {} to {}",
                    config.server.timeout_secs,
                    super::server::TIMEOUT_SECS.start(),
                    super::server::TIMEOUT_SECS.end()
                ),
            )
            .with_label("out of range"),
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
    if config.admin.listen.port() == 0 {
        diagnostics.push(
            at(
                &["admin", "listen"],
                format!("`admin.listen` is `{}`, with port 0", config.admin.listen),
            )
            .with_label("port 0 is one chosen at random, which the CLI cannot find")
            .with_help("give a port, such as 127.0.0.1:7777"),
        );
    }
    let mut problems = numbers(config);
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
            problems.push((vec!["channels", channel.name()], problem));
        }
    }
    for (table_path, problem) in problems {
        let mut path = table_path.clone();
        path.extend(problem.key.iter().map(String::as_str));
        // A missing setting is shown at its table.
        let span = value_span(table, &path)
            .or_else(|| value_span(table, &table_path))
            .unwrap_or_default();
        diagnostics.push(
            Diagnostic::error(file, span, problem.message)
                .with_label(problem.label)
                .with_help(problem.help),
        );
    }
    let runtime = &config.runtime;
    if runtime.retry_cap_secs < runtime.retry_base_secs
        && RuntimeConfig::RETRY_BASE_SECS.contains(runtime.retry_base_secs)
    {
        let message = format!(
            "`runtime.retry_cap_secs` is {}, below `runtime.retry_base_secs` ({})",
            runtime.retry_cap_secs, runtime.retry_base_secs
        );
        // Shown where the file sets either.
        let span = value_span(table, &["runtime", "retry_cap_secs"])
            .or_else(|| value_span(table, &["runtime", "retry_base_secs"]))
            .unwrap_or_default();
        diagnostics.push(
            Diagnostic::error(file, span, message)
                .with_label("the longest wait is shorter than the first")
                .with_help("raise `retry_cap_secs` or lower `retry_base_secs`"),
        );
    }
    for problem in config.webhooks.problems() {
        let mut path = vec!["webhooks"];
        path.extend(problem.key.iter().map(String::as_str));
        let span = value_span(table, &path).unwrap_or_default();
        diagnostics.push(
            Diagnostic::error(file, span, problem.message)
                .with_label(problem.label)
                .with_help(problem.help),
        );
    }
    if let Some(digest) = &config.digest {
        for problem in digest.problems() {
            let mut path = vec!["digest"];
            path.extend(problem.key.iter().map(String::as_str));
            let span = value_span(table, &path)
                .or_else(|| value_span(table, &["digest"]))
                .unwrap_or_default();
            diagnostics.push(
                Diagnostic::error(file, span, problem.message)
                    .with_label(problem.label)
                    .with_help(problem.help),
            );
        }
    }
    for problem in config.report.problems() {
        let mut path = vec!["report"];
        path.extend(problem.key.iter().map(String::as_str));
        let span = value_span(table, &path).unwrap_or_default();
        diagnostics.push(
            Diagnostic::error(file, span, problem.message)
                .with_label(problem.label)
                .with_help(problem.help),
        );
    }
    for problem in config.dashboard.problems() {
        let mut path = vec!["dashboard"];
        path.extend(problem.key.iter().map(String::as_str));
        let span = value_span(table, &path)
            .or_else(|| value_span(table, &["dashboard"]))
            .unwrap_or_default();
        diagnostics.push(
            Diagnostic::error(file, span, problem.message)
                .with_label(problem.label)
                .with_help(problem.help),
        );
    }
    diagnostics
}

/// The numeric settings outside the channels' tables that are out of
/// bounds: each problem with the path of its table.
fn numbers(config: &Config) -> Vec<(Vec<&'static str>, SettingProblem)> {
    let count = |value: usize| u64::try_from(value).unwrap_or(u64::MAX);
    let (now, default) = (&config.runtime, RuntimeConfig::default());
    let runtime = [
        (
            "concurrency",
            RuntimeConfig::CONCURRENCY,
            count(now.concurrency),
            count(default.concurrency),
        ),
        (
            "batch",
            RuntimeConfig::BATCH,
            count(now.batch),
            count(default.batch),
        ),
        (
            "catch_up_secs",
            RuntimeConfig::CATCH_UP_SECS,
            now.catch_up_secs,
            default.catch_up_secs,
        ),
        (
            "max_attempts",
            RuntimeConfig::MAX_ATTEMPTS,
            u64::from(now.max_attempts),
            u64::from(default.max_attempts),
        ),
        (
            "retry_base_secs",
            RuntimeConfig::RETRY_BASE_SECS,
            now.retry_base_secs,
            default.retry_base_secs,
        ),
        (
            "retry_cap_secs",
            RuntimeConfig::RETRY_CAP_SECS,
            now.retry_cap_secs,
            default.retry_cap_secs,
        ),
        (
            "stale_after_secs",
            RuntimeConfig::STALE_AFTER_SECS,
            now.stale_after_secs,
            default.stale_after_secs,
        ),
    ];
    let mut out = Vec::new();
    for (key, bounds, value, default) in runtime {
        let problem = bounds.check("runtime", key, value, &format!("the default, {default}"));
        out.extend(problem.map(|p| (vec!["runtime"], p)));
    }
    let rates = &config.rates;
    for (channel, rate) in [
        (Channel::Email, rates.email),
        (Channel::Sms, rates.sms),
        (Channel::Whatsapp, rates.whatsapp),
        (Channel::Webhook, rates.webhook),
    ] {
        let table = format!("rates.{channel}");
        for (key, value, bounds) in [
            ("per_second", rate.per_second, RateConfig::PER_SECOND),
            ("per_minute", rate.per_minute, RateConfig::PER_MINUTE),
        ] {
            let Some(value) = value else { continue };
            let problem = bounds.check(&table, key, u64::from(value), "no limit");
            out.extend(problem.map(|p| (vec!["rates", channel.name()], p)));
        }
    }
    out
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
