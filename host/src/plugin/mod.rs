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
//! Modules: `manifest` (plugin.toml), `engine` (the Engine, epoch ticker, compiled-code
//! cache), `bindings` and `convert` (the WIT contract), `instance` (one sandboxed
//! instance), `worker` (queue, batching, failure policy), `net` (the `http` import).

mod bindings;
mod convert;
pub mod engine;
mod instance;
pub mod manifest;
pub mod native;
mod net;
mod runtime;
mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::executor::EventSink;
use crate::model::{ExecutionEvent, LifecycleKind};

use self::engine::{EngineError, LoadSource, PluginEngine};
use self::instance::{CallError, Prepared};
use self::manifest::{Artifact, Manifest, ManifestError, OnFull, PluginKind};
use self::native::{NativeError, NativeLibrary};
use self::runtime::{Live, Runtime};
use self::worker::{AlertRouter, Delivery, Message, PluginStats, Worker};

pub use self::worker::Health;

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
    #[error("cannot read the plugins directory {}: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

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

/// Facts about a loaded plugin, for `plugins list` and tests.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub folder: PathBuf,
    pub capabilities: String,
    pub health: Health,
    pub queued: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub failures: u64,
    pub restarts: u64,
    pub refused: u64,
    pub last_error: Option<String>,
    pub load: LoadSource,
    pub load_time: Duration,
}

struct LoadedPlugin {
    manifest: Arc<Manifest>,
    tx: SyncSender<Message>,
    stats: Arc<PluginStats>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    load: LoadSource,
    load_time: Duration,
}

/// A loaded set of plugins, fed with the executor's events.
pub struct PluginHost {
    engine: Arc<PluginEngine>,
    plugins: Vec<LoadedPlugin>,
    router: Arc<AlertRouter>,
    linkers: Mutex<HashMap<&'static str, Arc<wasmtime::component::Linker<instance::PluginState>>>>,
}

