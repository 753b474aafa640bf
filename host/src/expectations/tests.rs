//! The tracker with an injected clock: every transition at and just beyond its boundary
//! (grace, `max_duration`, `failures_in_a_row`, `min_duration`), missed windows counted
//! once each, cron slots in a time zone across both changes of the clocks, and new
//! expectations keeping the history that still applies.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::schedule::Schedule;
use super::*;
use crate::model::{AlertStatus, Severity};

/// The test's origin: 2024-01-01T00:00:00Z.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

/// `t0` plus `s` seconds.
fn t(s: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(s)
}

/// One millisecond: "just beyond" a boundary.
fn ms() -> chrono::Duration {
    chrono::Duration::milliseconds(1)
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const MIN: i64 = 60;
const HOUR: i64 = 3600;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Expectations with nothing but `failures_in_a_row` 1 (the default) and the given cadence.
fn expect(cadence: Option<Cadence>) -> Expectations {
    Expectations {
        cadence,
        max_duration: None,
        min_duration: None,
        failures_in_a_row: 1,
        alert_after_last_retry: true,
    }
}

fn every(every: u64, grace: u64) -> Expectations {
    expect(Some(Cadence {
        rule: Rule::Every(secs(every)),
        grace: secs(grace),
    }))
}

fn schedule(pattern: &str, zone: &str, grace: u64) -> Expectations {
    expect(Some(Cadence {
        rule: Rule::Schedule(Schedule::parse(pattern, zone).unwrap()),
        grace: secs(grace),
    }))
}

fn success(duration: u64) -> RunEnd {
    RunEnd {
        success: true,
        duration: secs(duration),
        last_attempt: true,
    }
}

fn failure(last_attempt: bool) -> RunEnd {
    RunEnd {
        success: false,
        duration: secs(1),
        last_attempt,
    }
}

/// The changes as (condition, began) pairs.
fn seen(changes: &[Change]) -> Vec<(Condition, bool)> {
    changes.iter().map(|c| (c.condition, c.began)).collect()
}

fn state(tr: &Tracker) -> State {
    tr.status("backup").unwrap().state
}

fn watching(e: Expectations, at: DateTime<Utc>) -> Tracker {
    let mut tr = Tracker::new();
    assert!(tr.watch("backup", Some("ops"), e, at).is_empty());
    tr
}

#[test]
fn a_fresh_start_is_new_and_counts_from_the_start() {
    let mut tr = watching(every(HOUR as u64, 10 * MIN as u64), t(0));
    let s = tr.status("backup").unwrap();
    assert_eq!(s.state, State::New);
    assert_eq!(s.next_expected, Some(t(HOUR)));
    assert_eq!(s.last_success, None);
    // Anything seen ends "new", without a change of condition.
    assert!(tr.started("backup", "e1", t(60)).is_empty());
    assert_eq!(state(&tr), State::Ok);
    assert_eq!(tr.status("backup").unwrap().running, 1);
    // A script without a cadence stays new until it runs, whatever the time.
    let mut tr = watching(expect(None), t(0));
    assert!(tr.tick(t(100 * HOUR)).is_empty());
    assert_eq!(state(&tr), State::New);
    assert_eq!(tr.status("backup").unwrap().next_expected, None);
    assert!(
        tr.finished("backup", "e1", failure(true), t(100 * HOUR))
            .len()
            == 1
    );
    assert_eq!(state(&tr), State::Failing);
}

#[test]
fn late_after_the_due_time_and_missed_after_the_grace() {
    let mut tr = watching(every(HOUR as u64, 10 * MIN as u64), t(0));
    assert!(
        tr.tick(t(HOUR)).is_empty(),
        "at the due time: still in time"
    );
    assert_eq!(state(&tr), State::New);
    let c = tr.tick(t(HOUR) + ms());
    assert_eq!(seen(&c), [(Condition::Late, true)]);
    assert_eq!(c[0].since, t(HOUR));
    assert!(c[0].alert().is_none(), "late raises no alert");
    assert_eq!(state(&tr), State::Late);
    assert!(
        tr.tick(t(HOUR + 10 * MIN)).is_empty(),
        "at the end of the grace"
    );
    let c = tr.tick(t(HOUR + 10 * MIN) + ms());
    assert_eq!(
        seen(&c),
        [(Condition::Late, false), (Condition::Missed, true)]
    );
    let missed = &c[1];
    assert_eq!(missed.since, t(HOUR + 10 * MIN));
    assert_eq!(missed.state, State::Missed);
    assert_eq!(
        missed.summary,
        "Script `backup` missed its run: no success since watching began at \
         2024-01-01T00:00:00Z; one was due by 2024-01-01T01:00:00Z and the grace of 10m has \
         passed"
    );
    let a = missed.alert().unwrap();
    assert_eq!(a.kind, "script_missed");
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.labels["script"], "backup");
    assert_eq!(a.labels["specialist"], "ops");
    assert_eq!(a.starts_at, t(HOUR + 10 * MIN));
    let s = tr.status("backup").unwrap();
    assert_eq!((s.missed_total, s.missed_in_a_row), (1, 1));
    assert_eq!(
        s.next_expected,
        Some(t(2 * HOUR)),
        "the next window is open"
    );
}

