//! The plugin runtime with real components built from `tests/fixtures/plugins` and
//! `plugins/` (by `cargo xtask build-plugins`, which `cargo xtask test` runs first).
//! Hostile plugins run beside a well-behaved recorder: scripts and the recorder must not
//! notice.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use metaclaude::plugin::{Health, PluginHost};
use metaclaude::{ExecutionRequest, ExecutorConfig, Registry, ToolExecutionService};

use crate::util::{
    assert_golden_errors, bin, example_registry, hang_guard, root, run_hello_with_plugins,
};

/// A built component; tests fail (never skip) when the fixtures were not built.
pub fn component(name: &str) -> PathBuf {
    let built = root()
        .join("plugins/target/wasm32-wasip2/release")
        .join(name);
    assert!(
        built.is_file(),
        "component {name} is not built: run `cargo xtask build-plugins --all` (cargo xtask test does)"
    );
    built
}

/// Writes a plugin folder: `plugin.toml` from `manifest`, with `COMPONENT` replaced by the
/// component's absolute path; the operator grants it what it asks for (as every plugin
/// the tests set up to use; `tests/cli/grants.rs` tests the plugins not granted).
pub fn write_plugin(plugins: &Path, name: &str, wasm: &str, manifest: &str) -> PathBuf {
    let dir = plugins.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let text = manifest
        .replace("COMPONENT", &component(wasm).display().to_string())
        .replace("NAME", name);
    std::fs::write(dir.join("plugin.toml"), text).unwrap();
    crate::util::grant_all(plugins);
    dir
}

/// A recorder sink writing `<execution_id> <kind>` lines into `out`.
pub fn recorder(plugins: &Path, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    write_plugin(
        plugins,
        "recorder",
        "fixture_sink.wasm",
        &format!(
            r#"name = "NAME"
version = "1.0.0"
kind = "sink"
component = "COMPONENT"
[config]
mode = "record"
[capabilities]
dirs = [{{ host = "{}", guest = "/out", mode = "rw" }}]
"#,
            out.display()
        ),
    );
}

fn hostile(plugins: &Path, mode: &str, limits: &str, out: Option<&Path>) {
    fixture_sink(plugins, &format!("hostile-{mode}"), mode, "", limits, out);
}

/// A plugin folder `name` of the fixture sink in `mode`, with `config` lines beside the
/// mode, `limits` lines, and `out` (if any) granted read-write as `/out`.
fn fixture_sink(
    plugins: &Path,
    name: &str,
    mode: &str,
    config: &str,
    limits: &str,
    out: Option<&Path>,
) {
    fixture_sink_with(plugins, name, "", mode, config, limits, out);
}

/// [`fixture_sink`] with `top` (top-level manifest keys: `event_record = ...`) added.
fn fixture_sink_with(
    plugins: &Path,
    name: &str,
    top: &str,
    mode: &str,
    config: &str,
    limits: &str,
    out: Option<&Path>,
) {
    let caps = match out {
        Some(o) => {
            std::fs::create_dir_all(o).unwrap();
            format!(
                "[capabilities]\ndirs = [{{ host = \"{}\", guest = \"/out\", mode = \"rw\" }}]\n",
                o.display()
            )
        }
        None => String::new(),
    };
    write_plugin(
        plugins,
        name,
        "fixture_sink.wasm",
        &format!(
            "name = \"NAME\"\nversion = \"1.0.0\"\nkind = \"sink\"\ncomponent = \"COMPONENT\"\n{top}\n\
             [config]\nmode = \"{mode}\"\n{config}\n{caps}[limits]\n{limits}\n"
        ),
    );
}

fn cache_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("metaclaude-test-component-cache");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `n` executions of `hello` with the plugins in `dir` loaded, then shuts the plugins
/// down (everything delivered); returns the execution ids and the plugin host.
fn run_with_plugins(dir: &Path, n: usize) -> (Vec<String>, Arc<PluginHost>) {
    let mut host = PluginHost::new(Some(cache_dir())).unwrap();
    let errors = host.load_dir(dir).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let host = Arc::new(host);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut service = ToolExecutionService::new(
        Registry::load(example_registry()).unwrap(),
        ExecutorConfig::default(),
    );
    service.add_sink(host.clone());
    let mut ids = Vec::new();
    for i in 0..n {
        let r = rt.block_on(
            service.execute(ExecutionRequest::new("hello").input("name", format!("p{i}"))),
        );
        assert!(
            r.success,
            "scripts must be untouched by plugins: {:?}",
            r.error_details
        );
        assert_eq!(r.stdout, format!("Hello, p{i}!\n"));
        ids.push(r.execution_id);
    }
    host.shutdown();
    (ids, host)
}

fn assert_recorded_everything(out: &Path, ids: &[String]) {
    let text = std::fs::read_to_string(out.join("events.txt")).unwrap_or_default();
    for id in ids {
        for kind in ["queued", "started", "finished"] {
            let line = format!("{id} {kind}");
            assert!(
                text.lines().any(|l| l == line),
                "recorder missed `{line}`:\n{text}"
            );
        }
    }
    assert_eq!(text.lines().count(), ids.len() * 3, "{text}");
}

