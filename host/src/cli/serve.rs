//! `metaclaude serve` and `metaclaude dashboard`: the long-running host (the dashboard is
//! the same server, announced by the page's address).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use metaclaude::alerting::InhibitRules;
use metaclaude::app::{HostConfig, MonitoredHost, PLUGIN_POLL};
use metaclaude::monitor::Limits;
use metaclaude::serve::{self, Bound, ServeConfig, ServeNotice};

use super::args::ServeArgs;
use super::EXIT_USAGE;

/// The shortest token taken: guessing it must be hopeless.
const MIN_TOKEN_LEN: usize = 16;

/// What the command is for: it decides what is announced first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Api,
    Dashboard,
}

pub fn serve(args: ServeArgs, mode: Mode) -> anyhow::Result<ExitCode> {
    let token = match &args.token_file {
        Some(file) => Some(read_token(file)?),
        None => None,
    };
    let config = ServeConfig {
        bind: args.bind,
        http_port: args.http_port,
        ws_port: (!args.no_ws_port).then_some(args.ws_port),
        token,
        allow_hosts: args.allow_hosts.clone(),
        queue: args.queue,
        max_body_bytes: args.max_body_bytes,
        max_connections: args.max_connections,
        max_connections_per_peer: args.max_connections_per_peer,
        max_ws_clients: args.max_ws_clients,
        ws_send_timeout: Duration::from_secs(args.ws_send_timeout),
        grace: Duration::from_secs(args.grace),
        log_dir: args.log_dir.clone(),
        ..ServeConfig::default()
    };
    let addr = std::net::SocketAddr::new(config.bind, config.http_port);
    if serve::needs_token(addr) && config.token.is_none() {
        eprintln!("error: {}", serve::ServeError::TokenRequired { addr });
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let inhibit = match args.inhibit_rules.as_deref().map(InhibitRules::load) {
        None => None,
        Some(Ok(rules)) => Some(rules),
        Some(Err(e)) => {
            eprintln!("{e}");
            eprintln!(
                "hint: `metaclaude alerts check-rules FILE` checks it without starting a server"
            );
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let host_config = HostConfig {
        executor: args.host.executor(args.concurrency),
        plugins: args.host.plugin_source(),
        grants: args.host.grant_source(),
        watch_plugins: Some(PLUGIN_POLL),
        monitor: Limits {
            recent: args.keep_recent as usize,
            ..Limits::default()
        },
        // `--log-dir` is the log's directory for everything: the server's reads, the
        // log sink's `${METACLAUDE_LOG_DIR}`, the alert history and the script watch.
        env: vec![(
            "METACLAUDE_LOG_DIR".to_string(),
            args.log_dir.display().to_string(),
        )],
        ..HostConfig::new(&args.registry)
    };
    let host = match MonitoredHost::start(host_config, Vec::new(), super::stderr_notices()) {
        Ok(host) => host,
        Err(e) => return super::host_failed(e, &args.registry),
    };
    if let (Some(rules), Some(plugins)) = (inhibit, host.plugins()) {
        plugins.set_inhibit_rules(rules);
    }
    let runtime = super::async_runtime()?;
    let token_hint = args.token_file.is_some();
    let served = runtime.block_on(serve::run(
        config,
        host,
        args.registry.clone(),
        |bound| announce(bound, token_hint, mode),
        std::sync::Arc::new(print_notice),
    ));
    match served {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.is_usage() => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
        Err(e) => Err(e.into()),
    }
}

/// What the server tells its operator, on stderr; a second stop signal ends the program
/// at once (status 130).
fn print_notice(notice: ServeNotice) {
    match notice {
        ServeNotice::LogRead(read) => eprintln!("{read}"),
        ServeNotice::SecondSignal => {
            eprintln!("metaclaude: {notice}");
            std::process::exit(130);
        }
        other => eprintln!("metaclaude: {other}"),
    }
}

/// Where to reach the server, on stdout (a script may read the first line).
fn announce(bound: Bound, token: bool, mode: Mode) {
    let mut out = std::io::stdout().lock();
    let page = format!(
        "http://{}/{}",
        bound.http,
        if token { "?token=<token>" } else { "" }
    );
    let feed = format!(
        "ws://{}/ws{}",
        bound.http,
        bound
            .ws
            .map(|ws| format!(" and ws://{ws}/ws"))
            .unwrap_or_default()
    );
    let _ = match mode {
        Mode::Api => writeln!(
            out,
            "metaclaude serve: listening on http://{} (API /api/v1, metrics /metrics, dashboard /, live feed {feed})",
            bound.http,
        ),
        Mode::Dashboard => writeln!(
            out,
            "metaclaude dashboard: open {page} (live feed {feed}, API /api/v1, metrics /metrics)",
        ),
    };
    if token {
        let _ = writeln!(
            out,
            "  a token is needed: API clients send `Authorization: Bearer <token>`; a browser opens http://{}/?token=<token> once (the token is then kept in a cookie)",
            bound.http
        );
    }
    let _ = out.flush();
}

/// The token in `file`: its first line, trimmed; refused when the file is open to its
/// group or to others (as ssh refuses such a key), or when the token is too short to be
/// safe.
fn read_token(file: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file)
        .with_context(|| format!("cannot read the token file {}", file.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "the token file {} has mode {:04o}: its group or others may read or change it, and with it drive this server. \
             Make it yours alone: chmod 600 {}",
            file.display(),
            mode & 0o7777,
            file.display()
        );
    }
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the token file {}", file.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.len() < MIN_TOKEN_LEN {
        bail!(
            "the token in {} is too short ({} characters; at least {MIN_TOKEN_LEN}): make one with \
             (umask 077; head -c 32 /dev/urandom | base64 > {})",
            file.display(),
            token.len(),
            file.display()
        );
    }
    Ok(token)
}
