//! `GET /metrics`: one Prometheus exposition of the host's own metrics (its plugins, from
//! `plugin::host_metrics`; the server's), followed by what each exporter plugin renders.
//! An exporter that cannot render now is left out of that scrape and counted in
//! `metaclaude_server_exporter_render_failures_total`.
//!
//! The format is negotiated from the scraper's `Accept` header (q-values and all, as
//! Prometheus sends `application/openmetrics-text;version=1.0.0,...,text/plain;
//! version=0.0.4;q=0.5,*/*;q=0.1`): OpenMetrics 1.0.0 when the header names it and
//! prefers it to the text format, else the text format 0.0.4. Exporters render
//! OpenMetrics (ending with `# EOF`); for a text-format answer each is converted down
//! (`metaclaude_formats::prometheus::openmetrics_to_text`). An exporter whose text does
//! not end with `# EOF` speaks the text format already: then the whole answer is the
//! text format, whatever was asked. An OpenMetrics answer has the host's families in
//! OpenMetrics too, and one `# EOF` at the end.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use metaclaude_formats::prometheus::{bool_value, Exposition, Format, MetricType};

use chrono::{DateTime, Utc};

use super::views::{script_state, SCRIPT_STATES};
use super::ServerState;
use crate::expectations::ScriptStatus;
use crate::model::Alert;
use crate::plugin::host_metrics;
use crate::schedules::{MissReason, RunResult, ScheduleStatus};

pub async fn handler(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    let accept: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let asked = negotiate(&accept.join(","));
    let (format, text) = tokio::task::spawn_blocking(move || render(&state, asked))
        .await
        .unwrap_or_default();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (header::VARY, HeaderValue::from_static("accept")),
        ],
        text,
    )
        .into_response()
}

/// How well one media range of an `Accept` header matches an offer: `None` if it does
/// not, else its specificity (0 `*/*`, 1 `type/*`, 2 `type/subtype`, 3 with the
/// offer's `version`) and its q-value.
fn range_match(range: &str, (ty, subtype, version): (&str, &str, &str)) -> Option<(u8, f64)> {
    let mut parts = range.split(';').map(str::trim);
    let (rtype, rsub) = parts.next()?.split_once('/')?;
    let (rtype, rsub) = (rtype.trim(), rsub.trim());
    let mut q = 1.0;
    let mut specificity = match (rtype, rsub) {
        ("*", "*") => 0,
        (t, "*") if t.eq_ignore_ascii_case(ty) => 1,
        (t, s) if t.eq_ignore_ascii_case(ty) && s.eq_ignore_ascii_case(subtype) => 2,
        _ => return None,
    };
    for param in parts {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "q" => {
                q = value
                    .parse::<f64>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))?
            }
            "version" if specificity == 2 => {
                if value != version {
                    return None;
                }
                specificity = 3;
            }
            _ => {}
        }
    }
    Some((specificity, q))
}

/// The q-value `accept` gives an offer (that of its most specific matching range, 0 if
/// none matches), and whether a range names the offer's type itself.
fn quality(accept: &str, offer: (&str, &str, &str)) -> (f64, bool) {
    let best = accept
        .split(',')
        .filter_map(|range| range_match(range, offer))
        .fold(None, |best: Option<(u8, f64)>, (s, q)| match best {
            Some((bs, bq)) if bs > s || (bs == s && bq >= q) => Some((bs, bq)),
            _ => Some((s, q)),
        });
    best.map_or((0.0, false), |(s, q)| (q, s >= 2))
}

