//! The book's rules with time passed in: every overlap policy, a slot at exactly the
//! current instant, the clocks changing, jitter's bounds, slots missed across a downtime.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::book::{RunResult, Saved, ScheduleState};
use super::slots::{decide, jitter_offset, Decision, MissReason};
use super::spec::{self, Overlap, RunSchedule};
use super::{Due, ScheduleBook};
use crate::config::Checker;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn spec(v: serde_json::Value) -> RunSchedule {
    let mut c = Checker::new();
    let r = spec::parse(&mut c, "run_schedule", &v);
    c.finish(r, "r.json").unwrap()
}

fn book(script: &str, s: &RunSchedule, now: DateTime<Utc>) -> ScheduleBook {
    let mut b = ScheduleBook::new();
    assert!(b.sync([(script, s)], now).is_empty());
    b
}

fn status(b: &ScheduleBook) -> super::ScheduleStatus {
    b.statuses().remove(0)
}

fn due(script: &str, slot: &str) -> Due {
    Due {
        script: script.into(),
        slot: utc(slot),
    }
}

#[test]
fn the_decision_of_every_policy() {
    for overlap in [Overlap::Skip, Overlap::Queue, Overlap::Allow] {
        assert_eq!(
            decide(overlap, 0, false),
            Decision::Run,
            "{overlap:?}: idle runs"
        );
    }
    assert_eq!(
        decide(Overlap::Skip, 1, false),
        Decision::Miss(MissReason::Overlap)
    );
    assert_eq!(decide(Overlap::Queue, 1, false), Decision::Queue);
    assert_eq!(
        decide(Overlap::Queue, 1, true),
        Decision::Miss(MissReason::Overlap),
        "at most one waits"
    );
    assert_eq!(decide(Overlap::Allow, 3, false), Decision::Run);
}

#[test]
fn skip_counts_a_slot_held_by_the_previous_run_and_runs_the_next() {
    let s = spec(json!({"cron": "* * * * *"}));
    let mut b = book("a", &s, utc("2024-01-01T00:00:30Z"));
    assert!(b.due(utc("2024-01-01T00:00:59Z")).is_empty());
    assert_eq!(b.next_due_at(), Some(utc("2024-01-01T00:01:00Z")));
    assert_eq!(
        b.due(utc("2024-01-01T00:01:00Z")),
        [due("a", "2024-01-01T00:01:00Z")]
    );
    b.started(
        "a",
        utc("2024-01-01T00:01:00Z"),
        "e1",
        utc("2024-01-01T00:01:00Z"),
    );
    assert_eq!(status(&b).state, ScheduleState::Running);
    assert!(
        b.due(utc("2024-01-01T00:02:00Z")).is_empty(),
        "the run holds the slot"
    );
    assert_eq!(status(&b).missed.overlap, 1);
    assert_eq!(
        b.finished("a", "e1", RunResult::Success, utc("2024-01-01T00:02:10Z")),
        None,
        "nothing waits under skip"
    );
    assert_eq!(
        b.due(utc("2024-01-01T00:03:00Z")),
        [due("a", "2024-01-01T00:03:00Z")]
    );
    let st = status(&b);
    assert_eq!(
        (st.missed.overlap, st.missed.host_down, st.runs.success),
        (1, 0, 1)
    );
    assert_eq!(st.last_run.unwrap().result, Some(RunResult::Success));
}

