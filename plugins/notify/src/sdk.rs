//! The notifier world's side: the SDK's alert record as a [`metaclaude_formats`] alert,
//! and a POST through the `http` import.

use chrono::{DateTime, Utc};
use metaclaude_formats::alerts::{Alert, Severity, Status};
use metaclaude_plugin_sdk::types::{self, AlertStatus, Datetime};

use crate::http::check_response;

/// An instant of the WIT record; one past chrono's range (no host sends one) is the
/// Unix epoch, which shows as plainly wrong rather than failing the delivery forever.
pub fn instant(t: &Datetime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.seconds, t.nanoseconds).unwrap_or(DateTime::UNIX_EPOCH)
}

/// The SDK's alert as the formats' one; an empty fingerprint (a rule's, before the
/// host's routing filled it) is computed from the type and labels.
pub fn alert(a: &types::Alert) -> Alert {
    let mut alert = Alert {
        timestamp: instant(&a.timestamp),
        kind: a.type_.clone(),
        severity: match a.severity {
            types::Severity::Warning => Severity::Warning,
            types::Severity::Critical => Severity::Critical,
        },
        message: a.message.clone(),
        value: a.value,
        threshold: a.threshold,
        specialist: a.specialist.clone(),
        labels: a.labels.iter().cloned().collect(),
        status: match a.status {
            AlertStatus::Firing => Status::Firing,
            AlertStatus::Resolved => Status::Resolved,
        },
        fingerprint: a.fingerprint.clone(),
        starts_at: instant(&a.starts_at),
        ends_at: a.ends_at.as_ref().map(instant),
        annotations: a.annotations.iter().cloned().collect(),
    };
    if alert.fingerprint.is_empty() {
        alert.fingerprint = alert.identity();
    }
    alert
}

/// The alerts of a `notify` call.
pub fn alerts(alerts: &[types::Alert]) -> Vec<Alert> {
    alerts.iter().map(alert).collect()
}

/// The host's clock.
pub fn now() -> DateTime<Utc> {
    instant(&metaclaude_plugin_sdk::host::now())
}

/// POSTs `body` to `url` (named `shown` in errors); `Ok` only for a 2xx answer.
pub fn post(
    url: &str,
    shown: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(), String> {
    let response = metaclaude_plugin_sdk::http::post(url, headers, body)
        .map_err(|e| format!("POST {shown}: {e}"))?;
    check_response(shown, response.status, &response.headers, &response.body)
}