#[test]
fn hostile_plugins_are_contained_and_quarantined() {
    for (mode, limits, cause) in [
        ("loop", "call_timeout_ms = 200", "deadline exceeded"),
        ("memory-bomb", "memory_mb = 32", "memory"),
        ("trap", "", "panic"),
        ("recursion", "", "stack overflow"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let plugins = tmp.path().join("plugins");
        let good = tmp.path().join("good");
        recorder(&plugins, &good);
        hostile(
            &plugins,
            mode,
            &format!("{limits}\nbatch_max = 1\nmax_failures = 3\nfailure_window_s = 600"),
            None,
        );
        // A plugin that held the host up (a loop past its deadline, a restart waited on
        // forever) would hang the run: four runs take seconds, a hang is reported at 5 min.
        let dir = plugins.clone();
        let (ids, host) = hang_guard(
            &format!("four runs beside the {mode} plugin"),
            Duration::from_secs(300),
            move || run_with_plugins(&dir, 4),
        );
        assert_recorded_everything(&good, &ids);
        let list = host.list();
        let bad = list.iter().find(|p| p.name.starts_with("hostile")).unwrap();
        assert!(
            matches!(bad.health, Health::Quarantined(_)),
            "{mode}: {:?}",
            bad.health
        );
        assert_eq!(bad.failures, 3, "{mode}: quarantined after max_failures");
        assert_eq!(bad.restarts, 2, "{mode}: restarted between failures");
        assert!(
            bad.dropped > 0,
            "{mode}: events it could not take are counted"
        );
        let err = bad.last_error.clone().unwrap_or_default();
        assert!(
            err.to_lowercase().contains(cause),
            "{mode}: last error {err}"
        );
        assert!(
            err.len() < 600 && !err.contains("coredump") && !err.contains("wasm backtrace"),
            "{mode}: the cause, not kilobytes of dump: {err}"
        );
        let good = list.iter().find(|p| p.name == "recorder").unwrap();
        assert_eq!(good.health, Health::Running);
        assert_eq!(good.delivered, 12);
        assert_eq!(good.dropped, 0);
    }
}

/// Runs `n` executions with a hostile plugin (`mode`, `limits`) beside the recorder,
/// checks the recorder got every event, and returns what the host says of the hostile one.
fn run_beside_recorder(mode: &str, limits: &str, n: usize) -> metaclaude::plugin::PluginInfo {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let good = tmp.path().join("good");
    recorder(&plugins, &good);
    hostile(&plugins, mode, limits, None);
    let (ids, host) = run_with_plugins(&plugins, n);
    assert_recorded_everything(&good, &ids);
    let name = format!("hostile-{mode}");
    host.list().into_iter().find(|p| p.name == name).unwrap()
}

#[test]
fn disable_policy_stops_at_the_first_failure() {
    let bad = run_beside_recorder("trap", "failure_policy = \"disable\"\nbatch_max = 1", 2);
    assert!(
        matches!(bad.health, Health::Disabled(_)),
        "{:?}",
        bad.health
    );
    assert_eq!(bad.failures, 1);
    assert_eq!(bad.restarts, 0);
}

#[test]
fn a_log_flood_is_cut_off_not_forwarded() {
    let flood = run_beside_recorder("log-flood", "call_timeout_ms = 60000\nbatch_max = 100", 1);
    assert_eq!(flood.health, Health::Running);
    assert_eq!(flood.failures, 0);
    assert_eq!(flood.delivered, 3);
}

#[test]
fn files_outside_the_grants_do_not_exist_for_a_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let out = tmp.path().join("out");
    hostile(&plugins, "read-outside", "", Some(&out));
    run_with_plugins(&plugins, 1);
    let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(
        report
            .lines()
            .all(|l| l.starts_with("read-outside: denied")),
        "{report}"
    );
}

/// A plugin's append to a file is done by the time its `write` returns: the host's append
/// stream writes on the plugin's own thread (wasmtime-wasi's handed each write to a
/// thread of its blocking pool and was busy until the plugin waited for it). So
/// `check-write` right after a write allows a whole write again, where it said 0 before;
/// and a whole write is 16 MiB, where it was 64 KiB (the log sink's longest line appended
/// whole). Its writes are appended straight from the plugin's memory, and a write to the
/// stream that takes a dropped append stream's handle (stderr's) never reaches the file.
#[test]
fn a_plugins_append_is_done_when_its_write_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let out = tmp.path().join("out");
    fixture_sink(
        &plugins,
        "probe",
        "append-probe",
        "",
        "batch_max = 1",
        Some(&out),
    );
    run_with_plugins(&plugins, 1);
    let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert!(!lines.is_empty(), "no batch reached the probe");
    assert!(
        lines
            .iter()
            .all(|l| *l == "append-probe: check-write 16777216 then 16777216"),
        "{report}"
    );
    let appended = std::fs::read_to_string(out.join("append-probe.log")).unwrap();
    assert_eq!(appended, "probe\n".repeat(lines.len()));
}

