//! The execution log sink: writes one JSON object per line for each finished execution
//! (and, at level DEBUG, for each lifecycle event) into the directory it is granted.
//!
//! The line format is `metaclaude_formats::log_record`'s (the log's own fields, then the
//! host's execution result as it wrote it); this crate decides what goes in a line
//! ([`finished_line`], [`lifecycle_line`]) and writes the lines to files ([`writer`]). Its
//! component glue (`plugin`, feature `plugin`) hands them the events; without it the
//! crate builds natively (its tests, the host's benchmark of the default set's work).

#[cfg(feature = "plugin")]
mod plugin;
pub mod writer;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use metaclaude_formats::log_record::{self, Level};
use metaclaude_formats::record_parser;
use metaclaude_plugin_sdk::config::Table;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use writer::Policy;

/// The keys of the `[config]` table.
const KEYS: &[&str] = &[
    "level",
    "rotation_size_mb",
    "rotation_size_bytes",
    "retention_days",
    "max_total_mb",
    "compress",
    "grace_seconds",
    "dir",
];

/// Reads the `[config]` table.
pub fn parse_config(json: &str) -> Result<(Policy, bool, String), String> {
    let table = Table::parse(json, KEYS)?;
    let mut policy = Policy::default();
    let mut debug = false;
    let mut dir = "/logs".to_string();
    let whole_up_to = |key, max: u64| {
        table
            .whole(key, 0, max)
            .map_err(|past_max| match table.value(key) {
                Some(serde_json::Value::Number(n)) if n.as_u64().is_some() => past_max,
                _ => table.expected(key, "a whole number"),
            })
    };
    let whole = |key| whole_up_to(key, u64::MAX);
    // Sizes in MiB and days are bounded so that bytes and the day count fit their types.
    let mib = |key| whole_up_to(key, u64::MAX >> 20);
    let levels = "DEBUG, INFO, WARN or ERROR";
    let level = table
        .string("level")
        .map_err(|_| table.expected("level", levels))?;
    if let Some(level) = level {
        debug = match level.to_ascii_uppercase().as_str() {
            "DEBUG" => true,
            "INFO" | "WARN" | "ERROR" => false,
            _ => return Err(table.expected("level", levels)),
        };
    }
    // Both given: the size in MiB wins (as it did when the keys were read in the order
    // the host sends them, sorted).
    if let Some(bytes) = whole("rotation_size_bytes")? {
        policy.rotation_size_bytes = bytes.max(1);
    }
    if let Some(mb) = mib("rotation_size_mb")? {
        policy.rotation_size_bytes = mb.max(1) * 1024 * 1024;
    }
    if let Some(days) = whole_up_to("retention_days", u32::MAX.into())? {
        policy.retention_days = days as u32;
    }
    if let Some(mb) = mib("max_total_mb")? {
        policy.max_total_bytes = (mb > 0).then_some(mb * 1024 * 1024);
    }
    if let Some(seconds) = whole("grace_seconds")? {
        policy.grace = std::time::Duration::from_secs(seconds.max(1));
    }
    if let Some(compress) = table.boolean("compress")? {
        policy.compress = compress;
    }
    if let Some(path) = table
        .string("dir")
        .map_err(|_| table.expected("dir", "a path"))?
    {
        dir = path;
    }
    Ok((policy, debug, dir))
}

/// The log line of a `finished` event, from the host's JSON of the event and the figures
/// of its result a line's head takes: when it finished, whether it succeeded, its retries
/// and its error category's upper-case name (`TIMEOUT`), if it failed.
///
/// The line is the host's JSON of the result with the log's fields put in front
/// (`log_record::write_finished`): the result's text is copied as it is (never parsed
/// into a tree and serialised again), so a stdout costs one copy at most (none from
/// [`IN_PLACE_FROM`] bytes on: [`FinishedLine::in_place`]). The JSON is read
/// only up to the result, whose text runs to the closing brace because the host writes it
/// last (`record_parser::last_member`, the fast reader the host queries the log with).
pub fn finished_line<'a>(
    event_json: &'a str,
    finished_at: DateTime<Utc>,
    success: bool,
    retries: u32,
    category: Option<&'a str>,
) -> Result<FinishedLine<'a>, String> {
    // The host writes `result` last (WIT `event.json`): its text runs to the closing brace
    // and is taken without being read through. Otherwise the fast reader checks the JSON as
    // serde_json does; what it cannot tell, serde_json reads (and says what is wrong).
    let result_json = match record_parser::last_member(event_json, "result") {
        Some(raw) => Some(raw),
        None => match record_parser::raw_member(event_json, "result") {
            Some(raw) => raw,
            None => serde_json::from_str::<EventResult>(event_json)
                .map_err(|e| format!("event JSON from the host: {e}"))?
                .result
                .map(RawValue::get),
        },
    }
    .ok_or_else(|| "finished event without a result in its JSON".to_string())?;
    Ok(FinishedLine {
        timestamp: log_record::TimestampText::new(&finished_at),
        level: Level::of_execution(success, retries.into()),
        category,
        result_json,
    })
}

