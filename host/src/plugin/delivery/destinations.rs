//! What a plugin that sends elsewhere (a pusher, a notifier) reports about its
//! deliveries, per destination (WIT 0.4.0 `delivery.report`), kept for `plugins list`,
//! the API and the host's metrics.
//!
//! A plugin reports figures cumulative since its instance started. The host keeps them
//! from instance to instance: when a fresh instance starts (after a trap, a reload of the
//! same plugin keeps nothing), what the last one reported becomes a base the new
//! reports are added to, so the counters the host shows never go down while it runs.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Destinations a plugin may report; more are ignored (and the cut said in `plugins
/// list`), so a plugin cannot grow the host's memory or metrics without bound.
pub const MAX_DESTINATIONS: usize = 32;
/// The longest text kept of a destination, unit or error.
const MAX_TEXT: usize = 1024;

/// One destination's figures, as the host shows them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DestinationReport {
    /// Where the items go (a URL without secrets).
    pub destination: String,
    /// What an item is: `samples`, `spans`, `alerts`.
    pub unit: String,
    /// Items waiting to be sent now.
    pub pending: u64,
    /// Items the destination accepted.
    pub sent: u64,
    /// Items given up on (queue full, refused for good).
    pub dropped: u64,
    /// Requests that failed, each attempt.
    pub failed_requests: u64,
    /// Failed requests to be tried again.
    pub retried_requests: u64,
    /// The last failure, for people.
    pub last_error: Option<String>,
    /// When the last failure happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// When the destination last accepted a request.
    pub last_success_at: Option<DateTime<Utc>>,
}

impl DestinationReport {
    /// The counters of `base` added to these (a previous instance's last report).
    fn plus(&self, base: &DestinationReport) -> DestinationReport {
        DestinationReport {
            sent: self.sent.saturating_add(base.sent),
            dropped: self.dropped.saturating_add(base.dropped),
            failed_requests: self.failed_requests.saturating_add(base.failed_requests),
            retried_requests: self.retried_requests.saturating_add(base.retried_requests),
            last_error: self.last_error.clone().or_else(|| base.last_error.clone()),
            last_error_at: self.last_error_at.or(base.last_error_at),
            last_success_at: self.last_success_at.or(base.last_success_at),
            ..self.clone()
        }
    }
}

/// Text from a plugin, cut to [`MAX_TEXT`] bytes on a character boundary, control
/// characters replaced: it is shown on terminals and written as a label.
fn clean(text: String) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_TEXT));
    for c in text.chars() {
        if out.len() + c.len_utf8() > MAX_TEXT {
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

#[derive(Debug, Default)]
struct Book {
    /// What earlier instances reported last, by destination.
    base: BTreeMap<String, DestinationReport>,
    /// What the live instance reported last, by destination.
    current: BTreeMap<String, DestinationReport>,
    /// Destinations left out of a report (past [`MAX_DESTINATIONS`]).
    cut: usize,
}

/// A plugin's delivery figures, shared by its instances and the readers.
#[derive(Debug, Default)]
pub struct Destinations {
    book: Mutex<Book>,
}

impl Destinations {
    /// A fresh instance starts: what the last one reported is kept as a base.
    pub fn begin_instance(&self) {
        let mut book = self.book.lock().unwrap();
        let current = std::mem::take(&mut book.current);
        for (name, last) in current {
            let base = book.base.entry(name).or_default();
            *base = DestinationReport {
                pending: 0,
                ..last.plus(base)
            };
        }
    }

    /// The live instance's report: replaces what it reported before.
    pub fn report(&self, destinations: Vec<DestinationReport>) {
        let mut book = self.book.lock().unwrap();
        book.cut = destinations.len().saturating_sub(MAX_DESTINATIONS);
        book.current = destinations
            .into_iter()
            .take(MAX_DESTINATIONS)
            .map(|mut d| {
                d.destination = clean(d.destination);
                d.unit = clean(d.unit);
                d.last_error = d.last_error.map(clean);
                (d.destination.clone(), d)
            })
            .collect();
    }

    /// Items the live instance last reported waiting, over every destination.
    pub fn pending(&self) -> u64 {
        let book = self.book.lock().unwrap();
        book.current.values().map(|d| d.pending).sum()
    }

    /// Every destination reported, by name, counters added up over instances; and how
    /// many the last report left out.
    pub fn snapshot(&self) -> (Vec<DestinationReport>, usize) {
        let book = self.book.lock().unwrap();
        let mut all: BTreeMap<&String, DestinationReport> = book
            .base
            .iter()
            .map(|(name, base)| (name, base.clone()))
            .collect();
        for (name, current) in &book.current {
            let merged = match book.base.get(name) {
                Some(base) => current.plus(base),
                None => current.clone(),
            };
            all.insert(name, merged);
        }
        (all.into_values().collect(), book.cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, sent: u64, pending: u64, error: Option<&str>) -> DestinationReport {
        DestinationReport {
            destination: name.into(),
            unit: "samples".into(),
            pending,
            sent,
            dropped: 1,
            failed_requests: 2,
            retried_requests: 1,
            last_error: error.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn counters_survive_a_fresh_instance_and_pending_is_the_live_ones() {
        let d = Destinations::default();
        d.report(vec![report("a", 10, 5, Some("HTTP 503"))]);
        d.begin_instance();
        let (all, cut) = d.snapshot();
        assert_eq!(cut, 0);
        assert_eq!((all[0].sent, all[0].pending), (10, 0));
        assert_eq!(d.pending(), 0, "a fresh instance has reported nothing yet");
        d.report(vec![
            report("a", 3, 7, None),
            report("b\u{1b}[31m", 1, 0, None),
        ]);
        let (all, _) = d.snapshot();
        assert_eq!(d.pending(), 7);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].destination, "a");
        assert_eq!(
            (
                all[0].sent,
                all[0].pending,
                all[0].dropped,
                all[0].failed_requests
            ),
            (13, 7, 2, 4)
        );
        assert_eq!(
            all[0].last_error.as_deref(),
            Some("HTTP 503"),
            "the last error is kept until a newer one"
        );
        assert_eq!(all[1].destination, "b [31m", "no escape reaches a terminal");
    }

    #[test]
    fn a_report_is_bounded() {
        let d = Destinations::default();
        let many = (0..100)
            .map(|i| report(&format!("d{i}"), 1, 0, Some(&"x".repeat(5000))))
            .collect();
        d.report(many);
        let (all, cut) = d.snapshot();
        assert_eq!((all.len(), cut), (MAX_DESTINATIONS, 100 - MAX_DESTINATIONS));
        assert!(all
            .iter()
            .all(|r| r.last_error.as_ref().unwrap().len() == MAX_TEXT));
    }
}
