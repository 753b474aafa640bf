//! A metaclaude alert rule: `slow_execution` fires for a script whose execution took
//! longer than `threshold_seconds`, and resolves at its next execution within it.

use std::collections::BTreeMap;
use std::sync::Mutex;

wit_bindgen::generate!({ path: "wit/monitor.wit", world: "alert-rule" });

use metaclaude::monitor::types::{AlertStatus, Severity};

struct State {
    threshold_seconds: f64,
    /// The scripts whose alert is firing, and since when.
    firing: BTreeMap<String, Datetime>,
}

static STATE: Mutex<State> = Mutex::new(State { threshold_seconds: 10.0, firing: BTreeMap::new() });

struct Plugin;

impl Guest for Plugin {
    fn init(config: String) -> Result<(), String> {
        let config: serde_json::Value = serde_json::from_str(&config).map_err(|e| format!("config: {e}"))?;
        if let Some(t) = config.get("threshold_seconds") {
            let t = t.as_f64().filter(|t| *t >= 0.0);
            STATE.lock().unwrap().threshold_seconds =
                t.ok_or("config.threshold_seconds: expected a number of seconds, 0 or more")?;
        }
        Ok(())
    }

    fn handle_batch(events: Vec<Event>) -> Vec<Alert> {
        let mut state = STATE.lock().unwrap();
        let threshold = state.threshold_seconds;
        let mut alerts = Vec::new();
        for (e, r) in events.iter().filter_map(|e| e.result.as_ref().map(|r| (e, r))) {
            let took = r.resource_usage.wall_time_seconds;
            let (status, starts_at, ends_at) = if took > threshold {
                let since = *state.firing.entry(r.script_id.clone()).or_insert(e.timestamp);
                (AlertStatus::Firing, since, None)
            } else if let Some(since) = state.firing.remove(&r.script_id) {
                (AlertStatus::Resolved, since, Some(e.timestamp))
            } else {
                continue;
            };
            let message = format!("{} took {took:.1}s (threshold: {threshold:.1}s)", r.script_id);
            alerts.push(Alert {
                timestamp: e.timestamp,
                type_: "slow_execution".into(),
                severity: Severity::Warning,
                message: message.clone(),
                value: took,
                threshold,
                specialist: r.specialist.clone(),
                labels: std::iter::once(("script_id".into(), r.script_id.clone()))
                    .chain(r.specialist.clone().map(|s| ("specialist".into(), s)))
                    .collect(),
                status,
                fingerprint: String::new(), // the host fills it in
                starts_at,
                ends_at,
                annotations: vec![("summary".into(), message)],
            });
        }
        alerts
    }

    fn tick(_now: Datetime) -> Vec<Alert> {
        Vec::new()
    }

    fn set_threshold(name: String, value: f64) -> Result<String, String> {
        if name != "threshold_seconds" {
            return Err(format!("unknown threshold `{name}` (known: threshold_seconds)"));
        }
        if !(value >= 0.0 && value.is_finite()) {
            return Err(format!("threshold_seconds: {value} is out of range (0 or more seconds)"));
        }
        let old = std::mem::replace(&mut STATE.lock().unwrap().threshold_seconds, value);
        Ok(format!("threshold_seconds: {old} -> {value}"))
    }

    fn thresholds() -> Vec<Threshold> {
        vec![Threshold {
            name: "threshold_seconds".into(),
            value: STATE.lock().unwrap().threshold_seconds,
            description: "an execution's wall time above which it is slow, in seconds".into(),
        }]
    }
}

export!(Plugin);
