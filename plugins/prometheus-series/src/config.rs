//! The `[config]` table: the histograms' buckets and the label caps.

use metaclaude_plugin_sdk::config::Table;

/// Buckets of `metaclaude_execution_duration_seconds`, seconds: from a 5 ms `true` to the
/// ten minutes of a long job (the registry's default timeout is 30 s).
pub const DEFAULT_DURATION_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Buckets of `metaclaude_resource_memory_peak_bytes`, given in MiB (as the registry's
/// `memory_limit_mb`): powers of two from a shell's 1 MiB to 4 GiB.
pub const DEFAULT_MEMORY_BUCKETS_MB: [f64; 13] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// At most this many bounds per histogram (each is a series per label set).
pub const MAX_BUCKETS: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Upper bounds, seconds, ascending.
    pub duration_buckets: Vec<f64>,
    /// Upper bounds, MiB, ascending (written in bytes).
    pub memory_buckets_mb: Vec<f64>,
    pub max_scripts: usize,
    pub max_specialists: usize,
    /// Distinct (script, specialist) pairs.
    pub max_label_sets: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            duration_buckets: DEFAULT_DURATION_BUCKETS.to_vec(),
            memory_buckets_mb: DEFAULT_MEMORY_BUCKETS_MB.to_vec(),
            max_scripts: 500,
            max_specialists: 500,
            max_label_sets: 1000,
        }
    }
}

/// The keys of the exporter's `[config]` (a push exporter of the same series takes them
/// beside its own).
pub const KEYS: &[&str] = &[
    "duration_buckets",
    "memory_buckets_mb",
    "max_scripts",
    "max_specialists",
    "max_label_sets",
];

/// A list of bounds: an array of numbers (or of numbers as strings), or one string of
/// numbers separated by commas or spaces (what `${VAR:-0.1,1,10}` expands to).
fn buckets(table: &Table, key: &str) -> Result<Option<Vec<f64>>, String> {
    let Some(value) = table.value(key) else {
        return Ok(None);
    };
    let bad = |why: String| table.problem(key, &why);
    let items: Vec<String> = match value {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|v| match v {
                serde_json::Value::Number(n) => Ok(n.to_string()),
                serde_json::Value::String(s) => Ok(s.trim().to_string()),
                _ => Err(bad("expected numbers".into())),
            })
            .collect::<Result<_, _>>()?,
        serde_json::Value::String(s) => s
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => return Err(bad("expected an array of numbers".into())),
    };
    let mut bounds = Vec::with_capacity(items.len());
    for item in &items {
        let n: f64 = item
            .parse()
            .map_err(|_| bad(format!("`{item}` is not a number")))?;
        if !n.is_finite() || n < 0.0 {
            return Err(bad(format!("`{item}` is not a finite number of 0 or more")));
        }
        if bounds.last().is_some_and(|last| *last >= n) {
            return Err(bad("bounds must be in ascending order, each once".into()));
        }
        bounds.push(n);
    }
    if bounds.is_empty() || bounds.len() > MAX_BUCKETS {
        return Err(bad(format!("expected 1 to {MAX_BUCKETS} bounds")));
    }
    Ok(Some(bounds))
}

impl Config {
    /// Reads the `[config]` table (as JSON). Numbers may be given as strings, since
    /// `${VAR:-default}` expands to a string.
    pub fn parse(json: &str) -> Result<Config, String> {
        Config::from_table(&Table::parse(json, KEYS)?)
    }

    /// Reads the exporter's keys ([`KEYS`]) of a table whose keys the caller checked.
    pub fn from_table(table: &Table) -> Result<Config, String> {
        let mut c = Config::default();
        if let Some(bounds) = buckets(table, "duration_buckets")? {
            c.duration_buckets = bounds;
        }
        if let Some(bounds) = buckets(table, "memory_buckets_mb")? {
            c.memory_buckets_mb = bounds;
        }
        let cap = |key| table.whole(key, 1, 100_000).map(|n| n.map(|n| n as usize));
        if let Some(n) = cap("max_scripts")? {
            c.max_scripts = n;
        }
        if let Some(n) = cap("max_specialists")? {
            c.max_specialists = n;
        }
        if let Some(n) = cap("max_label_sets")? {
            c.max_label_sets = n;
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
        let json = manifest_config_json(include_str!("../../prometheus-exporter/plugin.toml"));
        let c = Config::parse(&json).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(Config::parse("{}").unwrap(), Config::default());
    }

    #[test]
    fn buckets_come_as_arrays_or_as_expanded_strings() {
        let c = Config::parse(
            r#"{"duration_buckets":[0.1, "1", 10],"memory_buckets_mb":" 16, 64 256 ","max_scripts":"3"}"#,
        )
        .unwrap();
        assert_eq!(c.duration_buckets, [0.1, 1.0, 10.0]);
        assert_eq!(c.memory_buckets_mb, [16.0, 64.0, 256.0]);
        assert_eq!(c.max_scripts, 3);
        assert_eq!(
            Config::parse(r#"{"duration_buckets":[0]}"#)
                .unwrap()
                .duration_buckets,
            [0.0]
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let too_many: Vec<String> = (1..=65).map(|i| i.to_string()).collect();
        let too_many = format!(r#"{{"duration_buckets":[{}]}}"#, too_many.join(","));
        for (json, expect) in [
            (
                r#"{"duration_buckets":[1, 0.5]}"#,
                "config.duration_buckets: bounds must be in ascending order",
            ),
            (
                r#"{"duration_buckets":[1, 1]}"#,
                "config.duration_buckets: bounds must be in ascending order",
            ),
            (
                r#"{"duration_buckets":[]}"#,
                "config.duration_buckets: expected 1 to 64 bounds",
            ),
            (
                too_many.as_str(),
                "config.duration_buckets: expected 1 to 64 bounds",
            ),
            (
                r#"{"duration_buckets":["fast"]}"#,
                "config.duration_buckets: `fast` is not a number",
            ),
            (
                r#"{"memory_buckets_mb":[-1]}"#,
                "config.memory_buckets_mb: `-1` is not a finite number of 0 or more",
            ),
            (
                r#"{"memory_buckets_mb":"inf"}"#,
                "config.memory_buckets_mb: `inf` is not a finite number",
            ),
            (
                r#"{"memory_buckets_mb":[true]}"#,
                "config.memory_buckets_mb: expected numbers",
            ),
            (
                r#"{"memory_buckets_mb":16}"#,
                "config.memory_buckets_mb: expected an array of numbers",
            ),
            (
                r#"{"max_scripts":0}"#,
                "config.max_scripts: expected a whole number from 1 to 100000",
            ),
            (
                r#"{"max_label_sets":"1.5"}"#,
                "config.max_label_sets: expected a whole number",
            ),
            (
                r#"{"buckets":[1]}"#,
                "config.buckets: unknown key (known: duration_buckets, memory_buckets_mb",
            ),
            ("[]", "config must be a table"),
        ] {
            let err = Config::parse(json).unwrap_err();
            assert!(err.starts_with(expect), "{json}: {err}");
        }
    }
}
