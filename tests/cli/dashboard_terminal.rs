//! `metaclaude dashboard-terminal` end to end: the real binary in a real terminal (tmux:
//! crossterm asks the terminal where the cursor is, which tmux answers and a bare pty does
//! not), driven with `tmux send-keys`, read with `tmux capture-pane -p`, every wait bounded
//! and on something the screen shows; against a live `metaclaude serve` and against a log
//! directory. And the plain-text snapshots (`--once`, `--text`) against a golden file.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use metaclaude::model::{ErrorCategory, ErrorContext, ErrorDetails, ExecutionResult};

use crate::serve::Server;
use crate::util::{assert_golden, bin, example_registry, succeed};

const TMUX: &str = "/usr/bin/tmux";
const WAIT: Duration = Duration::from_secs(30);

/// One tmux server of its own (`-L`, no config) with one session running the dashboard,
/// then a shell line that says how it exited and whether the terminal is back in cooked
/// mode with echo; killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(args: &[&str], configure: impl FnOnce(&mut Command)) -> Tmux {
        assert!(
            Path::new(TMUX).exists(),
            "{TMUX} is missing: the terminal dashboard's end-to-end tests need Debian's tmux \
             (`cargo xtask test` installs it as root); install it with: apt-get install -y tmux"
        );
        let socket = format!(
            "metaclaude-test-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        );
        // The executable's environment as the other tests give it.
        let mut template = bin();
        configure(&mut template);
        let mut env = Vec::new();
        for (k, v) in template.get_envs() {
            if let Some(v) = v {
                env.push("-e".to_string());
                env.push(format!("{}={}", k.to_string_lossy(), v.to_string_lossy()));
            }
        }
        let program = template.get_program().to_string_lossy().into_owned();
        let quoted: Vec<String> = std::iter::once(program)
            .chain(args.iter().map(|a| a.to_string()))
            .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
            .collect();
        let script = format!(
            "env -u RUST_LOG -u METACLAUDE_SERVER -u METACLAUDE_TOKEN_FILE {}; \
             echo \"[exited $?] [$(stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e echo | tr '\\n' ' ')]\"; \
             sleep 600",
            quoted.join(" ")
        );
        let status = Command::new(TMUX)
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "120", "-y", "40", "-s", "dash"])
            .args(env)
            .arg(script)
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        Tmux { socket }
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new(TMUX);
        c.args(["-L", &self.socket]);
        c
    }

    /// `tmux send-keys` with key names (`Enter`, `Escape`, `j`).
    fn keys(&self, keys: &[&str]) {
        succeed(self.tmux().args(["send-keys", "-t", "dash"]).args(keys));
    }

    /// Types `text` literally.
    fn type_text(&self, text: &str) {
        succeed(self.tmux().args(["send-keys", "-t", "dash", "-l", text]));
    }

    fn screen(&self) -> String {
        let out = succeed(self.tmux().args(["capture-pane", "-p", "-t", "dash"]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen with its styles as escape sequences (`capture-pane -e`).
    fn styled_screen(&self) -> String {
        let out = succeed(self.tmux().args(["capture-pane", "-p", "-e", "-t", "dash"]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn pane_flag(&self, flag: &str) -> String {
        let out = succeed(self.tmux().args([
            "display-message",
            "-p",
            "-t",
            "dash",
            &format!("#{{{flag}}}"),
        ]));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Polls the screen until `ready` holds (bounded), and returns it.
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen did not show {what} within {WAIT:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `q`, then: exit 0, the terminal back in canonical mode with echo, off the
    /// alternate screen, the cursor shown, nothing of the dashboard left on screen.
    fn quit_and_check_the_terminal_is_restored(&self) {
        self.keys(&["q"]);
        let screen = self.wait_for("the exit line", exit_line_shown);
        assert!(
            screen.contains("[exited 0] [icanon echo ]"),
            "exit status or terminal modes:\n{screen}"
        );
        assert!(
            !screen.contains("q quit"),
            "the dashboard is still shown:\n{screen}"
        );
        assert_eq!(
            self.pane_flag("alternate_on"),
            "0",
            "still on the alternate screen"
        );
        assert_eq!(self.pane_flag("cursor_flag"), "1", "the cursor is hidden");
    }
}

impl Tmux {
    /// The dashboard's process: the pane's shell's child.
    fn dashboard_pid(&self) -> i32 {
        let pid = self.pane_flag("pane_pid");
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .expect("the pane's children");
        children
            .split_whitespace()
            .next()
            .expect("the dashboard process")
            .parse()
            .unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .tmux()
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether the shell's line after the dashboard exited is on screen, whole.
fn exit_line_shown(screen: &str) -> bool {
    screen
        .lines()
        .any(|l| l.starts_with("[exited ") && l.trim_end().ends_with(']'))
}

/// The line of the recent-executions pane that shows `script`, if any.
fn recent_row<'s>(screen: &'s str, script: &str) -> Option<&'s str> {
    screen.lines().find(|l| {
        let cells: Vec<&str> = l.trim_matches('│').split_whitespace().collect();
        cells.len() >= 3
            && cells[0].len() == 8
            && cells[0].as_bytes()[2] == b':'
            && cells[2] == script
    })
}

#[test]
fn live_from_a_server_new_executions_filter_detail_and_quit() {
    let server = Server::start(&example_registry(), &["--no-plugins"], |_| {});
    server.run("hello");
    let tmux = Tmux::start(&["dashboard-terminal", "--server", &server.http], |_| {});
    tmux.wait_for("the live feed with hello", |s| {
        s.contains(": live") && recent_row(s, "hello").is_some()
    });

    // A new execution appears, its failure named.
    server.run("failing");
    tmux.wait_for("the new execution, its failure named", |s| {
        recent_row(s, "failing").is_some_and(|row| row.contains("EXECUTION"))
    });

    // The filter: only hello is left.
    tmux.keys(&["/"]);
    tmux.wait_for("the filter prompt", |s| {
        s.contains("filter (script or specialist)")
    });
    tmux.type_text("hell");
    tmux.keys(&["Enter"]);
    tmux.wait_for("the filter applied", |s| {
        s.contains("filter: hell")
            && recent_row(s, "failing").is_none()
            && recent_row(s, "hello").is_some()
    });

    // Enter opens the selected execution (hello, the only row), Esc closes it.
    tmux.keys(&["Enter"]);
    // (A capture can catch a frame half drawn: wait for all of it.)
    tmux.wait_for("hello's detail with its stdout", |s| {
        s.contains("Execution detail")
            && s.contains("script      hello")
            && s.contains("stdout:")
            && s.contains("Hello, world")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("the detail closed", |s| !s.contains("Execution detail"));

    // The server goes away: the dashboard says so and keeps its filter while it retries.
    let (status, stderr) = server.stop();
    assert!(status.success(), "serve: {status}: {stderr}");
    tmux.wait_for("the lost connection, the filter kept", |s| {
        s.contains("disconnected") && s.contains("filter: hell")
    });

    tmux.quit_and_check_the_terminal_is_restored();
}

#[test]
fn live_from_a_log_directory_as_it_is_written() {
    let logs = tempfile::tempdir().unwrap();
    // Exit 0 for a success, 1 for a failed execution.
    let run = |script: &str, code: i32| {
        let mut cmd = bin();
        cmd.env("METACLAUDE_LOG_DIR", logs.path())
            .args(["run", script, "--registry"])
            .arg(example_registry());
        let out = cmd.output().expect("run metaclaude");
        assert_eq!(
            out.status.code(),
            Some(code),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run("hello", 0);
    let dir = logs.path().to_string_lossy().into_owned();
    let tmux = Tmux::start(&["dashboard-terminal", "--log", "--log-dir", &dir], |_| {});
    tmux.wait_for("the log's execution", |s| {
        s.contains(": following") && recent_row(s, "hello").is_some()
    });
    run("failing", 1);
    tmux.wait_for("the new execution", |s| recent_row(s, "failing").is_some());
    // Help opens and closes; Tab moves the focus.
    tmux.keys(&["?"]);
    tmux.wait_for("the help", |s| s.contains("reverse the sort"));
    tmux.keys(&["x"]);
    tmux.wait_for("the help closed", |s| !s.contains("reverse the sort"));
    // The Scripts view: a log has no states, and it says so.
    tmux.keys(&["S"]);
    tmux.wait_for("the Scripts view saying it needs a server", |s| {
        s.contains("Scripts with expectations (0)")
            && s.contains("the scripts' states are a server's: run with --server URL")
    });
    tmux.keys(&["S"]);
    tmux.wait_for("the executions again", |s| {
        recent_row(s, "failing").is_some()
    });
    tmux.quit_and_check_the_terminal_is_restored();
}

#[test]
fn sigterm_restores_the_terminal() {
    let logs = tempfile::tempdir().unwrap();
    let dir = logs.path().to_string_lossy().into_owned();
    let tmux = Tmux::start(&["dashboard-terminal", "--log", "--log-dir", &dir], |_| {});
    tmux.wait_for("the dashboard", |s| s.contains("q quit"));
    crate::serve::signal(tmux.dashboard_pid(), libc::SIGTERM);
    let screen = tmux.wait_for("the exit line", exit_line_shown);
    assert!(
        screen.contains("[exited 0] [icanon echo ]"),
        "exit status or terminal modes:\n{screen}"
    );
    assert_eq!(tmux.pane_flag("alternate_on"), "0");
}

/// A panic while the screen is up (one asked for, in the debug build the tests run) gives
/// the terminal back before the message is printed, where the user can read it.
#[test]
fn a_panic_restores_the_terminal_and_its_message_is_readable() {
    let logs = tempfile::tempdir().unwrap();
    let dir = logs.path().to_string_lossy().into_owned();
    let tmux = Tmux::start(&["dashboard-terminal", "--log", "--log-dir", &dir], |c| {
        c.env("METACLAUDE_DASHBOARD_PANIC_KEY", "!");
    });
    tmux.wait_for("the dashboard", |s| s.contains("q quit"));
    assert_eq!(tmux.pane_flag("alternate_on"), "1");
    tmux.keys(&["!"]);
    let screen = tmux.wait_for("the exit line", exit_line_shown);
    assert!(
        screen.contains("[exited 101] [icanon echo ]"),
        "exit status or terminal modes:\n{screen}"
    );
    assert!(
        screen.contains("the dashboard panicked on purpose"),
        "the panic's message is not on the normal screen:\n{screen}"
    );
    assert!(
        !screen.contains("q quit"),
        "the dashboard is still shown:\n{screen}"
    );
    assert_eq!(
        tmux.pane_flag("alternate_on"),
        "0",
        "still on the alternate screen"
    );
    assert_eq!(tmux.pane_flag("cursor_flag"), "1", "the cursor is hidden");
}

/// A terminal that goes away (tmux killed, as a closed window or a dropped ssh) ends the
/// dashboard: before, it spun in crossterm's poll on the dead terminal, forever.
#[test]
fn a_closed_terminal_ends_the_dashboard() {
    let logs = tempfile::tempdir().unwrap();
    let dir = logs.path().to_string_lossy().into_owned();
    let tmux = Tmux::start(&["dashboard-terminal", "--log", "--log-dir", &dir], |_| {});
    tmux.wait_for("the dashboard", |s| s.contains("q quit"));
    let pid = tmux.dashboard_pid();
    drop(tmux);
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
    };
    crate::util::wait_until(
        "the dashboard ends with its terminal",
        std::time::Duration::from_secs(20),
        || !alive(),
        || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default(),
    );
}

/// A log directory with four executions that finished a few seconds ago.
fn fixed_log(dir: &Path) {
    let now = Utc::now();
    let mut lines = String::new();
    for (i, (script, ok, secs)) in [
        ("hello", true, 0.013),
        ("hello", true, 0.021),
        ("fetch_data", false, 1.5),
        ("report", true, 0.4),
    ]
    .into_iter()
    .enumerate()
    {
        let started = now - chrono::Duration::seconds(10 - i as i64);
        let mut r =
            ExecutionResult::new(format!("01JFIXED0000000000000000{i:02}"), script, started);
        r.finished_at = started + chrono::Duration::milliseconds((secs * 1000.0) as i64);
        r.success = ok;
        r.exit_code = Some(if ok { 0 } else { 1 });
        r.specialist = Some("data-team".into());
        r.resource_usage.wall_time_seconds = secs;
        r.resource_usage.peak_memory_mb = 2.0;
        if !ok {
            r.error_details = Some(ErrorDetails {
                category: ErrorCategory::Timeout,
                message: "took too long".into(),
                context: ErrorContext::default(),
                suggestions: Vec::new(),
                stack_trace: None,
            });
        }
        let mut v = serde_json::to_value(&r).unwrap();
        v["event"] = "finished".into();
        v["level"] = "INFO".into();
        lines.push_str(&format!("{v}\n"));
    }
    std::fs::write(dir.join("executions.jsonl"), lines).unwrap();
}

/// The block with what moves with the clock written as placeholders: the header's time
/// and age, the clock column, the rate, the throughput's buckets (as their sum).
fn normalise(block: &str, dir: &str) -> String {
    let mut out = String::new();
    for line in block.lines() {
        let line = line.replace(dir, "<dir>");
        let line = if line.starts_with("== metaclaude dashboard ") {
            let tail = line.split("UTC  ").nth(1).unwrap_or("");
            let source = tail.split("  data ").next().unwrap_or("");
            format!("== metaclaude dashboard <time> UTC  {source}  data <age>")
        } else if let Some((head, counts)) = line.split_once("oldest first): ") {
            let sum: u64 = counts
                .split_whitespace()
                .map(|n| n.parse::<u64>().unwrap())
                .sum();
            format!("{head}oldest first): <{sum} in all>")
        } else if line.starts_with("  ") && line.as_bytes().get(4) == Some(&b':') {
            format!("  <clock>{}", &line[10..])
        } else if let Some(at) = line.find("  rate ") {
            format!("{}  rate <r>/min", &line[..at])
        } else {
            line
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn golden_path() -> PathBuf {
    crate::util::root().join("tests/cli/dashboard_terminal/once_from_log.txt")
}

#[test]
fn golden_text_snapshots_once_and_every_interval() {
    let logs = tempfile::tempdir().unwrap();
    fixed_log(logs.path());
    let dir = logs.path().to_string_lossy().into_owned();
    let out = succeed(bin().args(["dashboard-terminal", "--once", "--log", "--log-dir", &dir]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\u{1b}'),
        "an escape code in --once:\n{text}"
    );
    let golden = golden_path();
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    let once = normalise(&text, &dir);
    assert_golden(&golden, &expected, &once, "--once from a log");

    // --text: a block per interval, the same as --once's while nothing new comes.
    let mut child = bin()
        .args([
            "dashboard-terminal",
            "--text",
            "--interval",
            "1",
            "--log",
            "--log-dir",
            &dir,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut text = Vec::new();
    let deadline = Instant::now() + WAIT;
    while String::from_utf8_lossy(&text)
        .matches("== metaclaude dashboard")
        .count()
        < 3
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(bytes) => text.extend(bytes),
            Err(_) => panic!("fewer than 3 blocks:\n{}", String::from_utf8_lossy(&text)),
        }
    }
    // Still running (it redraws until stopped): ended here, by the kill.
    assert!(
        child.try_wait().unwrap().is_none(),
        "--text exited on its own"
    );
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    let text = String::from_utf8(text).unwrap();
    assert!(
        !text.contains('\u{1b}'),
        "an escape code in --text:\n{text}"
    );
    let blocks: Vec<&str> = text.split_inclusive("\n\n").collect();
    for block in &blocks[..2] {
        assert_eq!(
            normalise(block, &dir).trim_end(),
            once.trim_end(),
            "a --text block"
        );
    }
}

/// A `metaclaude serve` without plugins on `port` (0: one the system picks, read back
/// from what it prints), so that a second one can take the first one's place.
fn server_on(port: u16) -> Server {
    let port = port.to_string();
    Server::start(
        &example_registry(),
        &["--no-plugins", "--no-ws-port", "--http-port", &port],
        |_| {},
    )
}

/// The port a [`server_on`] listens on.
fn port_of(server: &Server) -> u16 {
    server.http.rsplit(':').next().unwrap().parse().unwrap()
}

/// A server that has run `scripts`, and the dashboard showing the last of them live.
/// The restart tests start a second server on the first one's port once it is gone: the
/// one port a test picks before binding it, as a restarted server would.
fn dashboard_of_a_fixed_server(scripts: &[&str]) -> (u16, Server, Tmux) {
    let server = server_on(0);
    let port = port_of(&server);
    for script in scripts {
        server.run(script);
    }
    let tmux = Tmux::start(&["dashboard-terminal", "--server", &server.http], |_| {});
    let last = scripts.last().copied().unwrap_or_default();
    tmux.wait_for("the live feed", |s| {
        s.contains(": live") && recent_row(s, last).is_some()
    });
    (port, server, tmux)
}

#[test]
fn a_restarted_server_is_followed_again_with_the_sort_and_filter_kept() {
    let (port, first, tmux) = dashboard_of_a_fixed_server(&["hello"]);
    tmux.keys(&["s"]);
    tmux.keys(&["r"]);
    tmux.keys(&["/"]);
    tmux.wait_for("the filter prompt", |s| {
        s.contains("filter (script or specialist)")
    });
    tmux.type_text("o");
    tmux.keys(&["Enter"]);
    tmux.wait_for("sort and filter", |s| {
        s.contains("sort script (reversed)  filter: o")
    });
    // Gone at once (killed), as a crashed server would be.
    drop(first);
    tmux.wait_for("the lost connection", |s| s.contains("disconnected"));
    let second = server_on(port);
    second.run("noop");
    second.run("failing");
    // The new server's executions only (the first one's hello is gone with it), still
    // filtered (failing has no "o") and sorted by script, reversed.
    let screen = tmux.wait_for("the new server's executions", |s| {
        s.contains(": live")
            && recent_row(s, "noop").is_some()
            && recent_row(s, "hello").is_none()
            && s.contains("Executions (60 min): 2 ")
            && s.contains("sort script (reversed)  filter: o")
    });
    assert!(recent_row(&screen, "failing").is_none(), "{screen}");
    tmux.quit_and_check_the_terminal_is_restored();
}

/// The text of the highlighted (reversed: selected) row, if one is on screen: from the
/// reverse attribute to the reset, other style sequences left out.
fn highlighted(styled: &str) -> Option<String> {
    let rest = styled.split("\u{1b}[7m").nth(1)?;
    let row = rest.split("\u{1b}[0m").next().unwrap_or("");
    let mut text = String::new();
    let mut chars = row.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // A CSI sequence: up to its final byte.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            text.push(c);
        }
    }
    Some(text.trim().to_string())
}

/// The selection is kept by what it selects, across a reconnect: a script selected in the
/// top-scripts pane is still the one selected once the server is back, though it is now
/// on another row.
#[test]
fn a_restarted_server_keeps_the_selection_on_the_same_script() {
    let (port, first, tmux) = dashboard_of_a_fixed_server(&["hello", "hello", "noop"]);
    // From the recent executions to the top scripts (hello, 2; noop, 1), the second row.
    tmux.keys(&["Tab"]);
    tmux.keys(&["j"]);
    let deadline = Instant::now() + WAIT;
    while !highlighted(&tmux.styled_screen()).is_some_and(|h| h.starts_with("noop")) {
        assert!(
            Instant::now() < deadline,
            "noop not selected in the top scripts:\n{}",
            tmux.styled_screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Gone at once (killed), as a crashed server would be.
    drop(first);
    tmux.wait_for("the lost connection", |s| s.contains("disconnected"));
    let second = server_on(port);
    // Four executions, so that the figures shown are the new server's.
    for script in ["noop", "noop", "noop", "hello"] {
        second.run(script);
    }
    let deadline = Instant::now() + WAIT;
    loop {
        // The plain screen first: the styled one, taken after, is at least as new.
        let plain = tmux.screen();
        let styled = tmux.styled_screen();
        let fresh = plain.contains(": live") && plain.contains("Executions (60 min): 4 ");
        if fresh {
            // noop now tops the list: the selection followed it to the first row.
            assert_eq!(
                highlighted(&styled).map(|h| h.starts_with("noop")),
                Some(true),
                "the selection moved off noop:\n{styled}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new server's figures did not come:\n{plain}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    tmux.quit_and_check_the_terminal_is_restored();
}

#[test]
fn once_from_a_server_shows_its_executions_and_plugins() {
    let server = Server::start(&example_registry(), &["--no-plugins"], |_| {});
    server.run("hello");
    let out = succeed(bin().args(["dashboard-terminal", "--once", "--server", &server.http]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("server {}: live", server.http)),
        "{text}"
    );
    assert!(text.contains("Executions (last 60 min): 1"), "{text}");
    assert!(text.contains(" ok         hello "), "{text}");
    assert!(text.contains("Plugins (0):"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[test]
fn hostile_output_in_the_detail_and_a_resize_leave_the_terminal_alone() {
    let logs = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let mut r = ExecutionResult::new("01JHOSTILE0000000000000000", "evil", now);
    r.finished_at = now;
    // A window title, a clear screen, a cursor move, a colour, a bell, OSC 52 (clipboard).
    r.stdout = "title\u{1b}]2;owned\u{7}\u{1b}[2J\u{1b}[10;10Hmoved\u{1b}[31mred\u{7}\u{1b}]52;c;aGk=\u{7}end\n".into();
    let mut v = serde_json::to_value(&r).unwrap();
    v["event"] = "finished".into();
    std::fs::write(logs.path().join("executions.jsonl"), format!("{v}\n")).unwrap();
    let dir = logs.path().to_string_lossy().into_owned();
    let tmux = Tmux::start(&["dashboard-terminal", "--log", "--log-dir", &dir], |_| {});
    tmux.wait_for("the execution", |s| recent_row(s, "evil").is_some());
    let title = tmux.pane_flag("pane_title");
    tmux.keys(&["Enter"]);
    tmux.wait_for("its detail, the output as plain text", |s| {
        s.contains("Execution detail") && s.contains("titlemovedredend")
    });
    assert_eq!(
        tmux.pane_flag("pane_title"),
        title,
        "the output set the title"
    );
    assert_eq!(tmux.pane_flag("alternate_on"), "1");
    tmux.keys(&["Escape"]);
    // Smaller: the compact layout (no alerts pane), drawn whole.
    succeed(
        tmux.tmux()
            .args(["resize-window", "-t", "dash", "-x", "80", "-y", "24"]),
    );
    tmux.wait_for("the small layout", |s| {
        !s.contains("Active alerts") && s.contains("Recent executions") && s.contains("q quit")
    });
    succeed(
        tmux.tmux()
            .args(["resize-window", "-t", "dash", "-x", "120", "-y", "40"]),
    );
    tmux.wait_for("the full layout again", |s| s.contains("Active alerts"));
    tmux.quit_and_check_the_terminal_is_restored();
}

#[test]
fn the_detail_of_a_big_output_is_the_servers_whole_result_not_the_feeds_tail() {
    let server = Server::start(&example_registry(), &["--no-plugins"], |_| {});
    let tmux = Tmux::start(&["dashboard-terminal", "--server", &server.http], |_| {});
    tmux.wait_for("the live feed", |s| s.contains(": live"));
    // 8 MiB out, 64 KiB kept (head and tail); the feed sends the last 8 KiB only.
    server.run("big_output");
    tmux.wait_for("the execution", |s| recent_row(s, "big_output").is_some());
    tmux.keys(&["Enter"]);
    tmux.wait_for("the head of its output, from the server", |s| {
        s.contains("Execution detail")
            && s.contains("stdout (truncated):")
            && s.contains("first line")
    });
    tmux.quit_and_check_the_terminal_is_restored();
}

/// A server whose `toggle` script expects no failure in a row (`failures_in_a_row: 1`):
/// it exits with the code in the file `code` beside it (0 when there is none).
fn expecting_server(dir: &Path) -> Server {
    let registry = crate::util::write_registry(
        dir,
        &[(
            "toggle.sh",
            "#!/bin/sh\ncode=$(cat \"$(dirname \"$0\")/code\" 2>/dev/null || echo 0)\nexit \"$code\"\n",
        )],
        r#"{"scripts": [
            {"id": "toggle", "path": "toggle.sh", "max_retries": 0, "specialist": "ops",
             "expect": {"failures_in_a_row": 1}},
            {"id": "plain", "path": "toggle.sh"}
        ]}"#,
    );
    Server::start(&registry, &["--no-plugins"], |_| {})
}

/// The row of the Scripts view that shows `script`, if any.
fn script_row<'s>(screen: &'s str, script: &str) -> Option<&'s str> {
    screen
        .lines()
        .find(|l| l.trim_start_matches('│').split_whitespace().next() == Some(script))
}

#[test]
fn the_scripts_view_follows_a_watched_scripts_state_from_failing_to_ok() {
    let dir = tempfile::tempdir().unwrap();
    let server = expecting_server(dir.path());
    std::fs::write(dir.path().join("code"), "3").unwrap();
    assert_eq!(server.run("toggle")["success"], false);
    let tmux = Tmux::start(
        &[
            "dashboard-terminal",
            "--server",
            &server.http,
            "--interval",
            "1",
        ],
        |_| {},
    );
    tmux.wait_for("the live feed", |s| s.contains(": live"));
    tmux.keys(&["S"]);
    let screen = tmux.wait_for("toggle failing, its last run failed", |s| {
        script_row(s, "toggle").is_some_and(|r| r.contains(" failing ") && r.contains("EXECUTION "))
    });
    assert!(
        screen.contains("Scripts with expectations (1)"),
        "only the script with an expect block:\n{screen}"
    );
    assert!(script_row(&screen, "plain").is_none(), "{screen}");
    let row = script_row(&screen, "toggle").unwrap();
    assert!(row.contains(" ops ") && row.contains("none seen"), "{row}");

    std::fs::write(dir.path().join("code"), "0").unwrap();
    assert_eq!(server.run("toggle")["success"], true);
    tmux.wait_for("toggle ok, its last run ok", |s| {
        script_row(s, "toggle")
            .is_some_and(|r| r.contains(" ok ") && !r.contains("failing") && r.contains(" ago "))
    });
    tmux.quit_and_check_the_terminal_is_restored();

    // The plain text: the same script and state.
    let out = succeed(bin().args(["dashboard-terminal", "--once", "--server", &server.http]));
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("  toggle ") && l.contains(" last run "))
        .unwrap_or_else(|| panic!("no Scripts line of toggle:\n{text}"));
    assert!(text.contains("Scripts with expectations (1):"), "{text}");
    assert!(
        line.contains(" ok ") && line.contains("last run ok ") && line.contains("failures 0"),
        "{line}"
    );
    assert!(line.contains("specialist=ops"), "{line}");
}
