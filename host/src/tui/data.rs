//! What the dashboard knows: the executions (a [`Monitor`] fed with the source's events,
//! the same code a server keeps them with), the figures (the server's `/api/v1/stats`, or
//! the monitor's own report when following the log), plugins, alerts, throughput, and
//! where it all comes from. A frame is drawn from a [`View`], a copy taken from it (and
//! kept while paused).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use metaclaude::executor::EventSink;
use metaclaude::logs::query::{Filter, Matcher};
use metaclaude::model::{Alert, ExecutionEvent, ExecutionResult, LifecycleKind};
use metaclaude::monitor::{Limits, Monitor, RunningExecution};
use serde_json::Value;

use super::scripts::{LastRun, ScriptsView, Watched};

/// What a source tells the dashboard.
#[derive(Debug)]
pub enum Update {
    Connection(Connection),
    /// A whole new picture (a snapshot): what was held before is replaced.
    Reset {
        /// The running executions as the events that brought them where they are.
        running: Vec<ExecutionEvent>,
        /// Finished, newest first.
        recent: Vec<ExecutionResult>,
        alerts: Vec<Alert>,
        stats: Option<Value>,
        plugins: Option<Vec<Value>>,
    },
    Event(Box<ExecutionEvent>),
    Finished(Box<ExecutionResult>),
    Alert(Box<Alert>),
    Stats(Value),
    Plugins(Vec<Value>),
    /// The scripts the server watches (with an `expect` block), its silences and schedules.
    Watched(Watched),
    /// A script's newest execution, asked of the server (one that finished before the feed
    /// began): for the Scripts view only.
    LastRun(Box<ExecutionResult>),
    /// The log was read to its end once.
    Loaded,
}

/// Finished executions the dashboard holds (the newest).
pub const KEEP_RECENT: usize = 2000;
/// Output bytes held over all of them (the feed sends at most 8 KiB of each stream).
pub const KEEP_OUTPUT_BYTES: usize = 16 << 20;
/// Seconds of throughput the sparkline shows.
pub const THROUGHPUT_SECONDS: usize = 60;
/// Minutes the figures cover.
pub const PERIOD_MINUTES: u64 = 60;
/// How often the figures are computed from the executions seen (the log).
const STATS_EVERY: Duration = Duration::from_secs(1);
/// Scripts the figures rank.
pub const TOP: usize = 10;
/// Scripts whose last run is kept beyond the watched ones (a flood of unknown script ids
/// stays bounded).
const KEEP_LAST_RUNS: usize = 1000;

/// Where the data comes from and how that is going.
#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    /// Trying to reach the server (the `attempt`th time).
    Connecting { url: String, attempt: u32 },
    /// The server's feed is live.
    Live { url: String },
    /// The connection was lost or refused; the next try is after a backoff.
    Disconnected {
        url: String,
        error: String,
        retry_in: Duration,
    },
    /// Following the execution log.
    Following { dir: String },
    /// The log directory cannot be read (yet).
    LogUnreadable { dir: String, error: String },
}

impl Connection {
    /// One line for people: the source and its state.
    pub fn describe(&self) -> String {
        match self {
            Connection::Connecting { url, attempt } if *attempt <= 1 => {
                format!("server {url}: connecting")
            }
            Connection::Connecting { url, attempt } => {
                format!("server {url}: connecting (attempt {attempt})")
            }
            Connection::Live { url } => format!("server {url}: live"),
            Connection::Disconnected {
                url,
                error,
                retry_in,
            } => format!(
                "server {url}: disconnected, retry in {:.1}s ({})",
                retry_in.as_secs_f64(),
                super::safe(error)
            ),
            Connection::Following { dir } => format!("log {}: following", super::safe(dir)),
            Connection::LogUnreadable { dir, error } => {
                format!("log {}: {}", super::safe(dir), super::safe(error))
            }
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self, Connection::Live { .. } | Connection::Following { .. })
    }
}

/// Finished executions per second over the last [`THROUGHPUT_SECONDS`], by finish time.
#[derive(Debug, Default, Clone)]
pub struct Throughput {
    /// (second since the epoch, executions finished in it), oldest first.
    seconds: VecDeque<(i64, u64)>,
}

impl Throughput {
    pub fn add(&mut self, finished_at: DateTime<Utc>) {
        let second = finished_at.timestamp();
        match self.seconds.iter_mut().rev().find(|(s, _)| *s == second) {
            Some((_, n)) => *n += 1,
            None => {
                let at = self.seconds.partition_point(|(s, _)| *s < second);
                self.seconds.insert(at, (second, 1));
            }
        }
        while self.seconds.len() > THROUGHPUT_SECONDS * 2 {
            self.seconds.pop_front();
        }
    }

