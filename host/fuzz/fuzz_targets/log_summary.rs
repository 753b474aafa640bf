//! A rotated file's summary (`metaclaude_formats::log_summary::read_summary`), read from a
//! directory plugins write: the input is the summary beside a small plain rotated file (the
//! seed is that file's true summary, so mutations reach past the CRC checks). Reading it
//! for every dimension, and `metaclaude logs --stats` with every grouping and with a
//! filter it splits by, must return normally: a summary that is damaged or does not hang
//! together is refused (the file read instead), never a panic or an overflow.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use metaclaude::logs::stats::GroupBy;
use metaclaude::logs::{execute, LogQuery};
use metaclaude_formats::log_summary::{read_summary, Dimension};

/// The rotated file the summary stands beside (the seed's file).
const ROTATED: &str = "executions-2024-01-15T12-00-00.000000Z.jsonl";
const LINES: &str = concat!(
    r#"{"timestamp":"2024-01-15T10:30:45.123456Z","event":"finished","success":true,"script_id":"a","user":"ann","retries":1,"resource_usage":{"wall_time_seconds":2.0,"peak_memory_mb":10.0,"cpu_time_seconds":1.0}}"#,
    "\n",
    r#"{"timestamp":"2024-01-15T11:00:00.000001Z","event":"finished","success":false,"category":"TIMEOUT","script_id":"b","specialist":"ops","resource_usage":{"wall_time_seconds":4.0,"peak_memory_mb":30.0,"cpu_time_seconds":0.5}}"#,
    "\n"
);

fn log_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join(ROTATED), LINES).unwrap();
        dir
    })
    .path()
}

fuzz_target!(|data: &[u8]| {
    let _ = read_summary(data, &[]);
    let _ = read_summary(data, &Dimension::ALL);
    let dir = log_dir();
    std::fs::write(dir.join(format!("{ROTATED}.summary")), data).unwrap();
    let base = LogQuery {
        log_dir: dir.to_path_buf(),
        stats: true,
        json: true,
        ..LogQuery::default()
    };
    let grouped: Vec<LogQuery> = GroupBy::all()
        .iter()
        .map(|g| LogQuery {
            group_by: Some(*g),
            ..base.clone()
        })
        .collect();
    let filtered = LogQuery {
        script: Some("a".into()),
        group_by: Some(GroupBy::Script),
        ..base.clone()
    };
    for query in [base.clone(), filtered].iter().chain(&grouped) {
        let mut out = Vec::new();
        execute(query, &mut out, &|_| {}).expect("the log directory exists");
        let _: serde_json::Value = serde_json::from_slice(&out).expect("the report is JSON");
    }
});
