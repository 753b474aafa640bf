//! What a long-running host keeps in memory about its executions: the ones running now
//! (their state so far), a bounded ring of the recent ones, totals since it started, and
//! a numbered feed of every lifecycle event for live clients (the server's WebSocket).
//!
//! Invariants:
//! * memory is bounded: at most [`Limits::recent`] finished executions and
//!   [`Limits::recent_output_bytes`] of their stdout and stderr are kept (the oldest go
//!   first); the feed is a broadcast channel of [`Limits::feed`] items shared by every
//!   client, whose copies of a result keep at most [`FEED_OUTPUT_BYTES`] of each output;
//! * every event gets the next sequence number and is sent to the feed in that order,
//!   under one lock, so a client that takes a [`Snapshot`] and then reads the feed sees
//!   every event after the snapshot exactly once;
//! * the executor is never blocked: `emit` updates memory and sends to a channel that
//!   drops what slow clients did not read (they notice and take a fresh snapshot).

mod subscription;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use metaclaude_stats::{DdSketch, Window, Windowed};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::executor::EventSink;
use crate::logs::query::{Matcher, Record};
use crate::logs::stats::{Acc, GroupBy, Stats, StatsAcc};
use crate::model::{
    timestamp, Alert, AlertStatus, ErrorDetails, ExecutionEvent, ExecutionResult, LifecycleKind,
};

pub use self::subscription::{parse_client_message, Subscription, SubscriptionQuery};

/// Bytes of each of stdout and stderr that the feed's copy of a result keeps (the tail;
/// `stdout_truncated` says so). The whole result stays available by its id.
pub const FEED_OUTPUT_BYTES: usize = 8 * 1024;

/// How much a [`Monitor`] keeps.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Finished executions kept.
    pub recent: usize,
    /// stdout and stderr bytes kept over all of them.
    pub recent_output_bytes: usize,
    /// Feed items buffered for the slowest client before it must take a snapshot.
    pub feed: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            recent: 10_000,
            recent_output_bytes: 64 * 1024 * 1024,
            feed: 1024,
        }
    }
}

/// Where a running execution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Waiting for a concurrency slot.
    Queued,
    /// An attempt's process runs.
    Running,
    /// Waiting out the backoff before the next attempt.
    Retrying,
}

/// An execution that has not finished: its state so far.
#[derive(Debug, Clone, Serialize)]
pub struct RunningExecution {
    pub execution_id: String,
    pub script_id: String,
    pub specialist: Option<String>,
    pub session_id: Option<String>,
    pub correlation_id: Option<String>,
    pub user: Option<String>,
    pub state: RunState,
    #[serde(with = "timestamp")]
    pub queued_at: DateTime<Utc>,
    /// The attempt running or last run (0 while queued).
    pub attempt: u32,
    /// The running attempt's process id.
    pub pid: Option<u32>,
    #[serde(with = "timestamp::option")]
    pub attempt_started_at: Option<DateTime<Utc>>,
    /// What went wrong in the last failed attempt.
    pub last_error: Option<ErrorDetails>,
    /// The backoff before the next attempt, while retrying.
    pub retry_delay_ms: Option<u64>,
}

/// An execution the monitor knows, running or finished.
#[derive(Debug, Clone)]
pub enum Known {
    Running(Box<RunningExecution>),
    Finished(Arc<ExecutionResult>),
}

/// Counts since the monitor started.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Totals {
    pub executions: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub retries: u64,
}

/// One event of the feed: its sequence number, what a subscription filters on, and the
/// message every client is sent, serialised once.
#[derive(Debug)]
pub struct FeedItem {
    pub seq: u64,
    /// The event's kind; `None` for an alert.
    pub kind: Option<LifecycleKind>,
    pub script_id: String,
    pub specialist: Option<String>,
    /// `{"type":"event","seq":N,"event":{...}}` or `{"type":"alert","seq":N,"alert":{...}}`.
    pub json: String,
}

/// The state a live client starts from; the feed's items after `seq` follow it.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The last event this snapshot includes.
    pub seq: u64,
    #[serde(with = "timestamp")]
    pub started_at: DateTime<Utc>,
    pub totals: Totals,
    pub running: Vec<RunningExecution>,
    /// The newest finished executions, newest first (outputs cut as in the feed).
    pub recent: Vec<ExecutionResult>,
    /// The alerts in force, most severe first.
    pub alerts: Vec<Alert>,
}

