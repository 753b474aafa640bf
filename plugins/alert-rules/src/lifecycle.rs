//! One alert's life cycle, as a Prometheus alerting rule keeps it:
//!
//! ```text
//! inactive --holds--> pending --held for `for`--> firing --cleared for `keep_firing_for`--> resolved (inactive)
//!     \________________holds, `for` = 0_____________/^
//! ```
//!
//! * A condition that starts to hold makes the alert pending (nothing is returned);
//!   once it has held at every evaluation for `for`, the alert fires. With `for` = 0 it
//!   fires at the first evaluation it holds at. A pending alert whose condition clears
//!   goes back to inactive, unannounced.
//! * A firing alert is returned at every evaluation (the host deduplicates and repeats
//!   notifications), with the newest observation: its value, and its severity, which may
//!   change (warning to critical and back) without making it another alert. `starts_at`
//!   is the instant it started firing and never changes.
//! * When its condition no longer holds, a firing alert keeps firing (with its last
//!   observation) until the condition has stayed clear for `keep_firing_for`, measured
//!   from the first evaluation it did not hold at (Prometheus' `KeepFiringSince`); if it
//!   holds again meanwhile, the alert simply goes on. Then it is returned once,
//!   `resolved`, with `ends_at` the evaluation's time, and is inactive again: the next
//!   time the condition holds is a new alert with a new `starts_at`.

use crate::time::Time;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Firing,
    Resolved,
}

/// What a rule saw at one evaluation when its condition held.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub severity: Severity,
    pub value: f64,
    /// The threshold crossed (the critical one when critical).
    pub threshold: f64,
    /// For people, e.g. "Error rate is 15.3% (threshold: 10.0%)".
    pub message: String,
    /// More for people: which executions, over which window, both thresholds.
    pub description: String,
}

/// The durations of the life cycle, microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long the condition must hold before the alert fires (`for`).
    pub for_us: u64,
    /// How long a firing alert goes on after its condition cleared.
    pub keep_firing_for_us: u64,
}

/// What an evaluation returns about one alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub status: Status,
    pub starts_at: Time,
    /// Set exactly when `status` is resolved.
    pub ends_at: Option<Time>,
    pub observation: Observation,
}

/// Where one alert is in its life cycle.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Lifecycle {
    #[default]
    Inactive,
    Pending {
        /// The first evaluation of the run of evaluations it has held at.
        since: Time,
    },
    Firing {
        starts_at: Time,
        /// The first evaluation it did not hold at, while it keeps firing.
        cleared_since: Option<Time>,
        last: Observation,
    },
}

impl Lifecycle {
    pub fn is_inactive(&self) -> bool {
        matches!(self, Lifecycle::Inactive)
    }

