//! Alertmanager's webhook payload (version 4), so a receiver written for Alertmanager's
//! `webhook_config` takes metaclaude's alerts as they are:
//!
//! ```json
//! {"receiver": "metaclaude", "status": "firing",
//!  "alerts": [{"status": "firing", "labels": {...}, "annotations": {...},
//!              "startsAt": "...", "endsAt": "0001-01-01T00:00:00Z",
//!              "generatorURL": "", "fingerprint": "..."}],
//!  "groupLabels": {"alertname": "error_rate_high"}, "commonLabels": {...},
//!  "commonAnnotations": {...}, "externalURL": "", "version": "4",
//!  "groupKey": "{}:{alertname=\"error_rate_high\"}", "truncatedAlerts": 0}
//! ```
//!
//! Keys, nesting and types are Alertmanager's own (the test against a real Alertmanager
//! compares them). As Alertmanager does, one payload is one group: a call's alerts are
//! grouped by the `group_by` labels (`groupLabels`), each group one POST; `status` is
//! `firing` when any of its alerts fires; `commonLabels` and `commonAnnotations` are what
//! all its alerts share; a firing alert's `endsAt` is Go's zero time. Labels and
//! annotations are `metaclaude_notify::alertmanager`'s. `fingerprint` is the alert's
//! identity (its type and labels without the severity, the one metaclaude's history and
//! other notifiers use), so a receiver sees one alert from warning through critical to
//! resolved.

use std::collections::BTreeMap;

use metaclaude_formats::alerts::{timestamp, Alert, Status};
use metaclaude_formats::json::{write_string, Object};
use metaclaude_notify::alertmanager::{annotations, labels, pairs, ZERO_TIME};

use crate::config::Alertmanager;

/// The payload version Alertmanager writes.
pub const VERSION: &str = "4";

/// An alert with its label set and annotations made once.
struct Prepared<'a> {
    alert: &'a Alert,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// One payload per group, groups in the order their first alert comes.
pub fn payloads(alerts: &[Alert], settings: &Alertmanager) -> Vec<String> {
    let mut groups: Vec<(BTreeMap<String, String>, Vec<Prepared>)> = Vec::new();
    for alert in alerts {
        let prepared = Prepared {
            alert,
            labels: labels(alert),
            annotations: annotations(alert),
        };
        let key = group_labels(&prepared.labels, &settings.group_by);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(prepared),
            None => groups.push((key, vec![prepared])),
        }
    }
    groups
        .iter()
        .map(|(group, members)| payload(group, members, settings))
        .collect()
}

/// The labels a group is made by: those of `group_by` the alert has, or all of them.
fn group_labels(
    labels: &BTreeMap<String, String>,
    group_by: &[String],
) -> BTreeMap<String, String> {
    if group_by.iter().any(|l| l == "...") {
        return labels.clone();
    }
    labels
        .iter()
        .filter(|(k, _)| group_by.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The pairs every map has, with the same value.
fn common<'a>(
    mut maps: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let Some(first) = maps.next() else {
        return BTreeMap::new();
    };
    let mut shared = first.clone();
    for map in maps {
        shared.retain(|k, v| map.get(k) == Some(v));
    }
    shared
}

/// Alertmanager's group key for the root route: `{}:` and the group's label set as Go
/// writes it, e.g. `{}:{alertname="error_rate_high"}`.
pub fn group_key(group: &BTreeMap<String, String>) -> String {
    let mut key = String::from("{}:{");
    for (i, (name, value)) in group.iter().enumerate() {
        if i > 0 {
            key.push_str(", ");
        }
        key.push_str(name);
        key.push('=');
        // Go's %q: the value quoted, with `"`, `\` and line breaks escaped.
        write_string(&mut key, value);
    }
    key.push('}');
    key
}

fn payload(
    group: &BTreeMap<String, String>,
    members: &[Prepared],
    settings: &Alertmanager,
) -> String {
    let firing = members.iter().any(|m| m.alert.status == Status::Firing);
    let mut out = String::with_capacity(1024 * members.len());
    let mut o = Object::new(&mut out);
    o.string("receiver", &settings.receiver)
        .string("status", if firing { "firing" } else { "resolved" });
    let alerts = o.key("alerts");
    alerts.push('[');
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            alerts.push(',');
        }
        write_alert(alerts, m, settings);
    }
    alerts.push(']');
    o.strings("groupLabels", pairs(group))
        .strings(
            "commonLabels",
            pairs(&common(members.iter().map(|m| &m.labels))),
        )
        .strings(
            "commonAnnotations",
            pairs(&common(members.iter().map(|m| &m.annotations))),
        )
        .string("externalURL", &settings.external_url)
        .string("version", VERSION)
        .string("groupKey", &group_key(group))
        .integer("truncatedAlerts", 0);
    o.end();
    out
}

