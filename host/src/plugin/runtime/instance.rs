//! One sandboxed plugin instance: its `Store` (WASI context built from the manifest's
//! grants, memory limit, per-call deadline), the host imports it may call, and typed calls
//! into the world it exports.
//!
//! A plugin sees only what this file gives it: the preopened directories of its grants,
//! UDP to its granted targets, the `http` import limited to its granted destinations,
//! logging, and the clock. No host environment, no other files, no TCP.

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use wasmtime::component::{HasSelf, InstancePre, Linker, ResourceTable};
use wasmtime::Store;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use metaclaude_formats::prometheus::Format;

use crate::model::{Alert, Threshold};
use crate::plugin::delivery::destinations::{DestinationReport, Destinations};
use crate::plugin::delivery::Delivery;
use crate::plugin::http::net;
use crate::plugin::http::outbound;
use crate::plugin::manifest::{Manifest, PluginKind, WitVersion};
use crate::plugin::runtime::bindings::{v0_1, v0_2, v0_3, v0_4};
use crate::plugin::runtime::convert;
use crate::plugin::runtime::engine::EPOCH_TICK;
use crate::plugin::runtime::file_append;
use crate::plugin::runtime::lifting::{self, LargeText, Rendered, Spare};
use crate::plugin::runtime::limiter::PluginLimiter;
use crate::plugin::runtime::stderr::StderrTail;

