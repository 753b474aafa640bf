//! The terminal while the interactive view runs: raw mode, the alternate screen, no cursor,
//! standard error set aside (to /dev/null, so that no diagnostic lands in the frame);
//! given back as it was on every way out: a normal exit ([`Session`] dropped), a panic (a
//! hook restores it before the message is printed) and SIGTERM, SIGHUP or SIGINT (a flag
//! the main loop checks; it then leaves as on `q`).

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::Terminal;

static STOP: AtomicBool = AtomicBool::new(false);
/// Whether the terminal is in the dashboard's state (so that restoring twice is harmless).
static ENTERED: AtomicBool = AtomicBool::new(false);

/// Whether a signal asked the program to stop.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Whether the terminal went away (its window closed, tmux killed, ssh dropped). A
/// hung-up terminal stays readable with nothing to read, and crossterm's poll then spins
/// on it without returning; SIGHUP, which should say so, does not reach a process whose
/// session leader was a shell that died first. So [`watch_for_hangup`] asks this.
fn hung_up() -> bool {
    let mut fds = [0, 1].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is a valid array of two `pollfd`s for its whole length, and a zero
    // timeout makes `poll` return at once; it only reads the descriptors' states.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
    ready > 0
        && fds
            .iter()
            .any(|p| p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0)
}

/// A thread that calls `then` once the terminal is gone (the CLI then ends the program,
/// status 129, as SIGHUP would): nothing is left to restore or to show, and the
/// interactive loop may be stuck in crossterm's poll.
fn watch_for_hangup(then: fn()) {
    static WATCH: Once = Once::new();
    WATCH.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("dashboard-hangup".into())
            .spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_millis(250));
                if hung_up() {
                    then();
                    return;
                }
            });
    });
}

extern "C" fn on_stop_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() -> io::Result<()> {
    for signal in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT] {
        // SAFETY: a zeroed `sigaction` is a valid empty one (no flags, empty mask); the
        // handler only stores to an atomic, which is async-signal-safe, and it stays
        // valid for the life of the program (a plain function).
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if installed != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// Standard error as it was before the screen was taken (-1: not taken aside).
static SAVED_STDERR: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Sends standard error to /dev/null while the screen is up: a diagnostic written there
/// (the host's log, a damaged log file's warning) would land in the middle of the frame
/// and stay there, as ratatui redraws only what changed.
fn stderr_aside() {
    // SAFETY: `dup`, `open` and `dup2` only work on file descriptors; the path is a valid
    // NUL-terminated string; descriptor 2 is replaced atomically by `dup2`, and the saved
    // copy is kept until `stderr_back` puts it back.
    unsafe {
        let saved = libc::dup(2);
        if saved < 0 {
            return;
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if null < 0 || libc::dup2(null, 2) < 0 {
            libc::close(saved);
            if null >= 0 {
                libc::close(null);
            }
            return;
        }
        libc::close(null);
        SAVED_STDERR.store(saved, Ordering::SeqCst);
    }
}

fn stderr_back() {
    let saved = SAVED_STDERR.swap(-1, Ordering::SeqCst);
    if saved >= 0 {
        // SAFETY: `saved` is the descriptor `stderr_aside` duplicated and nothing else
        // closed (the swap makes this the only owner); `dup2` puts it back on 2.
        unsafe {
            libc::dup2(saved, 2);
            libc::close(saved);
        }
    }
}

/// Gives the terminal back: leaves the alternate screen, shows the cursor, ends raw
/// mode, puts standard error back. Does nothing when the dashboard does not hold it.
pub fn restore() {
    if ENTERED.swap(false, Ordering::SeqCst) {
        let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
        let _ = disable_raw_mode();
        stderr_back();
    }
}

/// The terminal in the dashboard's state; restored when dropped.
pub struct Session {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Session {
    /// Takes the terminal; `on_hangup` is called (from a thread of its own) if the terminal
    /// goes away meanwhile.
    pub fn enter(on_hangup: fn()) -> io::Result<Session> {
        install_panic_hook();
        install_signal_handlers()?;
        enable_raw_mode()?;
        watch_for_hangup(on_hangup);
        ENTERED.store(true, Ordering::SeqCst);
        stderr_aside();
        if let Err(e) = execute!(io::stdout(), EnterAlternateScreen, Hide) {
            restore();
            return Err(e);
        }
        match Terminal::new(CrosstermBackend::new(io::stdout())) {
            Ok(terminal) => Ok(Session { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        restore();
    }
}