#[test]
fn udp_reaches_only_granted_targets() {
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let granted = receiver.local_addr().unwrap();
    let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let not_granted = other.local_addr().unwrap();

    let port = granted.port();
    let by_name = format!("localhost:{port}");
    for (grant, target, expect) in [
        (granted.to_string(), granted.to_string(), "udp: SENT"),
        (granted.to_string(), not_granted.to_string(), "udp: denied"),
        // Granted an address, the plugin may not look names up at all.
        (granted.to_string(), by_name.clone(), "udp: denied"),
        // Granted a name, it may look it up and send to what it resolves to.
        (by_name.clone(), by_name.clone(), "udp: SENT"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let plugins = tmp.path().join("plugins");
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        write_plugin(
            &plugins,
            "udp",
            "fixture_sink.wasm",
            &format!(
                r#"name = "NAME"
version = "1.0.0"
kind = "sink"
component = "COMPONENT"
[config]
mode = "udp"
target = "{target}"
[capabilities]
udp = ["{grant}"]
dirs = [{{ host = "{}", guest = "/out", mode = "rw" }}]
[limits]
batch_max = 1000
"#,
                out.display()
            ),
        );
        run_with_plugins(&plugins, 1);
        let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
        assert!(
            report.lines().next().unwrap().starts_with(expect),
            "{target}: {report}"
        );
    }
    for _ in 0..2 {
        let mut buf = [0u8; 64];
        let (n, _) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"fixture:1|c");
    }
    // Nothing else came, to either socket: every send was made (or refused) before its
    // host shut down, and a loopback datagram is queued at its receiver before the send
    // returns.
    for (socket, what) in [(&receiver, "the granted target"), (&other, "the other")] {
        socket.set_nonblocking(true).unwrap();
        let got = socket.recv_from(&mut [0u8; 64]);
        assert!(
            got.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
            "{what} received a datagram a denied send should not have sent: {got:?}"
        );
    }
}

/// A notifier POSTs the host's "plugin_quarantined" alert: to a granted destination it
/// arrives; to any other the `http` import refuses before connecting.
#[test]
fn http_reaches_only_granted_destinations() {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        use std::io::Write;
        let (mut s, _) = server.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let request = read_request(&mut s);
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        request
    });
    for (url, expect) in [
        (
            format!("http://127.0.0.1:{port}/hook"),
            "http: POSTED status 200",
        ),
        (
            format!("http://127.0.0.2:{port}/hook"),
            "http: refused: destination",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let plugins = tmp.path().join("plugins");
        let out = tmp.path().join("out");
        hostile(&plugins, "trap", "max_failures = 1", None);
        notifier(&plugins, &out, &url, &format!("http://127.0.0.1:{port}/*"));
        run_with_plugins(&plugins, 1);
        let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
        assert!(report.starts_with(expect), "{url}: {report}");
    }
    let request = handle.join().unwrap();
    assert!(request.starts_with("POST /hook HTTP/1.1"), "{request}");
    assert!(
        request.contains("\"type\":\"plugin_quarantined\""),
        "{request}"
    );
}

/// Reads one HTTP request: the head, then as many body bytes as Content-Length says.
fn read_request(s: &mut impl std::io::Read) -> String {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                break;
            }
        }
        assert!(n > 0, "connection closed mid-request");
    }
    String::from_utf8_lossy(&request).to_string()
}

/// A notifier that POSTs every alert to `url`, granted `grant`, reporting into `out`.
fn notifier(plugins: &Path, out: &Path, url: &str, grant: &str) {
    std::fs::create_dir_all(out).unwrap();
    write_plugin(
        plugins,
        "notifier",
        "fixture_notifier.wasm",
        &format!(
            r#"name = "NAME"
version = "1.0.0"
kind = "notifier"
component = "COMPONENT"
[config]
url = "{url}"
[capabilities]
http = ["{grant}"]
dirs = [{{ host = "{}", guest = "/out", mode = "rw" }}]
"#,
            out.display()
        ),
    );
}

/// A throwaway CA, made with the real `openssl`, and a certificate it signed for
/// `localhost`; returns the paths of the CA certificate, the server's and its key.
fn test_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl must be installed (cargo xtask test installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let (ca, ca_key) = (format!("{name}-ca.pem"), format!("{name}-ca.key"));
    let (cert, key, csr) = (
        format!("{name}-server.pem"),
        format!("{name}-server.key"),
        format!("{name}-server.csr"),
    );
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                &ca_key,
                "-out",
                &ca,
                "-days",
                "2",
                "-subj",
                &format!("/CN={name} test CA"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-out",
        &cert,
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (dir.join(ca), dir.join(cert), dir.join(key))
}

/// An https server on loopback answering each request 200 with a chunked "ok"; returns
/// its port and a handle yielding the requests it read (handshakes the client refused
/// are skipped).
fn https_server(
    cert: &Path,
    key: &Path,
    connections: usize,
) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        use std::io::Write;
        let mut requests = Vec::new();
        for _ in 0..connections {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let connection = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(connection, tcp);
            let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let request = read_request(&mut tls);
                tls.write_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                )
                .unwrap();
                tls.conn.send_close_notify();
                tls.flush().unwrap();
                request
            }));
            if let Ok(request) = served {
                requests.push(request);
            }
        }
        requests
    });
    (port, handle)
}

