//! The `http` import: outgoing POSTs for notifiers, only to granted destinations.
//!
//! What may go out is decided in `outbound` (the URL validated, then matched against the
//! `capabilities.http` grants, the headers checked) before anything touches the network;
//! this module does the I/O under those rules:
//! * the URL's host is resolved once, every address is checked against the grant (a
//!   wildcard grant reaches public addresses only), and the connection goes to a checked
//!   address: no second lookup a DNS answer could change (rebinding);
//! * the whole exchange, lookup, connect, TLS handshake, request and the complete answer,
//!   ends by one deadline: nine tenths of the plugin's `limits.call_timeout_ms`, counted
//!   from the start of the plugin's call, so that a server answering a byte at a time
//!   cannot hold the plugin's worker, and the plugin still has time to report the error;
//! * redirects are never followed: a 3xx is returned to the plugin as it is, so a server
//!   cannot steer the request elsewhere;
//! * an answer is read up to 16 MiB, whatever it announces.
//!
//! `https://` goes through rustls, verifying the server's certificate against the
//! system's trusted roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` point elsewhere, e.g. at a
//! private CA) and the URL's host name: a granted name can only be answered by a server
//! holding a certificate for it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::plugin::http::outbound::{self, Grant, HeaderError, Host, Url, UrlError};

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// When an `http` call must be over.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    /// The deadline of an `http` call made during a plugin call that started at `started`
    /// and may last `call_timeout`: nine tenths of it, so that the plugin is still
    /// running when the import gives up and can report why (past the whole timeout it
    /// would be interrupted instead).
    pub fn for_call(started: Instant, call_timeout: Duration) -> Deadline {
        Deadline::after(started, call_timeout * 9 / 10)
    }

    /// `budget` from `start`.
    pub fn after(start: Instant, budget: Duration) -> Deadline {
        Deadline {
            at: start + budget,
            budget,
        }
    }

    /// The time left, or a timeout error once there is none.
    fn left(&self) -> std::io::Result<Duration> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(std::io::ErrorKind::TimedOut.into())
        } else {
            Ok(left)
        }
    }

    fn passed(&self) -> bool {
        Instant::now() >= self.at
    }
}

/// Why an `http` call did not return an answer; shown to the plugin as its error.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("the URL {url:?} {source}")]
    Url {
        url: String,
        #[source]
        source: UrlError,
    },
    #[error("destination {url} is not granted (capabilities.http allows: {allowed})")]
    NotGranted { url: String, allowed: String },
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("cannot resolve {host}: {message}")]
    Resolve { host: String, message: String },
    #[error("{host} resolves to {addr}, {class}, which the wildcard grant `{grant}` does not reach (a grant with a `*` in its host reaches public addresses only): to send there, grant that destination explicitly in capabilities.http, e.g. \"{example}\"")]
    Address {
        host: String,
        addr: IpAddr,
        class: &'static str,
        grant: String,
        example: String,
    },
    #[error("cannot connect to {addr}: {message}")]
    Connect { addr: SocketAddr, message: String },
    #[error("{stage} {target}: the call's deadline passed ({} ms, nine tenths of limits.call_timeout_ms, from the start of the plugin's call): the server is too slow, or raise limits.call_timeout_ms", budget.as_millis())]
    Deadline {
        stage: &'static str,
        target: String,
        budget: Duration,
    },
    #[error("{0}")]
    Tls(String),
    #[error("cannot send to {addr}: {message}")]
    Send { addr: SocketAddr, message: String },
    #[error("bad response from {addr}: {message}")]
    Response { addr: SocketAddr, message: String },
}

/// Parses every `capabilities.http` entry; the manifest checked them when it was read.
pub fn grants(patterns: &[String]) -> Vec<Grant> {
    patterns
        .iter()
        .filter_map(|p| outbound::parse_grant(p).ok())
        .collect()
}

/// The TLS client settings for https destinations: the system's trusted roots, loaded
/// once per process (reading the certificate store costs milliseconds; a notifier may
/// post often).
fn system_tls() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _unparsable) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                return Err(format!(
                    "no trusted root certificates found for https{}: install the \
                     ca-certificates package, or point SSL_CERT_FILE at a PEM bundle",
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", why.join("; "))
                    }
                ));
            }
            tls_config(roots)
        })
        .clone()
}

