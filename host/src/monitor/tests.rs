//! The monitor's unit tests.

use super::*;
use crate::logs::query::Filter;

fn event(kind: LifecycleKind, id: &str) -> ExecutionEvent {
    let mut r = ExecutionResult::new(id, "hello", Utc::now());
    r.success = id.ends_with('0');
    let mut e = ExecutionEvent::finished(r);
    e.kind = kind;
    if kind != LifecycleKind::Finished {
        e.result = None;
    }
    e
}

#[test]
fn running_then_finished_then_evicted_within_limits() {
    let m = Monitor::new(Limits {
        recent: 3,
        recent_output_bytes: 1 << 20,
        feed: 16,
    });
    m.emit(&event(LifecycleKind::Queued, "a0"));
    assert!(matches!(m.get("a0"), Some(Known::Running(r)) if r.state == RunState::Queued));
    let mut started = event(LifecycleKind::Started, "a0");
    started.pid = Some(42);
    started.attempt = 1;
    m.emit(&started);
    assert!(matches!(m.get("a0"), Some(Known::Running(r)) if r.pid == Some(42)));
    for id in ["a0", "b1", "c0", "d1"] {
        m.emit(&event(LifecycleKind::Finished, id));
    }
    assert!(m.get("a0").is_none(), "the oldest was let go");
    assert!(matches!(m.get("d1"), Some(Known::Finished(_))));
    let all = m.recent(&Matcher::new(Filter::default()), 10);
    let ids: Vec<&str> = all.iter().map(|r| r.execution_id.as_str()).collect();
    assert_eq!(ids, ["d1", "c0", "b1"], "newest first");
    let failed = m.recent(
        &Matcher::new(Filter {
            failed: true,
            ..Filter::default()
        }),
        10,
    );
    assert_eq!(failed.len(), 2);
    let t = m.totals();
    assert_eq!((t.executions, t.succeeded, t.failed), (4, 2, 2));
    let stats = m.stats(None, 5);
    assert_eq!(stats.overall.count, 3);
    assert!(!stats.complete, "one execution was let go");
    assert_eq!(stats.top_scripts[0].key, "hello");
}

#[test]
fn a_result_given_away_is_held_like_an_event_and_fed_when_watched() {
    let m = Monitor::new(Limits::default());
    m.emit(&event(LifecycleKind::Queued, "a0"));
    let given = |id: &str| {
        event(LifecycleKind::Finished, id)
            .result
            .map(Arc::unwrap_or_clone)
            .unwrap()
    };
    m.finished(given("a0"));
    assert!(m.running().is_empty(), "no longer running");
    assert!(matches!(m.get("a0"), Some(Known::Finished(_))));
    let (snapshot, mut feed) = m.subscribe(10);
    assert_eq!(snapshot.seq, 2, "numbered like the events");
    m.finished(given("b1"));
    let item = feed.try_recv().expect("a subscriber is sent it");
    assert_eq!((item.seq, item.kind), (3, Some(LifecycleKind::Finished)));
    assert_eq!(m.totals().executions, 2);
}

/// The sketches agree with the exact figures within their 1 % guarantee, per window.
#[test]
fn percentiles_by_window_come_from_the_sketches() {
    let m = Monitor::new(Limits::default());
    let now = Utc::now();
    for i in 1..=100u32 {
        let mut e = event(LifecycleKind::Finished, &format!("x{i}"));
        let r = Arc::make_mut(e.result.as_mut().unwrap());
        r.resource_usage.wall_time_seconds = f64::from(i) / 10.0;
        // Ten minutes ago for the first half: out of the 1- and 5-minute windows.
        r.finished_at = if i <= 50 {
            now - chrono::Duration::minutes(10)
        } else {
            now
        };
        m.emit(&e);
    }
    let p = m.percentiles(now);
    let start = p.duration_seconds["start"];
    assert_eq!(start.count, 100);
    let near = |got: Option<f64>, want: f64| {
        let got = got.unwrap();
        assert!((got - want).abs() <= want * 0.01 + 1e-9, "{got} vs {want}");
    };
    near(start.p50, 5.0);
    near(start.p99, 9.9);
    near(start.max, 10.0);
    let recent = p.duration_seconds["5m"];
    assert_eq!(recent.count, 50);
    near(recent.p50, 7.5);
    assert_eq!(p.duration_seconds["60m"].count, 100);
}

