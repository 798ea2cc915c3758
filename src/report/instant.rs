//! `--since` and `--until`: an RFC 3339 instant, or a date (`2026-10-27`,
//! midnight UTC).

use chrono::{DateTime, NaiveDate};

/// Epoch milliseconds of `text`, or why it is not an instant.
pub fn parse(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.timestamp_millis());
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(midnight) = day.and_hms_opt(0, 0, 0) {
            return Ok(midnight.and_utc().timestamp_millis());
        }
    }
    Err(format!(
        "{text:?} is neither an RFC 3339 instant (2026-10-27T09:00:00Z) nor a date (2026-10-27)"
    ))
}

/// RFC 3339 text (UTC) of epoch milliseconds.
pub fn format(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_and_dates() {
        assert_eq!(parse("1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(parse("1970-01-02"), Ok(86_400_000));
        assert_eq!(parse("1970-01-01T01:00:00+01:00"), Ok(0));
        let err = parse("last tuesday").unwrap_err();
        assert!(err.contains("\"last tuesday\""), "{err}");
        assert_eq!(format(1000), "1970-01-01T00:00:01Z");
    }
}
