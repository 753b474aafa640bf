//! `metaclaude metrics`: the seed's `--prometheus` (the text format 0.0.4; `--openmetrics`
//! the other), `--report --period N [--json]` and `--current`, from a running server or, when none answers, from the execution log
//! replayed through the same code (`metaclaude::replay`), so the two agree.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use metaclaude::client::{self, get, DEFAULT_SERVER};
use metaclaude::plugin::{resolve_grants, resolve_plugins_dir};
use metaclaude_formats::prometheus::{Format, OPENMETRICS_CONTENT_TYPE};
use serde_json::Value;

use super::args::MetricsArgs;
use super::render;

/// Where the figures come from.
enum Source {
    Server { url: String, token: Option<String> },
    Log,
}

pub fn metrics(args: MetricsArgs) -> anyhow::Result<ExitCode> {
    let source = source(&args)?;
    if args.prometheus || args.openmetrics {
        let format = if args.openmetrics {
            Format::OpenMetrics
        } else {
            Format::Text
        };
        let text = match &source {
            Source::Server { url, token } => {
                // A server answers a request without `Accept` in the text format.
                let accept = args.openmetrics.then_some(OPENMETRICS_CONTENT_TYPE);
                client::get_accepting(url, "/metrics", token.as_deref(), accept)?
            }
            Source::Log => {
                let plugins = resolve_plugins_dir(args.plugins.as_deref()).context(
                    "no plugins directory for the exporters: pass --plugins DIR or set METACLAUDE_PLUGIN_DIR",
                )?;
                // The whole log: counters count since the first execution.
                metaclaude::replay::exporters_text(
                    &args.log_dir,
                    &plugins,
                    &resolve_grants(args.grants.as_deref()),
                    None,
                    format,
                    &super::logs::print_read_notice,
                )?
            }
        };
        out!("{text}")?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.current {
        return current(&args, &source);
    }
    let report = report(&args, &source, args.period)?;
    if args.json {
        outln!("{report}")?;
    } else {
        outln!("{}", render::report(&report, &where_from(&source, &args)))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The server asked for, the default one when it answers, else the log.
fn source(args: &MetricsArgs) -> anyhow::Result<Source> {
    if args.log {
        return Ok(Source::Log);
    }
    let token = client::read_token(args.token_file.as_deref())?;
    match &args.server {
        Some(url) => Ok(Source::Server {
            url: url.trim_end_matches('/').to_string(),
            token,
        }),
        None => Ok(if client::answers(DEFAULT_SERVER) {
            Source::Server {
                url: DEFAULT_SERVER.to_string(),
                token,
            }
        } else {
            Source::Log
        }),
    }
}

fn where_from(source: &Source, args: &MetricsArgs) -> String {
    match source {
        Source::Server { url, .. } => format!("server {url}"),
        Source::Log => format!("the execution log in {}", args.log_dir.display()),
    }
}

/// The report as JSON, the shape of `GET /api/v1/stats`.
fn report(args: &MetricsArgs, source: &Source, period: u64) -> anyhow::Result<Value> {
    match source {
        Source::Server { url, token } => {
            let text = get(
                url,
                &format!("/api/v1/stats?period={period}&top={}", args.top),
                token.as_deref(),
            )?;
            serde_json::from_str(&text).context("the server's stats are not JSON")
        }
        Source::Log => {
            let report = metaclaude::replay::report(
                &args.log_dir,
                period,
                args.top as usize,
                Utc::now(),
                true,
                &super::logs::print_read_notice,
            )?;
            Ok(serde_json::to_value(report)?)
        }
    }
}

/// Redraws the report of the last --period minutes every --interval seconds.
fn current(args: &MetricsArgs, source: &Source) -> anyhow::Result<ExitCode> {
    let tty = std::io::stdout().is_terminal();
    loop {
        let text = match report(args, source, args.period) {
            Ok(r) if args.json => r.to_string(),
            Ok(r) => render::report(&r, &where_from(source, args)),
            Err(e) => format!("error: {e:#} (retrying)"),
        };
        let mut out = std::io::stdout().lock();
        if tty {
            // Home and clear, then the screen.
            write!(out, "\x1b[H\x1b[2J")?;
        }
        writeln!(out, "{text}")?;
        if !tty {
            writeln!(out)?;
        }
        out.flush()?;
        std::thread::sleep(Duration::from_secs(args.interval));
    }
}
