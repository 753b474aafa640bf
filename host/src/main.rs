//! The `metaclaude` command: parses arguments and calls the library. Nothing else lives here.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use metaclaude::batch::MetricsFile;
use metaclaude::model::{ExecutionEvent, ExecutionResult};
use metaclaude::plugin::engine::{LoadSource, PluginEngine};
use metaclaude::plugin::{resolve_plugins_dir, PluginHost};
use metaclaude::scaffold;
use metaclaude::{
    EventSink, ExecutionRequest, ExecutorConfig, Recording, Registry, ToolExecutionService,
};

/// Exit status for usage and configuration errors (clap uses it too).
const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "metaclaude",
    version,
    about = "Run and measure scripts; stream every execution to plugins"
)]
struct Cli {
    /// Host log level (error, warn, info, debug, trace); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "warn", value_name = "LEVEL")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one script from the registry and report how it went.
    Run(RunArgs),
    /// Run many scripts in one host: requests as JSON lines in, each result as a JSON line
    /// out the moment it is reported finished.
    Batch(BatchArgs),
    /// Work with registry files.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// Query the execution log (the live file and every rotated .gz): listings, filters,
    /// statistics.
    Logs(metaclaude::logs::LogsArgs),
    /// Inspect and validate plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Load every plugin and show its kind, version, capabilities, state and counters.
    List {
        /// The plugins directory (default: METACLAUDE_PLUGIN_DIR, else the set installed beside the executable).
        #[arg(long, value_name = "DIR")]
        plugins: Option<PathBuf>,
    },
    /// Validate one plugin folder: manifest, component, exported world, WIT version, init.
    Check {
        /// The plugin folder (holding plugin.toml).
        dir: PathBuf,
    },
    /// Create a working, buildable plugin folder with its manifest.
    New {
        /// The plugin's name (lower-case letters, digits and -); also the folder's name.
        name: String,
        /// sink, exporter, alert-rule or notifier.
        #[arg(long, default_value = "sink")]
        kind: String,
        /// rust, python or js.
        #[arg(long, default_value = "rust")]
        lang: String,
        /// Where to create the folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Validate a registry and report every problem with its field path.
    Check {
        /// The registry file.
        file: PathBuf,
    },
}

#[derive(clap::Args)]
struct BatchArgs {
    /// The requests, one JSON object per line: {"script_id": "...", "inputs": {...},
    /// "session_id": ..., "correlation_id": ..., "user": ...}; `-` reads standard input.
    #[arg(default_value = "-", value_name = "FILE")]
    requests: PathBuf,
    /// The registry file.
    #[arg(long, env = "METACLAUDE_REGISTRY", default_value = "registry.json")]
    registry: PathBuf,
    /// Executions running at once (default: four per core).
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// Write the host's own metrics (plugin states and counters, this batch's counters) to
    /// this file in the Prometheus text format, replaced atomically while the batch runs and
    /// once more at its end (for node_exporter's textfile collector, or any reader).
    #[arg(long, value_name = "FILE")]
    metrics_file: Option<PathBuf>,
    /// Seconds between two versions of --metrics-file while the batch runs.
    #[arg(long, value_name = "SECS", default_value_t = 10, requires = "metrics_file",
          value_parser = clap::value_parser!(u64).range(1..))]
    metrics_interval: u64,
    #[command(flatten)]
    host: HostArgs,
}

