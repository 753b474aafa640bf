//! The server's boundaries, attacked as an attacker would, through the real binary: web
//! pages of other sites (cross-site POSTs and PUTs of every "simple" body, a page on
//! another port of the same host, a cookie minted by another server), the token file's
//! mode, the registry's secrets in the API, and clients that connect and say nothing.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::serve::{agent, get, reply, token_file, Reply, Server};
use crate::util::{bin, write_scripts};

/// A registry in `dir` with `mark` (appends a line to `marks`, a file named by its fixed
/// environment, beside a secret it is also given) and `hello`.
fn marking_registry(dir: &Path, marks: &Path) -> PathBuf {
    write_scripts(
        dir,
        &[
            ("mark.sh", "#!/bin/sh\necho ran >> \"$MARK_FILE\"\n"),
            ("hello.sh", "#!/bin/sh\necho hello\n"),
        ],
    );
    let registry = dir.join("registry.json");
    let text = json!({"scripts": [
        {"id": "mark", "path": "scripts/mark.sh",
         "env": {"MARK_FILE": marks, "DEPLOY_API_KEY": "hunter2-do-not-show"}},
        {"id": "hello", "path": "scripts/hello.sh"},
    ]});
    std::fs::write(&registry, text.to_string()).unwrap();
    registry
}

/// Request headers, as name and value.
type Headers<'a> = Vec<(&'a str, &'a str)>;

/// `METHOD url` with `body` and these headers, as a page's `fetch` or form would send it.
fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    reply(agent().run(request.body(body.to_string()).unwrap()))
}

fn marks(file: &Path) -> usize {
    std::fs::read_to_string(file)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn threshold(server: &Server, name: &str) -> f64 {
    let t = get(&server.url("/api/v1/alerts/thresholds")).json();
    t["rules"][0]["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no threshold {name}: {t}"))["value"]
        .as_f64()
        .unwrap()
}

/// One sample of the server's own metrics.
fn metric(server: &Server, sample: &str) -> f64 {
    let text = get(&server.url("/metrics")).body;
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {sample} in:\n{text}"))
        .parse()
        .unwrap()
}