#[test]
fn queue_keeps_one_slot_waiting_and_runs_it_when_the_previous_ends() {
    let s = spec(json!({"cron": "* * * * *", "overlap": "queue"}));
    let mut b = book("a", &s, utc("2024-01-01T00:00:30Z"));
    assert_eq!(b.due(utc("2024-01-01T00:01:00Z")).len(), 1);
    b.started(
        "a",
        utc("2024-01-01T00:01:00Z"),
        "e1",
        utc("2024-01-01T00:01:00Z"),
    );
    assert!(b.due(utc("2024-01-01T00:02:00Z")).is_empty());
    assert_eq!(status(&b).state, ScheduleState::Queued);
    assert!(b.due(utc("2024-01-01T00:03:00Z")).is_empty());
    assert_eq!(status(&b).missed.overlap, 1, "a second one does not wait");
    let next = b.finished("a", "e1", RunResult::Failure, utc("2024-01-01T00:03:05Z"));
    assert_eq!(
        next,
        Some(due("a", "2024-01-01T00:02:00Z")),
        "the waiting slot runs now"
    );
    assert_eq!(status(&b).state, ScheduleState::Idle);
    assert_eq!(status(&b).runs.failure, 1);
}

#[test]
fn allow_runs_beside_the_previous_and_a_refused_run_is_busy() {
    let s = spec(json!({"cron": "* * * * *", "overlap": "allow"}));
    let mut b = book("a", &s, utc("2024-01-01T00:00:30Z"));
    assert_eq!(b.due(utc("2024-01-01T00:01:00Z")).len(), 1);
    b.started(
        "a",
        utc("2024-01-01T00:01:00Z"),
        "e1",
        utc("2024-01-01T00:01:00Z"),
    );
    assert_eq!(b.due(utc("2024-01-01T00:02:00Z")).len(), 1);
    b.started(
        "a",
        utc("2024-01-01T00:02:00Z"),
        "e2",
        utc("2024-01-01T00:02:00Z"),
    );
    assert_eq!(status(&b).running, 2);
    assert_eq!(b.due(utc("2024-01-01T00:03:00Z")).len(), 1);
    b.refused("a", MissReason::Busy);
    let st = status(&b);
    assert_eq!((st.missed.busy, st.missed.overlap, st.running), (1, 0, 2));
}

#[test]
fn a_slot_at_exactly_now_is_due_and_decided_once() {
    let s = spec(json!({"cron": "*/2 * * * * *"}));
    let t = utc("2024-01-01T00:00:10Z");
    let mut b = book("a", &s, t);
    assert_eq!(b.next_due_at(), Some(t), "a slot at the start is the first");
    assert_eq!(b.due(t), [due("a", "2024-01-01T00:00:10Z")]);
    assert!(b.due(t).is_empty(), "decided once");
    assert_eq!(b.next_due_at(), Some(utc("2024-01-01T00:00:12Z")));
    let just_before = utc("2024-01-01T00:00:11.999Z");
    assert!(b.due(just_before).is_empty());
}

#[test]
fn a_late_look_counts_the_slots_it_passed_as_host_down() {
    let s = spec(json!({"cron": "* * * * *"}));
    let mut b = book("a", &s, utc("2024-01-01T00:00:30Z"));
    // Asleep from before 00:01 until 00:04:10: 00:01, 00:02, 00:03 passed; 00:04 runs.
    assert_eq!(
        b.due(utc("2024-01-01T00:04:10Z")),
        [due("a", "2024-01-01T00:04:00Z")]
    );
    assert_eq!(status(&b).missed.host_down, 3);
}

#[test]
fn the_clocks_changing_follow_cron() {
    // 02:30 in New York does not exist on 2024-03-10: the run is at 03:00 EDT, once.
    let s = spec(json!({"cron": "30 2 * * *", "timezone": "America/New_York"}));
    let mut b = book("a", &s, utc("2024-03-09T12:00:00Z"));
    assert_eq!(
        b.due(utc("2024-03-10T06:59:59Z")),
        [],
        "not before the first instant after the gap"
    );
    assert_eq!(b.next_due_at(), Some(utc("2024-03-10T07:00:00Z")));
    assert_eq!(b.due(utc("2024-03-10T07:00:00Z")).len(), 1);
    assert_eq!(b.next_due_at(), Some(utc("2024-03-11T06:30:00Z")));
    assert_eq!(status(&b).missed.host_down, 0);
}

