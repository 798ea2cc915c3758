//! `nudge fmt`: the canonical layout of a `.nudge` file, comments kept.
//!
//! The formatter prints the syntax tree again and re-inserts the comments
//! that [`File::comments`] recorded, so it needs the source text only to
//! see where comments and blank lines were. The layout:
//!
//! - Campaigns are separated by one blank line; blocks are indented by two
//!   spaces; `campaign NAME {` and `state NAME {` open a block and `}`
//!   closes it on its own line. A state is always printed over several lines,
//!   even when it is empty or holds only `end`.
//! - Settings come first, in the canonical order `title`, `enroll`,
//!   `channels`, `timezone`, `window`, `limit` (in source order), `deadline`,
//!   `goal`, `exit on`, `link`, with the keyword padded to eight columns and
//!   a space, so the values line up (`title    "..."`, `exit on  bounced`).
//!   Then a blank line, the experiments one per line
//!   (`experiment copy { short 50, warm 50 }`), a blank line, and the states,
//!   one blank line between each. A section that is empty takes no line.
//! - Statements keep their source order, one per line (`split` on one line).
//!   Between two settings, two experiments or two statements of a state,
//!   one blank line is kept where the source had at least one: recruiters
//!   group lines with their comments.
//! - Expressions take one space around operators and none inside brackets or
//!   parentheses; parentheses are kept as written, and added only where a
//!   tree built by hand would otherwise print with another meaning. Strings
//!   are re-escaped (`\"`, `\\`, `\n`); durations, times and days are
//!   printed canonically (`mon-thu, sat 09:00-19:00`).
//! - Comments on their own lines stay attached to the item that follows them
//!   (setting, experiment, state, statement or closing brace) and take its
//!   indentation; comments before a closing brace are indented as the
//!   block's contents. A blank line between two such comments, or between
//!   the last of them and the item, is kept as one. Comments inside an item
//!   that is printed on one line (a multi-line `where`, experiment or
//!   `split`) move just above it.
//! - A comment on the same line as an item stays after it. Trailing comments
//!   start at column 41, or two spaces after the item when it is longer, and
//!   the trailing comments of consecutive lines share one column.
//! - Trailing whitespace is removed from comments; the file ends with a
//!   single newline.

use std::collections::HashMap;

use crate::dsl::ast::{
    Campaign, Comment, CompareOp, DayRange, Expr, ExprKind, File, Limit, Path, SettingKind, Span,
    StatementKind, TimezoneSpec, Value, Window,
};

/// Width that setting keywords are padded to (`deadline` is the longest).
const KEYWORD_WIDTH: usize = 8;
/// The 0-based column trailing comments start at, unless the code is longer.
const TRAILING_COLUMN: usize = 40;
/// Spaces between code and a trailing comment when the code is long.
const TRAILING_GAP: usize = 2;
/// Unchanged lines shown around each change by [`check_formatted`].
const DIFF_CONTEXT: usize = 3;

/// Print `file` in the canonical layout; `source` is the text it was parsed
/// from, used to place comments and blank lines.
pub fn format(file: &File, source: &str) -> String {
    let layout = Layout::new(file, source);
    let mut printer = Printer {
        source,
        attached: &layout.attached,
        lines: Vec::new(),
    };
    for (ci, campaign) in file.campaigns.iter().enumerate() {
        printer.blank();
        printer.campaign(ci, campaign);
    }
    printer.file_end(&layout.file_end);
    render(&printer.lines)
}

/// A filter expression on one line, as [`format()`] prints it.
pub fn format_expr(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, expr);
    out
}

/// A file whose layout differs from the canonical one, as reported by
/// [`check_formatted`] for `nudge fmt --check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unformatted {
    /// The canonical text of the whole file.
    pub formatted: String,
    /// 1-based line of the first difference.
    pub line: usize,
    /// The hunks of a unified diff from the file to its canonical text.
    pub diff: String,
}

/// `None` when `source` is already in the canonical layout, else the
/// canonical text and a unified diff to it.
pub fn check_formatted(file: &File, source: &str) -> Option<Unformatted> {
    let formatted = format(file, source);
    if formatted == source {
        return None;
    }
    let (line, diff) = diff_excerpt(source, &formatted);
    Some(Unformatted {
        formatted,
        line,
        diff,
    })
}

