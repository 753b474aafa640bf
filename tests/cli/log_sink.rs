//! The log sink component (`plugins/log-sink`) under load, across rotations and days,
//! driven through the real plugin host.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use metaclaude::model::{ExecutionEvent, ExecutionResult};
use metaclaude::plugin::PluginHost;
use metaclaude::EventSink;
use metaclaude_formats::log_files::TIDIED_FILE;

use crate::plugins::write_plugin;

fn finished(id: String, at: DateTime<Utc>) -> ExecutionEvent {
    let mut r = ExecutionResult::new(id, "hello", at);
    r.specialist = Some("examples".into());
    r.success = true;
    r.exit_code = Some(0);
    r.stdout = "Hello, world!\n".into();
    ExecutionEvent::finished(r)
}

/// A log-sink plugin folder in `plugins` writing into `logs`, with `config` lines in its
/// `[config]` table and `tables` (more TOML tables) appended.
pub fn write_log_sink(plugins: &Path, logs: &Path, config: &str, tables: &str) {
    write_log_sink_limited(
        plugins,
        logs,
        config,
        "call_timeout_ms = 60000\nmemory_mb = 256",
        tables,
    );
}

/// [`write_log_sink`] with `limits` as the lines of its `[limits]` table.
fn write_log_sink_limited(plugins: &Path, logs: &Path, config: &str, limits: &str, tables: &str) {
    write_plugin(
        plugins,
        "log-sink",
        "log_sink.wasm",
        &format!(
            r#"name = "NAME"
version = "0.1.0"
kind = "sink"
component = "COMPONENT"
event_json = true
[config]
{config}
[capabilities]
dirs = [{{ host = "{}", guest = "/logs", mode = "rw", create = true }}]
[limits]
{limits}
{tables}
"#,
            logs.display()
        ),
    );
}

fn log_sink(plugins: &Path, logs: &Path, config: &str) -> Arc<PluginHost> {
    write_log_sink(plugins, logs, config, "");
    let mut host = PluginHost::new(Some(
        std::env::temp_dir().join("metaclaude-test-component-cache"),
    ))
    .unwrap();
    let errors = host.load_dir(plugins).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    Arc::new(host)
}

/// The names of the files in the log directory, sorted (the tidy marker left out).
fn file_names(logs: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(logs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != TIDIED_FILE)
        .collect();
    names.sort();
    names
}

/// Every line of every file in the log directory (rotated `.gz` files decompressed).
fn all_lines(logs: &Path) -> Vec<(PathBuf, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(logs)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != TIDIED_FILE)
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for f in files {
        let mut text = String::new();
        if f.extension().is_some_and(|e| e == "gz") {
            let gz = std::process::Command::new("gzip")
                .arg("-t")
                .arg(&f)
                .status()
                .unwrap();
            assert!(gz.success(), "gzip -t {}", f.display());
            flate2::read::MultiGzDecoder::new(std::fs::File::open(&f).unwrap())
                .read_to_string(&mut text)
                .unwrap();
        } else {
            std::fs::File::open(&f)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
        }
        lines.extend(text.lines().map(|l| (f.clone(), l.to_string())));
    }
    lines
}

#[test]
fn rotation_under_concurrent_load_loses_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let host = log_sink(
        &tmp.path().join("plugins"),
        &logs,
        "rotation_size_bytes = 262144",
    );
    let threads = 4;
    let per_thread = 25_000;
    let now = Utc::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let host = host.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    host.emit(&finished(format!("T{t}-{i:06}"), now));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    host.shutdown();
    let lines = all_lines(&logs);
    let rotated: HashSet<&PathBuf> = lines.iter().map(|(f, _)| f).collect();
    assert!(
        rotated.len() > 50,
        "expected many rotations, got {} files",
        rotated.len()
    );
    let mut ids = HashSet::new();
    for (file, line) in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line}", file.display()));
        assert!(
            ids.insert(v["execution_id"].as_str().unwrap().to_string()),
            "duplicate {}",
            v["execution_id"]
        );
    }
    assert_eq!(ids.len(), threads * per_thread, "none lost");
    // The names the sink wrote are the names the query reads (one definition of them:
    // metaclaude_formats::log_files).
    let out = crate::util::succeed(
        crate::util::bin()
            .args(["logs", "--stats", "--json", "--log-dir"])
            .arg(&logs),
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["overall"]["count"],
        (threads * per_thread) as u64,
        "metaclaude logs reads every file the sink wrote"
    );
    for (file, _) in &lines {
        let size = std::fs::metadata(file).unwrap().len();
        let name = file.file_name().unwrap().to_string_lossy();
        if name == "executions.jsonl" {
            assert!(size <= 262_144, "{name}: {size}");
        }
    }
}

