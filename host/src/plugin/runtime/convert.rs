//! The host's event model (`crate::model`) as the WIT records plugins receive, and alerts
//! back: one module per published WIT version. Field for field: a change to one side is a
//! change to both. The records every version shares are converted by one body of code
//! (`event_records!`, and `alert_records!` for the alert of 0.2.0 on), expanded once per
//! version.

use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};

use crate::model::{
    Alert, AlertStatus, AttemptSummary, ErrorCategory, ErrorDetails, ExecutionEvent,
    ExecutionResult, LifecycleKind, MeasurementSource, ResourceUsage, Severity,
};

/// Which record of an event a plugin receives, as its manifest asks: the `json` filled
/// (`event_json`, and then the record's outputs left empty: they cross once, in the JSON),
/// the outputs in the record (`event_output`), or neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Bare = 0,
    WithOutput = 1,
    WithJson = 2,
}

impl Shape {
    pub fn of(event_json: bool, event_output: bool) -> Shape {
        match (event_json, event_output) {
            (true, _) => Shape::WithJson,
            (false, true) => Shape::WithOutput,
            (false, false) => Shape::Bare,
        }
    }
}

/// One event's records, converted at most once for each WIT version and [`Shape`], by
/// the first worker whose plugin needs that one, and shared by every plugin receiving it
/// (their instances copy it into their own memories when called): five plugins of one
/// version cost one conversion, not five deep copies.
#[derive(Default)]
pub struct SharedRecords {
    v0_1: [OnceLock<Box<crate::plugin::runtime::bindings::v0_1::types::Event>>; 3],
    v0_2: [OnceLock<Box<crate::plugin::runtime::bindings::v0_2::types::Event>>; 3],
    v0_3: [OnceLock<Box<crate::plugin::runtime::bindings::v0_3::types::Event>>; 3],
    v0_4: [OnceLock<Box<crate::plugin::runtime::bindings::v0_4::types::Event>>; 3],
}

