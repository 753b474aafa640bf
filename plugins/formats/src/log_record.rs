//! The execution log's record, the one definition the writer (the log sink plugin) and the
//! readers (`metaclaude logs`, the server's history, the synthetic logs of the benchmark)
//! share: its field names in the order written, its version, its levels and the writer of
//! one line.
//!
//! A line is one JSON object: the log's own fields ([`OWN_FIELDS`]: `log_version`,
//! `timestamp`, `level`, `event`, and for an execution `category`), then the event's
//! members. For an execution (`"event":"finished"`, [`write_finished`]) those are every
//! field of the host's execution result ([`RESULT_FIELDS`], with [`RESOURCE_USAGE_FIELDS`]
//! inside `resource_usage`), copied as the host wrote them (the result `metaclaude run
//! --json` prints); for a lifecycle event (level DEBUG, [`write_lifecycle`]) the event's
//! other members. A field is never renamed without raising [`LOG_VERSION`].

use crate::json::{write_string, Object};

/// The version of the record, written first in every line as [`LOG_VERSION_FIELD`].
pub const LOG_VERSION: u32 = 1;

/// The record's version ([`LOG_VERSION`]).
pub const LOG_VERSION_FIELD: &str = "log_version";
/// When: an execution's `finished_at`, a lifecycle event's time.
pub const TIMESTAMP_FIELD: &str = "timestamp";
/// The [`Level`].
pub const LEVEL_FIELD: &str = "level";
/// The event's kind: [`FINISHED_EVENT`] for an execution, else a lifecycle event's.
pub const EVENT_FIELD: &str = "event";
/// An execution's error category (`error_details.category`), or null.
pub const CATEGORY_FIELD: &str = "category";

/// The log's own fields, in the order written, before the event's members (a lifecycle
/// line has all but [`CATEGORY_FIELD`]).
pub const OWN_FIELDS: [&str; 5] = [
    LOG_VERSION_FIELD,
    TIMESTAMP_FIELD,
    LEVEL_FIELD,
    EVENT_FIELD,
    CATEGORY_FIELD,
];

/// The execution result's fields, in the order the host writes them, after
/// [`OWN_FIELDS`] in an execution's line.
pub const RESULT_FIELDS: [&str; 20] = [
    "execution_id",
    "script_id",
    "specialist",
    "success",
    "exit_code",
    "signal",
    "stdout",
    "stderr",
    "stdout_truncated",
    "stderr_truncated",
    "started_at",
    "finished_at",
    "attempts",
    "retries",
    "inputs",
    "session_id",
    "correlation_id",
    "user",
    "error_details",
    "resource_usage",
];

/// The fields of the result's `resource_usage`, in the order the host writes them.
pub const RESOURCE_USAGE_FIELDS: [&str; 12] = [
    "memory_start_mb",
    "memory_end_mb",
    "peak_memory_mb",
    "peak_memory_largest_process_mb",
    "cpu_time_seconds",
    "cpu_user_seconds",
    "cpu_system_seconds",
    "wall_time_seconds",
    "memory_start_source",
    "memory_end_source",
    "peak_memory_source",
    "cpu_time_source",
];

/// The [`EVENT_FIELD`] of an execution's line; every other value is a lifecycle event.
pub const FINISHED_EVENT: &str = "finished";

/// A line's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A lifecycle event (written only when the sink's level is DEBUG).
    Debug,
    /// An execution that succeeded at its first attempt.
    Info,
    /// An execution that succeeded after retries.
    Warn,
    /// An execution that failed.
    Error,
}

impl Level {
    /// The level of an execution that ended with `success` after `retries` retries.
    pub fn of_execution(success: bool, retries: u64) -> Level {
        match (success, retries) {
            (true, 0) => Level::Info,
            (true, _) => Level::Warn,
            (false, _) => Level::Error,
        }
    }

