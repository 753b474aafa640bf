//! The Prometheus exporter: keeps the metrics of every finished execution and renders them
//! as OpenMetrics text when the host asks (`render`, for `metaclaude serve`'s `/metrics`).
//!
//! What it keeps and writes, family by family, is in [`families`], the label rules and
//! caps in [`labels`], its configuration in [`config`]. It always renders OpenMetrics 1.0.0
//! (ending with `# EOF`): the host serves that to a scraper that asks for it and converts
//! it down to the text format 0.0.4 for any other
//! (`metaclaude_formats::prometheus::openmetrics_to_text`).
//!
//! The state lives in the instance: a host that restarts the plugin (after a trap) starts
//! its counters again from zero, which Prometheus' `rate()` and `increase()` take as a
//! counter reset (and `_created` tells).

pub mod config;
pub mod families;
pub mod labels;

#[cfg(feature = "plugin")]
mod plugin;
