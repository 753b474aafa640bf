//! The event model: the one definition of what an execution is and what happened to it.
//!
//! Everything that leaves the host (the `--json` output of `metaclaude run`, the lifecycle
//! events fed to plugins, the JSON-lines log, the HTTP API) serialises these types, so a
//! field means the same thing everywhere. The WIT package in `wit/` mirrors them field for
//! field; change both together, and never rename a field without a version bump.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The seven error categories of the specification, serialised in upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCategory {
    /// The attempt ran past the script's `timeout_ms` and was killed.
    Timeout,
    /// The request was refused before anything ran: unknown script, missing, unknown or
    /// mistyped input.
    Validation,
    /// Something the script needs is missing: its interpreter, its file, a `requires`
    /// entry, a command (exit 127) or a Python module.
    Dependency,
    /// The script failed on its own: a non-zero exit not explained otherwise, or a crash
    /// signal.
    Execution,
    /// The script could not run or reach something for lack of permission (`EACCES`, exit
    /// 126, Python `PermissionError`).
    Permission,
    /// A memory or CPU limit was hit (OOM kill, `MemoryError`, SIGXCPU).
    Resource,
    /// Anything else, such as an unexpected signal or a failure of the host itself.
    Unknown,
}

impl ErrorCategory {
    /// Every category, in the specification's order.
    pub const ALL: [ErrorCategory; 7] = [
        ErrorCategory::Timeout,
        ErrorCategory::Validation,
        ErrorCategory::Dependency,
        ErrorCategory::Execution,
        ErrorCategory::Permission,
        ErrorCategory::Resource,
        ErrorCategory::Unknown,
    ];

    /// The name as serialised, in upper case (`"TIMEOUT"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Timeout => "TIMEOUT",
            ErrorCategory::Validation => "VALIDATION",
            ErrorCategory::Dependency => "DEPENDENCY",
            ErrorCategory::Execution => "EXECUTION",
            ErrorCategory::Permission => "PERMISSION",
            ErrorCategory::Resource => "RESOURCE",
            ErrorCategory::Unknown => "UNKNOWN",
        }
    }

    /// Failures a retry cannot fix: the same input, file or permission fails again.
    pub fn is_never_retried(self) -> bool {
        matches!(
            self,
            ErrorCategory::Validation | ErrorCategory::Permission | ErrorCategory::Dependency
        )
    }
}

impl fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no error category (any case is taken).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown error category `{0}` (expected one of {known})",
    known = ErrorCategory::ALL.map(|c| c.as_str()).join(", ")
)]
pub struct UnknownCategory(pub String);

impl FromStr for ErrorCategory {
    type Err = UnknownCategory;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCategory::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownCategory(s.to_string()))
    }
}

/// Where an execution's error happened and with what; the seed's `ErrorDetails.context`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ErrorContext {
    /// The script's id in the registry (as requested, for an unknown one).
    pub script_id: String,
    /// The script's `path` as written in the registry; empty when no script was found.
    pub script_path: String,
    /// The script's `specialist`, when the registry gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specialist: Option<String>,
    /// The exit status of the attempt that failed; `None` when it was killed by a signal or
    /// never ran.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The signal that ended the attempt, by name (`"SIGKILL"`); `None` when it exited.
    #[serde(default)]
    pub signal: Option<String>,
    /// The attempt that failed, from 1; 0 when the request was refused before any attempt.
    pub attempt: u32,
    /// Cause-specific facts, such as the missing module or the limit that was hit.
    #[serde(flatten)]
    pub extra: BTreeMap<String, String>,
}

/// The seed's `ErrorDetails`: what went wrong, why, and what to do about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetails {
    /// Which of the seven categories the failure falls in.
    pub category: ErrorCategory,
    /// One line for people, e.g. "Script execution timed out after 30000ms".
    pub message: String,
    /// Where it happened: script, attempt, exit, and the cause's own facts.
    pub context: ErrorContext,
    /// What to do about it, specific to the cause found (may be empty).
    pub suggestions: Vec<String>,
    /// The Python traceback when there is one, else the last 20 lines of stderr; `None`
    /// when the script printed nothing to stderr or never ran.
    #[serde(default)]
    pub stack_trace: Option<String>,
}

