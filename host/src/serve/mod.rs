//! `metaclaude serve`: a long-running host with an HTTP API (`/api/v1`), `/metrics`,
//! health checks, and a live feed of every lifecycle event over WebSocket (`/ws`, also
//! on a second port); the registry and the plugins are reloaded while it runs, and the
//! first SIGINT or SIGTERM shuts it down gracefully.
//!
//! Modules: `api` (the handlers), `answers` (stats shared with clients that accept them a
//! little old), `dashboard` (the web page at `/`), `feed` (the WebSocket feed), `metrics` (`/metrics`),
//! `schedules` (the scheduler task running the scripts with a `run_schedule`, and
//! `/api/v1/schedules`),
//! `security` (Host check, the cross-site rule, token, security headers), `connections`
//! (serving connections: header timeout, per-peer cap, request slots), `error` (the API's
//! error shape).
//!
//! Invariants:
//! * it binds what it was told (127.0.0.1 by default) and refuses to serve any
//!   non-loopback address without a token;
//! * memory is bounded: request bodies (`max_body_bytes`), connections (per client
//!   address, in all, and idle ones closed after the header timeout), requests answered
//!   at once, WebSocket clients, admitted executions (`concurrency + queue`; beyond,
//!   429), the monitor's ring and the feed's channel; a client that does not read is cut
//!   off, never buffered;
//! * nothing runs or changes for a web page of another site (see `security`);
//! * shutdown: stop accepting, let running executions finish within the grace (then end
//!   them as a timeout would), deliver and flush every plugin, close WebSockets with 1001;
//!   an execution the API reported is in the log.

mod alerts;
mod answers;
mod api;
mod connections;
mod dashboard;
mod earlier;
mod error;
mod feed;
mod schedules;
mod scrape;
mod security;
mod views;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

use crate::alerting::silences::{SilenceError, SilenceStore};
use crate::app::MonitoredHost;
use crate::executor::{Execution, ExecutionRequest};
use crate::monitor::Monitor;
use crate::registry::{Registry, RegistryError};
use crate::schedules::ScheduleBook;

use self::connections::Gate;
pub use self::security::needs_token;
use self::security::Access;

/// How the server listens and how much it takes on.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The address both listeners bind (default 127.0.0.1); any other than loopback needs
    /// a `token`.
    pub bind: IpAddr,
    /// 0 picks a free port (printed at start).
    pub http_port: u16,
    /// The seed's separate WebSocket port: a second listener on the same router.
    pub ws_port: Option<u16>,
    /// Needed on every request (but `/healthz`) when set.
    pub token: Option<String>,
    /// More `Host` names the server answers to (behind a proxy, or a LAN name).
    pub allow_hosts: Vec<String>,
    /// Executions admitted beyond those running (waiting for a slot); past it, 429.
    pub queue: usize,
    /// The largest request body taken, bytes (default 64 KiB); a larger one gets 413.
    pub max_body_bytes: usize,
    /// Requests being answered at once (a connection holds a slot from the moment its
    /// request head is read until it has its answer; an idle one holds none).
    pub max_connections: usize,
    /// Connections one client address may have open at once, idle ones included.
    pub max_connections_per_peer: usize,
    /// How long a client has to send a whole request head before its connection is closed.
    pub header_read_timeout: Duration,
    /// Live-feed clients connected at once (default 64); one more gets 503.
    pub max_ws_clients: usize,
    /// How long one live-feed message may take to reach a client before it is cut off.
    pub ws_send_timeout: Duration,
    /// How long running executions may go on after a stop signal.
    pub grace: Duration,
    /// How often the registry file is looked at for changes.
    pub registry_poll: Duration,
    /// Where the log sink writes (for history beyond the monitor's memory).
    pub log_dir: PathBuf,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            bind: IpAddr::from([127, 0, 0, 1]),
            http_port: 8080,
            ws_port: Some(8081),
            token: None,
            allow_hosts: Vec::new(),
            queue: 256,
            max_body_bytes: 64 * 1024,
            max_connections: 256,
            max_connections_per_peer: 64,
            header_read_timeout: connections::HEADER_READ_TIMEOUT,
            max_ws_clients: 64,
            ws_send_timeout: Duration::from_secs(10),
            grace: Duration::from_secs(30),
            registry_poll: Duration::from_secs(1),
            log_dir: PathBuf::from(crate::logs::DEFAULT_LOG_DIR),
        }
    }
}

