//! The component's glue: the SDK's pusher world around [`Pusher`].

use std::cell::RefCell;

use metaclaude_plugin_sdk::delivery;
use metaclaude_plugin_sdk::export_pusher;
use metaclaude_plugin_sdk::pusher::Guest;
use metaclaude_plugin_sdk::types::{Datetime, Event};
use metaclaude_plugin_sdk::{finished, seconds};
use metaclaude_prometheus_series::families::Exporter;

use crate::config::Config;
use metaclaude_push::glue::{self, ms, post};

use crate::push::Pusher;
use crate::queue::Queue;
use crate::spool::Spool;
use crate::wire;

/// How often the spool is rewritten while samples wait (and at every flush).
const SPOOL_EVERY_MS: i64 = 5000;

struct State {
    exporter: Exporter,
    pusher: Pusher,
    spool: Option<Spool>,
    spooled_at_ms: i64,
    url: String,
    destination: String,
    headers: Vec<(String, String)>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

impl State {
    fn keep(&mut self, now_ms: i64, force: bool) {
        let Some(spool) = self.spool.as_mut() else {
            return;
        };
        if force || now_ms - self.spooled_at_ms >= SPOOL_EVERY_MS {
            self.spooled_at_ms = now_ms;
            if let Err(e) = spool.save(&self.pusher.queue) {
                metaclaude_plugin_sdk::warn!("{e}");
            }
        }
    }

    fn report(&self) {
        delivery::report(&[glue::report(
            &self.destination,
            "samples",
            self.pusher.pending(),
            self.pusher.dropped(),
            &self.pusher.sender.figures,
        )]);
    }
}

struct RemoteWrite;

impl Guest for RemoteWrite {
    fn init(config: String) -> Result<(), String> {
        let config = Config::parse(&config)?;
        let now = metaclaude_plugin_sdk::host::now();
        let now_ms = ms(&now);
        let mut spool = config.spool_dir.as_deref().map(Spool::new);
        let queue = match spool.as_mut() {
            None => None,
            Some(s) => s
                .load(
                    config.max_pending_samples,
                    now_ms - config.spool_max_age_s as i64 * 1000,
                )
                .unwrap_or_else(|e| {
                    metaclaude_plugin_sdk::warn!("{e}; starting with an empty queue");
                    None
                }),
        };
        if let Some(q) = &queue {
            metaclaude_plugin_sdk::info!(
                "{} unsent samples read back from the spool ({} too old, dropped)",
                q.len(),
                q.dropped()
            );
        }
        let queue = queue.unwrap_or_else(|| Queue::new(config.max_pending_samples));
        let mut headers: Vec<(String, String)> = wire::HEADERS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        headers.extend(config.headers.iter().cloned());
        let state = State {
            exporter: Exporter::new(&config.series, seconds(&now)),
            url: config.url.clone(),
            destination: config.destination(),
            headers,
            spool,
            spooled_at_ms: now_ms,
            pusher: Pusher::new(config, queue, now_ms),
        };
        state.report();
        STATE.with_borrow_mut(|s| *s = Some(state));
        Ok(())
    }

    fn handle_batch(events: Vec<Event>) -> Result<(), String> {
        STATE.with_borrow_mut(|state| {
            let state = state.as_mut().ok_or("not initialised")?;
            let mut warnings = Vec::new();
            for f in events.iter().filter_map(finished) {
                state.exporter.observe(&f, &mut warnings);
            }
            for w in warnings {
                metaclaude_plugin_sdk::warn!("{w}");
            }
            Ok(())
        })
    }

    fn tick(now: Datetime) -> Result<(), String> {
        STATE.with_borrow_mut(|state| {
            let state = state.as_mut().ok_or("not initialised")?;
            let now_ms = ms(&now);
            state.pusher.tick(
                &state.exporter,
                now_ms,
                &mut post(&state.url, &state.headers),
            );
            state.keep(now_ms, false);
            state.report();
            Ok(())
        })
    }

    /// Before shutdown (and on request): a last snapshot, one try to send what waits
    /// (unless a backoff holds it), and the queue kept in the spool; nothing for an
    /// instance that never ran an interval (`plugins list` and `check` load and flush
    /// every plugin: it must not push, nor rewrite the spool of the host that runs).
    fn flush() -> Result<(), String> {
        STATE.with_borrow_mut(|state| {
            let state = state.as_mut().ok_or("not initialised")?;
            if !state.pusher.live() {
                return Ok(());
            }
            let now_ms = ms(&metaclaude_plugin_sdk::host::now());
            state.pusher.snapshot(&state.exporter, now_ms);
            state
                .pusher
                .send_due(now_ms, &mut post(&state.url, &state.headers));
            state.keep(now_ms, true);
            state.report();
            Ok(())
        })
    }
}

export_pusher!(RemoteWrite);
