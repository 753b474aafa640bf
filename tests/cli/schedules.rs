//! Schedules end to end, through the real binary: `serve` runs a script every two seconds
//! by itself (as user `scheduler`), `metaclaude schedule list` shows it; a script longer
//! than its period under `overlap: skip` has its held slots counted missed (`overlap`);
//! a server killed with SIGKILL and started again on the same log directory reports the
//! slots that came while it was down (`host_down`) in the API, `/metrics` and on stderr,
//! and `script_missed` fires for them, then resolves with the next scheduled success; a
//! registry reload takes a schedule away.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::serve::{get, post, signal, Server};
use crate::util::{bin, wait_until, write_registry};

const LIMIT: Duration = Duration::from_secs(60);

const REGISTRY: &str = r#"{"scripts": [
    {"id": "tick", "path": "scripts/tick.sh", "timeout_ms": 2000, "max_retries": 0,
     "inputs": {"n": {"type": "integer", "required": true}},
     "run_schedule": {"cron": "*/2 * * * * *", "inputs": {"n": 7}}},
    {"id": "slow", "path": "scripts/slow.sh", "timeout_ms": 10000, "max_retries": 0,
     "run_schedule": {"cron": "*/2 * * * * *", "overlap": "skip"}}
]}"#;

fn registry(dir: &Path) -> std::path::PathBuf {
    write_registry(
        dir,
        &[
            ("scripts/tick.sh", "#!/bin/sh\necho \"tick $2\"\n"),
            ("scripts/slow.sh", "#!/bin/sh\nsleep 3\n"),
        ],
        REGISTRY,
    )
}

fn start(registry: &Path, logs: &Path) -> Server {
    let logs = logs.to_path_buf();
    Server::start(registry, &[], move |cmd| {
        cmd.env("METACLAUDE_LOG_DIR", &logs);
    })
}

/// `script`'s entry in `GET /api/v1/schedules`.
fn schedule(server: &Server, script: &str) -> Value {
    let all = get(&server.url("/api/v1/schedules")).json();
    all["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["script"] == script)
        .cloned()
        .unwrap_or(Value::Null)
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn metric(server: &Server, series: &str) -> Option<f64> {
    get(&server.url("/metrics"))
        .body
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// The alert history's lines of `script_missed` about `script`, newest first.
fn missed_history(server: &Server, script: &str) -> Vec<String> {
    let h = get(&server.url("/api/v1/alerts/history?type=script_missed")).json();
    h["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["script"] == script)
        .map(|a| a["status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_schedule_runs_and_a_killed_server_reports_the_slots_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let server = start(&registry, logs.path());

    wait_until(
        "tick runs on its schedule twice",
        LIMIT,
        || count(&schedule(&server, "tick")["runs"]["success"]) >= 2,
        || get(&server.url("/api/v1/schedules")).body,
    );
    let tick = schedule(&server, "tick");
    assert_eq!(tick["cron"], "*/2 * * * * *");
    assert_eq!(tick["overlap"], "skip");
    assert_eq!(tick["last_run"]["result"], "success", "{tick}");
    let id = tick["last_run"]["execution_id"].as_str().unwrap();
    let run = get(&server.url(&format!("/api/v1/executions/{id}"))).json();
    assert_eq!(run["user"], "scheduler", "{run}");
    assert_eq!(run["stdout"], "tick 7\n", "the schedule's inputs: {run}");
    assert!(
        run["correlation_id"]
            .as_str()
            .unwrap()
            .starts_with("schedule:tick@"),
        "{run}"
    );

    let out = bin()
        .args(["schedule", "list", "--server", &server.http])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let line = table
        .lines()
        .find(|l| l.starts_with("tick "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        line.contains("*/2 * * * * * (UTC)") && line.contains("success"),
        "{table}"
    );

    // slow sleeps 3 s: every other slot comes while it runs, and is skipped, counted.
    wait_until(
        "slow's held slots are counted missed (overlap)",
        LIMIT,
        || count(&schedule(&server, "slow")["missed"]["overlap"]) >= 1,
        || get(&server.url("/api/v1/schedules")).body,
    );
    assert_eq!(
        metric(
            &server,
            "metaclaude_schedule_missed_runs_total{script=\"slow\",reason=\"overlap\"}"
        )
        .map(|v| v >= 1.0),
        Some(true)
    );
    assert!(metric(
        &server,
        "metaclaude_schedule_next_run_timestamp_seconds{script=\"tick\"}"
    )
    .is_some());
    assert!(
        missed_history(&server, "tick").is_empty(),
        "tick ran on time"
    );

    // Killed: nothing is written at the end. Three slots at least pass before the start.
    signal(server.pid(), libc::SIGKILL);
    drop(server);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(logs.path().join("schedules.json")).unwrap())
            .unwrap();
    let last: DateTime<Utc> = saved["scripts"]["tick"]["last_slot"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    wait_until(
        "three slots pass while the server is down",
        LIMIT,
        || Utc::now() > last + chrono::Duration::seconds(7),
        || format!("last slot {last}"),
    );
    let server = start(&registry, logs.path());
    let host_down = count(&schedule(&server, "tick")["missed"]["host_down"]);
    assert!(
        host_down >= 3,
        "{}",
        get(&server.url("/api/v1/schedules")).body
    );
    assert_eq!(
        metric(
            &server,
            "metaclaude_schedule_missed_runs_total{script=\"tick\",reason=\"host_down\"}"
        ),
        Some(host_down as f64)
    );
    wait_until(
        "the operator is told",
        LIMIT,
        || {
            server.stderr().contains(&format!(
                "schedule of `tick`: {host_down} slots missed while the server was down"
            ))
        },
        || server.stderr(),
    );
    wait_until(
        "script_missed fires for the slots missed, then resolves with the next success",
        LIMIT,
        || missed_history(&server, "tick") == ["resolved", "firing"],
        || format!("{:?}", missed_history(&server, "tick")),
    );
    // The book counts a run when its execution has returned, which may be after the
    // plugins (and so the alert) saw it finish.
    wait_until(
        "the schedule counts tick's successful run",
        LIMIT,
        || count(&schedule(&server, "tick")["runs"]["success"]) >= 1,
        || get(&server.url("/api/v1/schedules")).body,
    );

    // A reload without tick's run_schedule stops scheduling it.
    std::fs::write(
        &registry,
        REGISTRY.replace(
            r#",
     "run_schedule": {"cron": "*/2 * * * * *", "inputs": {"n": 7}}"#,
            "",
        ),
    )
    .unwrap();
    let r = post(&server.url("/api/v1/reload"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(schedule(&server, "tick"), Value::Null);
    assert_ne!(schedule(&server, "slow"), Value::Null);
}
