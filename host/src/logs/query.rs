//! Which lines a query wants: a byte scan that rejects most lines unparsed, then a parse of
//! only the fields a filter or the statistics need.

use std::borrow::Cow;

use memchr::memmem::Finder;
use metaclaude_formats::log_record::{self, Level};

/// The fields of a log line the query reads, defined with the log's summaries
/// (`metaclaude_formats::log_summary`) so that a summary counts exactly what a full read
/// counts. A test checks each field's name against the record's, and that every field of
/// the record is read here or named as skipped.
pub use metaclaude_formats::log_summary::{Record, Usage};

/// The record of an execution held in memory (a server's recent executions), so that one
/// [`Matcher`] and one statistics code serve the log and the memory alike.
pub fn record_of(r: &crate::model::ExecutionResult) -> Record<'_> {
    let level = Level::of_execution(r.success, u64::from(r.retries));
    Record {
        timestamp: Some(Cow::Owned(crate::model::timestamp::format(&r.finished_at))),
        started_at: Some(Cow::Owned(crate::model::timestamp::format(&r.started_at))),
        level: Some(Cow::Borrowed(level.as_str())),
        event: Some(Cow::Borrowed(log_record::FINISHED_EVENT)),
        category: r.category().map(|c| Cow::Borrowed(c.as_str())),
        execution_id: Some(Cow::Borrowed(&r.execution_id)),
        script_id: Some(Cow::Borrowed(&r.script_id)),
        specialist: r.specialist.as_deref().map(Cow::Borrowed),
        user: r.user.as_deref().map(Cow::Borrowed),
        session_id: r.session_id.as_deref().map(Cow::Borrowed),
        correlation_id: r.correlation_id.as_deref().map(Cow::Borrowed),
        success: Some(r.success),
        exit_code: r.exit_code.map(i64::from),
        retries: Some(u64::from(r.retries)),
        resource_usage: Some(Usage {
            wall_time_seconds: r.resource_usage.wall_time_seconds,
            peak_memory_mb: r.resource_usage.peak_memory_mb,
            cpu_time_seconds: r.resource_usage.cpu_time_seconds,
        }),
    }
}

/// The record filters of `metaclaude logs`, with time bounds as log timestamp text.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Only failed executions (`success` false).
    pub failed: bool,
    /// Only the execution of this id.
    pub execution_id: Option<String>,
    /// Only this specialist's executions (exact match, as every text filter here).
    pub specialist: Option<String>,
    /// Only this script's executions (its registry id).
    pub script: Option<String>,
    /// Only failures of this error category, in any case (`timeout` finds `TIMEOUT`).
    pub category: Option<String>,
    /// Only executions this user asked for.
    pub user: Option<String>,
    /// Only executions of this session id.
    pub session: Option<String>,
    /// Only executions of this correlation id.
    pub correlation_id: Option<String>,
    /// Finished at or after this time (inclusive), as log timestamp text
    /// ([`dates::bound_text`](super::dates::bound_text)).
    pub start: Option<String>,
    /// Finished before this time (exclusive), as log timestamp text.
    pub end: Option<String>,
}

/// A [`Filter`] ready to run: the exact-value filters become byte patterns that every
/// matching line must contain (their JSON text, quotes included, as serde_json writes it),
/// so most non-matching lines are rejected by a SIMD scan without being parsed.
pub struct Matcher {
    filter: Filter,
    needles: Vec<Finder<'static>>,
}

impl Matcher {
    /// Prepares `filter`'s byte patterns (the category upper-cased, as the log writes it).
    pub fn new(mut filter: Filter) -> Matcher {
        // Categories are written in upper case; the byte scan needs the written form.
        filter.category = filter.category.map(|c| c.to_ascii_uppercase());
        let values = [
            &filter.execution_id,
            &filter.specialist,
            &filter.script,
            &filter.category,
            &filter.user,
            &filter.session,
            &filter.correlation_id,
        ];
        let mut needles: Vec<Finder<'static>> = values
            .into_iter()
            .flatten()
            .map(|v| {
                let text = serde_json::to_string(v).expect("a string serialises");
                Finder::new(text.as_bytes()).into_owned()
            })
            .collect();
        if filter.failed {
            needles.push(Finder::new(b"false").into_owned());
        }
        // The rarest pattern first would be best; the longest is a fair guess.
        needles.sort_by_key(|n| std::cmp::Reverse(n.needle().len()));
        Matcher { filter, needles }
    }

    /// Whether every record matches (no filter at all), so that callers may skip the check.
    pub fn matches_everything(&self) -> bool {
        self.needles.is_empty() && self.filter.start.is_none() && self.filter.end.is_none()
    }

    /// Cheap pre-check on raw bytes: `false` means the line cannot match.
    pub fn may_match(&self, line: &[u8]) -> bool {
        self.needles.iter().all(|n| n.find(line).is_some())
    }

