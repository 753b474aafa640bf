//! `metaclaude metrics`: from a running server and from the execution log, which must
//! agree on the same executions (the log is replayed through the code the server runs).

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::log_sink::write_log_sink;
use crate::serve::Server;
use crate::util::{bin, example_registry, succeed};

/// The report figures that do not depend on when they are asked.
fn comparable(r: &Value) -> Value {
    let w = &r["window"];
    serde_json::json!({
        "period": r["period_minutes"],
        "since_start": r["since_start"],
        "overall": w["overall"],
        "top_scripts": w["top_scripts"],
        "top_specialists": w["top_specialists"],
        "oldest_held": w["oldest_held"],
        "complete": w["complete"],
        "percentiles": r["percentiles"]["duration_seconds"]["start"],
        "memory": r["percentiles"]["peak_memory_mb"]["start"],
    })
}

/// `metaclaude metrics --report --json --period 60` from `source` (`--server URL` or
/// `--log`), the log in `logs`.
fn report_json(logs: &std::path::Path, source: &[&str]) -> Value {
    let out = succeed(
        bin()
            .env("METACLAUDE_LOG_DIR", logs)
            .args(["metrics", "--report", "--json", "--period", "60"])
            .args(source),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_report_from_the_server_and_from_its_log_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let logs = tmp.path().join("logs");
    write_log_sink(&plugins, &logs, "", "");
    let server = Server::start(&example_registry(), &["--plugins"], |cmd| {
        cmd.arg(&plugins);
    });
    for script in [
        "hello", "hello", "failing", "flaky", "slow", "helo", "hello",
    ] {
        server.run(script);
    }
    let from = |source: &[&str]| report_json(&logs, source);
    let live = from(&["--server", &server.http]);
    let (status, stderr) = server.stop();
    assert!(status.success(), "{stderr}");
    let replayed = from(&["--log"]);
    assert_eq!(live["window"]["overall"]["count"], 7, "{live}");
    assert_eq!(comparable(&live), comparable(&replayed));
    assert_eq!(
        live["window"]["overall"]["failures_by_category"]["TIMEOUT"],
        1
    );

    // The text form, of the same figures.
    let out = succeed(
        bin()
            .env("METACLAUDE_LOG_DIR", &logs)
            .args(["metrics", "--report", "--log"]),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Executions (last 60 min, from the execution log in"),
        "{text}"
    );
    assert!(
        text.contains("Failures:       EXECUTION 1, TIMEOUT 1, VALIDATION 1"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("hello") && l.contains(" 3 runs")),
        "{text}"
    );
}

#[test]
fn current_redraws_a_summary_until_interrupted() {
    let server = Server::start(&example_registry(), &["--no-plugins"], |_| {});
    server.run("hello");
    let mut current = bin()
        .args([
            "metrics",
            "--current",
            "--interval",
            "1",
            "--server",
            &server.http,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(current.stdout.take().unwrap()).lines();
    let mut blocks = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while blocks < 2 {
        let line = lines.next().expect("a line").unwrap();
        assert!(
            !line.contains('\x1b'),
            "no escape codes in a pipe: {line:?}"
        );
        if line.starts_with("Executions (last 60 min, from server") {
            assert!(line.contains(": 1 "), "{line}");
            blocks += 1;
        }
        assert!(std::time::Instant::now() < deadline, "no second refresh");
    }
    crate::serve::signal(current.id() as i32, libc::SIGINT);
    let out = current.wait_with_output().unwrap();
    // Ended by the SIGINT itself (the default action, as for any command-line tool), not
    // by a panic (exit 101) or another signal; and it had nothing to complain about.
    assert_eq!(
        (out.status.code(), out.status.signal()),
        (None, Some(libc::SIGINT)),
        "{:?}",
        out.status
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn a_server_that_is_not_there_is_an_error_when_asked_for() {
    let out = bin()
        .args(["metrics", "--report", "--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the server at http://127.0.0.1:9"),
        "{stderr}"
    );
}

/// A server whose memory let go of the oldest executions (`--keep-recent`), or that started
/// after some ran, answers a long window with the log's part of it: the same figures as
/// the log replayed, and `complete`. Before, the window held only what memory did.
#[test]
fn a_long_window_counts_from_the_log_what_memory_does_not_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let logs = tmp.path().join("logs");
    write_log_sink(&plugins, &logs, "", "");
    let start = |keep: &str| {
        Server::start(
            &example_registry(),
            &["--keep-recent", keep, "--plugins"],
            |cmd| {
                cmd.arg(&plugins).env("METACLAUDE_LOG_DIR", &logs);
            },
        )
    };
    // Executions before the server started: in the log only.
    let before = start("100");
    for script in ["hello", "failing", "hello"] {
        before.run(script);
    }
    let (status, stderr) = before.stop();
    assert!(status.success(), "{stderr}");
    // Then more than memory keeps.
    let server = start("2");
    for script in ["hello", "flaky", "failing", "hello", "helo"] {
        server.run(script);
    }
    // Every execution's line is in the log (the sink writes in batches); the log's own
    // files only (the server keeps its silences and schedules beside them).
    let lines = || -> usize {
        std::fs::read_dir(&logs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("executions"))
            })
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|text| text.lines().count())
            .sum()
    };
    crate::util::wait_until(
        "8 lines in the log",
        Duration::from_secs(30),
        || lines() == 8,
        || format!("{} lines", lines()),
    );
    let from = |source: &[&str]| report_json(&logs, source);
    let live = from(&["--server", &server.http]);
    let window = &live["window"];
    assert_eq!(window["overall"]["count"], 8, "{live}");
    assert_eq!(window["complete"], true, "{live}");
    let hello = crate::serve::get(&server.url("/api/v1/stats?period=60&script=hello")).json();
    assert_eq!(hello["window"]["overall"]["count"], 4, "{hello}");
    assert_eq!(hello["window"]["complete"], true, "{hello}");
    let (status, stderr) = server.stop();
    assert!(status.success(), "{stderr}");
    let replayed = from(&["--log"]);
    let same = |r: &Value| {
        let w = &r["window"];
        serde_json::json!([w["overall"], w["top_scripts"], w["top_specialists"]])
    };
    assert_eq!(same(&live), same(&replayed));
}