/// The conversions of the records every version has the same, against the `wit` module in
/// scope where it is expanded; `$version` is the version's slot in [`SharedRecords`].
macro_rules! event_records {
    ($version:ident) => {
        /// The event's record of this version in `shape`, converted once and kept in
        /// `records` for the other plugins receiving it; `json` gives the event's JSON.
        pub fn shared<'d>(
            records: &'d SharedRecords,
            e: &ExecutionEvent,
            json: impl FnOnce() -> &'d str,
            shape: Shape,
        ) -> &'d wit::Event {
            records.$version[shape as usize].get_or_init(|| {
                Box::new(match shape {
                    Shape::WithJson => event(e, Some(json()), false),
                    Shape::WithOutput => event(e, None, true),
                    Shape::Bare => event(e, None, false),
                })
            })
        }

        pub fn datetime(t: &DateTime<Utc>) -> wit::Datetime {
            wit::Datetime {
                seconds: t.timestamp(),
                nanoseconds: t.timestamp_subsec_nanos(),
            }
        }

        pub fn from_datetime(t: &wit::Datetime) -> DateTime<Utc> {
            Utc.timestamp_opt(t.seconds, t.nanoseconds.min(999_999_999))
                .single()
                .unwrap_or_else(Utc::now)
        }

        fn category(c: ErrorCategory) -> wit::ErrorCategory {
            match c {
                ErrorCategory::Timeout => wit::ErrorCategory::Timeout,
                ErrorCategory::Validation => wit::ErrorCategory::Validation,
                ErrorCategory::Dependency => wit::ErrorCategory::Dependency,
                ErrorCategory::Execution => wit::ErrorCategory::Execution,
                ErrorCategory::Permission => wit::ErrorCategory::Permission,
                ErrorCategory::Resource => wit::ErrorCategory::Resource,
                ErrorCategory::Unknown => wit::ErrorCategory::Unknown,
            }
        }

        fn source(s: MeasurementSource) -> wit::MeasurementSource {
            match s {
                MeasurementSource::Cgroup => wit::MeasurementSource::Cgroup,
                MeasurementSource::Rusage => wit::MeasurementSource::Rusage,
                MeasurementSource::Sampling => wit::MeasurementSource::Sampling,
                MeasurementSource::None => wit::MeasurementSource::None,
            }
        }

        fn kind(k: LifecycleKind) -> wit::LifecycleKind {
            match k {
                LifecycleKind::Queued => wit::LifecycleKind::Queued,
                LifecycleKind::Started => wit::LifecycleKind::Started,
                LifecycleKind::AttemptFailed => wit::LifecycleKind::AttemptFailed,
                LifecycleKind::RetryScheduled => wit::LifecycleKind::RetryScheduled,
                LifecycleKind::Finished => wit::LifecycleKind::Finished,
            }
        }

        fn error_details(e: &ErrorDetails) -> wit::ErrorDetails {
            wit::ErrorDetails {
                category: category(e.category),
                message: e.message.clone(),
                context: wit::ExecutionContext {
                    script_id: e.context.script_id.clone(),
                    script_path: e.context.script_path.clone(),
                    specialist: e.context.specialist.clone(),
                    exit_code: e.context.exit_code,
                    signal: e.context.signal.clone(),
                    attempt: e.context.attempt,
                    extra: e
                        .context
                        .extra
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                },
                suggestions: e.suggestions.clone(),
                stack_trace: e.stack_trace.clone(),
            }
        }

        fn usage(u: &ResourceUsage) -> wit::ResourceUsage {
            wit::ResourceUsage {
                memory_start_mb: u.memory_start_mb,
                memory_end_mb: u.memory_end_mb,
                peak_memory_mb: u.peak_memory_mb,
                peak_memory_largest_process_mb: u.peak_memory_largest_process_mb,
                cpu_time_seconds: u.cpu_time_seconds,
                cpu_user_seconds: u.cpu_user_seconds,
                cpu_system_seconds: u.cpu_system_seconds,
                wall_time_seconds: u.wall_time_seconds,
                memory_start_source: source(u.memory_start_source),
                memory_end_source: source(u.memory_end_source),
                peak_memory_source: source(u.peak_memory_source),
                cpu_time_source: source(u.cpu_time_source),
            }
        }

        fn attempt(a: &AttemptSummary) -> wit::AttemptSummary {
            wit::AttemptSummary {
                attempt: a.attempt,
                started_at: datetime(&a.started_at),
                finished_at: datetime(&a.finished_at),
                success: a.success,
                exit_code: a.exit_code,
                signal: a.signal.clone(),
                category: a.category.map(category),
                message: a.message.clone(),
                wall_time_seconds: a.wall_time_seconds,
                cpu_time_seconds: a.cpu_time_seconds,
                peak_memory_mb: a.peak_memory_mb,
                delay_before_ms: a.delay_before_ms,
            }
        }

        /// The result as a WIT record; without `output`, `stdout` and `stderr` are left empty
        /// (the plugin reads them from the event's JSON, so they cross into it once, not twice).
        fn result(r: &ExecutionResult, output: bool) -> wit::ExecutionResult {
            let text = |s: &String| if output { s.clone() } else { String::new() };
            wit::ExecutionResult {
                execution_id: r.execution_id.clone(),
                script_id: r.script_id.clone(),
                specialist: r.specialist.clone(),
                success: r.success,
                exit_code: r.exit_code,
                signal: r.signal.clone(),
                stdout: text(&r.stdout),
                stderr: text(&r.stderr),
                stdout_truncated: r.stdout_truncated,
                stderr_truncated: r.stderr_truncated,
                started_at: datetime(&r.started_at),
                finished_at: datetime(&r.finished_at),
                attempts: r.attempts.iter().map(attempt).collect(),
                retries: r.retries,
                inputs: r
                    .inputs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_string()))
                    .collect(),
                session_id: r.session_id.clone(),
                correlation_id: r.correlation_id.clone(),
                user: r.user.clone(),
                error_details: r.error_details.as_ref().map(error_details),
                resource_usage: usage(&r.resource_usage),
            }
        }

        /// One event as plugins receive it; `json` is the host's serialisation, when wanted
        /// (`event_json = true`), and then carries the result's `stdout` and `stderr`, which the
        /// record leaves empty. Without `output` (`event_output = false`) the record leaves
        /// them empty too.
        pub fn event(e: &ExecutionEvent, json: Option<&str>, output: bool) -> wit::Event {
            wit::Event {
                kind: kind(e.kind),
                timestamp: datetime(&e.timestamp),
                execution_id: e.identity.execution_id.clone(),
                script_id: e.identity.script_id.clone(),
                specialist: e.identity.specialist.clone(),
                session_id: e.identity.session_id.clone(),
                correlation_id: e.identity.correlation_id.clone(),
                user: e.identity.user.clone(),
                attempt: e.attempt,
                pid: e.pid,
                error: e.error.as_ref().map(error_details),
                retry_delay_ms: e.retry_delay_ms,
                result: e
                    .result
                    .as_deref()
                    .map(|r| result(r, output && json.is_none())),
                json: json.unwrap_or_default().to_string(),
            }
        }

        fn severity(s: Severity) -> wit::Severity {
            match s {
                Severity::Warning => wit::Severity::Warning,
                Severity::Critical => wit::Severity::Critical,
            }
        }

        fn from_severity(s: wit::Severity) -> Severity {
            match s {
                wit::Severity::Warning => Severity::Warning,
                wit::Severity::Critical => Severity::Critical,
            }
        }
    };
}