/// What every plugin's `Store` holds.
pub struct PluginState {
    name: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    limits: PluginLimiter,
    http_grants: Arc<Vec<outbound::Grant>>,
    /// Where the plugin's delivery reports go (WIT 0.4.0 `delivery.report`).
    destinations: Arc<Destinations>,
    /// When the call in progress started, and how long it may last
    /// (`limits.call_timeout_ms`): an `http` call ends before it does.
    call_started: std::time::Instant,
    call_timeout: std::time::Duration,
    /// The tail of the plugin's stderr, for trap reports.
    stderr: StderrTail,
    /// Log calls left in the current second (a flood is cut off, not forwarded).
    log_budget: u32,
    log_window: std::time::Instant,
    logs_suppressed: u64,
    /// What the plugin's allocator answers zero-sized requests, as far as seen: empty
    /// strings and lists of events go in without asking it once it is known.
    zero_sized: super::lowering::ZeroSized,
    /// The plugin's append streams, which its writes reach straight from its memory.
    append_streams: file_append::AppendStreams,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Log calls a plugin may make per second before further ones are dropped and counted.
const LOG_CALLS_PER_SECOND: u32 = 1000;

/// The host imports every version offers, whatever version's types they come in.
impl PluginState {
    fn log(&mut self, level: tracing::Level, message: String) {
        if self.log_window.elapsed() >= std::time::Duration::from_secs(1) {
            if self.logs_suppressed > 0 {
                tracing::warn!(plugin = %self.name, suppressed = self.logs_suppressed, "plugin log flood: messages dropped");
            }
            self.log_window = std::time::Instant::now();
            self.log_budget = LOG_CALLS_PER_SECOND;
            self.logs_suppressed = 0;
        }
        if self.log_budget == 0 {
            self.logs_suppressed += 1;
            return;
        }
        self.log_budget -= 1;
        let message: String = message.chars().take(4096).collect();
        let plugin = &*self.name;
        match level {
            tracing::Level::TRACE => tracing::trace!(plugin, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(plugin, "{message}"),
            tracing::Level::INFO => tracing::info!(plugin, "{message}"),
            tracing::Level::WARN => tracing::warn!(plugin, "{message}"),
            _ => tracing::error!(plugin, "{message}"),
        }
    }

    fn log_enabled(level: tracing::Level) -> bool {
        match level {
            tracing::Level::TRACE => tracing::enabled!(tracing::Level::TRACE),
            tracing::Level::DEBUG => tracing::enabled!(tracing::Level::DEBUG),
            tracing::Level::INFO => tracing::enabled!(tracing::Level::INFO),
            tracing::Level::WARN => tracing::enabled!(tracing::Level::WARN),
            _ => tracing::enabled!(tracing::Level::ERROR),
        }
    }

    fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<net::Response, String> {
        let deadline = net::Deadline::for_call(self.call_started, self.call_timeout);
        net::http_post(&self.http_grants, url, headers, body, deadline).map_err(|e| e.to_string())
    }
}

/// The `host` and `http` imports of each version, on the shared implementation above.
macro_rules! host_imports {
    ($v:ident) => {
        impl $v::host::Host for PluginState {
            fn log(&mut self, level: $v::host::Level, message: String) {
                PluginState::log(self, tracing_level!($v, level), message)
            }

            fn log_enabled(&mut self, level: $v::host::Level) -> bool {
                PluginState::log_enabled(tracing_level!($v, level))
            }

            fn now(&mut self) -> $v::types::Datetime {
                convert::$v::datetime(&chrono::Utc::now())
            }
        }

        impl $v::http::Host for PluginState {
            fn post(
                &mut self,
                url: String,
                headers: Vec<(String, String)>,
                body: Vec<u8>,
            ) -> Result<$v::http::Response, String> {
                PluginState::post(self, &url, &headers, &body).map(|r| $v::http::Response {
                    status: r.status,
                    headers: r.headers,
                    body: r.body,
                })
            }
        }
    };
}

macro_rules! tracing_level {
    ($v:ident, $level:expr) => {
        match $level {
            $v::host::Level::Trace => tracing::Level::TRACE,
            $v::host::Level::Debug => tracing::Level::DEBUG,
            $v::host::Level::Info => tracing::Level::INFO,
            $v::host::Level::Warn => tracing::Level::WARN,
            $v::host::Level::Error => tracing::Level::ERROR,
        }
    };
}

host_imports!(v0_1);
host_imports!(v0_2);
host_imports!(v0_3);
host_imports!(v0_4);

impl v0_4::delivery::Host for PluginState {
    fn report(&mut self, destinations: Vec<v0_4::delivery::DestinationReport>) {
        let at = |d: Option<v0_4::types::Datetime>| d.map(|d| convert::v0_4::from_datetime(&d));
        self.destinations.report(
            destinations
                .into_iter()
                .map(|d| DestinationReport {
                    destination: d.destination,
                    unit: d.unit,
                    pending: d.pending,
                    sent: d.sent,
                    dropped: d.dropped,
                    failed_requests: d.failed_requests,
                    retried_requests: d.retried_requests,
                    last_error: d.last_error,
                    last_error_at: at(d.last_error_at),
                    last_success_at: at(d.last_success_at),
                })
                .collect(),
        );
    }
}

/// A linker per plugin kind with WASI and the host imports of that world, in every
/// version (a component imports those of the version it was built against).
pub fn linker(
    engine: &wasmtime::Engine,
    kind: PluginKind,
) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    file_append::replace_append_via_stream(&mut linker, |s: &mut PluginState| {
        (&mut s.table, &mut s.append_streams)
    })?;
    v0_1::host::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
    v0_2::host::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
    v0_3::host::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
    v0_4::host::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
    if matches!(kind, PluginKind::Notifier | PluginKind::Pusher) {
        v0_4::http::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
        v0_4::delivery::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
    }
    if kind == PluginKind::Notifier {
        v0_1::http::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
        v0_2::http::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
        v0_3::http::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
    }
    Ok(linker)
}

/// The world a component exports, in the version it was built against, checked when it
/// is pre-linked.
pub enum Prepared {
    Sink1(v0_1::sink::SinkPre<PluginState>),
    Exporter1(v0_1::exporter::ExporterPre<PluginState>),
    AlertRule1(v0_1::alert_rule::AlertRulePre<PluginState>),
    Notifier1(v0_1::notifier::NotifierPre<PluginState>),
    Sink2(v0_2::sink::SinkPre<PluginState>),
    Exporter2(v0_2::exporter::ExporterPre<PluginState>),
    AlertRule2(v0_2::alert_rule::AlertRulePre<PluginState>),
    Notifier2(v0_2::notifier::NotifierPre<PluginState>),
    Sink3(v0_3::sink::SinkPre<PluginState>),
    Exporter3(v0_3::exporter::ExporterPre<PluginState>),
    AlertRule3(v0_3::alert_rule::AlertRulePre<PluginState>),
    Notifier3(v0_3::notifier::NotifierPre<PluginState>),
    Sink4(v0_4::sink::SinkPre<PluginState>),
    Exporter4(v0_4::exporter::ExporterPre<PluginState>),
    AlertRule4(v0_4::alert_rule::AlertRulePre<PluginState>),
    Notifier4(v0_4::notifier::NotifierPre<PluginState>),
    Pusher4(v0_4::pusher::PusherPre<PluginState>),
}

impl Prepared {
    /// Checks that the component exports its kind's world in `version` and pre-links it.
    pub fn new(
        kind: PluginKind,
        version: WitVersion,
        pre: InstancePre<PluginState>,
    ) -> wasmtime::Result<Prepared> {
        Ok(match (version, kind) {
            (WitVersion::V0_1, PluginKind::Sink) => Prepared::Sink1(v0_1::sink::SinkPre::new(pre)?),
            (WitVersion::V0_1, PluginKind::Exporter) => {
                Prepared::Exporter1(v0_1::exporter::ExporterPre::new(pre)?)
            }
            (WitVersion::V0_1, PluginKind::AlertRule) => {
                Prepared::AlertRule1(v0_1::alert_rule::AlertRulePre::new(pre)?)
            }
            (WitVersion::V0_1, PluginKind::Notifier) => {
                Prepared::Notifier1(v0_1::notifier::NotifierPre::new(pre)?)
            }
            (WitVersion::V0_2, PluginKind::Sink) => Prepared::Sink2(v0_2::sink::SinkPre::new(pre)?),
            (WitVersion::V0_2, PluginKind::Exporter) => {
                Prepared::Exporter2(v0_2::exporter::ExporterPre::new(pre)?)
            }
            (WitVersion::V0_2, PluginKind::AlertRule) => {
                Prepared::AlertRule2(v0_2::alert_rule::AlertRulePre::new(pre)?)
            }
            (WitVersion::V0_2, PluginKind::Notifier) => {
                Prepared::Notifier2(v0_2::notifier::NotifierPre::new(pre)?)
            }
            (WitVersion::V0_3, PluginKind::Sink) => Prepared::Sink3(v0_3::sink::SinkPre::new(pre)?),
            (WitVersion::V0_3, PluginKind::Exporter) => {
                Prepared::Exporter3(v0_3::exporter::ExporterPre::new(pre)?)
            }
            (WitVersion::V0_3, PluginKind::AlertRule) => {
                Prepared::AlertRule3(v0_3::alert_rule::AlertRulePre::new(pre)?)
            }
            (WitVersion::V0_3, PluginKind::Notifier) => {
                Prepared::Notifier3(v0_3::notifier::NotifierPre::new(pre)?)
            }
            (WitVersion::V0_4, PluginKind::Sink) => Prepared::Sink4(v0_4::sink::SinkPre::new(pre)?),
            (WitVersion::V0_4, PluginKind::Exporter) => {
                Prepared::Exporter4(v0_4::exporter::ExporterPre::new(pre)?)
            }
            (WitVersion::V0_4, PluginKind::AlertRule) => {
                Prepared::AlertRule4(v0_4::alert_rule::AlertRulePre::new(pre)?)
            }
            (WitVersion::V0_4, PluginKind::Notifier) => {
                Prepared::Notifier4(v0_4::notifier::NotifierPre::new(pre)?)
            }
            (WitVersion::V0_4, PluginKind::Pusher) => {
                Prepared::Pusher4(v0_4::pusher::PusherPre::new(pre)?)
            }
            (old, PluginKind::Pusher) => wasmtime::bail!(
                "the `pusher` world is new in metaclaude:monitor@0.4.0, and this component was built against @{}: rebuild it against @0.4.0",
                old.as_str()
            ),
        })
    }
}

/// The alerts a rule of version `$v` returned (`$call`'s result), in the host's model.
macro_rules! alerts {
    ($v:ident, $call:expr) => {
        $call.map(|alerts| {
            Ok(alerts
                .into_iter()
                .map(convert::$v::alert_from_wit)
                .collect())
        })
    };
}

/// A live instance with its store.
pub struct Instance {
    store: Store<PluginState>,
    exports: Exports,
    ticks_per_call: u64,
    /// Where to write a core dump when a call traps (`limits.core_dump`).
    core_dump_dir: Option<std::path::PathBuf>,
    /// The granted directories, guest path and host path, to explain the plugin's paths
    /// in its messages.
    dirs: Vec<(String, std::path::PathBuf)>,
    /// The buffer of the last text lifted out of the instance, back from its reader.
    spare: Arc<Spare>,
}

/// An error's chain of causes, joined, without the core dump and the wasm backtrace that
/// wasmtime attaches as context (kilobytes of instance and global listings that would
/// bury the cause: `out of memory ...`; the dump itself goes to a file with
/// `limits.core_dump`).
fn cause_without_dumps(error: &wasmtime::Error) -> String {
    let skip: Vec<String> = [
        error
            .downcast_ref::<wasmtime::WasmCoreDump>()
            .map(|d| d.to_string()),
        error
            .downcast_ref::<wasmtime::WasmBacktrace>()
            .map(|b| b.to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let causes: Vec<String> = error
        .chain()
        .map(|c| c.to_string())
        .filter(|c| !skip.contains(c))
        .collect();
    causes.join(": ")
}

/// Adds where each granted directory a plugin's message names really is: the plugin sees
/// `/logs`, the operator looks for the host folder behind it.
fn with_host_paths(mut message: String, dirs: &[(String, std::path::PathBuf)]) -> String {
    let named: Vec<String> = dirs
        .iter()
        .filter(|(guest, _)| {
            message.match_indices(guest.as_str()).any(|(at, _)| {
                let before = message[..at].chars().next_back();
                let after = message[at + guest.len()..].chars().next();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '/' || c == '_')
                    && !after.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
            })
        })
        .map(|(guest, host)| format!("{guest} is {}", host.display()))
        .collect();
    if !named.is_empty() {
        message.push_str(&format!(" (on the host, {})", named.join(", ")));
    }
    message
}

enum Exports {
    Sink1(v0_1::sink::Sink),
    Exporter1(v0_1::exporter::Exporter),
    AlertRule1(v0_1::alert_rule::AlertRule),
    Notifier1(v0_1::notifier::Notifier),
    Sink2(v0_2::sink::Sink),
    Exporter2(v0_2::exporter::Exporter),
    AlertRule2(v0_2::alert_rule::AlertRule),
    Notifier2(v0_2::notifier::Notifier),
    Sink3(v0_3::sink::Sink),
    Exporter3(v0_3::exporter::Exporter),
    AlertRule3(v0_3::alert_rule::AlertRule),
    Notifier3(v0_3::notifier::Notifier),
    Sink4(v0_4::sink::Sink),
    Exporter4(v0_4::exporter::Exporter),
    AlertRule4(v0_4::alert_rule::AlertRule),
    Notifier4(v0_4::notifier::Notifier),
    Pusher4(v0_4::pusher::Pusher),
}

/// Why a call into a plugin did not complete.
#[derive(Debug)]
pub enum CallError {
    /// The instance trapped (panic, out of memory, deadline, ...): it can never be
    /// called again and must be replaced.
    Trap(String),
    /// The plugin returned an error; the instance is fine.
    Refused(String),
}

/// Builds the WASI context from the manifest's grants.
fn wasi_context(m: &Manifest, stderr: StderrTail) -> Result<WasiCtx, String> {
    let mut b = WasiCtxBuilder::new();
    b.stderr(stderr);
    // Each plugin has a worker thread of its own that waits on every call anyway: its file
    // operations run right there, not as a round trip to a blocking pool's thread each
    // (two thread switches per host call, most of a one-shot run's plugin cost).
    b.allow_blocking_current_thread(true);
    for d in &m.capabilities.dirs {
        if d.create {
            // Private (0700), whatever the umask: the log directory holds every script's
            // inputs and outputs.
            crate::safe_fs::create_private_dir(&d.host).map_err(|e| {
                format!("capabilities.dirs: cannot create {}: {e}", d.host.display())
            })?;
        }
        let perms = if d.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        b.preopened_dir(&d.host, &d.guest, perms).map_err(|e| {
            format!(
                "capabilities.dirs: cannot open {} for the plugin: {e}",
                d.host.display()
            )
        })?;
    }
    b.allow_tcp(false);
    if m.capabilities.udp.is_empty() {
        b.allow_udp(false);
        b.allow_ip_name_lookup(false);
    } else {
        // The check runs on the address actually used, so a name the plugin resolves
        // itself cannot steer it anywhere else.
        let allowed: HashSet<SocketAddr> = m
            .capabilities
            .udp
            .iter()
            .filter_map(|t| t.to_socket_addrs().ok())
            .flatten()
            .collect();
        let allowed = Arc::new(allowed);
        b.allow_udp(true);
        // Name lookups only when a grant names a host: a lookup itself can carry data out
        // (to whoever serves the name), and a plugin granted addresses needs none.
        let names_a_host = m
            .capabilities
            .udp
            .iter()
            .any(|t| t.parse::<SocketAddr>().is_err());
        b.allow_ip_name_lookup(names_a_host);
        b.socket_addr_check(move |addr, usage| {
            let allowed = allowed.clone();
            Box::pin(async move {
                use wasmtime_wasi::sockets::SocketAddrUse;
                match usage {
                    SocketAddrUse::UdpBind => addr.ip().is_unspecified() || addr.ip().is_loopback(),
                    SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => allowed.contains(&addr),
                    _ => false,
                }
            })
        });
    }
    Ok(b.build())
}

impl Instance {
    /// A fresh instance: new store, new WASI context, `init` called with the config.
    pub fn start(
        engine: &wasmtime::Engine,
        prepared: &Prepared,
        manifest: &Manifest,
        name: Arc<str>,
        memory: Arc<std::sync::atomic::AtomicU64>,
        destinations: Arc<Destinations>,
    ) -> Result<Instance, CallError> {
        let stderr = if manifest.capabilities.stderr {
            StderrTail::echoing(64 * 1024)
        } else {
            StderrTail::new(64 * 1024)
        };
        let wasi = wasi_context(manifest, stderr.clone()).map_err(CallError::Refused)?;
        // The memory cap is on all the plugin's linear memories together; growing past
        // it traps (see `limiter`).
        let limits = PluginLimiter::new(manifest.limits.memory_mb, memory);
        let state = PluginState {
            name,
            wasi,
            table: ResourceTable::new(),
            limits,
            http_grants: Arc::new(net::grants(&manifest.capabilities.http)),
            destinations,
            call_started: std::time::Instant::now(),
            call_timeout: std::time::Duration::from_millis(manifest.limits.call_timeout_ms),
            stderr,
            log_budget: LOG_CALLS_PER_SECOND,
            log_window: std::time::Instant::now(),
            logs_suppressed: 0,
            zero_sized: Default::default(),
            append_streams: Default::default(),
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        let ticks_per_call =
            (manifest.limits.call_timeout_ms / EPOCH_TICK.as_millis() as u64).max(1) + 1;
        store.set_epoch_deadline(ticks_per_call);
        let exports = match prepared {
            Prepared::Sink1(p) => p.instantiate(&mut store).map(Exports::Sink1),
            Prepared::Exporter1(p) => p.instantiate(&mut store).map(Exports::Exporter1),
            Prepared::AlertRule1(p) => p.instantiate(&mut store).map(Exports::AlertRule1),
            Prepared::Notifier1(p) => p.instantiate(&mut store).map(Exports::Notifier1),
            Prepared::Sink2(p) => p.instantiate(&mut store).map(Exports::Sink2),
            Prepared::Exporter2(p) => p.instantiate(&mut store).map(Exports::Exporter2),
            Prepared::AlertRule2(p) => p.instantiate(&mut store).map(Exports::AlertRule2),
            Prepared::Notifier2(p) => p.instantiate(&mut store).map(Exports::Notifier2),
            Prepared::Sink3(p) => p.instantiate(&mut store).map(Exports::Sink3),
            Prepared::Exporter3(p) => p.instantiate(&mut store).map(Exports::Exporter3),
            Prepared::AlertRule3(p) => p.instantiate(&mut store).map(Exports::AlertRule3),
            Prepared::Notifier3(p) => p.instantiate(&mut store).map(Exports::Notifier3),
            Prepared::Sink4(p) => p.instantiate(&mut store).map(Exports::Sink4),
            Prepared::Exporter4(p) => p.instantiate(&mut store).map(Exports::Exporter4),
            Prepared::AlertRule4(p) => p.instantiate(&mut store).map(Exports::AlertRule4),
            Prepared::Notifier4(p) => p.instantiate(&mut store).map(Exports::Notifier4),
            Prepared::Pusher4(p) => p.instantiate(&mut store).map(Exports::Pusher4),
        };
        let exports =
            exports.map_err(|e| CallError::Trap(format!("instantiation failed: {e:#}")))?;
        let core_dump_dir = manifest
            .limits
            .core_dump
            .then(|| manifest.file.parent().map(|d| d.to_path_buf()))
            .flatten();
        let dirs = manifest
            .capabilities
            .dirs
            .iter()
            .map(|d| (d.guest.trim_end_matches('/').to_string(), d.host.clone()))
            .filter(|(guest, _)| !guest.is_empty())
            .collect();
        let mut instance = Instance {
            store,
            exports,
            ticks_per_call,
            core_dump_dir,
            dirs,
            spare: Arc::default(),
        };
        let config = manifest.config.to_string();
        instance.call(|store, exports| match exports {
            Exports::Sink1(e) => e.call_init(store, &config),
            Exports::Exporter1(e) => e.call_init(store, &config),
            Exports::AlertRule1(e) => e.call_init(store, &config),
            Exports::Notifier1(e) => e.call_init(store, &config),
            Exports::Sink2(e) => e.call_init(store, &config),
            Exports::Exporter2(e) => e.call_init(store, &config),
            Exports::AlertRule2(e) => e.call_init(store, &config),
            Exports::Notifier2(e) => e.call_init(store, &config),
            Exports::Sink3(e) => e.call_init(store, &config),
            Exports::Exporter3(e) => e.call_init(store, &config),
            Exports::AlertRule3(e) => e.call_init(store, &config),
            Exports::Notifier3(e) => e.call_init(store, &config),
            Exports::Sink4(e) => e.call_init(store, &config),
            Exports::Exporter4(e) => e.call_init(store, &config),
            Exports::AlertRule4(e) => e.call_init(store, &config),
            Exports::Notifier4(e) => e.call_init(store, &config),
            Exports::Pusher4(e) => e.call_init(store, &config),
        })?;
        Ok(instance)
    }

    /// Runs one call under a fresh deadline and sorts its failure.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&mut Store<PluginState>, &Exports) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, CallError> {
        self.store.set_epoch_deadline(self.ticks_per_call);
        self.store.data_mut().call_started = std::time::Instant::now();
        match f(&mut self.store, &self.exports) {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(message)) => Err(CallError::Refused(with_host_paths(message, &self.dirs))),
            Err(trap) => {
                let mut message = self.describe_trap(&trap);
                if let Some(dir) = self.core_dump_dir.clone() {
                    let file = dir.join(format!(
                        "core-{}.coredump",
                        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ")
                    ));
                    if self.write_core_dump(&trap, &file) {
                        message.push_str(&format!("; core dump written to {}", file.display()));
                    }
                }
                Err(CallError::Trap(with_host_paths(message, &self.dirs)))
            }
        }
    }

    fn describe_trap(&self, trap: &wasmtime::Error) -> String {
        let mut text = match trap.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => {
                "deadline exceeded (the call ran past limits.call_timeout_ms)".to_string()
            }
            Some(wasmtime::Trap::StackOverflow) => {
                "stack overflow (call stack exhausted)".to_string()
            }
            // Rust and C guests keep their stack in linear memory: overflowing it shows up
            // as an access below address zero.
            Some(wasmtime::Trap::MemoryOutOfBounds) => {
                "out of bounds memory access (a stack overflow in the plugin, or a memory bug)"
                    .to_string()
            }
            Some(t) => format!("trap: {t}"),
            None => cause_without_dumps(trap),
        };
        if text.contains("memory") && text.contains("limit") || text.contains("grow") {
            text.push_str(" (limits.memory_mb reached)");
        }
        let stderr = self.store.data().stderr.contents();
        if !stderr.is_empty() {
            let tail = String::from_utf8_lossy(&stderr[stderr.len().saturating_sub(2000)..]);
            text.push_str(&format!("; plugin stderr: {}", tail.trim()));
        }
        text
    }