impl PluginHost {
    /// A host with no plugins yet; `cache_dir` holds compiled components.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<PluginHost, PluginError> {
        let engine = PluginEngine::new(cache_dir).map_err(|source| PluginError::Engine {
            name: "(engine)".into(),
            source,
        })?;
        Ok(PluginHost {
            engine: Arc::new(engine),
            plugins: Vec::new(),
            router: Arc::new(AlertRouter::default()),
            linkers: Mutex::new(HashMap::new()),
        })
    }

    /// Loads every plugin folder (a folder holding `plugin.toml`) in `dir`. A plugin that
    /// cannot be loaded is skipped and its error returned; the others load.
    pub fn load_dir(&mut self, dir: &Path) -> Result<Vec<PluginError>, PluginError> {
        let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| PluginError::Dir {
                dir: dir.to_path_buf(),
                source,
            })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("plugin.toml").is_file())
            .collect();
        folders.sort();
        let mut errors = Vec::new();
        for folder in folders {
            if let Err(e) = self.load_plugin(&folder) {
                tracing::error!("{e}");
                errors.push(e);
            }
        }
        Ok(errors)
    }

    /// Validates and loads one plugin folder and starts its worker.
    pub fn load_plugin(&mut self, folder: &Path) -> Result<(), PluginError> {
        let manifest = Manifest::load(folder, &manifest::process_env)?;
        let (instance, runtime, load, load_time) = self.prepare(&manifest)?;
        let name: Arc<str> = Arc::from(manifest.name.as_str());
        let manifest = Arc::new(manifest);
        let stats = PluginStats::new();
        let (tx, rx) = sync_channel(manifest.limits.queue);
        let worker = Worker {
            name: name.clone(),
            manifest: manifest.clone(),
            runtime,
            instance: Some(instance),
            stats: stats.clone(),
            router: self.router.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("plugin-{name}"))
            .spawn(move || worker.run(rx))
            .map_err(|e| PluginError::Start {
                name: name.to_string(),
                message: e.to_string(),
            })?;
        if manifest.kind == PluginKind::Notifier {
            self.router.add(tx.clone(), stats.clone());
        }
        if matches!(manifest.artifact, Artifact::Native(_)) {
            tracing::warn!(plugin = %name, "loaded a trusted native plugin: it runs unsandboxed, without memory or time limits");
        }
        tracing::info!(plugin = %name, kind = %manifest.kind, ?load, ms = load_time.as_millis() as u64, "plugin loaded");
        self.plugins.push(LoadedPlugin {
            manifest,
            tx,
            stats,
            thread: Mutex::new(Some(thread)),
            load,
            load_time,
        });
        Ok(())
    }

    /// Compiles (or loads from cache), links, checks the exports and runs `init`; for a
    /// native plugin, loads the library, checks its ABI and entries, and runs `init`.
    fn prepare(
        &self,
        manifest: &Manifest,
    ) -> Result<(Live, Runtime, LoadSource, Duration), PluginError> {
        let started = Instant::now();
        let path = match &manifest.artifact {
            Artifact::Component(p) => p,
            Artifact::Native(file) => {
                let library = NativeLibrary::open(file, manifest.kind).map_err(|source| {
                    PluginError::Native {
                        name: manifest.name.clone(),
                        file: manifest.file.clone(),
                        source,
                    }
                })?;
                let runtime = Runtime::Native(library);
                let name: Arc<str> = Arc::from(manifest.name.as_str());
                let instance = runtime
                    .start(manifest, name)
                    .map_err(|e| start_error(manifest, e))?;
                // Nothing is compiled or cached for a native plugin: `Compiled` stands for
                // "loaded from the artifact itself".
                return Ok((instance, runtime, LoadSource::Compiled, started.elapsed()));
            }
        };
        let (component, load) = self
            .engine
            .load(path)
            .map_err(|source| PluginError::Engine {
                name: manifest.name.clone(),
                source,
            })?;
        let linker = self.linker(manifest.kind).map_err(|e| PluginError::Start {
            name: manifest.name.clone(),
            message: format!("{e:#}"),
        })?;
        let wrong_exports = |message: String| PluginError::WrongExports {
            name: manifest.name.clone(),
            file: manifest.file.clone(),
            kind: manifest.kind,
            message,
        };
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| wrong_exports(format!("{e:#}")))?;
        let prepared =
            Prepared::new(manifest.kind, pre).map_err(|e| wrong_exports(format!("{e:#}")))?;
        let name: Arc<str> = Arc::from(manifest.name.as_str());
        let runtime = Runtime::Wasm {
            engine: self.engine.engine().clone(),
            prepared,
        };
        let instance = runtime
            .start(manifest, name)
            .map_err(|e| start_error(manifest, e))?;
        Ok((instance, runtime, load, started.elapsed()))
    }

    fn linker(
        &self,
        kind: PluginKind,
    ) -> wasmtime::Result<Arc<wasmtime::component::Linker<instance::PluginState>>> {
        let mut linkers = self.linkers.lock().unwrap();
        if let Some(l) = linkers.get(kind.as_str()) {
            return Ok(l.clone());
        }
        let l = Arc::new(instance::linker(self.engine.engine(), kind)?);
        linkers.insert(kind.as_str(), l.clone());
        Ok(l)
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    pub fn list(&self) -> Vec<PluginInfo> {
        self.plugins
            .iter()
            .map(|p| PluginInfo {
                name: p.manifest.name.clone(),
                version: p.manifest.version.clone(),
                kind: p.manifest.kind,
                folder: p
                    .manifest
                    .file
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                capabilities: manifest::describe_capabilities(&p.manifest.capabilities),
                health: p.stats.health(),
                queued: p.stats.queued.load(Ordering::Relaxed),
                delivered: p.stats.delivered.load(Ordering::Relaxed),
                dropped: p.stats.dropped.load(Ordering::Relaxed),
                failures: p.stats.failures.load(Ordering::Relaxed),
                restarts: p.stats.restarts.load(Ordering::Relaxed),
                refused: p.stats.refused.load(Ordering::Relaxed),
                last_error: p.stats.last_error.lock().unwrap().clone(),
                load: p.load,
                load_time: p.load_time,
            })
            .collect()
    }

    /// Delivers everything queued so far and asks each plugin to flush; returns when done.
    pub fn flush(&self) {
        let acks: Vec<_> = self
            .plugins
            .iter()
            .filter_map(|p| {
                let (tx, rx) = sync_channel(1);
                p.tx.send(Message::Flush(tx)).ok().map(|()| rx)
            })
            .collect();
        for rx in acks {
            let _ = rx.recv();
        }
    }

    /// The text of an exporter plugin's `render` (e.g. Prometheus metrics).
    pub fn render(&self, name: &str) -> Result<String, String> {
        let p = self
            .plugins
            .iter()
            .find(|p| p.manifest.name == name)
            .ok_or_else(|| format!("no plugin named {name}"))?;
        if p.manifest.kind != PluginKind::Exporter {
            return Err(format!(
                "plugin {name} is a {}, not an exporter",
                p.manifest.kind
            ));
        }
        let (tx, rx) = sync_channel(1);
        p.tx.send(Message::Render(tx))
            .map_err(|_| format!("plugin {name} has stopped"))?;
        rx.recv()
            .map_err(|_| format!("plugin {name} has stopped"))?
    }

    /// Delivers what is queued, flushes, and stops every worker (idempotent). Plugins
    /// that take events stop first, notifiers last, so that alerts raised while stopping
    /// (by rules, or about a failing plugin) are still delivered.
    pub fn shutdown(&self) {
        for notifiers in [false, true] {
            let phase: Vec<&LoadedPlugin> = self
                .plugins
                .iter()
                .filter(|p| (p.manifest.kind == PluginKind::Notifier) == notifiers)
                .collect();
            for p in &phase {
                let _ = p.tx.send(Message::Shutdown);
            }
            for p in &phase {
                if let Some(t) = p.thread.lock().unwrap().take() {
                    let _ = t.join();
                }
            }
        }
    }
}

