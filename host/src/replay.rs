//! The execution log replayed through the code a live host runs, so that figures computed
//! from the log and figures a running `serve` gives never disagree: reports through the
//! [`Monitor`] (as `/api/v1/stats` computes them), Prometheus text through the exporter
//! plugins themselves (as `/metrics` renders it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::executor::EventSink;
use crate::logs::query::record_of;
use crate::logs::stats::GroupBy;
use crate::logs::{self, LogQuery, LogsError, ReadNotices, Replayed};
use crate::model::{ExecutionEvent, ExecutionResult};
use crate::monitor::{Absorbed, Earlier, Limits, Monitor, Report, Summarised};
use crate::plugin::manifest::PluginKind;
use crate::plugin::runtime::engine::PluginEngine;
use crate::plugin::{host_metrics, GrantSource, PluginError, PluginHost};
use metaclaude_formats::log_summary::{Dimension, SummaryView};
use metaclaude_formats::prometheus::{Format, EOF_LINE};
use metaclaude_sketch::Window;
use std::collections::BTreeMap;

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
/// it): the executions are fed to a monitor as a live host would have been fed. A rotated
/// file whose executions all finished inside the period and more than an hour before `now`
/// (past the report's 1-, 5- and 60-minute windows) is counted from its summary, when
/// `summaries` and it has one, instead of being read: every count, the since-start
/// percentiles and the rates are the same; the window's percentiles are then the
/// sketches', within 1 %. Damaged lines of the log are reported to `notices` and left out.
pub fn report(
    log_dir: &Path,
    period_minutes: u64,
    top: usize,
    now: DateTime<Utc>,
    summaries: bool,
    notices: ReadNotices<'_>,
) -> Result<Report, LogsError> {
    let since =
        (period_minutes > 0).then(|| now - chrono::Duration::minutes(period_minutes as i64));
    let monitor = Monitor::new(Limits {
        recent: usize::MAX,
        recent_output_bytes: usize::MAX,
        feed: 1,
    });
    let longest_window = Window::ALL
        .iter()
        .filter_map(|w| w.length_ms())
        .max()
        .unwrap_or(0);
    // Without summaries, nothing is "before" the start of time.
    let summarised_before = match summaries {
        true => now - chrono::Duration::milliseconds(longest_window as i64),
        false => DateTime::<Utc>::MIN_UTC,
    };
    let dimensions = [Dimension::Script, Dimension::Specialist];
    let query = query(log_dir, since);
    logs::for_each_record_or_summary(&query, summarised_before, &dimensions, notices, |item| {
        match item {
            Replayed::Line(line) => {
                if let Some(r) = compact_result(line) {
                    monitor.backdate(r.started_at);
                    monitor.emit(&ExecutionEvent::finished(r));
                }
            }
            Replayed::Summary(view) => absorb(&monitor, view),
        }
    })?;
    Ok(monitor.report(period_minutes, top, now))
}

/// The executions of the log that a server's report window holds but its memory does not:
/// those that finished from `since` (the log's start when `None`) to before `until`
/// ([`Monitor::memory_covers_from`]) and that `scope` takes (the dashboards' script,
/// specialist and user; the fields of a [`LogQuery`] other than these are ignored). A
/// rotated file wholly inside, with no scope, is counted from its summary instead of being
/// read; the others are read. Damaged lines are reported to `notices` and left out.
pub fn earlier(
    log_dir: &Path,
    since: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
    scope: &LogQuery,
    notices: ReadNotices<'_>,
) -> Result<Earlier, LogsError> {
    let query = LogQuery {
        log_dir: log_dir.to_path_buf(),
        start_date: since,
        end_date: Some(until),
        script: scope.script.clone(),
        specialist: scope.specialist.clone(),
        user: scope.user.clone(),
        ..LogQuery::default()
    };
    let mut figures = Absorbed::default();
    let dimensions = [Dimension::Script, Dimension::Specialist];
    let empty = BTreeMap::new();
    logs::for_each_record_or_summary(&query, until, &dimensions, notices, |item| {
        let finished = match item {
            Replayed::Line(line) => {
                let Some(r) = compact_result(line) else {
                    return;
                };
                let record = record_of(&r);
                figures.overall.add(&record);
                figures.scripts.add(&record, Some(GroupBy::Script));
                figures.specialists.add(&record, Some(GroupBy::Specialist));
                Some(r.finished_at)
            }
            Replayed::Summary(view) => {
                let groups = |d| {
                    view.groups
                        .get(&d)
                        .unwrap_or(&empty)
                        .iter()
                        .map(|(k, f)| (k.as_str(), f))
                };
                figures.overall.add_figures(&view.overall);
                let scripts = groups(Dimension::Script);
                figures
                    .scripts
                    .add_summary([], scripts, Some(GroupBy::Script));
                let specialists = groups(Dimension::Specialist);
                figures
                    .specialists
                    .add_summary([], specialists, Some(GroupBy::Specialist));
                summary_time(&view.header.first)
            }
        };
        if let Some(t) = finished {
            figures.oldest = Some(figures.oldest.map_or(t, |o| o.min(t)));
        }
    })?;
    Ok(Earlier { figures, until })
}

