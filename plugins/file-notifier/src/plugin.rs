//! The component's glue: the SDK's notifier world around [`lines`] and [`append`].

use std::cell::RefCell;

use metaclaude_plugin_sdk::export_notifier;
use metaclaude_plugin_sdk::notifier::Guest;
use metaclaude_plugin_sdk::types::Alert;

use crate::config::Config;
use crate::{append, lines, prepare};

thread_local! {
    static CONFIG: RefCell<Option<Config>> = const { RefCell::new(None) };
}

struct FileNotifier;

impl Guest for FileNotifier {
    fn init(config: String) -> Result<(), String> {
        let config = Config::parse(&config)?;
        prepare(&config.path)?;
        CONFIG.with_borrow_mut(|c| *c = Some(config));
        Ok(())
    }

    fn notify(alerts: Vec<Alert>) -> Result<(), String> {
        CONFIG.with_borrow(|config| {
            let config = config.as_ref().ok_or("not initialised")?;
            let text = lines(&metaclaude_notify::sdk::alerts(&alerts));
            append(&config.path, &text, config.sync)
        })
    }
}

export_notifier!(FileNotifier);
