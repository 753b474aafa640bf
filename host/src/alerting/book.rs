//! The alert book: which alerts are active, and what each receiver (a notifier, a
//! callback) is to be told and when. The part of Alertmanager a host needs, as a pure
//! state machine: time comes in as an argument, so every timing is testable.
//!
//! * **Observe.** Rules return each firing alert at every evaluation and a resolved one
//!   once. An alert is known by its fingerprint (type and labels, never severity): seen
//!   again it keeps its `starts_at`; a change of severity is a change; a resolved one
//!   leaves the active set with its `ends_at`. An alert not seen again within
//!   `resolve_timeout` is resolved by the book, as Alertmanager does for alerts without
//!   an end (0.1.0 rules never say that an alert resolved).
//! * **Route.** Each receiver has its [`Routing`]. Its alerts fall into groups by the
//!   values of its `group_by` labels (none: one group of everything; `...`: each alert
//!   its own group), and each notification holds one group's alerts. A change in a group
//!   (an alert new to the receiver, escalated, resolved) waits `group_wait`, so that the
//!   changes arising together go out together, and no sooner than `group_interval` after
//!   the group's last notification; a firing alert already notified is told again
//!   `repeat_interval` after it was last told (with the others of its group then due); a
//!   resolved one is sent once if the receiver was told it fired (and `send_resolved`);
//!   alerts below `min_severity` never go to it. Alertmanager sends a group's later
//!   changes on its next tick (every `group_interval` from its first notification), and
//!   every alert of the group each time; here a notification holds what is new or due in
//!   the group, and a change always waits `group_wait`: the same bound, one notification
//!   per group per `group_interval`, and with `group_interval` at most `group_wait` (its
//!   default, equal) exactly the timing of a book without groups.
//! * **Mute.** An alert a [silence](super::silences) matches, or an
//!   [inhibition rule](super::inhibit) holds back, is muted: recorded as ever (its
//!   `silenced_by`, `inhibited_by` say why), never notified, firing or resolved (as
//!   Alertmanager: a resolved alert muted is not sent either). A change of what mutes an
//!   alert is a change (recorded). Muted, the receivers forget they were told of it, so
//!   when the silence ends (or is expired early, or the inhibiting alert resolves) while it
//!   still fires it is new to them: notified after their group wait.
//!
//! Memory is bounded: at most [`MAX_ACTIVE`] active alerts (more are refused and
//! counted), [`MAX_RECENT`] recently resolved ones.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{maintenance, matchers, InhibitRules, Silences};
use crate::model::{Alert, AlertStatus, Severity};

/// Active alerts kept at most; beyond, new ones are refused (and counted).
pub const MAX_ACTIVE: usize = 10_000;
/// Resolved alerts kept for the API and the dashboards.
pub const MAX_RECENT: usize = 200;
/// How long an alert not seen again stays active (Alertmanager's `resolve_timeout`).
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(300);

/// The `group_by` entry that groups by every label: each alert is its own group.
pub const GROUP_BY_ALL: &str = "...";

/// How one receiver is notified (a notifier manifest's `[alerts]` table).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Routing {
    /// The labels whose values group alerts (as matchers read them: `alertname`/`type`,
    /// `severity`, `specialist`, any label); empty: one group of everything;
    /// [`GROUP_BY_ALL`] alone: each alert its own group.
    pub group_by: Vec<String>,
    /// A change in a group waits this long, to go out with those arising with it.
    #[serde(rename = "group_wait_s", serialize_with = "seconds")]
    pub group_wait: Duration,
    /// A group's changes go out no sooner than this after its last notification.
    #[serde(rename = "group_interval_s", serialize_with = "seconds")]
    pub group_interval: Duration,
    /// A firing alert already notified is sent again no sooner than this.
    #[serde(rename = "repeat_interval_s", serialize_with = "seconds")]
    pub repeat_interval: Duration,
    /// Whether the receiver is told when an alert it was told of resolves.
    pub send_resolved: bool,
    /// Alerts below this severity are not sent to it.
    pub min_severity: Severity,
}

