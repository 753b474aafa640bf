//! The library API as the README shows it: many executions at once on tokio.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use metaclaude::model::{ExecutionEvent, LifecycleKind};
use metaclaude::{EventSink, ExecutionRequest, ExecutorConfig, Registry, ToolExecutionService};

use crate::util::example_registry;

/// Tracks how many executions run at once (between `started` and `finished`).
#[derive(Default)]
struct Concurrency {
    running: AtomicUsize,
    max: AtomicUsize,
    finished: AtomicUsize,
}

impl EventSink for Concurrency {
    fn emit(&self, event: &ExecutionEvent) {
        match event.kind {
            LifecycleKind::Started => {
                let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
                self.max.fetch_max(now, Ordering::SeqCst);
            }
            LifecycleKind::Finished => {
                self.running.fetch_sub(1, Ordering::SeqCst);
                self.finished.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
    }
}

/// A registry with one script, `meet`: it greets `--name` as the example `hello` does,
/// once three runs have met: each leaves a file named after itself in the `--meeting`
/// folder and waits (at most 20 s) until three are there. Runs one at a time never meet.
fn meeting_registry(dir: &std::path::Path) -> std::path::PathBuf {
    crate::util::write_registry(
        dir,
        &[(
            "meet.sh",
            r#"#!/bin/sh
name=world meeting=
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2; shift 2 ;;
    --meeting) meeting=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 64 ;;
  esac
done
: > "$meeting/$name"
waited=0
while [ "$(ls "$meeting" | wc -l)" -lt 3 ]; do
  waited=$((waited + 1))
  if [ "$waited" -gt 2000 ]; then echo "$name met nobody in 20 s: $(ls "$meeting")" >&2; exit 3; fi
  sleep 0.01
done
echo "Hello, $name!"
"#,
        )],
        r#"{"scripts": [{"id": "meet", "path": "meet.sh", "timeout_ms": 60000,
            "inputs": {"name": {"type": "string", "required": true},
                       "meeting": {"type": "string", "required": true}}}]}"#,
    )
}

/// 24 executions through a limit of 3: the first three must all run at once to finish
/// (they wait for each other), and never more than three run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_many_executions_at_once_within_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let meeting = tmp.path().join("meeting");
    std::fs::create_dir(&meeting).unwrap();
    let registry = Registry::load(meeting_registry(tmp.path())).unwrap();
    let mut service = ToolExecutionService::new(
        registry,
        ExecutorConfig {
            max_concurrency: Some(3),
            ..ExecutorConfig::default()
        },
    );
    let tracker = Arc::new(Concurrency::default());
    service.add_sink(tracker.clone());
    let service = Arc::new(service);
    let mut handles = Vec::new();
    for i in 0..24 {
        let service = service.clone();
        let meeting = meeting.display().to_string();
        handles.push(tokio::spawn(async move {
            service
                .execute(
                    ExecutionRequest::new("meet")
                        .input("name", format!("n{i}"))
                        .input("meeting", meeting)
                        .correlation_id(format!("c{i}")),
                )
                .await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for (i, h) in handles.into_iter().enumerate() {
        let r = h.await.unwrap();
        assert!(r.success, "{:?} {}", r.error_details, r.stderr);
        assert_eq!(r.stdout, format!("Hello, n{i}!\n"));
        assert_eq!(r.correlation_id.as_deref(), Some(format!("c{i}").as_str()));
        assert!(ids.insert(r.execution_id.clone()));
    }
    assert_eq!(tracker.finished.load(Ordering::SeqCst), 24);
    let max = tracker.max.load(Ordering::SeqCst);
    assert_eq!(max, 3, "three at once (they met), never more");
}

#[tokio::test]
async fn seed_usage_translates_to_rust() {
    let tes = ToolExecutionService::open(example_registry()).unwrap();
    let result = tes
        .execute(
            ExecutionRequest::new("validate_api_schema")
                .input("schema_file", "data/api.json")
                .session_id("session-123"),
        )
        .await;
    assert!(result.success, "{:?}", result.error_details);
    assert!(result.error_details.is_none());
    assert!(result.resource_usage.peak_memory_mb > 1.0);
    assert!(result.resource_usage.cpu_time_seconds > 0.0);
}

/// The seed's `create_monitored_tes(enable_logging, enable_metrics, statsd_host)` as the
/// builder: the StatsD exporter sends to the host it was given, the log is left out, and
/// `execution_stats` has the figures of the executions run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitored_host_builder_wires_the_seeds_options() {
    use metaclaude::app::{MonitoredHost, PluginSource};
    // A socket of the test stands for the StatsD host: what is checked is that the lines
    // reach the host and port given to the builder (the reference daemon's counting is
    // `tests/cli/statsd.rs`'s).
    let statsd = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    statsd
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let port = statsd.local_addr().unwrap().port();
    let logs = tempfile::tempdir().unwrap();
    let host = MonitoredHost::builder(example_registry())
        .plugins(PluginSource::Dir(
            crate::util::root().join("target/debug/plugins"),
        ))
        .logging(false)
        .metrics(true)
        .statsd_host("127.0.0.1")
        .statsd_port(port)
        .env("METACLAUDE_LOG_DIR", logs.path().display().to_string())
        .build()
        .unwrap();
    let names: Vec<String> = host
        .plugins()
        .unwrap()
        .list()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert!(names.contains(&"statsd-exporter".to_string()), "{names:?}");
    assert!(
        !names.contains(&"log-sink".to_string()),
        "logging(false): {names:?}"
    );
    for _ in 0..3 {
        let run = host.execute(ExecutionRequest::new("hello")).await;
        assert!(run.result.success);
    }
    assert!(
        !host
            .execute(ExecutionRequest::new("failing"))
            .await
            .result
            .success
    );
    host.shutdown();
    let mut buf = [0u8; 65536];
    let mut text = String::new();
    loop {
        let n = statsd
            .recv(&mut buf)
            .expect("the exporter sent to the given host");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if text.matches("metaclaude.executions.total:1|c").count() >= 4 {
            break;
        }
    }
    assert!(text.contains("metaclaude.executions.failure:1|c"), "{text}");
    let stats = host.execution_stats(60);
    assert_eq!(stats.window.overall.count, 4);
    assert_eq!(stats.window.overall.failures, 1);
    assert_eq!(stats.since_start.executions, 4);
    assert_eq!(stats.percentiles.duration_seconds["start"].count, 4);
    assert!(
        std::fs::read_dir(logs.path()).map_or(true, |mut d| d.next().is_none()),
        "no log written"
    );
}

/// A host assembled on a tokio runtime's thread (a user's `#[tokio::main]`) loads the log
/// sink, whose `init` makes WASI file calls that drive a runtime of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_built_inside_a_runtime_loads_plugins_that_touch_files() {
    use metaclaude::app::{MonitoredHost, PluginSource};
    let logs = tempfile::tempdir().unwrap();
    let host = MonitoredHost::builder(example_registry())
        .plugins(PluginSource::Dir(
            crate::util::root().join("target/debug/plugins"),
        ))
        .metrics(false)
        .env("METACLAUDE_LOG_DIR", logs.path().display().to_string())
        .build()
        .unwrap();
    let run = host.execute(ExecutionRequest::new("hello")).await;
    host.shutdown();
    let log = std::fs::read_to_string(logs.path().join("executions.jsonl")).unwrap();
    assert!(log.contains(&run.result.execution_id), "{log}");
}
