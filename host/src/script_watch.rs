//! A long-running host's watch over the scripts with an `expect` block: the
//! [`Tracker`] fed by the host's own lifecycle events and
//! by the clock, its changes raised as `script_*` alerts through the alert book and its
//! routing (the plugins' notifiers, the history, the feed), and each script's standing
//! for `/metrics` and the API.
//!
//! One thread (`script-watch`) wakes when the tracker says something changes next (a due
//! time and its grace passing, an attempt going past its `max_duration`), and at least
//! every [`REFRESH`], when it hands the book every alert still firing (the book resolves
//! an alert it has not seen for five minutes, as it does a rule's). Events come in on the
//! executor's thread ([`EventSink`]): an attempt's start, an attempt that failed and will
//! be retried, an execution's end.
//!
//! **Runs of other processes.** Given the execution log's directory
//! ([`ScriptWatch::follow_log`]), a second thread (`script-watch-log`) follows it as it is
//! written (`logs::follow`), from when a script is first watched (a host without
//! expectations reads nothing of it): an execution this host did not run (`metaclaude run` from
//! cron or CI with the same log directory) counts as it finished, so "did not run" and
//! "failed five times in a row" hold for scripts no server starts. Only its end is known
//! (the log has no start), so such a run is never overdue. The host's own executions,
//! which its log sink writes too, are told apart by their ids (the last
//! [`MAX_OWN`] remembered).
//!
//! An alert about a script carries the execution id it is about and, when that was the
//! script's last finished run as the alert was raised (a failure that tipped it into
//! `failing`, a success too short), the tail of that run's stdout and stderr (annotations
//! `stdout_tail`, `stderr_tail`: the last [`TAIL_LINES`] lines, at most [`TAIL_BYTES`]
//! each, control characters other than line feeds and tabs replaced, so a terminal or a
//! notification shows text, never escapes), kept with the alert while it fires.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::executor::EventSink;
use crate::expectations::{Change, RunEnd, ScriptStatus, Tracker};
use crate::logs::follow::Follower;
use crate::model::{Alert, AlertStatus, ExecutionEvent, ExecutionResult, LifecycleKind};
use crate::registry::Registry;

/// At least this often every firing alert is handed to the book again.
pub const REFRESH: Duration = Duration::from_secs(60);
/// Lines of output kept for an alert, per stream.
pub const TAIL_LINES: usize = 20;
/// Bytes of output kept for an alert, per stream.
pub const TAIL_BYTES: usize = 2048;
/// Attempts remembered as running at once (their start times); beyond, the oldest
/// entries are forgotten (their overdue clocks are the tracker's own, bounded too).
const MAX_RUNNING: usize = 4096;
/// The host's own executions remembered, to tell them apart in the log it follows.
pub const MAX_OWN: usize = 10_000;
/// How often the followed log is read for new lines.
const LOG_POLL: Duration = Duration::from_millis(500);

/// Where the watch's alerts go (the plugin host's `raise_alerts`).
pub type Publish = Box<dyn Fn(Vec<Alert>) + Send + Sync>;

/// See the module doc.
pub struct ScriptWatch {
    inner: Mutex<Inner>,
    wake: Condvar,
    publish: Publish,
}

struct Inner {
    tracker: Tracker,
    /// Execution id → when its current attempt started.
    attempt_started: HashMap<String, DateTime<Utc>>,
    /// Script → its last finished run's output.
    last_runs: HashMap<String, LastRun>,
    /// The ids of the executions this host finished, oldest first (at most [`MAX_OWN`]).
    own: std::collections::VecDeque<String>,
    own_set: std::collections::HashSet<String>,
    /// A firing alert's fingerprint → the output tails it was raised with, given again
    /// each time it is handed to the book (bounded by the alerts firing: four a script).
    told: HashMap<String, Vec<(String, String)>>,
    stopped: bool,
}

/// The output of a script's last finished run, cut for an alert.
struct LastRun {
    execution_id: String,
    stdout_tail: String,
    stderr_tail: String,
}

