//! The series of every finished execution as Prometheus has them, defined once: what the
//! Prometheus exporter renders on `/metrics` ([`families::Exporter::render`]) and what the
//! remote write exporter pushes ([`families::Exporter::samples`]).
//!
//! What it keeps and writes, family by family, is in [`families`], the label rules and
//! caps in [`labels`], its configuration (buckets, caps) in [`config`].
//!
//! The state lives in the plugin's instance: a host that restarts the plugin (after a
//! trap) starts its counters again from zero, which Prometheus' `rate()` and `increase()`
//! take as a counter reset (and `_created` tells).

pub mod config;
pub mod families;
pub mod labels;
