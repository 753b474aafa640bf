//! The seed's query examples, typed as a user would, on a log written by the default log
//! sink during real runs.

use crate::util::{bin, example_registry};

#[test]
fn the_seeds_query_examples_work_on_a_real_log() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    // Exit 0 for a success, 1 for a failed execution (a timeout among them).
    for (script, user, code) in [
        ("hello", "ada", 0),
        ("failing", "ada", 1),
        ("slow", "bob", 1),
        ("hello", "bob", 0),
    ] {
        let out = bin()
            .env("METACLAUDE_LOG_DIR", &logs)
            .args(["run", script, "--user", user, "--registry"])
            .arg(example_registry())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let logs_cmd = |args: &[&str]| {
        let out = bin()
            .env("METACLAUDE_LOG_DIR", &logs)
            .arg("logs")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    let failed = logs_cmd(&["--failed", "--limit", "20"]);
    assert_eq!(
        failed.lines().count(),
        3,
        "header and two failures:\n{failed}"
    );
    assert!(
        failed.contains("TIMEOUT") && failed.contains("EXECUTION"),
        "{failed}"
    );

    let stats = logs_cmd(&["--stats", "--start-date", "2000-01-01 00:00:00"]);
    assert!(stats.contains("Executions:        4"), "{stats}");
    assert!(stats.contains("Failures:          2"), "{stats}");

    let json = logs_cmd(&["--json", "--specialist", "examples"]);
    let records: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 4);
    assert!(records.iter().all(|r| r["specialist"] == "examples"));

    let by_user = logs_cmd(&["--stats", "--group-by", "user", "--json"]);
    let report: serde_json::Value = serde_json::from_str(by_user.trim()).unwrap();
    let text = report.to_string();
    assert!(
        text.contains("\"ada\"") && text.contains("\"bob\""),
        "{text}"
    );
}
