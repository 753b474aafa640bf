//! The dashboard's own state, apart from the data: which pane has the focus, what is
//! selected (by key, so that new rows do not move it), the sort and its direction, the
//! filter, pause, and the help and detail overlays. Keys are state transitions
//! ([`App::key`]); what the panes list, filtered and sorted, is [`App::rows`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::Value;

use metaclaude::model::ExecutionResult;
use metaclaude::monitor::RunningExecution;

use super::data::View;
use super::scripts::{ScriptRow, ScriptsView};

/// The panes that list things, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Running,
    Recent,
    TopScripts,
    Alerts,
    Plugins,
    /// The scripts with expectations (`S`): drawn where the recent executions are, while
    /// it has the focus.
    Scripts,
}

impl Pane {
    pub const ALL: [Pane; 6] = [
        Pane::Running,
        Pane::Recent,
        Pane::TopScripts,
        Pane::Alerts,
        Pane::Plugins,
        Pane::Scripts,
    ];

    fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    pub fn title(self) -> &'static str {
        match self {
            Pane::Running => "Running now",
            Pane::Recent => "Recent executions",
            Pane::TopScripts => "Top scripts",
            Pane::Alerts => "Active alerts",
            Pane::Plugins => "Plugins",
            Pane::Scripts => "Scripts with expectations",
        }
    }
}

/// What the lists are sorted by (`s` moves to the next; `r` reverses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Newest first (top scripts: most executions first).
    Time,
    Script,
    /// Longest first (top scripts: by p95).
    Duration,
    /// Failures first (top scripts: lowest success rate first).
    Outcome,
}

impl Sort {
    fn next(self) -> Sort {
        match self {
            Sort::Time => Sort::Script,
            Sort::Script => Sort::Duration,
            Sort::Duration => Sort::Outcome,
            Sort::Outcome => Sort::Time,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Sort::Time => "time",
            Sort::Script => "script",
            Sort::Duration => "duration",
            Sort::Outcome => "outcome",
        }
    }
}

/// Where the selection of one pane is: its row's key when known (an execution id, a
/// script name), else its position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub index: usize,
    pub key: Option<String>,
}

/// What a key asks of the program beyond the state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
}

#[derive(Debug, Clone)]
pub struct App {
    pub pane: Pane,
    pub selections: [Selection; 6],
    pub sort: Sort,
    pub reverse: bool,
    /// Only scripts and specialists containing this (case-insensitive).
    pub filter: String,
    /// The filter being typed after `/` (Enter keeps it, Esc drops it).
    pub editing_filter: Option<String>,
    pub paused: bool,
    pub help: bool,
    /// The execution whose detail is shown, and how far it is scrolled.
    pub detail: Option<String>,
    pub detail_scroll: u16,
}

impl Default for App {
    fn default() -> Self {
        App::new()
    }
}

/// A pane's rows, each with its selection key.
pub struct Rows<'v> {
    pub running: Vec<&'v RunningExecution>,
    pub recent: Vec<&'v Arc<ExecutionResult>>,
    pub top_scripts: Vec<&'v Value>,
    pub alerts: Vec<&'v metaclaude::model::Alert>,
    pub plugins: Vec<&'v Value>,
    /// Empty when the states are not known (from the log, or not fetched yet).
    pub scripts: Vec<&'v ScriptRow>,
}

impl<'v> Rows<'v> {
    /// The selection keys of `pane`'s rows, in order.
    pub fn keys(&self, pane: Pane) -> Vec<&'v str> {
        match pane {
            Pane::Running => self
                .running
                .iter()
                .map(|r| r.identity.execution_id.as_str())
                .collect(),
            Pane::Recent => self
                .recent
                .iter()
                .map(|r| r.execution_id.as_str())
                .collect(),
            Pane::TopScripts => self
                .top_scripts
                .iter()
                .map(|g| g["key"].as_str().unwrap_or(""))
                .collect(),
            Pane::Alerts => self.alerts.iter().map(|a| a.fingerprint.as_str()).collect(),
            Pane::Plugins => self
                .plugins
                .iter()
                .map(|p| p["name"].as_str().unwrap_or(""))
                .collect(),
            Pane::Scripts => self.scripts.iter().map(|s| s.script.as_str()).collect(),
        }
    }
}