/// The issue's attack and its variants: a page of another site (or of another port of
/// this host) POSTs or PUTs with a body no CORS preflight guards (text/plain, a form, a
/// multipart form) or says it is JSON with a foreign Origin or Sec-Fetch-Site. Every one
/// is refused and nothing runs or changes: no execution, in the API or in the marker
/// file, no registry reload, the threshold as it was. The same requests as curl sends
/// them, or from the server's own page, work.
#[test]
fn cross_site_requests_run_nothing_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let marks_file = tmp.path().join("marks");
    let registry = marking_registry(tmp.path(), &marks_file);
    let logs = tmp.path().join("logs");
    // The default plugin set: the log sink and the alert rules (with thresholds).
    let server = Server::start(&registry, &[], |cmd| {
        cmd.env("METACLAUDE_LOG_DIR", &logs);
    });
    let own = server.http.clone();
    // A page on another port of the same host: a port held by this test, so no server
    // of anyone else's is there.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other_port = format!("http://127.0.0.1:{}", other.local_addr().unwrap().port());
    let before = threshold(&server, "error_rate_percent");
    let targets = [
        ("POST", "/api/v1/executions", r#"{"script_id": "mark"}"#),
        (
            "POST",
            "/api/v1/executions?wait=false",
            r#"{"script_id": "mark"}"#,
        ),
        ("POST", "/api/v1/reload", "{}"),
        ("POST", "/api/v1/plugins/reload", "{}"),
        (
            "PUT",
            "/api/v1/alerts/thresholds/error_rate_percent",
            // Under the critical threshold (25): a value the rule would take.
            r#"{"value": 20}"#,
        ),
    ];
    let json_type = ("content-type", "application/json");
    let evil = ("origin", "http://evil.example");
    // Each: the headers sent, the status and error code expected.
    let attacks: Vec<(Headers, u16, &str)> = vec![
        // What the issue verified: text/plain, a foreign Origin, Sec-Fetch-Site.
        (
            vec![
                ("content-type", "text/plain;charset=UTF-8"),
                evil,
                ("sec-fetch-site", "cross-site"),
            ],
            403,
            "origin_not_allowed",
        ),
        // The simple bodies, from an old browser that sends no Origin at all.
        (
            vec![("content-type", "text/plain")],
            415,
            "unsupported_media_type",
        ),
        (
            vec![("content-type", "application/x-www-form-urlencoded")],
            415,
            "unsupported_media_type",
        ),
        (
            vec![("content-type", "multipart/form-data; boundary=x")],
            415,
            "unsupported_media_type",
        ),
        (vec![], 415, "unsupported_media_type"),
        // The same bodies from a page of another site.
        (
            vec![("content-type", "application/x-www-form-urlencoded"), evil],
            403,
            "origin_not_allowed",
        ),
        (
            vec![("content-type", "multipart/form-data; boundary=x"), evil],
            403,
            "origin_not_allowed",
        ),
        // JSON said (as after a preflight no CORS answer lets through), from elsewhere.
        (vec![json_type, evil], 403, "origin_not_allowed"),
        (
            vec![json_type, ("origin", "null")],
            403,
            "origin_not_allowed",
        ),
        // A page on another port of this host: same site, not this server.
        (
            vec![json_type, ("origin", &other_port)],
            403,
            "origin_not_allowed",
        ),
        (
            vec![json_type, ("sec-fetch-site", "same-site")],
            403,
            "cross_site",
        ),
        (
            vec![json_type, ("sec-fetch-site", "cross-site")],
            403,
            "cross_site",
        ),
    ];
    for (method, path, body) in targets {
        for (headers, status, code) in &attacks {
            let body = if headers.contains(&("content-type", "multipart/form-data; boundary=x")) {
                format!(
                    "--x\r\nContent-Disposition: form-data; name=\"{body}\"\r\n\r\n\r\n--x--\r\n"
                )
            } else {
                body.to_string()
            };
            let r = send(method, &server.url(path), headers, &body);
            assert_eq!(
                r.status, *status,
                "{method} {path} with {headers:?}: {}",
                r.body
            );
            let e = r.json();
            assert_eq!(e["error"]["code"], *code, "{method} {path} {headers:?}");
            let message = e["error"]["message"].as_str().unwrap();
            if *status == 415 {
                // It names what was sent and what is needed.
                let sent = headers
                    .iter()
                    .find(|(n, _)| *n == "content-type")
                    .map_or("no Content-Type", |(_, v)| v);
                assert!(
                    message.contains(sent) && message.contains("application/json"),
                    "{message}"
                );
                assert_eq!(r.header("accept"), Some("application/json"));
            } else if let Some((_, origin)) = headers.iter().find(|(n, _)| *n == "origin") {
                assert!(message.contains(origin), "{message}");
            }
        }
    }
    // Nothing ran, nothing changed.
    let listed = get(&server.url("/api/v1/executions")).json();
    assert_eq!(listed["count"], 0, "{listed}");
    assert_eq!(marks(&marks_file), 0, "the script ran");
    assert_eq!(threshold(&server, "error_rate_percent"), before);
    assert_eq!(
        metric(
            &server,
            "metaclaude_server_registry_reloads_total{result=\"ok\"}"
        ),
        0.0
    );

    // The same as curl sends them (JSON, no Origin), and from the server's own pages
    // (on either of its ports), work.
    let other_own_port = server.ws.clone().unwrap().replacen("ws://", "http://", 1);
    let good: [Headers; 3] = [
        vec![json_type],
        vec![
            ("content-type", "application/json; charset=utf-8"),
            ("origin", &own),
            ("sec-fetch-site", "same-origin"),
        ],
        vec![
            json_type,
            ("origin", &other_own_port),
            ("sec-fetch-site", "same-site"),
        ],
    ];
    for (i, headers) in good.iter().enumerate() {
        let r = send(
            "POST",
            &server.url("/api/v1/executions"),
            headers,
            r#"{"script_id": "mark"}"#,
        );
        assert_eq!(r.status, 200, "{headers:?}: {}", r.body);
        assert_eq!(r.json()["success"], true, "{}", r.body);
        assert_eq!(marks(&marks_file), i + 1);
        let r = send("POST", &server.url("/api/v1/reload"), headers, "");
        assert_eq!(r.status, 200, "{headers:?}: {}", r.body);
        let value = 11.0 + i as f64;
        let r = send(
            "PUT",
            &server.url("/api/v1/alerts/thresholds/error_rate_percent"),
            headers,
            &json!({ "value": value }).to_string(),
        );
        assert_eq!(r.status, 200, "{headers:?}: {}", r.body);
        assert_eq!(threshold(&server, "error_rate_percent"), value);
    }
    assert_eq!(
        metric(
            &server,
            "metaclaude_server_registry_reloads_total{result=\"ok\"}"
        ),
        3.0
    );
    assert_eq!(get(&server.url("/api/v1/executions")).json()["count"], 3);
    // Reading stays open to links from anywhere (a GET changes nothing).
    let r = send(
        "GET",
        &server.url("/"),
        &[("sec-fetch-site", "cross-site")],
        "",
    );
    assert_eq!(r.status, 200);
}

