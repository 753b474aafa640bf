//! What the tracker reports: the conditions a script can be in, its one-word state, and
//! each change of a condition with the alert it makes.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::model::{Alert, AlertStatus, Severity};

/// A condition a script with expectations can be in; several can hold at once (a script
/// can be failing and missed). Ordered most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// `failures_in_a_row` failures in a row; cleared by a success.
    Failing,
    /// A due time and its grace passed without a success; cleared by a success.
    Missed,
    /// An attempt running longer than `max_duration`; cleared when it ends.
    Overdue,
    /// The last success took less than `min_duration`; cleared by a long enough success.
    TooShort,
    /// A due time passed without a success, within the grace: no alert, a state to show.
    Late,
}

impl Condition {
    /// Every condition, most severe first.
    pub const ALL: [Condition; 5] = [
        Condition::Failing,
        Condition::Missed,
        Condition::Overdue,
        Condition::TooShort,
        Condition::Late,
    ];

    /// The name as serialised (`"too_short"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Failing => "failing",
            Condition::Missed => "missed",
            Condition::Overdue => "overdue",
            Condition::TooShort => "too_short",
            Condition::Late => "late",
        }
    }

    /// The type of the alert it raises (`script_missed`), or `None` for [`Condition::Late`].
    pub fn alert_type(self) -> Option<&'static str> {
        match self {
            Condition::Failing => Some("script_failing"),
            Condition::Missed => Some("script_missed"),
            Condition::Overdue => Some("script_overdue"),
            Condition::TooShort => Some("script_too_short"),
            Condition::Late => None,
        }
    }

    /// How serious its alert is: critical when the script's work is not being done
    /// (failing, missed), a warning when it is in doubt (overdue, too short).
    pub fn severity(self) -> Severity {
        match self {
            Condition::Failing | Condition::Missed => Severity::Critical,
            Condition::Overdue | Condition::TooShort | Condition::Late => Severity::Warning,
        }
    }

    /// The words for it in a sentence ("too short").
    pub fn words(self) -> &'static str {
        match self {
            Condition::TooShort => "too short",
            other => other.as_str(),
        }
    }
}

/// A script's state in one word (a metric's label, a view's badge): its most severe
/// condition; `new` when nothing has been seen of it since watching began and nothing is
/// wrong yet; `ok` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// See [`Condition::Failing`].
    Failing,
    /// See [`Condition::Missed`].
    Missed,
    /// See [`Condition::Overdue`].
    Overdue,
    /// See [`Condition::TooShort`].
    TooShort,
    /// See [`Condition::Late`].
    Late,
    /// Watched, and no run started or ended since, within the first window.
    New,
    /// Nothing wrong.
    Ok,
}

impl State {
    /// Every state, in the order of [`Condition`] then `new`, `ok` (a metric's series).
    pub const ALL: [State; 7] = [
        State::Failing,
        State::Missed,
        State::Overdue,
        State::TooShort,
        State::Late,
        State::New,
        State::Ok,
    ];

    /// The name as serialised (`"too_short"`).
    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Ok => "ok",
            State::Failing => "failing",
            State::Missed => "missed",
            State::Overdue => "overdue",
            State::TooShort => "too_short",
            State::Late => "late",
        }
    }

    /// The state of a script with `conditions` (most severe first) that was `seen` since
    /// watching began.
    pub fn of(conditions: &[Condition], seen: bool) -> State {
        match conditions.iter().min() {
            Some(Condition::Failing) => State::Failing,
            Some(Condition::Missed) => State::Missed,
            Some(Condition::Overdue) => State::Overdue,
            Some(Condition::TooShort) => State::TooShort,
            Some(Condition::Late) => State::Late,
            None if seen => State::Ok,
            None => State::New,
        }
    }
}

/// A condition of a script that began or cleared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The script's id.
    pub script: String,
    /// The script's specialist, if it has one.
    pub specialist: Option<String>,
    /// Which condition.
    pub condition: Condition,
    /// True when it began, false when it cleared.
    pub began: bool,
    /// When the tracker saw it: the time of the event or tick that brought it.
    #[serde(with = "crate::model::timestamp")]
    pub at: DateTime<Utc>,
    /// When the condition began (a boundary passed between ticks is dated at the boundary).
    #[serde(with = "crate::model::timestamp")]
    pub since: DateTime<Utc>,
    /// The execution concerned (the overdue one, the last failure, the short success, the
    /// success that cleared it), if one is.
    pub execution_id: Option<String>,
    /// One sentence for people.
    pub summary: String,
    /// The figure behind it (missed runs in a row, seconds running, failures in a row,
    /// seconds a success took), as the alert's `value`.
    pub value: f64,
    /// What `value` is held against, as the alert's `threshold`.
    pub threshold: f64,
    /// The script's state after the change.
    pub state: State,
}