/// https: the alert reaches a server whose certificate chains to a root the host trusts
/// (here through SSL_CERT_FILE) and names the URL's host; a server the trusted roots do
/// not vouch for is refused before anything is sent.
#[test]
fn https_reaches_only_servers_with_a_trusted_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_ca(tmp.path(), "trusted");
    let (other_ca, _, _) = test_ca(tmp.path(), "other");
    let (port, server) = https_server(&cert, &key, 2);
    for (trust, expect) in [
        (&ca, "http: POSTED status 200"),
        (&other_ca, "http: refused: "),
    ] {
        let case = tempfile::tempdir().unwrap();
        let plugins = case.path().join("plugins");
        let out = case.path().join("out");
        hostile(&plugins, "trap", "max_failures = 1", None);
        let url = format!("https://localhost:{port}/hook");
        notifier(&plugins, &out, &url, &format!("https://localhost:{port}/*"));
        run_hello_with_plugins(bin().env("SSL_CERT_FILE", trust), &plugins);
        let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
        assert!(report.starts_with(expect), "{}: {report}", trust.display());
        if trust == &other_ca {
            assert!(report.contains("certificate"), "{report}");
        }
    }
    let requests = server.join().unwrap();
    assert_eq!(
        requests.len(),
        1,
        "only the trusted exchange reaches the server"
    );
    assert!(
        requests[0].starts_with("POST /hook HTTP/1.1"),
        "{}",
        requests[0]
    );
    assert!(requests[0].contains("\"type\":\"plugin_quarantined\""));
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    recorder(&plugins, &tmp.path().join("out"));
    let cache = tmp.path().join("cache");
    for expected in [
        metaclaude::plugin::runtime::engine::LoadSource::Compiled,
        metaclaude::plugin::runtime::engine::LoadSource::Cache,
    ] {
        let mut host = PluginHost::new(Some(cache.clone())).unwrap();
        assert!(host.load_dir(&plugins).unwrap().is_empty());
        assert_eq!(host.list()[0].load, expected);
    }
}

/// Each bad plugin folder in `bad_plugins/` beside the exact error `plugins check` gives.
#[test]
fn bad_plugins_give_their_golden_errors() {
    let dir = root().join("tests/cli/bad_plugins");
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    // Each is granted what it asks for (those whose manifest is valid), so that what is
    // wrong with it is what `check` says, not that it is not granted.
    let tmp = tempfile::tempdir().unwrap();
    let grants = tmp.path().join("grants.toml");
    bin()
        .args(["plugins", "grant", "--all", "--yes", "--plugins"])
        .arg(&dir)
        .arg("--grants")
        .arg(&grants)
        .output()
        .unwrap();
    let checked = assert_golden_errors(
        &dir,
        &cases,
        &["plugins", "check"],
        |name| dir.join(name).join("expected.txt"),
        |cmd| {
            cmd.env("METACLAUDE_CACHE_DIR", cache_dir())
                .env("METACLAUDE_GRANTS", &grants);
        },
    );
    assert!(checked >= 6, "only {checked} bad plugins");
}

/// Every good plugin folder beside the manifest as the host reads it, every default
/// filled in (`good_plugins/`; `METACLAUDE_BLESS=1` rewrites them).
#[test]
fn good_manifests_normalise_to_their_golden_form() {
    let dir = root().join("tests/cli/good_plugins");
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    let checked =
        crate::util::assert_golden_normalized(&dir, &cases, &["plugins", "check"], |name| {
            dir.join(name).join("normalized.json")
        });
    assert!(checked >= 2, "only {checked} good plugins");
}

/// The default log sink, loaded without flags from beside the executable, writes every
/// execution to METACLAUDE_LOG_DIR.
#[test]
fn the_default_log_sink_writes_each_execution() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let out = bin()
        .env("METACLAUDE_LOG_DIR", &logs)
        .args(["run", "failing", "--json", "--registry"])
        .arg(example_registry())
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = std::fs::read_to_string(logs.join("executions.jsonl")).unwrap_or_else(|e| {
        panic!(
            "no log written ({e}); is the default plugin set installed (cargo xtask build-plugins)?\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["log_version"], 1);
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["event"], "finished");
    assert_eq!(line["category"], "EXECUTION");
    assert_eq!(line["timestamp"], r["finished_at"]);
    for (key, value) in r.as_object().unwrap() {
        assert_eq!(&line[key], value, "log field {key}");
    }
}

/// "Any WASM language": the Python example sink (componentize-py) receives every event of
/// a run.
#[test]
fn the_python_example_sink_receives_every_event() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let example = root().join("examples/plugins/python-sink");
    let folder = plugins.join("python-sink");
    std::fs::create_dir_all(&folder).unwrap();
    let wasm = example.join("python_sink.wasm");
    assert!(
        wasm.is_file(),
        "run `cargo xtask build-plugins` to build the Python example"
    );
    for file in ["plugin.toml", "python_sink.wasm"] {
        std::fs::copy(example.join(file), folder.join(file)).unwrap();
    }
    crate::util::grant_all(&plugins);
    let out_dir = tmp.path().join("py-out");
    let out = bin()
        .env("PYTHON_SINK_DIR", &out_dir)
        .args(["run", "flaky", "--json", "--plugins"])
        .arg(&plugins)
        .arg("--registry")
        .arg(example_registry())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = r["execution_id"].as_str().unwrap();
    let text = std::fs::read_to_string(out_dir.join("events.jsonl")).unwrap();
    let kinds: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .inspect(|e| assert_eq!(e["execution_id"], id))
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, crate::util::FLAKY_LIFECYCLE);
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["success"], true);
}