fn elapsed(r: &RunningExecution, now: DateTime<Utc>) -> f64 {
    (now - r.queued_at).num_milliseconds() as f64 / 1000.0
}

impl App {
    pub fn new() -> App {
        App {
            pane: Pane::Recent,
            selections: Default::default(),
            sort: Sort::Time,
            reverse: false,
            filter: String::new(),
            editing_filter: None,
            paused: false,
            help: false,
            detail: None,
            detail_scroll: 0,
        }
    }

    /// Whether `script` or `specialist` passes the filter.
    pub fn passes(&self, script: &str, specialist: Option<&str>) -> bool {
        let filter = self.editing_filter.as_deref().unwrap_or(&self.filter);
        if filter.is_empty() {
            return true;
        }
        let f = filter.to_lowercase();
        script.to_lowercase().contains(&f)
            || specialist.is_some_and(|s| s.to_lowercase().contains(&f))
    }

    /// What each pane lists, filtered and sorted.
    pub fn rows<'v>(&self, view: &'v View) -> Rows<'v> {
        let now = view.at;
        let mut running: Vec<&RunningExecution> = view
            .running
            .iter()
            .filter(|r| self.passes(&r.identity.script_id, r.identity.specialist.as_deref()))
            .collect();
        match self.sort {
            Sort::Time => running.sort_by_key(|r| std::cmp::Reverse(r.queued_at)),
            Sort::Script => running.sort_by(|a, b| a.identity.script_id.cmp(&b.identity.script_id)),
            Sort::Duration => running.sort_by(|a, b| elapsed(b, now).total_cmp(&elapsed(a, now))),
            Sort::Outcome => running.sort_by_key(|r| r.attempt == 1),
        }
        let mut recent: Vec<&Arc<ExecutionResult>> = view
            .recent
            .iter()
            .filter(|r| self.passes(&r.script_id, r.specialist.as_deref()))
            .collect();
        match self.sort {
            Sort::Time => recent.sort_by(|a, b| {
                (b.finished_at, &b.execution_id).cmp(&(a.finished_at, &a.execution_id))
            }),
            Sort::Script => recent.sort_by(|a, b| a.script_id.cmp(&b.script_id)),
            Sort::Duration => recent.sort_by(|a, b| {
                b.resource_usage
                    .wall_time_seconds
                    .total_cmp(&a.resource_usage.wall_time_seconds)
            }),
            Sort::Outcome => recent.sort_by_key(|r| r.success),
        }
        let mut top_scripts: Vec<&Value> = view
            .stats
            .as_ref()
            .and_then(|s| s["window"]["top_scripts"].as_array())
            .map(|l| {
                l.iter()
                    .filter(|g| self.passes(g["key"].as_str().unwrap_or(""), None))
                    .collect()
            })
            .unwrap_or_default();
        let f = |g: &Value, a: &str, b: &str| g[a][b].as_f64().unwrap_or(0.0);
        match self.sort {
            Sort::Time => {}
            Sort::Script => top_scripts.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str())),
            Sort::Duration => top_scripts.sort_by(|a, b| {
                f(b, "duration_seconds", "p95").total_cmp(&f(a, "duration_seconds", "p95"))
            }),
            Sort::Outcome => top_scripts.sort_by(|a, b| {
                let rate = |g: &Value| g["success_rate"].as_f64().unwrap_or(100.0);
                rate(a).total_cmp(&rate(b))
            }),
        }
        let alerts = view
            .alerts
            .iter()
            .filter(|a| a.specialist.is_none() || self.passes("", a.specialist.as_deref()))
            .collect();
        let plugins = view.plugins.iter().flatten().collect();
        // Most severe first (the view's order), or by name.
        let mut scripts: Vec<&ScriptRow> = match &view.scripts {
            ScriptsView::Known { rows, .. } => rows
                .iter()
                .filter(|r| self.passes(&r.script, r.specialist.as_deref()))
                .collect(),
            ScriptsView::NeedsServer | ScriptsView::Waiting => Vec::new(),
        };
        if self.sort == Sort::Script {
            scripts.sort_by(|a, b| a.script.cmp(&b.script));
        }
        if self.reverse {
            running.reverse();
            recent.reverse();
            top_scripts.reverse();
            scripts.reverse();
        }
        Rows {
            running,
            recent,
            top_scripts,
            alerts,
            plugins,
            scripts,
        }
    }

    /// The selected row of `pane` among `keys`: the row with the selected key if it is
    /// still there, else the same position (within the list).
    pub fn selected<K: AsRef<str>>(&self, pane: Pane, keys: &[K]) -> Option<usize> {
        if keys.is_empty() {
            return None;
        }
        let s = &self.selections[pane.index()];
        if let Some(key) = &s.key {
            if let Some(i) = keys.iter().position(|k| k.as_ref() == key) {
                return Some(i);
            }
        }
        Some(s.index.min(keys.len() - 1))
    }

    fn move_selection<K: AsRef<str>>(&mut self, keys: &[K], by: isize) {
        let Some(current) = self.selected(self.pane, keys) else {
            return;
        };
        let last = keys.len() as isize - 1;
        let next = (current as isize + by).clamp(0, last) as usize;
        self.selections[self.pane.index()] = Selection {
            index: next,
            key: Some(keys[next].as_ref().to_string()),
        };
    }

    /// One key press; `keys` are the focused pane's rows (see [`Rows::keys`]).
    pub fn key<K: AsRef<str>>(&mut self, key: KeyEvent, keys: &[K]) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if let Some(editing) = &mut self.editing_filter {
            match key.code {
                KeyCode::Enter => {
                    self.filter = std::mem::take(editing);
                    self.editing_filter = None;
                }
                KeyCode::Esc => self.editing_filter = None,
                KeyCode::Backspace => {
                    editing.pop();
                }
                KeyCode::Char(c) if !c.is_control() => editing.push(c),
                _ => {}
            }
            return Action::None;
        }
        if self.help {
            match key.code {
                KeyCode::Char('q') => return Action::Quit,
                _ => self.help = false,
            }
            return Action::None;
        }
        if self.detail.is_some() {
            match key.code {
                KeyCode::Char('q') => return Action::Quit,
                KeyCode::Esc | KeyCode::Enter | KeyCode::Backspace => {
                    self.detail = None;
                    self.detail_scroll = 0;
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    self.detail_scroll = self.detail_scroll.saturating_add(1)
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    self.detail_scroll = self.detail_scroll.saturating_sub(1)
                }
                KeyCode::PageDown => self.detail_scroll = self.detail_scroll.saturating_add(10),
                KeyCode::PageUp => self.detail_scroll = self.detail_scroll.saturating_sub(10),
                KeyCode::Char('?') => self.help = true,
                _ => {}
            }
            return Action::None;
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Action::Quit,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(keys, 1),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(keys, -1),
            KeyCode::PageDown => self.move_selection(keys, 10),
            KeyCode::PageUp => self.move_selection(keys, -10),
            KeyCode::Home | KeyCode::Char('g') => self.move_selection(keys, isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_selection(keys, isize::MAX / 2),
            KeyCode::Enter => {
                if matches!(self.pane, Pane::Running | Pane::Recent) {
                    if let Some(i) = self.selected(self.pane, keys) {
                        self.detail = Some(keys[i].as_ref().to_string());
                        self.detail_scroll = 0;
                    }
                }
            }
            KeyCode::Char('/') => self.editing_filter = Some(self.filter.clone()),
            KeyCode::Char('s') => self.sort = self.sort.next(),
            KeyCode::Char('r') => self.reverse = !self.reverse,
            KeyCode::Char('p') => self.paused = !self.paused,
            // The Scripts view, and back to the executions.
            KeyCode::Char('S') if self.pane == Pane::Scripts => self.pane = Pane::Recent,
            KeyCode::Char('S') => self.pane = Pane::Scripts,
            KeyCode::Tab => {
                self.pane = Pane::ALL[(self.pane.index() + 1) % Pane::ALL.len()];
            }
            KeyCode::BackTab => {
                self.pane = Pane::ALL[(self.pane.index() + Pane::ALL.len() - 1) % Pane::ALL.len()];
            }
            _ => {}
        }
        Action::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(app: &mut App, code: KeyCode, keys: &[&str]) -> Action {
        app.key(KeyEvent::new(code, KeyModifiers::NONE), keys)
    }

    fn keys<'a>(names: &[&'a str]) -> Vec<&'a str> {
        names.to_vec()
    }

    #[test]
    fn q_and_esc_quit_and_ctrl_c_too() {
        let mut app = App::new();
        assert_eq!(press(&mut app, KeyCode::Char('q'), &[]), Action::Quit);
        assert_eq!(press(&mut app, KeyCode::Esc, &[]), Action::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(app.key::<&str>(ctrl_c, &[]), Action::Quit);
        assert_eq!(press(&mut app, KeyCode::Char('x'), &[]), Action::None);
    }

    #[test]
    fn moving_clamps_at_the_ends_and_the_selection_follows_its_row() {
        let mut app = App::new();
        let rows = keys(&["c", "b", "a"]);
        assert_eq!(app.selected(Pane::Recent, &rows), Some(0));
        press(&mut app, KeyCode::Up, &rows);
        assert_eq!(app.selected(Pane::Recent, &rows), Some(0));
        press(&mut app, KeyCode::Char('j'), &rows);
        press(&mut app, KeyCode::Down, &rows);
        press(&mut app, KeyCode::Down, &rows);
        assert_eq!(app.selected(Pane::Recent, &rows), Some(2));
        press(&mut app, KeyCode::Char('k'), &rows);
        assert_eq!(app.selected(Pane::Recent, &rows), Some(1));
        // A new execution arrives on top: the selection stays on "b".
        let more = keys(&["d", "c", "b", "a"]);
        assert_eq!(app.selected(Pane::Recent, &more), Some(2));
        // "b" goes away: the same position, within the list.
        assert_eq!(app.selected(Pane::Recent, &keys(&["z"])), Some(0));
        assert_eq!(app.selected::<&str>(Pane::Recent, &[]), None);
        press(&mut app, KeyCode::End, &more);
        assert_eq!(app.selected(Pane::Recent, &more), Some(3));
        press(&mut app, KeyCode::Home, &more);
        assert_eq!(app.selected(Pane::Recent, &more), Some(0));
    }

    #[test]
    fn enter_opens_the_selected_execution_and_esc_closes_it_without_quitting() {
        let mut app = App::new();
        let rows = keys(&["01B", "01A"]);
        press(&mut app, KeyCode::Down, &rows);
        press(&mut app, KeyCode::Enter, &rows);
        assert_eq!(app.detail.as_deref(), Some("01A"));
        press(&mut app, KeyCode::Down, &rows);
        assert_eq!(app.detail_scroll, 1, "in the detail, j/k scroll");
        assert_eq!(press(&mut app, KeyCode::Esc, &rows), Action::None);
        assert_eq!(app.detail, None);
        assert_eq!(app.detail_scroll, 0);
        // Top scripts have no detail.
        app.pane = Pane::TopScripts;
        press(&mut app, KeyCode::Enter, &rows);
        assert_eq!(app.detail, None);
    }

    #[test]
    fn slash_edits_the_filter_enter_keeps_it_esc_drops_the_edit() {
        let mut app = App::new();
        press(&mut app, KeyCode::Char('/'), &[]);
        for c in "api".chars() {
            press(&mut app, KeyCode::Char(c), &[]);
        }
        // While typing, q is a letter, not quit.
        assert_eq!(press(&mut app, KeyCode::Char('q'), &[]), Action::None);
        press(&mut app, KeyCode::Backspace, &[]);
        assert!(app.passes("the_API_check", None), "applied while typing");
        press(&mut app, KeyCode::Enter, &[]);
        assert_eq!(app.filter, "api");
        assert!(app.passes("x", Some("api-designer")));
        assert!(!app.passes("hello", None));
        press(&mut app, KeyCode::Char('/'), &[]);
        press(&mut app, KeyCode::Char('z'), &[]);
        press(&mut app, KeyCode::Esc, &[]);
        assert_eq!(app.filter, "api");
        assert_eq!(app.editing_filter, None);
    }

    #[test]
    fn s_cycles_the_sort_r_reverses_p_pauses_tab_cycles_the_panes() {
        let mut app = App::new();
        let sorts: Vec<Sort> = (0..4)
            .map(|_| {
                press(&mut app, KeyCode::Char('s'), &[]);
                app.sort
            })
            .collect();
        assert_eq!(
            sorts,
            [Sort::Script, Sort::Duration, Sort::Outcome, Sort::Time]
        );
        press(&mut app, KeyCode::Char('r'), &[]);
        assert!(app.reverse);
        press(&mut app, KeyCode::Char('p'), &[]);
        assert!(app.paused);
        press(&mut app, KeyCode::Char('p'), &[]);
        assert!(!app.paused);
        let panes: Vec<Pane> = (0..6)
            .map(|_| {
                press(&mut app, KeyCode::Tab, &[]);
                app.pane
            })
            .collect();
        assert_eq!(
            panes,
            [
                Pane::TopScripts,
                Pane::Alerts,
                Pane::Plugins,
                Pane::Scripts,
                Pane::Running,
                Pane::Recent
            ]
        );
        press(&mut app, KeyCode::BackTab, &[]);
        assert_eq!(app.pane, Pane::Running);
        // S: the Scripts view, and S again back to the executions.
        press(&mut app, KeyCode::Char('S'), &[]);
        assert_eq!(app.pane, Pane::Scripts);
        press(&mut app, KeyCode::Char('S'), &[]);
        assert_eq!(app.pane, Pane::Recent);
    }

    #[test]
    fn help_closes_on_any_key_and_q_still_quits() {
        let mut app = App::new();
        press(&mut app, KeyCode::Char('?'), &[]);
        assert!(app.help);
        assert_eq!(press(&mut app, KeyCode::Char('x'), &[]), Action::None);
        assert!(!app.help);
        press(&mut app, KeyCode::Char('?'), &[]);
        assert_eq!(press(&mut app, KeyCode::Char('q'), &[]), Action::Quit);
    }

    #[test]
    fn rows_are_filtered_and_sorted_and_reversed() {
        use super::super::data::{Connection, View};
        let now = Utc::now();
        let mut view = View::empty(Connection::Following { dir: "d".into() }, now);
        for (id, script, secs, ok) in [
            ("01A", "alpha", 3.0, true),
            ("01B", "beta", 1.0, false),
            ("01C", "api_check", 2.0, true),
        ] {
            let mut r = ExecutionResult::new(id, script, now);
            r.finished_at = now + chrono::Duration::seconds(id.as_bytes()[2] as i64);
            r.resource_usage.wall_time_seconds = secs;
            r.success = ok;
            view.recent.push(Arc::new(r));
        }
        let ids = |app: &App| app.rows(&view).keys(Pane::Recent);
        let mut app = App::new();
        assert_eq!(ids(&app), ["01C", "01B", "01A"]);
        app.sort = Sort::Duration;
        assert_eq!(ids(&app), ["01A", "01C", "01B"]);
        app.sort = Sort::Outcome;
        assert_eq!(ids(&app)[0], "01B");
        app.sort = Sort::Script;
        app.reverse = true;
        assert_eq!(ids(&app), ["01B", "01C", "01A"]);
        app.filter = "AL".into();
        assert_eq!(ids(&app), ["01A"]);
    }
}
