//! The host's own metrics about its plugin runtime, in the Prometheus text exposition
//! format (version 0.0.4): the per-plugin counters and states that `plugins list` shows,
//! so that a quarantined, disabled or restarting plugin can be alerted on like any other
//! target. Rendered from [`PluginInfo`] (what [`super::PluginHost::list`] returns), so
//! these figures and `plugins list` never disagree.
//!
//! Families (every sample labelled `plugin="NAME"`; plugin names are unique in a host):
//!
//! | family | type | meaning |
//! | --- | --- | --- |
//! | `metaclaude_plugin_info{plugin,kind,version,sandboxed}` | gauge | always 1: the plugin's kind and version, to join on |
//! | `metaclaude_plugin_up` | gauge | 1 while the plugin is running, else 0 |
//! | `metaclaude_plugin_state{plugin,state}` | gauge | 1 for the current state, 0 for the others (one-hot) |
//! | `metaclaude_plugin_events_queued_total` | counter | events offered to the plugin's queue |
//! | `metaclaude_plugin_events_delivered_total` | counter | events (alerts, for a notifier) handed to the plugin |
//! | `metaclaude_plugin_events_dropped_total` | counter | events (alerts) it never got: queue full, down, or lost to a trap |
//! | `metaclaude_plugin_queue_events` | gauge | events offered but neither delivered nor dropped yet |
//! | `metaclaude_plugin_failures_total` | counter | traps, out-of-memory and missed deadlines |
//! | `metaclaude_plugin_restarts_total` | counter | fresh instances started after a failure |
//! | `metaclaude_plugin_refused_calls_total` | counter | calls the plugin answered with an error |
//! | `metaclaude_plugin_load_seconds` | gauge | how long loading took (compile or cache, link, `init`) |
//! | `metaclaude_plugin_memory_bytes` | gauge | the live instance's linear memory (never given back; capped by `limits.memory_mb`) |
//!
//! And what a plugin that sends elsewhere (a pusher, a notifier; WIT 0.4.0 `delivery`)
//! reports, labelled `plugin` and `destination`, in the plugin's own items (`unit` on
//! `metaclaude_plugin_delivery_info`):
//!
//! | family | type | meaning |
//! | --- | --- | --- |
//! | `metaclaude_plugin_delivery_info{plugin,destination,unit}` | gauge | always 1: a destination and the unit of its figures |
//! | `metaclaude_plugin_delivery_pending_items` | gauge | items waiting to be sent |
//! | `metaclaude_plugin_delivery_sent_items_total` | counter | items the destination accepted |
//! | `metaclaude_plugin_delivery_dropped_items_total` | counter | items given up on (queue full, refused for good) |
//! | `metaclaude_plugin_delivery_failed_requests_total` | counter | requests that failed, each attempt |
//! | `metaclaude_plugin_delivery_retried_requests_total` | counter | failed requests tried again |
//! | `metaclaude_plugin_delivery_last_error_timestamp_seconds` | gauge | when a request last failed |
//! | `metaclaude_plugin_delivery_last_success_timestamp_seconds` | gauge | when one last succeeded |
//!
//! Every family is written with its `# HELP` and `# TYPE` lines even when no plugin is
//! loaded: the output keeps one shape whatever the host runs (a reader finds the family
//! and sees it empty rather than unknown), and the format allows a family without
//! samples (`promtool check metrics` accepts it). No sample carries a timestamp: the
//! node_exporter textfile collector, which reads `metaclaude batch --metrics-file`,
//! refuses them.

use metaclaude_formats::prometheus::{
    bool_value, openmetrics_body, openmetrics_to_text, Exposition, Format, Histogram, MetricType,
    EOF_LINE,
};

use super::PluginInfo;
use crate::plugin::delivery::destinations::DestinationReport;
use crate::plugin::delivery::health::{LatencySnapshot, CALL_BUCKETS};
use crate::plugin::manifest::PluginKind;
use crate::plugin::runtime::lifting::Rendered;
use crate::plugin::Health;

