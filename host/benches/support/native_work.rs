//! The default set's own work without the sandbox: the same crates' logic the components
//! run (`log-sink`, the Prometheus and StatsD exporters, the alert rules), compiled for
//! the host and called on this thread with the events a host delivers, in batches as
//! their glue takes them. What it costs is what the set would cost if crossing into
//! WebAssembly and running there cost nothing: the floor under the set's CPU per event.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use metaclaude::model::ExecutionEvent;

use super::support::{finished, median, thread_cpu_time};

/// Events per call, as the native no-op sink of the same benchmark takes them.
const BATCH: usize = 256;

/// One plugin's work natively: its name and CPU per event (median of `rounds`).
pub struct Work {
    pub name: &'static str,
    pub cpu_per_event: Duration,
}

/// The host's JSON of each event, natively, CPU per event (median of `rounds`): what the
/// host pays once an event when some plugin takes the JSON (the log sink; the native
/// no-op too, which takes every event as JSON), and not when none does.
pub fn json_per_event(events: &[ExecutionEvent], rounds: usize) -> Duration {
    median_per_event(events.len(), rounds, &mut || {
        for e in events {
            std::hint::black_box(serde_json::to_string(e).unwrap());
        }
    })
}

fn median_per_event(n: usize, rounds: usize, work: &mut dyn FnMut()) -> Duration {
    let xs: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = thread_cpu_time();
            work();
            (thread_cpu_time() - start) / n as u32
        })
        .collect();
    median(xs)
}

/// The four plugins' work over `events`, each alone, `rounds` times: the log sink
/// writing into `dir`, the StatsD exporter sending to `statsd_port` on loopback.
pub fn measure(
    events: &[ExecutionEvent],
    dir: &Path,
    statsd_port: u16,
    rounds: usize,
) -> Vec<Work> {
    // The host's JSON of each event, which it writes once for every plugin that takes it
    // (and for the native no-op): not the plugins' work.
    let json: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    let per_event = |work: &mut dyn FnMut()| median_per_event(events.len(), rounds, work);
    let now = || Utc::now().timestamp_micros() as f64 / 1e6;

    let log_dir = dir.join("native-log");
    std::fs::create_dir_all(&log_dir).unwrap();
    let mut writer =
        log_sink::writer::LogWriter::open(&log_dir, Default::default(), Utc::now()).unwrap();
    let log_sink = per_event(&mut || {
        for (batch, texts) in events.chunks(BATCH).zip(json.chunks(BATCH)) {
            for (e, text) in batch.iter().zip(texts) {
                let r = e.result.as_ref().unwrap();
                let at: DateTime<Utc> = r.finished_at;
                let category = r.category().map(|c| c.as_str());
                let line =
                    log_sink::finished_line(text, at, r.success, r.retries, category).unwrap();
                writer.append_with(at, |out| line.write(out));
            }
            writer.flush(false).unwrap();
        }
    });

    let mut prometheus = prometheus_exporter::families::Exporter::new(&Default::default(), now());
    let prometheus_exporter = per_event(&mut || {
        let mut warnings = Vec::new();
        for batch in events.chunks(BATCH) {
            for e in batch {
                prometheus.observe(&finished(e), &mut warnings);
            }
            warnings.clear();
        }
    });

    let config = statsd_exporter::config::Config {
        port: statsd_port,
        ..Default::default()
    };
    let mut statsd = statsd_exporter::lines::Exporter::new(&config, 0x9E37_79B9_7F4A_7C15);
    let mut sender = statsd_exporter::send::Sender::new(config.target());
    let mut lines = statsd_exporter::format::Lines::default();
    let statsd_exporter = per_event(&mut || {
        for batch in events.chunks(BATCH) {
            lines.clear();
            let mut warnings = Vec::new();
            for e in batch {
                statsd.lines(&finished(e), &mut lines, &mut warnings);
            }
            let (datagrams, _) =
                statsd_exporter::format::pack(lines.iter(), config.max_payload_bytes);
            sender.send(&datagrams);
        }
    });

    let mut rules = alert_rules::engine::AlertRules::new(Default::default());
    let alert_rules = per_event(&mut || {
        let mut warnings = Vec::new();
        for batch in events.chunks(BATCH) {
            let at = alert_rules::time::Time::from_seconds(now());
            for e in batch {
                rules.observe(&finished(e), at, &mut warnings);
            }
            warnings.clear();
            std::hint::black_box(rules.evaluate(at));
        }
    });

    vec![
        Work {
            name: "alert-rules",
            cpu_per_event: alert_rules,
        },
        Work {
            name: "log-sink",
            cpu_per_event: log_sink,
        },
        Work {
            name: "prometheus-exporter",
            cpu_per_event: prometheus_exporter,
        },
        Work {
            name: "statsd-exporter",
            cpu_per_event: statsd_exporter,
        },
    ]
}
