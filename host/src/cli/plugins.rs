//! `metaclaude plugins list | check | grant | revoke | new`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use metaclaude::client;
use metaclaude::plugin::grants::admission::{self, Admission};
use metaclaude::plugin::grants::{self, Ask, Grant};
use metaclaude::plugin::manifest::{self, Manifest};
use metaclaude::plugin::runtime::engine::PluginEngine;
use metaclaude::plugin::{plugin_folders, resolve_grants, resolve_plugins_dir, PluginHost};
use metaclaude::scaffold;

use super::args::PluginsAt;
use super::{render, EXIT_FAILED, EXIT_USAGE};

/// The plugins directory `at` names, or the error saying how to name one.
fn plugins_dir(at: &PluginsAt) -> anyhow::Result<PathBuf> {
    resolve_plugins_dir(at.plugins.as_deref())
        .context("no plugins directory: pass --plugins DIR or set METACLAUDE_PLUGIN_DIR")
}

/// Shows every plugin of the directory: WebAssembly plugins granted are loaded (as a
/// host would), native libraries only inspected, and what is not granted is listed with
/// what it asks for. Exit 1 when one would not load.
pub fn list(at: &PluginsAt) -> anyhow::Result<ExitCode> {
    let Some(dir) = resolve_plugins_dir(at.plugins.as_deref()) else {
        outln!("no plugins directory: pass --plugins DIR or set METACLAUDE_PLUGIN_DIR")?;
        return Ok(ExitCode::SUCCESS);
    };
    let mut host = PluginHost::new(PluginEngine::default_cache_dir())?;
    host.set_grants(resolve_grants(at.grants.as_deref()));
    let mut errors = Vec::new();
    let mut inspected = Vec::new();
    let mut granted = Vec::new();
    for folder in plugin_folders(&dir)? {
        match host.admission(&folder) {
            Err(e) => errors.push(e),
            Ok(a) if a.native.is_some() => inspected.push(a),
            Ok(a) if !a.granted() => errors.push(a.refusal()),
            Ok(a) => match host.load_plugin(&folder) {
                Ok(()) => granted.push(a),
                Err(e) => errors.push(e),
            },
        }
    }
    let grants_file = host.grants_for(&dir).map(|g| g.file).ok();
    out!(
        "{}",
        render::plugin_table(
            &dir,
            grants_file.as_deref(),
            &host.list(),
            &granted,
            &inspected,
            &errors
        )
    )?;
    let all_well = errors.is_empty() && inspected.iter().all(Admission::granted);
    Ok(if all_well {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// Shows the plugins of the running server at `url` as it sees them: state, live counters,
/// last errors and what each reports of its deliveries (`GET /api/v1/plugins`). Exit 1
/// when one is not running.
pub fn list_server(url: &str, token_file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let url = url.trim_end_matches('/');
    let token = client::read_token(token_file)?;
    let body = client::get(url, "/api/v1/plugins", token.as_deref())?;
    let answer: serde_json::Value =
        serde_json::from_str(&body).context("the server's answer is not JSON")?;
    let (text, all_running) = render::plugin_table_live(url, &answer);
    out!("{text}")?;
    Ok(if all_running {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// Checks one plugin folder as a host would load it, and says what it is or what is
/// wrong (or, `normalized`, prints its manifest as the host reads it, as JSON). Nothing
/// of a plugin that is not granted runs, and a native library is never loaded here.
/// Exit 0: it would load (or, `normalized`, it is valid); 1: it is valid but not
/// granted; 2: it is invalid.
pub fn check(dir: &Path, normalized: bool, grants: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut host = PluginHost::new(PluginEngine::default_cache_dir())?;
    host.set_grants(resolve_grants(grants));
    let admission = match host.admission(dir) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let granted = admission.granted();
    let not_granted = if granted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    };
    if admission.native.is_some() {
        if normalized {
            outln!("{}", serde_json::to_string_pretty(&admission.manifest)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        outln!("{}", render::native_inspected(dir, &admission))?;
        return Ok(not_granted);
    }
    if !granted {
        return match host.validate_component(&admission.manifest) {
            // The manifest as the host reads it, whether granted or not.
            Ok(_) if normalized => {
                outln!("{}", serde_json::to_string_pretty(&admission.manifest)?)?;
                Ok(ExitCode::SUCCESS)
            }
            Ok((_, wit, notes)) => {
                outln!(
                    "{}",
                    render::plugin_not_granted(dir, &admission, wit, &notes)
                )?;
                Ok(not_granted)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(EXIT_USAGE))
            }
        };
    }
    match host.load_plugin(dir) {
        Ok(()) if normalized => {
            let manifest = Manifest::load(dir, &manifest::process_env)?;
            outln!("{}", serde_json::to_string_pretty(&manifest)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(()) => {
            outln!("{}", render::plugin_ok(dir, &host.list()[0], &admission))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// Grants plugins what they ask for, after showing it and asking (or `yes`), and writes
/// the grants file once for all of them.
pub fn grant(names: &[String], all: bool, yes: bool, at: &PluginsAt) -> anyhow::Result<ExitCode> {
    let dir = plugins_dir(at)?;
    let source = resolve_grants(at.grants.as_deref());
    let mut grants = admission::read_grants(&source, &dir)?;
    let folders = plugin_folders(&dir)?;
    let chosen: Vec<PathBuf> = if all {
        folders
    } else {
        names
            .iter()
            .map(|n| find_folder(&folders, n, &dir))
            .collect::<anyhow::Result<_>>()?
    };
    let interactive = std::io::stdin().is_terminal();
    if !yes && !interactive {
        bail!("standard input is not a terminal, so nobody can answer: review what the plugins ask for (metaclaude plugins list), then run again with --yes");
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut changed = false;
    let mut refused = false;
    for folder in chosen {
        let manifest = match Manifest::load(&folder, &manifest::process_env) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("{e}");
                refused = true;
                continue;
            }
        };
        let a = admission::admit(manifest, &grants, &manifest::process_env)?;
        let name = a.manifest.name.clone();
        if a.missing.iter().any(|m| matches!(m, Ask::Protected { .. })) {
            eprintln!("{}", a.refusal());
            refused = true;
            continue;
        }
        let digest = a.native.as_ref().map(|n| n.sha256.as_str());
        let asks = grants::asks(&a.manifest.requests, digest);
        if a.granted() {
            outln!(
                "{name}: already granted everything it asks for ({})",
                grants.file.display()
            )?;
            continue;
        }
        out!("{}", render::grant_prompt(&a, &asks))?;
        if !yes && !confirm(&format!("Grant these to {name}? [y/N] "))? {
            outln!("{name}: not granted")?;
            continue;
        }
        grants.plugins.insert(
            name.clone(),
            Grant::of(&a.manifest.requests, digest, Some(now.clone())),
        );
        changed = true;
        outln!("{name}: granted")?;
    }
    if changed {
        grants.save()?;
        outln!(
            "written to {} (a running host picks it up at its next look at {})",
            grants.file.display(),
            dir.display()
        )?;
    }
    Ok(if refused {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::SUCCESS
    })
}

/// Takes back the grants of `names`.
pub fn revoke(names: &[String], at: &PluginsAt) -> anyhow::Result<ExitCode> {
    let dir = plugins_dir(at)?;
    let source = resolve_grants(at.grants.as_deref());
    let mut grants = admission::read_grants(&source, &dir)?;
    for name in names {
        if grants.plugins.remove(name).is_none() {
            let known: Vec<&str> = grants.plugins.keys().map(String::as_str).collect();
            bail!(
                "{name} has no grant in {} (granted: {})",
                grants.file.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    grants.save()?;
    for name in names {
        outln!(
            "{name}: grant revoked in {} (a running host stops it at its next look at {})",
            grants.file.display(),
            dir.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The folder of the plugin `name` (its manifest's name, or the folder's).
fn find_folder(folders: &[PathBuf], name: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    let by_manifest = folders
        .iter()
        .find(|f| Manifest::load(f, &manifest::process_env).is_ok_and(|m| m.name == name));
    let by_folder = folders
        .iter()
        .find(|f| f.file_name().is_some_and(|n| n == name));
    match by_manifest.or(by_folder) {
        Some(f) => Ok(f.clone()),
        None => {
            let known: Vec<String> = folders
                .iter()
                .filter_map(|f| f.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect();
            bail!(
                "no plugin {name} in {} (there: {})",
                dir.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )
        }
    }
}

/// Asks `question` on the terminal; true for y or yes.
fn confirm(question: &str) -> anyhow::Result<bool> {
    out!("{question}")?;
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Creates a buildable plugin folder.
pub fn new(name: &str, kind: &str, lang: &str, parent: &Path) -> anyhow::Result<ExitCode> {
    let kind = scaffold::parse_kind(kind)?;
    let lang: scaffold::Lang = lang.parse()?;
    let made = scaffold::create(parent, name, kind, lang)?;
    outln!("{}", render::scaffold_made(&made, kind.as_str(), name))?;
    Ok(ExitCode::SUCCESS)
}