/// Statistics over the executions held in memory that finished since `since`.
#[derive(Debug, Clone, Serialize)]
pub struct WindowStats {
    #[serde(with = "timestamp::option")]
    pub since: Option<DateTime<Utc>>,
    /// The oldest finish time held: when it is after `since`, older executions of the
    /// window were already let go (the log has them).
    #[serde(with = "timestamp::option")]
    pub oldest_held: Option<DateTime<Utc>>,
    /// Whether the memory covers the whole window.
    pub complete: bool,
    pub overall: Stats,
    /// Most executions first.
    pub top_scripts: Vec<crate::logs::stats::Group>,
    pub top_specialists: Vec<crate::logs::stats::Group>,
}

struct State {
    /// Durations (seconds) and peak memory (MB) of finished executions, over the last 1, 5
    /// and 60 minutes and since start: percentiles with at most 1 % relative error in
    /// bounded memory, whatever the ring still holds.
    durations: Windowed,
    memory: Windowed,
    seq: u64,
    running: HashMap<String, RunningExecution>,
    recent: VecDeque<Arc<ExecutionResult>>,
    by_id: HashMap<String, Arc<ExecutionResult>>,
    output_bytes: usize,
    totals: Totals,
    /// Finished executions let go to stay within the limits.
    evicted: u64,
    /// The alerts in force, by fingerprint (kept from the changes the host reports).
    alerts: BTreeMap<String, Alert>,
}

/// The in-memory view of a host's executions; an [`EventSink`].
pub struct Monitor {
    limits: Limits,
    /// When the host started, or (a replay of the log) its first execution.
    started_at: Mutex<DateTime<Utc>>,
    state: Mutex<State>,
    feed: broadcast::Sender<Arc<FeedItem>>,
}

impl Monitor {
    pub fn new(limits: Limits) -> Monitor {
        let (feed, _) = broadcast::channel(limits.feed.max(1));
        Monitor {
            limits,
            started_at: Mutex::new(Utc::now()),
            state: Mutex::new(State {
                durations: Windowed::default(),
                memory: Windowed::default(),
                seq: 0,
                running: HashMap::new(),
                recent: VecDeque::new(),
                by_id: HashMap::new(),
                output_bytes: 0,
                totals: Totals::default(),
                evicted: 0,
                alerts: BTreeMap::new(),
            }),
            feed,
        }
    }

    pub fn started_at(&self) -> DateTime<Utc> {
        *self.started_at.lock().unwrap()
    }

    /// Moves the start back to `at` if it is earlier: a replay of the log starts with the
    /// log's first execution, so that rates since start mean what they mean for a host.
    pub fn backdate(&self, at: DateTime<Utc>) {
        let mut started = self.started_at.lock().unwrap();
        if at < *started {
            *started = at;
        }
    }

    /// [`EventSink::emit`] of a finished execution, given away: held without a copy when
    /// nobody subscribes to the feed (a dashboard's own monitor).
    pub fn finished(&self, result: ExecutionResult) {
        let mut state = self.state.lock().unwrap();
        if self.feed.receiver_count() != 0 {
            drop(state);
            self.emit(&ExecutionEvent::finished(result));
            return;
        }
        state.running.remove(&result.execution_id);
        self.hold(&mut state, Arc::new(result));
        state.seq += 1;
    }

    /// A snapshot with the `recent` newest finished executions, and the feed from the
    /// event after it on (taken together, so nothing is missed or seen twice).
    pub fn subscribe(&self, recent: usize) -> (Snapshot, broadcast::Receiver<Arc<FeedItem>>) {
        let state = self.state.lock().unwrap();
        let rx = self.feed.subscribe();
        (self.snapshot_of(&state, recent), rx)
    }

    /// A snapshot, without the feed.
    pub fn snapshot(&self, recent: usize) -> Snapshot {
        self.snapshot_of(&self.state.lock().unwrap(), recent)
    }

    fn snapshot_of(&self, state: &State, recent: usize) -> Snapshot {
        let mut running: Vec<RunningExecution> = state.running.values().cloned().collect();
        running.sort_by(|a, b| a.execution_id.cmp(&b.execution_id));
        Snapshot {
            seq: state.seq,
            started_at: self.started_at(),
            totals: state.totals,
            running,
            recent: state
                .recent
                .iter()
                .rev()
                .take(recent)
                .map(|r| feed_copy(r))
                .collect(),
            alerts: sorted_alerts(&state.alerts),
        }
    }

