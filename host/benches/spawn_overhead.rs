//! Per-execution overhead of the host against a bare `std::process::Command`.
//!
//! Both sides run the same trivial script (`examples/registry/scripts/noop.sh`) in the same
//! process and the same run; we report medians and their ratio (target: 1.10 or less).
//! A second pass repeats both with ~512 MiB of touched memory in this process, the size of
//! a host with large WebAssembly components loaded: a `fork()`-based spawn (std's path
//! once a `pre_exec` closure is set) slows down there, a vfork-style spawn must not.
//!
//! A third pass measures what the script watch of a long-running host (`serve`, `batch`)
//! adds to an execution: the same service with the watch as a sink, the executed script
//! without expectations (another script has some), and with them.
//!
//! Run with `cargo bench -p metaclaude-host --bench spawn_overhead` (or `cargo xtask bench`).
//! `BENCH_ITERATIONS` changes the sample count (default 300).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use metaclaude::script_watch::ScriptWatch;
use metaclaude::{ExecutionRequest, ExecutorConfig, Registry, ToolExecutionService};

mod support;
use support::{median, ms};

fn bare_once(script: &PathBuf, fork: bool) -> Duration {
    let start = Instant::now();
    let mut cmd = Command::new(script);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if fork {
        // Any pre_exec closure forces std onto fork()+exec.
        // SAFETY: the closure does nothing, so it is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| Ok(()));
        }
    }
    let out = cmd.output().expect("spawn noop.sh");
    assert!(out.status.success());
    start.elapsed()
}

fn host_once(service: &ToolExecutionService, rt: &tokio::runtime::Runtime) -> Duration {
    run_once(service, rt, "noop")
}

fn run_once(service: &ToolExecutionService, rt: &tokio::runtime::Runtime, id: &str) -> Duration {
    let start = Instant::now();
    let r = rt.block_on(service.execute(ExecutionRequest::new(id)));
    assert!(r.success, "{:?}", r.error_details);
    start.elapsed()
}

/// Medians of `n` interleaved samples of each contender, so that drift in the machine's
/// load affects all of them alike.
fn interleaved(n: usize, contenders: &mut [&mut dyn FnMut() -> Duration]) -> Vec<Duration> {
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); contenders.len()];
    for _ in 0..n {
        for (i, run) in contenders.iter_mut().enumerate() {
            samples[i].push(run());
        }
    }
    samples.into_iter().map(median).collect()
}

fn main() {
    // The allocator as the binary sets it (`main`), so that the figures are the binary's.
    metaclaude::memory::tune_allocator();
    // `cargo bench` passes `--bench`; this harness takes no filters.
    let n: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let registry_file = root.join("examples/registry/registry.json");
    let script = root.join("examples/registry/scripts/noop.sh");
    let registry = Registry::load(&registry_file).expect("example registry");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let use_cgroups = std::env::var_os("BENCH_NO_CGROUPS").is_none();
    let service = rt.block_on(async {
        ToolExecutionService::new(
            registry,
            ExecutorConfig {
                use_cgroups,
                ..ExecutorConfig::default()
            },
        )
    });
    println!("spawn_overhead: {n} runs each of {}", script.display());
    println!("measurement: {}", service.measurement_description());

    // Warm up caches (page cache, cgroup pool, allocator).
    for _ in 0..20 {
        bare_once(&script, false);
        host_once(&service, &rt);
    }

    let m = interleaved(
        n,
        &mut [&mut || bare_once(&script, false), &mut || {
            host_once(&service, &rt)
        }],
    );
    let (bare, host) = (m[0], m[1]);
    println!("  bare Command spawn+wait   median {:>8.3} ms", ms(bare));
    println!("  metaclaude execute        median {:>8.3} ms", ms(host));
    println!(
        "  ratio host/bare           {:>8.3}   (target <= 1.10)",
        host.as_secs_f64() / bare.as_secs_f64()
    );

    // A host holding a lot of memory, as with large WebAssembly components loaded.
    let ballast_mb = 512;
    let mut ballast = vec![0u8; ballast_mb * 1024 * 1024];
    for i in (0..ballast.len()).step_by(4096) {
        ballast[i] = 1;
    }
    let n_big = (n / 3).max(30);
    let m = interleaved(
        n_big,
        &mut [
            &mut || bare_once(&script, false),
            &mut || bare_once(&script, true),
            &mut || host_once(&service, &rt),
        ],
    );
    let (bare_big, fork_big, host_big) = (m[0], m[1], m[2]);
    println!("with {ballast_mb} MiB resident in the host ({n_big} runs each):");
    println!(
        "  bare Command (posix_spawn)   median {:>8.3} ms",
        ms(bare_big)
    );
    println!(
        "  Command with pre_exec (fork) median {:>8.3} ms",
        ms(fork_big)
    );
    println!(
        "  metaclaude execute           median {:>8.3} ms",
        ms(host_big)
    );
    println!(
        "  ratio host/bare              {:>8.3}   (fork/bare {:.1})",
        host_big.as_secs_f64() / bare_big.as_secs_f64(),
        fork_big.as_secs_f64() / bare_big.as_secs_f64()
    );
    drop(ballast);

    // The script watch: `noop` unwatched beside a watched script, and `watched_noop`
    // (the same script) with expectations.
    let text = format!(
        r#"{{"scripts": [
            {{"id": "noop", "path": "{noop}"}},
            {{"id": "watched_noop", "path": "{noop}", "expect": {{"every": "1h", "max_duration": "5s", "failures_in_a_row": 2}}}}
        ]}}"#,
        noop = script.display()
    );
    let watched_registry = Registry::parse(&text, &registry_file).expect("the watch's registry");
    let watch = ScriptWatch::start(&watched_registry, Box::new(|_| {}));
    let watched = rt.block_on(async {
        let mut service = ToolExecutionService::new(
            watched_registry,
            ExecutorConfig {
                use_cgroups,
                ..ExecutorConfig::default()
            },
        );
        service.add_sink(Arc::clone(&watch) as Arc<dyn metaclaude::EventSink>);
        service
    });
    for _ in 0..20 {
        run_once(&watched, &rt, "noop");
        run_once(&watched, &rt, "watched_noop");
    }
    let m = interleaved(
        n,
        &mut [
            &mut || host_once(&service, &rt),
            &mut || run_once(&watched, &rt, "noop"),
            &mut || run_once(&watched, &rt, "watched_noop"),
        ],
    );
    println!("the script watch of a long-running host ({n} runs each):");
    println!(
        "  metaclaude execute                     median {:>8.3} ms",
        ms(m[0])
    );
    println!(
        "  with the watch, a script without expect median {:>8.3} ms   ratio {:.3}",
        ms(m[1]),
        m[1].as_secs_f64() / m[0].as_secs_f64()
    );
    println!(
        "  with the watch, a script with expect    median {:>8.3} ms   ratio {:.3}",
        ms(m[2]),
        m[2].as_secs_f64() / m[0].as_secs_f64()
    );
}
