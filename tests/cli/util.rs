//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The real executable, with the default plugin set (installed beside it) writing its
/// log and compiled-component cache into this test run's temp folder, not the source tree.
/// Its StatsD exporter sends to the discard port (9) of loopback, never to a daemon on the
/// default 8125 that may be running on this machine; `tests/cli/statsd.rs` points it at
/// its own.
pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_metaclaude"));
    let scratch = std::env::temp_dir().join(format!("metaclaude-tests-{}", std::process::id()));
    cmd.env_remove("RUST_LOG")
        .env_remove("METACLAUDE_REGISTRY")
        .env_remove("METACLAUDE_PLUGIN_DIR")
        .env("METACLAUDE_METRICS_HOST", "127.0.0.1")
        .env("METACLAUDE_METRICS_PORT", "9")
        .env("METACLAUDE_LOG_DIR", scratch.join("logs"))
        .env("PYTHON_SINK_DIR", scratch.join("python-sink"))
        .env(
            "METACLAUDE_CACHE_DIR",
            std::env::temp_dir().join("metaclaude-test-component-cache"),
        );
    cmd
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn example_registry() -> PathBuf {
    root().join("examples/registry/registry.json")
}

/// `metaclaude run ID --registry <examples> --json ARGS...`, parsed.
pub fn run_json(id: &str, args: &[&str]) -> (Output, Value) {
    let out = bin()
        .args(["run", id, "--json", "--registry"])
        .arg(example_registry())
        .args(args)
        .output()
        .expect("run metaclaude");
    let value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, value)
}

pub fn category(v: &Value) -> &str {
    v["error_details"]["category"].as_str().unwrap_or("none")
}

/// Pids of live processes whose environment carries this execution id.
pub fn processes_of_execution(execution_id: &str) -> Vec<i32> {
    let needle = format!("METACLAUDE_EXECUTION_ID={execution_id}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true);
        if !zombie && environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// Runs `cmd` and returns its output; fails the test, showing stderr, unless it succeeded.
pub fn succeed(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run metaclaude");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// True when this machine gives the host per-execution cgroups (as root with cgroupfs).
pub fn cgroups_available(result: &Value) -> bool {
    result["resource_usage"]["cpu_time_source"] == "cgroup"
}

/// Runs `metaclaude ARGS... CASE` from `dir` for each case (a name in `dir`, so errors
/// read as a user would type it) and compares its stderr with the golden text beside it
/// (`expected(case)`); each must fail with exit 2. Returns how many cases were checked.
pub fn assert_golden_errors(
    dir: &Path,
    cases: &[String],
    args: &[&str],
    expected: impl Fn(&str) -> PathBuf,
    configure: impl Fn(&mut Command),
) -> usize {
    for name in cases {
        let golden = expected(name);
        let expected = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("{name} needs its golden error in {}", golden.display()));
        let mut cmd = bin();
        configure(&mut cmd);
        let out = cmd.current_dir(dir).args(args).arg(name).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name} must fail with exit 2");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_golden(&golden, &expected, &stderr, name);
    }
    cases.len()
}

/// True when golden files are to be rewritten from what the code gives now
/// (`METACLAUDE_BLESS=1`, which `cargo xtask bless` sets): for a message changed on
/// purpose. Review the diff before committing it.
pub fn blessing() -> bool {
    std::env::var_os("METACLAUDE_BLESS").is_some_and(|v| v == "1")
}

/// Compares `actual` with the golden text `expected` read from `golden` (trailing
/// whitespace aside), or, when [`blessing`], writes `actual` to `golden`.
pub fn assert_golden(golden: &Path, expected: &str, actual: &str, case: &str) {
    if blessing() {
        let text = format!("{}\n", actual.trim_end());
        if text != expected {
            std::fs::write(golden, text).unwrap();
            eprintln!("blessed {}", golden.display());
        }
        return;
    }
    assert_eq!(
        actual.trim_end(),
        expected.trim_end(),
        "golden file {} for {case} (METACLAUDE_BLESS=1 rewrites it, if the change is meant)",
        golden.display()
    );
}

/// Runs `metaclaude ARGS... CASE --normalized` from `dir` for each case and compares its
/// stdout, with `dir` and the workspace root written as `<dir>` and `<root>`, with the
/// golden file `expected(case)`; each must succeed. Returns how many cases were checked.
pub fn assert_golden_normalized(
    dir: &Path,
    cases: &[String],
    args: &[&str],
    expected: impl Fn(&str) -> PathBuf,
) -> usize {
    let root = std::fs::canonicalize(root()).unwrap();
    let dir_abs = std::fs::canonicalize(dir).unwrap();
    for name in cases {
        let golden = expected(name);
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        let out = succeed(
            bin()
                .current_dir(dir)
                .args(args)
                .arg(name)
                .arg("--normalized"),
        );
        let text = String::from_utf8(out.stdout)
            .unwrap()
            .replace(&*dir_abs.to_string_lossy(), "<dir>")
            .replace(&*root.to_string_lossy(), "<root>");
        assert_golden(&golden, &want, &text, name);
    }
    cases.len()
}

/// The lifecycle of the example `flaky` script (EX_TEMPFAIL twice, then success), in order.
pub const FLAKY_LIFECYCLE: [&str; 9] = [
    "queued",
    "started",
    "attempt_failed",
    "retry_scheduled",
    "started",
    "attempt_failed",
    "retry_scheduled",
    "started",
    "finished",
];

/// Waits (polling, at most `limit`) until `done` holds; fails the test with `what` and
/// the last `detail` otherwise.
pub fn wait_until(
    what: &str,
    limit: std::time::Duration,
    done: impl Fn() -> bool,
    detail: impl Fn() -> String,
) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}: {}", detail());
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// A loopback port free now (for a peer that needs a port number before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `metaclaude run hello` (the example registry) with the plugins of `plugins` loaded,
/// through `cmd` (a [`bin`] with whatever environment the test gives it); fails the test
/// unless the run succeeds.
pub fn run_hello_with_plugins(cmd: &mut Command, plugins: &Path) -> Output {
    succeed(
        cmd.args(["run", "hello", "--registry"])
            .arg(example_registry())
            .arg("--plugins")
            .arg(plugins),
    )
}

/// A server on a free loopback port: `serve` handles each connection on the accepting
/// thread (given the flag that says the server is stopping), until the server is dropped.
pub struct LoopbackServer {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoopbackServer {
    pub fn start(
        serve: impl Fn(std::net::TcpStream, &std::sync::Arc<std::sync::atomic::AtomicBool>)
            + Send
            + 'static,
    ) -> LoopbackServer {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(s) = stream {
                        serve(s, &stop);
                    }
                }
            })
        };
        LoopbackServer {
            port,
            stop,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
