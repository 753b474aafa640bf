//! The `[config]` table: where to send, how to name and label, how to pack.

use metaclaude_plugin_sdk::config::Table;

use crate::format::sanitize_prefix;

/// How labels (script, specialist, category) travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagStyle {
    /// DogStatsD: `name:1|c|#script:hello,specialist:ops` (the reference statsd since
    /// 0.9, the Datadog agent, Telegraf, statsd_exporter).
    DogStatsd,
    /// Folded into the name, for daemons without tags: `name.hello.ops:1|c`.
    Graphite,
    /// No labels at all.
    None,
}

/// How the peak memory is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryAs {
    /// `|ms`: every sample aggregated by the daemon (count, mean, upper, percentiles).
    Timer,
    /// `|g`: the last value of a flush interval wins.
    Gauge,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub host: String,
    pub port: u16,
    /// Sanitised; empty for none. Names are `prefix.` + the metric's name.
    pub prefix: String,
    pub tag_style: TagStyle,
    /// Given, or [`default_payload`] for the host.
    pub max_payload_bytes: usize,
    pub sample_rate: f64,
    pub max_scripts: usize,
    pub max_specialists: usize,
    pub memory_as: MemoryAs,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            host: "127.0.0.1".into(),
            port: 8125,
            prefix: "metaclaude".into(),
            tag_style: TagStyle::DogStatsd,
            max_payload_bytes: LOOPBACK_PAYLOAD,
            sample_rate: 1.0,
            max_scripts: 500,
            max_specialists: 500,
            memory_as: MemoryAs::Timer,
        }
    }
}

/// The default payload to a loopback target. Loopback's MTU is 64 KiB, so nothing is
/// fragmented there; 8192 bytes is what the Datadog agent reads by default
/// (`dogstatsd_buffer_size`), the smallest buffer of the daemons the README names (the
/// reference statsd, Telegraf and statsd_exporter read up to 64 KiB). Fewer, larger
/// datagrams cost the exporter and the daemon fewer system calls and wake-ups.
pub const LOOPBACK_PAYLOAD: usize = 8192;
/// The default payload to any other target: fits a 1500-byte MTU with the IP and UDP
/// headers.
pub const NETWORK_PAYLOAD: usize = 1432;

/// The payload used when `max_payload_bytes` is not given: [`LOOPBACK_PAYLOAD`] to a
/// loopback address or `localhost`, else [`NETWORK_PAYLOAD`].
pub fn default_payload(host: &str) -> usize {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        LOOPBACK_PAYLOAD
    } else {
        NETWORK_PAYLOAD
    }
}

/// The largest UDP payload over IPv4.
pub const MAX_DATAGRAM: usize = 65_507;
/// The smallest payload accepted: room for any line this exporter writes bar hostile labels.
pub const MIN_PAYLOAD: usize = 64;
const MAX_PREFIX: usize = 100;

const KEYS: &[&str] = &[
    "host",
    "port",
    "prefix",
    "tag_style",
    "max_payload_bytes",
    "sample_rate",
    "max_scripts",
    "max_specialists",
    "memory_as",
];

impl Config {
    /// The target as `host:port` (the form the manifest's `udp` grant takes).
    pub fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Reads the `[config]` table (as JSON). Numbers may be given as strings, since
    /// `${VAR:-default}` expands to a string.
    pub fn parse(json: &str) -> Result<Config, String> {
        let table = Table::parse(json, KEYS)?;
        let mut c = Config::default();
        // A finite number from `min` to `max`, or a string of one; `what` says which.
        let number = |key: &str, min: f64, max: f64, what: &str| -> Result<Option<f64>, String> {
            let n = table.number(key).map_err(|_| table.expected(key, what))?;
            n.map(|n| {
                (n.is_finite() && n >= min && n <= max)
                    .then_some(n)
                    .ok_or_else(|| table.expected(key, what))
            })
            .transpose()
        };
        // A whole number from `min` to `max`, written as any number (`8125.0` too).
        let whole = |key: &str, min: u64, max: u64| -> Result<Option<u64>, String> {
            let what = format!("a whole number from {min} to {max}");
            let Some(n) = number(key, min as f64, max as f64, &what)? else {
                return Ok(None);
            };
            if n.fract() != 0.0 {
                return Err(table.expected(key, "a whole number"));
            }
            Ok(Some(n as u64))
        };
        let host = "a host name or address";
        if let Some(name) = table
            .string("host")
            .map_err(|_| table.expected("host", host))?
        {
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(table.expected("host", host));
            }
            c.host = name;
        }
        if let Some(port) = whole("port", 1, 65535)? {
            c.port = port as u16;
        }
        if let Some(raw) = table.string("prefix")? {
            if raw.len() > MAX_PREFIX {
                return Err(format!(
                    "config.prefix: at most {MAX_PREFIX} characters, found {}",
                    raw.len()
                ));
            }
            c.prefix = sanitize_prefix(&raw);
        }
        let tag_style = table
            .choice("tag_style", &["dogstatsd", "graphite", "none"])
            .map_err(|_| table.expected("tag_style", "dogstatsd, graphite or none"))?;
        if let Some(style) = tag_style {
            c.tag_style = match style {
                "graphite" => TagStyle::Graphite,
                "none" => TagStyle::None,
                _ => TagStyle::DogStatsd,
            };
        }
        c.max_payload_bytes =
            match whole("max_payload_bytes", MIN_PAYLOAD as u64, MAX_DATAGRAM as u64)? {
                Some(n) => n as usize,
                None => default_payload(&c.host),
            };
        let rate = "a number above 0 and at most 1";
        if let Some(r) = number("sample_rate", 0.0, 1.0, rate)? {
            if r == 0.0 {
                return Err(format!(
                    "{} (to send nothing, remove the plugin)",
                    table.expected("sample_rate", rate)
                ));
            }
            c.sample_rate = r;
        }
        if let Some(n) = whole("max_scripts", 1, 1_000_000)? {
            c.max_scripts = n as usize;
        }
        if let Some(n) = whole("max_specialists", 1, 1_000_000)? {
            c.max_specialists = n as usize;
        }
        let memory_as = table
            .choice("memory_as", &["timer", "gauge"])
            .map_err(|_| table.expected("memory_as", "timer or gauge"))?;
        if let Some(kind) = memory_as {
            c.memory_as = match kind {
                "gauge" => MemoryAs::Gauge,
                _ => MemoryAs::Timer,
            };
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use metaclaude_plugin_sdk::testing::manifest_config_json;

    use super::*;

    #[test]
    fn the_manifest_defaults_parse_to_the_documented_defaults() {
        // The manifest's table, as the host hands it over.
        let json = manifest_config_json(include_str!("../plugin.toml"));
        let c = Config::parse(&json).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.target(), "127.0.0.1:8125");
        assert_eq!(Config::parse("{}").unwrap(), Config::default());
    }

