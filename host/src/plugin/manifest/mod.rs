//! `plugin.toml`: what a plugin is, what it may touch, and how hard it may work.
//!
//! As with the registry, parsing is two steps: `toml` turns the text into a table (syntax
//! errors carry line and column), then the checker (`Checker::manifest`) checks every field and
//! collects every problem with its path, normalising as it goes: `${VAR}` and
//! `${VAR:-default}` are expanded, defaults filled in, paths made absolute. Unknown keys
//! are errors with a "did you mean": a misspelt `memory_mb` silently ignored is a plugin
//! with the wrong limit.

mod fields;
mod sections;
pub(in crate::plugin) mod vars;
mod wit;

pub use wit::{check_wit_version, WitVersion, WitVersionError};

use fields::Fields;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use toml::Table;

use crate::alerting::Routing;
use crate::config::{self, ConfigError};

/// The `metaclaude:monitor` WIT version this host implements.
/// The current version of the plugin contract (`wit/monitor.wit`).
pub const WIT_VERSION: &str = "0.4.0";
/// What a manifest without `wit` declares: the version the SDK's sink, exporter,
/// alert-rule and notifier worlds (and so the default set) are built against. Only the
/// `pusher` world needs 0.4.0.
pub const DEFAULT_WIT: &str = WitVersion::DEFAULT.as_str();

/// Which world a plugin's component exports, and so what the host calls on it (`kind` in
/// `plugin.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// Receives events in batches (`handle-batch`, `flush`).
    Sink,
    /// A sink that also renders its state on request (`render`; the server's `/metrics`).
    Exporter,
    /// Receives events and clock ticks and returns alerts; its thresholds can be changed
    /// while it runs.
    AlertRule,
    /// Receives alerts, no events, and delivers them (the `http` import).
    Notifier,
    /// A sink the host also ticks (`tick_ms`), sending what it keeps elsewhere through
    /// the `http` import (remote write, OTLP); WIT 0.4.0 and later.
    Pusher,
}

impl PluginKind {
    const NAMES: [&'static str; 5] = ["sink", "exporter", "alert-rule", "notifier", "pusher"];

    /// The name `plugin.toml` uses (`"alert-rule"`).
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Sink => "sink",
            PluginKind::Exporter => "exporter",
            PluginKind::AlertRule => "alert-rule",
            PluginKind::Notifier => "notifier",
            PluginKind::Pusher => "pusher",
        }
    }

    fn parse(s: &str) -> Option<PluginKind> {
        Some(match s {
            "sink" => PluginKind::Sink,
            "exporter" => PluginKind::Exporter,
            "alert-rule" => PluginKind::AlertRule,
            "notifier" => PluginKind::Notifier,
            "pusher" => PluginKind::Pusher,
            _ => return None,
        })
    }

    /// Whether plugins of this kind receive execution events.
    pub fn takes_events(self) -> bool {
        !matches!(self, PluginKind::Notifier)
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to an event when a plugin's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// The executor waits for room (default for sinks: nothing is lost).
    Block,
    /// The new event is dropped and counted (default for the others).
    DropNewest,
}

/// Which fields of an event's record a plugin is handed (`event_record`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventRecord {
    /// Every field of the plugin's WIT version (the outputs as `event_output` says).
    Full,
    /// What a plugin that counts executions reads (the SDK's `finished`): the kind, the
    /// times, the attempt, pid and retry delay; the result's script, specialist, success,
    /// exit code, times, retries, resource usage and error category. The other strings
    /// and lists are left empty (ids, session, correlation, user, signal, outputs,
    /// attempts, inputs, error texts): each one costs a call into the plugin to copy it.
    Figures,
}

/// What happens when a plugin traps, runs out of memory or overruns its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Start a fresh instance with backoff; quarantine after too many failures.
    Reload,
    /// Stop delivering to the plugin at the first failure.
    Disable,
}

/// How the plugin is loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Artifact {
    /// A WebAssembly component: sandboxed.
    Component(PathBuf),
    /// A shared library: trusted, unsandboxed (`trusted = true` is required).
    Native(PathBuf),
}

/// A directory granted to the plugin as a WASI preopen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirGrant {
    /// The host directory, absolute (a relative one is relative to where the host runs).
    pub host: PathBuf,
    /// Where the plugin sees it (default `/data`).
    pub guest: String,
    /// Whether it is mounted read-write (`mode = "rw"`); read-only otherwise.
    pub writable: bool,
    /// Create the host directory if it is missing.
    pub create: bool,
}

