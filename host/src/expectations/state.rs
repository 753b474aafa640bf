//! The tracker: each watched script's conditions, kept from what happens (a run started,
//! a run ended) and from time passing, with time passed in as the alert book takes it.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::change::{when, Change, Condition, State};
use super::duration::{self, after, to_chrono};
use super::spec::{Cadence, Expectations};
use crate::model::Alert;

/// Runs of one script tracked at once; past it the oldest is forgotten (a run whose end
/// was never reported cannot hold memory forever).
pub const MAX_RUNNING: usize = 1024;
/// Windows one step counts at most (a host asleep for a year watching a job due every
/// minute); the rest are counted by the next steps.
pub const MAX_WINDOWS_PER_STEP: usize = 10_000;

/// How an attempt of a script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunEnd {
    /// Whether it succeeded.
    pub success: bool,
    /// How long it ran (a success shorter than `min_duration` is too short).
    pub duration: Duration,
    /// Whether it was the execution's last attempt: false for a failure that will be
    /// retried, which with `alert_after_last_retry` is not a failure of the script.
    pub last_attempt: bool,
}

/// A script's standing, for metrics and views.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScriptStatus {
    /// The script's id.
    pub script: String,
    /// Its specialist, if it has one.
    pub specialist: Option<String>,
    /// The one-word state.
    pub state: State,
    /// Every condition holding, most severe first.
    pub conditions: Vec<Condition>,
    /// When the next success is due (the current window's due time), with a cadence.
    #[serde(with = "crate::model::timestamp::option")]
    pub next_expected: Option<DateTime<Utc>>,
    /// When it last succeeded, if it did since watching began (or in the history fed in).
    #[serde(with = "crate::model::timestamp::option")]
    pub last_success: Option<DateTime<Utc>>,
    /// Windows whose due time and grace passed without a success, ever (a counter).
    pub missed_total: u64,
    /// Those since the last success.
    pub missed_in_a_row: u64,
    /// Failures since the last success (that count: see [`RunEnd::last_attempt`]).
    pub failures_in_a_row: u32,
    /// Attempts running now.
    pub running: usize,
}

/// A condition holding: since when, and what its change reported.
#[derive(Debug, Clone)]
struct Active {
    since: DateTime<Utc>,
    execution_id: Option<String>,
    value: f64,
    threshold: f64,
    summary: String,
}

/// What brought a step: the words of a cleared condition depend on it.
#[derive(Debug, Clone, Copy)]
enum Cause<'a> {
    /// Time passing.
    Time,
    /// A run started.
    Started,
    /// A run ended.
    Ended(&'a str, RunEnd),
    /// New expectations.
    Changed,
    /// No longer watched.
    Unwatched,
}

/// One watched script.
#[derive(Debug, Clone)]
struct Watched {
    id: String,
    specialist: Option<String>,
    expect: Expectations,
    /// When watching began: the first window counts from here.
    since: DateTime<Utc>,
    /// The latest time seen (events may be fed from the past; time never goes back).
    clock: DateTime<Utc>,
    /// Whether a run started or ended since watching began.
    seen: bool,
    /// The current window's due time (with a cadence).
    due: Option<DateTime<Utc>>,
    /// The newest due time counted as missed: none is counted twice.
    counted_through: Option<DateTime<Utc>>,
    last_success: Option<DateTime<Utc>>,
    /// The last success's execution and duration (for `min_duration` changing).
    last_success_run: Option<(String, Duration)>,
    last_failure: Option<String>,
    streak: u32,
    missed_in_a_row: u64,
    missed_total: u64,
    /// Attempts running: execution id to start.
    running: BTreeMap<String, DateTime<Utc>>,
    active: BTreeMap<Condition, Active>,
}

/// Every watched script's state (see the module doc of `expectations`).
#[derive(Debug, Default)]
pub struct Tracker {
    scripts: BTreeMap<String, Watched>,
}

