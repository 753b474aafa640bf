//! Helpers on the event model: the names the host writes, times in seconds, and the
//! figures of a finished event.

use crate::types::{self, Datetime, ErrorCategory, LifecycleKind, Severity};

/// The upper-case name the host uses for a category, e.g. "TIMEOUT".
pub fn category_name(c: ErrorCategory) -> &'static str {
    match c {
        ErrorCategory::Timeout => "TIMEOUT",
        ErrorCategory::Validation => "VALIDATION",
        ErrorCategory::Dependency => "DEPENDENCY",
        ErrorCategory::Execution => "EXECUTION",
        ErrorCategory::Permission => "PERMISSION",
        ErrorCategory::Resource => "RESOURCE",
        ErrorCategory::Unknown => "UNKNOWN",
    }
}

/// The snake-case name of a lifecycle kind, e.g. "attempt_failed".
pub fn kind_name(k: LifecycleKind) -> &'static str {
    match k {
        LifecycleKind::Queued => "queued",
        LifecycleKind::Started => "started",
        LifecycleKind::AttemptFailed => "attempt_failed",
        LifecycleKind::RetryScheduled => "retry_scheduled",
        LifecycleKind::Finished => "finished",
    }
}

pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// Seconds since the Unix epoch as a float.
pub fn seconds(t: &Datetime) -> f64 {
    t.seconds as f64 + t.nanoseconds as f64 / 1e9
}

/// The figures a metric exporter counts of a `finished` event (`None` for any other
/// event, or one without its result).
pub fn finished(event: &types::Event) -> Option<metaclaude_formats::finished::Finished> {
    if event.kind != LifecycleKind::Finished {
        return None;
    }
    let r = event.result.as_ref()?;
    Some(metaclaude_formats::finished::Finished {
        script: r.script_id.clone(),
        specialist: r.specialist.clone(),
        success: r.success,
        category: r
            .error_details
            .as_ref()
            .map(|e| category_name(e.category).to_string()),
        duration_seconds: r.resource_usage.wall_time_seconds,
        memory_peak_mb: r.resource_usage.peak_memory_mb,
        cpu_time_seconds: r.resource_usage.cpu_time_seconds,
        retries: r.retries,
        at: seconds(&event.timestamp),
    })
}