/// What a plugin may touch outside its sandbox, expanded (`[capabilities]`); all empty is
/// nothing at all.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Capabilities {
    /// Host directories mounted into the plugin.
    pub dirs: Vec<DirGrant>,
    /// `host:port` targets the plugin may send UDP datagrams to.
    pub udp: Vec<String>,
    /// `scheme://host[:port][/path]` patterns (`*` wildcards) for the `http` import.
    pub http: Vec<String>,
    /// The plugin's stderr also goes to the host's stderr, a line at a time, control
    /// characters removed (a console notifier); otherwise it is only kept for trap reports.
    pub stderr: bool,
}

/// What a manifest asks the operator for: each capability as the manifest writes it
/// (before `${VAR}` expansion) and as it expands here, the variables it expands, and the
/// ceilings it wants. A plugin starts only when its operator's grant covers all of it
/// (`plugin::grants`); nothing here is granted by being asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Requests {
    /// Every variable a `${VAR}` anywhere in the manifest names (config included).
    pub env: BTreeSet<String>,
    /// The directories of `capabilities.dirs`.
    pub dirs: Vec<DirRequest>,
    /// The targets of `capabilities.udp`.
    pub udp: Vec<Written>,
    /// The URL patterns of `capabilities.http`.
    pub http: Vec<Written>,
    /// `capabilities.stderr`: its stderr on the host's.
    pub stderr: bool,
    /// `limits.memory_mb`, MiB.
    pub memory_mb: u64,
    /// `limits.call_timeout_ms`, ms.
    pub call_timeout_ms: u64,
    /// The shared library of a native plugin (unsandboxed code).
    pub native: Option<PathBuf>,
}

/// A host directory a manifest asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirRequest {
    /// As the manifest writes it, e.g. `${METACLAUDE_LOG_DIR:-.claude/logs/executions}`.
    pub written: String,
    /// Expanded and made absolute.
    pub path: PathBuf,
    /// Whether it asks to write there (`mode = "rw"`).
    pub writable: bool,
}

/// A destination a manifest asks for: as written, and expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// As the manifest writes it, `${VAR}`s and all.
    pub written: String,
    /// Expanded with the operator's environment: what is checked and used.
    pub value: String,
}

/// The most any plugin may ask for, whatever it is granted: beyond these a manifest is
/// invalid. A grant sets each plugin's own ceiling below them.
pub const MAX_MEMORY_MB: u64 = 16 * 1024;
/// See [`MAX_MEMORY_MB`]: ten minutes a call.
pub const MAX_CALL_TIMEOUT_MS: u64 = 600_000;
/// See [`MAX_MEMORY_MB`]: a queue's slots are allocated up front (32 bytes each).
pub const MAX_QUEUE: u64 = 1_000_000;
/// See [`MAX_MEMORY_MB`].
pub const MAX_BATCH: u64 = 100_000;

/// How much a plugin may use and how events are batched for it (`[limits]`), defaults
/// filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    /// Linear memory the instance may grow to, MiB (default 64, at most [`MAX_MEMORY_MB`]).
    pub memory_mb: u64,
    /// Deadline of one call into the plugin, ms (default 2000, at most
    /// [`MAX_CALL_TIMEOUT_MS`]); an `http` exchange ends by 9/10 of it.
    pub call_timeout_ms: u64,
    /// Events the queue between the executor and the plugin holds (default 10 000, at most
    /// [`MAX_QUEUE`]).
    pub queue: usize,
    /// What a full queue does to a new event.
    pub on_full: OnFull,
    /// Events per call, at most (default 256, at most [`MAX_BATCH`]).
    pub batch_max: usize,
    /// MiB of events per call, at most (one event always goes, whatever its size): a batch
    /// of scripts' outputs, up to 1 MiB each, must fit in the plugin's memory. Default
    /// `memory_mb` / [`BATCH_SHARE_OF_MEMORY`]; a value given must be below `memory_mb`.
    pub batch_max_mb: u64,
    /// How long a batch waits after its first event for more, ms (default 50).
    pub batch_ms: u64,
    /// What a trap, an out-of-memory or a missed deadline leads to (default reload).
    pub failure_policy: FailurePolicy,
    /// Failures within `failure_window_s` that quarantine the plugin (default 5).
    pub max_failures: u32,
    /// The window `max_failures` counts over, seconds (default 60).
    pub failure_window_s: u64,
    /// Write a core dump beside the manifest when a call traps (default false).
    pub core_dump: bool,
}

