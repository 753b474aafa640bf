//! The component's glue: the SDK's notifier world around [`Notifier`], posting through
//! the `http` import.

use std::cell::RefCell;

use metaclaude_plugin_sdk::export_notifier;
use metaclaude_plugin_sdk::notifier::Guest;
use metaclaude_plugin_sdk::types::Alert;

use crate::config::Config;
use crate::Notifier;

struct State {
    notifier: Notifier,
    endpoint: String,
    headers: Vec<(String, String)>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

struct AlertmanagerNotifier;

impl Guest for AlertmanagerNotifier {
    fn init(config: String) -> Result<(), String> {
        let config = Config::parse(&config)?;
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        headers.extend(config.headers.iter().cloned());
        let state = State {
            endpoint: config.endpoint(),
            headers,
            notifier: Notifier::new(config),
        };
        STATE.with_borrow_mut(|s| *s = Some(state));
        Ok(())
    }

    fn notify(alerts: Vec<Alert>) -> Result<(), String> {
        STATE.with_borrow_mut(|state| {
            let state = state.as_mut().ok_or("not initialised")?;
            let alerts = metaclaude_notify::sdk::alerts(&alerts);
            let prepared = state
                .notifier
                .prepare(&alerts, metaclaude_notify::sdk::now());
            if prepared.alerts.is_empty() {
                return Ok(());
            }
            metaclaude_notify::sdk::post(
                &state.endpoint,
                &state.endpoint,
                &state.headers,
                prepared.body().as_bytes(),
            )?;
            state.notifier.delivered(prepared);
            Ok(())
        })
    }
}

export_notifier!(AlertmanagerNotifier);
