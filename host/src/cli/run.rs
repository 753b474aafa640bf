//! `metaclaude run`: one execution, its result for people (or JSON), its exit status.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use metaclaude::app::{HostConfig, MonitoredHost};
use metaclaude::model::ExecutionEvent;
use metaclaude::monitor::Limits;
use metaclaude::{EventSink, ExecutionRequest, Recording};

use super::args::RunArgs;
use super::{render, EXIT_FAILED, EXIT_NOT_RECORDED};

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // Before any thread of the host starts.
    metaclaude::memory::tune_allocator_for_one_execution();
    let mut request = ExecutionRequest {
        script_id: args.script_id.clone(),
        inputs: parse_inputs(&args)?,
        session_id: args.session_id.clone(),
        correlation_id: args.correlation_id.clone(),
        user: args.user.clone(),
    };
    // The caller's trace (an agent's, say), joined by the OTLP exporter.
    if let Some(traceparent) = &args.traceparent {
        if let Err(e) = request.join_trace(traceparent) {
            bail!("--traceparent (or METACLAUDE_TRACEPARENT): {e} (unset it, or give the traceparent of the caller's span)");
        }
    }
    let config = HostConfig {
        // One execution: nothing asks how many cores there are.
        executor: args.host.executor(Some(1)),
        plugins: args.host.plugin_source(),
        grants: args.host.grant_source(),
        one_shot: true,
        // Nobody subscribes to a one-shot host's live feed: one slot, not a thousand to
        // allocate and fill.
        monitor: Limits {
            feed: 1,
            ..Limits::default()
        },
        ..HostConfig::new(&args.registry)
    };
    let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
    if args.events {
        sinks.push(Arc::new(StderrEvents(Mutex::new(()))));
    }
    // The host first: its plugins start loading on a thread of their own, and that load
    // is what a one-shot run waits for at the end; the runtime is built meanwhile.
    let host = match MonitoredHost::start(config, sinks, super::stderr_notices()) {
        Ok(host) => host,
        Err(e) => return super::host_failed(e, &args.registry),
    };
    let runtime = super::one_execution_runtime()?;
    let execution = runtime.block_on(host.execute(request));
    // Everything the plugins were sent is delivered and flushed before we exit.
    host.shutdown_before_exit();
    let result = execution.result;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&result)?)?;
    } else {
        outln!("{}", render::execution_summary(&result))?;
    }
    if let Recording::Failed(reasons) = execution.recording {
        eprintln!(
            "error: execution {} finished but is not recorded: {}",
            result.execution_id,
            reasons.join("; ")
        );
        return Ok(ExitCode::from(EXIT_NOT_RECORDED));
    }
    Ok(if result.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// Prints lifecycle events as JSON lines on stderr (`--events`).
struct StderrEvents(Mutex<()>);

impl EventSink for StderrEvents {
    fn emit(&self, event: &ExecutionEvent) {
        let _guard = self.0.lock();
        if let Ok(line) = serde_json::to_string(event) {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }
}

/// `--inputs-json`, then each `--input KEY=VALUE` over it.
fn parse_inputs(args: &RunArgs) -> anyhow::Result<BTreeMap<String, serde_json::Value>> {
    let mut inputs = BTreeMap::new();
    if let Some(json) = &args.inputs_json {
        let value: serde_json::Value =
            serde_json::from_str(json).context("--inputs-json is not valid JSON")?;
        let serde_json::Value::Object(map) = value else {
            bail!("--inputs-json must be a JSON object such as {{\"name\": \"value\"}}");
        };
        inputs.extend(map);
    }
    for pair in &args.inputs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("--input {pair:?}: expected KEY=VALUE");
        };
        inputs.insert(
            key.to_string(),
            serde_json::Value::String(value.to_string()),
        );
    }
    Ok(inputs)
}
