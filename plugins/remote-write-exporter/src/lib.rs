//! The Prometheus remote write exporter: the series the Prometheus exporter serves on
//! `/metrics` (its state and label caps, used as a library: [`metaclaude_prometheus_series`]),
//! pushed with the remote write 1.0 protocol to a receiver (Prometheus with
//! `--web.enable-remote-write-receiver`, VictoriaMetrics, Mimir, Thanos receive ...), for
//! hosts nothing can scrape.
//!
//! Every `interval_s` the state is snapshot into a bounded queue with the external labels
//! ([`push`]); every tick of the host (WIT 0.4.0 `pusher` world) what is due goes out in
//! requests of at most `max_samples_per_send` samples and `max_bytes_per_send` bytes
//! ([`wire`]: protobuf `WriteRequest`, snappy), retried as Prometheus does (`metaclaude_push`'s rules,
//! shared with the OTLP exporter);
//! the queue survives restarts in the spool ([`spool`]); the figures go to the host
//! through the `delivery` interface.

pub mod config;
pub mod push;
pub mod queue;
pub mod spool;
pub mod wire;

#[cfg(feature = "plugin")]
mod plugin;