fn write_alert(out: &mut String, m: &Prepared, settings: &Alertmanager) {
    let alert = m.alert;
    let ends_at = match alert.status {
        Status::Firing => ZERO_TIME.to_string(),
        Status::Resolved => timestamp(&alert.ends_at.unwrap_or(alert.timestamp)),
    };
    let mut o = Object::new(out);
    o.string("status", alert.status.name())
        .strings("labels", pairs(&m.labels))
        .strings("annotations", pairs(&m.annotations))
        .string("startsAt", &timestamp(&alert.starts_at))
        .string("endsAt", &ends_at)
        .string("generatorURL", &settings.generator_url)
        .string("fingerprint", &alert.identity());
    o.end();
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaclaude_formats::alerts::Severity;
    use metaclaude_notify::test_alerts::{firing, resolved};

    #[test]
    fn the_payload_of_one_firing_alert_is_pinned() {
        let alert = firing();
        let fingerprint = alert.fingerprint.clone();
        assert_eq!(
            payloads(&[alert], &Alertmanager::default()),
            [concat!(
                r#"{"receiver":"metaclaude","status":"firing","alerts":[{"status":"firing","#,
                r#""labels":{"alertname":"error_rate_high","severity":"warning","specialist":"api-ui-designer"},"#,
                r#""annotations":{"description":"3 of 20 executions of api-ui-designer failed in the last 5 minutes","#,
                r#""summary":"Error rate is 15.3% (threshold: 10.0%)","threshold":"10","value":"15.3"},"#,
                r#""startsAt":"2024-01-15T10:25:45.123456Z","endsAt":"0001-01-01T00:00:00Z","#,
                r#""generatorURL":"","fingerprint":"FP"}],"#,
                r#""groupLabels":{"alertname":"error_rate_high"},"#,
                r#""commonLabels":{"alertname":"error_rate_high","severity":"warning","specialist":"api-ui-designer"},"#,
                r#""commonAnnotations":{"description":"3 of 20 executions of api-ui-designer failed in the last 5 minutes","#,
                r#""summary":"Error rate is 15.3% (threshold: 10.0%)","threshold":"10","value":"15.3"},"#,
                r#""externalURL":"","version":"4","groupKey":"{}:{alertname=\"error_rate_high\"}","truncatedAlerts":0}"#
            )
            .replace("FP", &fingerprint)]
        );
    }

    #[test]
    fn alerts_are_grouped_and_share_what_they_have_in_common() {
        let a = firing();
        let mut b = firing();
        b.specialist = Some("ops".into());
        b.labels.insert("specialist".into(), "ops".into());
        b.severity = Severity::Critical;
        b.fingerprint.clear();
        let gone = resolved(&a, a.timestamp);
        let mut other = firing();
        other.kind = "p95_duration_high".into();
        let settings = Alertmanager {
            external_url: "http://127.0.0.1:8080".into(),
            ..Alertmanager::default()
        };
        let out = payloads(&[a, b.clone(), other, gone], &settings);
        assert_eq!(out.len(), 2);
        let first: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(first["status"], "firing");
        assert_eq!(first["alerts"].as_array().unwrap().len(), 3);
        assert_eq!(
            first["commonLabels"],
            serde_json::json!({"alertname": "error_rate_high"})
        );
        assert_eq!(first["externalURL"], "http://127.0.0.1:8080");
        // An alert without a fingerprint gets its identity.
        assert_eq!(first["alerts"][1]["fingerprint"], b.identity());
        assert_eq!(first["alerts"][2]["status"], "resolved");
        assert_eq!(first["alerts"][2]["endsAt"], "2024-01-15T10:30:45.123456Z");
        let second: serde_json::Value = serde_json::from_str(&out[1]).unwrap();
        assert_eq!(second["groupKey"], "{}:{alertname=\"p95_duration_high\"}");

        // A group of resolved alerts only is resolved; [] groups everything together;
        // "..." groups by every label.
        let gone = resolved(&firing(), firing().timestamp);
        let v: serde_json::Value = serde_json::from_str(&payloads(&[gone], &settings)[0]).unwrap();
        assert_eq!(v["status"], "resolved");
        let together = Alertmanager {
            group_by: vec![],
            ..Alertmanager::default()
        };
        let all = payloads(&[firing(), b.clone()], &together);
        assert_eq!(all.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&all[0]).unwrap();
        assert_eq!(v["groupLabels"], serde_json::json!({}));
        assert_eq!(v["groupKey"], "{}:{}");
        let each = Alertmanager {
            group_by: vec!["...".into()],
            ..Alertmanager::default()
        };
        assert_eq!(payloads(&[firing(), b], &each).len(), 2);
    }

    #[test]
    fn group_keys_quote_values_as_go_does() {
        let group: BTreeMap<String, String> = [
            ("alertname".to_string(), "a\"b".to_string()),
            ("specialist".to_string(), "x\\y".to_string()),
        ]
        .into();
        assert_eq!(
            group_key(&group),
            r#"{}:{alertname="a\"b", specialist="x\\y"}"#
        );
    }
}
