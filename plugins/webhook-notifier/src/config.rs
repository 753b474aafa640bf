//! The `[config]` table: where to post, in which format, with which headers.

use metaclaude_notify::config::{headers, http_url};
use metaclaude_plugin_sdk::config::Table;

/// What the body of a POST is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON array of the call's alerts, each the alert JSON.
    Json,
    /// `{"text": ...}`: one line per alert, for Slack's incoming webhooks and the chat
    /// servers that take the same (Mattermost, Rocket.Chat, ...).
    Slack,
    /// Alertmanager's webhook payload (version 4), one POST per group.
    AlertmanagerWebhook,
}

/// The Alertmanager webhook payload's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alertmanager {
    /// The payload's `receiver`.
    pub receiver: String,
    /// The labels alerts are grouped by, one POST per group (`groupLabels`); `["..."]`
    /// groups by all labels, `[]` puts every alert of a call in one group.
    pub group_by: Vec<String>,
    /// The payload's `externalURL`: where a reader follows up (e.g. `metaclaude serve`).
    pub external_url: String,
    /// Each alert's `generatorURL`.
    pub generator_url: String,
}

impl Default for Alertmanager {
    fn default() -> Alertmanager {
        Alertmanager {
            receiver: "metaclaude".into(),
            group_by: vec!["alertname".into()],
            external_url: String::new(),
            generator_url: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub url: String,
    pub format: Format,
    /// Sent with every POST, after `Content-Type` (which they may replace).
    pub headers: Vec<(String, String)>,
    pub alertmanager: Alertmanager,
}

const KEYS: &[&str] = &[
    "url",
    "format",
    "headers",
    "receiver",
    "group_by",
    "external_url",
    "generator_url",
];
const ALERTMANAGER_KEYS: &[&str] = &["receiver", "group_by", "external_url", "generator_url"];
const FORMATS: &[&str] = &["json", "slack", "alertmanager-webhook"];

impl Config {
    /// Reads the `[config]` table (as JSON).
    pub fn parse(json: &str) -> Result<Config, String> {
        let table = Table::parse(json, KEYS)?;
        let url = http_url(&table, "url")?.ok_or(
            "config.url: missing: the webhook's URL (and the same URL in the manifest's capabilities.http)",
        )?;
        let format = match table.choice("format", FORMATS)?.unwrap_or("json") {
            "slack" => Format::Slack,
            "alertmanager-webhook" => Format::AlertmanagerWebhook,
            _ => Format::Json,
        };
        if format != Format::AlertmanagerWebhook {
            if let Some(key) = ALERTMANAGER_KEYS.iter().find(|k| table.has(k)) {
                return Err(format!(
                    "config.{key}: only used with format = \"alertmanager-webhook\" (format is \"{}\")",
                    table.string("format")?.unwrap_or_else(|| "json".into())
                ));
            }
        }
        let mut alertmanager = Alertmanager::default();
        if let Some(receiver) = table.string("receiver")? {
            alertmanager.receiver = receiver;
        }
        if let Some(group_by) = table.strings("group_by")? {
            if group_by.len() > 1 && group_by.iter().any(|l| l == "...") {
                return Err(
                    "config.group_by: \"...\" (every label) stands alone, found it among other labels"
                        .into(),
                );
            }
            alertmanager.group_by = group_by;
        }
        if let Some(url) = table.string("external_url")? {
            if !url.is_empty() {
                http_url(&table, "external_url")?;
            }
            alertmanager.external_url = url;
        }
        if let Some(url) = table.string("generator_url")? {
            if !url.is_empty() {
                http_url(&table, "generator_url")?;
            }
            alertmanager.generator_url = url;
        }
        Ok(Config {
            url,
            format,
            headers: headers(&table, "headers")?,
            alertmanager,
        })
    }
}

#[cfg(test)]
mod tests {
    use metaclaude_plugin_sdk::testing::manifest_config_json;

    use super::*;

    #[test]
    fn the_manifest_config_parses_to_the_defaults() {
        let manifest = include_str!("../plugin.toml");
        let c = Config::parse(&manifest_config_json(manifest)).unwrap();
        assert_eq!(c.url, "http://127.0.0.1:9000/alerts");
        assert_eq!(c.format, Format::Json);
        assert!(c.headers.is_empty());
        assert_eq!(c.alertmanager, Alertmanager::default());
        // The grant is the same URL.
        assert!(manifest
            .contains("http = [\"${METACLAUDE_WEBHOOK_URL:-http://127.0.0.1:9000/alerts}\"]"));
    }

    #[test]
    fn every_format_and_its_settings() {
        let c = Config::parse(
            r#"{"url":"https://hooks.slack.com/services/T/B/x","format":"slack","headers":{"X-Team":"web"}}"#,
        )
        .unwrap();
        assert_eq!(c.format, Format::Slack);
        assert_eq!(c.headers, [("X-Team".to_string(), "web".to_string())]);
        let c = Config::parse(
            r#"{"url":"http://127.0.0.1:5001/","format":"alertmanager-webhook","receiver":"team-web","group_by":"alertname, specialist","external_url":"http://127.0.0.1:8080","generator_url":""}"#,
        )
        .unwrap();
        assert_eq!(c.format, Format::AlertmanagerWebhook);
        assert_eq!(
            c.alertmanager,
            Alertmanager {
                receiver: "team-web".into(),
                group_by: vec!["alertname".into(), "specialist".into()],
                external_url: "http://127.0.0.1:8080".into(),
                generator_url: String::new(),
            }
        );
        let c = Config::parse(
            r#"{"url":"http://h/","format":"alertmanager-webhook","group_by":["..."]}"#,
        )
        .unwrap();
        assert_eq!(c.alertmanager.group_by, ["..."]);
    }

    #[test]
    fn bad_settings_are_refused_naming_the_key() {
        for (json, expect) in [
            (
                "{}",
                "config.url: missing: the webhook's URL (and the same URL in the manifest's capabilities.http)",
            ),
            (
                r#"{"url":"hooks.slack.com/x"}"#,
                "config.url: expected an http:// or https:// URL, found \"hooks.slack.com/x\"",
            ),
            (
                r#"{"url":"http://h/","format":"teams"}"#,
                r#"config.format: expected one of "json", "slack", "alertmanager-webhook", found "teams""#,
            ),
            (
                r#"{"url":"http://h/","receiver":"x"}"#,
                r#"config.receiver: only used with format = "alertmanager-webhook" (format is "json")"#,
            ),
            (
                r#"{"url":"http://h/","format":"slack","group_by":["x"]}"#,
                r#"config.group_by: only used with format = "alertmanager-webhook" (format is "slack")"#,
            ),
            (
                r#"{"url":"http://h/","format":"alertmanager-webhook","group_by":["...","x"]}"#,
                r#"config.group_by: "..." (every label) stands alone, found it among other labels"#,
            ),
            (
                r#"{"url":"http://h/","format":"alertmanager-webhook","external_url":"localhost:8080"}"#,
                r#"config.external_url: expected an http:// or https:// URL, found "localhost:8080""#,
            ),
            (
                r#"{"url":"http://h/","headers":{"Authorization":""}}"#,
                "config.headers.Authorization: empty (is the variable it names set in the host's environment?)",
            ),
            (
                r#"{"url":"http://h/","method":"PUT"}"#,
                "config.method: unknown key (known: url, format, headers, receiver, group_by, external_url, generator_url)",
            ),
        ] {
            assert_eq!(Config::parse(json).unwrap_err(), expect, "{json}");
        }
    }
}