/// One item that prints as exactly one line and can carry comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Anchor {
    CampaignOpen(usize),
    Setting(usize, usize),
    Experiment(usize, usize),
    StateOpen(usize, usize),
    Statement(usize, usize, usize),
    StateClose(usize, usize),
    CampaignClose(usize),
}

/// The comments that belong to one anchor.
#[derive(Debug, Default)]
struct Attached<'a> {
    /// On their own lines before the anchor.
    leading: Vec<&'a Comment>,
    /// Inside the anchor's text; printed between `leading` and the anchor.
    inner: Vec<&'a Comment>,
    /// On the anchor's last line.
    trailing: Option<&'a Comment>,
    /// Where the anchor's own text starts.
    start: usize,
}

/// Every comment assigned to a place in the output.
struct Layout<'a> {
    attached: HashMap<Anchor, Attached<'a>>,
    /// Comments after the last item of the file.
    file_end: Vec<&'a Comment>,
}

impl<'a> Layout<'a> {
    fn new(file: &'a File, source: &str) -> Self {
        let anchors = anchors(file, source);
        let mut attached: HashMap<Anchor, Attached<'a>> = anchors
            .iter()
            .map(|&(anchor, span)| {
                let comments = Attached {
                    start: span.start,
                    ..Attached::default()
                };
                (anchor, comments)
            })
            .collect();
        let mut file_end = Vec::new();
        for comment in &file.comments {
            let at = comment.span.start;
            // The last anchor starting at or before the comment.
            let before = anchors.partition_point(|(_, span)| span.start <= at);
            if let Some(&(anchor, span)) = before.checked_sub(1).map(|i| &anchors[i]) {
                if at < span.end {
                    attached.entry(anchor).or_default().inner.push(comment);
                    continue;
                }
                let same_line = !slice(source, span.end, at).contains('\n');
                let slot = attached.entry(anchor).or_default();
                if same_line && slot.trailing.is_none() {
                    slot.trailing = Some(comment);
                    continue;
                }
            }
            match anchors.get(before) {
                Some(&(anchor, _)) => attached.entry(anchor).or_default().leading.push(comment),
                None => file_end.push(comment),
            }
        }
        Layout { attached, file_end }
    }
}

/// Every anchor of the file with its span, ordered by position.
fn anchors(file: &File, source: &str) -> Vec<(Anchor, Span)> {
    let mut out = Vec::new();
    for (ci, campaign) in file.campaigns.iter().enumerate() {
        let open = open_brace(source, campaign.span.start, campaign.name.span.end);
        out.push((Anchor::CampaignOpen(ci), open));
        for (i, setting) in campaign.settings.iter().enumerate() {
            out.push((Anchor::Setting(ci, i), setting.span));
        }
        for (i, experiment) in campaign.experiments.iter().enumerate() {
            out.push((Anchor::Experiment(ci, i), experiment.span));
        }
        for (si, state) in campaign.states.iter().enumerate() {
            let open = open_brace(source, state.span.start, state.name.span.end);
            out.push((Anchor::StateOpen(ci, si), open));
            for (i, statement) in state.statements.iter().enumerate() {
                out.push((Anchor::Statement(ci, si, i), statement.span));
            }
            out.push((Anchor::StateClose(ci, si), close_brace(source, state.span)));
        }
        out.push((
            Anchor::CampaignClose(ci),
            close_brace(source, campaign.span),
        ));
    }
    out.sort_by_key(|&(_, span)| span.start);
    out
}

/// The header `campaign NAME {`: from `start` through the first `{` after
/// the name, skipping comments (whose own `{` do not count).
fn open_brace(source: &str, start: usize, name_end: usize) -> Span {
    let bytes = source.as_bytes();
    let mut i = name_end;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => return Span::new(start, i + 1),
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            _ => break,
        }
    }
    Span::new(start, name_end.max(start))
}

/// The closing `}` of a block whose span ends at (or just after) it.
fn close_brace(source: &str, block: Span) -> Span {
    let before = slice(source, block.start, block.end);
    let trimmed = before.trim_end();
    if trimmed.ends_with('}') {
        let end = block.start + trimmed.len();
        Span::new(end - 1, end)
    } else {
        Span::new(block.end, block.end)
    }
}

