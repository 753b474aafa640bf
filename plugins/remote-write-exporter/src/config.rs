//! The `[config]` table: the receiver, the external labels, the push interval, batching,
//! the queue's bound, the backoff, the spool; and the Prometheus exporter's own keys.

use std::collections::BTreeMap;

use metaclaude_plugin_sdk::config::Table;
use metaclaude_prometheus_series::config::{Config as SeriesConfig, KEYS as SERIES_KEYS};
use metaclaude_push::retry::backoff_config;
use metaclaude_push::string_map;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The receiver's remote write endpoint.
    pub url: String,
    /// Added to every series, by name.
    pub external_labels: BTreeMap<String, String>,
    pub interval_s: u64,
    pub max_samples_per_send: usize,
    pub max_bytes_per_send: usize,
    pub max_pending_samples: usize,
    pub min_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Guest path of the spool directory; `None`: nothing kept across restarts.
    pub spool_dir: Option<String>,
    pub spool_max_age_s: u64,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// The series' buckets and label caps (the Prometheus exporter's keys).
    pub series: SeriesConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            url: "http://127.0.0.1:9090/api/v1/write".into(),
            external_labels: BTreeMap::new(),
            interval_s: 15,
            max_samples_per_send: 2000,
            max_bytes_per_send: 4 << 20,
            max_pending_samples: 200_000,
            min_backoff_ms: 250,
            max_backoff_ms: 5000,
            spool_dir: Some("/spool".into()),
            spool_max_age_s: 3600,
            headers: Vec::new(),
            series: SeriesConfig::default(),
        }
    }
}

const OWN_KEYS: &[&str] = &[
    "url",
    "external_labels",
    "interval_s",
    "max_samples_per_send",
    "max_bytes_per_send",
    "max_pending_samples",
    "min_backoff_ms",
    "max_backoff_ms",
    "spool_dir",
    "spool_max_age_s",
    "headers",
];

/// Whether `name` may be a label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not reserved (`__`).
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// The series' own labels: an external label of one of these names would never show.
const SERIES_LABELS: &[&str] = &["script", "specialist", "category", "le", "label"];

impl Config {
    /// Reads the `[config]` table (as JSON): every problem names its key.
    pub fn parse(json: &str) -> Result<Config, String> {
        let known: Vec<&str> = OWN_KEYS.iter().chain(SERIES_KEYS).copied().collect();
        let table = Table::parse(json, &known)?;
        let mut c = Config {
            series: SeriesConfig::from_table(&table)?,
            ..Config::default()
        };
        if let Some(url) = table.string("url")? {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(table.expected("url", "an http:// or https:// URL"));
            }
            c.url = url;
        }
        c.external_labels = string_map(&table, "external_labels")?;
        for (name, value) in &c.external_labels {
            if !valid_label_name(name) {
                return Err(format!("config.external_labels.{name}: not a label name: use letters, digits and _ (not starting with a digit or __)"));
            }
            if SERIES_LABELS.contains(&name.as_str()) {
                return Err(format!("config.external_labels.{name}: every series has its own `{name}` label, which would hide this one: pick another name"));
            }
            if value.is_empty() {
                return Err(format!("config.external_labels.{name}: empty (a series without the label): give it a value"));
            }
        }
        c.headers = string_map(&table, "headers")?.into_iter().collect();
        if let Some(n) = table.whole("interval_s", 1, 86_400)? {
            c.interval_s = n;
        }
        if let Some(n) = table.whole("max_samples_per_send", 1, 1_000_000)? {
            c.max_samples_per_send = n as usize;
        }
        if let Some(n) = table.whole("max_bytes_per_send", 1024, 16 << 20)? {
            c.max_bytes_per_send = n as usize;
        }
        if let Some(n) = table.whole("max_pending_samples", 1, 10_000_000)? {
            c.max_pending_samples = n as usize;
        }
        (c.min_backoff_ms, c.max_backoff_ms) =
            backoff_config(&table, (c.min_backoff_ms, c.max_backoff_ms))?;
        if let Some(dir) = table.string("spool_dir")? {
            c.spool_dir = (!dir.is_empty()).then_some(dir);
        }
        if let Some(n) = table.whole("spool_max_age_s", 1, 30 * 86_400)? {
            c.spool_max_age_s = n;
        }
        Ok(c)
    }

    /// Where the samples go, for people and as the `destination` label: the URL's scheme,
    /// host and port (its path, query and any credentials left out).
    pub fn destination(&self) -> String {
        metaclaude_push::destination(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use metaclaude_plugin_sdk::testing::manifest_config_json;

    use super::*;

    #[test]
    fn the_manifest_defaults_parse_to_the_documented_defaults() {
        let json = manifest_config_json(include_str!("../plugin.toml"));
        let c = Config::parse(&json).unwrap();
        assert_eq!(
            c,
            Config {
                external_labels: [("host".to_string(), "localhost".to_string())].into(),
                ..Config::default()
            }
        );
        assert_eq!(c.destination(), "http://127.0.0.1:9090");
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let err = |json: &str| Config::parse(json).unwrap_err();
        assert!(err(r#"{"urls":"x"}"#).starts_with("config.urls: unknown key"));
        assert!(err(r#"{"url":"ftp://x"}"#).starts_with("config.url: expected an http"));
        assert!(err(r#"{"external_labels":{"1x":"a"}}"#)
            .starts_with("config.external_labels.1x: not a label name"));
        assert!(err(r#"{"external_labels":{"__name__":"a"}}"#).contains("not a label name"));
        assert!(err(r#"{"external_labels":{"script":"a"}}"#).contains("its own `script` label"));
        assert!(err(r#"{"external_labels":{"host":""}}"#).contains("empty"));
        assert!(err(r#"{"external_labels":{"host":3}}"#).contains("expected a string"));
        assert!(err(r#"{"interval_s":0}"#)
            .starts_with("config.interval_s: expected a whole number from 1"));
        assert!(err(r#"{"min_backoff_ms":100,"max_backoff_ms":50}"#)
            .starts_with("config.max_backoff_ms: below min_backoff_ms (100)"));
        assert!(err(r#"{"max_scripts":0}"#).starts_with("config.max_scripts"));
        let c = Config::parse(r#"{"interval_s":"2","spool_dir":"","url":"https://u:p@vm.example:8428/api/v1/write?x=1"}"#).unwrap();
        assert_eq!((c.interval_s, c.spool_dir.as_deref()), (2, None));
        assert_eq!(
            c.destination(),
            "https://vm.example:8428",
            "no credentials, path or query"
        );
    }
}
