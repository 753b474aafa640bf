//! The component's glue: the SDK's pusher world around [`Exporter`].

use std::cell::RefCell;

use metaclaude_plugin_sdk::category_name;
use metaclaude_plugin_sdk::delivery;
use metaclaude_plugin_sdk::export_pusher;
use metaclaude_plugin_sdk::pusher::Guest;
use metaclaude_plugin_sdk::types::{Datetime, Event, ExecutionResult, LifecycleKind};
use metaclaude_push::glue::{self, ms, post};

use crate::config::Config;
use crate::export::{headers, Exporter};
use crate::trace::{Attempt, Execution};

struct State {
    exporter: Exporter,
    url: String,
    destination: String,
    headers: Vec<(String, String)>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn ns(t: &Datetime) -> u64 {
    (t.seconds.max(0) as u64) * 1_000_000_000 + u64::from(t.nanoseconds)
}

/// The event's result in the spans' plain terms.
fn execution(r: &ExecutionResult) -> Execution {
    let details = r.error_details.as_ref();
    Execution {
        execution_id: r.execution_id.clone(),
        script_id: r.script_id.clone(),
        specialist: r.specialist.clone(),
        user: r.user.clone(),
        session_id: r.session_id.clone(),
        correlation_id: r.correlation_id.clone(),
        success: r.success,
        exit_code: r.exit_code,
        signal: r.signal.clone(),
        started_ns: ns(&r.started_at),
        finished_ns: ns(&r.finished_at),
        category: details.map(|d| category_name(d.category).to_string()),
        message: details.map(|d| d.message.clone()),
        retries: r.retries,
        peak_memory_mb: r.resource_usage.peak_memory_mb,
        cpu_time_seconds: r.resource_usage.cpu_time_seconds,
        cpu_user_seconds: r.resource_usage.cpu_user_seconds,
        cpu_system_seconds: r.resource_usage.cpu_system_seconds,
        wall_time_seconds: r.resource_usage.wall_time_seconds,
        attempts: r
            .attempts
            .iter()
            .map(|a| Attempt {
                attempt: a.attempt,
                started_ns: ns(&a.started_at),
                finished_ns: ns(&a.finished_at),
                success: a.success,
                exit_code: a.exit_code,
                signal: a.signal.clone(),
                category: a.category.map(|c| category_name(c).to_string()),
                message: a.message.clone(),
                wall_time_seconds: a.wall_time_seconds,
                cpu_time_seconds: a.cpu_time_seconds,
                peak_memory_mb: a.peak_memory_mb,
                delay_before_ms: a.delay_before_ms,
            })
            .collect(),
    }
}

impl State {
    fn send(&mut self, now_ms: i64) {
        self.exporter
            .send_due(now_ms, &mut post(&self.url, &self.headers));
        delivery::report(&[glue::report(
            &self.destination,
            "spans",
            self.exporter.pending(),
            self.exporter.dropped(),
            &self.exporter.sender.figures,
        )]);
    }
}

struct Otlp;

impl Guest for Otlp {
    fn init(config: String) -> Result<(), String> {
        let config = Config::parse(&config)?;
        let now_ms = ms(&metaclaude_plugin_sdk::host::now());
        let url = config.traces_url();
        let state = State {
            exporter: Exporter::new(&config, now_ms),
            destination: metaclaude_push::destination(&url),
            headers: headers(&config),
            url,
        };
        delivery::report(&[glue::report(
            &state.destination,
            "spans",
            0,
            0,
            &state.exporter.sender.figures,
        )]);
        STATE.with_borrow_mut(|s| *s = Some(state));
        Ok(())
    }

    fn handle_batch(events: Vec<Event>) -> Result<(), String> {
        STATE.with_borrow_mut(|state| {
            let state = state.as_mut().ok_or("not initialised")?;
            for r in events
                .iter()
                .filter(|e| e.kind == LifecycleKind::Finished)
                .filter_map(|e| e.result.as_ref())
            {
                state.exporter.add(&execution(r));
            }
            Ok(())
        })
    }

    fn tick(now: Datetime) -> Result<(), String> {
        STATE.with_borrow_mut(|state| {
            let state = state.as_mut().ok_or("not initialised")?;
            state.send(ms(&now));
            Ok(())
        })
    }

    /// Before shutdown (and on request): one try to send what waits, unless a backoff
    /// holds it.
    fn flush() -> Result<(), String> {
        STATE.with_borrow_mut(|state| {
            let state = state.as_mut().ok_or("not initialised")?;
            state.send(ms(&metaclaude_plugin_sdk::host::now()));
            Ok(())
        })
    }
}

export_pusher!(Otlp);
