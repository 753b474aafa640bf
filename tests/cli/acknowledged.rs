//! Acknowledged mode: `metaclaude run` and `metaclaude batch` report an execution as
//! finished only once the acknowledging sinks stored it, so a kill -9 of the host loses
//! nothing that was reported; and a sink that cannot store it turns into exit status 3
//! naming the plugin.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::log_sink::write_log_sink;
use crate::plugins::write_plugin;
use crate::util::{bin, example_registry, root};

/// A log-sink plugin folder in `plugins` writing into `logs`, acknowledging, with 1 MB
/// rotation so that a burst crosses several rotations.
fn acknowledging_log_sink(plugins: &Path, logs: &Path) {
    write_log_sink(
        plugins,
        logs,
        "rotation_size_mb = 1",
        "[acknowledgements]\nenabled = true",
    );
}

/// The `execution_id` of one JSON result line.
fn execution_id(line: &str) -> String {
    let v: Value = serde_json::from_str(line).unwrap();
    v["execution_id"].as_str().unwrap().to_string()
}

/// `metaclaude batch` with the plugins in `plugins`, requests on a pipe, results piped.
fn batch_host(plugins: &Path, concurrency: &str, stderr: Stdio) -> std::process::Child {
    bin()
        .args(["batch", "--concurrency", concurrency, "--registry"])
        .arg(example_registry())
        .arg("--plugins")
        .arg(plugins)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Every execution id `metaclaude logs --json` finds in `logs`.
pub fn logged_ids(logs: &Path) -> HashSet<String> {
    let out = bin()
        .env("METACLAUDE_LOG_DIR", logs)
        .args(["logs", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "logs query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(execution_id)
        .collect()
}

#[test]
fn kill_9_in_a_burst_loses_nothing_that_was_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (plugins, logs) = (tmp.path().join("plugins"), tmp.path().join("logs"));
    acknowledging_log_sink(&plugins, &logs);
    let mut host = batch_host(&plugins, "16", Stdio::null());
    // More requests than can finish before the kill: the burst is still going.
    let mut stdin = host.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 0..100_000 {
            let line = format!(
                "{{\"script_id\":\"noop\",\"user\":\"u{}\",\"correlation_id\":\"c{i}\"}}\n",
                i % 7
            );
            if stdin.write_all(line.as_bytes()).is_err() {
                return; // the host was killed
            }
        }
    });
    let mut reported = Vec::new();
    let mut lines = BufReader::new(host.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        reported.push(execution_id(&line.unwrap()));
        if reported.len() == 3000 {
            host.kill().unwrap(); // SIGKILL, in the middle of the burst
            break;
        }
    }
    // Lines the host wrote before it died were reported too.
    for line in lines.map_while(Result::ok) {
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            reported.push(v["execution_id"].as_str().unwrap().to_string());
        }
    }
    let status = host.wait().unwrap();
    feeder.join().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "the host must have been killed mid-burst, not have finished"
    );
    let files = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != metaclaude_formats::log_files::TIDIED_FILE)
        .count();
    assert!(
        files > 1,
        "the burst should have crossed rotations ({files} files)"
    );
    let logged = logged_ids(&logs);
    let missing: Vec<&String> = reported.iter().filter(|id| !logged.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} reported executions are not in the log, e.g. {:?}",
        missing.len(),
        reported.len(),
        &missing[..missing.len().min(5)]
    );
    // Every rotated file is a valid gzip stream even though the host died.
    for f in std::fs::read_dir(&logs).unwrap().flatten() {
        if f.path().extension().is_some_and(|e| e == "gz") {
            let ok = Command::new("gzip")
                .arg("-t")
                .arg(f.path())
                .status()
                .unwrap();
            assert!(ok.success(), "gzip -t {}", f.path().display());
        }
    }
}

/// A sink in a given fixture mode that acknowledges, without any directory granted.
fn failing_acknowledger(plugins: &Path, mode: &str) {
    write_plugin(
        plugins,
        "picky",
        "fixture_sink.wasm",
        &format!(
            r#"name = "NAME"
version = "1.0.0"
kind = "sink"
component = "COMPONENT"
[config]
mode = "{mode}"
[acknowledgements]
enabled = true
[limits]
max_failures = 100
"#
        ),
    );
}

