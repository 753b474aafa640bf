//! Alertmanager's v2 `postableAlerts`: the JSON array `POST /api/v2/alerts` takes.
//!
//! ```json
//! [{"labels": {"alertname": "error_rate_high", "severity": "warning", ...},
//!   "annotations": {"summary": "...", "value": "15.3", "threshold": "10", ...},
//!   "startsAt": "2024-01-15T10:25:45.123456Z", "endsAt": "2024-01-15T10:34:45.123456Z",
//!   "generatorURL": "http://..."}]
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use metaclaude_formats::alerts::timestamp;
use metaclaude_formats::json::Object;
use metaclaude_notify::alertmanager::pairs;

/// One alert as Alertmanager takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Postable {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    /// Absent: Alertmanager sets it itself (`resolve_timeout` after it received it).
    pub ends_at: Option<DateTime<Utc>>,
    /// Empty: left out.
    pub generator_url: String,
}

/// The array of `alerts`.
pub fn encode(alerts: &[Postable]) -> String {
    let mut out = String::with_capacity(alerts.len() * 512 + 2);
    out.push('[');
    for (i, a) in alerts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut o = Object::new(&mut out);
        o.strings("labels", pairs(&a.labels))
            .strings("annotations", pairs(&a.annotations))
            .string("startsAt", &timestamp(&a.starts_at));
        if let Some(t) = &a.ends_at {
            o.string("endsAt", &timestamp(t));
        }
        if !a.generator_url.is_empty() {
            o.string("generatorURL", &a.generator_url);
        }
        o.end();
    }
    out.push(']');
    out
}