/// With a token, a browser keeps a cookie named for this server's port holding an HMAC
/// under the token, never the token: a server on another port with the same token does
/// not take it (as it is, or renamed for its own port), nor does a cookie holding the
/// token itself open either.
#[test]
fn a_cookie_from_one_server_opens_no_other() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = marking_registry(tmp.path(), &tmp.path().join("marks"));
    let token = "c2hhcmVkLXRva2VuLWZvci10d28tc2VydmVycw";
    let file = token_file(tmp.path(), token);
    let start = || {
        Server::start(&registry, &["--no-plugins", "--token-file"], |cmd| {
            cmd.arg(&file);
        })
    };
    let (a, b) = (start(), start());
    let port = |s: &Server| s.http.rsplit(':').next().unwrap().to_string();
    let r = get(&a.url(&format!("/?token={token}")));
    assert_eq!(r.status, 303, "{}", r.body);
    let set_cookie = r.header("set-cookie").unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains(token),
        "the token itself: {set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let (name, value) = cookie.split_once('=').unwrap();
    assert_eq!(name, format!("metaclaude_token_{}", port(&a)));
    let scripts = |s: &Server, cookie: &str| {
        send("GET", &s.url("/api/v1/scripts"), &[("cookie", cookie)], "").status
    };
    assert_eq!(scripts(&a, &cookie), 200, "the server that gave it");
    assert_eq!(scripts(&b, &cookie), 401, "another server, same token");
    let renamed = format!("metaclaude_token_{}={value}", port(&b));
    assert_eq!(scripts(&b, &renamed), 401, "renamed for the other port");
    for raw in [
        format!("metaclaude_token={token}"),
        format!("metaclaude_token_{}={token}", port(&a)),
    ] {
        assert_eq!(scripts(&a, &raw), 401, "{raw}");
    }
    // The bearer token still opens both (curl, scripts).
    for s in [&a, &b] {
        let r = send(
            "GET",
            &s.url("/api/v1/scripts"),
            &[("authorization", &format!("Bearer {token}"))],
            "",
        );
        assert_eq!(r.status, 200);
    }
    // A page on B's port that the browser sends A's cookie to (same site) cannot use it
    // to change anything on A.
    let r = send(
        "POST",
        &a.url("/api/v1/executions"),
        &[
            ("cookie", &cookie),
            ("content-type", "application/json"),
            ("origin", &b.http),
        ],
        r#"{"script_id": "hello"}"#,
    );
    assert_eq!(r.status, 403, "{}", r.body);
}

/// `serve` refuses a token file its group or others may read or write, as ssh refuses
/// such a key, naming the file, its mode and the command that fixes it.
#[test]
fn a_token_file_open_to_others_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = marking_registry(tmp.path(), &tmp.path().join("marks"));
    let file = token_file(tmp.path(), "dG9rZW4tZmlsZS1tb2RlLXRlc3Q");
    use std::os::unix::fs::PermissionsExt;
    for mode in [0o644, 0o640, 0o604, 0o660, 0o620, 0o602] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut child = bin()
            .args(["serve", "--no-plugins", "--http-port", "0", "--no-ws-port"])
            .arg("--registry")
            .arg(&registry)
            .arg("--token-file")
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Refused at once; a server that starts is killed and the test fails.
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("serve started with a token file of mode {mode:o}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(2), "mode {mode:o}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let named = format!("{}", file.display());
        assert!(
            stderr.contains(&named)
                && stderr.contains(&format!("mode 0{mode:o}"))
                && stderr.contains(&format!("chmod 600 {named}")),
            "mode {mode:o}: {stderr}"
        );
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
    let server = Server::start(&registry, &["--no-plugins", "--token-file"], |cmd| {
        cmd.arg(&file);
    });
    assert_eq!(get(&server.url("/healthz")).status, 200, "0400 is private");
}

