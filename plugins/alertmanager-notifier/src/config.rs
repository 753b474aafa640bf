//! The `[config]` table: which Alertmanagers, how long a firing alert lasts without news.

use metaclaude_notify::config::{check_http_url, headers, http_url};
use metaclaude_plugin_sdk::config::Table;

/// Alertmanager's endpoint for alerts, after its base URL.
pub const ALERTS_PATH: &str = "/api/v2/alerts";

/// The longest `ends_at_horizon_s`: a week.
pub const MAX_HORIZON_S: u64 = 7 * 24 * 3600;

/// The most Alertmanagers one notifier posts to.
pub const MAX_ALERTMANAGERS: usize = 16;

const KEYS: &[&str] = &[
    "url",
    "urls",
    "ends_at_horizon_s",
    "generator_url",
    "headers",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Each Alertmanager's base URL, e.g. `http://127.0.0.1:9093` (no trailing `/`): one
    /// (`url`), or every instance of a cluster (`urls`), each sent every alert.
    pub urls: Vec<String>,
    /// A firing alert's `endsAt` is this long after the POST; 0: no `endsAt`.
    pub ends_at_horizon_s: u64,
    /// Every alert's `generatorURL` (empty: none).
    pub generator_url: String,
    /// Sent with every POST, after `Content-Type`.
    pub headers: Vec<(String, String)>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            urls: vec!["http://127.0.0.1:9093".into()],
            ends_at_horizon_s: 240,
            generator_url: String::new(),
            headers: Vec::new(),
        }
    }
}

impl Config {
    /// Reads the `[config]` table (as JSON).
    pub fn parse(json: &str) -> Result<Config, String> {
        let table = Table::parse(json, KEYS)?;
        let mut c = Config::default();
        if let Some(url) = http_url(&table, "url")? {
            if table.has("urls") {
                return Err(
                    "config.urls: give either url (one Alertmanager) or urls (every instance of a cluster), not both"
                        .into(),
                );
            }
            c.urls = vec![base_url("config.url", url)?];
        }
        if let Some(urls) = table.strings("urls")? {
            if urls.is_empty() || urls.len() > MAX_ALERTMANAGERS {
                return Err(format!(
                    "config.urls: list 1 to {MAX_ALERTMANAGERS} Alertmanager base URLs, e.g. [\"http://am-1:9093\", \"http://am-2:9093\"], found {}",
                    urls.len()
                ));
            }
            c.urls.clear();
            for (i, url) in urls.into_iter().enumerate() {
                let at = format!("config.urls[{i}]");
                check_http_url(&url).map_err(|why| format!("{at}: {why}"))?;
                let url = base_url(&at, url)?;
                if c.urls.contains(&url) {
                    return Err(format!("{at}: \"{url}\" is listed twice"));
                }
                c.urls.push(url);
            }
        }
        if let Some(s) = table.whole("ends_at_horizon_s", 0, MAX_HORIZON_S)? {
            c.ends_at_horizon_s = s;
        }
        if let Some(url) = table.string("generator_url")? {
            if !url.is_empty() {
                http_url(&table, "generator_url")?;
            }
            c.generator_url = url;
        }
        c.headers = headers(&table, "headers")?;
        Ok(c)
    }

    /// Where alerts are posted: `{url}/api/v2/alerts` for each Alertmanager, in order.
    pub fn endpoints(&self) -> Vec<String> {
        self.urls
            .iter()
            .map(|u| format!("{u}{ALERTS_PATH}"))
            .collect()
    }
}

