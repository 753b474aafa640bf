//! [`PluginHost`]: the set of loaded plugins, what it tells about them, and its lifecycle.

pub mod folders;
pub mod host_metrics;
mod load;
mod reload;

pub use reload::ReloadReport;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use metaclaude_formats::prometheus::Format;

use crate::alerting::router::{AlertCallback, AlertRouter, RouterStats};
use crate::alerting::{AlertHistory, InhibitRules, SilenceStore};
use crate::executor::{EventSink, Receipt};
use crate::model::{Alert, ExecutionEvent, Threshold};
use crate::plugin::delivery::destinations::DestinationReport;
use crate::plugin::delivery::dispatch;
use crate::plugin::delivery::health::{Health, LatencySnapshot, PluginStats};
use crate::plugin::delivery::{Mailbox, Message, SetThreshold};
use crate::plugin::grants::admission::{
    admit, missing, plugins_dir_of, read_grants, Admission, GrantSource,
};
use crate::plugin::grants::{Ask, Grants, GrantsError};
use crate::plugin::manifest::{self, Artifact, Manifest, PluginKind, WitVersion};
use crate::plugin::runtime::engine::{LoadSource, PluginEngine};
use crate::plugin::runtime::instance;
use crate::plugin::runtime::lifting::Rendered;
use crate::plugin::set::folders::{plugin_folders, Fingerprint};
use crate::plugin::set::load::FolderRead;
use crate::plugin::PluginError;

/// Facts about a loaded plugin, for `plugins list` and tests.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// Its manifest's `name`, unique among the loaded plugins.
    pub name: String,
    /// Its manifest's `version`.
    pub version: String,
    /// Which world it exports.
    pub kind: PluginKind,
    /// The folder it was loaded from.
    pub folder: PathBuf,
    /// False for a trusted native plugin: it runs unsandboxed, and its capabilities and
    /// memory and time limits are not enforced.
    pub sandboxed: bool,
    /// What it was granted, as people read it (`dir /logs=... (rw), udp ...`, or `none`).
    pub capabilities: String,
    /// Running, restarting, quarantined or disabled.
    pub health: Health,
    /// Events (alerts, for a notifier) offered to its queue since it was loaded, dropped
    /// ones included.
    pub queued: u64,
    /// Events (alerts) handed to the plugin, whether it accepted them or answered an error.
    pub delivered: u64,
    /// Events (alerts) lost: queue full under `drop_newest`, quarantined or disabled, or in
    /// a batch a trap lost.
    pub dropped: u64,
    /// Traps, out-of-memory and missed deadlines: each discarded an instance.
    pub failures: u64,
    /// Fresh instances started after a failure.
    pub restarts: u64,
    /// Calls the plugin answered with an error (its instance kept).
    pub refused: u64,
    /// The latest failure or refusal, in the plugin's or wasmtime's words; `None` while
    /// there has been none.
    pub last_error: Option<String>,
    /// Where its code came from: compiled now, the cache, or a native library.
    pub load: LoadSource,
    /// How long loading it took (compiling, or reading the cache, and the first `init`).
    pub load_time: Duration,
    /// The version of the plugin contract the component was built against (`None` for a
    /// native plugin).
    pub wit: Option<WitVersion>,
    /// What loads but is likely a mistake: an `http` import with no destination granted,
    /// a manifest `wit` that is not what the component was built against.
    pub notes: Vec<String>,
    /// The live instance's linear memory, bytes (0 for a native plugin).
    pub memory_bytes: u64,
    /// How long the calls into the plugin took.
    pub calls: LatencySnapshot,
    /// What the plugin reports of its deliveries, per destination (pushers, notifiers
    /// built against WIT 0.4.0); empty for the others.
    pub destinations: Vec<DestinationReport>,
    /// Destinations its last report named beyond the ones kept.
    pub destinations_left_out: usize,
}

/// An alert rule's name and its thresholds (or why it could not say).
pub type RuleThresholds = (String, Result<Vec<Threshold>, String>);