/// How a figure in [`ResourceUsage`] was obtained, so a reader knows what it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasurementSource {
    /// The execution's own cgroup: covers every process of the tree, even short-lived ones.
    Cgroup,
    /// `wait4`'s rusage at reap time: exact, but per process (the largest one, for memory).
    Rusage,
    /// Polling `/proc`: sees the whole tree, but only at sample instants.
    Sampling,
    /// Nothing could be measured (for example, the process never started).
    None,
}

/// Resources one execution used, summed over its attempts where that makes sense
/// (CPU time) and maximised where it does not (peak memory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceUsage {
    /// Resident memory of the process tree at the first attempt's first sample, right after
    /// `execve`, MiB (a baseline, usually near zero).
    pub memory_start_mb: f64,
    /// Resident memory of the process tree at the last attempt's last sample before its main
    /// process exited, MiB.
    pub memory_end_mb: f64,
    /// Peak resident memory of the whole process tree, MiB, short-lived processes included
    /// when it comes from the cgroup; the largest over the attempts.
    pub peak_memory_mb: f64,
    /// Peak resident memory of the single largest process (`ru_maxrss`), MiB, the largest
    /// over the attempts; the tree peak when `ru_maxrss` is not usable.
    pub peak_memory_largest_process_mb: f64,
    /// User plus system CPU time of the whole tree, seconds, summed over attempts.
    pub cpu_time_seconds: f64,
    /// The user part of `cpu_time_seconds`, seconds.
    pub cpu_user_seconds: f64,
    /// The system (kernel) part of `cpu_time_seconds`, seconds.
    pub cpu_system_seconds: f64,
    /// Wall time from spawn to reap, seconds, summed over attempts (backoff delays
    /// excluded); 0 for an execution refused before it ran.
    pub wall_time_seconds: f64,
    /// Where `memory_start_mb` came from.
    pub memory_start_source: MeasurementSource,
    /// Where `memory_end_mb` came from.
    pub memory_end_source: MeasurementSource,
    /// Where `peak_memory_mb` came from (`cgroup` when the execution had one).
    pub peak_memory_source: MeasurementSource,
    /// Where the CPU times came from (`cgroup` covers every descendant, `rusage` only those
    /// waited for).
    pub cpu_time_source: MeasurementSource,
}

impl ResourceUsage {
    /// Nothing measured: every figure 0, every source `none` (an execution that never ran).
    pub fn empty() -> Self {
        ResourceUsage {
            memory_start_mb: 0.0,
            memory_end_mb: 0.0,
            peak_memory_mb: 0.0,
            peak_memory_largest_process_mb: 0.0,
            cpu_time_seconds: 0.0,
            cpu_user_seconds: 0.0,
            cpu_system_seconds: 0.0,
            wall_time_seconds: 0.0,
            memory_start_source: MeasurementSource::None,
            memory_end_source: MeasurementSource::None,
            peak_memory_source: MeasurementSource::None,
            cpu_time_source: MeasurementSource::None,
        }
    }
}

/// One attempt of an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptSummary {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When the attempt's process was spawned, UTC.
    #[serde(with = "timestamp")]
    pub started_at: DateTime<Utc>,
    /// When it was reaped and its output drained, UTC.
    #[serde(with = "timestamp")]
    pub finished_at: DateTime<Utc>,
    /// Whether the attempt succeeded (exit 0, no error found).
    pub success: bool,
    /// Its exit status; `None` when a signal ended it or it never started.
    pub exit_code: Option<i32>,
    /// The signal that ended it, by name (`"SIGKILL"`); `None` when it exited.
    pub signal: Option<String>,
    /// Its failure's category; `None` on success.
    pub category: Option<ErrorCategory>,
    /// Its failure's message (`ErrorDetails::message`); `None` on success.
    pub message: Option<String>,
    /// Spawn to reap, seconds.
    pub wall_time_seconds: f64,
    /// User plus system CPU time of its process tree, seconds.
    pub cpu_time_seconds: f64,
    /// Peak resident memory of its process tree, MiB.
    pub peak_memory_mb: f64,
    /// The backoff waited before this attempt started (0 for the first).
    pub delay_before_ms: u64,
}

