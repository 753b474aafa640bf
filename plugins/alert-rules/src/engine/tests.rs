//! The rules end to end, on an injected clock: executions in, evaluations at chosen
//! instants, alerts out.

use metaclaude_formats::alerts::fingerprint;
use metaclaude_formats::finished::Finished;

use super::AlertRules;
use crate::alert::Alert;
use crate::config::Config;
use crate::lifecycle::{Severity, Status};
use crate::time::Time;

/// 2024-01-15T10:30:00Z: the first microsecond of a 15 s interval (the default window's).
const T0: f64 = 1_705_314_600.0;

fn t(seconds: f64) -> Time {
    Time::from_seconds(T0 + seconds)
}

/// A successful execution finished at `seconds`: 1 s, 100 MB, no specialist.
fn run(seconds: f64) -> Finished {
    Finished {
        script: "hello".into(),
        specialist: None,
        success: true,
        category: None,
        duration_seconds: 1.0,
        memory_peak_mb: 100.0,
        cpu_time_seconds: 0.5,
        retries: 0,
        at: T0 + seconds,
    }
}

fn failed(seconds: f64) -> Finished {
    Finished {
        success: false,
        category: Some("EXECUTION".into()),
        ..run(seconds)
    }
}

fn of(specialist: &str, f: Finished) -> Finished {
    Finished {
        specialist: Some(specialist.into()),
        ..f
    }
}

fn rules(json: &str) -> AlertRules {
    AlertRules::new(Config::parse(json).unwrap())
}

/// What the host does with a batch: counts each execution, then evaluates at `now`.
fn batch(r: &mut AlertRules, runs: impl IntoIterator<Item = Finished>, now: f64) -> Vec<Alert> {
    let mut warnings = Vec::new();
    for f in runs {
        r.observe(&f, t(now), &mut warnings);
    }
    assert_eq!(warnings, Vec::<String>::new());
    r.evaluate(t(now))
}

/// `n` executions from `from` on, one every `every` seconds, made by `make`.
fn spread(n: usize, from: f64, every: f64, make: fn(f64) -> Finished) -> Vec<Finished> {
    (0..n).map(|i| make(from + i as f64 * every)).collect()
}

/// The `error_rate_high` alerts among `alerts` (a burst of executions that ends also
/// makes the rate drop, once the burst has left the last window).
fn error_rate(alerts: Vec<Alert>) -> Vec<Alert> {
    alerts
        .into_iter()
        .filter(|a| a.kind == "error_rate_high")
        .collect()
}

/// (type, severity, status, message) of each alert.
fn brief(alerts: &[Alert]) -> Vec<(&str, Severity, Status, &str)> {
    alerts
        .iter()
        .map(|a| (a.kind, a.severity, a.status, a.message.as_str()))
        .collect()
}

#[test]
fn error_rate_fires_above_its_threshold_not_at_it() {
    // 2 failures in 20: exactly 10 %.
    let mut r = rules("{}");
    let mut runs = spread(18, 0.0, 1.0, run);
    runs.extend(spread(2, 18.0, 1.0, failed));
    assert_eq!(batch(&mut r, runs, 20.0), []);
    // A third: 3 in 21, 14.3 %.
    let alerts = batch(&mut r, [failed(20.5)], 21.0);
    assert_eq!(
        brief(&alerts),
        [(
            "error_rate_high",
            Severity::Warning,
            Status::Firing,
            "Error rate is 14.3% (threshold: 10.0%)"
        )]
    );
    let a = &alerts[0];
    assert_eq!((a.value * 10.0).round(), 143.0);
    assert_eq!(a.threshold, 10.0);
    assert_eq!((a.specialist.as_deref(), a.labels.len()), (None, 0));
    assert_eq!(a.fingerprint, fingerprint("error_rate_high", None, []));
    assert_eq!(
        (a.timestamp, a.starts_at, a.ends_at),
        (t(21.0), t(21.0), None)
    );
    assert_eq!(a.annotation("summary"), Some(a.message.as_str()));
    assert_eq!(
        a.annotation("description"),
        Some("3 of the 21 executions that finished in the last 300 s failed (14.3%); warning above 10.0%, critical above 25.0%.")
    );
    assert_eq!(a.annotation("runbook_url"), None);
}