/// `source[start..end]`, or `""` when the range does not fit the text.
fn slice(source: &str, start: usize, end: usize) -> &str {
    source.get(start..end).unwrap_or("")
}

/// Whether the whitespace just before `pos` holds a blank line.
fn blank_before(source: &str, pos: usize) -> bool {
    let Some(before) = source.get(..pos) else {
        return false;
    };
    let gap = before.len() - before.trim_end().len();
    before[before.len() - gap..].matches('\n').count() >= 2
}

/// A line of output before trailing comments are aligned.
#[derive(Debug)]
enum Line {
    Blank,
    Comment {
        depth: usize,
        text: String,
    },
    Code {
        depth: usize,
        code: String,
        trailing: Option<String>,
    },
}

struct Printer<'s, 'a> {
    source: &'s str,
    attached: &'s HashMap<Anchor, Attached<'a>>,
    lines: Vec<Line>,
}

impl Printer<'_, '_> {
    /// One blank line, unless at the start or after another blank line.
    fn blank(&mut self) {
        if !matches!(self.lines.last(), None | Some(Line::Blank)) {
            self.lines.push(Line::Blank);
        }
    }

    fn comment(&mut self, depth: usize, comment: &Comment) {
        self.lines.push(Line::Comment {
            depth,
            text: comment.text.trim_end().to_string(),
        });
    }

    /// An anchor's own-line comments, then the anchor's line. `keep_blank`
    /// allows the blank line the source had before the comments or item.
    fn item(&mut self, anchor: Anchor, depth: usize, code: String, keep_blank: bool) {
        let Some(attached) = self.attached.get(&anchor) else {
            self.code(depth, code, None);
            return;
        };
        let group_start = attached
            .leading
            .first()
            .map_or(attached.start, |c| c.span.start);
        if keep_blank && blank_before(self.source, group_start) {
            self.blank();
        }
        for (i, comment) in attached.leading.iter().enumerate() {
            if i > 0 && blank_before(self.source, comment.span.start) {
                self.blank();
            }
            self.comment(depth, comment);
        }
        if !attached.leading.is_empty() && blank_before(self.source, attached.start) {
            self.blank();
        }
        for comment in &attached.inner {
            self.comment(depth, comment);
        }
        self.code(depth, code, attached.trailing);
    }

    /// A closing brace at `depth`, the comments before it one level deeper.
    fn close(&mut self, anchor: Anchor, depth: usize, keep_blank: bool) {
        let Some(attached) = self.attached.get(&anchor) else {
            self.code(depth, "}".to_string(), None);
            return;
        };
        for (i, comment) in attached.leading.iter().enumerate() {
            if (i > 0 || keep_blank) && blank_before(self.source, comment.span.start) {
                self.blank();
            }
            self.comment(depth + 1, comment);
        }
        for comment in &attached.inner {
            self.comment(depth + 1, comment);
        }
        self.code(depth, "}".to_string(), attached.trailing);
    }

    fn code(&mut self, depth: usize, code: String, trailing: Option<&Comment>) {
        self.lines.push(Line::Code {
            depth,
            code,
            trailing: trailing.map(|c| c.text.trim_end().to_string()),
        });
    }

    fn campaign(&mut self, ci: usize, campaign: &Campaign) {
        let header = format!("campaign {} {{", campaign.name.name);
        self.item(Anchor::CampaignOpen(ci), 0, header, false);

        let mut settings: Vec<_> = campaign.settings.iter().enumerate().collect();
        settings.sort_by_key(|(_, s)| setting_rank(&s.kind));
        // A blank line the recruiter left between settings (to group them
        // with their comments) is kept, as between statements.
        for (pos, &(i, setting)) in settings.iter().enumerate() {
            self.item(
                Anchor::Setting(ci, i),
                1,
                setting_line(&setting.kind),
                pos > 0,
            );
        }

        if !campaign.settings.is_empty() && !campaign.experiments.is_empty() {
            self.blank();
        }
        for (i, experiment) in campaign.experiments.iter().enumerate() {
            let variants: Vec<String> = experiment
                .variants
                .iter()
                .map(|v| format!("{} {}", v.name.name, v.weight.value))
                .collect();
            let until = if experiment.until_decided.is_some() {
                " until decided"
            } else {
                ""
            };
            let line = format!(
                "experiment {} {{ {} }}{until}",
                experiment.name.name,
                variants.join(", ")
            );
            self.item(Anchor::Experiment(ci, i), 1, line, i > 0);
        }

        let has_preamble = !(campaign.settings.is_empty() && campaign.experiments.is_empty());
        for (si, state) in campaign.states.iter().enumerate() {
            if si > 0 || has_preamble {
                self.blank();
            }
            let header = format!("state {} {{", state.name.name);
            self.item(Anchor::StateOpen(ci, si), 1, header, false);
            for (i, statement) in state.statements.iter().enumerate() {
                let anchor = Anchor::Statement(ci, si, i);
                self.item(anchor, 2, statement_line(&statement.kind), i > 0);
            }
            let has_statements = !state.statements.is_empty();
            self.close(Anchor::StateClose(ci, si), 1, has_statements);
        }

        let has_content = has_preamble || !campaign.states.is_empty();
        self.close(Anchor::CampaignClose(ci), 0, has_content);
    }

