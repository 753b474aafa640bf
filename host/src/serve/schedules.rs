//! The scheduler: the server runs the scripts with a `run_schedule` itself. One task
//! wakes when the [`ScheduleBook`] says a run is due (or when the registry changed, or a
//! scheduled run ended), and starts each due run through the same admission as the API
//! (a full server counts the slot missed, `busy`; it never waits for a place). Runs are
//! background executions, so shutdown waits for them; once the server is stopping, no
//! slot starts one. Each run is the user [`SCHEDULER_USER`] with the correlation id
//! `schedule:SCRIPT@SLOT`, so the log, the API and the dashboards tell them apart.
//!
//! At start, `schedules.json` in the log directory gives each script's last slot decided
//! before the server went down: the slots since are counted missed (`host_down`), told
//! to the operator, and the script watch judges the windows since then, so `script_missed`
//! fires for them. The file is written again each time the book's saved part changes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use super::{Refusal, ServeNotice, ServerState};
use crate::executor::ExecutionRequest;
use crate::schedules::book::Saved;
use crate::schedules::{store, Due, MissReason, RunResult, ScheduleBook};

/// The `user` of every execution the scheduler starts.
pub const SCHEDULER_USER: &str = "scheduler";
/// The scheduler looks at the book at least this often (the clock may have jumped).
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Restores the book from `schedules.json`, schedules the registry's scripts (counting
/// and telling the slots missed while the server was down) and starts the task.
pub(super) fn start(state: &Arc<ServerState>) {
    let file = store::path(&state.config.log_dir);
    let saved = store::load(&file).unwrap_or_else(|e| {
        (state.notices)(ServeNotice::SchedulesFile {
            problem: e.to_string(),
        });
        BTreeMap::new()
    });
    *state.schedules.lock().unwrap() = ScheduleBook::restored(saved);
    sync(state);
    let weak = Arc::downgrade(state);
    let mut stopping = state.stopping.subscribe();
    tokio::spawn(async move {
        let mut written: Option<BTreeMap<String, Saved>> = None;
        let mut write_failed = false;
        loop {
            let Some(state) = weak.upgrade() else { return };
            if state.is_stopping() {
                return;
            }
            let due = state.schedules.lock().unwrap().due(Utc::now());
            for d in due {
                fire(&state, d);
            }
            let (saved, next) = {
                let book = state.schedules.lock().unwrap();
                (book.saved(), book.next_due_at())
            };
            if written.as_ref() != Some(&saved) {
                let file = file.clone();
                let to_write = saved.clone();
                let result =
                    tokio::task::spawn_blocking(move || store::save(&file, &to_write)).await;
                match result {
                    Ok(Ok(())) => {
                        written = Some(saved);
                        write_failed = false;
                    }
                    Ok(Err(e)) if !write_failed => {
                        write_failed = true;
                        (state.notices)(ServeNotice::SchedulesFile {
                            problem: format!(
                                "cannot save the schedules: {e} (the slots missed while the \
                                 server is down will not be counted at its next start)"
                            ),
                        });
                    }
                    _ => {}
                }
            }
            let wait = next
                .map(|t| (t - Utc::now()).to_std().unwrap_or_default())
                .unwrap_or(MAX_WAIT)
                .min(MAX_WAIT);
            let wake = state.schedules_wake.clone();
            drop(state);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = wake.notified() => {}
                _ = stopping.changed() => {}
            }
        }
    });
}

/// After a (re)load of the registry: the scripts with a `run_schedule` scheduled with
/// theirs, the others no more; slots missed while the server was down (at start) are
/// told to the operator and the script watch.
pub(super) fn sync(state: &ServerState) {
    let registry = state.host.service().registry();
    let downtimes = state.schedules.lock().unwrap().sync(
        registry
            .scripts
            .iter()
            .filter_map(|s| Some((s.id.as_str(), s.run_schedule.as_ref()?))),
        Utc::now(),
    );
    for d in downtimes {
        if let Some(watch) = state.host.script_watch() {
            watch.backdate(&d.script, d.since);
        }
        (state.notices)(ServeNotice::SlotsMissed {
            script: d.script,
            missed: d.missed,
            since: d.since,
        });
    }
    state.schedules_wake.notify_one();
}

/// Starts the run of a due slot, or counts it missed when the server does not admit it.
fn fire(state: &Arc<ServerState>, due: Due) {
    // Held until the run is recorded as started: its end cannot be told before.
    let mut book = state.schedules.lock().unwrap();
    let Some(spec) = book.spec(&due.script) else {
        return;
    };
    let request = ExecutionRequest {
        script_id: due.script.clone(),
        inputs: spec.inputs.clone(),
        session_id: None,
        correlation_id: Some(format!(
            "schedule:{}@{}",
            due.script,
            crate::model::timestamp::format(&due.slot)
        )),
        user: Some(SCHEDULER_USER.to_string()),
    };
    let permit = match state.admit() {
        Ok(permit) => permit,
        Err(refusal) => {
            let reason = match refusal {
                Refusal::Busy => MissReason::Busy,
                Refusal::Stopping => MissReason::HostDown,
            };
            book.refused(&due.script, reason);
            return;
        }
    };
    let id = state.host.service().new_execution_id();
    book.started(&due.script, due.slot, &id, Utc::now());
    let weak = Arc::downgrade(state);
    let script = due.script;
    state.run_in_background(permit, id, request, move |execution| {
        let Some(state) = weak.upgrade() else { return };
        let result = if execution.result.success {
            RunResult::Success
        } else {
            RunResult::Failure
        };
        let waiting = state.schedules.lock().unwrap().finished(
            &script,
            &execution.result.execution_id,
            result,
            Utc::now(),
        );
        if let Some(next) = waiting {
            fire(&state, next);
        }
        state.schedules_wake.notify_one();
    });
}

/// `GET /api/v1/schedules`: every scheduled script's standing.
pub(super) async fn list(State(state): State<Arc<ServerState>>) -> Json<Value> {
    let statuses = state.schedules.lock().unwrap().statuses();
    Json(json!({ "schedules": statuses }))
}