#[test]
fn a_success_at_the_end_of_the_grace_is_in_time() {
    let mut tr = watching(every(HOUR as u64, 10 * MIN as u64), t(0));
    tr.tick(t(HOUR + 5 * MIN));
    assert_eq!(state(&tr), State::Late);
    let c = tr.finished("backup", "e1", success(30), t(HOUR + 10 * MIN));
    assert_eq!(seen(&c), [(Condition::Late, false)]);
    assert_eq!(c[0].execution_id.as_deref(), Some("e1"));
    let s = tr.status("backup").unwrap();
    assert_eq!(s.state, State::Ok);
    assert_eq!(s.last_success, Some(t(HOUR + 10 * MIN)));
    assert_eq!(
        s.next_expected,
        Some(t(2 * HOUR + 10 * MIN)),
        "due an hour after it"
    );
    assert_eq!(s.missed_total, 0);
}

#[test]
fn a_success_past_the_grace_counts_the_miss_first() {
    let mut tr = watching(every(HOUR as u64, 10 * MIN as u64), t(0));
    // No tick in between: the miss is counted, but it began and cleared in one step.
    let c = tr.finished("backup", "e1", success(30), t(HOUR + 10 * MIN) + ms());
    assert!(c.is_empty(), "{c:?}");
    let s = tr.status("backup").unwrap();
    assert_eq!(
        (s.missed_total, s.missed_in_a_row, s.state),
        (1, 0, State::Ok)
    );
}

#[test]
fn several_missed_windows_are_counted_once_each() {
    let mut tr = watching(every(HOUR as u64, 10 * MIN as u64), t(0));
    // Windows due at 1h, 2h and 3h have passed their grace at 3h30m; the 4h one has not.
    let c = tr.tick(t(3 * HOUR + 30 * MIN));
    assert_eq!(
        seen(&c),
        [(Condition::Missed, true)],
        "one alert for them all"
    );
    let s = tr.status("backup").unwrap();
    assert_eq!((s.missed_total, s.missed_in_a_row), (3, 3));
    assert_eq!(s.next_expected, Some(t(4 * HOUR)));
    assert_eq!(tr.firing(t(3 * HOUR + 30 * MIN))[0].value, 3.0);
    // Looking again counts nothing again.
    assert!(tr.tick(t(3 * HOUR + 30 * MIN)).is_empty());
    assert!(tr.tick(t(4 * HOUR + 10 * MIN)).is_empty());
    assert_eq!(tr.status("backup").unwrap().missed_total, 3);
    // The next window counts when its own grace passes, and the state stays missed.
    assert!(tr.tick(t(4 * HOUR + 10 * MIN) + ms()).is_empty());
    let s = tr.status("backup").unwrap();
    assert_eq!(
        (s.missed_total, s.missed_in_a_row, s.state),
        (4, 4, State::Missed)
    );
    let c = tr.finished("backup", "e9", success(30), t(4 * HOUR + 20 * MIN));
    assert_eq!(seen(&c), [(Condition::Missed, false)]);
    assert_eq!(
        c[0].summary,
        "Script `backup` succeeded at 2024-01-01T04:20:00Z (execution e9, in 30s) after 4 \
         missed runs"
    );
    let r = c[0].alert().unwrap();
    assert_eq!(r.status, AlertStatus::Resolved);
    assert_eq!(r.annotations["execution_id"], "e9");
    let s = tr.status("backup").unwrap();
    assert_eq!(
        (s.missed_total, s.missed_in_a_row, s.state),
        (4, 0, State::Ok)
    );
}

