//! The `[config]` table: which file, and whether to sync it.

use std::path::{Component, Path, PathBuf};

use metaclaude_plugin_sdk::config::Table;

/// Where the alerts go by default: in the directory the manifest grants as `/alerts`.
pub const DEFAULT_PATH: &str = "/alerts/alerts.jsonl";

const KEYS: &[&str] = &["path", "sync"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file, as the plugin sees it (inside a granted directory).
    pub path: PathBuf,
    /// Sync the file to disk after each call, not only write it.
    pub sync: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            path: DEFAULT_PATH.into(),
            sync: false,
        }
    }
}

impl Config {
    /// Reads the `[config]` table (as JSON).
    pub fn parse(json: &str) -> Result<Config, String> {
        let table = Table::parse(json, KEYS)?;
        let mut c = Config::default();
        if let Some(path) = table.string("path")? {
            c.path = file_path(&path).map_err(|why| format!("config.path: {why}"))?;
        }
        if let Some(sync) = table.boolean("sync")? {
            c.sync = sync;
        }
        Ok(c)
    }
}

/// A file's absolute path without `.` or `..`.
fn file_path(path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(format!(
            "expected an absolute path inside a granted directory (e.g. {DEFAULT_PATH}), found \"{path}\""
        ));
    }
    if path.ends_with('/') || p.file_name().is_none() {
        return Err(format!("expected a file, found the directory \"{path}\""));
    }
    if p.components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(format!("`.` and `..` are not allowed, found \"{path}\""));
    }
    Ok(p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use metaclaude_plugin_sdk::testing::manifest_config_json;

    use super::*;

    #[test]
    fn the_manifest_config_is_the_default() {
        // The manifest's defaults, as ${VAR:-default} expands them.
        let json = manifest_config_json(include_str!("../plugin.toml"));
        assert_eq!(Config::parse(&json).unwrap(), Config::default(), "{json}");
        assert_eq!(Config::parse("{}").unwrap(), Config::default());
    }

    #[test]
    fn paths_must_be_absolute_files() {
        let c = Config::parse(r#"{"path":"/alerts/sub/a.jsonl","sync":true}"#).unwrap();
        assert_eq!(c.path, Path::new("/alerts/sub/a.jsonl"));
        assert!(c.sync);
        for (json, expect) in [
            (
                r#"{"path":"alerts.jsonl"}"#,
                "config.path: expected an absolute path inside a granted directory (e.g. /alerts/alerts.jsonl), found \"alerts.jsonl\"",
            ),
            (
                r#"{"path":"/alerts/"}"#,
                "config.path: expected a file, found the directory \"/alerts/\"",
            ),
            (
                r#"{"path":"/alerts/../etc/x"}"#,
                "config.path: `.` and `..` are not allowed, found \"/alerts/../etc/x\"",
            ),
            (r#"{"path":7}"#, "config.path: expected a string, found 7"),
            (
                r#"{"sync":"always"}"#,
                r#"config.sync: expected true or false, found "always""#,
            ),
            (
                r#"{"file":"/alerts/x"}"#,
                "config.file: unknown key (known: path, sync)",
            ),
        ] {
            assert_eq!(Config::parse(json).unwrap_err(), expect, "{json}");
        }
    }
}
