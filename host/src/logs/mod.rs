//! `metaclaude logs`: the query side of the execution log (the seed's `execution-logger.py`
//! query interface).
//!
//! The log sink plugin writes JSON lines into the log directory: a live `executions.jsonl`
//! and rotated, gzip-compressed `executions-<UTC rotation time>.jsonl.gz` files. This module
//! reads all of them as one log, with these properties:
//!
//! * Streaming: lines are cut out of a 1 MiB buffer and parsed in place, so memory does not
//!   grow with the log (except `--stats`, which keeps 8 bytes per execution for exact
//!   percentiles, and an unlimited listing, which holds one file's matches to print them
//!   newest first).
//! * Fast: statistics read the files on all cores, in pieces (`pieces`); exact-value filters
//!   reject lines with a byte scan before parsing; only the needed fields are parsed, borrowed
//!   from the line; files are chosen by the times in their names when a date filter allows.
//! * Forgiving: an unreadable file, corrupt gzip data or a line that is not JSON is reported
//!   with file and line (a [`ReadNotice`] to the caller, which the CLI prints on stderr), and
//!   the query answers from everything else. An incomplete last line (a writer still
//!   appending) is skipped with a note.
//!
//! [`follow`] reads a log directory's new lines as they are written, across rotations:
//! the terminal dashboard's log source, and a server's script watch (runs of other
//! processes sharing the directory).

pub mod dates;
pub mod follow;
pub mod gen;
pub mod inflate;
mod parallel;
pub mod pieces;
pub mod query;
pub mod reader;
mod scan;
pub mod stats;
pub mod summaries;

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::model::ErrorCategory;
use metaclaude_formats::log_summary::{Dimension, SummaryView};
use metaclaude_formats::record_parser::parse_record;
use query::{Filter, Matcher, Record};
use reader::{LogFile, Reporter};
pub use reader::{ReadNotice, ReadNotices};
use stats::{GroupBy, Report, StatsAcc};
use summaries::SummaryPlan;

/// The default log directory, relative to the current directory.
pub const DEFAULT_LOG_DIR: &str = ".claude/logs/executions";

/// What `metaclaude logs` asks of the log: which executions, and whether to list them or
/// summarise them. Built by the command line (`cli/args.rs`) and by the server's history
/// queries, so both filter with the same code.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// The log directory.
    pub log_dir: PathBuf,
    /// Only failed executions.
    pub failed: bool,
    /// Only this execution.
    pub execution_id: Option<String>,
    /// At most N executions (the newest), or with `stats` the N newest are summarised.
    pub limit: Option<usize>,
    /// JSON lines (one full record per line; with `stats` one report object).
    pub json: bool,
    /// Only this specialist's executions (`--specialist`, exact).
    pub specialist: Option<String>,
    /// Only this script's executions, by registry id (`--script`).
    pub script: Option<String>,
    /// Only failures of this error category (`--category`).
    pub category: Option<ErrorCategory>,
    /// Only executions this user asked for (`--user`).
    pub user: Option<String>,
    /// Only executions of this session id (`--session`).
    pub session: Option<String>,
    /// Only executions of this correlation id (`--correlation-id`).
    pub correlation_id: Option<String>,
    /// Executions finished at or after.
    pub start_date: Option<DateTime<Utc>>,
    /// Executions finished before (exclusive: `--end-date 2024-01-15` is the next midnight,
    /// as [`dates::parse_instant`] makes it).
    pub end_date: Option<DateTime<Utc>>,
    /// Executions of the last this long (instead of `start_date`).
    pub since: Option<chrono::Duration>,
    /// Statistics instead of a listing.
    pub stats: bool,
    /// Statistics per group (implies `stats`).
    pub group_by: Option<GroupBy>,
    /// Read every file, even those whose summary could answer (exact percentiles).
    pub no_summaries: bool,
}