/// The value of the `state` label for each [`Health`], in the order they are written.
pub const STATES: [&str; 4] = ["running", "restarting", "quarantined", "disabled"];

fn state_name(health: &Health) -> &'static str {
    match health {
        Health::Running => STATES[0],
        Health::Restarting => STATES[1],
        Health::Quarantined(_) => STATES[2],
        Health::Disabled(_) => STATES[3],
    }
}

/// A per-plugin family whose one sample per plugin is `value` of its [`PluginInfo`].
struct Simple {
    name: &'static str,
    kind: MetricType,
    help: &'static str,
    value: fn(&PluginInfo) -> f64,
}

/// The counters and gauges that are one number per plugin.
const SIMPLE: [Simple; 9] = [
    Simple {
        name: "metaclaude_plugin_events_queued_total",
        kind: MetricType::Counter,
        help: "Events offered to the plugin's bounded queue (including those then dropped because it was full).",
        value: |p| p.queued as f64,
    },
    Simple {
        name: "metaclaude_plugin_events_delivered_total",
        kind: MetricType::Counter,
        help: "Events handed to the plugin (alerts, for a notifier), including those of calls it answered with an error.",
        value: |p| p.delivered as f64,
    },
    Simple {
        name: "metaclaude_plugin_events_dropped_total",
        kind: MetricType::Counter,
        help: "Events (alerts, for a notifier) the plugin never got: its queue was full, it was quarantined, disabled or restarting, or a trap lost its batch.",
        value: |p| p.dropped as f64,
    },
    Simple {
        name: "metaclaude_plugin_queue_events",
        kind: MetricType::Gauge,
        help: "Events offered to the plugin and neither delivered nor dropped yet (in its queue or its worker's batch).",
        value: |p| pending(p) as f64,
    },
    Simple {
        name: "metaclaude_plugin_failures_total",
        kind: MetricType::Counter,
        help: "Failures of the plugin: traps (panics, stack overflows), running out of memory, calls past their deadline, failed restarts.",
        value: |p| p.failures as f64,
    },
    Simple {
        name: "metaclaude_plugin_restarts_total",
        kind: MetricType::Counter,
        help: "Fresh instances of the plugin started after a failure.",
        value: |p| p.restarts as f64,
    },
    Simple {
        name: "metaclaude_plugin_refused_calls_total",
        kind: MetricType::Counter,
        help: "Calls the plugin answered with an error (the instance stays).",
        value: |p| p.refused as f64,
    },
    Simple {
        name: "metaclaude_plugin_load_seconds",
        kind: MetricType::Gauge,
        help: "How long loading the plugin took: compiling (or reading the compiled cache), linking and init.",
        value: |p| p.load_time.as_secs_f64(),
    },
    Simple {
        name: "metaclaude_plugin_memory_bytes",
        kind: MetricType::Gauge,
        help: "The linear memory of the plugin's live instance, bytes: what it grew to, which WebAssembly never gives back, up to limits.memory_mb (0 for a native plugin).",
        value: |p| p.memory_bytes as f64,
    },
];

/// Events offered to `p` and not yet delivered or dropped. Notifiers receive alerts, which
/// are not offered through the event queue, so they have none. The counters are read one
/// after the other while events flow, so the difference saturates at 0.
fn pending(p: &PluginInfo) -> u64 {
    if p.kind == PluginKind::Notifier {
        return 0;
    }
    p.queued
        .saturating_sub(p.delivered.saturating_add(p.dropped))
}

