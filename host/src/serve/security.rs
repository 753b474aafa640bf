//! The server's defaults are the point: a `Host` header must name the server (against DNS
//! rebinding), a token (when configured) is needed for everything but `/healthz`, a
//! browser gets it once in a URL and keeps it in an HttpOnly, SameSite=Strict cookie,
//! WebSocket upgrades must come from the server's own origin, and every response carries
//! strict security headers. No CORS headers are ever sent.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::error::ApiError;
use super::ServerState;

/// The cookie a browser keeps the token in.
pub const COOKIE: &str = "metaclaude_token";

/// Who may talk to the server, and how it must say so.
#[derive(Debug, Clone)]
pub struct Access {
    /// `host:port` values the `Host` header may have (lower case).
    allowed_hosts: Vec<String>,
    /// Origins a WebSocket upgrade may come from (`http://host:port`, lower case).
    allowed_origins: Vec<String>,
    token: Option<Arc<str>>,
}

impl Access {
    /// For a server bound to `bind` on `ports`: the loopback names for a loopback
    /// address, the address itself otherwise, and `extra_hosts` (names the operator
    /// serves it under).
    pub fn new(
        bind: IpAddr,
        ports: &[u16],
        token: Option<String>,
        extra_hosts: &[String],
    ) -> Access {
        let mut names: Vec<String> = vec![host_text(bind)];
        if bind.is_loopback() || bind.is_unspecified() {
            names.extend(["localhost", "127.0.0.1", "[::1]"].map(String::from));
        }
        names.extend(extra_hosts.iter().map(|h| h.to_ascii_lowercase()));
        names.sort();
        names.dedup();
        let mut allowed_hosts = Vec::new();
        let mut allowed_origins = Vec::new();
        for name in &names {
            for port in ports {
                allowed_hosts.push(format!("{name}:{port}"));
                allowed_origins.push(format!("http://{name}:{port}"));
                allowed_origins.push(format!("https://{name}:{port}"));
            }
            // A browser leaves out the default ports.
            if ports.contains(&80) {
                allowed_hosts.push(name.clone());
                allowed_origins.push(format!("http://{name}"));
            }
        }
        Access {
            allowed_hosts,
            allowed_origins,
            token: token.map(Arc::from),
        }
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed_hosts.contains(&host)
    }

    /// Whether a WebSocket upgrade with these headers comes from an allowed origin (a
    /// client that sends no `Origin`, not a browser, is judged by its token alone).
    pub fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        match headers.get(header::ORIGIN).map(|o| o.to_str()) {
            None => true,
            Some(Ok(origin)) => {
                let origin = origin.to_ascii_lowercase();
                self.allowed_origins.contains(&origin)
            }
            Some(Err(_)) => false,
        }
    }

    /// Whether the request carries the token (always, when there is none).
    fn authorised(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
            .next();
        [bearer, cookie]
            .into_iter()
            .flatten()
            .any(|given| same(given.as_bytes(), token.as_bytes()))
    }

    /// The token given in the URL (`?token=`), if it is the right one.
    fn token_in_query(&self, uri: &Uri) -> bool {
        let Some(token) = &self.token else {
            return false;
        };
        uri.query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter_map(|pair| pair.strip_prefix("token="))
            .any(|given| same(given.as_bytes(), token.as_bytes()))
    }
}

/// The address as a `Host` header writes it.
fn host_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// Compares secrets in time that depends on their length only.
fn same(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// Whether serving on `addr` needs a token: anything but a loopback address does.
pub fn needs_token(addr: SocketAddr) -> bool {
    !addr.ip().is_loopback()
}

/// The middleware every request goes through: Host check, token, security headers.
pub async fn guard(
    State(state): State<Arc<ServerState>>,
    request: Request,
    next: Next,
) -> Response {
    let access = &state.access;
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let mut response = if !access.host_allowed(host) {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "host_not_allowed",
            format!(
                "the Host header {host:?} does not name this server; use the address it prints, or start it with --allow-host NAME"
            ),
        )
        .into_response()
    } else if request.uri().path() == "/healthz" || access.authorised(request.headers()) {
        match CatchPanic(Box::pin(next.run(request))).await {
            Ok(response) => response,
            Err(()) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the server failed on this request (a bug, reported in its log); the server goes on",
            )
            .into_response(),
        }
    } else if request.method() == axum::http::Method::GET && access.token_in_query(request.uri()) {
        // A browser opening the printed URL: keep the token in a cookie, and take it out
        // of the address bar (and of the history).
        let clean = without_token(request.uri());
        let mut r = Redirect::to(&clean).into_response();
        let cookie = format!(
            "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
            token_value(access)
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        r
    } else {
        let mut r = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this server needs its token: send `Authorization: Bearer <token>` (the contents of its --token-file)",
        )
        .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    };
    add_security_headers(response.headers_mut());
    response
}

/// A future whose panic becomes `Err(())` (logged by the panic hook), so that one bad
/// request answers 500 instead of dropping its connection.
struct CatchPanic<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for CatchPanic<F> {
    type Output = Result<F::Output, ()>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(_) => std::task::Poll::Ready(Err(())),
        }
    }
}

fn token_value(access: &Access) -> String {
    access.token.as_deref().unwrap_or("").to_string()
}

/// The request's path and query without its `token=` pair.
fn without_token(uri: &Uri) -> String {
    let kept: Vec<&str> = uri
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|pair| !pair.starts_with("token=") && !pair.is_empty())
        .collect();
    if kept.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    }
}

/// Headers every response carries.
fn add_security_headers(headers: &mut HeaderMap) {
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=()",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_ports() {
        let a = Access::new("127.0.0.1".parse().unwrap(), &[8080, 8081], None, &[]);
        for ok in [
            "127.0.0.1:8080",
            "localhost:8081",
            "LOCALHOST:8080",
            "[::1]:8080",
        ] {
            assert!(a.host_allowed(ok), "{ok}");
        }
        for bad in ["evil.example:8080", "127.0.0.1:9999", "127.0.0.1", ""] {
            assert!(!a.host_allowed(bad), "{bad}");
        }
        let mut h = HeaderMap::new();
        assert!(a.origin_allowed(&h), "no Origin: not a browser");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://localhost:8080"),
        );
        assert!(a.origin_allowed(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!a.origin_allowed(&h));
    }

    #[test]
    fn tokens_from_header_or_cookie() {
        let a = Access::new(
            "10.0.0.5".parse().unwrap(),
            &[8080],
            Some("s3cret-token".into()),
            &[],
        );
        assert!(a.host_allowed("10.0.0.5:8080") && !a.host_allowed("localhost:8080"));
        let mut h = HeaderMap::new();
        assert!(!a.authorised(&h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret-token"),
        );
        assert!(a.authorised(&h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret-tokeX"),
        );
        assert!(!a.authorised(&h));
        h.remove(header::AUTHORIZATION);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; metaclaude_token=s3cret-token"),
        );
        assert!(a.authorised(&h));
        assert!(a.token_in_query(&"/?x=1&token=s3cret-token".parse().unwrap()));
        assert_eq!(
            without_token(&"/p?x=1&token=s3cret-token".parse().unwrap()),
            "/p?x=1"
        );
        assert!(needs_token("0.0.0.0:8080".parse().unwrap()));
        assert!(!needs_token("127.0.0.1:8080".parse().unwrap()));
    }
}