impl ScriptWatch {
    /// Watches the scripts of `registry` that have expectations from now, raising their
    /// alerts through `publish`; its thread ends when the watch is dropped or stopped.
    pub fn start(registry: &Registry, publish: Publish) -> Arc<ScriptWatch> {
        let watch = Arc::new(ScriptWatch {
            inner: Mutex::new(Inner {
                tracker: Tracker::new(),
                attempt_started: HashMap::new(),
                last_runs: HashMap::new(),
                own: Default::default(),
                own_set: Default::default(),
                told: HashMap::new(),
                stopped: false,
            }),
            wake: Condvar::new(),
            publish,
        });
        watch.sync(registry);
        let weak = Arc::downgrade(&watch);
        let spawned = std::thread::Builder::new()
            .name("script-watch".into())
            .spawn(move || run(weak));
        if let Err(e) = spawned {
            tracing::error!("the script watch's thread could not start: {e}");
        }
        watch
    }

    /// After a registry (re)load: the scripts with expectations watched, with theirs; the
    /// others no more (their alerts resolve).
    pub fn sync(&self, registry: &Registry) {
        let now = Utc::now();
        let alerts = {
            let mut inner = self.inner.lock().unwrap();
            let changes = inner.tracker.sync(
                registry
                    .scripts
                    .iter()
                    .map(|s| (s.id.as_str(), s.specialist.as_deref(), s.expect.as_ref())),
                now,
            );
            inner.alerts(changes)
        };
        self.raise(alerts);
        self.wake.notify_all();
    }

    /// Follows the execution log in `dir` from now: the runs of other processes that
    /// finish there count (see the module doc). Its thread ends with the watch.
    pub fn follow_log(self: &Arc<ScriptWatch>, dir: PathBuf) {
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("script-watch-log".into())
            .spawn(move || follow(weak, dir));
        if let Err(e) = spawned {
            tracing::error!("the script watch's log thread could not start: {e}");
        }
    }

    /// A record of the followed log: counted unless this host ran it.
    fn logged(&self, r: ExecutionResult) {
        let alerts = {
            let mut inner = self.inner.lock().unwrap();
            if inner.own_set.contains(&r.execution_id) || !inner.tracker.is_watched(&r.script_id) {
                return;
            }
            let changes = inner.event(&ExecutionEvent::finished(r));
            inner.alerts(changes)
        };
        self.raise(alerts);
        self.wake.notify_all();
    }

    /// `script` was last known at `since`, before this host began watching (the last slot
    /// its schedule decided before the host went down): the windows since are judged now,
    /// so the runs missed while the host was down raise `script_missed` (see
    /// [`Tracker::backdate`]).
    pub fn backdate(&self, script: &str, since: DateTime<Utc>) {
        let alerts = {
            let mut inner = self.inner.lock().unwrap();
            let changes = inner.tracker.backdate(script, since, Utc::now());
            inner.alerts(changes)
        };
        self.raise(alerts);
        self.wake.notify_all();
    }

    /// The standing of every watched script, by id.
    pub fn statuses(&self) -> Vec<ScriptStatus> {
        let mut all = self.inner.lock().unwrap().tracker.statuses();
        all.sort_by(|a, b| a.script.cmp(&b.script));
        all
    }

    /// The standing of `script`, if it is watched.
    pub fn status(&self, script: &str) -> Option<ScriptStatus> {
        self.inner.lock().unwrap().tracker.status(script)
    }

    /// Ends the thread (also when the watch is dropped).
    pub fn stop(&self) {
        self.inner.lock().unwrap().stopped = true;
        self.wake.notify_all();
    }

    fn raise(&self, alerts: Vec<Alert>) {
        if !alerts.is_empty() {
            (self.publish)(alerts);
        }
    }
}

impl Drop for ScriptWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Inner {
    /// The alerts of `changes`, with the output of the run they are about.
    fn alerts(&mut self, changes: Vec<Change>) -> Vec<Alert> {
        changes
            .iter()
            .filter_map(|c| {
                let alert = c.alert()?;
                Some(self.with_output(alert))
            })
            .collect()
    }

