//! The component's glue: the SDK's pusher world around [`Exporter`].

use std::cell::RefCell;

use metaclaude_plugin_sdk::delivery;
use metaclaude_plugin_sdk::export_pusher;
use metaclaude_plugin_sdk::pusher::Guest;
use metaclaude_plugin_sdk::types::{Datetime, Event, ExecutionResult, LifecycleKind};
use metaclaude_plugin_sdk::{category_name, finished};
use metaclaude_push::glue::{self, ms, post};

use crate::config::Config;
use crate::export::{headers, Exporter};
use crate::json::Signal;
use crate::logs;
use crate::metrics::Metrics;
use crate::trace::{Attempt, Execution};

/// One signal's way out (traces, logs or metrics): its queue and figures, its URL, its
/// name for people.
struct Channel {
    exporter: Exporter,
    url: String,
    /// The endpoint and the signal's path (`http://collector:4318/v1/traces`): traces and
    /// logs to one receiver are two destinations.
    destination: String,
    unit: &'static str,
}

impl Channel {
    fn new(
        config: &Config,
        signal: Signal,
        url: String,
        unit: &'static str,
        now_ms: i64,
    ) -> Channel {
        let path = url.rsplit_once("/v1/").map_or("", |(_, p)| p);
        Channel {
            exporter: Exporter::new(config, signal, now_ms),
            destination: format!(
                "{}/v1/{path}",
                metaclaude_push::destination(&config.endpoint)
            ),
            url,
            unit,
        }
    }

    fn report(&self) -> delivery::DestinationReport {
        glue::report(
            &self.destination,
            self.unit,
            self.exporter.pending(),
            self.exporter.dropped(),
            &self.exporter.sender.figures,
        )
    }
}

struct State {
    traces: Channel,
    /// `None` when the manifest turns the logs off.
    logs: Option<Channel>,
    /// `None` when the manifest turns the metrics off.
    metrics: Option<(Channel, Metrics)>,
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
    fn signals(&mut self) -> impl Iterator<Item = &mut Channel> {
        std::iter::once(&mut self.traces)
            .chain(self.logs.as_mut())
            .chain(self.metrics.as_mut().map(|(s, _)| s))
    }

    /// A snapshot of the metrics when one is due (`last`: at shutdown, once running).
    fn snapshot(&mut self, now_ms: i64, last: bool) {
        if let Some((channel, metrics)) = self.metrics.as_mut() {
            let items = if last {
                metrics.last(now_ms)
            } else {
                metrics.due(now_ms)
            };
            for item in items.into_iter().flatten() {
                channel.exporter.push(item);
            }
        }
    }

    /// What is due of each signal, then the figures.
    fn send(&mut self, now_ms: i64) {
        let headers = self.headers.clone();
        for s in self.signals() {
            s.exporter.send_due(now_ms, &mut post(&s.url, &headers));
        }
        self.report();
    }

    fn report(&mut self) {
        let reports: Vec<_> = self.signals().map(|s| s.report()).collect();
        delivery::report(&reports);
    }
}

struct Otlp;

impl Guest for Otlp {
    fn init(config: String) -> Result<(), String> {
        let config = Config::parse(&config)?;
        let now_ms = ms(&metaclaude_plugin_sdk::host::now());
        let channel = |signal, url, unit| Channel::new(&config, signal, url, unit, now_ms);
        let mut state = State {
            traces: channel(Signal::Traces, config.traces_url(), "spans"),
            logs: config
                .logs
                .then(|| channel(Signal::Logs, config.logs_url(), "log records")),
            metrics: config.metrics.then(|| {
                (
                    channel(Signal::Metrics, config.metrics_url(), "metrics"),
                    Metrics::new(&config.series, config.metrics_interval_ms, now_ms),
                )
            }),
            headers: headers(&config),
        };
        state.report();
        STATE.with_borrow_mut(|s| *s = Some(state));
        Ok(())
    }

    fn handle_batch(events: Vec<Event>) -> Result<(), String> {
        STATE.with_borrow_mut(|state| {
            let state = state.as_mut().ok_or("not initialised")?;
            let observed_ns = ns(&metaclaude_plugin_sdk::host::now());
            if let Some((_, metrics)) = state.metrics.as_mut() {
                let mut warnings = Vec::new();
                for f in events.iter().filter_map(finished) {
                    metrics.observe(&f, &mut warnings);
                }
                for w in warnings {
                    metaclaude_plugin_sdk::warn!("{w}");
                }
            }
            for e in events.iter().filter(|e| e.kind == LifecycleKind::Finished) {
                let Some(r) = e.result.as_ref() else {
                    continue;
                };
                let execution = execution(r);
                state.traces.exporter.add(&execution);
                if let Some(logs) = state.logs.as_mut() {
                    logs.exporter
                        .push(logs::record(&execution, &e.json, observed_ns));
                }
            }
            Ok(())
        })
    }

    fn tick(now: Datetime) -> Result<(), String> {
        STATE.with_borrow_mut(|state| {
            let state = state.as_mut().ok_or("not initialised")?;
            state.snapshot(ms(&now), false);
            state.send(ms(&now));
            Ok(())
        })
    }

    /// Before shutdown (and on request): a last snapshot of the metrics (once running),
    /// and one try to send what waits, unless a backoff holds it.
    fn flush() -> Result<(), String> {
        STATE.with_borrow_mut(|state| {
            let state = state.as_mut().ok_or("not initialised")?;
            let now_ms = ms(&metaclaude_plugin_sdk::host::now());
            state.snapshot(now_ms, true);
            state.send(now_ms);
            Ok(())
        })
    }
}

export_pusher!(Otlp);