    /// The level as written (`DEBUG`, `INFO`, `WARN`, `ERROR`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// A time as every output of the host writes it, in UTC to the microsecond:
/// `2024-01-15T10:30:45.123456Z` (the host's JSON, the log's lines, the API).
pub fn timestamp(t: &chrono::DateTime<chrono::Utc>) -> String {
    TimestampText::new(t).as_str().to_string()
}

/// [`timestamp`]'s text, between quotes (a JSON string), in a buffer of its own: made
/// without `core::fmt` or the heap, as every line of the log and every time in the host's
/// JSON of an event are. A time this does not write itself (a year outside 0 to 9999, a
/// leap second) is chrono's RFC 3339 text, as it always was.
pub struct TimestampText {
    quoted: [u8; 40],
    len: usize,
}

impl TimestampText {
    /// The text of `t`.
    pub fn new(t: &chrono::DateTime<chrono::Utc>) -> TimestampText {
        use chrono::{Datelike, Timelike};
        let mut text = TimestampText {
            quoted: [b'"'; 40],
            len: 0,
        };
        let n = t.naive_utc();
        let (year, nanos) = (n.year(), n.nanosecond());
        if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
            let chrono = t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let end = (chrono.len() + 1).min(text.quoted.len() - 1);
            text.quoted[1..end].copy_from_slice(&chrono.as_bytes()[..end - 1]);
            text.len = end + 1;
            text.quoted[end] = b'"';
            return text;
        }
        // "YYYY-MM-DDTHH:MM:SS.ffffffZ", between quotes.
        let mut at = 1;
        let mut digits = |value: u32, width: u32, then: u8| {
            for i in (0..width).rev() {
                text.quoted[at] = b'0' + (value / 10u32.pow(i) % 10) as u8;
                at += 1;
            }
            text.quoted[at] = then;
            at += 1;
        };
        digits(year as u32, 4, b'-');
        digits(n.month(), 2, b'-');
        digits(n.day(), 2, b'T');
        digits(n.hour(), 2, b':');
        digits(n.minute(), 2, b':');
        digits(n.second(), 2, b'.');
        digits(nanos / 1000, 6, b'Z');
        text.quoted[at] = b'"';
        text.len = at + 1;
        text
    }

    /// The time's text.
    pub fn as_str(&self) -> &str {
        let json = self.json();
        json.get(1..json.len() - 1).unwrap_or(json)
    }

    /// The time's text between quotes.
    pub fn json(&self) -> &str {
        // Only ASCII digits and punctuation are written, or chrono's text (UTF-8) whole.
        std::str::from_utf8(&self.quoted[..self.len]).unwrap_or("null")
    }
}

/// Appends an execution's line (without its newline): the log's own fields, then the
/// members of `result_json`, the host's JSON of the result, copied as they are (validated
/// by the caller, never parsed into a tree and written again, so a large stdout costs one
/// copy). `timestamp_json` (the result's `finished_at`) and `category_json` are JSON text
/// too, as the result holds them (a string, or `null`).
pub fn write_finished(
    out: &mut String,
    timestamp_json: &str,
    level: Level,
    category_json: &str,
    result_json: &str,
) {
    let mut line = Object::new(out);
    write_finished_fields(&mut line, timestamp_json, level, category_json);
    line.end_with_members_of(result_json);
}

/// What [`write_finished`] writes before the members of a result that has some: the
/// log's own fields and the comma after them. The line is this text followed by the
/// result's JSON after its opening brace (a writer that holds that text can put this
/// in front of it instead of copying it).
pub fn write_finished_head(
    out: &mut String,
    timestamp_json: &str,
    level: Level,
    category_json: &str,
) {
    let mut line = Object::new(out);
    write_finished_fields(&mut line, timestamp_json, level, category_json);
    out.push(',');
}

/// The log's own fields of an execution's line.
fn write_finished_fields(
    line: &mut Object<'_>,
    timestamp_json: &str,
    level: Level,
    category_json: &str,
) {
    write_head(line, timestamp_json, level);
    write_string(line.key(EVENT_FIELD), FINISHED_EVENT);
    line.key(CATEGORY_FIELD).push_str(category_json);
}

/// Appends a lifecycle event's line (level DEBUG, without its newline): the log's own
/// fields, then the members of `members_json`, the event's other members as a JSON
/// object. `timestamp_json` and `event_json` (the event's kind) are JSON text.
pub fn write_lifecycle(
    out: &mut String,
    timestamp_json: &str,
    event_json: &str,
    members_json: &str,
) {
    let mut line = Object::new(out);
    write_head(&mut line, timestamp_json, Level::Debug);
    line.key(EVENT_FIELD).push_str(event_json);
    line.end_with_members_of(members_json);
}

