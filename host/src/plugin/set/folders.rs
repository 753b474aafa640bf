//! The plugin folders of a directory, and each folder's fingerprint: what the loader
//! records of a folder it loaded and a reload compares to find what changed.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::plugin::PluginError;

/// The files of a plugin folder as a reload sees them: `plugin.toml`'s text, and the
/// name, size and modification time of every other file directly in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fingerprint {
    manifest: Vec<u8>,
    files: Vec<(std::ffi::OsString, u64, Option<SystemTime>)>,
}

impl Fingerprint {
    pub(super) fn of(folder: &Path) -> Fingerprint {
        let manifest = std::fs::read(folder.join("plugin.toml")).unwrap_or_default();
        Fingerprint::with_manifest(folder, manifest)
    }

    /// [`Fingerprint::of`] with `plugin.toml`'s bytes already read (empty if unreadable).
    pub(super) fn with_manifest(folder: &Path, manifest: Vec<u8>) -> Fingerprint {
        let mut files: Vec<_> = std::fs::read_dir(folder)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let meta = e.metadata().ok().filter(|m| m.is_file())?;
                Some((e.file_name(), meta.len(), meta.modified().ok()))
            })
            .collect();
        files.sort();
        Fingerprint { manifest, files }
    }
}

/// The plugin folders (folders holding a `plugin.toml`) in `dir`, sorted. Hidden folders
/// (`.name`) are not plugins: a place to copy one into before renaming it in place.
pub fn plugin_folders(dir: &Path) -> Result<Vec<PathBuf>, PluginError> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| PluginError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.join("plugin.toml").is_file())
        .collect();
    folders.sort();
    Ok(folders)
}