/// How the host runs scripts and which plugins it loads.
#[derive(clap::Args)]
struct HostArgs {
    /// Do not use per-execution cgroups even where the machine offers them.
    #[arg(long)]
    no_cgroups: bool,
    /// The plugins directory (default: METACLAUDE_PLUGIN_DIR, else the set installed beside the executable).
    #[arg(long, value_name = "DIR", conflicts_with = "no_plugins")]
    plugins: Option<PathBuf>,
    /// Run without any plugin.
    #[arg(long)]
    no_plugins: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The script's id in the registry.
    script_id: String,
    /// The registry file.
    #[arg(long, env = "METACLAUDE_REGISTRY", default_value = "registry.json")]
    registry: PathBuf,
    /// An input value, converted to the declared type (repeatable).
    #[arg(long = "input", short = 'i', value_name = "KEY=VALUE")]
    inputs: Vec<String>,
    /// Inputs as one JSON object; --input values override its keys.
    #[arg(long, value_name = "JSON")]
    inputs_json: Option<String>,
    #[arg(long)]
    session_id: Option<String>,
    #[arg(long)]
    correlation_id: Option<String>,
    #[arg(long)]
    user: Option<String>,
    /// Print the full result as JSON.
    #[arg(long)]
    json: bool,
    /// Print every lifecycle event as a JSON line on stderr while the script runs.
    #[arg(long)]
    events: bool,
    #[command(flatten)]
    host: HostArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log_level);
    let outcome = match cli.command {
        Command::Run(args) => run(args),
        Command::Batch(args) => batch(args),
        Command::Registry {
            command: RegistryCommand::Check { file },
        } => registry_check(&file),
        Command::Logs(args) => metaclaude::logs::run(&args),
        Command::Plugins {
            command: PluginsCommand::List { plugins },
        } => plugins_list(plugins.as_deref()),
        Command::Plugins {
            command: PluginsCommand::Check { dir },
        } => plugins_check(&dir),
        Command::Plugins {
            command:
                PluginsCommand::New {
                    name,
                    kind,
                    lang,
                    dir,
                },
        } => plugins_new(&name, &kind, &lang, &dir),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in a file or a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn registry_check(file: &PathBuf) -> anyhow::Result<ExitCode> {
    match Registry::load(file) {
        Ok(registry) => {
            println!(
                "{}: ok, {} script{}",
                file.display(),
                registry.scripts.len(),
                if registry.scripts.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// Prints lifecycle events as JSON lines on stderr.
struct StderrEvents(Mutex<()>);

impl EventSink for StderrEvents {
    fn emit(&self, event: &ExecutionEvent) {
        let _guard = self.0.lock();
        if let Ok(line) = serde_json::to_string(event) {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }
}

fn parse_inputs(args: &RunArgs) -> anyhow::Result<BTreeMap<String, serde_json::Value>> {
    let mut inputs = BTreeMap::new();
    if let Some(json) = &args.inputs_json {
        let value: serde_json::Value =
            serde_json::from_str(json).context("--inputs-json is not valid JSON")?;
        let serde_json::Value::Object(map) = value else {
            bail!("--inputs-json must be a JSON object such as {{\"name\": \"value\"}}");
        };
        inputs.extend(map);
    }
    for pair in &args.inputs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("--input {pair:?}: expected KEY=VALUE");
        };
        inputs.insert(
            key.to_string(),
            serde_json::Value::String(value.to_string()),
        );
    }
    Ok(inputs)
}

/// Exit status when an execution finished but an acknowledging sink did not confirm
/// storing it.
const EXIT_NOT_RECORDED: u8 = 3;

/// The registry, or its problems on stderr.
fn load_registry(file: &Path) -> Option<Registry> {
    match Registry::load(file) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "hint: check it with `metaclaude registry check {}`",
                file.display()
            );
            None
        }
    }
}

fn async_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn batch(args: BatchArgs) -> anyhow::Result<ExitCode> {
    let Some(registry) = load_registry(&args.registry) else {
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let source = args.requests.display().to_string();
    let input: Box<dyn std::io::BufRead + Send> = if source == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(&args.requests)
            .with_context(|| format!("cannot open the requests file {source}"))?;
        Box::new(std::io::BufReader::new(file))
    };
    let config = ExecutorConfig {
        use_cgroups: !args.host.no_cgroups,
        ..ExecutorConfig::default()
    };
    let concurrency = args.concurrency.unwrap_or(config.max_concurrency);
    let config = ExecutorConfig {
        max_concurrency: concurrency.max(1),
        ..config
    };
    let runtime = async_runtime()?;
    let plugins = load_watched_plugins(&args.host)?;
    let mut metrics = args.metrics_file.map(|path| {
        MetricsFile::new(
            path,
            Duration::from_secs(args.metrics_interval),
            plugins.clone(),
        )
    });
    let summary = runtime.block_on(async {
        let mut service = ToolExecutionService::new(registry, config);
        if let Some(p) = &plugins {
            service.add_sink(p.clone());
        }
        metaclaude::batch::run_batch(
            Arc::new(service),
            input,
            &source,
            concurrency,
            metrics.as_mut(),
            std::io::stdout().lock(),
            std::io::stderr(),
        )
        .await
    });
    if let Some(p) = &plugins {
        p.shutdown();
    }
    // The final figures: every plugin has delivered and flushed what it was sent.
    if let (Some(m), Ok(summary)) = (&mut metrics, &summary) {
        if let Some(warning) = m.update(summary, false) {
            eprintln!("{warning}");
        }
    }
    let summary = summary.context("writing the results")?;
    eprintln!(
        "metaclaude: {} succeeded, {} failed{}{}{}",
        summary.succeeded,
        summary.failed,
        if summary.bad_lines > 0 {
            format!(", {} bad request line(s)", summary.bad_lines)
        } else {
            String::new()
        },
        if summary.unrecorded > 0 {
            format!(", {} not recorded", summary.unrecorded)
        } else {
            String::new()
        },
        if summary.interrupted {
            " (interrupted)"
        } else {
            ""
        },
    );
    Ok(if summary.unrecorded > 0 {
        ExitCode::from(EXIT_NOT_RECORDED)
    } else if summary.bad_lines > 0 {
        ExitCode::from(EXIT_USAGE)
    } else if summary.failed > 0 || summary.interrupted {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn load_host_plugins(args: &HostArgs) -> anyhow::Result<Option<Arc<PluginHost>>> {
    if args.no_plugins {
        Ok(None)
    } else {
        load_plugins(args.plugins.as_deref())
    }
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let Some(registry) = load_registry(&args.registry) else {
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let request = ExecutionRequest {
        script_id: args.script_id.clone(),
        inputs: parse_inputs(&args)?,
        session_id: args.session_id.clone(),
        correlation_id: args.correlation_id.clone(),
        user: args.user.clone(),
    };
    let config = ExecutorConfig {
        use_cgroups: !args.host.no_cgroups,
        ..ExecutorConfig::default()
    };
    let runtime = async_runtime()?;
    let plugins = load_host_plugins(&args.host)?;
    let execution = runtime.block_on(async {
        let mut service = ToolExecutionService::new(registry, config);
        tracing::debug!(measurement = %service.measurement_description());
        if args.events {
            service.add_sink(Arc::new(StderrEvents(Mutex::new(()))));
        }
        if let Some(p) = &plugins {
            service.add_sink(p.clone());
        }
        service.execute_recorded(request).await
    });
    if let Some(p) = &plugins {
        // Everything the plugins were sent is delivered and flushed before we exit.
        p.shutdown();
    }
    let result = execution.result;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_summary(&result);
    }
    if let Recording::Failed(reasons) = execution.recording {
        eprintln!(
            "error: execution {} finished but is not recorded: {}",
            result.execution_id,
            reasons.join("; ")
        );
        return Ok(ExitCode::from(EXIT_NOT_RECORDED));
    }
    Ok(if result.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Loads the plugins directory, if there is one; a plugin that fails to load is reported
/// on stderr and left out, the others run.
fn load_plugins(flag: Option<&Path>) -> anyhow::Result<Option<Arc<PluginHost>>> {
    Ok(load_plugins_dir(flag)?.and_then(|(host, _)| (!host.is_empty()).then_some(host)))
}

/// [`load_plugins`], also when no plugin loaded, with the directory they came from.
fn load_plugins_dir(flag: Option<&Path>) -> anyhow::Result<Option<(Arc<PluginHost>, PathBuf)>> {
    let Some(dir) = resolve_plugins_dir(flag) else {
        return Ok(None);
    };
    let mut host = PluginHost::new(PluginEngine::default_cache_dir())?;
    for e in host.load_dir(&dir)? {
        eprintln!("warning: {e}");
    }
    Ok(Some((Arc::new(host), dir)))
}

/// How often a long-running host (`batch`) looks for added, changed or removed plugin
/// folders: a stat of each folder's files, cheap enough to do often.
const PLUGIN_POLL: Duration = Duration::from_secs(2);

/// The plugins of a long-running host: loaded like `run`'s, then the directory is
/// watched, so that a plugin folder added, changed or removed while it runs takes effect
/// without a restart (the other plugins lose nothing meanwhile).
fn load_watched_plugins(args: &HostArgs) -> anyhow::Result<Option<Arc<PluginHost>>> {
    if args.no_plugins {
        return Ok(None);
    }
    let Some((host, dir)) = load_plugins_dir(args.plugins.as_deref())? else {
        return Ok(None);
    };
    host.watch(dir, PLUGIN_POLL, |report| {
        for (what, names) in [
            ("added", &report.added),
            ("reloaded", &report.changed),
            ("removed", &report.removed),
        ] {
            for name in names {
                eprintln!("metaclaude: plugin {name} {what}");
            }
        }
        for e in &report.errors {
            eprintln!("warning: {e}");
        }
    })
    .context("cannot start watching the plugins directory")?;
    Ok(Some(host))
}

fn plugins_list(flag: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Some(dir) = resolve_plugins_dir(flag) else {
        println!("no plugins directory: pass --plugins DIR or set METACLAUDE_PLUGIN_DIR");
        return Ok(ExitCode::SUCCESS);
    };
    let mut host = PluginHost::new(PluginEngine::default_cache_dir())?;
    let errors = host.load_dir(&dir)?;
    println!("plugins in {}:", dir.display());
    println!(
        "{:<20} {:<10} {:<9} {:<12} {:>8} {:>9} {:>7} {:>8} {:>8}  LOADED",
        "NAME",
        "KIND",
        "VERSION",
        "STATE",
        "QUEUED",
        "DELIVERED",
        "DROPPED",
        "FAILURES",
        "RESTARTS"
    );
    for p in host.list() {
        println!(
            "{:<20} {:<10} {:<9} {:<12} {:>8} {:>9} {:>7} {:>8} {:>8}  {} in {} ms",
            p.name,
            p.kind.as_str(),
            p.version,
            p.health.describe(),
            p.queued,
            p.delivered,
            p.dropped,
            p.failures,
            p.restarts,
            match p.load {
                LoadSource::Cache => "from cache",
                LoadSource::Compiled => "compiled",
            },
            p.load_time.as_millis()
        );
        println!(
            "  folder: {}{}",
            p.folder.display(),
            if p.sandboxed {
                ""
            } else {
                "  (TRUSTED native plugin: unsandboxed)"
            }
        );
        println!("  capabilities: {}", p.capabilities);
        if let Some(e) = &p.last_error {
            println!("  last error: {e}");
        }
    }
    for e in &errors {
        println!("FAILED TO LOAD: {e}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn plugins_check(dir: &Path) -> anyhow::Result<ExitCode> {
    let mut host = PluginHost::new(PluginEngine::default_cache_dir())?;
    match host.load_plugin(dir) {
        Ok(()) => {
            let p = &host.list()[0];
            let what = if p.sandboxed {
                format!(
                    "exports the `{}` world of metaclaude:monitor@{}",
                    p.kind.as_str(),
                    metaclaude::plugin::manifest::WIT_VERSION
                )
            } else {
                "a TRUSTED native library (unsandboxed), native ABI v1".to_string()
            };
            println!(
                "{}: ok: plugin {} {} ({}), {what}, init accepted its config",
                dir.join("plugin.toml").display(),
                p.name,
                p.version,
                p.kind.as_str(),
            );
            println!("  capabilities: {}", p.capabilities);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
    }
}

fn plugins_new(name: &str, kind: &str, lang: &str, parent: &Path) -> anyhow::Result<ExitCode> {
    let kind = scaffold::parse_kind(kind).map_err(anyhow::Error::msg)?;
    let lang: scaffold::Lang = lang.parse().map_err(anyhow::Error::msg)?;
    let made = scaffold::create(parent, name, kind, lang).map_err(anyhow::Error::msg)?;
    println!(
        "created {} plugin `{name}` in {}:",
        kind.as_str(),
        made.dir.display()
    );
    for f in &made.files {
        println!("  {}", f.display());
    }
    println!("build it:   cd {} && {}", made.dir.display(), made.build);
    println!(
        "check it:   metaclaude plugins check {}",
        made.dir.display()
    );
    println!("use it:     copy the folder into your plugins directory, or run with --plugins <its parent>");
    Ok(ExitCode::SUCCESS)
}

fn print_summary(r: &ExecutionResult) {
    let u = &r.resource_usage;
    let attempts = r.attempts.len();
    let exit = match (&r.exit_code, &r.signal) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by {s}"),
        (None, None) => "not run".into(),
    };
    let mut out = String::new();
    if r.success {
        out += &format!(
            "{}: success ({exit}) in {:.3}s",
            r.script_id, u.wall_time_seconds
        );
    } else if let Some(e) = &r.error_details {
        out += &format!("{}: FAILED [{}] {}", r.script_id, e.category, e.message);
        out += &format!("\n  {exit}");
    }
    out += &format!(
        "\n  execution {}, {attempts} attempt{}, {} retr{}",
        r.execution_id,
        if attempts == 1 { "" } else { "s" },
        r.retries,
        if r.retries == 1 { "y" } else { "ies" }
    );
    if attempts > 0 {
        out += &format!(
            "\n  memory: start {:.1} MB, end {:.1} MB, peak {:.1} MB ({:?}; largest process {:.1} MB)",
            u.memory_start_mb,
            u.memory_end_mb,
            u.peak_memory_mb,
            u.peak_memory_source,
            u.peak_memory_largest_process_mb
        );
        out += &format!(
            "\n  cpu: {:.3}s (user {:.3}s, system {:.3}s; {:?}), wall {:.3}s",
            u.cpu_time_seconds,
            u.cpu_user_seconds,
            u.cpu_system_seconds,
            u.cpu_time_source,
            u.wall_time_seconds
        );
    }
    if let Some(e) = &r.error_details {
        if !e.suggestions.is_empty() {
            out += "\n  suggestions:";
            for s in &e.suggestions {
                out += &format!("\n    - {s}");
            }
        }
        if let Some(trace) = &e.stack_trace {
            out += "\n  stack trace:";
            for line in trace
                .lines()
                .rev()
                .take(12)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                out += &format!("\n    {line}");
            }
        }
    }
    let stdout = r.stdout.trim_end();
    if !stdout.is_empty() {
        out += "\n  stdout:";
        let lines: Vec<&str> = stdout.lines().collect();
        if lines.len() > 20 {
            out += &format!("\n    ... {} earlier lines (see --json)", lines.len() - 20);
        }
        for line in &lines[lines.len().saturating_sub(20)..] {
            out += &format!("\n    {line}");
        }
    }
    println!("{out}");
}
