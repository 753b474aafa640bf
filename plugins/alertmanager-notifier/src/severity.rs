//! The severity each alert was last posted firing with.
//!
//! Alertmanager identifies an alert by its label set, and `severity` is a label (routes
//! and inhibitions match on it), so an alert that goes from warning to critical is a new
//! alert there, and the warning one would stay active until its `endsAt`. metaclaude
//! keeps one alert through a change of severity (its fingerprint leaves severity out), so
//! the notifier remembers the severity it last posted for each alert and, when that
//! changes or the alert resolves, also posts the old label set resolved.
//!
//! The memory is the instance's (a restarted plugin starts empty: a stale label set then
//! ends at its `endsAt`), and holds at most [`MAX_TRACKED`] alerts: beyond them, new
//! alerts are not remembered (the same fallback).

use std::collections::HashMap;

use metaclaude_formats::alerts::Severity;

/// Alerts remembered at most.
pub const MAX_TRACKED: usize = 10_000;

/// The severity last posted firing, by alert fingerprint.
#[derive(Debug, Default)]
pub struct Tracker {
    last: HashMap<String, Severity>,
}

/// What a delivered call changes: an alert's severity now, or `None` once resolved.
pub type Change = (String, Option<Severity>);

impl Tracker {
    /// The severity last posted for the alert, with `pending` (this call's changes so
    /// far, newest last) applied.
    pub fn last(&self, fingerprint: &str, pending: &[Change]) -> Option<Severity> {
        match pending.iter().rev().find(|(f, _)| f == fingerprint) {
            Some((_, severity)) => *severity,
            None => self.last.get(fingerprint).copied(),
        }
    }

    /// Applies a delivered call's changes.
    pub fn apply(&mut self, changes: Vec<Change>) {
        for (fingerprint, severity) in changes {
            match severity {
                None => {
                    self.last.remove(&fingerprint);
                }
                Some(s)
                    if self.last.len() < MAX_TRACKED || self.last.contains_key(&fingerprint) =>
                {
                    self.last.insert(fingerprint, s);
                }
                Some(_) => {}
            }
        }
    }

    /// How many alerts are remembered.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_changes_come_before_what_was_delivered() {
        let mut t = Tracker::default();
        assert_eq!(t.last("a", &[]), None);
        t.apply(vec![("a".into(), Some(Severity::Warning))]);
        assert_eq!(t.last("a", &[]), Some(Severity::Warning));
        let pending = vec![
            ("a".into(), Some(Severity::Critical)),
            ("b".into(), Some(Severity::Warning)),
        ];
        assert_eq!(t.last("a", &pending), Some(Severity::Critical));
        assert_eq!(t.last("a", &[("a".into(), None)]), None);
        t.apply(vec![("a".into(), None)]);
        assert!(t.is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = Tracker::default();
        t.apply(
            (0..MAX_TRACKED + 5)
                .map(|i| (i.to_string(), Some(Severity::Warning)))
                .collect(),
        );
        assert_eq!(t.len(), MAX_TRACKED);
        // A remembered alert still changes.
        t.apply(vec![("0".into(), Some(Severity::Critical))]);
        assert_eq!(t.last("0", &[]), Some(Severity::Critical));
        assert_eq!(t.last(&(MAX_TRACKED + 1).to_string(), &[]), None);
    }
}