/// TLS 1.2 and 1.3 with the ring provider, verifying against `roots`.
fn tls_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// POSTs `body` to `url` if one of `grants` allows it, by `deadline`.
pub fn http_post(
    grants: &[Grant],
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    deadline: Deadline,
) -> Result<Response, HttpError> {
    post(grants, url, headers, body, deadline, system_tls)
}

/// [`http_post`] with the TLS settings (asked for only when the URL is https) given.
fn post(
    grants: &[Grant],
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    deadline: Deadline,
    tls: impl FnOnce() -> Result<Arc<ClientConfig>, String>,
) -> Result<Response, HttpError> {
    let u = outbound::parse_url(url).map_err(|source| HttpError::Url {
        url: url.to_string(),
        source,
    })?;
    let Some(grant) = outbound::find_grant(grants, &u) else {
        return Err(HttpError::NotGranted {
            url: url.to_string(),
            allowed: if grants.is_empty() {
                "nothing".to_string()
            } else {
                let texts: Vec<&str> = grants.iter().map(|g| g.text.as_str()).collect();
                texts.join(", ")
            },
        });
    };
    let request = outbound::request_head(&u, headers, body.len())?;
    let addrs = reachable(grant, &u, resolve(&u, &deadline)?)?;
    let (tcp, addr) = connect(&addrs, &deadline)?;
    let timed = Timed { tcp, deadline };
    let failed = |stage: &'static str, error: std::io::Error| {
        if deadline.passed()
            || matches!(
                error.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            )
        {
            HttpError::Deadline {
                stage,
                target: addr.to_string(),
                budget: deadline.budget,
            }
        } else if stage == SENDING {
            HttpError::Send {
                addr,
                message: error.to_string(),
            }
        } else {
            HttpError::Response {
                addr,
                message: error.to_string(),
            }
        }
    };
    let exchange = |stream: &mut dyn ReadWrite| {
        stream
            .write_all(request.as_bytes())
            .and_then(|()| stream.write_all(body))
            .and_then(|()| stream.flush())
            .map_err(|e| failed(SENDING, e))?;
        read_response(stream).map_err(|e| failed(READING, e))
    };
    if u.scheme == outbound::Scheme::Https {
        let host = u.host.to_string();
        let name = ServerName::try_from(host.clone())
            .map_err(|e| HttpError::Tls(format!("`{host}` is not a valid TLS server name: {e}")))?;
        let connection = ClientConnection::new(tls().map_err(HttpError::Tls)?, name)
            .map_err(|e| HttpError::Tls(format!("TLS setup for {host}: {e}")))?;
        exchange(&mut StreamOwned::new(connection, timed))
    } else {
        exchange(&mut { timed })
    }
}

const SENDING: &str = "sending to";
const READING: &str = "reading the answer of";

/// The addresses of the URL's host, looked up once (within the deadline: a lookup that
/// hangs is left to finish on a thread of its own).
fn resolve(u: &Url, deadline: &Deadline) -> Result<Vec<SocketAddr>, HttpError> {
    let name = match &u.host {
        Host::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, u.port)]),
        Host::Name(name) => name.clone(),
    };
    let too_late = || HttpError::Deadline {
        stage: "resolving",
        target: name.clone(),
        budget: deadline.budget,
    };
    let left = deadline.left().map_err(|_| too_late())?;
    let (tx, rx) = mpsc::channel();
    let query = (name.clone(), u.port);
    std::thread::Builder::new()
        .name("http-resolve".into())
        .spawn(move || {
            let _ = tx.send(query.to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
        })
        .map_err(|e| HttpError::Resolve {
            host: name.clone(),
            message: format!("no thread for the lookup: {e}"),
        })?;
    let mut addrs = match rx.recv_timeout(left) {
        Ok(Ok(addrs)) => addrs,
        Ok(Err(e)) => {
            return Err(HttpError::Resolve {
                host: name,
                message: e.to_string(),
            })
        }
        Err(mpsc::RecvTimeoutError::Timeout) => return Err(too_late()),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            return Err(HttpError::Resolve {
                host: name,
                message: "the lookup ended without an answer".into(),
            })
        }
    };
    addrs.dedup();
    if addrs.is_empty() {
        return Err(HttpError::Resolve {
            host: name,
            message: "no address".into(),
        });
    }
    Ok(addrs)
}

