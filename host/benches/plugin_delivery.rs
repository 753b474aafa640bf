//! Plugin runtime benchmarks, each a ratio against a baseline measured in the same run:
//!
//! 1. events per second through the no-op WASM sink (batched), against the same no-op
//!    sink as a trusted native plugin (`plugins/native/noop-sink`, through the C ABI);
//! 2. per-execution overhead of a trivial script with two sinks loaded, the log sink
//!    (Rust) and the Python example, against no plugins (target 1.05 or less); the
//!    whole default set is `default_set`'s to measure;
//! 3. cold (compile) and warm (cache) load time of the log sink, the no-op sink and the
//!    Python example.
//!
//! Needs the components: `cargo xtask build-plugins` (or `cargo xtask bench`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use metaclaude::model::{ExecutionEvent, ExecutionResult};
use metaclaude::{EventSink, ExecutorConfig, Registry, ToolExecutionService};

mod support;
use support::{execute_timed, granted_host, median, root};

fn need(path: PathBuf) -> PathBuf {
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask build-plugins` first",
        path.display()
    );
    path
}

fn event(i: u64) -> ExecutionEvent {
    let mut r = ExecutionResult::new(format!("01BENCH{i:019}"), "validate_api_schema", Utc::now());
    r.specialist = Some("api-ui-designer".into());
    r.success = true;
    r.exit_code = Some(0);
    r.stdout = "{\"valid\": true, \"paths\": 2}\n".into();
    r.inputs = [("schema_file".to_string(), serde_json::json!("api.json"))].into();
    r.session_id = Some("session-123".into());
    r.correlation_id = Some("request-456".into());
    r.user = Some("ops".into());
    ExecutionEvent::finished(r)
}

fn plugin_folder(dir: &Path, name: &str, wasm: &Path, extra: &str) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("plugin.toml"),
        format!(
            "name = \"{name}\"\nversion = \"1.0.0\"\nkind = \"sink\"\ncomponent = \"{}\"\n{extra}",
            wasm.display()
        ),
    )
    .unwrap();
    folder
}

fn throughput(events: &[ExecutionEvent], sink: &dyn EventSink, done: &dyn Fn()) -> f64 {
    let start = Instant::now();
    for e in events {
        sink.emit(e);
    }
    done();
    events.len() as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // The allocator as the binary sets it (`main`), so that the figures are the binary's.
    metaclaude::memory::tune_allocator();
    let tmp = std::env::temp_dir().join(format!("metaclaude-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let noop_wasm = need(root().join("plugins/target/wasm32-wasip2/release/noop_sink.wasm"));
    let noop_native = need(root().join("plugins/target/native/release/libnative_noop_sink.so"));
    let log_wasm = need(root().join("plugins/target/wasm32-wasip2/release/log_sink.wasm"));
    let py_wasm = need(root().join("examples/plugins/python-sink/python_sink.wasm"));

    // 1. Delivery throughput.
    let n = 200_000;
    let events: Vec<ExecutionEvent> = (0..n).map(event).collect();
    let wasm_dir = tmp.join("noop");
    plugin_folder(
        &wasm_dir,
        "noop",
        &noop_wasm,
        "[limits]\nbatch_max = 256\nqueue = 10000\n",
    );
    let native_dir = tmp.join("native");
    let folder = native_dir.join("native-noop");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("plugin.toml"),
        format!(
            "name = \"native-noop\"\nversion = \"1.0.0\"\nkind = \"sink\"\nnative = \"{}\"\ntrusted = true\n[limits]\nbatch_max = 256\nqueue = 10000\n",
            noop_native.display()
        ),
    )
    .unwrap();
    let mut host = granted_host(&wasm_dir, tmp.join("cache"));
    assert!(host.load_dir(&wasm_dir).unwrap().is_empty());
    let mut native = granted_host(&native_dir, tmp.join("cache"));
    assert!(native.load_dir(&native_dir).unwrap().is_empty());
    let mut wasm_rates = Vec::new();
    let mut native_rates = Vec::new();
    for _ in 0..3 {
        wasm_rates.push(throughput(&events, &host, &|| host.flush()));
        native_rates.push(throughput(&events, &native, &|| native.flush()));
    }
    assert_eq!(
        native.list()[0].delivered,
        3 * n,
        "every event reached the native sink"
    );
    let delivered = host.list()[0].delivered;
    assert_eq!(delivered, 3 * n, "every event reached the WASM sink");
    wasm_rates.sort_by(f64::total_cmp);
    native_rates.sort_by(f64::total_cmp);
    let (wasm, native_rate) = (wasm_rates[1], native_rates[1]);
    println!("delivery of {n} finished events, batches of 256 (median of 3):");
    println!("  no-op WASM sink            {wasm:>12.0} events/s");
    println!("  native no-op sink (C ABI)  {native_rate:>12.0} events/s");
    println!(
        "  ratio WASM/native          {:>12.2}   (target >= 0.50)",
        wasm / native_rate
    );
    drop(host);
    drop(native);

    // 2. Per-execution overhead with the log sink and the Python example loaded.
    let plugins_dir = tmp.join("default-set");
    plugin_folder(
        &plugins_dir,
        "log-sink",
        &log_wasm,
        &format!(
            "event_json = true\n[config]\nlevel = \"INFO\"\n[capabilities]\ndirs = [{{ host = \"{}\", guest = \"/logs\", mode = \"rw\", create = true }}]\n",
            tmp.join("logs").display()
        ),
    );
    plugin_folder(
        &plugins_dir,
        "python-sink",
        &py_wasm,
        &format!(
            "[config]\nfile = \"/out/events.jsonl\"\n[capabilities]\ndirs = [{{ host = \"{}\", guest = \"/out\", mode = \"rw\", create = true }}]\n",
            tmp.join("py").display()
        ),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let registry = Registry::load(root().join("examples/registry/registry.json")).unwrap();
    let bare = rt
        .block_on(async { ToolExecutionService::new(registry.clone(), ExecutorConfig::default()) });
    let mut host = granted_host(&plugins_dir, tmp.join("cache"));
    assert!(host.load_dir(&plugins_dir).unwrap().is_empty());
    let host = Arc::new(host);
    let with_plugins = rt.block_on(async {
        let mut s = ToolExecutionService::new(registry, ExecutorConfig::default());
        s.add_sink(host.clone());
        s
    });
    let once = |s: &ToolExecutionService| execute_timed(&rt, s, "noop");
    for _ in 0..20 {
        once(&bare);
        once(&with_plugins);
    }
    let runs = 300;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        a.push(once(&bare));
        b.push(once(&with_plugins));
    }
    let (a, b) = (median(a), median(b));
    println!("per-execution time of noop.sh ({runs} interleaved runs each, medians):");
    println!(
        "  no plugins                       {:>8.3} ms",
        a.as_secs_f64() * 1e3
    );
    println!(
        "  log-sink + python-sink loaded    {:>8.3} ms",
        b.as_secs_f64() * 1e3
    );
    println!(
        "  ratio                            {:>8.3}   (target <= 1.05)",
        b.as_secs_f64() / a.as_secs_f64()
    );
    host.shutdown();

    // 3. Cold and warm load times.
    println!("load time (cold = compile into an empty cache, warm = from the cache):");
    for (name, wasm) in [
        ("log-sink", &log_wasm),
        ("noop-sink", &noop_wasm),
        ("python-sink", &py_wasm),
    ] {
        let cache = tmp.join(format!("cache-{name}"));
        let folder_root = tmp.join(format!("load-{name}"));
        let extra = if name == "python-sink" {
            format!(
                "[capabilities]\ndirs = [{{ host = \"{}\", guest = \"/out\", mode = \"rw\", create = true }}]\n",
                tmp.join("py").display()
            )
        } else if name == "log-sink" {
            format!(
                "event_json = true\n[capabilities]\ndirs = [{{ host = \"{}\", guest = \"/logs\", mode = \"rw\", create = true }}]\n",
                tmp.join("logs").display()
            )
        } else {
            String::new()
        };
        let folder = plugin_folder(&folder_root, name, wasm, &extra);
        let mut times = Vec::new();
        for _ in 0..2 {
            let mut host = granted_host(&folder_root, cache.clone());
            let start = Instant::now();
            host.load_plugin(&folder).unwrap();
            times.push(start.elapsed());
        }
        println!(
            "  {name:<12} cold {:>9.1} ms   warm {:>7.1} ms   ({:.0}x)",
            times[0].as_secs_f64() * 1e3,
            times[1].as_secs_f64() * 1e3,
            times[0].as_secs_f64() / times[1].as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
