//! The `metaclaude` command: parses arguments and hands them to [`cli::dispatch`]; the
//! commands themselves are in `cli/`, the work they do in the library.

mod cli;
mod tui;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Before any thread: files made without an explicit mode (by plugins through WASI)
    // are private; scripts get the operator's umask back when spawned.
    metaclaude::safe_fs::restrict_umask();
    fix_malloc_mmap_threshold();
    let args = cli::args::Cli::parse();
    init_tracing(&args.log_level);
    match cli::dispatch(args.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cli::EXIT_USAGE)
        }
    }
}

/// Large buffers (a script's captured output is up to a few MiB) get their own mappings
/// and go back to the system when freed. glibc starts with this threshold at 128 KiB but
/// raises it after the first large buffer is freed, and from then on 1 MiB captures are
/// carved from per-thread arenas that fragment: a long-running `serve` grew by about
/// 13 MiB an hour that way (the soak in the README). Fixing the threshold at glibc's own
/// default stops the raise. `MALLOC_MMAP_THRESHOLD_` in the environment still wins.
fn fix_malloc_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: `mallopt` only sets one of the allocator's parameters and is safe to
        // call at any time; here no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
}

/// The host's own log on stderr, at `level` unless RUST_LOG says otherwise.
fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in a file or a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
