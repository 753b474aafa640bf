//! What identifies an alert, the same for the host, alert rules and notifiers.
//!
//! An alert's identity is its type and its labels (the specialist is a label), never its
//! severity, value, message or times: the same condition seen again is the same alert,
//! whether it is warning or critical. The fingerprint is Prometheus' and Alertmanager's
//! (`model.LabelSet.Fingerprint`): FNV-1a 64 over the label names and values sorted by
//! name, each followed by the byte 255, with the type as the label `alertname`; written as
//! 16 lowercase hex digits.
//!
//! [`Alert`] is the alert as notifiers deliver it and the host records it, and
//! [`Alert::to_json`] its one JSON form (what JSON notifiers send, what the alert history
//! holds).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::json::{write_string, Object};

/// The label an alert's type travels under (as in Prometheus and Alertmanager).
pub const ALERTNAME: &str = "alertname";
/// The label of the specialist an alert is about, when it has one.
pub const SPECIALIST: &str = "specialist";

/// The fingerprint of an alert of type `kind` about `specialist` (if any) with `labels`.
/// A `specialist` or `alertname` among `labels` is ignored: the arguments win.
pub fn fingerprint<'a>(
    kind: &str,
    specialist: Option<&str>,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut all: Vec<(&str, &str)> = labels
        .into_iter()
        .filter(|(k, _)| *k != ALERTNAME && *k != SPECIALIST)
        .collect();
    all.push((ALERTNAME, kind));
    if let Some(s) = specialist {
        all.push((SPECIALIST, s));
    }
    all.sort_unstable();
    all.dedup_by(|a, b| a.0 == b.0);
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for (name, value) in all {
        for part in [name, value] {
            for &b in part.as_bytes().iter().chain(&[255u8]) {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(PRIME);
            }
        }
    }
    format!("{hash:016x}")
}

/// How bad: every alert type has a warning and a critical threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    /// `warning` or `critical`, as the JSON, the labels and the logs write it.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Where an alert is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    /// `firing` or `resolved`, as the JSON writes it (and Alertmanager).
    pub fn name(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// An alert: the WIT `alert` record, with its times as UTC instants and its labels and
/// annotations by name (the last of a repeated name wins).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// When this state was observed.
    pub timestamp: DateTime<Utc>,
    /// What was detected, e.g. `error_rate_high` (the JSON's `type`).
    pub kind: String,
    pub severity: Severity,
    /// For people, e.g. "Error rate is 15.3% (threshold: 10.0%)".
    pub message: String,
    pub value: f64,
    pub threshold: f64,
    pub specialist: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub status: Status,
    /// 16 hex digits ([`fingerprint`]); the host fills it.
    pub fingerprint: String,
    pub starts_at: DateTime<Utc>,
    /// Set exactly when resolved.
    pub ends_at: Option<DateTime<Utc>>,
    /// `summary`, `description`, `runbook_url` ...
    pub annotations: BTreeMap<String, String>,
}

impl Alert {
    /// The specialist the alert is about: the field, else a `specialist` label.
    pub fn specialist(&self) -> Option<&str> {
        self.specialist
            .as_deref()
            .or_else(|| self.labels.get(SPECIALIST).map(String::as_str))
    }

    /// The fingerprint of the alert's identity, computed from its type, specialist field
    /// and labels ([`fingerprint`], as the host computes it) when the record came without
    /// one.
    pub fn identity(&self) -> String {
        if self.fingerprint.is_empty() {
            fingerprint(
                &self.kind,
                self.specialist.as_deref(),
                self.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )
        } else {
            self.fingerprint.clone()
        }
    }

    /// The alert's JSON, one line:
    /// `{"timestamp", "type", "severity", "message", "value", "threshold", "specialist"?,
    /// "labels"?, "status", "fingerprint", "starts_at", "ends_at"?, "annotations"?}`, in
    /// that order, times as [`timestamp`] writes them; `specialist` and `ends_at` are left
    /// out when absent, `labels` and `annotations` when empty. A value or threshold that
    /// is not finite is `null`.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256 + self.message.len());
        self.write_json(&mut out);
        out
    }

    /// [`Alert::to_json`] appended to `out`.
    pub fn write_json(&self, out: &mut String) {
        let mut o = Object::new(out);
        o.string("timestamp", &timestamp(&self.timestamp))
            .string("type", &self.kind)
            .string("severity", self.severity.name())
            .string("message", &self.message)
            .number("value", self.value)
            .number("threshold", self.threshold);
        if let Some(s) = &self.specialist {
            o.string("specialist", s);
        }
        if !self.labels.is_empty() {
            o.strings("labels", pairs(&self.labels));
        }
        o.string("status", self.status.name())
            .string("fingerprint", &self.fingerprint)
            .string("starts_at", &timestamp(&self.starts_at));
        if let Some(t) = &self.ends_at {
            o.string("ends_at", &timestamp(t));
        }
        if !self.annotations.is_empty() {
            o.strings("annotations", pairs(&self.annotations));
        }
        o.end();
    }
}

