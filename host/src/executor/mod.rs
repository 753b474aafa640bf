//! The executor: validate a request, spawn the script, limit and measure it, classify how
//! it ended, retry transient failures, and report every step as a lifecycle event.
//!
//! Invariants:
//! * every execution emits `queued` first and `finished` last, exactly once each, whatever
//!   happens in between (validation errors included);
//! * no process of an execution's tree outlives the execution;
//! * in acknowledged mode an execution is reported (returned) only after every sink that
//!   acknowledges has confirmed storing its `finished` event, or it is reported with
//!   [`Recording::Failed`] saying which sink did not and why;
//! * the host never blocks on a script's output: pipes are drained concurrently and, once
//!   the script's main process has exited, for a bounded grace only.

mod capture;
pub mod cgroup;
pub mod classify;
pub mod measure;
pub mod spawn;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::Rng;
use serde_json::Value;
use tokio::io::unix::AsyncFd;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::ids::IdGenerator;
use crate::model::{
    signal_name, AttemptSummary, ErrorCategory, ErrorDetails, ExecutionEvent, ExecutionResult,
    LifecycleKind, MeasurementSource, ResourceUsage,
};
use crate::registry::{
    coerce, InputMode, InputType, Registry, RegistryError, Requirement, RetryPolicy, ScriptEntry,
};
use crate::suggest::{closest, did_you_mean};

use self::capture::{Captured, OutputPipe};
use self::cgroup::{CgroupManager, CgroupUsage, ExecCgroup};
use self::measure::{bytes_to_mb, Samples};
use self::spawn::{cstring, path_cstring, SpawnRequest};

/// Receives every lifecycle event. Implementations must not block: the executor calls
/// them inline (the plugin bus puts events on bounded queues).
pub trait EventSink: Send + Sync {
    fn emit(&self, event: &ExecutionEvent);

    /// Delivers an execution's `finished` event. A sink in acknowledged mode returns a
    /// receipt, which the executor awaits before it reports the execution as finished.
    fn emit_finished(&self, event: &ExecutionEvent) -> Option<Receipt> {
        self.emit(event);
        None
    }
}

/// A sink's later answer to whether it stored a finished execution; `Err` names the
/// plugin that did not and why. The future enforces its own deadline.
pub type Receipt = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

/// Whether the sinks that acknowledge confirmed storing an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recording {
    /// No sink acknowledges: the events were handed over, not confirmed.
    Unconfirmed,
    /// Every acknowledging sink confirmed it stored the `finished` event.
    Confirmed,
    /// At least one acknowledging sink did not: each reason names its plugin.
    Failed(Vec<String>),
}

/// An execution's result together with what the acknowledging sinks said of it.
#[derive(Debug, Clone)]
pub struct Execution {
    pub result: ExecutionResult,
    pub recording: Recording,
}

/// Tunables of the executor; the defaults suit most hosts.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Executions running at once; more wait in the `queued` state.
    pub max_concurrency: usize,
    /// Between SIGTERM and SIGKILL when a script times out.
    pub kill_grace: Duration,
    /// How long output is still read after the script's main process exited (a
    /// descendant that escaped the tree may hold the pipe open forever).
    pub drain_grace: Duration,
    /// Use per-execution cgroups when the machine allows it.
    pub use_cgroups: bool,
    /// Longest interval between memory samples (sampling starts at 5 ms and backs off).
    pub max_sample_interval: Duration,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            max_concurrency: std::thread::available_parallelism()
                .map(|n| n.get() * 4)
                .unwrap_or(8),
            kill_grace: Duration::from_millis(2000),
            drain_grace: Duration::from_millis(250),
            use_cgroups: true,
            max_sample_interval: Duration::from_millis(100),
        }
    }
}

/// One request to run a script.
#[derive(Debug, Clone, Default)]
pub struct ExecutionRequest {
    pub script_id: String,
    /// Raw input values; strings are converted to the declared types.
    pub inputs: BTreeMap<String, Value>,
    pub session_id: Option<String>,
    pub correlation_id: Option<String>,
    pub user: Option<String>,
}

impl ExecutionRequest {
    pub fn new(script_id: impl Into<String>) -> Self {
        ExecutionRequest {
            script_id: script_id.into(),
            ..Default::default()
        }
    }
    pub fn input(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.inputs.insert(name.into(), value.into());
        self
    }
    pub fn session_id(mut self, s: impl Into<String>) -> Self {
        self.session_id = Some(s.into());
        self
    }
    pub fn correlation_id(mut self, s: impl Into<String>) -> Self {
        self.correlation_id = Some(s.into());
        self
    }
    pub fn user(mut self, s: impl Into<String>) -> Self {
        self.user = Some(s.into());
        self
    }
}