#[test]
fn a_sink_that_cannot_store_an_execution_makes_run_exit_3_naming_it() {
    for (mode, expect) in [
        // `record` without its /out grant: handle-batch returns an error.
        ("record", "cannot open /out/events.txt"),
        // A trap is a failure of the call, not only of the plugin.
        ("trap", "deliberate panic"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let plugins = tmp.path().join("plugins");
        failing_acknowledger(&plugins, mode);
        let out = bin()
            .args(["run", "noop", "--registry"])
            .arg(example_registry())
            .arg("--plugins")
            .arg(&plugins)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{mode}: {stderr}");
        assert!(
            stderr.contains("finished but is not recorded: plugin picky did not store it")
                && stderr.contains(expect),
            "{mode}: {stderr}"
        );
        // The result itself is still reported in full.
        assert!(String::from_utf8_lossy(&out.stdout).contains("noop: success"));
    }
}

#[test]
fn the_shipped_log_sink_acknowledges_when_told_by_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let requests = tmp.path().join("requests.jsonl");
    std::fs::write(
        &requests,
        "{\"script_id\":\"noop\"}\n# a comment\n\n{\"script_id\":\"hello\",\"inputs\":{\"name\":\"ack\"}}\n{\"script\":\"typo\"}\n",
    )
    .unwrap();
    let out = bin()
        .env("METACLAUDE_LOG_DIR", &logs)
        .env("METACLAUDE_LOG_ACK", "true")
        .args(["batch", "--registry"])
        .arg(example_registry())
        .arg("--plugins")
        .arg(root().join("target/debug/plugins"))
        .arg(&requests)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The bad line is reported with file and line, the others still run.
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:5: unknown field `script`", requests.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 succeeded, 0 failed, 1 bad request line(s)"),
        "{stderr}"
    );
    let reported: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(execution_id)
        .collect();
    assert_eq!(reported.len(), 2);
    let logged = logged_ids(&logs);
    assert!(
        reported.iter().all(|id| logged.contains(id)),
        "{reported:?} vs {logged:?}"
    );
}

/// A small tmpfs mounted for the life of the value (the tests run as root: `cargo xtask
/// test` installs packages with apt).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test fills a small tmpfs and must mount one: run the tests as root (`sudo cargo xtask test`): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(at.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_reported_per_execution_and_spoils_nothing_already_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (plugins, logs) = (tmp.path().join("plugins"), tmp.path().join("logs"));
    let disk = SmallDisk::mount(&logs, "192k");
    acknowledging_log_sink(&plugins, &logs);
    let requests: String = (0..400)
        .map(|i| format!("{{\"script_id\":\"noop\",\"correlation_id\":\"c{i}\"}}\n"))
        .collect();
    let mut host = batch_host(&plugins, "4", Stdio::piped());
    host.stdin
        .take()
        .unwrap()
        .write_all(requests.as_bytes())
        .unwrap();
    let out = host.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("plugin log-sink did not store it: cannot write /logs/executions.jsonl")
            && stderr.contains("the disk may be full")
            && stderr.contains(&format!("(on the host, /logs is {})", logs.display())),
        "{stderr}"
    );
    let unrecorded: HashSet<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("error: execution "))
        .filter_map(|l| l.split_once(" finished but is not recorded"))
        .map(|(id, _)| id)
        .collect();
    let reported: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(execution_id)
        .collect();
    assert_eq!(reported.len(), 400, "every execution is still reported");
    assert!(
        !unrecorded.is_empty() && unrecorded.len() < 400,
        "{}",
        unrecorded.len()
    );
    // Nothing written before the disk filled is damaged: every line is whole JSON...
    let text = std::fs::read_to_string(logs.join("executions.jsonl")).unwrap();
    for (n, line) in text.lines().enumerate() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("line {} of the log is damaged ({e}): {line:.80}", n + 1));
    }
    assert!(text.ends_with('\n'), "no half line at the end");
    // ... and every execution confirmed as recorded is there.
    let logged = logged_ids(&logs);
    let lost: Vec<&String> = reported
        .iter()
        .filter(|id| !unrecorded.contains(id.as_str()) && !logged.contains(*id))
        .collect();
    assert!(lost.is_empty(), "confirmed but missing: {lost:?}");
    drop(disk);
}