impl Change {
    /// The alert the change makes: firing when it began, resolved when it cleared; `None`
    /// for [`Condition::Late`]. Type `script_missed`, `script_overdue`, `script_failing` or
    /// `script_too_short`; labels `script` and, when it has one, `specialist`; annotations
    /// `summary` and `execution_id` (kept out of the labels, so that an alert keeps its
    /// identity while the execution concerned changes).
    pub fn alert(&self) -> Option<Alert> {
        let kind = self.condition.alert_type()?;
        let mut a = Alert::firing(
            self.at,
            kind,
            self.condition.severity(),
            self.summary.clone(),
            self.value,
            self.threshold,
        );
        a.starts_at = self.since.min(self.at);
        a.specialist = self.specialist.clone();
        a.labels.insert("script".into(), self.script.clone());
        if let Some(s) = &self.specialist {
            a.labels.insert("specialist".into(), s.clone());
        }
        a.annotations = BTreeMap::from([("summary".to_string(), self.summary.clone())]);
        if let Some(id) = &self.execution_id {
            a.annotations.insert("execution_id".into(), id.clone());
        }
        if !self.began {
            a.status = AlertStatus::Resolved;
            a.ends_at = Some(self.at);
        }
        a.fingerprint = a.identity();
        Some(a)
    }
}

/// A time as summaries write it: `2024-03-10T07:00:00Z`.
pub fn when(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn change(condition: Condition, began: bool) -> Change {
        Change {
            script: "backup".into(),
            specialist: Some("ops".into()),
            condition,
            began,
            at: Utc.timestamp_opt(1_700_000_100, 0).unwrap(),
            since: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            execution_id: Some("exec-1".into()),
            summary: "Script `backup` ...".into(),
            value: 2.0,
            threshold: 1.0,
            state: State::Missed,
        }
    }

    #[test]
    fn a_change_makes_its_alert_with_labels_and_annotations() {
        let a = change(Condition::Missed, true).alert().unwrap();
        assert_eq!(a.kind, "script_missed");
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.starts_at, Utc.timestamp_opt(1_700_000_000, 0).unwrap());
        assert_eq!(a.labels["script"], "backup");
        assert_eq!(a.labels["specialist"], "ops");
        assert_eq!(a.specialist.as_deref(), Some("ops"));
        assert_eq!(a.annotations["execution_id"], "exec-1");
        assert_eq!(a.annotations["summary"], a.message);
        assert_eq!((a.value, a.threshold), (2.0, 1.0));
        let r = change(Condition::Missed, false).alert().unwrap();
        assert_eq!(r.status, AlertStatus::Resolved);
        assert_eq!(r.ends_at, Some(r.timestamp));
        assert_eq!(r.fingerprint, a.fingerprint, "the same alert, resolved");
        let other = Change {
            execution_id: Some("exec-2".into()),
            ..change(Condition::Missed, true)
        };
        assert_eq!(other.alert().unwrap().fingerprint, a.fingerprint);
        assert_ne!(
            change(Condition::Failing, true)
                .alert()
                .unwrap()
                .fingerprint,
            a.fingerprint
        );
        assert!(change(Condition::Late, true).alert().is_none());
    }

    #[test]
    fn the_state_is_the_most_severe_condition() {
        use Condition::*;
        assert_eq!(State::of(&[Late, Missed, Failing], true), State::Failing);
        assert_eq!(State::of(&[TooShort, Overdue], true), State::Overdue);
        assert_eq!(State::of(&[Late], false), State::Late);
        assert_eq!(State::of(&[], false), State::New);
        assert_eq!(State::of(&[], true), State::Ok);
        assert_eq!(
            Condition::ALL.map(|c| c.alert_type()),
            [
                Some("script_failing"),
                Some("script_missed"),
                Some("script_overdue"),
                Some("script_too_short"),
                None
            ]
        );
    }
}