impl LogQuery {
    /// The time bounds `[start, end)` the filters ask for, `now` anchoring `--since`.
    pub fn bounds(&self, now: DateTime<Utc>) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        // An age longer than the calendar goes back means everything.
        let start = self.start_date.or_else(|| {
            self.since.map(|d| {
                now.checked_sub_signed(d)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC)
            })
        });
        (start, self.end_date)
    }

    /// The record filters these arguments make, `now` anchoring `--since`: what a
    /// [`Matcher`] runs, on the log or on executions held in memory.
    pub fn filter(&self, now: DateTime<Utc>) -> Filter {
        let (start, end) = self.bounds(now);
        Filter {
            failed: self.failed,
            execution_id: self.execution_id.clone(),
            specialist: self.specialist.clone(),
            script: self.script.clone(),
            category: self.category.map(|c| c.as_str().to_string()),
            user: self.user.clone(),
            session: self.session.clone(),
            correlation_id: self.correlation_id.clone(),
            start: start.as_ref().map(dates::bound_text),
            end: end.as_ref().map(dates::bound_text),
        }
    }

    /// The log's files that can hold an answer (by the times in their names), and the
    /// matcher of the filters; a missing log directory is an error saying how to fix it.
    fn select(&self, reporter: &Reporter) -> Result<(Vec<LogFile>, Matcher), LogsError> {
        self.select_at(reporter, Utc::now())
    }

    /// [`select`](Self::select) with `now` anchoring `--since`.
    fn select_at(
        &self,
        reporter: &Reporter,
        now: DateTime<Utc>,
    ) -> Result<(Vec<LogFile>, Matcher), LogsError> {
        let (start, end) = self.bounds(now);
        let files = reader::discover(&self.log_dir, reporter)
            .map_err(|source| LogsError::Directory {
                dir: self.log_dir.clone(),
                source,
            })?
            .into_iter()
            .filter(|f| f.may_overlap(start, end))
            .collect();
        Ok((files, Matcher::new(self.filter(now))))
    }

    fn wants_stats(&self) -> bool {
        self.stats || self.group_by.is_some()
    }

    /// How the files' summaries can answer these statistics (`now` anchoring `--since`):
    /// `None` when they cannot, or were not to be used.
    fn summary_plan(&self, now: DateTime<Utc>) -> Option<SummaryPlan> {
        if self.no_summaries || self.limit.is_some() {
            return None;
        }
        SummaryPlan::of(&self.filter(now), self.group_by)
    }
}

/// Why a query of the log has no answer (problems with single files or lines do not fail
/// it: they are [`ReadNotice`]s).
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// The log directory cannot be read (missing: no execution has been logged there).
    #[error(
        "cannot read the execution log directory {} (set METACLAUDE_LOG_DIR or --log-dir \
         to where the log sink writes; it is created by the first execution)",
        dir.display()
    )]
    Directory {
        /// The directory asked for (`--log-dir`, `METACLAUDE_LOG_DIR`).
        dir: PathBuf,
        /// The operating system's error, or the refusal of a directory that is a link.
        #[source]
        source: io::Error,
    },
    /// The answer could not be written.
    #[error(transparent)]
    Write(#[from] io::Error),
    /// The statistics could not be written as JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl LogsError {
    /// Whether the answer's reader went away (`metaclaude logs | head`): it has all it
    /// wants, which is no failure.
    pub fn is_broken_pipe(&self) -> bool {
        let pipe = Some(io::ErrorKind::BrokenPipe);
        match self {
            LogsError::Write(e) => Some(e.kind()) == pipe,
            // `--stats --json` writes through serde_json, which wraps the write's error.
            LogsError::Json(e) => e.io_error_kind() == pipe,
            LogsError::Directory { .. } => false,
        }
    }
}

/// What a query met besides its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Answered {
    /// Problems reading the log (each reported as a [`ReadNotice::Warning`]): the answer
    /// leaves those lines out.
    pub problems: u64,
}

/// The query of `metaclaude logs`, writing its answer to `out` as it goes (the CLI, the
/// benchmark and tests call this) and handing what it meets in the log to `notices`.
/// Problems with single files or lines do not fail the query; a missing log directory
/// does. `out` is not flushed.
pub fn execute(
    args: &LogQuery,
    out: &mut dyn Write,
    notices: ReadNotices<'_>,
) -> Result<Answered, LogsError> {
    let reporter = Reporter::new(notices);
    let now = Utc::now();
    let (files, matcher) = args.select_at(&reporter, now)?;
    if args.wants_stats() {
        let plan = args.summary_plan(now);
        let report = match args.limit {
            None => scan::count_all(
                &files,
                &matcher,
                plan.as_ref(),
                &reporter,
                args.group_by,
                pieces::Sizes::DEFAULT,
            ),
            Some(limit) => {
                let mut acc = StatsAcc::default();
                newest_first(&files, &matcher, &reporter, Some(limit), |r, _| {
                    acc.add(r, args.group_by);
                    Ok(())
                })?;
                acc.finish(args.group_by)
            }
        };
        if args.json {
            serde_json::to_writer(&mut *out, &report)?;
            writeln!(out)?;
        } else {
            write_stats_table(out, &report)?;
        }
    } else {
        if !args.json {
            writeln!(out, "{}", table_row(&HEADER.map(String::from)))?;
        }
        let mut shown = 0u64;
        newest_first(&files, &matcher, &reporter, args.limit, |r, line| {
            shown += 1;
            if args.json {
                out.write_all(line)?;
                out.write_all(b"\n")?;
            } else {
                writeln!(out, "{}", table_row(&row(r)))?;
            }
            Ok(())
        })?;
        if shown == 0 && !args.json {
            writeln!(out, "(no executions match)")?;
        }
    }
    Ok(Answered {
        problems: reporter.count(),
    })
}

