//! `metaclaude serve` against its baselines, in one run, with the real binary:
//!
//! 1. throughput: `POST /api/v1/executions` of a trivial script from 8 clients at once,
//!    against `metaclaude batch --concurrency 8` of the same requests (target: at least
//!    90 % of batch);
//! 2. latency: one `POST` at a time, its round trip against the execution's own wall time
//!    (spawn to reap): the added latency, median and p99;
//! 3. fan-out: 100 live-feed clients while executions run as fast as the server takes
//!    them (up to 1000 a second); every event delivered to every client, the delay from
//!    the event's timestamp to its arrival (p99 target under 50 ms), and the server's RSS
//!    before and after.
//!
//! `SERVE_BENCH_REQUESTS` (default 2000), `SERVE_BENCH_ROUNDS` (3), `SERVE_BENCH_CLIENTS`
//! (100), `SERVE_BENCH_SECONDS` (10) change the sizes.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

#[path = "support/server.rs"]
mod server;
use server::{registry, Server};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_metaclaude"));
    cmd.env_remove("RUST_LOG").env(
        "METACLAUDE_LOG_DIR",
        std::env::temp_dir().join("metaclaude-bench-serve-logs"),
    );
    cmd
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Runs `n` POSTs of `noop` from `clients` threads; returns the wall time.
fn post_many(addr: &str, n: usize, clients: usize) -> Duration {
    let url = format!("http://{addr}/api/v1/executions");
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (url, next) = (url.clone(), next.clone());
            std::thread::spawn(move || {
                let agent = agent();
                while next.fetch_add(1, Ordering::Relaxed) < n as u64 {
                    let mut r = agent
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(r#"{"script_id": "noop"}"#)
                        .expect("an answer");
                    assert_eq!(r.status(), 200);
                    let _ = r.body_mut().read_to_string();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    started.elapsed()
}

/// `metaclaude batch --concurrency 8` of `n` noop requests; returns the wall time.
fn batch(n: usize) -> Duration {
    let started = Instant::now();
    let mut child = bin()
        .args(["batch", "--no-plugins", "--concurrency", "8", "--registry"])
        .arg(registry())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for _ in 0..n {
            stdin.write_all(b"{\"script_id\":\"noop\"}\n").unwrap();
        }
    });
    let lines = BufReader::new(child.stdout.take().unwrap()).lines().count();
    feeder.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(lines, n);
    started.elapsed()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn throughput(requests: usize, rounds: usize) {
    println!("== throughput: {requests} noop executions, 8 at once, {rounds} interleaved rounds");
    let server = Server::start(&["--concurrency", "8"]);
    post_many(&server.addr, 200, 8); // warm-up
    let (mut api, mut bat) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        api.push(requests as f64 / post_many(&server.addr, requests, 8).as_secs_f64());
        bat.push(requests as f64 / batch(requests).as_secs_f64());
    }
    let (a, b) = (median(&mut api), median(&mut bat));
    println!(
        "serve POST: {a:.0} executions/s   batch: {b:.0} executions/s   ratio {:.2} (target 0.90 or more)",
        a / b
    );
}

fn latency(n: usize) {
    println!("== latency: {n} POSTs one at a time");
    let server = Server::start(&["--concurrency", "8"]);
    let url = format!("http://{}/api/v1/executions", server.addr);
    let agent = agent();
    let (mut round_trip, mut own, mut added) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n + 50 {
        let started = Instant::now();
        let mut r = agent
            .post(&url)
            .header("content-type", "application/json")
            .send(r#"{"script_id": "noop"}"#)
            .unwrap();
        let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        let rt = started.elapsed().as_secs_f64() * 1000.0;
        if i < 50 {
            continue; // warm-up
        }
        let wall = v["resource_usage"]["wall_time_seconds"].as_f64().unwrap() * 1000.0;
        round_trip.push(rt);
        own.push(wall);
        added.push(rt - wall);
    }
    println!(
        "round trip median {:.3} ms p99 {:.3} ms; the execution itself (spawn to reap) median {:.3} ms; added by the API: median {:.3} ms, p99 {:.3} ms",
        median(&mut round_trip),
        percentile(&mut round_trip, 99.0),
        median(&mut own),
        median(&mut added),
        percentile(&mut added, 99.0)
    );
}

fn fan_out(clients: usize, seconds: u64) {
    println!("== fan-out: {clients} live-feed clients, executions as fast as taken (at most 1000/s) for {seconds} s");
    let server = Server::start(&[
        "--concurrency",
        "8",
        "--max-ws-clients",
        &(clients + 8).to_string(),
        "--max-connections",
        &(clients + 64).to_string(),
        // Every client is on loopback: one address.
        "--max-connections-per-peer",
        &(clients + 64).to_string(),
        "--keep-recent",
        "1000",
    ]);
    let delays = Arc::new(Mutex::new(Vec::<f64>::new()));
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..clients)
        .map(|_| {
            let (delays, received, stop, ready) = (
                delays.clone(),
                received.clone(),
                stop.clone(),
                ready.clone(),
            );
            let addr = server.addr.clone();
            std::thread::spawn(move || {
                let stream = TcpStream::connect(&addr).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                let (mut ws, _) =
                    tungstenite::client(format!("ws://{addr}/ws").as_str(), stream).unwrap();
                let mut mine = Vec::new();
                let mut first = true;
                loop {
                    match ws.read() {
                        Ok(tungstenite::Message::Text(t)) => {
                            let now = Utc::now();
                            if first {
                                first = false;
                                ready.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            let v: Value = serde_json::from_str(t.as_str()).unwrap();
                            if v["type"] != "event" {
                                continue;
                            }
                            received.fetch_add(1, Ordering::Relaxed);
                            let at: DateTime<Utc> =
                                v["event"]["timestamp"].as_str().unwrap().parse().unwrap();
                            mine.push((now - at).num_microseconds().unwrap() as f64 / 1000.0);
                        }
                        Ok(_) => {}
                        Err(_) if stop.load(Ordering::Relaxed) => break,
                        Err(tungstenite::Error::Io(_)) => {}
                        Err(e) => panic!("a feed client failed: {e}"),
                    }
                }
                delays.lock().unwrap().extend(mine);
            })
        })
        .collect();
    while ready.load(Ordering::Relaxed) < clients as u64 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let rss_before = server.rss_kb();
    // Up to 1000 executions a second from 8 posters.
    let url = format!("http://{}/api/v1/executions", server.addr);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let posters: Vec<_> = (0..8)
        .map(|_| {
            let (url, done) = (url.clone(), done.clone());
            std::thread::spawn(move || {
                let agent = agent();
                while Instant::now() < deadline {
                    let allowed = (started.elapsed().as_secs_f64() * 1000.0) as u64;
                    if done.load(Ordering::Relaxed) >= allowed {
                        std::thread::sleep(Duration::from_micros(500));
                        continue;
                    }
                    let mut r = agent
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(r#"{"script_id": "noop"}"#)
                        .unwrap();
                    let _ = r.body_mut().read_to_string();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for p in posters {
        p.join().unwrap();
    }
    let executions = done.load(Ordering::Relaxed);
    let rate = executions as f64 / started.elapsed().as_secs_f64();
    // Every event (queued, started, finished: 3 per noop execution) to every client:
    // wait for the stragglers.
    let expected = executions * 3 * clients as u64;
    let wait = Instant::now() + Duration::from_secs(30);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < wait {
        std::thread::sleep(Duration::from_millis(20));
    }
    let rss_after = server.rss_kb();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let mut d = delays.lock().unwrap().clone();
    println!(
        "{executions} executions ({rate:.0}/s), {} of {expected} events delivered to {clients} clients; delay median {:.2} ms, p99 {:.2} ms (target under 50 ms); server RSS {} kB before, {} kB after",
        received.load(Ordering::Relaxed),
        median(&mut d),
        percentile(&mut d, 99.0),
        rss_before,
        rss_after
    );
}

fn main() {
    // The allocator as the binary sets it (`main`), so that the figures are the binary's.
    metaclaude::memory::tune_allocator();
    // `cargo bench` passes --bench; nothing else to parse.
    let requests = env_usize("SERVE_BENCH_REQUESTS", 2000);
    let rounds = env_usize("SERVE_BENCH_ROUNDS", 3);
    throughput(requests, rounds);
    latency(requests.min(1000));
    fan_out(
        env_usize("SERVE_BENCH_CLIENTS", 100),
        env_usize("SERVE_BENCH_SECONDS", 10) as u64,
    );
}
