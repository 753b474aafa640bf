//! The component's glue: the SDK's exporter world around [`Exporter`].

use std::cell::RefCell;

use metaclaude_formats::prometheus::Format;
use metaclaude_plugin_sdk::export_exporter;
use metaclaude_plugin_sdk::exporter::Guest;
use metaclaude_plugin_sdk::types::{Event, LifecycleKind};
use metaclaude_plugin_sdk::{category_name, seconds};

use crate::config::Config;
use crate::metrics::{Exporter, Finished};

thread_local! {
    static STATE: RefCell<Option<Exporter>> = const { RefCell::new(None) };
}

/// The figures of a `finished` event (`None` for any other event).
fn finished(event: &Event) -> Option<Finished> {
    if event.kind != LifecycleKind::Finished {
        return None;
    }
    let r = event.result.as_ref()?;
    Some(Finished {
        script: r.script_id.clone(),
        specialist: r.specialist.clone(),
        success: r.success,
        category: r
            .error_details
            .as_ref()
            .map(|e| category_name(e.category).to_string()),
        duration_seconds: r.resource_usage.wall_time_seconds,
        memory_peak_mb: r.resource_usage.peak_memory_mb,
        cpu_time_seconds: r.resource_usage.cpu_time_seconds,
        retries: r.retries,
        at: seconds(&event.timestamp),
    })
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

    fn render() -> Result<String, String> {
        STATE.with_borrow(|state| {
            let state = state.as_ref().ok_or("not initialised")?;
            Ok(state.render(Format::OpenMetrics))
        })
    }
}

export_exporter!(PrometheusExporter);