#[test]
fn jitter_stays_within_its_bounds_and_below_the_next_slot() {
    let slot = utc("2024-01-01T00:00:00Z");
    let next = Some(utc("2024-01-01T00:01:00Z"));
    let jitter = Duration::from_secs(30);
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..200 {
        let d = jitter_offset(&format!("script{i}"), slot, next, jitter);
        assert!(d < jitter, "{d:?}");
        seen.insert(d.as_millis() / 1000);
    }
    assert!(seen.len() > 20, "spread over the range: {seen:?}");
    assert_eq!(
        jitter_offset("a", slot, next, jitter),
        jitter_offset("a", slot, next, jitter),
        "fixed by the script and the slot"
    );
    let long = Duration::from_secs(3600);
    assert!(jitter_offset("a", slot, next, long) < Duration::from_secs(60));
    assert_eq!(
        jitter_offset("a", slot, next, Duration::ZERO),
        Duration::ZERO
    );

    // In the book: the run waits for its jitter; the next slot's run comes after it.
    let s = spec(json!({"cron": "* * * * *", "jitter": "30s"}));
    let mut b = book("a", &s, utc("2024-01-01T00:00:30Z"));
    let at = b.next_due_at().unwrap();
    assert!(
        at >= utc("2024-01-01T00:01:00Z") && at < utc("2024-01-01T00:01:30Z"),
        "{at}"
    );
    assert!(b.due(at - chrono::Duration::milliseconds(1)).is_empty());
    assert_eq!(b.due(at), [due("a", "2024-01-01T00:01:00Z")]);
}

#[test]
fn slots_missed_while_the_host_was_down_are_counted_at_start() {
    let s = spec(json!({"cron": "*/2 * * * * *"}));
    let mut saved = BTreeMap::new();
    saved.insert(
        "a".to_string(),
        Saved {
            last_slot: utc("2024-01-01T00:00:10Z"),
            last_run: None,
        },
    );
    saved.insert(
        "gone".to_string(),
        Saved {
            last_slot: utc("2024-01-01T00:00:00Z"),
            last_run: None,
        },
    );
    let mut b = ScheduleBook::restored(saved);
    // Down from after 00:00:10 until 00:00:21: 12, 14, 16, 18 and 20 were missed; 22 runs.
    let down = b.sync([("a", &s)], utc("2024-01-01T00:00:21Z"));
    assert_eq!(down.len(), 1, "a script no longer scheduled is not counted");
    assert_eq!(
        (down[0].missed, down[0].since),
        (5, utc("2024-01-01T00:00:10Z"))
    );
    assert_eq!(status(&b).missed.host_down, 5);
    assert_eq!(b.next_due_at(), Some(utc("2024-01-01T00:00:22Z")));
    let saved = b.saved();
    assert_eq!(
        saved["a"].last_slot,
        utc("2024-01-01T00:00:21Z"),
        "counted once"
    );
    assert!(!saved.contains_key("gone"));
    // A second sync (a reload) counts nothing again.
    assert!(b.sync([("a", &s)], utc("2024-01-01T00:00:21Z")).is_empty());
    assert_eq!(status(&b).missed.host_down, 5);
}

#[test]
fn a_changed_schedule_takes_effect_from_now_and_a_removed_one_goes() {
    let every_minute = spec(json!({"cron": "* * * * *"}));
    let mut b = book("a", &every_minute, utc("2024-01-01T00:00:30Z"));
    assert_eq!(b.due(utc("2024-01-01T00:01:00Z")).len(), 1);
    let hourly = spec(json!({"cron": "@hourly"}));
    b.sync([("a", &hourly)], utc("2024-01-01T00:01:00Z"));
    assert_eq!(b.next_due_at(), Some(utc("2024-01-01T01:00:00Z")));
    assert_eq!(status(&b).cron, "@hourly");
    b.sync([], utc("2024-01-01T00:02:00Z"));
    assert!(b.statuses().is_empty());
    assert_eq!(b.next_due_at(), None);
}