#[test]
fn a_host_asleep_for_long_counts_in_bounded_steps() {
    let mut tr = watching(every(1, 0), t(0));
    let c = tr.tick(t(100_000));
    assert_eq!(seen(&c), [(Condition::Missed, true)]);
    assert_eq!(
        tr.status("backup").unwrap().missed_total,
        state::MAX_WINDOWS_PER_STEP as u64
    );
    for _ in 0..10 {
        tr.tick(t(100_000));
    }
    // Windows due at 1 s .. 99 999 s passed (the one due at 100 000 s has not).
    assert_eq!(tr.status("backup").unwrap().missed_total, 99_999);
}

#[test]
fn the_first_slot_of_a_schedule_is_the_first_after_the_start() {
    let tr = watching(schedule("0 2 * * *", "UTC", 600), t(HOUR));
    assert_eq!(
        tr.status("backup").unwrap().next_expected,
        Some(t(2 * HOUR))
    );
    let tr = watching(schedule("0 2 * * *", "UTC", 600), t(2 * HOUR));
    assert_eq!(
        tr.status("backup").unwrap().next_expected,
        Some(t(26 * HOUR)),
        "a slot at the start itself is not after it"
    );
}

/// A success counts for every slot at or before it: one a minute before the slot does
/// not count for it.
#[test]
fn a_success_counts_for_the_slots_before_it() {
    let mut tr = watching(schedule("0 2 * * *", "UTC", 600), t(0));
    tr.finished("backup", "early", success(5), t(2 * HOUR - MIN));
    assert_eq!(
        tr.status("backup").unwrap().next_expected,
        Some(t(2 * HOUR))
    );
    tr.finished("backup", "on-time", success(5), t(2 * HOUR + 3 * MIN));
    assert_eq!(
        tr.status("backup").unwrap().next_expected,
        Some(t(26 * HOUR))
    );
}

/// New York springs forward on 2024-03-10: 02:30 does not exist, and the 02:30 job is due
/// at 03:00 EDT (07:00Z); the next day at 02:30 EDT (06:30Z).
#[test]
fn a_schedule_across_spring_forward() {
    let e = schedule("30 2 * * *", "America/New_York", 10 * MIN as u64);
    let mut tr = watching(e, utc("2024-03-09T12:00:00Z"));
    let due = utc("2024-03-10T07:00:00Z");
    assert_eq!(tr.status("backup").unwrap().next_expected, Some(due));
    assert!(tr.tick(due).is_empty());
    assert_eq!(seen(&tr.tick(due + ms())), [(Condition::Late, true)]);
    let grace_end = utc("2024-03-10T07:10:00Z");
    assert!(tr.tick(grace_end).is_empty());
    assert_eq!(
        seen(&tr.tick(grace_end + ms())),
        [(Condition::Late, false), (Condition::Missed, true)]
    );
    tr.finished("backup", "e1", success(60), utc("2024-03-10T07:20:00Z"));
    assert_eq!(
        tr.status("backup").unwrap().next_expected,
        Some(utc("2024-03-11T06:30:00Z"))
    );
    // Three days without a success across the change: three slots, each counted once.
    let mut tr = watching(
        schedule("30 2 * * *", "America/New_York", 10 * MIN as u64),
        utc("2024-03-09T12:00:00Z"),
    );
    tr.tick(utc("2024-03-12T12:00:00Z"));
    let s = tr.status("backup").unwrap();
    assert_eq!(
        s.missed_total, 3,
        "03-10 07:00Z, 03-11 06:30Z, 03-12 06:30Z"
    );
    assert_eq!(s.next_expected, Some(utc("2024-03-13T06:30:00Z")));
}

