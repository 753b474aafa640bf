//! The host's own metrics: `metaclaude batch --metrics-file` writes the plugin runtime's
//! states and counters (and the batch's) in the Prometheus text format, while the batch
//! runs and once more at its end; the real `promtool` must accept the file.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::plugins::write_plugin;
use crate::util::{bin, example_registry};

/// Runs `promtool check metrics` on `file` and fails the test on any problem it reports
/// (lint warnings included). promtool comes with the Debian package `prometheus`, which
/// `cargo xtask test` installs; without it the test fails, it does not skip.
fn promtool_accepts(file: &Path) {
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): install it with `apt-get install -y prometheus` \
                 (cargo xtask test does)"
            )
        });
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics rejects {}:\n{said}",
        file.display()
    );
}

/// The value of the sample `series` (name and labels exactly as written) in `text`.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
        .parse()
        .unwrap()
}

/// Waits up to a minute for `file` to exist and returns its text.
fn wait_for(file: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} was not written while the batch ran",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A plugin that traps on every batch is quarantined after `max_failures`; the metrics
/// file says so, counts its failures, and shows the well-behaved plugin beside it got
/// every event of the run.
#[test]
fn a_quarantined_plugin_shows_in_the_metrics_file() {
    const RUNS: usize = 5;
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let metrics = tmp.path().join("metaclaude.prom");
    write_plugin(
        &plugins,
        "good",
        "noop_sink.wasm",
        "name = \"NAME\"\nversion = \"1.0.0\"\nkind = \"sink\"\ncomponent = \"COMPONENT\"\n",
    );
    write_plugin(
        &plugins,
        "hostile",
        "fixture_sink.wasm",
        "name = \"NAME\"\nversion = \"1.0.0\"\nkind = \"sink\"\ncomponent = \"COMPONENT\"\n\
         [config]\nmode = \"trap\"\n\
         [limits]\nbatch_max = 1\nmax_failures = 2\nfailure_window_s = 600\n",
    );
    let mut host = bin()
        .args(["batch", "--registry"])
        .arg(example_registry())
        .arg("--plugins")
        .arg(&plugins)
        .arg("--metrics-file")
        .arg(&metrics)
        .args(["--metrics-interval", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Written as soon as the batch starts, before its input has ended.
    let early = wait_for(&metrics);
    assert_eq!(sample(&early, "metaclaude_batch_running"), 1.0, "{early}");
    assert_eq!(
        sample(
            &early,
            "metaclaude_plugin_state{plugin=\"good\",state=\"running\"}"
        ),
        1.0
    );

    let mut stdin = host.stdin.take().unwrap();
    for i in 0..RUNS {
        writeln!(
            stdin,
            "{{\"script_id\":\"hello\",\"inputs\":{{\"name\":\"m{i}\"}}}}"
        )
        .unwrap();
    }
    drop(stdin);
    let out = host.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("metrics file"),
        "no write may fail: {stderr}"
    );

    let text = std::fs::read_to_string(&metrics).unwrap();
    promtool_accepts(&metrics);
    // Each execution of `hello` is three events: queued, started, finished.
    let events = (RUNS * 3) as f64;
    for (series, want) in [
        (
            "metaclaude_plugin_state{plugin=\"hostile\",state=\"quarantined\"}",
            1.0,
        ),
        (
            "metaclaude_plugin_state{plugin=\"hostile\",state=\"running\"}",
            0.0,
        ),
        (
            "metaclaude_plugin_state{plugin=\"hostile\",state=\"restarting\"}",
            0.0,
        ),
        (
            "metaclaude_plugin_state{plugin=\"hostile\",state=\"disabled\"}",
            0.0,
        ),
        ("metaclaude_plugin_up{plugin=\"hostile\"}", 0.0),
        ("metaclaude_plugin_failures_total{plugin=\"hostile\"}", 2.0),
        ("metaclaude_plugin_restarts_total{plugin=\"hostile\"}", 1.0),
        (
            "metaclaude_plugin_events_queued_total{plugin=\"hostile\"}",
            events,
        ),
        (
            "metaclaude_plugin_events_delivered_total{plugin=\"hostile\"}",
            0.0,
        ),
        (
            "metaclaude_plugin_events_dropped_total{plugin=\"hostile\"}",
            events,
        ),
        (
            "metaclaude_plugin_state{plugin=\"good\",state=\"running\"}",
            1.0,
        ),
        ("metaclaude_plugin_up{plugin=\"good\"}", 1.0),
        (
            "metaclaude_plugin_events_delivered_total{plugin=\"good\"}",
            events,
        ),
        (
            "metaclaude_plugin_events_dropped_total{plugin=\"good\"}",
            0.0,
        ),
        ("metaclaude_plugin_queue_events{plugin=\"good\"}", 0.0),
        ("metaclaude_plugin_failures_total{plugin=\"good\"}", 0.0),
        (
            "metaclaude_batch_executions_total{outcome=\"succeeded\"}",
            RUNS as f64,
        ),
        ("metaclaude_batch_executions_total{outcome=\"failed\"}", 0.0),
        ("metaclaude_batch_running", 0.0),
    ] {
        assert_eq!(sample(&text, series), want, "{series} in:\n{text}");
    }
    // Nothing is left beside the file: each version was renamed into place.
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A metrics file that cannot be written is a warning naming it; the batch still runs and
/// exits as it would without it.
#[test]
fn an_unwritable_metrics_file_warns_and_the_batch_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let metrics = tmp.path().join("missing-dir/metaclaude.prom");
    let mut host = bin()
        .args(["batch", "--no-plugins", "--registry"])
        .arg(example_registry())
        .arg("--metrics-file")
        .arg(&metrics)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    host.stdin
        .take()
        .unwrap()
        .write_all(b"{\"script_id\":\"noop\"}\n")
        .unwrap();
    let out = host.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert!(
        stderr.contains(&format!(
            "warning: cannot write the metrics file {}: No such file or directory",
            metrics.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("1 succeeded, 0 failed"), "{stderr}");
}