/// A `finished` event's line, checked and ready to be written where it goes (the log
/// writer's queue: the result's text is copied once, there, or not at all when the line is
/// made in place).
pub struct FinishedLine<'a> {
    timestamp: log_record::TimestampText,
    level: Level,
    category: Option<&'a str>,
    result_json: &'a str,
}

/// The result's text from which a line is made in place in the event's JSON instead of
/// copied ([`FinishedLine::in_place`]): a line this long is appended alone anyway, and
/// copying it was a tenth of the sink's time with 1 MiB outputs.
pub const IN_PLACE_FROM: usize = writer::APPEND_CHUNK;

impl FinishedLine<'_> {
    /// Appends the line (without its newline) to `out`.
    pub fn write(&self, out: &mut String) {
        out.reserve(self.result_json.len() + 128);
        log_record::write_finished(
            out,
            self.timestamp.json(),
            self.level,
            &self.category_json(),
            self.result_json,
        );
    }

    /// The error category as the line holds it: a JSON string, or `null`.
    fn category_json(&self) -> Cow<'static, str> {
        match self.category {
            Some(c) => Cow::Owned(format!("\"{c}\"")),
            None => Cow::Borrowed("null"),
        }
    }

    /// For a result of at least [`IN_PLACE_FROM`] bytes, the last member of `event_json`
    /// (the text this line was read from) with members: the line's head
    /// (`log_record::write_finished_head`) and where the result's members begin in
    /// `event_json`, when the head fits in the text before them. [`line_in_place`] then
    /// makes the line there.
    pub fn in_place(&self, event_json: &str) -> Option<(String, usize)> {
        let result = self.result_json;
        if result.len() < IN_PLACE_FROM {
            return None;
        }
        // `result` is a slice of `event_json` (the reader's): its place is its address's.
        let at = (result.as_ptr() as usize).checked_sub(event_json.as_ptr() as usize)?;
        let members_at = at + 1;
        let inside = event_json
            .get(at..at + result.len())
            .is_some_and(|there| std::ptr::eq(there, result));
        let last_member = inside && at + result.len() + 1 == event_json.len();
        let last_member = last_member && event_json.ends_with('}');
        if !last_member || !result.starts_with('{') || result.len() < 3 {
            return None;
        }
        let mut head = String::with_capacity(160);
        log_record::write_finished_head(
            &mut head,
            self.timestamp.json(),
            self.level,
            &self.category_json(),
        );
        (head.len() <= members_at).then_some((head, members_at))
    }
}

/// The line [`FinishedLine::in_place`] found room for, made in `event_json` itself: the
/// text before the result's members becomes spaces and then the head, and the event's
/// closing brace the line's newline. Returns the text and where the line begins in it
/// (`LogWriter::append_in_place`); nothing is copied but the head.
pub fn line_in_place(mut event_json: String, head: &str, members_at: usize) -> (String, usize) {
    let start = members_at - head.len();
    let mut front = String::with_capacity(members_at);
    front.extend(std::iter::repeat_n(' ', start));
    front.push_str(head);
    // The same length: replaced where it is, the rest not moved.
    event_json.replace_range(..members_at, &front);
    event_json.pop();
    event_json.push('\n');
    (event_json, start)
}

/// A DEBUG line for a lifecycle event other than `finished` (rare: only at level DEBUG).
pub fn lifecycle_line(event_json: &str) -> Result<(String, DateTime<Utc>), String> {
    let mut event: Map<String, Value> =
        serde_json::from_str(event_json).map_err(|e| format!("event JSON from the host: {e}"))?;
    let kind = event.remove("kind").unwrap_or(Value::Null).to_string();
    let timestamp = event.remove("timestamp").unwrap_or(Value::Null).to_string();
    let mut line = String::new();
    log_record::write_lifecycle(
        &mut line,
        &timestamp,
        &kind,
        &Value::Object(event).to_string(),
    );
    Ok((line, parse_time(&timestamp)))
}

