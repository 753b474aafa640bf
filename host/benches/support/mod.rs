//! What the benches share: where the repository is, medians, and one timed execution.
//! Each bench is its own crate and uses part of this.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use metaclaude::{ExecutionRequest, ToolExecutionService};

/// The repository's root.
/// A plugin host whose operator (the benchmark, which built the plugin folders of `dir`)
/// grants each what it asks for, in the grants file beside `dir`, read at every load as
/// a host reads it.
pub fn granted_host(dir: &std::path::Path, cache: PathBuf) -> metaclaude::plugin::PluginHost {
    use metaclaude::plugin::grants::admission::grant_requests;
    use metaclaude::plugin::manifest::process_env;
    grant_requests(dir, &process_env).unwrap().save().unwrap();
    metaclaude::plugin::PluginHost::new(Some(cache)).unwrap()
}

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