/// The API shows which variables a script's fixed environment sets, never their values
/// (where people put secrets); the script still gets them.
#[test]
fn the_api_shows_env_names_never_values() {
    let tmp = tempfile::tempdir().unwrap();
    let marks_file = tmp.path().join("marks");
    let registry = marking_registry(tmp.path(), &marks_file);
    let server = Server::start(&registry, &["--no-plugins"], |_| {});
    let r = get(&server.url("/api/v1/scripts"));
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("hunter2-do-not-show"), "{}", r.body);
    assert!(
        !r.body.contains(&*marks_file.to_string_lossy()),
        "{}",
        r.body
    );
    let scripts = r.json();
    let mark = &scripts["scripts"][0];
    assert_eq!(mark["id"], "mark");
    assert_eq!(mark["env_keys"], json!(["DEPLOY_API_KEY", "MARK_FILE"]));
    assert!(mark.get("env").is_none(), "{mark}");
    assert_eq!(scripts["scripts"][1]["env_keys"], json!([]));
    assert_eq!(server.run("mark")["success"], true);
    assert_eq!(marks(&marks_file), 1, "the script is given its environment");
}

/// A TCP connection from `source` (any 127.0.0.0/8 address is this host's) to `to`.
fn connect_from(source: Ipv4Addr, to: SocketAddrV4) -> TcpStream {
    use std::os::fd::FromRawFd;
    let sockaddr = |a: SocketAddrV4| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns until it hands it to
    // TcpStream; both sockaddr_in are fully initialised and outlive the calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let from = sockaddr(SocketAddrV4::new(source, 0));
        let r = libc::bind(fd, &from as *const _ as *const libc::sockaddr, len);
        assert_eq!(r, 0, "bind {source}: {}", std::io::Error::last_os_error());
        let dest = sockaddr(to);
        let r = libc::connect(fd, &dest as *const _ as *const libc::sockaddr, len);
        assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}

/// Whether the server closed `stream` (EOF or reset), reading whatever it sent first.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

/// 300 connections that say nothing, and some that send half a request head, hold
/// nothing the server needs to answer others: `/healthz` and the API answer while they
/// are open, and the server closes every one of them after its header timeout. One
/// address over its cap is refused (429) while others are served.
#[test]
fn idle_connections_keep_no_one_out_and_are_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = marking_registry(tmp.path(), &tmp.path().join("marks"));
    let server = Server::start(&registry, &["--no-plugins"], |_| {});
    let addr: SocketAddrV4 = server.http.trim_start_matches("http://").parse().unwrap();
    // From five addresses of this host (60 each, under the per-address cap of 64), as
    // five clients elsewhere would.
    let mut idle: Vec<TcpStream> = (0..300)
        .map(|i| connect_from(Ipv4Addr::new(127, 0, 0, 2 + (i % 5) as u8), addr))
        .collect();
    let head =
        format!("GET /api/v1/scripts HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n");
    for i in 0..20 {
        let mut s = connect_from(Ipv4Addr::new(127, 0, 0, 7), addr);
        s.write_all(&head.as_bytes()[..head.len() / (1 + i % 3)])
            .unwrap();
        idle.push(s);
    }
    let quick = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build();
    let quick: ureq::Agent = quick.into();
    let health = quick.get(&server.url("/healthz")).call();
    assert_eq!(
        health.map(|r| r.status().as_u16()).ok(),
        Some(200),
        "/healthz with 320 idle connections open"
    );
    let scripts = quick.get(&server.url("/api/v1/scripts")).call();
    assert_eq!(scripts.map(|r| r.status().as_u16()).ok(), Some(200));
    assert_eq!(server.run("hello")["stdout"], "hello\n");

    // One address at its cap: the next connection from it is answered 429 and closed;
    // this client (127.0.0.1) is still served.
    let crowded = Ipv4Addr::new(127, 0, 0, 8);
    let mut at_cap: Vec<TcpStream> = (0..64).map(|_| connect_from(crowded, addr)).collect();
    let mut over = connect_from(crowded, addr);
    over.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    let _ = over.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 429") && answer.contains("--max-connections-per-peer"),
        "{answer:?}"
    );
    assert_eq!(get(&server.url("/healthz")).status, 200);
    assert!(metric(&server, "metaclaude_server_connections_refused_total") >= 1.0);

    // Every idle connection is closed by the server (the header timeout is 10 s).
    idle.append(&mut at_cap);
    for s in &idle {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut open: Vec<TcpStream> = idle;
    while !open.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} idle connections still open after the header timeout",
            open.len()
        );
        open.retain_mut(|s| !closed_by_server(s));
    }
    // Those that had begun a head are counted (an idle one closed is no error).
    assert!(metric(&server, "metaclaude_server_header_timeouts_total") >= 20.0);
    // And the address that was at its cap is served again.
    let mut again = connect_from(crowded, addr);
    again
        .write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    again
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    let _ = again.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}