/// The newest `limit` execution records of the log that `query`'s filters take, as the
/// log's JSON lines, newest first: a server's history beyond what it holds in memory.
/// Damaged input is reported to `notices` and skipped, as by `metaclaude logs`.
pub fn newest_records(
    query: &LogQuery,
    limit: usize,
    notices: ReadNotices<'_>,
) -> Result<Vec<Vec<u8>>, LogsError> {
    let reporter = Reporter::new(notices);
    let (files, matcher) = query.select(&reporter)?;
    let mut found = Vec::new();
    newest_first(&files, &matcher, &reporter, Some(limit), |_, line| {
        found.push(line.to_vec());
        Ok(())
    })?;
    Ok(found)
}

/// Every execution record of the log that `query`'s filters take, oldest first, as its
/// JSON line: for replaying the log through the code a live host runs (`replay`).
/// Damaged input is reported to `notices` and skipped. Returns how many were handed out.
pub fn for_each_record(
    query: &LogQuery,
    notices: ReadNotices<'_>,
    mut each: impl FnMut(&[u8]),
) -> Result<u64, LogsError> {
    let reporter = Reporter::new(notices);
    let (files, matcher) = query.select(&reporter)?;
    let mut n = 0;
    for file in &files {
        scan::scan_file(file, &matcher, &reporter, |_, line| {
            n += 1;
            each(line);
            true
        });
    }
    Ok(n)
}

