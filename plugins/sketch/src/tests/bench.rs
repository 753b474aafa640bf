//! A micro-benchmark, ignored by default; run it optimised and read the figures:
//!
//! ```text
//! cargo test --release --manifest-path plugins/Cargo.toml -p metaclaude-sketch \
//!     -- --ignored --nocapture micro_benchmark
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use super::support::{sketch_of, Rng};
use crate::{DdSketch, Window, Windowed};

fn per_call(elapsed: Duration, calls: u64) -> String {
    let ns = elapsed.as_secs_f64() * 1e9 / calls as f64;
    if ns >= 1000.0 {
        format!("{:8.2} µs", ns / 1000.0)
    } else {
        format!("{ns:8.1} ns")
    }
}

fn timed<T>(calls: u64, mut f: impl FnMut(u64) -> T) -> Duration {
    let started = Instant::now();
    for i in 0..calls {
        black_box(f(i));
    }
    started.elapsed()
}

#[test]
#[ignore = "a benchmark: run with --release -- --ignored --nocapture"]
fn micro_benchmark() {
    const N: u64 = 10_000_000;
    let mut rng = Rng::new(99);
    // Latency-like: log-normal, median 100 ms, σ = 1.5.
    let values: Vec<f64> = (0..N).map(|_| rng.lognormal(100.0, 1.5)).collect();

    let mut sketch = DdSketch::new();
    let add = timed(N, |i| sketch.add(values[i as usize]));
    println!(
        "DdSketch::add        {} per value, {:6.1} M values/s ({} buckets)",
        per_call(add, N),
        N as f64 / add.as_secs_f64() / 1e6,
        sketch.bucket_count()
    );

    // Ten thousand values a second for 1000 s: the rings turn over many times.
    let mut windowed = Windowed::default();
    let t0 = 1_700_000_000_000u64;
    let add_windowed = timed(N, |i| windowed.add(values[i as usize], t0 + i / 10));
    println!(
        "Windowed::add        {} per value, {:6.1} M values/s",
        per_call(add_windowed, N),
        N as f64 / add_windowed.as_secs_f64() / 1e6
    );

    for q in [0.5, 0.99] {
        let calls = 1_000_000;
        let query = timed(calls, |_| sketch.quantile(black_box(q)));
        println!("quantile({q:4})       {}", per_call(query, calls));
    }

    let now = t0 + N / 10;
    for window in [Window::OneMinute, Window::FiveMinutes, Window::SixtyMinutes] {
        let calls = 2_000;
        let merge = timed(calls, |_| windowed.window(window, now).quantile(0.99));
        println!(
            "window({:3}) + p99    {} ({} values)",
            window.label(),
            per_call(merge, calls),
            windowed.window(window, now).count()
        );
    }
    println!(
        "Windowed memory      {} KiB in {} buckets",
        windowed.memory_bytes() / 1024,
        windowed.bucket_count()
    );

    let half = sketch_of(&values[..1_000_000]);
    let calls = 10_000;
    let merge = timed(calls, |_| {
        let mut into = half.clone();
        into.merge(&half).unwrap();
        into.count()
    });
    println!(
        "clone + merge        {} ({} buckets)",
        per_call(merge, calls),
        half.bucket_count()
    );

    let json = serde_json::to_string(&sketch).unwrap();
    let calls = 10_000;
    let write = timed(calls, |_| serde_json::to_string(&sketch).unwrap().len());
    let read = timed(calls, |_| {
        serde_json::from_str::<DdSketch>(&json).unwrap().count()
    });
    println!(
        "JSON                 {} bytes; write {}, read {}",
        json.len(),
        per_call(write, calls),
        per_call(read, calls)
    );
}
