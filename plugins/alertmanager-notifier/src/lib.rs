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
//! resolved alongside ([`severity`]). Any answer but 2xx fails the POST (status and the
//! start of Alertmanager's message in the error) and the host retries the call; what a
//! POST changes in that memory is kept only once it succeeded.
//!
//! # Several Alertmanagers (a cluster)
//!
//! Alertmanager's high-availability contract is that every sender posts every alert to
//! every instance, and the cluster (gossiping its notification log and silences)
//! deduplicates the notifications. So each call posts to each Alertmanager of `urls`
//! ([`Instance`]), each with its own memory of severities, and one failing never keeps
//! the others from their alerts: every instance is posted to (those failing lately last,
//! the slowest of them last, so one that hangs cannot spend the call's one deadline
//! before the others are served, [`Notifier::notify`]),
//! and the call fails only if one of them did not take its alerts, with an error naming
//! each that did not, why, and since when ([`Notifier::notify`]). The host then retries
//! the call with the same alerts (merged with newer ones): an instance that took an alert
//! in a call that failed elsewhere is not sent it again on the retries ([`Taken`]): a
//! dead instance does not make the live ones take the same POST at every retry, while a
//! firing alert still reaches each live one at least every half `ends_at_horizon_s`, which
//! keeps its `endsAt` ahead.

pub mod config;
pub mod postable;
pub mod severity;

use std::collections::HashMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use metaclaude_formats::alerts::{Alert, Severity, Status};
use metaclaude_notify::alertmanager::{annotations, labels, labels_with_severity};

use config::Config;
use postable::Postable;
use severity::{Change, Tracker, MAX_TRACKED};

/// How long an instance's record of an alert it took, in a call that failed elsewhere,
/// is kept (the host retries a call for about six minutes).
pub const TAKEN_KEPT: Duration = Duration::minutes(10);

/// The notifier's state: its settings and each Alertmanager's.
#[derive(Debug)]
pub struct Notifier {
    pub config: Config,
    instances: Vec<Instance>,
}

/// One Alertmanager: where it is, the severities last posted to it, what it took while
/// another instance failed, and its current run of failures.
#[derive(Debug)]
pub struct Instance {
    /// `{url}/api/v2/alerts`.
    pub endpoint: String,
    tracker: Tracker,
    taken: Taken,
    failing: Option<Failing>,
    /// How long its last POST took.
    last_post: Duration,
}

/// An instance's run of failed POSTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failing {
    /// When the first of them failed.
    pub since: DateTime<Utc>,
    /// How many in a row.
    pub posts: u64,
}

/// The alerts an instance took in calls that failed on another instance, by
/// fingerprint: their status and severity then, and when.
#[derive(Debug, Default)]
pub struct Taken {
    alerts: HashMap<String, (Status, Severity, DateTime<Utc>)>,
}

impl Taken {
    /// Whether the instance took `alert`, as it is now, recently enough that posting it
    /// again changes nothing: a resolved alert within [`TAKEN_KEPT`], a firing one within
    /// `refresh` (its `endsAt` is then still at least `horizon - refresh` ahead).
    fn holds(&self, alert: &Alert, now: DateTime<Utc>, refresh: Duration) -> bool {
        self.alerts
            .get(&alert.fingerprint)
            .is_some_and(|(status, severity, at)| {
                let fresh = match alert.status {
                    Status::Firing => now - *at < refresh,
                    Status::Resolved => now - *at < TAKEN_KEPT,
                };
                *status == alert.status && *severity == alert.severity && fresh
            })
    }

    fn record(&mut self, alerts: &[&Alert], now: DateTime<Utc>) {
        self.alerts.retain(|_, (_, _, at)| now - *at < TAKEN_KEPT);
        for a in alerts {
            if self.alerts.len() < MAX_TRACKED || self.alerts.contains_key(&a.fingerprint) {
                self.alerts
                    .insert(a.fingerprint.clone(), (a.status, a.severity, now));
            }
        }
    }

