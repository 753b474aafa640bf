//! Whether a plugin folder may start: its manifest's requests against the operator's
//! grant (`grants`), checked before any of its code runs, on every load and reload; and
//! the same answer for `plugins list` and `check`, which look without loading native code.

use std::path::{Path, PathBuf};

use crate::plugin::error::NotGranted;
use crate::plugin::grants::{self, Ask, Grant, Grants, GrantsError};
use crate::plugin::manifest::{Artifact, Manifest};
use crate::plugin::runtime::native::NativeCode;
use crate::plugin::PluginError;

/// Where a host's grants come from.
#[derive(Debug, Clone, Default)]
pub enum GrantSource {
    /// The grants file beside the plugins directory ([`grants::FILE_NAME`]), read at every
    /// load and reload.
    #[default]
    Beside,
    /// This grants file, whatever the plugins directory (`--grants`, `METACLAUDE_GRANTS`),
    /// read at every load and reload.
    File(PathBuf),
    /// Given in code by a program that embeds the host (its author is the operator).
    Given(Grants),
}

/// What the host found out about a folder before running any of it.
pub struct Admission {
    /// The folder's manifest, validated.
    pub manifest: Manifest,
    /// The grants file consulted.
    pub grants_file: PathBuf,
    /// The plugin's grant, if it has one.
    pub grant: Option<Grant>,
    /// What it asks for beyond its grant (empty: it may start).
    pub missing: Vec<Ask>,
    /// A native plugin's code, read once and checked; loaded only when granted.
    pub native: Option<NativeCode>,
}

impl Admission {
    /// Whether its grant covers everything it asks for, so it may start.
    pub fn granted(&self) -> bool {
        self.missing.is_empty()
    }

    /// The refusal to start, naming what is missing and how to grant it.
    pub fn refusal(&self) -> PluginError {
        let name = &self.manifest.name;
        let dir = plugins_dir_of(&self.manifest);
        let dir = dir.as_path();
        let protected = self
            .missing
            .iter()
            .any(|m| matches!(m, Ask::Protected { .. }));
        let fix = if protected {
            "fix its plugin.toml: no grant can give what it asks for".to_string()
        } else {
            format!(
                "review what it asks for, then run: metaclaude plugins grant {name} --plugins {}{}",
                dir.display(),
                grants_flag(dir, &self.grants_file)
            )
        };
        PluginError::NotGranted(Box::new(NotGranted {
            name: name.clone(),
            file: self.manifest.file.clone(),
            grants: self.grants_file.clone(),
            granted: self.grant.is_some(),
            missing: self.missing.iter().map(ToString::to_string).collect(),
            fix,
        }))
    }
}

/// The plugins directory a manifest's folder is in, absolute (`plugins check NAME` names
/// a folder relative to where it runs).
pub(in crate::plugin) fn plugins_dir_of(manifest: &Manifest) -> PathBuf {
    let file = std::path::absolute(&manifest.file).unwrap_or_else(|_| manifest.file.clone());
    file.parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

/// ` --grants FILE` when `file` is not where the grants of `dir` are by default.
pub fn grants_flag(dir: &Path, file: &Path) -> String {
    match grants::grants_file_for(dir, None) {
        Ok(default) if default == file => String::new(),
        _ => format!(" --grants {}", file.display()),
    }
}

/// The grants `source` gives for the plugins directory `dir`, read now.
pub fn read_grants(source: &GrantSource, dir: &Path) -> Result<Grants, GrantsError> {
    match source {
        GrantSource::Given(g) => Ok(g.clone()),
        GrantSource::Beside => Grants::load(&grants::grants_file_for(dir, None)?),
        GrantSource::File(f) => Grants::load(&grants::grants_file_for(dir, Some(f))?),
    }
}

/// Reads a native plugin's library (without loading it) and checks `manifest`'s
/// requests against `all`, the grants of the directory its folder is in. `env` expands
/// the grants' own `${VAR}`s.
pub fn admit(
    manifest: Manifest,
    all: &Grants,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Admission, PluginError> {
    let native = match &manifest.artifact {
        Artifact::Native(file) => {
            Some(
                NativeCode::read(file).map_err(|source| PluginError::Native {
                    name: manifest.name.clone(),
                    file: manifest.file.clone(),
                    source,
                })?,
            )
        }
        Artifact::Component(_) => None,
    };
    let grant = all.plugins.get(&manifest.name).cloned();
    let missing = missing(
        all,
        &manifest,
        native.as_ref().map(|n| n.sha256.as_str()),
        env,
    );
    Ok(Admission {
        manifest,
        grants_file: all.file.clone(),
        grant,
        missing,
        native,
    })
}

/// What `manifest` (with a native library of digest `native_sha256`) asks for beyond
/// its grant in `all`. Nothing may write the grants file or the plugins directory.
pub fn missing(
    all: &Grants,
    manifest: &Manifest,
    native_sha256: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<Ask> {
    let dir = plugins_dir_of(manifest);
    let protected = [all.file.clone(), std::fs::canonicalize(&dir).unwrap_or(dir)];
    all.plugins
        .get(&manifest.name)
        .cloned()
        .unwrap_or_default()
        .check(&manifest.requests, native_sha256, env, &protected)
}

/// Every plugin folder of `dir` granted exactly what its manifest asks for (a native
/// library by the digest of what is there now): what `metaclaude plugins grant --all
/// --yes` writes. For a program that builds its plugin folders itself, and its tests; a
/// folder whose manifest is invalid is left out (its load reports it).
pub fn grant_requests(
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Grants, PluginError> {
    let file = grants::grants_file_for(dir, None)
        .unwrap_or_else(|_| Path::new("/").join(grants::FILE_NAME));
    let mut all = Grants::empty(&file);
    for folder in crate::plugin::plugin_folders(dir)? {
        let Ok(manifest) = Manifest::load(&folder, env) else {
            continue;
        };
        let digest = match &manifest.artifact {
            Artifact::Native(f) => NativeCode::read(f).ok().map(|c| c.sha256),
            Artifact::Component(_) => None,
        };
        let grant = Grant::of(&manifest.requests, digest.as_deref(), None);
        all.plugins.insert(manifest.name, grant);
    }
    Ok(all)
}
