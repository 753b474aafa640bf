//! A notifier's undelivered alerts: what failed to go out waits here and is retried
//! with backoff (1 s doubling to 60 s), with what arrives meanwhile. Each notification
//! the book made (one group's alerts) stays one notification: they go out one call each,
//! oldest first, and a newer state of an alert already waiting replaces it (moving to the
//! newer notification). An alert that arrives (or changes) while a retry waits is tried
//! at once, with the rest, without waiting for the retry: with several receivers behind
//! one notifier (an Alertmanager pair, one down), the live one gets it now, not a minute
//! later. Such a try, when it fails, leaves the schedule as it was and counts for nothing;
//! an alert is given up (and counted as dropped) once [`MAX_ATTEMPTS`] scheduled tries
//! failed with it waiting, so a new alert is never given up with older ones. Bounded: past
//! its capacity the oldest alerts are dropped (and counted).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::model::Alert;

/// The wait after a notification's first failure; it doubles with each failure after.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two tries.
pub const MAX_RETRY: Duration = Duration::from_secs(60);
/// Scheduled tries an alert waits through before it is given up (about six minutes).
pub const MAX_ATTEMPTS: u32 = 10;

/// One notification waiting: its alerts and, for each, the scheduled tries that failed
/// with it waiting.
#[derive(Debug, Default)]
struct Waiting {
    alerts: Vec<Alert>,
    tries: Vec<u32>,
}

