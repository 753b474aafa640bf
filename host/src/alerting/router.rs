//! Alerts between plugins: those raised by alert rules (and by the host about its
//! plugins) go into the [`AlertBook`], which says what each notifier is to be told and
//! when; every change goes to the history and to the library's callbacks at once.
//!
//! One thread per host (`alert-router`) wakes when the book has something due (a group
//! wait ending, a repeat, a resolve timeout, a silence starting or ending) or when alerts
//! arrive. It starts with the first notifier, alert, silence store or inhibition rules,
//! so that a host with none of them (a one-shot `run` of the default set) starts no
//! thread for it. Handing alerts to a notifier never waits: its queue takes them or they are
//! dropped and counted.
//!
//! Silences come from the host's [`SilenceStore`]: a change made through it (the API)
//! wakes the router, which gives the book a copy; one made to the file by another process
//! (the CLI with no server answering) is read back at the router's next wake, within a
//! minute.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use chrono::Utc;

use super::{AlertBook, AlertHistory, InhibitRules, Outcome, Routing, SilenceStore};
use crate::model::{Alert, Severity};

/// What the library's `register_alert_callback` takes: called with the alerts that
/// changed state (new, escalated, resolved), on the router's thread. It must not block.
pub type AlertCallback = Arc<dyn Fn(&[Alert]) + Send + Sync>;

/// A notifier as the router sees it: a queue that takes alerts without waiting (the
/// plugin's mailbox; the router knows nothing else of plugins).
pub trait NotifierQueue: Send + Sync {
    /// Hands `alerts` over; never blocks: a full queue drops them and counts them.
    fn send_alerts(&self, alerts: Arc<Vec<Alert>>);
}

/// Where alerts go (see the module doc).
pub struct AlertRouter {
    state: Mutex<State>,
    wake: Condvar,
    /// The router itself, for its thread.
    me: Weak<AlertRouter>,
    /// Starts the thread, once.
    thread: std::sync::Once,
}

struct State {
    book: AlertBook,
    notifiers: HashMap<u64, Arc<dyn NotifierQueue>>,
    callbacks: Vec<AlertCallback>,
    history: Option<Arc<AlertHistory>>,
    /// The silences, and the store's version the book has.
    silences: Option<(Arc<SilenceStore>, u64)>,
    /// Failed history writes, and the last one's error.
    history_failures: u64,
    history_error: Option<String>,
    /// Set when the router has alerts to look at or a new receiver.
    pending: bool,
    stopped: bool,
}

/// The router's counters, for `/metrics` and the API.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RouterStats {
    /// Alerts active now.
    pub active: usize,
    /// Alerts refused since start because [`MAX_ACTIVE`](crate::alerting::book::MAX_ACTIVE)
    /// were already active.
    pub refused: u64,
    /// Writes to the alert history that failed since start.
    pub history_failures: u64,
    /// The last failed write's error; `None` while none has failed.
    pub history_error: Option<String>,
}

impl AlertRouter {
    /// A router; its thread (which ends when the router is dropped or stopped) starts
    /// when it is first given something to route.
    pub fn start() -> Arc<AlertRouter> {
        Arc::new_cyclic(|me| AlertRouter {
            state: Mutex::new(State {
                book: AlertBook::default(),
                notifiers: HashMap::new(),
                callbacks: Vec::new(),
                history: None,
                silences: None,
                history_failures: 0,
                history_error: None,
                pending: false,
                stopped: false,
            }),
            wake: Condvar::new(),
            me: me.clone(),
            thread: std::sync::Once::new(),
        })
    }

    /// Wakes the router's thread, starting it the first time.
    fn wake(&self) {
        self.thread.call_once(|| {
            let router = self.me.clone();
            let spawned = std::thread::Builder::new()
                .name("alert-router".into())
                .spawn(move || run(router));
            if let Err(e) = spawned {
                tracing::error!(
                    "cannot start the alert router's thread: {e}; alerts are only sent as they arrive"
                );
            }
        });
        self.wake.notify_all();
    }

    /// Whether its thread was started.
    #[cfg(test)]
    fn running(&self) -> bool {
        self.thread.is_completed()
    }

