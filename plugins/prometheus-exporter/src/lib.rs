//! The Prometheus exporter: keeps the metrics of every finished execution and renders them
//! when the host asks (`render`, for `metaclaude serve`'s `/metrics`), in the format the
//! scraper negotiated: OpenMetrics 1.0.0 (ending with `# EOF`) or the text format 0.0.4.
//! The host serves the text as it comes back.
//!
//! The series, their caps and configuration are `metaclaude-prometheus-series`'s (shared
//! with the remote write exporter), re-exported here; this crate is the component's glue.

pub use metaclaude_prometheus_series::{config, families, labels};

#[cfg(feature = "plugin")]
mod plugin;
