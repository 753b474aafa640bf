//! A metaclaude sink: receives every lifecycle event, in batches, and logs a line per
//! finished execution through the host.

wit_bindgen::generate!({ path: "wit/monitor.wit", world: "sink" });

use metaclaude::monitor::host::{self, Level};
use metaclaude::monitor::types::LifecycleKind;

struct Plugin;

impl Guest for Plugin {
    fn init(config: String) -> Result<(), String> {
        serde_json::from_str::<serde_json::Value>(&config).map_err(|e| format!("config: {e}"))?;
        Ok(())
    }

    fn handle_batch(events: Vec<Event>) -> Result<(), String> {
        let finished = events.iter().filter(|e| e.kind == LifecycleKind::Finished);
        for r in finished.filter_map(|e| e.result.as_ref()) {
            if host::log_enabled(Level::Info) {
                let how = if r.success { "succeeded" } else { "failed" };
                let took = r.resource_usage.wall_time_seconds;
                host::log(Level::Info, &format!("{} {} {how} in {took:.2}s", r.execution_id, r.script_id));
            }
        }
        Ok(())
    }

    fn flush() -> Result<(), String> {
        Ok(())
    }
}

export!(Plugin);
