//! The component's glue: the SDK's exporter world around [`Exporter`].

use std::cell::RefCell;

use metaclaude_formats::prometheus::Format;
use metaclaude_plugin_sdk::export_exporter;
use metaclaude_plugin_sdk::exporter::Guest;
use metaclaude_plugin_sdk::types::{Event, ExpositionFormat};
use metaclaude_plugin_sdk::{finished, seconds};

use crate::config::Config;
use crate::families::Exporter;

thread_local! {
    static STATE: RefCell<Option<Exporter>> = const { RefCell::new(None) };
}

struct PrometheusExporter;

impl Guest for PrometheusExporter {
    fn init(config: String) -> Result<(), String> {
        let config = Config::parse(&config)?;
        let now = seconds(&metaclaude_plugin_sdk::host::now());
        STATE.with_borrow_mut(|s| *s = Some(Exporter::new(&config, now)));
        Ok(())
    }

    fn handle_batch(events: Vec<Event>) -> Result<(), String> {
        STATE.with_borrow_mut(|state| {
            let state = state.as_mut().ok_or("not initialised")?;
            let mut warnings = Vec::new();
            for f in events.iter().filter_map(finished) {
                state.observe(&f, &mut warnings);
            }
            for w in warnings {
                metaclaude_plugin_sdk::warn!("{w}");
            }
            Ok(())
        })
    }

    fn flush() -> Result<(), String> {
        // Nothing to make durable: the state is the instance's.
        Ok(())
    }

    fn render(format: ExpositionFormat) -> Result<String, String> {
        let format = match format {
            ExpositionFormat::Openmetrics => Format::OpenMetrics,
            ExpositionFormat::PrometheusText => Format::Text,
        };
        STATE.with_borrow(|state| {
            let state = state.as_ref().ok_or("not initialised")?;
            Ok(state.render(format))
        })
    }
}

export_exporter!(PrometheusExporter);