/// The seed's `ToolExecutionService`: runs registry scripts and measures them.
///
/// ```no_run
/// # async fn demo() -> anyhow::Result<()> {
/// use metaclaude::{ExecutionRequest, ToolExecutionService};
/// let tes = ToolExecutionService::open("examples/registry/registry.json")?;
/// let result = tes
///     .execute(ExecutionRequest::new("hello").input("name", "world").session_id("session-123"))
///     .await;
/// if let Some(err) = &result.error_details {
///     println!("{}: {}", err.category, err.message);
/// }
/// println!("peak {} MB", result.resource_usage.peak_memory_mb);
/// # Ok(()) }
/// ```
pub struct ToolExecutionService {
    registry: Arc<Registry>,
    config: ExecutorConfig,
    slots: Arc<Semaphore>,
    cgroups: Option<Arc<CgroupManager>>,
    sinks: Vec<Arc<dyn EventSink>>,
    ids: IdGenerator,
}

impl ToolExecutionService {
    /// Loads `registry.json` and prepares an executor with the default configuration.
    pub fn open(registry: impl AsRef<Path>) -> Result<Self, RegistryError> {
        Ok(Self::new(
            Registry::load(registry)?,
            ExecutorConfig::default(),
        ))
    }

    pub fn new(registry: Registry, config: ExecutorConfig) -> Self {
        let cgroups = if config.use_cgroups {
            CgroupManager::detect()
        } else {
            None
        };
        ToolExecutionService {
            registry: Arc::new(registry),
            slots: Arc::new(Semaphore::new(config.max_concurrency.max(1))),
            config,
            cgroups,
            sinks: Vec::new(),
            ids: IdGenerator::default(),
        }
    }