    fn file_end(&mut self, comments: &[&Comment]) {
        for (i, comment) in comments.iter().enumerate() {
            if (i > 0 || !self.lines.is_empty()) && blank_before(self.source, comment.span.start) {
                self.blank();
            }
            self.comment(0, comment);
        }
    }
}

/// The output text: indentation added, trailing comments aligned.
fn render(lines: &[Line]) -> String {
    let mut end = lines.len();
    while end > 0 && matches!(lines[end - 1], Line::Blank) {
        end -= 1;
    }
    let lines = &lines[..end];
    let width = |depth: usize, code: &str| 2 * depth + code.chars().count();
    let has_trailing = |line: &Line| {
        matches!(
            line,
            Line::Code {
                trailing: Some(_),
                ..
            }
        )
    };

    // A run of consecutive code lines with trailing comments shares a column.
    let mut columns = vec![TRAILING_COLUMN; lines.len()];
    let mut i = 0;
    while i < lines.len() {
        if !has_trailing(&lines[i]) {
            i += 1;
            continue;
        }
        let run_end = (i..lines.len())
            .find(|&j| !has_trailing(&lines[j]))
            .unwrap_or(lines.len());
        let column = lines[i..run_end]
            .iter()
            .filter_map(|line| match line {
                Line::Code { depth, code, .. } => Some(width(*depth, code) + TRAILING_GAP),
                _ => None,
            })
            .fold(TRAILING_COLUMN, usize::max);
        columns[i..run_end].fill(column);
        i = run_end;
    }

    let mut out = String::new();
    for (line, column) in lines.iter().zip(columns) {
        match line {
            Line::Blank => {}
            Line::Comment { depth, text } => {
                push_indent(&mut out, *depth);
                out.push_str(text);
            }
            Line::Code {
                depth,
                code,
                trailing,
            } => {
                push_indent(&mut out, *depth);
                out.push_str(code);
                if let Some(comment) = trailing {
                    let pad = column - width(*depth, code);
                    out.extend(std::iter::repeat_n(' ', pad));
                    out.push_str(comment);
                }
            }
        }
        out.push('\n');
    }
    out
}

fn push_indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// Position of a setting in the canonical order.
fn setting_rank(kind: &SettingKind) -> u8 {
    match kind {
        SettingKind::Title(_) => 0,
        SettingKind::Enroll { .. } => 1,
        SettingKind::Channels(_) => 2,
        SettingKind::Timezone(_) => 3,
        SettingKind::Window(_) => 4,
        SettingKind::Limit(_) => 5,
        SettingKind::Deadline { .. } => 6,
        SettingKind::Goal(_) => 7,
        SettingKind::Exit(_) => 8,
        SettingKind::Link(_) => 9,
    }
}

