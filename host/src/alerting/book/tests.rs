//! The book's timings with an injected clock: group wait, repeat interval, resolve,
//! escalation, resolve timeout, severity filters, silences and inhibition, groups.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
}

fn firing(at: i64, kind: &str, severity: Severity, specialist: Option<&str>) -> Alert {
    let mut a = Alert::firing(t(at), kind, severity, format!("{kind} at {at}"), 15.0, 10.0);
    a.specialist = specialist.map(str::to_string);
    a
}

fn resolved(at: i64, kind: &str) -> Alert {
    let mut a = firing(at, kind, Severity::Warning, None);
    a.status = AlertStatus::Resolved;
    a.ends_at = Some(t(at));
    a
}

fn routing(group_wait: u64, repeat: u64) -> Routing {
    Routing {
        group_by: Vec::new(),
        group_wait: Duration::from_secs(group_wait),
        group_interval: Duration::from_secs(group_wait),
        repeat_interval: Duration::from_secs(repeat),
        send_resolved: true,
        min_severity: Severity::Warning,
    }
}

/// What receiver 1 is told, as (type, status) pairs.
fn told(o: &Outcome) -> Vec<(String, AlertStatus)> {
    o.notify
        .iter()
        .filter(|(id, _)| *id == 1)
        .flat_map(|(_, alerts)| alerts.iter().map(|a| (a.kind.clone(), a.status)))
        .collect()
}

#[test]
fn alerts_arising_together_wait_the_group_wait_and_go_out_together() {
    let mut book = AlertBook::default();
    book.add_receiver(1, routing(30, 3600), t(0));
    let o = book.observe(vec![firing(0, "a", Severity::Warning, None)], t(0));
    assert_eq!(o.changed.len(), 1);
    assert!(o.notify.is_empty(), "not before the group wait");
    assert_eq!(book.next_due(), Some(t(30)));
    let o = book.observe(vec![firing(10, "b", Severity::Warning, None)], t(10));
    assert!(o.notify.is_empty());
    assert!(book.tick(t(29)).notify.is_empty());
    let o = book.tick(t(30));
    assert_eq!(
        told(&o),
        [
            ("a".into(), AlertStatus::Firing),
            ("b".into(), AlertStatus::Firing)
        ]
    );
    // Both keep firing: nothing more until the repeat interval.
    for s in [40, 600, 3599] {
        let o = book.observe(
            vec![
                firing(s, "a", Severity::Warning, None),
                firing(s, "b", Severity::Warning, None),
            ],
            t(s),
        );
        assert!(o.changed.is_empty() && o.notify.is_empty(), "at {s}");
    }
    let o = book.observe(vec![firing(3630, "a", Severity::Warning, None)], t(3630));
    assert_eq!(
        told(&o),
        [
            ("a".into(), AlertStatus::Firing),
            ("b".into(), AlertStatus::Firing)
        ],
        "both repeat, told together at 30"
    );
    let a = &o.notify[0].1[0];
    assert_eq!(a.starts_at, t(0), "the same alert: its start is kept");
    assert_eq!(a.timestamp, t(3630));
}

#[test]
fn a_resolved_alert_is_sent_once_to_who_was_told_it_fired() {
    let mut book = AlertBook::default();
    book.add_receiver(1, routing(0, 3600), t(0));
    let o = book.observe(vec![firing(0, "a", Severity::Warning, None)], t(0));
    assert_eq!(
        told(&o),
        [("a".into(), AlertStatus::Firing)],
        "no group wait"
    );
    let o = book.observe(vec![resolved(100, "a")], t(100));
    assert_eq!(o.changed.len(), 1);
    assert_eq!(told(&o), [("a".into(), AlertStatus::Resolved)]);
    let r = &o.notify[0].1[0];
    assert_eq!((r.starts_at, r.ends_at), (t(0), Some(t(100))));
    assert!(book.active().is_empty());
    assert_eq!(book.recent().len(), 1);
    // Resolved again, or an alert never seen resolved: nothing.
    let o = book.observe(vec![resolved(110, "a"), resolved(110, "z")], t(110));
    assert!(o.changed.is_empty() && o.notify.is_empty());
    // Firing again later: a new alert with a new start.
    book.observe(vec![firing(200, "a", Severity::Warning, None)], t(200));
    assert_eq!(book.active()[0].starts_at, t(200));
}

