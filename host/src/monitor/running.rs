//! The executions that have not finished: where each is, from the lifecycle events so far.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{timestamp, ErrorDetails, ExecutionEvent, ExecutionIdentity};

/// Where a running execution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Waiting for a concurrency slot.
    Queued,
    /// An attempt's process runs.
    Running,
    /// Waiting out the backoff before the next attempt.
    Retrying,
}

/// An execution that has not finished: its state so far.
#[derive(Debug, Clone, Serialize)]
pub struct RunningExecution {
    /// Which execution (its fields appear at this level in JSON).
    #[serde(flatten)]
    pub identity: ExecutionIdentity,
    /// Queued, running or retrying.
    pub state: RunState,
    /// When its `queued` event was stamped, UTC.
    #[serde(with = "timestamp")]
    pub queued_at: DateTime<Utc>,
    /// The attempt running or last run (0 while queued).
    pub attempt: u32,
    /// The running attempt's process id.
    pub pid: Option<u32>,
    /// When the current (or last) attempt started, UTC; `None` while queued.
    #[serde(with = "timestamp::option")]
    pub attempt_started_at: Option<DateTime<Utc>>,
    /// What went wrong in the last failed attempt.
    pub last_error: Option<ErrorDetails>,
    /// The backoff before the next attempt, while retrying.
    pub retry_delay_ms: Option<u64>,
}

impl RunningExecution {
    /// An execution just queued.
    pub(super) fn queued(event: &ExecutionEvent) -> RunningExecution {
        RunningExecution {
            identity: event.identity.clone(),
            state: RunState::Queued,
            queued_at: event.timestamp,
            attempt: 0,
            pid: None,
            attempt_started_at: None,
            last_error: None,
            retry_delay_ms: None,
        }
    }

    /// An attempt started.
    pub(super) fn started(&mut self, event: &ExecutionEvent) {
        self.state = RunState::Running;
        self.attempt = event.attempt;
        self.pid = event.pid;
        self.attempt_started_at = Some(event.timestamp);
        self.retry_delay_ms = None;
    }

    /// An attempt failed.
    pub(super) fn attempt_failed(&mut self, event: &ExecutionEvent) {
        self.pid = None;
        self.last_error = event.error.clone();
    }

    /// The next attempt waits out its backoff.
    pub(super) fn retry_scheduled(&mut self, event: &ExecutionEvent) {
        self.state = RunState::Retrying;
        self.retry_delay_ms = event.retry_delay_ms;
    }
}