fn lasting(seconds: f64, duration: f64) -> Finished {
    Finished {
        duration_seconds: duration,
        ..run(seconds)
    }
}

fn using(seconds: f64, memory_mb: f64) -> Finished {
    Finished {
        memory_peak_mb: memory_mb,
        ..run(seconds)
    }
}

#[test]
fn p95_duration_fires_above_its_threshold_not_at_it() {
    let mut r = rules("{}");
    let at_30 = (0..20).map(|i| lasting(i as f64, 30.0));
    assert_eq!(batch(&mut r, at_30, 20.0), []);
    let mut r = rules("{}");
    let above = (0..20).map(|i| lasting(i as f64, 30.5));
    assert_eq!(
        brief(&batch(&mut r, above, 20.0)),
        [(
            "p95_duration_high",
            Severity::Warning,
            Status::Firing,
            "P95 duration is 30.5s (threshold: 30.0s)"
        )]
    );
}

#[test]
fn p95_is_the_95th_percentile_not_the_maximum() {
    // 1 slow run in 20: the p95 (the 19th of 20) is a fast one.
    let mut r = rules("{}");
    let mut runs = spread(19, 0.0, 1.0, run);
    runs.push(lasting(19.0, 200.0));
    assert_eq!(batch(&mut r, runs, 20.0), []);
    // 2 in 21: the p95 is the 20th, a slow one, within 1 % of 200 s.
    let alerts = batch(&mut r, [lasting(20.0, 200.0)], 21.0);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(
        (a.kind, a.severity, a.threshold),
        ("p95_duration_high", Severity::Critical, 120.0)
    );
    assert!((198.0..=200.0).contains(&a.value), "{}", a.value);
    assert_eq!(
        a.message,
        format!("P95 duration is {:.1}s (threshold: 120.0s)", a.value)
    );
}

#[test]
fn peak_memory_is_the_maximum_and_fires_above_its_threshold_not_at_it() {
    let mut r = rules("{}");
    let mut runs = spread(19, 0.0, 1.0, run);
    runs.push(using(19.0, 1024.0));
    assert_eq!(batch(&mut r, runs, 20.0), []);
    // One run above is enough: the maximum over the window.
    let alerts = batch(&mut r, [using(20.0, 1536.0)], 21.0);
    assert_eq!(
        brief(&alerts),
        [(
            "memory_peak_high",
            Severity::Warning,
            Status::Firing,
            "Peak memory is 1536.0 MB (threshold: 1024.0 MB)"
        )]
    );
    assert!(alerts[0]
        .annotation("description")
        .unwrap()
        .contains("The largest peak memory of the 21 executions that finished in the last 300 s is 1536.0 MB (the maximum over the window)"));
    let alerts = batch(&mut r, [using(21.0, 4096.5)], 22.0);
    assert_eq!(
        brief(&alerts),
        [(
            "memory_peak_high",
            Severity::Critical,
            Status::Firing,
            "Peak memory is 4096.5 MB (threshold: 4096.0 MB)"
        )]
    );
}

