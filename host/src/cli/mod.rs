//! The `metaclaude` command line: its flags ([`args`]), its text for people ([`render`]),
//! and one module per command, each turning parsed flags into calls of the library and
//! an exit status.

// First: the modules below print through its macros.
#[macro_use]
mod stdout;

mod alerts;
pub mod args;
mod batch;
mod dashboard_terminal;
mod logs;
mod metrics;
mod plugins;
mod render;
mod run;
mod schedule;
mod serve;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use metaclaude::app::{HostError, HostNotice, Notices};
use metaclaude::Registry;

use self::args::{Command, PluginsCommand, RegistryCommand};

/// Exit status: the script (or one of the batch) failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status for usage and configuration errors (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit status when an execution finished but an acknowledging sink did not confirm
/// storing it.
pub const EXIT_NOT_RECORDED: u8 = 3;

/// Runs one command.
pub fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => run::run(args),
        Command::Batch(args) => batch::batch(args),
        Command::Serve(args) => serve::serve(args, serve::Mode::Api),
        Command::Dashboard(args) => serve::serve(args, serve::Mode::Dashboard),
        Command::Metrics(args) => metrics::metrics(args),
        Command::Registry {
            command: RegistryCommand::Check { file, normalized },
        } => registry_check(&file, normalized),
        Command::Logs(args) => logs::logs(&args),
        Command::Alerts { command } => alerts::alerts(command),
        Command::Schedule { command } => schedule::schedule(command),
        Command::DashboardTerminal(args) => dashboard_terminal::dashboard_terminal(args),
        Command::Plugins { command } => match command {
            PluginsCommand::List {
                server: Some(url),
                token_file,
                ..
            } => plugins::list_server(&url, token_file.as_deref()),
            PluginsCommand::List { at, .. } => plugins::list(&at),
            PluginsCommand::Check {
                dir,
                normalized,
                grants,
            } => plugins::check(&dir, normalized, grants.as_deref()),
            PluginsCommand::Grant {
                names,
                all,
                yes,
                at,
            } => plugins::grant(&names, all, yes, &at),
            PluginsCommand::Revoke { names, at } => plugins::revoke(&names, &at),
            PluginsCommand::New {
                name,
                kind,
                lang,
                dir,
            } => plugins::new(&name, &kind, &lang, &dir),
        },
    }
}

/// `metaclaude registry check`: every problem, or ok (or, `normalized`, the registry as
/// the host reads it, as JSON).
fn registry_check(file: &Path, normalized: bool) -> anyhow::Result<ExitCode> {
    match Registry::load(file) {
        Ok(registry) if normalized => {
            outln!("{}", serde_json::to_string_pretty(&registry)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(registry) => {
            outln!("{}", render::registry_ok(file, registry.scripts.len()))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// What the host says while it starts and runs, on stderr.
fn stderr_notices() -> Notices {
    Arc::new(|notice: &HostNotice<'_>| match notice {
        HostNotice::PluginNotLoaded(e) => eprintln!("warning: {e}"),
        HostNotice::PluginsChanged(report) => {
            for (what, names) in [
                ("added", &report.added),
                ("reloaded", &report.changed),
                ("removed", &report.removed),
                ("stopped: its grant was revoked", &report.revoked),
            ] {
                for name in names {
                    eprintln!("metaclaude: plugin {name} {what}");
                }
            }
            for e in &report.errors {
                eprintln!("warning: {e}");
            }
        }
    })
}

/// A host that could not be assembled: a bad registry is shown with its problems and a
/// hint (exit 2); anything else is an error.
fn host_failed(e: HostError, registry: &Path) -> anyhow::Result<ExitCode> {
    match e {
        HostError::Registry(e) => {
            eprintln!("{e}");
            eprintln!(
                "hint: check it with `metaclaude registry check {}`",
                registry.display()
            );
            Ok(ExitCode::from(EXIT_USAGE))
        }
        // Each message names its cause already: printed once (the error chain would repeat
        // the cause after it, twice for a plugins directory that cannot be read).
        other => {
            eprintln!("error: {other}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// The async runtime of a one-shot `run`: the calling thread alone drives its one
/// execution (plugins have threads of their own), with no worker threads to start.
fn one_execution_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The async runtime the executor runs on.
fn async_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // The server's blocking work (log and history queries, /metrics renders, plugin
        // reloads) gets at most this many threads; more waits its turn. Without a cap the
        // pool grows with the busiest moment (up to 512) and stays while work keeps
        // coming (the soak saw 21 to 35).
        .max_blocking_threads(16)
        // An idle one goes after 3 s (tokio's default: 10 s), its stack with it.
        .thread_keep_alive(std::time::Duration::from_secs(3))
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
