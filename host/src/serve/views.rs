//! The JSON views of the server's state that more than one answer shows: a plugin (the
//! plugins API and the live feed's snapshot) and the stats summary (the stats API and the
//! snapshot). One place, so the API and the feed cannot drift apart.

use chrono::Utc;
use serde_json::{json, Value};

use super::ServerState;
use crate::expectations::{ScriptStatus, State};
use crate::model::Alert;
use crate::plugin::{Health, PluginInfo};

/// The state a script with expectations is shown in: `silenced` when it is in a state
/// that raises an alert (failing, missed, overdue, too short) and every `script_*` alert
/// of it in force is muted by a silence or a maintenance window; else the watch's state.
pub fn script_state(status: &ScriptStatus, active: &[Alert]) -> &'static str {
    let alerting = matches!(
        status.state,
        State::Failing | State::Missed | State::Overdue | State::TooShort
    );
    let mut its = active.iter().filter(|a| {
        a.kind.starts_with("script_")
            && a.labels.get("script").map(String::as_str) == Some(status.script.as_str())
    });
    let mut any = false;
    let all_silenced = its.all(|a| {
        any = true;
        !a.silenced_by.is_empty()
    });
    if alerting && any && all_silenced {
        "silenced"
    } else {
        status.state.as_str()
    }
}

/// Every state a script is shown in, for a metric's series: the watch's, then `silenced`.
pub const SCRIPT_STATES: [&str; 8] = [
    "failing",
    "missed",
    "overdue",
    "too_short",
    "late",
    "new",
    "ok",
    "silenced",
];

/// A plugin as the API shows it: what `plugins list` shows, with the counters.
pub fn plugin_json(p: &PluginInfo) -> Value {
    let (health, reason) = match &p.health {
        Health::Running => ("running", None),
        Health::Restarting => ("restarting", None),
        Health::Quarantined(why) => ("quarantined", Some(why.clone())),
        Health::Disabled(why) => ("disabled", Some(why.clone())),
    };
    json!({
        "name": p.name,
        "version": p.version,
        "kind": p.kind.as_str(),
        "folder": p.folder,
        "sandboxed": p.sandboxed,
        "capabilities": p.capabilities,
        "state": health,
        "reason": reason,
        "queued": p.queued,
        "delivered": p.delivered,
        "dropped": p.dropped,
        "queue_depth": p.queued.saturating_sub(p.delivered + p.dropped),
        "failures": p.failures,
        "restarts": p.restarts,
        "refused": p.refused,
        "last_error": p.last_error,
        "load_ms": p.load_time.as_secs_f64() * 1000.0,
        "wit": p.wit.map(|v| v.as_str()),
        "memory_bytes": p.memory_bytes,
        "calls": p.calls.count,
        "call_seconds_total": p.calls.sum_seconds,
        "destinations": p.destinations.iter().map(|d| json!({
            "destination": d.destination,
            "unit": d.unit,
            "pending": d.pending,
            "sent": d.sent,
            "dropped": d.dropped,
            "failed_requests": d.failed_requests,
            "retried_requests": d.retried_requests,
            "last_error": d.last_error,
            "last_error_at": d.last_error_at.as_ref().map(crate::model::timestamp::format),
            "last_success_at": d.last_success_at.as_ref().map(crate::model::timestamp::format),
        })).collect::<Vec<_>>(),
    })
}

/// The stats summary (also part of the live feed's snapshot).
pub fn stats_json(state: &ServerState, period_minutes: u64, top: usize) -> Value {
    serde_json::to_value(state.monitor.report(period_minutes, top, Utc::now())).unwrap_or_default()
}
