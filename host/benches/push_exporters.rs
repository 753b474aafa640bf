//! The push exporters of `plugins-available/` (remote write, OTLP) beside the default set,
//! against the default set alone, in one run, each figure against a baseline measured in
//! the same run:
//!
//! 1. finished events per second through the default set, and the host's CPU time per
//!    finished event, with the remote write exporter (pushing every second), the OTLP
//!    exporter (traces, logs and metrics at its defaults), and both, each to its own
//!    receiver on loopback (which reads each request and answers 204);
//! 2. what goes on the wire for each: requests, bytes of the compressed bodies and of
//!    whole requests (request line and headers included); for remote write per sample,
//!    per snapshot of every series, and per execution at a steady rate; for OTLP per
//!    execution (its spans and its log record) and per metrics snapshot (sent every
//!    second here).
//!
//! Needs the default set and the opt-in plugins installed: `cargo xtask build-plugins --all`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use metaclaude::model::{ExecutionEvent, ExecutionResult};
use metaclaude::EventSink;

mod support;
use support::{deliver, load_set, Rate};

fn exe_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_metaclaude"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A finished execution of one of 3 scripts for one of 3 specialists (9 label sets), one
/// in ten failed, with 1 KiB of stdout.
fn event(i: u64) -> ExecutionEvent {
    let script = ["validate_api_schema", "build_docs", "lint"][i as usize % 3];
    let mut r = ExecutionResult::new(format!("01BENCH{i:019}"), script, Utc::now());
    r.specialist = Some(["api-ui-designer", "ops", "qa"][(i / 3) as usize % 3].into());
    r.success = !i.is_multiple_of(10);
    r.exit_code = Some(if r.success { 0 } else { 1 });
    r.stdout = "x".repeat(1023) + "\n";
    r.finished_at = r.started_at + chrono::Duration::milliseconds(2 + (i % 97) as i64);
    r.resource_usage.peak_memory_mb = 3.0 + (i % 13) as f64;
    r.resource_usage.cpu_time_seconds = 0.001;
    ExecutionEvent::finished(r)
}

/// What the receiver counted.
#[derive(Default)]
struct Wire {
    requests: AtomicU64,
    body_bytes: AtomicU64,
    wire_bytes: AtomicU64,
    /// Of those, the requests to an OTLP `/v1/metrics`, and their bodies.
    metrics_requests: AtomicU64,
    metrics_body_bytes: AtomicU64,
}

/// A remote write receiver on loopback: reads each request whole, answers 204.
fn receiver() -> (u16, Arc<Wire>, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let wire = Arc::new(Wire::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (counted, done) = (wire.clone(), stop.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if done.load(Ordering::Relaxed) {
                return;
            }
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut head, mut length) = (0u64, 0usize);
            let mut metrics = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if head == 0 {
                    metrics = line.contains(" /v1/metrics ");
                }
                head += line.len() as u64;
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            counted.requests.fetch_add(1, Ordering::Relaxed);
            if metrics {
                counted.metrics_requests.fetch_add(1, Ordering::Relaxed);
                counted
                    .metrics_body_bytes
                    .fetch_add(length as u64, Ordering::Relaxed);
            }
            counted
                .body_bytes
                .fetch_add(length as u64, Ordering::Relaxed);
            counted
                .wire_bytes
                .fetch_add(head + length as u64, Ordering::Relaxed);
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        }
    });
    (port, wire, stop)
}

/// Copies `from`'s plugin folders into `into`, each manifest through `edit`.
fn copy_folders(from: &Path, names: &[&str], into: &Path, edit: &dyn Fn(String) -> String) {
    for name in names {
        let target = into.join(name);
        std::fs::create_dir_all(&target).unwrap();
        for file in std::fs::read_dir(from.join(name)).unwrap() {
            let file = file.unwrap().path();
            let to = target.join(file.file_name().unwrap());
            if file.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&file).unwrap();
                std::fs::write(to, edit(text)).unwrap();
            } else {
                std::fs::copy(&file, to).unwrap();
            }
        }
    }
}

