//! What scripts are expected to do, end to end: `serve` with the default plugins and a
//! registry whose scripts have `expect` blocks. An attempt running past `max_duration`
//! raises `script_overdue` while it still runs (before its timeout) and resolves when it
//! ends; `failures_in_a_row` failures fire `script_failing` once, with the tail of the
//! last run's stderr, and the next success resolves it; the state is in `/metrics` and
//! `GET /api/v1/scripts`; runs of `metaclaude run` in other processes writing the same
//! execution log count, the server's own runs once; a real Alertmanager receives the new
//! alert types with their labels and the output tail as an annotation.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::alerts::{install, Alertmanager};
use crate::serve::{get, post, Server};
use crate::util::{bin, wait_until, write_registry};

const LIMIT: Duration = Duration::from_secs(60);

fn registry(dir: &Path) -> std::path::PathBuf {
    write_registry(
        dir,
        &[
            ("scripts/slow.sh", "#!/bin/sh\necho working\nsleep \"${2:-4}\"\n"),
            (
                // Exits with the code in the file `code` (0 when there is none).
                "scripts/toggle.sh",
                "#!/bin/sh\ncode=$(cat \"$(dirname \"$0\")/code\" 2>/dev/null || echo 0)\necho \"try with $code\"\n[ \"$code\" = 0 ] || echo \"disk full \u{1b}[31mred\" >&2\nexit \"$code\"\n",
            ),
        ],
        r#"{"scripts": [
            {"id": "slow", "path": "scripts/slow.sh", "timeout_ms": 30000, "specialist": "ops",
             "inputs": {"seconds": {"type": "integer", "default": 4}},
             "expect": {"max_duration": "1s"}},
            {"id": "toggle", "path": "scripts/toggle.sh", "max_retries": 0,
             "expect": {"failures_in_a_row": 3}}
        ]}"#,
    )
}

/// The active alerts of `server` of `kind` about `script`.
fn active(server: &Server, kind: &str, script: &str) -> Vec<Value> {
    let alerts = get(&server.url("/api/v1/alerts")).json();
    alerts["active"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == kind && a["labels"]["script"] == script)
        .cloned()
        .collect()
}

/// The history's lines of `kind` (newest first).
fn history(server: &Server, kind: &str) -> Vec<Value> {
    let h = get(&server.url(&format!("/api/v1/alerts/history?type={kind}"))).json();
    h["alerts"].as_array().unwrap().clone()
}

fn state_in_metrics(server: &Server, script: &str, state: &str) -> Option<f64> {
    let text = get(&server.url("/metrics")).body;
    let series = format!("metaclaude_script_state{{script=\"{script}\",");
    text.lines()
        .filter(|l| l.starts_with(&series) && l.contains(&format!("state=\"{state}\"}}")))
        .find_map(|l| l.rsplit_once(' ')?.1.parse().ok())
}

