//! The lifecycle events of one execution.

use chrono::Utc;

use crate::model::{ExecutionEvent, LifecycleKind};

/// The fields every event of one execution shares.
pub(super) struct EventHeader {
    pub execution_id: String,
    pub script_id: String,
    pub specialist: Option<String>,
    pub session_id: Option<String>,
    pub correlation_id: Option<String>,
    pub user: Option<String>,
}

impl EventHeader {
    pub fn event(&self, kind: LifecycleKind, attempt: u32) -> ExecutionEvent {
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