/// On request (`limits.core_dump`), a trap leaves a core dump beside the manifest for the
/// plugin's author, and the error names the file.
#[test]
fn a_trap_writes_a_core_dump_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    hostile(&plugins, "trap", "core_dump = true\nmax_failures = 1", None);
    let (_, host) = run_with_plugins(&plugins, 1);
    let info = host.list().into_iter().next().unwrap();
    let err = info.last_error.unwrap_or_default();
    assert!(err.contains("core dump written to"), "{err}");
    let dumps: Vec<_> = std::fs::read_dir(plugins.join("hostile-trap"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".coredump"))
        .collect();
    assert_eq!(dumps.len(), 1);
    let bytes = std::fs::read(dumps[0].path()).unwrap();
    assert!(
        bytes.starts_with(b"\0asm"),
        "a core dump is a WebAssembly file"
    );
}

/// A recorder named `name` writing `<execution_id> <kind> <stdout bytes>` lines into
/// `out`, with `top` (top-level manifest keys) added.
fn output_recorder(plugins: &Path, name: &str, out: &Path, top: &str) {
    fixture_sink_with(plugins, name, top, "record-output", "", "", Some(out));
}

/// `event_output = false`: the record carries no stdout (a counting plugin is not handed
/// a script's output); `event_record = "figures"`: nor its ids (the convert module's
/// tests check every field); `event_json = true`: the output crosses in the JSON, not in
/// the record, for a plugin of the current WIT and of 0.1.0 alike; `one_shot = false`:
/// `run` does not load the plugin, `batch` does.
#[test]
fn manifests_say_what_a_plugin_needs_and_where_it_is_useful() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let (full, counting, figures, long, json, json_v01) = (
        tmp.path().join("full"),
        tmp.path().join("counting"),
        tmp.path().join("figures"),
        tmp.path().join("long"),
        tmp.path().join("json"),
        tmp.path().join("json-v01"),
    );
    output_recorder(&plugins, "full", &full, "");
    output_recorder(&plugins, "counting", &counting, "event_output = false");
    output_recorder(&plugins, "figures", &figures, "event_record = \"figures\"");
    output_recorder(&plugins, "long-running", &long, "one_shot = false");
    output_recorder(&plugins, "json", &json, "event_json = true");
    std::fs::create_dir_all(&json_v01).unwrap();
    write_plugin(
        &plugins,
        "json-v01",
        "fixture_v01_sink.wasm",
        &format!(
            "name = \"NAME\"\nversion = \"1.0.0\"\nkind = \"sink\"\ncomponent = \"COMPONENT\"\n\
             wit = \"0.1.0\"\nevent_json = true\n\
             [capabilities]\ndirs = [{{ host = \"{}\", guest = \"/out\", mode = \"rw\" }}]\n",
            json_v01.display()
        ),
    );
    let run = bin()
        .args(["run", "hello", "--plugins"])
        .arg(&plugins)
        .arg("--registry")
        .arg(example_registry())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let finished = |dir: &Path| -> Vec<String> {
        std::fs::read_to_string(dir.join("events.txt"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" finished "))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(finished(&full), ["14"], "Hello, world!\\n is 14 bytes");
    assert_eq!(finished(&counting), ["0"]);
    let finished_lines = |dir: &Path| -> Vec<String> {
        std::fs::read_to_string(dir.join("events.txt"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" finished "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        finished_lines(&figures),
        [" finished 0"],
        "no id, no output"
    );
    let with_id = finished_lines(&full);
    assert!(with_id[0].starts_with("01"), "{with_id:?}");
    assert_eq!(finished(&json), ["0"], "the output is in the JSON");
    let v01 = std::fs::read_to_string(json_v01.join("events.txt")).unwrap_or_default();
    assert_eq!(
        v01.lines().filter(|l| l.starts_with("finished ")).count(),
        1,
        "{v01}"
    );
    assert!(
        finished(&long).is_empty(),
        "run loaded a one_shot = false plugin"
    );
    let batch = bin()
        .args(["batch", "--plugins"])
        .arg(&plugins)
        .arg("--registry")
        .arg(example_registry())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut child = batch;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"script_id\": \"hello\"}\n")
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    assert_eq!(finished(&long), ["14"], "batch loads it");
}

/// Mistakes that still load are explained by `plugins check`: a notifier that imports
/// `http` with no destination granted, a manifest whose `wit` is not what the component
/// was built against.
#[test]
fn plugins_check_explains_what_loads_but_will_not_work() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_plugin(
        &tmp.path().join("plugins"),
        "ungranted",
        "fixture_notifier.wasm",
        "name = \"NAME\"\nversion = \"1.0.0\"\nkind = \"notifier\"\ncomponent = \"COMPONENT\"\nwit = \"0.1.0\"\n[config]\nurl = \"https://hooks.example.com/x\"\n",
    );
    let out = bin().args(["plugins", "check"]).arg(&dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains(
            "note: the component imports `http` but capabilities.http grants no destination"
        ),
        "{text}"
    );
    assert!(
        text.contains("note: the manifest says wit = \"0.1.0\" but the component was built against 0.3.0: set wit = \"0.3.0\""),
        "{text}"
    );
    // Fixed, the notes go.
    std::fs::write(
        dir.join("plugin.toml"),
        std::fs::read_to_string(dir.join("plugin.toml"))
            .unwrap()
            .replace("wit = \"0.1.0\"", "wit = \"0.3.0\"")
            + "[capabilities]\nhttp = [\"https://hooks.example.com/*\"]\n",
    )
    .unwrap();
    crate::util::grant_all(dir.parent().unwrap());
    let out = bin().args(["plugins", "check"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("note:"),
        "{out:?}"
    );
}

/// A one-shot `run` loads its plugins while the script runs: the script does not wait
/// for a plugin's `init`, and every event still reaches every plugin that loaded, in order
/// (`queued`, `started`, `finished`: the first two wait for the load). A plugin that fails
/// to load is named on stderr and the run goes on without it.
#[test]
fn a_one_shot_run_starts_its_script_while_its_plugins_load() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let out = tmp.path().join("out");
    recorder(&plugins, &out);
    let slow_out = tmp.path().join("slow-out");
    fixture_sink(
        &plugins,
        "slow",
        "slow-init",
        "init_ms = 700",
        "",
        Some(&slow_out),
    );
    fixture_sink(&plugins, "refuses", "reject-config", "", "", None);
    let run = bin()
        .args([
            "run",
            "hello",
            "--json",
            "--input",
            "name=load",
            "--plugins",
        ])
        .arg(&plugins)
        .arg("--registry")
        .arg(example_registry())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("refuses") && stderr.contains("must be a number between 0 and 100"),
        "the plugin that did not load is not named: {stderr}"
    );
    let r: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let id = r["execution_id"].as_str().unwrap();
    let recorded = std::fs::read_to_string(out.join("events.txt")).unwrap();
    let kinds: Vec<&str> = recorded
        .lines()
        .map(|l| l.strip_prefix(&format!("{id} ")).unwrap_or(l))
        .collect();
    assert_eq!(kinds, ["queued", "started", "finished"], "{recorded}");
    // The script started before the slow plugin's `init` was over.
    let started = chrono::DateTime::parse_from_rfc3339(r["started_at"].as_str().unwrap())
        .unwrap()
        .timestamp_micros();
    let init_done: i64 = std::fs::read_to_string(slow_out.join("init-done.txt"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        started < init_done,
        "the script started at {started} µs, after the slow plugin's init ended at {init_done} µs"
    );
}