#[test]
fn execution_rate_drop_fires_above_its_threshold_not_at_it() {
    // 20 executions in [0, 300) (the previous window at 600 s), then 10 in [300, 600):
    // exactly 50 %.
    let mut r = rules(r#"{"keep_firing_for_seconds":0}"#);
    batch(&mut r, spread(20, 0.0, 15.0, run), 299.0);
    assert_eq!(batch(&mut r, spread(10, 300.0, 30.0, run), 599.0), []);
    assert_eq!(r.evaluate(t(600.0)), []);
    // 9: 55 %.
    let mut r = rules(r#"{"keep_firing_for_seconds":0}"#);
    batch(&mut r, spread(20, 0.0, 15.0, run), 299.0);
    assert_eq!(batch(&mut r, spread(9, 300.0, 30.0, run), 599.0), []);
    assert_eq!(
        brief(&r.evaluate(t(600.0))),
        [(
            "execution_rate_drop",
            Severity::Warning,
            Status::Firing,
            "Execution rate dropped 55.0% (threshold: 50.0%)"
        )]
    );
}

#[test]
fn execution_rate_drop_fires_on_ticks_when_executions_stop() {
    let mut r = rules(r#"{"keep_firing_for_seconds":0}"#);
    // One every 15 s in [0, 300), then nothing: only ticks, every 5 s.
    assert_eq!(batch(&mut r, spread(20, 0.0, 15.0, run), 299.0), []);
    let mut seen: Vec<(f64, Alert)> = Vec::new();
    for tick in 60..=200 {
        let now = tick as f64 * 5.0;
        for a in r.evaluate(t(now)) {
            seen.push((now, a));
        }
    }
    // At 510 s the last window [210, 510) holds 6 runs, the previous [-90, 210) 14:
    // 57.1 %. Critical at 585 s: 1 against 19, 94.7 %. Every run gone from the last window
    // at 600 s. Resolved when the previous window falls below min_samples: at 765 s it is
    // [165, 465), holding 9.
    let first = |pred: &dyn Fn(&Alert) -> bool| seen.iter().find(|(_, a)| pred(a)).unwrap();
    let (at, warning) = first(&|a| a.status == Status::Firing);
    assert_eq!(*at, 510.0);
    assert_eq!(
        warning.message,
        "Execution rate dropped 57.1% (threshold: 50.0%)"
    );
    let (at, critical) = first(&|a| a.severity == Severity::Critical);
    assert_eq!(*at, 585.0);
    assert_eq!(
        critical.message,
        "Execution rate dropped 94.7% (threshold: 90.0%)"
    );
    let (_, stopped) = first(&|a| a.value == 100.0);
    assert_eq!(
        stopped.message,
        "Execution rate dropped 100.0% (threshold: 90.0%)"
    );
    let (at, resolved) = first(&|a| a.status == Status::Resolved);
    assert_eq!(*at, 765.0);
    assert_eq!(resolved.ends_at, Some(t(765.0)));
    assert_eq!(
        resolved.message, stopped.message,
        "its last firing observation"
    );
    // One alert all along: returned at every tick from 510 s to 760 s, then resolved once.
    assert_eq!(seen.len(), (510..=765).step_by(5).count());
    assert!(seen
        .iter()
        .all(|(_, a)| a.kind == "execution_rate_drop" && a.starts_at == t(510.0)));
    assert!(seen
        .iter()
        .all(|(_, a)| a.fingerprint == warning.fingerprint));
}

#[test]
fn rate_drop_needs_min_samples_in_the_previous_window() {
    let mut r = rules("{}");
    batch(&mut r, spread(9, 0.0, 30.0, run), 299.0);
    for tick in 60..=200 {
        assert_eq!(r.evaluate(t(tick as f64 * 5.0)), [], "at {}", tick * 5);
    }
}

#[test]
fn min_samples_keeps_every_rule_quiet_over_too_few_runs() {
    let bad = |s: f64| Finished {
        duration_seconds: 500.0,
        memory_peak_mb: 9000.0,
        ..failed(s)
    };
    // One failure out of one run pages nobody; nor nine.
    let mut r = rules("{}");
    assert_eq!(batch(&mut r, [bad(0.0)], 1.0), []);
    assert_eq!(batch(&mut r, spread(8, 1.0, 1.0, bad), 9.0), []);
    // The tenth: all three rules at once, critical.
    let alerts = batch(&mut r, [bad(9.0)], 10.0);
    assert_eq!(
        alerts
            .iter()
            .map(|a| (a.kind, a.severity))
            .collect::<Vec<_>>(),
        [
            ("error_rate_high", Severity::Critical),
            ("p95_duration_high", Severity::Critical),
            ("memory_peak_high", Severity::Critical),
        ]
    );
    assert_eq!(alerts[0].message, "Error rate is 100.0% (threshold: 25.0%)");
    // min_samples = 1 lets one run decide.
    let mut r = rules(r#"{"min_samples":1}"#);
    assert_eq!(batch(&mut r, [bad(0.0)], 1.0).len(), 3);
}

#[test]
fn escalation_keeps_the_alert_and_changes_its_severity() {
    let mut r = rules("{}");
    let mut runs = spread(17, 0.0, 1.0, run);
    runs.extend(spread(3, 17.0, 1.0, failed));
    let warning = batch(&mut r, runs, 20.0).remove(0);
    assert_eq!(warning.severity, Severity::Warning);
    assert_eq!(warning.message, "Error rate is 15.0% (threshold: 10.0%)");
    // 3 more failures: 6 in 23, 26.1 %.
    let critical = batch(&mut r, spread(3, 20.0, 0.1, failed), 30.0).remove(0);
    assert_eq!(critical.severity, Severity::Critical);
    assert_eq!(critical.message, "Error rate is 26.1% (threshold: 25.0%)");
    assert_eq!(critical.threshold, 25.0);
    assert_eq!(
        (&critical.fingerprint, critical.starts_at, critical.status),
        (&warning.fingerprint, warning.starts_at, Status::Firing)
    );
    assert_eq!(critical.timestamp, t(30.0));
    // Back down: still the same alert.
    let down = batch(&mut r, spread(20, 30.0, 0.1, run), 40.0).remove(0);
    assert_eq!(down.severity, Severity::Warning);
    assert_eq!(
        (down.starts_at, &down.fingerprint),
        (warning.starts_at, &warning.fingerprint)
    );
}

/// 20 executions at 0 .. 9.5 s, 5 of them failed: 25 % (warning), in the window until
/// 300 s (their interval [0, 15) leaves it at 300 s).
fn failing_burst() -> Vec<Finished> {
    let mut runs = spread(15, 0.0, 0.5, run);
    runs.extend(spread(5, 7.5, 0.5, failed));
    runs
}

#[test]
fn for_seconds_holds_an_alert_pending_before_it_fires() {
    let mut r = rules(r#"{"for_seconds":60}"#);
    assert_eq!(error_rate(batch(&mut r, failing_burst(), 10.0)), []);
    assert_eq!(error_rate(r.evaluate(t(30.0))), []);
    assert_eq!(error_rate(r.evaluate(t(69.999))), []);
    let alerts = error_rate(r.evaluate(t(70.0)));
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].status, alerts[0].starts_at),
        (Status::Firing, t(70.0)),
        "starts_at is when it started firing"
    );
    // A condition that clears while pending never fires nor resolves.
    let mut r = rules(r#"{"for_seconds":300}"#);
    assert_eq!(error_rate(batch(&mut r, failing_burst(), 10.0)), []);
    for s in (15..=700).step_by(5) {
        assert_eq!(error_rate(r.evaluate(t(s as f64))), [], "at {s}");
    }
}

#[test]
fn a_firing_alert_is_returned_at_every_evaluation_then_resolved_once() {
    let mut r = rules(r#"{"keep_firing_for_seconds":0}"#);
    let first = error_rate(batch(&mut r, failing_burst(), 10.0));
    assert_eq!(brief(&first)[0].2, Status::Firing);
    // Repeated by batches and by ticks alike, with the same start.
    let mut evaluations = vec![error_rate(batch(&mut r, [run(11.0)], 11.0))];
    for s in [20.0, 100.0, 299.0] {
        evaluations.push(error_rate(r.evaluate(t(s))));
    }
    for (alerts, at) in evaluations.iter().zip([11.0, 20.0, 100.0, 299.0]) {
        assert_eq!(alerts.len(), 1, "at {at}");
        let a = &alerts[0];
        assert_eq!(
            (a.status, a.starts_at, a.timestamp, &a.fingerprint),
            (Status::Firing, t(10.0), t(at), &first[0].fingerprint),
            "at {at}"
        );
    }
    // The burst leaves the window at 300 s: resolved once, with ends_at.
    let resolved = error_rate(r.evaluate(t(300.0)));
    assert_eq!(resolved.len(), 1);
    let a = &resolved[0];
    assert_eq!(
        (a.status, a.starts_at, a.ends_at, a.timestamp),
        (Status::Resolved, t(10.0), Some(t(300.0)), t(300.0))
    );
    assert_eq!(a.fingerprint, first[0].fingerprint);
    assert_eq!(
        a.message,
        evaluations.last().unwrap()[0].message,
        "the last firing observation"
    );
    assert_eq!(a.message, "Error rate is 23.8% (threshold: 10.0%)");
    assert_eq!(error_rate(r.evaluate(t(301.0))), []);
    assert_eq!(error_rate(r.evaluate(t(400.0))), []);
}

#[test]
fn keep_firing_for_bridges_a_gap_before_resolving() {
    let mut r = rules(r#"{"keep_firing_for_seconds":60}"#);
    batch(&mut r, failing_burst(), 10.0);
    // Cleared at 300 s; still firing until 360 s.
    for s in [300.0, 330.0, 359.9] {
        let alerts = error_rate(r.evaluate(t(s)));
        assert_eq!(brief(&alerts)[0].2, Status::Firing, "at {s}");
        assert_eq!(alerts[0].starts_at, t(10.0));
    }
    let alerts = error_rate(r.evaluate(t(360.0)));
    assert_eq!(
        (alerts[0].status, alerts[0].ends_at),
        (Status::Resolved, Some(t(360.0)))
    );
    assert_eq!(error_rate(r.evaluate(t(361.0))), []);

    // Failing again within keep_firing_for: the same alert goes on.
    let mut r = rules(r#"{"keep_firing_for_seconds":60}"#);
    batch(&mut r, failing_burst(), 10.0);
    r.evaluate(t(300.0));
    let burst: Vec<Finished> = failing_burst()
        .into_iter()
        .map(|f| Finished {
            at: f.at + 320.0,
            ..f
        })
        .collect();
    let again = error_rate(batch(&mut r, burst, 340.0));
    assert_eq!(
        (again[0].status, again[0].starts_at),
        (Status::Firing, t(10.0))
    );
    assert_eq!(
        brief(&error_rate(r.evaluate(t(500.0))))[0].2,
        Status::Firing
    );
}

#[test]
fn per_specialist_alerts_carry_the_specialist() {
    let mut r = rules("{}");
    let mut runs: Vec<Finished> = spread(20, 0.0, 0.1, failed)
        .into_iter()
        .map(|f| of("api-ui-designer", f))
        .collect();
    runs.extend(spread(200, 0.0, 0.1, run).into_iter().map(|f| of("web", f)));
    // Globally 20 in 220 fail (9.1 %): only the specialist's alert.
    let alerts = batch(&mut r, runs, 20.0);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(
        (a.kind, a.severity),
        ("error_rate_high", Severity::Critical)
    );
    assert_eq!(a.specialist.as_deref(), Some("api-ui-designer"));
    assert_eq!(
        a.labels,
        [("specialist".to_string(), "api-ui-designer".to_string())]
    );
    assert_eq!(
        a.fingerprint,
        fingerprint("error_rate_high", Some("api-ui-designer"), [])
    );
    // Pinned (computed apart from the code): notifiers and silences keep it.
    assert_eq!(a.fingerprint, "d06124b88d0875ac");
    assert_eq!(
        a.annotation("description"),
        Some("20 of the 20 executions of specialist `api-ui-designer` that finished in the last 300 s failed (100.0%); warning above 10.0%, critical above 25.0%.")
    );
    // More failures elsewhere: the global alert joins, first.
    let more = spread(20, 20.0, 0.1, failed)
        .into_iter()
        .map(|f| of("web", f));
    let alerts = batch(&mut r, more, 25.0);
    let who: Vec<Option<&str>> = alerts.iter().map(|a| a.specialist.as_deref()).collect();
    assert_eq!(who, [None, Some("api-ui-designer")]);
    assert_eq!(alerts[0].message, "Error rate is 16.7% (threshold: 10.0%)");
    assert!(alerts[0].labels.is_empty());
    assert_eq!(
        r.specialists().collect::<Vec<_>>(),
        ["api-ui-designer", "web"]
    );
}

#[test]
fn per_specialist_false_judges_everything_together() {
    let mut r = rules(r#"{"per_specialist":false}"#);
    let runs = spread(20, 0.0, 0.1, failed)
        .into_iter()
        .map(|f| of("ops", f));
    let alerts = batch(&mut r, runs, 20.0);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].specialist, None);
    assert_eq!(r.specialists().count(), 0);
}

#[test]
fn specialists_beyond_the_cap_count_globally_only_and_the_cap_is_reported_once() {
    let mut r = rules(r#"{"max_specialists":2,"keep_firing_for_seconds":0}"#);
    let mut warnings = Vec::new();
    for (i, s) in ["a", "b", "c", "d", "c"].iter().enumerate() {
        for f in spread(10, i as f64, 0.01, failed) {
            r.observe(&of(s, f), t(10.0), &mut warnings);
        }
    }
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(
        warnings[0],
        "more than 2 specialists at once: `c` (and any other new one while 2 are held) counts only in the global rules, not on its own (raise config.max_specialists)"
    );
    let alerts = r.evaluate(t(10.0));
    let who: Vec<Option<&str>> = alerts.iter().map(|a| a.specialist.as_deref()).collect();
    assert_eq!(who, [None, Some("a"), Some("b")]);
    assert!(
        alerts[0].message.starts_with("Error rate is 100.0%"),
        "global counts all 50"
    );
    // Once a and b hold nothing (every window empty, alerts resolved), c gets a place.
    assert_eq!(r.evaluate(t(300.0)).len(), 3, "resolved");
    r.evaluate(t(615.0));
    assert_eq!(r.specialists().count(), 0);
    for f in spread(10, 620.0, 0.01, failed) {
        r.observe(&of("c", f), t(621.0), &mut warnings);
    }
    assert_eq!(warnings.len(), 1, "reported once");
    let alerts = r.evaluate(t(621.0));
    assert_eq!(alerts.last().unwrap().specialist.as_deref(), Some("c"));
}

#[test]
fn a_threshold_change_is_validated_and_judged_by_at_the_next_evaluation() {
    let mut r = rules(r#"{"error_rate_percent":20,"keep_firing_for_seconds":0}"#);
    // 15 %: below 20.
    let mut runs = spread(17, 0.0, 1.0, run);
    runs.extend(spread(3, 17.0, 1.0, failed));
    assert_eq!(batch(&mut r, runs, 20.0), []);
    assert_eq!(
        r.set_threshold("error_rate_percent", 10.0).unwrap(),
        "error_rate_percent: 20 -> 10"
    );
    let alerts = r.evaluate(t(21.0));
    assert_eq!(
        brief(&alerts),
        [(
            "error_rate_high",
            Severity::Warning,
            Status::Firing,
            "Error rate is 15.0% (threshold: 10.0%)"
        )]
    );
    // Critical at 12: escalates, same alert.
    r.set_threshold("error_rate_percent_critical", 12.0)
        .unwrap();
    let up = r.evaluate(t(22.0));
    assert_eq!(
        (up[0].severity, up[0].message.as_str(), up[0].starts_at),
        (
            Severity::Critical,
            "Error rate is 15.0% (threshold: 12.0%)",
            t(21.0)
        )
    );
    // Refused changes change nothing.
    assert!(r.set_threshold("error_rate_percent", 13.0).is_err());
    assert!(r
        .set_threshold("error_rate", 5.0)
        .unwrap_err()
        .starts_with("unknown threshold `error_rate` (known: error_rate_percent, "));
    assert_eq!(
        r.set_threshold("error_rate_percent", 101.0).unwrap_err(),
        "error_rate_percent: expected a percentage above 0 and at most 100, found 101"
    );
    assert_eq!(r.evaluate(t(23.0))[0].severity, Severity::Critical);
    // Raised past the value: resolved at the next evaluation.
    r.set_threshold("error_rate_percent_critical", 50.0)
        .unwrap();
    r.set_threshold("error_rate_percent", 40.0).unwrap();
    let resolved = r.evaluate(t(24.0));
    assert_eq!(
        (resolved[0].status, resolved[0].ends_at),
        (Status::Resolved, Some(t(24.0)))
    );
    let listed: Vec<(&str, f64)> = r
        .thresholds()
        .list()
        .into_iter()
        .map(|(name, value, _)| (name, value))
        .take(2)
        .collect();
    assert_eq!(
        listed,
        [
            ("error_rate_percent", 40.0),
            ("error_rate_percent_critical", 50.0)
        ]
    );
}

#[test]
fn the_clock_never_goes_back_and_late_or_early_executions_are_placed_sensibly() {
    let mut r = rules(r#"{"keep_firing_for_seconds":0}"#);
    let fired = batch(&mut r, failing_burst(), 10.0);
    // A tick from a clock stepped back evaluates at the latest instant seen.
    let again = r.evaluate(t(5.0));
    assert_eq!(
        (again[0].timestamp, again[0].starts_at),
        (t(10.0), fired[0].starts_at)
    );
    // An execution stamped after the evaluation counts at the evaluation's time: it leaves
    // the window with the executions of that interval.
    let mut r = rules(r#"{"keep_firing_for_seconds":0}"#);
    let future: Vec<Finished> = failing_burst()
        .into_iter()
        .map(|f| Finished {
            at: f.at + 3600.0,
            ..f
        })
        .collect();
    assert_eq!(batch(&mut r, future, 10.0).len(), 1);
    assert_eq!(r.evaluate(t(300.0))[0].status, Status::Resolved);
}

#[test]
fn the_runbook_url_names_the_type() {
    let mut r = rules(r#"{"runbook_url":"https://runbooks.example.com/metaclaude/{type}"}"#);
    let alerts = batch(&mut r, failing_burst(), 10.0);
    assert_eq!(
        alerts[0].annotation("runbook_url"),
        Some("https://runbooks.example.com/metaclaude/error_rate_high")
    );
}

#[test]
fn the_windows_fit_the_manifest_memory_limit() {
    let manifest = include_str!("../../plugin.toml");
    let limits = manifest.split("\n[limits]").nth(1).unwrap();
    let memory_mb: usize = limits
        .lines()
        .find_map(|l| l.trim().strip_prefix("memory_mb = "))
        .unwrap()
        .parse()
        .unwrap();
    let r = rules("{}");
    // The windows at their worst take at most a quarter of the limit: the rest is for
    // the batches of events and the alerts returned.
    assert!(
        r.max_window_bytes() * 4 <= memory_mb << 20,
        "{} bytes of windows against memory_mb = {memory_mb}",
        r.max_window_bytes()
    );
}
