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
//!
//! Modules, one job each: this one holds the state and the [`Monitor`]'s methods (the
//! running set and the ring of recent executions kept within the limits); `running`
//! (where an unfinished execution is), `report` (the figures computed from what is held),
//! `feed` (the live feed's wire format and snapshot), `subscription` (which feed items a
//! live client takes).

mod feed;
mod report;
mod running;
mod subscription;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use metaclaude_sketch::Windowed;
use tokio::sync::broadcast;

use self::feed::{alert_item, event_item};
use self::report::{epoch_ms, period_start, Intervals};
use crate::executor::EventSink;
use crate::logs::query::{record_of, Matcher};
use crate::logs::stats::{Acc, GroupBy, StatsAcc};
use crate::model::{Alert, AlertStatus, ExecutionEvent, ExecutionResult, LifecycleKind};
use metaclaude_formats::log_summary::Figures;

pub use self::feed::{feed_copy, FeedItem, Snapshot, FEED_OUTPUT_BYTES};
pub use self::report::{
    Bucket, Percentiles, Quantiles, Report, Timeseries, Totals, WindowStats, MAX_BUCKETS,
    MAX_PERIOD_MINUTES,
};
pub use self::running::{RunState, RunningExecution};
pub use self::subscription::{
    parse_client_message, Subscription, SubscriptionError, SubscriptionQuery,
};

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

/// An execution the monitor knows, running or finished.
#[derive(Debug, Clone)]
pub enum Known {
    /// Still running: where it is, from its events so far.
    Running(Box<RunningExecution>),
    /// Finished and still held in memory: its whole result.
    Finished(Arc<ExecutionResult>),
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
    /// Executions known only by their figures (a replay's log files counted from their
    /// summaries): in the totals and the since-start sketches, and here for the window's
    /// statistics; never held.
    absorbed: Option<Absorbed>,
}

/// The window statistics of executions counted from summaries or read from the log.
#[derive(Debug, Clone, Default)]
pub(crate) struct Absorbed {
    pub(crate) overall: Acc,
    pub(crate) scripts: StatsAcc,
    pub(crate) specialists: StatsAcc,
    /// The earliest finish time among them.
    pub(crate) oldest: Option<DateTime<Utc>>,
}

