//! The OpenTelemetry exporter: each finished execution as a trace, its log record as an
//! OTLP log ([`logs`]), and the seed's metrics as OTLP metrics every interval
//! ([`metrics`]: the Prometheus exporter's series), sent with OTLP/HTTP (protobuf, or
//! JSON through [`json`]; gzip) to a Collector, Jaeger, Tempo or a vendor's endpoint.
//!
//! A `finished` event becomes spans ([`trace`]): one for the execution, a child per
//! attempt (the backoff between attempts is the gap between them, and a `retry` event on
//! the execution span). The trace joins the caller's when the correlation id is a W3C
//! `traceparent` (the host puts `METACLAUDE_TRACEPARENT` or a request's `traceparent`
//! header there when no correlation id is given), else derives from the correlation id
//! or the execution id ([`ids`]). The spans wait in a bounded queue; every tick of the
//! host (WIT 0.4.0 `pusher` world) what is due goes out ([`export`]), retried per the OTLP
//! specification (`metaclaude_push`'s rules: 429, 502, 503, 504 and no answer are retried,
//! honouring `Retry-After`; other statuses are reported and dropped); the figures go to
//! the host through `delivery`, a destination per signal (units "spans", "log records"
//! and "metrics").

pub mod config;
pub mod export;
pub mod ids;
pub mod json;
pub mod logs;
pub mod metrics;
pub mod trace;

#[cfg(feature = "plugin")]
mod plugin;