impl Routing {
    /// The group `alert` belongs to, for this receiver: its `group_by` labels' values.
    fn group_key(&self, alert: &Alert) -> String {
        if self.group_by.iter().any(|l| l == GROUP_BY_ALL) {
            return alert.fingerprint.clone();
        }
        let mut key = String::new();
        for name in &self.group_by {
            // Label values are text; a unit separator cannot make two lists one key.
            key.push_str(matchers::label(alert, name));
            key.push('\u{1f}');
        }
        key
    }
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Default for Routing {
    /// Alertmanager's defaults (30 s group wait, 4 h repeat interval, resolved sent), but
    /// one group of everything and a group interval equal to the group wait.
    fn default() -> Routing {
        Routing {
            group_by: Vec::new(),
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(30),
            repeat_interval: Duration::from_secs(4 * 3600),
            send_resolved: true,
            min_severity: Severity::Warning,
        }
    }
}

/// An active alert and when a rule last returned it.
#[derive(Debug, Clone)]
struct Tracked {
    alert: Alert,
    last_seen: DateTime<Utc>,
}

/// What a receiver was last told of an alert.
#[derive(Debug, Clone, Copy)]
struct Told {
    at: DateTime<Utc>,
    severity: Severity,
}

/// A receiver's group of alerts with a change pending, or notified lately.
#[derive(Debug, Default)]
struct Group {
    /// When its pending changes go out.
    flush_at: Option<DateTime<Utc>>,
    /// When it was last notified.
    sent_at: Option<DateTime<Utc>>,
    /// Resolved alerts it is to tell.
    resolved: Vec<Alert>,
}

#[derive(Debug)]
struct Receiver {
    routing: Routing,
    /// Firing alerts it was told of, by fingerprint.
    told: HashMap<String, Told>,
    /// Its groups, by key ([`Routing::group_key`]): those idle past their group interval
    /// are forgotten (a change then is as in a new group).
    groups: BTreeMap<String, Group>,
}

impl Receiver {
    /// A change in group `key` at `now`: it goes out after the group wait, and no sooner
    /// than the group interval after the group's last notification.
    fn touch(&mut self, key: String, now: DateTime<Utc>) -> &mut Group {
        let routing = &self.routing;
        let group = self.groups.entry(key).or_default();
        if group.flush_at.is_none() {
            let wait = after(now, routing.group_wait);
            let interval = group.sent_at.map(|s| after(s, routing.group_interval));
            group.flush_at = Some(interval.map_or(wait, |i| i.max(wait)));
        }
        group
    }
}

/// The outcome of a moment: alerts that changed state (for the history and callbacks),
/// and notifications due, per receiver.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Alerts whose state changed (new, escalated, resolved, muted or no longer), in their
    /// new state.
    pub changed: Vec<Alert>,
    /// Notifications due now: a receiver's id and one group's alerts to send it (as many
    /// for a receiver as it has groups due).
    pub notify: Vec<(u64, Vec<Alert>)>,
}

/// The alert book (see the module doc).
#[derive(Debug)]
pub struct AlertBook {
    active: BTreeMap<String, Tracked>,
    recent: VecDeque<Alert>,
    receivers: BTreeMap<u64, Receiver>,
    resolve_timeout: Duration,
    refused: u64,
    silences: Silences,
    inhibit: InhibitRules,
    /// The last time passed in: silences' starts and ends after it are due.
    now: DateTime<Utc>,
}

impl Default for AlertBook {
    fn default() -> AlertBook {
        AlertBook::new(RESOLVE_TIMEOUT)
    }
}