/// New York falls back on 2024-11-03: 01:30 happens twice, and the 01:30 job is due once,
/// at the first (05:30Z); the repeated 01:30 (06:30Z) is no slot.
#[test]
fn a_schedule_across_fall_back() {
    let e = schedule("30 1 * * *", "America/New_York", 10 * MIN as u64);
    let mut tr = watching(e, utc("2024-11-02T12:00:00Z"));
    assert_eq!(
        tr.status("backup").unwrap().next_expected,
        Some(utc("2024-11-03T05:30:00Z"))
    );
    tr.finished("backup", "e1", success(60), utc("2024-11-03T05:31:00Z"));
    assert_eq!(
        tr.status("backup").unwrap().next_expected,
        Some(utc("2024-11-04T06:30:00Z")),
        "01:30 EST the next day"
    );
    assert!(
        tr.tick(utc("2024-11-03T06:45:00Z")).is_empty(),
        "no second run due"
    );
    assert_eq!(state(&tr), State::Ok);
    // Unwatched through the change: the one slot of the day counts once.
    let mut tr = watching(
        schedule("30 1 * * *", "America/New_York", 10 * MIN as u64),
        utc("2024-11-02T12:00:00Z"),
    );
    tr.tick(utc("2024-11-03T12:00:00Z"));
    assert_eq!(tr.status("backup").unwrap().missed_total, 1);
}

#[test]
fn overdue_beyond_max_duration_until_the_run_ends() {
    let mut e = expect(None);
    e.max_duration = Some(secs(10 * MIN as u64));
    let mut tr = watching(e, t(0));
    tr.started("backup", "e1", t(0));
    assert_eq!(
        tr.next_change_at(),
        Some(t(10 * MIN) + chrono::Duration::nanoseconds(1))
    );
    assert!(tr.tick(t(10 * MIN)).is_empty(), "at max_duration: not yet");
    let c = tr.tick(t(10 * MIN) + ms());
    assert_eq!(seen(&c), [(Condition::Overdue, true)]);
    assert_eq!(c[0].execution_id.as_deref(), Some("e1"));
    assert_eq!(c[0].since, t(10 * MIN));
    let a = c[0].alert().unwrap();
    assert_eq!(a.kind, "script_overdue");
    assert_eq!(a.severity, Severity::Warning);
    assert_eq!(a.annotations["execution_id"], "e1");
    assert_eq!(a.threshold, 600.0);
    assert_eq!(
        a.message,
        "Script `backup` is overdue: execution e1 started at 2024-01-01T00:00:00Z and is still \
         running past its max_duration of 10m"
    );
    // Another run does not change the alert; the first ending leaves the second overdue.
    tr.started("backup", "e2", t(MIN));
    assert!(tr.tick(t(11 * MIN) + ms()).is_empty());
    assert!(tr
        .finished("backup", "e1", success(700), t(12 * MIN))
        .is_empty());
    assert_eq!(
        tr.firing(t(12 * MIN))[0].annotations["execution_id"],
        "e2",
        "now about the run still overdue"
    );
    let c = tr.finished("backup", "e2", success(700), t(13 * MIN));
    assert_eq!(seen(&c), [(Condition::Overdue, false)]);
    assert_eq!(c[0].execution_id.as_deref(), Some("e2"));
    assert_eq!(state(&tr), State::Ok);
}

