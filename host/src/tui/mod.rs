//! The terminal dashboard (`metaclaude dashboard-terminal`, the seed's
//! `dashboard-terminal.py`): what a host runs now, its rates, top scripts, recent history,
//! alerts, percentiles, plugins and throughput, live from a running server's feed or from
//! the execution log as it is written.
//!
//! * [`data`]: what is known (a [`metaclaude::monitor::Monitor`] fed with the source's
//!   events, the figures, the connection) and the [`data::View`] a frame is drawn from;
//! * [`ui_state`]: the view's state (pane, selection, sort, filter, pause, overlays) and the keys
//!   as state transitions;
//! * [`source`]: the live feed's WebSocket client (reconnecting with backoff) and the log
//!   follower, each a thread sending [`data::Update`]s;
//! * [`scripts`]: the Scripts view's rows (the scripts with expectations, their states, last
//!   runs and the silences matching them), read from the server's answers;
//! * [`render`]: the interactive screen, pure ratatui drawing of a view;
//! * [`text`]: the plain-text snapshot of `--text` and `--once`;
//! * [`terminal`]: raw mode and the alternate screen, restored on exit, panic and signals.

pub mod data;
pub mod render;
pub mod scripts;
pub mod source;
pub mod terminal;
pub mod text;
pub mod ui_state;

/// Text from a script, a plugin or a server made safe for a terminal, one line: escape
/// sequences removed whole, other control characters removed, line breaks and tabs as
/// spaces (the notifiers' sanitiser).
pub fn safe(s: &str) -> std::borrow::Cow<'_, str> {
    metaclaude_notify::text::terminal_safe(s)
}

/// Multi-line text (a script's output, a stack trace) made safe line by line.
pub fn safe_lines(s: &str) -> impl Iterator<Item = String> + '_ {
    s.lines().map(|l| safe(l).into_owned())
}

/// Seconds for people: `0.013s`, `12.4s`, `-` when unknown.
pub fn seconds(v: Option<f64>) -> String {
    match v {
        None => "-".to_string(),
        Some(s) if s < 10.0 => format!("{s:.3}s"),
        Some(s) if s < 100.0 => format!("{s:.1}s"),
        Some(s) => format!("{s:.0}s"),
    }
}

/// A percentage with one decimal, `-` when unknown.
pub fn percent(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |p| format!("{p:.1}%"))
}

/// How an execution ended, one word: `ok`, or its error category.
pub fn outcome(r: &metaclaude::model::ExecutionResult) -> String {
    match (&r.error_details, r.success) {
        (_, true) => "ok".to_string(),
        (Some(e), false) => e.category.as_str().to_string(),
        (None, false) => "FAILED".to_string(),
    }
}

