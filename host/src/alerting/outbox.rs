//! A notifier's undelivered alerts: what failed to go out waits here and is retried
//! with backoff (1 s doubling to 60 s), merged with what arrives meanwhile, so one
//! notification carries everything once the receiver is back. An alert that arrives (or
//! changes) while a retry waits is tried at once, with the rest, without waiting for the
//! retry: with several receivers behind one notifier (an Alertmanager pair, one down), the
//! live one gets it now, not a minute later. Such a try, when it fails, leaves the
//! schedule as it was and counts for nothing; an alert is given up (and counted as
//! dropped) once [`MAX_ATTEMPTS`] scheduled tries failed with it waiting, so a new alert is
//! never given up with older ones. Bounded: past its capacity the oldest alerts are dropped
//! (and counted).

use std::time::{Duration, Instant};

use crate::model::Alert;

/// The wait after a notification's first failure; it doubles with each failure after.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two tries.
pub const MAX_RETRY: Duration = Duration::from_secs(60);
/// Scheduled tries an alert waits through before it is given up (about six minutes).
pub const MAX_ATTEMPTS: u32 = 10;

/// One notifier's alerts waiting to go out, and when to try again (see the module doc).
#[derive(Debug)]
pub struct Outbox {
    pending: Vec<Alert>,
    /// For each pending alert, the scheduled tries that failed with it waiting.
    tries: Vec<u32>,
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
            pending: Vec::new(),
            tries: Vec::new(),
            retry_at: None,
            backoff: FIRST_RETRY,
            fresh: false,
            capacity: capacity.max(1),
        }
    }

    /// Adds alerts, to be tried at once; a newer state of an alert already waiting replaces
    /// it (and has waited as long). Returns how many were dropped for room.
    pub fn add(&mut self, alerts: &[Alert]) -> usize {
        for a in alerts {
            match self
                .pending
                .iter_mut()
                .find(|p| p.fingerprint == a.fingerprint && !a.fingerprint.is_empty())
            {
                Some(p) => *p = a.clone(),
                None => {
                    self.pending.push(a.clone());
                    self.tries.push(0);
                }
            }
            self.fresh = true;
        }
        let over = self.pending.len().saturating_sub(self.capacity);
        self.pending.drain(..over);
        self.tries.drain(..over);
        over
    }

    /// Whether a notification should be tried now: something new waits, or the retry is
    /// due.
    pub fn due(&self, now: Instant) -> bool {
        !self.pending.is_empty() && (self.fresh || self.retry_at.is_none_or(|t| t <= now))
    }

    /// When the next try is, if one waits.
    pub fn wake_at(&self) -> Option<Instant> {
        self.retry_at.filter(|_| !self.pending.is_empty())
    }

    /// The alerts waiting, oldest first: what the next notification carries.
    pub fn pending(&self) -> &[Alert] {
        &self.pending
    }

    /// The notification went out.
    pub fn delivered(&mut self) -> usize {
        self.retry_at = None;
        self.backoff = FIRST_RETRY;
        self.fresh = false;
        self.tries.clear();
        std::mem::take(&mut self.pending).len()
    }

    /// It failed at `now`. A scheduled try counts against every alert waiting and the
    /// next waits the backoff; a try made early for fresh alerts leaves the schedule as it
    /// was. Returns how many alerts were given up (those past [`MAX_ATTEMPTS`]), if any.
    pub fn failed(&mut self, now: Instant) -> Option<usize> {
        self.fresh = false;
        if self.retry_at.is_some_and(|t| now < t) {
            return None;
        }
        for t in &mut self.tries {
            *t += 1;
        }
        let before = self.pending.len();
        let mut tries = self.tries.iter();
        self.pending
            .retain(|_| tries.next().is_some_and(|t| *t < MAX_ATTEMPTS));
        self.tries.retain(|t| *t < MAX_ATTEMPTS);
        let lost = before - self.pending.len();
        if self.pending.is_empty() {
            self.delivered();
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
        self.tries.iter().copied().max().unwrap_or(0)
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
                assert_eq!(o.pending().len(), 2, "a replaced, not added");
                assert_eq!(o.pending()[0].value, 2.0);
            }
        };
        assert_eq!(lost, 2, "a newer state has waited as long");
        assert_eq!(waits.first(), Some(&Duration::from_secs(2)));
        assert_eq!(waits.last(), Some(&MAX_RETRY));
        assert!(!o.due(now) && o.pending().is_empty());
        // Delivered: the backoff starts over.
        o.add(&[alert("c", 1.0)]);
        o.failed(now);
        assert_eq!(o.delivered(), 1);
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
        assert_eq!(o.pending().len(), 1);
        assert_eq!(o.pending()[0].kind, "new");
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
        assert_eq!(o.pending()[0].kind, "b", "the oldest go first");
    }
}
