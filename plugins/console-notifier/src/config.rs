//! The `[config]` table: what a line shows beside the alert, and how long it may be.

use metaclaude_notify::line::LineOptions;
use metaclaude_plugin_sdk::config::Table;

/// The shortest line budget: room for the status, severity, type and some of the rest.
pub const MIN_LINE_BYTES: u64 = 80;
/// The longest: a terminal line, not a document.
pub const MAX_LINE_BYTES: u64 = 65_536;

const KEYS: &[&str] = &["timestamps", "annotations", "max_line_bytes"];

/// The console notifier's settings: the line's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub line: LineOptions,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            line: LineOptions {
                timestamp: false,
                annotations: vec!["runbook_url".into()],
                max_bytes: 2048,
            },
        }
    }
}

impl Config {
    /// Reads the `[config]` table (as JSON).
    pub fn parse(json: &str) -> Result<Config, String> {
        let table = Table::parse(json, KEYS)?;
        let mut c = Config::default();
        if let Some(b) = table.boolean("timestamps")? {
            c.line.timestamp = b;
        }
        if let Some(names) = table.strings("annotations")? {
            c.line.annotations = names;
        }
        if let Some(n) = table.whole("max_line_bytes", MIN_LINE_BYTES, MAX_LINE_BYTES)? {
            c.line.max_bytes = n as usize;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use metaclaude_plugin_sdk::testing::manifest_config_json;

    use super::*;

    #[test]
    fn the_manifest_config_is_the_default() {
        // The manifest's table as the host hands it over.
        let json = manifest_config_json(include_str!("../plugin.toml"));
        assert_eq!(Config::parse(&json).unwrap(), Config::default(), "{json}");
        assert_eq!(Config::parse("{}").unwrap(), Config::default());
    }

    #[test]
    fn settings_and_their_errors() {
        let c = Config::parse(
            r#"{"timestamps":"true","annotations":"runbook_url, description","max_line_bytes":"500"}"#,
        )
        .unwrap();
        assert!(c.line.timestamp);
        assert_eq!(c.line.annotations, ["runbook_url", "description"]);
        assert_eq!(c.line.max_bytes, 500);
        assert!(Config::parse(r#"{"annotations":[]}"#)
            .unwrap()
            .line
            .annotations
            .is_empty());
        for (json, expect) in [
            (
                r#"{"timestamp":true}"#,
                "config.timestamp: unknown key (known: timestamps, annotations, max_line_bytes)",
            ),
            (
                r#"{"timestamps":1}"#,
                "config.timestamps: expected true or false, found 1",
            ),
            (
                r#"{"max_line_bytes":10}"#,
                "config.max_line_bytes: expected a whole number from 80 to 65536, found 10",
            ),
            (
                r#"{"annotations":{"a":1}}"#,
                r#"config.annotations: expected an array of strings, found {"a":1}"#,
            ),
        ] {
            assert_eq!(Config::parse(json).unwrap_err(), expect, "{json}");
        }
    }
}