    /// Writes the core dump a trap captured (if any) to `path`.
    fn write_core_dump(&mut self, trap_error: &wasmtime::Error, path: &std::path::Path) -> bool {
        match trap_error.downcast_ref::<wasmtime::WasmCoreDump>() {
            Some(dump) => {
                let bytes = dump.serialize(&mut self.store, "plugin");
                // A new private file: the dump holds the plugin's memory (events, config),
                // and a name taken (a link planted there, say) is not written through.
                crate::safe_fs::create_new(path, crate::safe_fs::PRIVATE_FILE_MODE, &bytes).is_ok()
            }
            None => false,
        }
    }

    /// Delivers a batch, converted to the records of the plugin's version in `shape` (the
    /// JSON beside them, the outputs in them, or only the figures, as the manifest asks).
    /// Returns the alerts an alert rule raised.
    pub fn handle_batch(
        &mut self,
        batch: &[Arc<Delivery>],
        shape: convert::Shape,
    ) -> Result<Vec<Alert>, CallError> {
        // Each event's record of the plugin's version, converted once for every plugin
        // receiving it, is lowered into this instance's memory from where it is shared,
        // borrowed (`EventRef`), with the delivery's JSON beside it for a plugin that
        // takes it; a plugin reading only the figures gets them from the event itself.
        // (The export is typed per call for references to the shared records: once a
        // batch, not once an event.)
        macro_rules! call {
            ($v:ident, $exports:expr, $store:expr, $returns:ty) => {{
                let handle_batch = $exports.func_handle_batch();
                let func = *handle_batch.func();
                let records: Vec<convert::$v::EventRef<'_>> = batch
                    .iter()
                    .map(|d| {
                        let json = shape.with_json().then(|| d.json());
                        convert::$v::EventRef::of(&d.records, &d.event, shape, json)
                    })
                    .collect();
                let store: &mut Store<PluginState> = $store;
                let mut answers = store.data().zero_sized;
                let returned = super::lowering::with_answers(&mut answers, || {
                    call_typed::<_, $returns>(func, &mut *store, (&records[..],))
                });
                store.data_mut().zero_sized = answers;
                returned
            }};
        }
        self.call(|store, exports| match exports {
            Exports::Sink1(e) => {
                call!(v0_1, e, store, Result<(), String>).map(|r| r.map(|()| Vec::new()))
            }
            Exports::Exporter1(e) => {
                call!(v0_1, e, store, Result<(), String>).map(|r| r.map(|()| Vec::new()))
            }
            Exports::AlertRule1(e) => alerts!(v0_1, call!(v0_1, e, store, Vec<v0_1::types::Alert>)),
            Exports::Sink2(e) => {
                call!(v0_2, e, store, Result<(), String>).map(|r| r.map(|()| Vec::new()))
            }
            Exports::Exporter2(e) => {
                call!(v0_2, e, store, Result<(), String>).map(|r| r.map(|()| Vec::new()))
            }
            Exports::AlertRule2(e) => alerts!(v0_2, call!(v0_2, e, store, Vec<v0_2::types::Alert>)),
            Exports::Sink3(e) => {
                call!(v0_3, e, store, Result<(), String>).map(|r| r.map(|()| Vec::new()))
            }
            Exports::Exporter3(e) => {
                call!(v0_3, e, store, Result<(), String>).map(|r| r.map(|()| Vec::new()))
            }
            Exports::AlertRule3(e) => alerts!(v0_3, call!(v0_3, e, store, Vec<v0_3::types::Alert>)),
            Exports::Sink4(e) => {
                call!(v0_4, e, store, Result<(), String>).map(|r| r.map(|()| Vec::new()))
            }
            Exports::Exporter4(e) => {
                call!(v0_4, e, store, Result<(), String>).map(|r| r.map(|()| Vec::new()))
            }
            Exports::AlertRule4(e) => alerts!(v0_4, call!(v0_4, e, store, Vec<v0_4::types::Alert>)),
            Exports::Pusher4(e) => {
                call!(v0_4, e, store, Result<(), String>).map(|r| r.map(|()| Vec::new()))
            }
            Exports::Notifier1(_)
            | Exports::Notifier2(_)
            | Exports::Notifier3(_)
            | Exports::Notifier4(_) => Ok(Ok(Vec::new())),
        })
    }