    /// One evaluation at `now`: `observation` when the condition holds, `None` when not.
    /// Returns what to report: the alert firing, or resolved once, or nothing.
    pub fn step(
        &mut self,
        now: Time,
        observation: Option<Observation>,
        timing: Timing,
    ) -> Option<Report> {
        let fire = |state: &mut Lifecycle, observation: Observation| {
            *state = Lifecycle::Firing {
                starts_at: now,
                cleared_since: None,
                last: observation.clone(),
            };
            Some(Report {
                status: Status::Firing,
                starts_at: now,
                ends_at: None,
                observation,
            })
        };
        match (&mut *self, observation) {
            (Lifecycle::Inactive, None) => None,
            (Lifecycle::Inactive, Some(o)) if timing.for_us == 0 => fire(self, o),
            (Lifecycle::Inactive, Some(_)) => {
                *self = Lifecycle::Pending { since: now };
                None
            }
            (Lifecycle::Pending { since }, Some(o)) => {
                if now.micros_since(*since) >= timing.for_us {
                    fire(self, o)
                } else {
                    None
                }
            }
            (Lifecycle::Pending { .. }, None) => {
                *self = Lifecycle::Inactive;
                None
            }
            (
                Lifecycle::Firing {
                    starts_at,
                    cleared_since,
                    last,
                },
                Some(o),
            ) => {
                *cleared_since = None;
                *last = o.clone();
                Some(Report {
                    status: Status::Firing,
                    starts_at: *starts_at,
                    ends_at: None,
                    observation: o,
                })
            }
            (
                Lifecycle::Firing {
                    starts_at,
                    cleared_since,
                    last,
                },
                None,
            ) => {
                let since = *cleared_since.get_or_insert(now);
                if now.micros_since(since) < timing.keep_firing_for_us {
                    return Some(Report {
                        status: Status::Firing,
                        starts_at: *starts_at,
                        ends_at: None,
                        observation: last.clone(),
                    });
                }
                let report = Report {
                    status: Status::Resolved,
                    starts_at: *starts_at,
                    ends_at: Some(now),
                    observation: last.clone(),
                };
                *self = Lifecycle::Inactive;
                Some(report)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(severity: Severity, value: f64) -> Option<Observation> {
        Some(Observation {
            severity,
            value,
            threshold: 10.0,
            message: format!("value {value}"),
            description: String::new(),
        })
    }

    fn t(seconds: u64) -> Time {
        Time::from_micros(1_700_000_000_000_000).plus_seconds(seconds)
    }

    fn timing(for_s: u64, keep_s: u64) -> Timing {
        Timing {
            for_us: for_s * 1_000_000,
            keep_firing_for_us: keep_s * 1_000_000,
        }
    }

    /// The status, starts_at, ends_at and value of what `step` reported.
    fn summary(r: Option<Report>) -> Option<(Status, Time, Option<Time>, f64)> {
        r.map(|r| (r.status, r.starts_at, r.ends_at, r.observation.value))
    }

    #[test]
    fn without_for_it_fires_at_once_repeats_and_resolves_once() {
        let mut a = Lifecycle::default();
        let tm = timing(0, 0);
        let w = Severity::Warning;
        assert_eq!(summary(a.step(t(0), None, tm)), None);
        assert_eq!(
            summary(a.step(t(1), seen(w, 11.0), tm)),
            Some((Status::Firing, t(1), None, 11.0))
        );
        assert_eq!(
            summary(a.step(t(2), seen(w, 12.0), tm)),
            Some((Status::Firing, t(1), None, 12.0))
        );
        assert_eq!(
            summary(a.step(t(3), None, tm)),
            Some((Status::Resolved, t(1), Some(t(3)), 12.0))
        );
        assert_eq!(summary(a.step(t(4), None, tm)), None);
        assert!(a.is_inactive());
        // Holding again is a new alert.
        assert_eq!(
            summary(a.step(t(5), seen(w, 13.0), tm)),
            Some((Status::Firing, t(5), None, 13.0))
        );
    }

    #[test]
    fn for_holds_it_pending_and_a_clear_while_pending_says_nothing() {
        let mut a = Lifecycle::default();
        let tm = timing(60, 0);
        let w = Severity::Warning;
        assert_eq!(summary(a.step(t(0), seen(w, 11.0), tm)), None);
        assert_eq!(a, Lifecycle::Pending { since: t(0) });
        assert_eq!(summary(a.step(t(59), seen(w, 11.0), tm)), None);
        assert_eq!(
            summary(a.step(t(60), seen(w, 11.0), tm)),
            Some((Status::Firing, t(60), None, 11.0))
        );
        let mut b = Lifecycle::default();
        assert_eq!(summary(b.step(t(0), seen(w, 11.0), tm)), None);
        assert_eq!(summary(b.step(t(30), None, tm)), None);
        assert!(b.is_inactive());
        // The run starts again from the next evaluation it holds at.
        assert_eq!(summary(b.step(t(40), seen(w, 11.0), tm)), None);
        assert_eq!(summary(b.step(t(99), seen(w, 11.0), tm)), None);
        assert_eq!(
            summary(b.step(t(100), seen(w, 11.0), tm)),
            Some((Status::Firing, t(100), None, 11.0))
        );
    }

    #[test]
    fn keep_firing_for_bridges_a_gap_and_resolves_after_it() {
        let mut a = Lifecycle::default();
        let tm = timing(0, 60);
        let w = Severity::Warning;
        a.step(t(0), seen(w, 11.0), tm);
        // Cleared at 10: still firing (with the last value) until 70.
        for now in [10, 40, 69] {
            assert_eq!(
                summary(a.step(t(now), None, tm)),
                Some((Status::Firing, t(0), None, 11.0)),
                "at {now}"
            );
        }
        // Holding again within it resets the clear.
        assert_eq!(
            summary(a.step(t(69), seen(w, 12.0), tm)),
            Some((Status::Firing, t(0), None, 12.0))
        );
        assert_eq!(
            summary(a.step(t(80), None, tm)),
            Some((Status::Firing, t(0), None, 12.0))
        );
        assert_eq!(
            summary(a.step(t(139), None, tm)),
            Some((Status::Firing, t(0), None, 12.0))
        );
        assert_eq!(
            summary(a.step(t(140), None, tm)),
            Some((Status::Resolved, t(0), Some(t(140)), 12.0))
        );
        assert!(a.is_inactive());
    }

    #[test]
    fn severity_changes_keep_the_alert() {
        let mut a = Lifecycle::default();
        let tm = timing(0, 0);
        let first = a.step(t(0), seen(Severity::Warning, 11.0), tm).unwrap();
        let up = a.step(t(1), seen(Severity::Critical, 30.0), tm).unwrap();
        let down = a.step(t(2), seen(Severity::Warning, 12.0), tm).unwrap();
        assert_eq!(
            [
                first.observation.severity,
                up.observation.severity,
                down.observation.severity
            ],
            [Severity::Warning, Severity::Critical, Severity::Warning]
        );
        assert!([&first, &up, &down]
            .iter()
            .all(|r| r.starts_at == t(0) && r.status == Status::Firing));
    }
}