    /// Counts for each of the last [`THROUGHPUT_SECONDS`] seconds up to `now`, oldest first.
    pub fn last_minute(&self, now: DateTime<Utc>) -> Vec<u64> {
        let end = now.timestamp();
        let start = end - THROUGHPUT_SECONDS as i64 + 1;
        let mut out = vec![0; THROUGHPUT_SECONDS];
        for (s, n) in &self.seconds {
            if (start..=end).contains(s) {
                out[(s - start) as usize] = *n;
            }
        }
        out
    }
}

/// Everything known, updated by the source.
pub struct Data {
    monitor: Monitor,
    /// The figures: the server's stats, or (`own_stats`) the monitor's report.
    stats: Option<Value>,
    own_stats: bool,
    /// When `stats` was last computed here (`own_stats`): at most once a second.
    stats_at: Option<Instant>,
    plugins: Option<Vec<Value>>,
    /// What the server said of the scripts it watches; `None` before it said it.
    watched: Option<Watched>,
    /// Each script's newest finished execution seen.
    last_runs: HashMap<String, LastRun>,
    throughput: Throughput,
    pub connection: Connection,
    /// When the source last said anything new.
    pub last_data: Option<Instant>,
    /// The source's first whole picture came (a snapshot, or the log read to its end).
    pub loaded: bool,
    /// Something changed since the last [`Data::view`].
    pub changed: bool,
}

fn new_monitor() -> Monitor {
    Monitor::new(Limits {
        recent: KEEP_RECENT,
        recent_output_bytes: KEEP_OUTPUT_BYTES,
        feed: 1,
    })
}

impl Data {
    /// `own_stats`: the figures are computed here from the executions seen (the log),
    /// rather than sent by a server.
    pub fn new(connection: Connection, own_stats: bool) -> Data {
        Data {
            monitor: new_monitor(),
            stats: None,
            own_stats,
            stats_at: None,
            plugins: None,
            watched: None,
            last_runs: HashMap::new(),
            throughput: Throughput::default(),
            connection,
            last_data: None,
            loaded: false,
            changed: true,
        }
    }

    /// Takes in one update from the source.
    pub fn apply(&mut self, update: Update) {
        if let Update::Connection(c) = update {
            if self.connection != c {
                self.connection = c;
                self.changed = true;
            }
            return;
        }
        self.changed = true;
        match update {
            Update::Connection(_) => {}
            Update::Reset {
                running,
                recent,
                alerts,
                stats,
                plugins,
            } => {
                // A new start (connect, reconnect, lagged): what was held is replaced.
                self.monitor = new_monitor();
                self.stats_at = None;
                self.throughput = Throughput::default();
                for r in recent.into_iter().rev() {
                    self.finished(r);
                }
                for e in &running {
                    self.monitor.emit(e);
                }
                self.monitor.alerts_changed(&alerts);
                if stats.is_some() {
                    self.stats = stats;
                }
                if plugins.is_some() {
                    self.plugins = plugins;
                }
                self.loaded = true;
            }
            Update::Event(e) => match e.result {
                Some(r) if e.kind == LifecycleKind::Finished => {
                    self.finished(Arc::unwrap_or_clone(r))
                }
                _ => self.monitor.emit(&e),
            },
            Update::Finished(r) => self.finished(*r),
            Update::Alert(a) => self.monitor.alerts_changed(&[*a]),
            Update::Stats(v) => self.stats = Some(v),
            Update::Plugins(p) => self.plugins = Some(p),
            Update::Watched(w) => self.watched = Some(w),
            Update::LastRun(r) => self.note_last_run(&r),
            Update::Loaded => self.loaded = true,
        }
        self.last_data = Some(Instant::now());
    }

    /// The first whole picture came, with (from a server) the scripts it watches.
    pub fn complete(&self) -> bool {
        self.loaded && (self.own_stats || self.watched.is_some())
    }

    /// The execution `id`, running or held.
    pub fn get(&self, id: &str) -> Option<metaclaude::monitor::Known> {
        self.monitor.get(id)
    }

    /// Keeps `r` as its script's last run if it is the newest seen.
    fn note_last_run(&mut self, r: &ExecutionResult) {
        let known = self.last_runs.contains_key(&r.script_id)
            || self.last_runs.len() < KEEP_LAST_RUNS
            || self.watched.as_ref().is_some_and(|w| w.has(&r.script_id));
        let newer = self
            .last_runs
            .get(&r.script_id)
            .is_none_or(|l| l.finished_at <= r.finished_at);
        if known && newer {
            self.last_runs.insert(r.script_id.clone(), LastRun::of(r));
        }
    }