/// The alert with its life cycle (0.2.0 on), against the `wit` module in scope.
macro_rules! alert_records {
    () => {
        fn status(s: AlertStatus) -> wit::AlertStatus {
            match s {
                AlertStatus::Firing => wit::AlertStatus::Firing,
                AlertStatus::Resolved => wit::AlertStatus::Resolved,
            }
        }

        pub fn alert_to_wit(a: &Alert) -> wit::Alert {
            wit::Alert {
                timestamp: datetime(&a.timestamp),
                type_: a.kind.clone(),
                severity: severity(a.severity),
                message: a.message.clone(),
                value: a.value,
                threshold: a.threshold,
                specialist: a.specialist.clone(),
                labels: pairs(&a.labels),
                status: status(a.status),
                fingerprint: a.fingerprint.clone(),
                starts_at: datetime(&a.starts_at),
                ends_at: a.ends_at.as_ref().map(datetime),
                annotations: pairs(&a.annotations),
            }
        }

        pub fn alert_from_wit(a: wit::Alert) -> Alert {
            Alert {
                timestamp: from_datetime(&a.timestamp),
                kind: a.type_,
                severity: from_severity(a.severity),
                message: a.message,
                value: a.value,
                threshold: a.threshold,
                specialist: a.specialist,
                labels: a.labels.into_iter().collect(),
                status: match a.status {
                    wit::AlertStatus::Firing => AlertStatus::Firing,
                    wit::AlertStatus::Resolved => AlertStatus::Resolved,
                },
                fingerprint: a.fingerprint,
                starts_at: from_datetime(&a.starts_at),
                ends_at: a.ends_at.as_ref().map(from_datetime),
                annotations: a.annotations.into_iter().collect(),
                silenced_by: Vec::new(),
                inhibited_by: Vec::new(),
            }
        }
    };
}

/// `metaclaude:monitor@0.4.0`: the records of 0.2.0.
pub mod v0_4 {
    use super::*;
    use crate::plugin::runtime::bindings::v0_4::types as wit;

    event_records!(v0_4);
    alert_records!();
}

/// `metaclaude:monitor@0.3.0`: the records of 0.2.0.
pub mod v0_3 {
    use super::*;
    use crate::plugin::runtime::bindings::v0_3::types as wit;

    event_records!(v0_3);
    alert_records!();
}

/// `metaclaude:monitor@0.2.0`.
pub mod v0_2 {
    use super::*;
    use crate::plugin::runtime::bindings::v0_2::types as wit;

    event_records!(v0_2);
    alert_records!();
}

