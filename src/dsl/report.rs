//! Rendering diagnostics: like rustc for people (through codespan-reporting,
//! ASCII only), and as one JSON object per line for editors and CI.
//!
//! ```text
//! error: unknown state `remnder`
//!   --> campaigns/warehouse.nudge:12:18
//!    |
//! 12 |     after 24h -> remnder
//!    |                  ^^^^^^^ no such state
//!    |
//!    = help: did you mean `reminder`?
//! ```

use codespan_reporting::diagnostic::{Diagnostic as Rendered, Label};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::termcolor::{Buffer, ColorChoice, StandardStream};
use codespan_reporting::term::{self, Chars, Config};
use serde_json::json;
use std::io::Write;

use crate::diag::{Diagnostic, Severity, Sources};
use crate::dsl::check::{CheckReport, TemplateCheck};

/// Renders every diagnostic as rustc would, each followed by a blank line.
///
/// `color` adds ANSI colors; pass `false` in tests and when stdout is not
/// a terminal (see [`use_color`]).
pub fn render(sources: &Sources, diags: &[Diagnostic], color: bool) -> String {
    let mut files = SimpleFiles::new();
    for file in &sources.files {
        files.add(file.name.as_str(), file.text.as_str());
    }
    let config = config();
    let mut buffer = if color {
        Buffer::ansi()
    } else {
        Buffer::no_color()
    };
    for diag in diags {
        // Rendering into memory fails only on a span outside its file, which
        // would be a bug in a phase; show the message rather than nothing.
        if term::emit(&mut buffer, &config, &files, &to_codespan(diag)).is_err() {
            let head = format!("{}: {}\n\n", severity_word(diag.severity), diag.message);
            let _ = buffer.write_all(head.as_bytes());
        }
    }
    rustc_arrow(&String::from_utf8_lossy(buffer.as_slice()))
}

/// codespan indents `-->` one column further than rustc does (it pads the
/// arrow like the `|` gutter); move it back so `-->` starts under the
/// space before `|`, as in rustc. No source line can start with `-->`
/// after spaces: source lines start with their number or with `|`.
fn rustc_arrow(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.starts_with(' ') && skip_escapes(line.trim_start_matches(' ')).starts_with("-->") {
            out.push_str(&line[1..]);
        } else {
            out.push_str(line);
        }
    }
    out
}

/// `text` without the ANSI color sequences (`ESC [ ... m`) it starts with.
fn skip_escapes(mut text: &str) -> &str {
    while let Some(rest) = text.strip_prefix("\x1b[") {
        match rest.find('m') {
            Some(end) => text = &rest[end + 1..],
            None => break,
        }
    }
    text
}

/// Renders every diagnostic as one JSON object per line:
/// `severity`, `file`, `line`, `column`, `end_line`, `end_column` (1-based,
/// columns in characters, the end exclusive), `message`, `label`, `help`
/// (`null` when absent) and `secondary` (a list of `{line, column,
/// end_line, end_column, label}` in the same file).
pub fn render_json(sources: &Sources, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for diag in diags {
        let (line, column) = sources.line_col(diag.file, diag.span.start);
        let (end_line, end_column) = sources.line_col(diag.file, diag.span.end);
        let secondary: Vec<_> = diag
            .secondary
            .iter()
            .map(|(span, label)| {
                let (line, column) = sources.line_col(diag.file, span.start);
                let (end_line, end_column) = sources.line_col(diag.file, span.end);
                json!({
                    "line": line,
                    "column": column,
                    "end_line": end_line,
                    "end_column": end_column,
                    "label": label,
                })
            })
            .collect();
        let value = json!({
            "severity": severity_word(diag.severity),
            "file": sources.get(diag.file).name,
            "line": line,
            "column": column,
            "end_line": end_line,
            "end_column": end_column,
            "message": diag.message,
            "label": diag.label,
            "help": diag.help,
            "secondary": secondary,
        });
        out.push_str(&value.to_string());
        out.push('\n');
    }
    out
}

/// The closing line of a check, cargo style:
///
/// - `error: could not check `warehouse.nudge` due to 2 errors; 1 warning emitted`
/// - `warning: `warehouse.nudge` checked with 1 warning`
/// - `checked `warehouse.nudge`: no problems found`
///
/// The subject is the file name when one file was loaded, else "3 files".
pub fn summary(sources: &Sources, diags: &[Diagnostic]) -> String {
    let subject = match sources.files.as_slice() {
        [one] => format!("`{}`", one.name),
        files => count(files.len(), "file", "files"),
    };
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    match (errors, warnings) {
        (0, 0) => format!("checked {subject}: no problems found"),
        (0, w) => format!(
            "warning: {subject} checked with {}",
            count(w, "warning", "warnings")
        ),
        (e, 0) => format!(
            "error: could not check {subject} due to {}",
            count(e, "error", "errors")
        ),
        (e, w) => format!(
            "error: could not check {subject} due to {}; {} emitted",
            count(e, "error", "errors"),
            count(w, "warning", "warnings")
        ),
    }
}

