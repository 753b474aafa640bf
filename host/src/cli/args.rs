//! Every command-line flag of `metaclaude`, in one place (clap's derive API).

use std::path::PathBuf;

use chrono::{DateTime, Local, Utc};
use clap::{Parser, Subcommand};
use metaclaude::app::PluginSource;
use metaclaude::logs::{self, dates, stats::GroupBy, LogQuery};
use metaclaude::plugin::{resolve_grants, GrantSource};
use metaclaude::{ErrorCategory, ExecutorConfig};

#[derive(Parser)]
#[command(
    name = "metaclaude",
    version,
    about = "Run and measure scripts; stream every execution to plugins"
)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,
    #[command(subcommand)]
    pub command: Command,
}

/// The flags every subcommand takes.
#[derive(clap::Args, Debug)]
pub struct Globals {
    /// Host log level (error, warn, info, debug, trace); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "warn", value_name = "LEVEL")]
    pub log_level: String,
}

impl Cli {
    /// The command line, parsed. A `run` (how agents and cron call us, once per tool call)
    /// is first tried against a parser of `run` alone: building every subcommand's flags
    /// cost a one-shot run about two tenths of a millisecond, mostly in touching their
    /// code for the first time. Anything that parser does not take (`--help`, a mistake) goes
    /// to the whole parser, so what is printed is always the same.
    pub fn parse_args() -> Cli {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        Cli::run_only(&args).unwrap_or_else(|| Cli::parse_from(args))
    }

