//! A report's [`Options`] as the query of `GET /v1/report` (the CLI
//! reaching a running daemon) and back: `campaign`, `since` and `until`
//! (RFC 3339, or a date for its midnight UTC), `by` (comma-separated),
//! `plan`, and the red flags' thresholds under their `[report]` names
//! (the defaults where absent).

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use super::compute::{By, Options, Thresholds};

/// The query for these options.
pub fn to_query(options: &Options) -> Vec<(String, String)> {
    let mut query = Vec::new();
    let mut add = |key: &str, value: String| query.push((key.to_string(), value));
    if let Some(c) = &options.campaign {
        add("campaign", c.clone());
    }
    for (key, at) in [("since", options.since), ("until", options.until)] {
        if let Some(t) = at.and_then(DateTime::<Utc>::from_timestamp_millis) {
            add(key, t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        }
    }
    if !options.by.is_empty() {
        let names: Vec<String> = options.by.iter().map(|b| by_name(*b)).collect();
        add("by", names.join(","));
    }
    add("plan", options.plan.to_string());
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&options.thresholds) {
        for (key, value) in fields {
            add(&key, value.to_string());
        }
    }
    query
}

/// The options a query asks for; an unknown key or a bad value is an
/// error naming it.
pub fn from_query<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Options, String> {
    let mut options = Options::default();
    let mut thresholds = serde_json::Map::new();
    for (key, value) in pairs {
        match key {
            "campaign" => options.campaign = Some(value.to_string()),
            "since" => options.since = Some(time(key, value)?),
            "until" => options.until = Some(time(key, value)?),
            "by" => {
                for name in value.split(',').filter(|n| !n.is_empty()) {
                    let by = <By as clap::ValueEnum>::from_str(name, false).map_err(|_| {
                        format!(
                            "`by` has `{name}`: expected variant, channel, source, device, weekday or hour"
                        )
                    })?;
                    options.by.push(by);
                }
            }
            "plan" => {
                options.plan = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("`plan` is `{value}`: expected a whole number above 0")
                })?
            }
            _ if key.ends_with("_base") => {
                let n: u64 = value
                    .parse()
                    .map_err(|_| format!("`{key}` is `{value}`: expected a whole number"))?;
                thresholds.insert(key.to_string(), n.into());
            }
            _ => {
                let n = value
                    .parse()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .ok_or_else(|| format!("`{key}` is `{value}`: expected a number"))?;
                thresholds.insert(key.to_string(), serde_json::Value::Number(n));
            }
        }
    }
    options.thresholds = serde_json::from_value::<Thresholds>(thresholds.into())
        .map_err(|e| format!("the query's thresholds: {e}"))?;
    Ok(options)
}

fn by_name(by: By) -> String {
    clap::ValueEnum::to_possible_value(&by)
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// `--since`/`--until` and their query keys: an RFC 3339 instant, or a
/// date (`2026-10-27`) for its midnight UTC; epoch milliseconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    if let Some(t) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(t.and_utc().timestamp_millis());
    }
    Err(format!(
        "`{text}` is neither an RFC 3339 instant (2026-10-27T09:00:00Z) nor a date (2026-10-27)"
    ))
}

fn time(key: &str, value: &str) -> Result<i64, String> {
    parse_time(value).map_err(|e| format!("`{key}`: {e}"))
}