/// The first instant beyond `t`: a boundary is passed when time is strictly later.
fn beyond(t: DateTime<Utc>) -> DateTime<Utc> {
    t.checked_add_signed(chrono::Duration::nanoseconds(1))
        .unwrap_or(t)
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Watched {
    fn new(
        id: &str,
        specialist: Option<&str>,
        expect: Expectations,
        now: DateTime<Utc>,
    ) -> Watched {
        let due = expect.cadence.as_ref().and_then(|c| c.rule.next_after(now));
        Watched {
            id: id.to_string(),
            specialist: specialist.map(str::to_string),
            expect,
            since: now,
            clock: now,
            seen: false,
            due,
            counted_through: None,
            last_success: None,
            last_success_run: None,
            last_failure: None,
            streak: 0,
            missed_in_a_row: 0,
            missed_total: 0,
            running: BTreeMap::new(),
            active: BTreeMap::new(),
        }
    }

    fn conditions(&self) -> Vec<Condition> {
        self.active.keys().copied().collect()
    }

    fn state(&self) -> State {
        State::of(&self.conditions(), self.seen)
    }

    /// Runs `step` and reports every condition that began or cleared in it. A condition
    /// holding before and after keeps the time it began.
    fn step(
        &mut self,
        cause: Cause<'_>,
        at: DateTime<Utc>,
        step: impl FnOnce(&mut Watched),
    ) -> Vec<Change> {
        let before = self.active.clone();
        step(self);
        for (condition, was) in &before {
            if let Some(now) = self.active.get_mut(condition) {
                now.since = was.since;
            }
        }
        let state = self.state();
        let mut changes = Vec::new();
        for (condition, was) in &before {
            if !self.active.contains_key(condition) {
                // The execution that cleared it, else the one it was about.
                let execution = match cause {
                    Cause::Ended(id, _) => Some(id.to_string()),
                    _ => was.execution_id.clone(),
                };
                let summary = self.cleared(*condition, was, cause, at);
                changes.push(self.change(*condition, false, at, was, (execution, summary), state));
            }
        }
        for (condition, now) in &self.active {
            if !before.contains_key(condition) {
                let told = (now.execution_id.clone(), now.summary.clone());
                changes.push(self.change(*condition, true, at, now, told, state));
            }
        }
        changes
    }

    fn change(
        &self,
        condition: Condition,
        began: bool,
        at: DateTime<Utc>,
        active: &Active,
        (execution_id, summary): (Option<String>, String),
        state: State,
    ) -> Change {
        Change {
            script: self.id.clone(),
            specialist: self.specialist.clone(),
            condition,
            began,
            at,
            since: active.since,
            execution_id,
            summary,
            value: active.value,
            threshold: active.threshold,
            state,
        }
    }

    /// The sentence of a condition that cleared.
    fn cleared(
        &self,
        condition: Condition,
        was: &Active,
        cause: Cause<'_>,
        at: DateTime<Utc>,
    ) -> String {
        let id = &self.id;
        let words = condition.words();
        match cause {
            Cause::Unwatched => {
                format!("Script `{id}` is no longer watched (its expectations were removed): no longer {words}")
            }
            Cause::Changed => format!("Script `{id}`'s expectations changed: no longer {words}"),
            Cause::Ended(execution, end) if end.success => {
                let base = format!(
                    "Script `{id}` succeeded at {} (execution {execution}, in {})",
                    when(at),
                    duration::format(end.duration)
                );
                match condition {
                    Condition::Missed => format!(
                        "{base} after {} missed run{}",
                        was.value,
                        if was.value == 1.0 { "" } else { "s" }
                    ),
                    Condition::Failing => {
                        format!("{base} after {} failures in a row", was.value)
                    }
                    Condition::TooShort => format!(
                        "{base}, no shorter than its min_duration of {}",
                        duration::format(
                            self.expect
                                .min_duration
                                .unwrap_or_else(|| Duration::from_secs_f64(was.threshold))
                        )
                    ),
                    _ => format!("{base}: no longer {words}"),
                }
            }
            Cause::Ended(execution, end) => format!(
                "Script `{id}`'s execution {execution} ended ({}) after {}: no longer {words}",
                if end.success { "succeeded" } else { "failed" },
                duration::format(end.duration)
            ),
            Cause::Time | Cause::Started => format!("Script `{id}` is no longer {words}"),
        }
    }

    /// Time passes up to `at` (never back): windows and running attempts are judged.
    fn advance(&mut self, at: DateTime<Utc>) {
        self.clock = self.clock.max(at);
        self.judge_window();
        self.judge_running();
    }

    /// Late once the due time has passed, missed once its grace has too; each window that
    /// passes without a success is counted once, and the next one opens.
    fn judge_window(&mut self) {
        let Some(Cadence { rule, grace }) = self.expect.cadence.clone() else {
            return;
        };
        let now = self.clock;
        let mut counted = 0;
        while let Some(due) = self.due {
            let grace_end = after(due, grace);
            if now <= due {
                break;
            }
            if now <= grace_end {
                if !self.active.contains_key(&Condition::Missed) {
                    let summary = format!(
                        "Script `{}` is late: a success was due by {}; it has until {} (grace {})",
                        self.id,
                        when(due),
                        when(grace_end),
                        duration::format(grace)
                    );
                    self.active.entry(Condition::Late).or_insert(Active {
                        since: due,
                        execution_id: None,
                        value: 0.0,
                        threshold: seconds(grace),
                        summary,
                    });
                }
                break;
            }
            if counted == MAX_WINDOWS_PER_STEP {
                break;
            }
            counted += 1;
            // The total never counts a window twice (a success fed in from the past can
            // open a window again); the windows since the last success are all counted.
            if self.counted_through.is_none_or(|c| due > c) {
                self.counted_through = Some(due);
                self.missed_total += 1;
            }
            self.missed_in_a_row += 1;
            self.active.remove(&Condition::Late);
            let since_what = match self.last_success {
                Some(t) => format!("since {}", when(t)),
                None => format!("since watching began at {}", when(self.since)),
            };
            let summary = format!(
                "Script `{}` missed its run: no success {since_what}; one was due by {} and \
                 the grace of {} has passed",
                self.id,
                when(due),
                duration::format(grace)
            );
            let in_a_row = self.missed_in_a_row as f64;
            self.active
                .entry(Condition::Missed)
                .and_modify(|a| a.value = in_a_row)
                .or_insert(Active {
                    since: grace_end,
                    execution_id: None,
                    value: in_a_row,
                    threshold: 1.0,
                    summary,
                });
            self.due = rule.next_after(due);
        }
    }

    /// Overdue while an attempt has run longer than `max_duration`: the oldest such one
    /// is the execution concerned.
    fn judge_running(&mut self) {
        let now = self.clock;
        let overdue = self.expect.max_duration.and_then(|max| {
            self.running
                .iter()
                .filter(|(_, start)| now - **start > to_chrono(max))
                .min_by_key(|(_, start)| **start)
                .map(|(id, start)| (id.clone(), *start, max))
        });
        let Some((execution, start, max)) = overdue else {
            self.active.remove(&Condition::Overdue);
            return;
        };
        let summary = format!(
            "Script `{}` is overdue: execution {execution} started at {} and is still running \
             past its max_duration of {}",
            self.id,
            when(start),
            duration::format(max)
        );
        let running_for = (now - start).to_std().unwrap_or_default();
        let active = self.active.entry(Condition::Overdue).or_insert(Active {
            since: after(start, max),
            execution_id: None,
            value: 0.0,
            threshold: seconds(max),
            summary: String::new(),
        });
        if active.execution_id.as_deref() != Some(&execution) {
            active.execution_id = Some(execution);
            active.value = seconds(running_for);
            active.summary = summary;
        }
    }

    /// Failing while the failures in a row reach `failures_in_a_row`.
    fn judge_streak(&mut self, at: DateTime<Utc>) {
        let n = self.expect.failures_in_a_row;
        if self.streak < n {
            self.active.remove(&Condition::Failing);
            return;
        }
        let execution = self.last_failure.clone();
        let summary = format!(
            "Script `{}` failed {} time{} in a row (failures_in_a_row: {n}); the last failure was \
             execution {}",
            self.id,
            self.streak,
            if self.streak == 1 { "" } else { "s" },
            execution.as_deref().unwrap_or("unknown")
        );
        let streak = f64::from(self.streak);
        let active = self.active.entry(Condition::Failing).or_insert(Active {
            since: at,
            execution_id: None,
            value: 0.0,
            threshold: f64::from(n),
            summary: String::new(),
        });
        active.execution_id = execution;
        active.value = streak;
        active.threshold = f64::from(n);
        active.summary = summary;
    }

    /// Too short while the last success took less than `min_duration`.
    fn judge_last_success(&mut self, at: DateTime<Utc>) {
        let short = match (&self.last_success_run, self.expect.min_duration) {
            (Some((execution, took)), Some(min)) if *took < min => {
                Some((execution.clone(), *took, min))
            }
            _ => None,
        };
        let Some((execution, took, min)) = short else {
            self.active.remove(&Condition::TooShort);
            return;
        };
        let summary = format!(
            "Script `{}` succeeded in {} (execution {execution}), less than its min_duration of \
             {}: did it do its work?",
            self.id,
            duration::format(took),
            duration::format(min)
        );
        let active = self.active.entry(Condition::TooShort).or_insert(Active {
            since: at,
            execution_id: None,
            value: 0.0,
            threshold: 0.0,
            summary: String::new(),
        });
        active.execution_id = Some(execution);
        active.value = seconds(took);
        active.threshold = seconds(min);
        active.summary = summary;
    }

    fn started(&mut self, execution: &str, at: DateTime<Utc>) {
        self.seen = true;
        if !self.running.contains_key(execution) && self.running.len() >= MAX_RUNNING {
            let oldest = self
                .running
                .iter()
                .min_by_key(|(_, start)| **start)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                self.running.remove(&oldest);
            }
        }
        self.running.insert(execution.to_string(), at);
        self.advance(at);
    }

    fn finished(&mut self, execution: &str, end: RunEnd, at: DateTime<Utc>) {
        self.clock = self.clock.max(at);
        self.judge_window();
        self.seen = true;
        self.running.remove(execution);
        if end.success {
            self.streak = 0;
            self.last_success_run = Some((execution.to_string(), end.duration));
            self.judge_streak(at);
            self.judge_last_success(at);
            // A success older than the last one known (history fed out of order) does
            // not move the window.
            if self.last_success.is_none_or(|last| at >= last) {
                self.last_success = Some(at);
                self.missed_in_a_row = 0;
                self.active.remove(&Condition::Late);
                self.active.remove(&Condition::Missed);
                if let Some(c) = &self.expect.cadence {
                    self.due = c.rule.next_after(at);
                }
            }
        } else if end.last_attempt || !self.expect.alert_after_last_retry {
            self.streak = self.streak.saturating_add(1);
            self.last_failure = Some(execution.to_string());
            self.judge_streak(at);
        }
        self.advance(at);
    }

    /// New expectations: what still applies is kept (the last success, the failures in a
    /// row, the running attempts, the counters); a new `every` or `schedule` opens its
    /// first window from now, or from the last success if that is later.
    fn reconfigure(&mut self, expect: Expectations) {
        let now = self.clock;
        let old = std::mem::replace(&mut self.expect, expect);
        let old_rule = old.cadence.map(|c| c.rule);
        let new_rule = self.expect.cadence.as_ref().map(|c| &c.rule);
        if old_rule.as_ref() != new_rule {
            self.active.remove(&Condition::Late);
            self.active.remove(&Condition::Missed);
            self.missed_in_a_row = 0;
            let from = self.last_success.map_or(now, |last| last.max(now));
            self.due = new_rule.and_then(|r| r.next_after(from));
        }
        self.judge_streak(now);
        if old.min_duration != self.expect.min_duration {
            self.judge_last_success(now);
        }
        self.advance(now);
    }

    fn status(&self) -> ScriptStatus {
        ScriptStatus {
            script: self.id.clone(),
            specialist: self.specialist.clone(),
            state: self.state(),
            conditions: self.conditions(),
            next_expected: self.expect.cadence.as_ref().and(self.due),
            last_success: self.last_success,
            missed_total: self.missed_total,
            missed_in_a_row: self.missed_in_a_row,
            failures_in_a_row: self.streak,
            running: self.running.len(),
        }
    }

    /// The first instant at which time alone changes something.
    fn next_change_at(&self) -> Option<DateTime<Utc>> {
        let window = self.expect.cadence.as_ref().and_then(|c| {
            let due = self.due?;
            let late = self.active.contains_key(&Condition::Late)
                || self.active.contains_key(&Condition::Missed);
            Some(if late { after(due, c.grace) } else { due })
        });
        let overdue = self.expect.max_duration.and_then(|max| {
            self.running
                .values()
                .map(|start| after(*start, max))
                .filter(|t| *t >= self.clock)
                .min()
        });
        window.into_iter().chain(overdue).min().map(beyond)
    }
}