/// Why the server did not start (or, for the last two, could not run).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// `bind` is not a loopback address and no token was given.
    #[error(
        "refusing to serve on {addr} without a token: anyone who can reach that address could run scripts. \
         Make a token and pass it: (umask 077; head -c 32 /dev/urandom | base64 > metaclaude.token) \
         then --token-file metaclaude.token (or METACLAUDE_TOKEN_FILE=metaclaude.token)"
    )]
    TokenRequired {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// A listener could not be bound (the port is taken, or the address is not this
    /// machine's).
    #[error("cannot listen on {addr}: {source} (is another server on that port? choose another with --http-port / --ws-port, or 0 for any free one)")]
    Bind {
        /// The address and port it tried.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A stop signal cannot be watched (`signal`: its name).
    #[error("cannot watch {signal}")]
    Signal {
        /// `SIGINT` or `SIGTERM`.
        signal: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The silences file in the log directory is damaged or unreadable.
    #[error(transparent)]
    Silences(#[from] SilenceError),
    /// A bound listener's address cannot be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ServeError {
    /// Whether the operator's configuration is at fault (a usage error), rather than the
    /// system.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ServeError::TokenRequired { .. } | ServeError::Bind { .. } | ServeError::Silences(_)
        )
    }
}

/// Where the server listens, once bound.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// The HTTP listener (the API, `/metrics`, the feed, the dashboard), with the port
    /// picked when 0 was asked for.
    pub http: SocketAddr,
    /// The second listener (the seed's WebSocket port); `None` without one.
    pub ws: Option<SocketAddr>,
}

/// Counters of the server itself, for `/metrics`.
#[derive(Debug, Default)]
struct Counters {
    registry_reloads: AtomicU64,
    registry_reload_failures: AtomicU64,
    rejected_busy: AtomicU64,
    feed_snapshots_for_lag: AtomicU64,
    feed_clients_cut_off: AtomicU64,
    exporter_render_failures: AtomicU64,
}

/// The registry as last (re)loaded, and the last reload that failed.
#[derive(Debug, Default)]
struct RegistryStatus {
    text: Vec<u8>,
    /// A changed text seen by the last poll: taken once the next poll sees it unchanged,
    /// so that a file still being written is never judged.
    settling: Option<Vec<u8>>,
    last_error: Option<String>,
}

/// What a running server tells its operator, as it happens (the CLI prints each on
/// stderr); the library prints nothing itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeNotice {
    /// The watch or SIGHUP put a changed registry in force.
    RegistryReloaded {
        /// The registry file.
        file: PathBuf,
        /// Scripts in the new registry.
        scripts: usize,
    },
    /// A changed registry was refused: every problem, and the previous one stays.
    RegistryRefused {
        /// Why, as the registry's error says it: the file unreadable or not JSON, or every
        /// rule it breaks, one a line.
        problems: String,
    },
    /// The first stop signal: no new executions; those running get the grace.
    Stopping {
        /// Executions running when the signal came.
        running: usize,
        /// How long they may go on (`--grace`).
        grace: Duration,
    },
    /// A second stop signal: the operator wants out at once. The callback decides how the
    /// process ends (the CLI exits with status 130); if it returns, shutdown goes on.
    SecondSignal,
    /// The grace is over: what still runs is ended as a timeout would end it.
    GraceOver {
        /// Executions still running, now ended.
        running: usize,
    },
    /// Shutdown is complete: every plugin flushed, the live feed closed.
    Stopped,
    /// A damaged file or line of the execution log, met by a history query (and left
    /// out of its answer). Its `Display` is the whole line (`warning: ...`).
    LogRead(crate::logs::ReadNotice),
    /// At start: a scheduled script's slots came while the server was down (counted
    /// missed, `host_down`; not run late).
    SlotsMissed {
        /// The script.
        script: String,
        /// Slots missed.
        missed: u64,
        /// The last slot decided before the server went down.
        since: DateTime<Utc>,
    },
    /// The saved schedules (`schedules.json`) could not be read (then the server starts
    /// afresh) or written: the whole message names the file.
    SchedulesFile {
        /// What went wrong, and what happens now.
        problem: String,
    },
}