/// `url` if it is an Alertmanager's base URL (the plugin, and the grant, append
/// [`ALERTS_PATH`]); else why not, `at` naming the key.
fn base_url(at: &str, url: String) -> Result<String, String> {
    if url.ends_with('/') {
        return Err(format!(
            "{at}: remove the trailing `/` from \"{url}\" (the plugin, and the manifest's capabilities.http grant, append {ALERTS_PATH} to it)"
        ));
    }
    if url.ends_with(ALERTS_PATH) || url.ends_with("/api/v2") {
        return Err(format!(
            "{at}: give Alertmanager's base URL, e.g. http://127.0.0.1:9093, found \"{url}\" (the plugin appends {ALERTS_PATH})"
        ));
    }
    if url.contains('?') {
        return Err(format!(
            "{at}: a query (?...) is not allowed, found \"{url}\""
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use metaclaude_plugin_sdk::testing::manifest_config_json;

    use super::*;

    #[test]
    fn the_manifest_config_parses_to_the_defaults() {
        let manifest = include_str!("../plugin.toml");
        let c = Config::parse(&manifest_config_json(manifest)).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(Config::parse("{}").unwrap(), Config::default());
        assert_eq!(c.endpoints(), ["http://127.0.0.1:9093/api/v2/alerts"]);
        // The grant is the same base URL and the same path.
        assert!(manifest.contains(
            "http = [\"${METACLAUDE_ALERTMANAGER_URL:-http://127.0.0.1:9093}/api/v2/alerts\"]"
        ));
        assert!(
            manifest.contains("url = \"${METACLAUDE_ALERTMANAGER_URL:-http://127.0.0.1:9093}\"")
        );
    }

    #[test]
    fn settings_and_their_errors() {
        let c = Config::parse(
            r#"{"url":"https://am.example:9093/alertmanager","ends_at_horizon_s":"0","generator_url":"http://127.0.0.1:8080/","headers":{"Authorization":"Basic eDp5"}}"#,
        )
        .unwrap();
        assert_eq!(
            c.endpoints(),
            ["https://am.example:9093/alertmanager/api/v2/alerts"]
        );
        assert_eq!(c.ends_at_horizon_s, 0);
        assert_eq!(c.generator_url, "http://127.0.0.1:8080/");
        assert_eq!(c.headers.len(), 1);
        for (json, expect) in [
            (
                r#"{"url":"http://127.0.0.1:9093/"}"#,
                "config.url: remove the trailing `/` from \"http://127.0.0.1:9093/\" (the plugin, and the manifest's capabilities.http grant, append /api/v2/alerts to it)",
            ),
            (
                r#"{"url":"http://127.0.0.1:9093/api/v2/alerts"}"#,
                "config.url: give Alertmanager's base URL, e.g. http://127.0.0.1:9093, found \"http://127.0.0.1:9093/api/v2/alerts\" (the plugin appends /api/v2/alerts)",
            ),
            (
                r#"{"url":"http://h:9093?x=1"}"#,
                "config.url: a query (?...) is not allowed, found \"http://h:9093?x=1\"",
            ),
            (
                r#"{"url":"127.0.0.1:9093"}"#,
                "config.url: expected an http:// or https:// URL, found \"127.0.0.1:9093\"",
            ),
            (
                r#"{"ends_at_horizon_s":-1}"#,
                "config.ends_at_horizon_s: expected a whole number from 0 to 604800, found -1",
            ),
            (
                r#"{"generator_url":"x"}"#,
                "config.generator_url: expected an http:// or https:// URL, found \"x\"",
            ),
            (
                r#"{"resolve_timeout":"5m"}"#,
                "config.resolve_timeout: unknown key (known: url, urls, ends_at_horizon_s, generator_url, headers)",
            ),
        ] {
            assert_eq!(Config::parse(json).unwrap_err(), expect, "{json}");
        }
    }

    #[test]
    fn a_cluster_is_a_list_of_base_urls() {
        let c = Config::parse(r#"{"urls":["http://127.0.0.1:9093"," http://127.0.0.1:9094 "]}"#)
            .unwrap();
        assert_eq!(
            c.endpoints(),
            [
                "http://127.0.0.1:9093/api/v2/alerts",
                "http://127.0.0.1:9094/api/v2/alerts"
            ]
        );
        // One string of comma-separated URLs is a list too.
        let c = Config::parse(r#"{"urls":"http://a:9093,http://b:9093"}"#).unwrap();
        assert_eq!(c.urls, ["http://a:9093", "http://b:9093"]);
        for (json, expect) in [
            (
                r#"{"url":"http://a:9093","urls":["http://b:9093"]}"#,
                "config.urls: give either url (one Alertmanager) or urls (every instance of a cluster), not both",
            ),
            (
                r#"{"urls":[]}"#,
                "config.urls: list 1 to 16 Alertmanager base URLs, e.g. [\"http://am-1:9093\", \"http://am-2:9093\"], found 0",
            ),
            (
                r#"{"urls":["http://a:9093","http://a:9093/"]}"#,
                "config.urls[1]: remove the trailing `/` from \"http://a:9093/\" (the plugin, and the manifest's capabilities.http grant, append /api/v2/alerts to it)",
            ),
            (
                r#"{"urls":["http://a:9093","a:9094"]}"#,
                "config.urls[1]: expected an http:// or https:// URL, found \"a:9094\"",
            ),
            (
                r#"{"urls":["http://a:9093","http://a:9093"]}"#,
                "config.urls[1]: \"http://a:9093\" is listed twice",
            ),
            (
                r#"{"urls":[1]}"#,
                "config.urls: expected an array of strings, found [1]",
            ),
        ] {
            assert_eq!(Config::parse(json).unwrap_err(), expect, "{json}");
        }
    }
}