impl Tracker {
    /// Watching nothing.
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Watches `script` with `expect` from `now`, or gives a watched script new
    /// expectations (or a new specialist), keeping what still applies: the last success,
    /// the failures in a row, the running attempts and the counters. A new `every` or
    /// `schedule` opens its first window from now (or the last success, if later): slots
    /// the new rule would have had before are not counted missed.
    pub fn watch(
        &mut self,
        script: &str,
        specialist: Option<&str>,
        expect: Expectations,
        now: DateTime<Utc>,
    ) -> Vec<Change> {
        let Some(w) = self.scripts.get_mut(script) else {
            self.scripts.insert(
                script.to_string(),
                Watched::new(script, specialist, expect, now),
            );
            return Vec::new();
        };
        let mut changes = w.step(Cause::Time, now, |w| w.advance(now));
        if w.specialist.as_deref() != specialist {
            // The alerts' identity changes with the specialist: the old ones resolve and
            // the same conditions fire under the new one.
            let kept = w.active.clone();
            changes.extend(w.step(Cause::Changed, now, |w| w.active.clear()));
            w.specialist = specialist.map(str::to_string);
            changes.extend(w.step(Cause::Changed, now, |w| w.active = kept));
        }
        if w.expect != expect {
            changes.extend(w.step(Cause::Changed, now, |w| w.reconfigure(expect)));
        }
        changes
    }

