//! The `[config]` table: the window, the minimum sample count, the specialists, the life
//! cycle's durations and the eight thresholds.

use metaclaude_plugin_sdk::config::Table;

use crate::thresholds::{Threshold, Thresholds};

/// The longest window, seconds (a day).
pub const MAX_WINDOW_SECONDS: u64 = 86_400;
/// The shortest window, seconds.
pub const MIN_WINDOW_SECONDS: u64 = 10;
/// The most specialists evaluated on their own.
pub const MAX_MAX_SPECIALISTS: u64 = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The length of the window every rule looks at, seconds.
    pub window_seconds: u64,
    /// Executions a window needs before a rule judges it (for the rate drop: the previous
    /// window's).
    pub min_samples: u64,
    /// Also evaluate every rule for each specialist on its own.
    pub per_specialist: bool,
    /// Distinct specialists evaluated on their own at once; beyond them, globally only.
    pub max_specialists: usize,
    /// How long a condition must hold before its alert fires, seconds (`for`).
    pub for_seconds: u64,
    /// How long a firing alert keeps firing after its condition cleared, seconds.
    pub keep_firing_for_seconds: u64,
    /// The `runbook_url` annotation of every alert (`{type}` replaced by its type); none
    /// when empty.
    pub runbook_url: Option<String>,
    pub thresholds: Thresholds,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            window_seconds: 300,
            min_samples: 10,
            per_specialist: true,
            max_specialists: 100,
            for_seconds: 0,
            keep_firing_for_seconds: 60,
            runbook_url: None,
            thresholds: Thresholds::default(),
        }
    }
}

/// The keys besides the thresholds (each known by its name).
const KEYS: [&str; 7] = [
    "window_seconds",
    "min_samples",
    "per_specialist",
    "max_specialists",
    "for_seconds",
    "keep_firing_for_seconds",
    "runbook_url",
];

/// Every key, as an unknown key's error lists them.
const LISTING: &str = "window_seconds, min_samples, per_specialist, max_specialists, for_seconds, keep_firing_for_seconds, runbook_url, and the thresholds error_rate_percent, error_rate_percent_critical, p95_duration_seconds, p95_duration_seconds_critical, memory_peak_mb, memory_peak_mb_critical, execution_rate_drop_percent, execution_rate_drop_percent_critical";

