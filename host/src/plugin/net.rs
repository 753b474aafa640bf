//! The `http` import: outgoing POSTs for notifiers, only to granted destinations.
//!
//! A grant is a pattern `scheme://host[:port][/path]` where `*` matches any run of
//! characters. The check is made on what is actually connected to: the URL must match a
//! grant, and the socket address connected to must be one the grant's host resolves to
//! (for grants naming a host without wildcards). Redirects are never followed: a 3xx is
//! returned to the plugin as it is, so a server cannot steer the request elsewhere.
//!
//! `https://` goes through rustls, verifying the server's certificate against the
//! system's trusted roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` point elsewhere, e.g. at a
//! private CA) and the URL's host name: a granted name can only be answered by a server
//! holding a certificate for it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
struct Url<'a> {
    scheme: &'a str,
    host: &'a str,
    port: u16,
    path: &'a str,
}

fn parse_url(url: &str) -> Result<Url<'_>, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{url}` is not an absolute URL"))?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        other => {
            return Err(format!(
                "scheme `{other}` is not supported (http and https only)"
            ))
        }
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("bad port in `{url}`"))?,
        ),
        _ => (authority, default_port),
    };
    if host.is_empty() {
        return Err(format!("no host in `{url}`"));
    }
    Ok(Url {
        scheme,
        host: host.trim_start_matches('[').trim_end_matches(']'),
        port,
        path,
    })
}

/// `*` matches any run of characters (including none).
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
        }
    }
}

fn grant_matches(grant: &str, url: &Url) -> bool {
    let Ok(g) =
        parse_url(grant.trim_end_matches('*').trim_end_matches('/')).or_else(|_| parse_url(grant))
    else {
        return false;
    };
    let path_pattern = grant
        .split_once("://")
        .and_then(|(_, r)| r.find('/').map(|i| &r[i..]))
        .unwrap_or("/*");
    g.scheme == url.scheme
        && glob(&g.host.to_ascii_lowercase(), &url.host.to_ascii_lowercase())
        && g.port == url.port
        && glob(path_pattern, url.path)
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

/// POSTs `body` to `url` if a grant allows it.
pub fn http_post(
    grants: &[String],
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Response, String> {
    post(grants, url, headers, body, system_tls)
}

/// [`http_post`] with the TLS settings (asked for only when the URL is https) given.
fn post(
    grants: &[String],
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    tls: impl FnOnce() -> Result<Arc<ClientConfig>, String>,
) -> Result<Response, String> {
    let u = parse_url(url)?;
    let Some(grant) = grants.iter().find(|g| grant_matches(g, &u)) else {
        return Err(format!(
            "destination {url} is not granted (capabilities.http allows: {})",
            if grants.is_empty() {
                "nothing".to_string()
            } else {
                grants.join(", ")
            }
        ));
    };
    let addrs: Vec<SocketAddr> = (u.host, u.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", u.host))?
        .collect();
    // Where the grant names a host without wildcards, the address connected to must be
    // one of that host's addresses.
    let grant_host = parse_url(grant.trim_end_matches('*')).map(|g| (g.host.to_string(), g.port));
    let permitted: Option<Vec<SocketAddr>> = match &grant_host {
        Ok((h, p)) if !h.contains('*') => {
            (h.as_str(), *p).to_socket_addrs().ok().map(|a| a.collect())
        }
        _ => None,
    };
    let addr = addrs
        .into_iter()
        .find(|a| permitted.as_ref().is_none_or(|p| p.contains(a)))
        .ok_or_else(|| {
            format!(
                "{} resolves to no address the grant {grant} permits",
                u.host
            )
        })?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .and_then(|()| tcp.set_write_timeout(Some(Duration::from_secs(10))))
        .map_err(|e| e.to_string())?;
    let request = request_head(&u, headers, body.len())?;
    let exchange = |stream: &mut dyn ReadWrite| {
        stream
            .write_all(request.as_bytes())
            .and_then(|()| stream.write_all(body))
            .and_then(|()| stream.flush())
            .map_err(|e| format!("cannot send to {addr}: {e}"))?;
        read_response(stream).map_err(|e| format!("bad response from {addr}: {e}"))
    };
    if u.scheme == "https" {
        let name = ServerName::try_from(u.host.to_string())
            .map_err(|e| format!("`{}` is not a valid TLS server name: {e}", u.host))?;
        let connection = ClientConnection::new(tls()?, name)
            .map_err(|e| format!("TLS setup for {}: {e}", u.host))?;
        exchange(&mut StreamOwned::new(connection, tcp))
    } else {
        exchange(&mut { tcp })
    }
}

/// A plain or TLS connection.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The request line and headers. The plugin's headers may not smuggle a line break, nor
/// replace `Host` or `Content-Length`.
fn request_head(u: &Url, headers: &[(String, String)], length: usize) -> Result<String, String> {
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: metaclaude/{}\r\n",
        u.path,
        u.host,
        u.port,
        length,
        env!("CARGO_PKG_VERSION")
    );
    for (k, v) in headers {
        if k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
            return Err(format!("header {k:?} contains a line break or colon"));
        }
        if k.eq_ignore_ascii_case("host") || k.eq_ignore_ascii_case("content-length") {
            continue;
        }
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    Ok(request)
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

    #[test]
    fn grants_match_scheme_host_port_and_path() {
        let u = parse_url("http://127.0.0.1:9093/api/v2/alerts").unwrap();
        assert!(grant_matches("http://127.0.0.1:9093/*", &u));
        assert!(grant_matches("http://127.0.0.1:9093/api/*", &u));
        assert!(!grant_matches("http://127.0.0.1:9094/*", &u));
        assert!(!grant_matches("https://127.0.0.1:9093/*", &u));
        assert!(!grant_matches("http://127.0.0.1:9093/other/*", &u));
        let u = parse_url("http://hooks.example.com/x").unwrap();
        assert!(grant_matches("http://*.example.com/*", &u));
        assert!(!grant_matches("http://*.example.org/*", &u));
    }

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

    #[test]
    fn ungranted_destinations_are_refused_before_connecting() {
        let err = http_post(
            &["http://127.0.0.1:9/*".to_string()],
            "http://127.0.0.2:9/x",
            &[],
            b"",
        )
        .err()
        .unwrap();
        assert!(err.contains("is not granted"), "{err}");
    }

    #[test]
    fn posts_to_a_granted_loopback_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            // The head and the body may arrive in separate reads: read until the whole
            // body announced by Content-Length is in.
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
            let req = String::from_utf8_lossy(&req).to_string();
            s.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
            req
        });
        let r = http_post(
            &[format!("http://127.0.0.1:{port}/*")],
            &format!("http://127.0.0.1:{port}/hook"),
            &[("Content-Type".into(), "application/json".into())],
            b"{}",
        )
        .unwrap();
        assert_eq!(r.status, 202);
        assert_eq!(r.body, b"ok");
        let req = server.join().unwrap();
        assert!(req.starts_with("POST /hook HTTP/1.1\r\n"), "{req}");
        assert!(req.ends_with("\r\n\r\n{}"), "{req}");
    }
}
