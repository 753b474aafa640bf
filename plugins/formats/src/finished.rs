//! The figures of one finished execution that the metric exporters (Prometheus, StatsD)
//! and the alert rules count: [`Finished`], made from the event by the SDK's `finished`.

/// The figures of one finished execution an exporter counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub script: String,
    pub specialist: Option<String>,
    pub success: bool,
    /// The host's upper-case name, e.g. `TIMEOUT`.
    pub category: Option<String>,
    /// `resource_usage.wall_time_seconds`: spawn to reap, summed over attempts, backoff
    /// excluded (the duration `metaclaude logs --stats` reports).
    pub duration_seconds: f64,
    pub memory_peak_mb: f64,
    pub cpu_time_seconds: f64,
    pub retries: u32,
    /// When it finished (the event's time), seconds since the Unix epoch.
    pub at: f64,
}