impl Config {
    /// Reads the `[config]` table (as JSON). Numbers and booleans may be given as strings,
    /// since `${VAR:-default}` expands to a string. An error names the key and what it
    /// takes.
    pub fn parse(json: &str) -> Result<Config, String> {
        let known: Vec<&str> = KEYS
            .into_iter()
            .chain(Threshold::ALL.map(Threshold::name))
            .collect();
        let table = Table::read(json)?.check_keys(&known, LISTING)?;
        let mut c = Config::default();
        if let Some(n) = table.whole("window_seconds", MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS)? {
            c.window_seconds = n;
        }
        if let Some(n) = table.whole("min_samples", 1, 1_000_000)? {
            c.min_samples = n;
        }
        if let Some(b) = table.boolean("per_specialist")? {
            c.per_specialist = b;
        }
        if let Some(n) = table.whole("max_specialists", 1, MAX_MAX_SPECIALISTS)? {
            c.max_specialists = n as usize;
        }
        if let Some(n) = table.whole("for_seconds", 0, MAX_WINDOW_SECONDS)? {
            c.for_seconds = n;
        }
        if let Some(n) = table.whole("keep_firing_for_seconds", 0, MAX_WINDOW_SECONDS)? {
            c.keep_firing_for_seconds = n;
        }
        let runbook_url = table
            .string("runbook_url")
            .map_err(|_| table.expected("runbook_url", "a URL as a string (empty for none)"))?;
        if let Some(url) = runbook_url {
            c.runbook_url = (!url.is_empty()).then_some(url);
        }
        let mut given = Vec::new();
        for threshold in Threshold::ALL {
            let key = threshold.name();
            if let Some(v) = table.number(key)? {
                threshold
                    .check_range(v)
                    .map_err(|why| format!("config.{key}: {why}"))?;
                c.thresholds.put(threshold, v);
                given.push(threshold);
            }
        }
        // Checked once all are read, so a table may raise both thresholds of a rule.
        for threshold in Threshold::ALL {
            let value = c.thresholds.get(threshold);
            if let Err(why) = c.thresholds.check_order(threshold, value, "config.") {
                // Name the threshold the table set (the other may be a default).
                if given.contains(&threshold) {
                    return Err(why);
                }
            }
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
        let from_manifest = Config::parse(&json);
        assert_eq!(from_manifest.unwrap(), Config::default());
        assert_eq!(Config::parse("{}").unwrap(), Config::default());
        // Every threshold is in the manifest, under its name.
        let table = Table::read(&json).unwrap();
        for t in Threshold::ALL {
            assert!(table.has(t.name()), "{t} missing from plugin.toml");
        }
    }

    #[test]
    fn values_may_come_as_expanded_strings() {
        let c = Config::parse(
            r#"{"window_seconds":"60","min_samples":" 3 ","per_specialist":"false","error_rate_percent":"5.5","error_rate_percent_critical":7,"runbook_url":"https://wiki/{type}"}"#,
        )
        .unwrap();
        assert_eq!((c.window_seconds, c.min_samples), (60, 3));
        assert!(!c.per_specialist);
        assert_eq!(c.thresholds.get(Threshold::ErrorRatePercent), 5.5);
        assert_eq!(c.thresholds.get(Threshold::ErrorRatePercentCritical), 7.0);
        assert_eq!(c.runbook_url.as_deref(), Some("https://wiki/{type}"));
        // Both thresholds of a rule raised together, past the default critical.
        let c =
            Config::parse(r#"{"memory_peak_mb":8192,"memory_peak_mb_critical":16384}"#).unwrap();
        assert_eq!(c.thresholds.get(Threshold::MemoryPeakMb), 8192.0);
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        for (json, expect) in [
            (
                r#"{"window_seconds":5}"#,
                "config.window_seconds: expected a whole number from 10 to 86400, found 5",
            ),
            (
                r#"{"window_seconds":"5m"}"#,
                "config.window_seconds: expected a whole number from 10 to 86400, found \"5m\"",
            ),
            (
                r#"{"min_samples":0}"#,
                "config.min_samples: expected a whole number from 1 to 1000000, found 0",
            ),
            (
                r#"{"min_samples":2.5}"#,
                "config.min_samples: expected a whole number",
            ),
            (
                r#"{"per_specialist":"yes"}"#,
                "config.per_specialist: expected true or false, found \"yes\"",
            ),
            (
                r#"{"max_specialists":0}"#,
                "config.max_specialists: expected a whole number from 1 to 10000",
            ),
            (
                r#"{"for_seconds":-1}"#,
                "config.for_seconds: expected a whole number from 0 to 86400",
            ),
            (
                r#"{"keep_firing_for_seconds":true}"#,
                "config.keep_firing_for_seconds: expected a whole number from 0 to 86400",
            ),
            (
                r#"{"runbook_url":1}"#,
                "config.runbook_url: expected a URL as a string",
            ),
            (
                r#"{"error_rate_percent":"ten"}"#,
                "config.error_rate_percent: expected a number, found \"ten\"",
            ),
            (
                r#"{"error_rate_percent":150}"#,
                "config.error_rate_percent: expected a percentage above 0 and at most 100, found 150",
            ),
            (
                r#"{"p95_duration_seconds":0}"#,
                "config.p95_duration_seconds: expected a number above 0, found 0",
            ),
            (
                r#"{"error_rate_percent":30}"#,
                "config.error_rate_percent: 30 is above config.error_rate_percent_critical (25): a warning threshold must not exceed its critical one (raise config.error_rate_percent_critical first)",
            ),
            (
                r#"{"memory_peak_mb_critical":512}"#,
                "config.memory_peak_mb_critical: 512 is below config.memory_peak_mb (1024): a critical threshold must be at least its warning one (lower config.memory_peak_mb first)",
            ),
            (
                r#"{"execution_rate_drop_percent":60,"execution_rate_drop_percent_critical":55}"#,
                "config.execution_rate_drop_percent: 60 is above config.execution_rate_drop_percent_critical (55)",
            ),
            (
                r#"{"window":300}"#,
                "config.window: unknown key (known: window_seconds, min_samples",
            ),
            ("[]", "config must be a table, found []"),
            ("{", "config is not valid JSON"),
        ] {
            let err = Config::parse(json).unwrap_err();
            assert!(err.starts_with(expect), "{json}: {err}");
        }
    }
}