/// Writes the plugin families for `plugins` (sorted by name, for a stable output).
pub fn write_plugins(out: &mut Exposition, plugins: &[PluginInfo]) {
    let mut plugins: Vec<&PluginInfo> = plugins.iter().collect();
    plugins.sort_by(|a, b| a.name.cmp(&b.name));

    let mut f = out.family(
        "metaclaude_plugin_info",
        MetricType::Gauge,
        "A loaded plugin: its kind, version, and whether it runs sandboxed (false for a trusted native plugin). Always 1.",
    );
    for p in &plugins {
        f.sample(
            &[
                ("plugin", p.name.as_str()),
                ("kind", p.kind.as_str()),
                ("version", p.version.as_str()),
                ("sandboxed", if p.sandboxed { "true" } else { "false" }),
            ],
            1.0,
        );
    }

    let mut f = out.family(
        "metaclaude_plugin_up",
        MetricType::Gauge,
        "1 while the plugin is running; 0 while it restarts after a failure, or once it is quarantined or disabled.",
    );
    for p in &plugins {
        f.sample(
            &[("plugin", p.name.as_str())],
            bool_value(p.health == Health::Running),
        );
    }

    let mut f = out.family(
        "metaclaude_plugin_state",
        MetricType::Gauge,
        "The plugin's state, one sample per possible state: 1 for the current one (running, restarting, quarantined: too many failures, disabled: failed under failure_policy = disable), 0 for the others.",
    );
    for p in &plugins {
        let current = state_name(&p.health);
        for state in STATES {
            f.sample(
                &[("plugin", p.name.as_str()), ("state", state)],
                bool_value(state == current),
            );
        }
    }

    for family in &SIMPLE {
        let mut f = out.family(family.name, family.kind, family.help);
        for p in &plugins {
            f.sample(&[("plugin", p.name.as_str())], (family.value)(p));
        }
    }

    write_deliveries(out, &plugins);

    let mut f = out.family_with_unit(
        "metaclaude_plugin_call_duration_seconds",
        MetricType::Histogram,
        "seconds",
        "How long the calls into the plugin took (handle-batch, notify, tick, render, flush), from the host's side of the call.",
    );
    for p in &plugins {
        f.histogram(
            &[("plugin", p.name.as_str())],
            &CALL_BUCKETS,
            &call_histogram(&p.calls),
            None::<f64>,
        );
    }
}

/// A per-destination family of the delivery reports: one sample per destination of
/// every plugin that reports (none for a destination without the figure).
struct Delivery {
    name: &'static str,
    kind: MetricType,
    help: &'static str,
    value: fn(&DestinationReport) -> Option<f64>,
}

/// The delivery families, after `metaclaude_plugin_delivery_info`.
const DELIVERY: [Delivery; 7] = [
    Delivery {
        name: "metaclaude_plugin_delivery_pending_items",
        kind: MetricType::Gauge,
        help: "Items (the plugin's unit: samples, spans, alerts) waiting to be sent to the destination, in memory or on disk.",
        value: |d| Some(d.pending as f64),
    },
    Delivery {
        name: "metaclaude_plugin_delivery_sent_items_total",
        kind: MetricType::Counter,
        help: "Items the destination accepted.",
        value: |d| Some(d.sent as f64),
    },
    Delivery {
        name: "metaclaude_plugin_delivery_dropped_items_total",
        kind: MetricType::Counter,
        help: "Items given up on: the plugin's queue was full, or the destination refused them for good (HTTP 4xx other than 429).",
        value: |d| Some(d.dropped as f64),
    },
    Delivery {
        name: "metaclaude_plugin_delivery_failed_requests_total",
        kind: MetricType::Counter,
        help: "Requests to the destination that failed (unreachable, 5xx, 429, other 4xx), each attempt counted.",
        value: |d| Some(d.failed_requests as f64),
    },
    Delivery {
        name: "metaclaude_plugin_delivery_retried_requests_total",
        kind: MetricType::Counter,
        help: "Failed requests to the destination that are tried again after a backoff (unreachable, 5xx, 429).",
        value: |d| Some(d.retried_requests as f64),
    },
    Delivery {
        name: "metaclaude_plugin_delivery_last_error_timestamp_seconds",
        kind: MetricType::Gauge,
        help: "When a request to the destination last failed, Unix seconds (plugins list shows the error).",
        value: |d| d.last_error_at.map(unix_seconds),
    },
    Delivery {
        name: "metaclaude_plugin_delivery_last_success_timestamp_seconds",
        kind: MetricType::Gauge,
        help: "When the destination last accepted a request, Unix seconds.",
        value: |d| d.last_success_at.map(unix_seconds),
    },
];