    /// The full check on a parsed execution record.
    pub fn matches(&self, r: &Record<'_>) -> bool {
        let f = &self.filter;
        let eq = |want: &Option<String>, have: &Option<Cow<'_, str>>| match want {
            None => true,
            Some(w) => have.as_deref() == Some(w.as_str()),
        };
        if f.failed && r.success != Some(false) {
            return false;
        }
        if !(eq(&f.execution_id, &r.execution_id)
            && eq(&f.specialist, &r.specialist)
            && eq(&f.script, &r.script_id)
            && eq(&f.user, &r.user)
            && eq(&f.session, &r.session_id)
            && eq(&f.correlation_id, &r.correlation_id))
        {
            return false;
        }
        if let Some(c) = &f.category {
            if !r
                .category
                .as_deref()
                .is_some_and(|have| have.eq_ignore_ascii_case(c))
            {
                return false;
            }
        }
        if f.start.is_some() || f.end.is_some() {
            let Some(ts) = r.timestamp.as_deref() else {
                return false;
            };
            let ts = normalise_timestamp(ts);
            if f.start.as_deref().is_some_and(|s| ts.as_ref() < s) {
                return false;
            }
            if f.end.as_deref().is_some_and(|e| ts.as_ref() >= e) {
                return false;
            }
        }
        true
    }
}

