//! `metaclaude plugins list | check | new`.

use std::path::Path;
use std::process::ExitCode;

use metaclaude::plugin::engine::PluginEngine;
use metaclaude::plugin::manifest::{self, Manifest};
use metaclaude::plugin::{resolve_plugins_dir, PluginHost};
use metaclaude::scaffold;

use super::{render, EXIT_FAILED, EXIT_USAGE};

/// Loads every plugin of the directory and shows it; exit 1 when one failed to load.
pub fn list(flag: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Some(dir) = resolve_plugins_dir(flag) else {
        println!("no plugins directory: pass --plugins DIR or set METACLAUDE_PLUGIN_DIR");
        return Ok(ExitCode::SUCCESS);
    };
    let mut host = PluginHost::new(PluginEngine::default_cache_dir())?;
    let errors = host.load_dir(&dir)?;
    print!("{}", render::plugin_table(&dir, &host.list(), &errors));
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// Loads one plugin folder as a host would, and says what it is or what is wrong (or,
/// `normalized`, prints its manifest as the host reads it, as JSON).
pub fn check(dir: &Path, normalized: bool) -> anyhow::Result<ExitCode> {
    let mut host = PluginHost::new(PluginEngine::default_cache_dir())?;
    match host.load_plugin(dir) {
        Ok(()) if normalized => {
            let manifest = Manifest::load(dir, &manifest::process_env)?;
            println!("{}", serde_json::to_string_pretty(&manifest)?);
            Ok(ExitCode::SUCCESS)
        }
        Ok(()) => {
            println!("{}", render::plugin_ok(dir, &host.list()[0]));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// Creates a buildable plugin folder.
pub fn new(name: &str, kind: &str, lang: &str, parent: &Path) -> anyhow::Result<ExitCode> {
    let kind = scaffold::parse_kind(kind).map_err(anyhow::Error::msg)?;
    let lang: scaffold::Lang = lang.parse().map_err(anyhow::Error::msg)?;
    let made = scaffold::create(parent, name, kind, lang).map_err(anyhow::Error::msg)?;
    println!("{}", render::scaffold_made(&made, kind.as_str(), name));
    Ok(ExitCode::SUCCESS)
}