/// A one-shot run starts loading its plugins before it reads the registry; with a bad
/// registry, the registry's error is all it reports (the load is waited for and dropped:
/// no notice of a plugin that failed, no event to one that loaded), as when the plugins
/// were loaded after it.
#[test]
fn a_bad_registry_is_all_a_run_reports_while_its_plugins_load() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let out = tmp.path().join("out");
    recorder(&plugins, &out);
    fixture_sink(&plugins, "refuses", "reject-config", "", "", None);
    let registry = tmp.path().join("registry.json");
    std::fs::write(&registry, r#"{"scripts": [{"id": "hello"}]}"#).unwrap();
    let run = bin()
        .args(["run", "hello", "--plugins"])
        .arg(&plugins)
        .arg("--registry")
        .arg(&registry)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("scripts[0].path: missing"), "{stderr}");
    assert!(
        !stderr.contains("refuses") && !stderr.contains("plugin"),
        "only the registry's error: {stderr}"
    );
    let recorded = std::fs::read_to_string(out.join("events.txt")).unwrap_or_default();
    assert_eq!(recorded, "", "no execution, no event");
}

/// A sink named `name` in `record-debug` mode, writing each record it receives, whole,
/// into `out`, with `top` (top-level manifest keys) and `config` (more `[config]` keys).
fn debug_recorder(plugins: &Path, name: &str, out: &Path, top: &str, config: &str) {
    fixture_sink_with(plugins, name, top, "record-debug", config, "", Some(out));
}

