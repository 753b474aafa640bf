//! `/metrics` render of the Prometheus exporter with 10 000 series, in each format a
//! scrape negotiates (OpenMetrics 1.0.0, the text format 0.0.4): through the WebAssembly
//! component (`PluginHost::render`: the call into the sandbox, the text crossing back
//! into the buffer of the last one, which each render here drops as a scrape does, the
//! worker round trip), against the same state rendered natively (the exporter crate's
//! logic compiled for the host), the two taken in turn; then where a WASM render's time
//! goes (the call on the plugin's thread, the hand-off, the text's lift alone), and both
//! again with the allocator keeping freed buffers (each render's own work, without the
//! fresh mapping the binary's allocator settings give a 1 MiB buffer).
//! Target: WASM within 1.5x of native. The exporter (WIT
//! 0.3.0) renders the format asked, so no conversion is taken; what converting its
//! OpenMetrics down to 0.0.4 costs is shown for exporters built against 0.1.0 or 0.2.0,
//! which the host still converts.
//!
//! Needs the component: `cargo xtask build-plugins` (or `cargo xtask bench`).

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use metaclaude::model::{
    ErrorCategory, ErrorContext, ErrorDetails, ExecutionEvent, ExecutionResult,
};
use metaclaude::EventSink;
use metaclaude_formats::prometheus::{openmetrics_to_text, Format};
use prometheus_exporter::config::Config;
use prometheus_exporter::families::Exporter;

mod support;
use support::{finished, granted_host, ms, root};

/// Label sets (script, specialist pairs): about 47 samples each, failures included.
const PAIRS: usize = 215;
/// Renders of each kind, unless `BENCH_ITERATIONS` says otherwise.
const RUNS: usize = 60;
/// The formats a scrape negotiates, as the lines name them.
const FORMATS: [(&str, Format); 2] = [
    ("OpenMetrics", Format::OpenMetrics),
    ("0.0.4", Format::Text),
];

fn runs() -> usize {
    std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(RUNS)
}

/// Three finished executions per pair: two successes and a failure (one of the seven
/// categories, so that failures have several series), with spread-out figures.
fn events() -> Vec<ExecutionEvent> {
    let t0 = Utc.timestamp_opt(1_790_000_000, 0).unwrap();
    let mut events = Vec::new();
    for pair in 0..PAIRS {
        for run in 0..3u32 {
            let i = pair * 3 + run as usize;
            let at = t0 + chrono::Duration::milliseconds(i as i64);
            let mut r =
                ExecutionResult::new(format!("01BENCH{i:019}"), format!("script-{pair:04}"), at);
            r.specialist = Some(format!("specialist-{:02}", pair % 20));
            r.success = run < 2;
            if !r.success {
                let category = ErrorCategory::ALL[pair % ErrorCategory::ALL.len()];
                r.error_details = Some(ErrorDetails {
                    category,
                    message: "failed".into(),
                    context: ErrorContext::default(),
                    suggestions: Vec::new(),
                    stack_trace: None,
                });
                r.retries = run;
            }
            r.resource_usage.wall_time_seconds = 0.003 * f64::from(1 + (i as u32 * 37) % 400);
            r.resource_usage.peak_memory_mb = f64::from(1 + (i as u32 * 13) % 900);
            r.resource_usage.cpu_time_seconds = 0.001 * f64::from(i as u32 % 50);
            events.push(ExecutionEvent::finished(r));
        }
    }
    events
}

struct Timing {
    median: Duration,
    max: Duration,
}

fn timing(mut xs: Vec<Duration>) -> Timing {
    xs.sort();
    Timing {
        median: xs[xs.len() / 2],
        max: xs[xs.len() - 1],
    }
}

fn time(f: impl FnMut() -> usize) -> Timing {
    time_interleaved(f, || 0).0
}

/// `a` and `b` timed in turn, `runs()` times each after three of each to warm up: the
/// machine's drift, tens of percent over minutes here, falls on both alike.
fn time_interleaved(
    mut a: impl FnMut() -> usize,
    mut b: impl FnMut() -> usize,
) -> (Timing, Timing) {
    for _ in 0..3 {
        a();
        b();
    }
    let once = |f: &mut dyn FnMut() -> usize| {
        let start = Instant::now();
        std::hint::black_box(f());
        start.elapsed()
    };
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for _ in 0..runs() {
        xs.push(once(&mut a));
        ys.push(once(&mut b));
    }
    (timing(xs), timing(ys))
}

/// From now on, glibc keeps freed buffers of up to 8 MiB for the next allocation (and
/// gives back the top of a heap only past 64 MiB free), where the binary maps every
/// buffer over 128 KiB afresh.
fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets allocator parameters; it takes the arenas' locks and may
    // be called at any time from any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 8 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

/// The lines that are samples, leaving out the one figure the two runs do not share
/// (the overflow counters' `_created` is each exporter's own start).
fn samples(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            !l.starts_with('#') && !l.starts_with("metaclaude_exporter_label_overflow_created")
        })
        .collect()
}