/// `metaclaude:monitor@0.1.0`: its alert has no life cycle. A resolved alert reaches a
/// 0.1.0 notifier with the label `status=resolved`; an alert from a 0.1.0 rule is firing,
/// started when it was raised (the host resolves it when it is not raised again).
pub mod v0_1 {
    use super::*;
    use crate::plugin::runtime::bindings::v0_1::types as wit;

    event_records!(v0_1);

    pub fn alert_to_wit(a: &Alert) -> wit::Alert {
        let mut labels = pairs(&a.labels);
        if a.status == AlertStatus::Resolved {
            labels.push(("status".into(), "resolved".into()));
        }
        wit::Alert {
            timestamp: datetime(&a.timestamp),
            type_: a.kind.clone(),
            severity: severity(a.severity),
            message: a.message.clone(),
            value: a.value,
            threshold: a.threshold,
            specialist: a.specialist.clone(),
            labels,
        }
    }

    pub fn alert_from_wit(a: wit::Alert) -> Alert {
        let timestamp = from_datetime(&a.timestamp);
        Alert {
            timestamp,
            kind: a.type_,
            severity: from_severity(a.severity),
            message: a.message,
            value: a.value,
            threshold: a.threshold,
            specialist: a.specialist,
            labels: a.labels.into_iter().collect(),
            status: AlertStatus::Firing,
            fingerprint: String::new(),
            starts_at: timestamp,
            ends_at: None,
            annotations: Default::default(),
            silenced_by: Vec::new(),
            inhibited_by: Vec::new(),
        }
    }
}

fn pairs(m: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::v0_3::event;
    use super::{v0_2, v0_3, Shape, SharedRecords};
    use crate::model::{ExecutionEvent, ExecutionResult};

    /// A plugin that reads the JSON gets the script's output once, in the JSON; the others
    /// get it in the record.
    #[test]
    fn output_crosses_once() {
        let mut r = ExecutionResult::new("01X", "hello", Utc::now());
        r.stdout = "out".into();
        r.stderr = "err".into();
        let e = ExecutionEvent::finished(r);
        let json = serde_json::to_string(&e).unwrap();
        let with_json = event(&e, Some(&json), true);
        let record = with_json.result.unwrap();
        assert_eq!((record.stdout.as_str(), record.stderr.as_str()), ("", ""));
        assert!(with_json.json.contains("\"stdout\":\"out\""));
        let plain = event(&e, None, true).result.unwrap();
        assert_eq!(
            (plain.stdout.as_str(), plain.stderr.as_str()),
            ("out", "err")
        );
        let counting = event(&e, None, false).result.unwrap();
        assert_eq!(
            (counting.stdout.as_str(), counting.stderr.as_str()),
            ("", "")
        );
    }

    /// Plugins of one version that ask for the same shape share one record, converted
    /// once; another shape or version is its own record.
    #[test]
    fn an_event_is_converted_once_per_version_and_shape() {
        let mut r = ExecutionResult::new("01X", "hello", Utc::now());
        r.stdout = "out".into();
        let e = ExecutionEvent::finished(r);
        let json = serde_json::to_string(&e).unwrap();
        let records = SharedRecords::default();
        let asked = std::cell::Cell::new(0);
        let json_once = || {
            asked.set(asked.get() + 1);
            json.as_str()
        };
        let first = v0_3::shared(&records, &e, json_once, Shape::WithJson);
        let again = v0_3::shared(&records, &e, json_once, Shape::WithJson);
        assert!(std::ptr::eq(first, again), "the same record, not a copy");
        assert_eq!(asked.get(), 1, "the JSON is asked for once");
        assert_eq!(first.json, json);
        let output = v0_3::shared(&records, &e, json_once, Shape::WithOutput);
        assert_eq!(output.result.as_ref().unwrap().stdout, "out");
        assert!(output.json.is_empty());
        let bare = v0_3::shared(&records, &e, json_once, Shape::Bare);
        assert!(bare.result.as_ref().unwrap().stdout.is_empty());
        let older = v0_2::shared(&records, &e, json_once, Shape::WithJson);
        assert_eq!(older.json, json);
        assert_eq!(asked.get(), 2, "each version converts its own");
    }
}
