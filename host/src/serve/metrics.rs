//! `GET /metrics`: one Prometheus text exposition (0.0.4) of the host's own metrics (its
//! plugins, from `plugin::host_metrics`; the server's), followed by what each exporter
//! plugin renders. An exporter that cannot render now is left out of that scrape and
//! counted in `metaclaude_server_exporter_render_failures_total`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use metaclaude_formats::prometheus::{bool_value, Exposition, MetricType};

use super::ServerState;
use crate::plugin::host_metrics;
use crate::plugin::manifest::PluginKind;

/// The content type of the text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn handler(State(state): State<Arc<ServerState>>) -> Response {
    let text = tokio::task::spawn_blocking(move || render(&state))
        .await
        .unwrap_or_default();
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT))],
        text,
    )
        .into_response()
}

fn render(state: &ServerState) -> String {
    let plugins = state.host.plugins().map(|p| p.list()).unwrap_or_default();
    let mut out = Exposition::new();
    host_metrics::write_plugins(&mut out, &plugins);
    let mut exported = String::new();
    if let Some(host) = state.host.plugins() {
        for p in plugins.iter().filter(|p| p.kind == PluginKind::Exporter) {
            match host.render(&p.name) {
                Ok(text) => {
                    exported.push_str(&text);
                    if !text.is_empty() && !text.ends_with('\n') {
                        exported.push('\n');
                    }
                }
                Err(e) => {
                    state
                        .counters
                        .exporter_render_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(plugin = %p.name, "exporter did not render: {e}");
                }
            }
        }
    }
    write_server(&mut out, state);
    let mut text = out.finish();
    text.push_str(&exported);
    text
}

fn write_server(out: &mut Exposition, state: &ServerState) {
    let c = &state.counters;
    let registry = state.host.service().registry();
    out.family(
        "metaclaude_server_up",
        MetricType::Gauge,
        "1 while the server runs; 0 once it is stopping.",
    )
    .sample(&[], bool_value(!state.is_stopping()));
    out.family(
        "metaclaude_server_uptime_seconds",
        MetricType::Gauge,
        "Seconds since the server started.",
    )
    .sample(&[], state.started.elapsed().as_secs_f64());
    out.family(
        "metaclaude_server_executions_running",
        MetricType::Gauge,
        "Executions queued or running now.",
    )
    .sample(&[], state.monitor.running().len() as f64);
    out.family(
        "metaclaude_server_executions_rejected_total",
        MetricType::Counter,
        "Execution requests refused with 429 because --concurrency plus --queue were taken.",
    )
    .sample(&[], c.rejected_busy.load(Ordering::Relaxed) as f64);
    out.family(
        "metaclaude_server_registry_scripts",
        MetricType::Gauge,
        "Scripts in the registry in force.",
    )
    .sample(&[], registry.scripts.len() as f64);
    out.family(
        "metaclaude_server_registry_reloads_total",
        MetricType::Counter,
        "Registry reloads, by result (a failed one leaves the previous registry in force).",
    )
    .sample(
        &[("result", "ok")],
        c.registry_reloads.load(Ordering::Relaxed) as f64,
    )
    .sample(
        &[("result", "failed")],
        c.registry_reload_failures.load(Ordering::Relaxed) as f64,
    );
    out.family(
        "metaclaude_server_websocket_clients",
        MetricType::Gauge,
        "Live-feed clients connected now.",
    )
    .sample(&[], state.ws_clients.load(Ordering::Relaxed) as f64);
    out.family(
        "metaclaude_server_websocket_resyncs_total",
        MetricType::Counter,
        "Fresh snapshots sent to live-feed clients that fell behind.",
    )
    .sample(&[], c.feed_snapshots_for_lag.load(Ordering::Relaxed) as f64);
    out.family(
        "metaclaude_server_websocket_cut_off_total",
        MetricType::Counter,
        "Live-feed clients cut off because they did not take a message in time.",
    )
    .sample(&[], c.feed_clients_cut_off.load(Ordering::Relaxed) as f64);
    out.family(
        "metaclaude_server_exporter_render_failures_total",
        MetricType::Counter,
        "Renders of exporter plugins that failed (the exporter was left out of that scrape).",
    )
    .sample(
        &[],
        c.exporter_render_failures.load(Ordering::Relaxed) as f64,
    );
}