/// The whole output of `nudge check` for people: the diagnostics, a note
/// when template checks were skipped, and the [`summary`] line.
pub fn render_report(sources: &Sources, report: &CheckReport, color: bool) -> String {
    let mut out = render(sources, &report.diagnostics, color);
    if let TemplateCheck::Skipped { .. } = report.templates {
        out.push_str(&format!("note: {}\n", report.templates));
    }
    out.push_str(&summary(sources, &report.diagnostics));
    out.push('\n');
    out
}

/// The whole output of `nudge check --json`: the diagnostics, then, when
/// template checks were skipped, one line `{"severity":"note",
/// "message":...}` with no position.
pub fn render_report_json(sources: &Sources, report: &CheckReport) -> String {
    let mut out = render_json(sources, &report.diagnostics);
    if let TemplateCheck::Skipped { .. } = report.templates {
        let note = json!({ "severity": "note", "message": report.templates.to_string() });
        out.push_str(&note.to_string());
        out.push('\n');
    }
    out
}

/// Whether to color output written to stdout: only on a terminal, and not
/// when `NO_COLOR` is set.
pub fn use_color() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// A stream for writing colored output to stderr, honouring [`use_color`]'s
/// rules for stderr.
pub fn stderr_stream() -> StandardStream {
    use std::io::IsTerminal;
    let choice = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        ColorChoice::Auto
    } else {
        ColorChoice::Never
    };
    StandardStream::stderr(choice)
}

fn config() -> Config {
    Config {
        chars: Chars::ascii(),
        ..Config::default()
    }
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn to_codespan(diag: &Diagnostic) -> Rendered<usize> {
    let rendered = match diag.severity {
        Severity::Error => Rendered::error(),
        Severity::Warning => Rendered::warning(),
    };
    let mut primary = Label::primary(diag.file, diag.span.start..diag.span.end);
    if let Some(label) = &diag.label {
        primary = primary.with_message(label);
    }
    let mut labels = vec![primary];
    labels.extend(
        diag.secondary.iter().map(|(span, note)| {
            Label::secondary(diag.file, span.start..span.end).with_message(note)
        }),
    );
    rendered
        .with_message(&diag.message)
        .with_labels(labels)
        .with_notes(diag.help.iter().map(|h| format!("help: {h}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::ast::Span;

    fn sources() -> Sources {
        let mut sources = Sources::default();
        sources.add(
            "campaigns/w.nudge",
            "state a {\n  after 24h -> remnder\n}\n",
        );
        sources
    }

    fn unknown_state() -> Diagnostic {
        Diagnostic::error(0, Span::new(25, 32), "unknown state `remnder`")
            .with_label("no such state")
            .with_help("did you mean `reminder`?")
    }

    #[test]
    fn renders_like_rustc() {
        let text = render(&sources(), &[unknown_state()], false);
        assert_eq!(
            text,
            "error: unknown state `remnder`
 --> campaigns/w.nudge:2:16
  |
2 |   after 24h -> remnder
  |                ^^^^^^^ no such state
  |
  = help: did you mean `reminder`?

"
        );
    }

    #[test]
    fn colored_arrow_is_moved_too() {
        let text = render(&sources(), &[unknown_state()], true);
        assert!(text.contains("\n \x1b[0m\x1b[34m-->"), "{text:?}");
    }

    #[test]
    fn renders_json_lines() {
        let text = render_json(&sources(), &[unknown_state()]);
        let value: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(value["file"], "campaigns/w.nudge");
        assert_eq!(value["line"], 2);
        assert_eq!(value["column"], 16);
        assert_eq!(value["end_line"], 2);
        assert_eq!(value["end_column"], 23);
        assert_eq!(value["severity"], "error");
        assert_eq!(value["label"], "no such state");
        assert_eq!(value["help"], "did you mean `reminder`?");
    }

    #[test]
    fn summaries() {
        let s = sources();
        assert_eq!(
            summary(&s, &[]),
            "checked `campaigns/w.nudge`: no problems found"
        );
        let warning = Diagnostic::warning(0, Span::new(0, 1), "w");
        assert_eq!(
            summary(&s, &[unknown_state(), warning.clone(), warning]),
            "error: could not check `campaigns/w.nudge` due to 1 error; 2 warnings emitted"
        );
    }
}