/// What a replay of the log is handed: an execution record's line, or a whole rotated
/// file's summary standing for its executions.
#[derive(Debug, Clone, Copy)]
pub enum Replayed<'a> {
    /// One execution record, its JSON line.
    Line(&'a [u8]),
    /// A file's summary, with the groups of the dimensions asked for.
    Summary(&'a SummaryView),
}

/// [`for_each_record`], but a rotated file is handed out as its summary instead of being
/// read when the summary holds the figures of all its executions that the query takes:
/// the query has no filter but its time range, and every execution in the file finished
/// inside the range and before `summarised_before` (a replay reads what its report's short
/// windows cover). A summary that cannot be used is a note, and the file is read. Returns
/// how many executions were handed out, in lines and in summaries.
pub fn for_each_record_or_summary(
    query: &LogQuery,
    summarised_before: DateTime<Utc>,
    dimensions: &[Dimension],
    notices: ReadNotices<'_>,
    mut each: impl FnMut(Replayed<'_>),
) -> Result<u64, LogsError> {
    let reporter = Reporter::new(notices);
    let now = Utc::now();
    let (files, matcher) = query.select_at(&reporter, now)?;
    let filter = query.filter(now);
    let usable = SummaryPlan::of(&filter, None).is_some();
    let before = dates::bound_text(&summarised_before);
    let inside = |t: &String| {
        filter.start.as_ref().is_none_or(|s| t >= s) && filter.end.as_ref().is_none_or(|e| t < e)
    };
    let mut n = 0;
    for file in &files {
        if usable && file.summary.is_some() {
            match summaries::load(file, dimensions) {
                Ok(view) => match (&view.header.first, &view.header.last) {
                    (Some(first), Some(last))
                        if inside(first) && inside(last) && *last < before =>
                    {
                        n += view.header.executions;
                        each(Replayed::Summary(&view));
                        continue;
                    }
                    (None, _) => continue, // no execution in it
                    _ => {}
                },
                Err(why) => scan::ignored_summary(file, &why, &reporter),
            }
        }
        scan::scan_file(file, &matcher, &reporter, |_, line| {
            n += 1;
            each(Replayed::Line(line));
            true
        });
    }
    Ok(n)
}

/// Matching executions newest first, at most `limit`. Files are read newest first; within
/// a file (written oldest first) the matches are held (only the last `limit` of them) and
/// then handed out in reverse.
fn newest_first(
    files: &[LogFile],
    matcher: &Matcher,
    reporter: &Reporter,
    limit: Option<usize>,
    mut each: impl FnMut(&Record<'_>, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut remaining = limit.unwrap_or(usize::MAX);
    for file in files.iter().rev() {
        if remaining == 0 {
            break;
        }
        let mut held: VecDeque<Vec<u8>> = VecDeque::new();
        scan::scan_file(file, matcher, reporter, |_, line| {
            if held.len() == remaining {
                held.pop_front();
            }
            held.push_back(line.to_vec());
            true
        });
        remaining -= held.len();
        for line in held.iter().rev() {
            let r = parse_record(line).expect("parsed once already");
            each(&r, line)?;
        }
    }
    Ok(())
}

const HEADER: [&str; 9] = [
    "FINISHED (UTC)",
    "LEVEL",
    "SCRIPT",
    "SPECIALIST",
    "USER",
    "DURATION",
    "PEAK MB",
    "RESULT",
    "EXECUTION ID",
];

fn row(r: &Record<'_>) -> [String; 9] {
    let s = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().unwrap_or("-").to_string();
    let u = r.usage();
    let result = match (r.success, r.category.as_deref(), r.exit_code) {
        (Some(true), _, _) => "ok".to_string(),
        (_, Some(c), Some(code)) => format!("{c} (exit {code})"),
        (_, Some(c), None) => c.to_string(),
        (_, None, Some(code)) => format!("exit {code}"),
        _ => "failed".to_string(),
    };
    let ts = r.timestamp.as_deref().unwrap_or("-");
    [
        ts.get(..19).unwrap_or(ts).replace('T', " "),
        s(&r.level),
        s(&r.script_id),
        s(&r.specialist),
        s(&r.user),
        format!("{:.3}s", u.wall_time_seconds),
        format!("{:.1}", u.peak_memory_mb),
        result,
        s(&r.execution_id),
    ]
}

/// Fixed widths keep a streamed table aligned without holding rows to measure them.
fn table_row(cells: &[String; 9]) -> String {
    const WIDTHS: [usize; 9] = [19, 5, 28, 20, 12, 10, 8, 22, 0];
    let mut line = String::new();
    for (cell, w) in cells.iter().zip(WIDTHS) {
        let cell = if w > 0 && cell.chars().count() > w {
            let cut: String = cell.chars().take(w - 1).collect();
            format!("{cut}…")
        } else {
            cell.clone()
        };
        line.push_str(&format!("{cell:<w$}  "));
    }
    line.trim_end().to_string()
}

fn write_stats_table(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    let o = &report.overall;
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    writeln!(out, "Executions:        {}", o.count)?;
    writeln!(out, "Successes:         {}", o.successes)?;
    writeln!(out, "Failures:          {}", o.failures)?;
    writeln!(
        out,
        "Success rate:      {}",
        o.success_rate
            .map_or("-".to_string(), |r| format!("{r:.1}%"))
    )?;
    let d = &o.duration_seconds;
    writeln!(
        out,
        "Duration (s):      avg {}  p50 {}  p90 {}  p95 {}  p99 {}  max {}  ({})",
        f(d.avg),
        f(d.p50),
        f(d.p90),
        f(d.p95),
        f(d.p99),
        f(d.max),
        match report.percentile_relative_error {
            Some(e) => format!(
                "percentiles within {}% of nearest-rank: files counted from their summaries; --no-summaries for exact",
                e * 100.0
            ),
            None => "nearest-rank".to_string(),
        }
    )?;
    writeln!(
        out,
        "Peak memory (MB):  max {}  avg {}",
        f(o.peak_memory_mb.max),
        f(o.peak_memory_mb.avg)
    )?;
    writeln!(
        out,
        "CPU time (s):      {:.3} total",
        o.cpu_time_seconds_total
    )?;
    writeln!(out, "Retries:           {}", o.retries)?;
    if !o.failures_by_category.is_empty() {
        writeln!(out, "Failures by category:")?;
        for (c, n) in &o.failures_by_category {
            writeln!(out, "  {c:<12} {n}")?;
        }
    }
    if let Some(g) = report.group_by {
        use clap::ValueEnum;
        let name = g
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        writeln!(out)?;
        writeln!(
            out,
            "{:<28} {:>8} {:>8} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>7}  FAILURES",
            name.to_uppercase(),
            "COUNT",
            "OK",
            "FAILED",
            "RATE",
            "AVG s",
            "P50 s",
            "P90 s",
            "P95 s",
            "P99 s",
            "MAX s",
            "PEAK MB",
            "CPU s",
            "RETRIES"
        )?;
        for group in &report.groups {
            let s = &group.stats;
            let d = &s.duration_seconds;
            let cats: Vec<String> = s
                .failures_by_category
                .iter()
                .map(|(c, n)| format!("{c}={n}"))
                .collect();
            writeln!(
                out,
                "{:<28} {:>8} {:>8} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10.1} {:>7}  {}",
                group.key,
                s.count,
                s.successes,
                s.failures,
                s.success_rate.map_or("-".to_string(), |r| format!("{r:.1}%")),
                f(d.avg),
                f(d.p50),
                f(d.p90),
                f(d.p95),
                f(d.p99),
                f(d.max),
                f(s.peak_memory_mb.max),
                s.cpu_time_seconds_total,
                s.retries,
                cats.join(" ")
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
