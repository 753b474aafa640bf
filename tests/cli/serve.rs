//! `metaclaude serve` end to end: the real binary on a free loopback port, driven with a
//! real HTTP client (ureq) and a real WebSocket client (tungstenite).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

use crate::log_sink::write_log_sink;
use crate::plugins::write_plugin;
use crate::util::{bin, example_registry, succeed, wait_until};

/// A `metaclaude serve` child process on free ports, killed when dropped.
pub struct Server {
    child: Option<Child>,
    /// The execution log of this server alone (unless the test gave its own).
    _logs: tempfile::TempDir,
    pub http: String,
    pub ws: Option<String>,
    stderr: Arc<Mutex<String>>,
    /// Tells when the server's stderr has ended (it has exited): all of it is read.
    stderr_ended: std::sync::mpsc::Receiver<()>,
}

impl Server {
    /// Starts `metaclaude serve --registry REGISTRY ARGS...` (on free ports unless ARGS
    /// name them) with `configure` applied, and waits (bounded) for the address it prints.
    pub fn start(registry: &Path, args: &[&str], configure: impl FnOnce(&mut Command)) -> Server {
        let logs = tempfile::tempdir().unwrap();
        let mut cmd = bin();
        cmd.env("METACLAUDE_LOG_DIR", logs.path())
            .args(["serve", "--registry"])
            .arg(registry)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Free ports unless the test chose its own.
        if !args.contains(&"--http-port") {
            cmd.args(["--http-port", "0"]);
        }
        if !args.contains(&"--ws-port") && !args.contains(&"--no-ws-port") {
            cmd.args(["--ws-port", "0"]);
        }
        cmd.args(args);
        configure(&mut cmd);
        let mut child = cmd.spawn().expect("start metaclaude serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let (ended, stderr_ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            let _ = ended.send(());
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "serve printed no address; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        let addr_after = |marker: &str| {
            line.split(marker)
                .nth(1)
                .map(|rest| rest.split([' ', '/', ')']).next().unwrap().to_string())
        };
        let http = addr_after("listening on http://").expect("an http address");
        let ws = addr_after(" and ws://");
        Server {
            child: Some(child),
            _logs: logs,
            http: format!("http://{http}"),
            ws: ws.map(|a| format!("ws://{a}")),
            stderr,
            stderr_ended,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.http.replacen("http://", "ws://", 1))
    }

    /// Runs `script_id` (waiting for it) and returns its result.
    pub fn run(&self, script_id: &str) -> Value {
        let r = post(
            &self.url("/api/v1/executions"),
            &json!({ "script_id": script_id }).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits (bounded) for the exit.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        signal(child.id() as i32, libc::SIGTERM);
        let status = wait_bounded(&mut child, Duration::from_secs(60));
        // The reader thread has taken the last words once the pipe has ended.
        self.stderr_ended
            .recv_timeout(Duration::from_secs(60))
            .expect("serve's stderr ended with it");
        (status, self.stderr())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) };
}

