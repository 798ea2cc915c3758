//! The report as a recruiter reads it in a terminal: per campaign, the
//! funnel with its rates, the outcomes, time to completion, the groups
//! asked for, each experiment with its verdict in words, and the red flags
//! with the numbers behind them and what to check.

use std::fmt::Write;

use super::model::{
    CampaignReport, ExperimentReport, FunnelStep, Group, Outcomes, RedFlag, Report, Step,
    TimeToCompletion,
};
use super::words::points;

/// The whole report; campaigns apart by a blank line.
pub fn render(report: &Report) -> String {
    if report.campaigns.is_empty() {
        return "no campaigns to report on\n".into();
    }
    let parts: Vec<String> = report.campaigns.iter().map(campaign).collect();
    parts.join("\n")
}

fn campaign(c: &CampaignReport) -> String {
    let mut out = String::new();
    let title = c
        .title
        .as_ref()
        .map(|t| format!(" · {t}"))
        .unwrap_or_default();
    let enrolled = count_of(&c.funnel, Step::Enrolled);
    let _ = writeln!(
        out,
        "{}{title}\n{} enrolled · goal: {}",
        c.campaign,
        thousands(enrolled),
        c.goal
    );
    out.push('\n');
    out.push_str(&funnel(&c.funnel));
    let _ = writeln!(out, "\n{}", outcomes(&c.outcomes));
    let _ = writeln!(out, "{}", time_to_completion(&c.time_to_completion));
    for (grouping, groups) in &c.groups {
        let _ = write!(out, "\nby {grouping}\n{}", groups_table(groups));
    }
    for e in &c.experiments {
        out.push('\n');
        out.push_str(&experiment(e));
    }
    out.push('\n');
    if c.red_flags.is_empty() {
        out.push_str("red flags: none\n");
    } else {
        out.push_str("red flags\n");
        for f in &c.red_flags {
            let _ = writeln!(
                out,
                "  ! {}: {}\n    check: {}",
                f.kind,
                flag_numbers(f),
                f.advice
            );
        }
    }
    out
}

/// The numbers behind a red flag, in words: "2.5% of 2,500 enrolled
/// opted out (raised above 2.0%)".
fn flag_numbers(f: &RedFlag) -> String {
    let channel = f.channel.as_deref().unwrap_or("a channel");
    let (who, what, side) = match f.kind.as_str() {
        "low_open_rate" => ("first invited by email".to_string(), "opened it", "below"),
        "high_start_low_completion" => ("who started".into(), "completed", "below"),
        "high_bounce_rate" => (format!("sent to by {channel}"), "bounced", "above"),
        "high_opt_out_rate" => ("enrolled".into(), "opted out", "above"),
        "high_failure_rate" => ("invited".into(), "had a send fail", "above"),
        _ => ("counted".into(), "", "past"),
    };
    format!(
        "{} of {} {who} {what} (raised {side} {})",
        percent(Some(f.value)),
        thousands(f.base),
        percent(Some(f.threshold))
    )
}

fn count_of(funnel: &[FunnelStep], step: Step) -> u64 {
    funnel
        .iter()
        .find(|s| s.step == step)
        .map_or(0, |s| s.count)
}

fn funnel(funnel: &[FunnelStep]) -> String {
    let mut rows = vec![[
        "funnel".to_string(),
        "count".into(),
        "of previous".into(),
        "of enrolled".into(),
    ]];
    for s in funnel {
        rows.push([
            format!("  {}", s.step.name()),
            thousands(s.count),
            if s.step == Step::Enrolled {
                String::new()
            } else {
                percent(s.rate_from_previous)
            },
            percent(s.rate_from_enrolled),
        ]);
    }
    aligned(&rows, &[false, true, true, true])
}

fn outcomes(o: &Outcomes) -> String {
    let exited: Vec<String> = o
        .exited
        .iter()
        .map(|(state, n)| format!("{} {state}", thousands(*n)))
        .collect();
    let exited = if exited.is_empty() {
        "none".to_string()
    } else {
        exited.join(", ")
    };
    format!(
        "outcomes: exited {exited}; {} still running; {} opted out, {} bounced, {} with a failed send",
        thousands(o.running),
        thousands(o.opted_out),
        thousands(o.bounced),
        thousands(o.failed)
    )
}

