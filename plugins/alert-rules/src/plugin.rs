//! The component's glue: the SDK's alert-rule world around [`AlertRules`].
//!
//! Evaluation time is the host's clock in both calls: `host::now()` in `handle-batch`
//! (each execution still counts at its own finish time), the tick's `now` in `tick`.

use std::cell::RefCell;

use metaclaude_plugin_sdk::alert_rule::Guest;
use metaclaude_plugin_sdk::export_alert_rule;
use metaclaude_plugin_sdk::types::{self, AlertStatus, Datetime, Event};
use metaclaude_plugin_sdk::{finished, host};

use crate::alert::Alert;
use crate::config::Config;
use crate::engine::AlertRules;
use crate::lifecycle::{Severity, Status};
use crate::time::Time;

thread_local! {
    static STATE: RefCell<Option<AlertRules>> = const { RefCell::new(None) };
}

const NOT_INITIALISED: &str = "alert-rules: called before init";

fn time(t: &Datetime) -> Time {
    Time::from_parts(t.seconds, t.nanoseconds)
}

fn datetime(t: Time) -> Datetime {
    Datetime {
        seconds: t.seconds(),
        nanoseconds: t.subsec_nanos(),
    }
}

fn to_wit(a: Alert) -> types::Alert {
    types::Alert {
        timestamp: datetime(a.timestamp),
        type_: a.kind.to_string(),
        severity: match a.severity {
            Severity::Warning => types::Severity::Warning,
            Severity::Critical => types::Severity::Critical,
        },
        message: a.message,
        value: a.value,
        threshold: a.threshold,
        specialist: a.specialist,
        labels: a.labels,
        status: match a.status {
            Status::Firing => AlertStatus::Firing,
            Status::Resolved => AlertStatus::Resolved,
        },
        fingerprint: a.fingerprint,
        starts_at: datetime(a.starts_at),
        ends_at: a.ends_at.map(datetime),
        annotations: a.annotations,
    }
}

/// Runs `f` on the state; without one (no `init` yet) logs it and returns no alerts.
fn with_rules(f: impl FnOnce(&mut AlertRules) -> Vec<Alert>) -> Vec<types::Alert> {
    STATE.with_borrow_mut(|state| match state.as_mut() {
        Some(rules) => f(rules).into_iter().map(to_wit).collect(),
        None => {
            metaclaude_plugin_sdk::error!("{NOT_INITIALISED}");
            Vec::new()
        }
    })
}

struct DefaultAlertRules;

impl Guest for DefaultAlertRules {
    fn init(config: String) -> Result<(), String> {
        let config = Config::parse(&config)?;
        STATE.with_borrow_mut(|s| *s = Some(AlertRules::new(config)));
        Ok(())
    }

    fn handle_batch(events: Vec<Event>) -> Vec<types::Alert> {
        let now = time(&host::now());
        with_rules(|rules| {
            let mut warnings = Vec::new();
            for f in events.iter().filter_map(finished) {
                rules.observe(&f, now, &mut warnings);
            }
            for w in warnings {
                metaclaude_plugin_sdk::warn!("{w}");
            }
            rules.evaluate(now)
        })
    }

    fn tick(now: Datetime) -> Vec<types::Alert> {
        with_rules(|rules| rules.evaluate(time(&now)))
    }

    fn set_threshold(name: String, value: f64) -> Result<String, String> {
        STATE.with_borrow_mut(|state| {
            let rules = state.as_mut().ok_or(NOT_INITIALISED)?;
            let changed = rules.set_threshold(&name, value)?;
            metaclaude_plugin_sdk::info!("threshold changed: {changed}");
            Ok(changed)
        })
    }

    fn thresholds() -> Vec<types::Threshold> {
        STATE.with_borrow(|state| {
            let Some(rules) = state.as_ref() else {
                return Vec::new();
            };
            rules
                .thresholds()
                .list()
                .into_iter()
                .map(|(name, value, description)| types::Threshold {
                    name: name.to_string(),
                    value,
                    description: description.to_string(),
                })
                .collect()
        })
    }
}

export_alert_rule!(DefaultAlertRules);
