//! The server's connections, served by hyper's HTTP/1 connection builder under the router,
//! so that no client can keep others out by connecting and saying nothing:
//! * a connection that has not sent a whole request head within the header timeout
//!   ([`HEADER_READ_TIMEOUT`], 10 s) is closed: the first head, and each next one on a
//!   kept-alive connection (an idle kept-alive connection is closed after as long);
//! * one client address (an IPv6 one by its /64) holds at most `per_peer` connections,
//!   idle ones and live feeds included; past it, a new one is answered 429 and closed;
//! * the sockets open at once are capped ([`Gate::sockets`]: four per request slot, at
//!   most half the process's descriptor limit, leaving descriptors for the executions'
//!   pipes); past it, new connections wait in the kernel's backlog until one closes,
//!   which idle ones do within the header timeout;
//! * a request takes one of `--max-connections` slots only once its head has been read
//!   (in [`hold_a_slot`], after the security guard) and gives it back with its answer: an
//!   idle socket holds none. A request that finds none free waits up to the header
//!   timeout, then gets 503. `/healthz` needs no slot;
//! * shutdown: stop accepting, let every connection finish the request in flight, close
//!   the idle ones. A WebSocket, once upgraded, is the feed's to close.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::error::ApiError;
use super::ServerState;

/// How long a client has to send a whole request head (and how long a request waits for a
/// slot).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Sockets open at once per request slot.
const SOCKETS_PER_SLOT: usize = 4;

/// What the connections of one server share: the caps and their counters.
#[derive(Debug)]
pub struct Gate {
    /// Request slots (`--max-connections`).
    requests: Arc<Semaphore>,
    max_requests: usize,
    /// Sockets open at once, whatever they are doing.
    sockets: Arc<Semaphore>,
    max_sockets: usize,
    /// Open connections by client address.
    peers: Mutex<HashMap<IpAddr, usize>>,
    per_peer: usize,
    header_read_timeout: Duration,
    /// Connections answered 429 because their address had `per_peer` open.
    pub refused_per_peer: AtomicU64,
    /// Connections closed because their request head did not come in time.
    pub header_timeouts: AtomicU64,
    /// Requests answered 503 because no slot came free in time.
    pub busy: AtomicU64,
}

impl Gate {
    /// `max_requests` request slots, `per_peer` connections per client address.
    pub fn new(max_requests: usize, per_peer: usize, header_read_timeout: Duration) -> Gate {
        let max_requests = max_requests.max(1);
        let mut max_sockets = max_requests.saturating_mul(SOCKETS_PER_SLOT);
        if let Some(limit) = descriptor_limit() {
            max_sockets = max_sockets.min(limit / 2);
        }
        let max_sockets = max_sockets.max(1);
        Gate {
            requests: Arc::new(Semaphore::new(max_requests)),
            max_requests,
            sockets: Arc::new(Semaphore::new(max_sockets)),
            max_sockets,
            peers: Mutex::new(HashMap::new()),
            per_peer: per_peer.max(1),
            header_read_timeout,
            refused_per_peer: AtomicU64::new(0),
            header_timeouts: AtomicU64::new(0),
            busy: AtomicU64::new(0),
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max_sockets - self.sockets.available_permits()
    }

    /// Requests being answered now (holding a slot).
    pub fn in_flight(&self) -> usize {
        self.max_requests - self.requests.available_permits()
    }

    /// A place for one more connection from `ip`, unless it has `per_peer` already.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<PeerSlot, usize> {
        let key = peer_key(ip);
        let mut peers = self.peers.lock().unwrap();
        let open = peers.entry(key).or_insert(0);
        if *open >= self.per_peer {
            return Err(*open);
        }
        *open += 1;
        Ok(PeerSlot {
            gate: self.clone(),
            key,
        })
    }

    /// The next connection under the caps: waits for a socket place, then accepts; a
    /// connection from an address that has `per_peer` open already is answered 429 and
    /// closed (`None`), as is a failed accept (after a short pause).
    async fn accept(self: &Arc<Self>, listener: &TcpListener) -> Option<Connection> {
        // The semaphore is never closed.
        let socket = self.sockets.clone().acquire_owned().await.ok()?;
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: wait a little, as hyper's own listener
                // does, instead of spinning.
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                return None;
            }
        };
        match self.admit(addr.ip()) {
            Ok(peer) => {
                let _ = stream.set_nodelay(true);
                Some(Connection {
                    stream,
                    _socket: socket,
                    _peer: peer,
                })
            }
            Err(open) => {
                self.refused_per_peer.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%addr, open, "connection refused: too many from this address");
                refuse(&stream, addr, open);
                None
            }
        }
    }
}

