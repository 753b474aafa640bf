//! `metaclaude alerts`: active alerts (a running server, else the alert history), the
//! history, and the alert rules' thresholds on a running server.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use metaclaude::alerting::history::{self, HistoryQuery};
use metaclaude::client::{self, DEFAULT_SERVER};
use metaclaude::logs::dates;
use metaclaude::model::{Alert, AlertStatus, Severity};
use serde_json::{json, Value};

use super::args::{AlertsCommand, ServerArgs};
use super::render;

pub fn alerts(command: AlertsCommand) -> anyhow::Result<ExitCode> {
    match command {
        AlertsCommand::Active {
            server,
            log_dir,
            json,
        } => active(&server, &log_dir, json),
        AlertsCommand::History {
            kind,
            severity,
            specialist,
            status,
            since,
            limit,
            log_dir,
            json,
        } => {
            let since = since
                .map(|s| {
                    dates::parse_since(&s).map(|age| {
                        Utc::now()
                            .checked_sub_signed(age)
                            .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC)
                    })
                })
                .transpose()
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            let query = HistoryQuery {
                kind,
                severity: severity.map(|s| match s.as_str() {
                    "critical" => Severity::Critical,
                    _ => Severity::Warning,
                }),
                specialist,
                status: status.map(|s| match s.as_str() {
                    "resolved" => AlertStatus::Resolved,
                    _ => AlertStatus::Firing,
                }),
                since,
                limit,
            };
            let answer = history::query(&log_dir, &query)?;
            warn_damaged(&answer.damaged);
            print_alerts(
                &answer.alerts,
                json,
                &format!("the alert history in {}", log_dir.display()),
            );
            Ok(ExitCode::SUCCESS)
        }
        AlertsCommand::Thresholds { server, json } => {
            let (url, token) = target(&server)?;
            let body = client::get(&url, "/api/v1/alerts/thresholds", token.as_deref())?;
            let v: Value =
                serde_json::from_str(&body).context("the server's answer is not JSON")?;
            if json {
                println!("{v}");
            } else {
                print!("{}", render::thresholds(&v));
            }
            Ok(ExitCode::SUCCESS)
        }
        AlertsCommand::SetThreshold {
            name,
            value,
            plugin,
            server,
        } => {
            let (url, token) = target(&server)?;
            let mut body = json!({ "value": value });
            if let Some(p) = plugin {
                body["plugin"] = p.into();
            }
            let path = format!("/api/v1/alerts/thresholds/{}", path_segment(&name));
            let answer = client::put_json(&url, &path, token.as_deref(), &body)?;
            let v: Value =
                serde_json::from_str(&answer).context("the server's answer is not JSON")?;
            for c in v["changed"].as_array().into_iter().flatten() {
                println!(
                    "{}: {}",
                    render::terminal_safe(c["plugin"].as_str().unwrap_or("?")),
                    render::terminal_safe(c["change"].as_str().unwrap_or("?"))
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The server asked for, else the default one.
pub(super) fn target(server: &ServerArgs) -> anyhow::Result<(String, Option<String>)> {
    let url = server
        .server
        .as_deref()
        .unwrap_or(DEFAULT_SERVER)
        .trim_end_matches('/')
        .to_string();
    Ok((url, client::read_token(server.token_file.as_deref())?))
}

fn active(server: &ServerArgs, log_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let (url, token) = target(server)?;
    if server.server.is_some() || client::answers(&url) {
        let body = client::get(&url, "/api/v1/alerts", token.as_deref())?;
        let v: Value = serde_json::from_str(&body).context("the server's answer is not JSON")?;
        let alerts: Vec<Alert> = serde_json::from_value(v["active"].clone())
            .context("the server's alerts are not alerts")?;
        print_alerts(&alerts, json, &format!("server {url}"));
    } else {
        let answer = history::last_firing(log_dir)?;
        warn_damaged(&answer.damaged);
        let from = format!(
            "the alert history in {} (no server answered at {url}: alerts last seen firing)",
            log_dir.display()
        );
        print_alerts(&answer.alerts, json, &from);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_alerts(alerts: &[Alert], json: bool, from: &str) {
    if json {
        for a in alerts {
            println!("{}", serde_json::to_string(a).expect("alerts serialise"));
        }
    } else {
        print!("{}", render::alerts(alerts, from));
    }
}

fn warn_damaged(damaged: &[String]) {
    for d in damaged.iter().take(5) {
        eprintln!("warning: skipped in the alert history: {d}");
    }
    if damaged.len() > 5 {
        eprintln!("warning: ... and {} more skipped", damaged.len() - 5);
    }
}

/// `name` as one URL path segment.
fn path_segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