fn unix_seconds(t: chrono::DateTime<chrono::Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

/// The delivery families of every plugin that reports its deliveries.
fn write_deliveries(out: &mut Exposition, plugins: &[&PluginInfo]) {
    let mut f = out.family(
        "metaclaude_plugin_delivery_info",
        MetricType::Gauge,
        "A destination a plugin sends to (a pusher, a notifier), with the unit of its delivery figures (samples, spans, alerts). Always 1.",
    );
    for p in plugins {
        for d in &p.destinations {
            f.sample(
                &[
                    ("plugin", p.name.as_str()),
                    ("destination", d.destination.as_str()),
                    ("unit", d.unit.as_str()),
                ],
                1.0,
            );
        }
    }
    for family in &DELIVERY {
        let mut f = out.family(family.name, family.kind, family.help);
        for p in plugins {
            for d in &p.destinations {
                if let Some(value) = (family.value)(d) {
                    f.sample(
                        &[
                            ("plugin", p.name.as_str()),
                            ("destination", d.destination.as_str()),
                        ],
                        value,
                    );
                }
            }
        }
    }
}

/// A plugin's call latencies (cumulative) as the writer's histogram (a count per bucket).
fn call_histogram(calls: &LatencySnapshot) -> Histogram {
    let mut counts = Vec::with_capacity(CALL_BUCKETS.len() + 1);
    let mut below = 0;
    for i in 0..CALL_BUCKETS.len() {
        let cumulative = calls.buckets.get(i).map_or(below, |(_, c)| *c);
        counts.push(cumulative - below);
        below = cumulative;
    }
    counts.push(calls.count.saturating_sub(below));
    Histogram {
        counts,
        sum: calls.sum_seconds,
    }
}

/// What every exporter plugin of `host` renders, asked in `asked` format: the format the
/// whole answer takes and each exporter's text (in load order). An exporter built against
/// WIT 0.3.0 renders the format it is asked; an older one (or a native one) renders what
/// it renders, which its text tells: OpenMetrics ends with `# EOF`. The answer is in
/// `asked` format unless OpenMetrics was asked and an exporter wrote only the text format
/// 0.0.4: then it is in 0.0.4. `left_out` hears of an exporter that could not render.
fn exporter_texts(
    host: &super::PluginHost,
    asked: Format,
    left_out: &mut impl FnMut(&str, &str),
) -> (Format, Vec<(String, Rendered)>) {
    let mut exported = Vec::new();
    for p in host
        .list()
        .iter()
        .filter(|p| p.kind == PluginKind::Exporter)
    {
        match host.render(&p.name, asked) {
            Ok(text) => exported.push((p.name.clone(), text)),
            Err(e) => left_out(&p.name, &e),
        }
    }
    let speaks_openmetrics = |text: &str| text.is_empty() || openmetrics_body(text).is_some();
    let format = if exported.iter().all(|(_, text)| speaks_openmetrics(text)) {
        asked
    } else {
        Format::Text
    };
    (format, exported)
}

/// Appends the exporters' `texts` to `out` as families in `format` (no `# EOF`: the caller
/// ends the exposition). A text already in `format` is copied as it is (an OpenMetrics
/// one without its `# EOF`); an OpenMetrics text in a 0.0.4 answer (from an exporter that
/// is not told the format, or beside one that writes only 0.0.4) is converted down.
/// `left_out` hears of an exporter whose text is invalid OpenMetrics (it is left out).
fn append_exporter_families(
    out: &mut String,
    format: Format,
    texts: &[(String, Rendered)],
    left_out: &mut impl FnMut(&str, &str),
) {
    out.reserve(texts.iter().map(|(_, text)| text.len() + 1).sum());
    for (name, text) in texts {
        let converted;
        let part = match (format, openmetrics_body(text)) {
            (Format::OpenMetrics, body) => body.unwrap_or(""),
            (Format::Text, None) => text.as_str(),
            (Format::Text, Some(_)) => match openmetrics_to_text(text) {
                Ok(text) => {
                    converted = text;
                    &converted
                }
                Err(e) => {
                    left_out(name, &format!("rendered invalid OpenMetrics: {e}"));
                    continue;
                }
            },
        };
        out.push_str(part);
        if !part.is_empty() && !part.ends_with('\n') {
            out.push('\n');
        }
    }
}

/// What every exporter plugin of `host` renders, as families asked in `asked` format
/// (see `exporter_texts`): the format they are in, and the families (no `# EOF`: the
/// caller ends the exposition). `left_out` hears of an exporter that could not render, or
/// rendered invalid OpenMetrics (it is left out).
pub fn exporter_families(
    host: &super::PluginHost,
    asked: Format,
    mut left_out: impl FnMut(&str, &str),
) -> (Format, String) {
    let (format, texts) = exporter_texts(host, asked, &mut left_out);
    let mut families = String::new();
    append_exporter_families(&mut families, format, &texts, &mut left_out);
    (format, families)
}

/// One exposition: the host's plugin families, `more` families (a server's own), then
/// what every exporter plugin of `host` renders (`exporter_texts`, whose format the
/// whole exposition takes), each copied once into the answer.
pub fn exposition(
    host: Option<&super::PluginHost>,
    asked: Format,
    more: impl FnOnce(&mut Exposition),
    mut left_out: impl FnMut(&str, &str),
) -> (Format, String) {
    let (format, texts) = match host {
        Some(host) => exporter_texts(host, asked, &mut left_out),
        None => (asked, Vec::new()),
    };
    // Listed after the renders: a render first delivers what the exporter's queue held,
    // so the plugin counters agree with what the exporters just rendered.
    let plugins = host.map(|h| h.list()).unwrap_or_default();
    let mut out = Exposition::with_format(format);
    write_plugins(&mut out, &plugins);
    more(&mut out);
    let mut text = out.finish_families();
    append_exporter_families(&mut text, format, &texts, &mut left_out);
    if format == Format::OpenMetrics {
        text.push_str(EOF_LINE);
        text.push('\n');
    }
    (format, text)
}

/// The plugin families alone, as a complete text.
pub fn render(plugins: &[PluginInfo]) -> String {
    let mut out = Exposition::new();
    write_plugins(&mut out, plugins);
    out.finish()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::plugin::runtime::engine::LoadSource;

    fn info(name: &str, health: Health) -> PluginInfo {
        PluginInfo {
            name: name.into(),
            version: "1.0.0".into(),
            kind: PluginKind::Sink,
            folder: PathBuf::from("/plugins").join(name),
            sandboxed: true,
            capabilities: "none".into(),
            health,
            queued: 10,
            delivered: 6,
            dropped: 3,
            failures: 2,
            restarts: 1,
            refused: 4,
            last_error: None,
            load: LoadSource::Cache,
            load_time: Duration::from_millis(1500),
            wit: None,
            notes: Vec::new(),
            memory_bytes: 3 << 20,
            calls: Default::default(),
            destinations: Vec::new(),
            destinations_left_out: 0,
        }
    }

    fn lines_of<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| {
                l.strip_prefix(family)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            })
            .collect()
    }

    #[test]
    fn state_is_one_hot_over_every_state() {
        let text = render(&[
            info("a", Health::Quarantined("3 failures".into())),
            info("b", Health::Running),
            info("c", Health::Restarting),
            info("d", Health::Disabled("trap".into())),
        ]);
        let state = lines_of(&text, "metaclaude_plugin_state");
        assert_eq!(state.len(), 16, "{text}");
        for (plugin, current) in [
            ("a", "quarantined"),
            ("b", "running"),
            ("c", "restarting"),
            ("d", "disabled"),
        ] {
            for s in STATES {
                let line = format!(
                    "metaclaude_plugin_state{{plugin=\"{plugin}\",state=\"{s}\"}} {}",
                    u8::from(s == current)
                );
                assert!(state.contains(&line.as_str()), "missing {line}:\n{text}");
            }
        }
        assert_eq!(
            lines_of(&text, "metaclaude_plugin_up"),
            [
                "metaclaude_plugin_up{plugin=\"a\"} 0",
                "metaclaude_plugin_up{plugin=\"b\"} 1",
                "metaclaude_plugin_up{plugin=\"c\"} 0",
                "metaclaude_plugin_up{plugin=\"d\"} 0",
            ]
        );
    }

    #[test]
    fn counters_come_from_the_plugin_list() {
        let mut notifier = info("n", Health::Running);
        notifier.kind = PluginKind::Notifier;
        notifier.queued = 0;
        // Given in load order, written sorted by name.
        let text = render(&[info("s", Health::Running), notifier]);
        for line in [
            "metaclaude_plugin_info{plugin=\"n\",kind=\"notifier\",version=\"1.0.0\",sandboxed=\"true\"} 1",
            "metaclaude_plugin_events_queued_total{plugin=\"s\"} 10",
            "metaclaude_plugin_events_delivered_total{plugin=\"s\"} 6",
            "metaclaude_plugin_events_dropped_total{plugin=\"s\"} 3",
            "metaclaude_plugin_queue_events{plugin=\"s\"} 1",
            "metaclaude_plugin_queue_events{plugin=\"n\"} 0",
            "metaclaude_plugin_failures_total{plugin=\"s\"} 2",
            "metaclaude_plugin_restarts_total{plugin=\"s\"} 1",
            "metaclaude_plugin_refused_calls_total{plugin=\"s\"} 4",
            "metaclaude_plugin_load_seconds{plugin=\"s\"} 1.5",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        let up = lines_of(&text, "metaclaude_plugin_up");
        assert!(up[0].contains("\"n\"") && up[1].contains("\"s\""), "{up:?}");
    }

    #[test]
    fn delivery_reports_are_families_by_destination() {
        let mut pusher = info("rw", Health::Running);
        pusher.kind = PluginKind::Pusher;
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 500_000_000).unwrap();
        pusher.destinations = vec![DestinationReport {
            destination: "http://127.0.0.1:9090".into(),
            unit: "samples".into(),
            pending: 120,
            sent: 900,
            dropped: 7,
            failed_requests: 3,
            retried_requests: 2,
            last_error: Some("HTTP 400: out of order sample".into()),
            last_error_at: Some(at),
            last_success_at: None,
        }];
        let text = render(&[pusher, info("quiet", Health::Running)]);
        let labels = r#"{plugin="rw",destination="http://127.0.0.1:9090"}"#;
        for line in [
            r#"metaclaude_plugin_delivery_info{plugin="rw",destination="http://127.0.0.1:9090",unit="samples"} 1"#.to_string(),
            format!("metaclaude_plugin_delivery_pending_items{labels} 120"),
            format!("metaclaude_plugin_delivery_sent_items_total{labels} 900"),
            format!("metaclaude_plugin_delivery_dropped_items_total{labels} 7"),
            format!("metaclaude_plugin_delivery_failed_requests_total{labels} 3"),
            format!("metaclaude_plugin_delivery_retried_requests_total{labels} 2"),
            format!("metaclaude_plugin_delivery_last_error_timestamp_seconds{labels} 1700000000.5"),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        assert!(lines_of(
            &text,
            "metaclaude_plugin_delivery_last_success_timestamp_seconds"
        )
        .is_empty());
        assert!(!text.contains("plugin=\"quiet\",destination"), "{text}");
    }

    /// With no plugin, every family is still announced, with no sample.
    #[test]
    fn every_family_has_help_and_type_even_without_plugins() {
        let text = render(&[]);
        // info, up, state, the simple ones, the deliveries, the call-latency histogram.
        let families = 3 + SIMPLE.len() + 1 + DELIVERY.len() + 1;
        assert_eq!(text.lines().count(), families * 2, "{text}");
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        assert_eq!(types.len(), families);
        for t in types {
            let name = t.split(' ').nth(2).unwrap();
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            assert_eq!(
                t.ends_with(" counter"),
                name.ends_with("_total"),
                "counters, and only counters, end in _total: {t}"
            );
        }
    }
}
