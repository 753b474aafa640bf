//! The StatsD exporter: every finished execution's metrics, as StatsD lines over UDP.
//!
//! The lines each execution becomes are in [`lines`], the line rules in [`format`](mod@format), how
//! it sends in [`send`], its configuration in [`config`]. It never makes the host wait:
//! each batch is formatted, packed and handed to a non-blocking socket, and whatever the
//! socket does not take at once is dropped and counted. Failures are reported by answering a batch with an
//! error (the host counts it as a refused call and shows it as the plugin's last error in
//! `plugins list`, `/api/v1/plugins` and the host's metrics), at most every 10 seconds.
//! The component glue that does this for each batch is `plugin` (feature `plugin`);
//! without it the crate builds natively (its tests, the host's benchmark of the default
//! set's work).

pub mod config;
pub mod format;
pub mod lines;
pub mod send;

#[cfg(feature = "plugin")]
mod plugin;
