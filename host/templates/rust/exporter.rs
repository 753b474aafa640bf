//! A metaclaude exporter: counts finished executions by outcome and renders them on
//! request, in the exposition format the scrape negotiated (OpenMetrics or the Prometheus
//! text format 0.0.4).

use std::sync::atomic::{AtomicU64, Ordering};

wit_bindgen::generate!({ path: "wit/monitor.wit", world: "exporter" });

use metaclaude::monitor::types::LifecycleKind;

static SUCCEEDED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);

struct Plugin;

impl Guest for Plugin {
    fn init(config: String) -> Result<(), String> {
        serde_json::from_str::<serde_json::Value>(&config).map_err(|e| format!("config: {e}"))?;
        Ok(())
    }

    fn handle_batch(events: Vec<Event>) -> Result<(), String> {
        let finished = events.iter().filter(|e| e.kind == LifecycleKind::Finished);
        for r in finished.filter_map(|e| e.result.as_ref()) {
            let counter = if r.success { &SUCCEEDED } else { &FAILED };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn flush() -> Result<(), String> {
        Ok(())
    }

    fn render(format: ExpositionFormat) -> Result<String, String> {
        // OpenMetrics names a counter family without `_total` and ends with `# EOF`.
        let (family, end) = match format {
            ExpositionFormat::Openmetrics => ("executions_finished", "# EOF\n"),
            ExpositionFormat::PrometheusText => ("executions_finished_total", ""),
        };
        Ok(format!(
            "# TYPE {family} counter\n\
             executions_finished_total{{outcome=\"success\"}} {}\n\
             executions_finished_total{{outcome=\"failure\"}} {}\n{end}",
            SUCCEEDED.load(Ordering::Relaxed),
            FAILED.load(Ordering::Relaxed)
        ))
    }
}

export!(Plugin);
