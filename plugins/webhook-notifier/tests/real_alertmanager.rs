//! Our `alertmanager-webhook` payload against Alertmanager's own: a real Alertmanager
//! (Debian's `prometheus-alertmanager`) routes an alert to a webhook receiver on
//! loopback, and what it posts there must have the keys, nesting and types of what this
//! notifier posts for the same alert, firing and resolved, with the same values where
//! both are defined by the alert (labels, annotations, group labels and key, status,
//! times). Fails, naming the install command, when Alertmanager is missing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use metaclaude_formats::alerts::{fingerprint, timestamp, Alert};
use metaclaude_notify::alertmanager::{annotations, labels, ZERO_TIME};
use metaclaude_notify::test_alerts::{firing_at, resolved};
use metaclaude_notify::testing::{shape, Alertmanager, Listener};
use serde_json::{json, Value};
use webhook_notifier::alertmanager_webhook::payloads;
use webhook_notifier::config::Alertmanager as Settings;

/// An alert as Alertmanager's API takes it (what the alertmanager notifier posts).
fn postable(alert: &Alert) -> String {
    let mut a = json!({
        "labels": labels(alert),
        "annotations": annotations(alert),
        "startsAt": timestamp(&alert.starts_at),
    });
    if let Some(t) = &alert.ends_at {
        a["endsAt"] = timestamp(t).into();
    }
    json!([a]).to_string()
}

/// Now, to the microsecond (what the formats write).
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn instant(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap_or_else(|e| panic!("{v}: {e}"))
        .to_utc()
}

/// Alertmanager's next webhook payload with the given status.
fn next_payload(hook: &Listener, status: &str, am: &Alertmanager) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let Some(received) = hook.next(left) else {
            break;
        };
        assert_eq!(received.path, "/hook");
        let v: Value = serde_json::from_str(&received.body)
            .unwrap_or_else(|e| panic!("{e}: {}", received.body));
        if v["status"] == status {
            return v;
        }
    }
    panic!(
        "no {status} payload from Alertmanager within 30 s\n{}",
        am.log()
    );
}

/// Values both payloads take from the alert, and the shapes of the whole.
fn compare(theirs: &Value, ours: &Value, alert: &Alert) {
    assert_eq!(
        shape(theirs),
        shape(ours),
        "\ntheirs: {theirs}\nours:   {ours}"
    );
    for key in [
        "receiver",
        "status",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "version",
        "groupKey",
        "truncatedAlerts",
    ] {
        assert_eq!(theirs[key], ours[key], "{key}");
    }
    let (t, o) = (&theirs["alerts"][0], &ours["alerts"][0]);
    for key in ["status", "labels", "annotations", "generatorURL"] {
        assert_eq!(t[key], o[key], "alerts[0].{key}");
    }
    assert_eq!(instant(&t["startsAt"]), alert.starts_at);
    match &alert.ends_at {
        None => {
            assert_eq!(t["endsAt"], ZERO_TIME);
            assert_eq!(o["endsAt"], ZERO_TIME);
        }
        Some(at) => {
            assert_eq!(instant(&t["endsAt"]), *at);
            assert_eq!(instant(&o["endsAt"]), *at);
        }
    }
    // Alertmanager's fingerprint is its label set's, severity included: the formats'
    // fingerprint of that set is the same number. Ours is the alert's identity.
    let mut set = labels(alert);
    let kind = set.remove("alertname").unwrap();
    let specialist = set.remove("specialist");
    assert_eq!(
        t["fingerprint"],
        fingerprint(
            &kind,
            specialist.as_deref(),
            set.iter().map(|(k, v)| (k.as_str(), v.as_str()))
        )
    );
    assert_eq!(o["fingerprint"], alert.identity());
}

#[test]
fn our_payload_is_shaped_as_alertmanagers_own() {
    let hook = Listener::start();
    let am = Alertmanager::start(&format!(
        r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {}
        send_resolved: true
"#,
        hook.url("/hook")
    ));
    let settings = Settings {
        receiver: "hook".into(),
        ..Settings::default()
    };
    let mut alert = firing_at(now());
    alert.labels.insert("team".into(), "web".into());
    alert
        .annotations
        .insert("runbook_url".into(), "http://127.0.0.1/runbook".into());

    let posted = am.post("/api/v2/alerts", &postable(&alert));
    assert_eq!(posted.status, 200, "{}", posted.body);
    let theirs = next_payload(&hook, "firing", &am);
    let ours: Value =
        serde_json::from_str(&payloads(std::slice::from_ref(&alert), &settings)[0]).unwrap();
    compare(&theirs, &ours, &alert);

    let gone = resolved(&alert, now());
    let posted = am.post("/api/v2/alerts", &postable(&gone));
    assert_eq!(posted.status, 200, "{}", posted.body);
    let theirs = next_payload(&hook, "resolved", &am);
    let ours: Value =
        serde_json::from_str(&payloads(std::slice::from_ref(&gone), &settings)[0]).unwrap();
    compare(&theirs, &ours, &gone);
}