    /// `script` was last known at `since`, before watching began: a scheduler had decided
    /// its slot then, and the host went down. Its windows count from `since`, as if
    /// watching had begun then (the slots that came while the host was down are missed
    /// once their grace has passed), unless a run was seen or a window counted since
    /// watching began; then time is judged at `now`.
    pub fn backdate(
        &mut self,
        script: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<Change> {
        let Some(w) = self.scripts.get_mut(script) else {
            return Vec::new();
        };
        if !w.seen && since < w.since && w.last_success.is_none() && w.counted_through.is_none() {
            w.since = since;
            w.due = w
                .expect
                .cadence
                .as_ref()
                .and_then(|c| c.rule.next_after(since));
        }
        w.step(Cause::Time, now, |w| w.advance(now))
    }

    /// Stops watching `script`: every condition holding clears.
    pub fn unwatch(&mut self, script: &str, now: DateTime<Utc>) -> Vec<Change> {
        match self.scripts.remove(script) {
            Some(mut w) => w.step(Cause::Unwatched, now, |w| w.active.clear()),
            None => Vec::new(),
        }
    }

    /// After a registry (re)load: watches every script given with its expectations, and
    /// stops watching every other one (`(id, specialist, expect)`; a `None` expect is a
    /// script without an `expect` block).
    pub fn sync<'a>(
        &mut self,
        scripts: impl IntoIterator<Item = (&'a str, Option<&'a str>, Option<&'a Expectations>)>,
        now: DateTime<Utc>,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut keep = std::collections::BTreeSet::new();
        for (id, specialist, expect) in scripts {
            if let Some(expect) = expect {
                keep.insert(id.to_string());
                changes.extend(self.watch(id, specialist, expect.clone(), now));
            }
        }
        let gone: Vec<String> = self
            .scripts
            .keys()
            .filter(|id| !keep.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            changes.extend(self.unwatch(&id, now));
        }
        changes
    }

    /// An attempt of `script` started at `at` (each attempt: a retry starts the clock of
    /// `max_duration` again).
    pub fn started(&mut self, script: &str, execution_id: &str, at: DateTime<Utc>) -> Vec<Change> {
        match self.scripts.get_mut(script) {
            Some(w) => w.step(Cause::Started, at, |w| w.started(execution_id, at)),
            None => Vec::new(),
        }
    }

    /// An attempt of `script` ended at `at`. Events are taken in the order given; one
    /// from before the latest time seen (history fed in) counts without moving time back.
    pub fn finished(
        &mut self,
        script: &str,
        execution_id: &str,
        end: RunEnd,
        at: DateTime<Utc>,
    ) -> Vec<Change> {
        match self.scripts.get_mut(script) {
            Some(w) => w.step(Cause::Ended(execution_id, end), at, |w| {
                w.finished(execution_id, end, at)
            }),
            None => Vec::new(),
        }
    }

    /// Time passing: windows and running attempts judged at `now`.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Change> {
        let mut changes = Vec::new();
        for w in self.scripts.values_mut() {
            changes.extend(w.step(Cause::Time, now, |w| w.advance(now)));
        }
        changes
    }