    /// `args` parsed by the parser of `run` alone: `None` when they are not a `run` or
    /// that parser does not take them.
    fn run_only(args: &[std::ffi::OsString]) -> Option<Cli> {
        use clap::{Args, FromArgMatches};
        if args.get(1).is_none_or(|a| a != "run") {
            return None;
        }
        let matches = Globals::augment_args(clap::Command::new("metaclaude"))
            .subcommand(RunArgs::augment_args(clap::Command::new("run")))
            .subcommand_required(true)
            .try_get_matches_from(args)
            .ok()?;
        let (_, run) = matches.subcommand()?;
        Some(Cli {
            globals: Globals::from_arg_matches(&matches).ok()?,
            command: Command::Run(RunArgs::from_arg_matches(run).ok()?),
        })
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Run one script from the registry and report how it went.
    Run(RunArgs),
    /// Run many scripts in one host: requests as JSON lines in, each result as a JSON line
    /// out the moment it is reported finished.
    Batch(BatchArgs),
    /// Run a long-running host: HTTP API, /metrics, a live feed over WebSocket; the
    /// registry and plugins are reloaded while it runs.
    Serve(ServeArgs),
    /// The web dashboard (the seed's dashboard.py): the same host as `serve`, with the
    /// page at / (every `serve` has it too); prints the address to open.
    #[command(after_help = "Examples:\n  \
        metaclaude dashboard --registry examples/registry/registry.json\n  \
        metaclaude dashboard --http-port 9090 --ws-port 9091\n\n\
        The page is served by the binary itself (no network needed) and is live over the\n\
        WebSocket feed; with --token-file, open the printed address (with ?token=) once.")]
    Dashboard(ServeArgs),
    /// The seed's metrics commands: the Prometheus exposition, a report over the last N
    /// minutes, a live summary; from a running server, else from the execution log.
    Metrics(MetricsArgs),
    /// Work with registry files.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// Query the execution log (the live file and every rotated .gz): listings, filters,
    /// statistics.
    Logs(LogsArgs),
    /// Inspect and validate plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Alerts: those active on a running server, the alert history beside the execution
    /// log, and the alert rules' thresholds (shown and changed on a running server).
    Alerts {
        #[command(subcommand)]
        command: AlertsCommand,
    },
    /// Scripts the server runs on their `run_schedule`.
    Schedule {
        #[command(subcommand)]
        command: ScheduleCommand,
    },
    /// The terminal dashboard: running executions, rates, top scripts, recent history,
    /// alerts, percentiles, plugins; live from a running server, else from the execution
    /// log as it is written. Interactive on a terminal, plain text otherwise (--text).
    DashboardTerminal(DashboardTerminalArgs),
}

/// Where a command finds a running server.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// The server to ask (default: http://127.0.0.1:8080).
    #[arg(long, value_name = "URL", env = "METACLAUDE_SERVER")]
    pub server: Option<String>,
    /// The token of the server (see `serve --token-file`).
    #[arg(long, env = "METACLAUDE_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// Every scheduled script of a running server: its cron and time zone, overlap
    /// policy, state (idle, running, queued), last run, next run and slots missed.
    List {
        #[command(flatten)]
        server: ServerArgs,
        /// JSON (the server's answer) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum AlertsCommand {
    /// The alerts in force on a running server, most severe first; when none answers,
    /// those whose last change in the alert history is `firing`.
    Active {
        #[command(flatten)]
        server: ServerArgs,
        /// The execution log's directory (the alert history is beside it).
        #[arg(long, env = "METACLAUDE_LOG_DIR", default_value = logs::DEFAULT_LOG_DIR)]
        log_dir: PathBuf,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Every change of every alert (firing, escalated, resolved), newest first.
    History {
        /// Only this type, e.g. error_rate_high.
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        /// Only this severity.
        #[arg(long, value_parser = ["warning", "critical"])]
        severity: Option<String>,
        /// Only alerts about this specialist.
        #[arg(long)]
        specialist: Option<String>,
        /// Only firing or only resolved.
        #[arg(long, value_parser = ["firing", "resolved"])]
        status: Option<String>,
        /// Only changes this recent: 90s, 15m, 1h, 2d, 1w.
        #[arg(long, value_name = "AGE")]
        since: Option<String>,
        /// At most this many (0: all).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// The execution log's directory (the alert history is beside it).
        #[arg(long, env = "METACLAUDE_LOG_DIR", default_value = logs::DEFAULT_LOG_DIR)]
        log_dir: PathBuf,
        /// JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Mute alerts for a while (a maintenance, a known incident): those every --matcher
    /// matches are still recorded (the history marks them silenced) but not notified
    /// until the silence ends. On a running server (--server, or one answering at the
    /// default address); with none answering, written to silences.json in --log-dir (a
    /// server started later reads it; one running on that directory within a minute).
    #[command(after_help = "Examples:\n  \
        metaclaude alerts silence -m script=backup --duration 2h --comment 'backup host maintenance'\n  \
        metaclaude alerts silence -m 'type=~\"error_.*\"' -m specialist=ops --until 2030-01-01T08:00:00Z --comment 'deploy'\n\n\
        Matchers: NAME=VALUE, NAME!=VALUE, NAME=~REGEX, NAME!~REGEX (the regex matches the whole\n\
        value); NAME is type (or alertname), severity, specialist, or any label (script, plugin).")]
    Silence {
        /// What to mute: NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX (repeatable;
        /// an alert must match all).
        #[arg(long = "matcher", short = 'm', value_name = "MATCHER", required = true)]
        matchers: Vec<String>,
        /// How long from its start: 90s, 15m, 2h, 1d, 1w.
        #[arg(
            long,
            value_name = "AGE",
            required_unless_present = "until",
            conflicts_with = "until"
        )]
        duration: Option<String>,
        /// When it ends (RFC 3339, e.g. 2030-01-01T08:00:00Z).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// When it starts (RFC 3339; default now).
        #[arg(long, value_name = "TIME")]
        starts: Option<String>,
        /// Who makes it (default: $USER, else $LOGNAME, else this user's login name).
        #[arg(long, env = "USER", value_name = "NAME")]
        author: Option<String>,
        /// Why: whoever wonders later reads it.
        #[arg(long, value_name = "TEXT")]
        comment: String,
        #[command(flatten)]
        server: ServerArgs,
        /// The execution log's directory (the silences are kept beside it), used when no
        /// server answers.
        #[arg(long, env = "METACLAUDE_LOG_DIR", default_value = logs::DEFAULT_LOG_DIR)]
        log_dir: PathBuf,
        /// Print the silence as JSON.
        #[arg(long)]
        json: bool,
    },
    /// End a silence now (a pending one never starts): what it muted and still fires is
    /// notified again. On a running server, else in --log-dir (as `silence`).
    Unsilence {
        /// The silence's id (`metaclaude alerts silences` lists them).
        id: String,
        #[command(flatten)]
        server: ServerArgs,
        /// The execution log's directory, used when no server answers.
        #[arg(long, env = "METACLAUDE_LOG_DIR", default_value = logs::DEFAULT_LOG_DIR)]
        log_dir: PathBuf,
    },
    /// The silences active or pending (with --all, those expired in the last 5 days too):
    /// of a running server, else of --log-dir.
    Silences {
        /// Also the expired ones.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        server: ServerArgs,
        /// The execution log's directory, used when no server answers.
        #[arg(long, env = "METACLAUDE_LOG_DIR", default_value = logs::DEFAULT_LOG_DIR)]
        log_dir: PathBuf,
        /// JSON (the API's silences) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Validate an inhibition rules file (serve --inhibit-rules): every problem with its
    /// field, or ok.
    CheckRules {
        /// The rules file (TOML).
        file: PathBuf,
    },
    /// The thresholds of the alert rules of a running server.
    Thresholds {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long)]
        json: bool,
    },
    /// Changes a threshold of the alert rules of a running server (the seed's
    /// set_alert_threshold), e.g. `set-threshold error_rate_percent 15`.
    SetThreshold {
        /// e.g. error_rate_percent, p95_duration_seconds, memory_peak_mb.
        name: String,
        value: f64,
        /// Only this alert rule (default: every rule that has the threshold).
        #[arg(long)]
        plugin: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand)]
