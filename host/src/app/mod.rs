//! The host assembly: registry + executor + plugins (+ a watch on the plugins directory),
//! built in one place for every command (`run`, `batch`, `serve`, the dashboards) and for
//! the library's monitored-host API, the seed's `MonitoredToolExecutionService`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use metaclaude::app::MonitoredHost;
//! use metaclaude::ExecutionRequest;
//! // The registry, and the default plugins (the log sink ...) the way `metaclaude run` finds them.
//! let host = MonitoredHost::open("registry.json")?;
//! let execution = host.execute(ExecutionRequest::new("hello").input("name", "world")).await;
//! println!("{}", execution.result.success);
//! host.shutdown(); // every plugin delivers and flushes what it was sent
//! # Ok(()) }
//! ```

mod background_load;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use background_load::{BackgroundLoad, LoadOutcome};

use crate::alerting::AlertHistory;
use crate::executor::{
    EventSink, Execution, ExecutionRequest, ExecutorConfig, ToolExecutionService,
};
use crate::model::Alert;
use crate::monitor::{Limits, Monitor, Report};
use crate::plugin::runtime::engine::PluginEngine;
use crate::plugin::{
    resolve_plugins_dir, GrantSource, PluginError, PluginHost, ReloadReport, RuleThresholds,
    ThresholdChange, ThresholdError,
};
use crate::registry::{Registry, RegistryError};
use crate::script_watch::ScriptWatch;

/// Which plugins a host loads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PluginSource {
    /// None at all (`--no-plugins`).
    Off,
    /// `METACLAUDE_PLUGIN_DIR`, else the default set installed beside the executable.
    #[default]
    Default,
    /// This directory (`--plugins DIR`).
    Dir(PathBuf),
}

/// How often a long-running host looks for added, changed or removed plugin folders: a
/// stat of each folder's files, cheap enough to do often.
pub const PLUGIN_POLL: Duration = Duration::from_secs(2);

/// What a host is made of.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The `registry.json` to load (read once; `serve` watches it itself).
    pub registry: PathBuf,
    /// Concurrency, kill and drain graces, cgroups, sampling.
    pub executor: ExecutorConfig,
    /// Which plugins directory, if any.
    pub plugins: PluginSource,
    /// Where the operator's grants are (what each plugin may do).
    pub grants: GrantSource,
    /// Watch the plugins directory every this often (long-running hosts); `None` loads it
    /// once.
    pub watch_plugins: Option<Duration>,
    /// A host for one execution (`metaclaude run`): plugins with `one_shot = false` in
    /// their manifest (a pull exporter, windowed rules) are not loaded, the others load
    /// while the execution starts, and the executor runs as
    /// [`ExecutorConfig::one_execution`].
    pub one_shot: bool,
    /// Names of plugins not to load (the builder's `logging(false)`, `metrics(false)`).
    pub leave_out: Vec<String>,
    /// `${VAR}` values for the manifests, over the process environment.
    pub env: Vec<(String, String)>,
    /// How much the host's in-memory view of its executions keeps.
    pub monitor: Limits,
}

impl HostConfig {
    /// The execution log's directory, as the log sink's manifest has it
    /// (`METACLAUDE_LOG_DIR`, from [`HostConfig::env`] first, else the default): the alert
    /// history is written beside it.
    pub fn log_dir(&self) -> PathBuf {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == "METACLAUDE_LOG_DIR")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var("METACLAUDE_LOG_DIR").ok())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| crate::logs::DEFAULT_LOG_DIR.to_string())
            .into()
    }

    /// The registry with the default executor and the default plugins, not watched.
    pub fn new(registry: impl Into<PathBuf>) -> HostConfig {
        HostConfig {
            registry: registry.into(),
            executor: ExecutorConfig::default(),
            plugins: PluginSource::Default,
            grants: crate::plugin::resolve_grants(None),
            watch_plugins: None,
            one_shot: false,
            leave_out: Vec::new(),
            env: Vec::new(),
            monitor: Limits::default(),
        }
    }
}

