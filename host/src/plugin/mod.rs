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
//! instance), `worker` (queue, batching, failure policy), `net` (the `http` import),
//! `host_metrics` (the host's own metrics about its plugins, Prometheus text).

mod ack;
mod bindings;
mod convert;
pub mod engine;
pub mod host_metrics;
mod instance;
mod limiter;
pub mod manifest;
pub mod native;
mod net;
mod runtime;
mod stderr;
mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::executor::{EventSink, Receipt};
use crate::model::{ExecutionEvent, LifecycleKind};

use self::ack::AckGroup;
use self::engine::{EngineError, LoadSource, PluginEngine};
use self::instance::{CallError, Prepared};
use self::manifest::{Artifact, Manifest, ManifestError, OnFull, PluginKind};
use self::native::{NativeError, NativeLibrary};
use self::runtime::{Live, Runtime};
use self::worker::{AlertRouter, Delivery, Mailbox, Message, PluginStats, Worker};

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
    /// False for a trusted native plugin: it runs unsandboxed, and its capabilities and
    /// memory and time limits are not enforced.
    pub sandboxed: bool,
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
    /// Unique for the life of the host: tells a reloaded plugin from its predecessor.
    id: u64,
    folder: PathBuf,
    /// What the folder held when this was loaded; a reload compares it.
    fingerprint: Fingerprint,
    manifest: Arc<Manifest>,
    mailbox: Arc<Mailbox>,
    stats: Arc<PluginStats>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    load: LoadSource,
    load_time: Duration,
}

/// The files of a plugin folder as a reload sees them: `plugin.toml`'s text, and the
/// name, size and modification time of every other file directly in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    manifest: Vec<u8>,
    files: Vec<(std::ffi::OsString, u64, Option<SystemTime>)>,
}

