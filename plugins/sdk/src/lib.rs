//! The Rust SDK for metaclaude plugins.
//!
//! A plugin is a WebAssembly component implementing one world of the `metaclaude:monitor`
//! WIT package (`wit/monitor.wit`). Depend on this crate with the feature of your world
//! (`sink`, `exporter`, `alert-rule` or `notifier`), implement `Guest`, and export it:
//!
//! ```ignore
//! use metaclaude_plugin_sdk::{export_sink, sink::Guest, types::Event};
//!
//! struct Counter;
//!
//! impl Guest for Counter {
//!     fn init(_config: String) -> Result<(), String> { Ok(()) }
//!     fn handle_batch(events: Vec<Event>) -> Result<(), String> {
//!         metaclaude_plugin_sdk::info!("got {} events", events.len());
//!         Ok(())
//!     }
//!     fn flush() -> Result<(), String> { Ok(()) }
//! }
//!
//! export_sink!(Counter);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm` in
//! `target/wasm32-wasip2/release/` is the component to put beside a `plugin.toml`.

#[cfg(any(
    all(feature = "sink", feature = "exporter"),
    all(feature = "sink", feature = "alert-rule"),
    all(feature = "sink", feature = "notifier"),
    all(feature = "exporter", feature = "alert-rule"),
    all(feature = "exporter", feature = "notifier"),
    all(feature = "alert-rule", feature = "notifier"),
))]
compile_error!("enable exactly one of the features sink, exporter, alert-rule, notifier");

#[cfg(feature = "sink")]
pub mod sink {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "sink",
        pub_export_macro: true,
        export_macro_name: "export_sink",
        default_bindings_module: "metaclaude_plugin_sdk::sink",
    });
}
#[cfg(feature = "sink")]
pub use sink as world;
#[cfg(feature = "sink")]
pub use sink::export_sink;

#[cfg(feature = "exporter")]
pub mod exporter {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "exporter",
        pub_export_macro: true,
        export_macro_name: "export_exporter",
        default_bindings_module: "metaclaude_plugin_sdk::exporter",
    });
}
#[cfg(feature = "exporter")]
pub use exporter as world;
#[cfg(feature = "exporter")]
pub use exporter::export_exporter;

#[cfg(feature = "alert-rule")]
pub mod alert_rule {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "alert-rule",
        pub_export_macro: true,
        export_macro_name: "export_alert_rule",
        default_bindings_module: "metaclaude_plugin_sdk::alert_rule",
    });
}
#[cfg(feature = "alert-rule")]
pub use alert_rule as world;
#[cfg(feature = "alert-rule")]
pub use alert_rule::export_alert_rule;

#[cfg(feature = "notifier")]
pub mod notifier {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "notifier",
        pub_export_macro: true,
        export_macro_name: "export_notifier",
        default_bindings_module: "metaclaude_plugin_sdk::notifier",
    });
}
#[cfg(feature = "notifier")]
pub use notifier as world;
#[cfg(feature = "notifier")]
pub use notifier::export_notifier;

/// Logging into the host, and its clock.
pub use world::metaclaude::monitor0_2_0::host;
/// Outgoing HTTP to the destinations the manifest grants (notifiers only).
#[cfg(feature = "notifier")]
pub use world::metaclaude::monitor0_2_0::http;
/// The event model: `Event`, `ExecutionResult`, `Alert`, ...
pub use world::metaclaude::monitor0_2_0::types;

use types::{Datetime, ErrorCategory, LifecycleKind, Severity};

/// Logs through the host if the host keeps messages at this level (the message is only
/// formatted when it does).
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)*) => {{
        let level = $level;
        if $crate::host::log_enabled(level) {
            $crate::host::log(level, &format!($($arg)*));
        }
    }};
}
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::log!($crate::host::Level::Debug, $($arg)*) }; }
#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::log!($crate::host::Level::Info, $($arg)*) }; }
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::log!($crate::host::Level::Warn, $($arg)*) }; }
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::log!($crate::host::Level::Error, $($arg)*) }; }

/// Parses the manifest's `[config]` table (handed to `init` as JSON).
pub fn parse_config(json: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_str(json) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("config must be a table, found {other}")),
        Err(e) => Err(format!("config is not valid JSON: {e}")),
    }
}

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
pub fn finished(event: &types::Event) -> Option<metaclaude_formats::metrics::Finished> {
    if event.kind != LifecycleKind::Finished {
        return None;
    }
    let r = event.result.as_ref()?;
    Some(metaclaude_formats::metrics::Finished {
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