#[test]
fn an_alert_resolved_during_the_group_wait_is_never_sent() {
    let mut book = AlertBook::default();
    book.add_receiver(1, routing(30, 3600), t(0));
    book.observe(vec![firing(0, "a", Severity::Warning, None)], t(0));
    book.observe(vec![resolved(10, "a")], t(10));
    assert!(book.tick(t(30)).notify.is_empty());
}

#[test]
fn escalation_keeps_the_alert_and_is_sent_as_a_change() {
    let mut book = AlertBook::default();
    book.add_receiver(1, routing(5, 3600), t(0));
    book.observe(vec![firing(0, "a", Severity::Warning, None)], t(0));
    book.tick(t(5));
    let o = book.observe(vec![firing(60, "a", Severity::Critical, None)], t(60));
    assert_eq!(o.changed.len(), 1, "escalation is a change");
    assert!(o.notify.is_empty(), "waits its group wait");
    let o = book.tick(t(65));
    assert_eq!(o.notify[0].1[0].severity, Severity::Critical);
    assert_eq!(o.notify[0].1[0].starts_at, t(0));
    assert_eq!(book.active().len(), 1);
}

#[test]
fn specialists_are_separate_alerts() {
    let mut book = AlertBook::default();
    book.add_receiver(1, routing(0, 3600), t(0));
    let o = book.observe(
        vec![
            firing(0, "a", Severity::Warning, Some("ops")),
            firing(0, "a", Severity::Warning, Some("web")),
            firing(0, "a", Severity::Warning, None),
        ],
        t(0),
    );
    assert_eq!(o.notify[0].1.len(), 3);
    let specialists: Vec<_> = book.active().iter().map(|a| a.specialist.clone()).collect();
    assert!(specialists.contains(&Some("ops".into())) && specialists.contains(&None));
}

#[test]
fn an_alert_not_seen_again_resolves_after_the_resolve_timeout() {
    let mut book = AlertBook::new(Duration::from_secs(300));
    book.add_receiver(1, routing(0, 3600), t(0));
    book.observe(vec![firing(0, "a", Severity::Warning, None)], t(0));
    book.observe(vec![firing(100, "a", Severity::Warning, None)], t(100));
    assert!(book.tick(t(399)).changed.is_empty());
    assert_eq!(book.next_due(), Some(t(400)));
    let o = book.tick(t(400));
    assert_eq!(told(&o), [("a".into(), AlertStatus::Resolved)]);
    assert_eq!(o.changed[0].ends_at, Some(t(400)));
}

