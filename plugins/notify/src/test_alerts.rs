//! Alerts for tests: the shared vocabulary's example, firing and resolved.

use chrono::{DateTime, Duration, Utc};
use metaclaude_formats::alerts::{fingerprint, Alert, Severity, Status};

/// The vocabulary's example: `error_rate_high`, warning, about `api-ui-designer`,
/// observed at 2024-01-15T10:30:45.123456Z, firing since 10:25:45.
pub fn firing() -> Alert {
    firing_at(
        DateTime::parse_from_rfc3339("2024-01-15T10:30:45.123456Z")
            .unwrap()
            .to_utc(),
    )
}

/// The example observed at `now`, firing for five minutes.
pub fn firing_at(now: DateTime<Utc>) -> Alert {
    Alert {
        timestamp: now,
        kind: "error_rate_high".into(),
        severity: Severity::Warning,
        message: "Error rate is 15.3% (threshold: 10.0%)".into(),
        value: 15.3,
        threshold: 10.0,
        specialist: Some("api-ui-designer".into()),
        labels: [("specialist".into(), "api-ui-designer".into())].into(),
        status: Status::Firing,
        fingerprint: fingerprint("error_rate_high", Some("api-ui-designer"), []),
        starts_at: now - Duration::minutes(5),
        ends_at: None,
        annotations: [
            (
                "summary".into(),
                "Error rate is 15.3% (threshold: 10.0%)".into(),
            ),
            (
                "description".into(),
                "3 of 20 executions of api-ui-designer failed in the last 5 minutes".into(),
            ),
        ]
        .into(),
    }
}

/// `alert` resolved at `at` (observed then too).
pub fn resolved(alert: &Alert, at: DateTime<Utc>) -> Alert {
    Alert {
        timestamp: at,
        status: Status::Resolved,
        ends_at: Some(at),
        ..alert.clone()
    }
}