/// Why a threshold was not changed, or the thresholds cannot be had.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    /// The host runs without plugins.
    #[error("no plugins are loaded, so no alert rule either")]
    NoPlugins,
    /// Plugins are loaded, but none of them is an alert rule.
    #[error("no alert-rule plugin is loaded (the default one is plugins/alert-rules)")]
    NoRules,
    /// `name` is not loaded; `loaded` are the alert rules that are.
    #[error("no alert-rule plugin named `{name}` (loaded: {})", loaded.join(", "))]
    NoRuleNamed {
        /// The plugin asked for.
        name: String,
        /// The names of the alert rules loaded (at least one).
        loaded: Vec<String>,
    },
    /// Every rule refused the change: each one's reason, as `plugin: what it said`.
    #[error("no alert rule took threshold `{name}` = {value}: {}", refusals.join("; "))]
    NotTaken {
        /// The threshold's name (`error_rate_percent`).
        name: String,
        /// The value asked for, in the threshold's own unit.
        value: f64,
        /// One per rule asked.
        refusals: Vec<String>,
    },
}

impl ThresholdError {
    /// Whether no alert rule was there to ask (rather than the rules refusing).
    pub fn no_rule(&self) -> bool {
        !matches!(self, ThresholdError::NotTaken { .. })
    }
}

/// What one alert rule said of a threshold change.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ThresholdChange {
    /// The alert rule's name.
    pub plugin: String,
    /// e.g. "error_rate_percent: 10 -> 15".
    pub change: String,
}

/// A plugin's worker thread.
struct WorkerThread {
    handle: std::thread::JoinHandle<()>,
    /// Says the worker has ended (or, closed, that it panicked). A worker stopped before
    /// the process exits is left parked rather than joined (see `load`).
    ended: std::sync::mpsc::Receiver<()>,
}

