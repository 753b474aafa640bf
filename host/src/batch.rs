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
//!
//! With a [`MetricsFile`] (`--metrics-file`), the host's own metrics (plugins, and this
//! batch's counters) are written to a file while the batch runs and once more at its end:
//! the pattern of the node_exporter textfile collector for batch jobs.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use metaclaude_formats::prometheus::{bool_value, Exposition, MetricType};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::executor::{
    parse_request_line, Execution, Recording, RequestLineError, ToolExecutionService,
};
use crate::plugin::host_metrics;
use crate::plugin::PluginHost;

/// What a batch tells its operator as it runs (the CLI prints each on stderr); the
/// library prints nothing itself. Each one's `Display` is its whole line.
#[derive(Debug)]
pub enum BatchNotice {
    /// The input could not be read further (`after_line`: the last line read); the batch
    /// ends once what runs has finished.
    ReadFailed {
        /// The input as messages name it: its path, or `-` for stdin.
        source: String,
        /// Lines read before the failure.
        after_line: u64,
        /// The operating system's error (or a line that is not UTF-8).
        error: std::io::Error,
    },
    /// An input line that cannot be used, and why; the rest still run.
    BadLine {
        /// The input's path, or `-`.
        source: String,
        /// Its number, 1-based, blank and `#` lines counted.
        line: u64,
        /// What is wrong with it: not JSON, no `script_id`, an unknown key, a value of the
        /// wrong type.
        why: RequestLineError,
    },
    /// An execution finished but an acknowledging sink did not confirm storing it.
    NotRecorded {
        /// The execution's id; its result line is printed all the same.
        execution_id: String,
        /// One per sink that did not confirm, naming the plugin and why.
        reasons: Vec<String>,
    },
    /// The metrics file could not be written ([`MetricsFile::update`]'s warning).
    MetricsNotWritten(String),
    /// The first stop signal: no new executions; those running finish.
    Stopping {
        /// Executions started and not yet finished.
        running: usize,
    },
    /// A second stop signal: the operator wants out at once. The callback decides how
    /// the process ends (the CLI exits with status 130); if it returns, the batch goes on.
    SecondSignal,
}

impl std::fmt::Display for BatchNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchNotice::ReadFailed {
                source,
                after_line,
                error,
            } => write!(
                f,
                "error: {source}: cannot read after line {after_line}: {error}"
            ),
            BatchNotice::BadLine { source, line, why } => {
                write!(f, "error: {source}:{line}: {why}")
            }
            BatchNotice::NotRecorded {
                execution_id,
                reasons,
            } => write!(
                f,
                "error: execution {execution_id} finished but is not recorded: {}",
                reasons.join("; ")
            ),
            BatchNotice::MetricsNotWritten(warning) => write!(f, "{warning}"),
            BatchNotice::Stopping { running } => write!(
                f,
                "metaclaude: stopping: no new executions; waiting for {running} running"
            ),
            BatchNotice::SecondSignal => {
                write!(f, "metaclaude: second signal: exiting without waiting")
            }
        }
    }
}

/// Where a batch's notices go: called from the batch's task and from its signal watch.
/// An error (stderr cannot be written) ends the batch as an error writing its results
/// would; the signal watch's is ignored.
pub type Notices = Arc<dyn Fn(BatchNotice) -> std::io::Result<()> + Send + Sync>;

/// What a batch did, for its exit status.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    /// Executions reported finished that succeeded.
    pub succeeded: u64,
    /// Executions reported finished that failed, refused ones (an unknown script, bad
    /// inputs) included.
    pub failed: u64,
    /// Input lines that could not be used (each a [`BatchNotice`]).
    pub bad_lines: u64,
    /// Executions an acknowledging sink did not confirm (each a [`BatchNotice`]).
    pub unrecorded: u64,
    /// True when a signal stopped the batch before its input ended.
    pub interrupted: bool,
}

