//! Reading `nudge.toml`'s well-formed TOML into a [`Config`], reporting
//! every problem of shape (unknown key, wrong type, missing setting) as a
//! diagnostic at its key path.
//!
//! Serde stops at the first error, so each error is reported and the entry
//! it names taken out of the document, then the rest is read again, until
//! it reads. The key path comes from `serde_path_to_error`, the position
//! from toml's span (or, where toml gives none, from the entry at the key
//! path), and the words are serde's own. A key taken out falls back to its
//! default, so what remains still gets its values checked.
//!
//! `[channels]` is read channel by channel: the `transport` key of each
//! channel's table says which transport's settings the other keys are
//! (see [`TransportKind`]), so one bad channel never hides another.

use std::marker::PhantomData;
use std::ops::Range;

use serde::de::DeserializeSeed;
use serde_path_to_error::{Segment, Track};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{ChannelsConfig, Config};
use crate::channels::{Transport, TransportKind};
use crate::diag::{Diagnostic, FileId};
use crate::dsl::ast::Span;
use crate::engine::Channel;

pub(super) fn span_of(range: Range<usize>) -> Span {
    Span::new(range.start, range.end)
}

/// A TOML syntax error.
pub(super) fn syntax_diagnostic(file: FileId, text: &str, error: &toml::de::Error) -> Diagnostic {
    let span = error
        .span()
        .map_or(Span::new(text.len(), text.len()), span_of);
    Diagnostic::error(file, span, format!("invalid TOML: {}", error.message()))
}

/// The whole configuration, with every entry that does not read reported
/// and left at its default.
pub(super) fn config(
    file: FileId,
    root: &Spanned<DeTable<'_>>,
    out: &mut Vec<Diagnostic>,
) -> Config {
    let mut rest = root.clone();
    let channels = rest.get_mut().remove_entry("channels");
    let mut config = read(file, rest, &[], PhantomData::<Config>, out).unwrap_or_default();
    if let Some((_, value)) = channels {
        config.channels = self::channels(file, &value, out);
    }
    config
}

/// The `[channels]` table, each channel read on its own.
fn channels(
    file: FileId,
    value: &Spanned<DeValue<'_>>,
    out: &mut Vec<Diagnostic>,
) -> ChannelsConfig {
    let mut channels = ChannelsConfig::default();
    let DeValue::Table(table) = value.get_ref() else {
        out.push(not_a_table(file, "channels", value));
        return channels;
    };
    for (name, value) in table.iter() {
        let Some(channel) = Channel::from_name(name.get_ref()) else {
            let names = Channel::ALL.map(Channel::name);
            let unknown = name.get_ref().as_ref();
            out.push(
                Diagnostic::error(
                    file,
                    span_of(name.span()),
                    format!("unknown channel `channels.{unknown}`"),
                )
                .with_label("not a channel")
                .with_help(match closest(unknown, &names) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("expected one of {}", list(&names)),
                }),
            );
            continue;
        };
        if let Some(transport) = self::transport(file, channel, value, out) {
            *channels.get_mut(channel) = transport;
        }
    }
    channels
}

/// One channel's table: its `transport`, then that transport's settings.
fn transport(
    file: FileId,
    channel: Channel,
    value: &Spanned<DeValue<'_>>,
    out: &mut Vec<Diagnostic>,
) -> Option<Transport> {
    let path = format!("channels.{channel}");
    let DeValue::Table(table) = value.get_ref() else {
        out.push(not_a_table(file, &path, value));
        return None;
    };
    let names = TransportKind::ALL.map(TransportKind::name);
    let mut settings = table.clone();
    let Some((_, word)) = settings.remove_entry("transport") else {
        out.push(
            Diagnostic::error(
                file,
                span_of(value.span()),
                format!("`{path}` has no `transport`"),
            )
            .with_label("no `transport` here")
            .with_help(format!("add `transport =` one of {}", list(&names))),
        );
        return None;
    };
    let kind = match word.get_ref() {
        DeValue::String(name) => TransportKind::from_name(name),
        _ => None,
    };
    let Some(kind) = kind else {
        let written = match word.get_ref() {
            DeValue::String(name) => format!("unknown transport `{name}` for `{path}`"),
            _ => format!("`{path}.transport` is not a transport name"),
        };
        let help = match word.get_ref() {
            DeValue::String(name) => closest(name, &names).map(|b| format!("did you mean `{b}`?")),
            _ => None,
        };
        out.push(
            Diagnostic::error(file, span_of(word.span()), written)
                .with_label("no such transport")
                .with_help(help.unwrap_or_else(|| format!("expected one of {}", list(&names)))),
        );
        return None;
    };
    let prefix = ["channels".to_string(), channel.name().to_string()];
    read(
        file,
        Spanned::new(value.span(), settings),
        &prefix,
        kind,
        out,
    )
}