/// Without `batch_max_mb`, a call carries at most this fraction of `memory_mb`: the
/// events are copied into the plugin's memory and the plugin makes its own copies while
/// it works (the log sink formats each line; a JSON plugin parses).
pub const BATCH_SHARE_OF_MEMORY: u64 = 8;

impl Limits {
    /// The byte budget of one call.
    pub fn batch_max_bytes(&self) -> usize {
        (self.batch_max_mb as usize).saturating_mul(1 << 20)
    }

    fn defaults(kind: PluginKind) -> Limits {
        Limits {
            memory_mb: 64,
            call_timeout_ms: 2000,
            queue: 10_000,
            on_full: if matches!(kind, PluginKind::Sink | PluginKind::Exporter) {
                OnFull::Block
            } else {
                OnFull::DropNewest
            },
            batch_max: 256,
            batch_max_mb: 64 / BATCH_SHARE_OF_MEMORY,
            batch_ms: 50,
            failure_policy: FailurePolicy::Reload,
            max_failures: 5,
            failure_window_s: 60,
            core_dump: false,
        }
    }
}

/// Acknowledged delivery (`[acknowledgements]`): the executor reports an execution as
/// finished only once every plugin with `enabled = true` has handled its `finished` event,
/// so that nothing reported is ever missing from what the plugin writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Acknowledgements {
    /// Whether executions wait for this plugin's word (default false; sinks and exporters
    /// only).
    pub enabled: bool,
    /// How long the executor waits for the plugin's answer before reporting the execution
    /// as not recorded.
    pub timeout_ms: u64,
    /// Also call the plugin's `flush` (for the log sink: to stable storage) before
    /// confirming, so a confirmed execution survives a power cut, not only a host crash.
    pub sync: bool,
}

impl Default for Acknowledgements {
    fn default() -> Self {
        Acknowledgements {
            enabled: false,
            timeout_ms: 10_000,
            sync: false,
        }
    }
}

/// Which events reach the plugin (all when empty).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Filter {
    /// Only events of these specialists' scripts (any when empty).
    pub specialists: Vec<String>,
    /// Only events of these script ids (any when empty).
    pub scripts: Vec<String>,
    /// Only events of these kinds, by their names (`finished`, ...; any when empty).
    pub kinds: Vec<String>,
    /// Only successes (`true`) or failures (`false`); both when `None`. Only events with
    /// an outcome pass it: `finished`, and `attempt_failed` as a failure.
    pub success: Option<bool>,
}

/// A validated, normalised manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    /// The `plugin.toml` it was read from.
    pub file: PathBuf,
    /// Letters, digits, `-` and `_`; unique among the plugins loaded: what grants, logs,
    /// metrics and messages call it.
    pub name: String,
    /// The plugin's own version, free text (`0.1.0`).
    pub version: String,
    /// Which world it exports.
    pub kind: PluginKind,
    /// Free text for people; `None` when not given.
    pub description: Option<String>,
    /// What to load: the component or, for a trusted plugin, the native library (its path
    /// in the plugin folder).
    pub artifact: Artifact,
    /// The `metaclaude:monitor` version it was built against, as declared (default
    /// [`WIT_VERSION`]); semver-compatible with one the host binds.
    pub wit: String,
    /// The `[config]` table, variables expanded, as JSON for `init`.
    pub config: serde_json::Value,
    /// What it may touch, as granted to the sandbox once admitted.
    pub capabilities: Capabilities,
    /// Its ceilings and batching.
    pub limits: Limits,
    /// Which events it receives.
    pub filter: Filter,
    /// Whether executions wait for it to store them.
    pub acknowledgements: Acknowledgements,
    /// Fill `event.json` with the host's JSON of each event.
    pub event_json: bool,
    /// Hand the plugin the script's stdout and stderr in the record (false: left empty;
    /// counting plugins need neither, and a megabyte of output is not copied for them).
    pub event_output: bool,
    /// Which of the record's fields it is handed: all, or only a counting plugin's.
    pub event_record: EventRecord,
    /// Load the plugin in a one-shot host (`metaclaude run`); false for a plugin whose
    /// state would die with the process before anyone reads it (a pull exporter,
    /// windowed alert rules).
    pub one_shot: bool,
    /// Alert rules and pushers: how often `tick` is called.
    pub tick_ms: u64,
    /// Pushers: at shutdown (the end of a one-shot run, a server stopping), how long the
    /// host keeps ticking the plugin while it reports items pending (the retries its
    /// receivers asked for), ms; 0 (the default): one flush and no more. At most its
    /// `limits.call_timeout_ms`: it holds the host no longer than one call may.
    pub shutdown_wait_ms: u64,
    /// Notifiers: how alerts are routed to it (the `[alerts]` table).
    pub alerts: Routing,
    /// What it asks the operator to grant (the capabilities above as written, the
    /// variables it expands, its ceilings).
    #[serde(skip)]
    pub requests: Requests,
}

