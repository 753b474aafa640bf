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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_many_executions_at_once_within_the_limit() {
    let registry = Registry::load(example_registry()).unwrap();
    let mut service = ToolExecutionService::new(
        registry,
        ExecutorConfig {
            max_concurrency: 3,
            ..ExecutorConfig::default()
        },
    );
    let tracker = Arc::new(Concurrency::default());
    service.add_sink(tracker.clone());
    let service = Arc::new(service);
    let mut handles = Vec::new();
    for i in 0..24 {
        let service = service.clone();
        handles.push(tokio::spawn(async move {
            service
                .execute(
                    ExecutionRequest::new("hello")
                        .input("name", format!("n{i}"))
                        .correlation_id(format!("c{i}")),
                )
                .await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for (i, h) in handles.into_iter().enumerate() {
        let r = h.await.unwrap();
        assert!(r.success, "{:?}", r.error_details);
        assert_eq!(r.stdout, format!("Hello, n{i}!\n"));
        assert_eq!(r.correlation_id.as_deref(), Some(format!("c{i}").as_str()));
        assert!(ids.insert(r.execution_id.clone()));
    }
    assert_eq!(tracker.finished.load(Ordering::SeqCst), 24);
    let max = tracker.max.load(Ordering::SeqCst);
    assert!((1..=3).contains(&max), "at most 3 at once, saw {max}");
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