    /// Writes every change to `history` from now on.
    pub fn set_history(&self, history: Arc<AlertHistory>) {
        self.state.lock().unwrap().history = Some(history);
    }

    /// Mutes what the silences of `store` match from now on; a change made through it
    /// takes effect at once.
    pub fn use_silences(self: &Arc<Self>, store: Arc<SilenceStore>) {
        let weak = Arc::downgrade(self);
        store.watch(Box::new(move || {
            if let Some(r) = weak.upgrade() {
                r.state.lock().unwrap().pending = true;
                r.wake();
            }
        }));
        let mut s = self.state.lock().unwrap();
        let now = Utc::now();
        let outcome = s.book.set_silences(store.snapshot(), now);
        s.silences = Some((store.clone(), store.version()));
        s.settle(outcome);
        self.wake();
    }

    /// The inhibition rules in force from now on (the built-in rule alone until called).
    pub fn set_inhibit_rules(&self, rules: InhibitRules) {
        let mut s = self.state.lock().unwrap();
        let outcome = s.book.set_inhibit_rules(rules, Utc::now());
        s.settle(outcome);
        self.wake();
    }

    /// Calls `callback` with the alerts that changed, each time some do, from now on (the
    /// library's callbacks, the monitor's feed). It runs under the router's lock: it must
    /// be quick and must not call the router.
    pub fn add_callback(&self, callback: AlertCallback) {
        self.state.lock().unwrap().callbacks.push(callback);
    }

    /// A notifier, under the id of its loaded plugin, routed by its manifest's `[alerts]`.
    pub fn add(&self, id: u64, queue: Arc<dyn NotifierQueue>, routing: Routing) {
        let mut s = self.state.lock().unwrap();
        s.notifiers.insert(id, queue);
        s.book.add_receiver(id, routing, Utc::now());
        s.pending = true;
        self.wake();
    }

    /// Stops routing to a notifier that is being unloaded or replaced.
    pub fn remove(&self, id: u64) {
        let mut s = self.state.lock().unwrap();
        s.notifiers.remove(&id);
        s.book.remove_receiver(id);
    }

    /// Takes in alerts from a rule or the host.
    pub fn publish(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        let mut s = self.state.lock().unwrap();
        s.sync_silences(false);
        let outcome = s.book.observe(alerts, Utc::now());
        s.settle(outcome);
        self.wake();
    }

    /// The active alerts, most severe first.
    pub fn active(&self) -> Vec<Alert> {
        self.state.lock().unwrap().book.active()
    }

    /// Recently resolved alerts, newest first.
    pub fn recent(&self) -> Vec<Alert> {
        self.state.lock().unwrap().book.recent()
    }

    /// Its counters now.
    pub fn stats(&self) -> RouterStats {
        let s = self.state.lock().unwrap();
        RouterStats {
            active: s.book.active().len(),
            refused: s.book.refused(),
            history_failures: s.history_failures,
            history_error: s.history_error.clone(),
        }
    }

    /// Ends the router's thread (after the last notifications were handed over).
    pub fn stop(&self) {
        let mut s = self.state.lock().unwrap();
        let outcome = s.book.drain(Utc::now());
        s.settle(outcome);
        s.stopped = true;
        self.wake.notify_all();
    }
}

impl State {
    /// Gives the book the store's silences if they changed since it had them (`reread`:
    /// after reading the file again, should another process have changed it).
    fn sync_silences(&mut self, reread: bool) {
        let Some((store, seen)) = &self.silences else {
            return;
        };
        if reread {
            if let Err(e) = store.reload_if_changed() {
                tracing::error!("{e}; the silences in force stay as they were");
            }
        }
        let version = store.version();
        if version == *seen {
            return;
        }
        let store = store.clone();
        let snapshot = store.snapshot();
        self.silences = Some((store, version));
        let outcome = self.book.set_silences(snapshot, Utc::now());
        self.settle(outcome);
    }