/// A JSON string holding an RFC 3339 time, or now.
fn parse_time(json: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(json.trim_matches('"'))
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|_| Utc::now())
}

/// What a line needs of a `finished` event's JSON: the result's text as it is.
#[derive(Deserialize)]
struct EventResult<'a> {
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
}

#[cfg(test)]
mod tests {
    use metaclaude_plugin_sdk::testing::manifest_config_json;

    use super::*;

    /// A long result's line made in place in the event's JSON is the line `write`
    /// makes, whatever the text before the result holds (here a user whose name ends in
    /// a two-byte character right where the head begins, and one in four bytes), for a
    /// success and a failure; a short result is copied as before.
    #[test]
    fn a_long_line_made_in_place_is_the_line_written() {
        let at: DateTime<Utc> = "2026-12-07T10:23:05.840989Z".parse().unwrap();
        let stdout = "é✓😀 \\\"x\\n".repeat(IN_PLACE_FROM / 8);
        for (user, success, category) in [
            ("zoé", true, None),
            ("😀😀", false, Some("TIMEOUT")),
            (&*"é".repeat(40), false, Some("EXECUTION")),
        ] {
            let result = format!(
                r#"{{"execution_id":"01X","script_id":"deploy","stdout":"{stdout}","success":{success}}}"#
            );
            let event = format!(
                r#"{{"kind":"finished","timestamp":"2026-12-07T10:23:05.840989Z","execution_id":"01X","script_id":"deploy","user":"{user}","attempt":1,"result":{result}}}"#
            );
            let line = finished_line(&event, at, success, 0, category).unwrap();
            let mut written = String::new();
            line.write(&mut written);
            written.push('\n');
            let (head, members_at) = line.in_place(&event).expect("room for the head");
            let (text, start) = line_in_place(event.clone(), &head, members_at);
            assert_eq!(&text[start..], written, "{user}");
            assert!(text[..start].bytes().all(|b| b == b' '));
            assert_eq!(text.len(), event.len(), "made where it was");
        }
        let short = r#"{"kind":"finished","result":{"success":true}}"#;
        let line = finished_line(short, at, true, 0, None).unwrap();
        assert!(line.in_place(short).is_none(), "a short line is copied");
    }

    #[test]
    fn the_manifest_config_parses_to_the_defaults() {
        let json = manifest_config_json(include_str!("../plugin.toml"));
        let defaults = (Policy::default(), false, "/logs".to_string());
        assert_eq!(parse_config(&json).unwrap(), defaults, "{json}");
        assert_eq!(parse_config("{}").unwrap(), defaults);
    }

    #[test]
    fn config_is_checked() {
        assert!(parse_config(r#"{"level":"INFO","rotation_size_mb":"5"}"#).is_ok());
        let err = parse_config(r#"{"levle":"INFO"}"#).unwrap_err();
        assert!(err.starts_with("config.levle: unknown key"), "{err}");
        assert!(parse_config(r#"{"level":"LOUD"}"#).is_err());
        // Sizes and days past what their bytes and day count hold are refused, naming the
        // bound (they overflowed: a panic in a debug build, a wrapped size in the component).
        for (key, max) in [
            ("rotation_size_mb", "17592186044415"),
            ("max_total_mb", "17592186044415"),
            ("retention_days", "4294967295"),
        ] {
            let err = parse_config(&format!(r#"{{"{key}":18446744073709551615}}"#)).unwrap_err();
            let want = format!("config.{key}: expected a whole number from 0 to {max}, found ");
            assert!(err.starts_with(&want), "{err}");
            assert!(
                parse_config(&format!(r#"{{"{key}":{max}}}"#)).is_ok(),
                "{key}"
            );
        }
        let err = parse_config(r#"{"rotation_size_mb":"lots"}"#).unwrap_err();
        assert_eq!(
            err,
            r#"config.rotation_size_mb: expected a whole number, found "lots""#
        );
        let (policy, _, _) = parse_config(r#"{"grace_seconds":0}"#).unwrap();
        assert_eq!(
            policy.grace,
            std::time::Duration::from_secs(1),
            "at least a second"
        );
    }
}