fn status(server: &Server, script: &str) -> Value {
    let scripts = get(&server.url("/api/v1/scripts")).json();
    scripts["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == script)
        .unwrap()["status"]
        .clone()
}

#[test]
fn an_overdue_run_fires_before_its_timeout_and_resolves_when_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&registry(dir.path()), &[], |_| {});
    let r = post(
        &server.url("/api/v1/executions?wait=false"),
        r#"{"script_id": "slow", "inputs": {"seconds": 4}}"#,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["execution_id"].as_str().unwrap().to_string();
    wait_until(
        "script_overdue fires",
        LIMIT,
        || !active(&server, "script_overdue", "slow").is_empty(),
        || get(&server.url("/api/v1/alerts")).body,
    );
    let execution = get(&server.url(&format!("/api/v1/executions/{id}"))).json();
    assert_eq!(
        execution["state"], "running",
        "the alert came while the run was still going: {execution}"
    );
    let alert = &active(&server, "script_overdue", "slow")[0];
    assert_eq!(alert["severity"], "warning");
    assert_eq!(alert["labels"]["specialist"], "ops");
    assert_eq!(alert["annotations"]["execution_id"], id.as_str(), "{alert}");
    assert_eq!(state_in_metrics(&server, "slow", "overdue"), Some(1.0));
    assert_eq!(status(&server, "slow")["state"], "overdue");
    wait_until(
        "script_overdue resolves once the run ends",
        LIMIT,
        || active(&server, "script_overdue", "slow").is_empty(),
        || get(&server.url("/api/v1/alerts")).body,
    );
    let done = get(&server.url(&format!("/api/v1/executions/{id}"))).json();
    assert_eq!(done["success"], true, "{done}");
    let lines = history(&server, "script_overdue");
    assert_eq!(
        lines
            .iter()
            .map(|a| a["status"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["resolved", "firing"],
        "{lines:?}"
    );
    assert_eq!(state_in_metrics(&server, "slow", "ok"), Some(1.0));
}

#[test]
fn failures_in_a_row_fire_once_with_the_output_and_resolve_on_the_next_success() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&registry(dir.path()), &[], |_| {});
    let code = dir.path().join("scripts/code");
    std::fs::write(&code, "5").unwrap();
    let mut third = String::new();
    for n in 1..=4 {
        let r = server.run("toggle");
        assert_eq!(r["success"], false, "{r}");
        if n == 3 {
            third = r["execution_id"].as_str().unwrap().to_string();
        }
        if n < 3 {
            assert!(
                active(&server, "script_failing", "toggle").is_empty(),
                "{n} failures are fewer than 3"
            );
            assert_eq!(status(&server, "toggle")["failures_in_a_row"], n);
        }
    }
    wait_until(
        "script_failing fires",
        LIMIT,
        || !active(&server, "script_failing", "toggle").is_empty(),
        || get(&server.url("/api/v1/alerts")).body,
    );
    let alert = &active(&server, "script_failing", "toggle")[0];
    assert_eq!(alert["severity"], "critical");
    let stderr = alert["annotations"]["stderr_tail"].as_str().unwrap();
    assert_eq!(
        stderr, "disk full \u{fffd}[31mred",
        "the last run's stderr, its escape made harmless: {alert}"
    );
    assert_eq!(alert["annotations"]["stdout_tail"], "try with 5");
    assert_eq!(
        alert["annotations"]["execution_id"],
        third.as_str(),
        "the run that made it fail"
    );
    assert_eq!(state_in_metrics(&server, "toggle", "failing"), Some(1.0));
    assert_eq!(state_in_metrics(&server, "toggle", "ok"), Some(0.0));

    std::fs::write(&code, "0").unwrap();
    assert_eq!(server.run("toggle")["success"], true);
    wait_until(
        "script_failing resolves on the success",
        LIMIT,
        || active(&server, "script_failing", "toggle").is_empty(),
        || get(&server.url("/api/v1/alerts")).body,
    );
    let lines = history(&server, "script_failing");
    let firing = lines.iter().filter(|a| a["status"] == "firing").count();
    assert_eq!(firing, 1, "fired once for four failures: {lines:?}");
    assert_eq!(lines[0]["status"], "resolved");
    let s = status(&server, "toggle");
    assert_eq!(
        (s["state"].as_str(), s["failures_in_a_row"].as_u64()),
        (Some("ok"), Some(0))
    );
    assert!(s["last_success"].is_string(), "{s}");
    let text = get(&server.url("/metrics")).body;
    assert!(
        text.contains("metaclaude_script_last_success_timestamp_seconds{script=\"toggle\""),
        "{text}"
    );
}

/// `metaclaude run` from cron or CI, one process a run, with the server's log directory:
/// the server follows the log, so three failures there make the script failing, and a
/// success there resolves it; the server's own run, which its log sink writes to the same
/// log, counts once.
#[test]
fn runs_of_other_processes_writing_the_same_log_count_and_the_servers_own_once() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let logs = dir.path().join("logs");
    let server = Server::start(&registry, &[], |c| {
        c.env("METACLAUDE_LOG_DIR", &logs);
    });
    let code = dir.path().join("scripts/code");
    std::fs::write(&code, "5").unwrap();
    let run_elsewhere = || {
        let out = bin()
            .args(["run", "toggle", "--registry"])
            .arg(&registry)
            .env("METACLAUDE_LOG_DIR", &logs)
            .output()
            .unwrap();
        assert!(!out.status.success() || std::fs::read_to_string(&code).unwrap() == "0");
    };
    let failures = || status(&server, "toggle")["failures_in_a_row"].as_u64();
    // The server's own failure, then one elsewhere: read in the log's order, so once the
    // second is counted the first has been read there too, and was not counted again.
    assert_eq!(server.run("toggle")["success"], false);
    assert_eq!(failures(), Some(1));
    run_elsewhere();
    wait_until(
        "the run elsewhere counted",
        LIMIT,
        || failures() == Some(2),
        || status(&server, "toggle").to_string(),
    );
    run_elsewhere();
    wait_until(
        "script_failing fires from the log",
        LIMIT,
        || !active(&server, "script_failing", "toggle").is_empty(),
        || status(&server, "toggle").to_string(),
    );
    assert_eq!(failures(), Some(3), "the server's own run counted once");
    let alert = &active(&server, "script_failing", "toggle")[0];
    assert_eq!(
        alert["annotations"]["stderr_tail"],
        "disk full \u{fffd}[31mred"
    );
    std::fs::write(&code, "0").unwrap();
    run_elsewhere();
    wait_until(
        "a success elsewhere resolves it",
        LIMIT,
        || active(&server, "script_failing", "toggle").is_empty(),
        || status(&server, "toggle").to_string(),
    );
    assert_eq!(status(&server, "toggle")["state"], "ok");
}