/// Six events with every field the model has: each kind, options set and not, strings and
/// lists full and empty, a failure with its whole context.
fn events_with_every_field() -> Vec<metaclaude::model::ExecutionEvent> {
    use chrono::{TimeZone, Utc};
    use metaclaude::model::{
        AttemptSummary, ErrorCategory, ErrorContext, ErrorDetails, ExecutionEvent, ExecutionResult,
        LifecycleKind, MeasurementSource,
    };
    let t =
        |ms: i64| Utc.timestamp_opt(1_790_000_000, 0).unwrap() + chrono::Duration::milliseconds(ms);
    let error = ErrorDetails {
        category: ErrorCategory::Timeout,
        message: "took longer than 5s".into(),
        context: ErrorContext {
            script_id: "deploy".into(),
            script_path: "scripts/deploy.py".into(),
            specialist: Some("ops".into()),
            exit_code: Some(137),
            signal: Some("SIGKILL".into()),
            attempt: 1,
            extra: [("timeout_seconds".to_string(), "5".to_string())].into(),
        },
        suggestions: vec!["raise the timeout".into(), "split the work".into()],
        stack_trace: Some("Traceback (most recent call last):\n  ...".into()),
    };
    let mut r = ExecutionResult::new("01RECORDS000000000000000001", "deploy", t(0));
    r.specialist = Some("ops".into());
    r.exit_code = Some(3);
    r.signal = Some("SIGTERM".into());
    r.stdout = "out \"quoted\"\n".into();
    r.stderr = "err\n".into();
    r.stdout_truncated = true;
    r.finished_at = t(2500);
    r.attempts = vec![
        AttemptSummary {
            attempt: 1,
            started_at: t(0),
            finished_at: t(1000),
            success: false,
            exit_code: None,
            signal: Some("SIGKILL".into()),
            category: Some(ErrorCategory::Timeout),
            message: Some("took longer than 5s".into()),
            wall_time_seconds: 1.0,
            cpu_time_seconds: 0.25,
            peak_memory_mb: 12.5,
            delay_before_ms: 0,
        },
        AttemptSummary {
            attempt: 2,
            started_at: t(1500),
            finished_at: t(2500),
            success: false,
            exit_code: Some(3),
            signal: None,
            category: None,
            message: None,
            wall_time_seconds: 1.0,
            cpu_time_seconds: 0.5,
            peak_memory_mb: 13.0,
            delay_before_ms: 500,
        },
    ];
    r.retries = 1;
    r.inputs = [
        ("file".to_string(), serde_json::json!("a.json")),
        ("n".to_string(), serde_json::json!(3)),
    ]
    .into();
    r.session_id = Some("session-1".into());
    r.correlation_id = Some("corr-1".into());
    r.user = Some("ann".into());
    r.error_details = Some(error.clone());
    let u = &mut r.resource_usage;
    (u.memory_start_mb, u.memory_end_mb, u.peak_memory_mb) = (1.5, 2.5, 13.0);
    u.peak_memory_largest_process_mb = 12.0;
    (u.cpu_time_seconds, u.cpu_user_seconds, u.cpu_system_seconds) = (0.75, 0.5, 0.25);
    u.wall_time_seconds = 2.5;
    u.memory_start_source = MeasurementSource::Sampling;
    u.memory_end_source = MeasurementSource::Rusage;
    u.peak_memory_source = MeasurementSource::Cgroup;
    u.cpu_time_source = MeasurementSource::Cgroup;
    let identity = r.identity();
    let at = |mut e: ExecutionEvent, ms| {
        e.timestamp = t(ms);
        e
    };
    let mut started = identity.event(LifecycleKind::Started, 1);
    started.pid = Some(4242);
    let mut failed = identity.event(LifecycleKind::AttemptFailed, 1);
    failed.error = Some(error);
    let mut retry = identity.event(LifecycleKind::RetryScheduled, 1);
    retry.retry_delay_ms = Some(500);
    // A bare success: empty outputs, no attempts, inputs, options or error.
    let mut bare = ExecutionResult::new("01RECORDS000000000000000002", "noop", t(3000));
    bare.success = true;
    bare.finished_at = t(3001);
    bare.resource_usage.memory_start_source = MeasurementSource::None;
    vec![
        at(identity.event(LifecycleKind::Queued, 0), 0),
        at(started, 1),
        at(failed, 1000),
        at(retry, 1001),
        at(ExecutionEvent::finished(r), 2500),
        at(ExecutionEvent::finished(bare), 3001),
    ]
}

