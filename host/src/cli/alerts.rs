//! `metaclaude alerts`: active alerts (a running server, else the alert history), the
//! history, the alert rules' thresholds on a running server, silences (on a running
//! server, else in the log directory's `silences.json`) and the inhibition rules' check.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use metaclaude::alerting::history::{self, HistoryQuery};
use metaclaude::alerting::matchers::{Matcher, MatcherSpec};
use metaclaude::alerting::silences::{NewSilence, Silence, SilenceState, SilenceStore};
use metaclaude::alerting::InhibitRules;
use metaclaude::client::{self, DEFAULT_SERVER};
use metaclaude::logs::dates;
use metaclaude::model::{Alert, AlertStatus, Severity};
use serde_json::{json, Value};

use super::args::{AlertsCommand, ServerArgs};
use super::{render, EXIT_USAGE};

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
            )?;
            Ok(ExitCode::SUCCESS)
        }
        AlertsCommand::Silence {
            matchers,
            duration,
            until,
            starts,
            author,
            comment,
            server,
            log_dir,
            json,
        } => {
            let mut specs = Vec::new();
            for m in &matchers {
                match Matcher::parse(m) {
                    Ok(m) => specs.push(MatcherSpec::from(m)),
                    Err(e) => return usage(&format!("--matcher: {e}")),
                }
            }
            let now = Utc::now();
            let starts_at = match starts.as_deref().map(|s| rfc3339(s, "--starts")) {
                None => None,
                Some(Ok(t)) => Some(t),
                Some(Err(e)) => return usage(&e),
            };
            let ends_at = match (duration, until) {
                (Some(d), _) => match dates::parse_since(&d) {
                    Ok(age) => starts_at.unwrap_or(now).max(now) + age,
                    Err(e) => {
                        return usage(&format!(
                            "--duration {d:?}: {e} (an age such as 90s, 15m, 2h, 1d, 1w)"
                        ))
                    }
                },
                (None, Some(u)) => match rfc3339(&u, "--until") {
                    Ok(t) => t,
                    Err(e) => return usage(&e),
                },
                (None, None) => return usage("--duration or --until: how long it mutes"),
            };
            let new = NewSilence {
                matchers: specs,
                starts_at,
                ends_at,
                created_by: author
                    .filter(|a| !a.trim().is_empty())
                    .or_else(login_name)
                    .unwrap_or_default(),
                comment,
            };
            silence(&server, &log_dir, new, json)
        }
        AlertsCommand::Unsilence {
            id,
            server,
            log_dir,
        } => unsilence(&server, &log_dir, &id),
        AlertsCommand::Silences {
            all,
            server,
            log_dir,
            json,
        } => list_silences(&server, &log_dir, all, json),
        AlertsCommand::CheckRules { file } => match InhibitRules::load(&file) {
            Ok(rules) => {
                outln!(
                    "{}: ok, {} rule(s), {} maintenance window(s); the built-in rule (a critical alert inhibits the warnings of the same labels) is {}",
                    file.display(),
                    rules.rules.len(),
                    rules.windows.len(),
                    if rules.critical_inhibits_warning { "on" } else { "off" }
                )?;
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(EXIT_USAGE))
            }
        },
        AlertsCommand::Thresholds { server, json } => {
            let (url, token) = target(&server)?;
            let body = client::get(&url, "/api/v1/alerts/thresholds", token.as_deref())?;
            let v: Value =
                serde_json::from_str(&body).context("the server's answer is not JSON")?;
            if json {
                outln!("{v}")?;
            } else {
                out!("{}", render::thresholds(&v))?;
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
                outln!(
                    "{}: {}",
                    render::terminal_safe(c["plugin"].as_str().unwrap_or("?")),
                    render::terminal_safe(c["change"].as_str().unwrap_or("?"))
                )?;
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
        print_alerts(&alerts, json, &format!("server {url}"))?;
    } else {
        let answer = history::last_firing(log_dir)?;
        warn_damaged(&answer.damaged);
        let from = format!(
            "the alert history in {} (no server answered at {url}: alerts last seen firing)",
            log_dir.display()
        );
        print_alerts(&answer.alerts, json, &from)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_alerts(alerts: &[Alert], json: bool, from: &str) -> anyhow::Result<()> {
    if json {
        for a in alerts {
            outln!("{}", serde_json::to_string(a).expect("alerts serialise"))?;
        }
        Ok(())
    } else {
        out!("{}", render::alerts(alerts, from))
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

fn usage(message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(EXIT_USAGE))
}

fn rfc3339(s: &str, flag: &str) -> Result<chrono::DateTime<Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{flag} {s:?}: {e} (RFC 3339, e.g. 2030-01-01T08:00:00Z)"))
}

/// Where silences are made and listed: a running server (asked for, or answering at the
/// default address), else the log directory's store.
enum SilencesAt {
    Server(String, Option<String>),
    Dir(std::sync::Arc<SilenceStore>, String),
}

fn silences_at(server: &ServerArgs, log_dir: &Path) -> anyhow::Result<SilencesAt> {
    let (url, token) = target(server)?;
    if server.server.is_some() || client::answers(&url) {
        return Ok(SilencesAt::Server(url, token));
    }
    let store = SilenceStore::open(log_dir)?;
    let note = format!(
        "in {} (no server answered at {url}: a server started later reads it, one running on that log directory within a minute)",
        store.path().display()
    );
    Ok(SilencesAt::Dir(store, note))
}

/// A silence as the API shows it (its state, and `muting` when a server counted).
fn shown(s: &Silence, state: SilenceState) -> Value {
    let mut v = serde_json::to_value(s).expect("silences serialise");
    v["state"] = state.as_str().into();
    v
}

fn silence(
    server: &ServerArgs,
    log_dir: &Path,
    new: NewSilence,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (made, at) = match silences_at(server, log_dir)? {
        SilencesAt::Server(url, token) => {
            let mut body = json!({
                "matchers": new.matchers,
                "ends_at": metaclaude::model::timestamp::format(&new.ends_at),
                "created_by": new.created_by,
                "comment": new.comment,
            });
            if let Some(t) = new.starts_at {
                body["starts_at"] = metaclaude::model::timestamp::format(&t).into();
            }
            let answer = client::post_json(&url, "/api/v1/silences", token.as_deref(), &body)?;
            let v: Value =
                serde_json::from_str(&answer).context("the server's answer is not JSON")?;
            (v["silence"].clone(), format!("on server {url}"))
        }
        SilencesAt::Dir(store, note) => match store.add(new, Utc::now()) {
            Ok(s) => (shown(&s, s.state(Utc::now())), note),
            Err(e) if e.is_caller_error() => return usage(&e.to_string()),
            Err(e) => return Err(e.into()),
        },
    };
    if json {
        outln!("{made}")?;
    } else {
        outln!(
            "silence {} made {at}:\n{}",
            render::terminal_safe(made["id"].as_str().unwrap_or("?")),
            silence_line(&made)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn unsilence(server: &ServerArgs, log_dir: &Path, id: &str) -> anyhow::Result<ExitCode> {
    let (ended, at) = match silences_at(server, log_dir)? {
        SilencesAt::Server(url, token) => {
            let path = format!("/api/v1/silences/{}", path_segment(id));
            let answer = client::delete(&url, &path, token.as_deref())?;
            let v: Value =
                serde_json::from_str(&answer).context("the server's answer is not JSON")?;
            (v["silence"].clone(), format!("on server {url}"))
        }
        SilencesAt::Dir(store, note) => match store.expire(id, Utc::now()) {
            Ok(s) => (shown(&s, SilenceState::Expired), note),
            Err(e) if e.is_caller_error() => return usage(&e.to_string()),
            Err(e) => return Err(e.into()),
        },
    };
    outln!(
        "silence {} expired {at}; what it muted and still fires is notified again",
        render::terminal_safe(ended["id"].as_str().unwrap_or("?"))
    )?;
    Ok(ExitCode::SUCCESS)
}

fn list_silences(
    server: &ServerArgs,
    log_dir: &Path,
    all: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (list, from): (Vec<Value>, String) = match silences_at(server, log_dir)? {
        SilencesAt::Server(url, token) => {
            let path = format!("/api/v1/silences?all={all}");
            let answer = client::get(&url, &path, token.as_deref())?;
            let v: Value =
                serde_json::from_str(&answer).context("the server's answer is not JSON")?;
            let list = v["silences"].as_array().cloned().unwrap_or_default();
            (list, format!("on server {url}"))
        }
        SilencesAt::Dir(store, note) => {
            let now = Utc::now();
            let list = store
                .snapshot()
                .list(now, all)
                .iter()
                .map(|(s, st)| shown(s, *st))
                .collect();
            (list, note)
        }
    };
    if json {
        outln!("{}", json!({ "silences": list }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        outln!(
            "no silences{} ({from})",
            if all { "" } else { " active or pending" }
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{} silence(s), {from}:", list.len())?;
    for s in &list {
        outln!(
            "  {} {}\n{}",
            render::terminal_safe(s["id"].as_str().unwrap_or("?")),
            s["state"].as_str().unwrap_or("?"),
            silence_line(s)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A silence for people: its matchers, its time, who and why.
fn silence_line(s: &Value) -> String {
    let matchers: Vec<String> = s["matchers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| serde_json::from_value::<Matcher>(m.clone()).ok())
        .map(|m| m.to_string())
        .collect();
    let muting = s["muting"]
        .as_u64()
        .map(|n| format!(", muting {n} alert(s) now"))
        .unwrap_or_default();
    format!(
        "    mutes {}\n    from {} to {}{muting}\n    by {}: {}",
        render::terminal_safe(&matchers.join(", ")),
        s["starts_at"].as_str().unwrap_or("?"),
        s["ends_at"].as_str().unwrap_or("?"),
        render::terminal_safe(s["created_by"].as_str().unwrap_or("?")),
        render::terminal_safe(s["comment"].as_str().unwrap_or(""))
    )
}

/// Who runs this process when `$USER` is not set (a service, a container): `$LOGNAME`,
/// else the name of the process's user in the user database.
fn login_name() -> Option<String> {
    if let Some(name) = std::env::var("LOGNAME")
        .ok()
        .filter(|n| !n.trim().is_empty())
    {
        return Some(name);
    }
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: zeroed `passwd` is a valid out-parameter; getpwuid_r writes the entry's
    // strings into `buf` (ours, of the length given) and `result` points at `pw` or is
    // null; the name is read before `buf` goes out of scope.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::getuid(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() || pw.pw_name.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pw.pw_name)
            .to_string_lossy()
            .into_owned();
        (!name.is_empty()).then_some(name)
    }
}
