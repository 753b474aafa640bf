//! The `http` import: outgoing POSTs for notifiers, only to granted destinations.
//!
//! A grant is a pattern `scheme://host[:port][/path]` where `*` matches any run of
//! characters. The check is made on what is actually connected to: the URL must match a
//! grant, and the socket address connected to must be one the grant's host resolves to
//! (for grants naming a host without wildcards). Redirects are never followed: a 3xx is
//! returned to the plugin as it is, so a server cannot steer the request elsewhere.
//! Plain `http://` only for now: TLS is not built into the host yet.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

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
        other => return Err(format!("scheme `{other}` is not supported (http only)")),
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

/// POSTs `body` to `url` if a grant allows it.
pub fn http_post(
    grants: &[String],
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
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
    if u.scheme == "https" {
        return Err("https is not supported by this host yet (plain http only)".into());
    }
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
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(10))))
        .map_err(|e| e.to_string())?;
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: metaclaude/{}\r\n",
        u.path,
        u.host,
        u.port,
        body.len(),
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
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| format!("cannot send to {addr}: {e}"))?;
    read_response(stream).map_err(|e| format!("bad response from {addr}: {e}"))
}

fn read_response(stream: TcpStream) -> std::io::Result<Response> {
    let mut reader = BufReader::new(stream.take(16 * 1024 * 1024));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    let mut length = None;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse::<usize>().ok();
            }
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body)?;
        }
        None => {
            reader.read_to_end(&mut body)?;
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