/// A summary's time, read.
fn summary_time(t: &Option<String>) -> Option<DateTime<Utc>> {
    t.as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Counts a file's summary into the replay's monitor (see [`Monitor::absorb`]).
fn absorb(monitor: &Monitor, view: &SummaryView) {
    let time = summary_time;
    let (Some(first), Some(last)) = (time(&view.header.first), time(&view.header.last)) else {
        return; // no execution in it
    };
    let empty = BTreeMap::new();
    let groups = |d| view.groups.get(&d).unwrap_or(&empty);
    monitor.absorb(Summarised {
        overall: &view.overall,
        scripts: groups(Dimension::Script),
        specialists: groups(Dimension::Specialist),
        finished: (first, last),
        first_started: time(&view.header.first_started),
    });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::gen::{generate, GenConfig};
    use crate::logs::tests::assert_within_sketch_error;

    /// 3 MiB of generated log in rotated files of 300 KiB, each with its summary.
    fn generated_with_summaries() -> (tempfile::TempDir, GenConfig) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = GenConfig {
            total_bytes: 3 << 20,
            rotated_bytes: 300 << 10,
            live_fraction: 0.1,
            summaries: true,
            ..GenConfig::default()
        };
        generate(dir.path(), &cfg).unwrap();
        (dir, cfg)
    }

    /// Damages the middle of the second rotated file, keeping its size and trailer (its
    /// summary still matches it: only reading it meets the damage).
    fn damage_the_second_rotated_file(dir: &Path) {
        let files = logs::reader::discover(dir, &Default::default()).unwrap();
        let gz = &files[1].path;
        let mut bytes = std::fs::read(gz).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid..mid + 64].fill(0xAA);
        std::fs::write(gz, bytes).unwrap();
    }

    /// `metrics --report --log` counting old files from their summaries answers as reading
    /// every line: the same counts, rates, top lists and since-start percentiles, the
    /// window's percentiles within the sketches' 1 %; and it does not read those files (one
    /// damaged inside, its size and trailer kept, changes nothing and says nothing).
    #[test]
    fn a_report_from_summaries_counts_as_one_from_every_line() {
        let (dir, cfg) = generated_with_summaries();
        let now = Utc::now();
        // Everything, and a period that starts inside the third rotated file.
        let cut = cfg.start + chrono::Duration::hours(15);
        let periods = [0, (now - cut).num_minutes() as u64];
        let report_of = |period, summaries| {
            let notices = std::sync::Mutex::new(Vec::new());
            let r = report(dir.path(), period, 5, now, summaries, &|n| {
                notices.lock().unwrap().push(n)
            })
            .unwrap();
            (
                serde_json::to_value(r).unwrap(),
                notices.into_inner().unwrap(),
            )
        };
        let full: Vec<_> = periods.iter().map(|p| report_of(*p, false).0).collect();
        damage_the_second_rotated_file(dir.path());
        for (period, full) in periods.iter().zip(&full) {
            let (ours, notices) = report_of(*period, true);
            assert!(notices.is_empty(), "period {period}: {notices:?}");
            let executions = ours["since_start"]["executions"].as_u64().unwrap();
            assert!(executions > 1000, "period {period}: {executions}");
            for key in [
                "since_start",
                "percentiles",
                "period_minutes",
                "generated_at",
            ] {
                assert_eq!(ours[key], full[key], "period {period}: {key}");
            }
            assert_within_sketch_error(
                &ours["executions_per_minute"],
                &full["executions_per_minute"],
                "executions_per_minute",
            );
            assert_within_sketch_error(&ours["window"], &full["window"], "window");
        }
        // Reading every line meets the damage.
        let (_, notices) = report_of(0, false);
        assert!(!notices.is_empty());
    }

    /// A server's window reaching before its memory counts the log's part from the
    /// rotated files' summaries as a replay of every line would: the same counts and top
    /// lists, percentiles within the sketches' 1 %; the summarised files are not read (one
    /// damaged inside says nothing).
    #[test]
    fn a_windows_earlier_part_from_summaries_counts_as_every_line() {
        let (dir, cfg) = generated_with_summaries();
        let now = Utc::now();
        let cut = cfg.start + chrono::Duration::hours(15);
        let period = (now - cut).num_minutes() as u64;
        let since = now - chrono::Duration::minutes(period as i64);
        let no_notices = |_| panic!("a summarised file was read");
        let (full, _) = (
            report(dir.path(), period, 5, now, false, &|_| {}).unwrap(),
            (),
        );
        damage_the_second_rotated_file(dir.path());
        let part = earlier(
            dir.path(),
            Some(since),
            now,
            &LogQuery::default(),
            &no_notices,
        )
        .unwrap();
        assert!(part.figures.overall.from_summaries());
        // A server that holds nothing of the window.
        let monitor = Monitor::new(Limits::default());
        let ours = monitor.stats_matching(Some(since), 5, None, Some(&part));
        let ours = serde_json::to_value(ours).unwrap();
        let full = serde_json::to_value(full.window).unwrap();
        assert!(ours["overall"]["count"].as_u64().unwrap() > 1000, "{ours}");
        assert_eq!(ours["overall"]["count"], full["overall"]["count"]);
        assert_eq!(ours["complete"], true);
        for key in ["overall", "top_scripts", "top_specialists"] {
            assert_within_sketch_error(&ours[key], &full[key], key);
        }
    }
}
