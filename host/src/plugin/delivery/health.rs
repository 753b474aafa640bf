//! A plugin's health and counters, shared between its worker, the host's dispatch and
//! `plugins list` / the host's metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::plugin::delivery::destinations::Destinations;

/// Upper bounds, in seconds, of the buckets of a plugin's call-latency histogram: from
/// 100 µs (a no-op call) to the 30 s of the longest deadline a manifest usually sets.
pub const CALL_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

/// How long the calls into a plugin took (`handle-batch`, `notify`, `tick`, `render`,
/// `flush`): a fixed-bucket histogram, counted without a lock.
#[derive(Debug, Default)]
pub struct CallLatency {
    buckets: [AtomicU64; CALL_BUCKETS.len()],
    /// Calls past the last bound.
    over: AtomicU64,
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl CallLatency {
    pub fn record(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        match CALL_BUCKETS.iter().position(|&b| seconds <= b) {
            Some(i) => self.buckets[i].fetch_add(1, Ordering::Relaxed),
            None => self.over.fetch_add(1, Ordering::Relaxed),
        };
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The histogram as it is now, cumulative as the Prometheus format has it.
    pub fn snapshot(&self) -> LatencySnapshot {
        let mut running = 0;
        let buckets = CALL_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, n)| {
                running += n.load(Ordering::Relaxed);
                (bound, running)
            })
            .collect();
        LatencySnapshot {
            buckets,
            count: running + self.over.load(Ordering::Relaxed),
            sum_seconds: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// A [`CallLatency`] read at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencySnapshot {
    /// (upper bound in seconds, calls that took at most that long), ascending.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

/// The state of a plugin as `plugins list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Taking events (or alerts) normally.
    Running,
    /// Waiting to start a fresh instance after a failure.
    Restarting,
    /// Too many failures: no longer called; events are dropped and counted.
    Quarantined(String),
    /// Failed once under `failure_policy = "disable"`.
    Disabled(String),
}

impl Health {
    /// How `plugins list` shows it: `running`, `quarantined: <why>`, ...
    pub fn describe(&self) -> String {
        match self {
            Health::Running => "running".into(),
            Health::Restarting => "restarting".into(),
            Health::Quarantined(why) => format!("quarantined: {why}"),
            Health::Disabled(why) => format!("disabled: {why}"),
        }
    }
}

/// Counters shared between the worker, the bus and `plugins list`.
pub struct PluginStats {
    pub queued: AtomicU64,
    pub delivered: AtomicU64,
    /// Dropped because the queue was full (`drop_newest`), the plugin was quarantined or
    /// disabled, or a batch was lost to a trap.
    pub dropped: AtomicU64,
    pub failures: AtomicU64,
    pub restarts: AtomicU64,
    /// Calls the plugin answered with an error (the instance stays).
    pub refused: AtomicU64,
    pub health: Mutex<Health>,
    pub last_error: Mutex<Option<String>>,
    /// How long the calls into the plugin took.
    pub calls: CallLatency,
    /// The live instance's linear memory, bytes (what WebAssembly never gives back).
    pub memory_bytes: Arc<AtomicU64>,
    /// What the plugin reports of its own deliveries (pushers, notifiers; WIT 0.4.0).
    pub destinations: Arc<Destinations>,
}

impl PluginStats {
    pub fn new() -> Arc<PluginStats> {
        Arc::new(PluginStats {
            queued: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            memory_bytes: Arc::new(AtomicU64::new(0)),
            destinations: Arc::default(),
            health: Mutex::new(Health::Running),
            last_error: Mutex::new(None),
            calls: CallLatency::default(),
        })
    }

    pub fn health(&self) -> Health {
        self.health.lock().unwrap().clone()
    }

    /// Events (alerts, for a notifier) offered and not yet delivered or dropped.
    pub fn pending(&self) -> u64 {
        let done = self.delivered.load(Ordering::Relaxed) + self.dropped.load(Ordering::Relaxed);
        self.queued.load(Ordering::Relaxed).saturating_sub(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_latency_is_a_cumulative_histogram() {
        let h = CallLatency::default();
        for micros in [50, 100, 300, 2_000, 40_000_000] {
            h.record(Duration::from_micros(micros));
        }
        let s = h.snapshot();
        assert_eq!(s.count, 5);
        assert_eq!(s.buckets[0], (0.0001, 2), "50 and 100 µs");
        assert_eq!(s.buckets[2], (0.0005, 3));
        assert_eq!(s.buckets[4], (0.0025, 4));
        assert_eq!(
            s.buckets.last().unwrap().1,
            4,
            "40 s is past the last bound"
        );
        assert!((s.sum_seconds - 40.00245).abs() < 1e-9, "{}", s.sum_seconds);
    }
}
