//! Why a plugin could not be loaded.

use std::path::PathBuf;

use super::engine::EngineError;
use super::manifest::{ManifestError, PluginKind};
use super::native::NativeError;

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
    #[error("cannot read the plugins directory {}: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
