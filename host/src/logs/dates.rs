//! Time arguments of `metaclaude logs` and the times carried in rotated file names.
//!
//! Bounds are kept as the log's own timestamp text (`2024-01-15T10:30:45.123456Z`): every
//! record's timestamp has that fixed shape, so a byte comparison is a time comparison and no
//! record's timestamp has to be parsed to be filtered.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::model::timestamp;

/// A time argument that cannot be read, and what would be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// A local time that the clocks skipped.
    #[error("`{0}` does not exist in the local time zone (a DST gap?)")]
    NoSuchLocalTime(String),
    /// A `--start-date` / `--end-date` (or the API's `from`) in none of the accepted shapes.
    #[error(
        "cannot read `{0}` as a date: use YYYY-MM-DD, \"YYYY-MM-DD HH:MM:SS\" (local time) \
         or RFC 3339 such as 2024-01-15T10:30:45Z"
    )]
    NotADate(String),
    /// A `--since` (or the API's `since`) that is not a whole number and a unit, or is
    /// negative or too long to be a duration.
    #[error(
        "cannot read `{0}` as a relative time: use a number and one of s, m, h, d, w (e.g. 1h)"
    )]
    NotAnAge(String),
}

/// Parses a `--start-date` / `--end-date` value.
///
/// Accepted: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` (also with a `T`), both read in `tz` (the
/// local time zone on the command line, as the seed builds them with `date`), and RFC 3339
/// with its own offset. With `end` set the result is the exclusive upper bound covering the
/// whole stated precision: the next midnight for a day, the next second for a time, so that
/// `--end-date 2024-01-15` includes all of that day.
pub fn parse_instant<Tz: TimeZone>(
    s: &str,
    end: bool,
    tz: &Tz,
) -> Result<DateTime<Utc>, DateError> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        let t = t.with_timezone(&Utc);
        return Ok(if end {
            t + Duration::microseconds(1)
        } else {
            t
        });
    }
    let local = |naive: NaiveDateTime| {
        tz.from_local_datetime(&naive)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| DateError::NoSuchLocalTime(s.to_string()))
    };
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            let t = local(naive)?;
            return Ok(if end { t + Duration::seconds(1) } else { t });
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let day = if end { day + Duration::days(1) } else { day };
        return local(day.and_hms_opt(0, 0, 0).expect("midnight exists"));
    }
    Err(DateError::NotADate(s.to_string()))
}

/// Parses a `--since` value such as `90s`, `15m`, `1h`, `2d` or `1w` into a duration.
pub fn parse_since(s: &str) -> Result<Duration, DateError> {
    let s = s.trim();
    let bad = || DateError::NotAnAge(s.to_string());
    let unit = s.chars().last().ok_or_else(bad)?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(secs)
        .filter(|v| *v >= 0)
        .and_then(Duration::try_seconds)
        .ok_or_else(bad)
}

/// The bound as log timestamp text, so records compare by bytes.
pub fn bound_text(t: &DateTime<Utc>) -> String {
    timestamp::format(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn days_cover_the_whole_day() {
        assert_eq!(
            parse_instant("2024-01-15", false, &Utc),
            Ok(utc("2024-01-15T00:00:00Z"))
        );
        assert_eq!(
            parse_instant("2024-01-15", true, &Utc),
            Ok(utc("2024-01-16T00:00:00Z"))
        );
    }

    #[test]
    fn times_without_offset_are_local() {
        let cet = FixedOffset::east_opt(3600).unwrap();
        assert_eq!(
            parse_instant("2024-01-15 10:30:45", false, &cet),
            Ok(utc("2024-01-15T09:30:45Z"))
        );
        assert_eq!(
            parse_instant("2024-01-15T10:30:45", true, &cet),
            Ok(utc("2024-01-15T09:30:46Z"))
        );
    }

    #[test]
    fn rfc3339_keeps_its_offset() {
        let cet = FixedOffset::east_opt(3600).unwrap();
        assert_eq!(
            parse_instant("2024-01-15T10:30:45+02:00", false, &cet),
            Ok(utc("2024-01-15T08:30:45Z"))
        );
        assert_eq!(
            parse_instant("2024-01-15T10:30:45.5Z", false, &Utc),
            Ok(utc("2024-01-15T10:30:45.5Z"))
        );
    }

    #[test]
    fn bad_dates_say_what_is_accepted() {
        let err = parse_instant("yesterday", false, &Utc)
            .unwrap_err()
            .to_string();
        assert!(err.contains("YYYY-MM-DD"), "{err}");
        assert!(parse_instant("2024-13-01", false, &Utc).is_err());
    }

    #[test]
    fn since_units() {
        assert_eq!(parse_since("90s"), Ok(Duration::seconds(90)));
        assert_eq!(parse_since("15m"), Ok(Duration::minutes(15)));
        assert_eq!(parse_since("1h"), Ok(Duration::hours(1)));
        assert_eq!(parse_since("2d"), Ok(Duration::days(2)));
        assert_eq!(parse_since("1w"), Ok(Duration::weeks(1)));
        for bad in ["", "h", "1y", "-1h", "1.5h", "99999999999999w"] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bound_text_sorts_like_time() {
        let a = bound_text(&utc("2024-01-15T09:59:59.999999Z"));
        let b = bound_text(&utc("2024-01-15T10:00:00Z"));
        assert!(a < b);
        assert_eq!(b, "2024-01-15T10:00:00.000000Z");
    }
}