    /// Takes in alerts that changed state (the host's alert router calls it): the set in
    /// force is updated and each change goes to the feed, numbered like the events, as
    /// `{"type":"alert","seq":N,"alert":{...}}`.
    pub fn alerts_changed(&self, alerts: &[Alert]) {
        let mut state = self.state.lock().unwrap();
        for a in alerts {
            match a.status {
                AlertStatus::Firing => {
                    state.alerts.insert(a.fingerprint.clone(), a.clone());
                }
                AlertStatus::Resolved => {
                    state.alerts.remove(&a.fingerprint);
                }
            }
            state.seq += 1;
            let seq = state.seq;
            let json = serde_json::to_string(&AlertMessage {
                kind: "alert",
                seq,
                alert: a,
            })
            .unwrap_or_default();
            let _ = self.feed.send(Arc::new(FeedItem {
                seq,
                kind: None,
                script_id: String::new(),
                specialist: a.specialist.clone(),
                json,
            }));
        }
    }

    /// The alerts in force as the feed knows them, most severe first.
    pub fn alerts(&self) -> Vec<Alert> {
        sorted_alerts(&self.state.lock().unwrap().alerts)
    }

    /// The execution `id`, if it runs or is still held.
    pub fn get(&self, id: &str) -> Option<Known> {
        let state = self.state.lock().unwrap();
        if let Some(r) = state.running.get(id) {
            return Some(Known::Running(Box::new(r.clone())));
        }
        state.by_id.get(id).cloned().map(Known::Finished)
    }

    /// Whether `id` is held as a finished execution.
    pub fn holds(&self, id: &str) -> bool {
        self.state.lock().unwrap().by_id.contains_key(id)
    }

