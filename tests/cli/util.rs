//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub use crate::bless::blessing;

/// The executable under test: the one cargo built for these tests, or the one
/// `METACLAUDE_TEST_EXE` names (`cargo xtask test` runs tests against the static
/// executable that way), with the default plugin set installed beside it.
pub fn exe() -> PathBuf {
    std::env::var_os("METACLAUDE_TEST_EXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_metaclaude")))
}

/// Whether the executable under test is statically linked: an ELF executable without an
/// interpreter (no `PT_INTERP` program header), as `cargo xtask build-static` makes it.
pub fn exe_is_static() -> bool {
    let bytes = std::fs::read(exe()).expect("read the executable under test");
    let word = |at: usize, n: usize| {
        bytes[at..at + n]
            .iter()
            .rev()
            .fold(0u64, |v, b| (v << 8) | u64::from(*b))
    };
    assert_eq!(&bytes[..5], b"\x7fELF\x02", "a 64-bit ELF executable");
    let (phoff, phentsize, phnum) = (
        word(0x20, 8) as usize,
        word(0x36, 2) as usize,
        word(0x38, 2),
    );
    const PT_INTERP: u64 = 3;
    !(0..phnum as usize).any(|i| word(phoff + i * phentsize, 4) == PT_INTERP)
}