impl Fingerprint {
    fn of(folder: &Path) -> Fingerprint {
        let manifest = std::fs::read(folder.join("plugin.toml")).unwrap_or_default();
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

/// What a [`PluginHost::reload_dir`] changed, by plugin name.
#[derive(Debug, Default)]
pub struct ReloadReport {
    pub added: Vec<String>,
    /// Replaced by the new version of their folder.
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Folders that could not be loaded; a changed plugin whose new version fails keeps
    /// running in its old version. The same failing content is reported once.
    pub errors: Vec<PluginError>,
}

impl ReloadReport {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.changed.is_empty()
            && self.removed.is_empty()
            && self.errors.is_empty()
    }
}

/// The plugins currently loaded, replaced as a whole by a (re)load.
type PluginSet = Arc<Vec<Arc<LoadedPlugin>>>;

/// A loaded set of plugins, fed with the executor's events.
///
/// The set can change while events flow ([`PluginHost::reload_dir`], [`PluginHost::watch`]):
/// `emit` holds the set's read lock while it offers an event, and a reload swaps the set
/// under the write lock before telling the plugins it removed to stop. So every event
/// offered to a removed plugin is already in its queue when it stops, and it delivers
/// them all before stopping; the other plugins never notice.
pub struct PluginHost {
    engine: Arc<PluginEngine>,
    plugins: RwLock<PluginSet>,
    router: Arc<AlertRouter>,
    linkers: Mutex<HashMap<&'static str, Arc<wasmtime::component::Linker<instance::PluginState>>>>,
    next_id: AtomicU64,
    /// Serialises loads and reloads; never taken on the event path.
    loading: Mutex<()>,
    /// Set by [`PluginHost::shutdown`]: no reload starts a plugin after it.
    closed: AtomicBool,
    /// Folders that failed to load, with the content that failed: not retried (nor
    /// reported again) until that content changes, or, for a duplicate name, until the
    /// folder holding the name is gone.
    failed: Mutex<HashMap<PathBuf, (Fingerprint, Option<PathBuf>)>>,
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
            plugins: RwLock::new(Arc::new(Vec::new())),
            router: Arc::new(AlertRouter::default()),
            next_id: AtomicU64::new(1),
            loading: Mutex::new(()),
            closed: AtomicBool::new(false),
            failed: Mutex::new(HashMap::new()),
            linkers: Mutex::new(HashMap::new()),
        })
    }

    /// Loads every plugin folder (a folder holding `plugin.toml`) in `dir`. A plugin that
    /// cannot be loaded is skipped and its error returned; the others load.
    ///
    /// Takes `&mut self` because it builds the initial set, before the host is shared;
    /// a shared host (`Arc<PluginHost>`) changes its set with [`PluginHost::reload_dir`].
    pub fn load_dir(&mut self, dir: &Path) -> Result<Vec<PluginError>, PluginError> {
        let folders = plugin_folders(dir)?;
        let mut errors = Vec::new();
        for folder in folders {
            // Returned, not logged: the caller reports it once, in its own words.
            if let Err(e) = self.load_plugin(&folder) {
                errors.push(e);
            }
        }
        Ok(errors)
    }

    /// Validates and loads one plugin folder and starts its worker.
    pub fn load_plugin(&mut self, folder: &Path) -> Result<(), PluginError> {
        let _loading = self.loading.lock().unwrap();
        let taken = names(self.current().iter());
        let plugin = self.start_plugin(folder, &taken)?;
        self.swap(vec![plugin], &[]);
        Ok(())
    }

    /// Brings the loaded set in line with the plugin folders now in `dir`: loads new
    /// folders, replaces plugins whose folder changed (the new version starts before the
    /// old one stops; if it fails to load, the old one keeps running), and stops plugins
    /// whose folder is gone (after they deliver what they were sent). Plugins whose folder
    /// did not change, and script execution, are not disturbed.
    pub fn reload_dir(&self, dir: &Path) -> Result<ReloadReport, PluginError> {
        let _loading = self.loading.lock().unwrap();
        if self.closed.load(Ordering::Acquire) {
            return Ok(ReloadReport::default());
        }
        let folders = plugin_folders(dir)?;
        let current = self.current();
        let mut report = ReloadReport::default();
        let mut add = Vec::new();
        let mut remove = Vec::new();
        // Names held by plugins that stay (their folder is still there), and by those
        // loaded in this pass.
        let mut taken = names(current.iter().filter(|p| folders.contains(&p.folder)));
        for folder in &folders {
            let fingerprint = Fingerprint::of(folder);
            let existing = current.iter().find(|p| &p.folder == folder);
            if existing.is_some_and(|p| p.fingerprint == fingerprint) {
                continue;
            }
            let known_failure =
                self.failed
                    .lock()
                    .unwrap()
                    .get(folder)
                    .is_some_and(|(failed, blocker)| {
                        *failed == fingerprint
                            && blocker
                                .as_ref()
                                .is_none_or(|b| taken.iter().any(|(_, f)| f == b))
                    });
            if known_failure {
                continue;
            }
            match self.start_plugin(folder, &taken) {
                Ok(plugin) => {
                    taken.push((plugin.manifest.name.clone(), plugin.folder.clone()));
                    match existing {
                        Some(old) => {
                            remove.push(old.id);
                            report.changed.push(plugin.manifest.name.clone());
                        }
                        None => report.added.push(plugin.manifest.name.clone()),
                    }
                    add.push(plugin);
                }
                Err(e) => report.errors.push(e),
            }
        }
        for p in current.iter().filter(|p| !folders.contains(&p.folder)) {
            remove.push(p.id);
            report.removed.push(p.manifest.name.clone());
        }
        self.failed
            .lock()
            .unwrap()
            .retain(|folder, _| folders.contains(folder));
        let removed = self.swap(add, &remove);
        stop_all(&removed);
        for (what, names) in [
            ("added", &report.added),
            ("reloaded", &report.changed),
            ("removed", &report.removed),
        ] {
            for name in names {
                tracing::info!(plugin = %name, "plugin {what}");
            }
        }
        Ok(report)
    }

    /// Applies [`PluginHost::reload_dir`] to `dir` every `every`, until the host is shut
    /// down or dropped: a long-running host picks up added, changed and removed plugin
    /// folders without a restart. Polling (not inotify) keeps it dependable on every file
    /// system. `on_change` sees every pass that changed something or failed to load a
    /// folder.
    pub fn watch(
        self: &Arc<Self>,
        dir: PathBuf,
        every: Duration,
        mut on_change: impl FnMut(&ReloadReport) + Send + 'static,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let host = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("plugin-watch".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                let Some(host) = host.upgrade() else {
                    return;
                };
                if host.closed.load(Ordering::Acquire) {
                    return;
                }
                match host.reload_dir(&dir) {
                    Ok(report) if !report.is_empty() => on_change(&report),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("{e}"),
                }
            })
    }

    /// The loaded set as it is now.
    fn current(&self) -> PluginSet {
        self.plugins.read().unwrap().clone()
    }

    /// Adds `add` to the loaded set and takes out the plugins with ids in `remove`
    /// (returned, for the caller to stop once no event can reach them any more).
    fn swap(&self, add: Vec<Arc<LoadedPlugin>>, remove: &[u64]) -> Vec<Arc<LoadedPlugin>> {
        let mut plugins = self.plugins.write().unwrap();
        let (removed, mut kept): (Vec<_>, Vec<_>) = plugins
            .iter()
            .cloned()
            .partition(|p| remove.contains(&p.id));
        kept.extend(add);
        *plugins = Arc::new(kept);
        drop(plugins);
        for p in &removed {
            self.router.remove(p.id);
        }
        removed
    }

    /// Loads a folder and starts its worker, without adding it to the loaded set yet.
    /// `taken`: the names (and folders) of the other plugins, which this one may not reuse.
    fn start_plugin(
        &self,
        folder: &Path,
        taken: &[(String, PathBuf)],
    ) -> Result<Arc<LoadedPlugin>, PluginError> {
        // Taken first, so that a change made while loading is seen by the next reload.
        let fingerprint = Fingerprint::of(folder);
        let result = self.start_plugin_with(folder, fingerprint.clone(), taken);
        let mut failed = self.failed.lock().unwrap();
        match &result {
            Ok(_) => {
                failed.remove(folder);
            }
            Err(e) => {
                let blocker = match e {
                    PluginError::DuplicateName { other, .. } => Some(other.clone()),
                    _ => None,
                };
                failed.insert(folder.to_path_buf(), (fingerprint, blocker));
            }
        }
        result
    }

    fn start_plugin_with(
        &self,
        folder: &Path,
        fingerprint: Fingerprint,
        taken: &[(String, PathBuf)],
    ) -> Result<Arc<LoadedPlugin>, PluginError> {
        let manifest = Manifest::load(folder, &manifest::process_env)?;
        if let Some((_, other)) = taken
            .iter()
            .find(|(name, f)| *name == manifest.name && f != folder)
        {
            return Err(PluginError::DuplicateName {
                name: manifest.name.clone(),
                file: manifest.file.clone(),
                other: other.clone(),
            });
        }
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
        let mailbox = Arc::new(Mailbox::new(
            tx,
            thread.thread().clone(),
            stats.clone(),
            manifest.limits.batch_max,
            manifest.limits.queue,
        ));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if manifest.kind == PluginKind::Notifier {
            self.router.add(id, mailbox.clone());
        }
        if matches!(manifest.artifact, Artifact::Native(_)) {
            tracing::warn!(plugin = %name, "loaded a trusted native plugin: it runs unsandboxed, without memory or time limits");
        }
        tracing::info!(plugin = %name, kind = %manifest.kind, ?load, ms = load_time.as_millis() as u64, "plugin loaded");
        Ok(Arc::new(LoadedPlugin {
            id,
            folder: folder.to_path_buf(),
            fingerprint,
            manifest,
            mailbox,
            stats,
            thread: Mutex::new(Some(thread)),
            load,
            load_time,
        }))
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
        check_component_wit(self.engine.engine(), &component).map_err(|message| {
            PluginError::WitVersion {
                name: manifest.name.clone(),
                component: path.clone(),
                message,
            }
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
        self.current().is_empty()
    }

    pub fn list(&self) -> Vec<PluginInfo> {
        self.current()
            .iter()
            .map(|p| PluginInfo {
                name: p.manifest.name.clone(),
                version: p.manifest.version.clone(),
                kind: p.manifest.kind,
                folder: p.folder.clone(),
                sandboxed: matches!(p.manifest.artifact, Artifact::Component(_)),
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

    /// The host's own metrics about its plugins (state, delivered, dropped, failures...),
    /// in the Prometheus text format: see [`host_metrics`]. Cheap: it reads counters.
    pub fn render_host_metrics(&self) -> String {
        host_metrics::render(&self.list())
    }

    /// Delivers everything queued so far and asks each plugin to flush; returns when done.
    pub fn flush(&self) {
        let acks: Vec<_> = self
            .current()
            .iter()
            .filter_map(|p| {
                let (tx, rx) = sync_channel(1);
                p.mailbox.send(Message::Flush(tx)).ok().map(|()| rx)
            })
            .collect();
        for rx in acks {
            let _ = rx.recv();
        }
    }

    /// The text of an exporter plugin's `render` (e.g. Prometheus metrics).
    pub fn render(&self, name: &str) -> Result<String, String> {
        let plugins = self.current();
        let p = plugins
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
        p.mailbox
            .send(Message::Render(tx))
            .map_err(|_| format!("plugin {name} has stopped"))?;
        rx.recv()
            .map_err(|_| format!("plugin {name} has stopped"))?
    }

    /// Delivers what is queued, flushes, and stops every worker (idempotent). Plugins
    /// that take events stop first, notifiers last, so that alerts raised while stopping
    /// (by rules, or about a failing plugin) are still delivered.
    pub fn shutdown(&self) {
        // Under the loading lock, so that no reload in flight starts a plugin afterwards
        // (a load that panicked must not make dropping the host panic too).
        let _loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        self.closed.store(true, Ordering::Release);
        stop_all(&self.current());
    }
}

/// The names and folders of `plugins`.
fn names<'a>(plugins: impl Iterator<Item = &'a Arc<LoadedPlugin>>) -> Vec<(String, PathBuf)> {
    plugins
        .map(|p| (p.manifest.name.clone(), p.folder.clone()))
        .collect()
}

/// Stops plugins: each delivers what is queued, flushes, and ends (idempotent). Those
/// that take events first, notifiers last, so that alerts raised while stopping (by
/// rules, or about a failing plugin) are still delivered.
fn stop_all(plugins: &[Arc<LoadedPlugin>]) {
    for notifiers in [false, true] {
        let phase: Vec<&Arc<LoadedPlugin>> = plugins
            .iter()
            .filter(|p| (p.manifest.kind == PluginKind::Notifier) == notifiers)
            .collect();
        for p in &phase {
            let _ = p.mailbox.send(Message::Shutdown);
        }
        for p in &phase {
            if let Some(t) = p.thread.lock().unwrap().take() {
                let _ = t.join();
            }
        }
    }
}

/// The plugin folders (folders holding a `plugin.toml`) in `dir`, sorted.
fn plugin_folders(dir: &Path) -> Result<Vec<PathBuf>, PluginError> {
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
    Ok(folders)
}

impl Drop for PluginHost {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Checks the `metaclaude:monitor` version the component was actually built against (the
/// version in the names of the interfaces it imports), whatever its manifest declares:
/// an incompatible one is refused with both versions named, rather than with the
/// linker's "import not found".
fn check_component_wit(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Result<(), String> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        let Some(rest) = name.strip_prefix("metaclaude:monitor/") else {
            continue;
        };
        let Some((_, version)) = rest.split_once('@') else {
            return Err(format!(
                "the component imports `{name}` without a version: rebuild it against wit/ of this host (metaclaude:monitor@{})",
                manifest::WIT_VERSION
            ));
        };
        manifest::check_wit_version(version)?;
    }
    Ok(())
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
        self.offer(event, false);
    }

    fn emit_finished(&self, event: &ExecutionEvent) -> Option<Receipt> {
        self.offer(event, true)
    }
}

impl PluginHost {
    /// Puts `event` on the queue of every plugin whose filter takes it. With `acknowledge`
    /// (a `finished` event) and at least one acknowledging receiver, returns the receipt
    /// their workers will answer.
    fn offer(&self, event: &ExecutionEvent, acknowledge: bool) -> Option<Receipt> {
        // Held while offering: see `PluginHost` on why a reload cannot lose events.
        let plugins = self.plugins.read().unwrap();
        let receivers: Vec<&Arc<LoadedPlugin>> = plugins
            .iter()
            .filter(|p| p.manifest.kind.takes_events() && passes(&p.manifest.filter, event))
            .collect();
        if receivers.is_empty() {
            return None;
        }
        let acknowledging: Vec<&Arc<LoadedPlugin>> = receivers
            .iter()
            .copied()
            .filter(|p| acknowledge && p.manifest.acknowledgements.enabled)
            .collect();
        let (ack, receipt) = if acknowledging.is_empty() {
            (None, None)
        } else {
            let timeout = acknowledging
                .iter()
                .map(|p| p.manifest.acknowledgements.timeout_ms)
                .max()
                .unwrap_or_default();
            let names = acknowledging
                .iter()
                .map(|p| p.manifest.name.clone())
                .collect();
            let (group, receipt) = AckGroup::new(names, Duration::from_millis(timeout));
            (Some(group), Some(receipt))
        };
        let delivery = Arc::new(Delivery {
            event: event.clone(),
            json: std::sync::OnceLock::new(),
            ack,
        });
        for p in receivers {
            let acknowledges = p.manifest.acknowledgements.enabled;
            let block = p.manifest.limits.on_full == OnFull::Block;
            let urgent = acknowledges && delivery.ack.is_some();
            if let Err(why) = p.mailbox.offer(delivery.clone(), block, urgent) {
                if let (Some(group), true) = (&delivery.ack, acknowledges) {
                    group.deny(&p.manifest.name, why);
                }
            }
        }
        receipt
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::native::tests::{event, example};
    use super::*;

    /// A plugin folder `dir/name` holding `manifest` as its `plugin.toml`.
    fn plugin_folder(dir: &Path, name: &str, manifest: &str) -> PathBuf {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("plugin.toml"), manifest).unwrap();
        folder
    }

    /// A native counting sink in `dir/plugins/<name>`, writing its count to `dir/<count>`.
    fn sink(dir: &Path, name: &str, count: &str) {
        plugin_folder(
            &dir.join("plugins"),
            name,
            &format!(
                "name = \"{name}\"\nversion = \"1\"\nkind = \"sink\"\nnative = \"{}\"\n\
                 trusted = true\n[config]\ncount_file = \"{}\"\n",
                example().display(),
                dir.join(count).display()
            ),
        );
    }

    fn count(dir: &Path, file: &str) -> u64 {
        std::fs::read_to_string(dir.join(file))
            .map(|t| t.parse().unwrap())
            .unwrap_or(0)
    }

    #[test]
    fn reload_adds_replaces_and_removes_plugins_without_losing_events() {
        let tmp = tempfile::tempdir().unwrap();
        let plugins = tmp.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        sink(tmp.path(), "a", "a-v1");
        let mut host = PluginHost::new(None).unwrap();
        assert!(host.load_dir(&plugins).unwrap().is_empty());
        let host = Arc::new(host);
        let mut sent = 0;
        let mut send = |n: u32| {
            for _ in 0..n {
                host.emit(&event(sent));
                sent += 1;
            }
        };
        send(100);

        // Nothing changed: nothing happens.
        assert!(host.reload_dir(&plugins).unwrap().is_empty());

        sink(tmp.path(), "b", "b");
        let report = host.reload_dir(&plugins).unwrap();
        assert_eq!(
            (report.added.as_slice(), report.errors.len()),
            (&["b".to_string()][..], 0)
        );
        send(50);

        // A changed manifest replaces the plugin: the old version delivers what it was
        // sent (and flushes) before it stops; the new one gets everything after.
        sink(tmp.path(), "a", "a-v2");
        let report = host.reload_dir(&plugins).unwrap();
        assert_eq!(report.changed, ["a"]);
        assert_eq!(count(tmp.path(), "a-v1"), 150);
        send(30);

        std::fs::remove_dir_all(plugins.join("b")).unwrap();
        let report = host.reload_dir(&plugins).unwrap();
        assert_eq!(report.removed, ["b"]);
        assert_eq!(count(tmp.path(), "b"), 80);
        send(20);

        host.flush();
        assert_eq!(count(tmp.path(), "a-v2"), 50);
        let names: Vec<String> = host.list().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["a"]);
    }

    /// A worker with an open batch sleeps until the batch is due instead of waking for
    /// each event, but a full batch, or a full queue under `block`, wakes it at once: with
    /// a one-minute window, 100 events in batches of 10 through a queue of 4 arrive in
    /// seconds, and the sender never waits on the sleeping worker. A partial batch waits
    /// for its window or a flush.
    #[test]
    fn full_batches_and_full_queues_wake_a_batching_worker() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = plugin_folder(
            tmp.path(),
            "long-window",
            &format!(
                "name = \"long-window\"\nversion = \"1\"\nkind = \"sink\"\nnative = \"{}\"\n\
                 trusted = true\n[limits]\nbatch_ms = 60000\nbatch_max = 10\nqueue = 4\n\
                 on_full = \"block\"\n",
                example().display()
            ),
        );
        let mut host = PluginHost::new(None).unwrap();
        host.load_plugin(&folder).unwrap();
        let host = Arc::new(host);
        let delivered = |host: &PluginHost| host.list()[0].delivered;
        let (done, sent) = std::sync::mpsc::channel();
        let sender = {
            let host = host.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    host.emit(&event(i));
                }
                done.send(()).unwrap();
            })
        };
        sent.recv_timeout(Duration::from_secs(20))
            .expect("the sender waited on a sleeping worker");
        sender.join().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while delivered(&host) < 100 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(delivered(&host), 100, "full batches waited for the window");

        for i in 100..103 {
            host.emit(&event(i));
        }
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            delivered(&host),
            100,
            "a partial batch went before its window"
        );
        host.flush();
        assert_eq!(delivered(&host), 103);
    }

    /// Reloads racing a thread that emits: every event reaches exactly one version.
    #[test]
    fn reloads_under_load_lose_no_event() {
        let tmp = tempfile::tempdir().unwrap();
        let plugins = tmp.path().join("plugins");
        sink(tmp.path(), "a", "v0");
        let mut host = PluginHost::new(None).unwrap();
        host.load_dir(&plugins).unwrap();
        let host = Arc::new(host);
        let emitter = {
            let host = host.clone();
            std::thread::spawn(move || {
                for i in 0..20_000 {
                    host.emit(&event(i));
                }
            })
        };
        for v in 1..=5 {
            std::thread::sleep(Duration::from_millis(5));
            sink(tmp.path(), "a", &format!("v{v}"));
            assert_eq!(host.reload_dir(&plugins).unwrap().changed, ["a"]);
        }
        emitter.join().unwrap();
        host.flush();
        let total: u64 = (0..=5).map(|v| count(tmp.path(), &format!("v{v}"))).sum();
        assert_eq!(total, 20_000);
    }

    /// A component whose imports say another, incompatible WIT version is refused with
    /// both versions named, even though its manifest claims the right one.
    #[test]
    fn components_built_against_an_incompatible_wit_version_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = plugin_folder(
            tmp.path(),
            "old",
            "name = \"old\"\nversion = \"1\"\nkind = \"sink\"\ncomponent = \"old.wasm\"\nwit = \"0.1.0\"\n",
        );
        let component = wat::parse_str(
            r#"(component
                 (import "metaclaude:monitor/host@0.2.0" (instance (export "log-enabled" (func)))))"#,
        )
        .unwrap();
        std::fs::write(folder.join("old.wasm"), component).unwrap();
        let err = PluginHost::new(None)
            .unwrap()
            .load_plugin(&folder)
            .unwrap_err();
        assert!(matches!(err, PluginError::WitVersion { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with("plugin old (")
                && text.contains("old.wasm): the plugin was built against metaclaude:monitor@0.2.0, but this host implements @0.1.0"),
            "{text}"
        );
    }

    fn fixture_sink() -> PathBuf {
        let wasm = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/plugins/target/wasm32-wasip2/release/fixture_sink.wasm");
        assert!(
            wasm.is_file(),
            "{} is not built: run `cargo xtask build-plugins`",
            wasm.display()
        );
        wasm
    }

    /// A plugin that keeps trapping, under the `block` policy with a tiny queue, never
    /// makes the executor wait through its restart backoffs (0.1 + 0.2 + 0.4 + 0.8 s before
    /// its quarantine): its worker keeps draining, holding what it can for the next
    /// instance. Every event is accounted for, delivered or dropped.
    #[test]
    fn a_restarting_plugin_never_blocks_the_sender() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = plugin_folder(
            tmp.path(),
            "trap",
            &format!(
                "name = \"trap\"\nversion = \"1\"\nkind = \"sink\"\ncomponent = \"{}\"\n\
                 [config]\nmode = \"trap\"\n[limits]\non_full = \"block\"\nqueue = 8\nbatch_max = 1\n",
                fixture_sink().display()
            ),
        );
        let mut host = PluginHost::new(None).unwrap();
        host.load_plugin(&folder).unwrap();
        let started = Instant::now();
        for i in 0..3000 {
            host.emit(&event(i));
            if i % 100 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(600),
            "the sender waited {took:?}"
        );
        host.shutdown();
        let info = &host.list()[0];
        assert!(info.failures >= 1, "{info:?}");
        assert_eq!(info.queued, 3000);
        assert_eq!(info.delivered + info.dropped, 3000, "{info:?}");
    }

    /// With `limits.core_dump`, a trap leaves a WebAssembly core dump in the plugin folder
    /// for its author, and the failure says where. Needs the test fixtures built
    /// (`cargo xtask build-plugins`).
    #[test]
    fn a_trap_writes_a_core_dump_on_request() {
        let wasm = fixture_sink();
        let tmp = tempfile::tempdir().unwrap();
        let folder = plugin_folder(
            tmp.path(),
            "trap",
            &format!(
                "name = \"trap\"\nversion = \"1\"\nkind = \"sink\"\ncomponent = \"{}\"\n\
                 [config]\nmode = \"trap\"\n[limits]\ncore_dump = true\nfailure_policy = \"disable\"\n",
                wasm.display()
            ),
        );
        let mut host = PluginHost::new(None).unwrap();
        host.load_plugin(&folder).unwrap();
        host.emit(&event(1));
        host.flush();
        let info = &host.list()[0];
        assert!(
            matches!(info.health, Health::Disabled(_)),
            "{:?}",
            info.health
        );
        let error = info.last_error.clone().unwrap();
        assert!(error.contains("core dump written to"), "{error}");
        // The panic message reached the report through the plugin's stderr.
        assert!(error.contains("fixture-sink: deliberate panic"), "{error}");
        let dumps: Vec<_> = std::fs::read_dir(&folder)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "coredump"))
            .collect();
        assert_eq!(dumps.len(), 1, "{error}");
        let bytes = std::fs::read(&dumps[0]).unwrap();
        assert!(bytes.starts_with(b"\0asm"), "a core dump is a wasm file");
        assert!(error.contains(&dumps[0].display().to_string()), "{error}");
    }

    /// Two folders may not load plugins of the same name; when the first goes, the
    /// second loads on the next reload.
    #[test]
    fn plugin_names_are_unique() {
        let tmp = tempfile::tempdir().unwrap();
        let plugins = tmp.path().join("plugins");
        sink(tmp.path(), "a", "a");
        let mut host = PluginHost::new(None).unwrap();
        host.load_dir(&plugins).unwrap();
        sink(tmp.path(), "b", "b");
        let manifest = plugins.join("b/plugin.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(&manifest, text.replace("name = \"b\"", "name = \"a\"")).unwrap();
        let report = host.reload_dir(&plugins).unwrap();
        let err = report.errors[0].to_string();
        assert!(
            err.contains("another plugin of that name is loaded from")
                && err.contains("b/plugin.toml"),
            "{err}"
        );
        assert!(
            host.reload_dir(&plugins).unwrap().is_empty(),
            "reported again"
        );
        std::fs::remove_dir_all(plugins.join("a")).unwrap();
        let report = host.reload_dir(&plugins).unwrap();
        assert_eq!(
            (report.removed.as_slice(), report.added.as_slice()),
            (&["a".to_string()][..], &["a".to_string()][..])
        );
        assert_eq!(host.list()[0].folder, plugins.join("b"));
    }

    #[test]
    fn a_broken_new_version_leaves_the_old_one_running_and_is_reported_once() {
        let tmp = tempfile::tempdir().unwrap();
        let plugins = tmp.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        sink(tmp.path(), "a", "a");
        let mut host = PluginHost::new(None).unwrap();
        host.load_dir(&plugins).unwrap();
        let manifest = plugins.join("a/plugin.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(&manifest, text.replace("count_file", "count_fiel")).unwrap();
        let report = host.reload_dir(&plugins).unwrap();
        assert_eq!(report.errors.len(), 1);
        let err = report.errors[0].to_string();
        assert!(err.contains("unknown config key `count_fiel`"), "{err}");
        assert!(
            host.reload_dir(&plugins).unwrap().is_empty(),
            "reported again"
        );
        host.emit(&event(1));
        host.flush();
        assert_eq!(count(tmp.path(), "a"), 1, "the old version still runs");
    }
}
