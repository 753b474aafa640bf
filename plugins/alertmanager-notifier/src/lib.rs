//! The Alertmanager notifier: posts alerts to Prometheus Alertmanager's v2 API
//! (`POST {url}/api/v2/alerts`, a JSON array of postable alerts, [`postable`]), so
//! Alertmanager's routing, grouping, silences, inhibitions and receivers take over.
//!
//! Each alert becomes Alertmanager's alert with:
//! * labels: `alertname` (the type), `severity`, `specialist` and the alert's labels
//!   (`metaclaude_notify::alertmanager`);
//! * annotations: the alert's (`description`, `runbook_url` ...), `summary` (the
//!   message), `value` and `threshold`;
//! * `startsAt`: when it started firing;
//! * `endsAt`: for a resolved alert, when it resolved; for a firing one, the POST's time
//!   plus `ends_at_horizon_s` (240 s by default), as Prometheus does (four times its
//!   resend interval): the host re-sends a firing alert every `repeat_interval_s` of the
//!   manifest's `[alerts]` (60 s), each time pushing `endsAt` on, so Alertmanager resolves
//!   the alert by itself only when the re-sends stop (metaclaude gone). With
//!   `ends_at_horizon_s = 0` there is no `endsAt`, and Alertmanager resolves a firing
//!   alert `resolve_timeout` (5 min by default) after the last one it received.
//!   `endsAt` is never before `startsAt` (Alertmanager refuses the whole POST then).
//!
//! A change of severity is a new label set for Alertmanager: the old one is posted
//! resolved alongside ([`severity`]). Any answer but 2xx fails the call (status and the
//! start of Alertmanager's message in the error) and the host retries it; what a call
//! changes in that memory is kept only once the POST succeeded.

pub mod config;
pub mod postable;
pub mod severity;

use chrono::{DateTime, Duration, Utc};
use metaclaude_formats::alerts::{Alert, Status};
use metaclaude_notify::alertmanager::{annotations, labels, labels_with_severity};

use config::Config;
use postable::Postable;
use severity::{Change, Tracker};

/// The notifier's state: its settings and the severities last posted.
#[derive(Debug)]
pub struct Notifier {
    pub config: Config,
    tracker: Tracker,
}

/// One call's POST body, and what it changes once delivered.
#[derive(Debug)]
pub struct Prepared {
    pub alerts: Vec<Postable>,
    changes: Vec<Change>,
}

impl Prepared {
    /// The body: the JSON array.
    pub fn body(&self) -> String {
        postable::encode(&self.alerts)
    }
}

impl Notifier {
    pub fn new(config: Config) -> Notifier {
        Notifier {
            config,
            tracker: Tracker::default(),
        }
    }

    /// What to post for `alerts` at `now` (empty for no alerts).
    pub fn prepare(&self, alerts: &[Alert], now: DateTime<Utc>) -> Prepared {
        let mut out = Vec::with_capacity(alerts.len());
        let mut changes: Vec<Change> = Vec::new();
        let horizon = Duration::seconds(self.config.ends_at_horizon_s as i64);
        for alert in alerts {
            let identity = alert.identity();
            let before = self.tracker.last(&identity, &changes);
            let ends_at = match alert.status {
                Status::Firing => {
                    (!horizon.is_zero()).then(|| (now + horizon).max(alert.starts_at))
                }
                Status::Resolved => Some(alert.ends_at.unwrap_or(now).max(alert.starts_at)),
            };
            out.push(Postable {
                labels: labels(alert),
                annotations: annotations(alert),
                starts_at: alert.starts_at,
                ends_at,
                generator_url: self.config.generator_url.clone(),
            });
            if let Some(old) = before.filter(|s| *s != alert.severity) {
                out.push(Postable {
                    labels: labels_with_severity(alert, old),
                    annotations: annotations(alert),
                    starts_at: alert.starts_at,
                    ends_at: Some(now.max(alert.starts_at)),
                    generator_url: self.config.generator_url.clone(),
                });
            }
            let after = match alert.status {
                Status::Firing => Some(alert.severity),
                Status::Resolved => None,
            };
            if after != before {
                changes.push((identity, after));
            }
        }
        Prepared {
            alerts: out,
            changes,
        }
    }

    /// Keeps what a delivered call changed.
    pub fn delivered(&mut self, prepared: Prepared) {
        self.tracker.apply(prepared.changes);
    }
}

#[cfg(feature = "plugin")]
mod plugin;