/// The alertmanager-notifier of the default set's kind hands a real Alertmanager the
/// script's alert: `alertname="script_failing"`, the `script`, `specialist` and
/// `severity` labels, the execution id and the stderr tail as annotations; resolved
/// there once the script succeeds.
#[test]
fn a_real_alertmanager_receives_a_scripts_alert_with_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let am = Alertmanager::start_with(
        "route:\n  receiver: nobody\n  group_wait: 1s\nreceivers:\n  - name: nobody\n",
        &["--cluster.listen-address=".into()],
    );
    let plugins = dir.path().join("plugins");
    install(&plugins, "alertmanager-notifier", |t| t);
    let registry = std::fs::read_to_string(registry(dir.path()))
        .unwrap()
        .replace(r#""failures_in_a_row": 3"#, r#""failures_in_a_row": 1"#);
    let registry_file = dir.path().join("registry.json");
    std::fs::write(&registry_file, registry).unwrap();
    let server = Server::start(
        &registry_file,
        &["--plugins", &plugins.to_string_lossy()],
        |c| {
            c.env("METACLAUDE_ALERTMANAGER_URL", &am.url);
        },
    );
    std::fs::write(dir.path().join("scripts/code"), "4").unwrap();
    assert_eq!(server.run("toggle")["success"], false);
    wait_until(
        "Alertmanager holds script_failing",
        LIMIT,
        || !am.alerts("script_failing").is_empty(),
        || am.log(),
    );
    let alert = &am.alerts("script_failing")[0];
    assert_eq!(alert["labels"]["script"], "toggle", "{alert}");
    assert_eq!(alert["labels"]["severity"], "critical", "{alert}");
    assert_eq!(alert["status"]["state"], "active", "{alert}");
    assert_eq!(
        alert["annotations"]["stderr_tail"], "disk full \u{fffd}[31mred",
        "{alert}"
    );
    assert!(alert["annotations"]["execution_id"].is_string(), "{alert}");
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("toggle"),
        "{alert}"
    );
    std::fs::write(dir.path().join("scripts/code"), "0").unwrap();
    assert_eq!(server.run("toggle")["success"], true);
    wait_until(
        "resolved in Alertmanager",
        LIMIT,
        || {
            am.alerts("script_failing").iter().all(|a| {
                a["endsAt"]
                    .as_str()
                    .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
                    .is_some_and(|e| e <= chrono::Utc::now())
            })
        },
        || format!("{:?}", am.alerts("script_failing")),
    );
}

/// A maintenance window open now (every minute, for two) mutes the script's alert: in
/// force, marked `maintenance:NAME`, not notified; the script is shown `silenced`.
#[test]
fn a_maintenance_window_mutes_a_scripts_alert() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[maintenance_windows]]\nname = \"always\"\nschedule = \"* * * * *\"\nduration = \"2m\"\nmatchers = [\"script=toggle\"]\n",
    )
    .unwrap();
    let server = Server::start(
        &registry(dir.path()),
        &["--inhibit-rules", &rules.to_string_lossy()],
        |_| {},
    );
    std::fs::write(dir.path().join("scripts/code"), "5").unwrap();
    for _ in 0..3 {
        assert_eq!(server.run("toggle")["success"], false);
    }
    wait_until(
        "script_failing in force",
        LIMIT,
        || !active(&server, "script_failing", "toggle").is_empty(),
        || get(&server.url("/api/v1/alerts")).body,
    );
    let alert = &active(&server, "script_failing", "toggle")[0];
    assert_eq!(
        alert["silenced_by"],
        serde_json::json!(["maintenance:always"]),
        "{alert}"
    );
    // The script is shown silenced, the state under the silence kept beside it.
    let s = status(&server, "toggle");
    assert_eq!(
        (s["state"].as_str(), s["silenced_state"].as_str()),
        (Some("silenced"), Some("failing")),
        "{s}"
    );
    assert_eq!(state_in_metrics(&server, "toggle", "silenced"), Some(1.0));
    assert_eq!(state_in_metrics(&server, "toggle", "failing"), Some(0.0));
}

/// Seen reviewing the silences: `serve --log-dir X` read its history and silences from X
/// while the log sink and the alert history wrote to `METACLAUDE_LOG_DIR`. The flag is now
/// the log's directory for all of them, and for the script watch that follows the log.
#[test]
fn log_dir_is_the_directory_of_the_log_the_history_and_the_silences() {
    let dir = tempfile::tempdir().unwrap();
    let chosen = dir.path().join("chosen");
    let server = Server::start(
        &registry(dir.path()),
        &["--log-dir", &chosen.to_string_lossy()],
        |_| {},
    );
    std::fs::write(dir.path().join("scripts/code"), "5").unwrap();
    for _ in 0..3 {
        assert_eq!(server.run("toggle")["success"], false);
    }
    wait_until(
        "the log sink's lines and the alert history in --log-dir",
        LIMIT,
        || chosen.join("executions.jsonl").is_file() && chosen.join("alerts.jsonl").is_file(),
        || format!("{:?}", std::fs::read_dir(&chosen).map(|d| d.count())),
    );
    let h = history(&server, "script_failing");
    assert_eq!(
        h.len(),
        1,
        "the history the API reads is the one written: {h:?}"
    );
}