fn time_to_completion(t: &TimeToCompletion) -> String {
    if t.count == 0 {
        return "time to completion: nobody completed after an invitation yet".into();
    }
    format!(
        "time to completion ({} completed after an invitation): median {}, 90% within {}; \
         of those invited, {} completed within 24h, {} within 48h, {} within 72h",
        thousands(t.count),
        duration(t.median_s),
        duration(t.p90_s),
        percent(t.within_24h),
        percent(t.within_48h),
        percent(t.within_72h)
    )
}

fn groups_table(groups: &[Group]) -> String {
    let mut header = vec!["  group".to_string()];
    header.extend(Step::ALL.iter().map(|s| s.name().to_string()));
    header.extend(["completion".into(), "median time".into()]);
    let mut rows = vec![header];
    for g in groups {
        let mut row = vec![format!("  {}", g.key)];
        row.extend(g.funnel.iter().map(|s| thousands(s.count)));
        let completed = g.funnel.last().and_then(|s| s.rate_from_enrolled);
        row.extend([percent(completed), duration(g.time_to_completion.median_s)]);
        rows.push(row);
    }
    let right: Vec<bool> = (0..rows[0].len()).map(|i| i > 0).collect();
    aligned(&rows, &right)
}

fn experiment(e: &ExperimentReport) -> String {
    let mut out = String::new();
    let control = e.variants.first().map_or("", |v| v.name.as_str());
    let _ = writeln!(out, "experiment {} (control: {control})", e.name);
    let mut rows = vec![[
        "  variant".to_string(),
        "enrolled".into(),
        "completed".into(),
        "rate".into(),
        "95% interval".into(),
    ]];
    for v in &e.variants {
        rows.push([
            format!("  {}", v.name),
            thousands(v.n),
            thousands(v.completed),
            percent(v.rate),
            v.interval
                .map(|[lo, hi]| format!("{} to {}", percent(Some(lo)), percent(Some(hi))))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    out.push_str(&aligned(&rows, &[false, true, true, true, true]));
    for c in &e.comparisons {
        let _ = write!(out, "  {} against {}: ", c.variant, c.versus);
        match (c.difference, c.interval, c.p_value) {
            (Some(d), Some([lo, hi]), Some(p)) => {
                let _ = writeln!(
                    out,
                    "{} points (95% interval {} to {}, p = {})",
                    points(d),
                    points(lo),
                    points(hi),
                    p_value(p)
                );
            }
            _ => out.push_str("no comparison yet\n"),
        }
        let _ = writeln!(out, "    {}", c.text);
    }
    if let Some(chi) = &e.chi_square {
        let _ = writeln!(
            out,
            "  across all variants: chi-square {:.2} on {} degrees of freedom, p = {}",
            chi.statistic,
            chi.df,
            p_value(chi.p_value)
        );
    }
    if let Some(n) = e.sample_needed {
        let _ = writeln!(
            out,
            "  to tell a 5-point change from {}: about {} per variant",
            if control.is_empty() {
                "the control"
            } else {
                control
            },
            thousands(n)
        );
    }
    if let Some(d) = &e.decided {
        let _ = writeln!(
            out,
            "  decided at {}: new enrollments get `{}`; {} (the table counts those enrolled before)",
            d.at, d.winner, d.because
        );
    }
    out
}

/// Rows padded into columns two spaces apart; `right` aligns numbers.
fn aligned<R: AsRef<[String]>>(rows: &[R], right: &[bool]) -> String {
    let columns = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.as_ref()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .as_ref()
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let w = widths[i];
                if right.get(i).copied().unwrap_or(false) {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `12.5%`, or `-` for no value.
pub fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0))
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A p-value as people read it: `0.044`, `< 0.001`.
fn p_value(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// Seconds as `2d 3h`, `18h 29m`, `45m`, `30s`; `-` for none.
pub fn duration(secs: Option<f64>) -> String {
    let Some(secs) = secs else {
        return "-".into();
    };
    let s = secs.round() as u64;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(percent(Some(0.125)), "12.5%");
        assert_eq!(percent(None), "-");
        assert_eq!(duration(Some(30.0)), "30s");
        assert_eq!(duration(Some(2700.0)), "45m");
        assert_eq!(duration(Some(66_575.0)), "18h 29m");
        assert_eq!(duration(Some(2.0 * 86_400.0 + 3.0 * 3600.0)), "2d 3h");
        assert_eq!(p_value(0.0437), "0.044");
        assert_eq!(p_value(0.0001), "< 0.001");
    }
}
