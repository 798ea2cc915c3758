//! The report's words for people: an experiment's verdict and what to
//! check for a red flag. Not part of the contract (REPORT.md §6, §7);
//! every format shows these same words.

use super::model::Verdict;
use super::stats::Compared;

/// A difference of rates in points with its sign: `+6.1`, `-2.0`, `0.0`.
pub fn points(d: f64) -> String {
    let p = (d * 1000.0).round() / 10.0;
    if p == 0.0 {
        "0.0".into()
    } else {
        format!("{p:+.1}")
    }
}

/// One comparison's verdict in words: "`warm` completes more: +6.1
/// points, always-valid 95% interval +2.3 to +9.9"; "not enough data
/// yet: about 840 more per variant".
pub fn verdict(
    variant: &str,
    control: &str,
    compared: Option<&Compared>,
    verdict: Verdict,
    n0: u64,
    ni: u64,
    needed: Option<u64>,
) -> String {
    let numbers = |c: &Compared| {
        format!(
            "{} points, always-valid 95% interval {} to {}",
            points(c.difference),
            points(c.always_valid[0]),
            points(c.always_valid[1])
        )
    };
    match (verdict, compared) {
        (Verdict::Better, Some(c)) => format!("`{variant}` completes more: {}", numbers(c)),
        (Verdict::Worse, Some(c)) => format!("`{variant}` completes less: {}", numbers(c)),
        (Verdict::NoDifference, Some(c)) => format!(
            "no difference of 5 points or more from `{control}`: {}",
            numbers(c)
        ),
        _ => match needed {
            Some(needed) => {
                let more = needed.saturating_sub(n0.min(ni)).max(1);
                format!("not enough data yet: about {more} more per variant")
            }
            None => format!("not enough data yet: no enrollment in `{control}` (the control)"),
        },
    }
}

/// What to check when a red flag is raised.
pub fn advice(kind: &str, channel: Option<&str>) -> String {
    match kind {
        "low_open_rate" => "few invitations are opened: check whether they land in spam folders \
             (the sending domain's SPF, DKIM and DMARC), the sender's name and the subject line"
            .into(),
        "high_start_low_completion" => "many start the interview and do not finish: check the \
             interview's length, and that its links work on mobile"
            .into(),
        "high_bounce_rate" => format!(
            "many {} sends bounce: clean the list (check addresses and numbers when they are \
             imported, drop those that bounced); a sender that keeps bouncing is taken for spam",
            channel.unwrap_or("of the")
        ),
        "high_opt_out_rate" => "many opt out: check how often the campaign follows up, and that \
             the first message says who writes and why"
            .into(),
        "high_failure_rate" => "many sends fail: check the channel's settings and credentials \
             (`nudge check --channels`) and the provider's status"
            .into(),
        _ => String::new(),
    }
}