/// The process's soft limit on open descriptors, if it has one.
fn descriptor_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given, which lives here.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as usize)
}

/// The address a client is counted under: IPv4 as it is (an IPv4-mapped IPv6 address as
/// its IPv4), IPv6 by its /64 (one host is usually given a whole /64).
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Tells a client over its cap why it is closed (best effort: the socket is not waited on).
fn refuse(stream: &TcpStream, addr: SocketAddr, open: usize) {
    let body = serde_json::json!({ "error": {
        "code": "too_many_connections",
        "message": format!(
            "{} has {open} connections open to this server already (--max-connections-per-peer); close some, or try again shortly",
            addr.ip()
        ),
    }})
    .to_string();
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(response.as_bytes());
}

/// One client address's place under the per-peer cap, given back when dropped.
#[derive(Debug)]
struct PeerSlot {
    gate: Arc<Gate>,
    key: IpAddr,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut peers = self.gate.peers.lock().unwrap();
        if let Some(open) = peers.get_mut(&self.key) {
            *open -= 1;
            if *open == 0 {
                peers.remove(&self.key);
            }
        }
    }
}

/// Serves `listener` with `router` until `stopping` turns true, then lets every
/// connection finish the request in flight and closes it.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    gate: Arc<Gate>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stopping.wait_for(|s| *s) => break,
            accepted = gate.accept(&listener) => accepted,
        };
        // Reap those that ended (a JoinSet keeps their results until then).
        while connections.try_join_next().is_some() {}
        if let Some(connection) = accepted {
            connections.spawn(serve_connection(
                connection,
                router.clone(),
                gate.clone(),
                stopping.clone(),
            ));
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// One connection, with WebSocket upgrades, until it closes, times out or the server stops.
async fn serve_connection(
    connection: Connection,
    router: Router,
    gate: Arc<Gate>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(gate.header_read_timeout);
    let served = builder
        .serve_connection(TokioIo::new(connection), TowerToHyperService::new(router))
        .with_upgrades();
    tokio::pin!(served);
    let mut stop_asked = false;
    let result = loop {
        tokio::select! {
            result = served.as_mut() => break result,
            _ = stopping.wait_for(|s| *s), if !stop_asked => {
                stop_asked = true;
                served.as_mut().graceful_shutdown();
            }
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            gate.header_timeouts.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!("connection ended: {e}");
    }
}

/// The middleware that gives a request one of the `--max-connections` slots for as long
/// as it is being answered (its head is read by then); `/healthz` needs none.
pub async fn hold_a_slot(
    State(state): State<Arc<ServerState>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    let gate = &state.gate;
    let slot = match gate.requests.clone().try_acquire_owned() {
        Ok(slot) => slot,
        Err(_) => {
            let wait = gate.requests.clone().acquire_owned();
            match tokio::time::timeout(gate.header_read_timeout, wait).await {
                Ok(Ok(slot)) => slot,
                _ => {
                    gate.busy.fetch_add(1, Ordering::Relaxed);
                    let mut e = ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "busy",
                        format!(
                            "{} requests are being answered already (--max-connections), and none finished within {} s; try again shortly",
                            gate.max_requests,
                            gate.header_read_timeout.as_secs()
                        ),
                    );
                    e.retry_after = Some(1);
                    return e.into_response();
                }
            }
        }
    };
    let response = next.run(request).await;
    drop(slot);
    response
}

/// An accepted connection holding its places under the socket cap and its address's cap
/// until it is dropped (after a WebSocket upgrade, when the WebSocket closes).
struct Connection {
    stream: TcpStream,
    _socket: OwnedSemaphorePermit,
    _peer: PeerSlot,
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_counted_by_address_and_ipv6_by_its_64() {
        let key = |s: &str| peer_key(s.parse().unwrap()).to_string();
        assert_eq!(key("10.1.2.3"), "10.1.2.3");
        assert_eq!(key("::ffff:10.1.2.3"), "10.1.2.3");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2:bbbb::9"), key("2001:db8:1:2::"));
    }

    #[test]
    fn a_peer_over_its_cap_is_refused_until_one_of_its_connections_closes() {
        let gate = Arc::new(Gate::new(8, 2, HEADER_READ_TIMEOUT));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = gate.admit(a).unwrap();
        let _second = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).err(), Some(2));
        let _other = gate.admit(b).expect("another address is not held back");
        drop(first);
        let _third = gate.admit(a).expect("a place came free");
        assert!(gate.max_sockets >= 8);
    }
}