    /// The newest finished executions that `matcher` takes, at most `limit`, newest first.
    pub fn recent(&self, matcher: &Matcher, limit: usize) -> Vec<Arc<ExecutionResult>> {
        let everything = matcher.matches_everything();
        let state = self.state.lock().unwrap();
        state
            .recent
            .iter()
            .rev()
            .filter(|r| everything || matcher.matches(&Record::of(r)))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Duration and peak-memory percentiles over the last 1, 5 and 60 minutes and since
    /// start, from the sketches (at most 1 % relative error; see `metaclaude_stats`).
    pub fn percentiles(&self, now: DateTime<Utc>) -> Percentiles {
        let state = self.state.lock().unwrap();
        let now_ms = epoch_ms(now);
        let of = |w: &Windowed| {
            Window::ALL
                .iter()
                .map(|&window| (window.label(), Quantiles::of(&w.window(window, now_ms))))
                .collect()
        };
        Percentiles {
            duration_seconds: of(&state.durations),
            peak_memory_mb: of(&state.memory),
        }
    }

    /// The executions running now, oldest first.
    pub fn running(&self) -> Vec<RunningExecution> {
        self.snapshot(0).running
    }

    pub fn totals(&self) -> Totals {
        self.state.lock().unwrap().totals
    }

    /// Statistics over the held executions that finished at or after `since` (all of them
    /// when `None`), with the `top` scripts and specialists by count.
    pub fn stats(&self, since: Option<DateTime<Utc>>, top: usize) -> WindowStats {
        self.stats_matching(since, top, None)
    }

    /// [`Monitor::stats`] of the executions `matcher` takes (all of them when `None`).
    pub fn stats_matching(
        &self,
        since: Option<DateTime<Utc>>,
        top: usize,
        matcher: Option<&Matcher>,
    ) -> WindowStats {
        let held: Vec<Arc<ExecutionResult>> = {
            let state = self.state.lock().unwrap();
            state
                .recent
                .iter()
                .filter(|r| since.is_none_or(|s| r.finished_at >= s))
                .cloned()
                .collect()
        };
        let (oldest_held, evicted) = {
            let state = self.state.lock().unwrap();
            (state.recent.front().map(|r| r.finished_at), state.evicted)
        };
        let mut overall = Acc::default();
        let mut scripts = StatsAcc::default();
        let mut specialists = StatsAcc::default();
        for r in &held {
            let record = Record::of(r);
            if matcher.is_some_and(|m| !m.matches(&record)) {
                continue;
            }
            overall.add(&record);
            scripts.add(&record, Some(GroupBy::Script));
            specialists.add(&record, Some(GroupBy::Specialist));
        }
        let top_of = |acc: StatsAcc, by| {
            let mut groups = acc.finish(Some(by)).groups;
            groups.sort_by(|a, b| b.stats.count.cmp(&a.stats.count).then(a.key.cmp(&b.key)));
            groups.truncate(top);
            groups
        };
        WindowStats {
            since,
            oldest_held,
            complete: evicted == 0 || matches!((since, oldest_held), (Some(s), Some(o)) if o <= s),
            overall: overall.finish(),
            top_scripts: top_of(scripts, GroupBy::Script),
            top_specialists: top_of(specialists, GroupBy::Specialist),
        }
    }

    /// The report the seed's `--report --period N` prints, the stats API serves and the
    /// dashboards show: the last `period_minutes` (0: since start) of what memory holds,
    /// with the `top` scripts and specialists, the sketches' percentiles by window, the
    /// executions running and the totals since start.
    pub fn report(&self, period_minutes: u64, top: usize, now: DateTime<Utc>) -> Report {
        self.report_matching(period_minutes, top, now, None)
    }

    /// [`Monitor::report`] of the executions `matcher` takes (the dashboards' filters).
    /// The window's figures are of those alone; `percentiles` and `since_start` stay the
    /// whole host's (the sketches are not kept per filter).
    pub fn report_matching(
        &self,
        period_minutes: u64,
        top: usize,
        now: DateTime<Utc>,
        matcher: Option<&Matcher>,
    ) -> Report {
        let since = self.period_start(period_minutes, now);
        let window = self.stats_matching(since, top, matcher);
        let minutes = match since {
            Some(_) => period_minutes as f64,
            None => (now - self.started_at()).num_milliseconds().max(1) as f64 / 60_000.0,
        };
        Report {
            period_minutes,
            generated_at: now,
            running: self.running().len(),
            executions_per_minute: window.overall.count as f64 / minutes.max(1.0 / 60.0),
            since_start: self.totals(),
            window,
            percentiles: self.percentiles(now),
        }
    }

    /// Where a period of `period_minutes` ending `now` starts (`None`: since start).
    fn period_start(&self, period_minutes: u64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (period_minutes > 0)
            .then(|| now - chrono::Duration::minutes(period_minutes.min(MAX_PERIOD_MINUTES) as i64))
    }

    /// The held executions `matcher` takes over the last `period_minutes` (0: since
    /// start), counted in `buckets` equal intervals ending `now`: executions, failures,
    /// the error rate and duration percentiles of each (the dashboards' charts).
    pub fn timeseries(
        &self,
        period_minutes: u64,
        buckets: usize,
        now: DateTime<Utc>,
        matcher: Option<&Matcher>,
    ) -> Timeseries {
        let buckets = buckets.clamp(1, MAX_BUCKETS);
        let start = self
            .period_start(period_minutes, now)
            .unwrap_or_else(|| self.started_at().min(now));
        let span_ms = (now - start).num_milliseconds().max(1000);
        // Whole milliseconds, at least one second a bucket.
        let step_ms = (span_ms + buckets as i64 - 1) / buckets as i64;
        let step_ms = step_ms.max(1000);
        let first = now - chrono::Duration::milliseconds(step_ms * buckets as i64);
        let mut durations: Vec<Vec<f64>> = vec![Vec::new(); buckets];
        let mut failures = vec![0u64; buckets];
        let (oldest_held, evicted) = {
            let state = self.state.lock().unwrap();
            for r in state.recent.iter().rev() {
                if r.finished_at < first {
                    break;
                }
                if matcher.is_some_and(|m| !m.matches(&Record::of(r))) {
                    continue;
                }
                let i = ((r.finished_at - first).num_milliseconds() / step_ms) as usize;
                let i = i.min(buckets - 1);
                durations[i].push(r.resource_usage.wall_time_seconds);
                if !r.success {
                    failures[i] += 1;
                }
            }
            (state.recent.front().map(|r| r.finished_at), state.evicted)
        };
        let series = durations
            .into_iter()
            .zip(failures)
            .enumerate()
            .map(|(i, (mut d, failures))| {
                d.sort_by(f64::total_cmp);
                let executions = d.len() as u64;
                Bucket {
                    start: first + chrono::Duration::milliseconds(step_ms * i as i64),
                    executions,
                    failures,
                    error_rate: (executions > 0)
                        .then(|| 100.0 * failures as f64 / executions as f64),
                    duration_p50: nearest_rank(&d, 0.50),
                    duration_p95: nearest_rank(&d, 0.95),
                }
            })
            .collect();
        Timeseries {
            period_minutes,
            step_seconds: step_ms as f64 / 1000.0,
            generated_at: now,
            complete: evicted == 0 || oldest_held.is_some_and(|o| o <= first),
            buckets: series,
        }
    }

    fn record(&self, state: &mut State, event: &ExecutionEvent) {
        let id = &event.execution_id;
        match event.kind {
            LifecycleKind::Queued => {
                state.running.insert(
                    id.clone(),
                    RunningExecution {
                        execution_id: id.clone(),
                        script_id: event.script_id.clone(),
                        specialist: event.specialist.clone(),
                        session_id: event.session_id.clone(),
                        correlation_id: event.correlation_id.clone(),
                        user: event.user.clone(),
                        state: RunState::Queued,
                        queued_at: event.timestamp,
                        attempt: 0,
                        pid: None,
                        attempt_started_at: None,
                        last_error: None,
                        retry_delay_ms: None,
                    },
                );
            }
            LifecycleKind::Started => {
                if let Some(r) = state.running.get_mut(id) {
                    r.state = RunState::Running;
                    r.attempt = event.attempt;
                    r.pid = event.pid;
                    r.attempt_started_at = Some(event.timestamp);
                    r.retry_delay_ms = None;
                }
            }
            LifecycleKind::AttemptFailed => {
                if let Some(r) = state.running.get_mut(id) {
                    r.pid = None;
                    r.last_error = event.error.clone();
                }
            }
            LifecycleKind::RetryScheduled => {
                if let Some(r) = state.running.get_mut(id) {
                    r.state = RunState::Retrying;
                    r.retry_delay_ms = event.retry_delay_ms;
                }
            }
            LifecycleKind::Finished => {
                state.running.remove(id);
                if let Some(result) = &event.result {
                    self.hold(state, Arc::new((**result).clone()));
                }
            }
        }
    }

    /// Keeps a finished execution, letting the oldest go beyond the limits.
    fn hold(&self, state: &mut State, result: Arc<ExecutionResult>) {
        state.totals.executions += 1;
        if result.success {
            state.totals.succeeded += 1;
        } else {
            state.totals.failed += 1;
        }
        state.totals.retries += u64::from(result.retries);
        let at = epoch_ms(result.finished_at);
        state
            .durations
            .add(result.resource_usage.wall_time_seconds, at);
        state.memory.add(result.resource_usage.peak_memory_mb, at);
        state.output_bytes += output_bytes(&result);
        state
            .by_id
            .insert(result.execution_id.clone(), result.clone());
        state.recent.push_back(result);
        while state.recent.len() > self.limits.recent
            || (state.output_bytes > self.limits.recent_output_bytes && state.recent.len() > 1)
        {
            let Some(old) = state.recent.pop_front() else {
                break;
            };
            state.output_bytes -= output_bytes(&old);
            state.by_id.remove(&old.execution_id);
            state.evicted += 1;
        }
    }
}

/// The longest report period, in minutes (a year).
pub const MAX_PERIOD_MINUTES: u64 = 366 * 24 * 60;

/// The most intervals one [`Monitor::timeseries`] answer has.
pub const MAX_BUCKETS: usize = 720;

/// What [`Monitor::timeseries`] says: equal intervals, oldest first, the last ending at
/// `generated_at`.
#[derive(Debug, Clone, Serialize)]
pub struct Timeseries {
    pub period_minutes: u64,
    pub step_seconds: f64,
    #[serde(with = "timestamp")]
    pub generated_at: DateTime<Utc>,
    /// Whether memory still holds every execution of the whole span.
    pub complete: bool,
    pub buckets: Vec<Bucket>,
}

/// One interval of a [`Timeseries`]: executions that finished in it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bucket {
    #[serde(with = "timestamp")]
    pub start: DateTime<Utc>,
    pub executions: u64,
    pub failures: u64,
    /// Percent of the interval's executions that failed; absent when none ran.
    pub error_rate: Option<f64>,
    pub duration_p50: Option<f64>,
    pub duration_p95: Option<f64>,
}

