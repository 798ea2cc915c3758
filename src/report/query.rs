//! A report's [`Options`] as the query of `GET /v1/report` (the CLI
//! reaching a running daemon) and back: `campaign`, `since` and `until`
//! (RFC 3339, or a date for its midnight UTC), `by` (comma-separated),
//! `plan`, and the red flags' thresholds under their `[report]` names
//! (the defaults where absent).

use chrono::{DateTime, SecondsFormat, Utc};

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

fn time(key: &str, value: &str) -> Result<i64, String> {
    super::instant::parse(value).map_err(|e| format!("`{key}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Options, String> {
        from_query(pairs.iter().copied())
    }

    #[test]
    fn options_survive_the_query() {
        let options = Options {
            campaign: Some("warehouse associate".into()),
            since: Some(1_793_059_200_000),
            until: Some(1_793_664_000_500),
            by: vec![By::Variant, By::Hour, By::Channel],
            plan: 5000,
            thresholds: Thresholds {
                low_open_rate: 0.125,
                high_failure_rate_base: 7,
                ..Thresholds::default()
            },
        };
        let query = to_query(&options);
        let back = from_query(query.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        assert_eq!(back, options);
        assert_eq!(parse(&[]).unwrap(), Options::default());
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(
            parse(&[("by", "variant,colour")]).unwrap_err(),
            "`by` has `colour`: expected variant, channel, source, device, weekday or hour"
        );
        assert_eq!(
            parse(&[("plan", "0")]).unwrap_err(),
            "`plan` is `0`: expected a whole number above 0"
        );
        assert!(parse(&[("since", "monday")])
            .unwrap_err()
            .starts_with("`since`: `monday` is neither"));
        assert_eq!(
            parse(&[("low_open_rate_base", "1.5")]).unwrap_err(),
            "`low_open_rate_base` is `1.5`: expected a whole number"
        );
        assert!(parse(&[("shoe_size", "44")])
            .unwrap_err()
            .contains("unknown field `shoe_size`"));
        assert_eq!(
            parse(&[("since", "2026-10-27")]).unwrap().since,
            Some(1_793_059_200_000)
        );
    }
}
