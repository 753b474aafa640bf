//! `metaclaude run`: one execution, its result for people (or JSON), its exit status.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use metaclaude::app::{HostConfig, MonitoredHost};
use metaclaude::model::ExecutionEvent;
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
        executor: args.host.executor(None),
        plugins: args.host.plugin_source(),
        grants: args.host.grant_source(),
        one_shot: true,
        ..HostConfig::new(&args.registry)
    };
    let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
    if args.events {
        sinks.push(Arc::new(StderrEvents(Mutex::new(()))));
    }
    let runtime = super::one_execution_runtime()?;
    let host = match MonitoredHost::start(config, sinks, super::stderr_notices()) {
        Ok(host) => host,
        Err(e) => return super::host_failed(e, &args.registry),
    };
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