impl std::fmt::Display for ServeNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeNotice::RegistryReloaded { file, scripts } => {
                write!(f, "registry {} reloaded ({scripts} scripts)", file.display())
            }
            ServeNotice::RegistryRefused { problems } => write!(
                f,
                "registry not reloaded, the previous one stays in force:\n{problems}"
            ),
            ServeNotice::Stopping { running, grace } => write!(
                f,
                "stopping: no new executions; {running} running get up to {}s to finish (a second signal exits at once)",
                grace.as_secs()
            ),
            ServeNotice::SecondSignal => write!(f, "second signal: exiting without waiting"),
            ServeNotice::GraceOver { running } => write!(
                f,
                "grace over: ending {running} running executions as a timeout would"
            ),
            ServeNotice::Stopped => write!(f, "stopped"),
            ServeNotice::LogRead(notice) => write!(f, "{notice}"),
            ServeNotice::SlotsMissed {
                script,
                missed,
                since,
            } => write!(
                f,
                "schedule of `{script}`: {missed} slot{} missed while the server was down (the last one decided before was {}); counted as host_down, not run late",
                if *missed == 1 { "" } else { "s" },
                crate::model::timestamp::format(since)
            ),
            ServeNotice::SchedulesFile { problem } => write!(f, "warning: {problem}"),
        }
    }
}

/// Where a server's notices go.
pub type Notices = Arc<dyn Fn(ServeNotice) + Send + Sync>;

/// What every handler shares.
pub struct ServerState {
    /// Where this server's notices go.
    notices: Notices,
    host: MonitoredHost,
    monitor: Arc<Monitor>,
    access: Access,
    /// The connections' caps and counters.
    gate: Arc<Gate>,
    config: ServeConfig,
    registry_file: PathBuf,
    registry: Mutex<RegistryStatus>,
    /// Executions admitted (running or waiting for a slot), at most concurrency + queue.
    admission: Arc<Semaphore>,
    /// Executions started with `?wait=false` that have not finished.
    background: AtomicUsize,
    background_done: Notify,
    ws_clients: AtomicUsize,
    /// Set on the first stop signal: no new executions.
    stopping: watch::Sender<bool>,
    /// Set at the end of shutdown: WebSocket clients are closed with 1001.
    closing: watch::Sender<bool>,
    started: Instant,
    counters: Counters,
    /// Stats answers shared by clients that accept one a little old (the dashboards).
    answers: answers::Answers,
    /// The log's parts of long report windows, kept a few seconds.
    earlier: earlier::EarlierParts,
    /// The silences (`silences.json` in the log directory), which the alert router uses.
    silences: Arc<SilenceStore>,
    /// The scheduled scripts' standing (see `schedules`).
    schedules: Mutex<ScheduleBook>,
    /// Wakes the scheduler task: the registry changed, a scheduled run ended.
    schedules_wake: Arc<Notify>,
}

/// Why an execution was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The server is stopping: no new executions.
    Stopping,
    /// `concurrency + queue` executions are admitted already.
    Busy,
}