    /// The first instant at which a [`tick`](Tracker::tick) would change something (a due
    /// time or a grace passed, an attempt past its `max_duration`), if any.
    pub fn next_change_at(&self) -> Option<DateTime<Utc>> {
        self.scripts
            .values()
            .filter_map(Watched::next_change_at)
            .min()
    }

    /// Every alert firing now, stamped `now`: to hand to the alert book at each
    /// evaluation, as rules return their firing alerts, so that none resolves by the
    /// book's timeout while its condition holds.
    pub fn firing(&self, now: DateTime<Utc>) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for w in self.scripts.values() {
            let state = w.state();
            for (condition, active) in &w.active {
                let told = (active.execution_id.clone(), active.summary.clone());
                let change = w.change(*condition, true, now, active, told, state);
                alerts.extend(change.alert());
            }
        }
        alerts
    }

    /// Whether no script is watched.
    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }

    /// Whether `script` is watched (cheap: a map lookup).
    pub fn is_watched(&self, script: &str) -> bool {
        self.scripts.contains_key(script)
    }

    /// The standing of `script`, if it is watched.
    pub fn status(&self, script: &str) -> Option<ScriptStatus> {
        self.scripts.get(script).map(Watched::status)
    }

    /// The standing of every watched script, by id.
    pub fn statuses(&self) -> Vec<ScriptStatus> {
        self.scripts.values().map(Watched::status).collect()
    }
}