/// A plugin as the host holds it: its manifest, its worker's mailbox and thread.
struct LoadedPlugin {
    /// Unique for the life of the host: tells a reloaded plugin from its predecessor.
    id: u64,
    folder: PathBuf,
    /// What the folder held when this was loaded; a reload compares it.
    fingerprint: Fingerprint,
    manifest: Arc<Manifest>,
    mailbox: Arc<Mailbox>,
    stats: Arc<PluginStats>,
    thread: Mutex<Option<WorkerThread>>,
    load: LoadSource,
    load_time: Duration,
    wit: Option<WitVersion>,
    /// What loads but is likely a mistake (see `loader::grant_notes`).
    notes: Vec<String>,
    /// A native plugin's library digest, as loaded (a revoked grant is seen by it).
    native_sha256: Option<String>,
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
    /// Values for `${VAR}` in manifests that win over the process environment.
    env: Mutex<HashMap<String, String>>,
    /// Where the operator's grants are read from (`admission`).
    grants: Mutex<GrantSource>,
    /// The grants the last reload pass read (`None`: unreadable), to see them change.
    grants_seen: Mutex<Option<Grants>>,
    /// Set by [`PluginHost::serve_one_execution`].
    one_execution: bool,
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
            router: AlertRouter::start(),
            next_id: AtomicU64::new(1),
            loading: Mutex::new(()),
            closed: AtomicBool::new(false),
            failed: Mutex::new(HashMap::new()),
            linkers: Mutex::new(HashMap::new()),
            env: Mutex::new(HashMap::new()),
            grants: Mutex::new(GrantSource::default()),
            grants_seen: Mutex::new(None),
            one_execution: false,
        })
    }

    /// This host serves one execution (a one-shot `run`): a plugin's queue, allocated
    /// whole when it starts (a slot per event: `limits.queue` costs ~0.2 ms of page
    /// faults at the default 10 000), is made only as long as one execution's events.
    pub fn serve_one_execution(&mut self) {
        self.one_execution = true;
    }

    /// How many events a plugin with `manifest` may have queued.
    fn queue_len(&self, manifest: &Manifest) -> usize {
        if self.one_execution {
            manifest
                .limits
                .queue
                .min(crate::registry::MAX_EVENTS_OF_ONE_EXECUTION)
        } else {
            manifest.limits.queue
        }
    }

    /// Sets `${name}` in the manifests loaded from now on to `value`, whatever the process
    /// environment says (a library user points the StatsD exporter at a host this way).
    pub fn set_env(&self, name: impl Into<String>, value: impl Into<String>) {
        self.env.lock().unwrap().insert(name.into(), value.into());
    }

    /// `${name}` as manifests see it: an override, else the process environment.
    fn env_value(&self, name: &str) -> Option<String> {
        match self.env.lock().unwrap().get(name) {
            Some(v) => Some(v.clone()),
            None => manifest::process_env(name),
        }
    }

    /// Loads every plugin folder (a folder holding `plugin.toml`) in `dir`. A plugin that
    /// cannot be loaded is skipped and its error returned; the others load.
    ///
    /// Takes `&mut self` because it builds the initial set, before the host is shared;
    /// a shared host (`Arc<PluginHost>`) changes its set with [`PluginHost::reload_dir`].
    pub fn load_dir(&mut self, dir: &Path) -> Result<Vec<PluginError>, PluginError> {
        self.load_dir_where(dir, |_| true)
    }

    /// [`PluginHost::load_dir`], leaving out the plugins whose manifest `keep` refuses
    /// (a one-shot host leaves out those with `one_shot = false`).
    pub fn load_dir_where(
        &mut self,
        dir: &Path,
        keep: impl Fn(&Manifest) -> bool,
    ) -> Result<Vec<PluginError>, PluginError> {
        let folders = plugin_folders(dir)?;
        // Read once for every folder; unreadable, each folder's start reports why.
        let grants = self.grants_for(dir).ok();
        *self.grants_seen.lock().unwrap() = grants.clone();
        let grants = grants.as_ref();
        let this = &*self;
        let _loading = this.loading.lock().unwrap();
        // The folders start side by side (each compiles or reads its code, instantiates
        // and runs `init` on a thread of its own) and join the set in folder order, as if
        // loaded one by one: a name that an earlier folder's manifest writes is taken for
        // the later ones, which fail before anything of them runs.
        let before = names(this.current().iter());
        let mut named: Vec<(String, PathBuf)> = Vec::new();
        let mut wanted: Vec<(PathBuf, Vec<(String, PathBuf)>)> = Vec::new();
        let mut reads: Vec<FolderRead> = Vec::new();
        for folder in folders {
            // A manifest that does not parse is reported by its start below.
            let Some(read) = FolderRead::of_wanted(&folder, this, &keep) else {
                continue;
            };
            let taken = before.iter().chain(&named).cloned().collect();
            if let Ok(m) = &read.manifest {
                named.push((m.name.clone(), folder.clone()));
            }
            wanted.push((folder, taken));
            reads.push(read);
        }
        let started: Vec<Result<Arc<LoadedPlugin>, PluginError>> = std::thread::scope(|s| {
            // The first starts on this thread, the others each on one of their own.
            let mut reads = wanted
                .iter()
                .zip(reads)
                .map(|((folder, taken), read)| (folder, taken, read));
            let first = reads.next();
            let starts: Vec<_> = reads
                .map(|(folder, taken, read)| {
                    s.spawn(move || this.start_read_plugin(folder, taken, read, grants))
                })
                .collect();
            let first = first
                .map(|(folder, taken, read)| this.start_read_plugin(folder, taken, read, grants));
            first
                .into_iter()
                .chain(starts.into_iter().map(|t| {
                    t.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                }))
                .collect()
        });
        let mut loaded: Vec<Arc<LoadedPlugin>> = Vec::new();
        // Returned, not logged: the caller reports each once, in its own words.
        let mut errors = Vec::new();
        for ((folder, _), result) in wanted.iter().zip(started) {
            let result = match result {
                // The earlier folder holding its name did not load: loaded one by one,
                // this one would have; so it is, now.
                Err(PluginError::DuplicateName { other, .. })
                    if !before
                        .iter()
                        .chain(&names(loaded.iter()))
                        .any(|(_, f)| *f == other) =>
                {
                    let taken: Vec<_> =
                        before.iter().cloned().chain(names(loaded.iter())).collect();
                    this.start_plugin(folder, &taken)
                }
                result => result,
            };
            match result {
                Ok(plugin) => loaded.push(plugin),
                Err(e) => errors.push(e),
            }
        }
        this.swap(loaded, &[]);
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

    /// Whether no plugin is loaded.
    pub fn is_empty(&self) -> bool {
        self.current().is_empty()
    }

    /// Every loaded plugin with its counters as they are now.
    pub fn list(&self) -> Vec<PluginInfo> {
        self.current()
            .iter()
            .map(|p| {
                let (destinations, destinations_left_out) = p.stats.destinations.snapshot();
                PluginInfo {
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
                    wit: p.wit,
                    notes: p.notes.clone(),
                    memory_bytes: p.stats.memory_bytes.load(Ordering::Relaxed),
                    calls: p.stats.calls.snapshot(),
                    destinations,
                    destinations_left_out,
                }
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

    /// The alerts in force, most severe first.
    pub fn active_alerts(&self) -> Vec<Alert> {
        self.router.active()
    }

    /// Alerts resolved lately, newest first.
    pub fn recent_alerts(&self) -> Vec<Alert> {
        self.router.recent()
    }

    /// The router's counters: active alerts, refused ones, history write failures.
    pub fn alert_stats(&self) -> RouterStats {
        self.router.stats()
    }

    /// `callback` gets every alert that changes state (new, escalated, resolved).
    pub fn add_alert_callback(&self, callback: AlertCallback) {
        self.router.add_callback(callback);
    }

    /// Every alert change is written to `history` from now on.
    pub fn set_alert_history(&self, history: Arc<AlertHistory>) {
        self.router.set_history(history);
    }

    /// Alerts the silences of `store` match are muted from now on.
    pub fn use_silences(&self, store: Arc<SilenceStore>) {
        self.router.use_silences(store);
    }

    /// The inhibition rules in force from now on (the built-in one alone until called).
    pub fn set_inhibit_rules(&self, rules: InhibitRules) {
        self.router.set_inhibit_rules(rules);
    }

    /// Alerts raised from outside a rule (the library, a test): routed as a rule's are.
    pub fn raise_alerts(&self, alerts: Vec<Alert>) {
        self.router.publish(alerts);
    }

    /// Changes the threshold `name` of every alert rule that has one (or of `plugin`
    /// only), from its next evaluation on. Returns each rule's word on the change;
    /// an error when no rule took it, with the rules' reasons (an unknown name lists
    /// the known ones).
    pub fn set_alert_threshold(
        &self,
        name: &str,
        value: f64,
        plugin: Option<&str>,
    ) -> Result<Vec<ThresholdChange>, ThresholdError> {
        let rules = self.rules(plugin)?;
        let mut changed = Vec::new();
        let mut refusals = Vec::new();
        for p in rules {
            let (tx, rx) = sync_channel(1);
            let sent = p.mailbox.send(Message::SetThreshold(Box::new(SetThreshold {
                name: name.to_string(),
                value,
                reply: tx,
            })));
            let answer = match sent {
                Ok(()) => rx
                    .recv()
                    .unwrap_or_else(|_| Err("the plugin has stopped".into())),
                Err(_) => Err("the plugin has stopped".into()),
            };
            match answer {
                Ok(said) => {
                    tracing::info!(plugin = %p.manifest.name, threshold = name, value, "alert threshold changed: {said}");
                    changed.push(ThresholdChange {
                        plugin: p.manifest.name.clone(),
                        change: said,
                    });
                }
                Err(why) => refusals.push(format!("{}: {why}", p.manifest.name)),
            }
        }
        if changed.is_empty() {
            return Err(ThresholdError::NotTaken {
                name: name.to_string(),
                value,
                refusals,
            });
        }
        Ok(changed)
    }

    /// The thresholds of every alert rule (or of `plugin`), by rule.
    pub fn alert_thresholds(
        &self,
        plugin: Option<&str>,
    ) -> Result<Vec<RuleThresholds>, ThresholdError> {
        let rules = self.rules(plugin)?;
        Ok(rules
            .into_iter()
            .map(|p| {
                let (tx, rx) = sync_channel(1);
                let answer = match p.mailbox.send(Message::Thresholds(tx)) {
                    Ok(()) => rx
                        .recv()
                        .unwrap_or_else(|_| Err("the plugin has stopped".into())),
                    Err(_) => Err("the plugin has stopped".into()),
                };
                (p.manifest.name.clone(), answer)
            })
            .collect())
    }

    /// The loaded alert rules, or the one named `plugin` (an error names what is loaded).
    fn rules(&self, plugin: Option<&str>) -> Result<Vec<Arc<LoadedPlugin>>, ThresholdError> {
        let rules: Vec<Arc<LoadedPlugin>> = self
            .current()
            .iter()
            .filter(|p| p.manifest.kind == PluginKind::AlertRule)
            .filter(|p| plugin.is_none_or(|n| p.manifest.name == n))
            .cloned()
            .collect();
        if rules.is_empty() {
            let loaded: Vec<String> = self
                .current()
                .iter()
                .filter(|p| p.manifest.kind == PluginKind::AlertRule)
                .map(|p| p.manifest.name.clone())
                .collect();
            return Err(match (plugin, loaded.is_empty()) {
                (_, true) => ThresholdError::NoRules,
                (Some(n), false) => ThresholdError::NoRuleNamed {
                    name: n.to_string(),
                    loaded,
                },
                (None, false) => unreachable!("rules were found"),
            });
        }
        Ok(rules)
    }

    /// The text of an exporter plugin's `render` (Prometheus metrics), asked in `format`
    /// (an exporter built against WIT 0.3.0 renders it; an older one renders what it
    /// renders: see `host_metrics`). Its buffer goes back to the plugin once the text is
    /// dropped, for the next render.
    pub fn render(&self, name: &str, format: Format) -> Result<Rendered, String> {
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
            .send(Message::Render(format, tx))
            .map_err(|_| format!("plugin {name} has stopped"))?;
        rx.recv()
            .map_err(|_| format!("plugin {name} has stopped"))?
    }

    /// Delivers what is queued, flushes, and stops every worker (idempotent). Plugins
    /// that take events stop first, notifiers last, so that alerts raised while stopping
    /// (by rules, or about a failing plugin) are still delivered.
    pub fn shutdown(&self) {
        self.stop(false);
    }

    /// [`PluginHost::shutdown`], right before the process exits: the plugins' instances
    /// are left for the exit to reclaim rather than dropped one by one.
    pub fn shutdown_before_exit(&self) {
        self.stop(true);
    }

    fn stop(&self, process_exiting: bool) {
        // Under the loading lock, so that no reload in flight starts a plugin afterwards
        // (a load that panicked must not make dropping the host panic too).
        let _loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        self.closed.store(true, Ordering::Release);
        stop_all(&self.current(), Some(&self.router), process_exiting);
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
/// rules, or about a failing plugin) are still delivered; with the host's `router`
/// (a shutdown), it hands out everything pending in between, group waits cut short.
fn stop_all(plugins: &[Arc<LoadedPlugin>], router: Option<&AlertRouter>, process_exiting: bool) {
    for notifiers in [false, true] {
        if notifiers {
            if let Some(r) = router {
                r.stop();
            }
        }
        let phase: Vec<&Arc<LoadedPlugin>> = plugins
            .iter()
            .filter(|p| (p.manifest.kind == PluginKind::Notifier) == notifiers)
            .collect();
        for p in &phase {
            let _ = p.mailbox.send(Message::Shutdown { process_exiting });
        }
        for p in &phase {
            if let Some(t) = p.thread.lock().unwrap().take() {
                if process_exiting {
                    let _ = t.ended.recv();
                } else {
                    let _ = t.handle.join();
                }
            }
        }
    }
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
    /// Offers `event` to the loaded set (see [`dispatch::offer`]).
    fn offer(&self, event: &ExecutionEvent, acknowledge: bool) -> Option<Receipt> {
        // Held while offering: see `PluginHost` on why a reload cannot lose events.
        let plugins = self.plugins.read().unwrap();
        let set = plugins.iter().map(|p| (&*p.manifest, &*p.mailbox));
        dispatch::offer(set, event, acknowledge)
    }
}

impl PluginHost {
    /// Returns once every worker has handled every message sent to it before: each
    /// answers a question put after them (the thresholds of an alert rule; other plugins
    /// answer it too, with none or a refusal), in order, and after each message a worker
    /// has already decided whether a batch is due.
    #[cfg(test)]
    pub(in crate::plugin) fn caught_up(&self) {
        for p in self.current().iter() {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            p.mailbox
                .send(Message::Thresholds(tx))
                .expect("the worker runs");
            let _answer = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("the worker answers (hung otherwise)");
        }
    }
}

impl Drop for PluginHost {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl PluginHost {
    /// Where this host's grants come from from now on (read at the next load or reload).
    pub fn set_grants(&self, source: GrantSource) {
        *self.grants.lock().unwrap() = source;
    }

    /// The grants that apply to the plugins directory `dir`, read now.
    pub fn grants_for(&self, dir: &Path) -> Result<Grants, GrantsError> {
        read_grants(&self.grants.lock().unwrap(), dir)
    }

    /// Reads a plugin folder's manifest (and a native plugin's library, without loading
    /// it) and checks its requests against the grants of the directory it is in.
    pub fn admission(&self, folder: &Path) -> Result<Admission, PluginError> {
        let manifest = Manifest::load(folder, &|n| self.env_value(n))?;
        self.admit(manifest)
    }

    fn admit(&self, manifest: Manifest) -> Result<Admission, PluginError> {
        let all = self
            .grants_for(&plugins_dir_of(&manifest))
            .map_err(|source| PluginError::Grants {
                name: manifest.name.clone(),
                source,
            })?;
        admit(manifest, &all, &|n| self.env_value(n))
    }

    /// [`missing`](crate::plugin::grants::admission::missing) with this host's variables.
    fn missing(&self, all: &Grants, manifest: &Manifest, native_sha256: Option<&str>) -> Vec<Ask> {
        missing(all, manifest, native_sha256, &|n| self.env_value(n))
    }
}