/// The nearest-rank `q` quantile of sorted values.
fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// What [`Monitor::report`] says.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub period_minutes: u64,
    #[serde(with = "timestamp")]
    pub generated_at: DateTime<Utc>,
    pub running: usize,
    pub executions_per_minute: f64,
    pub since_start: Totals,
    pub window: WindowStats,
    pub percentiles: Percentiles,
}

/// Percentiles by window (`1m`, `5m`, `60m`, `start`).
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub duration_seconds: std::collections::BTreeMap<&'static str, Quantiles>,
    pub peak_memory_mb: std::collections::BTreeMap<&'static str, Quantiles>,
}

/// What a sketch says of one window.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Quantiles {
    pub count: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl Quantiles {
    fn of(s: &DdSketch) -> Quantiles {
        Quantiles {
            count: s.count(),
            p50: s.quantile(0.50),
            p90: s.quantile(0.90),
            p95: s.quantile(0.95),
            p99: s.quantile(0.99),
            max: s.quantile(1.0),
        }
    }
}

/// Milliseconds since the epoch (0 before it).
fn epoch_ms(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

fn output_bytes(r: &ExecutionResult) -> usize {
    r.stdout.len() + r.stderr.len()
}

/// A result as the feed and snapshots carry it: each output cut to its last
/// [`FEED_OUTPUT_BYTES`] (at a character boundary), marked truncated.
pub fn feed_copy(r: &ExecutionResult) -> ExecutionResult {
    let cut = |text: &str| -> Option<String> {
        if text.len() <= FEED_OUTPUT_BYTES {
            return None;
        }
        let mut start = text.len() - FEED_OUTPUT_BYTES;
        while !text.is_char_boundary(start) {
            start += 1;
        }
        Some(text[start..].to_string())
    };
    let mut copy = r.clone();
    if let Some(tail) = cut(&r.stdout) {
        copy.stdout = tail;
        copy.stdout_truncated = true;
    }
    if let Some(tail) = cut(&r.stderr) {
        copy.stderr = tail;
        copy.stderr_truncated = true;
    }
    copy
}

/// The feed message of one event.
#[derive(Serialize)]
struct FeedMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    event: &'a ExecutionEvent,
}