#[cfg(test)]
mod tests {
    use super::*;
    use metaclaude_formats::alerts::Severity;
    use metaclaude_notify::test_alerts::{firing, resolved};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn a_firing_alert_is_pinned() {
        let notifier = Notifier::new(Config::default());
        let alert = firing();
        let now = at("2024-01-15T10:30:46Z");
        assert_eq!(
            notifier.prepare(&[alert], now).body(),
            concat!(
                r#"[{"labels":{"alertname":"error_rate_high","severity":"warning","specialist":"api-ui-designer"},"#,
                r#""annotations":{"description":"3 of 20 executions of api-ui-designer failed in the last 5 minutes","#,
                r#""summary":"Error rate is 15.3% (threshold: 10.0%)","threshold":"10","value":"15.3"},"#,
                r#""startsAt":"2024-01-15T10:25:45.123456Z","endsAt":"2024-01-15T10:34:46.000000Z"}]"#
            )
        );
    }

    #[test]
    fn ends_at_follows_the_status_and_the_horizon() {
        let alert = firing();
        let now = at("2024-01-15T10:30:46Z");
        let with = |horizon: u64, generator_url: &str| {
            Notifier::new(Config {
                ends_at_horizon_s: horizon,
                generator_url: generator_url.into(),
                ..Config::default()
            })
        };
        let p = with(0, "").prepare(std::slice::from_ref(&alert), now);
        assert_eq!(p.alerts[0].ends_at, None);
        assert!(!p.body().contains("endsAt") && !p.body().contains("generatorURL"));
        let p = with(60, "http://127.0.0.1:8080/").prepare(std::slice::from_ref(&alert), now);
        assert_eq!(p.alerts[0].ends_at, Some(at("2024-01-15T10:31:46Z")));
        assert!(p
            .body()
            .ends_with(r#""generatorURL":"http://127.0.0.1:8080/"}]"#));
        // Resolved: its own end; never before its start (Alertmanager refuses that).
        let gone = resolved(&alert, at("2024-01-15T10:40:00Z"));
        let p = with(60, "").prepare(std::slice::from_ref(&gone), now);
        assert_eq!(p.alerts[0].ends_at, Some(at("2024-01-15T10:40:00Z")));
        let mut skewed = gone;
        skewed.ends_at = Some(at("2024-01-01T00:00:00Z"));
        let p = with(60, "").prepare(&[skewed], now);
        assert_eq!(p.alerts[0].ends_at, Some(alert.starts_at));
        let mut future = alert.clone();
        future.starts_at = now + Duration::hours(1);
        let p = with(60, "").prepare(&[future.clone()], now);
        assert_eq!(p.alerts[0].ends_at, Some(future.starts_at));
        assert!(with(60, "").prepare(&[], now).alerts.is_empty());
    }

    #[test]
    fn a_change_of_severity_resolves_the_old_label_set_once_delivered() {
        let mut notifier = Notifier::new(Config::default());
        let now = at("2024-01-15T10:30:46Z");
        let warning = firing();
        let p = notifier.prepare(std::slice::from_ref(&warning), now);
        assert_eq!(p.alerts.len(), 1);
        notifier.delivered(p);
        let critical = Alert {
            severity: Severity::Critical,
            ..warning.clone()
        };
        // A failed POST keeps nothing: the retry posts the same again.
        let failed = notifier.prepare(std::slice::from_ref(&critical), now);
        let p = notifier.prepare(std::slice::from_ref(&critical), now);
        assert_eq!(failed.alerts, p.alerts);
        assert_eq!(p.alerts.len(), 2);
        assert_eq!(p.alerts[0].labels["severity"], "critical");
        assert_eq!(p.alerts[0].ends_at, Some(now + Duration::seconds(240)));
        assert_eq!(p.alerts[1].labels["severity"], "warning");
        assert_eq!(p.alerts[1].ends_at, Some(now));
        notifier.delivered(p);
        // Firing again at the same severity: just the alert.
        assert_eq!(
            notifier
                .prepare(std::slice::from_ref(&critical), now)
                .alerts
                .len(),
            1
        );
        // Resolved at warning after critical: both label sets end.
        let gone = resolved(&warning, now);
        let p = notifier.prepare(&[gone], now);
        assert_eq!(p.alerts.len(), 2);
        assert_eq!(p.alerts[0].labels["severity"], "warning");
        assert_eq!(p.alerts[1].labels["severity"], "critical");
        assert!(p.alerts.iter().all(|a| a.ends_at == Some(now)));
        notifier.delivered(p);
        assert!(notifier.tracker.is_empty());
        // Within one call, changes build on each other.
        let p = notifier.prepare(
            &[warning.clone(), critical.clone(), resolved(&critical, now)],
            now,
        );
        let severities: Vec<&str> = p.alerts.iter().map(|a| &*a.labels["severity"]).collect();
        assert_eq!(severities, ["warning", "critical", "warning", "critical"]);
        notifier.delivered(p);
        assert!(notifier.tracker.is_empty());
    }
}