/// Everything known about a finished execution: the seed's `ExecutionResult`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionResult {
    /// Unique and sortable by creation time (a ULID).
    pub execution_id: String,
    /// The registry id of the script run.
    pub script_id: String,
    /// The script's `specialist` from the registry; `None` when it has none.
    pub specialist: Option<String>,
    /// Whether the last attempt succeeded.
    pub success: bool,
    /// The last attempt's exit status; `None` when a signal ended it or nothing ran.
    pub exit_code: Option<i32>,
    /// The signal that ended the last attempt, by name (`"SIGKILL"`); `None` when it
    /// exited.
    pub signal: Option<String>,
    /// The last attempt's standard output, at most the script's `output_limit_bytes`:
    /// beyond it the head and tail halves are kept, with a `[... N bytes truncated ...]`
    /// line between.
    pub stdout: String,
    /// The last attempt's standard error, bounded as `stdout` is.
    pub stderr: String,
    /// Whether `stdout` lost its middle to the output limit.
    pub stdout_truncated: bool,
    /// Whether `stderr` lost its middle to the output limit.
    pub stderr_truncated: bool,
    /// When the execution was accepted (just before `queued`), UTC.
    #[serde(with = "timestamp")]
    pub started_at: DateTime<Utc>,
    /// When the last attempt ended (or the request was refused), UTC.
    #[serde(with = "timestamp")]
    pub finished_at: DateTime<Utc>,
    /// One summary per attempt, first first; empty when nothing ran (refused by validation
    /// or a missing dependency).
    pub attempts: Vec<AttemptSummary>,
    /// Attempts after the first (`attempts.len() - 1`, or 0).
    pub retries: u32,
    /// The inputs as the script received them: typed, defaults filled in (as requested when
    /// validation refused them).
    pub inputs: BTreeMap<String, serde_json::Value>,
    /// The caller's session, as given in the request; `None` when not given.
    pub session_id: Option<String>,
    /// The caller's correlation id, as given in the request; `None` when not given.
    pub correlation_id: Option<String>,
    /// Who asked for the execution, as given in the request; `None` when not given.
    pub user: Option<String>,
    /// Why the execution failed (the last attempt's error); `None` on success.
    pub error_details: Option<ErrorDetails>,
    /// What the execution used, over all its attempts.
    pub resource_usage: ResourceUsage,
}

impl ExecutionResult {
    /// Which execution this is the result of.
    pub fn identity(&self) -> ExecutionIdentity {
        ExecutionIdentity {
            execution_id: self.execution_id.clone(),
            script_id: self.script_id.clone(),
            specialist: self.specialist.clone(),
            session_id: self.session_id.clone(),
            correlation_id: self.correlation_id.clone(),
            user: self.user.clone(),
        }
    }

    /// A result with nothing run yet: no attempt, no output, every figure zero, not a
    /// success; `finished_at` is `started_at` until the execution ends.
    pub fn new(
        execution_id: impl Into<String>,
        script_id: impl Into<String>,
        started_at: DateTime<Utc>,
    ) -> ExecutionResult {
        ExecutionResult {
            execution_id: execution_id.into(),
            script_id: script_id.into(),
            specialist: None,
            success: false,
            exit_code: None,
            signal: None,
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            started_at,
            finished_at: started_at,
            attempts: Vec::new(),
            retries: 0,
            inputs: BTreeMap::new(),
            session_id: None,
            correlation_id: None,
            user: None,
            error_details: None,
            resource_usage: ResourceUsage::empty(),
        }
    }

    /// The failure's category; `None` on success.
    pub fn category(&self) -> Option<ErrorCategory> {
        self.error_details.as_ref().map(|e| e.category)
    }
}

/// The stages of an execution's life, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleKind {
    /// Accepted and waiting for a concurrency slot.
    Queued,
    /// An attempt's process was spawned.
    Started,
    /// An attempt ended in failure (a retry may follow).
    AttemptFailed,
    /// A retry will start after `retry_delay_ms`.
    RetryScheduled,
    /// The execution is over; `result` holds everything.
    Finished,
}

impl LifecycleKind {
    /// The name as serialised (`"attempt_failed"`).
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleKind::Queued => "queued",
            LifecycleKind::Started => "started",
            LifecycleKind::AttemptFailed => "attempt_failed",
            LifecycleKind::RetryScheduled => "retry_scheduled",
            LifecycleKind::Finished => "finished",
        }
    }
}

/// Which execution, of what and for whom: what every event of one execution, its state
/// while it runs and its result share. Declared once here; the result keeps the same
/// fields at its top level (in the execution log's order) and gives them back with
/// [`ExecutionResult::identity`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExecutionIdentity {
    /// Unique and sortable by creation time (a ULID).
    pub execution_id: String,
    /// The registry id of the script requested.
    pub script_id: String,
    /// The script's `specialist` from the registry; `None` when it has none or is unknown.
    pub specialist: Option<String>,
    /// The caller's session, as given in the request.
    pub session_id: Option<String>,
    /// The caller's correlation id, as given in the request.
    pub correlation_id: Option<String>,
    /// Who asked for the execution, as given in the request.
    pub user: Option<String>,
}