    /// Adds a receiver of lifecycle events.
    pub fn add_sink(&mut self, sink: Arc<dyn EventSink>) {
        self.sinks.push(sink);
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// How memory and CPU are measured on this machine, for `--log-level debug` and docs.
    pub fn measurement_description(&self) -> String {
        match &self.cgroups {
            Some(c) => c.describe(),
            None => "no execution cgroups: rusage and /proc sampling".into(),
        }
    }

    fn emit(&self, event: ExecutionEvent) {
        for sink in &self.sinks {
            sink.emit(&event);
        }
    }

    /// Runs one script to completion (with retries) and returns everything measured.
    /// Never panics on bad input: problems come back as a failed result with a category.
    /// See [`ToolExecutionService::execute_recorded`] for whether sinks confirmed it.
    pub async fn execute(&self, req: ExecutionRequest) -> ExecutionResult {
        self.execute_recorded(req).await.result
    }

    /// Like [`ToolExecutionService::execute`], and in acknowledged mode returns only once
    /// the acknowledging sinks answered, with what they said.
    pub async fn execute_recorded(&self, req: ExecutionRequest) -> Execution {
        let execution_id = self.ids.next();
        let started_at = Utc::now();
        let entry = self.registry.get(&req.script_id);
        let header = EventHeader {
            execution_id: execution_id.clone(),
            script_id: req.script_id.clone(),
            specialist: entry.and_then(|e| e.specialist.clone()),
            session_id: req.session_id.clone(),
            correlation_id: req.correlation_id.clone(),
            user: req.user.clone(),
        };
        self.emit(header.event(LifecycleKind::Queued, 0));

        let mut result = ExecutionResult {
            execution_id,
            script_id: req.script_id.clone(),
            specialist: header.specialist.clone(),
            success: false,
            exit_code: None,
            signal: None,
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            started_at,
            finished_at: started_at,
            attempts: Vec::new(),
            retries: 0,
            inputs: req.inputs.clone(),
            session_id: req.session_id.clone(),
            correlation_id: req.correlation_id.clone(),
            user: req.user.clone(),
            error_details: None,
            resource_usage: ResourceUsage::empty(),
        };

        match entry {
            None => result.error_details = Some(self.unknown_script(&req.script_id)),
            Some(entry) => match validate_inputs(entry, &req.inputs) {
                Err(problems) => {
                    result.error_details = Some(validation_error(entry, problems));
                }
                Ok(inputs) => {
                    result.inputs = inputs.clone();
                    let _slot = self.slots.acquire().await;
                    self.run_attempts(entry, &header, &inputs, &mut result)
                        .await;
                }
            },
        }
        result.finished_at = Utc::now();
        let mut finished = header.event(LifecycleKind::Finished, result.attempts.len() as u32);
        finished.result = Some(Box::new(result.clone()));
        let receipts: Vec<Receipt> = self
            .sinks
            .iter()
            .filter_map(|sink| sink.emit_finished(&finished))
            .collect();
        let recording = if receipts.is_empty() {
            Recording::Unconfirmed
        } else {
            let mut failures = Vec::new();
            for receipt in receipts {
                if let Err(why) = receipt.await {
                    tracing::error!(execution_id = %result.execution_id, "execution not recorded: {why}");
                    failures.push(why);
                }
            }
            if failures.is_empty() {
                Recording::Confirmed
            } else {
                Recording::Failed(failures)
            }
        };
        Execution { result, recording }
    }

    fn unknown_script(&self, id: &str) -> ErrorDetails {
        let near = closest(id, self.registry.ids(), 3);
        let mut suggestions = Vec::new();
        if !near.is_empty() {
            suggestions.push(format!(
                "Did you mean {}?",
                near.iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        suggestions.push(format!(
            "List the registered scripts in {}",
            self.registry.file.display()
        ));
        let mut context = classify::context(
            &ScriptEntry {
                id: id.to_string(),
                ..placeholder_entry()
            },
            0,
        );
        context.script_path = String::new();
        if !near.is_empty() {
            context.extra.insert("closest_ids".into(), near.join(","));
        }
        ErrorDetails {
            category: ErrorCategory::Validation,
            message: format!("Unknown script `{id}`"),
            context,
            suggestions,
            stack_trace: None,
        }
    }

    async fn run_attempts(
        &self,
        entry: &ScriptEntry,
        header: &EventHeader,
        inputs: &BTreeMap<String, Value>,
        result: &mut ExecutionResult,
    ) {
        if let Some(err) = check_requirements(entry) {
            result.error_details = Some(err);
            return;
        }
        let plan = match LaunchPlan::new(entry, header, inputs) {
            Ok(plan) => plan,
            Err(err) => {
                result.error_details = Some(*err);
                return;
            }
        };
        let mut usage = ResourceUsage::empty();
        let mut delay_before_ms = 0;
        let mut attempt = 1u32;
        loop {
            let outcome = self
                .run_attempt(entry, header, &plan, attempt, delay_before_ms)
                .await;
            accumulate(&mut usage, &outcome, attempt == 1);
            result.attempts.push(outcome.summary.clone());
            result.exit_code = outcome.summary.exit_code;
            result.signal = outcome.summary.signal.clone();
            result.stdout = outcome.stdout.text.clone();
            result.stdout_truncated = outcome.stdout.truncated;
            result.stderr = outcome.stderr.text.clone();
            result.stderr_truncated = outcome.stderr.truncated;
            let Some(error) = outcome.error else {
                result.success = true;
                result.error_details = None;
                break;
            };
            let mut failed = header.event(LifecycleKind::AttemptFailed, attempt);
            failed.error = Some(error.clone());
            self.emit(failed);
            result.error_details = Some(error.clone());
            let retries_so_far = attempt - 1;
            if !should_retry(&entry.retry, &error, outcome.summary.exit_code)
                || retries_so_far >= entry.retry.max_retries
            {
                break;
            }
            delay_before_ms = backoff_ms(&entry.retry, retries_so_far);
            let mut scheduled = header.event(LifecycleKind::RetryScheduled, attempt);
            scheduled.retry_delay_ms = Some(delay_before_ms);
            self.emit(scheduled);
            tracing::info!(
                script = %entry.id,
                attempt,
                delay_ms = delay_before_ms,
                category = %error.category,
                "retrying after a transient failure"
            );
            tokio::time::sleep(Duration::from_millis(delay_before_ms)).await;
            attempt += 1;
        }
        result.retries = attempt - 1;
        result.resource_usage = usage;
    }

    async fn run_attempt(
        &self,
        entry: &ScriptEntry,
        header: &EventHeader,
        plan: &LaunchPlan,
        attempt: u32,
        delay_before_ms: u64,
    ) -> AttemptOutcome {
        let started_at = Utc::now();
        let clock = Instant::now();
        let cgroup = self.cgroups.as_ref().and_then(|m| match m.acquire() {
            Ok(cg) => Some(cg),
            Err(e) => {
                tracing::warn!("running without an execution cgroup: {e}");
                None
            }
        });
        let outcome = self
            .spawn_and_wait(entry, header, plan, attempt, cgroup.as_ref())
            .await;
        if let (Some(m), Some(cg)) = (&self.cgroups, cgroup) {
            m.release(cg);
        }
        let finished_at = Utc::now();
        let wall = clock.elapsed().as_secs_f64();
        let mut o = match outcome {
            Ok(o) => o,
            Err(error) => AttemptOutcome {
                summary: AttemptSummary {
                    attempt,
                    started_at,
                    finished_at,
                    success: false,
                    exit_code: None,
                    signal: None,
                    category: Some(error.category),
                    message: Some(error.message.clone()),
                    wall_time_seconds: wall,
                    cpu_time_seconds: 0.0,
                    peak_memory_mb: 0.0,
                    delay_before_ms,
                },
                error: Some(*error),
                stdout: Captured::default(),
                stderr: Captured::default(),
                usage: ResourceUsage::empty(),
            },
        };
        o.summary.started_at = started_at;
        o.summary.finished_at = finished_at;
        o.summary.delay_before_ms = delay_before_ms;
        o.summary.wall_time_seconds = wall;
        o.usage.wall_time_seconds = wall;
        o
    }

    async fn spawn_and_wait(
        &self,
        entry: &ScriptEntry,
        header: &EventHeader,
        plan: &LaunchPlan,
        attempt: u32,
        cgroup: Option<&ExecCgroup>,
    ) -> Result<AttemptOutcome, Box<ErrorDetails>> {
        let memory_limit = entry.memory_limit_mb.map(|mb| mb * 1024 * 1024);
        let mut cgroup_limits_memory = false;
        if let (Some(bytes), Some(cg)) = (memory_limit, cgroup) {
            if cg.has_memory() {
                match cg.set_memory_limit(bytes) {
                    Ok(()) => cgroup_limits_memory = true,
                    Err(e) => tracing::warn!("cannot set the cgroup memory limit: {e}"),
                }
            }
        }
        let cgroup_procs = cgroup.map(|cg| cg.procs_fds()).unwrap_or_default();
        let mut envp = plan.envp.clone();
        envp.push(cstring(format!("METACLAUDE_ATTEMPT={attempt}")).expect("no NUL"));
        let request = SpawnRequest {
            program: plan.program_c.clone(),
            argv: plan.argv.clone(),
            envp,
            cwd: plan.cwd.clone(),
            stdin_pipe: plan.stdin.is_some(),
            cpu_limit_seconds: entry.cpu_limit_seconds,
            address_space_limit_bytes: if cgroup_limits_memory {
                None
            } else {
                memory_limit
            },
            cgroup_procs,
        };
        let child = spawn::spawn(request)
            .map_err(|e| Box::new(classify::spawn_failure(entry, attempt, &plan.program, &e)))?;
        let pid = child.pid;
        let host_maxrss_kb = child.host_maxrss_kb;
        let mut started = header.event(LifecycleKind::Started, attempt);
        started.pid = Some(pid as u32);
        self.emit(started);

        let spawned_at = Instant::now();
        let mut samples = Samples::default();
        // Right after execve the tree is this one process: no need to list the cgroup.
        if let Some(rss) = measure::tree_rss_bytes(pid, None) {
            samples.record(rss);
        }

        let mut stdout = OutputPipe::new(child.stdout, entry.output_limit_bytes);
        let mut stderr = OutputPipe::new(child.stderr, entry.output_limit_bytes);
        if let (Some(fd), Some(data)) = (child.stdin, plan.stdin.clone()) {
            tokio::spawn(async move {
                if let Ok(mut w) = tokio::net::unix::pipe::Sender::from_owned_fd(fd) {
                    // A script that does not read its stdin closes the pipe: that is fine.
                    let _ = w.write_all(&data).await;
                }
            });
        }

        // SAFETY: the OwnedFd moves into the AsyncFd and stays open as long as it lives.
        let pidfd =
            unsafe { AsyncFd::register_with_interest(child.pidfd, tokio::io::Interest::READABLE) }
                .map_err(|e| {
                    Box::new(unknown_error(
                        entry,
                        attempt,
                        format!("cannot watch the process: {e}"),
                    ))
                })?;
        let deadline = spawned_at + Duration::from_millis(entry.timeout_ms);
        let mut interval = Duration::from_millis(5);
        let mut timed_out = false;
        loop {
            let next_sample = Instant::now() + interval;
            let wake = next_sample.min(deadline);
            tokio::select! {
                ready = pidfd.readable() => {
                    if let Ok(mut guard) = ready {
                        guard.retain_ready();
                    }
                    break;
                }
                _ = stdout.read_once(), if stdout.is_open() => {}
                _ = stderr.read_once(), if stderr.is_open() => {}
                _ = tokio::time::sleep_until(wake.into()) => {
                    if Instant::now() >= deadline {
                        timed_out = true;
                        terminate(pid, cgroup, &pidfd, self.config.kill_grace).await;
                        break;
                    }
                    if let Some(rss) = measure::tree_rss_bytes(pid, cgroup) {
                        samples.record(rss);
                    }
                    interval = (interval * 2).min(self.config.max_sample_interval);
                }
            }
        }

        // The main process has exited (it is a zombie until reaped, so its pid and
        // process group cannot be reused yet): end whatever it left behind.
        spawn::signal_group(pid, libc::SIGKILL);
        if let Some(cg) = cgroup.filter(|cg| cg.is_populated() != Some(false)) {
            cg.kill_all();
        }
        let reaped = loop {
            match spawn::try_reap(pid) {
                Ok(Some(r)) => break r,
                Ok(None) => tokio::time::sleep(Duration::from_millis(1)).await,
                Err(e) => {
                    return Err(Box::new(unknown_error(
                        entry,
                        attempt,
                        format!("cannot collect the process's exit status: {e}"),
                    )))
                }
            }
        };
        drop(pidfd);

        // Output: read to EOF, but never wait long for a pipe an escaped process holds.
        let drain_until = Instant::now() + self.config.drain_grace;
        while stdout.is_open() || stderr.is_open() {
            tokio::select! {
                _ = stdout.read_once(), if stdout.is_open() => {}
                _ = stderr.read_once(), if stderr.is_open() => {}
                _ = tokio::time::sleep_until(drain_until.into()) => break,
            }
        }
        let (stdout, stderr) = (stdout.finish(), stderr.finish());

        let exit_code = reaped.exit_code();
        let signal = reaped.signal();
        let cg_usage = cgroup
            .map(|c| c.usage(signal == Some(libc::SIGKILL)))
            .unwrap_or_default();
        let usage = usage_from(&reaped, host_maxrss_kb, &samples, &cg_usage);
        let oom_killed = cg_usage.oom_killed;
        let error = classify::classify(&classify::Ending {
            entry,
            attempt,
            exit_code,
            signal,
            timed_out,
            oom_killed,
            peak_memory_mb: usage.peak_memory_mb,
            cpu_seconds: usage.cpu_time_seconds,
            stderr: &stderr.text,
        });
        Ok(AttemptOutcome {
            summary: AttemptSummary {
                attempt,
                started_at: Utc::now(),
                finished_at: Utc::now(),
                success: error.is_none(),
                exit_code,
                signal: signal.map(signal_name),
                category: error.as_ref().map(|e| e.category),
                message: error.as_ref().map(|e| e.message.clone()),
                wall_time_seconds: 0.0,
                cpu_time_seconds: usage.cpu_time_seconds,
                peak_memory_mb: usage.peak_memory_mb,
                delay_before_ms: 0,
            },
            error,
            stdout,
            stderr,
            usage,
        })
    }
}

/// SIGTERM to the group (and the cgroup's stragglers), then SIGKILL after the grace.
async fn terminate(
    pid: libc::pid_t,
    cgroup: Option<&ExecCgroup>,
    pidfd: &AsyncFd<OwnedFd>,
    grace: Duration,
) {
    spawn::signal_group(pid, libc::SIGTERM);
    if let Some(cg) = cgroup {
        for p in cg.pids() {
            // SAFETY: signalling processes of our own execution cgroup.
            unsafe { libc::kill(p, libc::SIGTERM) };
        }
    }
    let exited = tokio::time::timeout(grace, pidfd.readable()).await.is_ok();
    if !exited {
        tracing::debug!(pid, "script ignored SIGTERM; sending SIGKILL");
    }
    spawn::signal_group(pid, libc::SIGKILL);
    if let Some(cg) = cgroup {
        cg.kill_all();
    }
}

struct AttemptOutcome {
    summary: AttemptSummary,
    error: Option<ErrorDetails>,
    stdout: Captured,
    stderr: Captured,
    usage: ResourceUsage,
}

/// Everything needed to start the script, computed once per execution.
struct LaunchPlan {
    program: PathBuf,
    program_c: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: CString,
    stdin: Option<Vec<u8>>,
}

impl LaunchPlan {
    fn new(
        entry: &ScriptEntry,
        header: &EventHeader,
        inputs: &BTreeMap<String, Value>,
    ) -> Result<LaunchPlan, Box<ErrorDetails>> {
        let env = script_environment(entry, header, inputs);
        let path_var = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let mut argv: Vec<String> = Vec::new();
        let program = match &entry.interpreter {
            Some(interp) => {
                let program = resolve_command(&interp[0], &path_var, &entry.working_dir)
                    .ok_or_else(|| Box::new(missing_interpreter(entry, &interp[0])))?;
                argv.extend(interp.iter().cloned());
                argv.push(entry.path.display().to_string());
                program
            }
            None => {
                argv.push(entry.path.display().to_string());
                entry.path.clone()
            }
        };
        if entry.input_mode == InputMode::Args {
            for (name, value) in inputs {
                match value {
                    Value::Bool(true) => argv.push(format!("--{name}")),
                    Value::Bool(false) | Value::Null => {}
                    Value::String(s) => {
                        argv.push(format!("--{name}"));
                        argv.push(s.clone());
                    }
                    other => {
                        argv.push(format!("--{name}"));
                        argv.push(other.to_string());
                    }
                }
            }
        }
        let stdin = (entry.input_mode == InputMode::StdinJson).then(|| {
            let mut data = serde_json::to_vec(inputs).unwrap_or_default();
            data.push(b'\n');
            data
        });
        let bad = |what: &str, e: std::io::Error| {
            unknown_error(
                entry,
                0,
                format!("cannot pass the {what} to the script: {e}"),
            )
        };
        Ok(LaunchPlan {
            program_c: path_cstring(&program).map_err(|e| bad("program path", e))?,
            argv: argv
                .iter()
                .map(cstring)
                .collect::<Result<_, _>>()
                .map_err(|e| bad("arguments", e))?,
            envp: env
                .iter()
                .map(|(k, v)| cstring(format!("{k}={v}")))
                .collect::<Result<_, _>>()
                .map_err(|e| bad("environment", e))?,
            cwd: path_cstring(&entry.working_dir).map_err(|e| bad("working directory", e))?,
            program,
            stdin,
        })
    }
}

const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A clean environment: `PATH`, the entry's allow-list and fixed values, the inputs in
/// `env` mode, and `METACLAUDE_*` facts about the execution.
fn script_environment(
    entry: &ScriptEntry,
    header: &EventHeader,
    inputs: &BTreeMap<String, Value>,
) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert(
        "PATH".into(),
        std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into()),
    );
    for (key, value) in std::env::vars() {
        let allowed = entry
            .env_allow
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => key.starts_with(prefix),
                None => *pattern == key,
            });
        if allowed {
            env.insert(key, value);
        }
    }
    env.extend(entry.env.clone());
    if entry.input_mode == InputMode::Env {
        for (name, value) in inputs {
            let var = entry.inputs[name].env_name.clone().unwrap_or_else(|| {
                format!("METACLAUDE_INPUT_{}", name.to_uppercase().replace('-', "_"))
            });
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            env.insert(var, text);
        }
    }
    env.insert(
        "METACLAUDE_EXECUTION_ID".into(),
        header.execution_id.clone(),
    );
    env.insert("METACLAUDE_SCRIPT_ID".into(), entry.id.clone());
    for (key, value) in [
        ("METACLAUDE_SESSION_ID", &header.session_id),
        ("METACLAUDE_CORRELATION_ID", &header.correlation_id),
        ("METACLAUDE_USER", &header.user),
    ] {
        if let Some(v) = value {
            env.insert(key.into(), v.clone());
        }
    }
    env.into_iter().collect()
}