impl Absorbed {
    /// Takes in `other`'s executions.
    pub(crate) fn merge(&mut self, other: Absorbed) {
        self.overall.merge(other.overall);
        self.scripts.merge(other.scripts);
        self.specialists.merge(other.specialists);
        self.oldest = match (self.oldest, other.oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// The executions of a report's window that memory does not hold, counted from the log:
/// those that finished before `until` (where memory's account began: the host's start, or
/// its oldest held execution once older ones were let go), by their lines or, for whole
/// rotated files, their summaries. See `replay::earlier`.
#[derive(Debug, Clone)]
pub struct Earlier {
    pub(crate) figures: Absorbed,
    /// Memory's account is taken from here on; the log's up to here.
    pub until: DateTime<Utc>,
}

/// A log file's executions known by their summary (`metaclaude_formats::log_summary`),
/// for [`Monitor::absorb`].
#[derive(Debug, Clone, Copy)]
pub struct Summarised<'a> {
    /// The figures of all of them.
    pub overall: &'a Figures,
    /// By script.
    pub scripts: &'a BTreeMap<String, Figures>,
    /// By specialist.
    pub specialists: &'a BTreeMap<String, Figures>,
    /// The earliest and latest finish time.
    pub finished: (DateTime<Utc>, DateTime<Utc>),
    /// The earliest start, if known.
    pub first_started: Option<DateTime<Utc>>,
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
    /// An empty monitor keeping at most what `limits` allows, started now.
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
                absorbed: None,
                evicted: 0,
                alerts: BTreeMap::new(),
            }),
            feed,
        }
    }

    /// When the host started (or, for a replay, its log's first execution), UTC.
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
        running.sort_by(|a, b| a.identity.execution_id.cmp(&b.identity.execution_id));
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
            // No receiver is fine: nobody watches.
            let _ = self.feed.send(Arc::new(alert_item(state.seq, a)));
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

    /// Counts in executions known only by their figures, as if each had been emitted long
    /// before the last hour (a replay of a log file's summary): the totals, the since-start
    /// percentiles, the window statistics (the held executions' and theirs together,
    /// percentiles then within the sketches' 1 %) and the start of the clock. Never held,
    /// never in the 1-, 5- or 60-minute windows.
    pub fn absorb(&self, s: Summarised<'_>) {
        if let Some(started) = s.first_started {
            self.backdate(started);
        }
        let mut state = self.state.lock().unwrap();
        let f = s.overall;
        let t = &mut state.totals;
        t.executions = t.executions.saturating_add(f.count);
        t.succeeded = t.succeeded.saturating_add(f.successes);
        t.failed = t.failed.saturating_add(f.count - f.successes);
        t.retries = t.retries.saturating_add(f.retries);
        let (first, last) = (epoch_ms(s.finished.0), epoch_ms(s.finished.1));
        // A summary's sketches have the default config (checked when read), as these.
        let _ = state.durations.add_past(&f.duration_seconds, first, last);
        let _ = state.memory.add_past(&f.peak_memory_mb, first, last);
        let absorbed = state.absorbed.get_or_insert_with(Absorbed::default);
        absorbed.overall.add_figures(f);
        fn groups(g: &BTreeMap<String, Figures>) -> impl Iterator<Item = (&str, &Figures)> {
            g.iter().map(|(k, f)| (k.as_str(), f))
        }
        absorbed
            .scripts
            .add_summary([], groups(s.scripts), Some(GroupBy::Script));
        absorbed
            .specialists
            .add_summary([], groups(s.specialists), Some(GroupBy::Specialist));
        absorbed.oldest = Some(
            absorbed
                .oldest
                .map_or(s.finished.0, |o| o.min(s.finished.0)),
        );
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
            .filter(|r| everything || matcher.matches(&record_of(r)))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Duration and peak-memory percentiles over the last 1, 5 and 60 minutes and since
    /// start, from the sketches (at most 1 % relative error; see `metaclaude_sketch`).
    pub fn percentiles(&self, now: DateTime<Utc>) -> Percentiles {
        let state = self.state.lock().unwrap();
        Percentiles::of(&state.durations, &state.memory, now)
    }

    /// The executions running now, oldest first.
    pub fn running(&self) -> Vec<RunningExecution> {
        self.snapshot(0).running
    }

    /// Counts since start.
    pub fn totals(&self) -> Totals {
        self.state.lock().unwrap().totals
    }

    /// Statistics over the held executions that finished at or after `since` (all of them
    /// when `None`), with the `top` scripts and specialists by count.
    pub fn stats(&self, since: Option<DateTime<Utc>>, top: usize) -> WindowStats {
        self.stats_matching(since, top, None, None)
    }

    /// Where memory's account of the executions begins: the oldest held execution once
    /// older ones were let go, else the host's start. A window reaching further back has
    /// its older part in the log only (see [`Earlier`]).
    pub fn memory_covers_from(&self) -> DateTime<Utc> {
        let oldest_held = {
            let state = self.state.lock().unwrap();
            (state.evicted > 0).then(|| state.recent.front().map(|r| r.finished_at))
        };
        match oldest_held {
            Some(Some(oldest)) => oldest,
            Some(None) => Utc::now(),
            None => self.started_at(),
        }
    }

    /// [`Monitor::stats`] of the executions `matcher` takes (all of them when `None`), with
    /// the part of the window memory does not hold counted from the log (`earlier`, made
    /// for the same `since` and `matcher`): the held executions from its `until` on.
    pub fn stats_matching(
        &self,
        since: Option<DateTime<Utc>>,
        top: usize,
        matcher: Option<&Matcher>,
        earlier: Option<&Earlier>,
    ) -> WindowStats {
        let from = match (since, earlier) {
            (Some(s), Some(e)) => Some(s.max(e.until)),
            (None, Some(e)) => Some(e.until),
            (s, None) => s,
        };
        let held: Vec<Arc<ExecutionResult>> = {
            let state = self.state.lock().unwrap();
            state
                .recent
                .iter()
                .filter(|r| from.is_none_or(|s| r.finished_at >= s))
                .cloned()
                .collect()
        };
        let (oldest_held, evicted, absorbed) = {
            let state = self.state.lock().unwrap();
            // Figures cannot be filtered, nor cut at a time inside them.
            let absorbed = state.absorbed.clone().filter(|a| {
                matcher.is_none() && since.is_none_or(|s| a.oldest.is_some_and(|o| o >= s))
            });
            (
                state.recent.front().map(|r| r.finished_at),
                state.evicted,
                absorbed,
            )
        };
        // Memory holds every execution from `t` on.
        let covers = |t: Option<DateTime<Utc>>| {
            evicted == 0 || matches!((t, oldest_held), (Some(t), Some(o)) if o <= t)
        };
        let complete = covers(since) || earlier.is_some_and(|e| covers(Some(e.until)));
        let absorbed = match (absorbed, earlier) {
            (a, None) => a,
            (None, Some(e)) => Some(e.figures.clone()),
            (Some(mut a), Some(e)) => {
                a.merge(e.figures.clone());
                Some(a)
            }
        };
        WindowStats::of(&held, since, top, matcher, oldest_held, complete, absorbed)
    }

    /// The report the seed's `--report --period N` prints, the stats API serves and the
    /// dashboards show: the last `period_minutes` (0: since start) of what memory holds,
    /// with the `top` scripts and specialists, the sketches' percentiles by window, the
    /// executions running and the totals since start.
    pub fn report(&self, period_minutes: u64, top: usize, now: DateTime<Utc>) -> Report {
        self.report_matching(period_minutes, top, now, None, None)
    }

    /// [`Monitor::report`] of the executions `matcher` takes (the dashboards' filters),
    /// with the part of the window memory does not hold from the log (`earlier`, see
    /// [`Monitor::stats_matching`]). The window's figures are of those alone;
    /// `percentiles` and `since_start` stay the whole host's (the sketches are not kept per
    /// filter).
    pub fn report_matching(
        &self,
        period_minutes: u64,
        top: usize,
        now: DateTime<Utc>,
        matcher: Option<&Matcher>,
        earlier: Option<&Earlier>,
    ) -> Report {
        let since = period_start(period_minutes, now);
        let window = self.stats_matching(since, top, matcher, earlier);
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
        let start = period_start(period_minutes, now).unwrap_or_else(|| self.started_at().min(now));
        let mut intervals = Intervals::new(start, now, buckets);
        let state = self.state.lock().unwrap();
        for r in state.recent.iter().rev() {
            if !intervals.covers(r.finished_at) {
                break;
            }
            if matcher.is_some_and(|m| !m.matches(&record_of(r))) {
                continue;
            }
            intervals.add(r);
        }
        let oldest_held = state.recent.front().map(|r| r.finished_at);
        intervals.finish(period_minutes, now, oldest_held, state.evicted)
    }

    fn record(&self, state: &mut State, event: &ExecutionEvent) {
        let id = &event.identity.execution_id;
        match event.kind {
            LifecycleKind::Queued => {
                state
                    .running
                    .insert(id.clone(), RunningExecution::queued(event));
            }
            LifecycleKind::Started => {
                if let Some(r) = state.running.get_mut(id) {
                    r.started(event);
                }
            }
            LifecycleKind::AttemptFailed => {
                if let Some(r) = state.running.get_mut(id) {
                    r.attempt_failed(event);
                }
            }
            LifecycleKind::RetryScheduled => {
                if let Some(r) = state.running.get_mut(id) {
                    r.retry_scheduled(event);
                }
            }
            LifecycleKind::Finished => {
                state.running.remove(id);
                if let Some(result) = &event.result {
                    self.hold(state, Arc::clone(result));
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

fn output_bytes(r: &ExecutionResult) -> usize {
    r.stdout.len() + r.stderr.len()
}

fn sorted_alerts(alerts: &BTreeMap<String, Alert>) -> Vec<Alert> {
    let mut list: Vec<Alert> = alerts.values().cloned().collect();
    list.sort_by(Alert::most_severe_first);
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
        // No receiver is fine: nobody watches.
        let _ = self.feed.send(Arc::new(event_item(seq, event)));
    }
}
