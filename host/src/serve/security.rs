//! The server's defaults are the point:
//! * a `Host` header must name the server (against DNS rebinding);
//! * a request that changes something (any method but GET, HEAD, OPTIONS) or opens a
//!   WebSocket must come from one of the server's own pages or from a client that is no
//!   web page: a foreign `Origin`, or none with `Sec-Fetch-Site: cross-site | same-site`
//!   (a page on another port of the same host), is refused with 403;
//! * a request that changes something must say `Content-Type: application/json` (415
//!   otherwise), which a page cannot send to another origin without a CORS preflight,
//!   and no CORS header is ever sent;
//! * a token (when configured) is needed for everything but `/healthz`; a browser gets it
//!   once in a URL and then keeps, in an HttpOnly, SameSite=Strict cookie named for this
//!   server's port, an HMAC-SHA256 of the server's address under the token: never the
//!   token itself, and no key to another server that has the same token;
//! * every response carries strict security headers.
//!
//! These rules live here and nowhere else: [`guard`] (every request) and
//! [`same_origin_only`] (every route, after routing, before its handler).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::ServerState;

/// The start of the cookie's name; the server's HTTP port follows (`metaclaude_token_8080`).
const COOKIE_PREFIX: &str = "metaclaude_token_";

/// The one media type a request that changes something may have.
const JSON: &str = "application/json";

/// Who may talk to the server, and how it must say so.
#[derive(Debug, Clone)]
pub struct Access {
    /// `host:port` values the `Host` header may have (lower case).
    allowed_hosts: Vec<String>,
    /// This server's own origins (`http://host:port`, lower case): the `Origin` its own
    /// pages send.
    own_origins: Vec<String>,
    token: Option<Arc<str>>,
    /// `metaclaude_token_<http port>`.
    cookie_name: String,
    /// What the cookie holds: hex HMAC-SHA256 of this server's identity under the token.
    cookie_value: Option<String>,
}

impl Access {
    /// For a server bound to `bind` on `ports` (the HTTP port first): the loopback names
    /// for a loopback address, the address itself otherwise, and `extra_hosts` (names the
    /// operator serves it under).
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
        let mut own_origins = Vec::new();
        for name in &names {
            for port in ports {
                allowed_hosts.push(format!("{name}:{port}"));
                own_origins.push(format!("http://{name}:{port}"));
                own_origins.push(format!("https://{name}:{port}"));
            }
            // A browser leaves out the default ports.
            if ports.contains(&80) {
                allowed_hosts.push(name.clone());
                own_origins.push(format!("http://{name}"));
            }
        }
        let port = ports.first().copied().unwrap_or(0);
        let identity = format!("metaclaude cookie v1 {}:{port}", host_text(bind));
        let cookie_value = token
            .as_deref()
            .map(|t| hex(&hmac_sha256(t.as_bytes(), identity.as_bytes())));
        Access {
            allowed_hosts,
            own_origins,
            token: token.map(Arc::from),
            cookie_name: format!("{COOKIE_PREFIX}{port}"),
            cookie_value,
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed_hosts.contains(&host)
    }

    fn own_origin(&self, origin: &str) -> bool {
        self.own_origins.contains(&origin.to_ascii_lowercase())
    }

