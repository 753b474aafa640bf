//! The figures a monitor reports from what it holds: totals since start, statistics over
//! a window of the held executions (`WindowStats`), percentiles by window from the
//! sketches, the report that combines them, and equal intervals for the charts
//! (`Timeseries`). Computed from data handed in (held results, sketches, a clock reading):
//! no lock and no clock here.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use metaclaude_sketch::{DdSketch, Window, Windowed};
use serde::Serialize;

use crate::logs::query::{record_of, Matcher};
use crate::logs::stats::{nearest_rank, Acc, GroupBy, Stats, StatsAcc};
use crate::model::{timestamp, ExecutionResult};

/// Counts since the monitor started.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Totals {
    /// Executions finished since start.
    pub executions: u64,
    /// Of them, those that succeeded.
    pub succeeded: u64,
    /// Of them, those that failed (refused ones included).
    pub failed: u64,
    /// Retries over all of them.
    pub retries: u64,
}

/// Statistics over the executions held in memory that finished since `since`.
#[derive(Debug, Clone, Serialize)]
pub struct WindowStats {
    /// Where the window starts; `None` for since start.
    #[serde(with = "timestamp::option")]
    pub since: Option<DateTime<Utc>>,
    /// The oldest finish time held: when it is after `since`, older executions of the
    /// window were already let go (the log has them).
    #[serde(with = "timestamp::option")]
    pub oldest_held: Option<DateTime<Utc>>,
    /// Whether the whole window is counted: memory holds it, or the log has the part
    /// memory does not (a server with a log directory reads it; see `Earlier`).
    pub complete: bool,
    /// Counts, success rate, durations and memory over the window's executions.
    pub overall: Stats,
    /// Most executions first.
    pub top_scripts: Vec<crate::logs::stats::Group>,
    /// Most executions first, as `top_scripts`.
    pub top_specialists: Vec<crate::logs::stats::Group>,
}

impl WindowStats {
    /// Statistics over `held` (finished since `since`), of those `matcher` takes, with the
    /// `top` scripts and specialists by count; `complete` says whether the whole window
    /// is counted; `absorbed`, executions known by their figures or read from the log
    /// (a replay's summaries, the part of the window memory does not hold), count in too.
    pub(super) fn of(
        held: &[Arc<ExecutionResult>],
        since: Option<DateTime<Utc>>,
        top: usize,
        matcher: Option<&Matcher>,
        oldest_held: Option<DateTime<Utc>>,
        complete: bool,
        absorbed: Option<super::Absorbed>,
    ) -> WindowStats {
        let mut overall = Acc::default();
        let mut scripts = StatsAcc::default();
        let mut specialists = StatsAcc::default();
        let mut oldest_held = oldest_held;
        if let Some(a) = absorbed {
            overall.merge(a.overall);
            scripts.merge(a.scripts);
            specialists.merge(a.specialists);
            oldest_held = match (oldest_held, a.oldest) {
                (Some(h), Some(o)) => Some(h.min(o)),
                (h, o) => h.or(o),
            };
        }
        for r in held {
            let record = record_of(r);
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
            complete,
            overall: overall.finish(),
            top_scripts: top_of(scripts, GroupBy::Script),
            top_specialists: top_of(specialists, GroupBy::Specialist),
        }
    }
}

/// The longest report period, in minutes (a year).
pub const MAX_PERIOD_MINUTES: u64 = 366 * 24 * 60;

/// The most intervals one [`Monitor::timeseries`](super::Monitor::timeseries) answer has.
pub const MAX_BUCKETS: usize = 720;

/// What [`Monitor::timeseries`](super::Monitor::timeseries) says: equal intervals, oldest first, the last ending at
/// `generated_at`.
#[derive(Debug, Clone, Serialize)]
pub struct Timeseries {
    /// The span asked for, minutes (0: since start).
    pub period_minutes: u64,
    /// Each interval's length, seconds (whole milliseconds, at least 1 s).
    pub step_seconds: f64,
    /// When the last interval ends: the time of the answer, UTC.
    #[serde(with = "timestamp")]
    pub generated_at: DateTime<Utc>,
    /// Whether memory still holds every execution of the whole span.
    pub complete: bool,
    /// The intervals, oldest first, at most [`MAX_BUCKETS`].
    pub buckets: Vec<Bucket>,
}

/// One interval of a [`Timeseries`]: executions that finished in it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bucket {
    /// When the interval starts, UTC; it lasts the series' `step_seconds`.
    #[serde(with = "timestamp")]
    pub start: DateTime<Utc>,
    /// Executions that finished in it.
    pub executions: u64,
    /// Of them, those that failed.
    pub failures: u64,
    /// Percent of the interval's executions that failed; absent when none ran.
    pub error_rate: Option<f64>,
    /// Median duration (`wall_time_seconds`), seconds, nearest rank; absent when none ran.
    pub duration_p50: Option<f64>,
    /// 95th-percentile duration, seconds, nearest rank; absent when none ran.
    pub duration_p95: Option<f64>,
}