fn setting_line(kind: &SettingKind) -> String {
    let (keyword, value) = match kind {
        SettingKind::Title(title) => ("title", quote(&title.value)),
        SettingKind::Enroll { event, filter } => {
            let mut value = format!("on {}", event.name);
            if let Some(filter) = filter {
                value.push_str(" where ");
                write_expr(&mut value, filter);
            }
            ("enroll", value)
        }
        SettingKind::Channels(channels) => ("channels", names(channels)),
        SettingKind::Timezone(TimezoneSpec::Fixed(zone)) => ("timezone", quote(&zone.value)),
        SettingKind::Timezone(TimezoneSpec::Candidate { fallback }) => {
            let value = match fallback {
                Some(zone) => format!("candidate or {}", quote(&zone.value)),
                None => "candidate".to_string(),
            };
            ("timezone", value)
        }
        SettingKind::Window(window) => ("window", window_text(window)),
        SettingKind::Limit(Limit::Per { count, period }) => {
            ("limit", format!("{} per {period}", count.value))
        }
        SettingKind::Limit(Limit::Total { count }) => ("limit", format!("{} total", count.value)),
        SettingKind::Deadline {
            duration,
            after_enrollment,
        } => {
            let suffix = if *after_enrollment {
                " after enrollment"
            } else {
                ""
            };
            ("deadline", format!("{duration}{suffix}"))
        }
        SettingKind::Goal(goal) => ("goal", goal.name.clone()),
        SettingKind::Exit(events) => ("exit on", names(events)),
        SettingKind::Link(link) => ("link", quote(&link.value)),
    };
    format!("{keyword:<KEYWORD_WIDTH$} {value}")
}

fn statement_line(kind: &StatementKind) -> String {
    match kind {
        StatementKind::Send { template, via } => match via {
            Some(channel) => format!("send {} via {}", quote(&template.value), channel.name),
            None => format!("send {}", quote(&template.value)),
        },
        StatementKind::On {
            event,
            filter,
            target,
        } => {
            let mut line = format!("on {}", event.name);
            if let Some(filter) = filter {
                line.push_str(" where ");
                write_expr(&mut line, filter);
            }
            line.push_str(" -> ");
            line.push_str(&target.name);
            line
        }
        StatementKind::After { duration, target } => {
            format!("after {duration} -> {}", target.name)
        }
        StatementKind::AtDeadline { target } => format!("at deadline -> {}", target.name),
        StatementKind::BeforeDeadline { duration, target } => {
            format!("before deadline {duration} -> {}", target.name)
        }
        StatementKind::Split { experiment, arms } => {
            let arms: Vec<String> = arms
                .iter()
                .map(|arm| format!("{} -> {}", arm.variant.name, arm.target.name))
                .collect();
            format!("split {} {{ {} }}", experiment.name, arms.join(", "))
        }
        StatementKind::Window(window) => format!("window {}", window_text(window)),
        StatementKind::End => "end".to_string(),
    }
}

/// `mon-thu, sat 09:00-19:00`
pub(crate) fn window_text(window: &Window) -> String {
    let days: Vec<String> = window.days.iter().map(day_range).collect();
    format!("{} {}-{}", days.join(", "), window.open, window.close)
}

fn day_range(range: &DayRange) -> String {
    match range.to {
        Some(to) => format!("{}-{}", range.from.name(), to.name()),
        None => range.from.name().to_string(),
    }
}

fn names(idents: &[crate::dsl::ast::Ident]) -> String {
    let names: Vec<&str> = idents.iter().map(|i| i.name.as_str()).collect();
    names.join(", ")
}

/// A string literal with `"`, `\` and newlines escaped.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// How tightly an expression binds: `or` < `and` < `not` < the rest.
fn binding(expr: &Expr) -> u8 {
    match expr.kind {
        ExprKind::Or(..) => 0,
        ExprKind::And(..) => 1,
        ExprKind::Not(_) => 2,
        _ => 3,
    }
}

fn write_expr(out: &mut String, expr: &Expr) {
    match &expr.kind {
        ExprKind::Or(left, right) => {
            write_operand(out, left, 0);
            out.push_str(" or ");
            write_operand(out, right, 0);
        }
        ExprKind::And(left, right) => {
            write_operand(out, left, 1);
            out.push_str(" and ");
            write_operand(out, right, 1);
        }
        ExprKind::Not(inner) => {
            out.push_str("not ");
            write_operand(out, inner, 2);
        }
        ExprKind::Group(inner) => {
            out.push('(');
            write_expr(out, inner);
            out.push(')');
        }
        ExprKind::Compare { path, op, value } => {
            write_path(out, path);
            out.push_str(match op {
                CompareOp::Eq => " == ",
                CompareOp::Ne => " != ",
            });
            write_value(out, value);
        }
        ExprKind::In { path, values } => {
            write_path(out, path);
            out.push_str(" in [");
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, value);
            }
            out.push(']');
        }
        ExprKind::Matches { path, pattern } => {
            write_path(out, path);
            out.push_str(" matches ");
            out.push_str(&quote(&pattern.value));
        }
    }
}