#[test]
fn a_retry_starts_the_clock_of_max_duration_again() {
    let mut e = expect(None);
    e.max_duration = Some(secs(10 * MIN as u64));
    let mut tr = watching(e, t(0));
    tr.started("backup", "e1", t(0));
    assert!(tr
        .finished("backup", "e1", failure(false), t(5 * MIN))
        .is_empty());
    assert_eq!(tr.status("backup").unwrap().running, 0);
    tr.started("backup", "e1", t(5 * MIN + 1));
    assert!(tr.tick(t(10 * MIN) + ms()).is_empty());
    assert!(tr.tick(t(15 * MIN + 1)).is_empty());
    assert_eq!(
        seen(&tr.tick(t(15 * MIN + 1) + ms())),
        [(Condition::Overdue, true)]
    );
}

#[test]
fn failing_at_n_failures_in_a_row_not_at_n_minus_one() {
    let mut e = every(HOUR as u64, 10 * MIN as u64);
    e.failures_in_a_row = 3;
    let mut tr = watching(e, t(0));
    assert!(tr.finished("backup", "e1", failure(true), t(60)).is_empty());
    assert!(tr
        .finished("backup", "e2", failure(true), t(120))
        .is_empty());
    let s = tr.status("backup").unwrap();
    assert_eq!((s.failures_in_a_row, s.state), (2, State::Ok));
    let c = tr.finished("backup", "e3", failure(true), t(180));
    assert_eq!(seen(&c), [(Condition::Failing, true)]);
    assert_eq!(c[0].execution_id.as_deref(), Some("e3"));
    assert_eq!(
        c[0].summary,
        "Script `backup` failed 3 times in a row (failures_in_a_row: 3); the last failure was \
         execution e3"
    );
    let a = c[0].alert().unwrap();
    assert_eq!(
        (a.kind.as_str(), a.value, a.threshold),
        ("script_failing", 3.0, 3.0)
    );
    // More failures keep it failing, about the latest.
    assert!(tr
        .finished("backup", "e4", failure(true), t(240))
        .is_empty());
    assert_eq!(tr.firing(t(240))[0].annotations["execution_id"], "e4");
    let c = tr.finished("backup", "ok", success(30), t(300));
    assert_eq!(seen(&c), [(Condition::Failing, false)]);
    assert_eq!(
        c[0].summary,
        "Script `backup` succeeded at 2024-01-01T00:05:00Z (execution ok, in 30s) after 4 \
         failures in a row"
    );
    assert_eq!(tr.status("backup").unwrap().failures_in_a_row, 0);
}

#[test]
fn a_failure_that_will_be_retried_counts_only_when_asked() {
    let mut tr = watching(expect(None), t(0));
    assert!(tr.finished("backup", "e1", failure(false), t(1)).is_empty());
    assert!(tr.finished("backup", "e1", failure(false), t(2)).is_empty());
    assert_eq!(tr.status("backup").unwrap().failures_in_a_row, 0);
    assert_eq!(
        seen(&tr.finished("backup", "e1", failure(true), t(3))),
        [(Condition::Failing, true)]
    );
    let mut e = expect(None);
    e.alert_after_last_retry = false;
    e.failures_in_a_row = 2;
    let mut tr = watching(e, t(0));
    assert!(tr.finished("backup", "e1", failure(false), t(1)).is_empty());
    assert_eq!(
        seen(&tr.finished("backup", "e1", failure(false), t(2))),
        [(Condition::Failing, true)]
    );
}

