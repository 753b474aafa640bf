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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_alerts::firing;

    fn at(t: &DateTime<Utc>) -> Datetime {
        Datetime {
            seconds: t.timestamp(),
            nanoseconds: t.timestamp_subsec_nanos(),
        }
    }

    /// The example alert as the host hands it over.
    fn record(fingerprint: &str) -> types::Alert {
        let a = firing();
        types::Alert {
            timestamp: at(&a.timestamp),
            type_: a.kind.clone(),
            severity: types::Severity::Warning,
            message: a.message.clone(),
            value: a.value,
            threshold: a.threshold,
            specialist: a.specialist.clone(),
            labels: a.labels.clone().into_iter().collect(),
            status: AlertStatus::Firing,
            fingerprint: fingerprint.into(),
            starts_at: at(&a.starts_at),
            ends_at: None,
            annotations: a.annotations.clone().into_iter().collect(),
        }
    }

    #[test]
    fn the_record_converts_field_for_field() {
        let expected = firing();
        assert_eq!(alert(&record(&expected.fingerprint)), expected);
        // A rule's record without a fingerprint gets the alert's identity.
        assert_eq!(alert(&record("")).fingerprint, expected.fingerprint);
        let mut r = record("given");
        r.status = AlertStatus::Resolved;
        r.severity = types::Severity::Critical;
        r.ends_at = Some(r.timestamp);
        // Repeated labels: the last wins.
        r.labels.push(("team".into(), "a".into()));
        r.labels.push(("team".into(), "b".into()));
        let a = alert(&r);
        assert_eq!(
            (a.status, a.severity, a.ends_at, a.fingerprint.as_str()),
            (
                Status::Resolved,
                Severity::Critical,
                Some(expected.timestamp),
                "given"
            )
        );
        assert_eq!(a.labels["team"], "b");
    }

    #[test]
    fn an_instant_out_of_range_is_the_epoch() {
        let t = Datetime {
            seconds: i64::MAX,
            nanoseconds: 0,
        };
        assert_eq!(instant(&t), DateTime::UNIX_EPOCH);
    }
}
