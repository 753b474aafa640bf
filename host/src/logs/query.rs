//! Which lines a query wants: a byte scan that rejects most lines unparsed, then a parse of
//! only the fields a filter or the statistics need.

use std::borrow::Cow;

use memchr::memmem::Finder;
use serde::Deserialize;

/// The fields of a log line the query reads. Everything else (stdout, stderr, attempts,
/// inputs, error details) is skipped by the parser without being built, and strings are
/// borrowed from the line unless they hold escapes.
#[derive(Debug, Deserialize)]
pub struct Record<'a> {
    #[serde(borrow, default)]
    pub timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub level: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub category: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub execution_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub script_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub specialist: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub user: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub session_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub correlation_id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub retries: Option<u64>,
    #[serde(default)]
    pub resource_usage: Option<Usage>,
}

/// The resource figures the statistics use.
#[derive(Debug, Default, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub wall_time_seconds: f64,
    #[serde(default)]
    pub peak_memory_mb: f64,
    #[serde(default)]
    pub cpu_time_seconds: f64,
}

impl<'a> Record<'a> {
    /// The record of an execution held in memory (a server's recent executions), so that
    /// one [`Matcher`] and one statistics code serve the log and the memory alike.
    pub fn of(r: &'a crate::model::ExecutionResult) -> Record<'a> {
        let level = match (r.success, r.retries) {
            (true, 0) => "INFO",
            (true, _) => "WARN",
            (false, _) => "ERROR",
        };
        Record {
            timestamp: Some(Cow::Owned(crate::model::timestamp::format(&r.finished_at))),
            level: Some(Cow::Borrowed(level)),
            event: Some(Cow::Borrowed("finished")),
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
}

impl Record<'_> {
    /// Execution records are `"event":"finished"`; lifecycle lines (DEBUG) are the others.
    pub fn is_execution(&self) -> bool {
        self.event.as_deref() == Some("finished")
    }

    pub fn usage(&self) -> &Usage {
        static EMPTY: Usage = Usage {
            wall_time_seconds: 0.0,
            peak_memory_mb: 0.0,
            cpu_time_seconds: 0.0,
        };
        self.resource_usage.as_ref().unwrap_or(&EMPTY)
    }
}

/// The record filters of `metaclaude logs`, with time bounds as log timestamp text.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub failed: bool,
    pub execution_id: Option<String>,
    pub specialist: Option<String>,
    pub script: Option<String>,
    pub category: Option<String>,
    pub user: Option<String>,
    pub session: Option<String>,
    pub correlation_id: Option<String>,
    /// Inclusive.
    pub start: Option<String>,
    /// Exclusive.
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

    #[test]
    fn other_timestamp_shapes_are_normalised() {
        assert_eq!(
            normalise_timestamp("2024-01-15T11:30:45+01:00"),
            "2024-01-15T10:30:45.000000Z"
        );
    }
}
