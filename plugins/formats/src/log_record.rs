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
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
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
    write_head(&mut line, timestamp_json, level);
    write_string(line.key(EVENT_FIELD), FINISHED_EVENT);
    line.key(CATEGORY_FIELD).push_str(category_json);
    line.end_with_members_of(result_json);
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