#[test]
fn too_short_below_min_duration_not_at_it() {
    let mut e = expect(None);
    e.min_duration = Some(secs(5));
    let mut tr = watching(e, t(0));
    assert!(tr.finished("backup", "e1", success(5), t(10)).is_empty());
    let short = RunEnd {
        duration: Duration::from_millis(4999),
        ..success(0)
    };
    let c = tr.finished("backup", "e2", short, t(20));
    assert_eq!(seen(&c), [(Condition::TooShort, true)]);
    assert_eq!(
        c[0].summary,
        "Script `backup` succeeded in 4s999ms (execution e2), less than its min_duration of \
         5s: did it do its work?"
    );
    let a = c[0].alert().unwrap();
    assert_eq!(
        (a.kind.as_str(), a.value, a.threshold),
        ("script_too_short", 4.999, 5.0)
    );
    assert_eq!(a.severity, Severity::Warning);
    // Still a success: it clears a failure streak and satisfies the window.
    assert_eq!(tr.status("backup").unwrap().last_success, Some(t(20)));
    let c = tr.finished("backup", "e3", success(5), t(30));
    assert_eq!(seen(&c), [(Condition::TooShort, false)]);
    assert_eq!(
        c[0].summary,
        "Script `backup` succeeded at 2024-01-01T00:00:30Z (execution e3, in 5s), no shorter \
         than its min_duration of 5s"
    );
    // A failure says nothing about a success's length.
    tr.finished("backup", "e4", short, t(40));
    assert!(!seen(&tr.finished("backup", "e5", failure(true), t(50)))
        .contains(&(Condition::TooShort, false)));
}

#[test]
fn new_expectations_keep_the_history_that_still_applies() {
    let mut e = every(HOUR as u64, 10 * MIN as u64);
    e.failures_in_a_row = 3;
    let mut tr = watching(e.clone(), t(0));
    tr.finished("backup", "ok", success(30), t(10 * MIN));
    tr.finished("backup", "f1", failure(true), t(20 * MIN));
    tr.finished("backup", "f2", failure(true), t(30 * MIN));
    tr.tick(t(3 * HOUR));
    let s = tr.status("backup").unwrap();
    assert_eq!((s.missed_total, s.state), (2, State::Missed));

    // The same rule with a longer grace: the window and its miss stand.
    let mut longer = e.clone();
    longer.cadence.as_mut().unwrap().grace = secs(20 * MIN as u64);
    assert!(tr
        .watch("backup", Some("ops"), longer, t(3 * HOUR))
        .is_empty());
    assert_eq!(state(&tr), State::Missed);

    // A schedule instead: the miss under the old rule clears, the first slot counts from
    // now; the last success, the failures and the counters stay.
    let mut daily = schedule("0 2 * * *", "UTC", 10 * MIN as u64);
    daily.failures_in_a_row = 3;
    let c = tr.watch("backup", Some("ops"), daily.clone(), t(3 * HOUR));
    assert_eq!(seen(&c), [(Condition::Missed, false)]);
    assert_eq!(
        c[0].summary,
        "Script `backup`'s expectations changed: no longer missed"
    );
    let s = tr.status("backup").unwrap();
    assert_eq!(s.next_expected, Some(t(26 * HOUR)));
    assert_eq!(s.last_success, Some(t(10 * MIN)));
    assert_eq!(
        (s.failures_in_a_row, s.missed_total, s.missed_in_a_row),
        (2, 2, 0)
    );
    assert_eq!(s.state, State::Ok);

    // Fewer failures in a row now make an incident: the two seen are enough.
    daily.failures_in_a_row = 2;
    let c = tr.watch("backup", Some("ops"), daily.clone(), t(4 * HOUR));
    assert_eq!(seen(&c), [(Condition::Failing, true)]);
    assert_eq!(c[0].execution_id.as_deref(), Some("f2"));
    daily.failures_in_a_row = 5;
    let c = tr.watch("backup", Some("ops"), daily.clone(), t(5 * HOUR));
    assert_eq!(seen(&c), [(Condition::Failing, false)]);

    // A min_duration added judges the last success; the same expectations change nothing.
    daily.min_duration = Some(secs(60));
    let c = tr.watch("backup", Some("ops"), daily.clone(), t(6 * HOUR));
    assert_eq!(seen(&c), [(Condition::TooShort, true)]);
    assert!(tr
        .watch("backup", Some("ops"), daily, t(6 * HOUR))
        .is_empty());
}