impl BatchSummary {
    /// Writes the `metaclaude_batch_*` families. `running`: the batch is still going
    /// (false in the file's last version, written once everything ended).
    pub fn write_metrics(&self, out: &mut Exposition, running: bool) {
        out.family(
            "metaclaude_batch_executions_total",
            MetricType::Counter,
            "Executions of this batch reported finished, by outcome (succeeded or failed).",
        )
        .sample(&[("outcome", "succeeded")], self.succeeded as f64)
        .sample(&[("outcome", "failed")], self.failed as f64);
        out.family(
            "metaclaude_batch_executions_unrecorded_total",
            MetricType::Counter,
            "Executions of this batch that finished but that an acknowledging sink did not confirm storing.",
        )
        .sample(&[], self.unrecorded as f64);
        out.family(
            "metaclaude_batch_bad_lines_total",
            MetricType::Counter,
            "Request lines of this batch that could not be used (each reported on stderr).",
        )
        .sample(&[], self.bad_lines as f64);
        out.family(
            "metaclaude_batch_running",
            MetricType::Gauge,
            "1 while the batch runs; 0 in the file's final version, written after the plugins delivered everything.",
        )
        .sample(&[], bool_value(running));
        out.family(
            "metaclaude_batch_interrupted",
            MetricType::Gauge,
            "1 when SIGINT or SIGTERM stopped the batch before its input ended.",
        )
        .sample(&[], bool_value(self.interrupted));
    }
}

/// `--metrics-file`: the host's metrics (the plugin families of [`host_metrics`] and the
/// batch's own) rewritten every `every` while the batch runs, and a last time at its end.
///
/// Each version replaces the file atomically (written beside it, then renamed over it),
/// so a reader such as node_exporter's textfile collector never sees half a file. A
/// write that fails is reported, never fatal: the batch matters more than its metrics.
pub struct MetricsFile {
    path: PathBuf,
    every: Duration,
    plugins: Option<Arc<PluginHost>>,
    /// The last write failed and was reported: the next failures are not, until a write
    /// succeeds again (a full disk must not repeat the warning every few seconds).
    failing: bool,
}

impl MetricsFile {
    /// Writes to `path`, every `every` while the batch runs (`--metrics-interval`), with
    /// the plugin families of `plugins` when there are plugins.
    pub fn new(path: PathBuf, every: Duration, plugins: Option<Arc<PluginHost>>) -> MetricsFile {
        MetricsFile {
            path,
            every,
            plugins,
            failing: false,
        }
    }

    /// The metrics as they are now.
    pub fn render(&self, summary: &BatchSummary, running: bool) -> String {
        let mut out = Exposition::new();
        let plugins = self.plugins.as_ref().map(|p| p.list()).unwrap_or_default();
        host_metrics::write_plugins(&mut out, &plugins);
        summary.write_metrics(&mut out, running);
        out.finish()
    }

    /// Replaces the file with the metrics as they are now. Returns the warning to show
    /// when the write failed: the first of a run of failures, and always the last write
    /// (`running` false), whose figures are final.
    pub fn update(&mut self, summary: &BatchSummary, running: bool) -> Option<String> {
        match crate::safe_fs::replace_file(
            &self.path,
            self.render(summary, running).as_bytes(),
            crate::safe_fs::Readers::Shared,
        ) {
            Ok(()) => {
                self.failing = false;
                None
            }
            Err(e) => {
                let report = !self.failing || !running;
                self.failing = true;
                report.then(|| {
                    format!(
                        "warning: cannot write the metrics file {}: {e}{}",
                        self.path.display(),
                        if running {
                            " (the batch goes on; retrying at each interval)"
                        } else {
                            ""
                        }
                    )
                })
            }
        }
    }
}

