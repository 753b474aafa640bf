//! The `metaclaude` command: parses arguments and hands them to [`cli::dispatch`]; the
//! commands themselves are in `cli/`, the work they do in the library.

mod cli;
#[cfg(target_arch = "x86_64")]
mod string_copy;
mod tui;

use std::io::IsTerminal;
use std::process::ExitCode;

// The static executable (`cargo xtask build-static`): musl's allocator takes one lock for
// every thread's allocations, so it allocates through mimalloc (README, "The static
// executable"); the glibc build keeps glibc's, tuned by `memory::tune_allocator`.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before any thread: files made without an explicit mode (by plugins through WASI)
    // are private; scripts get the operator's umask back when spawned.
    metaclaude::safe_fs::restrict_umask();
    metaclaude::memory::tune_allocator();
    let args = cli::args::Cli::parse_args();
    init_tracing(&args.globals.log_level);
    match cli::dispatch(args.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cli::EXIT_USAGE)
        }
    }
}

/// The host's own log on stderr, at `level` unless RUST_LOG says otherwise.
fn init_tracing(level: &str) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // No colour codes in a file or a pipe.
        .with_ansi(std::io::stderr().is_terminal());
    // A plain level (the usual case, and `--log-level`'s default) needs no directive
    // parser: a level filter is set up in a fraction of the time, which a one-shot `run`
    // pays on every call.
    let plain = std::env::var_os("RUST_LOG")
        .is_none()
        .then(|| {
            level
                .parse::<tracing_subscriber::filter::LevelFilter>()
                .ok()
        })
        .flatten();
    match plain {
        Some(max) => builder.with_max_level(max).init(),
        None => {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
            builder.with_env_filter(filter).init()
        }
    }
}
