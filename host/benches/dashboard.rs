//! The web dashboard in Debian's headless Chromium against the real `metaclaude serve`
//! (release build, `--no-plugins`, the `noop` script), each figure against a baseline
//! measured in the same run:
//!
//! 1. first meaningful paint (navigation start to the first frame with the server's
//!    figures and executions written, `body[data-ready-ms]`) with 10 000 executions in
//!    the server's ring, against the same page on an empty server (target under 500 ms);
//! 2. page memory (JS heap after a collection, DOM nodes) after streaming 100 000
//!    events, against the same after the first 10 000 (flat: a ratio near 1);
//! 3. server CPU with 10 dashboards open while executions run at 500 a second (or as
//!    many as this machine sustains), against the same load with none open.
//!
//! `DASHBOARD_BENCH_RING` (10000), `DASHBOARD_BENCH_EVENTS` (100000),
//! `DASHBOARD_BENCH_RATE` (500), `DASHBOARD_BENCH_SECONDS` (20), `DASHBOARD_BENCH_TABS`
//! (10) change the sizes.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/server.rs"]
mod server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use browser::Browser;
use server::Server;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// Runs `n` executions of `noop` from 8 clients at once, as fast as the server takes them.
fn fill(server: &Server, n: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (next, url) = (next.clone(), server.url("/api/v1/executions"));
            std::thread::spawn(move || {
                let agent = agent();
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    agent
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(r#"{"script_id": "noop"}"#)
                        .expect("an execution");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Runs `noop` at `rate` a second for `seconds` (8 paced clients); returns the rate
/// reached.
fn paced(server: &Server, rate: usize, seconds: u64) -> f64 {
    let clients = 8;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let done = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (done, url) = (done.clone(), server.url("/api/v1/executions"));
            std::thread::spawn(move || {
                let agent = agent();
                let interval = Duration::from_secs_f64(clients as f64 / rate as f64);
                let mut due = start + interval.mul_f64(i as f64 / clients as f64);
                while due < deadline {
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    agent
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(r#"{"script_id": "noop"}"#)
                        .expect("an execution");
                    done.fetch_add(1, Ordering::Relaxed);
                    due += interval;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Navigation start to the page's first useful frame, medians of `rounds` fresh loads
/// (and the browser's first contentful paint).
fn first_paint(browser: &Browser, server: &Server, rounds: usize) -> (f64, f64) {
    let mut ready = Vec::new();
    let mut fcp = Vec::new();
    for _ in 0..rounds {
        browser.goto("about:blank");
        browser.goto(&server.url("/"));
        let ms = browser.wait_for("the first useful frame", "document.body.dataset.readyMs");
        ready.push(ms.as_str().unwrap().parse::<f64>().unwrap());
        let paint = browser.js(
            "const p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : 0;",
        );
        fcp.push(paint.as_f64().unwrap_or(0.0));
    }
    (median(ready), median(fcp))
}

/// The page's JS heap after a collection, and its DOM nodes.
fn page_memory(browser: &Browser) -> (f64, u64) {
    let v = browser.js("if (window.gc) { gc(); gc(); }
         return { heap: performance.memory ? performance.memory.usedJSHeapSize : 0,
                  nodes: document.getElementsByTagName('*').length };");
    (
        v["heap"].as_f64().unwrap_or(0.0) / 1048576.0,
        v["nodes"].as_u64().unwrap_or(0),
    )
}

fn events_seen(browser: &Browser) -> u64 {
    browser
        .js("return Number(document.body.dataset.events);")
        .as_u64()
        .unwrap_or(0)
}

fn main() {
    // The allocator as the binary sets it (`main`), so that the figures are the binary's.
    metaclaude::memory::tune_allocator();
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let ring = env_usize("DASHBOARD_BENCH_RING", 10_000);
    let events = env_usize("DASHBOARD_BENCH_EVENTS", 100_000) as u64;
    let rate = env_usize("DASHBOARD_BENCH_RATE", 500);
    let seconds = env_usize("DASHBOARD_BENCH_SECONDS", 20) as u64;
    let tabs = env_usize("DASHBOARD_BENCH_TABS", 10);
    let browser = Browser::start();

    // 1. First meaningful paint.
    let empty = Server::start(&["--queue", "4096"]);
    let (empty_ready, empty_fcp) = first_paint(&browser, &empty, 7);
    drop(empty);
    let server = Server::start(&["--queue", "4096"]);
    let t = Instant::now();
    fill(&server, ring);
    eprintln!(
        "dashboard: {ring} executions in the ring ({:.0}/s)",
        ring as f64 / t.elapsed().as_secs_f64()
    );
    let (full_ready, full_fcp) = first_paint(&browser, &server, 7);
    println!(
        "first meaningful paint, {ring} executions held: median {full_ready:.0} ms \
         (first contentful paint {full_fcp:.0} ms); empty server {empty_ready:.0} ms \
         ({empty_fcp:.0} ms): ratio {:.2} (target under 500 ms)",
        full_ready / empty_ready
    );

    // 2. Page memory while events stream.
    browser.goto(&server.url("/"));
    browser.wait_for("live", "document.body.dataset.connection === 'live'");
    let batch = 2_000;
    let mut early = None;
    while events_seen(&browser) < events {
        fill(&server, batch);
        let seen = events_seen(&browser);
        if early.is_none() && seen >= events / 10 {
            early = Some((seen, page_memory(&browser)));
        }
    }
    let (early_events, (early_heap, early_nodes)) = early.expect("a first measurement");
    let late_events = events_seen(&browser);
    let (late_heap, late_nodes) = page_memory(&browser);
    println!(
        "page memory: JS heap {early_heap:.1} MiB, {early_nodes} DOM nodes after {early_events} events; \
         {late_heap:.1} MiB, {late_nodes} nodes after {late_events}: ratio {:.2} (flat: near 1)",
        late_heap / early_heap
    );
    let gaps = browser.js("return document.body.dataset.snapshots;");
    eprintln!("dashboard: snapshots taken by the page: {gaps}");

    // 3. Server CPU: the same paced load without and with `tabs` dashboards open.
    browser.goto("about:blank");
    let before = server.cpu_seconds();
    let reached_alone = paced(&server, rate, seconds);
    let alone = (server.cpu_seconds() - before) / seconds as f64;
    browser.goto(&server.url("/"));
    browser.open_tabs(&server.url("/"), tabs - 1);
    browser.wait_for("live", "document.body.dataset.connection === 'live'");
    let before = server.cpu_seconds();
    let reached_with = paced(&server, rate, seconds);
    let with = (server.cpu_seconds() - before) / seconds as f64;
    println!(
        "server CPU: {:.1} % of a core at {reached_alone:.0} executions/s with no dashboard; \
         {:.1} % at {reached_with:.0}/s with {tabs} open: ratio {:.2}, {:.1} % of a core for the {tabs}",
        alone * 100.0,
        with * 100.0,
        with / alone,
        (with - alone) * 100.0
    );
}
