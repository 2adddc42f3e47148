//! Wall-clock time as tether writes it: Unix milliseconds inside (stores,
//! deadlines, the bus), RFC 3339 in UTC with whole seconds outside (the API).

use chrono::{DateTime, SecondsFormat, Utc};

/// Now, in Unix milliseconds: every instance computes deadlines the same way.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// `ms` (Unix milliseconds) as the API writes times: `2026-01-02T03:04:05Z`.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn api_times_are_utc_with_whole_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_323_045_999), "2026-01-02T03:04:05Z");
    }
}