    /// `alert` with the output tails of the run it is about: those it was raised with,
    /// or, as it is raised, its script's last run's when the alert is about that
    /// execution. A resolved alert's are forgotten.
    fn with_output(&mut self, mut alert: Alert) -> Alert {
        let tails = match self.told.get(&alert.fingerprint) {
            Some(tails) => tails.clone(),
            None => {
                let run = alert
                    .labels
                    .get("script")
                    .and_then(|script| self.last_runs.get(script))
                    .filter(|run| alert.annotations.get("execution_id") == Some(&run.execution_id));
                let tails: Vec<(String, String)> = run
                    .map(|run| {
                        [
                            ("stdout_tail", &run.stdout_tail),
                            ("stderr_tail", &run.stderr_tail),
                        ]
                        .into_iter()
                        .filter(|(_, tail)| !tail.is_empty())
                        .map(|(name, tail)| (name.to_string(), tail.clone()))
                        .collect()
                    })
                    .unwrap_or_default();
                if alert.status == AlertStatus::Firing {
                    self.told.insert(alert.fingerprint.clone(), tails.clone());
                }
                tails
            }
        };
        if alert.status == AlertStatus::Resolved {
            self.told.remove(&alert.fingerprint);
        }
        alert.annotations.extend(tails);
        alert
    }

    fn event(&mut self, e: &ExecutionEvent) -> Vec<Change> {
        let script = e.identity.script_id.as_str();
        let id = e.identity.execution_id.as_str();
        // A script without expectations costs a map lookup, nothing more.
        if !self.tracker.is_watched(script) {
            return Vec::new();
        }
        match e.kind {
            LifecycleKind::Started => {
                if self.attempt_started.len() >= MAX_RUNNING {
                    if let Some(oldest) = self
                        .attempt_started
                        .iter()
                        .min_by_key(|(_, at)| **at)
                        .map(|(k, _)| k.clone())
                    {
                        self.attempt_started.remove(&oldest);
                    }
                }
                self.attempt_started.insert(id.to_string(), e.timestamp);
                self.tracker.started(script, id, e.timestamp)
            }
            // A failed attempt that will be retried (the last one's failure is the
            // execution's, told by `finished`).
            LifecycleKind::RetryScheduled => {
                let began = self.attempt_started.get(id).copied();
                let end = RunEnd {
                    success: false,
                    duration: ran(began, e.timestamp),
                    last_attempt: false,
                };
                self.tracker.finished(script, id, end, e.timestamp)
            }
            LifecycleKind::Finished => {
                self.attempt_started.remove(id);
                if !self.own_set.contains(id) {
                    if self.own.len() >= MAX_OWN {
                        if let Some(oldest) = self.own.pop_front() {
                            self.own_set.remove(&oldest);
                        }
                    }
                    self.own.push_back(id.to_string());
                    self.own_set.insert(id.to_string());
                }
                let Some(r) = e.result.as_deref() else {
                    return Vec::new();
                };
                self.last_runs.insert(script.to_string(), last_run(r));
                let end = RunEnd {
                    success: r.success,
                    duration: last_attempt_duration(r),
                    last_attempt: true,
                };
                self.tracker.finished(script, id, end, e.timestamp)
            }
            LifecycleKind::Queued | LifecycleKind::AttemptFailed => Vec::new(),
        }
    }
}

impl EventSink for ScriptWatch {
    fn emit(&self, event: &ExecutionEvent) {
        if !matches!(
            event.kind,
            LifecycleKind::Started | LifecycleKind::RetryScheduled | LifecycleKind::Finished
        ) {
            return;
        }
        let alerts = {
            let mut inner = self.inner.lock().unwrap();
            let changes = inner.event(event);
            inner.alerts(changes)
        };
        self.raise(alerts);
        // A started attempt may bring the next change closer (its max_duration).
        self.wake.notify_all();
    }
}

/// How long an attempt that began at `began` ran until `ended`.
fn ran(began: Option<DateTime<Utc>>, ended: DateTime<Utc>) -> Duration {
    began
        .and_then(|b| (ended - b).to_std().ok())
        .unwrap_or_default()
}

/// The wall time of the execution's last attempt (the whole execution's when it has no
/// attempts: refused before it ran).
fn last_attempt_duration(r: &ExecutionResult) -> Duration {
    let seconds = r
        .attempts
        .last()
        .map_or(r.resource_usage.wall_time_seconds, |a| a.wall_time_seconds);
    Duration::try_from_secs_f64(seconds).unwrap_or_default()
}

fn last_run(r: &ExecutionResult) -> LastRun {
    LastRun {
        execution_id: r.execution_id.clone(),
        stdout_tail: tail(&r.stdout),
        stderr_tail: tail(&r.stderr),
    }
}