/// The addresses `grant` reaches among `addrs`; an error naming the first refused one
/// when there is none.
fn reachable(grant: &Grant, u: &Url, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, HttpError> {
    let mut refused = None;
    let mut kept = Vec::with_capacity(addrs.len());
    for addr in addrs {
        match grant.reaches(addr.ip()) {
            Ok(()) => kept.push(addr),
            Err(class) => {
                refused.get_or_insert((addr, class));
            }
        }
    }
    match (kept.is_empty(), refused) {
        (true, Some((addr, class))) => Err(HttpError::Address {
            host: u.host.to_string(),
            addr: addr.ip(),
            class: class.describe(),
            grant: grant.text.clone(),
            example: format!("{}://{}{}", u.scheme.as_str(), addr, u.path()),
        }),
        _ => Ok(kept),
    }
}

/// A connection to the first of `addrs` that answers in time.
fn connect(
    addrs: &[SocketAddr],
    deadline: &Deadline,
) -> Result<(TcpStream, SocketAddr), HttpError> {
    let mut last = None;
    for addr in addrs {
        let left = deadline.left().map_err(|_| HttpError::Deadline {
            stage: "connecting to",
            target: addr.to_string(),
            budget: deadline.budget,
        })?;
        match TcpStream::connect_timeout(addr, left) {
            Ok(tcp) => return Ok((tcp, *addr)),
            Err(e) if deadline.passed() || e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(HttpError::Deadline {
                    stage: "connecting to",
                    target: addr.to_string(),
                    budget: deadline.budget,
                })
            }
            Err(e) => last = Some((*addr, e)),
        }
    }
    Err(match last {
        Some((addr, e)) => HttpError::Connect {
            addr,
            message: e.to_string(),
        },
        None => HttpError::Resolve {
            host: String::new(),
            message: "no address to connect to".into(),
        },
    })
}

/// A plain or TLS connection.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A connection whose every read and write waits at most until the deadline.
struct Timed {
    tcp: TcpStream,
    deadline: Deadline,
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.deadline.left()?))?;
        self.tcp.read(buf)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.deadline.left()?))?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

/// Responses are read up to this size: a notifier needs the status and a short body.
const MAX_RESPONSE: u64 = 16 * 1024 * 1024;