    /// Books an outcome: changes to the log, the history and the callbacks; notifications
    /// to their notifiers' queues.
    fn settle(&mut self, outcome: Outcome) {
        let Outcome { changed, notify } = outcome;
        if !changed.is_empty() {
            for a in &changed {
                let specialist = a.specialist.as_deref().unwrap_or("");
                if a.is_muted() {
                    tracing::info!(alert = %a.kind, status = a.status.as_str(), specialist, fingerprint = %a.fingerprint, silenced_by = ?a.silenced_by, inhibited_by = ?a.inhibited_by, "muted: {}", a.message);
                    continue;
                }
                match a.severity {
                    Severity::Critical => {
                        tracing::error!(alert = %a.kind, status = a.status.as_str(), specialist, fingerprint = %a.fingerprint, "{}", a.message)
                    }
                    Severity::Warning => {
                        tracing::warn!(alert = %a.kind, status = a.status.as_str(), specialist, fingerprint = %a.fingerprint, "{}", a.message)
                    }
                }
            }
            if let Some(h) = &self.history {
                if let Err(e) = h.append(&changed) {
                    self.history_failures += 1;
                    if self.history_error.as_deref() != Some(&e.to_string()) {
                        tracing::error!("{e}");
                    }
                    self.history_error = Some(e.to_string());
                }
            }
            for cb in &self.callbacks {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(&changed))).is_err()
                {
                    tracing::error!("an alert callback panicked; it stays registered");
                }
            }
        }
        for (id, alerts) in notify {
            if let Some(queue) = self.notifiers.get(&id) {
                queue.send_alerts(Arc::new(alerts));
            }
        }
    }
}

/// The router's thread: sleeps until the book has something due, then hands it out.
fn run(router: Weak<AlertRouter>) {
    loop {
        let Some(r) = router.upgrade() else { return };
        let mut s = r.state.lock().unwrap();
        if s.stopped {
            return;
        }
        let wait = match s.book.next_due() {
            Some(at) => (at - Utc::now()).to_std().unwrap_or(Duration::ZERO),
            None => Duration::from_secs(60),
        };
        // Bounded, so a dropped router ends its thread within a minute at most.
        let wait = wait
            .min(Duration::from_secs(60))
            .max(Duration::from_millis(1));
        if !s.pending {
            s = r.wake.wait_timeout(s, wait).unwrap().0;
        }
        s.pending = false;
        if s.stopped {
            return;
        }
        s.sync_silences(true);
        let outcome = s.book.tick(Utc::now());
        s.settle(outcome);
        drop(s);
        drop(r);
    }
}

/// The host's own alert about a plugin it took out of service (quarantined or disabled):
/// `plugin_quarantined`, critical, labelled `plugin=NAME`. `failures` within the window
/// against `max_failures`. Not raised again, it resolves after the resolve timeout.
pub fn plugin_quarantined(plugin: &str, why: &str, failures: usize, max_failures: u32) -> Alert {
    let mut a = Alert::firing(
        Utc::now(),
        "plugin_quarantined",
        Severity::Critical,
        format!("Plugin {plugin} was taken out of service: {why}"),
        failures as f64,
        max_failures as f64,
    );
    a.labels.insert("plugin".into(), plugin.into());
    a.fingerprint = a.identity();
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A router given nothing to route starts no thread (a one-shot `run` makes one and
    /// never uses it); the first alert starts it, and a notifier added later is told of
    /// the alert when its group wait ends, which only the thread does.
    #[test]
    fn the_thread_starts_with_the_first_thing_to_route_and_then_routes() {
        struct Told(Mutex<Vec<Alert>>);
        impl NotifierQueue for Told {
            fn send_alerts(&self, alerts: Arc<Vec<Alert>>) {
                self.0.lock().unwrap().extend(alerts.iter().cloned());
            }
        }
        let router = AlertRouter::start();
        router.add_callback(Arc::new(|_| {}));
        assert!(!router.running(), "started before anything was routed");
        router.publish(vec![plugin_quarantined("p", "it trapped", 3, 3)]);
        assert!(router.running(), "an alert did not start the thread");
        let told = Arc::new(Told(Mutex::new(Vec::new())));
        let routing = Routing {
            group_wait: Duration::from_millis(50),
            ..Routing::default()
        };
        router.add(1, told.clone(), routing);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while told.0.lock().unwrap().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the notifier was never told"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(told.0.lock().unwrap()[0].kind, "plugin_quarantined");
        router.stop();
    }
}
