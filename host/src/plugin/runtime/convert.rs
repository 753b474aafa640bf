//! The host's event model (`crate::model`) as the WIT records plugins receive, and alerts
//! back: one module per published WIT version. Field for field: a change to one side is a
//! change to both. The records every version shares are converted by one body of code
//! (`event_records!`, and `alert_records!` for the alert of 0.2.0 on), expanded once per
//! version.

use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};

use super::lowering::{List, Text};

use crate::model::{
    Alert, AlertStatus, AttemptSummary, ErrorCategory, ErrorDetails, ExecutionEvent,
    ExecutionResult, LifecycleKind, MeasurementSource, ResourceUsage, Severity,
};

/// Which record of an event a plugin receives, as its manifest asks: the `json` filled
/// (`event_json`, and then the record's outputs left empty: they cross once, in the JSON),
/// the outputs in the record (`event_output`), or neither; and with `event_record =
/// "figures"`, only a counting plugin's fields ([`Shape::Figures`]), the JSON beside them
/// or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Bare,
    WithOutput,
    WithJson,
    Figures,
    FiguresWithJson,
}

impl Shape {
    pub fn of(event_json: bool, event_output: bool, figures: bool) -> Shape {
        match (figures, event_json, event_output) {
            (true, true, _) => Shape::FiguresWithJson,
            (true, false, _) => Shape::Figures,
            (false, true, _) => Shape::WithJson,
            (false, false, true) => Shape::WithOutput,
            (false, false, false) => Shape::Bare,
        }
    }

    /// Whether the event's JSON goes beside the record.
    pub fn with_json(self) -> bool {
        matches!(self, Shape::WithJson | Shape::FiguresWithJson)
    }

    /// Whether the plugin reads only the figures (`event_record = "figures"`), lowered
    /// straight from the event: no record is converted for it.
    pub fn figures(self) -> bool {
        matches!(self, Shape::Figures | Shape::FiguresWithJson)
    }
}

/// One event's records, converted at most once for each WIT version and [`Shape`], by
/// the first worker whose plugin needs that one, and shared by every plugin receiving it
/// (their instances copy it into their own memories when called): five plugins of one
/// version cost one conversion, not five deep copies. A plugin that takes the JSON gets
/// the `Bare` record with the delivery's JSON beside it (`with_json`): neither is copied
/// for it. A plugin that reads only the figures needs no record at all: its view is made
/// from the event itself, borrowing its two strings (see `EventRef::of`).
#[derive(Default)]
pub struct SharedRecords {
    v0_1: [OnceLock<Box<crate::plugin::runtime::bindings::v0_1::types::Event>>; 2],
    v0_2: [OnceLock<Box<crate::plugin::runtime::bindings::v0_2::types::Event>>; 2],
    v0_3: [OnceLock<Box<crate::plugin::runtime::bindings::v0_3::types::Event>>; 2],
    v0_4: [OnceLock<Box<crate::plugin::runtime::bindings::v0_4::types::Event>>; 2],
}

