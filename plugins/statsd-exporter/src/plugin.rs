//! The component glue: the exporter's state in the instance, each batch of events made
//! into lines, packed into datagrams and sent.

use std::cell::RefCell;
use std::hash::{BuildHasher, Hasher};

use metaclaude_plugin_sdk::types::Event;
use metaclaude_plugin_sdk::{export_sink, finished, sink::Guest};

use crate::config::Config;
use crate::format;
use crate::lines::Exporter;
use crate::send::Sender;

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

struct State {
    config: Config,
    exporter: Exporter,
    sender: Sender,
    /// A batch's lines, the buffer kept for the next.
    lines: format::Lines,
}

/// A seed for sampling from the runtime's randomness (WASI `random` in the sandbox).
fn seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x9E37_79B9_7F4A_7C15);
    h.finish()
}

struct StatsdExporter;

impl Guest for StatsdExporter {
    fn init(config: String) -> Result<(), String> {
        let config = Config::parse(&config)?;
        let state = State {
            exporter: Exporter::new(&config, seed()),
            sender: Sender::new(config.target()),
            lines: format::Lines::default(),
            config,
        };
        STATE.with_borrow_mut(|s| *s = Some(state));
        Ok(())
    }

    fn handle_batch(events: Vec<Event>) -> Result<(), String> {
        STATE.with_borrow_mut(|state| {
            let state = state.as_mut().ok_or("not initialised")?;
            let mut warnings = Vec::new();
            state.lines.clear();
            for f in events.iter().filter_map(finished) {
                state.exporter.lines(&f, &mut state.lines, &mut warnings);
            }
            for w in warnings {
                metaclaude_plugin_sdk::warn!("{w}");
            }
            let (datagrams, too_long) =
                format::pack(state.lines.iter(), state.config.max_payload_bytes);
            if too_long > 0 {
                metaclaude_plugin_sdk::warn!(
                    "{too_long} line(s) longer than a UDP datagram left out"
                );
            }
            state.sender.send(&datagrams);
            match state.sender.report() {
                Some(message) => Err(message),
                None => Ok(()),
            }
        })
    }

    fn flush() -> Result<(), String> {
        // Nothing is held between batches.
        Ok(())
    }
}

export_sink!(StatsdExporter);