/// Timestamps in the canonical shape compare as text; anything else (another writer's
/// offset or precision) is parsed and rewritten into that shape first.
fn normalise_timestamp(ts: &str) -> Cow<'_, str> {
    let canonical = ts.len() == 27 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.';
    if canonical {
        return Cow::Borrowed(ts);
    }
    match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(t) => Cow::Owned(crate::model::timestamp::format(
            &t.with_timezone(&chrono::Utc),
        )),
        Err(_) => Cow::Borrowed(ts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    const LINE: &str = r#"{"log_version":1,"timestamp":"2024-01-15T10:30:45.123456Z","level":"ERROR","event":"finished","category":"TIMEOUT","execution_id":"01H","script_id":"validate_api_schema","specialist":"api-ui-designer","success":false,"exit_code":null,"stdout":"lots \"of\" text","retries":2,"user":"ann","session_id":"s1","correlation_id":"c1","resource_usage":{"wall_time_seconds":1.5,"peak_memory_mb":20.0,"cpu_time_seconds":0.5,"memory_start_mb":1.0}}"#;

    fn check(filter: Filter) -> bool {
        let m = Matcher::new(filter);
        let r: Record = serde_json::from_str(LINE).unwrap();
        let full = m.matches(&r);
        // The byte scan may let a line through, never keep a matching one out.
        if full {
            assert!(m.may_match(LINE.as_bytes()));
        }
        full
    }

    #[test]
    fn parses_only_what_it_needs() {
        let r: Record = serde_json::from_str(LINE).unwrap();
        assert!(r.is_execution());
        assert_eq!(r.script_id.as_deref(), Some("validate_api_schema"));
        assert_eq!(r.usage().wall_time_seconds, 1.5);
        assert_eq!(r.retries, Some(2));
    }

    #[test]
    fn filters() {
        assert!(check(Filter::default()));
        assert!(check(Filter {
            failed: true,
            ..Default::default()
        }));
        assert!(check(Filter {
            specialist: Some("api-ui-designer".into()),
            ..Default::default()
        }));
        assert!(!check(Filter {
            specialist: Some("api".into()),
            ..Default::default()
        }));
        assert!(check(Filter {
            category: Some("timeout".into()),
            ..Default::default()
        }));
        assert!(!check(Filter {
            user: Some("bob".into()),
            ..Default::default()
        }));
        assert!(check(Filter {
            start: Some("2024-01-15T10:30:45.123456Z".into()),
            end: Some("2024-01-15T10:30:45.123457Z".into()),
            ..Default::default()
        }));
        assert!(!check(Filter {
            end: Some("2024-01-15T10:30:45.123456Z".into()),
            ..Default::default()
        }));
        let m = Matcher::new(Filter {
            script: Some("other".into()),
            ..Default::default()
        });
        assert!(!m.may_match(LINE.as_bytes()));
    }

    /// The record's fields [`Record`] does not read (the parser skips them unbuilt), as a
    /// set (sorted).
    const SKIPPED: [&str; 10] = [
        "attempts",
        "error_details",
        "finished_at",
        "inputs",
        "log_version",
        "signal",
        "stderr",
        "stderr_truncated",
        "stdout",
        "stdout_truncated",
    ];
    /// The figures of `resource_usage` [`Usage`] does not read, as a set (sorted).
    const USAGE_SKIPPED: [&str; 9] = [
        "cpu_system_seconds",
        "cpu_time_source",
        "cpu_user_seconds",
        "memory_end_mb",
        "memory_end_source",
        "memory_start_mb",
        "memory_start_source",
        "peak_memory_largest_process_mb",
        "peak_memory_source",
    ];

    /// The names of the fields a struct's derived `Deserialize` reads.
    fn fields_read<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
        let mut names: &'static [&'static str] = &[];
        let _ = T::deserialize(FieldNames(&mut names));
        names
    }

    /// A deserializer that only takes note of the field names a struct asks for.
    struct FieldNames<'a>(&'a mut &'static [&'static str]);

    impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(serde::de::Error::custom("names taken"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    /// `read` and `skipped` together name each of `written` once.
    fn assert_accounted_for(written: &[&str], read: &[&str], skipped: &[&str]) {
        let mut written = written.to_vec();
        let mut accounted: Vec<&str> = read.iter().chain(skipped).copied().collect();
        written.sort_unstable();
        accounted.sort_unstable();
        assert_eq!(
            accounted, written,
            "every field of the record (metaclaude_formats::log_record) is read or skipped by name"
        );
    }

    #[test]
    fn the_reader_reads_or_skips_every_field_of_the_record_by_its_shared_name() {
        let written: Vec<&str> = log_record::OWN_FIELDS
            .iter()
            .chain(&log_record::RESULT_FIELDS)
            .copied()
            .collect();
        assert_accounted_for(&written, fields_read::<Record>(), &SKIPPED);
        assert_accounted_for(
            &log_record::RESOURCE_USAGE_FIELDS,
            fields_read::<Usage>(),
            &USAGE_SKIPPED,
        );
    }

    #[test]
    fn the_host_writes_a_result_with_the_records_fields_in_their_order() {
        let r = crate::model::ExecutionResult::new("X", "s", chrono::Utc::now());
        let value = serde_json::to_value(&r).unwrap();
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(keys(&value), log_record::RESULT_FIELDS);
        assert_eq!(
            keys(&value["resource_usage"]),
            log_record::RESOURCE_USAGE_FIELDS
        );
    }

    /// A result with every optional field set, failed after retries.
    fn full_result() -> crate::model::ExecutionResult {
        use crate::model::{ErrorCategory, ErrorContext, ErrorDetails, MeasurementSource};
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-24T07:32:12.257616Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let mut r = crate::model::ExecutionResult::new("01J", "validate \"api\"", at);
        r.specialist = Some("api-ui-designer".into());
        r.user = Some("ann".into());
        r.session_id = Some("s1".into());
        r.correlation_id = Some("c1".into());
        r.success = false;
        r.exit_code = Some(-3);
        r.signal = Some("SIGKILL".into());
        r.stdout = "out\n".into();
        r.retries = 2;
        r.error_details = Some(ErrorDetails {
            category: ErrorCategory::Timeout,
            message: "too slow".into(),
            context: ErrorContext {
                script_id: r.script_id.clone(),
                script_path: "s.py".into(),
                specialist: r.specialist.clone(),
                exit_code: r.exit_code,
                signal: r.signal.clone(),
                attempt: 3,
                extra: Default::default(),
            },
            suggestions: vec!["wait".into()],
            stack_trace: None,
        });
        let u = &mut r.resource_usage;
        u.wall_time_seconds = 1.5;
        u.peak_memory_mb = 20.25;
        u.cpu_time_seconds = 0.5;
        u.memory_start_mb = 1.0;
        u.peak_memory_source = MeasurementSource::Cgroup;
        r
    }

    #[test]
    fn a_line_from_the_shared_writer_is_read_back_field_for_field() {
        let full = full_result();
        let mut quiet = crate::model::ExecutionResult::new("01K", "s", full.started_at);
        quiet.success = true;
        quiet.retries = 1;
        quiet.exit_code = Some(0);
        let mut line = String::new();
        super::super::gen::write_finished_line(&mut line, &full).unwrap();
        let read: Record = serde_json::from_str(&line).unwrap();
        let started = crate::model::timestamp::format(&full.started_at);
        let expected = Record {
            timestamp: Some("2026-11-24T07:32:12.257616Z".into()),
            started_at: Some(started.as_str().into()),
            level: Some("ERROR".into()),
            event: Some("finished".into()),
            category: Some("TIMEOUT".into()),
            execution_id: Some("01J".into()),
            script_id: Some("validate \"api\"".into()),
            specialist: Some("api-ui-designer".into()),
            user: Some("ann".into()),
            session_id: Some("s1".into()),
            correlation_id: Some("c1".into()),
            success: Some(false),
            exit_code: Some(-3),
            retries: Some(2),
            resource_usage: Some(Usage {
                wall_time_seconds: 1.5,
                peak_memory_mb: 20.25,
                cpu_time_seconds: 0.5,
            }),
        };
        assert_eq!(read, expected, "{line}");
        assert_eq!(record_of(&full), expected, "memory and the log agree");
        super::super::gen::write_finished_line(&mut line, &quiet).unwrap();
        let read: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(read, record_of(&quiet), "{line}");
        assert_eq!(read.level.as_deref(), Some("WARN"));
        assert_eq!(
            (read.category, read.specialist, read.user),
            (None, None, None),
            "{line}"
        );
    }

    #[test]
    fn other_timestamp_shapes_are_normalised() {
        assert_eq!(
            normalise_timestamp("2024-01-15T11:30:45+01:00"),
            "2024-01-15T10:30:45.000000Z"
        );
    }
}