impl ServerState {
    /// Reads the registry file again and puts it in force if it is valid; a bad one is
    /// reported with every problem and the one in force stays. With `only_if_changed`
    /// (the watch), a changed file is taken once two polls saw the same text, and
    /// `Ok(None)` says there was nothing to take.
    fn reload_registry(&self, only_if_changed: bool) -> Result<Option<usize>, RegistryError> {
        let text = match std::fs::read(&self.registry_file) {
            Ok(t) => t,
            Err(source) => {
                return Err(crate::config::ConfigError::Io {
                    what: "registry",
                    file: self.registry_file.clone(),
                    source,
                })
            }
        };
        let mut status = self.registry.lock().unwrap();
        if only_if_changed {
            if status.text == text {
                status.settling = None;
                return Ok(None);
            }
            if status.settling.as_ref() != Some(&text) {
                status.settling = Some(text);
                return Ok(None);
            }
        }
        status.settling = None;
        let parsed = std::str::from_utf8(&text)
            .map_err(|e| crate::config::ConfigError::Syntax {
                file: self.registry_file.clone(),
                format: "JSON",
                line: 0,
                column: 0,
                message: format!("not UTF-8: {e}"),
            })
            .and_then(|t| Registry::parse(t, &self.registry_file));
        status.text = text;
        match parsed {
            Ok(registry) => {
                let n = registry.scripts.len();
                self.host.replace_registry(registry);
                schedules::sync(self);
                status.last_error = None;
                self.counters
                    .registry_reloads
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(scripts = n, "registry reloaded");
                Ok(Some(n))
            }
            Err(e) => {
                status.last_error = Some(e.to_string());
                self.counters
                    .registry_reload_failures
                    .fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// A place among the executions admitted (`concurrency + queue`), unless the server is
    /// stopping or full. Both the API and the scheduler go through here.
    fn admit(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        if self.is_stopping() {
            return Err(Refusal::Stopping);
        }
        self.admission
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Busy)
    }

    /// Runs `request` as `id` in the background with its admission `permit`; shutdown
    /// waits for it. `then` hears how it ended, once its place is given back.
    fn run_in_background(
        self: &Arc<Self>,
        permit: OwnedSemaphorePermit,
        id: String,
        request: ExecutionRequest,
        then: impl FnOnce(&Execution) + Send + 'static,
    ) {
        let service = self.host.service().clone();
        self.background.fetch_add(1, Ordering::AcqRel);
        let state = self.clone();
        tokio::spawn(async move {
            let execution = service.execute_recorded_as(id, request).await;
            drop(permit);
            then(&execution);
            state.background.fetch_sub(1, Ordering::AcqRel);
            state.background_done.notify_waiters();
        });
    }
}

/// Runs the server until a stop signal, then shuts it down gracefully. `on_bound` hears
/// where it listens once bound (the CLI prints it). `registry_file` is watched.
pub async fn run(
    config: ServeConfig,
    host: MonitoredHost,
    registry_file: PathBuf,
    on_bound: impl FnOnce(Bound),
    notices: Notices,
) -> Result<(), ServeError> {
    let http_addr = SocketAddr::new(config.bind, config.http_port);
    if security::needs_token(http_addr) && config.token.is_none() {
        return Err(ServeError::TokenRequired { addr: http_addr });
    }
    let silences = SilenceStore::open(&config.log_dir)?;
    if let Some(plugins) = host.plugins() {
        plugins.use_silences(silences.clone());
    }
    let bind = |addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })
    };
    let http = bind(http_addr).await?;
    let ws = match config.ws_port {
        Some(port) => Some(bind(SocketAddr::new(config.bind, port)).await?),
        None => None,
    };
    let bound = Bound {
        http: http.local_addr()?,
        ws: ws.as_ref().map(|l| l.local_addr()).transpose()?,
    };
    let ports: Vec<u16> = [Some(bound.http.port()), bound.ws.map(|a| a.port())]
        .into_iter()
        .flatten()
        .collect();
    let concurrency = host.service().max_concurrency();
    let state = Arc::new(ServerState {
        notices,
        access: Access::new(
            config.bind,
            &ports,
            config.token.clone(),
            &config.allow_hosts,
        ),
        admission: Arc::new(Semaphore::new(concurrency + config.queue)),
        gate: Arc::new(Gate::new(
            config.max_connections,
            config.max_connections_per_peer,
            config.header_read_timeout,
        )),
        registry: Mutex::new(RegistryStatus {
            text: std::fs::read(&registry_file).unwrap_or_default(),
            settling: None,
            last_error: None,
        }),
        registry_file,
        monitor: host.monitor().clone(),
        host,
        config,
        background: AtomicUsize::new(0),
        background_done: Notify::new(),
        ws_clients: AtomicUsize::new(0),
        stopping: watch::Sender::new(false),
        closing: watch::Sender::new(false),
        started: Instant::now(),
        counters: Counters::default(),
        answers: answers::Answers::default(),
        earlier: earlier::EarlierParts::default(),
        silences,
        schedules: Mutex::new(ScheduleBook::new()),
        schedules_wake: Arc::new(Notify::new()),
    });
    let router = api::router(state.clone());
    // The schedules restored (the slots missed while the server was down counted) before
    // the first request can ask for them.
    schedules::start(&state);
    let mut servers = tokio::task::JoinSet::new();
    for listener in [Some(http), ws].into_iter().flatten() {
        servers.spawn(connections::serve(
            listener,
            router.clone(),
            state.gate.clone(),
            state.stopping.subscribe(),
        ));
    }
    on_bound(bound);
    // A server runs for days: its RSS follows what it holds (see `crate::memory`).
    crate::memory::trim_every(crate::memory::TRIM_INTERVAL);
    spawn_registry_watch(state.clone());
    wait_for_stop_signal(state.clone()).await?;
    shutdown(&state, servers).await;
    Ok(())
}