/// The real executable ([`exe`]), with the default plugin set (installed beside it) writing its
/// log and compiled-component cache into this test run's temp folder, not the source tree.
/// Its StatsD exporter sends to the discard port (9) of loopback, never to a daemon on the
/// default 8125 that may be running on this machine; `tests/cli/statsd.rs` points it at
/// its own.
pub fn bin() -> Command {
    let mut cmd = Command::new(exe());
    let scratch = std::env::temp_dir().join(format!("metaclaude-tests-{}", std::process::id()));
    cmd.env_remove("RUST_LOG")
        .env_remove("METACLAUDE_REGISTRY")
        .env_remove("METACLAUDE_PLUGIN_DIR")
        .env_remove("METACLAUDE_GRANTS")
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

/// The operator grants every plugin folder now in `plugins` what its manifest asks for,
/// in the grants file beside the directory, keeping the grants already there: what
/// `metaclaude plugins grant --all --yes` does, for tests that set up plugins to use them.
pub fn grant_all(plugins: &Path) {
    use metaclaude::plugin::grants::admission::grant_requests;
    use metaclaude::plugin::grants::Grants;
    use metaclaude::plugin::manifest::process_env;
    let file = own_grants_file(plugins);
    let mut grants = Grants::load(&file).unwrap();
    grants
        .plugins
        .extend(grant_requests(plugins, &process_env).unwrap().plugins);
    grants.save().unwrap();
}

/// The grants file of the plugins directory `plugins`, which must be the test's own: a
/// folder inside its temp dir, so that its grants file is not one shared with other
/// tests (or left by an earlier run) in the system's temp dir.
pub fn own_grants_file(plugins: &Path) -> PathBuf {
    let file = metaclaude::plugin::grants::grants_file_for(plugins, None).unwrap();
    let temp = std::fs::canonicalize(std::env::temp_dir()).unwrap();
    assert!(
        file.parent() != Some(temp.as_path()),
        "{}: a test's plugins directory is a folder inside its temp dir, so that its grants \
         file is its own, not one shared with other tests in {}",
        plugins.display(),
        temp.display()
    );
    file
}

/// The operator grants the plugin in `folder` what it asks for, in the grants of the
/// plugins directory `plugins` (a folder prepared elsewhere, before it is moved in).
pub fn grant_in(plugins: &Path, folder: &Path) {
    use metaclaude::plugin::grants::{Grant, Grants};
    use metaclaude::plugin::manifest::{process_env, Manifest};
    let manifest = Manifest::load(folder, &process_env).unwrap();
    let file = own_grants_file(plugins);
    let mut grants = Grants::load(&file).unwrap();
    grants
        .plugins
        .insert(manifest.name, Grant::of(&manifest.requests, None, None));
    grants.save().unwrap();
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

/// The flag that says this machine gives the host no cgroups (no write access to a cgroup
/// hierarchy: not root, no delegated subtree). CI never sets it: there the host runs as
/// root and a run without cgroups is a failure, never a silent skip.
pub const NO_CGROUPS_FLAG: &str = "METACLAUDE_TEST_NO_CGROUPS";

/// Whether executions must run in cgroups here: always, unless [`NO_CGROUPS_FLAG`]` = 1`.
pub fn cgroups_expected() -> bool {
    std::env::var_os(NO_CGROUPS_FLAG).is_none_or(|v| v != "1")
}

/// Checks which path measured `result` (`context` names the run): the execution cgroup
/// when the machine gives one ([`cgroups_expected`]) and `cgroups` asked for it (no
/// `--no-cgroups`), else `wait4`'s rusage. The result names the source of each figure.
pub fn assert_measured_with_cgroups(result: &Value, cgroups: bool, context: &str) {
    let usage = &result["resource_usage"];
    let source = usage["cpu_time_source"].as_str().unwrap_or("missing");
    if cgroups && cgroups_expected() {
        assert_eq!(
            source, "cgroup",
            "{context}: the execution ran without a cgroup. The tests expect the host to \
             create cgroups (as root, or with a delegated cgroup v2 subtree); on a machine \
             that cannot, set {NO_CGROUPS_FLAG}=1 to test the fallback instead: {usage}"
        );
    } else {
        assert_eq!(
            source,
            "rusage",
            "{context}: expected the fallback without cgroups{}: {usage}",
            if cgroups {
                format!(" ({NO_CGROUPS_FLAG}=1)")
            } else {
                " (--no-cgroups)".into()
            }
        );
        assert_ne!(usage["peak_memory_source"], "cgroup", "{context}: {usage}");
    }
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

/// Compares `actual` with the golden text `expected` read from `golden` (trailing
/// whitespace aside), or, when [`blessing`] (`METACLAUDE_BLESS=1`, which `cargo xtask
/// bless` sets, for a message changed on purpose: review the diff before committing it),
/// writes `actual` to `golden`. Under CI a rewrite is refused: the test fails.
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

/// A registry in `dir`: each of `scripts` (a path in `dir`, its text) written executable,
/// and `registry` (its JSON) as `dir/registry.json`, whose path it returns.
pub fn write_registry(dir: &Path, scripts: &[(&str, &str)], registry: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    for (path, text) in scripts {
        let script = dir.join(path);
        std::fs::create_dir_all(script.parent().unwrap()).unwrap();
        std::fs::write(&script, text).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let file = dir.join("registry.json");
    std::fs::write(&file, registry).unwrap();
    file
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

/// The port a Prometheus-family server (Prometheus, Alertmanager: their exporter-toolkit
/// web server) started with `--web.listen-address=127.0.0.1:0` picked, as it names it in
/// `log` (its stderr); waits for it (at most a minute) and fails if `child` exits first.
pub fn listening_port(child: &mut std::process::Child, log: &Path, what: &str) -> u16 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(port) = port_in_log(&text) {
            return port;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited ({status}) before it listened:\n{text}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} named no port it listens on:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// `msg="Listening on" address=127.0.0.1:PORT` in an exporter-toolkit server's log.
fn port_in_log(log: &str) -> Option<u16> {
    log.lines()
        .filter(|l| l.contains("msg=\"Listening on\""))
        .find_map(|l| l.split("address=").nth(1)?.split_whitespace().next())
        .and_then(|address| address.rsplit(':').next()?.parse().ok())
        .filter(|port| *port != 0)
}

/// Runs `work` on a thread of its own and returns what it returns, failing the test with
/// `what` if it has not returned within `limit`: a guard against a hang, set far above
/// what the work takes on a loaded machine, never a speed check (the benchmarks are).
pub fn hang_guard<T: Send + 'static>(
    what: &str,
    limit: std::time::Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => {
            worker.join().unwrap();
            value
        }
        // It panicked: its message is the test's failure.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(worker.join().unwrap_err())
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: hung (no end after {limit:?})")
        }
    }
}

#[test]
fn listening_ports_are_read_from_a_servers_log() {
    let log = "ts=2026-12-04T20:00:23.633Z caller=web.go:503 level=info component=web msg=\"Start listening for connections\" address=127.0.0.1:0\n\
               ts=2026-12-04T20:00:23.638Z caller=tls_config.go:232 level=info component=web msg=\"Listening on\" address=127.0.0.1:44099\n";
    assert_eq!(port_in_log(log), Some(44099));
    assert_eq!(port_in_log(&log[..log.find("tls_config").unwrap()]), None);
}

/// Writes each `(name, body)` as an executable script in `dir/scripts`.
pub fn write_scripts(dir: &Path, scripts: &[(&str, &str)]) {
    use std::os::unix::fs::PermissionsExt;
    let folder = dir.join("scripts");
    std::fs::create_dir_all(&folder).unwrap();
    for (name, body) in scripts {
        let script = folder.join(name);
        std::fs::write(&script, body).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
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

/// Reads one HTTP/1.1 request from `stream`: its request line and headers as sent (up to
/// the blank line), and its body (`Content-Length` bytes); `None` if the peer closed first.
pub fn read_http_request(stream: &std::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use std::io::{BufRead, Read};
    let mut reader = std::io::BufReader::new(stream.try_clone().ok()?);
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
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