#[test]
fn a_shorter_grace_can_turn_late_into_missed() {
    let mut tr = watching(every(HOUR as u64, 30 * MIN as u64), t(0));
    tr.tick(t(HOUR + 15 * MIN));
    assert_eq!(state(&tr), State::Late);
    let c = tr.watch(
        "backup",
        Some("ops"),
        every(HOUR as u64, 10 * MIN as u64),
        t(HOUR + 15 * MIN),
    );
    assert_eq!(
        seen(&c),
        [(Condition::Late, false), (Condition::Missed, true)]
    );
}

#[test]
fn history_fed_in_at_the_start_judges_the_window() {
    // Watching begins at 10h; the log says the last success was at 9h10m.
    let mut tr = watching(every(HOUR as u64, 10 * MIN as u64), t(10 * HOUR));
    assert!(tr
        .finished("backup", "old", success(30), t(9 * HOUR + 10 * MIN))
        .is_empty());
    let s = tr.status("backup").unwrap();
    assert_eq!(s.next_expected, Some(t(10 * HOUR + 10 * MIN)));
    assert_eq!(s.state, State::Ok);
    assert_eq!(
        seen(&tr.tick(t(10 * HOUR + 20 * MIN) + ms())),
        [(Condition::Missed, true)]
    );
    // An older success still (out of order) does not move the window back.
    tr.finished("backup", "older", success(30), t(8 * HOUR));
    assert_eq!(state(&tr), State::Missed);
    assert_eq!(
        tr.status("backup").unwrap().last_success,
        Some(t(9 * HOUR + 10 * MIN))
    );
}

#[test]
fn a_window_opened_again_by_history_is_not_counted_twice() {
    let mut tr = watching(every(HOUR as u64, 10 * MIN as u64), t(0));
    tr.tick(t(3 * HOUR + 30 * MIN));
    assert_eq!(
        tr.status("backup").unwrap().missed_total,
        3,
        "due at 1h, 2h, 3h"
    );
    // The log then tells of a success at 1h30m: the window due at 2h30m passed its grace
    // too, but it lies within what was counted.
    assert!(tr
        .finished("backup", "late-news", success(30), t(HOUR + 30 * MIN))
        .is_empty());
    let s = tr.status("backup").unwrap();
    assert_eq!((s.missed_total, s.missed_in_a_row), (3, 1));
    assert_eq!(
        (s.state, s.next_expected),
        (State::Missed, Some(t(3 * HOUR + 30 * MIN)))
    );
}

#[test]
fn a_new_specialist_moves_the_alerts_to_their_new_identity() {
    let mut tr = watching(expect(None), t(0));
    tr.finished("backup", "f1", failure(true), t(1));
    let old = tr.firing(t(2));
    let c = tr.watch("backup", Some("sre"), expect(None), t(2));
    assert_eq!(
        seen(&c),
        [(Condition::Failing, false), (Condition::Failing, true)]
    );
    let resolved = c[0].alert().unwrap();
    let fired = c[1].alert().unwrap();
    assert_eq!(resolved.fingerprint, old[0].fingerprint);
    assert_eq!(fired.labels["specialist"], "sre");
    assert_ne!(fired.fingerprint, old[0].fingerprint);
    assert_eq!(fired.starts_at, t(1), "the condition keeps its start");
}

#[test]
fn unwatching_and_syncing_resolve_what_was_firing() {
    let mut tr = watching(expect(None), t(0));
    tr.finished("backup", "f1", failure(true), t(1));
    let c = tr.unwatch("backup", t(2));
    assert_eq!(seen(&c), [(Condition::Failing, false)]);
    assert!(
        c[0].summary.contains("no longer watched"),
        "{}",
        c[0].summary
    );
    assert!(tr.status("backup").is_none());
    assert!(tr.unwatch("backup", t(3)).is_empty());
    // Events of scripts not watched are ignored.
    assert!(tr.finished("backup", "f2", failure(true), t(4)).is_empty());

    let e = expect(None);
    let c = tr.sync([("a", None, Some(&e)), ("b", Some("ops"), Some(&e))], t(5));
    assert!(c.is_empty());
    tr.finished("a", "f", failure(true), t(6));
    let c = tr.sync([("a", None, None), ("b", Some("ops"), Some(&e))], t(7));
    assert_eq!(seen(&c), [(Condition::Failing, false)]);
    assert_eq!(c[0].script, "a");
    let ids: Vec<String> = tr.statuses().into_iter().map(|s| s.script).collect();
    assert_eq!(ids, ["b"]);
}

