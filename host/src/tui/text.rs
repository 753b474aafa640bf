//! The plain-text snapshot (`--text`, one block per interval; `--once`, one block): the
//! dashboard's panes as lines for a log file, without escape codes, every outside text made
//! safe. The filter and sort of the interactive view do not apply; the lists are the
//! newest (running: the oldest) first.

use std::fmt::Write;

use metaclaude::monitor::RunState;

use super::data::View;
use super::render::percentile_windows;
use super::scripts::{relative, short_id, ScriptsView};
use super::{age, clock, outcome, percent, safe, seconds};

/// Rows each list shows.
const LIST_ROWS: usize = 10;
/// Throughput is shown per this many seconds.
const THROUGHPUT_STEP: usize = 5;

/// One block: a header line, the summary, then each pane; ends with a blank line.
pub fn snapshot(view: &View) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== metaclaude dashboard {} UTC  {}  data {}",
        view.at.format("%Y-%m-%d %H:%M:%S"),
        view.connection.describe(),
        view.data_age
            .map_or("none yet".to_string(), |a| format!("{} old", age(a)))
    );
    match &view.stats {
        None => {
            let _ = writeln!(out, "waiting for data");
        }
        Some(s) => {
            let o = &s["window"]["overall"];
            let d = &o["duration_seconds"];
            let rate = o["success_rate"].as_f64();
            let _ = writeln!(
                out,
                "Executions (last 60 min): {}  running now: {}  since start: {}  rate {:.1}/min",
                o["count"].as_u64().unwrap_or(0),
                view.running.len(),
                s["since_start"]["executions"].as_u64().unwrap_or(0),
                s["executions_per_minute"].as_f64().unwrap_or(0.0)
            );
            let _ = writeln!(
                out,
                "Success rate: {}  failure rate: {}  ({} ok, {} failed, {} retries)",
                percent(rate),
                percent(rate.map(|r| 100.0 - r)),
                o["successes"].as_u64().unwrap_or(0),
                o["failures"].as_u64().unwrap_or(0),
                o["retries"].as_u64().unwrap_or(0)
            );
            let _ = writeln!(
                out,
                "Duration: avg {}  p50 {}  p90 {}  p95 {}  p99 {}  max {}",
                seconds(d["avg"].as_f64()),
                seconds(d["p50"].as_f64()),
                seconds(d["p90"].as_f64()),
                seconds(d["p95"].as_f64()),
                seconds(d["p99"].as_f64()),
                seconds(d["max"].as_f64())
            );
            let windows: Vec<String> = percentile_windows(s)
                .into_iter()
                .map(|(w, q)| {
                    format!(
                        "{w} {} runs p50 {} p99 {}",
                        q["count"].as_u64().unwrap_or(0),
                        seconds(q["p50"].as_f64()),
                        seconds(q["p99"].as_f64())
                    )
                })
                .collect();
            if !windows.is_empty() {
                let _ = writeln!(out, "Percentiles: {}", windows.join("; "));
            }
            let categories: Vec<String> = o["failures_by_category"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{} {v}", safe(k))).collect())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "Errors by category: {}",
                if categories.is_empty() {
                    "none".to_string()
                } else {
                    categories.join(", ")
                }
            );
        }
    }
    let per_step: Vec<String> = view
        .throughput
        .chunks(THROUGHPUT_STEP)
        .map(|c| c.iter().sum::<u64>().to_string())
        .collect();
    let _ = writeln!(
        out,
        "Throughput (finished per {THROUGHPUT_STEP} s, last 60 s, oldest first): {}",
        per_step.join(" ")
    );

    let _ = writeln!(out, "Running now ({}):", view.running.len());
    for r in view.running.iter().take(LIST_ROWS) {
        let state = match r.state {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Retrying => "retrying",
        };
        let _ = writeln!(
            out,
            "  {}  {:<24} {:<8} attempt {}  for {}",
            r.identity.execution_id,
            safe(&r.identity.script_id),
            state,
            r.attempt,
            seconds(Some(
                (view.at - r.queued_at).num_milliseconds().max(0) as f64 / 1000.0
            ))
        );
    }

    let top = view
        .stats
        .as_ref()
        .and_then(|s| s["window"]["top_scripts"].as_array().cloned())
        .unwrap_or_default();
    let _ = writeln!(out, "Top scripts (by executions):");
    if top.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for g in top.iter().take(LIST_ROWS) {
        let _ = writeln!(
            out,
            "  {:<24} {:>6} runs  {:>6} ok  p95 {}",
            safe(g["key"].as_str().unwrap_or("?")),
            g["count"].as_u64().unwrap_or(0),
            percent(g["success_rate"].as_f64()),
            seconds(g["duration_seconds"]["p95"].as_f64())
        );
    }

    let _ = writeln!(out, "Recent executions ({} held):", view.recent.len());
    for r in view.recent.iter().take(LIST_ROWS) {
        let _ = writeln!(
            out,
            "  {}  {:<10} {:<24} {:<16} {:>8}  {}",
            clock(r.finished_at),
            outcome(r),
            safe(&r.script_id),
            safe(r.specialist.as_deref().unwrap_or("-")),
            seconds(Some(r.resource_usage.wall_time_seconds)),
            r.execution_id
        );
    }

    let _ = writeln!(out, "Active alerts ({}):", view.alerts.len());
    for a in view.alerts.iter().take(LIST_ROWS) {
        let _ = writeln!(
            out,
            "  {:<8} {} {}: {}",
            a.severity.as_str(),
            safe(&a.kind),
            a.specialist
                .as_deref()
                .map(|s| format!("specialist={}", safe(s)))
                .unwrap_or_default(),
            safe(&a.message)
        );
    }

    match &view.plugins {
        None => {
            let _ = writeln!(out, "Plugins: not known from the log");
        }
        Some(plugins) => {
            let _ = writeln!(out, "Plugins ({}):", plugins.len());
            for p in plugins {
                let _ = writeln!(
                    out,
                    "  {:<24} {:<11} queue {}  dropped {}  failures {}",
                    safe(p["name"].as_str().unwrap_or("?")),
                    safe(p["state"].as_str().unwrap_or("?")),
                    p["queue_depth"].as_u64().unwrap_or(0),
                    p["dropped"].as_u64().unwrap_or(0),
                    p["failures"].as_u64().unwrap_or(0)
                );
            }
        }
    }
    scripts(&mut out, view);
    out.push('\n');
    out
}