/// The format an `Accept` header asks for: OpenMetrics 1.0.0 when it names it and gives
/// it a q-value above 0 and at least the text format's (a tie with only a wildcard, as
/// `*/*` or no header at all, is the text format); else the text format 0.0.4.
pub fn negotiate(accept: &str) -> Format {
    let (om, named) = quality(accept, ("application", "openmetrics-text", "1.0.0"));
    let (text, _) = quality(accept, ("text", "plain", "0.0.4"));
    if om > text || (om > 0.0 && om == text && named) {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

fn render(state: &ServerState, asked: Format) -> (Format, String) {
    host_metrics::exposition(
        state.host.plugins().map(|p| p.as_ref()),
        asked,
        |out| write_server(out, state),
        |plugin, why| {
            state
                .counters
                .exporter_render_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(plugin, "exporter left out of /metrics: {why}");
        },
    )
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
    let gate = &state.gate;
    out.family(
        "metaclaude_server_connections_open",
        MetricType::Gauge,
        "Connections open now (idle ones and live feeds included).",
    )
    .sample(&[], gate.open() as f64);
    out.family(
        "metaclaude_server_requests_in_flight",
        MetricType::Gauge,
        "Requests being answered now (each holds one of --max-connections).",
    )
    .sample(&[], gate.in_flight() as f64);
    out.family(
        "metaclaude_server_connections_refused_total",
        MetricType::Counter,
        "Connections answered 429 and closed because their client address had --max-connections-per-peer open.",
    )
    .sample(&[], gate.refused_per_peer.load(Ordering::Relaxed) as f64);
    out.family(
        "metaclaude_server_header_timeouts_total",
        MetricType::Counter,
        "Connections closed because a request head they had begun did not come whole within the header timeout (idle ones closed after it are not counted).",
    )
    .sample(&[], gate.header_timeouts.load(Ordering::Relaxed) as f64);
    out.family(
        "metaclaude_server_requests_busy_total",
        MetricType::Counter,
        "Requests answered 503 because no --max-connections slot came free in time.",
    )
    .sample(&[], gate.busy.load(Ordering::Relaxed) as f64);
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
    if let Some(watch) = state.host.script_watch() {
        let active = state
            .host
            .plugins()
            .map(|p| p.active_alerts())
            .unwrap_or_default();
        write_scripts(out, &watch.statuses(), &active);
    }
    write_schedules(out, &state.schedules.lock().unwrap().statuses());
}

/// The families of the scheduled scripts: runs ended by result, slots missed by reason
/// (both since the server started), and when the next run is due. The scripts come from
/// the registry, so the operator bounds the series.
fn write_schedules(out: &mut Exposition, statuses: &[ScheduleStatus]) {
    let mut family = out.family(
        "metaclaude_schedule_runs_total",
        MetricType::Counter,
        "Runs the server started on a script's run_schedule that ended, by result (success, failure).",
    );
    for s in statuses {
        for result in RunResult::ALL {
            let n = match result {
                RunResult::Success => s.runs.success,
                RunResult::Failure => s.runs.failure,
            };
            family.sample(
                &[("script", s.script.as_str()), ("result", result.as_str())],
                n as f64,
            );
        }
    }
    let mut family = out.family(
        "metaclaude_schedule_missed_runs_total",
        MetricType::Counter,
        "Slots of a script's run_schedule not run, by reason: host_down (the server was down or not looking), overlap (the previous run held the slot), busy (the server was full).",
    );
    for s in statuses {
        for reason in MissReason::ALL {
            family.sample(
                &[("script", s.script.as_str()), ("reason", reason.as_str())],
                s.missed.get(reason) as f64,
            );
        }
    }
    let mut family = out.family(
        "metaclaude_schedule_next_run_timestamp_seconds",
        MetricType::Gauge,
        "When the next run of each scheduled script is due (its slot plus its jitter), Unix seconds.",
    );
    for s in statuses {
        if let Some(t) = s.next_run {
            family.sample(
                &[("script", s.script.as_str())],
                t.timestamp_millis() as f64 / 1000.0,
            );
        }
    }
}

/// The families of the scripts with expectations: the state as a set of series, one per
/// state with 1 for the current one (Prometheus' way for an enum), the last success and
/// the next expected time as Unix timestamps (left out while unknown), and the missed
/// windows. Scripts come from the registry, so their number is the operator's.
fn write_scripts(out: &mut Exposition, statuses: &[ScriptStatus], active: &[Alert]) {
    let labels = |s: &ScriptStatus| {
        [
            ("script", s.script.clone()),
            ("specialist", s.specialist.clone().unwrap_or_default()),
        ]
    };
    let mut family = out.family(
        "metaclaude_script_state",
        MetricType::Gauge,
        "The state of each script with expectations: 1 for the one it is in (new, ok, late, missed, overdue, failing, too_short, or silenced: in one of the four that alert, its alerts muted), 0 for the others.",
    );
    for s in statuses {
        let [script, specialist] = labels(s);
        let shown = script_state(s, active);
        for state in SCRIPT_STATES {
            family.sample(
                &[
                    (script.0, script.1.as_str()),
                    (specialist.0, specialist.1.as_str()),
                    ("state", state),
                ],
                bool_value(shown == state),
            );
        }
    }
    for (name, help, value) in [
        (
            "metaclaude_script_last_success_timestamp_seconds",
            "When each script with expectations last succeeded (since the server started watching), Unix seconds.",
            (|s: &ScriptStatus| s.last_success) as fn(&ScriptStatus) -> Option<DateTime<Utc>>,
        ),
        (
            "metaclaude_script_next_expected_timestamp_seconds",
            "When each script with a cadence (every, schedule) is next due to succeed, Unix seconds.",
            |s: &ScriptStatus| s.next_expected,
        ),
    ] {
        let mut family = out.family(name, MetricType::Gauge, help);
        for s in statuses {
            if let Some(t) = value(s) {
                let [script, specialist] = labels(s);
                family.sample(
                    &[
                        (script.0, script.1.as_str()),
                        (specialist.0, specialist.1.as_str()),
                    ],
                    t.timestamp_millis() as f64 / 1000.0,
                );
            }
        }
    }
    let mut family = out.family(
        "metaclaude_script_missed_runs_total",
        MetricType::Counter,
        "Windows in which a script with a cadence did not succeed before its grace ended.",
    );
    for s in statuses {
        let [script, specialist] = labels(s);
        family.sample(
            &[
                (script.0, script.1.as_str()),
                (specialist.0, specialist.1.as_str()),
            ],
            s.missed_total as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_header_decides_with_its_q_values() {
        for (accept, expect) in [
            // Prometheus 2.x and 3.x.
            (
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                Format::OpenMetrics,
            ),
            (
                "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
                Format::OpenMetrics,
            ),
            ("application/openmetrics-text", Format::OpenMetrics),
            (
                "Application/OpenMetrics-Text; Version=\"1.0.0\"; charset=utf-8",
                Format::OpenMetrics,
            ),
            // A wildcard alone, curl's default, a browser, no header: the text format.
            ("*/*", Format::Text),
            ("", Format::Text),
            (
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                Format::Text,
            ),
            ("text/plain", Format::Text),
            ("text/plain;version=0.0.4", Format::Text),
            // Preferences by q-value, the most specific range deciding.
            (
                "application/openmetrics-text;q=0.5,text/plain",
                Format::Text,
            ),
            (
                "text/plain;q=0.4,application/openmetrics-text;q=0.5",
                Format::OpenMetrics,
            ),
            ("application/openmetrics-text;q=0,*/*", Format::Text),
            ("text/plain;q=0,*/*", Format::OpenMetrics),
            ("application/*", Format::OpenMetrics),
            // Another OpenMetrics version is not what is served.
            ("application/openmetrics-text;version=0.0.1", Format::Text),
            ("application/openmetrics-text;version=2.0.0,*/*;q=0.1", Format::Text),
            // A q-value that is not one makes its range count for nothing.
            ("application/openmetrics-text;q=high", Format::Text),
            ("application/openmetrics-text;q=1.5", Format::Text),
            ("garbage, ;;, /", Format::Text),
        ] {
            assert_eq!(negotiate(accept), expect, "{accept}");
        }
    }
}
