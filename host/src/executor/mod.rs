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

mod attempt;
mod capture;
pub(crate) mod cgroup;
mod checks;
pub(crate) mod classify;
mod errors;
mod launch;
pub(crate) mod measure;
pub mod request;
mod retry;
mod service;
pub(crate) mod spawn;
mod usage;

use std::time::Duration;

use crate::model::{ExecutionEvent, ExecutionResult};

pub use self::request::{
    parse_execution_body, parse_request_line, BodyProblem, ExecutionRequest, RequestLineError,
    REQUEST_SHAPE,
};
pub use self::service::ToolExecutionService;

/// Receives every lifecycle event. Implementations must not block: the executor calls
/// them inline (the plugin bus puts events on bounded queues).
pub trait EventSink: Send + Sync {
    /// Takes one event; every kind but `finished` comes here, and `finished` too unless
    /// [`emit_finished`](Self::emit_finished) is overridden.
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
    /// Everything known about the finished execution, as its `finished` event carries it.
    pub result: ExecutionResult,
    /// Whether the acknowledging sinks stored it; `Unconfirmed` when none acknowledges.
    pub recording: Recording,
}

/// Tunables of the executor; the defaults suit most hosts.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Executions running at once, more waiting in the `queued` state; `None`, four for
    /// each core this process may use ([`ExecutorConfig::concurrency`]).
    pub max_concurrency: Option<usize>,
    /// Between SIGTERM and SIGKILL when a script times out.
    pub kill_grace: Duration,
    /// How long output is still read after the script's main process exited (a
    /// descendant that escaped the tree may hold the pipe open forever).
    pub drain_grace: Duration,
    /// Use per-execution cgroups when the machine allows it.
    pub use_cgroups: bool,
    /// Longest interval between memory samples (sampling starts at 5 ms and backs off).
    pub max_sample_interval: Duration,
    /// The host runs one execution (a one-shot `run`): its execution cgroups are made
    /// straight in the host's own cgroup, without a folder and a pool of the host's own
    /// (two `mkdir`s and a thread fewer).
    pub one_execution: bool,
}

/// The cores this process may use, read once: std reads the cgroup's CPU quota files each
/// time it is asked. Only when asked: a one-shot `run`, which never is, pays nothing.
fn cores() -> Option<usize> {
    static CORES: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().ok().map(|n| n.get()))
}

impl ExecutorConfig {
    /// Executions running at once, at most: `max_concurrency`, or four for each core this
    /// process may use (8 when that cannot be read).
    pub fn concurrency(&self) -> usize {
        self.max_concurrency
            .unwrap_or_else(|| cores().map_or(8, |n| n * 4))
            .max(1)
    }
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            max_concurrency: None,
            kill_grace: Duration::from_millis(2000),
            drain_grace: Duration::from_millis(250),
            use_cgroups: true,
            max_sample_interval: Duration::from_millis(100),
            one_execution: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_is_four_per_core_unless_given() {
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(ExecutorConfig::default().max_concurrency, None);
        assert_eq!(ExecutorConfig::default().concurrency(), 4 * cores);
        let given = |n| ExecutorConfig {
            max_concurrency: Some(n),
            ..ExecutorConfig::default()
        };
        assert_eq!(given(3).concurrency(), 3);
        // Zero would let nothing run.
        assert_eq!(given(0).concurrency(), 1);
    }
}