fn wait_bounded(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTP client that reports every status as it is (no error for 4xx) and follows no
/// redirect.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// A response: status, headers, body.
pub struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.expect("the request got an answer");
    Reply {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// A token file in `dir` holding `token`, readable by its owner alone (serve refuses any
/// other).
pub fn token_file(dir: &Path, token: &str) -> PathBuf {
    use std::os::unix::fs::OpenOptionsExt;
    let file = dir.join("token");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(&mut f, format!("{token}\n").as_bytes()).unwrap();
    file
}

pub fn get(url: &str) -> Reply {
    reply(agent().get(url).call())
}

pub fn post(url: &str, body: &str) -> Reply {
    reply(
        agent()
            .post(url)
            .header("content-type", "application/json")
            .send(body),
    )
}

/// Polls `url` until `done` holds for its JSON (bounded).
fn poll_json(url: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = get(url);
        if r.status == 200 {
            let v = r.json();
            if done(&v) {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what}: last answer {} {}",
            r.status,
            r.body
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A registry in `dir` with `sleep` (sleeps `--seconds`, default 30), `hello` and
/// `fail` scripts.
pub fn sleepy_registry(dir: &Path) -> PathBuf {
    let scripts = dir.join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    let script = scripts.join("sleep.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho start\nsleep \"${2:-30}\"\necho done\n",
    )
    .unwrap();
    std::fs::write(scripts.join("hello.sh"), "#!/bin/sh\necho hello\n").unwrap();
    std::fs::write(
        scripts.join("fail.sh"),
        "#!/bin/sh\necho oops >&2\nexit 3\n",
    )
    .unwrap();
    for s in ["sleep.sh", "hello.sh", "fail.sh"] {
        let p = scripts.join(s);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let registry = dir.join("registry.json");
    std::fs::write(
        &registry,
        r#"{"scripts": [
            {"id": "sleep", "path": "scripts/sleep.sh", "timeout_ms": 120000, "specialist": "sleepers",
             "inputs": {"seconds": {"type": "integer", "default": 30}}},
            {"id": "hello", "path": "scripts/hello.sh", "specialist": "greeters"},
            {"id": "fail", "path": "scripts/fail.sh", "max_retries": 0}
        ]}"#,
    )
    .unwrap();
    registry
}

/// A WebSocket client on `url` (read timeout 20 s), with `origin` when given.
pub fn ws_connect(
    url: &str,
    origin: Option<&str>,
) -> Result<tungstenite::WebSocket<TcpStream>, tungstenite::Error> {
    let mut request = url.into_client_request().unwrap();
    if let Some(o) = origin {
        request.headers_mut().insert("origin", o.parse().unwrap());
    }
    let host = url.trim_start_matches("ws://").split('/').next().unwrap();
    let stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    tungstenite::client(request, stream)
        .map(|(socket, _)| socket)
        .map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => panic!("handshake interrupted"),
        })
}

/// The next text message as JSON.
pub fn ws_next(socket: &mut tungstenite::WebSocket<TcpStream>) -> Value {
    loop {
        match socket.read().expect("a message within the read timeout") {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

#[test]
fn executions_are_run_read_back_listed_and_summarised() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = sleepy_registry(tmp.path());
    let server = Server::start(&registry, &["--no-plugins"], |_| {});
    let executions = server.url("/api/v1/executions");

    // Waits and answers with the whole result, as `run --json` prints it.
    let r = post(
        &executions,
        r#"{"script_id": "hello", "user": "ana", "session_id": "s1"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("metaclaude-recording"), Some("unconfirmed"));
    let hello = r.json();
    assert_eq!(hello["success"], true);
    assert_eq!(hello["stdout"], "hello\n");
    assert_eq!(hello["user"], "ana");
    let hello_id = hello["execution_id"].as_str().unwrap().to_string();

    // An unknown script is the VALIDATION result the CLI gives; a failure is a result.
    let unknown = post(&executions, r#"{"script_id": "helo"}"#).json();
    assert_eq!(unknown["error_details"]["category"], "VALIDATION");
    assert!(unknown["error_details"]["suggestions"][0]
        .as_str()
        .unwrap()
        .contains("`hello`"));
    let failed = post(&executions, r#"{"script_id": "fail"}"#).json();
    assert_eq!(failed["error_details"]["category"], "EXECUTION");

    // A bad request is 400 naming the field.
    for (body, field) in [
        (r#"{"script": "hello"}"#, Some("script")),
        (r#"{"inputs": {}}"#, Some("script_id")),
        (r#"{"script_id": 5}"#, None),
        ("not json", None),
        ("", None),
    ] {
        let r = post(&executions, body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        let e = r.json();
        assert_eq!(e["error"]["code"], "bad_request", "{body}");
        assert!(e["error"]["message"].as_str().unwrap().len() > 10);
        if let Some(f) = field {
            assert_eq!(e["error"]["field"], f, "{body}: {}", r.body);
        }
    }

    // ?wait=false: 202 and the id at once; the execution shows its state while it runs.
    let r = post(
        &format!("{executions}?wait=false"),
        r#"{"script_id": "sleep", "inputs": {"seconds": 1}}"#,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["execution_id"].as_str().unwrap().to_string();
    assert_eq!(
        r.header("location"),
        Some(&*format!("/api/v1/executions/{id}"))
    );
    let one = server.url(&format!("/api/v1/executions/{id}"));
    let running = poll_json(&one, "running", |v| v["state"] == "running");
    assert!(
        running["pid"].as_u64().is_some() && running["attempt"] == 1,
        "{running}"
    );
    let listed = get(&server.url("/api/v1/executions?state=running")).json();
    assert_eq!(listed["executions"][0]["execution_id"], id.as_str());
    let done = poll_json(&one, "finished", |v| v.get("success").is_some());
    assert_eq!(done["stdout"], "start\ndone\n");

    // Listings: newest first, filtered, limited.
    let all = get(&server.url("/api/v1/executions")).json();
    let ids: Vec<&str> = all["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["execution_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "{all}");
    assert_eq!(ids[0], id, "newest first");
    assert_eq!(*ids.last().unwrap(), hello_id);
    let failed = get(&server.url("/api/v1/executions?failed=true")).json();
    assert_eq!(failed["count"], 2, "{failed}");
    let by_user = get(&server.url("/api/v1/executions?user=ana&session=s1")).json();
    assert_eq!(by_user["executions"][0]["execution_id"], hello_id.as_str());
    let limited = get(&server.url("/api/v1/executions?limit=1&script=sleep&since=1h")).json();
    assert_eq!(limited["count"], 1);
    let by_category = get(&server.url("/api/v1/executions?category=validation")).json();
    assert_eq!(by_category["count"], 1, "{by_category}");
    let from = get(&server.url("/api/v1/executions?from=2000-01-01T00:00:00Z&script=hello")).json();
    assert_eq!(from["count"], 1, "{from}");
    for bad in [
        "?limit=x",
        "?limit=0",
        "?colour=red",
        "?state=sleeping",
        "?since=yesterday",
        "?from=1h",
        "?category=nope",
    ] {
        let r = get(&server.url(&format!("/api/v1/executions{bad}")));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    assert_eq!(
        get(&server.url("/api/v1/executions/01NOSUCHEXECUTION000000000")).status,
        404
    );

    // The summary the dashboards show.
    let stats = get(&server.url("/api/v1/stats?period=60")).json();
    let overall = &stats["window"]["overall"];
    assert_eq!(overall["count"], 4, "{stats}");
    assert_eq!(overall["failures"], 2);
    assert_eq!(overall["failures_by_category"]["VALIDATION"], 1);
    assert!(overall["duration_seconds"]["p95"].as_f64().unwrap() >= 1.0);
    assert_eq!(stats["since_start"]["executions"], 4);
    let sketch = &stats["percentiles"]["duration_seconds"]["5m"];
    assert_eq!(sketch["count"], 4, "{stats}");
    assert!(
        sketch["max"].as_f64().unwrap() >= 0.99,
        "the 1 s sleep, within 1 %: {sketch}"
    );
    let top = &stats["window"]["top_scripts"];
    assert!(
        top.as_array().unwrap().iter().any(|g| g["key"] == "sleep"),
        "{top}"
    );

    // The registry, the plugins, health.
    let scripts = get(&server.url("/api/v1/scripts")).json();
    assert_eq!(scripts["scripts"].as_array().unwrap().len(), 3);
    assert_eq!(scripts["scripts"][0]["timeout_ms"], 120000);
    assert_eq!(
        get(&server.url("/api/v1/plugins")).json()["plugins"],
        json!([])
    );
    assert_eq!(get(&server.url("/healthz")).json()["status"], "ok");
    assert_eq!(get(&server.url("/readyz")).status, 200);
    let openapi = get(&server.url("/api/v1/openapi.json")).json();
    assert_eq!(openapi["openapi"], "3.0.3");
    assert_eq!(
        get(&server.url("/api/v1/nothing")).json()["error"]["code"],
        "not_found"
    );
    let r = reply(agent().delete(&server.url("/api/v1/scripts")).call());
    assert_eq!(r.status, 405);

    let (status, stderr) = server.stop();
    assert!(status.success(), "{status}: {stderr}");
}

/// Memory holds what this server ran; older executions come from the log, through the
/// same filters.
#[test]
fn history_beyond_memory_comes_from_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let registry = sleepy_registry(tmp.path());
    let before = succeed(
        bin()
            .env("METACLAUDE_LOG_DIR", &logs)
            .args(["run", "hello", "--json", "--user", "old", "--registry"])
            .arg(&registry),
    );
    let old: Value = serde_json::from_slice(&before.stdout).unwrap();
    let old_id = old["execution_id"].as_str().unwrap();
    let server = Server::start(&registry, &[], |cmd| {
        cmd.env("METACLAUDE_LOG_DIR", &logs);
    });
    let new = server.run("hello");
    let listing = get(&server.url("/api/v1/executions?script=hello")).json();
    assert_eq!(listing["count"], 2, "{listing}");
    assert_eq!(
        (
            listing["from_memory"].as_u64(),
            listing["from_log"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        listing["executions"][0]["execution_id"],
        new["execution_id"]
    );
    assert_eq!(listing["executions"][1]["execution_id"], old_id);
    assert!(
        listing["executions"][1].get("log_version").is_none(),
        "a result, not a log line"
    );
    let by_user = get(&server.url("/api/v1/executions?user=old")).json();
    assert_eq!(by_user["count"], 1);
    let one = get(&server.url(&format!("/api/v1/executions/{old_id}")));
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.json()["stdout"], "hello\n");
}

#[test]
fn the_live_feed_sends_a_snapshot_then_every_event_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&example_registry(), &["--no-plugins"], |_| {});
    server.run("hello");
    let mut all = ws_connect(&server.ws_url("/ws"), None).unwrap();
    let second_port = server.ws.clone().expect("the seed's WebSocket port");
    let mut finished_only = ws_connect(&format!("{second_port}/ws?kinds=finished"), None).unwrap();
    let snapshot = ws_next(&mut all);
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["reason"], "connect");
    assert_eq!(
        snapshot["recent"].as_array().unwrap().len(),
        1,
        "{snapshot}"
    );
    assert_eq!(snapshot["totals"]["executions"], 1);
    assert!(snapshot["stats"]["window"]["overall"]["count"] == 1);
    let start_seq = snapshot["seq"].as_u64().unwrap();
    assert_eq!(ws_next(&mut finished_only)["type"], "snapshot");

    // flaky fails twice, then succeeds: every event of it, in order, numbered.
    let result = server.run("flaky");
    let id = result["execution_id"].as_str().unwrap();
    let mut kinds = Vec::new();
    let mut last_seq = start_seq;
    while kinds.last().map(String::as_str) != Some("finished") {
        let m = ws_next(&mut all);
        assert_eq!(m["type"], "event", "{m}");
        let seq = m["seq"].as_u64().unwrap();
        assert_eq!(seq, last_seq + 1, "numbered without gaps");
        last_seq = seq;
        assert_eq!(m["event"]["execution_id"], id);
        kinds.push(m["event"]["kind"].as_str().unwrap().to_string());
    }
    assert_eq!(kinds, crate::util::FLAKY_LIFECYCLE);
    let f = ws_next(&mut finished_only);
    assert_eq!(
        (
            f["event"]["kind"].as_str(),
            f["event"]["execution_id"].as_str()
        ),
        (Some("finished"), Some(id))
    );
    assert_eq!(f["event"]["result"]["success"], true);

    // A subscription can change while connected; a bad message is answered, not fatal.
    all.send(Message::text(r#"{"subscribe": {"scripts": ["failing"]}}"#))
        .unwrap();
    assert_eq!(ws_next(&mut all)["type"], "subscribed");
    all.send(Message::text(r#"{"subscribe": {"kinds": ["nope"]}}"#))
        .unwrap();
    assert_eq!(ws_next(&mut all)["error"]["code"], "bad_message");
    all.send(Message::text("{")).unwrap();
    assert_eq!(ws_next(&mut all)["type"], "error");
    server.run("hello");
    server.run("failing");
    let m = ws_next(&mut all);
    assert_eq!(
        m["event"]["script_id"], "failing",
        "hello was filtered out: {m}"
    );

    // Shutdown closes the feed with 1001.
    let (status, stderr) = server.stop();
    assert!(status.success(), "{stderr}");
    let close = loop {
        match all.read() {
            Ok(Message::Close(frame)) => break frame,
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1001), "going away");
    drop(tmp);
}

#[test]
fn metrics_are_one_valid_exposition_with_every_exporter() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let exporter = r#"name = "NAME"
version = "1.0.0"
kind = "exporter"
component = "COMPONENT"
[config]
mode = "MODE"
"#;
    write_plugin(
        &plugins,
        "counts",
        "fixture_exporter.wasm",
        &exporter.replace("MODE", "count"),
    );
    write_plugin(
        &plugins,
        "broken",
        "fixture_exporter.wasm",
        &exporter.replace("MODE", "refuse-render"),
    );
    let server = Server::start(&example_registry(), &["--plugins"], |cmd| {
        cmd.arg(&plugins);
    });
    for _ in 0..2 {
        server.run("hello");
    }
    server.run("failing");
    let r = get(&server.url("/metrics"));
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = r.body;
    for line in [
        "metaclaude_plugin_up{plugin=\"counts\"} 1",
        "metaclaude_server_up 1",
        "metaclaude_server_registry_scripts 23",
        "fixture_executions_finished_total{script=\"hello\"} 2",
        "fixture_executions_finished_total{script=\"failing\"} 1",
        "metaclaude_server_exporter_render_failures_total 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
    // Every call into a plugin is timed: 3 batches and 2 renders at least for `counts`.
    let calls: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("metaclaude_plugin_call_duration_seconds_count{plugin=\"counts\"} ")
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no call-latency histogram:\n{text}"));
    assert!(calls >= 2, "{calls} calls");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (installed by cargo xtask test)");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The registry is reloaded when its file changes (or on SIGHUP and POST /api/v1/reload),
/// validated first: a bad one is reported with every problem and the old one stays.
#[test]
fn the_registry_reloads_and_a_bad_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = sleepy_registry(tmp.path());
    let server = Server::start(&registry, &["--no-plugins"], |_| {});
    let count = || {
        get(&server.url("/api/v1/scripts")).json()["scripts"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count(), 3);
    let text = std::fs::read_to_string(&registry).unwrap();
    let grown = text.replace(
        r#"{"id": "fail","#,
        r#"{"id": "hello2", "path": "scripts/hello.sh"}, {"id": "fail","#,
    );
    std::fs::write(&registry, &grown).unwrap();
    crate::util::wait_until(
        "not reloaded",
        Duration::from_secs(30),
        || count() == 4,
        || server.stderr(),
    );
    assert_eq!(server.run("hello2")["success"], true);

    // A bad registry: reported, the one in force stays.
    std::fs::write(
        &registry,
        grown.replace("\"timeout_ms\": 120000", "\"timout_ms\": 1"),
    )
    .unwrap();
    crate::util::wait_until(
        "no report of the bad registry",
        Duration::from_secs(30),
        || {
            server
                .stderr()
                .contains("scripts[0].timout_ms: unknown key; did you mean `timeout_ms`?")
        },
        || server.stderr(),
    );
    assert!(server
        .stderr()
        .contains("registry not reloaded, the previous one stays in force"));
    assert_eq!(
        server.stderr().matches("registry not reloaded").count(),
        1,
        "reported once: {}",
        server.stderr()
    );
    assert_eq!(count(), 4);
    let r = post(&server.url("/api/v1/reload"), "");
    assert_eq!(r.status, 422, "{}", r.body);
    let e = r.json();
    assert_eq!(e["error"]["code"], "invalid_registry");
    assert!(
        e["error"]["problems"][0]
            .as_str()
            .unwrap()
            .contains("timout_ms"),
        "{e}"
    );
    let ready = get(&server.url("/readyz")).json();
    assert!(ready["registry"]["last_reload_error"]
        .as_str()
        .unwrap()
        .contains("timout_ms"));

    // Fixed, and taken at once on SIGHUP.
    std::fs::write(&registry, &text).unwrap();
    signal(server.pid(), libc::SIGHUP);
    crate::util::wait_until(
        "SIGHUP did not reload",
        Duration::from_secs(30),
        || count() == 3,
        || server.stderr(),
    );
    assert_eq!(post(&server.url("/api/v1/reload"), "").json()["scripts"], 3);
}

/// Plugins are reloaded (by the watch and by the API) while requests run; no request
/// fails and the new plugin sees the executions after it.
#[test]
fn plugins_reload_while_requests_run() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let logs = tmp.path().join("logs");
    write_log_sink(&plugins, &logs, "", "");
    let server = Server::start(&example_registry(), &["--plugins"], |cmd| {
        cmd.arg(&plugins);
    });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = server.url("/api/v1/executions");
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (stop, answered, url) = (stop.clone(), answered.clone(), url.clone());
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = post(&url, r#"{"script_id": "hello"}"#);
                    assert_eq!(r.status, 200, "{}", r.body);
                    assert_eq!(r.json()["success"], true);
                    ids.push(r.json()["execution_id"].as_str().unwrap().to_string());
                    answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                ids
            })
        })
        .collect();
    // Requests answered before the reload, and some begun after it (two clients: three
    // more answers than at the reload take at least one begun after it).
    let answers_reach = |n: usize| {
        wait_until(
            &format!("{n} requests answered"),
            Duration::from_secs(60),
            || answered.load(std::sync::atomic::Ordering::Relaxed) >= n,
            || server.stderr(),
        )
    };
    answers_reach(2);
    let out = tmp.path().join("out");
    crate::plugins::recorder(&plugins, &out);
    let report = post(&server.url("/api/v1/plugins/reload"), "").json();
    assert_eq!(report["added"], json!(["recorder"]), "{report}");
    let listed = get(&server.url("/api/v1/plugins")).json();
    assert_eq!(listed["plugins"].as_array().unwrap().len(), 2);
    answers_reach(answered.load(std::sync::atomic::Ordering::Relaxed) + 3);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let ids: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(ids.len() > 4, "{} requests", ids.len());
    let (status, stderr) = server.stop();
    assert!(status.success(), "{stderr}");
    let recorded = std::fs::read_to_string(out.join("events.txt")).unwrap();
    assert!(
        recorded.lines().any(|l| l.ends_with(" finished")),
        "{recorded}"
    );
    let logged = crate::acknowledged::logged_ids(&logs);
    for id in &ids {
        assert!(
            logged.contains(id),
            "{id} answered by the API but not in the log"
        );
    }
}

/// Shutdown under load: every execution the API reported is in the log, running ones get
/// their grace then end as a timeout would, and the server exits 0.
#[test]
fn shutdown_under_load_loses_nothing_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = sleepy_registry(tmp.path());
    let logs = tmp.path().join("logs");
    let plugins = tmp.path().join("plugins");
    write_log_sink(&plugins, &logs, "", "");
    let server = Server::start(&registry, &["--grace", "1", "--plugins"], |cmd| {
        cmd.arg(&plugins);
    });
    let url = server.url("/api/v1/executions");
    let long = {
        let url = url.clone();
        std::thread::spawn(move || {
            post(&url, r#"{"script_id": "sleep", "inputs": {"seconds": 60}}"#)
        })
    };
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (url, answered) = (url.clone(), answered.clone());
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                loop {
                    // Refused connections, or 503, once the server stops taking work.
                    let Ok(mut r) = agent()
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(r#"{"script_id": "hello"}"#)
                    else {
                        return ids;
                    };
                    if r.status() != 200 {
                        return ids;
                    }
                    let v: Value =
                        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                    ids.push(v["execution_id"].as_str().unwrap().to_string());
                    answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    poll_json(
        &server.url("/api/v1/executions?state=running&script=sleep"),
        "sleep runs",
        |v| {
            v["executions"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["state"] == "running"))
        },
    );
    // Under load: the clients' requests are being answered (and go on) when it stops.
    wait_until(
        "the clients' requests answered",
        Duration::from_secs(60),
        || answered.load(std::sync::atomic::Ordering::Relaxed) >= 4,
        || server.stderr(),
    );
    let (status, stderr) = server.stop();
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("grace over: ending 1 running"), "{stderr}");
    let ended = long.join().unwrap();
    assert_eq!(
        ended.status, 200,
        "the waiting request got its answer: {}",
        ended.body
    );
    let ended = ended.json();
    assert_eq!(ended["error_details"]["category"], "TIMEOUT");
    assert_eq!(ended["error_details"]["context"]["ended_by"], "shutdown");
    let mut reported: HashSet<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(reported.len() > 3, "{} reported", reported.len());
    reported.insert(ended["execution_id"].as_str().unwrap().to_string());
    let logged = crate::acknowledged::logged_ids(&logs);
    let missing: Vec<&String> = reported.iter().filter(|id| !logged.contains(*id)).collect();
    assert!(missing.is_empty(), "reported but not logged: {missing:?}");
}

#[test]
fn too_many_executions_at_once_are_refused_with_retry_after() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = sleepy_registry(tmp.path());
    let server = Server::start(
        &registry,
        &[
            "--no-plugins",
            "--concurrency",
            "1",
            "--queue",
            "1",
            "--grace",
            "0",
        ],
        |_| {},
    );
    let url = server.url("/api/v1/executions?wait=false");
    let body = r#"{"script_id": "sleep", "inputs": {"seconds": 30}}"#;
    assert_eq!(post(&url, body).status, 202);
    assert_eq!(post(&url, body).status, 202, "one may wait for a slot");
    let r = post(&url, body);
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["error"]["code"], "busy");
    let m = get(&server.url("/metrics")).body;
    assert!(
        m.contains("metaclaude_server_executions_rejected_total 1"),
        "{m}"
    );
    let (status, _) = server.stop();
    assert!(status.success());
}

/// The defaults are the point: see README "Security".
#[test]
fn security_defaults_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = sleepy_registry(tmp.path());

    // Any address but loopback needs a token: serve refuses to start and says how.
    let out = bin()
        .args([
            "serve",
            "--no-plugins",
            "--bind",
            "0.0.0.0",
            "--http-port",
            "0",
            "--registry",
        ])
        .arg(&registry)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to serve on 0.0.0.0:0 without a token")
            && stderr.contains("--token-file"),
        "{stderr}"
    );
    let short_dir = tmp.path().join("short");
    std::fs::create_dir(&short_dir).unwrap();
    let short = token_file(&short_dir, "abc");
    let out = bin()
        .args(["serve", "--no-plugins", "--http-port", "0", "--token-file"])
        .arg(&short)
        .arg("--registry")
        .arg(&registry)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("too short"));

    let token = "c2VjcmV0LXRva2VuLWZvci10ZXN0cy1vbmx5";
    let token_file = token_file(tmp.path(), token);
    let server = Server::start(
        &registry,
        &["--no-plugins", "--max-body-bytes", "1024"],
        |cmd| {
            cmd.env("METACLAUDE_TOKEN_FILE", &token_file);
        },
    );
    let scripts = server.url("/api/v1/scripts");
    let r = get(&scripts);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(r.json()["error"]["code"], "unauthorized");
    assert_eq!(
        get(&server.url("/healthz")).status,
        200,
        "liveness needs no token"
    );
    let authed = |path: &str| {
        reply(
            agent()
                .get(&server.url(path))
                .header("authorization", &format!("Bearer {token}"))
                .call(),
        )
    };
    assert_eq!(authed("/api/v1/scripts").status, 200);
    let wrong = reply(
        agent()
            .get(&scripts)
            .header("authorization", "Bearer nope")
            .call(),
    );
    assert_eq!(wrong.status, 401);
    // A browser opens the printed URL once: a cookie, and the token out of the URL.
    let r = get(&server.url(&format!("/api/v1/scripts?token={token}")));
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/api/v1/scripts"));
    let cookie = r.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let with_cookie = reply(
        agent()
            .get(&scripts)
            .header("cookie", cookie.split(';').next().unwrap())
            .call(),
    );
    assert_eq!(with_cookie.status, 200);
    // Every response has the strict headers, errors too; no CORS.
    for r in [&with_cookie, &wrong] {
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert!(r
            .header("content-security-policy")
            .unwrap()
            .contains("default-src 'self'"));
        assert!(r.header("access-control-allow-origin").is_none());
    }

    // DNS rebinding: a Host header that does not name the server.
    let rebound = reply(
        agent()
            .get(&scripts)
            .header("host", "evil.example")
            .header("authorization", &format!("Bearer {token}"))
            .call(),
    );
    assert_eq!(rebound.status, 403);
    assert_eq!(rebound.json()["error"]["code"], "host_not_allowed");

    // A body over the limit.
    let big = format!(
        r#"{{"script_id": "hello", "inputs": {{"x": "{}"}}}}"#,
        "a".repeat(4096)
    );
    let r = reply(
        agent()
            .post(&server.url("/api/v1/executions"))
            .header("authorization", &format!("Bearer {token}"))
            .header("content-type", "application/json")
            .send(&big),
    );
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "body_too_large");

    // A WebSocket from another site's page (even with the token), and one without it.
    let ws = server.ws_url("/ws");
    let mut foreign = ws.as_str().into_client_request().unwrap();
    foreign
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    foreign
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    let host = ws.trim_start_matches("ws://").split('/').next().unwrap();
    match tungstenite::client(foreign, TcpStream::connect(host).unwrap()) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            assert_eq!(r.status(), 403)
        }
        other => panic!("a foreign origin was let in: {:?}", other.map(|_| ())),
    }
    match ws_connect(&ws, None) {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("no token, yet connected: {:?}", other.map(|_| ())),
    }
    let mut request = ws.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
        .headers_mut()
        .insert("origin", server.http.parse().unwrap());
    let host = ws.trim_start_matches("ws://").split('/').next().unwrap();
    let (mut socket, _) = tungstenite::client(request, TcpStream::connect(host).unwrap()).unwrap();
    assert_eq!(ws_next(&mut socket)["type"], "snapshot");
}

/// A feed client that never reads does not grow the server's memory: it is sent fresh
/// snapshots or cut off, and executions go on at full speed.
#[test]
fn a_client_that_never_reads_does_not_grow_memory() {
    let tmp = tempfile::tempdir().unwrap();
    // 64 KiB of output per execution: the feed cuts its copy, memory keeps the result.
    let registry = noisy_registry(tmp.path());
    let server = Server::start(
        &registry,
        &[
            "--no-plugins",
            "--ws-send-timeout",
            "1",
            "--keep-recent",
            "20",
        ],
        |_| {},
    );
    let rss = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .unwrap()
    };
    // Connect with a tiny receive buffer (set before connecting, so the window stays
    // small), take nothing, never read again.
    let host: std::net::SocketAddrV4 = server
        .ws_url("/ws")
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let stream = tiny_window_stream(host);
    let (_stuck, _) = tungstenite::client(server.ws_url("/ws").as_str(), stream).unwrap();
    let url = server.url("/api/v1/executions");
    let run = |n: usize| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || {
                    for _ in 0..n {
                        assert_eq!(post(&url, r#"{"script_id": "noisy"}"#).status, 200);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    };
    run(25);
    let warm = rss();
    let started = Instant::now();
    run(100);
    let took = started.elapsed();
    let after = rss();
    // The server cuts the client off once a send to it has waited a second
    // (`--ws-send-timeout 1`): on a quick machine the executions are all done before
    // that, so the count is awaited (bounded), not read once (which failed 2 runs in 5
    // run alone here).
    let metrics = || get(&server.url("/metrics")).body;
    let cut_off = || {
        metrics()
            .lines()
            .find_map(|l| l.strip_prefix("metaclaude_server_websocket_cut_off_total "))
            .map(str::to_string)
            .unwrap()
    };
    wait_until(
        "the stuck client was cut off",
        Duration::from_secs(30),
        || cut_off() != "0",
        metrics,
    );
    assert_eq!(cut_off(), "1", "one client cut off:\n{}", metrics());
    // Memory holds the last 20 results; the stuck client adds nothing.
    assert!(
        after < warm + 16 * 1024,
        "RSS grew from {warm} kB to {after} kB over 400 executions ({took:?})"
    );
}

/// A TCP connection to `addr` whose receive buffer is set to its minimum before it
/// connects: a peer that never reads fills it at once.
fn tiny_window_stream(addr: std::net::SocketAddrV4) -> TcpStream {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns until it hands it to
    // TcpStream; the sockaddr_in is fully initialised.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let size: libc::c_int = 1024;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*addr.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let r = libc::connect(
            fd,
            &sa as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}

/// The server checked against its own OpenAPI document by a real tool: schemathesis
/// (PyPI; `cargo xtask test` installs it into target/tools/py) generates valid and
/// invalid requests for every operation and checks statuses, content types, response
/// schemas, that invalid data is rejected and valid data accepted, and that auth holds.
#[test]
fn the_api_conforms_to_its_openapi_document() {
    let st = crate::util::root().join("target/tools/py/bin/st");
    assert!(
        st.is_file(),
        "{} is missing: run `cargo xtask test` (it installs schemathesis), or \
         target/tools/py/bin/pip install schemathesis==4.32.5",
        st.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let registry = sleepy_registry(tmp.path());
    // Every script quick: schemathesis reads an answer for 10 s at most, and `sleep`
    // waits 30 s by default.
    let text = std::fs::read_to_string(&registry).unwrap();
    std::fs::write(
        &registry,
        text.replace(r#""default": 30"#, r#""default": 0"#),
    )
    .unwrap();
    let token = "c2NoZW1hdGhlc2lzLXRva2VuLWZvci10ZXN0cw";
    let token_file = token_file(tmp.path(), token);
    let server = Server::start(&registry, &["--no-plugins", "--token-file"], |cmd| {
        cmd.arg(&token_file)
            .env("METACLAUDE_LOG_DIR", tmp.path().join("logs"));
    });
    // A silence the schema allows may still be refused (422): its regex must compile, its
    // matchers must not all match an alert without their labels, its end must be after
    // now; no schema says so.
    std::fs::write(
        tmp.path().join("schemathesis.toml"),
        "[[operations]]\ninclude-path = \"/api/v1/silences\"\ninclude-method = \"POST\"\n\
         checks.positive_data_acceptance.expected-statuses = [\"2xx\", \"401\", \"403\", \"404\", \"409\", \"422\", \"429\"]\n",
    )
    .unwrap();
    let out = Command::new(&st)
        .current_dir(tmp.path())
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "")
        .args(["run", &server.url("/api/v1/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all", "--max-examples", "40", "--seed", "1"])
        .args(["--generation-database", "none"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found mismatches:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("20 selected / 20 total"), "{report}");
}

/// A feed client that falls behind by more than the feed holds is sent a fresh snapshot
/// (`reason: lagged`) instead of the events it missed, then goes on from there.
#[test]
fn a_client_that_falls_behind_gets_a_fresh_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = noisy_registry(tmp.path());
    let server = Server::start(
        &registry,
        &[
            "--no-plugins",
            "--ws-send-timeout",
            "60",
            "--keep-recent",
            "20",
        ],
        |_| {},
    );
    let host: std::net::SocketAddrV4 = server
        .ws_url("/ws")
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let stream = tiny_window_stream(host);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (mut behind, _) = tungstenite::client(server.ws_url("/ws").as_str(), stream).unwrap();
    // 800 executions whose finished events carry 8 KiB each: more than the socket buffers
    // hold (so the server's send to this client blocks), then more than the feed's 1024
    // events while it is blocked.
    let url = server.url("/api/v1/executions");
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    assert_eq!(post(&url, r#"{"script_id": "noisy"}"#).status, 200);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let mut seen = 0;
    let lagged = loop {
        let m = ws_next(&mut behind);
        seen += 1;
        if m["type"] == "snapshot" && m["reason"] == "lagged" {
            break m;
        }
        assert!(seen < 10_000, "no fresh snapshot after {seen} messages");
    };
    assert!(
        lagged["missed"].as_u64().unwrap() > 0,
        "{}",
        lagged["missed"]
    );
    assert_eq!(lagged["totals"]["executions"], 800);
    // It goes on from the snapshot.
    server.run("noisy");
    let next = ws_next(&mut behind);
    assert_eq!(next["type"], "event", "{next}");
    assert!(next["seq"].as_u64().unwrap() > lagged["seq"].as_u64().unwrap());
    let m = get(&server.url("/metrics")).body;
    assert!(
        m.contains("metaclaude_server_websocket_resyncs_total 1"),
        "{m}"
    );
}

/// A registry in `dir` with one script, `noisy`, that prints 64 KiB (the feed cuts its
/// copy to 8 KiB).
fn noisy_registry(dir: &Path) -> PathBuf {
    let scripts = dir.join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::write(
        scripts.join("noisy.sh"),
        "#!/bin/sh\nhead -c 65536 /dev/zero | tr '\\0' x\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        scripts.join("noisy.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let registry = dir.join("registry.json");
    std::fs::write(
        &registry,
        r#"{"scripts": [{"id": "noisy", "path": "scripts/noisy.sh"}]}"#,
    )
    .unwrap();
    registry
}
