//! The component's glue: the SDK's notifier world around [`Notifier`], posting to each
//! Alertmanager through the `http` import.

use std::cell::RefCell;

use metaclaude_plugin_sdk::export_notifier;
use metaclaude_plugin_sdk::notifier::Guest;
use metaclaude_plugin_sdk::types::Alert;

use crate::config::Config;
use crate::Notifier;

struct State {
    notifier: Notifier,
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
            let headers = &state.headers;
            state
                .notifier
                .notify(&alerts, metaclaude_notify::sdk::now, |endpoint, body| {
                    metaclaude_notify::sdk::post(endpoint, endpoint, headers, body.as_bytes())
                })
        })
    }
}

export_notifier!(AlertmanagerNotifier);