impl Drop for PluginHost {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The first instance's failure: a refusal is `init` rejecting the config.
fn start_error(manifest: &Manifest, e: CallError) -> PluginError {
    match e {
        CallError::Refused(message) => PluginError::ConfigRejected {
            name: manifest.name.clone(),
            file: manifest.file.clone(),
            message,
        },
        CallError::Trap(message) => PluginError::Start {
            name: manifest.name.clone(),
            message,
        },
    }
}

fn passes(filter: &manifest::Filter, e: &ExecutionEvent) -> bool {
    if !filter.kinds.is_empty() && !filter.kinds.iter().any(|k| k == e.kind.as_str()) {
        return false;
    }
    if !filter.scripts.is_empty() && !filter.scripts.contains(&e.script_id) {
        return false;
    }
    if !filter.specialists.is_empty()
        && !e
            .specialist
            .as_ref()
            .is_some_and(|s| filter.specialists.contains(s))
    {
        return false;
    }
    if let Some(want) = filter.success {
        let outcome = match e.kind {
            LifecycleKind::Finished => e.result.as_ref().map(|r| r.success),
            LifecycleKind::AttemptFailed => Some(false),
            _ => None,
        };
        if outcome != Some(want) {
            return false;
        }
    }
    true
}

impl EventSink for PluginHost {
    fn emit(&self, event: &ExecutionEvent) {
        let mut delivery: Option<Arc<Delivery>> = None;
        for p in &self.plugins {
            if !p.manifest.kind.takes_events() || !passes(&p.manifest.filter, event) {
                continue;
            }
            let d = delivery
                .get_or_insert_with(|| {
                    Arc::new(Delivery {
                        event: event.clone(),
                        json: std::sync::OnceLock::new(),
                    })
                })
                .clone();
            p.stats.queued.fetch_add(1, Ordering::Relaxed);
            match p.manifest.limits.on_full {
                OnFull::Block => {
                    let _ = p.tx.send(Message::Event(d));
                }
                OnFull::DropNewest => match p.tx.try_send(Message::Event(d)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                        p.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                },
            }
        }
    }
}
