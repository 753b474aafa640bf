//! An alert in Alertmanager's terms: its label set and annotations, as both Alertmanager's
//! API (the alertmanager notifier) and Alertmanager's webhook payload (the webhook
//! notifier) carry them.
//!
//! Labels: the alert's own, then `alertname` (the type), `severity` and `specialist`,
//! which win over labels of the same names. Annotations: the alert's own, `summary` (the
//! message, unless the alert has one), and `value` and `threshold` (always the alert's
//! figures). Alertmanager takes label and annotation names of `[a-zA-Z_][a-zA-Z0-9_]*`
//! only and refuses a whole request over one bad name, so any other character is made
//! `_` (a leading digit gets a `_` before it); a label with an empty value is left out,
//! as Prometheus treats it as no label.

use std::collections::BTreeMap;

use metaclaude_formats::alerts::{Alert, Severity, ALERTNAME, SPECIALIST};
use metaclaude_formats::prometheus::format_value;

/// The label of the severity.
pub const SEVERITY: &str = "severity";

/// How Go, and so Alertmanager's webhook, writes a time that is not set (the `endsAt` of
/// a firing alert).
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `name` as a valid label name, `None` when nothing is left of it.
pub fn label_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    Some(out)
}

/// Names made valid, empty values left out; of two names that become the same, the
/// first (in name order) is kept.
fn valid(map: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in map {
        if value.is_empty() {
            continue;
        }
        if let Some(name) = label_name(name) {
            out.entry(name).or_insert_with(|| value.clone());
        }
    }
    out
}

/// The alert's label set with its own severity.
pub fn labels(alert: &Alert) -> BTreeMap<String, String> {
    labels_with_severity(alert, alert.severity)
}

/// The alert's label set as it was (or would be) at `severity`: an alert that changed
/// severity is another label set for Alertmanager.
pub fn labels_with_severity(alert: &Alert, severity: Severity) -> BTreeMap<String, String> {
    let mut labels = valid(&alert.labels);
    labels.remove(SPECIALIST);
    if !alert.kind.is_empty() {
        labels.insert(ALERTNAME.into(), alert.kind.clone());
    }
    labels.insert(SEVERITY.into(), severity.name().into());
    if let Some(s) = alert.specialist().filter(|s| !s.is_empty()) {
        labels.insert(SPECIALIST.into(), s.into());
    }
    labels
}

/// The alert's annotations: its own, `summary`, `value` and `threshold`.
pub fn annotations(alert: &Alert) -> BTreeMap<String, String> {
    let mut annotations = valid(&alert.annotations);
    if !alert.message.is_empty() {
        annotations
            .entry("summary".into())
            .or_insert_with(|| alert.message.clone());
    }
    annotations.insert("value".into(), format_value(alert.value));
    annotations.insert("threshold".into(), format_value(alert.threshold));
    annotations
}

/// Name and value pairs of a map, for `metaclaude_formats::json::Object::strings`.
pub fn pairs(map: &BTreeMap<String, String>) -> impl Iterator<Item = (&str, &str)> {
    map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_alerts::firing;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_label_set_is_type_severity_specialist_and_the_alerts_labels() {
        let mut alert = firing();
        alert.labels.insert("team".into(), "web".into());
        assert_eq!(
            labels(&alert),
            map(&[
                ("alertname", "error_rate_high"),
                ("severity", "warning"),
                ("specialist", "api-ui-designer"),
                ("team", "web"),
            ])
        );
        assert_eq!(
            labels_with_severity(&alert, Severity::Critical)["severity"],
            "critical"
        );
        // The alert's fields win over labels of the same names.
        alert.labels.insert("alertname".into(), "spoof".into());
        alert.labels.insert("severity".into(), "info".into());
        alert.labels.insert("specialist".into(), "other".into());
        let l = labels(&alert);
        assert_eq!(
            (&*l["alertname"], &*l["severity"], &*l["specialist"]),
            ("error_rate_high", "warning", "api-ui-designer")
        );
        // Without a specialist there is no such label.
        alert.specialist = None;
        alert.labels.remove("specialist");
        assert!(!labels(&alert).contains_key("specialist"));
    }

    #[test]
    fn names_are_made_valid_and_empty_values_left_out() {
        assert_eq!(label_name("team"), Some("team".into()));
        assert_eq!(label_name("k8s.io/app"), Some("k8s_io_app".into()));
        assert_eq!(label_name("9lives"), Some("_9lives".into()));
        assert_eq!(label_name("é"), Some("_".into()));
        assert_eq!(label_name(""), None);
        let mut alert = firing();
        alert.labels = map(&[("a-b", "first"), ("a.b", "second"), ("gone", "")]);
        let l = labels(&alert);
        assert_eq!(l.get("a_b").map(String::as_str), Some("first"));
        assert!(!l.contains_key("gone"));
        for name in l.keys() {
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        }
    }

    #[test]
    fn annotations_carry_summary_value_and_threshold() {
        let alert = firing();
        assert_eq!(
            annotations(&alert),
            map(&[
                (
                    "description",
                    "3 of 20 executions of api-ui-designer failed in the last 5 minutes"
                ),
                ("summary", "Error rate is 15.3% (threshold: 10.0%)"),
                ("threshold", "10"),
                ("value", "15.3"),
            ])
        );
        let mut bare = firing();
        bare.annotations.clear();
        bare.annotations.insert("value".into(), "spoof".into());
        bare.value = f64::NAN;
        let a = annotations(&bare);
        assert_eq!(a["summary"], bare.message);
        assert_eq!(a["value"], "NaN");
    }
}
