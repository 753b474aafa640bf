//! The seed's "Monitoring Integration" (section 4), in Rust: a host with the default
//! plugins (the execution log; the Prometheus and StatsD exporters), executions, their
//! statistics, and the Prometheus metrics.
//!
//! Run from the workspace root after `cargo xtask build-plugins`:
//! `cargo run -p metaclaude-host --example monitored`

use metaclaude::app::{MonitoredHost, PluginSource};
use metaclaude::ExecutionRequest;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // tes = create_monitored_tes(enable_logging=True, enable_metrics=True,
    //                            statsd_host='metrics.example.com')
    let tes = MonitoredHost::builder("examples/registry/registry.json")
        .plugins(PluginSource::Dir("target/debug/plugins".into()))
        .logging(true)
        .metrics(true)
        .statsd_host("127.0.0.1")
        .build()?;

    // result = tes.execute('validate_api_schema', {'schema_file': 'api.yaml'},
    //                      session_id='session-123')
    let execution = tes
        .execute(
            ExecutionRequest::new("validate_api_schema")
                .input("schema_file", "data/api.json")
                .session_id("session-123"),
        )
        .await;
    println!(
        "{}: success {}, {:.3}s",
        execution.result.script_id,
        execution.result.success,
        execution.result.resource_usage.wall_time_seconds
    );

    // stats = tes.get_execution_stats()
    let stats = tes.execution_stats(60);
    println!(
        "last 60 minutes: {} executions, success rate {:?} %, p95 {:?} s",
        stats.window.overall.count,
        stats.window.overall.success_rate,
        stats.percentiles.duration_seconds["start"].p95
    );

    // metrics = tes.export_prometheus_metrics()
    print!("{}", tes.export_prometheus_metrics());
    tes.shutdown();
    Ok(())
}