fn after(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl AlertBook {
    /// An empty book that resolves an alert not seen again within `resolve_timeout`.
    pub fn new(resolve_timeout: Duration) -> AlertBook {
        AlertBook {
            active: BTreeMap::new(),
            recent: VecDeque::new(),
            receivers: BTreeMap::new(),
            resolve_timeout,
            refused: 0,
            silences: Silences::default(),
            inhibit: InhibitRules::default(),
            now: DateTime::<Utc>::MIN_UTC,
        }
    }

    /// The silences in force from `now` on (a copy of the store's); returns what that
    /// changed.
    pub fn set_silences(&mut self, silences: Silences, now: DateTime<Utc>) -> Outcome {
        self.silences = silences;
        self.settle(Vec::new(), now)
    }

    /// The inhibition rules in force from `now` on; returns what that changed.
    pub fn set_inhibit_rules(&mut self, rules: InhibitRules, now: DateTime<Utc>) -> Outcome {
        self.inhibit = rules;
        self.settle(Vec::new(), now)
    }

    /// A receiver: it is told of alerts that change from now on, and of those active now
    /// after its group wait.
    pub fn add_receiver(&mut self, id: u64, routing: Routing, now: DateTime<Utc>) {
        let mut r = Receiver {
            routing,
            told: HashMap::new(),
            groups: BTreeMap::new(),
        };
        for t in self.active.values() {
            if t.alert.severity >= r.routing.min_severity && !t.alert.is_muted() {
                let key = r.routing.group_key(&t.alert);
                r.touch(key, now);
            }
        }
        self.receivers.insert(id, r);
    }

    /// Forgets receiver `id` and what it was told.
    pub fn remove_receiver(&mut self, id: u64) {
        self.receivers.remove(&id);
    }

    /// Takes in alerts a rule (or the host) raised at `now`; returns what changed and
    /// what is due at once.
    pub fn observe(&mut self, alerts: Vec<Alert>, now: DateTime<Utc>) -> Outcome {
        let mut changed = Vec::new();
        for mut alert in alerts {
            alert.fingerprint = alert.identity();
            alert
                .annotations
                .entry("summary".into())
                .or_insert_with(|| alert.message.clone());
            match alert.status {
                AlertStatus::Firing => {
                    alert.ends_at = None;
                    let full = self.active.len() >= MAX_ACTIVE;
                    match self.active.get_mut(&alert.fingerprint) {
                        Some(t) => {
                            alert.starts_at = t.alert.starts_at;
                            alert.silenced_by = std::mem::take(&mut t.alert.silenced_by);
                            alert.inhibited_by = std::mem::take(&mut t.alert.inhibited_by);
                            let escalated = t.alert.severity != alert.severity;
                            t.alert = alert;
                            t.last_seen = now;
                            if escalated {
                                changed.push(t.alert.clone());
                            }
                        }
                        None if full => self.refused += 1,
                        None => {
                            if alert.starts_at > now {
                                alert.starts_at = now;
                            }
                            alert.silenced_by.clear();
                            alert.inhibited_by.clear();
                            changed.push(alert.clone());
                            self.active.insert(
                                alert.fingerprint.clone(),
                                Tracked {
                                    alert,
                                    last_seen: now,
                                },
                            );
                        }
                    }
                }
                AlertStatus::Resolved => {
                    if let Some(t) = self.active.remove(&alert.fingerprint) {
                        alert.starts_at = t.alert.starts_at;
                        let ends = alert.ends_at.unwrap_or(alert.timestamp).min(now);
                        alert.ends_at = Some(ends.max(alert.starts_at));
                        alert.silenced_by.clear();
                        alert.inhibited_by.clear();
                        changed.push(alert);
                    }
                }
            }
        }
        self.settle(changed, now)
    }

    /// Time passing: alerts past `resolve_timeout` resolve; notifications come due.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Outcome {
        let stale: Vec<String> = self
            .active
            .iter()
            .filter(|(_, t)| after(t.last_seen, self.resolve_timeout) <= now)
            .map(|(fp, _)| fp.clone())
            .collect();
        let mut changed = Vec::new();
        for fp in stale {
            let t = self.active.remove(&fp).expect("listed");
            let mut alert = t.alert;
            alert.status = AlertStatus::Resolved;
            alert.ends_at = Some(after(t.last_seen, self.resolve_timeout));
            alert.timestamp = now;
            alert.silenced_by.clear();
            alert.inhibited_by.clear();
            changed.push(alert);
        }
        self.settle(changed, now)
    }

    /// What mutes each alert at `now`, then the changes booked and what is due.
    fn settle(&mut self, mut changed: Vec<Alert>, now: DateTime<Utc>) -> Outcome {
        self.now = self.now.max(now);
        self.remute(&mut changed, now);
        self.apply(&changed, now);
        let notify = self.due(now);
        Outcome { changed, notify }
    }

    /// The silences and maintenance windows muting `alert` at `now`.
    fn silenced_by(&self, alert: &Alert, now: DateTime<Utc>) -> Vec<String> {
        let mut by = self.silences.matches(alert, now);
        by.extend(maintenance::muting(&self.inhibit.windows, alert, now));
        by
    }

    /// Marks every active alert, and every alert of `changed`, with what mutes it at
    /// `now`; an active alert whose marks change is added to `changed` (observed now).
    fn remute(&mut self, changed: &mut Vec<Alert>, now: DateTime<Utc>) {
        let inhibited = {
            let all: Vec<&Alert> = self
                .active
                .values()
                .map(|t| &t.alert)
                .chain(changed.iter().filter(|a| a.status == AlertStatus::Resolved))
                .collect();
            self.inhibit.inhibited(&all)
        };
        let mut at: HashMap<String, usize> = HashMap::new();
        for (i, a) in changed.iter_mut().enumerate() {
            if a.status == AlertStatus::Resolved {
                a.silenced_by = self.silenced_by(a, now);
                a.inhibited_by = inhibited.get(&a.fingerprint).cloned().unwrap_or_default();
            } else {
                at.insert(a.fingerprint.clone(), i);
            }
        }
        for (fp, t) in self.active.iter_mut() {
            let mut silenced_by = self.silences.matches(&t.alert, now);
            silenced_by.extend(maintenance::muting(&self.inhibit.windows, &t.alert, now));
            let inhibited_by = inhibited.get(fp).cloned().unwrap_or_default();
            let same = silenced_by == t.alert.silenced_by && inhibited_by == t.alert.inhibited_by;
            t.alert.silenced_by = silenced_by;
            t.alert.inhibited_by = inhibited_by;
            match at.get(fp) {
                Some(&i) => {
                    changed[i].silenced_by = t.alert.silenced_by.clone();
                    changed[i].inhibited_by = t.alert.inhibited_by.clone();
                }
                None if !same => {
                    t.alert.timestamp = now;
                    changed.push(t.alert.clone());
                }
                None => {}
            }
        }
    }

    /// Books state changes: resolved ones into `recent` and, in its group, for each
    /// receiver that was told they fired (unless muted); the alert's group is due for every
    /// receiver concerned; a muted one is forgotten by the receivers.
    fn apply(&mut self, changed: &[Alert], now: DateTime<Utc>) {
        for alert in changed {
            let muted = alert.is_muted();
            for r in self.receivers.values_mut() {
                if alert.severity < r.routing.min_severity {
                    continue;
                }
                let key = r.routing.group_key(alert);
                if alert.status == AlertStatus::Resolved {
                    if r.told.remove(&alert.fingerprint).is_none()
                        || !r.routing.send_resolved
                        || muted
                    {
                        continue;
                    }
                    r.touch(key, now).resolved.push(alert.clone());
                } else if muted {
                    r.told.remove(&alert.fingerprint);
                } else {
                    r.touch(key, now);
                }
            }
            if alert.status == AlertStatus::Resolved {
                self.recent.push_front(alert.clone());
                self.recent.truncate(MAX_RECENT);
            }
        }
    }

    /// The notifications due at `now`, one per group, marked as told; groups idle past
    /// their group interval forgotten.
    fn due(&mut self, now: DateTime<Utc>) -> Vec<(u64, Vec<Alert>)> {
        let mut out = Vec::new();
        for (id, r) in self.receivers.iter_mut() {
            let flushing = |g: &Group| g.flush_at.is_some_and(|at| at <= now);
            let any_flushing = r.groups.values().any(flushing);
            let mut batches: BTreeMap<String, Vec<Alert>> = BTreeMap::new();
            for t in self.active.values() {
                let a = &t.alert;
                if a.severity < r.routing.min_severity || a.is_muted() {
                    continue;
                }
                let key = match r.told.get(&a.fingerprint) {
                    Some(told) if told.severity == a.severity => {
                        if after(told.at, r.routing.repeat_interval) > now {
                            continue;
                        }
                        r.routing.group_key(a)
                    }
                    _ if !any_flushing => continue,
                    _ => {
                        let key = r.routing.group_key(a);
                        if !r.groups.get(&key).is_some_and(flushing) {
                            continue;
                        }
                        key
                    }
                };
                batches.entry(key).or_default().push(a.clone());
            }
            for (key, g) in r.groups.iter_mut().filter(|(_, g)| flushing(g)) {
                g.flush_at = None;
                if !g.resolved.is_empty() {
                    batches
                        .entry(key.clone())
                        .or_default()
                        .append(&mut g.resolved);
                }
            }
            let mut notes = Vec::with_capacity(batches.len());
            for (key, mut batch) in batches {
                batch.sort_by(|a, b| {
                    (a.starts_at, &a.fingerprint, a.status as u8).cmp(&(
                        b.starts_at,
                        &b.fingerprint,
                        b.status as u8,
                    ))
                });
                for a in batch.iter().filter(|a| a.status == AlertStatus::Firing) {
                    r.told.insert(
                        a.fingerprint.clone(),
                        Told {
                            at: now,
                            severity: a.severity,
                        },
                    );
                }
                r.groups.entry(key).or_default().sent_at = Some(now);
                notes.push(batch);
            }
            // The oldest group first.
            notes.sort_by(|a, b| {
                (a[0].starts_at, &a[0].fingerprint).cmp(&(b[0].starts_at, &b[0].fingerprint))
            });
            out.extend(notes.into_iter().map(|batch| (*id, batch)));
            let interval = r.routing.group_interval;
            r.groups.retain(|_, g| {
                g.flush_at.is_some() || g.sent_at.is_some_and(|s| after(s, interval) > now)
            });
        }
        out
    }

    /// Everything pending goes out now, group waits cut short (the host is stopping).
    pub fn drain(&mut self, now: DateTime<Utc>) -> Outcome {
        let mut outcome = self.tick(now);
        for g in self
            .receivers
            .values_mut()
            .flat_map(|r| r.groups.values_mut())
        {
            if g.flush_at.is_some() {
                g.flush_at = Some(now);
            }
        }
        outcome.notify.extend(self.due(now));
        outcome
    }

    /// When something next comes due (a group wait ending, a repeat, a resolve timeout, a
    /// silence starting or ending), if anything is pending.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        let waits = self
            .receivers
            .values()
            .flat_map(|r| r.groups.values().filter_map(|g| g.flush_at));
        let repeats = self.receivers.values().flat_map(|r| {
            r.told
                .values()
                .map(|t| after(t.at, r.routing.repeat_interval))
        });
        let timeouts = self
            .active
            .values()
            .map(|t| after(t.last_seen, self.resolve_timeout));
        let silences = (!self.active.is_empty())
            .then(|| {
                let windows = maintenance::next_change(&self.inhibit.windows, self.now);
                self.silences
                    .next_change(self.now)
                    .into_iter()
                    .chain(windows)
                    .min()
            })
            .flatten();
        waits.chain(repeats).chain(timeouts).chain(silences).min()
    }

    /// The active alerts, most severe first, then oldest first.
    pub fn active(&self) -> Vec<Alert> {
        let mut list: Vec<Alert> = self.active.values().map(|t| t.alert.clone()).collect();
        list.sort_by(Alert::most_severe_first);
        list
    }

    /// Recently resolved alerts, newest first.
    pub fn recent(&self) -> Vec<Alert> {
        self.recent.iter().cloned().collect()
    }

    /// New alerts refused because [`MAX_ACTIVE`] were active.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

#[cfg(test)]
mod tests;
