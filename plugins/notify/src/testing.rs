//! For integration tests: a real Alertmanager (Debian's `prometheus-alertmanager`) on a
//! free loopback port, a plain HTTP/1.1 client, a listener that records what is posted to
//! it, and bounded polling. Everything binds 127.0.0.1 only.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where Debian installs Alertmanager.
pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
/// How to get it (as root).
pub const INSTALL: &str = "apt-get install -y prometheus-alertmanager";

/// Polls `probe` every 50 ms until it gives a value; panics naming `what` (and the last
/// thing `probe` said, through `last`) after `timeout`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut(&mut String) -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        if let Some(v) = probe(&mut last) {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("{what}: not within {timeout:?} (last seen: {last})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback port nobody listens on (just now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// An HTTP answer: status and body as text.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// One HTTP/1.1 request with `Connection: close`; a JSON body when given.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.unwrap_or_default().as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let bad =
        |why: &str| std::io::Error::other(format!("{why}: {}", String::from_utf8_lossy(&raw)));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

/// A running Alertmanager, stopped (killed and reaped) when dropped.
pub struct Alertmanager {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager with `config` (its YAML) and a fresh storage directory, without
    /// clustering, on a free loopback port, and waits until it is ready. Panics with the
    /// install command when the binary is missing.
    pub fn start(config: &str) -> Alertmanager {
        assert!(
            std::path::Path::new(ALERTMANAGER).exists(),
            "{ALERTMANAGER} is missing: install it with `{INSTALL}` (as root)"
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config_file = dir.path().join("alertmanager.yml");
        std::fs::write(&config_file, config).expect("writing alertmanager.yml");
        let log = dir.path().join("alertmanager.log");
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let output = File::create(&log).expect("the log file");
        let errors = output.try_clone().expect("the log file");
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=debug")
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {ALERTMANAGER}: {e}"));
        let mut am = Alertmanager {
            child,
            addr,
            log,
            _dir: dir,
        };
        wait_for("Alertmanager ready", Duration::from_secs(30), |last| {
            if let Ok(Some(status)) = am.child.try_wait() {
                panic!(
                    "Alertmanager exited ({status}) before it was ready:\n{}",
                    am.log()
                );
            }
            match request(am.addr, "GET", "/-/ready", None) {
                Ok(r) if r.status == 200 => Some(()),
                Ok(r) => {
                    *last = format!("HTTP {}", r.status);
                    None
                }
                Err(e) => {
                    *last = e.to_string();
                    None
                }
            }
        });
        am
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, None)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log()))
    }

    pub fn post(&self, path: &str, json: &str) -> Response {
        request(self.addr, "POST", path, Some(json))
            .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.log()))
    }

    /// What Alertmanager logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request the [`Listener`] received.
#[derive(Debug)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A loopback HTTP server answering every request `200 OK` and handing each to the test.
pub struct Listener {
    pub addr: SocketAddr,
    received: Receiver<Received>,
    stop: Arc<AtomicBool>,
}

impl Listener {
    pub fn start() -> Listener {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback listener");
        let addr = listener.local_addr().expect("its address");
        let (tx, received) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                if let Some(r) = receive(stream) {
                    if tx.send(r).is_err() {
                        return;
                    }
                }
            }
        });
        Listener {
            addr,
            received,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request, waiting at most `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<Received> {
        self.received.recv_timeout(timeout).ok()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn receive(stream: TcpStream) -> Option<Received> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = Vec::new();
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        if k.eq_ignore_ascii_case("content-length") {
            length = v.trim().parse().ok()?;
        }
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = reader.into_inner();
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    Some(Received {
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The shape of a JSON value: objects by their keys' shapes, arrays by their first item's,
/// scalars by type (`"string"`, `"number"`, `"bool"`, `"null"`). Two payloads of the same
/// shape have the same keys, nested the same way, with values of the same types.
pub fn shape(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().take(1).map(shape).collect()),
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}
