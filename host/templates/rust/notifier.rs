//! A metaclaude notifier: POSTs each alert, as the host's alert JSON, to `config.url`
//! (which the manifest grants under `capabilities.http`).

use std::sync::Mutex;

use serde_json::{json, Map, Value};

wit_bindgen::generate!({ path: "wit/monitor.wit", world: "notifier" });

use metaclaude::monitor::http;
use metaclaude::monitor::types::{AlertStatus, Datetime, Severity};

static URL: Mutex<String> = Mutex::new(String::new());

struct Plugin;

impl Guest for Plugin {
    fn init(config: String) -> Result<(), String> {
        let config: Value = serde_json::from_str(&config).map_err(|e| format!("config: {e}"))?;
        let url = config["url"].as_str().unwrap_or_default();
        if !url.starts_with("http://") && !url.starts_with("https://") {
            let found = &config["url"];
            return Err(format!("config.url: expected the webhook's http(s):// URL, found {found}"));
        }
        *URL.lock().unwrap() = url.to_string();
        Ok(())
    }

    fn notify(alerts: Vec<Alert>) -> Result<(), String> {
        let url = URL.lock().unwrap().clone();
        let headers = [("content-type".to_string(), "application/json".to_string())];
        for a in &alerts {
            let body = alert_json(a).to_string();
            let reply = http::post(&url, &headers, body.as_bytes())
                .map_err(|e| format!("cannot POST to {url}: {e}"))?;
            if reply.status >= 300 {
                let text = String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)]);
                return Err(format!("{url} answered {}: {text}", reply.status));
            }
        }
        Ok(())
    }
}

/// The alert as the host writes it to its alert history (absent fields left out).
fn alert_json(a: &Alert) -> Value {
    let pairs = |list: &[(String, String)]| -> Map<String, Value> {
        list.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect()
    };
    let mut doc = json!({
        "timestamp": rfc3339(&a.timestamp),
        "type": a.type_,
        "severity": match a.severity { Severity::Warning => "warning", Severity::Critical => "critical" },
        "message": a.message,
        "value": a.value,
        "threshold": a.threshold,
        "specialist": a.specialist,
        "labels": pairs(&a.labels),
        "status": match a.status { AlertStatus::Firing => "firing", AlertStatus::Resolved => "resolved" },
        "fingerprint": a.fingerprint,
        "starts_at": rfc3339(&a.starts_at),
        "ends_at": a.ends_at.as_ref().map(rfc3339),
        "annotations": pairs(&a.annotations),
    });
    if let Some(fields) = doc.as_object_mut() {
        fields.retain(|_, v| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty()));
    }
    doc
}

/// RFC 3339 in UTC with microseconds, e.g. `2024-01-15T10:30:45.123456Z`.
fn rfc3339(t: &Datetime) -> String {
    chrono::DateTime::from_timestamp(t.seconds, t.nanoseconds)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default()
}

export!(Plugin);