#[test]
fn daily_rotation_follows_the_events_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let host = log_sink(&tmp.path().join("plugins"), &logs, "");
    let before = DateTime::parse_from_rfc3339("2026-11-24T23:59:58Z")
        .unwrap()
        .with_timezone(&Utc);
    host.emit(&finished("A".into(), before));
    host.flush();
    host.emit(&finished("B".into(), before + Duration::seconds(3)));
    host.shutdown();
    let names = file_names(&logs);
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[1], "executions.jsonl");
    // Named by the event's time (and the writer's tag); compressed only once it has been
    // left alone for the grace, since another host may still append to it.
    assert_eq!(
        metaclaude_formats::log_files::rotated_time(&names[0]),
        Some(before + Duration::seconds(3)),
        "{names:?}"
    );
    assert!(names[0].ends_with(".jsonl"), "{names:?}");
    let lines = all_lines(&logs);
    assert!(lines[0].1.contains("\"execution_id\":\"A\""));
    assert!(lines[1].1.contains("\"execution_id\":\"B\""));
}

#[test]
fn retention_deletes_rotated_files_by_the_age_in_their_names() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let old = (Utc::now() - Duration::days(40))
        .format("executions-%Y-%m-%dT%H-%M-%S%.6fZ.jsonl.gz")
        .to_string();
    let recent = (Utc::now() - Duration::days(2))
        .format("executions-%Y-%m-%dT%H-%M-%S%.6fZ.jsonl.gz")
        .to_string();
    for name in [&old, &recent] {
        std::fs::write(logs.join(name), b"").unwrap();
    }
    let host = log_sink(&tmp.path().join("plugins"), &logs, "retention_days = 30");
    host.shutdown();
    assert!(!logs.join(&old).exists(), "40 days old: deleted");
    assert!(logs.join(&recent).exists(), "2 days old: kept");
}

/// Scripts' outputs of 1 MiB each, finished in a burst: a call carries only what fits in
/// the plugin's memory (`limits.batch_max_mb`, an eighth of `memory_mb` by default), so a
/// full batch of them does not run the sink out of memory and lose the batch.
#[test]
fn a_burst_of_large_outputs_fits_the_sinks_memory_and_none_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let (plugins, logs) = (tmp.path().join("plugins"), tmp.path().join("logs"));
    write_log_sink_limited(
        &plugins,
        &logs,
        "",
        "memory_mb = 32\nbatch_max = 512\nbatch_ms = 1000",
        "",
    );
    let mut host = PluginHost::new(Some(
        std::env::temp_dir().join("metaclaude-test-component-cache"),
    ))
    .unwrap();
    assert!(host.load_dir(&plugins).unwrap().is_empty());
    let n: u64 = 40;
    let now = Utc::now();
    for i in 0..n {
        let mut e = finished(format!("BIG-{i:03}"), now);
        let r = std::sync::Arc::make_mut(e.result.as_mut().unwrap());
        r.stdout = format!("{i:03}").repeat(349_525) + "\n";
        r.stderr = "e".repeat(1 << 20);
        host.emit(&e);
    }
    host.flush();
    let info = &host.list()[0];
    assert_eq!(
        (info.delivered, info.dropped, info.failures),
        (n, 0, 0),
        "last error: {:?}",
        info.last_error
    );
    host.shutdown();
    let lines = all_lines(&logs);
    assert_eq!(lines.len(), n as usize);
    for (i, (_, line)) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["execution_id"], format!("BIG-{i:03}"));
        assert_eq!(v["stdout"].as_str().unwrap().len(), 1_048_576);
        assert_eq!(v["stderr"].as_str().unwrap().len(), 1 << 20);
    }
}

/// A line longer than 64 KiB (wasmtime-wasi's largest append) is appended whole to the
/// live file, as any other: the host's append stream takes 16 MiB a write, and the sink
/// asks it how much at its first line over 64 KiB. Before, each batch holding such a line went
/// into a file of its own and rotated the live file: a new file for every large output.
#[test]
fn lines_over_64_kib_are_appended_whole_to_the_live_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (plugins, logs) = (tmp.path().join("plugins"), tmp.path().join("logs"));
    let host = log_sink(&plugins, &logs, "");
    let now = Utc::now();
    for i in 0..6 {
        let mut e = finished(format!("LONG-{i}"), now);
        Arc::make_mut(e.result.as_mut().unwrap()).stdout = "x".repeat(100_000 + i);
        host.emit(&e);
        // Each line a batch, and a write, of its own.
        host.flush();
    }
    host.shutdown();
    let names = file_names(&logs);
    assert_eq!(names, ["executions.jsonl"], "no file but the live one");
    let lines = all_lines(&logs);
    assert_eq!(lines.len(), 6);
    for (i, (_, line)) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["execution_id"], format!("LONG-{i}"));
        assert_eq!(v["stdout"].as_str().unwrap().len(), 100_000 + i);
    }
}
