//! Why a plugin could not be loaded.

use std::path::PathBuf;

use crate::plugin::grants::GrantsError;
use crate::plugin::manifest::{ManifestError, PluginKind};
use crate::plugin::runtime::engine::EngineError;
use crate::plugin::runtime::native::NativeError;

/// Why a plugin could not be loaded. Each names the plugin (folder) and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Its `plugin.toml` is missing, unreadable or invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Its component could not be read or compiled, or the engine could not be built
    /// (`name` is then `(engine)`).
    #[error("plugin {name}: {source}")]
    Engine {
        /// The plugin's name (its manifest's `name`).
        name: String,
        /// What reading or compiling failed on.
        #[source]
        source: EngineError,
    },
    /// The component imports `metaclaude:monitor` at a version the host does not bind,
    /// without a version, or at two versions.
    #[error("plugin {name} ({}): {message}", component.display())]
    WitVersion {
        /// The plugin's name.
        name: String,
        /// The component file.
        component: PathBuf,
        /// Which version it imports and what to rebuild it against.
        message: String,
    },
    /// The component does not export the functions its manifest's `kind` needs.
    #[error("plugin {name} ({}): the component does not implement the `{kind}` world: {message}", file.display())]
    WrongExports {
        /// The plugin's name.
        name: String,
        /// Its `plugin.toml`.
        file: PathBuf,
        /// The kind its manifest declares.
        kind: PluginKind,
        /// What is missing or mistyped, in wasmtime's words.
        message: String,
    },
    /// Its `init` returned an error: it refused its manifest's `[config]`.
    #[error("plugin {name} refused its configuration ({}, [config]): {message}", file.display())]
    ConfigRejected {
        /// The plugin's name.
        name: String,
        /// Its `plugin.toml`, which holds the `[config]` refused.
        file: PathBuf,
        /// The plugin's own reason.
        message: String,
    },
    /// Its worker thread could not start, it could not be linked, or its first instance
    /// trapped.
    #[error("plugin {name}: failed to start: {message}")]
    Start {
        /// The plugin's name.
        name: String,
        /// What failed: the thread, the linker or the trap.
        message: String,
    },
    /// Its native library could not be read, loaded or checked.
    #[error("plugin {name} ({}): {source}", file.display())]
    Native {
        /// The plugin's name.
        name: String,
        /// Its `plugin.toml`.
        file: PathBuf,
        /// What failed.
        #[source]
        source: NativeError,
    },
    /// Another folder already holds a loaded plugin of the same name.
    #[error("plugin {name} ({}): another plugin of that name is loaded from {}: plugin names must be unique (rename one in its plugin.toml)", file.display(), other.display())]
    DuplicateName {
        /// The name both claim.
        name: String,
        /// This plugin's `plugin.toml`.
        file: PathBuf,
        /// The folder of the plugin loaded under that name.
        other: PathBuf,
    },
    /// The operator's grant does not cover what its manifest asks for; nothing of it ran.
    #[error("{0}")]
    NotGranted(Box<NotGranted>),
    /// The grants file could not be read or is invalid.
    #[error("plugin {name}: {source}")]
    Grants {
        /// The plugin that was being admitted.
        name: String,
        /// What is wrong with the grants file.
        #[source]
        source: GrantsError,
    },
    /// The plugins directory could not be listed.
    #[error("cannot read the plugins directory {}: {source}", dir.display())]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// A plugin not started because its grant does not cover what it asks for.
#[derive(Debug)]
pub struct NotGranted {
    /// The plugin's name.
    pub name: String,
    /// Its `plugin.toml`.
    pub file: PathBuf,
    /// The grants file read.
    pub grants: PathBuf,
    /// Whether the plugin has a grant at all (then it asks for more than it was given).
    pub granted: bool,
    /// What it asks for beyond its grant, as people read it.
    pub missing: Vec<String>,
    /// How to fix it: the command to run, or what to change.
    pub fix: String,
}

impl std::fmt::Display for NotGranted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "plugin {} ({}) is not started: the operator has not granted {}:",
            self.name,
            self.file.display(),
            if self.granted {
                "all it asks for"
            } else {
                "it anything"
            }
        )?;
        for m in &self.missing {
            writeln!(f, "    - {m}")?;
        }
        write!(
            f,
            "  (grants file: {})\n  {}",
            self.grants.display(),
            self.fix
        )
    }
}
