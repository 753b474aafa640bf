//! What the benches share: where the repository is, medians, and one timed execution.
//! Each bench is its own crate and uses part of this.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use metaclaude::{ExecutionRequest, ToolExecutionService};

/// What a component makes of a finished event (the SDK's `finished`), from the host's
/// model: what the exporters and the alert rules count, for their logic run natively.
pub fn finished(e: &metaclaude::model::ExecutionEvent) -> metaclaude_formats::finished::Finished {
    let r = e.result.as_ref().expect("a finished event");
    metaclaude_formats::finished::Finished {
        script: r.script_id.clone(),
        specialist: r.specialist.clone(),
        success: r.success,
        category: r.category().map(|c| c.as_str().to_string()),
        duration_seconds: r.resource_usage.wall_time_seconds,
        memory_peak_mb: r.resource_usage.peak_memory_mb,
        cpu_time_seconds: r.resource_usage.cpu_time_seconds,
        retries: r.retries,
        at: e.timestamp.timestamp_micros() as f64 / 1e6,
    }
}

/// A plugin host whose operator (the benchmark, which built the plugin folders of `dir`)
/// grants each what it asks for, in the grants file beside `dir`, read at every load as
/// a host reads it.
pub fn granted_host(dir: &std::path::Path, cache: PathBuf) -> metaclaude::plugin::PluginHost {
    use metaclaude::plugin::grants::admission::grant_requests;
    use metaclaude::plugin::manifest::process_env;
    grant_requests(dir, &process_env).unwrap().save().unwrap();
    metaclaude::plugin::PluginHost::new(Some(cache)).unwrap()
}

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The median of `xs` (the upper one of an even count).
pub fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// How long `service` takes to run `script` once, which must succeed.
pub fn execute_timed(
    rt: &tokio::runtime::Runtime,
    service: &ToolExecutionService,
    script: &str,
) -> Duration {
    let start = Instant::now();
    let r = rt.block_on(service.execute(ExecutionRequest::new(script)));
    assert!(r.success, "{script}: {:?}", r.error_details);
    start.elapsed()
}

/// User plus system CPU time of this process so far (every plugin worker included).
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own and reads nothing else.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut u), 0);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU time of this thread so far.
pub fn thread_cpu_time() -> Duration {
    // SAFETY: clock_gettime writes into the zeroed struct we own and reads nothing else.
    let t = unsafe {
        let mut t: libc::timespec = std::mem::zeroed();
        assert_eq!(
            libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t),
            0
        );
        t
    };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The plugin folders of `dir` loaded into a granted host (its cache and log under
/// `tmp`), StatsD sent to `statsd_port` of loopback.
pub fn load_set(
    dir: &std::path::Path,
    tmp: &std::path::Path,
    statsd_port: u16,
) -> metaclaude::plugin::PluginHost {
    let mut host = granted_host(dir, tmp.join("cache"));
    host.set_env("METACLAUDE_LOG_DIR", tmp.join("logs").to_string_lossy());
    host.set_env("METACLAUDE_METRICS_PORT", statsd_port.to_string());
    let errors = host.load_dir(dir).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    host
}

/// Finished events per second through a host, and its CPU per event.
pub struct Rate {
    pub events_per_s: f64,
    pub cpu_per_event: Duration,
}

/// Hands `events` to `host` and waits until its plugins handled them.
pub fn deliver(
    events: &[metaclaude::model::ExecutionEvent],
    host: &metaclaude::plugin::PluginHost,
) -> Rate {
    use metaclaude::EventSink;
    let cpu = cpu_time();
    let start = Instant::now();
    for e in events {
        host.emit(e);
    }
    host.flush();
    let wall = start.elapsed();
    Rate {
        events_per_s: events.len() as f64 / wall.as_secs_f64(),
        cpu_per_event: (cpu_time() - cpu) / events.len() as u32,
    }
}
