//! Alerts: where those raised by alert rules (and by the host about its plugins) go, and
//! the alerts the host raises itself.

use std::sync::{Arc, Mutex};

use chrono::Utc;

use super::delivery::Mailbox;
use crate::model::{Alert, Severity};

/// Where alerts raised by rules (and by the host about plugins) go: every notifier.
#[derive(Default)]
pub struct AlertRouter {
    notifiers: Mutex<Vec<RoutedNotifier>>,
}

/// A notifier's queue, under the id of its loaded plugin.
struct RoutedNotifier {
    id: u64,
    mailbox: Arc<Mailbox>,
}

impl AlertRouter {
    pub fn add(&self, id: u64, mailbox: Arc<Mailbox>) {
        self.notifiers
            .lock()
            .unwrap()
            .push(RoutedNotifier { id, mailbox });
    }

    /// Stops routing to a notifier that is being unloaded or replaced.
    pub fn remove(&self, id: u64) {
        self.notifiers.lock().unwrap().retain(|n| n.id != id);
    }

    pub fn publish(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        for a in &alerts {
            tracing::warn!(alert = %a.kind, severity = ?a.severity, value = a.value, threshold = a.threshold, "{}", a.message);
        }
        let alerts = Arc::new(alerts);
        for n in self.notifiers.lock().unwrap().iter() {
            n.mailbox.send_alerts(alerts.clone());
        }
    }
}

/// The host's own alert about a plugin it took out of service (quarantined or disabled):
/// `plugin_quarantined`, critical, labelled `plugin=NAME`. `failures` within the window
/// against `max_failures`.
pub fn plugin_quarantined(plugin: &str, why: &str, failures: usize, max_failures: u32) -> Alert {
    Alert {
        timestamp: Utc::now(),
        kind: "plugin_quarantined".into(),
        severity: Severity::Critical,
        message: format!("Plugin {plugin} was taken out of service: {why}"),
        value: failures as f64,
        threshold: max_failures as f64,
        specialist: None,
        labels: [("plugin".to_string(), plugin.to_string())].into(),
    }
}
