//! The report as CSV for spreadsheets: one row per figure, in long form,
//! so every campaign, group and experiment fits one sheet and filters by
//! column. Columns: `campaign`, `section` (`funnel`, `outcomes`,
//! `time_to_completion`, `experiment`, `comparison`, `red_flag`),
//! `grouping` (`variant:copy`, `channel`, ...; the experiment's name for
//! experiments; empty for the whole campaign), `group` (the group's key,
//! the variant, the flag's channel), `item` (the step, outcome, variant
//! or flag), `measure` and `value` (empty for no value).

use super::model::{CampaignReport, FunnelStep, Outcomes, Report, TimeToCompletion};

pub const HEADER: [&str; 7] = [
    "campaign", "section", "grouping", "group", "item", "measure", "value",
];

/// The whole report, header row first.
pub fn render(report: &Report) -> String {
    let mut rows = Rows::default();
    for c in &report.campaigns {
        campaign(&mut rows, c);
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing into memory cannot fail.
    let _ = writer.write_record(HEADER);
    for row in &rows.0 {
        let _ = writer.write_record(row);
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

#[derive(Default)]
struct Rows(Vec<[String; 7]>);

/// Where a row belongs: campaign, section, grouping, group.
type Place<'a> = [&'a str; 4];

impl Rows {
    fn push(&mut self, at: Place<'_>, item: &str, measure: &str, value: String) {
        self.0.push([
            at[0].into(),
            at[1].into(),
            at[2].into(),
            at[3].into(),
            item.into(),
            measure.into(),
            value,
        ]);
    }
}

fn num(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn campaign(rows: &mut Rows, c: &CampaignReport) {
    let name = c.campaign.as_str();
    figures(
        rows,
        name,
        "",
        "",
        &c.funnel,
        &c.outcomes,
        &c.time_to_completion,
    );
    for (grouping, groups) in &c.groups {
        for g in groups {
            figures(
                rows,
                name,
                grouping,
                &g.key,
                &g.funnel,
                &g.outcomes,
                &g.time_to_completion,
            );
        }
    }
    for e in &c.experiments {
        for v in &e.variants {
            let at = [name, "experiment", e.name.as_str(), v.name.as_str()];
            rows.push(at, &v.name, "n", v.n.to_string());
            rows.push(at, &v.name, "completed", v.completed.to_string());
            rows.push(at, &v.name, "rate", num(v.rate));
            rows.push(at, &v.name, "interval_low", num(v.interval.map(|i| i[0])));
            rows.push(at, &v.name, "interval_high", num(v.interval.map(|i| i[1])));
        }
        let at = [name, "experiment", e.name.as_str(), ""];
        let needed = e.sample_needed.map(|n| n.to_string()).unwrap_or_default();
        rows.push(at, "", "sample_needed", needed);
        if let Some(chi) = &e.chi_square {
            rows.push(at, "", "chi_square", chi.statistic.to_string());
            rows.push(at, "", "chi_square_df", chi.df.to_string());
            rows.push(at, "", "chi_square_p_value", chi.p_value.to_string());
        }
        if let Some(d) = &e.decided {
            rows.push(at, "", "decided_winner", d.winner.clone());
            rows.push(at, "", "decided_at", d.at.clone());
        }
        for cmp in &e.comparisons {
            let at = [name, "comparison", e.name.as_str(), cmp.variant.as_str()];
            let item = format!("{} vs {}", cmp.variant, cmp.versus);
            rows.push(at, &item, "difference", num(cmp.difference));
            rows.push(at, &item, "interval_low", num(cmp.interval.map(|i| i[0])));
            rows.push(at, &item, "interval_high", num(cmp.interval.map(|i| i[1])));
            rows.push(at, &item, "p_value", num(cmp.p_value));
            let av = cmp.always_valid_interval;
            rows.push(at, &item, "always_valid_low", num(av.map(|i| i[0])));
            rows.push(at, &item, "always_valid_high", num(av.map(|i| i[1])));
            let verdict = serde_json::to_value(cmp.verdict)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            rows.push(at, &item, "verdict", verdict);
            rows.push(at, &item, "text", cmp.text.clone());
        }
    }
    for f in &c.red_flags {
        let at = [name, "red_flag", "", f.channel.as_deref().unwrap_or("")];
        rows.push(at, &f.kind, "value", f.value.to_string());
        rows.push(at, &f.kind, "threshold", f.threshold.to_string());
        rows.push(at, &f.kind, "base", f.base.to_string());
        rows.push(at, &f.kind, "advice", f.advice.clone());
    }
}

fn figures(
    rows: &mut Rows,
    campaign: &str,
    grouping: &str,
    group: &str,
    funnel: &[FunnelStep],
    outcomes: &Outcomes,
    time: &TimeToCompletion,
) {
    let at = [campaign, "funnel", grouping, group];
    for s in funnel {
        rows.push(at, s.step.name(), "count", s.count.to_string());
        rows.push(
            at,
            s.step.name(),
            "rate_from_previous",
            num(s.rate_from_previous),
        );
        rows.push(
            at,
            s.step.name(),
            "rate_from_enrolled",
            num(s.rate_from_enrolled),
        );
    }
    let at = [campaign, "outcomes", grouping, group];
    rows.push(at, "opted_out", "count", outcomes.opted_out.to_string());
    rows.push(at, "bounced", "count", outcomes.bounced.to_string());
    rows.push(at, "failed", "count", outcomes.failed.to_string());
    for (state, n) in &outcomes.exited {
        rows.push(at, &format!("exited:{state}"), "count", n.to_string());
    }
    rows.push(at, "running", "count", outcomes.running.to_string());
    let at = [campaign, "time_to_completion", grouping, group];
    rows.push(at, "", "count", time.count.to_string());
    rows.push(at, "", "median_s", num(time.median_s));
    rows.push(at, "", "p90_s", num(time.p90_s));
    rows.push(at, "", "within_24h", num(time.within_24h));
    rows.push(at, "", "within_48h", num(time.within_48h));
    rows.push(at, "", "within_72h", num(time.within_72h));
}