    fn finished(&mut self, r: ExecutionResult) {
        self.note_last_run(&r);
        self.monitor.backdate(r.started_at);
        self.throughput.add(r.finished_at);
        self.monitor.finished(r);
    }

    /// A copy of what a frame shows, at `now`.
    pub fn view(&mut self, now: DateTime<Utc>) -> View {
        self.changed = false;
        if self.own_stats && self.stats_at.is_none_or(|t| t.elapsed() >= STATS_EVERY) {
            self.stats = serde_json::to_value(self.monitor.report(PERIOD_MINUTES, TOP, now)).ok();
            self.stats_at = Some(Instant::now());
        }
        let stats = self.stats.clone();
        View {
            at: now,
            connection: self.connection.clone(),
            data_age: self.last_data.map(|t| t.elapsed()),
            running: self.monitor.running(),
            recent: self
                .monitor
                .recent(&Matcher::new(Filter::default()), KEEP_RECENT),
            stats,
            plugins: self.plugins.clone(),
            alerts: self.monitor.alerts(),
            throughput: self.throughput.last_minute(now),
            scripts: match (&self.watched, self.own_stats) {
                (_, true) => ScriptsView::NeedsServer,
                (None, false) => ScriptsView::Waiting,
                (Some(w), false) => super::scripts::view(w, &self.last_runs),
            },
        }
    }
}

/// What one frame (or one text block) shows.
#[derive(Debug, Clone)]
pub struct View {
    pub at: DateTime<Utc>,
    pub connection: Connection,
    /// Since the source last sent anything.
    pub data_age: Option<Duration>,
    /// Running now, oldest first.
    pub running: Vec<RunningExecution>,
    /// Finished, newest first.
    pub recent: Vec<Arc<ExecutionResult>>,
    /// The report (`GET /api/v1/stats`'s shape) over the last [`PERIOD_MINUTES`].
    pub stats: Option<Value>,
    /// `None`: not known (the log does not say).
    pub plugins: Option<Vec<Value>>,
    pub alerts: Vec<Alert>,
    /// Executions finished per second, oldest first.
    pub throughput: Vec<u64>,
    /// The scripts with expectations, their states and the silences (a server's).
    pub scripts: ScriptsView,
}

impl View {
    /// A view of nothing yet.
    #[cfg(test)]
    pub fn empty(connection: Connection, at: DateTime<Utc>) -> View {
        View {
            at,
            connection,
            data_age: None,
            running: Vec::new(),
            recent: Vec::new(),
            stats: None,
            plugins: None,
            alerts: Vec::new(),
            throughput: vec![0; THROUGHPUT_SECONDS],
            scripts: ScriptsView::Waiting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaclaude::model::ExecutionEvent;

    fn result(id: &str, script: &str, success: bool, at: DateTime<Utc>) -> ExecutionResult {
        let mut r = ExecutionResult::new(id, script, at);
        r.success = success;
        r.finished_at = at;
        r
    }

    #[test]
    fn a_reset_replaces_what_was_held_and_events_update_it() {
        let now = Utc::now();
        let mut data = Data::new(Connection::Following { dir: "logs".into() }, true);
        data.apply(Update::Finished(Box::new(result("01A", "old", true, now))));
        data.apply(Update::Reset {
            running: Vec::new(),
            recent: vec![
                result("01C", "b", false, now),
                result("01B", "a", true, now),
            ],
            alerts: Vec::new(),
            stats: None,
            plugins: None,
        });
        let v = data.view(now);
        let ids: Vec<&str> = v.recent.iter().map(|r| r.execution_id.as_str()).collect();
        assert_eq!(ids, ["01C", "01B"], "newest first, the old one gone");
        assert_eq!(v.stats.as_ref().unwrap()["window"]["overall"]["count"], 2);
        assert_eq!(v.throughput.iter().sum::<u64>(), 2);

        let mut queued = ExecutionEvent::finished(result("01D", "c", true, now));
        queued.kind = LifecycleKind::Queued;
        queued.result = None;
        data.apply(Update::Event(Box::new(queued)));
        assert_eq!(data.view(now).running.len(), 1);
    }

    #[test]
    fn throughput_counts_by_second_and_forgets_the_old() {
        let now = Utc::now();
        let mut t = Throughput::default();
        for _ in 0..3 {
            t.add(now);
        }
        t.add(now - chrono::Duration::seconds(1));
        t.add(now - chrono::Duration::seconds(600));
        let minute = t.last_minute(now);
        assert_eq!(minute.len(), THROUGHPUT_SECONDS);
        assert_eq!(minute[THROUGHPUT_SECONDS - 1], 3);
        assert_eq!(minute[THROUGHPUT_SECONDS - 2], 1);
        assert_eq!(minute.iter().sum::<u64>(), 4);
    }
}