fn read_response(stream: &mut dyn ReadWrite) -> std::io::Result<Response> {
    let mut reader = BufReader::new(Read::take(stream, MAX_RESPONSE));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    let mut length = None;
    let mut chunked = false;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse::<u64>().ok();
            }
            if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.to_ascii_lowercase().contains("chunked");
            }
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let too_big = || std::io::Error::other(format!("body larger than {MAX_RESPONSE} bytes"));
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or_default();
            let size = u64::from_str_radix(size, 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size line {line:?}")))?;
            if size == 0 {
                break; // trailers, if any, are not needed
            }
            if body.len() as u64 + size > MAX_RESPONSE {
                return Err(too_big());
            }
            let start = body.len();
            body.resize(start + size as usize, 0);
            reader.read_exact(&mut body[start..])?;
            line.clear();
            reader.read_line(&mut line)?; // the CRLF after each chunk
        }
    } else if let Some(n) = length {
        if n > MAX_RESPONSE {
            return Err(too_big());
        }
        body.resize(n as usize, 0);
        reader.read_exact(&mut body)?;
    } else {
        // Delimited by the end of the connection. A TLS server that closes without
        // close_notify ends it just as well for a POST's answer (`Connection: close`).
        match reader.read_to_end(&mut body) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
            other => {
                other?;
            }
        }
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response_to(raw: &[u8]) -> std::io::Result<Response> {
        read_response(&mut std::io::Cursor::new(raw.to_vec()))
    }

    #[test]
    fn chunked_and_length_delimited_bodies_are_read_whole() {
        let r = response_to(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nok\r\nA\r\n, accepted\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok, accepted"[..]));
        let r = response_to(b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, &b"abc"[..]));
        let r = response_to(b"HTTP/1.0 204 No Content\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.len()), (204, 0));
    }

    #[test]
    fn a_server_cannot_make_the_host_allocate_what_it_announces() {
        let err = response_to(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\n")
            .err()
            .unwrap();
        assert!(err.to_string().contains("body larger than"), "{err}");
        let err =
            response_to(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffff\r\n")
                .err()
                .unwrap();
        assert!(err.to_string().contains("body larger than"), "{err}");
    }

    fn soon() -> Deadline {
        Deadline::after(Instant::now(), Duration::from_secs(10))
    }

    fn granted(patterns: &[String]) -> Vec<Grant> {
        let parsed = grants(patterns);
        assert_eq!(parsed.len(), patterns.len(), "{patterns:?}");
        parsed
    }

    /// A listener on loopback that no test call may reach: `assert_untouched` checks
    /// that no connection is waiting to be accepted.
    fn untouched() -> (std::net::TcpListener, u16) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        (listener, port)
    }

    fn assert_untouched(listener: &std::net::TcpListener, case: &str) {
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("{case}: the server was reached: {other:?}"),
        }
    }

    /// A server on loopback for one connection: it reads the whole request (the head,
    /// then as many body bytes as Content-Length says), then `respond`s; its thread
    /// returns the request and what `respond` returned.
    fn serve_once<T: Send + 'static>(
        respond: impl FnOnce(&mut std::net::TcpStream) -> T + Send + 'static,
    ) -> (u16, std::thread::JoinHandle<(String, T)>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = s.read(&mut buf).unwrap();
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
                assert!(n > 0, "connection closed mid-request");
            }
            let answer = respond(&mut s);
            (String::from_utf8_lossy(&req).to_string(), answer)
        });
        (port, server)
    }

    #[test]
    fn ungranted_destinations_are_refused_before_connecting() {
        let err = http_post(
            &granted(&["http://127.0.0.1:9/*".to_string()]),
            "http://127.0.0.2:9/x",
            &[],
            b"",
            soon(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("is not granted"), "{err}");
    }

    #[test]
    fn bad_paths_and_headers_are_refused_before_connecting() {
        let (listener, port) = untouched();
        let grants = granted(&[format!("http://127.0.0.1:{port}/hooks/*")]);
        let base = format!("http://127.0.0.1:{port}/hooks");
        let json = ("Content-Type".to_string(), "application/json".to_string());
        for (url, header, reason) in [
            (
                format!("{base}/a\r\nX-Injected: 1"),
                json.clone(),
                "line break (CR)",
            ),
            (format!("{base}/a HTTP/1.1"), json.clone(), "has a space"),
            (format!("{base}/../admin"), json.clone(), "which is `..`"),
            (
                format!("{base}/%2e%2e/admin"),
                json.clone(),
                "`..` once percent-decoded",
            ),
            (
                format!("{base}/%2E./admin"),
                json.clone(),
                "`..` once percent-decoded",
            ),
            (
                format!("{base}/..%2fadmin"),
                json.clone(),
                "`..` once percent-decoded",
            ),
            (format!("{base}/..\\admin"), json.clone(), "backslash"),
            (
                format!("http://u@127.0.0.1:{port}/hooks/x"),
                json.clone(),
                "credentials",
            ),
            (
                format!("{base}/ok"),
                ("X-A".to_string(), "1\r\nX-Injected: 1".to_string()),
                "line break in its value",
            ),
            (
                format!("{base}/ok"),
                ("Transfer-Encoding".to_string(), "chunked".to_string()),
                "is the host's",
            ),
        ] {
            let err = http_post(&grants, &url, &[header], b"{}", soon())
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(reason), "{url:?}: {err}");
            assert!(!err.contains('\r') && !err.contains('\n'), "{err:?}");
            assert_untouched(&listener, &url);
        }
    }

    #[test]
    fn a_wildcard_grant_does_not_reach_loopback() {
        let (listener, port) = untouched();
        for (grant, url) in [
            (
                format!("http://*:{port}/*"),
                format!("http://127.0.0.1:{port}/x"),
            ),
            (
                "http://*:*/*".to_string(),
                format!("http://localhost:{port}/x"),
            ),
            (
                format!("http://*.0.0.1:{port}/*"),
                format!("http://127.0.0.1:{port}/x"),
            ),
        ] {
            let err = http_post(
                &granted(std::slice::from_ref(&grant)),
                &url,
                &[],
                b"",
                soon(),
            )
            .err()
            .unwrap()
            .to_string();
            assert!(
                err.contains("a loopback address")
                    && err.contains(&format!("the wildcard grant `{grant}`"))
                    && err.contains("grant that destination explicitly")
                    && (err.contains("127.0.0.1") || err.contains("::1")),
                "{grant} {url}: {err}"
            );
            assert_untouched(&listener, &url);
        }
    }

    /// Named explicitly, loopback is reached; `localhost`'s addresses are tried in turn
    /// (the listener is on 127.0.0.1 only, `::1` may come first).
    #[test]
    fn an_explicit_grant_reaches_loopback_by_name() {
        let (port, server) = serve_once(|s| {
            s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        });
        let r = http_post(
            &granted(&[format!("http://localhost:{port}/*")]),
            &format!("http://localhost:{port}/hook#never-sent"),
            &[],
            b"",
            soon(),
        )
        .unwrap();
        assert_eq!(r.status, 204);
        let (request, ()) = server.join().unwrap();
        assert!(
            request.starts_with(&format!(
                "POST /hook HTTP/1.1\r\nHost: localhost:{port}\r\n"
            )),
            "{request}"
        );
    }

    /// A server that answers one byte every 50 ms, for up to 10 s, cannot keep the call
    /// past its deadline: the answer is cut off, and the error says why.
    #[test]
    fn a_trickling_server_is_cut_off_at_the_deadline() {
        let (port, server) = serve_once(|s| {
            let answer = format!("HTTP/1.1 200 OK\r\nX-Slow: {}\r\n\r\n", "a".repeat(200));
            let mut sent = 0;
            for b in answer.as_bytes() {
                if s.write_all(&[*b]).is_err() {
                    break;
                }
                sent += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            (sent, answer.len())
        });
        let err = http_post(
            &granted(&[format!("http://127.0.0.1:{port}/*")]),
            &format!("http://127.0.0.1:{port}/slow"),
            &[],
            b"",
            Deadline::after(Instant::now(), Duration::from_millis(1000)),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.starts_with(&format!(
                "reading the answer of 127.0.0.1:{port}: the call's deadline passed (1000 ms"
            )),
            "{err}"
        );
        let (_, (sent, whole)) = server.join().unwrap();
        assert!(sent < whole, "the whole answer was read: {sent} bytes");
    }

    #[test]
    fn a_call_whose_deadline_has_passed_does_not_connect() {
        let (listener, port) = untouched();
        let err = http_post(
            &granted(&[format!("http://127.0.0.1:{port}/*")]),
            &format!("http://127.0.0.1:{port}/x"),
            &[],
            b"",
            Deadline::after(Instant::now(), Duration::ZERO),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.starts_with("connecting to 127.0.0.1:"), "{err}");
        assert!(err.contains("deadline passed"), "{err}");
        assert_untouched(&listener, "passed deadline");
    }

    #[test]
    fn posts_to_a_granted_loopback_server() {
        let (port, server) = serve_once(|s| {
            s.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
        });
        let r = http_post(
            &granted(&[format!("http://127.0.0.1:{port}/*")]),
            &format!("http://127.0.0.1:{port}/hook"),
            &[("Content-Type".into(), "application/json".into())],
            b"{}",
            soon(),
        )
        .unwrap();
        assert_eq!(r.status, 202);
        assert_eq!(r.body, b"ok");
        let (req, ()) = server.join().unwrap();
        assert!(req.starts_with("POST /hook HTTP/1.1\r\n"), "{req}");
        assert!(req.ends_with("\r\n\r\n{}"), "{req}");
    }
}