impl ExecutionIdentity {
    /// An event of this execution, stamped now, with nothing of a particular kind yet.
    pub fn event(&self, kind: LifecycleKind, attempt: u32) -> ExecutionEvent {
        ExecutionEvent {
            kind,
            timestamp: Utc::now(),
            identity: self.clone(),
            attempt,
            pid: None,
            error: None,
            retry_delay_ms: None,
            result: None,
        }
    }
}

/// One lifecycle event. Fields that only some kinds carry are `None` elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionEvent {
    /// Which stage this event reports.
    pub kind: LifecycleKind,
    /// When it happened, UTC (a `finished` event: the result's `finished_at`).
    #[serde(with = "timestamp")]
    pub timestamp: DateTime<Utc>,
    /// Which execution, of what and for whom (its fields appear at this level in JSON).
    #[serde(flatten)]
    pub identity: ExecutionIdentity,
    /// The attempt this event is about (0 for `queued`).
    pub attempt: u32,
    /// `started`: the process id of the attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// `attempt_failed`: what went wrong in that attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetails>,
    /// `retry_scheduled`: the backoff before the next attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay_ms: Option<u64>,
    /// `finished`: the whole result. **Last**, so that it is the last member of the event's
    /// JSON: the log sink takes its text from there without reading it through (WIT
    /// `event.json`; `plugin::delivery` tests it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Arc<ExecutionResult>>,
}

impl ExecutionEvent {
    /// The `finished` event of `result`, stamped with its `finished_at`.
    pub fn finished(result: ExecutionResult) -> ExecutionEvent {
        ExecutionEvent {
            kind: LifecycleKind::Finished,
            timestamp: result.finished_at,
            identity: result.identity(),
            attempt: result.attempts.len() as u32,
            pid: None,
            error: None,
            retry_delay_ms: None,
            result: Some(Arc::new(result)),
        }
    }
}

/// How serious an alert is (`Warning < Critical`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look soon (a rule's warning threshold was passed).
    Warning,
    /// Needs someone now (a rule's critical threshold was passed).
    Critical,
}

impl Severity {
    /// The name as serialised (`"warning"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Where an alert is in its life cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The condition holds.
    #[default]
    Firing,
    /// The condition cleared.
    Resolved,
}

impl AlertStatus {
    /// The name as serialised (`"firing"`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// An alert, as the seed's JSON has it (`timestamp`, `type`, `severity`, `message`,
/// `value`, `threshold`, `specialist`), plus its identity (`labels`, `fingerprint`) and
/// life cycle (`status`, `starts_at`, `ends_at`) as Alertmanager has them, and
/// `annotations`: raised by alert-rule plugins (or by the host about its plugins) and
/// delivered by notifier plugins.
///
/// Reading JSON, the life-cycle fields may be missing (alerts from a native plugin or an
/// older writer): the alert is then firing, started now, and the host fills the
/// fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// When this state of the alert was observed (an evaluation's time), UTC.
    #[serde(with = "timestamp")]
    pub timestamp: DateTime<Utc>,
    /// What was detected, e.g. `error_rate_high` (`type` in JSON).
    #[serde(rename = "type")]
    pub kind: String,
    /// How serious it is now; a change of severity keeps the alert's identity.
    pub severity: Severity,
    /// For people, e.g. "Error rate is 15.3% (threshold: 10.0%)".
    pub message: String,
    /// The figure the rule measured, in its threshold's unit.
    pub value: f64,
    /// The threshold `value` went past, in the same unit.
    pub threshold: f64,
    /// The specialist whose executions it is about; `None` for all executions together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specialist: Option<String>,
    /// What identifies the alert beside its type (e.g. `specialist`, `plugin`); hashed into
    /// `fingerprint`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Firing or resolved (firing when missing from the JSON).
    #[serde(default)]
    pub status: AlertStatus,
    /// Its identity (type and labels, see `metaclaude_formats::alerts`): the same alert
    /// seen again has the same fingerprint, whatever its severity or value.
    #[serde(default)]
    pub fingerprint: String,
    /// When the alert started firing, UTC; the same in every notification about it.
    #[serde(with = "timestamp", default = "Utc::now")]
    pub starts_at: DateTime<Utc>,
    /// When it resolved, UTC: set exactly when `status` is `resolved`.
    #[serde(
        with = "timestamp::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ends_at: Option<DateTime<Utc>>,
    /// More for people, not identity: `summary`, `description`, `runbook_url` ...
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The ids of the silences muting it when this state was recorded (none: absent); a
    /// muted alert is recorded but not notified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub silenced_by: Vec<String>,
    /// The fingerprints of the firing alerts inhibiting it (an inhibition rule) when this
    /// state was recorded (none: absent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inhibited_by: Vec<String>,
}

