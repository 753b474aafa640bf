//! The notifier's posts against a real Alertmanager (Debian's `prometheus-alertmanager`,
//! started on a free loopback port with a fresh storage directory and no clustering):
//! a firing alert shows up active with our labels, annotations and times; a change of
//! severity leaves only the new label set active; the resolved alert is gone. Alertmanager
//! is polled (bounded) for each state. Fails, naming the install command, when
//! Alertmanager is missing.

use std::time::Duration;

use alertmanager_notifier::config::Config;
use alertmanager_notifier::Notifier;
use chrono::{DateTime, Utc};
use metaclaude_formats::alerts::{fingerprint, Alert, Severity};
use metaclaude_notify::alertmanager::{annotations, labels};
use metaclaude_notify::http::check_response;
use metaclaude_notify::test_alerts::{firing_at, resolved};
use metaclaude_notify::testing::{wait_for, Alertmanager};
use serde_json::Value;

const CONFIG: &str = r#"
route:
  receiver: "null"
receivers:
  - name: "null"
"#;

/// Now, to the microsecond (what the formats write).
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

/// A time of Alertmanager's API, which writes milliseconds, as milliseconds.
fn millis(v: &Value) -> i64 {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap_or_else(|e| panic!("{v}: {e}"))
        .timestamp_millis()
}

/// Has the notifier deliver `alerts` to Alertmanager, posting as the plugin does.
fn notify(am: &Alertmanager, notifier: &mut Notifier, alerts: &[Alert], at: DateTime<Utc>) {
    notifier
        .notify(
            alerts,
            || at,
            |endpoint, body| {
                assert_eq!(endpoint, format!("{}/api/v2/alerts", am.url()));
                let answer = am.post("/api/v2/alerts", body);
                check_response(endpoint, answer.status, &[], answer.body.as_bytes())
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", am.log()));
}

/// Alertmanager's alerts named `error_rate_high`, once `ready` holds for them.
fn our_alerts(am: &Alertmanager, what: &str, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    wait_for(what, Duration::from_secs(30), |last| {
        let answer = am.get("/api/v2/alerts");
        let all: Vec<Value> = serde_json::from_str(&answer.body).ok()?;
        let ours: Vec<Value> = all
            .into_iter()
            .filter(|a| a["labels"]["alertname"] == "error_rate_high")
            .collect();
        *last = serde_json::to_string(&ours).unwrap();
        ready(&ours).then_some(ours)
    })
}

fn severity_of(a: &Value) -> &str {
    a["labels"]["severity"].as_str().unwrap()
}

#[test]
fn alertmanager_shows_what_the_notifier_posts() {
    let am = Alertmanager::start(CONFIG);
    let mut notifier = Notifier::new(Config {
        urls: vec![am.url()],
        ..Config::default()
    });

    // Firing: active, with our labels, annotations and times.
    let mut alert = firing_at(now());
    alert.labels.insert("team".into(), "web".into());
    alert
        .annotations
        .insert("runbook_url".into(), "http://127.0.0.1/runbook".into());
    let posted_at = now();
    notify(&am, &mut notifier, std::slice::from_ref(&alert), posted_at);
    let shown = our_alerts(&am, "the firing alert active", |a| {
        a.len() == 1 && a[0]["status"]["state"] == "active"
    });
    let a = &shown[0];
    let expected_labels = labels(&alert);
    assert_eq!(a["labels"], serde_json::to_value(&expected_labels).unwrap());
    assert_eq!(
        a["annotations"],
        serde_json::to_value(annotations(&alert)).unwrap()
    );
    assert_eq!(a["annotations"]["summary"], alert.message);
    assert_eq!(a["annotations"]["value"], "15.3");
    assert_eq!(millis(&a["startsAt"]), alert.starts_at.timestamp_millis());
    assert_eq!(
        millis(&a["endsAt"]),
        (posted_at + chrono::Duration::seconds(240)).timestamp_millis()
    );
    // Alertmanager's fingerprint of the label set is the formats' fingerprint of it.
    let mut rest = expected_labels.clone();
    rest.remove("alertname");
    let specialist = rest.remove("specialist");
    assert_eq!(
        a["fingerprint"],
        fingerprint(
            "error_rate_high",
            specialist.as_deref(),
            rest.iter().map(|(k, v)| (k.as_str(), v.as_str()))
        )
    );

    // Critical now: the critical label set is active, the warning one resolved (gone).
    let critical = Alert {
        severity: Severity::Critical,
        message: "Error rate is 30.0% (threshold: 25.0%)".into(),
        value: 30.0,
        threshold: 25.0,
        timestamp: now(),
        ..alert.clone()
    };
    notify(&am, &mut notifier, std::slice::from_ref(&critical), now());
    let shown = our_alerts(&am, "only the critical alert active", |a| {
        a.len() == 1 && severity_of(&a[0]) == "critical" && a[0]["status"]["state"] == "active"
    });
    assert_eq!(shown[0]["annotations"]["threshold"], "25");

    // Resolved: gone from the active alerts.
    let gone = resolved(&critical, now());
    notify(&am, &mut notifier, &[gone], now());
    our_alerts(&am, "the resolved alert gone", |a| a.is_empty());
}

#[test]
fn a_refusal_names_the_status_and_alertmanagers_message() {
    let am = Alertmanager::start(CONFIG);
    let answer = am.post(
        "/api/v2/alerts",
        r#"[{"labels":{},"startsAt":"2024-01-15T10:25:45Z"}]"#,
    );
    let err = check_response(
        "http://am/api/v2/alerts",
        answer.status,
        &[],
        answer.body.as_bytes(),
    )
    .unwrap_err();
    assert!(
        err.starts_with("POST http://am/api/v2/alerts: HTTP 400: ") && err.contains("label"),
        "{err}"
    );
}
