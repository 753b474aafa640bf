//! The interactive screen: pure drawing of an [`App`] and a [`View`] into a ratatui frame
//! (no I/O, so a `TestBackend` draws exactly what a terminal shows). Every text from a
//! script, a plugin or a server goes through [`super::safe`].

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Row, Sparkline, Table, TableState, Wrap};
use ratatui::Frame;
use serde_json::Value;

use metaclaude::monitor::{Known, RunState};

use super::data::View;
use super::scripts::{relative, short_id, ScriptsView};
use super::ui_state::{App, Pane, Rows};
use super::{age, clock, outcome, percent, safe, safe_lines, seconds};

/// Below this the screen says it is too small instead of drawing.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 10;

const FOCUS: Color = Color::Cyan;

/// Draws the whole screen. `detail` is the execution the detail overlay shows, looked up
/// by the caller (from the monitor) when `app.detail` names one.
pub fn draw(frame: &mut Frame<'_>, app: &App, view: &View, detail: Option<&Known>) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "terminal too small ({}x{}); at least {MIN_WIDTH}x{MIN_HEIGHT}. q quits.",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let rows = app.rows(view);
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, app, view);
    draw_footer(frame, footer, app);
    if body.height >= 26 {
        let [top, middle, recent, bottom] = Layout::vertical([
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Min(5),
            Constraint::Length(6),
        ])
        .areas(body);
        let [summary, spark] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top);
        draw_summary(frame, summary, view);
        draw_throughput(frame, spark, view);
        let [running, top_scripts, errors] = Layout::horizontal([
            Constraint::Percentage(40),
            Constraint::Percentage(35),
            Constraint::Percentage(25),
        ])
        .areas(middle);
        draw_running(frame, running, app, view.at, &rows);
        draw_top_scripts(frame, top_scripts, app, &rows);
        draw_errors(frame, errors, view);
        draw_recent_or_scripts(frame, recent, app, view, &rows);
        let [alerts, plugins] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
                .areas(bottom);
        draw_alerts(frame, alerts, app, &rows);
        draw_plugins(frame, plugins, app, view, &rows);
    } else {
        // Small: the summary, one row of running and top scripts, the history.
        let [summary, middle, recent] = Layout::vertical([
            Constraint::Length(6),
            Constraint::Length(if body.height >= 18 { 6 } else { 0 }),
            Constraint::Min(3),
        ])
        .areas(body);
        draw_summary(frame, summary, view);
        if middle.height > 0 {
            let [running, top_scripts] =
                Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(middle);
            draw_running(frame, running, app, view.at, &rows);
            draw_top_scripts(frame, top_scripts, app, &rows);
        }
        draw_recent_or_scripts(frame, recent, app, view, &rows);
    }
    if let Some(id) = &app.detail {
        draw_detail(frame, area, app, id, detail);
    }
    if app.help {
        draw_help(frame, area);
    }
}

fn pane_block(app: &App, pane: Pane, extra: &str) -> Block<'static> {
    let focused = app.pane == pane;
    let title = format!(" {}{extra} ", pane.title());
    let block = Block::bordered().title(title);
    if focused {
        block
            .border_style(Style::new().fg(FOCUS))
            .title_style(Style::new().fg(FOCUS).add_modifier(Modifier::BOLD))
    } else {
        block
    }
}

fn draw_header(frame: &mut Frame<'_>, area: Rect, app: &App, view: &View) {
    let state_style = if view.connection.is_live() {
        Style::new().fg(Color::Green)
    } else {
        Style::new().fg(Color::Yellow)
    };
    // The view's own state on the right, always whole; the source's state takes the rest.
    let mut right = vec![Span::raw(format!(
        "  data {}  sort {}{}",
        view.data_age
            .map_or("none yet".to_string(), |a| format!("{} old", age(a))),
        app.sort.name(),
        if app.reverse { " (reversed)" } else { "" }
    ))];
    if !app.filter.is_empty() {
        right.push(Span::raw(format!("  filter: {}", safe(&app.filter))));
    }
    if app.paused {
        right.push(Span::styled(
            "  PAUSED",
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ));
    }
    let right = Line::from(right);
    let width = (right.width() as u16).min(area.width);
    let [left_area, right_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(width)]).areas(area);
    let left = Line::from(vec![
        Span::styled("metaclaude ", Style::new().add_modifier(Modifier::BOLD)),
        Span::styled(view.connection.describe(), state_style),
    ]);
    frame.render_widget(Paragraph::new(left), left_area);
    frame.render_widget(Paragraph::new(right), right_area);
}

fn draw_footer(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let line = match &app.editing_filter {
        Some(f) => Line::from(vec![
            Span::styled("filter (script or specialist): ", Style::new().fg(FOCUS)),
            Span::raw(safe(f).into_owned()),
            Span::styled("_", Style::new().add_modifier(Modifier::SLOW_BLINK)),
            Span::raw("   Enter keep, Esc cancel"),
        ]),
        None => Line::from(
            "q quit  ? help  j/k move  Enter detail  / filter  s sort  r reverse  p pause  Tab pane  S scripts",
        ),
    };
    frame.render_widget(
        Paragraph::new(line).style(Style::new().add_modifier(Modifier::DIM)),
        area,
    );
}

