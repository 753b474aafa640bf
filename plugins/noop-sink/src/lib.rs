//! A sink that counts the events it receives and does nothing else: the baseline the
//! benchmarks measure delivery against, and the smallest example of a plugin.

use std::sync::atomic::{AtomicU64, Ordering};

use metaclaude_plugin_sdk::{export_sink, sink::Guest, types::Event};

static EVENTS: AtomicU64 = AtomicU64::new(0);

struct NoopSink;

impl Guest for NoopSink {
    fn init(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn handle_batch(events: Vec<Event>) -> Result<(), String> {
        EVENTS.fetch_add(events.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn flush() -> Result<(), String> {
        metaclaude_plugin_sdk::debug!("received {} events", EVENTS.load(Ordering::Relaxed));
        Ok(())
    }
}

export_sink!(NoopSink);
