//! The component's glue: the SDK's notifier world around [`bodies`], posting through the
//! `http` import.

use std::cell::RefCell;

use metaclaude_notify::http::redact;
use metaclaude_plugin_sdk::export_notifier;
use metaclaude_plugin_sdk::notifier::Guest;
use metaclaude_plugin_sdk::types::Alert;

use crate::config::Config;
use crate::{bodies, headers};

struct State {
    config: Config,
    headers: Vec<(String, String)>,
    /// The URL as errors show it.
    shown: String,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

struct WebhookNotifier;

impl Guest for WebhookNotifier {
    fn init(config: String) -> Result<(), String> {
        let config = Config::parse(&config)?;
        let state = State {
            headers: headers(&config),
            shown: redact(&config.url),
            config,
        };
        STATE.with_borrow_mut(|s| *s = Some(state));
        Ok(())
    }

    fn notify(alerts: Vec<Alert>) -> Result<(), String> {
        STATE.with_borrow(|state| {
            let state = state.as_ref().ok_or("not initialised")?;
            let alerts = metaclaude_notify::sdk::alerts(&alerts);
            for body in bodies(&alerts, &state.config) {
                metaclaude_notify::sdk::post(
                    &state.config.url,
                    &state.shown,
                    &state.headers,
                    body.as_bytes(),
                )?;
            }
            Ok(())
        })
    }
}

export_notifier!(WebhookNotifier);