/// Why a manifest cannot be used.
pub type ManifestError = ConfigError;

/// The keys each table may have (the JSON schema, `plugins/plugin.schema.json`, is
/// checked against these).
const TOP_KEYS: &[&str] = &[
    "name",
    "version",
    "kind",
    "description",
    "component",
    "native",
    "trusted",
    "wit",
    "config",
    "capabilities",
    "limits",
    "filter",
    "acknowledgements",
    "event_json",
    "event_output",
    "event_record",
    "one_shot",
    "tick_ms",
    "shutdown_wait_ms",
    "alerts",
];
const ACK_KEYS: &[&str] = &["enabled", "timeout_ms", "sync"];
const CAPABILITY_KEYS: &[&str] = &["dirs", "udp", "http", "stderr"];
const ALERT_KEYS: &[&str] = &[
    "group_by",
    "group_wait_s",
    "group_interval_s",
    "repeat_interval_s",
    "send_resolved",
    "min_severity",
];
const DIR_KEYS: &[&str] = &["host", "guest", "mode", "create"];
const LIMIT_KEYS: &[&str] = &[
    "memory_mb",
    "call_timeout_ms",
    "queue",
    "on_full",
    "batch_max",
    "batch_max_mb",
    "batch_ms",
    "failure_policy",
    "max_failures",
    "failure_window_s",
    "core_dump",
];
const FILTER_KEYS: &[&str] = &["specialists", "scripts", "kinds", "success"];
const LIFECYCLE_KINDS: &[&str] = &[
    "queued",
    "started",
    "attempt_failed",
    "retry_scheduled",
    "finished",
];

impl Manifest {
    /// Reads and validates `<dir>/plugin.toml`, looking variables up with `env`.
    pub fn load(
        dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Manifest, ManifestError> {
        Manifest::from_read(dir, std::fs::read(dir.join("plugin.toml")), env)
    }

    /// [`Manifest::load`] of `<dir>/plugin.toml` already read: its bytes, or why they
    /// could not be read (a loader that also fingerprints the file reads it once).
    pub fn from_read(
        dir: &Path,
        read: std::io::Result<Vec<u8>>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Manifest, ManifestError> {
        let file = dir.join("plugin.toml");
        let text = read
            .and_then(|bytes| {
                // As `fs::read_to_string` says it.
                String::from_utf8(bytes).map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "stream did not contain valid UTF-8",
                    )
                })
            })
            .map_err(|source| ConfigError::Io {
                what: "plugin manifest",
                file: file.clone(),
                source,
            })?;
        Manifest::parse(&text, &file, env)
    }

    /// Validates manifest text; `file` names it in errors and anchors the artifact's path.
    pub fn parse(
        text: &str,
        file: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Manifest, ManifestError> {
        let table: Table = config::parse_toml(text, file)?;
        let dir = file.parent().unwrap_or(Path::new("."));
        let mut c = Fields::new(env);
        let manifest = c.manifest(&table, file, dir);
        c.c.finish(manifest, file)
    }
}

/// Variables from the host's environment (the default for [`Manifest::load`]).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Grants as the user reads them, for `plugins list`.
pub fn describe_capabilities(c: &Capabilities) -> String {
    let mut parts: Vec<String> = c
        .dirs
        .iter()
        .map(|d| {
            format!(
                "dir {}={} ({})",
                d.guest,
                d.host.display(),
                if d.writable { "rw" } else { "ro" }
            )
        })
        .collect();
    parts.extend(c.udp.iter().map(|u| format!("udp {u}")));
    parts.extend(c.http.iter().map(|h| format!("http {h}")));
    if c.stderr {
        parts.push("stderr".into());
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// Parsed values of the `[config]` table, for tests and `plugins list`.
pub fn config_keys(m: &Manifest) -> BTreeMap<String, String> {
    m.config
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