impl Alert {
    /// The order alerts are shown in: most severe first, then oldest first (then by
    /// fingerprint, so the order is total).
    pub fn most_severe_first(a: &Alert, b: &Alert) -> std::cmp::Ordering {
        b.severity
            .cmp(&a.severity)
            .then(a.starts_at.cmp(&b.starts_at))
            .then(a.fingerprint.cmp(&b.fingerprint))
    }

    /// A firing alert observed at `timestamp`, starting then, with its fingerprint.
    pub fn firing(
        timestamp: DateTime<Utc>,
        kind: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
        value: f64,
        threshold: f64,
    ) -> Alert {
        let mut a = Alert {
            timestamp,
            kind: kind.into(),
            severity,
            message: message.into(),
            value,
            threshold,
            specialist: None,
            labels: BTreeMap::new(),
            status: AlertStatus::Firing,
            fingerprint: String::new(),
            starts_at: timestamp,
            ends_at: None,
            annotations: BTreeMap::new(),
            silenced_by: Vec::new(),
            inhibited_by: Vec::new(),
        };
        a.fingerprint = a.identity();
        a
    }

    /// Whether a silence or an inhibition keeps it from notifiers.
    pub fn is_muted(&self) -> bool {
        !self.silenced_by.is_empty() || !self.inhibited_by.is_empty()
    }

    /// The fingerprint of its type, specialist and labels (what `fingerprint` must be).
    pub fn identity(&self) -> String {
        metaclaude_formats::alerts::fingerprint(
            &self.kind,
            self.specialist.as_deref(),
            self.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }
}

/// One threshold of an alert rule, by the name that changes it
/// (`set_alert_threshold("error_rate_percent", 15.0)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// The name `set_alert_threshold` takes, e.g. `error_rate_percent_critical`.
    pub name: String,
    /// The value in force, in the unit `description` gives.
    pub value: f64,
    /// What it bounds and in which unit.
    pub description: String,
}

/// UTC timestamps as RFC 3339 with microseconds, e.g. `2024-01-15T10:30:45.123456Z`.
pub mod timestamp {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// The form every output writes, e.g. `2024-01-15T10:30:45.123456Z`.
    pub fn format(t: &DateTime<Utc>) -> String {
        metaclaude_formats::log_record::timestamp(t)
    }

    /// For `#[serde(with = "timestamp")]`: writes [`format()`]'s string.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(metaclaude_formats::log_record::TimestampText::new(t).as_str())
    }

    /// For `#[serde(with = "timestamp")]`: reads any RFC 3339 time (any offset, any
    /// precision) as UTC.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }

    /// The same for an optional time (`null` when absent).
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::Serializer;

        /// For `#[serde(with = "timestamp::option")]`: the string, or `null` for `None`.
        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::format(t)),
                None => s.serialize_none(),
            }
        }

        /// For `#[serde(with = "timestamp::option")]`: `null` is `None`.
        pub fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            #[derive(serde::Deserialize)]
            struct Wrapped(#[serde(with = "super")] DateTime<Utc>);
            let v: Option<Wrapped> = serde::Deserialize::deserialize(d)?;
            Ok(v.map(|Wrapped(t)| t))
        }
    }
}

/// The conventional name of a signal number (`SIGKILL`), or `SIG<n>` for others.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("SIG{signal}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_round_trip_in_upper_case() {
        for c in ErrorCategory::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(c.as_str().to_lowercase().parse::<ErrorCategory>(), Ok(c));
        }
        assert!("nope".parse::<ErrorCategory>().is_err());
    }

    #[test]
    fn timestamps_carry_microseconds() {
        let t = DateTime::parse_from_rfc3339("2024-01-15T10:30:45.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(timestamp::format(&t), "2024-01-15T10:30:45.123456Z");
    }
}
