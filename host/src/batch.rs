//! `metaclaude batch`: many executions in one host, requested as JSON lines, each result
//! printed as a JSON line the moment the execution is reported finished.
//!
//! Why a batch rather than many `run`s: one host loads the plugins once (a Python
//! component costs seconds to compile cold), keeps their queues and batches warm, and runs
//! executions side by side up to the executor's concurrency. In acknowledged mode a result
//! line is written only once the acknowledging sinks confirmed storing it, so whatever a
//! consumer has read survives a crash of the host.
//!
//! Input lines: `{"script_id": "...", "inputs": {...}, "session_id": "...",
//! "correlation_id": "...", "user": "..."}` (only `script_id` is required; blank lines and
//! lines starting with `#` are skipped). A line that cannot be used is reported with its
//! file and line number and the rest still run.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::executor::{Execution, ExecutionRequest, Recording, ToolExecutionService};

/// One input line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestLine {
    script_id: String,
    #[serde(default)]
    inputs: BTreeMap<String, serde_json::Value>,
    session_id: Option<String>,
    correlation_id: Option<String>,
    user: Option<String>,
}

/// What a batch did, for its exit status.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    pub succeeded: u64,
    pub failed: u64,
    /// Input lines that could not be used (each reported on the error writer).
    pub bad_lines: u64,
    /// Executions an acknowledging sink did not confirm (each reported).
    pub unrecorded: u64,
    /// True when a signal stopped the batch before its input ended.
    pub interrupted: bool,
}

/// Parses one input line; `None` for blank and comment lines.
fn parse_line(line: &str) -> Option<Result<ExecutionRequest, String>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    Some(
        serde_json::from_str::<RequestLine>(line)
            .map(|r| ExecutionRequest {
                script_id: r.script_id,
                inputs: r.inputs,
                session_id: r.session_id,
                correlation_id: r.correlation_id,
                user: r.user,
            })
            .map_err(|e| {
                format!(
                    "{e} (expected {{\"script_id\": \"...\", \"inputs\": {{...}}}} with optional session_id, correlation_id, user)"
                )
            }),
    )
}

/// Runs every request read from `input` (named `source` in messages), at most
/// `concurrency` at a time, writing each result to `out` as one JSON line when it is
/// reported finished and problems to `err`. Stops taking new lines on SIGINT or SIGTERM
/// and lets the executions already started finish.
pub async fn run_batch(
    service: Arc<ToolExecutionService>,
    input: Box<dyn BufRead + Send>,
    source: &str,
    concurrency: usize,
    mut out: impl Write,
    mut err: impl Write,
) -> std::io::Result<BatchSummary> {
    let concurrency = concurrency.max(1);
    // Lines are read on a blocking thread; the bounded channel keeps at most a few
    // requests read ahead, so memory does not grow with the input.
    let (tx, mut rx) = mpsc::channel::<std::io::Result<String>>(concurrency);
    std::thread::spawn(move || {
        for line in input.lines() {
            let stop = line.is_err();
            if tx.blocking_send(line).is_err() || stop {
                return;
            }
        }
    });
    let mut stop = stop_signals()?;
    let mut summary = BatchSummary::default();
    let mut running: JoinSet<Execution> = JoinSet::new();
    let mut line_no = 0u64;
    let mut reading = true;
    while reading || !running.is_empty() {
        tokio::select! {
            line = rx.recv(), if reading && running.len() < concurrency => match line {
                None => reading = false,
                Some(Err(e)) => {
                    writeln!(err, "error: {source}: cannot read after line {line_no}: {e}")?;
                    summary.bad_lines += 1;
                    reading = false;
                }
                Some(Ok(line)) => {
                    line_no += 1;
                    match parse_line(&line) {
                        None => {}
                        Some(Err(why)) => {
                            writeln!(err, "error: {source}:{line_no}: {why}")?;
                            summary.bad_lines += 1;
                        }
                        Some(Ok(request)) => {
                            let service = service.clone();
                            running.spawn(async move { service.execute_recorded(request).await });
                        }
                    }
                }
            },
            done = running.join_next(), if !running.is_empty() => {
                let Some(done) = done else { continue };
                let execution = done.map_err(std::io::Error::other)?;
                report(&execution, &mut summary, &mut out, &mut err)?;
            }
            _ = stop.recv(), if reading => {
                writeln!(err, "metaclaude: stopping: no new executions; waiting for {} running", running.len())?;
                summary.interrupted = true;
                reading = false;
            }
        }
    }
    Ok(summary)
}

fn report(
    execution: &Execution,
    summary: &mut BatchSummary,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<()> {
    let r = &execution.result;
    if r.success {
        summary.succeeded += 1;
    } else {
        summary.failed += 1;
    }
    if let Recording::Failed(reasons) = &execution.recording {
        summary.unrecorded += 1;
        writeln!(
            err,
            "error: execution {} finished but is not recorded: {}",
            r.execution_id,
            reasons.join("; ")
        )?;
    }
    serde_json::to_writer(&mut *out, r)?;
    out.write_all(b"\n")?;
    // A line is a report: it must be out before the next execution is.
    out.flush()
}

/// A channel that yields on the first SIGINT or SIGTERM; a second one ends the process
/// at once (exit 130), as an impatient operator expects.
fn stop_signals() -> std::io::Result<mpsc::Receiver<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut seen = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            seen += 1;
            if seen > 1 {
                eprintln!("metaclaude: second signal: exiting without waiting");
                std::process::exit(130);
            }
            let _ = tx.try_send(());
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_requests_comments_or_errors() {
        assert!(parse_line("  ").is_none());
        assert!(parse_line("# a comment").is_none());
        let r = parse_line(r#"{"script_id":"s","inputs":{"n":3},"user":"ana"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(r.script_id, "s");
        assert_eq!(r.inputs["n"], 3);
        assert_eq!(r.user.as_deref(), Some("ana"));
        let e = parse_line(r#"{"script":"s"}"#).unwrap().unwrap_err();
        assert!(e.starts_with("unknown field `script`"), "{e}");
    }
}
