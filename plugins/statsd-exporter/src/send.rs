//! Datagrams out, never waiting: one connected, non-blocking UDP socket.
//!
//! Each send is one non-blocking `send`: a datagram the socket cannot take at once is
//! dropped, never waited for. The socket is connected to the target, so an ICMP "port
//! unreachable" (nobody listening) comes back as `connection refused` on a later send
//! instead of vanishing; UDP reports nothing else (a daemon that is slow or gone simply
//! loses the datagrams). Every datagram not sent is counted; [`Sender::report`] says so at
//! most every [`REPORT_EVERY`], so a dead daemon costs one line in the host's log per
//! interval, not one per batch.
//!
//! A socket that cannot be opened (the name does not resolve, the grant refuses it) is
//! tried again at most every [`RETRY_EVERY`]; datagrams in between are counted as not
//! sent without any system call.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

pub const REPORT_EVERY: Duration = Duration::from_secs(10);
pub const RETRY_EVERY: Duration = Duration::from_secs(5);

pub struct Sender {
    target: String,
    socket: Option<UdpSocket>,
    /// When opening the socket failed: not before then again.
    retry_at: Option<Instant>,
    report_every: Duration,
    last_report: Option<Instant>,
    pub sent: u64,
    pub failed: u64,
    unreported: u64,
    last_error: Option<String>,
}

impl Sender {
    pub fn new(target: String) -> Sender {
        Sender::with_report_interval(target, REPORT_EVERY)
    }

    pub fn with_report_interval(target: String, report_every: Duration) -> Sender {
        Sender {
            target,
            socket: None,
            retry_at: None,
            report_every,
            last_report: None,
            sent: 0,
            failed: 0,
            unreported: 0,
            last_error: None,
        }
    }

    fn open(&self) -> io::Result<UdpSocket> {
        let addr: SocketAddr =
            self.target.to_socket_addrs()?.next().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "the name has no address")
            })?;
        let local: SocketAddr = if addr.is_ipv4() {
            "0.0.0.0:0".parse().unwrap()
        } else {
            "[::]:0".parse().unwrap()
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(addr)?;
        socket.set_nonblocking(true)?;
        Ok(socket)
    }

    fn fail(&mut self, n: usize, why: String) {
        self.failed += n as u64;
        self.unreported += n as u64;
        self.last_error = Some(why);
    }

    /// Sends each datagram once, without waiting; counts what did not go.
    pub fn send(&mut self, datagrams: &[Vec<u8>]) {
        if datagrams.is_empty() {
            return;
        }
        if self.socket.is_none() {
            if self.retry_at.is_some_and(|at| Instant::now() < at) {
                let why = self.last_error.clone().unwrap_or_default();
                self.fail(datagrams.len(), why);
                return;
            }
            match self.open() {
                Ok(s) => {
                    self.socket = Some(s);
                    self.retry_at = None;
                }
                Err(e) => {
                    self.retry_at = Some(Instant::now() + RETRY_EVERY);
                    let why = format!("cannot open a UDP socket to {}: {e}", self.target);
                    self.fail(datagrams.len(), why);
                    return;
                }
            }
        }
        let socket = self.socket.as_ref().expect("opened above");
        let mut failures: Vec<String> = Vec::new();
        for d in datagrams {
            match socket.send(d) {
                Ok(_) => self.sent += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => failures
                    .push("the socket's buffer is full (datagram dropped, not waited for)".into()),
                Err(e) => failures.push(describe(&e)),
            }
        }
        if let Some(last) = failures.last().cloned() {
            self.fail(failures.len(), last);
        }
    }

    /// A message when datagrams were not sent since the last one, at most every
    /// report interval.
    pub fn report(&mut self) -> Option<String> {
        if self.unreported == 0 {
            return None;
        }
        if self
            .last_report
            .is_some_and(|at| at.elapsed() < self.report_every)
        {
            return None;
        }
        let since = if self.last_report.is_some() {
            format!("in the last {}s", self.report_every.as_secs())
        } else {
            "since start".to_string()
        };
        let message = format!(
            "statsd: {} datagram(s) to {} not sent {since} ({} of {} since start); last error: {}",
            self.unreported,
            self.target,
            self.failed,
            self.failed + self.sent,
            self.last_error.as_deref().unwrap_or("unknown")
        );
        self.unreported = 0;
        self.last_report = Some(Instant::now());
        Some(message)
    }
}

/// What a failed send means, in the operator's terms. The guest's `io::Error` ends in
/// "(os error N)" with WASI's numbering (connection refused is 14 there, EFAULT to a
/// Linux reader), so the number is left out.
fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            "connection refused (nothing listens there: is the StatsD daemon running?)".into()
        }
        _ => {
            let text = e.to_string();
            match text.rfind(" (os error ") {
                Some(at) if text.ends_with(')') => text[..at].to_string(),
                _ => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_described_without_the_guests_errno() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            describe(&refused),
            "connection refused (nothing listens there: is the StatsD daemon running?)"
        );
        // Any raw OS error: only that its text carries a number matters here.
        let raw = io::Error::from_raw_os_error(101);
        assert!(!describe(&raw).contains("os error"), "{}", describe(&raw));
        let custom = io::Error::other("no route (to host)");
        assert_eq!(describe(&custom), "no route (to host)");
    }

    #[test]
    fn datagrams_arrive_as_sent() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut s = Sender::new(receiver.local_addr().unwrap().to_string());
        s.send(&[b"a:1|c\nb:2|c".to_vec(), b"c:3|ms".to_vec()]);
        let mut buf = [0u8; 2048];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"a:1|c\nb:2|c");
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"c:3|ms");
        assert_eq!((s.sent, s.failed), (2, 0));
        assert_eq!(s.report(), None);
    }

    #[test]
    fn nobody_listening_is_counted_and_reported_at_most_every_interval() {
        let port = {
            let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut s =
            Sender::with_report_interval(format!("127.0.0.1:{port}"), Duration::from_millis(300));
        let started = Instant::now();
        for _ in 0..20 {
            s.send(&[b"a:1|c".to_vec()]);
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        // Each refusal reaches the next send: about every other one fails.
        assert!(s.failed >= 5, "sent {} failed {}", s.sent, s.failed);
        let first = s.report().unwrap();
        assert!(first.contains("not sent since start"), "{first}");
        assert!(first.contains("refused"), "{first}");
        s.send(&[b"a:1|c".to_vec()]);
        s.send(&[b"a:1|c".to_vec()]);
        assert_eq!(s.report(), None, "reported again within the interval");
        std::thread::sleep(Duration::from_millis(350));
        let second = s.report().unwrap();
        assert!(
            second.contains("in the last 0s") || second.contains("not sent in the last"),
            "{second}"
        );
    }

    #[test]
    fn a_target_that_does_not_resolve_is_retried_later_not_at_every_send() {
        // An unusable target (no name lookup needed to find out).
        let mut s = Sender::new("127.0.0.1:port".into());
        s.send(&[b"a:1|c".to_vec()]);
        let first_retry = s.retry_at.expect("a retry is scheduled");
        s.send(&[b"a:1|c".to_vec(), b"b:1|c".to_vec()]);
        assert_eq!(
            s.retry_at,
            Some(first_retry),
            "not retried before RETRY_EVERY"
        );
        assert_eq!((s.sent, s.failed), (0, 3));
        let report = s.report().unwrap();
        assert!(
            report.contains("cannot open a UDP socket to 127.0.0.1:port"),
            "{report}"
        );
    }
}