/// A time of day, UTC, to the second.
pub fn clock(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

/// An age for people: `0.4s`, `12s`, `3m05s`.
pub fn age(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 60.0 {
        format!("{s:.0}s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// Why the dashboard stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    /// The source's thread ended, which it does only by panicking while the dashboard runs.
    #[error("the dashboard's source stopped")]
    SourceStopped,
    #[error("cannot set up the terminal")]
    Terminal(#[source] std::io::Error),
    #[error("cannot draw")]
    Draw(#[source] std::io::Error),
    /// Reading the keys, or writing a snapshot.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Where the dashboard's data comes from.
#[derive(Debug, Clone)]
pub enum Source {
    Server(source::ServerSource),
    Log(std::path::PathBuf),
}

/// What the dashboard hands to its caller rather than doing itself (the CLI prints, and
/// decides how the program ends).
#[derive(Debug, Clone, Copy)]
pub struct Callbacks {
    /// A damaged file or line of the log being followed.
    pub read_notice: fn(metaclaude::logs::ReadNotice),
    /// The terminal went away while the interactive view ran (its window closed, ssh
    /// dropped): nothing is left to restore or to show.
    pub on_hangup: fn(),
}

impl Source {
    fn start(
        &self,
        notices: fn(metaclaude::logs::ReadNotice),
    ) -> (data::Data, std::sync::mpsc::Receiver<data::Update>) {
        // Bounded: a source that runs ahead of the screen waits (the log follower) or falls
        // behind and is sent a fresh snapshot (the feed), instead of memory growing.
        let (tx, rx) = std::sync::mpsc::sync_channel(UPDATES_QUEUED);
        let data = match self {
            Source::Server(s) => {
                source::spawn_server(s.clone(), tx);
                data::Data::new(
                    data::Connection::Connecting {
                        url: s.url.clone(),
                        attempt: 1,
                    },
                    false,
                )
            }
            Source::Log(dir) => {
                source::spawn_log(dir.clone(), tx, notices);
                data::Data::new(
                    data::Connection::Following {
                        dir: dir.display().to_string(),
                    },
                    true,
                )
            }
        };
        (data, rx)
    }
}

/// Updates a source may have sent that the screen has not taken in yet.
const UPDATES_QUEUED: usize = 10_000;
/// The most updates taken in before the screen is looked at again.
const MAX_UPDATES_PER_TURN: usize = 50_000;
/// The screen is redrawn at most this often while data comes in.
const FRAME_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);
/// ... and at least this often (the data's age moves on).
const IDLE_REDRAW: std::time::Duration = std::time::Duration::from_secs(1);

/// Takes in what the source sent; an error when the source is gone (its thread ended,
/// which it does only by panicking while the dashboard runs).
fn drain(
    data: &mut data::Data,
    rx: &std::sync::mpsc::Receiver<data::Update>,
) -> Result<(), TuiError> {
    for _ in 0..MAX_UPDATES_PER_TURN {
        match rx.try_recv() {
            Ok(u) => data.apply(u),
            Err(std::sync::mpsc::TryRecvError::Empty) => break,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                return Err(TuiError::SourceStopped)
            }
        }
    }
    Ok(())
}

/// The interactive full-screen view, until `q` (or a signal).
pub fn interactive(source: &Source, callbacks: Callbacks) -> Result<(), TuiError> {
    use ratatui::crossterm::event::{self, Event, KeyEventKind};
    use std::time::Instant;

    let (mut data, rx) = source.start(callbacks.read_notice);
    let mut app = ui_state::App::new();
    let mut session = terminal::Session::enter(callbacks.on_hangup).map_err(TuiError::Terminal)?;
    let mut view = data.view(chrono::Utc::now());
    let mut viewed = Instant::now();
    let mut dirty = true;
    // The detail's whole result, fetched from the server when the feed's copy is cut.
    let mut whole: Option<(String, metaclaude::monitor::Known)> = None;
    let mut fetching: Option<(
        String,
        std::sync::mpsc::Receiver<metaclaude::model::ExecutionResult>,
    )> = None;
    while !terminal::stop_requested() {
        drain(&mut data, &rx)?;
        if let (Some(id), Source::Server(server)) = (&app.detail, source) {
            let holds = |slot: Option<&String>| slot == Some(id);
            if !holds(whole.as_ref().map(|w| &w.0)) && !holds(fetching.as_ref().map(|f| &f.0)) {
                if let Some(metaclaude::monitor::Known::Finished(r)) = data.get(id) {
                    if r.stdout_truncated || r.stderr_truncated {
                        fetching = Some((id.clone(), source::fetch_whole_result(server, id)));
                    }
                }
            }
        }
        if let Some((id, rx)) = &fetching {
            if let Ok(r) = rx.try_recv() {
                whole = Some((
                    id.clone(),
                    metaclaude::monitor::Known::Finished(std::sync::Arc::new(r)),
                ));
                fetching = None;
                dirty = true;
            }
        }
        let due =
            viewed.elapsed() >= IDLE_REDRAW || (data.changed && viewed.elapsed() >= FRAME_INTERVAL);
        if !app.paused && due {
            view = data.view(chrono::Utc::now());
            viewed = Instant::now();
            dirty = true;
        }
        if dirty {
            let detail = app.detail.as_deref().and_then(|id| match &whole {
                Some((i, known)) if i == id => Some(known.clone()),
                _ => data.get(id),
            });
            session
                .terminal
                .draw(|f| render::draw(f, &app, &view, detail.as_ref()))
                .map_err(TuiError::Draw)?;
            dirty = false;
        }
        if event::poll(std::time::Duration::from_millis(100))? {
            match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    #[cfg(debug_assertions)]
                    panic_if_asked(&k);
                    let keys = app.rows(&view).keys(app.pane);
                    if app.key(k, &keys) == ui_state::Action::Quit {
                        break;
                    }
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
    }
    drop(session);
    Ok(())
}

/// Debug builds only: `METACLAUDE_DASHBOARD_PANIC_KEY=<char>` makes that key panic, so
/// that a test can show the terminal is given back when the dashboard panics.
#[cfg(debug_assertions)]
fn panic_if_asked(k: &ratatui::crossterm::event::KeyEvent) {
    let asked = std::env::var("METACLAUDE_DASHBOARD_PANIC_KEY").ok();
    if let (Some(asked), ratatui::crossterm::event::KeyCode::Char(c)) = (asked, k.code) {
        if asked.chars().eq([c]) {
            panic!("the dashboard panicked on purpose (METACLAUDE_DASHBOARD_PANIC_KEY={c})");
        }
    }
}

/// Plain-text snapshots on `out`, one per `interval` (`once`: one, when the source's first
/// whole picture came, with a server's watched scripts, or after `interval` * 5 without
/// one). A damaged file or line of a
/// followed log goes to `read_notice`.
pub fn text(
    source: &Source,
    interval: std::time::Duration,
    once: bool,
    out: &mut dyn std::io::Write,
    read_notice: fn(metaclaude::logs::ReadNotice),
) -> Result<(), TuiError> {
    use std::time::Instant;
    let (mut data, rx) = source.start(read_notice);
    let started = Instant::now();
    let mut next = Instant::now() + interval;
    loop {
        let now = Instant::now();
        if once {
            drain(&mut data, &rx)?;
            if data.complete() || now.duration_since(started) >= interval * 5 {
                // What arrived with the picture (the log's end, the feed's first events).
                std::thread::sleep(std::time::Duration::from_millis(100));
                drain(&mut data, &rx)?;
                out.write_all(text::snapshot(&data.view(chrono::Utc::now())).as_bytes())?;
                out.flush()?;
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            continue;
        }
        if now >= next {
            drain(&mut data, &rx)?;
            out.write_all(text::snapshot(&data.view(chrono::Utc::now())).as_bytes())?;
            out.flush()?;
            next += interval;
            continue;
        }
        match rx.recv_timeout(next - now) {
            Ok(u) => data.apply(u),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(TuiError::SourceStopped)
            }
        }
    }
}