/// The conversions of the records every version has the same, against the `wit` module in
/// scope where it is expanded; `$version` is the version's slot in [`SharedRecords`].
macro_rules! event_records {
    ($version:ident) => {
        /// The event's full record of this version, with the outputs or without (`Bare`,
        /// and `WithJson`: they cross in the JSON, which [`EventRef`] puts beside it),
        /// converted once and kept in `records` for the other plugins receiving it. (The
        /// figures are not converted: see [`EventRef::of`].)
        pub fn shared<'d>(
            records: &'d SharedRecords,
            e: &ExecutionEvent,
            output: bool,
        ) -> &'d wit::Event {
            records.$version[usize::from(output)].get_or_init(|| Box::new(event(e, output)))
        }

        /// An event's record as it is lowered into a plugin: the fields of a record of
        /// [`shared`], borrowed, and `json` beside them (the delivery's JSON for a plugin
        /// that takes it, else the record's own, empty). The same record as `wit::Event`
        /// field for field (the component's type is checked against it at each call),
        /// lowered without copying anything first, its empty strings and lists without a
        /// call into the plugin's allocator once it has shown it needs none
        /// (`lowering`).
        #[derive(wasmtime::component::ComponentType, wasmtime::component::Lower)]
        #[component(record)]
        pub struct EventView<'a> {
            pub(crate) kind: wit::LifecycleKind,
            pub(crate) timestamp: wit::Datetime,
            #[component(name = "execution-id")]
            pub(crate) execution_id: Text<'a>,
            #[component(name = "script-id")]
            pub(crate) script_id: Text<'a>,
            pub(crate) specialist: Option<Text<'a>>,
            #[component(name = "session-id")]
            pub(crate) session_id: Option<Text<'a>>,
            #[component(name = "correlation-id")]
            pub(crate) correlation_id: Option<Text<'a>>,
            pub(crate) user: Option<Text<'a>>,
            pub(crate) attempt: u32,
            pub(crate) pid: Option<u32>,
            pub(crate) error: Option<ErrorView<'a>>,
            #[component(name = "retry-delay-ms")]
            pub(crate) retry_delay_ms: Option<u64>,
            pub(crate) result: Option<ResultView<'a>>,
            pub(crate) json: Text<'a>,
        }

        /// `wit::ExecutionResult`, borrowed (see [`EventView`]).
        #[derive(wasmtime::component::ComponentType, wasmtime::component::Lower)]
        #[component(record)]
        pub struct ResultView<'a> {
            #[component(name = "execution-id")]
            pub(crate) execution_id: Text<'a>,
            #[component(name = "script-id")]
            pub(crate) script_id: Text<'a>,
            pub(crate) specialist: Option<Text<'a>>,
            pub(crate) success: bool,
            #[component(name = "exit-code")]
            pub(crate) exit_code: Option<i32>,
            pub(crate) signal: Option<Text<'a>>,
            pub(crate) stdout: Text<'a>,
            pub(crate) stderr: Text<'a>,
            #[component(name = "stdout-truncated")]
            pub(crate) stdout_truncated: bool,
            #[component(name = "stderr-truncated")]
            pub(crate) stderr_truncated: bool,
            #[component(name = "started-at")]
            pub(crate) started_at: wit::Datetime,
            #[component(name = "finished-at")]
            pub(crate) finished_at: wit::Datetime,
            pub(crate) attempts: List<'a, wit::AttemptSummary>,
            pub(crate) retries: u32,
            pub(crate) inputs: List<'a, (String, String)>,
            #[component(name = "session-id")]
            pub(crate) session_id: Option<Text<'a>>,
            #[component(name = "correlation-id")]
            pub(crate) correlation_id: Option<Text<'a>>,
            pub(crate) user: Option<Text<'a>>,
            #[component(name = "error-details")]
            pub(crate) error_details: Option<ErrorView<'a>>,
            #[component(name = "resource-usage")]
            pub(crate) resource_usage: wit::ResourceUsage,
        }

        /// `wit::ErrorDetails`, borrowed (see [`EventView`]).
        #[derive(wasmtime::component::ComponentType, wasmtime::component::Lower)]
        #[component(record)]
        pub struct ErrorView<'a> {
            pub(crate) category: wit::ErrorCategory,
            pub(crate) message: Text<'a>,
            pub(crate) context: ContextView<'a>,
            pub(crate) suggestions: List<'a, String>,
            #[component(name = "stack-trace")]
            pub(crate) stack_trace: Option<Text<'a>>,
        }

        /// `wit::ExecutionContext`, borrowed (see [`EventView`]).
        #[derive(wasmtime::component::ComponentType, wasmtime::component::Lower)]
        #[component(record)]
        pub struct ContextView<'a> {
            #[component(name = "script-id")]
            pub(crate) script_id: Text<'a>,
            #[component(name = "script-path")]
            pub(crate) script_path: Text<'a>,
            pub(crate) specialist: Option<Text<'a>>,
            #[component(name = "exit-code")]
            pub(crate) exit_code: Option<i32>,
            pub(crate) signal: Option<Text<'a>>,
            pub(crate) attempt: u32,
            pub(crate) extra: List<'a, (String, String)>,
        }

        fn text(s: &Option<String>) -> Option<Text<'_>> {
            s.as_deref().map(Text)
        }

        fn error_view(e: &wit::ErrorDetails) -> ErrorView<'_> {
            let c = &e.context;
            ErrorView {
                category: e.category,
                message: Text(&e.message),
                context: ContextView {
                    script_id: Text(&c.script_id),
                    script_path: Text(&c.script_path),
                    specialist: text(&c.specialist),
                    exit_code: c.exit_code,
                    signal: text(&c.signal),
                    attempt: c.attempt,
                    extra: List(&c.extra),
                },
                suggestions: List(&e.suggestions),
                stack_trace: text(&e.stack_trace),
            }
        }

        fn result_view(r: &wit::ExecutionResult) -> ResultView<'_> {
            ResultView {
                execution_id: Text(&r.execution_id),
                script_id: Text(&r.script_id),
                specialist: text(&r.specialist),
                success: r.success,
                exit_code: r.exit_code,
                signal: text(&r.signal),
                stdout: Text(&r.stdout),
                stderr: Text(&r.stderr),
                stdout_truncated: r.stdout_truncated,
                stderr_truncated: r.stderr_truncated,
                started_at: r.started_at,
                finished_at: r.finished_at,
                attempts: List(&r.attempts),
                retries: r.retries,
                inputs: List(&r.inputs),
                session_id: text(&r.session_id),
                correlation_id: text(&r.correlation_id),
                user: text(&r.user),
                error_details: r.error_details.as_ref().map(error_view),
                resource_usage: r.resource_usage,
            }
        }

        /// What a plugin receives of one event: a record of [`shared`], or for a plugin
        /// that reads only the figures the event itself; with `json` (the delivery's, for
        /// a plugin that takes it) in place of the record's own, empty, `json`. Lowered
        /// as its [`EventView`], built where it is lowered.
        #[derive(Clone, Copy, Debug)]
        pub struct EventRef<'a> {
            pub(crate) source: Source<'a>,
            pub(crate) json: Option<&'a str>,
        }

        /// Where an [`EventRef`]'s fields come from.
        #[derive(Clone, Copy, Debug)]
        pub enum Source<'a> {
            /// A record converted once and shared by the plugins receiving it.
            Shared(&'a wit::Event),
            /// The event, of which only the figures are lowered ([`figures_view`]).
            Figures(&'a ExecutionEvent),
        }

        impl<'a> EventRef<'a> {
            /// The event `e` of a delivery as a plugin in `shape` receives it, `json`
            /// beside it: the figures straight from the event, else its record of this
            /// version, converted by the first plugin needing it and kept in `records`.
            pub fn of(
                records: &'a SharedRecords,
                e: &'a ExecutionEvent,
                shape: Shape,
                json: Option<&'a str>,
            ) -> EventRef<'a> {
                let source = if shape.figures() {
                    Source::Figures(e)
                } else {
                    Source::Shared(shared(records, e, shape == Shape::WithOutput))
                };
                EventRef { source, json }
            }

            /// The record as it is lowered.
            pub(crate) fn view(&self) -> EventView<'a> {
                let record = match self.source {
                    Source::Shared(record) => record,
                    Source::Figures(e) => return figures_view(e, self.json.unwrap_or("")),
                };
                EventView {
                kind: record.kind,
                timestamp: record.timestamp,
                execution_id: Text(&record.execution_id),
                script_id: Text(&record.script_id),
                specialist: text(&record.specialist),
                session_id: text(&record.session_id),
                correlation_id: text(&record.correlation_id),
                user: text(&record.user),
                attempt: record.attempt,
                pid: record.pid,
                error: record.error.as_ref().map(error_view),
                retry_delay_ms: record.retry_delay_ms,
                result: record.result.as_ref().map(result_view),
                    json: Text(self.json.unwrap_or(&record.json)),
                }
            }
        }

        crate::plugin::runtime::lowering::lowered_as_view!(EventRef => EventView);

        // Each record's fields in the order of its type (the derive's typecheck holds the
        // views to the component's types; `tests/cli/records/` holds what a plugin
        // receives in each shape).
        crate::plugin::runtime::lowering::image_of!(impl['a] EventView<'a> {
            kind, timestamp, execution_id, script_id, specialist, session_id, correlation_id,
            user, attempt, pid, error, retry_delay_ms, result, json,
        });
        crate::plugin::runtime::lowering::image_of!(impl['a] ResultView<'a> {
            execution_id, script_id, specialist, success, exit_code, signal, stdout, stderr,
            stdout_truncated, stderr_truncated, started_at, finished_at, attempts, retries,
            inputs, session_id, correlation_id, user, error_details, resource_usage,
        });
        crate::plugin::runtime::lowering::image_of!(impl['a] ErrorView<'a> {
            category, message, context, suggestions, stack_trace,
        });
        crate::plugin::runtime::lowering::image_of!(impl['a] ContextView<'a> {
            script_id, script_path, specialist, exit_code, signal, attempt, extra,
        });
        crate::plugin::runtime::lowering::image_of!(impl[] wit::Datetime { seconds, nanoseconds });
        crate::plugin::runtime::lowering::image_of!(impl[] wit::ResourceUsage {
            memory_start_mb, memory_end_mb, peak_memory_mb, peak_memory_largest_process_mb,
            cpu_time_seconds, cpu_user_seconds, cpu_system_seconds, wall_time_seconds,
            memory_start_source, memory_end_source, peak_memory_source, cpu_time_source,
        });
        crate::plugin::runtime::lowering::image_of!(enum wit::LifecycleKind);
        crate::plugin::runtime::lowering::image_of!(enum wit::ErrorCategory);
        crate::plugin::runtime::lowering::image_of!(enum wit::MeasurementSource);

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

        /// One event as plugins receive it, its `json` empty (see [`with_json`]); without
        /// `output` (`event_output = false`, or the plugin takes the JSON, which carries
        /// them) the result's `stdout` and `stderr` are left empty.
        pub fn event(e: &ExecutionEvent, output: bool) -> wit::Event {
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
                result: e.result.as_deref().map(|r| result(r, output)),
                json: String::new(),
            }
        }

        /// The error's category alone, its texts left empty (`Figures`).
        fn category_view<'a>(e: &ErrorDetails) -> ErrorView<'a> {
            ErrorView {
                category: category(e.category),
                message: Text(""),
                context: ContextView {
                    script_id: Text(""),
                    script_path: Text(""),
                    specialist: None,
                    exit_code: None,
                    signal: None,
                    attempt: 0,
                    extra: List(&[]),
                },
                suggestions: List(&[]),
                stack_trace: None,
            }
        }

        /// One event with only what a counting plugin reads (`event_record =
        /// "figures"`, the SDK's `finished`): the kind, times, attempt, pid and retry
        /// delay; the result's script, specialist, success, exit code, times, retries,
        /// resource usage and error category; and `json`. Every other string and list is
        /// empty and every other option `None`. Made from the event where it is lowered,
        /// its two strings borrowed: nothing is converted or copied first.
        pub(crate) fn figures_view<'a>(e: &'a ExecutionEvent, json: &'a str) -> EventView<'a> {
            let result = |r: &'a ExecutionResult| ResultView {
                execution_id: Text(""),
                script_id: Text(&r.script_id),
                specialist: r.specialist.as_deref().map(Text),
                success: r.success,
                exit_code: r.exit_code,
                signal: None,
                stdout: Text(""),
                stderr: Text(""),
                stdout_truncated: r.stdout_truncated,
                stderr_truncated: r.stderr_truncated,
                started_at: datetime(&r.started_at),
                finished_at: datetime(&r.finished_at),
                attempts: List(&[]),
                retries: r.retries,
                inputs: List(&[]),
                session_id: None,
                correlation_id: None,
                user: None,
                error_details: r.error_details.as_ref().map(category_view),
                resource_usage: usage(&r.resource_usage),
            };
            EventView {
                kind: kind(e.kind),
                timestamp: datetime(&e.timestamp),
                execution_id: Text(""),
                script_id: Text(""),
                specialist: None,
                session_id: None,
                correlation_id: None,
                user: None,
                attempt: e.attempt,
                pid: e.pid,
                error: e.error.as_ref().map(category_view),
                retry_delay_ms: e.retry_delay_ms,
                result: e.result.as_deref().map(result),
                json: Text(json),
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
    /// get it in the record when they ask for it.
    #[test]
    fn output_crosses_once() {
        let mut r = ExecutionResult::new("01X", "hello", Utc::now());
        r.stdout = "out".into();
        r.stderr = "err".into();
        let e = ExecutionEvent::finished(r);
        let json = serde_json::to_string(&e).unwrap();
        let records = SharedRecords::default();
        let with_json = v0_3::EventRef::of(&records, &e, Shape::WithJson, Some(&json)).view();
        let record = with_json.result.unwrap();
        assert_eq!((record.stdout.0, record.stderr.0), ("", ""));
        assert!(with_json.json.0.contains("\"stdout\":\"out\""));
        let plain = event(&e, true).result.unwrap();
        assert_eq!(
            (plain.stdout.as_str(), plain.stderr.as_str()),
            ("out", "err")
        );
        let counting = event(&e, false).result.unwrap();
        assert_eq!(
            (counting.stdout.as_str(), counting.stderr.as_str()),
            ("", "")
        );
    }

    /// Plugins of one version share one record per shape, converted once; a plugin that
    /// takes the JSON gets the `Bare` one with the JSON beside it, neither copied.
    #[test]
    fn an_event_is_converted_once_per_version_and_shape() {
        let mut r = ExecutionResult::new("01X", "hello", Utc::now());
        r.stdout = "out".into();
        r.specialist = Some("ops".into());
        let mut e = ExecutionEvent::finished(r);
        e.identity.user = Some("ann".into());
        let json = serde_json::to_string(&e).unwrap();
        let records = SharedRecords::default();
        let first = v0_3::shared(&records, &e, false);
        let bare = v0_3::shared(&records, &e, false);
        assert!(std::ptr::eq(first, bare), "the same record, not a copy");
        assert!(bare.result.as_ref().unwrap().stdout.is_empty());
        assert!(bare.json.is_empty());
        let output = v0_3::shared(&records, &e, true);
        assert!(!std::ptr::eq(first, output));
        assert_eq!(output.result.as_ref().unwrap().stdout, "out");
        let older = v0_2::shared(&records, &e, false);
        assert_eq!(older.execution_id, bare.execution_id);
        // Every field beside the JSON is the record's own, borrowed.
        let crossing = v0_3::EventRef::of(&records, &e, Shape::WithJson, Some(&json)).view();
        assert!(std::ptr::eq(crossing.json.0, json.as_str()));
        assert!(std::ptr::eq(
            crossing.execution_id.0,
            bare.execution_id.as_str()
        ));
        let (result, view) = (
            bare.result.as_ref().unwrap(),
            crossing.result.as_ref().unwrap(),
        );
        assert_eq!(
            format!("{:?}", view.resource_usage),
            format!("{:?}", result.resource_usage)
        );
        assert!(std::ptr::eq(view.attempts.0, result.attempts.as_slice()));
        assert_eq!(
            (
                crossing.specialist.map(|t| t.0),
                crossing.user.map(|t| t.0),
                crossing.attempt
            ),
            (Some("ops"), Some("ann"), bare.attempt)
        );
        // Without the JSON, the record's own (empty) `json`.
        assert!(std::ptr::eq(
            v0_3::EventRef::of(&records, &e, Shape::Bare, None)
                .view()
                .json
                .0,
            bare.json.as_str()
        ));
    }

    /// `event_record = "figures"`: what a counting plugin reads (the SDK's `finished`:
    /// script, specialist, success, category, the resource usage, retries, the times) is
    /// the full record's, taken from the event without converting a record; every id,
    /// text, list and output is empty; the JSON is beside it for a plugin that takes it.
    #[test]
    fn figures_are_what_a_counting_plugin_reads_and_nothing_else() {
        use crate::model::{AttemptSummary, ErrorCategory, ErrorContext, ErrorDetails};
        let mut r = ExecutionResult::new("01X", "deploy", Utc::now());
        r.specialist = Some("ops".into());
        r.success = false;
        r.exit_code = Some(3);
        r.signal = Some("SIGTERM".into());
        r.stdout = "out".into();
        r.retries = 2;
        r.user = Some("ann".into());
        r.session_id = Some("s1".into());
        r.inputs = [("file".to_string(), serde_json::json!("a.json"))].into();
        r.attempts = vec![AttemptSummary {
            attempt: 1,
            started_at: r.started_at,
            finished_at: r.finished_at,
            success: false,
            exit_code: Some(3),
            signal: None,
            category: Some(ErrorCategory::Timeout),
            message: Some("took too long".into()),
            wall_time_seconds: 1.25,
            cpu_time_seconds: 0.5,
            peak_memory_mb: 42.0,
            delay_before_ms: 0,
        }];
        r.resource_usage.wall_time_seconds = 1.25;
        r.resource_usage.peak_memory_mb = 42.0;
        r.resource_usage.cpu_time_seconds = 0.5;
        r.error_details = Some(ErrorDetails {
            category: ErrorCategory::Timeout,
            message: "took too long".into(),
            context: ErrorContext::default(),
            suggestions: vec!["raise the timeout".into()],
            stack_trace: Some("trace".into()),
        });
        let mut e = ExecutionEvent::finished(r);
        e.identity.user = Some("ann".into());
        let json = serde_json::to_string(&e).unwrap();
        let records = SharedRecords::default();
        let figures = v0_3::EventRef::of(&records, &e, Shape::Figures, None).view();
        assert!(
            records.v0_3.iter().all(|slot| slot.get().is_none()),
            "no record is converted for the figures"
        );
        let beside_json = v0_3::EventRef::of(&records, &e, Shape::FiguresWithJson, Some(&json));
        assert!(std::ptr::eq(beside_json.view().json.0, json.as_str()));
        assert_eq!(figures.json.0, "");
        let full = v0_3::EventRef::of(&records, &e, Shape::Bare, None).view();
        let (f, all) = (figures.result.unwrap(), full.result.unwrap());
        // What `finished` reads, as the full record has it, borrowed from the event.
        let result = e.result.as_deref().unwrap();
        assert!(std::ptr::eq(f.script_id.0, result.script_id.as_str()));
        assert_eq!(
            (f.script_id.0, f.specialist.map(|t| t.0)),
            (all.script_id.0, all.specialist.map(|t| t.0))
        );
        assert_eq!((f.success, f.exit_code, f.retries), (false, Some(3), 2));
        // (The generated WIT types compare by their `Debug`.)
        let same = |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| {
            assert_eq!(format!("{a:?}"), format!("{b:?}"))
        };
        same(&f.resource_usage, &all.resource_usage);
        same(
            &(f.started_at, f.finished_at),
            &(all.started_at, all.finished_at),
        );
        same(
            &(
                figures.kind,
                figures.timestamp,
                figures.attempt,
                figures.pid,
            ),
            &(full.kind, full.timestamp, full.attempt, full.pid),
        );
        let details = f.error_details.unwrap();
        same(&details.category, &all.error_details.unwrap().category);
        // And nothing else.
        assert!(details.message.0.is_empty() && details.suggestions.0.is_empty());
        assert!(details.stack_trace.is_none() && details.context.script_id.0.is_empty());
        assert!(f.execution_id.0.is_empty() && f.stdout.0.is_empty() && f.signal.is_none());
        assert!(f.attempts.0.is_empty() && f.inputs.0.is_empty());
        assert!(f.user.is_none() && f.session_id.is_none());
        assert!(figures.execution_id.0.is_empty() && figures.user.is_none());
        assert!(
            !all.attempts.0.is_empty() && all.user.is_some(),
            "the full record has them"
        );
    }
}
