//! The host assembly: registry + executor + plugins (+ a watch on the plugins directory),
//! built in one place for every command (`run`, `batch`, `serve`, the dashboards) and for
//! the library's monitored-host API, the seed's `MonitoredToolExecutionService`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use metaclaude::app::MonitoredHost;
//! use metaclaude::ExecutionRequest;
//! // The registry, and the default plugins (the log sink ...) the way `metaclaude run` finds them.
//! let host = MonitoredHost::open("registry.json")?;
//! let execution = host.execute(ExecutionRequest::new("hello").input("name", "world")).await;
//! println!("{}", execution.result.success);
//! host.shutdown(); // every plugin delivers and flushes what it was sent
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::executor::{
    EventSink, Execution, ExecutionRequest, ExecutorConfig, ToolExecutionService,
};
use crate::plugin::engine::PluginEngine;
use crate::plugin::{resolve_plugins_dir, PluginError, PluginHost, ReloadReport};
use crate::registry::{Registry, RegistryError};

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
    pub registry: PathBuf,
    pub executor: ExecutorConfig,
    pub plugins: PluginSource,
    /// Watch the plugins directory every this often (long-running hosts); `None` loads it
    /// once.
    pub watch_plugins: Option<Duration>,
    /// A host for one execution (`metaclaude run`): plugins with `one_shot = false` in
    /// their manifest (a pull exporter, windowed rules) are not loaded.
    pub one_shot: bool,
}

impl HostConfig {
    /// The registry with the default executor and the default plugins, not watched.
    pub fn new(registry: impl Into<PathBuf>) -> HostConfig {
        HostConfig {
            registry: registry.into(),
            executor: ExecutorConfig::default(),
            plugins: PluginSource::Default,
            watch_plugins: None,
            one_shot: false,
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
    #[error("{0}")]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    Plugins(#[from] PluginError),
    #[error("cannot start watching the plugins directory {}: {source}", dir.display())]
    Watch {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A running host: the executor with its sinks, and the plugins it loaded.
pub struct MonitoredHost {
    service: Arc<ToolExecutionService>,
    plugins: Option<Arc<PluginHost>>,
    plugins_dir: Option<PathBuf>,
}

impl MonitoredHost {
    /// The registry with the default plugins, as `metaclaude run` assembles it; plugins
    /// that fail to load are logged (`tracing`) and left out.
    pub fn open(registry: impl AsRef<Path>) -> Result<MonitoredHost, HostError> {
        let notices: Notices = Arc::new(|notice: &HostNotice<'_>| {
            if let HostNotice::PluginNotLoaded(e) = notice {
                tracing::warn!("{e}");
            }
        });
        MonitoredHost::start(HostConfig::new(registry.as_ref()), Vec::new(), notices)
    }

    /// Assembles a host from `config`. `sinks` receive every event before the plugins do
    /// (e.g. `run --events`); `notices` hears about plugins that fail to load and, when
    /// watched, about every change of the loaded set.
    pub fn start(
        config: HostConfig,
        sinks: Vec<Arc<dyn EventSink>>,
        notices: Notices,
    ) -> Result<MonitoredHost, HostError> {
        let registry = Registry::load(&config.registry)?;
        let (plugins, plugins_dir) = load_plugins(&config, &notices)?;
        let mut service = ToolExecutionService::new(registry, config.executor);
        tracing::debug!(measurement = %service.measurement_description());
        for sink in sinks {
            service.add_sink(sink);
        }
        if let Some(p) = &plugins {
            service.add_sink(p.clone());
        }
        Ok(MonitoredHost {
            service: Arc::new(service),
            plugins,
            plugins_dir,
        })
    }

    /// The executor, to share with tasks that run executions.
    pub fn service(&self) -> &Arc<ToolExecutionService> {
        &self.service
    }

    /// The loaded plugins (`None` without plugins, or, unwatched, when none loaded).
    pub fn plugins(&self) -> Option<&Arc<PluginHost>> {
        self.plugins.as_ref()
    }

    /// The directory the plugins come from, when there is one.
    pub fn plugins_dir(&self) -> Option<&Path> {
        self.plugins_dir.as_deref()
    }

    /// Runs one execution; see [`ToolExecutionService::execute_recorded`].
    pub async fn execute(&self, request: ExecutionRequest) -> Execution {
        self.service.execute_recorded(request).await
    }

    /// Every plugin delivers what it was sent, flushes and stops (idempotent); notifiers
    /// stop last.
    pub fn shutdown(&self) {
        if let Some(p) = &self.plugins {
            p.shutdown();
        }
    }
}

impl Drop for MonitoredHost {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The plugin host for `config`: `None` when plugins are off, there is no plugins
/// directory, or (unwatched) no plugin loaded.
fn load_plugins(
    config: &HostConfig,
    notices: &Notices,
) -> Result<(Option<Arc<PluginHost>>, Option<PathBuf>), HostError> {
    let flag = match &config.plugins {
        PluginSource::Off => return Ok((None, None)),
        PluginSource::Default => None,
        PluginSource::Dir(dir) => Some(dir.as_path()),
    };
    let Some(dir) = resolve_plugins_dir(flag) else {
        return Ok((None, None));
    };
    let mut host = PluginHost::new(PluginEngine::default_cache_dir())?;
    let one_shot = config.one_shot;
    for e in host.load_dir_where(&dir, |m| m.one_shot || !one_shot)? {
        notices(&HostNotice::PluginNotLoaded(&e));
    }
    let host = Arc::new(host);
    match config.watch_plugins {
        None if host.is_empty() => Ok((None, Some(dir))),
        None => Ok((Some(host), Some(dir))),
        Some(every) => {
            let notices = notices.clone();
            host.watch(dir.clone(), every, move |report| {
                notices(&HostNotice::PluginsChanged(report))
            })
            .map_err(|source| HostError::Watch {
                dir: dir.clone(),
                source,
            })?;
            Ok((Some(host), Some(dir)))
        }
    }
}