    pub fn tick(&mut self, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<Alert>, CallError> {
        self.call(|store, exports| match exports {
            Exports::AlertRule1(e) => {
                alerts!(v0_1, e.call_tick(store, convert::v0_1::datetime(&now)))
            }
            Exports::AlertRule2(e) => {
                alerts!(v0_2, e.call_tick(store, convert::v0_2::datetime(&now)))
            }
            Exports::AlertRule3(e) => {
                alerts!(v0_3, e.call_tick(store, convert::v0_3::datetime(&now)))
            }
            Exports::AlertRule4(e) => {
                alerts!(v0_4, e.call_tick(store, convert::v0_4::datetime(&now)))
            }
            Exports::Pusher4(e) => e
                .call_tick(store, convert::v0_4::datetime(&now))
                .map(|r| r.map(|()| Vec::new())),
            _ => Ok(Ok(Vec::new())),
        })
    }

    pub fn notify(&mut self, alerts: &[Alert]) -> Result<(), CallError> {
        self.call(|store, exports| match exports {
            Exports::Notifier1(e) => {
                let alerts: Vec<_> = alerts.iter().map(convert::v0_1::alert_to_wit).collect();
                e.call_notify(store, &alerts)
            }
            Exports::Notifier2(e) => {
                let alerts: Vec<_> = alerts.iter().map(convert::v0_2::alert_to_wit).collect();
                e.call_notify(store, &alerts)
            }
            Exports::Notifier3(e) => {
                let alerts: Vec<_> = alerts.iter().map(convert::v0_3::alert_to_wit).collect();
                e.call_notify(store, &alerts)
            }
            Exports::Notifier4(e) => {
                let alerts: Vec<_> = alerts.iter().map(convert::v0_4::alert_to_wit).collect();
                e.call_notify(store, &alerts)
            }
            _ => Ok(Ok(())),
        })
    }

    /// Changes one of an alert rule's thresholds; says what changed.
    pub fn set_threshold(&mut self, name: &str, value: f64) -> Result<String, CallError> {
        self.call(|store, exports| match exports {
            Exports::AlertRule2(e) => e.call_set_threshold(store, name, value),
            Exports::AlertRule3(e) => e.call_set_threshold(store, name, value),
            Exports::AlertRule4(e) => e.call_set_threshold(store, name, value),
            Exports::AlertRule1(_) => Ok(Err(OLD_RULE.into())),
            _ => Ok(Err("this plugin is not an alert rule".into())),
        })
    }

    /// An alert rule's thresholds in force.
    pub fn thresholds(&mut self) -> Result<Vec<Threshold>, CallError> {
        macro_rules! thresholds {
            ($list:expr) => {
                $list.map(|list| {
                    Ok(list
                        .into_iter()
                        .map(|t| Threshold {
                            name: t.name,
                            value: t.value,
                            description: t.description,
                        })
                        .collect())
                })
            };
        }
        self.call(|store, exports| match exports {
            Exports::AlertRule2(e) => thresholds!(e.call_thresholds(store)),
            Exports::AlertRule3(e) => thresholds!(e.call_thresholds(store)),
            Exports::AlertRule4(e) => thresholds!(e.call_thresholds(store)),
            Exports::AlertRule1(_) => Ok(Ok(Vec::new())),
            _ => Ok(Err("this plugin is not an alert rule".into())),
        })
    }

    pub fn flush(&mut self) -> Result<(), CallError> {
        self.call(|store, exports| match exports {
            Exports::Sink1(e) => e.call_flush(store),
            Exports::Exporter1(e) => e.call_flush(store),
            Exports::Sink2(e) => e.call_flush(store),
            Exports::Exporter2(e) => e.call_flush(store),
            Exports::Sink3(e) => e.call_flush(store),
            Exports::Exporter3(e) => e.call_flush(store),
            Exports::Sink4(e) => e.call_flush(store),
            Exports::Exporter4(e) => e.call_flush(store),
            Exports::Pusher4(e) => e.call_flush(store),
            _ => Ok(Ok(())),
        })
    }

    /// An exporter's exposition, asked in `format`. An exporter built against 0.3.0 is
    /// told the format; an older one renders what it renders (its texts say which: see
    /// `host_metrics::exporter_families`).
    pub fn render(&mut self, format: Format) -> Result<Rendered, CallError> {
        // The text is lifted as a `LargeText` (see `lifting`), into the instance's spare
        // buffer, through the export typed for it at each call, as `handle-batch` is.
        let spare = self.spare.clone();
        let text = lifting::with_spare(&spare, || self.render_text(format))?;
        Ok(Rendered::with_spare(text, spare))
    }

    fn render_text(&mut self, format: Format) -> Result<String, CallError> {
        macro_rules! render {
            ($exports:expr, $store:expr, $args:expr) => {{
                let func = *$exports.func_render().func();
                call_typed::<_, Result<LargeText, String>>(func, $store, $args)
                    .map(|r| r.map(|LargeText(text)| text))
            }};
        }
        self.call(|store, exports| match exports {
            Exports::Exporter1(e) => render!(e, store, ()),
            Exports::Exporter2(e) => render!(e, store, ()),
            Exports::Exporter3(e) => {
                let format = match format {
                    Format::OpenMetrics => v0_3::types::ExpositionFormat::Openmetrics,
                    Format::Text => v0_3::types::ExpositionFormat::PrometheusText,
                };
                render!(e, store, (format,))
            }
            Exports::Exporter4(e) => {
                let format = match format {
                    Format::OpenMetrics => v0_4::types::ExpositionFormat::Openmetrics,
                    Format::Text => v0_4::types::ExpositionFormat::PrometheusText,
                };
                render!(e, store, (format,))
            }
            _ => Ok(Err("this plugin is not an exporter".into())),
        })
    }
}

/// Why a rule built against 0.1.0 has no thresholds to change.
const OLD_RULE: &str = "this alert rule was built against metaclaude:monitor@0.1.0, which cannot change thresholds while it runs: rebuild it against @0.4.0 (set-threshold), or change the threshold in its manifest's [config]";

/// Calls `func`, an export taking `args` (a `handle-batch` its batch's records, a `render`
/// its format), typed for them and for its answer `R` (the component's type is checked
/// against theirs at each call), and returns that answer.
fn call_typed<P, R>(
    func: wasmtime::component::Func,
    store: &mut Store<PluginState>,
    args: P,
) -> wasmtime::Result<R>
where
    P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower + Send + Sync,
    R: wasmtime::component::ComponentType + wasmtime::component::Lift + Send + Sync + 'static,
{
    func.typed::<P, (R,)>(&*store)
        .and_then(|f| f.call(&mut *store, args))
        .map(|(r,)| r)
}

#[cfg(test)]
mod tests {
    use super::with_host_paths;

    #[test]
    fn messages_naming_a_granted_directory_say_where_it_is_on_the_host() {
        let dirs = vec![
            ("/logs".to_string(), "/var/log/metaclaude".into()),
            ("/out".to_string(), "/tmp/out".into()),
        ];
        assert_eq!(
            with_host_paths("cannot write /logs/executions.jsonl: EIO".into(), &dirs),
            "cannot write /logs/executions.jsonl: EIO (on the host, /logs is /var/log/metaclaude)"
        );
        assert_eq!(
            with_host_paths("`/out` and /logs: both".into(), &dirs),
            "`/out` and /logs: both (on the host, /logs is /var/log/metaclaude, /out is /tmp/out)"
        );
        // Not a path of the grant: left alone.
        for text in ["/output/x", "/var/logs/x", "no paths here"] {
            assert_eq!(with_host_paths(text.into(), &dirs), text);
        }
    }
}