/// Looks a command up like `execvp` would, on the script's `PATH`.
fn resolve_command(command: &str, path_var: &str, cwd: &Path) -> Option<PathBuf> {
    if command.contains('/') {
        let p = cwd.join(command);
        return p.is_file().then_some(p);
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(command))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn missing_interpreter(entry: &ScriptEntry, interp: &str) -> ErrorDetails {
    let mut ctx = classify::context(entry, 1);
    ctx.extra
        .insert("missing_interpreter".into(), interp.into());
    ErrorDetails {
        category: ErrorCategory::Dependency,
        message: format!("Interpreter `{interp}` was not found on PATH"),
        context: ctx,
        suggestions: vec![
            format!("Install `{interp}` or put it on the PATH the host runs with"),
            format!(
                "Or change `interpreter` in the registry entry for `{}`",
                entry.id
            ),
        ],
        stack_trace: None,
    }
}

/// `requires` and the script file itself, checked before anything runs.
fn check_requirements(entry: &ScriptEntry) -> Option<ErrorDetails> {
    let path_var = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into());
    let dependency = |message: String, extra: (&str, String), suggestions: Vec<String>| {
        let mut ctx = classify::context(entry, 0);
        ctx.extra.insert(extra.0.into(), extra.1);
        Some(ErrorDetails {
            category: ErrorCategory::Dependency,
            message,
            context: ctx,
            suggestions,
            stack_trace: None,
        })
    };
    if !entry.path.exists() {
        return dependency(
            format!("Script file {} does not exist", entry.path.display()),
            ("missing_file", entry.path.display().to_string()),
            vec![
                format!(
                    "Check `path` of `{}` in the registry: it is relative to the registry file",
                    entry.id
                ),
                "Restore the script from version control if it was deleted".into(),
            ],
        );
    }
    for req in &entry.requires {
        match req {
            Requirement::Command(cmd) => {
                if resolve_command(cmd, &path_var, &entry.working_dir).is_none() {
                    return dependency(
                        format!("Required command `{cmd}` was not found on PATH"),
                        ("missing_command", cmd.clone()),
                        vec![
                            format!("Install `{cmd}` (on Debian: apt-get install the package that provides it)"),
                            format!("Or remove it from `requires` of `{}` if the script no longer needs it", entry.id),
                        ],
                    );
                }
            }
            Requirement::File { written, path } => {
                if !path.exists() {
                    return dependency(
                        format!("Required file {written} does not exist"),
                        ("missing_file", path.display().to_string()),
                        vec![format!(
                            "Create {} or fix the entry in `requires`",
                            path.display()
                        )],
                    );
                }
            }
        }
    }
    None
}