#[test]
fn firing_alerts_are_those_of_the_conditions_holding() {
    let mut e = every(HOUR as u64, 0);
    e.max_duration = Some(secs(10 * MIN as u64));
    let mut tr = watching(e, t(0));
    tr.started("backup", "e1", t(0));
    tr.tick(t(HOUR));
    let firing = tr.firing(t(HOUR));
    let kinds: Vec<&str> = firing.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds, ["script_overdue"], "nothing for late");
    assert!(firing.iter().all(|a| a.timestamp == t(HOUR)));
    tr.tick(t(HOUR) + ms());
    let kinds: Vec<String> = tr.firing(t(2 * HOUR)).into_iter().map(|a| a.kind).collect();
    assert_eq!(kinds, ["script_missed", "script_overdue"]);
}

#[test]
fn the_next_change_is_the_next_boundary() {
    let mut e = every(HOUR as u64, 10 * MIN as u64);
    e.max_duration = Some(secs(30 * MIN as u64));
    let mut tr = watching(e, t(0));
    let just = |s| Some(t(s) + chrono::Duration::nanoseconds(1));
    assert_eq!(tr.next_change_at(), just(HOUR));
    tr.started("backup", "e1", t(20 * MIN));
    assert_eq!(tr.next_change_at(), just(50 * MIN));
    tr.tick(t(50 * MIN) + ms());
    assert_eq!(tr.next_change_at(), just(HOUR));
    tr.tick(t(HOUR) + ms());
    assert_eq!(
        tr.next_change_at(),
        just(HOUR + 10 * MIN),
        "the end of the grace"
    );
    tr.tick(t(HOUR + 10 * MIN) + ms());
    assert_eq!(
        tr.next_change_at(),
        just(2 * HOUR + 10 * MIN),
        "the next window's"
    );
    assert_eq!(Tracker::new().next_change_at(), None);
}

#[test]
fn running_attempts_are_bounded() {
    let mut tr = watching(expect(None), t(0));
    for i in 0..(state::MAX_RUNNING as i64 + 5) {
        tr.started("backup", &format!("e{i}"), t(i));
    }
    assert_eq!(tr.status("backup").unwrap().running, state::MAX_RUNNING);
}

/// A scheduler's last slot before the host went down: the windows since are judged at
/// once, each counted missed when its grace has passed; a success resolves it.
#[test]
fn a_backdated_watch_counts_the_windows_missed_while_the_host_was_down() {
    let expect = Expectations::implied(
        Rule::Schedule(Schedule::parse("* * * * *", "UTC").unwrap()),
        Duration::from_secs(10),
    );
    let mut t = Tracker::new();
    let start = utc("2024-01-01T00:10:00Z");
    assert!(t.watch("a", None, expect, start).is_empty());
    let changes = t.backdate("a", utc("2024-01-01T00:05:00Z"), start);
    // 00:06 to 00:09 passed with their grace; 00:10 is due now, not yet late.
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(changes[0].began && changes[0].condition == Condition::Missed);
    let st = t.status("a").unwrap();
    assert_eq!((st.missed_total, st.missed_in_a_row), (4, 4));
    // Backdating again, or after a run, changes nothing.
    assert!(t
        .backdate("a", utc("2024-01-01T00:00:00Z"), start)
        .is_empty());
    assert_eq!(t.status("a").unwrap().missed_total, 4);
    let ok = RunEnd {
        success: true,
        duration: Duration::from_secs(1),
        last_attempt: true,
    };
    let changes = t.finished("a", "e1", ok, utc("2024-01-01T00:10:05Z"));
    assert!(changes
        .iter()
        .any(|c| !c.began && c.condition == Condition::Missed));
}