/// The fields every line starts with.
fn write_head(line: &mut Object<'_>, timestamp_json: &str, level: Level) {
    line.integer(LOG_VERSION_FIELD, i64::from(LOG_VERSION));
    line.key(TIMESTAMP_FIELD).push_str(timestamp_json);
    line.string(LEVEL_FIELD, level.as_str());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text made without chrono's formatting is chrono's, to the microsecond, for
    /// times across the years it writes itself, and chrono's own for the others.
    #[test]
    fn timestamps_are_chronos_rfc3339_to_the_microsecond() {
        use chrono::{DateTime, TimeZone, Utc};
        let chrono = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let mut times: Vec<DateTime<Utc>> = vec![
            Utc.timestamp_opt(0, 0).unwrap(),
            Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 6, 1, 12, 0, 0).unwrap(),
            // A leap second (chrono's nanoseconds past a billion).
            Utc.timestamp_opt(1_483_228_799, 1_500_000_000).unwrap(),
            Utc.timestamp_opt(1_700_000_000, 999_999_999).unwrap(),
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let seconds = (x % 253_402_300_800) as i64 - 62_167_219_200;
            let nanos = ((x >> 20) % 1_000_000_000) as u32;
            times.push(Utc.timestamp_opt(seconds, nanos).unwrap());
        }
        for t in &times {
            let text = TimestampText::new(t);
            assert_eq!(text.as_str(), chrono(t), "{t:?}");
            assert_eq!(text.json(), format!("\"{}\"", chrono(t)));
            assert_eq!(timestamp(t), chrono(t));
        }
    }

    /// The head and then the result's members (after its brace) make the same line as
    /// `write_finished`.
    #[test]
    fn the_head_and_the_members_are_the_line() {
        let result = r#"{"execution_id":"01X","stdout":"ok\n","success":true}"#;
        let at = r#""2024-01-15T10:30:45.123456Z""#;
        for (level, category) in [(Level::Info, "null"), (Level::Error, r#""TIMEOUT""#)] {
            let (mut whole, mut head) = (String::new(), String::new());
            write_finished(&mut whole, at, level, category, result);
            write_finished_head(&mut head, at, level, category);
            assert_eq!(head + &result[1..], whole);
        }
    }

    #[test]
    fn levels_follow_success_and_retries() {
        assert_eq!(Level::of_execution(true, 0), Level::Info);
        assert_eq!(Level::of_execution(true, 2), Level::Warn);
        assert_eq!(Level::of_execution(false, 0), Level::Error);
        assert_eq!(Level::of_execution(false, 3).as_str(), "ERROR");
        assert_eq!(Level::Debug.as_str(), "DEBUG");
    }

    #[test]
    fn an_execution_line_is_the_own_fields_then_the_result_as_it_is() {
        let mut out = String::new();
        write_finished(
            &mut out,
            r#""2026-11-24T10:00:00.000000Z""#,
            Level::Warn,
            "null",
            r#"{"execution_id":"X", "stdout":"a\u0000"}"#,
        );
        assert_eq!(
            out,
            r#"{"log_version":1,"timestamp":"2026-11-24T10:00:00.000000Z","level":"WARN","event":"finished","category":null,"execution_id":"X", "stdout":"a\u0000"}"#
        );
        let mut out = String::new();
        write_lifecycle(&mut out, "null", r#""queued""#, "{}");
        assert_eq!(
            out,
            r#"{"log_version":1,"timestamp":null,"level":"DEBUG","event":"queued"}"#
        );
    }

    #[test]
    fn the_own_fields_are_written_in_their_order() {
        let mut out = String::new();
        write_finished(&mut out, "null", Level::Info, "null", "{}");
        let mut from = 0;
        for field in OWN_FIELDS {
            let quoted = format!("\"{field}\":");
            let at = out[from..].find(&quoted).expect(field) + from;
            from = at + quoted.len();
        }
    }
}
