//! A plugin's health and counters, shared between its worker, the host's dispatch and
//! `plugins list` / the host's metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The state of a plugin as `plugins list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Running,
    /// Waiting to start a fresh instance after a failure.
    Restarting,
    /// Too many failures: no longer called; events are dropped and counted.
    Quarantined(String),
    /// Failed once under `failure_policy = "disable"`.
    Disabled(String),
}

impl Health {
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
            health: Mutex::new(Health::Running),
            last_error: Mutex::new(None),
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