    /// How many alerts are recorded.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }
}

/// One POST's body, and what it changes once delivered.
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

impl Instance {
    fn new(url: &str) -> Instance {
        Instance {
            endpoint: format!("{url}{}", config::ALERTS_PATH),
            tracker: Tracker::default(),
            taken: Taken::default(),
            failing: None,
            last_post: Duration::zero(),
        }
    }

    /// Its current run of failed POSTs, if it is failing.
    pub fn failing(&self) -> Option<Failing> {
        self.failing
    }

    /// What it took while another instance failed.
    pub fn taken(&self) -> &Taken {
        &self.taken
    }

    /// What to post to it for `alerts` at `now` (empty for no alerts).
    pub fn prepare(&self, config: &Config, alerts: &[&Alert], now: DateTime<Utc>) -> Prepared {
        let mut out = Vec::with_capacity(alerts.len());
        let mut changes: Vec<Change> = Vec::new();
        let horizon = Duration::seconds(config.ends_at_horizon_s as i64);
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
                generator_url: config.generator_url.clone(),
            });
            if let Some(old) = before.filter(|s| *s != alert.severity) {
                out.push(Postable {
                    labels: labels_with_severity(alert, old),
                    annotations: annotations(alert),
                    starts_at: alert.starts_at,
                    ends_at: Some(now.max(alert.starts_at)),
                    generator_url: config.generator_url.clone(),
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

    /// Keeps what a delivered POST changed.
    pub fn delivered(&mut self, prepared: Prepared) {
        self.tracker.apply(prepared.changes);
    }
}

impl Notifier {
    pub fn new(config: Config) -> Notifier {
        let instances = config.urls.iter().map(|u| Instance::new(u)).collect();
        Notifier { config, instances }
    }

    /// The Alertmanagers, in the order of `urls`.
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    /// How long a firing alert an instance took is not posted to it again: half the
    /// horizon (its `endsAt` stays a half horizon ahead), or a minute without one
    /// (Alertmanager's `resolve_timeout` is 5 minutes by default).
    fn refresh(&self) -> Duration {
        match self.config.ends_at_horizon_s {
            0 => Duration::minutes(1),
            s => Duration::seconds(s as i64 / 2),
        }
    }

    /// Delivers `alerts` to every Alertmanager through `post(endpoint, body)` (which
    /// returns the error naming the endpoint and why), as the module doc says; `clock`
    /// is the time (now, and how long each POST took). `Ok` once every instance holds
    /// them; else the error names each instance that does not (its place in `urls`, its
    /// run of failures) and which took them.
    ///
    /// The order: healthy instances first, in the order of `urls`; then those failing,
    /// the one whose last POST was quickest first. One call's POSTs share one deadline,
    /// so an instance that hangs spends it and the POSTs after it fail at once, untried:
    /// on the retry those go before it, and take their alerts.
    pub fn notify(
        &mut self,
        alerts: &[Alert],
        clock: impl Fn() -> DateTime<Utc>,
        mut post: impl FnMut(&str, &str) -> Result<(), String>,
    ) -> Result<(), String> {
        let now = clock();
        let refresh = self.refresh();
        let mut order: Vec<usize> = (0..self.instances.len()).collect();
        order.sort_by_key(|i| {
            let instance = &self.instances[*i];
            match instance.failing {
                None => (false, Duration::zero()),
                Some(_) => (true, instance.last_post),
            }
        });
        let mut failed: Vec<(usize, String)> = Vec::new();
        let mut took: Vec<usize> = Vec::new();
        for i in order {
            let instance = &mut self.instances[i];
            let owed: Vec<&Alert> = alerts
                .iter()
                .filter(|a| !instance.taken.holds(a, now, refresh))
                .collect();
            let prepared = instance.prepare(&self.config, &owed, now);
            let result = if prepared.alerts.is_empty() {
                Ok(())
            } else {
                let started = clock();
                let result = post(&instance.endpoint, &prepared.body());
                instance.last_post = clock() - started;
                result
            };
            match result {
                Ok(()) => {
                    instance.delivered(prepared);
                    instance.taken.record(&owed, now);
                    instance.failing = None;
                    took.push(i);
                }
                Err(why) => {
                    let run = instance.failing.get_or_insert(Failing {
                        since: now,
                        posts: 0,
                    });
                    run.posts += 1;
                    failed.push((i, why));
                }
            }
        }
        if failed.is_empty() {
            // Every instance holds every alert: nothing is owed on a retry.
            for instance in &mut self.instances {
                instance.taken = Taken::default();
            }
            return Ok(());
        }
        Err(self.failure(&mut failed, &mut took))
    }

    /// The error of a call some instances failed: with one Alertmanager, its POST's error
    /// as it is; with several, each that failed by its place in `urls`, its run of
    /// failures and why, then those that took the alerts.
    fn failure(&self, failed: &mut [(usize, String)], took: &mut [usize]) -> String {
        if self.instances.len() == 1 {
            return failed[0].1.clone();
        }
        failed.sort_by_key(|(i, _)| *i);
        took.sort_unstable();
        let total = self.instances.len();
        let mut parts: Vec<String> = failed
            .iter()
            .map(|(i, why)| {
                let run = self.instances[*i].failing.expect("a failed instance is failing");
                format!(
                    "Alertmanager {} of {total} did not take the alerts ({} in a row since {}): {why}",
                    i + 1,
                    match run.posts {
                        1 => "1 failed POST".to_string(),
                        n => format!("{n} failed POSTs"),
                    },
                    run.since.to_rfc3339_opts(SecondsFormat::Secs, true),
                )
            })
            .collect();
        if !took.is_empty() {
            let names: Vec<&str> = took.iter().map(|i| self.config.urls[*i].as_str()).collect();
            parts.push(format!(
                "{} of {total} took them ({}; not posted again on the retries)",
                took.len(),
                names.join(", ")
            ));
        }
        parts.join("; ")
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

    /// One Alertmanager's state, and its settings.
    fn instance(config: Config) -> (Instance, Config) {
        (Instance::new(&config.urls[0]), config)
    }

    #[test]
    fn a_firing_alert_is_pinned() {
        let (instance, config) = instance(Config::default());
        let alert = firing();
        let now = at("2024-01-15T10:30:46Z");
        assert_eq!(
            instance.prepare(&config, &[&alert], now).body(),
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
        let with = |horizon: u64, generator_url: &str, alert: &Alert| {
            let (instance, config) = instance(Config {
                ends_at_horizon_s: horizon,
                generator_url: generator_url.into(),
                ..Config::default()
            });
            instance.prepare(&config, &[alert], now)
        };
        let p = with(0, "", &alert);
        assert_eq!(p.alerts[0].ends_at, None);
        assert!(!p.body().contains("endsAt") && !p.body().contains("generatorURL"));
        let p = with(60, "http://127.0.0.1:8080/", &alert);
        assert_eq!(p.alerts[0].ends_at, Some(at("2024-01-15T10:31:46Z")));
        assert!(p
            .body()
            .ends_with(r#""generatorURL":"http://127.0.0.1:8080/"}]"#));
        // Resolved: its own end; never before its start (Alertmanager refuses that).
        let gone = resolved(&alert, at("2024-01-15T10:40:00Z"));
        let p = with(60, "", &gone);
        assert_eq!(p.alerts[0].ends_at, Some(at("2024-01-15T10:40:00Z")));
        let mut skewed = gone;
        skewed.ends_at = Some(at("2024-01-01T00:00:00Z"));
        let p = with(60, "", &skewed);
        assert_eq!(p.alerts[0].ends_at, Some(alert.starts_at));
        let mut future = alert.clone();
        future.starts_at = now + Duration::hours(1);
        let p = with(60, "", &future);
        assert_eq!(p.alerts[0].ends_at, Some(future.starts_at));
        let (empty, config) = instance(Config::default());
        assert!(empty.prepare(&config, &[], now).alerts.is_empty());
    }

    #[test]
    fn a_change_of_severity_resolves_the_old_label_set_once_delivered() {
        let (mut notifier, config) = instance(Config::default());
        let now = at("2024-01-15T10:30:46Z");
        let warning = firing();
        let p = notifier.prepare(&config, &[&warning], now);
        assert_eq!(p.alerts.len(), 1);
        notifier.delivered(p);
        let critical = Alert {
            severity: Severity::Critical,
            ..warning.clone()
        };
        // A failed POST keeps nothing: the retry posts the same again.
        let failed = notifier.prepare(&config, &[&critical], now);
        let p = notifier.prepare(&config, &[&critical], now);
        assert_eq!(failed.alerts, p.alerts);
        assert_eq!(p.alerts.len(), 2);
        assert_eq!(p.alerts[0].labels["severity"], "critical");
        assert_eq!(p.alerts[0].ends_at, Some(now + Duration::seconds(240)));
        assert_eq!(p.alerts[1].labels["severity"], "warning");
        assert_eq!(p.alerts[1].ends_at, Some(now));
        notifier.delivered(p);
        // Firing again at the same severity: just the alert.
        assert_eq!(notifier.prepare(&config, &[&critical], now).alerts.len(), 1);
        // Resolved at warning after critical: both label sets end.
        let gone = resolved(&warning, now);
        let p = notifier.prepare(&config, &[&gone], now);
        assert_eq!(p.alerts.len(), 2);
        assert_eq!(p.alerts[0].labels["severity"], "warning");
        assert_eq!(p.alerts[1].labels["severity"], "critical");
        assert!(p.alerts.iter().all(|a| a.ends_at == Some(now)));
        notifier.delivered(p);
        assert!(notifier.tracker.is_empty());
        // Within one call, changes build on each other.
        let gone = resolved(&critical, now);
        let p = notifier.prepare(&config, &[&warning, &critical, &gone], now);
        let severities: Vec<&str> = p.alerts.iter().map(|a| &*a.labels["severity"]).collect();
        assert_eq!(severities, ["warning", "critical", "warning", "critical"]);
        notifier.delivered(p);
        assert!(notifier.tracker.is_empty());
    }

    /// A pair of Alertmanagers behind a fake POST: `down` lists the endpoints that fail,
    /// `hanging` those that fail once the call's deadline (27 s) has passed, and every
    /// POST after one of them fails at once; `posts` each POST made (endpoint, alertnames
    /// and severities posted).
    struct Pair {
        notifier: Notifier,
        down: Vec<String>,
        hanging: Vec<String>,
        posts: Vec<Post>,
    }

    /// A POST made: the endpoint, and each alert posted as "alertname severity".
    type Post = (String, Vec<String>);

    const A: &str = "http://a:9093/api/v2/alerts";
    const B: &str = "http://b:9093/api/v2/alerts";

    impl Pair {
        fn new() -> Pair {
            Pair {
                notifier: Notifier::new(Config {
                    urls: vec!["http://a:9093".into(), "http://b:9093".into()],
                    ..Config::default()
                }),
                down: Vec::new(),
                hanging: Vec::new(),
                posts: Vec::new(),
            }
        }

        /// One call; the POSTs it made.
        fn notify(
            &mut self,
            alerts: &[Alert],
            now: DateTime<Utc>,
        ) -> (Result<(), String>, Vec<Post>) {
            let before = self.posts.len();
            let (down, hanging, posts) = (&self.down, &self.hanging, &mut self.posts);
            let clock = std::cell::Cell::new(now);
            let deadline = now + Duration::seconds(27);
            let result = self.notifier.notify(
                alerts,
                || clock.get(),
                |endpoint, body| {
                    let sent: Vec<serde_json::Value> = serde_json::from_str(body).unwrap();
                    let names = sent
                        .iter()
                        .map(|a| {
                            format!(
                                "{} {}",
                                a["labels"]["alertname"].as_str().unwrap(),
                                a["labels"]["severity"].as_str().unwrap()
                            )
                        })
                        .collect();
                    posts.push((endpoint.to_string(), names));
                    if clock.get() >= deadline {
                        Err(format!("POST {endpoint}: the call's deadline passed"))
                    } else if hanging.iter().any(|h| h == endpoint) {
                        clock.set(deadline);
                        Err(format!("POST {endpoint}: the call's deadline passed"))
                    } else if down.iter().any(|d| d == endpoint) {
                        Err(format!("POST {endpoint}: connection refused"))
                    } else {
                        Ok(())
                    }
                },
            );
            (result, self.posts[before..].to_vec())
        }
    }

    fn named(kind: &str) -> Alert {
        let mut a = firing();
        a.kind = kind.into();
        a.fingerprint.clear();
        a.fingerprint = a.identity();
        a
    }

    fn post(endpoint: &str, names: &[&str]) -> Post {
        (
            endpoint.to_string(),
            names.iter().map(|n| n.to_string()).collect(),
        )
    }

    #[test]
    fn every_alertmanager_is_posted_every_alert() {
        let mut pair = Pair::new();
        let t = at("2024-01-15T10:30:46Z");
        let x = named("x");
        let (result, posts) = pair.notify(std::slice::from_ref(&x), t);
        assert_eq!(result, Ok(()));
        assert_eq!(posts, [post(A, &["x warning"]), post(B, &["x warning"])]);
        // A re-send goes to both again (it moves endsAt on).
        let (_, posts) = pair.notify(std::slice::from_ref(&x), t + Duration::seconds(60));
        assert_eq!(posts.len(), 2);
        assert!(pair
            .notifier
            .instances()
            .iter()
            .all(|i| i.taken().is_empty()));
    }

    #[test]
    fn a_dead_alertmanager_holds_up_no_other_and_the_live_one_is_not_posted_again() {
        let mut pair = Pair::new();
        pair.down.push(B.into());
        let t = at("2024-01-15T10:30:46Z");
        let x = named("x");
        let (result, posts) = pair.notify(std::slice::from_ref(&x), t);
        assert_eq!(posts, [post(A, &["x warning"]), post(B, &["x warning"])]);
        assert_eq!(
            result.unwrap_err(),
            "Alertmanager 2 of 2 did not take the alerts (1 failed POST in a row since 2024-01-15T10:30:46Z): \
             POST http://b:9093/api/v2/alerts: connection refused; \
             1 of 2 took them (http://a:9093; not posted again on the retries)"
        );
        // The host's retry, merged with a new alert: A is posted only the new one.
        let y = named("y");
        let (result, posts) = pair.notify(&[x.clone(), y.clone()], t + Duration::seconds(1));
        assert_eq!(
            posts,
            [
                post(A, &["y warning"]),
                post(B, &["x warning", "y warning"])
            ]
        );
        assert!(result
            .unwrap_err()
            .starts_with("Alertmanager 2 of 2 did not take the alerts (2 failed POSTs in a row since 2024-01-15T10:30:46Z)"));
        // A retry with nothing new: A is not posted at all.
        let (_, posts) = pair.notify(&[x.clone(), y.clone()], t + Duration::seconds(3));
        assert_eq!(posts, [post(B, &["x warning", "y warning"])]);
        // A change is news: resolved, x goes to A again.
        let gone = resolved(&x, t + Duration::seconds(4));
        let (_, posts) = pair.notify(&[gone.clone(), y.clone()], t + Duration::seconds(7));
        assert_eq!(
            posts,
            [
                post(A, &["x warning"]),
                post(B, &["x warning", "y warning"])
            ]
        );
        // Half the horizon on, a firing alert goes to A again, to keep its endsAt ahead.
        let later = t + Duration::seconds(121);
        let (_, posts) = pair.notify(&[gone.clone(), y.clone()], later);
        assert_eq!(
            posts,
            [
                post(A, &["y warning"]),
                post(B, &["x warning", "y warning"])
            ]
        );
        // B is back: it takes what it owes, A nothing, and the call succeeds.
        pair.down.clear();
        let (result, posts) = pair.notify(&[gone, y], later + Duration::seconds(60));
        assert_eq!(result, Ok(()));
        assert_eq!(posts, [post(B, &["x warning", "y warning"])]);
        assert!(pair
            .notifier
            .instances()
            .iter()
            .all(|i| i.taken().is_empty() && i.failing().is_none()));
    }

    #[test]
    fn an_instance_failing_lately_is_posted_last_and_every_failure_is_named() {
        let mut pair = Pair::new();
        pair.down.push(A.into());
        let t = at("2024-01-15T10:30:46Z");
        let x = named("x");
        let (_, posts) = pair.notify(std::slice::from_ref(&x), t);
        assert_eq!(posts[0].0, A);
        // A failed: B goes first now, so an A that hangs cannot use up the call's time.
        let (_, posts) = pair.notify(std::slice::from_ref(&x), t + Duration::seconds(1));
        assert_eq!(posts, [post(A, &["x warning"])], "B took x already");
        let y = named("y");
        let (_, posts) = pair.notify(&[x.clone(), y], t + Duration::seconds(2));
        assert_eq!(posts[0].0, B);
        // Both down: both named, in the order of urls.
        pair.down.push(B.into());
        let z = named("z");
        let (result, _) = pair.notify(std::slice::from_ref(&z), t + Duration::seconds(3));
        assert_eq!(
            result.unwrap_err(),
            "Alertmanager 1 of 2 did not take the alerts (4 failed POSTs in a row since 2024-01-15T10:30:46Z): \
             POST http://a:9093/api/v2/alerts: connection refused; \
             Alertmanager 2 of 2 did not take the alerts (1 failed POST in a row since 2024-01-15T10:30:49Z): \
             POST http://b:9093/api/v2/alerts: connection refused"
        );
    }

    #[test]
    fn one_that_hangs_holds_up_the_other_for_one_call_at_most() {
        let mut pair = Pair::new();
        pair.hanging.push(A.into());
        let t = at("2024-01-15T10:30:46Z");
        let x = named("x");
        // A spends the call's deadline; B, after it, fails at once, untried.
        let (result, posts) = pair.notify(std::slice::from_ref(&x), t);
        assert_eq!(posts, [post(A, &["x warning"]), post(B, &["x warning"])]);
        assert!(result
            .unwrap_err()
            .contains("Alertmanager 2 of 2 did not take"));
        // The retry: B failed quicker, it goes first and takes the alert.
        let (result, posts) = pair.notify(std::slice::from_ref(&x), t + Duration::seconds(28));
        assert_eq!(posts, [post(B, &["x warning"]), post(A, &["x warning"])]);
        let err = result.unwrap_err();
        assert!(
            err.starts_with("Alertmanager 1 of 2 did not take the alerts (2 failed POSTs")
                && err
                    .ends_with("1 of 2 took them (http://b:9093; not posted again on the retries)"),
            "{err}"
        );
        // And B is healthy now: first in the next call, which owes it nothing.
        let (_, posts) = pair.notify(std::slice::from_ref(&x), t + Duration::seconds(57));
        assert_eq!(posts, [post(A, &["x warning"])]);
    }

    #[test]
    fn one_alertmanager_fails_with_its_posts_error_as_it_is() {
        let mut notifier = Notifier::new(Config::default());
        let err = notifier
            .notify(
                &[firing()],
                || at("2024-01-15T10:30:46Z"),
                |endpoint, _| Err(format!("POST {endpoint}: HTTP 503")),
            )
            .unwrap_err();
        assert_eq!(err, "POST http://127.0.0.1:9093/api/v2/alerts: HTTP 503");
        assert!(notifier.instances()[0].taken().is_empty());
    }
}