/// Runs every request read from `input` (named `source` in messages), at most
/// `concurrency` at a time, writing each result to `out` as one JSON line when it is
/// reported finished and telling problems to `notices`. Stops taking new lines on SIGINT
/// or SIGTERM and lets the executions already started finish; a second signal is told to
/// `notices`, which ends the process. With `metrics`, writes it at the start and then at
/// each of its intervals (the caller writes the final version, once the plugins
/// delivered everything).
pub async fn run_batch(
    service: Arc<ToolExecutionService>,
    input: Box<dyn BufRead + Send>,
    source: &str,
    concurrency: usize,
    mut metrics: Option<&mut MetricsFile>,
    mut out: impl Write,
    notices: Notices,
) -> std::io::Result<BatchSummary> {
    let concurrency = concurrency.max(1);
    // A batch may read its input for hours, as a server runs (see `crate::memory`).
    crate::memory::trim_every(crate::memory::TRIM_INTERVAL);
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
    let mut stop = stop_signals(notices.clone())?;
    let mut summary = BatchSummary::default();
    let mut running: JoinSet<Execution> = JoinSet::new();
    let mut line_no = 0u64;
    let mut reading = true;
    // The first tick is immediate: the file exists as soon as the batch starts.
    let mut metrics_tick = tokio::time::interval(
        metrics
            .as_ref()
            .map_or(Duration::from_secs(3600), |m| m.every),
    );
    metrics_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while reading || !running.is_empty() {
        tokio::select! {
            _ = metrics_tick.tick(), if metrics.is_some() => {
                if let Some(warning) = metrics.as_mut().and_then(|m| m.update(&summary, true)) {
                    notices(BatchNotice::MetricsNotWritten(warning))?;
                }
            }
            line = rx.recv(), if reading && running.len() < concurrency => match line {
                None => reading = false,
                Some(Err(error)) => {
                    notices(BatchNotice::ReadFailed {
                        source: source.to_string(),
                        after_line: line_no,
                        error,
                    })?;
                    summary.bad_lines += 1;
                    reading = false;
                }
                Some(Ok(line)) => {
                    line_no += 1;
                    match parse_request_line(&line) {
                        None => {}
                        Some(Err(why)) => {
                            notices(BatchNotice::BadLine {
                                source: source.to_string(),
                                line: line_no,
                                why,
                            })?;
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
                report(&execution, &mut summary, &mut out, &notices)?;
            }
            _ = stop.recv(), if reading => {
                notices(BatchNotice::Stopping { running: running.len() })?;
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
    notices: &Notices,
) -> std::io::Result<()> {
    let r = &execution.result;
    if r.success {
        summary.succeeded += 1;
    } else {
        summary.failed += 1;
    }
    if let Recording::Failed(reasons) = &execution.recording {
        summary.unrecorded += 1;
        notices(BatchNotice::NotRecorded {
            execution_id: r.execution_id.clone(),
            reasons: reasons.clone(),
        })?;
    }
    serde_json::to_writer(&mut *out, r)?;
    out.write_all(b"\n")?;
    // A line is a report: it must be out before the next execution is.
    out.flush()
}

/// A channel that yields on the first SIGINT or SIGTERM; a second one is told to
/// `notices`, whose callback ends the process at once (the CLI's: exit 130), as an
/// impatient operator expects.
fn stop_signals(notices: Notices) -> std::io::Result<mpsc::Receiver<()>> {
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
                let _ = notices(BatchNotice::SecondSignal);
                continue;
            }
            let _ = tx.try_send(());
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failing metrics file is reported once while the batch runs, again for the final
    /// write, and again after it recovered and failed anew; a good write leaves no
    /// temporary file behind.
    #[test]
    fn metrics_file_failures_are_reported_once_per_run_of_failures() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("later");
        let mut m = MetricsFile::new(dir.join("m.prom"), Duration::from_secs(1), None);
        let summary = BatchSummary {
            succeeded: 3,
            ..BatchSummary::default()
        };
        let warning = m
            .update(&summary, true)
            .expect("the first failure is reported");
        assert!(
            warning.contains(&format!("metrics file {}: ", dir.join("m.prom").display())),
            "{warning}"
        );
        assert_eq!(m.update(&summary, true), None, "reported already");
        std::fs::create_dir(&dir).unwrap();
        assert_eq!(m.update(&summary, true), None);
        let text = std::fs::read_to_string(dir.join("m.prom")).unwrap();
        assert!(
            text.contains("\nmetaclaude_batch_executions_total{outcome=\"succeeded\"} 3\n")
                && text.contains("\nmetaclaude_batch_running 1\n")
                && text.contains("# TYPE metaclaude_plugin_state gauge\n"),
            "{text}"
        );
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["m.prom"]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(m.update(&summary, true).is_some(), "a new run of failures");
        assert!(
            m.update(&summary, false).is_some(),
            "the final write always"
        );
    }
}
