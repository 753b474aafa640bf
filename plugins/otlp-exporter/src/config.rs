//! The `[config]` table: the endpoint, protocol, headers and resource (OpenTelemetry's
//! own variables, through the manifest's `${VAR}`), compression, the signals sent,
//! batching, the queue's bound, the backoff; and the Prometheus exporter's keys for the
//! metrics' buckets and label caps.

use metaclaude_plugin_sdk::config::Table;
use metaclaude_prometheus_series::config::{Config as SeriesConfig, KEYS as SERIES_KEYS};
use metaclaude_push::retry::backoff_config;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The OTLP/HTTP base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`): traces go to
    /// `{endpoint}/v1/traces`.
    pub endpoint: String,
    /// Extra request headers (`OTEL_EXPORTER_OTLP_HEADERS`: `k=v,k2=v2`).
    pub headers: Vec<(String, String)>,
    /// The resource's `service.name`.
    pub service_name: String,
    /// The resource's `host.name`; `None`: left out.
    pub host_name: Option<String>,
    /// More resource attributes (`OTEL_RESOURCE_ATTRIBUTES`: `k=v,k2=v2`).
    pub resource_attributes: Vec<(String, String)>,
    /// `Content-Encoding: gzip` on every request.
    pub gzip: bool,
    /// OTLP/HTTP's JSON encoding instead of protobuf (`OTEL_EXPORTER_OTLP_PROTOCOL` =
    /// `http/json`).
    pub json: bool,
    /// Each execution's log record to `{endpoint}/v1/logs` too.
    pub logs: bool,
    /// The seed's metrics to `{endpoint}/v1/metrics` too, every `metrics_interval_ms`.
    pub metrics: bool,
    /// `OTEL_METRIC_EXPORT_INTERVAL`, ms.
    pub metrics_interval_ms: u64,
    /// The metrics' buckets and label caps (the Prometheus exporter's keys).
    pub series: SeriesConfig,
    pub max_spans_per_send: usize,
    pub max_pending_spans: usize,
    pub min_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            endpoint: "http://127.0.0.1:4318".into(),
            headers: Vec::new(),
            service_name: "metaclaude".into(),
            host_name: None,
            resource_attributes: Vec::new(),
            gzip: true,
            json: false,
            logs: true,
            metrics: true,
            metrics_interval_ms: 60_000,
            series: SeriesConfig::default(),
            max_spans_per_send: 512,
            max_pending_spans: 20_000,
            min_backoff_ms: 1000,
            max_backoff_ms: 30_000,
        }
    }
}

const KEYS: &[&str] = &[
    "endpoint",
    "headers",
    "service_name",
    "host_name",
    "resource_attributes",
    "compression",
    "protocol",
    "logs",
    "metrics",
    "metrics_interval_ms",
    "max_spans_per_send",
    "max_pending_spans",
    "min_backoff_ms",
    "max_backoff_ms",
];

impl Config {
    /// Reads the `[config]` table (as JSON): every problem names its key.
    pub fn parse(json: &str) -> Result<Config, String> {
        let known: Vec<&str> = KEYS.iter().chain(SERIES_KEYS).copied().collect();
        let table = Table::parse(json, &known)?;
        let mut c = Config {
            series: SeriesConfig::from_table(&table)?,
            ..Config::default()
        };
        if let Some(url) = table.string("endpoint")? {
            let url = url.trim().trim_end_matches('/').to_string();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(table.expected(
                    "endpoint",
                    "an http:// or https:// URL (OTLP/HTTP's base, e.g. http://collector:4318)",
                ));
            }
            c.endpoint = url;
        }
        if let Some(text) = table.string("headers")? {
            c.headers = pairs(&text).map_err(|e| table.problem("headers", &e))?;
        }
        if let Some(name) = table.string("service_name")? {
            if name.trim().is_empty() {
                return Err(table.problem("service_name", "empty: name the service (service.name)"));
            }
            c.service_name = name.trim().to_string();
        }
        if let Some(name) = table.string("host_name")? {
            c.host_name = Some(name.trim().to_string()).filter(|n| !n.is_empty());
        }
        if let Some(text) = table.string("resource_attributes")? {
            c.resource_attributes =
                pairs(&text).map_err(|e| table.problem("resource_attributes", &e))?;
        }
        if let Some(compression) = table.string("compression")? {
            c.gzip = match compression.as_str() {
                "gzip" => true,
                "none" => false,
                _ => return Err(table.expected("compression", "\"gzip\" or \"none\"")),
            };
        }
        if let Some(protocol) = table.string("protocol")? {
            c.json = match protocol.trim() {
                "http/protobuf" => false,
                "http/json" => true,
                "grpc" => {
                    return Err(table.problem(
                        "protocol",
                        "grpc is not supported: this exporter speaks OTLP/HTTP; use \"http/protobuf\" and the receiver's HTTP port (4318)",
                    ))
                }
                _ => return Err(table.expected("protocol", "\"http/protobuf\" or \"http/json\"")),
            };
        }
        if let Some(logs) = table.boolean("logs")? {
            c.logs = logs;
        }
        if let Some(metrics) = table.boolean("metrics")? {
            c.metrics = metrics;
        }
        if let Some(ms) = table.whole("metrics_interval_ms", 1000, 86_400_000)? {
            c.metrics_interval_ms = ms;
        }
        if let Some(n) = table.whole("max_spans_per_send", 1, 100_000)? {
            c.max_spans_per_send = n as usize;
        }
        if let Some(n) = table.whole("max_pending_spans", 1, 10_000_000)? {
            c.max_pending_spans = n as usize;
        }
        (c.min_backoff_ms, c.max_backoff_ms) =
            backoff_config(&table, (c.min_backoff_ms, c.max_backoff_ms))?;
        Ok(c)
    }

    /// Where the traces go.
    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.endpoint)
    }

    /// Where the log records go.
    pub fn logs_url(&self) -> String {
        format!("{}/v1/logs", self.endpoint)
    }

    /// Where the metrics go.
    pub fn metrics_url(&self) -> String {
        format!("{}/v1/metrics", self.endpoint)
    }
}

/// OpenTelemetry's list format (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_RESOURCE_ATTRIBUTES`):
/// `key=value` pairs separated by commas, spaces around them trimmed, values
/// percent-decoded; empty is none.
pub fn pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let (k, v) = entry.split_once('=').ok_or_else(|| {
                format!(
                    "`{}` is not key=value (the format is k=v,k2=v2)",
                    entry.trim()
                )
            })?;
            let k = k.trim();
            if k.is_empty() {
                return Err(format!(
                    "`{}` has no key (the format is k=v,k2=v2)",
                    entry.trim()
                ));
            }
            Ok((k.to_string(), percent_decoded(v.trim())?))
        })
        .collect()
}