/// Checks inputs against the declarations; returns them typed, with defaults filled in.
fn validate_inputs(
    entry: &ScriptEntry,
    given: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Value>, Vec<String>> {
    let mut problems = Vec::new();
    let mut out = BTreeMap::new();
    for (name, value) in given {
        match entry.inputs.get(name) {
            None => {
                let hint = did_you_mean(name, entry.inputs.keys().map(String::as_str));
                let known = if entry.inputs.is_empty() {
                    " (this script takes no inputs)".to_string()
                } else if hint.is_empty() {
                    format!(
                        " (known inputs: {})",
                        entry.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                } else {
                    String::new()
                };
                problems.push(format!("unknown input `{name}`{hint}{known}"));
            }
            Some(spec) => match coerce(spec.kind, value) {
                Ok(v) => {
                    if spec.kind == InputType::Path && spec.must_exist {
                        let p = entry.working_dir.join(v.as_str().unwrap_or_default());
                        if !p.exists() {
                            problems.push(format!(
                                "input `{name}`: path {} does not exist",
                                p.display()
                            ));
                        }
                    }
                    out.insert(name.clone(), v);
                }
                Err(e) => problems.push(format!("input `{name}`: {e}")),
            },
        }
    }
    for (name, spec) in &entry.inputs {
        if out.contains_key(name) || given.contains_key(name) {
            continue;
        }
        match (&spec.default, spec.required) {
            (Some(d), _) => {
                out.insert(name.clone(), d.clone());
            }
            (None, true) => problems.push(format!(
                "missing required input `{name}` ({})",
                spec.kind.as_str()
            )),
            (None, false) => {}
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn validation_error(entry: &ScriptEntry, problems: Vec<String>) -> ErrorDetails {
    let mut ctx = classify::context(entry, 0);
    ctx.extra.insert("problems".into(), problems.join("; "));
    let usage: Vec<String> = entry
        .inputs
        .iter()
        .map(|(n, s)| {
            format!(
                "--input {n}=<{}>{}",
                s.kind.as_str(),
                if s.required { " (required)" } else { "" }
            )
        })
        .collect();
    let mut suggestions = vec![format!(
        "Fix the inputs of `{}`; it accepts: {}",
        entry.id,
        if usage.is_empty() {
            "no inputs".to_string()
        } else {
            usage.join(", ")
        }
    )];
    suggestions.push("Nothing was run; correct the request and try again".into());
    ErrorDetails {
        category: ErrorCategory::Validation,
        message: format!("Invalid inputs for `{}`: {}", entry.id, problems.join("; ")),
        context: ctx,
        suggestions,
        stack_trace: None,
    }
}

fn unknown_error(entry: &ScriptEntry, attempt: u32, message: String) -> ErrorDetails {
    ErrorDetails {
        category: ErrorCategory::Unknown,
        message,
        context: classify::context(entry, attempt),
        suggestions: vec!["Check the host's log (--log-level debug) for details".into()],
        stack_trace: None,
    }
}

fn placeholder_entry() -> ScriptEntry {
    ScriptEntry {
        id: String::new(),
        path_in_registry: String::new(),
        path: PathBuf::new(),
        interpreter: None,
        specialist: None,
        description: None,
        timeout_ms: 0,
        memory_limit_mb: None,
        cpu_limit_seconds: None,
        inputs: BTreeMap::new(),
        input_mode: InputMode::Args,
        requires: Vec::new(),
        retry: RetryPolicy::default(),
        env_allow: Vec::new(),
        env: BTreeMap::new(),
        working_dir: PathBuf::new(),
        output_limit_bytes: 0,
    }
}

fn should_retry(policy: &RetryPolicy, error: &ErrorDetails, exit_code: Option<i32>) -> bool {
    if error.category.is_never_retried() {
        return false;
    }
    policy.retry_on_categories.contains(&error.category)
        || exit_code.is_some_and(|c| policy.retry_on_exit_codes.contains(&c))
}

/// Capped exponential backoff with full jitter (uniform between zero and the step).
fn backoff_ms(policy: &RetryPolicy, retry_index: u32) -> u64 {
    let step = (policy.initial_ms as f64 * policy.multiplier.powi(retry_index as i32))
        .min(policy.max_ms as f64) as u64;
    if policy.jitter {
        rand::rng().random_range(0..=step)
    } else {
        step
    }
}

/// Combines one attempt's figures into the execution's totals.
fn accumulate(total: &mut ResourceUsage, attempt: &AttemptOutcome, first: bool) {
    let a = &attempt.usage;
    if first {
        total.memory_start_mb = a.memory_start_mb;
        total.memory_start_source = a.memory_start_source;
    }
    total.memory_end_mb = a.memory_end_mb;
    total.memory_end_source = a.memory_end_source;
    if a.peak_memory_mb >= total.peak_memory_mb {
        total.peak_memory_mb = a.peak_memory_mb;
        total.peak_memory_source = a.peak_memory_source;
    }
    total.peak_memory_largest_process_mb = total
        .peak_memory_largest_process_mb
        .max(a.peak_memory_largest_process_mb);
    total.cpu_user_seconds += a.cpu_user_seconds;
    total.cpu_system_seconds += a.cpu_system_seconds;
    total.cpu_time_seconds += a.cpu_time_seconds;
    if a.cpu_time_source != MeasurementSource::None {
        total.cpu_time_source = a.cpu_time_source;
    }
    total.wall_time_seconds += a.wall_time_seconds;
}

fn timeval_seconds(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// The attempt's resource figures, each from the most complete source available.
fn usage_from(
    reaped: &spawn::Reaped,
    host_maxrss_kb: i64,
    samples: &Samples,
    cg: &CgroupUsage,
) -> ResourceUsage {
    // ru_maxrss is in KiB on Linux. The child began on the host's address space (vfork
    // semantics), and execve credits that address space's peak to the child; a figure not
    // above the host's own size at the spawn (plus slack for growth meanwhile) may be
    // the host's, not the script's, and is set aside. (The host resets its own mark to
    // its current size before each spawn; 4 MiB of slack covers its growth meanwhile.)
    let maxrss_kb = reaped.rusage.ru_maxrss.max(0);
    let rusage_usable = maxrss_kb > host_maxrss_kb.saturating_add(4096);
    let sampled_peak = bytes_to_mb(samples.max);
    let cgroup_peak = cg.peak_memory_bytes.map(bytes_to_mb);
    let largest = if rusage_usable {
        maxrss_kb as f64 / 1024.0
    } else {
        // The largest process cannot be bigger than the whole tree.
        cgroup_peak.unwrap_or(sampled_peak)
    };
    let mut peak = if rusage_usable {
        (largest, MeasurementSource::Rusage)
    } else {
        (0.0, MeasurementSource::None)
    };
    if sampled_peak > peak.0 {
        peak = (sampled_peak, MeasurementSource::Sampling);
    }
    if let Some(mb) = cgroup_peak {
        // The cgroup counts the whole tree; RSS can still be larger when a process maps
        // pages charged to another cgroup (shared libraries): report the larger, honestly.
        if mb >= peak.0 {
            peak = (mb, MeasurementSource::Cgroup);
        }
    }
    let (user, system, cpu_source) = match (cg.cpu_total_usec, cg.cpu_user_usec, cg.cpu_system_usec)
    {
        (Some(total), Some(u), Some(s)) => {
            let total = total as f64 / 1e6;
            let user_share = if u + s > 0 {
                u as f64 / (u + s) as f64
            } else {
                1.0
            };
            (
                total * user_share,
                total * (1.0 - user_share),
                MeasurementSource::Cgroup,
            )
        }
        _ => (
            timeval_seconds(reaped.rusage.ru_utime),
            timeval_seconds(reaped.rusage.ru_stime),
            MeasurementSource::Rusage,
        ),
    };
    let sampled = |v: Option<u64>| match v {
        Some(b) => (bytes_to_mb(b), MeasurementSource::Sampling),
        None => (0.0, MeasurementSource::None),
    };
    let (start, start_source) = sampled(samples.first);
    let (end, end_source) = sampled(samples.last);
    ResourceUsage {
        memory_start_mb: start,
        memory_end_mb: end,
        peak_memory_mb: peak.0,
        peak_memory_largest_process_mb: largest,
        cpu_time_seconds: user + system,
        cpu_user_seconds: user,
        cpu_system_seconds: system,
        wall_time_seconds: 0.0,
        memory_start_source: start_source,
        memory_end_source: end_source,
        peak_memory_source: peak.1,
        cpu_time_source: cpu_source,
    }
}

/// The fields every event of one execution shares.
struct EventHeader {
    execution_id: String,
    script_id: String,
    specialist: Option<String>,
    session_id: Option<String>,
    correlation_id: Option<String>,
    user: Option<String>,
}

impl EventHeader {
    fn event(&self, kind: LifecycleKind, attempt: u32) -> ExecutionEvent {
        ExecutionEvent {
            kind,
            timestamp: Utc::now(),
            execution_id: self.execution_id.clone(),
            script_id: self.script_id.clone(),
            specialist: self.specialist.clone(),
            session_id: self.session_id.clone(),
            correlation_id: self.correlation_id.clone(),
            user: self.user.clone(),
            attempt,
            pid: None,
            error: None,
            retry_delay_ms: None,
            result: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_exponential_with_full_jitter() {
        let mut p = RetryPolicy {
            initial_ms: 100,
            max_ms: 1000,
            multiplier: 2.0,
            jitter: false,
            ..RetryPolicy::default()
        };
        let steps: Vec<u64> = (0..6).map(|i| backoff_ms(&p, i)).collect();
        assert_eq!(steps, vec![100, 200, 400, 800, 1000, 1000]);
        p.jitter = true;
        for i in 0..50 {
            assert!(backoff_ms(&p, i % 6) <= 1000);
        }
    }

    #[test]
    fn never_retries_what_a_retry_cannot_fix() {
        let p = RetryPolicy::default();
        let mut e = ErrorDetails {
            category: ErrorCategory::Permission,
            message: String::new(),
            context: Default::default(),
            suggestions: vec![],
            stack_trace: None,
        };
        assert!(!should_retry(&p, &e, Some(75)));
        e.category = ErrorCategory::Timeout;
        assert!(should_retry(&p, &e, None));
        e.category = ErrorCategory::Execution;
        assert!(!should_retry(&p, &e, Some(1)));
        assert!(should_retry(&p, &e, Some(75)));
    }
}