/// Something the host tells its operator about while it starts or runs. The CLI prints
/// these; a library user may log them.
#[derive(Debug)]
pub enum HostNotice<'a> {
    /// A plugin folder could not be loaded; the host runs without it.
    PluginNotLoaded(&'a PluginError),
    /// A pass of the plugins watch changed the loaded set (or failed to load a folder).
    PluginsChanged(&'a ReloadReport),
}

/// Receives [`HostNotice`]s.
pub type Notices = Arc<dyn Fn(&HostNotice<'_>) + Send + Sync>;

/// Why a host could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The registry is missing, unreadable or invalid (every problem listed).
    #[error("{0}")]
    Registry(#[from] RegistryError),
    /// The plugin engine could not be built or the plugins directory could not be listed;
    /// a single plugin that fails to load is a [`HostNotice::PluginNotLoaded`] instead.
    #[error("{0}")]
    Plugins(#[from] PluginError),
    /// The thread that watches the plugins directory could not be started.
    #[error("cannot start watching the plugins directory {}: {source}", dir.display())]
    Watch {
        /// The plugins directory.
        dir: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// The default plugins of the execution log (the builder's `logging`).
pub const LOGGING_PLUGINS: &[&str] = &["log-sink"];
/// The default metrics exporters (the builder's `metrics`).
pub const METRICS_PLUGINS: &[&str] = &["prometheus-exporter", "statsd-exporter"];

/// The seed's `create_monitored_tes(enable_logging, enable_metrics, statsd_host)` as a
/// builder: `MonitoredHost::builder("registry.json").metrics(true).statsd_host("metrics.example.com").build()`.
pub struct HostBuilder {
    config: HostConfig,
    sinks: Vec<Arc<dyn EventSink>>,
    notices: Option<Notices>,
}

impl HostBuilder {
    /// Whether the execution log sink loads (default: yes, when it is installed).
    pub fn logging(self, on: bool) -> HostBuilder {
        self.toggle(LOGGING_PLUGINS, on)
    }

    /// Whether the metrics exporters (Prometheus, StatsD) load (default: yes).
    pub fn metrics(self, on: bool) -> HostBuilder {
        self.toggle(METRICS_PLUGINS, on)
    }

    fn toggle(mut self, names: &[&str], on: bool) -> HostBuilder {
        self.config
            .leave_out
            .retain(|n| !names.contains(&n.as_str()));
        if !on {
            self.config
                .leave_out
                .extend(names.iter().map(|n| n.to_string()));
        }
        self
    }

    /// Where the StatsD exporter sends (`METACLAUDE_METRICS_HOST` for its manifest).
    pub fn statsd_host(self, host: impl Into<String>) -> HostBuilder {
        self.env("METACLAUDE_METRICS_HOST", host)
    }

    /// The StatsD port (`METACLAUDE_METRICS_PORT`, default 8125).
    pub fn statsd_port(self, port: u16) -> HostBuilder {
        self.env("METACLAUDE_METRICS_PORT", port.to_string())
    }

    /// Sets `${name}` for the plugins' manifests, over the process environment.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> HostBuilder {
        self.config.env.push((name.into(), value.into()));
        self
    }

    /// Which plugins directory (default: `METACLAUDE_PLUGIN_DIR`, else beside the binary).
    pub fn plugins(mut self, source: PluginSource) -> HostBuilder {
        self.config.plugins = source;
        self
    }

    /// The executor's tunables (default: [`ExecutorConfig::default`]).
    pub fn executor(mut self, config: ExecutorConfig) -> HostBuilder {
        self.config.executor = config;
        self
    }

    /// Where the operator's grants come from (default: `METACLAUDE_GRANTS`, else
    /// `grants.toml` beside the plugins directory).
    pub fn grants(mut self, source: GrantSource) -> HostBuilder {
        self.config.grants = source;
        self
    }

    /// Watch the plugins directory every `every` (a long-running host).
    pub fn watch_plugins(mut self, every: Duration) -> HostBuilder {
        self.config.watch_plugins = Some(every);
        self
    }

    /// Receives every event before the plugins do.
    pub fn sink(mut self, sink: Arc<dyn EventSink>) -> HostBuilder {
        self.sinks.push(sink);
        self
    }

    /// Hears about plugins that fail to load or change (default: `tracing` warnings).
    pub fn notices(mut self, notices: Notices) -> HostBuilder {
        self.notices = Some(notices);
        self
    }

    /// Loads the registry and the plugins and starts the host (and the plugins watch,
    /// when asked for); plugins that fail to load go to the notices and are left out.
    pub fn build(self) -> Result<MonitoredHost, HostError> {
        let notices = self.notices.unwrap_or_else(|| {
            Arc::new(|notice: &HostNotice<'_>| match notice {
                HostNotice::PluginNotLoaded(e) => tracing::warn!("{e}"),
                HostNotice::PluginsChanged(r) => tracing::info!(
                    added = ?r.added, reloaded = ?r.changed, removed = ?r.removed,
                    revoked = ?r.revoked,
                    "plugins changed"
                ),
            })
        });
        MonitoredHost::start(self.config, self.sinks, notices)
    }
}

/// A running host: the executor with its sinks, the plugins it loaded, and its view of
/// the executions (running now, recent ones, statistics).
pub struct MonitoredHost {
    service: Arc<ToolExecutionService>,
    plugins: HostPlugins,
    monitor: Arc<Monitor>,
    /// The scripts with expectations, watched (not in a one-shot host).
    script_watch: Option<Arc<ScriptWatch>>,
}

impl MonitoredHost {
    /// The registry with the default plugins, as `metaclaude run` assembles it; plugins
    /// that fail to load are logged (`tracing`) and left out.
    pub fn open(registry: impl AsRef<Path>) -> Result<MonitoredHost, HostError> {
        MonitoredHost::builder(registry).build()
    }

    /// A builder for the registry, with the default plugins.
    pub fn builder(registry: impl AsRef<Path>) -> HostBuilder {
        HostBuilder {
            config: HostConfig::new(registry.as_ref()),
            sinks: Vec::new(),
            notices: None,
        }
    }

    /// Assembles a host from `config`. `sinks` receive every event before the plugins do
    /// (e.g. `run --events`); `notices` hears about plugins that fail to load and, when
    /// watched, about every change of the loaded set.
    pub fn start(
        config: HostConfig,
        sinks: Vec<Arc<dyn EventSink>>,
        notices: Notices,
    ) -> Result<MonitoredHost, HostError> {
        let monitor = Arc::new(Monitor::new(config.monitor));
        // The feed and the dashboards hear of every alert change, numbered with the events.
        let on_loaded = {
            let feed = monitor.clone();
            move |p: &Arc<PluginHost>| {
                let feed = feed.clone();
                p.add_alert_callback(Arc::new(move |alerts| feed.alerts_changed(alerts)));
            }
        };
        // A one-shot host starts loading its plugins before it reads the registry: the
        // load, not the script, sets a one-shot run's pace. The errors keep their order
        // (the registry's before the plugins directory's), and a load begun for a host
        // that then fails is waited for and dropped, telling nobody.
        let (registry, plugins) = if config.one_shot {
            let plugins = start_plugins(&config, &notices, Box::new(on_loaded));
            match (Registry::load(&config.registry), plugins) {
                (Ok(registry), Ok(plugins)) => (registry, plugins),
                (Err(e), plugins) => {
                    if let Ok(plugins) = plugins {
                        plugins.abandon();
                    }
                    return Err(e.into());
                }
                (Ok(_), Err(e)) => return Err(e),
            }
        } else {
            let registry = Registry::load(&config.registry)?;
            (
                registry,
                start_plugins(&config, &notices, Box::new(on_loaded))?,
            )
        };
        // A long-running host watches the scripts that have expectations; their alerts
        // go through the plugins' alert book (and nowhere without plugins).
        let script_watch = (!config.one_shot).then(|| {
            let router = plugins.loaded();
            let watch = ScriptWatch::start(
                &registry,
                Box::new(move |alerts| {
                    if let Some(p) = &router {
                        p.raise_alerts(alerts);
                    }
                }),
            );
            // Runs of other processes writing the same execution log count too.
            watch.follow_log(config.log_dir());
            watch
        });
        let executor = ExecutorConfig {
            one_execution: config.executor.one_execution || config.one_shot,
            ..config.executor.clone()
        };
        let mut service = ToolExecutionService::new(registry, executor);
        tracing::debug!(measurement = %service.measurement_description());
        service.add_sink(monitor.clone());
        for sink in sinks {
            service.add_sink(sink);
        }
        // Before the plugins: the watch knows an execution as the host's own before the
        // log sink writes it to the log the watch follows.
        if let Some(w) = &script_watch {
            service.add_sink(w.clone());
        }
        if let Some(sink) = plugins.sink() {
            service.add_sink(sink);
        }
        Ok(MonitoredHost {
            service: Arc::new(service),
            plugins,
            monitor,
            script_watch,
        })
    }

    /// The host's view of its executions: running now, recent ones, statistics, the feed.
    pub fn monitor(&self) -> &Arc<Monitor> {
        &self.monitor
    }

    /// The seed's `export_prometheus_metrics()`: the host's own metrics (its plugins),
    /// then what every exporter plugin renders, as one Prometheus text exposition (the
    /// body of `metaclaude serve`'s `GET /metrics`).
    pub fn export_prometheus_metrics(&self) -> String {
        let (_, text) = crate::plugin::host_metrics::exposition(
            self.plugins().map(|p| &**p),
            metaclaude_formats::prometheus::Format::Text,
            |_| {},
            |plugin, why| tracing::warn!(plugin, "exporter left out: {why}"),
        );
        text
    }

    /// The seed's `get_execution_stats()`: the figures of `metaclaude metrics --report`
    /// over the last `period_minutes` (0: since the host started).
    pub fn execution_stats(&self, period_minutes: u64) -> Report {
        self.monitor.report(period_minutes, 10, chrono::Utc::now())
    }

    /// The seed's `register_alert_callback(on_alert)`: `on_alert` receives every alert
    /// that changes state (raised, escalated, resolved) on the host's alert thread, as
    /// soon as it does (no group wait). It must not block. Without plugins there are no
    /// alerts and it is never called.
    pub fn register_alert_callback(&self, on_alert: impl Fn(&[Alert]) + Send + Sync + 'static) {
        if let Some(p) = self.plugins() {
            p.add_alert_callback(Arc::new(on_alert));
        }
    }

    /// The seed's `set_alert_threshold(name, value)`, e.g. `("error_rate_percent", 15.0)`:
    /// every alert rule with that threshold takes the value from its next evaluation on.
    /// Returns each rule's word on the change; an error when none took it (an unknown
    /// name lists the known ones; a value out of range says the range).
    pub fn set_alert_threshold(
        &self,
        name: &str,
        value: f64,
    ) -> Result<Vec<ThresholdChange>, ThresholdError> {
        match self.plugins() {
            Some(p) => p.set_alert_threshold(name, value, None),
            None => Err(ThresholdError::NoPlugins),
        }
    }

    /// The thresholds in force, by alert rule.
    pub fn alert_thresholds(&self) -> Vec<RuleThresholds> {
        self.plugins()
            .and_then(|p| p.alert_thresholds(None).ok())
            .unwrap_or_default()
    }

    /// The alerts in force, most severe first.
    pub fn active_alerts(&self) -> Vec<Alert> {
        self.plugins()
            .map(|p| p.active_alerts())
            .unwrap_or_default()
    }

    /// The executor, to share with tasks that run executions.
    pub fn service(&self) -> &Arc<ToolExecutionService> {
        &self.service
    }

    /// Puts `registry` in force: for the executions that start from now, and for the
    /// script watch (scripts whose expectations came, changed or went).
    pub fn replace_registry(&self, registry: Registry) {
        if let Some(w) = &self.script_watch {
            w.sync(&registry);
        }
        self.service.replace_registry(registry);
    }

    /// The watch over the scripts with expectations (`None` in a one-shot host).
    pub fn script_watch(&self) -> Option<&Arc<ScriptWatch>> {
        self.script_watch.as_ref()
    }

    /// The loaded plugins (`None` without plugins, or, unwatched, when none loaded). A
    /// one-shot host's plugins load while its execution starts: this waits for them.
    pub fn plugins(&self) -> Option<&Arc<PluginHost>> {
        match &self.plugins {
            HostPlugins::Loaded { host, .. } => host.as_ref(),
            HostPlugins::Loading(load) => load.wait(),
        }
    }

    /// The directory the plugins come from, when there is one.
    pub fn plugins_dir(&self) -> Option<&Path> {
        match &self.plugins {
            HostPlugins::Loaded { dir, .. } => dir.as_deref(),
            HostPlugins::Loading(load) => Some(load.dir()),
        }
    }

    /// Runs one execution; see [`ToolExecutionService::execute_recorded`].
    pub async fn execute(&self, request: ExecutionRequest) -> Execution {
        self.service.execute_recorded(request).await
    }

    /// Every plugin delivers what it was sent, flushes and stops (idempotent); notifiers
    /// stop last.
    pub fn shutdown(&self) {
        if let Some(w) = &self.script_watch {
            w.stop();
        }
        if let Some(p) = self.plugins() {
            p.shutdown();
        }
    }

    /// [`MonitoredHost::shutdown`] when the process exits right after (a one-shot run):
    /// what the exit reclaims anyway is not freed piece by piece first.
    pub fn shutdown_before_exit(&self) {
        if let Some(p) = self.plugins() {
            p.shutdown_before_exit();
        }
    }
}

impl Drop for MonitoredHost {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A host's plugins: loaded, or (a one-shot host) loading while its execution starts.
enum HostPlugins {
    /// The set (`None` when plugins are off or, unwatched, none loaded) and the directory
    /// it comes from.
    Loaded {
        host: Option<Arc<PluginHost>>,
        dir: Option<PathBuf>,
    },
    /// Loading on a thread of its own ([`BackgroundLoad`]).
    Loading(Arc<BackgroundLoad>),
}

impl HostPlugins {
    /// What the executor hands the plugins' events to: the set, or the load that holds
    /// them until the set is there.
    fn sink(&self) -> Option<Arc<dyn EventSink>> {
        match self {
            HostPlugins::Loaded { host, .. } => host.clone().map(|h| h as Arc<dyn EventSink>),
            HostPlugins::Loading(load) => Some(load.clone()),
        }
    }

    /// Waits for a load under way and drops the set, telling nobody (for a host that
    /// failed to start after its load began).
    fn abandon(self) {
        if let HostPlugins::Loading(load) = self {
            load.abandon();
        }
    }

    /// The set when it is already loaded (a host that is not one-shot).
    fn loaded(&self) -> Option<Arc<PluginHost>> {
        match self {
            HostPlugins::Loaded { host, .. } => host.clone(),
            HostPlugins::Loading(_) => None,
        }
    }
}

/// The plugins for `config`. A one-shot host's load only starts here (its directory is
/// listed first, so that an unreadable one fails the host before anything runs); the
/// others load here, and a watched set starts its watch.
fn start_plugins(
    config: &HostConfig,
    notices: &Notices,
    on_loaded: background_load::OnLoaded,
) -> Result<HostPlugins, HostError> {
    let flag = match &config.plugins {
        PluginSource::Off => {
            return Ok(HostPlugins::Loaded {
                host: None,
                dir: None,
            })
        }
        PluginSource::Default => None,
        PluginSource::Dir(dir) => Some(dir.as_path()),
    };
    let Some(dir) = resolve_plugins_dir(flag) else {
        return Ok(HostPlugins::Loaded {
            host: None,
            dir: None,
        });
    };
    if config.one_shot && config.watch_plugins.is_none() {
        crate::plugin::plugin_folders(&dir)?;
        let (config, load_dir) = (config.clone(), dir.clone());
        let load = BackgroundLoad::start(
            dir,
            move || load_plugins(&config, &load_dir),
            notices.clone(),
            on_loaded,
        );
        return Ok(HostPlugins::Loading(Arc::new(load)));
    }
    let (host, failures) = load_plugins(config, &dir)?;
    for e in &failures {
        notices(&HostNotice::PluginNotLoaded(e));
    }
    let Some(host) = host.map(Arc::new) else {
        return Ok(HostPlugins::Loaded {
            host: None,
            dir: Some(dir),
        });
    };
    on_loaded(&host);
    if let Some(every) = config.watch_plugins {
        let notices = notices.clone();
        host.watch(dir.clone(), every, move |report| {
            notices(&HostNotice::PluginsChanged(report))
        })
        .map_err(|source| HostError::Watch {
            dir: dir.clone(),
            source,
        })?;
    }
    Ok(HostPlugins::Loaded {
        host: Some(host),
        dir: Some(dir),
    })
}

/// Loads the plugins of `dir` that `config` wants: the set (`None` when none loaded, and
/// the set is not watched) and each folder that failed.
fn load_plugins(config: &HostConfig, dir: &Path) -> LoadOutcome {
    let mut host = PluginHost::new(PluginEngine::default_cache_dir())?;
    host.set_grants(config.grants.clone());
    for (name, value) in &config.env {
        host.set_env(name, value);
    }
    host.set_alert_history(Arc::new(AlertHistory::new(config.log_dir())));
    let one_shot = config.one_shot;
    if one_shot {
        host.serve_one_execution();
    }
    let wanted = |m: &crate::plugin::manifest::Manifest| {
        (m.one_shot || !one_shot) && !config.leave_out.contains(&m.name)
    };
    let failures = host.load_dir_where(dir, wanted)?;
    let keep = config.watch_plugins.is_some() || !host.is_empty();
    Ok((keep.then_some(host), failures))
}