/// One notifier's notifications waiting to go out, and when to try again (see the module
/// doc).
#[derive(Debug)]
pub struct Outbox {
    waiting: VecDeque<Waiting>,
    retry_at: Option<Instant>,
    backoff: Duration,
    /// An alert arrived or changed since the last try.
    fresh: bool,
    capacity: usize,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` alerts (at least 1).
    pub fn new(capacity: usize) -> Outbox {
        Outbox {
            waiting: VecDeque::new(),
            retry_at: None,
            backoff: FIRST_RETRY,
            fresh: false,
            capacity: capacity.max(1),
        }
    }

    /// Adds a notification, to be tried at once; a newer state of an alert already
    /// waiting replaces it (and has waited as long). Returns how many alerts were dropped
    /// for room.
    pub fn add(&mut self, alerts: &[Alert]) -> usize {
        if alerts.is_empty() {
            return 0;
        }
        let mut note = Waiting::default();
        for a in alerts {
            let mut tries = 0;
            if !a.fingerprint.is_empty() {
                for w in self.waiting.iter_mut() {
                    if let Some(i) = w.alerts.iter().position(|p| p.fingerprint == a.fingerprint) {
                        w.alerts.remove(i);
                        tries = w.tries.remove(i);
                    }
                }
            }
            note.alerts.push(a.clone());
            note.tries.push(tries);
        }
        self.waiting.retain(|w| !w.alerts.is_empty());
        self.waiting.push_back(note);
        self.fresh = true;
        let mut over = self.len().saturating_sub(self.capacity);
        let dropped = over;
        while over > 0 {
            let oldest = self.waiting.front_mut().expect("over capacity: not empty");
            let n = over.min(oldest.alerts.len());
            oldest.alerts.drain(..n);
            oldest.tries.drain(..n);
            if oldest.alerts.is_empty() {
                self.waiting.pop_front();
            }
            over -= n;
        }
        dropped
    }

    /// Whether a notification should be tried now: something new waits, or the retry is
    /// due.
    pub fn due(&self, now: Instant) -> bool {
        !self.waiting.is_empty() && (self.fresh || self.retry_at.is_none_or(|t| t <= now))
    }

    /// When the next try is, if one waits.
    pub fn wake_at(&self) -> Option<Instant> {
        self.retry_at.filter(|_| !self.waiting.is_empty())
    }

    /// The oldest notification waiting: what the next call carries.
    pub fn next(&self) -> Option<&[Alert]> {
        self.waiting.front().map(|w| w.alerts.as_slice())
    }

    /// How many alerts wait, in all notifications.
    pub fn len(&self) -> usize {
        self.waiting.iter().map(|w| w.alerts.len()).sum()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The oldest notification went out: the receiver is back, the backoff starts over.
    /// Returns how many alerts it held.
    pub fn sent(&mut self) -> usize {
        self.retry_at = None;
        self.backoff = FIRST_RETRY;
        let n = self.waiting.pop_front().map_or(0, |w| w.alerts.len());
        if self.waiting.is_empty() {
            self.fresh = false;
        }
        n
    }

    /// Gives up every notification waiting; returns how many alerts they held.
    pub fn clear(&mut self) -> usize {
        let n = self.len();
        self.waiting.clear();
        self.retry_at = None;
        self.backoff = FIRST_RETRY;
        self.fresh = false;
        n
    }

    /// A try failed at `now`. A scheduled try counts against every alert waiting and the
    /// next waits the backoff; a try made early for fresh alerts leaves the schedule as it
    /// was. Returns how many alerts were given up (those past [`MAX_ATTEMPTS`]), if any.
    pub fn failed(&mut self, now: Instant) -> Option<usize> {
        self.fresh = false;
        if self.retry_at.is_some_and(|t| now < t) {
            return None;
        }
        let mut lost = 0;
        for w in self.waiting.iter_mut() {
            for t in &mut w.tries {
                *t += 1;
            }
            let before = w.alerts.len();
            let mut tries = w.tries.iter();
            w.alerts
                .retain(|_| tries.next().is_some_and(|t| *t < MAX_ATTEMPTS));
            w.tries.retain(|t| *t < MAX_ATTEMPTS);
            lost += before - w.alerts.len();
        }
        self.waiting.retain(|w| !w.alerts.is_empty());
        if self.waiting.is_empty() {
            self.clear();
        } else {
            self.retry_at = Some(now + self.backoff);
            self.backoff = (self.backoff * 2).min(MAX_RETRY);
        }
        (lost > 0).then_some(lost)
    }

    /// The try the last failure scheduled, and how long it waits from `now`.
    pub fn retry_in(&self, now: Instant) -> Duration {
        self.retry_at
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
    }

    /// Failed scheduled tries of the alert waiting longest (0 after a delivery).
    pub fn attempts(&self) -> u32 {
        self.waiting
            .iter()
            .flat_map(|w| w.tries.iter().copied())
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::model::Severity;

    fn alert(kind: &str, value: f64) -> Alert {
        Alert::firing(Utc::now(), kind, Severity::Warning, "m", value, 1.0)
    }

    #[test]
    fn failures_back_off_then_give_up_and_newer_states_replace_older() {
        let mut o = Outbox::new(10);
        let t0 = Instant::now();
        o.add(&[alert("a", 1.0), alert("b", 1.0)]);
        assert!(o.due(t0));
        assert_eq!(o.failed(t0), None);
        assert!(!o.due(t0), "waits its backoff");
        assert!(o.due(t0 + FIRST_RETRY));
        let mut now = t0 + FIRST_RETRY;
        let mut waits = Vec::new();
        let lost = loop {
            if let Some(lost) = o.failed(now) {
                break lost;
            }
            waits.push(o.retry_in(now));
            now += o.retry_in(now);
            if waits.len() == 3 {
                o.add(&[alert("a", 2.0)]);
                assert_eq!(o.len(), 2, "a replaced, not added");
                assert_eq!(o.next().unwrap()[0].kind, "b");
                assert_eq!(
                    o.waiting[1].alerts[0].value, 2.0,
                    "in the newer notification"
                );
            }
        };
        assert_eq!(lost, 2, "a newer state has waited as long");
        assert_eq!(waits.first(), Some(&Duration::from_secs(2)));
        assert_eq!(waits.last(), Some(&MAX_RETRY));
        assert!(!o.due(now) && o.is_empty());
        // Delivered: the backoff starts over.
        o.add(&[alert("c", 1.0)]);
        o.failed(now);
        assert_eq!(o.sent(), 1);
        o.add(&[alert("d", 1.0)]);
        assert!(o.due(now), "no wait after a success");
    }

    /// An alert arriving while a retry waits is tried at once; that early try failing
    /// moves nothing; at the give-up, only the alerts that waited through every scheduled
    /// try go.
    #[test]
    fn a_new_alert_is_tried_at_once_and_not_given_up_with_older_ones() {
        let mut o = Outbox::new(10);
        let t0 = Instant::now();
        o.add(&[alert("old", 1.0)]);
        assert_eq!(o.failed(t0), None);
        let mut now = t0;
        while o.attempts() < MAX_ATTEMPTS - 1 {
            now += o.retry_in(now);
            assert_eq!(o.failed(now), None);
        }
        let retry = o.retry_in(now);
        assert!(retry > Duration::ZERO);
        assert!(!o.due(now), "the retry waits");
        o.add(&[alert("new", 1.0)]);
        assert!(o.due(now), "a new alert is tried at once");
        assert_eq!(o.failed(now), None, "an early try gives nothing up");
        assert_eq!(o.retry_in(now), retry, "and leaves the schedule");
        assert_eq!(o.attempts(), MAX_ATTEMPTS - 1);
        assert!(!o.due(now));
        now += retry;
        assert_eq!(o.failed(now), Some(1), "the old one is given up");
        assert_eq!(o.len(), 1);
        assert_eq!(o.next().unwrap()[0].kind, "new");
        assert!(o.due(now + o.retry_in(now)), "the new one is still retried");
    }

    #[test]
    fn it_is_bounded() {
        let mut o = Outbox::new(3);
        let dropped = o.add(&[
            alert("a", 1.0),
            alert("b", 1.0),
            alert("c", 1.0),
            alert("d", 1.0),
        ]);
        assert_eq!(dropped, 1);
        assert_eq!(o.next().unwrap()[0].kind, "b", "the oldest go first");
        assert_eq!(o.len(), 3);
        let dropped = o.add(&[alert("e", 1.0), alert("f", 1.0), alert("g", 1.0)]);
        assert_eq!(
            dropped, 3,
            "a whole notification, and the older ones emptied"
        );
        assert_eq!(o.waiting.len(), 1);
    }

    /// Each group's notification stays one call: the oldest first, the next once it went;
    /// a failure keeps them all, apart, for the retry.
    #[test]
    fn notifications_stay_apart_and_go_oldest_first() {
        let mut o = Outbox::new(10);
        let t0 = Instant::now();
        o.add(&[alert("a", 1.0), alert("b", 1.0)]);
        o.add(&[alert("c", 1.0)]);
        let kinds = |o: &Outbox| {
            o.next()
                .map(|n| n.iter().map(|a| a.kind.clone()).collect::<Vec<_>>())
        };
        assert_eq!(kinds(&o), Some(vec!["a".into(), "b".into()]));
        assert_eq!(o.failed(t0), None);
        assert_eq!(o.len(), 3);
        assert!(!o.due(t0));
        // Back: the first goes, the second is tried at once.
        assert_eq!(o.sent(), 2);
        assert!(o.due(t0), "the rest without waiting");
        assert_eq!(kinds(&o), Some(vec!["c".into()]));
        // A newer state of `c` in a new notification: the old one, empty, is gone.
        o.add(&[alert("c", 2.0), alert("d", 1.0)]);
        assert_eq!(o.waiting.len(), 1);
        assert_eq!(kinds(&o), Some(vec!["c".into(), "d".into()]));
        assert_eq!(o.sent(), 2);
        assert!(o.is_empty() && !o.due(t0));
        assert_eq!(o.add(&[]), 0);
        assert!(o.is_empty(), "an empty notification is none");
    }
}