/// What [`Monitor::report`](super::Monitor::report) says.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The window asked for, minutes (0: since start).
    pub period_minutes: u64,
    /// When the report was made, UTC.
    #[serde(with = "timestamp")]
    pub generated_at: DateTime<Utc>,
    /// Executions running at that moment.
    pub running: usize,
    /// The window's finished executions per minute (since start: over the time since
    /// start).
    pub executions_per_minute: f64,
    /// The whole host's counts since start (not narrowed by a filter).
    pub since_start: Totals,
    /// Statistics over the window (of the filtered executions, for a filtered report).
    pub window: WindowStats,
    /// The whole host's percentiles by window, from the sketches.
    pub percentiles: Percentiles,
}

/// Percentiles by window (`1m`, `5m`, `60m`, `start`).
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// Duration (`wall_time_seconds`) percentiles, seconds, by window label.
    pub duration_seconds: std::collections::BTreeMap<&'static str, Quantiles>,
    /// Peak memory (`peak_memory_mb`) percentiles, MiB, by window label.
    pub peak_memory_mb: std::collections::BTreeMap<&'static str, Quantiles>,
}

/// What a sketch says of one window.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Quantiles {
    /// Executions the window holds.
    pub count: u64,
    /// The median, within 1 % relative error; `None` when `count` is 0.
    pub p50: Option<f64>,
    /// The 90th percentile, as `p50`.
    pub p90: Option<f64>,
    /// The 95th percentile, as `p50`.
    pub p95: Option<f64>,
    /// The 99th percentile, as `p50`.
    pub p99: Option<f64>,
    /// The largest value, within the same error, as `p50`.
    pub max: Option<f64>,
}

impl Quantiles {
    /// What the sketch `s` says.
    pub(super) fn of(s: &DdSketch) -> Quantiles {
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

impl Percentiles {
    /// Duration and peak-memory percentiles over the last 1, 5 and 60 minutes and since
    /// start, from the sketches, as of `now`.
    pub(super) fn of(durations: &Windowed, memory: &Windowed, now: DateTime<Utc>) -> Percentiles {
        let now_ms = epoch_ms(now);
        let of = |w: &Windowed| {
            Window::ALL
                .iter()
                .map(|&window| (window.label(), Quantiles::of(&w.window(window, now_ms))))
                .collect()
        };
        Percentiles {
            duration_seconds: of(durations),
            peak_memory_mb: of(memory),
        }
    }
}

/// Where a period of `period_minutes` ending `now` starts (`None`: since start).
pub(super) fn period_start(period_minutes: u64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (period_minutes > 0)
        .then(|| now - chrono::Duration::minutes(period_minutes.min(MAX_PERIOD_MINUTES) as i64))
}

/// A [`Timeseries`] being counted: `buckets` equal intervals from `start` to `now` (whole
/// milliseconds, at least a second each), executions added newest first.
pub(super) struct Intervals {
    first: DateTime<Utc>,
    step_ms: i64,
    durations: Vec<Vec<f64>>,
    failures: Vec<u64>,
}

impl Intervals {
    pub(super) fn new(start: DateTime<Utc>, now: DateTime<Utc>, buckets: usize) -> Intervals {
        let buckets = buckets.clamp(1, MAX_BUCKETS);
        let span_ms = (now - start).num_milliseconds().max(1000);
        let step_ms = (span_ms + buckets as i64 - 1) / buckets as i64;
        let step_ms = step_ms.max(1000);
        Intervals {
            first: now - chrono::Duration::milliseconds(step_ms * buckets as i64),
            step_ms,
            durations: vec![Vec::new(); buckets],
            failures: vec![0; buckets],
        }
    }

    /// Whether an execution finished at `at` falls in an interval (older ones do not, nor
    /// any before them: the caller stops there).
    pub(super) fn covers(&self, at: DateTime<Utc>) -> bool {
        at >= self.first
    }

    /// Counts `r` in its interval.
    pub(super) fn add(&mut self, r: &ExecutionResult) {
        let i = ((r.finished_at - self.first).num_milliseconds() / self.step_ms) as usize;
        let i = i.min(self.durations.len() - 1);
        self.durations[i].push(r.resource_usage.wall_time_seconds);
        if !r.success {
            self.failures[i] += 1;
        }
    }

    /// The series; complete when nothing was let go or the oldest held is at or before the
    /// first interval.
    pub(super) fn finish(
        self,
        period_minutes: u64,
        now: DateTime<Utc>,
        oldest_held: Option<DateTime<Utc>>,
        evicted: u64,
    ) -> Timeseries {
        let Intervals {
            first,
            step_ms,
            durations,
            failures,
        } = self;
        let buckets = durations
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
                    duration_p50: nearest_rank(&d, 50.0),
                    duration_p95: nearest_rank(&d, 95.0),
                }
            })
            .collect();
        Timeseries {
            period_minutes,
            step_seconds: step_ms as f64 / 1000.0,
            generated_at: now,
            complete: evicted == 0 || oldest_held.is_some_and(|o| o <= first),
            buckets,
        }
    }
}

/// Milliseconds since the epoch (0 before it).
pub(super) fn epoch_ms(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}