/// An operand of an operator that binds at `level`, in parentheses when it
/// binds more loosely (only possible in a tree built by hand).
fn write_operand(out: &mut String, expr: &Expr, level: u8) {
    if binding(expr) < level {
        out.push('(');
        write_expr(out, expr);
        out.push(')');
    } else {
        write_expr(out, expr);
    }
}

fn write_path(out: &mut String, path: &Path) {
    for (i, segment) in path.segments.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(&segment.name);
    }
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Str(s) => out.push_str(&quote(&s.value)),
        Value::Int(i) => out.push_str(&i.value.to_string()),
    }
}

/// The 1-based line of the first difference and the hunks of a unified
/// diff (`@@ -l,n +l,n @@`, three lines of context; the caller adds the
/// `---`/`+++` header, it knows the file's name). A diff that would only
/// show lines looking alike is a note instead.
fn diff_excerpt(old: &str, new: &str) -> (usize, String) {
    if old.lines().eq(new.lines()) {
        let line = old.lines().count().max(1);
        let note = "  (only line endings or the final newline differ)\n".to_string();
        return (line, note);
    }
    let diff = similar::TextDiff::from_lines(old, new);
    let first = diff
        .ops()
        .iter()
        .find(|op| op.tag() != similar::DiffTag::Equal)
        .map_or(0, |op| op.old_range().start);
    let mut unified = diff.unified_diff();
    unified.context_radius(DIFF_CONTEXT);
    let mut text = unified.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    (first + 1, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::ast::Ident;

    fn path(name: &str) -> Path {
        Path {
            segments: vec![Ident {
                name: name.to_string(),
                span: Span::default(),
            }],
            span: Span::default(),
        }
    }

    fn eq(name: &str, value: u64) -> Expr {
        let kind = ExprKind::Compare {
            path: path(name),
            op: CompareOp::Eq,
            value: Value::Int(crate::dsl::ast::Int {
                value,
                span: Span::default(),
            }),
        };
        Expr {
            kind,
            span: Span::default(),
        }
    }

    fn node(kind: ExprKind) -> Expr {
        Expr {
            kind,
            span: Span::default(),
        }
    }

    #[test]
    fn strings_are_re_escaped() {
        assert_eq!(quote("a \"b\" \\ c\nd #{x}"), r#""a \"b\" \\ c\nd #{x}""#);
    }

    #[test]
    fn hand_built_trees_get_the_parentheses_their_meaning_needs() {
        let or = node(ExprKind::Or(Box::new(eq("a", 1)), Box::new(eq("b", 2))));
        let and = node(ExprKind::And(Box::new(or.clone()), Box::new(eq("c", 3))));
        assert_eq!(format_expr(&and), "(a == 1 or b == 2) and c == 3");
        let not = node(ExprKind::Not(Box::new(and)));
        assert_eq!(format_expr(&not), "not ((a == 1 or b == 2) and c == 3)");
        let group = node(ExprKind::Group(Box::new(eq("a", 1))));
        let kept = node(ExprKind::Not(Box::new(group)));
        assert_eq!(format_expr(&kept), "not (a == 1)");
        let flat = node(ExprKind::Or(Box::new(or), Box::new(eq("d", 4))));
        assert_eq!(format_expr(&flat), "a == 1 or b == 2 or d == 4");
    }

    #[test]
    fn blank_lines_are_found_in_the_whitespace_before_a_position() {
        let text = "a\n\n  b\n  c";
        assert!(blank_before(text, 5));
        assert!(!blank_before(text, 10));
        assert!(!blank_before(text, 99));
    }

    #[test]
    fn the_diff_shows_context_and_both_sides() {
        let (line, diff) = diff_excerpt("a\nb\nc\nd\ne\n", "a\nb\nX\nd\ne\n");
        assert_eq!(line, 3);
        assert_eq!(diff, "@@ -1,5 +1,5 @@\n a\n b\n-c\n+X\n d\n e\n");
        let (line, diff) = diff_excerpt("a\nb\n", "a\nb");
        assert_eq!(line, 2);
        assert!(diff.contains("final newline"), "{diff}");
    }
}
