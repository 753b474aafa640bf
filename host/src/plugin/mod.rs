//! The plugin runtime: discover plugin folders, load their components in a sandbox, and
//! deliver every lifecycle event to them without ever letting one slow down or break the
//! executor or another plugin.
//!
//! Shape: [`PluginHost`] implements the executor's [`EventSink`](crate::executor::EventSink). For each event it builds
//! the host's JSON once (if a plugin asked for it), then offers the event to each plugin
//! whose filter matches, on that plugin's bounded queue. Each plugin has its own worker
//! thread and wasmtime `Store` (see `worker` and `instance`). Alerts raised by alert-rule
//! plugins, and by the host about failing plugins, go to every notifier.
//!
//! Folders, one job each:
//! * `manifest/`: `plugin.toml` read into a [`manifest::Manifest`]: its schema (the types),
//!   the field readers that normalise (`${VAR}`s, defaults, paths) and the section checks;
//! * `grants/`: what the operator granted each plugin (`grants.toml`), and `admission`,
//!   the grants held against a manifest's requests before anything of the plugin runs;
//! * `http/`: the `http` import: `outbound` (what it lets out: URLs, grants, addresses,
//!   headers; pure) and `net` (the I/O);
//! * `runtime/`: running one plugin's code: `engine` (the Engine, epoch ticker,
//!   compiled-code cache), `instance` (one sandboxed instance), `bindings` and `convert`
//!   (the WIT package), `limiter`, `stderr`, `native` (trusted shared libraries), and
//!   [`runtime::Runtime`], WASM or native behind one call surface;
//! * `delivery/`: events to plugins: `dispatch` (which queues an event goes on), the
//!   mailbox (a bounded queue), `worker` (one plugin's thread: batching, failure policy,
//!   notifications with retries), `health` (health and counters), `ack` (acknowledged
//!   delivery);
//! * `set/`: [`PluginHost`], the loaded set and all its methods: `load` (a folder to a
//!   started plugin), `reload` (hot reload and the watch), `folders` (a directory's plugin
//!   folders and their fingerprints), `host_metrics` (the host's own metrics about its
//!   plugins);
//! * `error`: why a plugin could not be loaded.
//!
//! What happens to an alert once a rule raised it (routing, grouping, retries' policy,
//! history) is `crate::alerting`'s; `delivery::worker` only calls the notifier.

// Without the `runtime` feature (the fuzz targets' build) only the pure parts are here:
// `manifest`, `grants` and `http::outbound` (what a parser of plugin input needs). A new
// module that parses outside input goes outside `runtime`, and depends on none of the
// runtime's.
#[cfg(feature = "runtime")]
mod delivery;
#[cfg(feature = "runtime")]
mod error;
pub mod grants;
pub mod http;
pub mod manifest;
#[cfg(feature = "runtime")]
pub mod runtime;
#[cfg(feature = "runtime")]
mod set;
#[cfg(all(test, feature = "runtime"))]
mod test_support;
#[cfg(all(test, feature = "runtime"))]
mod tests;

use std::path::{Path, PathBuf};

#[cfg(feature = "runtime")]
pub use self::{
    delivery::destinations::DestinationReport,
    delivery::health::Health,
    error::{NotGranted, PluginError},
    grants::admission::{Admission, GrantSource},
    runtime::lifting::Rendered,
    set::{
        folders::plugin_folders, host_metrics, PluginHost, PluginInfo, ReloadReport,
        RuleThresholds, ThresholdChange, ThresholdError,
    },
};

/// Where plugins live: `--plugins DIR`, else `METACLAUDE_PLUGIN_DIR`, else the default set
/// installed beside the executable (`<exe dir>/plugins`, where `cargo xtask demo` puts it).
pub fn resolve_plugins_dir(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = flag {
        return Some(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("METACLAUDE_PLUGIN_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().ok()?;
    let beside = exe.parent()?.join("plugins");
    beside.is_dir().then_some(beside)
}

/// Where the operator's grants are: `--grants FILE`, else `METACLAUDE_GRANTS`, else
/// `grants.toml` beside the plugins directory.
#[cfg(feature = "runtime")]
pub fn resolve_grants(flag: Option<&Path>) -> GrantSource {
    if let Some(file) = flag {
        return GrantSource::File(file.to_path_buf());
    }
    match std::env::var_os("METACLAUDE_GRANTS").filter(|f| !f.is_empty()) {
        Some(file) => GrantSource::File(PathBuf::from(file)),
        None => GrantSource::Beside,
    }
}