#[test]
fn receivers_filter_by_severity_and_may_skip_resolved() {
    let mut book = AlertBook::default();
    let mut pager = routing(0, 3600);
    pager.min_severity = Severity::Critical;
    pager.send_resolved = false;
    book.add_receiver(1, routing(0, 3600), t(0));
    book.add_receiver(2, pager, t(0));
    let o = book.observe(
        vec![
            firing(0, "w", Severity::Warning, None),
            firing(0, "c", Severity::Critical, None),
        ],
        t(0),
    );
    let to = |o: &Outcome, id| {
        o.notify
            .iter()
            .filter(|(r, _)| *r == id)
            .flat_map(|(_, a)| a.iter().map(|a| a.kind.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(to(&o, 1).len(), 2);
    assert_eq!(to(&o, 2), ["c"]);
    let mut c = resolved(10, "c");
    c.severity = Severity::Critical;
    let o = book.observe(vec![c], t(10));
    assert_eq!(to(&o, 1), ["c"]);
    assert!(to(&o, 2).is_empty(), "send_resolved = false");
}

#[test]
fn a_receiver_added_later_hears_of_active_alerts_after_its_group_wait() {
    let mut book = AlertBook::default();
    book.observe(vec![firing(0, "a", Severity::Warning, None)], t(0));
    book.add_receiver(1, routing(10, 3600), t(50));
    assert!(book.tick(t(59)).notify.is_empty());
    assert_eq!(told(&book.tick(t(60))), [("a".into(), AlertStatus::Firing)]);
}

#[test]
fn fingerprints_come_from_identity_and_summaries_from_messages() {
    let mut book = AlertBook::default();
    let mut a = firing(0, "a", Severity::Warning, Some("ops"));
    a.fingerprint = "whatever the rule said".into();
    book.observe(vec![a], t(0));
    let active = book.active();
    assert_eq!(
        active[0].fingerprint,
        metaclaude_formats::alerts::fingerprint("a", Some("ops"), [])
    );
    assert_eq!(active[0].annotations["summary"], "a at 0");
}

#[test]
fn stopping_cuts_group_waits_short() {
    let mut book = AlertBook::default();
    book.add_receiver(1, routing(30, 3600), t(0));
    book.observe(vec![firing(0, "a", Severity::Warning, None)], t(0));
    assert_eq!(told(&book.drain(t(1))), [("a".into(), AlertStatus::Firing)]);
    assert!(book.drain(t(2)).notify.is_empty(), "told once");
}

#[test]
fn memory_is_bounded() {
    let mut book = AlertBook::default();
    let many: Vec<Alert> = (0..MAX_ACTIVE + 5)
        .map(|i| firing(0, &format!("k{i}"), Severity::Warning, None))
        .collect();
    book.observe(many, t(0));
    assert_eq!(book.active().len(), MAX_ACTIVE);
    assert_eq!(book.refused(), 5);
}

fn silence(matchers: &[&str], starts: i64, ends: i64, now: i64) -> Silences {
    let mut s = Silences::default();
    add_silence(&mut s, "S1", matchers, starts, ends, now);
    s
}

fn add_silence(s: &mut Silences, id: &str, matchers: &[&str], starts: i64, ends: i64, now: i64) {
    use crate::alerting::matchers::Matcher;
    s.add(
        crate::alerting::silences::NewSilence {
            matchers: matchers
                .iter()
                .map(|m| Matcher::parse(m).unwrap().into())
                .collect(),
            starts_at: Some(t(starts)),
            ends_at: t(ends),
            created_by: "ana".into(),
            comment: "maintenance".into(),
        },
        id.into(),
        t(now),
    )
    .unwrap();
}

fn scripted(at: i64, kind: &str, severity: Severity, script: &str) -> Alert {
    let mut a = firing(at, kind, severity, None);
    a.labels.insert("script".into(), script.into());
    a
}

/// (type, silenced_by, inhibited_by) of each change.
fn marks(o: &Outcome) -> Vec<(String, Vec<String>, usize)> {
    o.changed
        .iter()
        .map(|a| (a.kind.clone(), a.silenced_by.clone(), a.inhibited_by.len()))
        .collect()
}

#[test]
fn a_silenced_alert_is_recorded_not_notified_and_notified_when_the_silence_ends() {
    let mut book = AlertBook::default();
    book.add_receiver(1, routing(10, 3600), t(0));
    book.set_silences(silence(&["script=backup"], 0, 100, 0), t(0));
    let o = book.observe(
        vec![
            scripted(5, "script_failing", Severity::Critical, "backup"),
            scripted(5, "script_failing", Severity::Critical, "deploy"),
        ],
        t(5),
    );
    let m = marks(&o);
    assert!(
        m.contains(&("script_failing".into(), vec!["S1".into()], 0)),
        "{m:?}"
    );
    assert!(m.contains(&("script_failing".into(), vec![], 0)), "{m:?}");
    let o = book.tick(t(15));
    assert_eq!(o.notify[0].1.len(), 1, "only deploy");
    assert_eq!(o.notify[0].1[0].labels["script"], "deploy");
    // Firing on, silenced: nothing; the silence's end is due.
    let o = book.observe(
        vec![scripted(50, "script_failing", Severity::Critical, "backup")],
        t(50),
    );
    assert!(o.changed.is_empty() && o.notify.is_empty());
    assert_eq!(book.next_due(), Some(t(100)));
    assert!(book.tick(t(99)).changed.is_empty());
    // The end, excluded: no longer muted, a change, notified after the group wait.
    let o = book.tick(t(100));
    assert_eq!(marks(&o), [("script_failing".into(), vec![], 0)]);
    assert_eq!(o.changed[0].timestamp, t(100), "observed unmuted then");
    assert!(o.notify.is_empty(), "the group wait first");
    let o = book.tick(t(110));
    assert_eq!(told(&o), [("script_failing".into(), AlertStatus::Firing)]);
    assert_eq!(o.notify[0].1[0].labels["script"], "backup");
    assert!(o.notify[0].1[0].silenced_by.is_empty());
}

#[test]
fn a_pending_silence_mutes_from_its_start_and_expiring_it_early_notifies_again() {
    let mut book = AlertBook::default();
    book.add_receiver(1, routing(0, 3600), t(0));
    book.set_silences(silence(&["script=~back.*"], 100, 1000, 0), t(0));
    let o = book.observe(
        vec![scripted(0, "script_failing", Severity::Critical, "backup")],
        t(0),
    );
    assert_eq!(told(&o).len(), 1, "pending: notified");
    assert_eq!(book.next_due(), Some(t(100)), "its start is due");
    assert!(book.tick(t(99)).changed.is_empty());
    let o = book.tick(t(100));
    assert_eq!(marks(&o), [("script_failing".into(), vec!["S1".into()], 0)]);
    assert!(o.notify.is_empty(), "no resolved either: muted");
    // Expired early at 200 while it fires: new to the receiver, sent at once (no group
    // wait here), not at the repeat interval.
    let mut s = silence(&["script=~back.*"], 100, 1000, 0);
    s.expire("S1", t(200)).unwrap();
    let o = book.set_silences(s, t(200));
    assert_eq!(marks(&o), [("script_failing".into(), vec![], 0)]);
    assert_eq!(told(&o), [("script_failing".into(), AlertStatus::Firing)]);
}

#[test]
fn an_alert_resolving_while_silenced_is_recorded_and_not_sent() {
    let mut book = AlertBook::default();
    book.add_receiver(1, routing(0, 3600), t(0));
    book.observe(
        vec![scripted(0, "script_failing", Severity::Critical, "backup")],
        t(0),
    );
    book.set_silences(silence(&["script=backup"], 10, 1000, 10), t(10));
    let mut gone = scripted(20, "script_failing", Severity::Critical, "backup");
    gone.status = AlertStatus::Resolved;
    let o = book.observe(vec![gone], t(20));
    assert_eq!(o.changed.len(), 1);
    assert_eq!(o.changed[0].status, AlertStatus::Resolved);
    assert_eq!(o.changed[0].silenced_by, ["S1"]);
    assert!(o.notify.is_empty(), "muted: not sent, as Alertmanager");
    assert_eq!(book.recent()[0].silenced_by, ["S1"]);
}

#[test]
fn a_regex_silence_is_anchored() {
    let mut book = AlertBook::default();
    book.add_receiver(1, routing(0, 3600), t(0));
    book.set_silences(silence(&["script=~back"], 0, 1000, 0), t(0));
    let o = book.observe(
        vec![scripted(0, "script_failing", Severity::Critical, "backup")],
        t(0),
    );
    assert!(o.changed[0].silenced_by.is_empty());
    assert_eq!(told(&o).len(), 1);
}

#[test]
fn a_critical_alert_inhibits_the_warning_of_the_same_labels_while_it_fires() {
    let mut book = AlertBook::default();
    book.add_receiver(1, routing(0, 3600), t(0));
    let o = book.observe(
        vec![scripted(0, "script_overdue", Severity::Warning, "backup")],
        t(0),
    );
    assert_eq!(told(&o), [("script_overdue".into(), AlertStatus::Firing)]);
    // The critical one arrives: the warning is inhibited (a change), the critical sent.
    let o = book.observe(
        vec![
            scripted(10, "script_missed", Severity::Critical, "backup"),
            scripted(10, "script_overdue", Severity::Warning, "backup"),
        ],
        t(10),
    );
    let m = marks(&o);
    assert!(m.contains(&("script_overdue".into(), vec![], 1)), "{m:?}");
    assert_eq!(told(&o), [("script_missed".into(), AlertStatus::Firing)]);
    let overdue = book
        .active()
        .into_iter()
        .find(|a| a.kind == "script_overdue")
        .unwrap();
    let missed = book
        .active()
        .into_iter()
        .find(|a| a.kind == "script_missed")
        .unwrap();
    assert_eq!(
        overdue.inhibited_by,
        std::slice::from_ref(&missed.fingerprint)
    );
    // No repeat of the inhibited one at the repeat interval; the critical repeats.
    let o = book.observe(
        vec![
            scripted(3600, "script_missed", Severity::Critical, "backup"),
            scripted(3600, "script_overdue", Severity::Warning, "backup"),
        ],
        t(3610),
    );
    assert_eq!(told(&o), [("script_missed".into(), AlertStatus::Firing)]);
    // The critical resolves: the warning, still firing, is no longer inhibited and is
    // notified again.
    let mut resolved = scripted(3700, "script_missed", Severity::Critical, "backup");
    resolved.status = AlertStatus::Resolved;
    let o = book.observe(vec![resolved], t(3700));
    let m = marks(&o);
    assert!(m.contains(&("script_overdue".into(), vec![], 0)), "{m:?}");
    let mut sent = told(&o);
    sent.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        sent,
        [
            ("script_missed".into(), AlertStatus::Resolved),
            ("script_overdue".into(), AlertStatus::Firing)
        ]
    );
    // Turned off, nothing is inhibited.
    let mut book = AlertBook::default();
    book.set_inhibit_rules(InhibitRules::none(), t(0));
    book.add_receiver(1, routing(0, 3600), t(0));
    let o = book.observe(
        vec![
            scripted(0, "script_missed", Severity::Critical, "backup"),
            scripted(0, "script_overdue", Severity::Warning, "backup"),
        ],
        t(0),
    );
    assert_eq!(told(&o).len(), 2);
}

/// A maintenance window mutes like a silence from its slot for its duration (2023-11-14
/// 23:00 UTC is t(2800)), and the alert still firing when it closes is notified.
#[test]
fn a_maintenance_window_mutes_while_open_and_notifies_when_it_closes() {
    let mut book = AlertBook::default();
    book.add_receiver(1, routing(10, 3600), t(0));
    let rules = InhibitRules::parse(
        "[[maintenance_windows]]\nname = \"nightly\"\nschedule = \"0 23 * * *\"\nduration = \"1h\"\nmatchers = [\"script=backup\"]\n",
        std::path::Path::new("rules.toml"),
    )
    .unwrap();
    book.set_inhibit_rules(rules, t(0));
    let o = book.observe(
        vec![scripted(
            2799,
            "script_failing",
            Severity::Critical,
            "backup",
        )],
        t(2799),
    );
    assert_eq!(
        marks(&o),
        [("script_failing".into(), vec![], 0)],
        "before it opens"
    );
    let o = book.tick(t(2800));
    assert_eq!(
        marks(&o),
        [(
            "script_failing".into(),
            vec!["maintenance:nightly".into()],
            0
        )],
        "muted from the slot"
    );
    let o = book.tick(t(2815));
    assert!(
        o.notify.is_empty(),
        "muted during its group wait: nothing sent"
    );
    for at in [
        3000, 3250, 3500, 3750, 4000, 4250, 4500, 4750, 5000, 5250, 5500, 5750, 6000, 6250, 6390,
    ] {
        book.observe(
            vec![scripted(at, "script_failing", Severity::Critical, "backup")],
            t(at),
        );
    }
    assert_eq!(book.next_due(), Some(t(6400)), "the window's end is due");
    let o = book.tick(t(6400));
    assert_eq!(marks(&o), [("script_failing".into(), vec![], 0)]);
    let o = book.tick(t(6410));
    assert_eq!(told(&o), [("script_failing".into(), AlertStatus::Firing)]);
}

/// A routing grouping by `labels`, its group wait, group interval and repeat interval.
fn grouped(labels: &[&str], wait: u64, interval: u64, repeat: u64) -> Routing {
    Routing {
        group_by: labels.iter().map(|l| l.to_string()).collect(),
        group_interval: Duration::from_secs(interval),
        ..routing(wait, repeat)
    }
}

/// Receiver 1's notifications, each as its alerts' `type/script/status`.
fn notes(o: &Outcome) -> Vec<Vec<String>> {
    o.notify
        .iter()
        .filter(|(id, _)| *id == 1)
        .map(|(_, alerts)| {
            alerts
                .iter()
                .map(|a| {
                    let script = a.labels.get("script").map_or("", String::as_str);
                    format!("{}/{script}/{}", a.kind, a.status.as_str())
                })
                .collect()
        })
        .collect()
}

/// [`notes`] in order, each in order, where alerts start together (their fingerprints,
/// hashes, decide the order).
fn sorted(o: &Outcome) -> Vec<Vec<String>> {
    let mut n = notes(o);
    n.iter_mut().for_each(|n| n.sort());
    n.sort();
    n
}

/// A book whose alerts do not time out during a test.
fn patient() -> AlertBook {
    AlertBook::new(Duration::from_secs(86_400))
}

fn gone(at: i64, kind: &str, script: &str) -> Alert {
    let mut a = scripted(at, kind, Severity::Warning, script);
    a.status = AlertStatus::Resolved;
    a.ends_at = Some(t(at));
    a
}

#[test]
fn groups_wait_separately_and_go_out_one_notification_each() {
    let mut book = patient();
    book.add_receiver(1, grouped(&["script"], 30, 30, 3600), t(0));
    book.observe(
        vec![scripted(0, "script_failing", Severity::Warning, "backup")],
        t(0),
    );
    book.observe(
        vec![
            scripted(10, "script_overdue", Severity::Warning, "backup"),
            scripted(10, "script_failing", Severity::Warning, "deploy"),
        ],
        t(10),
    );
    assert_eq!(
        book.next_due(),
        Some(t(30)),
        "backup's group, from its first"
    );
    assert!(book.tick(t(29)).notify.is_empty());
    assert_eq!(
        notes(&book.tick(t(30))),
        [[
            "script_failing/backup/firing",
            "script_overdue/backup/firing"
        ]],
        "backup's group at 30, with what joined it in its wait; not deploy's"
    );
    assert_eq!(book.next_due(), Some(t(40)));
    assert!(book.tick(t(39)).notify.is_empty());
    assert_eq!(notes(&book.tick(t(40))), [["script_failing/deploy/firing"]]);
    // Both groups due at once: two notifications, the oldest group first.
    book.observe(
        vec![scripted(100, "script_missed", Severity::Warning, "backup")],
        t(100),
    );
    book.observe(
        vec![scripted(101, "script_missed", Severity::Warning, "deploy")],
        t(101),
    );
    let o = book.tick(t(131));
    assert_eq!(
        notes(&o),
        [
            ["script_missed/backup/firing"],
            ["script_missed/deploy/firing"]
        ]
    );
}

#[test]
fn a_change_within_the_group_interval_waits_for_it() {
    let mut book = patient();
    book.add_receiver(1, grouped(&["script"], 10, 300, 3600), t(0));
    book.observe(
        vec![scripted(0, "script_failing", Severity::Warning, "backup")],
        t(0),
    );
    assert_eq!(notes(&book.tick(t(10))).len(), 1, "a new group: its wait");
    // A change 20 s later in the same group: the interval from 10, not the wait.
    book.observe(
        vec![scripted(20, "script_overdue", Severity::Warning, "backup")],
        t(20),
    );
    // Another group is not held by it.
    book.observe(
        vec![scripted(20, "script_failing", Severity::Warning, "deploy")],
        t(20),
    );
    assert_eq!(notes(&book.tick(t(30))), [["script_failing/deploy/firing"]]);
    assert_eq!(book.next_due(), Some(t(310)));
    assert!(book.tick(t(309)).notify.is_empty());
    assert_eq!(
        notes(&book.tick(t(310))),
        [["script_overdue/backup/firing"]],
        "what is new in the group"
    );
    // Past the interval, a change waits the group wait only.
    book.observe(
        vec![scripted(1000, "script_missed", Severity::Warning, "backup")],
        t(1000),
    );
    assert_eq!(book.next_due(), Some(t(1010)));
    assert_eq!(
        notes(&book.tick(t(1010))),
        [["script_missed/backup/firing"]]
    );
}

#[test]
fn a_group_with_nothing_new_is_resent_after_the_repeat_interval() {
    let mut book = patient();
    book.add_receiver(1, grouped(&["script"], 10, 60, 3600), t(0));
    let both = |at| {
        vec![
            scripted(at, "script_failing", Severity::Warning, "backup"),
            scripted(at, "script_overdue", Severity::Warning, "backup"),
            scripted(at, "script_failing", Severity::Warning, "deploy"),
        ]
    };
    book.observe(both(0), t(0));
    assert_eq!(sorted(&book.tick(t(10))).len(), 2);
    for at in [100, 1000, 3000] {
        assert!(book.observe(both(at), t(at)).notify.is_empty(), "at {at}");
    }
    assert_eq!(book.next_due(), Some(t(3610)));
    assert!(book.tick(t(3609)).notify.is_empty());
    assert_eq!(
        sorted(&book.observe(both(3610), t(3610))),
        [
            vec![
                "script_failing/backup/firing",
                "script_overdue/backup/firing"
            ],
            vec!["script_failing/deploy/firing"]
        ],
        "each group again, whole, one notification each"
    );
}

#[test]
fn a_resolved_alert_goes_out_in_its_group() {
    let mut book = patient();
    book.add_receiver(1, grouped(&["script"], 10, 10, 3600), t(0));
    book.observe(
        vec![
            scripted(0, "script_failing", Severity::Warning, "backup"),
            scripted(0, "script_failing", Severity::Warning, "deploy"),
        ],
        t(0),
    );
    assert_eq!(notes(&book.tick(t(10))).len(), 2);
    // backup's resolves as a new one arises in its group: one notification, both.
    book.observe(
        vec![
            gone(50, "script_failing", "backup"),
            scripted(50, "script_overdue", Severity::Warning, "backup"),
        ],
        t(50),
    );
    assert_eq!(
        notes(&book.tick(t(60))),
        [[
            "script_failing/backup/resolved",
            "script_overdue/backup/firing"
        ]]
    );
    book.observe(vec![gone(70, "script_failing", "deploy")], t(70));
    assert_eq!(
        notes(&book.tick(t(80))),
        [["script_failing/deploy/resolved"]]
    );
}

#[test]
fn muting_applies_to_each_alert_of_a_group() {
    let mut book = patient();
    book.add_receiver(1, grouped(&["type"], 10, 100, 3600), t(0));
    book.set_silences(silence(&["script=backup"], 0, 50, 0), t(0));
    book.observe(
        vec![
            scripted(0, "script_failing", Severity::Warning, "backup"),
            scripted(0, "script_failing", Severity::Warning, "deploy"),
        ],
        t(0),
    );
    assert_eq!(
        notes(&book.tick(t(10))),
        [["script_failing/deploy/firing"]],
        "the group without its silenced alert"
    );
    // The silence ends at 50: backup is new to the receiver, a change in the group, which
    // was notified at 10: it waits the group interval.
    let o = book.tick(t(50));
    assert_eq!(o.changed.len(), 1);
    assert!(o.notify.is_empty());
    assert_eq!(book.next_due(), Some(t(110)));
    assert_eq!(
        notes(&book.tick(t(110))),
        [["script_failing/backup/firing"]]
    );
}

#[test]
fn grouping_by_every_label_makes_each_alert_its_own_group() {
    let mut book = patient();
    book.add_receiver(1, grouped(&[GROUP_BY_ALL], 0, 0, 3600), t(0));
    let o = book.observe(
        vec![
            scripted(0, "script_failing", Severity::Warning, "backup"),
            scripted(0, "script_overdue", Severity::Warning, "backup"),
            scripted(0, "script_failing", Severity::Warning, "deploy"),
        ],
        t(0),
    );
    assert_eq!(notes(&o).len(), 3);
    assert!(notes(&o).iter().all(|n| n.len() == 1));
    // The default, no labels: one group of everything.
    let mut book = patient();
    book.add_receiver(1, routing(0, 3600), t(0));
    let o = book.observe(
        vec![
            scripted(0, "script_failing", Severity::Warning, "backup"),
            scripted(0, "script_failing", Severity::Warning, "deploy"),
        ],
        t(0),
    );
    assert_eq!(notes(&o).len(), 1);
}

#[test]
fn a_receiver_added_later_hears_of_each_group_apart() {
    let mut book = patient();
    book.observe(
        vec![
            scripted(0, "script_failing", Severity::Warning, "backup"),
            scripted(0, "script_failing", Severity::Warning, "deploy"),
        ],
        t(0),
    );
    book.add_receiver(1, grouped(&["alertname", "script"], 10, 10, 3600), t(50));
    assert!(book.tick(t(59)).notify.is_empty());
    assert_eq!(
        sorted(&book.tick(t(60))),
        [
            ["script_failing/backup/firing"],
            ["script_failing/deploy/firing"]
        ]
    );
}

#[test]
fn escalation_moves_an_alert_to_its_severitys_group() {
    let mut book = patient();
    book.add_receiver(1, grouped(&["severity"], 5, 60, 3600), t(0));
    book.observe(
        vec![
            scripted(0, "script_failing", Severity::Warning, "backup"),
            scripted(0, "script_failing", Severity::Warning, "deploy"),
        ],
        t(0),
    );
    assert_eq!(notes(&book.tick(t(5))).len(), 1);
    // The critical group is new: its group wait only, not the warning group's interval.
    book.observe(
        vec![scripted(10, "script_failing", Severity::Critical, "backup")],
        t(10),
    );
    assert_eq!(book.next_due(), Some(t(15)));
    let o = book.tick(t(15));
    assert_eq!(notes(&o), [["script_failing/backup/firing"]]);
    assert_eq!(o.notify[0].1[0].severity, Severity::Critical);
}
