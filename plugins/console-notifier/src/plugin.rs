//! The component's glue: the SDK's notifier world around [`render`].

use std::cell::RefCell;
use std::io::Write;

use metaclaude_plugin_sdk::export_notifier;
use metaclaude_plugin_sdk::notifier::Guest;
use metaclaude_plugin_sdk::types::Alert;

use crate::config::Config;
use crate::render;

thread_local! {
    static CONFIG: RefCell<Option<Config>> = const { RefCell::new(None) };
}

struct ConsoleNotifier;

impl Guest for ConsoleNotifier {
    fn init(config: String) -> Result<(), String> {
        let config = Config::parse(&config)?;
        CONFIG.with_borrow_mut(|c| *c = Some(config));
        Ok(())
    }

    fn notify(alerts: Vec<Alert>) -> Result<(), String> {
        CONFIG.with_borrow(|config| {
            let config = config.as_ref().ok_or("not initialised")?;
            let text = render(&metaclaude_notify::sdk::alerts(&alerts), config);
            let mut stderr = std::io::stderr().lock();
            stderr
                .write_all(text.as_bytes())
                .and_then(|()| stderr.flush())
                .map_err(|e| format!("writing to stderr: {e}"))
        })
    }
}

export_notifier!(ConsoleNotifier);
