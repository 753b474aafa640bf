//! A notifier's undelivered alerts: what failed to go out waits here and is retried
//! with backoff (1 s doubling to 60 s, [`MAX_ATTEMPTS`] tries), merged with what arrives
//! meanwhile, so one notification carries everything once the receiver is back. Bounded:
//! past its capacity the oldest alerts are dropped (and counted).

use std::time::{Duration, Instant};

use crate::model::Alert;

/// The wait after a notification's first failure; it doubles with each failure after.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two tries.
pub const MAX_RETRY: Duration = Duration::from_secs(60);
/// Tries of one notification before its alerts are given up (about six minutes).
pub const MAX_ATTEMPTS: u32 = 10;

/// One notifier's alerts waiting to go out, and when to try again (see the module doc).
#[derive(Debug)]
pub struct Outbox {
    pending: Vec<Alert>,
    retry_at: Option<Instant>,
    backoff: Duration,
    attempts: u32,
    capacity: usize,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` alerts (at least 1).
    pub fn new(capacity: usize) -> Outbox {
        Outbox {
            pending: Vec::new(),
            retry_at: None,
            backoff: FIRST_RETRY,
            attempts: 0,
            capacity: capacity.max(1),
        }
    }

    /// Adds alerts; a newer state of an alert already waiting replaces it. Returns how
    /// many were dropped for room.
    pub fn add(&mut self, alerts: &[Alert]) -> usize {
        for a in alerts {
            match self
                .pending
                .iter_mut()
                .find(|p| p.fingerprint == a.fingerprint && !a.fingerprint.is_empty())
            {
                Some(p) => *p = a.clone(),
                None => self.pending.push(a.clone()),
            }
        }
        let over = self.pending.len().saturating_sub(self.capacity);
        self.pending.drain(..over);
        over
    }

    /// Whether a notification should be tried now.
    pub fn due(&self, now: Instant) -> bool {
        !self.pending.is_empty() && self.retry_at.is_none_or(|t| t <= now)
    }

    /// When the next retry is, if one waits.
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
        self.attempts = 0;
        std::mem::take(&mut self.pending).len()
    }

    /// It failed at `now`: the next try waits the backoff. After [`MAX_ATTEMPTS`] the
    /// alerts are given up: returns how many.
    pub fn failed(&mut self, now: Instant) -> Option<usize> {
        self.attempts += 1;
        if self.attempts >= MAX_ATTEMPTS {
            let lost = self.delivered();
            return Some(lost);
        }
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_RETRY);
        None
    }

    /// The try the last failure scheduled, and how long it waits from `now`.
    pub fn retry_in(&self, now: Instant) -> Duration {
        self.retry_at
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
    }

    /// Failed tries of the notification waiting (0 after a delivery).
    pub fn attempts(&self) -> u32 {
        self.attempts
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
        o.add(&[alert("a", 2.0)]);
        assert_eq!(o.pending().len(), 2, "a replaced, not added");
        assert_eq!(o.pending()[0].value, 2.0);
        let mut now = t0;
        let mut waits = Vec::new();
        let lost = loop {
            if let Some(lost) = o.failed(now) {
                break lost;
            }
            waits.push(o.retry_in(now));
            now += o.retry_in(now);
        };
        assert_eq!(lost, 2);
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
