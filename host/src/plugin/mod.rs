//! The plugin runtime: discover plugin folders, load their components in a sandbox, and
//! deliver every lifecycle event to them without ever letting one slow down or break the
//! executor or another plugin.
//!
//! Shape: [`PluginHost`] implements the executor's [`EventSink`]. For each event it builds
//! the host's JSON once (if a plugin asked for it), then offers the event to each plugin
//! whose filter matches, on that plugin's bounded queue. Each plugin has its own worker
//! thread and wasmtime `Store` (see `worker` and `instance`). Alerts raised by alert-rule
//! plugins, and by the host about failing plugins, go to every notifier.
//!
//! Modules, one job each:
//! * loading: `manifest` (plugin.toml; `vars`, its `${VAR}`s), `grants` (what the
//!   operator granted each plugin, checked before anything of it runs), `engine` (the Engine, epoch ticker, compiled-code
//!   cache), `loader` (a folder to a started plugin), `reload` (hot reload, the watch);
//! * the set of plugins: `host` ([`PluginHost`]: load, list, flush, render, shutdown),
//!   `dispatch` (events to the plugins' queues), `delivery` (what a queue carries),
//!   `alerts` (alerts to notifiers);
//! * one plugin: `worker` (batching, failure policy), `stats` (health and counters),
//!   `runtime` (WASM or native behind one call surface), `instance` (one sandboxed
//!   instance), `limiter`, `stderr`, `net` (the `http` import's I/O) and `outbound`
//!   (what it lets out: URLs, grants, addresses, headers; pure), `native` (trusted
//!   shared libraries), `ack` (acknowledged delivery);
//! * the contract: `bindings` and `convert` (the WIT package);
//! * `host_metrics`: the host's own metrics about its plugins (Prometheus text);
//! * `error`: why a plugin could not be loaded.

mod ack;
pub mod admission;
mod alerts;
mod bindings;
mod convert;
mod delivery;
mod dispatch;
pub mod engine;
mod error;
pub mod grants;
mod host;
pub mod host_metrics;
mod instance;
mod limiter;
mod loader;
pub mod manifest;
pub mod native;
mod net;
pub mod outbound;
mod outbox;
mod reload;
mod runtime;
mod stats;
mod stderr;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
mod vars;
mod worker;

use std::path::{Path, PathBuf};

pub use self::admission::{Admission, GrantSource};
pub use self::alerts::{AlertCallback, RouterStats};
pub use self::error::{NotGranted, PluginError};
pub use self::host::{PluginHost, PluginInfo, RuleThresholds, ThresholdChange};
pub use self::reload::{plugin_folders, ReloadReport};
pub use self::stats::Health;

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
pub fn resolve_grants(flag: Option<&Path>) -> GrantSource {
    if let Some(file) = flag {
        return GrantSource::File(file.to_path_buf());
    }
    match std::env::var_os("METACLAUDE_GRANTS").filter(|f| !f.is_empty()) {
        Some(file) => GrantSource::File(PathBuf::from(file)),
        None => GrantSource::Beside,
    }
}