/// The last [`TAIL_LINES`] lines of `text`, at most [`TAIL_BYTES`] (cut at a character
/// boundary), control characters but line feeds and tabs replaced by U+FFFD.
pub fn tail(text: &str) -> String {
    let text = text.trim_end_matches(['\n', '\r']);
    // After the TAIL_LINES-th line feed from the end.
    let start = text
        .rmatch_indices('\n')
        .nth(TAIL_LINES - 1)
        .map_or(0, |(i, _)| i + 1);
    let mut from = start.max(text.len().saturating_sub(TAIL_BYTES));
    while !text.is_char_boundary(from) {
        from += 1;
    }
    text[from..]
        .chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// The log thread: new records of the followed directory, every [`LOG_POLL`], until the
/// watch is gone. A read that fails (the directory not there yet, a link planted where
/// the live file should be) is logged once per kind and tried again.
fn follow(watch: Weak<ScriptWatch>, dir: PathBuf) {
    let notices = |n: crate::logs::ReadNotice| tracing::debug!("followed log: {n}");
    // The follower, from when it began, and whether its first read is done: none while
    // no script is watched (a server without `expect` blocks reads nothing of its log).
    let mut following: Option<(Follower, DateTime<Utc>, bool)> = None;
    let mut last_error = String::new();
    loop {
        let Some(w) = watch.upgrade() else {
            return;
        };
        let watching = {
            let inner = w.inner.lock().unwrap();
            if inner.stopped {
                return;
            }
            !inner.tracker.is_empty()
        };
        if !watching {
            following = None;
        } else {
            let (follower, since, started) =
                following.get_or_insert_with(|| (Follower::new(&dir), Utc::now(), false));
            let since = *since;
            let mut each = |r: ExecutionResult| {
                if r.finished_at >= since {
                    w.logged(r);
                }
            };
            let read = if *started {
                loop {
                    match follower.poll(&mut each) {
                        Ok(true) => continue,
                        other => break other.map(|_| ()),
                    }
                }
            } else {
                follower.start(since, &mut each, &notices)
            };
            match read {
                Ok(()) => *started = true,
                Err(e) => {
                    let text = e.to_string();
                    if text != last_error {
                        tracing::warn!(dir = %dir.display(), "the script watch cannot read the execution log: {text}");
                        last_error = text;
                    }
                }
            }
        }
        drop(w);
        std::thread::sleep(LOG_POLL);
    }
}

/// The watch's thread: ticks at the tracker's next change, refreshes the book.
fn run(watch: Weak<ScriptWatch>) {
    let mut refresh_at = Utc::now();
    loop {
        let Some(w) = watch.upgrade() else {
            return;
        };
        let now = Utc::now();
        let mut inner = w.inner.lock().unwrap();
        if inner.stopped {
            return;
        }
        let changes = inner.tracker.tick(now);
        let mut alerts = inner.alerts(changes);
        if now >= refresh_at {
            let firing = inner.tracker.firing(now);
            for a in firing {
                alerts.push(inner.with_output(a));
            }
            refresh_at = now + REFRESH;
        }
        let next = inner
            .tracker
            .next_change_at()
            .map_or(refresh_at, |t| t.min(refresh_at));
        drop(inner);
        w.raise(alerts);
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        let inner = w.inner.lock().unwrap();
        if inner.stopped {
            return;
        }
        // A bounded wait: a weak handle is upgraded again each round, so the thread
        // ends once the host drops the watch.
        let (inner, _) = w.wake.wait_timeout(inner, wait.min(REFRESH)).unwrap();
        drop(inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_is_the_last_lines_bounded_and_free_of_escapes() {
        let many: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let t = tail(&many);
        assert!(t.starts_with("line 11\n") && t.ends_with("line 30"), "{t}");
        assert_eq!(t.lines().count(), TAIL_LINES);
        assert_eq!(tail("one line"), "one line");
        assert_eq!(tail(""), "");
        assert_eq!(
            tail("red \u{1b}[31mtext\u{7}\r\nnext\tcol\n"),
            "red \u{fffd}[31mtext\u{fffd}\u{fffd}\nnext\tcol"
        );
        let long = "é".repeat(5000);
        let t = tail(&long);
        assert!(t.len() <= TAIL_BYTES && t.chars().all(|c| c == 'é'));
    }
}
