//! The execution log replayed through the code a live host runs, so that figures computed
//! from the log and figures a running `serve` gives never disagree: reports through the
//! [`Monitor`] (as `/api/v1/stats` computes them), Prometheus text through the exporter
//! plugins themselves (as `/metrics` renders it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::executor::EventSink;
use crate::logs::{self, LogQuery, LogsError, ReadNotices};
use crate::model::{ExecutionEvent, ExecutionResult};
use crate::monitor::{Limits, Monitor, Report};
use crate::plugin::manifest::PluginKind;
use crate::plugin::runtime::engine::PluginEngine;
use crate::plugin::{host_metrics, GrantSource, PluginError, PluginHost};
use metaclaude_formats::prometheus::{Format, EOF_LINE};

/// Why the log could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The log directory could not be read.
    #[error(transparent)]
    Log(#[from] LogsError),
    /// The plugin runtime or the plugins directory.
    #[error(transparent)]
    Plugins(#[from] PluginError),
    /// No exporter plugin loaded from the plugins directory: none is there, or each one
    /// failed to load (logged as a warning).
    #[error(
        "no exporter plugin in {} (the Prometheus exporter is one of the default plugins: cargo xtask build-plugins installs it)",
        dir.display()
    )]
    NoExporter {
        /// The plugins directory read.
        dir: PathBuf,
    },
    /// An exporter's render failed: its name, and what it said.
    #[error("exporter {name} did not render: {message}")]
    Render {
        /// The exporter plugin's name.
        name: String,
        /// Its own error, or the host's (it trapped, it has stopped).
        message: String,
    },
}

/// A log record as the result it records (the log's own fields are ignored), cut down to
/// what reports and exporters read: outputs, attempts and inputs dropped, so that replaying
/// an hour of a busy host holds a few hundred bytes per execution.
fn compact_result(line: &[u8]) -> Option<ExecutionResult> {
    let mut r: ExecutionResult = serde_json::from_slice(line).ok()?;
    r.stdout = String::new();
    r.stderr = String::new();
    r.attempts = Vec::new();
    r.inputs = Default::default();
    if let Some(e) = &mut r.error_details {
        e.suggestions = Vec::new();
        e.stack_trace = None;
        e.context.extra = Default::default();
    }
    Some(r)
}

/// The log's executions that finished at or after `since` (all when `None`).
fn query(log_dir: &Path, since: Option<DateTime<Utc>>) -> LogQuery {
    LogQuery {
        log_dir: log_dir.to_path_buf(),
        start_date: since,
        ..LogQuery::default()
    }
}

/// The report of [`Monitor::report`] for the last `period_minutes` of the log (0: all of
/// it): the executions are fed to a monitor as a live host would have been fed. Damaged
/// lines of the log are reported to `notices` and left out.
pub fn report(
    log_dir: &Path,
    period_minutes: u64,
    top: usize,
    now: DateTime<Utc>,
    notices: ReadNotices<'_>,
) -> Result<Report, LogsError> {
    let since =
        (period_minutes > 0).then(|| now - chrono::Duration::minutes(period_minutes as i64));
    let monitor = Monitor::new(Limits {
        recent: usize::MAX,
        recent_output_bytes: usize::MAX,
        feed: 1,
    });
    logs::for_each_record(&query(log_dir, since), notices, |line| {
        if let Some(r) = compact_result(line) {
            monitor.backdate(r.started_at);
            monitor.emit(&ExecutionEvent::finished(r));
        }
    })?;
    Ok(monitor.report(period_minutes, top, now))
}

/// What the exporter plugins of `plugins_dir` render after every execution of the log
/// since `since` was delivered to them: the text a `serve` that ran those executions
/// would put on `/metrics` after the host's own families. Exporters that keep state in
/// memory only (Prometheus) start empty, so this is the log's view, not a live host's.
/// In `format`, as a scrape asking for it gets it: OpenMetrics ending with one `# EOF`, or
/// the text format 0.0.4 (each exporter's OpenMetrics converted down). Damaged lines of
/// the log are reported to `notices` and left out.
pub fn exporters_text(
    log_dir: &Path,
    plugins_dir: &Path,
    grants: &GrantSource,
    since: Option<DateTime<Utc>>,
    format: Format,
    notices: ReadNotices<'_>,
) -> Result<String, ReplayError> {
    let mut host = PluginHost::new(PluginEngine::default_cache_dir())?;
    host.set_grants(grants.clone());
    let errors = host.load_dir_where(plugins_dir, |m| m.kind == PluginKind::Exporter)?;
    for e in errors {
        tracing::warn!("{e}");
    }
    let host = Arc::new(host);
    // Only exporters were loaded.
    if host.is_empty() {
        return Err(ReplayError::NoExporter {
            dir: plugins_dir.to_path_buf(),
        });
    }
    logs::for_each_record(&query(log_dir, since), notices, |line| {
        if let Some(r) = compact_result(line) {
            host.emit(&ExecutionEvent::finished(r));
        }
    })?;
    host.flush();
    let mut failed = None;
    let (format, mut text) = host_metrics::exporter_families(&host, format, |name, why| {
        failed.get_or_insert_with(|| ReplayError::Render {
            name: name.to_string(),
            message: why.to_string(),
        });
    });
    if let Some(e) = failed {
        return Err(e);
    }
    if format == Format::OpenMetrics {
        text.push_str(EOF_LINE);
        text.push('\n');
    }
    host.shutdown();
    Ok(text)
}