/// Every field of every record shape crosses into the plugin as the host's model has it
/// (a golden file per shape of the records the fixture received, printed whole by the
/// guest), and an empty string or list costs no call into the plugin's allocator once
/// the plugin has shown that a zero-sized allocation gives back its alignment
/// (wit-bindgen's allocators, in every language, do): one such call per alignment. A
/// plugin whose allocator gives each zero-sized request memory of its own is asked for
/// every one, as the canonical ABI says, and receives the same records.
#[test]
fn every_field_crosses_in_each_record_shape() {
    use metaclaude::EventSink;
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let shapes = [
        ("full", ""),
        ("bare", "event_output = false"),
        ("json", "event_json = true"),
        ("figures", "event_record = \"figures\""),
        (
            "figures-json",
            "event_record = \"figures\"\nevent_json = true",
        ),
    ];
    for (name, top) in shapes {
        debug_recorder(&plugins, name, &tmp.path().join(name), top, "");
    }
    let allocating = tmp.path().join("allocating");
    debug_recorder(
        &plugins,
        "allocating",
        &allocating,
        "",
        "zero_sized = \"allocate\"",
    );
    let mut host = PluginHost::new(Some(cache_dir())).unwrap();
    let errors = host.load_dir(&plugins).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let events = events_with_every_field();
    // Twice over: the second round's empty values find the alignments already known.
    for e in events.iter().chain(&events) {
        host.emit(e);
    }
    host.shutdown();
    let read = |dir: &Path, file: &str| {
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
    };
    let golden_dir = root().join("tests/cli/records");
    for (name, _) in shapes {
        let golden = golden_dir.join(format!("{name}.txt"));
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        let received = read(&tmp.path().join(name), "events.txt");
        assert_eq!(received.lines().count(), 2 * events.len(), "{received}");
        crate::util::assert_golden(&golden, &expected, &received, name);
        let asked: usize = read(&tmp.path().join(name), "zero-sized.txt")
            .parse()
            .unwrap();
        assert_eq!(
            asked, 3,
            "{name}: zero-sized allocations asked: one per alignment (1, 4, 8)"
        );
    }
    assert_eq!(
        read(&allocating, "events.txt"),
        read(&tmp.path().join("full"), "events.txt"),
        "the same records whatever the allocator"
    );
    let asked: usize = read(&allocating, "zero-sized.txt").parse().unwrap();
    // Each record's empty `json`, and the bare success's outputs, attempts and inputs.
    assert_eq!(
        asked,
        2 * (events.len() + 4),
        "one per empty string and list"
    );
}

/// An exporter folder `name` of the fixture exporter with `config` lines.
fn fixture_exporter(plugins: &Path, name: &str, config: &str) {
    write_plugin(
        plugins,
        name,
        "fixture_exporter.wasm",
        &format!(
            "name = \"NAME\"\nversion = \"1.0.0\"\nkind = \"exporter\"\ncomponent = \"COMPONENT\"\nwit = \"0.3.0\"\n[config]\n{config}\n"
        ),
    );
}

/// A large text comes out of the sandbox into the buffer of the instance's last one, once
/// its reader dropped it (`plugin/runtime/lifting.rs`): the same allocation, the whole
/// text each time. A text still held is never written over: the next render takes a
/// buffer of its own.
#[test]
fn an_exporters_next_text_reuses_the_buffer_of_its_last_one_once_dropped() {
    use metaclaude_formats::prometheus::Format;
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    fixture_exporter(&plugins, "large", "padding = 400000");
    let mut host = PluginHost::new(Some(cache_dir())).unwrap();
    let errors = host.load_dir(&plugins).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let render = || host.render("large", Format::Text).unwrap();
    // The fixture counts its renders: each text differs from the last in that sample.
    let nth = |text: &str, n: u32| {
        assert!(text.len() > 400_000, "{} bytes", text.len());
        assert!(
            text.contains(&format!(
                "fixture_renders_total{{format=\"prometheus-text\"}} {n}\n"
            )),
            "render {n}: {}",
            &text[..300]
        );
        assert!(
            text.ends_with("fixture_padding_total{n=\"16666\"} 16666\n"),
            "render {n}: {}",
            &text[text.len() - 200..]
        );
    };
    let first = render();
    nth(&first, 1);
    let (at, len) = (first.as_ptr(), first.len());
    drop(first);
    // Had the buffer been freed, this would be where the allocator puts it again.
    let decoy = vec![1u8; len];
    let second = render();
    nth(&second, 2);
    assert_eq!(
        second.as_ptr(),
        at,
        "the second text is in the first one's buffer"
    );
    drop(decoy);
    // Held: the third goes elsewhere, and the second stays as it was.
    let kept = second.to_string();
    let third = render();
    nth(&third, 3);
    assert_ne!(third.as_ptr(), second.as_ptr());
    assert_eq!(*second, *kept);
    // Taken as a `String`, a text's buffer is the caller's: the next one is fresh.
    let owned = third.into_string();
    drop(second);
    let fourth = render();
    nth(&fourth, 4);
    assert_ne!(fourth.as_ptr(), owned.as_ptr());
    host.shutdown();
}

/// A plugin whose text is not UTF-8 (the canonical ABI forbids it; a plugin in C can do
/// it) gets an error that says so and where, not a text; an exporter beside it renders.
#[test]
fn an_exporters_text_that_is_not_utf8_is_refused_with_the_reason() {
    use metaclaude_formats::prometheus::Format;
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    fixture_exporter(
        &plugins,
        "hostile",
        "mode = \"invalid-utf8\"\npadding = 200000",
    );
    fixture_exporter(&plugins, "fine", "");
    let mut host = PluginHost::new(Some(cache_dir())).unwrap();
    let errors = host.load_dir(&plugins).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let refused = host.render("hostile", Format::Text).unwrap_err();
    assert!(
        refused.contains("not UTF-8") && refused.contains("from index 0"),
        "{refused}"
    );
    let fine = host.render("fine", Format::Text).unwrap();
    assert!(fine.contains("fixture_renders_total"), "{fine}");
    host.shutdown();
}