fn pairs(map: &BTreeMap<String, String>) -> impl Iterator<Item = (&str, &str)> {
    map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// An instant as the alert JSON writes it: RFC 3339, UTC, microseconds
/// (`2024-01-15T10:30:45.123456Z`), as every time of the host's JSON.
pub fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Appends `t` as a JSON string in the [`timestamp`] form.
pub fn write_timestamp(out: &mut String, t: &DateTime<Utc>) {
    write_string(out, &timestamp(t));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn firing() -> Alert {
        Alert {
            timestamp: at("2024-01-15T10:30:45.123456789Z"),
            kind: "error_rate_high".into(),
            severity: Severity::Warning,
            message: "Error rate is 15.3% (threshold: 10.0%)".into(),
            value: 15.3,
            threshold: 10.0,
            specialist: Some("api-ui-designer".into()),
            labels: [("specialist".into(), "api-ui-designer".into())].into(),
            status: Status::Firing,
            fingerprint: "5e3b7c0d2a1f9e84".into(),
            starts_at: at("2024-01-15T10:25:45Z"),
            ends_at: None,
            annotations: [
                (
                    "summary".into(),
                    "Error rate is 15.3% (threshold: 10.0%)".into(),
                ),
                (
                    "description".into(),
                    "3 of 20 executions failed in the last 5 minutes".into(),
                ),
            ]
            .into(),
        }
    }

    #[test]
    fn the_alert_json_is_pinned() {
        assert_eq!(
            firing().to_json(),
            concat!(
                r#"{"timestamp":"2024-01-15T10:30:45.123456Z","type":"error_rate_high","#,
                r#""severity":"warning","message":"Error rate is 15.3% (threshold: 10.0%)","#,
                r#""value":15.3,"threshold":10.0,"specialist":"api-ui-designer","#,
                r#""labels":{"specialist":"api-ui-designer"},"status":"firing","#,
                r#""fingerprint":"5e3b7c0d2a1f9e84","starts_at":"2024-01-15T10:25:45.000000Z","#,
                r#""annotations":{"description":"3 of 20 executions failed in the last 5 minutes","#,
                r#""summary":"Error rate is 15.3% (threshold: 10.0%)"}}"#
            )
        );
        let resolved = Alert {
            severity: Severity::Critical,
            specialist: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            status: Status::Resolved,
            ends_at: Some(at("2024-01-15T10:40:00.5Z")),
            value: f64::NAN,
            message: "quote \" and\nnewline".into(),
            ..firing()
        };
        assert_eq!(
            resolved.to_json(),
            concat!(
                r#"{"timestamp":"2024-01-15T10:30:45.123456Z","type":"error_rate_high","#,
                r#""severity":"critical","message":"quote \" and\nnewline","#,
                r#""value":null,"threshold":10.0,"status":"resolved","#,
                r#""fingerprint":"5e3b7c0d2a1f9e84","starts_at":"2024-01-15T10:25:45.000000Z","#,
                r#""ends_at":"2024-01-15T10:40:00.500000Z"}"#
            )
        );
    }

    #[test]
    fn identity_is_the_given_fingerprint_else_computed() {
        let mut a = firing();
        assert_eq!(a.identity(), "5e3b7c0d2a1f9e84");
        a.fingerprint.clear();
        assert_eq!(
            a.identity(),
            fingerprint("error_rate_high", Some("api-ui-designer"), [])
        );
        // Without the field, a specialist label is still shown as the specialist, but
        // is not part of the identity (the fingerprint's arguments win over labels).
        a.specialist = None;
        assert_eq!(a.specialist(), Some("api-ui-designer"));
        assert_eq!(a.identity(), fingerprint("error_rate_high", None, []));
    }

    #[test]
    fn identity_is_type_and_labels_in_any_order() {
        let a = fingerprint(
            "error_rate_high",
            Some("ops"),
            [("team", "a"), ("env", "x")],
        );
        let b = fingerprint(
            "error_rate_high",
            Some("ops"),
            [("env", "x"), ("team", "a")],
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(
            a,
            fingerprint(
                "error_rate_high",
                Some("dev"),
                [("team", "a"), ("env", "x")]
            )
        );
        assert_ne!(
            a,
            fingerprint("error_rate_high", None, [("team", "a"), ("env", "x")])
        );
        assert_ne!(
            a,
            fingerprint(
                "p95_duration_high",
                Some("ops"),
                [("team", "a"), ("env", "x")]
            )
        );
        // A specialist label and the argument are the same identity.
        assert_eq!(
            fingerprint("t", Some("ops"), []),
            fingerprint("t", Some("ops"), [("specialist", "other")])
        );
    }

    #[test]
    fn fingerprints_never_change_between_versions() {
        // Pinned: alert histories and Alertmanager silences keep them.
        assert_eq!(fingerprint("x", None, []), "d240efc3896bf266");
        assert_eq!(
            fingerprint(
                "error_rate_high",
                Some("api-ui-designer"),
                [("team", "web")]
            ),
            "ffe2bba7a942173d"
        );
    }
}