/// `table`, at `prefix` in the document, read with `seed`. Every error is
/// reported and the entry it names removed until the rest reads; `None`
/// when an error names the table itself (a setting it must have is
/// missing), which no removal inside it can mend.
fn read<'i, S>(
    file: FileId,
    mut table: Spanned<DeTable<'i>>,
    prefix: &[String],
    seed: S,
    out: &mut Vec<Diagnostic>,
) -> Option<S::Value>
where
    S: DeserializeSeed<'i> + Copy,
{
    // Entries taken out so far: an error at a table one was taken from is
    // its consequence (a required setting that is now missing), already
    // reported.
    let mut removed: Vec<Vec<String>> = Vec::new();
    loop {
        let mut track = Track::new();
        let de = toml::de::Deserializer::from(table.clone());
        let error = match seed.deserialize(serde_path_to_error::Deserializer::new(de, &mut track)) {
            Ok(value) => return Some(value),
            Err(error) => error,
        };
        let path = keys(&track.path());
        let consequence = removed
            .iter()
            .any(|r| r.len() > path.len() && r.starts_with(&path));
        let at = existing(table.get_ref(), &path);
        if !consequence {
            let mut full = prefix.to_vec();
            full.extend(path.iter().cloned());
            let span = error
                .span()
                .map(span_of)
                .or_else(|| entry_span(table.get_ref(), &at))
                .unwrap_or_else(|| span_of(table.span()));
            let diagnostic = match unknown_word(error.message()) {
                Some((word, names)) if !full.is_empty() => {
                    let help = match closest(word, &names) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!("write {}", list(&names)),
                    };
                    Diagnostic::error(
                        file,
                        span,
                        format!(
                            "`{}` is `{word}`; it must be {}",
                            full.join("."),
                            list(&names)
                        ),
                    )
                    .with_label(format!("not {}", list(&names)))
                    .with_help(help)
                }
                _ if full.is_empty() => Diagnostic::error(file, span, error.message()),
                _ => Diagnostic::error(
                    file,
                    span,
                    format!("`{}`: {}", full.join("."), error.message()),
                ),
            };
            out.push(diagnostic);
        }
        if at.is_empty() || !remove(table.get_mut(), &at) {
            return None;
        }
        removed.push(at);
    }
}

/// serde's words for a setting of a few fixed words given another
/// ("unknown variant `maybe`, expected `on` or `off`"): the word written
/// and the words it takes. Read once here, so every such setting
/// (`communications`, `security`, `dkim.algorithm`, ...) gets the same
/// message naming its key and its words; a unit test holds serde to the
/// wording.
fn unknown_word(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown variant `")?;
    let (word, expected) = rest.split_once("`, expected ")?;
    let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    (!names.is_empty()).then_some((word, names))
}

/// The map keys of a serde path (`runtime.concurrency`).
fn keys(path: &serde_path_to_error::Path) -> Vec<String> {
    let mut keys = Vec::new();
    for segment in path.iter() {
        match segment {
            Segment::Map { key } => keys.push(key.clone()),
            Segment::Enum { .. } => {}
            Segment::Seq { .. } | Segment::Unknown => break,
        }
    }
    keys
}

/// The longest start of `path` that is an entry of `table`.
fn existing(table: &DeTable<'_>, path: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let mut current = Some(table);
    for key in path {
        let Some(value) = current.and_then(|t| t.get(key.as_str())) else {
            break;
        };
        found.push(key.clone());
        current = match value.get_ref() {
            DeValue::Table(inner) => Some(inner),
            _ => None,
        };
    }
    found
}

/// Where the value of the entry at `path` is written.
fn entry_span(table: &DeTable<'_>, path: &[String]) -> Option<Span> {
    let (last, init) = path.split_last()?;
    let mut current = table;
    for key in init {
        match current.get(key.as_str())?.get_ref() {
            DeValue::Table(inner) => current = inner,
            _ => return None,
        }
    }
    current.get(last.as_str()).map(|v| span_of(v.span()))
}

/// Takes the entry at `path` out of `table`; whether there was one.
fn remove(table: &mut DeTable<'_>, path: &[String]) -> bool {
    let Some((last, init)) = path.split_last() else {
        return false;
    };
    let mut current = table;
    for key in init {
        match current.get_mut(key.as_str()).map(Spanned::get_mut) {
            Some(DeValue::Table(inner)) => current = inner,
            _ => return false,
        }
    }
    current.remove(last.as_str()).is_some()
}

fn not_a_table(file: FileId, path: &str, value: &Spanned<DeValue<'_>>) -> Diagnostic {
    Diagnostic::error(
        file,
        span_of(value.span()),
        format!("`{path}` is not a table"),
    )
    .with_label(format!("found {}", value.get_ref().type_str()))
    .with_help(format!("write it as [{path}]"))
}

/// The candidate most like `word`, if any is close enough to be a typo.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `a`, `b` or `c`.
fn list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_words_for_an_unknown_word() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum Two {
            On,
            Off,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum Three {
            Plain,
            Starttls,
            Tls,
        }
        let message = |e: serde_json::Error| {
            let text = e.to_string();
            text.split(" at line").next().unwrap().to_string()
        };
        let two = message(serde_json::from_str::<Two>("\"maybe\"").unwrap_err());
        assert_eq!(unknown_word(&two), Some(("maybe", vec!["on", "off"])));
        let three = message(serde_json::from_str::<Three>("\"tsl\"").unwrap_err());
        assert_eq!(
            unknown_word(&three),
            Some(("tsl", vec!["plain", "starttls", "tls"]))
        );
        assert_eq!(unknown_word("unknown field `x`, expected `y`"), None);
    }
}