#[derive(Serialize)]
struct AlertMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    alert: &'a Alert,
}

fn sorted_alerts(alerts: &BTreeMap<String, Alert>) -> Vec<Alert> {
    let mut list: Vec<Alert> = alerts.values().cloned().collect();
    list.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.starts_at.cmp(&b.starts_at))
            .then(a.fingerprint.cmp(&b.fingerprint))
    });
    list
}

impl EventSink for Monitor {
    fn emit(&self, event: &ExecutionEvent) {
        let mut state = self.state.lock().unwrap();
        self.record(&mut state, event);
        state.seq += 1;
        let seq = state.seq;
        // Nobody subscribed (a replay, a dashboard's own monitor): no message to make. A
        // subscriber counted here cannot miss this event, as it subscribes under the lock.
        if self.feed.receiver_count() == 0 {
            return;
        }
        let cut;
        let event = match &event.result {
            Some(r) if r.stdout.len() > FEED_OUTPUT_BYTES || r.stderr.len() > FEED_OUTPUT_BYTES => {
                let mut copy = event.clone();
                copy.result = Some(Box::new(feed_copy(r)));
                cut = copy;
                &cut
            }
            _ => event,
        };
        let json = serde_json::to_string(&FeedMessage {
            kind: "event",
            seq,
            event,
        })
        .unwrap_or_default();
        // No receiver is fine: nobody watches.
        let _ = self.feed.send(Arc::new(FeedItem {
            seq,
            kind: Some(event.kind),
            script_id: event.script_id.clone(),
            specialist: event.specialist.clone(),
            json,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::query::Filter;

    fn event(kind: LifecycleKind, id: &str) -> ExecutionEvent {
        let mut r = ExecutionResult::new(id, "hello", Utc::now());
        r.success = id.ends_with('0');
        let mut e = ExecutionEvent::finished(r);
        e.kind = kind;
        if kind != LifecycleKind::Finished {
            e.result = None;
        }
        e
    }

    #[test]
    fn running_then_finished_then_evicted_within_limits() {
        let m = Monitor::new(Limits {
            recent: 3,
            recent_output_bytes: 1 << 20,
            feed: 16,
        });
        m.emit(&event(LifecycleKind::Queued, "a0"));
        assert!(matches!(m.get("a0"), Some(Known::Running(r)) if r.state == RunState::Queued));
        let mut started = event(LifecycleKind::Started, "a0");
        started.pid = Some(42);
        started.attempt = 1;
        m.emit(&started);
        assert!(matches!(m.get("a0"), Some(Known::Running(r)) if r.pid == Some(42)));
        for id in ["a0", "b1", "c0", "d1"] {
            m.emit(&event(LifecycleKind::Finished, id));
        }
        assert!(m.get("a0").is_none(), "the oldest was let go");
        assert!(matches!(m.get("d1"), Some(Known::Finished(_))));
        let all = m.recent(&Matcher::new(Filter::default()), 10);
        let ids: Vec<&str> = all.iter().map(|r| r.execution_id.as_str()).collect();
        assert_eq!(ids, ["d1", "c0", "b1"], "newest first");
        let failed = m.recent(
            &Matcher::new(Filter {
                failed: true,
                ..Filter::default()
            }),
            10,
        );
        assert_eq!(failed.len(), 2);
        let t = m.totals();
        assert_eq!((t.executions, t.succeeded, t.failed), (4, 2, 2));
        let stats = m.stats(None, 5);
        assert_eq!(stats.overall.count, 3);
        assert!(!stats.complete, "one execution was let go");
        assert_eq!(stats.top_scripts[0].key, "hello");
    }

    #[test]
    fn a_result_given_away_is_held_like_an_event_and_fed_when_watched() {
        let m = Monitor::new(Limits::default());
        m.emit(&event(LifecycleKind::Queued, "a0"));
        let given = |id: &str| {
            event(LifecycleKind::Finished, id)
                .result
                .map(|r| *r)
                .unwrap()
        };
        m.finished(given("a0"));
        assert!(m.running().is_empty(), "no longer running");
        assert!(matches!(m.get("a0"), Some(Known::Finished(_))));
        let (snapshot, mut feed) = m.subscribe(10);
        assert_eq!(snapshot.seq, 2, "numbered like the events");
        m.finished(given("b1"));
        let item = feed.try_recv().expect("a subscriber is sent it");
        assert_eq!((item.seq, item.kind), (3, Some(LifecycleKind::Finished)));
        assert_eq!(m.totals().executions, 2);
    }

    /// The sketches agree with the exact figures within their 1 % guarantee, per window.
    #[test]
    fn percentiles_by_window_come_from_the_sketches() {
        let m = Monitor::new(Limits::default());
        let now = Utc::now();
        for i in 1..=100u32 {
            let mut e = event(LifecycleKind::Finished, &format!("x{i}"));
            let r = e.result.as_mut().unwrap();
            r.resource_usage.wall_time_seconds = f64::from(i) / 10.0;
            // Ten minutes ago for the first half: out of the 1- and 5-minute windows.
            r.finished_at = if i <= 50 {
                now - chrono::Duration::minutes(10)
            } else {
                now
            };
            m.emit(&e);
        }
        let p = m.percentiles(now);
        let start = p.duration_seconds["start"];
        assert_eq!(start.count, 100);
        let near = |got: Option<f64>, want: f64| {
            let got = got.unwrap();
            assert!((got - want).abs() <= want * 0.01 + 1e-9, "{got} vs {want}");
        };
        near(start.p50, 5.0);
        near(start.p99, 9.9);
        near(start.max, 10.0);
        let recent = p.duration_seconds["5m"];
        assert_eq!(recent.count, 50);
        near(recent.p50, 7.5);
        assert_eq!(p.duration_seconds["60m"].count, 100);
    }

    #[test]
    fn timeseries_counts_each_interval_and_filters_apply() {
        let m = Monitor::new(Limits::default());
        let now = Utc::now();
        m.backdate(now - chrono::Duration::minutes(30));
        // Minute k before now: k+1 executions of 0.1 s .. , every other one failed
        // (ids ending in 0 succeed), and one of another script each minute.
        for k in 0..5i64 {
            for j in 0..=k {
                let mut e = event(LifecycleKind::Finished, &format!("m{k}-{j}{}", j % 2));
                let r = e.result.as_mut().unwrap();
                r.finished_at = now - chrono::Duration::seconds(60 * k + 30);
                r.resource_usage.wall_time_seconds = 0.1 * (j + 1) as f64;
                m.emit(&e);
            }
            let mut other = event(LifecycleKind::Finished, &format!("o{k}0"));
            let r = other.result.as_mut().unwrap();
            r.script_id = "other".into();
            r.finished_at = now - chrono::Duration::seconds(60 * k + 30);
            m.emit(&other);
        }
        let hello = Matcher::new(Filter {
            script: Some("hello".into()),
            ..Filter::default()
        });
        let t = m.timeseries(10, 10, now, Some(&hello));
        assert_eq!(t.step_seconds, 60.0);
        assert_eq!(t.buckets.len(), 10);
        assert!(t.complete);
        assert_eq!(
            t.buckets.last().unwrap().start,
            now - chrono::Duration::minutes(1)
        );
        let counts: Vec<u64> = t.buckets.iter().map(|b| b.executions).collect();
        assert_eq!(counts, [0, 0, 0, 0, 0, 5, 4, 3, 2, 1], "oldest first");
        let b = &t.buckets[6];
        assert_eq!(b.failures, 2, "j = 1 and 3 failed");
        assert_eq!(b.error_rate, Some(50.0));
        assert_eq!(b.duration_p50.map(|d| (d * 10.0).round()), Some(2.0));
        assert_eq!(b.duration_p95.map(|d| (d * 10.0).round()), Some(4.0));
        assert_eq!(t.buckets[0].error_rate, None);
        let all = m.timeseries(10, 10, now, None);
        assert_eq!(all.buckets[9].executions, 2, "with the other script");
        // Since start: the span from the backdated start, in whole seconds a bucket.
        let since_start = m.timeseries(0, 30, now, None);
        assert_eq!(since_start.step_seconds, 60.0);
        // A filtered report counts only what the filter takes.
        let report = m.report_matching(60, 5, now, Some(&hello));
        assert_eq!(report.window.overall.count, 15);
        assert_eq!(report.window.top_scripts.len(), 1);
        assert_eq!(m.report(60, 5, now).window.overall.count, 20);
    }

    #[test]
    fn outputs_are_bounded_in_memory_and_cut_in_the_feed() {
        let m = Monitor::new(Limits {
            recent: 100,
            recent_output_bytes: 3 * 1024 * 1024,
            feed: 16,
        });
        let (_, mut rx) = m.subscribe(10);
        for i in 0..5 {
            let mut e = event(LifecycleKind::Finished, &format!("x{i}"));
            e.result.as_mut().unwrap().stdout = "é".repeat(512 * 1024);
            m.emit(&e);
        }
        let item = rx.try_recv().unwrap();
        assert_eq!(item.seq, 1);
        assert!(
            item.json.len() < 2 * FEED_OUTPUT_BYTES + 4096,
            "{}",
            item.json.len()
        );
        let v: serde_json::Value = serde_json::from_str(&item.json).unwrap();
        assert_eq!(v["event"]["result"]["stdout_truncated"], true);
        // 1 MiB each: three fit in 3 MiB.
        assert_eq!(m.recent(&Matcher::new(Filter::default()), 10).len(), 3);
        assert_eq!(m.totals().executions, 5);
    }

    #[test]
    fn a_snapshot_and_the_feed_after_it_miss_nothing() {
        let m = Monitor::new(Limits::default());
        m.emit(&event(LifecycleKind::Queued, "a0"));
        let (snapshot, mut rx) = m.subscribe(10);
        assert_eq!(snapshot.seq, 1);
        assert_eq!(snapshot.running.len(), 1);
        m.emit(&event(LifecycleKind::Finished, "a0"));
        let next = rx.try_recv().unwrap();
        assert_eq!(next.seq, 2);
        assert_eq!(next.kind, Some(LifecycleKind::Finished));
    }

    #[test]
    fn alert_changes_are_numbered_with_the_events_and_in_the_snapshot() {
        use crate::model::{Alert, AlertStatus, Severity};
        let m = Monitor::new(Limits::default());
        let (_, mut rx) = m.subscribe(10);
        m.emit(&event(LifecycleKind::Queued, "a0"));
        let mut a = Alert::firing(
            Utc::now(),
            "error_rate_high",
            Severity::Warning,
            "m",
            15.0,
            10.0,
        );
        m.alerts_changed(std::slice::from_ref(&a));
        assert_eq!(m.subscribe(10).0.alerts, [a.clone()]);
        let (_, item) = (rx.try_recv().unwrap(), rx.try_recv().unwrap());
        assert_eq!((item.seq, item.kind), (2, None));
        let v: serde_json::Value = serde_json::from_str(&item.json).unwrap();
        assert_eq!(
            (v["type"].as_str(), v["alert"]["type"].as_str()),
            (Some("alert"), Some("error_rate_high"))
        );
        a.status = AlertStatus::Resolved;
        m.alerts_changed(&[a]);
        assert!(m.alerts().is_empty());
        assert_eq!(rx.try_recv().unwrap().seq, 3);
    }
}