/// The Scripts view's lines: each script with expectations, then the active silences.
fn scripts(out: &mut String, view: &View) {
    let now = view.at;
    let (rows, silences) = match &view.scripts {
        ScriptsView::NeedsServer => {
            let _ = writeln!(
                out,
                "Scripts with expectations: their states are a server's (--server URL); a log has none"
            );
            return;
        }
        ScriptsView::Waiting => {
            let _ = writeln!(out, "Scripts with expectations: waiting for the server");
            return;
        }
        ScriptsView::Known { rows, silences } => (rows, silences),
    };
    let _ = writeln!(out, "Scripts with expectations ({}):", rows.len());
    for r in rows {
        let _ = write!(
            out,
            "  {:<24} {:<9} last run {}  last ok {}  next {}  failures {}  missed {} in a row, {} in all",
            safe(&r.script),
            safe(&r.state),
            r.last_run.as_ref().map_or("-".to_string(), |l| format!(
                "{} {} ({})",
                safe(&l.outcome),
                relative(l.finished_at, now),
                l.execution_id
            )),
            r.last_success
                .map_or("none seen".to_string(), |t| relative(t, now)),
            r.next_expected.map_or("-".to_string(), |t| format!(
                "{} ({})",
                relative(t, now),
                metaclaude::model::timestamp::format(&t)
            )),
            r.failures_in_a_row,
            r.missed_in_a_row,
            r.missed_total
        );
        if let Some(s) = &r.specialist {
            let _ = write!(out, "  specialist={}", safe(s));
        }
        if r.running > 0 {
            let _ = write!(out, "  running {}", r.running);
        }
        if let Some(s) = &r.schedule {
            let _ = write!(out, "  schedule {}", safe(s));
        }
        if !r.silenced_by.is_empty() {
            let _ = write!(out, "  silenced by {}", safe(&r.silenced_by.join(",")));
        }
        out.push('\n');
    }
    if let Some(silences) = silences {
        let _ = writeln!(out, "Active silences ({}):", silences.len());
        for s in silences.iter().take(LIST_ROWS) {
            let _ = writeln!(
                out,
                "  {}  {}  until {}  by {}: {}",
                safe(&short_id(&s.id)),
                safe(&s.matchers),
                s.ends_at
                    .map_or("-".to_string(), |t| metaclaude::model::timestamp::format(
                        &t
                    )),
                safe(&s.created_by),
                safe(&s.comment)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;
    use metaclaude::model::ExecutionResult;

    use super::super::data::{Connection, View};
    use super::*;

    #[test]
    fn a_block_has_every_pane_and_no_control_character_whatever_the_names() {
        let mut view = View::empty(
            Connection::Following {
                dir: "logs\u{1b}[2J".into(),
            },
            Utc::now(),
        );
        let mut r = ExecutionResult::new("01JX", "evil\u{1b}]0;owned\u{7}", Utc::now());
        r.specialist = Some("spec\u{9b}31m\r\n".into());
        view.recent.push(Arc::new(r));
        view.plugins = Some(vec![
            serde_json::json!({"name": "p\u{1b}[1A", "state": "running"}),
        ]);
        let block = snapshot(&view);
        for pane in [
            "== metaclaude dashboard",
            "waiting for data",
            "Throughput",
            "Running now (0):",
            "Top scripts",
            "Recent executions (1 held):",
            "Active alerts (0):",
            "Plugins (1):",
            "Scripts with expectations: waiting for the server",
        ] {
            assert!(block.contains(pane), "{pane} missing:\n{block}");
        }
        assert!(block.contains(" evil "), "{block}");
        assert!(
            !block.chars().any(|c| c.is_control() && c != '\n'),
            "a control character:\n{block:?}"
        );
        assert!(block.ends_with("\n\n"), "a block ends with a blank line");
    }
}