/// `key = ...` lines of a manifest replaced.
fn set(text: String, edits: &[(&str, String)]) -> String {
    text.lines()
        .map(|l| {
            let key = l.split('=').next().unwrap_or("").trim();
            match edits.iter().find(|(k, _)| *k == key && !l.starts_with('#')) {
                Some((k, v)) => format!("{k} = {v}"),
                None => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// StatsD to the discard port of loopback.
const DISCARD: u16 = 9;

fn main() {
    // The allocator as the binary sets it (`main`), so that the figures are the binary's.
    metaclaude::memory::tune_allocator();
    let installed = exe_dir();
    let default_set = installed.join("plugins");
    let available = installed.join("plugins-available");
    for plugin in ["remote-write-exporter", "otlp-exporter"] {
        assert!(
            available.join(plugin).join("plugin.toml").is_file(),
            "{} is missing: run `cargo xtask build-plugins --all` first",
            available.join(plugin).display()
        );
    }
    let mut names: Vec<String> = std::fs::read_dir(&default_set)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    println!(
        "the default set ({}): {}",
        default_set.display(),
        names.join(", ")
    );
    let tmp = tempfile::tempdir().unwrap();
    let (port, wire, stop) = receiver();
    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    // The OTLP receiver of the throughput rounds (the bytes are counted apart below).
    let (sink_port, _, sink_stop) = receiver();
    let endpoint = format!("http://127.0.0.1:{sink_port}");

    // Every event processed and counted: the exporters block instead of dropping.
    let blocking = |text: String| text.replace("on_full = \"drop_newest\"", "on_full = \"block\"");
    let pushing = |text: String| {
        set(
            blocking(text),
            &[
                ("url", format!("\"{url}\"")),
                ("http", format!("[\"{url}\"]")),
                ("interval_s", "1".into()),
                ("spool_dir", "\"\"".into()),
                ("dirs", "[]".into()),
            ],
        )
    };
    let tracing = |text: String| {
        set(
            blocking(text),
            &[
                ("endpoint", format!("\"{endpoint}\"")),
                ("http", format!("[\"{endpoint}/v1/*\"]")),
            ],
        )
    };
    let set_with = |name: &str, remote_write: bool, otlp: bool| {
        let dir = tmp.path().join(name);
        copy_folders(&default_set, &names, &dir, &blocking);
        if remote_write {
            copy_folders(&available, &["remote-write-exporter"], &dir, &pushing);
        }
        if otlp {
            copy_folders(&available, &["otlp-exporter"], &dir, &tracing);
        }
        dir
    };
    let hosts = [
        ("default set", set_with("default", false, false)),
        (
            "default set + remote write",
            set_with("with-rw", true, false),
        ),
        ("default set + OTLP", set_with("with-otlp", false, true)),
        ("default set + both", set_with("with-both", true, true)),
    ]
    .map(|(name, dir)| (name, load_set(&dir, tmp.path(), DISCARD)));

    let n = 20_000u64;
    let events: Vec<ExecutionEvent> = (0..n).map(event).collect();
    let mut rates: [Vec<Rate>; 4] = Default::default();
    // Interleaved rounds, so that drift in the machine's load hits each alike.
    for _ in 0..5 {
        for (i, (_, host)) in hosts.iter().enumerate() {
            rates[i].push(deliver(&events, host));
        }
    }
    println!(
        "{n} finished events of 1 KiB stdout each, 9 label sets (median of 5 interleaved rounds):"
    );
    let mut medians = Vec::new();
    for ((name, _), mut r) in hosts.iter().zip(rates) {
        r.sort_by(|a, b| a.events_per_s.total_cmp(&b.events_per_s));
        let m = r.swap_remove(r.len() / 2);
        println!(
            "  {name:<28} {:>10.0} events/s   CPU {:>6.1} µs/event",
            m.events_per_s,
            m.cpu_per_event.as_secs_f64() * 1e6
        );
        medians.push(m);
    }
    for (i, what) in [(1, "remote write"), (2, "OTLP"), (3, "both")] {
        println!(
            "  with {what}: {:.2}x the events/s, {:+.1} µs CPU per event",
            medians[i].events_per_s / medians[0].events_per_s,
            (medians[i].cpu_per_event.as_secs_f64() - medians[0].cpu_per_event.as_secs_f64()) * 1e6
        );
    }
    drop(hosts);

    // On the wire, at a steady rate: the exporter alone, a snapshot every second.
    let only = tmp.path().join("remote-write-only");
    copy_folders(&available, &["remote-write-exporter"], &only, &pushing);
    let host = load_set(&only, tmp.path(), DISCARD);
    let before = (
        wire.requests.load(Ordering::Relaxed),
        wire.body_bytes.load(Ordering::Relaxed),
        wire.wire_bytes.load(Ordering::Relaxed),
    );
    let (rate, seconds) = (50u64, 10u64);
    let start = Instant::now();
    for i in 0..rate * seconds {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        host.emit(&event(i));
    }
    host.flush();
    let elapsed = start.elapsed().as_secs_f64();
    let p = host
        .list()
        .into_iter()
        .find(|p| p.name == "remote-write-exporter")
        .unwrap();
    let d = &p.destinations[0];
    assert_eq!((d.dropped, d.failed_requests), (0, 0), "{d:?}");
    let requests = wire.requests.load(Ordering::Relaxed) - before.0;
    let body = wire.body_bytes.load(Ordering::Relaxed) - before.1;
    let whole = wire.wire_bytes.load(Ordering::Relaxed) - before.2;
    let executions = rate * seconds;
    // 9 label sets, each with every family (the failures' one category too) and the 3
    // overflow counters.
    let per_snapshot = d.sent as f64 / elapsed.round().max(1.0);
    println!(
        "on the wire: {executions} executions at {rate}/s for {seconds} s, a snapshot a second: {requests} requests, {} samples, {body} B of snappy-compressed protobuf ({whole} B with request lines and headers)",
        d.sent
    );
    println!(
        "  {:.2} B a sample compressed ({:.2} B whole); about {per_snapshot:.0} samples, {:.0} B a snapshot",
        body as f64 / d.sent as f64,
        whole as f64 / d.sent as f64,
        per_snapshot * whole as f64 / d.sent as f64
    );
    println!(
        "  {:.0} B an execution at {rate}/s with interval_s = 1; at the default interval_s = 15, {:.0} B an execution at {rate}/s and {:.0} B at 1/s",
        whole as f64 / executions as f64,
        whole as f64 / executions as f64 / 15.0,
        whole as f64 / executions as f64 / 15.0 * rate as f64,
    );
    drop(host);

    // OTLP on the wire, at the same rate: the exporter alone, to a receiver of its own,
    // the metrics every second.
    let (otlp_port, otlp_wire, otlp_stop) = receiver();
    let endpoint = format!("http://127.0.0.1:{otlp_port}");
    let tracing_each_second = |text: String| {
        set(
            blocking(text),
            &[
                ("endpoint", format!("\"{endpoint}\"")),
                ("http", format!("[\"{endpoint}/v1/*\"]")),
                ("metrics_interval_ms", "1000".into()),
            ],
        )
    };
    let only = tmp.path().join("otlp-only");
    copy_folders(&available, &["otlp-exporter"], &only, &tracing_each_second);
    let host = load_set(&only, tmp.path(), DISCARD);
    let start = Instant::now();
    for i in 0..rate * seconds {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        host.emit(&event(i));
    }
    host.flush();
    let p = host
        .list()
        .into_iter()
        .find(|p| p.name == "otlp-exporter")
        .unwrap();
    for d in &p.destinations {
        assert_eq!((d.dropped, d.failed_requests), (0, 0), "{d:?}");
    }
    let sent: Vec<String> = p
        .destinations
        .iter()
        .map(|d| format!("{} {}", d.sent, d.unit))
        .collect();
    let requests = otlp_wire.requests.load(Ordering::Relaxed);
    let body = otlp_wire.body_bytes.load(Ordering::Relaxed);
    let whole = otlp_wire.wire_bytes.load(Ordering::Relaxed);
    let snapshots = otlp_wire.metrics_requests.load(Ordering::Relaxed);
    let metrics_body = otlp_wire.metrics_body_bytes.load(Ordering::Relaxed);
    println!(
        "OTLP on the wire: {executions} executions at {rate}/s for {seconds} s, metrics every second: {requests} requests ({}), {body} B of gzipped protobuf ({whole} B with request lines and headers)",
        sent.join(", ")
    );
    println!(
        "  {:.0} B an execution compressed: its spans and its log record (without the scripts' output)",
        (body - metrics_body) as f64 / executions as f64,
    );
    println!(
        "  {:.0} B a metrics snapshot compressed ({snapshots} snapshots of 9 label sets); at the default metrics_interval_ms = 60000, {:.1} B an execution at {rate}/s",
        metrics_body as f64 / snapshots.max(1) as f64,
        metrics_body as f64 / snapshots.max(1) as f64 / 60.0 / rate as f64,
    );
    for (stop, port) in [
        (&stop, port),
        (&sink_stop, sink_port),
        (&otlp_stop, otlp_port),
    ] {
        stop.store(true, Ordering::Relaxed);
        let _ = std::net::TcpStream::connect(("127.0.0.1", port));
    }
}
