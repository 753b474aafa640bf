//! The webhook notifier: POSTs alerts to one URL the manifest grants, in one of three
//! formats ([`config::Format`]):
//!
//! * `json`: one POST per call, a JSON array of the call's alerts, each the alert JSON
//!   (`metaclaude_formats::alerts::Alert::to_json`, what the host's alert history holds).
//!   One POST per call, not per alert: the host retries a failed call whole, so a call is
//!   delivered whole or again, never half.
//! * `slack`: one POST per call, `{"text": ...}` with a line per alert ([`slack`]).
//! * `alertmanager-webhook`: Alertmanager's webhook payload, one POST per group of alerts
//!   ([`alertmanager_webhook`]), for receivers written for Alertmanager.
//!
//! Every POST carries `Content-Type: application/json` and the configured headers (e.g.
//! `Authorization`). An answer other than 2xx fails the call with its status and the
//! start of its body (the host retries the call later); errors name the URL without its
//! path, which may be a secret (a Slack webhook's is).

pub mod alertmanager_webhook;
pub mod config;
pub mod slack;

use metaclaude_formats::alerts::Alert;

use config::{Config, Format};

/// The bodies to POST for one call, in order (none for no alerts).
pub fn bodies(alerts: &[Alert], config: &Config) -> Vec<String> {
    if alerts.is_empty() {
        return Vec::new();
    }
    match config.format {
        Format::Json => vec![json_array(alerts)],
        Format::Slack => vec![slack::payload(alerts)],
        Format::AlertmanagerWebhook => alertmanager_webhook::payloads(alerts, &config.alertmanager),
    }
}

/// The alerts' JSON as an array.
pub fn json_array(alerts: &[Alert]) -> String {
    let mut out = String::from("[");
    for (i, alert) in alerts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        alert.write_json(&mut out);
    }
    out.push(']');
    out
}

/// The request headers: `Content-Type`, then the configured ones (a configured
/// `Content-Type` replaces it).
pub fn headers(config: &Config) -> Vec<(String, String)> {
    let mut headers = Vec::with_capacity(config.headers.len() + 1);
    if !config
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".to_string(), "application/json".to_string()));
    }
    headers.extend(config.headers.iter().cloned());
    headers
}

#[cfg(feature = "plugin")]
mod plugin;

#[cfg(test)]
mod tests {
    use super::*;
    use metaclaude_notify::test_alerts::{firing, resolved};

    fn config(format: &str) -> Config {
        Config::parse(&format!(
            r#"{{"url":"http://127.0.0.1:9000/alerts","format":"{format}","headers":{{"Authorization":"Bearer t"}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn json_is_one_array_per_call() {
        let alert = firing();
        let gone = resolved(&alert, alert.timestamp);
        assert_eq!(
            bodies(&[alert.clone(), gone.clone()], &config("json")),
            [format!("[{},{}]", alert.to_json(), gone.to_json())]
        );
        assert!(bodies(&[], &config("json")).is_empty());
        let v: serde_json::Value =
            serde_json::from_str(&bodies(&[alert], &config("json"))[0]).unwrap();
        assert_eq!(v[0]["status"], "firing");
    }

    #[test]
    fn every_format_is_json_with_the_configured_headers() {
        for format in ["json", "slack", "alertmanager-webhook"] {
            let c = config(format);
            for body in bodies(&[firing()], &c) {
                serde_json::from_str::<serde_json::Value>(&body).unwrap();
            }
            assert_eq!(
                headers(&c),
                [
                    ("Content-Type".to_string(), "application/json".to_string()),
                    ("Authorization".to_string(), "Bearer t".to_string())
                ]
            );
        }
        let c = Config::parse(
            r#"{"url":"http://h/","headers":{"content-type":"application/json; charset=utf-8"}}"#,
        )
        .unwrap();
        assert_eq!(
            headers(&c),
            [(
                "content-type".to_string(),
                "application/json; charset=utf-8".to_string()
            )]
        );
    }
}
