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
//! Modules, one job each:
//! * loading: `manifest` (plugin.toml; `vars`, its `${VAR}`s), `grants` (what the
//!   operator granted each plugin, checked before anything of it runs), `admission`
//!   (grants against requests), `engine` (the Engine, epoch ticker, compiled-code cache),
//!   `loader` (a folder to a started plugin), `folders` (a directory's plugin folders and
//!   their fingerprints), `reload` (hot reload, the watch);
//! * the set of plugins: `host` ([`PluginHost`]: load, list, flush, render, shutdown),
//!   `dispatch` (events to the plugins' queues), `delivery` (what a queue carries),
//!   `alerts` (alerts to notifiers);
//! * one plugin: `worker` (batching, failure policy), `health` (health and counters),
//!   `runtime` (WASM or native behind one call surface), `instance` (one sandboxed
//!   instance), `limiter`, `stderr`, `net` (the `http` import's I/O) and `outbound`
//!   (what it lets out: URLs, grants, addresses, headers; pure), `native` (trusted
//!   shared libraries), `ack` (acknowledged delivery);
//! * the contract: `bindings` and `convert` (the WIT package);
//! * `host_metrics`: the host's own metrics about its plugins (Prometheus text);
//! * `error`: why a plugin could not be loaded.

// Without the `runtime` feature (the fuzz targets' build) only the pure modules are here:
// `manifest`, `grants`, `vars` and `outbound` (what a parser of plugin input needs). A new module that
// parses outside input goes outside `runtime`, and depends on none of the runtime's.
#[cfg(feature = "runtime")]
mod ack;
#[cfg(feature = "runtime")]
pub mod admission;
#[cfg(feature = "runtime")]
mod alerts;
#[cfg(feature = "runtime")]
mod bindings;
#[cfg(feature = "runtime")]
mod convert;
#[cfg(feature = "runtime")]
mod delivery;
#[cfg(feature = "runtime")]
mod dispatch;
#[cfg(feature = "runtime")]
pub mod engine;
#[cfg(feature = "runtime")]
mod error;
#[cfg(feature = "runtime")]
mod folders;
pub mod grants;
#[cfg(feature = "runtime")]
mod health;
#[cfg(feature = "runtime")]
mod host;
#[cfg(feature = "runtime")]
pub mod host_metrics;
#[cfg(feature = "runtime")]
mod instance;
#[cfg(feature = "runtime")]
mod limiter;
#[cfg(feature = "runtime")]
mod loader;
pub mod manifest;
#[cfg(feature = "runtime")]
pub mod native;
#[cfg(feature = "runtime")]
mod net;
pub mod outbound;
#[cfg(feature = "runtime")]
mod outbox;
#[cfg(feature = "runtime")]
mod reload;
#[cfg(feature = "runtime")]
mod runtime;
#[cfg(feature = "runtime")]
mod stderr;
#[cfg(all(test, feature = "runtime"))]
mod test_support;
#[cfg(all(test, feature = "runtime"))]
mod tests;
mod vars;
#[cfg(feature = "runtime")]
mod worker;

use std::path::{Path, PathBuf};

#[cfg(feature = "runtime")]
pub use self::admission::{Admission, GrantSource};
#[cfg(feature = "runtime")]
pub use self::alerts::{AlertCallback, RouterStats};
#[cfg(feature = "runtime")]
pub use self::error::{NotGranted, PluginError};
#[cfg(feature = "runtime")]
pub use self::folders::plugin_folders;
#[cfg(feature = "runtime")]
pub use self::health::Health;
#[cfg(feature = "runtime")]
pub use self::host::{PluginHost, PluginInfo, RuleThresholds, ThresholdChange, ThresholdError};
#[cfg(feature = "runtime")]
pub use self::reload::ReloadReport;

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
