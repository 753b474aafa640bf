//! [`Alert`]: what an evaluation returns, field for field the WIT's `alert` record.

use metaclaude_formats::alerts::{fingerprint, SPECIALIST};

use crate::lifecycle::{Report, Severity, Status};
use crate::rules::Rule;
use crate::time::Time;

#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// The evaluation's time.
    pub timestamp: Time,
    /// The alert's type, e.g. `error_rate_high`.
    pub kind: &'static str,
    pub severity: Severity,
    pub message: String,
    pub value: f64,
    pub threshold: f64,
    pub specialist: Option<String>,
    /// `specialist` when the alert is about one; empty otherwise.
    pub labels: Vec<(String, String)>,
    pub status: Status,
    /// `metaclaude_formats::alerts::fingerprint` of the type and labels.
    pub fingerprint: String,
    pub starts_at: Time,
    pub ends_at: Option<Time>,
    /// `summary` (the message), `description`, and `runbook_url` when configured.
    pub annotations: Vec<(String, String)>,
}

impl Alert {
    /// The alert `rule` reports about `specialist` (or every execution) at `now`.
    /// `runbook_url` has `{type}` replaced by the alert's type.
    pub fn new(
        rule: Rule,
        specialist: Option<&str>,
        report: Report,
        now: Time,
        runbook_url: Option<&str>,
    ) -> Alert {
        let kind = rule.kind();
        let o = report.observation;
        let mut annotations = vec![
            ("summary".to_string(), o.message.clone()),
            ("description".to_string(), o.description),
        ];
        if let Some(url) = runbook_url {
            annotations.push(("runbook_url".to_string(), url.replace("{type}", kind)));
        }
        Alert {
            timestamp: now,
            kind,
            severity: o.severity,
            message: o.message,
            value: o.value,
            threshold: o.threshold,
            specialist: specialist.map(str::to_string),
            labels: specialist
                .map(|s| vec![(SPECIALIST.to_string(), s.to_string())])
                .unwrap_or_default(),
            status: report.status,
            fingerprint: fingerprint(kind, specialist, []),
            starts_at: report.starts_at,
            ends_at: report.ends_at,
            annotations,
        }
    }

    /// The annotation `name`, if it has one.
    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