pub enum PluginsCommand {
    /// Show every plugin: kind, version, what it requests against what it is granted,
    /// state and counters (WebAssembly plugins are loaded; native libraries only inspected).
    /// With --server, the plugins of a running server instead, with their live counters,
    /// last errors (a notifier's failed deliveries, naming the destination) and what each
    /// reports of its deliveries.
    List {
        #[command(flatten)]
        at: PluginsAt,
        /// Ask this running server (e.g. http://127.0.0.1:8080) for its plugins instead of
        /// loading the directory here.
        #[arg(long, value_name = "URL", conflicts_with_all = ["plugins", "grants"])]
        server: Option<String>,
        /// The token of the server (see `serve --token-file`).
        #[arg(long, env = "METACLAUDE_TOKEN_FILE", value_name = "FILE")]
        token_file: Option<PathBuf>,
    },
    /// Validate one plugin folder: manifest, component, exported world, WIT version, its
    /// grant, and init when granted (a native library is inspected, never loaded).
    Check {
        /// The plugin folder (holding plugin.toml).
        dir: PathBuf,
        /// Print the manifest as the host reads it (every default filled in, variables
        /// expanded, paths absolute) as JSON.
        #[arg(long)]
        normalized: bool,
        /// The operator's grants file (default: METACLAUDE_GRANTS, else grants.toml beside the folder's plugins directory).
        #[arg(long, value_name = "FILE")]
        grants: Option<PathBuf>,
    },
    /// Grant plugins what their manifests request, after showing it (asks for each,
    /// unless --yes). Written to the grants file, which plugins cannot write; a running
    /// host picks it up at its next look at the plugins directory.
    Grant {
        /// The plugins to grant, by name (or folder name).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        names: Vec<String>,
        /// Every plugin of the directory.
        #[arg(long)]
        all: bool,
        /// Grant without asking (what is granted is still shown).
        #[arg(long, short = 'y')]
        yes: bool,
        #[command(flatten)]
        at: PluginsAt,
    },
    /// Take back plugins' grants: they stop at a running host's next look, and do not
    /// start again until granted.
    Revoke {
        /// The plugins, by name.
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        at: PluginsAt,
    },
    /// Create a working, buildable plugin folder with its manifest.
    New {
        /// The plugin's name (lower-case letters, digits and -); also the folder's name.
        name: String,
        /// sink, exporter, alert-rule or notifier.
        #[arg(long, default_value = "sink")]
        kind: String,
        /// rust, python, js or c.
        #[arg(long, default_value = "rust")]
        lang: String,
        /// Where to create the folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

/// Which plugins directory, and which grants file.
#[derive(clap::Args)]
pub struct PluginsAt {
    /// The plugins directory (default: METACLAUDE_PLUGIN_DIR, else the set installed beside the executable).
    #[arg(long, value_name = "DIR")]
    pub plugins: Option<PathBuf>,
    /// The operator's grants file (default: METACLAUDE_GRANTS, else grants.toml beside the plugins directory).
    #[arg(long, value_name = "FILE")]
    pub grants: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum RegistryCommand {
    /// Validate a registry and report every problem with its field path.
    Check {
        /// The registry file.
        file: PathBuf,
        /// Print the registry as the host reads it (every default filled in, paths
        /// absolute) as JSON.
        #[arg(long)]
        normalized: bool,
    },
}

#[derive(clap::Args)]
pub struct BatchArgs {
    /// The requests, one JSON object per line: {"script_id": "...", "inputs": {...},
    /// "session_id": ..., "correlation_id": ..., "user": ...}; `-` reads standard input.
    #[arg(default_value = "-", value_name = "FILE")]
    pub requests: PathBuf,
    /// The registry file.
    #[arg(long, env = "METACLAUDE_REGISTRY", default_value = "registry.json")]
    pub registry: PathBuf,
    /// Executions running at once (default: four per core).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Write the host's own metrics (plugin states and counters, this batch's counters) to
    /// this file in the Prometheus text format, replaced atomically while the batch runs and
    /// once more at its end (for node_exporter's textfile collector, or any reader).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Seconds between two versions of --metrics-file while the batch runs.
    #[arg(long, value_name = "SECS", default_value_t = 10, requires = "metrics_file",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub metrics_interval: u64,
    #[command(flatten)]
    pub host: HostArgs,
}

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    metaclaude serve --registry examples/registry/registry.json\n  \
    curl -s localhost:8080/api/v1/executions --json '{\"script_id\": \"hello\"}'\n  \
    metaclaude serve --bind 0.0.0.0 --token-file ~/.config/metaclaude/token")]
pub struct ServeArgs {
    /// The registry file (watched: a change is validated, then put in force).
    #[arg(long, env = "METACLAUDE_REGISTRY", default_value = "registry.json")]
    pub registry: PathBuf,
    /// The address to listen on; any but a loopback address needs --token-file.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// The HTTP port (API, /metrics, /ws); 0 picks a free one.
    #[arg(long, default_value_t = 8080)]
    pub http_port: u16,
    /// The seed's separate WebSocket port (the same feed as /ws); 0 picks a free one.
    #[arg(long, default_value_t = 8081, conflicts_with = "no_ws_port")]
    pub ws_port: u16,
    /// Serve the live feed on the HTTP port only.
    #[arg(long)]
    pub no_ws_port: bool,
    /// Executions running at once (default: four per core).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Executions accepted beyond those running, waiting for a slot; past it, 429.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub queue: usize,
    /// A file holding the token every request must carry (Authorization: Bearer ...).
    #[arg(long, env = "METACLAUDE_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Another name the server answers to in the Host header (repeatable).
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
    /// The largest request body taken.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Requests answered at once: a connection holds a slot from the moment its request
    /// head is read until it has its answer (an idle one holds none); more wait up to
    /// 10 s, then 503.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,
    /// Connections one client address may have open at once, idle ones and live feeds
    /// included (more are answered 429 and closed). Behind a proxy every client has the
    /// proxy's address: raise it.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections_per_peer: usize,
    /// Live-feed clients at once (more are refused with 503).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_ws_clients: usize,
    /// Seconds one live-feed message may take to reach a client before it is cut off.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub ws_send_timeout: u64,
    /// Seconds running executions may go on after SIGINT/SIGTERM before they are ended.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub grace: u64,
    /// Finished executions kept in memory for the API and the live feed (older ones are
    /// read from the log).
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_recent: u64,
    /// The execution log's directory (history beyond what the server holds in memory;
    /// the alert history and the silences are kept beside it).
    #[arg(long, env = "METACLAUDE_LOG_DIR", default_value = logs::DEFAULT_LOG_DIR)]
    pub log_dir: PathBuf,
    /// Inhibition rules (TOML; `metaclaude alerts check-rules FILE` validates it): while
    /// a source alert fires, the target alerts sharing its `equal` labels are not notified.
    /// Without it, only the built-in rule: a critical alert inhibits the warnings of the
    /// same labels.
    #[arg(long, env = "METACLAUDE_INHIBIT_RULES", value_name = "FILE")]
    pub inhibit_rules: Option<PathBuf>,
    #[command(flatten)]
    pub host: HostArgs,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").args(["prometheus", "openmetrics", "report", "current"])))]
#[command(after_help = "Examples:\n  \
    metaclaude metrics --prometheus\n  \
    metaclaude metrics --openmetrics --log\n  \
    metaclaude metrics --report --period 60 --json\n  \
    metaclaude metrics --current\n\n\
    With no --server, a server answering on 127.0.0.1:8080 is asked; when none answers, the\n\
    figures are computed from the execution log through the same code (--log forces it).")]
pub struct MetricsArgs {
    /// The Prometheus text exposition, format 0.0.4 (what GET /metrics serves a scraper
    /// that does not ask for OpenMetrics; what promtool and node_exporter's textfile
    /// collector read).
    #[arg(long)]
    pub prometheus: bool,
    /// The same exposition in OpenMetrics 1.0.0 (what GET /metrics serves Prometheus,
    /// which asks for it: `_created` series, one `# EOF` at the end).
    #[arg(long)]
    pub openmetrics: bool,
    /// A report over the last --period minutes: totals, success rate, percentiles, top
    /// scripts and specialists, failures by category, retries, memory, CPU (the default).
    #[arg(long)]
    pub report: bool,
    /// A live one-screen summary, refreshed every --interval seconds, until interrupted.
    #[arg(long)]
    pub current: bool,
    /// Minutes the report covers (0: everything).
    #[arg(long, value_name = "MINUTES", default_value_t = 60)]
    pub period: u64,
    /// JSON instead of text (the shape of GET /api/v1/stats).
    #[arg(long)]
    pub json: bool,
    /// Scripts and specialists listed in the report.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub top: u64,
    /// Seconds between two refreshes of --current.
    #[arg(long, value_name = "SECS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
    /// The server to ask (default: http://127.0.0.1:8080 when it answers).
    #[arg(
        long,
        value_name = "URL",
        env = "METACLAUDE_SERVER",
        conflicts_with = "log"
    )]
    pub server: Option<String>,
    /// Compute from the execution log even when a server answers.
    #[arg(long)]
    pub log: bool,
    /// The token of the server (see `serve --token-file`).
    #[arg(long, env = "METACLAUDE_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The execution log's directory, for figures computed from it.
    #[arg(long, env = "METACLAUDE_LOG_DIR", default_value = logs::DEFAULT_LOG_DIR)]
    pub log_dir: PathBuf,
    /// The plugins directory whose exporters render --prometheus and --openmetrics from the log (default:
    /// METACLAUDE_PLUGIN_DIR, else the set installed beside the executable).
    #[arg(long, value_name = "DIR")]
    pub plugins: Option<PathBuf>,
    /// The operator's grants file for those plugins (default: METACLAUDE_GRANTS, else grants.toml beside the plugins directory).
    #[arg(long, value_name = "FILE")]
    pub grants: Option<PathBuf>,
}

/// How the host runs scripts and which plugins it loads.
#[derive(clap::Args, Debug)]
pub struct HostArgs {
    /// Do not use per-execution cgroups even where the machine offers them.
    #[arg(long)]
    pub no_cgroups: bool,
    /// The plugins directory (default: METACLAUDE_PLUGIN_DIR, else the set installed beside the executable).
    #[arg(long, value_name = "DIR", conflicts_with = "no_plugins")]
    pub plugins: Option<PathBuf>,
    /// Run without any plugin.
    #[arg(long)]
    pub no_plugins: bool,
    /// The operator's grants file (default: METACLAUDE_GRANTS, else grants.toml beside the plugins directory).
    #[arg(long, value_name = "FILE", conflicts_with = "no_plugins")]
    pub grants: Option<PathBuf>,
}

impl HostArgs {
    pub fn grant_source(&self) -> GrantSource {
        resolve_grants(self.grants.as_deref())
    }

    pub fn plugin_source(&self) -> PluginSource {
        match (&self.plugins, self.no_plugins) {
            (_, true) => PluginSource::Off,
            (Some(dir), false) => PluginSource::Dir(dir.clone()),
            (None, false) => PluginSource::Default,
        }
    }

    /// The executor's settings, with at most `concurrency` executions at once if given.
    pub fn executor(&self, concurrency: Option<usize>) -> ExecutorConfig {
        ExecutorConfig {
            use_cgroups: !self.no_cgroups,
            max_concurrency: concurrency.map(|n| n.max(1)),
            ..ExecutorConfig::default()
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The script's id in the registry.
    pub script_id: String,
    /// The registry file.
    #[arg(long, env = "METACLAUDE_REGISTRY", default_value = "registry.json")]
    pub registry: PathBuf,
    /// An input value, converted to the declared type (repeatable).
    #[arg(long = "input", short = 'i', value_name = "KEY=VALUE")]
    pub inputs: Vec<String>,
    /// Inputs as one JSON object; --input values override its keys.
    #[arg(long, value_name = "JSON")]
    pub inputs_json: Option<String>,
    #[arg(long)]
    pub session_id: Option<String>,
    #[arg(long)]
    pub correlation_id: Option<String>,
    #[arg(long)]
    pub user: Option<String>,
    /// The caller's W3C trace context (`00-<trace id>-<parent id>-<flags>`): the OTLP
    /// exporter's spans join that trace. Without --correlation-id it is the correlation id.
    #[arg(long, env = "METACLAUDE_TRACEPARENT", value_name = "TRACEPARENT")]
    pub traceparent: Option<String>,
    /// Print the full result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print every lifecycle event as a JSON line on stderr while the script runs.
    #[arg(long)]
    pub events: bool,
    #[command(flatten)]
    pub host: HostArgs,
}

/// `metaclaude logs`: list or summarise executions from the JSON-lines log.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  \
    metaclaude logs --failed --limit 20\n  \
    metaclaude logs --stats --start-date \"$(date -d '-1 hour' '+%Y-%m-%d %H:%M:%S')\"\n  \
    metaclaude logs --stats --since 1h\n  \
    metaclaude logs --json --specialist api-ui-designer > api_logs.json\n  \
    metaclaude logs --stats --group-by user")]
pub struct LogsArgs {
    /// The log directory.
    #[arg(long, env = "METACLAUDE_LOG_DIR", default_value = logs::DEFAULT_LOG_DIR)]
    pub log_dir: PathBuf,
    /// Only failed executions.
    #[arg(long)]
    pub failed: bool,
    /// Only this execution.
    #[arg(long, value_name = "ID")]
    pub execution_id: Option<String>,
    /// At most N executions (the newest), or with --stats the N newest are summarised.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// JSON lines on stdout (one full record per line; with --stats one report object).
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub specialist: Option<String>,
    /// Only this script id.
    #[arg(long)]
    pub script: Option<String>,
    /// Only this error category (TIMEOUT, VALIDATION, DEPENDENCY, EXECUTION, PERMISSION,
    /// RESOURCE, UNKNOWN; any case).
    #[arg(long, value_parser = parse_category)]
    pub category: Option<ErrorCategory>,
    #[arg(long)]
    pub user: Option<String>,
    /// Only this session id.
    #[arg(long)]
    pub session: Option<String>,
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// Executions finished at or after: YYYY-MM-DD, "YYYY-MM-DD HH:MM:SS" (local time) or RFC 3339.
    #[arg(long, value_parser = parse_start, conflicts_with = "since")]
    pub start_date: Option<DateTime<Utc>>,
    /// Executions finished up to (inclusive): a day includes the whole day.
    #[arg(long, value_parser = parse_end)]
    pub end_date: Option<DateTime<Utc>>,
    /// Executions of the last 90s, 15m, 1h, 2d, 1w.
    #[arg(long, value_name = "AGE", value_parser = dates::parse_since)]
    pub since: Option<chrono::Duration>,
    /// Statistics instead of a listing.
    #[arg(long)]
    pub stats: bool,
    /// Statistics per user, script, specialist, category, hour or day (implies --stats).
    #[arg(long, value_enum)]
    pub group_by: Option<GroupBy>,
    /// With --stats, read every file even where its summary answers: exact nearest-rank
    /// percentiles (from summaries they are within 1 %), at the cost of reading it all.
    #[arg(long)]
    pub no_summaries: bool,
}

impl LogsArgs {
    pub fn query(&self) -> LogQuery {
        LogQuery {
            log_dir: self.log_dir.clone(),
            failed: self.failed,
            execution_id: self.execution_id.clone(),
            limit: self.limit,
            json: self.json,
            specialist: self.specialist.clone(),
            script: self.script.clone(),
            category: self.category,
            user: self.user.clone(),
            session: self.session.clone(),
            correlation_id: self.correlation_id.clone(),
            start_date: self.start_date,
            end_date: self.end_date,
            since: self.since,
            stats: self.stats,
            group_by: self.group_by,
            no_summaries: self.no_summaries,
        }
    }
}

fn parse_category(s: &str) -> Result<ErrorCategory, metaclaude::model::UnknownCategory> {
    s.parse()
}

fn parse_start(s: &str) -> Result<DateTime<Utc>, dates::DateError> {
    dates::parse_instant(s, false, &Local)
}

fn parse_end(s: &str) -> Result<DateTime<Utc>, dates::DateError> {
    dates::parse_instant(s, true, &Local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<LogsArgs, clap::Error> {
        match Cli::try_parse_from(std::iter::once("metaclaude").chain(args.iter().copied()))?
            .command
        {
            Command::Logs(logs) => Ok(logs),
            _ => unreachable!("not a logs command"),
        }
    }

    #[test]
    fn log_flags_parse_as_the_seed_writes_them() {
        let logs = parse(&[
            "logs",
            "--stats",
            "--start-date",
            "2024-01-15 10:00:00",
            "--group-by",
            "user",
        ])
        .unwrap();
        assert!(logs.stats && logs.start_date.is_some());
        assert!(
            parse(&["logs", "--json", "--specialist", "api-ui-designer"])
                .unwrap()
                .json
        );
        let logs = parse(&["logs", "--failed", "--limit", "20", "--category", "timeout"]).unwrap();
        assert_eq!(logs.query().category, Some(ErrorCategory::Timeout));
        assert!(parse(&["logs", "--category", "nope"]).is_err());
        assert!(parse(&["logs", "--since", "1y"]).is_err());
        assert!(parse(&["logs", "--group-by", "colour"]).is_err());
        assert!(parse(&["logs", "--since", "1h", "--start-date", "2024-01-01"]).is_err());
    }

    /// What the parser of `run` alone takes, the whole parser takes the same way; what it
    /// does not take (help, mistakes, not a `run`) goes to the whole parser.
    #[test]
    fn a_run_parses_alone_as_the_whole_parser_parses_it() {
        let argv = |args: &[&str]| -> Vec<std::ffi::OsString> {
            std::iter::once("metaclaude")
                .chain(args.iter().copied())
                .map(Into::into)
                .collect()
        };
        for args in [
            &["run", "noop"][..],
            &["run", "noop", "--log-level", "debug", "--json"],
            &[
                "run",
                "validate_api_schema",
                "--input",
                "schema_file=api.json",
                "--session-id",
                "s1",
                "--correlation-id",
                "c1",
                "--user",
                "ann",
                "--registry",
                "r.json",
                "--no-cgroups",
                "--plugins",
                "p",
                "--grants",
                "g.toml",
                "--events",
            ],
            &["run", "noop", "--no-plugins", "--inputs-json", "{\"a\":1}"],
        ] {
            let alone = Cli::run_only(&argv(args)).unwrap_or_else(|| panic!("{args:?}"));
            let whole = Cli::try_parse_from(argv(args)).unwrap();
            let shown = |cli: Cli| match cli.command {
                Command::Run(run) => format!("{:?} {run:?}", cli.globals),
                _ => unreachable!("not a run"),
            };
            assert_eq!(shown(alone), shown(whole), "{args:?}");
        }
        for args in [
            &["run"][..],
            &["run", "--help"],
            &["run", "noop", "--bogus"],
            &["--log-level", "debug", "run", "noop"],
            &["logs", "--stats"],
            &[],
        ] {
            assert!(Cli::run_only(&argv(args)).is_none(), "{args:?}");
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Keys: q/Esc quit, ? help, arrows or j/k move, Enter details, / filter, \
s sort, r reverse, p pause, Tab next pane."
)]
pub struct DashboardTerminalArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Follow the execution log instead of asking a server.
    #[arg(long, conflicts_with = "server")]
    pub log: bool,
    /// The execution log's directory, followed when no server answers.
    #[arg(long, env = "METACLAUDE_LOG_DIR", default_value = logs::DEFAULT_LOG_DIR)]
    pub log_dir: PathBuf,
    /// Plain-text snapshots, one block per --interval, no escape codes (the default when
    /// standard output is not a terminal).
    #[arg(long)]
    pub text: bool,
    /// Print one plain-text snapshot and exit.
    #[arg(long)]
    pub once: bool,
    /// Seconds between two text snapshots (and the figures' refresh from a server).
    #[arg(long, value_name = "SECS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
}
