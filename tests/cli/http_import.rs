//! The `http` import attacked through the real binary: notifier plugins (the fixture
//! notifier, which POSTs to the URL and with the headers its `[config]` gives) try to
//! inject lines into the request, climb out of a path-scoped grant, reach loopback through
//! a wildcard grant, and a server answers a byte a second. A webhook on loopback records
//! every request it receives: only the allowed ones arrive, and each refusal says why, in
//! the plugin's report and in the host's log.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Output;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::custom_notifiers::Webhook;
use crate::plugins::write_plugin;
use crate::util::{bin, run_hello_with_plugins, wait_until, LoopbackServer};

/// One notifier: its name, the URL it posts to, its grant, its extra headers (TOML
/// inline-table entries) and `[limits]`.
#[derive(Clone)]
struct Notifier<'a> {
    name: &'a str,
    url: String,
    grant: String,
    headers: &'a str,
    limits: &'a str,
}

/// Writes the notifiers and a sink that traps on its first batch, quarantined at once
/// (its `plugin_quarantined` alert goes to every notifier), runs `hello` with them and
/// returns the run's output. Each notifier reports into `<dir>/out/<name>/report.txt`.
fn run_notifiers(dir: &Path, notifiers: &[Notifier]) -> Output {
    let plugins = dir.join("plugins");
    write_plugin(
        &plugins,
        "hostile-trap",
        "fixture_sink.wasm",
        "name = \"NAME\"\nversion = \"1.0.0\"\nkind = \"sink\"\ncomponent = \"COMPONENT\"\n\
         [config]\nmode = \"trap\"\n[limits]\nmax_failures = 1\n",
    );
    for n in notifiers {
        let out = dir.join("out").join(n.name);
        std::fs::create_dir_all(&out).unwrap();
        // `{:?}` writes a TOML basic string: ASCII, with \r, \n, \" and \\ escaped.
        write_plugin(
            &plugins,
            n.name,
            "fixture_notifier.wasm",
            &format!(
                "name = \"NAME\"\nversion = \"1.0.0\"\nkind = \"notifier\"\ncomponent = \"COMPONENT\"\n\
                 [config]\nurl = {:?}\nheaders = {{ {} }}\n\
                 [capabilities]\nhttp = [{:?}]\ndirs = [{{ host = {:?}, guest = \"/out\", mode = \"rw\" }}]\n\
                 [alerts]\ngroup_wait_s = 0\n[limits]\n{}\n",
                n.url,
                n.headers,
                n.grant,
                out.display().to_string(),
                n.limits
            ),
        );
    }
    run_hello_with_plugins(&mut bin(), &plugins)
}

/// The first line a notifier reported: `http: POSTED status N` or `http: refused: why`.
fn reported(dir: &Path, name: &str) -> String {
    let file = dir.join("out").join(name).join("report.txt");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{name} reported nothing ({}): {e}", file.display()));
    text.lines().next().unwrap_or_default().to_string()
}

/// Asserts that `name` was refused for `reason`, in its report and in the host's log.
fn assert_refused(dir: &Path, run: &Output, name: &str, reason: &str) {
    let report = reported(dir, name);
    assert!(
        report.starts_with("http: refused: ") && report.contains(reason),
        "{name}: expected a refusal saying {reason:?}, got {report:?}"
    );
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(
        log.lines().any(|l| l.contains(name) && l.contains(reason)),
        "{name}: the host's log does not say {reason:?}:\n{log}"
    );
}

#[test]
fn injected_and_climbing_paths_never_reach_the_server() {
    let webhook = Webhook::start(200);
    let port = webhook.port();
    let tmp = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{port}/hooks");
    let notifier = |name, url: String, headers| Notifier {
        name,
        url,
        grant: format!("http://127.0.0.1:{port}/hooks/*"),
        headers,
        limits: "",
    };
    let none = "";
    let cases = [
        (
            notifier("crlf", format!("{base}/a\r\nX-Injected: 1"), none),
            "has a line break (CR)",
        ),
        (
            notifier(
                "split",
                format!("{base}/a HTTP/1.1\r\n\r\nPOST /admin"),
                none,
            ),
            "has a space",
        ),
        (
            notifier("dotdot", format!("{base}/../admin"), none),
            "which is `..`: a path may not climb out",
        ),
        (
            notifier("encoded", format!("{base}/%2e%2e/admin"), none),
            "`..` once percent-decoded",
        ),
        (
            notifier("mixed-case", format!("{base}/%2E./admin"), none),
            "`..` once percent-decoded",
        ),
        (
            notifier("encoded-slash", format!("{base}/..%2fadmin"), none),
            "`..` once percent-decoded",
        ),
        (
            notifier("backslash", format!("{base}/..\\admin"), none),
            "has a backslash",
        ),
        (
            notifier(
                "header",
                format!("{base}/header"),
                "X-A = \"1\\r\\nX-Injected: 1\"",
            ),
            "line break in its value",
        ),
        (
            notifier(
                "framing",
                format!("{base}/framing"),
                "Transfer-Encoding = \"chunked\"",
            ),
            "Transfer-Encoding is the host's",
        ),
    ];
    let allowed = notifier("allowed", format!("{base}/ok"), "X-Token = \"t\"");
    let mut all: Vec<Notifier> = cases.iter().map(|(n, _)| n.clone()).collect();
    all.push(allowed);
    let run = run_notifiers(tmp.path(), &all);
    for (n, reason) in &cases {
        assert_refused(tmp.path(), &run, n.name, reason);
    }
    assert_eq!(reported(tmp.path(), "allowed"), "http: POSTED status 200");
    let received = webhook.received();
    assert_eq!(
        received.len(),
        1,
        "only the allowed POST arrives: {received:#?}"
    );
    assert!(
        received[0].head.starts_with("POST /hooks/ok HTTP/1.1\r\n"),
        "{received:#?}"
    );
    assert!(received[0].head.contains("\r\nX-Token: t"), "{received:#?}");
    assert!(!received[0].head.contains("X-Injected"), "{received:#?}");
}