fn main() {
    // The allocator as the binary sets it (`main`), so that the figures are the binary's.
    metaclaude::memory::tune_allocator();
    let wasm = root().join("plugins/target/wasm32-wasip2/release/prometheus_exporter.wasm");
    assert!(
        wasm.is_file(),
        "{} is missing: run `cargo xtask build-plugins` first",
        wasm.display()
    );
    let tmp = std::env::temp_dir().join(format!("metaclaude-bench-prom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let folder = tmp.join("plugins/prometheus-exporter");
    std::fs::create_dir_all(&folder).unwrap();
    let manifest = std::fs::read_to_string(root().join("plugins/prometheus-exporter/plugin.toml"))
        .unwrap()
        .replace(
            "component = \"prometheus_exporter.wasm\"",
            &format!("component = \"{}\"", wasm.display()),
        );
    std::fs::write(folder.join("plugin.toml"), manifest).unwrap();

    let events = events();
    let mut host = granted_host(&tmp.join("plugins"), tmp.join("cache"));
    let problems = host.load_dir(&tmp.join("plugins")).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    for e in &events {
        host.emit(e);
    }
    host.flush();
    let info = &host.list()[0];
    assert_eq!(info.delivered, events.len() as u64, "every event delivered");

    let mut native = Exporter::new(&Config::default(), 0.0);
    let mut warnings = Vec::new();
    for e in &events {
        native.observe(&finished(e), &mut warnings);
    }
    assert!(warnings.is_empty(), "{warnings:?}");

    let render = |format| host.render("prometheus-exporter", format).unwrap();
    let openmetrics = render(Format::OpenMetrics).into_string();
    let text = render(Format::Text).into_string();
    assert_eq!(
        samples(&openmetrics),
        samples(&native.render(Format::OpenMetrics)),
        "the same state"
    );
    assert_eq!(text, native.render(Format::Text), "the same state");
    assert_eq!(
        openmetrics_to_text(&openmetrics).unwrap(),
        text,
        "0.0.4 as rendered is the OpenMetrics converted down"
    );
    let series = samples(&openmetrics).len() + 3;
    assert!(series >= 10_000, "{series} series");
    let text_series = samples(&text).len() + 3;

    // Where a render through WASM goes: the call on the plugin's thread (the render in
    // the sandbox and the text lifted out of it, as the worker times every call), the
    // rest handing the request over and the answer back; and what lifting the text
    // costs, done natively: the UTF-8 check and the copy into the last text's buffer, as
    // the host lifts it, and into a fresh buffer, as it did before 2026-12-07. Medians,
    // in ms.
    let split = |format| {
        let call_seconds = || host.list()[0].calls.sum_seconds;
        let (mut calls, mut handoffs) = (Vec::new(), Vec::new());
        for _ in 0..runs() {
            let before = call_seconds();
            let start = Instant::now();
            std::hint::black_box(render(format));
            let trip = start.elapsed();
            let call = Duration::from_secs_f64(call_seconds() - before);
            calls.push(call);
            handoffs.push(trip.saturating_sub(call));
        }
        let text = native.render(format);
        let mut spare: Vec<u8> = Vec::with_capacity(text.len());
        let lift = time(|| {
            spare.clear();
            assert!(simdutf8::basic::from_utf8(text.as_bytes()).is_ok());
            spare.extend_from_slice(text.as_bytes());
            spare.len()
        });
        let fresh = time(|| String::from_utf8(text.as_bytes().to_vec()).unwrap().len());
        (
            ms(timing(calls).median),
            ms(timing(handoffs).median),
            (ms(lift.median), ms(fresh.median)),
        )
    };
    println!(
        "/metrics render of the Prometheus exporter: {PAIRS} label sets; OpenMetrics {series} series, {:.0} KiB; 0.0.4 {text_series} series (no _created), {:.0} KiB (median and max of {}, interleaved):",
        openmetrics.len() as f64 / 1024.0,
        text.len() as f64 / 1024.0,
        runs()
    );
    for (name, format) in FORMATS {
        let (through_wasm, natively) =
            time_interleaved(|| render(format).len(), || native.render(format).len());
        println!(
            "  {name:<11} WASM component (PluginHost::render)  {:>7.3} ms   max {:>7.3} ms",
            ms(through_wasm.median),
            ms(through_wasm.max)
        );
        println!(
            "  {name:<11} native (the same crate and state)    {:>7.3} ms   max {:>7.3} ms",
            ms(natively.median),
            ms(natively.max)
        );
        println!(
            "  {name:<11} ratio WASM/native                    {:>7.2}   (target <= 1.5)",
            through_wasm.median.as_secs_f64() / natively.median.as_secs_f64()
        );
        let (call, handoff, (lift, fresh)) = split(format);
        println!(
            "  {name:<11} of which the call on the plugin's thread {call:.3} ms, the hand-off {handoff:.3} ms; the text's lift alone, natively, {lift:.3} ms (into a fresh buffer {fresh:.3} ms)",
        );
    }
    // The binary fixes glibc's mmap threshold at 128 KiB (`memory::tune_allocator`: memory
    // that follows what the host holds), so each render's 1 MiB is a fresh mapping on both
    // sides: page faults as it is written, and unmapped when freed. With the allocator
    // keeping freed buffers instead, what is left is each render's own work.
    keep_freed_buffers();
    for (name, format) in FORMATS {
        let (through_wasm, natively) =
            time_interleaved(|| render(format).len(), || native.render(format).len());
        let (call, handoff, (lift, _)) = split(format);
        println!(
            "  {name:<11} with freed buffers kept (mmap threshold 8 MiB): WASM {:.3} ms, native {:.3} ms, ratio {:.2}; the call {call:.3} ms, the hand-off {handoff:.3} ms, the lift alone {lift:.3} ms",
            ms(through_wasm.median),
            ms(natively.median),
            through_wasm.median.as_secs_f64() / natively.median.as_secs_f64()
        );
    }
    let convert = time(|| openmetrics_to_text(&openmetrics).unwrap().len());
    println!(
        "  not taken for this exporter (WIT 0.3.0); a 0.1.0/0.2.0 exporter's OpenMetrics converted to 0.0.4 on the host: {:.3} ms   max {:.3} ms",
        ms(convert.median),
        ms(convert.max)
    );
    host.shutdown();
    let _ = std::fs::remove_dir_all(&tmp);
}
