//! Why a plugin could not be loaded.

use std::path::PathBuf;

use crate::plugin::grants::GrantsError;
use crate::plugin::manifest::{ManifestError, PluginKind};
use crate::plugin::runtime::engine::EngineError;
use crate::plugin::runtime::native::NativeError;

/// Why a plugin could not be loaded. Each names the plugin (folder) and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("plugin {name}: {source}")]
    Engine {
        name: String,
        #[source]
        source: EngineError,
    },
    #[error("plugin {name} ({}): {message}", component.display())]
    WitVersion {
        name: String,
        component: PathBuf,
        message: String,
    },
    #[error("plugin {name} ({}): the component does not implement the `{kind}` world: {message}", file.display())]
    WrongExports {
        name: String,
        file: PathBuf,
        kind: PluginKind,
        message: String,
    },
    #[error("plugin {name} refused its configuration ({}, [config]): {message}", file.display())]
    ConfigRejected {
        name: String,
        file: PathBuf,
        message: String,
    },
    #[error("plugin {name}: failed to start: {message}")]
    Start { name: String, message: String },
    #[error("plugin {name} ({}): {source}", file.display())]
    Native {
        name: String,
        file: PathBuf,
        #[source]
        source: NativeError,
    },
    #[error("plugin {name} ({}): another plugin of that name is loaded from {}: plugin names must be unique (rename one in its plugin.toml)", file.display(), other.display())]
    DuplicateName {
        name: String,
        file: PathBuf,
        other: PathBuf,
    },
    #[error("{0}")]
    NotGranted(Box<NotGranted>),
    #[error("plugin {name}: {source}")]
    Grants {
        name: String,
        #[source]
        source: GrantsError,
    },
    #[error("cannot read the plugins directory {}: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A plugin not started because its grant does not cover what it asks for.
#[derive(Debug)]
pub struct NotGranted {
    pub name: String,
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