#[test]
fn timeseries_counts_each_interval_and_filters_apply() {
    let m = Monitor::new(Limits::default());
    let now = Utc::now();
    m.backdate(now - chrono::Duration::minutes(30));
    // Minute k before now: k+1 executions of 0.1 s .. , every other one failed
    // (ids ending in 0 succeed), and one of another script each minute.
    for k in 0..5i64 {
        for j in 0..=k {
            let mut e = event(LifecycleKind::Finished, &format!("m{k}-{j}{}", j % 2));
            let r = Arc::make_mut(e.result.as_mut().unwrap());
            r.finished_at = now - chrono::Duration::seconds(60 * k + 30);
            r.resource_usage.wall_time_seconds = 0.1 * (j + 1) as f64;
            m.emit(&e);
        }
        let mut other = event(LifecycleKind::Finished, &format!("o{k}0"));
        let r = Arc::make_mut(other.result.as_mut().unwrap());
        r.script_id = "other".into();
        r.finished_at = now - chrono::Duration::seconds(60 * k + 30);
        m.emit(&other);
    }
    let hello = Matcher::new(Filter {
        script: Some("hello".into()),
        ..Filter::default()
    });
    let t = m.timeseries(10, 10, now, Some(&hello));
    assert_eq!(t.step_seconds, 60.0);
    assert_eq!(t.buckets.len(), 10);
    assert!(t.complete);
    assert_eq!(
        t.buckets.last().unwrap().start,
        now - chrono::Duration::minutes(1)
    );
    let counts: Vec<u64> = t.buckets.iter().map(|b| b.executions).collect();
    assert_eq!(counts, [0, 0, 0, 0, 0, 5, 4, 3, 2, 1], "oldest first");
    let b = &t.buckets[6];
    assert_eq!(b.failures, 2, "j = 1 and 3 failed");
    assert_eq!(b.error_rate, Some(50.0));
    assert_eq!(b.duration_p50.map(|d| (d * 10.0).round()), Some(2.0));
    assert_eq!(b.duration_p95.map(|d| (d * 10.0).round()), Some(4.0));
    assert_eq!(t.buckets[0].error_rate, None);
    let all = m.timeseries(10, 10, now, None);
    assert_eq!(all.buckets[9].executions, 2, "with the other script");
    // Since start: the span from the backdated start, in whole seconds a bucket.
    let since_start = m.timeseries(0, 30, now, None);
    assert_eq!(since_start.step_seconds, 60.0);
    // A filtered report counts only what the filter takes.
    let report = m.report_matching(60, 5, now, Some(&hello), None);
    assert_eq!(report.window.overall.count, 15);
    assert_eq!(report.window.top_scripts.len(), 1);
    assert_eq!(m.report(60, 5, now).window.overall.count, 20);
}

#[test]
fn outputs_are_bounded_in_memory_and_cut_in_the_feed() {
    let m = Monitor::new(Limits {
        recent: 100,
        recent_output_bytes: 3 * 1024 * 1024,
        feed: 16,
    });
    let (_, mut rx) = m.subscribe(10);
    for i in 0..5 {
        let mut e = event(LifecycleKind::Finished, &format!("x{i}"));
        Arc::make_mut(e.result.as_mut().unwrap()).stdout = "é".repeat(512 * 1024);
        m.emit(&e);
    }
    let item = rx.try_recv().unwrap();
    assert_eq!(item.seq, 1);
    assert!(
        item.json.len() < 2 * FEED_OUTPUT_BYTES + 4096,
        "{}",
        item.json.len()
    );
    let v: serde_json::Value = serde_json::from_str(&item.json).unwrap();
    assert_eq!(v["event"]["result"]["stdout_truncated"], true);
    // 1 MiB each: three fit in 3 MiB.
    assert_eq!(m.recent(&Matcher::new(Filter::default()), 10).len(), 3);
    assert_eq!(m.totals().executions, 5);
}

#[test]
fn a_snapshot_and_the_feed_after_it_miss_nothing() {
    let m = Monitor::new(Limits::default());
    m.emit(&event(LifecycleKind::Queued, "a0"));
    let (snapshot, mut rx) = m.subscribe(10);
    assert_eq!(snapshot.seq, 1);
    assert_eq!(snapshot.running.len(), 1);
    m.emit(&event(LifecycleKind::Finished, "a0"));
    let next = rx.try_recv().unwrap();
    assert_eq!(next.seq, 2);
    assert_eq!(next.kind, Some(LifecycleKind::Finished));
}

#[test]
fn alert_changes_are_numbered_with_the_events_and_in_the_snapshot() {
    use crate::model::{Alert, AlertStatus, Severity};
    let m = Monitor::new(Limits::default());
    let (_, mut rx) = m.subscribe(10);
    m.emit(&event(LifecycleKind::Queued, "a0"));
    let mut a = Alert::firing(
        Utc::now(),
        "error_rate_high",
        Severity::Warning,
        "m",
        15.0,
        10.0,
    );
    m.alerts_changed(std::slice::from_ref(&a));
    assert_eq!(m.subscribe(10).0.alerts, [a.clone()]);
    let (_, item) = (rx.try_recv().unwrap(), rx.try_recv().unwrap());
    assert_eq!((item.seq, item.kind), (2, None));
    let v: serde_json::Value = serde_json::from_str(&item.json).unwrap();
    assert_eq!(
        (v["type"].as_str(), v["alert"]["type"].as_str()),
        (Some("alert"), Some("error_rate_high"))
    );
    a.status = AlertStatus::Resolved;
    m.alerts_changed(&[a]);
    assert!(m.alerts().is_empty());
    assert_eq!(rx.try_recv().unwrap().seq, 3);
}
