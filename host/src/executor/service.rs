//! The service: the executions' life cycle from `queued` to `finished`, their attempts
//! and retries, and the acknowledgements sinks send back.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use tokio::sync::{watch, Semaphore};

use crate::ids::IdGenerator;
use crate::model::{ExecutionEvent, ExecutionResult, LifecycleKind, ResourceUsage};
use crate::registry::{Registry, RegistryError, ScriptEntry};

use super::attempt::{self, Surroundings};
use super::cgroup::CgroupManager;
use super::checks::{check_requirements, validate_inputs};
use super::errors;
use super::launch::LaunchPlan;
use super::retry::{backoff_ms, should_retry};
use super::usage::accumulate;
use super::{EventSink, Execution, ExecutionRequest, ExecutorConfig, Receipt, Recording};
use crate::model::ExecutionIdentity;

/// The seed's `ToolExecutionService`: runs registry scripts and measures them.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
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
    /// Replaced as a whole by [`ToolExecutionService::replace_registry`]; an execution
    /// keeps the registry it started with.
    registry: RwLock<Arc<Registry>>,
    config: ExecutorConfig,
    slots: Arc<Semaphore>,
    cgroups: Option<Arc<CgroupManager>>,
    sinks: Vec<Arc<dyn EventSink>>,
    ids: IdGenerator,
    /// Set by [`ToolExecutionService::stop_running`]: running attempts are ended, queued
    /// executions are not started, no retry is scheduled.
    stop: watch::Sender<bool>,
}

impl ToolExecutionService {
    /// Loads `registry.json` and prepares an executor with the default configuration.
    pub fn open(registry: impl AsRef<Path>) -> Result<Self, RegistryError> {
        Ok(Self::new(
            Registry::load(registry)?,
            ExecutorConfig::default(),
        ))
    }

    /// An executor of `registry`'s scripts, with no sinks yet. With `config.use_cgroups`
    /// each execution gets a cgroup of its own when the machine allows one (every process
    /// of the tree counted, short-lived ones too); otherwise `/proc` is sampled and
    /// `wait4`'s rusage read.
    pub fn new(registry: Registry, config: ExecutorConfig) -> Self {
        let cgroups = if config.use_cgroups {
            CgroupManager::detect(config.one_execution)
        } else {
            None
        };
        ToolExecutionService {
            registry: RwLock::new(Arc::new(registry)),
            slots: Arc::new(Semaphore::new(config.concurrency())),
            config,
            cgroups,
            sinks: Vec::new(),
            ids: IdGenerator::default(),
            stop: watch::Sender::new(false),
        }
    }

    /// Adds a receiver of lifecycle events.
    pub fn add_sink(&mut self, sink: Arc<dyn EventSink>) {
        self.sinks.push(sink);
    }

    /// The registry in force now.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.read().unwrap().clone()
    }

    /// Puts `registry` in force for executions that start from now on (those already
    /// running keep theirs).
    pub fn replace_registry(&self, registry: Registry) {
        *self.registry.write().unwrap() = Arc::new(registry);
    }

    /// Executions running at once, at most.
    pub fn max_concurrency(&self) -> usize {
        self.config.concurrency()
    }

    /// A fresh execution id (a ULID), for [`ToolExecutionService::execute_recorded_as`]
    /// when the caller must know it before the execution starts.
    pub fn new_execution_id(&self) -> String {
        self.ids.next()
    }

    /// Ends every running execution the way its timeout would (SIGTERM to its process
    /// tree, SIGKILL after the kill grace; reported as TIMEOUT, ended by the host's
    /// shutdown), starts no queued one and schedules no retry, from now on. For a host
    /// that stops after its grace period.
    pub fn stop_running(&self) {
        self.stop.send_replace(true);
    }

    /// Whether [`ToolExecutionService::stop_running`] was called.
    pub fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves once [`ToolExecutionService::stop_running`] is called.
    /// Returns once [`ToolExecutionService::stop_running`] was called.
    async fn stopped(&self) {
        self.surroundings().stopped().await;
    }

    /// What an attempt needs of this service.
    fn surroundings(&self) -> Surroundings<'_> {
        Surroundings {
            config: &self.config,
            cgroups: self.cgroups.as_deref(),
            sinks: &self.sinks,
            stop: &self.stop,
        }
    }

    /// How memory and CPU are measured on this machine, for `--log-level debug` and docs.
    pub fn measurement_description(&self) -> String {
        match &self.cgroups {
            Some(c) => c.describe(),
            None => "no execution cgroups: rusage and /proc sampling".into(),
        }
    }

    pub(super) fn emit(&self, event: ExecutionEvent) {
        self.surroundings().emit(event);
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
        self.execute_recorded_as(self.ids.next(), req).await
    }

    /// [`ToolExecutionService::execute_recorded`] under an id from
    /// [`ToolExecutionService::new_execution_id`].
    pub async fn execute_recorded_as(
        &self,
        execution_id: String,
        req: ExecutionRequest,
    ) -> Execution {
        let started_at = Utc::now();
        let registry = self.registry();
        let entry = registry.get(&req.script_id);
        let header = ExecutionIdentity {
            execution_id: execution_id.clone(),
            script_id: req.script_id.clone(),
            specialist: entry.and_then(|e| e.specialist.clone()),
            session_id: req.session_id.clone(),
            correlation_id: req.correlation_id.clone(),
            user: req.user.clone(),
        };
        self.emit(header.event(LifecycleKind::Queued, 0));

        let mut result = ExecutionResult {
            specialist: header.specialist.clone(),
            inputs: req.inputs.clone(),
            session_id: req.session_id.clone(),
            correlation_id: req.correlation_id.clone(),
            user: req.user.clone(),
            ..ExecutionResult::new(execution_id, req.script_id.clone(), started_at)
        };

        match entry {
            None => {
                result.error_details = Some(errors::unknown_script(
                    &req.script_id,
                    registry.ids(),
                    &registry.file,
                ))
            }
            Some(entry) => match validate_inputs(entry, &req.inputs) {
                Err(problems) => {
                    result.error_details = Some(errors::validation_error(entry, problems));
                }
                Ok(inputs) => {
                    result.inputs = inputs.clone();
                    let slot = tokio::select! {
                        slot = self.slots.acquire() => slot.ok(),
                        () = self.stopped() => None,
                    };
                    match slot {
                        Some(_slot) => {
                            self.run_attempts(entry, &header, &inputs, &mut result)
                                .await
                        }
                        None => result.error_details = Some(errors::not_started(entry)),
                    }
                }
            },
        }
        result.finished_at = Utc::now();
        let mut finished = header.event(LifecycleKind::Finished, result.attempts.len() as u32);
        finished.result = Some(Arc::new(result.clone()));
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

    async fn run_attempts(
        &self,
        entry: &ScriptEntry,
        header: &ExecutionIdentity,
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
            let outcome = attempt::run(
                &self.surroundings(),
                entry,
                header,
                &plan,
                attempt,
                delay_before_ms,
            )
            .await;
            accumulate(&mut usage, &outcome.usage, attempt == 1);
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
                || self.is_stopping()
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
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(delay_before_ms)) => {}
                () = self.stopped() => break,
            }
            attempt += 1;
        }
        result.retries = attempt - 1;
        result.resource_usage = usage;
    }
}