    #[test]
    fn the_payload_defaults_to_large_datagrams_on_loopback_only() {
        for (host, payload) in [
            ("127.0.0.1", LOOPBACK_PAYLOAD),
            ("127.9.9.9", LOOPBACK_PAYLOAD),
            ("[::1]", LOOPBACK_PAYLOAD),
            ("localhost", LOOPBACK_PAYLOAD),
            ("LOCALHOST", LOOPBACK_PAYLOAD),
            ("10.0.0.7", NETWORK_PAYLOAD),
            ("[2001:db8::1]", NETWORK_PAYLOAD),
            ("statsd.internal", NETWORK_PAYLOAD),
            ("localhost.example.com", NETWORK_PAYLOAD),
        ] {
            let c = Config::parse(&format!(r#"{{"host":"{host}"}}"#)).unwrap();
            assert_eq!(c.max_payload_bytes, payload, "{host}");
            // Given, it is what it says, whatever the host.
            let c =
                Config::parse(&format!(r#"{{"host":"{host}","max_payload_bytes":1432}}"#)).unwrap();
            assert_eq!(c.max_payload_bytes, 1432, "{host}");
        }
    }

    #[test]
    fn numbers_may_come_as_expanded_strings() {
        let c = Config::parse(
            r#"{"port":" 9125 ","sample_rate":"0.25","max_payload_bytes":"512","max_scripts":"3"}"#,
        )
        .unwrap();
        assert_eq!(
            (c.port, c.sample_rate, c.max_payload_bytes, c.max_scripts),
            (9125, 0.25, 512, 3)
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        for (json, expect) in [
            (
                r#"{"port":"0"}"#,
                "config.port: expected a whole number from 1 to 65535",
            ),
            (r#"{"port":"http"}"#, "config.port: expected"),
            (r#"{"port":8125.5}"#, "config.port: expected a whole number"),
            (
                r#"{"sample_rate":0}"#,
                "config.sample_rate: expected a number above 0",
            ),
            (
                r#"{"sample_rate":1.5}"#,
                "config.sample_rate: expected a number above 0",
            ),
            (
                r#"{"max_payload_bytes":10}"#,
                "config.max_payload_bytes: expected a whole number from 64 to 65507",
            ),
            (
                r#"{"tag_style":"influx"}"#,
                "config.tag_style: expected dogstatsd, graphite or none",
            ),
            (
                r#"{"memory_as":"histogram"}"#,
                "config.memory_as: expected timer or gauge",
            ),
            (
                r#"{"host":""}"#,
                "config.host: expected a host name or address",
            ),
            (
                r#"{"max_scripts":0}"#,
                "config.max_scripts: expected a whole number from 1",
            ),
            (
                r#"{"prefx":"a"}"#,
                "config.prefx: unknown key (known: host, port, prefix",
            ),
        ] {
            let err = Config::parse(json).unwrap_err();
            assert!(err.starts_with(expect), "{json}: {err}");
        }
    }

    #[test]
    fn the_prefix_is_sanitised_and_may_be_empty() {
        assert_eq!(
            Config::parse(r#"{"prefix":"ci.metaclaude"}"#)
                .unwrap()
                .prefix,
            "ci.metaclaude"
        );
        assert_eq!(
            Config::parse(r#"{"prefix":"a:b|c@d"}"#).unwrap().prefix,
            "a_b_c_d"
        );
        assert_eq!(Config::parse(r#"{"prefix":""}"#).unwrap().prefix, "");
        assert_eq!(Config::parse(r#"{"prefix":".x."}"#).unwrap().prefix, "x");
    }
}
