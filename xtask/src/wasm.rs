//! The plugins workspace (`plugins/`: the SDK, the default and opt-in plugins, the shared
//! crates, and the test fixtures of `tests/fixtures/plugins/`): built for wasm32-wasip2
//! into one target directory, `plugins/target`, with one release profile, one cargo run
//! per SDK world (the SDK's world features exclude each other, so crates of two worlds
//! cannot be compiled together); then the plugin folders are installed beside the host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::tools::ensure_wasm_target;
use crate::{cargo, examples, run, step};

/// What `build_plugins` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginSet {
    /// The default plugin set, for the demo and `metaclaude` without flags.
    Default,
    /// Everything: the opt-in plugins, the benchmark's no-op sink, the test fixtures, the
    /// native example and the example plugins in other languages.
    All,
}

/// Plugins installed beside the default set, in `plugins-available/`, for an operator to
/// copy into the plugins directory once configured: each needs a destination that only
/// the operator knows (a webhook, an Alertmanager, a file of their own).
const OPT_IN_PLUGINS: &[&str] = &[
    "file-notifier",
    "webhook-notifier",
    "alertmanager-notifier",
    "remote-write-exporter",
    "otlp-exporter",
];

/// Every plugin folder of `plugins/` (a crate with a manifest).
fn plugin_catalog(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("plugins"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.retain(|d| d.join("plugin.toml").is_file() && d.join("Cargo.toml").is_file());
    dirs.sort();
    dirs
}

/// The default plugin set: crates in `plugins/` that carry a `plugin.toml`, less the opt-in.
fn default_plugins(root: &Path) -> Vec<PathBuf> {
    let mut dirs = plugin_catalog(root);
    dirs.retain(|d| !OPT_IN_PLUGINS.contains(&folder_name(d).as_str()));
    dirs
}

fn folder_name(dir: &Path) -> String {
    dir.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// A member crate of the plugins workspace, as `cargo metadata` describes it.
#[derive(Debug)]
struct Member {
    name: String,
    /// Builds a component (`crate-type` has `cdylib`).
    component: bool,
    /// The SDK world it enables (`sink`, `exporter`, `alert-rule`, `notifier`); empty for
    /// none (the SDK itself, the shared crates, the fixtures built with wit-bindgen alone).
    world: String,
    /// The SDK world is enabled by a feature (a library whose glue is a feature, such as
    /// `metaclaude-notify`'s `sdk`): its tests with that world need its world's run.
    world_optional: bool,
}

fn members(root: &Path) -> Result<Vec<Member>> {
    let manifest = root.join("plugins/Cargo.toml");
    let out = Command::new(crate::cargo_program())
        .args(["metadata", "--locked", "--no-deps", "--format-version", "1"])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata --locked --manifest-path {} failed (a lock file out of date? run cargo metadata without --locked and commit plugins/Cargo.lock):\n{}",
            manifest.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: Value = serde_json::from_slice(&out.stdout)?;
    let mut members = Vec::new();
    for p in meta["packages"].as_array().into_iter().flatten() {
        let sdk = p["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["name"] == "metaclaude-plugin-sdk");
        let declared = sdk
            .and_then(|d| d["features"].as_array())
            .and_then(|f| f.first())
            .and_then(Value::as_str);
        // Or enabled by a feature of the crate's own, with its glue: `plugin =
        // ["metaclaude-plugin-sdk/alert-rule"]` (the SDK without a world is only its
        // `[config]` reader, which the crate's logic uses natively).
        let by_feature = p["features"]
            .as_object()
            .into_iter()
            .flat_map(|f| f.values())
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(Value::as_str)
            .find_map(|f| f.strip_prefix("metaclaude-plugin-sdk/"));
        let world = declared.or(by_feature).unwrap_or("").to_string();
        members.push(Member {
            name: p["name"].as_str().unwrap_or_default().to_string(),
            component: p["targets"].as_array().into_iter().flatten().any(|t| {
                t["crate_types"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
            }),
            world,
            world_optional: sdk.is_some_and(|d| d["optional"] == true)
                || (declared.is_none() && by_feature.is_some()),
        });
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(members)
}

/// `cargo build --release --target wasm32-wasip2` of the components `names` (all when
/// `None`): one run per world, crates of no world in the first.
fn build_components(root: &Path, names: Option<&[String]>) -> Result<()> {
    let manifest = root.join("plugins/Cargo.toml");
    let mut by_world: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let members = members(root)?;
    let mut unknown: Vec<&String> = names
        .into_iter()
        .flatten()
        .filter(|n| !members.iter().any(|m| m.component && &m.name == *n))
        .collect();
    if let Some(n) = unknown.pop() {
        bail!("{n} is not a component crate of plugins/Cargo.toml");
    }
    for m in members.iter().filter(|m| m.component) {
        if names.is_none_or(|n| n.contains(&m.name)) {
            by_world.entry(&m.world).or_default().push(&m.name);
        }
    }
    // Crates of no world join the first world's run.
    let loose = by_world.remove("").unwrap_or_default();
    let mut runs: Vec<Vec<&str>> = by_world.into_values().collect();
    match runs.first_mut() {
        Some(first) => first.extend(loose),
        None if !loose.is_empty() => runs.push(loose),
        None => {}
    }
    for crates in runs {
        let mut cmd = cargo("build");
        cmd.args(["--quiet", "--release", "--target", "wasm32-wasip2"])
            .arg("--manifest-path")
            .arg(&manifest);
        for c in crates {
            cmd.args(["-p", c]);
        }
        run(&mut cmd)?;
    }
    Ok(())
}

/// Runs `cargo SUBCOMMAND ARGS...` over the plugins workspace for this machine (clippy,
/// test), one run per SDK world. The sink world's run takes the rest of the workspace
/// too; a library whose world is an optional feature runs again with its world, so the
/// code behind that feature is checked and tested.
pub fn per_world(root: &Path, subcommand: &str, args: &[&str]) -> Result<()> {
    let manifest = root.join("plugins/Cargo.toml");
    let members = members(root)?;
    let mut worlds: Vec<&str> = members
        .iter()
        .map(|m| m.world.as_str())
        .filter(|w| !w.is_empty() && *w != "sink")
        .collect();
    worlds.sort();
    worlds.dedup();
    for world in worlds {
        let mut cmd = cargo(subcommand);
        cmd.arg("--manifest-path").arg(&manifest);
        for m in members
            .iter()
            .filter(|m| m.world == world && (m.component || m.world_optional))
        {
            cmd.args(["-p", &m.name]);
        }
        run(cmd.args(args))?;
    }
    let mut cmd = cargo(subcommand);
    cmd.arg("--manifest-path").arg(&manifest).arg("--workspace");
    for m in members
        .iter()
        .filter(|m| m.component && !m.world.is_empty() && m.world != "sink")
    {
        cmd.args(["--exclude", &m.name]);
    }
    run(cmd.args(args))
}

/// Builds the plugins of `set` and installs the default set beside the host executable
/// (`target/{debug,release}/plugins/<name>/`, and beside the static one), where
/// `metaclaude` finds it without any flag; with `All`, every plugin of the catalog into
/// `plugins-available/` too.
pub fn build_plugins(root: &Path, set: PluginSet) -> Result<()> {
    ensure_wasm_target()?;
    let default_set = default_plugins(root);
    match set {
        PluginSet::Default => {
            step("building the default plugin set (plugins/, wasm32-wasip2; one cargo run per SDK world)");
            let names: Vec<String> = default_set.iter().map(|d| folder_name(d)).collect();
            build_components(root, Some(&names))?;
        }
        PluginSet::All => {
            step("building every component of the plugins workspace: plugins, SDK, test fixtures (wasm32-wasip2; one cargo run per SDK world)");
            build_components(root, None)?;
            examples::build_examples(root)?;
            step("building the native example plugin (plugins/native/noop-sink)");
            run(cargo("build")
                .args(["--quiet", "--release", "--manifest-path"])
                .arg(root.join("plugins/native/noop-sink/Cargo.toml"))
                .arg("--target-dir")
                .arg(root.join("plugins/target/native")))?;
        }
    }
    let built = root.join("plugins/target/wasm32-wasip2/release");
    install_plugins(root, &built, "plugins", &default_set)?;
    if set == PluginSet::All {
        install_plugins(root, &built, "plugins-available", &plugin_catalog(root))?;
    }
    Ok(())
}

/// Installs the plugin folders `dirs` (their manifest and component) beside each build of
/// the executable: `target/{debug,release}/<folder>/<name>/` and the static executable's
/// folder (`cargo xtask build-static`).
fn install_plugins(root: &Path, built: &Path, folder: &str, dirs: &[PathBuf]) -> Result<()> {
    let static_dir = format!("{}/release", crate::static_build::TARGET);
    for profile in ["debug", "release", &static_dir] {
        let install = root.join("target").join(profile).join(folder);
        if folder == "plugins" {
            // A plugin taken out of the default set must not linger in it.
            for old in std::fs::read_dir(&install).into_iter().flatten().flatten() {
                let keep = dirs.iter().any(|d| d.file_name() == Some(&old.file_name()));
                if !keep && old.path().join("plugin.toml").is_file() {
                    std::fs::remove_dir_all(old.path())?;
                }
            }
        }
        for dir in dirs {
            let crate_name = folder_name(dir).replace('-', "_");
            let target = install.join(dir.file_name().unwrap());
            std::fs::create_dir_all(&target)?;
            std::fs::copy(dir.join("plugin.toml"), target.join("plugin.toml"))?;
            std::fs::copy(
                built.join(format!("{crate_name}.wasm")),
                target.join(format!("{crate_name}.wasm")),
            )
            .with_context(|| format!("installing the {crate_name} component"))?;
        }
        if folder == "plugins" {
            install_default_grants(root, &install)?;
        }
    }
    Ok(())
}

/// The default set comes granted what it asks for, as a package would ship it:
/// `plugins/default-grants.toml`, reviewed like code (`tests/cli/grants.rs` checks that it
/// grants exactly what the default set asks for), copied to `grants.toml` beside the
/// plugins directory `install`, readable by its owner only.
fn install_default_grants(root: &Path, install: &Path) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let source = root.join("plugins/default-grants.toml");
    let text = std::fs::read(&source)
        .with_context(|| format!("reading the default set's grants {}", source.display()))?;
    std::fs::create_dir_all(install)?;
    let grants = install.parent().unwrap().join("grants.toml");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&grants)
        .with_context(|| {
            format!(
                "installing the default set's grants as {}",
                grants.display()
            )
        })?;
    // An older install may have left it with a wider mode.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(&text)?;
    Ok(())
}