    /// Why this request is refused as cross-site before anything runs, if it is: one that
    /// changes something or opens a WebSocket from a page of another site, or one that
    /// changes something without a JSON content type.
    fn cross_site_refusal(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Option<ApiError> {
        let changes = changes_state(method);
        if !changes && !is_websocket_upgrade(headers) {
            return None;
        }
        let what = if changes {
            format!("{method} {}", uri.path())
        } else {
            "a WebSocket".to_string()
        };
        if let Some(e) = self.cross_site(&what, headers) {
            return Some(e);
        }
        if changes {
            return json_required(&what, headers).err();
        }
        None
    }

    /// A request from a page of another site (or of another port of this host): its
    /// `Origin` is not one of this server's, or, without one, its `Sec-Fetch-Site` says
    /// another site. A client that sends neither is no web page (curl, scripts).
    fn cross_site(&self, what: &str, headers: &HeaderMap) -> Option<ApiError> {
        let from_own_pages = format!(
            "requests that change something must come from this server's own pages ({}/) or from a client that is no web page (curl and scripts send no Origin)",
            self.own_origins.first().map(String::as_str).unwrap_or("")
        );
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
            if self.own_origin(&origin) {
                return None;
            }
            return Some(
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "origin_not_allowed",
                    format!(
                        "{what} from a page of {origin} is refused: {from_own_pages}; a name this server is reached under is added with --allow-host NAME"
                    ),
                )
                .with("origin", origin)
                .with("allowed_origins", self.own_origins.clone()),
            );
        }
        let site = headers.get("sec-fetch-site")?;
        let site = String::from_utf8_lossy(site.as_bytes()).into_owned();
        if matches!(site.as_str(), "same-origin" | "none") {
            return None;
        }
        Some(
            ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_site",
                format!(
                    "{what} sent by a page of another site (Sec-Fetch-Site: {site}) is refused: {from_own_pages}"
                ),
            )
            .with("sec_fetch_site", site),
        )
    }

    /// Whether the request carries the token, or the cookie this server gave for it
    /// (always, when there is none).
    fn authorised(&self, headers: &HeaderMap) -> bool {
        let (Some(token), Some(cookie_value)) = (&self.token, &self.cookie_value) else {
            return true;
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if bearer.is_some_and(|given| same(given.as_bytes(), token.as_bytes())) {
            return true;
        }
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .filter(|(name, _)| *name == self.cookie_name)
            .any(|(_, given)| same(given.as_bytes(), cookie_value.as_bytes()))
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

    /// The `Set-Cookie` value that keeps a browser signed in to this server.
    fn cookie(&self) -> String {
        format!(
            "{}={}; HttpOnly; SameSite=Strict; Path=/",
            self.cookie_name,
            self.cookie_value.as_deref().unwrap_or("")
        )
    }
}

/// Whether a request with `method` may change something (everything but GET, HEAD,
/// OPTIONS and TRACE may).
fn changes_state(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
}

/// `Ok` when the request says its body is JSON (`application/json`, parameters such as
/// `charset` aside); else 415 naming what it sent.
fn json_required(what: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let sent = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = sent
        .as_deref()
        .and_then(|s| s.split(';').next())
        .map(str::trim);
    if essence.is_some_and(|e| e.eq_ignore_ascii_case(JSON)) {
        return Ok(());
    }
    let said = match &sent {
        Some(s) => format!("Content-Type: {s}"),
        None => "no Content-Type".to_string(),
    };
    let e = ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "{what} takes JSON: send `Content-Type: {JSON}` (curl: --json '{{...}}', or -H 'Content-Type: {JSON}'), even with an empty body; this request sent {said}"
        ),
    )
    .with("content_type", sent)
    .with("expected", JSON)
    .with_header(header::ACCEPT, JSON);
    Err(e)
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

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    } else if request.method() == Method::GET && access.token_in_query(request.uri()) {
        // A browser opening the printed URL: keep a proof of the token in a cookie, and
        // take the token out of the address bar (and of the history).
        let clean = without_token(request.uri());
        let mut r = Redirect::to(&clean).into_response();
        if let Ok(v) = HeaderValue::from_str(&access.cookie()) {
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

/// The cross-site rule, on every route of the router (a route layer: after routing, so
/// that a method a route does not take is still 405, and before its handler, so that
/// nothing runs or changes when it refuses).
pub async fn same_origin_only(
    State(state): State<Arc<ServerState>>,
    request: Request,
    next: Next,
) -> Response {
    let refused =
        state
            .access
            .cross_site_refusal(request.method(), request.uri(), request.headers());
    match refused {
        Some(e) => e.into_response(),
        None => next.run(request).await,
    }
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
pub(super) fn add_security_headers(headers: &mut HeaderMap) {
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

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

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
        for own in [
            "http://localhost:8080",
            "http://127.0.0.1:8081",
            "HTTP://[::1]:8080",
        ] {
            assert!(a.own_origin(own), "{own}");
        }
        for foreign in ["http://evil.example", "http://localhost:3000", "null", ""] {
            assert!(!a.own_origin(foreign), "{foreign}");
        }
    }

    #[test]
    fn requests_that_change_something_come_from_own_pages_or_no_page_and_say_json() {
        let a = Access::new("127.0.0.1".parse().unwrap(), &[8080, 8081], None, &[]);
        let post = |pairs: &[(&'static str, &'static str)]| {
            a.cross_site_refusal(
                &Method::POST,
                &"/api/v1/reload".parse().unwrap(),
                &headers(pairs),
            )
            .map(|e| (e.status.as_u16(), e.code))
        };
        let json = ("content-type", "application/json");
        assert_eq!(post(&[json]), None, "curl, scripts");
        assert_eq!(
            post(&[("content-type", "Application/JSON; charset=utf-8")]),
            None
        );
        assert_eq!(post(&[json, ("origin", "http://localhost:8081")]), None);
        assert_eq!(
            post(&[
                json,
                ("origin", "http://127.0.0.1:8081"),
                ("sec-fetch-site", "same-site")
            ]),
            None,
            "the server's own page on its other port"
        );
        assert_eq!(post(&[json, ("sec-fetch-site", "same-origin")]), None);
        let foreign = Some((403, "origin_not_allowed"));
        assert_eq!(post(&[json, ("origin", "http://evil.example")]), foreign);
        assert_eq!(post(&[json, ("origin", "http://127.0.0.1:3000")]), foreign);
        assert_eq!(post(&[json, ("origin", "null")]), foreign);
        let site = Some((403, "cross_site"));
        assert_eq!(post(&[json, ("sec-fetch-site", "cross-site")]), site);
        assert_eq!(post(&[json, ("sec-fetch-site", "same-site")]), site);
        let media = Some((415, "unsupported_media_type"));
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
        ] {
            let h = [("content-type", ct)];
            assert_eq!(post(&h), media, "{ct}");
        }
        assert_eq!(post(&[]), media, "no Content-Type");
        // Reading is not changing: a link from anywhere opens the dashboard.
        let mut h = headers(&[
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert!(a
            .cross_site_refusal(&Method::GET, &"/".parse().unwrap(), &h)
            .is_none());
        // A WebSocket is judged by its origin (no body, no Content-Type).
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let ws = a
            .cross_site_refusal(&Method::GET, &"/ws".parse().unwrap(), &h)
            .unwrap();
        assert_eq!(ws.code, "origin_not_allowed");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://localhost:8080"),
        );
        assert!(a
            .cross_site_refusal(&Method::GET, &"/ws".parse().unwrap(), &h)
            .is_none());
    }

    #[test]
    fn tokens_from_header_or_a_cookie_bound_to_the_server() {
        let token = "s3cret-token";
        let a = Access::new(
            "10.0.0.5".parse().unwrap(),
            &[8080],
            Some(token.into()),
            &[],
        );
        assert!(a.host_allowed("10.0.0.5:8080") && !a.host_allowed("localhost:8080"));
        assert!(!a.authorised(&HeaderMap::new()));
        assert!(a.authorised(&headers(&[("authorization", "Bearer s3cret-token")])));
        assert!(!a.authorised(&headers(&[("authorization", "Bearer s3cret-tokeX")])));
        // The cookie holds no token, and only this server's name and value open it.
        let cookie = a.cookie();
        assert!(!cookie.contains(token), "{cookie}");
        assert!(cookie.starts_with("metaclaude_token_8080="), "{cookie}");
        let pair = cookie.split(';').next().unwrap().to_string();
        let with_cookie = |c: String| {
            let mut h = HeaderMap::new();
            h.insert(header::COOKIE, HeaderValue::from_str(&c).unwrap());
            h
        };
        assert!(a.authorised(&with_cookie(format!("a=b; {pair}"))));
        assert!(!a.authorised(&with_cookie(format!("metaclaude_token_8080={token}"))));
        assert!(!a.authorised(&with_cookie(format!("metaclaude_token={token}"))));
        let other_port = Access::new(
            "10.0.0.5".parse().unwrap(),
            &[9090],
            Some(token.into()),
            &[],
        );
        assert!(!other_port.authorised(&with_cookie(pair.clone())));
        let renamed = pair.replace("_8080=", "_9090=");
        assert!(
            !other_port.authorised(&with_cookie(renamed)),
            "another port's value"
        );
        assert!(a.token_in_query(&"/?x=1&token=s3cret-token".parse().unwrap()));
        assert_eq!(
            without_token(&"/p?x=1&token=s3cret-token".parse().unwrap()),
            "/p?x=1"
        );
        assert!(needs_token("0.0.0.0:8080".parse().unwrap()));
        assert!(!needs_token("127.0.0.1:8080".parse().unwrap()));
    }

    #[test]
    fn hmac_sha256_is_rfc_4231() {
        // RFC 4231, test cases 2 and 6 (a key longer than a block).
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