/// The summary's lines (shared with nothing: the text mode words it its own way).
fn summary_lines(view: &View) -> Vec<Line<'static>> {
    let Some(s) = &view.stats else {
        return vec![Line::from("waiting for data...")];
    };
    let o = &s["window"]["overall"];
    let d = &o["duration_seconds"];
    let rate = o["success_rate"].as_f64();
    vec![
        Line::from(format!(
            "Executions (60 min): {}   running now: {}   since start: {}",
            o["count"].as_u64().unwrap_or(0),
            view.running.len(),
            s["since_start"]["executions"].as_u64().unwrap_or(0)
        )),
        Line::from(vec![
            Span::raw("Success "),
            Span::styled(percent(rate), Style::new().fg(Color::Green)),
            Span::raw("   failure "),
            Span::styled(
                percent(rate.map(|r| 100.0 - r)),
                Style::new().fg(Color::Red),
            ),
            Span::raw(format!(
                "   ({} ok, {} failed, {} retries)",
                o["successes"].as_u64().unwrap_or(0),
                o["failures"].as_u64().unwrap_or(0),
                o["retries"].as_u64().unwrap_or(0)
            )),
        ]),
        Line::from(format!(
            "Duration avg {}  p50 {}  p95 {}  p99 {}  max {}",
            seconds(d["avg"].as_f64()),
            seconds(d["p50"].as_f64()),
            seconds(d["p95"].as_f64()),
            seconds(d["p99"].as_f64()),
            seconds(d["max"].as_f64())
        )),
        Line::from(format!(
            "Rate {:.1}/min   memory avg {:.1} MB max {:.1} MB   CPU {}",
            s["executions_per_minute"].as_f64().unwrap_or(0.0),
            o["peak_memory_mb"]["avg"].as_f64().unwrap_or(0.0),
            o["peak_memory_mb"]["max"].as_f64().unwrap_or(0.0),
            seconds(o["cpu_time_seconds_total"].as_f64())
        )),
    ]
}

fn draw_summary(frame: &mut Frame<'_>, area: Rect, view: &View) {
    frame.render_widget(
        Paragraph::new(summary_lines(view)).block(Block::bordered().title(" Summary ")),
        area,
    );
}

fn draw_throughput(frame: &mut Frame<'_>, area: Rect, view: &View) {
    // The second under way is still filling: "now" is the five before it.
    let complete = &view.throughput[..view.throughput.len().saturating_sub(1)];
    let last5 = &complete[complete.len().saturating_sub(5)..];
    let now = last5.iter().sum::<u64>() as f64 / last5.len().max(1) as f64;
    let peak = view.throughput.iter().copied().max().unwrap_or(0);
    let title = format!(" Throughput, 60 s: now {now:.0}/s, peak {peak}/s ");
    let inner_width = area.width.saturating_sub(2) as usize;
    let data: Vec<u64> = view
        .throughput
        .iter()
        .skip(view.throughput.len().saturating_sub(inner_width))
        .copied()
        .collect();
    frame.render_widget(
        Sparkline::default()
            .block(Block::bordered().title(title))
            .data(&data)
            .style(Style::new().fg(Color::Green)),
        area,
    );
}

fn state_of(app: &App, pane: Pane, keys: &[&str]) -> TableState {
    let mut state = TableState::default();
    if app.pane == pane {
        state.select(app.selected(pane, keys));
    }
    state
}

/// The rows of a list `len` long that a table in `area` shows with `selected` in view:
/// only those are drawn (a list holds thousands), and the selection within them.
fn visible_rows(
    area: Rect,
    selected: Option<usize>,
    len: usize,
) -> (std::ops::Range<usize>, Option<usize>) {
    // Borders and the header.
    let height = (area.height.saturating_sub(3) as usize).max(1);
    let start = match selected {
        Some(s) if s >= height => s + 1 - height,
        _ => 0,
    };
    let end = len.min(start + height);
    (start..end, selected.map(|s| s - start))
}

fn highlight() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