/// Looks at the registry file every `registry_poll`, and reloads on SIGHUP.
fn spawn_registry_watch(state: Arc<ServerState>) {
    let weak = Arc::downgrade(&state);
    let every = state.config.registry_poll;
    tokio::spawn(async move {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let forced = tokio::select! {
                _ = tick.tick() => false,
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
            };
            let Some(state) = weak.upgrade() else { return };
            if state.is_stopping() {
                return;
            }
            match state.reload_registry(!forced) {
                Ok(Some(scripts)) => (state.notices)(ServeNotice::RegistryReloaded {
                    file: state.registry_file.clone(),
                    scripts,
                }),
                Ok(None) => {}
                Err(e) => (state.notices)(ServeNotice::RegistryRefused {
                    problems: e.to_string(),
                }),
            }
        }
    });
}

/// Resolves on the first SIGINT or SIGTERM; a second one is told to the notices' callback,
/// which ends the process at once.
async fn wait_for_stop_signal(state: Arc<ServerState>) -> Result<(), ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let watch = |kind, signal_name| {
        signal(kind).map_err(|source| ServeError::Signal {
            signal: signal_name,
            source,
        })
    };
    let mut int = watch(SignalKind::interrupt(), "SIGINT")?;
    let mut term = watch(SignalKind::terminate(), "SIGTERM")?;
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    let running = state.monitor.running().len();
    (state.notices)(ServeNotice::Stopping {
        running,
        grace: state.config.grace,
    });
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        (state.notices)(ServeNotice::SecondSignal);
    });
    Ok(())
}

/// Stop accepting, let executions finish (then end them), deliver and flush the
/// plugins, close the live feed.
async fn shutdown(state: &Arc<ServerState>, mut servers: tokio::task::JoinSet<()>) {
    state.stopping.send_replace(true);
    let deadline = tokio::time::Instant::now() + state.config.grace;
    let idle =
        || state.monitor.running().is_empty() && state.background.load(Ordering::Acquire) == 0;
    while !idle() && tokio::time::Instant::now() < deadline {
        tokio::select! {
            () = state.background_done.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    if !idle() {
        (state.notices)(ServeNotice::GraceOver {
            running: state.monitor.running().len(),
        });
        state.host.service().stop_running();
        // Each ends within the kill grace (SIGTERM, then SIGKILL) and its output drain.
        let hard = tokio::time::Instant::now() + Duration::from_secs(10);
        while !idle() && tokio::time::Instant::now() < hard {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // In-flight requests have their answers now; the listeners are closed.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    // Every plugin delivers what it was sent and flushes (the log is complete).
    let host_state = state.clone();
    let _ = tokio::task::spawn_blocking(move || host_state.host.shutdown()).await;
    state.closing.send_replace(true);
    let closed = tokio::time::Instant::now() + Duration::from_secs(2);
    while state.ws_clients.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < closed {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (state.notices)(ServeNotice::Stopped);
}
