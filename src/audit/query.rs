//! What a listing of the trail asks for, parsed once for the API and the CLI.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use uuid::Uuid;

use super::Action;
use crate::db::AuditFilter;

/// A filter value that cannot be used; the message says what would be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadFilter(pub String);

/// `action` must be one the trail records.
pub fn parse_action(raw: &str) -> Result<Action, BadFilter> {
    Action::parse(raw).ok_or_else(|| {
        let known: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        BadFilter(format!(
            "unknown action {raw:?}; one of {}",
            known.join(", ")
        ))
    })
}

/// `since`: an RFC 3339 time (`2026-12-06T10:00:00Z`), a UTC date
/// (`2026-12-06`), or a span back from `now` (`30m`, `12h`, `7d`).
pub fn parse_since(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, BadFilter> {
    let raw = raw.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    let span = raw
        .char_indices()
        .last()
        .and_then(|(at, unit)| Some((raw[..at].parse::<u32>().ok()?, unit)))
        .and_then(|(n, unit)| match unit {
            's' => Some(Duration::seconds(n.into())),
            'm' => Some(Duration::minutes(n.into())),
            'h' => Some(Duration::hours(n.into())),
            'd' => Some(Duration::days(n.into())),
            _ => None,
        });
    match span.and_then(|span| now.checked_sub_signed(span)) {
        Some(since) => Ok(since),
        None => Err(BadFilter(format!(
            "since {raw:?} is neither an RFC 3339 time, a date (YYYY-MM-DD) nor a span \
             such as 30m, 12h or 7d"
        ))),
    }
}

/// The filter for `user_id`, `action` and `since` as given (each optional).
pub fn filter(
    user_id: Option<Uuid>,
    action: Option<&str>,
    since: Option<&str>,
) -> Result<AuditFilter, BadFilter> {
    Ok(AuditFilter {
        user_id,
        action: action
            .map(|a| parse_action(a).map(|a| a.as_str().to_owned()))
            .transpose()?,
        since: since.map(|s| parse_since(s, Utc::now())).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_a_date_or_a_span() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| parse_since(s, now).unwrap().to_rfc3339();
        assert_eq!(at("2026-12-01T08:30:00+01:00"), "2026-12-01T07:30:00+00:00");
        assert_eq!(at("2026-12-01"), "2026-12-01T00:00:00+00:00");
        assert_eq!(at("90m"), "2026-12-06T10:30:00+00:00");
        assert_eq!(at("2d"), "2026-12-04T12:00:00+00:00");
        for bad in ["", "yesterday", "5y", "-3h", "h", "2026-13-01"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_unknown_action_lists_the_known_ones() {
        assert!(parse_action("logout").is_ok());
        let err = parse_action("login").unwrap_err();
        assert!(err.0.contains("login.success") && err.0.contains("ws.refused"));
    }
}