fn draw_running(
    frame: &mut Frame<'_>,
    area: Rect,
    app: &App,
    now: chrono::DateTime<chrono::Utc>,
    rows: &Rows<'_>,
) {
    let keys = rows.keys(Pane::Running);
    let selected = state_of(app, Pane::Running, &keys).selected();
    let (shown, selected) = visible_rows(area, selected, rows.running.len());
    let lines: Vec<Row> = rows.running[shown]
        .iter()
        .map(|r| {
            let state = match r.state {
                RunState::Queued => "queued",
                RunState::Running => "running",
                RunState::Retrying => "retrying",
            };
            let elapsed = (now - r.queued_at).num_milliseconds().max(0) as f64 / 1000.0;
            Row::new(vec![
                safe(&r.identity.script_id).into_owned(),
                state.to_string(),
                format!("#{}", r.attempt),
                seconds(Some(elapsed)),
            ])
        })
        .collect();
    let empty = lines.is_empty();
    let table = Table::new(
        lines,
        [
            Constraint::Min(10),
            Constraint::Length(8),
            Constraint::Length(3),
            Constraint::Length(7),
        ],
    )
    .header(
        Row::new(["script", "state", "try", "for"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(highlight())
    .block(pane_block(
        app,
        Pane::Running,
        &format!(" ({})", rows.running.len()),
    ));
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
    if empty {
        placeholder(frame, area, "nothing running");
    }
}

/// A grey line inside an empty pane, under its header.
fn placeholder(frame: &mut Frame<'_>, area: Rect, text: &str) {
    if area.height > 3 && area.width > 4 {
        let at = Rect::new(area.x + 2, area.y + 2, area.width - 4, 1);
        frame.render_widget(
            Paragraph::new(text.to_string()).style(Style::new().fg(Color::DarkGray)),
            at,
        );
    }
}

fn draw_top_scripts(frame: &mut Frame<'_>, area: Rect, app: &App, rows: &Rows<'_>) {
    let lines: Vec<Row> = rows
        .top_scripts
        .iter()
        .map(|g| {
            Row::new(vec![
                safe(g["key"].as_str().unwrap_or("?")).into_owned(),
                g["count"].as_u64().unwrap_or(0).to_string(),
                percent(g["success_rate"].as_f64()),
                seconds(g["duration_seconds"]["p95"].as_f64()),
            ])
        })
        .collect();
    let empty = lines.is_empty();
    let table = Table::new(
        lines,
        [
            Constraint::Min(8),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(7),
        ],
    )
    .header(
        Row::new(["script", "runs", "ok", "p95"]).style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(highlight())
    .block(pane_block(app, Pane::TopScripts, " (60 min)"));
    let mut state = state_of(app, Pane::TopScripts, &rows.keys(Pane::TopScripts));
    frame.render_stateful_widget(table, area, &mut state);
    if empty {
        placeholder(frame, area, "no executions yet");
    }
}

fn draw_errors(frame: &mut Frame<'_>, area: Rect, view: &View) {
    let mut lines = Vec::new();
    if let Some(s) = &view.stats {
        let categories = s["window"]["overall"]["failures_by_category"].as_object();
        match categories {
            Some(m) if !m.is_empty() => {
                for (k, v) in m {
                    lines.push(Line::from(vec![
                        Span::styled(format!("{:<11}", safe(k)), Style::new().fg(Color::Red)),
                        Span::raw(v.to_string()),
                    ]));
                }
            }
            _ => lines.push(Line::from("no failures")),
        }
        for (window, q) in percentile_windows(s) {
            lines.push(Line::from(format!(
                "{window:<4} p50 {} p99 {}",
                seconds(q["p50"].as_f64()),
                seconds(q["p99"].as_f64())
            )));
        }
    }
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Errors, durations ")),
        area,
    );
}

/// The sketches' duration windows of a report, shortest first.
pub fn percentile_windows(stats: &Value) -> Vec<(String, &Value)> {
    let Some(m) = stats["percentiles"]["duration_seconds"].as_object() else {
        return Vec::new();
    };
    let order = |k: &str| ["1m", "5m", "60m", "start"].iter().position(|w| *w == k);
    let mut windows: Vec<(String, &Value)> = m.iter().map(|(k, v)| (k.clone(), v)).collect();
    windows.sort_by_key(|(k, _)| order(k).unwrap_or(9));
    windows
}

fn draw_recent(frame: &mut Frame<'_>, area: Rect, app: &App, rows: &Rows<'_>) {
    let keys = rows.keys(Pane::Recent);
    let selected = state_of(app, Pane::Recent, &keys).selected();
    let (shown, selected) = visible_rows(area, selected, rows.recent.len());
    let lines: Vec<Row> = rows.recent[shown]
        .iter()
        .map(|r| {
            let result = outcome(r);
            let style = if r.success {
                Style::new()
            } else {
                Style::new().fg(Color::Red)
            };
            Row::new(vec![
                clock(r.finished_at),
                result,
                safe(&r.script_id).into_owned(),
                safe(r.specialist.as_deref().unwrap_or("")).into_owned(),
                seconds(Some(r.resource_usage.wall_time_seconds)),
                r.retries.to_string(),
                r.execution_id.clone(),
            ])
            .style(style)
        })
        .collect();
    let empty = lines.is_empty();
    let table = Table::new(
        lines,
        [
            Constraint::Length(8),
            Constraint::Length(10),
            Constraint::Min(12),
            Constraint::Min(8),
            Constraint::Length(7),
            Constraint::Length(3),
            Constraint::Length(26),
        ],
    )
    .header(
        Row::new(["time", "result", "script", "specialist", "took", "re", "id"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(highlight())
    .block(pane_block(
        app,
        Pane::Recent,
        &format!(" ({})", rows.recent.len()),
    ));
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
    if empty {
        placeholder(frame, area, "no execution finished yet");
    }
}

/// The recent executions, or the Scripts view in their place while it has the focus.
fn draw_recent_or_scripts(
    frame: &mut Frame<'_>,
    area: Rect,
    app: &App,
    view: &View,
    rows: &Rows<'_>,
) {
    if app.pane == Pane::Scripts {
        draw_scripts(frame, area, app, view, rows);
    } else {
        draw_recent(frame, area, app, rows);
    }
}

/// A script's state in its colour (the word is always there).
fn state_style(state: &str) -> Style {
    match state {
        "failing" | "missed" => Style::new().fg(Color::Red),
        "overdue" | "too_short" | "late" => Style::new().fg(Color::Yellow),
        "ok" => Style::new().fg(Color::Green),
        _ => Style::new().fg(Color::DarkGray),
    }
}

fn draw_scripts(frame: &mut Frame<'_>, area: Rect, app: &App, view: &View, rows: &Rows<'_>) {
    let silences = match &view.scripts {
        ScriptsView::Known { silences, .. } => silences.as_deref(),
        _ => None,
    };
    let shown_silences = silences.map_or(0, |s| s.len().min(5)) as u16;
    let (table_area, silences_area) = if silences.is_some() && area.height >= 12 {
        let [t, s] = Layout::vertical([
            Constraint::Min(5),
            Constraint::Length(shown_silences.max(1) + 2),
        ])
        .areas(area);
        (t, Some(s))
    } else {
        (area, None)
    };
    let keys = rows.keys(Pane::Scripts);
    let selected = state_of(app, Pane::Scripts, &keys).selected();
    let (range, selected) = visible_rows(table_area, selected, rows.scripts.len());
    let now = view.at;
    let scheduled = rows.scripts.iter().any(|r| r.schedule.is_some());
    let lines: Vec<Row> = rows.scripts[range]
        .iter()
        .map(|r| {
            let mut cells = vec![
                Span::raw(safe(&r.script).into_owned()),
                Span::raw(safe(r.specialist.as_deref().unwrap_or("")).into_owned()),
                Span::styled(safe(&r.state).into_owned(), state_style(&r.state)),
                match &r.last_run {
                    Some(l) => Span::styled(
                        format!("{} {}", safe(&l.outcome), relative(l.finished_at, now)),
                        if l.outcome == "ok" {
                            Style::new()
                        } else {
                            Style::new().fg(Color::Red)
                        },
                    ),
                    None => Span::raw("-"),
                },
                Span::raw(
                    r.last_success
                        .map_or("none seen".to_string(), |t| relative(t, now)),
                ),
                Span::raw(r.next_expected.map_or("-".to_string(), |t| {
                    format!("{} {}", relative(t, now), clock(t))
                })),
                Span::raw(r.failures_in_a_row.to_string()),
                Span::raw(format!("{}/{}", r.missed_in_a_row, r.missed_total)),
            ];
            if scheduled {
                cells.push(Span::raw(
                    safe(r.schedule.as_deref().unwrap_or("-")).into_owned(),
                ));
            }
            cells.push(Span::raw(if r.silenced_by.is_empty() {
                "-".to_string()
            } else {
                safe(&r.silenced_by.join(",")).into_owned()
            }));
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Min(10),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Length(17),
        Constraint::Length(10),
        Constraint::Length(17),
        Constraint::Length(4),
        Constraint::Length(5),
    ];
    let mut header = vec![
        "script",
        "specialist",
        "state",
        "last run",
        "last ok",
        "next expected",
        "fail",
        "miss",
    ];
    if scheduled {
        widths.push(Constraint::Length(14));
        header.push("schedule");
    }
    widths.push(Constraint::Min(8));
    header.push("silenced by");
    let table = Table::new(lines, widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .row_highlight_style(highlight())
        .block(pane_block(
            app,
            Pane::Scripts,
            &format!(" ({})", rows.scripts.len()),
        ));
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, table_area, &mut state);
    match &view.scripts {
        ScriptsView::NeedsServer => placeholder(
            frame,
            table_area,
            "the scripts' states are a server's: run with --server URL (a log has none)",
        ),
        ScriptsView::Waiting => {
            placeholder(frame, table_area, "waiting for the server's scripts...")
        }
        ScriptsView::Known { .. } if rows.scripts.is_empty() => placeholder(
            frame,
            table_area,
            "no script with an expect block (or none passes the filter)",
        ),
        ScriptsView::Known { .. } => {}
    }
    if let (Some(list), Some(at)) = (silences, silences_area) {
        let mut lines: Vec<Line> = list
            .iter()
            .take(5)
            .map(|s| {
                Line::from(format!(
                    "{}  {}  until {}  by {}: {}",
                    safe(&short_id(&s.id)),
                    safe(&s.matchers),
                    s.ends_at.map_or("-".to_string(), |t| format!(
                        "{} {}",
                        clock(t),
                        relative(t, now)
                    )),
                    safe(&s.created_by),
                    safe(&s.comment)
                ))
            })
            .collect();
        if list.is_empty() {
            lines.push(Line::from("no silence in force").style(Style::new().fg(Color::DarkGray)));
        }
        frame.render_widget(
            Paragraph::new(lines)
                .block(Block::bordered().title(format!(" Active silences ({}) ", list.len()))),
            at,
        );
    }
}

fn draw_alerts(frame: &mut Frame<'_>, area: Rect, app: &App, rows: &Rows<'_>) {
    let lines: Vec<Row> = rows
        .alerts
        .iter()
        .map(|a| {
            let style = match a.severity.as_str() {
                "critical" => Style::new().fg(Color::Red),
                _ => Style::new().fg(Color::Yellow),
            };
            Row::new(vec![
                a.severity.as_str().to_string(),
                safe(&a.kind).into_owned(),
                safe(a.specialist.as_deref().unwrap_or("")).into_owned(),
                safe(&a.message).into_owned(),
            ])
            .style(style)
        })
        .collect();
    let empty = lines.is_empty();
    let table = Table::new(
        lines,
        [
            Constraint::Length(8),
            Constraint::Length(18),
            Constraint::Length(10),
            Constraint::Min(10),
        ],
    )
    .row_highlight_style(highlight())
    .block(pane_block(
        app,
        Pane::Alerts,
        &format!(" ({})", rows.alerts.len()),
    ));
    let mut state = state_of(app, Pane::Alerts, &rows.keys(Pane::Alerts));
    frame.render_stateful_widget(table, area, &mut state);
    if empty {
        placeholder(frame, area, "no alert in force");
    }
}

fn draw_plugins(frame: &mut Frame<'_>, area: Rect, app: &App, view: &View, rows: &Rows<'_>) {
    let lines: Vec<Row> = rows
        .plugins
        .iter()
        .map(|p| {
            let state = p["state"].as_str().unwrap_or("?");
            let style = if state == "running" {
                Style::new()
            } else {
                Style::new().fg(Color::Red)
            };
            Row::new(vec![
                safe(p["name"].as_str().unwrap_or("?")).into_owned(),
                safe(state).into_owned(),
                p["queue_depth"].as_u64().unwrap_or(0).to_string(),
                p["dropped"].as_u64().unwrap_or(0).to_string(),
                p["failures"].as_u64().unwrap_or(0).to_string(),
            ])
            .style(style)
        })
        .collect();
    let table = Table::new(
        lines,
        [
            Constraint::Min(10),
            Constraint::Length(11),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(5),
        ],
    )
    .header(
        Row::new(["plugin", "state", "queue", "drop", "fail"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(highlight())
    .block(pane_block(app, Pane::Plugins, ""));
    let mut state = state_of(app, Pane::Plugins, &rows.keys(Pane::Plugins));
    frame.render_stateful_widget(table, area, &mut state);
    if view.plugins.is_none() {
        placeholder(frame, area, "not known from the log");
    }
}

/// The detail of one execution, as lines (every outside text made safe).
pub fn detail_lines(known: &Known) -> Vec<String> {
    let mut out = Vec::new();
    match known {
        Known::Running(r) => {
            out.push(format!("execution {}  (running)", r.identity.execution_id));
            out.push(format!("script      {}", safe(&r.identity.script_id)));
            if let Some(s) = &r.identity.specialist {
                out.push(format!("specialist  {}", safe(s)));
            }
            out.push(format!("state       {:?}, attempt {}", r.state, r.attempt).to_lowercase());
            if let Some(pid) = r.pid {
                out.push(format!("pid         {pid}"));
            }
            out.push(format!(
                "queued at   {}",
                metaclaude::model::timestamp::format(&r.queued_at)
            ));
            if let Some(e) = &r.last_error {
                out.push(String::new());
                out.push(format!(
                    "last error  {}: {}",
                    e.category.as_str(),
                    safe(&e.message)
                ));
            }
        }
        Known::Finished(r) => {
            out.push(format!("execution {}  ({})", r.execution_id, outcome(r)));
            out.push(format!("script      {}", safe(&r.script_id)));
            if let Some(s) = &r.specialist {
                out.push(format!("specialist  {}", safe(s)));
            }
            out.push(format!(
                "exit        {}{}",
                r.exit_code.map_or("-".to_string(), |c| c.to_string()),
                r.signal
                    .as_deref()
                    .map(|s| format!(" (signal {})", safe(s)))
                    .unwrap_or_default()
            ));
            out.push(format!(
                "started     {}",
                metaclaude::model::timestamp::format(&r.started_at)
            ));
            out.push(format!(
                "finished    {}",
                metaclaude::model::timestamp::format(&r.finished_at)
            ));
            out.push(format!(
                "attempts    {} ({} retries)",
                r.attempts.len(),
                r.retries
            ));
            let u = &r.resource_usage;
            out.push(format!(
                "resources   wall {}  cpu {} (user {}, system {})",
                seconds(Some(u.wall_time_seconds)),
                seconds(Some(u.cpu_time_seconds)),
                seconds(Some(u.cpu_user_seconds)),
                seconds(Some(u.cpu_system_seconds))
            ));
            out.push(format!(
                "memory      start {:.1} MB  end {:.1} MB  peak {:.1} MB",
                u.memory_start_mb, u.memory_end_mb, u.peak_memory_mb
            ));
            if let Some(e) = &r.error_details {
                out.push(String::new());
                out.push(format!(
                    "error       {}: {}",
                    e.category.as_str(),
                    safe(&e.message)
                ));
                for s in &e.suggestions {
                    out.push(format!("  suggestion: {}", safe(s)));
                }
                if let Some(trace) = &e.stack_trace {
                    out.push("stack trace:".to_string());
                    out.extend(safe_lines(trace).map(|l| format!("  {l}")));
                }
            }
            for (name, text, cut) in [
                ("stdout", &r.stdout, r.stdout_truncated),
                ("stderr", &r.stderr, r.stderr_truncated),
            ] {
                out.push(String::new());
                out.push(format!("{name}{}:", if cut { " (truncated)" } else { "" }));
                if text.is_empty() {
                    out.push("  (empty)".to_string());
                }
                out.extend(safe_lines(text).map(|l| format!("  {l}")));
            }
        }
    }
    out
}

fn draw_detail(frame: &mut Frame<'_>, area: Rect, app: &App, id: &str, known: Option<&Known>) {
    let popup = area.centered(Constraint::Percentage(90), Constraint::Percentage(90));
    let lines: Vec<Line> = match known {
        Some(k) => detail_lines(k).into_iter().map(Line::from).collect(),
        None => vec![Line::from(format!(
            "execution {id} is no longer held (press Esc)"
        ))],
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((app.detail_scroll, 0))
            .block(
                Block::bordered()
                    .title(" Execution detail (Esc back, j/k scroll) ")
                    .border_style(Style::new().fg(FOCUS)),
            ),
        popup,
    );
}

/// The keys, as the help overlay lists them.
pub const HELP: &[(&str, &str)] = &[
    ("q, Esc", "quit (Esc first closes the detail)"),
    ("?", "this help"),
    ("j/k, arrows", "move the selection; PgUp/PgDn, g/G jump"),
    ("Enter", "the selected execution's detail"),
    (
        "/",
        "filter by script or specialist (Enter keep, Esc cancel)",
    ),
    ("s", "sort: time, script, duration, outcome"),
    ("r", "reverse the sort"),
    ("p", "pause (the data keeps coming; the screen holds)"),
    ("Tab, Shift-Tab", "next, previous pane"),
    (
        "S",
        "the scripts with expectations: states, last runs, silences (S: back)",
    ),
];

fn draw_help(frame: &mut Frame<'_>, area: Rect) {
    let popup = area.centered(
        Constraint::Length(70),
        Constraint::Length(HELP.len() as u16 + 4),
    );
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:<16}"), Style::new().fg(FOCUS)),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from("any key closes this help"));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Keys ")),
        popup,
    );
}

/// Whether snapshots may be rewritten (when asked, never under CI): one rule with the
/// end-to-end tests' golden files.
#[cfg(test)]
#[path = "../../../tests/cli/bless.rs"]
mod bless;

#[cfg(test)]
mod tests {
    //! Snapshot tests: the screen drawn into ratatui's `TestBackend` at several sizes, its
    //! text compared with `snapshots/<name>.txt` (`METACLAUDE_BLESS=1`, which `cargo xtask
    //! bless` sets, rewrites them; review the diff).

    use std::path::PathBuf;
    use std::sync::Arc;

    use chrono::{DateTime, TimeZone, Utc};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use serde_json::json;

    use metaclaude::model::{ErrorCategory, ErrorContext, ErrorDetails, ExecutionResult};

    use super::super::data::{Connection, View};
    use super::super::ui_state::{App, Pane};
    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, 0).unwrap()
    }

    fn result(id: &str, script: &str, ok: bool, secs: f64) -> ExecutionResult {
        let mut r = ExecutionResult::new(id, script, at());
        r.success = ok;
        r.finished_at = at() - chrono::Duration::seconds(id.len() as i64);
        r.resource_usage.wall_time_seconds = secs;
        r.exit_code = Some(if ok { 0 } else { 1 });
        if !ok {
            r.error_details = Some(ErrorDetails {
                category: ErrorCategory::Execution,
                message: "exit status 1".into(),
                context: ErrorContext::default(),
                suggestions: vec!["check the script's stderr".into()],
                stack_trace: None,
            });
        }
        r
    }

    fn full_view() -> View {
        let mut view = View::empty(
            Connection::Live {
                url: "http://127.0.0.1:8080".into(),
            },
            at(),
        );
        view.data_age = Some(std::time::Duration::from_millis(400));
        view.recent = vec![
            Arc::new(result("01JAAAAAAAAAAAAAAAAAAAAAA3", "hello", true, 0.013)),
            Arc::new(result("01JAAAAAAAAAAAAAAAAAAAAA2", "fail", false, 0.2)),
            Arc::new(result("01JAAAAAAAAAAAAAAAAAAAA1", "slow", true, 2.5)),
        ];
        view.stats = Some(json!({
            "executions_per_minute": 3.0,
            "since_start": {"executions": 3},
            "window": {
                "overall": {
                    "count": 3, "successes": 2, "failures": 1, "retries": 0,
                    "success_rate": 66.66,
                    "duration_seconds": {"avg": 0.9, "p50": 0.2, "p90": 2.5, "p95": 2.5, "p99": 2.5, "max": 2.5},
                    "peak_memory_mb": {"avg": 2.0, "max": 3.0},
                    "cpu_time_seconds_total": 0.1,
                    "failures_by_category": {"EXECUTION": 1}
                },
                "top_scripts": [
                    {"key": "hello", "count": 1, "success_rate": 100.0, "duration_seconds": {"p95": 0.013}},
                    {"key": "fail", "count": 1, "success_rate": 0.0, "duration_seconds": {"p95": 0.2}}
                ]
            },
            "percentiles": {"duration_seconds": {
                "1m": {"count": 3, "p50": 0.2, "p99": 2.5},
                "start": {"count": 3, "p50": 0.2, "p99": 2.5}
            }}
        }));
        view.plugins = Some(vec![
            json!({"name": "log-sink", "state": "running", "queue_depth": 0, "dropped": 0, "failures": 0}),
            json!({"name": "alert-rules", "state": "quarantined", "queue_depth": 3, "dropped": 1, "failures": 2}),
        ]);
        view.throughput[59] = 2;
        view.throughput[58] = 1;
        view
    }

    fn screen(app: &App, view: &View, detail: Option<&Known>, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| draw(f, app, view, detail)).unwrap();
        let buffer = terminal.backend().buffer();
        let mut out = String::new();
        for y in 0..height {
            let line: String = (0..width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect();
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    fn check(name: &str, actual: &str) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("src/tui/snapshots")
            .join(format!("{name}.txt"));
        if super::bless::blessing() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "no snapshot {} (METACLAUDE_BLESS=1 writes it)",
                path.display()
            )
        });
        assert_eq!(
            actual,
            expected,
            "snapshot {} differs (METACLAUDE_BLESS=1 rewrites it, if the change is meant)",
            path.display()
        );
    }

    #[test]
    fn the_layout_at_several_sizes() {
        let app = App::new();
        let view = full_view();
        for (w, h) in [(120, 40), (80, 24), (60, 14)] {
            let s = screen(&app, &view, None, w, h);
            check(&format!("full_{w}x{h}"), &s);
        }
        let tiny = screen(&app, &view, None, 30, 8);
        assert!(tiny.contains("terminal too small (30x8)"), "{tiny}");
    }

    #[test]
    fn the_empty_state_says_what_it_waits_for() {
        let view = View::empty(
            Connection::Disconnected {
                url: "http://127.0.0.1:8080".into(),
                error: "connection refused".into(),
                retry_in: std::time::Duration::from_secs(2),
            },
            at(),
        );
        let s = screen(&App::new(), &view, None, 100, 30);
        assert!(s.contains("waiting for data"), "{s}");
        assert!(s.contains("disconnected, retry in 2.0s (conn"), "{s}");
        check("empty_100x30", &s);
    }

    #[test]
    fn the_selection_filter_pause_help_and_detail_show() {
        let view = full_view();
        let mut app = App::new();
        app.pane = Pane::Recent;
        app.filter = "hel".into();
        app.paused = true;
        let s = screen(&app, &view, None, 120, 40);
        assert!(s.contains("filter: hel") && s.contains("PAUSED"), "{s}");
        assert!(
            s.contains("01JAAAAAAAAAAAAAAAAAAAAAA3"),
            "hello passes:\n{s}"
        );
        assert!(
            !s.contains("01JAAAAAAAAAAAAAAAAAAAAA2 ") && !s.contains("01JAAAAAAAAAAAAAAAAAAAA1 "),
            "fail and slow are filtered out:\n{s}"
        );
        app.help = true;
        let help = screen(&app, &view, None, 120, 40);
        assert!(help.contains("reverse the sort"), "{help}");
        app.help = false;
        let failed = Known::Finished(view.recent[1].clone());
        app.detail = Some(view.recent[1].execution_id.clone());
        let s = screen(&app, &view, Some(&failed), 120, 40);
        check("detail_120x40", &s);
        assert!(s.contains("suggestion: check the script's stderr"), "{s}");
    }

    #[test]
    fn a_long_history_draws_the_rows_around_the_selection() {
        let mut view = full_view();
        view.recent = (0..3000)
            .map(|i| Arc::new(result(&format!("01JLONG{i:019}"), "hello", true, 0.01)))
            .collect();
        let mut app = App::new();
        let mut keys = app.rows(&view).keys(Pane::Recent);
        keys.truncate(3000);
        let s = screen(&app, &view, None, 120, 40);
        assert!(s.contains(keys[0]) && !s.contains(keys[100]), "{s}");
        for _ in 0..15 {
            app.key(
                ratatui::crossterm::event::KeyEvent::new(
                    ratatui::crossterm::event::KeyCode::PageDown,
                    ratatui::crossterm::event::KeyModifiers::NONE,
                ),
                &keys,
            );
        }
        let s = screen(&app, &view, None, 120, 40);
        assert!(s.contains(keys[150]), "the selected row is shown:\n{s}");
        assert!(!s.contains(keys[0]), "{s}");
    }

    /// Three watched scripts (one failing, its last run failed; one ok and silenced; one
    /// new), a hostile specialist and silence comment, as the server's answers give them.
    fn scripts_view() -> ScriptsView {
        let scripts = json!({"scripts": [
            {"id": "backup", "specialist": "ops", "status": {"script": "backup", "specialist": "ops",
             "state": "ok", "conditions": [], "next_expected": "2026-01-15T11:00:00.000000Z",
             "last_success": "2026-01-15T10:00:00.000000Z", "missed_total": 2,
             "missed_in_a_row": 0, "failures_in_a_row": 0, "running": 0}},
            {"id": "sync", "status": {"script": "sync", "specialist": "evil\u{1b}]0;owned\u{7}",
             "state": "failing", "conditions": ["failing"], "missed_total": 0,
             "missed_in_a_row": 0, "failures_in_a_row": 3, "running": 0}},
            {"id": "report", "status": {"script": "report", "state": "new", "conditions": [],
             "missed_total": 0, "missed_in_a_row": 0, "failures_in_a_row": 0, "running": 0}}
        ]});
        let silences = json!({"silences": [{"id": "5f0c2a9e-1111", "matchers": [
            {"name": "script", "value": "backup", "is_regex": false, "is_equal": true}],
            "starts_at": "2026-01-15T10:00:00.000000Z", "ends_at": "2026-01-15T12:00:00.000000Z",
            "created_by": "ann", "comment": "disk swap \u{1b}[2J tonight", "state": "active"}]});
        let watched = super::super::scripts::Watched::from_answers(&scripts, Some(&silences), None);
        let last = result("01JSYNC", "sync", false, 1.0);
        let runs = std::collections::HashMap::from([(
            "sync".to_string(),
            super::super::scripts::LastRun::of(&last),
        )]);
        super::super::scripts::view(&watched, &runs)
    }

    #[test]
    fn the_scripts_view_shows_each_state_its_last_run_and_the_silences() {
        let mut view = full_view();
        view.scripts = scripts_view();
        let mut app = App::new();
        let s = screen(&app, &view, None, 120, 40);
        assert!(
            !s.contains("Scripts with expectations"),
            "not until S:\n{s}"
        );
        app.key(
            ratatui::crossterm::event::KeyEvent::new(
                ratatui::crossterm::event::KeyCode::Char('S'),
                ratatui::crossterm::event::KeyModifiers::SHIFT,
            ),
            &[] as &[&str],
        );
        let s = screen(&app, &view, None, 120, 40);
        check("scripts_120x40", &s);
        let row = |script: &str| {
            s.lines()
                .find(|l| l.trim_start_matches('│').split_whitespace().next() == Some(script))
                .unwrap_or_else(|| panic!("no row of {script}:\n{s}"))
                .to_string()
        };
        assert!(
            row("sync").contains(" failing ") && row("sync").contains("EXECUTION 7s ago"),
            "{s}"
        );
        assert!(
            row("backup").contains(" ok ") && row("backup").contains("5f0c2a9e"),
            "{s}"
        );
        assert!(row("report").contains(" new "), "{s}");
        assert!(
            s.contains("Active silences (1)") && s.contains("disk swap  tonight"),
            "{s}"
        );
        assert!(
            !s.contains("owned") && !s.chars().any(|c| c.is_control() && c != '\n'),
            "{s}"
        );
        // Smaller: drawn whole where the executions were.
        let small = screen(&app, &view, None, 80, 24);
        assert!(small.contains("Scripts with expectations (3)"), "{small}");
        // From a log: said plainly.
        view.scripts = ScriptsView::NeedsServer;
        let s = screen(&app, &view, None, 120, 40);
        assert!(
            s.contains("the scripts' states are a server's: run with --server URL"),
            "{s}"
        );
    }

    #[test]
    fn hostile_output_cannot_reach_the_terminal() {
        let mut r = result("01JHOSTILE", "evil\u{1b}]0;owned\u{7}", false, 0.1);
        r.stdout = "before\u{1b}[2J\u{1b}[31mred\u{1b}[0m\u{1b}]52;c;cHduZWQ=\u{7}after\r\nline2\u{9b}31m\u{202e}txt".into();
        r.stderr = "\u{1b}P1$qm\u{1b}\\bell\u{7}".into();
        r.specialist = Some("spec\u{1b}[1A".into());
        let mut view = full_view();
        view.recent = vec![Arc::new(r)];
        let mut app = App::new();
        let s = screen(&app, &view, None, 120, 40);
        assert!(s.contains("evil"), "{s}");
        app.detail = Some("01JHOSTILE".into());
        let known = Known::Finished(view.recent[0].clone());
        let s = screen(&app, &view, Some(&known), 120, 40);
        check("hostile_120x40", &s);
        for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\r'] {
            assert!(!s.contains(bad), "{bad:?} reached the screen:\n{s}");
        }
        assert!(s.contains("beforeredafter"), "{s}");
        assert!(!s.contains("owned") && !s.contains("cHduZWQ"), "{s}");
        // And in the buffer's cells themselves (the TestBackend holds what would be sent).
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
        terminal
            .draw(|f| draw(f, &app, &view, Some(&known)))
            .unwrap();
        for cell in terminal.backend().buffer().content() {
            assert!(
                !cell.symbol().chars().any(|c| c.is_control()),
                "a control character in a cell: {:?}",
                cell.symbol()
            );
        }
    }
}