#[test]
fn a_wildcard_grant_does_not_reach_loopback() {
    let webhook = Webhook::start(200);
    let port = webhook.port();
    let tmp = tempfile::tempdir().unwrap();
    let notifier = |name, url: String, grant: String| Notifier {
        name,
        url,
        grant,
        headers: "",
        limits: "",
    };
    let wildcards = [
        notifier(
            "wild-port",
            format!("http://127.0.0.1:{port}/wild"),
            format!("http://*:{port}/*"),
        ),
        notifier(
            "wild-everything",
            format!("http://localhost:{port}/wild"),
            "http://*:*/*".to_string(),
        ),
    ];
    let explicit = [
        notifier(
            "by-address",
            format!("http://127.0.0.1:{port}/by-address"),
            format!("http://127.0.0.1:{port}/*"),
        ),
        notifier(
            "by-name",
            format!("http://localhost:{port}/by-name"),
            format!("http://localhost:{port}/by-name"),
        ),
    ];
    let all: Vec<Notifier> = wildcards.iter().chain(&explicit).cloned().collect();
    let run = run_notifiers(tmp.path(), &all);
    for n in &wildcards {
        assert_refused(tmp.path(), &run, n.name, "a loopback address");
        let report = reported(tmp.path(), n.name);
        assert!(
            report.contains(&format!("the wildcard grant `{}`", n.grant))
                && report.contains("grant that destination explicitly in capabilities.http")
                && (report.contains("127.0.0.1") || report.contains("::1")),
            "{}: {report}",
            n.name
        );
    }
    for n in &explicit {
        assert_eq!(reported(tmp.path(), n.name), "http: POSTED status 200");
    }
    let mut paths: Vec<String> = webhook.received().into_iter().map(|r| r.path).collect();
    paths.sort();
    assert_eq!(paths, ["/by-address", "/by-name"]);
}

/// What the trickling server saw of one connection: bytes of its answer sent, and whether
/// the client hung up before the end.
#[derive(Debug, Clone, Copy)]
struct Trickled {
    sent: usize,
    cut_off: bool,
}

/// A server on loopback that reads a request, then answers one byte a second (on a
/// thread per connection); every connection's fate is recorded.
struct Trickler {
    server: LoopbackServer,
    connections: Arc<Mutex<Vec<Trickled>>>,
}

/// The answer, a byte a second: a minute of it.
const TRICKLED_ANSWER: &str =
    "HTTP/1.1 200 OK\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";

impl Trickler {
    fn start() -> Trickler {
        let connections = Arc::new(Mutex::new(Vec::new()));
        let server = {
            let connections = connections.clone();
            LoopbackServer::start(move |mut s, stop| {
                let connections = connections.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    let mut fate = Trickled {
                        sent: 0,
                        cut_off: false,
                    };
                    for b in TRICKLED_ANSWER.as_bytes() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        if s.write_all(&[*b]).is_err() {
                            fate.cut_off = true;
                            break;
                        }
                        fate.sent += 1;
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    connections.lock().unwrap().push(fate);
                });
            })
        };
        Trickler {
            server,
            connections,
        }
    }
}

#[test]
fn a_trickling_server_cannot_hold_a_notifier_past_its_deadline() {
    let server = Trickler::start();
    let port = server.server.port();
    let tmp = tempfile::tempdir().unwrap();
    let slow = Notifier {
        name: "slow",
        url: format!("http://127.0.0.1:{port}/slow"),
        grant: format!("http://127.0.0.1:{port}/*"),
        headers: "",
        limits: "call_timeout_ms = 2000",
    };
    let run = run_notifiers(tmp.path(), &[slow]);
    assert_refused(
        tmp.path(),
        &run,
        "slow",
        &format!("reading the answer of 127.0.0.1:{port}: the call's deadline passed (1800 ms"),
    );
    // The server sees the host hang up long before its answer ends.
    wait_until(
        "the trickling server is cut off",
        Duration::from_secs(30),
        || server.connections.lock().unwrap().iter().any(|c| c.cut_off),
        || format!("{:?}", server.connections.lock().unwrap()),
    );
    for c in server.connections.lock().unwrap().iter() {
        assert!(c.sent < TRICKLED_ANSWER.len(), "{c:?}");
    }
}