fn percent_decoded(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("`{s}`: a % not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{s}`: not UTF-8 once percent-decoded"))
}

#[cfg(test)]
mod tests {
    use metaclaude_plugin_sdk::testing::manifest_config_json;

    use super::*;

    #[test]
    fn the_manifest_defaults_parse_to_the_documented_defaults() {
        let json = manifest_config_json(include_str!("../plugin.toml"));
        let c = Config::parse(&json).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.traces_url(), "http://127.0.0.1:4318/v1/traces");
    }

    #[test]
    fn otel_lists_and_bad_values() {
        let c = Config::parse(
            r#"{"endpoint":"https://otlp.example/","headers":"api-key=a%3Db , x-team=ops","resource_attributes":"deployment.environment=prod","host_name":" web-1 ","compression":"none"}"#,
        )
        .unwrap();
        assert_eq!(c.traces_url(), "https://otlp.example/v1/traces");
        assert_eq!(
            c.headers,
            [
                ("api-key".to_string(), "a=b".to_string()),
                ("x-team".to_string(), "ops".to_string())
            ]
        );
        assert_eq!(c.host_name.as_deref(), Some("web-1"));
        assert!(!c.gzip);
        assert_eq!(c.resource_attributes.len(), 1);
        let err = |json: &str| Config::parse(json).unwrap_err();
        assert!(err(r#"{"endpoint":"collector:4318"}"#)
            .starts_with("config.endpoint: expected an http"));
        assert!(err(r#"{"headers":"novalue"}"#)
            .starts_with("config.headers: `novalue` is not key=value"));
        assert!(err(r#"{"headers":"a=%zz"}"#).contains("two hex digits"));
        assert!(err(r#"{"compression":"zstd"}"#).starts_with("config.compression"));
        assert!(err(r#"{"protocol":"grpc"}"#).contains("grpc is not supported"));
        assert!(err(r#"{"protocol":"json"}"#).starts_with("config.protocol: expected"));
        assert!(err(r#"{"metrics_interval_ms":10}"#).starts_with("config.metrics_interval_ms"));
        assert!(err(r#"{"duration_buckets":"2,1"}"#).starts_with("config.duration_buckets"));
        let c = Config::parse(
            r#"{"protocol":"http/json","metrics":false,"metrics_interval_ms":"5000"}"#,
        )
        .unwrap();
        assert!(c.json && !c.metrics && c.metrics_interval_ms == 5000);
        assert!(err(r#"{"service_name":" "}"#).starts_with("config.service_name: empty"));
        assert!(err(r#"{"min_backoff_ms":10,"max_backoff_ms":5}"#).contains("below min_backoff_ms"));
        assert!(err(r#"{"endpont":"x"}"#).starts_with("config.endpont: unknown key"));
        assert_eq!(pairs("").unwrap(), []);
    }
}
