//! The Prometheus exporter: keeps the metrics of every finished execution and renders them
//! when the host asks (`render`, for `metaclaude serve`'s `/metrics`), in the format the
//! scraper negotiated: OpenMetrics 1.0.0 (ending with `# EOF`) or the text format 0.0.4.
//! The host serves the text as it comes back.
//!
//! What it keeps and writes, family by family, is in [`families`], the label rules and
//! caps in [`labels`], its configuration in [`config`].
//!
//! The state lives in the instance: a host that restarts the plugin (after a trap) starts
//! its counters again from zero, which Prometheus' `rate()` and `increase()` take as a
//! counter reset (and `_created` tells).

pub mod config;
pub mod families;
pub mod labels;

#[cfg(feature = "plugin")]
mod plugin;
