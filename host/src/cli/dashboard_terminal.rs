//! `metaclaude dashboard-terminal`: the terminal dashboard (`metaclaude::tui` lives in the
//! binary's `tui` module), from the server asked for, the default one when it answers,
//! else the execution log; interactive on a terminal, plain text otherwise.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use metaclaude::client::{self, DEFAULT_SERVER};

use super::args::DashboardTerminalArgs;
use super::logs::print_read_notice;
use crate::tui::source::ServerSource;
use crate::tui::{Callbacks, Source};

pub fn dashboard_terminal(args: DashboardTerminalArgs) -> anyhow::Result<ExitCode> {
    let interval = Duration::from_secs(args.interval);
    let source = source(&args, interval)?;
    if args.once || args.text || !std::io::stdout().is_terminal() {
        let mut out = std::io::stdout().lock();
        crate::tui::text(&source, interval, args.once, &mut out, print_read_notice)?;
    } else {
        crate::tui::interactive(
            &source,
            Callbacks {
                read_notice: print_read_notice,
                // Nothing is left to restore or to show: status 129, as SIGHUP would give.
                on_hangup: || std::process::exit(129),
            },
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The server asked for (followed even while it does not answer), the default one when it
/// answers now, else the log.
fn source(args: &DashboardTerminalArgs, interval: Duration) -> anyhow::Result<Source> {
    if args.log {
        return Ok(Source::Log(args.log_dir.clone()));
    }
    let token = client::read_token(args.server.token_file.as_deref())?;
    let url = match &args.server.server {
        Some(url) => url.trim_end_matches('/').to_string(),
        None if client::answers(DEFAULT_SERVER) => DEFAULT_SERVER.to_string(),
        None => return Ok(Source::Log(args.log_dir.clone())),
    };
    crate::tui::source::feed_address(&url)?;
    Ok(Source::Server(ServerSource {
        url,
        token,
        interval,
    }))
}
